"""One home for the C functions xdplab calls through ctypes: libbpf's, bcc's (libbcc) and bpf(2).

Every function is declared here once, with its argument and result types, so that no module sets
prototypes on the shared library handle at call time (a CDLL's function objects are shared by
everyone who loaded the library: a prototype set in one place changes the calls of all others).

    lib = libbpf.libbpf()          # the system libbpf (the one bcc links), prototypes set
    lib.bpf_map_lookup_elem(fd, key, value)
    libbpf.errno_of(rc)            # errno of a failed call
    libbpf.map_info(fd)            # struct bpf_map_info of a map fd
    libbpf.prog_info(fd)           # struct bpf_prog_info of a program fd (up to its btf_id)
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
import threading
from typing import Any

from xdplab.errors import LabError, SetupError
from xdplab.kernel.constants import BpfMapInfo   # struct bpf_map_info, shared with the compile helper
from xdplab.kernel.constants import BpfProgInfo


class BtfType(ctypes.Structure):
    """struct btf_type (include/uapi/linux/btf.h): what btf__type_by_id() points to; the kind's
    extra records (members, array info) follow it in memory."""
    _fields_ = [("name_off", ctypes.c_uint32), ("info", ctypes.c_uint32),
                ("size_or_type", ctypes.c_uint32)]


class BpfObjectOpenOpts(ctypes.Structure):
    """struct bpf_object_open_opts of libbpf 1.1 (tools/lib/bpf/libbpf.h); `sz` is its size (a
    newer libbpf takes an older, smaller struct)."""
    _fields_ = [("sz", ctypes.c_size_t), ("object_name", ctypes.c_char_p),
                ("relaxed_maps", ctypes.c_bool), ("pin_root_path", ctypes.c_char_p),
                ("_attach_prog_fd", ctypes.c_uint32), ("kconfig", ctypes.c_char_p),
                ("btf_custom_path", ctypes.c_char_p), ("kernel_log_buf", ctypes.c_void_p),
                ("kernel_log_size", ctypes.c_size_t), ("kernel_log_level", ctypes.c_uint32)]


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
    "btf__type_cnt": ([_vp], _u32),
    # objects built by clang (tools/lib/bpf/libbpf.h): a struct bpf_object/bpf_program/bpf_map *
    # is an opaque pointer; open returns NULL and sets errno on failure
    "bpf_object__open_file": ([_str, ctypes.POINTER(BpfObjectOpenOpts)], _vp),
    "bpf_object__load": ([_vp], _int),
    "bpf_object__close": ([_vp], None),
    "bpf_object__btf": ([_vp], _vp),
    "bpf_object__next_program": ([_vp, _vp], _vp),
    "bpf_object__next_map": ([_vp, _vp], _vp),
    "bpf_program__name": ([_vp], _str),
    "bpf_program__section_name": ([_vp], _str),
    "bpf_program__type": ([_vp], _int),
    "bpf_program__fd": ([_vp], _int),
    "bpf_program__set_log_buf": ([_vp, _vp, ctypes.c_size_t], _int),
    "bpf_map__name": ([_vp], _str),
    "bpf_map__fd": ([_vp], _int),
    "bpf_map__type": ([_vp], _int),
    "bpf_map__key_size": ([_vp], _u32),
    "bpf_map__value_size": ([_vp], _u32),
    "bpf_map__btf_key_type_id": ([_vp], _u32),
    "bpf_map__btf_value_type_id": ([_vp], _u32),
    "libbpf_set_print": ([_vp], _vp),
}

# libbpf_print_fn_t: int (*)(enum libbpf_print_level level, const char *fmt, va_list args). A
# va_list parameter is passed as a pointer on x86-64 and arm64, so it travels as a void *.
PRINT_FN = ctypes.CFUNCTYPE(_int, _int, _str, _vp)
LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG = 0, 1, 2

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


def _obj_info(fd: int, info: Any, what: str) -> Any:
    """`info` filled in by BPF_OBJ_GET_INFO_BY_FD for the `what` (map, program) of fd `fd`."""
    size = ctypes.c_uint32(ctypes.sizeof(info))
    rc = libbpf().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size))
    if rc != 0:
        raise LabError(f"cannot read {what} info of fd {fd}: {os.strerror(errno_of(rc))}")
    return info


def map_info(fd: int) -> BpfMapInfo:
    """struct bpf_map_info (BpfMapInfo) of map file descriptor `fd`."""
    return _obj_info(fd, BpfMapInfo(), "map")


def prog_info(fd: int) -> BpfProgInfo:
    """struct bpf_prog_info (BpfProgInfo, up to btf_id) of program file descriptor `fd`."""
    return _obj_info(fd, BpfProgInfo(), "program")


class PrintCapture:
    """libbpf's messages ("libbpf: prog 'x': BPF program load failed: ...", the verifier log it
    prints, "sec 'foo': failed to guess program type") collected while the block runs, instead of
    going to fd 2 (libbpf's default print function). `.lines` holds (level, text)."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []

    @property
    def text(self) -> str:
        """Everything but libbpf's debug chatter, as one text."""
        return "".join(t for level, t in self.lines if level <= LIBBPF_INFO)


_print_lock = threading.Lock()


def _format(fmt: bytes, args: int) -> str:
    """vasprintf(fmt, args): libbpf's message as text."""
    out = ctypes.c_char_p()
    if _libc.vasprintf(ctypes.byref(out), fmt, args) < 0:
        return fmt.decode("utf-8", "replace")
    try:
        return (out.value or b"").decode("utf-8", "replace")
    finally:
        _libc.free(ctypes.cast(out, _vp))


class capture_print:          # noqa: N801 — used as a context manager, like a function
    """with capture_print() as cap: ... — libbpf's print callback set to one that records into
    `cap` (a PrintCapture) for the block, the previous callback restored after it. One block at a
    time per process (libbpf's callback is global)."""

    def __enter__(self) -> PrintCapture:
        _print_lock.acquire()
        self.cap = PrintCapture()
        cap = self.cap

        def record(level, fmt, args):
            try:
                cap.lines.append((level, _format(fmt, args)))
            except Exception:            # never raise into libbpf
                pass
            return 0
        self._fn = PRINT_FN(record)      # kept alive while installed
        self._old = libbpf().libbpf_set_print(ctypes.cast(self._fn, _vp))
        return cap

    def __exit__(self, *exc: object) -> None:
        try:
            libbpf().libbpf_set_print(self._old)
        finally:
            _print_lock.release()


# -- bpf(2) itself: what libbpf does not wrap the way xdplab needs (xdplab.kernel.bpf) -------------
NR_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280}.get(platform.machine(), 321)
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long     # variadic: no argtypes; every argument passed below is
                                          # a C long or a pointer
_libc.vasprintf.argtypes = [ctypes.POINTER(ctypes.c_char_p), _str, _vp]   # libbpf's messages
_libc.vasprintf.restype = _int
_libc.free.argtypes = [_vp]
_libc.free.restype = None


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
    # bcc 0.26 describes __s8 as "signed char" and has no ctypes type for that name
    BPF.str2ctype.setdefault("signed char", ctypes.c_byte)
    return BPF._decode_table_type(json.loads(desc) if isinstance(desc, (str, bytes)) else desc)


def bcc_callback_types() -> tuple[type, type, type]:
    """bcc's ctypes callback types (ring buffer, perf buffer raw, perf buffer lost):
    bcc.libbcc._RINGBUF_CB_TYPE, _RAW_CB_TYPE and _LOST_CB_TYPE, what bpf_new_ringbuf() and
    bpf_open_perf_buffer_opts() take."""
    from bcc import libbcc as bcc_lib
    return bcc_lib._RINGBUF_CB_TYPE, bcc_lib._RAW_CB_TYPE, bcc_lib._LOST_CB_TYPE
