"""What a packet costs: the measurements of lesson 07, each with a table and a chart.

    from xdplab import perf
    costs = perf.ladder(prog, packet)             # ns per run of each XDP function (test runs)
    shared = perf.contention(prog, packet, ["rung_percpu", "rung_atomic"])   # 1 CPU vs all at once
    rates = perf.receive_rates(lab.client, lab.server, prog, packet, fn="rung_percpu",
                               counter="percpu_counts")   # the injector into native / generic XDP
    sweep = perf.batch_sweep(lab.client, lab.server, prog, packet, fn=..., counter=...)
    # kernels without live frames (before 5.18): AF_PACKET, and the test run's own batches
    rates = perf.receive_rates(..., method="af_packet", count=20_000)
    sweep = perf.repeat_sweep(lab.server, prog, packet, fn=..., counter=...)
    perf.reference(rates, costs)                  # the XDP paper's numbers beside this machine's
    perf.calls(prog, "rung_hash")                 # the kernel functions a rung calls, as verified
    costs.chart()                                 # every result has .chart(): a matplotlib Figure

Everything is measured here and now; the only numbers written down are the published reference
points, with their source. A machine runs other things too (and a virtual one shares its host),
so each measurement is repeated in rounds, interleaved, and the best round is kept: a slower
round measured a disturbance, not the code. Counts are exact whatever the speed: each result
keeps what was sent and what the program counted, for the lesson's checks.
"""
from __future__ import annotations

import dataclasses
import errno
import os
import time
import typing
from typing import TYPE_CHECKING, Collection, Iterable, Sequence

from xdplab.kernel import bpf as kernel
from xdplab.text import escape
from xdplab.kernel import netns
from xdplab.program import testrun
from xdplab.lab import traffic
from xdplab.lab.counters import link_stats
from xdplab.lab.settle import settled
from xdplab.lessons.cpus import run_on_all_cpus
from xdplab.errors import LabError, check_count, is_count
from xdplab.kernel.constants import MAX_REPEAT

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from scapy.packet import Packet

    from xdplab.lab.topology import Host, Interface
    from xdplab.program.program import Program

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)   # live frames: 64 by default, 256 at most

# The XDP paper: T. Høiland-Jørgensen, J. D. Brouer, D. Borkmann, J. Fastabend, T. Herbert,
# D. Ahern, D. Miller, "The eXpress Data Path: Fast Programmable Packet Processing in the
# Operating System Kernel", ACM CoNEXT 2018, doi:10.1145/3281411.3281443, section 4.1 (packet
# drop, one core, 64-byte packets from a TRex generator on another machine; Xeon E5-1650 v4 at
# 3.6 GHz, Mellanox ConnectX-5 Ex 100 Gbit/s NIC with the mlx5 driver, Linux 4.18 pre-release).
PAPER = "Høiland-Jørgensen et al., CoNEXT 2018, §4.1"
PAPER_SETUP = "ConnectX-5 100G, Xeon E5-1650 v4 3.6 GHz, 1 core, sender on another machine"
REFERENCE = (("XDP_DROP, mlx5 driver", 24.0),
             ("DPDK drop", 43.5),
             ("stack, iptables raw drop", 4.8),
             ("stack, conntrack drop", 1.8))


# -- presentation ------------------------------------------------------------------------------

def chart(width: float = 6.4, height: float = 3.0) -> tuple[Figure, Axes]:
    """A new Chart (a matplotlib Figure that displays itself: xdplab.charts) and its one Axes,
    its value axis (x: the charts here are horizontal bars) at round steps."""
    from xdplab.ui import charts
    fig, ax = charts.figure(width, height)
    charts.values(ax.xaxis)
    return fig, ax


def _finish(fig):
    from xdplab.ui import charts
    return charts.finish(fig)


def _table(title, head, rows):
    e = escape
    cells = lambda r, tag: "".join(f"<{tag}>{e(v)}</{tag}>" for v in r)
    body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows)
    return (f"<div><b>{e(title)}</b><table><tr>{cells(head, 'th')}</tr>{body}</table></div>")


def _text(title, head, rows):
    rows = [list(map(str, r)) for r in [head, *rows]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join([title] + ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()
                                 for r in rows])


