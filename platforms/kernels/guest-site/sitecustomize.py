"""Imported by every Python started in a kernel-matrix guest (guest.sh puts this directory on
PYTHONPATH; nothing outside the guests uses it).

Under TCG a guest runs 50-100x slower than the host, and more when the host is busy. pyroute2
gives the child process that creates a network namespace 2 s to answer
(pyroute2.config.default_communicate_timeout), which a busy TCG guest can miss ("TimeoutError: no
response from the child pid ..."). That is emulation speed, not the kernel under test: allow 60 s.
"""
try:
    import pyroute2.config as _config
    _config.default_communicate_timeout = max(_config.default_communicate_timeout, 60)
    _config.default_create_socket_timeout = max(_config.default_create_socket_timeout, 120)
except ImportError:
    pass

# A notebook's Jupyter kernel that does not answer (seen on 5.10: the kernel printed its start-up
# warning, then nothing for 300 s), or dies without a traceback (5.10, lesson 05, during its
# background-traffic cell): every 120 s each such kernel writes the stacks of all its threads and
# its memory (VmRSS) to OUT/jupyter-kernel-<pid>.stacks (guest.sh sets XDPLAB_GUEST_OUT), and the
# stacks again if a fatal signal ends it (SIGSEGV, SIGABRT...; a SIGKILL, as the OOM killer sends,
# leaves no trace here: guest.sh keeps the kernel log in OUT/dmesg.log).
import os as _os
import sys as _sys
if _os.environ.get("XDPLAB_GUEST_OUT") and "ipykernel_launcher" in getattr(_sys, "orig_argv", ()):
    try:
        import faulthandler as _fh
        _stacks = open(_os.path.join(_os.environ["XDPLAB_GUEST_OUT"],
                                     f"jupyter-kernel-{_os.getpid()}.stacks"), "w", buffering=1)
        _fh.dump_traceback_later(120, repeat=True, file=_stacks)
        _fh.enable(file=_stacks, all_threads=True)

        def _memory():
            import time
            while True:
                with open("/proc/self/status") as f:
                    rss = next((l.split(None, 1)[1].strip() for l in f if l.startswith("VmRSS")), "?")
                _stacks.write(f"{time.strftime('%H:%M:%S')} VmRSS {rss}\n")
                time.sleep(60)
        import threading as _threading
        _threading.Thread(target=_memory, name="xdplab-guest-memory", daemon=True).start()
    except OSError:
        pass
