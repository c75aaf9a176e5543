"""Errors a newcomer can read: what went wrong, where, and what to do.

Every error xdplab raises on purpose derives from LabError. In a notebook they render as a short
message (see `_repr_html_` / the IPython hook in xdplab.magics), never as a raw traceback.
"""


class LabError(Exception):
    """Something the learner (or the machine) has to fix. `.hint` says how."""

    def __init__(self, message, hint=None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self):
        return self.message + (f"\n  → {self.hint}" if self.hint else "")


class PrivilegeError(LabError):
    """Not root / missing CAP_NET_ADMIN, CAP_BPF, CAP_SYS_ADMIN."""


class SetupError(LabError):
    """The machine lacks something: header tree, bcc, a kernel feature."""


class CompileError(LabError):
    """clang rejected the learner's C. `.line` is 1-based in the learner's source."""

    def __init__(self, message, line=None, explanation=None, hint=None, source=None, raw=None):
        super().__init__(message, hint)
        self.line = line
        self.explanation = explanation
        self.source = source
        self.raw = raw


class VerifierError(LabError):
    """The kernel's verifier rejected the program. `.line` is 1-based in the learner's source."""

    def __init__(self, message, line=None, explanation=None, hint=None, source=None, raw=None,
                 instruction=None, function=None):
        super().__init__(message, hint)
        self.line = line
        self.explanation = explanation
        self.source = source
        self.raw = raw
        self.instruction = instruction
        self.function = function
