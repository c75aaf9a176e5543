"""Random packets for the lab checks: fresh addresses, ports and payloads every run, VLAN tags,
IPv4 options, IPv6 extension-header chains, and checksums steered to the values where a wrong
one's complement update shows (near 0x0000 and 0xffff).

    from xdplab import sampling as s
    rng = t.rng                                   # in a check: this run's random numbers
    tags, words = s.vlans(rng)                    # 0, 1 or 2 VLAN tags, and "in VLAN 301"
    chain, words = s.ipv6_chain(rng, 2)           # two extension headers, random lengths
    pkt = s.with_checksum(Ether()/IP()/UDP()/b"data", UDP, 0xfffe)   # payload made to fit

Every function takes the random.Random it draws from, so a check drawn again with the same seed
sends the same packets.
"""
from __future__ import annotations

import random
from typing import Container

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (ICMPv6EchoReply, ICMPv6EchoRequest, IPv6ExtHdrDestOpt,
                                IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, PadN)
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import NoPayload, Packet, Padding, Raw

from xdplab.errors import LabError


def ipv4(rng: random.Random, prefix: str = "198.18") -> str:
    """A random unicast address: by default in 198.18.0.0/15, the range set aside for tests."""
    parts = prefix.split(".")
    if prefix == "198.18":
        parts = ["198", str(rng.choice((18, 19)))]
    parts += [str(rng.randrange(0, 256)) for _ in range(3 - len(parts))]
    return ".".join(parts + [str(rng.randrange(1, 255))])


def ipv6(rng: random.Random, prefix: str = "fd00:77") -> str:
    """A random unique-local IPv6 address."""
    return prefix + "".join(f":{rng.randrange(0, 0x10000):x}" for _ in range(8 - prefix.count(":") - 1))


def port(rng: random.Random, avoid: Container[int] = ()) -> int:
    """A random port (mostly above 1023, sometimes a low one), never one of `avoid`."""
    while True:
        p = rng.randrange(1, 1024) if rng.random() < 0.2 else rng.randrange(1024, 65536)
        if p not in avoid:
            return p


def payload(rng: random.Random, least: int = 0, most: int = 64) -> bytes:
    """From `least` to `most` random bytes."""
    return bytes(rng.randrange(256) for _ in range(rng.randrange(least, most + 1)))


def mac(rng: random.Random) -> str:
    """A random locally administered unicast MAC address."""
    first = (rng.randrange(256) & 0xfc) | 0x02
    return ":".join(f"{b:02x}" for b in [first] + [rng.randrange(256) for _ in range(5)])


def vlans(rng: random.Random, count: int | None = None) -> tuple[list[Packet], str]:
    """(layers, words): `count` VLAN tags (default: 0, 1 or 2 at random), an 802.1Q tag alone or
    an 802.1ad outer tag around an 802.1Q one (QinQ), random IDs; words say so ("in VLAN 301")."""
    count = rng.choice((0, 1, 1, 2)) if count is None else count
    ids = [rng.randrange(1, 4095) for _ in range(count)]
    if count == 0:
        return [], ""
    if count == 1:
        return [Dot1Q(vlan=ids[0])], f" in VLAN {ids[0]}"
    if count == 2:
        return ([Dot1AD(vlan=ids[0]), Dot1Q(vlan=ids[1])],
                f" in QinQ (VLAN {ids[1]} inside {ids[0]})")
    raise LabError(f"{count} VLAN tags: the labs' parsers look through at most 2")


def ipv4_options(rng: random.Random) -> tuple[bytes, str]:
    """(bytes, words): 4 to 40 bytes of IPv4 options (no-operation options, then the end of list)."""
    n = 4 * rng.randrange(1, 11)
    return b"\x01" * (n - 1) + b"\x00", f" behind {n} bytes of IPv4 options"


def _padded(cls, rng, **kw):
    """An extension header of class `cls` holding a PadN option, 8 to 32 bytes long in all."""
    return cls(options=[PadN(optdata=b"\x00" * rng.choice((4, 4, 12, 20, 28)))], **kw)


