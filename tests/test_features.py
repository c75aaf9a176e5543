"""xdplab.features on real devices inside lab hosts: the XDP features the kernel reports (and the
fallback when it cannot), devices made inside a host, the cost of each XDP mode with every packet
counted — and the lesson 10 programs: the redirect targets and the tail-call dispatcher."""
import asyncio

import matplotlib
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

import xdplab
from xdplab import features
from xdplab.features import compare, device, mode_costs, xdp_features
from xdplab.forwarding import measure

VETH = {"basic", "redirect", "rx-sg"}


@pytest.mark.kernel
def test_a_veth_runs_xdp_natively_and_takes_redirects_only_when_its_peer_can_receive(pair):
    server, client = pair.server, pair.client
    f = xdp_features(server)
    if not xdplab.probe().xdp_features.value:    # before 6.3: no netdev family to ask
        assert not f.available and "6.3" in f.note and f.device == "server:eth0", f
        return
    assert f.available and f.device == "server:eth0" and f.ifindex == server.iface().ifindex
    assert set(f.xdp) == VETH and f.native and not f.redirect_target, f
    assert "hash" in f.rx_metadata, f
    client.iface().gro(True)                 # the peer can now receive XDP frames
    assert xdp_features(server).redirect_target
    assert {"ndo-xmit", "ndo-xmit-sg"} <= set(xdp_features(server).xdp)
    client.iface().gro(False)
    assert not xdp_features(server).redirect_target
    pair.load("xdp_pass.c").attach(client)   # a native program on the peer does it too
    assert xdp_features(server).redirect_target
    assert not xdp_features(client).redirect_target, "the flag belongs to the peer's side only"


def test_devices_without_xdp_report_no_features_and_compare_lists_every_device(pair):
    server = pair.server
    server.run("ip link add br0 up type bridge")
    table = compare(server)
    assert [f.device for f in table] == ["server:lo", "server:eth0", "server:br0"]
    assert table.available and not table["server:lo"].xdp and not table["server:br0"].xdp
    assert not table["server:br0"].native and set(table["server:eth0"].xdp) == VETH
    assert xdp_features(server, "lo").xdp == () and "none" in repr(xdp_features(server, "lo"))
    html = table._repr_html_()
    assert html.count("<tr>") > 10 and "server:br0" in html and "✔" in html and "ndo-xmit" in html
    with pytest.raises(xdplab.LabError, match="no device 'server:nope'"):
        table["server:nope"]
    both = compare(pair.client.iface(), server.iface())
    assert [f.device for f in both] == ["client:eth0", "server:eth0"]


def test_the_query_runs_inside_the_host_also_under_an_asyncio_loop(pair):
    async def inside_a_loop():             # as in a Jupyter kernel
        return compare(pair.client), xdp_features(pair.server)
    table, f = asyncio.run(inside_a_loop())
    assert [x.device for x in table] == ["client:lo", "client:eth0"], table
    assert f.device == "server:eth0" and f.native


def test_a_kernel_without_the_netdev_family_gets_the_fallback(pair, monkeypatch):
    monkeypatch.setattr(features, "FAMILY", "xdplab-none")     # at most 15 characters (GENL_NAMSIZ)
    f = xdp_features(pair.server)
    assert not f.available and not f.xdp and not f.native
    assert "6.3" in f.note and "mode='native'" in f.note and "unknown" in repr(f)
    table = compare(pair.server)
    assert not table.available and "6.3" in table._repr_html_()


def test_device_gives_an_interface_for_any_device_in_a_host(pair):
    server = pair.server
    assert device(server, "eth0") is server.iface()
    lo = device(server, "lo")
    assert lo.ifindex == 1 and lo.host is server and str(lo) == "server:lo"
    assert device(server, "lo") is lo, "one object per device, so that detach finds the attachment"
    with pytest.raises(xdplab.LabError, match="no device 'br9'") as err:
        device(server, "br9")
    assert "ip link add br9" in err.value.hint
    with pytest.raises(xdplab.LabError, match="cannot ask"):
        xdp_features("eth0")


def test_native_attach_to_a_device_without_xdp_is_explained_and_generic_works(pair):
    pair.server.run("ip link add br0 up type bridge")
    bridge = device(pair.server, "br0")
    prog = pair.load("xdp_pass.c")
    with pytest.raises(xdplab.LabError, match="native mode.*not supported") as err:
        prog.attach(bridge, mode="native")
    assert "generic" in err.value.hint
    assert prog.attach(bridge, mode="generic").mode == "generic" and bridge.xdp().mode == "generic"
    prog.detach(device(pair.server, "br0"))
    assert bridge.xdp().mode is None and not prog.attachments


