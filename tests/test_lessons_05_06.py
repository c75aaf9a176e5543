"""Lessons 05 (redirecting) and 06 (debugging): their bpf/ programs, xdplab.forwarding and
xdplab.capture, on real labs with real packets.

Programs that include xdplab_capture.h are loaded through capture.prepare() here, so these tests
do not depend on Program doing it; test_lab_load_prepares_capture_programs checks that it does.
"""
import errno
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.utils import rdpcap

import xdplab
from xdplab.capture import Capture, prepare
from xdplab.events import EventLog, TraceLog
from xdplab.forwarding import devmap_delete, devmap_set, fib_results, measure, port_set, test_run_on
from xdplab.program import BPF_DIR


@pytest.fixture(autouse=True)
def read_trace():
    """Read the "debug:" lines lesson06_debug.c prints, so that none is left in the machine's trace
    buffer for a later reader (a notebook counting its own lines)."""
    trace = TraceLog(prefix="debug:")
    yield trace
    time.sleep(0.3)
    trace.close()


def load(lab, name, **kw):
    return lab.load(prepare((BPF_DIR / name).read_text()), name=Path(name).stem, **kw)


def wire(lab):
    c, r, s = lab["client"], lab["router"], lab["server"]
    prog = lab.load("lesson05_redirect.c")
    tx_port, out_slot = prog.maps["tx_port"], prog.maps["out_slot"]
    devmap_set(tx_port, 0, r.iface(c))
    devmap_set(tx_port, 1, r.iface(s))
    port_set(out_slot, r.iface(c), 1)
    port_set(out_slot, r.iface(s), 0)
    return prog, tx_port


# -- lesson 05: the wire, the devmap, the veth trap -------------------------------------------------

@pytest.mark.kernel
def test_wire_redirects_between_router_ports_and_the_veth_trap(line):
    c, r, s = line["client"], line["router"], line["server"]
    prog, tx_port = wire(line)
    assert tx_port.snapshot() == {0: r.iface(c).ifindex, 1: r.iface(s).ifindex}
    assert prog.maps["out_slot"].snapshot() == {r.iface(c).ifindex: 1, r.iface(s).ifindex: 0}
    assert tx_port.max_entries == 2            # a slot per port, however large the indexes are
    prog.attach(r.iface(c), fix_veth=False)
    prog.attach(r.iface(s), fix_veth=False)
    errors = xdplab.Tracepoints(line)
    frame = Ether(dst=s.mac) / IP(dst=s.ip) / UDP(dport=9) / b"wire"
    things = (r.iface(c), s.iface(), prog.maps["counters"], errors)

    with measure(r.iface(s), *things) as trap:         # the server's veth has no NAPI
        c.send(frame, count=50)
    assert trap["counters"]["XDP_REDIRECT"].packets == 50
    assert "rx_packets" not in trap[s.iface()]
    events = {(e.kind, e.err): n for e, n in trap["tracepoints"].items()}
    if xdplab.probe().redirect_errors.value == "enqueue":        # Linux 6.3+
        assert trap[r.iface(c)]["rx_dropped"] == 50 and events == {("redirect_err", -95): 50}, trap
    else:                                                         # before: dropped at flush
        assert trap[r.iface(s)]["tx_dropped"] == 50 and events == {("devmap_xmit", -6): 50}, trap

    att = prog.attach(r.iface(c))                      # fix_veth: GRO on at both peers
    if xdplab.probe().gro_takes_redirects:
        assert any("GRO" in n for n in att.notes) and s.iface().gro() and c.iface().gro()
    else:                                              # before 5.13: XDP_PASS programs instead
        assert any("XDP_PASS" in n for n in att.notes) and s.iface().xdp().mode == "native"
    with measure(*things) as fixed:
        c.send(frame, count=50)
    assert fixed[s.iface()]["rx_packets"] == 50
    assert "rx_dropped" not in fixed[r.iface(c)] and not fixed["tracepoints"]


