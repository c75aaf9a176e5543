"""Run an XDP program on one packet, in the kernel, with no network: BPF_PROG_TEST_RUN.

    res = prog.test_run(Ether()/IP(dst="10.11.0.2")/UDP(dport=53))
    res.verdict        # "XDP_TX"
    res.diff           # [("Ether", "dst", "02:..:01", "02:..:02"), ("UDP", "dport", 53, 5353)]
    res.packet         # the packet as the program left it (scapy Ether)
    res.ns_per_packet  # the kernel's own timing, averaged over `repeat` runs

The kernel copies the packet into a fresh buffer, runs the program once per `repeat` and hands
back the program's return value and the (possibly rewritten) packet of the last run.
"""
from __future__ import annotations

import difflib
import os
from typing import TYPE_CHECKING, Literal, NamedTuple

from xdplab.kernel import bpf as kernel
from xdplab.errors import ClosedError, LabError, PrivilegeError, check_count
from xdplab.kernel.constants import MAX_REPEAT
from xdplab.text import escape

if TYPE_CHECKING:
    from scapy.packet import Packet

# Unset Ethernet addresses are filled with these (scapy would otherwise ARP on this machine's
# own network to find a destination MAC): locally administered, easy to spot in a diff.
DEFAULT_SRC_MAC = "02:00:00:00:00:01"
DEFAULT_DST_MAC = "02:00:00:00:00:02"


def verdict_name(retval: int) -> str:
    """XDP action name of a return value; anything else is what the kernel treats as ABORTED."""
    if 0 <= retval < len(kernel.XDP_ACTIONS):
        return kernel.XDP_ACTIONS[retval]
    return f"unknown action {retval} (dropped like XDP_ABORTED)"


def _ether():
    from scapy.layers.l2 import Ether
    return Ether


def parse(data: bytes) -> Packet:
    """bytes → scapy Ether (Raw when too short to be Ethernet)."""
    from scapy.packet import Raw
    try:
        return _ether()(data)
    except Exception:
        return Raw(data)


def frame_bytes(packet: Packet | bytes | bytearray | memoryview) -> bytes:
    """Bytes of a frame given as bytes or a scapy packet. A packet without an Ethernet header
    gets one; unset MAC addresses are filled with DEFAULT_*_MAC."""
    if isinstance(packet, (bytes, bytearray, memoryview)):
        return bytes(packet)
    from scapy.packet import Packet
    if not isinstance(packet, Packet):
        raise LabError(f"cannot run a program on a {type(packet).__name__}",
                       "give a scapy packet, e.g. Ether()/IP(dst='10.11.0.2')/UDP(dport=53), or bytes")
    Ether = _ether()
    pkt = packet.copy()
    if not isinstance(pkt, Ether):
        pkt = Ether() / pkt
    for field, mac in (("src", DEFAULT_SRC_MAC), ("dst", DEFAULT_DST_MAC)):
        if pkt.fields.get(field) is None:
            setattr(pkt, field, mac)
    return bytes(pkt)


# --- diff ----------------------------------------------------------------------------------------

class Change(NamedTuple):
    """One difference between input and output. For a layer added or removed, `field` is None
    and before/after hold the layer's one-line summary (None on the side it is missing)."""
    layer: str
    field: object
    before: object
    after: object

    @property
    def kind(self) -> Literal["changed", "added", "removed"]:
        """"changed" for a field, "added" or "removed" for a whole layer."""
        if self.field is not None:
            return "changed"
        return "added" if self.before is None else "removed"


def _layers(pkt):
    out = []
    while pkt is not None and pkt.__class__.__name__ != "NoPayload":
        out.append(pkt)
        pkt = pkt.payload if pkt.payload else None
    return out


def _summary(layer):
    one = layer.copy()
    one.remove_payload()
    return one.summary()


