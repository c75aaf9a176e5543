"""xdplab.perf, lesson 07's measurements, on a real lab with bpf/lesson07_ladder.c: the counts must
be exact and the helpers must clean up after themselves. Nothing here asserts a speed (speed
belongs in benchmarks/); the numbers only have to be measured, positive and reported."""
import os

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

import xdplab
from xdplab import perf

LADDER = ["rung_pass", "rung_drop", "rung_parse", "rung_percpu", "rung_atomic", "rung_hash",
          "rung_update"]


@pytest.fixture(scope="module")
def lab():
    with xdplab.Lab.pair() as lab:
        lab.prog = lab.load("lesson07_ladder.c")
        yield lab


@pytest.fixture
def prog(lab):
    for name in ("percpu_counts", "shared_counts", "by_source", "last_seen"):
        lab.prog.maps[name].clear()
    return lab.prog


def frame(lab, dport=9):
    c, s = lab.client, lab.server
    return Ether(src=c.mac, dst=s.mac) / IP(src=c.ip, dst=s.ip) / UDP(dport=dport) / Raw(b"x" * 18)


def total(prog, name):
    return sum(rec.packets for rec in prog.maps[name].snapshot().values())


def png(chart):
    return chart._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_ladder_program_is_a_firewall(lab, prog):
    assert prog.functions == LADDER
    for fn in LADDER:
        blocked = prog.test_run(frame(lab), fn=fn).verdict
        other = prog.test_run(frame(lab, dport=53), fn=fn).verdict
        assert blocked == ("XDP_PASS" if fn == "rung_pass" else "XDP_DROP"), fn
        assert other == ("XDP_DROP" if fn == "rung_drop" else "XDP_PASS"), fn
    arp = Ether(src=lab.client.mac, dst="ff:ff:ff:ff:ff:ff", type=0x0806) / Raw(bytes(28))
    assert prog.test_run(arp, fn="rung_parse").verdict == "XDP_PASS"


def test_calls_lists_what_the_verified_program_calls(lab, prog):
    """perf.calls() reads the instructions the verifier left (bpftool prog dump xlated): a plain
    array's lookup is inlined (since 4.12: no call), a hash map's is a call, and so is an update.
    The per-CPU array's lookup is a call on older kernels, inlined on recent ones: no assert."""
    found = {fn: perf.calls(prog, fn) for fn in LADDER}
    assert found["rung_pass"] == found["rung_drop"] == found["rung_parse"] == [], found
    assert not [c for c in found["rung_atomic"] if "lookup" in c], found
    assert [c for c in found["rung_hash"] if "htab_map_lookup" in c], found
    assert "htab_map_update_elem" in found["rung_update"], found
    assert set(found["rung_percpu"]) <= {"percpu_array_map_lookup_elem"}, found
    lookups = [c for c in perf.calls(lab.load("lesson02_sources.c")) if "lookup" in c]
    assert lookups, "a per-CPU hash lookup is always a call"


def test_ladder_runs_every_function_and_its_maps_count_every_run(lab, prog):
    costs = perf.ladder(prog, frame(lab), repeat=20_000, rounds=2)
    assert list(costs.ns) == LADDER
    assert all(len(r) == 2 and all(ns > 0 for ns in r) for r in costs.rounds.values())
    assert costs.ns == {fn: min(r) for fn, r in costs.rounds.items()}
    assert costs.runs == {fn: 1 + 2 * 20_001 for fn in LADDER}
    assert costs.verdicts["rung_pass"] == "XDP_PASS" and costs.verdicts["rung_hash"] == "XDP_DROP"
    for name, fn in (("percpu_counts", "rung_percpu"), ("shared_counts", "rung_atomic"),
                     ("by_source", "rung_hash")):
        assert total(prog, name) == costs.runs[fn], name
    assert {str(k) for k in prog.maps["by_source"].snapshot()} == {lab.client.ip}
    assert all(fn in repr(costs) and fn in costs._repr_html_() for fn in LADDER)
    assert png(costs.chart())

    only = perf.ladder(prog, frame(lab), fns=["rung_hash"], repeat=1_000, rounds=1)
    assert list(only.ns) == ["rung_hash"]


