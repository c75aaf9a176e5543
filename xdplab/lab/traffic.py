"""Sending packets from a lab host: the implementation of Host.send.

    client.send(IP(dst=server.ip)/UDP(dport=53))                  # one packet, AF_PACKET
    client.send(IP(dst=server.ip)/UDP(dport=53), count=1_000_000)  # fast injector

Every packet is completed for the link it leaves by: an Ethernet header if it has none, the
interface's MAC as source and its peer's MAC as destination when unset (on a veth the peer is the
next hop, also for addresses further away), the interface's address as IP/IPv6 source when unset.
Nothing is ever looked up in this machine's own namespace, so no packet carries its addresses.

Two ways out:
* AF_PACKET: a raw socket bound to the interface inside the host sends the built bytes, through
  the interface's qdisc (so rate-shaped links are honoured). Python sends a few 100k packets/s.
* XDP live frames (count >= FAST_COUNT): the kernel's BPF_PROG_TEST_RUN runs a two-instruction
  `return XDP_TX;` program `count` times on the frame, as if it had arrived on the interface, and
  transmits every copy: millions of packets/s, bypassing qdiscs. Copies the receiving veth has no
  room for (its ring is full) or refuses (longer than its MTU) are dropped there: report.lost.
  A veth delivers frames sent this way only when its peer has a native-mode XDP program or GRO on
  (the peer needs NAPI); when it has neither, GRO is switched on and the report says so.
"""
from __future__ import annotations

import dataclasses
import errno
import socket
import threading
import time
from typing import TYPE_CHECKING, Sequence

from xdplab.kernel import bpf as kernel
from xdplab.kernel import netns
from xdplab.program import testrun
from xdplab.lab.counters import link_mtu, xdp_xmit_errors
from xdplab.errors import LabError, check_count, check_positive

if TYPE_CHECKING:
    from scapy.packet import Packet

    from xdplab.lab.topology import Host, Interface

FAST_COUNT = 1000          # copies of a packet from which the live-frame injector is used
LIVE_CHUNK = 1 << 18       # frames per BPF_PROG_TEST_RUN call (keeps Ctrl-C responsive)
LIVE_MAX_FRAME = 3408      # a live frame shares one 4 KiB page with 256 bytes of XDP headroom,
                           # the kernel's 112-byte page header and 320 bytes of skb_shared_info
ENOBUFS_PATIENCE = 10.0    # seconds a full qdisc may refuse frames before we give up
METHODS = ("auto", "af_packet", "live_frames")


@dataclasses.dataclass
class SendReport:
    sent: int
    method: str               # "af_packet" or "live_frames"
    rate_pps: float
    seconds: float
    iface: str = ""           # "host:ifname" the frames left through (comma-separated if several)
    notes: list[str] = dataclasses.field(default_factory=list)
    lost: int = 0             # live frames only: of those sent, how many the receiving veth
                              # dropped (its ring was full, or a frame longer than its MTU: the
                              # sender's xdp_xmit_errors), so never arrived

    @property
    def rate(self) -> float:
        return self.rate_pps

    def __repr__(self):
        how = {"af_packet": "AF_PACKET socket", "live_frames": "XDP live frames"}.get(self.method, self.method)
        rate = (f"{self.rate_pps / 1e6:.2f} Mpps" if self.rate_pps >= 1e6 else
                f"{self.rate_pps / 1e3:.1f} kpps" if self.rate_pps >= 1e3 else f"{self.rate_pps:.0f} pps")
        notes = "".join(f"\n  note: {n}" for n in self.notes)
        lost = f" ({self.lost:,} dropped by the receiver)" if self.lost else ""
        return (f"<SendReport {self.sent} packet{'s' if self.sent != 1 else ''}{lost} from {self.iface} "
                f"by {how} in {self.seconds:.3f} s ({rate})>{notes}")


