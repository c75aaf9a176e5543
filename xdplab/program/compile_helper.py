"""The compile helper: one long-lived process per notebook kernel that compiles with bcc, loads
through the verifier and hands the loaded programs and maps back (xdplab.compiler is the client).

Why a process of its own: LLVM's BPF backend ends the *process* with exit(1) on some newcomer
mistakes (a stack over 512 bytes, signed division). Here that ends the helper, not the notebook's
kernel; the client reads what LLVM printed, explains it at the learner's line, and starts a new
helper. One clang run per new source, in a process that stays warm (bcc and LLVM initialised).

Protocol (a unix stream socket from socketpair(); each message is a 4-byte length, JSON, and file
descriptors passed with SCM_RIGHTS on the first byte):
  client → helper  {"op": "compile", "key", "text", "cflags", "functions", "kernel_source",
                    "caps": the asking thread's effective capabilities, which the helper takes on
                    for the request}
                   + fd of a file that receives clang's and LLVM's output (fd 1 and 2 while
                   compiling), so that it survives the helper when LLVM ends it
  helper → client  {"status": "ok", "cached", "license", "functions": [name...],
                    "tables": [{"name", "index", "type", "flags", "max_entries", "key_desc",
                                "leaf_desc", "fields"}]}
                   + fds: one per function, then one per table (the kernel duplicates them
                   into the client, which owns them from then on)
                   {"status": "compile_error", "message"} — the text is in the client's file
                   {"status": "verifier_error", "function", "log", "listing", "full"}
Nothing is written but those replies.

The cache. A source compiled before (same key: the client hashes the source, cflags, header tree
identity and kernel release) is not compiled again if no header it read has changed since (clang
lists them, -MD; each is checked by inode, size and times before a re-run): the bcc module of the
first compile is kept (its BTF, function and line information, table descriptions), its
instructions are kept with the positions where they name a map, and a re-run creates fresh maps
like the first ones, writes their fds into a copy of the instructions and loads that through the
verifier with the module's line information (bcc_func_load). So a re-run gets new, empty maps
and a freshly verified program, without clang. The helper holds no map or program of its own
after a reply: maps and programs live exactly as long as the client's fds.

The helper dies with its client: it blocks reading a pipe whose only write end the client holds,
and exits when that pipe closes (the client exited, or was killed). It ignores SIGINT, which a
notebook's interrupt may send to the whole process group.

Only the standard library and bcc here: the helper starts as a plain script.
"""
from __future__ import annotations

import collections
import ctypes
import errno
import json
import os
import re
import signal
import socket
import struct
import sys
import tempfile
import runpy
import threading
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")
Message = dict[str, Any]                        # a request or a reply, as JSON
Identity = tuple[int, int, int, int, int]       # a file's device, inode, size, mtime and ctime
# bcc's BPF objects are typed Any: bcc has no type hints, and xdplab's unit tier runs without it

# xdplab.kernel.constants, read by path: this script runs without importing xdplab
_ABI = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kernel",
                                   "constants.py"))
BPF_PROG_TYPE_XDP = _ABI["BPF_PROG_TYPE_XDP"]
MapInfo = _ABI["BpfMapInfo"]                     # struct bpf_map_info
BPF_MAP_CREATE = 0
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_BTF_GET_FD_BY_ID = 19
LD_IMM64 = 0x18                 # BPF_LD | BPF_IMM | BPF_DW: two 8-byte slots
CALL = 0x85
PSEUDO_MAP_FD, PSEUDO_MAP_VALUE = 1, 2
PSEUDO_KFUNC_CALL = 2
# map types a re-run cannot simply make again (they need an inner map or a kernel struct)
NOT_REMADE = {12, 13, 26}       # array_of_maps, hash_of_maps, struct_ops
PERF_EVENT_ARRAY, RINGBUF = 4, 27
CACHE_SIZE = 24                 # bcc modules kept (each a few MB of LLVM's memory)
MAX_FDS = 250                   # SCM_MAX_FD is 253
DEBUG_SOURCE = 0x8
_TOO_LARGE_NO_LOG = re.compile(r"Argument list too long|too large \(\d+ insns\)")
_INSN = re.compile(r"^\d+: \([0-9a-f]{2}\) ", re.M)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_NR_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280}.get(os.uname().machine, 321)


