"""Host.send: packets built with scapy, sent by AF_PACKET or the live-frame injector, and counted
exactly by a real XDP program on the receiving host."""
import os
import socket
import time
from ipaddress import ip_address

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

import xdplab
from xdplab import LabError, netns, traffic
from xdplab.kernel import bpf as kernel

PORT = 7777
ACTIONS = ["XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX"]

# Counts UDP packets to PORT (IPv4 or IPv6) under the action it returns for them (-DVERDICT);
# everything else passes uncounted, so stray IPv6 multicast cannot spoil an exact count.
COUNT_PORT = r"""
#include <uapi/linux/if_ether.h>
#include <uapi/linux/in.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/ipv6.h>
#include <uapi/linux/udp.h>
BPF_ARRAY(counters, u64, 5);
int xdp_count_port(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct udphdr *udp;
    if ((void *)(eth + 1) > end)
        return XDP_PASS;
    if (eth->h_proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = (void *)(eth + 1);
        if ((void *)(ip + 1) > end || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
            return XDP_PASS;
        udp = (void *)(ip + 1);
    } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = (void *)(eth + 1);
        if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_UDP)
            return XDP_PASS;
        udp = (void *)(ip6 + 1);
    } else {
        return XDP_PASS;
    }
    if ((void *)(udp + 1) > end || udp->dest != bpf_htons(PORT))
        return XDP_PASS;
    u32 key = VERDICT;
    u64 *v = counters.lookup(&key);
    if (v)
        __sync_fetch_and_add(v, 1);
    return VERDICT;
}
"""


def counter(lab, verdict="XDP_DROP"):
    """A counting program of `lab` (compiled once per lab and verdict: bcc takes seconds)."""
    cache = lab.__dict__.setdefault("_test_counters", {})
    if verdict not in cache:
        cache[verdict] = lab.load(COUNT_PORT, cflags=[f"-DVERDICT={verdict}", f"-DPORT={PORT}"])
    return cache[verdict]


def counted(prog, action):
    snap = prog.maps["counters"].snapshot()
    return snap.get(action, snap.get(ACTIONS.index(action), 0))


class Arrivals:
    """How many packets `prog` counts under `action` from now on."""

    def __init__(self, prog, action="XDP_DROP"):
        self.prog, self.action = prog, action
        self.base = counted(prog, action)

    def settle(self, expect, timeout=5.0):
        """The count once it reached `expect` (or stopped short at the timeout), read again a
        moment later so a surplus shows too."""
        deadline = time.monotonic() + timeout
        while counted(self.prog, self.action) - self.base < expect and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        return counted(self.prog, self.action) - self.base


def udp(dst, payload=b"xdplab"):
    return IP(dst=dst) / UDP(sport=40000, dport=PORT) / Raw(payload)


def gro(host, ifname="eth0"):
    return "generic-receive-offload: on" in host.run(["ethtool", "-k", ifname]).stdout


def detach_all(lab):
    for prog in lab.programs:
        prog.detach()


@pytest.fixture(scope="module")
def lab():
    """client — server, shared by the tests of this module; programs detached after each."""
    with xdplab.Lab.pair() as lab:
        yield lab


@pytest.fixture
def pair(lab):
    yield lab
    detach_all(lab)


@pytest.fixture(scope="module")
def triangle_lab():
    with xdplab.Lab.chain("client", "router", "server") as lab:
        yield lab


@pytest.fixture
def triangle(triangle_lab):
    """client — router — server; the router forwards."""
    yield triangle_lab
    detach_all(triangle_lab)


@pytest.mark.parametrize("count", [1, 10, 999])
def test_small_counts_go_by_af_packet_and_all_arrive(pair, count):
    prog = counter(pair)
    prog.attach(pair.server)
    got = Arrivals(prog)
    report = pair.client.send(udp(pair.server.ip), count=count)
    assert (report.sent, report.method, report.iface) == (count, "af_packet", "client:eth0")
    assert report.seconds > 0 and report.rate_pps == report.rate > 0
    assert got.settle(count) == count


def test_list_of_packets_ipv4_and_ipv6(pair):
    prog = counter(pair)
    prog.attach(pair.server)
    got = Arrivals(prog)
    packets = [udp(pair.server.ip), IPv6(dst=pair.server.ip6) / UDP(dport=PORT),
               Ether() / IP(dst=pair.server.ip) / UDP(dport=PORT)]
    report = pair.client.send(packets, count=5)
    assert report.sent == 15 and report.method == "af_packet"
    assert got.settle(15) == 15


