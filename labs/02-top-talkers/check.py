"""Lab 02 — count per source address: talkers[IPv4 source] counts packets, everything passes."""
import ipaddress

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

from xdplab.checks import case, verdict

TITLE = "Count per source address: the top talkers"
ATTACH = "server"
HINTS = [
    "Only IPv4 packets have an IPv4 source address: check the ethertype that parse_ethhdr() "
    "returns before you parse an IPv4 header, and pass what is not IPv4 without counting it.",
    "talkers.lookup(&key) gives a pointer to the count, or NULL when the address is new; a new "
    "address needs an entry first (talkers.lookup_or_try_init(&key, &zero) does both).",
    "Use iph->saddr, unchanged, as the key (copy it into a __be32 variable on the stack: map "
    "keys are passed by pointer), and add to the count with __sync_fetch_and_add(count, 1).",
]

SENDERS = {"10.11.0.1": 30, "10.11.0.7": 20, "10.11.0.9": 10}


def counts(t):
    if "talkers" not in t.prog.maps:
        t.fail("your program has no map named talkers: keep BPF_HASH(talkers, __be32, u64, 1024)")
    return {str(ipaddress.ip_address(k)) if not isinstance(k, int) else
            str(ipaddress.ip_address(k.to_bytes(4, "little"))): v
            for k, v in t.prog.maps["talkers"].snapshot().items()}


@case("60 packets from three sources are counted per source")
def per_source(t):
    for source, n in SENDERS.items():
        t.client.send(IP(src=source, dst=t.server.ip) / UDP(sport=40000, dport=9), count=n)
    got = counts(t)
    for source, n in SENDERS.items():
        if got.get(source, 0) != n:
            t.fail(f"{n} packets from {source} were counted as {got.get(source, 0)}")
    top = max(got, key=got.get)
    return f"60 packets from three sources were counted per source; the top talker is {top}"


@case("ARP and IPv6 are not counted", hidden=True)
def not_ipv4(t):
    before = counts(t)
    eth = Ether(src=t.client.mac, dst=t.server.mac)
    for pkt in (eth / ARP(psrc="10.11.0.1", pdst="10.11.0.2"),
                eth / IPv6(src="fd00:11::1", dst="fd00:11::2") / UDP(dport=9)):
        t.prog.test_run(pkt)
    new = {k: v for k, v in counts(t).items() if v != before.get(k)}
    if new:
        t.fail(f"an ARP request and an IPv6 packet were counted as {sorted(new)}; count only IPv4")
    return "an ARP request and an IPv6 packet were not counted"


CASES = [
    verdict("UDP from 192.0.2.55", Ether() / IP(src="192.0.2.55", dst="10.11.0.2") / UDP(dport=9),
            "pass"),
]


@case("a packet run through the program is counted under its source")
def test_run_counted(t):
    t.prog.test_run(Ether() / IP(src="198.51.100.3", dst="10.11.0.2") / UDP(dport=9))
    n = counts(t).get("198.51.100.3", 0)
    assert n == 1, f"one packet from 198.51.100.3 was counted {n} times"
    return "one packet from 198.51.100.3 was counted once"


@case("ping between client and server still works")
def ping(t):
    got = t.client.ping(t.server, count=2, interval=0.2).received
    assert got == 2, f"{2 - got} of 2 pings from the client got no answer; every packet should pass"
    return "the client's 2 pings were answered"
