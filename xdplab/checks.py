"""Checks for the self-paced labs (labs/NN-slug/): run the lab's cases against a learner's program.

    from xdplab.checks import check; check()     # in a lab notebook: checks its last %%xdp cell
    xdplab check 01 --program my.c                # on the command line

A check builds a fresh lab (labs/*/check.py: TOPOLOGY), loads the learner's program, attaches it
(ATTACH, MODE), runs every case — single packets through BPF_PROG_TEST_RUN and real traffic
through the lab — and returns a Report that says in plain words what each case saw. A program
that does not compile or load is an explained error (CompileError/VerifierError), not failed
cases. Every check is recorded in the progress store (xdplab.progress): a passing one marks the
lab done, a failing one shows the lab's next hint.

A check.py holds (see labs/README.md):
    TITLE = "Drop DNS"                   # shown in reports and the progress view
    HINTS = ["a nudge", "closer", ...]   # shown one per failed check, in order
    ATTACH = "server"                    # host or "host:ifname" (or a list) to attach to; None: no attach
    MODE = "native"                      # XDP mode of the attachment
    def TOPOLOGY(): return xdplab.Lab.pair()       # optional; this is the default
    CASES = [verdict("UDP to port 53", pkt, "drop"), ...]
    @case("20 DNS queries from the client")        # a case written as a function
    def dns(t): ...  t.fail("3 of 20 reached the server; none should")
"""
import dataclasses
import html
import importlib.util
import itertools
from pathlib import Path

from .errors import LabError
from .program import REPO

LABS_DIR = REPO / "labs"
WORDS = {"XDP_ABORTED": "aborted (XDP_ABORTED)", "XDP_DROP": "dropped", "XDP_PASS": "passed",
         "XDP_TX": "sent back out (XDP_TX)", "XDP_REDIRECT": "redirected"}
SHORT = {"drop": "XDP_DROP", "pass": "XDP_PASS", "tx": "XDP_TX", "redirect": "XDP_REDIRECT",
         "aborted": "XDP_ABORTED"}
_order = itertools.count()


# -- declaring cases (used by labs/*/check.py) ---------------------------------------------------
class CaseFailed(Exception):
    """Raised by Trial.fail(): the case did not hold; the message says what was seen."""


@dataclasses.dataclass
class Case:
    title: str
    run: object              # function(trial) -> None, or a text saying what was seen when it passed
    hidden: bool = False     # not described in the lab's notebook
    order: int = dataclasses.field(default_factory=lambda: next(_order))


def case(title, hidden=False):
    """Decorator: `@case("what is checked")` over `def name(t): ...`; `t` is a Trial. The case
    fails when the function calls t.fail(message) or an assert fails (its message is shown)."""
    return lambda fn: Case(title, fn, hidden)


def word(verdict):
    return WORDS.get(verdict, str(verdict))


def verdict(what, packet, expect, hidden=False, check=None):
    """A case that runs one packet through the program (BPF_PROG_TEST_RUN) and expects the verdict
    `expect` ("drop", "pass", "tx", "redirect" or XDP_...). `what` names the packet in plain words
    ("UDP to port 53 from 10.11.0.1"). `check(result)` may look further at the result (the output
    packet): it returns None when all is right, else a text saying what is wrong."""
    expect = SHORT.get(expect, expect)

    def run(t):
        result = t.prog.test_run(packet)
        if result.verdict != expect:
            t.fail(f"{what} was {word(result.verdict)}; it should be {word(expect)}")
        problem = check(result) if check else None
        if problem:
            t.fail(f"{what} was {word(result.verdict)}, but {problem}")
        return f"{what} was {word(expect)}"
    return Case(f"{what} → {word(expect)}", run, hidden)


@dataclasses.dataclass
class Trial:
    """What a case function gets: the lab, the learner's program, and a few helpers."""
    lab: object
    prog: object

    def __getattr__(self, name):           # t.client, t.server, t.router: the lab's hosts
        if name.startswith("_"):
            raise AttributeError(name)
        return self.lab[name]

    def fail(self, message):
        raise CaseFailed(message)

    def verdict(self, packet):
        return self.prog.test_run(packet).verdict

    def listen(self, host, port):
        """A UDP socket on `host` (xdplab.listener.UdpListener): what really reached an application."""
        from .listener import UdpListener
        return UdpListener(host, port)


