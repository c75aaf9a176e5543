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
