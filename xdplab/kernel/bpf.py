"""The few raw bpf(2) calls xdplab makes itself, through ctypes.

bcc covers compiling, loading and attaching. Two things it does not offer are here:

* BPF_PROG_TEST_RUN — run a loaded XDP program on a packet we hand it, without any network
  (xdplab.testrun), and, with BPF_F_TEST_XDP_LIVE_FRAMES, push those packets out for real: the
  kernel runs the program `repeat` times and transmits each XDP_TX/XDP_REDIRECT result as a real
  frame (xdplab.traffic's fast injector).
* BPF_PROG_LOAD of a program written as raw instructions — the injector's two-instruction
  `return XDP_TX;` loads in microseconds instead of a multi-second clang run.

Each `union bpf_attr` variant is mirrored as a ctypes Structure with the field names of
include/uapi/linux/bpf.h. Failures raise OSError(errno); callers turn them into LabErrors.
"""
from __future__ import annotations

import ctypes
import errno as _errno
import os
import resource
import struct
from typing import SupportsBytes

from xdplab.kernel.constants import (BPF_F_TEST_RUN_ON_CPU, BPF_F_TEST_XDP_LIVE_FRAMES,  # noqa: F401
                                     BPF_PROG_TYPE_XDP, MAX_REPEAT, XDP_ACTIONS)
from xdplab.kernel.libbpf import sys_bpf

# The bpf(2) system call itself is declared with every other C function in xdplab.kernel.libbpf.

# Commands (enum bpf_cmd) we need. The program type, the test-run flags and the XDP actions are
# xdplab.kernel.constants' (imported above, so xdplab.kernel.XDP_ACTIONS etc. still work).
BPF_PROG_LOAD = 5
BPF_PROG_TEST_RUN = 10

# Largest packet BPF_PROG_TEST_RUN keeps in one linear buffer: a 4 KiB page minus the
# XDP_PACKET_HEADROOM (256) the kernel reserves in front and the skb_shared_info (320) behind.
# Bigger input is split into fragments that ordinary (non-"frags") XDP programs cannot see.
TEST_RUN_MAX_LINEAR = 4096 - 256 - 320
ETH_HLEN = 14


class BpfProgLoadAttr(ctypes.Structure):
    """bpf_attr for BPF_PROG_LOAD (the leading fields; the kernel zero-checks the rest)."""
    _fields_ = [
        ("prog_type", ctypes.c_uint32),        # BPF_PROG_TYPE_XDP
        ("insn_cnt", ctypes.c_uint32),         # number of 8-byte instructions
        ("insns", ctypes.c_uint64),            # pointer to the instructions
        ("license", ctypes.c_uint64),          # pointer to "GPL\0"
        ("log_level", ctypes.c_uint32),        # 1 = fill log_buf with the verifier's log on error
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),     # only for kprobes; 0
        ("prog_flags", ctypes.c_uint32),       # BPF_F_* load flags; 0
        ("prog_name", ctypes.c_char * 16),     # shown by bpftool / in /proc/PID/fdinfo
        ("prog_ifindex", ctypes.c_uint32),     # for offload to a NIC; 0
        ("expected_attach_type", ctypes.c_uint32),  # 0 = BPF_XDP (plain XDP)
    ]


