"""Checks for the self-paced labs (labs/NN-slug/): run the lab's cases against a learner's program.

    from xdplab.checks import check; check()     # in a lab notebook: checks its last %%xdp cell
    xdplab check 03a --program my.c               # on the command line

A check builds a fresh lab (labs/*/check.py: TOPOLOGY), loads the learner's program, attaches it
(ATTACH, MODE), runs every case — single packets through BPF_PROG_TEST_RUN and real traffic
through the lab — and returns a Report that says in plain words what each case saw. A program
that does not compile or load is an explained error (CompileError/VerifierError), not failed
cases. Every check is recorded in the progress store (xdplab.progress): a passing one marks the
lab done, a failing one shows the lab's next hint.

Each check draws fresh random packets (t.rng, xdplab.sampling) beside its fixed cases, from a seed
that the report names: `xdplab check 03a --seed 1234` or check(seed=1234) draws the same ones again.

A check.py holds (see labs/README.md):
    TITLE = "Drop DNS"                   # shown in reports and the progress view
    HINTS = ["a nudge", "closer", ...]   # shown one per failed check, in order
    ATTACH = "server"                    # host or "host:ifname" (or a list) to attach to; None: no attach
    MODE = "native"                      # XDP mode of the attachment
    def TOPOLOGY(): return xdplab.Lab.pair()       # optional; this is the default
    CASES = [verdict("UDP to port 53", pkt, "drop"), ...]
    @case("20 DNS queries from the client")        # a case written as a function
    def dns(t): ...  t.fail("3 of 20 reached the server; none should")
    @case("40 random packets", hidden=True, about="UDP and TCP with VLAN tags")
    def many(t): for i in range(40): t.expect(what, pkt, "drop", about=...)   # t.rng: this run's
"""
from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import itertools
import os
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Iterator, NoReturn

from xdplab.errors import LabError
from xdplab.labs.catalogue import LABS_DIR, all_labs, find_lab, load_spec, renamed  # noqa: F401 — checks.X as before
from xdplab.labs.progress import Progress
from xdplab.text import escape

if TYPE_CHECKING:
    from scapy.packet import Packet

    from xdplab.lab.listener import UdpListener
    from xdplab.lab.topology import Host, Lab
    from xdplab.maps.codecs import Encodable
    from xdplab.program.program import Program
    from xdplab.program.testrun import TestRunResult

    # a case's function: what was seen when it passed (or None); a verdict case's look further
    CaseFunction = Callable[["Trial"], str | None]      # Trial: defined below
    ResultCheck = Callable[[TestRunResult], str | None]
WORDS = {"XDP_ABORTED": "aborted (XDP_ABORTED)", "XDP_DROP": "dropped", "XDP_PASS": "passed",
         "XDP_TX": "sent back out (XDP_TX)", "XDP_REDIRECT": "redirected"}
SHORT = {"drop": "XDP_DROP", "pass": "XDP_PASS", "tx": "XDP_TX", "redirect": "XDP_REDIRECT",
         "aborted": "XDP_ABORTED"}
_order = itertools.count()


# -- declaring cases (used by labs/*/check.py) ---------------------------------------------------
class CaseFailed(Exception):
    """Raised by Trial.fail(): the case did not hold; the message says what was seen. `about`
    names the kind of packet in words that do not give the answer away (shown for hidden cases)."""

    def __init__(self, message: str, about: str | None = None) -> None:
        super().__init__(message)
        self.about = about


@dataclasses.dataclass
class Case:
    title: str
    run: CaseFunction        # function(trial) -> None, or a text saying what was seen when it passed
    hidden: bool = False     # not described in the lab's notebook
    about: str | None = None  # for a hidden case: what kind of packet it tries, not what should happen
    order: int = dataclasses.field(default_factory=lambda: next(_order))


