"""Lesson 07 on a kernel without live frames (before Linux 5.18), proven on this one: the kernel is
made to refuse BPF_F_TEST_XDP_LIVE_FRAMES with EINVAL, as 5.10 does (its BPF_PROG_TEST_RUN takes no
flags for XDP), xdplab.probe() measures that for real, and GRO is forced "not enough" as before
5.13. Then perf's AF_PACKET and test-run measurements count every frame and never try live frames,
and the whole lesson runs top to bottom on that path with its own asserts, the doctor naming it.
Nothing here asserts a speed; the one ratio (batching) has a generous margin."""
import dataclasses
import errno
from pathlib import Path

import nbformat
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

import xdplab
from xdplab import kernelprobe, perf, traffic
from xdplab.kernel import bpf as kernel
from test_notebooks import cell_text, run_notebook

ROOT = Path(__file__).resolve().parent.parent
LESSON = ROOT / "notebooks" / "07-performance.ipynb"
CELL_TIMEOUT = 300          # the batch sweep makes ~60,000 system calls per round on a busy machine

# The first cell of the notebook run below; the before_5_18 fixture does the same in this process.
BEFORE_5_18 = '''
# (underscored names: the lesson's own `kernel` is xdplab.probe())
import dataclasses as _dc, errno as _errno
from xdplab import kernelprobe as _kp, traffic as _traffic
from xdplab.kernel import bpf as _xk
_real_prog_test_run = _xk.prog_test_run
refused = []                    # (frame length, repeat) of every live-frames run the kernel refused

def _refusing_live_frames(fd, data, repeat=1, *args, flags=0, **kw):
    """BPF_PROG_TEST_RUN as Linux 5.10 answers it: no flags for XDP (EINVAL)."""
    if flags & _xk.BPF_F_TEST_XDP_LIVE_FRAMES:
        refused.append((len(data), repeat))
        raise OSError(_errno.EINVAL, "Invalid argument")
    return _real_prog_test_run(fd, data, repeat, *args, flags=flags, **kw)

_xk.prog_test_run = _refusing_live_frames
_traffic._live_supported = None                # Host.send asks the kernel again

def _gro_not_enough():                         # as before 5.13 (the doctor probes afresh)
    p = _kp.probe()
    assert p.live_frames.value is False, p     # measured: the flag is refused now
    _kp._cached = _dc.replace(p, gro_takes_redirects=_kp.decide_gro({"sent": 32, "arrived": 0}))

_kp.probe(refresh=True)
_gro_not_enough()
'''

AFTER_DOCTOR = "_gro_not_enough()\nrefused_before_the_lesson = len(refused)"

# Appended: the lesson really took the path without live frames, and never tried them.
PATH_TAKEN = '''
assert kernel.live_frames is xdplab.probe().live_frames and not kernel.live_frames
assert rates.method == "af_packet", rates
assert [d.path for d in rates] == [perf.NO_VETH_TEST_RUN, "veth, native XDP", "veth, generic XDP"], rates
assert all(d.sent == 20_000 for d in rates), rates
assert sweep.how == "test runs" and list(sweep.ns) == ["test run"], sweep
assert all(sweep.sent["test run"][b] == sweep.counted["test run"][b] == 3 * 25_600 for b in perf.BATCH_SIZES), sweep
assert len(refused) == refused_before_the_lesson, f"the lesson tried live frames: {refused}"
assert "AF_PACKET" in xdplab.probe().adaptations()["07"]
print("lesson 07 ran without live frames")
'''


@pytest.fixture
def before_5_18(monkeypatch):
    """This kernel as one without live frames; the list of live-frames runs it refused."""
    real = kernel.prog_test_run
    refused = []

    def refusing(fd, data, repeat=1, *args, flags=0, **kw):
        if flags & kernel.BPF_F_TEST_XDP_LIVE_FRAMES:
            refused.append((len(data), repeat))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data, repeat, *args, flags=flags, **kw)

    monkeypatch.setattr(kernel, "prog_test_run", refusing)
    monkeypatch.setattr(traffic, "_live_supported", None)
    p = kernelprobe.probe(refresh=True)
    monkeypatch.setattr(kernelprobe, "_cached", dataclasses.replace(
        p, gro_takes_redirects=kernelprobe.decide_gro({"sent": 32, "arrived": 0})))
    yield refused
    kernelprobe.probe(refresh=True)            # what this kernel really does, for later tests
    traffic._live_supported = None


@pytest.fixture(scope="module")
def lab():
    with xdplab.Lab.pair() as lab:
        lab.prog = lab.load("lesson07_ladder.c")
        yield lab


def frame(lab, dport=9):
    c, s = lab.client, lab.server
    return Ether(src=c.mac, dst=s.mac) / IP(src=c.ip, dst=s.ip) / UDP(dport=dport) / Raw(b"x" * 18)


def drops(prog):
    """XDP_DROP verdicts counted so far in the ladder's per-CPU array."""
    try:
        return prog.maps["percpu_counts"].snapshot()["XDP_DROP"].packets
    except KeyError:
        return 0


def test_the_probe_measures_the_refusal_and_lesson_07_adapts(before_5_18):
    p = xdplab.probe()
    assert p.live_frames.value is False and "5.18" in p.live_frames.instead
    assert before_5_18, "the probe did not try live frames"
    assert "AF_PACKET" in p.adaptations()["07"]


