"""Lab 03 — IPv6 and VLAN: ICMPv6 echo requests with odd sequence numbers dropped, tagged or not."""
from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import (ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NS, IPv6,
                                IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop)
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether

from xdplab.checks import case, verdict

TITLE = "IPv6 and VLAN: drop every other ICMPv6 echo"
ATTACH = "server"
HINTS = [
    "A VLAN tag sits between the MAC addresses and the ethertype: with a tag, eth->h_proto is "
    "0x8100 (or 0x88a8 for the outer tag of QinQ), and the real ethertype comes 4 bytes later.",
    "parse_ethhdr() already steps over up to two VLAN tags; after parse_ip6hdr(), "
    "skip_ip6hdrext() steps over extension headers to the upper-layer protocol.",
    "parse_icmp6hdr() returns the ICMPv6 type (ICMPV6_ECHO_REQUEST is 128); the sequence number "
    "is icmp6h->icmp6_sequence, in network byte order: look at bit 0 of bpf_ntohs(...).",
]

C6, S6 = "fd00:11::1", "fd00:11::2"
eth = Ether(src="02:58:4c:00:00:01", dst="02:58:4c:00:00:02")
ip6 = IPv6(src=C6, dst=S6)


def echo(seq, *tags):
    pkt = eth
    for t in tags:
        pkt = pkt / t
    return pkt / ip6 / ICMPv6EchoRequest(id=7, seq=seq)


CASES = [
    verdict("An ICMPv6 echo request with sequence number 1", echo(1), "drop"),
    verdict("An ICMPv6 echo request with sequence number 2", echo(2), "pass"),
    verdict("An ICMPv6 echo request with sequence number 3 in VLAN 10", echo(3, Dot1Q(vlan=10)), "drop"),
    verdict("An ICMPv6 echo request with sequence number 4 in VLAN 10", echo(4, Dot1Q(vlan=10)), "pass"),
    verdict("An ICMPv6 echo reply with sequence number 1", eth / ip6 / ICMPv6EchoReply(seq=1), "pass"),
    verdict("An IPv4 ping with sequence number 1", eth / IP(src="10.11.0.1", dst="10.11.0.2") / ICMP(seq=1), "pass"),
    # cases the notebook does not show
    verdict("An ICMPv6 echo request with sequence number 5 in QinQ (VLAN 20 inside 100)",
            echo(5, Dot1AD(vlan=100), Dot1Q(vlan=20)), "drop", hidden=True),
    verdict("An ICMPv6 echo request with sequence number 6 in QinQ (VLAN 20 inside 100)",
            echo(6, Dot1AD(vlan=100), Dot1Q(vlan=20)), "pass", hidden=True),
    verdict("An ICMPv6 echo request with sequence number 257 (0x0101)", echo(257), "drop", hidden=True),
    verdict("An ICMPv6 echo request with sequence number 256 (0x0100)", echo(256), "pass", hidden=True),
    verdict("An ICMPv6 echo request with sequence number 7 behind a hop-by-hop options header",
            eth / ip6 / IPv6ExtHdrHopByHop() / ICMPv6EchoRequest(seq=7), "drop", hidden=True),
    verdict("An ICMPv6 echo request with sequence number 9 behind a destination options header in VLAN 10",
            eth / Dot1Q(vlan=10) / ip6 / IPv6ExtHdrDestOpt() / ICMPv6EchoRequest(seq=9), "drop", hidden=True),
    verdict("A neighbour solicitation", eth / ip6 / ICMPv6ND_NS(tgt=S6), "pass", hidden=True),
    verdict("A frame cut 4 bytes into its ICMPv6 header",
            Ether(bytes(echo(1))[:14 + 40 + 4]), "pass", hidden=True),
]


@case("4 pings over IPv6 from the client: the 2 with even sequence numbers are answered")
def ping6(t):
    got = t.client.ping(t.server, count=4, interval=0.2, ipv6=True).received
    if got != 2:
        t.fail(f"{got} of 4 IPv6 pings from the client were answered; 2 should be (sequence 2 and 4)")
    return "2 of 4 IPv6 pings from the client were answered: sequence 1 and 3 were dropped"


@case("IPv4 ping still works")
def ping4(t):
    got = t.client.ping(t.server, count=2, interval=0.2).received
    assert got == 2, f"{2 - got} of 2 IPv4 pings from the client got no answer; IPv4 should pass"
    return "the client's 2 IPv4 pings were answered"
