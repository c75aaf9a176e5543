"""Lab 10a — several programs, one interface: count_proto and drop_discard behind the dispatcher
lab10a_dispatch, in whatever slots of `chain` the check puts them.

The check fills the slots itself: the lesson's order, the swapped order, one member alone, empty
slots between and before them, a member in two slots, all four slots full. Into some it puts a
program of its own, `check_end`, which counts the frames that reach it and passes them: a frame
reaches it only when every member before it passed it on with a tail call. What each member
should have done with each frame is worked out from the slots and from how the frame was built
(`model`), and compared with the verdict and with the counters `frames`, `dropped` and check_end's.
"""
import dataclasses
import os
import struct

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from xdplab import sampling
from xdplab.checks import case, word
from xdplab.cpus import run_on_all_cpus

TITLE = "Several programs, one interface"
ATTACH = "server"
HINTS = [
    "A tail call is a jump, not a function call: when chain.call() finds a program in the slot, "
    "it never comes back, so nothing after it runs. Count before you call next(), and end a "
    "member that keeps the frame with `return next(ctx);` — a `return XDP_PASS;` ends the whole "
    "chain, and the members in later slots never see the frame.",
    "next() looks up the frame's slot in `position`, adds one to the value in the map "
    "(*pos += 1, so the member in that slot finds it there), then tail-calls that slot. If "
    "chain.call() returns, the slot was empty or past the end: the chain is over, and the frame "
    "goes on with XDP_PASS, whatever the member was about to do.",
    "Several CPUs update `frames` and `dropped` at once: add with __sync_fetch_and_add(n, 1). "
    "parse_ethhdr() returns the ethertype behind the VLAN tags. For UDP over IPv6 use "
    "parse_ip6hdr() then skip_ip6hdrext() before parse_udphdr(); compare udph->dest with "
    "bpf_htons(9), and over IPv4 pass a later fragment (ip_is_later_fragment()) on unread.",
]

SLOTS = 4
DISPATCHER, COUNT, FILTER, END = "lab10a_dispatch", "count_proto", "drop_discard", "check_end"
KINDS = ("IPv4", "IPv6", "anything else")      # frames[0], frames[1], frames[2]

# The check's own member: it counts what reaches it (per-CPU: exact on every CPU) and passes it.
END_SOURCE = """
BPF_PERCPU_ARRAY(reached, u64, 1);

int check_end(struct xdp_md *ctx)
{
	u32 zero = 0;
	u64 *n = reached.lookup(&zero);

	if (n)
		*n += 1;
	return XDP_PASS;
}
"""

C, S, C6, S6 = "10.11.0.1", "10.11.0.2", "fd00:11::1", "fd00:11::2"
eth = Ether(src="02:58:4c:00:00:01", dst="02:58:4c:00:00:02")


@dataclasses.dataclass
class Frame:
    what: str            # the frame in plain words
    packet: object
    kind: int            # where count_proto counts it: 0 IPv4, 1 IPv6, 2 anything else
    discard: bool        # drop_discard drops it (UDP to port 9, not a later IPv4 fragment)
    about: str = None    # its kind, without the answer (for hidden cases)


V4_9 = Frame("UDP to port 9 over IPv4", eth / IP(src=C, dst=S) / UDP(sport=40000, dport=9) / b"discard me",
             0, True)
V4_7 = Frame("UDP to port 7 over IPv4", eth / IP(src=C, dst=S) / UDP(sport=40000, dport=7) / b"echo me",
             0, False)
V6_9 = Frame("UDP to port 9 over IPv6", eth / IPv6(src=C6, dst=S6) / UDP(sport=40000, dport=9) / b"discard me",
             1, True)
V6_7 = Frame("UDP to port 7 over IPv6", eth / IPv6(src=C6, dst=S6) / UDP(sport=40000, dport=7) / b"echo me",
             1, False)
ARP_REQUEST = Frame("an ARP request", eth / ARP(psrc=C, pdst=S), 2, False)
SHOWN = [V4_9, V4_7, V6_9, V6_7, ARP_REQUEST]


def _later_fragment_data(sport, dport):
    """8 bytes that look like a UDP header (sport → dport), then data: a later fragment's start."""
    return Raw(struct.pack("!HHHH", sport, dport, 32, 0x1234) + b"x" * 24)