def test_mode_costs_counts_every_packet_in_both_modes(pair):
    matplotlib.use("Agg")
    prog = pair.load("xdp_count.c", cflags=["-DACTION=XDP_DROP"])
    frame = IP(dst=pair.server.ip) / UDP(dport=9)
    costs = mode_costs(prog, pair.client, pair.server.iface(), frame, count=5000, rounds=2)
    for mode in ("native", "generic"):
        assert costs.sent[mode] == costs.counted[mode] == costs.received[mode] == 10_000, costs
        assert len(costs.ns_per_packet[mode]) == 2 and costs.median(mode) > 0
    assert pair.server.iface().xdp().mode == "generic"         # left in the last mode
    assert "10,000 of 10,000 packets counted" in repr(costs)
    fig = costs.plot()
    assert len(fig.axes[0].patches) == 2


def test_a_closed_lab_is_explained():
    lab = xdplab.Lab.pair()
    server = lab.server
    lab.close()
    with pytest.raises(xdplab.LabError, match="closed"):
        xdp_features(server)


# --- the lesson 10 programs ------------------------------------------------------------------

def redirect_to(lab, iface, mode):
    prog = lab.load("lesson10_redirect.c")
    target = prog.maps["target"].table
    target[0] = target.Leaf(iface.ifindex)
    prog.attach(lab.router.iface(lab.client), mode=mode, fix_veth=False)
    return prog


def test_redirect_into_lo_fails_natively_and_works_generically(line):
    client, router, server = line.client, line.router, line.server
    lo = device(router, "lo")
    prog = redirect_to(line, lo, "native")
    errors = xdplab.Tracepoints(line)
    frame = Ether(dst=server.mac) / IP(dst=server.ip) / UDP(dport=9)
    with measure(lo, errors, prog.maps["counters"]) as native:
        client.send(frame, count=20)
    assert native["counters"]["XDP_REDIRECT"].packets == 20
    assert {e.err: n for e, n in native["tracepoints"].items()} == {-95: 20} and not native[lo]
    prog.attach(router.iface(client), mode="generic", fix_veth=False)
    with measure(lo, errors) as generic:
        client.send(frame, count=20)
    assert generic[lo]["tx_packets"] == 20 and not generic["tracepoints"]


def test_redirect_into_a_veth_follows_its_ndo_xmit_flag(line):
    client, router, server = line.client, line.router, line.server
    prog = redirect_to(line, router.iface(server), "native")
    frame = Ether(dst=server.mac) / IP(dst=server.ip) / UDP(dport=9)
    assert not xdp_features(router.iface(server)).redirect_target
    with measure(server.iface()) as refused:
        client.send(frame, count=20)
    assert not refused[server.iface()]
    server.iface().gro(True)
    assert xdp_features(router.iface(server)).redirect_target
    with measure(server.iface(), prog.maps["counters"]) as delivered:
        client.send(frame, count=20)
    assert delivered[server.iface()]["rx_packets"] == 20


def test_the_dispatcher_runs_its_chain_in_slot_order(line):
    client, router, server = line.client, line.router, line.server
    d = line.load("lesson10_dispatcher.c")
    assert d.functions == ["lesson10_dispatcher", "count_all", "drop_port_9"], \
        "next() must stay a helper, not an XDP program of its own"
    chain = d.bpf["chain"]
    mixed = [IP(dst=server.ip) / UDP(dport=p) for p in (9, 53)]
    d.attach(router.iface(client))
    with measure(d.maps["seen"]) as empty:                    # nothing in the chain: all pass
        client.send(mixed, count=10)
    assert not empty["seen"]
    chain[0], chain[1] = d.fd("count_all"), d.fd("drop_port_9")
    with measure(d.maps["seen"], d.maps["dropped"], server) as chained:
        client.send(mixed, count=10)
    assert chained["seen"] == {0: 20, 1: 20} and chained["dropped"] == {0: 10}
    assert chained[server]["UdpNoPorts"] == 10
    chain[0], chain[1] = d.fd("drop_port_9"), d.fd("count_all")
    with measure(d.maps["seen"], d.maps["dropped"]) as reordered:
        client.send(mixed, count=10)
    assert reordered["seen"] == {0: 10, 1: 20} and reordered["dropped"] == {0: 10}
    del chain[1]                                               # drop_port_9 ends the chain
    with measure(d.maps["seen"], d.maps["dropped"]) as shorter:
        client.send(mixed, count=10)
    assert shorter["seen"] == {1: 20} and shorter["dropped"] == {0: 10}


