"""The xdp tracepoints counted for a lab's programs."""
import xdplab

ABORT = "int xdp_abort(struct xdp_md *ctx) { return XDP_ABORTED; }"
REDIRECT_NOWHERE = r"""
int xdp_redirect_nowhere(struct xdp_md *ctx) {
    return bpf_redirect(4242, 0);      /* no interface has ifindex 4242 in the server */
}
"""


def test_aborted_packets_are_counted_per_program(pair):
    trace = xdplab.Tracepoints(pair)
    prog = pair.load(ABORT)
    prog.attach(pair.server)
    assert pair.client.ping(pair.server, count=4, interval=0.05, timeout=0.3).received == 0
    counts = trace.counts()
    assert counts == {("xdp_abort", "server:eth0", "exception", "XDP_ABORTED", 0): 4}
    assert trace.total("exception", "XDP_ABORTED") == 4
    assert "xdp_abort on server:eth0" in repr(trace)


def test_failed_redirect_is_counted_with_its_error(pair):
    trace = xdplab.Tracepoints(pair)
    prog = pair.load(REDIRECT_NOWHERE)
    prog.attach(pair.server, mode="generic")
    pair.client.ping(pair.server, count=3, interval=0.05, timeout=0.3)
    errors = {e: n for e, n in trace.counts().items() if e.kind == "redirect_err"}
    assert sum(errors.values()) == 3
    assert all(e.err < 0 and e.program == "xdp_redirect_nowhere" for e in errors)


def test_other_programs_are_not_counted_and_close_releases(pair):
    trace = xdplab.Tracepoints(pair)
    with xdplab.Lab.pair() as other:
        prog = other.load(ABORT)
        prog.attach(other.server)
        other.client.ping(other.server, count=2, interval=0.05, timeout=0.3)
    assert trace.counts() == {}
    assert sum(trace.counts(everything=True).values()) >= 2
    pair.close()
    assert trace.bpf is None


# -- the failures that do not name a program: a driver's flush, a cpumap's queue ---------------------

import os                                      # noqa: E402

import pytest                                  # noqa: E402
from scapy.layers.inet import IP, UDP          # noqa: E402
from scapy.layers.l2 import Ether              # noqa: E402

from xdplab import tracepoints                 # noqa: E402
from xdplab.forwarding import devmap_set, measure, port_set   # noqa: E402


# xdp:* events that report no failure: a redirect that worked, memory models, and an attach that
# failed (xdplab already turns that into a LabError with the kernel's message)
NOT_FAILURES = {"xdp_redirect", "mem_connect", "mem_disconnect", "bpf_xdp_link_attach_failed"}


def test_every_failure_tracepoint_of_this_kernel_is_counted():
    root = next(r for r in tracepoints.TRACEFS if os.path.isdir(r))
    events = {e for e in os.listdir(root) if os.path.isfile(os.path.join(root, e, "format"))}
    counted = {event for event, _ in tracepoints.PROBES.values()}
    failures = {e for e in events - NOT_FAILURES
                if {"drops", "err"} & tracepoints.event_fields(e) or "exception" in e}
    assert failures - counted == set(), f"xdp tracepoints that report failures and are not counted"
    assert counted <= events, f"this kernel lacks {counted - events}: say so in the lesson's claims"
    code = tracepoints.source({e: tracepoints.event_fields(e) for e in counted})
    assert {f"TRACEPOINT_PROBE(xdp, {e})" for e in counted} == \
        {ln.split(" {")[0] for ln in code.splitlines() if ln.startswith("TRACEPOINT_PROBE")}
    assert "F(" not in code


