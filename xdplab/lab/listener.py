"""A UDP listener inside a lab host: proof that datagrams really arrived at an application.

    sink = UdpListener(lab.server, 5353)           # IPv4 and IPv6, any address of the server
    lab.client.send(IP(dst=lab.server.ip)/UDP(dport=5353)/b"hello", count=3)
    sink.receive(3)        # [Datagram(payload=b'hello', source='10.11.0.1', sport=40000), ...]

The socket is opened inside the host's network namespace and belongs to it from then on, so it
is read from the notebook's own process: no helper process, nothing to kill. A datagram reaches
it only after the host's kernel accepted it — right addresses, valid IP and UDP checksums — so
what it receives is what an application on that host would see. It closes with its lab.
"""
from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING, NamedTuple

from xdplab.kernel import netns
from xdplab.errors import ClosedError, LabError

if TYPE_CHECKING:
    from xdplab.lab.topology import Host


class Datagram(NamedTuple):
    payload: bytes
    source: str       # the sender's address (IPv4 as "10.11.0.1", IPv6 as "fd00:11::1")
    sport: int


class UdpListener:
    """A UDP socket bound to `port` on every address of lab host `host`, IPv4 and IPv6."""

    def __init__(self, host: Host, port: int) -> None:
        host.lab.check_open()
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise LabError(f"port must be a number from 1 to 65535, not {port!r}")
        self.host, self.port = host, port
        with netns.enter(host.ns):
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)   # IPv4 too, as ::ffff:a.b.c.d
            sock.bind(("::", port))
        except OSError as e:
            sock.close()
            raise LabError(f"cannot listen on UDP port {port} on {host.name}: {e.strerror}",
                           "another listener has it: close that one, or pick another port") from None
        self.sock = sock
        host.lab.on_close(self.close)

    def receive(self, count: int | None = None, timeout: float = 1.0) -> list[Datagram]:
        """The datagrams that arrived: waits until `count` have (all waiting ones when None) or
        until none came for `timeout` seconds. Returns a list of Datagram."""
        if self.sock is None:
            raise ClosedError(f"the listener on {self.host.name} port {self.port} is closed",
                           f"open a new one: UdpListener(host, {self.port})")
        got = []
        while count is None or len(got) < count:
            self.sock.settimeout(timeout)
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                break
            ip = ipaddress.ip_address(addr[0])
            ip = ip.ipv4_mapped or ip
            got.append(Datagram(data, str(ip), addr[1]))
        return got

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __repr__(self):
        state = "closed" if self.sock is None else "listening"
        return f"<UdpListener {self.host.name} UDP port {self.port}, {state}>"
