"""Lab 09a — the cache for IPv6 clients: GET hits from IPv6 answered from XDP with a valid reply."""
import contextlib
import os
import socket
import string
import struct

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import (IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
                                IPv6ExtHdrRouting, PadN)
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Padding, Raw

from xdplab import kvstore, sampling
from xdplab.checks import case, word
from xdplab.counters import snmp
from xdplab.errors import LabError
from xdplab.testrun import diff_packets

TITLE = "The cache for IPv6 clients"
ATTACH = "server"
HINTS = [
    "Write cache_ipv6() after cache_ipv4(), step by step. The UDP header follows the 40-byte IPv6 "
    "header (parse_ip6hdr() returns IPPROTO_UDP; anything else goes to the server). The reply "
    "swaps the MAC addresses, the two 128-bit addresses (struct in6_addr: copy them whole) and "
    "the ports, and gets hop limit 64.",
    "IPv6 has no header checksum, but it has two lengths: ip6h->payload_len (the bytes after the "
    "40-byte header) and udph->len, both 8 + REPLY_LEN in the reply. The UDP checksum is "
    "mandatory: a request with checksum 0 or a wrong one goes to the server, and the reply needs "
    "a right one, which is never 0.",
    "The IPv6 pseudo-header is both addresses (32 bytes, side by side in the header: "
    "bpf_csum_diff(NULL, 0, (__be32 *)&ip6h->saddr, 32, 0) sums them), the UDP length and next "
    "header 17. Add the UDP header (checksum field 0) and the payload, fold with csum_fold64(), "
    "take ~, and send a computed 0 as 0xffff. Check the request's checksum the same way before "
    "answering.",
]

C, S, C6, S6 = "10.11.0.1", "10.11.0.2", "fd00:11::1", "fd00:11::2"
CM, SM = "02:58:4c:00:00:01", "02:58:4c:00:00:02"
PORT, KEY_LEN, VAL_LEN = kvstore.PORT, kvstore.KEY_LEN, kvstore.VAL_LEN
HOP_LIMIT = 64
TEXT = (string.ascii_letters + string.digits + string.punctuation).encode()   # no space


# -- the cache map ------------------------------------------------------------------------------
@contextlib.contextmanager
def cache_map(t):
    """The program's `cache` map as a kvstore.CacheMap, through its pin (as the server uses it)."""
    cm = kvstore.CacheMap(t.prog.maps["cache"].pin("check_cache"))
    try:
        yield cm
    finally:
        os.close(cm.fd)


def prime(t, cached=None, absent=()):
    """Put `cached` ({key: value}, bytes) into the cache and take the keys `absent` out."""
    with cache_map(t) as cm:
        for k, v in (cached or {}).items():
            if not cm.fill(k, v):
                raise LabError(f"the check could not store {k!r} in the program's cache map")
        for k in absent:
            cm.delete(k)


def reuse(t, k, other, v):
    """An entry under key k that holds another key (`other`): what a reader sees when the element
    was deleted and reused for another key meanwhile."""
    with cache_map(t) as cm:
        if cm.lib.bpf_map_update_elem(cm.fd, k, bytes(kvstore.LOCK_LEN) + other + v,
                                      kvstore.BPF_F_LOCK) != 0:
            raise LabError("the check could not write an entry into the program's cache map")


# -- requests and their replies -----------------------------------------------------------------
def text(rng, n):
    return bytes(rng.choice(TEXT) for _ in range(n))


def get6(k, src=C6, dst=S6, sport=40000, hlim=64, tc=0, fl=0, mac=CM, tags=(), chain=(),
         data=None, dport=PORT, **udp):
    """An IPv6 request of key k (a GET unless `data` says otherwise) to the server's port."""
    return sampling.stack(Ether(src=mac, dst=SM), tags,
                          IPv6(src=src, dst=dst, hlim=hlim, tc=tc, fl=fl), chain,
                          UDP(sport=sport, dport=dport, **udp), Raw(b"GET " + k if data is None else data))


