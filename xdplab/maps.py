"""Maps: a program's BPF maps read as typed Python values.

    m = prog.maps["counters"]
    m.snapshot()                 # {'XDP_ABORTED': 0, 'XDP_DROP': 0, 'XDP_PASS': 5, ...}
    m.snapshot(per_cpu=True)     # per-CPU maps: a tuple per value, one item per possible CPU
    m.rates()                    # per-second rates of every counter since the previous call
    m.kinds                      # how keys and values are typed: {'key': 'action', 'value': 'int'}
    m.declare(key={"saddr": "ipv4_host"})   # override what xdplab inferred
    m.pin()                      # /sys/fs/bpf/xdplab/<lab>/<map>, for `bpftool map dump pinned ...`
    m.clear(); len(m); m.kind; m.max_entries; m.fd; m.id

Typing. Integers are ints, C structs become named tuples with the C field names (padding left
out), char arrays become str. A key, value or field is read as one of these KINDS:

    int        an integer in the CPU's byte order (what `u64 *v = ...; *v += 1` stores)
    be         an integer stored in network byte order (__be16/__be32/__be64), as a host int
    ipv4       4 bytes in network order, as read from the packet (iph->saddr) → IPv4Address
    ipv4_host  a u32 address already converted with bpf_ntohl() → IPv4Address
    ipv6       16 bytes (struct in6_addr, u8[16], u32[4]) → IPv6Address
    port       a port in network order (udph->dest), also when widened into a u32 → int
    proto      an IP protocol number → "TCP", "UDP", "ICMP", "ICMPv6", ... (other numbers: int)
    ethertype  an EtherType in network order (eth->h_proto) → "IPv4", "IPv6", "ARP", ... or int
    action     an XDP action number → "XDP_ABORTED" ... "XDP_REDIRECT" (other numbers: int)
    mac        6 bytes → "02:58:4c:00:00:01"
    str        a NUL-terminated char array → str
    bytes      raw bytes

The kind is chosen by the first rule that applies:
  1. `declare()`: prog.maps["m"].declare(key="ipv4") for a scalar key, or a dict of fields for a
     struct, e.g. declare(key={"dport": "int"}, value={"last": "ipv4"}).
  2. The map key is an XDP action when its type is `enum xdp_action`, when the map name has the
     word action(s) or verdict(s) or contains "xdp_stats", or when it is a 5-entry array
     (XDP_ACTION_MAX entries) whose name has count/counter(s)/cnt/stats.
  3. The C type: struct in6_addr is ipv6, char[] is str, u8[6] is mac, `enum xdp_action` is
     action (typedef and enum names come from the program's BTF, which bcc loads with it).
  4. The name — of the struct field, or of the map for a scalar key (split on "_"):
     proto/protocol → proto (a 2-byte or __be16 one, or h_proto/ethertype/eth_type → ethertype);
     a word with "port" (and 2-byte source/dest/src/dst, as in struct udphdr) → port;
     4 bytes named ip/addr/saddr/daddr/src/dst/source/dest/... → ipv4, 16 bytes → ipv6;
     action/verdict → action.
     Like the packet they come from, these are assumed to be in network order. If your program
     converted them (bpf_ntohs(udph->dest)), declare the field "int" (or "ipv4_host").
  5. Otherwise __be16/__be32/__be64 are be (a bare __be32 map key or value is ipv4), and
     everything else is int.

Per-CPU maps: each CPU has its own copy of every value; snapshot() adds them up (counters are
summed field by field, other fields are taken from the first CPU where the entry is not zero).

Reading: a snapshot reads hash and array maps with BPF_MAP_LOOKUP_BATCH, a few syscalls for the
whole map, falling back to one lookup per key when the kernel or the map type does not support it
(`snapshot(batch=False)` forces that; `m.read_method` tells which one ran). The map operations go
through libbpf (which bcc itself uses) rather than bcc's Table: bcc's batch loop passes one
variable as both the batch token and the count (it only works when one call returns everything),
its per-CPU tables refuse struct values whose size is not a multiple of 8, and its clear() of a
hash restarts the key walk after every delete.
"""
import collections
import collections.abc
import ctypes
import ctypes.util
import errno
import html
import ipaddress
import itertools
import json
import operator
import os
import re
import struct
import sys
import time
from pathlib import Path

from .errors import LabError, SetupError
from .reaper import PIN_ROOT

