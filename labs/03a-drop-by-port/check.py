"""Lab 03a — drop by protocol and port: UDP to 53 and TCP to 23 dropped, judged on the ports alone
(a first fragment holding 8 bytes of TCP too); what the helpers cannot see behind (a third VLAN tag,
a seventh IPv6 extension header) dropped; later fragments and the rest passed."""
import struct
import time

from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import (ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop, IPv6ExtHdrRouting)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from xdplab import counters, sampling
from xdplab.checks import case, verdict

TITLE = "Drop by protocol and port"
ATTACH = "server"
HINTS = [
    "Look at the destination port only after you know which protocol carries it: UDP and TCP "
    "headers both start with the source port, then the destination port, 2 bytes each. Ports are "
    "in network byte order: compare with bpf_htons(53), not with 53.",
    "After parse_iphdr() (or parse_ip6hdr() and skip_ip6hdrext()) returns IPPROTO_UDP or "
    "IPPROTO_TCP, nh.pos points at the ports: `__be16 *ports = nh.pos;`, then check "
    "`(void *)(ports + 2) > data_end` before reading ports[1]. parse_tcphdr() would ask for the "
    "whole 20-byte TCP header, which a first fragment need not hold.",
    "Behind two VLAN tags parse_ethhdr() returns the ethertype of a third tag (proto_is_vlan() "
    "says so); after six extension headers skip_ip6hdrext() returns IP6_EXT_TOO_LONG. Drop both, "
    "whatever follows. Pass a later fragment (ip_is_later_fragment(); skip_ip6hdrext() returns "
    "IP6_EXT_LATER_FRAGMENT): it holds no ports.",
]

C, S = "10.11.0.1", "10.11.0.2"
C6, S6 = "fd00:11::1", "fd00:11::2"
eth = Ether(src="02:58:4c:00:00:01", dst="02:58:4c:00:00:02")
BLOCKED = {"UDP": 53, "TCP": 23}
NUMBER = {"UDP": 17, "TCP": 6, "ICMP": 1}
TCP_OPTIONS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)]


def l4_bytes(ip, l4):
    """The bytes of `l4` as sent behind `ip` (its checksum computed over ip's addresses)."""
    whole = ip.copy() / l4
    return bytes(whole)[len(bytes(ip.copy())):]


def first_fragment_v4(l4, n, src=C):
    """An IPv4 first fragment holding only the first `n` bytes of `l4` (a UDP or TCP header)."""
    proto = 6 if isinstance(l4, TCP) else 17
    ip = IP(src=src, dst=S, proto=proto, flags="MF", frag=0, id=77)
    return eth / ip / Raw(l4_bytes(IP(src=src, dst=S), l4)[:n])


def first_fragment_v6(l4, n, src=C6):
    proto = 6 if isinstance(l4, TCP) else 17
    return (eth / IPv6(src=src, dst=S6) / IPv6ExtHdrFragment(offset=0, m=1, id=77, nh=proto)
            / Raw(l4_bytes(IPv6(src=src, dst=S6), l4)[:n]))


def tags3(*ids):
    return [Dot1AD(vlan=ids[0]), Dot1Q(vlan=ids[1]), Dot1Q(vlan=ids[2])]


def dest_opts(n):
    return [IPv6ExtHdrDestOpt() for _ in range(n)]


