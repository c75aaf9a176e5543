"""`xdplab doctor`: can this machine run the lessons? Each check says ok, warn or fail, and for
warn and fail exactly what to do.

    xdplab.doctor()            # in a notebook: a table; in a terminal: `xdplab doctor`

The checks are real: a tiny XDP program is compiled and verified, attached in generic and in
native mode inside a scratch lab (two namespaces joined by a veth pair), run with
BPF_PROG_TEST_RUN, fed live frames, and qdiscs are added and removed there. The scratch lab and
everything in it is removed afterwards, also when a check fails. A `fail` blocks the lessons
(non-zero exit); a `warn` means some lesson adapts or something is slower. Last come the lessons
that adapt to this kernel, one line each, from xdplab.probe() (xdplab.kernelprobe).
"""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import platform
import re
import shutil
import textwrap
import time
from typing import Any, Sequence

from xdplab.text import escape

OK, WARN, FAIL = "ok", "warn", "fail"
MIN_KERNEL = (5, 10)   # bounded loops, BTF, native XDP on veth; the oldest supported distro has 5.15
CAPS = {"CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21, "CAP_BPF": 39}
LIVE_FRAMES = 32       # frames the live-frames check sends from client to server

# The doctor's program: counts every frame it sees and passes it on.
PROGRAM = r"""
BPF_ARRAY(seen, u64, 1);

int xdp_doctor(struct xdp_md *ctx) {
    int zero = 0;
    u64 *n = seen.lookup(&zero);
    if (n)
        __sync_fetch_and_add(n, 1);
    return XDP_PASS;
}
"""

# tc qdisc arguments for each kind, and what the lessons use it for.
QDISCS = {
    "tbf": (["rate", "10mbit", "burst", "16kb", "latency", "50ms"],
            "rate-limited links (lab.link(..., rate=...))"),
    "htb": (["default", "1"], "class-based shaping"),
    "fq_codel": ([], "active queue management"),
    "netem": (["delay", "1ms"], "delay and loss on a link"),
}
REQUIRED_QDISCS = ("tbf",)
Result = tuple[str, str, str]      # what a check returns: (status, summary, fix)


@dataclasses.dataclass
class Check:
    name: str
    status: str            # ok | warn | fail
    summary: str           # what was found
    fix: str = ""          # for warn and fail: what to do
    seconds: float = 0.0
    checked: bool = True   # False: not tried because a check it needs failed


class Report:
    """The doctor's findings: a text table (str), an HTML table in Jupyter, or JSON."""

    def __init__(self, checks: Sequence[Check], seconds: float) -> None:
        self.checks = checks
        self.seconds = seconds

    def __getitem__(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.status == FAIL]

    @property
    def warnings(self) -> list[Check]:
        """The checks that warn."""
        return [c for c in self.checks if c.status == WARN]

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings do not block the lessons)."""
        return not self.failures

    @property
    def exit_code(self) -> int:
        """0 when ok, else 1: the exit status of `xdplab doctor`."""
        return 0 if self.ok else 1

    def verdict(self) -> str:
        """The last line of the report: ready or not, and why."""
        n_w, n_f = len(self.warnings), len(self.failures)
        took = f"({self.seconds:.1f} s)"
        if n_f:
            what = "1 failure blocks" if n_f == 1 else f"{n_f} failures block"
            return f"NOT READY: {what} the lessons; fix and run 'xdplab doctor' again {took}"
        if n_w:
            what = "1 warning, which does" if n_w == 1 else f"{n_w} warnings, which do"
            return f"ready, {what} not block the lessons {took}"
        return f"ready {took}"

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data: ok, seconds, machine and every check's fields."""
        return {"ok": self.ok, "seconds": round(self.seconds, 3), "machine": _machine(),
                "checks": [dataclasses.asdict(c) for c in self.checks]}

    def to_json(self) -> str:
        """as_dict() as JSON (`xdplab doctor --json`)."""
        return json.dumps(self.as_dict(), indent=2)

    def text(self, quiet: bool = False, color: bool = False, width: int | None = None) -> str:
        """The report as a text table (`xdplab doctor`): quiet leaves out the ok lines (and gives
        "" when nothing else is left), color adds ANSI colours, width (the terminal's by default;
        at least 60) wraps the lines."""
        width = max(60, width or shutil.get_terminal_size((100, 24)).columns)
        paint = {OK: "\033[32m", WARN: "\033[33m", FAIL: "\033[1;31m"} if color else {}
        name_w = max(len(c.name) for c in self.checks)
        indent = " " * (name_w + 10)
        lines = []
        for c in self.checks:
            if quiet and c.status == OK:
                continue
            status = f"{paint.get(c.status, '')}{c.status:<4}{chr(27) + '[0m' if color else ''}"
            first = f"  {status}  {c.name:<{name_w}}  "
            body = textwrap.wrap(c.summary, width - len(indent), break_on_hyphens=False) or [""]
            lines.append(first + body[0])
            lines += [indent + b for b in body[1:]]
            if c.fix:
                lines += textwrap.wrap(c.fix, width, initial_indent=indent + "→ ",
                                       subsequent_indent=indent + "  ", break_on_hyphens=False)
        if quiet and not lines:
            return ""
        head = [] if quiet else [f"xdplab doctor — {_machine()}"]
        return "\n".join(head + lines + [f"  {self.verdict()}"])

    def __str__(self) -> str:
        return self.text()

    __repr__ = __str__

    def _repr_html_(self):
        colors = {OK: "#1a7f37", WARN: "#9a6700", FAIL: "#cf222e"}
        rows = []
        for c in self.checks:
            fix = (f"<div style='color:{colors[c.status]}'>→ {escape(c.fix)}</div>"
                   if c.fix else "")
            rows.append(
                f"<tr><td style='color:{colors[c.status]};font-weight:bold;text-align:left'>"
                f"{c.status}</td><td style='text-align:left;white-space:nowrap'>"
                f"{escape(c.name)}</td><td style='text-align:left'>{escape(c.summary)}"
                f"{fix}</td></tr>")
        color = colors[FAIL if self.failures else OK]
        return (f"<table class='xdplab-doctor' style='font-size:90%'>"
                f"<caption style='text-align:left'>xdplab doctor — {escape(_machine())}"
                f"</caption>{''.join(rows)}</table>"
                f"<div style='color:{color}'>{escape(self.verdict())}</div>")