def get4(k, src=C, dst=S, sport=40000, ttl=64, mac=CM, tags=(), data=None, pad=0, ip=None, **udp):
    frame = sampling.stack(Ether(src=mac, dst=SM), tags, IP(src=src, dst=dst, ttl=ttl, **(ip or {})),
                           UDP(sport=sport, dport=PORT, **udp), Raw(b"GET " + k if data is None else data))
    return frame / Padding(b"\x00" * pad) if pad else frame


def set_request(k, v):
    return b"SET " + k + b" " + v


def ipof(pkt):
    return pkt[IPv6] if IPv6 in pkt else pkt[IP]


def replies(request, value):
    """The frames the cache may send for GET `request` when its key holds `value`: the request's
    frame with the MAC addresses, IP addresses and ports swapped, hop limit (TTL) 64, and as
    payload what the server itself sends (kvstore.Store.handle); lengths and checksums computed
    by scapy from scratch. Over IPv6 the traffic class and flow label may each be kept or zeroed;
    over IPv4 the UDP checksum may be 0 ("none computed", RFC 768)."""
    req = Ether(bytes(request))
    asked = bytes(req[UDP].payload)
    if Padding in req:
        asked = asked[:len(asked) - len(bytes(req[Padding]))]
    payload = kvstore.Store(data={asked[4:]: value}).handle(asked)
    want = req.copy()
    want.src, want.dst = req.dst, req.src
    ip, rip = ipof(want), ipof(req)
    ip.src, ip.dst = rip.dst, rip.src
    if isinstance(ip, IPv6):
        ip.hlim, ip.plen = HOP_LIMIT, None
    else:
        ip.ttl, ip.len, ip.chksum = HOP_LIMIT, None, None
    udp = want[UDP]
    udp.sport, udp.dport, udp.len, udp.chksum = req[UDP].dport, req[UDP].sport, None, None
    udp.remove_payload()
    udp.add_payload(Raw(payload))
    out = [bytes(want)]
    if isinstance(ip, IPv6):
        for tc, fl in ((rip.tc, 0), (0, rip.fl), (0, 0)):
            ip.tc, ip.fl = tc, fl
            if bytes(want) not in out:
                out.append(bytes(want))
    else:
        udp.chksum = 0
        out.append(bytes(want))
    return out


def reply_checksum(request, value):
    """The UDP checksum of the reply to GET `request` with `value`, summed here (RFC 1071 over
    the pseudo-header, the UDP header and the payload), a computed 0 given as 0xffff."""
    req = Ether(bytes(request))
    ip, udp = ipof(req), req[UDP]
    k = bytes(udp.payload)[4:4 + KEY_LEN]
    payload = b"VALUE " + k + b" " + value
    dgram = struct.pack("!HHHH", udp.dport, udp.sport, 8 + len(payload), 0) + payload
    if isinstance(ip, IPv6):
        pseudo = (socket.inet_pton(socket.AF_INET6, ip.dst) + socket.inet_pton(socket.AF_INET6, ip.src)
                  + struct.pack("!I", len(dgram)) + b"\x00\x00\x00\x11")
    else:
        pseudo = (socket.inet_aton(ip.dst) + socket.inet_aton(ip.src)
                  + struct.pack("!BBH", 0, 17, len(dgram)))
    return ~sampling.ones_sum(pseudo + dgram) & 0xffff or 0xffff


def steered(request, target, rng):
    """A value (32 printable bytes, no space) that makes the reply to `request` carry UDP checksum
    `target` (0xffff: it computes to 0): value[1:3] is the 16-bit word chosen so."""
    want = 0xffff if target == 0xffff else ~target & 0xffff     # the one's complement sum wanted
    for _ in range(5000):
        v = bytearray(text(rng, VAL_LEN))
        v[1:3] = b"\x00\x00"
        rest = ~reply_checksum(request, bytes(v)) & 0xffff        # the sum without that word
        w = sampling.ones_add(want, ~rest & 0xffff)
        v[1:3] = w.to_bytes(2, "big")
        if all(b in TEXT for b in v[1:3]) and reply_checksum(request, bytes(v)) == target:
            value = bytes(v)
            got = Ether(replies(request, value)[0])[UDP].chksum
            if got != target:
                raise LabError(f"the check steered a reply checksum to {got:#06x}, not {target:#06x}")
            return value
    raise LabError(f"the check found no printable value whose reply has checksum {target:#06x}")


