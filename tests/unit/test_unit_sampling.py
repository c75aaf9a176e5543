"""Random packets for the lab checks (xdplab.labs.sampling): addresses, ports, payloads, MACs,
VLAN tags and IPv6 extension-header chains as the docstrings promise them, and the checksum
helpers against RFC 1071 and scapy's own checksums. Every draw comes from a seeded
random.Random, so a failure here repeats."""
import collections
import ipaddress
import random

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (ICMPv6EchoReply, ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt,
                                IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting)
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from xdplab.errors import LabError
from xdplab.labs import sampling

DRAWS = 400
MANY = 2000
CM, SM = "02:00:00:00:00:01", "02:00:00:00:00:02"    # given, so scapy looks up no MAC address


def rng(seed=12):
    return random.Random(seed)


# --- addresses, ports, payloads ------------------------------------------------------------------

@pytest.mark.parametrize("prefix, network", [
    (None, "198.18.0.0/15"), ("10", "10.0.0.0/8"), ("172.16", "172.16.0.0/16"),
    ("192.168.7", "192.168.7.0/24")])
def test_ipv4_addresses_are_inside_the_prefix_and_varied(prefix, network):
    r, net = rng(), ipaddress.ip_network(network)
    drawn = [sampling.ipv4(r) if prefix is None else sampling.ipv4(r, prefix) for _ in range(MANY)]
    addrs = [ipaddress.IPv4Address(a) for a in drawn]                  # each one parses
    assert all(a in net for a in addrs), [a for a in addrs if a not in net][:3]
    last = {a.packed[3] for a in addrs}
    assert last <= set(range(1, 255)) and len(last) > 240              # never .0 or .255
    assert len(set(addrs)) > 0.9 * min(len(addrs), net.num_addresses)  # fresh ones, not a few
    if prefix is None:                                                 # both halves of the /15
        assert {a.packed[1] for a in addrs} == {18, 19}


@pytest.mark.parametrize("prefix, network", [
    (None, "fd00:77::/32"), ("fd00:1:2:3", "fd00:1:2:3::/64"), ("2001:db8", "2001:db8::/32")])
def test_ipv6_addresses_are_inside_the_prefix_and_varied(prefix, network):
    r, net = rng(), ipaddress.ip_network(network)
    drawn = [sampling.ipv6(r) if prefix is None else sampling.ipv6(r, prefix) for _ in range(DRAWS)]
    addrs = [ipaddress.IPv6Address(a) for a in drawn]                  # eight groups, each parses
    assert all(a in net for a in addrs), [a for a in addrs if a not in net][:3]
    assert len(set(addrs)) == DRAWS
    low = [int(a) & 0xffff for a in addrs]                             # the last group varies
    assert max(low) > 0xf000 and min(low) < 0x1000


def test_a_port_is_never_one_to_avoid_and_mostly_above_1023():
    r, avoid = rng(), {53, 80, 443, 7000, 40000} | set(range(1024, 2048))
    ports = [sampling.port(r, avoid) for _ in range(2000)]
    assert not avoid & set(ports)
    assert all(1 <= p <= 65535 for p in ports)
    low = sum(p < 1024 for p in ports) / len(ports)
    assert 0.12 < low < 0.28, low                                      # "sometimes a low one"
    assert len(set(ports)) > 1500
    only_high = [sampling.port(r, range(1, 1024)) for _ in range(200)]
    assert min(only_high) >= 1024


def test_payload_sizes_are_in_range_both_ends_included():
    r = rng()
    sizes = set()
    for _ in range(DRAWS):
        data = sampling.payload(r, 3, 7)
        assert isinstance(data, bytes) and 3 <= len(data) <= 7
        sizes.add(len(data))
    assert sizes == {3, 4, 5, 6, 7}
    default = [sampling.payload(r) for _ in range(DRAWS)]
    assert {len(d) for d in default} <= set(range(65)) and {0, 64} <= {len(d) for d in default}
    assert len(set(b"".join(default))) == 256                          # every byte value turns up
    assert sampling.payload(r, 0, 0) == b""


def test_a_mac_is_unicast_locally_administered_and_varied():
    r = rng()
    macs = [sampling.mac(r) for _ in range(DRAWS)]
    for m in macs:
        octets = m.split(":")
        assert len(octets) == 6 and all(len(o) == 2 and o == o.lower() for o in octets), m
        first = int(octets[0], 16)
        assert first & 0x01 == 0, m                                    # unicast (I/G bit clear)
        assert first & 0x02 == 0x02, m                                 # locally administered
    assert len(set(macs)) == DRAWS
    assert len({m[:2] for m in macs}) > 56                             # its other 6 bits vary
    assert Ether(bytes(Ether(src=macs[0], dst=macs[1]))).src == macs[0]


