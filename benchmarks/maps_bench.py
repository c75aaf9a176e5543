"""Snapshot speed of a big hash map: one lookup per key vs BPF_MAP_LOOKUP_BATCH.

    .venv/bin/python benchmarks/maps_bench.py [entries]

`bench_snapshot()` fills a hash map (u32 → u64) from user space in one BPF_MAP_UPDATE_BATCH and
times xdplab's typed snapshot both ways (best of `repeat`), next to bcc's own Table reads, to the
floor — one BPF_MAP_LOOKUP_BATCH loop into ctypes arrays and dict(zip()) — and to clearing the
map, and checks that all ways return the same dict. Peak extra memory: what a snapshot allocates
beyond the dict it returns (tracemalloc), per raw key + value byte.
"""
import ctypes
import json
import os
import statistics
import sys
import time
import tracemalloc

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


def _median(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def floor_read(fd, entries, key=ctypes.c_uint32, value=ctypes.c_uint64):
    """The floor: BPF_MAP_LOOKUP_BATCH in a loop straight into two ctypes arrays, dict(zip())."""
    lib = xdplab.maps.libbpf()
    keys, values = (key * entries)(), (value * entries)()
    token_in, token_out = key(), key()
    got, first = 0, True
    while got < entries:
        count = ctypes.c_uint32(entries - got)
        rc = lib.bpf_map_lookup_batch(fd, None if first else ctypes.byref(token_in),
                                      ctypes.byref(token_out), ctypes.byref(keys, got * ctypes.sizeof(key)),
                                      ctypes.byref(values, got * ctypes.sizeof(value)),
                                      ctypes.byref(count), None)
        got += count.value
        if rc != 0:
            break
        token_in.value, first = token_out.value, False
    if got == entries:
        return dict(zip(keys, values))
    return dict(zip(keys[:got], values[:got]))


def peak_extra(fn):
    """Bytes fn() allocates at its peak beyond what its result keeps."""
    tracemalloc.start()
    try:
        result = fn()
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return peak - kept


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
        floor_result = floor_read(m.fd, entries)
        # the ratio of medians, taken alternately so both see the same machine load
        ours_t, floor_t = [], []
        for _ in range(max(repeat, 5)):
            ours_t.append(_median(lambda: m.snapshot(batch=True), 1))
            floor_t.append(_median(lambda: floor_read(m.fd, entries), 1))
        raw = entries * (m.key_size + m.value_size)
        extra = peak_extra(lambda: m.snapshot(batch=True))
        floor_extra = peak_extra(lambda: floor_read(m.fd, entries))
        t = time.perf_counter()
        m.clear()
        clear = time.perf_counter() - t
        cleared = len(m) == 0
    return {
        "entries": entries,
        "per_key_s": round(per_key, 4),
        "batch_s": round(batch, 4),
        "speedup": round(per_key / batch, 1),
        "identical": a == b == floor_result and len(a) == entries,
        "batch_median_s": round(statistics.median(ours_t), 4),
        "floor_median_s": round(statistics.median(floor_t), 4),     # batch loop into ctypes arrays
        "vs_floor": round(statistics.median(ours_t) / statistics.median(floor_t), 2),
        "peak_extra_per_raw_byte": round(extra / raw, 2),
        "floor_peak_extra_per_raw_byte": round(floor_extra / raw, 2),
        "bcc_items_s": round(bcc_items, 4),            # bcc Table.items(): per key, untyped
        "bcc_lookup_batch_s": round(bcc_batch, 4),     # bcc Table.items_lookup_batch(), untyped
        "clear_s": round(clear, 4),
        "cleared": cleared,
    }


if __name__ == "__main__":
    print(json.dumps(bench_snapshot(int(sys.argv[1]) if len(sys.argv) > 1 else 65536), indent=2))
