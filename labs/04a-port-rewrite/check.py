"""Lab 04a — rewrite destination ports: UDP to 7000 leaves for 7001 with a right checksum."""
import struct

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, PadN
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from xdplab import sampling
from xdplab.checks import case, verdict

TITLE = "Rewrite destination ports with correct checksums"
ATTACH = "server"
HINTS = [
    "The UDP checksum covers the whole UDP header, so a new port makes the old checksum wrong, "
    "and the server's kernel silently drops the datagram.",
    "You need not add up the datagram again: parsing_helpers.h has csum_replace2(&checksum, "
    "old_word, new_word), which updates a checksum for one 16-bit word that changed (RFC 1624).",
    "Keep the ports in network byte order (bpf_htons(7000)); over IPv4 leave a checksum of 0 "
    "alone; for IPv6 use parse_ip6hdr() and skip_ip6hdrext() and reach the same UDP code.",
]

C, S, C6, S6 = "10.11.0.1", "10.11.0.2", "fd00:11::1", "fd00:11::2"
eth = Ether(src="02:58:4c:00:00:01", dst="02:58:4c:00:00:02")


def rewritten(dport, checksum="right"):
    """A check of the output packet: destination port `dport`, and a UDP checksum that is right
    ("right"), or exactly the given number."""
    def look(result):
        out = result.packet
        if out is None or UDP not in out:
            return "the output has no UDP header"
        udp = out[UDP]
        if udp.dport != dport:
            return f"its destination port is {udp.dport}, not {dport}"
        if checksum != "right":
            return None if udp.chksum == checksum else \
                f"its UDP checksum is {udp.chksum:#06x}; it should be {checksum:#06x}"
        fresh = out.copy()
        del fresh[UDP].chksum                 # scapy computes it again when the packet is built
        want = fresh.__class__(bytes(fresh))[UDP].chksum
        return None if udp.chksum == want else \
            f"its UDP checksum is {udp.chksum:#06x}; it should be {want:#06x}"
    return look


def unchanged(result):
    """A check of the output packet: it left exactly as it came in."""
    if result.output_bytes == result.input_bytes:
        return None
    fields = ", ".join(f"{c.layer}.{c.field}" if c.field else f"a {c.layer} layer" for c in result.diff)
    return f"your program changed it ({fields or 'its bytes'}); it should leave it as it is"


def carry(value):
    """UDP over IPv4 to port 7000 whose checksum is `value` (two bytes of its data chosen so)."""
    return sampling.with_checksum(eth / IP(src=C, dst=S) / UDP(sport=40000, dport=7000) / b"carry?",
                                  UDP, value)


CASES = [
    verdict(f"UDP to port 7000 from {C}", eth / IP(src=C, dst=S) / UDP(sport=40000, dport=7000) / b"hello",
            "pass", check=rewritten(7001)),
    verdict(f"UDP to port 7000 from {C6}", eth / IPv6(src=C6, dst=S6) / UDP(sport=40000, dport=7000) / b"hello",
            "pass", check=rewritten(7001)),
    verdict(f"UDP to port 7002 from {C}", eth / IP(src=C, dst=S) / UDP(dport=7002), "pass", check=rewritten(7002)),
    # cases the notebook does not show
    verdict(f"UDP to port 7000 from {C} without a checksum (0)",
            eth / IP(src=C, dst=S) / UDP(dport=7000, chksum=0) / b"x", "pass",
            check=rewritten(7001, checksum=0), hidden=True, about="UDP over IPv4 without a checksum"),
    verdict(f"UDP to port 7000 from {C} whose new checksum is 0xffff",
            eth / IP(src=C, dst=S) / UDP(sport=0xfffe, dport=7000, chksum=0x0001) / b"", "pass",
            check=rewritten(7001, checksum=0xffff), hidden=True,   # 0 means "none": sent as 0xffff
            about="a datagram whose new checksum comes out as zero"),
    *[verdict(f"UDP to port 7000 from {C} with checksum {value:#06x}", carry(value), "pass",
              check=rewritten(7001), hidden=True, about="a UDP checksum near 0x0000 or 0xffff")
      for value in (0xff00, 0xfeff, 0xfffe, 0xffff, 0x0100, 0x0002)],
    verdict(f"UDP to port 7000 from {C} in VLAN 10",
            eth / Dot1Q(vlan=10) / IP(src=C, dst=S) / UDP(sport=40000, dport=7000) / b"tagged", "pass",
            check=rewritten(7001), hidden=True, about="a frame with a VLAN tag"),
    verdict(f"UDP to port 7000 from {C6} in QinQ (VLAN 20 inside 100)",
            eth / Dot1AD(vlan=100) / Dot1Q(vlan=20) / IPv6(src=C6, dst=S6) / UDP(sport=40000, dport=7000)
            / b"tagged twice", "pass", check=rewritten(7001), hidden=True,
            about="a frame with two VLAN tags (QinQ)"),
    verdict(f"UDP to port 7000 from {C6} behind hop-by-hop and destination options headers",
            eth / IPv6(src=C6, dst=S6) / IPv6ExtHdrHopByHop()
            / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00" * 12)]) / UDP(sport=40000, dport=7000)
            / b"chained", "pass", check=rewritten(7001), hidden=True,
            about="IPv6 with a chain of two extension headers"),
    verdict(f"A later fragment of a UDP datagram from {C}, whose data starts with the bytes "
            "9c 40 1b 58 (40000, 7000 if read as ports)",
            eth / IP(src=C, dst=S, proto=17, frag=100) / Raw(struct.pack("!HHHH", 40000, 7000, 16, 0x1234)
                                                            + b"x" * 24),
            "pass", check=unchanged, hidden=True, about="a later IPv4 fragment (one with no UDP header)"),
    verdict(f"TCP to port 7000 from {C}", eth / IP(src=C, dst=S) / TCP(dport=7000), "pass",
            check=unchanged, hidden=True, about="TCP to the port that is rewritten for UDP"),
]


