"""Events: what a program sends to user space one record at a time, shown as a live table.

    log = EventLog(prog, "events")        # or prog.events("events")
    log                                   # last line of a cell: a live table, newest first
    log.wait(10)                          # True once 10 events arrived
    log.events[-1]                        # {'t': 0.0123, 'saddr': IPv4Address('10.11.0.1'), ...}
    log.count, log.lost, log.totals       # received, lost, received per verdict
    log.close()

The program sends events through one of two maps (bcc syntax):

    BPF_PERF_OUTPUT(events);              events.perf_submit(ctx, &e, sizeof(e));
    BPF_RINGBUF_OUTPUT(events, 8);        events.ringbuf_output(&e, sizeof(e), 0);

A perf buffer is one ring per CPU (`pages` pages each, allocated here); a ring buffer (kernel
5.8+) is one ring shared by every CPU (8 pages above, sized in the program). An event that finds
its ring full is lost. The kernel counts lost perf events per CPU and reports them in that CPU's
ring with its next event that fits; EventLog adds them up in `lost` (so after a burst that filled
a ring, a CPU's last losses show once that CPU sends another event). The kernel does not count
events that did not fit in a ring buffer: ringbuf_output() returns a negative number then, and a
program that wants them seen counts them in a map named <map>_lost,

    BPF_ARRAY(events_lost, u64, 1);       if (events.ringbuf_output(&e, sizeof(e), 0))
                                              events_lost.atomic_increment(0);

which EventLog adds to `lost` (`lost_map=` names another map). Without one, `lost` stays 0.

Fields are typed like map fields (see xdplab.maps): saddr/daddr → IPv4Address (in network order,
as in the packet), ports, proto → "UDP", verdict/action → "XDP_DROP"...; `declare={"saddr":
"ipv4_host"}` overrides. The layout is bcc's description of the event struct (field names and C
types), laid out as the C compiler does it. bcc does not describe the fields of nested structs
(struct in6_addr excepted), bitfields or packed structs: keep event structs flat, or pass `ctype=`
a ctypes.Structure matching the C struct. A libbpf program's ring and perf buffers carry no type,
so the struct is named: `prog.events("rb", struct="event")` lays out `struct event` from the
program's own BTF (nested structs and unions too). The time column `t` is the event's own
timestamp when it has a u64 field named ts/timestamp/time/ktime filled with bpf_ktime_get_ns()
(CLOCK_MONOTONIC), else its arrival time; in seconds since the log started.

A background thread reads the buffer, waking every 0.1 s to see whether to stop. Every event is
counted, per verdict too, but a fast stream is sampled: at most `max_rows` events per refresh
(`interval` seconds) are decoded and kept, spread evenly ("showing 1 in K"), or 1 in `sample`
when given. `events` holds the last 10 000 kept. A map feeds one reader: a new EventLog on the
same map closes the older one (do not open bcc's open_perf_buffer on it as well). The thread
stops on close(), when the widget is closed, when the program or its lab is closed, and at exit.

How it reads: with the functions of bcc's C library that bcc's open_perf_buffer, perf_buffer_poll
and open_ring_buffer, ring_buffer_poll call (bpf_open_perf_buffer_opts, perf_reader_poll,
bpf_new_ringbuf, bpf_poll_ringbuf), but on buffers the EventLog owns, not prog.bpf: closing the
program frees the buffers bcc owns, which would pull them from under a thread polling them.
And it lays the event out itself: bcc's table.event() ends the process (sys.exit) on a field type
it has no ctypes for, such as __be32.

    trace = TraceLog(prefix="xdp:")       # bpf_trace_printk() lines whose message starts with xdp:
    trace.lines[-1]                       # TraceLine(time, task, pid, cpu, flags, event, message)

bpf_trace_printk() writes into the kernel's one trace buffer, shared by the whole machine, and
reading /sys/kernel/tracing/trace_pipe *consumes* it: a line read by one reader is gone for every
other one (another notebook, `cat trace_pipe`, bcc's trace_print()). Lines printed while nobody
reads wait there, so a TraceLog also shows lines older than itself. This process reads trace_pipe
with one thread, however many TraceLogs are open; each keeps the lines matching its prefix. The
thread ends when the last TraceLog is closed (or its lab closes, or at exit). `lost` counts lines
the kernel dropped because its buffer was full.
"""
from __future__ import annotations

import atexit
import collections
import copy
import ctypes
import errno
import math
import os
import re
import select
import subprocess
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Iterable, Sequence

