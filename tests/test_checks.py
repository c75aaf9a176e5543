"""The lab checks (xdplab.checks), their hints and the progress store (xdplab.progress), on a small
lab of the test's own: real programs loaded into a real lab, judged by real BPF_PROG_TEST_RUN."""
import dataclasses
import json
import os
import pwd

import pytest

import xdplab
from xdplab import checks, cli, progress
from xdplab.progress import Progress

CHECK = '''
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from xdplab.checks import case, verdict

TITLE = "Drop port 53"
HINTS = ["first nudge", "closer", "closest"]
CASES = [verdict("UDP to port 53 from 10.11.0.1", Ether() / IP(src="10.11.0.1") / UDP(dport=53), "drop"),
         verdict("UDP to port 54 from 10.11.0.1", Ether() / IP(src="10.11.0.1") / UDP(dport=54), "pass",
                 hidden=True, about="UDP to a port next to the blocked one")]

@case("the program is attached to the server")
def attached(t):
    mode, prog_id = t.server.iface().xdp()
    assert prog_id, "nothing is attached to the server"
    return f"the program runs on the server in {mode} mode"

@case("UDP to three random ports", hidden=True, about="UDP to random ports")
def random_ports(t):
    ports = [t.rng.randrange(1000, 60000) for _ in range(3)]
    for n, port in enumerate(ports):
        t.expect(f"UDP to port {port}", Ether() / IP(src="10.11.0.1") / UDP(dport=port), "pass",
                 about=f"UDP to random port number {n + 1}")
    return "UDP to ports " + ", ".join(map(str, ports)) + " was passed"
'''
PROGRAM = '''#include "parsing_helpers.h"
int drop53(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
    struct hdr_cursor nh = { .pos = data };
    struct ethhdr *eth; struct iphdr *iph; struct udphdr *udph;
    if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP)) return XDP_PASS;
    if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_UDP) return XDP_PASS;
    if (parse_udphdr(&nh, data_end, &udph) < 0) return XDP_PASS;
    return udph->dest == bpf_htons(DROPPED) ? XDP_DROP : XDP_PASS;
}
'''
RIGHT, WRONG = PROGRAM.replace("DROPPED", "53"), PROGRAM.replace("DROPPED", "54")
ODD = PROGRAM.replace("udph->dest == bpf_htons(DROPPED)", "bpf_ntohs(udph->dest) & 1")  # 53 too
UNSAFE = '''int unsafe(struct xdp_md *ctx) {
    unsigned char *p = (void *)(long)ctx->data;
    return p[12] == 8 ? XDP_PASS : XDP_DROP;          /* no check against data_end */
}
'''


def ports(lab_dir, seed):
    """The random ports the check's last case draws with `seed`."""
    rng = checks.case_rng(seed, checks.cases_of(checks.load_spec(lab_dir))[-1])
    return [rng.randrange(1000, 60000) for _ in range(3)]


@pytest.fixture
def lab_dir(tmp_path):
    d = tmp_path / "labs" / "42-drop-53"
    d.mkdir(parents=True)
    (d / "check.py").write_text(CHECK)
    return d


@pytest.fixture
def store(tmp_path, monkeypatch):
    path = tmp_path / "progress.json"
    monkeypatch.setenv("XDPLAB_PROGRESS", str(path))
    return Progress()


def test_report_in_plain_words(lab_dir, store):
    seed = 11
    report = checks.grade(lab_dir, WRONG, store, seed=seed)
    assert not report.passed and report.exit_code == 1 and report.seed == seed
    msgs = [(r.passed, r.message, r.hidden) for r in report.results]
    assert msgs[:3] == [
        (False, "UDP to port 53 from 10.11.0.1 was passed; it should be dropped", False),
        (False, "UDP to port 54 from 10.11.0.1 was dropped; it should be passed", True),
        (True, "the program runs on the server in native mode", False)]
    text = report.text()
    # a visible case: what was sent, what came out, what was expected
    assert "2 of 4 cases pass" in text and "✗ UDP to port 53 from 10.11.0.1 was passed; it should be dropped" in text
    # a hidden case: what kind of packet, not the packet or the answer
    assert ("✗ a case the notebook does not show failed: UDP to a port next to the blocked one. "
            "Work out what the task asks") in text
    assert "port 54" not in text and "should be passed" not in text
    assert "(a case the notebook does not show)" in report.text(reveal=True)
    assert "UDP to port 54 from 10.11.0.1 was dropped; it should be passed" in report.text(reveal=True)
    # which hint is next, and how to draw the same random packets again
    assert "Hint 1 of 3: first nudge (the next failed check shows hint 2)" in text
    assert (f"seed {seed}: `xdplab check 42 --seed {seed}` (or check(seed={seed})) sends the same "
            "ones again") in text
    html = report._repr_html_()
    assert "was passed; it should be dropped" in html and "port 54" not in html and f"seed {seed}" in html


