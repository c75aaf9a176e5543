"""Capture: the packets an XDP program decided on, each with its verdict, like tcpdump inside XDP.

A program opts in with one include and one word per return (bpf/include/xdplab_capture.h):

    #include "xdplab_capture.h"
    ...
        return CAPTURE(ctx, XDP_DROP);            // instead of: return XDP_DROP;

    cap = Capture(prog)        # last line of a cell: a live table of the packets and verdicts
    cap.wait(10)               # True once 10 packets arrived
    cap.packets[-1]            # Frame(t, time, iface, verdict, length, data); .packet, .summary
    cap.totals                 # Counter of verdicts ({"XDP_DROP": 3, ...})
    cap.save("drops.pcap")     # for tcpdump -r / Wireshark (.pcapng: the verdict as packet comment)

CAPTURE() sends, through the perf buffer `xdplab_capture`, a header and the first XDPLAB_SNAPLEN
(128) bytes of the frame as it is when the program returns, so rewrites show. A Capture keeps every
packet (the last 10 000); at high rates the perf buffer may fill up and lose some (`lost`).
The reading, the live table and the life cycle are those of xdplab.events.EventLog.

bcc turns map calls such as xdplab_capture.perf_submit_skb() into BPF helper calls only in the
program's own file, never in a header. So `prepare(source)` — which Program applies to every
source it compiles — appends the definition of the capture function (kept in the header between
two marker comments) to the end of a program that includes xdplab_capture.h. The program's own
line numbers do not change.
"""
from __future__ import annotations

import collections
import ctypes
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from xdplab.errors import LabError
from xdplab.program.events import EventLog, table_html
from xdplab.program.testrun import verdict_name
from xdplab.text import escape

if TYPE_CHECKING:
    from scapy.packet import Packet

    from xdplab.program.program import Program

MAP = "xdplab_capture"
HEADER = Path(__file__).resolve().parents[2] / "bpf" / "include" / "xdplab_capture.h"
_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*[<"]xdplab_capture\.h[>"]', re.M)
_DEFINITION = re.compile(r"/\* xdplab-capture-definition-begin \*/\n(.*?)"
                         r"/\* xdplab-capture-definition-end \*/", re.S)


_APPENDED = "/* appended by xdplab.capture.prepare() */"


def prepare(source: str) -> str:
    """C text as bcc must compile it: unchanged unless it includes xdplab_capture.h, then with the
    capture function's definition appended (see the module doc). Preparing twice changes nothing."""
    if not _INCLUDE.search(source) or _APPENDED in source:
        return source
    definition = _DEFINITION.search(HEADER.read_text()).group(1)
    return f"{source.rstrip()}\n\n{_APPENDED}\n{definition}"


class Meta(ctypes.Structure):
    """struct xdplab_capture_meta of the header."""
    _fields_ = [("ts", ctypes.c_uint64), ("ifindex", ctypes.c_uint32),
                ("rx_queue", ctypes.c_uint32), ("len", ctypes.c_uint32),
                ("caplen", ctypes.c_uint32), ("verdict", ctypes.c_uint32),
                ("pad", ctypes.c_uint32)]


class Frame(collections.namedtuple("Frame", "t time iface verdict length data")):
    """One captured frame: `t` seconds since the capture started, `time` (Unix seconds), the
    interface it arrived on, the program's verdict, its full length and the captured bytes."""
    __slots__ = ()

    @property
    def packet(self) -> Packet:
        """The captured bytes decoded by scapy (Ether)."""
        from xdplab.program.testrun import parse
        return parse(self.data)

    @property
    def summary(self) -> str:
        """scapy's one-line summary of the packet."""
        try:
            return self.packet.summary()
        except Exception:                     # a truncated header scapy cannot take apart
            return f"{len(self.data)} bytes scapy cannot decode"

    @property
    def truncated(self) -> bool:
        """True if the frame was longer than the bytes captured of it."""
        return len(self.data) < self.length

    def __repr__(self):
        return f"<Frame {self.t:.6f} {self.iface} {self.verdict} {self.length} B: {self.summary}>"


