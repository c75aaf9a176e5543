"""Snapshot speed of a big hash map: one lookup per key vs BPF_MAP_LOOKUP_BATCH.

    .venv/bin/python benchmarks/maps_bench.py [entries]

`bench_snapshot()` fills a hash map (u32 → u64) from user space in one BPF_MAP_UPDATE_BATCH and
times xdplab's typed snapshot both ways (best of `repeat`), next to bcc's own Table reads and
to clearing the map, and checks that both ways return the same dict.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import xdplab  # noqa: E402

SOURCE = r"""
BPF_HASH(big, u32, u64, %d);
int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }
"""


def _best(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def _v(x):                      # bcc hands out ctypes scalars, or ints from its batch arrays
    return getattr(x, "value", x)


def _fill(table, entries):
    keys = (table.Key * entries)(*range(entries))
    values = (table.Leaf * entries)(*(3 * k + 1 for k in range(entries)))
    table.items_update_batch(keys, values)


def bench_snapshot(entries=65536, repeat=3):
    """Seconds for a typed snapshot of an `entries`-entry hash, per key and batched."""
    with xdplab.Lab() as lab:
        prog = lab.load(SOURCE % entries)
        m, table = prog.maps["big"], prog.bpf["big"]
        _fill(table, entries)
        per_key, a = _best(lambda: m.snapshot(batch=False), repeat)
        batch, b = _best(lambda: m.snapshot(batch=True), repeat)
        bcc_items, _ = _best(lambda: {_v(k): _v(v) for k, v in table.items()}, repeat)
        bcc_batch, _ = _best(lambda: {_v(k): _v(v) for k, v in table.items_lookup_batch()}, repeat)
        t = time.perf_counter()
        m.clear()
        clear = time.perf_counter() - t
        cleared = len(m) == 0
    return {
        "entries": entries,
        "per_key_s": round(per_key, 4),
        "batch_s": round(batch, 4),
        "speedup": round(per_key / batch, 1),
        "identical": a == b and len(a) == entries,
        "bcc_items_s": round(bcc_items, 4),            # bcc Table.items(): per key, untyped
        "bcc_lookup_batch_s": round(bcc_batch, 4),     # bcc Table.items_lookup_batch(), untyped
        "clear_s": round(clear, 4),
        "cleared": cleared,
    }


if __name__ == "__main__":
    print(json.dumps(bench_snapshot(int(sys.argv[1]) if len(sys.argv) > 1 else 65536), indent=2))
