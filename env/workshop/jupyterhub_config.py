"""JupyterHub for a workshop room (README, "Workshops"): `sudo make workshop` runs it.

Every setting comes from the environment (workshop.py checks them and sets the XDPLAB_WORKSHOP_*
ones before it starts the hub):

    PARTICIPANTS   a number N (accounts p01 ... pN) or names: ana,ben,...      (required)
    HOST, PORT     where the room connects: the proxy's address    (127.0.0.1, 8888)
                   The hub's own API is on 127.0.0.1:PORT+1, the proxy's API on 127.0.0.1:PORT+2,
                   the instructor view on 127.0.0.1:PORT+3 (reached through the proxy).
    MEM_LIMIT      memory per participant's container (Docker's units)          (2G)
    CPU_LIMIT      CPUs per participant's container                              (1)
    VOLUME         the participant's volume; {username} is replaced   (xdplab-workshop-{username})
    IDLE_TIMEOUT   seconds without activity before the culler stops a server     (3600)
    XDPLAB_WORKSHOP_IMAGE   the workshop image (workshop.py builds it from IMAGE)
    XDPLAB_WORKSHOP_STATE   accounts, the hub's database, the socket directory
    XDPLAB_WORKSHOP_CACHE   the hub's virtualenv and the proxy (npm)

One container per participant (DockerSpawner), each in its own network namespace on an internal
Docker network that reaches nothing outside the host; the participant's volume at
/opt/xdplab/work keeps notebooks, labs and progress. The hub's API is reached from the containers
through sockbridge.py (a Unix socket), so nothing of the hub listens on anything but 127.0.0.1.
"""
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import accounts  # noqa: E402  (beside this file)

c = get_config()  # noqa: F821  (JupyterHub's config loader provides it)

env = os.environ.get
state = Path(env("XDPLAB_WORKSHOP_STATE") or HERE.parents[1] / ".cache" / "workshop" / "state")
cache = Path(env("XDPLAB_WORKSHOP_CACHE") or state.parent)
host, port = env("HOST") or "127.0.0.1", int(env("PORT") or 8888)
hub_port, proxy_api_port, view_port = port + 1, port + 2, port + 3
names = accounts.participants(env("PARTICIPANTS"))
socket_dir = state / "run"
# the address the hub's own services reach the proxy at (the room's HOST may be a LAN address)
proxy_here = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
python = sys.executable

# -- where it listens: the room's address, everything else on the loopback ----------------------
c.JupyterHub.bind_url = f"http://{host}:{port}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [str(cache / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True          # the hub's end stops (and removes) every container
c.JupyterHub.cleanup_proxy = True

# -- who signs in: the printed accounts (accounts.py), the instructor is the admin ---------------
c.JupyterHub.authenticator_class = "accounts.ListAuthenticator"   # beside this file
c.ListAuthenticator.accounts_file = str(state / "accounts.json")
c.Authenticator.allowed_users = set(names)
c.Authenticator.admin_users = {accounts.INSTRUCTOR}
c.Authenticator.allow_existing_users = False   # the accounts of an earlier room cannot sign in

# -- one container per participant --------------------------------------------------------------
c.JupyterHub.spawner_class = "docker"
c.DockerSpawner.image = env("XDPLAB_WORKSHOP_IMAGE") or "xdplab-workshop"
c.DockerSpawner.pull_policy = "never"          # built here; no image registry is asked
c.DockerSpawner.name_template = "xdplab-workshop-{username}"
c.DockerSpawner.network_name = env("XDPLAB_WORKSHOP_NETWORK") or "xdplab-workshop"
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.remove = True                  # a stopped server's container goes; its volume stays
c.DockerSpawner.volumes = {env("VOLUME") or "xdplab-workshop-{username}": "/opt/xdplab/work"}
c.DockerSpawner.read_only_volumes = {str(socket_dir): "/run/xdplab-hub"}
c.DockerSpawner.hub_connect_url = "http://127.0.0.1:8081"    # the container's end of sockbridge.py
c.DockerSpawner.mem_limit = mem_limit = env("MEM_LIMIT") or "2G"
c.DockerSpawner.cpu_limit = float(env("CPU_LIMIT") or 1)
# What the labs need (network namespaces, XDP, bpffs, sysctls): the capability and security-opt
# set of platforms/test_docker.py and the README's Docker section, not --privileged. DockerSpawner
# starts every container with one host configuration and cannot fall back when runc refuses
# --privileged ("unable to apply caps", where the host's root lacks CAP_SYS_RESOURCE, as on our
# machines); and this set gives the labs the same powers without handing every host device to
# the container. systempaths=unconfined is the Docker client's flag for empty MaskedPaths and
# ReadonlyPaths (a writable /proc/sys), which the API takes as such.
# memswap_limit equal to the memory limit: no swap beyond it, so a participant past the limit has
# one process stopped in their own container (and is told so: image/xdplab_limits.py) instead of
# swapping the machine every participant shares.
c.DockerSpawner.extra_host_config = {
    "cap_add": ["ALL"], "cap_drop": ["SYS_RESOURCE"],
    "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
    "memswap_limit": mem_limit,
}
c.DockerSpawner.extra_create_kwargs = {"host_config": {"MaskedPaths": [], "ReadonlyPaths": []}}
c.Spawner.default_url = "/lab/tree/notebooks/00-welcome.ipynb"
c.Spawner.start_timeout = 300                  # thirty containers starting at once, each a doctor
c.Spawner.http_timeout = 300

# -- services: the socket bridge, the idle culler, the instructor view ---------------------------
c.JupyterHub.services = [
    {"name": "hub-socket",
     "command": [python, str(HERE / "sockbridge.py"), f"unix:{socket_dir / 'hub.sock'}",
                 f"tcp:127.0.0.1:{hub_port}"]},
    {"name": "idle-culler",
     "command": [python, "-m", "jupyterhub_idle_culler", f"--timeout={int(env('IDLE_TIMEOUT') or 3600)}",
                 "--cull-every=60"]},
    {"name": "instructor", "display": True, "oauth_no_confirm": True,
     "url": f"http://127.0.0.1:{view_port}",
     "command": [python, str(HERE / "instructor.py")],
     "environment": {"XDPLAB_WORKSHOP_PROXY_URL": f"http://{proxy_here}:{port}",
                     "XDPLAB_WORKSHOP_PARTICIPANTS": ",".join(names),
                     "XDPLAB_WORKSHOP_COURSE": str(HERE.parents[1])}},
]
c.JupyterHub.load_roles = [
    {"name": "idle-culler", "services": ["idle-culler"],
     "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]},
    # the view reads each participant's progress through the participant's own server
    {"name": "instructor-view", "services": ["instructor"],
     "scopes": ["list:users", "read:users", "read:servers", "access:servers"]},
]
