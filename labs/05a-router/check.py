"""Lab 05a — a router in XDP: IPv4 forwarded with bpf_fib_lookup() and bpf_redirect(), TTL - 1."""
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

import xdplab
from xdplab import sampling
from xdplab.checks import case, word
from xdplab.forwarding import measure, test_run_on

TITLE = "A router in XDP"
ATTACH = ["router:eth0", "router:eth1"]
REQUIRES = ["test_run_context"]        # its cases run test_run_on(): Linux 5.15+
HINTS = [
    "Fill a struct bpf_fib_lookup the way the stack would route the packet: family AF_INET, "
    "tos, l4_protocol, tot_len (the whole IP packet, header included, in host byte order), "
    "ipv4_src, ipv4_dst — and ifindex, the interface the packet came in on "
    "(ctx->ingress_ifindex). Then call "
    "bpf_fib_lookup(ctx, &fib, sizeof(fib), 0).",
    "When bpf_fib_lookup() returns BPF_FIB_LKUP_RET_SUCCESS, fib.ifindex is the interface to "
    "leave by, fib.dmac the next hop's MAC and fib.smac that interface's own MAC: copy them into "
    "eth->h_dest and eth->h_source (__builtin_memcpy, ETH_ALEN bytes), then "
    "return bpf_redirect(fib.ifindex, 0).",
    "A router takes one off the TTL, and the IPv4 header checksum covers the TTL: "
    "ip_decrease_ttl(iph) in parsing_helpers.h does both. Leave packets with ttl <= 1 to the "
    "stack (XDP_PASS), and VLAN-tagged frames too: parse_ethhdr() steps over the tags, and "
    "proto_is_vlan(eth->h_proto) tells you there was one. Count each redirect in slot 0 of "
    "`redirected`.",
]


def TOPOLOGY():
    lab = xdplab.Lab()
    try:
        client, router, server = lab.host("client"), lab.host("router"), lab.host("server")
        lab.link(client, router)
        lab.link(router, server)
        for host, ifname in ((router, "eth1"), (server, "eth0")):   # a smaller MTU behind the router
            host.run(["ip", "link", "set", "dev", ifname, "mtu", str(MTU)])
    except BaseException:
        lab.close()
        raise
    return lab


# The lab's addresses (xdplab numbers links in order: link 0 client—router, link 1 router—server)
C, R0, R1, S = "10.11.0.1", "10.11.0.2", "10.11.1.1", "10.11.1.2"
CM, R0M, R1M, SM = "02:58:4c:00:00:01", "02:58:4c:00:00:02", "02:58:4c:01:00:01", "02:58:4c:01:00:02"
ROUTED = {("Ether", "dst"), ("Ether", "src"), ("IP", "ttl"), ("IP", "chksum")}
MTU = 1280                    # of the router—server link (the check's lab; the notebook keeps 1500)


def run_on(t, ifname, packet):
    return test_run_on(t.prog, t.router.iface(ifname), packet)


def forwarded(what, ifname, packet, macs, hidden=False, about=None):
    """A case: `packet` arriving on the router's `ifname` is redirected with MACs `macs` (src, dst),
    TTL one lower, a right checksum, and nothing else changed."""
    def run(t):
        return expect_forwarded(t, what, ifname, packet, macs, about)
    return case(f"{what} → redirected, TTL - 1", hidden, about)(run)


def expect_forwarded(t, what, ifname, packet, macs, about=None):
    """Fail unless `packet` arriving on `ifname` is redirected as a router would."""
    r = run_on(t, ifname, packet)
    if r.verdict != "XDP_REDIRECT":
        t.fail(f"{what} was {word(r.verdict)}; it should be redirected", about)
    out, problems = r.packet, []
    if (out.src, out.dst) != macs:
        problems.append(f"its MAC addresses are {out.src} → {out.dst}, they should be "
                        f"{macs[0]} → {macs[1]} (the outgoing interface → the next hop)")
    if out[IP].ttl != packet[IP].ttl - 1:
        problems.append(f"its TTL is {out[IP].ttl}, it should be {packet[IP].ttl - 1}")
    fresh = out.copy()
    del fresh[IP].chksum
    right = Ether(bytes(fresh))[IP].chksum
    if out[IP].chksum != right:
        problems.append(f"its IPv4 header checksum is {out[IP].chksum:#06x}, not {right:#06x}")
    other = {(c.layer, c.field) for c in r.diff} - ROUTED
    if other:
        problems.append("it changed more than a router should: "
                        + ", ".join(f"{layer}.{field}" for layer, field in sorted(other)))
    if problems:
        t.fail(f"{what} was redirected, but " + "; ".join(problems), about)
    return f"{what} was redirected to {macs[1]}, TTL {packet[IP].ttl} → {out[IP].ttl}"


