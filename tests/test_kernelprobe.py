"""xdplab.probe(): the real probe on this kernel, and the xdp_devmap_xmit drops the lessons count
on kernels before 6.3 — made to happen here, on purpose, with a peer MTU too small. Its decisions
on recorded observations of other kernels (both branches of each) and what the lessons adapt are
pure: tests/unit/test_unit_probe.py."""
import contextlib
import os
import subprocess
import sys
import textwrap

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

import xdplab
from xdplab import kernelprobe, qos, reaper
from xdplab.kernel import bpf as kernel
from xdplab.features import xdp_features
from xdplab.forwarding import measure
from xdplab.kernelprobe import ENQUEUE, FLUSH, decide_gro


def lab_namespaces():
    """Lab namespaces, leaving out those of labs another live process owns (a concurrent run)."""
    names = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    theirs = set()
    for path in reaper.STATE_DIR.glob("*.json") if reaper.STATE_DIR.is_dir() else ():
        state = reaper.read_state(path)
        if state and state.get("pid") != os.getpid() and reaper.alive(state):
            theirs.add(f"{reaper.NS_PREFIX}{path.stem}-")
    return {n for n in names if n.startswith(reaper.NS_PREFIX)
            and not any(n.startswith(prefix) for prefix in theirs)}


@pytest.fixture(scope="module")
def measured():
    """A fresh probe of this kernel, and the lab namespaces before and after it."""
    before = lab_namespaces()
    p = xdplab.probe(refresh=True)
    return p, before, lab_namespaces()


def test_the_real_probe_measures_this_kernel_and_leaves_nothing(measured):
    p, before, after = measured
    assert after <= before, f"the probe left namespaces: {after - before}"
    assert p.release == os.uname().release and p.seconds > 0
    red = p.redirect_errors
    assert red.value in (ENQUEUE, FLUSH), red          # one of the two known behaviours
    assert red.observed["sent"] == kernelprobe.FRAMES and red.observed["arrived"] == 0, red
    lost = red.observed["ingress_rx_dropped"] + red.observed["target_tx_dropped"]
    assert lost == kernelprobe.FRAMES, red              # every frame counted, on one side
    assert p.gro_takes_redirects.observed["sent"] == kernelprobe.FRAMES
    as_first_described = {"redirect_errors": red.value == ENQUEUE,
                          "gro_takes_redirects": p.gro_takes_redirects.value is True,
                          "live_frames": p.live_frames.value is True,
                          "test_run_context": p.test_run_context.value is True,
                          "xdp_features": p.xdp_features.value is True,
                          "qdiscs": all(p.qdiscs.value.values())}
    for f in p.findings:
        assert f.here and f.how and f.since, f
        assert bool(f.instead) == (not as_first_described[f.name]), f     # says what instead


def test_the_findings_agree_with_what_the_rest_of_xdplab_sees(measured, pair):
    p = measured[0]
    assert p.live_frames.value == kernel.live_frames_supported()
    assert p.test_run_context.value == kernel.test_run_context_supported()
    assert p.xdp_features.value == xdp_features(pair.server).available
    assert p.qdiscs.value == {k: qos.have_qdisc(pair.server, k) for k in kernelprobe.QDISC_KINDS}
    # the redirect check of the netdev features and the refusal at enqueue came in one change (6.3)
    assert (p.redirect_errors.value == ENQUEUE) == p.xdp_features.value, p


def test_the_netdev_family_is_asked_in_the_kernel_layer(measured, pair):
    from xdplab.kernel import netdev, netns
    p = measured[0]
    assert netns.off_loop(netdev.present, pair.server.ns) is p.xdp_features.value
    assert netns.off_loop(netdev.present, pair.server.ns, "xdplab-none") is False
    found = netns.off_loop(netdev.read, pair.server.ns)
    assert {name for name, _ in found.values()} == {"lo", "eth0"}, found
    assert all((msg is not None) == p.xdp_features.value for _, msg in found.values()), found
    one = netns.off_loop(netdev.read, pair.server.ns, pair.server.iface().ifindex)
    assert [name for name, _ in one.values()] == ["eth0"], one
    if p.xdp_features.value:               # only the family can tell an index that is not there
        with pytest.raises(xdplab.LabError, match="no device with index 999"):
            netns.off_loop(netdev.read, pair.server.ns, 999)