class _Shown:
    """Results shown as a table: subclasses give _title and _rows() → (head, rows)."""

    def _repr_html_(self):
        return _table(self._title, *self._rows())

    def __repr__(self):
        return _text(self._title, *self._rows())


def mpps(ns_per_packet: float) -> float:
    """Packets per second (in millions) of one CPU spending `ns_per_packet` on each."""
    return 1e3 / ns_per_packet if ns_per_packet else float("inf")


# -- 1. the ladder: test runs, many repeats -----------------------------------------------------

@dataclasses.dataclass(repr=False)
class Ladder(_Shown):
    """ns per run of each function (best round), every round's ns, verdicts, and how many times
    each function ran in all (repeats, plus the runs that took its verdict)."""
    ns: dict[str, int]             # function → ns per run, best round
    rounds: dict[str, list[int]]   # function → ns per run of every round
    verdicts: dict[str, str]
    runs: dict[str, int]
    repeat: int
    _title = "ns per run, BPF_PROG_TEST_RUN"

    def _rows(self):
        return (("function", "verdict", "ns per run (best)", "every round", "runs in all"),
                [(fn, self.verdicts[fn], self.ns[fn], " ".join(map(str, self.rounds[fn])),
                  f"{self.runs[fn]:,}") for fn in self.ns])

    def chart(self) -> Figure:
        """The cost of each function as horizontal bars (a matplotlib Figure)."""
        fig, ax = chart(height=0.45 * len(self.ns) + 1.0)
        names = list(self.ns)[::-1]
        bars = ax.barh(names, [self.ns[n] for n in names], color="C0")
        ax.bar_label(bars, labels=[f"{self.ns[n]} ns" for n in names], padding=3)
        floor = min(self.ns.values())
        ax.axvline(floor, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel(f"ns per run (best of {len(next(iter(self.rounds.values())))} rounds "
                      f"of {self.repeat:,} runs; dotted: the cheapest)")
        ax.margins(x=0.05)
        ax.set_title("What each rung costs, run by BPF_PROG_TEST_RUN on one CPU", fontsize=10)
        return _finish(fig)


def ladder(prog: Program, packet: Packet | bytes, fns: Iterable[str] | None = None,
           repeat: int = 500_000, rounds: int = 5) -> Ladder:
    """Run each XDP function of `prog` (all of them by default, in source order) `repeat` times
    on `packet` with BPF_PROG_TEST_RUN, in `rounds` interleaved rounds. Returns a Ladder."""
    check_count(repeat, "repeat", most=MAX_REPEAT, example="500_000")
    fns = list(fns or prog.functions)
    data = testrun.frame_bytes(packet)
    verdicts = {fn: prog.test_run(data, fn=fn).verdict for fn in fns}
    times = {fn: [] for fn in fns}
    for _ in range(rounds):
        for fn in fns:
            times[fn].append(prog.test_run(data, fn=fn, repeat=repeat).ns_per_packet)
    runs = {fn: 1 + rounds * (1 + repeat) for fn in fns}   # test_run(repeat=n) runs 1 + n times
    return Ladder({fn: min(t) for fn, t in times.items()}, times, verdicts, runs, repeat)


# -- 2. one CPU, or all of them at once --------------------------------------------------------

@dataclasses.dataclass(repr=False)
class Contention(_Shown):
    """ns per run of each function on one CPU alone, and on every CPU at the same time (the
    average of the CPUs), best round of each; `runs`: how many times each function ran."""
    alone: dict[str, float]        # function → ns per run on one CPU
    together: dict[str, float]     # function → ns per run, every CPU at once ({} with one CPU)
    runs: dict[str, int]
    cpus: list[int]
    _title = "ns per run: one CPU alone, or every CPU at once"

    def _rows(self):
        together = f"{len(self.cpus)} CPUs at once"
        return (("function", "1 CPU alone", together, "runs in all"),
                [(fn, self.alone[fn], self.together.get(fn, "-"), f"{self.runs[fn]:,}")
                 for fn in self.alone])

    def chart(self) -> Figure:
        """One CPU alone against all of them, per function (a matplotlib Figure)."""
        import numpy as np
        from xdplab.ui import charts
        fig, ax = chart(height=2.9)
        names = list(self.alone)
        y = np.arange(len(names))
        series = [("1 CPU alone", self.alone, "C0")]
        if self.together:
            series.append((f"{len(self.cpus)} CPUs at once", self.together, "C1"))
        h = 0.8 / len(series)
        for i, (label, values, color) in enumerate(series):
            bars = ax.barh(y + (i - (len(series) - 1) / 2) * h, [values[n] for n in names], h,
                           label=label, color=color)
            ax.bar_label(bars, labels=[f"{values[n]:.0f} ns" for n in names], padding=3)
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        ax.margins(x=0.05)
        ax.set_xlabel("ns per run (best round)")
        charts.legend(fig, ax.containers)
        ax.set_title("Counting on one CPU, and on all of them at once", fontsize=10)
        return _finish(fig)


def contention(prog: Program, packet: Packet | bytes, fns: Collection[str],
               repeat: int = 1_000_000, rounds: int = 3) -> Contention:
    """Run each of `fns` `repeat` times on one CPU alone, then on every CPU at the same time
    (xdplab.cpus.run_on_all_cpus), in interleaved rounds. Returns a Contention."""
    check_count(repeat, "repeat", most=MAX_REPEAT, example="500_000")
    cpus = sorted(os.sched_getaffinity(0))
    alone = {fn: [] for fn in fns}
    together = {fn: [] for fn in fns} if len(cpus) > 1 else {}
    for _ in range(rounds):
        for fn in fns:
            one = run_on_all_cpus(prog, packet, repeat, cpus=cpus[:1], fn=fn)
            alone[fn] += one.ns_per_run.values()
            if together:
                t = run_on_all_cpus(prog, packet, repeat, cpus=cpus, fn=fn).ns_per_run
                together[fn].append(sum(t.values()) / len(t))
    runs = {fn: rounds * repeat * (1 + (len(cpus) if together else 0)) for fn in fns}
    return Contention({fn: min(v) for fn, v in alone.items()},
                      {fn: min(v) for fn, v in together.items()}, runs, cpus)


# -- live frames into a receiver ----------------------------------------------------------------
# The fast injector of Host.send (xdplab.traffic), driven directly: BPF_PROG_TEST_RUN runs a
# `return XDP_TX;` program on the frame as if it had arrived on the sender's interface, `count`
# times, in batches of `batch_size`; each XDP_TX goes out of that veth to the receiver. The
# kernel times the run itself: its clock stops while the injector lets other tasks have the CPU
# (on a busy machine the wall clock does not), and it includes the receiver's work, which runs
# in the softirq at the end of each batch, on the same CPU.

def _frame(sender, receiver, packet, live=True):
    """(sender's Interface, frame bytes) of `packet` sent to `receiver` over a link they share;
    `live`: the frames will be sent as live frames, which this kernel must have."""
    if not any(i.peer.host is receiver for i in sender.interfaces):
        raise LabError(f"{sender.name} and {receiver.name} are not linked: the frames must go "
                       "straight from one to the other", "measure between two hosts joined by "
                       "lab.link(a, b), e.g. lab.client and lab.server of Lab.pair()")
    ifc = sender.iface(receiver)
    (ifc, data), = traffic.prepare_frames(sender, [packet], ifc)[0]
    if live and not traffic.live_frames_available(sender.ns):
        raise LabError("this kernel has no BPF_F_TEST_XDP_LIVE_FRAMES (Linux 5.18+), which these "
                       "measurements send with", "measure with method='af_packet' and "
                       "perf.repeat_sweep (xdplab.probe().live_frames says which applies)")
    return ifc, data


def _drop_counter(prog, fn, data, counter):
    """Check that `fn` drops `data` and that map `counter` counts per verdict; returns a reader
    of its XDP_DROP packet count."""
    verdict = prog.test_run(data, fn=fn).verdict
    if verdict != "XDP_DROP":
        raise LabError(f"{fn or prog.functions[0]} returns {verdict} for this packet: the receiver "
                       "must drop what it counts, so that only XDP's work is measured",
                       "send a packet the program drops, or pick another fn=")
    table = prog.maps[counter]
    return lambda: table.snapshot()["XDP_DROP"].packets


def _settled(count, expected, patience=2.0):
    """The count once it reaches `expected` or stops moving (a frame still in a queue when the
    sender returned is counted a moment later)."""
    return settled(count, quiet=0.05, limit=patience, poll=0.05, enough=lambda n: n >= expected)


def _live(ns, fd, data, count, ifindex, batch_size=0):
    """Run `fd` on `data` `count` times as live frames arriving on interface `ifindex` of
    namespace `ns`: (wall-clock seconds, the kernel's ns per frame)."""
    ctx = bytes(kernel.XdpMd.for_packet(len(data), ingress_ifindex=ifindex))
    start = time.perf_counter()
    try:
        with netns.enter(ns):                        # ifindexes are looked up in the caller's
            ns_per_frame = kernel.prog_test_run(fd, data, repeat=count, ctx_in=ctx,
                                                batch_size=batch_size,
                                                flags=kernel.BPF_F_TEST_XDP_LIVE_FRAMES)[2]
    except OSError as e:
        if e.errno == errno.EINTR:
            raise KeyboardInterrupt from None
        raise LabError(f"sending live frames failed: {e.strerror} (errno {e.errno})") from None
    return time.perf_counter() - start, ns_per_frame


class _Receiving:
    """The injector's XDP_TX program (live frames only), and `fn` of `prog` attached to the
    receiving end of the link in each mode in turn; detached and closed on exit."""

    def __init__(self, sender, receiver, prog, packet, fn, counter, live=True):
        self.sender, self.prog, self.fn, self.live = sender, prog, fn, live
        self.ifc, self.data = _frame(sender, receiver, packet, live)
        self.count = _drop_counter(prog, fn, self.data, counter)
        self.tx = None

    def __enter__(self):
        if self.live:
            self.tx = kernel.load_xdp_bytecode(
                kernel.xdp_return(kernel.XDP_ACTIONS.index("XDP_TX")), "xdplab_perf")
        return self

    def __exit__(self, *exc):
        if self.tx is not None:
            os.close(self.tx)
        self.prog.detach(self.ifc.peer)

    def attach(self, mode):
        self.prog.attach(self.ifc.peer, fn=self.fn, mode=mode)
        if self.live:                       # XDP's frames need NAPI (GRO) at a generic receiver;
            traffic.ensure_napi(self.ifc)   # AF_PACKET's skbs are taken without it

    def inject(self, count, batch_size=0):
        """(frames sent, frames counted, frames the veth dropped, wall seconds, kernel ns per
        frame). A veth drops a frame sent into it when its peer's receive ring (256 frames) is
        full; the sending end counts it as tx_dropped."""
        before, lost = self.count(), link_stats(self.ifc).get("tx_dropped", 0)
        seconds, ns = _live(self.sender.ns, self.tx, self.data, count, self.ifc.ifindex, batch_size)
        lost = link_stats(self.ifc).get("tx_dropped", 0) - lost
        return count, _settled(self.count, before + count - lost) - before, lost, seconds, ns

    def send(self, count):
        """Like inject(), through an AF_PACKET socket (Host.send's way without live frames): one
        system call per frame, timed by the wall clock only, so ns per frame is wall time."""
        before, lost = self.count(), link_stats(self.ifc).get("tx_dropped", 0)
        sent, seconds = traffic.send_af_packet(self.sender, [(self.ifc, self.data)], count)
        lost = link_stats(self.ifc).get("tx_dropped", 0) - lost
        counted = _settled(self.count, before + sent - lost) - before
        return sent, counted, lost, seconds, seconds * 1e9 / sent

    def run_alone(self, count):
        """The receiving program run by the injector itself, on the receiver's interface; without
        live frames, by a plain test run (`count` repeats, the kernel's clock)."""
        before = self.count()
        if not self.live:
            start = time.perf_counter()
            ns = _test_run(self.prog.fd(self.fn), self.data, count)
            seconds = time.perf_counter() - start
        else:
            seconds, ns = _live(self.ifc.peer.host.ns, self.prog.fd(self.fn), self.data, count,
                                self.ifc.peer.ifindex)
        return count, _settled(self.count, before + count) - before, 0, seconds, ns


def _test_run(fd, data, repeat):
    """One BPF_PROG_TEST_RUN of `fd` on `data`, `repeat` runs: the kernel's ns per run."""
    try:
        return kernel.prog_test_run(fd, data, repeat=repeat)[2]
    except OSError as e:
        if e.errno == errno.EINTR:
            raise KeyboardInterrupt from None
        raise LabError(f"BPF_PROG_TEST_RUN failed: {e.strerror} (errno {e.errno})") from None


@dataclasses.dataclass
class Delivery:
    """`sent` frames delivered along `path`; `counted`: how many the receiving program counted,
    `dropped`: how many the veth dropped; `seconds` by the wall clock; `ns_per_packet` by the
    kernel's clock (CPU time per frame)."""
    path: str
    sent: int
    counted: int
    dropped: int
    seconds: float
    ns_per_packet: float

    @property
    def rate(self) -> float:
        """Packets per second one CPU gets through at this cost."""
        return 1e9 / self.ns_per_packet if self.ns_per_packet else float("inf")


NO_VETH = "no veth: the injector runs it"
NO_VETH_TEST_RUN = "no veth: a test run runs it"
METHODS = ("live_frames", "af_packet")


class Rates(list, _Shown):
    """Deliveries, one per path; rates["veth, native XDP"] finds one by its path. `method`: how
    the frames were sent, "live_frames" (the kernel's clock) or "af_packet" (the wall clock)."""
    method = "live_frames"

    @property
    def _title(self):
        return ("live frames into the receiving program (the kernel's clock)"
                if self.method == "live_frames" else
                "AF_PACKET frames into the receiving program (the wall clock; no veth row: the "
                "kernel's clock)")

    def __getitem__(self, key: int | str) -> Delivery:
        if isinstance(key, str):
            for d in self:
                if d.path == key:
                    return d
            raise KeyError(key)
        return list.__getitem__(self, key)

    def _rows(self):
        return (("path", "sent", "counted", "dropped", "ns per packet", "Mpps", "wall-clock s"),
                [(d.path, f"{d.sent:,}", f"{d.counted:,}", f"{d.dropped:,}",
                  f"{d.ns_per_packet:.0f}", f"{d.rate / 1e6:.2f}", f"{d.seconds:.3f}")
                 for d in self])

    __repr__ = _Shown.__repr__

    def chart(self) -> Figure:
        """Packets per second along each path (a matplotlib Figure)."""
        fig, ax = chart(height=0.5 * len(self) + 1.1)
        rows = list(self)[::-1]
        bars = ax.barh([d.path for d in rows], [d.rate / 1e6 for d in rows],
                       color=["C2" if d.path in (NO_VETH, NO_VETH_TEST_RUN) else "C0"
                              for d in rows])
        ax.bar_label(bars, labels=[f"{d.rate / 1e6:.2f} Mpps · {d.ns_per_packet:.0f} ns"
                                   for d in rows], padding=3)
        ax.margins(x=0.05)
        if self.method == "live_frames":
            ax.set_xlabel("million packets per second (injector + receiver, one CPU)")
            ax.set_title("The injector's frames, dropped by the same program", fontsize=10)
        else:
            ax.set_xlabel("million packets per second (sender + receiver: wall clock)")
            ax.set_title("AF_PACKET frames, dropped by the same program", fontsize=10)
        return _finish(fig)


def receive_rates(sender: Host, receiver: Host, prog: Program, packet: Packet | bytes,
                  fn: str | None = None, counter: str = "counters", count: int = 1_000_000,
                  modes: Sequence[str] = ("native", "generic"),
                  method: str = "live_frames") -> Rates:
    """Inject `count` copies of `packet` from `sender` to `receiver` (in the injector's default
    batches of 64) while XDP function `fn` of `prog` runs on the receiver's interface in each of
    `modes`; first, for comparison, the injector runs `fn` itself, with no veth. `fn` must drop
    the packet and count verdicts in map `counter`. With method="af_packet" (kernels without live
    frames) the frames go through an AF_PACKET socket, timed by the wall clock, and the first row
    is a plain test run of `fn`. Returns Rates."""
    if method not in METHODS:
        raise LabError(f"unknown method {method!r}", f"use one of {', '.join(METHODS)}")
    check_count(count, "count", most=MAX_REPEAT, example="1_000_000")
    live = method == "live_frames"
    rates = Rates()
    rates.method = method
    with _Receiving(sender, receiver, prog, packet, fn, counter, live) as rx:
        rates.append(Delivery(NO_VETH if live else NO_VETH_TEST_RUN, *rx.run_alone(count)))
        for mode in modes:
            rx.attach(mode)
            rates.append(Delivery(f"veth, {mode} XDP", *(rx.inject(count) if live else
                                                         rx.send(count))))
    return rates


# -- 3. the batch size of the injector ----------------------------------------------------------

class Fit(typing.NamedTuple):
    """The cost model of a batch of B frames: per_frame + per_batch / B ns per frame."""
    per_frame: float
    per_batch: float

    def __repr__(self):
        return f"{self.per_frame:.0f} ns per frame + {self.per_batch:.0f} ns per batch"


@dataclasses.dataclass(repr=False)
class Sweep(_Shown):
    """Per receiver mode and batch size: the kernel's ns per frame of every round, frames sent and
    counted; fit(mode) is the cost model through the best rounds."""
    ns: dict[str, dict[int, list[float]]]   # {mode: {batch: [ns per frame of each round]}}
    sent: dict[str, dict[int, int]]         # {mode: {batch: frames}}
    counted: dict[str, dict[int, int]]      # {mode: {batch: frames the receiver counted}}
    dropped: dict[str, dict[int, int]]      # {mode: {batch: frames the veth dropped (its
                                            # receive ring was full)}}
    how: str = "live frames"     # or "test runs": repeat_sweep, the wall clock per run

    @property
    def _title(self):
        return (f"{self.how}: cost per frame against batch size" if self.how == "live frames"
                else f"{self.how}: wall-clock cost per run against runs per call (repeat)")

    def best(self, mode: str, batch: int) -> float:
        """The best round's ns per frame of `mode` at batch size `batch`."""
        return min(self.ns[mode][batch])

    def fit(self, mode: str) -> Fit:
        """Fit(per_frame, per_batch): the model ns(B) = per_frame + per_batch / B, fitted by
        least squares to the best round of each batch size B."""
        import numpy as np
        sizes = sorted(self.ns[mode])
        x = 1 / np.array(sizes, dtype=float)
        y = np.array([self.best(mode, b) for b in sizes], dtype=float)
        (per_frame, per_batch), *_ = np.linalg.lstsq(np.vstack([np.ones_like(x), x]).T, y,
                                                     rcond=None)
        return Fit(float(per_frame), float(per_batch))

    def _rows(self):
        rows = [(mode, b, self.best(mode, b), f"{1e3 / self.best(mode, b):.2f}",
                 " ".join(map(str, by_size[b])), f"{self.sent[mode][b]:,}",
                 f"{self.counted[mode][b]:,}", f"{self.dropped[mode][b]:,}")
                for mode, by_size in self.ns.items() for b in by_size]
        return ("receiver", "batch", "ns per frame (best)", "Mpps", "every round", "sent",
                "counted", "dropped"), rows

    def chart(self) -> Figure:
        """Packets per second against batch size, every round and the fitted model (a matplotlib
        Figure)."""
        import numpy as np
        from xdplab.ui import charts
        fig, ax = charts.figure(height=4.0)
        for i, mode in enumerate(self.ns):
            sizes = sorted(self.ns[mode])
            color = f"C{i}"
            for b in sizes:
                ax.scatter([b] * len(self.ns[mode][b]), [1e3 / n for n in self.ns[mode][b]],
                           s=8, color=color, alpha=0.35, linewidths=0)
            ax.plot(sizes, [1e3 / self.best(mode, b) for b in sizes], "o-", color=color,
                    label=f"{mode} XDP (best round)" if self.how == "live frames" else
                    f"{mode} (best round)")
            per_frame, per_batch = self.fit(mode)
            x = np.geomspace(sizes[0], sizes[-1], 100)
            ax.plot(x, 1e3 / (per_frame + per_batch / x), "--", color=color, linewidth=1,
                    label=f"{per_frame:.0f} ns per frame + {per_batch:.0f} ns per batch")
        sizes = sorted(next(iter(self.ns.values())))
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(b) for b in sizes])
        ax.set_ylim(bottom=0)
        ax.set_xlabel("frames per batch (batch_size of BPF_PROG_TEST_RUN)"
                      if self.how == "live frames" else
                      "runs per system call (repeat of BPF_PROG_TEST_RUN)")
        ax.set_ylabel("million packets per second")
        charts.values(ax.yaxis)
        charts.legend(fig, list(ax.lines), columns=2)      # the best rounds and their fits
        ax.set_title("Batching spreads the fixed cost of a batch over its frames", fontsize=10)
        return fig


