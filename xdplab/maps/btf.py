"""BTF: which typedefs (__be32 ...) and enums the program's C used, read from the program's BTF
(which bcc loads with it) through libbpf."""
from __future__ import annotations

import ctypes
from typing import Union

from xdplab.kernel.constants import (BTF_KIND_ARRAY, BTF_KIND_ENUM, BTF_KIND_ENUM64,
                                     BTF_KIND_QUALIFIERS, BTF_KIND_STRUCT, BTF_KIND_TYPEDEF,
                                     BTF_KIND_UNION)
from xdplab.kernel.libbpf import BtfType, libbpf

# The hints of one type: typedef/enum names for a scalar, {field: hints} for a struct or union,
# None without BTF.
Hints = Union[tuple[str, ...], dict[str, "Hints"], None]


def btf_hints(btf_id: int, *type_ids: int) -> list[Hints]:
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
                if kind == BTF_KIND_TYPEDEF:
                    names.append(name)
                elif kind in (BTF_KIND_STRUCT, BTF_KIND_UNION):
                    members = (ctypes.c_uint32 * (3 * vlen)).from_address(
                        ctypes.addressof(t) + ctypes.sizeof(BtfType))
                    out, anon = {}, 0
                    for m in range(vlen):
                        mname = (lib.btf__name_by_offset(btf, members[3 * m]) or b"").decode()
                        if not mname:
                            mname, anon = f"__anon{anon}", anon + 1
                        out[mname] = walk(members[3 * m + 1], depth)
                    return out
                elif kind == BTF_KIND_ARRAY:
                    elem = (ctypes.c_uint32 * 3).from_address(ctypes.addressof(t) + ctypes.sizeof(BtfType))
                    tid = elem[0]
                    continue
                elif kind in (BTF_KIND_ENUM, BTF_KIND_ENUM64):
                    return tuple(names + ["enum " + name])
                elif kind not in BTF_KIND_QUALIFIERS:
                    return tuple(names)
                tid = t.size_or_type
            return tuple(names)
        return [walk(t) if t else None for t in type_ids]
    finally:
        lib.btf__free(btf)



# -- BTF types as bcc's type descriptions ------------------------------------------------------------
# A map of a program built by clang (lab.load("x.bpf.c"), a .o) has no bcc description of its key
# and value; its BTF has them. `btf_desc` writes a BTF type in bcc's JSON description format (what
# bcc's compiler gives as a table's key_desc / leaf_desc), so that the map is typed by the same
# ctypes types (kernel.libbpf.decode_table_type) and codecs as a bcc program's.
BTF_KIND_INT, BTF_KIND_PTR, BTF_KIND_VAR, BTF_KIND_DATASEC, BTF_KIND_FLOAT = 1, 2, 14, 15, 16
BTF_INT_SIGNED, BTF_INT_CHAR, BTF_INT_BOOL = 1, 2, 4
_INT_NAMES = {(1, False): "unsigned char", (1, True): "signed char", (2, False): "unsigned short",
              (2, True): "short", (4, False): "unsigned int", (4, True): "int",
              (8, False): "unsigned long long", (8, True): "long long",
              (16, False): "unsigned __int128", (16, True): "__int128"}
_FLOAT_NAMES = {4: "float", 8: "double", 16: "long double"}
# A type description: a C scalar's name ("unsigned int"), or [name, [fields], "struct" |
# "struct_packed" | "union"] whose fields are [name, desc], [name, desc, [count]] (an array) or
# [name, desc, bits] (a bitfield); an anonymous struct or union member is ["", [fields], kind].
Desc = Union[str, list]


class Untyped(Exception):
    """A BTF type xdplab cannot describe as a C scalar, struct or union of them; str() says why."""


def _identifier(name: str) -> str:
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name).strip("_")
    return out if out and not out[0].isdigit() else "sec_" + out


