"""The kernel probe's decisions (xdplab.machine.probe): the pure decide_*() functions and
adaptations(), fed with numbers probe() recorded on real kernels and with the answers of the
capability checks. No kernel is asked: tests/test_kernelprobe.py runs the real probe as root."""
import pytest

from xdplab.machine import probe as kernelprobe
from xdplab.machine.probe import (ENQUEUE, FLUSH, UNKNOWN, KernelProbe, decide_gro,
                                  decide_live_frames, decide_qdiscs, decide_redirect_errors,
                                  decide_test_run_context, decide_xdp_features)

# What probe() measured on real kernels (sent 32 frames each time; GRO case: the same, GRO on)
LINUX_6_18 = {"sent": 32, "ingress_rx_dropped": 32, "target_tx_dropped": 0, "arrived": 0}
LINUX_6_1 = {"sent": 32, "ingress_rx_dropped": 0, "target_tx_dropped": 32, "arrived": 0}
ALL_QDISCS = dict.fromkeys(kernelprobe.QDISC_KINDS, True)


def test_refused_at_enqueue_as_on_linux_6_3_and_newer():
    f = decide_redirect_errors(LINUX_6_18)
    assert f.value == ENQUEUE and f.since == "6.3" and not f.instead
    assert "-95" in f.here and "rx_dropped" in f.here and "32 counted as rx_dropped" in f.how


def test_dropped_at_flush_as_on_linux_6_1():
    f = decide_redirect_errors(LINUX_6_1)
    assert f.value == FLUSH and "before Linux 6.3" in f.instead
    assert "xdp_devmap_xmit" in f.here and "tx_dropped" in f.here and "-6" in f.here


@pytest.mark.parametrize("obs", [
    {"sent": 32, "ingress_rx_dropped": 16, "target_tx_dropped": 16, "arrived": 0},
    {"sent": 32, "ingress_rx_dropped": 0, "target_tx_dropped": 0, "arrived": 0},
    {"sent": 32, "ingress_rx_dropped": 0, "target_tx_dropped": 0, "arrived": 32},
])
def test_anything_else_is_unknown_and_says_what_was_seen(obs):
    f = decide_redirect_errors(obs)
    assert f.value == UNKNOWN and f.instead
    assert f"{obs['arrived']} arrived" in f.here


def test_gro_either_makes_the_peer_ready_or_does_not():
    assert decide_gro({"sent": 32, "arrived": 32}).value is True
    before_5_13 = decide_gro({"sent": 32, "arrived": 0})
    assert before_5_13.value is False and "XDP_PASS" in before_5_13.instead


def test_adaptations_name_each_lesson_that_differs():
    newest = KernelProbe("6.18", decide_redirect_errors(LINUX_6_18), decide_gro({"sent": 1, "arrived": 1}),
                         decide_live_frames(True), decide_xdp_features(True),
                         decide_qdiscs(dict.fromkeys(kernelprobe.QDISC_KINDS, True)),
                         decide_test_run_context(True))
    assert newest.adaptations() == {}
    debian_12 = KernelProbe("6.1.0-28-amd64", decide_redirect_errors(LINUX_6_1),
                            decide_gro({"sent": 1, "arrived": 1}), decide_live_frames(True),
                            decide_xdp_features(False),
                            decide_qdiscs(dict.fromkeys(kernelprobe.QDISC_KINDS, True)),
                            decide_test_run_context(True))
    lines = debian_12.adaptations()
    assert list(lines) == ["05", "10"], lines
    assert lines["05"].startswith("redirect errors are counted at flush on this kernel (before 6.3)")
    old = KernelProbe("5.10", decide_redirect_errors(LINUX_6_1), decide_gro({"sent": 1, "arrived": 0}),
                      decide_live_frames(False), decide_xdp_features(False),
                      decide_qdiscs({"tbf": True, "htb": True, "fq_codel": False, "netem": False}),
                      decide_test_run_context(False))
    lines = old.adaptations()
    assert list(lines) == ["05", "07", "08", "10"], lines
    assert "5.13" in lines["05"] and "5.18" in lines["10"] and "fq_codel" in lines["08"]
    assert "5.15" in lines["05"] and "test_run_on" in lines["05"] and "5.15" in old.test_run_context.instead
    assert "5.18" in lines["07"] and "AF_PACKET" in lines["07"] and "repeat" in lines["07"]
    assert "fq_codel, netem" in old.qdiscs.instead and "5.10" in repr(old)


# --- the capability answers ----------------------------------------------------------------------

def test_live_frames_either_inject_fast_or_fall_back_to_af_packet():
    yes, no = decide_live_frames(True), decide_live_frames(False)
    assert (yes.name, yes.value, yes.since, yes.instead) == ("live_frames", True, "5.18", "")
    assert "Host.send" in yes.here and "accepted" in yes.how and bool(yes)
    assert no.value is False and not no and no.since == "5.18" and "refused" in no.how
    assert "AF_PACKET" in no.here and "before Linux 5.18" in no.instead and "AF_PACKET" in no.instead


