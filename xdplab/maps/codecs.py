"""Codecs: how a key, value or field is read from raw map bytes (one record at a time, or a whole
batch buffer's column at once) and written back to them (encode), chosen from bcc's ctypes type,
BTF hints, names and declare()."""
from __future__ import annotations

import collections
import ctypes
import ipaddress
import operator
import struct
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, Union

from xdplab.errors import LabError
from xdplab.maps.kinds import ETHERTYPES, IP_PROTOS, KINDS, NATIVE, XDP_ACTIONS, infer_kind

if TYPE_CHECKING:
    from xdplab.maps.btf import Hints

# The ctypes objects encode() writes as they are (bcc's Key and Leaf are of these types).
CTYPES = (ctypes._SimpleCData, ctypes.Structure, ctypes.Union, ctypes.Array)
# What decode() gives: an int, a name ("UDP", "XDP_PASS", "IPv4") or a number it has no name
# for, an IPv4/IPv6 address, a MAC or a C string (str), bytes, or a tuple (a named tuple for a
# struct, a plain one for an array or for one value per CPU).
Decoded = Union[int, str, bytes, ipaddress.IPv4Address, ipaddress.IPv6Address, tuple]
# What encode() takes: what decode() gives, an address or a MAC as text, a dict of some of a
# struct's fields, a list for a tuple, bytes-like objects, or a ctypes object of the right size.
Encodable = Union[Decoded, dict[str, Any], list[Any], bytearray, memoryview, ctypes._SimpleCData,
                  ctypes.Structure, ctypes.Union, ctypes.Array]
# A kind (one of KINDS, or "int[4]" for an array), or {field: kinds} for a struct: what
# Codec.kinds() gives and what Map.declare() takes.
Kinds = Union[str, dict[str, "Kinds"]]
Buffer = Union[bytes, bytearray, memoryview]


class Codec:
    """How one key, value or field is read from raw map bytes: `decode(buf, offset)`, and written
    to them: `encode(value)` → `size` bytes (the inverse: encode(decode(b, 0)) gives b back, but
    for padding and bytes a kind does not read).
    `kind` is one of KINDS; a struct has `fields` [(name, codec, offset)] and makes `tuple_type`
    values, an array has `elem` (the codec of its items) and makes tuples. `counter` marks
    numbers that add up (summed over CPUs, turned into rates)."""

    def __init__(self, kind: str | None, decode: Callable[[Buffer, int], Decoded],
                 fields: Sequence[tuple[str, Codec, int | None]] | None = None,
                 tuple_type: type[tuple] | None = None, elem: Codec | None = None,
                 bulk: Callable[[memoryview, int, int, int], Iterable[Decoded]] | None = None,
                 encode: Callable[[Any], bytes] | None = None, size: int | None = None) -> None:
        self.kind, self.decode = kind, decode
        self.fields, self.tuple_type, self.elem = fields, tuple_type, elem
        self.counter = kind in ("int", "be")
        self._bulk = bulk
        self._encode, self.size = encode, size

    def encode(self, value: Encodable) -> bytes:
        """The `size` bytes that hold `value` — given as decode() gives it out (an int, an
        IPv4Address, "UDP", a named tuple...), as a ctypes object of the same size (bcc's Key and
        Leaf), or for a struct as a dict of some of its fields (the others zero). Raises LabError
        when the value has the wrong type or does not fit."""
        if isinstance(value, CTYPES):
            if ctypes.sizeof(value) != self.size:
                raise LabError(f"{short_repr(value)} is a ctypes {type(value).__name__} of "
                               f"{ctypes.sizeof(value)} bytes; this takes {self.size} bytes",
                               f"give {self.example()}")
            return bytes(value)
        return self._encode(value)

    def zero(self) -> Decoded:
        """The value that all-zero bytes hold (what an array slot holds before any write)."""
        return self.decode(bytes(self.size), 0)

    def example(self) -> str:
        """What to give encode(), in words with an example (for hints)."""
        if self.fields is not None:
            names = [n for n, _, _ in self.fields]
            return (f"a {self.tuple_type.__name__}({', '.join(names)}), a tuple of {len(names)} "
                    f"values or a dict of fields, e.g. {{{names[0]!r}: ...}}")
        if self.elem is not None:
            return f"a tuple of {self.size // self.elem.size} items, each {self.elem.example()}"
        return _EXAMPLES[self.kind].format(size=self.size, bits=8 * self.size)

    def column(self, mv: memoryview, n: int, stride: int, offset: int = 0) -> Iterable[Decoded]:
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

    def kinds(self) -> Kinds:
        """This codec's kind, or {field: kinds} for a struct (Map.kinds)."""
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
    return Codec(kind, decode, bulk=_bulk_reader(kind, size, signed),
                 encode=_scalar_encoder(kind, size, signed), size=size)


