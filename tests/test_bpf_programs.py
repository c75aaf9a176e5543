"""The programs in bpf/ and bpf/include/parsing_helpers.h: each compiles and passes the verifier,
decides right on crafted packets (BPF_PROG_TEST_RUN), rewrites packets with valid checksums, and the
ICMP echo responder answers real pings on a lab without the server's kernel seeing them."""
import random
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import (ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NS, IPv6,
                                IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw


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
}

PASSED = {
    "udp 80": eth() / v4() / UDP(dport=80),
    "udp from port 53": eth() / v4() / UDP(sport=53, dport=4000),
    "tcp 80 with options": eth() / v4() / TCP(dport=80, flags="S", options=[("MSS", 1460), ("WScale", 7)]),
    "vlan, udp 80": eth(vlans=[10]) / v4() / UDP(dport=80),
    "qinq, udp 80": eth(vlans=[100, 10]) / v4() / UDP(dport=80),
    "three vlan tags (deeper than VLAN_MAX_DEPTH)": eth(vlans=[1, 2]) / Dot1Q(vlan=3) / v4() / UDP(dport=53),
    "ipv6 udp 80": eth() / v6() / UDP(dport=80),
    "icmpv6 neighbour solicitation": eth() / v6() / ICMPv6ND_NS(tgt=IP6_S),
    "arp": eth() / ARP(pdst=IP_S),
    "ipv6 7 ext headers (more than IPV6_EXT_MAX_CHAIN)":
        ext_chain(7) / UDP(dport=53),
    # a later fragment has no UDP header: these bytes only look like port 53
    "ipv4 later fragment": eth() / v4(proto=17, frag=1) / Raw(bytes(UDP(dport=53))),
    "ipv6 later fragment": eth() / v6() / IPv6ExtHdrFragment(offset=1, nh=17) / Raw(bytes(UDP(dport=53))),
}

udp53 = eth() / v4() / UDP(dport=53)
tcp53 = eth() / v4() / TCP(dport=53, options=[("MSS", 1460)] * 10)         # 40 bytes of options
TRUNCATED = {
    "ethernet header only": cut(udp53, 14),
    "ipv4 header cut": cut(udp53, 14 + 12),
    "udp header cut": cut(udp53, 14 + 20 + 4),
    "ipv4 options cut": cut(eth() / v4(options=[IPOption_RR(routers=["1.2.3.4"] * 8)]) / UDP(dport=53), 14 + 30),
    # read with ihl=4, the "UDP header" would start inside the address, whose last 2 bytes say 53
    "ipv4 ihl < 5": bytes(eth() / v4(ihl=4, dst="10.11.0.53") / UDP(dport=53)),
    "ipv4 ihl says 60, 20 present": cut(eth() / v4(ihl=15) / UDP(dport=53), 14 + 20 + 8),
    "tcp options cut": cut(tcp53, 14 + 20 + 30),
    "tcp doff < 5": bytes(eth() / v4() / TCP(dport=53, dataofs=3)),
    "vlan tag cut": cut(eth(vlans=[10]) / v4() / UDP(dport=53), 16),
    "ipv6 header cut": cut(eth() / v6() / UDP(dport=53), 14 + 39),
    "ipv6 ext header cut": cut(eth() / v6() / IPv6ExtHdrDestOpt(options=[]) / UDP(dport=53), 14 + 40 + 1),
    "udp length < 8": bytes(eth() / v4() / UDP(dport=53, len=7)),
}


@pytest.mark.parametrize("what", DROPPED)
def test_filter_drops(load, what):
    assert verdict(load("xdp_filter.c"), DROPPED[what]) == "XDP_DROP"


@pytest.mark.parametrize("what", PASSED)
def test_filter_passes(load, what):
    assert verdict(load("xdp_filter.c"), PASSED[what]) == "XDP_PASS"


