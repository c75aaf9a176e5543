"""Lab 06 — a router in XDP: IPv4 forwarded with bpf_fib_lookup() and bpf_redirect(), TTL - 1."""
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

import xdplab
from xdplab.checks import case, word
from xdplab.forwarding import measure, test_run_on

TITLE = "A router in XDP"
ATTACH = ["router:eth0", "router:eth1"]
HINTS = [
    "Fill a struct bpf_fib_lookup the way the stack would route the packet: family AF_INET, "
    "tos, l4_protocol, tot_len (host byte order), ipv4_src, ipv4_dst — and ifindex, the "
    "interface the packet came in on (ctx->ingress_ifindex). Then call "
    "bpf_fib_lookup(ctx, &fib, sizeof(fib), 0).",
    "When bpf_fib_lookup() returns BPF_FIB_LKUP_RET_SUCCESS, fib.ifindex is the interface to "
    "leave by, fib.dmac the next hop's MAC and fib.smac that interface's own MAC: copy them into "
    "eth->h_dest and eth->h_source (__builtin_memcpy, ETH_ALEN bytes), then "
    "return bpf_redirect(fib.ifindex, 0).",
    "A router takes one off the TTL, and the IPv4 header checksum covers the TTL: "
    "ip_decrease_ttl(iph) in parsing_helpers.h does both. Leave packets with ttl <= 1 to the "
    "stack (XDP_PASS), and count each redirect in slot 0 of `redirected`.",
]


def TOPOLOGY():
    lab = xdplab.Lab()
    try:
        client, router, server = lab.host("client"), lab.host("router"), lab.host("server")
        lab.link(client, router)
        lab.link(router, server)
    except BaseException:
        lab.close()
        raise
    return lab


# The lab's addresses (xdplab numbers links in order: link 0 client—router, link 1 router—server)
C, R0, R1, S = "10.11.0.1", "10.11.0.2", "10.11.1.1", "10.11.1.2"
CM, R0M, R1M, SM = "02:58:4c:00:00:01", "02:58:4c:00:00:02", "02:58:4c:01:00:01", "02:58:4c:01:00:02"
ROUTED = {("Ether", "dst"), ("Ether", "src"), ("IP", "ttl"), ("IP", "chksum")}


def run_on(t, ifname, packet):
    return test_run_on(t.prog, t.router.iface(ifname), packet)


def forwarded(what, ifname, packet, macs, hidden=False):
    """A case: `packet` arriving on the router's `ifname` is redirected with MACs `macs` (src, dst),
    TTL one lower, a right checksum, and nothing else changed."""
    def run(t):
        r = run_on(t, ifname, packet)
        if r.verdict != "XDP_REDIRECT":
            t.fail(f"{what} was {word(r.verdict)}; it should be redirected")
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
            t.fail(f"{what} was redirected, but " + "; ".join(problems))
        return f"{what} was redirected to {macs[1]}, TTL {packet[IP].ttl} → {out[IP].ttl}"
    return case(f"{what} → redirected, TTL - 1", hidden)(run)


def passed(what, ifname, packet, hidden=False):
    def run(t):
        v = run_on(t, ifname, packet).verdict
        if v != "XDP_PASS":
            t.fail(f"{what} was {word(v)}; it should be passed to the router's stack")
        return f"{what} was passed to the stack"
    return case(f"{what} → passed", hidden)(run)


request = Ether(src=CM, dst=R0M) / IP(src=C, dst=S, ttl=64) / ICMP(type=8, id=1, seq=1) / b"ping"
reply = Ether(src=SM, dst=R1M) / IP(src=S, dst=C, ttl=64) / ICMP(type=0, id=1, seq=1) / b"ping"

to_server = forwarded(f"A ping from {C} to {S}, arriving on the router's eth0", "eth0", request, (R1M, SM))
to_client = forwarded(f"A ping reply from {S} to {C}, arriving on eth1", "eth1", reply, (R0M, CM))
arp = passed("An ARP request from the client", "eth0", Ether(src=CM, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=C, pdst=R0))
# cases the notebook does not show
udp = forwarded(f"UDP from {C} to {S} with TTL 9", "eth0",
                Ether(src=CM, dst=R0M) / IP(src=C, dst=S, ttl=9, tos=0x10) / UDP(sport=4000, dport=9) / (b"x" * 100),
                (R1M, SM), hidden=True)
for_router = passed(f"A ping from {C} to the router itself ({R0})", "eth0",
                    Ether(src=CM, dst=R0M) / IP(src=C, dst=R0) / ICMP(), hidden=True)
expiring = passed(f"A ping from {C} to {S} with TTL 1 (the stack answers: time exceeded)", "eth0",
                  Ether(src=CM, dst=R0M) / IP(src=C, dst=S, ttl=1) / ICMP(), hidden=True)
ipv6 = passed("An IPv6 packet", "eth0",
              Ether(src=CM, dst=R0M) / IPv6(src="fd00:11::1", dst="fd00:11:1::2") / UDP(dport=9), hidden=True)
cut = passed("A 20-byte frame cut in the middle of its IPv4 header", "eth0",
             Ether(bytes(request)[:20]), hidden=True)


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
