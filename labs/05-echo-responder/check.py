"""Lab 05 — ICMP echo responder: an echo request comes back as a valid echo reply, by XDP_TX."""
import xdplab
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether

from xdplab.checks import case, verdict

TITLE = "An ICMP echo responder with XDP_TX"
ATTACH = "server"
HINTS = [
    "A reply goes back where the request came from: the request's source (MAC and IP) is the "
    "reply's destination. XDP_TX sends the frame, as your program left it, back out of the same "
    "interface.",
    "Three changes make the reply: swap the MAC addresses, swap the IP addresses, set the ICMP "
    "type to ICMP_ECHOREPLY (0). parsing_helpers.h has helpers for the two swaps.",
    "Swapping keeps every checksum right, but the new type changes the 16-bit word (type, code) "
    "that the ICMP checksum covers: save that word before, and csum_replace2() it after.",
]


def TOPOLOGY():
    lab = xdplab.Lab.pair()
    lab.server.sysctl("net.ipv4.icmp_echo_ignore_all", 1)    # only the XDP program may answer
    return lab


C, S = "10.11.0.1", "10.11.0.2"
CM, SM = "02:58:4c:00:00:01", "02:58:4c:00:00:02"
request = Ether(src=CM, dst=SM) / IP(src=C, dst=S) / ICMP(type=8, id=7, seq=1) / (b"x" * 56)


def a_reply(result):
    out = result.packet
    if out is None or ICMP not in out:
        return "what it sent back is not ICMP"
    problems = []
    if (out.src, out.dst) != (SM, CM):
        problems.append(f"its MAC addresses are {out.src} → {out.dst}, they should be {SM} → {CM}")
    if (out[IP].src, out[IP].dst) != (S, C):
        problems.append(f"its IP addresses are {out[IP].src} → {out[IP].dst}, they should be {S} → {C}")
    if out[ICMP].type != 0:
        problems.append(f"its ICMP type is {out[ICMP].type}, it should be 0 (echo reply)")
    fresh = out.copy()
    del fresh[ICMP].chksum, fresh[IP].chksum
    fresh = fresh.__class__(bytes(fresh))
    if out[IP].chksum != fresh[IP].chksum:
        problems.append(f"its IPv4 header checksum is {out[IP].chksum:#06x}, not {fresh[IP].chksum:#06x}")
    if out[ICMP].chksum != fresh[ICMP].chksum:
        problems.append(f"its ICMP checksum is {out[ICMP].chksum:#06x}, not {fresh[ICMP].chksum:#06x}")
    if (out[ICMP].id, out[ICMP].seq, bytes(out[ICMP].payload)) != (7, 1, b"x" * 56):
        problems.append("its id, sequence number or data differ from the request's")
    return "; ".join(problems) or None


CASES = [
    verdict(f"An echo request from {C}", request, "tx", check=a_reply),
    verdict(f"An echo reply from {C}", Ether(src=CM, dst=SM) / IP(src=C, dst=S) / ICMP(type=0), "pass"),
    verdict(f"UDP from {C}", Ether(src=CM, dst=SM) / IP(src=C, dst=S) / UDP(dport=9), "pass"),
    # cases the notebook does not show
    verdict(f"An echo request from {C} with 1000 bytes of data",
            Ether(src=CM, dst=SM) / IP(src=C, dst=S) / ICMP(type=8, id=7, seq=1) / (b"x" * 1000), "tx",
            check=lambda r: None if ICMP in r.packet and r.packet[ICMP].type == 0 and
            r.packet[ICMP].chksum == ICMP(bytes(ICMP(type=0, id=7, seq=1) / (b"x" * 1000))).chksum
            else "the reply is not a valid echo reply", hidden=True),
    verdict(f"A destination-unreachable message from {C}",
            Ether(src=CM, dst=SM) / IP(src=C, dst=S) / ICMP(type=3, code=1), "pass", hidden=True),
]


@case("the client's pings are answered (the server's kernel ignores them)")
def ping(t):
    got = t.client.ping(t.server, count=3, interval=0.2).received
    assert got == 3, f"{got} of 3 pings from the client were answered; your program should answer all"
    return "all 3 pings from the client were answered by your program"