def batch_sweep(sender: Host, receiver: Host, prog: Program, packet: Packet | bytes,
                fn: str | None = None, counter: str = "counters",
                sizes: Sequence[int] = BATCH_SIZES, frames: int = 100_000, rounds: int = 3,
                modes: Sequence[str] = ("native", "generic")) -> Sweep:
    """For each of `modes`, run XDP function `fn` of `prog` (which must drop `packet` and count
    verdicts in map `counter`) on the receiver's interface and inject `frames` copies of `packet`
    from `sender` at each batch size of `sizes`, in `rounds` interleaved rounds. Returns a Sweep."""
    if not sizes or not all(is_count(b, most=256) for b in sizes):
        raise LabError(f"batch sizes go from 1 to 256, not {sizes!r}",
                       "the kernel takes at most 256 live frames per batch")
    check_count(frames, "frames", most=MAX_REPEAT, example="100_000")
    ns, sent, counted, dropped = {}, {}, {}, {}
    with _Receiving(sender, receiver, prog, packet, fn, counter) as rx:
        for mode in modes:
            rx.attach(mode)
            ns[mode] = {b: [] for b in sizes}
            sent[mode], counted[mode], dropped[mode] = ({b: 0 for b in sizes} for _ in range(3))
            for _ in range(rounds):
                for b in sizes:
                    n, got, lost, _, per_frame = rx.inject(frames, batch_size=b)
                    ns[mode][b].append(per_frame)
                    sent[mode][b] += n
                    counted[mode][b] += got
                    dropped[mode][b] += lost
    return Sweep(ns, sent, counted, dropped)