def test_a_native_program_on_the_peer_also_fixes_the_trap(line):
    c, r, s = line["client"], line["router"], line["server"]
    prog, _ = wire(line)
    prog.attach(r.iface(c), fix_veth=False)
    line.load("xdp_pass.c").attach(s)
    assert not s.iface().gro()
    with measure(s.iface()) as seen:
        c.send(Ether(dst=s.mac) / IP(dst=s.ip) / UDP(dport=9), count=20)
    assert seen[s.iface()]["rx_packets"] == 20


def test_an_empty_devmap_slot_aborts(line):
    c, r, s = line["client"], line["router"], line["server"]
    prog, tx_port = wire(line)
    devmap_delete(tx_port, 1)                  # where frames arriving on eth0 leave
    assert tx_port.snapshot() == {0: r.iface(c).ifindex}
    prog.attach(r.iface(c))
    errors = xdplab.Tracepoints(line)
    with measure(prog.maps["counters"], errors) as seen:
        c.send(Ether(dst=s.mac) / IP(dst=s.ip) / UDP(dport=9), count=5)
    assert seen["counters"]["XDP_ABORTED"].packets == 5 and "XDP_REDIRECT" not in seen["counters"]
    assert {(e.kind, e.action): n for e, n in seen["tracepoints"].items()} == \
        {("exception", "XDP_ABORTED"): 5}
    prog.maps["out_slot"].clear()              # a port the program was told nothing about
    with measure(prog.maps["counters"], s.iface()) as unknown:
        c.send(Ether(dst=s.mac) / IP(dst=s.ip) / UDP(dport=9), count=5)
    assert unknown["counters"]["XDP_PASS"].packets == 5 and "rx_packets" not in unknown[s.iface()], unknown


def test_devmap_set_explains_what_it_cannot_do(line, pair):
    r, s = line["router"], line["server"]
    prog, tx_port = wire(line)
    with pytest.raises(xdplab.LabError, match="not a devmap"):
        devmap_set(prog.maps["counters"], 0, r.iface(s))
    with pytest.raises(xdplab.LabError, match="slots 0 to 1"):
        devmap_set(tx_port, 2, r.iface(s))
    with pytest.raises(xdplab.LabError, match="slot number, not an interface"):
        devmap_set(tx_port, r.iface(s), r.iface(s))
    with pytest.raises(xdplab.LabError, match="slot number, not an interface"):
        devmap_delete(tx_port, r.iface(s))
    with pytest.raises(xdplab.LabError, match="interface of this lab"):
        devmap_set(tx_port, 1, pair.server.iface())
    with pytest.raises(xdplab.LabError, match="interface of this lab"):
        devmap_set(tx_port, 1, "eth1")
    with pytest.raises(xdplab.LabError, match="not a hash"):
        port_set(tx_port, r.iface(s), 0)
    with pytest.raises(xdplab.LabError, match="interface of this lab"):
        port_set(prog.maps["out_slot"], pair.server.iface(), 0)


# -- lesson 05: the router --------------------------------------------------------------------------

def test_router_forwards_with_fib_lookup_and_the_stack_sees_nothing(line):
    c, r, s = line["client"], line["router"], line["server"]
    with measure(r) as by_stack:
        assert c.ping(s, count=5, interval=0.05).received == 5
    assert by_stack[r]["IpForwDatagrams"] == 10

    prog = line.load("lesson05_router.c")
    for i in r.interfaces:
        prog.attach(i)
    with measure(c.iface(), s.iface(), prog.maps["counters"], r) as seen:
        ping = c.ping(s, count=5, interval=0.05)
        ping6 = c.ping(s, count=5, interval=0.05, ipv6=True)
    assert ping.received == ping6.received == 5
    assert ping.output.count("ttl=63") == 5 and ping6.output.count("ttl=63") == 5
    stack = seen[r]
    own = stack.get("IpOutRequests", 0) + stack.get("Ip6OutRequests", 0)
    arrived = seen[c.iface()]["rx_packets"] + seen[s.iface()]["rx_packets"]
    assert seen["counters"]["XDP_REDIRECT"].packets == arrived - own == 20
    assert not {"IpInReceives", "IpForwDatagrams", "Ip6InReceives", "Ip6OutForwDatagrams"} & set(stack)
    assert fib_results(prog) == {"SUCCESS": 20}


