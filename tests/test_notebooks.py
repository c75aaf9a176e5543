"""Every lesson notebook runs top to bottom on the "xdplab" kernel, as a learner would run it.

A cell that raises fails the test, and so does a check cell whose assert does not hold. The
notebooks are stored clean (no outputs, no execution counts, no saved widget state), and when the
kernel has shut down nothing of its labs is left: its atexit hook or each lab's watchdog removes
every namespace it made.
"""
import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from xdplab import reaper

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "labs").glob("*/lab.ipynb"))
KERNEL = "xdplab"          # registered by env/install.sh inside .venv
CELL_TIMEOUT = 120         # seconds one cell may take (the demo's check cell waits for 10 s of traffic)
REAP_PATIENCE = 10.0       # seconds the watchdog gets to remove a dead kernel's labs


def ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_stored_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"cells {dirty} of {path.name} are stored with outputs or execution counts: "
                       f"clear them (JupyterLab: Edit > Clear Outputs of All Cells) and save")
    assert "widgets" not in nb.metadata, f"{path.name} is stored with widget state: remove it"
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL, \
        f"{path.name} must use the kernel {KERNEL!r} (Kernel > Change Kernel > Python (xdplab))"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_run_all_leaves_the_lab_open(path):
    """No cell closes the lab: under "Run All" a closing cell stopped the "Watch it" streams a
    second in and took away the panels the text invites you to use. The notebook ends saying how
    to close it (the kernel's exit removes it too: proven below)."""
    nb = nbformat.read(path, as_version=4)
    closing = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
               and re.search(r"^\s*\w*lab\w*\.close\(\)", c.source, re.M)]
    assert not closing, f"cells {closing} of {path.name} close the lab under Run All"
    assert "**When you are done:** `lab.close()` removes the lab now" in nb.cells[-1].source, \
        f"{path.name} does not end with the 'When you are done' line"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_first_cell_loads_the_extension(path):
    """`%load_ext xdplab` comes first: from then on a mistake a learner makes (a file name mistyped
    in show(), C that does not compile) is explained in a few lines, not a traceback."""
    code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert code and code[0].split("\n")[0].strip() == "%load_ext xdplab", \
        f"the first code cell of {path.name} does not start with %load_ext xdplab"
    assert sum("%load_ext xdplab" in c for c in code) == 1, f"{path.name} loads it twice"


def lab_namespaces(exclude_pid):
    """{namespace: owner pid or None} of every lab namespace, leaving out those whose lab belongs
    to another live process (a concurrent test run, a learner's notebook)."""
    owners = {}
    if reaper.STATE_DIR.is_dir():
        for state_file in reaper.STATE_DIR.glob("*.json"):
            state = reaper.read_state(state_file) or {}
            owners[state_file.stem] = state
    found = {}
    names = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    for ns in names:
        if not ns.startswith(reaper.NS_PREFIX):
            continue
        state = owners.get(ns[len(reaper.NS_PREFIX):].split("-", 1)[0])
        if state and state.get("pid") != exclude_pid and reaper.alive(state):
            continue
        found[ns] = state.get("pid") if state else None
    return found


def kernel_leftovers(pid, before):
    """What the (dead) kernel `pid` left: its labs' state files and namespaces not there before."""
    left = [f"state {p.name}" for p in reaper.STATE_DIR.glob("*.json")
            if (reaper.read_state(p) or {}).get("pid") == pid] if reaper.STATE_DIR.is_dir() else []
    return left + sorted(set(lab_namespaces(pid)) - before)


