"""A workshop run on this machine (README, "Workshops"; issue 14, item 4): `make workshop` as an
instructor starts it, with three participants.

The Docker engine and the xdplab image come from platforms/test_docker.py's fixtures (the engine
started as there, without a bridge or iptables rules, and stopped afterwards; the image built by
env/image.sh). Then env/workshop/run.sh, as `sudo make workshop PARTICIPANTS=... PORT=...` runs
it, in the background; and then, as the room would:

- each participant signs in through the hub's REST API (a token from their name and password),
  one of them also through the login page in headless Chromium, which opens JupyterLab;
- their servers start (one container each), a lesson is opened, and a lab check runs in each
  container at the same time: a pass, a failure, another lab's pass; their labs never collide;
- the instructor view (as the instructor, through the hub) has three rows with those states,
  and a participant may not see it;
- one participant goes past the memory limit: one kernel is stopped in that container only, the
  next kernel says so in plain words, every server goes on;
- one participant's container is killed in the middle of a lab: the hub and the other two go on
  (a check runs again), and that participant's lab namespaces are gone from the machine;
- the hub is stopped as Ctrl-C stops it: no container, network, volume, hub or proxy process is
  left, and neither is the engine we started.

test_the_hub_and_the_instructor_view_with_local_servers runs the same hub configuration with the
participants' servers as processes of this machine instead of containers (no Docker, no lab: the
checks' results are written as `xdplab check` writes them): REST and browser sign-in, the socket
bridge to the hub's API, the session recorder, the instructor view's rows read through each
server, a server killed, the hub stopped and nothing of it left. About a minute.

Run: sudo .venv/bin/python -m pytest -p no:cacheprovider platforms/test_workshop.py
(heavy: the image build takes minutes; not part of `make test`). Only the local one:
... -k local_servers
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "env" / "workshop"))
from test_docker import ARTIFACTS, DOCKER, base, docker, engine, image  # noqa: F401,E402  (fixtures)
import accounts  # noqa: E402  (env/workshop/accounts.py)
from dockerenv import stop  # noqa: E402
from room import (INSTRUCTOR_PASSWORD, NETWORK, container, free_port_block, http,  # noqa: E402
                  hub_processes, room, server_ready, start_servers, token_for, until)

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
NAMES = ["wsa", "wsb", "wsc"]                 # A passes, B fails, C is killed mid-lab


def ours():
    """What a workshop of this test may leave: containers, networks, volumes, processes."""
    names = docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    networks = docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    volumes = docker("volume", "ls", "--format", "{{.Name}}").stdout.split()
    procs = hub_processes()
    return {"containers": [n for n in names if any(n == f"xdplab-workshop-{u}" for u in NAMES)],
            "networks": [n for n in networks if n == NETWORK],
            "volumes": [v for v in volumes if v.startswith("xdplab-workshop-test-")],
            "processes": procs}


def net_namespaces_alive():
    """The inode of every network namespace this machine still holds: of a process, or bound
    to a path (a lab's /run/netns/... in any mount namespace)."""
    alive = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            alive.add(os.stat(proc / "ns" / "net").st_ino)
            alive |= {int(m) for m in re.findall(r"net:\[(\d+)\]", (proc / "mountinfo").read_text())}
        except OSError:
            continue
    return alive


@pytest.fixture
def hub(image, tmp_path_factory):
    """`make workshop` with three participants, in the background; stopped as Ctrl-C stops it."""
    assert not any(ours().values()), f"left from before: {ours()}"
    with room(NAMES, image, tmp_path_factory.mktemp("workshop-state")) as started:
        yield started


def rows(hub, token):
    status, answer = http(f"{hub['url']}/services/instructor/api/rows", token=token)
    assert status == 200, f"the instructor view: {status} {str(answer)[:500]}"
    return {r["name"]: r for r in answer["rows"]}


def check_in(name, lab, program):
    return subprocess.Popen([DOCKER, "exec", container(name), ".venv/bin/python", "-m", "xdplab",
                             "check", lab, "--program", program],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.timeout(3600)
def test_a_workshop_of_three(hub):
    url, sheet = hub["url"], hub["sheet"]
    assert set(sheet) == {"instructor", *NAMES} and sheet["instructor"] == INSTRUCTOR_PASSWORD

    # a wrong password is refused; each participant signs in through the REST API
    status, _ = http(f"{url}/hub/api/users/wsa/tokens", "POST",
                     body={"auth": {"username": "wsa", "password": "wrong"}})
    assert status == 403
    tokens = {n: token_for(hub, n, sheet[n]) for n in NAMES}
    teacher = token_for(hub, "instructor", sheet["instructor"])

    # their servers start, one container each, in its own network namespace, with the limits
    start_servers(hub, tokens)
    netns = {}
    for n in NAMES:
        info = json.loads(docker("inspect", container(n)).stdout)[0]
        assert info["HostConfig"]["NetworkMode"] == NETWORK
        assert info["HostConfig"]["Memory"] == 2 * 1024 ** 3
        assert (info["HostConfig"]["CpuQuota"], info["HostConfig"]["CpuPeriod"]) == (100000, 100000)
        pid = info["State"]["Pid"]
        netns[n] = os.stat(f"/proc/{pid}/ns/net").st_ino
    assert len(set(netns.values())) == 3 and os.stat("/proc/self/ns/net").st_ino not in netns.values()
    listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True).stdout
    for port in range(hub["port"], hub["port"] + 4):
        addrs = [line.split()[3] for line in listening.splitlines() if line.split()[3].endswith(f":{port}")]
        assert addrs == [f"127.0.0.1:{port}"], f"port {port} listens on {addrs}"

    # a participant may not see the instructor view
    status, _ = http(f"{url}/services/instructor/api/rows", token=tokens["wsa"])
    assert status == 403

    # the view has read each one once before the checks (a check's result is a change)
    until("the view read every participant", lambda: all(
        r["read_at"] and r["server"] == "running" for r in rows(hub, teacher).values())
        and len(rows(hub, teacher)) == 3, 120)

    # wsa opens lesson 01 (a session, as JupyterLab makes one); wsb signs in in the browser
    status, session = http(f"{url}/user/wsa/api/sessions", "POST", token=tokens["wsa"],
                           body={"path": "notebooks/01-hello-xdp.ipynb", "type": "notebook",
                                 "name": "01-hello-xdp.ipynb", "kernel": {"name": "xdplab"}})
    assert status == 201, f"opening lesson 01: {status} {session}"
    browser_sign_in(url, "wsb", sheet["wsb"])

    # three checks at the same time, one in each container
    checks = {"wsa": check_in("wsa", "03a", "labs/03a-drop-by-port/solution.c"),
              "wsb": check_in("wsb", "03a", "labs/03a-drop-by-port/wrong/source-port.c"),
              "wsc": check_in("wsc", "02a", "labs/02a-top-talkers/solution.c")}
    out = {n: p.communicate(timeout=900)[0] for n, p in checks.items()}
    codes = {n: p.returncode for n, p in checks.items()}
    assert codes["wsa"] == 0 and codes["wsc"] == 0 and codes["wsb"] != 0, \
        {n: (codes[n], out[n][-1500:]) for n in NAMES}

    def seen():
        table = rows(hub, teacher)
        return table if all(table[n]["last_check"] for n in NAMES) and \
            "01-hello-xdp" in table["wsa"]["lessons_opened"] and \
            "00-welcome" in table["wsb"]["lessons_opened"] else None
    table = until("the view shows every check", seen, 120)
    (ARTIFACTS / "workshop-rows.json").write_text(json.dumps(table, indent=1))
    a, b, c = (table[n] for n in NAMES)
    assert a["labs_done"] == ["03a-drop-by-port"]
    assert [(x["lab"], x["result"], x["hint_step"]) for x in a["last_check"]] == [("03a-drop-by-port", "passed", 0)]
    assert b["labs_done"] == [] and b["labs_started"]["03a-drop-by-port"]["hint_step"] == 1
    assert [(x["lab"], x["result"], x["hint_step"]) for x in b["last_check"]] == [("03a-drop-by-port", "failed", 1)]
    assert c["labs_done"] == ["02a-top-talkers"] and c["last_check"][0]["result"] == "passed"
    assert b["lessons_opened"] == ["00-welcome"] and a["lessons_opened"] == ["01-hello-xdp"]
    http(f"{url}/user/wsa/api/sessions/{session['id']}", "DELETE", token=tokens["wsa"])

    # wsb goes past the memory limit: one kernel is stopped in wsb's container, nothing else; the
    # next kernel wsb starts says what happened at its first cell
    oom = {n: oom_kills(n) for n in NAMES}
    past = docker("exec", container("wsb"), ".venv/bin/python", "-c", PAST_THE_LIMIT, check=False, timeout=900)
    assert "KERNEL STOPPED" in past.stdout, past.stdout[-3000:] + past.stderr[-3000:]
    told = past.stdout.split("KERNEL STOPPED", 1)[1]
    assert "used all its memory: 2.0 GB" in told and "Shut Down" in told, told
    assert "2" in told.split("FIRST CELL", 1)[1]                      # the cell itself ran too
    assert oom_kills("wsb") > oom["wsb"] and all(oom_kills(n) == oom[n] for n in ("wsa", "wsc"))
    for n in NAMES:
        assert server_ready(hub, n, tokens[n]), f"{n}'s server went when wsb went past the limit"
    assert http(f"{url}/user/wsb/api/status", token=tokens["wsb"])[0] == 200

    # wsc's container is killed in the middle of a lab
    holder = subprocess.Popen([DOCKER, "exec", container("wsc"), ".venv/bin/python", "-c",
                               "import time, xdplab\nlab = xdplab.Lab.pair()\nprint('LAB UP', flush=True)\n"
                               "time.sleep(600)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "LAB UP"
    inodes = docker("exec", container("wsc"), "sh", "-c", "stat -L -c %i /run/netns/xl-*").stdout.split()
    lab_netns = {int(i) for i in inodes}
    assert len(lab_netns) == 2 and lab_netns <= net_namespaces_alive()
    docker("kill", container("wsc"))
    holder.wait(timeout=60)
    until("wsc's lab namespaces are gone", lambda: not (lab_netns | {netns["wsc"]}) & net_namespaces_alive(), 60)
    until("the hub sees wsc's server stopped", lambda: not server_ready(hub, "wsc", tokens["wsc"]), 120)

    # the hub and the other two go on
    assert http(f"{url}/hub/api/", token=teacher)[0] == 200
    for n in ("wsa", "wsb"):
        assert server_ready(hub, n, tokens[n]), f"{n}'s server went with wsc's"
        assert http(f"{url}/user/{n}/api/status", token=tokens[n])[0] == 200
    again = check_in("wsa", "03a", "labs/03a-drop-by-port/solution.c")
    assert again.wait(timeout=900) == 0, again.stdout.read()[-1500:]
    until("the view has wsc stopped and wsa's new check",
          lambda: (t := rows(hub, teacher))["wsc"]["server"] == "not started"
          and t["wsa"]["last_check_seen_at"] > table["wsa"]["last_check_seen_at"]
          and t["wsa"]["last_check"][0]["result"] == "passed", 120)


# In a participant's container: a kernel of the xdplab kernelspec (as JupyterLab starts it) takes
# 3 GB of a 2 GB container and is stopped; the next kernel's first cell shows the note of
# image/xdplab_limits.py, then its own result.
PAST_THE_LIMIT = """
import time
from jupyter_client.manager import KernelManager
def kernel():
    km = KernelManager(kernel_name="xdplab")
    km.start_kernel(cwd="notebooks")
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=300)
    return km, kc
km, kc = kernel()
kc.execute("x = b'x' * (3 << 30)")
deadline = time.monotonic() + 300
while km.is_alive() and time.monotonic() < deadline:
    time.sleep(0.5)
if km.is_alive():
    raise SystemExit("the kernel past the limit is still alive")
km.cleanup_resources()
km, kc = kernel()
said = []
kc.execute_interactive("print('FIRST CELL', 1 + 1)", timeout=120,
                       output_hook=lambda m: said.append(m["content"].get("text", "")))
print("KERNEL STOPPED", "".join(said))
km.shutdown_kernel(now=True)
"""


def oom_kills(name):
    """OOM kills so far in a participant's container (its memory cgroup, v2 or v1)."""
    text = docker("exec", container(name), "sh", "-c", "cat /sys/fs/cgroup/memory.events "
                  "/sys/fs/cgroup/memory/memory.oom_control 2>/dev/null", check=False).stdout
    found = re.search(r"^oom_kill (\d+)$", text, re.M)
    assert found, f"no OOM count in {name}'s container: {text!r}"
    return int(found.group(1))


def browser_sign_in(url, name, password):
    """The login page in headless Chromium, as a participant uses it; JupyterLab opens on the
    welcome lesson (which records it as opened)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no {CHROMIUM} for the browser sign-in")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page()
        try:
            page.goto(f"{url}/hub/login")
            page.fill("#username_input", name)
            page.fill("#password_input", password)
            page.click("#login_submit")
            page.wait_for_url(re.compile(rf".*/user/{name}/lab.*"), timeout=120_000)
            page.get_by_text("Python (xdplab) | Idle").first.wait_for(timeout=180_000)
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "workshop-browser.png"))
            raise
        finally:
            browser.close()


# -- the same hub without Docker: the participants' servers as processes of this machine --------
LOCAL = ["lpa", "lpb"]


@pytest.fixture
def local_hub(tmp_path):
    """env/workshop/jupyterhub_config.py as it is, with one change: the participants' servers are
    processes here (JupyterHub's SimpleLocalProcessSpawner) instead of containers, each in a
    folder laid out as the workshop image's /opt/xdplab, reaching the hub's API through
    sockbridge.py and the Unix socket as a container does. Needs no Docker and makes no lab: the
    checks' results are written as `xdplab check` writes them (Progress.record)."""
    subprocess.run(["bash", str(ROOT / "env" / "workshop" / "install.sh")], check=True, timeout=900)
    cache = ROOT / ".cache" / "workshop" if not os.environ.get("XDPLAB_CACHE") else \
        Path(os.environ["XDPLAB_CACHE"]) / "workshop"
    # the learner's .venv plus jupyterhub-singleuser at the hub's version, as in the image
    venv = tmp_path / "singleuser"
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    (venv / "lib" / "python3.11" / "site-packages" / "xdplab-venv.pth").write_text(
        str(ROOT / ".venv" / "lib" / "python3.11" / "site-packages") + "\n")
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "jupyterhub==6.1.1", "-c",
                    str(ROOT / "env" / "workshop" / "requirements.txt")], check=True, timeout=600,
                   capture_output=True)
    homes, state = tmp_path / "homes", tmp_path / "state"
    for n in LOCAL:
        (homes / n / "work" / "progress").mkdir(parents=True)
        shutil.copytree(ROOT / "notebooks", homes / n / "work" / "notebooks")
        (homes / n / "notebooks").symlink_to("work/notebooks")
    (state / "run").mkdir(parents=True)
    port = free_port_block()
    bridge_port = next(p for p in iter(free_port_block, None) if not port <= p <= port + 3)
    config = tmp_path / "local_config.py"
    config.write_text(f"""
load_subconfig({str(ROOT / "env" / "workshop" / "jupyterhub_config.py")!r})
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(homes)!r} + "/{{username}}"
c.Spawner.cmd = [{str(venv / "bin" / "jupyterhub-singleuser")!r}]
c.Spawner.args = ["--allow-root",
                  "--ServerApp.session_manager_class=xdplab_workshop_server.RecordingSessionManager",
                  "--ContentsManager.hide_globs=['work']"]
c.Spawner.environment = {{
    "PYTHONPATH": {str(ROOT / "env" / "workshop" / "image")!r},
    "JUPYTER_PATH": {str(ROOT / ".venv" / "share" / "jupyter")!r},           # kernels, JupyterLab
    "JUPYTER_CONFIG_PATH": {str(ROOT / ".venv" / "etc" / "jupyter")!r},     # its server extension
    "XDPLAB_WORKSHOP_OPENED": lambda s: {str(homes)!r} + f"/{{s.user.name}}/work/progress/opened.json"}}
c.Spawner.hub_connect_url = "http://127.0.0.1:{bridge_port}"
""")
    accounts_sheet = accounts.Accounts(state).ensure(LOCAL, INSTRUCTOR_PASSWORD)
    sheet = dict(line.split() for line in accounts_sheet.splitlines())
    env = {**os.environ, "PARTICIPANTS": ",".join(LOCAL), "PORT": str(port), "HOST": "127.0.0.1",
           "XDPLAB_WORKSHOP_STATE": str(state), "XDPLAB_WORKSHOP_CACHE": str(cache),
           "XDPLAB_WORKSHOP_POLL": "2"}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / "workshop-local-hub.log", "w")
    procs = [subprocess.Popen([str(cache / "venv" / "bin" / "jupyterhub"), "-f", str(config)], cwd=state,
                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                              preexec_fn=default_signals),
             subprocess.Popen(["python3", str(ROOT / "env" / "workshop" / "sockbridge.py"),
                               f"tcp:127.0.0.1:{bridge_port}", f"unix:{state / 'run' / 'hub.sock'}"],
                              start_new_session=True)]
    url = f"http://127.0.0.1:{port}"
    try:
        until("the hub answers", lambda: procs[0].poll() is None and http(f"{url}/hub/api/", timeout=5)[0] == 200
              or procs[0].poll() is not None, 120)
        assert procs[0].poll() is None, (ARTIFACTS / "workshop-local-hub.log").read_text()[-3000:]
        yield {"url": url, "port": port, "sheet": sheet, "homes": homes, "hub": procs[0]}
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            stop(p)
        log.close()


def default_signals():
    for sig in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)