def send(host: Host, packets: Packet | bytes | list[Packet | bytes] | tuple[Packet | bytes, ...],
         count: int = 1, iface: Interface | str | Host | None = None,
         method: str = "auto") -> SendReport:
    """Send `packets` (a scapy packet, raw frame bytes, or a list of them) `count` times each from
    lab host `host`, out of `iface` (an Interface of `host`, its name, or the host at its other
    end) or the interface the host's routes choose.
    `method`: "auto", "af_packet" or "live_frames". Returns a SendReport."""
    host.lab.check_open()
    check_count(count, "count", example=100)
    if method not in METHODS:
        raise LabError(f"unknown send method {method!r}", f"use one of {', '.join(METHODS)}")
    items = list(packets) if isinstance(packets, (list, tuple)) else [packets]
    if not items:
        raise LabError("nothing to send: the list of packets is empty")
    from scapy.packet import Packet
    for item in items:
        if not isinstance(item, (Packet, bytes, bytearray)):
            raise LabError(f"cannot send a {type(item).__name__}",
                           "give scapy packets, e.g. IP(dst=server.ip)/UDP(dport=53), or frame bytes")
    if not host.interfaces:
        raise LabError(f"host {host.name!r} has no link to send on",
                       f"connect it first: lab.link({host.name}, other_host)")
    frames, shaped = prepare_frames(host, items, iface)
    notes = []

    live = method == "live_frames" or (method == "auto" and count >= FAST_COUNT)
    if live:
        reason = _live_obstacle(host, frames, shaped if method == "auto" else {})
        if reason and method == "live_frames":
            raise LabError(f"the fast injector cannot send this: {reason}",
                           "leave method='auto' to send with AF_PACKET")
        if reason:
            notes.append(f"used AF_PACKET, not the fast injector: {reason}")
            live = False
        elif shaped:
            notes += [f"the frames skipped the {kind} qdisc of {ifc}: XDP transmits past qdiscs"
                      for ifc, kind in shaped.items()]
    if live:
        notes += [n for ifc in dict.fromkeys(i for i, _ in frames) if (n := ensure_napi(ifc))]
        if len(frames) > 1:
            notes.append("the fast injector sends the copies of each packet back to back")
    if live:
        outs = list(dict.fromkeys(ifc for ifc, _ in frames))
        errors = sum(map(xdp_xmit_errors, outs))
        sent, seconds = _send_live(host, frames, count)
        lost = sum(map(xdp_xmit_errors, outs)) - errors
        if lost:
            notes.append(_lost_note(frames, lost, sent))
    else:
        sent, seconds = send_af_packet(host, frames, count)
        lost = 0
    names = ", ".join(dict.fromkeys(str(i) for i, _ in frames))
    return SendReport(sent, "live_frames" if live else "af_packet",
                      sent / seconds if seconds > 0 else 0.0, seconds, names, notes, lost)


# --- building frames -------------------------------------------------------------------------------

def prepare_frames(host: Host, items: Sequence[Packet | bytes], iface: Interface | str | Host | None
                   ) -> tuple[list[tuple[Interface, bytes]], dict[Interface, str]]:
    """[(Interface, frame bytes)], and {Interface: qdisc kind} of those with a root qdisc."""
    chosen = _named_iface(host, iface) if iface is not None else None
    frames, mtus, shaped = [], {}, {}
    with netns.netlink(host.ns) as ipr:
        for item in items:
            ifc = chosen or _route(host, ipr, item)
            data = item if isinstance(item, (bytes, bytearray)) else _complete(item, ifc)
            data = bytes(data)
            if ifc not in mtus:
                mtus[ifc] = ipr.get_links(ifc.ifindex)[0].get("IFLA_MTU")
                kinds = [q.get("TCA_KIND") for q in ipr.get_qdiscs(index=ifc.ifindex)
                         if q["parent"] == 0xFFFFFFFF]
                if kinds and kinds[0] not in ("noqueue", None):
                    shaped[ifc] = kinds[0]
            _check_size(data, ifc, mtus[ifc])
            frames.append((ifc, data))
    return frames, shaped


def _named_iface(host, iface):
    """`iface`: an Interface of `host`, its name ("eth1"), or the host at its other end."""
    if hasattr(iface, "peer"):
        if iface.host is not host:
            raise LabError(f"interface {iface} belongs to host {iface.host.name!r}, not {host.name!r}")
        return iface
    return host.iface(iface)


