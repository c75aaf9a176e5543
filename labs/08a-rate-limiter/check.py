"""Lab 08a — a per-source token bucket: BURST packets pass at once, then RATE per second."""
import ipaddress
import time

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether

from xdplab import sampling
from xdplab.checks import case, verdict

TITLE = "A per-source rate limiter"
ATTACH = "server"
HINTS = [
    "Each IPv4 source has its own bucket in `buckets`: look it up with the source address as "
    "key (u32 src = iph->saddr; buckets.lookup(&src)). When there is none, the source is new: "
    "store a full bucket with .last_ns = bpf_ktime_get_ns(), and let the packet take its first "
    "token (pass it).",
    "When the bucket exists: no tokens left → XDP_DROP; else take one (b->tokens--) and pass. "
    "Then add the refill in front of that: the tokens earned since last_ns are "
    "(now - b->last_ns) / NS_PER_TOKEN.",
    "Refilling: add the earned tokens, but never above BURST, and move last_ns forward by the time "
    "those tokens stand for (earned * NS_PER_TOKEN) — or to now when the bucket is full. If you set "
    "last_ns = now on every packet, a steady trickle never earns a whole token.",
]

RATE, BURST = 20, 10          # as starter.c defines them
eth = Ether(src="02:58:4c:00:00:01", dst="02:58:4c:00:00:02")


def udp_from(src):
    return eth / IP(src=src, dst="10.11.0.2") / UDP(sport=4000, dport=9) / b"token"


def burst(t, src, n):
    """Run n packets from `src` through the program at once: (verdicts, seconds they took)."""
    pkt = bytes(udp_from(src))               # built once: the runs follow each other closely
    start = time.monotonic()
    verdicts = [t.verdict(pkt) for _ in range(n)]
    return verdicts, time.monotonic() - start


def earned(seconds):
    """The most tokens a bucket can earn in `seconds` (one more for a token already under way)."""
    return int(seconds * RATE) + 1


def full_bucket(t, src):
    verdicts, took = burst(t, src, BURST + 5)
    first = verdicts[:BURST].count("XDP_PASS")
    if first != BURST:
        t.fail(f"only {first} of the first {BURST} packets from {src} (a new source) passed; a new "
               f"source starts with a full bucket, so all {BURST} should")
    extra = verdicts[BURST:].count("XDP_PASS")
    if extra > earned(took) - 1:
        t.fail(f"after {src}'s first {BURST} packets its bucket is empty, yet {extra} of the next 5 "
               f"passed, sent within {took * 1000:.0f} ms (the bucket earns one token every "
               f"{1000 // RATE} ms)")


@case(f"a new source's first {BURST} packets pass, the next ones are dropped")
def first_burst(t):
    full_bucket(t, "192.0.2.1")
    return f"the first {BURST} packets from 192.0.2.1 passed, the next 5 were dropped"


NS_PER_TOKEN = 1_000_000_000 // RATE
TRICKLE_GAP, TRICKLE_SECONDS = 0.035, 3.0    # 28.6 packets a second: more than RATE, less than 2 x RATE


def bucket_passes(times):
    """How many packets a right token bucket passes when they arrive at `times` (ns, the
    clock of bpf_ktime_get_ns()): the first starts a full bucket and takes a token; each packet
    adds the tokens earned since last_ns, moving last_ns on by exactly their time."""
    tokens, last, passed = BURST - 1, times[0], 1
    for now in times[1:]:
        earned = max(now - last, 0) // NS_PER_TOKEN
        if tokens + earned >= BURST:
            tokens, last = BURST, now
        else:
            tokens, last = tokens + earned, last + earned * NS_PER_TOKEN
        if tokens:
            tokens, passed = tokens - 1, passed + 1
    return passed


@case(f"a steady trickle of one packet every {TRICKLE_GAP * 1000:.0f} ms for {TRICKLE_SECONDS:.0f} s: "
      f"the first {BURST} pass, then {RATE} a second")
def trickle(t):
    src = sampling.ipv4(t.rng)
    pkt = bytes(udp_from(src))
    before, after, passed = [], [], 0
    start = time.monotonic()
    for i in range(int(TRICKLE_SECONDS / TRICKLE_GAP)):
        time.sleep(max(0.0, start + i * TRICKLE_GAP - time.monotonic()))
        before.append(time.monotonic_ns())   # the program's clock (bpf_ktime_get_ns) is this one
        passed += t.verdict(pkt) == "XDP_PASS"
        after.append(time.monotonic_ns())
    took = (after[-1] - before[0]) / 1e9
    # the program read its clock between `before` and `after` of each packet
    low, high = sorted((bucket_passes(before), bucket_passes(after)))
    if not low - 1 <= passed <= high + 1:
        t.fail(f"a steady trickle of {len(before)} packets from {src}, one every "
               f"{TRICKLE_GAP * 1000:.0f} ms for {took:.1f} s ({len(before) / took:.0f} a second, more "
               f"than the {RATE} a second its bucket allows): {passed} passed. A token bucket lets "
               f"{low if low == high else f'{low} to {high}'} of them pass here: its first {BURST} at "
               f"once, then one for every {1000 // RATE} ms that went by, however the packets fall "
               "between the tokens")
    return (f"a steady trickle of {len(before)} packets from {src} over {took:.1f} s: {passed} passed, "
            f"as a token bucket of {BURST} tokens, {RATE} a second, lets through")