# -- finding labs ----------------------------------------------------------------------------------
def all_labs(root=None):
    """Directories of the labs under `root` (labs/), in curriculum order."""
    root = Path(root or LABS_DIR)
    return sorted(p for p in root.iterdir() if (p / "check.py").is_file()) if root.is_dir() else []


def find_lab(name, root=None):
    """A lab's directory from its name: "01", "1", "01-drop-by-port", "drop-by-port" or a path."""
    path = Path(name)
    if (path / "check.py").is_file():
        return path.resolve()
    labs = all_labs(root)
    for lab in labs:
        number, _, slug = lab.name.partition("-")
        if name in (lab.name, slug, number) or (name.isdigit() and number.isdigit()
                                                and int(name) == int(number)):
            return lab
    raise LabError(f"there is no lab {name!r}",
                   "the labs are: " + (", ".join(p.name for p in labs) or "none"))


def load_spec(lab_dir):
    """The lab's check.py as a module."""
    lab_dir = Path(lab_dir)
    spec = importlib.util.spec_from_file_location(f"xdplab_lab_{lab_dir.name.replace('-', '_')}",
                                                  lab_dir / "check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cases_of(module):
    found = {id(c): c for c in getattr(module, "CASES", [])}
    found.update({id(v): v for v in vars(module).values() if isinstance(v, Case)})
    return sorted(found.values(), key=lambda c: c.order)


# -- the report ------------------------------------------------------------------------------------
@dataclasses.dataclass
class Result:
    title: str
    passed: bool
    message: str
    hidden: bool = False


@dataclasses.dataclass
class Report:
    lab: str
    title: str = ""
    results: list = dataclasses.field(default_factory=list)
    error: object = None     # the LabError (CompileError, VerifierError...) that stopped the check
    hint: str = None         # the hint for this failed attempt
    hint_step: int = 0       # which hint (1-based) out of hint_count
    hint_count: int = 0

    @property
    def passed(self):
        return self.error is None and bool(self.results) and all(r.passed for r in self.results)

    @property
    def exit_code(self):
        return 0 if self.passed else 1

    def summary(self):
        name = f"lab {self.lab}" + (f" ({self.title})" if self.title else "")
        if self.error is not None:
            return f"{name}: your program did not load, so no case ran"
        good = sum(r.passed for r in self.results)
        if self.passed:
            return f"{name}: all {good} cases pass. Well done: the lab is complete."
        return f"{name}: {good} of {len(self.results)} cases pass"

    def _hint_title(self):
        return f"Hint {self.hint_step} of {self.hint_count}"

    def text(self):
        out = [self.summary()]
        if self.error is not None:
            from .errors import render_exception
            out += ["", render_exception(self.error)]
        for r in self.results:
            extra = " (a case the notebook does not show)" if r.hidden and not r.passed else ""
            out.append(f"  {'✓' if r.passed else '✗'} {r.message}{extra}")
        if self.hint:
            out += ["", f"{self._hint_title()}: {self.hint}"]
        return "\n".join(out)

    __str__ = text

    def _repr_pretty_(self, p, cycle):
        p.text(self.text())

    def _repr_html_(self):
        e = html.escape
        color = "var(--jp-success-color1, #2e7d32)" if self.passed else "var(--jp-error-color1, #c62828)"
        parts = [f'<div style="border-left:4px solid {color};padding:4px 10px;margin:4px 0;'
                 f'color:var(--jp-ui-font-color1)"><b style="color:{color}">{e(self.summary())}</b>']
        if self.error is not None:
            parts.append(self.error._repr_html_() if hasattr(self.error, "_repr_html_")
                         else f"<pre>{e(str(self.error))}</pre>")
        if self.results:
            parts.append('<ul style="list-style:none;padding-left:0;margin:4px 0">')
            for r in self.results:
                mark = ('<span style="color:var(--jp-success-color1, #2e7d32)">✓</span>' if r.passed
                        else '<span style="color:var(--jp-error-color1, #c62828)">✗</span>')
                extra = " <i>(a case the notebook does not show)</i>" if r.hidden and not r.passed else ""
                parts.append(f"<li>{mark} {e(r.message)}{extra}</li>")
            parts.append("</ul>")
        if self.hint:
            parts.append(f'<div style="border:1px solid var(--jp-border-color2);padding:4px 8px">'
                         f"<b>{e(self._hint_title())}:</b> {e(self.hint)}</div>")
        return "".join(parts) + "</div>"


# -- running a check -------------------------------------------------------------------------------
def _attach(lab, prog, spec):
    targets = getattr(spec, "ATTACH", "server")
    mode = getattr(spec, "MODE", "native")
    for target in ([targets] if isinstance(targets, str) else list(targets or ())):
        prog.attach(target if ":" in target else lab[target], mode=mode)


def _run_case(c, trial):
    try:
        seen = c.run(trial)
    except (CaseFailed, AssertionError) as e:
        return Result(c.title, False, str(e) or f"{c.title}: it did not hold", c.hidden)
    except LabError as e:
        return Result(c.title, False, f"{c.title}: {e.message}", c.hidden)
    return Result(c.title, True, seen if isinstance(seen, str) else c.title, c.hidden)


def run(lab_dir, source):
    """Check C text `source` against the lab in `lab_dir`; returns a Report (nothing recorded)."""
    import xdplab
    lab_dir = Path(lab_dir)
    spec = load_spec(lab_dir)
    report = Report(lab_dir.name, getattr(spec, "TITLE", ""))
    lab = (getattr(spec, "TOPOLOGY", None) or xdplab.Lab.pair)()
    try:
        try:
            prog = lab.load(source, name="learner")
            _attach(lab, prog, spec)
        except LabError as e:
            report.error = e
            return report
        trial = Trial(lab, prog)
        report.results = [_run_case(c, trial) for c in cases_of(spec)]
    finally:
        lab.close()
    return report


def grade(lab_dir, source, store=None):
    """run() and record the attempt in the progress store: a pass marks the lab done, a failure
    attaches the lab's next hint to the report."""
    from .progress import Progress
    lab_dir = Path(lab_dir)
    report = run(lab_dir, source)
    hints = list(getattr(load_spec(lab_dir), "HINTS", []))
    store = store or Progress()
    step = store.record(lab_dir.name, report.passed)
    if not report.passed and hints:
        report.hint_step, report.hint_count = min(step, len(hints)), len(hints)
        report.hint = hints[report.hint_step - 1]
    return report


def _notebook_source(shell):
    """The C of the notebook's last %%xdp cell, even when that cell failed to compile."""
    for cell in reversed(shell.user_ns.get("In", [])):
        text = cell.lstrip()
        if text.startswith("get_ipython().run_cell_magic('xdp'"):
            # IPython stores a cell magic as a call: run_cell_magic('xdp', 'line', 'body')
            import ast
            call = ast.parse(text).body[0].value
            return ast.literal_eval(call.args[2])
        if text.startswith("%%xdp"):
            return text.split("\n", 1)[1] if "\n" in text else ""
    prog = shell.user_ns.get("prog")
    return getattr(prog, "source", None)


def check(lab=None, program=None):
    """In a lab notebook: check the program of the last %%xdp cell (or `program`: C text or a
    file) against this lab (the notebook's folder, or `lab`: "01", "01-drop-by-port"...), and
    show the report. Never raises for a failed check: the report says what to do."""
    from .program import read_source
    lab_dir = find_lab(lab) if lab else Path.cwd()
    if not (lab_dir / "check.py").is_file():
        raise LabError(f"{lab_dir} is not a lab folder",
                       "open the notebook from labs/NN-name/, or name the lab: check('01')")
    if program is None:
        from IPython import get_ipython
        shell = get_ipython()
        program = _notebook_source(shell) if shell is not None else None
        if not program:
            raise LabError("there is no program to check yet",
                           "run the %%xdp cell with your program first, then check() again")
    else:
        program = read_source(program)[0]
    return grade(lab_dir, program)


def main(name, program=None):
    """`xdplab check LAB [--program FILE]`: print the report; the exit code is 0 only on a pass."""
    from .program import read_source
    lab_dir = find_lab(name)
    source = read_source(Path(program) if program else lab_dir / "starter.c")[0]
    report = grade(lab_dir, source)
    print(report.text())
    return report.exit_code