_EXAMPLES = {
    "int": "an int that fits {bits} bits, e.g. 5",
    "be": "an int that fits {bits} bits, e.g. 5 (stored in network byte order)",
    "ipv4": "an IPv4 address, e.g. IPv4Address('10.11.0.1') or '10.11.0.1'",
    "ipv4_host": "an IPv4 address, e.g. IPv4Address('10.11.0.1') or '10.11.0.1'",
    "ipv6": "an IPv6 address, e.g. IPv6Address('fd00::1') or 'fd00::1'",
    "port": "a port number from 0 to 65535, e.g. 53",
    "proto": "a protocol name such as 'UDP', 'TCP', 'ICMP', or its number (17)",
    "ethertype": "an EtherType name such as 'IPv4', 'IPv6', 'ARP', or its number (0x0800)",
    "action": "an XDP action such as 'XDP_PASS' or 'XDP_DROP', or its number (2)",
    "mac": "a MAC address, e.g. '02:58:4c:00:00:01'",
    "str": "a str of at most {size} bytes",
    "bytes": "bytes of length {size}",
}


def short_repr(value: object, limit: int = 100) -> str:
    """repr(value) as error messages show it: at most `limit` characters, "…" ending a cut one."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _misfit(value, kind, size, why=None):
    """The LabError for a value that cannot be stored as `kind`."""
    why = why or f"is of type {type(value).__name__}"
    return LabError(f"{short_repr(value)} {why}", f"give {_EXAMPLES[kind].format(size=size, bits=8 * size)}")


def _number(value, kind, size, signed=False, names=None):
    """`value` as an int that fits `size` bytes; a name of `names` ({number: name}) too."""
    if isinstance(value, str) and names:
        wanted = value.strip().upper()
        for number, name in names.items():
            if str(name).upper() == wanted:
                return number
        raise _misfit(value, kind, size, f"is not a name this knows ({', '.join(map(str, names.values()))})")
    try:
        number = operator.index(value)
    except TypeError:
        raise _misfit(value, kind, size) from None
    lo, hi = (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if signed else (0, (1 << 8 * size) - 1)
    if kind in ("port", "ethertype"):
        lo, hi = 0, 0xFFFF
    if not lo <= number <= hi:
        what = {"port": "a port", "ethertype": "an EtherType"}.get(
            kind, f"a {'signed' if signed else 'unsigned'} {8 * size}-bit number")
        raise LabError(f"{number} does not fit in {what} (from {lo} to {hi})",
                       f"give a number from {lo} to {hi}")
    return number


def _address(value, kind, size, cls):
    version = 4 if cls is ipaddress.IPv4Address else 6
    if isinstance(value, cls):
        return value
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):     # the other version
        raise _misfit(value, kind, size, f"is an IPv{value.version} address")
    if isinstance(value, (str, bytes, int)) and not isinstance(value, bool):
        try:
            return cls(value)
        except ValueError:
            raise _misfit(value, kind, size, f"is not an IPv{version} address") from None
    raise _misfit(value, kind, size)


def _scalar_encoder(kind, size, signed=False):
    """encode(value) → `size` bytes for scalar `kind`: the inverse of _scalar_codec's decode."""
    def native(v):
        return v.to_bytes(size, NATIVE, signed=signed)

    def be16(number):                      # the inverse of low16_be: network order, maybe widened
        if size == 2:
            return number.to_bytes(2, "big")
        return int.from_bytes(number.to_bytes(2, "big"), NATIVE).to_bytes(size, NATIVE)

    def mac(v):
        if isinstance(v, (bytes, bytearray)) and len(v) == 6:
            return bytes(v)
        parts = v.replace("-", ":").split(":") if isinstance(v, str) else []
        try:
            if len(parts) == 6 and all(1 <= len(p) <= 2 for p in parts):
                return bytes(int(p, 16) for p in parts)
        except ValueError:
            pass
        raise _misfit(v, "mac", size, None if not isinstance(v, str) else "is not a MAC address")

    def text(v):
        if isinstance(v, str):
            v = v.encode()
        if not isinstance(v, (bytes, bytearray)):
            raise _misfit(v, "str", size)
        if len(v) > size:
            raise LabError(f"{short_repr(v)} is {len(v)} bytes long; the char array holds {size}",
                           f"give a shorter str (at most {size} bytes)")
        return bytes(v).ljust(size, b"\0")

    def raw(v):
        if not isinstance(v, (bytes, bytearray, memoryview)) or len(v) != size:
            raise _misfit(v, "bytes", size, f"is not {size} bytes" if isinstance(
                v, (bytes, bytearray, memoryview)) else None)
        return bytes(v)

    actions = dict(enumerate(XDP_ACTIONS))
    return {
        "int": lambda v: native(_number(v, kind, size, signed)),
        "be": lambda v: _number(v, kind, size).to_bytes(size, "big"),
        "ipv4": lambda v: _address(v, kind, size, ipaddress.IPv4Address).packed,
        "ipv4_host": lambda v: int(_address(v, kind, size, ipaddress.IPv4Address)).to_bytes(4, NATIVE),
        "ipv6": lambda v: _address(v, kind, size, ipaddress.IPv6Address).packed,
        "port": lambda v: be16(_number(v, kind, size)),
        "ethertype": lambda v: be16(_number(v, kind, size, names=ETHERTYPES)),
        "proto": lambda v: native(_number(v, kind, size, signed, names=IP_PROTOS)),
        "action": lambda v: native(_number(v, kind, size, signed, names=actions)),
        "mac": mac,
        "str": text,
        "bytes": raw,
    }[kind]


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


