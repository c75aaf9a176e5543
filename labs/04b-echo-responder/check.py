"""Lab 04b — ICMP echo responder: an echo request comes back as a valid echo reply, by XDP_TX."""
import xdplab
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from xdplab import sampling
from xdplab.checks import case, verdict
from xdplab.testrun import diff_packets

TITLE = "An ICMP echo responder with XDP_TX"
ATTACH = "server"
HINTS = [
    "A reply goes back where the request came from: the request's source (MAC and IP) is the "
    "reply's destination. XDP_TX sends the frame, as your program left it, back out of the same "
    "interface.",
    "Four changes make the reply: swap the MAC addresses, swap the IP addresses, set the ICMP "
    "type to ICMP_ECHOREPLY (0), and set the TTL to 64: the request's TTL is what it had left "
    "when it arrived, not what the reply needs. parsing_helpers.h has helpers for the two swaps.",
    "Swapping keeps every checksum right, but two 16-bit words change: (type, code), which the "
    "ICMP checksum covers, and (ttl, protocol), which the IPv4 header checksum covers. For each, "
    "save the word before, and csum_replace2() its checksum after.",
]


def TOPOLOGY():
    lab = xdplab.Lab.pair()
    lab.server.sysctl("net.ipv4.icmp_echo_ignore_all", 1)    # only the XDP program may answer
    return lab


C, S = "10.11.0.1", "10.11.0.2"
CM, SM = "02:58:4c:00:00:01", "02:58:4c:00:00:02"
TTL = 64                      # of every reply: what Linux sends its own packets with
request = Ether(src=CM, dst=SM) / IP(src=C, dst=S) / ICMP(type=8, id=7, seq=1) / (b"x" * 56)
last_hop = Ether(src=CM, dst=SM) / IP(src=C, dst=S, ttl=1) / ICMP(type=8, id=7, seq=9) / (b"y" * 56)


def reply_to(sent):
    """A check of the output packet: the valid echo reply to `sent` — MAC and IP addresses
    swapped, ICMP type 0, TTL 64, both checksums right, and nothing else changed (VLAN tags, IP
    options, id, sequence and data as they were)."""
    sent = Ether(bytes(sent))
    want = sent.copy()
    want.src, want.dst = sent.dst, sent.src
    want[IP].src, want[IP].dst = sent[IP].dst, sent[IP].src
    want[ICMP].type = 0
    want[IP].ttl = TTL

    def look(result):
        out = result.packet
        if out is None or ICMP not in out or IP not in out:
            return "what it sent back is not ICMP over IPv4"
        problems = []
        if (out.src, out.dst) != (want.src, want.dst):
            problems.append(f"its MAC addresses are {out.src} → {out.dst}, they should be "
                            f"{want.src} → {want.dst}")
        if (out[IP].src, out[IP].dst) != (want[IP].src, want[IP].dst):
            problems.append(f"its IP addresses are {out[IP].src} → {out[IP].dst}, they should be "
                            f"{want[IP].src} → {want[IP].dst}")
        if out[ICMP].type != 0:
            problems.append(f"its ICMP type is {out[ICMP].type}, it should be 0 (echo reply)")
        if out[IP].ttl != TTL:
            problems.append(f"its TTL is {out[IP].ttl}, it should be {TTL}: the reply crosses the "
                            f"routers the request crossed, and the request arrived with "
                            f"{sent[IP].ttl} left")
        fresh = out.copy()
        del fresh[ICMP].chksum, fresh[IP].chksum
        fresh = Ether(bytes(fresh))
        if not sampling.checksum_ok(out[IP]):
            problems.append(f"its IPv4 header checksum is {out[IP].chksum:#06x}, not {fresh[IP].chksum:#06x}")
        if not sampling.checksum_ok(out[ICMP]):
            problems.append(f"its ICMP checksum is {out[ICMP].chksum:#06x}, not {fresh[ICMP].chksum:#06x} "
                            f"(the request's was {sent[ICMP].chksum:#06x})")
        if not problems:
            same = out.copy()
            same[ICMP].chksum, same[IP].chksum = want[ICMP].chksum, want[IP].chksum
            if bytes(same) != bytes(want):
                changed = {f"{c.layer}.{c.field}" if c.field else f"a {c.layer} layer"
                           for c in diff_packets(want, Ether(bytes(same)))}
                problems.append("it changed more than a reply should: " + ", ".join(sorted(changed)))
        return "; ".join(problems) or None
    return look