def repeat_sweep(receiver: Host | Interface, prog: Program, packet: Packet | bytes,
                 fn: str | None = None, counter: str = "counters",
                 sizes: Sequence[int] = BATCH_SIZES, runs: int = 25_600,
                 rounds: int = 3) -> Sweep:
    """Batching without live frames (any kernel): run XDP function `fn` of `prog` (which must
    drop `packet` and count verdicts in map `counter`) `runs` times at each batch size B of
    `sizes`, as runs / B calls of BPF_PROG_TEST_RUN with repeat=B, in `rounds` interleaved
    rounds, timed by the wall clock: each call's fixed cost (the system call, copying the frame
    in and the result out, setting the run up) is spread over its B runs. Returns a Sweep whose
    one mode is "test run"; nothing is dropped (no veth).

    Meanwhile `fn` stays attached in native mode to `receiver` (a lab host or interface): the
    kernel's XDP dispatcher then holds it already. A test run of a program it does not hold
    first adds it there and takes it out again, each time waiting for an RCU grace period
    (bpf_dispatcher_change_prog()): milliseconds per call, which would swamp everything else."""
    if not sizes or not all(is_count(b, most=256) for b in sizes):
        raise LabError(f"batch sizes go from 1 to 256, not {sizes!r}",
                       "the same sizes as the live frames' batches")
    check_count(runs, "runs", most=MAX_REPEAT, example="25_600")
    data = testrun.frame_bytes(packet)
    count = _drop_counter(prog, fn, data, counter)
    fd = prog.fd(fn)
    mode = "test run"
    ns = {mode: {b: [] for b in sizes}}
    sent, counted, dropped = ({mode: {b: 0 for b in sizes}} for _ in range(3))
    att = prog.attach(receiver, fn=fn, mode="native")
    try:
        for _ in range(rounds):
            for b in sizes:
                calls, last = divmod(runs, b)
                before = count()
                start = time.perf_counter()
                for _ in range(calls):
                    _test_run(fd, data, b)
                if last:
                    _test_run(fd, data, last)
                seconds = time.perf_counter() - start
                ns[mode][b].append(round(seconds * 1e9 / runs, 1))
                sent[mode][b] += runs
                counted[mode][b] += count() - before
    finally:
        prog.detach(att.iface)
    return Sweep(ns, sent, counted, dropped, how="test runs")