def ctype_integer(t: type) -> tuple[bool, bool]:
    """(whether ctypes type `t` is an integer, whether it is a signed one)."""
    code = getattr(t, "_type_", None)
    return isinstance(code, str) and code in "bBhHiIlLqQ?", isinstance(code, str) and code in "bhilq"


def make_codec(ctype: type, name: str | None = None, hints: Hints = None,
               declared: Kinds | None = None, top: bool = False) -> Codec:
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
        return Codec(None, decode, fields, tuple_type, size=size,
                     encode=_struct_encoder(ctype, fields, tuple_type, size))
    if issubclass(ctype, ctypes.Array):
        elem = ctype._type_
        if elem is ctypes.c_char and declared in (None, "str"):
            return _scalar_codec("str", size)
        esize = ctypes.sizeof(elem)
        kind = declared or infer_kind(name, size, hints, False, top, esize == 1)
        if kind in ("str", "bytes") or (kind != "int" and size in _SIZES.get(kind, ())):
            return _scalar_codec(kind, size)                 # the whole array is one value
        sub = make_codec(elem, name, hints, kind)
        offsets = range(0, size, esize)
        def encode_array(v):
            if not isinstance(v, (tuple, list)) or len(v) != len(offsets):
                raise LabError(f"{short_repr(v)} is not a tuple of {len(offsets)} items",
                               f"give a tuple of {len(offsets)} items, each {sub.example()}")
            return b"".join(encode_part(sub, x, f"item {i}") for i, x in enumerate(v))
        return Codec(f"{sub.kinds()}[{ctype._length_}]",
                     lambda b, o: tuple(sub.decode(b, o + i) for i in offsets), elem=sub,
                     encode=encode_array, size=size)
    integer, signed = ctype_integer(ctype)
    kind = declared or infer_kind(name, size, hints, integer, top) or "bytes"
    _check_size(kind, size, name)
    return _scalar_codec(kind, size, signed)


def encode_part(codec: Codec, value: Encodable, where: str) -> bytes:
    """codec.encode(value), its errors saying `where` (a field name, an item number)."""
    try:
        return codec.encode(value)
    except LabError as e:
        raise LabError(f"{where}: {e.message}", e.hint) from None


def _struct_encoder(ctype, fields, tuple_type, size):
    """encode(value) for a struct (or union) whose fields are [(name, codec, offset)] (offset
    None: a bitfield, written through ctypes). Fields left out of a dict are zero."""
    names = [n for n, _, _ in fields]
    shown = f"{ctype.__name__ or 'struct'}({', '.join(names)})"

    def items(v):
        if isinstance(v, dict):
            unknown = [k for k in v if k not in names]
            if unknown:
                raise LabError(f"struct {ctype.__name__} has no field {', '.join(map(repr, unknown))}",
                               f"its fields: {', '.join(names)}")
            return [(n, v[n]) for n in names if n in v]
        if isinstance(v, (tuple, list)):
            if len(v) != len(names):
                raise LabError(f"{short_repr(v)} has {len(v)} values; struct {shown} has {len(names)}",
                               f"give one value per field: {tuple_type.__name__}({', '.join(names)}), "
                               "or a dict of the fields to set")
            return list(zip(names, v))
        raise LabError(f"{short_repr(v)} is of type {type(v).__name__}, not a struct {shown}",
                       f"give a {tuple_type.__name__}(...), a tuple of {len(names)} values, or a "
                       f"dict such as {{{names[0]!r}: ...}}")
    by_name = {n: (c, off) for n, c, off in fields}

    def encode(v):
        buf, bits = bytearray(size), []
        for n, x in items(v):
            c, off = by_name[n]
            if off is None:
                bits.append((n, x))
                continue
            b = encode_part(c, x, f"field {n}")
            if any(b):          # zeros need no write (and do not clobber a union's other member)
                buf[off:off + len(b)] = b
        if bits:
            obj = ctype.from_buffer(buf)
            for n, x in bits:
                try:
                    setattr(obj, n, operator.index(x))
                except TypeError:
                    raise LabError(f"field {n}: {short_repr(x)} is of type {type(x).__name__}",
                                   "give an int") from None
                if getattr(obj, n) != x:
                    raise LabError(f"field {n}: {x} does not fit in its bits",
                                   f"give a smaller number (the field reads back as {getattr(obj, n)})")
            del obj
        return bytes(buf)
    return encode


def _check_size(kind, size, name):
    if kind not in KINDS:
        raise LabError(f"unknown kind {kind!r}", f"use one of {', '.join(KINDS)}")
    if kind in _SIZES and size not in _SIZES[kind]:
        raise LabError(f"{name or 'this'} is {size} bytes, which cannot hold kind {kind!r}",
                       f"kind {kind!r} needs {' or '.join(map(str, _SIZES[kind]))} bytes")

