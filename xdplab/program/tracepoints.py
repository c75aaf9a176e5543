"""The kernel's own XDP tracepoints, counted: what went wrong, in which program, on which interface.

The XDP core reports trouble through tracepoints, whatever the program. Each failure has its own,
and `Tracepoints` counts every `xdp:*` event that reports one, each as a kind:

  kind            tracepoint                 fires when                                counts
  exception       xdp:xdp_exception          a program returns XDP_ABORTED, or an      frames
                                             action the driver cannot carry out (in
                                             generic mode a failed XDP_TX, too)
  redirect_err    xdp:xdp_redirect_err       a redirect is refused when the program    frames
                                             returns (no such interface, a target
                                             that cannot take XDP frames, too long)
  devmap_xmit     xdp:xdp_devmap_xmit        a queue of redirected frames is flushed   frames dropped
                                             to the target driver and it refuses some
  bulk_tx         xdp:xdp_bulk_tx            a driver flushes its XDP_TX frames and    frames dropped
                                             cannot send some (veth: a peer without
                                             NAPI, -ENXIO; a frame longer than the
                                             peer's MTU; a full ring)
  cpumap_enqueue  xdp:xdp_cpumap_enqueue     frames redirected into a cpumap find the  frames dropped
                                             target CPU's queue full
  cpumap_kthread  xdp:xdp_cpumap_kthread     the target CPU's kthread cannot build     frames dropped
                                             socket buffers for them (no memory)

(A redirect into an empty devmap slot returns XDP_ABORTED: an exception.) The events that report
a batch (devmap_xmit, bulk_tx, cpumap_*) fire for every batch, also a good one; only batches with
drops are counted, by the number of frames dropped. `xdp:xdp_redirect` (a redirect that worked)
and `xdp:mem_*` report no failure; `xdp:bpf_xdp_link_attach_failed` reports an attach that failed,
which xdplab already turns into a LabError with the kernel's message.

Tracepoints are machine-wide: counts are shown for this lab's programs. xdp_exception and
xdp_redirect_err name the program (by id). The others do not, and are credited thus. The cpumap
events name the cpumap (by map id): their drops go to the lab program with that cpumap, the CPU
shown in place of an interface ("cpu 1"). devmap_xmit and bulk_tx name devices by index, which
is unique only inside a network namespace (every lab host's first interface has index 2). Where
the kernel has BTF (`exact` lists the kinds), their raw tracepoints are traced instead, which
give the devices themselves: index and namespace are read from them, and the drops go to the lab
program attached at that very interface (devmap_xmit: where the frames came in; the target shown
as the interface). Without BTF, by index alone: devmap_xmit's drops go to the lab program attached
at an interface of that index whose host also has the target's index, bulk_tx's to the lab
program attached natively at an interface of that index (all of them, "a or b", when several
hosts have one), and another lab's drops on an interface of the same index count too. Either way
they are credited when counts() first sees them, to what is attached then (measure() reads
before and after its block).

The events are read from tracefs (events/xdp/*/format) when a Tracepoints is made: on a kernel
without one of them, that kind is not counted, `missing` names it and the repr says so; a field
an older kernel's event lacks reads as 0.

    trace = xdplab.Tracepoints(lab)
    ... traffic ...
    trace.counts()     # {("xdp_abort", "server:eth0", "exception", "XDP_ABORTED", 0): 3}
    trace.total("bulk_tx")
    trace.missing      # () on this kernel
"""
from __future__ import annotations

import collections
import os
import re
from typing import TYPE_CHECKING, Any, Collection, Mapping

from xdplab.kernel import headers, netdev
from xdplab.errors import ClosedError, LabError, SetupError
from xdplab.kernel.constants import (BTF_KIND_QUALIFIERS, BTF_KIND_STRUCT, BTF_KIND_TYPEDEF,
                                     XDP_ACTIONS)
from xdplab.kernel.libbpf import BtfType, libbpf

if TYPE_CHECKING:
    from xdplab.lab.topology import Lab

ACTIONS = XDP_ACTIONS
KINDS = ("exception", "redirect_err", "devmap_xmit", "bulk_tx", "cpumap_enqueue", "cpumap_kthread")
TRACEFS = ("/sys/kernel/tracing/events/xdp", "/sys/kernel/debug/tracing/events/xdp")

