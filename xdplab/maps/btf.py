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

