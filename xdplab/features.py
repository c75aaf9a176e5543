"""What a device can do with XDP, as its driver tells the kernel — and what each XDP mode costs.

    from xdplab.features import xdp_features, compare, device, mode_costs
    xdp_features(router.iface(server))     # XdpFeatures: .xdp flags, .native, .redirect_target
    xdp_features(router, "lo")             # any device inside a lab host
    compare(router)                        # a table: every device of the router side by side
    device(router, "br0")                  # an Interface for a device made inside a host
    mode_costs(prog, client, router.iface(client), frame).plot()   # native vs generic, measured

Since Linux 6.3 every driver declares its XDP features (include/uapi/linux/netdev.h), and the
kernel reports them through the "netdev" generic netlink family: command dev-get returns, per
device, the flags xdp-features (basic, redirect, ndo-xmit, xsk-zerocopy, hw-offload, rx-sg,
ndo-xmit-sg), xdp-rx-metadata-features (which metadata kfuncs work) and xsk-features.
`ynl --family netdev --dump dev-get` prints the same. pyroute2 has no class for this family, so
the query is built here on pyroute2's generic netlink socket. The family answers for the network
namespace of the socket, so the socket is opened inside the lab host (off the notebook's asyncio
loop when one runs: see xdplab.netns.netlink).
"""
import dataclasses
import errno
import html
import os
import statistics
import time
import weakref

from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST, genlmsg
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import AsyncGenericNetlinkSocket, GenericNetlinkSocket

from . import netns
from .errors import LabError

FAMILY = "netdev"
CMD_DEV_GET = 1

# bit i of each attribute is the i-th name (netdev.yaml), with what it means for a lesson
XDP = {
    "basic": "native XDP: XDP_PASS, XDP_DROP, XDP_ABORTED and XDP_TX in the driver",
    "redirect": "XDP_REDIRECT from its native program",
    "ndo-xmit": "takes frames redirected into it (ndo_xdp_xmit) right now",
    "xsk-zerocopy": "AF_XDP sockets in zero-copy mode",
    "hw-offload": "the NIC itself runs the program (offload mode)",
    "rx-sg": "native XDP on frames spread over several buffers (multi-buffer)",
    "ndo-xmit-sg": "takes redirected multi-buffer frames",
}
RX_METADATA = {
    "timestamp": "bpf_xdp_metadata_rx_timestamp()",
    "hash": "bpf_xdp_metadata_rx_hash()",
    "vlan-tag": "bpf_xdp_metadata_rx_vlan_tag()",
}
XSK = {
    "tx-timestamp": "AF_XDP transmit timestamps",
    "tx-checksum": "AF_XDP transmit checksum offload",
    "tx-launch-time-fifo": "AF_XDP transmit at a launch time",
}


class netdev_msg(genlmsg):
    prefix = "NETDEV_A_DEV_"
    nla_map = (("NETDEV_A_DEV_UNSPEC", "none"),
               ("NETDEV_A_DEV_IFINDEX", "uint32"),
               ("NETDEV_A_DEV_PAD", "none"),
               ("NETDEV_A_DEV_XDP_FEATURES", "uint64"),
               ("NETDEV_A_DEV_XDP_ZC_MAX_SEGS", "uint32"),
               ("NETDEV_A_DEV_XDP_RX_METADATA_FEATURES", "uint64"),
               ("NETDEV_A_DEV_XSK_FEATURES", "uint64"))


class AsyncNetdev(AsyncGenericNetlinkSocket):
    module_err_level = "debug"         # a kernel without the family is reported, not logged

    async def dev_get(self, ifindex=None):
        msg = netdev_msg()
        msg["cmd"] = CMD_DEV_GET
        msg["version"] = 1
        flags = NLM_F_REQUEST | NLM_F_DUMP
        if ifindex is not None:
            msg["attrs"].append(("NETDEV_A_DEV_IFINDEX", ifindex))
            flags = NLM_F_REQUEST
        return await self.nlm_request(msg, msg_type=self.prid, msg_flags=flags)