syn23 = TCP(sport=40000, dport=23, flags="S", seq=1000)
syn80 = TCP(sport=40000, dport=80, flags="S", seq=1000)

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
    verdict(f"UDP to port 5353 from {C} in VLAN 10", eth / Dot1Q(vlan=10) / IP(src=C, dst=S) / UDP(dport=5353),
            "pass", hidden=True, about="a frame with a VLAN tag"),
    verdict(f"TCP to port 23 from {C6} in QinQ (VLAN 20 inside 100)",
            eth / Dot1AD(vlan=100) / Dot1Q(vlan=20) / IPv6(src=C6, dst=S6) / TCP(dport=23), "drop",
            hidden=True, about="a frame with two VLAN tags (QinQ)"),
    verdict(f"TCP to port 80 from {C6} in QinQ (VLAN 20 inside 100)",
            eth / Dot1AD(vlan=100) / Dot1Q(vlan=20) / IPv6(src=C6, dst=S6) / TCP(dport=80), "pass",
            hidden=True, about="a frame with two VLAN tags (QinQ)"),
    verdict(f"The first fragment of a UDP datagram to port 53 from {C}",
            eth / IP(src=C, dst=S, flags="MF", frag=0) / UDP(sport=40000, dport=53, len=1008)
            / (b"q" * 1000), "drop", hidden=True, about="the first fragment of an IPv4 datagram"),
    verdict(f"A later fragment of a UDP datagram from {C}, whose data starts with the bytes "
            "00 35 00 35 (53, 53 if read as ports)",
            eth / IP(src=C, dst=S, proto=17, frag=125) / Raw(struct.pack("!HHHH", 53, 53, 8, 0) + b"x" * 24),
            "pass", hidden=True, about="a later IPv4 fragment (one with no UDP header)"),
    verdict(f"A later fragment of a TCP segment from {C6}, whose data starts with the bytes "
            "00 17 00 17 (23, 23 if read as ports)",
            eth / IPv6(src=C6, dst=S6) / IPv6ExtHdrFragment(offset=185, m=1, id=8, nh=6)
            / Raw(struct.pack("!HHI", 23, 23, 0) + b"x" * 24),
            "pass", hidden=True, about="a later IPv6 fragment (one with no TCP header)"),
    # RFC 1858's tiny fragment: the ports are there, the rest of the TCP header comes later
    verdict(f"The first fragment of a TCP SYN to port 23 from {C}, holding only the first 8 bytes "
            "of its TCP header (ports and sequence number)",
            first_fragment_v4(syn23, 8), "drop", hidden=True,
            about="an IPv4 first fragment holding 8 bytes of a TCP header"),
    verdict(f"The first fragment of a TCP SYN to port 23 from {C6}, holding only the first 8 bytes "
            "of its TCP header (ports and sequence number)",
            first_fragment_v6(syn23, 8), "drop", hidden=True,
            about="an IPv6 first fragment holding 8 bytes of a TCP header"),
    verdict(f"The first fragment of a TCP SYN to port 23 from {C}, holding 24 bytes of its 40-byte "
            "TCP header (the options go on in the next fragment)",
            first_fragment_v4(TCP(sport=40000, dport=23, flags="S", options=TCP_OPTIONS), 24), "drop",
            hidden=True, about="an IPv4 first fragment holding part of a TCP header's options"),
    verdict(f"The first fragment of a TCP SYN to port 80 from {C}, holding only the first 8 bytes "
            "of its TCP header", first_fragment_v4(syn80, 8), "pass", hidden=True,
            about="an IPv4 first fragment holding 8 bytes of a TCP header"),
    verdict(f"The first fragment of a UDP datagram to port 53 from {C6}, holding only its 8-byte "
            "UDP header", first_fragment_v6(UDP(sport=40000, dport=53) / (b"q" * 1000), 8), "drop",
            hidden=True, about="an IPv6 first fragment holding only a UDP header"),
    # deeper than the helpers look: dropped whatever follows (the kernel would deliver it)
    verdict(f"UDP to port 53 from {C} behind three priority tags (VLAN 0, 0, 0)",
            eth / Dot1Q(vlan=0) / Dot1Q(vlan=0) / Dot1Q(vlan=0) / IP(src=C, dst=S) / UDP(dport=53),
            "drop", hidden=True, about="a frame with three VLAN tags"),
    verdict(f"UDP to port 5353 from {C} behind three VLAN tags (30 inside 20 inside 10)",
            sampling.stack(eth, tags3(10, 20, 30), IP(src=C, dst=S), UDP(dport=5353)), "drop", hidden=True,
            about="a frame with three VLAN tags"),
    verdict(f"UDP to port 53 from {C6} behind seven destination-options headers",
            sampling.stack(eth, IPv6(src=C6, dst=S6), dest_opts(7), UDP(dport=53)), "drop",
            hidden=True, about="IPv6 with seven extension headers"),
    verdict(f"TCP to port 80 from {C6} behind seven destination-options headers",
            sampling.stack(eth, IPv6(src=C6, dst=S6), dest_opts(7), TCP(dport=80)), "drop",
            hidden=True, about="IPv6 with seven extension headers"),
    verdict(f"TCP to port 80 from {C6} behind six destination-options headers",
            sampling.stack(eth, IPv6(src=C6, dst=S6), dest_opts(6), TCP(dport=80)), "pass",
            hidden=True, about="IPv6 with six extension headers"),
    verdict(f"UDP to port 53 from {C6} behind six destination-options headers",
            sampling.stack(eth, IPv6(src=C6, dst=S6), dest_opts(6), UDP(dport=53)), "drop",
            hidden=True, about="IPv6 with six extension headers"),
    verdict("An ARP request", eth / ARP(psrc=C, pdst=S), "pass", hidden=True, about="ARP"),
    verdict("A 20-byte frame cut in the middle of its IPv4 header",
            Ether(bytes(eth / IP(src=C, dst=S) / UDP(dport=53))[:20]), "pass", hidden=True,
            about="a frame that ends inside its IPv4 header"),
]