@pytest.mark.parametrize("what", TRUNCATED)
def test_filter_passes_truncated_and_malformed_packets(load, what):
    """Unparseable → -1 → passed: the parsers refuse to read past data_end or trust bad lengths."""
    assert verdict(load("xdp_filter.c"), TRUNCATED[what]) == "XDP_PASS"


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


def assert_echo_reply(res, request, l3, request_layer, reply_layer):
    """res is the reply to request: addresses swapped, the echo's id, seq and data kept, and the
    incrementally updated checksum equal to the one scapy computes from scratch."""
    assert res.verdict == "XDP_TX"
    out = res.packet
    assert (out.src, out.dst) == (request.dst, request.src)
    assert (out[l3].src, out[l3].dst) == (request[l3].dst, request[l3].src)
    assert reply_layer in out and (request_layer is reply_layer or request_layer not in out)
    assert (out[reply_layer].id, out[reply_layer].seq) == (request[request_layer].id, request[request_layer].seq)
    assert bytes(out[reply_layer])[4:] == bytes(request[request_layer])[4:]    # all after type, code, checksum
    assert bytes(rebuilt(out, reply_layer)) == bytes(out)


def test_icmp_echo_replies_ipv4_with_valid_checksum(load):
    prog = load("xdp_icmp_echo.c")
    rnd = random.Random(7)
    requests = [eth() / v4() / ICMP(type=8, id=rnd.randrange(1 << 16), seq=rnd.randrange(1 << 16))
                / Raw(rnd.randbytes(rnd.randrange(0, 64))) for _ in range(50)]
    # edge case: the reply's checksum is 0x0000 (its words sum to 0xffff)
    requests.append(eth() / v4() / ICMP(type=8, id=0xffff, seq=0))
    requests.append(eth(vlans=[5, 6]) / v4() / ICMP(type=8, id=1, seq=2) / Raw(b"qinq"))
    for req in requests:
        req = Ether(bytes(req))
        res = prog.test_run(req)
        assert_echo_reply(res, req, IP, ICMP, ICMP)
        assert res.packet[ICMP].type == 0 and res.packet[ICMP].code == 0
        assert bytes(rebuilt(res.packet, IP)) == bytes(res.packet)       # IP checksum untouched, valid
    assert Ether(bytes(requests[-2]))[ICMP].chksum == 0xf7ff
    assert prog.test_run(requests[-2]).packet[ICMP].chksum == 0x0000


def test_icmp_echo_replies_ipv6_with_valid_checksum(load):
    prog = load("xdp_icmp_echo.c")
    rnd = random.Random(6)
    for _ in range(50):
        req = Ether(bytes(eth() / v6() / ICMPv6EchoRequest(
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
], ids=["broadcast", "multicast6", "fragment", "reply", "bad code", "truncated", "ns", "udp"])
def test_icmp_echo_leaves_other_packets_to_the_kernel(load, pkt):
    res = load("xdp_icmp_echo.c").test_run(pkt)
    assert res.verdict == "XDP_PASS" and not res.diff


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
    prog = pair.load("xdp_icmp_echo.c")
    prog.attach(s, mode="native")
    v4_before, v6_before = ipv4_echos(), ipv6_echos()
    assert c.ping(s, count=3, interval=0.05).received == 3
    assert c.ping(s, count=2, interval=0.05, ipv6=True).received == 2
    assert (ipv4_echos(), ipv6_echos()) == (v4_before, v6_before)     # the kernel saw none of them
    assert prog.maps["echo_replies"].snapshot() == {0: 3, 1: 2}

    prog.detach()
    assert c.ping(s, count=1, interval=0.05).received == 1
    assert ipv4_echos() == v4_before + 1


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


def test_count_on_a_real_lab(pair):
    c, s = pair.client, pair.server
    prog = pair.load("xdp_count.c")
    prog.attach(s)
    pkt = IP(dst=s.ip) / UDP(dport=9) / Raw(b"x" * 100)
    c.send(pkt, count=20)
    assert prog.maps["counters"].snapshot()["XDP_PASS"] == (20, 20 * (14 + 20 + 8 + 100))
