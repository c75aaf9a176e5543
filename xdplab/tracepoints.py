"""The kernel's own XDP tracepoints, counted: what went wrong, in which program, on which interface.

The XDP core reports trouble through tracepoints, whatever the program: `xdp:xdp_exception` fires
when a program returns XDP_ABORTED (or an action the driver cannot do, e.g. XDP_TX that fails),
`xdp:xdp_redirect_err` when a redirect fails (no such interface, a target that cannot take XDP
frames). (A redirect into an empty devmap slot returns XDP_ABORTED: an xdp_exception.) A tracing program attached to them counts each event by program id, action and
error. Tracepoints are machine-wide: counts are shown for this lab's programs (by program id).

`xdp:xdp_devmap_xmit` fires when a queue of redirected frames is flushed to the target driver;
the frames it could not send are counted here as kind "devmap_xmit" (the count is frames
dropped, with the driver's error). Before Linux 6.3 this is where a redirect into a veth that
cannot take it shows up (see xdplab.kernelprobe). That tracepoint names no program, only the
interface the frames came in on and the target: its drops are credited to the lab program
attached to an interface with that index whose host also has the target.

    trace = xdplab.Tracepoints(lab)
    ... traffic ...
    trace.counts()     # {("xdp_abort", "server:eth0", "exception", "XDP_ABORTED", 0): 3}
"""
import collections

from . import headers
from .errors import LabError

ACTIONS = ("XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT")

SOURCE = r"""
struct event_key {
    u32 prog_id;
    u32 act;
    s32 ifindex;
    s32 err;        /* redirect errors: -errno, e.g. -ENODEV (-19), -EOPNOTSUPP (-95) */
    u32 kind;       /* 0: xdp_exception, 1: xdp_redirect_err, 2: xdp_devmap_xmit drops */
    s32 from_ifindex;   /* xdp_devmap_xmit: where the frames came in (ifindex: the target) */
};
BPF_HASH(xdp_events, struct event_key, u64, 4096);

TRACEPOINT_PROBE(xdp, xdp_exception) {
    struct event_key key = {.prog_id = args->prog_id, .act = args->act,
                            .ifindex = args->ifindex, .err = 0, .kind = 0, .from_ifindex = 0};
    xdp_events.increment(key);
    return 0;
}

TRACEPOINT_PROBE(xdp, xdp_redirect_err) {
    struct event_key key = {.prog_id = args->prog_id, .act = args->act,
                            .ifindex = args->ifindex, .err = args->err, .kind = 1,
                            .from_ifindex = 0};
    xdp_events.increment(key);
    return 0;
}

TRACEPOINT_PROBE(xdp, xdp_devmap_xmit) {
    if (args->drops <= 0)
        return 0;
    struct event_key key = {.prog_id = 0, .act = args->act, .ifindex = args->to_ifindex,
                            .err = args->err, .kind = 2, .from_ifindex = args->from_ifindex};
    xdp_events.increment(key, args->drops);
    return 0;
}
"""

Event = collections.namedtuple("Event", "program iface kind action err")
KINDS = ("exception", "redirect_err", "devmap_xmit")


class Tracepoints:
    """Counts xdp:xdp_exception and xdp:xdp_redirect_err for the programs of `lab`, and the frames
    xdp:xdp_devmap_xmit reports dropped at flush after those programs redirected them."""

    def __init__(self, lab):
        lab._check_open()
        headers.ensure()
        from bcc import BPF
        from . import diagnostics
        self.lab = lab
        with diagnostics.capture_stderr() as err:
            try:
                self.bpf = BPF(text=SOURCE.encode())
            except Exception:
                self.bpf = None
        if self.bpf is None:
            raise LabError("could not attach to the xdp tracepoints: " + err.text.strip()[-300:],
                           "check that tracefs is mounted (xdplab doctor)")
        self._table = self.bpf["xdp_events"]
        self._seen = {}                  # prog id → name of every lab program seen attached
        lab.on_close(self.close)

    def _where(self):
        """(prog id, ifindex) → (program name, interface) for every attachment in the lab (and
        prog id alone → the same, for events on an interface the program left since)."""
        out = {}
        for prog in self.lab.programs:
            for att in prog.attachments:
                name = f"{prog.name}:{att.fn}" if len(prog.functions) > 1 else att.fn
                index = getattr(att.iface, "ifindex", None)
                out[(att.prog_id, index)] = (name, str(att.iface))
                out.setdefault(att.prog_id, (name, str(att.iface)))
                self._seen[att.prog_id] = name
        return out

    def _flushed(self, from_ifindex, to_ifindex):
        """(program name, target interface) for frames a lab program attached at ifindex
        `from_ifindex` redirected to `to_ifindex` of the same host, or None."""
        for prog in self.lab.programs:
            for att in prog.attachments:
                iface = att.iface
                if getattr(iface, "ifindex", None) != from_ifindex:
                    continue
                from .features import _devices           # devices made inside the host
                made = list(_devices.get(iface.host, {}).values())
                for target in list(iface.host.interfaces) + made:
                    if target.ifindex == to_ifindex:
                        name = f"{prog.name}:{att.fn}" if len(prog.functions) > 1 else att.fn
                        return name, str(target)
        return None

    def counts(self, everything=False):
        """{Event(program, iface, kind, action, err): count} for this lab's programs (all
        programs on the machine with everything=True, the unknown ones named by id)."""
        if self.bpf is None:
            raise LabError("the tracepoint counters are closed")
        where = self._where()
        out = {}
        for k, v in self._table.items():
            if k.kind == 2:
                known = self._flushed(k.from_ifindex, k.ifindex)
                if known is None and not everything:
                    continue
                name, iface = known or (f"ifindex {k.from_ifindex}", f"ifindex {k.ifindex}")
                action = ACTIONS[k.act] if k.act < len(ACTIONS) else str(k.act)
                event = Event(name, iface, KINDS[2], action, k.err)
                out[event] = out.get(event, 0) + v.value
                continue
            known = where.get((k.prog_id, k.ifindex)) or where.get(k.prog_id)
            if known is None and k.prog_id in self._seen:       # detached since: still ours
                known = (self._seen[k.prog_id], f"ifindex {k.ifindex}")
            if known is None and not everything:
                continue
            name, iface = known or (f"prog id {k.prog_id}", f"ifindex {k.ifindex}")
            action = ACTIONS[k.act] if k.act < len(ACTIONS) else str(k.act)
            event = Event(name, iface, KINDS[k.kind], action, k.err)
            out[event] = out.get(event, 0) + v.value
        return out

    def total(self, kind="exception", action=None):
        """How many events of `kind` (and `action`) this lab's programs caused."""
        return sum(n for e, n in self.counts().items()
                   if e.kind == kind and (action is None or e.action == action))

    def clear(self):
        self._table.clear()

    def close(self):
        if self.bpf is not None:
            self.bpf.cleanup()
            self.bpf = None

    def __repr__(self):
        rows = "".join(f"\n  {e.program} on {e.iface}: {e.kind} {e.action}"
                       f"{f' err {e.err}' if e.err else ''} × {n}" for e, n in self.counts().items())
        return f"<Tracepoints: {'no events' if not rows else ''}{rows}>"
