"""Lab 01 — drop by protocol and port: UDP to 53 and TCP to 23 dropped, the rest passed."""
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import ARP, Ether

from xdplab.checks import case, verdict

TITLE = "Drop by protocol and port"
ATTACH = "server"
HINTS = [
    "Look at the destination port only after you know which protocol carries it: UDP and TCP "
    "headers both start with the source port, then the destination port.",
    "After parse_iphdr() (or parse_ip6hdr() and skip_ip6hdrext()) returns IPPROTO_UDP, "
    "parse_udphdr() gives you struct udphdr *; the same goes for TCP with parse_tcphdr().",
    "Ports are in network byte order: compare udph->dest with bpf_htons(53), not with 53. "
    "Handle IPv6 in an `else if (proto == bpf_htons(ETH_P_IPV6))` branch that ends at the same "
    "port checks.",
]

C, S = "10.11.0.1", "10.11.0.2"
C6, S6 = "fd00:11::1", "fd00:11::2"
eth = Ether(src="02:58:4c:00:00:01", dst="02:58:4c:00:00:02")

CASES = [
    verdict(f"UDP to port 53 from {C}", eth / IP(src=C, dst=S) / UDP(sport=40000, dport=53), "drop"),
    verdict(f"TCP to port 23 from {C}", eth / IP(src=C, dst=S) / TCP(sport=40000, dport=23), "drop"),
    verdict(f"UDP to port 5353 from {C}", eth / IP(src=C, dst=S) / UDP(sport=40000, dport=5353), "pass"),
    verdict(f"TCP to port 80 from {C}", eth / IP(src=C, dst=S) / TCP(sport=40000, dport=80), "pass"),
    verdict(f"UDP to port 53 from {C6}", eth / IPv6(src=C6, dst=S6) / UDP(dport=53), "drop"),
    verdict(f"TCP to port 23 from {C6}", eth / IPv6(src=C6, dst=S6) / TCP(dport=23), "drop"),
    verdict(f"A ping from {C}", eth / IP(src=C, dst=S) / ICMP(), "pass"),
    # cases the notebook does not show
    verdict(f"UDP from port 53 to port 40000 (a DNS answer) from {C}",
            eth / IP(src=C, dst=S) / UDP(sport=53, dport=40000), "pass", hidden=True),
    verdict(f"TCP to port 53 from {C}", eth / IP(src=C, dst=S) / TCP(dport=53), "pass", hidden=True),
    verdict(f"UDP to port 23 from {C}", eth / IP(src=C, dst=S) / UDP(dport=23), "pass", hidden=True),
    verdict(f"UDP to port 53 from {C} behind an IPv4 header with options",
            eth / IP(src=C, dst=S, options=b"\x01\x01\x01\x00") / UDP(dport=53), "drop", hidden=True),
    verdict(f"UDP to port 53 from {C6} behind an IPv6 destination-options header",
            eth / IPv6(src=C6, dst=S6) / IPv6ExtHdrDestOpt() / UDP(dport=53), "drop", hidden=True),
    verdict("An ARP request", eth / ARP(psrc=C, pdst=S), "pass", hidden=True),
    verdict("A 20-byte frame cut in the middle of its IPv4 header",
            Ether(bytes(eth / IP(src=C, dst=S) / UDP(dport=53))[:20]), "pass", hidden=True),
]


@case("DNS queries sent by the client never reach the server, other UDP does")
def traffic(t):
    dns, other = t.listen(t.server, 53), t.listen(t.server, 5353)
    t.client.send(IP(dst=t.server.ip) / UDP(sport=40000, dport=53) / b"query", count=20)
    t.client.send(IP(dst=t.server.ip) / UDP(sport=40000, dport=5353) / b"other", count=20)
    got_dns, got_other = len(dns.receive(timeout=0.3)), len(other.receive(20, timeout=0.5))
    if got_dns:
        t.fail(f"{got_dns} of 20 DNS queries from the client reached the server; none should")
    if got_other != 20:
        t.fail(f"only {got_other} of 20 UDP datagrams to port 5353 reached the server; all should")
    return "20 DNS queries from the client were dropped, 20 datagrams to port 5353 arrived"


@case("ping between client and server still works")
def ping(t):
    got = t.client.ping(t.server, count=2, interval=0.2).received
    assert got == 2, f"{2 - got} of 2 pings from the client got no answer; ping should pass"
    return "the client's 2 pings were answered"
