"""xdplab doctor: every check runs for real on this machine, nothing of its scratch lab is left
behind, and a broken machine gets a `fail` that says what to do and a non-zero exit."""
import importlib
import json
import os
import subprocess
import sys
import time

import pytest

import xdplab
from xdplab import cli, reaper
from xdplab.kernel import bpf as kernel

doctor_module = importlib.import_module("xdplab.doctor")   # xdplab.doctor is also the function
NETWORK_CHECKS = ["network namespaces", "compile + verify", "XDP generic", "XDP native",
                  "BPF_PROG_TEST_RUN", "live frames", "qdiscs"]
DOCTOR_PROGRAMS = {"xdp_doctor", "xdplab_doctor"}     # the names its programs have in the kernel


def lab_namespaces():
    if not os.path.isdir("/run/netns"):
        return set()
    return {n for n in os.listdir("/run/netns") if n.startswith(reaper.NS_PREFIX)}


def doctor_programs():
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True,
                         check=True).stdout
    return [p for p in json.loads(out) if p.get("name") in DOCTOR_PROGRAMS]


def wait_until_gone(probe, seconds=10):
    """Namespaces and the programs attached in them are freed by the kernel asynchronously."""
    deadline = time.monotonic() + seconds
    while probe() and time.monotonic() < deadline:
        time.sleep(0.1)
    return probe()


@pytest.fixture(scope="module")
def report():
    assert not doctor_programs(), "doctor programs loaded before the test"
    return xdplab.doctor() if callable(getattr(xdplab, "doctor", None)) else doctor_module.doctor()


def test_every_check_has_a_status_and_warnings_say_what_to_do(report):
    names = [name for name, _ in doctor_module.CHECKS]
    assert [c.name for c in report.checks][:len(names)] == names
    for c in report.checks:
        assert c.status in ("ok", "warn", "fail"), c
        assert c.summary, c
        if c.status != "ok":
            assert c.fix, f"{c.name} is {c.status} without saying what to do"


def test_this_machine_is_ready_and_every_network_check_really_ran(report):
    assert report.ok, str(report)
    assert report.exit_code == 0
    for name in NETWORK_CHECKS:
        assert report[name].checked, f"{name} was not tried: {report[name].summary}"
    for name in ("privileges", "compile + verify", "XDP generic", "XDP native", "BPF_PROG_TEST_RUN"):
        assert report[name].status == "ok", report[name]
    # the qdisc check reports what tc really does: tbf is what rate-limited links use
    assert "usable: tbf" in report["qdiscs"].summary


def test_it_ends_with_a_line_per_lesson_that_adapts_to_this_kernel(report):
    """The lines after the machine checks come from xdplab.probe(), measured by this very run."""
    lessons = report.checks[len(doctor_module.CHECKS):]
    adapts = xdplab.probe().adaptations()          # the probe the doctor ran, cached since
    if adapts:
        assert [c.name for c in lessons] == [f"lesson {n}" for n in adapts], lessons
        for c in lessons:
            assert c.status == "warn" and c.summary == adapts[c.name.split()[1]] and c.fix, c
    else:
        assert [(c.name, c.status) for c in lessons] == [("lessons", "ok")], lessons
    fq_codel = "fq_codel" in report["qdiscs"].summary.split(";")[0]    # "usable: ..." part
    assert fq_codel == ("08" not in adapts), (report["qdiscs"], adapts)


def own_labs():
    """Labs whose state names this test process as owner (other processes may run labs too)."""
    return [p.stem for p in reaper.STATE_DIR.glob("*.json")
            if (reaper.read_state(p) or {}).get("pid") == os.getpid()]


def test_the_network_checks_leave_nothing_behind(report):
    lab_id = report["network namespaces"].summary.split()[2].rstrip(":")   # "scratch lab ID: ..."
    assert not any(ns.startswith(f"{reaper.NS_PREFIX}{lab_id}-") for ns in lab_namespaces())
    assert not own_labs()
    assert not wait_until_gone(doctor_programs), "the doctor's XDP programs are still loaded"


