"""xdplab benchmarks: one table from one run, on one veth pair (client → server).

    sudo make bench          (or: sudo .venv/bin/python benchmarks/run.py)

Rows:
  * sending: the fast injector (XDP live frames), xdplab's AF_PACKET path, scapy's sendp and
    tcpreplay (when installed), each counted by a native XDP program on the server (XDP_DROP, so
    the receiver's stack is not what is measured) — loss is what the receiver did not count;
  * a typed snapshot of a 65,536-entry hash map, per key vs BPF_MAP_LOOKUP_BATCH;
  * the live map table's refresh rate and CPU share, small map and 65,536-entry hash;
  * compile → attached latency (a fresh source each time, as a learner's edited cell is);
  * lab up and down (a client–server pair, and client–router–server).
Numbers depend on the machine and on what else runs; ratios within one run are what to compare.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scapy.all import IP, UDP, Ether, wrpcap  # noqa: E402

import xdplab  # noqa: E402

from maps_bench import bench_snapshot  # noqa: E402
from widgets_bench import bench_refresh  # noqa: E402

COUNTER = r"""
/* run %d: counts every UDP frame to port 9, drops it */
#include "parsing_helpers.h"
BPF_PERCPU_ARRAY(received, u64, 1);
int xdp_sink(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = (void *)(eth + 1);
    struct udphdr *udp = (void *)(ip + 1);
    if ((void *)(udp + 1) > data_end || ip->protocol != IPPROTO_UDP || udp->dest != bpf_htons(9))
        return XDP_PASS;
    u32 key = 0;
    u64 *v = received.lookup(&key);
    if (v)
        *v += 1;
    return XDP_DROP;
}
"""

rows = []


def row(what, value, detail=""):
    rows.append((what, value, detail))
    print(f"  {what:<46} {value:>14}  {detail}", file=sys.stderr)


def rate(n, seconds):
    pps = n / seconds if seconds else 0
    return f"{pps / 1e6:.2f} Mpps" if pps >= 1e6 else f"{pps / 1e3:.0f} kpps"


def received(prog):
    return prog.maps["received"].snapshot()[0]


def counted(prog, sender, n):
    """Run sender() (→ seconds), return (seconds, frames the server counted)."""
    before = received(prog)
    seconds = sender()
    time.sleep(0.3)
    return seconds, received(prog) - before


def bench_sending(lab, prog):
    pkt = IP(dst=lab.server.ip) / UDP(sport=40000, dport=9) / (b"x" * 18)
    frame = Ether(src=lab.client.mac, dst=lab.server.mac) / IP(src=lab.client.ip, dst=lab.server.ip) \
        / UDP(sport=40000, dport=9) / (b"x" * 18)
    cases = [("injector (XDP live frames)", 2_000_000,
              lambda n: lab.client.send(pkt, count=n, method="live_frames").seconds),
             ("xdplab AF_PACKET", 200_000,
              lambda n: lab.client.send(pkt, count=n, method="af_packet").seconds)]

    def scapy_sendp(n):
        # in a process of its own inside the client (scapy resolves interfaces per process);
        # the time is taken around sendp alone, without Python's start-up
        code = ("import sys, time; from scapy.all import Ether, sendp; "
                f"f = Ether(bytes.fromhex('{bytes(frame).hex()}')); t = time.perf_counter(); "
                f"sendp(f, iface='{lab.client.ifname}', count={n}, verbose=False); "
                "print(time.perf_counter() - t)")
        return float(lab.client.run([sys.executable, "-c", code], timeout=300).stdout)
    cases.append(("scapy sendp", 20_000, scapy_sendp))

    if subprocess.run(["which", "tcpreplay"], capture_output=True).returncode == 0:
        pcap = tempfile.NamedTemporaryFile(suffix=".pcap", delete=False).name
        wrpcap(pcap, [frame])

        def tcpreplay(n):
            t = time.perf_counter()
            lab.client.run(["tcpreplay", "-q", "--topspeed", "--preload-pcap", f"--loop={n}",
                            "-i", lab.client.ifname, pcap], timeout=300)
            return time.perf_counter() - t
        cases.append(("tcpreplay --topspeed", 200_000, tcpreplay))
    else:
        row("tcpreplay", "not installed", "")
    for name, n, sender in cases:
        seconds, got = counted(prog, lambda: sender(n), n)
        loss = (n - got) / n
        row(f"send: {name}, {n:,} frames", rate(n, seconds), f"loss {loss:.2%} (counted {got:,})")


def bench_compile(lab):
    times = []
    for i in range(3):
        t = time.perf_counter()
        prog = lab.load(COUNTER % (time.time_ns() + i))
        prog.attach(lab.server)
        times.append(time.perf_counter() - t)
        prog.close()
    row("compile → attached (fresh source)", f"{statistics.median(times) * 1000:.0f} ms",
        f"median of 3, min {min(times) * 1000:.0f} ms")


def bench_lab():
    for name, build in (("pair", lambda: xdplab.Lab.pair()), ("client–router–server", _three)):
        up, down = [], []
        for _ in range(3):
            t = time.perf_counter()
            lab = build()
            up.append(time.perf_counter() - t)
            t = time.perf_counter()
            lab.close()
            down.append(time.perf_counter() - t)
        row(f"lab up: {name}", f"{statistics.median(up) * 1000:.0f} ms", "median of 3")
        row(f"lab down: {name}", f"{statistics.median(down) * 1000:.0f} ms", "median of 3")


def _three():
    lab = xdplab.Lab()
    c, r, s = lab.host("client"), lab.host("router"), lab.host("server")
    lab.link(c, r)
    lab.link(r, s)
    return lab


def main():
    print(f"xdplab benchmarks on Linux {os.uname().release}, {os.cpu_count()} CPUs", file=sys.stderr)
    with xdplab.Lab.pair() as lab:
        prog = lab.load(COUNTER % 0)
        prog.attach(lab.server)
        bench_sending(lab, prog)
        bench_compile(lab)
    snap = bench_snapshot(65536)
    row("map snapshot, 65,536-entry hash, per key", f"{snap['per_key_s'] * 1000:.0f} ms",
        "typed, one lookup per key")
    row("map snapshot, 65,536-entry hash, batch", f"{snap['batch_s'] * 1000:.0f} ms",
        f"{snap['speedup']}x faster; identical result: {snap['identical']}")
    w = bench_refresh()
    row("live map table, small map, interval 0.1 s", f"{w['small_refreshes_per_s']}/s",
        f"{w['small_cpu_share']:.1%} of a core (target ≥ 10/s, < 10 %); "
        f"{w['small_refreshes_per_s_under_traffic']}/s while traffic flows")
    row("live map table, 65,536-entry hash, interval 0.5 s", f"{w['big_refreshes_per_s_at_0.5s']}/s",
        f"one refresh {w['big_refresh_s'] * 1000:.0f} ms, {w['big_cpu_share']:.0%} of a core "
        "(target ≥ 1/s)")
    bench_lab()
    print("\n| what | result | detail |\n|---|---:|---|")
    for what, value, detail in rows:
        print(f"| {what} | {value} | {detail} |")


if __name__ == "__main__":
    main()