# -- judging what came out ----------------------------------------------------------------------
FIELDS = {("Ether", "dst"): "destination MAC address", ("Ether", "src"): "source MAC address",
          ("Ether", "type"): "ethertype", ("IPv6", "version"): "IP version",
          ("IPv6", "plen"): "IPv6 payload length", ("IPv6", "nh"): "next header",
          ("IPv6", "hlim"): "hop limit", ("IPv6", "src"): "IPv6 source address",
          ("IPv6", "dst"): "IPv6 destination address", ("IPv6", "tc"): "traffic class",
          ("IPv6", "fl"): "flow label", ("IP", "len"): "IPv4 total length", ("IP", "ttl"): "TTL",
          ("IP", "src"): "IPv4 source address", ("IP", "dst"): "IPv4 destination address",
          ("IP", "chksum"): "IPv4 header checksum", ("UDP", "sport"): "UDP source port",
          ("UDP", "dport"): "UDP destination port", ("UDP", "len"): "UDP length",
          ("UDP", "chksum"): "UDP checksum", ("Raw", "load"): "data"}


def shown(field, value):
    if field in ("chksum", "type") and isinstance(value, int):
        return f"{value:#06x}"
    if isinstance(value, bytes):
        return repr(value) if len(value) <= 60 else repr(value[:57]) + "..."
    return str(value)


def scratch_checksum(pkt):
    """The UDP checksum of `pkt` computed by scapy from scratch over the bytes it carries."""
    fresh = pkt.copy()
    del fresh[UDP].chksum
    return Ether(bytes(fresh))[UDP].chksum


def explain(out_bytes, wants):
    """What is wrong with the frame `out_bytes` when it should be one of `wants`, in words."""
    out = Ether(out_bytes)
    want_bytes = min(wants, key=lambda w: len(diff_packets(Ether(w), out)))
    want = Ether(want_bytes)
    problems = []
    for c in diff_packets(want, out):
        if c.field is None:
            problems.append(f"it has a {c.layer} layer the reply does not have" if c.before is None
                            else f"it lacks the reply's {c.layer} layer")
        elif (c.layer, c.field) in FIELDS:
            problems.append(f"its {FIELDS[c.layer, c.field]} is {shown(c.field, c.after)}, it "
                            f"should be {shown(c.field, c.before)}")
        else:
            problems.append(f"its {c.layer} field {c.field} is {shown(c.field, c.after)}, it should "
                            f"be {shown(c.field, c.before)}")
    if UDP in out and IPv6 in out and out[UDP].chksum == 0:
        problems.append("a UDP checksum of 0 is not allowed over IPv6: the client's kernel drops "
                        "such a datagram")
    elif UDP in out and out[UDP].chksum != 0:      # (0 over IPv4: none computed, allowed)
        try:
            scratch = scratch_checksum(out)
        except Exception:                          # a frame scapy cannot build again
            scratch = out[UDP].chksum
        if out[UDP].chksum != scratch:
            problems.append(f"its UDP checksum {out[UDP].chksum:#06x} does not even fit the bytes it "
                            f"carries (summed from scratch: {scratch:#06x})")
    if len(out_bytes) != len(want_bytes):
        problems.append(f"it is {len(out_bytes)} bytes long, the reply is {len(want_bytes)}")
    if not problems:
        problems.append("its bytes differ from the reply's")
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return "; ".join(problems[:5]) + more


def is_reply(request, value):
    """A check of the output: the reply to GET `request`, byte for byte (see replies())."""
    wants = replies(request, value)

    def look(result):
        return None if result.output_bytes in wants else explain(result.output_bytes, wants)
    return look


def unchanged(result):
    if result.output_bytes == result.input_bytes:
        return None
    fields = ", ".join(f"{c.layer}.{c.field}" if c.field else f"a {c.layer} layer" for c in result.diff)
    return (f"your program changed it ({fields or 'its bytes'}); what the cache does not answer "
            "must reach the server as it came")