HEAD = r"""
struct event_key {
    u32 prog_id;        /* exception, redirect_err: the program; cpumap_*: the cpumap's id */
    u32 act;
    s32 ifindex;        /* where it happened (devmap_xmit: the target; cpumap_*: the CPU) */
    s32 err;            /* -errno, e.g. -ENODEV (-19), -ENXIO (-6), -EOPNOTSUPP (-95) */
    u32 kind;           /* an index into KINDS */
    s32 from_ifindex;   /* devmap_xmit: where the frames came in */
    u32 netns;          /* raw probes: the network namespace (inode) of `ifindex`, else 0 */
    u32 from_netns;     /* ... and of `from_ifindex` */
};
BPF_HASH(xdp_events, struct event_key, u64, 4096);
"""

# The events that name no program name devices by index, and an index is only unique inside a
# network namespace (every lab host's first interface has index 2). Where the kernel has BTF, a
# raw tracepoint gets the device itself, and reads its index and its namespace's inode number at
# the offsets BTF gives (netdev_offsets()). Used only when the event's fields are the ones of the
# prototype below (so its arguments are where this code reads them); else the plain probe.
RAW_HEAD = r"""
static __always_inline int dev_ifindex(u64 dev) {
    int ifindex = 0;
    bpf_probe_read_kernel(&ifindex, sizeof(ifindex), (void *)(dev + OFF_IFINDEX));
    return ifindex;
}
static __always_inline u32 dev_netns(u64 dev) {
    u64 net = 0;
    u32 inum = 0;
    bpf_probe_read_kernel(&net, sizeof(net), (void *)(dev + OFF_ND_NET));
    if (net)
        bpf_probe_read_kernel(&inum, sizeof(inum), (void *)(net + OFF_NS_INUM));
    return inum;
}
"""
RAW = {
    # TP_PROTO(const struct net_device *dev, int sent, int drops, int err)
    "bulk_tx": ("xdp_bulk_tx", {"ifindex", "act", "drops", "sent", "err"}, """
    int drops = (int)ctx->args[2];
    if (drops <= 0)
        return 0;
    struct event_key key = {.prog_id = 0, .act = 3, .ifindex = dev_ifindex(ctx->args[0]),
                            .err = (int)ctx->args[3], .kind = 3, .from_ifindex = 0,
                            .netns = dev_netns(ctx->args[0]), .from_netns = 0};
    xdp_events.increment(key, drops);"""),
    # TP_PROTO(const struct net_device *from_dev, const struct net_device *to_dev, int sent,
    #          int drops, int err)
    "devmap_xmit": ("xdp_devmap_xmit", {"from_ifindex", "act", "to_ifindex", "drops", "sent", "err"}, """
    int drops = (int)ctx->args[3];
    if (drops <= 0)
        return 0;
    struct event_key key = {.prog_id = 0, .act = 4, .ifindex = dev_ifindex(ctx->args[1]),
                            .err = (int)ctx->args[4], .kind = 2,
                            .from_ifindex = dev_ifindex(ctx->args[0]),
                            .netns = dev_netns(ctx->args[1]), .from_netns = dev_netns(ctx->args[0])};
    xdp_events.increment(key, drops);"""),
}