# map types whose keys are indexes, not values from packets
_INDEXED = {"array", "percpu_array", "devmap", "prog_array", "cpumap", "xskmap", "perf_event_array",
            "array_of_maps", "cgroup_array"}
KINDS = ("int", "be", "ipv4", "ipv4_host", "ipv6", "port", "proto", "ethertype", "action", "mac",
         "str", "bytes")
XDP_ACTIONS = ("XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT")
IP_PROTOS = {1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 17: "UDP", 41: "IPv6", 47: "GRE",
             50: "ESP", 51: "AH", 58: "ICMPv6", 132: "SCTP"}
ETHERTYPES = {0x0800: "IPv4", 0x0806: "ARP", 0x86DD: "IPv6", 0x8100: "802.1Q", 0x88A8: "802.1ad",
              0x8847: "MPLS", 0x88CC: "LLDP"}
MAP_TYPES = ("unspec", "hash", "array", "prog_array", "perf_event_array", "percpu_hash",
             "percpu_array", "stack_trace", "cgroup_array", "lru_hash", "lru_percpu_hash",
             "lpm_trie", "array_of_maps", "hash_of_maps", "devmap", "sockmap", "cpumap", "xskmap",
             "sockhash", "cgroup_storage", "reuseport_sockarray", "percpu_cgroup_storage", "queue",
             "stack", "sk_storage", "devmap_hash", "struct_ops", "ringbuf", "inode_storage",
             "task_storage", "bloom_filter", "user_ringbuf", "cgrp_storage", "arena")
ARRAYS = {"array", "percpu_array", "devmap", "cpumap", "xskmap", "cgroup_array"}
NOT_READABLE = {"prog_array", "perf_event_array", "ringbuf", "user_ringbuf", "queue", "stack",
                "bloom_filter", "stack_trace", "array_of_maps", "hash_of_maps", "sockmap",
                "sockhash", "reuseport_sockarray", "struct_ops", "arena"}
NATIVE = sys.byteorder
BATCH_CHUNK = 8192             # entries per BPF_MAP_LOOKUP_BATCH call

_ADDR_WORDS = {"ip", "ips", "ipv4", "ip4", "ipv6", "ip6", "addr", "addrs", "address", "addresses",
               "saddr", "daddr", "src", "srcs", "dst", "dsts", "sip", "dip", "srcip", "dstip",
               "source", "sources", "dest", "dests", "destination", "nexthop", "gateway", "gw"}
_PROTO_WORDS = {"proto", "protocol", "protos", "protocols", "ipproto", "l4proto", "nexthdr"}
_ETHERTYPE_NAMES = {"h_proto", "ethertype", "eth_type", "ether_type", "eth_proto", "ethproto",
                    "l3_proto", "l3proto", "ethertypes"}
_ACTION_WORDS = {"action", "actions", "verdict", "verdicts"}
_COUNT_WORDS = {"count", "counts", "counter", "counters", "cnt", "stats", "stat"}
_SHORT_PORT_WORDS = {"source", "dest", "src", "dst"}     # struct udphdr/tcphdr name ports so


def _words(name):
    return set(w for w in re.split(r"[^a-z0-9]+", (name or "").lower()) if w)


# -- libbpf ---------------------------------------------------------------------------------------
class _MapInfo(ctypes.Structure):
    """struct bpf_map_info (include/uapi/linux/bpf.h)."""
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("key_size", ctypes.c_uint32),
                ("value_size", ctypes.c_uint32), ("max_entries", ctypes.c_uint32),
                ("map_flags", ctypes.c_uint32), ("name", ctypes.c_char * 16),
                ("ifindex", ctypes.c_uint32), ("btf_vmlinux_value_type_id", ctypes.c_uint32),
                ("netns_dev", ctypes.c_uint64), ("netns_ino", ctypes.c_uint64),
                ("btf_id", ctypes.c_uint32), ("btf_key_type_id", ctypes.c_uint32),
                ("btf_value_type_id", ctypes.c_uint32), ("_pad", ctypes.c_uint32),
                ("map_extra", ctypes.c_uint64)]


class _BtfType(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("info", ctypes.c_uint32),
                ("size_or_type", ctypes.c_uint32)]


_libbpf = None


