"""`%%xdp`: write an XDP program in a notebook cell, compile it and attach it in one step.

    %load_ext xdplab
    lab = xdplab.Lab.pair()

    %%xdp server --mode generic          (or several: %%xdp router:eth0 router:eth1)
    BPF_ARRAY(counters, u64, 5);
    int xdp_count(struct xdp_md *ctx) { ... }

Afterwards the cell's program is `prog` (or the name given with --name) and each of its maps is a
variable of its own (`counters`). Running the cell again compiles the new C and replaces the
program on the interface atomically.
"""
import argparse
import shlex

from IPython.core.magic import Magics, cell_magic, magics_class

from . import topology
from .errors import LabError


def _parser():
    p = argparse.ArgumentParser(prog="%%xdp", add_help=False)
    p.add_argument("targets", nargs="+", help="lab hosts (their lab interface) or host:ifname")
    p.add_argument("--mode", default="native", choices=["native", "generic"])
    p.add_argument("--fn", default=None, help="XDP function to attach (default: the first)")
    p.add_argument("--name", default="prog", help="variable that receives the Program")
    p.add_argument("--lab", default=None, help="variable holding the Lab (default: the newest)")
    p.add_argument("--no-attach", action="store_true", help="only compile and verify")
    return p


@magics_class
class XdpMagics(Magics):
    def __init__(self, shell):
        super().__init__(shell)
        self._programs = {}

    def _lab(self, var):
        if var:
            lab = self.shell.user_ns.get(var)
            if not isinstance(lab, topology.Lab):
                raise LabError(f"{var!r} is not a Lab", "make one first: lab = xdplab.Lab.pair()")
            return lab
        labs = [lab for lab in topology._live_labs if not lab.closed]
        if not labs:
            raise LabError("%%xdp needs a lab to attach to", "run lab = xdplab.Lab.pair() first")
        return max(labs, key=lambda lab: lab._created)

    @cell_magic
    def xdp(self, line, cell):
        try:
            args = _parser().parse_args(shlex.split(line))
        except SystemExit:
            raise LabError(f"cannot read '%%xdp {line}'",
                           "use: %%xdp HOST [HOST:IFNAME ...] [--mode generic] [--fn NAME] "
                           "[--name VAR]") from None
        lab = self._lab(args.lab)
        prog = lab.load(cell, name=args.name)
        key = (lab.id, args.name)
        old = self._programs.get(key)
        atts = [] if args.no_attach else [
            prog.attach(t if ":" in t else lab[t], fn=args.fn, mode=args.mode) for t in args.targets]
        if old is not None and old is not prog:
            old.close()          # the new program already replaced it on the interface
        self._programs[key] = prog
        self.shell.user_ns[args.name] = prog
        for name in prog.maps:
            self.shell.user_ns[name] = prog.maps[name]
        return atts[0] if len(atts) == 1 else (atts or None)


def load(shell):
    shell.register_magics(XdpMagics)
    from . import errors
    handler = getattr(errors, "ipython_handler", None)
    if handler is not None:
        shell.set_custom_exc((LabError,), handler)
