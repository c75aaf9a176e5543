"""Lab 06a — report every decision: each drop is one event in the ring buffer `verdicts`, with
the fields of struct verdict_event and the reason for the drop (REASON_PORT: UDP to port 9;
REASON_BAD_HEADER: an IPv4 header that cannot be trusted); passes are not reported. A bad header
is dropped, never aborted: across the real traffic, which carries bad headers, the kernel's
xdp:xdp_exception tracepoint must count nothing for the learner's program.

How the events are told apart. test_run is synchronous and the ring buffer keeps the order in
which events were reserved, so after each packet the check runs a marker — a plain datagram to
port 9 from 10.11.0.1 port 4000 (the first case) — and waits for the marker's event: whatever
came before it is what the packet produced. The events are read as lesson 06 reads them, with
xdplab's EventLog, laid out by the documented struct (so a program that sends nothing, or the
wrong size, is told so rather than misread).
"""
import ctypes
import ipaddress
import struct
import time
import weakref

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

import xdplab
from xdplab import sampling
from xdplab.checks import SHORT, Case, CaseFailed, case, word
from xdplab.errors import LabError
from xdplab.events import EventLog, event_type

TITLE = "Report every decision: a ring buffer of verdicts"
ATTACH = "server"
HINTS = [
    "A log that reports every pass floods: send an event only for a drop. A bad IPv4 header is "
    "dropped too (XDP_DROP, reason REASON_BAD_HEADER), never aborted: any sender can craft one, "
    "and XDP_ABORTED is for a path of your program that should never run. Fill every field of "
    "the event before ringbuf_output() copies it into the ring; a field you leave alone is 0 "
    "only because the struct starts zeroed (= {}).",
    "frame_len is the whole frame as XDP sees it, ctx->data_end - ctx->data (VLAN tags and "
    "padding included), not the IPv4 total length. Ports go in host byte order "
    "(bpf_ntohs(udph->source)), addresses as they are in the packet. The reason says which rule "
    "dropped the frame: REASON_PORT for port 9, REASON_BAD_HEADER for a header you cannot trust.",
    "Drop also when bpf_ntohs(iph->tot_len) < iph->ihl * 4, and report a bad header with its "
    "verdict, its reason and the frame length only: nothing from a header you do not trust. "
    "ringbuf_output() returns non-zero when the ring is full: then add 1 to verdicts_lost[0], "
    "and drop the frame all the same.",
]

DROP_PORT = 9
C, S = "10.11.0.1", "10.11.0.2"
CMAC, SMAC = "02:58:4c:00:00:01", "02:58:4c:00:00:02"
eth = Ether(src=CMAC, dst=SMAC)
WAIT = 5.0                 # seconds the marker's event may take to arrive (the machine may be busy)
FALLBACK_WAIT = 0.5       # the same, when the first case failed (the program is wrong already)
FIELDS = ("verdict", "reason", "frame_len", "saddr", "daddr", "sport", "dport")
REASON_PORT, REASON_BAD_HEADER = 1, 2            # enum drop_reason in the starter
REASONS = {0: "0 (never set)", REASON_PORT: "REASON_PORT", REASON_BAD_HEADER: "REASON_BAD_HEADER"}
HEADER_FIELDS = ("saddr", "daddr", "sport", "dport")


class Event(ctypes.Structure):
    """struct verdict_event as the starter declares it (24 bytes, no padding)."""
    _fields_ = [("verdict", ctypes.c_uint32), ("reason", ctypes.c_uint32),
                ("frame_len", ctypes.c_uint32), ("saddr", ctypes.c_uint32),
                ("daddr", ctypes.c_uint32), ("sport", ctypes.c_uint16), ("dport", ctypes.c_uint16)]


# saddr/daddr: 4 bytes in network order, as in the packet; the ports were converted by the program
DECLARE = {"verdict": "action", "reason": "int", "frame_len": "int", "saddr": "ipv4",
           "daddr": "ipv4", "sport": "int", "dport": "int"}


def event(reason, frame, saddr=None, daddr=None, sport=0, dport=0):
    """The event that frame (bytes) `frame`, dropped for `reason`, should produce."""
    zero = ipaddress.IPv4Address(0)
    return {"verdict": "XDP_DROP", "reason": reason, "frame_len": len(frame),
            "saddr": ipaddress.IPv4Address(saddr) if saddr else zero,
            "daddr": ipaddress.IPv4Address(daddr) if daddr else zero, "sport": sport, "dport": dport}


def dropped(frame, src, dst, sport):
    """The event of a datagram to port 9."""
    return event(REASON_PORT, frame, src, dst, sport, DROP_PORT)


def bad(frame):
    """The event of a bad IPv4 header: its verdict, its reason and the frame's length only."""
    return event(REASON_BAD_HEADER, frame)


def _value(f, v):
    return REASONS.get(v, v) if f == "reason" else v


