"""Labs: hosts, links, addresses, routes, shaping, cleanup and reaping — on real namespaces."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import xdplab
from xdplab import LabError, reaper


def ns_list():
    return [n for n in os.listdir("/run/netns") if n.startswith(reaper.NS_PREFIX)] \
        if os.path.isdir("/run/netns") else []


def test_pair_hosts_addresses_and_ping(pair):
    c, s = pair.client, pair.server
    assert (c.ifname, s.ifname) == ("eth0", "eth0")
    assert c.ip == "10.11.0.1" and s.ip == "10.11.0.2"
    assert c.ip6.startswith("fd00:11:") and c.mac != s.mac
    assert "10.11.0.1/24" in c.run("ip -br addr show eth0").stdout
    # static neighbours: no ARP needed before the first packet
    assert s.mac in c.run("ip neigh show 10.11.0.2").stdout
    assert c.ping(s, count=3, interval=0.05).received == 3
    assert c.ping(s, count=2, interval=0.05, ipv6=True).received == 2


def test_three_hosts_route_through_router():
    with xdplab.Lab() as lab:
        c, r, s = lab.host("client"), lab.host("router"), lab.host("server")
        lab.link(c, r)
        lab.link(r, s)
        assert r.run("sysctl -n net.ipv4.ip_forward").stdout.strip() == "1"
        assert c.ping(s, count=2, interval=0.05).received == 2
        assert c.ping(s, count=2, interval=0.05, ipv6=True).received == 2
        assert "via 10.11.0.2" in c.run("ip route get " + s.ip).stdout
        names = set(ns_list())
        assert {c.ns, r.ns, s.ns} <= names
    assert not {c.ns, r.ns, s.ns} & set(ns_list())


@pytest.mark.parametrize("names", [("client", "server"), ("client", "router", "server"),
                                   ("a", "r1", "r2", "b")], ids=["2", "3", "4"])
def test_chain_links_hosts_in_a_line_and_the_middle_ones_forward(names):
    from xdplab.lab.counters import snmp
    with xdplab.Lab.chain(*names) as lab:
        hosts = [lab[n] for n in names]
        assert list(lab.hosts) == list(names) and len(lab.links) == len(names) - 1
        for k, (a, b) in enumerate(zip(hosts, hosts[1:])):     # link k joins the k-th neighbours
            assert lab.links[k].a.host is a and lab.links[k].b.host is b
            assert a.iface(b).ip == f"10.11.{k}.1" and b.iface(a).ip == f"10.11.{k}.2"
        first, last, middle = hosts[0], hosts[-1], hosts[1:-1]
        assert [len(h.interfaces) for h in hosts] == [1] + [2] * len(middle) + [1]
        before = {h.name: snmp(h) for h in hosts}
        assert first.ping(last, count=4, interval=0.05).received == 4
        seen = {h.name: snmp(h) - before[h.name] for h in hosts}
        assert seen[first.name]["IcmpOutEchos"] == seen[first.name]["IcmpInEchoReps"] == 4, seen
        assert seen[last.name]["IcmpInEchos"] == seen[last.name]["IcmpOutEchoReps"] == 4, seen
        for h in middle:                       # 4 requests one way, 4 replies the other
            assert seen[h.name]["IpForwDatagrams"] == 8, (h, seen[h.name])
            assert "IcmpInEchos" not in seen[h.name], "a router forwards, it does not answer"
            assert h.run("sysctl -n net.ipv4.ip_forward").stdout.strip() == "1"
        for h in (first, last):
            assert "IpForwDatagrams" not in seen[h.name]
        assert last.ping(first, count=2, interval=0.05, ipv6=True).received == 2
        made = [h.ns for h in hosts]
        assert set(made) <= set(ns_list())
    assert not set(made) & set(ns_list())
    assert not (reaper.STATE_DIR / f"{lab.id}.json").exists()


def test_pair_is_a_chain_of_client_and_server():
    with xdplab.Lab.pair(name="tpair", rate="5mbit") as lab:
        assert lab.id == "tpair" and list(lab.hosts) == ["client", "server"]
        assert len(lab.links) == 1 and lab.links[0].rate == "5mbit"
        assert lab.links[0].a.host is lab.client and lab.links[0].b.host is lab.server
    with xdplab.Lab.chain("x", "y", rate="5mbit") as lab:
        assert "tbf" in lab.x.run("tc qdisc show dev eth0").stdout


@pytest.mark.parametrize("names, message, hint", [
    ((), "at least two hosts .got 0", 'Lab.chain("client", "router", "server")'),
    (("client",), "at least two hosts .got 1", "in the order they are linked"),
    ((["client", "server"],), "one by one, not a list", "Lab.chain(*names)"),
    (("client", "Router", "server"), "host name 'Router' is not valid", "lowercase letters"),
    (("client", 7), "host name 7 is not valid", "lowercase letters"),
    (("client", "router", "client"), "'client' appears twice", "its own name"),
])
def test_chain_names_are_checked_before_anything_is_made(names, message, hint):
    before = set(ns_list())
    labs = set(reaper.STATE_DIR.glob("*.json")) if reaper.STATE_DIR.is_dir() else set()
    with pytest.raises(LabError, match=message) as err:
        xdplab.Lab.chain(*names)
    assert hint in err.value.hint, err.value.hint
    assert set(ns_list()) == before
    assert (set(reaper.STATE_DIR.glob("*.json")) if reaper.STATE_DIR.is_dir() else set()) == labs


def test_a_chain_that_fails_halfway_removes_what_it_made():
    with xdplab.Lab("tbusy"):
        before = set(ns_list())
        with pytest.raises(LabError, match="already running"):
            xdplab.Lab.chain("a", "b", name="tbusy")
        with pytest.raises(LabError, match="rate|tc|failed"):
            xdplab.Lab.chain("a", "b", "c", rate="fast")
        assert set(ns_list()) == before


def test_rate_limited_link_uses_tbf():
    with xdplab.Lab() as lab:
        fast, slow = lab.host("a"), lab.host("b")
        lab.link(fast, slow, rate="5mbit")
        out = fast.run("tc qdisc show dev eth0").stdout
        assert "tbf" in out and "5Mbit" in out


def test_run_popen_and_processes_die_with_the_lab():
    with xdplab.Lab.pair() as lab:
        assert lab.server.run("ip -o link show eth0").returncode == 0
        proc = lab.server.popen("sleep 300")
        assert proc.poll() is None
        with pytest.raises(LabError, match="failed"):
            lab.client.run("false")
    assert proc.poll() is not None


def test_bad_input_is_a_clear_error():
    with xdplab.Lab("tbad") as lab:
        with pytest.raises(LabError, match="already running"):
            xdplab.Lab("tbad")
        lab.host("client")
        with pytest.raises(LabError, match="already has a host"):
            lab.host("client")
        with pytest.raises(LabError, match="not valid"):
            lab.host("Bad Name!")
        with pytest.raises(LabError, match="no host"):
            lab["nobody"]
        with pytest.raises(LabError, match="no link yet"):
            lab.client.ip
        with pytest.raises(LabError, match="itself"):
            lab.link("client", "client")
    with pytest.raises(LabError, match="not valid"):
        xdplab.Lab("UPPER")
    with pytest.raises(xdplab.ClosedError, match="closed"):
        lab.host("late")
    assert not [n for n in ns_list() if n.startswith("xl-tbad-")]


def test_close_is_idempotent_and_removes_everything():
    lab = xdplab.Lab.pair()
    names = [h.ns for h in lab.hosts.values()]
    lab.close()
    lab.close()
    assert not set(names) & set(ns_list())
    assert not (reaper.STATE_DIR / f"{lab.id}.json").exists()


CHILD = textwrap.dedent("""
    import sys, time, xdplab
    lab = xdplab.Lab.pair()
    prog = lab.load("int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }")
    prog.attach(lab.server)
    print(lab.id, flush=True)
    time.sleep(300)
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_lab_process_is_reaped(sig):
    """A lab whose process dies (even by SIGKILL) leaves nothing: its watchdog removes it."""
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    lab_id = child.stdout.readline().strip()
    assert lab_id and any(n.startswith(f"xl-{lab_id}-") for n in ns_list())
    child.send_signal(sig)
    child.wait(timeout=10)
    # The watchdog removes the namespaces, then the state file: wait for the whole removal
    # (asserting the state file the moment the namespaces are gone raced the watchdog).
    state_file = reaper.STATE_DIR / f"{lab_id}.json"

    def left():
        return [n for n in ns_list() if n.startswith(f"xl-{lab_id}-")] + \
               ([state_file.name] if state_file.exists() else [])
    deadline = time.time() + 15
    while time.time() < deadline and left():
        time.sleep(0.1)
    assert not left(), f"15 s after the owner died, the watchdog had not removed: {left()}"