def test_the_probe_and_the_tracepoints_use_no_lesson_code():
    """The runtime sits below the lessons: probing the kernel and naming a redirect's target
    (a device made inside a host) load no module of xdplab.lessons, xdplab.labs or xdplab.ui
    beyond what `import xdplab` itself loads."""
    code = textwrap.dedent("""
        import sys
        import xdplab
        from xdplab.program import tracepoints
        above = ("xdplab.lessons", "xdplab.labs")
        before = {m for m in sys.modules if m.startswith(above)}
        xdplab.probe(refresh=True)
        with xdplab.Lab.pair() as lab:
            t = tracepoints.Tracepoints(lab)
            t._flushed(lab.server.iface().ifindex, 1), t._iface_at(t._inum(lab.server), 1)
        print(sorted({m for m in sys.modules if m.startswith(above)} - before))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]", res.stdout


@contextlib.contextmanager
def redirecting_router():
    """client - router - server, and lesson 10's program loaded to redirect to the server's side."""
    with xdplab.Lab.chain("client", "router", "server") as lab:
        c, r, s = (lab.hosts[n] for n in ("client", "router", "server"))
        prog = lab.load("lesson10_redirect.c")
        prog.maps["target"][0] = r.iface(s).ifindex
        yield lab, prog, c, r, s


def test_the_redirect_accounting_the_probe_found_is_what_a_lab_sees(measured, pair):
    """Lesson 05's trap, asked independently: redirect into a veth whose peer has no NAPI."""
    p = measured[0]
    with redirecting_router() as (lab, prog, c, r, s):
        prog.attach(r.iface(c), fix_veth=False)
        errors = xdplab.Tracepoints(lab)
        with measure(r.iface(c), r.iface(s), s.iface(), errors) as seen:
            c.send(Ether(dst=s.mac) / IP(dst=s.ip) / UDP(dport=9), count=20, method="af_packet")
    events = {(e.kind, e.err): n for e, n in seen["tracepoints"].items()}
    assert "rx_packets" not in seen[s.iface()], seen
    if p.redirect_errors.value == ENQUEUE:
        assert seen[r.iface(c)]["rx_dropped"] == 20 and events == {("redirect_err", -95): 20}, seen
    else:
        assert seen[r.iface(s)]["tx_dropped"] == 20 and events == {("devmap_xmit", -6): 20}, seen


def test_probe_is_cached_and_refresh_measures_again(measured):
    p = xdplab.probe()
    assert xdplab.probe() is p
    again = xdplab.probe(refresh=True)
    assert again is not p and xdplab.probe() is again
    assert again.redirect_errors.value == p.redirect_errors.value


# --- the tracepoint the older kernels report through -------------------------------------------

def test_frames_dropped_at_flush_are_counted_as_devmap_xmit():
    """On any kernel: a peer whose MTU is smaller than the frame refuses it at flush (veth
    ndo_xdp_xmit, after the enqueue checked only the target's own MTU)."""
    with xdplab.Lab.chain("client", "router", "server") as lab:
        c, r, s = (lab.hosts[n] for n in ("client", "router", "server"))
        s.run("ip link set dev eth0 mtu 500")
        prog = lab.load("lesson10_redirect.c")
        prog.maps["target"][0] = r.iface(s).ifindex
        att = prog.attach(r.iface(c))                       # the peer gets NAPI, as fix_veth does
        assert att.notes, att
        errors = xdplab.Tracepoints(lab)
        big = Ether(dst=s.mac) / IP(dst=s.ip) / UDP(dport=9) / bytes(900)
        with measure(s.iface(), errors) as seen:
            c.send(big, count=10, method="af_packet")
        events = seen["tracepoints"]
        # err 0: the driver took none of the frames, without an error code (too long for the peer)
        assert events == {("lesson10_redirect", "router:eth1", "devmap_xmit", "XDP_REDIRECT", 0): 10}, \
            events
        assert "rx_packets" not in seen[s.iface()], seen
        assert "devmap_xmit XDP_REDIRECT" in repr(errors)


def test_where_gro_is_not_enough_fix_veth_gives_the_peer_a_native_program(measured, monkeypatch):
    """The branch for kernels before 5.13, forced through the probe's answer: the XDP_PASS
    program it attaches instead of GRO makes the redirect work on this kernel too."""
    import dataclasses
    p = measured[0]
    old = dataclasses.replace(p, gro_takes_redirects=decide_gro({"sent": 32, "arrived": 0}))
    monkeypatch.setattr(kernelprobe, "_cached", old)
    with redirecting_router() as (lab, prog, c, r, s):
        att = prog.attach(r.iface(c))
        assert any("XDP_PASS" in n and "5.13" in n for n in att.notes), att.notes
        assert s.iface().xdp().mode == "native" and not s.iface().gro()
        with measure(s.iface()) as seen:
            c.send(Ether(dst=s.mac) / IP(dst=s.ip) / UDP(dport=9), count=20, method="af_packet")
        assert seen[s.iface()]["rx_packets"] == 20, seen


def test_memlock_is_raised_for_kernels_that_charge_bpf_to_it():
    """Before 5.11 BPF objects count against RLIMIT_MEMLOCK: on EPERM, xdplab raises it (as bcc
    does) and tries once more. Here (memcg accounting) only the raising itself can be shown."""
    code = textwrap.dedent("""
        import resource
        from xdplab.kernel import bpf as kernel
        hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (65536, hard))
        assert kernel._raise_memlock() is True
        soft, now_hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        assert soft == now_hard and soft in (hard, resource.RLIM_INFINITY) and soft != 65536
        assert kernel._raise_memlock() is False          # as high as it goes: nothing to retry
        import os; os.close(kernel.load_xdp_bytecode(kernel.xdp_return(2), "memlock"))
        print("ok")
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "ok", res.stderr
