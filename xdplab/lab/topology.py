"""The lab: hosts (network namespaces) joined by links (veth pairs), owned and cleaned up as one.

    with Lab() as lab:
        client, router, server = lab.host("client"), lab.host("router"), lab.host("server")
        lab.link(client, router)
        lab.link(router, server, rate="10mbit")     # a fast link feeding a slow one

    lab = Lab.chain("client", "router", "server")     # such a line ready-made (Lab.pair(): two hosts)

Each host is a namespace named xl-<lab>-<host>; its interfaces are eth0, eth1, ... in the order its
links were made. Link k gets 10.11.k.0/24 and fd00:11:k::/64 (.1 on the first host, .2 on the
second), fixed MACs 02:58:4c:kk:00:0s, and static neighbour entries, so no ARP or NDP is needed
before the first packet. Routes are computed from the link graph: a host with two or more links
forwards, and every host reaches every subnet of the lab.
"""
from __future__ import annotations

import atexit
import dataclasses
import ipaddress
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from xdplab.kernel import netns
from xdplab.lab import reaper
from xdplab.kernel import rtnl
from xdplab.errors import ClosedError, LabError, PrivilegeError
from xdplab.lab.settle import settled

if TYPE_CHECKING:
    from scapy.packet import Packet

    from xdplab.lab.diagram import Diagram
    from xdplab.lab.traffic import SendReport, Stream
    from xdplab.program.program import Program

_NAME = re.compile(r"^[a-z][a-z0-9]{0,7}$")
_HOST = re.compile(r"^[a-z][a-z0-9_]{0,15}$")
_live_labs = weakref.WeakSet()
_labs_by_id = weakref.WeakValueDictionary()
_own = threading.local()          # .depth > 0 while xdplab builds or settles a lab in this thread


def _settle_before_use(ns):
    """netns.before_use: anything entering a lab's namespace — a command, a netlink socket, a
    counter read, from xdplab or a test — first waits for the lab's new links to be quiet."""
    if getattr(_own, "depth", 0) or not ns.startswith(reaper.NS_PREFIX):
        return
    lab = _labs_by_id.get(ns[len(reaper.NS_PREFIX):].split("-", 1)[0])
    if lab is not None and lab._unsettled is not None:
        lab.settle()


class _Internal:
    """xdplab's own work inside a lab's namespaces (building, settling): no settle first."""

    def __enter__(self):
        _own.depth = getattr(_own, "depth", 0) + 1

    def __exit__(self, *exc):
        _own.depth -= 1


netns.before_use = _settle_before_use
QUIET = 0.15        # seconds without a frame after which a new link's start-up chatter is over (0.05
                    # let a late report through under load: tx 3, then 4, in make test beside a VM)
_QUIET_IPV6 = {"accept_dad": "0", "accept_ra": "0", "router_solicitations": "0",
               "mldv1_unsolicited_report_interval": "1", "mldv2_unsolicited_report_interval": "1"}


def require_root(what: str = "build a lab") -> None:
    if os.geteuid() != 0:
        raise PrivilegeError(f"xdplab needs root to {what} (network namespaces and XDP need "
                             "CAP_NET_ADMIN, CAP_BPF and CAP_SYS_ADMIN)",
                             "start JupyterLab with 'sudo make lab', or run tests with 'sudo make test'")


# IFLA_XDP_ATTACHED values: how a program is attached (4 = several, in multi-attach kernels)
# (pyroute2 decodes them to the names `ip link` prints: xdp, xdpgeneric, xdpoffload, xdpmulti)
_XDP_MODES = {0: None, 1: "native", 2: "generic", 3: "offload", 4: "multi", "none": None,
              "xdp": "native", "xdpgeneric": "generic", "xdpoffload": "offload", "multi": "multi"}


class XdpState(tuple):
    """(mode, prog_id) of an interface: mode is None, "native", "generic" or "offload"."""
    __slots__ = ()

    def __new__(cls, mode: str | None, prog_id: int | None) -> XdpState:
        return super().__new__(cls, (mode, prog_id))

    mode = property(lambda self: self[0])
    prog_id = property(lambda self: self[1])


