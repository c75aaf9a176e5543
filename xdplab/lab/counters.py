"""The kernel's own counters inside a lab host, to check what an XDP program did from the outside.

    before = snmp(lab.server)
    lab.client.ping(lab.server, count=5)
    (snmp(lab.server) - before)["IcmpInEchos"]      # 5: the server's stack answered 5 pings
    link_stats(lab.client.iface())["rx_dropped"]

snmp() reads the SNMP MIB counters of a host's network namespace (/proc/net/snmp and snmp6, the
numbers `nstat` prints, under the same names: IcmpInEchos, UdpInDatagrams, UdpInCsumErrors,
Icmp6InEchos...). link_stats() reads an interface's statistics (`ip -s link`: rx_packets,
rx_dropped, tx_packets, ...). Both return a Counts dict; subtracting two gives what changed.
Both check that the lab is open and let it settle first (lab.settle()). The reading itself is
xdplab.kernel.counters'.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from xdplab.errors import LabError
from xdplab.kernel.counters import Counts, read_link_stats, read_mtu, read_snmp

if TYPE_CHECKING:
    from xdplab.lab.topology import Host, Interface

__all__ = ["Counts", "snmp", "link_stats", "link_mtu", "driver_stats", "xdp_xmit_errors"]


def snmp(host: Host) -> Counts:
    """The SNMP counters of `host`'s network stack (IPv4 and IPv6), named as nstat names them."""
    host.lab.check_open()
    host.lab.settle()
    return read_snmp(host.ns)


def link_stats(iface: Interface) -> Counts:
    """The statistics of lab interface `iface` (an Interface, e.g. lab.client.iface()):
    rx_packets, rx_bytes, rx_dropped, tx_packets, ... as the kernel keeps them (IFLA_STATS64)."""
    if not hasattr(iface, "ifindex"):
        raise LabError(f"link_stats needs a lab interface, not {iface!r}",
                       "e.g. link_stats(lab.client.iface())")
    iface.host.lab.check_open()
    iface.host.lab.settle()
    return read_link_stats(iface.host.ns, iface.ifindex)


def link_mtu(iface: Interface) -> int:
    """The MTU of lab interface `iface`, as its host's netlink says."""
    return read_mtu(iface.host.ns, iface.ifindex)


def driver_stats(iface: Interface) -> dict[str, int]:
    """The driver's own counters of lab interface `iface`, as `ethtool -S` prints them: {name:
    value} (a veth: peer_ifindex, rx_queue_0_xdp_packets, tx_queue_0_xdp_xmit_errors, ...)."""
    res = iface.host.run(["ethtool", "-S", iface.name], check=False)
    out = {}
    for line in res.stdout.splitlines()[1:]:          # the first line is "NIC statistics:"
        if ":" in line:
            k, v = line.rsplit(":", 1)
            try:
                out[k.strip()] = int(v)
            except ValueError:
                pass
    return out


def xdp_xmit_errors(iface: Interface) -> int:
    """Frames veth `iface` failed to hand to its peer's receive ring since it was made (ethtool -S
    tx_queue_N_xdp_xmit_errors, summed: XDP_TX, redirects and live frames sent out of it that
    found the ring full, e.g. while the receiving CPU was busy)."""
    return sum(v for k, v in driver_stats(iface).items()
               if k.startswith("tx_queue_") and k.endswith("_xdp_xmit_errors"))
