#!/usr/bin/env python3
"""The kernel matrix: boots Debian's own kernels with virtme-ng over this checkout, runs
`xdplab doctor`, the kernel-sensitive probes (probe.py) and `pytest -m kernel` inside each guest,
and prints one table kernel x check -> ok / adapted / fail / hang.

    sudo make test-kernels                       # all of 5.10, 6.1, 6.12
    sudo .venv/bin/python platforms/kernels/run.py --kernels 6.1 [--steps doctor,tests]

Environment: XDPLAB_CACHE (default REPO/.cache) holds the kernels, the virtme-ng venv and the
runs; XDPLAB_VM_ACCEL = tcg (default: nested KVM hangs on our machines) | kvm | auto (KVM, and
TCG if the guest shows no sign of life within XDPLAB_VM_BOOT_TIMEOUT s); XDPLAB_VM_TIMEOUT (s per
guest, default 3600; the lessons get what is left of it); XDPLAB_VM_LESSONS (lesson numbers, e.g.
05,10: only those of the lessons step); XDPLAB_VM_MEMORY (default 3G); XDPLAB_VM_CPUS (default 2); XDPLAB_VM_TCG_THREAD = single (default: one host thread for all vCPUs, see _boot_once) | multi.

Guests have no network device; the host's root filesystem is shared read-only and each guest
writes only into its own run directory (--rwdir). Every qemu started here is in a process group
of its own, killed on timeout, on exit and on SIGINT/SIGTERM.
"""
import argparse
import atexit
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CACHE = Path(os.environ.get("XDPLAB_CACHE") or REPO / ".cache").resolve()
TOOLS = CACHE / "tools" / "venv"
RUNS = CACHE / "runs"
SERIES = ("5.10", "6.1", "6.12")
STEPS = ("doctor", "probe", "tests", "lessons")
OK, ADAPTED, FAIL, HANG, NOTRUN = "ok", "adapted", "fail", "hang", "not run"

_groups = {}             # process group id -> Popen of its leader (virtme-run), per running guest
started = set()          # every process group id this process started a guest in
QEMU_NAME = "xdplab-kernels-"   # qemu -name of our guests (pgrep -f "name xdplab-kernels-")


class MatrixError(Exception):
    """A fault with a clear message (no qemu, a kernel package not found, a full disk...)."""


def say(msg):
    print(f"\033[1mxdplab kernels:\033[0m {msg}", file=sys.stderr, flush=True)


# --- cleanup: no qemu survives this process ----------------------------------------------------

def _kill_group(pgid):
    """SIGTERM, then SIGKILL, the whole process group of a guest (virtme-run, qemu, helpers) and
    wait until none of it is left (the leader, our child, is reaped so that it counts as gone)."""
    proc = _groups.get(pgid)
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc is not None:
                proc.poll()                  # reap the leader: a zombie still counts in its group
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                _groups.pop(pgid, None)
                return
            time.sleep(0.1)
    _groups.pop(pgid, None)


def kill_all():
    for pgid in list(_groups):
        _kill_group(pgid)


def _on_signal(signum, frame):
    kill_all()
    raise SystemExit(128 + signum)


atexit.register(kill_all)


def install_signal_handlers():
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)


# --- tools and kernels -------------------------------------------------------------------------