def libbpf():
    """The system libbpf (the one bcc links), with the prototypes we use."""
    global _libbpf
    if _libbpf is None:
        path = ctypes.util.find_library("bpf") or "libbpf.so.1"
        try:
            lib = ctypes.CDLL(path, use_errno=True)
        except OSError:
            raise SetupError("libbpf is not installed (bcc needs it too)",
                             "run 'sudo make install' (installs libbpf1 with python3-bpfcc)") from None
        vp, u32p, i = ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32), ctypes.c_int
        for name, args in {"bpf_map_lookup_batch": [i, vp, vp, vp, vp, u32p, vp],
                           "bpf_map_update_batch": [i, vp, vp, u32p, vp],
                           "bpf_map_delete_batch": [i, vp, u32p, vp],
                           "bpf_map_lookup_elem": [i, vp, vp],
                           "bpf_map_update_elem": [i, vp, vp, ctypes.c_uint64],
                           "bpf_map_delete_elem": [i, vp],
                           "bpf_map_get_next_key": [i, vp, vp],
                           "bpf_obj_pin": [i, ctypes.c_char_p],
                           "bpf_obj_get": [ctypes.c_char_p],
                           "bpf_obj_get_info_by_fd": [i, vp, u32p],
                           "libbpf_num_possible_cpus": []}.items():
            getattr(lib, name).argtypes, getattr(lib, name).restype = args, i
        lib.btf__load_from_kernel_by_id.argtypes, lib.btf__load_from_kernel_by_id.restype = \
            [ctypes.c_uint32], vp
        lib.btf__type_by_id.argtypes = [vp, ctypes.c_uint32]
        lib.btf__type_by_id.restype = ctypes.POINTER(_BtfType)
        lib.btf__name_by_offset.argtypes, lib.btf__name_by_offset.restype = \
            [vp, ctypes.c_uint32], ctypes.c_char_p
        lib.btf__free.argtypes, lib.btf__free.restype = [vp], None
        _libbpf = lib
    return _libbpf


def _err(rc):
    """errno of a failed libbpf call (libbpf 1.x returns -errno and sets errno)."""
    return -rc if rc < -1 else ctypes.get_errno()


def map_info(fd):
    info = _MapInfo()
    size = ctypes.c_uint32(ctypes.sizeof(info))
    rc = libbpf().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size))
    if rc != 0:
        raise LabError(f"cannot read map info of fd {fd}: {os.strerror(_err(rc))}")
    return info


# -- BTF: which typedefs (__be32 ...) and enums the program's C used --------------------------------
_BTF_ARRAY, _BTF_STRUCT, _BTF_UNION, _BTF_ENUM, _BTF_TYPEDEF, _BTF_ENUM64 = 3, 4, 5, 6, 8, 19
_BTF_QUALIFIERS = {9, 10, 11, 18}         # volatile, const, restrict, type_tag


def btf_hints(btf_id, *type_ids):
    """For each BTF type id: a tuple of the typedef/enum names on its way to the base type for a
    scalar ("__be32", "__u32"), or {field: hints} for a struct/union (anonymous members as
    "__anon0"..., as bcc names them; arrays give their element's hints). None without BTF."""
    if not btf_id:
        return [None] * len(type_ids)
    lib = libbpf()
    btf = lib.btf__load_from_kernel_by_id(btf_id)
    if not btf:
        return [None] * len(type_ids)
    try:
        def walk(tid, depth=0):
            names = []
            while depth < 64:
                depth += 1
                t = lib.btf__type_by_id(btf, tid)
                if not t:
                    return tuple(names)
                t = t.contents
                kind, vlen = (t.info >> 24) & 0x1F, t.info & 0xFFFF
                name = (lib.btf__name_by_offset(btf, t.name_off) or b"").decode()
                if kind == _BTF_TYPEDEF:
                    names.append(name)
                elif kind in (_BTF_STRUCT, _BTF_UNION):
                    members = (ctypes.c_uint32 * (3 * vlen)).from_address(
                        ctypes.addressof(t) + ctypes.sizeof(_BtfType))
                    out, anon = {}, 0
                    for m in range(vlen):
                        mname = (lib.btf__name_by_offset(btf, members[3 * m]) or b"").decode()
                        if not mname:
                            mname, anon = f"__anon{anon}", anon + 1
                        out[mname] = walk(members[3 * m + 1], depth)
                    return out
                elif kind == _BTF_ARRAY:
                    elem = (ctypes.c_uint32 * 3).from_address(ctypes.addressof(t) + ctypes.sizeof(_BtfType))
                    tid = elem[0]
                    continue
                elif kind in (_BTF_ENUM, _BTF_ENUM64):
                    return tuple(names + ["enum " + name])
                elif kind not in _BTF_QUALIFIERS:
                    return tuple(names)
                tid = t.size_or_type
            return tuple(names)
        return [walk(t) if t else None for t in type_ids]
    finally:
        lib.btf__free(btf)


