"""The workshop's pure parts (env/workshop/, README "Workshops"), without a hub, Docker or root.

- progress_view.py: what the instructor view makes of a participant's progress.json and
  opened.json, read as xdplab itself writes them (xdplab.labs.progress.Progress writes the file
  these tests parse, so a change of its format shows here);
- accounts.py: participant names, the printed accounts, passwords kept across runs;
- the session recorder of the workshop image (image/xdplab_workshop_server.py), and its note to a
  participant past the memory limit (image/xdplab_limits.py), on cgroup v1 and v2 files;
- sockbridge.py: bytes both ways between a loopback port and a Unix socket;
- jupyterhub_config.py, loaded as the hub loads it: where everything listens, the container's
  capability set (the one platforms/test_docker.py proves), limits, volume, services and roles.
"""
import ast
import gc
import asyncio
import json
import sys
from pathlib import Path

import pytest
from traitlets.config import Config

from xdplab.labs.progress import Progress

ROOT = Path(__file__).resolve().parents[2]
WORKSHOP = ROOT / "env" / "workshop"
sys.path[:0] = [str(WORKSHOP), str(WORKSHOP / "image")]
import accounts  # noqa: E402
import progress_view as pv  # noqa: E402
import sockbridge  # noqa: E402
import xdplab_limits  # noqa: E402


# -- progress.json as xdplab writes it ---------------------------------------------------------
@pytest.fixture
def progress(tmp_path):
    return Progress(tmp_path / "progress.json")


def test_progress_written_by_xdplab_reads_back_as_it_says(progress):
    progress.record("03a-drop-by-port", passed=False)
    progress.record("03a-drop-by-port", passed=False)
    progress.record("02a-top-talkers", passed=True)
    labs, problems = pv.parse_progress(progress.path.read_text())
    assert problems == []
    status = progress.status()
    assert set(labs) == set(status)
    for lab, entry in status.items():
        assert labs[lab] == {k: entry[k] for k in ("done", "attempts", "hint_step", "done_at")}
    assert labs["03a-drop-by-port"]["hint_step"] == 2 and not labs["03a-drop-by-port"]["done"]


def test_no_file_is_no_progress_and_a_broken_one_says_why():
    assert pv.parse_progress(None) == ({}, [])
    labs, problems = pv.parse_progress("{not json")
    assert labs == {} and "not valid JSON" in problems[0]
    labs, problems = pv.parse_progress(json.dumps(
        {"labs": {"a": {"attempts": "3", "done": "yes"}, "b": 7, "c": {"attempts": 2, "hint_step": 1, "done": True}}}))
    assert labs["c"] == {"done": True, "attempts": 2, "hint_step": 1, "done_at": None}
    assert labs["a"]["attempts"] == 0 and labs["a"]["done"] is False
    assert any("attempts of lab 'a'" in p for p in problems)
    assert any("done of lab 'a'" in p for p in problems)
    assert any("lab 'b' is not a table" in p for p in problems)


# -- the last check's result, from two reads ----------------------------------------------------
def read(progress):
    return pv.parse_progress(progress.path.read_text())[0]


def test_a_failed_check_then_a_passed_one_are_told_apart(progress):
    progress.record("03a-drop-by-port", passed=False)
    before = read(progress)
    progress.record("03a-drop-by-port", passed=False)
    [check] = pv.last_checks(before, read(progress))
    assert (check.lab, check.result, check.hint_step) == ("03a-drop-by-port", pv.FAILED, 2)
    assert check.text() == "03a-drop-by-port: failed, hint 2"
    before = read(progress)
    progress.record("03a-drop-by-port", passed=True)
    [check] = pv.last_checks(before, read(progress))
    assert check.result == pv.PASSED and check.count == 1
    # and a passed lab checked again and failed: failed, although the lab stays done
    before = read(progress)
    progress.record("03a-drop-by-port", passed=False)
    [check] = pv.last_checks(before, read(progress))
    assert check.result == pv.FAILED and read(progress)["03a-drop-by-port"]["done"]


