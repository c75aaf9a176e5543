"""Lab 01a — drop oversized frames: frames longer than MAX_LEN bytes are dropped (XDP_DROP, never
XDP_ABORTED) and counted in dropped[0]; every other frame passes, uncounted."""
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from xdplab import sampling
from xdplab.checks import case, verdict

TITLE = "Drop oversized frames"
ATTACH = "server"
HINTS = [
    "A frame's length is data_end - data: the bytes from its first to its last, Ethernet header "
    "included. Compare that with MAX_LEN: return XDP_DROP when it is greater, XDP_PASS "
    "otherwise.",
    "Call count_drop() on the way to XDP_DROP, before the return (nothing after a return runs), "
    "and only there: a frame that passes is not counted.",
    "A frame of exactly MAX_LEN bytes passes (greater than, not greater or equal). XDP_ABORTED "
    "is for a program's own errors: it fires xdp:xdp_exception for every frame; dropping a big "
    "frame is no error, so XDP_DROP.",
]

MAX_LEN = 400


def eth():
    """An Ethernet header with the lab's own addresses (a test run reads no MAC address)."""
    return Ether(src="02:58:4c:00:00:01", dst="02:58:4c:00:00:02")


def frame(size, dport=9):
    """An IPv4 UDP frame of `size` bytes in all, Ethernet header included."""
    head = eth() / IP(src="10.11.0.1", dst="10.11.0.2") / UDP(sport=40000, dport=dport)
    return head / Raw(b"x" * (size - len(head)))


def drops(t):
    if "dropped" not in t.prog.maps:
        t.fail("your program has no map named dropped: keep BPF_ARRAY(dropped, u64, 1) and "
               "count_drop() as the starter has them")
    return t.prog.maps["dropped"].snapshot().get(0, 0)


CASES = [
    verdict("a 60-byte frame", frame(60), "pass"),
    verdict("a 1000-byte frame", frame(1000), "drop"),
]


EDGES = {-14: "a frame 14 bytes under MAX_LEN", -1: "a frame 1 byte under MAX_LEN",
         0: "a frame of exactly MAX_LEN bytes", 1: "a frame 1 byte over MAX_LEN",
         14: "a frame 14 bytes over MAX_LEN"}


@case("frames of MAX_LEN bytes and less pass; MAX_LEN + 1 bytes and more are dropped",
      hidden=True, about="frames right at the size limit")
def edges(t):
    for size in (MAX_LEN - 14, MAX_LEN - 1, MAX_LEN, MAX_LEN + 1, MAX_LEN + 14, 1514):
        t.expect(f"a frame of {size} bytes", frame(size), "pass" if size <= MAX_LEN else "drop",
                 about=EDGES[size - MAX_LEN] if size - MAX_LEN in EDGES else f"a frame of {size} bytes")
    return f"frames of {MAX_LEN - 14} to {MAX_LEN} bytes passed, of {MAX_LEN + 1} to 1514 were dropped"


@case("each dropped frame is counted once, and no passed frame is counted")
def counted(t):
    sizes = (100, 800, 60, 1514, MAX_LEN, 401, 98)
    before = drops(t)
    for size in sizes:
        t.expect(f"a frame of {size} bytes", frame(size), "pass" if size <= MAX_LEN else "drop")
    got, want = drops(t) - before, sum(size > MAX_LEN for size in sizes)
    if got != want:
        t.fail(f"seven frames of {', '.join(map(str, sizes))} bytes went through your program, "
               f"{want} of them longer than {MAX_LEN} bytes; dropped[0] grew by {got}, not {want}")
    return f"of seven frames, the {want} dropped were counted, the 4 passed were not"


