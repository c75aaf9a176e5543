"""Per-CPU sums and rates: one value from the per-CPU copies of an entry (combine), and
per-second rates between two snapshots (rates)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence, TypeVar

from xdplab.errors import LabError

if TYPE_CHECKING:
    from xdplab.maps.codecs import Codec, Decoded

_K = TypeVar("_K")


def combine(codec: Codec, values: Sequence[Decoded]) -> Decoded:
    """One value from the per-CPU copies: counters summed, other fields from the first CPU where
    the entry is not zero."""
    if codec.fields is not None:
        return codec.tuple_type(*(combine(c, [v[i] for v in values])
                                  for i, (_, c, _) in enumerate(codec.fields)))
    if codec.elem is not None:
        return tuple(combine(codec.elem, [v[i] for v in values]) for i in range(len(values[0])))
    if codec.counter:
        return sum(values)
    return next((v for v in values if not _zero(codec, v)), values[0])


def _zero(codec, v):
    """True for what an untouched per-CPU slot decodes to. Asked of the bytes the value encodes
    to, since the decoded forms of zero are true in Python: IPv4Address('0.0.0.0'), the MAC
    '00:00:00:00:00:00', an action name 'XDP_ABORTED'."""
    try:
        return not any(codec.encode(v))
    except Exception:                  # a codec that cannot encode: Python's own idea of zero
        return not v


def _rate(codec, prev, cur, dt):
    if isinstance(cur, tuple):                           # a struct or an array: item by item
        subs = ([c for _, c, _ in codec.fields] if codec and codec.fields is not None
                else [codec and codec.elem] * len(cur))
        prev = prev if prev is not None else [None] * len(cur)
        items = [_rate(c, p, x, dt) for c, p, x in zip(subs, prev, cur)]
        return type(cur)(*items) if hasattr(cur, "_fields") else tuple(items)
    counter = codec.counter if codec else type(cur) is int
    if not counter:
        return cur
    prev = prev or 0
    return (cur - prev if cur >= prev else cur) / dt      # a counter that went down was reset


def rates(prev: Mapping[_K, Decoded], cur: Mapping[_K, Decoded], dt: float,
          codec: Codec | None = None) -> dict[_K, float | Decoded]:
    """Per-second rates from two snapshots taken `dt` seconds apart: {key: rate} for every key of
    `cur` (a key new since `prev` counts from 0, a counter that went down is taken as reset).
    Integers are counters; in named tuples every int field is, the others are copied from `cur`.
    `codec` (a Map's value codec) limits this to the fields typed as counters."""
    if dt <= 0:
        raise LabError("rates need two snapshots taken at different times (dt > 0)")
    return {k: _rate(codec, prev.get(k), v, dt) for k, v in cur.items()}