def ensure_tools():
    """virtme-ng, pinned (platforms/kernels/requirements.txt), in a venv of its own."""
    req = HERE / "requirements.txt"
    want = hashlib.sha256(req.read_bytes()).hexdigest()
    stamp = TOOLS / ".requirements"
    if (TOOLS / "bin" / "virtme-run").exists() and stamp.exists() and stamp.read_text() == want:
        return TOOLS / "bin" / "virtme-run"
    need_space(CACHE, 100)
    say(f"installing {req.read_text().split()[-1]} into {TOOLS}")
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    subprocess.run([python, "-m", "venv", "--clear", str(TOOLS)], check=True)
    res = subprocess.run([str(TOOLS / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                          "-r", str(req)], capture_output=True, text=True)
    if res.returncode != 0:
        raise MatrixError(f"could not install virtme-ng into {TOOLS}:\n{res.stderr.strip()[-2000:]}")
    stamp.write_text(want)
    return TOOLS / "bin" / "virtme-run"


def fetch(series):
    """{series: (release, dir)} from fetch.sh (downloads and unpacks what is missing)."""
    env = dict(os.environ, XDPLAB_CACHE=str(CACHE))
    res = subprocess.run(["bash", str(HERE / "fetch.sh"), *series], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    sys.stderr.write(res.stderr)
    if res.returncode != 0:
        lines = [l for l in res.stderr.splitlines() if l.strip()]
        raise MatrixError(lines[-1].split("kernels:\033[0m ", 1)[-1] if lines else "fetch.sh failed")
    out = {}
    for line in res.stdout.splitlines():
        s, release, path = line.split(" ", 2)
        out[s] = (release, Path(path))
    return out


def need_space(path, mib):
    path.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path).free // 2**20
    if free < mib:
        raise MatrixError(f"not enough disk space in {path}: {free} MiB free, {mib} MiB needed")


# --- one guest ---------------------------------------------------------------------------------

def _progress(out):
    try:
        return [l.split(" ", 1)[1] for l in (out / "progress").read_text().splitlines() if " " in l]
    except OSError:
        return []


def boot(series, release, kdir, steps=STEPS, timeout=None, accel=None, log=say, out=None):
    """Boot one kernel, run guest.sh in it, and return its result dict (see collect()). `out`:
    the run directory shared with the guest (default RUNS/<release>; emptied first)."""
    virtme = ensure_tools()
    if not shutil.which("qemu-system-x86_64"):
        raise MatrixError("no qemu-system-x86_64: apt-get install qemu-system-x86 "
                          "(platforms/kernels/fetch.sh does it)")
    timeout = timeout or int(os.environ.get("XDPLAB_VM_TIMEOUT", "3600"))
    accel = accel or os.environ.get("XDPLAB_VM_ACCEL", "tcg")
    if accel not in ("tcg", "kvm", "auto"):
        raise MatrixError(f"XDPLAB_VM_ACCEL={accel}: use tcg, kvm or auto")
    kimg = kdir / "boot" / f"vmlinuz-{release}"
    if not kimg.exists():
        raise MatrixError(f"no kernel image {kimg}: run platforms/kernels/fetch.sh {series}")
    out = Path(out) if out else RUNS / release
    need_space(out.parent, 200)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    tries = ["kvm", "tcg"] if accel == "auto" else [accel]
    result = None
    for i, mode in enumerate(tries):
        result = _boot_once(virtme, series, release, kimg, out, steps, timeout, mode,
                            boot_deadline=(int(os.environ.get("XDPLAB_VM_BOOT_TIMEOUT", "90"))
                                           if mode == "kvm" and i + 1 < len(tries) else None),
                            log=log)
        if result["status"] != "no boot" or i + 1 == len(tries):
            break
        log(f"{release}: no sign of life under KVM after {result['seconds']:.0f} s; trying TCG")
        for f in out.iterdir():
            f.unlink()
    return result


_host = {}


def host_adaptations():
    """{"release", "adapts"}: what xdplab.probe() says the lessons do on this machine, whose
    `make test` runs every lesson; a guest runs only the lessons that take another path there."""
    if not _host:
        code = ("import json, platform, xdplab; print(json.dumps({'release': platform.release(), "
                "'adapts': xdplab.probe().adaptations()}))")
        res = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-c", code],
                             capture_output=True, text=True, cwd=REPO)
        if res.returncode != 0:
            raise MatrixError("could not probe this machine's kernel for the lessons step:\n"
                              + res.stderr.strip()[-1500:])
        _host.update(json.loads(res.stdout.strip().splitlines()[-1]))
    return dict(_host)


