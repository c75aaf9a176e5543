"""Lab 07a — count without collisions: port_stats[UDP destination port] counts packets and bytes
in a per-CPU array, exact on every CPU at once, updated in place; everything passes."""
import os

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from xdplab import perf, sampling
from xdplab.checks import case, verdict
from xdplab.cpus import run_on_all_cpus

TITLE = "Count without collisions: per-CPU counters per UDP port"
ATTACH = "server"
HINTS = [
    "Find the UDP header as lesson 07's filter() does: parse_ethhdr() must say IPv4, "
    "parse_iphdr() must say IPPROTO_UDP, the packet must not be a later fragment, and "
    "parse_udphdr() must succeed. The slot is the destination port in host order, "
    "bpf_ntohs(udph->dest); a port of SLOTS or more has no slot and is not counted.",
    "port_stats.lookup(&key) returns a pointer to the slot's struct datarec: add 1 to its "
    "packets and the frame's length, ctx->data_end - ctx->data (the Ethernet header included), "
    "to its bytes, through that pointer. Never write the slot with update(): that replaces it.",
    "Declare the map BPF_PERCPU_ARRAY(port_stats, struct datarec, SLOTS): each CPU then has its "
    "own copy of every slot and adds to it with plain rec->packets++, no atomic instruction; "
    "reading the map (port_stats.snapshot()) adds the copies up.",
]

SLOTS = 1024


def eth():
    """An Ethernet header with the lab's own addresses (a test run reads no MAC address)."""
    return Ether(src="02:58:4c:00:00:01", dst="02:58:4c:00:00:02")


def stats(t):
    """{port: (packets, bytes)} of the slots that are not zero."""
    if "port_stats" not in t.prog.maps:
        t.fail("your program has no map named port_stats: keep its name, its value (struct "
               "datarec) and its size (SLOTS)")
    m = t.prog.maps["port_stats"]
    out = {}
    for port, rec in m.snapshot().items():
        if not hasattr(rec, "packets") or not hasattr(rec, "bytes"):
            t.fail("port_stats holds no struct datarec { u64 packets; u64 bytes; }: keep the "
                   "value as the starter declares it")
        if rec.packets or rec.bytes:
            out[port] = (rec.packets, rec.bytes)
    return out


def grown(before, after):
    """{port: (packets, bytes)} added since `before`."""
    out = {}
    for port in set(before) | set(after):
        b, a = before.get(port, (0, 0)), after.get(port, (0, 0))
        if a != b:
            out[port] = (a[0] - b[0], a[1] - b[1])
    return out


def words(counts):
    """{port: (packets, bytes)} in plain words."""
    if not counts:
        return "nothing"
    return ", ".join(f"port {p}: {n:,} packet{'s' if n != 1 else ''} and {b:,} bytes"
                     for p, (n, b) in sorted(counts.items()))


def udp(dport, size=None, sport=40000, **ip):
    """An IPv4 UDP frame to `dport`, padded with payload to `size` bytes in all."""
    frame = eth() / IP(src=ip.pop("src", "10.11.0.1"), dst="10.11.0.2", **ip) / UDP(sport=sport, dport=dport)
    return frame / Raw(b"x" * (size - len(frame))) if size else frame


CASES = [
    verdict("UDP to port 53", udp(53), "pass"),
]


@case("three datagrams to port 53 are counted in slot 53: 3 packets, and the bytes of their frames")
def three_datagrams(t):
    sizes = (60, 142, 1514)
    before = stats(t)
    for size in sizes:
        t.expect(f"a frame of {size} bytes with UDP to port 53", udp(53, size, sport=123), "pass")
    got, want = grown(before, stats(t)), {53: (3, sum(sizes))}
    if got != want:
        t.fail(f"three UDP datagrams to port 53 from port 123 (frames of 60, 142 and 1514 bytes, "
               f"{sum(sizes):,} in all) were counted as {words(got)}; slot 53 should have grown "
               f"by 3 packets and {sum(sizes):,} bytes, and no other slot")
    return f"three datagrams to port 53 were counted as 3 packets and {sum(sizes):,} bytes"


