"""xdplab.qos and bpf/lesson08_policer.c: qdisc statistics, paced floods, latency under load, and
the XDP token-bucket policer, on real labs with real packets."""
import ipaddress
import subprocess
import threading
import time

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

import xdplab
from xdplab import qos
from xdplab.counters import link_stats
from xdplab.cpus import run_on_all_cpus

PAYLOAD = b"x" * 958            # 1000-byte frames: 14 Ethernet + 20 IPv4 + 8 UDP + 958


@pytest.fixture
def line():
    """a — router — server, the router–server link shaped to 10 Mbit/s."""
    with xdplab.Lab() as lab:
        a, r, s = lab.host("a"), lab.host("router"), lab.host("server")
        lab.link(a, r)
        lab.link(r, s, rate="10mbit")
        yield lab


@pytest.fixture(scope="module")
def policer_lab():
    with xdplab.Lab() as lab:
        yield lab, lab.load("lesson08_policer.c")


def frame(src, size=1000):
    return Ether() / IP(src=src, dst="10.0.0.2") / UDP(dport=9) / Raw(b"x" * (size - 42))


def counts(prog, src):
    return prog.maps["stats"].snapshot().get(ipaddress.ip_address(src))


# -- units -----------------------------------------------------------------------------------------

def test_rates_and_sizes_are_read_as_tc_reads_them():
    assert qos.parse_rate("10mbit") == 10_000_000
    assert qos.parse_rate("2.5Mbit") == 2_500_000
    assert qos.parse_rate("125kbps") == 1_000_000        # tc: bps is bytes per second
    assert qos.parse_rate(8000) == 8000
    assert qos.parse_size("16kb") == 16384 and qos.parse_size("1500b") == 1500
    assert qos.parse_size(3000) == 3000
    for bad in ("fast", "10 parsecs", "-3mbit", "0mbit", True):
        with pytest.raises(xdplab.LabError) as e:
            qos.parse_rate(bad)
        assert "10mbit" in e.value.hint
    with pytest.raises(xdplab.LabError):
        qos.parse_size("16kbit")


# -- the qdisc -------------------------------------------------------------------------------------

