"""Codecs: how a key, value or field is read from raw map bytes (one record at a time, or a whole
batch buffer's column at once), chosen from bcc's ctypes type, BTF hints, names and declare()."""
import collections
import ctypes
import ipaddress
import operator
import struct

from xdplab.errors import LabError
from xdplab.maps.kinds import (ETHERTYPES, IP_PROTOS, KINDS, NATIVE, XDP_ACTIONS, _ACTION_WORDS,
                               _ADDR_WORDS, _ETHERTYPE_NAMES, _PROTO_WORDS, _SHORT_PORT_WORDS,
                               _words)


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