def _machine():
    distro = "unknown distribution"
    try:
        with open("/etc/os-release") as f:
            fields = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        distro = fields.get("PRETTY_NAME", distro).strip('"')
    except OSError:
        pass
    return f"Linux {platform.release()}, {distro}"


def _in_container():
    return os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv")


def _root_hint():
    if _in_container():
        return ("start the container with 'docker run --privileged ...' (see README); "
                "without it a container has no CAP_SYS_ADMIN/CAP_NET_ADMIN")
    return ("run as root: 'sudo make lab' for JupyterLab, 'sudo make doctor' for this check "
            "(the kernel allows namespaces and XDP only with these capabilities)")


def read_capabilities() -> int:
    """The effective capability set of this process (CapEff of /proc/self/status), as an int."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def _mounted(path, fstype):
    try:
        with open("/proc/mounts") as f:
            return any(p[1] == path and p[2] == fstype for p in (line.split() for line in f))
    except OSError:
        return False


class _Skip(Exception):
    """A check cannot run because the check it needs (the argument) did not pass."""


class _Run:
    """State shared by one doctor run: the scratch lab and the doctor's program in it."""

    def __init__(self):
        self.results = {}
        self.lab = None
        self.prog = None

    def need(self, *names):
        for name in names:
            r = self.results.get(name)
            if r is None or r.status == FAIL or not r.checked:
                raise _Skip(name)

    def seen(self):
        """How many frames the doctor's program has counted so far."""
        return sum(self.prog.maps["seen"].snapshot().values())

    def close(self):
        if self.lab is not None:
            self.lab.close()     # detaches and closes the program, deletes the namespaces
            self.lab = None
            self.prog = None


