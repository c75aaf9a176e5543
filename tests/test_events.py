"""Event logs and trace logs: real programs in real labs send events through perf and ring
buffers (and bpf_trace_printk); every event is counted, typed, or accounted as lost; every reader
thread ends with its log, its program, its widget or its lab."""
import ctypes
import os
import secrets
import subprocess
import threading
import time
from ipaddress import IPv4Address, IPv6Address

import pytest
from scapy.all import IP, UDP, IPv6

import xdplab
from xdplab import events
from xdplab.events import EventLog, TraceLog

EVENT = r"""
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
struct event {
    u64 ts; __be32 saddr; __be32 daddr; __be16 sport; __be16 dport; u8 proto; u32 verdict;
};
DECLARE
BPF_ARRAY(seen, u64, 1);         /* IPv4 packets seen = events the program tried to send */
int xdp_events(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end)
        return XDP_PASS;
    struct event e = {.ts = bpf_ktime_get_ns(), .saddr = ip->saddr, .daddr = ip->daddr,
                      .proto = ip->protocol, .verdict = XDP_PASS};
    if (ip->protocol == IPPROTO_UDP) {
        struct udphdr *udp = (void *)(ip + 1);
        if ((void *)(udp + 1) > end)
            return XDP_PASS;
        e.sport = udp->source;
        e.dport = udp->dest;
        if (udp->dest == bpf_htons(9999))
            e.verdict = XDP_DROP;
    }
    u32 zero = 0;
    u64 *n = seen.lookup(&zero);
    if (n)
        __sync_fetch_and_add(n, 1);
    SEND
    return e.verdict;
}
"""
PERF = EVENT.replace("DECLARE", "BPF_PERF_OUTPUT(events);").replace(
    "SEND", "events.perf_submit(ctx, &e, sizeof(e));")
RING = EVENT.replace(
    "DECLARE", "BPF_RINGBUF_OUTPUT(events, PAGES);\nBPF_ARRAY(events_lost, u64, 1);").replace(
    "SEND", "if (events.ringbuf_output(&e, sizeof(e), 0))\n"
            "        events_lost.atomic_increment(0);")

TRACE = r"""
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
int xdp_trace(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_ICMP)
        return XDP_PASS;
    bpf_trace_printk("TAG icmp len=%d\n", (int)(end - data));
    return XDP_PASS;
}
"""


def load(lab, source, pages=8):
    prog = lab.load(source, cflags=[f"-DPAGES={pages}"])
    prog.attach(lab.server)
    return prog


def udp(lab, dport=9999):
    return IP(dst=lab.server.ip) / UDP(sport=1234, dport=dport)


def ours():
    """Threads of event logs, trace logs and widget refreshers that are alive."""
    return [t.name for t in threading.enumerate() if t.is_alive() and t.name.startswith(
        (events.THREAD_PREFIX, events.TRACE_THREAD, "xdplab-refresh"))]


def one_packet_per_cpu(lab):
    """Send one UDP packet (passed) from each CPU: the server's XDP runs on the sending CPU."""
    cpus, before = sorted(os.sched_getaffinity(0)), os.sched_getaffinity(0)
    try:
        for cpu in cpus:
            os.sched_setaffinity(0, {cpu})
            lab.client.send(udp(lab, dport=53), method="af_packet")
    finally:
        os.sched_setaffinity(0, before)
    return len(cpus)


def settle(log, target, timeout=30.0):
    """Wait until every event the program tried to send was received or counted as lost."""
    deadline = time.monotonic() + timeout
    while log.count + log.lost < target() and time.monotonic() < deadline:
        time.sleep(0.05)
    return log.count + log.lost


@pytest.fixture(autouse=True)
def no_thread_survives():
    yield
    events.close_all()
    assert ours() == []