# --- VLAN tags and IPv6 extension headers --------------------------------------------------------

def test_vlans_are_none_one_tag_or_qinq_with_ids_in_range():
    r = rng()
    assert sampling.vlans(r, 0) == ([], "")
    (tag,), words = sampling.vlans(r, 1)
    assert type(tag) is Dot1Q and 1 <= tag.vlan <= 4094 and words == f" in VLAN {tag.vlan}"
    (outer, inner), words = sampling.vlans(r, 2)
    assert type(outer) is Dot1AD and type(inner) is Dot1Q
    assert words == f" in QinQ (VLAN {inner.vlan} inside {outer.vlan})"
    with pytest.raises(LabError, match="3 VLAN tags"):
        sampling.vlans(r, 3)
    counts, ids = set(), set()
    for _ in range(DRAWS):
        tags, words = sampling.vlans(r)
        counts.add(len(tags))
        ids |= {t.vlan for t in tags}
        assert (words == "") == (not tags)
    assert counts == {0, 1, 2} and min(ids) >= 1 and max(ids) <= 4094 and len(ids) > 300


def test_qinq_tags_go_on_the_wire_as_802_1ad_around_802_1q():
    tags, _ = sampling.vlans(rng(), 2)
    wire = bytes(sampling.stack(Ether(src=CM, dst=SM), tags, IP(dst="198.18.0.1"), UDP()))
    assert wire[12:14] == b"\x88\xa8" and wire[16:18] == b"\x81\x00" and wire[20:22] == b"\x08\x00"
    back = Ether(wire)
    assert (back[Dot1AD].vlan, back[Dot1Q].vlan) == (tags[0].vlan, tags[1].vlan) and UDP in back


KINDS = {IPv6ExtHdrHopByHop: "hop-by-hop options", IPv6ExtHdrDestOpt: "destination options",
         IPv6ExtHdrRouting: "routing", IPv6ExtHdrFragment: "fragment (first fragment)"}


@pytest.mark.parametrize("seed", range(40))
def test_an_ipv6_chain_parses_back_into_the_same_layers(seed):
    r = rng(seed)
    chain, words = sampling.ipv6_chain(r, fragment=seed % 4 != 0)
    body = sampling.payload(r, 1, 40)
    built = sampling.stack(Ether(src=CM, dst=SM), IPv6(src=sampling.ipv6(r), dst=sampling.ipv6(r)),
                           chain, UDP(sport=4242, dport=53), Raw(body))
    back = Ether(bytes(built))
    layers, layer = [], back[IPv6].payload
    while type(layer) in KINDS:
        layers.append(layer)
        layer = layer.payload
    assert [type(x) for x in layers] == [type(x) for x in chain], back.summary()
    assert isinstance(layer, UDP) and (layer.sport, layer.dport) == (4242, 53)
    assert bytes(layer.payload) == body
    assert len(chain) <= 3
    assert all(type(x) is not IPv6ExtHdrHopByHop for x in layers[1:])        # hop-by-hop first only
    assert sum(type(x) is IPv6ExtHdrFragment for x in layers) <= (1 if seed % 4 else 0)
    for x in layers:
        size = len(bytes(x)) - len(bytes(x.payload))
        assert size % 8 == 0 and 8 <= size <= 56, (x.summary(), size)
        if type(x) is IPv6ExtHdrFragment:
            assert (x.offset, x.m) == (0, 1)                                # a first fragment
        elif type(x) is IPv6ExtHdrRouting:
            assert x.segleft == len(x.addresses) <= 2
        else:
            assert 8 <= size <= 32
    if not chain:
        assert words == ""
    else:
        plural = "s" if len(chain) > 1 else ""
        names = ", ".join(KINDS[type(x)] for x in chain)
        assert words == f" behind {len(chain)} IPv6 extension header{plural} ({names})"


def test_ipv6_chains_vary_in_length_and_kind():
    r = rng()
    seen = [sampling.ipv6_chain(r)[0] for _ in range(DRAWS)]
    assert {len(c) for c in seen} == {0, 1, 2, 3}
    assert {type(x) for c in seen for x in c} == set(KINDS)
    assert {len(bytes(x)) for c in seen for x in c if type(x) is IPv6ExtHdrDestOpt} == {8, 16, 24, 32}
    layers, words = sampling.ipv6_chain(r, 3, fragment=False)
    assert len(layers) == 3 and "fragment" not in words
    assert sampling.ipv6_chain(r, 0) == ([], "")