# --- the checks: each returns (status, summary, fix) -------------------------------------------

def check_kernel(run: _Run) -> Result:
    release = platform.release()
    m = re.match(r"(\d+)\.(\d+)", release)
    version = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    need = ".".join(map(str, MIN_KERNEL))
    if version < MIN_KERNEL:
        return (FAIL, f"Linux {release}; the lessons need {need} or newer",
                "boot a newer kernel: Debian 12 ships 6.1, Ubuntu 22.04 5.15, Ubuntu 24.04 6.8 "
                "(a container cannot help: it runs on the host's kernel)")
    return OK, f"Linux {release} (the lessons need {need} or newer)", ""


def check_privileges(run: _Run) -> Result:
    caps = read_capabilities()
    have = [n for n, bit in CAPS.items() if caps >> bit & 1]
    missing = [n for n in ("CAP_NET_ADMIN", "CAP_SYS_ADMIN") if n not in have]
    who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"
    if missing:
        return (FAIL, f"{who}, without {' and '.join(missing)}: cannot create namespaces, "
                      "load or attach XDP programs", _root_hint())
    note = "" if "CAP_BPF" in have else " (no CAP_BPF, which CAP_SYS_ADMIN covers)"
    return OK, f"{who} with {', '.join(have)}{note}", ""


def check_headers(run: _Run) -> Result:
    from xdplab.kernel import headers
    from xdplab.errors import LabError
    try:
        t = headers.tree()
    except LabError as e:
        return FAIL, e.message, e.hint or "run 'sudo make install'"
    why = {headers.RUNNING: "the running kernel's own build dir",
           headers.MERGED: "merged from the distro's header packages by env/kernel-headers.sh, "
                           "as this machine has no /lib/modules/$(uname -r)/build",
           headers.FROM_ENV: "named by BCC_KERNEL_SOURCE in your environment"}.get(t.kind, t.kind)
    text = f"headers {t.version} at {t.path}: {why}"
    if t.skew:
        text += (f". Differs from the running kernel {t.kernel}, which is harmless for these "
                 "lessons: their programs use only UAPI headers (struct xdp_md, BPF helper ids, "
                 "ethhdr, iphdr...), stable across kernel versions; nothing reads kernel-internal "
                 "structs. That holds for the helpers and flags these lessons use, all in these "
                 "headers: one newer than the headers would not compile, and one newer than the "
                 "running kernel would compile and be refused by the verifier")
    return OK, text, ""


def check_bcc(run: _Run) -> Result:
    try:
        import bcc
    except ImportError as e:
        return (FAIL, f"cannot import bcc ({e})",
                "run 'sudo make install' (it installs python3-bpfcc), and use .venv/bin/python or "
                "the notebook kernel of .venv: bcc's bindings come from the distro's python3")
    version = getattr(bcc, "__version__", "?")
    return OK, f"bcc {version} from {os.path.dirname(bcc.__file__)}", ""


def check_bpffs(run: _Run) -> Result:
    if _mounted("/sys/fs/bpf", "bpf"):
        return OK, "bpffs mounted at /sys/fs/bpf", ""
    return (WARN, "bpffs is not mounted at /sys/fs/bpf: programs and maps cannot be pinned",
            "sudo mount -t bpf bpf /sys/fs/bpf   (env/install.sh does this)")


def check_tracefs(run: _Run) -> Result:
    if _mounted("/sys/kernel/tracing", "tracefs") or _mounted("/sys/kernel/debug/tracing", "tracefs"):
        return OK, "tracefs mounted at /sys/kernel/tracing (bpf_trace_printk output is readable)", ""
    return (WARN, "tracefs is not mounted: bpf_trace_printk() output cannot be read",
            "sudo mount -t tracefs tracefs /sys/kernel/tracing   (env/install.sh does this)")