def test_perf_buffer_events_are_typed(pair):
    prog = load(pair, PERF)
    log = prog_log = EventLog(prog, "events")
    report = pair.client.send(udp(pair), count=5)
    assert report.method == "af_packet"
    assert log.wait(5)
    assert (log.count, log.lost, log.kept, dict(log.totals)) == (5, 0, 5, {"XDP_DROP": 5})
    for e in log.events:
        assert (e["saddr"], e["daddr"]) == (IPv4Address("10.11.0.1"), IPv4Address(pair.server.ip))
        assert (e["sport"], e["dport"], e["proto"], e["verdict"]) == (1234, 9999, "UDP", "XDP_DROP")
        assert e["t"] >= 0 and isinstance(e["ts"], int)   # t: from bpf_ktime_get_ns(), since
                                                          # the log began
    assert log.columns == ["ts", "saddr", "daddr", "sport", "dport", "proto", "verdict"]
    html = log._repr_html_()
    assert html.count("<tr>") == 6 and "10.11.0.1" in html and "XDP_DROP: 5" in html
    assert "t (s) from ts" in html and "showing" not in html
    assert "perf buffer · 5 events · 0 lost" in repr(prog_log)


def test_ring_buffer_events_from_ping(pair):
    prog = load(pair, RING)
    log = EventLog(prog, "events")
    assert pair.client.ping(pair.server, count=3).received == 3
    assert log.wait(3)
    assert (log.count, log.lost, dict(log.totals)) == (3, 0, {"XDP_PASS": 3})
    assert [(e["saddr"], e["proto"], e["verdict"], e["dport"]) for e in log.events] == \
        [(IPv4Address("10.11.0.1"), "ICMP", "XDP_PASS", 0)] * 3
    assert log._lost_map is not None and log._lost_map.name == "events_lost"   # found by its name
    assert "ring buffer · 3 events" in repr(log)


@pytest.mark.parametrize("source", ["perf", "ring"])
def test_fast_stream_is_sampled_and_every_event_accounted(pair, source):
    n = 200_000
    prog = load(pair, PERF if source == "perf" else RING, pages=1)
    log = EventLog(prog, "events", max_rows=50, pages=1)     # rings of one page
    # hold the reader in its first event while the burst arrives, as a busy notebook would: the
    # one-page ring fills and the rest is lost, however fast this machine reads
    hold, keep = threading.Event(), log._keep
    log._keep = lambda raw: (hold.wait(30), keep(raw))
    try:
        report = pair.client.send(udp(pair), count=n)
    finally:
        hold.set()
    drained = -1
    while log.count != drained:          # the reader empties the ring, so the next events fit
        drained = log.count
        time.sleep(0.3)
    assert (report.sent, report.method) == (n, "live_frames")
    cpus = one_packet_per_cpu(pair)   # perf reports a CPU's losses with its next event that fits
    seen = lambda: prog.maps["seen"].snapshot()[0]                       # noqa: E731
    # every frame the injector sent arrived, or the receiving ring was full and the report counts it
    assert settle(log, seen) == seen() == n - report.lost + cpus
    assert log.count + log.lost == seen() and log.lost > 0 and log.count > 0
    assert sum(log.totals.values()) == log.count and log.totals["XDP_PASS"] == cpus
    assert 0 < log.kept == len(log.events) < log.count          # sampled, not all decoded
    assert all(e["sport"] == 1234 for e in log.events if e["proto"] == "UDP")
    assert log._repr_html_().count("<tr>") == 1 + 50            # max_rows rows shown


def test_fixed_sample_keeps_one_in_k(pair):
    prog = load(pair, PERF)
    log = EventLog(prog, "events", sample=3)
    pair.client.send(udp(pair, dport=53), count=30)
    assert log.wait(30)
    assert (log.count, log.kept, dict(log.totals)) == (30, 10, {"XDP_PASS": 30})


