"""Maps: typed snapshots of real maps filled by real XDP programs from real packets (and, for the
big map, from user space), per-CPU sums, batch vs per-key reads, rates, clear, pinning."""
import ctypes
import json
import os
import socket
import subprocess
import time
from ipaddress import IPv4Address, IPv6Address

import pytest
from scapy.all import IP, UDP, Ether, raw

import xdplab
from xdplab import LabError, maps, netns
from xdplab.lab.measure import measure
from xdplab.maps import NATIVE

ECHO_FRAME = 14 + 20 + 8 + 56          # what `ping` sends: Ethernet + IPv4 + ICMP + 56 bytes

# Counts IPv4 frames only: in the first seconds of a lab, the client's IPv6 stack also sends
# multicast listener reports, which would make exact counts of pings racy.
COUNT_IPV4 = r"""
#include "parsing_helpers.h"
#ifndef VERDICT
#define VERDICT XDP_PASS
#endif
struct datarec { u64 packets; u64 bytes; };
BPF_PERCPU_ARRAY(counters, struct datarec, XDP_ACTION_MAX);

int xdp_count_ipv4(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
    struct hdr_cursor nh = { .pos = data };
    struct ethhdr *eth;
    u32 action = VERDICT;

    if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    struct datarec *rec = counters.lookup(&action);
    if (rec) {                      /* this CPU's own copy: plain additions are safe */
        rec->packets++;
        rec->bytes += data_end - data;
    }
    return VERDICT;
}
"""

BY_SOURCE = r"""
#include "parsing_helpers.h"
struct flow { u32 saddr; u32 daddr; u16 sport; u16 dport; u8 proto; };   /* plain types */
struct stats { u64 packets; u64 bytes; };
BPF_HASH(src_count, u32, u64, 1024);            /* keyed by iph->saddr, as read from the packet */
BPF_HASH(flows, struct flow, struct stats, 1024);
BPF_HASH(v6_echo, struct in6_addr, u64, 64);

int xdp_by_source(struct xdp_md *ctx)
{
    void *data_end = (void *)(long)ctx->data_end;
    struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
    struct ethhdr *eth; struct iphdr *iph; struct ipv6hdr *ip6h;
    struct udphdr *udph; struct icmp6hdr *icmp6h;
    u64 zero = 0, *n;
    int proto = parse_ethhdr(&nh, data_end, &eth);

    if (proto == bpf_htons(ETH_P_IPV6)) {
        if (parse_ip6hdr(&nh, data_end, &ip6h) == IPPROTO_ICMPV6
            && parse_icmp6hdr(&nh, data_end, &icmp6h) == ICMPV6_ECHO_REQUEST) {
            struct in6_addr src = ip6h->saddr;
            n = v6_echo.lookup_or_try_init(&src, &zero);
            if (n)
                __sync_fetch_and_add(n, 1);
        }
        return XDP_PASS;
    }
    if (proto != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    proto = parse_iphdr(&nh, data_end, &iph);
    if (proto < 0)
        return XDP_PASS;
    u32 saddr = iph->saddr;
    n = src_count.lookup_or_try_init(&saddr, &zero);
    if (n)
        __sync_fetch_and_add(n, 1);

    struct flow f;
    __builtin_memset(&f, 0, sizeof(f));        /* padding too: the whole struct is the key */
    f.saddr = iph->saddr;
    f.daddr = iph->daddr;
    f.proto = proto;
    if (proto == IPPROTO_UDP) {
        if (parse_udphdr(&nh, data_end, &udph) < 0)
            return XDP_PASS;
        f.sport = udph->source;          /* network order, as in the packet */
        f.dport = udph->dest;
    }
    struct stats none = {}, *s = flows.lookup_or_try_init(&f, &none);
    if (s) {
        __sync_fetch_and_add(&s->packets, 1);
        __sync_fetch_and_add(&s->bytes, (u64)(data_end - (void *)(long)ctx->data));
    }
    return XDP_PASS;
}
"""

BIG = r"""
#include "parsing_helpers.h"
BPF_HASH(big, u32, u64, 65536);
BPF_PERCPU_HASH(big_percpu, u32, u64, 4096);
struct lpm_key { u32 prefixlen; __be32 addr; };
BPF_LPM_TRIE(routes, struct lpm_key, u32, 16);
struct three { u32 a, b, c; };                   /* 12 bytes: each CPU's copy padded to 16 */
BPF_PERCPU_ARRAY(three_pc, struct three, 4);
int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }
"""