def case(title: str, hidden: bool = False,
         about: str | None = None) -> Callable[[CaseFunction], Case]:
    """Decorator: `@case("what is checked")` over `def name(t): ...`; `t` is a Trial. The case
    fails when the function calls t.fail(message) or an assert fails (its message is shown).
    A hidden case names, in `about`, the kind of packet it tries: a failed hidden case shows
    only that, so the report does not give the answer away."""
    return lambda fn: Case(title, fn, hidden, about)


def word(verdict: str) -> str:
    """An XDP action in plain words: "dropped", "passed", "sent back out (XDP_TX)"..."""
    return WORDS.get(verdict, str(verdict))


def _layer_words(layer):
    """One layer of a packet in a few words, with numbers rather than scapy's port names."""
    name = type(layer).__name__
    f = layer.getfieldval
    if name == "Ether":
        return f"Ethernet {f('src')} → {f('dst')}"
    if name in ("Dot1Q", "Dot1AD"):
        return f"VLAN {f('vlan')}"
    if name == "IP":
        frag = (", a later fragment" if f("frag") else
                ", a first fragment" if int(f("flags")) & 1 else "")
        return f"IPv4 {f('src')} → {f('dst')} (TTL {f('ttl')}, checksum {f('chksum'):#06x}{frag})"
    if name == "IPv6":
        return f"IPv6 {f('src')} → {f('dst')}"
    if name in ("UDP", "TCP"):
        return f"{name} port {f('sport')} → port {f('dport')} (checksum {f('chksum'):#06x})"
    if name == "ICMP":
        kind = {0: "echo reply", 8: "echo request", 3: "destination unreachable",
                11: "time exceeded"}.get(f("type"), f"type {f('type')}")
        return f"ICMP {kind} (checksum {f('chksum'):#06x})"
    if name == "Raw":
        n = len(f("load"))
        return f"{n} byte{'s' if n != 1 else ''} of data"
    if name in ("ICMPv6EchoRequest", "ICMPv6EchoReply"):
        kind = "request" if name.endswith("Request") else "reply"
        return f"ICMPv6 echo {kind} (sequence {f('seq')}, checksum {f('cksum'):#06x})"
    ext = {"IPv6ExtHdrHopByHop": "hop-by-hop options", "IPv6ExtHdrDestOpt": "destination options",
           "IPv6ExtHdrRouting": "routing header", "IPv6ExtHdrFragment": "fragment header"}
    if name in ext:
        return ext[name] + (f" (offset {f('offset')})" if name == "IPv6ExtHdrFragment" else "")
    return layer.name


def summary(packet: Packet) -> str:
    """A packet in one line of plain words: "Ethernet ... / IPv4 10.11.0.1 → 10.11.0.2 (TTL 64,
    checksum 0x1c46) / UDP port 4000 → port 7001 (checksum 0xf04f) / 5 bytes of data"."""
    words = []
    try:
        layer = packet
        while layer is not None and type(layer).__name__ != "NoPayload":
            words.append(_layer_words(layer))
            layer = layer.payload if layer.payload else None
    except Exception:
        return f"{len(bytes(packet))} bytes"
    return " / ".join(words)


def verdict(what: str, packet: Packet | bytes, expect: str, hidden: bool = False,
            check: ResultCheck | None = None, about: str | None = None) -> Case:
    """A case that runs one packet through the program (BPF_PROG_TEST_RUN) and expects the verdict
    `expect` ("drop", "pass", "tx", "redirect" or XDP_...). `what` names the packet in plain words
    ("UDP to port 53 from 10.11.0.1"). `check(result)` may look further at the result (the output
    packet): it returns None when all is right, else a text saying what is wrong. `about`: the
    kind of packet, for a hidden case ("UDP behind IPv4 options")."""
    expect = SHORT.get(expect, expect)

    def run(t):
        t.expect(what, packet, expect, check=check, about=about)
        return f"{what} was {word(expect)}"
    return Case(f"{what} → {word(expect)}", run, hidden, about)