def test_several_checks_between_two_reads_say_what_is_known(progress):
    before = read(progress) if progress.path.exists() else {}
    progress.record("04a-port-rewrite", passed=False)
    progress.record("04a-port-rewrite", passed=True)
    progress.record("05a-router", passed=True)
    checks = {c.lab: c for c in pv.last_checks(before, read(progress))}
    assert checks["04a-port-rewrite"].result == pv.MIXED
    assert "1 passed, 1 failed, order not known" in checks["04a-port-rewrite"].text()
    assert checks["05a-router"].result == pv.PASSED


def test_no_new_check_and_a_reset_are_no_check(progress):
    progress.record("03a-drop-by-port", passed=False)
    same = read(progress)
    assert pv.last_checks(same, read(progress)) == []
    progress.reset("03a-drop-by-port")
    assert pv.last_checks(same, read(progress)) == []


def test_what_the_counts_alone_prove():
    def entry(attempts, hint, done):
        return {"attempts": attempts, "hint_step": hint, "done": done, "done_at": None}
    assert pv.settled_result(entry(0, 0, False)) is None
    assert pv.settled_result(entry(3, 0, True)) == pv.PASSED
    assert pv.settled_result(entry(2, 2, False)) == pv.FAILED
    assert pv.settled_result(entry(3, 2, True)) is None      # a pass and failures: order unknown


def test_a_participant_row_over_three_reads(progress, tmp_path):
    from xdplab_workshop_server import record
    opened = tmp_path / "opened.json"
    record("notebooks/01-hello-xdp.ipynb", opened, when="t0")
    record("labs/03a-drop-by-port/lab.ipynb", opened, when="t0")
    person = pv.Participant("p01", server="running")
    person.observe(None, opened.read_text(), "t1")            # no progress yet
    progress.record("03a-drop-by-port", passed=False)
    person.observe(progress.path.read_text(), opened.read_text(), "t2")
    record("notebooks/03-parsing.ipynb", opened, when="t3")
    progress.record("03a-drop-by-port", passed=True)
    person.observe(progress.path.read_text(), opened.read_text(), "t4")
    lessons = ["00-welcome", "01-hello-xdp", "02-maps", "03-parsing"]
    row = person.row(lessons, ["02a-top-talkers", "03a-drop-by-port"])
    assert row["lessons_opened"] == ["01-hello-xdp", "03-parsing"]
    assert row["labs_done"] == ["03a-drop-by-port"] and row["labs_total"] == 2
    assert [(c["lab"], c["result"], c["hint_step"]) for c in row["last_check"]] == \
        [("03a-drop-by-port", pv.PASSED, 1)]
    assert row["last_check_seen_at"] == "t4" and row["server"] == "running" and row["read_at"] == "t4"
    page = pv.page([row], "t4")
    assert "p01" in page and "1 of 2 done: 03a-drop-by-port" in page and "03a-drop-by-port: passed" in page


def test_the_first_read_shows_no_last_check_it_did_not_see(progress):
    progress.record("03a-drop-by-port", passed=False)
    person = pv.Participant("p02")
    person.observe(progress.path.read_text(), None, "t1")
    row = person.row([], ["03a-drop-by-port"])
    assert row["last_check"] == []
    assert row["labs_started"]["03a-drop-by-port"]["result"] == pv.FAILED


def test_the_page_escapes_what_participants_write(progress):
    person = pv.Participant("p03")
    person.observe(json.dumps({"labs": {"<script>x</script>": {"attempts": 1, "hint_step": 1}}}), None, "t")
    person.observe(json.dumps({"labs": {"<script>x</script>": {"attempts": 2, "hint_step": 2}}}), None, "t2")
    page = pv.page([person.row([], [])], "t2")
    assert "<script>x" not in page and "&lt;script&gt;x" in page


