"""xdplab: hands-on XDP in JupyterLab — labs of network namespaces, bcc programs, live maps."""
from typing import Any as _Any      # (underscored: `xdplab.` completes to the API only)

from xdplab.errors import ClosedError, CompileError, LabError, PrivilegeError, SetupError, VerifierError
from xdplab.lab.topology import Host, Interface, Lab, Link, PingResult, reap
from xdplab.machine.doctor import doctor
from xdplab.program.tracepoints import Tracepoints
from xdplab.ui.show import show
from xdplab.machine.probe import probe
from xdplab import _moved

_moved.install()          # the module paths from before the layers had folders

__all__ = ["Lab", "doctor", "probe", "show", "Tracepoints", "Host", "Interface", "Link", "PingResult", "reap",
           "LabError", "ClosedError", "CompileError", "VerifierError", "PrivilegeError", "SetupError"]

# Widgets and panels load ipywidgets: imported on first use, so `import xdplab` stays quick.
_LAZY = {"MapView": "ui.widgets", "RatesChart": "ui.widgets", "EventLog": "program.events",
         "TraceLog": "program.events", "TrafficPanel": "ui.panels", "VerdictExplorer": "ui.panels"}
__all__ += list(_LAZY)


def __getattr__(name):
    import importlib
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _moved.MOVED:                 # xdplab.topology, xdplab.widgets: the old module paths
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'xdplab' has no attribute {name!r}")


def load_ipython_extension(ipython: _Any) -> None:     # an IPython shell: not imported here
    """`%load_ext xdplab`: the %%xdp cell magic and short error messages instead of tracebacks."""
    from xdplab.ui import magics
    magics.load(ipython)