def shown(e):
    return "{" + ", ".join(f"{f} {_value(f, e.get(f))}" for f in FIELDS) + "}"


def _swapped16(v):
    return ((v & 0xff) << 8) | (v >> 8)


def differences(got, want, frame=None):
    """What is wrong in event `got`, field by field, with a word on the usual mistakes."""
    out = []
    for f in FIELDS:
        g, w = got.get(f), want[f]
        if g == w:
            continue
        note = ""
        if f == "reason" and w == REASON_BAD_HEADER and g == REASON_PORT:
            note = (" (this frame was dropped for its bad IPv4 header, not for its port: the "
                    "reason is what tells the two drops apart)")
        elif f == "reason" and w == REASON_PORT and g == REASON_BAD_HEADER:
            note = " (its IPv4 header is good: it was dropped for its port)"
        elif want["reason"] == REASON_BAD_HEADER and f in HEADER_FIELDS:
            note = " (a bad IPv4 header is not trusted: nothing from it is reported)"
        elif f in ("sport", "dport") and isinstance(g, int) and g == _swapped16(w):
            note = " (its two bytes swapped: the ports go in host byte order)"
        elif f in ("saddr", "daddr") and isinstance(g, ipaddress.IPv4Address) and \
                g.packed == w.packed[::-1]:
            note = " (its bytes reversed: the addresses go as they are in the packet)"
        elif f in ("saddr", "daddr") and g == want["daddr" if f == "saddr" else "saddr"]:
            note = " (the other address)"
        elif f == "frame_len" and frame is not None:
            total = _total_length(frame)
            if total is not None and g in (total, total + 14):
                note = " (from the IPv4 total length: frame_len is the whole frame, data_end - data)"
        out.append(f"{f} is {_value(f, g)}; it should be {_value(f, w)}{note}")
    return "; ".join(out)


def _total_length(frame):
    """The IPv4 total length of a frame (through up to two VLAN tags), or None."""
    off, etype = 12, None
    for _ in range(3):
        if len(frame) < off + 2:
            return None
        etype = int.from_bytes(frame[off:off + 2], "big")
        if etype not in (0x8100, 0x88a8):
            break
        off += 4
    if etype != 0x0800 or len(frame) < off + 6:
        return None
    return int.from_bytes(frame[off + 4:off + 6], "big")


MARK = bytes(eth / IP(src=C, dst=S, id=1) / UDP(sport=4000, dport=DROP_PORT) / b"discard me")
MARK_EVENT = dropped(MARK, C, S, 4000)
MARK_WHAT = f"A datagram to port 9 from {C} port 4000"

_logs = weakref.WeakKeyDictionary()      # Program → its Log, for the cases of one check
_marker_ok = weakref.WeakKeyDictionary()  # Program → True once the first case's event was right


class Log:
    """The program's events, read from `verdicts` with xdplab's EventLog (as in lesson 06)."""

    def __init__(self, t):
        maps = t.prog.maps
        if "verdicts" not in maps or maps["verdicts"].kind != "ringbuf":
            t.fail("your program has no ring buffer named verdicts: keep "
                   "BPF_RINGBUF_OUTPUT(verdicts, 8) as declared")
        try:
            described, _ = event_type(t.prog.bpf, "verdicts")
        except LabError:
            described = None                  # nothing is sent through it: no event will come
        if described is not None:
            have = [(n, ctypes.sizeof(c), getattr(described, n).offset) for n, c in described._fields_]
            want = [(n, ctypes.sizeof(c), getattr(Event, n).offset) for n, c in Event._fields_]
            if have != want:
                t.fail("the events your program sends are not struct verdict_event as declared "
                       f"(fields, sizes, offsets: {have}; the check reads {want}): keep the struct")
        self.reader = EventLog(t.prog, "verdicts", sample=1, ctype=Event, declare=DECLARE)
        self.taken = 0

    def _fresh(self):
        return self.reader.events[self.taken:]

    def problem(self, t):
        if self.reader.problem:
            t.fail(f"reading the events of verdicts: {self.reader.problem}")
        if self.reader.closed is not None:
            t.fail(f"the reader of verdicts stopped: {self.reader.closed}")

    def take(self, n, wait=WAIT, settle=0.0):
        """The next events once `n` have arrived (or `wait` ran out), and any that came within
        `settle` seconds after."""
        deadline = time.monotonic() + wait
        while len(self._fresh()) < n and time.monotonic() < deadline:
            time.sleep(0.001)
        if settle:
            time.sleep(settle)
        got = [{f: e[f] for f in FIELDS} for e in self._fresh()]
        self.taken += len(got)
        return got

    def until_marker(self, t, wait=WAIT):
        """The events that came before the marker's event; fails when it does not come."""
        deadline = time.monotonic() + wait
        while True:
            fresh = [{f: e[f] for f in FIELDS} for e in self._fresh()]
            for i, e in enumerate(fresh):
                if e == MARK_EVENT:
                    self.taken += i + 1
                    return fresh[:i]
            if time.monotonic() > deadline:
                self.problem(t)
                self.taken += len(fresh)
                t.fail(f"the event of the marker ({MARK_WHAT}, run after the packet) did not "
                       f"come within {wait:g} s; what came: "
                       + (", ".join(shown(e) for e in fresh) or "nothing"))
            time.sleep(0.001)


