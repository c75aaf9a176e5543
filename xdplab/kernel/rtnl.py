"""A few rtnetlink requests, packed by hand and sent in batches: what building a lab needs.

pyroute2 is general and convenient, but decoding its replies costs milliseconds per message, and a
lab is many small requests. Here each host's whole configuration (a veth pair with both ends'
namespaces, addresses and MACs, addresses, static neighbours, routes) goes to the kernel in one
sendmsg() and comes back as one acknowledgement per request: one round trip.

    with rtnl.Netlink(host.ns) as nl:
        nl.request(rtnl.addr(idx, "10.11.0.1", 24), rtnl.neigh(idx, "10.11.0.2", mac))

The message layouts are those of include/uapi/linux/rtnetlink.h, if_link.h, if_addr.h,
neighbour.h and veth.h. Errors raise OSError(errno) naming the request that failed.
"""
from __future__ import annotations

import ctypes
import ipaddress
import os
import socket
import struct
import threading
from typing import Any, Callable, TypeVar

T = TypeVar("T")

from xdplab.kernel import netns

NETLINK_ROUTE = 0
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_REPLACE = 0x1, 0x4, 0x200, 0x400, 0x100
RTM_NEWLINK, RTM_GETLINK, RTM_NEWADDR, RTM_NEWROUTE, RTM_NEWNEIGH = 16, 18, 20, 24, 28
IFLA_ADDRESS, IFLA_IFNAME, IFLA_LINKINFO, IFLA_STATS64, IFLA_NET_NS_FD = 1, 3, 18, 23, 28
IFLA_XDP, IFLA_XDP_ATTACHED, IFLA_XDP_PROG_ID = 43, 2, 4
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
NDA_DST, NDA_LLADDR, NUD_PERMANENT = 1, 2, 0x80
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
IFF_UP = 0x1
CLONE_NEWNET = 0x40000000
MS_BIND, MS_REC, MS_SHARED = 0x1000, 0x4000, 1 << 20

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]


# -- packing ---------------------------------------------------------------------------------------
def attr(kind: int, data: str | bytes) -> bytes:
    """One netlink attribute of type `kind`, padded to 4 bytes; a str is NUL-terminated."""
    data = data.encode() + b"\0" if isinstance(data, str) else bytes(data)
    raw = struct.pack("=HH", 4 + len(data), kind) + data
    return raw + b"\0" * (-len(raw) % 4)


def _mac(text):
    return bytes(int(x, 16) for x in text.split(":"))


def _ip(text):
    a = ipaddress.ip_address(text)
    return (socket.AF_INET if a.version == 4 else socket.AF_INET6), a.packed


def _ifinfo(index=0, flags=0, change=0):
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, flags, change)


class Request:
    """One rtnetlink request: message type, flags, body; `what` names it in errors."""

    def __init__(self, kind: int, flags: int, body: bytes, what: str) -> None:
        self.kind, self.flags, self.body, self.what = kind, flags, body, what


def veth(name: str, peer: str, peer_ns_fd: int, mac: str | None = None,
         peer_mac: str | None = None) -> Request:
    """A veth pair: `name` here, `peer` in the namespace of fd `peer_ns_fd`, with their MACs.
    (Not up yet: a veth end cannot be opened before its peer is linked to it, -ENOTCONN.)"""
    peer_msg = _ifinfo() + attr(IFLA_IFNAME, peer) + \
        attr(IFLA_NET_NS_FD, struct.pack("=I", peer_ns_fd)) + \
        (attr(IFLA_ADDRESS, _mac(peer_mac)) if peer_mac else b"")
    info = attr(IFLA_INFO_KIND, "veth") + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_msg))
    body = _ifinfo() + attr(IFLA_IFNAME, name) + \
        (attr(IFLA_ADDRESS, _mac(mac)) if mac else b"") + attr(IFLA_LINKINFO, info)
    return Request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"veth pair {name}/{peer}")


def link_up(index: int, mac: str | None = None) -> Request:
    """Set interface `index` up, and its MAC to `mac` when given."""
    body = _ifinfo(index, IFF_UP, IFF_UP) + (attr(IFLA_ADDRESS, _mac(mac)) if mac else b"")
    return Request(RTM_NEWLINK, 0, body, f"link {index} up")


