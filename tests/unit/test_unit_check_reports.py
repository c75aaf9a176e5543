"""The lab checks' reports (xdplab.labs.checks) built from hand-made results: no program compiled,
no lab. The per-case ✓/✗ lines, hidden cases named by kind of packet only (unless revealed), the
seed and the `xdplab check NN --seed S` line, the hints in steps. The texts below are the ones
tests/test_checks.py and tests/test_mutants.py see from real checks; here each object is made
directly, so every line of the report is known in advance."""
import types

import pytest

from xdplab.errors import LabError, render_exception
from xdplab.labs import checks
from xdplab.labs.checks import Report, Result
from xdplab.labs.progress import Progress

HIDDEN_ANSWER = "UDP to port 54 from 10.11.0.1 was dropped; it should be passed"
WORK_IT_OUT = "Work out what the task asks for such a packet, and what your program does with it"


def results():
    """A wrong program's results: a visible case failed, a hidden one failed, a visible one passed."""
    return [Result("UDP to port 53 → dropped", False,
                   "UDP to port 53 from 10.11.0.1 was passed; it should be dropped"),
            Result("UDP to port 54 → passed", False, HIDDEN_ANSWER, hidden=True,
                   about="UDP to a port next to the blocked one"),
            Result("attached", True, "the program runs on the server in native mode")]


# -- one case, one line --------------------------------------------------------------------------
def test_a_visible_case_says_what_was_seen():
    assert Result("t", True, "UDP to port 53 was dropped").line() == "✓ UDP to port 53 was dropped"
    assert Result("t", False, "UDP to port 53 was passed; it should be dropped").line() == \
        "✗ UDP to port 53 was passed; it should be dropped"
    assert Result("t", True, "seen").line(reveal=True) == "✓ seen", "nothing to reveal"


def test_a_hidden_case_names_the_kind_of_packet_only():
    failed = Result("t", False, HIDDEN_ANSWER, hidden=True, about="a later IPv4 fragment")
    assert failed.line() == ("✗ a case the notebook does not show failed: a later IPv4 fragment. "
                             + WORK_IT_OUT)
    no_about = Result("t", False, HIDDEN_ANSWER, hidden=True)
    assert no_about.line() == ("✗ a case the notebook does not show failed: a packet the notebook "
                               "does not show. " + WORK_IT_OUT)
    passed = Result("t", True, "UDP to ports 4242, 5353 was passed", hidden=True, about="UDP to random ports")
    assert passed.line() == "✓ a case the notebook does not show: UDP to random ports"
    for r in (failed, no_about, passed):
        assert r.message not in r.line(), "the answer is not given away"
        assert r.line(reveal=True) == f"{r.line()[0]} {r.message} (a case the notebook does not show)"


# -- the report's text ---------------------------------------------------------------------------
def failing_report(**changes):
    report = Report("42-drop-53", "Drop port 53", results(), hint="first nudge", hint_step=1,
                    hint_count=3, seed=1234)
    for name, value in changes.items():
        setattr(report, name, value)
    return report


def test_a_failed_check_s_report_teaches_without_giving_the_answer():
    report = failing_report()
    assert not report.passed and report.exit_code == 1 and len(report.failed) == 2
    assert report.text().splitlines() == [
        "lab 42-drop-53 (Drop port 53): 1 of 3 cases pass",
        "  ✗ UDP to port 53 from 10.11.0.1 was passed; it should be dropped",
        "  ✗ a case the notebook does not show failed: UDP to a port next to the blocked one. "
        + WORK_IT_OUT,
        "  ✓ the program runs on the server in native mode",
        "",
        "The random packets were drawn with seed 1234: `xdplab check 42 --seed 1234` (or "
        "check(seed=1234)) sends the same ones again.",
        "",
        "Hint 1 of 3: first nudge (the next failed check shows hint 2)"]
    assert str(report) == report.text()
    for shown in (report.text(), report._repr_html_()):
        assert "port 54" not in shown and "should be passed" not in shown


def test_reveal_shows_the_hidden_cases_whole():
    text = failing_report().text(reveal=True)
    assert f"  ✗ {HIDDEN_ANSWER} (a case the notebook does not show)" in text.splitlines()
    assert "Work out what the task asks" not in text
    assert failing_report().text(reveal=False) == failing_report().text()