def fill(table, pairs):
    """Fill a bcc table from user space in one BPF_MAP_UPDATE_BATCH (values: one per CPU slot
    for per-CPU tables)."""
    keys = (table.Key * len(pairs))(*[k for k, _ in pairs])
    values = (table.Leaf * len(pairs))(*[v for _, v in pairs])
    table.items_update_batch(keys, values)


def send_udp(src, dst, sport, dport, count):
    """UDP frames from host `src` to `dst`, written by an AF_PACKET socket inside `src`."""
    frame = raw(Ether(src=src.mac, dst=src.iface(dst).peer.mac)
                / IP(src=src.ip, dst=src.address_of(dst)) / UDP(sport=sport, dport=dport) / (b"x" * 18))
    with netns.enter(src.ns):
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
            s.bind((src.ifname, 0))
            for _ in range(count):
                s.send(frame)
    return len(frame)


def test_counts_per_action_summed_over_cpus(pair):
    prog = pair.load(COUNT_IPV4)
    prog.attach(pair.server)
    m = prog.maps["counters"]
    assert (m.kind, m.max_entries, m.percpu) == ("percpu_array", 5, True)
    assert m.kinds == {"key": "action", "value": {"packets": "int", "bytes": "int"}}
    # pings sent from CPU 0, then from CPU 1: a veth delivers each frame on the sender's CPU
    for cpu, n in ((0, 3), (1, 4)):
        out = pair.client.run(["taskset", "-c", str(cpu), "ping", "-4", "-n", "-c", str(n),
                               "-i", "0.05", "-W", "1", pair.server.ip])
        assert f"{n} received" in out.stdout
    snap = m.snapshot()
    assert list(snap) == ["XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT"]
    assert snap["XDP_PASS"] == (7, 7 * ECHO_FRAME)
    assert snap["XDP_PASS"].packets == 7 and snap["XDP_PASS"].bytes == 7 * ECHO_FRAME
    assert all(v == (0, 0) for k, v in snap.items() if k != "XDP_PASS")
    per_cpu = m.snapshot(per_cpu=True)["XDP_PASS"]
    assert len(per_cpu) == m.ncpus and [c.packets for c in per_cpu[:2]] == [3, 4]   # CPU by CPU
    assert m.snapshot(batch=False) == snap and m.read_method == "per-key"
    assert m.snapshot() == snap and m.read_method == "batch"
    assert len(m) == 5 and m.fd > 0 and m.id > 0
    assert "XDP_PASS" in repr(m) and "<td>XDP_PASS</td>" in m._repr_html_()
    m.clear()
    assert m.snapshot() == {k: (0, 0) for k in snap}


def test_drop_counts_under_its_own_action(pair):
    prog = pair.load(COUNT_IPV4, cflags=["-DVERDICT=XDP_DROP"])
    prog.attach(pair.server, mode="generic")
    assert pair.client.ping(pair.server, count=3, interval=0.05, timeout=0.3).received == 0
    assert prog.maps["counters"].snapshot(skip_zero=True) == {"XDP_DROP": (3, 3 * ECHO_FRAME)}


def test_addresses_ports_and_protocols_are_typed(pair):
    prog = pair.load(BY_SOURCE)
    prog.attach(pair.server)
    assert pair.client.ping(pair.server, count=4, interval=0.05).received == 4
    size = send_udp(pair.client, pair.server, 5353, 53, count=3)
    assert pair.client.ping(pair.server, count=2, interval=0.05, ipv6=True).received == 2

    src = prog.maps["src_count"]
    assert src.kinds == {"key": "ipv4", "value": "int"}
    assert src.snapshot() == {IPv4Address("10.11.0.1"): 7}
    # what the kernel holds: the address bytes in packet order, so a u32 read on this CPU differs
    assert src.declare(key="int").snapshot() == {int.from_bytes(bytes([10, 11, 0, 1]), "little"): 7}
    assert src.declare(key="ipv4").snapshot() == {IPv4Address("10.11.0.1"): 7}

    flows = prog.maps["flows"]
    assert flows.kinds["key"] == {"saddr": "ipv4", "daddr": "ipv4", "sport": "port",
                                  "dport": "port", "proto": "proto"}
    snap = flows.snapshot()
    client, server = IPv4Address(pair.client.ip), IPv4Address(pair.server.ip)
    assert snap == {(client, server, 5353, 53, "UDP"): (3, 3 * size),
                    (client, server, 0, 0, "ICMP"): (4, 4 * ECHO_FRAME)}
    key = next(k for k in snap if k.proto == "UDP")
    assert (key.saddr, key.dport, snap[key].packets) == (client, 53, 3)
    assert type(key).__name__ == "flow" and key._fields == ("saddr", "daddr", "sport", "dport", "proto")
    # a program that stored bpf_ntohs(udph->dest) would declare the port a plain int
    assert (53 << 8) in {k.dport for k in flows.declare(key={"dport": "int"}).snapshot()}

    assert prog.maps["v6_echo"].snapshot() == {IPv6Address(pair.client.ip6): 2}
    html = flows._repr_html_()
    assert "<th>saddr</th>" in html and "<td>10.11.0.1</td>" in html and "<td>UDP</td>" in html