class MapCreateAttr(ctypes.Structure):
    _fields_ = [("map_type", ctypes.c_uint32), ("key_size", ctypes.c_uint32),
                ("value_size", ctypes.c_uint32), ("max_entries", ctypes.c_uint32),
                ("map_flags", ctypes.c_uint32), ("inner_map_fd", ctypes.c_uint32),
                ("numa_node", ctypes.c_uint32), ("map_name", ctypes.c_char * 16),
                ("map_ifindex", ctypes.c_uint32), ("btf_fd", ctypes.c_uint32),
                ("btf_key_type_id", ctypes.c_uint32), ("btf_value_type_id", ctypes.c_uint32),
                ("btf_vmlinux_value_type_id", ctypes.c_uint32), ("map_extra", ctypes.c_uint64)]


class InfoAttr(ctypes.Structure):
    _fields_ = [("bpf_fd", ctypes.c_uint32), ("info_len", ctypes.c_uint32), ("info", ctypes.c_uint64)]


class IdAttr(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("next_id", ctypes.c_uint32), ("open_flags", ctypes.c_uint32)]


def _bpf(cmd, attr):
    ret = _libc.syscall(_NR_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def map_info(fd: int) -> ctypes.Structure:
    """struct bpf_map_info (MapInfo) of map `fd`."""
    info = MapInfo()
    _bpf(BPF_OBJ_GET_INFO_BY_FD, InfoAttr(fd, ctypes.sizeof(info), ctypes.addressof(info)))
    return info


# -- messages ---------------------------------------------------------------------------------------
def send(sock: socket.socket, obj: Message, fds: Sequence[int] = ()) -> None:
    """Send message `obj`, with file descriptors `fds`."""
    data = json.dumps(obj).encode()
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] if fds else []
    sock.sendmsg([struct.pack("!I", len(data))], anc)
    sock.sendall(data)


def recv(sock: socket.socket) -> tuple[Message | None, list[int]]:
    """(message, fds), or (None, []) when the other side is gone."""
    head, anc, flags, _ = sock.recvmsg(4, socket.CMSG_SPACE(MAX_FDS * 4))
    fds = []
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += struct.unpack(f"{len(data) // 4}i", data[:len(data) - len(data) % 4])
    if flags & socket.MSG_CTRUNC:
        for fd in fds:
            os.close(fd)
        raise OSError(errno.EMSGSIZE, "too many file descriptors in one message")
    while head and len(head) < 4:
        more = sock.recv(4 - len(head))
        if not more:
            break
        head += more
    if len(head) < 4:
        for fd in fds:
            os.close(fd)
        return None, []
    size, = struct.unpack("!I", head)
    buf = bytearray()
    while len(buf) < size:
        more = sock.recv(min(size - len(buf), 1 << 20))
        if not more:
            for fd in fds:
                os.close(fd)
            return None, []
        buf += more
    return json.loads(buf), fds