def test_a_passed_check_shows_every_case_it_survived():
    passed = [Result("a", True, "UDP to port 53 from 10.11.0.1 was dropped"),
              Result("b", True, "UDP to port 54 from 10.11.0.1 was passed", hidden=True,
                     about="UDP to a port next to the blocked one")]
    report = Report("42-drop-53", "Drop port 53", passed, seed=7)
    assert report.passed and report.exit_code == 0 and report.failed == []
    assert report.text().splitlines() == [
        "lab 42-drop-53 (Drop port 53): all 2 cases pass. Well done: the lab is complete.",
        "The cases your program passed:",
        "  ✓ UDP to port 53 from 10.11.0.1 was dropped",
        "  ✓ UDP to port 54 from 10.11.0.1 was passed (a case the notebook does not show)",
        "",
        "The random packets of this check were drawn with seed 7."]
    assert "✓ a case the notebook does not show: UDP to a port" in report.text(reveal=False)


@pytest.mark.parametrize("lab, number", [("42-drop-53", "42"), ("03a-drop-by-port", "03a"),
                                         ("my-own-lab", "my-own-lab")])
def test_the_seed_line_names_the_command_that_repeats_the_check(lab, number):
    report = Report(lab, results=results(), seed=55)
    assert report.seed_line() == (f"The random packets were drawn with seed 55: `xdplab check {number} "
                                  "--seed 55` (or check(seed=55)) sends the same ones again.")
    assert Report(lab, results=results()).seed_line() is None, "no seed, no line"
    assert "seed" not in Report(lab, results=results()).text()


def test_a_program_that_did_not_load_ran_no_case():
    error = LabError("line 3: use of undeclared identifier 'cout'", "declare it first")
    report = Report("42-drop-53", "Drop port 53", error=error, seed=9)
    assert not report.passed and report.exit_code == 1
    assert report.text().splitlines()[:2] == [
        "lab 42-drop-53 (Drop port 53): your program did not load, so no case ran", ""]
    assert render_exception(error) in report.text()
    assert report.seed_line() is None and "seed" not in report.text(), "no random packet was sent"


def test_a_kernel_that_cannot_run_the_check_says_why():
    report = Report("42-drop-53", results=[], unsupported="Its cases need what Linux 5.10 does not have")
    assert not report.passed
    assert report.text().splitlines() == [
        "lab 42-drop-53: this kernel cannot run the check, so no case ran (not counted as an attempt)",
        "", "Its cases need what Linux 5.10 does not have"]


def test_cases_not_run_after_the_first_failure_are_counted_and_fail_the_check():
    report = Report("42-drop-53", results=results()[:1], skipped=3)
    assert "0 of 4 cases pass (3 not run after the first failure)" in report.text()
    all_passed_then_stopped = Report("42-drop-53", results=results()[2:], skipped=1)
    assert not all_passed_then_stopped.passed
    assert Report("42-drop-53").passed is False, "no case at all is no pass"


def test_notes_and_the_last_hint():
    report = failing_report(hint="closest", hint_step=3, notes=["the progress file was not saved"])
    lines = report.text().splitlines()
    assert lines[-2:] == ["Hint 3 of 3: closest (that is the last hint)",
                          "note: the progress file was not saved"]


def test_the_html_report_escapes_what_it_shows():
    report = Report("42-drop-53", "Drop <port> 53",
                    [Result("a", False, 'UDP to "port" <53> was passed & more')],
                    hint="look at <udph->dest>", hint_step=2, hint_count=2, seed=3)
    html = report._repr_html_()
    assert "Drop &lt;port&gt; 53" in html and "<port>" not in html
    assert "UDP to &quot;port&quot; &lt;53&gt; was passed &amp; more" in html
    assert "<b>Hint 2 of 2:</b> look at &lt;udph-&gt;dest&gt;" in html
    assert "<i>(that is the last hint)</i>" in html and "seed 3" in html
    assert html.count("<li>") == 1 and "✗</span>" in html


# -- cases run on hand-made trials: what becomes of a case function's outcome --------------------
def run(c, seed=1, prog=None):
    return checks.run_case(c, None, prog, seed)


def test_a_case_function_s_outcome_becomes_its_result():
    @checks.case("says what it saw")
    def seen(t):
        return "3 of 3 replies came back"
    assert run(seen) == Result("says what it saw", True, "3 of 3 replies came back")

    @checks.case("says nothing")
    def quiet(t):
        pass
    assert run(quiet).message == "says nothing" and run(quiet).passed

    @checks.case("fails", hidden=True, about="ICMP")
    def fails(t):
        t.fail("2 of 3 replies came back", about="ICMP echo requests")
    assert run(fails) == Result("fails", False, "2 of 3 replies came back", True, "ICMP echo requests")

    @checks.case("asserts", hidden=True, about="TCP")
    def asserts(t):
        raise AssertionError()           # a bare `assert` in a check.py (pytest rewrites ours)
    assert run(asserts) == Result("asserts", False, "asserts: it did not hold", True, "TCP")

    @checks.case("meets a lab error")
    def lab_error(t):
        raise LabError("the map counters is empty")
    assert run(lab_error).message == "meets a lab error: the map counters is empty"


