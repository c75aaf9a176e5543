"""Lab 08 — make the verifier accept a program: three bugs, fixed one explained error at a time."""
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

from xdplab.checks import case, verdict

TITLE = "Make the verifier accept a program"
ATTACH = "server"
HINTS = [
    "The error names a line and says why the verifier refused it. Here: the UDP header is read "
    "before any check shows that it is inside the packet. The first check covers only the "
    "Ethernet and IPv4 headers; the UDP header starts further on.",
    "Next: talkers.lookup_or_try_init() can still return NULL (when the map is full and the "
    "entry cannot be added), and the verifier wants that case handled before *n is touched.",
    "Last: iph->protocol can be anything from 0 to 255, and packets[] has PROTO_SLOTS (32) "
    "entries. The verifier cannot let packets[200] write past the end of the map value: make "
    "sure the index is below PROTO_SLOTS before you use it.",
]

C, S = "10.11.0.1", "10.11.0.2"
eth = Ether(src="02:58:4c:00:00:01", dst="02:58:4c:00:00:02")
ip = IP(src=C, dst=S)

CASES = [
    verdict(f"UDP to port 9 from {C}", eth / ip / UDP(sport=4000, dport=9), "drop"),
    verdict(f"UDP to port 53 from {C}", eth / ip / UDP(sport=4000, dport=53), "pass"),
    verdict(f"TCP to port 9 from {C}", eth / ip / TCP(dport=9), "pass"),
    verdict(f"A ping from {C}", eth / ip / ICMP(), "pass"),
    verdict("An ARP request", eth / ARP(psrc=C, pdst=S), "pass"),
    # cases the notebook does not show
    verdict(f"UDP to port 9 from {C} behind an IPv4 header with options",
            eth / IP(src=C, dst=S, options=b"\x01\x01\x01\x00") / UDP(dport=9), "drop", hidden=True),
    verdict(f"An IPv4 packet of protocol 200 from {C}", eth / IP(src=C, dst=S, proto=200) / (b"x" * 8),
            "pass", hidden=True),
    verdict("An IPv4 header saying UDP, but the frame ends before the UDP header",
            eth / IP(src=C, dst=S, proto=17), "pass", hidden=True),
    verdict("A 20-byte frame cut in the middle of its IPv4 header",
            Ether(bytes(eth / ip / UDP(dport=9))[:20]), "pass", hidden=True),
]


@case("every packet that passes is counted, per source and per protocol")
def counting(t):
    src = "192.0.2.7"
    before = t.prog.maps["stats"].snapshot()[0].packets
    for pkt in [IP(src=src, dst=S) / UDP(dport=53)] * 3 + [IP(src=src, dst=S) / TCP(dport=80)] * 2:
        t.verdict(eth / pkt)
    talkers = t.prog.maps["talkers"].declare(key="ipv4").snapshot()
    got = {str(k): v for k, v in talkers.items()}.get(src, 0)
    assert got == 5, f"`talkers` counted {got} packets from {src}; it sent 5 that passed"
    after = t.prog.maps["stats"].snapshot()[0].packets
    udp, tcp = after[17] - before[17], after[6] - before[6]
    assert (udp, tcp) == (3, 2), f"`stats` counted {udp} UDP and {tcp} TCP packets; 3 UDP and 2 TCP passed"
    return f"5 packets from {src} counted in `talkers`; 3 UDP and 2 TCP in `stats`"


@case("the server gets the client's UDP to port 10, not to port 9, and pings are answered")
def traffic(t):
    discard, other = t.listen(t.server, 9), t.listen(t.server, 10)
    t.client.send(IP(dst=t.server.ip) / UDP(sport=4000, dport=9) / b"gone", count=10)
    t.client.send(IP(dst=t.server.ip) / UDP(sport=4000, dport=10) / b"here", count=10)
    got9, got10 = len(discard.receive(timeout=0.3)), len(other.receive(10, timeout=0.5))
    assert not got9, f"{got9} of 10 datagrams to port 9 reached the server; none should"
    assert got10 == 10, f"only {got10} of 10 datagrams to port 10 reached the server; all should"
    pings = t.client.ping(t.server, count=2, interval=0.2).received
    assert pings == 2, f"{2 - pings} of 2 pings from the client got no answer"
    return "10 datagrams to port 9 were dropped, 10 to port 10 arrived, 2 pings answered"
