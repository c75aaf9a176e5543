"""The instructor view: a JupyterHub service (README, "Workshops") at /services/instructor/.

For every participant: which lessons they opened, which labs are done, the last check's result
and hint level, and the state of their server; the page reloads itself, and /api/rows gives the
same as JSON. Only the hub's admins (the instructor) may see it: the page asks the hub (OAuth) who
is looking and admits only who holds access:services!service=instructor, which the hub's admin
role has and a participant's does not.

How it reads a participant's progress: through the participant's own server, as any client of
Jupyter would, with this service's token (scope access:servers, jupyterhub_config.py): GET
/user/NAME/api/contents/work/progress/progress.json (and opened.json) via the hub's proxy. No
volume is shared with the participants; a stopped server shows what was last read from it.

Started by the hub (a managed service) in the hub's virtualenv; progress_view.py does the rest.
"""
import asyncio
import datetime
import json
import os
import signal
import sys
from pathlib import Path
from urllib.parse import quote

from tornado import httpclient, web
from tornado.ioloop import IOLoop

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join

sys.path.insert(0, str(Path(__file__).resolve().parent))
import progress_view as pv  # noqa: E402  (beside this file, which is not a package)

NAME = os.environ.get("JUPYTERHUB_SERVICE_NAME", "instructor")
TOKEN = os.environ["JUPYTERHUB_API_TOKEN"]
HUB_API = os.environ["JUPYTERHUB_API_URL"].rstrip("/")
PREFIX = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{NAME}/")
PROXY = os.environ["XDPLAB_WORKSHOP_PROXY_URL"].rstrip("/")     # the hub's proxy, on 127.0.0.1
COURSE = Path(os.environ.get("XDPLAB_WORKSHOP_COURSE", Path(__file__).resolve().parents[2]))
EVERY = float(os.environ.get("XDPLAB_WORKSHOP_POLL", "5"))
FILES = {"progress": "work/progress/progress.json", "opened": "work/progress/opened.json"}
LESSONS = sorted(p.stem for p in (COURSE / "notebooks").glob("[0-9][0-9]-*.ipynb"))
NAMES = [n for n in os.environ.get("XDPLAB_WORKSHOP_PARTICIPANTS", "").split(",") if n]
LABS = sorted(p.parent.name for p in (COURSE / "labs").glob("*/check.py"))


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class View:
    """Every participant, read again every EVERY seconds, also while nobody looks: a check is
    seen as it happens (its result comes from the change between two reads)."""

    def __init__(self):
        self.lessons, self.labs = LESSONS, LABS
        self.people = {}
        self.read_at = None
        self.client = httpclient.AsyncHTTPClient()

    async def get(self, url, **kw):
        return await self.client.fetch(url, headers={"Authorization": f"token {TOKEN}"},
                                       request_timeout=20, **kw)

    async def file(self, server_url, path):
        """The text of a file in the participant's server, None when there is none (yet)."""
        url = f"{PROXY}{url_path_join(server_url, 'api/contents', quote(path))}" \
              "?type=file&format=text&content=1"
        try:
            model = json.loads((await self.get(url)).body)
        except httpclient.HTTPClientError as e:
            if e.code == 404:
                return None
            raise
        return model.get("content")

    async def read_one(self, user):
        person = self.people.setdefault(user["name"], pv.Participant(user["name"]))
        server = (user.get("servers") or {}).get("")
        if not server:
            person.server = "not started"
            return
        person.server = "running" if server.get("ready") else (server.get("pending") or "starting")
        if not server.get("ready"):
            return
        try:
            progress, opened = await asyncio.gather(self.file(server["url"], FILES["progress"]),
                                                    self.file(server["url"], FILES["opened"]))
        except (httpclient.HTTPClientError, OSError, ValueError) as e:
            person.error = f"could not read its progress: {e}"
            return
        person.observe(progress, opened, now())

    async def read_all(self):
        users, page = [], 200
        while True:                          # the hub's API hands out users a page at a time
            batch = json.loads((await self.get(f"{HUB_API}/users?offset={len(users)}&limit={page}")).body)
            users += batch
            if len(batch) < page:
                break
        # the room's participants (an earlier room's accounts stay in the hub's database)
        participants = [u for u in users if not u.get("admin") and (not NAMES or u["name"] in NAMES)]
        await asyncio.gather(*(self.read_one(u) for u in participants))
        if not (self.lessons or self.labs):
            await self.read_course(participants)
        for gone in set(self.people) - {u["name"] for u in participants}:
            del self.people[gone]
        self.read_at = now()

    async def read_course(self, users):
        """The lessons and labs from a running participant's server, where the course is not
        on this machine (under Kubernetes the service runs in the hub's pod)."""
        for user in users:
            server = (user.get("servers") or {}).get("")
            if not (server and server.get("ready")):
                continue
            names = {}
            for folder in ("notebooks", "labs"):
                url = f"{PROXY}{url_path_join(server['url'], 'api/contents', folder)}?content=1"
                try:
                    model = json.loads((await self.get(url)).body)
                except (httpclient.HTTPClientError, OSError, ValueError):
                    break
                names[folder] = sorted(e["name"] for e in model.get("content") or [])
            else:
                self.lessons = [n.removesuffix(".ipynb") for n in names["notebooks"]
                                if n[:2].isdigit() and n.endswith(".ipynb")]
                self.labs = [n for n in names["labs"] if n[:2].isdigit()]
                return

    async def run(self):
        while True:
            try:
                await self.read_all()
            except Exception as e:          # the hub restarting: try again next round
                print(f"instructor view: reading the participants failed: {e}", file=sys.stderr)
            await asyncio.sleep(EVERY)

    def rows(self):
        return [self.people[n].row(self.lessons, self.labs) for n in sorted(self.people)]


class Admin(HubOAuthenticated, web.RequestHandler):
    """Only who holds this service's access scope (the hub's admins) gets past here."""

    @property
    def hub_scopes(self):
        return {f"access:services!service={NAME}"}

    def initialize(self, view):
        self.view = view


class Page(Admin):
    @web.authenticated
    def get(self):
        self.write(pv.page(self.view.rows(), self.view.read_at or "not yet", every=10))


class Rows(Admin):
    @web.authenticated
    def get(self):
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps({"read_at": self.view.read_at, "lessons": self.view.lessons,
                               "labs": self.view.labs,
                               "rows": self.view.rows()}))


def main():
    view = View()
    app = web.Application([
        (PREFIX, Page, {"view": view}),
        (url_path_join(PREFIX, "api/rows"), Rows, {"view": view}),
        (url_path_join(PREFIX, "oauth_callback"), HubOAuthCallbackHandler),
    ], cookie_secret=os.urandom(32))
    url = os.environ["JUPYTERHUB_SERVICE_URL"]
    host, _, port = url.split("://", 1)[1].rstrip("/").rpartition(":")
    if host != "127.0.0.1":
        sys.exit(f"instructor view: refusing to listen on {host}: only 127.0.0.1")
    app.listen(int(port), address=host)
    loop = IOLoop.current()
    # the hub stops its services with SIGINT, then SIGTERM: both end this one at once (also when
    # it was started with SIGINT ignored, as a background job's children are)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: loop.add_callback(loop.stop))
    loop.spawn_callback(view.run)
    loop.start()


if __name__ == "__main__":
    main()
