"""A Program: the learner's C, compiled by bcc, checked by the verifier, attached to lab interfaces.

    prog = lab.load("xdp_count.c")          # a file under bpf/, or C text
    prog.attach(lab.server)                  # native mode on the server's lab interface
    prog.maps["counters"].snapshot()
    prog.test_run(Ether()/IP()/UDP())        # run it on one packet, no network needed

Every XDP function of the source (int NAME(struct xdp_md *ctx)) is verified when the program is
loaded, so a verifier rejection shows up at `lab.load`, explained (xdplab.VerifierError).
"""
import dataclasses
import re
from pathlib import Path

from . import headers, netns
from .errors import LabError, SetupError

REPO = Path(__file__).resolve().parent.parent
BPF_DIR = REPO / "bpf"
INCLUDE = BPF_DIR / "include"

XDP_FLAGS_SKB_MODE = 1 << 1      # "generic": XDP run by the core stack on an skb, any driver
XDP_FLAGS_DRV_MODE = 1 << 2      # "native": XDP run by the driver before any skb exists
MODES = {"native": XDP_FLAGS_DRV_MODE, "generic": XDP_FLAGS_SKB_MODE}
_XDP_FN = re.compile(r"\bint\s+(\w+)\s*\(\s*struct\s+xdp_md\s*\*\s*\w*\s*\)")
_SENDS_BACK = re.compile(r"\bXDP_TX\b|\bredirect")


def _bcc():
    try:
        import bcc
    except ImportError:
        raise SetupError("bcc's Python bindings are not importable",
                         "run 'sudo make install' (installs python3-bpfcc) and use the kernel "
                         "'Python (xdplab)' / .venv/bin/python, made with --system-site-packages") from None
    return bcc


def read_source(source):
    """C text from `source`: C text itself, a path, or a file name under bpf/."""
    if isinstance(source, Path) or ("\n" not in source and source.strip().endswith(".c")):
        for path in (Path(source), BPF_DIR / source):
            if path.is_file():
                return path.read_text(), str(path)
        raise LabError(f"no BPF source file {source!r}",
                       f"give C text, a path, or the name of a file in {BPF_DIR}")
    return source, None


@dataclasses.dataclass
class Attachment:
    """Where a program runs: interface, function, mode, and anything the lab did for it."""
    program: "Program"
    iface: object
    fn: str
    mode: str
    prog_id: int = 0
    notes: list = dataclasses.field(default_factory=list)

    def __repr__(self):
        notes = "".join(f"\n  note: {n}" for n in self.notes)
        return f"<{self.fn} attached to {self.iface} in {self.mode} mode (prog id {self.prog_id})>{notes}"