def test_router_rewrites_like_a_router(line):
    c, r, s = line["client"], line["router"], line["server"]
    prog = line.load("lesson05_router.c")
    ingress = r.iface(c)
    res = test_run_on(prog, ingress, Ether(src=c.mac, dst=ingress.mac) / IP(src=c.ip, dst=s.ip, ttl=64) / ICMP())
    assert res.verdict == "XDP_REDIRECT"
    assert {(ch.layer, ch.field) for ch in res.diff} == {("Ether", "dst"), ("Ether", "src"), ("IP", "ttl"),
                                                        ("IP", "chksum")}
    assert (res.packet.src, res.packet.dst, res.packet[IP].ttl) == (r.iface(s).mac, s.mac, 63)
    fresh = res.packet.copy()
    del fresh[IP].chksum
    assert Ether(bytes(fresh))[IP].chksum == res.packet[IP].chksum

    res6 = test_run_on(prog, ingress, Ether(src=c.mac, dst=ingress.mac) / IPv6(src=c.ip6, dst=s.ip6, hlim=64) / UDP())
    assert res6.verdict == "XDP_REDIRECT" and res6.packet[IPv6].hlim == 63
    assert res6.packet.dst == s.mac


def test_router_passes_what_it_cannot_do(line):
    c, r, s = line["client"], line["router"], line["server"]
    prog = line.load("lesson05_router.c")
    ingress = r.iface(c)

    def run(pkt):
        return test_run_on(prog, ingress, Ether(src=c.mac, dst=ingress.mac) / pkt).verdict

    assert run(IP(src=c.ip, dst=ingress.ip) / ICMP()) == "XDP_PASS"              # for the router
    assert run(IP(src=c.ip, dst=s.ip, ttl=1) / ICMP()) == "XDP_PASS"             # about to expire
    assert run(ARP(pdst=ingress.ip)) == "XDP_PASS"
    assert test_run_on(prog, ingress, Ether(dst=ingress.mac) / Dot1Q(vlan=5) / IP(src=c.ip, dst=s.ip)
                       / ICMP()).verdict == "XDP_PASS"
    assert fib_results(prog) == {"NOT_FWDED": 1}

    r.run(["ip", "route", "add", "blackhole", f"{s.ip}/32"])
    assert run(IP(src=c.ip, dst=s.ip) / ICMP()) == "XDP_DROP"
    r.run(["ip", "route", "del", "blackhole", f"{s.ip}/32"])
    assert "BLACKHOLE" in fib_results(prog)

    r.run(["ip", "neigh", "del", s.ip, "dev", r.iface(s).name])
    assert run(IP(src=c.ip, dst=s.ip) / ICMP()) == "XDP_PASS"
    assert "NO_NEIGH" in fib_results(prog)


def test_router_hands_an_unknown_neighbour_to_the_stack_then_forwards_again(line):
    c, r, s = line["client"], line["router"], line["server"]
    prog = line.load("lesson05_router.c")
    for i in r.interfaces:
        prog.attach(i)
    r.run(["ip", "neigh", "del", s.ip, "dev", r.iface(s).name])
    assert c.ping(s, count=4, interval=0.1).received == 4       # the stack resolves it with ARP
    answers = fib_results(prog)
    assert answers.get("NO_NEIGH", 0) >= 1 and answers.get("SUCCESS", 0) >= 1, answers