def test_next_lab_reaps_a_dead_lab_when_its_watchdog_died_too():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    lab_id = child.stdout.readline().strip()
    # kill the watchdog first, then the owner: only the next Lab() can clean up now
    watchdogs = subprocess.run(["pgrep", "-f", f"reaper.py --watch {lab_id}"],
                               capture_output=True, text=True).stdout.split()
    assert watchdogs
    for pid in watchdogs:
        os.kill(int(pid), signal.SIGKILL)
    child.kill()
    child.wait(timeout=10)
    assert any(n.startswith(f"xl-{lab_id}-") for n in ns_list())
    with xdplab.Lab() as lab:
        assert not any(n.startswith(f"xl-{lab_id}-") for n in ns_list())
        assert lab.id != lab_id


def test_labs_work_inside_a_running_asyncio_loop():
    """A Jupyter kernel's main thread runs an asyncio loop; pyroute2 0.9 cannot start its own
    there, so netlink work is forwarded to a worker thread (xdplab.netns.netlink)."""
    import asyncio

    root = {p: p.read_text() for p in Path("/proc/sys/net/ipv6/conf/default").iterdir()
            if p.name in ("accept_dad", "accept_ra", "router_solicitations")}

    async def lesson():
        with xdplab.Lab.pair() as lab:
            # the lab's own settings went into its hosts, never into this machine's namespace
            assert lab.client.run("sysctl -n net.ipv6.conf.default.accept_ra").stdout.strip() == "0"
            assert {p: p.read_text() for p in root} == root
            assert lab.client.ping(lab.server, count=1, interval=0.05).received == 1
            assert lab.server.iface().xdp().mode is None
            assert lab.server.iface().gro() in (True, False)
            return lab.id
    lab_id = asyncio.run(lesson())
    assert not [n for n in ns_list() if n.startswith(f"xl-{lab_id}-")]


