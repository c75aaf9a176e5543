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
import hashlib
import shutil
import subprocess
import threading
import time
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


# -- the precompiled header ------------------------------------------------------------------------
# Most of a fresh compile is clang parsing headers, three times (bcc runs its frontend twice to
# rewrite, then once to generate code): bcc's own helpers and, for a program that begins with
# #include "parsing_helpers.h", the kernel's uapi headers it pulls in. A precompiled header of
# exactly what such a compile reads first (bcc's -include'd files, then parsing_helpers.h), built by
# the clang of the LLVM bcc links (clang-14 for Debian 12's bcc, which links libclang-cpp.so.14)
# with the very cc1 arguments bcc uses, lets all three passes skip that: about 0.35x the CPU of a
# plain compile here, the same instructions and messages.
#
# Safe by construction, or not used:
#  * the PCH with parsing_helpers.h only for a source whose first line of code is
#    `#include "parsing_helpers.h"`: then the PCH is what the compile would read first anyway
#    (nothing of the learner's comes before it); a source that includes nothing gets the PCH of
#    bcc's -include'd headers alone, which every compile reads before the source (0.7x the CPU of
#    a tiny program; for one that includes other headers it measured no faster, so none);
#  * one PCH per key: the cflags, the kernel tree, the working directory (bcc adds -I of it), the
#    environment bcc reads, the bcc and LLVM libraries this process runs (their file identities),
#    the clang binary, bcc's built-in headers; built in a child by `--build-pch` (a plain
#    compile meanwhile), kept in XDPLAB_CACHE/pch (default /var/cache/xdplab/pch), used only if
#    that directory is ours and nobody else can write it;
#  * before each use, every header the PCH read is checked by identity (clang's dependency list
#    of the build), and every earlier place on the include path that would shadow one must still
#    be empty; a change → the PCH is built again, the compile meanwhile is plain. clang itself also
#    refuses a PCH whose headers changed in size or time, or whose options differ; any PCH
#    complaint → that PCH is dropped and the source compiled again without it.
# bcc's built-in headers (/virtual/...) are remapped buffers in bcc; the PCH embeds them
# (-fmodules-embed-file), since clang refuses a PCH whose input bcc overrides.
PCH_HEADER = "parsing_helpers.h"
_PCH_LEAD = re.compile(r'(?:\s+|//[^\n]*|/\*.*?\*/)*#[ \t]*include[ \t]*"parsing_helpers\.h"[ \t]*\n',
                       re.S)
_ANY_INCLUDE = re.compile(r"^[ \t]*#[ \t]*include", re.M)
_PCH_TROUBLE = re.compile(r"precompiled header|PCH file|\.pch\b|module file")
_HEADERS_SYM = "_ZN4ebpf13ExportedFiles8headers_B5cxx11E"   # std::map<string, const char *>
DEBUG_PREPROCESSOR = 0x4
PCH_BUILD_TIMEOUT = 120
PCH_KEPT = 8                    # PCHs kept in the directory (≈5.5 MB each), the least recently used go


def pch_dir() -> str:
    return os.path.join(os.environ.get("XDPLAB_CACHE") or "/var/cache/xdplab", "pch")


def bcc_virtual_headers(lib: Any) -> dict[str, bytes]:
    """bcc's built-in headers, as its compile sees them (ebpf::ExportedFiles::headers_, a
    libstdc++ std::map<std::string, const char *>): {"/virtual/include/bcc/helpers.h": text}."""
    base = ctypes.addressof(ctypes.c_char.in_dll(lib, _HEADERS_SYM))
    word = lambda a: ctypes.c_uint64.from_address(a).value            # noqa: E731
    root, count = word(base + 16), word(base + 40)                      # _M_header._M_parent, count
    out, todo = {}, [root] if root else []
    while todo:
        node = todo.pop()               # color, parent, left, right; then the string, the pointer
        name = ctypes.string_at(word(node + 32), word(node + 40)).decode()
        out[name] = ctypes.string_at(word(node + 64))
        todo += [c for c in (word(node + 16), word(node + 24)) if c]
    if len(out) != count or not all(n.startswith("/virtual/") for n in out):
        raise ValueError("bcc's built-in headers could not be read")
    return out