def _boot_once(virtme, series, release, kimg, out, steps, timeout, accel, boot_deadline, log):
    if "lessons" in steps:
        (out / "host-adapts.json").write_text(json.dumps(host_adaptations()))
    (out / "timeout").write_text(f"{timeout}\n")      # guest.sh gives the lessons what is left
    only = [n for n in os.environ.get("XDPLAB_VM_LESSONS", "").split(",") if n]
    if only:                     # lesson numbers ("05,10"): the others are left out of this run
        (out / "lessons-only").write_text("".join(
            f"{p}\n" for n in only for p in sorted((REPO / "notebooks").glob(f"{n}-*.ipynb"))))
    elif (out / "lessons-only").exists():
        (out / "lessons-only").unlink()
    script = f"bash {HERE / 'guest.sh'} {REPO} {out} {','.join(steps)}"
    cmd = [str(virtme), "--kimg", str(kimg), "--mods", "auto",
           "--memory", os.environ.get("XDPLAB_VM_MEMORY", "3G"),
           "--cpus", os.environ.get("XDPLAB_VM_CPUS", "2"),
           "--name", f"{QEMU_NAME}{series}", "--rwdir", str(out), "--show-boot-console",
           "--script-sh", script]
    if accel == "tcg":
        # One host thread for all vCPUs (the guest still has XDPLAB_VM_CPUS of them). With
        # multi-threaded TCG, a 6.12 guest died once with "Oops: int3" in
        # __netif_receive_skb_core while generic XDP was attached: a vCPU ran a stale
        # translation of code the kernel was patching (a static key, text_poke_bp's int3)
        # on the other vCPU. XDPLAB_VM_TCG_THREAD=multi brings multi-threaded TCG back.
        cmd += ["--disable-kvm", "--qemu-opt=-accel",
                f"--qemu-opt=tcg,thread={os.environ.get('XDPLAB_VM_TCG_THREAD', 'single')}"]
    log(f"booting Linux {release} ({accel}), steps {','.join(steps)}, timeout {timeout} s")
    start = time.monotonic()
    console = open(out.parent / f"{release}.console.log", "wb")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=REPO)
    _groups[proc.pid] = proc
    started.add(proc.pid)
    status = None
    seen = 0
    try:
        while proc.poll() is None:
            elapsed = time.monotonic() - start
            progress = _progress(out)
            for line in progress[seen:]:
                log(f"{release}: {line} ({elapsed:.0f} s)")
            seen = len(progress)
            if boot_deadline and not progress and elapsed > boot_deadline:
                status = "no boot"
                break
            if elapsed > timeout:
                status = HANG
                break
            time.sleep(1)
    finally:
        _kill_group(proc.pid)       # the guest powers off by itself; this makes sure
        proc.wait()
        console.close()
    seconds = time.monotonic() - start
    (out.parent / f"{release}.console.log").replace(out / "console.log")
    if status is None:
        status = "done" if (out / "done").exists() else "crashed"
    result = collect(series, release, out, steps, status, seconds, accel)
    (out / "result.json").write_text(json.dumps(result, indent=2))
    log(f"{release}: {status} after {seconds:.0f} s")
    return result


# --- results -----------------------------------------------------------------------------------

