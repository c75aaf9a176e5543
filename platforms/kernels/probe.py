"""Measures the kernel-sensitive claims of the lessons on the running kernel and prints them as JSON.

Run as root inside a kernel-matrix guest (platforms/kernels/guest.sh) — or on any machine: it
only builds its own lab (namespaces, veths) and removes it. Nothing here asserts: it records what
the kernel does, raw, so that platforms/kernels/FINDINGS.md and a feature probe in xdplab can be
built from it.

  redirect  lesson 05's devmap wire (bpf/lesson05_redirect.c, native on the router's port facing
            the client) sends 50 frames into the router's veth towards the server, whose end has
            no XDP program and GRO off ("trap"), then GRO on ("gro"). Recorded per case: every
            xdp:* tracepoint event (tracefs instance of our own) by name and err, the deltas of
            the link counters (IFLA_STATS64) and of ethtool -S of every lab interface involved.
  live      whether BPF_PROG_TEST_RUN accepts BPF_F_TEST_XDP_LIVE_FRAMES (and the errno if not)
  features  whether the netdev generic netlink family answers, and the XDP features of a veth
  qdiscs    tc qdisc replace of tbf, htb, fq_codel, netem, fq, cake on a lab veth: rc, stderr,
            and which modules the kernel loaded for it
"""
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import xdplab  # noqa: E402
from xdplab import kernel, netns  # noqa: E402

TRACING = Path("/sys/kernel/tracing")
FRAMES = 50


def modules():
    try:
        return {line.split()[0] for line in open("/proc/modules")}
    except OSError:
        return set()


def link_counters(iface):
    out = subprocess.run(["ip", "-n", iface.host.ns, "-s", "-s", "-j", "link", "show", "dev",
                          iface.name], capture_output=True, text=True, check=True).stdout
    stats = json.loads(out)[0].get("stats64", {})
    flat = {}
    for direction in ("rx", "tx"):
        for k, v in stats.get(direction, {}).items():
            if isinstance(v, int):
                flat[f"{direction}_{k}"] = v
    return flat


def ethtool_counters(iface):
    res = subprocess.run(["ip", "netns", "exec", iface.host.ns, "ethtool", "-S", iface.name],
                         capture_output=True, text=True)
    out = {}
    for line in res.stdout.splitlines()[1:]:
        if ":" in line:
            k, v = line.rsplit(":", 1)
            try:
                out[k.strip()] = int(v)
            except ValueError:
                pass
    return out


def delta(before, after):
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(set(before) | set(after))
            if after.get(k, 0) != before.get(k, 0)}


class XdpEvents:
    """Every xdp:* tracepoint event, in a tracefs instance of our own (other readers unaffected)."""

    def __init__(self):
        self.dir = TRACING / "instances" / f"xdplab_probe_{os.getpid()}"
        self.dir.mkdir()
        (self.dir / "buffer_size_kb").write_text("4096")
        (self.dir / "events" / "xdp" / "enable").write_text("1")

    def take(self):
        """The events since the last take, as {"name err=E": count} and a few raw lines."""
        text = (self.dir / "trace").read_text()
        (self.dir / "trace").write_text("")
        counts, samples = {}, {}
        for line in text.splitlines():
            m = re.search(r"\s(xdp_\w+):\s(.*)$", line)
            if not m:
                continue
            name, rest = m.groups()
            err = re.search(r"\berr=(-?\d+)", rest)
            drops = re.search(r"\bdrops=(\d+)", rest)
            sent = re.search(r"\bsent=(\d+)", rest)
            key = name + (f" err={err.group(1)}" if err else "")
            c = counts.setdefault(key, {"events": 0, "drops": 0, "sent": 0})
            c["events"] += 1
            c["drops"] += int(drops.group(1)) if drops else 0
            c["sent"] += int(sent.group(1)) if sent else 0
            samples.setdefault(key, rest.strip())
        return {"counts": counts, "sample": samples}

    def close(self):
        try:
            (self.dir / "events" / "xdp" / "enable").write_text("0")
        finally:
            self.dir.rmdir()


