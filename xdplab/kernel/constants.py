"""The numbers, names and struct layouts of the kernel's ABI that xdplab uses in more than one
place.

Only the standard library here (pathlib, ctypes): the two scripts xdplab starts without importing
xdplab (the lab watchdog, xdplab/lab/reaper.py, and the compile helper,
xdplab/program/compile_helper.py) read this file by path (runpy.run_path), so they and the
package share one definition.
"""
import ctypes
from pathlib import Path

# XDP return codes (enum xdp_action): index = value.
XDP_ACTIONS = ("XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT")

# enum bpf_prog_type: the one program type xdplab loads.
BPF_PROG_TYPE_XDP = 6

# BPF_PROG_TEST_RUN flags. LIVE_FRAMES: XDP_TX/XDP_REDIRECT really transmit (XDP programs only).
BPF_F_TEST_RUN_ON_CPU = 1 << 0
BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1
# BPF_PROG_TEST_RUN's repeat is a __u32: the most runs one call can ask for.
MAX_REPEAT = 2 ** 32 - 1

# XDP attach flags (include/uapi/linux/if_link.h), by the names xdplab's `mode=` uses.
XDP_FLAGS_SKB_MODE = 1 << 1      # "generic": XDP run by the core stack on an skb, any driver
XDP_FLAGS_DRV_MODE = 1 << 2      # "native": XDP run by the driver before any skb exists
XDP_MODES = {"native": XDP_FLAGS_DRV_MODE, "generic": XDP_FLAGS_SKB_MODE}

# bpffs, and the folder under it where a lab pins its maps (one folder per lab id).
BPFFS = Path("/sys/fs/bpf")
PIN_ROOT = BPFFS / "xdplab"

# BTF kinds (enum btf_kind in include/uapi/linux/btf.h) that xdplab's BTF readers walk.
BTF_KIND_ARRAY, BTF_KIND_STRUCT, BTF_KIND_UNION, BTF_KIND_ENUM = 3, 4, 5, 6
BTF_KIND_TYPEDEF, BTF_KIND_ENUM64 = 8, 19
BTF_KIND_QUALIFIERS = frozenset({9, 10, 11, 18})         # volatile, const, restrict, type_tag


class BpfProgInfo(ctypes.Structure):
    """struct bpf_prog_info (include/uapi/linux/bpf.h) up to btf_id, the id of the BTF the
    program was loaded with (its object's types); the kernel fills in what fits."""
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("tag", ctypes.c_uint8 * 8),
                ("jited_prog_len", ctypes.c_uint32), ("xlated_prog_len", ctypes.c_uint32),
                ("jited_prog_insns", ctypes.c_uint64), ("xlated_prog_insns", ctypes.c_uint64),
                ("load_time", ctypes.c_uint64), ("created_by_uid", ctypes.c_uint32),
                ("nr_map_ids", ctypes.c_uint32), ("map_ids", ctypes.c_uint64),
                ("name", ctypes.c_char * 16), ("ifindex", ctypes.c_uint32),
                ("gpl_compatible", ctypes.c_uint32), ("netns_dev", ctypes.c_uint64),
                ("netns_ino", ctypes.c_uint64), ("nr_jited_ksyms", ctypes.c_uint32),
                ("nr_jited_func_lens", ctypes.c_uint32), ("jited_ksyms", ctypes.c_uint64),
                ("jited_func_lens", ctypes.c_uint64), ("btf_id", ctypes.c_uint32),
                ("func_info_rec_size", ctypes.c_uint32)]


class BpfMapInfo(ctypes.Structure):
    """struct bpf_map_info (include/uapi/linux/bpf.h): what BPF_OBJ_GET_INFO_BY_FD fills in for
    a map (xdplab.kernel.libbpf.map_info; the compile helper's own calls)."""
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("key_size", ctypes.c_uint32),
                ("value_size", ctypes.c_uint32), ("max_entries", ctypes.c_uint32),
                ("map_flags", ctypes.c_uint32), ("name", ctypes.c_char * 16),
                ("ifindex", ctypes.c_uint32), ("btf_vmlinux_value_type_id", ctypes.c_uint32),
                ("netns_dev", ctypes.c_uint64), ("netns_ino", ctypes.c_uint64),
                ("btf_id", ctypes.c_uint32), ("btf_key_type_id", ctypes.c_uint32),
                ("btf_value_type_id", ctypes.c_uint32), ("_pad", ctypes.c_uint32),
                ("map_extra", ctypes.c_uint64)]