@dataclasses.dataclass
class Trial:
    """What a case function gets: the lab, the learner's program, this run's random numbers
    (`t.rng`, a random.Random seeded from the report's seed and the case) and a few helpers."""
    lab: Lab
    prog: Program
    rng: random.Random = dataclasses.field(default_factory=random.Random)
    seed: int | None = None

    def __getattr__(self, name: str) -> Host:           # t.client, t.server, t.router: the lab's hosts
        if name.startswith("_"):
            raise AttributeError(name)
        return self.lab[name]

    def fail(self, message: str, about: str | None = None) -> NoReturn:
        """End the case as failed; `message` says what was seen (see CaseFailed)."""
        raise CaseFailed(message, about)

    def verdict(self, packet: Packet | bytes) -> str:
        """The verdict of the learner's program on `packet` ("XDP_DROP"...)."""
        return self.prog.test_run(packet).verdict

    def expect(self, what: str, packet: Packet | bytes, expect: str,
               check: ResultCheck | None = None, about: str | None = None,
               run: Callable[[Packet | bytes], TestRunResult] | None = None) -> TestRunResult:
        """Run `packet` through the program and fail, in plain words, unless its verdict is
        `expect` and `check(result)` finds nothing wrong. The message says what was sent (`what`),
        what came out and what was expected. `run(packet)` replaces prog.test_run (e.g. a test
        run on another interface). Returns the TestRunResult."""
        expect = SHORT.get(expect, expect)
        result = (run or self.prog.test_run)(packet)
        if result.verdict != expect:
            self.fail(f"{what} was {word(result.verdict)}; it should be {word(expect)}", about)
        problem = check(result) if check else None
        if problem:
            self.fail(f"{what} was {word(result.verdict)}, but {problem} "
                      f"(what came out: {summary(result.packet)})", about)
        return result

    @contextlib.contextmanager
    def filled(self, map_name: str, first: str = "198.51.100.0", value: Encodable = 0,
               most: int = 1024) -> Iterator[list[ipaddress.IPv4Address]]:
        """Fill hash `map_name` of the learner's program (keyed by IPv4 address) up to its
        max_entries with made-up sources, at most `most` of them, from `first` on
        (198.51.100.0/22 by default), each with `value`; yields the addresses added (in order),
        and removes them again afterwards, also when the case fails. The entries that were there
        stay as they were."""
        m = self.prog.maps[map_name]
        kind = m.key_codec.kind

        def key(address):         # a learner may key it by __be32 (an address) or by u32
            return (address if kind in ("ipv4", "ipv4_host") else int(address) if kind == "be"
                    else int.from_bytes(address.packed, sys.byteorder))   # the bytes iph->saddr has
        present = set(m.keys())
        base = ipaddress.IPv4Address(first)
        added = []
        try:
            for i in range(most):
                if len(present) + len(added) >= m.max_entries:
                    break
                address = base + i
                k = key(address)
                if k not in present:
                    m[k] = value
                    added.append(address)
            yield added
        finally:
            for address in added:
                m.pop(key(address), None)

    def listen(self, host: Host, port: int) -> UdpListener:
        """A UDP socket on `host` (xdplab.listener.UdpListener): what really reached an application."""
        from xdplab.lab.listener import UdpListener
        return UdpListener(host, port)


# -- finding labs ----------------------------------------------------------------------------------
def cases_of(module: ModuleType) -> list[Case]:
    """The cases of a lab's check.py: its CASES and every Case it names, in the order made."""
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
    about: str | None = None  # the kind of packet (hidden cases show this instead of the message)

    def line(self, reveal: bool = False) -> str:
        """The report's line for this case. A hidden case shows what kind of packet it tried,
        not the packet itself or what should happen, unless `reveal` (a passed lab shows all)."""
        mark = "✓" if self.passed else "✗"
        if not self.hidden:
            return f"{mark} {self.message}"
        if reveal:
            return f"{mark} {self.message} (a case the notebook does not show)"
        about = self.about or "a packet the notebook does not show"
        if self.passed:
            return f"{mark} a case the notebook does not show: {about}"
        return (f"{mark} a case the notebook does not show failed: {about}. Work out what the task "
                "asks for such a packet, and what your program does with it")