@pytest.mark.timeout(1800)
def test_the_hub_and_the_instructor_view_with_local_servers(local_hub):
    from xdplab.labs.progress import Progress
    hub, url, sheet = local_hub, local_hub["url"], local_hub["sheet"]
    a, b = LOCAL
    assert http(f"{url}/hub/api/users/{a}/tokens", "POST",
                body={"auth": {"username": a, "password": "wrong"}})[0] == 403
    tokens = {n: token_for(hub, n, sheet[n]) for n in (*LOCAL, "instructor")}
    teacher = tokens["instructor"]
    start_servers(hub, {n: tokens[n] for n in LOCAL}, timeout=180)
    assert http(f"{url}/services/instructor/api/rows", token=tokens[a])[0] == 403
    until("the view read both", lambda: len(t := rows(hub, teacher)) == 2 and all(
        r["read_at"] for r in t.values()), 60)

    status, session = http(f"{url}/user/{a}/api/sessions", "POST", token=tokens[a],
                           body={"path": "notebooks/01-hello-xdp.ipynb", "type": "notebook",
                                 "name": "01-hello-xdp.ipynb", "kernel": {"name": "xdplab"}})
    assert status == 201, (status, session)
    browser_sign_in(url, b, sheet[b])
    Progress(hub["homes"] / a / "work" / "progress" / "progress.json").record("03a-drop-by-port", passed=True)
    Progress(hub["homes"] / b / "work" / "progress" / "progress.json").record("03a-drop-by-port", passed=False)

    def seen():
        t = rows(hub, teacher)
        return t if all(t[n]["last_check"] for n in LOCAL) and t[a]["lessons_opened"] and \
            t[b]["lessons_opened"] else None
    table = until("the view shows both checks", seen, 90)
    (ARTIFACTS / "workshop-local-rows.json").write_text(json.dumps(table, indent=1))
    assert table[a]["lessons_opened"] == ["01-hello-xdp"] and table[b]["lessons_opened"] == ["00-welcome"]
    assert table[a]["labs_done"] == ["03a-drop-by-port"] and table[a]["labs_total"] == 11
    assert [(c["lab"], c["result"], c["hint_step"]) for c in table[a]["last_check"]] == [("03a-drop-by-port", "passed", 0)]
    assert [(c["lab"], c["result"], c["hint_step"]) for c in table[b]["last_check"]] == [("03a-drop-by-port", "failed", 1)]
    assert http(f"{url}/user/{a}/api/sessions/{session['id']}", "DELETE", token=tokens[a])[0] == 204

    # b's server dies: the hub notices, the view says so, a goes on
    pid = next(int(p.split()[0]) for p in hub_processes() if "jupyterhub-singleuser" in p
               and f"JUPYTERHUB_USER={b}" in Path(f"/proc/{p.split()[0]}/environ").read_bytes().replace(b"\0", b" ").decode())
    os.kill(pid, signal.SIGKILL)
    until(f"the view has {b} stopped", lambda: rows(hub, teacher)[b]["server"] == "not started", 120)
    assert server_ready(hub, a, tokens[a]) and http(f"{url}/user/{a}/api/status", token=tokens[a])[0] == 200

    # stopped as Ctrl-C stops make workshop: the hub ends its services, servers and proxy
    hub["hub"].send_signal(signal.SIGTERM)
    hub["hub"].wait(timeout=60)
    until("no hub process is left", lambda: not [p for p in hub_processes() if "sockbridge.py tcp:" not in p], 30)
    listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True).stdout
    assert not [line for line in listening.splitlines()
                if any(line.split()[3].endswith(f":{p}") for p in range(hub["port"], hub["port"] + 4))]


def test_nothing_of_the_workshop_is_left(engine):
    """After the workshop's test (its hub stopped as Ctrl-C stops it, its volumes removed): no
    container, network, volume or process of it. The engine, if this module started it, is
    stopped by the engine fixture, which checks that too."""
    left = ours()
    assert not any(left.values()), left
