"""Every lab's check tells right from wrong: the wrong programs in labs/NN-slug/wrong/ — each the
lab's solution with one bug a learner makes, named in its first line — all compile and load,
and the check rejects every one of them, on every run (fresh random packets each time, the seed
in the failure). A check that accepts a wrong program is a bug in the check: make it stronger
(labs/README.md, "A check that cannot be fooled")."""
import re

import pytest

from xdplab import checks
from test_labs import skip_if_unsupported

LABS = checks.all_labs()
BUG = re.compile(r"\A/\* Bug: (.+?) \*/\n")
MUTANTS = [(lab, path) for lab in LABS for path in sorted((lab / "wrong").glob("*.c"))]


def bug(path):
    m = BUG.match(path.read_text())
    return m.group(1) if m else None


@pytest.mark.parametrize("lab", LABS, ids=[p.name for p in LABS])
def test_every_lab_has_six_wrong_programs(lab):
    wrong = sorted((lab / "wrong").glob("*.c"))
    assert len(wrong) >= 6, f"{lab.name} has {len(wrong)} wrong programs in wrong/; a lab needs 6"
    assert {p.name for p in (lab / "wrong").iterdir()} == {p.name for p in wrong}, \
        "wrong/ holds only .c files"
    solution = (lab / "solution.c").read_text()
    bodies = set()
    for path in wrong:
        assert bug(path), f"{path.name} starts with a one-line comment /* Bug: what is wrong. */"
        body = BUG.sub("", path.read_text())
        assert body.strip() not in (solution.strip(), (lab / "starter.c").read_text().strip())
        assert body not in bodies, f"{path.name} is the same program as another wrong one"
        bodies.add(body)


@pytest.mark.parametrize("lab,path", MUTANTS, ids=[f"{lab.name}/{p.stem}" for lab, p in MUTANTS])
def test_check_rejects_wrong_program(lab, path):
    skip_if_unsupported(lab)
    seed = checks.new_seed()
    report = checks.run(lab, path.read_text(), seed=seed, stop_at_first_failure=True)
    assert report.error is None, (f"{path.name} must compile and load (else it tests the compiler, "
                                  f"not the check):\n{report.text()}")
    assert report.results and not report.passed, (
        f"the check of {lab.name} accepts {path.name} ({bug(path)}) with seed {seed}:\n"
        f"{report.text(reveal=True)}")
    assert report.failed[0].message


def test_a_wrong_program_s_report_teaches_without_giving_the_answer(tmp_path):
    """What a learner who reads ports from later fragments sees: the hidden cases it fails named
    by kind of packet only, the seed to repeat them, and the first hint; the visible ones pass."""
    from xdplab.progress import Progress
    lab = checks.find_lab("03a")
    wrong = (lab / "wrong" / "later-fragment-ports.c").read_text()
    report = checks.grade(lab, wrong, Progress(tmp_path / "p.json"), seed=1)
    text = report.text()
    assert not report.passed and report.seed == 1
    failed = [r for r in report.results if not r.passed]
    assert failed and all(r.hidden for r in failed), "only hidden cases catch this bug"
    assert ("✗ a case the notebook does not show failed: a later IPv4 fragment (one with no UDP "
            "header). Work out what the task asks for such a packet") in text
    assert "00 35 00 35" not in text and "it should be passed" not in text, "no answer given away"
    assert "00 35 00 35" in report.text(reveal=True)
    assert "`xdplab check 03a --seed 1` (or check(seed=1))" in text
    assert f"Hint 1 of 3: {checks.load_spec(lab).HINTS[0]}" in text
    assert "✓ UDP to port 53 from 10.11.0.1 was dropped" in text
