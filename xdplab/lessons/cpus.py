"""Running a program on every CPU at once: what several receive queues do to a shared map value.

    from xdplab.cpus import run_on_all_cpus
    runs = run_on_all_cpus(prog, Ether()/IP()/UDP(), repeat=1_000_000)
    runs.total        # how many times the program ran, all CPUs together

BPF_PROG_TEST_RUN runs a program in the kernel, on the CPU of the thread that asks. One thread
pinned to each CPU, all starting together, makes the program run on every CPU at the same time,
as it does when frames arrive on several receive queues at once. A counter that the program
updates without atomics in a shared (not per-CPU) map then loses increments: it ends up below
`runs.total`. No network is involved; the map side effects are real.
"""
from __future__ import annotations

import dataclasses
import os
import threading
from typing import TYPE_CHECKING, Iterable

from xdplab.kernel import bpf as kernel
from xdplab.program import testrun
from xdplab.errors import LabError, check_count
from xdplab.kernel.constants import MAX_REPEAT

if TYPE_CHECKING:
    from scapy.packet import Packet

    from xdplab.program.program import Program


@dataclasses.dataclass
class Runs:
    """How often the program ran on each CPU, and the kernel's timing there (ns per run)."""
    per_cpu: dict[int, int]          # CPU → runs
    ns_per_run: dict[int, int]       # CPU → the kernel's average ns per run there

    @property
    def total(self) -> int:
        """How many times the program ran, all CPUs together."""
        return sum(self.per_cpu.values())

    def __repr__(self):
        cpus = ", ".join(f"CPU {c}: {n:,}" for c, n in sorted(self.per_cpu.items()))
        return f"<Runs {self.total:,} runs at the same time ({cpus})>"


def run_on_all_cpus(prog: Program, packet: Packet | bytes, repeat: int = 1_000_000,
                    cpus: Iterable[int] | None = None, fn: str | None = None) -> Runs:
    """Run XDP function `fn` of `prog` `repeat` times on `packet` on each CPU of `cpus` (default:
    every CPU this process may use), all CPUs at once. Returns Runs."""
    check_count(repeat, "repeat", most=MAX_REPEAT, example="1_000_000")
    cpus = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
    if not cpus:
        raise LabError("no CPU to run on", "give cpus=[0, 1], or leave cpus out for all of them")
    data = testrun.frame_bytes(packet)
    testrun.check_frame(data)
    fd = prog.fd(fn)
    start = threading.Barrier(len(cpus))
    timings, errors = {}, []

    def work(cpu):
        try:
            os.sched_setaffinity(0, {cpu})        # 0: this thread only
        except OSError as e:
            errors.append(LabError(f"cannot run on CPU {cpu}: {e.strerror}",
                                   f"this process may use CPUs {sorted(os.sched_getaffinity(0))}"))
            start.abort()
            return
        try:
            start.wait(timeout=30)
            timings[cpu] = kernel.prog_test_run(fd, data, repeat=repeat)[2]
        except threading.BrokenBarrierError:
            pass                                  # another thread failed: it reports why
        except OSError as e:
            errors.append(testrun.test_run_error(e))
            start.abort()

    threads = [threading.Thread(target=work, args=(cpu,), name=f"xdplab-cpu{cpu}") for cpu in cpus]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return Runs({cpu: repeat for cpu in cpus}, timings)
