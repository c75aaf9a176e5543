"""Map and Maps: one BPF map of a loaded program (prog.maps["name"]), read, written, pinned and
shown; see xdplab.maps for the typing. A Map is a typed mutable mapping: m[key], m[key] = value,
del m[key], m.update(...), m.clear(), key in m, iteration over the keys of a snapshot."""
from __future__ import annotations

import collections.abc
import ctypes
import errno
import itertools
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView

from xdplab import text, views
from xdplab.errors import ClosedError, LabError, SetupError
from xdplab.kernel import netns
from xdplab.kernel.constants import PIN_ROOT
from xdplab.kernel.libbpf import decode_table_type, errno_of, libbcc, libbpf, map_info
from xdplab.maps.btf import btf_hints
from xdplab.maps.codecs import CTYPES, ctype_integer, encode_part, make_codec, short_repr
from xdplab.maps.counters import combine, rates
from xdplab.maps.kinds import (ARRAYS, INDEXED, MAP_TYPES, NATIVE, NETNS_VALUES, NOT_READABLE,
                               WRITE_ONLY, ZEROED, key_is_action)

BATCH_CHUNK = 8192             # entries per BPF_MAP_LOOKUP_BATCH call
_BATCH_KINDS = {"hash", "lru_hash", "percpu_hash", "lru_percpu_hash", "array", "percpu_array"}

if TYPE_CHECKING:
    from xdplab.lab.topology import Host, Interface
    from xdplab.maps.codecs import Codec, Decoded, Encodable, Kinds
    from xdplab.program.program import Program


class MissingKey(LabError, KeyError):
    """A key the map does not hold: a LabError with the usual fix, and a KeyError, so that
    `key in m`, `m.get(key)` and `m.pop(key, None)` work as with a dict."""


def table_names(bpf: Any) -> list[str]:
    """Names of every map declared by a bcc module (a bcc.BPF, or the compile helper's Loaded)."""
    if hasattr(bpf, "table_names"):
        return bpf.table_names()
    lib = libbcc()
    return [lib.bpf_table_name(bpf.module, i).decode() for i in range(lib.bpf_num_tables(bpf.module))]


def table_facts(bpf: Any, name: str) -> tuple[int, str, str]:
    """(fd, key description, leaf description) of map `name`, as bcc describes them (JSON)."""
    info = getattr(bpf, "table_info", {}).get(name)
    if info is not None:
        return info.fd, info.key_desc, info.leaf_desc
    lib, bname = libbcc(), name.encode()
    return (lib.bpf_table_fd(bpf.module, bname), lib.bpf_table_key_desc(bpf.module, bname).decode(),
            lib.bpf_table_leaf_desc(bpf.module, bname).decode())


def _plain(value):
    """`value` with named tuples as plain tuples: what a learner can type back (repr)."""
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


