"""Forwarding between lab interfaces: devmap entries, test runs on an interface, FIB answers, and
counting what a burst of traffic did on every side.

    from xdplab.forwarding import devmap_set, test_run_on, fib_results, measure
    devmap_set(prog.maps["tx_port"], router.iface(client), router.iface(server))  # slot 2 → eth1
    test_run_on(prog, router.iface(client), Ether()/IP(src=..., dst=...))   # as if arriving there
    fib_results(prog)          # {"SUCCESS": 16, "NOT_FWDED": 2}: bpf_fib_lookup() answers
    with measure(router.iface(client), server.iface(), prog.maps["counters"], router) as seen:
        client.ping(server, count=5)
    seen[server.iface()]["rx_packets"]      # what changed meanwhile: interface statistics,
    seen[router]["IpForwDatagrams"]         # a host's SNMP counters, a map's counters,
    seen["tracepoints"]                     # and xdplab.Tracepoints events

Interface indexes belong to a network namespace: ifindex 3 is one device in the router and another
(or none) in this machine's own namespace. The kernel resolves them in the namespace of whoever
asks. A devmap update looks the index up in the namespace of the thread writing it and keeps that
device; a test run's ingress interface, and so the routing table bpf_fib_lookup() consults, is
looked up in the namespace of the thread running it. So both happen here inside the host that
owns the interface — written from this machine's own namespace, `tx_port[3] = 2` would make the
program send frames out of whatever device has index 2 *there*.
"""
import ctypes
import time

from . import kernel, maps, netns, testrun
from .counters import link_stats, snmp
from .errors import LabError

# enum of bpf_fib_lookup() return codes (include/uapi/linux/bpf.h), by value
FIB_RESULTS = ("SUCCESS", "BLACKHOLE", "UNREACHABLE", "PROHIBIT", "NOT_FWDED", "FWD_DISABLED",
               "UNSUPP_LWT", "NO_NEIGH", "FRAG_NEEDED", "NO_SRC_ADDR")


def _lab_iface(lab, iface, what):
    if not hasattr(iface, "ifindex") or iface.host.lab is not lab:
        raise LabError(f"{what} must be an interface of this lab, not {iface!r}",
                       "e.g. router.iface(server), or lab['router'].iface('eth1')")
    return iface


def devmap_set(m, key, target):
    """Slot `key` of devmap `m` (prog.maps["tx_port"]) := interface `target`. `key` is a slot
    number or an Interface, standing for its ifindex. Written inside target's host, so the
    index means target there. Returns the map."""
    if m.kind != "devmap":
        raise LabError(f"map {m.name!r} is a {m.kind} map, not a devmap",
                       "declare it with BPF_DEVMAP(name, max_entries)")
    lab = m.program.lab
    lab._check_open()
    target = _lab_iface(lab, target, "the target")
    if hasattr(key, "ifindex"):
        key = _lab_iface(lab, key, "the key").ifindex
    if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key < m.max_entries:
        raise LabError(f"slot {key!r} is not in devmap {m.name!r} (slots 0 to {m.max_entries - 1})",
                       "declare the devmap with more entries, or use smaller keys")
    table = m.table
    try:
        with netns.enter(target.host.ns):
            table[table.Key(key)] = table.Leaf(target.ifindex)
    except Exception as e:
        raise LabError(f"could not set slot {key} of {m.name!r} to {target}: {e}") from None
    return m


def devmap_delete(m, key):
    """Empty slot `key` (a number or an Interface) of devmap `m`: bpf_redirect_map() on it then
    returns the action in the low bits of its flags argument (XDP_ABORTED for flags 0)."""
    key = ctypes.c_uint32(key.ifindex if hasattr(key, "ifindex") else key)
    m.table                                   # raises when the program is closed
    maps.libbpf().bpf_map_delete_elem(m.fd, ctypes.byref(key))   # an empty slot is fine too
    return m


def test_run_on(prog, iface, packet, fn=None):
    """Run `prog` once on `packet` as if it had arrived on lab interface `iface`: the context's
    ingress_ifindex is iface's, and the run happens in iface's host, so helpers that consult
    the network (bpf_fib_lookup) see that host's routes and neighbours. Returns a TestRunResult.
    The packet goes nowhere: a redirect verdict is only reported."""
    iface = _lab_iface(prog.lab, iface, "the interface")
    data = testrun.frame_bytes(packet)
    testrun.check_frame(data)
    ctx = bytes(kernel.XdpMd.for_packet(len(data), ingress_ifindex=iface.ifindex))
    try:
        with netns.enter(iface.host.ns):
            retval, out, duration = kernel.prog_test_run(prog.fd(fn), data, ctx_in=ctx)
    except OSError as e:
        raise testrun._translate(e) from None
    return testrun.TestRunResult(retval, data, out, duration, 1)


test_run_on.__test__ = False          # a helper, not a test, when a test module imports it


def fib_results(prog, map_name="fib_results"):
    """{answer name: lookups} from a per-answer counter array indexed by the bpf_fib_lookup()
    return value (as lesson05_router.c keeps one); answers never given are left out."""
    snap = prog.maps[map_name].snapshot()
    return {(FIB_RESULTS[k] if k < len(FIB_RESULTS) else str(k)): v
            for k, v in sorted(snap.items()) if v}


class Measured(dict):
    """What changed while a `measure` block ran: {name: changes}, names as "router:eth0" for an
    interface, "router" for a host, the map's name for a map. Index by name or by the object."""

    def __getitem__(self, what):
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
        from .panels import counted
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

    def __init__(self, *things, quiet=0.05, limit=2.0):
        self.things, self.quiet, self.limit = things, quiet, limit
        self.seen = Measured()

    def _still(self):
        """The readings, once they have not changed for `quiet` seconds (or after `limit`)."""
        now, still_since, deadline = None, time.monotonic(), time.monotonic() + self.limit
        while time.monotonic() < deadline:
            cur = [_read(t) for t in self.things]
            if cur != now:
                now, still_since = cur, time.monotonic()
            elif time.monotonic() - still_since >= self.quiet:
                break
            time.sleep(0.01)
        return now

    def __enter__(self):
        self.before = self._still()        # earlier traffic (and its echoes) has died down
        return self.seen

    def __exit__(self, *exc):
        if exc[0] is not None:
            return False
        for t, b, a in zip(self.things, self.before, self._still()):
            self.seen[_name(t)] = _changes(t, b, a)
        return False
