"""Every lab in labs/ is complete and its check tells right from wrong: the check passes the lab's
solution.c and fails its starter.c, on a real lab (programs loaded, real traffic counted). The
notebook's %%xdp cell holds exactly the starter, and the folder holds only what a lab is made of
(tests/test_mutants.py: the check also rejects every wrong program in its wrong/ folder)."""
import errno
import os

import nbformat
import pytest

from xdplab import checks
from xdplab.progress import Progress

# (conftest.py points XDPLAB_PROGRESS at a throwaway file: the learner's progress is untouched)
LABS = checks.all_labs()
FILES = {"lab.ipynb", "starter.c", "solution.c", "check.py"}
FOLDERS = {"wrong"}          # the lab's wrong programs: tests/test_mutants.py


def skip_if_unsupported(lab):
    """Skip, saying why, when this kernel lacks what the lab's check needs (its REQUIRES, asked
    of xdplab.probe()): the check reports "unsupported" there, by design (05a before 5.15)."""
    why = checks.unsupported(checks.load_spec(lab))
    if why is not None:
        pytest.skip(f"{lab.name} cannot be checked on this kernel: {why}")


def test_there_are_labs():
    assert len(LABS) >= 3, "labs/ should hold the labs"


@pytest.mark.parametrize("lab", LABS, ids=[p.name for p in LABS])
def test_lab_folder(lab):
    left = {p.name for p in lab.iterdir()} - FILES - FOLDERS - {"__pycache__"}
    assert not left, f"{lab.name} holds files a lab does not have: {sorted(left)}"
    assert FILES <= {p.name for p in lab.iterdir()}, f"{lab.name} lacks {FILES - set(os.listdir(lab))}"
    spec = checks.load_spec(lab)
    assert spec.TITLE and len(spec.HINTS) >= 2 and checks.cases_of(spec)
    assert any(c.hidden for c in checks.cases_of(spec)), "a lab has cases the notebook does not show"
    vague = [c.title for c in checks.cases_of(spec) if c.hidden and not c.about]
    assert not vague, f"hidden cases say in `about` what kind of packet they try: {vague}"
    nb = nbformat.read(lab / "lab.ipynb", as_version=4)
    magic = [c.source for c in nb.cells if c.cell_type == "code" and c.source.startswith("%%xdp")]
    assert len(magic) == 1, "the notebook has one %%xdp cell, with the starter"
    assert magic[0].split("\n", 1)[1].strip() == (lab / "starter.c").read_text().strip(), \
        "the notebook's %%xdp cell and starter.c differ"
    assert any("check()" in c.source for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("lab", LABS, ids=[p.name for p in LABS])
def test_solution_passes(lab, tmp_path):
    skip_if_unsupported(lab)
    seed = checks.new_seed()                  # fresh random packets every run, like a learner's
    report = checks.grade(lab, (lab / "solution.c").read_text(), Progress(tmp_path / "p.json"),
                          seed=seed)
    assert report.passed, f"seed {seed}:\n{report.text(reveal=True)}"
    assert report.exit_code == 0 and report.hint is None
    assert Progress(tmp_path / "p.json").get(lab.name)["done"]


@pytest.mark.parametrize("lab", LABS, ids=[p.name for p in LABS])
def test_starter_fails(lab, tmp_path):
    skip_if_unsupported(lab)
    report = checks.grade(lab, (lab / "starter.c").read_text(), Progress(tmp_path / "p.json"))
    assert not report.passed and report.exit_code == 1, report.text()
    assert report.error is not None or any(not r.passed for r in report.results)
    assert report.hint == checks.load_spec(lab).HINTS[0], "the first failed check gives the first hint"
    assert not Progress(tmp_path / "p.json").get(lab.name)["done"]


def test_a_lab_this_kernel_cannot_check_is_skipped_not_failed(monkeypatch):
    """As on Linux 5.10 to 5.14 (a test run with a context refused): 05a's REQUIRES are not met,
    its solution and starter tests skip and say why; on this kernel they run."""
    from xdplab import kernelprobe, traffic
    from xdplab.kernel import bpf
    lab = checks.find_lab("05a")
    assert "test_run_context" in checks.load_spec(lab).REQUIRES
    real = bpf.prog_test_run

    def refusing_context(fd, data, *args, ctx_in=None, **kw):
        if ctx_in is not None:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data, *args, **kw)

    monkeypatch.setattr(bpf, "prog_test_run", refusing_context)
    try:
        assert not kernelprobe.probe(refresh=True).test_run_context
        with pytest.raises(pytest.skip.Exception, match=r"05a-router cannot be checked .*Linux 5\.15\+"):
            skip_if_unsupported(lab)
        skip_if_unsupported(checks.find_lab("03a"))         # needs nothing: not skipped
    finally:
        monkeypatch.undo()
        kernelprobe.probe(refresh=True)        # what this kernel really does, for later tests
        traffic._live_supported = None
    if kernelprobe.probe().test_run_context:
        skip_if_unsupported(lab)               # this kernel can: the lab's tests run here