@case("UDP to a port past the last slot is not counted; ports 0 and 1023 have their slots",
      hidden=True, about="UDP to ports at the edges of port_stats and past it")
def edges(t):
    for port, want in ((1023, {1023: (1, 80)}), (0, {0: (1, 80)}),
                       (SLOTS, {}), (SLOTS + 53, {}), (0x3500, {}), (65535, {})):
        before = stats(t)
        t.expect(f"UDP to port {port}", udp(port, 80), "pass",
                 about=f"UDP to port {port}")
        got = grown(before, stats(t))
        if got != want:
            t.fail(f"an 80-byte frame with UDP to port {port} was counted as {words(got)}; "
                   f"it should be counted as {words(want)}", about=f"UDP to port {port}")
    return "ports 0 and 1023 were counted in their slots, ports 1024 to 65535 not at all"


def not_counted():
    """(what, frame, kind): frames with no UDP destination port to count."""
    later = eth() / IP(dst="10.11.0.2", proto=17, frag=185) / Raw(bytes(UDP(sport=53, dport=53)) + b"data")
    cut = eth() / IP(dst="10.11.0.2", proto=17) / Raw(bytes(UDP(sport=53, dport=53))[:6])
    return [
        ("TCP to port 53", eth() / IP(dst="10.11.0.2") / TCP(sport=53, dport=53, seq=0x12345678), "TCP over IPv4"),
        ("a ping", eth() / IP(dst="10.11.0.2") / ICMP() / b"53535353", "ICMP over IPv4"),
        ("an ARP request", eth() / ARP(pdst="10.11.0.2"), "ARP"),
        ("UDP to port 53 over IPv6", eth() / IPv6(dst="fd00:11::2") / UDP(sport=53, dport=53), "UDP over IPv6"),
        ("a later IPv4 fragment of a UDP datagram, whose data looks like ports 53",
         later, "a later IPv4 fragment (one with no UDP header)"),
        ("an IPv4 packet saying UDP, cut off 6 bytes into the UDP header", cut,
         "a frame that ends inside its UDP header"),
    ]


@case("frames with no UDP header over IPv4 are passed and not counted", hidden=True,
      about="frames that are not UDP over IPv4, or have no whole UDP header")
def others(t):
    for what, frame, kind in not_counted():
        before = stats(t)
        t.expect(what, frame, "pass", about=kind)
        got = grown(before, stats(t))
        if got:
            t.fail(f"{what} was counted as {words(got)}; only UDP datagrams over IPv4 are "
                   "counted", about=kind)
    return "TCP, ICMP, ARP, IPv6, a later fragment and a cut-off UDP header were not counted"


@case("UDP behind IPv4 options and in VLAN tags is counted under its port", hidden=True,
      about="UDP behind IPv4 options, and in VLAN-tagged frames")
def options_and_tags(t):
    from scapy.layers.l2 import Dot1AD, Dot1Q
    frames = [(f"UDP to port 53 behind {n} bytes of IPv4 options",
               eth() / IP(dst="10.11.0.2", options=b"\x01" * (n - 1) + b"\x00") / UDP(sport=40000, dport=53) / b"opts",
               "UDP behind IPv4 options") for n in (4, 40)]
    frames += [("UDP to port 53 in VLAN 10", eth() / Dot1Q(vlan=10) / IP(dst="10.11.0.2") / UDP(dport=53),
                "UDP in a VLAN-tagged frame"),
               ("UDP to port 53 in QinQ (VLAN 20 inside 10)",
                eth() / Dot1AD(vlan=10) / Dot1Q(vlan=20) / IP(dst="10.11.0.2") / UDP(dport=53),
                "UDP in a frame with two VLAN tags")]
    for what, frame, kind in frames:
        before = stats(t)
        t.expect(what, frame, "pass", about=kind)
        got, want = grown(before, stats(t)), {53: (1, len(frame))}
        if got != want:
            t.fail(f"{what} (a frame of {len(frame)} bytes) was counted as {words(got)}; it should "
                   f"be counted as {words(want)}", about=kind)
    return "UDP behind IPv4 options and in VLAN tags was counted under its port"


