"""Entering a lab host's network namespace from Python.

setns(2) changes the namespace of the calling *thread* only, so code that needs the kernel to
resolve interface names inside a host (attaching XDP, BPF_PROG_TEST_RUN with an ifindex, AF_PACKET
sockets) wraps itself in `with enter(host.ns):` and is back in its own namespace afterwards.
"""
import contextlib
import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def enter(ns):
    """Run the body inside network namespace `ns` (a name under /run/netns)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(os.path.join(NETNS_RUN_DIR, ns), os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


def exists(ns):
    return os.path.exists(os.path.join(NETNS_RUN_DIR, ns))


def exec_argv(ns, argv):
    """argv that runs `argv` inside namespace `ns`."""
    return ["ip", "netns", "exec", ns, *argv]