def ipv6_over_by_its_header(c, r, s, mtu=1280):
    """An IPv6 frame to the server whose payload (payload_len) fits the router's egress MTU `mtu`
    while the packet, with its 40-byte header, does not."""
    frame = Ether(src=c.mac, dst=r.iface(c).mac) / IPv6(src=c.ip6, dst=s.ip6) / UDP(sport=4000, dport=9)
    frame = Ether(bytes(frame / (b"b" * (mtu + 20 - len(frame[IPv6])))))
    assert frame[IPv6].plen <= mtu < len(frame[IPv6]), frame
    return frame


def test_router_ipv6_length_counts_the_header_so_too_big_gets_packet_too_big(line):
    c, r, s = line["client"], line["router"], line["server"]
    prog = line.load("lesson05_router.c")
    for i in r.interfaces:
        prog.attach(i)
    r.run(["ip", "link", "set", "dev", r.iface(s).name, "mtu", "1280"])
    frame = ipv6_over_by_its_header(c, r, s)
    assert test_run_on(prog, r.iface(c), frame).verdict == "XDP_PASS"
    assert fib_results(prog) == {"FRAG_NEEDED": 1}
    with measure(c, r, prog.maps["counters"]) as seen:
        c.send(frame, count=3)
    assert seen["counters"]["XDP_PASS"].packets == 3 and "XDP_REDIRECT" not in seen["counters"], seen
    assert seen[r].get("Icmp6OutPktTooBigs") == 3, seen              # the stack answered each one
    assert seen[c].get("Icmp6InPktTooBigs") == 3, seen               # and the client heard it

    # the old program (tot_len = payload_len) is told SUCCESS and redirects a frame the egress
    # veth refuses: the check above tells it from the right one
    source = (BPF_DIR / "lesson05_router.c").read_text()
    assert source.count("bpf_ntohs(ip6h->payload_len) + sizeof(*ip6h)") == 1
    old = line.load(source.replace("bpf_ntohs(ip6h->payload_len) + sizeof(*ip6h)",
                                   "bpf_ntohs(ip6h->payload_len)"), name="old_router")
    assert test_run_on(old, r.iface(c), frame).verdict == "XDP_REDIRECT"
    assert fib_results(old) == {"SUCCESS": 1}


def test_test_run_on_needs_an_interface_of_the_lab(line, pair):
    prog = line.load("lesson05_router.c")
    pkt = Ether() / IP(src="10.11.0.1", dst="10.11.1.2")
    with pytest.raises(xdplab.LabError, match="interface of this lab"):
        test_run_on(prog, pair.server.iface(), pkt)
    with pytest.raises(xdplab.LabError, match="interface of this lab"):
        test_run_on(prog, line["router"], pkt)


def test_test_run_on_says_why_it_cannot_run_before_linux_5_15(line, monkeypatch):
    """What Linux 5.10 answers (seen in its guest): EINVAL for any xdp_md context. Simulated here:
    the kernel's answer and the feature test are replaced, the rest is real."""
    from xdplab.kernel import bpf as kernel
    prog = line.load("lesson05_router.c")

    def refuse(*args, ctx_in=None, **kwargs):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    monkeypatch.setattr(kernel, "prog_test_run", refuse)
    monkeypatch.setattr(kernel, "test_run_context_supported", lambda: False)
    with pytest.raises(xdplab.LabError, match="before Linux 5.15") as e:
        test_run_on(prog, line["router"].iface(line["client"]), Ether() / IP(dst="10.11.1.2"))
    assert "router:eth0" in e.value.message and "send the packet for real" in e.value.hint
    monkeypatch.setattr(kernel, "test_run_context_supported", lambda: True)   # another EINVAL
    with pytest.raises(xdplab.LabError, match="Invalid argument"):
        test_run_on(prog, line["router"].iface(line["client"]), Ether() / IP(dst="10.11.1.2"))


def test_measure_explains_what_it_cannot_measure(pair):
    with pytest.raises(xdplab.LabError, match="cannot measure"):
        with measure("eth0"):
            pass


