"""What a device can do with XDP, as its driver tells the kernel — and what each XDP mode costs.

    from xdplab.features import xdp_features, compare, device, mode_costs
    xdp_features(router.iface(server))     # XdpFeatures: .xdp flags, .native, .redirect_target
    xdp_features(router, "lo")             # any device inside a lab host
    compare(router)                        # a table: every device of the router side by side
    device(router, "br0")                  # an Interface for a device made inside a host
    mode_costs(prog, client, router.iface(client), frame).plot()   # native vs generic, measured
    frame_sizes(lab, router, server.iface())   # the frames each mode is handed for one TCP stream

Since Linux 6.3 every driver declares its XDP features (include/uapi/linux/netdev.h), and the
kernel reports them through the "netdev" generic netlink family: command dev-get returns, per
device, the flags xdp-features (basic, redirect, ndo-xmit, xsk-zerocopy, hw-offload, rx-sg,
ndo-xmit-sg), xdp-rx-metadata-features (which metadata kfuncs work) and xsk-features.
`ynl --family netdev --dump dev-get` prints the same. The query itself (a generic netlink socket
opened inside the lab host, off the notebook's asyncio loop when one runs) is kernel-layer code:
xdplab.kernel.netdev; this module names the flags, shows them and measures the modes.
"""
from __future__ import annotations

import dataclasses
import os
import statistics
from typing import TYPE_CHECKING, Sequence

from xdplab.errors import LabError
from xdplab.text import escape
from xdplab.lab.settle import settled
from xdplab.kernel import netdev, netns
# the family's socket lives in the kernel layer (the probe uses it too); these names stay here
from xdplab.kernel.netdev import CMD_DEV_GET, AsyncNetdev, Netdev, netdev_msg  # noqa: F401

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from scapy.packet import Packet

    from xdplab.lab.topology import Host, Interface, Lab
    from xdplab.program.program import Program

FAMILY = netdev.FAMILY      # the family this module asks for (read at each query)

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


def _bits(value, names):
    return tuple(n for i, n in enumerate(names) if value >> i & 1)


