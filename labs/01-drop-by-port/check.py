"""Lab 01 — drop by protocol and port: UDP to 53 and TCP to 23 dropped, the rest passed."""
import struct

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop, IPv6ExtHdrRouting)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from xdplab import sampling
from xdplab.checks import case, verdict

TITLE = "Drop by protocol and port"
ATTACH = "server"
HINTS = [
    "Look at the destination port only after you know which protocol carries it: UDP and TCP "
    "headers both start with the source port, then the destination port.",
    "After parse_iphdr() (or parse_ip6hdr() and skip_ip6hdrext()) returns IPPROTO_UDP, "
    "parse_udphdr() gives you struct udphdr *; the same goes for TCP with parse_tcphdr().",
    "Ports are in network byte order: compare udph->dest with bpf_htons(53), not with 53. "
    "Handle IPv6 in an `else if (proto == bpf_htons(ETH_P_IPV6))` branch that ends at the same "
    "port checks.",
]

C, S = "10.11.0.1", "10.11.0.2"
C6, S6 = "fd00:11::1", "fd00:11::2"
eth = Ether(src="02:58:4c:00:00:01", dst="02:58:4c:00:00:02")

CASES = [
    verdict(f"UDP to port 53 from {C}", eth / IP(src=C, dst=S) / UDP(sport=40000, dport=53), "drop"),
    verdict(f"TCP to port 23 from {C}", eth / IP(src=C, dst=S) / TCP(sport=40000, dport=23), "drop"),
    verdict(f"UDP to port 5353 from {C}", eth / IP(src=C, dst=S) / UDP(sport=40000, dport=5353), "pass"),
    verdict(f"TCP to port 80 from {C}", eth / IP(src=C, dst=S) / TCP(sport=40000, dport=80), "pass"),
    verdict(f"UDP to port 53 from {C6}", eth / IPv6(src=C6, dst=S6) / UDP(dport=53), "drop"),
    verdict(f"TCP to port 23 from {C6}", eth / IPv6(src=C6, dst=S6) / TCP(dport=23), "drop"),
    verdict(f"A ping from {C}", eth / IP(src=C, dst=S) / ICMP(), "pass"),
    # cases the notebook does not show
    verdict(f"UDP from port 53 to port 40000 (a DNS answer) from {C}",
            eth / IP(src=C, dst=S) / UDP(sport=53, dport=40000), "pass", hidden=True,
            about="a DNS answer (UDP from port 53)"),
    verdict(f"TCP to port 53 from {C}", eth / IP(src=C, dst=S) / TCP(dport=53), "pass", hidden=True,
            about="TCP to the port that is blocked for UDP"),
    verdict(f"UDP to port 23 from {C}", eth / IP(src=C, dst=S) / UDP(dport=23), "pass", hidden=True,
            about="UDP to the port that is blocked for TCP"),
    verdict(f"UDP to port 53 from {C} behind an IPv4 header with options",
            eth / IP(src=C, dst=S, options=b"\x01\x01\x01\x00") / UDP(dport=53), "drop", hidden=True,
            about="an IPv4 header with options (longer than 20 bytes)"),
    verdict(f"UDP to port 53 from {C6} behind an IPv6 destination-options header",
            eth / IPv6(src=C6, dst=S6) / IPv6ExtHdrDestOpt() / UDP(dport=53), "drop", hidden=True,
            about="IPv6 with an extension header"),
    verdict(f"UDP to port 53 from {C6} behind hop-by-hop, routing and destination-options headers",
            eth / IPv6(src=C6, dst=S6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting()
            / IPv6ExtHdrDestOpt() / UDP(dport=53), "drop", hidden=True,
            about="IPv6 with a chain of several extension headers"),
    verdict(f"TCP to port 23 from {C6} behind a fragment header (the first fragment)",
            eth / IPv6(src=C6, dst=S6) / IPv6ExtHdrFragment(offset=0, m=1, id=7) / TCP(dport=23),
            "drop", hidden=True, about="the first fragment of an IPv6 packet"),
    verdict(f"UDP to port 53 from {C} in VLAN 10", eth / Dot1Q(vlan=10) / IP(src=C, dst=S) / UDP(dport=53),
            "drop", hidden=True, about="a frame with a VLAN tag"),
    verdict(f"TCP to port 23 from {C6} in QinQ (VLAN 20 inside 100)",
            eth / Dot1AD(vlan=100) / Dot1Q(vlan=20) / IPv6(src=C6, dst=S6) / TCP(dport=23), "drop",
            hidden=True, about="a frame with two VLAN tags (QinQ)"),
    verdict(f"The first fragment of a UDP datagram to port 53 from {C}",
            eth / IP(src=C, dst=S, flags="MF", frag=0) / UDP(sport=40000, dport=53, len=1008)
            / (b"q" * 1000), "drop", hidden=True, about="the first fragment of an IPv4 datagram"),
    verdict(f"A later fragment of a UDP datagram from {C}, whose data starts with the bytes "
            "00 35 00 35 (53, 53 if read as ports)",
            eth / IP(src=C, dst=S, proto=17, frag=125) / Raw(struct.pack("!HHHH", 53, 53, 8, 0) + b"x" * 24),
            "pass", hidden=True, about="a later IPv4 fragment (one with no UDP header)"),
    verdict("An ARP request", eth / ARP(psrc=C, pdst=S), "pass", hidden=True, about="ARP"),
    verdict("A 20-byte frame cut in the middle of its IPv4 header",
            Ether(bytes(eth / IP(src=C, dst=S) / UDP(dport=53))[:20]), "pass", hidden=True,
            about="a frame that ends inside its IPv4 header"),
]


BLOCKED = {"UDP": 53, "TCP": 23}


def draw(rng):
    """A random packet: (what, packet, verdict, kind). Kind names the packet's shape without its
    ports, which decide the answer."""
    v6 = rng.random() < 0.4
    proto = rng.choice(("UDP", "UDP", "TCP", "TCP", "ICMP"))
    src, dst = (sampling.ipv6(rng), sampling.ipv6(rng)) if v6 else (sampling.ipv4(rng), S)
    sport = sampling.port(rng)
    dport = rng.choice((BLOCKED.get(proto, 53), sampling.port(rng, avoid=(23, 53)),
                        BLOCKED["TCP" if proto == "UDP" else "UDP"]))
    tags, in_vlan = sampling.vlans(rng)
    extra, ip, fragment = "", None, "whole"
    if v6:
        chain, extra = sampling.ipv6_chain(rng)
        ip = [IPv6(src=src, dst=dst)] + chain          # scapy fills in each next-header field
    else:
        options, extra = sampling.ipv4_options(rng) if rng.random() < 0.3 else (b"", "")
        fragment = rng.choice(("whole", "whole", "whole", "first", "later"))
        ip = IP(src=src, dst=dst, options=options, proto={"UDP": 17, "TCP": 6, "ICMP": 1}[proto],
                flags="MF" if fragment == "first" else 0,
                frag=rng.randrange(1, 8000) if fragment == "later" else 0)
    data = sampling.payload(rng)
    if proto == "ICMP":
        ids = {"id": rng.randrange(1 << 16), "seq": rng.randrange(1 << 16)}
        l4 = ICMPv6EchoRequest(**ids) if v6 else ICMP(**ids)
    elif proto == "UDP":
        l4 = UDP(sport=sport, dport=dport)
    else:
        l4 = TCP(sport=sport, dport=dport, flags="S", seq=rng.randrange(1 << 32))
    if fragment == "later":                   # a later fragment: the bytes look like a header
        l4 = Raw(struct.pack("!HH", sport, dport) + bytes(rng.randrange(256) for _ in range(4)))
    packet = sampling.stack(Ether(src=sampling.mac(rng), dst=eth.dst), tags, ip, l4, Raw(data))
    drop = BLOCKED.get(proto) == dport and fragment != "later"
    family = "IPv6" if v6 else "IPv4"
    where = {"whole": "", "first": ", the first fragment of a datagram",
             "later": ", a later fragment (its data only looks like ports)"}[fragment]
    to = f" port {sport} to port {dport}" if proto != "ICMP" else " (an echo request)"
    what = f"{proto} over {family} from {src}{to}{in_vlan}{extra}{where}"
    kind = f"{proto} over {family}{in_vlan}{extra}{where}" if proto != "ICMP" else f"ICMP over {family}"
    return what, packet, "drop" if drop else "pass", kind


@case("40 random packets: UDP, TCP and ICMP over IPv4 and IPv6, with VLAN tags, IPv4 options, "
      "IPv6 extension headers and fragments", hidden=True,
      about="random packets with VLAN tags, options, extension headers and fragments")
def random_packets(t):
    for i in range(40):
        what, packet, expect, kind = draw(t.rng)
        t.expect(f"{what} (random packet {i + 1} of 40)", packet, expect, about=kind)
    return ("40 random packets (UDP, TCP and ICMP over IPv4 and IPv6, with VLAN tags, options, "
            "extension headers and fragments) got the right verdict")


@case("DNS queries sent by the client never reach the server, other UDP does")
def traffic(t):
    dns, other = t.listen(t.server, 53), t.listen(t.server, 5353)
    t.client.send(IP(dst=t.server.ip) / UDP(sport=40000, dport=53) / b"query", count=20)
    t.client.send(IP(dst=t.server.ip) / UDP(sport=40000, dport=5353) / b"other", count=20)
    got_dns, got_other = len(dns.receive(timeout=0.3)), len(other.receive(20, timeout=0.5))
    if got_dns:
        t.fail(f"{got_dns} of 20 DNS queries from the client reached the server; none should")
    if got_other != 20:
        t.fail(f"only {got_other} of 20 UDP datagrams to port 5353 reached the server; all should")
    return "20 DNS queries from the client were dropped, 20 datagrams to port 5353 arrived"


@case("ping between client and server still works")
def ping(t):
    got = t.client.ping(t.server, count=2, interval=0.2).received
    assert got == 2, f"{2 - got} of 2 pings from the client got no answer; ping should pass"
    return "the client's 2 pings were answered"
