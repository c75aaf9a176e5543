"""The programs of lessons 03 and 04 and the helpers they prove things with: lesson03_ethertypes.c
(rejected without its bounds check, at the read), lesson03_filter_stats.c (decides exactly as
xdp_filter.c, counts by packet), lesson04_port_rewrite.c (checksums as scapy computes them, real
datagrams delivered), xdplab.listener.UdpListener and xdplab.counters; and the veth rule as
lesson 04 shows it (XDP_TX into a veth without a program: dropped, counted at the peer)."""
import random

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (ICMPv6EchoRequest, ICMPv6ND_NS, IPv6, IPv6ExtHdrDestOpt,
                                IPv6ExtHdrFragment, IPv6ExtHdrHopByHop)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether


import xdplab
from xdplab.counters import Counts, link_stats, snmp
from xdplab.listener import UdpListener

IP_C, IP_S = "10.11.0.1", "10.11.0.2"
IP6_C, IP6_S = "fd00:11::1", "fd00:11::2"


def v4(**kw):
    return IP(**{"src": IP_C, "dst": IP_S, **kw})


def v6(**kw):
    return IPv6(**{"src": IP6_C, "dst": IP6_S, **kw})


# --- lesson03_ethertypes.c ---------------------------------------------------------------------

def test_ethertypes_without_bounds_check_is_rejected_at_the_read(lab):
    with pytest.raises(xdplab.VerifierError) as info:
        lab.load("lesson03_ethertypes.c", cflags=["-DSKIP_BOUNDS_CHECK"])
    e = info.value
    assert "eth->h_proto" in e.source.splitlines()[e.line - 1]
    assert "invalid access to packet" in e.message and "off=12" in e.message
    assert "data_end" in e.explanation


def test_ethertypes_counts_the_first_ethertype(lab):
    prog = lab.load("lesson03_ethertypes.c")
    frames = [Ether() / v4() / UDP(), Ether() / v4() / ICMP(), Ether() / v6() / UDP(),
              Ether() / Dot1Q(vlan=100) / v4() / UDP(), Ether() / ARP(), bytes(Ether(type=0x88CC))]
    assert {prog.test_run(f).verdict for f in frames} == {"XDP_PASS"}
    assert prog.maps["ethertypes"].snapshot() == {"IPv4": 2, "IPv6": 1, "802.1Q": 1, "ARP": 1,
                                                  "LLDP": 1}


# --- lesson03_filter_stats.c -------------------------------------------------------------------

