"""A workshop room as an instructor starts it, for platforms/test_workshop.py and
benchmarks/workshop.py: env/workshop/run.sh (`sudo make workshop`) in the background, and the
hub's REST API as participants and the instructor use it.

    with room(["ana", "ben"], image, state_dir) as hub:      # stopped as Ctrl-C stops it
        token = token_for(hub, "ana", hub["sheet"]["ana"])
        start_server(hub, "ana", token)

Names of containers, the Docker network and volumes are the test's own (NETWORK, VOLUME), so
that a room can run beside a real one.
"""
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from dockerenv import ARTIFACTS, DOCKER, docker, stop

ROOT = Path(__file__).resolve().parent.parent
NETWORK = "xdplab-workshop-test"
VOLUME = "xdplab-workshop-test-{username}"
INSTRUCTOR_PASSWORD = "instructor-test-pw"


def free_port_block():
    """A port with the three after it free on 127.0.0.1 (the hub uses PORT to PORT+3)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            first = s.getsockname()[1]
        if first > 65000:
            continue
        try:
            for p in range(first, first + 4):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return first
        except OSError:
            continue
    raise AssertionError("no four free ports in a row")


def http(url, method="GET", token=None, body=None, timeout=30):
    """(status, parsed JSON or text) of a request; errors are answers too."""
    headers = {"Authorization": f"token {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    except (urllib.error.URLError, OSError) as e:       # nothing answers (yet)
        return 0, str(e)
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def until(what, check, timeout, every=2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


def container(name):
    """A participant's container, as jupyterhub_config.py names it."""
    return f"xdplab-workshop-{name}"


@contextlib.contextmanager
def room(names, image, state, mem_limit="2G", cpu_limit="1", log_name="workshop-hub.log",
         extra_env=None):
    """`make workshop` with these participants, in the background, until the hub answers; on exit
    stopped as Ctrl-C stops it, and the room's volumes and workshop image removed."""
    port = free_port_block()
    env = {**os.environ, "PARTICIPANTS": ",".join(names), "PORT": str(port), "HOST": "127.0.0.1",
           "IMAGE": image, "DOCKER": DOCKER, "VOLUME": VOLUME, "MEM_LIMIT": mem_limit,
           "CPU_LIMIT": cpu_limit, "INSTRUCTOR_PASSWORD": INSTRUCTOR_PASSWORD,
           "XDPLAB_WORKSHOP_STATE": str(state), "XDPLAB_WORKSHOP_NETWORK": NETWORK,
           **(extra_env or {})}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / log_name
    log = open(log_path, "w")
    proc = subprocess.Popen(["bash", str(ROOT / "env" / "workshop" / "run.sh")], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900          # the first run installs the hub and the proxy
        while not (proc.poll() is None and http(f"{url}/hub/api/", timeout=5)[0] == 200):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise AssertionError(f"make workshop did not start the hub:\n{log_path.read_text()[-4000:]}")
            time.sleep(2)
        sheet = dict(line.split() for line in (Path(state) / "accounts.txt").read_text().splitlines())
        yield {"url": url, "port": port, "proc": proc, "sheet": sheet, "state": Path(state)}
    finally:
        stop(proc, signal.SIGINT, timeout=180)       # Ctrl-C reaches the launcher
        log.close()
        for volume in [VOLUME.format(username=n) for n in names]:
            docker("volume", "rm", "-f", volume, check=False)
        docker("image", "rm", "-f", f"{image.split(':')[0]}-workshop", check=False)


def token_for(hub, name, password):
    """Signing in through the REST API: a token from a name and a password."""
    status, answer = http(f"{hub['url']}/hub/api/users/{name}/tokens", "POST",
                          body={"auth": {"username": name, "password": password},
                                "note": "xdplab platform test"})
    assert status in (200, 201), f"{name} could not sign in through the REST API: {status} {answer}"
    return answer["token"]


def server_ready(hub, name, token):
    status, user = http(f"{hub['url']}/hub/api/users/{name}", token=token)
    server = (user.get("servers") or {}).get("") if status == 200 else None
    return server if server and server.get("ready") else None


def start_servers(hub, tokens, timeout=600):
    """Ask the hub for each participant's server, then wait until every one is ready."""
    for n, token in tokens.items():
        status, answer = http(f"{hub['url']}/hub/api/users/{n}/server", "POST", token=token)
        assert status in (201, 202), f"{n}'s server did not start: {status} {answer}"
    for n, token in tokens.items():
        until(f"{n}'s server is ready", lambda n=n, token=token: server_ready(hub, n, token), timeout)


def hub_processes():
    """The workshop's processes still running on this machine (hub, proxy, its services)."""
    out = subprocess.run(["pgrep", "-af", "jupyterhub|configurable-http-proxy|sockbridge.py|"
                          "instructor.py|jupyterhub_idle_culler"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]