def test_a_second_program_replaces_the_dispatcher(line):
    client, router, server = line.client, line.router, line.server
    d = line.load("lesson10_dispatcher.c")
    d.bpf["chain"][0] = d.fd("count_all")
    first = d.attach(router.iface(client))
    other = line.load("xdp_count.c", cflags=["-DACTION=XDP_DROP"])
    second = other.attach(router.iface(client))
    assert router.iface(client).xdp() == ("native", second.prog_id) != ("native", first.prog_id)
    with measure(d.maps["seen"], other.maps["counters"]) as seen:
        client.send(IP(dst=server.ip) / UDP(dport=53), count=10)
    assert not seen["seen"] and seen["counters"]["XDP_DROP"].packets == 10


def test_the_dispatcher_counts_every_frame_of_a_background_stream(line):
    """Lesson 10's Watch it stream, proven as its Prove it cell does: after stream.wait(), the
    chain counted every frame the stream says it sent (a list of two packets: one of each is sent
    before the thread starts, and counted)."""
    client, router, server = line.client, line.router, line.server
    d = line.load("lesson10_dispatcher.c")
    chain = d.bpf["chain"]
    chain[0], chain[1] = d.fd("drop_port_9"), d.fd("count_all")
    d.attach(router.iface(client))
    mixed = [IP(dst=server.ip) / UDP(dport=p) for p in (9, 53)]
    with measure(d.maps["seen"], d.maps["dropped"]) as streamed:
        stream = client.stream(mixed, seconds=1, rate=200).wait()
    assert stream.error is None and not stream.running
    arrived = stream.sent - stream.lost
    assert arrived >= 2 * 200 * 0.5, stream                        # it ran its second
    assert streamed["seen"] == {0: arrived // 2, 1: arrived}, (streamed, stream)
    assert streamed["dropped"] == {0: arrived // 2}, (streamed, stream)


# --- what each mode is handed ------------------------------------------------------------------

def test_tcp_transfer_delivers_every_byte_and_explains_a_blocked_path(line):
    router, server = line.router, line.server
    assert features.tcp_transfer(router, server, nbytes=300_000, port=5101) == 300_000
    line.load("xdp_drop.c").attach(server)
    with pytest.raises(xdplab.LabError, match="TCP transfer from router to server failed"):
        features.tcp_transfer(router, server, nbytes=1000, port=5102, timeout=1.0)


def test_generic_mode_is_handed_super_packets_native_mode_frames(line):
    """With TSO on the sender (transmit checksum offload on), the router's stack hands its veth
    64 KB super-packets: a generic program on the server is handed them whole, a native one only
    frames that fit the link (the veth stops its peer's segmentation offload). With xdplab's
    default (checksum offload off, so no TSO) both modes see frames that fit: the program tells
    the two apart, it does not always report big frames."""
    router, server = line.router, line.server
    plain = features.frame_sizes(line, router, server.iface(), nbytes=500_000, port=5201)
    assert plain.limit == 1514 and plain.nbytes == {"generic": 500_000, "native": 500_000}
    for mode in ("generic", "native"):
        assert plain.longer[mode] == 0 and plain.longest[mode] == 1514, plain
        assert plain.fitting[mode] >= 500_000 // 1448, plain
    router.iface(server).ethtool("tx", "on")
    try:
        sizes = features.frame_sizes(line, router, server.iface(), nbytes=500_000, port=5211)
    finally:
        router.iface(server).ethtool("tx", "off")
    assert sizes.longer["generic"] > 0 and sizes.longest["generic"] > sizes.limit, sizes
    assert sizes.fitting["generic"] + sizes.longer["generic"] < plain.fitting["generic"] / 4, sizes
    assert sizes.longer["native"] == 0 and sizes.longest["native"] <= 1514, sizes
    assert sizes.fitting["native"] >= 500_000 // 1448, sizes
    assert server.iface().xdp().mode is None                      # frame_sizes detached it
    assert "longer than 1514 bytes" in repr(sizes)