class Netdev(GenericNetlinkSocket):
    """The netdev generic netlink family:  with Netdev() as nd: nd.bind(); nd.dev_get(ifindex)
    (every device when ifindex is None). bind() raises NetlinkError ENOENT without the family."""
    async_class = AsyncNetdev

    def bind(self):
        return super().bind(FAMILY, netdev_msg)

    def dev_get(self, ifindex=None):
        return self._run_sync_cleanup(self.asyncore.dev_get, ifindex)


def _bits(value, names):
    return tuple(n for i, n in enumerate(names) if value >> i & 1)


@dataclasses.dataclass
class XdpFeatures:
    """The XDP features one device reports. `xdp`, `rx_metadata`, `xsk`: names of the flags set."""
    device: str
    ifindex: int
    xdp: tuple = ()
    rx_metadata: tuple = ()
    xsk: tuple = ()
    zc_max_segs: int = None
    available: bool = True           # False: this kernel cannot tell (no netdev family)
    note: str = ""

    def __contains__(self, flag):
        return flag in self.xdp

    native = property(lambda self: "basic" in self.xdp,
                      doc="the driver runs XDP programs itself (native mode)")
    redirect_target = property(lambda self: "ndo-xmit" in self.xdp,
                               doc="native XDP programs can redirect frames into it now")

    def __repr__(self):
        if not self.available:
            return f"<XDP features of {self.device}: unknown>\n  {self.note}"
        meta = f"; rx metadata: {', '.join(self.rx_metadata)}" if self.rx_metadata else ""
        return f"<XDP features of {self.device}: {', '.join(self.xdp) or 'none'}{meta}>"

    def _repr_html_(self):
        return compare_table([self])


def _fallback(device, ifindex):
    return XdpFeatures(device, ifindex, available=False, note=(
        f"this kernel ({os.uname().release}) has no '{FAMILY}' generic netlink family: drivers "
        "report their XDP features through it from Linux 6.3 on. Find out by trying instead: "
        "prog.attach(..., mode='native') fails with 'Operation not supported' on a driver without "
        "native XDP, and generic mode works everywhere; a redirect into a device that cannot take "
        "it shows up in xdplab.Tracepoints as redirect_err."))


def _read(ns, ifindex):
    """{ifindex: (name, message or None)} of one device (or all) in namespace `ns`; messages None
    when the kernel has no netdev family."""
    from pyroute2 import IPRoute
    with netns.enter(ns), IPRoute() as ipr, Netdev() as nd:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        try:
            nd.bind()
        except NetlinkError as e:
            if e.code != errno.ENOENT:
                raise
            return {i: (n, None) for i, n in names.items() if ifindex in (None, i)}
        try:
            msgs = nd.dev_get(ifindex)
        except NetlinkError as e:
            if e.code != errno.ENODEV:
                raise
            raise LabError(f"there is no device with index {ifindex} in {ns}",
                           "it was removed, or the index belongs to another namespace") from None
    return {m.get_attr("NETDEV_A_DEV_IFINDEX"): (names.get(m.get_attr("NETDEV_A_DEV_IFINDEX")), m)
            for m in msgs}


def _features(host, ifindex, name, msg):
    label = f"{host.name}:{name}"
    if msg is None:
        return _fallback(label, ifindex)
    def flags(attr, names):
        return _bits(msg.get_attr(f"NETDEV_A_DEV_{attr}") or 0, list(names))
    return XdpFeatures(label, ifindex, flags("XDP_FEATURES", XDP),
                       flags("XDP_RX_METADATA_FEATURES", RX_METADATA), flags("XSK_FEATURES", XSK),
                       msg.get_attr("NETDEV_A_DEV_XDP_ZC_MAX_SEGS"))


_devices = weakref.WeakKeyDictionary()       # host → {name: Interface} made by device()