def passed(what, ifname, packet, hidden=False, about=None):
    def run(t):
        return expect_passed(t, what, ifname, packet, about)
    return case(f"{what} → passed", hidden, about)(run)


def expect_passed(t, what, ifname, packet, about=None):
    """Fail unless `packet` arriving on `ifname` goes to the router's stack as it came."""
    r = run_on(t, ifname, packet)
    if r.verdict != "XDP_PASS":
        t.fail(f"{what} was {word(r.verdict)}; it should be passed to the router's stack", about)
    if r.output_bytes != r.input_bytes:
        fields = ", ".join(f"{c.layer}.{c.field}" for c in r.diff if c.field)
        t.fail(f"{what} was passed to the stack, but changed ({fields or 'its bytes'}); the stack "
               "should get it as it came, or it will take one off the TTL a second time", about)
    return f"{what} was passed to the stack"


request = Ether(src=CM, dst=R0M) / IP(src=C, dst=S, ttl=64) / ICMP(type=8, id=1, seq=1) / b"ping"
reply = Ether(src=SM, dst=R1M) / IP(src=S, dst=C, ttl=64) / ICMP(type=0, id=1, seq=1) / b"ping"

to_server = forwarded(f"A ping from {C} to {S}, arriving on the router's eth0", "eth0", request, (R1M, SM))
to_client = forwarded(f"A ping reply from {S} to {C}, arriving on eth1", "eth1", reply, (R0M, CM))
arp = passed("An ARP request from the client", "eth0", Ether(src=CM, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=C, pdst=R0))
# a tagged frame belongs to VLAN 10, which the router has no interface for: the lookup would be
# made for eth0 all the same, and the frame redirected with its tag still on
tagged = passed(f"A ping from {C} to {S} in VLAN 10, arriving on eth0", "eth0",
                Ether(src=CM, dst=R0M) / Dot1Q(vlan=10) / IP(src=C, dst=S, ttl=64) / ICMP(type=8, id=1, seq=2) / b"vlan")
# cases the notebook does not show
udp = forwarded(f"UDP from {C} to {S} with TTL 9", "eth0",
                Ether(src=CM, dst=R0M) / IP(src=C, dst=S, ttl=9, tos=0x10) / UDP(sport=4000, dport=9) / (b"x" * 100),
                (R1M, SM), hidden=True, about="UDP with a small TTL and a TOS")
CASES = [forwarded(f"A ping from {C} to {S} whose IPv4 header checksum is {value:#06x}", "eth0",
                     sampling.with_checksum(request, IP, value), (R1M, SM), hidden=True,
                     about="a header checksum near 0xffff")
           for value in (0xff00, 0xff7f, 0xfffe)]
for_router = passed(f"A ping from {C} to the router itself ({R0})", "eth0",
                    Ether(src=CM, dst=R0M) / IP(src=C, dst=R0) / ICMP(), hidden=True,
                    about="a packet for the router itself")
expiring = passed(f"A ping from {C} to {S} with TTL 1 (the stack answers: time exceeded)", "eth0",
                  Ether(src=CM, dst=R0M) / IP(src=C, dst=S, ttl=1) / ICMP(), hidden=True,
                  about="a packet whose TTL runs out here")
too_big = passed(f"A 1400-byte UDP datagram from {C} to {S}, bigger than the {MTU}-byte MTU of the "
                 "link to the server (the stack answers: fragmentation needed)", "eth0",
                 Ether(src=CM, dst=R0M) / IP(src=C, dst=S, flags="DF") / UDP(sport=4000, dport=9) / (b"m" * 1372),
                 hidden=True, about="a packet bigger than the MTU of the next link")
# the MTU counts the IP header: 1 byte too big with it, 19 bytes short of the MTU without it
too_big_by_header = passed(f"A {MTU + 1}-byte IPv4 packet from {C} to {S}: {MTU - 19} bytes of UDP "
                           f"behind its 20-byte header, one byte more than the {MTU}-byte MTU of the "
                           "link to the server (bpf_fib_lookup() compares the whole IP packet)", "eth0",
                           Ether(src=CM, dst=R0M) / IP(src=C, dst=S, flags="DF") / UDP(sport=4000, dport=9)
                           / (b"h" * (MTU + 1 - 28)),
                           hidden=True, about="a packet bigger than the next link's MTU by a few bytes")
no_neighbour = passed(f"A ping from {C} to 10.11.1.77, an address on the server's link that no host "
                      "has (the stack asks with ARP first)", "eth0",
                      Ether(src=CM, dst=R0M) / IP(src=C, dst="10.11.1.77") / ICMP(), hidden=True,
                      about="a packet to a neighbour the router has no MAC address for")