def check_lab(run: _Run) -> Result:
    run.need("privileges")
    from xdplab.lab.topology import Lab
    run.lab = Lab.pair()
    client, server = run.lab.client, run.lab.server
    ping = client.ping(server, count=1, timeout=2)
    if ping.received != 1:
        return (FAIL, f"built scratch lab {run.lab.id}, but {client.ns} cannot ping {server.ns} "
                      f"over their veth pair", "run 'xdplab reap --all' and try again; if it "
                "persists, check that nothing (e.g. a firewall daemon) configures new namespaces")
    return OK, f"scratch lab {run.lab.id}: namespaces {client.ns} and {server.ns}, veth pair, " \
               f"ping {ping.rtts[0]:.2f} ms", ""


def check_compile(run: _Run) -> Result:
    run.need("header tree", "bcc", "network namespaces")
    start = time.perf_counter()
    run.prog = run.lab.load(PROGRAM, name="xdp_doctor")
    took = time.perf_counter() - start
    return OK, f"compiled (clang via bcc) and verified a 10-line XDP program in {took:.2f} s", ""


LIBBPF_PROGRAM = """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp") int xdp_doctor_libbpf(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
"""


def check_libbpf(run: _Run) -> Result:
    """What libbpf programs (lab.load("x.bpf.c"), a .o) need: clang, libbpf-dev's headers,
    libbpf1; a warning only, since lessons 00-10 are bcc's. With all three, a small program is
    built by clang and loaded by libbpf for real."""
    from xdplab.program import objects
    missing = []
    if shutil.which("clang") is None:
        missing.append("clang (the compiler; bcc has its own copy of LLVM)")
    if not (objects.LIBBPF_HEADERS / "bpf_helpers.h").is_file():
        missing.append("libbpf-dev (<bpf/bpf_helpers.h>)")
    try:
        from xdplab.kernel.libbpf import libbpf
        libbpf()
    except Exception:
        missing.append("libbpf1 (the library that loads them)")
    if missing:
        return (WARN, "libbpf programs (lab.load('x.bpf.c') or a .o) cannot be built here: "
                      f"missing {', '.join(missing)}. Lessons 00-10 (bcc) do not need them",
                objects.INSTALL_HINT)
    run.need("network namespaces")
    start = time.perf_counter()
    prog = run.lab.load(LIBBPF_PROGRAM, name="xdp_doctor_libbpf", dialect="libbpf")
    took = time.perf_counter() - start
    verdict = prog.test_run(_frame("02:00:00:00:00:01", "02:00:00:00:00:02")).verdict
    prog.close()
    if verdict != "XDP_PASS":
        return (WARN, f"a libbpf program returning XDP_PASS gave {verdict} in a test run",
                "unexpected: report it with the output of 'xdplab doctor --json'")
    clang_version = objects.clang_version()
    return OK, (f"built with {clang_version} and loaded by libbpf an XDP program in {took:.2f} s "
                "(lab.load('x.bpf.c'), lab.load('prog.o'))"), ""


def _attach(run, mode):
    run.need("compile + verify")
    client, server = run.lab.client, run.lab.server
    before = run.seen()
    run.prog.attach(server, mode=mode)
    try:
        state = server.iface().xdp()
        if state.mode != mode:
            return (FAIL, f"attach reported success, but {server.ns}:{server.ifname} shows "
                          f"XDP mode {state.mode!r}", "report this with 'xdplab doctor --json'")
        received = client.ping(server, count=1, timeout=2).received
        counted = run.seen() - before
    finally:
        if mode == "generic":
            run.prog.detach(server)
    if counted < 1 or received != 1:
        return (FAIL, f"attached in {mode} mode, but the program counted {counted} frames of a ping "
                      f"({received} reply)", "report this with 'xdplab doctor --json'")
    frames = f"{counted} frame{'s' * (counted != 1)}"
    return OK, f"attached to a veth in a lab namespace (prog id {state.prog_id}); it saw the ping " \
               f"({frames}) and passed it on: reply received", ""


def check_generic(run: _Run) -> Result:
    return _attach(run, "generic")