def _search_dirs(args: Sequence[str], cwd: str) -> list[str]:
    """clang's include search path of cc1 `args` run in `cwd`: -I directories, then -isystem."""
    dirs = {"-I": [], "-isystem": []}
    for flag, value in zip(args, args[1:]):
        if flag in dirs:
            dirs[flag].append(os.path.normpath(os.path.join(cwd, value)))
    return dirs["-I"] + dirs["-isystem"]


def _shadows(deps: Sequence[str], dirs: Sequence[str]) -> list[str]:
    """Paths that must stay absent for the include path to find each of `deps` where it did: for
    every search directory a header lies under, its relative name in each directory searched
    before that one, as far as no such file exists now (an existing one was there when clang
    searched; a new one could come first)."""
    out = set()
    for path in deps:
        for i, d in enumerate(dirs):
            if path.startswith(d + "/"):
                rel = path[len(d) + 1:]
                out.update(os.path.join(e, rel) for e in dirs[:i])
    return sorted(p for p in out if not os.path.lexists(p))


class Precompiled:
    """The PCHs of this helper: which one a compile may use, and building them in a child."""

    def __init__(self, lib: Any) -> None:
        self.lib = lib
        self.libs = set()               # bcc's, libbpf's and LLVM's libraries in this process
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                path = parts[5].strip() if len(parts) == 6 else ""
                if re.search(r"/lib(bcc|bpf|clang-cpp|LLVM)[^/]*\.so", path):
                    self.libs.add(path)
        # the clang of the LLVM bcc links (clang-14 for Debian 12's bcc): another one's PCH is refused
        major = [m.group(1) for m in map(re.compile(r"/libclang-cpp\.so\.(\d+)").search, self.libs) if m]
        self.clang = shutil.which(f"clang-{major[0]}") if major else None
        self.building: dict[str, subprocess.Popen] = {}
        self.failed: dict[str, float] = {}          # key → when its build failed (not retried soon)
        self.asked: collections.Counter = collections.Counter()   # key → compiles that had none
        self._static = None

    def static(self) -> list[Any]:
        """What identifies this process's compiler: bcc's and LLVM's libraries, clang-14, bcc's
        built-in headers."""
        if self._static is None:
            heads = bcc_virtual_headers(self.lib)
            digest = hashlib.sha256(json.dumps({k: v.decode("latin-1") for k, v in heads.items()},
                                               sort_keys=True).encode()).hexdigest()
            clang = os.path.realpath(self.clang) if self.clang else None
            self._static = [sorted((p, file_identity(p)) for p in self.libs), clang,
                            clang and file_identity(clang), digest]
        return self._static

    def key(self, cflags: Sequence[str], kernel_dir: str, header: str | None = PCH_HEADER) -> str:
        ident = {"cflags": list(cflags), "tree": os.path.realpath(kernel_dir), "cwd": os.getcwd(),
                 "env": {k: os.environ.get(k) for k in ("BCC_KERNEL_SOURCE",
                                                         "BCC_LINUX_VERSION_CODE", "ARCH")},
                 "uname": list(os.uname())[2:], "static": self.static(), "header": header}
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def usable_dir(self) -> str | None:
        d = pch_dir()
        try:
            os.makedirs(d, mode=0o755, exist_ok=True)
            st = os.stat(d)
        except OSError:
            return None
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return None                 # someone else's, or writable by others: not trusted
        return d

    def flags(self, text: str, cflags: Sequence[str], kernel_dir: str) -> tuple[list[str], str] | None:
        """(["-include-pch", path], key) for compiling `text` with `cflags`, or None: no PCH fits
        the source, or none is ready (one is then built for the next compile)."""
        self.reap()
        if not self.clang:
            return None
        if _PCH_LEAD.match(text):
            header = PCH_HEADER
        elif not _ANY_INCLUDE.search(text):
            header = None                 # bcc's headers alone: 0.7x the CPU of a tiny program
        else:
            return None                   # other headers: measured no faster with bcc's PCH
        d = self.usable_dir()
        if d is None:
            return None
        try:
            key = self.key(cflags, kernel_dir, header)
        except (OSError, ValueError):
            return None
        path, meta = os.path.join(d, key + ".pch"), os.path.join(d, key + ".json")
        try:
            with open(meta) as f:
                info = json.load(f)
            fresh = (file_identity(path) == tuple(info["pch"]) and
                     all(file_identity(p) == tuple(i) for p, i in info["deps"]) and
                     not any(os.path.lexists(p) for p in info["absent"]))
        except (OSError, ValueError, KeyError, TypeError):
            fresh = False
        if fresh:
            try:
                os.utime(meta)              # recently used: kept when the directory is pruned
            except OSError:
                pass
            return ["-include-pch", path], key
        self.asked[key] += 1
        if self.asked[key] >= 2:            # not for cflags used once (a test's own -I directory)
            self.build(key, d, cflags, header)
        return None

    def build(self, key: str, d: str, cflags: Sequence[str], header: str | None) -> None:
        if key in self.building or time.monotonic() - self.failed.get(key, -1e9) < 300:
            return
        req = json.dumps({"key": key, "dir": d, "cflags": list(cflags), "clang": self.clang,
                          "header": header})
        try:
            self.building[key] = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--build-pch", req],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            self.failed[key] = time.monotonic()

    def reap(self) -> None:
        for key, proc in list(self.building.items()):
            if proc.poll() is not None:
                del self.building[key]
                if proc.returncode != 0:
                    self.failed[key] = time.monotonic()

    def drop(self, key: str) -> None:
        """Forget a PCH clang complained about (it is built again, after a while)."""
        d = pch_dir()
        for ext in (".json", ".pch"):
            try:
                os.unlink(os.path.join(d, key + ext))
            except OSError:
                pass
        self.failed[key] = time.monotonic()