# -- the session recorder ------------------------------------------------------------------------
def test_the_recorder_keeps_the_first_time_and_survives_a_broken_file(tmp_path):
    from xdplab_workshop_server import record
    f = tmp_path / "progress" / "opened.json"
    assert record("notebooks/02-maps.ipynb", f, when="first")
    assert not record("notebooks/02-maps.ipynb", f, when="second")
    assert pv.parse_opened(f.read_text()) == {"notebooks/02-maps.ipynb": "first"}
    f.write_text("[broken")
    assert record("notebooks/03-parsing.ipynb", f, when="third")
    assert pv.parse_opened(f.read_text()) == {"notebooks/03-parsing.ipynb": "third"}


def test_the_session_manager_records_a_notebook_when_it_opens_or_is_renamed(tmp_path, monkeypatch):
    """As JupyterLab 4 opens a notebook: a session under a made-up path, then renamed."""
    import xdplab_workshop_server as server
    from jupyter_server.services.sessions.sessionmanager import SessionManager
    f = tmp_path / "opened.json"
    monkeypatch.setattr(server, "OPENED", f)

    async def created(self, **kw):
        return {"id": "s1", "path": kw["path"]}

    async def updated(self, session_id, **kw):
        return None
    monkeypatch.setattr(SessionManager, "create_session", created)
    monkeypatch.setattr(SessionManager, "update_session", updated)
    manager = server.RecordingSessionManager.__new__(server.RecordingSessionManager)

    async def open_like_jupyterlab():
        await manager.create_session(path="notebooks/1d5dbf17-4ea7-4248", type="notebook")
        assert not f.exists()                       # the made-up path is no notebook
        await manager.update_session("s1", path="notebooks/02-maps.ipynb")
        await manager.update_session("s1", name="renamed only")
        await manager.create_session(path="labs/03a-drop-by-port/lab.ipynb", type="notebook")
    asyncio.run(open_like_jupyterlab())
    assert set(pv.parse_opened(f.read_text())) == {"notebooks/02-maps.ipynb",
                                                   "labs/03a-drop-by-port/lab.ipynb"}


# -- accounts -------------------------------------------------------------------------------------
def test_participants_from_a_number_or_names():
    assert accounts.participants("3") == ["p01", "p02", "p03"]
    assert accounts.participants("120")[-1] == "p120"
    assert accounts.participants(" ana, ben  carl-2 ") == ["ana", "ben", "carl-2"]


@pytest.mark.parametrize("spec, says", [
    ("", "PARTICIPANTS is empty"), ("0", "from 1 to 200"), ("201", "from 1 to 200"),
    ("ana,Bob", "'Bob' is not a valid participant name"), ("ana,-x", "'-x' is not a valid"),
    ("ana,x-", "'x-' is not a valid"), ("ana,b_c", "'b_c' is not a valid"),
    ("a" * 33, "is not a valid"), ("ana,instructor", "the instructor's account"),
    ("ana,ben,ana", "given twice: ana")])
def test_names_that_cannot_work_are_refused_in_plain_words(spec, says):
    with pytest.raises(accounts.BadInput, match=None) as e:
        accounts.participants(spec)
    assert says in str(e.value)


def test_accounts_are_made_once_printed_and_kept(tmp_path):
    store = accounts.Accounts(tmp_path / "state")
    sheet = store.ensure(["p01", "p02"])
    first = dict(line.split() for line in sheet.splitlines())
    assert set(first) == {"instructor", "p01", "p02"} and len(set(first.values())) == 3
    stored = json.loads(store.file.read_text())["accounts"]
    assert all(accounts.check_password(first[n], stored[n]) for n in first)
    assert not accounts.check_password(first["p02"], stored["p01"])
    assert first["p01"] not in store.file.read_text()            # hashes only
    assert oct(store.file.stat().st_mode & 0o777) == oct(store.sheet.stat().st_mode & 0o777) == "0o600"
    again = dict(line.split() for line in store.ensure(["p01", "p02", "p03"]).splitlines())
    assert {n: again[n] for n in first} == first and "p03" in again
    fewer = dict(line.split() for line in store.ensure(["p02"], "chosen").splitlines())
    assert fewer == {"instructor": "chosen", "p02": first["p02"]}