def ipv6_chain(rng: random.Random, count: int | None = None,
               fragment: bool = True) -> tuple[list[Packet], str]:
    """(layers, words): a chain of `count` IPv6 extension headers (default 0 to 3), each of a
    random kind and length: hop-by-hop options (only first, as RFC 8200 wants), destination
    options, a routing header, and (if `fragment`) the fragment header of a first fragment."""
    count = rng.choice((0, 1, 2, 2, 3)) if count is None else count
    layers, names = [], []
    for i in range(count):
        kinds = ["dest", "routing"] + (["hop"] if i == 0 else []) + \
                (["fragment"] if fragment and "fragment" not in names else [])
        kind = rng.choice(kinds)
        names.append(kind)
        if kind == "hop":
            layers.append(_padded(IPv6ExtHdrHopByHop, rng))
        elif kind == "dest":
            layers.append(_padded(IPv6ExtHdrDestOpt, rng))
        elif kind == "routing":
            hops = rng.randrange(0, 3)
            layers.append(IPv6ExtHdrRouting(addresses=[ipv6(rng) for _ in range(hops)],
                                            segleft=hops))
        else:
            layers.append(IPv6ExtHdrFragment(offset=0, m=1, id=rng.randrange(1 << 32)))
    if not count:
        return [], ""
    words = {"hop": "hop-by-hop options", "dest": "destination options", "routing": "routing",
             "fragment": "fragment (first fragment)"}
    return layers, (f" behind {count} IPv6 extension header{'s' if count > 1 else ''} ("
                    + ", ".join(words[n] for n in names) + ")")


def stack(*layers: Packet | list[Packet] | tuple[Packet, ...] | None) -> Packet | None:
    """layers joined with '/' (None and [] left out, lists spread); None when none is left."""
    out = None
    for item in layers:
        for layer in (item if isinstance(item, (list, tuple)) else [item]):
            if layer is None:
                continue
            out = layer.copy() if out is None else out / layer.copy()
    return out


# -- checksums ------------------------------------------------------------------------------------
def ones_add(a: int, b: int) -> int:
    """One's complement addition of two 16-bit words (the end-around carry added back)."""
    s = a + b
    return (s & 0xffff) + (s >> 16)