SHAPES = [
    Frame("UDP to port 9 over IPv4 in VLAN 10", eth / Dot1Q(vlan=10) / IP(src=C, dst=S)
          / UDP(sport=40000, dport=9) / b"tagged", 0, True, "UDP over IPv4 in a frame with a VLAN tag"),
    Frame("UDP to port 7 over IPv4 in VLAN 10", eth / Dot1Q(vlan=10) / IP(src=C, dst=S)
          / UDP(sport=40000, dport=7) / b"tagged", 0, False, "UDP over IPv4 in a frame with a VLAN tag"),
    Frame("UDP to port 9 over IPv6 in QinQ (VLAN 20 inside 100)", eth / Dot1AD(vlan=100) / Dot1Q(vlan=20)
          / IPv6(src=C6, dst=S6) / UDP(sport=40000, dport=9) / b"tagged twice", 1, True,
          "UDP over IPv6 in a frame with two VLAN tags (QinQ)"),
    Frame("TCP to port 7 over IPv6 in QinQ (VLAN 20 inside 100)", eth / Dot1AD(vlan=100) / Dot1Q(vlan=20)
          / IPv6(src=C6, dst=S6) / TCP(sport=40000, dport=7), 1, False,
          "TCP over IPv6 in a frame with two VLAN tags (QinQ)"),
    Frame("an ARP request in VLAN 10", eth / Dot1Q(vlan=10) / ARP(psrc=C, pdst=S), 2, False,
          "ARP in a frame with a VLAN tag"),
    Frame("a frame of ethertype 0x88b5 (local experimental)",
          Ether(src=eth.src, dst=eth.dst, type=0x88b5) / Raw(b"\x00" * 46), 2, False,
          "a frame that is neither IP nor ARP"),
    # (seq=: the bytes where a UDP header has its length look like one, so that a filter that
    # reads TCP as if it were UDP finds port 9 and a valid header)
    Frame("TCP to port 9 over IPv4", eth / IP(src=C, dst=S) / TCP(sport=40000, dport=9, seq=0x12345678),
          0, False, "TCP over IPv4"),
    Frame("TCP to port 9 over IPv6", eth / IPv6(src=C6, dst=S6) / TCP(sport=40000, dport=9, seq=0x12345678),
          1, False, "TCP over IPv6"),
    Frame("UDP from port 9 to port 40000 over IPv4", eth / IP(src=C, dst=S) / UDP(sport=9, dport=40000),
          0, False, "UDP over IPv4 from the port that is dropped as a destination"),
    Frame("UDP from port 9 to port 40000 over IPv6", eth / IPv6(src=C6, dst=S6) / UDP(sport=9, dport=40000),
          1, False, "UDP over IPv6 from the port that is dropped as a destination"),
    Frame("a ping over IPv4", eth / IP(src=C, dst=S) / ICMP(), 0, False, "ICMP over IPv4"),
    Frame("a ping over IPv6", eth / IPv6(src=C6, dst=S6) / ICMPv6EchoRequest(), 1, False, "ICMPv6"),
    Frame("UDP to port 9 over IPv4 behind 8 bytes of IPv4 options",
          eth / IP(src=C, dst=S, options=b"\x01" * 7 + b"\x00") / UDP(dport=9), 0, True,
          "UDP over an IPv4 header with options"),
    Frame("UDP to port 9 over IPv6 behind hop-by-hop and destination options headers",
          eth / IPv6(src=C6, dst=S6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / UDP(dport=9), 1, True,
          "UDP over IPv6 behind a chain of extension headers"),
    Frame("UDP to port 9 over IPv6 behind a fragment header (the first fragment)",
          eth / IPv6(src=C6, dst=S6) / IPv6ExtHdrFragment(offset=0, m=1, id=7) / UDP(dport=9, len=1008)
          / (b"f" * 1000), 1, True, "the first fragment of an IPv6 packet"),
    Frame("the first fragment of a UDP datagram to port 9 over IPv4",
          eth / IP(src=C, dst=S, flags="MF") / UDP(sport=40000, dport=9, len=1008) / (b"f" * 1000), 0, True,
          "the first fragment of an IPv4 datagram"),
    Frame("a later fragment of a UDP datagram over IPv4 whose data starts like UDP to port 9",
          eth / IP(src=C, dst=S, proto=17, frag=100) / _later_fragment_data(40000, 9), 0, False,
          "a later IPv4 fragment (one with no UDP header)"),
    Frame("a later fragment of an IPv6 packet whose data starts like UDP to port 9",
          eth / IPv6(src=C6, dst=S6) / IPv6ExtHdrFragment(nh=17, offset=100, id=8)
          / _later_fragment_data(40000, 9), 1, False, "a later IPv6 fragment (one with no UDP header)"),
]


# -- the chain -------------------------------------------------------------------------------------
def ready(t):
    """Fail, saying what to keep, unless the program has the dispatcher first, both members and
    the maps as declared."""
    fns = t.prog.functions
    if fns[0] != DISPATCHER:
        t.fail(f"the first XDP function of your program is {fns[0]}, not {DISPATCHER}: keep the "
               "dispatcher first, it is the function that is attached")
    missing = [n for n in (COUNT, FILTER) if n not in fns]
    if missing:
        t.fail(f"your program has no XDP function {' or '.join(missing)}: keep the members "
               f"{COUNT} and {FILTER} (int NAME(struct xdp_md *ctx))")
    for name, kind, size in (("chain", "prog_array", SLOTS), ("frames", "array", 3),
                             ("dropped", "array", 1)):
        if name not in t.prog.maps:
            t.fail(f"your program has no map named {name}: keep the maps as declared")
        m = t.prog.maps[name]
        if m.kind.replace("percpu_", "") != kind or m.max_entries != size:
            t.fail(f"the map {name} is a {m.kind} map of {m.max_entries}; keep it as declared "
                   f"(an array of {size}{'' if kind == 'array' else ' programs'})")


def end_program(t):
    """check_end, loaded once per lab."""
    for p in t.lab.programs:
        if p.name == END and p.bpf is not None:
            return p
    return t.lab.load(END_SOURCE, name=END)


def fill(t, slots):
    """Put the named programs into slots 0, 1, ... of `chain` (None: an empty slot), the rest
    emptied."""
    ready(t)
    table = t.prog.bpf["chain"]
    for i in range(SLOTS):
        name = slots[i] if i < len(slots) else None
        if name is None:
            try:
                del table[i]
            except KeyError:
                pass                      # already empty
        else:
            table[i] = end_program(t).fd() if name == END else t.prog.fd(name)


def described(slots):
    names = [slots[i] if i < len(slots) else None for i in range(SLOTS)]
    return "the slots " + ", ".join(f"{i}: {n or 'empty'}" for i, n in enumerate(names))


def model(slots, frame):
    """What the chain in `slots` should do with `frame`: (verdict, frames counted per kind,
    drops counted, times check_end was reached)."""
    counted, drops, reached = [0, 0, 0], 0, 0
    for i in range(SLOTS):
        name = slots[i] if i < len(slots) else None
        if name is None:                  # an empty slot ends the chain
            break
        if name == COUNT:
            counted[frame.kind] += 1
        elif name == FILTER and frame.discard:
            return "XDP_DROP", tuple(counted), drops + 1, reached
        elif name == END:
            return "XDP_PASS", tuple(counted), drops, reached + 1
    return "XDP_PASS", tuple(counted), drops, reached   # an empty slot, or past the last one


def counts(t):
    frames = t.prog.maps["frames"].snapshot()
    dropped = t.prog.maps["dropped"].snapshot()
    reached = end_program(t).maps["reached"].snapshot()
    return tuple(frames.get(k, 0) for k in range(3)), dropped.get(0, 0), reached.get(0, 0)


def delta(before, after):
    return tuple(a - b for a, b in zip(after[0], before[0])), after[1] - before[1], after[2] - before[2]


def times(n):
    return {1: "once", 2: "twice"}.get(n, f"{n:,} times")


def tally(counted):
    return " and ".join(f"{times(n)} as {KINDS[k]}" for k, n in enumerate(counted) if n)


def problems(slots, got, want, it="it"):
    """What differs between the counters `got` and `want` (frames, drops, reached), in words;
    `it`: what was sent ("it", "them")."""
    out = []
    (g_frames, g_drops, g_reached), (w_frames, w_drops, w_reached) = got, want
    if g_frames != w_frames:
        text = (f"{COUNT} counted {it} {tally(g_frames)}" if any(g_frames) else
                f"{COUNT} did not count {it}")
        text += (f"; it should count {it} {tally(w_frames)}" if any(w_frames) else
                 f"; it should not have seen {it}")
        if sum(g_frames) > 2 * max(sum(w_frames), 1) and sum(g_frames) >= 8:
            text += (" (a member that runs again and again is tail-calling its own slot: the kernel "
                     "stops such a loop after 33 tail calls in a row, and the tail call it refuses "
                     "returns)")
        out.append(text)
    if g_drops != w_drops:
        out.append(f"dropped[0] went up by {g_drops:,}; it should go up by {w_drops:,}")
    if g_reached != w_reached and END in slots:
        out.append(f"{END} in slot {slots.index(END)} (the check's program, which counts what "
                   f"reaches it) was reached {times(g_reached) if g_reached else 'not at all'}; it "
                   f"should be reached {times(w_reached) if w_reached else 'not at all'}")
    return out


def through(t, slots, frame, about=None):
    """Run `frame` through the dispatcher with `slots` filled (already done) and fail unless
    verdict and counters are what the model says."""
    want_verdict, *want = model(slots, frame)
    before = counts(t)
    result = t.prog.test_run(frame.packet, fn=DISPATCHER)
    got = delta(before, counts(t))
    found = problems(slots, got, tuple(want))
    if result.verdict != want_verdict:
        found.insert(0, f"it was {word(result.verdict)}; it should be {word(want_verdict)}")
    if found:
        t.fail(f"{frame.what}, with {described(slots)}: " + "; ".join(found), about=about or frame.about)


def run_all(t, arrangements, frames, about=None):
    for slots in arrangements:
        fill(t, slots)
        for frame in frames:
            through(t, slots, frame, about)


# -- the cases -------------------------------------------------------------------------------------
@case("the dispatcher comes first, the members and maps are there")
def shape(t):
    ready(t)
    return (f"{DISPATCHER} is the first function (the one attached), {COUNT} and {FILTER} are "
            "there, and so are the maps chain, frames and dropped")


def shown_words():
    return "UDP to ports 9 and 7 over IPv4 and IPv6, and an ARP request"


@case(f"{COUNT} in slot 0, {FILTER} in slot 1: every frame counted, UDP to port 9 dropped")
def lesson_order(t):
    run_all(t, [[COUNT, FILTER]], SHOWN)
    return f"in the lesson's order, {shown_words()} were counted, and UDP to port 9 was dropped"


@case(f"{FILTER} in slot 0, {COUNT} in slot 1: {COUNT} sees only what {FILTER} passed on")
def swapped_order(t):
    run_all(t, [[FILTER, COUNT]], SHOWN)
    return f"in the swapped order, {COUNT} counted only what {FILTER} passed on"


@case(f"the check's own program after both members, in either order, receives every frame they "
      "pass on (so each passes it on with a tail call)")
def passed_on(t):
    run_all(t, [[COUNT, FILTER, END], [FILTER, COUNT, END]], SHOWN)
    return (f"with {END} in slot 2, every frame the members let go on reached it, in either order: "
            "they pass frames on with the tail call")


@case("a member alone, the next slot empty: the chain ends there and the frame is passed")
def alone(t):
    run_all(t, [[COUNT], [FILTER]], SHOWN)
    return (f"{COUNT} alone counted and passed everything; {FILTER} alone dropped UDP to port 9 "
            "and passed the rest")


@case("an empty slot ends the chain: the members after it do not run")
def empty_slots(t):
    run_all(t, [[None, COUNT, FILTER], [COUNT, None, FILTER, END]], SHOWN)
    return ("with slot 0 empty nothing ran and every frame was passed; with slot 1 empty, "
            f"{COUNT} ran and nothing after the gap did")


@case("a member in two slots runs twice, and a chain through all four slots ends after the last")
def repeated(t):
    run_all(t, [[COUNT, COUNT, FILTER, END], [COUNT, FILTER, COUNT, COUNT], [FILTER, COUNT, COUNT, COUNT]],
            SHOWN)
    return (f"{COUNT} in two or three slots counted each frame once per slot, and with all four "
            "slots full the frame was passed after the last")


@case("frames of other shapes: VLAN tags and QinQ, TCP, UDP from port 9, pings, IPv4 options, "
      "IPv6 extension headers, fragments, other ethertypes", hidden=True,
      about="frames with VLAN tags, extension headers and fragments")
def shapes(t):
    run_all(t, [[COUNT, FILTER, END], [FILTER, COUNT, END]], SHAPES)
    return (f"{len(SHAPES)} frames of other shapes (VLAN tags, QinQ, TCP, UDP from port 9, pings, "
            "options, extension headers, fragments, other ethertypes) were counted under the right "
            "ethertype and dropped or passed on as they should, in either order")


def draw(rng):
    """A random frame: Frame(what, packet, kind, discard, about); the answer from how it is built."""
    pick = rng.random()
    tags, in_vlan = sampling.vlans(rng)
    src_mac = sampling.mac(rng)
    if pick < 0.08:
        packet = sampling.stack(Ether(src=src_mac, dst=eth.dst), tags,
                                ARP(psrc=sampling.ipv4(rng), pdst=S))
        return Frame(f"an ARP request{in_vlan}", packet, 2, False, f"ARP{in_vlan}")
    if pick < 0.14:
        ethertype = rng.choice((0x88b5, 0x88b6, 0x88cc, 0x8847))
        if tags:
            tags[-1].type = ethertype
        ether = Ether(src=src_mac, dst=eth.dst, **({} if tags else {"type": ethertype}))
        packet = sampling.stack(ether, tags, Raw(sampling.payload(rng, 46, 64)))
        return Frame(f"a frame of ethertype {ethertype:#06x}{in_vlan}", packet, 2, False,
                     f"a frame that is neither IP nor ARP{in_vlan}")
    v6 = pick < 0.55
    proto = rng.choice(("UDP", "UDP", "UDP", "TCP", "ICMP"))
    sport = rng.choice((sampling.port(rng), sampling.port(rng), 9))
    dport = rng.choice((9, 9, 7, sampling.port(rng, avoid=(9,))))
    extra, fragment = "", "whole"
    if v6:
        fragment = "later" if rng.random() < 0.12 else "whole"
        chain, extra = sampling.ipv6_chain(rng, fragment=fragment == "whole")
        if fragment == "later":
            chain.append(IPv6ExtHdrFragment(offset=rng.randrange(1, 8000), id=rng.randrange(1 << 32)))
        ip = [IPv6(src=sampling.ipv6(rng), dst=S6)] + chain
    else:
        options, extra = sampling.ipv4_options(rng) if rng.random() < 0.25 else (b"", "")
        fragment = rng.choice(("whole", "whole", "whole", "first", "later"))
        ip = IP(src=sampling.ipv4(rng), dst=S, options=options, proto={"UDP": 17, "TCP": 6, "ICMP": 1}[proto],
                flags="MF" if fragment == "first" else 0,
                frag=rng.randrange(1, 8000) if fragment == "later" else 0)
    if proto == "UDP":
        l4 = UDP(sport=sport, dport=dport)
    elif proto == "TCP":
        l4 = TCP(sport=sport, dport=dport, flags="S", seq=rng.randrange(1 << 32))
    else:
        l4 = ICMPv6EchoRequest(id=rng.randrange(1 << 16)) if v6 else ICMP(id=rng.randrange(1 << 16))
    if fragment == "later":
        if v6:
            ip[-1].nh = {"UDP": 17, "TCP": 6, "ICMP": 58}[proto]
        l4 = _later_fragment_data(sport, dport)
    packet = sampling.stack(Ether(src=src_mac, dst=eth.dst), tags, ip, l4, Raw(sampling.payload(rng)))
    family = "IPv6" if v6 else "IPv4"
    name = "ICMPv6" if v6 and proto == "ICMP" else proto
    where = {"whole": "", "first": ", the first fragment",
             "later": ", a later fragment (its data only looks like a header)"}[fragment]
    ports = f" port {sport} to port {dport}" if proto != "ICMP" else " (an echo request)"
    discard = proto == "UDP" and dport == 9 and fragment != "later"
    return Frame(f"{name} over {family}{ports}{in_vlan}{extra}{where}", packet, 1 if v6 else 0, discard,
                 f"{name} over {family}{in_vlan}{extra}{where}")


def arrangement(rng):
    """Random slots: each holds count_proto, drop_discard, check_end or nothing."""
    slots = [rng.choice((COUNT, COUNT, FILTER, FILTER, END, None)) for _ in range(SLOTS)]
    if slots[0] is None and rng.random() < 0.8:
        slots[0] = rng.choice((COUNT, FILTER))
    return slots


@case("48 random frames through 8 random arrangements of the slots (members repeated, empty "
      "slots, the check's program anywhere)", hidden=True,
      about="random frames (IPv4, IPv6, ARP, VLAN tags, extension headers, fragments) through "
            "random slot arrangements")
def random_chains(t):
    for group in range(8):
        slots = arrangement(t.rng)
        fill(t, slots)
        for i in range(6):
            frame = draw(t.rng)
            frame.what += f" (random frame {6 * group + i + 1} of 48)"
            through(t, slots, frame, about=f"{frame.about}, through random slot arrangements")
    return "48 random frames through 8 random arrangements of the slots did what the slots said"


ROUNDS, REPEAT = 4, 200_000      # a count without atomics loses some in the first round already


@case("frames through the chain on every CPU at the same time are all counted")
def every_cpu(t):
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return ("this machine has one CPU, so no two CPUs can run the chain at the same time here "
                "(on a machine with more, this case checks that no count is lost)")
    slots = [COUNT, FILTER, END]
    fill(t, slots)
    total = 0
    for _ in range(ROUNDS):
        for frame in (V6_7, V4_9):
            _, want_frames, want_drops, want_reached = model(slots, frame)
            before = counts(t)
            runs = run_on_all_cpus(t.prog, frame.packet, repeat=REPEAT, cpus=cpus, fn=DISPATCHER)
            got = delta(before, counts(t))
            n = runs.total
            want = (tuple(c * n for c in want_frames), want_drops * n, want_reached * n)
            found = problems(slots, got, want, it="them")
            if found:
                lost = 0 < sum(got[0]) < sum(want[0]) or 0 < got[1] < want[1]
                why = (". When two CPUs read the same count at once, each adds 1 and writes it back: "
                       "one addition is lost" if lost else
                       ". One at a time, frames took the right way through these slots (the cases "
                       "before this one); from two CPUs at once some took another: the CPUs share "
                       "something that says where a frame is" if got[2] != want[2] else "")
                t.fail(f"{n:,} frames of {frame.what} went through the chain ({described(slots)}) on "
                       f"{len(cpus)} CPUs at the same time, {REPEAT:,} on each: " + "; ".join(found)
                       + why)
            total += n
    return (f"{total:,} frames through the chain on {len(cpus)} CPUs at the same time were all "
            "counted, and every one reached what came after")


@case(f"real traffic: with {COUNT} and {FILTER} in the lesson's order, the client's UDP to port 9 "
      "is dropped and counted, UDP to port 7 arrives, every frame is counted")
def traffic(t):
    slots = [COUNT, FILTER]
    fill(t, slots)
    discard, echo = t.listen(t.server, 9), t.listen(t.server, 7)
    before = counts(t)
    n = 20
    for ip in (IP(dst=t.server.ip), IPv6(dst=t.server.ip6)):
        t.client.send(ip / UDP(sport=40000, dport=9) / b"to be dropped", count=n)
        t.client.send(ip / UDP(sport=40000, dport=7) / b"to arrive", count=n)
    arrived = len(echo.receive(2 * n, timeout=0.5))
    leaked = len(discard.receive(timeout=0.2))
    got = delta(before, counts(t))
    found = problems(slots, got, ((2 * n, 2 * n, 0), 2 * n, 0), it="them")
    if arrived != 2 * n:
        found.insert(0, f"{arrived} of the {2 * n} datagrams to port 7 reached the server; all should")
    if leaked:
        found.insert(0, f"{leaked} of the {2 * n} datagrams to port 9 reached the server; none should")
    if found:
        t.fail(f"the client sent {n} UDP datagrams to port 9 and {n} to port 7, over IPv4 and over "
               f"IPv6 each: " + "; ".join(found))
    return (f"the client's {2 * n} datagrams to port 9 (IPv4 and IPv6) were dropped and counted, "
            f"its {2 * n} to port 7 arrived, and all {4 * n} were counted")