def _destination(item):
    """(address, family) the packet is for, or None when it has no IP/IPv6/ARP target."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP
    pkt = testrun.parse(bytes(item)) if isinstance(item, (bytes, bytearray)) else item
    for layer_type, field, family in ((IP, "dst", 2), (IPv6, "dst", 10), (ARP, "pdst", 2)):
        layer = pkt.getlayer(layer_type)
        if layer is not None:
            if layer.fields.get(field) is None:
                raise LabError(f"the packet's {layer_type.__name__} layer has no destination address",
                               f"set it, e.g. {layer_type.__name__}({field}=server.ip"
                               f"{'6' if layer_type is IPv6 else ''})")
            return str(layer.getfieldval(field)), family
    return None


def _route(host, ipr, item):
    """The host's interface towards the packet's destination, as the kernel routes it."""
    from pyroute2.netlink.exceptions import NetlinkError
    dest = _destination(item)
    if dest is None:
        if len(host.interfaces) == 1:
            return host.interfaces[0]
        raise LabError(f"the packet has no IP destination and host {host.name!r} has several "
                       "interfaces", "say which one: send(..., iface='eth1')")
    dst, family = dest
    try:
        oif = ipr.route("get", dst=dst, family=family)[0].get("RTA_OIF")
    except NetlinkError as e:
        raise LabError(f"host {host.name!r} has no route to {dst} ({e.args[-1]})",
                       "send to an address inside the lab (e.g. server.ip), or link the hosts "
                       "with lab.link(...)") from None
    for i in host.interfaces:
        if i.ifindex == oif:
            return i
    raise LabError(f"{dst} is an address of {host.name!r} itself, so the packet would not leave it",
                   "send to another host's address, e.g. server.ip")


def _complete(pkt, ifc):
    """A copy of `pkt` ready for the wire on `ifc`: Ethernet header and unset addresses filled."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP, Ether
    pkt = pkt.copy()
    if not isinstance(pkt, Ether):
        pkt = Ether() / pkt
    fill = {Ether: (("src", ifc.mac), ("dst", ifc.peer.mac)),
            IP: (("src", ifc.ip),), IPv6: (("src", ifc.ip6),),
            ARP: (("hwsrc", ifc.mac), ("psrc", ifc.ip))}
    layer = pkt
    while layer:
        for field, value in fill.get(type(layer), ()):
            if layer.fields.get(field) is None:
                if value is None:
                    raise LabError(f"{ifc} has no address to use as {type(layer).__name__} {field}",
                                   f"set {field}= in the packet yourself")
                setattr(layer, field, str(value).split("/")[0])
        layer = layer.payload
    return bytes(pkt)


def _check_size(data, ifc, mtu):
    testrun.check_frame(data, limit=1 << 20)     # empty / shorter than Ethernet
    limit = mtu + kernel.ETH_HLEN + (4 if data[12:14] == b"\x81\x00" else 0)
    if len(data) > limit:
        raise LabError(f"the frame has {len(data)} bytes, more than fit through {ifc}: MTU {mtu} "
                       f"+ {limit - mtu}-byte header = {limit}",
                       "send a smaller payload (or raise the MTU on both ends of the link: "
                       f"host.run('ip link set {ifc.name} mtu 9000'))")


# --- the fast injector -------------------------------------------------------------------------------

_tx_fd = None          # the loaded `return XDP_TX;` program, kept for the life of the process
_live_supported = None


def live_frames_available(ns: str) -> bool:
    """Whether the kernel has live frames (probed once, inside lab namespace `ns`)."""
    global _live_supported
    if _live_supported is None:
        with netns.enter(ns):
            _live_supported = kernel.live_frames_supported()
    return _live_supported


def _tx_program():
    global _tx_fd
    if _tx_fd is None:
        _tx_fd = kernel.load_xdp_bytecode(kernel.xdp_return(kernel.XDP_ACTIONS.index("XDP_TX")),
                                          "xdplab_inject")
    return _tx_fd


def _live_obstacle(host, frames, shaped):
    if shaped:
        ifc, kind = next(iter(shaped.items()))
        return (f"{ifc} has a {kind} qdisc (e.g. a rate limit) and frames sent by XDP skip qdiscs")
    if any(ifc.peer is None for ifc, _ in frames):
        return "the interface has no lab peer"
    if any(len(data) > LIVE_MAX_FRAME for _, data in frames):
        return f"frames over {LIVE_MAX_FRAME} bytes do not fit one live-frame page"
    if not live_frames_available(host.ns):
        return "this kernel has no BPF_F_TEST_XDP_LIVE_FRAMES (Linux 5.18+)"
    if any(_forwarded(ifc, data) for ifc, data in frames):
        return ("the packets must be forwarded by a lab router, and a router's stack passes on "
                "only the first batch (64 frames) of each injector run (seen on Linux 6.18)")
    return None


