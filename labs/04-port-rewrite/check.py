"""Lab 04 — rewrite destination ports: UDP to 7000 leaves for 7001 with a right checksum."""
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from xdplab.checks import case, verdict

TITLE = "Rewrite destination ports with correct checksums"
ATTACH = "server"
HINTS = [
    "The UDP checksum covers the whole UDP header, so a new port makes the old checksum wrong, "
    "and the server's kernel silently drops the datagram.",
    "You need not add up the datagram again: parsing_helpers.h has csum_replace2(&checksum, "
    "old_word, new_word), which updates a checksum for one 16-bit word that changed (RFC 1624).",
    "Keep the ports in network byte order (bpf_htons(7000)); over IPv4 leave a checksum of 0 "
    "alone; for IPv6 use parse_ip6hdr() and skip_ip6hdrext() and reach the same UDP code.",
]

C, S, C6, S6 = "10.11.0.1", "10.11.0.2", "fd00:11::1", "fd00:11::2"
eth = Ether(src="02:58:4c:00:00:01", dst="02:58:4c:00:00:02")


def rewritten(dport, checksum="right"):
    """A check of the output packet: destination port `dport`, and a UDP checksum that is right
    ("right"), or exactly the given number."""
    def look(result):
        out = result.packet
        if out is None or UDP not in out:
            return "the output has no UDP header"
        udp = out[UDP]
        if udp.dport != dport:
            return f"its destination port is {udp.dport}, not {dport}"
        if checksum != "right":
            return None if udp.chksum == checksum else \
                f"its UDP checksum is {udp.chksum:#06x}; it should be {checksum:#06x}"
        fresh = out.copy()
        del fresh[UDP].chksum                 # scapy computes it again when the packet is built
        want = fresh.__class__(bytes(fresh))[UDP].chksum
        return None if udp.chksum == want else \
            f"its UDP checksum is {udp.chksum:#06x}; it should be {want:#06x}"
    return look


CASES = [
    verdict(f"UDP to port 7000 from {C}", eth / IP(src=C, dst=S) / UDP(sport=40000, dport=7000) / b"hello",
            "pass", check=rewritten(7001)),
    verdict(f"UDP to port 7000 from {C6}", eth / IPv6(src=C6, dst=S6) / UDP(sport=40000, dport=7000) / b"hello",
            "pass", check=rewritten(7001)),
    verdict(f"UDP to port 7002 from {C}", eth / IP(src=C, dst=S) / UDP(dport=7002), "pass", check=rewritten(7002)),
    # cases the notebook does not show
    verdict(f"UDP to port 7000 from {C} without a checksum (0)",
            eth / IP(src=C, dst=S) / UDP(dport=7000, chksum=0) / b"x", "pass",
            check=rewritten(7001, checksum=0), hidden=True),
    verdict(f"UDP to port 7000 from {C} whose new checksum is 0xffff",
            eth / IP(src=C, dst=S) / UDP(sport=0xfffe, dport=7000, chksum=0x0001) / b"", "pass",
            check=rewritten(7001, checksum=0xffff), hidden=True),   # 0 means "none": sent as 0xffff
    verdict(f"TCP to port 7000 from {C}", eth / IP(src=C, dst=S) / TCP(dport=7000), "pass",
            check=lambda r: None if r.packet[TCP].dport == 7000 else "its port changed; only UDP should",
            hidden=True),
]


@case("datagrams the client sends to port 7000 reach an application on port 7001")
def traffic(t):
    sink = t.listen(t.server, 7001)
    t.client.send(IP(dst=t.server.ip) / UDP(sport=40000, dport=7000) / b"over IPv4", count=5)
    t.client.send(IPv6(dst=t.server.ip6) / UDP(sport=40000, dport=7000) / b"over IPv6", count=5)
    got = sink.receive(10, timeout=0.5)
    v4, v6 = (sum(d.payload == p for d in got) for p in (b"over IPv4", b"over IPv6"))
    if (v4, v6) != (5, 5):
        t.fail(f"of 5 datagrams over IPv4 and 5 over IPv6 to port 7000, {v4} and {v6} reached "
               "port 7001 on the server (a wrong checksum makes the kernel drop them)")
    return "10 datagrams to port 7000 (IPv4 and IPv6) reached the application on port 7001"
