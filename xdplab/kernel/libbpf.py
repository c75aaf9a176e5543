"""One home for the C functions xdplab calls through ctypes: libbpf's, bcc's (libbcc) and bpf(2).

Every function is declared here once, with its argument and result types, so that no module sets
prototypes on the shared library handle at call time (a CDLL's function objects are shared by
everyone who loaded the library: a prototype set in one place changes the calls of all others).

    lib = libbpf.libbpf()          # the system libbpf (the one bcc links), prototypes set
    lib.bpf_map_lookup_elem(fd, key, value)
    libbpf.errno_of(rc)            # errno of a failed call
    libbpf.map_info(fd)            # struct bpf_map_info of a map fd
    libbpf.libbcc()                # bcc's libbcc, plus the table-walking functions bcc's Python
                                   # does not declare
    libbpf.sys_bpf(cmd, attr)      # the raw bpf(2) system call (xdplab.kernel.bpf)
    libbpf.decode_table_type(desc) # bcc's ctypes type of a map key/value (a private bcc name,
    libbpf.bcc_callback_types()    # as are its perf/ring buffer callback types: wrapped here)

Not here: xdplab/program/compile_helper.py, which runs as a plain script with only the standard
library and bcc (it cannot import xdplab), declares its own few.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from typing import Any

from xdplab.errors import LabError, SetupError
from xdplab.kernel.constants import BpfMapInfo   # struct bpf_map_info, shared with the compile helper


class BtfType(ctypes.Structure):
    """struct btf_type (include/uapi/linux/btf.h): what btf__type_by_id() points to; the kind's
    extra records (members, array info) follow it in memory."""
    _fields_ = [("name_off", ctypes.c_uint32), ("info", ctypes.c_uint32),
                ("size_or_type", ctypes.c_uint32)]


_vp, _u32, _u32p, _int = ctypes.c_void_p, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32), ctypes.c_int
_str = ctypes.c_char_p

# name: (argument types, result type) — every libbpf function xdplab calls
LIBBPF = {
    # maps (tools/lib/bpf/bpf.h); keys and values are pointers, `opts` may be NULL
    "bpf_map_lookup_elem": ([_int, _vp, _vp], _int),
    "bpf_map_update_elem": ([_int, _vp, _vp, ctypes.c_uint64], _int),
    "bpf_map_delete_elem": ([_int, _vp], _int),
    "bpf_map_get_next_key": ([_int, _vp, _vp], _int),
    "bpf_map_lookup_batch": ([_int, _vp, _vp, _vp, _vp, _u32p, _vp], _int),
    "bpf_map_update_batch": ([_int, _vp, _vp, _u32p, _vp], _int),
    "bpf_map_delete_batch": ([_int, _vp, _u32p, _vp], _int),
    # objects: pins in bpffs, ids, info
    "bpf_obj_pin": ([_int, _str], _int),
    "bpf_obj_get": ([_str], _int),
    "bpf_obj_get_info_by_fd": ([_int, _vp, _u32p], _int),
    "bpf_prog_get_fd_by_id": ([_u32], _int),
    "libbpf_num_possible_cpus": ([], _int),
    # BTF (tools/lib/bpf/btf.h); a struct btf * is an opaque pointer
    "btf__load_from_kernel_by_id": ([_u32], _vp),
    "btf__parse": ([_str, _vp], _vp),
    "btf__type_by_id": ([_vp, _u32], ctypes.POINTER(BtfType)),
    "btf__name_by_offset": ([_vp, _u32], _str),
    "btf__find_by_name_kind": ([_vp, _str, _u32], _int),
    "btf__free": ([_vp], None),
}

# bcc functions xdplab calls that bcc's own Python (bcc/libbcc.py) leaves undeclared
LIBBCC = {
    "bpf_num_tables": ([_vp], ctypes.c_size_t),
    "bpf_table_name": ([_vp, ctypes.c_size_t], _str),
}

_libbpf = None
_libbcc = None


def _declare(lib, prototypes):
    for name, (args, res) in prototypes.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    return lib


def libbpf() -> ctypes.CDLL:
    """The system libbpf (the one bcc links), with the prototypes of LIBBPF."""
    global _libbpf
    if _libbpf is None:
        path = ctypes.util.find_library("bpf") or "libbpf.so.1"
        try:
            lib = ctypes.CDLL(path, use_errno=True)
        except OSError:
            raise SetupError("libbpf is not installed (bcc needs it too)",
                             "run 'sudo make install' (installs libbpf1 with python3-bpfcc)") from None
        _libbpf = _declare(lib, LIBBPF)
    return _libbpf


def libbcc() -> ctypes.CDLL:
    """bcc's libbcc (bcc.libbcc.lib), with the prototypes of LIBBCC added."""
    global _libbcc
    if _libbcc is None:
        from bcc import libbcc as bcc_lib
        _libbcc = _declare(bcc_lib.lib, LIBBCC)
    return _libbcc


def errno_of(rc: int) -> int:
    """errno of a failed libbpf call (libbpf 1.x returns -errno and sets errno)."""
    return -rc if rc < -1 else ctypes.get_errno()


def map_info(fd: int) -> BpfMapInfo:
    """struct bpf_map_info (BpfMapInfo) of map file descriptor `fd`."""
    info = BpfMapInfo()
    size = ctypes.c_uint32(ctypes.sizeof(info))
    rc = libbpf().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size))
    if rc != 0:
        raise LabError(f"cannot read map info of fd {fd}: {os.strerror(errno_of(rc))}")
    return info


# -- bpf(2) itself: what libbpf does not wrap the way xdplab needs (xdplab.kernel.bpf) -------------
NR_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280}.get(platform.machine(), 321)
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long     # variadic: no argtypes; every argument passed below is
                                          # a C long or a pointer


def sys_bpf(cmd: int, attr: ctypes.Structure) -> int:
    """bpf(cmd, &attr, sizeof(attr)) for a ctypes Structure `attr`: the result (negative on
    failure, errno set — ctypes.get_errno())."""
    return _libc.syscall(ctypes.c_long(NR_BPF), ctypes.c_long(cmd), ctypes.byref(attr),
                         ctypes.c_long(ctypes.sizeof(attr)))


# -- private names of bcc's Python, used in this one place --------------------------------------------
# bcc offers no public way to these; should a bcc release rename them, only this breaks.
def decode_table_type(desc: str | bytes | list[Any]) -> type:
    """The ctypes type bcc makes for a map's key or value from the JSON type description its
    compiler gives (a table's key_desc / leaf_desc): bcc.BPF._decode_table_type."""
    import json
    from bcc import BPF
    return BPF._decode_table_type(json.loads(desc) if isinstance(desc, (str, bytes)) else desc)


def bcc_callback_types() -> tuple[type, type, type]:
    """bcc's ctypes callback types (ring buffer, perf buffer raw, perf buffer lost):
    bcc.libbcc._RINGBUF_CB_TYPE, _RAW_CB_TYPE and _LOST_CB_TYPE, what bpf_new_ringbuf() and
    bpf_open_perf_buffer_opts() take."""
    from bcc import libbcc as bcc_lib
    return bcc_lib._RINGBUF_CB_TYPE, bcc_lib._RAW_CB_TYPE, bcc_lib._LOST_CB_TYPE