def test_a_passing_lab_shows_every_case_it_survived(lab_dir, store):
    seed = 12
    report = checks.grade(lab_dir, RIGHT, store, seed=seed)
    assert report.passed, report.text()
    text = report.text()
    assert text.splitlines()[:2] == ["lab 42-drop-53 (Drop port 53): all 4 cases pass. Well done: "
                                     "the lab is complete.", "The cases your program passed:"]
    assert ("  ✓ UDP to port 54 from 10.11.0.1 was passed (a case the notebook does not show)"
            in text)
    drawn = ", ".join(map(str, ports(lab_dir, seed)))
    assert f"✓ UDP to ports {drawn} was passed (a case the notebook does not show)" in text
    assert f"drawn with seed {seed}." in text and "Hint" not in text


def test_random_cases_follow_the_seed(lab_dir, store):
    one, again = (checks.run(lab_dir, RIGHT, seed=77) for _ in range(2))
    assert [r.message for r in one.results] == [r.message for r in again.results]
    seeds = {checks.new_seed() for _ in range(5)}
    assert len(seeds) > 1 and all(1 <= s < 1_000_000 for s in seeds), "a fresh seed each check"
    assert checks.run(lab_dir, RIGHT).seed in range(1, 1_000_000)
    # a program that drops odd ports fails the random case at the first odd one: a hidden
    # failure names the kind of packet of the random packet that failed, not the packet
    seed = next(n for n in range(1, 100) if [p % 2 for p in ports(lab_dir, n)] == [0, 1, 0])
    failed = checks.run(lab_dir, ODD, seed=seed).failed
    assert [r.line() for r in failed] == [
        "✗ a case the notebook does not show failed: UDP to random port number 2. Work out what "
        "the task asks for such a packet, and what your program does with it"]
    assert failed[0].message == f"UDP to port {ports(lab_dir, seed)[1]} was dropped; it should be passed"


def test_stop_at_first_failure_skips_the_rest(lab_dir):
    report = checks.run(lab_dir, WRONG, stop_at_first_failure=True)
    assert len(report.results) == 1 and report.skipped == 3 and not report.passed
    assert "0 of 4 cases pass (3 not run after the first failure)" in report.text()
    report = checks.run(lab_dir, RIGHT, stop_at_first_failure=True)
    assert report.passed and not report.skipped


def test_output_problems_say_what_came_out(lab_dir):
    (lab_dir / "check.py").write_text(CHECK.split("@case")[0].replace(
        'CASES = [', 'CASES = [verdict("UDP to port 7", Ether() / IP() / UDP(dport=7), "pass", '
        'check=lambda r: "its port should be 8"), '))
    report = checks.run(lab_dir, RIGHT, seed=1)
    assert report.results[0].message == (
        "UDP to port 7 was passed, but its port should be 8 (what came out: Ethernet "
        "02:00:00:00:00:01 → 02:00:00:00:00:02 / IPv4 127.0.0.1 → 127.0.0.1 (TTL 64, checksum "
        "0x7cce) / UDP port 53 → port 7 (checksum 0x01a0))")


def test_passing_program(lab_dir, store):
    report = checks.grade(lab_dir, RIGHT, store)
    assert report.passed and report.exit_code == 0, report.text()
    assert report.hint is None and "all 4 cases pass" in report.text()
    assert store.get("42-drop-53")["done"]


def test_compile_and_verifier_errors_are_explained(lab_dir, store):
    report = checks.run(lab_dir, RIGHT.replace("return udph", "retrun udph"))
    assert isinstance(report.error, xdplab.CompileError) and not report.results
    assert "did not load, so no case ran" in report.text()
    assert report.error.text() in report.text()
    report = checks.run(lab_dir, UNSAFE)
    assert isinstance(report.error, xdplab.VerifierError) and not report.passed
    assert "VerifierError" in report.text() and report.error.line == 3