def _show(layer, field, value):
    """A field value as scapy prints it (names for protocols and flags), short."""
    try:
        text = layer.get_field(field).i2repr(layer, value)
    except Exception:
        text = repr(value)
    if isinstance(value, int) and text != str(value) and not text.startswith("0x"):
        text = f"{value} ({text})"       # ports and protocols by number and name: 53 (domain)
    return text if len(text) <= 40 else text[:37] + "..."


def diff_packets(before: Packet, after: Packet) -> Diff:
    """Field-level changes between two parsed packets, layer by layer."""
    a, b = _layers(before), _layers(after)
    names = lambda ls: [type(x).__name__ for x in ls]
    changes = Diff()
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=names(a), b=names(b), autojunk=False).get_opcodes():
        if op == "equal":
            for la, lb in zip(a[i1:i2], b[j1:j2]):
                for f in la.fields_desc:
                    va, vb = la.getfieldval(f.name), lb.getfieldval(f.name)
                    if va != vb:
                        changes.add(Change(type(la).__name__, f.name, va, vb),
                                    _show(la, f.name, va), _show(lb, f.name, vb))
            continue
        for la in a[i1:i2]:
            changes.add(Change(type(la).__name__, None, _summary(la), None), _summary(la), "—")
        for lb in b[j1:j2]:
            changes.add(Change(type(lb).__name__, None, None, _summary(lb)), "—", _summary(lb))
    return changes


class Diff(list):
    """A list of Change records that prints as a table."""

    def __init__(self) -> None:
        super().__init__()
        self._shown: list[tuple[str, str]] = []          # (before, after) as printed, one pair per change

    def add(self, change: Change, before_text: str, after_text: str) -> None:
        """Add `change`, shown as `before_text` → `after_text`."""
        self.append(change)
        self._shown.append((before_text, after_text))

    def _rows(self):
        for c, (b, a) in zip(self, self._shown):
            yield c.layer, c.field if c.kind == "changed" else f"(layer {c.kind})", b, a

    def __str__(self):
        if not self:
            return "no change: the packet left as it came in"
        rows = [("layer", "field", "before", "after"), *self._rows()]
        w = [max(len(str(r[k])) for r in rows) for k in range(4)]
        lines = ["  ".join(str(v).ljust(w[k]) for k, v in enumerate(r)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * x for x in w))
        return "\n".join(lines)

    def _repr_html_(self):
        if not self:
            return "<i>no change: the packet left as it came in</i>"
        cell = lambda v, tag="td": f"<{tag}>{escape(v)}</{tag}>"
        head = "".join(cell(h, "th") for h in ("layer", "field", "before", "after"))
        body = "".join("<tr>" + "".join(cell(v) for v in r) + "</tr>" for r in self._rows())
        return f"<table><tr>{head}</tr>{body}</table>"


# --- result ---------------------------------------------------------------------------------------