# -- codecs: raw bytes → typed values -------------------------------------------------------------
class Codec:
    """How one key, value or field is read from raw map bytes: `decode(buf, offset)`.
    `kind` is one of KINDS; a struct has `fields` [(name, codec, offset)] and makes `tuple_type`
    values, an array has `elem` (the codec of its items) and makes tuples. `counter` marks
    numbers that add up (summed over CPUs, turned into rates)."""

    def __init__(self, kind, decode, fields=None, tuple_type=None, elem=None, bulk=None):
        self.kind, self.decode = kind, decode
        self.fields, self.tuple_type, self.elem = fields, tuple_type, elem
        self.counter = kind in ("int", "be")
        self._bulk = bulk

    def column(self, mv, n, stride, offset=0):
        """The values of `n` records `stride` bytes apart in byte memoryview `mv`, this one at
        `offset` in each: an iterable decoded in bulk (struct.iter_unpack or a memoryview cast,
        one pass in C) where the codec allows, else one decode() per record."""
        if self._bulk is not None:
            return self._bulk(mv, n, stride, offset)
        if self.fields is not None and all(off is not None for _, _, off in self.fields):
            cols = [c.column(mv, n, stride, offset + off) for _, c, off in self.fields]
            return map(self.tuple_type._make, zip(*cols))
        decode = self.decode
        return (decode(mv, offset + i * stride) for i in range(n))

    def kinds(self):
        if self.fields is None:
            return self.kind
        return {name: c.kinds() for name, c, _ in self.fields}


def _int_reader(size, signed, order):
    fmt = {1: "b", 2: "h", 4: "i", 8: "q"}.get(size)
    if fmt is None:
        return lambda b, o: int.from_bytes(b[o:o + size], order, signed=signed)
    unpack = struct.Struct(("<" if order == "little" else ">") + (fmt if signed else fmt.upper())).unpack_from
    return lambda b, o: unpack(b, o)[0]


def _named(value, names):
    return names.get(value, value)


def _scalar_codec(kind, size, signed=False):
    native = _int_reader(size, signed, NATIVE)
    big = _int_reader(size, False, "big")

    def low16_be(b, o):                  # a __be16 as loaded, possibly widened into a u32
        v = native(b, o) & 0xFFFF if size != 2 else big(b, o)
        return v if size == 2 else int.from_bytes(v.to_bytes(2, NATIVE), "big")

    decode = {
        "int": native,
        "be": big,
        "ipv4": lambda b, o: ipaddress.IPv4Address(bytes(b[o:o + 4])),
        "ipv4_host": lambda b, o: ipaddress.IPv4Address(native(b, o) & 0xFFFFFFFF),
        "ipv6": lambda b, o: ipaddress.IPv6Address(bytes(b[o:o + 16])),
        "port": low16_be,
        "ethertype": lambda b, o: _named(low16_be(b, o), ETHERTYPES),
        "proto": lambda b, o: _named(native(b, o), IP_PROTOS),
        "action": lambda b, o: _named(native(b, o), dict(enumerate(XDP_ACTIONS))),
        "mac": lambda b, o: ":".join(f"{x:02x}" for x in bytes(b[o:o + 6])),
        "str": lambda b, o: bytes(b[o:o + size]).split(b"\0", 1)[0].decode("utf-8", "replace"),
        "bytes": lambda b, o: bytes(b[o:o + size]),
    }[kind]
    return Codec(kind, decode, bulk=_bulk_reader(kind, size, signed))


def _ints(code, order):
    """bulk(mv, n, stride, offset) → the integers of struct code `code` in byte order `order`."""
    size = struct.calcsize(code)

    def bulk(mv, n, stride, offset):
        if n == 0:
            return ()
        if order == "=" and stride == size and offset == 0:
            return mv[:n * size].cast(code)                  # iterated lazily, in C
        st = struct.Struct(f"{order}{offset}x{code}{stride - offset - size}x")
        return map(operator.itemgetter(0), st.iter_unpack(mv[:n * stride]))
    return bulk