def test_a_check_this_kernel_cannot_run_says_so_and_is_no_attempt(lab_dir, store, monkeypatch):
    """A check.py that REQUIRES a finding of the probe, on a kernel without it (simulated: Linux
    5.10's answer for test_run_context, the finding as the probe decides it there)."""
    from xdplab import kernelprobe
    probe = xdplab.probe()
    old = dataclasses.replace(probe, release="5.10.0-32-amd64",
                              test_run_context=kernelprobe.decide_test_run_context(False))
    monkeypatch.setattr(xdplab, "probe", lambda refresh=False: old)
    (lab_dir / "check.py").write_text(CHECK + '\nREQUIRES = ["test_run_context"]\n')
    labs_before = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    report = checks.grade(lab_dir, RIGHT, store)
    assert not report.passed and report.exit_code == 1 and not report.results and report.hint is None
    assert "this kernel cannot run the check" in report.text() and "5.15+" in report.text()
    assert "5.10.0-32-amd64" in report._repr_html_()
    assert store.get("42-drop-53") is None or store.get("42-drop-53")["attempts"] == 0
    assert (set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()) == labs_before
    monkeypatch.setattr(xdplab, "probe", lambda refresh=False: probe)   # this kernel: it runs
    assert checks.grade(lab_dir, RIGHT, store).passed


def test_hints_come_in_steps_and_stop_at_the_last(lab_dir, store):
    hints = [checks.grade(lab_dir, WRONG, store).hint for _ in range(4)]
    assert hints == ["first nudge", "closer", "closest", "closest"]
    assert store.get("42-drop-53") == {"done": False, "attempts": 4, "hint_step": 4, "done_at": None}
    assert checks.grade(lab_dir, RIGHT, store).hint is None
    entry = store.get("42-drop-53")
    assert entry["done"] and entry["attempts"] == 5 and entry["done_at"]


def test_cli_check_and_progress(lab_dir, store, tmp_path, capsys):
    (tmp_path / "mine.c").write_text(RIGHT)
    assert cli.main(["check", str(lab_dir), "--program", str(tmp_path / "mine.c")]) == 0
    assert "all 4 cases pass" in capsys.readouterr().out
    assert cli.main(["check", str(lab_dir), "--program", str(tmp_path / "mine.c"), "--seed", "5"]) == 0
    assert "drawn with seed 5." in capsys.readouterr().out
    (tmp_path / "mine.c").write_text(WRONG)
    assert cli.main(["check", str(lab_dir), "--program", str(tmp_path / "mine.c")]) == 1
    assert "it should be dropped" in capsys.readouterr().out
    assert cli.main(["check", "no-such-lab"]) == 2
    assert "there is no lab 'no-such-lab'" in capsys.readouterr().err
    assert cli.main(["progress"]) == 0
    assert "labs done" in capsys.readouterr().out