# -- capture --------------------------------------------------------------------------------------

CAPTURE_ALL = '#include "xdplab_capture.h"\nint xdp_cap(struct xdp_md *ctx) { return CAPTURE(ctx, XDP_PASS); }\n'


def test_prepare_appends_the_definition_once_and_keeps_line_numbers():
    plain = "int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }\n"
    assert prepare(plain) == plain
    once = prepare(CAPTURE_ALL)
    assert once.startswith(CAPTURE_ALL.rstrip()) and "perf_submit_skb" in once
    assert prepare(once) == once


def test_capture_shows_frames_with_their_verdicts_and_saves_pcap(pair, tmp_path):
    c, s = pair.client, pair.server
    prog = load(pair, "lesson06_debug.c")
    prog.attach(s)
    cap = Capture(prog)
    start = time.time()
    c.send(IP(dst=s.ip) / UDP(sport=4000, dport=9) / b"discard me", count=3)
    c.send(IP(dst=s.ip) / UDP(sport=4000, dport=53) / b"pass me", count=2)
    assert cap.wait(5, timeout=5)
    frames = [f for f in cap.packets if IP in f.packet and f.packet[IP].src == c.ip]
    assert [f.verdict for f in frames] == ["XDP_DROP"] * 3 + ["XDP_PASS"] * 2
    assert all(f.iface == "server:eth0" and not f.truncated for f in frames)
    assert [f.packet[UDP].load for f in frames] == [b"discard me"] * 3 + [b"pass me"] * 2
    assert all(start - 1 < f.time < time.time() + 1 for f in frames)
    assert cap.totals["XDP_DROP"] == 3 and "UDP" in frames[0].summary

    saved = cap.save(tmp_path / "x.pcap")
    read = subprocess.run(["tcpdump", "-Z", "root", "-nr", str(tmp_path / "x.pcap")],
                          capture_output=True, text=True)
    assert read.returncode == 0 and len(read.stdout.splitlines()) == saved == len(cap.packets)
    assert [bytes(p) for p in rdpcap(str(tmp_path / "x.pcap"))] == [f.data for f in cap.packets]

    cap.save(tmp_path / "x.pcapng")
    ng = rdpcap(str(tmp_path / "x.pcapng"))
    assert [bytes(p) for p in ng] == [f.data for f in cap.packets]
    assert [p.comments for p in ng] == [[f"{f.verdict} on {f.iface}".encode()] for f in cap.packets]
    read = subprocess.run(["tcpdump", "-Z", "root", "-nr", str(tmp_path / "x.pcapng")],
                          capture_output=True, text=True)
    assert read.returncode == 0 and len(read.stdout.splitlines()) == saved


@pytest.mark.parametrize("snaplen", [None, 64])
def test_capture_keeps_the_first_snaplen_bytes(pair, tmp_path, snaplen):
    c, s = pair.client, pair.server
    cflags = [f"-DXDPLAB_SNAPLEN={snaplen}"] if snaplen else []
    prog = pair.load(prepare(CAPTURE_ALL), cflags=cflags)
    prog.attach(s)
    cap = Capture(prog)
    c.send(IP(dst=s.ip) / UDP(dport=7) / (b"x" * 400))
    # the program captures every frame: an IPv6 multicast report may come first
    deadline = time.monotonic() + 5
    while not any(UDP in f.packet for f in cap.packets) and time.monotonic() < deadline:
        cap.wait(len(cap.packets) + 1, timeout=0.2)
    frame = next((f for f in cap.packets if UDP in f.packet), None)
    assert frame is not None, f"the datagram was not captured: {cap.packets}"
    assert frame.length == 14 + 20 + 8 + 400 and frame.truncated
    assert len(frame.data) == (snaplen or 128)
    cap.save(tmp_path / "cut.pcap")
    assert rdpcap(str(tmp_path / "cut.pcap"))[-1].wirelen == frame.length


