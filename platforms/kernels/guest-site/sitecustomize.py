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
# warning, then nothing for 300 s): every 120 s each such kernel writes the stacks of all its
# threads to OUT/jupyter-kernel-<pid>.stacks (guest.sh sets XDPLAB_GUEST_OUT), so that a run shows
# where it waits. A kernel that answers writes a stack or two and nothing else changes.
import os as _os
import sys as _sys
if _os.environ.get("XDPLAB_GUEST_OUT") and "ipykernel_launcher" in getattr(_sys, "orig_argv", ()):
    try:
        import faulthandler as _fh
        _stacks = open(_os.path.join(_os.environ["XDPLAB_GUEST_OUT"],
                                     f"jupyter-kernel-{_os.getpid()}.stacks"), "w", buffering=1)
        _fh.dump_traceback_later(120, repeat=True, file=_stacks)
    except OSError:
        pass