def btf_desc(btf: int, type_id: int) -> Desc:
    """bcc's type description of BTF type `type_id` of `btf` (a struct btf *, from
    bpf_object__btf or btf__load_from_kernel_by_id). Raises Untyped when it cannot be described
    (type id 0: no BTF type, a pointer-free kind xdplab does not read, a top-level array, a
    layout ctypes cannot mirror)."""
    import json
    from xdplab.kernel.libbpf import decode_table_type as decode_json

    def decode_table_type(desc):
        return decode_json(json.dumps(desc))
    lib = libbpf()
    if not type_id:
        raise Untyped("its BTF names no type for it (declared with key_size/value_size, not __type)")

    def record(tid):
        t = lib.btf__type_by_id(btf, tid)
        if not t:
            raise Untyped(f"BTF type {tid} does not exist")
        t = t.contents
        kind, vlen = (t.info >> 24) & 0x1F, t.info & 0xFFFF
        name = (lib.btf__name_by_offset(btf, t.name_off) or b"").decode()
        return t, kind, vlen, bool(t.info >> 31), name

    def extra(t, count):
        return (ctypes.c_uint32 * count).from_address(ctypes.addressof(t) + ctypes.sizeof(BtfType))

    def resolve(tid, depth):
        for _ in range(64):
            t, kind, vlen, flag, name = record(tid)
            if kind == BTF_KIND_TYPEDEF or kind in BTF_KIND_QUALIFIERS:
                tid = t.size_or_type
                continue
            return tid, t, kind, vlen, flag, name
        raise Untyped("its BTF type chain does not end")

    def size_of(tid):
        tid, t, kind, vlen, flag, name = resolve(tid, 0)
        if kind == BTF_KIND_ARRAY:
            a = extra(t, 3)
            return size_of(a[0]) * a[2]
        if kind == BTF_KIND_PTR:
            return 8
        return t.size_or_type

    def scalar_or_struct(tid, depth):
        if depth > 32:
            raise Untyped("its types nest too deep")
        tid, t, kind, vlen, flag, name = resolve(tid, depth)
        if kind == BTF_KIND_INT:
            enc = (extra(t, 1)[0] >> 24) & 0x0F
            size = t.size_or_type
            if enc & BTF_INT_BOOL and size == 1:
                return "_Bool"
            if enc & BTF_INT_CHAR or (name == "char" and size == 1):
                return "char"
            if (size, bool(enc & BTF_INT_SIGNED)) in _INT_NAMES:
                return _INT_NAMES[size, bool(enc & BTF_INT_SIGNED)]
            raise Untyped(f"it is a {size}-byte integer")
        if kind in (BTF_KIND_ENUM, BTF_KIND_ENUM64):
            key = (t.size_or_type, flag)
            if key in _INT_NAMES:
                return _INT_NAMES[key]
            raise Untyped(f"it is a {t.size_or_type}-byte enum")
        if kind == BTF_KIND_FLOAT and t.size_or_type in _FLOAT_NAMES:
            return _FLOAT_NAMES[t.size_or_type]
        if kind == BTF_KIND_PTR:
            return "unsigned long"
        if kind in (BTF_KIND_STRUCT, BTF_KIND_UNION):
            m = extra(t, 3 * vlen)
            members = []
            for i in range(vlen):
                mname = (lib.btf__name_by_offset(btf, m[3 * i]) or b"").decode()
                off = m[3 * i + 2]
                bits, off = (off >> 24, off & 0xFFFFFF) if flag else (0, off)
                members.append((mname, m[3 * i + 1], off, bits))
            return layout(name, members, t.size_or_type, kind == BTF_KIND_UNION, depth)
        if kind == BTF_KIND_DATASEC:
            v = extra(t, 3 * vlen)
            members = []
            for i in range(vlen):
                var, _, _, _, vname = record(v[3 * i])
                members.append((vname, var.size_or_type, 8 * v[3 * i + 1], 0))
            return layout(_identifier(name), members, t.size_or_type, False, depth)
        what = {BTF_KIND_ARRAY: "an array", 7: "a declaration without a definition (struct X;)",
                13: "a function type"}.get(kind, f"of BTF kind {kind}")
        raise Untyped(f"it is {what}")

    def field(mname, mtid, bits, depth):
        """[name, desc] / [name, desc, [count]] / [name, desc, bits] / ["", fields, kind]."""
        rtid, t, kind, vlen, flag, _ = resolve(mtid, depth)
        if bits:
            base = scalar_or_struct(mtid, depth + 1)
            if not isinstance(base, str):
                raise Untyped(f"bitfield {mname!r} is not an integer")
            return [mname, base, bits]
        if kind == BTF_KIND_ARRAY:
            count, elem = 1, rtid
            while True:
                et, ek = resolve(elem, depth)[1:3]
                if ek != BTF_KIND_ARRAY:
                    break
                a = extra(et, 3)
                count, elem = count * a[2], a[0]
            if not count:
                raise Untyped(f"field {mname!r} is an array of no elements")
            return [mname, scalar_or_struct(elem, depth + 1), [count]]
        sub = scalar_or_struct(mtid, depth + 1)
        if not mname and isinstance(sub, list):
            return ["", sub[1], sub[2]]
        if not mname:
            raise Untyped("it has an unnamed scalar member")
        return [mname, sub]

    def layout(name, members, size, union, depth):
        """The struct's description: natural alignment when ctypes lays the fields out where BTF
        says they are, else packed with explicit padding (as bcc does), checked either way."""
        fields = [(off, bits, field(mn, mt, bits, depth)) for mn, mt, off, bits in members]
        if union:
            candidates = [[name, [f for _, _, f in fields], "union"]]
        else:
            packed, cursor, pads = [], 0, 0
            for off, bits, f in sorted(fields, key=lambda x: x[0]):
                if not bits and off % 8 == 0 and off // 8 > cursor:
                    packed.append([f"__pad_{pads}", "char", [off // 8 - cursor]])
                    pads += 1
                packed.append(f)
                if not bits:
                    cursor = off // 8 + ctypes.sizeof(decode_table_type(f[1]) if len(f) == 2 else
                                                      _field_type(f, decode_table_type))
            if size > cursor:
                packed.append(["__pad_end", "char", [size - cursor]])
            candidates = [[name, [f for _, _, f in fields], "struct"], [name, packed, "struct_packed"]]
        for desc in candidates:
            if _matches(desc, fields, size, decode_table_type):
                return desc
        raise Untyped(f"ctypes cannot lay out struct {name or '(anonymous)'} as BTF does "
                      "(bitfields?)")

    return scalar_or_struct(type_id, 0)


def _field_type(f, decode):
    """The ctypes type of one field description."""
    if len(f) == 3 and isinstance(f[2], list):
        return decode(f[1]) * f[2][0]
    if len(f) == 3 and isinstance(f[2], str):
        return decode(f)
    return decode(f[1])


def _matches(desc, fields, size, decode):
    """Whether the ctypes type of `desc` has BTF's size and puts each byte-aligned field at BTF's
    offset (bitfields are compared as a whole, by the struct's size)."""
    try:
        ctype = decode(desc)
    except Exception:
        return False
    if ctypes.sizeof(ctype) != size:
        return False
    names = [f[0] for f in ctype._fields_ if not f[0].startswith("__pad")]
    for (off, bits, _), fname in zip(fields, names):
        if not bits and getattr(ctype, fname).offset * 8 != off:
            return False
    return True
