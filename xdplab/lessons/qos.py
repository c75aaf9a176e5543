"""Queues, rates and latency: what a slow link after a fast one does, measured on the lab.

    from xdplab import qos
    qos.qdisc_stats(router.iface(server))      # QdiscStats(kind='tbf', backlog=..., drops=...)
    test = qos.LoadTest(b, server, router.iface(server), floods=[(a, packet, "25mbit")], seconds=5)
    test.chart()                                # live: ping RTT and queue delay, in ms
    test.wait()                                 # → .rtts, .queue, .qdisc, .sent, .delivered
    qos.plot(idle, test)                        # a matplotlib figure of what was measured
    qos.set_policy(prog, "4mbit", burst="16kb") # the lesson08_policer.c token bucket's settings
    qos.verdicts(prog, a.ip, since=before)      # what it passed and dropped of a's, since `before`
    qos.have_qdisc(router, "fq_codel"); qos.set_queue(router.iface(server), "fq_codel")

A LoadTest floods the bottleneck from some hosts (Flood: frames paced every millisecond at a bit
rate, from an AF_PACKET socket), pings across it from another (iputils `ping`: a process of its
own, so the notebook's own work does not show up in the RTTs it reports), and reads the
bottleneck's root qdisc over netlink (pyroute2) every `interval`: its backlog is the queue.

Rates and sizes are written as tc writes them: "10mbit" (bits/s, 1000-based: bit kbit mbit gbit;
bps kbps mbps gbps are bytes/s), "16kb" (bytes, 1024-based: b kb mb), or plain numbers
(bits/s, bytes).
"""
from __future__ import annotations

import bisect
import errno
import ipaddress
import math
import re
import signal
import socket
import statistics
import threading
import time
from typing import TYPE_CHECKING, Any, Iterable, Mapping, NamedTuple

from xdplab.kernel import netns
from xdplab.text import escape
from xdplab.lab import traffic
from xdplab.errors import LabError, is_count, is_positive

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from scapy.packet import Packet

    from xdplab.lab.topology import Host, Interface
    from xdplab.maps.codecs import Decoded
    from xdplab.maps.map import Map
    from xdplab.program.program import Program

TC_H_ROOT = 0xFFFFFFFF
_RATE_UNITS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12,
               "bps": 8, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9}
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1 << 20, "mb": 1 << 20}
_PING = re.compile(r"^\[(\d+\.\d+)\].*icmp_seq=(\d+).*time=([\d.]+) ms")
_PING_SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) received")


def parse_rate(rate: str | float) -> int:
    """Bits per second from "10mbit", "2.5mbit", "1250kbps" (bytes/s) or a number (bits/s)."""
    if is_positive(rate):
        return int(rate)
    return _with_unit(rate, _RATE_UNITS, "a rate", "write it as tc does, e.g. '10mbit' or '500kbit' "
                      "(bits/s), '125kbps' (bytes/s), or a number of bits/s")


def parse_size(size: str | int) -> int:
    """Bytes from "16kb", "1500b", "1mb" or a number."""
    if is_count(size):
        return size
    return _with_unit(size, _SIZE_UNITS, "a size", "write it as tc does, e.g. '16kb' or '3000b', "
                      "or a number of bytes")