def test_declare_errors_say_what_fits(pair):
    prog = pair.load(BY_SOURCE)
    flows = prog.maps["flows"]
    with pytest.raises(LabError, match="no field 'port'") as e:
        flows.declare(key={"port": "int"})
    assert "saddr, daddr, sport, dport, proto" in e.value.hint
    with pytest.raises(LabError, match="cannot hold kind 'ipv6'"):
        flows.declare(key={"saddr": "ipv6"})
    with pytest.raises(LabError, match="unknown kind 'address'"):
        prog.maps["src_count"].declare(key="address")
    assert flows.kinds["key"]["saddr"] == "ipv4"          # a failed declare changes nothing
    with pytest.raises(LabError, match="no map 'nope'") as e:
        prog.maps["nope"]
    assert "flows" in e.value.hint
    prog.close()
    with pytest.raises(LabError, match="closed"):
        flows.snapshot()


def test_big_hash_batch_and_per_key_reads_agree(pair):
    prog = pair.load(BIG)
    big = prog.maps["big"]
    fill(prog.bpf["big"], [(k, k * 3 + 1) for k in range(65536)])
    batch = big.snapshot()
    assert big.read_method == "batch"
    per_key = big.snapshot(batch=False)
    assert big.read_method == "per-key"
    assert batch == per_key and len(batch) == 65536 == len(big)
    assert batch == {k: k * 3 + 1 for k in range(65536)}

    pc = prog.maps["big_percpu"]
    ncpu = pc.ncpus
    leaf = prog.bpf["big_percpu"].Leaf
    fill(prog.bpf["big_percpu"], [(k, leaf(*[k + c for c in range(ncpu)])) for k in range(4096)])
    summed = pc.snapshot()
    assert summed == pc.snapshot(batch=False) == {k: ncpu * k + sum(range(ncpu)) for k in range(4096)}
    assert pc.snapshot(per_cpu=True)[10] == tuple(10 + c for c in range(ncpu))

    big.clear()
    assert big.snapshot() == {} and len(big) == 0


