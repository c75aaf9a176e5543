"""The programs of lessons 03 and 04 and the helpers they prove things with: lesson03_ethertypes.c
(rejected without its bounds check, at the read), lesson03_filter_stats.c (decides exactly as
xdp_filter.c, counts by packet), lesson04_port_rewrite.c (checksums as scapy computes them, real
datagrams delivered), xdplab.listener.UdpListener and xdplab.counters; and the veth rule as
lesson 04 shows it (XDP_TX into a veth without a program: dropped, counted at the peer)."""
import ipaddress
import random

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (ICMPv6EchoRequest, ICMPv6ND_NS, IPv6, IPv6ExtHdrDestOpt,
                                IPv6ExtHdrFragment, IPv6ExtHdrHopByHop)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether


import xdplab
from xdplab.counters import Counts, driver_stats, link_stats, snmp
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

def ext_chain(n):
    """n IPv6 extension headers: hop-by-hop, then destination options."""
    chain = IPv6ExtHdrHopByHop()
    for _ in range(n - 1):
        chain = chain / IPv6ExtHdrDestOpt()
    return chain


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
    "ports cut": bytes(Ether() / v4() / UDP(dport=53))[:36],
    "ip ihl 4": bytes(Ether() / v4(ihl=4) / UDP(dport=53)),
    "first ipv4 fragment, 8 bytes of tcp 53": Ether() / v4(flags="MF", proto=6) / bytes(TCP(dport=53))[:8],
    "first ipv4 fragment, 2 bytes of tcp": Ether() / v4(flags="MF", proto=6) / bytes(TCP(dport=80))[:2],
    "first ipv6 fragment, 2 bytes of udp": Ether() / v6() / IPv6ExtHdrFragment(offset=0, m=1, nh=17) / b"\x9c\x40",
    "three priority tags udp 80": Ether() / Dot1AD(vlan=0) / Dot1Q(vlan=0) / Dot1Q(vlan=0) / v4() / UDP(dport=80),
    "ipv6 seven ext headers udp 80": Ether() / v6() / ext_chain(7) / UDP(dport=80),
    "icmp fragmentation needed": Ether() / v4() / ICMP(type=3, code=4) / v4(src=IP_S, dst=IP_C) / UDP(),
    "icmp time exceeded": Ether() / v4() / ICMP(type=11) / v4(src=IP_S, dst=IP_C) / UDP(),
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
                 "truncated ip", "icmp fragmentation needed", "first ipv4 fragment, 2 bytes of tcp",
                 "three priority tags udp 80", "ipv6 seven ext headers udp 80"):
        stats.test_run(FRAMES[name])
    assert stats.maps["decisions"].snapshot() == {
        ("XDP_DROP", 4, "UDP", 53): 3,          # two untagged, one behind an 802.1Q tag
        ("XDP_PASS", 4, "TCP", 80): 1,
        ("XDP_DROP", 4, "ICMP", 0): 1,          # the echo request
        ("XDP_PASS", 4, "ICMP", 0): 1,          # fragmentation needed
        ("XDP_DROP", 6, "UDP", 53): 1,
        ("XDP_PASS", 0, 0, 0): 1,               # ARP: not IP
        ("XDP_PASS", 4, 0, 0): 1,               # truncated IPv4 header: protocol unknown
        ("XDP_DROP", 4, "TCP", 0): 1,           # no room for the ports: port unknown
        ("XDP_DROP", 0, 0, 0): 1,               # a third VLAN tag: not looked behind
        ("XDP_DROP", 6, 0, 0): 1,               # a seventh extension header: protocol unknown
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
    # the addresses it answers for, as lesson 04 writes them; the bytes are the packets' own
    echo.maps["host_addrs"][0] = {"ipv4": pair.server.ip, "ipv6": pair.server.ip6}
    assert bytes(echo.maps["host_addrs"].table[0]) == (ipaddress.ip_address(pair.server.ip).packed
                                                       + ipaddress.ip_address(pair.server.ip6).packed)
    echo.attach(pair.server, fix_veth=False)
    assert pair.client.iface().xdp().mode is None
    before = link_stats(pair.client.iface())["rx_dropped"]
    driver = driver_stats(pair.server.iface())
    lost = pair.client.ping(pair.server, count=3, interval=0.05, timeout=0.3)
    assert lost.received == 0
    assert link_stats(pair.client.iface())["rx_dropped"] - before == 3
    # the server's veth ran the program on each request (its driver counters, ethtool -S)
    assert driver_stats(pair.server.iface())["rx_queue_0_xdp_packets"] - \
        driver["rx_queue_0_xdp_packets"] == 3
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


# --- the lessons under "Run All", then in use --------------------------------------------------
# Each lesson runs top to bottom as Run All runs it (no cell closes the lab), then the test plays
# with the panels the lesson shows, and runs the proof cells again: they must still pass, since
# each proves what its own traffic did, whatever the panel added to the same maps.

def run_and_continue(name, extra):
    """Run notebooks/<name> top to bottom on the xdplab kernel, then each step of `extra`: a cell
    id of the notebook (run again) or source for a new cell. Returns the outputs' text."""
    from notebook_session import NotebookSession
    from test_notebooks import ROOT

    with NotebookSession(ROOT / "notebooks" / name) as nb:
        ids = {c.get("id") for c in nb.cells}
        return [nb.again(step) if step in ids else nb.run(step) for step in extra]


def test_lesson_03_proofs_pass_again_after_the_panel_and_the_explorer():
    texts = run_and_continue("03-parsing.ipynb", [
        # the panel sends what the proof counts too: UDP to 53 and 80 from the client, and pings
        """panel = xdplab.TrafficPanel(lab, stats)
panel.count.value = 40
sent = [panel.send()]
panel.port.value = 80
sent.append(panel.send())
panel.protocol.value = "ICMP"
sent.append(panel.send())
total = stats.maps["decisions"].snapshot()
assert total[("XDP_DROP", 4, "UDP", 53)] == N + 40 and total[("XDP_PASS", 4, "UDP", 80)] == M + 40, total
print("panel", [s.report.sent for s in sent])""",
        "dc962ce2",                                   # the wire proof, run again: it still passes
        "3b204b48", "dc962ce2",                       # the mix sent again, and its proof
        # the verdict explorer, still there after Run All
        """ex = VerdictExplorer(drop_dns)
verdicts = {}
for preset in ("UDP 53", "VLAN-tagged UDP", "truncated", "ICMP echo"):
    ex.apply(preset)
    verdicts[preset] = ex.run().verdict
print(verdicts)""",
    ])
    assert "panel [40, 40, 40]" in texts[0], texts[0]
    assert texts[1].startswith("dropped 30 of 30 to port 53") and texts[3].startswith("dropped 30"), texts
    assert "'UDP 53': 'XDP_DROP'" in texts[4] and "'VLAN-tagged UDP': 'XDP_DROP'" in texts[4], texts[4]
    assert "'truncated': 'XDP_PASS'" in texts[4] and "'ICMP echo': 'XDP_DROP'" in texts[4], texts[4]


def test_lesson_04_proofs_pass_again_after_the_panel():
    texts = run_and_continue("04-rewriting-and-tx.ipynb", [
        # the panel pings the responder (echo_replies grows) and sends UDP to the listener's port
        """replies = echo.maps["echo_replies"].snapshot()
sent = [panel.send()]
panel.protocol.value, panel.port.value = "UDP", 5353
sent.append(panel.send())
grew = echo.maps["echo_replies"].snapshot()[0] - replies[0]
assert grew == sent[0].report.sent == 50, (grew, sent)
print("panel", grew, len(sink.receive(timeout=0.3)))""",
        "94f0d315", "6685df6c", "e4d36388", "231111f3", "b346e887", "7e2d4b06",   # every proof
    ])
    assert texts[0].startswith("panel 50 50"), texts[0]
    assert "checksums valid" in texts[3] and "recomputed by scapy from 10 captured" in texts[3], texts[3]
    assert "IPv4 and 5/5 IPv6 pings answered by XDP" in texts[4], texts[4]