def carry(value):
    """An echo request from the client whose ICMP checksum is `value`."""
    return sampling.with_checksum(Ether(src=CM, dst=SM) / IP(src=C, dst=S) / ICMP(type=8, id=7, seq=3)
                                  / b"carry?", ICMP, value)


def ttl_carry(ttl, value):
    """An echo request from the client that arrived with `ttl` and IPv4 header checksum `value`."""
    return sampling.with_checksum(Ether(src=CM, dst=SM) / IP(src=C, dst=S, ttl=ttl)
                                  / ICMP(type=8, id=7, seq=8) / b"ttl", IP, value)


# Setting the TTL to 64 moves the header checksum by what the word (ttl, protocol) lost: from TTL 1
# it falls by 0x3f00, from 255 it rises by 0xbf00. These checksums take it across 0x0000/0xffff,
# where an update without the end-around carry is off by one: in the network's byte order (the
# first two of each TTL) and in the swapped one a little-endian CPU adds in (0x0100, 0xfeff).
TTL_CARRIES = [(1, 0x0001), (1, 0x3eff), (1, 0x0100), (255, 0x4100), (255, 0xfffe), (255, 0xfeff)]


big = Ether(src=CM, dst=SM) / IP(src=C, dst=S) / ICMP(type=8, id=7, seq=1) / (b"x" * 1000)
options = Ether(src=CM, dst=SM) / IP(src=C, dst=S, options=b"\x01\x01\x01\x00") / ICMP(type=8, id=7, seq=2) / b"opt"
tagged = Ether(src=CM, dst=SM) / Dot1Q(vlan=10) / IP(src=C, dst=S) / ICMP(type=8, id=7, seq=4) / b"vlan"
CASES = [
    verdict(f"An echo request from {C}", request, "tx", check=reply_to(request)),
    verdict(f"An echo reply from {C}", Ether(src=CM, dst=SM) / IP(src=C, dst=S) / ICMP(type=0), "pass"),
    verdict(f"UDP from {C}", Ether(src=CM, dst=SM) / IP(src=C, dst=S) / UDP(dport=9), "pass"),
    verdict(f"An echo request from {C} that arrived with TTL 1", last_hop, "tx", check=reply_to(last_hop)),
    # cases the notebook does not show
    verdict(f"An echo request from {C} with 1000 bytes of data", big, "tx", check=reply_to(big),
            hidden=True, about="a ping with a lot of data"),
    *[verdict(f"An echo request from {C} with ICMP checksum {value:#06x}", carry(value), "tx",
              check=reply_to(carry(value)), hidden=True, about="a ping whose checksum is near 0xffff or 0x0000")
      for value in (0xf800, 0xfbff, 0xfeff, 0xfffe, 0x0000, 0x07ff)],
    *[verdict(f"An echo request from {C} that arrived with TTL {ttl} and IPv4 header checksum {value:#06x}",
              ttl_carry(ttl, value), "tx", check=reply_to(ttl_carry(ttl, value)), hidden=True,
              about="a ping whose IPv4 header checksum the new TTL takes across 0xffff")
      for ttl, value in TTL_CARRIES],
    verdict(f"An echo request from {C} behind an IPv4 header with options", options, "tx",
            check=reply_to(options), hidden=True, about="an IPv4 header with options (longer than 20 bytes)"),
    verdict(f"An echo request from {C} in VLAN 10", tagged, "tx", check=reply_to(tagged), hidden=True,
            about="a frame with a VLAN tag"),
    verdict(f"The first fragment of a 3000-byte echo request from {C}",
            Ether(src=CM, dst=SM) / IP(src=C, dst=S, flags="MF", id=99) / ICMP(type=8, id=7, seq=5, chksum=0x1234)
            / (b"f" * 1472), "pass", hidden=True, about="the first fragment of a big ping"),
    verdict(f"A later fragment of an echo request from {C}, whose data starts like an echo request",
            Ether(src=CM, dst=SM) / IP(src=C, dst=S, proto=1, frag=185, id=99)
            / Raw(bytes(ICMP(type=8, id=7, seq=6)) + b"f" * 40),
            "pass", hidden=True, about="a later fragment of a big ping"),
    verdict(f"A destination-unreachable message from {C}",
            Ether(src=CM, dst=SM) / IP(src=C, dst=S) / ICMP(type=3, code=1), "pass", hidden=True,
            about="ICMP that is not an echo request"),
]