def draw(rng):
    """A random frame of a random size: (what, frame)."""
    size = rng.choice((rng.randrange(14, MAX_LEN + 1), rng.randrange(MAX_LEN + 1, 1515),
                       rng.randrange(MAX_LEN - 20, MAX_LEN + 21)))
    kind = rng.choice(("UDP", "TCP", "ping", "IPv6", "ARP", "bytes"))
    head = {"UDP": lambda: eth() / IP(src=sampling.ipv4(rng)) / UDP(dport=sampling.port(rng)),
            "TCP": lambda: eth() / IP(src=sampling.ipv4(rng)) / TCP(dport=sampling.port(rng)),
            "ping": lambda: eth() / IP(src=sampling.ipv4(rng)) / ICMP(),
            "IPv6": lambda: eth() / IPv6(src=sampling.ipv6(rng)) / UDP(dport=sampling.port(rng)),
            "ARP": lambda: eth() / ARP(psrc=sampling.ipv4(rng)),
            "bytes": lambda: Raw(bytes(rng.randrange(256) for _ in range(14)))}[kind]()
    data = bytes(head)[:size]
    data += bytes(rng.randrange(256) for _ in range(size - len(data)))
    words = {"bytes": "random bytes", "ping": "an IPv4 ping", "ARP": "an ARP request"}.get(kind, f"{kind} over IP")
    return f"a frame of {size} bytes ({words})", data


@case("60 random frames of every size and kind get the right verdict and count", hidden=True,
      about="frames of random sizes and kinds (IPv4, IPv6, ARP, random bytes)")
def random_frames(t):
    before, want = drops(t), 0
    for i in range(60):
        what, data = draw(t.rng)
        big = len(data) > MAX_LEN
        t.expect(f"{what} (random frame {i + 1} of 60)", data, "drop" if big else "pass",
                 about=f"a frame of {len(data)} bytes")
        want += big
        got = drops(t) - before
        if got != want:
            t.fail(f"after {what} (random frame {i + 1} of 60) dropped[0] had grown by {got}; "
                   f"{want} of the frames so far were dropped", about=f"a frame of {len(data)} bytes")
    return f"60 random frames got the right verdict, and the {want} dropped were counted"


@case("from the client, small datagrams reach the server and big ones do not, and are counted")
def traffic(t):
    sink = t.listen(t.server, 7000)
    wire = Ether(src=t.client.mac, dst=t.server.mac) / IP(src=t.client.ip, dst=t.server.ip) / UDP(sport=40000, dport=7000)
    small, big = wire / Raw(b"s" * (MAX_LEN - len(wire))), wire / Raw(b"b" * (1000 - len(wire)))
    before = drops(t)
    t.client.send(small, count=20)
    t.client.send(big, count=10)
    got = sink.receive(timeout=0.5)
    sizes = [len(d.payload) for d in got]
    n_small, n_big = sizes.count(len(small[Raw])), sizes.count(len(big[Raw]))
    counted = drops(t) - before
    if n_small != 20:
        t.fail(f"the client sent 20 datagrams in {MAX_LEN}-byte frames; {n_small} reached the "
               "server's socket, and all should")
    if n_big:
        t.fail(f"the client sent 10 datagrams in 1000-byte frames; {n_big} reached the server's "
               "socket, and none should")
    if counted != 10:
        t.fail(f"10 frames of 1000 bytes were dropped; dropped[0] grew by {counted}, not 10")
    return f"20 datagrams in {MAX_LEN}-byte frames arrived, 10 in 1000-byte frames were dropped and counted"


@case("a ping of the usual size is answered; one with 500 bytes of data is not")
def ping(t):
    small = t.client.ping(t.server, count=2, interval=0.2).received
    assert small == 2, (f"{2 - small} of 2 pings of the usual size (98-byte frames) got no "
                        "answer; they should pass")
    big = t.client.ping(t.server, count=2, interval=0.2, size=500).received
    assert big == 0, (f"{big} of 2 pings with 500 bytes of data (542-byte frames) got an answer; "
                      f"frames longer than {MAX_LEN} bytes should be dropped")
    return "2 pings of 98-byte frames were answered, 2 of 542 bytes were dropped"