from xdplab import maps, text, views
from xdplab.errors import LabError, PrivilegeError, SetupError, check_count, is_count
from xdplab.kernel.libbpf import bcc_callback_types

if TYPE_CHECKING:
    from xdplab.lab.topology import Lab
    from xdplab.maps.codecs import Decoded, Kinds
    from xdplab.program.program import Program

POLL_MS = 100                   # reader threads wake this often to see whether to stop
KEEP = 10_000                   # events / trace lines kept
THREAD_PREFIX = "xdplab-events"
TRACE_THREAD = "xdplab-trace"
TS_FIELDS = ("ts", "timestamp", "time", "ktime", "tstamp", "ts_ns", "time_ns", "timestamp_ns")
_c = ctypes
_C_TYPES = {                    # the C type names bcc describes fields with → ctypes
    **dict.fromkeys(["char"], _c.c_char),
    **dict.fromkeys(["signed char", "s8", "__s8", "int8_t"], _c.c_int8),
    **dict.fromkeys(["unsigned char", "u8", "__u8", "uint8_t", "bool", "_Bool"], _c.c_uint8),
    **dict.fromkeys(["short", "short int", "s16", "__s16", "int16_t"], _c.c_int16),
    **dict.fromkeys(["unsigned short", "unsigned short int", "u16", "__u16", "uint16_t", "__be16",
                     "__le16", "__sum16"], _c.c_uint16),
    **dict.fromkeys(["int", "s32", "__s32", "int32_t"], _c.c_int32),
    **dict.fromkeys(["unsigned int", "unsigned", "u32", "__u32", "uint32_t", "__be32", "__le32",
                     "__wsum"], _c.c_uint32),
    **dict.fromkeys(["long", "long int", "long long", "long long int", "s64", "__s64", "int64_t",
                     "ssize_t"], _c.c_int64),
    **dict.fromkeys(["unsigned long", "unsigned long int", "unsigned long long",
                     "unsigned long long int", "u64", "__u64", "uint64_t", "__be64", "__le64",
                     "__aligned_u64", "size_t"], _c.c_uint64)}


class in6_addr(ctypes.Union):              # noqa: N801 — maps types a struct of this name as ipv6
    _fields_ = [("u6_addr8", ctypes.c_uint8 * 16), ("u6_addr32", ctypes.c_uint32 * 4)]


def event_type(bpf: Any, map_name: str) -> tuple[type[ctypes.Structure], dict[str, tuple[str, ...]]]:
    """(ctypes Structure, {field: (C type name,)}) of what `map_name` carries, from bcc's
    description of the struct passed to perf_submit/ringbuf_output. `bpf` is a Program's
    .bpf: a compiler.Loaded, or a bcc.BPF."""
    info = getattr(bpf, "table_info", {}).get(map_name)
    if info is not None:                       # described by the compile helper
        described = info.fields
    else:
        from bcc import libbcc
        lib, name = libbcc.lib, map_name.encode()
        described = [lib.bpf_perf_event_field(bpf.module, name, i).decode()
                     for i in range(lib.bpf_perf_event_fields(bpf.module, name))]
    fields, hints = [], {}
    for field in described:
        fname, ctext = field.split("#", 1)
        base, dims = re.match(r"^(.*?)\s*((?:\[\d+\])*)$", ctext).groups()
        ctype = (_c.c_uint64 if base.endswith("*") else _c.c_int32 if base.startswith("enum ")
                 else in6_addr if base == "struct in6_addr" else _C_TYPES.get(base))
        if ctype is None or not fname:
            what = f"field {fname!r} is a {ctext}" if fname else f"it has an anonymous {ctext}"
            raise LabError(f"xdplab cannot lay out the events of {map_name!r}: {what}, and bcc "
                           "does not describe what is inside",
                           "give the event struct plain fields (u8..u64, __be16, __be32, arrays "
                           "of them, struct in6_addr), or pass ctype= a ctypes.Structure like the "
                           "C one")
        for n in reversed([int(d) for d in re.findall(r"\d+", dims)]):
            ctype = ctype * n
        fields.append((fname, ctype))
        hints[fname] = (base,)
    if not fields:
        raise LabError(f"bcc does not know what {map_name!r} carries: the program sends no struct "
                       "through it",
                       f"send a struct: struct event {{ u32 value; }}; ... "
                       f"{map_name}.perf_submit(ctx, &e, sizeof(e)); (or pass ctype= a ctypes "
                       "type)")
    return type("event", (ctypes.Structure,), {"_fields_": fields}), hints


