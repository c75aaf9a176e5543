"""Entering a lab host's network namespace from Python.

setns(2) changes the namespace of the calling *thread* only, so code that needs the kernel to
resolve interface names inside a host (attaching XDP, BPF_PROG_TEST_RUN with an ifindex, AF_PACKET
sockets) wraps itself in `with enter(host.ns):` and is back in its own namespace afterwards.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import os
from typing import Any, Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"
# called with a namespace's name before anything enters it (see topology)
before_use: Callable[[str], None] | None = None


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def enter(ns: str) -> Iterator[None]:
    """Run the body inside network namespace `ns` (a name under /run/netns)."""
    if before_use is not None:
        before_use(ns)
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


def exists(ns: str) -> bool:
    """Whether namespace `ns` exists (a name under /run/netns)."""
    return os.path.exists(os.path.join(NETNS_RUN_DIR, ns))


def exec_argv(ns: str, argv: Sequence[str]) -> list[str]:
    """argv that runs `argv` inside namespace `ns`."""
    if before_use is not None:
        before_use(ns)
    return ["ip", "netns", "exec", ns, *argv]


def _loop_running():
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


class _Forwarded:
    """Calls on this object run on the worker thread that owns the real netlink socket."""

    def __init__(self, pool, obj):
        self._pool, self._obj = pool, obj

    def __getattr__(self, name):
        attr = getattr(self._obj, name)
        if not callable(attr):
            return attr
        return lambda *a, **kw: self._pool.submit(attr, *a, **kw).result()


@contextlib.contextmanager
def netlink(ns: str, factory: Callable[[], Any] | None = None) -> Iterator[Any]:
    """A pyroute2 netlink object (IPRoute, or `factory()`, e.g. Ethtool) working inside namespace
    `ns`:  with netlink(host.ns) as ipr: ipr.link(...)

    pyroute2 0.9 drives its sockets with an asyncio loop of its own, which cannot start in a thread
    that already runs one — the main thread of every Jupyter kernel. There the socket is made and
    used on a worker thread, and calls are forwarded to it."""
    if factory is None:
        from pyroute2 import IPRoute
        factory = IPRoute
    if before_use is not None:
        before_use(ns)
    if not _loop_running():
        with enter(ns), factory() as obj:
            yield obj
        return
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="xdplab-netlink") as pool:
        inside = enter(ns)

        def open_():
            inside.__enter__()
            return factory()
        obj = pool.submit(open_).result()
        try:
            yield _Forwarded(pool, obj)
        finally:
            def close():
                try:
                    obj.close()
                finally:
                    inside.__exit__(None, None, None)
            pool.submit(close).result()


def off_loop(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """fn(*args, **kw), on a worker thread when this thread runs an asyncio loop (see netlink)."""
    if not _loop_running():
        return fn(*args, **kw)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="xdplab-netlink") as pool:
        return pool.submit(fn, *args, **kw).result()