def test_the_same_seed_draws_the_same_packets():
    def draw(seed):
        r = rng(seed)
        chain, _ = sampling.ipv6_chain(r, 2)
        tags, _ = sampling.vlans(r)
        return (sampling.ipv4(r), sampling.ipv6(r), sampling.port(r), sampling.payload(r),
                sampling.mac(r), [bytes(t) for t in tags], [bytes(x) for x in chain],
                sampling.near_carry(r))
    assert draw(7) == draw(7) and draw(7) != draw(8)


# --- one's complement sums -----------------------------------------------------------------------

def test_ones_sum_of_rfc_1071s_worked_example():
    """RFC 1071, section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (2ddf0, the carry folded)."""
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert sampling.ones_sum(data) == 0xddf2
    checksum = ~0xddf2 & 0xffff
    assert sampling.ones_sum(data + checksum.to_bytes(2, "big")) == 0xffff   # it verifies


def test_ones_add_adds_the_carry_back_around():
    assert sampling.ones_add(0x0001, 0xf203) == 0xf204
    assert sampling.ones_add(0xffff, 0x0001) == 0x0001
    assert sampling.ones_add(0x8000, 0x8000) == 0x0001
    assert sampling.ones_add(0xffff, 0xffff) == 0xffff
    assert sampling.ones_add(0x1234, 0xedcb) == 0xffff                 # x + ~x: negative zero
    assert sampling.ones_add(0, 0) == 0


def test_ones_sum_pads_an_odd_length_and_folds_like_the_long_sum():
    assert sampling.ones_sum(b"") == 0 and sampling.ones_sum(b"\xab") == 0xab00
    assert sampling.ones_sum(b"\x00\x01\xf2") == 0xf201
    r = rng()
    for _ in range(200):
        data = sampling.payload(r, 0, 80)
        words = data + (b"\x00" if len(data) % 2 else b"")
        total = sum(int.from_bytes(words[i:i + 2], "big") for i in range(0, len(words), 2))
        while total >> 16:
            total = (total & 0xffff) + (total >> 16)
        assert sampling.ones_sum(data) == total, data.hex()


def test_near_carry_lies_within_0x100_of_either_end():
    r = rng()
    values = [sampling.near_carry(r) for _ in range(MANY)]
    assert all(v <= 0xff or v >= 0xff00 for v in values)
    assert min(values) == 0x0000 and max(values) == 0xffff
    assert max(v for v in values if v <= 0xff) > 0xf0 and min(v for v in values if v >= 0xff00) < 0xff10
    assert 0.35 < sum(v <= 0xff for v in values) / len(values) < 0.65  # both ends, about evenly
    assert collections.Counter(values).most_common(1)[0][1] < 20       # no favourite value
    steered = [sampling.near_carry(r, low=1, high=0xfffe) for _ in range(MANY)]
    assert all(1 <= v <= 0x100 or 0xfeff <= v <= 0xfffe for v in steered)
    assert min(steered) == 1 and max(steered) == 0xfffe
    assert max(v for v in steered if v <= 0x100) > 0xf0
    assert min(v for v in steered if v >= 0xfeff) < 0xff0f


# --- steering a checksum -------------------------------------------------------------------------

def _v4(r, l4):
    ip = IP(src=sampling.ipv4(r), dst=sampling.ipv4(r), ttl=r.randrange(1, 256))
    return Ether(src=CM, dst=SM) / ip / l4


def _packet(r, layer, most=40):
    """(packet, class): a random packet with `layer` in it and 2 to `most` bytes behind its header;
    for ICMPv6EchoRequest, an echo request or reply (the class says which)."""
    body = sampling.payload(r, 2, most)
    if layer is UDP:
        return _v4(r, UDP(sport=sampling.port(r), dport=sampling.port(r)) / body), UDP
    if layer is TCP:
        return _v4(r, TCP(sport=sampling.port(r), dport=sampling.port(r), seq=r.randrange(1 << 32),
                          flags="PA") / body), TCP
    if layer is ICMP:
        return _v4(r, ICMP(type=8, id=r.randrange(1 << 16), seq=r.randrange(1 << 16)) / body), ICMP
    if layer is IP:
        return _v4(r, UDP(sport=sampling.port(r), dport=53) / body), IP
    echo = r.choice((ICMPv6EchoRequest, ICMPv6EchoReply))
    return (Ether(src=CM, dst=SM) / IPv6(src=sampling.ipv6(r), dst=sampling.ipv6(r))
            / echo(id=r.randrange(1 << 16), seq=r.randrange(1 << 16), data=body)), echo