def _with_unit(value, units, what, hint):
    """A number above 0 with one of `units` ("2.5mbit"), times that unit; else a LabError."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", str(value).lower())
    if not m or m.group(2) not in units or float(m.group(1)) <= 0:
        raise LabError(f"{value!r} is not {what}", hint)
    return int(float(m.group(1)) * units[m.group(2)])


# --- the qdisc ------------------------------------------------------------------------------------

class QdiscStats(NamedTuple):
    """An interface's root qdisc: counters since it was made (bytes and packets it sent, drops,
    overlimits, requeues), its queue now (backlog bytes, qlen packets), and for tbf its rate
    (bytes/s) and limit (bytes)."""
    kind: str
    handle: str          # as tc writes it: "8001:"
    bytes: int
    packets: int
    drops: int
    overlimits: int
    requeues: int
    backlog: int
    qlen: int
    rate: int | None = None
    limit: int | None = None

    def since(self, before: QdiscStats) -> QdiscStats:
        """What the counters did since `before` (the queue fields stay as they are now)."""
        return self._replace(**{f: getattr(self, f) - getattr(before, f)
                                for f in ("bytes", "packets", "drops", "overlimits", "requeues")})


def _lab_iface(iface):
    """`iface`, an interface of an open lab (the lab it belongs to checks it), else a LabError."""
    lab = getattr(getattr(iface, "host", None), "lab", None)
    if lab is None:
        raise LabError(f"{iface!r} is not a lab interface", "e.g. router.iface(server)")
    return lab.own_interface(iface)


def _root_stats(ipr, iface):
    for q in ipr.get_qdiscs(index=iface.ifindex):
        if q["parent"] != TC_H_ROOT:
            continue
        stats2 = q.get_attr("TCA_STATS2")
        basic, queue = stats2.get_attr("TCA_STATS_BASIC"), stats2.get_attr("TCA_STATS_QUEUE")
        rate = limit = None
        opts = q.get_attr("TCA_OPTIONS")
        parms = opts.get_attr("TCA_TBF_PARMS") if opts and hasattr(opts, "get_attr") else None
        if parms:
            rate, limit = parms["rate"], parms["limit"]
        return QdiscStats(q.get_attr("TCA_KIND"), f"{q['handle'] >> 16:x}:", basic["bytes"], basic["packets"],
                          queue["drops"], queue["overlimits"], queue["requeues"], queue["backlog"],
                          queue["qlen"], rate, limit)
    raise LabError(f"{iface} has no root qdisc")


def qdisc_stats(iface: Interface) -> QdiscStats:
    """The statistics of lab interface `iface`'s root qdisc (what `tc -s qdisc show` prints)."""
    iface = _lab_iface(iface)
    with netns.netlink(iface.host.ns) as ipr:
        return _root_stats(ipr, iface)


def have_qdisc(host: Host, kind: str, *args: str) -> bool:
    """Whether this kernel has qdisc `kind` ("fq_codel", "netem", ...): tried, with tc arguments
    `args` (for the kinds xdplab.doctor knows, its own), on the loopback device of lab host
    `host`, and removed again."""
    from xdplab.machine.doctor import QDISCS
    args = args or QDISCS.get(kind, ([], ""))[0]
    res = host.run(["tc", "qdisc", "replace", "dev", "lo", "root", kind, *args], check=False)
    if res.returncode == 0:
        host.run(["tc", "qdisc", "del", "dev", "lo", "root"], check=False)
    return res.returncode == 0


def set_queue(iface: Interface, kind: str, *args: object) -> QdiscStats:
    """Make qdisc `kind` (with tc arguments `args`) the queue inside the tbf that shapes lab
    interface `iface`: tbf keeps setting the rate, `kind` decides what waits and what is
    dropped. E.g. set_queue(iface, "fq_codel"), set_queue(iface, "bfifo", "limit", "15kb").
    Returns the root qdisc's statistics afterwards."""
    root = qdisc_stats(iface)
    if root.kind != "tbf":
        raise LabError(f"{iface} is not shaped by tbf (its root qdisc is {root.kind})",
                       "shape the link: lab.link(a, b, rate='10mbit')")
    res = iface.host.run(["tc", "qdisc", "replace", "dev", iface.name, "parent", f"{root.handle}1",
                          kind, *map(str, args)], check=False)
    if res.returncode != 0:
        missing = "unknown" in res.stderr.lower()
        raise LabError(f"could not put a {kind} queue into {iface}'s tbf: {res.stderr.strip()}",
                       f"this kernel has no {kind} qdisc: check with qos.have_qdisc(host, "
                       f"{kind!r}) first" if missing else "check the tc arguments")
    return qdisc_stats(iface)


# --- the policer's settings ----------------------------------------------------------------------

def set_policy(prog: Program, rate: str | float | None, burst: str | int = "16kb",
               map_name: str = "policy") -> Decoded:
    """Write the token bucket's rate ("4mbit"; None or 0: no policing) and burst (bucket depth,
    "16kb") into slot 0 of `prog`'s `policy` array (lesson08_policer.c). Returns the policy."""
    m = prog.maps[map_name]
    if not rate:
        m[0] = (0, 0)                  # a rate of 0: no policing
        return m[0]
    rate_bytes = parse_rate(rate) // 8
    depth = parse_size(burst)
    if depth < 1514:
        raise LabError(f"a burst of {depth} bytes holds no full-size frame (1514 bytes): nothing "
                       "that big would ever pass", "give at least burst='2kb'")
    if depth > rate_bytes:
        raise LabError(f"a burst of {depth} bytes is more than one second of {rate} "
                       f"({rate_bytes} bytes): the program refills at most one second's worth",
                       f"give burst <= {rate_bytes} bytes, or a higher rate")
    if rate_bytes > 8 * 10**9:
        raise LabError(f"{rate} is more than the program can count (64 gbit)")
    m[0] = (rate_bytes, depth)
    return m[0]