def three_tags(rng):
    """(layers, words): three VLAN tags, one more than parse_ethhdr() looks through; sometimes
    three priority tags (VLAN 0), which the kernel strips one after the other."""
    if rng.random() < 0.3:
        return [Dot1Q(vlan=0) for _ in range(3)], " behind three priority tags (VLAN 0)"
    ids = [rng.randrange(1, 4095) for _ in range(3)]
    return tags3(*ids), f" behind three VLAN tags ({ids[2]} inside {ids[1]} inside {ids[0]})"


def draw(rng):
    """A random packet: (what, packet, verdict, kind). Kind names the packet's shape without its
    ports, which decide the answer."""
    v6 = rng.random() < 0.4
    proto = rng.choice(("UDP", "UDP", "TCP", "TCP", "ICMP"))
    src, dst = (sampling.ipv6(rng), S6) if v6 else (sampling.ipv4(rng), S)
    sport = sampling.port(rng)
    dport = rng.choice((BLOCKED.get(proto, 53), sampling.port(rng, avoid=(23, 53)),
                        BLOCKED["TCP" if proto == "UDP" else "UDP"]))
    tags, in_vlan = three_tags(rng) if rng.random() < 0.1 else sampling.vlans(rng)
    deep = len(tags) > 2
    kinds = ("whole",) * 3 + ("first", "tiny", "later") if proto != "ICMP" else ("whole",)
    fragment = rng.choice(kinds)
    data = sampling.payload(rng)
    if proto == "ICMP":
        ids = {"id": rng.randrange(1 << 16), "seq": rng.randrange(1 << 16)}
        l4 = ICMPv6EchoRequest(**ids) if v6 else ICMP(**ids)
    elif proto == "UDP":
        l4 = UDP(sport=sport, dport=dport)
    else:
        l4 = TCP(sport=sport, dport=dport, flags="S", seq=rng.randrange(1 << 32),
                 options=TCP_OPTIONS if rng.random() < 0.4 else [])
    bare = IPv6(src=src, dst=dst) if v6 else IP(src=src, dst=dst)
    header = l4_bytes(bare, l4 / Raw(data))
    size = len(header) - len(data)            # the UDP, TCP (options included) or ICMP header
    if fragment == "tiny":        # fewer bytes than the header, the ports among them (8 at least)
        held = 8 if proto == "UDP" else rng.choice(range(8, size, 8))
        l4, data = Raw(header[:held]), b""
    elif fragment == "later":     # a later fragment: the bytes look like a header
        l4, data = Raw(struct.pack("!HH", sport, dport) + bytes(rng.randrange(256) for _ in range(4))), b""
    ident = rng.randrange(1 << 16)
    extra = ""
    if v6:
        r = rng.random()
        count = rng.randrange(7, 10) if r < 0.12 else rng.randrange(4, 7) if r < 0.25 else None
        if count is not None and count < 7 and fragment != "whole":
            count = min(count, 5)             # room for the fragment header: six at most
        if count is not None and count >= 7:
            deep = True
        chain, extra = sampling.ipv6_chain(rng, count, fragment=fragment == "whole")
        ip = [IPv6(src=src, dst=dst)] + chain          # scapy fills in each next-header field
        if fragment != "whole":
            later = fragment == "later"
            ip.append(IPv6ExtHdrFragment(offset=rng.randrange(1, 8000) if later else 0,
                                         m=rng.choice((0, 1)) if later else 1, id=ident,
                                         nh=NUMBER[proto]))
    else:
        options, extra = sampling.ipv4_options(rng) if rng.random() < 0.3 else (b"", "")
        ip = IP(src=src, dst=dst, options=options, proto=NUMBER[proto], id=ident,
                flags="MF" if fragment in ("first", "tiny") else 0,
                frag=rng.randrange(1, 8000) if fragment == "later" else 0)
    packet = sampling.stack(Ether(src=sampling.mac(rng), dst=eth.dst), tags, ip, l4,
                            Raw(data) if data else None)
    if deep:
        drop = True
    else:
        drop = BLOCKED.get(proto) == dport and fragment != "later"
    family = "IPv6" if v6 else "IPv4"
    held = len(bytes(l4)) if fragment == "tiny" else 0
    of = "its UDP header and nothing more" if proto == "UDP" else \
        f"{held} bytes of its {size}-byte TCP header"
    where = {"whole": "", "first": ", the first fragment of a datagram",
             "tiny": f", the first fragment of a datagram, holding {of}",
             "later": ", a later fragment (its data only looks like ports)"}[fragment]
    if v6 and fragment != "whole":
        where = ", then a fragment header" + where
    to = f" port {sport} to port {dport}" if proto != "ICMP" else " (an echo request)"
    what = f"{proto} over {family} from {src}{to}{in_vlan}{extra}{where}"
    kind = f"{proto} over {family}{in_vlan}{extra}{where}" if proto != "ICMP" else \
        f"ICMP over {family}{in_vlan}{extra}"
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