def draw(rng):
    """A random frame: (what, frame, the slot it counts in or None, kind)."""
    r = rng.random()
    if r < 0.08:
        return "an ARP request", eth() / ARP(pdst=sampling.ipv4(rng)), None, "ARP"
    if r < 0.16:
        return ("UDP over IPv6", eth() / IPv6(dst=sampling.ipv6(rng)) /
                UDP(dport=rng.randrange(SLOTS)) / sampling.payload(rng), None, "UDP over IPv6")
    tags, in_vlan = sampling.vlans(rng, rng.choice((0, 0, 1, 2)))
    options, extra = sampling.ipv4_options(rng) if rng.random() < 0.2 else (b"", "")
    src = sampling.ipv4(rng)
    if r < 0.3:
        proto, layer = rng.choice([("TCP", TCP(sport=sampling.port(rng), dport=rng.randrange(SLOTS),
                                           seq=rng.getrandbits(32))),
                                   ("ICMP", ICMP(type=rng.choice((0, 3, 8, 11))))])
        frame = sampling.stack(eth(), tags, IP(src=src, options=options), layer,
                               Raw(sampling.payload(rng)))
        return f"{proto} over IPv4{in_vlan}{extra}", frame, None, f"{proto} over IPv4"
    dport = rng.choice((rng.randrange(SLOTS), rng.randrange(SLOTS), SLOTS + rng.randrange(SLOTS),
                        rng.randrange(SLOTS, 65536)))
    frag = rng.choice((0, 0, 0, 0, rng.randrange(1, 8000)))
    ip = IP(src=src, dst=sampling.ipv4(rng, "10.11.0"), options=options, frag=frag,
            flags=rng.choice((0, 0, 1)) if not frag else rng.choice((0, 1)))
    frame = sampling.stack(eth(), tags, ip, UDP(sport=sampling.port(rng), dport=dport),
                           Raw(sampling.payload(rng, 0, rng.choice((64, 64, 1400)))))
    shape = f"UDP over IPv4{in_vlan}{extra}{', a later fragment' if frag else ''}"
    slot = dport if dport < SLOTS and not frag else None
    return f"{shape} to port {dport}", frame, slot, shape


@case("80 random frames are counted in the slots of their UDP ports, packets and bytes",
      hidden=True, about="random frames: UDP to every range of ports, other protocols, VLAN tags, "
                         "IPv4 options and fragments")
def random_frames(t):
    want, before = {}, stats(t)
    for i in range(80):
        what, frame, slot, kind = draw(t.rng)
        t.expect(f"{what} (random frame {i + 1} of 80)", frame, "pass", about=kind)
        if slot is not None:
            n, b = want.get(slot, (0, 0))
            want[slot] = (n + 1, b + len(frame))
        got = grown(before, stats(t))
        if got != want:
            wrong = {p: got.get(p, (0, 0)) for p in set(got) | set(want) if got.get(p) != want.get(p)}
            should = {p: want.get(p, (0, 0)) for p in wrong}
            t.fail(f"after {what} (a frame of {len(frame)} bytes, random frame {i + 1} of 80) the "
                   f"counts were {words(wrong)}; they should be {words(should)}", about=kind)
    return f"80 random frames were counted in {len(want)} slots, packets and bytes exact"


ROUNDS, REPEAT = 6, 200_000   # a shared count with plain ++ lost some in the first round, every time


@case("datagrams to one port, counted on every CPU at the same time, are all counted")
def every_cpu(t):
    cpus = sorted(os.sched_getaffinity(0))
    port = t.rng.randrange(1, SLOTS)
    frame = udp(port, t.rng.randrange(60, 400))
    if len(cpus) < 2:
        return ("this machine has one CPU, so no two CPUs can count at the same time here "
                "(on a machine with more, this case checks that no count is lost)")
    total = 0
    for _ in range(ROUNDS):                  # rounds: the CPUs must overlap at least once
        before = stats(t).get(port, (0, 0))
        runs = run_on_all_cpus(t.prog, frame, repeat=REPEAT, cpus=cpus)
        after = stats(t).get(port, (0, 0))
        got = (after[0] - before[0], after[1] - before[1])
        total += runs.total
        want = (runs.total, runs.total * len(frame))
        if got != want:
            t.fail(f"{runs.total:,} datagrams to port {port} ({len(frame)}-byte frames) went "
                   f"through your program on {len(cpus)} CPUs at the same time ({REPEAT:,} on "
                   f"each); slot {port} grew by {got[0]:,} packets and {got[1]:,} bytes, not "
                   f"{want[0]:,} and {want[1]:,}. When two CPUs read the same counter, each adds "
                   "to it and writes it back, one of the additions is lost")
    return f"{total:,} datagrams to port {port}, on {len(cpus)} CPUs at the same time, were all counted"