def addr(index: int, address: str, prefixlen: int) -> Request:
    """Add address `address`/`prefixlen` (IPv4 or IPv6) to interface `index`."""
    family, raw = _ip(address)
    body = struct.pack("=BBBBI", family, prefixlen, 0, RT_SCOPE_UNIVERSE, index) + \
        attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw)
    return Request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, f"address {address}/{prefixlen}")


def neigh(index: int, address: str, lladdr: str) -> Request:
    """A permanent neighbour entry (replaced if there is one)."""
    family, raw = _ip(address)
    body = struct.pack("=BxxxiHBB", family, index, NUD_PERMANENT, 0, 0) + \
        attr(NDA_DST, raw) + attr(NDA_LLADDR, _mac(lladdr))
    return Request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, body, f"neighbour {address}")


def route(network: ipaddress.IPv4Network | ipaddress.IPv6Network, gateway: str,
          oif: int) -> Request:
    """A route to `network` (ip_network) via `gateway` out of ifindex `oif` (replaced)."""
    family, gw = _ip(gateway)
    body = struct.pack("=BBBBBBBBI", family, network.prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT,
                       RT_SCOPE_UNIVERSE, RTN_UNICAST, 0) + \
        attr(RTA_DST, network.network_address.packed) + attr(RTA_GATEWAY, gw) + \
        attr(RTA_OIF, struct.pack("=I", oif))
    return Request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body, f"route to {network}")


