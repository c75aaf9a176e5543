"""Lab 02a — count per source address: talkers[IPv4 source] counts packets, everything passes."""
import ipaddress
import os

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from xdplab import sampling
from xdplab.checks import case, verdict
from xdplab.cpus import run_on_all_cpus

TITLE = "Count per source address: the top talkers"
ATTACH = "server"
HINTS = [
    "Only IPv4 packets have an IPv4 source address: check the ethertype that parse_ethhdr() "
    "returns before you parse an IPv4 header, and pass what is not IPv4 without counting it.",
    "talkers.lookup(&key) gives a pointer to the count, or NULL when the address is new; a new "
    "address needs an entry first (talkers.lookup_or_try_init(&key, &zero) does both).",
    "Use iph->saddr, unchanged, as the key (copy it into a __be32 variable on the stack: map "
    "keys are passed by pointer), and add to the count with __sync_fetch_and_add(count, 1).",
]

SENDERS = {"10.11.0.1": 30, "10.11.0.7": 20, "10.11.0.9": 10}


def counts(t):
    if "talkers" not in t.prog.maps:
        t.fail("your program has no map named talkers: keep BPF_HASH(talkers, __be32, u64, 1024)")
    return {str(ipaddress.ip_address(k)) if not isinstance(k, int) else
            str(ipaddress.ip_address(k.to_bytes(4, "little"))): v
            for k, v in t.prog.maps["talkers"].snapshot().items()}


def diff(before, after):
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


@case("ARP and IPv6 are not counted", hidden=True, about="frames that are not IPv4")
def not_ipv4(t):
    before = counts(t)
    eth = Ether(src=t.client.mac, dst=t.server.mac)
    for pkt in (eth / ARP(psrc="10.11.0.1", pdst="10.11.0.2"),
                eth / IPv6(src="fd00:11::1", dst="fd00:11::2") / UDP(dport=9)):
        t.prog.test_run(pkt)
    new = {k: v for k, v in counts(t).items() if v != before.get(k)}
    if new:
        t.fail(f"an ARP request and an IPv6 packet were counted as {sorted(new)}; count only IPv4")
    return "an ARP request and an IPv6 packet were not counted"


CASES = [
    verdict("UDP from 192.0.2.55", Ether() / IP(src="192.0.2.55", dst="10.11.0.2") / UDP(dport=9),
            "pass"),
]


@case("a packet run through the program is counted under its source")
def test_run_counted(t):
    t.prog.test_run(Ether() / IP(src="198.51.100.3", dst="10.11.0.2") / UDP(dport=9))
    n = counts(t).get("198.51.100.3", 0)
    assert n == 1, f"one packet from 198.51.100.3 was counted {n} times"
    return "one packet from 198.51.100.3 was counted once"


@case("an IPv4 packet in a VLAN-tagged frame is counted under its source", hidden=True,
      about="IPv4 in a frame with a VLAN tag")
def tagged(t):
    before = counts(t)
    t.prog.test_run(Ether() / Dot1Q(vlan=10) / IP(src="198.51.100.4", dst="10.11.0.2") / UDP(dport=9))
    got = diff(before, counts(t))
    if got != {"198.51.100.4": 1}:
        t.fail(f"a UDP packet from 198.51.100.4 in VLAN 10 was counted as {got or 'nothing'}; it "
               "should be counted once under 198.51.100.4")
    return "a UDP packet from 198.51.100.4 in VLAN 10 was counted once"


def draw(rng, sources):
    """A random frame: (what, packet, the source it counts under or None, kind)."""
    if rng.random() < 0.15:
        if rng.random() < 0.5:
            return "an ARP request", Ether() / ARP(psrc=rng.choice(sources)), None, "ARP"
        return ("an IPv6 packet", Ether() / IPv6(src=sampling.ipv6(rng)) / UDP() / sampling.payload(rng),
                None, "IPv6")
    src = rng.choice(sources)
    proto, layer = rng.choice([("UDP", UDP(sport=sampling.port(rng), dport=sampling.port(rng))),
                               ("TCP", TCP(sport=sampling.port(rng), dport=sampling.port(rng))),
                               ("ICMP", ICMP(type=rng.choice((0, 3, 8, 11)))),
                               ("GRE", None), ("IP protocol 253", None)])
    tags, in_vlan = sampling.vlans(rng, rng.choice((0, 0, 1)))
    options, extra = sampling.ipv4_options(rng) if rng.random() < 0.2 else (b"", "")
    frag = rng.choice((0, 0, 0, rng.randrange(1, 8000)))
    ip = IP(src=src, dst=sampling.ipv4(rng, "10.11.0"), options=options, frag=frag,
            proto={"UDP": 17, "TCP": 6, "ICMP": 1, "GRE": 47, "IP protocol 253": 253}[proto])
    packet = sampling.stack(Ether(), tags, ip, layer, Raw(sampling.payload(rng)))
    shape = f"{proto} over IPv4{in_vlan}{extra}{', a later fragment' if frag else ''}"
    return f"{shape} from {src}", packet, src, shape


