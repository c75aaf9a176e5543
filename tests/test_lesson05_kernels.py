"""Lesson 05 on a kernel whose BPF_PROG_TEST_RUN takes no xdp_md context (before Linux 5.15),
proven on this one: every test run given a context is refused with EINVAL, as 5.10 to 5.14 refuse
it (and with it the live frames of 5.18), xdplab.probe() measures that for real, and the whole
lesson runs top to bottom on that path with its own asserts: the one-packet test runs on an
interface become packets sent for real, judged by the program's counters. The kernel matrix runs
the same lesson on Debian's 5.10 (platforms/kernels); this proves the path on every `make test`."""
from pathlib import Path

import nbformat

from test_notebooks import cell_text, run_notebook

ROOT = Path(__file__).resolve().parent.parent
LESSON = ROOT / "notebooks" / "05-redirecting.ipynb"
CELL_TIMEOUT = 300

# The first cell of the notebook run below.
BEFORE_5_15 = '''
# (underscored names: the lesson's own `kernel` is xdplab.probe())
import errno as _errno
from xdplab import kernelprobe as _kp, traffic as _traffic
from xdplab.kernel import bpf as _xk
_real_prog_test_run = _xk.prog_test_run
refused = []                    # frame lengths of every test run with a context the kernel refused

def _refusing_context(fd, data, *args, ctx_in=None, **kw):
    """BPF_PROG_TEST_RUN as Linux 5.10 to 5.14 answer it for XDP: no ctx_in (EINVAL)."""
    if ctx_in is not None:
        refused.append(len(data))
        raise OSError(_errno.EINVAL, "Invalid argument")
    return _real_prog_test_run(fd, data, *args, **kw)

_xk.prog_test_run = _refusing_context
_traffic._live_supported = None                # Host.send asks the kernel again
assert not _kp.probe(refresh=True).test_run_context.value
'''

# Appended: the lesson took the path without a test-run context, and said so.
PATH_TAKEN = '''
assert not kernel.test_run_context and kernel.test_run_context is xdplab.probe().test_run_context
assert hasattr(one, "items") and one["counters"]["XDP_REDIRECT"].packets >= 1, one   # measured, not a test run
assert "test_run_on()" in xdplab.probe().adaptations()["05"]
assert refused, "the probe never tried a test run with a context"
print("lesson 05 ran without a test-run context")
'''


def test_lesson_05_runs_top_to_bottom_without_a_test_run_context():
    """The notebook, with the emulation as its first cell: every cell runs, its own asserts hold
    where packets are sent instead of test-run, and the lesson said what it did instead."""
    nb = nbformat.read(LESSON, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(BEFORE_5_15))
    nb.cells.append(nbformat.v4.new_code_cell(PATH_TAKEN))
    run_notebook(nb, LESSON, LESSON.name + " without a test-run context", CELL_TIMEOUT)
    said = "".join(cell_text(c) for c in nb.cells if c.cell_type == "code")
    assert "before Linux 5.15" in said or "5.15" in said, said[-3000:]
    assert "lesson 05 ran without a test-run context" in cell_text(nb.cells[-1])