def log_of(t):
    """The Log of this check's program."""
    if t.prog not in _logs:
        _logs[t.prog] = Log(t)
    return _logs[t.prog]


def resync(t, log):
    """Take whatever the last packet left in the ring buffer, so that the next one starts clean."""
    if _marker_ok.get(t.prog):
        t.prog.test_run(MARK)
        try:
            log.until_marker(t)
        except CaseFailed:
            pass
    else:
        log.take(0, settle=0.1)


ABORT_WHY = ("XDP_ABORTED says that the program hit a path that should never run, and the kernel "
             "fires xdp:xdp_exception for it; a frame is what a sender chose to send, so "
             "aborting on one lets any sender fire that tracepoint at will, and hides a real "
             "error of the program among them")


def judge(t, what, frame, verdict, want, about=None, log=None):
    """Run `frame` (bytes) through the program: its verdict must be `verdict`, and what it put
    in the ring buffer exactly `want` (one event) or nothing (None)."""
    log = log or log_of(t)
    verdict = SHORT.get(verdict, verdict)
    runs = []

    def run(packet):
        runs.append(t.prog.test_run(packet))
        return runs[-1]
    try:
        t.expect(what, frame, verdict, about=about, run=run)
    except CaseFailed as e:
        resync(t, log)          # the next case must not see this packet's events
        if runs and runs[0].verdict == "XDP_ABORTED":
            t.fail(f"{e}: {ABORT_WHY}", e.about)
        raise
    if _marker_ok.get(t.prog):
        mark = t.prog.test_run(MARK)
        if mark.verdict != "XDP_DROP":
            t.fail(f"{MARK_WHAT} was {word(mark.verdict)}; it should be dropped", about)
        got = log.until_marker(t)
    else:
        # The marker's own event is wrong (the first case says how), so the events cannot be
        # told apart by it: wait for the one expected, and a moment for any more.
        got = log.take(0 if want is None else 1, wait=FALLBACK_WAIT, settle=0.1)
        log.problem(t)
    done = word(verdict)
    if want is None:
        if got:
            t.fail(f"{what} was {done}, and reported as "
                   f"{', '.join(shown(e) for e in got)}; a pass is not reported", about)
        return f"{what} was {done}, and not reported"
    if not got:
        t.fail(f"{what} was {done}, but not reported; it should be reported as {shown(want)}",
               about)
    if len(got) > 1:
        t.fail(f"{what} was {done}, and reported {len(got)} times ("
               f"{', '.join(shown(e) for e in got)}); it should be reported once", about)
    if got[0] != want:
        t.fail(f"{what} was {done}, and reported as {shown(got[0])}: "
               f"{differences(got[0], want, frame)}", about)
    return f"{what} was {done}, and reported as {shown(want)}"


def reported(what, packet, verdict, want, hidden=False, about=None):
    """A case: one frame, its verdict, and the event it must leave (None: none)."""
    frame = bytes(packet)
    verdict = SHORT.get(verdict, verdict)

    def run(t):
        return judge(t, what, frame, verdict, want(frame) if callable(want) else want, about)
    outcome = "not reported" if want is None else "reported"
    return Case(f"{what} → {word(verdict)}, {outcome}", run, hidden, about)


# -- the cases -------------------------------------------------------------------------------------
@case(f"{MARK_WHAT} is dropped and reported as one event")
def first_drop(t):
    log = Log(t) if t.prog not in _logs else _logs[t.prog]
    _logs[t.prog] = log
    _marker_ok[t.prog] = False
    try:
        t.expect(MARK_WHAT, MARK, "drop")
    except CaseFailed:
        resync(t, log)
        raise
    got = log.take(1, settle=0.2)
    log.problem(t)
    if not got:
        t.fail(f"{MARK_WHAT} was dropped, but no event came through verdicts within {WAIT:g} s; "
               f"it should be reported as {shown(MARK_EVENT)}")
    if len(got) > 1:
        t.fail(f"{MARK_WHAT} was dropped and reported {len(got)} times "
               f"({', '.join(shown(e) for e in got)}); it should be reported once")
    if got[0] != MARK_EVENT:
        t.fail(f"{MARK_WHAT} was dropped, and reported as {shown(got[0])}: "
               f"{differences(got[0], MARK_EVENT, MARK)}")
    _marker_ok[t.prog] = True
    return f"{MARK_WHAT} was dropped, and reported as {shown(MARK_EVENT)}"


def _cut(packet, keep):
    """The first `keep` bytes of `packet`."""
    return bytes(packet)[:keep]


