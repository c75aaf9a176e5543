"""What this kernel does where kernels differ — found out by trying, once per process.

    p = xdplab.probe()             # a KernelProbe, measured on first use, then cached
    p.redirect_errors.value        # "enqueue" (Linux 6.3+) or "flush" (before)
    p.redirect_errors.here         # what this kernel does, in plain words
    p.gro_takes_redirects.value    # True from Linux 5.13: GRO on a veth's peer lets it take redirects
    p.live_frames.value            # BPF_F_TEST_XDP_LIVE_FRAMES (5.18+): Host.send's fast injector
    p.xdp_features.value           # the netdev generic netlink family (6.3+): xdplab.kernel.netdev
    p.test_run_context.value       # BPF_PROG_TEST_RUN takes an xdp_md (5.15+): test_run_on()
    p.qdiscs.value                 # {"tbf": True, "fq_codel": False, ...}
    p.adaptations()                # {lesson: what it does differently on this kernel}

Lessons ask this module, never the kernel version: a distribution may backport a change, and a
version number says nothing about how a kernel was configured. Where a behaviour can be watched,
it is: `probe()` builds a scratch lab of three hosts in a line (client — router — server), puts a
two-instruction native XDP program on the router's eth0 that redirects every frame into its eth1
(`return bpf_redirect(ifindex of eth1, 0);`), sends a few frames from the client and reads which
counters moved. The lab is removed before probe() returns; a run takes well under a second here.

Where the kernel code changed (torvalds/linux):

* **Redirect errors — refused at enqueue since 6.3, lost at flush before.** A redirect puts the
  frame on a per-CPU bulk queue of the target device (kernel/bpf/devmap.c `__xdp_enqueue()` →
  `bq_enqueue()`); at the end of the NAPI poll `xdp_do_flush()` → `bq_xmit_all()` hands the queue
  to the target driver's `ndo_xdp_xmit()` and reports the result with
  `trace_xdp_devmap_xmit(bq->dev_rx, dev, sent, drops, err)`. `bpf_redirect()` takes the same
  path as `bpf_redirect_map()` into a devmap since 5.6 (commit 1d233886dd90, "xdp: Use bulking
  for non-map XDP_REDIRECT and consolidate code paths").
  - Before 6.3 `__xdp_enqueue()` only checked `dev->netdev_ops->ndo_xdp_xmit`, which every veth
    has, so the enqueue succeeds and `xdp_do_redirect()` reports success. At flush
    drivers/net/veth.c `veth_xdp_xmit()` finds no NAPI on the peer (`if
    (!rcu_access_pointer(rq->napi)) goto out;`, ret = -ENXIO), `veth_ndo_xdp_xmit()` adds the n
    frames to `priv->dropped` — the target veth's `tx_dropped` — and bq_xmit_all() frees them and
    fires `xdp:xdp_devmap_xmit` with drops = n, err = -6 (ENXIO).
  - Since 6.3 (commit "bpf: devmap: check XDP features in __xdp_enqueue routine", Lorenzo
    Bianconi, with "veth: take into account peer device for NETDEV_XDP_ACT_NDO_XMIT xdp_features
    flag") `__xdp_enqueue()` checks `if (!(dev->xdp_features & NETDEV_XDP_ACT_NDO_XMIT)) return
    -EOPNOTSUPP;`, and a veth sets that flag only while its peer has NAPI
    (`veth_set_xdp_features()`). So `xdp_do_redirect()` fails right away: `xdp:xdp_redirect_err`
    with err -95 (EOPNOTSUPP), and the receiving veth counts the frame in `rx_dropped`
    (`stats->rx_drops++` in `veth_xdp_rcv_skb()` / `veth_xdp_rcv_one()`).
* **GRO on the peer — enough since 5.13.** "veth: allow enabling NAPI even without XDP" (commit
  6788fa154546) gave a veth with GRO on a NAPI context, and "veth: check for NAPI instead of
  xdp_prog before xmit of XDP frame" made `veth_xdp_xmit()` test `rq->napi` instead of
  `rq->xdp_prog`. Before, only a native XDP program on the peer made it take redirected frames.
* **Live frames** — `BPF_F_TEST_XDP_LIVE_FRAMES` for BPF_PROG_TEST_RUN, Linux 5.18: tried
  (xdplab.kernel.live_frames_supported).
* **A test run's context** — BPF_PROG_TEST_RUN takes a `struct xdp_md` for an XDP program
  (`ctx_in`: which interface and RX queue the frame arrived on) since Linux 5.15 ("bpf:
  Support input xdp_md context in BPF_PROG_TEST_RUN", Zvi Effron); before, any context is
  refused with EINVAL and the run always looks as if the frame arrived on the loopback device of
  the caller's namespace: tried (xdplab.kernel.test_run_context_supported).
* **XDP features over netlink** — the "netdev" generic netlink family, Linux 6.3: a capability
  check (binding the family), see xdplab.features.
* **qdiscs** — a kernel configuration question (CONFIG_NET_SCH_*), not a version one: each kind is
  added to a scratch interface with `tc`, as the doctor does.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import Mapping

from xdplab.errors import LabError

FRAMES = 32                # frames each redirect measurement sends
ENQUEUE, FLUSH, UNKNOWN = "enqueue", "flush", "unknown"
QDISC_KINDS = ("tbf", "htb", "fq_codel", "netem")

BPF_FUNC_redirect = 23     # bpf_redirect(ifindex, flags), include/uapi/linux/bpf.h


@dataclasses.dataclass
class Finding:
    """One kernel-dependent answer. `value`: the answer; `since`: the first mainline kernel with
    the behaviour the lessons describe first; `here`: what this kernel does, in plain words;
    `instead`: "" when this kernel does what the lessons describe first, else what it does
    instead; `how`: how it was found out; `observed`: the raw numbers, where measured."""
    name: str
    value: object
    since: str
    here: str
    instead: str = ""
    how: str = ""
    observed: dict = dataclasses.field(default_factory=dict)

    def __bool__(self):
        return bool(self.value)

    def __repr__(self):
        return f"<{self.name}: {self.value!r} — {self.here}>"


@dataclasses.dataclass
class KernelProbe:
    release: str
    redirect_errors: Finding
    gro_takes_redirects: Finding
    live_frames: Finding
    xdp_features: Finding
    qdiscs: Finding
    test_run_context: Finding
    seconds: float = 0.0

    @property
    def findings(self) -> list[Finding]:
        """Every finding, in the order the repr shows them."""
        return [self.redirect_errors, self.gro_takes_redirects, self.live_frames,
                self.test_run_context, self.xdp_features, self.qdiscs]

    def adaptations(self) -> dict[str, str]:
        """{lesson: sentence} for every lesson that does something differently on this kernel."""
        return adaptations(self)

    def __repr__(self):
        rows = "".join(f"\n  {f.name}: {f.value!r} — {f.here}" for f in self.findings)
        return f"<KernelProbe of Linux {self.release} ({self.seconds:.1f} s):{rows}>"

    def _repr_html_(self):
        from xdplab.text import escape as e
        rows = "".join(f"<tr><td style='text-align:left'><code>{e(f.name)}</code></td>"
                       f"<td style='text-align:left'>{e(repr(f.value))}</td>"
                       f"<td style='text-align:left'>{e(f.here)}</td></tr>" for f in self.findings)
        return (f"<table><caption style='text-align:left'>What Linux {e(self.release)} does "
                f"(measured in {self.seconds:.1f} s)</caption>{rows}</table>")


# --- deciding from observations (pure: the tests feed recorded numbers) --------------------------

def decide_redirect_errors(obs: Mapping[str, int]) -> Finding:
    """The Finding for a redirect into a veth whose peer has no NAPI, from the counters one probe
    run moved: {"sent", "ingress_rx_dropped", "target_tx_dropped", "arrived"}."""
    n, at_rx = obs["sent"], obs["ingress_rx_dropped"]
    at_tx, arrived = obs["target_tx_dropped"], obs["arrived"]
    how = (f"sent {n} frames into a router whose native XDP program redirects them to a veth whose "
           f"peer has no NAPI: {at_rx} counted as rx_dropped where they came in, {at_tx} as "
           f"tx_dropped on the target, {arrived} arrived")
    if at_rx >= n and at_tx == 0 and arrived == 0:
        return Finding("redirect_errors", ENQUEUE, "6.3", how=how, observed=dict(obs), here=(
            "the kernel refuses the redirect when the program returns: xdp:xdp_redirect_err with "
            "-95 (EOPNOTSUPP), and the receiving interface counts the frame in rx_dropped"))
    if at_tx >= n and at_rx == 0 and arrived == 0:
        return Finding("redirect_errors", FLUSH, "6.3", how=how, observed=dict(obs), here=(
            "the kernel accepts the redirect, queues the frame and loses it when the queue is "
            "flushed to the target: xdp:xdp_devmap_xmit reports the drops (err -6, ENXIO) and the "
            "target interface counts them in tx_dropped; no xdp_redirect_err"), instead=(
            "before Linux 6.3 a redirect is not refused at once: the frames are counted as "
            "dropped at flush (xdp_devmap_xmit, tx_dropped on the target)"))
    return Finding("redirect_errors", UNKNOWN, "6.3", how=how, observed=dict(obs),
                   here=f"neither of the known behaviours: {how}",
                   instead=f"an unknown redirect accounting: {how}")


def decide_gro(obs: Mapping[str, int]) -> Finding:
    """Whether GRO on the peer made the target veth take redirected frames: {"sent", "arrived"}."""
    n, arrived = obs["sent"], obs["arrived"]
    how = f"with GRO on at the peer, {arrived} of {n} redirected frames arrived"
    if arrived >= n:
        return Finding("gro_takes_redirects", True, "5.13", how=how, observed=dict(obs), here=(
            "a veth takes redirected frames when its peer has GRO on or a native XDP program"))
    return Finding("gro_takes_redirects", False, "5.13", how=how, observed=dict(obs), here=(
        "a veth takes redirected frames only when its peer has a native XDP program; GRO is "
        "not enough"), instead=(
        "GRO on the peer does not help here (before Linux 5.13): xdplab attaches a native "
        "XDP_PASS program to the peer instead"))


def decide_live_frames(supported: bool) -> Finding:
    """The Finding for whether BPF_PROG_TEST_RUN accepted BPF_F_TEST_XDP_LIVE_FRAMES."""
    if supported:
        return Finding("live_frames", True, "5.18", how="BPF_PROG_TEST_RUN with the flag accepted",
                       here="BPF_F_TEST_XDP_LIVE_FRAMES works: Host.send injects many frames fast")
    return Finding("live_frames", False, "5.18", how="BPF_PROG_TEST_RUN refused the flag",
                   here="no BPF_F_TEST_XDP_LIVE_FRAMES: Host.send sends through AF_PACKET sockets",
                   instead="no live frames (before Linux 5.18): traffic goes through AF_PACKET "
                           "sockets, about 10x slower")


def decide_test_run_context(supported: bool) -> Finding:
    """The Finding for whether BPF_PROG_TEST_RUN took an xdp_md context."""
    if supported:
        return Finding("test_run_context", True, "5.15", how="BPF_PROG_TEST_RUN took an xdp_md context",
                       here="a test run can say which interface the frame arrived on: "
                            "test_run_on(prog, iface, packet) works")
    return Finding("test_run_context", False, "5.15", how="BPF_PROG_TEST_RUN refused an xdp_md context (EINVAL)",
                   here="a test run takes no context: it always looks as if the frame arrived on "
                        "the namespace's loopback device, so test_run_on() cannot run here",
                   instead="no xdp_md context for a test run (before Linux 5.15): test_run_on() is "
                           "not available, and the lesson sends its one packet for real instead")


def decide_xdp_features(bound: bool) -> Finding:
    """The Finding for whether the "netdev" generic netlink family could be bound."""
    if bound:
        return Finding("xdp_features", True, "6.3", how="bound the 'netdev' generic netlink family",
                       here="drivers report their XDP features over netlink (xdplab.features)")
    return Finding("xdp_features", False, "6.3", how="the 'netdev' generic netlink family is absent",
                   here="no XDP features over netlink: find out by trying (a refused native "
                        "attach, a failed redirect)",
                   instead="the kernel cannot report XDP features (before Linux 6.3): the lesson "
                           "finds them out by trying")


def decide_qdiscs(have: Mapping[str, bool]) -> Finding:
    """The Finding for the qdisc kinds `have` says are usable ({kind: usable})."""
    missing = [k for k in QDISC_KINDS if not have.get(k)]
    here = f"qdiscs: {', '.join(k for k in QDISC_KINDS if have.get(k)) or 'none'}" + \
           (f"; not in this kernel: {', '.join(missing)}" if missing else "")
    return Finding("qdiscs", dict(have), "config", how="added each with tc to the loopback device of a scratch lab host",
                   here=here, instead=(f"no {', '.join(missing)} in this kernel's configuration"
                                       if missing else ""))


def adaptations(p: KernelProbe) -> dict[str, str]:
    """{lesson: sentence} — what each lesson does differently on the kernel `p` describes."""
    out = {}
    red = p.redirect_errors
    if red.value != ENQUEUE:
        where = ("counted at flush on this kernel (before 6.3): xdp_devmap_xmit drops and "
                 "tx_dropped on the target interface, not xdp_redirect_err -95 and rx_dropped"
                 if red.value == FLUSH else red.here)
        out["05"] = f"redirect errors are {where}" if red.value == FLUSH else where
        out["10"] = out["05"]
    if not p.gro_takes_redirects.value:
        extra = ("GRO on a veth's peer does not make it take redirected frames here (before "
                 "5.13): the lesson's fix is a native XDP_PASS program on the peer")
        for lesson in ("05", "10"):
            out[lesson] = f"{out[lesson]}; {extra}" if lesson in out else extra
    if not p.live_frames.value:
        extra = ("no live frames (before 5.18): traffic goes through AF_PACKET, and the mode "
                 "costs are measured on fewer frames")
        out["10"] = f"{out['10']}; {extra}" if "10" in out else extra
        out["07"] = ("no live frames (before 5.18): the receive rates are measured over AF_PACKET "
                     "by the wall clock, and batching with BPF_PROG_TEST_RUN's repeat instead of "
                     "the live frames' batch size")
    if not p.test_run_context.value:
        extra = ("no xdp_md context for BPF_PROG_TEST_RUN (before 5.15): the one-packet "
                 "test_run_on() is replaced by one packet sent for real, and lab 05a's check "
                 "cannot run")
        out["05"] = f"{out['05']}; {extra}" if "05" in out else extra
    q = p.qdiscs.value
    if not q.get("fq_codel"):
        out["08"] = "the fq_codel comparison is skipped: this kernel has no fq_codel qdisc"
    return dict(sorted(out.items()))


# --- measuring ---------------------------------------------------------------------------------

def _redirect_to(ifindex):
    """Instructions of `return bpf_redirect(ifindex, 0);`."""
    from xdplab.kernel import bpf as kernel
    BPF_CALL = 0x85                         # BPF_JMP | BPF_CALL
    return (kernel.insn(kernel.BPF_MOV64_IMM, dst=1, imm=ifindex)
            + kernel.insn(kernel.BPF_MOV64_IMM, dst=2, imm=0)
            + kernel.insn(BPF_CALL, imm=BPF_FUNC_redirect)
            + kernel.insn(kernel.BPF_EXIT))


def _frame(src_mac, dst_mac):
    """A 60-byte frame with the local experimental EtherType 0x88B5: no stack answers it."""
    dst, src = (bytes.fromhex(m.replace(":", "")) for m in (dst_mac, src_mac))
    return dst + src + b"\x88\xb5" + bytes(46)


def _burst(client, frame, things):
    """Send FRAMES copies of `frame` from `client`; {what: change} of the counters `things`."""
    from xdplab.lab.measure import measure
    with measure(*things) as seen:
        client.send(frame, count=FRAMES, method="af_packet")
    return seen


def measure_redirects() -> tuple[dict[str, int], dict[str, int]]:
    """Run the redirect measurements in a scratch lab; returns (redirect obs, gro obs)."""
    from xdplab.kernel import bpf as kernel
    from xdplab.program.program import set_xdp
    from xdplab.lab.topology import Lab
    with Lab() as lab:
        client, router, server = lab.host("client"), lab.host("router"), lab.host("server")
        lab.link(client, router)
        lab.link(router, server)
        rin, rout, peer = router.iface(client), router.iface(server), server.iface()
        peer.gro(False)
        fd = kernel.load_xdp_bytecode(_redirect_to(rout.ifindex), "xdplab_probe")
        try:
            set_xdp(router.ns, rin.name, fd, "native")
            frame = _frame(client.mac, server.mac)
            seen = _burst(client, frame, (rin, rout, peer))
            red = {"sent": FRAMES, "ingress_rx_dropped": seen[rin].get("rx_dropped", 0),
                   "target_tx_dropped": seen[rout].get("tx_dropped", 0),
                   "arrived": seen[peer].get("rx_packets", 0)}
            peer.gro(True)
            seen = _burst(client, frame, (peer,))
            gro = {"sent": FRAMES, "arrived": seen[peer].get("rx_packets", 0)}
        finally:
            os.close(fd)
    return red, gro


def _configuration():
    """({qdisc kind: usable}, netdev family present), tried inside a one-host scratch lab."""
    from xdplab.kernel import netdev as kernel_netdev
    from xdplab.kernel import netns
    from xdplab.machine.doctor import QDISCS
    from xdplab.lab.topology import Lab
    have = {}
    with Lab() as lab:
        host = lab.host("q")
        netdev = netns.off_loop(kernel_netdev.present, host.ns)
        for kind in QDISC_KINDS:
            args = QDISCS.get(kind, ([], ""))[0]
            res = host.run(["tc", "qdisc", "replace", "dev", "lo", "root", kind, *args], check=False)
            have[kind] = res.returncode == 0
            if have[kind]:
                host.run(["tc", "qdisc", "del", "dev", "lo", "root"], check=False)
    return have, netdev


def measure_all() -> KernelProbe:
    """Every finding, measured now (a few hundred milliseconds; longer on slow machines)."""
    import platform
    from xdplab.kernel import bpf as kernel
    from xdplab.lab.topology import require_root
    require_root("probe the kernel")
    start = time.perf_counter()
    red, gro = measure_redirects()
    live = kernel.live_frames_supported()
    context = kernel.test_run_context_supported()
    qdiscs, netdev = _configuration()
    return KernelProbe(platform.release(), decide_redirect_errors(red), decide_gro(gro),
                       decide_live_frames(live), decide_xdp_features(netdev),
                       decide_qdiscs(qdiscs), decide_test_run_context(context),
                       time.perf_counter() - start)


_lock = threading.Lock()
_cached: KernelProbe | None = None


def probe(refresh: bool = False) -> KernelProbe:
    """What this kernel does where kernels differ (a KernelProbe). Measured on the first call in a
    process (or with refresh=True), then remembered: the kernel does not change under a running
    process."""
    global _cached
    with _lock:
        if _cached is None or refresh:
            try:
                _cached = measure_all()
            except LabError:
                raise
            except OSError as e:
                raise LabError(f"could not probe the kernel: {e}",
                               "run 'xdplab doctor': it says what is missing") from None
        return _cached