class Maps(collections.abc.Mapping):
    """program.maps["name"] → Map."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self._names = table_names(program.bpf)
        self._maps = {}

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __getitem__(self, name: str) -> Map:
        if name not in self._names:
            raise LabError(f"the program has no map {name!r}",
                           f"its maps: {', '.join(self._names) or 'none'}")
        if name not in self._maps:
            self.program.check_open()          # a closed program has no map fds to read
            self._maps[name] = Map(self.program, name)
        return self._maps[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"<Maps {', '.join(self._names)}>"


class Map(collections.abc.MutableMapping):
    """One BPF map of a program; see the module doc. Two Maps are equal only when they are the
    same object (compare m.snapshot()s for their contents)."""
    __eq__, __hash__ = object.__eq__, object.__hash__

    program: Program
    name: str
    fd: int
    id: int
    max_entries: int
    kind: str                          # "hash", "percpu_array"... (MAP_TYPES), or "type N"
    key_size: int
    value_size: int
    percpu: bool
    ncpus: int                         # possible CPUs for a per-CPU map, else 1
    key_codec: Codec | None            # None for a map without entries to read
    value_codec: Codec | None
    read_method: str | None            # "batch" or "per-key": how the last read went

    def __init__(self, program: Program, name: str) -> None:
        self.program, self.name = program, name
        self.fd, key_desc, leaf_desc = table_facts(program.bpf, name)
        info = map_info(self.fd)
        self.id, self.max_entries = info.id, info.max_entries
        self.kind = MAP_TYPES[info.type] if info.type < len(MAP_TYPES) else f"type {info.type}"
        self.key_size, self.value_size = info.key_size, info.value_size
        self.percpu = self.kind.startswith(("percpu", "lru_percpu"))
        self.ncpus = libbpf().libbpf_num_possible_cpus() if self.percpu else 1
        self._slot = (self.value_size + 7) // 8 * 8 if self.percpu else self.value_size
        self._vsize = self._slot * self.ncpus          # what one lookup returns
        self.Key = self.Leaf = None
        # why a side is read as raw bytes (a libbpf map whose BTF could not type it)
        self.notes: list[str] = list(getattr(getattr(program.bpf, "table_info", {}).get(name),
                                             "notes", None) or [])
        self._declared = {"key": None, "value": None}
        if self.kind not in NOT_READABLE or self.kind in WRITE_ONLY:
            # the ctypes types bcc derives from the C declarations (without building its Table);
            # no description: the side's bytes as they are (declared "bytes", declare() may say more)
            if key_desc is None:
                self.Key, self._declared["key"] = ctypes.c_ubyte * self.key_size, "bytes"
            else:
                self.Key = decode_table_type(key_desc)
            if leaf_desc is None:
                self.Leaf, self._declared["value"] = ctypes.c_ubyte * self.value_size, "bytes"
            else:
                self.Leaf = decode_table_type(leaf_desc)
        self._hints = btf_hints(info.btf_id, info.btf_key_type_id, info.btf_value_type_id)
        self._batch_ok = self.kind in _BATCH_KINDS
        self._last = None                              # (time, snapshot) for rates()
        self.read_method = None
        self._codecs()

    # -- typing -------------------------------------------------------------------------------------
    def _codecs(self):
        self._wcodecs = None           # (key codec, value codec) for writes
        if self.Key is None or self.kind in NOT_READABLE:
            self.key_codec = self.value_codec = None
            if self.Key is not None:   # a program array: slot numbers and program fds
                self._wcodecs = (make_codec(self.Key, self.name, None, "int", top=True),
                                 make_codec(self.Leaf, self.name, None, "int", top=True))
            return
        key_kind = self._declared["key"]
        integer, _ = ctype_integer(self.Key)
        if key_kind is None and integer and key_is_action(self.name, self.kind, self.max_entries):
            key_kind = "action"
        elif key_kind is None and integer and self.kind in INDEXED:
            key_kind = "int"      # an index (a devmap slot, a CPU...), whatever the map's name
        self.key_codec = make_codec(self.Key, self.name, self._hints[0], key_kind, top=True)
        self.value_codec = make_codec(self.Leaf, None, self._hints[1], self._declared["value"],
                                      top=True)
        self._wcodecs = (self.key_codec, self.value_codec)

    def declare(self, key: Kinds | None = None, value: Kinds | None = None) -> Map:
        """Say how to read keys and/or values: a kind (see xdplab.maps.KINDS) for a scalar, or
        {field: kind} for fields of a struct (added to earlier declarations; the other fields stay
        inferred). Returns the map, so m.declare(key="ipv4").snapshot() works."""
        old = dict(self._declared)
        for side, new in (("key", key), ("value", value)):
            if isinstance(new, dict) and isinstance(old[side], dict):
                new = {**old[side], **new}
            if new is not None:
                self._declared[side] = new
        try:
            self._codecs()
        except LabError:
            self._declared = old
            self._codecs()
            raise
        return self

    @property
    def kinds(self) -> dict[str, Kinds]:
        """How keys and values are read: {'key': kind or {field: kind}, 'value': ...}."""
        self.ensure_readable()
        return {"key": self.key_codec.kinds(), "value": self.value_codec.kinds()}

    # -- reading ------------------------------------------------------------------------------------
    def _check(self):
        if self.program.bpf is None:
            raise ClosedError(f"the program owning map {self.name!r} is closed",
                           "load it again (lab.load(...)) and read its maps before closing it")

    def ensure_readable(self) -> Map:
        """Raise the LabError that says why this map cannot be read — its program is closed, or
        it is a map type without entries to read (ringbuf, perf_event_array, prog_array...) —
        and return the map when it can be. Views call it before they start showing a map."""
        self._check()
        if self.key_codec is None:
            how = {"ringbuf": "it carries events, not entries",
                   "perf_event_array": "it carries events, not entries",
                   "prog_array": "it holds programs for tail calls"}.get(self.kind, "")
            raise LabError(f"map {self.name!r} is a {self.kind} map, which has no snapshot"
                           + (f": {how}" if how else ""),
                           f"read it with bcc's own API: prog.bpf[{self.name!r}]")
        return self

    @property
    def table(self) -> Any:
        """bcc's Table object for this map (bcc's API, for what xdplab does not cover)."""
        self._check()
        return self.program.bpf[self.name]

    def _raw_batch(self):
        """[(keys buffer, values buffer, n)] read with BPF_MAP_LOOKUP_BATCH; None when unsupported."""
        lib, chunk = libbpf(), min(self.max_entries, BATCH_CHUNK) or 1
        token_in = ctypes.create_string_buffer(max(8, self.key_size))
        token_out = ctypes.create_string_buffer(max(8, self.key_size))
        out, first = [], True
        while True:
            keys = ctypes.create_string_buffer(chunk * self.key_size)
            vals = ctypes.create_string_buffer(chunk * self._vsize)
            n = ctypes.c_uint32(chunk)
            rc = lib.bpf_map_lookup_batch(self.fd, None if first else token_in, token_out, keys, vals,
                                          ctypes.byref(n), None)
            err = errno_of(rc) if rc else 0
            if err and err != errno.ENOENT:
                if err == errno.ENOSPC and n.value == 0:        # a hash bucket bigger than chunk
                    chunk *= 2
                    continue
                if first and err in (errno.EINVAL, errno.EOPNOTSUPP, 524):   # 524: ENOTSUPP
                    return None
                raise LabError(f"reading map {self.name!r} failed: {os.strerror(err)}")
            if n.value:
                out.append((keys, vals, n.value))        # the buffers themselves: no copies
            if err == errno.ENOENT:
                return out
            ctypes.memmove(token_in, token_out, len(token_in))
            first = False

    def _raw_per_key(self):
        lib = libbpf()
        key, nxt = ctypes.create_string_buffer(self.key_size), ctypes.create_string_buffer(self.key_size)
        val = ctypes.create_string_buffer(self._vsize)
        keys, vals, n = [], [], 0
        if self.kind in ARRAYS:
            candidates = (i.to_bytes(4, NATIVE) for i in range(self.max_entries))
        else:
            def walk():
                prev = None
                for _ in range(2 * self.max_entries + 1):    # bounded even if entries churn
                    if lib.bpf_map_get_next_key(self.fd, prev, nxt) != 0:
                        return
                    yield nxt.raw
                    ctypes.memmove(key, nxt, self.key_size)
                    prev = key
            candidates = walk()
        for k in candidates:
            if lib.bpf_map_lookup_elem(self.fd, k, val) == 0:
                keys.append(k)
                vals.append(val.raw)
                n += 1
        return [(b"".join(keys), b"".join(vals), n)] if n else []

    def _raw(self, batch=None):
        self.ensure_readable()
        if batch is not False and self._batch_ok:
            chunks = self._raw_batch()
            if chunks is not None:
                self.read_method = "batch"
                return chunks
            self._batch_ok = False
        if batch:
            raise LabError(f"the kernel cannot batch-read {self.kind} map {self.name!r}",
                           "use snapshot(batch=False) (or the default, which falls back by itself)")
        self.read_method = "per-key"
        return self._raw_per_key()

    def snapshot(self, per_cpu: bool = False, batch: bool | None = None,
                 skip_zero: bool = False) -> dict[Decoded, Decoded]:
        """The whole map now, as {key: value} typed as described in the module doc. Per-CPU
        values are summed, or with per_cpu=True given as a tuple with one value per possible CPU
        (per_cpu changes nothing for other maps).
        batch: None picks batch reads when the kernel supports them, False forces one lookup
        per key, True requires batch. skip_zero drops entries whose value is all zeros."""
        chunks = self._raw(batch)
        kc, vc = self.key_codec, self.value_codec
        ks, slot, vs, ncpus = self.key_size, self._slot, self._vsize, self.ncpus
        out, zero = {}, bytes(vs)
        for keys, vals, n in chunks:
            kmv, vmv = memoryview(keys).cast("B"), memoryview(vals).cast("B")
            keep = None
            if skip_zero:
                keep = [vmv[i * vs:(i + 1) * vs] != zero for i in range(n)]
            if self.percpu:               # n entries of ncpus slots each: one column of n * ncpus
                flat = list(vc.column(vmv, n * ncpus, slot))
                groups = (tuple(flat[j:j + ncpus]) for j in range(0, n * ncpus, ncpus))
                if per_cpu:
                    values = groups
                elif vc.counter and vc.fields is None and vc.elem is None:
                    values = map(sum, groups)
                else:
                    values = (combine(vc, cpus) for cpus in groups)
            else:
                values = vc.column(vmv, n, vs)
            pairs = zip(kc.column(kmv, n, ks), values)
            out.update(pairs if keep is None else itertools.compress(pairs, keep))
        return out

    def __len__(self) -> int:
        """Entries in the map (for arrays: max_entries — every slot of an array exists)."""
        if self.kind in ZEROED:
            return self.max_entries
        return sum(n for _, _, n in self._raw())

    def rates(self, interval: float = 1.0) -> dict[Decoded, float | Decoded]:
        """Per-second rates of every counter (and every counter field of struct values) since the
        previous call of rates(); the first call measures over `interval` seconds."""
        if self._last is None:
            self._last = (time.monotonic(), self.snapshot())
            time.sleep(interval)
        t0, prev = self._last
        now, cur = time.monotonic(), self.snapshot()
        self._last = (now, cur)
        return rates(prev, cur, now - t0, self.value_codec)

    # -- one key: reading -----------------------------------------------------------------------
    def __getitem__(self, key: Encodable) -> Decoded:
        """The value of `key` now, typed as in snapshot() (per-CPU values summed); MissingKey (a
        KeyError) when the map does not hold it."""
        self.ensure_readable()
        kb = self._key_bytes(key)
        val = ctypes.create_string_buffer(self._vsize)
        rc = libbpf().bpf_map_lookup_elem(self.fd, kb, val)
        if rc != 0:
            err = errno_of(rc)
            if err == errno.ENOENT:
                raise self._missing(key, "read")
            raise LabError(f"reading key {short_repr(key)} of map {self.name!r} failed: {os.strerror(err)}")
        vc, mv = self.value_codec, memoryview(val.raw)
        if not self.percpu:
            return vc.decode(mv, 0)
        return combine(vc, [vc.decode(mv, cpu * self._slot) for cpu in range(self.ncpus)])

    def __iter__(self) -> Iterator[Decoded]:
        """The keys of a snapshot taken now."""
        return iter(self.snapshot())

    def keys(self) -> KeysView[Decoded]:
        """The keys of a snapshot taken now (a dict view: it does not change with the map)."""
        return self.snapshot().keys()

    def values(self) -> ValuesView[Decoded]:
        """The values of a snapshot taken now."""
        return self.snapshot().values()

    def items(self) -> ItemsView[Decoded, Decoded]:
        """The (key, value) pairs of a snapshot taken now."""
        return self.snapshot().items()

    def _missing(self, key, doing):
        if self.kind in INDEXED:
            where = f"its keys are 0 to {self.max_entries - 1}"
            if self.kind not in ZEROED:
                where += " and slot " + repr(key) + " is empty"
        else:
            where = "look first: key in m, m.get(key), or m.snapshot() for every entry"
        if doing == "delete":
            where += "; m.pop(key, None) deletes a key only if it is there"
        return MissingKey(f"map {self.name!r} has no key {short_repr(key)}", where)

    # -- writing ------------------------------------------------------------------------------------
    def _writer(self):
        """(key codec, value codec) for writes; raises when the map cannot be written."""
        self._check()
        if self._wcodecs is None:
            raise LabError(f"map {self.name!r} is a {self.kind} map, which xdplab cannot write",
                           f"write it with bcc's own API: prog.bpf[{self.name!r}]")
        return self._wcodecs

    def _key_bytes(self, key):
        kc, _ = self._writer()
        try:
            return kc.encode(key)
        except LabError as e:
            raise LabError(f"map {self.name!r}, key {short_repr(key)}: {e.message}", e.hint) from None

    def _per_cpu_values(self, vc, value):
        """Whether `value` for a per-CPU map is one value per CPU (a list or plain tuple of values)
        rather than one value for every CPU."""
        if not isinstance(value, (list, tuple)) or hasattr(value, "_fields"):
            return False
        if vc.fields is None and vc.elem is None:          # scalar values: a sequence is per CPU
            return True
        return len(value) > 0 and all(isinstance(v, (tuple, list, dict, *CTYPES)) for v in value)

    def _value_bytes(self, key, value):
        """(bytes to write, namespace to write them from or None) for `value` at `key`."""
        _, vc = self._writer()
        ns = None
        try:
            if self.kind in NETNS_VALUES:
                value, ns = self._ifindex(key, value)
            if not self.percpu:
                return vc.encode(value), ns
            if isinstance(value, CTYPES) and ctypes.sizeof(value) == self._vsize != vc.size:
                return bytes(value), ns                 # bcc's per-CPU Leaf: every CPU's slot
            if self._per_cpu_values(vc, value):
                if len(value) != self.ncpus:
                    raise LabError(f"{len(value)} values for {self.ncpus} CPUs",
                                   f"give one value (it goes to every CPU) or a list of "
                                   f"{self.ncpus}, one per possible CPU")
                parts = [encode_part(vc, v, f"CPU {cpu}") for cpu, v in enumerate(value)]
            else:
                parts = [vc.encode(value)] * self.ncpus
            return b"".join(p.ljust(self._slot, b"\0") for p in parts), ns
        except LabError as e:
            raise LabError(f"map {self.name!r}, value for key {short_repr(key)}: {e.message}",
                           e.hint) from None

    def _ifindex(self, key, value):
        """(ifindex, namespace) of a devmap value: the kernel reads an ifindex in the namespace of
        whoever writes it, so it is written inside the host it belongs to — never from this
        machine's own namespace."""
        fix = (f"give the interface itself: prog.maps[{self.name!r}][{key!r}] = router.iface(server) "
               "(or a Host, or 'host:ifname')")
        if isinstance(value, (int, *CTYPES)) and not isinstance(value, bool):
            hosts = {a.iface.host for a in self.program.attachments if not isinstance(a.iface, str)}
            if len(hosts) != 1 or any(isinstance(a.iface, str) for a in self.program.attachments):
                where = "in several namespaces" if self.program.attachments else "nowhere yet"
                raise LabError(f"an ifindex means an interface of one host (network namespace), and "
                               f"program {self.program.name!r} is attached {where}", fix)
            return value, hosts.pop().ns
        lab = self.program.lab
        lab.check_open()
        iface = lab.interface(value) if isinstance(value, str) or hasattr(value, "ifindex") \
            or hasattr(value, "iface") else None
        if iface is None:
            raise LabError(f"{short_repr(value)} is not an interface of this lab", fix)
        return iface.ifindex, iface.host.ns

    def _update(self, kb, vb, ns, key, value):
        lib = libbpf()
        if ns is None:
            rc = lib.bpf_map_update_elem(self.fd, kb, vb, 0)
        else:
            with netns.enter(ns):
                rc = lib.bpf_map_update_elem(self.fd, kb, vb, 0)
        if rc != 0:
            raise self._write_error(errno_of(rc), key, value)

    def _write_error(self, err, key, value):
        name, why = self.name, os.strerror(err)
        if err == errno.E2BIG and self.kind in INDEXED:
            return LabError(f"map {name!r} has slots 0 to {self.max_entries - 1}: key {short_repr(key)} "
                            "is past its end", f"use a key from 0 to {self.max_entries - 1} (the C "
                            f"declares {self.max_entries} entries)")
        if err == errno.E2BIG:
            return LabError(f"map {name!r} is full: it holds max_entries={self.max_entries} entries, "
                            f"so key {short_repr(key)} cannot be added",
                            "delete entries first (del m[key], m.clear()), or declare the map with "
                            "more entries in the C (the last argument of BPF_HASH)")
        if self.kind == "prog_array":
            return LabError(f"map {name!r} is a program array: slot {short_repr(key)} takes the file "
                            f"descriptor of an XDP program, and the kernel refused {short_repr(value)} "
                            f"({why})", "write the fd of a function of a program loaded in this "
                            f"lab: prog.maps[{name!r}][{key!r}] = prog.fd('function_name')")
        if self.kind in NETNS_VALUES:
            return LabError(f"map {name!r} is a devmap, and the kernel refused interface index "
                            f"{short_repr(value)} for key {short_repr(key)} ({why})",
                            f"give a lab interface: prog.maps[{name!r}][{key!r}] = router.iface(server)")
        return LabError(f"writing key {short_repr(key)} of map {name!r} failed: {why}")

    def __setitem__(self, key: Encodable, value: Encodable | Interface | Host) -> None:
        """Store `value` at `key`, both given as snapshot() gives them out (or as bcc's ctypes
        Key/Leaf). Per-CPU maps: one value goes to every CPU, a list gives one per CPU."""
        kb = self._key_bytes(key)
        vb, ns = self._value_bytes(key, value)
        self._update(kb, vb, ns, key, value)

    def __delitem__(self, key: Encodable) -> None:
        """Remove `key` (MissingKey when it is not there). Arrays cannot delete: set the value
        to zero instead."""
        kb = self._key_bytes(key)
        if self.kind in ZEROED:
            zero = _plain(self._wcodecs[1].zero())
            raise LabError(f"map {self.name!r} is a {self.kind} map, and arrays cannot delete: "
                           f"every slot from 0 to {self.max_entries - 1} always holds a value",
                           f"set the value to zero instead: prog.maps[{self.name!r}][{key!r}] = "
                           f"{zero!r}")
        rc = libbpf().bpf_map_delete_elem(self.fd, kb)
        if rc != 0:
            err = errno_of(rc)
            if err == errno.ENOENT:
                raise self._missing(key, "delete")
            if err in (errno.EINVAL, errno.E2BIG) and self.kind in INDEXED:
                raise self._write_error(errno.E2BIG, key, None)
            raise LabError(f"deleting key {short_repr(key)} of map {self.name!r} failed: "
                           f"{os.strerror(err)}")

    def update(self, other: Mapping[Any, Encodable | Interface | Host]
               | Iterable[tuple[Encodable, Encodable | Interface | Host]] = (), /,
               **kw: Encodable | Interface | Host) -> None:
        """Store every (key, value) of `other` — a mapping (a dict, a snapshot) or (key, value)
        pairs — and of the keyword arguments (m.update(XDP_PASS=0)). Every key and value is
        checked before anything is written; many go in one BPF_MAP_UPDATE_BATCH."""
        self._writer()
        if hasattr(other, "keys"):
            pairs = [(k, other[k]) for k in other.keys()]
        else:
            pairs = []
            for item in other:
                if not isinstance(item, (tuple, list)) or len(item) != 2:
                    raise LabError(f"update() of map {self.name!r} takes a mapping or (key, value) "
                                   f"pairs; {short_repr(item)} is not a pair",
                                   "e.g. m.update({key: value}) or m.update([(key, value), ...])")
                pairs.append(tuple(item))
        pairs += kw.items()
        todo = [(k, v, self._key_bytes(k), *self._value_bytes(k, v)) for k, v in pairs]
        if len(todo) > 1 and self.kind in _BATCH_KINDS:
            keys, vals = b"".join(t[2] for t in todo), b"".join(t[3] for t in todo)
            count = ctypes.c_uint32(len(todo))
            if libbpf().bpf_map_update_batch(self.fd, keys, vals, ctypes.byref(count), None) == 0:
                return
        for k, v, kb, vb, ns in todo:      # one by one: also to say which entry the kernel refused
            self._update(kb, vb, ns, k, v)

    def clear(self) -> None:
        """Remove every entry (arrays: set every value to zero; program arrays and devmaps: empty
        every slot)."""
        self._writer()
        lib = libbpf()
        if self.kind in ZEROED:
            n = self.max_entries
            keys = b"".join(i.to_bytes(4, NATIVE) for i in range(n))
            zeros = ctypes.create_string_buffer(n * self._vsize)
            count = ctypes.c_uint32(n)
            if lib.bpf_map_update_batch(self.fd, keys, zeros, ctypes.byref(count), None) != 0:
                for i in range(n):
                    lib.bpf_map_update_elem(self.fd, keys[4 * i:4 * i + 4], zeros, 0)
            return
        if self.kind in INDEXED:                  # empty slots are fine to delete too
            for i in range(self.max_entries):
                lib.bpf_map_delete_elem(self.fd, i.to_bytes(4, NATIVE))
            return
        for keys, _, n in self._raw():      # keys first: deleting while walking restarts the walk
            count = ctypes.c_uint32(n)
            if lib.bpf_map_delete_batch(self.fd, keys, ctypes.byref(count), None) != 0:
                for i in range(n):
                    lib.bpf_map_delete_elem(self.fd, keys[i * self.key_size:(i + 1) * self.key_size])

    def pin(self, path: str | os.PathLike[str] | None = None) -> str:
        """Pin the map in bpffs so tools outside Python can read it (`bpftool map dump pinned
        PATH`); returns the path. The default is /sys/fs/bpf/xdplab/<lab id>/<map name>; a
        relative path is taken inside that directory. The lab removes its pins when it closes."""
        self._check()
        root = PIN_ROOT / self.program.lab.id
        target = Path(os.path.normpath(root / (path or self.name)))
        if root not in target.parents:
            raise LabError(f"pins of this lab live under {root}; {target} is outside it",
                           f"give a name (pin('{self.name}')) or a path inside {root}, so the lab "
                           "can remove it when it closes")
        if not os.path.ismount("/sys/fs/bpf"):
            raise SetupError("bpffs is not mounted at /sys/fs/bpf",
                             "mount it: sudo mount -t bpf bpf /sys/fs/bpf")
        target.parent.mkdir(parents=True, exist_ok=True)
        lib = libbpf()
        if target.exists():
            fd = lib.bpf_obj_get(str(target).encode())
            same = fd >= 0 and map_info(fd).id == self.id
            if fd >= 0:
                os.close(fd)
            if same:
                return str(target)
            raise LabError(f"{target} already pins another map",
                           f"pin this one under another name: pin('{self.program.name}_{self.name}')")
        rc = lib.bpf_obj_pin(self.fd, str(target).encode())
        if rc != 0:
            raise LabError(f"pinning map {self.name!r} at {target} failed: {os.strerror(errno_of(rc))}")
        return str(target)

    # -- showing ------------------------------------------------------------------------------------
    def _rows(self, limit):
        """Up to `limit` entries to show (arrays in index order without zeros, hashes sorted)."""
        items = list(self.snapshot(skip_zero=self.kind in ARRAYS).items())
        if self.kind not in ARRAYS:
            try:
                items.sort()
            except TypeError:                       # keys of mixed types ("UDP" and 253)
                items.sort(key=lambda kv: str(kv[0]))
        return items[:limit], len(items)

    def _shown(self, limit):
        """(rows, total, problem): what repr and _repr_html_ can show right now."""
        if self.key_codec is None or self.program.bpf is None:
            return [], 0, "closed" if self.program.bpf is None else None
        try:
            return (*self._rows(limit), None)
        except LabError as e:
            return [], 0, f"cannot read it: {e.message}"

    def describe(self) -> str:
        """One line of what this map is: its type, size, how its keys and values are typed,
        and whether reads sum per-CPU slots ("hash, max_entries 1024, key ..., value ...")."""
        kinds = ""
        if self.key_codec is not None:
            kinds = f", key {self.key_codec.kinds()}, value {self.value_codec.kinds()}"
        cpu = f", summed over {self.ncpus} CPUs" if self.percpu else ""
        notes = "".join(f" (note: {n})" for n in self.notes)
        return f"{self.kind}, max_entries {self.max_entries}{kinds}{cpu}{notes}"

    def __repr__(self, limit: int = 20) -> str:
        head = f"<Map {self.name}: {self.describe()}>"
        rows, total, problem = self._shown(limit)
        if problem or self.key_codec is None:
            return head + (f" ({problem})" if problem else "")
        lines = [f"  {k}: {v}" for k, v in rows]
        zeros = " (zero entries hidden)" if self.kind in ARRAYS else ""
        more = [f"  … {total - len(rows)} more"] if total > len(rows) else []
        return "\n".join([head + zeros] + lines + more) if lines else head + " empty" + zeros

    def widget(self, chart: bool = False, **options: Any) -> Any:
        """A live view for a notebook: a table (xdplab.widgets.MapView; options top=20,
        interval=0.5, sort="value"|"key", rates=True, per_cpu=False, keys=None, field=None) or,
        with chart=True, a line chart of per-second rates per key (xdplab.widgets.RatesChart;
        options keys=None, field=None, window=30, interval=0.5). `keys` picks the rows/lines,
        `field` the counter of struct values. Stops when closed or when the lab closes.
        Made by the UI through xdplab.views (kind "map")."""
        return views.view("map", self, chart=chart, **options)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict | None:
        """In a Jupyter kernel a map that ends a cell shows as its live MapView; front-ends
        without widgets (and nbconvert, and a terminal) get None here and show _repr_html_ or
        repr."""
        return views.mimebundle("map", self, include, exclude)

    def _repr_html_(self, limit: int = 50) -> str:
        def e(x):
            return text.escape(str(x))
        head = f"<b>{e(self.name)}</b> <small>{e(self.describe())}</small>"
        rows, total, problem = self._shown(limit)
        if problem or self.key_codec is None:
            return head + (f" <small>({e(problem)})</small>" if problem else "")

        def cols(codec, label):
            return [n for n, _, _ in codec.fields] if codec.fields is not None else [label]

        def cells(codec, v):
            return list(v) if codec.fields is not None else [v]
        kc, vc = cols(self.key_codec, "key"), cols(self.value_codec, "value")
        th = "".join(f"<th>{e(c)}</th>" for c in kc + vc)
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in
                                        cells(self.key_codec, k) + cells(self.value_codec, v))
                       + "</tr>" for k, v in rows)
        notes = []
        if total > len(rows):
            notes.append(f"… {total - len(rows)} more entries")
        if self.kind in ARRAYS:
            notes.append("entries whose value is zero are hidden")
        note = f"<br><small>{e('; '.join(notes))}</small>" if notes else ""
        return f"{head}<table><tr>{th}</tr>{body}</table>{note}"