@case("port_stats is a per-CPU array: each CPU counts in its own copy")
def per_cpu(t):
    stats(t)
    m = t.prog.maps["port_stats"]
    if m.kind != "percpu_array":
        what = {"array": "an array every CPU shares (BPF_ARRAY): all CPUs write the same counters",
                "hash": "a hash map every CPU shares: all CPUs write the same counters",
                "percpu_hash": "a per-CPU hash map, not an array"}.get(m.kind, f"a {m.kind} map")
        t.fail(f"your counts were right, but port_stats is {what}. The task asks for a per-CPU "
               "array, BPF_PERCPU_ARRAY, with its SLOTS slots")
    if m.max_entries != SLOTS:
        t.fail(f"port_stats has {m.max_entries} slots; keep SLOTS ({SLOTS})")
    cpus = sorted(os.sched_getaffinity(0))
    port = t.rng.randrange(1, SLOTS)
    frame = udp(port, 100)
    before = m.snapshot(per_cpu=True)[port]
    runs = run_on_all_cpus(t.prog, frame, repeat=1000, cpus=cpus)
    after = m.snapshot(per_cpu=True)[port]
    for cpu, n in runs.per_cpu.items():
        got = after[cpu].packets - before[cpu].packets
        if got != n:
            t.fail(f"{n:,} datagrams to port {port} ran on CPU {cpu}, and CPU {cpu}'s copy of "
                   f"slot {port} grew by {got:,}; each CPU should count in its own copy")
    return (f"port_stats is a per-CPU array: {runs.total:,} datagrams on {len(cpus)} CPU"
            f"{'s' if len(cpus) > 1 else ''} were each counted in their own CPU's copy")


@case("the count is added to in place: no bpf_map_update_elem() for each packet")
def in_place(t):
    updates = [c for c in perf.calls(t.prog) if "update" in c]
    if updates:
        t.fail(f"your program calls {updates[0]} (the verifier's instructions show it: "
               "port_stats.update() is bpf_map_update_elem()). Add to the slot through the "
               "pointer port_stats.lookup() returns instead: the lesson measured update() per "
               "packet at several times the cost of the whole program")
    return "the counts were added to in place (no map update called)"


@case("datagrams from the client to three ports are counted per port, packets and bytes")
def traffic(t):
    wire = Ether(src=t.client.mac, dst=t.server.mac)
    sent = [(53, 20, 64), (123, 10, 300), (5000, 10, 100)]
    before = stats(t)
    want = {}
    for port, n, size in sent:
        frame = wire / IP(src=t.client.ip, dst=t.server.ip) / UDP(sport=40000, dport=port)
        frame = frame / Raw(b"x" * (size - len(frame)))
        t.client.send(frame, count=n)
        if port < SLOTS:
            want[port] = (n, n * size)
    t.client.send(wire / IP(src=t.client.ip, dst=t.server.ip) / TCP(sport=40000, dport=53, flags="S"), count=5)
    got = grown(before, stats(t))
    if got != want:
        t.fail(f"the client sent 20 datagrams to port 53 (64-byte frames), 10 to port 123 "
               f"(300 bytes), 10 to port 5000 (100 bytes) and 5 TCP segments to port 53; they "
               f"were counted as {words(got)}; they should be {words(want)}")
    return f"the client's datagrams were counted as {words(got)}"


@case("ping between client and server still works")
def ping(t):
    got = t.client.ping(t.server, count=2, interval=0.2).received
    assert got == 2, f"{2 - got} of 2 pings from the client got no answer; every frame should pass"
    return "the client's 2 pings were answered"