V = ipaddress.IPv4Address
OPTS = b"\x01" * 7 + b"\x00"            # 8 bytes of IPv4 options: no-ops, end of list
LATER = eth / IP(src=C, dst=S, proto=17, frag=185, id=7) / Raw(
    struct.pack("!HHHH", 4100, DROP_PORT, 16, 0) + b"not a header")

CASES = [
    reported(f"A datagram to port 53 from {C} port 4001", eth / IP(src=C, dst=S) / UDP(sport=4001, dport=53)
             / b"query", "pass", None),
    reported(f"A ping from {C}", eth / IP(src=C, dst=S) / ICMP(id=1, seq=1) / b"ping", "pass", None),
    reported(f"A 42-byte frame whose IPv4 header claims 60 bytes (ihl 15), from {C}",
             eth / IP(src=C, dst=S, ihl=15) / UDP(sport=4002, dport=DROP_PORT), "drop", bad),
    reported(f"A datagram to port 9 from {C} whose IPv4 total length (19) is smaller than its "
             "20-byte header", eth / IP(src=C, dst=S, len=19) / UDP(sport=4003, dport=DROP_PORT)
             / b"short", "drop", bad),
    # cases the notebook does not show
    reported(f"A datagram to port 9 from {C} port 4004 in a 60-byte frame (16 bytes of padding "
             "after the datagram)", eth / IP(src=C, dst=S) / UDP(sport=4004, dport=DROP_PORT)
             / b"pa" / (b"\x00" * 16), "drop", lambda f: dropped(f, C, S, 4004), hidden=True,
             about="a dropped datagram in a frame padded after its end"),
    reported(f"A datagram to port 9 from {C} port 4005 in VLAN 10",
             eth / Dot1Q(vlan=10) / IP(src=C, dst=S) / UDP(sport=4005, dport=DROP_PORT) / b"tagged",
             "drop", lambda f: dropped(f, C, S, 4005), hidden=True,
             about="a datagram in a frame with a VLAN tag"),
    reported("A datagram to port 9 from 198.51.100.7 port 4006 in QinQ (VLAN 20 inside 100)",
             eth / Dot1AD(vlan=100) / Dot1Q(vlan=20) / IP(src="198.51.100.7", dst=S)
             / UDP(sport=4006, dport=DROP_PORT) / b"tagged twice", "drop",
             lambda f: dropped(f, "198.51.100.7", S, 4006), hidden=True,
             about="a datagram in a frame with two VLAN tags (QinQ)"),
    reported(f"A datagram to port 9 from {C} port 4007 behind 8 bytes of IPv4 options",
             eth / IP(src=C, dst=S, options=OPTS) / UDP(sport=4007, dport=DROP_PORT) / b"options",
             "drop", lambda f: dropped(f, C, S, 4007), hidden=True,
             about="an IPv4 header with options (longer than 20 bytes)"),
    reported(f"A datagram to port 9 from {C} port 4008 of 256 bytes (total length 0x0100)",
             eth / IP(src=C, dst=S) / UDP(sport=4008, dport=DROP_PORT) / (b"d" * 228), "drop",
             lambda f: dropped(f, C, S, 4008), hidden=True,
             about="a datagram whose total length has a zero low byte"),
    reported(f"The first fragment of a datagram to port 9 from {C} port 4009",
             eth / IP(src=C, dst=S, flags="MF", frag=0, id=9) / UDP(sport=4009, dport=DROP_PORT, len=1008)
             / (b"f" * 64), "drop", lambda f: dropped(f, C, S, 4009), hidden=True,
             about="the first fragment of an IPv4 datagram"),
    reported(f"A later fragment of a datagram from {C}, whose data starts with the bytes "
             "10 04 00 09 (4100, 9 if read as ports)", LATER, "pass", None, hidden=True,
             about="a later IPv4 fragment (one with no UDP header)"),
    reported(f"A frame from {C} whose IPv4 header has ihl 4 (16 bytes, less than the 20 of the "
             "fixed header)", eth / IP(src=C, dst=S, ihl=4) / UDP(sport=4010, dport=DROP_PORT) / b"ihl4",
             "drop", bad, hidden=True, about="an IPv4 header whose ihl is below 5"),
    reported(f"A frame in VLAN 7 from {C} whose IPv4 header has ihl 3",
             eth / Dot1Q(vlan=7) / IP(src=C, dst=S, ihl=3) / UDP(sport=4011, dport=DROP_PORT) / b"ihl3",
             "drop", bad, hidden=True, about="a bad IPv4 header in a VLAN-tagged frame"),
    reported("A 30-byte frame that ends 16 bytes into its IPv4 header",
             _cut(eth / IP(src=C, dst=S) / UDP(sport=4012, dport=DROP_PORT), 30), "drop", bad,
             hidden=True, about="a frame that ends inside its IPv4 header"),
    reported(f"A frame with the IPv4 ethertype whose header says version 6, from {C}",
             eth / IP(src=C, dst=S, version=6) / UDP(sport=4013, dport=DROP_PORT) / b"v6?", "drop", bad,
             hidden=True, about="an IPv4 header with another version number"),
    reported(f"A datagram to port 9 from {C} with a 40-byte IPv4 header (ihl 10) in a 50-byte frame",
             _cut(eth / IP(src=C, dst=S, options=b"\x01" * 19 + b"\x00") / UDP(sport=4014, dport=DROP_PORT),
                  50), "drop", bad, hidden=True,
             about="a frame too short for the IPv4 header its ihl claims"),
    reported(f"TCP to port 9 from {C}", eth / IP(src=C, dst=S) / TCP(sport=4015, dport=DROP_PORT),
             "pass", None, hidden=True, about="TCP to the dropped port"),
    reported(f"A datagram from port 9 to port 4016, from {C}",
             eth / IP(src=C, dst=S) / UDP(sport=DROP_PORT, dport=4016) / b"reply", "pass", None,
             hidden=True, about="UDP from the dropped port"),
    reported("A datagram to port 9 over IPv6",
             eth / IPv6(src="fd00:11::1", dst="fd00:11::2") / UDP(sport=4017, dport=DROP_PORT), "pass",
             None, hidden=True, about="IPv6"),
    reported("An ARP request", eth / ARP(psrc=C, pdst=S), "pass", None, hidden=True, about="ARP"),
]