def verdicts(prog: Program, source: str | ipaddress.IPv4Address,
             since: Mapping[Decoded, Decoded] | None = None, map_name: str = "stats") -> Decoded:
    """What lesson08_policer.c's `stats` counted for IPv4 `source` (passed, passed_bytes,
    dropped, dropped_bytes): all of it, or with `since` (an earlier `prog.maps["stats"].snapshot()`)
    only what it counted after that snapshot, so a proof counts its own traffic only."""
    key = ipaddress.ip_address(source)
    now = prog.maps[map_name].snapshot()
    if key not in now:
        raise LabError(f"the policer has counted nothing from {source}",
                       "send from that source first (or the LRU `stats` evicted it: 1024 sources came after)")
    after = now[key]
    before = (since or {}).get(key)
    if before is None:
        return after
    diff = type(after)(*(a - b for a, b in zip(after, before)))
    if min(diff) < 0:              # the entry was evicted and made again since `before`
        raise LabError(f"the policer's count for {source} started again since the snapshot: 1024 "
                       "other sources came by, and the LRU `stats` evicted it",
                       "take a new snapshot, then send")
    return diff


# --- traffic at a steady rate ---------------------------------------------------------------------

class Flood(traffic.Background):
    """`packet` sent from lab host `host` as frames at `rate` ("25mbit": bits/s of whole frames,
    Ethernet header included, as tbf counts them) for `seconds` (None: until stop()), in the
    background. Frames are paced every millisecond, so the arrivals are smooth: host.stream()
    sends a tenth of a second's worth at a time, and bursts fill a queue differently.
    `.sent` counts the frames sent so far."""

    TICK = 0.001

    def __init__(self, host: Host, packet: Packet | bytes, rate: str | float,
                 seconds: float | None = 5.0, iface: Interface | str | Host | None = None) -> None:
        host.lab.check_open()
        if isinstance(packet, (list, tuple)):
            raise LabError("a Flood sends one packet over and over, not a list",
                           "start one Flood per packet")
        (self.iface, self.frame), = traffic.prepare_frames(host, [packet], iface)[0]
        self.host, self.seconds = host, seconds
        self.rate = parse_rate(rate)
        self.pps = self.rate / 8 / len(self.frame)
        self.sent = 0
        self.error = None
        with netns.enter(host.ns):
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)   # 0: send only
            self._sock.bind((self.iface.name, 0))
        self._start(host, "flood")

    def _run(self):
        start = time.monotonic()
        try:
            while not self._stop.is_set():
                elapsed = time.monotonic() - start
                if self.seconds is not None and elapsed >= self.seconds:
                    break
                due = int(elapsed * self.pps) + 1
                while self.sent < due:
                    try:
                        self._sock.send(self.frame)
                        self.sent += 1
                    except BlockingIOError:
                        break
                    except OSError as e:
                        if e.errno == errno.ENOBUFS:     # the sender's own qdisc is full
                            break
                        raise
                self._stop.wait(self.TICK)
        except OSError as e:
            if not self.host.lab.closed:
                self.error = LabError(f"the flood from {self.iface} stopped: {e.strerror}")
        finally:
            self._sock.close()

    @property
    def frame_len(self) -> int:
        """The length of each frame sent, in bytes."""
        return len(self.frame)

    def __repr__(self):
        state = "running" if self.running else "finished"
        return (f"<Flood from {self.iface}: {self.rate / 1e6:g} Mbit/s of {self.frame_len}-byte "
                f"frames ({self.pps:.0f}/s), {self.sent:,} sent, {state}>")


# --- one measurement -------------------------------------------------------------------------------