def test_ipv6_fields_and_declared_kinds(pair):
    source = r"""
    #include <linux/if_ether.h>
    #include <linux/in6.h>
    #include <linux/ipv6.h>
    #include <linux/udp.h>
    struct event { u8 nexthdr; struct in6_addr saddr; __be16 dport; u32 plen; };
    BPF_PERF_OUTPUT(events);
    int xdp_v6(struct xdp_md *ctx) {
        void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
        struct ethhdr *eth = data;
        struct ipv6hdr *ip6 = (void *)(eth + 1);
        struct udphdr *udp = (void *)(ip6 + 1);
        if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IPV6))
            return XDP_PASS;
        struct event e = {.nexthdr = ip6->nexthdr, .saddr = ip6->saddr, .dport = udp->dest,
                          .plen = bpf_ntohs(ip6->payload_len)};
        events.perf_submit(ctx, &e, sizeof(e));
        return XDP_PASS;
    }
    """
    prog = load(pair, source)
    log = EventLog(prog, "events", declare={"nexthdr": "proto"})
    pair.client.send(IPv6(dst=pair.server.ip6) / UDP(dport=5353) / b"abcd", count=2)
    assert log.wait(2)
    assert [(e["nexthdr"], e["saddr"], e["dport"], e["plen"]) for e in log.events] == \
        [("UDP", IPv6Address(pair.client.ip6), 5353, 12)] * 2
    assert log.problem is None and "t (s)" in log._repr_html_()        # no ts: arrival time


def test_packed_struct_needs_a_ctype(pair):
    source = r"""
    #include <linux/if_ether.h>
    #include <linux/ip.h>
    struct event { u8 proto; __be32 saddr; } __attribute__((packed));
    BPF_RINGBUF_OUTPUT(events, 8);
    int xdp_packed(struct xdp_md *ctx) {
        void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
        struct iphdr *ip = data + sizeof(struct ethhdr);
        if ((void *)(ip + 1) > end)
            return XDP_PASS;
        struct event e = {.proto = ip->protocol, .saddr = ip->saddr};
        events.ringbuf_output(&e, sizeof(e), 0);
        return XDP_PASS;
    }
    """
    prog = load(pair, source)
    wrong = EventLog(prog, "events")
    pair.client.ping(pair.server, count=1)
    assert wrong.wait(1) and "5 bytes" in wrong.problem and "ctype=" in wrong.problem
    wrong.close()

    class Packed(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("proto", ctypes.c_uint8), ("saddr", ctypes.c_uint32)]
    log = EventLog(prog, "events", ctype=Packed)
    pair.client.ping(pair.server, count=2)
    assert log.wait(2) and log.problem is None
    assert [(e["proto"], e["saddr"]) for e in log.events] == \
        [("ICMP", IPv4Address("10.11.0.1"))] * 2


def test_trace_log_reads_bpf_trace_printk(pair):
    tag = "xlt" + secrets.token_hex(4)           # trace_pipe is machine-wide: our lines only
    load(pair, TRACE.replace("TAG", tag))
    trace = TraceLog(prefix=tag, lab=pair)
    other = TraceLog(prefix="xlt-nothing-starts-like-this", lab=pair)
    assert ours().count(events.TRACE_THREAD) == 1          # one reader, however many logs
    assert pair.client.ping(pair.server, count=4).received == 4
    assert trace.wait(4)
    assert [ln.message for ln in trace.lines] == [f"{tag} icmp len=98"] * 4
    for ln in trace.lines:
        assert ln.event == "bpf_trace_printk" and ln.pid > 0 and ln.cpu >= 0 and ln.time > 0
    assert other.count == 0 and other.lines == []
    assert tag in trace._repr_html_() and "4 lines" in repr(trace)
    trace.close()
    assert ours().count(events.TRACE_THREAD) == 1          # `other` is still open
    other.close()
    assert ours() == []