def expect_reply(t, what, request, value, about=None):
    t.expect(what, request, "tx", check=is_reply(request, value), about=about)


def expect_pass(t, what, request, about=None):
    t.expect(what, request, "pass", check=unchanged, about=about)


def expect_either(t, what, request, value, about=None):
    """A frame the cache may leave to the server (unchanged) or answer right (a VLAN-tagged
    GET: the reply must keep the tags)."""
    r = t.prog.test_run(request)
    if r.verdict == "XDP_PASS" and r.output_bytes == r.input_bytes:
        return
    if r.verdict == "XDP_TX" and r.output_bytes in replies(request, value):
        return
    problem = unchanged(r) if r.verdict == "XDP_PASS" else \
        explain(r.output_bytes, replies(request, value)) if r.verdict == "XDP_TX" else None
    t.fail(f"{what} was {word(r.verdict)}" + (f", but {problem}" if problem else "") +
           "; it should be passed unchanged, or answered with the right reply in the same VLAN",
           about)


# -- cases on single frames ---------------------------------------------------------------------
KEY, OTHER = b"key00042", b"key00043"
VALUE = kvstore.value("hello-from-the-XDP-cache").encode()


def hit(what, request, value=VALUE, hidden=False, about=None):
    """A case: `request`, a GET of a cached key, is answered with exactly the server's reply."""
    k = bytes(Ether(bytes(request))[UDP].payload)[4:4 + KEY_LEN]

    def run(t):
        prime(t, {k: value})
        expect_reply(t, what, request, value, about)
        return f"{what} was answered from XDP: the reply is byte for byte what the server sends"
    return case(f"{what} → answered (XDP_TX)", hidden, about)(run)


def passed(what, request, cached=None, absent=(), hidden=False, about=None):
    """A case: `request` goes to the server unchanged (XDP_PASS)."""
    def run(t):
        prime(t, cached, absent)
        expect_pass(t, what, request, about)
        return f"{what} was passed to the server unchanged"
    return case(f"{what} → passed to the server", hidden, about)(run)


def corrupted(frame, flip=0x0101):
    pkt = Ether(bytes(frame))
    pkt[UDP].chksum ^= flip
    return Ether(bytes(pkt))


# Reply checksums where a fold that loses a carry shows: near 0xffff and 0x0000 as the words are
# on the wire, and the same byte-swapped (a little-endian CPU adds the words as it loads them).
NEAR = (0xffff, 0xfffe, 0xfffd, 0xfeff, 0xfdff, 0xfcff, 0xff00, 0x0100, 0x0001, 0x00ff)


def swapped(word):
    return ((word & 0xff) << 8) | (word >> 8)


def near(target, i):
    """A GET from the client whose reply's UDP checksum is `target`. The client's port ends in
    byte 0xff (0x9cff, 0x9dff...), so that the sum of the reply's words carries more than once
    whichever byte order it is added in: a fold that loses a carry then shows."""
    import random
    request = get6(KEY, sport=0x9cff + 0x100 * i)
    return request, steered(request, target, random.Random(target))