def check_native(run: _Run) -> Result:
    return _attach(run, "native")


def _frame(src_mac, dst_mac):
    """A 60-byte Ethernet frame with the local experimental EtherType 0x88B5: nothing answers it."""
    dst, src = (bytes.fromhex(m.replace(":", "")) for m in (dst_mac, src_mac))
    return dst + src + b"\x88\xb5" + bytes(46)


def check_test_run(run: _Run) -> Result:
    run.need("compile + verify")
    from xdplab.kernel import bpf as kernel
    lab = run.lab
    frame = _frame(lab.client.mac, lab.server.mac)
    before = run.seen()
    retval, out, _ = kernel.prog_test_run(run.prog.fd(), frame)
    verdict = kernel.XDP_ACTIONS[retval] if retval < len(kernel.XDP_ACTIONS) else str(retval)
    if verdict != "XDP_PASS" or out != frame or run.seen() - before != 1:
        return (FAIL, f"BPF_PROG_TEST_RUN returned {verdict} and counted {run.seen() - before} "
                      "runs (expected XDP_PASS, 1, and the frame unchanged)",
                "report this with 'xdplab doctor --json'")
    return OK, "ran the program on one frame in the kernel: XDP_PASS, counted, frame unchanged " \
               "(prog.test_run works)", ""


def check_live_frames(run: _Run) -> Result:
    run.need("BPF_PROG_TEST_RUN", "XDP native")
    from xdplab.kernel import bpf as kernel
    from xdplab.kernel import netns
    client, server = run.lab.client, run.lab.server
    if run.results["XDP native"].status != OK:
        raise _Skip("XDP native")
    frame = _frame(client.mac, server.mac)
    ctx = bytes(kernel.XdpMd.for_packet(len(frame), ingress_ifindex=client.iface().ifindex))
    before = run.seen()
    with netns.enter(client.ns):
        fd = kernel.load_xdp_bytecode(kernel.xdp_return(3), "xdplab_doctor")   # return XDP_TX;
        try:
            kernel.prog_test_run(fd, frame, repeat=LIVE_FRAMES, ctx_in=ctx,
                                 flags=kernel.BPF_F_TEST_XDP_LIVE_FRAMES)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.EOPNOTSUPP, 524):   # 524: the kernel's ENOTSUPP
                return (WARN, "this kernel has no BPF_F_TEST_XDP_LIVE_FRAMES (Linux 5.18+)",
                        "nothing to do: Host.send falls back to AF_PACKET sockets, so traffic "
                        "lessons work but reach lower packet rates")
            raise
        finally:
            os.close(fd)
    deadline = time.monotonic() + 2          # the peer's NAPI poll may run a moment later
    while run.seen() - before < LIVE_FRAMES and time.monotonic() < deadline:
        time.sleep(0.01)
    got = run.seen() - before
    if got < LIVE_FRAMES:
        return (WARN, f"live frames: sent {LIVE_FRAMES} with XDP_TX from {client.ns}, the server's "
                      f"XDP program counted {got}", "Host.send's fast injector may lose frames "
                "here; lessons still work with the AF_PACKET fallback")
    return OK, f"BPF_F_TEST_XDP_LIVE_FRAMES: {LIVE_FRAMES} frames XDP_TX'd out of " \
               f"{client.ns}:{client.ifname} all reached the native XDP program on the server", ""