def ones_sum(data: bytes) -> int:
    """The one's complement sum of `data` as big-endian 16-bit words (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    s = 0
    for i in range(0, len(data), 2):
        s = ones_add(s, int.from_bytes(data[i:i + 2], "big"))
    return s


def near_carry(rng: random.Random, low: int = 0x0000, high: int = 0xffff) -> int:
    """A checksum value where a one's complement update without its end-around carry goes wrong:
    from `low` to 0x100 above it, or from 0x100 below `high` to `high` (0x0000 and 0xffff by
    default; an ICMP or IPv4 header checksum is never 0xffff: give high=0xfffe)."""
    return rng.choice((rng.randrange(low, low + 0x100), rng.randrange(high - 0xff, high + 1)))


def _word_holder(layer):
    """(get, set) of the 16-bit word of `layer` that with_checksum() may choose."""
    if isinstance(layer, IP):
        return (lambda: layer.id), (lambda w: setattr(layer, "id", w))
    if isinstance(layer, (ICMPv6EchoRequest, ICMPv6EchoReply)):
        def put(w):
            layer.data = w.to_bytes(2, "big") + bytes(layer.data)[2:]
        return (lambda: int.from_bytes(bytes(layer.data)[:2], "big")), put
    if isinstance(layer, (UDP, TCP, ICMP)):
        if len(bytes(layer.payload)) < 2:
            raise LabError(f"with_checksum needs 2 bytes of payload behind {layer.name}")

        def put(w):
            rest = bytes(layer.payload)[2:]
            layer.remove_payload()
            layer.add_payload(Raw(w.to_bytes(2, "big") + rest))
        return (lambda: int.from_bytes(bytes(layer.payload)[:2], "big")), put
    raise LabError(f"with_checksum cannot steer the checksum of {layer.name}")


def dissect(wire: bytes) -> Packet:
    """`wire` as an Ether whose bytes() are `wire` again. What a UDP or TCP header carries stays
    Raw: scapy reads UDP to port 53 as DNS once its DNS layer is loaded (scapy.all does that), and
    a random payload read as DNS does not build back to the same bytes."""
    pkt = Ether(wire)
    for l4 in (UDP, TCP):
        if l4 in pkt and not isinstance(pkt[l4].payload, (Raw, Padding, NoPayload)):
            inner = bytes(pkt[l4].payload)           # the bytes it was read from
            pkt[l4].remove_payload()
            pkt[l4].add_payload(Raw(inner))
    return pkt


def with_checksum(packet: Packet | bytes, layer: type[Packet], value: int) -> Packet:
    """`packet` (rebuilt, an Ether) with `layer`'s checksum equal to `value`: one 16-bit word is
    chosen to make it so — the IPv4 identification for IP, the first two bytes of the payload
    for UDP, TCP, ICMP and ICMPv6 echo (which must have two). Every other checksum is computed."""
    pkt = dissect(bytes(packet))               # a copy, every field filled in
    target = pkt[layer]
    get, put = _word_holder(target)
    for field in ("chksum", "cksum"):
        for lay in (pkt[IP] if IP in pkt else None, target):
            if lay is not None and field in lay.fields:
                lay.fields.pop(field, None)     # computed again on build
    put(0)
    pkt.clear_cache()                          # scapy keeps the bytes it parsed otherwise
    built = dissect(bytes(pkt))
    start = ~_checksum(built[layer]) & 0xffff  # the sum of everything but the chosen word
    want = ~value & 0xffff
    word = ones_add(want, ~start & 0xffff)
    for w in (word, word ^ 0xffff if word in (0, 0xffff) else word):
        put(w)
        pkt.clear_cache()
        built = dissect(bytes(pkt))
        if _checksum(built[layer]) == value:
            return built
    raise LabError(f"no choice of one word makes the {layer.__name__} checksum {value:#06x}",
                   "a checksum is 0xffff only for data that is all zeros, and UDP over IPv4 "
                   "sends a computed 0x0000 as 0xffff")


def _checksum(layer):
    return layer.cksum if isinstance(layer, (ICMPv6EchoRequest, ICMPv6EchoReply)) else layer.chksum


def checksum_ok(layer: Packet) -> bool:
    """True when `layer`'s checksum verifies: the one's complement sum over what it covers is
    0xffff (either representation of a checksum of zero is accepted). Works for IP (its header),
    ICMP (the message) and UDP/TCP over IPv4 (with the pseudo-header). Ethernet padding behind
    the IP packet is not covered: lengths come from the IP (and UDP) header."""
    if isinstance(layer, IP):
        return ones_sum(bytes(layer)[:layer.ihl * 4]) == 0xffff
    data = bytes(layer)
    if isinstance(layer, ICMP):
        ip = layer.underlayer
        data = data[:ip.len - ip.ihl * 4] if ip is not None and ip.len else data
        return ones_sum(data) == 0xffff
    if isinstance(layer, (UDP, TCP)):
        ip = layer.underlayer
        if not isinstance(ip, IP):
            raise LabError(f"checksum_ok checks {layer.name} over IPv4 only, not over "
                           f"{getattr(ip, 'name', 'nothing')}")
        length = (layer.len if isinstance(layer, UDP)
                  else ip.len - ip.ihl * 4 if ip.len else len(data))
        pseudo_hdr = (bytes(map(int, ip.src.split("."))) + bytes(map(int, ip.dst.split(".")))
                      + bytes([0, ip.proto]) + length.to_bytes(2, "big"))
        return ones_sum(pseudo_hdr + data[:length]) == 0xffff
    raise LabError(f"checksum_ok cannot check {layer.name}")