def btf_event_type(bpf: Any, map_name: str,
                   struct: str | None) -> tuple[type[ctypes.Structure], Any]:
    """(ctypes Structure, BTF hints) of `struct STRUCT` from the program's own BTF: what a
    libbpf object's ring or perf buffer `map_name` carries (libbpf gives those maps no type, so
    the learner names the struct the program sends). `bpf` is a Program's ObjectLoaded."""
    import json
    from xdplab.kernel.constants import BTF_KIND_STRUCT
    from xdplab.kernel.libbpf import decode_table_type, libbpf, prog_info
    from xdplab.maps.btf import Untyped, btf_desc, btf_hints
    fds = [f.fd for f in bpf.funcs.values() if f.fd >= 0]
    btf_id = prog_info(fds[0]).btf_id if fds else 0
    lib = libbpf()
    btf = lib.btf__load_from_kernel_by_id(btf_id) if btf_id else None
    if not btf:
        raise LabError(f"xdplab cannot lay out the events of {map_name!r}: the program was loaded "
                       "without BTF",
                       "build it with -g (clang -O2 -g -target bpf), as lab.load does")
    try:
        structs = []
        for tid in range(1, lib.btf__type_cnt(btf)):
            t = lib.btf__type_by_id(btf, tid).contents
            name = (lib.btf__name_by_offset(btf, t.name_off) or b"").decode()
            if (t.info >> 24) & 0x1F == BTF_KIND_STRUCT and name not in ("", "xdp_md",
                                                                         "__sk_buff"):
                structs.append(name)            # (a program's context is no event)
        listed = ", ".join(structs[:12]) or "none"
        if struct is None:
            example = structs[0] if structs else "event"
            raise LabError(f"libbpf's ring and perf buffers do not say what they carry, so "
                           f"xdplab cannot tell what {map_name!r} sends",
                           f"name the struct your program sends: prog.events({map_name!r}, "
                           f"struct={example!r}) (the program's structs: {listed})")
        tid = lib.btf__find_by_name_kind(btf, struct.encode(), BTF_KIND_STRUCT)
        if tid <= 0:
            raise LabError(f"the program's BTF has no struct {struct!r}",
                           "clang writes into BTF only the types of global variables, maps and "
                           "function arguments, not of a variable inside a function: declare one "
                           f"global of it, `const struct {struct} *unused_{struct} "
                           f"__attribute__((unused));` (the program's structs: {listed})")
        try:
            ctype = decode_table_type(json.dumps(btf_desc(btf, tid)))
        except Untyped as e:
            raise LabError(f"xdplab cannot lay out struct {struct!r}: {e}",
                           "give the event struct plain fields (__u8..__u64, __be16, __be32, "
                           "arrays of them), or pass ctype= a ctypes.Structure like the C "
                           "one") from None
    finally:
        lib.btf__free(btf)
    return ctype, btf_hints(btf_id, tid)[0]


# -- showing --------------------------------------------------------------------------------------
# The live table is the UI's (xdplab.ui.logs.LogView, asked for through xdplab.views by kind "log");
# what it shows is the log's own _repr_html_, written here with xdplab.text's look.
_CSS = text.CSS + ("<style>.xdplab-w .scroll{max-height:22em;overflow:auto;"
                      "border:1px solid var(--jp-border-color2,#e0e0e0)}"
                      ".xdplab-w .scroll th{position:sticky;top:0}"
                      ".xdplab-w .warn{color:var(--jp-warn-color0,#e65100)}</style>")


def _cell(v):
    return f"{v:.6f}" if isinstance(v, float) else text.fmt_value(v)


def table_html(summary: str, columns: Sequence[str], rows: Sequence[Sequence[object]],
               notes: Iterable[str] = ()) -> str:
    """A scrolling table in the look of xdplab's widgets (rows: lists of values, in order)."""
    e = text.escape
    head = "".join(f"<th>{e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f'<td class="k">{e(_cell(v))}</td>' for v in r) + "</tr>"
                   for r in rows)
    if not rows:
        body = f'<tr><td class="c" colspan="{len(columns)}">nothing yet</td></tr>'
    note = "".join(f'<div class="warn">{e(n)}</div>' for n in notes)
    return (f'{_CSS}<div class="xdplab-w"><div class="cap">{e(summary)}</div>'
            f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
            f'</table></div>{note}</div>')