def test_trace_pipe_held_elsewhere_is_explained(pair):
    """The kernel lets one process read trace_pipe at a time: a TraceLog opened while another
    holds it says who, and what to do, instead of a raw OSError (EBUSY)."""
    assert ours() == []                          # no reader of our own, so TraceLog must open it
    cat = subprocess.Popen(["cat", os.path.join(events.trace_dir(), "trace_pipe")],
                           stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not any("trace_pipe" in os.path.realpath(f"/proc/{cat.pid}/fd/{fd}")
                      for fd in os.listdir(f"/proc/{cat.pid}/fd")) and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(xdplab.SetupError) as err:
            TraceLog(prefix="xlt-held-elsewhere", lab=pair)
    finally:
        cat.kill()
        cat.wait()
    assert f"process {cat.pid} (cat) is reading the kernel's trace output" in err.value.message
    assert "one reader at a time" in err.value.message and "TraceLog" in err.value.hint
    assert ours() == []
    trace = TraceLog(prefix="xlt-held-elsewhere", lab=pair)     # free again: it opens
    assert ours().count(events.TRACE_THREAD) == 1
    trace.close()


def test_trace_lines_are_parsed():
    lines = {
        "            ping-4242    [001] b..1.  2806.400436: bpf_trace_printk: xlt icmp len=98":
            events.TraceLine(2806.400436, "ping", 4242, 1, "b..1.", "bpf_trace_printk",
                             "xlt icmp len=98"),
        "          <idle>-0       [000] ..s2.   17.5: bpf_trace_printk: a: b":
            events.TraceLine(17.5, "<idle>", 0, 0, "..s2.", "bpf_trace_printk", "a: b"),
        " kworker/u4:1-77 (     77) [001] d..2 99.000001: bpf_trace_printk: x":
            events.TraceLine(99.000001, "kworker/u4:1", 77, 1, "d..2", "bpf_trace_printk", "x"),
        "CPU:1 [LOST 12 EVENTS]": 12,
        "not a trace line": None}
    for line, parsed in lines.items():
        assert events.parse_trace_line(line) == parsed


def test_threads_end_with_log_program_widget_and_lab():
    with xdplab.Lab.pair() as lab:
        a = load(lab, PERF)
        log = EventLog(a, "events")
        log.widget()
        assert sorted(ours()) == ["xdplab-events-events", "xdplab-refresh-events-events"]
        log.close()                                  # 1. close()
        assert ours() == [] and log.closed == "closed"
        assert log.widget().refresher.stopped == "stopped: closed"

        log = EventLog(a, "events")
        a.close()                                    # 2. the program
        log._thread.join(timeout=5)
        assert not log.running and log.closed == "program program closed"

        b = load(lab, RING)
        log = EventLog(b, "events")
        log.widget().close()                         # 3. the widget
        assert ours() == [] and log.closed == "widget closed"

        first = EventLog(b, "events")
        second = EventLog(b, "events")               # 4. a newer reader of the same map
        assert first.closed.startswith("another EventLog") and second.running
        second.widget()
        trace = TraceLog(lab=lab)
        trace.widget()
        assert len(ours()) == 4                      # events, trace, two refreshers
    assert ours() == []                              # 5. the lab
    assert second.closed == trace.closed == f"lab {lab.id} closed"
    assert second._fd is None                        # buffers and descriptors released


def test_mistakes_are_explained(pair):
    prog = load(pair, PERF)
    with pytest.raises(xdplab.LabError, match="seen.*is a array map, not an event stream"):
        EventLog(prog, "seen")
    with pytest.raises(xdplab.LabError, match="has no map 'nope'"):
        EventLog(prog, "nope")
    with pytest.raises(xdplab.LabError, match="lost_map is for ring buffers"):
        EventLog(prog, "events", lost_map="seen")
    with pytest.raises(xdplab.LabError, match="sample must be"):
        EventLog(prog, "events", sample=0)
    nested = r"""
    struct inner { u16 a; };
    struct event { struct inner in; u32 x; };
    BPF_PERF_OUTPUT(events);
    int xdp_nested(struct xdp_md *ctx) {
        struct event e = {};
        events.perf_submit(ctx, &e, sizeof(e));
        return XDP_PASS;
    }
    """
    with pytest.raises(xdplab.LabError, match="field 'in' is a struct inner") as err:
        EventLog(pair.load(nested), "events")
    assert "ctype=" in err.value.hint
    assert ours() == []