def test_percpu_struct_of_any_size(pair):
    prog = pair.load(BIG)
    m = prog.maps["three_pc"]
    slot = (ctypes.c_uint32 * 4) * m.ncpus             # the kernel's layout: 16 bytes per CPU
    values = slot(*[(c + 1, 10 * (c + 1), 100, 0) for c in range(m.ncpus)])
    assert maps.libbpf().bpf_map_update_elem(m.fd, ctypes.byref(ctypes.c_uint32(3)), values, 0) == 0
    n = m.ncpus
    assert m.snapshot()[3] == (n * (n + 1) // 2, 10 * n * (n + 1) // 2, 100 * n)
    assert m.snapshot(per_cpu=True)[3][1] == (2, 20, 100)
    assert m.snapshot(skip_zero=True, batch=False) == {3: m.snapshot()[3]}


def test_lpm_trie_falls_back_to_per_key(pair):
    prog = pair.load(BIG)
    trie = prog.bpf["routes"]
    addr = int.from_bytes(bytes([10, 11, 0, 0]), "little")
    trie[trie.Key(16, addr)] = ctypes.c_uint32(7)
    routes = prog.maps["routes"]
    assert routes.kinds["key"] == {"prefixlen": "int", "addr": "ipv4"}
    assert routes.snapshot() == {(16, IPv4Address("10.11.0.0")): 7}
    assert routes.read_method == "per-key"
    with pytest.raises(LabError, match="cannot batch-read"):
        routes.snapshot(batch=True)


def test_rates_between_snapshots(pair):
    prog = pair.load(COUNT_IPV4)
    prog.attach(pair.server)
    m = prog.maps["counters"]
    prev = m.snapshot()
    pair.client.ping(pair.server, count=4, interval=0.05)
    cur = m.snapshot()
    r = maps.rates(prev, cur, 2.0)
    assert r["XDP_PASS"] == (2.0, 4 * ECHO_FRAME / 2.0) and r["XDP_DROP"] == (0.0, 0.0)

    before_first = time.monotonic()
    assert all(v == (0.0, 0.0) for v in m.rates(interval=0.1).values())
    after_first = time.monotonic()
    pair.client.ping(pair.server, count=5, interval=0.05)
    before_second = time.monotonic()
    rate = m.rates()["XDP_PASS"]
    after_second = time.monotonic()
    # the window rates() measured lies between these bounds; 5 packets arrived within it
    assert 5 / (after_second - before_first) <= rate.packets <= 5 / (before_second - after_first)
    assert rate.bytes == pytest.approx(rate.packets * ECHO_FRAME)
    m.clear()                               # a counter that goes down was reset, not negative
    assert all(v.packets >= 0 for v in m.rates().values())


def test_pin_is_readable_by_bpftool_and_removed_with_the_lab():
    with xdplab.Lab.pair() as lab:
        prog = lab.load(COUNT_IPV4)
        prog.attach(lab.server)
        lab.client.ping(lab.server, count=3, interval=0.05)
        m = prog.maps["counters"]
        path = m.pin()
        assert path == f"/sys/fs/bpf/xdplab/{lab.id}/counters" and m.pin() == path
        dump = json.loads(subprocess.run(["bpftool", "-j", "map", "dump", "pinned", path],
                                         capture_output=True, text=True, check=True).stdout)
        # bpftool shows the per-CPU copies with the field names from the program's BTF
        packets = {e["formatted"]["key"]: sum(c["value"]["packets"] for c in e["formatted"]["values"])
                   for e in dump}
        assert packets == {0: 0, 1: 0, 2: 3, 3: 0, 4: 0}
        assert m.snapshot()["XDP_PASS"].packets == 3
        show = json.loads(subprocess.run(["bpftool", "-j", "map", "show", "pinned", path],
                                         capture_output=True, text=True, check=True).stdout)
        assert show["id"] == m.id and show["type"] == m.kind
        with pytest.raises(LabError, match="outside"):
            m.pin("/sys/fs/bpf/elsewhere")
        other = lab.load(COUNT_IPV4, cflags=["-DVERDICT=XDP_DROP"]).maps["counters"]
        with pytest.raises(LabError, match="already pins another map"):
            other.pin()
        assert other.pin("drop_counters").endswith(f"{lab.id}/drop_counters")
    assert not os.path.exists(f"/sys/fs/bpf/xdplab/{lab.id}")


class _Bulk(ctypes.Structure):
    _fields_ = [("saddr", ctypes.c_uint32), ("sport", ctypes.c_uint16), ("dport", ctypes.c_uint16),
                ("proto", ctypes.c_uint8), ("action", ctypes.c_uint8), ("h_proto", ctypes.c_uint16),
                ("mac", ctypes.c_uint8 * 6), ("packets", ctypes.c_uint64), ("delta", ctypes.c_int32),
                ("dst6", ctypes.c_uint8 * 16), ("name", ctypes.c_char * 5), ("hist", ctypes.c_uint16 * 3),
                ("flag", ctypes.c_uint32, 3), ("rest", ctypes.c_uint32, 29)]


class _NoBits(ctypes.Structure):
    _fields_ = _Bulk._fields_[:-2]


@pytest.mark.parametrize("ctype, declared", [
    (_Bulk, None), (_NoBits, None), (_NoBits, {"saddr": "ipv4_host", "sport": "int", "proto": "int"}),
    (_NoBits, {"packets": "be", "h_proto": "ethertype", "delta": "int"}),
    (ctypes.c_uint32, "ipv4"), (ctypes.c_uint32, "ipv4_host"), (ctypes.c_uint32, "port"),
    (ctypes.c_uint16, "ethertype"), (ctypes.c_uint8, "proto"), (ctypes.c_uint32, "action"),
    (ctypes.c_int64, None), (ctypes.c_int16, "be"), (ctypes.c_uint8 * 6, "mac")])
@pytest.mark.parametrize("stride_pad", [0, 3, 8])
def test_bulk_columns_decode_exactly_like_one_record_at_a_time(ctype, declared, stride_pad):
    """Snapshots decode whole batch buffers at once (memoryview casts, struct.iter_unpack); on
    random bytes, at any record stride and offset, that must give exactly what decode() gives."""
    import random
    rng = random.Random(1234 + stride_pad)
    codec = maps.make_codec(ctype, "m", None, declared, top=True)
    size = ctypes.sizeof(ctype)
    for offset in (0, stride_pad):
        stride, n = size + stride_pad + offset, 257
        buf = memoryview(bytes(rng.randrange(256) for _ in range(n * stride))).cast("B")
        want = [codec.decode(buf, offset + i * stride) for i in range(n)]
        assert list(codec.column(buf, n, stride, offset)) == want


# --- writing -------------------------------------------------------------------------------------

RULES = r"""
#include "parsing_helpers.h"
struct flow { u32 saddr; u32 daddr; u16 sport; u16 dport; u8 proto; };   /* network order */
struct rule { u64 hits; u32 verdict; };
BPF_HASH(rules, struct flow, struct rule, 4);

int xdp_rules(struct xdp_md *ctx)
{
    void *data_end = (void *)(long)ctx->data_end;
    struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
    struct ethhdr *eth; struct iphdr *iph; struct udphdr *udph;

    if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP)
        || parse_iphdr(&nh, data_end, &iph) != IPPROTO_UDP || parse_udphdr(&nh, data_end, &udph) < 0)
        return XDP_PASS;
    struct flow f;
    __builtin_memset(&f, 0, sizeof(f));
    f.saddr = iph->saddr;
    f.daddr = iph->daddr;
    f.sport = udph->source;
    f.dport = udph->dest;
    f.proto = IPPROTO_UDP;
    struct rule *r = rules.lookup(&f);
    if (!r)
        return XDP_PASS;
    __sync_fetch_and_add(&r->hits, 1);
    return r->verdict;
}
"""

DEVMAP = r"""
#include "parsing_helpers.h"
BPF_DEVMAP(tx_port, 4);
int xdp_tx_port(struct xdp_md *ctx) { return tx_port.redirect_map(0, 0); }
"""


def udp_received(host):
    """UDP datagrams the host's stack has taken in (delivered or refused for want of a socket)."""
    snmp = host.run(["cat", "/proc/net/snmp"]).stdout.splitlines()
    udp = [line.split()[1:] for line in snmp if line.startswith("Udp:")]
    counts = dict(zip(udp[0], map(int, udp[1])))
    return counts["InDatagrams"] + counts["NoPorts"]


def test_a_hash_of_structs_is_written_with_typed_keys_the_program_matches(pair):
    """Keys go in as snapshot() gives them out: the program finds them by the packet's own
    bytes, so an address or a port in the wrong byte order would match nothing."""
    prog = pair.load(RULES)
    prog.attach(pair.server)
    rules = prog.maps["rules"]
    assert rules.kinds == {"key": {"saddr": "ipv4", "daddr": "ipv4", "sport": "port", "dport": "port",
                                   "proto": "proto"}, "value": {"hits": "int", "verdict": "action"}}
    client, server = IPv4Address(pair.client.ip), IPv4Address(pair.server.ip)
    dns = (client, server, 5353, 53, "UDP")
    rules[dns] = (0, "XDP_DROP")
    assert rules.snapshot() == {dns: (0, "XDP_DROP")} and rules[dns].verdict == "XDP_DROP"
    assert dns in rules and (client, server, 5354, 53, "UDP") not in rules
    # what the kernel holds, through bcc's own table: the fields in network order
    (key, leaf), = prog.bpf["rules"].items()
    assert (key.sport, key.dport, key.proto) == (socket.htons(5353), socket.htons(53), 17)
    assert bytes(key)[:8] == bytes([10, 11, 0, 1, 10, 11, 0, 2]) and leaf.verdict == 1

    before = udp_received(pair.server)
    send_udp(pair.client, pair.server, 5353, 53, count=3)       # matched: dropped and counted
    send_udp(pair.client, pair.server, 5354, 53, count=2)       # no rule: passed
    assert rules[dns] == (3, "XDP_DROP")
    assert udp_received(pair.server) - before == 2

    # update: a dict of fields (the others zero), and a second rule, in one call
    other = rules.key_codec.tuple_type(client, server, 5354, 53, "UDP")
    rules.update({dns: {"verdict": "XDP_PASS"}, other: (0, 1)})   # 1: XDP_DROP by number
    assert rules.snapshot() == {dns: (0, "XDP_PASS"), other: (0, "XDP_DROP")}
    before = udp_received(pair.server)
    send_udp(pair.client, pair.server, 5353, 53, count=2)
    send_udp(pair.client, pair.server, 5354, 53, count=4)
    assert rules.snapshot() == {dns: (2, "XDP_PASS"), other: (4, "XDP_DROP")}
    assert udp_received(pair.server) - before == 2

    del rules[other]
    assert rules.snapshot() == {dns: (2, "XDP_PASS")} and len(prog.bpf["rules"]) == 1
    send_udp(pair.client, pair.server, 5354, 53, count=1)
    assert rules.snapshot() == {dns: (2, "XDP_PASS")}         # the deleted rule matches no more
    with pytest.raises(KeyError, match="has no key"):
        del rules[other]
    assert rules.pop(other, None) is None and rules.get(other) is None
    assert rules.pop(dns) == (2, "XDP_PASS") and rules.snapshot() == {}


def test_bcc_key_and_leaf_objects_are_written_as_they_are(pair):
    prog = pair.load(RULES)
    table, rules = prog.bpf["rules"], prog.maps["rules"]
    key = table.Key(int.from_bytes(bytes([10, 11, 0, 1]), NATIVE), 0, socket.htons(7), socket.htons(9), 17)
    rules[key] = table.Leaf(5, 2)
    assert rules.snapshot() == {(IPv4Address("10.11.0.1"), IPv4Address("0.0.0.0"), 7, 9, "UDP"):
                                (5, "XDP_PASS")}
    assert table[key].hits == 5
    with pytest.raises(LabError, match="ctypes c_uint of 4 bytes; this takes 16 bytes"):
        rules[key] = ctypes.c_uint32(1)


def test_write_errors_name_the_map_the_key_and_the_fix(pair):
    prog = pair.load(RULES)
    rules = prog.maps["rules"]
    ok = (IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2"), 1, 2, "UDP")
    with pytest.raises(LabError, match=r"map 'rules', key .*field sport: 70000 does not fit in a port") as e:
        rules[(ok[0], ok[1], 70000, 2, "UDP")] = (0, 0)
    assert "0 to 65535" in e.value.hint
    with pytest.raises(LabError, match=r"field saddr: '10.0.0.300' is not an IPv4 address"):
        rules[("10.0.0.300", ok[1], 1, 2, "UDP")] = (0, 0)
    with pytest.raises(LabError, match=r"'flow' is of type str, not a struct flow\(saddr, daddr, sport"):
        rules["flow"] = (0, 0)
    with pytest.raises(LabError, match=r"value for key .*has 1 values; struct rule\(hits, verdict\) has 2"):
        rules[ok] = (1,)
    with pytest.raises(LabError, match=r"field verdict: 'XDP_DORP' is not a name"):
        rules[ok] = (0, "XDP_DORP")
    with pytest.raises(LabError, match=r"field hits: -1 does not fit in a unsigned 64-bit"):
        rules[ok] = (-1, 0)
    with pytest.raises(LabError, match="has no field 'packets'") as e:
        rules[ok] = {"packets": 1}
    assert "hits, verdict" in e.value.hint
    assert rules.snapshot() == {}                        # nothing was written by the failures
    many = {(ok[0], ok[1], port, 2, "UDP"): (port, 0) for port in range(1, 6)}
    with pytest.raises(LabError, match=r"map 'rules' is full: it holds max_entries=4") as e:
        rules.update(many)
    assert "delete entries first" in e.value.hint and len(rules) == 4
    with pytest.raises(LabError, match="takes a mapping or \\(key, value\\) pairs"):
        rules.update([ok])
    src = pair.load(BY_SOURCE).maps["src_count"]
    with pytest.raises(LabError, match="key 'server': 'server' is not an IPv4 address"):
        src["server"] = 1
    src["10.11.0.2"] = 2**64 - 1                      # a str address is fine, so is the biggest u64
    assert src.snapshot() == {IPv4Address("10.11.0.2"): 2**64 - 1}
    with pytest.raises(LabError, match="2.0 is of type float"):
        src["10.11.0.2"] = 2.0
    prog.close()
    with pytest.raises(LabError, match="closed"):
        rules[ok] = (0, 0)
    with pytest.raises(LabError, match="closed"):
        del rules[ok]


def test_per_cpu_writes_set_every_cpu_or_each(pair):
    prog = pair.load(COUNT_IPV4)
    prog.attach(pair.server)
    m, n = prog.maps["counters"], prog.maps["counters"].ncpus
    m["XDP_PASS"] = (10, 1000)                        # one value: every CPU's copy
    assert m.snapshot(per_cpu=True)["XDP_PASS"] == ((10, 1000),) * n
    assert m["XDP_PASS"] == (10 * n, 1000 * n)        # read back summed, as snapshot() does
    m["XDP_PASS"] = [(cpu, 0) for cpu in range(n)]    # one value per CPU
    out = pair.client.run(["taskset", "-c", "0", "ping", "-4", "-n", "-c", "3", "-i", "0.05",
                           "-W", "1", pair.server.ip])
    assert "3 received" in out.stdout
    per_cpu = m.snapshot(per_cpu=True)["XDP_PASS"]    # the program added to what was written
    assert per_cpu[0] == (3, 3 * ECHO_FRAME) and [c.packets for c in per_cpu[1:]] == list(range(1, n))
    with pytest.raises(LabError, match=f"{n + 1} values for {n} CPUs"):
        m["XDP_PASS"] = [(0, 0)] * (n + 1)
    table = prog.bpf["counters"]                      # bcc's per-CPU Leaf: one slot per CPU
    m["XDP_TX"] = table.Leaf(*[table.sLeaf(cpu, 2 * cpu) for cpu in range(n)])
    assert m.snapshot(per_cpu=True)["XDP_TX"] == tuple((cpu, 2 * cpu) for cpu in range(n))
    with pytest.raises(LabError, match="arrays cannot delete") as e:
        del m["XDP_PASS"]
    assert e.value.hint == "set the value to zero instead: prog.maps['counters']['XDP_PASS'] = (0, 0)"
    with pytest.raises(LabError, match=r"map 'counters' has slots 0 to 4: key 5 is past its end"):
        m[5] = (0, 0)

    big = pair.load(BIG)
    pc = big.maps["big_percpu"]                       # a per-CPU hash of plain u64
    pc.update({1: 5, 2: list(range(n))})
    assert pc.snapshot(per_cpu=True) == {1: (5,) * n, 2: tuple(range(n))}
    three = big.maps["three_pc"]                      # 12-byte structs in 16-byte CPU slots
    three[2] = [(cpu, cpu + 1, cpu + 2) for cpu in range(n)]
    assert three.snapshot(per_cpu=True)[2] == tuple((cpu, cpu + 1, cpu + 2) for cpu in range(n))
    three.clear()
    assert three.snapshot(skip_zero=True) == {}


def test_an_array_slot_written_with_an_ifindex_redirects(line):
    """Lesson 10's `target`: a plain array of u32 that the program reads an ifindex from."""
    client, router, server = line.client, line.router, line.server
    prog = line.load("lesson10_redirect.c")
    target = prog.maps["target"]
    target[0] = router.iface(server).ifindex
    assert target.snapshot() == {0: router.iface(server).ifindex} == {0: prog.bpf["target"][0].value}
    prog.attach(router.iface(client), mode="generic", fix_veth=False)
    frame = Ether(dst=server.mac) / IP(dst=server.ip) / UDP(dport=9)
    with measure(prog.maps["counters"]) as redirected:
        before = udp_received(server)
        client.send(frame, count=20)
        arrived = udp_received(server) - before
    assert redirected["counters"]["XDP_REDIRECT"].packets == 20 == arrived
    with pytest.raises(LabError, match="arrays cannot delete") as e:
        del target[0]
    assert e.value.hint.endswith("prog.maps['target'][0] = 0")
    target[0] = 0                                     # 0: every frame passes to the stack
    with measure(prog.maps["counters"]) as passed:
        client.send(frame, count=5)
    assert passed["counters"]["XDP_PASS"].packets == 5 and "XDP_REDIRECT" not in passed["counters"]


def test_a_devmap_takes_interfaces_and_writes_them_in_their_host(line):
    client, router, server = line.client, line.router, line.server
    prog = line.load(DEVMAP)
    tx = prog.maps["tx_port"]
    assert tx.kind == "devmap"
    with pytest.raises(LabError, match="an ifindex means an interface of one host .* nowhere yet") as e:
        tx[0] = router.iface(server).ifindex
    assert "router.iface(server)" in e.value.hint
    tx[0] = router.iface(server)                      # an interface: written inside the router
    assert tx.snapshot() == {0: router.iface(server).ifindex}
    prog.attach(router.iface(client), mode="generic")
    frame = Ether(dst=server.mac) / IP(dst=server.ip) / UDP(dport=9)
    before = udp_received(server)
    client.send(frame, count=10)
    assert udp_received(server) - before == 10
    tx[1] = f"router:{router.iface(client).name}"     # an int now means an interface of the router
    tx[0] = router.iface(server).ifindex
    assert tx.snapshot() == {0: router.iface(server).ifindex, 1: router.iface(client).ifindex}
    assert len(tx) == 2
    del tx[0]                                         # an empty slot: redirect_map aborts
    before = udp_received(server)
    client.send(frame, count=10)
    assert udp_received(server) == before and tx.snapshot() == {1: router.iface(client).ifindex}
    with pytest.raises(LabError, match="is not an interface of this lab"):
        tx[2] = 3.5
    with xdplab.Lab.pair() as other:
        with pytest.raises(LabError, match="belongs to another lab"):
            tx[2] = other.server.iface()
    tx.clear()
    assert tx.snapshot() == {}


def test_a_program_array_takes_program_fds(line):
    client, router, server = line.client, line.router, line.server
    d = line.load("lesson10_dispatcher.c")
    chain = d.maps["chain"]
    d.attach(router.iface(client))
    chain[0], chain[1] = d.fd("count_all"), d.fd("drop_port_9")
    mixed = [IP(dst=server.ip) / UDP(dport=p) for p in (9, 53)]
    with measure(d.maps["seen"], d.maps["dropped"]) as chained:
        client.send(mixed, count=10)
    assert chained["seen"] == {0: 20, 1: 20} and chained["dropped"] == {0: 10}
    del chain[1]
    with pytest.raises(KeyError, match="slot 1 is empty"):
        del chain[1]
    with measure(d.maps["seen"], d.maps["dropped"]) as shorter:
        client.send(mixed, count=10)
    assert shorter["seen"] == {0: 20} and not shorter["dropped"]
    with pytest.raises(LabError, match="program array: slot 2 takes the file descriptor") as e:
        chain[2] = 1 << 20
    assert "prog.fd('function_name')" in e.value.hint
    with pytest.raises(LabError, match="which has no snapshot"):
        chain.snapshot()
    chain.clear()
    with measure(d.maps["seen"]) as empty:
        client.send(mixed, count=10)
    assert not empty["seen"]


@pytest.mark.parametrize("ctype, declared", [
    (_Bulk, None), (_NoBits, {"saddr": "ipv4_host", "sport": "int", "proto": "int"}),
    (_NoBits, {"packets": "be", "h_proto": "ethertype", "delta": "int"}),
    (ctypes.c_uint32, "ipv4"), (ctypes.c_uint32, "ipv4_host"), (ctypes.c_uint16, "port"),
    (ctypes.c_uint16, "ethertype"), (ctypes.c_uint8, "proto"), (ctypes.c_uint32, "action"),
    (ctypes.c_int64, None), (ctypes.c_int16, "be"), (ctypes.c_uint8 * 6, "mac"),
    (ctypes.c_uint8 * 16, "ipv6"), (ctypes.c_uint8 * 5, "bytes"), (ctypes.c_uint64 * 3, None)])
def test_encode_gives_back_the_bytes_decode_read(ctype, declared):
    """Writes are the inverse of reads: random bytes decoded, then encoded, are the same bytes
    but for a struct's padding (zero), which no field reads (char arrays hold ASCII here: other
    bytes are read with replacement characters)."""
    import random
    rng = random.Random(99)
    codec = maps.make_codec(ctype, "m", None, declared, top=True)
    for _ in range(300):
        b = bytearray(rng.randrange(256) for _ in range(codec.size))
        if hasattr(ctype, "name"):
            b[ctype.name.offset:ctype.name.offset + 5] = bytes(rng.randrange(1, 128) for _ in range(5))
        value = codec.decode(bytes(b), 0)
        if codec.fields is None:
            assert codec.encode(value) == bytes(b), value
        else:
            encoded = codec.encode(value)
            assert codec.decode(encoded, 0) == value
            assert encoded != bytes(b) and codec.encode(dict(value._asdict())) == encoded
            padded = ctype.from_buffer_copy(encoded)
            assert bytes(padded) == encoded and codec.encode(padded) == encoded
        assert codec.encode(ctype.from_buffer_copy(b)) == bytes(b)


def test_a_port_widened_into_a_u32_is_written_as_the_program_stores_it():
    """`u32 port = udph->dest;` holds the two packet bytes in the low half of a CPU-order u32."""
    codec = maps.make_codec(ctypes.c_uint32, "dport", None, "port", top=True)
    assert codec.encode(53) == int.from_bytes(bytes([0, 53]), NATIVE).to_bytes(4, NATIVE)
    assert codec.decode(codec.encode(8080), 0) == 8080