# kind → (tracepoint, its fields this code reads, the probe's body). `F(name)` is replaced with
# args->name when the kernel's event has that field, 0 when it does not.
PROBES = {
    "exception": ("xdp_exception", """
    struct event_key key = {.prog_id = F(prog_id), .act = F(act), .ifindex = F(ifindex),
                            .err = 0, .kind = 0, .from_ifindex = 0};
    xdp_events.increment(key);"""),
    "redirect_err": ("xdp_redirect_err", """
    struct event_key key = {.prog_id = F(prog_id), .act = F(act), .ifindex = F(ifindex),
                            .err = F(err), .kind = 1, .from_ifindex = 0};
    xdp_events.increment(key);"""),
    "devmap_xmit": ("xdp_devmap_xmit", """
    if ((int)F(drops) <= 0)
        return 0;
    struct event_key key = {.prog_id = 0, .act = F(act), .ifindex = F(to_ifindex),
                            .err = F(err), .kind = 2, .from_ifindex = F(from_ifindex)};
    xdp_events.increment(key, F(drops));"""),
    "bulk_tx": ("xdp_bulk_tx", """
    if ((int)F(drops) <= 0)
        return 0;
    struct event_key key = {.prog_id = 0, .act = F(act), .ifindex = F(ifindex),
                            .err = F(err), .kind = 3, .from_ifindex = 0};
    xdp_events.increment(key, F(drops));"""),
    "cpumap_enqueue": ("xdp_cpumap_enqueue", """
    if (F(drops) == 0)
        return 0;
    struct event_key key = {.prog_id = F(map_id), .act = F(act), .ifindex = F(to_cpu),
                            .err = 0, .kind = 4, .from_ifindex = 0};
    xdp_events.increment(key, F(drops));"""),
    "cpumap_kthread": ("xdp_cpumap_kthread", """
    if (F(drops) == 0)
        return 0;
    struct event_key key = {.prog_id = F(map_id), .act = F(act), .ifindex = F(cpu),
                            .err = 0, .kind = 5, .from_ifindex = 0};
    xdp_events.increment(key, F(drops));"""),
}

Event = collections.namedtuple("Event", "program iface kind action err")


def format_fields(text: str) -> set[str]:
    """The field names a tracefs `format` file declares (`text`: the file's content), the
    common_* fields included: {"common_type", ..., "prog_id", "act", "ifindex"}. Lines that
    declare no field (name:, ID:, print fmt:, blank ones) are skipped, and so is a field line
    without its ";"; an array field is named without its size ("comm" for char comm[16])."""
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("field:") and ";" in line:
            decl = line[len("field:"):line.index(";")].strip()
            if decl:
                names.add(decl.split()[-1].split("[")[0])
    return names


def event_fields(event: str) -> set[str] | None:
    """The field names of tracepoint xdp:`event` on this kernel (format_fields() of its tracefs
    format file), or None when it has none."""
    for root in TRACEFS:
        try:
            with open(os.path.join(root, event, "format")) as f:
                text = f.read()
        except OSError:
            continue
        return format_fields(text)
    return None


_OFFSETS = []


def netdev_offsets() -> dict[str, int] | None:
    """{"OFF_IFINDEX", "OFF_ND_NET", "OFF_NS_INUM": bytes} — where struct net_device keeps its
    ifindex and its namespace (possible_net_t nd_net: a struct net *), and where struct net keeps
    its inode number (ns.inum) — from the running kernel's BTF (read with libbpf), or None."""
    if not _OFFSETS:
        _OFFSETS.append(_read_offsets())
    return _OFFSETS[0]