# -- a full ring, and after it ---------------------------------------------------------------------
RECORD = 8 + 24            # a ring buffer record: an 8-byte header, then the 24-byte event (8-aligned)
MAX_RING = 1 << 18         # bytes; the starter declares 8 pages (32 KiB)
FLOOD_SRC, FLOOD_DST = "203.0.113.77", "203.0.113.88"


@case("a burst of datagrams to port 9 larger than the ring: every one is dropped, and reported or "
      "counted in verdicts_lost; after the ring has filled and emptied, events are still right",
      hidden=True, about="more drops at once than the ring buffer holds, then drops and bad "
      "IPv4 headers after it")
def full_ring(t):
    log = log_of(t)
    if "verdicts_lost" not in t.prog.maps:
        t.fail("your program has no map verdicts_lost: keep BPF_ARRAY(verdicts_lost, u64, 1)")
    lost_map = t.prog.maps["verdicts_lost"]
    lost_before = sum(lost_map.snapshot().values())
    size = t.prog.maps["verdicts"].max_entries
    if size > MAX_RING:
        t.fail(f"verdicts holds {size:,} bytes; keep BPF_RINGBUF_OUTPUT(verdicts, 8) as declared")
    slots = size // RECORD
    repeat = max(16 * slots, 4096)
    flood = bytes(eth / IP(src=FLOOD_SRC, dst=FLOOD_DST) / UDP(sport=0xbeef, dport=DROP_PORT) / (b"x" * 3))
    what = f"a datagram to port 9 from {FLOOD_SRC} port {0xbeef}"
    # Nobody reads the ring during the burst (like a reader that fell behind), so it surely fills:
    # the events that fit wait in it for the next reader, the others must be counted.
    log.reader.close("the check fills the ring")
    try:
        t.prog.test_run(flood, repeat=repeat)         # the packet once, then `repeat` times more
        full = t.prog.test_run(flood)                 # once more, into the full ring
    finally:
        _logs[t.prog] = log = Log(t)                  # a fresh reader: it empties the ring
    sent = repeat + 2
    lost = sum(lost_map.snapshot().values()) - lost_before
    quiet, last, deadline = time.monotonic(), 0, time.monotonic() + 10
    while log.reader.count < sent - lost and time.monotonic() < deadline:
        if log.reader.count != last:
            quiet, last = time.monotonic(), log.reader.count
        elif time.monotonic() - quiet > (0.5 if last else 5.0):     # nothing (more) is coming
            break
        time.sleep(0.01)
    time.sleep(0.1)
    log.problem(t)
    arrived = log.reader.count
    burst = log.reader.events
    log.taken = len(burst)                            # the next cases start after the burst
    if full.verdict != "XDP_DROP":
        t.fail(f"with the ring buffer full, {what} was {word(full.verdict)}; it should be dropped: "
               "a full log must not change what the filter does, and any sender can fill it by "
               "sending faster than the reader reads")
    if arrived + lost != sent:
        t.fail(f"{sent:,} datagrams to port 9 in one burst (the ring holds {slots:,} events): "
               f"{arrived:,} events arrived and verdicts_lost counted {lost:,}; together they "
               f"should make {sent:,} (an event that does not fit must be counted)")
    flooded = dropped(flood, FLOOD_SRC, FLOOD_DST, 0xbeef)
    wrong = [e for e in burst if {f: e[f] for f in FIELDS} != flooded]
    if wrong:
        t.fail(f"of the burst of datagrams to port 9 from {FLOOD_SRC} port {0xbeef}, "
               f"{len(wrong)} were reported wrong, e.g. as {shown(wrong[0])}: "
               f"{differences({f: wrong[0][f] for f in FIELDS}, flooded, flood)}")
    # Every slot of the ring now holds an event of the burst: a field the program reserves but
    # does not fill shows what was there before.
    after = [
        ("A 42-byte frame whose IPv4 header claims 60 bytes (ihl 15)",
         bytes(eth / IP(src=C, dst=S, ihl=15) / UDP(sport=4020, dport=DROP_PORT)), bad),
        (f"A datagram to port 9 from {C} with total length 10",
         bytes(eth / IP(src=C, dst=S, len=10) / UDP(sport=4021, dport=DROP_PORT)), bad),
        ("A 24-byte frame that ends 10 bytes into its IPv4 header",
         _cut(eth / IP(src=C, dst=S) / UDP(), 24), bad),
        (f"A datagram to port 9 from {C} port 4022 in VLAN 30",
         bytes(eth / Dot1Q(vlan=30) / IP(src=C, dst=S) / UDP(sport=4022, dport=DROP_PORT) / b"after"),
         lambda f: dropped(f, C, S, 4022)),
    ]
    for what, frame, want in after:
        judge(t, f"After the ring had filled and emptied, {what[0].lower()}{what[1:]}", frame,
              "drop", want(frame), log=log)
    return (f"{sent:,} datagrams to port 9 in one burst, all dropped: {arrived:,} reported, "
            f"{lost:,} counted in verdicts_lost; after it, bad headers and drops were reported "
            "right")