@dataclasses.dataclass(eq=False)
class Interface:
    """One end of a link, inside a host."""
    name: str
    host: Host
    ip: str | None
    ip6: str | None
    mac: str
    prefixlen: int = 24
    prefixlen6: int = 64
    ifindex: int = 0
    peer: Interface | None = None
    link: Link | None = None

    def __str__(self) -> str:
        return f"{self.host.name}:{self.name}"

    def xdp(self) -> XdpState:
        """What XDP program is attached here: XdpState(mode, prog_id), mode None when none."""
        with rtnl.Netlink(self.host.ns) as nl:
            attached, prog_id = nl.xdp(self.ifindex)
        return XdpState(_XDP_MODES.get(attached), prog_id)

    def ethtool(self, *args: str) -> None:
        """Set offloads on this interface, e.g. iface.ethtool("tx", "off")."""
        self.host.run(["ethtool", "-K", self.name, *args])

    def gro(self, enable: bool | None = None) -> bool:
        """Whether GRO is on here; with `enable`, switch it on or off first."""
        from pyroute2.ethtool.ethtool import Ethtool
        with netns.netlink(self.host.ns, Ethtool) as et:
            features = et.get_features(self.name)
            if enable is not None and features.features["rx-gro"].enable != enable:
                features.features["rx-gro"].enable = enable
                et.set_features(self.name, features)
                features = et.get_features(self.name)
            return features.features["rx-gro"].enable

    def __repr__(self):
        return f"<Interface {self} {self.ip} {self.mac}>"


@dataclasses.dataclass(eq=False)
class Link:
    """A veth pair between two hosts; `a` and `b` are its two Interfaces."""
    index: int
    a: Interface
    b: Interface
    rate: str | None = None

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return ipaddress.ip_interface(f"{self.a.ip}/{self.a.prefixlen}").network

    @property
    def subnet6(self) -> ipaddress.IPv6Network:
        return ipaddress.ip_interface(f"{self.a.ip6}/{self.a.prefixlen6}").network

    def __repr__(self):
        rate = f" rate={self.rate}" if self.rate else ""
        return f"<Link {self.a} — {self.b} {self.subnet}{rate}>"


@dataclasses.dataclass
class PingResult:
    sent: int
    received: int
    rtts: list[float]     # milliseconds, one per reply
    output: str = ""

    @property
    def loss(self) -> float:
        return 1 - self.received / self.sent if self.sent else 0.0

    def __repr__(self):
        avg = f", avg {sum(self.rtts) / len(self.rtts):.3f} ms" if self.rtts else ""
        return f"<PingResult {self.received}/{self.sent} received{avg}>"