class TestRunResult:
    """What one BPF_PROG_TEST_RUN produced."""
    __test__ = False        # not a pytest test class, despite the name

    def __init__(self, retval: int, data_in: bytes, data_out: bytes, duration_ns: int,
                 repeat: int) -> None:
        self.retval = retval
        self.verdict = verdict_name(retval)
        self.input_bytes = data_in
        self.output_bytes = data_out
        self.input = parse(data_in)
        self.packet = parse(data_out)
        self.diff = diff_packets(self.input, self.packet)
        self.ns_per_packet = duration_ns
        self.repeat = repeat

    def __repr__(self):
        n = len(self.diff)
        what = "packet unchanged" if not n else f"{n} change{'s' if n > 1 else ''}"
        return f"<TestRunResult {self.verdict}, {what}, {self.ns_per_packet} ns/packet>"

    def __str__(self):
        return (f"verdict {self.verdict} (return value {self.retval}), {self.ns_per_packet} ns per "
                f"packet over {self.repeat} run{'s' if self.repeat > 1 else ''}\n"
                f"in : {self.input.summary()}\nout: {self.packet.summary()}\n{self.diff}")

    def _repr_html_(self):
        e = escape
        return (f"<div><b>{e(self.verdict)}</b> (return value {self.retval}) · "
                f"{self.ns_per_packet} ns/packet over {self.repeat} run(s)<br>"
                f"<code>in&nbsp;: {e(self.input.summary())}</code><br>"
                f"<code>out: {e(self.packet.summary())}</code>{self.diff._repr_html_()}</div>")

    def hexdump(self) -> str:
        """The output packet in hex, 16 bytes a line; a line of ^^ marks bytes the program changed
        (compared at the same offset in the input)."""
        out, inp = self.output_bytes, self.input_bytes
        lines = []
        for off in range(0, max(len(out), 1), 16):
            chunk = out[off:off + 16]
            hexes = " ".join(f"{b:02x}" for b in chunk)
            text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
            lines.append(f"{off:04x}  {hexes:<47}  {text}")
            marks = ["^^" if off + k >= len(inp) or inp[off + k] != b else "  "
                     for k, b in enumerate(chunk)]
            if any(m.strip() for m in marks):
                lines.append("      " + " ".join(marks).rstrip())
        if len(out) < len(inp):
            lines.append(f"(the program removed {len(inp) - len(out)} bytes: "
                         f"{len(inp)} in, {len(out)} out)")
        return "\n".join(lines)


def check_frame(data: bytes, limit: int = kernel.TEST_RUN_MAX_LINEAR) -> None:
    """LabError for frames XDP cannot be given: empty, shorter than Ethernet, too big."""
    if not data:
        raise LabError("the packet is empty (0 bytes)",
                       "give a whole frame, e.g. Ether()/IP(dst='10.11.0.2')/UDP(dport=53)")
    if len(data) < kernel.ETH_HLEN:
        raise LabError(f"the packet has {len(data)} bytes, shorter than an Ethernet header "
                       f"({kernel.ETH_HLEN} bytes); XDP always starts at an Ethernet header",
                       "start the packet with Ether()")
    if len(data) > limit:
        raise LabError(f"the packet has {len(data)} bytes; at most {limit} fit in the one buffer "
                       "an XDP program sees (a 4 KiB page less the kernel's head- and tailroom)",
                       "send a smaller payload")


def run(prog_fd: int, packet: Packet | bytes, repeat: int = 1) -> TestRunResult:
    """Run the loaded XDP program `prog_fd` on `packet` (scapy or bytes). With repeat > 1 it also
    runs `repeat` more times for a steadier ns_per_packet (map side effects happen each time)."""
    check_count(repeat, "repeat", most=MAX_REPEAT, example=1000)
    data = frame_bytes(packet)
    check_frame(data)
    try:
        retval, out, duration = kernel.prog_test_run(prog_fd, data, repeat=1)
        if repeat > 1:
            # The kernel runs all repeats on the same buffer, so its output would be the packet
            # rewritten `repeat` times over. The verdict and packet come from the single run
            # above; this one only times the program.
            duration = kernel.prog_test_run(prog_fd, data, repeat=repeat)[2]
    except OSError as e:
        raise test_run_error(e) from None
    return TestRunResult(retval, data, out, duration, repeat)


def test_run_error(e: OSError) -> LabError:
    """The LabError that says what an OSError `e` of BPF_PROG_TEST_RUN means, and what to do."""
    if e.errno == 1 or e.errno == 13:    # EPERM, EACCES
        return PrivilegeError("the kernel refused BPF_PROG_TEST_RUN: not enough privilege",
                              "run as root ('sudo make lab')")
    if e.errno == 9:                      # EBADF
        return ClosedError("the program is no longer loaded", "load it again: prog = lab.load(...)")
    if e.errno == 524 or e.errno == 95:   # ENOTSUPP, EOPNOTSUPP
        return LabError("this kind of BPF program cannot be test-run on a packet",
                        "test_run works for XDP programs")
    return LabError(f"BPF_PROG_TEST_RUN failed: {os.strerror(e.errno)} (errno {e.errno})")