# -- 4. the published numbers beside this machine's ----------------------------------------------

@dataclasses.dataclass(repr=False)
class Comparison(_Shown):
    """(source, what, Mpps) rows: the published reference points and this machine's."""
    rows: list[tuple[str, str, float]]
    _title = f"single-core drop rates: {PAPER} ({PAPER_SETUP}), and this machine"

    def _rows(self):
        return (("source", "what", "Mpps", "ns per packet"),
                [(s, w, f"{m:.2f}", f"{1e3 / m:.1f}") for s, w, m in self.rows])

    def chart(self) -> Figure:
        """The rates as horizontal bars, the paper's in grey (a matplotlib Figure)."""
        fig, ax = chart(width=7.0, height=0.38 * len(self.rows) + 1.3)
        rows = self.rows[::-1]
        bars = ax.barh([w for _, w, _ in rows], [m for _, _, m in rows],
                       color=["C7" if s == PAPER else "C0" for s, _, _ in rows])
        ax.bar_label(bars, labels=[f"{m:.1f}" for _, _, m in rows], padding=3)
        ax.margins(x=0.05)
        ax.set_xlabel("million packets per second on one core")
        fig.suptitle("grey: the XDP paper (CoNEXT 2018): a ConnectX-5 NIC, one Xeon core\n"
                     "blue: this machine: a veth, the injector on the same CPU", fontsize=9)
        return _finish(fig)