def _bulk_reader(kind, size, signed):
    """A bulk reader for scalar `kind` of `size` bytes, or None (then one decode per record)."""
    code = {1: "b", 2: "h", 4: "i", 8: "q"}.get(size)
    if code is None:
        return None
    ucode = code.upper()
    native, big = _ints(code if signed else ucode, "="), _ints(ucode, ">")
    swap16 = (lambda v: v) if NATIVE == "big" else (lambda v: ((v & 0xFF) << 8) | ((v >> 8) & 0xFF))

    def low16_be(mv, n, stride, offset):
        if size == 2:
            return big(mv, n, stride, offset)
        return map(lambda v: swap16(v & 0xFFFF), _ints(ucode, "=")(mv, n, stride, offset))

    def named(reader, names):
        return lambda mv, n, stride, offset: map(lambda v: names.get(v, v),
                                                 reader(mv, n, stride, offset))
    actions = dict(enumerate(XDP_ACTIONS))
    return {
        "int": native,
        "be": big,
        "ipv4": (lambda mv, n, st, off: map(ipaddress.IPv4Address, big(mv, n, st, off)))
        if size == 4 else None,
        "ipv4_host": (lambda mv, n, st, off: map(lambda v: ipaddress.IPv4Address(v & 0xFFFFFFFF),
                                                 native(mv, n, st, off))) if size == 4 else None,
        "port": low16_be,
        "ethertype": named(low16_be, ETHERTYPES),
        "proto": named(native, IP_PROTOS),
        "action": named(native, actions),
    }.get(kind)


_SIZES = {"ipv4": (4,), "ipv4_host": (4,), "ipv6": (16,), "port": (2, 4), "ethertype": (2, 4),
          "mac": (6,), "int": (1, 2, 4, 8, 16), "be": (1, 2, 4, 8, 16), "proto": (1, 2, 4, 8),
          "action": (1, 2, 4, 8)}


def _infer(name, size, hints, integer, top, byte_array=False):
    """The kind of a scalar named `name` (rules 3-5 in the module doc)."""
    hints = hints if isinstance(hints, tuple) else ()
    words, lname = _words(name), (name or "").lower()
    be = any(h.startswith("__be") for h in hints)
    if "enum xdp_action" in hints:
        return "action"
    if not integer:                      # an array: of bytes (u8[16], u8[6]) or of u32[4]
        if size == 16 and words & _ADDR_WORDS:
            return "ipv6"
        return "mac" if size == 6 and byte_array else None
    if lname in _ETHERTYPE_NAMES or (words & _PROTO_WORDS and (size == 2 or be)):
        return "ethertype" if size in (2, 4) else "be"
    if words & _PROTO_WORDS:
        return "proto"
    if size in (2, 4) and (any("port" in w for w in words)
                           or (size == 2 and words & _SHORT_PORT_WORDS and not top)):
        return "port"
    if size == 4 and words & _ADDR_WORDS:
        return "ipv4"
    if words & _ACTION_WORDS and not top:
        return "action"
    if be:
        return "ipv4" if size == 4 and top else "be"
    return "int"


def _ctype_integer(t):
    code = getattr(t, "_type_", None)
    return isinstance(code, str) and code in "bBhHiIlLqQ?", isinstance(code, str) and code in "bhilq"