def assert_nothing_left(pids, before, what):
    """Kernels `pids` exit, and then (the watchdog given a moment) nothing of their labs is left."""
    deadline = time.monotonic() + REAP_PATIENCE
    while any(reaper.start_time(p) is not None for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    running = [p for p in pids if reaper.start_time(p) is not None]
    assert not running, f"the kernel of {what} (pid {running}) did not exit"
    left = lambda: [x for p in pids for x in kernel_leftovers(p, before)]
    while left() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left(), f"{what} left lab resources behind after its kernel exited: {left()}"


def compile_helpers(pid):
    """(pid, start time) of the compile helpers (xdplab/compile_helper.py) process `pid` started."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                status = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if f"\nPPid:\t{pid}\n" in status and b"compile_helper.py" in cmdline:
            found.add((int(entry), reaper.start_time(int(entry))))
    return found


def assert_helpers_gone(helpers, what):
    """The compile helpers of a kernel that exited are gone too (they die with it)."""
    deadline = time.monotonic() + REAP_PATIENCE
    alive = lambda: [p for p, start in helpers if reaper.start_time(p) == start]
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(), f"the compile helper of {what}'s kernel outlived it: {alive()}"


def run_notebook(nb, path, what, timeout=CELL_TIMEOUT):
    """Execute `nb` (the notebook at `path`, perhaps with cells added) top to bottom in the xdplab
    kernel, from its folder; then prove its kernel exited and left no lab and no compile helper
    behind. Returns the compile helpers seen while it ran."""
    before = set(lab_namespaces(None))
    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL,
                            resources={"metadata": {"path": str(path.parent)}})
    kernel = {}
    client.on_notebook_start = lambda notebook: kernel.update(pid=client.km.provisioner.pid)
    helpers = set()
    client.on_cell_executed = lambda **_: helpers.update(compile_helpers(kernel["pid"]))
    client.execute()          # raises CellExecutionError naming the cell on any error
    assert "pid" in kernel, "nbclient did not report its kernel"
    assert_nothing_left([kernel["pid"]], before, what)
    assert_helpers_gone(helpers, what)
    return helpers


def cell_text(cell):
    """Everything a code cell printed, returned or displayed, as text."""
    return "".join(o.get("text", "") + "".join(map(str, o.get("data", {}).values()))
                   for o in cell.get("outputs", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_runs_top_to_bottom(path):
    nb = nbformat.read(path, as_version=4)
    helpers = run_notebook(nb, path, path.name)
    code = "".join(c.source for c in nb.cells if c.cell_type == "code")
    if "%%xdp" in code or ".load(" in code:
        assert helpers, f"{path.name} compiles, yet no compile helper of its kernel was seen"


LINK = re.compile(r"\]\(([^)#\s]+\.ipynb)\)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_links_to_notebooks_resolve(path):
    """A link from a lesson or lab to another notebook opens it (JupyterLab resolves it relative
    to the notebook's folder, inside the course root that `make lab` serves)."""
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    broken = [t for t in LINK.findall(text) if not (path.parent / t).resolve().is_file()]
    assert not broken, f"{path.name} links to notebooks that do not exist: {broken}"


def test_the_welcome_lesson_links_every_lesson_and_lab_in_order():
    welcome = ROOT / "notebooks" / "00-welcome.ipynb"
    nb = nbformat.read(welcome, as_version=4)
    course = next(c.source for c in nb.cells if c.source.startswith("## The course"))
    targets = [(welcome.parent / t).resolve() for t in LINK.findall(course)]
    lessons = [t for t in targets if t.parent.name == "notebooks"]
    assert lessons == sorted(p for p in NOTEBOOKS if p.parent.name == "notebooks"
                             and p.name[:2].isdigit()), "lessons missing or out of order"
    labs = [t for t in targets if t.parent.parent.name == "labs"]
    assert labs == sorted(p for p in NOTEBOOKS if p.parent.parent.name == "labs"), \
        "labs missing or out of order"
    for lab in labs:   # each lab NNx after lesson NN, which names it in its "Try this"
        number = lab.parent.name[:2]
        lesson, = (t for t in lessons if t.name.startswith(number))
        assert targets.index(lab) > targets.index(lesson), f"{lab.parent.name} is listed before lesson {number}"
        try_this = "\n".join(c.source for c in nbformat.read(lesson, as_version=4).cells
                             if c.source.startswith("## Try this"))
        assert lab in {(lesson.parent / x).resolve() for x in LINK.findall(try_this)}, \
            f"lesson {lesson.name}'s Try this does not name {lab.parent.name}"
