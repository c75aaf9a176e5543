"""Forwarding between lab interfaces (lesson 05): devmap entries, test runs on an interface, FIB
answers — and `measure` (xdplab.lab.measure), counting what a burst of traffic did on every side.

    from xdplab.forwarding import devmap_set, port_set, test_run_on, fib_results, measure
    devmap_set(prog.maps["tx_port"], 1, router.iface(server))       # slot 1 → the router's eth1
    port_set(prog.maps["out_slot"], router.iface(client), 1)        # arriving on eth0: slot 1
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
owns the interface — written from this machine's own namespace, `tx_port[1] = 3` would make the
program send frames out of whatever device has index 3 *there*.

A plain devmap (BPF_DEVMAP) is an array: its key is a slot, 0 to max_entries - 1, not an ifindex,
which would size the map by the largest index of the host. The map keyed by ifindex is
BPF_MAP_TYPE_DEVMAP_HASH (Linux 5.4), which bcc cannot declare; so lesson05_redirect.c keeps a
small hash from the arriving port's ifindex to its slot (`port_set` fills it).
"""
from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from xdplab.kernel import bpf as kernel
from xdplab.kernel import netns
from xdplab.program import testrun
from xdplab.errors import LabError, check_count
from xdplab.lab.measure import Measured, measure  # noqa: F401 — also here, as the lessons import it

if TYPE_CHECKING:
    from scapy.packet import Packet

    from xdplab.lab.topology import Interface
    from xdplab.maps.map import Map
    from xdplab.program.program import Program

# enum of bpf_fib_lookup() return codes (include/uapi/linux/bpf.h), by value
FIB_RESULTS = ("SUCCESS", "BLACKHOLE", "UNREACHABLE", "PROHIBIT", "NOT_FWDED", "FWD_DISABLED",
               "UNSUPP_LWT", "NO_NEIGH", "FRAG_NEEDED", "NO_SRC_ADDR")


def _slot(m, key):
    """`key` as a slot number of devmap `m`, or a LabError."""
    if hasattr(key, "ifindex"):
        raise LabError(f"the key of devmap {m.name!r} is a slot number, not an interface ({key})",
                       "a plain devmap is an array: give it slot numbers 0, 1, ... and keep which "
                       "slot a port uses in a hash of its own, as lesson05_redirect.c does "
                       "(forwarding.port_set)")
    if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key < m.max_entries:
        raise LabError(f"slot {key!r} is not in devmap {m.name!r} (slots 0 to {m.max_entries - 1})",
                       "declare the devmap with more entries, or use smaller keys")
    return key


def devmap_set(m: Map, key: int, target: Interface) -> Map:
    """Slot `key` (a number) of devmap `m` (prog.maps["tx_port"]) := interface `target`. Written
    inside target's host, so the index means target there. Returns the map."""
    if m.kind != "devmap":
        raise LabError(f"map {m.name!r} is a {m.kind} map, not a devmap",
                       "declare it with BPF_DEVMAP(name, max_entries)")
    target = m.program.lab.own_interface(target, "the target")
    m[_slot(m, key)] = target          # the Map API writes it inside target's host
    return m


def devmap_delete(m: Map, key: int) -> Map:
    """Empty slot `key` (a number) of devmap `m`: bpf_redirect_map() on it then returns the
    action in the low bits of its flags argument (XDP_ABORTED for flags 0). Returns the map."""
    m.pop(_slot(m, key), None)                # an empty slot is fine too; a closed program raises
    return m


def port_set(m: Map, port: Interface, slot: int) -> Map:
    """Entry port.ifindex of hash `m` (prog.maps["out_slot"]) := `slot`: the devmap slot that frames
    arriving on lab interface `port` leave by. The key is the index `port` has in its own host,
    the one the program sees as ctx->ingress_ifindex there. Returns the map."""
    if m.kind not in ("hash", "lru_hash"):
        raise LabError(f"map {m.name!r} is a {m.kind} map, not a hash",
                       "declare it with BPF_HASH(name, u32, u32, entries)")
    port = m.program.lab.own_interface(port, "the port")
    check_count(slot, "slot", least=0, hint="give a slot number: 0, 1, ...")
    m[port.ifindex] = slot
    return m


def test_run_on(prog: Program, iface: Interface, packet: Packet | bytes,
                fn: str | None = None) -> testrun.TestRunResult:
    """Run `prog` once on `packet` as if it had arrived on lab interface `iface`: the context's
    ingress_ifindex is iface's, and the run happens in iface's host, so helpers that consult
    the network (bpf_fib_lookup) see that host's routes and neighbours. Returns a TestRunResult.
    The packet goes nowhere: a redirect verdict is only reported.

    Needs Linux 5.15+ (`xdplab.probe().test_run_context`): before, BPF_PROG_TEST_RUN takes no
    xdp_md, every test run looks as if the frame arrived on the loopback device, and this raises
    a LabError that says so."""
    iface = prog.lab.own_interface(iface)
    data = testrun.frame_bytes(packet)
    testrun.check_frame(data)
    ctx = bytes(kernel.XdpMd.for_packet(len(data), ingress_ifindex=iface.ifindex))
    try:
        with netns.enter(iface.host.ns):
            retval, out, duration = kernel.prog_test_run(prog.fd(fn), data, ctx_in=ctx)
    except OSError as e:
        if e.errno == errno.EINVAL and not kernel.test_run_context_supported():
            raise LabError(
                f"test_run_on() cannot run on this kernel (Linux {os.uname().release}): before "
                "Linux 5.15, BPF_PROG_TEST_RUN takes no xdp_md context, so a test run cannot say "
                f"that the packet arrived on {iface} — it always looks as if it came in on the "
                "loopback device",
                "send the packet for real instead, with the program attached: "
                "with measure(prog.maps['counters'], <the receiving interface>) as seen: "
                "<sender>.send(packet)") from None
        raise testrun.test_run_error(e) from None
    return testrun.TestRunResult(retval, data, out, duration, 1)


test_run_on.__test__ = False          # a helper, not a test, when a test module imports it


def fib_results(prog: Program, map_name: str = "fib_results") -> dict[str, int]:
    """{answer name: lookups} from a per-answer counter array indexed by the bpf_fib_lookup()
    return value (as lesson05_router.c keeps one); answers never given are left out."""
    snap = prog.maps[map_name].snapshot()
    return {(FIB_RESULTS[k] if k < len(FIB_RESULTS) else str(k)): v
            for k, v in sorted(snap.items()) if v}