def _field(kind):
    return "cksum" if kind in (ICMPv6EchoRequest, ICMPv6EchoReply) else "chksum"


def _recomputed(pkt, kind):
    """The checksum scapy computes for layer `kind` of `pkt` from scratch."""
    copy = Ether(bytes(pkt))
    setattr(copy[kind], _field(kind), None)
    return getattr(Ether(bytes(copy))[kind], _field(kind))


# values across the whole 16-bit range: both ends, around each carry, and seeded random ones
VALUES = sorted({0x0000, 0x0001, 0x00ff, 0x0100, 0x7fff, 0x8000, 0xfeff, 0xff00, 0xfffe, 0xffff}
                | {random.Random(5).randrange(0x10000) for _ in range(30)})
LAYERS = [IP, UDP, TCP, ICMP, ICMPv6EchoRequest]


def _impossible(layer, value):
    """0xffff needs every covered word zero (never: each of these has a non-zero field); UDP over
    IPv4 sends a computed 0x0000 as 0xffff, so 0x0000 is never seen on the wire."""
    return value == (0x0000 if layer is UDP else 0xffff)


@pytest.mark.parametrize("layer", LAYERS, ids=lambda c: c.__name__)
def test_with_checksum_makes_the_checksum_asked_for_across_the_range(layer):
    r = rng(LAYERS.index(layer))
    for value in VALUES:
        if _impossible(layer, value):
            continue
        before, kind = _packet(r, layer)
        after = sampling.with_checksum(before, kind, value)
        field = _field(kind)
        assert getattr(after[kind], field) == value, (layer.__name__, hex(value))
        assert _recomputed(after, kind) == value, (layer.__name__, hex(value))   # scapy agrees
        if IP in after:
            assert sampling.checksum_ok(after[IP])                     # the IP header still right
            if layer is not IP:
                assert sampling.checksum_ok(after[kind])
        sent = Ether(bytes(before))
        assert isinstance(after, Ether) and len(bytes(after)) == len(bytes(sent))
        if layer is IP:                                                # only the identification
            assert bytes(after[IP].payload) == bytes(sent[IP].payload)
            assert [after[IP].getfieldval(f) for f in ("src", "dst", "ttl", "len")] == \
                [sent[IP].getfieldval(f) for f in ("src", "dst", "ttl", "len")]
        else:                                                          # only the first 2 bytes
            body = bytes(sent[kind].data if field == "cksum" else sent[kind].payload)
            now = bytes(after[kind].data if field == "cksum" else after[kind].payload)
            assert len(now) == len(body) and now[2:] == body[2:]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda c: c.__name__)
def test_with_checksum_raises_where_no_word_can_make_it(layer):
    value = 0x0000 if layer is UDP else 0xffff
    r = rng()
    for _ in range(5):
        pkt, kind = _packet(r, layer)
        with pytest.raises(LabError, match=f"no choice of one word makes the {kind.__name__} "
                                           f"checksum {value:#06x}"):
            sampling.with_checksum(pkt, kind, value)


def test_with_checksum_needs_a_word_it_may_choose():
    short = Ether(src=CM, dst=SM) / IP(dst="198.18.0.1") / UDP() / b"x"
    with pytest.raises(LabError, match="needs 2 bytes of payload behind UDP"):
        sampling.with_checksum(short, UDP, 0x1234)
    with pytest.raises(LabError, match="cannot steer the checksum of IPv6"):
        sampling.with_checksum(Ether(src=CM, dst=SM) / IPv6(dst="fd00::1") / UDP() / b"xy", IPv6, 1)


# --- verifying a checksum ------------------------------------------------------------------------

def _flipped(wire, offset, bit):
    return wire[:offset] + bytes([wire[offset] ^ (1 << bit)]) + wire[offset + 1:]


@pytest.mark.parametrize("layer", [IP, UDP, TCP, ICMP], ids=lambda c: c.__name__)
def test_checksum_ok_on_scapy_built_packets_and_not_after_one_flipped_bit(layer):
    r = rng()
    for _ in range(6):
        wire = bytes(_packet(r, layer, most=12)[0])
        pkt = Ether(wire)
        assert sampling.checksum_ok(pkt[layer]), pkt.summary()
        if layer is IP:               # every header byte but version, header length, total length
            where = [14 + 1, *range(14 + 4, 14 + 20)]
        else:                         # its checksum, the message behind its header, and for UDP
            head, at = {UDP: (8, 6), TCP: (20, 16), ICMP: (8, 2)}[layer]     # and TCP the addresses
            start = 14 + 20
            where = [start + at, start + at + 1, *range(start + head, len(wire)),
                     *(range(14 + 12, 14 + 20) if layer is not ICMP else ())]
        for offset in where:
            for bit in range(8):
                bad = Ether(_flipped(wire, offset, bit))
                assert not sampling.checksum_ok(bad[layer]), (pkt.summary(), offset, bit)


