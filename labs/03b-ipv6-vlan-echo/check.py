"""Lab 03b — IPv6 and VLAN: ICMPv6 echo requests with odd sequence numbers dropped, tagged or not."""
from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import (ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NA,
                                ICMPv6ND_NS, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop, PadN)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from xdplab import sampling
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
            echo(5, Dot1AD(vlan=100), Dot1Q(vlan=20)), "drop", hidden=True,
            about="a frame with two VLAN tags (QinQ)"),
    verdict("An ICMPv6 echo request with sequence number 6 in QinQ (VLAN 20 inside 100)",
            echo(6, Dot1AD(vlan=100), Dot1Q(vlan=20)), "pass", hidden=True,
            about="a frame with two VLAN tags (QinQ)"),
    verdict("An ICMPv6 echo request with sequence number 257 (0x0101)", echo(257), "drop", hidden=True,
            about="a sequence number above 255"),
    verdict("An ICMPv6 echo request with sequence number 256 (0x0100)", echo(256), "pass", hidden=True,
            about="a sequence number above 255"),
    verdict("An ICMPv6 echo request with sequence number 7 behind a hop-by-hop options header",
            eth / ip6 / IPv6ExtHdrHopByHop() / ICMPv6EchoRequest(seq=7), "drop", hidden=True,
            about="IPv6 with an extension header"),
    verdict("An ICMPv6 echo request with sequence number 9 behind a destination options header in VLAN 10",
            eth / Dot1Q(vlan=10) / ip6 / IPv6ExtHdrDestOpt() / ICMPv6EchoRequest(seq=9), "drop", hidden=True,
            about="IPv6 with an extension header, in a VLAN-tagged frame"),
    verdict("An ICMPv6 echo request with sequence number 11 behind a 24-byte destination options header",
            eth / ip6 / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00" * 20)]) / ICMPv6EchoRequest(seq=11),
            "drop", hidden=True, about="an IPv6 extension header longer than 8 bytes"),
    verdict("An ICMPv6 echo request with sequence number 13 behind hop-by-hop options and "
            "destination options headers",
            eth / ip6 / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / ICMPv6EchoRequest(seq=13),
            "drop", hidden=True, about="IPv6 with a chain of two extension headers"),
    verdict("An ICMPv6 echo request with sequence number 19 behind a 24-byte AH header (whose length "
            "field counts 4-byte units: it says 4)",
            eth / ip6 / IPv6ExtHdrDestOpt() / AH(nh=58, payloadlen=4, spi=0x100, seq=1, icv=bytes(12))
            / ICMPv6EchoRequest(seq=19, data=b"x" * 64), "drop", hidden=True,
            about="IPv6 with an authentication header (AH)"),
    verdict("The first fragment of an ICMPv6 echo request with sequence number 15",
            eth / ip6 / IPv6ExtHdrFragment(offset=0, m=1, id=1) / ICMPv6EchoRequest(seq=15, data=b"x" * 64),
            "drop", hidden=True, about="the first fragment of an IPv6 packet"),
    verdict("A later fragment of a big ping with sequence number 16, whose data happens to look like an "
            "echo request with sequence number 17",
            eth / ip6 / IPv6ExtHdrFragment(offset=150, m=0, id=2, nh=58)
            / Raw(bytes(ICMPv6EchoRequest(id=7, seq=17, cksum=0)) + b"x" * 32),
            "pass", hidden=True, about="a later fragment of an IPv6 packet (one with no ICMPv6 header)"),
    verdict("A neighbour solicitation", eth / ip6 / ICMPv6ND_NS(tgt=S6), "pass", hidden=True,
            about="ICMPv6 that is not an echo request"),
    verdict("A frame cut 4 bytes into its ICMPv6 header",
            Ether(bytes(echo(1))[:14 + 40 + 4]), "pass", hidden=True,
            about="a frame that ends inside its ICMPv6 header"),
]


OTHER = [("an echo reply", lambda seq, ident: ICMPv6EchoReply(id=ident, seq=seq)),
         ("a destination-unreachable message", lambda seq, ident: ICMPv6DestUnreach()),
         ("a neighbour advertisement", lambda seq, ident: ICMPv6ND_NA(tgt=S6))]


def draw(rng):
    """A random frame: (what, packet, verdict, kind); the kind leaves out the sequence number."""
    seq, ident = rng.randrange(1 << 16), rng.randrange(1 << 16)
    tags, in_vlan = sampling.vlans(rng)
    if rng.random() < 0.15:                   # IPv4 ping: passed, odd or not
        packet = sampling.stack(Ether(src=sampling.mac(rng), dst=eth.dst), tags,
                                IP(src=sampling.ipv4(rng), dst="10.11.0.2"), ICMP(seq=seq, id=ident),
                                Raw(sampling.payload(rng)))
        return (f"An IPv4 ping with sequence number {seq}{in_vlan}", packet, "pass",
                f"an IPv4 ping{in_vlan}")
    chain, extra = sampling.ipv6_chain(rng)
    if rng.random() < 0.2:                    # AH last (RFC 8200's order), its length in 4-byte units
        icv = rng.choice((12, 20, 28))        # 24, 32 or 40 bytes in all: IPv6 wants 8-byte multiples
        chain = chain + [AH(nh=58, payloadlen=(12 + icv) // 4 - 2, spi=rng.randrange(256, 1 << 32),
                            seq=rng.randrange(1 << 32), icv=bytes(rng.randrange(256) for _ in range(icv)))]
        extra += f"{', then' if extra else ' behind'} an AH header of {12 + icv} bytes"
    name, make = ("an echo request", lambda s, i: ICMPv6EchoRequest(id=i, seq=s, data=sampling.payload(rng))) \
        if rng.random() < 0.7 else rng.choice(OTHER)
    packet = sampling.stack(Ether(src=sampling.mac(rng), dst=eth.dst), tags,
                            IPv6(src=sampling.ipv6(rng), dst=S6), chain, make(seq, ident))
    drop = name == "an echo request" and seq % 2
    what = f"{name[0].upper()}{name[1:]} (ICMPv6) with sequence number {seq}{in_vlan}{extra}" \
        if name in ("an echo request", "an echo reply") else f"{name[0].upper()}{name[1:]}{in_vlan}{extra}"
    return what, packet, "drop" if drop else "pass", f"{name} over IPv6{in_vlan}{extra}"


@case("40 random frames: ICMPv6 echo requests and other ICMP with random sequence numbers, VLAN "
      "tags and IPv6 extension-header chains", hidden=True,
      about="random ICMPv6 with VLAN tags and extension-header chains")
def random_frames(t):
    for i in range(40):
        what, packet, expect, kind = draw(t.rng)
        t.expect(f"{what} (random frame {i + 1} of 40)", packet, expect, about=kind)
    return ("40 random frames (echo requests with odd and even sequence numbers, other ICMPv6 and "
            "IPv4 pings, with VLAN tags and extension-header chains) got the right verdict")


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