@dataclasses.dataclass
class XdpFeatures:
    """The XDP features one device reports. `xdp`, `rx_metadata`, `xsk`: names of the flags set."""
    device: str
    ifindex: int
    xdp: tuple[str, ...] = ()
    rx_metadata: tuple[str, ...] = ()
    xsk: tuple[str, ...] = ()
    zc_max_segs: int | None = None
    available: bool = True           # False: this kernel cannot tell (no netdev family)
    note: str = ""

    def __contains__(self, flag: str) -> bool:
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
    when the kernel has no netdev family (FAMILY, as this module names it now)."""
    return netdev.read(ns, ifindex, family=FAMILY)


def _features(host, ifindex, name, msg):
    label = f"{host.name}:{name}"
    if msg is None:
        return _fallback(label, ifindex)
    def flags(attr, names):
        return _bits(msg.get_attr(f"NETDEV_A_DEV_{attr}") or 0, list(names))
    return XdpFeatures(label, ifindex, flags("XDP_FEATURES", XDP),
                       flags("XDP_RX_METADATA_FEATURES", RX_METADATA), flags("XSK_FEATURES", XSK),
                       msg.get_attr("NETDEV_A_DEV_XDP_ZC_MAX_SEGS"))


def device(host: Host, name: str) -> Interface:
    """An xdplab Interface for device `name` inside lab host `host` — a lab veth, `lo`, or one you
    made there (host.run("ip link add br0 up type bridge")) — for prog.attach, measure, ...
    Devices made inside a host go away with it when the lab closes."""
    host.lab.check_open()
    for i in host.interfaces:
        if i.name == name:
            return i
    from xdplab.lab.topology import Interface
    known = netdev.MADE.setdefault(host, {})
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


def xdp_features(target: Interface | Host, name: str | None = None) -> XdpFeatures:
    """The XDP features of `target`: an Interface, a Host (its first interface), or a Host and
    the name of any device inside it. Returns XdpFeatures (available False on kernels < 6.3)."""
    host, ifindex = _target(target, name)
    host.lab.check_open()
    (ifname, msg), = netns.off_loop(_read, host.ns, ifindex).values()
    return _features(host, ifindex, ifname, msg)


def compare(*targets: Interface | Host) -> FeatureTable:
    """One table of the XDP features of several devices: Interfaces, or Hosts (every device
    inside them)."""
    found = []
    for t in targets:
        if hasattr(t, "interfaces") and not hasattr(t, "ifindex"):
            t.lab.check_open()
            found += [_features(t, i, n, m) for i, (n, m) in
                      sorted(netns.off_loop(_read, t.ns, None).items())]
        else:
            found.append(xdp_features(t))
    return FeatureTable(found)


class FeatureTable(list):
    """XdpFeatures of several devices; shows as a table with one column per device. Index it by
    position or by device: table["router:lo"]."""

    def __getitem__(self, which: int | str) -> XdpFeatures:
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


def compare_table(rows: Sequence[XdpFeatures]) -> str:
    """The HTML table of the features of `rows`, one column per device (or why the kernel cannot
    tell)."""
    e = escape
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
    ns_per_packet: dict[str, list[float]]   # mode → [ns per packet of each round]
    sent: dict[str, int]           # mode → packets sent
    counted: dict[str, int]        # mode → packets the program counted
    received: dict[str, int]       # mode → packets the interface counted (rx_packets)
    lost: dict[str, int] | None = None   # mode → frames the sender's veth could not hand over (its
                                   # tx_queue_N_xdp_xmit_errors: the receiving ring was full)

    def median(self, mode: str) -> float:
        """The median ns per packet of `mode` over its rounds."""
        return statistics.median(self.ns_per_packet[mode])

    def __repr__(self):
        parts = [f"{m}: {self.median(m):.0f} ns/packet ({1e3 / self.median(m):.2f} Mpps), "
                 f"{self.counted[m]:,} of {self.sent[m]:,} packets counted"
                 + (f", {self.lost[m]:,} lost on the way (the receiving ring was full)"
                    if self.lost and self.lost[m] else "")
                 for m in self.ns_per_packet]
        return "<ModeCosts " + "; ".join(parts) + ">"

    def plot(self) -> Figure:
        """A matplotlib figure (xdplab.charts): ns per packet in each mode, every round as a dot."""
        from xdplab.ui import charts
        modes = list(self.ns_per_packet)
        fig, ax = charts.figure(7, 1.3 + 0.55 * len(modes))
        colours = {"native": "#0d47a1", "generic": "#f57c00"}
        right = max(max(v) for v in self.ns_per_packet.values())
        for y, m in enumerate(modes):
            rounds = self.ns_per_packet[m]
            ax.barh(y, self.median(m), color=colours.get(m, "#757575"), alpha=0.8)
            ax.plot(rounds, [y] * len(rounds), "k.", ms=6)
            ax.text(max(rounds) + right * 0.03, y, f"{self.median(m):.0f} ns", va="center")
        ax.set_yticks(range(len(modes)), [f"{m} mode" for m in modes])
        ax.set_xlabel("ns per packet: send, receive, run the program (bar: median, dots: rounds)")
        ax.set_xlim(0, right * 1.1)
        charts.values(ax.xaxis)
        ax.invert_yaxis()
        return charts.finish(fig)


def mode_costs(prog: Program, sender: Host, iface: Interface, packet: Packet | bytes,
               count: int = 200_000, rounds: int = 5, modes: Sequence[str] = ("native", "generic"),
               counter: str = "counters", method: str = "live_frames") -> ModeCosts:
    """Attach `prog` to `iface` in each of `modes` in turn, `rounds` times, and have `sender`
    send `count` copies of `packet` each time with the fast injector (method="af_packet" on a
    kernel without live frames, before Linux 5.18: xdplab.probe().live_frames); the time per packet
    includes sending, receiving and the program. Returns ModeCosts, with what the program counted
    (in map `counter`) and the interface received, per mode. Leaves `prog` attached in the last
    mode."""
    from xdplab.lab.counters import link_stats
    m = prog.maps[counter]
    out = iface.peer if iface.peer is not None and iface.peer.host is sender else None
    costs = ModeCosts({x: [] for x in modes}, dict.fromkeys(modes, 0), dict.fromkeys(modes, 0),
                      dict.fromkeys(modes, 0), dict.fromkeys(modes, 0))
    for _ in range(rounds):
        for mode in modes:
            prog.attach(iface, mode=mode)
            before, rx = _packets(m.snapshot()), link_stats(iface)["rx_packets"]
            report = sender.send(packet, count=count, iface=out, method=method)
            costs.ns_per_packet[mode].append(report.seconds * 1e9 / report.sent)
            costs.sent[mode] += report.sent
            costs.received[mode] += settled(lambda: link_stats(iface)["rx_packets"]) - rx
            costs.counted[mode] += settled(lambda: _packets(m.snapshot())) - before
            costs.lost[mode] += report.lost
    return costs


# --- what each mode is handed --------------------------------------------------------------------

def tcp_transfer(sender: Host, receiver: Host, nbytes: int = 2_000_000, port: int = 5001,
                 timeout: float = 20.0) -> int:
    """Send `nbytes` over one TCP connection from lab host `sender` to `receiver` (its address
    as seen from `sender`), with ordinary sockets opened inside each host's namespace; returns the
    number of bytes the receiver read. The sending stack cuts the stream into segments as it
    always does: with the sending interface's TSO/GSO on, it hands the veth super-packets of up
    to 64 KB."""
    import socket
    import threading
    with netns.enter(receiver.ns):
        server = socket.socket()
    with netns.enter(sender.ns):
        client = socket.socket()
    got, failed = [], []

    def read():
        try:
            conn, _ = server.accept()
            with conn:
                conn.settimeout(timeout)
                n = 0
                while chunk := conn.recv(1 << 16):
                    n += len(chunk)
                got.append(n)
        except OSError as e:
            failed.append(e)
    try:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", port))
        server.listen(1)
        server.settimeout(timeout)
        reader = threading.Thread(target=read, name="xdplab-tcp-read", daemon=True)
        reader.start()
        client.settimeout(timeout)
        client.connect((sender.address_of(receiver), port))
        client.sendall(b"x" * nbytes)
        client.close()
        reader.join(timeout)
    except OSError as e:
        raise LabError(f"the TCP transfer from {sender.name} to {receiver.name} failed: {e}",
                       "is a program on the way dropping TCP? Detach it and try again") from None
    finally:
        client.close()
        server.close()
    if failed or not got:
        raise LabError(f"{receiver.name} did not read the TCP stream from {sender.name}: "
                       f"{failed[0] if failed else 'timed out'}")
    return got[0]


@dataclasses.dataclass
class FrameSizes:
    """What lesson10_frame_sizes.c counted in each mode for the same TCP transfer."""
    limit: int          # the longest frame the link carries: MTU + 14
    nbytes: dict[str, int]     # mode → bytes the receiver read
    fitting: dict[str, int]    # mode → frames of at most `limit` bytes the program ran on
    longer: dict[str, int]     # mode → frames longer than `limit`
    longest: dict[str, int]    # mode → the longest frame, in bytes

    def __repr__(self):
        parts = [f"{m}: ran {self.fitting[m] + self.longer[m]:,} times for {self.nbytes[m]:,} bytes, "
                 f"{self.longer[m]:,} frames longer than {self.limit} bytes, the longest "
                 f"{self.longest[m]:,}" for m in self.nbytes]
        return "<FrameSizes " + "; ".join(parts) + ">"


def frame_sizes(lab: Lab, sender: Host, iface: Interface, modes: Sequence[str] = ("generic", "native"),
                nbytes: int = 2_000_000, port: int = 5001) -> FrameSizes:
    """Attach bpf/lesson10_frame_sizes.c to `iface` in each of `modes` in turn and send `nbytes`
    over TCP from `sender` to iface's host each time: how many frames the program ran on, how
    many were longer than the link's MTU allows, and the longest. Detaches it afterwards."""
    from xdplab.lab.counters import link_mtu
    limit = link_mtu(iface) + 14
    prog = lab.load("lesson10_frame_sizes.c", cflags=[f"-DFRAME_LIMIT={limit}"])
    out = FrameSizes(limit, {}, {}, {}, {})
    try:
        for i, mode in enumerate(modes):
            prog.maps["frames"].clear()
            prog.maps["longest"].clear()
            prog.attach(iface, mode=mode)
            out.nbytes[mode] = tcp_transfer(sender, iface.host, nbytes, port + i)
            frames = settled(prog.maps["frames"].snapshot)
            out.fitting[mode], out.longer[mode] = frames.get(0, 0), frames.get(1, 0)
            out.longest[mode] = max(prog.maps["longest"].snapshot(per_cpu=True).get(0, [0]))
            prog.detach(iface)
    finally:
        prog.close()
    return out