class _Live:
    """What EventLog and TraceLog share: the live view, wait(), the lab and exit hooks."""
    closed: str | None = None     # why it stopped (None while it runs)
    live_view = None              # the live view the UI made of it (xdplab.ui.logs), if any

    def _hook_lab(self, lab):
        me = weakref.ref(self)

        def lab_closed():
            log = me()
            if log is not None:
                log.close(f"lab {lab.id} closed")
        lab.on_close(lab_closed)
        _live.add(self)

    def wait(self, n: int = 1, timeout: float = 10.0) -> bool:
        """True once `count` reaches n; False after `timeout` seconds or when the log is closed."""
        deadline = time.monotonic() + timeout
        while self.count < n:
            if self.closed is not None or time.monotonic() > deadline:
                return self.count >= n
            time.sleep(0.02)
        return True

    def widget(self) -> Any:           # an ipywidgets widget: the runtime does not import the UI
        """The live table (xdplab.ui.logs.LogView: the live widgets' frame with pause and refresh
        interval), refreshed every `interval` seconds in the background; the same one until it
        is closed, and closing it closes the log."""
        return views.view("log", self)

    def _repr_mimebundle_(self, include: Collection[str] | None = None,
                          exclude: Collection[str] | None = None) -> dict[str, Any] | None:
        """In a Jupyter kernel, the live view; IPython adds _repr_html_ for other front-ends.
        None elsewhere, without loading any UI."""
        return views.mimebundle("log", self, include, exclude)

    def _stop_refresh(self):
        if self.live_view is not None:           # the view shows the last table and stops refreshing
            self.live_view.source_stopped()

    def __enter__(self) -> _Live:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_live: weakref.WeakSet[_Live] = weakref.WeakSet()


@atexit.register
def close_all() -> None:
    """Close every EventLog and TraceLog of this process (and wait for their threads)."""
    for log in list(_live):
        log.close("Python exits")


# -- event logs -----------------------------------------------------------------------------------
_readers = {}                   # (id(program), map name) → the EventLog reading that map