def test_capture_shows_the_frame_as_the_program_left_it(pair):
    src = ('#include "parsing_helpers.h"\n#include "xdplab_capture.h"\n'
           "int xdp_ttl(struct xdp_md *ctx) {\n"
           "    void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;\n"
           "    struct hdr_cursor nh = { .pos = data }; struct ethhdr *eth; struct iphdr *iph;\n"
           "    if (parse_ethhdr(&nh, data_end, &eth) == bpf_htons(ETH_P_IP) && parse_iphdr(&nh, data_end, &iph) >= 0)\n"
           "        ip_decrease_ttl(iph);\n"
           "    return CAPTURE(ctx, XDP_PASS);\n}\n")
    prog = pair.load(prepare(src))
    cap = Capture(prog)
    res = prog.test_run(Ether() / IP(src=pair.client.ip, dst=pair.server.ip, ttl=64) / UDP())
    assert res.packet[IP].ttl == 63
    assert cap.wait(1, timeout=5)
    frame = cap.packets[-1]
    assert frame.packet[IP].ttl == 63 and frame.data == res.output_bytes
    assert frame.iface.startswith("ifindex ")       # a test run comes in on the caller's loopback


def test_capture_explains_a_program_without_the_header(pair):
    prog = pair.load("xdp_pass.c")
    with pytest.raises(xdplab.LabError, match="does not capture") as e:
        Capture(prog)
    assert "xdplab_capture.h" in e.value.hint


def test_lab_load_prepares_capture_programs(pair):
    """Program applies capture.prepare(): a program including xdplab_capture.h loads by name."""
    prog = pair.load("lesson06_debug.c")
    assert "xdplab_capture" in prog.maps


# -- lesson 06 --------------------------------------------------------------------------------------

REASON_NONE, REASON_PORT, REASON_BAD_HEADER = 0, 1, 2         # enum reason in lesson06_debug.c


def test_lesson06_reports_through_every_channel(pair, read_trace):
    c, s = pair.client, pair.server
    prog = load(pair, "lesson06_debug.c")
    att = prog.attach(s)
    trace = read_trace
    skip = trace.count
    events = EventLog(prog, "verdicts")
    kernel = xdplab.Tracepoints(pair)
    with measure(kernel) as seen:
        c.send(IP(dst=s.ip) / UDP(sport=4000, dport=9) / b"discard me", count=3)
        c.send(IP(dst=s.ip, ihl=15) / UDP(), count=2)
    assert trace.wait(skip + 5, timeout=5) and events.wait(5, timeout=5)
    messages = [ln.message for ln in trace.lines[skip:]]
    assert messages.count(f"debug: drop UDP from {c.ip} port 4000") == 3
    assert messages.count("debug: bad IPv4 header, 42 bytes") == 2
    drops = [e for e in events.events if e["reason"] == REASON_PORT]
    assert [(e["verdict"], str(e["saddr"]), str(e["daddr"]), e["sport"], e["dport"], e["proto"])
            for e in drops] == [("XDP_DROP", c.ip, s.ip, 4000, 9, "UDP")] * 3
    assert [e["verdict"] for e in events.events if e["reason"] == REASON_BAD_HEADER] == ["XDP_DROP"] * 2
    assert events.totals["XDP_DROP"] == 5 and events.totals["XDP_ABORTED"] == 0 and events.lost == 0
    assert seen["tracepoints"] == {}

    info = json.loads(subprocess.run(["bpftool", "-j", "prog", "show", "id", str(att.prog_id)],
                                     capture_output=True, text=True, check=True).stdout)
    assert (info["name"], info["type"]) == ("xdp_debug", "xdp")
    assert {m.id for m in prog.maps.values()} <= set(info["map_ids"])