def test_checksum_ok_accepts_either_zero_and_ignores_ethernet_padding():
    """A UDP checksum that came out 0x0000 is sent as 0xffff; a short frame is padded to 60 bytes
    behind the IP packet (the IP length says where the packet ends, UDP's own length too; TCP
    has none: a padded SYN once failed, its length taken from the frame)."""
    r = rng()
    udp = sampling.with_checksum(_packet(r, UDP)[0], UDP, 0xffff)
    assert udp[UDP].chksum == 0xffff and sampling.checksum_ok(udp[UDP])
    for layer in (UDP, ICMP, TCP):
        wire = bytes(Ether(src=CM, dst=SM) / IP(src="198.18.0.1", dst="198.18.0.2") / layer() / b"ab")
        for pad in (0x00, 0x5a):                                      # zeros, and whatever a NIC left
            padded = Ether(wire + bytes([pad]) * (60 - len(wire)))
            assert len(bytes(padded)) == 60 and padded[IP].len == len(wire) - 14
            assert sampling.checksum_ok(padded[IP]) and sampling.checksum_ok(padded[layer]), pad


def test_ipv4_options_are_no_ops_then_the_end_and_checksum_ok_covers_them():
    r = rng()
    sizes = set()
    for _ in range(DRAWS):
        options, words = sampling.ipv4_options(r)
        n = len(options)
        sizes.add(n)
        assert options == b"\x01" * (n - 1) + b"\x00" and words == f" behind {n} bytes of IPv4 options"
    assert sizes == set(range(4, 41, 4))                              # 4 to 40, in steps of 4
    for _ in range(5):
        options, _ = sampling.ipv4_options(r)
        wire = bytes(Ether(src=CM, dst=SM) / IP(src=sampling.ipv4(r), dst=sampling.ipv4(r),
                                                 options=options) / UDP() / b"xy")
        pkt = Ether(wire)
        assert pkt[IP].ihl * 4 == 20 + len(options) and bytes(pkt[IP].options[-1]) == b"\x00"
        assert sampling.checksum_ok(pkt[IP]) and sampling.checksum_ok(pkt[UDP])
        for offset in range(14 + 20, 14 + 20 + len(options)):         # a bit flipped in an option
            bad = Ether(_flipped(wire, offset, 0))
            assert not sampling.checksum_ok(bad[IP]), (len(options), offset)


def test_checksum_ok_cannot_check_other_layers():
    echo = Ether(bytes(Ether(src=CM, dst=SM) / IPv6(dst="fd00::1") / ICMPv6EchoRequest()))
    for layer in (IPv6, ICMPv6EchoRequest):
        with pytest.raises(LabError, match=f"checksum_ok cannot check {echo[layer].name}"):
            sampling.checksum_ok(echo[layer])


def test_checksum_ok_checks_udp_and_tcp_over_ipv4_only_and_says_so():
    for layer in (UDP, TCP):
        six = Ether(bytes(Ether(src=CM, dst=SM) / IPv6(dst="fd00::1") / layer()))
        with pytest.raises(LabError, match=f"checksum_ok checks {six[layer].name} over IPv4 only, not over IPv6"):
            sampling.checksum_ok(six[layer])


def test_with_checksum_keeps_the_bytes_when_scapy_reads_the_payload_as_dns():
    """Once scapy's DNS layer is loaded (scapy.all loads it; in `make test` an earlier test had),
    UDP to port 53 is read as DNS, and random bytes read as DNS do not build back to themselves:
    a packet made with a chosen IP checksum came out a byte short. What UDP carries stays Raw."""
    import scapy.layers.dns  # noqa: F401 — binds UDP port 53 to DNS, as scapy.all does
    r = rng(53)
    for value in (0x0000, 0x1234, 0xfffe):
        for _ in range(10):
            before = _v4(r, UDP(sport=sampling.port(r), dport=53) / sampling.payload(r, 2, 40))
            after = sampling.with_checksum(before, IP, value)
            wire = bytes(after)
            assert len(wire) == len(bytes(before)) and bytes(sampling.dissect(wire)) == wire
            assert Ether(wire)[IP].chksum == value and sampling.checksum_ok(Ether(wire)[IP])
