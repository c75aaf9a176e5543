"""Lesson 09: xdplab.kvstore (the UDP key-value server, client, measurements) and the XDP cache
bpf/lesson09_kvcache.c in front of it — replies built in XDP are byte for byte the server's, with
checksums scapy agrees with; the cache stays coherent; invalidating only in XDP is shown racy."""
import signal
import time
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

import xdplab
from xdplab import kvstore
from xdplab.counters import snmp
from xdplab.errors import LabError

KEYS = [kvstore.key(i) for i in range(24)]


# -- the protocol, no network ---------------------------------------------------------------------
def test_store_answers_the_protocol():
    store = kvstore.Store()
    v = kvstore.value("hello").encode()
    assert store.handle(b"GET key00001") == b"MISS key00001"
    assert store.handle(b"SET key00001 " + v) == b"STORED key00001"
    assert store.handle(b"GET key00001") == b"VALUE key00001 " + v
    for bad in (b"GET key1", b"SET key00001 short", b"DEL key00001", b"", b"GET  key0001"):
        assert store.handle(bad) == b"ERROR", bad
    assert store.counts == {"gets": 2, "misses": 1, "sets": 1, "fills": 0, "deletes": 0}
    assert kvstore.parse_reply(store.handle(b"STATS")) == ("STATS", None, store.counts)


def test_keys_and_values_are_checked():
    assert kvstore.key(42) == "key00042" and len(kvstore.value("x")) == kvstore.VAL_LEN
    for call in (lambda: kvstore.get_request("short"), lambda: kvstore.set_request("key00001", "x"),
                 lambda: kvstore.value("with space"), lambda: kvstore.value("x" * 33)):
        with pytest.raises(LabError) as e:
            call()
        assert e.value.hint


def test_replies_parse():
    assert kvstore.parse_reply(b"VALUE key00001 abc") == ("VALUE", "key00001", "abc")
    assert kvstore.parse_reply(b"MISS key00001") == ("MISS", "key00001", None)
    assert kvstore.parse_reply(b"STORED key00001") == ("STORED", "key00001", None)
    assert kvstore.parse_reply(b"what") == ("ERROR", None, None)


# -- a lab with the cache ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lab():
    with xdplab.Lab.pair() as lab:
        yield lab


@pytest.fixture(scope="module")
def kvcache(lab):
    prog = lab.load("lesson09_kvcache.c")
    prog.attach(lab.server)
    return prog


@pytest.fixture
def stack(lab, kvcache):
    """A fresh server keeping the cache, a client, and KEYS stored; the cache emptied first."""
    kvcache.maps["cache"].clear()
    server = kvstore.Server(lab.server, cache=kvcache.maps["cache"])
    client = kvstore.Client(lab.client, lab.server)
    expected = kvstore.fill(client, KEYS)
    yield server, client, expected
    server.stop()
    client.close()


def stats(prog):
    return prog.maps["stats"].snapshot()[0]


def get_frame(lab, k, **udp):
    return (Ether(src=lab.client.mac, dst=lab.server.mac) / IP(src=lab.client.ip, dst=lab.server.ip)
            / UDP(sport=40000, dport=kvstore.PORT, **udp) / kvstore.get_request(k))


def test_server_alone_answers_every_get(pair):
    kvstore.Server(pair.server)          # runs until the lab closes
    client = kvstore.Client(pair.client, pair.server)
    expected = kvstore.fill(client, KEYS[:8])
    assert client.get(KEYS[0]) == expected[KEYS[0]] and client.get("nokey001") is None
    m = kvstore.measure(client, expected, requests=300, seconds=0.2, window=4)
    assert not m.wrong and m.lost == 0 and m.correct == m.requests > 300, m
    assert len(m.latencies_us) == 300 and m.rate > 0
    assert client.stats()["gets"] == 2 + len(expected) + m.requests