def make_codec(ctype, name=None, hints=None, declared=None, top=False):
    """A Codec for bcc's ctypes type `ctype`; `name` is the field (or, with top=True, the map)
    name, `hints` the BTF hints, `declared` a kind or {field: kind} given by the learner."""
    size = ctypes.sizeof(ctype)
    if isinstance(declared, dict) and not issubclass(ctype, (ctypes.Structure, ctypes.Union)):
        raise LabError(f"{name or 'this'} is not a struct, so it has no fields to declare",
                       f"declare it with one kind: one of {', '.join(KINDS)}")
    if issubclass(ctype, (ctypes.Structure, ctypes.Union)) and not isinstance(declared, str):
        hints = hints if isinstance(hints, dict) else {}
        declared = dict(declared or {})
        if ctype.__name__ == "in6_addr" and not declared:
            return _scalar_codec("ipv6", 16)
        fields = []                                  # (name, codec, offset or None for bits)
        for f in ctype._fields_:
            fname, ftype = f[0], f[1]
            if fname.startswith("__pad"):
                continue
            off = getattr(ctype, fname).offset
            if len(f) == 3:                              # a bitfield: read through ctypes
                fields.append((fname, _scalar_codec("int", 8), None))
            elif fname in getattr(ctype, "_anonymous_", ()):   # anonymous union/struct: flatten
                own = {n: declared.pop(n) for n in [g[0] for g in ftype._fields_] if n in declared}
                sub = make_codec(ftype, fname, hints.get(fname), own)
                fields += [(n, c, None if o is None else off + o) for n, c, o in sub.fields]
            else:
                fields.append((fname, make_codec(ftype, fname, hints.get(fname),
                                                 declared.pop(fname, None)), off))
        if declared:
            raise LabError(f"struct {ctype.__name__} has no field {', '.join(map(repr, declared))}",
                           f"its fields: {', '.join(n for n, _, _ in fields)}")
        tuple_type = collections.namedtuple(ctype.__name__ or "struct", [n for n, _, _ in fields],
                                            rename=True)
        subs = [(n, c.decode, off) for n, c, off in fields]
        bits = any(off is None for _, _, off in fields)

        def decode(b, o):
            obj = ctype.from_buffer_copy(b[o:o + size]) if bits else None
            return tuple_type(*[getattr(obj, n) if off is None else d(b, o + off)
                                for n, d, off in subs])
        return Codec(None, decode, fields, tuple_type)
    if issubclass(ctype, ctypes.Array):
        elem = ctype._type_
        if elem is ctypes.c_char and declared in (None, "str"):
            return _scalar_codec("str", size)
        esize = ctypes.sizeof(elem)
        kind = declared or _infer(name, size, hints, False, top, esize == 1)
        if kind in ("str", "bytes") or (kind != "int" and size in _SIZES.get(kind, ())):
            return _scalar_codec(kind, size)                 # the whole array is one value
        sub = make_codec(elem, name, hints, kind)
        offsets = range(0, size, esize)
        return Codec(f"{sub.kinds()}[{ctype._length_}]",
                     lambda b, o: tuple(sub.decode(b, o + i) for i in offsets), elem=sub)
    integer, signed = _ctype_integer(ctype)
    kind = declared or _infer(name, size, hints, integer, top) or "bytes"
    _check_size(kind, size, name)
    return _scalar_codec(kind, size, signed)


def _check_size(kind, size, name):
    if kind not in KINDS:
        raise LabError(f"unknown kind {kind!r}", f"use one of {', '.join(KINDS)}")
    if kind in _SIZES and size not in _SIZES[kind]:
        raise LabError(f"{name or 'this'} is {size} bytes, which cannot hold kind {kind!r}",
                       f"kind {kind!r} needs {' or '.join(map(str, _SIZES[kind]))} bytes")


# -- per-CPU sums and rates ------------------------------------------------------------------------
def combine(codec, values):
    """One value from the per-CPU copies: counters summed, other fields from the first CPU where
    the entry is not zero."""
    if codec.fields is not None:
        return codec.tuple_type(*(combine(c, [v[i] for v in values])
                                  for i, (_, c, _) in enumerate(codec.fields)))
    if codec.elem is not None:
        return tuple(combine(codec.elem, [v[i] for v in values]) for i in range(len(values[0])))
    if codec.counter:
        return sum(values)
    return next((v for v in values if v), values[0])


def _rate(codec, prev, cur, dt):
    if isinstance(cur, tuple):                           # a struct or an array: item by item
        subs = ([c for _, c, _ in codec.fields] if codec and codec.fields is not None
                else [codec and codec.elem] * len(cur))
        prev = prev if prev is not None else [None] * len(cur)
        items = [_rate(c, p, x, dt) for c, p, x in zip(subs, prev, cur)]
        return type(cur)(*items) if hasattr(cur, "_fields") else tuple(items)
    counter = codec.counter if codec else type(cur) is int
    if not counter:
        return cur
    prev = prev or 0
    return (cur - prev if cur >= prev else cur) / dt      # a counter that went down was reset


def rates(prev, cur, dt, codec=None):
    """Per-second rates from two snapshots taken `dt` seconds apart: {key: rate} for every key of
    `cur` (a key new since `prev` counts from 0, a counter that went down is taken as reset).
    Integers are counters; in named tuples every int field is, the others are copied from `cur`.
    `codec` (a Map's value codec) limits this to the fields typed as counters."""
    if dt <= 0:
        raise LabError("rates need two snapshots taken at different times (dt > 0)")
    return {k: _rate(codec, prev.get(k), v, dt) for k, v in cur.items()}


