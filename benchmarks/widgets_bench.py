"""Live widget refresh cost: a MapView on a small map at 10 refreshes/s, and on a 65,536-entry hash.

    .venv/bin/python benchmarks/widgets_bench.py

`bench_refresh()` lets a MapView of a 5-entry per-CPU array (xdp_count.c, with packets flowing)
refresh in its own thread at interval 0.1 s for a few seconds and reports refreshes per second and
the CPU share of the whole process (process_time / wall time: the refresh thread plus anything
else this process does). Then it fills a 65,536-entry hash (u32 → u64) from user space and times
one refresh of a MapView on it (typed batch snapshot, heapq top-20, rates, HTML), also while the
entries change, and how often its refresher then actually refreshes at interval 0.5 s.
Targets: ≥ 10 refreshes/s with < 10 % of a core on the small map; ≥ 1 refresh/s on the big hash.
"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import xdplab  # noqa: E402
from xdplab import widgets  # noqa: E402

BIG = r"""
BPF_HASH(big, u32, u64, 65536);
int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }
"""


def _run_for(view, seconds):
    """(refreshes/s, CPU share of this process) while `view` refreshes in its own thread for
    about `seconds`, timed from one completed refresh to another."""
    r = view.refresher
    n = max(2, round(seconds / r.interval))
    r.wait(1)
    c0, w0, p0 = r.count, time.perf_counter(), time.process_time()
    r.wait(n, timeout=10 * seconds)
    c1, w1, p1 = r.count, time.perf_counter(), time.process_time()
    return (c1 - c0) / (w1 - w0), (p1 - p0) / (w1 - w0)


def _fill(table, entries, base=1):
    keys = (table.Key * entries)(*range(entries))
    values = (table.Leaf * entries)(*(base + 3 * k for k in range(entries)))
    table.items_update_batch(keys, values)


def bench_refresh(seconds=5.0, entries=65536):
    from scapy.all import IP, UDP
    out = {}
    with xdplab.Lab.pair() as lab:
        prog = lab.load("xdp_count.c")
        prog.attach(lab.server)
        lab.client.send(IP(dst=lab.server.ip) / UDP(dport=9), count=10)
        view = prog.maps["counters"].widget(interval=0.1)
        idle_rate, idle_cpu = _run_for(view, seconds)
        # the same while a sender thread keeps packets flowing (the injector mostly runs in the
        # kernel, but its CPU time counts in this process: reported apart)
        stop = threading.Event()

        def traffic():
            while not stop.is_set():
                lab.client.send(IP(dst=lab.server.ip) / UDP(dport=9), count=200_000)
        t = threading.Thread(target=traffic, daemon=True)
        t.start()
        busy_rate, _ = _run_for(view, seconds)
        stop.set()
        t.join()
        view.close()
        out.update({
            "small_map_interval_s": 0.1,
            "small_refreshes_per_s": round(idle_rate, 1),
            "small_cpu_share": round(idle_cpu, 3),           # of one core, whole process
            "small_refresh_ms": round(1000 * view.refresher.last_duration, 2),
            "small_refreshes_per_s_under_traffic": round(busy_rate, 1),
        })

        prog2 = lab.load(BIG)
        table = prog2.bpf["big"]
        _fill(table, entries)
        big = prog2.maps["big"].widget(interval=0.5, top=20)
        times = []
        for i in range(5):                      # one refresh at a time, entries changing
            _fill(table, entries, base=i * 7 + 2)
            t0 = time.perf_counter()
            big.refresher.refresh()
            times.append(time.perf_counter() - t0)
        big_rate, big_cpu = _run_for(big, seconds)
        out.update({
            "big_entries": entries,
            "big_total_shown": big.total,
            "big_refresh_s": round(min(times), 4),
            "big_refresh_s_median": round(sorted(times)[len(times) // 2], 4),
            "big_refreshes_per_s_at_0.5s": round(big_rate, 2),
            "big_cpu_share": round(big_cpu, 3),
            "big_skipped_ticks": big.refresher.skipped,
        })
        big.close()
    out["threads_left"] = len(widgets.active())
    return out


if __name__ == "__main__":
    print(json.dumps(bench_refresh(), indent=2))
