"""`sudo make workshop`: checks what the room needs, then runs JupyterHub until Ctrl-C.

    python3 workshop.py check    the input and the machine: names, port, Docker, the image
    python3 workshop.py start    check, build the workshop image, make the accounts (printed),
                                 start the hub; on Ctrl-C (or SIGTERM) stop it and everything
                                 it started: containers, the Docker network, the socket

The settings are the environment's (jupyterhub_config.py lists them): PARTICIPANTS, HOST, PORT,
IMAGE (the xdplab image, `make image`), MEM_LIMIT, CPU_LIMIT, VOLUME, IDLE_TIMEOUT,
INSTRUCTOR_PASSWORD (else one is drawn), XDPLAB_CACHE; XDPLAB_WORKSHOP_STATE (the accounts and the
hub's database, default $XDPLAB_CACHE/workshop/state) and XDPLAB_WORKSHOP_NETWORK (the Docker
network, default xdplab-workshop) let a test run beside a real room. Input that cannot work stops it with a
message that says what to do (exit code 2); nothing is started before every check has passed.
`check` needs only the standard library; `start` runs in the hub's virtualenv (install.sh).
"""
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from accounts import Accounts, BadInput, participants  # noqa: E402

NETWORK = os.environ.get("XDPLAB_WORKSHOP_NETWORK") or "xdplab-workshop"
HUB_VERSION = "jupyterhub==6.1.1"       # the participants' servers run the hub's own version
IMAGE_FILES = [HERE / "image" / "Dockerfile", HERE / "image" / "start.sh",
               HERE / "image" / "xdplab_workshop_server.py", HERE / "image" / "xdplab_limits.py",
               HERE / "sockbridge.py"]


def say(text):
    print(f"\033[1mxdplab workshop:\033[0m {text}", flush=True)


def cache_dir():
    return Path(os.environ.get("XDPLAB_CACHE") or REPO / ".cache") / "workshop"


def settings():
    env = os.environ
    return {"names": participants(env.get("PARTICIPANTS")),
            "host": env.get("HOST") or "127.0.0.1", "port": port(env.get("PORT") or "8888"),
            "image": env.get("IMAGE") or "xdplab", "docker": env.get("DOCKER") or "docker"}


def port(text):
    if not text.isdigit() or not 1 <= int(text) <= 65532:
        raise BadInput(f"PORT={text!r} is not a port number (1 to 65532; the hub also uses the "
                       "three ports after it, on 127.0.0.1)")
    return int(text)


def check_ports(host, first):
    """The room's port on HOST and the three after it on 127.0.0.1 must be free."""
    for address, number, what in [(host, first, "the room's address"),
                                  ("127.0.0.1", first + 1, "the hub's API"),
                                  ("127.0.0.1", first + 2, "the proxy's API"),
                                  ("127.0.0.1", first + 3, "the instructor view")]:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((address, number))
            except OSError as e:
                who = holder(number)
                raise BadInput(f"port {number} on {address} ({what}) is taken"
                               f"{f' by {who}' if who else ''} ({e.strerror}): choose another "
                               f"with PORT=..., e.g. make workshop PORT={first + 10}")