def _read_out(fd: int) -> str:
    return os.pread(fd, os.fstat(fd).st_size, 0).decode("utf-8", "replace")


def _write_out(fd: int, text: str) -> None:
    data = text.encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.lseek(fd, len(data), os.SEEK_SET)


def _relative(text: str, kernel_dir: str) -> str:
    """clang's messages with the kernel tree's headers named as a plain compile names them,
    relative to the tree (a PCH keeps them absolute)."""
    for d in {os.path.realpath(kernel_dir), os.path.normpath(kernel_dir)}:
        text = re.sub(rf"(?m)^((?:In file included from |\s+from )?){re.escape(d)}/", r"\1", text)
    return text


def prune(d: str, kept: int = PCH_KEPT) -> None:
    """Remove all but the `kept` most recently used PCHs of directory `d` (a compile that had
    just chosen one removed here finds it gone, and compiles again without it)."""
    metas = []
    for name in os.listdir(d):
        if name.endswith(".json"):
            try:
                metas.append((os.stat(os.path.join(d, name)).st_mtime, name[:-5]))
            except OSError:
                pass
    for _, key in sorted(metas, reverse=True)[kept:]:
        for ext in (".json", ".pch", ".h"):
            try:
                os.unlink(os.path.join(d, key + ext))
            except OSError:
                pass