@dataclasses.dataclass(repr=False)
class Machine(_Shown):
    """What the numbers were measured on."""
    kernel: str
    cpu: str
    cpus: int
    virtual: bool
    spectre_v2: str
    _title = "this machine"

    def _rows(self):
        return (("what", "here"),
                [("kernel", self.kernel), ("CPU", self.cpu), ("CPUs", self.cpus),
                 ("virtual machine", "yes" if self.virtual else "no"),
                 ("Spectre v2 mitigation", self.spectre_v2)])


def calls(prog: Program, fn: str | None = None) -> list[str]:
    """The kernel functions XDP function `fn` of `prog` calls, as the verifier left it (what
    `bpftool prog dump xlated` shows as `call name#...`), in order. A map lookup the verifier
    inlined is no call at all: a plain array's, and on recent kernels a per-CPU array's."""
    import json
    import re
    import subprocess
    try:
        with open(f"/proc/self/fdinfo/{prog.fd(fn)}") as f:
            prog_id = next(line.split()[1] for line in f if line.startswith("prog_id:"))
        out = subprocess.run(["bpftool", "-j", "prog", "dump", "xlated", "id", prog_id],
                             capture_output=True, text=True, timeout=30)
    except (OSError, StopIteration, subprocess.TimeoutExpired) as e:
        raise LabError(f"could not read the translated program of {fn or prog}: {e}",
                       "is bpftool installed? (xdplab doctor checks)") from None
    if out.returncode != 0:
        raise LabError(f"bpftool could not dump {fn or prog}: {out.stderr.strip()}")
    found = []
    for insn in json.loads(out.stdout):
        m = re.match(r"\(85\) call ([\w.]+)", insn.get("disasm", ""))
        if m:
            found.append(m.group(1))
    return found


