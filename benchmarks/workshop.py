"""How many participants a workshop machine holds (README, "Workshops", "Sizing a machine").

    sudo make bench-workshop [ROOMS=1,6]      (or: sudo .venv/bin/python benchmarks/workshop.py 1,6)

For each room size N it starts a real room as an instructor does (`make workshop PARTICIPANTS=N`,
platforms/room.py: JupyterHub, the proxy, one container per participant with the room's default
limits, 2 GB and 1 CPU), signs every participant in through the hub's REST API, starts their
servers, and then measures what each participant's container uses (its cgroup: memory that cannot
be dropped, anonymous plus shared, and CPU time), in four phases, all participants at once:

  1. the servers idle (30 s), as after signing in;
  2. lesson 02 (maps) run top to bottom in every container at the same time, with nbclient, in a
     Jupyter kernel of the xdplab kernelspec started inside the container; the kernels are kept;
  3. idle again (30 s), each participant's lesson-02 kernel alive (its lab closed by the lesson's
     last cell, its programs gone), as between exercises;
  4. a lab check (`xdplab check 02a` against its solution) in every container at the same time.

It also measures the room's own processes (hub, proxy, services) and the Docker engine. Numbers
depend on the machine and on what else runs (the load average is printed); the sizing lines at the
end are arithmetic on the measured peaks, not a promise. The Docker engine and the xdplab image
come from platforms/dockerenv.py (started, built and removed as the platform tests do;
XDPLAB_KEEP_IMAGE=1 keeps the image for the next run).
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "platforms"))

import dockerenv  # noqa: E402
from room import container, room, start_servers, token_for  # noqa: E402

IDLE_SECONDS = 30
LESSON = "notebooks/02-maps.ipynb"
# lesson 02 in a kernel that outlives nbclient: the kernel is ours (km), so nbclient leaves it
# running; it is shut down when a line arrives on stdin
RUN_LESSON = f"""
import sys, time, nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
nb = nbformat.read("{LESSON}", as_version=4)
km = KernelManager(kernel_name="xdplab")
km.start_kernel(cwd="notebooks")
t = time.monotonic()
try:
    NotebookClient(nb, km=km, timeout=900, startup_timeout=300).execute()
    print("LESSON OK", round(time.monotonic() - t, 2), flush=True)
except Exception as e:
    print("LESSON FAILED", type(e).__name__, str(e)[-1500:], flush=True)