class Host:
    """A lab host: its own network namespace with lo up and one interface per link."""

    def __init__(self, lab: Lab, name: str) -> None:
        self.lab, self.name = lab, name
        self.ns: str = f"{reaper.NS_PREFIX}{lab.id}-{name}"
        self.interfaces: list[Interface] = []
        self._procs = []
        self._forwarding = False

    def __repr__(self):
        addrs = ", ".join(f"{i.name} {i.ip}" for i in self.interfaces)
        return f"<Host {self.name} [{addrs}]>"

    # -- the first interface, which lessons talk about most ---------------------------------
    def _first(self) -> Interface:
        if not self.interfaces:
            raise LabError(f"host {self.name!r} has no link yet",
                           f"connect it first: lab.link({self.name}, other_host)")
        return self.interfaces[0]

    ip = property(lambda self: self._first().ip, doc="IPv4 address of the first interface")
    ip6 = property(lambda self: self._first().ip6, doc="IPv6 address of the first interface")
    mac = property(lambda self: self._first().mac, doc="MAC address of the first interface")
    ifname = property(lambda self: self._first().name, doc="name of the first interface")

    def iface(self, which: str | Host | None = None) -> Interface:
        """An Interface by name ("eth1"), by the host at its other end, or the first one."""
        if which is None:
            return self._first()
        for i in self.interfaces:
            if i.name == which or i.peer.host is which or i.peer.host.name == which:
                return i
        names = ", ".join(i.name for i in self.interfaces) or "none yet"
        raise LabError(f"host {self.name!r} has no interface {which!r} (it has: {names})")

    def address_of(self, other: Host | str, ipv6: bool = False) -> str:
        """The address of `other` (a Host or address) that this host should use to reach it:
        its address on a link the two share, else its first address."""
        if isinstance(other, str):
            return other
        for i in self.interfaces:
            if i.peer.host is other:
                return i.peer.ip6 if ipv6 else i.peer.ip
        return other.ip6 if ipv6 else other.ip

    # -- running things inside the namespace -----------------------------------------------------
    def _argv(self, cmd):
        return netns.exec_argv(self.ns, ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd))

    def run(self, cmd: str | Sequence[str], check: bool = True, timeout: float = 60,
            input: str | None = None) -> subprocess.CompletedProcess:
        """Run a command inside this host; returns subprocess.CompletedProcess (text)."""
        self.lab.check_open()
        self.lab.settle()
        try:
            res = subprocess.run(self._argv(cmd), capture_output=True, text=True, timeout=timeout,
                                 input=input)
        except subprocess.TimeoutExpired:
            raise LabError(f"{cmd!r} on {self.name} did not finish within {timeout}s") from None
        if check and res.returncode != 0:
            raise LabError(f"{cmd!r} on {self.name} failed (exit {res.returncode}): "
                           f"{(res.stderr or res.stdout).strip()}")
        return res

    def popen(self, cmd: str | Sequence[str], **kw: Any) -> subprocess.Popen:
        """Start a long-running command inside this host; it is killed when the lab closes."""
        self.lab.check_open()
        self.lab.settle()
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.Popen(self._argv(cmd), **kw)
        self._procs.append(proc)
        return proc

    def ping(self, other: Host | str, count: int = 3, interval: float = 0.2, timeout: float = 1,
             size: int | None = None, ipv6: bool = False) -> PingResult:
        """Ping `other` (Host or address); returns PingResult with .received and per-reply .rtts."""
        dst = self.address_of(other, ipv6)
        argv = ["ping", "-6" if ipv6 or ":" in dst else "-4", "-n", "-c", str(count),
                "-i", str(interval), "-W", str(timeout)]
        if size is not None:
            argv += ["-s", str(size)]
        res = self.run(argv + [dst], check=False, timeout=count * (interval + timeout) + 10)
        if res.returncode not in (0, 1):
            raise LabError(f"ping from {self.name} to {dst} failed: {res.stderr.strip()}")
        rtts = [float(m) for m in re.findall(r"time=([\d.]+) ms", res.stdout)]
        m = re.search(r"(\d+) packets transmitted, (\d+) received", res.stdout)
        sent, received = (int(m.group(1)), int(m.group(2))) if m else (count, len(rtts))
        return PingResult(sent, received, rtts, res.stdout)

    def send(self, packets: Packet | bytes | list[Packet | bytes] | tuple[Packet | bytes, ...],
             count: int = 1, iface: Interface | str | Host | None = None,
             method: str = "auto") -> SendReport:
        """Send scapy packet(s) from this host, `count` times each; returns a SendReport.
        Large counts use the fast injector (see xdplab.traffic.send)."""
        from xdplab.lab import traffic
        self.lab.settle()
        return traffic.send(self, packets, count=count, iface=iface, method=method)

    def stream(self, packets: Packet | bytes | list[Packet | bytes] | tuple[Packet | bytes, ...],
               seconds: float | None = 10.0, rate: float | None = None, **kw: Any) -> Stream:
        """Keep sending `packets` in the background for `seconds` (None: until .stop()), at `rate`
        packets per second or as fast as possible; returns a running xdplab.traffic.Stream."""
        from xdplab.lab import traffic
        self.lab.check_open()
        self.lab.settle()
        return traffic.Stream(self, packets, seconds=seconds, rate=rate, **kw)

    def sysctl(self, key: str, value: object) -> None:
        with netns.enter(self.ns):
            Path("/proc/sys", *key.split(".")).write_text(str(value))

    def _kill_procs(self):
        for p in self._procs:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        self._procs.clear()