def draw(rng):
    """A random frame: (what, packet, check of the output, kind)."""
    v6 = rng.random() < 0.4
    proto = "UDP" if rng.random() < 0.85 else "TCP"
    sport, dport = sampling.port(rng), rng.choice((7000, 7000, 7001, sampling.port(rng, avoid=(7000,))))
    tags, in_vlan = sampling.vlans(rng)
    later, zero = False, False
    if v6:
        chain, extra = sampling.ipv6_chain(rng)
        ip = [IPv6(src=sampling.ipv6(rng), dst=S6)] + chain
    else:
        options, extra = sampling.ipv4_options(rng) if rng.random() < 0.3 else (b"", "")
        later = rng.random() < 0.15
        ip = IP(src=sampling.ipv4(rng), dst=S, options=options, proto={"UDP": 17, "TCP": 6}[proto],
                frag=rng.randrange(1, 8000) if later else 0)
    data = sampling.payload(rng, least=2)
    l4 = UDP(sport=sport, dport=dport) if proto == "UDP" else TCP(sport=sport, dport=dport)
    if later:
        l4 = Raw(struct.pack("!HHHH", sport, dport, 8 + len(data), rng.randrange(1 << 16)))
    packet = sampling.stack(Ether(src=sampling.mac(rng), dst=eth.dst), tags, ip, l4, Raw(data))
    how = ""
    if proto == "UDP" and not later:
        pick = rng.random()
        if not v6 and pick < 0.1:
            packet[UDP].chksum, zero, how = 0, True, " without a checksum (0)"
        elif pick < 0.7:
            packet = sampling.with_checksum(packet, UDP, sampling.near_carry(rng, low=1))
            how = f" with checksum {packet[UDP].chksum:#06x}"
    family = "IPv6" if v6 else "IPv4"
    frag = ", a later fragment (its data only looks like ports)" if later else ""
    what = f"{proto} over {family} port {sport} to port {dport}{how}{in_vlan}{extra}{frag}"
    kind = f"{proto} over {family}{' without a checksum' if zero else ''}{in_vlan}{extra}{frag}"
    if proto == "UDP" and dport == 7000 and not later:
        return what, packet, rewritten(7001, checksum=0 if zero else "right"), kind
    return what, packet, unchanged, kind


@case("40 random frames: UDP (to port 7000 and others, checksums near 0x0000 and 0xffff) and TCP, "
      "over IPv4 and IPv6, with VLAN tags, options, extension headers and fragments", hidden=True,
      about="random UDP and TCP with VLAN tags, extension headers, fragments and edge checksums")
def random_frames(t):
    for i in range(40):
        what, packet, look, kind = draw(t.rng)
        t.expect(f"{what} (random frame {i + 1} of 40)", packet, "pass", check=look, about=kind)
    return ("40 random frames (UDP to port 7000 with checksums near 0x0000 and 0xffff, other "
            "ports, TCP, fragments, VLAN tags and extension headers) came out right")


@case("datagrams the client sends to port 7000 reach an application on port 7001")
def traffic(t):
    sink = t.listen(t.server, 7001)
    t.client.send(IP(dst=t.server.ip) / UDP(sport=40000, dport=7000) / b"over IPv4", count=5)
    t.client.send(IPv6(dst=t.server.ip6) / UDP(sport=40000, dport=7000) / b"over IPv6", count=5)
    got = sink.receive(10, timeout=0.5)
    v4, v6 = (sum(d.payload == p for d in got) for p in (b"over IPv4", b"over IPv6"))
    if (v4, v6) != (5, 5):
        t.fail(f"of 5 datagrams over IPv4 and 5 over IPv6 to port 7000, {v4} and {v6} reached "
               "port 7001 on the server (a wrong checksum makes the kernel drop them)")
    return "10 datagrams to port 7000 (IPv4 and IPv6) reached the application on port 7001"