# -- random frames ---------------------------------------------------------------------------------
def draw(rng):
    """A random frame: (what, frame bytes, verdict, event or None, kind). The kind names the
    frame's shape, not the answer."""
    src, dst = sampling.ipv4(rng), rng.choice((S, sampling.ipv4(rng)))
    sport = sampling.port(rng)
    tags, in_vlan = sampling.vlans(rng)
    head = [Ether(src=sampling.mac(rng), dst=SMAC)] + tags
    pad = bytes(rng.randrange(256) for _ in range(rng.choice((0, 0, rng.randrange(1, 25)))))
    padded = f", {len(pad)} bytes of padding after it" if pad else ""
    data = sampling.payload(rng)
    shape = rng.choices(("drop", "other-udp", "from-9", "tcp", "icmp", "later", "ipv6", "arp",
                         "ihl-low", "ihl-long", "total", "cut", "version"),
                        weights=(8, 3, 1, 1, 1, 2, 1, 1, 2, 2, 2, 2, 1))[0]
    options, with_opts = sampling.ipv4_options(rng) if rng.random() < 0.25 else (b"", "")
    ident = rng.randrange(1 << 16)
    where = f" from {src} to {dst}{in_vlan}"
    if shape in ("drop", "other-udp", "from-9"):
        dport = {"drop": DROP_PORT, "other-udp": sampling.port(rng, avoid=(DROP_PORT,)),
                 "from-9": sampling.port(rng, avoid=(DROP_PORT,))}[shape]
        if shape == "from-9":
            sport = DROP_PORT
        first = rng.random() < 0.15
        ip = IP(src=src, dst=dst, options=options, id=ident, flags="MF" if first else 0)
        frame = bytes(sampling.stack(head, ip, UDP(sport=sport, dport=dport), Raw(data))) + pad
        frag = ", the first fragment of a datagram" if first else ""
        what = f"UDP port {sport} to port {dport}{where}{with_opts}{frag}{padded}"
        kind = f"UDP over IPv4{in_vlan}{with_opts}{frag}{padded}"
        if shape == "drop":
            return what, frame, "drop", dropped(frame, src, dst, sport), kind
        return what, frame, "pass", None, kind
    if shape in ("tcp", "icmp"):
        l4 = TCP(sport=sport, dport=DROP_PORT, flags="S") if shape == "tcp" else ICMP(id=ident, seq=1)
        frame = bytes(sampling.stack(head, IP(src=src, dst=dst, options=options, id=ident), l4,
                                     Raw(data))) + pad
        name = "TCP to port 9" if shape == "tcp" else "an ICMP echo request"
        return (f"{name}{where}{with_opts}{padded}", frame, "pass", None,
                f"{shape.upper()} over IPv4{in_vlan}{with_opts}")
    if shape == "later":
        fake = Raw(struct.pack("!HHHH", sport, DROP_PORT, 8 + len(data), rng.randrange(1 << 16)))
        frame = bytes(sampling.stack(head, IP(src=src, dst=dst, options=options, proto=17, id=ident,
                                              frag=rng.randrange(1, 8000)), fake, Raw(data))) + pad
        return (f"a later fragment{where}{with_opts} whose data starts like port {sport} to port 9",
                frame, "pass", None, f"a later IPv4 fragment{in_vlan}{with_opts}")
    if shape == "ipv6":
        frame = bytes(sampling.stack(head, IPv6(src=sampling.ipv6(rng), dst="fd00:11::2"),
                                     UDP(sport=sport, dport=DROP_PORT), Raw(data))) + pad
        return f"UDP to port 9 over IPv6{in_vlan}", frame, "pass", None, f"IPv6{in_vlan}"
    if shape == "arp":
        frame = bytes(sampling.stack(head, ARP(psrc=src, pdst=S))) + pad
        return f"an ARP request{in_vlan}", frame, "pass", None, f"ARP{in_vlan}"
    # the bad headers: dropped, reported with the verdict, the reason and the frame's length only
    udp = UDP(sport=sport, dport=rng.choice((DROP_PORT, sampling.port(rng))))
    l2 = len(bytes(sampling.stack(head)))
    if shape == "ihl-low":
        ihl = rng.randrange(0, 5)
        frame = bytes(sampling.stack(head, IP(src=src, dst=dst, ihl=ihl, id=ident), udp, Raw(data))) + pad
        what, kind = f"an IPv4 header with ihl {ihl}", "an IPv4 header whose ihl is below 5"
    elif shape == "ihl-long":
        ihl = rng.randrange(6, 16)
        whole = bytes(sampling.stack(head, IP(src=src, dst=dst, ihl=ihl, id=ident), udp, Raw(data)))
        frame = whole[:l2 + rng.randrange(20, 4 * ihl)]
        what = (f"an IPv4 header with ihl {ihl} ({4 * ihl} bytes) in a frame that ends "
                f"{len(frame) - l2} bytes into it")
        kind = "a frame too short for the IPv4 header its ihl claims"
    elif shape == "total":
        hdr = 20 + len(options)
        total = rng.randrange(0, hdr)
        frame = bytes(sampling.stack(head, IP(src=src, dst=dst, options=options, len=total, id=ident),
                                     udp, Raw(data))) + pad
        what = f"an IPv4 header of {hdr} bytes whose total length is {total}"
        kind = "an IPv4 total length smaller than the header"
    elif shape == "cut":
        whole = bytes(sampling.stack(head, IP(src=src, dst=dst, id=ident), udp, Raw(data)))
        frame = whole[:l2 + rng.randrange(0, 20)]
        what = f"a frame that ends {len(frame) - l2} bytes into its IPv4 header"
        kind = "a frame that ends inside its IPv4 header"
    else:
        version = rng.choice([v for v in range(16) if v != 4])
        frame = bytes(sampling.stack(head, IP(src=src, dst=dst, version=version, id=ident), udp,
                                     Raw(data))) + pad
        what, kind = f"an IPv4 header with version {version}", "an IPv4 header with another version"
    return f"{what}{where} ({len(frame)} bytes)", frame, "drop", bad(frame), f"{kind}{in_vlan}"