def test_a_test_run_context_either_names_the_interface_or_is_refused():
    yes, no = decide_test_run_context(True), decide_test_run_context(False)
    assert (yes.name, yes.value, yes.since, yes.instead) == ("test_run_context", True, "5.15", "")
    assert "test_run_on" in yes.here and "xdp_md" in yes.how
    assert no.value is False and no.since == "5.15" and "EINVAL" in no.how
    assert "loopback" in no.here and "test_run_on() cannot run" in no.here
    assert "before Linux 5.15" in no.instead and "test_run_on() is not available" in no.instead


def test_xdp_features_either_come_over_netlink_or_are_found_by_trying():
    yes, no = decide_xdp_features(True), decide_xdp_features(False)
    assert (yes.name, yes.value, yes.since, yes.instead) == ("xdp_features", True, "6.3", "")
    assert "netlink" in yes.here and "bound" in yes.how
    assert no.value is False and no.since == "6.3" and "absent" in no.how
    assert "by trying" in no.here and "before Linux 6.3" in no.instead


def test_qdiscs_name_what_the_configuration_has_and_lacks():
    every = decide_qdiscs(ALL_QDISCS)
    assert every.value == ALL_QDISCS and every.value is not ALL_QDISCS    # a copy, not the caller's
    assert every.since == "config" and not every.instead and bool(every)
    assert every.here == "qdiscs: tbf, htb, fq_codel, netem"
    some = decide_qdiscs({"netem": True, "fq_codel": False, "tbf": True})   # htb not even tried
    assert some.here == "qdiscs: tbf, netem; not in this kernel: htb, fq_codel"
    assert some.instead == "no htb, fq_codel in this kernel's configuration"
    assert some.value == {"netem": True, "fq_codel": False, "tbf": True}
    none = decide_qdiscs(dict.fromkeys(kernelprobe.QDISC_KINDS, False))
    assert none.here == "qdiscs: none; not in this kernel: tbf, htb, fq_codel, netem"
    assert none.instead == "no tbf, htb, fq_codel, netem in this kernel's configuration"


# --- what the lessons adapt, on two kernels far apart --------------------------------------------

def test_a_5_10_kernel_adapts_lessons_05_07_and_10_in_order_of_cause():
    """Debian 11's 5.10: flush accounting, GRO no help for redirects, no live frames, no test-run
    context, no netdev family, but fq_codel configured. Each lesson's sentence joins its causes
    with '; ', in the order adaptations() meets them."""
    p = KernelProbe(release="5.10.0-33-amd64", redirect_errors=decide_redirect_errors(LINUX_6_1),
                    gro_takes_redirects=decide_gro({"sent": 32, "arrived": 0}),
                    live_frames=decide_live_frames(False), xdp_features=decide_xdp_features(False),
                    qdiscs=decide_qdiscs(ALL_QDISCS), test_run_context=decide_test_run_context(False))
    lines = p.adaptations()
    assert list(lines) == ["05", "07", "10"], lines                         # no 08: fq_codel is there
    flush, gro, test_run = lines["05"].split("; ")
    assert flush.startswith("redirect errors are counted at flush on this kernel (before 6.3)")
    assert "xdp_devmap_xmit" in flush and "tx_dropped" in flush
    assert "before 5.13" in gro and "XDP_PASS" in gro
    assert "before 5.15" in test_run and "test_run_on()" in test_run and "05a" in test_run
    flush10, gro10, live = lines["10"].split("; ")
    assert (flush10, gro10) == (flush, gro)
    assert "before 5.18" in live and "AF_PACKET" in live
    assert "before 5.18" in lines["07"] and "AF_PACKET" in lines["07"] and "repeat" in lines["07"]
    assert "; " not in lines["07"]
    assert p.adaptations() == kernelprobe.adaptations(p)
    assert [f.name for f in p.findings if f.instead] == [
        "redirect_errors", "gro_takes_redirects", "live_frames", "test_run_context", "xdp_features"]


def test_a_6_18_kernel_adapts_nothing_but_lesson_08_without_fq_codel():
    have = dict(ALL_QDISCS, fq_codel=False)
    p = KernelProbe(release="6.18.0", redirect_errors=decide_redirect_errors(LINUX_6_18),
                    gro_takes_redirects=decide_gro({"sent": 32, "arrived": 32}),
                    live_frames=decide_live_frames(True), xdp_features=decide_xdp_features(True),
                    qdiscs=decide_qdiscs(have), test_run_context=decide_test_run_context(True))
    assert p.adaptations() == {
        "08": "the fq_codel comparison is skipped: this kernel has no fq_codel qdisc"}
    assert [f.name for f in p.findings if f.instead] == ["qdiscs"]


def test_an_unknown_redirect_accounting_is_told_as_seen_in_05_and_10():
    odd = decide_redirect_errors({"sent": 32, "ingress_rx_dropped": 0, "target_tx_dropped": 0,
                                  "arrived": 32})
    p = KernelProbe(release="6.6", redirect_errors=odd,
                    gro_takes_redirects=decide_gro({"sent": 32, "arrived": 32}),
                    live_frames=decide_live_frames(True), xdp_features=decide_xdp_features(True),
                    qdiscs=decide_qdiscs(ALL_QDISCS), test_run_context=decide_test_run_context(True))
    assert p.adaptations() == {"05": odd.here, "10": odd.here}
    assert odd.here.startswith("neither of the known behaviours") and "32 arrived" in odd.here