FRAMES = {
    "udp 53": Ether() / v4() / UDP(dport=53),
    "udp 80": Ether() / v4() / UDP(dport=80),
    "udp 5353": Ether() / v4() / UDP(dport=5353),
    "tcp 53": Ether() / v4() / TCP(dport=53),
    "tcp 80": Ether() / v4() / TCP(dport=80),
    "ping": Ether() / v4() / ICMP(),
    "ip options, udp 53": Ether() / v4(options=b"\x01" * 8) / UDP(dport=53),
    "802.1Q udp 53": Ether() / Dot1Q(vlan=100) / v4() / UDP(dport=53),
    "QinQ udp 53": Ether() / Dot1AD(vlan=10) / Dot1Q(vlan=100) / v4() / UDP(dport=53),
    "three tags udp 53": Ether() / Dot1AD(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / v4() / UDP(dport=53),
    "ipv6 udp 53": Ether() / v6() / UDP(dport=53),
    "ipv6 udp 80": Ether() / v6() / UDP(dport=80),
    "ipv6 hbh+dst udp 53": Ether() / v6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / UDP(dport=53),
    "ipv6 first fragment udp 53": Ether() / v6() / IPv6ExtHdrFragment(offset=0, m=1) / UDP(dport=53),
    "ipv6 later fragment": Ether() / v6() / IPv6ExtHdrFragment(offset=3) / UDP(dport=53),
    "ipv6 ping": Ether() / v6() / ICMPv6EchoRequest(),
    "neighbour solicitation": Ether() / v6() / ICMPv6ND_NS(tgt=IP6_S),
    "later ipv4 fragment": Ether() / v4(frag=5) / UDP(dport=53),
    "first ipv4 fragment udp 53": Ether() / v4(flags="MF") / UDP(dport=53),
    "arp": Ether() / ARP(),
    "truncated ip": bytes(Ether() / v4() / UDP(dport=53))[:30],
    "truncated udp": bytes(Ether() / v4() / UDP(dport=53))[:38],
    "ip ihl 4": bytes(Ether() / v4(ihl=4) / UDP(dport=53)),
}
BUILDS = [(), ("-DDROP_ICMP=0",), ("-DDROP_PORT=80",)]


@pytest.mark.parametrize("cflags", BUILDS, ids=lambda c: " ".join(c) or "default")
def test_filter_stats_decides_exactly_as_xdp_filter(load, cflags):
    filt, stats = load("xdp_filter.c", *cflags), load("lesson03_filter_stats.c", *cflags)
    verdicts = {name: (filt.test_run(f).verdict, stats.test_run(f).verdict)
                for name, f in FRAMES.items()}
    differ = {name: v for name, v in verdicts.items() if v[0] != v[1]}
    assert not differ, f"lesson03_filter_stats.c decides otherwise than xdp_filter.c: {differ}"
    assert {v[0] for v in verdicts.values()} == {"XDP_PASS", "XDP_DROP"}


def test_filter_stats_counts_each_decision_by_packet(lab):
    stats = lab.load("lesson03_filter_stats.c")         # a fresh map
    for name in ("udp 53", "udp 53", "tcp 80", "ping", "ipv6 udp 53", "802.1Q udp 53", "arp",
                 "truncated ip"):
        stats.test_run(FRAMES[name])
    assert stats.maps["decisions"].snapshot() == {
        ("XDP_DROP", 4, "UDP", 53): 3,          # two untagged, one behind an 802.1Q tag
        ("XDP_PASS", 4, "TCP", 80): 1,
        ("XDP_DROP", 4, "ICMP", 0): 1,
        ("XDP_DROP", 6, "UDP", 53): 1,
        ("XDP_PASS", 0, 0, 0): 1,               # ARP: not IP
        ("XDP_PASS", 4, 0, 0): 1,               # truncated IPv4 header: protocol unknown
    }


def test_filter_stats_on_real_traffic(pair):
    stats = pair.load("lesson03_filter_stats.c", cflags=["-DDROP_ICMP=0"])
    stats.attach(pair.server)
    pair.client.send(IP(dst=pair.server.ip) / UDP(sport=40000, dport=53), count=30)
    pair.client.send(IP(dst=pair.server.ip) / UDP(sport=40000, dport=80), count=20)
    pings = pair.client.ping(pair.server, count=4, interval=0.05)
    counted = stats.maps["decisions"].snapshot()
    assert {k: n for k, n in counted.items() if k.action == "XDP_DROP"} == {("XDP_DROP", 4, "UDP", 53): 30}
    assert counted[("XDP_PASS", 4, "UDP", 80)] == 20
    assert counted[("XDP_PASS", 4, "ICMP", 0)] == 4 == pings.received


# --- lesson04_port_rewrite.c -------------------------------------------------------------------

def scapy_checksum(pkt):
    """The UDP checksum scapy computes from scratch for the packet as it is."""
    fresh = pkt.copy()
    del fresh[UDP].chksum
    return Ether(bytes(fresh))[UDP].chksum


@pytest.mark.parametrize("ip", [v4(), v6(), v4(options=b"\x01" * 4),
                                v6() / IPv6ExtHdrHopByHop()], ids=["ipv4", "ipv6", "ipv4 options",
                                                                   "ipv6 hop-by-hop"])
def test_port_rewrite_checksum_matches_a_full_recomputation(load, ip):
    prog = load("lesson04_port_rewrite.c")
    rng = random.Random(1624)
    for _ in range(40):
        payload = rng.randbytes(rng.randrange(0, 1200))
        res = prog.test_run(Ether() / ip / UDP(sport=rng.randrange(1, 65536), dport=53) / payload)
        assert res.verdict == "XDP_PASS"
        assert res.packet[UDP].dport == 5353
        assert res.packet[UDP].chksum == scapy_checksum(res.packet)
        assert [(c.layer, c.field) for c in res.diff] == [("UDP", "dport"), ("UDP", "chksum")]


def test_port_rewrite_keeps_no_checksum_and_sends_a_computed_zero_as_ffff(load):
    prog = load("lesson04_port_rewrite.c")
    out = prog.test_run(Ether() / v4() / UDP(dport=53, chksum=0) / b"x").packet[UDP]
    assert (out.dport, out.chksum) == (5353, 0)
    # A payload word equal to the checksum of the rewritten datagram with a zero word makes the
    # rewritten datagram's one's complement sum 0xffff: its checksum computes to 0.
    word = scapy_checksum(Ether() / v4() / UDP(sport=40000, dport=5353) / b"\0\0")
    res = prog.test_run(Ether() / v4() / UDP(sport=40000, dport=53) / word.to_bytes(2, "big"))
    assert res.packet[UDP].chksum == 0xFFFF


@pytest.mark.parametrize("frame", [
    Ether() / v4() / UDP(dport=80), Ether() / v4() / TCP(dport=53), Ether() / v4() / ICMP(),
    Ether() / v6() / UDP(dport=54), Ether() / v4(frag=3) / UDP(dport=53), Ether() / ARP(),
    Ether() / v6() / IPv6ExtHdrFragment(offset=2) / UDP(dport=53),
    bytes(Ether() / v4() / UDP(dport=53))[:40]], ids=lambda f: f.summary() if hasattr(f, "summary") else "truncated")
def test_port_rewrite_leaves_everything_else_alone(load, frame):
    res = load("lesson04_port_rewrite.c").test_run(frame)
    assert res.verdict == "XDP_PASS" and res.output_bytes == res.input_bytes


def test_port_rewrite_ports_from_cflags(load):
    prog = load("lesson04_port_rewrite.c", "-DFROM_PORT=7", "-DTO_PORT=9")
    assert prog.test_run(Ether() / v4() / UDP(dport=7)).packet[UDP].dport == 9
    assert prog.test_run(Ether() / v4() / UDP(dport=53)).packet[UDP].dport == 53


def test_port_rewrite_delivers_real_datagrams_to_the_new_port(pair):
    prog = pair.load("lesson04_port_rewrite.c")
    prog.attach(pair.server)
    sink = UdpListener(pair.server, 5353)
    before = snmp(pair.server)
    payloads = [f"query {i}".encode() for i in range(8)]
    pair.client.send([IP(dst=pair.server.ip) / UDP(sport=40000, dport=53) / p for p in payloads])
    pair.client.send(IPv6(dst=pair.server.ip6) / UDP(sport=40001, dport=53) / b"six", count=2)
    got = sink.receive(10)
    assert [d.payload for d in got] == payloads + [b"six", b"six"]
    assert {(d.source, d.sport) for d in got} == {(pair.client.ip, 40000), (pair.client.ip6, 40001)}
    counted = snmp(pair.server) - before
    assert counted["UdpInDatagrams"] == 8 and counted["Udp6InDatagrams"] == 2
    assert "UdpInCsumErrors" not in counted and "Udp6InCsumErrors" not in counted
    assert prog.maps["rewritten"].snapshot() == {0: 8, 1: 2}


def test_port_rewrite_without_checksum_update_is_dropped_by_the_receiver(pair):
    """What lesson 04 says the update is for: without it the server's kernel drops the datagram."""
    source = (xdplab.program.BPF_DIR / "lesson04_port_rewrite.c").read_text()
    assert "if (udph->check) {" in source
    prog = pair.load(source.replace("if (udph->check) {", "if (0) {"))
    prog.attach(pair.server)
    sink = UdpListener(pair.server, 5353)
    before = snmp(pair.server)
    pair.client.send(IP(dst=pair.server.ip) / UDP(dport=53) / b"x", count=3)
    assert sink.receive(timeout=0.3) == []
    assert (snmp(pair.server) - before)["UdpInCsumErrors"] == 3


# --- the veth rule, as lesson 04 shows it ------------------------------------------------------

def test_xdp_tx_into_a_veth_without_program_is_dropped_and_counted_at_the_peer(pair):
    echo = pair.load("xdp_icmp_echo.c")
    echo.attach(pair.server, fix_veth=False)
    assert pair.client.iface().xdp().mode is None
    before = link_stats(pair.client.iface())["rx_dropped"]
    lost = pair.client.ping(pair.server, count=3, interval=0.05, timeout=0.3)
    assert lost.received == 0
    assert link_stats(pair.client.iface())["rx_dropped"] - before == 3
    assert echo.maps["echo_replies"].snapshot()[0] == 3
    att = echo.attach(pair.server)
    assert att.notes and pair.client.iface().xdp().mode == "native"
    stack = snmp(pair.server)
    assert pair.client.ping(pair.server, count=3, interval=0.05).received == 3
    assert "IcmpInEchos" not in snmp(pair.server) - stack


# --- xdplab.listener and xdplab.counters -------------------------------------------------------

def test_listener_receives_ipv4_and_ipv6_and_closes_with_the_lab():
    with xdplab.Lab.pair() as lab:
        sink = UdpListener(lab.server, 7000)
        lab.client.send(IP(dst=lab.server.ip) / UDP(sport=1234, dport=7000) / b"four")
        lab.client.send(IPv6(dst=lab.server.ip6) / UDP(sport=1235, dport=7000) / b"six")
        got = sink.receive(2)
        assert got == [(b"four", lab.client.ip, 1234), (b"six", lab.client.ip6, 1235)]
        assert sink.receive(timeout=0.1) == []
        with pytest.raises(xdplab.LabError, match="cannot listen on UDP port 7000"):
            UdpListener(lab.server, 7000)
        with pytest.raises(xdplab.LabError, match="port must be"):
            UdpListener(lab.server, 0)
    assert sink.sock is None
    with pytest.raises(xdplab.LabError, match="closed"):
        sink.receive()


def test_counters_read_the_hosts_own_stack(pair):
    s0, c0 = snmp(pair.server), link_stats(pair.client.iface())
    assert {"IcmpInEchos", "UdpInDatagrams", "IpInReceives", "Icmp6InEchos", "Udp6InDatagrams"} <= set(s0)
    assert pair.client.ping(pair.server, count=2, interval=0.05).received == 2
    assert (snmp(pair.server) - s0)["IcmpInEchos"] == 2
    moved = link_stats(pair.client.iface()) - c0
    assert moved["tx_packets"] >= 2 and moved["rx_packets"] >= 2      # (and any IPv6 chatter)
    assert isinstance(moved, Counts)
    with pytest.raises(xdplab.LabError, match="lab interface"):
        link_stats("eth0")
