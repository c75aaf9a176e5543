"""Programs: compile, verify, attach in both modes, replace, detach, guard — counted on real traffic."""
import subprocess

import pytest

import xdplab
from xdplab import LabError

PASS = "int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }"


def stats(host):
    """The kernel's counters of a host's first interface (rx_packets, rx_dropped, ...)."""
    from xdplab import netns
    with netns.netlink(host.ns) as ipr:
        return ipr.get_links(host.iface().ifindex)[0].get_attr("IFLA_STATS64")


def xdp_state(host):
    return host.iface().xdp()


@pytest.mark.kernel
@pytest.mark.parametrize("mode", ["native", "generic"])
def test_attach_counts_every_ping_exactly(pair, count_source, mode):
    prog = pair.load(count_source, cflags=["-DVERDICT=XDP_PASS"])
    att = prog.attach(pair.server, mode=mode)
    assert att.mode == mode and xdp_state(pair.server) == (mode, att.prog_id)
    assert f"xdp{'generic' if mode == 'generic' else ''} " in pair.server.run("ip -o link show eth0").stdout
    assert pair.client.ping(pair.server, count=5, interval=0.05).received == 5
    counts = prog.maps["counters"].snapshot()
    # 5 echo requests reach the server's XDP hook; nothing else is sent (static neighbours, no ARP)
    assert sum(counts.values()) == 5
    prog.detach()
    assert xdp_state(pair.server).mode is None


def test_drop_program_makes_ping_fail_and_detach_restores(pair, count_source):
    prog = pair.load(count_source, cflags=["-DVERDICT=XDP_DROP"])
    prog.attach(pair.server)
    assert pair.client.ping(pair.server, count=3, interval=0.05, timeout=0.3).received == 0
    assert sum(prog.maps["counters"].snapshot().values()) == 3
    prog.detach(pair.server)
    assert pair.client.ping(pair.server, count=2, interval=0.05).received == 2


def test_reattach_replaces_atomically_and_switches_mode(pair, count_source):
    drop = pair.load(count_source, cflags=["-DVERDICT=XDP_DROP"])
    passer = pair.load(PASS)
    first = drop.attach(pair.server)
    second = passer.attach(pair.server)          # same mode: replaced in one netlink call
    assert second.prog_id != first.prog_id and xdp_state(pair.server) == ("native", second.prog_id)
    assert not drop.attachments
    third = drop.attach(pair.server, mode="generic")   # other mode: the old one is removed first
    assert xdp_state(pair.server) == ("generic", third.prog_id)
    assert not passer.attachments
    passer.close()                                  # closing a replaced program leaves the new one
    assert xdp_state(pair.server).mode == "generic"


def test_attach_targets_and_errors(pair):
    prog = pair.load(PASS)
    assert str(prog.attach("server:eth0").iface) == "server:eth0"
    assert str(prog.attach(pair.client.iface()).iface) == "client:eth0"
    with pytest.raises(LabError, match="several lab hosts"):
        prog.attach("eth0")
    with pytest.raises(LabError, match="no host"):
        prog.attach("nobody:eth0")
    with pytest.raises(LabError, match="no interface"):
        prog.attach("server:eth9")
    with pytest.raises(LabError, match="unknown XDP mode"):
        prog.attach(pair.server, mode="offload-please")
    with pytest.raises(LabError, match="no XDP function"):
        prog.attach(pair.server, fn="nope")


def root_xdp_count():
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.count(" xdp")


@pytest.mark.parametrize("name", ["lo", "ifb0", "ens3"])
def test_root_namespace_guard(pair, name):
    """No lesson can attach to the machine's own interfaces by accident."""
    prog = pair.load(PASS)
    before = root_xdp_count()
    with pytest.raises(LabError, match="not an interface of this lab") as err:
        prog.attach(name)
    assert "allow_host=True" in err.value.hint
    assert root_xdp_count() == before


def test_ambiguous_name_never_reaches_the_machine(pair):
    """'eth0' names an interface in both lab hosts (and maybe the machine's): refused, unattached."""
    prog = pair.load(PASS)
    before = root_xdp_count()
    with pytest.raises(LabError, match="several lab hosts"):
        prog.attach("eth0")
    assert root_xdp_count() == before and not prog.attachments


def test_load_from_bpf_dir_and_missing_file(pair):
    prog = pair.load("xdp_pass.c")
    assert prog.name == "xdp_pass" and prog.functions
    with pytest.raises(LabError, match="no BPF source file"):
        pair.load("does_not_exist.c")
    with pytest.raises(LabError, match="no XDP function"):
        pair.load("int helper(int x) { return x; }")


def test_closed_lab_refuses_work():
    lab = xdplab.Lab.pair()
    prog = lab.load(PASS)
    prog.attach(lab.server)
    lab.close()
    with pytest.raises(xdplab.ClosedError, match="closed"):
        lab.load(PASS)
    with pytest.raises(xdplab.ClosedError, match="closed") as err:
        prog.attach(lab.server)
    assert "lab.load" in err.value.hint and isinstance(err.value, LabError)


def test_veth_rule_gives_the_peer_a_native_program_for_xdp_tx(pair):
    """XDP_TX out of a veth is only picked up by a peer with a native XDP program of its own."""
    tx = pair.load(r"""
        #include <linux/if_ether.h>
        int xdp_tx(struct xdp_md *ctx) {
            void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
            struct ethhdr *eth = data;
            if ((void *)(eth + 1) > data_end) return XDP_PASS;
            return XDP_TX;
        }""")
    att = tx.attach(pair.server, fix_veth=False)
    assert not att.notes and pair.client.iface().xdp().mode is None
    # the trap: the server bounces every echo request back; the client's veth drops them all
    before = stats(pair.client)
    pair.client.ping(pair.server, count=3, interval=0.05, timeout=0.3)
    after = stats(pair.client)
    assert after["rx_dropped"] - before["rx_dropped"] == 3
    att = tx.attach(pair.server)
    assert att.notes and "native XDP_PASS" in att.notes[0]
    assert pair.client.iface().xdp().mode == "native"
    before = stats(pair.client)
    pair.client.ping(pair.server, count=3, interval=0.05, timeout=0.3)
    after = stats(pair.client)
    assert after["rx_dropped"] == before["rx_dropped"]
    assert after["rx_packets"] - before["rx_packets"] >= 3     # the bounced requests arrive
    again = tx.attach(pair.server)
    assert not again.notes          # already fixed: nothing to do


def test_not_root_is_explained(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(xdplab.PrivilegeError, match="needs root") as err:
        xdplab.Lab()
    assert "sudo make lab" in err.value.hint


def test_missing_bcc_is_explained(pair, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_bcc(name, *args, **kw):
        if name == "bcc" or name.startswith("bcc."):
            raise ImportError("No module named 'bcc'")
        return real_import(name, *args, **kw)
    monkeypatch.setattr(builtins, "__import__", no_bcc)
    with pytest.raises(xdplab.SetupError, match="bcc") as err:
        pair.load(PASS)
    assert "python3-bpfcc" in err.value.hint


def test_missing_header_tree_is_explained(pair, monkeypatch, tmp_path):
    monkeypatch.setenv("BCC_KERNEL_SOURCE", str(tmp_path / "nowhere"))
    monkeypatch.delenv("XDPLAB_SET_BCC_SOURCE", raising=False)
    with pytest.raises(xdplab.SetupError, match="not a kernel header tree") as err:
        pair.load(PASS)
    assert "kernel-headers.sh" in err.value.hint
    assert not pair.programs
