"""`%%xdp`: write an XDP program in a notebook cell, compile it and attach it in one step.

    %load_ext xdplab
    lab = xdplab.Lab.pair()

    %%xdp server --mode generic          (or several: %%xdp router:eth0 router:eth1)
    BPF_ARRAY(counters, u64, 5);
    int xdp_count(struct xdp_md *ctx) { ... }

    %%xdp server --libbpf                (libbpf-style C: SEC("xdp"), BTF-defined maps,
    #include <linux/bpf.h>                built with clang and loaded with libbpf; a cell that
    #include <bpf/bpf_helpers.h>          includes <bpf/bpf_helpers.h> and uses SEC() is read
    ...                                   as libbpf C without the flag too)

Afterwards the cell's program is `prog` (or the name given with --name) and each of its maps is a
variable of its own (`counters`). Running the cell again compiles the new C and replaces the
program on the interface atomically.

Line numbers. The C starts on the cell's second line (the first is `%%xdp ...`), so an error in C
line N is in cell line N+1: errors from the cell say "cell line N+1", and their source excerpt is
numbered as the cell is; `.line` stays the line in the C text, `.cell_line` is the cell's.
"""
from __future__ import annotations

import argparse
import re
import shlex
from typing import TYPE_CHECKING, TypeVar

from IPython.core.magic import Magics, cell_magic, magics_class

from xdplab.lab import topology
from xdplab.errors import CompileError, LabError, VerifierError, render_exception

if TYPE_CHECKING:
    from types import TracebackType

    from IPython.core.interactiveshell import InteractiveShell

    from xdplab.program.program import Attachment

_E = TypeVar("_E", bound=BaseException)
_LINE = re.compile(r"(?<![\w.-])line (\d+)")


def in_cell(err: _E, offset: int = 1) -> _E:
    """`err` (a CompileError or VerifierError about C whose line 1 is cell line 1 + offset) with
    every line number it shows counted in the cell's lines instead."""
    if not isinstance(err, (CompileError, VerifierError)) or err.line_offset:
        return err
    def shift(text):
        return _LINE.sub(lambda m: f"cell line {int(m.group(1)) + offset}", text) if text else text
    err.message = shift(err.message)
    err.args = (err.message,)
    err.explanation, err.hint, err.details = shift(err.explanation), shift(err.hint), shift(err.details)
    err.line_offset = offset
    err.cell_line = err.line + offset if err.line else None
    return err


def _parser():
    p = argparse.ArgumentParser(prog="%%xdp", add_help=False)
    p.add_argument("targets", nargs="+", help="lab hosts (their lab interface) or host:ifname")
    p.add_argument("--mode", default="native", choices=["native", "generic"])
    p.add_argument("--fn", default=None, help="XDP function to attach (default: the first)")
    p.add_argument("--name", default="prog", help="variable that receives the Program")
    p.add_argument("--lab", default=None, help="variable holding the Lab (default: the newest)")
    p.add_argument("--no-attach", action="store_true", help="only compile and verify")
    p.add_argument("--libbpf", action="store_true",
                   help="libbpf-style C, built with clang and loaded with libbpf")
    return p


@magics_class
class XdpMagics(Magics):
    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell)
        self._programs = {}

    def _lab(self, var):
        if var:
            lab = self.shell.user_ns.get(var)
            if not isinstance(lab, topology.Lab):
                raise LabError(f"{var!r} is not a Lab", "make one first: lab = xdplab.Lab.pair()")
            return lab
        labs = topology.open_labs()
        if not labs:
            raise LabError("%%xdp needs a lab to attach to", "run lab = xdplab.Lab.pair() first")
        return labs[-1]                  # the newest

    @cell_magic
    def xdp(self, line: str, cell: str) -> Attachment | list[Attachment] | None:
        """The %%xdp cell magic (see the module doc): the Attachment, a list of them, or None
        with --no-attach."""
        try:
            args = _parser().parse_args(shlex.split(line))
        except SystemExit:
            raise LabError(f"cannot read '%%xdp {line}'",
                           "use: %%xdp HOST [HOST:IFNAME ...] [--mode generic] [--fn NAME] "
                           "[--name VAR] [--libbpf]") from None
        lab = self._lab(args.lab)
        try:
            prog = lab.load(cell, name=args.name, dialect="libbpf" if args.libbpf else None)
        except (CompileError, VerifierError) as e:
            raise in_cell(e) from None
        key = (lab.id, args.name)
        old = self._programs.get(key)
        atts = [] if args.no_attach else [
            prog.attach(t if ":" in t else lab[t], fn=args.fn, mode=args.mode) for t in args.targets]
        if old is not None and old is not prog:
            old.close()          # the new program already replaced it on the interface
        self._programs[key] = prog
        self.shell.user_ns[args.name] = prog
        for name in prog.maps:
            self.shell.user_ns[name] = prog.maps[name]
        return atts[0] if len(atts) == 1 else (atts or None)


def exception_handler(shell: InteractiveShell, etype: type[BaseException], evalue: BaseException,
                      tb: TracebackType | None, tb_offset: int | None = None) -> list[str]:
    """IPython custom exception handler (`shell.set_custom_exc((LabError,), exception_handler)`):
    shows the short form of a LabError (HTML in a notebook, text in a terminal) instead of a
    traceback. The cell still fails, so "run all" stops there. IPython ignores the returned
    traceback when running cells; other paths print that one line."""
    if not isinstance(evalue, LabError):
        return shell.InteractiveTB.structured_traceback(etype, evalue, tb, tb_offset=tb_offset)
    from IPython.display import display
    display({"text/plain": render_exception(evalue), "text/html": render_exception(evalue, html=True)},
            raw=True)
    return [f"{etype.__name__} (explained above)"]


def load(shell: InteractiveShell) -> None:
    """%load_ext xdplab: the %%xdp magic, and LabErrors shown short (exception_handler)."""
    shell.register_magics(XdpMagics)
    shell.set_custom_exc((LabError,), exception_handler)