class Lab:
    """Owns every namespace, link and program it creates; `close()` (or exit) removes them all."""

    def __init__(self, name: str | None = None) -> None:
        require_root()
        reaper.reap()
        if name is not None and not _NAME.match(str(name)):
            raise LabError(f"lab name {name!r} is not valid",
                           "use 1-8 lowercase letters or digits, starting with a letter")
        self.id = name or "l" + secrets.token_hex(3)
        self.name = self.id
        self.hosts: dict[str, Host] = {}
        self.links: list[Link] = []
        self.programs: list[Program] = []
        self._pass_fd = None
        self._unsettled = None          # (time, tx counters) while new links may still chatter
        self._on_close = []
        self.closed = False
        self._created = time.monotonic()
        self._state_path = reaper.STATE_DIR / f"{self.id}.json"
        if self._state_path.exists():
            raise LabError(f"a lab named {self.id!r} is already running (state {self._state_path})",
                           "close it first (lab.close()), or pick another name")
        reaper.STATE_DIR.mkdir(parents=True, exist_ok=True)
        self._write_state()
        self._watchdog = subprocess.Popen(
            [sys.executable, reaper.__file__, "--watch", self.id], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        _live_labs.add(self)
        _labs_by_id[self.id] = self
        from xdplab.program import compiler
        compiler.prestart()          # the compile helper warms up while the lab is built

    # -- bookkeeping ------------------------------------------------------------------------------
    def _write_state(self):
        state = {"pid": os.getpid(), "start": reaper.start_time(os.getpid()),
                 "namespaces": [h.ns for h in self.hosts.values()], "created": time.time()}
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self._state_path)

    def check_open(self) -> None:
        """Raise ClosedError if this lab is closed (its hosts, links and programs are gone)."""
        if self.closed:
            raise ClosedError(f"lab {self.id!r} is closed: its hosts are gone",
                              "make a new one: lab = xdplab.Lab()")


    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self):
        state = "closed" if self.closed else f"{len(self.hosts)} hosts, {len(self.links)} links"
        return f"<Lab {self.id}: {state}>"

    def __getattr__(self, name):
        hosts = self.__dict__.get("hosts") or {}
        if name in hosts:
            return hosts[name]
        raise AttributeError(name)

    def __getitem__(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise LabError(f"lab {self.id!r} has no host {name!r}",
                           f"hosts: {', '.join(self.hosts) or 'none yet'}") from None

    # -- building ---------------------------------------------------------------------------------
    def host(self, name: str) -> Host:
        """A new host (network namespace) called `name`, with lo up."""
        self.check_open()
        if not _HOST.match(str(name)):
            raise LabError(f"host name {name!r} is not valid",
                           "use up to 16 lowercase letters, digits or _, starting with a letter")
        if name in self.hosts:
            raise LabError(f"lab {self.id!r} already has a host {name!r}")
        h = Host(self, name)
        self.hosts[name] = h
        self._write_state()          # record it before it exists, so a crash cannot leak it

        def inside():                # runs in the new namespace (its own thread), never here
            # A quiet IPv6: no duplicate address detection, no router solicitations, and the
            # multicast listener reports an interface sends when it gets an address (which a
            # program counting every frame would see) sent at once rather than over seconds.
            for key in ("all", "default"):
                for name, value in _QUIET_IPV6.items():
                    Path("/proc/sys/net/ipv6/conf", key, name).write_text(value)
            with rtnl.Netlink() as nl:
                nl.request(rtnl.link_up(1))          # lo: ifindex 1 in every new namespace
        rtnl.create_namespace(h.ns, inside)
        return h

    def link(self, a: Host | str, b: Host | str, rate: str | int | None = None,
             latency: str = "100ms", burst: str | int | None = None) -> Link:
        """Join hosts a and b with a veth pair. `rate` ("10mbit", or bits/s) shapes both directions
        with tbf, queueing up to `latency` of traffic: a slow link after a fast one."""
        with _Internal():
            return self._link(a, b, rate, latency, burst)

    def _link(self, a, b, rate, latency, burst):
        self.check_open()
        a, b = (self[h] if isinstance(h, str) else h for h in (a, b))
        if a is b:
            raise LabError(f"cannot link host {a.name!r} to itself")
        for h in (a, b):
            if h.lab is not self or self.hosts.get(h.name) is not h:
                raise LabError(f"host {h.name!r} does not belong to lab {self.id!r}")
        k = len(self.links)
        if k > 255:
            raise LabError("a lab has at most 256 links")
        net6 = ipaddress.ip_network(f"fd00:11:{k:x}::/64")
        ia = Interface(f"eth{len(a.interfaces)}", a, f"10.11.{k}.1", str(net6[1]),
                       f"02:58:4c:{k:02x}:00:01")
        ib = Interface(f"eth{len(b.interfaces)}", b, f"10.11.{k}.2", str(net6[2]),
                       f"02:58:4c:{k:02x}:00:02")
        ia.peer, ib.peer = ib, ia
        link = Link(k, ia, ib, rate=str(rate) if rate else None)
        ia.link = ib.link = link
        # both ends made at once, each in its namespace, with its MAC: one request
        peer_ns = os.open(os.path.join(netns.NETNS_RUN_DIR, b.ns), os.O_RDONLY | os.O_CLOEXEC)
        try:
            with rtnl.Netlink(a.ns) as nl:
                nl.request(rtnl.veth(ia.name, ib.name, peer_ns, ia.mac, ib.mac))
        except OSError as e:
            raise LabError(f"could not link {a.name} and {b.name}: {e.strerror}") from None
        finally:
            os.close(peer_ns)
        a.interfaces.append(ia)
        b.interfaces.append(ib)
        self.links.append(link)
        for end in (ia, ib):
            self._configure(end)
            if rate:
                self._shape(end, rate, latency, burst)
        self._route()
        self._unsettled = (time.monotonic(), self._tx_counters())    # see settle()
        return link

    # -- quiet links ------------------------------------------------------------------------------
    def _tx_counters(self):
        """Every lab interface's tx_packets, as the kernel counts them."""
        out = []
        for h in list(self.hosts.values()):
            ends = [i for i in list(h.interfaces) if i.ifindex]     # (one being made has none yet)
            if ends:
                try:
                    with rtnl.Netlink(h.ns) as nl:
                        out += [(i.ifindex, nl.tx_packets(i.ifindex)) for i in ends]
                except OSError:           # a host going away under us (the lab is closing)
                    out.append((h.ns, None))
        return tuple(out)

    def settle(self, limit: float = 1.0) -> None:
        """Wait until the lab's start-up chatter is over: the IPv6 multicast listener reports the
        kernel sends when an interface gets an address (`mld_qrv` times each, some
        milliseconds apart; see _QUIET_IPV6), so that the first packet a lesson counts is one it
        sent. Quiet means: no lab interface has sent anything for `QUIET` seconds, as the
        kernel's transmit counters show. Links are made without waiting; this runs before
        anything enters one of the lab's namespaces (netns.before_use: attach, ping, send, run,
        counters, qdisc statistics, a test's own netlink socket...), by which time — after a
        compile, say — the links have usually long been quiet, and it returns at once."""
        if self._unsettled is None or self.closed:
            return
        with _Internal():
            self._wait_quiet(limit)

    def _wait_quiet(self, limit):
        since, last = self._unsettled
        settled(self._tx_counters, QUIET, limit, last=last, since=since)
        self._unsettled = None

    def _configure(self, i):
        """Addresses, static neighbours (no ARP or NDP needed before the first packet) and the
        offloads of one end of a new link: one netlink round trip and two ioctls, in its host."""
        with netns.enter(i.host.ns):
            i.ifindex = socket.if_nametoindex(i.name)
            with rtnl.Netlink() as nl:
                nl.request(rtnl.link_up(i.ifindex),
                           rtnl.addr(i.ifindex, i.ip, i.prefixlen),
                           rtnl.addr(i.ifindex, i.ip6, i.prefixlen6),
                           rtnl.neigh(i.ifindex, i.peer.ip, i.peer.mac),
                           rtnl.neigh(i.ifindex, i.peer.ip6, i.peer.mac))
            # Full checksums in every packet (a lesson rewriting ports must see real checksums),
            # and VLAN tags kept in the frame where XDP can parse them.
            rtnl.plain_offloads(i.name)

    def _shape(self, i, rate, latency, burst):
        bits = rate if isinstance(rate, int) else None
        rate_s = f"{bits}bit" if bits else str(rate)
        if burst is None:
            burst = "16kb"    # at least a few full-size frames, small enough to keep the rate exact
        argv = ["tc", "qdisc", "replace", "dev", i.name, "root", "tbf", "rate", rate_s,
                "burst", str(burst), "latency", str(latency)]
        res = subprocess.run(i.host._argv(argv), capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise LabError(f"{' '.join(argv)!r} on {i.host.name} failed (exit {res.returncode}): "
                           f"{(res.stderr or res.stdout).strip()}")

    def _route(self):
        """Static routes along the link graph (shortest paths), forwarding on multi-link hosts."""
        for h in self.hosts.values():
            if len(h.interfaces) > 1 and not h._forwarding:
                with netns.enter(h.ns):
                    Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
                    Path("/proc/sys/net/ipv6/conf/all/forwarding").write_text("1")
                h._forwarding = True
            # breadth-first: the first hop out of h towards every other host
            first_hop = {}
            queue = deque()
            for i in h.interfaces:
                if i.peer.host not in first_hop:
                    first_hop[i.peer.host] = i
                    queue.append(i.peer.host)
            while queue:
                cur = queue.popleft()
                for i in cur.interfaces:
                    if i.peer.host is not h and i.peer.host not in first_hop:
                        first_hop[i.peer.host] = first_hop[cur]
                        queue.append(i.peer.host)
            direct = {i.link for i in h.interfaces}
            routes = []
            for link in self.links:
                if link in direct:
                    continue
                out = first_hop.get(link.a.host) or first_hop.get(link.b.host)
                if out is not None:
                    routes.append((link, out))
            if routes:
                with rtnl.Netlink(h.ns) as nl:
                    nl.request(*[r for link, out in routes for r in (
                        rtnl.route(link.subnet, out.peer.ip, out.ifindex),
                        rtnl.route(link.subnet6, out.peer.ip6, out.ifindex))])

    def own_interface(self, iface: Interface, what: str = "the interface") -> Interface:
        """`iface` itself, after checking that this lab is open and that `iface` is an Interface
        of one of its hosts (not a name, not a host: a router has several); else a LabError that
        calls it `what` ("the target", "the port"). The lessons' helpers take interfaces this way."""
        self.check_open()
        if not isinstance(iface, Interface) or iface.host.lab is not self:
            other = " (it belongs to another lab)" if isinstance(iface, Interface) else ""
            raise LabError(f"{what} must be an interface of this lab, not {iface!r}{other}",
                           "e.g. router.iface(server), or lab['router'].iface('eth1')")
        return iface

    def interface(self, target: Host | Interface | str) -> Interface | None:
        """Resolve a Host, Interface, "host:ifname" or a unique interface name to an Interface."""
        if isinstance(target, Interface):
            if target.host.lab is not self:
                raise LabError(f"{target} is not an interface of this lab: it belongs to another lab")
            return target
        if isinstance(target, Host):
            if target.lab is not self:
                raise LabError(f"host {target.name!r} belongs to another lab")
            return target.iface()
        if isinstance(target, str):
            if ":" in target:
                host, name = target.split(":", 1)
                return self[host].iface(name)
            found = [i for h in self.hosts.values() for i in h.interfaces if i.name == target]
            if len(found) == 1:
                return found[0]
            if found:
                raise LabError(f"several lab hosts have an interface {target!r}",
                               f"say which one: {', '.join(map(str, found))} (as 'host:ifname')")
        return None

    # -- programs -----------------------------------------------------------------------------------
    def load(self, source: str | Path, cflags: Sequence[str] = (), name: str | None = None,
             dialect: str | None = None) -> Program:
        """Compile C (text, or a file under bpf/) with bcc — or, for libbpf-style C (*.bpf.c,
        SEC(...) with <bpf/bpf_helpers.h>, dialect="libbpf"), with clang and libbpf; or load an
        object file (.o) with libbpf — and verify it; returns a Program."""
        self.check_open()
        from xdplab.program.program import Program
        prog = Program(self, source, cflags=cflags, name=name, dialect=dialect)
        self.programs.append(prog)
        return prog

    def on_close(self, callback: Callable[[], object]) -> None:
        """Call `callback()` first thing when the lab closes (widgets stop their refresh here)."""
        self._on_close.append(callback)

    def pass_program(self) -> int:
        """fd of a two-instruction `return XDP_PASS;` program, which the lab attaches (natively)
        where a veth peer needs an XDP program of its own (see program.veth_rule)."""
        if self._pass_fd is None:
            from xdplab.kernel import bpf as kernel
            self._pass_fd = kernel.load_xdp_bytecode(
                kernel.xdp_return(kernel.XDP_ACTIONS.index("XDP_PASS")), "xdplab_pass")
        return self._pass_fd

    def diagram(self, **kw: Any) -> Diagram:
        """A picture of the lab as SVG (xdplab.lab.diagram): diagram(badges=False) leaves out
        the XDP programs."""
        from xdplab.lab.diagram import diagram
        return diagram(self, **kw)

    # -- ready-made topologies ---------------------------------------------------------------------
    @classmethod
    def pair(cls, name: str | None = None, rate: str | int | None = None) -> Lab:
        """A lab with hosts `client` and `server` joined by one link: Lab.chain("client",
        "server")."""
        return cls.chain("client", "server", name=name, rate=rate)

    @classmethod
    def chain(cls, *hosts: str, name: str | None = None, rate: str | int | None = None) -> Lab:
        """A lab of hosts in a line, each linked to the next in the order given:
        Lab.chain("client", "router", "server"). The hosts in the middle forward, and every host
        reaches every other (the first reaches the last through all the middle ones). `rate`
        shapes every link, as lab.link(a, b, rate) does."""
        _check_chain(hosts)
        lab = cls(name)
        try:
            made = [lab.host(h) for h in hosts]
            for a, b in zip(made, made[1:]):
                lab.link(a, b, rate=rate)
        except BaseException:
            lab.close()
            raise
        return lab

    # -- teardown ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Remove every program, process, namespace and link of this lab. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        for callback in reversed(self._on_close):
            try:
                callback()
            except Exception:
                pass
        for prog in self.programs:
            try:
                prog.close()
            except Exception:
                pass
        for h in self.hosts.values():
            h._kill_procs()
        reaper.remove_lab(self.id)
        if self._pass_fd is not None:
            os.close(self._pass_fd)
        try:
            self._watchdog.stdin.close()     # it sees the end of its pipe and exits by itself
        except Exception:
            pass
        _retiring.append(self._watchdog)     # collected later, not waited for here
        _collect_watchdogs()
        _live_labs.discard(self)


def _check_chain(hosts):
    """The host names of Lab.chain(...), checked before anything is made."""
    example = 'Lab.chain("client", "router", "server")'
    if len(hosts) == 1 and isinstance(hosts[0], (list, tuple)):
        raise LabError("Lab.chain takes the host names one by one, not a list",
                       f"write {example}, or Lab.chain(*names) for a list of names")
    if len(hosts) < 2:
        raise LabError(f"a chain needs at least two hosts (got {len(hosts)})",
                       f"name them in the order they are linked: {example}")
    seen = set()
    for h in hosts:
        if not isinstance(h, str) or not _HOST.match(h):
            raise LabError(f"host name {h!r} is not valid",
                           "use up to 16 lowercase letters, digits or _, starting with a letter")
        if h in seen:
            raise LabError(f"host {h!r} appears twice in the chain",
                           "each host has one place in the line: give every host its own name")
        seen.add(h)


def open_labs() -> list[Lab]:
    """The labs of this process that are not closed, oldest first."""
    return sorted((lab for lab in _live_labs if not lab.closed), key=lambda lab: lab._created)


_retiring = []                 # watchdogs of closed labs, exiting on their own


def _collect_watchdogs():
    _retiring[:] = [w for w in _retiring if w.poll() is None]


@atexit.register
def _close_all():
    for lab in list(_live_labs):
        lab.close()


def reap(all: bool = False) -> dict[str, list[str]]:
    """Remove labs whose process died (every lab with all=True); returns {lab id: [namespaces]}."""
    require_root("remove labs")
    if all:
        for lab in list(_live_labs):
            lab.close()
    return reaper.reap(everything=all)
