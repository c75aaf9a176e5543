"""Waiting until a reading stops changing: the one loop behind lab.settle() (the links' start-up
chatter), `measure` (counters before and after a burst), the traffic panel's counted maps and the
lessons' counts of frames still on their way when the sender returned.

    settled(lambda: link_stats(iface)["rx_packets"], quiet=0.1, limit=2.0)
    settled(count, quiet=0.05, limit=2.0, poll=0.05, enough=lambda n: n >= expected)

Pure: it only calls `read` and sleeps, so it is tested without a lab.
"""
from __future__ import annotations

import time
from typing import Any, Callable, TypeVar

T = TypeVar("T")
_UNREAD: Any = object()


def settled(read: Callable[[], T], quiet: float = 0.1, limit: float = 2.0, *,
            poll: float | None = None, last: T = _UNREAD, since: float | None = None,
            enough: Callable[[T], bool] | None = None) -> T:
    """The value of `read()` once it has not changed for `quiet` seconds — or once `enough(value)`
    is true, or when `limit` seconds have passed (then the last value read).

    `last` (and `since`, the monotonic time it was read; now by default) start from a reading
    taken earlier: the first call of read() is compared with it. `poll` is the pause between two
    reads (by default a fifth of `quiet`, shorter when less of the quiet time is left)."""
    start = time.monotonic()
    deadline = start + limit
    since = start if since is None else since
    if last is _UNREAD:
        last, since = read(), time.monotonic()
    else:
        now = read()
        if now != last:
            last, since = now, time.monotonic()
    while True:
        if enough is not None and enough(last):
            return last
        t = time.monotonic()
        if t - since >= quiet or t >= deadline:
            return last
        time.sleep(poll if poll is not None else min(quiet / 5, max(0.001, since + quiet - t)))
        now = read()
        if now != last:
            last, since = now, time.monotonic()