def build_pch(req: Message) -> int:
    """`--build-pch`: the cc1 arguments bcc uses for these cflags (a tiny compile with bcc's
    DEBUG_PREPROCESSOR prints them), then clang (bcc's LLVM) with them makes the PCH of bcc's -include'd
    headers and parsing_helpers.h, and its dependency list; written under new names, then renamed."""
    import bcc
    from bcc import libbcc
    key, d, cflags = req["key"], req["dir"], req["cflags"]
    with tempfile.TemporaryFile() as err:
        with Redirected(err.fileno()):
            bcc.BPF(text=b"int xdplab_probe(struct xdp_md *ctx) { return XDP_PASS; }\n",
                    cflags=cflags, debug=DEBUG_PREPROCESSOR).cleanup()
        err.seek(0)
        lines = err.read().decode("utf-8", "replace").splitlines()
    cc1 = [line for line in lines if line.startswith("clang -cc1 ")]
    args = cc1[0].split(" ")[1:]          # bcc prints them unquoted, each one without spaces
    kdir = os.environ.get("BCC_KERNEL_SOURCE") or f"/lib/modules/{os.uname().release}/build"
    cwd = next(line.split(": ", 1)[1].strip() for line in lines
               if line.startswith("Running from kernel directory at: "))
    if os.path.realpath(cwd) != os.path.realpath(kdir) or args[-3:-1] != ["-x", "c"]:
        return 2
    args = args[:-3]                       # -x c /virtual/main.c
    i = args.index("-o")
    del args[i:i + 2]
    args = [a for a in args if a not in ("-emit-llvm-bc", "-emit-llvm-uselists")]
    work = tempfile.mkdtemp(prefix=key + ".", dir=d)
    try:
        heads = bcc_virtual_headers(libbcc.lib)
        roots = []
        for name, data in heads.items():
            real = os.path.join(work, "virtual", name.lstrip("/"))
            os.makedirs(os.path.dirname(real), exist_ok=True)
            with open(real, "wb") as f:
                f.write(data)
            os.utime(real, (0, 0))
            roots.append({"type": "file", "name": name, "external-contents": real})
        overlay = os.path.join(work, "virtual.yaml")
        with open(overlay, "w") as f:
            json.dump({"version": 0, "use-external-names": False, "roots": roots}, f)
        body = os.path.join(d, key + ".h")
        text = f'#include "{req["header"]}"\n' if req["header"] else ""     # kept: the compiles' dependency lists name it
        try:
            with open(body) as f:
                same = f.read() == text
        except OSError:
            same = False
        if not same:                           # rewritten only when it differs (its identity is
            with open(body + ".new", "w") as f:  # in the dependency lists of cached compiles)
                f.write(text)
            os.replace(body + ".new", body)
        out, deps = os.path.join(work, "out.pch"), os.path.join(work, "deps")
        cmd = [req["clang"], *args, "-ivfsoverlay", overlay,
               *[f"-fmodules-embed-file={n}" for n in heads],
               "-dependency-file", deps, "-MT", "pch", "-sys-header-deps",
               "-emit-pch", "-o", out, "-x", "c-header", body]
        p = subprocess.run(cmd, cwd=kdir, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=PCH_BUILD_TIMEOUT)
        if p.returncode != 0 or p.stderr.strip():
            return 1                           # a warning too: a plain compile would print it
        with open(deps) as f:
            words = f.read().replace("\\\n", " ").split()[1:]
        paths = sorted({os.path.normpath(w if os.path.isabs(w) else os.path.join(kdir, w))
                        for w in words if not w.startswith("/virtual/")})
        info = {"deps": [(p_, file_identity(p_)) for p_ in paths],
                "absent": _shadows(paths, _search_dirs(args, kdir)) + ([
                    os.path.join(d, req["header"]), os.path.join("/virtual", req["header"])]
                    if req["header"] else []),
                "args": args}
        if any(i is None for _, i in info["deps"]):
            return 1
        final = os.path.join(d, key + ".pch")
        os.replace(out, final)
        info["pch"] = file_identity(final)
        with open(os.path.join(work, "meta"), "w") as f:
            json.dump(info, f)
        os.replace(os.path.join(work, "meta"), os.path.join(d, key + ".json"))
        prune(d)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


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
        self.pch = Precompiled(libbcc.lib)
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
        kernel_dir = req.get("kernel_source") or f"/lib/modules/{os.uname().release}/build"
        pch = self.pch.flags(req["text"], cflags, kernel_dir)
        with tempfile.TemporaryFile(mode="w+") as deps:
            b = self.clang(text, cflags + (pch[0] if pch else []), out_fd, deps)
            if pch:
                said = _read_out(out_fd)
                if _PCH_TROUBLE.search(said):     # clang refused the PCH: drop it, compile plainly
                    self.pch.drop(pch[1])
                    pch = None
                    if not isinstance(b, Exception):
                        b.cleanup()
                    _write_out(out_fd, "")
                    deps.seek(0)
                    deps.truncate()
                    b = self.clang(text, cflags, out_fd, deps)
                elif said:                        # header paths as a plain compile names them
                    _write_out(out_fd, _relative(said, kernel_dir))
            if isinstance(b, Exception):
                return {"status": "compile_error", "message": str(b)}, []
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
            reply = {"status": "ok", "cached": False, "pch": pch is not None, "license": license,
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

    def clang(self, text: bytes, cflags: list[str], out_fd: int, deps: Any) -> Any:
        """bcc.BPF of `text`, clang's output to `out_fd`, its dependency list into file `deps`;
        the exception bcc raised when the compile failed."""
        with Redirected(out_fd):          # LLVM may exit() here: the client reads out_fd
            try:
                return self.bcc.BPF(text=text,
                                    cflags=cflags + ["-MD", "-MF", f"/proc/self/fd/{deps.fileno()}"])
            except Exception as e:
                return e

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
    if sys.argv[1] == "--build-pch":
        sys.exit(build_pch(json.loads(sys.argv[2])))
    main(int(sys.argv[1]), int(sys.argv[2]))