def test_new_links_are_quiet_once_settled():
    """Links are made without waiting; lab.settle() (run by attach, ping, send, run...) returns
    once the kernel's start-up reports are over, and after it nothing moves until we send."""
    from xdplab import rtnl
    with xdplab.Lab() as lab:
        c, r, s = lab.host("client"), lab.host("router"), lab.host("server")
        lab.link(c, r)
        lab.link(r, s)
        lab.settle()
        ends = [i for h in (c, r, s) for i in h.interfaces]

        def counters():
            out = []
            for i in ends:
                with rtnl.Netlink(i.host.ns) as nl:
                    out.append(nl.tx_packets(i.ifindex))
            return out
        before = counters()
        assert all(n > 0 for n in before)            # the reports were sent, and counted
        time.sleep(0.5)
        assert counters() == before, "a lab interface sent frames after the lab had settled"
        assert c.ping(s, count=2, interval=0.05).received == 2
        after = counters()
        assert after[0] == before[0] + 2                # client eth0: two echo requests, nothing else


def test_anything_entering_a_new_lab_namespace_first_waits_for_quiet():
    """Not only xdplab's own calls: a test's (or a lesson helper's) own netlink socket in a lab
    host sees final counters, because entering a lab namespace settles the lab first."""
    from xdplab import netns

    def tx():
        with netns.netlink(lab.server.ns) as ipr:
            return ipr.get_links(lab.server.iface().ifindex)[0].get_attr("IFLA_STATS64")["tx_packets"]
    with xdplab.Lab.pair() as lab:
        assert lab._unsettled is not None            # made without waiting
        first = tx()
        assert lab._unsettled is None and first > 0
        time.sleep(0.5)
        assert tx() == first


def test_the_public_api_is_typed_and_every_hint_resolves():
    """xdplab ships py.typed: each public signature carries hints naming real classes."""
    import typing
    from pathlib import Path as P
    from xdplab.lab import listener, topology, traffic
    from xdplab.program import program, testrun
    assert (P(xdplab.__file__).parent / "py.typed").is_file()
    from scapy.packet import Packet          # the modules import it under TYPE_CHECKING only
    names = {**vars(topology), **vars(traffic), **vars(program), **vars(testrun), **vars(listener),
             "Packet": Packet}
    public = [topology.Lab.chain, topology.Lab.pair, topology.Lab.link, topology.Lab.host,
              topology.Lab.load, topology.Host.ping, topology.Host.run, topology.Host.send,
              topology.Host.stream, topology.Host.iface, topology.Interface.xdp,
              program.Program.attach, program.Program.detach, program.Program.fd,
              program.Program.test_run, traffic.send, traffic.Stream.__init__,
              listener.UdpListener.receive, testrun.run]
    for f in public:
        hints = typing.get_type_hints(f, globalns=names)
        assert hints, f"{f.__qualname__} has no type hints"
    assert typing.get_type_hints(topology.Host.ping, globalns=names)["return"] is topology.PingResult
    assert typing.get_type_hints(program.Program.test_run, globalns=names)["return"] \
        is testrun.TestRunResult
    for cls in (topology.Interface, topology.Link, topology.PingResult, program.Attachment,
                traffic.SendReport):
        assert typing.get_type_hints(cls, globalns=names), cls