@dataclasses.dataclass
class Report:
    lab: str
    title: str = ""
    results: list[Result] = dataclasses.field(default_factory=list)
    error: LabError | None = None  # the LabError (CompileError, VerifierError...) that stopped it
    hint: str | None = None  # the hint for this failed attempt
    hint_step: int = 0       # which hint (1-based) out of hint_count
    hint_count: int = 0
    seed: int | None = None  # what the random cases were drawn from: check(seed=...) repeats them
    skipped: int = 0         # cases not run (stop_at_first_failure)
    notes: list[str] = dataclasses.field(default_factory=list)   # e.g. the progress store's troubles
    unsupported: str | None = None  # why this kernel cannot run the check (the lab's REQUIRES)

    @property
    def passed(self) -> bool:
        """True if every case ran and passed."""
        return (self.error is None and self.unsupported is None and bool(self.results)
                and not self.skipped and all(r.passed for r in self.results))

    @property
    def exit_code(self) -> int:
        """0 on a pass, else 1: the exit status of `xdplab check`."""
        return 0 if self.passed else 1

    @property
    def failed(self) -> list[Result]:
        """The results of the cases that failed."""
        return [r for r in self.results if not r.passed]

    def summary(self) -> str:
        """The report's first line: the lab, and how many cases pass."""
        name = f"lab {self.lab}" + (f" ({self.title})" if self.title else "")
        if self.unsupported is not None:
            return f"{name}: this kernel cannot run the check, so no case ran (not counted as an attempt)"
        if self.error is not None:
            return f"{name}: your program did not load, so no case ran"
        good = sum(r.passed for r in self.results)
        if self.passed:
            return f"{name}: all {good} cases pass. Well done: the lab is complete."
        total = len(self.results) + self.skipped
        return f"{name}: {good} of {total} cases pass" + (
            f" ({self.skipped} not run after the first failure)" if self.skipped else "")

    def _number(self):
        number = self.lab.partition("-")[0]
        return number if number[:2].isdigit() else self.lab

    def seed_line(self) -> str | None:
        """Which seed drew the random packets and how to draw them again (None without a seed,
        or when the program did not load)."""
        if self.seed is None or self.error is not None:
            return None
        if self.passed:
            return f"The random packets of this check were drawn with seed {self.seed}."
        return (f"The random packets were drawn with seed {self.seed}: `xdplab check "
                f"{self._number()} --seed {self.seed}` (or check(seed={self.seed})) sends the "
                "same ones again.")

    def _hint_title(self):
        return f"Hint {self.hint_step} of {self.hint_count}"

    def _hint_after(self):
        if self.hint_step < self.hint_count:
            return f"(the next failed check shows hint {self.hint_step + 1})"
        return "(that is the last hint)"

    def lines(self, reveal: bool | None = None) -> list[str]:
        """Result.line() of every case; `reveal` by default when the lab passed."""
        reveal = self.passed if reveal is None else reveal
        return [r.line(reveal) for r in self.results]

    def text(self, reveal: bool | None = None) -> str:
        """The report in plain words. A failed hidden case shows only what kind of packet it
        tried; `reveal=True` shows everything (a passed lab always does)."""
        out = [self.summary()]
        if self.unsupported is not None:
            out += ["", self.unsupported]
        if self.error is not None:
            from xdplab.errors import render_exception
            out += ["", render_exception(self.error)]
        if self.passed and self.results:
            out.append("The cases your program passed:")
        out += [f"  {line}" for line in self.lines(reveal)]
        if self.seed_line():
            out += ["", self.seed_line()]
        if self.hint:
            out += ["", f"{self._hint_title()}: {self.hint} {self._hint_after()}"]
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)

    __str__ = text

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:    # p: IPython's pretty printer
        p.text(self.text())

    def _repr_html_(self) -> str:
        e = escape
        color = "var(--jp-success-color1, #2e7d32)" if self.passed else "var(--jp-error-color1, #c62828)"
        parts = [f'<div style="border-left:4px solid {color};padding:4px 10px;margin:4px 0;'
                 f'color:var(--jp-ui-font-color1)"><b style="color:{color}">{e(self.summary())}</b>']
        if self.unsupported is not None:
            parts.append(f"<div>{e(self.unsupported)}</div>")
        if self.error is not None:
            parts.append(self.error._repr_html_() if hasattr(self.error, "_repr_html_")
                         else f"<pre>{e(str(self.error))}</pre>")
        if self.results:
            if self.passed:
                parts.append("<div>The cases your program passed:</div>")
            parts.append('<ul style="list-style:none;padding-left:0;margin:4px 0">')
            for r, line in zip(self.results, self.lines()):
                mark = ('<span style="color:var(--jp-success-color1, #2e7d32)">✓</span>' if r.passed
                        else '<span style="color:var(--jp-error-color1, #c62828)">✗</span>')
                parts.append(f"<li>{mark} {e(line[2:])}</li>")
            parts.append("</ul>")
        if self.seed_line():
            parts.append(f"<div><small>{e(self.seed_line())}</small></div>")
        if self.hint:
            parts.append(f'<div style="border:1px solid var(--jp-border-color2);padding:4px 8px">'
                         f"<b>{e(self._hint_title())}:</b> {e(self.hint)} "
                         f"<i>{e(self._hint_after())}</i></div>")
        parts += [f"<div><small>note: {e(n)}</small></div>" for n in self.notes]
        return "".join(parts) + "</div>"