def test_a_missing_tracepoint_or_field_is_left_out(monkeypatch, pair):
    real = tracepoints.event_fields
    fields = {e: real(e) for _, (e, _) in tracepoints.PROBES.items()}
    fields["xdp_bulk_tx"] = fields["xdp_bulk_tx"] - {"err"}      # as an older kernel's event
    del fields["xdp_cpumap_kthread"]
    code = tracepoints.source(fields)
    assert "xdp_cpumap_kthread" not in code and "args->err" not in code.split("xdp_bulk_tx")[1].split("}")[0]
    monkeypatch.setattr(tracepoints, "event_fields", lambda e: None if e == "xdp_cpumap_kthread" else real(e))
    trace = xdplab.Tracepoints(pair)
    assert trace.missing == ("cpumap_kthread",) and "cpumap_kthread" not in trace.kinds
    assert "not counted: this kernel has no xdp:xdp_cpumap_kthread" in repr(trace)
    prog = pair.load(ABORT)
    prog.attach(pair.server)
    pair.client.ping(pair.server, count=2, interval=0.05, timeout=0.3)
    assert trace.total("exception") >= 2                         # the others still count


def test_a_failed_xdp_tx_is_counted_by_bulk_tx(pair):
    """XDP_TX into a veth whose peer has no NAPI (no XDP program, no GRO): the driver accepts the
    verdict and drops the frames when it flushes its XDP_TX queue, -ENXIO: only xdp:xdp_bulk_tx
    tells (xdp_exception does not fire)."""
    c, s = pair.client, pair.server
    trace = xdplab.Tracepoints(pair)
    prog = pair.load("xdp_macswap_tx.c")
    prog.attach(s, fix_veth=False)
    assert not c.iface().gro() and not c.iface().xdp().prog_id
    with measure(s.iface(), trace) as seen:
        c.send(Ether(dst=s.mac) / IP(dst=s.ip) / UDP(dport=9), count=20)
    assert seen["tracepoints"] == {("xdp_macswap_tx", "server:eth0", "bulk_tx", "XDP_TX", -6): 20}, seen
    assert seen[s.iface()]["tx_dropped"] == 20, seen
    assert trace.total("bulk_tx", "XDP_TX") == 20 and trace.total("exception") == 0

    pair.load("xdp_pass.c").attach(s)          # another program there later: the drops stay credited
    assert trace.counts() == {("xdp_macswap_tx", "server:eth0", "bulk_tx", "XDP_TX", -6): 20}

    prog.attach(s)                             # fix_veth: GRO at the client, and XDP_TX works
    with measure(c.iface(), trace) as fixed:
        c.send(Ether(dst=s.mac) / IP(dst=s.ip) / UDP(dport=9), count=20)
    assert fixed[c.iface()]["rx_packets"] == 20 and not fixed["tracepoints"], fixed


GROW_TX = r"""
int xdp_grow_tx(struct xdp_md *ctx) {       /* sends each frame back 64 bytes longer */
    if (bpf_xdp_adjust_tail(ctx, 64))
        return XDP_DROP;
    return XDP_TX;
}
"""


@pytest.mark.parametrize("btf", [True, False], ids=["with-btf", "by-index-alone"])
def test_bulk_tx_counts_frames_too_long_for_the_peer_and_credits_the_right_host(pair, btf, monkeypatch):
    """A frame sent back longer than the peer's MTU is dropped at flush (err 0). Both hosts' eth0
    have index 2. With BTF the raw tracepoint reads the device's namespace, and the drops go to the
    server's program; without, xdp_bulk_tx names only the index, and with native programs on both
    hosts the drops are credited to both, not to a guess."""
    if not btf:
        monkeypatch.setattr(tracepoints, "_OFFSETS", [None])
    c, s = pair.client, pair.server
    assert c.iface().ifindex == s.iface().ifindex
    trace = xdplab.Tracepoints(pair)
    assert ("bulk_tx" in trace.exact) == btf, "this kernel has BTF: the raw probe should be used"
    pair.load("xdp_pass.c").attach(c)
    pair.load(GROW_TX).attach(s)
    full = Ether(dst=s.mac) / IP(dst=s.ip) / UDP(dport=9)
    full = full / (b"x" * (1514 - len(full)))                     # a full 1500-byte MTU
    with measure(s.iface(), trace) as seen:
        c.send(full, count=10)
    who = ("xdp_grow_tx", "server:eth0") if btf else ("xdp_grow_tx or xdp_pass", "server:eth0 or client:eth0")
    assert seen["tracepoints"] == {(*who, "bulk_tx", "XDP_TX", 0): 10}, seen
    assert seen[s.iface()]["tx_dropped"] == 10, seen


