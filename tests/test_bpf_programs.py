"""The programs in bpf/ and bpf/include/parsing_helpers.h: each compiles and passes the verifier,
decides right on crafted packets (BPF_PROG_TEST_RUN), rewrites packets with valid checksums, and the
ICMP echo responder answers real pings on a lab without the server's kernel seeing them."""
import ipaddress
import random
import re
import sys
import time
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR, fragment
from scapy.layers.inet6 import (ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NS, IPv6,
                                IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
                                IPv6ExtHdrRouting, MIP6MH_BRR, PadN)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

import xdplab
from xdplab import counters, sampling
from xdplab.listener import UdpListener


BPF = Path(__file__).resolve().parent.parent / "bpf"
PROGRAMS = sorted(p.name for p in BPF.glob("*.c"))
MAC_C, MAC_S = "02:00:00:00:00:01", "02:00:00:00:00:02"
IP_C, IP_S = "10.11.0.1", "10.11.0.2"
IP6_C, IP6_S = "fd00:11::1", "fd00:11::2"


def eth(*, vlans=()):
    """Ether header from client to server, with VLAN tags (outermost first) if given."""
    pkt = Ether(src=MAC_C, dst=MAC_S)
    for i, vid in enumerate(vlans):
        outer = i == 0 and len(vlans) > 1
        pkt = pkt / (Dot1AD(vlan=vid) if outer else Dot1Q(vlan=vid))
    return pkt


def v4(**kw):
    return IP(**{"src": IP_C, "dst": IP_S, **kw})


def v6(**kw):
    return IPv6(**{"src": IP6_C, "dst": IP6_S, **kw})


def ext_chain(n):
    """Ether/IPv6 with n extension headers: hop-by-hop, then destination options."""
    pkt = eth() / v6() / IPv6ExtHdrHopByHop()
    for _ in range(n - 1):
        pkt = pkt / IPv6ExtHdrDestOpt()
    return pkt


def verdict(prog, pkt):
    return prog.test_run(pkt).verdict


def cut(pkt, n):
    """The first n bytes of pkt: a truncated frame."""
    return bytes(pkt)[:n]


def rebuilt(pkt, *layers):
    """pkt with the checksums of `layers` recomputed by scapy."""
    pkt = pkt.copy()
    for layer in layers:
        for field in ("chksum", "cksum"):
            if field in pkt[layer].fields:
                delattr(pkt[layer], field)
    return Ether(bytes(pkt))


# --- every program ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PROGRAMS)
def test_every_program_compiles_and_passes_the_verifier(lab, name):
    prog = lab.load(name)
    assert prog.functions, "an XDP function: int NAME(struct xdp_md *ctx)"
    assert all(prog.fd(fn) > 0 for fn in prog.functions)     # every one verified and loaded
    first = (BPF / name).read_text().lstrip()
    assert first.startswith(f"/* {name} —"), "each program starts with a comment saying what it teaches"


def test_every_parser_in_one_program_and_vlan_ids(lab):
    """Every parser of parsing_helpers.h in one program through the verifier; the VLAN IDs that
    parse_ethhdr_vlan() collects are right (the program drops QinQ 100/10 and nothing else)."""
    prog = lab.load(EVERY_HELPER)
    assert verdict(prog, eth(vlans=[100, 10]) / v4() / UDP(dport=9)) == "XDP_DROP"
    assert verdict(prog, eth(vlans=[100, 10]) / v6() / TCP()) == "XDP_DROP"
    assert verdict(prog, eth(vlans=[10, 100]) / v4() / UDP(dport=9)) == "XDP_PASS"
    assert verdict(prog, eth(vlans=[100]) / v4() / ICMP()) == "XDP_PASS"
    assert verdict(prog, eth() / v6() / ICMPv6EchoRequest()) == "XDP_PASS"


EVERY_HELPER = r"""
#include "parsing_helpers.h"
int every_helper(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct collect_vlans vlans = {};
	struct ethhdr *eth; struct iphdr *iph; struct ipv6hdr *ip6h; struct icmphdr *icmph;
	struct icmp6hdr *icmp6h; struct udphdr *udph; struct tcphdr *tcph;
	int proto = parse_ethhdr_vlan(&nh, data_end, &eth, &vlans);

	if (proto == bpf_htons(ETH_P_IP)) {
		proto = parse_iphdr(&nh, data_end, &iph);
		if (proto == IPPROTO_ICMP) parse_icmphdr(&nh, data_end, &icmph);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		proto = skip_ip6hdrext(&nh, data_end, parse_ip6hdr(&nh, data_end, &ip6h));
		if (proto == IPPROTO_ICMPV6) parse_icmp6hdr(&nh, data_end, &icmp6h);
	}
	if (proto == IPPROTO_UDP) parse_udphdr(&nh, data_end, &udph);
	if (proto == IPPROTO_TCP) parse_tcphdr(&nh, data_end, &tcph);
	if (vlans.count == 2 && vlans.id[0] == 100 && vlans.id[1] == 10)
		return XDP_DROP;
	return XDP_PASS;
}
"""


# --- skip_ip6hdrext: the IPv6 extension-header chain -----------------------------------------------

WALK = r"""
/* reports in the frame's source MAC what skip_ip6hdrext() returned and where it left the cursor */
#include "parsing_helpers.h"
int walk(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth; struct ipv6hdr *ip6h;
	long offset;
	int proto;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IPV6))
		return XDP_ABORTED;
	proto = skip_ip6hdrext(&nh, data_end, parse_ip6hdr(&nh, data_end, &ip6h));
	offset = (long)nh.pos - (long)data;
	eth->h_source[0] = proto;                 /* a negative reason comes out as 0xff, 0xfe, ... */
	eth->h_source[1] = offset >> 8;
	eth->h_source[2] = offset;
	return XDP_TX;
}
"""