def test_renders_as_text_and_html_tables(report):
    text = str(report)
    html = report._repr_html_()
    for c in report.checks:
        assert any(line.split()[:1] == [c.status] and c.name in line for line in text.splitlines())
        assert f">{c.name}</td>" in html
    assert report.verdict() in text
    assert json.loads(report.to_json())["ok"] is True


def test_a_missing_header_tree_fails_with_a_fix_and_a_nonzero_exit(monkeypatch, capsys):
    missing = "/nonexistent/xdplab-kernel-headers"
    monkeypatch.setenv("BCC_KERNEL_SOURCE", missing)
    r = doctor_module.doctor()
    headers = r["header tree"]
    assert headers.status == "fail"
    assert missing in headers.summary
    assert "BCC_KERNEL_SOURCE" in headers.fix
    assert not r["compile + verify"].checked          # not attempted against a missing tree
    assert r.exit_code == 1

    res = subprocess.run([sys.executable, "-m", "xdplab", "doctor"], capture_output=True, text=True,
                         env={**os.environ, "BCC_KERNEL_SOURCE": missing})
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert "fail  header tree" in res.stdout
    assert "unset BCC_KERNEL_SOURCE" in res.stdout
    assert "NOT READY" in res.stdout


def test_without_privileges_it_fails_says_use_sudo_and_tries_no_network(monkeypatch, capsys):
    monkeypatch.setattr(doctor_module, "read_capabilities", lambda: 0)
    r = doctor_module.doctor()
    priv = r["privileges"]
    assert priv.status == "fail"
    assert "CAP_NET_ADMIN" in priv.summary and "CAP_SYS_ADMIN" in priv.summary
    assert "sudo make lab" in priv.fix or "--privileged" in priv.fix
    for name in NETWORK_CHECKS:
        assert not r[name].checked and r[name].status == "warn", r[name]

    assert cli.main(["doctor", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "fail  privileges" in out
    assert not [line for line in out.splitlines() if line.lstrip().startswith("ok ")]

    assert cli.main(["doctor", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert {c["name"]: c["status"] for c in data["checks"]}["privileges"] == "fail"


def test_a_check_that_breaks_is_a_fail_and_the_scratch_lab_is_still_removed(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated kernel trouble")
    monkeypatch.setattr(kernel, "prog_test_run", broken)
    r = doctor_module.doctor()
    assert r["BPF_PROG_TEST_RUN"].status == "fail"
    assert "simulated kernel trouble" in r["BPF_PROG_TEST_RUN"].summary
    assert r["BPF_PROG_TEST_RUN"].fix
    assert not r["live frames"].checked
    assert r["XDP native"].status == "ok"          # the checks before it really ran
    assert r.exit_code == 1
    lab_id = r["network namespaces"].summary.split()[2].rstrip(":")
    assert not any(ns.startswith(f"{reaper.NS_PREFIX}{lab_id}-") for ns in lab_namespaces())
    assert not own_labs()
    assert not wait_until_gone(doctor_programs), "the doctor's XDP programs are still loaded"


ORPHAN = """
import xdplab
lab = xdplab.Lab.pair()
lab._watchdog.kill()        # as if the watchdog had been killed too
print(lab.id, flush=True)
import os; os._exit(0)      # die without closing the lab
"""


def test_reap_removes_and_names_an_orphaned_lab():
    res = subprocess.run([sys.executable, "-c", ORPHAN], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lab_id = res.stdout.split()[0]
    left = {f"{reaper.NS_PREFIX}{lab_id}-client", f"{reaper.NS_PREFIX}{lab_id}-server"}
    assert left <= lab_namespaces()

    out = subprocess.run([sys.executable, "-m", "xdplab", "reap"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"removed lab {lab_id}: " in out.stdout
    assert all(ns in out.stdout for ns in left)
    assert not (left & lab_namespaces())