def _json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _junit(path):
    """{test id: (status, message)} from a junit xml."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    cases = {}
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
        status, message = OK, ""
        for child in case:
            if child.tag in ("failure", "error"):
                status, message = FAIL, (child.get("message") or "").strip()[:300]
            elif child.tag == "skipped":
                status, message = "skipped", (child.get("message") or "")[:300]
        cases[name] = (status, message)
    return cases


def collect(series, release, out, steps, status, seconds, accel):
    progress = _progress(out)
    timings = {}
    begun = {}
    for line in (out / "progress").read_text().splitlines() if (out / "progress").exists() else ():
        t, what = line.split(" ", 1)
        name, _, edge = what.partition(" ")
        edge = edge.split(" ")[0]
        if edge == "begin":
            begun[name] = int(t)
        elif edge == "end" and name in begun:
            timings[name] = int(t) - begun.pop(name)
    stuck = next(iter(begun), None)          # a step begun and never ended
    guest = (out / "guest.txt").read_text() if (out / "guest.txt").exists() else ""
    links = next((l.split(":", 1)[1].split() for l in guest.splitlines() if l.startswith("links:")),
                 None)
    return {"series": series, "release": release, "accel": accel, "status": status,
            "seconds": round(seconds, 1), "steps": list(steps), "step_seconds": timings,
            "stuck_in": stuck if status in (HANG, "crashed") else None,
            "guest_links": links, "doctor": _json(out / "doctor.json"),
            "doctor_rc": (out / "doctor.rc").read_text().strip() if (out / "doctor.rc").exists() else None,
            "probe": _json(out / "probe.json"), "tests": _junit(out / "junit.xml"),
            "pytest_rc": (out / "pytest.rc").read_text().strip() if (out / "pytest.rc").exists() else None,
            "lessons": _json(out / "lessons.json"),
            "dir": str(out)}


SHORT = {   # test id -> what it shows, for the table
    "test_features::test_a_veth_runs_xdp_natively_and_takes_redirects_only_when_its_peer_can_receive":
        "XDP features of a veth (netlink)",
    "test_lessons_05_06::test_wire_redirects_between_router_ports_and_the_veth_trap":
        "redirect accounting (lesson 05 wire)",
    "test_program::test_attach_counts_every_ping_exactly[native]": "attach native, pings counted",
    "test_program::test_attach_counts_every_ping_exactly[generic]": "attach generic, pings counted",
    "test_qos::test_have_qdisc_tries_on_loopback_and_leaves_it_as_it_was": "qdiscs tried",
    "test_qos::test_qdisc_stats_read_the_tbf_of_a_shaped_link": "tbf link statistics",
    "test_testrun::test_verdict_of_real_program_and_it_really_ran[XDP_PASS]": "compile + test_run",
    "test_traffic::test_fast_injector_delivers_every_packet[XDP_DROP]":
        "injector, or its AF_PACKET fallback",
}


def failures(results):
    """[(kernel, test, message)] of the failed tests, for the notes under the table."""
    tests = [(r["release"], SHORT.get(n, n), m) for r in results
             for n, (st, m) in sorted((r["tests"] or {}).items()) if st == FAIL]
    lessons = [(r["release"], f"lesson {n} (cell {x.get('cell')})", x.get("error", ""))
               for r in results for n, x in ((r.get("lessons") or {}).get("lessons") or {}).items()
               if x["status"] not in (OK, "as on the host")]
    return tests + lessons


def cells(result):
    """{row: cell} for one kernel: 'ok', 'adapted', 'fail', 'hang', 'not run' (+ a short why)."""
    st = result["status"]
    missing = HANG if st == HANG else NOTRUN if st == "done" else "fail"
    row = {"boot": OK if result["guest_links"] is not None else missing}
    row["no network in guest"] = (OK if result["guest_links"] == ["lo"] else
                                  FAIL if result["guest_links"] else missing)
    doc = result["doctor"]
    if doc:
        for c in doc["checks"]:
            row[f"doctor: {c['name']}"] = {"ok": OK, "warn": ADAPTED, "fail": FAIL}[c["status"]]
    elif "doctor" in result["steps"]:
        row["doctor"] = missing if result.get("stuck_in") in (None, "doctor") else NOTRUN
    tests = result["tests"]
    if tests:
        for name, (status, _) in sorted(tests.items()):
            row[f"test: {SHORT.get(name, name)}"] = status
    elif "tests" in result["steps"]:
        row["tests"] = missing if result.get("stuck_in") in (None, "tests") else NOTRUN
    lessons = result.get("lessons")
    if lessons:
        adapts = lessons.get("adapts") or {}
        for name, r in sorted(lessons["lessons"].items()):
            cell = ("as on the host" if r["status"] == "as on the host" else
                    NOTRUN if r["status"] == "not run" else
                    f"{HANG} (cell {r.get('cell')}, time ran out)" if r["status"] == "timeout" else
                    FAIL if r["status"] != OK else ADAPTED if name[:2] in adapts else OK)
            skipped = len(r.get("skipped") or ())
            row[f"lesson {name}"] = f"{cell} ({skipped} check{'s' * (skipped > 1)} skipped)" \
                if skipped else cell
    elif "lessons" in result["steps"]:
        row["lessons"] = missing if result.get("stuck_in") in (None, "lessons") else NOTRUN
    probe = result["probe"]
    if probe:
        for name, value in findings(probe).items():
            row[f"finding: {name}"] = value
    elif "probe" in result["steps"]:
        row["probe"] = missing if result.get("stuck_in") in (None, "probe") else NOTRUN
    return row


def _redirect_observable(case):
    """The observable of a redirect case: tracepoints with err, and the counters that moved."""
    parts = []
    for key, c in sorted(case["tracepoints"]["counts"].items()):
        if "err=0" in key:
            continue
        n = c["drops"] if c["drops"] else c["events"]
        parts.append(f"{key.replace(' err=', ' ')} x{n}")
    for where, counters in case["link"].items():
        for k, v in counters.items():
            if "dropped" in k or "errors" in k:
                parts.append(f"{where.split(' ')[0]} {k} +{v}")
    return ", ".join(parts) or "no error, no drop counter"


def findings(probe):
    """Short, per-kernel strings of the probe's measurements, for the findings table."""
    out = {}
    live = probe.get("live_frames", {})
    out["live frames"] = ("yes" if live.get("supported") else
                          f"no ({live.get('error') or live.get('errno')})" if "supported" in live
                          else live.get("error", "?"))
    context = (probe.get("xdplab_probe") or {}).get("test_run_context")
    out["test run given an xdp_md (test_run_on)"] = (
        "?" if context is None else "yes" if context["value"] else "no (EINVAL)")
    feat = probe.get("features", {})
    out["XDP features over netlink"] = (
        f"yes: veth {','.join(feat['veth_xdp'])}; ndo-xmit with peer GRO "
        f"{'on' if feat.get('veth_redirect_target_peer_gro_on') else 'off?'}"
        if feat.get("available") else "no netdev family" if "available" in feat
        else feat.get("error", "?"))
    q = probe.get("qdiscs", {})
    if "error" in q:
        out["qdiscs"] = q["error"]
    else:
        out["qdiscs"] = " ".join(f"{k}{'' if v['ok'] else '✗'}" for k, v in q.items()
                                 if isinstance(v, dict))
    red = probe.get("redirect", {})
    if "cases" in red:
        out["redirect into veth, peer without XDP"] = _redirect_observable(red["cases"]["trap"])
        for case, label in (("gro", "same, GRO on at the peer"),
                            ("peer_xdp", "same, XDP_PASS program on the peer")):
            if case in red["cases"]:
                link = red["cases"][case]["link"]
                server = next((v for k, v in link.items() if k.startswith("server:")), {})
                out[label] = f"server rx_packets +{server.get('rx_packets', 0)} of {red['frames']}"
    else:
        out["redirect into veth, peer without XDP"] = red.get("error", "?")
    return out