@pytest.mark.parametrize("verdict", [pytest.param("XDP_DROP", marks=pytest.mark.kernel), "XDP_PASS"])
def test_fast_injector_delivers_every_packet(pair, verdict):
    n = 200_000
    prog = counter(pair, verdict)
    prog.attach(pair.server, mode="native")
    got = Arrivals(prog, verdict)
    if not traffic.live_frames_available(pair.client.ns):
        # Linux < 5.18: send falls back to AF_PACKET and says why (fewer frames: it is slower)
        n = 2000
        report = pair.client.send(udp(pair.server.ip), count=n)
        assert (report.sent, report.method) == (n, "af_packet")
        assert any("no BPF_F_TEST_XDP_LIVE_FRAMES" in note for note in report.notes), report.notes
        assert got.settle(n) == n
        return
    report = pair.client.send(udp(pair.server.ip), count=n)
    assert (report.sent, report.method) == (n, "live_frames")
    # a native XDP program gives the veth peer NAPI: nothing to fix. Every frame arrives, or the
    # receiving ring was full (a busy machine) and the report counts it and says so
    assert not report.notes if not report.lost else "ring of server:eth0 was full" in report.notes[0]
    assert "200000 packets" in repr(report) and "XDP live frames" in repr(report)
    assert got.settle(n - report.lost) == n - report.lost


def test_frames_the_receiver_refuses_are_counted_as_lost(pair):
    """A frame longer than the receiving veth's MTU allows is dropped by it before its XDP
    program: the report counts every one (the sender's xdp_xmit_errors) and says why."""
    n = 3000
    prog = counter(pair)
    prog.attach(pair.server, mode="native")
    got = Arrivals(prog)
    pair.server.run(["ip", "link", "set", "dev", "eth0", "mtu", "600"])
    try:
        report = pair.client.send(udp(pair.server.ip, payload=b"x" * 900), count=n)
        short = pair.client.send(udp(pair.server.ip, payload=b"x" * 500), count=n)
    finally:
        pair.server.run(["ip", "link", "set", "dev", "eth0", "mtu", "1500"])
    assert (report.method, report.sent, report.lost) == ("live_frames", n, n)
    assert "(3,000 dropped by the receiver)" in repr(report)
    assert "942-byte frames are longer than server:eth0's MTU of 600 allows" in report.notes[-1]
    assert short.sent == n and not any("longer than" in note for note in short.notes)  # 542 fit
    assert got.settle(n - short.lost) == n - short.lost


def test_af_packet_method_on_request(pair):
    n = 5000
    prog = counter(pair)
    prog.attach(pair.server)
    got = Arrivals(prog)
    report = traffic.send(pair.client, udp(pair.server.ip), count=n, method="af_packet")
    assert (report.sent, report.method) == (n, "af_packet")
    assert got.settle(n) == n


def test_veth_napi_trap_is_real_and_send_fixes_it(pair):
    """Frames XDP transmits into a veth vanish unless the peer has NAPI (native XDP or GRO):
    with only a generic-mode program the peer has neither, so send() switches GRO on."""
    n = 50_000
    c, srv = pair.client, pair.server
    srv.iface().ethtool("gro", "off")
    prog = counter(pair)
    prog.attach(srv, mode="generic")
    # the trap: the injector's frames, sent the raw way, never reach the generic program
    frame = bytes(Ether(src=c.mac, dst=srv.mac) / IP(src=c.ip, dst=srv.ip)
                  / UDP(sport=40000, dport=PORT) / Raw(b"xdplab"))
    fd = kernel.load_xdp_bytecode(kernel.xdp_return(ACTIONS.index("XDP_TX")), "test_tx")
    got = Arrivals(prog)
    try:
        with netns.enter(c.ns):
            ctx = kernel.XdpMd.for_packet(len(frame), ingress_ifindex=c.iface().ifindex)
            kernel.prog_test_run(fd, frame, repeat=1000, ctx_in=bytes(ctx),
                                 flags=kernel.BPF_F_TEST_XDP_LIVE_FRAMES)
    finally:
        os.close(fd)
    assert got.settle(1000, timeout=0.5) == 0
    # send() notices and switches GRO on; now every frame arrives
    got = Arrivals(prog)
    report = c.send(udp(srv.ip), count=n)
    assert report.method == "live_frames" and report.sent == n
    assert any("GRO on at server:eth0" in note for note in report.notes)
    assert "note: switched GRO on" in repr(report)
    assert gro(srv)
    assert got.settle(n - report.lost) == n - report.lost


def test_shaped_link_keeps_af_packet():
    with xdplab.Lab.pair(rate="10mbit") as lab:
        prog = counter(lab)
        prog.attach(lab.server)
        got = Arrivals(prog)
        report = lab.client.send(udp(lab.server.ip), count=1000)
        assert report.method == "af_packet" and report.sent == 1000
        assert any("tbf qdisc" in note for note in report.notes)
        assert got.settle(1000) == 1000
        # asked for explicitly, the injector still works, and says that it went past the qdisc
        got = Arrivals(prog)
        report = traffic.send(lab.client, udp(lab.server.ip), count=2000, method="live_frames")
        assert report.method == "live_frames" and report.sent == 2000
        assert any("skipped the tbf qdisc of client:eth0" in note for note in report.notes)
        assert got.settle(2000 - report.lost) == 2000 - report.lost


