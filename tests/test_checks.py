"""The lab checks (xdplab.checks), their hints and the progress store (xdplab.progress), on a small
lab of the test's own: real programs loaded into a real lab, judged by real BPF_PROG_TEST_RUN."""
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
                 hidden=True)]

@case("the program is attached to the server")
def attached(t):
    mode, prog_id = t.server.iface().xdp()
    assert prog_id, "nothing is attached to the server"
    return f"the program runs on the server in {mode} mode"
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
UNSAFE = '''int unsafe(struct xdp_md *ctx) {
    unsigned char *p = (void *)(long)ctx->data;
    return p[12] == 8 ? XDP_PASS : XDP_DROP;          /* no check against data_end */
}
'''


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
    report = checks.grade(lab_dir, WRONG, store)
    assert not report.passed and report.exit_code == 1
    msgs = [(r.passed, r.message, r.hidden) for r in report.results]
    assert msgs == [
        (False, "UDP to port 53 from 10.11.0.1 was passed; it should be dropped", False),
        (False, "UDP to port 54 from 10.11.0.1 was dropped; it should be passed", True),
        (True, "the program runs on the server in native mode", False)]
    text = report.text()
    assert "1 of 3 cases pass" in text and "✗ UDP to port 53 from 10.11.0.1 was passed" in text
    assert "(a case the notebook does not show)" in text
    assert "Hint 1 of 3: first nudge" in text
    assert "was passed; it should be dropped" in report._repr_html_()


def test_passing_program(lab_dir, store):
    report = checks.grade(lab_dir, RIGHT, store)
    assert report.passed and report.exit_code == 0, report.text()
    assert report.hint is None and "all 3 cases pass" in report.text()
    assert store.get("42-drop-53")["done"]


def test_compile_and_verifier_errors_are_explained(lab_dir, store):
    report = checks.run(lab_dir, RIGHT.replace("return udph", "retrun udph"))
    assert isinstance(report.error, xdplab.CompileError) and not report.results
    assert "did not load, so no case ran" in report.text()
    assert report.error.text() in report.text()
    report = checks.run(lab_dir, UNSAFE)
    assert isinstance(report.error, xdplab.VerifierError) and not report.passed
    assert "VerifierError" in report.text() and report.error.line == 3


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
    assert "all 3 cases pass" in capsys.readouterr().out
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
    store.path.write_text("{not json")
    assert store.status() == {} and store.record("01-x", True) == 0   # a broken file starts afresh
    store.reset()
    assert store.status() == {}


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