# -- the helper -------------------------------------------------------------------------------------
class Redirected:
    """fd 1 and 2 written to `fd` for the duration of the block."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> Redirected:
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = os.dup(1), os.dup(2)
        os.dup2(self.fd, 1)
        os.dup2(self.fd, 2)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        for target, saved in zip((1, 2), self.saved):
            os.dup2(saved, target)
            os.close(saved)


def captured(fn: Callable[[], T]) -> tuple[T | Exception, str]:
    """(fn()'s result or its exception, what was written to fd 1 and 2 meanwhile)."""
    with tempfile.TemporaryFile() as f:
        with Redirected(f.fileno()):
            try:
                result = fn()
            except Exception as e:
                result = e
        f.seek(0)
        return result, f.read().decode("utf-8", "replace")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_CAP_VERSION_3 = 0x20080522


def capabilities() -> list[int] | None:
    """The calling thread's effective capability set, as two 32-bit words."""
    hdr, data = _CapHeader(_CAP_VERSION_3, 0), (_CapData * 2)()
    if _libc.capget(ctypes.byref(hdr), data) != 0:
        return None
    return [d.effective for d in data]


class Privileges:
    """This thread's effective capabilities lowered to the client's for the block: a program is
    loaded with the privileges of the thread that asked (the verifier's rules depend on them)."""

    def __init__(self, effective: Sequence[int] | None) -> None:
        self.effective = effective

    def __enter__(self) -> Privileges:
        self.saved = None
        if not self.effective:
            return self
        hdr, data = _CapHeader(_CAP_VERSION_3, 0), (_CapData * 2)()
        if _libc.capget(ctypes.byref(hdr), data) != 0:
            return self
        self.saved = [d.effective for d in data]
        for d, want in zip(data, self.effective):
            d.effective = want & d.permitted
        if self.saved != [d.effective for d in data]:
            _libc.capset(ctypes.byref(hdr), data)
        self.hdr, self.data = hdr, data
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved and self.saved != [d.effective for d in self.data]:
            for d, eff in zip(self.data, self.saved):
                d.effective = eff
            _libc.capset(ctypes.byref(self.hdr), self.data)


class Entry:
    """What a re-run of a cached source needs: the module, instructions, relocations, maps."""

    def __init__(self, bpf: Any, functions: list[str], tables: list[Message], license: str,
                 deps: list[tuple[str, Identity]]) -> None:
        self.bpf, self.functions, self.tables, self.license = bpf, functions, tables, license
        self.insns, self.relocs, self.specs = {}, {}, []
        self.deps = deps              # [(header, identity)] of every header the compile read

    def headers_unchanged(self) -> bool:
        """True if no header the compile read has changed since."""
        return all(file_identity(path) == ident for path, ident in self.deps)


def file_identity(path: str) -> Identity | None:
    """(device, inode, size, mtime, ctime) of `path`, or None when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def included(text: str, kernel_dir: str) -> list[tuple[str, Identity]] | None:
    """[(path, identity)] of every header clang read (the text of its -MD dependency file): bcc's
    own /virtual/ headers aside (bcc's version is in the key), paths relative to the kernel tree,
    where bcc compiles. None when a header cannot be found again (then the source is not cached)."""
    words = text.replace("\\\n", " ").split()
    if not words or not words[0].endswith(":"):
        return None
    out = []
    for word in words[1:]:                # words[0] is the target, "main.o:"
        if word.startswith("/virtual/"):
            continue
        path = word if os.path.isabs(word) else os.path.join(kernel_dir, word)
        ident = file_identity(path)
        if ident is None:
            return None
        out.append((path, ident))
    return out


class Helper:
    """The helper's side of the socket: compiles, re-runs from its cache, replies."""

    def __init__(self, sock: socket.socket) -> None:
        import bcc
        from bcc import libbcc
        self.bcc, self.lib, self.sock = bcc, libbcc.lib, sock
        vp, sz = ctypes.c_void_p, ctypes.c_ulonglong
        for name, res, args in (("bpf_num_tables", sz, [vp]),
                                ("bpf_table_name", ctypes.c_char_p, [vp, sz]),
                                ("bpf_table_fd_id", ctypes.c_int, [vp, sz]),
                                ("bpf_table_key_desc_id", ctypes.c_char_p, [vp, sz]),
                                ("bpf_table_leaf_desc_id", ctypes.c_char_p, [vp, sz])):
            getattr(self.lib, name).restype, getattr(self.lib, name).argtypes = res, args
        self.cache = collections.OrderedDict()
        self.devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)

    def serve(self) -> None:
        """Answer requests until the client closes the socket."""
        while True:
            req, fds = recv(self.sock)
            if req is None:
                return
            try:
                with Privileges(req.get("caps")):
                    reply, out = self.handle(req, fds)
            except Exception as e:          # a bug of ours: say so, stay up
                import traceback
                reply, out = {"status": "error", "message": f"{type(e).__name__}: {e}",
                              "traceback": traceback.format_exc()}, []
            finally:
                for fd in fds:
                    os.close(fd)
            try:
                send(self.sock, reply, out)
            finally:
                for fd in out:
                    os.close(fd)

    def handle(self, req: Message, fds: Sequence[int]) -> tuple[Message, list[int]]:
        """The reply to `req` and the file descriptors that go with it."""
        if req.get("op") == "ping":
            return {"status": "ok", "pid": os.getpid()}, []
        if req.get("op") != "compile" or len(fds) != 1:
            return {"status": "error", "message": f"unknown request {req.get('op')!r}"}, []
        if req.get("kernel_source"):
            os.environ["BCC_KERNEL_SOURCE"] = req["kernel_source"]
        else:
            os.environ.pop("BCC_KERNEL_SOURCE", None)
        key = req["key"]
        entry = self.cache.get(key)
        if entry is not None and not entry.headers_unchanged():
            self.drop(key)                # a header it read has changed since: compile afresh
            entry = None
        if entry is not None:
            try:
                reply = self.rerun(entry)
                self.cache.move_to_end(key)
                return reply
            except OSError:
                self.drop(key)            # something changed under us: compile it afresh
        return self.compile(req, fds[0])

    def drop(self, key: str) -> None:
        """Forget the cached compile under `key`."""
        entry = self.cache.pop(key, None)
        if entry is not None:
            entry.bpf.cleanup()

    def compile(self, req: Message, out_fd: int) -> tuple[Message, list[int]]:
        """Compile and load `req` with bcc, clang's output going to `out_fd`; the reply and fds."""
        bcc, lib = self.bcc, self.lib
        text, cflags = req["text"].encode(), list(req["cflags"])
        # -MD: clang lists every header it read, which the cache checks before a re-run; into an
        # unnamed file, so that nothing is left behind when LLVM ends this process
        with tempfile.TemporaryFile(mode="w+") as deps:
            with Redirected(out_fd):      # LLVM may exit() here: the client reads out_fd
                try:
                    b = bcc.BPF(text=text,
                                cflags=cflags + ["-MD", "-MF", f"/proc/self/fd/{deps.fileno()}"])
                except Exception as e:
                    return {"status": "compile_error", "message": str(e)}, []
            kernel_dir = req.get("kernel_source") or f"/lib/modules/{os.uname().release}/build"
            deps.seek(0)
            headers = included(deps.read(), kernel_dir)
        try:
            for fn in req["functions"]:
                loaded, log = captured(lambda: b.load_func(fn.encode(), bcc.BPF.XDP))
                if isinstance(loaded, Exception):
                    return self.rejected(req, b, fn, log or str(loaded)), []
            mod = b.module
            tables = []
            for i in range(lib.bpf_num_tables(mod)):
                name = lib.bpf_table_name(mod, i).decode()
                ttype = lib.bpf_table_type_id(mod, i)
                fields = []
                if ttype in (PERF_EVENT_ARRAY, RINGBUF):
                    fields = [lib.bpf_perf_event_field(mod, name.encode(), j).decode()
                              for j in range(lib.bpf_perf_event_fields(mod, name.encode()))]
                tables.append({"name": name, "index": i, "type": ttype,
                               "flags": lib.bpf_table_flags_id(mod, i),
                               "max_entries": lib.bpf_table_max_entries_id(mod, i),
                               "key_desc": lib.bpf_table_key_desc_id(mod, i).decode(),
                               "leaf_desc": lib.bpf_table_leaf_desc_id(mod, i).decode(),
                               "fields": fields, "fd": lib.bpf_table_fd_id(mod, i)})
            license = (lib.bpf_module_license(mod) or b"GPL").decode()
            fn_fds = [b.funcs[fn.encode()].fd for fn in req["functions"]]
            map_fds = [t["fd"] for t in tables if t["fd"] >= 0]
            if len(fn_fds) + len(map_fds) > MAX_FDS:
                return {"status": "error", "message": "the program has too many maps and functions "
                        f"({len(fn_fds) + len(map_fds)}; at most {MAX_FDS})"}, []
            entry = self.remember(b, req["functions"], tables, license, headers)
            reply = {"status": "ok", "cached": False, "license": license,
                     "functions": req["functions"], "tables": self.public(tables)}
            fds = [os.dup(fd) for fd in fn_fds + map_fds]
        except BaseException:
            b.cleanup()
            raise
        self.release(b, tables)
        if entry is None:
            b.cleanup()
        else:
            self.cache[req["key"]] = entry
            while len(self.cache) > CACHE_SIZE:
                self.drop(next(iter(self.cache)))
        return reply, fds

    @staticmethod
    def public(tables: list[Message]) -> list[Message]:
        """The tables as the client gets them: "has_fd" for the fd number."""
        return [{**{k: v for k, v in t.items() if k != "fd"}, "has_fd": t["fd"] >= 0} for t in tables]

    def release(self, b: Any, tables: list[Message]) -> None:
        """Let go of the first compile's programs and maps (the client has its own fds now). The
        module keeps its fd numbers, pointed at /dev/null, so that its own cleanup stays harmless."""
        for name, fn in list(b.funcs.items()):
            os.close(fn.fd)
            del b.funcs[name]
        for t in tables:
            if t["fd"] >= 0:
                os.dup2(self.devnull, t["fd"])

    def remember(self, b: Any, functions: list[str], tables: list[Message], license: str,
                 headers: list[tuple[str, Identity]] | None) -> Entry | None:
        """An Entry for re-runs, or None when this program cannot be made again without clang
        (or its headers cannot be checked later)."""
        if headers is None:
            return None
        lib, mod = self.lib, b.module
        by_fd = {t["fd"]: n for n, t in enumerate(tables) if t["fd"] >= 0}
        entry = Entry(b, functions, tables, license, headers)
        for t in tables:
            if t["fd"] < 0:
                entry.specs.append(None)
                continue
            info = map_info(t["fd"])
            if info.type in NOT_REMADE:
                return None
            entry.specs.append(info)
        for fn in functions:
            name = fn.encode()
            insns = ctypes.string_at(lib.bpf_function_start(mod, name), lib.bpf_function_size(mod, name))
            relocs, i = [], 0
            while i < len(insns) // 8:
                code, regs, _, imm = struct.unpack_from("<BBhi", insns, 8 * i)
                src = regs >> 4
                if code == LD_IMM64:
                    if src in (PSEUDO_MAP_FD, PSEUDO_MAP_VALUE):
                        if imm not in by_fd:
                            return None
                        relocs.append((i, by_fd[imm]))
                    elif src != 0:
                        return None
                    i += 2
                    continue
                if code == CALL and src == PSEUDO_KFUNC_CALL:
                    return None
                i += 1
            entry.insns[fn], entry.relocs[fn] = insns, relocs
        return entry

    def rerun(self, entry: Entry) -> tuple[Message, list[int]]:
        """Fresh maps like the first compile's, the instructions pointed at them, verified again."""
        lib, mod = self.lib, entry.bpf.module
        made, fns, btf_fds = [], [], {}
        try:
            for info in entry.specs:
                if info is None:
                    made.append(-1)
                    continue
                btf = -1
                if info.btf_id:
                    if info.btf_id not in btf_fds:
                        try:
                            btf_fds[info.btf_id] = _bpf(BPF_BTF_GET_FD_BY_ID, IdAttr(info.btf_id))
                        except OSError:
                            btf_fds[info.btf_id] = -1
                    btf = btf_fds[info.btf_id]
                attr = MapCreateAttr(
                    map_type=info.type, key_size=info.key_size, value_size=info.value_size,
                    max_entries=info.max_entries, map_flags=info.map_flags, map_name=info.name,
                    btf_fd=max(btf, 0), btf_key_type_id=info.btf_key_type_id if btf >= 0 else 0,
                    btf_value_type_id=info.btf_value_type_id if btf >= 0 else 0,
                    map_extra=info.map_extra)
                made.append(_bpf(BPF_MAP_CREATE, attr))
            for fn in entry.functions:
                insns = bytearray(entry.insns[fn])
                for i, n in entry.relocs[fn]:
                    struct.pack_into("<i", insns, 8 * i + 4, made[n])
                code = ctypes.create_string_buffer(bytes(insns), len(insns))
                fd, log = captured(lambda: lib.bcc_func_load(
                    mod, BPF_PROG_TYPE_XDP, fn.encode(), ctypes.addressof(code), len(insns),
                    entry.license.encode(), lib.bpf_module_kern_version(mod), 0, None, 0, None, -1))
                if isinstance(fd, Exception) or fd < 0:
                    raise OSError(errno.EINVAL, f"reloading {fn} failed: {log.strip()}")
                fns.append(fd)
        except BaseException:
            for fd in fns + [m for m in made if m >= 0]:
                os.close(fd)
            raise
        finally:
            for fd in btf_fds.values():
                if fd >= 0:
                    os.close(fd)
        reply = {"status": "ok", "cached": True, "license": entry.license,
                 "functions": entry.functions, "tables": self.public(entry.tables)}
        return reply, fns + [m for m in made if m >= 0]

    def rejected(self, req: Message, b: Any, fn: str, log: str) -> Message:
        """The verifier's verdict on `fn`, with what the client needs to explain it: the full log
        when bcc printed none (E2BIG), the instruction → line listing when the log has no line
        information (it costs a second compile, on this error path only)."""
        full = listing = None
        if not _INSN.search(log) and _TOO_LARGE_NO_LOG.search(log):
            full = self.full_log(b, fn)
        if " @ main.c:" not in (full or log):
            with tempfile.TemporaryFile() as f:
                with Redirected(f.fileno()):
                    try:
                        self.bcc.BPF(text=req["text"].encode(), cflags=list(req["cflags"]),
                                     debug=DEBUG_SOURCE).cleanup()
                    except Exception:
                        pass
                f.seek(0)
                listing = f.read().decode("utf-8", "replace")
        b.cleanup()
        return {"status": "verifier_error", "function": fn, "log": log, "listing": listing,
                "full": full}

    def full_log(self, b: Any, fn: str, size: int = 1 << 21) -> str:
        """Verify `fn` again with a log buffer of our own: bcc prints no log when the kernel
        answers E2BIG, and the kernel keeps the end of a log that does not fit."""
        lib, mod, name = self.lib, b.module, fn.encode()
        buf = ctypes.create_string_buffer(size)
        fd, _ = captured(lambda: lib.bcc_func_load(
            mod, BPF_PROG_TYPE_XDP, name, lib.bpf_function_start(mod, name),
            lib.bpf_function_size(mod, name), lib.bpf_module_license(mod),
            lib.bpf_module_kern_version(mod), 1, buf, size, None, -1))
        if isinstance(fd, int) and fd >= 0:
            os.close(fd)
        return buf.value.decode("utf-8", "replace")


def _die_with_client(life_fd):
    try:
        while os.read(life_fd, 64):
            pass
    except OSError:
        pass
    os._exit(0)


def main(sock_fd: int, life_fd: int) -> None:
    """The helper process: serve on socket `sock_fd`; exit when pipe `life_fd` closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_die_with_client, args=(life_fd,), daemon=True).start()
    sock = socket.socket(fileno=sock_fd)
    Helper(sock).serve()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