def _forwarded(ifc, data):
    """True when the frame's IP destination lies beyond the link `ifc` is on (a router forwards
    it). A router's IP stack receives every injected frame (its interface counts them all) but
    forwards only the first live-frame batch of each run; frames to the peer itself all arrive."""
    import ipaddress
    pkt = testrun.parse(data)
    for layer, net in (("IP", ifc.link.subnet), ("IPv6", ifc.link.subnet6)):
        if pkt.haslayer(layer):
            return ipaddress.ip_address(pkt[layer].dst) not in net
    return False


def ensure_napi(ifc: Interface) -> str | None:
    """Make sure frames XDP sends out of veth `ifc` are received by its peer: the peer needs a
    native-mode XDP program or GRO (GRO is enough since Linux 5.13: xdplab.probe() finds out),
    else it drops them silently. Returns a note of what was done, else None."""
    peer = ifc.peer
    if peer.xdp().mode == "native":
        return None
    from xdplab.machine.probe import probe
    if probe().gro_takes_redirects.value:
        if peer.gro():
            return None
        peer.gro(True)
        return (f"switched GRO on at {peer}: a veth drops frames that XDP sends into it unless the "
                "receiving end has a native XDP program or GRO")
    from xdplab.program.program import set_xdp
    set_xdp(peer.host.ns, peer.name, peer.host.lab.pass_program(), "native")
    return (f"attached a native XDP_PASS program to {peer}: a veth drops frames that XDP sends "
            "into it unless the receiving end has a native XDP program (GRO is not enough on "
            "this kernel, before Linux 5.13)")


def _send_live(host, frames, count):
    """(frames sent, seconds)."""
    fd = _tx_program()
    sent = 0
    start = time.perf_counter()
    with netns.enter(host.ns):       # ingress_ifindex is looked up in the caller's namespace
        for ifc, data in frames:
            ctx = bytes(kernel.XdpMd.for_packet(len(data), ingress_ifindex=ifc.ifindex))
            left = count
            while left:
                n = min(left, LIVE_CHUNK)
                try:
                    kernel.prog_test_run(fd, data, repeat=n, ctx_in=ctx,
                                         flags=kernel.BPF_F_TEST_XDP_LIVE_FRAMES)
                except OSError as e:
                    if e.errno == errno.EINTR:       # Ctrl-C: stop; KeyboardInterrupt follows
                        return sent, time.perf_counter() - start
                    raise LabError(f"the fast injector failed on {ifc} after {sent} frames: "
                                   f"{e.strerror} (errno {e.errno})",
                                   "send with method='af_packet'") from None
                sent += n
                left -= n
    return sent, time.perf_counter() - start


def _lost_note(frames, lost, sent):
    """Why the receiving veth refused `lost` of `sent` live frames: a frame longer than its MTU
    allows, else its receive ring was full."""
    too_long = []
    for ifc, data in frames:
        mtu = link_mtu(ifc.peer)
        if len(data) > mtu + 18:              # the veth takes MTU + Ethernet header + a VLAN tag
            too_long.append(f"{len(data)}-byte frames are longer than {ifc.peer}'s MTU of {mtu} "
                            f"allows ({mtu + 18} with Ethernet header and VLAN tag)")
    why = ("; ".join(dict.fromkeys(too_long)) if too_long else
           f"the receive ring of {', '.join(dict.fromkeys(str(i.peer) for i, _ in frames))} was "
           "full: the receiving CPU did not keep up")
    return (f"{lost:,} of the {sent:,} frames were dropped by the receiving veth, never seen by "
            f"its XDP program: {why} (report.lost counts them)")


# --- AF_PACKET --------------------------------------------------------------------------------------

def send_af_packet(host: Host, frames: Sequence[tuple[Interface, bytes]],
                   count: int) -> tuple[int, float]:
    """Send every frame `count` times, in order: (frames sent, seconds)."""
    socks = {}
    try:
        with netns.enter(host.ns):
            for ifc, _ in frames:
                if ifc not in socks:
                    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)   # 0: send only
                    socks[ifc] = s
                    s.bind((ifc.name, 0))
        sent = 0
        start = time.perf_counter()
        plan = [(socks[ifc], ifc, data) for ifc, data in frames]
        for _ in range(count):
            for s, ifc, data in plan:
                try:
                    s.send(data)
                    sent += 1
                except OSError:
                    sent += _send_one(s, ifc, data)
        return sent, time.perf_counter() - start
    finally:
        # close() of a packet socket waits for an RCU grace period (~10 ms): not worth waiting for
        for s in socks.values():
            threading.Thread(target=s.close, daemon=True).start()