def probe_redirect(lab):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from xdplab.forwarding import devmap_set
    c, r, s = lab["client"], lab["router"], lab["server"]
    t0 = time.perf_counter()
    prog = lab.load("lesson05_redirect.c")
    compile_s = time.perf_counter() - t0
    tx_port = prog.maps["tx_port"].declare(key="int")
    devmap_set(tx_port, r.iface(c), r.iface(s))
    devmap_set(tx_port, r.iface(s), r.iface(c))
    prog.attach(r.iface(c), fix_veth=False)
    prog.attach(r.iface(s), fix_veth=False)
    s.iface().gro(False)
    c.iface().gro(False)
    ifaces = {"client:eth0": c.iface(), "router:eth0 (from client, XDP)": r.iface(c),
              "router:eth1 (redirect target)": r.iface(s), "server:eth0 (peer, no XDP)": s.iface()}
    frame = Ether(dst=s.mac) / IP(dst=s.ip) / UDP(dport=9) / b"probe"
    events = XdpEvents()
    cases = {}
    try:
        for case, gro in (("trap", False), ("gro", True)):
            s.iface().gro(gro)
            events.take()
            before = {n: (link_counters(i), ethtool_counters(i)) for n, i in ifaces.items()}
            counters_before = prog.maps["counters"].snapshot()
            report = c.send(frame, count=FRAMES, method="af_packet")
            time.sleep(1.0)
            after = {n: (link_counters(i), ethtool_counters(i)) for n, i in ifaces.items()}
            counted = prog.maps["counters"].snapshot()
            cases[case] = {
                "server_gro": s.iface().gro(),
                "sent": report.sent,
                "program_actions": {str(k): (v.packets if hasattr(v, "packets") else v)
                                    - getattr(counters_before.get(k), "packets",
                                              counters_before.get(k) or 0)
                                    for k, v in counted.items()},
                "tracepoints": events.take(),
                "link": {n: delta(before[n][0], after[n][0]) for n in ifaces},
                "ethtool": {n: delta(before[n][1], after[n][1]) for n in ifaces},
            }
    finally:
        events.close()
    return {"frames": FRAMES, "compile_seconds": round(compile_s, 1), "cases": cases}


def probe_live(lab):
    frame = bytes(60)
    with netns.enter(lab["client"].ns):
        fd = kernel.load_xdp_bytecode(kernel.xdp_return(1), "xdplab_probe")   # XDP_DROP
        try:
            ctx = bytes(kernel.XdpMd.for_packet(len(frame)))
            kernel.prog_test_run(fd, frame, repeat=1, ctx_in=ctx,
                                 flags=kernel.BPF_F_TEST_XDP_LIVE_FRAMES)
            return {"supported": True}
        except OSError as e:
            return {"supported": False, "errno": e.errno, "error": os.strerror(e.errno)}
        finally:
            os.close(fd)


def probe_features(lab):
    from xdplab.features import xdp_features
    c, r, s = lab["client"], lab["router"], lab["server"]
    s.iface().gro(False)
    out = {}
    f = xdp_features(r.iface(s))
    out["available"] = f.available
    out["note"] = getattr(f, "note", "")
    if f.available:
        out["veth_xdp"] = sorted(f.xdp)
        out["veth_redirect_target_peer_gro_off"] = f.redirect_target
        s.iface().gro(True)
        out["veth_redirect_target_peer_gro_on"] = xdp_features(r.iface(s)).redirect_target
        s.iface().gro(False)
    return out


QDISCS = {"tbf": ["rate", "10mbit", "burst", "16kb", "latency", "50ms"], "htb": ["default", "1"],
          "fq_codel": [], "netem": ["delay", "1ms"], "fq": [], "cake": ["bandwidth", "10mbit"]}


def probe_qdiscs(lab):
    host = lab["client"]
    out = {}
    for kind, args in QDISCS.items():
        mods = modules()
        res = host.run(["tc", "qdisc", "replace", "dev", host.ifname, "root", kind, *args],
                       check=False)
        host.run(["tc", "qdisc", "del", "dev", host.ifname, "root"], check=False)
        out[kind] = {"ok": res.returncode == 0, "stderr": res.stderr.strip(),
                     "modules_loaded": sorted(modules() - mods)}
    return out


def main():
    result = {"kernel": platform.release(), "version": platform.version()}
    with xdplab.Lab() as lab:
        c, r, s = lab.host("client"), lab.host("router"), lab.host("server")
        lab.link(c, r)
        lab.link(r, s)
        for name, fn in (("live_frames", probe_live), ("features", probe_features),
                         ("qdiscs", probe_qdiscs), ("redirect", probe_redirect)):
            t0 = time.perf_counter()
            try:
                result[name] = fn(lab)
            except Exception as e:   # a probe that breaks is a finding too
                result[name] = {"error": f"{type(e).__name__}: {e}"}
            result[name]["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
