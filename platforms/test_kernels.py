"""The kernel matrix as tests: each of Debian's kernels 5.10, 6.1 and 6.12 is booted with virtme-ng
(platforms/kernels/run.py) and must run the doctor without a fail and the core subset of tests/
(`pytest -m kernel`) without a failure, and the lessons whose claims depend on the kernel (those
that ask `xdplab.probe()`) must run top to bottom (XDPLAB_VM_STEPS chooses the steps). Plus the faults: a kernel package that does not exist, no
qemu, a guest that hangs — each with a clear message, and no qemu process left.

    sudo .venv/bin/python -m pytest platforms/test_kernels.py            (about 10 min per kernel under TCG)
    sudo .venv/bin/python -m pytest platforms/test_kernels.py -k faults  (a minute)
"""
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "kernels"))
import run  # noqa: E402

GUEST_TIMEOUT = int(os.environ.get("XDPLAB_VM_TIMEOUT", "3600"))

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="boots guests: needs root")


def qemus():
    """qemu processes of the kernel matrix that this process started (in the process group of a
    guest run.boot() made): pid lines. Guests of another run on the machine are not ours."""
    out = subprocess.run(["pgrep", "-af", f"qemu-system.* -name {run.QEMU_NAME}"],
                         capture_output=True, text=True).stdout
    ours = set()
    for line in out.splitlines():
        try:
            if os.getpgid(int(line.split()[0])) in run.started:
                ours.add(line)
        except ProcessLookupError:
            pass
    return ours


@pytest.fixture(scope="module")
def kernels():
    return run.fetch(list(run.SERIES))


@pytest.fixture(autouse=True)
def no_qemu_left():
    """Every qemu a test starts is gone when it ends (qemus of another run are left alone)."""
    before = qemus()
    yield
    assert not run._groups, f"guests still registered: {run._groups}"
    left = qemus() - before
    assert not left, f"the test left qemu running: {left}"


@pytest.mark.timeout(GUEST_TIMEOUT + 300)
@pytest.mark.parametrize("series", run.SERIES)
def test_kernel(kernels, series):
    release, kdir = kernels[series]
    steps = os.environ.get("XDPLAB_VM_STEPS", ",".join(run.STEPS)).split(",")
    result = run.boot(series, release, kdir, steps=steps)
    print(run.table([result], markdown=False))
    assert result["status"] == "done", f"guest {release}: {result['status']} " \
                                       f"(stuck in {result['stuck_in']}), see {result['dir']}"
    assert result["guest_links"] == ["lo"], f"the guest had network devices: {result['guest_links']}"
    doctor = result["doctor"]
    assert doctor is not None, f"no doctor report: see {result['dir']}/doctor.err"
    fails = [f"{c['name']}: {c['summary']}" for c in doctor["checks"] if c["status"] == "fail"]
    assert not fails, f"doctor on {release}: {fails}"
    assert doctor["machine"].startswith(f"Linux {release}")
    tests = result["tests"]
    assert tests, f"no junit results: see {result['dir']}/pytest.log"
    failed = {n: m for n, (s, m) in tests.items() if s == "fail"}
    assert not failed, f"core tests failed on {release}: {failed}"
    assert result["probe"] and "error" not in result["probe"].get("redirect", {}), \
        f"the redirect probe broke: see {result['dir']}/probe.err"
    if "lessons" in steps:          # the lessons that ask xdplab.probe(), top to bottom
        lessons = result["lessons"]
        assert lessons and lessons["lessons"], f"no lesson results: see {result['dir']}/lessons.err"
        failed = {n: f"cell {r.get('cell')}: {r.get('error')}" for n, r in lessons["lessons"].items()
                  if r["status"] not in ("ok", "as on the host")}
        assert not failed, f"lessons failed on {release}: {failed}"


# --- faults -----------------------------------------------------------------------------------

def test_faults_a_missing_kernel_package_is_named_and_leaves_nothing():
    env = dict(os.environ, XDPLAB_KERNEL_PKG_OVERRIDE="linux-image-0.0.0-nope-amd64")
    res = subprocess.run(["bash", str(run.HERE / "fetch.sh"), "6.1"], capture_output=True,
                         text=True, env=env)
    assert res.returncode != 0
    assert "linux-image-0.0.0-nope-amd64" in res.stderr and "cannot be" in res.stderr, res.stderr
    assert not list((run.CACHE / "kernels").glob("0.0.0-nope*"))


def test_faults_an_unknown_series_is_refused():
    res = subprocess.run(["bash", str(run.HERE / "fetch.sh"), "4.19"], capture_output=True, text=True)
    assert res.returncode != 0 and "unknown kernel series '4.19'" in res.stderr


def test_faults_no_qemu_is_explained(kernels, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    release, kdir = kernels["6.1"]
    with pytest.raises(run.MatrixError, match="no qemu-system-x86_64"):
        run.boot("6.1", release, kdir)


@pytest.mark.timeout(300)
def test_faults_a_hanging_guest_is_killed_and_reported(kernels, tmp_path):
    release, kdir = kernels["6.1"]
    already = qemus()
    # 25 s: the guest boots, then hangs in the doctor (which takes ~90 s under TCG)
    seen, done = [], threading.Event()     # qemus() while the guest runs: it sees our guest

    def watch():
        while not done.wait(0.5):
            seen.append(qemus() - already)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = run.boot("6.1", release, kdir, steps=["doctor"], timeout=25, accel="tcg",
                          out=tmp_path / "run")
    finally:
        done.set()
        watcher.join()
    assert result["status"] == "hang"
    assert any(f"{run.QEMU_NAME}6.1 " in q for s in seen for q in s), "qemus() missed our guest"
    assert not [q for q in qemus() if f"{run.QEMU_NAME}6.1 " in q and q not in already], qemus()
    row = run.cells(result)
    assert "hang" in row.values(), row


def test_lessons_runner_reports_a_failing_cell_and_what_a_lesson_skipped(tmp_path):
    """platforms/kernels/lessons.py, on this machine: the cell that failed and its error, and the
    "skipped: ..." lines a lesson printed where it could not prove a claim."""
    import nbformat
    import lessons
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "xdplab", "display_name": "x"}})
    nb.cells = [nbformat.v4.new_code_cell('print("skipped: no fq_codel here")'),
                nbformat.v4.new_code_cell("assert 1 + 1 == 3, 'arithmetic'")]
    path = tmp_path / "99-probe.ipynb"
    nbformat.write(nb, path)
    r = lessons.run(path)
    assert r["status"] == "fail" and r["cell"] == 1 and "AssertionError: arithmetic" in r["error"], r
    assert r["skipped"] == ["skipped: no fq_codel here"], r
    nb.cells.pop()
    nbformat.write(nb, path)
    assert lessons.run(path)["status"] == "ok"
    assert [p.stem[:2] for p in lessons.kernel_sensitive()] == ["05", "07", "08", "10"]