class EventLog(_Live):
    """The events a program sends through perf or ring buffer `map_name`; see the module doc."""

    def __init__(self, program: Program, map_name: str, max_rows: int = 200,
                 sample: int | None = None, *, interval: float = 0.5, pages: int = 64,
                 declare: Kinds | None = None, lost_map: str | None = None,
                 ctype: type[ctypes.Structure] | None = None, struct: str | None = None) -> None:
        program.check_open()
        m = program.maps[map_name]
        if m.kind not in ("perf_event_array", "ringbuf"):
            raise LabError(f"map {map_name!r} is a {m.kind} map, not an event stream",
                           "EventLog reads BPF_PERF_OUTPUT and BPF_RINGBUF_OUTPUT maps; read "
                           f"this one with prog.maps[{map_name!r}].snapshot()")
        if sample is not None:      # keep 1 event in `sample`
            check_count(sample, "sample", hint="e.g. sample=10 keeps 1 event in 10; sample=None "
                        "samples by itself when the stream is fast")
        check_count(max_rows, "max_rows", example=200)
        if not is_count(pages) or pages & (pages - 1):
            raise LabError(f"pages must be a power of two, not {pages!r}", "e.g. pages=64")
        self.program, self.map_name, self.kind = program, map_name, m.kind
        self.max_rows, self.sample, self.pages = max_rows, sample, pages
        self.interval = text.check_interval(interval)
        self.lab, self.view_name = program.lab, f"events-{map_name}"
        if ctype is not None:
            self.ctype, hints = ctype, None
        elif struct is not None or getattr(program, "dialect", "bcc") != "bcc":
            self.ctype, hints = btf_event_type(program.bpf, map_name, struct)   # a libbpf object
        else:
            self.ctype, hints = event_type(program.bpf, map_name)
        self.codec = maps.make_codec(self.ctype, None, hints, declare, top=True)
        fields = self.codec.fields or [(None, self.codec, 0)]
        self.columns = [n or "value" for n, _, _ in fields]
        self._size = ctypes.sizeof(self.ctype)
        self._ts = next((n for n, c, _ in fields if n in TS_FIELDS and c.kind == "int"
                         and getattr(self.ctype, n).size == 8), None)
        self._verdict = next(((n, c.decode, o) for n, c, o in fields
                              if c.kind == "action" and o is not None), None)
        self._lost_lock = threading.Lock()
        self._lost_map = self._find_lost_map(lost_map)
        self.count, self.kept, self.totals = 0, 0, collections.Counter()
        self._perf_lost, self._lost_cache = 0, 0
        self._events = collections.deque(maxlen=KEEP)
        self._k, self._seen, self._kept, self._window = 1, 0, 0, time.monotonic()
        self.ratio = 1.0                  # events per kept event in the last window
        self.problem = None
        self._sizes = set()
        self._stop = threading.Event()
        self._t0 = time.monotonic_ns()
        old = _readers.get((id(program), map_name))
        if old is not None:
            old.close("another EventLog opened on the same map")
        self._fd = os.dup(m.fd)
        self._handles, self._cbs = [], None
        try:
            self._open()
        except BaseException:
            self._release()
            raise
        _readers[(id(program), map_name)] = self
        self._thread = threading.Thread(target=self._run, name=f"{THREAD_PREFIX}-{map_name}",
                                        daemon=True)
        self._hook_lab(program.lab)
        self._thread.start()

    def _find_lost_map(self, name):
        if self.kind != "ringbuf":
            if name is not None:
                raise LabError("lost_map is for ring buffers: the kernel counts lost perf events "
                               "itself", "leave lost_map out")
            return None
        if name is None:
            known = list(self.program.maps)
            name = next((n for n in (f"{self.map_name}_lost", "lost") if n in known), None)
            if name is None:
                return None
        m = self.program.maps[name]
        if m.key_codec is None or m.value_codec.kind not in ("int", "be"):
            raise LabError(f"map {name!r} cannot count lost events: its values are not integers",
                           f"e.g. BPF_ARRAY({name}, u64, 1); and {name}.atomic_increment(0) "
                           "when ringbuf_output() fails")
        own = copy.copy(m)               # read through a descriptor of our own, safe from close()
        own.fd = os.dup(m.fd)
        return own

    # -- the reader thread ------------------------------------------------------------------------
    def _open(self):
        from bcc import libbcc
        from bcc.utils import get_online_cpus
        lib, bpf = libbcc.lib, maps.libbpf()
        ringbuf_cb, raw_cb, lost_cb = bcc_callback_types()
        if self.kind == "ringbuf":
            self._cbs = ringbuf_cb(lambda ctx, data, size: self._on_event(data, size))
            ring = lib.bpf_new_ringbuf(self._fd, self._cbs, None)
            if not ring:
                raise LabError(f"could not open ring buffer {self.map_name!r}: "
                               f"{os.strerror(ctypes.get_errno() or 22)}")
            self._handles.append(ring)
            return
        self._cbs = (raw_cb(lambda ctx, data, size: self._on_event(data, size)),
                     lost_cb(lambda ctx, lost: self._on_lost(lost)))
        for cpu in get_online_cpus():
            opts = libbcc.bcc_perf_buffer_opts(pid=-1, cpu=cpu, wakeup_events=1)
            reader = lib.bpf_open_perf_buffer_opts(*self._cbs, None, self.pages, ctypes.byref(opts))
            if not reader:
                raise LabError(f"could not open a perf buffer of {self.pages} pages on CPU {cpu}",
                               "try fewer pages (pages=8)")
            self._handles.append((cpu, reader))
            key, fd = ctypes.c_uint32(cpu), ctypes.c_uint32(lib.perf_reader_fd(reader))
            if bpf.bpf_map_update_elem(self._fd, ctypes.byref(key), ctypes.byref(fd), 0) != 0:
                raise LabError(f"could not connect perf buffer {self.map_name!r} on CPU {cpu}")

    def _run(self):
        from bcc import libbcc
        lib = libbcc.lib
        if self.kind == "perf_event_array":
            readers = (ctypes.c_void_p * len(self._handles))(*[r for _, r in self._handles])
            poll = lambda: lib.perf_reader_poll(len(readers), readers, POLL_MS)    # noqa: E731
        else:
            poll = lambda: lib.bpf_poll_ringbuf(self._handles[0], POLL_MS)       # noqa: E731
        reason = "closed"
        try:
            while not self._stop.is_set():
                if self.program.bpf is None:
                    reason = f"program {self.program.name} closed"
                    break
                poll()
                self._next_window()
        finally:
            self.closed = self.closed or reason
            self._release()

    def _on_event(self, data, size):
        """Called by bcc for every event, in the reader thread."""
        if self._stop.is_set():
            return -1                          # a ring buffer stops handing out events
        try:
            self.count += 1
            raw = ctypes.string_at(data, size)
            if size not in self._sizes:
                self._check_size(size)
            if len(raw) < self._size:
                raw += bytes(self._size - len(raw))
            if self._verdict is not None:
                self.totals[self._verdict[1](raw, self._verdict[2])] += 1
            self._seen += 1
            if self.sample:
                keep = (self.count - 1) % self.sample == 0
            else:                              # spread over the window, the first one always
                keep = (self._seen - 1) % self._k == 0 and self._kept < self.max_rows
            if keep:
                self._kept += 1
                self.kept += 1
                self._keep(raw)
        except Exception as e:                  # never raise into bcc's C code
            self.problem = f"reading an event failed: {type(e).__name__}: {e}"
        return 0

    def _on_lost(self, lost):
        self._perf_lost += lost

    def _check_size(self, size):
        self._sizes.add(size)
        # perf pads what it carries so that the size field (4 bytes) + data is a multiple of 8
        fits = (size == self._size if self.kind == "ringbuf"
                else self._size <= size < self._size + 8)
        if not fits:
            self.problem = (f"an event of {size} bytes arrived, but the event struct as bcc "
                            f"describes it has {self._size}: is it packed, or sent with another "
                            "size? Pass ctype= a ctypes.Structure matching it")

    def _keep(self, raw):
        now = time.monotonic_ns()
        value = self.codec.decode(raw, 0)
        event = dict(value._asdict()) if self.codec.fields is not None else {"value": value}
        ts = event.get(self._ts) if self._ts else None
        t = ts if ts and self._t0 - 86_400 * 10**9 < ts <= now + 10**9 else now
        self._events.append({"t": (t - self._t0) / 1e9, **event})

    def _next_window(self):
        now = time.monotonic()
        if now - self._window < self.interval:
            return
        if self._seen:                        # the first event of a window is always kept
            self.ratio = self.sample or self._seen / max(self._kept, 1)
        self._k = max(1, math.ceil(self._seen / self.max_rows))
        if self._lost_map is not None:
            self._read_lost()
        self._seen = self._kept = 0
        self._window = now

    def _read_lost(self):
        with self._lost_lock:                   # not while the reader thread releases the map
            if self._lost_map is not None and self._lost_map.fd is not None:
                try:
                    self._lost_cache = sum(self._lost_map.snapshot().values())
                except LabError:
                    pass                        # the program closed: keep the last count
        return self._lost_cache

    def _release(self):
        from bcc import libbcc
        lib, bpf = libbcc.lib, maps.libbpf()
        handles, self._handles = self._handles, []
        for h in handles:
            if self.kind == "ringbuf":
                lib.bpf_free_ringbuf(h)
            else:
                cpu, reader = h
                bpf.bpf_map_delete_elem(self._fd, ctypes.byref(ctypes.c_uint32(cpu)))
                lib.perf_reader_free(reader)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lost_map is not None:
            self._read_lost()                   # the last count, while it can still be read
            with self._lost_lock:
                os.close(self._lost_map.fd)
                self._lost_map.fd = None
        if _readers.get((id(self.program), self.map_name)) is self:
            del _readers[(id(self.program), self.map_name)]

    # -- the public side --------------------------------------------------------------------------
    @property
    def events(self) -> list[dict[str, Decoded | float]]:
        """The kept events, oldest first: dicts {'t': seconds, field: typed value, ...}."""
        return list(self._events)

    @property
    def lost(self) -> int:
        """Events the program could not send: reported by perf, or counted by the program in its
        <map>_lost map for a ring buffer (0 when it has none)."""
        if self.kind == "perf_event_array":
            return self._perf_lost
        return self._read_lost()

    @property
    def running(self) -> bool:
        """True while the reader thread runs."""
        return self._thread.is_alive()

    def close(self, reason: str = "closed") -> None:
        """Stop reading (the thread ends within 0.1 s; waited for). Safe to call twice."""
        if self.closed is None:
            self.closed = reason
        self._stop.set()
        if self._thread is not threading.current_thread() and self._thread.is_alive():
            self._thread.join(timeout=5)
        self._stop_refresh()
        _live.discard(self)

    def _summary(self):
        kind = "perf buffer" if self.kind == "perf_event_array" else "ring buffer"
        parts = [f"{kind} · {self.count:,} events · {self.lost:,} lost"]
        if self.ratio > 1.05:
            parts.append(f"showing 1 in {round(self.ratio)}")
        parts += [f"{v}: {n:,}" for v, n in sorted(self.totals.items(), key=lambda kv: str(kv[0]))]
        if self.closed is not None:
            parts.append(f"stopped ({self.closed})")
        return " · ".join(parts)

    def _repr_html_(self):
        columns = ["t (s)" + (f" from {self._ts}" if self._ts else "")]
        columns += [c for c in self.columns if c != self._ts]
        rows = [[ev["t"]] + [ev[c] for c in columns[1:]]
                for ev in list(self._events)[-self.max_rows:][::-1]]
        notes = [self.problem] if self.problem else []
        if self.kind == "ringbuf" and self._lost_map is None:
            notes.append("lost counts only what the program reports: the kernel does not count "
                         f"events that did not fit in a ring buffer (count failed ringbuf_output() "
                         f"calls in a map {self.map_name}_lost)")
        return table_html(self._summary(), columns, rows, notes)

    def title(self) -> str:
        """The HTML title of its live view."""
        kind = "perf buffer" if self.kind == "perf_event_array" else "ring buffer"
        return (f'<span class="xdplab-w"><b>{text.escape(self.map_name)}</b> <span class="cap">'
                f'events of {text.escape(self.program.name)}, {kind}</span></span>')

    def __repr__(self):
        return f"<EventLog {self.program.name}:{self.map_name}: {self._summary()}>"