def test_contention_counts_every_run_on_every_cpu(lab, prog):
    shared = perf.contention(prog, frame(lab), ["rung_percpu", "rung_atomic"], repeat=20_000,
                             rounds=2)
    cpus = sorted(os.sched_getaffinity(0))
    assert shared.cpus == cpus
    per_round = 20_000 * (1 + (len(cpus) if len(cpus) > 1 else 0))
    assert shared.runs == {"rung_percpu": 2 * per_round, "rung_atomic": 2 * per_round}
    assert total(prog, "percpu_counts") == shared.runs["rung_percpu"]
    assert total(prog, "shared_counts") == shared.runs["rung_atomic"]
    assert all(ns > 0 for ns in shared.alone.values())
    assert set(shared.together) == (set(shared.alone) if len(cpus) > 1 else set())
    assert "rung_atomic" in repr(shared) and png(shared.chart())


def test_receive_rates_count_every_frame_in_native_and_generic_mode(lab, prog):
    server_if = lab.server.iface()
    rates = perf.receive_rates(lab.client, lab.server, prog, frame(lab), fn="rung_percpu",
                               counter="percpu_counts", count=50_000)
    assert [d.path for d in rates] == [perf.NO_VETH, "veth, native XDP", "veth, generic XDP"]
    for d in rates:
        assert (d.sent, d.counted, d.dropped) == (50_000, 50_000, 0), d
        assert d.ns_per_packet > 0 and d.seconds > 0 and d.rate > 0
    assert total(prog, "percpu_counts") == 3 * 50_000 + 1      # + the run that took the verdict
    assert rates["veth, native XDP"] is rates[1]
    assert server_if.xdp().mode is None, "the receiving program is still attached"
    assert not prog.attachments

    comparison = perf.reference(rates)
    assert [w for _, w, _ in comparison.rows][:len(perf.REFERENCE)] == \
        [f"paper: {w}" for w, _ in perf.REFERENCE]
    assert ("this machine", "here: veth, native XDP", rates[1].rate / 1e6) in comparison.rows
    assert "CoNEXT 2018" in repr(comparison) and png(comparison.chart()) and png(rates.chart())


def test_the_injector_s_own_frames_can_be_sent_the_ordinary_way_too(lab, prog):
    """perf drives the injector of Host.send itself; send reaches the same program."""
    prog.attach(lab.server, fn="rung_percpu")
    try:
        report = lab.client.send(frame(lab), count=10_000, method="live_frames")
        assert report.sent == 10_000
        assert perf._settled(lambda: total(prog, "percpu_counts"), 10_000) == 10_000
    finally:
        prog.detach()


def test_batch_sweep_accounts_for_every_frame(lab, prog):
    sweep = perf.batch_sweep(lab.client, lab.server, prog, frame(lab), fn="rung_percpu",
                             counter="percpu_counts", sizes=(1, 16, 256), frames=5_000, rounds=2)
    assert list(sweep.ns) == ["native", "generic"]
    for mode in sweep.ns:
        for b in (1, 16, 256):
            assert len(sweep.ns[mode][b]) == 2 and sweep.best(mode, b) == min(sweep.ns[mode][b])
            assert sweep.sent[mode][b] == 10_000
            assert sweep.counted[mode][b] + sweep.dropped[mode][b] == 10_000, (mode, b)
        fit = sweep.fit(mode)
        assert isinstance(fit, perf.Fit) and "ns per frame" in repr(fit)
    counted = sum(sum(by_size.values()) for by_size in sweep.counted.values())
    assert total(prog, "percpu_counts") == counted + 1          # + the verdict's run
    assert lab.server.iface().xdp().mode is None
    assert "generic" in repr(sweep) and png(sweep.chart())


def test_mistakes_are_explained(lab, prog):
    with pytest.raises(xdplab.LabError, match="returns XDP_PASS"):
        perf.receive_rates(lab.client, lab.server, prog, frame(lab, dport=53), fn="rung_percpu",
                           counter="percpu_counts")
    with pytest.raises(xdplab.LabError, match="batch sizes go from 1 to 256"):
        perf.batch_sweep(lab.client, lab.server, prog, frame(lab), fn="rung_percpu",
                         counter="percpu_counts", sizes=(64, 512))
    with pytest.raises(xdplab.LabError, match="are not linked"):
        perf.receive_rates(lab.client, lab.client, prog, frame(lab), fn="rung_percpu",
                           counter="percpu_counts")
    with pytest.raises(xdplab.LabError, match="repeat must be"):
        perf.ladder(prog, frame(lab), repeat=0)
    assert lab.server.iface().xdp().mode is None and not prog.attachments


def test_machine_describes_this_machine():
    m = perf.machine()
    assert m.cpus == os.cpu_count() and m.kernel == os.uname().release
    assert "CPUs" in repr(m)