ipv6 = passed("An IPv6 packet", "eth0",
              Ether(src=CM, dst=R0M) / IPv6(src="fd00:11::1", dst="fd00:11:1::2") / UDP(dport=9), hidden=True,
              about="IPv6")
qinq = passed(f"A ping reply from {S} to {C} in QinQ (VLAN 20 inside 100), arriving on eth1", "eth1",
              Ether(src=SM, dst=R1M) / Dot1AD(vlan=100) / Dot1Q(vlan=20) / IP(src=S, dst=C, ttl=64)
              / ICMP(type=0, id=1, seq=2) / b"qinq", hidden=True, about="a frame with two VLAN tags (QinQ)")
cut = passed("A 20-byte frame cut in the middle of its IPv4 header", "eth0",
             Ether(bytes(request)[:20]), hidden=True, about="a frame that ends inside its IPv4 header")


def draw(rng):
    """A random packet arriving on the router: (what, ifname, packet, MACs or None, kind)."""
    inward = rng.random() < 0.5               # server → client, else client → server
    ifname, (src, dst, smac, dmac, macs) = ("eth1", (S, C, SM, R1M, (R0M, CM))) if inward else \
        ("eth0", (C, S, CM, R0M, (R1M, SM)))
    ttl = rng.choice((rng.randrange(2, 256), 2, 255))
    layer = rng.choice((UDP(sport=sampling.port(rng), dport=sampling.port(rng)),
                        TCP(sport=sampling.port(rng), dport=sampling.port(rng), flags="S"),
                        ICMP(type=8, id=rng.randrange(1 << 16), seq=rng.randrange(1 << 16))))
    size = rng.choice((rng.randrange(0, 200), rng.randrange(0, MTU - 60)))
    ip = IP(src=src, dst=dst, ttl=ttl, tos=rng.choice((0, 0, 0x10, 0xb8)), id=rng.randrange(1 << 16))
    packet = Ether(src=smac, dst=dmac) / ip / layer / Raw(sampling.payload(rng, size, size))
    if rng.random() < 0.6:
        packet = sampling.with_checksum(packet, IP, sampling.near_carry(rng, high=0xfffe))
    kind = f"{layer.name} from {'the server to the client' if inward else 'the client to the server'}"
    what = (f"{kind}, TTL {ttl}, {len(packet)} bytes, IPv4 header checksum "
            f"{Ether(bytes(packet))[IP].chksum:#06x}, arriving on {ifname}")
    pick = rng.random()
    if pick < 0.1:
        packet[IP].ttl = 1
        return what.replace(f"TTL {ttl}", "TTL 1"), ifname, Ether(bytes(packet)), None, kind + " with TTL 1"
    if pick < 0.18 and not inward:            # the client's side has the bigger MTU
        over = MTU + rng.randrange(1, 200)
        packet = Ether(src=smac, dst=dmac) / ip / layer
        packet = Ether(bytes(packet / Raw(b"z" * (over - len(packet[IP])))))
        return (f"{kind}, {len(packet[IP])} bytes of IPv4 (above the next link's MTU of {MTU})", ifname,
                packet, None, kind + ", bigger than the next link's MTU")
    return what, ifname, packet, macs, kind


@case("30 random packets between client and server, of every protocol, size, TTL and header "
      "checksum, forwarded or left to the stack", hidden=True,
      about="random packets between client and server, with header checksums near 0xffff")
def random_packets(t):
    for i in range(30):
        what, ifname, packet, macs, kind = draw(t.rng)
        what = f"{what} (random packet {i + 1} of 30)"
        if macs:
            expect_forwarded(t, what, ifname, packet, macs, about=kind)
        else:
            expect_passed(t, what, ifname, packet, about=kind)
    return ("30 random packets (UDP, TCP and pings both ways, every size and TTL, header checksums "
            "near 0xffff, some too big or out of TTL) were forwarded or left to the stack")


@case("the client's pings reach the server and come back, through your program, not the stack")
def pings(t):
    counter = t.prog.maps["redirected"]
    with measure(t.router, counter) as seen:
        got = t.client.ping(t.server, count=10, interval=0.05).received
    assert got == 10, f"{10 - got} of 10 pings from the client to the server got no answer"
    done = sum(v for v in seen["redirected"].values()) if seen["redirected"] else 0
    stack = seen[t.router].get("IpForwDatagrams", 0)
    assert done >= 20, (f"your program counted {done} redirected packets in `redirected` for 10 pings "
                        "and their 10 replies; it should count each one it redirects (20)")
    assert stack == 0, (f"the router's stack forwarded {stack} packets during the pings; your "
                        "program should have forwarded them all")
    return f"all 10 pings answered; your program redirected {done} packets, the stack none"