class LoadTest:
    """Ping from lab host `probe` to `target` every `interval` for `seconds`, while the hosts of
    `floods` ([(host, packet, rate), ...]) flood, and read the root qdisc of `bottleneck` (a lab
    interface) every `interval`. Starts at once; `wait()` returns when it is over. With
    `count_at` (a map keyed by IPv4 source with a `packets` field, e.g. lesson02_sources.c's
    by_source on the receiver), `delivered` says how many frames of each flooding host arrived.

        .rtts      [(seconds since start, RTT ms)] of the pings answered, by the time they left
        .queue     [(seconds since start, backlog bytes)] of the bottleneck's root qdisc
        .pings     (sent, answered);  .median_rtt (ms);  .qdisc (QdiscStats over the test)
        .median_queue_delay, .queue_delay_at_pings   backlog ÷ link rate (ms): over the test,
                   and as the answered pings found it when they left
        .sent / .delivered   {host name: frames}; .throughput {host name: Mbit/s delivered}
        .offered_by          {host name: Mbit/s sent}
    """

    def __init__(self, probe: Host, target: Host | str, bottleneck: Interface,
                 floods: Iterable[tuple[Host, Packet | bytes, str | float]] = (),
                 seconds: float = 5.0, interval: float = 0.05, count_at: Map | None = None,
                 name: str | None = None) -> None:
        self.lab = probe.lab
        self.lab.check_open()
        self.bottleneck = _lab_iface(bottleneck)
        self.name = name or ("idle" if not floods else "load")
        self.seconds, self.interval, self.count_at = float(seconds), float(interval), count_at
        self.rtts, self.queue, self.pings = [], [], (0, 0)
        self.sent, self.delivered, self.floods = {}, {}, []
        self.offered = 0.0               # bytes per second the floods sent, over the test
        self.error = None
        self._before = qdisc_stats(self.bottleneck)
        self.qdisc = None
        self.link_rate = self._before.rate or (parse_rate(self.bottleneck.link.rate) // 8
                                               if self.bottleneck.link.rate else None)
        self._counted_before = count_at.snapshot() if count_at is not None else {}
        self._done = threading.Event()
        self._start = time.time()
        count = max(1, round(self.seconds / self.interval))
        self._ping = probe.popen(["ping", "-n", "-D", "-i", f"{self.interval:g}", "-c", str(count),
                                  "-W", "0.5", probe.address_of(target)], text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read_ping, daemon=True,
                                        name="xdplab-ping-reader")
        self._reader.start()
        self._sampler = threading.Thread(target=self._sample, daemon=True, name="xdplab-qdisc")
        self._sampler.start()
        try:
            self.floods = [(host, Flood(host, packet, rate, seconds=self.seconds))
                           for host, packet, rate in floods]
        except BaseException:
            self._finish()
            raise
        self._runner = threading.Thread(target=self._run, daemon=True, name="xdplab-loadtest")
        self._runner.start()
        self.lab.on_close(self._finish)

    # -- the background parts ----------------------------------------------------------------------
    def _read_ping(self):
        for line in self._ping.stdout:
            m = _PING.match(line)
            if m:
                rtt = float(m.group(3))
                self.rtts.append((float(m.group(1)) - rtt / 1000 - self._start, rtt))
            m = _PING_SUMMARY.search(line)
            if m:
                self.pings = (int(m.group(1)), int(m.group(2)))

    def _sample(self):
        try:
            with netns.netlink(self.bottleneck.host.ns) as ipr:
                while not self._done.is_set():
                    q = _root_stats(ipr, self.bottleneck)
                    self.queue.append((time.time() - self._start, q.backlog))
                    self._done.wait(self.interval)
        except Exception as e:          # the lab closed under us, or the interface went away
            if not self.lab.closed:
                self.error = e

    def _run(self):
        for _, flood in self.floods:
            flood.wait()
        try:
            self._ping.wait(timeout=self.seconds + 10)
        except Exception:
            pass
        self._reader.join(timeout=2)
        deadline = time.monotonic() + 1.0          # let the queue drain before counting arrivals
        while (not self._done.is_set() and self.queue and self.queue[-1][1]
               and time.monotonic() < deadline):
            self._done.wait(self.interval)
        self._finish()

    def _finish(self):
        if self._done.is_set():
            return
        for _, flood in self.floods:
            flood.stop()
        if self._ping.poll() is None:
            self._ping.send_signal(signal.SIGINT)
        self.error = self.error or next((f.error for _, f in self.floods if f.error), None)
        if not self.lab.closed:
            self.sent = {host.name: flood.sent for host, flood in self.floods}
            self.offered = sum(f.sent * f.frame_len for _, f in self.floods) / self.seconds
            try:
                self.qdisc = qdisc_stats(self.bottleneck).since(self._before)
                if self.count_at is not None:
                    after = self.count_at.snapshot()
                    self.delivered = {host.name: _packets(after, host.ip)
                                      - _packets(self._counted_before, host.ip)
                                      for host, _ in self.floods}
            except LabError as e:
                self.error = e
        self._done.set()

    # -- results ---------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True until the test is over."""
        return not self._done.is_set()

    def wait(self, timeout: float | None = None) -> LoadTest:
        """Block until the test is over (at most `seconds` + a few); returns the test."""
        self._runner.join(timeout if timeout is not None else self.seconds + 15)
        if self.running:
            self._finish()
        if self.error is not None:
            raise self.error if isinstance(self.error, LabError) else LabError(
                f"the measurement failed: {self.error}")
        return self

    @property
    def median_rtt(self) -> float | None:
        """The median RTT of the answered pings, in ms (None when none was answered)."""
        return statistics.median(r for _, r in self.rtts) if self.rtts else None

    # A full link: the floods offered at least FULL_OFFER times the link's rate, and the queue
    # held frames in at least FULL_SAMPLES of the samples taken from FULL_AFTER s on.
    FULL_OFFER, FULL_SAMPLES, FULL_AFTER = 1.2, 0.9, 0.5

    def link_full(self) -> tuple[bool, str]:
        """(True, why) when the floods kept the bottleneck busy with a queue the whole time, else
        (False, why), in plain words. RTT ≈ queue delay, and what a policer or an AQM does to
        it, can only be seen on a link kept full; a machine too busy or too slow to send the
        floods on time (an emulated VM, a loaded laptop) sends in bursts, and the queue empties
        between them."""
        if not self.floods:
            return False, "nobody flooded"
        during = [b for t, b in self.queue if self.FULL_AFTER <= t <= self.seconds]
        busy = sum(1 for b in during if b) / len(during) if during else 0.0
        offer = self.offered / self.link_rate if self.link_rate else 0.0
        words = (f"the floods sent {8 * self.offered / 1e6:.1f} Mbit/s ({offer:.1f} × the link's "
                 f"rate) and the queue held frames in {busy:.0%} of the samples")
        if offer >= self.FULL_OFFER and busy >= self.FULL_SAMPLES:
            return True, f"the link was kept full: {words}"
        return False, (f"the link was not kept full: {words} (the timing checks need "
                       f"{self.FULL_OFFER:g} × with a queue in {self.FULL_SAMPLES:.0%}). This "
                       "machine is too busy or too slow to send the floods on time; run the "
                       "lesson again when it is idle")

    @property
    def median_queue_delay(self) -> float | None:
        """The median of the queue's delay (backlog ÷ link rate) while the floods ran, in ms."""
        during = [self.queue_delay(b) for t, b in self.queue if t <= self.seconds]
        return statistics.median(during) if during else None

    @property
    def queue_delay_at_pings(self) -> float | None:
        """The median queue delay (backlog ÷ link rate) the answered pings found, in ms: for each,
        the sample taken nearest to the moment it left. That is what a ping's RTT is made of
        under a flood. A ping that finds the queue full is dropped, so the answered ones found a
        little less than the queue's usual depth (median_queue_delay), and more so where the
        floods come in bursts (a busy or emulated machine)."""
        if not self.rtts or not self.queue:
            return None
        times = [t for t, _ in self.queue]
        found = []
        for left, _ in self.rtts:
            i = bisect.bisect_left(times, left)
            nearest = min((j for j in (i - 1, i) if 0 <= j < len(times)),
                          key=lambda j: abs(times[j] - left))
            found.append(self.queue_delay(self.queue[nearest][1]))
        return statistics.median(found)

    @property
    def loss(self) -> float:
        """The part of the pings that got no answer, from 0 to 1."""
        sent, answered = self.pings
        return 1 - answered / sent if sent else 0.0

    def queue_delay(self, backlog: float) -> float:
        """How long `backlog` bytes wait at the link's rate, in ms."""
        return 1000 * backlog / self.link_rate if self.link_rate else 0.0

    @property
    def throughput(self) -> dict[str, float]:
        """Mbit/s of whole frames delivered per flooding host (needs count_at)."""
        lengths = {host.name: flood.frame_len for host, flood in self.floods}
        return {name: round(n * lengths[name] * 8 / self.seconds / 1e6, 2)
                for name, n in self.delivered.items()}

    @property
    def offered_by(self) -> dict[str, float]:
        """Mbit/s of frames each flooding host sent, over the test (what it asked the link for)."""
        return {host.name: round(self.sent.get(host.name, 0) * flood.frame_len * 8 / self.seconds
                                 / 1e6, 2) for host, flood in self.floods}

    # -> Any: an xdplab.ui RatesChart (an ipywidgets widget), not imported here for a hint
    def chart(self, window: float | None = None, interval: float = 0.25) -> Any:
        """A live chart of the last ping RTT and of the queue's delay (backlog ÷ link rate), in
        ms, while the test runs; it stops when the test ends."""
        from xdplab.ui.widgets import RatesChart, Stop

        def latest(series, convert):
            def read():
                if self._done.is_set():
                    raise Stop(f"{self.name}: finished")
                return convert(series[-1][1]) if series else 0.0
            return read
        return RatesChart({"ping RTT (ms)": latest(self.rtts, float),
                           "queue delay (ms)": latest(self.queue, self.queue_delay)},
                          window=window or self.seconds + 1, interval=interval, rates=False,
                          lab=self.lab, title=f"{self.name}: ping RTT and queue delay, ms")

    def summary(self) -> dict[str, object]:
        """The numbers, as a dict (for tables and checks)."""
        out = {"test": self.name, "median RTT ms": _round(self.median_rtt),
               "pings answered": f"{self.pings[1]}/{self.pings[0]}",
               "max queue KB": round(max((b for _, b in self.queue), default=0) / 1024, 1)}
        if self.qdisc is not None:
            out.update({"link sent": self.qdisc.packets, "link dropped": self.qdisc.drops})
        out.update({f"{name} sent": n for name, n in self.sent.items()})
        out.update({f"{name} delivered": n for name, n in self.delivered.items()})
        return out

    def __repr__(self):
        state = "running" if self.running else "finished"
        return f"<LoadTest {self.name}: {state}, {self.summary()}>"


