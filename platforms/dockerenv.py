"""The Docker engine and the xdplab image, for the platform tests and the workshop benchmark.

    with engine() as started:            # the running engine, or one started here (and stopped)
        with base_image() as base:       # debian:12, or the minimal Debian 12 rootfs imported
            with built_image(base) as tag:   # env/image.sh, as `make image` builds it
                ...

Each removes on exit what it made (the engine it started, the imported base, the image and the
build cache) unless XDPLAB_KEEP_IMAGE=1 keeps the images. `engine()` raises NoEngine when there
is no Docker engine to use; PlatformError says which step failed and where its log is.
"""
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import rootfs
from rootfs import PlatformError

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
# Debian's docker.io puts it here; engine() installs that package when there is no client at all
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else shutil.which("docker") or "/usr/bin/docker"
IMAGE = "xdplab-test:latest"
BASE = "xdplab-base:bookworm"


class NoEngine(PlatformError):
    """No Docker engine here (reported as "skipped: no engine", never silently)."""


def docker(*args, check=True, timeout=120, **kw):
    res = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout, **kw)
    if check and res.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
    return res


def keep():
    """XDPLAB_KEEP_IMAGE=1 keeps the images (the next run builds from its cache)."""
    return os.environ.get("XDPLAB_KEEP_IMAGE") == "1"


def engine_running():
    return os.path.exists(DOCKER) and \
        subprocess.run([DOCKER, "info"], capture_output=True, timeout=60).returncode == 0


def stop(proc, first=signal.SIGTERM, timeout=60):
    """Stop a process we started (its whole session if it does not go within `timeout` s)."""
    if proc.poll() is None:
        proc.send_signal(first)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def engine():
    """A running Docker engine: the one that runs, or one started here (stopped on exit)."""
    if not os.path.exists(DOCKER):
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "docker.io"],
                       capture_output=True)
    if not os.path.exists("/usr/sbin/dockerd") and not engine_running():
        raise NoEngine("skipped: no engine (no dockerd; Debian: apt-get install docker.io)")
    started = None
    if not engine_running():
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        # No bridge, no iptables rules: nothing of the engine's outlives it on this machine.
        # The build uses the host's network (for apt and pip), the containers none at all.
        started = subprocess.Popen(["/usr/sbin/dockerd", "--bridge=none", "--iptables=false",
                                    "--ip6tables=false"], stdout=open(ARTIFACTS / "dockerd.log", "w"),
                                   stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while not engine_running():
            if started.poll() is not None or time.monotonic() > deadline:
                stop(started)
                raise PlatformError(f"dockerd did not start; see {ARTIFACTS / 'dockerd.log'}")
            time.sleep(1)
    try:
        yield started
    finally:
        if started is not None:
            stop(started)
    if started is not None:
        assert not subprocess.run(["pgrep", "-x", "dockerd|containerd"], capture_output=True).stdout, \
            "the Docker engine we started is still running"


@contextlib.contextmanager
def base_image():
    """debian:12 when it can be pulled, else the minimal Debian 12 rootfs imported as BASE."""
    if docker("image", "inspect", "debian:12", check=False).returncode == 0 or \
            docker("pull", "debian:12", check=False, timeout=120).returncode == 0:
        yield "debian:12"
        return
    made = docker("image", "inspect", BASE, check=False).returncode != 0
    if made:
        root = rootfs.minbase()
        tar = subprocess.Popen(["tar", "-C", str(root), "--exclude=./.xdplab-complete", "-c", "."],
                               stdout=subprocess.PIPE)
        res = subprocess.run([DOCKER, "import", "-", BASE], stdin=tar.stdout, capture_output=True,
                             text=True, timeout=600)
        tar.wait()
        if res.returncode != 0:
            raise PlatformError(f"docker import failed: {res.stderr}")
    try:
        yield BASE
    finally:
        if made and not keep():
            docker("image", "rm", "-f", BASE, check=False)


@contextlib.contextmanager
def built_image(base, tag=IMAGE):
    """The xdplab image built by env/image.sh from `base`. No XDPLAB_CA_BUNDLE: env/image.sh finds
    this machine's bundle through pip's own setting, the documented way (and the build log shows
    "the build verifies TLS against ...")."""
    env = {**os.environ, "IMAGE": tag, "BASE": base, "DOCKER": DOCKER, "NETWORK": "host"}
    log = ARTIFACTS / "docker-build.log"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        res = subprocess.run(["bash", str(ROOT / "env" / "image.sh")], env=env, stdout=out,
                             stderr=subprocess.STDOUT, timeout=2400)
    if res.returncode != 0:
        raise PlatformError(f"the image did not build:\n{log.read_text()[-4000:]}")
    try:
        yield tag
    finally:
        if not keep():
            docker("image", "rm", "-f", tag, check=False)
            docker("builder", "prune", "-af", check=False, timeout=300)