def test_hits_are_answered_in_xdp_and_misses_by_the_server(lab, kvcache, stack):
    server, client, expected = stack
    before, udp_before = stats(kvcache), snmp(lab.client)
    m = kvstore.measure(client, expected, requests=400, seconds=0.2, window=8)
    after, udp = stats(kvcache), snmp(lab.client) - udp_before
    assert not m.wrong and m.lost == 0 and m.correct == m.requests, m
    assert after.hits - before.hits == m.requests            # every timed GET: a hit
    assert after.misses - before.misses == len(KEYS)          # the warm-up GETs: misses
    counts = client.stats()
    assert counts["gets"] == counts["fills"] == len(KEYS) and counts["sets"] == len(KEYS)
    assert udp["UdpInDatagrams"] == m.requests + len(KEYS) and "UdpInCsumErrors" not in udp, udp
    assert {k.name: e.value for k, e in kvcache.maps["cache"].snapshot().items()} == expected


def test_the_xdp_reply_is_the_servers_with_right_checksums(lab, kvcache):
    kvcache.maps["cache"].clear()
    v = kvstore.value("hello")
    kvstore.CacheMap(kvcache.maps["cache"].pin()).fill(b"key00042", v.encode())
    for frame in (get_frame(lab, "key00042"), get_frame(lab, "key00042", chksum=0),
                  Ether(bytes(get_frame(lab, "key00042")) + bytes(6))):    # padded to 60 bytes
        res = kvcache.test_run(frame)
        out = res.packet
        assert res.verdict == "XDP_TX", res
        assert len(bytes(out)) == 14 + 20 + 8 + 47                       # padding cut off
        assert out[UDP].load == kvstore.Store(data={b"key00042": v.encode()}).handle(b"GET key00042")
        assert (out.src, out.dst, out[IP].src, out[IP].dst, out[UDP].sport, out[UDP].dport) == \
            (lab.server.mac, lab.client.mac, lab.server.ip, lab.client.ip, kvstore.PORT, 40000)
        fresh = out.copy()
        del fresh[IP].chksum, fresh[UDP].chksum, fresh[IP].len, fresh[UDP].len
        fresh = Ether(bytes(fresh))
        assert (out[IP].len, out[UDP].len, out[IP].chksum, out[UDP].chksum) == \
            (fresh[IP].len, fresh[UDP].len, fresh[IP].chksum, fresh[UDP].chksum)


def test_a_copy_torn_between_two_entries_is_not_answered(lab, kvcache):
    """The kernel fills a reused element without its lock, so a reader's copy can hold part of the
    old entry and part of the new. The program answers only a copy whose check is the hash of its
    key and value: entries written as a torn copy would read are passed to the server."""
    kvcache.maps["cache"].clear()
    cm = kvstore.CacheMap(kvcache.maps["cache"].pin())
    assert cm.checked
    old, new = kvstore.value("o" * 32).encode(), kvstore.value("n" * 32).encode()
    assert kvstore.entry_check(b"key00042", old) != kvstore.entry_check(b"key00042", new)

    def put(value, check):
        entry = bytes(kvstore.LOCK_LEN) + b"key00042" + value + bytes(4) + check.to_bytes(8, "little")
        assert cm.lib.bpf_map_update_elem(cm.fd, b"key00042", entry, kvstore.BPF_F_LOCK) == 0
    frame = get_frame(lab, "key00042")
    for torn in (old[:16] + new[16:], new[:16] + old[16:]):      # half of one value, half the other
        for check in (kvstore.entry_check(b"key00042", old), kvstore.entry_check(b"key00042", new)):
            before = stats(kvcache)
            put(torn, check)
            assert kvcache.test_run(frame).verdict == "XDP_PASS", (torn, check)
            assert stats(kvcache).misses == before.misses + 1
    put(new, kvstore.entry_check(b"key00042", new))             # a whole entry is answered
    res = kvcache.test_run(frame)
    assert res.verdict == "XDP_TX" and res.packet[UDP].load == b"VALUE key00042 " + new
    assert cm.fill(b"key00042", old) and kvcache.test_run(frame).packet[UDP].load == b"VALUE key00042 " + old