def ext(kind, nh, length):
    """An extension header of IANA type `kind` in the layout RFC 8200 (4.8) asks of new ones:
    next header, length in 8-byte units less the first 8, then zeros to `length` bytes."""
    assert length % 8 == 0 and length >= 8
    return Raw(bytes([nh, length // 8 - 1]) + bytes(length - 2)), kind


def ah(nh, icv):
    """An AH header (RFC 4302) with an ICV of `icv` bytes: its length field counts 4-byte units
    less 2, so a 24-byte AH says 4 (read in 8-byte units, as every other header, it would be 40)."""
    return AH(nh=nh, payloadlen=(12 + icv) // 4 - 2, spi=0x1234, seq=1, icv=bytes(icv)), 51


def chain_of(*headers, upper=17):
    """(frame, offset of the upper-layer header): Ether/IPv6, then one extension header from each
    of `headers` — functions that take the next header's type and return (layer, its own type) —
    then UDP to port 53 (or 8 bytes of protocol `upper`)."""
    layers, offset, nh = [], 0, upper
    for make in reversed(headers):          # each names the one after it: build from the last
        layer, kind = make(nh)
        layers.insert(0, layer)
        offset += len(bytes(layer))
        nh = kind
    pkt = eth() / v6(nh=nh)
    for layer in layers:
        pkt = pkt / layer
    return pkt / (UDP(sport=40000, dport=53) if upper == 17 else Raw(bytes(8))), 14 + 40 + offset


def walked(prog, pkt):
    """(what skip_ip6hdrext returned, where its cursor ended) on frame `pkt`."""
    res = prog.test_run(pkt)
    assert res.verdict == "XDP_TX", res.verdict
    out = res.output_bytes
    return int.from_bytes(out[6:7], "big", signed=True), int.from_bytes(out[7:9], "big")


HOP = lambda nh: (IPv6ExtHdrHopByHop(nh=nh), 0)
HOP24 = lambda nh: (IPv6ExtHdrHopByHop(nh=nh, options=[PadN(optdata=bytes(20))]), 0)
DEST = lambda nh: (IPv6ExtHdrDestOpt(nh=nh), 60)
ROUTING = lambda nh: (IPv6ExtHdrRouting(nh=nh, addresses=[IP6_S, IP6_C], segleft=2), 43)   # 40 bytes
FRAG = lambda nh: (IPv6ExtHdrFragment(nh=nh, offset=0, m=1, id=9), 44)
MOBILITY = lambda nh: (MIP6MH_BRR(nh=nh, len=0), 135)   # 8 bytes
CHAINS = {
    "hop-by-hop, 8 bytes": [HOP],
    "hop-by-hop, 24 bytes": [HOP24],
    "routing with 2 addresses, 40 bytes": [ROUTING],
    "fragment (first), 8 bytes": [FRAG],
    # its second byte is reserved, "ignored on reception" (RFC 8200): no length to read there
    "fragment with a reserved byte of 3, still 8 bytes":
        [lambda nh: (IPv6ExtHdrFragment(nh=nh, res1=3, offset=0, m=1, id=9), 44), DEST],
    "destination options": [DEST],
    "AH with a 12-byte ICV: 24 bytes, length field 4": [lambda nh: ah(nh, 12)],
    "AH with a 20-byte ICV: 32 bytes, length field 6": [lambda nh: ah(nh, 20)],
    "Mobility (135)": [MOBILITY],
    "HIP (139), 32 bytes": [lambda nh: ext(139, nh, 32)],
    "Shim6 (140)": [lambda nh: ext(140, nh, 8)],
    "experimental 253, 16 bytes": [lambda nh: ext(253, nh, 16)],
    "experimental 254, 24 bytes": [lambda nh: ext(254, nh, 24)],
    "RFC 8200's order: six headers": [HOP24, DEST, ROUTING, FRAG, lambda nh: ah(nh, 12), DEST],
    "Shim6, fragment, AH, 253, HIP, Mobility": [lambda nh: ext(140, nh, 8), FRAG, lambda nh: ah(nh, 20),
                                               lambda nh: ext(253, nh, 8), lambda nh: ext(139, nh, 40),
                                               MOBILITY],
}


@pytest.mark.parametrize("what", CHAINS)
def test_ip6_chain_walk_steps_over_each_header_by_its_own_length(lab, what):
    """skip_ip6hdrext() leaves the cursor exactly at the UDP header behind each IANA extension
    header: 8-byte units for all but the fragment header (always 8 bytes) and AH (4-byte units)."""
    prog = lab.load(WALK, name="walk")
    pkt, offset = chain_of(*CHAINS[what])
    assert walked(prog, pkt) == (17, offset), f"{what}: {Ether(bytes(pkt)).summary()}"
    assert verdict(lab.load("xdp_filter.c"), pkt) == "XDP_DROP", "the filter drops UDP to 53 behind it"


def test_ip6_chain_walk_stops_where_it_must(lab):
    """ESP's payload (its next-header field too) is encrypted: the walk ends there and returns
    IPPROTO_ESP; it ends at IPPROTO_NONE (59) and at a later fragment (-2, the cursor on the
    fragment header); a seventh header is -3; a header cut short or longer than the frame, -1."""
    prog = lab.load(WALK, name="walk")
    esp = eth() / v6() / IPv6ExtHdrHopByHop(nh=50) / Raw(bytes.fromhex("00001234 00000001") + bytes(24))
    assert walked(prog, esp) == (50, 14 + 40 + 8)
    none, at = chain_of(lambda nh: ext(139, nh, 8), upper=59)
    assert walked(prog, none) == (59, at)
    later = eth() / v6() / IPv6ExtHdrDestOpt() / IPv6ExtHdrFragment(offset=1, nh=17) / Raw(bytes(UDP(dport=53)))
    assert walked(prog, later) == (-2, 14 + 40 + 8)
    seven, _ = chain_of(*[lambda nh: ext(253, nh, 8)] * 7)
    six, at = chain_of(*[lambda nh: ext(253, nh, 8)] * 6)
    assert walked(prog, seven)[0] == -3 and walked(prog, six) == (17, at)
    assert walked(prog, cut(ext_chain(2) / UDP(dport=53), 14 + 40 + 8 + 1)) == (-1, 14 + 40 + 8)
    # a length that runs past the frame: the walker moves the cursor by it (the next bounds check,
    # the walker's own or the caller's parser, finds it outside), exactly as far as it says
    long_ah, _ = chain_of(lambda nh: (AH(nh=nh, payloadlen=200, spi=1, icv=bytes(12)), 51))
    assert walked(prog, long_ah) == (17, 14 + 40 + (200 + 2) * 4)
    long_hip, _ = chain_of(lambda nh: (Raw(bytes([60, 10]) + bytes(6)), 139), DEST)
    assert walked(prog, long_hip) == (-1, 14 + 40 + 88)


def test_pass_and_drop(load):
    pkt = eth() / v4() / UDP(dport=80)
    assert verdict(load("xdp_pass.c"), pkt) == "XDP_PASS"
    assert verdict(load("xdp_drop.c"), pkt) == "XDP_DROP"


# --- xdp_count ----------------------------------------------------------------------------------

def test_count_packets_and_bytes_per_action(lab):
    prog = lab.load("xdp_count.c")
    small, big = eth() / v4() / UDP(dport=80), eth() / v4() / UDP(dport=80) / Raw(b"x" * 500)
    for pkt in (small, small, big):
        assert verdict(prog, pkt) == "XDP_PASS"
    counts = prog.maps["counters"].snapshot()          # per-CPU values, summed
    assert counts["XDP_PASS"] == (3, 2 * len(small) + len(big))
    assert counts["XDP_PASS"].packets == 3
    assert all(counts[a] == (0, 0) for a in ("XDP_ABORTED", "XDP_DROP", "XDP_TX", "XDP_REDIRECT"))

    dropper = lab.load("xdp_count.c", cflags=["-DACTION=XDP_DROP"])
    assert verdict(dropper, small) == "XDP_DROP"
    assert dropper.maps["counters"].snapshot()["XDP_DROP"] == (1, len(small))


# --- xdp_filter: what is parsed, what is dropped --------------------------------------------------

def first_fragment(ip, transport, data=b""):
    """Ether/IP: the first fragment of a datagram, holding only `transport` (bytes) of it."""
    return eth() / ip / Raw(transport + data)


tcp_syn53 = bytes(TCP(sport=40000, dport=53, flags="S"))
DROPPED = {
    "udp 53": eth() / v4() / UDP(dport=53),
    "tcp 53 with options": eth() / v4() / TCP(dport=53, flags="S", options=[
        ("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)]),
    "ipv4 options, udp 53": eth() / v4(options=[IPOption_RR(routers=["1.2.3.4"] * 4)]) / UDP(dport=53),
    "vlan, udp 53": eth(vlans=[10]) / v4() / UDP(dport=53),
    "qinq, udp 53": eth(vlans=[100, 10]) / v4() / UDP(dport=53),
    "qinq ipv6, udp 53": eth(vlans=[100, 10]) / v6() / UDP(dport=53),
    "ipv6 udp 53": eth() / v6() / UDP(dport=53),
    "ipv6 ext headers, udp 53": eth() / v6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / UDP(dport=53),
    "ipv6 6 ext headers, udp 53": ext_chain(6) / UDP(dport=53),
    "ipv6 first fragment, udp 53": eth() / v6() / IPv6ExtHdrFragment(offset=0, m=1) / UDP(dport=53),
    "ipv4 first fragment, udp 53": eth() / v4(flags="MF") / UDP(dport=53),
    "icmp echo": eth() / v4() / ICMP(),
    "icmpv6 echo request": eth() / v6() / ICMPv6EchoRequest(),
    # RFC 1858's tiny fragment: the first 8 bytes of a TCP SYN to 53 (ports and sequence number;
    # no data offset, no flags), the rest in later fragments the kernel reassembles behind it
    "ipv4 first fragment, 8 bytes of tcp to 53": first_fragment(v4(flags="MF", proto=6), tcp_syn53[:8]),
    "ipv6 first fragment, 8 bytes of tcp to 53":
        eth() / v6() / IPv6ExtHdrFragment(offset=0, m=1, nh=6) / Raw(tcp_syn53[:8]),
    "tcp doff < 5, to 53": bytes(eth() / v4() / TCP(dport=53, dataofs=3)),
    "udp length < 8, to 53": bytes(eth() / v4() / UDP(dport=53, len=7)),
    # more than the filter looks through, which the kernel would deliver all the same
    "three vlan tags (deeper than VLAN_MAX_DEPTH)": eth(vlans=[1, 2]) / Dot1Q(vlan=3) / v4() / UDP(dport=53),
    "three priority tags (VLAN 0)": eth(vlans=[0, 0]) / Dot1Q(vlan=0) / v4() / UDP(dport=80),
    "ipv6 7 ext headers (more than IPV6_EXT_MAX_CHAIN)": ext_chain(7) / UDP(dport=80),
    # no room for the ports in the datagram: a tiny fragment, or a malformed datagram
    "ipv4 first fragment, 2 bytes of tcp": first_fragment(v4(flags="MF", proto=6), tcp_syn53[:2]),
    "ipv6 first fragment, 2 bytes of tcp":
        eth() / v6() / IPv6ExtHdrFragment(offset=0, m=1, nh=6) / Raw(tcp_syn53[:2]),
    # exactly the ports: all the filter reads, so judged on them (RFC 1858's tmin is 4 here)
    "ipv4 first fragment, 4 bytes of tcp to 53": first_fragment(v4(flags="MF", proto=6), tcp_syn53[:4]),
    "ipv4 first fragment, 3 bytes of udp": first_fragment(v4(flags="MF", proto=17), b"\x9c\x40\x00"),
    # the IP length says where the datagram ends: bytes after it (Ethernet pads short frames to 60)
    # are no ports, even when they look like port 80
    "ipv4 tiny first fragment, padding after it": bytes(first_fragment(v4(flags="MF", proto=6), tcp_syn53[:2]))
        + bytes.fromhex("9c400050") + bytes(20),
    "ipv6 first fragment, 2 bytes of udp":
        eth() / v6() / IPv6ExtHdrFragment(offset=0, m=1, nh=17) / Raw(b"\x9c\x40"),
    "ipv4 whole datagram, 2 bytes of udp": first_fragment(v4(proto=17), b"\x9c\x40"),
}

PASSED = {
    "udp 80": eth() / v4() / UDP(dport=80),
    "udp from port 53": eth() / v4() / UDP(sport=53, dport=4000),
    "tcp 80 with options": eth() / v4() / TCP(dport=80, flags="S", options=[("MSS", 1460), ("WScale", 7)]),
    "vlan, udp 80": eth(vlans=[10]) / v4() / UDP(dport=80),
    "qinq, udp 80": eth(vlans=[100, 10]) / v4() / UDP(dport=80),
    "ipv6 udp 80": eth() / v6() / UDP(dport=80),
    "ipv6 6 ext headers, udp 80": ext_chain(6) / UDP(dport=80),
    "icmpv6 neighbour solicitation": eth() / v6() / ICMPv6ND_NS(tgt=IP6_S),
    "arp": eth() / ARP(pdst=IP_S),
    # a later fragment has no UDP header: these bytes only look like port 53
    "ipv4 later fragment": eth() / v4(proto=17, frag=1) / Raw(bytes(UDP(dport=53))),
    "ipv6 later fragment": eth() / v6() / IPv6ExtHdrFragment(offset=1, nh=17) / Raw(bytes(UDP(dport=53))),
    # a first fragment shorter than a TCP header, holding the ports: judged on them (RFC 1858)
    "ipv4 first fragment, 8 bytes of tcp to 80": first_fragment(v4(flags="MF", proto=6),
                                                              bytes(TCP(dport=80, flags="S"))[:8]),
    "ipv6 first fragment, 8 bytes of tcp to 80":
        eth() / v6() / IPv6ExtHdrFragment(offset=0, m=1, nh=6) / Raw(bytes(TCP(dport=80, flags="S"))[:8]),
    "ipv4 first fragment, 4 bytes of tcp to 80": first_fragment(v4(flags="MF", proto=6),
                                                              bytes(TCP(dport=80, flags="S"))[:4]),
    # ICMP errors the sender needs: only echo requests are ping
    "icmp fragmentation needed": eth() / v4() / ICMP(type=3, code=4, nexthopmtu=1280) / v4(src=IP_S, dst=IP_C) / UDP(),
    "icmp port unreachable": eth() / v4() / ICMP(type=3, code=3) / v4(src=IP_S, dst=IP_C) / UDP(dport=9),
    "icmp time exceeded": eth() / v4() / ICMP(type=11, code=0) / v4(src=IP_S, dst=IP_C) / UDP(),
    "icmp echo reply": eth() / v4() / ICMP(type=0),
}

udp53 = eth() / v4() / UDP(dport=53)
tcp53 = eth() / v4() / TCP(dport=53, options=[("MSS", 1460)] * 10)         # 40 bytes of options
TRUNCATED = {
    "ethernet header only": cut(udp53, 14),
    "ipv4 header cut": cut(udp53, 14 + 12),
    "ports cut": cut(udp53, 14 + 20 + 2),
    "ipv6 ports cut": cut(eth() / v6() / UDP(dport=53), 14 + 40 + 3),
    "ipv4 options cut": cut(eth() / v4(options=[IPOption_RR(routers=["1.2.3.4"] * 8)]) / UDP(dport=53), 14 + 30),
    # read with ihl=4, the "UDP header" would start inside the address, whose last 2 bytes say 53
    "ipv4 ihl < 5": bytes(eth() / v4(ihl=4, dst="10.11.0.53") / UDP(dport=53)),
    "ipv4 ihl says 60, 20 present": cut(eth() / v4(ihl=15) / UDP(dport=53), 14 + 20 + 8),
    "vlan tag cut": cut(eth(vlans=[10]) / v4() / UDP(dport=53), 16),
    "ipv6 header cut": cut(eth() / v6() / UDP(dport=53), 14 + 39),
    "ipv6 ext header cut": cut(eth() / v6() / IPv6ExtHdrDestOpt(options=[]) / UDP(dport=53), 14 + 40 + 1),
}
# cut short after the ports: the filter reads only the ports, and decides on them
CUT_AFTER_THE_PORTS = {
    "udp header cut": cut(udp53, 14 + 20 + 4),
    "tcp options cut": cut(tcp53, 14 + 20 + 30),
}


@pytest.mark.parametrize("what", DROPPED)
def test_filter_drops(load, what):
    assert verdict(load("xdp_filter.c"), DROPPED[what]) == "XDP_DROP"


@pytest.mark.parametrize("what", PASSED)
def test_filter_passes(load, what):
    assert verdict(load("xdp_filter.c"), PASSED[what]) == "XDP_PASS"


@pytest.mark.parametrize("what", TRUNCATED)
def test_filter_passes_truncated_and_malformed_packets(load, what):
    """Unparseable → -1 → passed: the parsers refuse to read past data_end or trust bad lengths,
    and the kernel drops such a packet itself (fail open costs nothing here)."""
    assert verdict(load("xdp_filter.c"), TRUNCATED[what]) == "XDP_PASS"


@pytest.mark.parametrize("what", CUT_AFTER_THE_PORTS)
def test_filter_judges_a_cut_frame_by_its_ports(load, what):
    assert verdict(load("xdp_filter.c"), CUT_AFTER_THE_PORTS[what]) == "XDP_DROP"


def test_filter_cflags_change_port_and_icmp(load):
    prog = load("xdp_filter.c", "-DDROP_PORT=5353", "-DDROP_ICMP=0")
    assert verdict(prog, eth() / v4() / UDP(dport=5353)) == "XDP_DROP"
    assert verdict(prog, eth() / v6() / UDP(dport=5353)) == "XDP_DROP"
    assert verdict(prog, eth() / v4() / UDP(dport=53)) == "XDP_PASS"
    assert verdict(prog, eth() / v4() / ICMP()) == "XDP_PASS"
    assert verdict(prog, eth() / v6() / ICMPv6EchoRequest()) == "XDP_PASS"


# --- rewriting ----------------------------------------------------------------------------------

def test_macswap_sends_back_with_swapped_macs(load):
    pkt = eth(vlans=[7]) / v4() / UDP(dport=80)
    res = load("xdp_macswap_tx.c").test_run(pkt)
    assert res.verdict == "XDP_TX"
    assert (res.packet.src, res.packet.dst) == (MAC_S, MAC_C)
    assert {(c.layer, c.field) for c in res.diff} == {("Ether", "src"), ("Ether", "dst")}
    assert res.packet[Dot1Q].vlan == 7 and bytes(res.packet[IP]) == bytes(pkt[IP])


def answering(prog, ip=IP_S, ip6=IP6_S):
    """xdp_icmp_echo.c told the addresses it answers for, as lesson 04 does: the one entry of
    host_addrs is its IPv4 then its IPv6 address, in network byte order."""
    table = prog.maps["host_addrs"].table
    table[0] = table.Leaf.from_buffer_copy(ipaddress.ip_address(ip).packed + ipaddress.ip_address(ip6).packed)
    return prog


def assert_echo_reply(res, request, l3, request_layer, reply_layer):
    """res is the reply to request: addresses swapped, the echo's id, seq and data kept, a fresh
    TTL (hop limit) of 64, and the incrementally updated checksums equal to the ones scapy computes
    from scratch."""
    assert res.verdict == "XDP_TX"
    out = res.packet
    assert (out.src, out.dst) == (request.dst, request.src)
    assert (out[l3].src, out[l3].dst) == (request[l3].dst, request[l3].src)
    assert (out[l3].ttl if l3 is IP else out[l3].hlim) == 64
    assert reply_layer in out and (request_layer is reply_layer or request_layer not in out)
    assert (out[reply_layer].id, out[reply_layer].seq) == (request[request_layer].id, request[request_layer].seq)
    assert bytes(out[reply_layer])[4:] == bytes(request[request_layer])[4:]    # all after type, code, checksum
    assert bytes(rebuilt(out, reply_layer)) == bytes(out)
    if l3 is IP:
        assert bytes(rebuilt(out, IP)) == bytes(out)                       # the header checksum too


def test_icmp_echo_replies_ipv4_with_valid_checksum(load):
    prog = answering(load("xdp_icmp_echo.c"))
    rnd = random.Random(7)
    requests = [eth() / v4(ttl=rnd.randrange(1, 256)) / ICMP(type=8, id=rnd.randrange(1 << 16), seq=rnd.randrange(1 << 16))
                / Raw(rnd.randbytes(rnd.randrange(0, 64))) for _ in range(50)]
    # edge case: the reply's checksum is 0x0000 (its words sum to 0xffff)
    requests.append(eth() / v4() / ICMP(type=8, id=0xffff, seq=0))
    requests.append(eth(vlans=[5, 6]) / v4(ttl=1) / ICMP(type=8, id=1, seq=2) / Raw(b"qinq"))
    for req in requests:
        req = Ether(bytes(req))
        res = prog.test_run(req)
        assert_echo_reply(res, req, IP, ICMP, ICMP)
        assert res.packet[ICMP].type == 0 and res.packet[ICMP].code == 0
    assert Ether(bytes(requests[-2]))[ICMP].chksum == 0xf7ff
    assert prog.test_run(requests[-2]).packet[ICMP].chksum == 0x0000


def swap16(w):
    return (w >> 8) | (w & 0xff) << 8


def ttl_carry_checksums(ttl):
    """IPv4 header checksums of a request with `ttl` at which setting the TTL to 64 takes the
    checksum across 0xffff/0x0000 (a wrong update without the end-around carry is off by one
    there), and checksums just inside. The program adds 16-bit words as the CPU loads them, so both
    byte orders count: the network's, and the swapped one of a little-endian CPU."""
    values = set()
    for order in ("big", "little"):
        old, new = (ttl << 8 | 1, 64 << 8 | 1) if order == "big" else (1 << 8 | ttl, 1 << 8 | 64)
        delta = old - new                           # the checksum grows by what the word lost
        if delta > 0:
            near = {0x10000 - delta, 0x10001 - delta, 0xfffe, 0xfffe - delta}
        elif delta < 0:
            near = {0x0000, 0x0001, -delta - 1, -delta}
        else:
            near = {0x0000, 0xfffe}
        values |= {v if order == "big" else swap16(v) for v in near}
    return sorted(v for v in values if v != 0xffff)


@pytest.mark.parametrize("ttl", [1, 2, 63, 64, 65, 128, 255])
def test_icmp_echo_sets_ttl_64_and_keeps_the_ip_checksum_right_across_the_carry(load, ttl):
    """A request that arrived with TTL 1 would make a reply the first router drops: the reply gets
    TTL 64, and the IPv4 header checksum follows, also where the update crosses 0xffff."""
    prog = answering(load("xdp_icmp_echo.c"))
    for checksum in ttl_carry_checksums(ttl):
        req = sampling.with_checksum(eth() / v4(ttl=ttl) / ICMP(type=8, id=3, seq=ttl) / Raw(b"carry"), IP, checksum)
        assert req[IP].chksum == checksum and req[IP].ttl == ttl
        res = prog.test_run(req)
        assert_echo_reply(res, req, IP, ICMP, ICMP)
        changed = {(c.layer, c.field) for c in res.diff}
        assert (("IP", "ttl") in changed) == (ttl != 64) and (("IP", "chksum") in changed) == (ttl != 64)


def test_icmp_echo_replies_ipv6_with_valid_checksum(load):
    """Hop limit 64 whatever the request's; the ICMPv6 checksum does not cover the hop limit, so
    the one-word update for the type stays right."""
    prog = answering(load("xdp_icmp_echo.c"))
    rnd = random.Random(6)
    for i in range(50):
        hlim = (1, 255, 64)[i] if i < 3 else rnd.randrange(1, 256)
        req = Ether(bytes(eth() / v6(hlim=hlim) / ICMPv6EchoRequest(
            id=rnd.randrange(1 << 16), seq=rnd.randrange(1 << 16), data=rnd.randbytes(rnd.randrange(64)))))
        res = prog.test_run(req)
        assert_echo_reply(res, req, IPv6, ICMPv6EchoRequest, ICMPv6EchoReply)
        assert res.packet[ICMPv6EchoReply].data == req[ICMPv6EchoRequest].data


@pytest.mark.parametrize("pkt", [
    Ether(src=MAC_C, dst="ff:ff:ff:ff:ff:ff") / v4(dst="10.11.0.255") / ICMP(),   # broadcast
    eth() / v6(dst="ff02::1") / ICMPv6EchoRequest(),                              # multicast
    eth() / v4(flags="MF") / ICMP(),                                              # fragment
    eth() / v4() / ICMP(type=0),                                                  # a reply
    eth() / v4() / ICMP(type=8, code=1),
    cut(eth() / v4() / ICMP(), 14 + 20 + 6),                                      # truncated
    eth() / v6() / ICMPv6ND_NS(tgt=IP6_S),
    eth() / v4() / UDP(dport=7),
    eth() / v4(dst="10.11.0.99") / ICMP(),                                        # another host
    eth() / v4(dst="10.99.0.2") / ICMP(),                                         # routed on
    eth() / v6(dst="fd00:11::99") / ICMPv6EchoRequest(),
    eth() / v6(dst="fd00:11::2:0") / ICMPv6EchoRequest(),
], ids=["broadcast", "multicast6", "fragment", "reply", "bad code", "truncated", "ns", "udp",
        "other address", "routed address", "other address6", "other address6, same last word"])
def test_icmp_echo_leaves_other_packets_to_the_kernel(load, pkt):
    res = answering(load("xdp_icmp_echo.c")).test_run(pkt)
    assert res.verdict == "XDP_PASS" and not res.diff


def test_icmp_echo_answers_nothing_until_told_its_addresses(lab):
    prog = lab.load("xdp_icmp_echo.c")
    assert prog.maps["host_addrs"].snapshot()[0] == (ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("::"))
    for pkt in (eth() / v4() / ICMP(), eth() / v6() / ICMPv6EchoRequest(),
                eth() / v4(dst="0.0.0.0") / ICMP(), eth() / v6(dst="::") / ICMPv6EchoRequest()):
        assert verdict(prog, pkt) == "XDP_PASS"
    answering(prog, ip6="::")                          # only IPv4 told: IPv6 still not answered
    assert verdict(prog, eth() / v4() / ICMP()) == "XDP_TX"
    assert verdict(prog, eth() / v6(dst="::") / ICMPv6EchoRequest()) == "XDP_PASS"
    answering(prog)
    assert prog.maps["host_addrs"].snapshot()[0] == (ipaddress.ip_address(IP_S), ipaddress.ip_address(IP6_S))
    assert verdict(prog, eth() / v6() / ICMPv6EchoRequest()) == "XDP_TX"


REWRITE = r"""
/* NAT-like rewrite: new destination address, TTL - 1, checksums updated incrementally */
#include "parsing_helpers.h"
int xdp_rewrite(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct ethhdr *eth; struct iphdr *iph; struct udphdr *udph; struct tcphdr *tcph;
	__be32 old, new = bpf_htonl(0x0a630001);          /* 10.99.0.1 */
	int proto;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = parse_iphdr(&nh, data_end, &iph);
	if (proto < 0 || ip_is_fragment(iph))
		return XDP_PASS;
	old = iph->daddr;
	iph->daddr = new;
	csum_replace4(&iph->check, old, new);
	ip_decrease_ttl(iph);
	if (proto == IPPROTO_UDP && parse_udphdr(&nh, data_end, &udph) >= 0)
		udp_csum_replace4(udph, old, new);
	else if (proto == IPPROTO_TCP && parse_tcphdr(&nh, data_end, &tcph) >= 0)
		csum_replace4(&tcph->check, old, new);
	return XDP_TX;
}
"""


def ones_add(a, b):
    s = a + b
    return (s & 0xffff) + (s >> 16)


def with_checksum(checksum_of, target):
    """The value x of a 16-bit field for which checksum_of(x) == target."""
    return ones_add(~target & 0xffff, checksum_of(0))


def carry_case():
    """A packet whose IP and UDP checksums make csum_replace4's sum 0x2ffff when 10.11.0.2 is
    rewritten to 10.99.0.1: a sum that needs the second fold of csum_fold_helper. The program adds
    16-bit words as the CPU loads them, so on a little-endian CPU the bytes of each word are
    swapped: the checksum that gives 0x2ffff is 0xfe56 there and 0x0055 on a big-endian one."""
    target = 0xfe56 if sys.byteorder == "little" else 0x0055
    ip_chk = lambda i: IP(bytes(v4(id=i) / UDP(sport=1, dport=53))).chksum
    ip_id = with_checksum(ip_chk, target)
    udp_chk = lambda sp: Ether(bytes(eth() / v4(id=ip_id) / UDP(sport=sp, dport=53)))[UDP].chksum
    pkt = Ether(bytes(eth() / v4(id=ip_id) / UDP(sport=with_checksum(udp_chk, target), dport=53)))
    assert pkt[IP].chksum == target and pkt[UDP].chksum == target
    return pkt


def test_checksum_helpers_rewrite_address_and_ttl(lab):
    prog = lab.load(REWRITE, name="rewrite")
    rnd = random.Random(5)
    pkts = [eth() / v4(ttl=rnd.randrange(2, 256), id=rnd.randrange(1 << 16)) /
            (UDP(sport=rnd.randrange(1 << 16), dport=53) if i % 2 else
             TCP(sport=rnd.randrange(1 << 16), dport=443, options=[("MSS", 1400), ("NOP", None)]))
            / Raw(rnd.randbytes(rnd.randrange(40))) for i in range(40)]
    pkts.append(eth() / v4(options=[IPOption_RR()]) / UDP(dport=53))
    pkts.append(carry_case())
    # a UDP checksum that comes out 0 after the rewrite must be sent as 0xffff: scapy's rule too
    probe = eth() / v4(dst="10.99.0.1") / UDP(sport=0, dport=53)
    pkts.append(eth() / v4() / UDP(sport=Ether(bytes(probe))[UDP].chksum, dport=53))
    for pkt in pkts:
        pkt = Ether(bytes(pkt))
        res = prog.test_run(pkt)
        out = res.packet
        assert res.verdict == "XDP_TX"
        assert out[IP].dst == "10.99.0.1" and out[IP].ttl == pkt[IP].ttl - 1
        l4 = UDP if UDP in pkt else TCP
        assert bytes(rebuilt(out, IP, l4)) == bytes(out)
    assert out[UDP].chksum == 0xffff

    # UDP over IPv4 without checksum (0) keeps 0
    nosum = Ether(bytes(eth() / v4() / UDP(dport=53, chksum=0)))
    out = prog.test_run(nosum).packet
    assert out[UDP].chksum == 0 and bytes(rebuilt(out, IP)) == bytes(out)


# --- on a real lab --------------------------------------------------------------------------------

def snmp(host, path, *names):
    """Counters of /proc/net/snmp or snmp6 inside a lab host."""
    text = host.run(["cat", path]).stdout.split("\n")
    vals = {}
    if path.endswith("snmp6"):
        vals = {k: int(v) for k, v in (line.split() for line in text if line.strip())}
    else:
        for head, body in zip(text[::2], text[1::2]):
            proto = head.split(":")[0]
            vals.update({proto + k: int(v) for k, v in zip(head.split()[1:], body.split()[1:])})
    return [vals[n] for n in names]


def test_icmp_echo_answers_pings_before_the_kernel_sees_them(pair):
    c, s = pair.client, pair.server
    ipv4_echos = lambda: snmp(s, "/proc/net/snmp", "IcmpInEchos")[0]
    ipv6_echos = lambda: snmp(s, "/proc/net/snmp6", "Icmp6InEchos")[0]

    # without the program the server's kernel answers, and counts it
    before = ipv4_echos()
    assert c.ping(s, count=1, interval=0.05).received == 1
    assert ipv4_echos() == before + 1

    # XDP_TX on a veth reaches the peer promptly only if the peer runs a native XDP program: the
    # veth driver kicks the peer's NAPI after XDP_TX only then (GRO alone leaves frames queued)
    pair.load("xdp_pass.c").attach(c, mode="native")
    prog = answering(pair.load("xdp_icmp_echo.c"), s.ip, s.ip6)
    prog.attach(s, mode="native")
    v4_before, v6_before = ipv4_echos(), ipv6_echos()
    assert c.ping(s, count=3, interval=0.05).received == 3
    assert c.ping(s, count=2, interval=0.05, ipv6=True).received == 2
    assert (ipv4_echos(), ipv6_echos()) == (v4_before, v6_before)     # the kernel saw none of them
    assert prog.maps["echo_replies"].snapshot() == {0: 3, 1: 2}

    prog.detach()
    assert c.ping(s, count=1, interval=0.05).received == 1
    assert ipv4_echos() == v4_before + 1


def test_icmp_echo_replies_cross_a_router_even_to_a_request_that_arrived_with_ttl_1():
    """client — router — server: a ping sent with TTL 2 reaches the server with TTL 1. A reply
    that kept the request's TTL would die at the router (time exceeded); the reply leaves with 64
    and reaches the client with 63, one router later."""
    with xdplab.Lab() as lab:
        c, r, s = lab.host("client"), lab.host("router"), lab.host("server")
        lab.link(c, r)
        lab.link(r, s)
        s.sysctl("net.ipv4.icmp_echo_ignore_all", 1)              # only the program may answer
        prog = answering(lab.load("xdp_icmp_echo.c"), s.ip, s.ip6)
        prog.attach(s)
        dropped_before = counters.snmp(r).get("IcmpOutTimeExcds", 0)
        out = c.run(["ping", "-4", "-n", "-c", "3", "-i", "0.1", "-W", "1", "-t", "2", s.ip], check=False).stdout
        assert "3 received" in out, out
        assert re.findall(r"ttl=(\d+)", out) == ["63"] * 3, out
        assert prog.maps["echo_replies"].snapshot()[0] == 3
        assert counters.snmp(r).get("IcmpOutTimeExcds", 0) == dropped_before


def test_filter_on_a_real_lab(pair):
    c, s = pair.client, pair.server
    prog = pair.load("xdp_filter.c")
    prog.attach(s)
    assert c.ping(s, count=2, interval=0.05).received == 0
    # the lab's neighbour entries are static: remove the client's, so that it must ask the server
    # with neighbour discovery (ICMPv6), which the filter lets through while it drops the echo
    c.run(["ip", "-6", "neigh", "del", s.ip6, "dev", c.ifname])
    assert c.ping(s, count=2, interval=0.05, ipv6=True).received == 0
    assert s.mac in c.run(["ip", "-6", "neigh", "show", s.ip6, "dev", c.ifname]).stdout
    prog.detach()
    assert c.ping(s, count=2, interval=0.05).received == 2
    assert c.ping(s, count=2, interval=0.05, ipv6=True).received == 2


def test_filter_on_a_real_lab_drops_what_the_kernel_would_deliver_past_it(pair):
    """What the filter cannot read through, the server's kernel would deliver: DNS behind three
    priority tags (VLAN 0) or seven IPv6 extension headers, and a TCP SYN to port 53 sent in
    fragments of 8 bytes (the first holds the ports, not the whole TCP header). Without the filter
    the kernel takes each (the datagrams reach a listener, the SYN is reassembled and answered with
    a reset); with it, none. And ICMP errors for the server pass: only echo requests are ping."""
    c, s = pair.client, pair.server
    sink = UdpListener(s, 53)
    to_s = Ether(src=c.mac, dst=s.mac)
    dns6 = to_s / IPv6(src=c.ip6, dst=s.ip6)
    for _ in range(7):
        dns6 = dns6 / IPv6ExtHdrDestOpt()
    dns6 = dns6 / UDP(sport=40000, dport=53) / b"seven"
    tagged = to_s / Dot1Q(vlan=0) / Dot1Q(vlan=0) / Dot1Q(vlan=0) / IP(src=c.ip, dst=s.ip) / UDP(sport=40000, dport=53) / b"tags"
    syn = fragment(IP(src=c.ip, dst=s.ip, id=4242) / TCP(sport=40000, dport=53, flags="S"), fragsize=8)
    assert len(syn) == 3 and len(syn[0][Raw].load) == 8

    def send_all():
        before = counters.snmp(s)
        c.send([dns6, tagged])
        c.send(syn)
        got = sorted(d.payload for d in sink.receive(2, timeout=1))
        return got, counters.snmp(s) - before

    got, seen = send_all()
    assert got == [b"seven", b"tags"], "without a filter the server's kernel delivers both"
    assert seen["IpReasmOKs"] == 1 and seen["TcpOutRsts"] == 1, seen

    prog = pair.load("xdp_filter.c")
    prog.attach(s)
    got, seen = send_all()
    assert got == [], f"behind the filter the server's kernel received {got}"
    assert "IpReasmOKs" not in seen and "TcpInSegs" not in seen and "TcpOutRsts" not in seen, seen

    # the client's kernel answers datagrams to its closed port 9 with ICMP port unreachable
    before = counters.snmp(s)
    s.send(IP(src=s.ip, dst=c.ip) / UDP(sport=40000, dport=9) / b"x", count=3)
    deadline = time.monotonic() + 2
    while (counters.snmp(s) - before).get("IcmpInDestUnreachs", 0) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (counters.snmp(s) - before).get("IcmpInDestUnreachs", 0) == 3


def test_count_on_a_real_lab(pair):
    c, s = pair.client, pair.server
    prog = pair.load("xdp_count.c")
    prog.attach(s)
    pkt = IP(dst=s.ip) / UDP(dport=9) / Raw(b"x" * 100)
    c.send(pkt, count=20)
    assert prog.maps["counters"].snapshot()["XDP_PASS"] == (20, 20 * (14 + 20 + 8 + 100))