class BpfTestRunAttr(ctypes.Structure):
    """bpf_attr for BPF_PROG_TEST_RUN (the `test` member of union bpf_attr)."""
    _fields_ = [
        ("prog_fd", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),           # out: the program's return value (last run)
        ("data_size_in", ctypes.c_uint32),     # packet length
        ("data_size_out", ctypes.c_uint32),    # in: room in data_out; out: bytes the packet has now
        ("data_in", ctypes.c_uint64),          # pointer to the packet
        ("data_out", ctypes.c_uint64),         # pointer to a buffer for the (rewritten) packet
        ("repeat", ctypes.c_uint32),           # run the program this many times
        ("duration", ctypes.c_uint32),         # out: average ns per run
        ("ctx_size_in", ctypes.c_uint32),      # sizeof(struct xdp_md) or 0
        ("ctx_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_uint64),           # pointer to a struct xdp_md, or 0
        ("ctx_out", ctypes.c_uint64),
        ("flags", ctypes.c_uint32),            # BPF_F_TEST_*
        ("cpu", ctypes.c_uint32),              # with BPF_F_TEST_RUN_ON_CPU (not for XDP)
        ("batch_size", ctypes.c_uint32),       # live frames: frames per batch (0 = kernel's 64)
    ]


class XdpMd(ctypes.Structure):
    """struct xdp_md — the `ctx` an XDP program receives, as passed to BPF_PROG_TEST_RUN.

    For a test run `data` is the metadata length (0: no metadata), `data_end` the packet
    length, `ingress_ifindex` the device the packet pretends to arrive on (0 = none; looked up
    in the caller's network namespace), `rx_queue_index` its RX queue, `egress_ifindex` must be 0.
    """
    _fields_ = [
        ("data", ctypes.c_uint32),
        ("data_end", ctypes.c_uint32),
        ("data_meta", ctypes.c_uint32),
        ("ingress_ifindex", ctypes.c_uint32),
        ("rx_queue_index", ctypes.c_uint32),
        ("egress_ifindex", ctypes.c_uint32),
    ]

    @classmethod
    def for_packet(cls, length: int, ingress_ifindex: int = 0, rx_queue_index: int = 0) -> XdpMd:
        """The context of a `length`-byte packet arriving on `ingress_ifindex`, queue
        `rx_queue_index`, without metadata."""
        return cls(data=0, data_end=length, data_meta=0, ingress_ifindex=ingress_ifindex,
                   rx_queue_index=rx_queue_index, egress_ifindex=0)


def _raise_memlock():
    """Before Linux 5.11 the kernel charges BPF programs and maps to RLIMIT_MEMLOCK (since then to
    the memory cgroup) and answers EPERM when it is exhausted. Raise it as bcc does: True if it
    could be raised, False if it is unlimited already or may not be raised."""
    inf = resource.RLIM_INFINITY
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    for limit in ((inf, inf), (hard, hard)):    # unlimited needs CAP_SYS_RESOURCE; else the hard one
        if limit[0] == soft:
            return False
        try:
            resource.setrlimit(resource.RLIMIT_MEMLOCK, limit)
            return True
        except (ValueError, OSError):
            continue
    return False


def _bpf(cmd, attr):
    ret = sys_bpf(cmd, attr)
    if ret < 0 and ctypes.get_errno() == _errno.EPERM and _raise_memlock():
        ret = sys_bpf(cmd, attr)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
    return ret


def _addr(buf):
    return ctypes.addressof(buf) if buf is not None else 0


def prog_test_run(prog_fd: int, data: bytes | bytearray | SupportsBytes, repeat: int = 1,
                  ctx_in: bytes | None = None, flags: int = 0, batch_size: int = 0,
                  data_size_out: int | None = None) -> tuple[int, bytes, int]:
    """BPF_PROG_TEST_RUN: run program `prog_fd` on `data` `repeat` times.

    Returns (retval, data_out, duration_ns): the last run's return value, the packet as the
    program left it (b"" with live frames, which have no output buffer) and the kernel's average
    nanoseconds per run. `ctx_in` is bytes of a context struct (e.g. bytes(XdpMd.for_packet(..))).
    """
    data = bytes(data)
    live = bool(flags & BPF_F_TEST_XDP_LIVE_FRAMES)
    data_in = ctypes.create_string_buffer(data, len(data))
    # Room for growth: a program may prepend up to 256 bytes (bpf_xdp_adjust_head) or append.
    out_size = 0 if live else (data_size_out or len(data) + 4096)
    data_out = ctypes.create_string_buffer(out_size) if out_size else None
    ctx = ctypes.create_string_buffer(bytes(ctx_in), len(ctx_in)) if ctx_in else None
    attr = BpfTestRunAttr(
        prog_fd=prog_fd, data_size_in=len(data), data_size_out=out_size,
        data_in=_addr(data_in), data_out=_addr(data_out), repeat=repeat,
        ctx_size_in=len(ctx_in) if ctx_in else 0, ctx_in=_addr(ctx),
        flags=flags, batch_size=batch_size)
    _bpf(BPF_PROG_TEST_RUN, attr)
    out = data_out.raw[:attr.data_size_out] if data_out is not None else b""
    return attr.retval, out, attr.duration


# --- hand-assembled programs -------------------------------------------------------------
# struct bpf_insn { u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm; } (little endian)

def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One 8-byte instruction: opcode `code`, registers `dst` and `src`, offset, immediate."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


BPF_MOV64_IMM = 0xb7   # BPF_ALU64 | BPF_MOV | BPF_K : dst = imm
BPF_EXIT = 0x95        # BPF_JMP | BPF_EXIT          : return r0


def xdp_return(action: int) -> bytes:
    """Instructions of `return <action>;` — r0 = action; exit."""
    return insn(BPF_MOV64_IMM, dst=0, imm=action) + insn(BPF_EXIT)


def load_xdp_bytecode(insns: bytes, name: str) -> int:
    """BPF_PROG_LOAD raw XDP instructions (bytes, 8 per instruction). Returns the program fd;
    the caller closes it. On rejection the OSError's strerror carries the verifier's log."""
    insns = bytes(insns)
    code = ctypes.create_string_buffer(insns, len(insns))
    license = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(65536)
    attr = BpfProgLoadAttr(
        prog_type=BPF_PROG_TYPE_XDP, insn_cnt=len(insns) // 8, insns=_addr(code),
        license=_addr(license), log_level=1, log_size=len(log), log_buf=_addr(log),
        prog_name=name.encode()[:15])
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except OSError as e:
        text = log.value.decode(errors="replace").strip()
        raise OSError(e.errno, f"BPF_PROG_LOAD {name}: {os.strerror(e.errno)}"
                      + (f"\n{text}" if text else "")) from None


def test_run_context_supported() -> bool:
    """True if BPF_PROG_TEST_RUN takes an xdp_md context for an XDP program (Linux 5.15+; before,
    any ctx_in is refused with EINVAL and a run always looks as if the frame arrived on the
    loopback device of the caller's namespace)."""
    fd = load_xdp_bytecode(xdp_return(1), "xdplab_probe")  # return XDP_DROP
    try:
        frame = bytes(60)
        prog_test_run(fd, frame, repeat=1, ctx_in=bytes(XdpMd.for_packet(len(frame))))
        return True
    except OSError as e:
        if e.errno == _errno.EINVAL:
            return False
        raise
    finally:
        os.close(fd)


def live_frames_supported() -> bool:
    """True if this kernel accepts BPF_F_TEST_XDP_LIVE_FRAMES (Linux 5.18+)."""
    fd = load_xdp_bytecode(xdp_return(1), "xdplab_probe")  # return XDP_DROP: nothing leaves
    try:
        frame = bytes(60)
        ctx = bytes(XdpMd.for_packet(len(frame)))
        prog_test_run(fd, frame, repeat=1, ctx_in=ctx, flags=BPF_F_TEST_XDP_LIVE_FRAMES)
        return True
    except OSError as e:
        if e.errno in (_errno.EINVAL, _errno.EOPNOTSUPP, 524):  # 524: the kernel's ENOTSUPP
            return False
        raise
    finally:
        os.close(fd)