def test_only_well_formed_gets_are_answered(lab, kvcache):
    kvcache.maps["cache"].clear()
    kvstore.CacheMap(kvcache.maps["cache"].pin()).fill(b"key00042", kvstore.value("x").encode())
    good = Ether(bytes(get_frame(lab, "key00042")))
    bad_udp = good.copy()
    bad_udp[UDP].chksum ^= 0x0101
    bad_ip = good.copy()
    bad_ip[IP].chksum ^= 0x0101
    other = [bad_udp, bad_ip, get_frame(lab, "key00043"),                      # a miss
             Ether() / IP(dst=lab.server.ip, options=b"\x01\x01\x01\x00") / UDP(dport=kvstore.PORT)
             / b"GET key00042",                                                # IP options
             Ether() / IP(dst=lab.server.ip, flags="MF") / UDP(dport=kvstore.PORT) / b"GET key00042",
             Ether() / IPv6(dst=lab.server.ip6) / UDP(dport=kvstore.PORT) / b"GET key00042",
             Ether() / IP(dst=lab.server.ip) / UDP(dport=kvstore.PORT) / b"GET key00042\n",
             Ether() / IP(dst=lab.server.ip) / UDP(dport=kvstore.PORT + 1) / b"GET key00042",
             Ether(dst="ff:ff:ff:ff:ff:ff") / IP(dst=lab.server.ip) / UDP(dport=kvstore.PORT)
             / b"GET key00042",
             # a hit in a VLAN: the reply is built at untagged offsets, so the server answers it
             Ether(src=lab.client.mac, dst=lab.server.mac) / Dot1Q(vlan=10) / good[IP]]
    for frame in other:
        res = kvcache.test_run(frame)
        assert res.verdict == "XDP_PASS" and not res.diff, frame.summary()
    assert kvcache.test_run(good).verdict == "XDP_TX"


def test_a_set_passing_by_invalidates_the_key(lab, kvcache):
    kvcache.maps["cache"].clear()
    kvstore.CacheMap(kvcache.maps["cache"].pin()).fill(b"key00042", kvstore.value("x").encode())
    before = stats(kvcache)
    res = kvcache.test_run(Ether() / IP(dst=lab.server.ip) / UDP(dport=kvstore.PORT)
                           / kvstore.set_request("key00042", kvstore.value("y")))
    assert res.verdict == "XDP_PASS" and not res.diff
    assert len(kvcache.maps["cache"]) == 0 and stats(kvcache).sets == before.sets + 1


def test_udp_checksum_zero_variant(lab):
    prog = lab.load("lesson09_kvcache.c", cflags=["-DUDP_CSUM_ZERO"])
    try:
        kvstore.CacheMap(prog.maps["cache"].pin("zero_cache")).fill(b"key00042", kvstore.value("x").encode())
        out = prog.test_run(get_frame(lab, "key00042")).packet
        fresh = out.copy()
        del fresh[IP].chksum
        assert out[UDP].chksum == 0 and out[IP].chksum == Ether(bytes(fresh))[IP].chksum
    finally:
        prog.close()


def test_sets_then_gets_never_return_a_stale_value(kvcache, stack):
    server, client, expected = stack
    hits = stats(kvcache).hits
    assert kvstore.coherence(client, KEYS[:8], rounds=3) == []
    assert stats(kvcache).hits - hits == 8 * 3


def test_sets_the_program_does_not_see_still_keep_the_cache_right(lab, kvcache, stack):
    """Over IPv6 the program sees nothing; the server's own delete keeps IPv4 readers right."""
    server, client, expected = stack
    client6 = kvstore.Client(lab.client, lab.server, ipv6=True)
    assert client.get(KEYS[0]) == expected[KEYS[0]] == client.get(KEYS[0])   # now cached
    before = stats(kvcache)
    client6.set(KEYS[0], kvstore.value("over-ipv6"))
    assert stats(kvcache) == before
    assert client.get(KEYS[0]) == kvstore.value("over-ipv6")
    client6.close()


