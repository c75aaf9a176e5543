"""prog.test_run: real bcc programs run by BPF_PROG_TEST_RUN on packets we hand the kernel."""
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from xdplab import LabError, testrun

A, B = "02:58:4c:00:00:01", "02:58:4c:00:00:02"
ACTIONS = ["XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX"]

SWAP_AND_REWRITE = r"""
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
/* Bounce DNS to port 5353: swap the MACs, rewrite the UDP port, clear the (optional) checksum. */
int mac_swap(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = (void *)(eth + 1);
    struct udphdr *udp = (void *)(ip + 1);
    if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5
        || ip->protocol != IPPROTO_UDP)
        return XDP_PASS;
    unsigned char tmp[ETH_ALEN];
    __builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
    __builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
    __builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
    if (udp->dest == bpf_htons(53)) {
        udp->dest = bpf_htons(5353);
        udp->check = 0;
    }
    return XDP_TX;
}
"""

TRIM_TAIL = r"""
/* Cut the last 5 bytes off every frame. */
int trim(struct xdp_md *ctx) {
    if (bpf_xdp_adjust_tail(ctx, -5))
        return XDP_ABORTED;
    return XDP_PASS;
}
"""


def counted(prog, action):
    """The program's counter for `action` (the snapshot names array slots of an action-indexed
    counter map by action; plain indexes are accepted too)."""
    snap = prog.maps["counters"].snapshot()
    return snap.get(action, snap.get(ACTIONS.index(action), 0))


def dns(payload=b"hello"):
    return Ether(src=A, dst=B) / IP(src="10.11.0.1", dst="10.11.0.2") / UDP(sport=40000, dport=53) \
        / Raw(payload)


@pytest.fixture(scope="module")
def lab():
    import xdplab
    with xdplab.Lab() as lab:
        yield lab


@pytest.fixture(scope="module")
def counting(lab, count_source):
    """counting(action): the shared counting program returning `action` (bcc takes seconds)."""
    progs = {}

    def get(action):
        if action not in progs:
            progs[action] = lab.load(count_source, cflags=[f"-DVERDICT={action}"])
        return progs[action]
    return get


@pytest.mark.parametrize("action", [pytest.param(a, marks=pytest.mark.kernel) if a == "XDP_PASS" else a
                                    for a in ACTIONS])
def test_verdict_of_real_program_and_it_really_ran(counting, action):
    prog = counting(action)
    before = counted(prog, action)
    res = prog.test_run(dns())
    assert (res.verdict, res.retval) == (action, ACTIONS.index(action))
    assert res.diff == [] and bytes(res.packet) == bytes(dns())
    assert counted(prog, action) == before + 1    # the program's own counter saw this one run
    assert "no change" in str(res.diff)


def test_repeat_times_the_program_but_output_is_one_run(counting):
    prog = counting("XDP_PASS")
    before = counted(prog, "XDP_PASS")
    res = prog.test_run(dns(), repeat=1000)
    assert res.repeat == 1000 and res.verdict == "XDP_PASS"
    assert isinstance(res.ns_per_packet, int) and res.ns_per_packet > 0
    # one run for verdict and packet, then 1000 timed runs
    assert counted(prog, "XDP_PASS") == before + 1001


def test_mac_swap_and_port_rewrite_show_in_diff(lab):
    prog = lab.load(SWAP_AND_REWRITE)
    try:
        sent = dns()
        res = prog.test_run(sent, repeat=3)   # an even number of swaps must not hide the change
        assert res.verdict == "XDP_TX"
        assert (res.packet[Ether].src, res.packet[Ether].dst) == (B, A)
        assert res.packet[UDP].dport == 5353 and res.packet[Raw].load == b"hello"
        assert bytes(res.input) == bytes(sent)
        old_sum = res.input[UDP].chksum
        assert old_sum != 0
        assert list(res.diff) == [("Ether", "dst", B, A), ("Ether", "src", A, B),
                                  ("UDP", "dport", 53, 5353), ("UDP", "chksum", old_sum, 0)]
        table = str(res.diff)
        assert "53 (domain)" in table and "5353 (mdns)" in table     # number and scapy's name
        assert "<table>" in res.diff._repr_html_() and "XDP_TX" in res._repr_html_()
        assert "XDP_TX" in repr(res) and "4 changes" in repr(res)
        hexdump = res.hexdump().splitlines()
        assert hexdump[0].startswith("0000  02 58 4c 00 00 01 02 58 4c 00 00 02")
        assert hexdump[1].strip().startswith("^^")        # changed bytes are marked
    finally:
        prog.close()


def test_removed_layer_shows_in_diff(lab):
    prog = lab.load(TRIM_TAIL)
    try:
        res = prog.test_run(dns(b"hello"))
        assert res.verdict == "XDP_PASS"
        assert len(res.output_bytes) == len(bytes(dns())) - 5
        assert Raw not in res.packet
        removed = [c for c in res.diff if c.kind == "removed"]
        assert [c.layer for c in removed] == ["Raw"]
        assert "removed 5 bytes" in res.hexdump()
    finally:
        prog.close()


def test_packet_without_ethernet_gets_fixed_macs(counting):
    prog = counting("XDP_PASS")
    res = prog.test_run(IP(src="10.11.0.1", dst="10.11.0.2") / UDP(dport=53))
    assert (res.input[Ether].src, res.input[Ether].dst) == (testrun.DEFAULT_SRC_MAC,
                                                            testrun.DEFAULT_DST_MAC)
    assert res.input[UDP].dport == 53
    raw = prog.test_run(bytes(dns()))                 # raw frame bytes work too
    assert raw.verdict == "XDP_PASS" and raw.input[UDP].dport == 53


@pytest.mark.parametrize("bad, message", [
    (b"", "empty"),
    (b"\x02\x00\x00", "shorter than an Ethernet header"),
    (Ether(src=A, dst=B) / IP() / UDP() / Raw(b"x" * 5000), "at most 3520"),
    ("a string", "cannot run a program on a str"),
])
def test_bad_packets_give_lab_errors(counting, bad, message):
    prog = counting("XDP_PASS")
    before = counted(prog, "XDP_PASS")
    with pytest.raises(LabError, match=message) as err:
        prog.test_run(bad)
    assert err.value.hint
    assert counted(prog, "XDP_PASS") == before     # the program never ran


def test_bad_repeat_and_unloaded_program(lab, count_source):
    prog = lab.load(count_source, cflags=["-DVERDICT=XDP_PASS"])
    try:
        for repeat in (0, -1, 1.5):
            with pytest.raises(LabError, match="repeat"):
                prog.test_run(dns(), repeat=repeat)
    finally:
        prog.close()
    with pytest.raises(LabError, match="closed"):
        prog.test_run(dns())
    with pytest.raises(LabError, match="no longer loaded"):
        testrun.run(10 ** 6, dns())       # a file descriptor number nothing has open
