"""The module paths from before xdplab's layers had folders keep working: `import xdplab.widgets`,
`from xdplab.features import mode_costs`, `from xdplab import qos` load the module's new home
(xdplab.ui.widgets, xdplab.lessons.features, xdplab.lessons.qos) and give that same module object, so
names, isinstance checks and monkeypatching all agree. Nothing is imported before it is asked for.
"""
import importlib
import importlib.abc
import importlib.util
import sys

# old name under xdplab -> its home now
MOVED = {
    "kernel": "xdplab.kernel", "netns": "xdplab.kernel.netns", "rtnl": "xdplab.kernel.rtnl",
    "headers": "xdplab.kernel.headers", "counters": "xdplab.lab.counters",
    "compiler": "xdplab.program.compiler", "compile_helper": "xdplab.program.compile_helper",
    "testrun": "xdplab.program.testrun", "events": "xdplab.program.events",
    "capture": "xdplab.program.capture", "tracepoints": "xdplab.program.tracepoints",
    "topology": "xdplab.lab.topology", "reaper": "xdplab.lab.reaper", "traffic": "xdplab.lab.traffic",
    "qos": "xdplab.lessons.qos", "listener": "xdplab.lab.listener",
    "doctor": "xdplab.machine.doctor", "kernelprobe": "xdplab.machine.probe",
    "features": "xdplab.lessons.features", "perf": "xdplab.lessons.perf",
    "kvstore": "xdplab.lessons.kvstore", "forwarding": "xdplab.lessons.forwarding",
    "cpus": "xdplab.lessons.cpus",
    "checks": "xdplab.labs.checks", "progress": "xdplab.labs.progress", "sampling": "xdplab.labs.sampling",
    "widgets": "xdplab.ui.widgets", "panels": "xdplab.ui.panels", "diagram": "xdplab.lab.diagram",
    "show": "xdplab.ui.show", "magics": "xdplab.ui.magics", "charts": "xdplab.ui.charts",
}
# (xdplab.maps, xdplab.diagnostics, xdplab.program and xdplab.kernel are packages under their old
# names: xdplab.program and xdplab.kernel re-export what the old modules had)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        old = fullname.partition("xdplab.")[2] if fullname.startswith("xdplab.") else None
        home = MOVED.get(old)
        if home is None or home == fullname:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name.partition("xdplab.")[2]])

    def exec_module(self, module):
        pass                                # the module ran at its new home


def install() -> None:
    """Put the finder on sys.meta_path (once). xdplab.show and xdplab.doctor are functions named
    like their old modules: those two old paths are registered now, so that importing them later
    does not replace the package's functions with the modules."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
    for name in ("show", "doctor"):     # xdplab.show() and xdplab.doctor() are functions
        sys.modules.setdefault(f"xdplab.{name}", importlib.import_module(MOVED[name]))