# -- running a check -------------------------------------------------------------------------------
def _attach(lab, prog, spec):
    targets = getattr(spec, "ATTACH", "server")
    mode = getattr(spec, "MODE", "native")
    for target in ([targets] if isinstance(targets, str) else list(targets or ())):
        prog.attach(target if ":" in target else lab[target], mode=mode)


def new_seed() -> int:
    """A fresh seed for a check's random packets: short enough to type."""
    return random.SystemRandom().randrange(1, 1_000_000)


def case_rng(seed: int, c: Case) -> random.Random:
    """The random numbers of case `c` in a check drawn with `seed`: the same for the same seed
    and case, whatever ran before it."""
    return random.Random(f"{seed}:{c.title}")


def run_case(c: Case, lab: Lab, prog: Program, seed: int) -> Result:
    """Run case `c` on a loaded (and attached) program: a Result."""
    trial = Trial(lab, prog, case_rng(seed, c), seed)
    try:
        seen = c.run(trial)
    except (CaseFailed, AssertionError) as e:
        return Result(c.title, False, str(e) or f"{c.title}: it did not hold", c.hidden,
                      getattr(e, "about", None) or c.about)
    except LabError as e:
        return Result(c.title, False, f"{c.title}: {e.message}", c.hidden, c.about)
    return Result(c.title, True, seen if isinstance(seen, str) else c.title, c.hidden, c.about)


def unsupported(spec: ModuleType) -> str | None:
    """Why this kernel cannot run the check of lab `spec`, or None. A check.py may name, in
    REQUIRES, findings of xdplab.probe() its cases need (e.g. "test_run_context": test_run_on())."""
    needs = tuple(getattr(spec, "REQUIRES", ()))
    if not needs:
        return None
    import xdplab
    probe = xdplab.probe()
    missing = [getattr(probe, name) for name in needs if not getattr(probe, name)]
    if not missing:
        return None
    return (f"Its cases need what Linux {probe.release} does not have: "
            + "; ".join(f"{f.here} (Linux {f.since}+)" for f in missing)
            + ". Try your program by hand with real traffic, as the lesson does, or check it on a "
              "newer kernel.")


