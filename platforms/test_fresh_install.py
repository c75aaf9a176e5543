"""xdplab installs from nothing on a minimal Debian 12, the way the README says.

A minbase bookworm (debootstrap) plus make and sudo — no python3, no wheel, no CA certificates —
gets a clean copy of this checkout in a learner's home. As that learner, with sudo:
`sudo make lab` installs what a learner needs and serves JupyterLab (we ask its API on the
loopback, then stop it), and `sudo make test` adds what the tests need and runs the doctor and one
lesson notebook. It is a chroot on this machine's kernel, so the labs are real; everything it
made — processes, namespaces, mounts, the overlay — is removed at the end, as the test proves.

Run: sudo make test-install  (the rootfs is cached under .cache/; XDPLAB_FRESH_ROOTFS=1 remakes it)
"""
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

import rootfs

ROOT = Path(__file__).resolve().parent.parent
LESSON = "notebooks/01-hello-xdp.ipynb"
ARTIFACTS = ROOT / "tests" / "artifacts"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a chroot needs root: sudo make test-install")


def checkout_into(dest):
    """A clean copy of this checkout: the tracked files as they are now, nothing built."""
    dest.mkdir(parents=True)
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True,
                           check=True).stdout
    tar = subprocess.run(["tar", "-C", str(ROOT), "--null", "-T", "-", "--ignore-failed-read",
                          "-cf", "-"], input=files, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-C", str(dest), "-xf", "-"], input=tar, check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_jupyter(port, token, proc, timeout=600):
    """The JupyterLab server's /api answer, polled on this machine's loopback."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/status",
                                         headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(req, timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            time.sleep(2)
    return None


@pytest.mark.timeout(2400)    # debootstrap, apt, pip and one lesson: ~10 min; far less when cached
def test_minimal_debian_12_installs_and_runs_a_lesson():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "fresh-install.log"
    log.write_text("")
    ca = rootfs.host_ca_bundle()
    env_ca = "XDPLAB_CA_BUNDLE=/etc/xdplab-ca.pem " if ca else ""
    with rootfs.Chroot(rootfs.minbase(), ca_bundle=ca) as c:
        root = c.root
        # what makes this a fair test: the packages this machine has and a learner's lacks
        bare = c.run("dpkg-query -W -f='${Status}' python3 python3-wheel ca-certificates 2>&1; "
                     "command -v make sudo", log=log)
        assert "install ok installed" not in bare.stdout, f"the rootfs is not minimal:\n{bare.stdout}"
        assert "/usr/bin/make" in bare.stdout and "/usr/bin/sudo" in bare.stdout, bare.stdout

        c.run("useradd -m -s /bin/bash learner && echo 'learner ALL=(ALL) NOPASSWD:ALL' "
              "> /etc/sudoers.d/learner", log=log)
        checkout_into(root / "home" / "learner" / "xdplab")
        subprocess.run(["chroot", str(root), "chown", "-R", "learner:", "/home/learner/xdplab"],
                       check=True)

        # 1. sudo make lab: installs, checks, serves JupyterLab on the loopback
        port, token = free_port(), "fresh-install-test"
        lab = subprocess.Popen(
            ["chroot", str(root), "su", "-", "learner", "-c",
             f"cd xdplab && sudo {env_ca}XDPLAB_TOKEN={token} make lab PORT={port}"],
            stdout=open(log, "a"), stderr=subprocess.STDOUT, start_new_session=True)
        try:
            status = wait_for_jupyter(port, token, lab)
        finally:
            if lab.poll() is None:
                os.killpg(lab.pid, signal.SIGTERM)
                try:
                    lab.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(lab.pid, signal.SIGKILL)
        text = log.read_text(errors="replace")
        assert status is not None, f"'sudo make lab' served no JupyterLab; its log:\n{text[-3000:]}"
        assert "environment ready" in text and "xdplab doctor" in text, text[-3000:]
        learner_only = c.run("dpkg-query -W -f='${Status}' chromium 2>&1; "
                             "/home/learner/xdplab/.venv/bin/python -c 'import pytest'", log=log)
        assert "install ok installed" not in learner_only.stdout, \
            "make lab installed the test suite's browser: a learner does not need it"
        assert "No module named 'pytest'" in learner_only.stdout, learner_only.stdout

        # 2. sudo make test: adds what the tests need, runs the doctor and one lesson
        res = c.run(f"cd xdplab && sudo {env_ca}make test "
                    f"PYTEST_ARGS='-v tests/test_notebooks.py -k 01-hello'", user="learner", log=log)
        assert res.returncode == 0, f"'sudo make test' failed in a fresh Debian 12:\n{res.stdout[-4000:]}"
        assert re.search(r"test_runs_top_to_bottom\[notebooks/01-hello-xdp.ipynb\] PASSED", res.stdout), \
            f"lesson 01 did not run:\n{res.stdout[-2000:]}"
        summary = res.stdout.strip().splitlines()[-1]
        assert "passed" in summary and "failed" not in summary and "error" not in summary, summary

        # everything the labs made inside is gone once the chroot is closed
        inside = root
    assert not rootfs.processes_inside(inside), "processes of the chroot survived its close"
    with open("/proc/self/mounts") as f:
        left = [line.split()[1] for line in f if str(inside) in line]
    assert not left, f"mounts of the chroot survived its close: {left}"
    assert not inside.exists(), f"{inside} survived the close"


def test_a_full_disk_is_named_before_debootstrap_starts(tmp_path, monkeypatch):
    """Too little room for a minimal Debian: a clear message, and nothing half-made is left."""
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(small)], check=True)
    try:
        monkeypatch.setenv("XDPLAB_CACHE", str(small))
        with pytest.raises(rootfs.PlatformError, match=r"only \d+ MiB free .*set XDPLAB_CACHE"):
            rootfs.minbase(fresh=True)
        assert not (small / "rootfs" / "bookworm-minbase").exists()
    finally:
        subprocess.run(["umount", str(small)], check=True)
