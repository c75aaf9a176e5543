"""Measures the kernel-sensitive claims of the lessons on the running kernel and prints them as JSON.

Run as root inside a kernel-matrix guest (platforms/kernels/guest.sh) — or on any machine: it
only builds its own lab (namespaces, veths) and removes it. Nothing here asserts: it records what
the kernel does, raw, so that platforms/kernels/FINDINGS.md and a feature probe in xdplab can be
built from it.

  redirect  a native `return bpf_redirect(eth1, 0)` on the router's port facing the client sends
            50 frames into the router's veth towards the server, whose end has no XDP program and
            GRO off ("trap"), then GRO on ("gro"), then GRO off and a native XDP_PASS program
            ("peer_xdp"). Recorded per case: every
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
from xdplab import counters, kernel, netns  # noqa: E402

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


BPF_CALL, BPF_FUNC_redirect = 0x85, 23


def redirect_program(ifindex):
    """`return bpf_redirect(ifindex, 0);` as raw instructions: no compile (clang under TCG takes
    minutes), and since Linux 5.6 bpf_redirect() takes the same bulk-queue path as lesson 05's
    bpf_redirect_map() into a devmap (kernel/bpf/devmap.c)."""
    return (kernel.insn(kernel.BPF_MOV64_IMM, dst=1, imm=ifindex)
            + kernel.insn(kernel.BPF_MOV64_IMM, dst=2, imm=0)
            + kernel.insn(BPF_CALL, imm=BPF_FUNC_redirect) + kernel.insn(kernel.BPF_EXIT))


def probe_redirect(lab):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from xdplab.program import set_xdp
    c, r, s = lab["client"], lab["router"], lab["server"]
    rin, rout, peer = r.iface(c), r.iface(s), s.iface()
    ifaces = {"client:eth0": c.iface(), "router:eth0 (XDP, redirects)": rin,
              "router:eth1 (redirect target)": rout, "server:eth0 (target's peer)": peer}
    frame = Ether(dst=s.mac) / IP(dst=s.ip) / UDP(dport=9) / b"probe"
    red = kernel.load_xdp_bytecode(redirect_program(rout.ifindex), "xdplab_kprobe")
    passer = kernel.load_xdp_bytecode(kernel.xdp_return(2), "xdplab_kpass")      # XDP_PASS
    events = XdpEvents()
    cases = {}
    try:
        set_xdp(r.ns, rin.name, red, "native")
        # trap: the peer has no XDP program and GRO off (no NAPI); gro: GRO on at the peer;
        # peer_xdp: GRO off again, a native XDP_PASS program on the peer
        for case in ("trap", "gro", "peer_xdp"):
            note(f"redirect: case {case}")
            peer.gro(case == "gro")
            if case == "peer_xdp":
                set_xdp(s.ns, peer.name, passer, "native")
            events.take()
            before = {n: (link_counters(i), counters.driver_stats(i)) for n, i in ifaces.items()}
            report = c.send(frame, count=FRAMES, method="af_packet")
            time.sleep(1.0)
            after = {n: (link_counters(i), counters.driver_stats(i)) for n, i in ifaces.items()}
            cases[case] = {
                "peer_gro": peer.gro(), "peer_xdp": case == "peer_xdp", "sent": report.sent,
                "tracepoints": events.take(),
                "link": {n: delta(before[n][0], after[n][0]) for n in ifaces},
                "ethtool": {n: delta(before[n][1], after[n][1]) for n in ifaces},
            }
            if case == "peer_xdp":
                set_xdp(s.ns, peer.name, -1, "native")
        set_xdp(r.ns, rin.name, -1, "native")
    finally:
        events.close()
        os.close(red)
        os.close(passer)
    return {"frames": FRAMES, "program": "return bpf_redirect(ifindex of router:eth1, 0), native "
            "on router:eth0; frames sent from client by AF_PACKET", "cases": cases}


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


def note(msg):
    """Progress on stderr (probe.err in a guest): where a slow or stuck probe is."""
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def main():
    result = {"kernel": platform.release(), "version": platform.version()}
    note(f"probe on {platform.release()}")
    with xdplab.Lab() as lab:
        try:
            c, r, s = lab.host("client"), lab.host("router"), lab.host("server")
            lab.link(c, r)
            lab.link(r, s)
        except Exception as e:
            result["lab"] = {"error": f"{type(e).__name__}: {e}"}
            note(f"could not build the probe's lab: {e}")
            print(json.dumps(result, indent=2, default=str))
            raise SystemExit(1)
        for name, fn in (("live_frames", probe_live), ("features", probe_features),
                         ("qdiscs", probe_qdiscs), ("redirect", probe_redirect)):
            t0 = time.perf_counter()
            note(f"{name} begin")
            try:
                result[name] = fn(lab)
            except Exception as e:   # a probe that breaks is a finding too
                result[name] = {"error": f"{type(e).__name__}: {e}"}
            result[name]["seconds"] = round(time.perf_counter() - t0, 1)
            note(f"{name} end ({result[name]['seconds']} s)")
    # what xdplab's own feature probe (xdplab.probe(), used by the lessons) concludes here
    t0 = time.perf_counter()
    note("xdplab.probe() begin")
    try:
        p = xdplab.probe()
        result["xdplab_probe"] = {f.name: {"value": f.value, "since": f.since, "here": f.here,
                                           "observed": f.observed} for f in p.findings}
    except Exception as e:
        result["xdplab_probe"] = {"error": f"{type(e).__name__}: {e}"}
    result["xdplab_probe"]["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