def device(host, name):
    """An xdplab Interface for device `name` inside lab host `host` — a lab veth, `lo`, or one you
    made there (host.run("ip link add br0 up type bridge")) — for prog.attach, measure, ...
    Devices made inside a host go away with it when the lab closes."""
    host.lab._check_open()
    for i in host.interfaces:
        if i.name == name:
            return i
    from .topology import Interface
    known = _devices.setdefault(host, {})
    with netns.netlink(host.ns) as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            names = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
            raise LabError(f"host {host.name!r} has no device {name!r} "
                           f"(it has: {', '.join(names)})",
                           f"make one inside it first, e.g. {host.name}.run('ip link add {name} up "
                           "type bridge')")
        mac = ipr.get_links(found[0])[0].get_attr("IFLA_ADDRESS")
    if name not in known or known[name].ifindex != found[0]:
        # one object per device, as prog.detach(device) finds an attachment by identity
        known[name] = Interface(name, host, None, None, mac, ifindex=found[0])
    return known[name]


def _target(target, name=None):
    """(host, ifindex or None for all) from an Interface, a Host, or a Host and a device name."""
    if hasattr(target, "ifindex"):
        return target.host, target.ifindex
    if hasattr(target, "interfaces"):
        if name is None:
            return target, target.iface().ifindex
        return target, device(target, name).ifindex
    raise LabError(f"cannot ask {target!r} for XDP features",
                   "give a lab interface (router.iface(server)), a host, or a host and a device "
                   "name: xdp_features(router, 'lo')")


def xdp_features(target, name=None):
    """The XDP features of `target`: an Interface, a Host (its first interface), or a Host and
    the name of any device inside it. Returns XdpFeatures (available False on kernels < 6.3)."""
    host, ifindex = _target(target, name)
    host.lab._check_open()
    (ifname, msg), = netns.off_loop(_read, host.ns, ifindex).values()
    return _features(host, ifindex, ifname, msg)


def compare(*targets):
    """One table of the XDP features of several devices: Interfaces, or Hosts (every device
    inside them)."""
    found = []
    for t in targets:
        if hasattr(t, "interfaces") and not hasattr(t, "ifindex"):
            t.lab._check_open()
            found += [_features(t, i, n, m) for i, (n, m) in
                      sorted(netns.off_loop(_read, t.ns, None).items())]
        else:
            found.append(xdp_features(t))
    return FeatureTable(found)


class FeatureTable(list):
    """XdpFeatures of several devices; shows as a table with one column per device. Index it by
    position or by device: table["router:lo"]."""

    def __getitem__(self, which):
        if not isinstance(which, str):
            return super().__getitem__(which)
        for f in self:
            if f.device == which:
                return f
        raise LabError(f"no device {which!r} in this table",
                       f"it has: {', '.join(f.device for f in self)}")

    available = property(lambda self: all(f.available for f in self),
                         doc="whether the kernel reported the features (Linux 6.3+)")

    def __repr__(self):
        return "\n".join(map(repr, self))

    def _repr_html_(self):
        return compare_table(self)


def compare_table(rows):
    e = html.escape
    td = 'style="text-align:center;padding:2px 10px"'
    if not all(r.available for r in rows):
        return f"<pre>{e(rows[0].note)}</pre>"
    head = "".join(f"<th {td}>{e(r.device)}</th>" for r in rows)
    body = []
    for title, table, attr in (("xdp-features", XDP, "xdp"),
                               ("xdp-rx-metadata-features", RX_METADATA, "rx_metadata"),
                               ("xsk-features", XSK, "xsk")):
        body.append(f'<tr><td colspan="{len(rows) + 2}" style="text-align:left">'
                    f'<b>{title}</b></td></tr>')
        for flag, meaning in table.items():
            cells = "".join(f"<td {td}>{'✔' if flag in getattr(r, attr) else '·'}</td>"
                            for r in rows)
            body.append(f'<tr><td style="text-align:left;white-space:nowrap"><code>{flag}</code>'
                        f'</td>{cells}<td style="text-align:left;'
                        f'color:var(--jp-ui-font-color2,#616161)">{e(meaning)}</td></tr>')
    return (f'<table><tr><th style="text-align:left">flag</th>{head}<th></th></tr>'
            f'{"".join(body)}</table>')