def _send_one(s, ifc, data):
    """Send one frame, waiting while the qdisc is full (ENOBUFS)."""
    deadline = time.monotonic() + ENOBUFS_PATIENCE
    while True:
        try:
            s.send(data)
            return 1
        except OSError as e:
            if e.errno == errno.ENOBUFS and time.monotonic() < deadline:
                time.sleep(0.0005)
                continue
            if e.errno == errno.ENOBUFS:
                raise LabError(f"{ifc} refused frames for {ENOBUFS_PATIENCE:.0f} s: its queue "
                               "stays full", "send fewer packets, or raise the link's rate") from None
            if e.errno == errno.ENETDOWN:
                raise LabError(f"{ifc} is down", f"bring it up: host.run('ip link set "
                               f"{ifc.name} up')") from None
            raise LabError(f"sending on {ifc} failed: {e.strerror}") from None


# --- traffic that keeps flowing ----------------------------------------------------------------

class Background:
    """A sender running in a daemon thread: `.running`, `.stop()`, `.wait()`; it stops by itself
    when its host's lab closes. Subclasses implement `_run()` and call `_start(host, kind)`."""

    def _start(self, host, kind):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"xdplab-{kind}-{host.name}",
                                        daemon=True)
        host.lab.on_close(self.stop)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> Background:
        """Stop sending and wait for the sender to finish what it is sending."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)
        return self

    def wait(self) -> Background:
        """Block until the sender has run its `seconds`."""
        self._thread.join()
        return self


class Stream(Background):
    """Packets sent in the background for `seconds` (or until stop()), so a lesson can watch
    counters move while it runs other cells. `rate` (packets per second) paces the sending in
    ticks of 1/10 s; without it each tick sends a burst of `burst` copies as fast as possible.
    Stops by itself when the lab closes. `.sent` counts what has been sent so far, `.lost` those
    of them the receiving veth dropped (see SendReport.lost)."""

    TICK = 0.1

    def __init__(self, host: Host,
                 packets: Packet | bytes | list[Packet | bytes] | tuple[Packet | bytes, ...],
                 seconds: float | None = 10.0, rate: float | None = None, burst: int = 50_000,
                 method: str = "auto") -> None:
        if rate is not None:
            check_positive(rate, "rate", unit="packets per second", example=1000)
        self.host, self.packets, self.seconds = host, packets, seconds
        self.rate, self.burst, self.method = rate, burst, method
        self.sent: int = 0
        self.lost: int = 0
        self.error: LabError | None = None
        self.reports: list[SendReport] = []
        self._stop = threading.Event()
        first = send(host, packets, count=1, method="af_packet")   # fail here, not in the thread
        self.sent = first.sent                                      # one of each packet given
        self._thread = threading.Thread(target=self._run, name=f"xdplab-stream-{host.name}",
                                        daemon=True)
        host.lab.on_close(self.stop)
        self._thread.start()

    def _run(self):
        start = time.monotonic()
        while not self._stop.is_set() and (self.seconds is None or
                                           time.monotonic() - start < self.seconds):
            tick = time.monotonic()
            count = max(1, int(self.rate * self.TICK)) if self.rate else self.burst
            try:
                report = send(self.host, self.packets, count=count, method=self.method)
            except LabError as e:
                if not self.host.lab.closed:
                    self.error = e
                return
            self.sent += report.sent
            self.lost += report.lost
            if not self.reports or report.method != self.reports[-1].method:
                self.reports.append(report)
            if self.rate:
                self._stop.wait(max(0.0, self.TICK - (time.monotonic() - tick)))

    def __repr__(self):
        state = "running" if self.running else "finished"
        how = f" by {self.reports[-1].method}" if self.reports else ""
        err = f", stopped by error: {self.error.message}" if self.error else ""
        lost = f" ({self.lost:,} dropped by the receiver)" if self.lost else ""
        return (f"<Stream from {self.host.name}: {self.sent:,} packets sent{lost}{how}, "
                f"{state}{err}>")