def test_a_case_s_random_numbers_follow_the_seed_and_the_case():
    @checks.case("draws three ports")
    def draws(t):
        return " ".join(str(t.rng.randrange(1000, 60000)) for _ in range(3)) + f" seed {t.seed}"

    @checks.case("another case")
    def other(t):
        return draws.run(t)
    one, again, later = run(draws, 5).message, run(draws, 5).message, run(draws, 6).message
    assert one == again and one != later and one.endswith(" seed 5")
    assert run(other, 5).message != one, "each case draws its own numbers"


def test_a_verdict_case_says_what_came_out_and_what_was_expected():
    def prog(verdict):
        return types.SimpleNamespace(test_run=lambda packet: types.SimpleNamespace(
            verdict=verdict, packet=packet))
    c = checks.verdict("UDP to port 53", b"\x00" * 42, "drop", hidden=True, about="UDP")
    assert c.title == "UDP to port 53 → dropped" and c.hidden
    assert run(c, prog=prog("XDP_PASS")) == Result(
        c.title, False, "UDP to port 53 was passed; it should be dropped", True, "UDP")
    assert run(c, prog=prog("XDP_DROP")) == Result(c.title, True, "UDP to port 53 was dropped", True, "UDP")
    assert run(c, prog=prog("XDP_TX")).message == \
        "UDP to port 53 was sent back out (XDP_TX); it should be dropped"
    checked = checks.verdict("UDP to port 7", b"\x00" * 42, "pass", check=lambda r: "its port should be 8")
    assert run(checked, prog=prog("XDP_PASS")).message == \
        "UDP to port 7 was passed, but its port should be 8 (what came out: 42 bytes)"


# -- grade(): the attempt recorded, the hints in steps -------------------------------------------
@pytest.fixture
def lab_dir(tmp_path):
    d = tmp_path / "labs" / "42-drop-53"
    d.mkdir(parents=True)
    (d / "check.py").write_text('TITLE = "Drop port 53"\nHINTS = ["first nudge", "closer", "closest"]\n')
    return d


def test_hints_come_one_per_failed_check_and_stop_at_the_last(lab_dir, tmp_path, monkeypatch):
    outcome = {"passed": False}

    def hand_made(lab_dir, source, seed=None):      # checks.run() without a lab: a fixed report
        good = [Result("a", True, "the program runs")]
        return Report(lab_dir.name, "Drop port 53", good if outcome["passed"] else results(), seed=seed)
    monkeypatch.setattr(checks, "run", hand_made)
    store = Progress(tmp_path / "progress.json")
    reports = [checks.grade(lab_dir, "int f;", store, seed=4) for _ in range(4)]
    assert [(r.hint, r.hint_step, r.hint_count) for r in reports] == [
        ("first nudge", 1, 3), ("closer", 2, 3), ("closest", 3, 3), ("closest", 3, 3)]
    assert reports[1].text().splitlines()[-1] == "Hint 2 of 3: closer (the next failed check shows hint 3)"
    assert reports[3].text().splitlines()[-1] == "Hint 3 of 3: closest (that is the last hint)"
    assert "`xdplab check 42 --seed 4`" in reports[0].text()
    assert store.get("42-drop-53")["attempts"] == 4 and not store.get("42-drop-53")["done"]
    outcome["passed"] = True
    done = checks.grade(lab_dir, "int f;", store, seed=4)
    assert done.passed and done.hint is None and "Hint" not in done.text()
    assert store.get("42-drop-53")["done"]


def test_a_check_the_kernel_cannot_run_is_no_attempt_and_shows_no_hint(lab_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(checks, "run", lambda lab_dir, source, seed=None: Report(
        lab_dir.name, unsupported="Its cases need what Linux 5.10 does not have"))
    store = Progress(tmp_path / "progress.json")
    report = checks.grade(lab_dir, "int f;", store)
    assert report.hint is None and "Hint" not in report.text()
    assert store.get("42-drop-53")["attempts"] == 0