# -- the launcher's checks (workshop.py): ports and Docker, before anything starts -------------
def test_a_taken_port_is_named_with_the_way_out():
    import socket
    import workshop
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        with pytest.raises(accounts.BadInput, match=f"port {taken} on 127.0.0.1 \\(the hub's API\\) is taken"):
            workshop.check_ports("127.0.0.1", taken - 1)
        with pytest.raises(accounts.BadInput, match=f"PORT={taken + 10}"):
            workshop.check_ports("127.0.0.1", taken)
    with pytest.raises(accounts.BadInput, match="not a port number"):
        workshop.port("99999")


def fake_docker(tmp_path, info=0, image=0):
    """A docker command whose `info` and `image inspect` exit with the codes given."""
    f = tmp_path / "docker"
    f.write_text(f"#!/bin/sh\ncase \"$1\" in info) echo 'Cannot connect' >&2; exit {info};; "
                 f"image) exit {image};; esac\nexit 0\n")
    f.chmod(0o755)
    return str(f)


def test_docker_missing_stopped_or_without_the_image_says_what_to_do(tmp_path):
    import workshop
    with pytest.raises(accounts.BadInput, match="Docker is not installed.*apt-get install docker.io"):
        workshop.check_docker(str(tmp_path / "no-such-docker"), "xdplab")
    with pytest.raises(accounts.BadInput, match="does not answer.*Cannot connect.*systemctl start docker"):
        workshop.check_docker(fake_docker(tmp_path, info=1), "xdplab")
    with pytest.raises(accounts.BadInput, match="there is no image 'xdplab': build it first with `make image`"):
        workshop.check_docker(fake_docker(tmp_path, image=1), "xdplab")
    workshop.check_docker(fake_docker(tmp_path), "xdplab")        # all there: no complaint


# -- sockbridge ------------------------------------------------------------------------------------
def test_sockbridge_parses_and_listens_on_the_loopback_only():
    assert sockbridge.parse("tcp:127.0.0.1:8081") == ("tcp", "127.0.0.1", 8081)
    assert sockbridge.parse("unix:/run/x.sock") == ("unix", "/run/x.sock")
    with pytest.raises(SystemExit):
        sockbridge.parse("tcp:8081")
    with pytest.raises(SystemExit, match="loopback only"):
        asyncio.run(asyncio.wait_for(
            sockbridge.serve(("tcp", "0.0.0.0", 0), ("unix", "/nonexistent")), 5))


def test_sockbridge_carries_bytes_both_ways(tmp_path):
    sock = str(tmp_path / "up.sock")

    async def main():
        async def echo(reader, writer):
            data = await reader.read(100)
            writer.write(data.upper())
            await writer.drain()
            writer.close()
        upstream = await asyncio.start_unix_server(echo, sock)
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        bridge = asyncio.create_task(sockbridge.serve(("tcp", "127.0.0.1", port), ("unix", sock)))
        for _ in range(100):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.02)
        writer.write(b"hello hub")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(100), 5)
        writer.close()
        bridge.cancel()
        upstream.close()
        return answer
    assert asyncio.run(main()) == b"HELLO HUB"