def lesson06_bad_headers(c, s):
    """Frames whose IPv4 header parse_iphdr() rejects, each a datagram to port 9 as sent."""
    eth, ip = Ether(src=c.mac, dst=s.mac), IP(src=c.ip, dst=s.ip)
    return [bytes(eth / IP(src=c.ip, dst=s.ip, ihl=15) / UDP(sport=4001, dport=9)),    # longer than the frame
            bytes(eth / IP(src=c.ip, dst=s.ip, ihl=4) / UDP(sport=4002, dport=9)),     # ihl below 5
            bytes(eth / IP(src=c.ip, dst=s.ip, version=6) / UDP(sport=4003, dport=9)), # not version 4
            bytes(eth / ip / UDP(sport=4004, dport=9))[:30]]                            # ends inside it


def test_lesson06_drops_a_bad_header_with_its_reason_and_fires_no_exception(pair, read_trace):
    """A malformed IPv4 header is input any sender can craft, not an error of the program: the
    lesson's filter drops it (XDP_DROP), reports it with REASON_BAD_HEADER and no field of that
    header, and fires no xdp:xdp_exception for it, in real traffic and in test_run."""
    c, s = pair.client, pair.server
    prog = load(pair, "lesson06_debug.c")
    prog.attach(s)
    events, cap, kernel = EventLog(prog, "verdicts"), Capture(prog), xdplab.Tracepoints(pair)
    skip = read_trace.count
    bad = lesson06_bad_headers(c, s)
    with measure(s.iface(), kernel) as seen:
        c.send(bad, count=2)
    assert seen[s.iface()]["rx_packets"] >= 2 * len(bad)             # they arrived: the 0 means something
    assert seen["tracepoints"] == {} and kernel.total("exception") == 0
    assert cap.wait(2 * len(bad), timeout=5) and events.wait(2 * len(bad), timeout=5)
    frames = [f for f in cap.packets if f.data in bad]
    assert sorted((f.data, f.verdict) for f in frames) == sorted((b, "XDP_DROP") for b in bad * 2)
    reported = [e for e in events.events if e["reason"] == REASON_BAD_HEADER]
    assert [(e["verdict"], str(e["saddr"]), str(e["daddr"]), e["sport"], e["dport"], e["proto"])
            for e in reported] == [("XDP_DROP", "0.0.0.0", "0.0.0.0", 0, 0, 0)] * (2 * len(bad))
    assert events.totals["XDP_ABORTED"] == 0 and events.totals["XDP_DROP"] == 2 * len(bad)
    assert read_trace.wait(skip + 2 * len(bad), timeout=5)
    assert sorted(ln.message for ln in read_trace.lines[skip:]) == \
        sorted(f"debug: bad IPv4 header, {len(b)} bytes" for b in bad * 2)

    seen_events = events.count
    for frame in bad:
        assert prog.test_run(frame).verdict == "XDP_DROP"
    assert events.wait(seen_events + len(bad), timeout=5)
    assert [(e["verdict"], e["reason"]) for e in events.events[-len(bad):]] == \
        [("XDP_DROP", REASON_BAD_HEADER)] * len(bad)
    assert kernel.total("exception") == 0


def test_lesson06_verdicts(pair):
    prog = load(pair, "lesson06_debug.c", cflags=["-DDROP_PORT=53"])
    c, s = pair.client, pair.server
    ip = IP(src=c.ip, dst=s.ip)          # addresses set: scapy would fill in this machine's own

    def verdict(pkt):
        return prog.test_run(Ether(src=c.mac, dst=s.mac) / pkt).verdict

    assert verdict(ip / UDP(dport=53)) == "XDP_DROP"
    assert verdict(ip / UDP(dport=9)) == "XDP_PASS"
    assert verdict(IP(src=c.ip, dst=s.ip, frag=1) / UDP(dport=53)) == "XDP_PASS"
    assert verdict(ip / ICMP()) == "XDP_PASS"
    assert verdict(IPv6(src=c.ip6, dst=s.ip6) / UDP(dport=53)) == "XDP_PASS"
    assert verdict(ARP(psrc=c.ip, pdst=s.ip, hwsrc=c.mac)) == "XDP_PASS"
    assert prog.test_run(bytes(Ether(src=c.mac, dst=s.mac) / ip / UDP(dport=53))[:30]).verdict == "XDP_DROP"
    assert verdict(IP(src=c.ip, dst=s.ip, ihl=4) / UDP(dport=53)) == "XDP_DROP"