def holder(number):
    """The process listening on a port, as `ss` names it, or ''."""
    try:
        out = subprocess.run(["ss", "-Hltnp", f"sport = :{number}"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    found = re.findall(r'\("([^"]+)",pid=(\d+)', out)
    return ", ".join(f"{name} (pid {pid})" for name, pid in found)


def docker(args, docker_cmd, **kw):
    return subprocess.run([docker_cmd, *args], capture_output=True, text=True, **kw)


def check_docker(docker_cmd, image):
    if not shutil.which(docker_cmd):
        raise BadInput(f"Docker is not installed (no '{docker_cmd}' command): on Debian or Ubuntu "
                       "run `sudo apt-get install docker.io`, then `make image`")
    info = docker(["info", "--format", "{{.ServerVersion}}"], docker_cmd, timeout=60)
    if info.returncode != 0:
        raise BadInput(f"the Docker engine does not answer ('{docker_cmd} info': "
                       f"{(info.stderr.strip().splitlines() or ['no output'])[-1]}): start it "
                       "(`sudo systemctl start docker`) and run this as root or in the docker group")
    if docker(["image", "inspect", image], docker_cmd, timeout=60).returncode != 0:
        raise BadInput(f"there is no image '{image}': build it first with `make image` (it takes "
                       f"some minutes), or name another with IMAGE=...")


def check():
    s = settings()
    check_ports(s["host"], s["port"])
    check_docker(s["docker"], s["image"])
    return s


# -- the workshop image ------------------------------------------------------------------------
def image_source(base_id, wheels):
    """What the workshop image is made of, as one hash: rebuilt when any of it changes."""
    h = hashlib.sha256(base_id.encode())
    for f in IMAGE_FILES + sorted(wheels.glob("*")):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:16]


def build_image(s):
    """IMAGE-workshop from IMAGE and image/ (seconds; nothing is fetched during the build)."""
    tag = f"{s['image'].split(':')[0]}-workshop"
    context = cache_dir() / "image-context"
    wheels = context / "wheels"
    requirement = wheels / "requirements.txt"
    if not requirement.is_file() or requirement.read_text().strip() != HUB_VERSION:
        shutil.rmtree(wheels, ignore_errors=True)
        wheels.mkdir(parents=True)
        say(f"downloading {HUB_VERSION} for the participants' servers")
        res = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
                              "-d", str(wheels), "-c", str(HERE / "requirements.txt"), HUB_VERSION],
                             capture_output=True, text=True)
        if res.returncode != 0:
            shutil.rmtree(wheels, ignore_errors=True)
            raise BadInput(f"could not download {HUB_VERSION} from PyPI:\n{res.stderr[-2000:]}")
        requirement.write_text(HUB_VERSION + "\n")
    for f in IMAGE_FILES:
        shutil.copy(f, context / f.name)
    base_id = docker(["image", "inspect", "-f", "{{.Id}}", s["image"]], s["docker"]).stdout.strip()
    source = image_source(base_id, wheels)
    have = docker(["image", "inspect", "-f", '{{index .Config.Labels "xdplab.workshop.source"}}', tag],
                  s["docker"])
    if have.returncode == 0 and have.stdout.strip() == source:
        return tag
    say(f"building the workshop image {tag} from {s['image']}")
    res = subprocess.run([s["docker"], "build", "--network", "none", "--build-arg", f"BASE={s['image']}",
                          "--label", f"xdplab.workshop.source={source}", "-t", tag, str(context)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise BadInput(f"the workshop image did not build:\n{(res.stdout + res.stderr)[-3000:]}")
    return tag


def ensure_network(docker_cmd):
    """An internal Docker network: the containers reach each other's host and nothing beyond."""
    if docker(["network", "inspect", NETWORK], docker_cmd).returncode != 0:
        res = docker(["network", "create", "--internal", "--label", "xdplab.workshop=1", NETWORK],
                     docker_cmd)
        if res.returncode != 0:
            raise BadInput(f"could not make the Docker network {NETWORK}: {res.stderr.strip()}")


def clean_up(docker_cmd, state):
    """What the hub leaves if it did not stop cleanly: our containers, the network, the socket."""
    out = docker(["ps", "-aq", "--filter", f"network={NETWORK}"], docker_cmd).stdout.split()
    if out:
        say(f"removing {len(out)} container(s) the hub left")
        docker(["rm", "-f", *out], docker_cmd)
    docker(["network", "rm", NETWORK], docker_cmd)
    shutil.rmtree(state / "run", ignore_errors=True)


def default_signals():
    """In the hub's process: SIGINT and SIGQUIT as by default, also where this launcher was
    started with them ignored (a background job): the hub stops its services with SIGINT."""
    for sig in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)


def start():
    s = check()
    cache = cache_dir()
    state = Path(os.environ.get("XDPLAB_WORKSHOP_STATE") or cache / "state")
    tag = build_image(s)
    sheet = Accounts(state).ensure(s["names"], os.environ.get("INSTRUCTOR_PASSWORD") or None)
    (state / "run").mkdir(parents=True, exist_ok=True)
    ensure_network(s["docker"])
    shown = "127.0.0.1" if s["host"] in ("0.0.0.0", "::") else s["host"]
    if s["host"] not in ("127.0.0.1", "::1", "localhost"):
        say(f"HOST={s['host']}: the room's address is plain HTTP, passwords included; in a real "
            "room keep HOST=127.0.0.1 and put a TLS reverse proxy in front (README, Workshops)")
    say(f"{len(s['names'])} participants; the accounts (kept in {state / 'accounts.txt'}):\n{sheet}")
    say(f"the room signs in at http://{shown}:{s['port']}/ ; the instructor view is "
        f"http://{shown}:{s['port']}/services/instructor/ (as 'instructor'). Ctrl-C stops it all.")
    env = dict(os.environ, XDPLAB_WORKSHOP_STATE=str(state), XDPLAB_WORKSHOP_CACHE=str(cache),
               XDPLAB_WORKSHOP_IMAGE=tag, XDPLAB_WORKSHOP_NETWORK=NETWORK,
               HOST=s["host"], PORT=str(s["port"]))
    hub = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f",
                            str(HERE / "jupyterhub_config.py")], cwd=state, env=env,
                           start_new_session=True, preexec_fn=default_signals)

    def stop(signum, frame):
        if hub.poll() is None:
            hub.send_signal(signal.SIGTERM)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        code = hub.wait()
    finally:
        if hub.poll() is None:
            hub.kill()
            hub.wait()
        clean_up(s["docker"], state)
    say("stopped")
    return code


def main(argv):
    try:
        if argv == ["check"]:
            check()
            return 0
        if argv == ["start"]:
            return start()
    except BadInput as e:
        print(f"\033[1;31mxdplab workshop:\033[0m {e}", file=sys.stderr)
        return 2
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