def _reassembled(t, dport, ident, wait):
    """Send a TCP SYN to `dport` from the client in fragments of 8 bytes (the first holds the ports
    and the sequence number, not a whole TCP header); the server's counters that moved while the
    kernel put it together (or for `wait` seconds, if it does not)."""
    syn = IP(src=t.client.ip, dst=t.server.ip, id=ident) / TCP(sport=40000, dport=dport, flags="S",
                                                               seq=t.rng.randrange(1 << 32))
    before = counters.snmp(t.server)
    t.client.send(fragment(syn, fragsize=8))
    deadline = time.monotonic() + wait
    while True:
        seen = counters.snmp(t.server) - before
        if seen.get("TcpOutRsts", 0) or time.monotonic() > deadline:
            return seen
        time.sleep(0.02)


@case("A TCP SYN to port 23 sent by the client in fragments of 8 bytes never reaches the server's "
      "TCP; one to port 80 is put together and answered")
def tiny_fragments(t):
    ident = t.rng.randrange(1 << 16)
    seen = _reassembled(t, 80, ident, wait=2)
    if not seen.get("IpReasmOKs", 0) or not seen.get("TcpOutRsts", 0):
        t.fail("a TCP SYN to port 80 sent in fragments of 8 bytes was not put together and answered "
               "by the server's kernel: a fragment of it was dropped (only TCP to port 23 should be)")
    seen = _reassembled(t, 23, (ident + 1) & 0xffff, wait=0.5)
    if seen.get("IpReasmOKs", 0) or seen.get("TcpInSegs", 0):
        t.fail("a TCP SYN to port 23 sent in fragments of 8 bytes was put together by the server's "
               "kernel and reached its TCP: the first fragment, which holds the ports, got through")
    return ("a TCP SYN to port 23 sent in fragments of 8 bytes never reached the server's TCP; one "
            "to port 80 was put together and answered with a reset")


@case("ping between client and server still works")
def ping(t):
    got = t.client.ping(t.server, count=2, interval=0.2).received
    assert got == 2, f"{2 - got} of 2 pings from the client got no answer; ping should pass"
    return "the client's 2 pings were answered"