def _read_offsets():
    import ctypes
    try:
        lib = libbpf()                   # btf__parse and btf__find_by_name_kind declared there
    except (SetupError, AttributeError):
        return None
    btf = lib.btf__parse(b"/sys/kernel/btf/vmlinux", None)
    if not btf or btf < 0 or btf > (1 << 63):       # NULL, or an error pointer (-errno)
        return None
    try:
        def members(tid):
            """{name: (type id, bit offset)} of struct `tid`, through typedefs and qualifiers."""
            for _ in range(16):
                t = lib.btf__type_by_id(btf, tid)
                if not t:
                    return {}
                t = t.contents
                kind, vlen, bitfields = (t.info >> 24) & 0x1F, t.info & 0xFFFF, t.info >> 31
                if kind == BTF_KIND_TYPEDEF or kind in BTF_KIND_QUALIFIERS:
                    tid = t.size_or_type
                    continue
                if kind != BTF_KIND_STRUCT:
                    return {}
                raw = (ctypes.c_uint32 * (3 * vlen)).from_address(
                    ctypes.addressof(t) + ctypes.sizeof(BtfType))
                return {(lib.btf__name_by_offset(btf, raw[3 * m]) or b"").decode():
                        (raw[3 * m + 1], raw[3 * m + 2] & 0xFFFFFF if bitfields else raw[3 * m + 2])
                        for m in range(vlen)}
            return {}

        def struct(name):
            tid = lib.btf__find_by_name_kind(btf, name.encode(), BTF_KIND_STRUCT)
            return members(tid) if tid > 0 else {}

        dev, net = struct("net_device"), struct("net")
        nd_net, ns = members(dev["nd_net"][0]), members(net["ns"][0])
        if nd_net.get("net", (0, -1))[1] != 0:
            return None
        offsets = {"OFF_IFINDEX": dev["ifindex"][1], "OFF_ND_NET": dev["nd_net"][1],
                   "OFF_NS_INUM": net["ns"][1] + ns["inum"][1]}
    except KeyError:
        return None
    finally:
        lib.btf__free(btf)
    if any(bits % 8 for bits in offsets.values()):
        return None
    return {name: bits // 8 for name, bits in offsets.items()}


def describe(k: Any) -> tuple[str, str, tuple[str, str]]:
    """(kind, action, (program, interface)) of a key `k` of the counting program's table (a struct
    event_key): the names from KINDS and the XDP actions (a number neither has stays a number, as
    text), and where it happened in its numbers alone, as counts(everything=True) shows an event
    no lab program is behind: ("prog id 12", "ifindex 2"), ("cpumap id 7", "cpu 1"), ("ifindex 3",
    "ifindex 4") for a devmap flush (from, to), with the namespace's inode where a raw probe read
    it. (`k` is a ctypes struct of bcc's, typed Any: bcc has no type hints.)"""
    kind = KINDS[k.kind] if k.kind < len(KINDS) else str(k.kind)
    action = ACTIONS[k.act] if k.act < len(ACTIONS) else str(k.act)
    if kind in ("devmap_xmit", "bulk_tx"):
        if k.netns or k.from_netns:
            where = (f"ifindex {k.from_ifindex or k.ifindex} of netns {k.from_netns or k.netns}",
                     f"ifindex {k.ifindex}")
        elif kind == "devmap_xmit":
            where = (f"ifindex {k.from_ifindex}", f"ifindex {k.ifindex}")
        else:
            where = ("unknown", f"ifindex {k.ifindex}")
    elif kind.startswith("cpumap_"):
        where = (f"cpumap id {k.prog_id}", f"cpu {k.ifindex}")
    else:
        where = (f"prog id {k.prog_id}", f"ifindex {k.ifindex}")
    return kind, action, where


def raw_probe(kind: str, fields: Collection[str] | None, offsets: Mapping[str, int] | None) -> bool:
    """Whether `kind` is traced with its raw tracepoint (the device, and so its namespace)."""
    return bool(offsets) and kind in RAW and fields is not None and \
        {f for f in fields if not f.startswith("common_")} == RAW[kind][1]


def source(fields: Mapping[str, Collection[str] | None],
           offsets: Mapping[str, int] | None = None) -> str:
    """The tracing program for the events in `fields` ({event: its field names}), with raw probes
    for the events that name devices where `offsets` (netdev_offsets()) are known."""
    out = [HEAD]
    if offsets:
        out.append("".join(f"#define {k} {v}\n" for k, v in offsets.items()) + RAW_HEAD)
    for kind, (event, body) in PROBES.items():
        have = fields.get(event)
        if have is None:
            continue
        if raw_probe(kind, have, offsets):
            out.append(f"RAW_TRACEPOINT_PROBE({event}) {{{RAW[kind][2]}\n    return 0;\n}}\n")
            continue
        body = re.sub(r"F\((\w+)\)", lambda m: f"args->{m.group(1)}" if m.group(1) in have else "0",
                      body)
        out.append(f"TRACEPOINT_PROBE(xdp, {event}) {{{body}\n    return 0;\n}}\n")
    return "".join(out)


class Tracepoints:
    """Counts the `xdp:*` tracepoints that report a failure (KINDS) for the programs of `lab`:
    exceptions and refused redirects by program, and the frames dropped at a flush (devmap_xmit,
    bulk_tx) or on the way to another CPU (cpumap_*) credited to the lab program behind them."""

    def __init__(self, lab: Lab) -> None:
        lab.check_open()
        headers.ensure()
        from bcc import BPF
        from xdplab import diagnostics
        self.lab = lab
        fields = {event: event_fields(event) for event, _ in PROBES.values()}
        self.missing = tuple(kind for kind, (event, _) in PROBES.items() if fields[event] is None)
        self.kinds = tuple(kind for kind in KINDS if kind not in self.missing)
        if not self.kinds:
            raise LabError("this kernel has none of the xdp tracepoints (xdp:xdp_exception, ...)",
                           "check that tracefs is mounted (xdplab doctor)")
        offsets = netdev_offsets()
        # the kinds whose devices are known with their namespace (else by index alone)
        self.exact = tuple(k for k in RAW if raw_probe(k, fields[RAW[k][0]], offsets))
        with diagnostics.capture_stderr() as err:
            try:
                code = source({e: f for e, f in fields.items() if f is not None}, offsets)
                self.bpf = BPF(text=code.encode())
            except Exception:
                self.bpf = None
        if self.bpf is None:
            raise LabError("could not attach to the xdp tracepoints: " + err.text.strip()[-300:],
                           "check that tracefs is mounted (xdplab doctor)")
        self._table = self.bpf["xdp_events"]
        self._seen = {}                  # prog id → name of every lab program seen attached
        self._cpumaps = {}               # cpumap id → name of the lab program that has it
        self._senders = {}               # ifindex → (program, interface) of native attachments seen
        self._attached = {}              # (namespace, ifindex) → program seen attached there
        self._inums = {}                 # namespace name → its inode number
        self._credited = {}              # an event naming no program → {(program, iface): frames}
        self._upto = {}                  # the same → how many of its frames are credited so far
        lab.on_close(self.close)

    @staticmethod
    def _name(prog, att):
        return f"{prog.name}:{att.fn}" if len(prog.functions) > 1 else att.fn

    def _where(self):
        """(prog id, ifindex) → (program name, interface) for every attachment in the lab (and
        prog id alone → the same, for events on an interface the program left since)."""
        out = {}
        for prog in self.lab.programs:
            for att in prog.attachments:
                name = self._name(prog, att)
                index = getattr(att.iface, "ifindex", None)
                out[(att.prog_id, index)] = (name, str(att.iface))
                out.setdefault(att.prog_id, (name, str(att.iface)))
                self._seen[att.prog_id] = name
                if att.mode == "native" and index is not None:
                    self._senders[index] = (name, str(att.iface))
                if index is not None:
                    self._attached[(att.iface.host.ns, index)] = name
            try:
                for m in prog.maps.values():
                    if m.kind == "cpumap":
                        self._cpumaps[m.id] = prog.name
            except Exception:            # a closed program has no maps to read any more
                pass
        return out

    def _flushed(self, from_ifindex, to_ifindex):
        """(program name, target interface) for frames a lab program attached at ifindex
        `from_ifindex` redirected to `to_ifindex` of the same host, or None."""
        for prog in self.lab.programs:
            for att in prog.attachments:
                iface = att.iface
                if getattr(iface, "ifindex", None) != from_ifindex:
                    continue
                made = netdev.made_in(iface.host)          # devices made inside the host
                for target in list(iface.host.interfaces) + made:
                    if target.ifindex == to_ifindex:
                        return self._name(prog, att), str(target)
        return None

    def _sent_from(self, ifindex):
        """(program name, interface) of the lab program attached natively (only there does XDP_TX
        go through the driver's bulk queue) at an interface of index `ifindex` — now, else the last
        one seen there. Several hosts of a lab have interfaces of one index: when programs are
        attached at more than one, all are named ("a or b")."""
        now = sorted({(self._name(prog, att), str(att.iface)) for prog in self.lab.programs
                      for att in prog.attachments
                      if att.mode == "native" and getattr(att.iface, "ifindex", None) == ifindex})
        if not now:
            return self._senders.get(ifindex)
        return " or ".join(n for n, _ in now), " or ".join(i for _, i in now)

    def _inum(self, host):
        if host.ns not in self._inums:
            from xdplab.kernel import netns
            try:
                self._inums[host.ns] = os.stat(os.path.join(netns.NETNS_RUN_DIR, host.ns)).st_ino
            except OSError:
                return None
        return self._inums[host.ns]

    def _iface_at(self, inum, ifindex):
        """The lab interface of index `ifindex` in the namespace of inode `inum`, or None."""
        for host in list(self.lab.hosts.values()):
            if self._inum(host) != inum:
                continue
            for iface in list(host.interfaces) + netdev.made_in(host):
                if iface.ifindex == ifindex:
                    return iface
        return None

    def _program_at(self, iface):
        """The name of the lab program attached at `iface` now (natively first), else the last
        one seen there, else "unknown"."""
        now = sorted(((att.mode != "native"), self._name(prog, att)) for prog in self.lab.programs
                     for att in prog.attachments if att.iface is iface)
        if now:
            return now[0][1]
        return self._attached.get((iface.host.ns, iface.ifindex), "unknown")

    def _exact(self, kind, k):
        """(program, interface) for an event whose devices came with their namespaces."""
        if kind == "bulk_tx":
            iface = self._iface_at(k.netns, k.ifindex)
            return (self._program_at(iface), str(iface)) if iface is not None else None
        source = self._iface_at(k.from_netns, k.from_ifindex)
        if source is None:
            return None
        target = self._iface_at(k.netns, k.ifindex)
        return self._program_at(source), str(target) if target is not None else f"ifindex {k.ifindex}"

    def _credit(self, k, value, known):
        """Frames of an event that names no program, credited to the program behind it when they
        are first seen (a later reading would credit them to whatever is attached then)."""
        raw = (k.kind, k.act, k.ifindex, k.err, k.from_ifindex, k.netns, k.from_netns)
        new = value - self._upto.get(raw, 0)
        if new > 0:
            shares = self._credited.setdefault(raw, {})
            shares[known] = shares.get(known, 0) + new
            self._upto[raw] = value
        return self._credited.get(raw, {}).items()

    def counts(self, everything: bool = False) -> dict[Event, int]:
        """{Event(program, iface, kind, action, err): count} for this lab's programs (all
        programs on the machine with everything=True, the unknown ones named by id)."""
        if self.bpf is None:
            raise ClosedError("the tracepoint counters are closed",
                              "make new ones: xdplab.Tracepoints(lab)")
        where = self._where()
        out = {}
        for k, v in self._table.items():
            kind, action, unknown = describe(k)
            if kind in ("devmap_xmit", "bulk_tx"):
                if k.netns or k.from_netns:
                    known = self._exact(kind, k)
                elif kind == "devmap_xmit":
                    known = self._flushed(k.from_ifindex, k.ifindex)
                else:
                    known = self._sent_from(k.ifindex)
                for who, n in self._credit(k, v.value, known):
                    if who is None and not everything:
                        continue
                    event = Event(*(who or unknown), kind, action, k.err)
                    out[event] = out.get(event, 0) + n
                continue
            if kind.startswith("cpumap_"):
                name = self._cpumaps.get(k.prog_id)
                known = (name, f"cpu {k.ifindex}") if name else None
            else:
                known = where.get((k.prog_id, k.ifindex)) or where.get(k.prog_id)
                if known is None and k.prog_id in self._seen:       # detached since: still ours
                    known = (self._seen[k.prog_id], f"ifindex {k.ifindex}")
            if known is None and not everything:
                continue
            name, iface = known or unknown
            event = Event(name, iface, kind, action, k.err)
            out[event] = out.get(event, 0) + v.value
        return out

    def total(self, kind: str = "exception", action: str | None = None) -> int:
        """How many events of `kind` (and `action`) this lab's programs caused (for the kinds that
        count drops: how many frames were dropped)."""
        if kind not in KINDS:
            raise LabError(f"unknown tracepoint kind {kind!r}", f"one of {', '.join(KINDS)}")
        return sum(n for e, n in self.counts().items()
                   if e.kind == kind and (action is None or e.action == action))

    def clear(self) -> None:
        """Forget the counts so far (counting goes on)."""
        self._table.clear()
        self._credited.clear()
        self._upto.clear()

    def close(self) -> None:
        """Stop counting: unload the tracing program."""
        if self.bpf is not None:
            self.bpf.cleanup()
            self.bpf = None

    def __repr__(self):
        rows = "".join(f"\n  {e.program} on {e.iface}: {e.kind} {e.action}"
                       f"{f' err {e.err}' if e.err else ''} × {n}" for e, n in self.counts().items())
        gone = (f"\n  (not counted: this kernel has no "
                f"{', '.join('xdp:' + PROBES[k][0] for k in self.missing)})" if self.missing else "")
        return f"<Tracepoints: {'no events' if not rows else ''}{rows}{gone}>"
