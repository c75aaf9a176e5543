"""The kernel layer: what xdplab asks Linux for directly, below labs and programs.

    bpf.py       the few raw bpf(2) calls xdplab makes itself (program load, BPF_PROG_TEST_RUN,
                 live frames), through ctypes
    netns.py     entering a lab host's network namespace from Python
    rtnl.py      rtnetlink requests packed by hand and sent in batches (building a lab)
    headers.py   the kernel header tree bcc compiles against
    counters.py  the kernel's own counters inside a namespace (SNMP, link statistics, MTU)

Nothing here imports another layer of xdplab. `xdplab.kernel.live_frames_supported()` and the
other names of bpf.py are also reachable from here, as before the layers had folders.
"""
from xdplab.kernel.bpf import *  # noqa: F401,F403 — xdplab.kernel.X as documented in the README
