"""Counting what a burst of traffic did on every side: interface statistics, a host's SNMP
counters, a map's counters and the kernel's XDP tracepoint events, before and after.

    with measure(router.iface(client), server.iface(), prog.maps["counters"], router) as seen:
        client.ping(server, count=5)
    seen[server.iface()]["rx_packets"]      # what changed meanwhile: interface statistics,
    seen[router]["IpForwDatagrams"]         # a host's SNMP counters, a map's counters,
    seen["tracepoints"]                     # and xdplab.Tracepoints events

    counted(maps, before, after)            # {map: {key: change}} between two sets of snapshots
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Mapping, Union

from xdplab.errors import LabError
from xdplab.lab.settle import settled
from xdplab.lab.counters import link_stats, snmp

if TYPE_CHECKING:
    from xdplab.kernel.counters import Counts
    from xdplab.lab.topology import Host, Interface
    from xdplab.maps.codecs import Decoded
    from xdplab.maps.map import Map
    from xdplab.program.tracepoints import Event, Tracepoints

    # what measure() reads, and what changed in one of them
    Measurable = Union[Interface, Host, Map, Tracepoints]
    Changes = Union[Counts, dict[Decoded, Decoded], dict[Event, int]]


def _delta(codec, old, new):
    """new - old for counters (field by field in structs and arrays), `new` for the rest."""
    if isinstance(new, tuple):
        subs = ([c for _, c, _ in codec.fields] if codec is not None and codec.fields is not None
                else [codec.elem if codec is not None else None] * len(new))
        old = old if old is not None else (None,) * len(new)
        items = [_delta(c, o, n) for c, o, n in zip(subs, old, new)]
        return type(new)(*items) if hasattr(new, "_fields") else tuple(items)
    counter = codec.counter if codec is not None else isinstance(new, int)
    if not counter or isinstance(new, bool) or not isinstance(new, int):
        return new
    old = old or 0
    return new - old if new >= old else new          # a counter that went down was reset


def counted(maps: Mapping[str, Map], before: Mapping[str, Mapping[Decoded, Decoded]],
            after: Mapping[str, Mapping[Decoded, Decoded]]) -> dict[str, dict[Decoded, Decoded]]:
    """{map: {key: change}} between two sets of snapshots, leaving out entries that did not change."""
    out = {}
    for name, m in maps.items():
        b, a = before[name], after[name]
        changes = {k: _delta(m.value_codec, b.get(k), v) for k, v in a.items() if b.get(k) != v}
        if changes:
            out[name] = changes
    return out


class Measured(dict):
    """What changed while a `measure` block ran: {name: changes}, names as "router:eth0" for an
    interface, "router" for a host, the map's name for a map. Index by name or by the object."""

    def __getitem__(self, what: Measurable | str) -> Changes:
        return super().__getitem__(_name(what))

    def __repr__(self):
        return "\n".join(f"{name}: {dict(changes) or 'nothing changed'}"
                         for name, changes in self.items())


def _name(what):
    if hasattr(what, "ifindex"):
        return str(what)
    if hasattr(what, "counts") and hasattr(what, "total"):
        return "tracepoints"
    return getattr(what, "name", what)


def _read(what):
    if hasattr(what, "ifindex"):
        return link_stats(what)
    if hasattr(what, "interfaces"):
        return snmp(what)
    if hasattr(what, "snapshot"):
        return what.snapshot()
    if hasattr(what, "counts") and hasattr(what, "total"):
        return what.counts()
    raise LabError(f"cannot measure {what!r}",
                   "give lab interfaces, hosts, maps or an xdplab.Tracepoints")


def _changes(what, before, after):
    if hasattr(what, "snapshot"):
        name = what.name
        return counted({name: what}, {name: before}, {name: after}).get(name, {})
    if isinstance(after, dict) and not hasattr(after, "__sub__"):      # Tracepoints.counts()
        return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    return after - before


class measure:
    """`with measure(*things) as seen:` — `seen` (a Measured) holds, once the block is over, what
    changed during it: interface statistics (Interface), SNMP counters (Host), map counters (Map),
    tracepoint events (xdplab.Tracepoints, under "tracepoints").
    Readings are taken when every counter has been still for `quiet` seconds (at most `limit`),
    before and after, so that traffic still under way is not cut in half."""

    def __init__(self, *things: Measurable, quiet: float = 0.05, limit: float = 2.0) -> None:
        self.things, self.quiet, self.limit = things, quiet, limit
        self.seen = Measured()

    def _still(self):
        """The readings, once they have not changed for `quiet` seconds (or after `limit`)."""
        return settled(lambda: [_read(t) for t in self.things], self.quiet, self.limit, poll=0.01)

    def __enter__(self) -> Measured:
        self.before = self._still()        # earlier traffic (and its echoes) has died down
        return self.seen

    def __exit__(self, *exc: object) -> Literal[False]:
        if exc[0] is not None:
            return False
        for t, b, a in zip(self.things, self.before, self._still()):
            self.seen[_name(t)] = _changes(t, b, a)
        return False
