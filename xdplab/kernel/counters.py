"""The kernel's own counters inside a network namespace: the SNMP MIB of its stack and an
interface's statistics, as Linux keeps them. Lab-level reading (a Host, an Interface; the lab
checked open and settled first) is xdplab.lab.counters, the `xdplab.counters` of the lessons.

    read_snmp(ns)["IcmpInEchos"]           # /proc/net/snmp and snmp6 of namespace `ns`
    read_link_stats(ns, ifindex)           # IFLA_STATS64: rx_packets, rx_dropped, ...
    read_mtu(ns, ifindex)
"""
from __future__ import annotations

from xdplab.kernel import netns


class Counts(dict):
    """Counter name → value. `after - before` keeps only the counters that changed."""

    def __sub__(self, other: dict[str, int]) -> Counts:
        return Counts({k: v - other.get(k, 0) for k, v in self.items() if v != other.get(k, 0)})


def read_snmp(ns: str) -> Counts:
    """The SNMP counters of namespace `ns`'s network stack (IPv4 and IPv6), named as nstat names
    them (IcmpInEchos, UdpInDatagrams, Icmp6InEchos...): a Counts."""
    with netns.enter(ns):
        # /proc/net is the namespace of the process's main thread; thread-self is this thread's
        v4 = open("/proc/thread-self/net/snmp").read().splitlines()
        v6 = open("/proc/thread-self/net/snmp6").read().splitlines()
    out = Counts()
    for names, values in zip(v4[::2], v4[1::2]):          # "Icmp: InMsgs ..." / "Icmp: 3 ..."
        group, *names = names.split()
        out.update({group[:-1] + n: int(v) for n, v in zip(names, values.split()[1:])})
    for line in v6:                                        # "Icmp6InEchos    3"
        name, value = line.split()
        out[name] = int(value)
    return out


def read_link_stats(ns: str, ifindex: int) -> Counts:
    """The statistics (IFLA_STATS64: rx_packets, rx_bytes, rx_dropped, tx_packets, ...) of
    interface `ifindex` in namespace `ns`: a Counts."""
    with netns.netlink(ns) as ipr:
        return Counts(ipr.get_links(ifindex)[0].get_attr("IFLA_STATS64"))


def read_mtu(ns: str, ifindex: int) -> int:
    """The MTU of interface `ifindex` in namespace `ns`, as netlink says."""
    with netns.netlink(ns) as ipr:
        return ipr.get_links(ifindex)[0].get("IFLA_MTU")
