"""Lab 03c — make the verifier accept a program: three bugs, fixed one explained error at a time."""
import ipaddress

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from xdplab import sampling
from xdplab.checks import case, verdict

TITLE = "Make the verifier accept a program"
ATTACH = "server"
HINTS = [
    "The error names a line and says why the verifier refused it. Here: the UDP header is read "
    "before any check shows that it is inside the packet. The first check covers only the "
    "Ethernet and IPv4 headers; the UDP header starts further on.",
    "Next: talkers.lookup_or_try_init() can still return NULL (when the map is full and the "
    "entry cannot be added), and the verifier wants that case handled before *n is touched.",
    "Last: iph->protocol can be anything from 0 to 255, and packets[] has PROTO_SLOTS (32) "
    "entries. The verifier cannot let packets[200] write past the end of the map value: make "
    "sure the index is below PROTO_SLOTS before you use it.",
]

C, S = "10.11.0.1", "10.11.0.2"
eth = Ether(src="02:58:4c:00:00:01", dst="02:58:4c:00:00:02")
ip = IP(src=C, dst=S)

CASES = [
    verdict(f"UDP to port 9 from {C}", eth / ip / UDP(sport=4000, dport=9), "drop"),
    verdict(f"UDP to port 53 from {C}", eth / ip / UDP(sport=4000, dport=53), "pass"),
    verdict(f"TCP to port 9 from {C}", eth / ip / TCP(dport=9), "pass"),
    verdict(f"A ping from {C}", eth / ip / ICMP(), "pass"),
    verdict("An ARP request", eth / ARP(psrc=C, pdst=S), "pass"),
    # cases the notebook does not show
    verdict(f"UDP to port 9 from {C} behind an IPv4 header with options",
            eth / IP(src=C, dst=S, options=b"\x01\x01\x01\x00") / UDP(dport=9), "drop", hidden=True,
            about="an IPv4 header with options (longer than 20 bytes)"),
    verdict(f"An IPv4 packet of protocol 200 from {C}", eth / IP(src=C, dst=S, proto=200) / (b"x" * 8),
            "pass", hidden=True, about="an IP protocol number above 31"),
    verdict("An IPv4 header saying UDP, but the frame ends before the UDP header",
            eth / IP(src=C, dst=S, proto=17), "pass", hidden=True,
            about="a frame that ends before its UDP header"),
    verdict("A 20-byte frame cut in the middle of its IPv4 header",
            Ether(bytes(eth / ip / UDP(dport=9))[:20]), "pass", hidden=True,
            about="a frame that ends inside its IPv4 header"),
]


@case("every packet that passes is counted, per source and per protocol")
def counting(t):
    src = "192.0.2.7"
    before = t.prog.maps["stats"].snapshot()[0].packets
    for pkt in [IP(src=src, dst=S) / UDP(dport=53)] * 3 + [IP(src=src, dst=S) / TCP(dport=80)] * 2:
        t.verdict(eth / pkt)
    talkers = t.prog.maps["talkers"].declare(key="ipv4").snapshot()
    got = {str(k): v for k, v in talkers.items()}.get(src, 0)
    assert got == 5, f"`talkers` counted {got} packets from {src}; it sent 5 that passed"
    after = t.prog.maps["stats"].snapshot()[0].packets
    udp, tcp = after[17] - before[17], after[6] - before[6]
    assert (udp, tcp) == (3, 2), f"`stats` counted {udp} UDP and {tcp} TCP packets; 3 UDP and 2 TCP passed"
    return f"5 packets from {src} counted in `talkers`; 3 UDP and 2 TCP in `stats`"


def slots(t):
    return list(t.prog.maps["stats"].snapshot()[0].packets)


def talkers(t):
    return {str(k): v for k, v in t.prog.maps["talkers"].declare(key="ipv4").snapshot().items()}


def changes(before, after):
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def slot_problems(before, after, want):
    """What is wrong with the slots of `stats`: every one of the 32, not just the expected ones."""
    got = {p: a - b for p, (b, a) in enumerate(zip(before, after)) if a != b}

    def one(p):
        seen = f"slot {p} went up by {got[p]}" if got.get(p) else f"slot {p} did not go up"
        should = f"it should go up by {want[p]}" if want.get(p) else "it should not change"
        return f"{seen} ({should})"
    return ", ".join(one(p) for p in sorted(set(got) | set(want)) if got.get(p, 0) != want.get(p, 0))