def test_other_labs_flush_drops_are_not_counted_with_btf(pair):
    """Another lab's XDP_TX failure on an interface of the same index: not this lab's."""
    trace = xdplab.Tracepoints(pair)
    assert "bulk_tx" in trace.exact
    pair.load("xdp_macswap_tx.c").attach(pair.server)             # the same index, working
    with xdplab.Lab.pair() as other:
        other.load("xdp_macswap_tx.c").attach(other.server, fix_veth=False)
        assert other.server.iface().ifindex == pair.server.iface().ifindex
        other.client.send(Ether(dst=other.server.mac) / IP(dst=other.server.ip) / UDP(dport=9), count=5)
        assert trace.counts() == {}
        assert sum(n for e, n in trace.counts(everything=True).items() if e.kind == "bulk_tx") >= 5


def test_a_failed_flush_of_redirected_frames_is_counted_by_devmap_xmit(line):
    """A redirect into a veth whose peer has an XDP program (so the veth says it takes XDP frames)
    but is down (so its NAPI is off): the redirect is accepted, the flush fails with -ENXIO."""
    c, r, s = line["client"], line["router"], line["server"]
    trace = xdplab.Tracepoints(line)
    wire = line.load("lesson05_redirect.c")
    devmap_set(wire.maps["tx_port"], 1, r.iface(s))
    port_set(wire.maps["out_slot"], r.iface(c), 1)
    wire.attach(r.iface(c), fix_veth=False)
    line.load("xdp_pass.c").attach(s)
    s.run(["ip", "link", "set", "dev", s.iface().name, "down"])
    with measure(r.iface(s), wire.maps["counters"], trace) as seen:
        c.send(Ether(dst=s.mac) / IP(dst=s.ip) / UDP(dport=9), count=20)
    assert seen["counters"]["XDP_REDIRECT"].packets == 20, seen
    assert seen["tracepoints"] == {("xdp_redirect", "router:eth1", "devmap_xmit", "XDP_REDIRECT", -6): 20}, seen
    assert seen[r.iface(s)]["tx_dropped"] == 20, seen


TO_CPU = r"""
BPF_CPUMAP(cpus, 2);
int xdp_to_cpu(struct xdp_md *ctx) {
    return cpus.redirect_map(bpf_get_smp_processor_id() & 1, 0);   /* this CPU's slot */
}
"""


def test_a_full_cpumap_queue_is_counted_by_cpumap_enqueue(pair):
    """A cpumap entry with a queue of one frame: a burst redirected into it mostly finds the
    queue full. Every frame the program redirected is either delivered by the target CPU's
    kthread (to the server's stack) or counted dropped by xdp:xdp_cpumap_enqueue. The burst
    comes by the fast injector, so the receiving NAPI hands the program up to 64 frames at a
    time, and each flush moves up to 8 into the queue while the kthread, on the same CPU (the
    program redirects to its own CPU's slot), cannot run; sent one at a time by AF_PACKET, the
    kthread could empty the queue between frames."""
    c, s = pair.client, pair.server
    trace = xdplab.Tracepoints(pair)
    prog = pair.load(TO_CPU, name="to_cpu")
    table = prog.maps["cpus"].table
    for cpu in (0, 1):
        table[table.Key(cpu)] = table.Leaf(1)            # qsize 1
    prog.attach(s)
    with measure(s, trace) as seen:
        report = c.send(Ether(dst=s.mac) / IP(dst=s.ip) / UDP(dport=9), count=2000,
                        method="live_frames")
    dropped = trace.total("cpumap_enqueue", "XDP_REDIRECT")
    delivered = seen[s].get("IpInReceives", 0)
    assert dropped > 0, seen
    assert dropped + delivered == report.sent - report.lost, (report, seen)
    assert {(e.program, e.kind) for e in seen["tracepoints"]} == {("to_cpu", "cpumap_enqueue")}, seen
    assert all(e.iface in ("cpu 0", "cpu 1") for e in seen["tracepoints"]), seen