# -- the hub's configuration ------------------------------------------------------------------------
def load_config(monkeypatch, tmp_path, **env):
    for k in ("HOST", "MEM_LIMIT", "CPU_LIMIT", "VOLUME", "IDLE_TIMEOUT"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("XDPLAB_WORKSHOP_STATE", str(tmp_path / "state"))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    c = Config()
    path = WORKSHOP / "jupyterhub_config.py"
    exec(compile(path.read_text(), str(path), "exec"), {"get_config": lambda: c, "__file__": str(path)})
    return c


def parse(path):
    """ast.parse with the garbage collector off. Debian 12's Python 3.11.2 miscounts the AST
    constructor's recursion depth now and then and raises "SystemError: AST constructor recursion
    depth mismatch" (CPython gh-106905): here, in every full run of tests/unit (after a module
    that imports scapy), never with the collector off while the tree is built."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(path.read_text())
    finally:
        if enabled:
            gc.enable()


def nearly_privileged():
    """platforms/test_docker.py's NEARLY_PRIVILEGED, the flags proven there, as written there."""
    tree = parse(ROOT / "platforms" / "test_docker.py")
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "NEARLY_PRIVILEGED":
            return ast.literal_eval(node.value)
    raise AssertionError("platforms/test_docker.py has no NEARLY_PRIVILEGED")


def test_the_hub_listens_on_the_loopback_and_runs_three_services(monkeypatch, tmp_path):
    c = load_config(monkeypatch, tmp_path, PARTICIPANTS="3", PORT="9000")
    assert c.JupyterHub.bind_url == "http://127.0.0.1:9000"
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:9001"
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:9002"
    assert c.Authenticator.allowed_users == {"p01", "p02", "p03"}
    assert c.Authenticator.admin_users == {"instructor"}
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert set(services) == {"hub-socket", "idle-culler", "instructor"}
    assert services["instructor"]["url"] == "http://127.0.0.1:9003"
    assert services["hub-socket"]["command"][-1] == "tcp:127.0.0.1:9001"
    assert "--timeout=3600" in services["idle-culler"]["command"]
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert "access:servers" in roles["instructor-view"]["scopes"]
    assert "delete:servers" in roles["idle-culler"]["scopes"]


def test_the_containers_get_the_proven_capability_set_limits_and_a_volume(monkeypatch, tmp_path):
    c = load_config(monkeypatch, tmp_path, PARTICIPANTS="ana,ben", MEM_LIMIT="3G", CPU_LIMIT="1.5",
                    VOLUME="room-{username}", IDLE_TIMEOUT="600")
    flags = nearly_privileged()
    pairs = list(zip(flags[::2], flags[1::2]))
    host = c.DockerSpawner.extra_host_config
    assert host["cap_add"] == [v for k, v in pairs if k == "--cap-add"]
    assert host["cap_drop"] == [v for k, v in pairs if k == "--cap-drop"]
    opts = [v for k, v in pairs if k == "--security-opt"]
    assert host["security_opt"] == [o for o in opts if o != "systempaths=unconfined"]
    assert "systempaths=unconfined" in opts        # which the Docker API takes as:
    assert c.DockerSpawner.extra_create_kwargs["host_config"] == {"MaskedPaths": [], "ReadonlyPaths": []}
    assert "privileged" not in host
    assert c.DockerSpawner.network_name == "xdplab-workshop" and c.DockerSpawner.use_internal_ip
    assert (c.DockerSpawner.mem_limit, c.DockerSpawner.cpu_limit) == ("3G", 1.5)
    assert host["memswap_limit"] == "3G"           # no swap past the limit
    assert c.DockerSpawner.volumes == {"room-{username}": "/opt/xdplab/work"}
    assert c.DockerSpawner.read_only_volumes == {str(tmp_path / "state" / "run"): "/run/xdplab-hub"}
    assert "--timeout=600" in {s["name"]: s for s in c.JupyterHub.services}["idle-culler"]["command"]


def test_a_room_address_elsewhere_keeps_the_services_on_the_loopback(monkeypatch, tmp_path):
    c = load_config(monkeypatch, tmp_path, PARTICIPANTS="2", HOST="0.0.0.0", PORT="8000")
    assert c.JupyterHub.bind_url == "http://0.0.0.0:8000"
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:8001"
    env = {s["name"]: s for s in c.JupyterHub.services}["instructor"]["environment"]
    assert env["XDPLAB_WORKSHOP_PROXY_URL"] == "http://127.0.0.1:8000"


def test_the_config_refuses_a_bad_participant_list(monkeypatch, tmp_path):
    with pytest.raises(accounts.BadInput, match="not a valid participant name"):
        load_config(monkeypatch, tmp_path, PARTICIPANTS="ok,Not OK")


# -- a participant past the memory limit (image/xdplab_limits.py) --------------------------------
def cgroup(tmp_path, version, kills, limit):
    """A container's cgroup files as the container sees them, v2 (unified) or v1."""
    root = tmp_path / f"cgroup-v{version}"
    if version == 2:
        root.mkdir(parents=True)
        (root / "memory.events").write_text(f"low 0\nhigh 0\nmax 12\noom 3\noom_kill {kills}\noom_group_kill 0\n")
        (root / "memory.max").write_text(f"{limit if limit else 'max'}\n")
    else:
        (root / "memory").mkdir(parents=True)
        (root / "memory" / "memory.oom_control").write_text(f"oom_kill_disable 0\nunder_oom 0\noom_kill {kills}\n")
        (root / "memory" / "memory.limit_in_bytes").write_text(f"{limit or 9223372036854771712}\n")
    return root


@pytest.mark.parametrize("version", [1, 2])
def test_a_kill_for_memory_is_told_once_with_the_limit(tmp_path, version):
    seen = tmp_path / "seen"
    root = cgroup(tmp_path, version, kills=0, limit=2 << 30)
    assert xdplab_limits.oom_kills(root) == 0 and xdplab_limits.memory_limit(root) == 2 << 30
    assert xdplab_limits.news(root, seen) is None            # a kernel starts: nothing happened
    root = cgroup(tmp_path / "later", version, kills=1, limit=2 << 30)
    text = xdplab_limits.news(root, seen)                    # the next kernel, after a kill
    assert "stopped (once)" in text and "2.0 GB" in text and "Shut Down" in text
    assert "not affected" in text
    assert xdplab_limits.news(root, seen) is None            # the kernel after that: said already
    root = cgroup(tmp_path / "again", version, kills=3, limit=None)
    text = xdplab_limits.news(root, seen)
    assert "stopped (2 times)" in text and "its memory limit" in text


def test_a_new_container_counts_from_zero_and_no_cgroup_says_nothing(tmp_path):
    seen = tmp_path / "seen"
    seen.write_text("5")                                     # left from nothing: /tmp is the container's
    assert xdplab_limits.news(cgroup(tmp_path, 2, kills=1, limit=1 << 30), seen) is None
    assert xdplab_limits.news(tmp_path / "nothing-here", seen) is None
    seen.write_text("garbage")
    assert "stopped (once)" in xdplab_limits.news(cgroup(tmp_path / "b", 1, kills=1, limit=1 << 30), seen)


def test_the_note_comes_with_the_first_cell_only(tmp_path, capsys):
    class Events:
        def __init__(self):
            self.callbacks = []

        def register(self, event, f):
            assert event == "pre_run_cell"
            self.callbacks.append(f)

        def unregister(self, event, f):
            self.callbacks.remove(f)

    class Shell:
        events = Events()
    root = cgroup(tmp_path, 2, kills=1, limit=2 << 30)
    xdplab_limits.register(Shell, root, tmp_path / "seen")
    assert len(Shell.events.callbacks) == 1 and capsys.readouterr().out == ""   # nothing at start
    for f in list(Shell.events.callbacks):
        f(object())                                                 # the first cell runs
    assert "used all its memory" in capsys.readouterr().out
    assert Shell.events.callbacks == []                             # and never again
    xdplab_limits.register(Shell, root, tmp_path / "seen")          # another kernel: said already
    assert Shell.events.callbacks == []
