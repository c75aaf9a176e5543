"""Errors a newcomer can read: what went wrong, where, and what to do.

Every error xdplab raises on purpose derives from LabError. In a notebook they render as a short
block — the message, the learner's source line, why it happened, what to do — never as a raw
traceback: `_repr_html_` / `text()` give the two forms (`render_exception`); the IPython custom
exception handler that shows them is the UI's (xdplab.ui.magics.exception_handler, installed by
%load_ext xdplab), so this module imports nothing of IPython.
"""
from __future__ import annotations

from typing import Any

NL = "\n"


class LabError(Exception):
    """Something the learner (or the machine) has to fix. `.hint` says how."""
    details_title = "details"
    line_offset = 0         # the source excerpt is numbered from line 1 + line_offset (%%xdp: 1)

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message + (f"\n  → {self.hint}" if self.hint else "")

    # -- rendering ----------------------------------------------------------------------------------
    def _parts(self):
        """(title, source excerpt lines, explanation, hint, details) for the renderers."""
        excerpt = []
        line, src = getattr(self, "line", None), getattr(self, "source", None)
        if line and src:
            lines = src.splitlines()
            if 0 < line <= len(lines):
                text = lines[line - 1].expandtabs(4)
                excerpt.append(f"{line + self.line_offset:4} | {text}")
                col = getattr(self, "column", None)
                if col:
                    prefix = lines[line - 1][:col - 1].expandtabs(4)
                    excerpt.append(f"{'':4} | {' ' * len(prefix)}^")
        return (f"{type(self).__name__}: {self.message}", excerpt, getattr(self, "explanation", None),
                self.hint, getattr(self, "details", None))

    def text(self) -> str:
        """The short plain-text form: message, source line, explanation, hint (and details)."""
        title, excerpt, why, hint, details = self._parts()
        out = [title, *excerpt]
        if why:
            out.append(f"Why: {why}")
        if hint:
            out.append(f"Fix: {hint}")
        if details:
            out += ["", *details.splitlines()]
        return "\n".join(out)

    def _repr_html_(self) -> str:
        title, excerpt, why, hint, details = self._parts()
        from xdplab.text import escape as e      # (text.py imports this module)
        parts = ['<div style="border-left:4px solid var(--jp-error-color1,#c62828);padding:4px 10px;margin:4px 0">',
                 f'<b style="color:var(--jp-error-color1,#c62828)">{e(title)}</b>']
        if excerpt:
            parts.append('<pre style="margin:4px 0;padding:2px 4px;white-space:pre;word-break:normal;'
                         'overflow-x:auto;background:var(--jp-rendermime-error-background,#fdf2f2);'
                         f'color:var(--jp-content-font-color1,#212121)">{e(NL.join(excerpt))}</pre>')
        if why:
            parts.append(f"<div><b>Why:</b> {e(why)}</div>")
        if hint:
            parts.append(f"<div><b>Fix:</b> {e(hint)}</div>")
        if details:
            parts.append(f"<details><summary>{self.details_title}</summary><pre>{e(details)}</pre>"
                         "</details>")
        return "".join(parts) + "</div>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:    # p: IPython's pretty printer
        p.text(self.text())


class ClosedError(LabError):
    """Something was used after it was closed: a lab, a program (and so its maps), a log, a
    listener. Code that stops quietly when what it shows has gone away catches this one."""


class PrivilegeError(LabError):
    """Not root / missing CAP_NET_ADMIN, CAP_BPF, CAP_SYS_ADMIN."""


class SetupError(LabError):
    """The machine lacks something: header tree, bcc, a kernel feature."""


class _SourceError(LabError):
    """What CompileError and VerifierError share: where in the learner's C (`.line`, `.source`),
    why (`.explanation`), the tool's own words (`.raw` all of them, `.details` the part shown)."""

    def __init__(self, message: str, line: int | None = None, explanation: str | None = None,
                 hint: str | None = None, source: str | None = None, raw: str | None = None,
                 details: str | None = None) -> None:
        super().__init__(message, hint)
        self.line, self.explanation, self.source = line, explanation, source
        self.raw, self.details = raw, details


class CompileError(_SourceError):
    """clang rejected the learner's C. `.line` (and `.column`) are 1-based in the learner's source;
    `.source` is the learner's C text, `.raw` clang's whole output, `.details` the clang messages
    that followed the first error."""
    details_title = "more from the compiler"

    def __init__(self, message: str, line: int | None = None, explanation: str | None = None,
                 hint: str | None = None, source: str | None = None, raw: str | None = None,
                 column: int | None = None, details: str | None = None) -> None:
        super().__init__(message, line, explanation, hint, source, raw, details)
        self.column = column


class VerifierError(_SourceError):
    """The kernel's verifier rejected the program. `.line` is 1-based in the learner's source;
    `.instruction` is the rejected BPF instruction, `.details` the end of the verifier's log (the
    last instructions with register state, source lines renumbered to the learner's), `.raw` the
    whole log."""
    details_title = "the end of the verifier's log"

    def __init__(self, message: str, line: int | None = None, explanation: str | None = None,
                 hint: str | None = None, source: str | None = None, raw: str | None = None,
                 instruction: str | None = None, function: str | None = None,
                 details: str | None = None) -> None:
        super().__init__(message, line, explanation, hint, source, raw, details)
        self.instruction, self.function = instruction, function


# -- checking what a learner passed ----------------------------------------------------------------
def is_count(value: object, least: int = 1, most: int | None = None) -> bool:
    """True if `value` is a whole number (an int, not a bool) from `least` to `most` (no limit)."""
    return (isinstance(value, int) and not isinstance(value, bool) and value >= least
            and (most is None or value <= most))


def is_positive(value: object) -> bool:
    """True if `value` is a number (int or float, not a bool) above 0."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def check_count(value: Any, name: str, *, least: int = 1, most: int | None = None,
                example: object = None, hint: str | None = None) -> int:
    """`value` if it is a whole number from `least` to `most` (is_count), else a LabError that
    names the option and the value, and says the fix: `hint`, or "e.g. {name}={example}"."""
    if not is_count(value, least, most):
        span = f"from {least} to {most:,}" if most is not None else f"from {least} on"
        raise LabError(f"{name} must be a whole number {span}, not {value!r}",
                       hint or (f"e.g. {name}={example}" if example is not None else None))
    return value


def check_positive(value: Any, name: str, *, unit: str | None = None, example: object = None,
                   hint: str | None = None) -> float:
    """`value` as a float if it is a number above 0 (is_positive), else a LabError that names the
    option, its `unit` ("seconds") and the value, and says the fix (`hint` or `example`)."""
    if not is_positive(value):
        kind = f"a number of {unit}" if unit else "a number"
        raise LabError(f"{name} must be {kind} above 0, not {value!r}",
                       hint or (f"e.g. {name}={example}" if example is not None else None))
    return float(value)


def render_exception(exc: BaseException, html: bool = False) -> str:
    """The short form of `exc` as a string: HTML (for a notebook) or plain text. Other exceptions
    give their one-line `Type: message`."""
    if isinstance(exc, LabError):
        return exc._repr_html_() if html else exc.text()
    from xdplab.text import escape
    text = f"{type(exc).__name__}: {exc}"
    return f"<pre>{escape(text)}</pre>" if html else text