def draw(rng):
    """A random frame: (what, packet, verdict, check, kind)."""
    src, mac = sampling.ipv4(rng), sampling.mac(rng)
    tags, in_vlan = sampling.vlans(rng)
    opts, extra = sampling.ipv4_options(rng) if rng.random() < 0.2 else (b"", "")
    ip = IP(src=src, dst=S, options=opts, ttl=rng.randrange(1, 256), id=rng.randrange(1 << 16))
    pick = rng.random()
    if pick < 0.65:                           # an echo request, its checksum often near the carry
        data = sampling.payload(rng, least=2, most=rng.choice((64, 1400)))
        packet = sampling.stack(Ether(src=mac, dst=SM), tags, ip,
                                ICMP(type=8, id=rng.randrange(1 << 16), seq=rng.randrange(1 << 16)), Raw(data))
        if rng.random() < 0.6:
            packet = sampling.with_checksum(packet, ICMP, sampling.near_carry(rng, high=0xfffe))
        what = (f"An echo request from {src} with {len(data)} bytes of data and ICMP checksum "
                f"{Ether(bytes(packet))[ICMP].chksum:#06x}{in_vlan}{extra}")
        return what, packet, "tx", reply_to(packet), f"a ping{in_vlan}{extra}"
    if pick < 0.8:
        kind, layer = rng.choice([("an echo reply", ICMP(type=0)), ("a time-exceeded message", ICMP(type=11)),
                                  ("a destination-unreachable message", ICMP(type=3, code=3))])
    elif pick < 0.9:
        kind, layer = "a fragment of a ping", ICMP(type=8)
        ip.flags, ip.frag = rng.choice(((1, 0), (0, rng.randrange(1, 8000)), (1, rng.randrange(1, 8000))))
    else:
        kind, layer = "UDP", UDP(sport=sampling.port(rng), dport=sampling.port(rng))
    packet = sampling.stack(Ether(src=mac, dst=SM), tags, ip, layer, Raw(sampling.payload(rng)))
    return f"{kind[0].upper()}{kind[1:]} from {src}{in_vlan}{extra}", packet, "pass", None, \
        f"{kind}{in_vlan}{extra}"


@case("30 random frames: pings of every size with checksums near 0xffff and 0x0000, other ICMP, "
      "fragments and UDP, with VLAN tags and IP options", hidden=True,
      about="random pings and other frames with VLAN tags, options and edge checksums")
def random_frames(t):
    for i in range(30):
        what, packet, expect, look, kind = draw(t.rng)
        t.expect(f"{what} (random frame {i + 1} of 30)", packet, expect, check=look, about=kind)
    return ("30 random frames (pings of every size with edge checksums, other ICMP, fragments, "
            "UDP, VLAN tags, IP options) got the right answer")


@case("the client's pings are answered (the server's kernel ignores them)")
def ping(t):
    got = t.client.ping(t.server, count=3, interval=0.2).received
    assert got == 3, f"{got} of 3 pings from the client were answered; your program should answer all"
    return "all 3 pings from the client were answered by your program"
