"""A minimal Debian 12 root filesystem, made with Debian's debootstrap, for proving installs.

    root = minbase()                         # cached under .cache/rootfs/ (XDPLAB_CACHE moves it)
    with Chroot(root) as c:                  # a throwaway overlay on top: the cache stays pristine
        c.run("make doctor", user="learner") # /proc, /sys, /dev inside; same kernel, so labs work
    # on exit: every process inside is killed, its namespaces and mounts are gone, the overlay too

`debootstrap --variant=minbase bookworm` is the smallest Debian there is: essential packages, apt,
no python3, no wheel, no CA certificates. A learner's fresh VM or cloud image has at least that.
We add only make and sudo, the two commands the README starts with.
"""
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
EXTRA = ("make", "sudo")
NEED_FREE = 3 << 30          # bytes free before debootstrap starts (rootfs ~250 MB, an install ~2 GB)


class PlatformError(RuntimeError):
    """A step of a platform test could not be done; the message says which and what to do."""


def cache_dir():
    """Where downloads and root filesystems are kept between runs (not tracked by git)."""
    path = Path(os.environ.get("XDPLAB_CACHE") or REPO / ".cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def host_ca_bundle():
    """The CA bundle this machine's pip verifies against (XDPLAB_CA_BUNDLE, PIP_CERT or pip's
    `cert` setting), or None: a chroot or container is handed the same one explicitly."""
    for value in (os.environ.get("XDPLAB_CA_BUNDLE"), os.environ.get("PIP_CERT")):
        if value and os.path.isfile(value):
            return value
    try:
        out = subprocess.run(["/usr/bin/python3", "-m", "pip", "config", "get", "global.cert"],
                             capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out if out and os.path.isfile(out) else None


def _free(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def minbase(fresh=None):
    """The path of a pristine minbase bookworm rootfs (+ make, sudo), made once and then reused.
    fresh=True (or XDPLAB_FRESH_ROOTFS=1) makes it anew."""
    if fresh is None:
        fresh = os.environ.get("XDPLAB_FRESH_ROOTFS") == "1"
    if not shutil.which("debootstrap"):
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "debootstrap"],
                       check=False, capture_output=True)
        if not shutil.which("debootstrap"):
            raise PlatformError("debootstrap is not installed and 'apt-get install debootstrap' "
                                "failed: install Debian's debootstrap package")
    root = cache_dir() / "rootfs" / f"{SUITE}-minbase"
    done = root / ".xdplab-complete"
    if done.exists() and not fresh:
        return root
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    if _free(root.parent) < NEED_FREE:
        raise PlatformError(f"only {_free(root.parent) >> 20} MiB free under {root.parent}: a "
                            f"minimal Debian plus an xdplab install needs {NEED_FREE >> 30} GiB "
                            "(set XDPLAB_CACHE to a roomier directory)")
    log = root.parent / f"{SUITE}-minbase.log"
    with open(log, "w") as out:
        res = subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(EXTRA)}",
                              SUITE, str(root), MIRROR], stdout=out, stderr=subprocess.STDOUT)
    if res.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        shutil.rmtree(root, ignore_errors=True)
        full = any("No space left" in line for line in tail) or _free(root.parent) < (64 << 20)
        why = ("the disk filled up: free some space or set XDPLAB_CACHE elsewhere" if full else
               f"see {log}")
        raise PlatformError(f"debootstrap {SUITE} failed ({why}):\n  " + "\n  ".join(tail))
    done.write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))
    return root


def _mount(*args):
    subprocess.run(["mount", *args], check=True, capture_output=True)


def _umount_tree(path):
    """Unmount everything at or below path, deepest first (lazily, if something still holds it)."""
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    below = sorted({p for p in points if p == str(path) or p.startswith(f"{path}/")},
                   key=len, reverse=True)
    for p in below:
        if subprocess.run(["umount", p], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", p], capture_output=True)


def processes_inside(root):
    """PIDs of processes whose root directory is `root` (started by chroot into it)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/root") == str(root):
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


class Chroot:
    """A writable, throwaway copy of `lower` (overlayfs), with /proc, /sys and /dev, a /run of its
    own (so its network namespaces live in its own /run/netns), DNS and, when this machine has
    one, the CA bundle at /etc/xdplab-ca.pem. Closing kills everything inside and removes it all."""

    def __init__(self, lower, ca_bundle=None):
        self.lower = Path(lower)
        self.ca_bundle = ca_bundle
        self.tmp = None
        self.root = None

    def __enter__(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="chroot-", dir=cache_dir()))
        for d in ("upper", "work", "root"):
            (self.tmp / d).mkdir()
        self.root = self.tmp / "root"
        try:
            _mount("-t", "overlay", "overlay", "-o",
                   f"lowerdir={self.lower},upperdir={self.tmp / 'upper'},workdir={self.tmp / 'work'}",
                   str(self.root))
            _mount("-t", "proc", "proc", str(self.root / "proc"))
            for d in ("sys", "dev"):
                _mount("--rbind", f"/{d}", str(self.root / d))
                _mount("--make-rslave", str(self.root / d))
            _mount("-t", "tmpfs", "tmpfs", str(self.root / "run"))
            # downloaded .debs are kept between runs (apt still installs every one of them)
            archives = cache_dir() / "apt-archives" / SUITE
            (archives / "partial").mkdir(parents=True, exist_ok=True)
            _mount("--bind", str(archives), str(self.root / "var" / "cache" / "apt" / "archives"))
            shutil.copy("/etc/resolv.conf", self.root / "etc" / "resolv.conf")
            with open(self.root / "etc" / "hosts", "a") as hosts:     # sudo looks its host up
                hosts.write(f"127.0.1.1\t{os.uname().nodename}\n")
            if self.ca_bundle:
                shutil.copy(self.ca_bundle, self.root / "etc" / "xdplab-ca.pem")
        except BaseException:
            self.close()
            raise
        return self

    def run(self, command, user="root", env=None, timeout=1800, log=None):
        """Run a shell command inside, as `user` (a login shell); returns CompletedProcess with
        the output, also written to `log` (a path) as it comes."""
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": "/root" if user == "root" else f"/home/{user}", "LANG": "C.UTF-8",
               "TERM": "dumb", **(env or {})}
        inner = command if user == "root" else f"su - {user} -c {_quote(command)}"
        out = open(log, "a") if log else None
        try:
            proc = subprocess.Popen(["chroot", str(self.root), "/bin/bash", "-lc", inner],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, errors="replace", start_new_session=True)
            lines, deadline = [], time.monotonic() + timeout
            for line in proc.stdout:
                lines.append(line)
                if out:
                    out.write(line)
                    out.flush()
                if time.monotonic() > deadline:
                    os.killpg(proc.pid, signal.SIGKILL)
                    raise PlatformError(f"'{command}' took over {timeout} s inside the chroot")
            proc.wait()
        finally:
            if out:
                out.close()
        return subprocess.CompletedProcess(command, proc.returncode, "".join(lines), "")

    def close(self):
        if self.tmp is None:
            return
        if self.root is not None:
            for _ in range(3):                  # processes inside, then what they held
                pids = processes_inside(self.root)
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.5)
            _umount_tree(self.root)             # its /run/netns/* binds go too: the namespaces die
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp = self.root = None

    def __exit__(self, *exc):
        self.close()


def _quote(s):
    return "'" + s.replace("'", "'\\''") + "'"