def machine() -> Machine:
    """The kernel, CPU model and count, whether this is a virtual machine (the CPU's
    "hypervisor" flag), and the kernel's Spectre v2 mitigation (retpolines cost indirect calls)."""
    def read(path, default="unknown"):
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            return default
    info = read("/proc/cpuinfo", "")
    field = lambda name: next((line.split(":", 1)[1].strip() for line in info.splitlines()
                               if line.startswith(name)), "unknown")
    return Machine(os.uname().release, field("model name"), os.cpu_count(),
                   "hypervisor" in field("flags").split(),
                   read("/sys/devices/system/cpu/vulnerabilities/spectre_v2").strip())


def reference(rates: Iterable[Delivery], costs: Ladder | None = None,
              fn: str | None = None) -> Comparison:
    """The XDP paper's single-core drop rates beside this machine's: `rates` from receive_rates,
    and, from a Ladder `costs`, what XDP function `fn` could do if running it were all there is
    to a packet (default: the cheapest function that drops)."""
    rows = [(PAPER, f"paper: {what}", m) for what, m in REFERENCE]
    rows += [("this machine", f"here: {d.path}", d.rate / 1e6) for d in rates]
    if costs is not None:
        drops = [f for f, v in costs.verdicts.items() if v == "XDP_DROP"] or list(costs.ns)
        fn = fn or min(drops, key=costs.ns.get)
        rows.append(("this machine", f"here: {fn} alone, in a test run", mpps(costs.ns[fn])))
    return Comparison(rows)
