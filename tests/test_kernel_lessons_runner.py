"""platforms/kernels/lessons.py, the runner of the kernel-sensitive lessons inside each guest:
a lesson whose notebook kernel dies is recorded as failed at that cell, and the runner goes on
(nbclient may then fail in its own clean-up), and a budget stops the lessons in time."""
import importlib.util
import json
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("kernel_lessons", ROOT / "platforms/kernels/lessons.py")
lessons = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lessons)


def notebook(tmp_path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": lessons.KERNEL, "display_name": "Python (xdplab)",
                                 "language": "python"}
    path = tmp_path / "99-test.ipynb"
    nbformat.write(nb, path)
    return path


def test_a_kernel_that_dies_fails_its_lesson_at_that_cell(tmp_path):
    out = lessons.run(notebook(tmp_path, "x = 1", "import os; os._exit(3)", "print(x)"))
    assert (out["status"], out["cell"]) == ("fail", 1), out
    assert out["error"].startswith("DeadKernelError"), out


def test_a_failing_cell_and_a_passing_lesson(tmp_path):
    assert lessons.run(notebook(tmp_path, "print('skipped: no fq_codel here')"))["skipped"] == \
        ["skipped: no fq_codel here"]
    out = lessons.run(notebook(tmp_path, "x = 1", "assert x == 2, 'x is not 2'"))
    assert (out["status"], out["cell"]) == ("fail", 1) and "x is not 2" in out["error"], out


def test_nbclient_failing_in_its_clean_up_after_a_dead_kernel(tmp_path, monkeypatch):
    """What the 5.10 guest showed when guest.sh's timeout killed the runner's process group: the
    kernel died, and nbclient's clean-up then raised an AssertionError (its kernel manager was
    gone) instead of DeadKernelError."""
    class Client(lessons.NotebookClient):
        def execute(self, **kw):
            self.on_cell_executed(cell=None, cell_index=0)
            try:
                raise lessons.DeadKernelError("Kernel died")
            except lessons.DeadKernelError:
                raise AssertionError       # raised while handling it: its __context__
    monkeypatch.setattr(lessons, "NotebookClient", Client)
    out = lessons.run(notebook(tmp_path, "x = 1", "import os; os._exit(3)"))
    assert (out["status"], out["cell"], out["error"]) == \
        ("fail", 1, "DeadKernelError: the notebook's kernel died"), out


def test_the_budget_stops_a_lesson_at_its_cell_and_the_rest_are_not_run(tmp_path, monkeypatch):
    """What the 5.10 guest showed: four lessons took longer than the lessons step had, guest.sh's
    timeout killed the runner in lesson 10, and no result at all was left. With a budget, the cell
    it stops is named, the lessons after it are "not run", and --out keeps every result."""
    slow = notebook(tmp_path, "x = 1", "import time; time.sleep(60)", "print(x)")
    later = slow.with_name("98-later.ipynb")
    later.write_text(slow.read_text())
    out = tmp_path / "lessons.json"
    monkeypatch.setattr(lessons, "MIN_START", 5)
    start = time.monotonic()
    rc = lessons.main(["--budget", "8", "--out", str(out), str(slow), str(later)])
    assert rc == 1 and time.monotonic() - start < 45
    saved = json.loads(out.read_text())["lessons"]
    assert (saved["99-test"]["status"], saved["99-test"]["cell"]) == ("timeout", 1), saved
    assert "time ran out" in saved["99-test"]["error"], saved
    assert saved["98-later"]["status"] == "not run", saved


def test_a_kernel_that_does_not_start_is_started_once_more(tmp_path, monkeypatch):
    """What the 5.10 guest showed on a busy host: the first lesson's Jupyter kernel did not answer
    within STARTUP_TIMEOUT (nbclient's RuntimeError, no cell run). It is started once more; a
    kernel that fails to start twice fails the lesson, saying so, with no cell named."""
    starts = []

    class Client(lessons.NotebookClient):
        def execute(self, **kw):
            starts.append(1)
            if len(starts) <= fails:
                raise RuntimeError("Kernel didn't respond in 300 seconds")
            return super().execute(**kw)
    monkeypatch.setattr(lessons, "NotebookClient", Client)
    fails = 1
    out = lessons.run(notebook(tmp_path, "x = 1", "print(x)"))
    assert (out["status"], out.get("restarts"), len(starts)) == ("ok", 1, 2), out
    starts.clear()
    fails = 2
    out = lessons.run(notebook(tmp_path, "x = 1"))
    assert (out["status"], out["cell"], out["restarts"], len(starts)) == ("fail", None, 1, 2), out
    assert out["error"] == f"the notebook's kernel did not start within {lessons.STARTUP_TIMEOUT} s"