RANDOM = 60


@case(f"{RANDOM} random frames: drops, passes and bad IPv4 headers, with VLAN tags, options, "
      "padding and fragments, each reported exactly as it should be", hidden=True,
      about="random frames with VLAN tags, options, padding, fragments and bad IPv4 headers")
def random_frames(t):
    log = log_of(t)
    counts = {REASON_PORT: 0, REASON_BAD_HEADER: 0, None: 0}
    for i in range(RANDOM):
        what, frame, verdict, want, kind = draw(t.rng)
        judge(t, f"{what[0].upper()}{what[1:]} (random frame {i + 1} of {RANDOM})", frame, verdict,
              want, about=kind, log=log)
        counts[want and want["reason"]] += 1
    return (f"{RANDOM} random frames ({counts[REASON_PORT]} dropped for port 9, "
            f"{counts[REASON_BAD_HEADER]} for a bad IPv4 header, {counts[None]} passed) were "
            "reported exactly as they should be")


# -- real traffic ----------------------------------------------------------------------------------
@case("traffic from the client, bad IPv4 headers among it: drops reported as they arrive, passes "
      "delivered and not reported, and the kernel's xdp:xdp_exception tracepoint counts nothing "
      "for your program")
def traffic(t):
    log = log_of(t)
    kernel = xdplab.Tracepoints(t.lab)
    try:
        return _traffic(t, log, kernel)
    finally:
        kernel.close()


def _exceptions(t, kernel):
    """{action: count} of the xdp:xdp_exception events of the learner's program (any action: an
    action the kernel does not know fires it too)."""
    mine = {f"{t.prog.name}:{a.fn}" if len(t.prog.functions) > 1 else a.fn
            for a in t.prog.attachments}
    out = {}
    for e, n in kernel.counts().items():
        if e.kind == "exception" and e.program in mine:
            out[e.action] = out.get(e.action, 0) + n
    return out