class Capture(EventLog):
    """The frames a program passed to CAPTURE(ctx, verdict); see the module doc."""

    def __init__(self, program: Program, max_rows: int = 200, *, interval: float = 0.5,
                 pages: int = 64) -> None:
        if program.bpf is not None and MAP not in list(program.maps):
            raise LabError(f"program {program.name!r} does not capture packets (it has no map "
                           f"{MAP!r})",
                           'add #include "xdplab_capture.h" to it and return CAPTURE(ctx, XDP_...) '
                           "where it returns XDP_..., then load it again")
        self._clock = time.time_ns() - time.monotonic_ns()     # CLOCK_MONOTONIC → Unix time
        super().__init__(program, MAP, max_rows=max_rows, sample=1, interval=interval,
                         pages=pages, ctype=Meta)

    # -- EventLog hooks: a header, then the frame's bytes ------------------------------------
    def _check_size(self, size):
        self._sizes.add(size)
        if size < self._size:
            self.problem = (f"an event of {size} bytes arrived, shorter than the capture header "
                            f"({self._size}): was the map {MAP!r} filled by something else?")

    def _keep(self, raw):
        meta = Meta.from_buffer_copy(raw[:self._size])
        data = raw[self._size:self._size + meta.caplen]
        self._events.append(Frame((meta.ts - self._t0) / 1e9, (meta.ts + self._clock) / 1e9,
                                  self._iface(meta.ifindex), verdict_name(meta.verdict),
                                  meta.len, data))

    def _iface(self, ifindex):
        """"host:ifname" of the interface with this index among the program's attachments."""
        names = {str(a.iface) for a in self.program.attachments
                 if getattr(a.iface, "ifindex", None) == ifindex}
        return names.pop() if len(names) == 1 else f"ifindex {ifindex}"

    # -- what a learner reads ----------------------------------------------------------------
    @property
    def packets(self) -> list[Frame]:
        """The kept frames, oldest first (perf buffers are per CPU: sorted by time here)."""
        return sorted(self._events, key=lambda f: f.t)

    events = packets

    def clear(self) -> None:
        """Forget the frames kept and the counts so far (the capture goes on)."""
        self._events.clear()
        self.count, self.kept = 0, 0
        self.totals.clear()

    def save(self, path: str | os.PathLike[str]) -> int:
        """Write the kept frames to `path`: pcap, or pcapng when it ends in .pcapng (then each
        packet carries its verdict as a comment and its interface as the capture interface).
        Frames keep their real length: a tool shows the captured part as truncated. Returns
        the number of frames written."""
        from scapy.layers.l2 import Ether
        from scapy.utils import PcapNgWriter, PcapWriter
        frames = self.packets
        path = str(path)
        ng = path.endswith(".pcapng")
        writer = PcapNgWriter(path) if ng else PcapWriter(path, linktype=1)
        try:
            for f in frames:
                pkt = Ether(f.data)                 # bytes(pkt) gives back f.data
                pkt.time, pkt.wirelen = f.time, f.length
                if ng:
                    pkt.comments = [f"{f.verdict} on {f.iface}".encode()]
                    pkt.sniffed_on = f.iface
                writer.write(pkt)
        finally:
            writer.close()
        return len(frames)

    def _summary(self):
        parts = [f"{self.count} packets · {self.lost} lost"]
        parts += [f"{v}: {n}" for v, n in sorted(self.totals.items(), key=lambda kv: str(kv[0]))]
        if self.closed is not None:
            parts.append(f"stopped ({self.closed})")
        return " · ".join(parts)

    def _repr_html_(self):
        rows = [[f.t, f.iface, f.verdict, f.length, f.summary]
                for f in list(self._events)[-self.max_rows:][::-1]]
        notes = [self.problem] if self.problem else []
        return table_html(self._summary(), ["t (s)", "interface", "verdict", "bytes", "packet"],
                          rows, notes)

    def title(self) -> str:
        """The HTML title of its live view."""
        e = escape
        return (f'<span class="xdplab-w"><b>captured packets</b> <span class="cap">of '
                f'{e(self.program.name)}, with their verdicts</span></span>')

    def __repr__(self):
        return f"<Capture {self.program.name}: {self._summary()}>"
