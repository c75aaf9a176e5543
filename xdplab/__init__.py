"""xdplab: hands-on XDP in JupyterLab — labs of network namespaces, bcc programs, live maps."""
from .errors import CompileError, LabError, PrivilegeError, SetupError, VerifierError
from .topology import Host, Interface, Lab, Link, PingResult, reap
from .doctor import doctor
from .tracepoints import Tracepoints
from .show import show
from .kernelprobe import probe

__all__ = ["Lab", "doctor", "probe", "show", "Tracepoints", "Host", "Interface", "Link", "PingResult", "reap",
           "LabError", "CompileError", "VerifierError", "PrivilegeError", "SetupError"]

# Widgets and panels load ipywidgets: imported on first use, so `import xdplab` stays quick.
_LAZY = {"MapView": "widgets", "RatesChart": "widgets", "EventLog": "events", "TraceLog": "events",
         "TrafficPanel": "panels", "VerdictExplorer": "panels"}
__all__ += list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'xdplab' has no attribute {name!r}")


def load_ipython_extension(ipython):
    """`%load_ext xdplab`: the %%xdp cell magic and short error messages instead of tracebacks."""
    from . import magics
    magics.load(ipython)