# -- maps -----------------------------------------------------------------------------------------
def table_names(bpf):
    """Names of every map declared by a bcc module (a bcc.BPF, or the compile helper's Loaded)."""
    if hasattr(bpf, "table_names"):
        return bpf.table_names()
    from bcc import libbcc
    lib = libbcc.lib
    lib.bpf_num_tables.restype = ctypes.c_size_t
    lib.bpf_num_tables.argtypes = [ctypes.c_void_p]
    lib.bpf_table_name.restype = ctypes.c_char_p
    lib.bpf_table_name.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return [lib.bpf_table_name(bpf.module, i).decode() for i in range(lib.bpf_num_tables(bpf.module))]


def table_facts(bpf, name):
    """(fd, key description, leaf description) of map `name`, as bcc describes them (JSON)."""
    info = getattr(bpf, "table_info", {}).get(name)
    if info is not None:
        return info.fd, info.key_desc, info.leaf_desc
    from bcc import libbcc
    lib, bname = libbcc.lib, name.encode()
    return (lib.bpf_table_fd(bpf.module, bname), lib.bpf_table_key_desc(bpf.module, bname).decode(),
            lib.bpf_table_leaf_desc(bpf.module, bname).decode())


class Maps(collections.abc.Mapping):
    """program.maps["name"] → Map."""

    def __init__(self, program):
        self.program = program
        self._names = table_names(program.bpf)
        self._maps = {}

    def __contains__(self, name):
        return name in self._names

    def __getitem__(self, name):
        if name not in self._names:
            raise LabError(f"the program has no map {name!r}",
                           f"its maps: {', '.join(self._names) or 'none'}")
        if name not in self._maps:
            self._maps[name] = Map(self.program, name)
        return self._maps[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)

    def __repr__(self):
        return f"<Maps {', '.join(self._names)}>"