class Program:
    def __init__(self, lab, source, cflags=(), name=None):
        from . import diagnostics
        self.lab = lab
        self.source, self.path = read_source(source)
        self.name = name or (Path(self.path).stem if self.path else "program")
        self.attachments = []
        self._fns = {}
        self.bpf = None
        headers.ensure()
        bcc = _bcc()
        flags = [f"-I{INCLUDE}", *cflags]
        with diagnostics.capture_stderr() as err:
            try:
                self.bpf = bcc.BPF(text=self.source, cflags=flags)
            except Exception:
                pass
        if self.bpf is None:
            raise diagnostics.compile_error(err.text, self.source)
        self.functions = _XDP_FN.findall(self.source)
        if not self.functions:
            self.close()
            raise LabError("no XDP function found in the program",
                           "an XDP program is a function 'int NAME(struct xdp_md *ctx)' returning an "
                           "XDP action such as XDP_PASS")
        for fn in self.functions:
            with diagnostics.capture_stderr() as err:
                try:
                    self._fns[fn] = self.bpf.load_func(fn, bcc.BPF.XDP)
                except Exception as e:
                    failure = e
            if fn not in self._fns:
                self.close()
                raise diagnostics.verifier_error(err.text or str(failure), self.source, fn)
        from .maps import Maps
        self.maps = Maps(self)

    def __repr__(self):
        where = ", ".join(f"{a.iface} ({a.mode})" for a in self.attachments) or "not attached"
        return f"<Program {self.name}: {', '.join(self.functions)}; {where}>"

    # -- functions ----------------------------------------------------------------------------------
    def _fn(self, fn):
        if fn is None:
            return self.functions[0]
        if fn not in self._fns:
            raise LabError(f"the program has no XDP function {fn!r}",
                           f"its XDP functions: {', '.join(self.functions)}")
        return fn

    def fd(self, fn=None):
        """The kernel file descriptor of XDP function `fn` (the first one by default)."""
        self._check()
        return self._fns[self._fn(fn)].fd

    def _check(self):
        if self.bpf is None:
            raise LabError(f"program {self.name!r} is closed", "load it again: lab.load(...)")

    # -- attaching -----------------------------------------------------------------------------------
    def attach(self, target, fn=None, mode="native", allow_host=False, fix_veth=True):
        """Attach XDP function `fn` to `target` (a Host — its lab interface —, an Interface,
        "host:ifname", or an interface name inside a lab host). Re-attaching replaces the program
        atomically. With fix_veth, frames this program sends with XDP_TX/redirect into a veth are
        made receivable (see `veth_rule`)."""
        self._check()
        self.lab._check_open()
        fn = self._fn(fn)
        if mode not in MODES:
            raise LabError(f"unknown XDP mode {mode!r}", "use mode='native' or mode='generic'")
        iface = self.lab.interface(target)
        if iface is None:
            return self._attach_host(target, fn, mode, allow_host)
        bcc = _bcc()
        current = iface.xdp()
        if current.mode and current.mode != mode:
            # native and generic cannot be active together: remove the other one first
            self._remove(iface, current.mode)
        for other in self.lab.programs:
            other.attachments = [a for a in other.attachments if a.iface is not iface]
        from . import diagnostics
        with diagnostics.capture_stderr() as err, netns.enter(iface.host.ns):
            try:
                bcc.BPF.attach_xdp(iface.name, self._fns[fn], MODES[mode])
                failure = None
            except Exception as e:
                failure = e
        if failure is not None:
            raise LabError(f"could not attach {fn} to {iface} in {mode} mode: {err.text.strip() or failure}",
                           "try mode='generic'" if mode == "native" else None)
        att = Attachment(self, iface, fn, mode, iface.xdp().prog_id)
        if fix_veth and mode == "native" and _SENDS_BACK.search(self.source):
            att.notes += veth_rule(iface)
        self.attachments.append(att)
        return att

    def _attach_host(self, target, fn, mode, allow_host):
        if not allow_host:
            raise LabError(
                f"{target!r} is not an interface of this lab: xdplab only attaches to interfaces "
                "inside lab hosts, so no lesson can cut this machine off its network",
                "attach to a lab host (prog.attach(lab.server)) or 'host:ifname'; pass "
                "allow_host=True only if you really mean an interface of this machine")
        bcc = _bcc()
        from . import diagnostics
        with diagnostics.capture_stderr() as err:
            try:
                bcc.BPF.attach_xdp(str(target), self._fns[fn], MODES[mode])
            except Exception as e:
                raise LabError(f"could not attach to {target}: {err.text.strip() or e}") from None
        att = Attachment(self, str(target), fn, mode)
        self.attachments.append(att)
        return att

    def _remove(self, iface, mode):
        bcc = _bcc()
        from . import diagnostics
        if isinstance(iface, str):
            with diagnostics.capture_stderr():
                bcc.BPF.remove_xdp(iface, MODES[mode])
            return
        if not netns.exists(iface.host.ns):
            return
        with diagnostics.capture_stderr(), netns.enter(iface.host.ns):
            bcc.BPF.remove_xdp(iface.name, MODES[mode])

    def detach(self, target=None):
        """Remove this program from `target`, or from everywhere it is attached."""
        keep = []
        iface = None if target is None else (self.lab.interface(target) or str(target))
        for a in self.attachments:
            if iface is None or a.iface is iface or a.iface == iface:
                self._remove(a.iface, a.mode)
            else:
                keep.append(a)
        self.attachments = keep

    # -- running on single packets -----------------------------------------------------------------
    def test_run(self, packet, fn=None, repeat=1):
        """Run XDP function `fn` on one packet (scapy or bytes) in the kernel, no network needed:
        returns a result with .verdict, .packet (output), .diff and .ns_per_packet."""
        from . import testrun
        return testrun.run(self.fd(fn), packet, repeat=repeat)

    def close(self):
        if self.bpf is None:
            return
        try:
            self.detach()
        finally:
            self.bpf.cleanup()
            self.bpf = None


def veth_rule(iface):
    """The veth NAPI rule: a frame sent out of a veth by XDP (XDP_TX, or a redirect into it) is
    handed straight to the peer's NAPI receive path, which exists only while the peer has a native
    XDP program or GRO enabled; otherwise the frame is dropped silently. For `iface` (XDP_TX goes
    back out of it) and every other interface of its host (redirect targets), enable GRO on a peer
    that has neither. Returns what was done, as notes."""
    notes = []
    for i in iface.host.interfaces:
        peer = i.peer
        if peer.xdp().mode == "native":
            continue
        if _gro_on(peer):
            continue
        peer.ethtool("gro", "on")
        notes.append(f"enabled GRO on {peer} so that frames XDP sends out of {i} are received "
                     f"(a veth peer drops them without a native XDP program or GRO)")
    return notes


def _gro_on(iface):
    out = iface.host.run(["ethtool", "-k", iface.name]).stdout
    return "generic-receive-offload: on" in out
