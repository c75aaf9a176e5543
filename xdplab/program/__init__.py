"""The program layer: the learner's C, from source to a loaded, attached, observed program.

    program.py         Program: compile (through the helper), verify, attach, detach
    compiler.py        the client of the compile helper; what a Program keeps of the result
    compile_helper.py  the long-lived process that runs bcc, so an LLVM abort cannot kill the notebook
    testrun.py         one packet through BPF_PROG_TEST_RUN, and the verdict in words
    events.py          records a program sends to user space (perf and ring buffers, trace_pipe)
    capture.py         the packets a program decided on, with their verdicts
    tracepoints.py     the kernel's XDP tracepoints, counted

It uses the kernel layer, maps and diagnostics; labs (xdplab.lab) use it.
"""
from xdplab.program.program import *  # noqa: F401,F403 — xdplab.program.Program as before the folders