def test_progress_store(tmp_path, monkeypatch):
    monkeypatch.delenv("XDPLAB_PROGRESS", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert progress.default_path() == tmp_path / "home/.local/share/xdplab/progress.json"
    monkeypatch.setenv("SUDO_USER", "nobody")
    if os.geteuid() == 0:
        assert progress.default_path() == progress.Path(pwd.getpwnam("nobody").pw_dir,
                                                        ".local/share/xdplab/progress.json")
    monkeypatch.setenv("XDPLAB_PROGRESS", str(tmp_path / "p" / "progress.json"))
    store = Progress()
    assert store.path == tmp_path / "p" / "progress.json"
    assert store.get("01-x") == {"done": False, "attempts": 0, "hint_step": 0, "done_at": None}
    assert [store.record("01-x", False), store.record("01-x", False), store.record("01-x", True)] == [1, 2, 0]
    assert store.record("02-y", False) == 1
    assert json.loads(store.path.read_text())["labs"]["01-x"]["done"] is True
    assert os.listdir(store.path.parent) == ["progress.json"], "no temporary file is left"
    store.reset("01-x")
    assert store.status() == {"02-y": {"done": False, "attempts": 1, "hint_step": 1, "done_at": None}}
    store.reset()
    assert store.status() == {}


def kept_copies(path):
    return sorted(path.parent.glob(path.name + ".broken-*"))


def test_progress_store_survives_a_corrupt_file(tmp_path):
    path = tmp_path / "progress.json"
    store = Progress(path)
    store.record("01-x", True)
    path.write_text(path.read_text()[:25])                     # cut short, as by a full disk
    before = path.read_text()
    fresh = Progress(path)
    assert fresh.status() == {} and fresh.record("02-y", False) == 1
    copy, = kept_copies(path)
    assert copy.read_text() == before, "the broken file is kept as it was"
    assert json.loads(path.read_text()) == {"labs": {"02-y": {"attempts": 1, "hint_step": 1}}}
    notice, = fresh.notices
    assert notice.startswith(f"your progress file had problems: {path} is not valid JSON (")
    assert f"the file as it was is kept as {copy}" in notice
    assert Progress(path).status() and not Progress(path).notices, "the new file is fine"


def test_progress_store_keeps_what_is_valid_in_a_foreign_file(tmp_path):
    path = tmp_path / "progress.json"
    mixed = {"version": 3, "labs": {"01-x": {"done": True, "attempts": 2, "done_at": "2024-05-01T10:00:00",
                                             "note": "mine"},
                                    "02-y": {"attempts": "three", "hint_step": 2},
                                    "03-z": 7, "04-w": {"done": "yes", "attempts": -1}}}
    path.write_text(json.dumps(mixed))
    store = Progress(path)
    assert store.status() == {
        "01-x": {"done": True, "attempts": 2, "hint_step": 0, "done_at": "2024-05-01T10:00:00"},
        "02-y": {"done": False, "attempts": 0, "hint_step": 2, "done_at": None},
        "04-w": {"done": False, "attempts": 0, "hint_step": 0, "done_at": None}}
    notice, = store.notices
    for problem in ("attempts of lab '02-y' is 'three', not a count", "the entry of lab '03-z' is not a table",
                    "done of lab '04-w' is 'yes', not true or false", "attempts of lab '04-w' is -1"):
        assert problem in notice
    assert json.loads(kept_copies(path)[0].read_text()) == mixed, "the original is kept whole"
    saved = json.loads(path.read_text())
    assert saved["version"] == 3 and saved["labs"]["01-x"]["note"] == "mine", "unknown keys kept"
    assert store.record("02-y", False) == 3 and store.get("01-x")["done"]
    # not a progress file at all: someone else's JSON is moved aside, never overwritten
    for foreign in ([1, 2, 3], {"labs": ["01-x"]}, "just text", {"theme": "dark"}):
        path.write_text(json.dumps(foreign))
        store = Progress(path)
        assert store.record("01-x", True) == 0 and store.get("01-x")["done"]
        assert "is not an xdplab progress file" in store.notices[0]
        assert json.loads(kept_copies(path)[-1].read_text()) == foreign
        assert set(json.loads(path.read_text())) == {"labs"}, "a fresh store, nothing of the other file"
    assert len(kept_copies(path)) == 5
    assert "'theme'" in store.notices[0], store.notices


def test_progress_store_that_cannot_be_written_does_not_stop_a_check(lab_dir, tmp_path, capsys,
                                                                      monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = Progress(blocker / "progress.json")                 # its folder cannot be made
    report = checks.grade(lab_dir, WRONG, store, seed=4)
    assert not report.passed and report.hint == "first nudge"
    assert report.notes == [f"your progress could not be saved in {blocker / 'progress.json'}: a "
                            "part of that path is a file, not a folder. This check still counts for "
                            "now; set XDPLAB_PROGRESS=/a/writable/file.json to keep it elsewhere"]
    assert "note: your progress could not be saved" in report.text()
    assert "note: your progress could not be saved" in report._repr_html_()
    folder = tmp_path / "progress-folder.json"
    folder.mkdir()                                             # a folder where the file should be
    store = Progress(folder)
    assert store.record("01-x", False) == 1 and folder.is_dir() and not os.listdir(folder)
    assert "there is a folder of that name" in store.notices[0]
    assert os.listdir(tmp_path / "labs" / "..") and not list(tmp_path.glob(".progress-*")), \
        "no temporary file is left"
    # the command line says so in plain words, and never shows a traceback
    monkeypatch.setenv("XDPLAB_PROGRESS", str(folder))
    assert cli.main(["progress"]) == 0
    assert "labs done" in capsys.readouterr().out
    assert cli.main(["progress", "--reset", "all"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xdplab: your progress could not be saved") and "Traceback" not in err
    monkeypatch.setenv("XDPLAB_PROGRESS", str(tmp_path / "p2.json"))
    (tmp_path / "p2.json").write_text("\x00\xff garbage")
    assert cli.main(["progress"]) == 0
    assert "note: your progress file had problems" in capsys.readouterr().out


def test_progress_view_lists_every_lab(lab_dir, store):
    other = lab_dir.parent / "43-other"
    other.mkdir()
    (other / "check.py").write_text('TITLE = "Other"\n')
    store.record("42-drop-53", True)
    store.record("43-other", False)
    text = progress.text(store, lab_dir.parent)
    assert "1 of 2 labs done" in text
    assert "✓ 42-drop-53  Drop port 53  — done" in text
    assert "· 43-other    Other  — started (1 check)" in text
    widget = progress.progress_widget(store, lab_dir.parent)
    assert "1 of 2 labs done" in widget.children[0].value
    widget.close_all() if hasattr(widget, "close_all") else widget.close()


def test_finding_labs(lab_dir):
    root = lab_dir.parent
    for name in ("42", "042", "42-drop-53", "drop-53", str(lab_dir)):
        assert checks.find_lab(name, root) == lab_dir
    with pytest.raises(xdplab.LabError, match="labs are: 42-drop-53"):
        checks.find_lab("7", root)


def test_labs_keep_their_old_numbers():
    """The labs are numbered by the lesson they follow (03a: the first lab after lesson 03);
    `xdplab check 01` still finds the lab that was 01, and says what it is called now."""
    assert checks.find_lab("03a").name == "03a-drop-by-port"
    assert checks.find_lab("3a") == checks.find_lab("drop-by-port") == checks.find_lab("03a")
    for old, new in progress.RENAMED.items():
        assert checks.find_lab(old).name == new, old
        assert checks.find_lab(old[:2]).name == new and checks.find_lab(old[1]).name == new
    assert {p.name for p in checks.all_labs()} >= set(progress.RENAMED.values())


def test_xdplab_check_with_an_old_number_checks_the_renamed_lab_and_says_so(capsys):
    lab = checks.find_lab("03a")
    assert cli.main(["check", "01", "--program", str(lab / "solution.c")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("(lab 01 is called 03a-drop-by-port now: the labs are numbered by the "
                          "lesson they follow)"), out[:300]
    assert "lab 03a-drop-by-port" in out and "cases pass" in out


def test_progress_under_an_old_lab_name_counts_for_the_new_one(tmp_path):
    path = tmp_path / "progress.json"
    path.write_text(json.dumps({"labs": {
        "01-drop-by-port": {"done": True, "attempts": 3, "hint_step": 2, "done_at": "2026-01-02T10:00:00"},
        "02-top-talkers": {"attempts": 1, "hint_step": 1},
        "02a-top-talkers": {"attempts": 2, "hint_step": 2, "done": True, "done_at": "2026-03-01T09:00:00"},
        "42-mine": {"attempts": 1}}}))
    store = Progress(path)
    status = store.status()
    assert set(status) == {"03a-drop-by-port", "02a-top-talkers", "42-mine"}
    assert status["03a-drop-by-port"] == {"done": True, "attempts": 3, "hint_step": 2,
                                          "done_at": "2026-01-02T10:00:00"}
    assert status["02a-top-talkers"]["attempts"] == 3 and status["02a-top-talkers"]["done"]
    assert store.record("04a-port-rewrite", False) == 1
    assert "01-drop-by-port" not in json.loads(path.read_text())["labs"], "saved under the new name"
    assert not store.notices, "an old name is not a problem of the file"


def test_notebook_source_is_the_last_xdp_cell():
    class Shell:
        user_ns = {"In": ["", "import xdplab",
                          "get_ipython().run_cell_magic('xdp', 'server', 'int a(struct xdp_md *c)\\n{ return 1; }\\n')",
                          "get_ipython().run_cell_magic('xdp', 'server', 'int b(struct xdp_md *c) { return 2; }\\n')",
                          "from xdplab.checks import check\ncheck()"]}
    assert checks._notebook_source(Shell) == "int b(struct xdp_md *c) { return 2; }\n"
    Shell.user_ns = {"In": ["%%xdp server\nint c;"]}
    assert checks._notebook_source(Shell) == "int c;"
    Shell.user_ns = {"In": ["1 + 1"]}
    assert checks._notebook_source(Shell) is None


def test_the_guide_s_example_check_works(tmp_path, store):
    """labs/README.md's check.py example, as an instructor would copy it, tells right from wrong."""
    guide = (checks.LABS_DIR / "README.md").read_text()
    example = guide.split("```python\n", 1)[1].split("```", 1)[0]
    lab = tmp_path / "labs" / "43-dns"
    lab.mkdir(parents=True)
    (lab / "check.py").write_text(example)
    report = checks.grade(lab, RIGHT, store)
    assert report.passed, report.text(reveal=True)
    assert "✓ 40 random datagrams got the right verdict (a case the notebook does not show)" in report.text()
    report = checks.grade(lab, WRONG, store)
    assert not report.passed and report.hint == "a nudge"