def test_the_cache_answers_while_the_server_is_frozen(kvcache, stack):
    server, client, expected = stack
    assert client.get(KEYS[1]) == expected[KEYS[1]]               # cached now
    with server.paused():
        assert client.try_get(KEYS[1], timeout=0.3) == ("VALUE", KEYS[1], expected[KEYS[1]])
        assert client.try_get("nokey001", timeout=0.3) is None
    assert client.receive(1) == [("MISS", "nokey001", None)]


def test_invalidating_only_in_xdp_is_racy(lab, kvcache):
    kvcache.maps["cache"].clear()
    client = kvstore.Client(lab.client, lab.server)
    racy = kvstore.Server(lab.server, cache=kvcache.maps["cache"], invalidate=False)
    old, new, after = kvstore.race(client, racy, KEYS[2])
    assert after == old != new
    racy.stop()
    server = kvstore.Server(lab.server, cache=kvcache.maps["cache"])
    old, new, after = kvstore.race(client, server, KEYS[3])
    assert after == new != old
    server.stop()
    client.close()


def test_a_full_cache_leaves_the_rest_to_the_server(pair):
    prog = pair.load("lesson09_kvcache.c", cflags=["-DCACHE_ENTRIES=4"])
    prog.attach(pair.server)
    kvstore.Server(pair.server, cache=prog.maps["cache"])
    client = kvstore.Client(pair.client, pair.server)
    expected = kvstore.fill(client, KEYS[:12])
    m = kvstore.measure(client, expected, requests=120, seconds=0.1, window=4)
    assert not m.wrong and m.lost == 0 and m.correct == m.requests, m
    assert len(prog.maps["cache"]) == 4 and 0 < stats(prog).hits < m.requests
    assert client.stats()["fills"] == 4


def test_server_errors_are_explained(pair, tmp_path):
    with pytest.raises(LabError) as e:
        kvstore.Server(pair.server, cache=tmp_path / "no-such-pin")
    assert "pinned cache map" in e.value.message and e.value.hint == "pin it first: prog.maps['cache'].pin()"
    first = kvstore.Server(pair.server)
    with pytest.raises(LabError) as e:
        kvstore.Server(pair.server)
    assert "port 11211" in e.value.message and "stop that one" in e.value.hint
    with pytest.raises(LabError):
        kvstore.CacheMap(pair.load("xdp_count.c").maps["counters"].pin())
    first.stop()
    assert first.proc.returncode == -signal.SIGKILL


def test_the_server_stops_with_the_lab():
    lab = xdplab.Lab.pair()
    try:
        server = kvstore.Server(lab.server)
        server.pause()                 # even a stopped server goes
    finally:
        lab.close()
    deadline = time.monotonic() + 5
    while server.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.proc.poll() is not None


def test_plot_draws_both_panels():
    import matplotlib
    matplotlib.use("Agg")
    m = kvstore.Measurement([10.0, 12.0, 30.0], 1000.0, 16)
    fig = kvstore.plot({"server alone": m, "with the XDP cache": m})
    lat, thr = fig.axes
    assert len(lat.lines) == 2 and len(thr.patches) == 2
    assert "16 requests in flight" in thr.get_title()


# -- lesson 09 under "Run All", and its proofs re-run after the learner has played ----------------
LESSON09 = Path(__file__).resolve().parent.parent / "notebooks" / "09-stack-acceleration.ipynb"

PLAYED = """
client.set("key00042", kvstore.value("played"))     # what "Watch it" invites: a SET and some GETs
assert client.get("key00042") == kvstore.value("played")
client.get("key00007")
client.get("nokey009")
"""


def test_lesson09_proofs_pass_again_after_the_learner_played():
    """Lesson 09 top to bottom (no cell closes its lab), then a SET and GETs as "Watch it" invites,
    then every cell of "Prove it" again: each passes, because each proves its own requests (the
    reply XDP builds is compared with the value the server holds now)."""
    from notebook_session import NotebookSession

    with NotebookSession(LESSON09, timeout=120) as nb:
        proofs = nb.section("## Prove it", "## Try this")
        assert len(proofs) >= 8
        nb.run(PLAYED)
        for i in proofs:
            nb.again(i)                             # passes again