# -- bpf_trace_printk -----------------------------------------------------------------------------
TRACE_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
TraceLine = collections.namedtuple("TraceLine", "time task pid cpu flags event message")
_LINE = re.compile(r"^\s*(?P<task>.*?)-(?P<pid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(?P<cpu>\d+)\]\s+"
                   r"(?:(?P<flags>[^\s\[]{4,6})\s+)?(?P<time>\d+\.\d+):\s+(?P<event>[^:\s]+):\s?"
                   r"(?P<message>.*)$")
_LOST = re.compile(r"CPU:\d+ \[LOST (\d+) EVENTS\]")


def parse_trace_line(line: str) -> TraceLine | int | None:
    """A TraceLine from one line of trace_pipe, an int (lines the kernel lost) or None."""
    m = _LINE.match(line)
    if m:
        return TraceLine(float(m["time"]), m["task"], int(m["pid"]), int(m["cpu"]),
                         m["flags"] or "", m["event"], m["message"].rstrip())
    m = _LOST.search(line)
    return int(m[1]) if m else None


def trace_dir() -> str:
    """The tracefs directory, mounting tracefs at /sys/kernel/tracing when it is not there."""
    for d in TRACE_DIRS:
        if os.path.exists(os.path.join(d, "trace_pipe")):
            return d
    try:
        done = subprocess.run(["mount", "-t", "tracefs", "nodev", TRACE_DIRS[0]],
                              capture_output=True, text=True)
        why = done.stderr.strip()
    except OSError as e:
        why = str(e)
    if not os.path.exists(os.path.join(TRACE_DIRS[0], "trace_pipe")):
        raise SetupError("tracefs is not mounted and could not be mounted, so bpf_trace_printk() "
                         f"output cannot be read ({why or 'no trace_pipe'})",
                         "mount it: sudo mount -t tracefs nodev /sys/kernel/tracing (in a "
                         "container: run it with --privileged, or bind-mount /sys/kernel/tracing)")
    return TRACE_DIRS[0]


