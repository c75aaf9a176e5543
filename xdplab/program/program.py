"""A Program: the learner's C, compiled by bcc, checked by the verifier, attached to lab interfaces.

    prog = lab.load("xdp_count.c")          # a file under bpf/, or C text
    prog.attach(lab.server)                  # native mode on the server's lab interface
    prog.maps["counters"].snapshot()
    prog.test_run(Ether()/IP()/UDP())        # run it on one packet, no network needed

Every XDP function of the source (int NAME(struct xdp_md *ctx)) is verified when the program is
loaded, so a verifier rejection shows up at `lab.load`, explained (xdplab.VerifierError).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from xdplab.kernel import headers
from xdplab.kernel.constants import XDP_MODES
from xdplab.kernel import netns
from xdplab.errors import ClosedError, LabError, SetupError

if TYPE_CHECKING:
    from scapy.packet import Packet

    from xdplab.lab.topology import Host, Interface, Lab
    from xdplab.program.events import EventLog
    from xdplab.program.testrun import TestRunResult

REPO = Path(__file__).resolve().parents[2]
BPF_DIR = REPO / "bpf"
INCLUDE = BPF_DIR / "include"

MODES = XDP_MODES                # "native" / "generic" → the attach flag (xdplab.kernel.constants)
_XDP_FN = re.compile(r"\bint\s+(\w+)\s*\(\s*struct\s+xdp_md\s*\*\s*\w*\s*\)")
_TX = re.compile(r"\bXDP_TX\b")
_REDIRECT = re.compile(r"redirect")


def _bcc():
    try:
        import bcc
    except ImportError:
        raise SetupError("bcc's Python bindings are not importable",
                         "run 'sudo make install' (installs python3-bpfcc) and use the kernel "
                         "'Python (xdplab)' / .venv/bin/python, made with --system-site-packages") from None
    return bcc


def xdp_functions(source: str) -> list[str]:
    """Names of the XDP programs in C `source`: non-static functions `int NAME(struct xdp_md *)`,
    outside comments and strings (static ones are helpers the compiler inlines)."""
    from xdplab.diagnostics import code_only
    code = code_only(source)
    names = []
    for m in _XDP_FN.finditer(code):
        line_start = code.rfind("\n", 0, m.start()) + 1
        if not re.search(r"\bstatic\b", code[line_start:m.start()]):
            names.append(m.group(1))
    return names


def source_beside(obj: str | Path) -> Path | None:
    """The C file an object file was built from, beside it with the same stem (prog.o, or
    prog.bpf.o: prog.bpf.c, else prog.c), or None."""
    obj = Path(obj)
    stem = obj.name[:-2].removesuffix(".bpf")
    return next((p for p in (obj.with_name(stem + ext) for ext in (".bpf.c", ".c"))
                 if p.is_file()), None)


def read_source(source: str | Path) -> tuple[str, str | None]:
    """(C text, the file's path or None) from `source`: C text itself, a path, or a file name
    under bpf/. For an object file (.o) the text is that of the C file beside it with the same
    stem (prog.o: prog.bpf.c or prog.c), if there is one, else ""."""
    if isinstance(source, Path) or ("\n" not in source and source.strip().endswith((".c", ".o"))):
        for path in (Path(source), BPF_DIR / source):
            if path.is_file():
                if path.suffix == ".o":
                    c = source_beside(path)
                    return (c.read_text() if c else ""), str(path)
                return path.read_text(), str(path)
        raise LabError(f"no BPF {'object' if str(source).endswith('.o') else 'source'} file "
                       f"{str(source)!r}", f"give C text, a path, or the name of a file in {BPF_DIR}")
    return source, None


@dataclasses.dataclass
class Attachment:
    """Where a program runs: interface, function, mode, and anything the lab did for it."""
    program: Program
    iface: Interface | str            # a str: an interface of this machine (allow_host=True)
    fn: str
    mode: str
    prog_id: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)

    def __repr__(self):
        notes = "".join(f"\n  note: {n}" for n in self.notes)
        return f"<{self.fn} attached to {self.iface} in {self.mode} mode (prog id {self.prog_id})>{notes}"


class Program:
    def __init__(self, lab: Lab, source: str | Path, cflags: Sequence[str] = (),
                 name: str | None = None, dialect: str | None = None) -> None:
        from xdplab import diagnostics
        from xdplab.program import objects
        self.lab = lab
        self.source, self.path = read_source(source)
        self.name = name or (Path(self.path).stem.removesuffix(".bpf") if self.path else "program")
        self.attachments: list[Attachment] = []
        self._fns = {}
        self.bpf = None
        # "bcc" (compiled by bcc), "libbpf" (by clang, loaded by libbpf) or "object" (a .o)
        self.dialect = objects.dialect_of(self.source, self.path, dialect)
        if self.dialect != "bcc":
            self._load_object(cflags)
            return
        headers.ensure()
        _bcc()
        flags = [f"-I{INCLUDE}", *diagnostics.CFLAGS, *cflags]
        from xdplab.program import compiler
        from xdplab.program.capture import prepare
        text = prepare(self.source)      # adds what a program using CAPTURE() needs; lines kept
        self.functions = xdp_functions(self.source)
        try:
            # one clang run, in the compile helper: LLVM may exit() the process it runs in
            self.bpf = compiler.load(text, flags, self.functions)
        except compiler.Crashed as e:
            raise diagnostics.compile_error(e.text, self.source) from None
        except compiler.Failed as e:
            if e.reply is None:
                raise diagnostics.compile_error(e.text, self.source) from None
            r = e.reply
            raise diagnostics.verifier_error(r["log"], self.source, r["function"],
                                             listing=r.get("listing"), full=r.get("full")) from None
        self.cached = self.bpf.cached
        if not self.functions:
            self.close()
            raise LabError("no XDP function found in the program",
                           "an XDP program is a function 'int NAME(struct xdp_md *ctx)' returning an "
                           "XDP action such as XDP_PASS")
        self._fns = dict(self.bpf.funcs)
        from xdplab.maps import Maps
        self.maps = Maps(self)

    def _load_object(self, cflags: Sequence[str]) -> None:
        """The libbpf dialect: clang builds the object (unless it is one already), libbpf loads
        it (xdplab.program.objects); then the program is like any other."""
        from xdplab.kernel.constants import PIN_ROOT
        from xdplab.program import objects
        built = None
        if self.dialect == "object":
            if cflags:
                raise LabError("cflags are for C that xdplab compiles; this is an object file "
                               "built already", "build it again with those flags, or give the "
                               "C file: lab.load('prog.bpf.c', cflags=[...])")
            obj = self.path
            beside = source_beside(self.path)
            main = beside.name if beside else None
        else:
            built = objects.build(self.source, self.path, cflags, self.name)
            obj, main = built.obj, built.main
        try:
            self.bpf = objects.load(obj, self.source, main, pin_root=PIN_ROOT / self.lab.id)
        finally:
            if built is not None:
                built.cleanup()
        self.cached = False
        self.functions = list(self.bpf.funcs)
        self._fns = dict(self.bpf.funcs)
        from xdplab.maps import Maps
        self.maps = Maps(self)

    def __repr__(self):
        where = ", ".join(f"{a.iface} ({a.mode})" for a in self.attachments) or "not attached"
        return f"<Program {self.name}: {', '.join(self.functions)}; {where}>"

    # -- functions ----------------------------------------------------------------------------------
    def fn_name(self, fn: str | None = None) -> str:
        """The name of XDP function `fn`: the first one when None, else a LabError naming those
        there are."""
        if fn is None:
            return self.functions[0]
        if fn not in self._fns:
            raise LabError(f"the program has no XDP function {fn!r}",
                           f"its XDP functions: {', '.join(self.functions)}")
        return fn

    def fd(self, fn: str | None = None) -> int:
        """The kernel file descriptor of XDP function `fn` (the first one by default)."""
        self.check_open()
        return self._fns[self.fn_name(fn)].fd

    def check_open(self) -> None:
        """Raise ClosedError if this program is closed (and with it its maps and logs)."""
        if self.bpf is None:
            raise ClosedError(f"program {self.name!r} is closed", "load it again: lab.load(...)")

    # -- attaching -----------------------------------------------------------------------------------
    def attach(self, target: Host | Interface | str, fn: str | None = None, mode: str = "native",
               allow_host: bool = False, fix_veth: bool = True) -> Attachment:
        """Attach XDP function `fn` to `target` (a Host — its lab interface —, an Interface,
        "host:ifname", or an interface name inside a lab host). Re-attaching replaces the program
        atomically. With fix_veth, frames this program sends with XDP_TX/redirect into a veth are
        made receivable (see `veth_rule`)."""
        self.check_open()
        self.lab.check_open()
        fn = self.fn_name(fn)
        if mode not in MODES:
            raise LabError(f"unknown XDP mode {mode!r}", "use mode='native' or mode='generic'")
        iface = None if allow_host and isinstance(target, str) else self.lab.interface(target)
        if iface is None:
            if not allow_host:
                raise LabError(
                    f"{target!r} is not an interface of this lab: xdplab only attaches to interfaces "
                    "inside lab hosts, so no lesson can cut this machine off its network",
                    "attach to a lab host (prog.attach(lab.server)) or 'host:ifname'; pass "
                    "allow_host=True only if you really mean an interface of this machine")
            set_xdp(None, str(target), self._fns[fn].fd, mode)
            att = Attachment(self, str(target), fn, mode)
        else:
            self.lab.settle()            # the new links' start-up chatter is not counted
            current = iface.xdp()
            if current.mode and current.mode != mode:
                # native and generic cannot be active together: remove the other one first
                set_xdp(iface.host.ns, iface.name, -1, current.mode)
            for other in self.lab.programs:
                other.attachments = [a for a in other.attachments if a.iface is not iface]
            set_xdp(iface.host.ns, iface.name, self._fns[fn].fd, mode)
            att = Attachment(self, iface, fn, mode, iface.xdp().prog_id)
            if fix_veth and mode == "native":
                att.notes += veth_rule(iface, self.source)
        self.attachments.append(att)
        return att

    def detach(self, target: Host | Interface | str | None = None) -> None:
        """Remove this program from `target`, or from everywhere it is attached."""
        keep = []
        iface = None if target is None else (self.lab.interface(target) or str(target))
        for a in self.attachments:
            if iface is None or a.iface is iface or a.iface == iface:
                if isinstance(a.iface, str):
                    set_xdp(None, a.iface, -1, a.mode)
                elif netns.exists(a.iface.host.ns):
                    set_xdp(a.iface.host.ns, a.iface.name, -1, a.mode)
            else:
                keep.append(a)
        self.attachments = keep

    def events(self, map_name: str, **options: Any) -> EventLog:
        """A live log of the events this program sends through perf or ring buffer `map_name`
        (see xdplab.events.EventLog)."""
        from xdplab.program.events import EventLog
        self.check_open()
        return EventLog(self, map_name, **options)

    # -- running on single packets -----------------------------------------------------------------
    def test_run(self, packet: Packet | bytes, fn: str | None = None,
                 repeat: int = 1) -> TestRunResult:
        """Run XDP function `fn` on one packet (scapy or bytes) in the kernel, no network needed:
        returns a result with .verdict, .packet (output), .diff and .ns_per_packet."""
        from xdplab.program import testrun
        return testrun.run(self.fd(fn), packet, repeat=repeat)

    def close(self) -> None:
        if self.bpf is None:
            return
        try:
            self.detach()
        finally:
            self.bpf.cleanup()
            self.bpf = None


def set_xdp(ns: str | None, ifname: str, fd: int, mode: str) -> None:
    """Attach program `fd` to interface `ifname` of namespace `ns` (None: this machine's own) in
    `mode`, replacing what is there in one netlink call; fd -1 removes it."""
    from bcc import libbcc
    from xdplab import diagnostics
    with diagnostics.capture_stderr() as err, (netns.enter(ns) if ns else contextlib.nullcontext()):
        rc = libbcc.lib.bpf_attach_xdp(ifname.encode(), fd, MODES[mode])
    if rc < 0:
        what = "attach a program to" if fd >= 0 else "remove the program from"
        where = f"{ns.rsplit('-', 1)[-1]}:{ifname}" if ns else ifname
        # libbpf's own lines ("libbpf: Kernel error message: ...") repeat what bcc says next
        said = "\n".join(ln for ln in err.text.splitlines() if not ln.startswith("libbpf: ")).strip()
        raise LabError(f"could not {what} {where} in {mode} mode: {said or os.strerror(-rc)}",
                       "try mode='generic'" if mode == "native" and fd >= 0 else None)


def veth_rule(iface: Interface, source: str) -> list[str]:
    """The veth rule, a classic trap. A frame that XDP sends out of a veth is handed straight to
    the peer's NAPI receive path:
      * XDP_TX (back out of `iface`): the peer only picks such frames up when it has a native XDP
        program of its own; GRO alone does not wake it;
      * a redirect into another veth of the host: the peer needs a native XDP program or GRO.
    Without that the frames are dropped silently. Give each peer what it lacks; return notes."""
    notes = []
    if _TX.search(source) and iface.peer.xdp().mode != "native":
        set_xdp(iface.peer.host.ns, iface.peer.name, iface.host.lab.pass_program(), "native")
        notes.append(f"attached a native XDP_PASS program to {iface.peer} so that it receives the "
                     f"frames XDP_TX sends out of {iface} (a veth peer needs one of its own)")
    if _REDIRECT.search(source):
        from xdplab.lab.traffic import ensure_napi
        notes += [n for i in iface.host.interfaces if (n := ensure_napi(i))]
    return notes