def _packets(snapshot, ip):
    value = snapshot.get(ipaddress.ip_address(ip))
    if value is None:
        return 0
    return value if isinstance(value, int) else value.packets


def _round(x):
    return None if x is None else (round(x, 3) if x < 1 else round(x, 1))


# -> Any: an IPython.display.HTML, not imported here for a hint
def table(*tests: LoadTest) -> Any:
    """The summaries of several tests as one HTML table."""
    from IPython.display import HTML
    rows = [t.summary() for t in tests]
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{escape(r.get(c, ''))}</td>" for c in cols)
                   + "</tr>" for r in rows)
    return HTML(f"<table><tr>{head}</tr>{body}</table>")


def plot(*tests: LoadTest, title: str | None = None) -> Figure:
    """A matplotlib figure (xdplab.charts): the ping RTTs (log scale) and the queue's delay over
    time, one colour per test, the legend below."""
    from xdplab.ui import charts
    from xdplab.ui.widgets import fmt_rate
    fig, (top, bottom) = charts.figure(9, 6, rows=2, sharex=True, height_ratios=[3, 2])
    lines = []
    for test in tests:
        median = test.median_rtt
        line, = top.plot([t for t, _ in test.rtts], [r for _, r in test.rtts], ".-", lw=0.8,
                         ms=3, label=f"{test.name} (median {fmt_rate(median)} ms)"
                         if median is not None else f"{test.name} (no ping answered)")
        bottom.plot([t for t, _ in test.queue], [test.queue_delay(b) for _, b in test.queue],
                    color=line.get_color(), lw=1.2, label=test.name)
        lines.append(line)
    top.set_ylabel("ping RTT (ms)")
    charts.log(top.yaxis)
    top.grid(True, which="both", alpha=0.3)
    bottom.set_ylabel("queue delay (ms)\nbacklog ÷ link rate")
    bottom.set_xlabel("seconds since the start of each test")
    charts.values(bottom.xaxis)
    charts.values(bottom.yaxis, nbins=4)
    bottom.grid(True, alpha=0.3)
    charts.legend(fig, lines)
    if title:
        fig.suptitle(title)
    return fig


def shares(test: LoadTest) -> dict[str, float]:
    """Each flooding host's part of what was delivered, from 0 to 1 (needs count_at)."""
    total = sum(test.delivered.values())
    return {name: round(n / total, 3) if total else math.nan for name, n in test.delivered.items()}