def _trace_pipe_readers(d):
    """'process N (comm)' of every process holding trace_pipe of tracefs directory `d` open."""
    target, out = os.path.realpath(os.path.join(d, "trace_pipe")), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.path.realpath(f"/proc/{pid}/fd/{fd}") == target for fd in fds):
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                out.append(f"process {pid} ({comm})")
        except OSError:
            continue
    return out


class _TracePipe:
    """This process's one reader of trace_pipe, handing its lines to every open TraceLog."""

    def __init__(self):
        self.logs = []
        self.lock = threading.Lock()            # guards logs (the thread takes it too)
        self.life = threading.Lock()            # one start or stop at a time (never in the thread)
        self.thread = self.stop = None

    def add(self, log):
        with self.life:
            if self.thread is None or not self.thread.is_alive():
                d = trace_dir()
                try:
                    on = Path(d, "tracing_on").read_text().strip() != "0"
                    fd = os.open(os.path.join(d, "trace_pipe"), os.O_RDONLY | os.O_NONBLOCK)
                except PermissionError:
                    raise PrivilegeError(f"reading {d}/trace_pipe needs root",
                                         "start JupyterLab with 'sudo make lab'") from None
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        raise
                    holders = ", ".join(_trace_pipe_readers(d)) or "another process"
                    raise SetupError(f"{holders} is reading the kernel's trace output "
                                     f"({d}/trace_pipe), and the kernel lets one reader at a time",
                                     "stop that reader (another notebook's TraceLog: close it or "
                                     "its kernel; a `cat trace_pipe`; bcc's trace_print()), then "
                                     "run this cell again") from None
                if not on:
                    os.close(fd)
                    raise SetupError("kernel tracing is switched off, so bpf_trace_printk() "
                                     "writes nothing",
                                     f"switch it on: echo 1 | sudo tee {d}/tracing_on")
                self.stop = threading.Event()
                self.thread = threading.Thread(target=self._run, args=(fd, self.stop),
                                               name=TRACE_THREAD, daemon=True)
                self.thread.start()
            with self.lock:
                self.logs.append(log)

    def remove(self, log):
        with self.life:
            with self.lock:
                if log in self.logs:
                    self.logs.remove(log)
                if self.logs or self.thread is None:
                    return
            thread, self.thread = self.thread, None
            self.stop.set()
            if thread is not threading.current_thread():
                thread.join(timeout=5)

    def _run(self, fd, stop):
        rest = b""
        try:
            while not stop.is_set():
                if not select.select([fd], [], [], POLL_MS / 1000)[0]:
                    continue
                try:
                    chunk = os.read(fd, 1 << 16)
                except BlockingIOError:
                    continue
                *lines, rest = (rest + chunk).split(b"\n")
                parsed = [p for p in (parse_trace_line(x.decode("utf-8", "replace"))
                                      for x in lines) if p is not None]
                with self.lock:
                    logs = list(self.logs)
                for log in logs:
                    log._feed(parsed)
        finally:
            os.close(fd)