def overall(result):
    """ok when the guest finished, the doctor has no fail and every kernel test passed."""
    if result["status"] != "done":
        return False
    doc_ok = result["doctor"] is not None and result["doctor"]["ok"] if "doctor" in result["steps"] else True
    tests_ok = (result["tests"] is not None and result["tests"]
                and all(s in (OK, "skipped") for s, _ in result["tests"].values())) \
        if "tests" in result["steps"] else True
    lessons_ok = (result.get("lessons") is not None and
                  all(r["status"] in (OK, "as on the host")
                      for r in result["lessons"]["lessons"].values())) \
        if "lessons" in result["steps"] else True
    return bool(doc_ok and tests_ok and lessons_ok)


def table(results, markdown=True):
    kernels = [r["release"] for r in results]
    rows = {}
    per = [cells(r) for r in results]
    for c in per:
        for name in c:
            rows.setdefault(name, None)
    status_rows = [n for n in rows if not n.startswith("finding: ")]
    finding_rows = [n for n in rows if n.startswith("finding: ")]
    head = ["check"] + kernels
    lines = []

    def emit(names, head):
        body = [[n] + [c.get(n, "—") for c in per] for n in names]
        if markdown:
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "---|" * len(head))
            lines.extend("| " + " | ".join(r) + " |" for r in body)
        else:
            widths = [max(len(str(x[i])) for x in [head] + body) for i in range(len(head))]
            for r in [head] + body:
                lines.append("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())
        lines.append("")

    emit(status_rows, head)
    timing = ["guest time (s): boot+all"] + [
        f"{r['seconds']:.0f} ({', '.join(f'{k} {v}' for k, v in r['step_seconds'].items())})"
        f" {r['accel']}" for r in results]
    notes = failures(results)
    if notes:
        for kernel, test, message in notes:
            lines.append(f"{'- ' if markdown else '  '}fail on {kernel}, {test}: {message.splitlines()[0][:200]}")
        lines.append("")
    if finding_rows:
        emit(finding_rows, ["measured"] + kernels)
    if markdown:
        lines.append("| " + " | ".join(["timing"] + kernels) + " |")
        lines.append("|" + "---|" * (len(kernels) + 1))
        lines.append("| " + " | ".join(timing) + " |")
    else:
        lines.append("  ".join(timing))
    return "\n".join(lines)


def stored(series):
    """The last result of each kernel series (from its run directory), in the order asked."""
    found = {}
    for path in RUNS.glob("*/result.json"):
        r = _json(path)
        if r and r.get("series") in series:
            if r["series"] not in found or path.stat().st_mtime > found[r["series"]][0]:
                found[r["series"]] = (path.stat().st_mtime, r)
    return [found[s][1] for s in series if s in found]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kernels", default=",".join(SERIES), help="comma-separated: 5.10,6.1,6.12")
    p.add_argument("--steps", default=",".join(STEPS), help="comma-separated: doctor,probe,tests,lessons")
    p.add_argument("--timeout", type=int, help="seconds per guest (XDPLAB_VM_TIMEOUT, 3600)")
    p.add_argument("--report", action="store_true",
                   help="boot nothing: print the table of the last run of each kernel")
    args = p.parse_args(argv)
    if args.report:
        results = stored([s for s in args.kernels.split(",") if s])
        if not results:
            say(f"no stored results under {RUNS}: run without --report first")
            return 2
        (RUNS / "table.md").write_text(table(results) + "\n")
        print(table(results, markdown=False))
        return 0 if all(overall(r) for r in results) else 1
    if os.geteuid() != 0:
        say("needs root: sudo make test-kernels")
        return 2
    series = [s for s in args.kernels.split(",") if s]
    steps = [s for s in args.steps.split(",") if s]
    bad = [s for s in steps if s not in STEPS]
    if bad:
        say(f"unknown steps {bad}: use {','.join(STEPS)}")
        return 2
    install_signal_handlers()
    results = []
    try:
        kernels = fetch(series)
        ensure_tools()
        for s in series:
            release, kdir = kernels[s]
            results.append(boot(s, release, kdir, steps=steps, timeout=args.timeout))
            (RUNS / "results.json").write_text(json.dumps(results, indent=2))
    except MatrixError as e:
        say(f"\033[1;31m{e}\033[0m")
        return 2
    finally:
        kill_all()
    (RUNS / "table.md").write_text(table(results) + "\n")
    print(table(results, markdown=False))
    print(f"\nresults: {RUNS / 'results.json'}, table: {RUNS / 'table.md'}")
    bad = [r["release"] for r in results if not overall(r)]
    if bad:
        say(f"not all green: {', '.join(bad)} (details under {RUNS})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