def draw(rng):
    """A random packet: (what, packet, verdict, source, protocol)."""
    src = sampling.ipv4(rng)
    proto = rng.choice((1, 6, 17, 17, rng.randrange(0, 256), rng.randrange(32, 256)))
    opts, extra = sampling.ipv4_options(rng) if rng.random() < 0.25 else (b"", "")
    data = Raw(sampling.payload(rng))
    if proto == 17:
        dport = rng.choice((9, sampling.port(rng, avoid=(9,))))
        layer, what = UDP(sport=sampling.port(rng), dport=dport), f"UDP to port {dport}"
    elif proto == 6:
        layer, what = TCP(sport=sampling.port(rng), dport=rng.choice((9, 80, sampling.port(rng)))), "TCP"
    elif proto == 1:
        layer, what = ICMP(type=rng.choice((0, 8))), "a ping"
    else:
        layer, what = None, f"an IPv4 packet of protocol {proto}"
    packet = sampling.stack(eth, IP(src=src, dst=S, proto=proto, options=opts), layer, data)
    drop = proto == 17 and dport == 9
    return f"{what} from {src}{extra}", packet, "drop" if drop else "pass", src, proto


@case("30 random packets of every IP protocol (0 to 255): the right verdict, and counted in `talkers` "
      "and in every slot of `stats` as they should be", hidden=True,
      about="random packets of every IP protocol number, some with IP options")
def random_packets(t):
    for i in range(30):
        what, packet, expect, src, proto = draw(t.rng)
        what = f"{what} (random packet {i + 1} of 30)"
        kind = "UDP to the blocked port" if expect == "drop" else \
            "an IP protocol number above 31" if proto >= 32 else "a packet to be counted"
        before, known = slots(t), talkers(t)
        t.expect(what, packet, expect, about=kind)
        counted = expect == "pass"
        wrong = slot_problems(before, slots(t), {proto: 1} if counted and proto < 32 else {})
        if wrong:
            t.fail(f"after {what}, which {'passed' if counted else 'was dropped'}, in `stats` {wrong}",
                   kind)
        seen = changes(known, talkers(t))
        room = src in known or len(known) < 1024           # a full map counts no new source
        if seen != ({src: 1} if counted and room else {}):
            t.fail(f"after {what}, which {'passed' if counted else 'was dropped'}, `talkers` changed by "
                   f"{seen or 'nothing'}; it should "
                   f"{'count it once under ' + src if counted and room else 'not change'}",
                   kind)
    return ("30 random packets of every IP protocol were dropped or passed and counted as they "
            "should be, in `talkers` and in all 32 slots of `stats`")


@case("when `talkers` is full, packets from a new source still pass and are counted in `stats`",
      hidden=True, about="a packet from a new source when `talkers` is full")
def full_map(t):
    with t.filled("talkers"):
        new = sampling.ipv4(t.rng, "203.0.113")
        before = slots(t)
        t.expect(f"With all {t.prog.maps['talkers'].max_entries} entries of `talkers` taken, TCP "
                 f"from {new} (a new source)", eth / IP(src=new, dst=S) / TCP(dport=80), "pass")
        wrong = slot_problems(before, slots(t), {6: 1})
        if wrong:
            t.fail(f"with `talkers` full, TCP from {new} passed, but in `stats` {wrong}: `stats` "
                   "counts every packet that passes, whether `talkers` has room or not")
    return "with `talkers` full, TCP from a new source passed and was counted in `stats`"


@case("the server gets the client's UDP to port 10, not to port 9, and pings are answered")
def traffic(t):
    discard, other = t.listen(t.server, 9), t.listen(t.server, 10)
    t.client.send(IP(dst=t.server.ip) / UDP(sport=4000, dport=9) / b"gone", count=10)
    t.client.send(IP(dst=t.server.ip) / UDP(sport=4000, dport=10) / b"here", count=10)
    got9, got10 = len(discard.receive(timeout=0.3)), len(other.receive(10, timeout=0.5))
    assert not got9, f"{got9} of 10 datagrams to port 9 reached the server; none should"
    assert got10 == 10, f"only {got10} of 10 datagrams to port 10 reached the server; all should"
    pings = t.client.ping(t.server, count=2, interval=0.2).received
    assert pings == 2, f"{2 - pings} of 2 pings from the client got no answer"
    return "10 datagrams to port 9 were dropped, 10 to port 10 arrived, 2 pings answered"