_pipe = _TracePipe()


class TraceLog(_Live):
    """bpf_trace_printk() output (all of it, or the lines whose message starts with `prefix`) as
    a live table; `lab` (a Lab, or a Program for its lab) closes it when the lab closes."""

    def __init__(self, prefix: str | None = None, lab: Lab | Program | None = None,
                 max_rows: int = 200, *, interval: float = 0.5) -> None:
        self.prefix, self.max_rows = prefix, max_rows
        self.interval = text.check_interval(interval)
        self.lab = getattr(lab, "lab", lab)
        self.view_name = "trace"
        self.count, self.lost = 0, 0
        self._lines = collections.deque(maxlen=KEEP)
        _pipe.add(self)
        if self.lab is not None:
            self._hook_lab(self.lab)
        else:
            _live.add(self)

    def _feed(self, parsed):
        for p in parsed:
            if isinstance(p, int):
                self.lost += p
            elif self.prefix is None or p.message.startswith(self.prefix):
                self._lines.append(p)
                self.count += 1

    @property
    def lines(self) -> list[TraceLine]:
        """The kept lines, oldest first: TraceLine(time, task, pid, cpu, flags, event, message)."""
        return list(self._lines)

    def close(self, reason: str = "closed") -> None:
        """Stop receiving lines (the reader thread ends with the last open TraceLog)."""
        if self.closed is None:
            self.closed = reason
        _pipe.remove(self)
        self._stop_refresh()
        _live.discard(self)

    def _summary(self):
        parts = [f"{self.count} lines" + (f" starting with {self.prefix!r}" if self.prefix else ""),
                 f"{self.lost} lost (whole machine)"]
        if self.closed is not None:
            parts.append(f"stopped ({self.closed})")
        return " · ".join(parts)

    def _repr_html_(self):
        rows = [[ln.time, ln.task, ln.pid, ln.cpu,
                 ln.message if ln.event == "bpf_trace_printk" else f"{ln.event}: {ln.message}"]
                for ln in list(self._lines)[-self.max_rows:][::-1]]
        return table_html(self._summary(), ["time (s)", "task", "pid", "cpu", "message"], rows)

    def title(self) -> str:
        """The HTML title of its live view."""
        return ('<span class="xdplab-w"><b>bpf_trace_printk</b> <span class="cap">trace_pipe '
                '(the whole machine)</span></span>')

    def __repr__(self):
        return f"<TraceLog: {self._summary()}>"
