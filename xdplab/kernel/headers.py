"""Which kernel header tree bcc compiles against, and why that is fine.

bcc needs a kernel header tree. Distro kernels ship one at /lib/modules/$(uname -r)/build; VM kernels
(this CI, cloud VMs, Docker Desktop, WSL2) do not. The lessons' XDP programs use only UAPI headers
(struct xdp_md, the helper ids, ethhdr/iphdr/...), which the kernel keeps stable, so a tree merged
from the distro's generic header packages works for them even when its version differs from the
running kernel. That holds for the UAPI structs and constants these lessons use, not for every
feature: one newer than the headers (a helper, a kfunc, a map type) is missing from older headers
and does not compile, and a program built against newer headers can ask for what the running kernel
lacks, which the verifier (or the map's creation) then refuses. env/kernel-headers.sh builds the
tree under .venv/kernel-headers; we point bcc at it with BCC_KERNEL_SOURCE and never write into
/lib/modules.
"""
from __future__ import annotations

import dataclasses
import glob
import os
import platform
import subprocess
from pathlib import Path

from xdplab.errors import SetupError

REPO = Path(__file__).resolve().parents[2]
BUILT = REPO / ".venv" / "kernel-headers"

RUNNING = "running kernel build dir"
MERGED = "merged distro headers"
FROM_ENV = "BCC_KERNEL_SOURCE from environment"


@dataclasses.dataclass
class HeaderTree:
    path: str
    kind: str
    version: str          # version of the headers
    kernel: str           # running kernel

    @property
    def skew(self) -> bool:
        """True if the headers are of another kernel version than the running one."""
        return not self.kernel.startswith(self.version.split("-")[0])


def _version_of(path):
    name = Path(path).resolve().name
    return name.removeprefix("linux-headers-") if name.startswith("linux-headers-") else "?"


def tree(build: bool = True) -> HeaderTree:
    """The header tree bcc will use, building the merged one when needed."""
    kernel = platform.release()
    env = os.environ.get("BCC_KERNEL_SOURCE")
    if env and os.environ.get("XDPLAB_SET_BCC_SOURCE") != env:
        if not os.path.isdir(os.path.join(env, "include")):
            raise SetupError(f"BCC_KERNEL_SOURCE={env} is not a kernel header tree (no include/ in it)",
                             "unset BCC_KERNEL_SOURCE, or point it at a directory built by env/kernel-headers.sh")
        return HeaderTree(env, FROM_ENV, _version_of(env), kernel)
    own = f"/lib/modules/{kernel}/build"
    if os.path.isdir(os.path.join(own, "include")):
        return HeaderTree(own, RUNNING, kernel, kernel)
    trees = sorted(glob.glob(str(BUILT / "linux-headers-*" / ".complete")))
    if not trees and build and glob.glob("/usr/src/linux-headers-*"):
        subprocess.run(["bash", str(REPO / "env" / "kernel-headers.sh")], check=False,
                       capture_output=True)
        trees = sorted(glob.glob(str(BUILT / "linux-headers-*" / ".complete")))
    if not trees:
        raise SetupError(
            f"no kernel header tree for kernel {kernel}: /lib/modules/{kernel}/build is missing and "
            "no distro headers are installed",
            "run 'sudo make install' (it installs linux-headers-amd64 and builds a merged tree)")
    path = str(Path(trees[-1]).parent)
    return HeaderTree(path, MERGED, _version_of(path), kernel)


def ensure() -> HeaderTree:
    """Point bcc at a usable tree (sets BCC_KERNEL_SOURCE when the running kernel has none)."""
    t = tree()
    if t.kind == MERGED:
        os.environ["BCC_KERNEL_SOURCE"] = t.path
        os.environ["XDPLAB_SET_BCC_SOURCE"] = t.path
    return t