@pytest.mark.kernel
def test_qdisc_stats_read_the_tbf_of_a_shaped_link(line):
    r, s = line["router"], line["server"]
    bottleneck = r.iface(s)
    before = qos.qdisc_stats(bottleneck)
    assert (before.kind, before.rate, before.limit) == ("tbf", 1_250_000, 1_250_000 // 10 + 16384)
    tc = subprocess.run(["ip", "netns", "exec", r.ns, "tc", "qdisc", "show", "dev", bottleneck.name],
                        capture_output=True, text=True).stdout
    assert f"qdisc tbf {before.handle} root" in tc
    assert line["a"].ping(s, count=3, interval=0.05).received == 3
    delta = qos.qdisc_stats(bottleneck).since(before)
    assert delta.packets == 3 and delta.bytes == 3 * 98 and delta.drops == 0   # 98-byte echo frames
    with pytest.raises(xdplab.LabError):
        qos.qdisc_stats("eth0")


@pytest.mark.kernel
def test_have_qdisc_tries_on_loopback_and_leaves_it_as_it_was(line):
    r = line["router"]
    assert qos.have_qdisc(r, "tbf") and qos.have_qdisc(r, "htb")
    assert not qos.have_qdisc(r, "nosuchqdisc")
    assert "noqueue" in r.run("tc qdisc show dev lo").stdout


def test_set_queue_replaces_the_queue_inside_tbf(line):
    r, s = line["router"], line["server"]
    bottleneck = r.iface(s)
    root = qos.set_queue(bottleneck, "bfifo", "limit", "15kb")
    shown = r.run(["tc", "qdisc", "show", "dev", bottleneck.name]).stdout
    assert f"parent {root.handle}1 limit 15Kb" in shown and root.kind == "tbf"
    qos.set_queue(bottleneck, "pfifo", "limit", 10)
    assert "pfifo" in r.run(["tc", "qdisc", "show", "dev", bottleneck.name]).stdout
    with pytest.raises(xdplab.LabError) as e:
        qos.set_queue(bottleneck, "nosuchqdisc")
    assert "have_qdisc" in e.value.hint
    with pytest.raises(xdplab.LabError) as e:          # an unshaped link has no tbf
        qos.set_queue(line["a"].iface(), "bfifo")
    assert "rate=" in e.value.hint


# -- the policer, run in the kernel without a network --------------------------------------------------

def test_policer_passes_a_burst_then_drops_then_refills(policer_lab):
    lab, prog = policer_lab
    prog.maps["buckets"].clear()
    prog.maps["stats"].clear()
    assert qos.set_policy(prog, "100kbit", burst="8000") == (12_500, 8000)
    one = frame("10.0.0.1")
    assert prog.test_run(one, repeat=19).verdict == "XDP_PASS"     # 20 runs within microseconds
    # a full bucket of 8000 bytes: 8 frames; the next 1000 bytes take 80 ms to earn at 12,500 B/s
    assert counts(prog, "10.0.0.1") == (8, 8000, 12, 12000)
    assert prog.test_run(one).verdict == "XDP_DROP"
    time.sleep(0.7)                                  # 0.7 s at 12,500 B/s refills it completely
    prog.test_run(one, repeat=9)
    assert counts(prog, "10.0.0.1") == (16, 16000, 15, 15000)
    # another source has a bucket of its own
    assert prog.test_run(frame("10.0.0.9")).verdict == "XDP_PASS"
    assert counts(prog, "10.0.0.9").passed == 1


def fill_with_strangers(prog, n):
    """One frame from each of n made-up sources in 198.18.0.0/15, through the program."""
    first = ipaddress.ip_address("198.18.0.0")
    for i in range(n):
        prog.test_run(frame(str(first + i), size=64))


def test_a_new_source_is_policed_after_made_up_sources_filled_the_table(policer_lab):
    """More made-up sources than `buckets` holds: the LRU hash evicts the least recently seen, so a
    source that comes after them gets a bucket and is policed (a plain hash had no room: it passed)."""
    lab, prog = policer_lab
    prog.maps["buckets"].clear()
    prog.maps["stats"].clear()
    qos.set_policy(prog, "100kbit", burst="8000")
    fill_with_strangers(prog, 3 * 1024)
    table = prog.maps["buckets"].snapshot()
    assert 0 < len(table) <= 1024, len(table)
    # (which strangers stay is the kernel's LRU's choice: it is approximate, with lists per CPU)
    before = prog.maps["stats"].snapshot()
    assert prog.test_run(frame("10.0.0.7"), repeat=19).verdict == "XDP_PASS"   # 20 runs
    assert qos.verdicts(prog, "10.0.0.7", since=before) == (8, 8000, 12, 12000)
    assert ipaddress.ip_address("10.0.0.7") in prog.maps["buckets"].snapshot()


def test_a_plain_hash_fails_open_once_strangers_fill_it(policer_lab):
    """The test above fails on the program as it was: with a plain hash, a source that comes after
    the table is full finds no room and every frame of it passes."""
    lab, _ = policer_lab
    source = xdplab.show("lesson08_policer.c").text
    lru = 'BPF_TABLE("lru_hash", __be32, struct bucket, buckets, 1024);'
    assert lru in source
    plain = lab.load(source.replace(lru, "BPF_HASH(buckets, __be32, struct bucket, 1024);"))
    qos.set_policy(plain, "100kbit", burst="8000")
    fill_with_strangers(plain, 3 * 1024)
    assert len(plain.maps["buckets"].snapshot()) == 1024
    plain.test_run(frame("10.0.0.7"), repeat=19)                               # 20 runs
    assert qos.verdicts(plain, "10.0.0.7") == (20, 20000, 0, 0)


def test_verdicts_since_a_snapshot_count_only_what_came_after(policer_lab):
    lab, prog = policer_lab
    prog.maps["stats"].clear()
    qos.set_policy(prog, None)
    prog.test_run(frame("10.0.0.8"), repeat=2)                 # 3 runs
    before = prog.maps["stats"].snapshot()
    prog.test_run(frame("10.0.0.8"))
    prog.test_run(frame("10.0.0.8"))
    assert qos.verdicts(prog, "10.0.0.8") == (5, 5000, 0, 0)
    assert qos.verdicts(prog, "10.0.0.8", since=before) == (2, 2000, 0, 0)
    assert qos.verdicts(prog, "10.0.0.8", since={}) == (5, 5000, 0, 0)
    with pytest.raises(xdplab.LabError) as e:
        qos.verdicts(prog, "10.0.0.99")
    assert "counted nothing" in e.value.message
    prog.maps["stats"].clear()
    prog.test_run(frame("10.0.0.8"))
    with pytest.raises(xdplab.LabError) as e:             # the entry was made again since `before`
        qos.verdicts(prog, "10.0.0.8", since=before)
    assert "new snapshot" in e.value.hint


def test_policer_off_and_non_ipv4(policer_lab):
    lab, prog = policer_lab
    prog.maps["stats"].clear()
    assert qos.set_policy(prog, None) == (0, 0)
    assert all(prog.test_run(frame("10.0.0.2")).verdict == "XDP_PASS" for _ in range(30))
    assert counts(prog, "10.0.0.2") == (30, 30000, 0, 0)
    qos.set_policy(prog, "1mbit", burst="2kb")
    v6 = Ether() / IPv6(src="fd00::1", dst="fd00::2") / UDP() / Raw(PAYLOAD)
    assert all(prog.test_run(v6).verdict == "XDP_PASS" for _ in range(5))
    assert len(prog.maps["stats"].snapshot()) == 1        # only 10.0.0.2: IPv6 is not counted


def test_set_policy_refuses_what_the_program_cannot_do(policer_lab):
    lab, prog = policer_lab
    with pytest.raises(xdplab.LabError) as e:
        qos.set_policy(prog, "1mbit", burst="1000b")          # no full-size frame fits
    assert "2kb" in e.value.hint
    with pytest.raises(xdplab.LabError) as e:
        qos.set_policy(prog, "1mbit", burst="1mb")            # more than a second of tokens
    assert "burst <=" in e.value.hint


def test_policer_holds_its_rate_on_all_cpus_at_once(policer_lab):
    """Every CPU takes from one bucket at the same time: the spin lock keeps the refill-and-take
    whole, so no more passes than burst + rate × time."""
    lab, prog = policer_lab
    prog.maps["buckets"].clear()
    prog.maps["stats"].clear()
    qos.set_policy(prog, "8mbit", burst="16kb")
    start = time.monotonic()
    runs = run_on_all_cpus(prog, frame("10.0.0.3"), repeat=300_000)
    elapsed = time.monotonic() - start
    seen = counts(prog, "10.0.0.3")
    assert seen.passed + seen.dropped == runs.total
    assert seen.passed_bytes <= 16384 + 1_000_000 * elapsed + 1000, (seen, elapsed)
    assert seen.passed >= 16                         # at least the full bucket it started with


# -- traffic and measurements on the lab ------------------------------------------------------------------

def test_flood_is_paced_and_every_frame_arrives():
    with xdplab.Lab.pair() as lab:
        c, s = lab.client, lab.server
        before = link_stats(s.iface())["rx_packets"]
        flood = qos.Flood(c, IP(dst=s.ip) / UDP(dport=9) / Raw(PAYLOAD), "8mbit", seconds=1)
        assert flood.frame_len == 1000 and flood.pps == 1000
        assert "8 Mbit/s" in repr(flood)
        flood.wait()
        assert not flood.running and flood.error is None
        assert flood.sent <= 1000 * 1 + 2             # never ahead of the rate
        deadline = time.monotonic() + 2
        while link_stats(s.iface())["rx_packets"] - before < flood.sent and time.monotonic() < deadline:
            time.sleep(0.01)
        assert link_stats(s.iface())["rx_packets"] - before == flood.sent


def test_a_full_queue_delays_pings_and_the_policer_empties_it(line):
    a, r, s = line["a"], line["router"], line["server"]
    bottleneck = r.iface(s)
    counter = line.load("lesson02_sources.c")
    counter.attach(s)
    flood = IP(dst=s.ip) / UDP(dport=9) / Raw(PAYLOAD)
    # the probe pings from the router, whose own packets do not pass the policer on its eth0
    idle = qos.LoadTest(r, s, bottleneck, seconds=1, name="idle").wait()
    loaded = qos.LoadTest(r, s, bottleneck, floods=[(a, flood, "25mbit")], seconds=2,
                          count_at=counter.maps["by_source"]).wait()
    assert idle.pings == (20, 20) and loaded.sent["a"] > 0
    assert loaded.median_rtt > max(10, 5 * idle.median_rtt), (idle.median_rtt, loaded.median_rtt)
    assert abs(loaded.median_rtt - loaded.queue_delay_at_pings) < 0.25 * loaded.median_rtt
    assert loaded.queue_delay_at_pings <= 1.25 * loaded.median_queue_delay   # a full queue drops pings
    lost = loaded.pings[0] - loaded.pings[1]
    assert loaded.delivered["a"] + loaded.qdisc.drops == loaded.sent["a"] + lost
    assert loaded.qdisc.drops > 0 and max(b for _, b in loaded.queue) > 100_000

    policer = line.load("lesson08_policer.c")
    policer.attach(r.iface(a))
    qos.set_policy(policer, "4mbit", burst="16kb")
    policed = qos.LoadTest(r, s, bottleneck, floods=[(a, flood, "25mbit")], seconds=2,
                           count_at=counter.maps["by_source"], name="policed").wait()
    seen = counts(policer, a.ip)
    assert seen.passed + seen.dropped == policed.sent["a"]
    assert policed.delivered["a"] == seen.passed and policed.qdisc.drops == 0
    assert seen.passed_bytes <= 16384 + 500_000 * policed.seconds * 1.05
    assert policed.median_rtt < loaded.median_rtt / 5
    assert policed.summary()["a delivered"] == seen.passed
    assert set(policed.throughput) == {"a"} and qos.shares(policed) == {"a": 1.0}

    fig = qos.plot(idle, loaded, policed)
    top, bottom = fig.axes
    assert len(top.lines) == len(bottom.lines) == 3
    assert "<table>" in qos.table(idle, loaded, policed).data


def test_chart_stops_when_the_test_ends_and_close_stops_everything(line):
    a, r, s = line["a"], line["router"], line["server"]
    test = qos.LoadTest(r, s, r.iface(s), seconds=0.5)
    chart = test.chart()
    assert set(chart.sources) == {"ping RTT (ms)", "queue delay (ms)"}
    test.wait()
    deadline = time.monotonic() + 3
    while chart.refresher.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not chart.refresher.running
    long = qos.LoadTest(r, s, r.iface(s), floods=[(a, IP(dst=s.ip) / UDP(dport=9), "1mbit")],
                        seconds=60)
    assert long.running
    line.close()
    assert not long.running and long._ping.wait(timeout=5) is not None
    mine = ("xdplab-flood", "xdplab-ping", "xdplab-qdisc", "xdplab-loadtest")
    deadline = time.monotonic() + 3
    while any(t.name.startswith(mine) for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [t.name for t in threading.enumerate() if t.name.startswith(mine)]


def test_loadtest_errors_are_explained(line):
    r, s = line["router"], line["server"]
    with pytest.raises(xdplab.LabError) as e:
        qos.LoadTest(r, s, "eth1")
    assert "router.iface(server)" in e.value.hint
    with pytest.raises(xdplab.LabError):
        qos.LoadTest(r, s, r.iface(s), floods=[(line["a"], IP(dst=s.ip) / UDP(), "fast")])


def test_link_full_tells_a_kept_full_link_from_a_flood_sent_in_bursts():
    """Lesson 08's timing proofs need a link kept full; a machine that sends the flood in bursts
    (too busy, or emulated) is told apart and named, from what the test measured."""
    def measured(queue, offered):
        t = qos.LoadTest.__new__(qos.LoadTest)
        t.floods, t.seconds, t.link_rate, t.offered = [object()], 4.0, 1_250_000, offered
        t.queue = queue
        return t.link_full()
    steady = [(0.1 * i, 0 if i < 2 else 140_000) for i in range(41)]
    ok, why = measured(steady, 3_100_000)
    assert ok and why.startswith("the link was kept full: the floods sent 24.8 Mbit/s (2.5 ×"), why
    bursts = [(0.1 * i, 140_000 if i % 3 else 0) for i in range(41)]
    ok, why = measured(bursts, 2_000_000)
    assert not ok and "queue held frames in 67%" in why and "too busy or too slow" in why, why
    ok, why = measured(steady, 1_300_000)           # a queue, but hardly more than the link takes
    assert not ok and "1.0 × the link's rate" in why, why
    assert qos.LoadTest.__new__(qos.LoadTest).__class__.link_full(
        type("T", (), {"floods": []})()) == (False, "nobody flooded")