def test_frames_are_completed_for_the_link(triangle):
    """Ethernet added with the link's MACs (the next hop for a far address), the sending
    interface's addresses as sources, and the router forwards it to the server."""
    c, r, s = triangle.client, triangle.router, triangle.server
    with netns.enter(r.ns):
        sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL
    try:
        sniffer.bind(("eth0", 0))
        sniffer.settimeout(2)
        prog = counter(triangle)
        prog.attach(s)
        got = Arrivals(prog)
        c.send(udp(s.ip))
        c.send(IPv6(dst=s.ip6) / UDP(dport=PORT))
        seen = []
        while len(seen) < 2:
            frame = Ether(sniffer.recv(4096))
            if UDP in frame and frame[UDP].dport == PORT:
                seen.append(frame)
        v4, v6 = seen
        assert (v4.src, v4.dst) == (c.mac, r.iface("eth0").mac) == (v6.src, v6.dst)
        assert (v4[IP].src, v4[IP].dst) == (c.ip, s.ip)
        assert [ip_address(a) for a in (v6[IPv6].src, v6[IPv6].dst)] == [ip_address(c.ip6),
                                                                         ip_address(s.ip6)]
        assert got.settle(2) == 2       # forwarded by the router to the server
    finally:
        sniffer.close()


def test_interface_chosen_by_route_or_by_name(triangle):
    c, r, s = triangle.client, triangle.router, triangle.server
    prog = counter(triangle)
    prog.attach(c)
    prog.attach(s)
    at_client, at_server = Arrivals(prog), None
    assert r.send(udp(c.ip)).iface == "router:eth0"
    assert at_client.settle(1) == 1
    prog.detach(c)
    at_server = Arrivals(prog)
    assert r.send(udp(s.ip)).iface == "router:eth1"
    assert r.send(Ether() / ARP(pdst=s.ip)).iface == "router:eth1"
    # chosen by name, Interface or the host at the other end: out of eth1 although the
    # address is the client's (the server's XDP sees them: same port, dropped and counted)
    for which in ("eth1", r.iface("eth1"), s):
        assert r.send(udp(c.ip), iface=which).iface == "router:eth1"
    with pytest.raises(LabError, match="belongs to host 'client'"):
        r.send(udp(c.ip), iface=c.iface())
    assert at_server.settle(4) == 4


@pytest.mark.parametrize("packets, message", [
    ([], "empty"),
    (b"", "empty"),
    (b"\x02\x00", "shorter than an Ethernet header"),
    ("hello", "cannot send a str"),
    (IP(dst="10.11.0.2") / UDP() / Raw(b"x" * 1500), "more than fit through client:eth0: MTU 1500"),
    (IP(dst="192.0.2.1") / UDP(), "no route to 192.0.2.1"),
    (IP(dst="10.11.0.1") / UDP(), "address of 'client' itself"),
    (IP() / UDP(), "no destination address"),
])
def test_bad_sends_give_lab_errors(pair, packets, message):
    with pytest.raises(LabError, match=message) as err:
        pair.client.send(packets)
    assert str(err.value)


def test_bad_count_iface_and_method(pair):
    for count in (0, -5, 2.5, True):
        with pytest.raises(LabError, match="count"):
            pair.client.send(udp(pair.server.ip), count=count)
    with pytest.raises(LabError, match="no interface 'eth7'"):
        pair.client.send(udp(pair.server.ip), iface="eth7")
    with pytest.raises(LabError, match="unknown send method"):
        traffic.send(pair.client, udp(pair.server.ip), method="carrier-pigeon")


def test_sending_from_a_closed_lab():
    lab = xdplab.Lab.pair()
    client, server_ip = lab.client, lab.server.ip
    lab.close()
    with pytest.raises(xdplab.ClosedError, match="closed") as err:
        client.send(udp(server_ip))
    assert "Lab()" in err.value.hint


def test_stream_keeps_sending_until_stopped_and_every_packet_is_counted(pair):
    prog = counter(pair)
    prog.attach(pair.server)
    arrivals = Arrivals(prog)
    stream = pair.client.stream(udp(pair.server.ip), seconds=None, burst=20_000)
    deadline = time.monotonic() + 30
    while stream.sent < 100_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stream.running
    stream.stop()
    assert not stream.running and stream.error is None
    assert arrivals.settle(stream.sent - stream.lost) == stream.sent - stream.lost
    detach_all(pair)


def test_stream_paced_and_stopped_by_lab_close():
    lab = xdplab.Lab.pair()
    stream = lab.client.stream(udp(lab.server.ip), seconds=None, rate=200)
    time.sleep(0.5)
    lab.close()
    assert not stream.running and stream.error is None
    assert stream.sent >= 1 and stream.reports[0].method == "af_packet"
    with pytest.raises(LabError, match="closed"):
        lab.client.stream(udp(lab.server.ip))


def test_injector_is_not_used_through_a_router_where_its_frames_would_be_lost(triangle):
    """Frames the injector sends via a router are lost after the first batch (Linux 6.18), so
    `auto` sends those with AF_PACKET, says why, and every one arrives."""
    lab = triangle
    prog = counter(lab)
    prog.attach(lab.server)
    arrivals = Arrivals(prog)
    report = lab.client.send(udp(lab.server.ip), count=3000)
    assert report.method == "af_packet" and "router" in report.notes[0]
    assert arrivals.settle(3000) == 3000