# --- what each mode costs ------------------------------------------------------------------------

def _packets(snapshot):
    """Packets in a map snapshot: the sum of its values (or of their .packets fields)."""
    return sum(getattr(v, "packets", v) for v in snapshot.values())


@dataclasses.dataclass
class ModeCosts:
    """Per-packet cost of receiving and dropping the same frames in each XDP mode."""
    ns_per_packet: dict            # mode → [ns per packet of each round]
    sent: dict                     # mode → packets sent
    counted: dict                  # mode → packets the program counted
    received: dict                 # mode → packets the interface counted (rx_packets)

    def median(self, mode):
        return statistics.median(self.ns_per_packet[mode])

    def __repr__(self):
        parts = [f"{m}: {self.median(m):.0f} ns/packet ({1e3 / self.median(m):.2f} Mpps), "
                 f"{self.counted[m]:,} of {self.sent[m]:,} packets counted"
                 for m in self.ns_per_packet]
        return "<ModeCosts " + "; ".join(parts) + ">"

    def plot(self):
        """A matplotlib figure: ns per packet in each mode, every round as a dot."""
        import matplotlib.pyplot as plt
        modes = list(self.ns_per_packet)
        fig, ax = plt.subplots(figsize=(7, 1.3 + 0.55 * len(modes)))
        colours = {"native": "#0d47a1", "generic": "#f57c00"}
        right = max(max(v) for v in self.ns_per_packet.values())
        for y, m in enumerate(modes):
            rounds = self.ns_per_packet[m]
            ax.barh(y, self.median(m), color=colours.get(m, "#757575"), alpha=0.8)
            ax.plot(rounds, [y] * len(rounds), "k.", ms=6)
            ax.text(max(rounds) + right * 0.03, y, f"{self.median(m):.0f} ns", va="center")
        ax.set_yticks(range(len(modes)), [f"{m} mode" for m in modes])
        ax.set_xlabel("ns per packet: send, receive, run the program (bar: median, dots: rounds)")
        ax.set_xlim(0, right * 1.25)
        ax.invert_yaxis()
        fig.tight_layout()
        plt.close(fig)            # shown once, as the cell's result
        return fig


def mode_costs(prog, sender, iface, packet, count=200_000, rounds=5, modes=("native", "generic"),
               counter="counters", method="live_frames"):
    """Attach `prog` to `iface` in each of `modes` in turn, `rounds` times, and have `sender`
    send `count` copies of `packet` each time with the fast injector (method="af_packet" on a
    kernel without live frames, before Linux 5.18: xdplab.probe().live_frames); the time per packet
    includes sending, receiving and the program. Returns ModeCosts, with what the program counted
    (in map `counter`) and the interface received, per mode. Leaves `prog` attached in the last
    mode."""
    from .counters import link_stats
    m = prog.maps[counter]
    out = iface.peer if iface.peer is not None and iface.peer.host is sender else None
    costs = ModeCosts({x: [] for x in modes}, dict.fromkeys(modes, 0), dict.fromkeys(modes, 0),
                      dict.fromkeys(modes, 0))
    for _ in range(rounds):
        for mode in modes:
            prog.attach(iface, mode=mode)
            before, rx = _packets(m.snapshot()), link_stats(iface)["rx_packets"]
            report = sender.send(packet, count=count, iface=out, method=method)
            costs.ns_per_packet[mode].append(report.seconds * 1e9 / report.sent)
            costs.sent[mode] += report.sent
            costs.received[mode] += _settled(lambda: link_stats(iface)["rx_packets"]) - rx
            costs.counted[mode] += _packets(m.snapshot()) - before
    return costs


def _settled(read, quiet=0.02, limit=1.0):
    """read(), once it has not changed for `quiet` seconds (frames still queued get counted)."""
    value, since, deadline = read(), time.monotonic(), time.monotonic() + limit
    while time.monotonic() < deadline and time.monotonic() - since < quiet:
        time.sleep(0.005)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
    return value