class Map:
    """One BPF map of a program; see the module doc."""

    def __init__(self, program, name):
        from bcc import BPF
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
        if self.kind not in NOT_READABLE:
            # the ctypes types bcc derives from the C declarations (without building its Table)
            self.Key = BPF._decode_table_type(json.loads(key_desc))
            self.Leaf = BPF._decode_table_type(json.loads(leaf_desc))
        self._hints = btf_hints(info.btf_id, info.btf_key_type_id, info.btf_value_type_id)
        self._declared = {"key": None, "value": None}
        self._batch_ok = self.kind in {"hash", "lru_hash", "percpu_hash", "lru_percpu_hash",
                                       "array", "percpu_array"}
        self._last = None                              # (time, snapshot) for rates()
        self.read_method = None
        self._codecs()

    # -- typing -------------------------------------------------------------------------------------
    def _key_is_action(self):
        words = _words(self.name)
        return (words & _ACTION_WORDS or "xdp_stats" in self.name.lower()
                or (self.kind in ("array", "percpu_array") and self.max_entries == 5
                    and words & _COUNT_WORDS))

    def _codecs(self):
        if self.Key is None:
            self.key_codec = self.value_codec = None
            return
        key_kind = self._declared["key"]
        integer, _ = _ctype_integer(self.Key)
        if key_kind is None and integer and self._key_is_action():
            key_kind = "action"
        elif key_kind is None and integer and self.kind in _INDEXED:
            key_kind = "int"      # an index (a devmap slot, a CPU...), whatever the map's name
        self.key_codec = make_codec(self.Key, self.name, self._hints[0], key_kind, top=True)
        self.value_codec = make_codec(self.Leaf, None, self._hints[1], self._declared["value"],
                                      top=True)

    def declare(self, key=None, value=None):
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
    def kinds(self):
        """How keys and values are read: {'key': kind or {field: kind}, 'value': ...}."""
        self._readable()
        return {"key": self.key_codec.kinds(), "value": self.value_codec.kinds()}

    # -- reading ------------------------------------------------------------------------------------
    def _check(self):
        if self.program.bpf is None:
            raise LabError(f"the program owning map {self.name!r} is closed",
                           "load it again (lab.load(...)) and read its maps before closing it")

    def _readable(self):
        self._check()
        if self.key_codec is None:
            how = {"ringbuf": "it carries events, not entries",
                   "perf_event_array": "it carries events, not entries",
                   "prog_array": "it holds programs for tail calls"}.get(self.kind, "")
            raise LabError(f"map {self.name!r} is a {self.kind} map, which has no snapshot"
                           + (f": {how}" if how else ""),
                           f"read it with bcc's own API: prog.bpf[{self.name!r}]")

    @property
    def table(self):
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
            err = _err(rc) if rc else 0
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
        self._readable()
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

    def snapshot(self, per_cpu=False, batch=None, skip_zero=False):
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

    def __len__(self):
        """Entries in the map (for arrays: max_entries — every slot of an array exists)."""
        if self.kind in ARRAYS:
            return self.max_entries
        return sum(n for _, _, n in self._raw())

    def rates(self, interval=1.0):
        """Per-second rates of every counter (and every counter field of struct values) since the
        previous call of rates(); the first call measures over `interval` seconds."""
        if self._last is None:
            self._last = (time.monotonic(), self.snapshot())
            time.sleep(interval)
        t0, prev = self._last
        now, cur = time.monotonic(), self.snapshot()
        self._last = (now, cur)
        return rates(prev, cur, now - t0, self.value_codec)

    # -- writing ------------------------------------------------------------------------------------
    def clear(self):
        """Remove every entry (arrays: set every value to zero)."""
        self._readable()
        lib = libbpf()
        if self.kind in ARRAYS:
            n = self.max_entries
            keys = b"".join(i.to_bytes(4, NATIVE) for i in range(n))
            zeros = ctypes.create_string_buffer(n * self._vsize)
            count = ctypes.c_uint32(n)
            if lib.bpf_map_update_batch(self.fd, keys, zeros, ctypes.byref(count), None) != 0:
                for i in range(n):
                    lib.bpf_map_update_elem(self.fd, keys[4 * i:4 * i + 4], zeros, 0)
            return
        for keys, _, n in self._raw():      # keys first: deleting while walking restarts the walk
            count = ctypes.c_uint32(n)
            if lib.bpf_map_delete_batch(self.fd, keys, ctypes.byref(count), None) != 0:
                for i in range(n):
                    lib.bpf_map_delete_elem(self.fd, keys[i * self.key_size:(i + 1) * self.key_size])

    def pin(self, path=None):
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
            raise LabError(f"pinning map {self.name!r} at {target} failed: {os.strerror(_err(rc))}")
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

    def _describe(self):
        kinds = ""
        if self.key_codec is not None:
            kinds = f", key {self.key_codec.kinds()}, value {self.value_codec.kinds()}"
        cpu = f", summed over {self.ncpus} CPUs" if self.percpu else ""
        return f"{self.kind}, max_entries {self.max_entries}{kinds}{cpu}"

    def __repr__(self, limit=20):
        head = f"<Map {self.name}: {self._describe()}>"
        rows, total, problem = self._shown(limit)
        if problem or self.key_codec is None:
            return head + (f" ({problem})" if problem else "")
        lines = [f"  {k}: {v}" for k, v in rows]
        zeros = " (zero entries hidden)" if self.kind in ARRAYS else ""
        more = [f"  … {total - len(rows)} more"] if total > len(rows) else []
        return "\n".join([head + zeros] + lines + more) if lines else head + " empty" + zeros

    def widget(self, chart=False, **options):
        """A live view for a notebook: a table (xdplab.widgets.MapView; options top=20,
        interval=0.5, sort="value"|"key", rates=True, per_cpu=False, keys=None, field=None) or,
        with chart=True, a line chart of per-second rates per key (xdplab.widgets.RatesChart;
        options keys=None, field=None, window=30, interval=0.5). `keys` picks the rows/lines,
        `field` the counter of struct values. Stops when closed or when the lab closes."""
        from . import widgets
        return widgets.RatesChart(self, **options) if chart else widgets.MapView(self, **options)

    def _repr_mimebundle_(self, include=None, exclude=None):
        """In a Jupyter kernel a map that ends a cell shows as its live MapView; front-ends
        without widgets (and nbconvert) show _repr_html_, which IPython adds next to it."""
        from . import widgets
        return widgets.display_bundle(self, include, exclude)

    def _repr_html_(self, limit=50):
        def e(x):
            return html.escape(str(x))
        head = f"<b>{e(self.name)}</b> <small>{e(self._describe())}</small>"
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