FAR6 = ("2001:db8:a1a1:b2b2:c3c3:d4d4:e5e5:f6f6", "fd00:11:1111:2222:3333:4444:5555:2")
hdr_cases = [
    ("a hop-by-hop options header", [IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\x00" * 4)])]),
    ("a destination options header", [IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00" * 12)])]),
    ("a routing header (no segments left)", [IPv6ExtHdrRouting(segleft=0)]),
    ("a fragment header (offset 0, the only fragment)", [IPv6ExtHdrFragment(offset=0, m=0, id=7)]),
    ("hop-by-hop and destination options headers",
     [IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00" * 4)])]),
]

CASES = [
    hit(f"An IPv6 GET of a cached key from {C6}", get6(KEY)),
    passed("An IPv6 GET of a key that is not cached", get6(OTHER), absent=[OTHER]),
    passed("An IPv6 SET of a cached key", get6(KEY, data=set_request(KEY, kvstore.value("new").encode())),
           cached={KEY: VALUE}),
    hit(f"An IPv4 GET of a cached key from {C}", get4(KEY)),
    # cases the notebook does not show
    hit(f"An IPv6 GET from {FAR6[0]} to {FAR6[1]}", get6(KEY, src=FAR6[0], dst=FAR6[1]), hidden=True,
        about="an IPv6 request between addresses that differ in all 128 bits"),
    hit("An IPv6 GET that arrives with hop limit 1", get6(KEY, hlim=1), hidden=True,
        about="an IPv6 request that arrives with a small hop limit"),
    hit("An IPv6 GET that arrives with hop limit 255, traffic class 0xb8 and flow label 0x12345",
        get6(KEY, hlim=255, tc=0xb8, fl=0x12345), hidden=True,
        about="an IPv6 request with a large hop limit, a traffic class and a flow label"),
    passed("An IPv6 GET of a cached key with UDP checksum 0", get6(KEY, chksum=0),
           cached={KEY: VALUE}, hidden=True, about="an IPv6 request with UDP checksum 0"),
    passed("An IPv6 GET of a cached key with a wrong UDP checksum", corrupted(get6(KEY)),
           cached={KEY: VALUE}, hidden=True, about="an IPv6 request whose UDP checksum is wrong"),
    *[passed(f"An IPv6 GET of a cached key behind {words}", get6(KEY, chain=chain), cached={KEY: VALUE},
             hidden=True, about="an IPv6 request behind extension headers")
      for words, chain in hdr_cases],
    *[hit(f"An IPv6 GET whose reply's UDP checksum is {target:#06x}"
          + (" (it computes to 0, sent as 0xffff)" if target == 0xffff else ""), *near(target, i), hidden=True,
          about="a GET whose reply's UDP checksum is near 0x0000 or 0xffff")
      for i, target in enumerate(NEAR)],
    *[passed(f"An IPv6 request {data!r}", get6(KEY, data=data), cached={KEY: VALUE}, hidden=True,
             about="a malformed IPv6 request")
      for data in (b"GET key0004", b"GET key000421", b"GOT key00042", b"get key00042", b"GET_key00042",
                   b"STATS")],
    passed("An IPv6 GET whose UDP length says 21 bytes, one more than the datagram holds",
           get6(KEY, len=21), cached={KEY: VALUE}, hidden=True,
           about="an IPv6 request whose UDP length does not fit"),
    passed("An IPv6 GET of a cached key to UDP port 11212", get6(KEY, dport=PORT + 1), cached={KEY: VALUE},
           hidden=True, about="a GET to another UDP port"),
    passed("An IPv6 frame cut in the middle of its header", Ether(bytes(get6(KEY))[:40]),
           cached={KEY: VALUE}, hidden=True, about="a frame that ends inside its IPv6 header"),
    passed("An IPv4 GET of a key that is not cached", get4(OTHER), absent=[OTHER], hidden=True,
           about="an IPv4 GET of a key that is not cached"),
    passed("An IPv4 GET of a cached key with a wrong UDP checksum", corrupted(get4(KEY)),
           cached={KEY: VALUE}, hidden=True, about="an IPv4 request whose UDP checksum is wrong"),
    hit("An IPv4 GET without a UDP checksum (0: none computed, allowed over IPv4)", get4(KEY, chksum=0),
        hidden=True, about="an IPv4 request without a UDP checksum"),
    hit("An IPv4 GET padded to the Ethernet minimum of 60 bytes", get4(KEY, pad=6), hidden=True,
        about="an IPv4 request padded to 60 bytes"),
    passed("The first fragment of an IPv4 GET", get4(KEY, ip={"flags": "MF", "id": 9}),
           cached={KEY: VALUE}, hidden=True, about="an IPv4 fragment"),
]


@case("An IPv6 GET of a key whose cache entry holds another key → passed", hidden=True,
      about="a GET of a key whose entry was reused")
def reused(t):
    reuse(t, b"key00044", b"key00045", VALUE)
    expect_pass(t, "An IPv6 GET of key00044 whose cache entry holds key00045 (the element was "
                "reused)", get6(b"key00044"), about="a GET of a key whose entry was reused")
    return "a GET of a key whose entry holds another key was passed to the server"


@case("IPv6 and IPv4 GETs of a cached key in VLAN-tagged frames → passed, or answered in the VLAN",
      hidden=True, about="a GET in a VLAN-tagged frame")
def tagged(t):
    prime(t, {KEY: VALUE})
    for what, frame in (("An IPv6 GET in VLAN 10", get6(KEY, tags=[Dot1Q(vlan=10)])),
                        ("An IPv4 GET in QinQ (VLAN 20 inside 100)",
                         get4(KEY, tags=[Dot1AD(vlan=100), Dot1Q(vlan=20)]))):
        expect_either(t, what, frame, VALUE, about="a GET in a VLAN-tagged frame")
    return "GETs in VLAN-tagged frames were left to the server or answered in their VLAN"


# -- random frames ------------------------------------------------------------------------------
def malformed(rng, k):
    """(payload, words): a request the server answers with ERROR (or not at all)."""
    return rng.choice([
        (b"GET " + k[:rng.randrange(1, KEY_LEN)], "a GET with a short key"),
        (b"GET " + k + text(rng, rng.randrange(1, 5)), "a GET with a long key"),
        (rng.choice((b"GOT ", b"get ", b"GET_", b"GETS", b"XET ", b"GE T")) + k, "a wrong verb"),
        (b"SET " + k, "a SET without a value"),
        (b"STATS", "a STATS request"),
    ])


def draw(rng):
    """A random frame: (what, frame, expectation, value, cached, absent, kind). The expectation
    is "reply" (answered, byte for byte), "pass" (unchanged) or "either" (VLAN-tagged GETs)."""
    k, v = text(rng, KEY_LEN), text(rng, VAL_LEN)
    if rng.random() < 0.8:
        src = rng.choice((C6, sampling.ipv6(rng), sampling.ipv6(rng, prefix=f"{rng.randrange(0x2000, 0x4000):x}")))
        hlim = rng.choice((rng.randrange(1, 256), 1, 64, 255))
        fields = dict(src=src, dst=rng.choice((S6, S6, sampling.ipv6(rng))), sport=sampling.port(rng),
                      hlim=hlim, tc=rng.choice((0, rng.randrange(256))), fl=rng.choice((0, rng.randrange(1 << 20))),
                      mac=sampling.mac(rng))
        kind = rng.choices(["hit", "miss", "set", "bad", "zero", "ext", "malformed", "vlan"],
                           weights=[45, 8, 8, 6, 5, 12, 10, 6])[0]
        at = f"from {src} (hop limit {hlim})"
        if kind == "hit":
            frame = get6(k, **fields)
            if rng.random() < 0.6:
                carry = sampling.near_carry(rng, low=1)
                v = steered(frame, rng.choice((carry, swapped(carry) or 0xffff)), rng)
            return (f"An IPv6 GET of a cached key {at}, reply checksum {reply_checksum(frame, v):#06x}",
                    frame, "reply", v, {k: v}, (), "IPv6 GETs of cached keys")
        if kind == "miss":
            return (f"An IPv6 GET of a key that is not cached {at}", get6(k, **fields), "pass", v, None,
                    (k,), "IPv6 GETs of keys that are not cached")
        if kind == "set":
            cached = rng.random() < 0.7
            return (f"An IPv6 SET of a{' cached' if cached else 'n uncached'} key {at}",
                    get6(k, data=set_request(k, text(rng, VAL_LEN)), **fields), "pass", v,
                    {k: v} if cached else None, () if cached else (k,), "IPv6 SETs")
        if kind == "bad":
            frame = corrupted(get6(k, **fields), rng.randrange(1, 0xffff))
            return (f"An IPv6 GET of a cached key {at} with a wrong UDP checksum", frame, "pass", v,
                    {k: v}, (), "IPv6 GETs whose UDP checksum is wrong")
        if kind == "zero":
            return (f"An IPv6 GET of a cached key {at} with UDP checksum 0", get6(k, chksum=0, **fields),
                    "pass", v, {k: v}, (), "IPv6 GETs with UDP checksum 0")
        if kind == "ext":
            chain, words = sampling.ipv6_chain(rng, rng.randrange(1, 4))
            return (f"An IPv6 GET of a cached key {at}{words}", get6(k, chain=chain, **fields), "pass", v,
                    {k: v}, (), "IPv6 GETs behind extension headers")
        if kind == "malformed":
            data, words = malformed(rng, k)
            return (f"An IPv6 request {at}: {words} ({data!r})", get6(k, data=data, **fields), "pass", v,
                    {k: v}, (), "malformed IPv6 requests")
        tags, words = sampling.vlans(rng, rng.choice((1, 2)))
        return (f"An IPv6 GET of a cached key {at}{words}", get6(k, tags=tags, **fields), "either", v,
                {k: v}, (), "IPv6 GETs in VLAN-tagged frames")
    src, ttl = sampling.ipv4(rng), rng.randrange(1, 256)
    fields = dict(src=src, sport=sampling.port(rng), ttl=ttl, mac=sampling.mac(rng),
                  ip={"id": rng.randrange(1 << 16), "tos": rng.choice((0, 0x10, 0xb8)),
                      "flags": rng.choice(("", "DF"))}, pad=rng.choice((0, 0, 6)))
    kind = rng.choices(["hit", "zero", "miss", "set", "bad"], weights=[55, 10, 15, 10, 10])[0]
    at = f"from {src} (TTL {ttl})"
    if kind in ("hit", "zero"):
        frame = get4(k, chksum=0, **fields) if kind == "zero" else get4(k, **fields)
        return (f"An IPv4 GET of a cached key {at}{' without a UDP checksum' if kind == 'zero' else ''}",
                frame, "reply", v, {k: v}, (), "IPv4 GETs of cached keys")
    if kind == "miss":
        return (f"An IPv4 GET of a key that is not cached {at}", get4(k, **fields), "pass", v, None, (k,),
                "IPv4 GETs of keys that are not cached")
    if kind == "set":
        return (f"An IPv4 SET of a cached key {at}", get4(k, data=set_request(k, text(rng, VAL_LEN)), **fields),
                "pass", v, {k: v}, (), "IPv4 SETs")
    return (f"An IPv4 GET of a cached key {at} with a wrong UDP checksum",
            corrupted(get4(k, **fields), rng.randrange(1, 0xffff)), "pass", v, {k: v}, (),
            "IPv4 GETs whose UDP checksum is wrong")


@case("40 random frames: IPv6 GETs with random addresses, ports, hop limits, keys and values (reply "
      "checksums near 0x0000 and 0xffff), misses, SETs, bad and zero checksums, extension headers, "
      "malformed requests, VLAN tags, and IPv4", hidden=True,
      about="random IPv6 and IPv4 requests: hits with edge checksums, misses, SETs, bad checksums, "
            "extension headers, malformed ones")
def random_frames(t):
    for i in range(40):
        what, frame, expect, value, cached, absent, kind = draw(t.rng)
        what = f"{what} (random frame {i + 1} of 40)"
        prime(t, cached, absent)
        if expect == "reply":
            expect_reply(t, what, frame, value, about=kind)
        elif expect == "pass":
            expect_pass(t, what, frame, about=kind)
        else:
            expect_either(t, what, frame, value, about=kind)
        prime(t, absent=cached or ())            # each frame finds the cache as it was
    return ("40 random frames (IPv6 GETs with edge checksums, misses, SETs, bad checksums, "
            "extension headers, malformed requests, VLAN tags, IPv4) were answered or passed right")


# -- real traffic -------------------------------------------------------------------------------
def udp_errors(delta, v6):
    """The client's UDP error counters that moved, in words ("" when none did)."""
    names = ("Udp6InCsumErrors", "Udp6InErrors") if v6 else ("UdpInCsumErrors", "UdpInErrors")
    moved = [f"{n} +{delta[n]}" for n in names if delta.get(n)]
    return ", ".join(moved)


def ask(client, k, timeout=0.5):
    """GET k: the raw reply (bytes), or None when none comes within `timeout`."""
    client.send(kvstore.get_request(k))
    client.sock.settimeout(timeout)
    try:
        return client.sock.recv(2048)
    except socket.timeout:
        return None
    finally:
        client.sock.settimeout(client.timeout)


def traffic(t, ipv6, keys, rounds, tag):
    """The server with the program's cache, a client over IPv6 or IPv4: SET every key, GET each
    once (misses: the server answers and fills the cache), then `rounds` more times (hits).
    Returns (client, server, values) with both still running."""
    server = kvstore.Server(t.server, cache=t.prog.maps["cache"])
    try:
        client = kvstore.Client(t.client, t.server, ipv6=ipv6, timeout=0.5)
    except BaseException:
        server.stop()
        raise
    try:
        return client, server, exchange(t, client, ipv6, keys, rounds, tag)
    except BaseException:
        server.stop()
        client.close()
        raise


def exchange(t, client, ipv6, keys, rounds, tag):
    family = "IPv6" if ipv6 else "IPv4"
    values = {k: kvstore.value(f"{tag}-{k}") for k in keys}
    for k, v in values.items():
        client.set(k, v)
    start, before = client.stats(), snmp(t.client)
    for r in range(rounds + 1):
        for k, v in values.items():
            reply = ask(client, k)
            if reply != f"VALUE {k} {v}".encode():
                moved = udp_errors(snmp(t.client) - before, ipv6)
                who = "the server (a miss)" if r == 0 else "the cache (a hit)"
                if reply is None:
                    t.fail(f"GET {k} over {family}, to be answered by {who}, got no reply within 0.5 s"
                           + (f"; the client's kernel counted {moved}: it dropped a reply"
                              if moved else ""))
                t.fail(f"GET {k} over {family}, to be answered by {who}, got the reply {reply!r}; "
                       f"the server holds {v!r} for it")
    late = client.receive(timeout=0.2)
    if late:
        t.fail(f"after every GET over {family} had its reply, {len(late)} more came, e.g. {late[0]}: "
               "each GET must be answered once")
    delta, seen = snmp(t.client) - before, client.stats()
    got, asked = delta.get("Udp6InDatagrams" if ipv6 else "UdpInDatagrams", 0), len(keys) * (rounds + 1)
    moved = udp_errors(delta, ipv6)
    if moved or got != asked:
        t.fail(f"the client's kernel counted {moved or 'no UDP error'} and {got} {family} datagrams "
               f"received for {asked} GETs answered")
    reached = seen["gets"] - start["gets"]
    if reached != len(keys):
        t.fail(f"of {asked} GETs over {family}, {reached} reached the server; only the first GET of "
               f"each of the {len(keys)} keys (a miss) should, the cache answers the others")
    return values


@case("Real traffic over IPv6: every GET answered once with the right value, hits answered by the "
      "cache (the server never sees them), every reply accepted by the client's kernel")
def real_ipv6(t):
    keys = [f"six{i:05d}" for i in range(16)]
    client, server, _ = traffic(t, True, keys, rounds=3, tag="v6")
    try:
        before = client.stats()["gets"]
        stale = kvstore.coherence(client, keys[:8], rounds=2)
        if stale:
            k, v, first, second = stale[0]
            t.fail(f"after SET {k} over IPv6 to {v!r}, the GETs right after it returned {first!r} and "
                   f"{second!r}: SETs must reach the server, and the cache must not answer an old value")
        reached = client.stats()["gets"] - before
        if reached != 16:
            t.fail(f"after 16 SETs over IPv6, each followed by two GETs, {reached} of the 32 GETs "
                   "reached the server; the first of each pair should (a miss), not the second")
    finally:
        server.stop()
        client.close()
    return ("64 GETs over IPv6 answered once each, the right value every time: 16 misses by the "
            "server, 48 hits by the cache, which the server never saw; no UDP error on the client; "
            "after each SET the next GET saw the new value")


@case("Real traffic over IPv4: the cache still answers IPv4 clients")
def real_ipv4(t):
    client, server, _ = traffic(t, False, [f"four{i:04d}" for i in range(8)], rounds=2, tag="v4")
    server.stop()
    client.close()
    return ("24 GETs over IPv4 answered once each, the right value every time: 8 misses by the "
            "server, 16 hits by the cache; no UDP error on the client")