sys.stdin.readline()
km.shutdown_kernel(now=True)
"""
CHECK = [".venv/bin/python", "-m", "xdplab", "check", "02a", "--program",
         "labs/02a-top-talkers/solution.c"]
GIB = 1 << 30


class Cgroup:
    """A container's memory and CPU, read from its cgroup (v2, or the v1 memory and cpuacct
    controllers). `resident()` is what cannot be dropped under pressure: anonymous memory and
    shared memory (tmpfs, /dev/shm), not the page cache."""

    def __init__(self, name):
        pid = dockerenv.docker("inspect", "-f", "{{.State.Pid}}", container(name)).stdout.strip()
        self.paths = {}
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for c in controllers.split(",") if controllers else ["unified"]:
                self.paths[c] = path
        self.v2 = "memory" not in self.paths
        base = Path("/sys/fs/cgroup")
        if self.v2:
            self.mem = self.cpu = base / self.paths["unified"].lstrip("/")
        else:
            self.mem = base / "memory" / self.paths["memory"].lstrip("/")
            self.cpu = base / "cpuacct" / self.paths.get("cpuacct", self.paths.get("cpu,cpuacct", "")).lstrip("/")

    def stat(self):
        return dict((k, int(v)) for k, v in (line.split() for line in (self.mem / "memory.stat").read_text().splitlines()))

    def resident(self):
        s = self.stat()
        if self.v2:
            return s["anon"] + s["shmem"]
        return s["total_rss"] + s["total_shmem"]

    def cpu_seconds(self):
        if self.v2:
            usage = next(int(line.split()[1]) for line in (self.cpu / "cpu.stat").read_text().splitlines()
                         if line.startswith("usage_usec"))
            return usage / 1e6
        return int((self.cpu / "cpuacct.usage").read_text()) / 1e9

    def oom_kills(self):
        text = (self.mem / ("memory.events" if self.v2 else "memory.oom_control")).read_text()
        found = re.search(r"oom_kill (\d+)", text)
        return int(found.group(1)) if found else 0


class Sampler:
    """The highest resident memory of every container, sampled every 0.25 s in a thread."""

    def __init__(self, groups):
        self.groups, self.peak, self.done = groups, {n: 0 for n in groups}, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.done.is_set():
            for n, g in self.groups.items():
                try:
                    self.peak[n] = max(self.peak[n], g.resident())
                except (OSError, KeyError):
                    pass
            self.done.wait(0.25)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def pss(pids):
    """Proportional set size of these processes (shared pages split among their users), bytes."""
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        found = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
        total += int(found.group(1)) * 1024 if found else 0
    return total


def descendants(pid):
    """`pid` and every process below it (the launcher: the hub, the proxy, the hub's services;
    not the participants' servers, which are the Docker engine's)."""
    children = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(proc.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def engine_pids():
    out = subprocess.run(["pgrep", "-x", "dockerd|containerd|containerd-shim-runc-v2|containerd-shim"],
                         capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def idle(groups, seconds=IDLE_SECONDS):
    """(CPU share of one core, resident bytes at the end) per container over `seconds`."""
    before = {n: g.cpu_seconds() for n, g in groups.items()}
    time.sleep(seconds)
    return {n: ((g.cpu_seconds() - before[n]) / seconds, g.resident()) for n, g in groups.items()}


def at_once(groups, start):
    """Run start(name) -> Popen in every container at the same time; (wall s, CPU s, peak bytes,
    Popen) per container, the wall time up to the line the process marks as its end (or its exit)."""
    before = {n: g.cpu_seconds() for n, g in groups.items()}
    with Sampler(groups) as sampler:
        t0 = time.monotonic()
        procs = {n: start(n) for n in groups}
        walls, outputs = {}, {}

        def wait(n, p):
            lines = []
            for line in p.stdout:
                lines.append(line)
                if line.startswith(("LESSON OK", "LESSON FAILED")):
                    break
            else:
                p.wait()
            walls[n], outputs[n] = time.monotonic() - t0, "".join(lines)
        threads = [threading.Thread(target=wait, args=item) for item in procs.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return {n: (walls[n], g.cpu_seconds() - before[n], sampler.peak[n], procs[n], outputs[n])
            for n, g in groups.items()}


def docker_exec(name, argv, stdin=False):
    return subprocess.Popen([dockerenv.DOCKER, "exec", *(["-i"] if stdin else []), container(name), *argv],
                            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def mb(n):
    return f"{n / 1e6:.0f} MB"


def spread(values, fmt):
    values = list(values)
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.mean(values))} (max {fmt(max(values))})"


def measure(n, image, rows):
    names = [f"b{i:02d}" for i in range(1, n + 1)]
    with tempfile.TemporaryDirectory(prefix="xdplab-bench-room-") as state, \
            room(names, image, state, log_name=f"bench-workshop-{n}.log") as hub:
        tokens = {p: token_for(hub, p, hub["sheet"][p]) for p in names}
        t0 = time.monotonic()
        start_servers(hub, tokens, timeout=300 + 60 * n)
        ready = time.monotonic() - t0
        groups = {p: Cgroup(p) for p in names}
        room_pss = pss(descendants(hub["proc"].pid))
        oom_before = {p: g.oom_kills() for p, g in groups.items()}

        quiet = idle(groups)
        lesson = at_once(groups, lambda p: docker_exec(p, [".venv/bin/python", "-c", RUN_LESSON], stdin=True))
        failed = {p: r[4] for p, r in lesson.items() if "LESSON OK" not in r[4]}
        if failed:
            for r in lesson.values():
                r[3].kill()
            raise SystemExit(f"lesson 02 failed in {sorted(failed)}: {next(iter(failed.values()))[-2000:]}")
        kept = idle(groups)
        check = at_once(groups, lambda p: docker_exec(p, CHECK))
        for p, r in check.items():
            r[3].wait()
            if r[3].returncode != 0:
                raise SystemExit(f"the check failed in {p}'s container:\n{r[4][-2000:]}")
        for r in lesson.values():               # the lesson kernels go
            r[3].stdin.write("\n")
            r[3].stdin.flush()
            r[3].wait(timeout=120)
        engine = pss(engine_pids())
        ooms = sum(g.oom_kills() - oom_before[p] for p, g in groups.items())

    label = f"{n} participant{'s' if n > 1 else ''}"
    lesson_s = [float(next(line for line in r[4].splitlines() if line.startswith("LESSON OK")).split()[2])
                for r in lesson.values()]
    rows.append((f"{label}: servers started", f"{ready:.0f} s", "signed in through the REST API, all "
                 "asked at once, until the hub has every one ready (each runs the doctor first)"))
    rows.append((f"{label}: the room (hub, proxy, services)", mb(room_pss), "PSS of its processes"))
    rows.append((f"{label}: Docker engine", mb(engine), "PSS of dockerd, containerd and the shims"))
    rows.append((f"{label}: server idle, per participant", spread((q[1] for q in quiet.values()), mb),
                 "anonymous + shared memory of the container; CPU "
                 + spread((q[0] for q in quiet.values()), lambda x: f"{x:.1%}") + " of a core"))
    rows.append((f"{label}: lesson 02, all at once", spread(lesson_s, lambda x: f"{x:.0f} s"),
                 "wall per participant; CPU " + spread((r[1] for r in lesson.values()), lambda x: f"{x:.0f} s")
                 + "; peak memory " + spread((r[2] for r in lesson.values()), mb)))
    rows.append((f"{label}: idle with lesson 02's kernel", spread((k[1] for k in kept.values()), mb),
                 "CPU " + spread((k[0] for k in kept.values()), lambda x: f"{x:.1%}") + " of a core"))
    rows.append((f"{label}: a lab check, all at once", spread((r[0] for r in check.values()), lambda x: f"{x:.0f} s"),
                 "wall per participant; CPU " + spread((r[1] for r in check.values()), lambda x: f"{x:.1f} s")
                 + "; peak memory " + spread((r[2] for r in check.values()), mb)
                 + (f"; {ooms} kernel(s) killed for memory" if ooms else "")))
    return {"peak": max(max(r[2] for r in lesson.values()), max(r[2] for r in check.values())),
            "room": room_pss, "engine": engine, "n": n,
            "lesson_cpu": statistics.mean(r[1] for r in lesson.values()),
            "check_cpu": statistics.mean(r[1] for r in check.values()),
            "idle_cpu": statistics.mean(k[0] for k in kept.values())}


def sizing(results, rows):
    """Arithmetic on the biggest room's numbers: participants per machine by memory and by CPU."""
    r = max(results, key=lambda x: x["n"])
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cpus = os.cpu_count()
    spare = total - r["room"] - r["engine"] - 2 * GIB       # 2 GiB for the host itself
    by_memory = int(spare // r["peak"])
    rows.append(("sizing: participants by memory", f"{by_memory}",
                 f"({total / GIB:.0f} GiB − room − engine − 2 GiB for the host) ÷ the highest peak "
                 f"of a participant ({mb(r['peak'])}); everyone at their peak at once"))
    # a room mostly reads and edits; what the CPUs must absorb is everyone checking at once
    rows.append(("sizing: CPU, everyone checks at once", f"{r['check_cpu'] * by_memory / cpus:.0f} s",
                 f"a check costs {r['check_cpu']:.1f} CPU-s: {by_memory} participants on {cpus} CPUs "
                 f"wait about this long; one lesson-02 run costs {r['lesson_cpu']:.0f} CPU-s, idle "
                 f"{r['idle_cpu']:.1%} of a core each"))


def main(sizes):
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"xdplab workshop capacity on Linux {os.uname().release}, {os.cpu_count()} CPUs, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / GIB:.0f} GiB, load average "
          f"{load} at the start", file=sys.stderr)
    rows, results = [], []
    with dockerenv.engine(), dockerenv.base_image() as base, \
            dockerenv.built_image(base, "xdplab-bench:latest") as image:
        for n in sizes:
            print(f"  a room of {n} ...", file=sys.stderr, flush=True)
            results.append(measure(n, image, rows))
    sizing(results, rows)
    rows.append(("load average at the start / the end", f"{load} / "
                 + " ".join(f"{x:.1f}" for x in os.getloadavg()), "1, 5, 15 min"))
    print("\n| what | result | detail |\n|---|---:|---|")
    for what, value, detail in rows:
        print(f"| {what} | {value} | {detail} |")


if __name__ == "__main__":
    main([int(a) for a in ",".join(sys.argv[1:] or ["1,6"]).replace(" ", ",").split(",") if a])