def _traffic(t, log, kernel):
    c, s = t.client, t.server
    l2 = Ether(src=c.mac, dst=s.mac)
    sink = t.listen(s, 5353)
    frames = []                        # (what, bytes, event or None)
    for n in range(4):
        sport = 5000 + t.rng.randrange(1000) * 4 + n
        f = bytes(l2 / IP(src=c.ip, dst=s.ip) / UDP(sport=sport, dport=DROP_PORT) / (b"d" * (8 * n)))
        frames.append((f"a datagram to port 9 from port {sport}", f, dropped(f, c.ip, s.ip, sport)))
    f = bytes(l2 / Dot1Q(vlan=42) / IP(src=c.ip, dst=s.ip) / UDP(sport=6000, dport=DROP_PORT) / b"vlan")
    frames.append(("a datagram to port 9 from port 6000 in VLAN 42", f, dropped(f, c.ip, s.ip, 6000)))
    for n in range(5):
        f = bytes(l2 / IP(src=c.ip, dst=s.ip) / UDP(sport=40000, dport=5353) / f"pass {n}".encode())
        frames.append(("a datagram to port 5353", f, None))
    broken = [("a 42-byte frame whose IPv4 header claims 60 bytes (ihl 15)",
               bytes(l2 / IP(src=c.ip, dst=s.ip, ihl=15) / UDP(sport=6001, dport=DROP_PORT))),
              ("a datagram whose total length (12) is smaller than its header",
               bytes(l2 / IP(src=c.ip, dst=s.ip, len=12) / UDP(sport=6002, dport=DROP_PORT))),
              ("a frame in VLAN 42 whose IPv4 header has ihl 2",
               bytes(l2 / Dot1Q(vlan=42) / IP(src=c.ip, dst=s.ip, ihl=2) / UDP(sport=6003, dport=53))),
              ("a 26-byte frame that ends 12 bytes into its IPv4 header",
               bytes(l2 / IP(src=c.ip, dst=s.ip) / UDP(sport=6004, dport=DROP_PORT))[:26]),
              ("a frame with the IPv4 ethertype whose header says version 5",
               bytes(l2 / IP(src=c.ip, dst=s.ip, version=5) / UDP(sport=6005, dport=DROP_PORT)))]
    for what, f in broken:
        frames.append((what, f, bad(f)))
    t.rng.shuffle(frames)
    want = [(w, e) for w, _, e in frames if e is not None]
    exceptions_before = _exceptions(t, kernel)
    pings = c.ping(s, count=2, interval=0.1)
    sent = [f for _, f, _ in frames]
    if _marker_ok.get(t.prog):
        mark = bytes(Ether(src=c.mac, dst=s.mac))[:12] + MARK[12:]     # the marker, from the client
        c.send(sent + [mark], iface=c.iface())
        got = log.until_marker(t, wait=5.0)
        time.sleep(0.2)                # one queue, so in order; a margin all the same
        got += log.take(0)
    else:
        c.send(sent, iface=c.iface())
        got = log.take(len(want), wait=5.0, settle=0.5)
        log.problem(t)
    exceptions = {a: n - exceptions_before.get(a, 0) for a, n in _exceptions(t, kernel).items()
                  if n != exceptions_before.get(a, 0)}
    if exceptions:
        fired = ", ".join(f"{n} × {a}" for a, n in sorted(exceptions.items()))
        t.fail(f"the client sent {len(frames)} frames, {len(broken)} of them with a bad IPv4 "
               f"header, and 2 pings; the kernel's xdp:xdp_exception tracepoint fired for your "
               f"program ({fired}). It fires for every XDP_ABORTED (and for an action the "
               "kernel does not know), which says that the program hit a path that should never "
               "run: whoever watches it for program errors must not see it fire because a "
               "sender sent a malformed frame, as any sender can. Drop such a frame (XDP_DROP) "
               "and report it, reason REASON_BAD_HEADER")
    missing, extra = list(want), []
    for e in got:
        match = next((m for m in missing if m[1] == e), None)
        if match:
            missing.remove(match)
        else:
            extra.append(e)
    if missing or extra:
        lines = []
        if missing:
            lines.append(f"{len(missing)} of them did not come as they should, e.g. " + "; ".join(
                f"{w}, which should be reported as {shown(e)}" for w, e in missing[:3]))
        if extra:
            lines.append(f"{len(extra)} event{'s' if len(extra) > 1 else ''} matched none of "
                         "them, e.g. " + ", ".join(shown(e) for e in extra[:3]))
        t.fail(f"the client sent {len(frames)} frames, {len(want)} of them to be dropped, and 2 "
               "pings; " + ". ".join(lines))
    arrived = len(sink.receive(5, timeout=0.5))
    if arrived != 5 or pings.received != 2:
        t.fail(f"{arrived} of 5 datagrams to port 5353 reached the server and {pings.received} of "
               "2 pings were answered; every frame that passes should arrive")
    return (f"the client's {len(want) - len(broken)} datagrams to port 9 and {len(broken)} frames "
            "with bad IPv4 headers were dropped and reported as they arrived, 5 datagrams and 2 "
            "pings passed unreported, and xdp:xdp_exception counted 0 for your program")
