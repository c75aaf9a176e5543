"""xdplab: hands-on XDP in JupyterLab — labs of network namespaces, bcc programs, live maps."""
from .errors import CompileError, LabError, PrivilegeError, SetupError, VerifierError
from .topology import Host, Interface, Lab, Link, PingResult, reap
from .doctor import doctor
from .tracepoints import Tracepoints

__all__ = ["Lab", "doctor", "Tracepoints", "Host", "Interface", "Link", "PingResult", "reap",
           "LabError", "CompileError", "VerifierError", "PrivilegeError", "SetupError"]


def load_ipython_extension(ipython):
    """`%load_ext xdplab`: the %%xdp cell magic and short error messages instead of tracebacks."""
    from . import magics
    magics.load(ipython)