# -- the socket ------------------------------------------------------------------------------------
class Netlink:
    """A rtnetlink socket inside namespace `ns` (None: this thread's own)."""

    def __init__(self, ns: str | None = None) -> None:
        if ns is None:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                      NETLINK_ROUTE)
        else:
            with netns.enter(ns):            # a socket belongs to the namespace it was made in
                self.sock = socket.socket(socket.AF_NETLINK,
                                          socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def request(self, *requests: Request) -> None:
        """Send every request in one sendmsg() and wait for each acknowledgement; raises OSError
        for the first that failed."""
        if not requests:
            return
        first = self.seq + 1
        out = []
        for r in requests:
            self.seq += 1
            out.append(struct.pack("=IHHII", 16 + len(r.body), r.kind,
                                   r.flags | NLM_F_REQUEST | NLM_F_ACK, self.seq, 0) + r.body)
        self.sock.sendall(b"".join(out))
        pending, failure = set(range(first, self.seq + 1)), None
        while pending:
            data = self.sock.recv(1 << 16)
            for kind, seq, payload in _messages(data):
                if kind == NLMSG_ERROR and seq in pending:
                    pending.discard(seq)
                    code, = struct.unpack_from("=i", payload)
                    if code and failure is None:
                        failure = (-code, requests[seq - first].what)
        if failure:
            raise OSError(failure[0], f"{failure[1]}: {os.strerror(failure[0])}")

    def get_link(self, index: int) -> dict[int, bytes]:
        """{attribute type: raw value} of interface `index` (RTM_GETLINK)."""
        self.seq += 1
        self.sock.sendall(struct.pack("=IHHII", 16 + 16, RTM_GETLINK, NLM_F_REQUEST, self.seq, 0)
                          + _ifinfo(index))
        while True:
            for kind, seq, payload in _messages(self.sock.recv(1 << 16)):
                if seq != self.seq:
                    continue
                if kind == NLMSG_ERROR:
                    code, = struct.unpack_from("=i", payload)
                    raise OSError(-code, f"link {index}: {os.strerror(-code)}")
                if kind == RTM_NEWLINK:
                    return dict(_attrs(payload, 16))

    def tx_packets(self, index: int) -> int:
        """The kernel's tx_packets counter of interface `index` (IFLA_STATS64)."""
        stats = self.get_link(index).get(IFLA_STATS64)
        return struct.unpack_from("=Q", stats, 8)[0] if stats else 0   # rx_packets, tx_packets

    def xdp(self, index: int) -> tuple[int, int]:
        """(IFLA_XDP_ATTACHED, IFLA_XDP_PROG_ID) of interface `index`: how an XDP program is
        attached there (0 none, 1 native, 2 generic, 3 offload, 4 several) and its id."""
        raw = self.get_link(index).get(IFLA_XDP)
        if raw is None:
            return 0, 0
        xdp = dict(_attrs(raw, 0))
        attached = xdp.get(IFLA_XDP_ATTACHED, b"\0")[0]
        prog = xdp.get(IFLA_XDP_PROG_ID)
        return attached, struct.unpack("=I", prog[:4])[0] if prog else 0


def _messages(data):
    pos = 0
    while pos + 16 <= len(data):
        length, kind, _, seq, _ = struct.unpack_from("=IHHII", data, pos)
        if length < 16:
            break
        yield kind, seq, data[pos + 16:pos + length]
        pos += (length + 3) & ~3


def _attrs(payload, start):
    pos = start
    while pos + 4 <= len(payload):
        length, kind = struct.unpack_from("=HH", payload, pos)
        if length < 4:
            break
        yield kind & 0x3FFF, payload[pos + 4:pos + length]
        pos += (length + 3) & ~3


# -- namespaces ------------------------------------------------------------------------------------
def create_namespace(name: str, setup: Callable[[], T] | None = None) -> T | None:
    """Create network namespace `name` (/run/netns/NAME, as `ip netns add` does) in a short-lived
    thread that unshares its own network namespace — no fork — and run `setup()` inside it
    before the thread ends. Nothing of the calling thread changes."""
    path = os.path.join(netns.NETNS_RUN_DIR, name)
    result: dict[str, Any] = {}

    def make():
        try:
            os.makedirs(netns.NETNS_RUN_DIR, exist_ok=True)
            run_dir = netns.NETNS_RUN_DIR.encode()
            # /run/netns must be a shared mount point, so the bind mounts in it are seen everywhere
            if _libc.mount(b"", run_dir, b"none", MS_SHARED | MS_REC, None) != 0:
                if _libc.mount(run_dir, run_dir, b"none", MS_BIND | MS_REC, None) != 0 or \
                        _libc.mount(b"", run_dir, b"none", MS_SHARED | MS_REC, None) != 0:
                    raise OSError(ctypes.get_errno(), "cannot make /run/netns a shared mount")
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
            if _libc.unshare(CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                os.unlink(path)
                raise OSError(err, f"unshare: {os.strerror(err)}")
            if _libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", MS_BIND, None) != 0:
                err = ctypes.get_errno()
                os.unlink(path)
                raise OSError(err, f"mount {path}: {os.strerror(err)}")
            if setup is not None:
                result["value"] = setup()
        except BaseException as e:           # handed to the caller
            result["error"] = e

    t = threading.Thread(target=make, name="xdplab-netns")
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def if_index(ns: str, name: str) -> int:
    """The ifindex of interface `name` in namespace `ns`."""
    with netns.enter(ns):
        return socket.if_nametoindex(name)


# -- ethtool, the old ioctl way (one call per setting, no process) ---------------------------------
SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM, ETHTOOL_GFLAGS, ETHTOOL_SFLAGS = 0x17, 0x25, 0x26
ETH_FLAG_TXVLAN, ETH_FLAG_RXVLAN = 1 << 7, 1 << 8


def _ethtool(sock, ifname, cmd, data=0):
    import fcntl
    value = struct.pack("=II", cmd, data)
    buf = ctypes.create_string_buffer(value, len(value))
    ifreq = struct.pack("16sP", ifname.encode(), ctypes.addressof(buf)) + bytes(16)
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
    return struct.unpack("=II", buf.raw)[1]


def plain_offloads(ifname: str) -> None:
    """`ethtool -K IF tx off rxvlan off txvlan off` for an interface of this thread's namespace:
    full checksums in every packet, VLAN tags kept in the frame."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        _ethtool(sock, ifname, ETHTOOL_STXCSUM, 0)
        flags = _ethtool(sock, ifname, ETHTOOL_GFLAGS)
        if flags & (ETH_FLAG_TXVLAN | ETH_FLAG_RXVLAN):
            _ethtool(sock, ifname, ETHTOOL_SFLAGS, flags & ~(ETH_FLAG_TXVLAN | ETH_FLAG_RXVLAN))