@case("60 random frames from 8 random sources are counted per source (all of IPv4, nothing else)",
      hidden=True, about="random IPv4 packets of every protocol, with VLAN tags, options and fragments")
def random_frames(t):
    sources = sorted({sampling.ipv4(t.rng) for _ in range(8)})
    want, before = {}, counts(t)
    for i in range(60):
        what, packet, src, kind = draw(t.rng, sources)
        t.expect(f"{what} (random frame {i + 1} of 60)", packet, "pass", about=kind)
        if src:
            want[src] = want.get(src, 0) + 1
        got = diff(before, counts(t))
        if got != want:
            wrong = sorted(set(got) | set(want), key=lambda k: (k not in want, k))
            seen = ", ".join(f"{k}: {got.get(k, 0)} (should be {want.get(k, 0)})"
                             for k in wrong if got.get(k, 0) != want.get(k, 0))
            t.fail(f"after {what} (random frame {i + 1} of 60) the counts were {seen}", about=kind)
    return (f"60 random frames (UDP, TCP, ICMP, GRE and more, with VLAN tags, options and fragments, "
            f"and ARP and IPv6 among them) were counted under their {len(want)} sources")


ROUNDS, REPEAT = 6, 200_000     # a count without atomics lost some in the first round, every time


@case("packets from one source, counted on every CPU at the same time, are all counted")
def every_cpu(t):
    cpus = sorted(os.sched_getaffinity(0))
    src = sampling.ipv4(t.rng)
    packet = Ether() / IP(src=src, dst="10.11.0.2") / UDP(dport=9) / b"all CPUs"
    if len(cpus) < 2:
        return ("this machine has one CPU, so no two CPUs can count at the same time here "
                "(on a machine with more, this case checks that no count is lost)")
    total = 0
    for n in range(ROUNDS):                  # rounds: the CPUs must overlap at least once
        before = counts(t).get(src, 0)
        runs = run_on_all_cpus(t.prog, packet, repeat=REPEAT, cpus=cpus)
        got = counts(t).get(src, 0) - before
        total += runs.total
        if got != runs.total:
            t.fail(f"{runs.total:,} packets from {src} went through your program on "
                   f"{len(cpus)} CPUs at the same time ({REPEAT:,} on each); they were counted as "
                   f"{got:,}, so {runs.total - got:,} counts were lost. When two CPUs read the "
                   "same count, each adds 1 and writes it back, one addition is lost")
    return (f"{total:,} packets from {src}, on {len(cpus)} CPUs at the same time, were all "
            "counted")


@case("when the map is full, a new source still passes (uncounted) and known ones are counted",
      hidden=True, about="a packet from a new source when `talkers` is full")
def full_map(t):
    with t.filled("talkers") as added:
        known = str(added[0]) if added else None
        new = sampling.ipv4(t.rng, "203.0.113")
        t.expect(f"With all {t.prog.maps['talkers'].max_entries} entries of `talkers` taken, a "
                 f"packet from {new} (a new source)", Ether() / IP(src=new, dst="10.11.0.2") / UDP(dport=9),
                 "pass")
        if known:
            t.prog.test_run(Ether() / IP(src=known, dst="10.11.0.2") / UDP(dport=9))
            n = counts(t).get(known, 0)
            if n != 1:
                t.fail(f"with `talkers` full, a packet from {known} (already in the map) was "
                       f"counted as {n}; it should be counted once")
    return (f"with `talkers` full, a packet from a new source passed uncounted, and one from a "
            "source in the map was counted")


@case("60 packets (UDP, TCP and ping) from three sources are counted per source")
def per_source(t):
    before = counts(t)
    for source, n in SENDERS.items():   # a third each of TCP and ping, the rest UDP
        for layer, k in ((TCP(sport=40000, dport=9, flags="S"), n // 3), (ICMP(), n // 3),
                         (UDP(sport=40000, dport=9), n - 2 * (n // 3))):
            t.client.send(IP(src=source, dst=t.server.ip) / layer, count=k)
    got = diff(before, counts(t))
    for source, n in SENDERS.items():
        if got.get(source, 0) != n:
            t.fail(f"the client sent {n} packets from {source} (UDP, TCP and ping); they were "
                   f"counted as {got.get(source, 0)}")
    top = max(got, key=got.get)
    return f"60 packets from three sources were counted per source; the top talker is {top}"


@case("ping between client and server still works")
def ping(t):
    got = t.client.ping(t.server, count=2, interval=0.2).received
    assert got == 2, f"{2 - got} of 2 pings from the client got no answer; every packet should pass"
    return "the client's 2 pings were answered"