def test_host_send_falls_back_to_af_packet(before_5_18, lab):
    report = lab.client.send(frame(lab), count=2_000)
    assert report.method == "af_packet" and report.sent == 2_000, report
    assert any("5.18" in n for n in report.notes), report.notes


def test_receive_rates_over_af_packet_count_every_frame_and_try_no_live_frames(before_5_18, lab):
    prog, before = lab.prog, drops(lab.prog)
    tried = len(before_5_18)
    rates = perf.receive_rates(lab.client, lab.server, prog, frame(lab), fn="rung_percpu",
                               counter="percpu_counts", count=5_000, method="af_packet")
    assert len(before_5_18) == tried, f"live frames were tried: {before_5_18[tried:]}"
    assert rates.method == "af_packet" and "AF_PACKET" in repr(rates)
    assert [d.path for d in rates] == [perf.NO_VETH_TEST_RUN, "veth, native XDP",
                                       "veth, generic XDP"]
    for d in rates:
        assert d.sent == 5_000 and d.counted + d.dropped == 5_000, d
        assert d.ns_per_packet > 0 and d.seconds > 0
    # every counted frame really reached the program: the map agrees (+1: the verdict's run)
    assert drops(prog) - before == sum(d.counted for d in rates) + 1
    # AF_PACKET's skbs need no GRO at a generic receiver: nothing was attached or switched on
    assert lab.server.iface().xdp().mode is None and not prog.attachments
    assert rates.chart()._repr_png_()[:4] == b"\x89PNG"
    # the live path says what to do instead, rather than failing in the kernel
    with pytest.raises(xdplab.LabError, match="method='af_packet'"):
        perf.receive_rates(lab.client, lab.server, prog, frame(lab), fn="rung_percpu",
                           counter="percpu_counts", count=5_000)
    with pytest.raises(xdplab.LabError, match="unknown method"):
        perf.receive_rates(lab.client, lab.server, prog, frame(lab), fn="rung_percpu",
                           counter="percpu_counts", method="xdp")


def test_repeat_sweep_counts_every_run_and_batching_spreads_the_call(before_5_18, lab):
    prog, before, tried = lab.prog, drops(lab.prog), len(before_5_18)
    sweep = perf.repeat_sweep(lab.server, prog, frame(lab), fn="rung_percpu",
                              counter="percpu_counts", sizes=(1, 3, 256), runs=2_560, rounds=2)
    assert len(before_5_18) == tried, f"live frames were tried: {before_5_18[tried:]}"
    assert list(sweep.ns) == ["test run"] and sweep.how == "test runs"
    for b in (1, 3, 256):          # 2,560 = 853 calls of 3 and one of 1: uneven sizes count too
        assert sweep.sent["test run"][b] == sweep.counted["test run"][b] == 2 * 2_560
        assert sweep.dropped["test run"][b] == 0 and len(sweep.ns["test run"][b]) == 2
    assert drops(prog) - before == 3 * 2 * 2_560 + 1            # + the verdict's run
    # one system call per run against one per 256: the call's fixed cost is spread (a wide margin)
    assert sweep.best("test run", 1) > 2 * sweep.best("test run", 256), sweep
    fit = sweep.fit("test run")
    assert fit.per_batch > 0, fit
    assert lab.server.iface().xdp().mode is None and not prog.attachments
    assert "runs per call" in repr(sweep) and sweep.chart()._repr_png_()[:4] == b"\x89PNG"
    with pytest.raises(xdplab.LabError, match="returns XDP_PASS"):
        perf.repeat_sweep(lab.server, prog, frame(lab, dport=53), fn="rung_percpu",
                          counter="percpu_counts")
    with pytest.raises(xdplab.LabError, match="batch sizes go from 1 to 256"):
        perf.repeat_sweep(lab.server, prog, frame(lab), fn="rung_percpu",
                          counter="percpu_counts", sizes=(0, 4))
    assert lab.server.iface().xdp().mode is None and not prog.attachments


def test_lesson_07_runs_top_to_bottom_without_live_frames():
    """The notebook, with the emulation as its first cell: every cell runs, its own asserts hold
    on the AF_PACKET and test-run path, the doctor names lesson 07, and the lesson itself never
    asks the kernel for live frames."""
    nb = nbformat.read(LESSON, as_version=4)
    doctor = next(i for i, c in enumerate(nb.cells) if "xdplab.doctor()" in c.source)
    nb.cells.insert(doctor + 1, nbformat.v4.new_code_cell(AFTER_DOCTOR))
    nb.cells.insert(0, nbformat.v4.new_code_cell(BEFORE_5_18))
    nb.cells.append(nbformat.v4.new_code_cell(PATH_TAKEN))
    run_notebook(nb, LESSON, LESSON.name + " without live frames", CELL_TIMEOUT)

    shown = cell_text(nb.cells[doctor + 1])            # the doctor's cell (after the inserted one)
    assert "lesson 07" in shown and "AF_PACKET" in shown, shown[-2000:]
    probe_cell = next(c for c in nb.cells if c.source.startswith("kernel = xdplab.probe()"))
    assert "live_frames: False" in cell_text(probe_cell)
    assert "lesson 07 ran without live frames" in cell_text(nb.cells[-1])