def run(lab_dir: str | os.PathLike[str], source: str, seed: int | None = None,
        stop_at_first_failure: bool = False) -> Report:
    """Check C text `source` against the lab in `lab_dir`; returns a Report (nothing recorded).
    `seed` (default: a fresh one, named in the report) chooses the random packets.
    `stop_at_first_failure` skips the cases after the first that fails (the mutation tests
    need only the verdict)."""
    import xdplab
    lab_dir = Path(lab_dir)
    spec = load_spec(lab_dir)
    seed = new_seed() if seed is None else int(seed)
    report = Report(lab_dir.name, getattr(spec, "TITLE", ""), seed=seed)
    report.unsupported = unsupported(spec)
    if report.unsupported is not None:
        return report
    lab = (getattr(spec, "TOPOLOGY", None) or xdplab.Lab.pair)()
    try:
        try:
            prog = lab.load(source, name="learner")
            _attach(lab, prog, spec)
        except LabError as e:
            report.error = e
            return report
        todo = cases_of(spec)
        for i, c in enumerate(todo):
            report.results.append(run_case(c, lab, prog, seed))
            if stop_at_first_failure and not report.results[-1].passed:
                report.skipped = len(todo) - i - 1
                break
    finally:
        lab.close()
    return report


def grade(lab_dir: str | os.PathLike[str], source: str, store: Progress | None = None,
          seed: int | None = None) -> Report:
    """run() and record the attempt in the progress store: a pass marks the lab done, a failure
    attaches the lab's next hint to the report. A progress store that cannot be read or written
    never stops the check: the report says what happened in a note."""
    lab_dir = Path(lab_dir)
    report = run(lab_dir, source, seed=seed)
    if report.unsupported is not None:          # not the learner's doing: no attempt, no hint
        return report
    hints = list(getattr(load_spec(lab_dir), "HINTS", []))
    store = store or Progress()
    step = store.record(lab_dir.name, report.passed)
    report.notes += store.notices
    if not report.passed and hints:
        report.hint_step = min(max(step, 1), len(hints))
        report.hint_count = len(hints)
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


def check(lab: str | None = None, program: str | Path | None = None,
          seed: int | None = None) -> Report:
    """In a lab notebook: check the program of the last %%xdp cell (or `program`: C text or a
    file) against this lab (the notebook's folder, or `lab`: "03a", "03a-drop-by-port"...), and
    show the report. `seed` repeats the random packets of an earlier check (its report names
    the seed). Never raises for a failed check: the report says what to do."""
    from xdplab.program.program import read_source
    lab_dir = find_lab(lab) if lab else Path.cwd()
    if not (lab_dir / "check.py").is_file():
        raise LabError(f"{lab_dir} is not a lab folder",
                       "open the notebook from labs/NN-name/, or name the lab: check('03a')")
    if program is None:
        from IPython import get_ipython
        shell = get_ipython()
        program = _notebook_source(shell) if shell is not None else None
        if not program:
            raise LabError("there is no program to check yet",
                           "run the %%xdp cell with your program first, then check() again")
    else:
        program = read_source(program)[0]
    return grade(lab_dir, program, seed=seed)


def main(name: str, program: str | None = None, seed: int | None = None) -> int:
    """`xdplab check LAB [--program FILE] [--seed S]`: print the report; the exit code is 0 only
    on a pass."""
    from xdplab.program.program import read_source
    lab_dir = find_lab(name)
    if renamed(name) == lab_dir.name:
        print(f"(lab {name} is called {lab_dir.name} now: the labs are numbered by the lesson "
              "they follow)")
    source = read_source(Path(program) if program else lab_dir / "starter.c")[0]
    report = grade(lab_dir, source, seed=seed)
    print(report.text())
    return report.exit_code