def test_lesson06_events_name_the_rule_that_decided(pair):
    """Every decision's event carries its verdict and the reason for it: 0 for a pass, REASON_PORT
    for a datagram to DROP_PORT, REASON_BAD_HEADER for a header parse_iphdr() rejects."""
    c, s = pair.client, pair.server
    prog = load(pair, "lesson06_debug.c")
    events = EventLog(prog, "verdicts")
    eth, ip = Ether(src=c.mac, dst=s.mac), IP(src=c.ip, dst=s.ip)
    cases = [(eth / ip / UDP(sport=4000, dport=9), "XDP_DROP", REASON_PORT),
             (eth / ip / UDP(sport=4000, dport=53), "XDP_PASS", REASON_NONE),
             (eth / IPv6(src=c.ip6, dst=s.ip6) / UDP(dport=9), "XDP_PASS", REASON_NONE),
             (eth / IP(src=c.ip, dst=s.ip, ihl=15) / UDP(dport=9), "XDP_DROP", REASON_BAD_HEADER)]
    for pkt, want, _ in cases:
        assert prog.test_run(pkt).verdict == want
    assert events.wait(len(cases), timeout=5)
    assert [(e["verdict"], e["reason"]) for e in events.events] == [(v, r) for _, v, r in cases]


# -- "Run All" of lessons 05 and 06 ---------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent

# Run after "Run All" has reached the end of the lesson, in its kernel: the lab is still open,
# the "Watch it" stream runs its whole time and its widgets keep refreshing; then a TrafficPanel
# sends what a learner would try with it, so that the proof cells run again afterwards must count
# their own traffic only.
AFTER_RUN_ALL = '''
import xdplab.widgets as _widgets
assert not lab.closed, "Run All closed the lab"
assert stream.running, f"the Watch it stream had stopped when Run All ended: {stream}"
_panel = xdplab.TrafficPanel(lab, PROGRAM)
for _proto, _port in (("UDP", 9), ("UDP", 53), ("ICMP", 53), ("ICMPv6", 53), ("TCP", 80)):
    _panel.protocol.value, _panel.port.value, _panel.count.value = _proto, _port, 30
    _panel.send()
stream.wait()
_copies = len(stream.packets) if isinstance(stream.packets, (list, tuple)) else 1
assert stream.error is None and stream.sent >= 0.5 * stream.rate * stream.seconds * _copies, stream
assert _widgets.active(), "no live widget refreshes any more after the stream"
'''


class TestRunAll:
    @pytest.fixture(autouse=True)
    def read_trace(self):
        """Not here: the machine's trace_pipe has one reader at a time, and lesson 06's kernel
        needs it, so this process must not hold it."""
        yield None

    @pytest.mark.parametrize("lesson,program", [("05-redirecting", "routing"), ("06-debugging", "prog")])
    def test_run_all_keeps_the_lab_and_the_proofs_pass_again_after_a_traffic_panel(self, lesson, program):
        run_all_then_panel_then_proofs(lesson, program)


def run_all_then_panel_then_proofs(lesson, program):
    from notebook_session import NotebookSession

    with NotebookSession(ROOT / "notebooks" / f"{lesson}.ipynb", timeout=180) as nb:
        proofs = nb.section("## Prove it", "## Try this")
        assert len(proofs) >= 4
        nb.run(AFTER_RUN_ALL.replace("PROGRAM", program))
        for i in proofs:
            nb.again(i)                 # raises CellExecutionError naming the cell that failed