def check_qdiscs(run: _Run) -> Result:
    run.need("network namespaces")
    host = run.lab.client
    have, missing, broken = [], [], []
    for kind, (args, _) in QDISCS.items():
        res = host.run(["tc", "qdisc", "replace", "dev", host.ifname, "root", kind, *args],
                       check=False)
        if res.returncode == 0:
            have.append(kind)
            host.run(["tc", "qdisc", "del", "dev", host.ifname, "root"], check=False)
        elif "unknown" in res.stderr.lower():
            missing.append(kind)
        else:
            broken.append(f"{kind}: {res.stderr.strip()}")
    summary = f"usable: {', '.join(have) or 'none'}" + \
              (f"; not in this kernel: {', '.join(missing)}" if missing else "") + \
              (f"; errors: {'; '.join(broken)}" if broken else "")
    required = [k for k in REQUIRED_QDISCS if k not in have]
    if required:
        return (FAIL, summary, f"{', '.join(required)} is needed for "
                f"{QDISCS[required[0]][1]}: use a kernel with CONFIG_NET_SCH_TBF (every distro "
                "kernel has it)")
    if missing or broken:
        uses = ", ".join(f"{k} ({QDISCS[k][1]})" for k in missing)
        modules = os.path.isdir(f"/lib/modules/{platform.release()}")
        how = ("'modprobe sch_<name>' may add them." if modules else
               "This kernel was built without them (typical of VM kernels) and has no modules.")
        return (WARN, summary, f"Not blocking: the lessons that use {uses} say so and continue "
                f"without them. {how}")
    return OK, summary, ""


CHECKS = [
    ("kernel", check_kernel),
    ("privileges", check_privileges),
    ("header tree", check_headers),
    ("bcc", check_bcc),
    ("bpffs", check_bpffs),
    ("tracefs", check_tracefs),
    ("network namespaces", check_lab),
    ("compile + verify", check_compile),
    ("libbpf programs", check_libbpf),
    ("XDP generic", check_generic),
    ("XDP native", check_native),
    ("BPF_PROG_TEST_RUN", check_test_run),
    ("live frames", check_live_frames),
    ("qdiscs", check_qdiscs),
]


def lesson_checks(run: _Run) -> list[Check]:
    """One line per lesson that does something differently on this kernel, from xdplab.probe()
    (measured afresh, in a scratch lab of its own); one `ok` line when none does."""
    from xdplab.machine import probe as kernelprobe
    try:
        run.need("network namespaces", "XDP native")
    except _Skip as e:
        return [Check("lessons", WARN, f"not checked: it needs '{e}', which did not pass",
                      f"fix '{e}' first", checked=False)]
    start = time.perf_counter()
    try:
        p = kernelprobe.probe(refresh=True)
    except Exception as e:     # a finding too, not a traceback
        return [Check("lessons", WARN, f"could not probe what this kernel does: {e}",
                      "the lessons that depend on the kernel will say so when they run",
                      round(time.perf_counter() - start, 3))]
    took = round(time.perf_counter() - start, 3)
    lines = p.adaptations()
    if not lines:
        return [Check("lessons", OK, f"every lesson runs as written on this kernel (probed in "
                                     f"{p.seconds:.1f} s)", seconds=took)]
    return [Check(f"lesson {n}", WARN, text, "nothing to do: the lesson says so and checks what "
                  "this kernel does instead", seconds=took) for n, text in lines.items()]


def _one(run, name, fn):
    from xdplab.errors import LabError
    start = time.perf_counter()
    try:
        status, summary, fix = fn(run)
        check = Check(name, status, summary, fix)
    except _Skip as e:
        check = Check(name, WARN, f"not checked: it needs '{e}', which did not pass",
                      f"fix '{e}' first", checked=False)
    except LabError as e:
        check = Check(name, FAIL, e.message, e.hint or "see the message; 'xdplab doctor --json' "
                      "gives the details to report")
    except Exception as e:  # an unexpected failure is a finding too, not a traceback
        check = Check(name, FAIL, f"{type(e).__name__}: {e}",
                      "unexpected: report it with the output of 'xdplab doctor --json'")
    check.seconds = round(time.perf_counter() - start, 3)
    run.results[name] = check
    return check


def doctor() -> Report:
    """Run every check; returns a Report (a table in Jupyter and in a terminal). Everything the
    network checks create lives in one scratch lab, removed before this returns."""
    start = time.perf_counter()
    run = _Run()
    try:
        checks = [_one(run, name, fn) for name, fn in CHECKS]
        checks += lesson_checks(run)
    finally:
        run.close()
    return Report(checks, time.perf_counter() - start)