@case("another source has a bucket of its own")
def own_bucket(t):
    full_bucket(t, "192.0.2.5")              # 192.0.2.5's bucket is empty now ...
    verdicts, _ = burst(t, "192.0.2.6", BURST)
    passed = verdicts.count("XDP_PASS")
    if passed != BURST:
        t.fail(f"with 192.0.2.5's bucket empty, only {passed} of {BURST} packets from 192.0.2.6 "
               f"passed; 192.0.2.6 has a full bucket of its own, so all should")
    return f"with 192.0.2.5's bucket empty, {BURST} of {BURST} packets from 192.0.2.6 passed"


TABLE = 1024                                 # the sources `buckets` holds (starter.c)
STRANGERS = 3 * TABLE


@case(f"after one packet from each of {STRANGERS:,} made-up sources, more than `buckets` holds, a new "
      f"source is still limited")
def table_full(t):
    first = t.rng.randrange(1 << 17)          # in 198.18.0.0/15, the range set aside for tests
    for i in range(STRANGERS):
        made_up = ipaddress.ip_address("198.18.0.0") + (first + i) % (1 << 17)
        t.verdict(bytes(udp_from(str(made_up))))
    src = "192.0.2.7"
    verdicts, took = burst(t, src, BURST + 5)
    passed = verdicts.count("XDP_PASS")
    if passed > BURST + earned(took) - 1:
        t.fail(f"after packets from {STRANGERS:,} made-up sources (more than the {TABLE} that `buckets` "
               f"holds), {passed} of {BURST + 5} packets from {src}, a new source, passed at once; it "
               f"should get {BURST}, as any new source does. A sender can fill the map with made-up "
               "addresses: does a source that comes after that still get a bucket?")
    if verdicts[:BURST].count("XDP_PASS") != BURST:
        t.fail(f"after packets from {STRANGERS:,} made-up sources, only {verdicts[:BURST].count('XDP_PASS')} "
               f"of the first {BURST} packets from {src}, a new source, passed; it should start with a "
               "full bucket")
    return (f"after {STRANGERS:,} made-up sources, {src} (new) got its {BURST} packets, and the next 5 "
            "were dropped")


@case("after a pause, a bucket has earned tokens again, one per 50 ms")
def refill(t):
    src = "192.0.2.3"
    full_bucket(t, src)
    emptied = time.monotonic()
    time.sleep(0.3)                          # 6 tokens at 20 per second
    verdicts, _ = burst(t, src, BURST)
    window = time.monotonic() - emptied
    passed = verdicts.count("XDP_PASS")
    if passed < 3:
        t.fail(f"after a pause of 0.3 s only {passed} of {BURST} packets from {src} passed; the "
               f"bucket earned {int(0.3 * RATE)} tokens meanwhile ({RATE} per second)")
    if passed > earned(window):
        t.fail(f"after a pause of 0.3 s, {passed} of {BURST} packets from {src} passed; in "
               f"{window:.2f} s the bucket earns at most {earned(window)} tokens")
    return f"after a pause of 0.3 s, {passed} of {BURST} packets from {src} passed (about {int(0.3 * RATE)} expected)"


CASES = [
    verdict("An ARP request", eth / ARP(psrc="10.11.0.1", pdst="10.11.0.2"), "pass"),
    # cases the notebook does not show
    verdict("An IPv6 packet", eth / IPv6(src="fd00:11::1", dst="fd00:11::2") / UDP(dport=9), "pass", hidden=True,
            about="IPv6"),
    verdict("A 20-byte frame cut in the middle of its IPv4 header",
            Ether(bytes(udp_from("192.0.2.9"))[:20]), "pass", hidden=True,
            about="a frame that ends inside its IPv4 header"),
]


@case(f"a bucket never holds more than {BURST} tokens, however long the pause", hidden=True,
      about="a burst after a long pause")
def capped(t):
    src = "192.0.2.4"
    t.verdict(udp_from(src))
    time.sleep(1.0)                          # 20 tokens' worth: the bucket is full at 10
    verdicts, took = burst(t, src, 2 * BURST)
    passed = verdicts.count("XDP_PASS")
    if passed > BURST + earned(took):
        t.fail(f"after a pause of 1 s, {passed} packets from {src} in a row passed; a bucket holds "
               f"at most {BURST} tokens, so about {BURST} should")
    if passed < BURST:
        t.fail(f"after a pause of 1 s only {passed} packets from {src} in a row passed; its bucket "
               f"was full again ({BURST} tokens)")
    return f"after a pause of 1 s, {passed} packets from {src} in a row passed, the rest were dropped"


@case(f"of 1000 datagrams the client sends at once, about {BURST} reach the server")
def traffic(t):
    sink = t.listen(t.server, 9000)
    start = time.monotonic()
    t.client.send(IP(dst=t.server.ip) / UDP(sport=4000, dport=9000) / b"flood", count=1000)
    took = time.monotonic() - start
    got = len(sink.receive(1000, timeout=0.5))
    most = BURST + earned(took) + 1          # + 1: two CPUs may share a token now and then
    if got < BURST:
        t.fail(f"only {got} of 1000 datagrams from the client reached the server; its first "
               f"{BURST} should (a new source starts with a full bucket)")
    if got > most:
        t.fail(f"{got} of 1000 datagrams from the client reached the server within "
               f"{took:.2f} s; its bucket allows at most {most}")
    return f"{got} of 1000 datagrams from the client reached the server, the rest were dropped"
