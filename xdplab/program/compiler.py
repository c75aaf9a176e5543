"""Compiling and loading through the compile helper (xdplab/compile_helper.py), and what a Program
keeps of the result.

    loaded = compiler.load(text, cflags, functions)   # → Loaded, or raises Crashed/Rejected/...

One helper process per Python process (a notebook's kernel), started when the first lab is made
(so it is warm by the first %%xdp cell), restarted when LLVM ends it. It compiles each new source
once with bcc, loads every XDP function through the verifier and passes the program and map fds
back; the Loaded object here owns them. A source compiled before in this process — same text,
cflags, header tree and kernel — is not compiled again: the helper makes fresh maps and verifies
the kept instructions again (see compile_helper's doc), which takes milliseconds.

`Loaded` stands where a bcc.BPF object stood (`prog.bpf`): `prog.bpf["name"]` is bcc's Table for
that map, `.cleanup()` closes everything. What needs bcc's compiled module (the table and event
descriptions) came with the reply.
"""
from __future__ import annotations

import atexit
import dataclasses
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Sequence

from xdplab.program import compile_helper as wire
from xdplab.errors import LabError
from xdplab.kernel.libbpf import decode_table_type

HELPER = Path(__file__).resolve().parent / "compile_helper.py"
_lock = threading.RLock()
_helper: Helper | None = None
# bcc's objects (a Table, a BPF.Function) are typed Any: bcc has no type hints, and the unit tier
# runs without it


class Crashed(Exception):
    """The helper died while compiling (LLVM ended it); .text is what it printed."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class Failed(Exception):
    """clang rejected the source (.text: its diagnostics) or the verifier a function (.reply)."""

    def __init__(self, text: str, reply: dict[str, Any] | None = None) -> None:
        super().__init__(text)
        self.text, self.reply = text, reply


class NotSent(Exception):
    """The request never reached the helper (it had gone away in the meantime)."""


# -- the helper process --------------------------------------------------------------------------------
class Helper:
    """One running helper: its process, the socket, and the pipe that keeps it alive."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        life_r, life_w = os.pipe()            # both ends close-on-exec (os.pipe's default)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, str(HELPER), str(theirs.fileno()), str(life_r)],
                pass_fds=(theirs.fileno(), life_r), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, start_new_session=True)
        except BaseException:
            ours.close()
            os.close(life_w)
            raise
        finally:
            theirs.close()
            os.close(life_r)
        self.sock, self.life = ours, life_w
        self.pid = self.proc.pid
        self.owner = os.getpid()          # a forked child must not talk on its parent's socket

    def alive(self) -> bool:
        """True while the helper process runs."""
        return self.proc.poll() is None

    def request(self, msg: dict[str, Any],
                fds: Sequence[int] = ()) -> tuple[dict[str, Any], list[int]]:
        """Send `msg` (and `fds`) and wait for the reply: (reply, the fds that came with it).
        NotSent if it could not be sent, EOFError if the helper exited before replying."""
        try:
            wire.send(self.sock, msg, fds)
        except OSError as e:
            raise NotSent(e) from None
        reply, got = wire.recv(self.sock)
        if reply is None:
            raise EOFError("the compile helper exited")
        return reply, got

    def stop(self) -> None:
        """Close the socket and the pipe (the helper exits), and wait for the process."""
        for close in (self.sock.close, lambda: os.close(self.life)):
            try:
                close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def helper() -> Helper:
    """The running helper, started if there is none."""
    global _helper
    with _lock:
        if _helper is not None and _helper.owner != os.getpid():
            _helper = None                # inherited through fork(): the parent's, not ours
        if _helper is None or not _helper.alive():
            if _helper is not None:
                _helper.stop()
            _helper = Helper()
        return _helper


def prestart() -> None:
    """Start the helper now (a lab is being made, so a compile is coming)."""
    try:
        helper()
    except OSError:
        pass                              # load() will start it, or say what is wrong


def restart() -> Helper:
    """Stop the helper (if any) and start a new one."""
    with _lock:                          # (an RLock: _stop and helper take it too)
        _stop()
        return helper()


@atexit.register
def _stop():
    """Stop this process's helper, if it has one."""
    global _helper
    with _lock:
        if _helper is not None and _helper.owner == os.getpid():
            _helper.stop()
        _helper = None


# -- what identifies a compile -----------------------------------------------------------------------
def _dir_identity(path):
    """A directory's identity without reading a whole kernel tree: its real path, the inode and
    change times of the directory, its include/ and the version header (a rebuilt or replaced
    tree differs in them)."""
    real = os.path.realpath(path)
    out = [real]
    for sub in ("", "include", ".complete", "include/generated/uapi/linux/version.h",
                "include/linux/version.h", "include/config/kernel.release"):
        try:
            st = os.stat(os.path.join(real, sub))
            out.append((sub, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size))
        except OSError:
            out.append((sub, None))
    return out


def _include_identity(path, limit=500):
    """Every header under an -I directory by name, size and times (the learner's own headers, or
    bpf/include, change between runs)."""
    out = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(root, name)
            try:
                st = os.stat(p)
            except OSError:
                continue
            out.append((p, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
            if len(out) > limit:
                return out + ["…"]
    return out


def kernel_identity() -> tuple[str, str, str]:
    """(release, version, machine) of the running kernel."""
    try:
        version = Path("/proc/sys/kernel/version").read_text().strip()
    except OSError:
        version = ""
    return platform.release(), version, platform.machine()


def cache_key(text: str, cflags: Sequence[str], functions: Sequence[str],
              kernel_source: str | None) -> str:
    """The hash a compiled program is kept under: source, cflags, the functions loaded, the
    header tree (bcc's kernel tree and every -I directory), the kernel and bcc's version."""
    import bcc
    includes = [f[2:] for f in cflags if f.startswith("-I") and len(f) > 2]
    tree = kernel_source or f"/lib/modules/{platform.release()}/build"
    ident = {"text": text, "cflags": list(cflags), "functions": list(functions),
             "tree": _dir_identity(tree), "includes": [_include_identity(i) for i in includes],
             "kernel": kernel_identity(), "bcc": getattr(bcc, "__version__", "?")}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


# -- loading --------------------------------------------------------------------------------------------
def load(text: str, cflags: Sequence[str], functions: Sequence[str]) -> Loaded:
    """Compile `text` with `cflags` and load `functions` (XDP) in the helper → Loaded.
    Raises Crashed (LLVM ended the helper: .text), Failed (clang's .text, or the verifier's
    .reply), LabError (the helper could not be started or failed itself)."""
    kernel_source = os.environ.get("BCC_KERNEL_SOURCE")
    msg = {"op": "compile", "key": cache_key(text, cflags, functions, kernel_source),
           "text": text, "cflags": list(cflags), "functions": list(functions),
           "kernel_source": kernel_source, "caps": wire.capabilities()}
    with _lock, tempfile.TemporaryFile() as out:
        h = helper()
        try:
            try:
                reply, fds = h.request(msg, [out.fileno()])
            except NotSent:
                h = restart()
                reply, fds = h.request(msg, [out.fileno()])
        except (EOFError, NotSent, OSError) as e:
            h.proc.wait()
            out.seek(0)
            text_out = out.read().decode("utf-8", "replace")
            restart()                 # a warm helper for the next cell
            if isinstance(e, EOFError) or text_out:
                raise Crashed(text_out or "the compiler crashed without a message") from None
            raise LabError(f"the compile helper failed: {e}") from None
        except BaseException:         # interrupted while waiting: the reply would come late
            restart()
            raise
        out.seek(0)
        text_out = out.read().decode("utf-8", "replace")
    status = reply.get("status")
    if status == "compile_error":
        raise Failed(text_out or reply.get("message", ""))
    if status == "verifier_error":
        raise Failed(text_out, reply)
    if status != "ok":
        for fd in fds:
            os.close(fd)
        raise LabError(f"the compile helper failed: {reply.get('message')}",
                       "this is a bug in xdplab; the next load starts a fresh helper")
    return Loaded(reply, fds, text_out)


@dataclasses.dataclass
class TableInfo:
    name: str
    index: int
    fd: int
    type: int
    flags: int
    max_entries: int
    key_desc: str
    leaf_desc: str
    fields: list[str]


class Tables:
    """The maps of one load by name (`table_info`: name → facts with .fd, .key_desc, .leaf_desc),
    and bcc's Table for each, made when first asked for: what Loaded (bcc C) and ObjectLoaded
    (a libbpf object, xdplab.program.objects) share."""

    table_info: dict[str, Any]
    tables: dict[str, Any]

    def table_names(self) -> list[str]:
        """The names of the program's maps."""
        return list(self.table_info)

    def __contains__(self, name: str | bytes) -> bool:
        return (name.decode() if isinstance(name, bytes) else name) in self.table_info

    def __getitem__(self, name: str | bytes) -> Any:
        """bcc's Table object for map `name`."""
        name = name.decode() if isinstance(name, bytes) else name
        if name not in self.tables:
            if name not in self.table_info:
                raise KeyError(name)
            info = self.table_info[name]
            if info.key_desc is None or info.leaf_desc is None:      # BTF that could not be typed
                raise LabError(f"map {name!r} has no BTF types bcc's Table could use",
                               f"read it with prog.maps[{name!r}] (as bytes)")
            self.tables[name] = bcc_table(self, info)
        return self.tables[name]

    def get_table(self, name: str | bytes, keytype: Any = None, leaftype: Any = None,
                  reducer: Any = None) -> Any:
        """bcc.BPF.get_table's signature: bcc's Table for map `name` (the types are the map's own,
        whatever is passed)."""
        return self[name]


class Loaded(Tables):
    """The programs and maps of one load, owned here (what bcc.BPF was to a Program).
    `prog.bpf["map"]` gives bcc's Table for a map; `functions[name]` has `.fd`."""

    module = None                 # no bcc module in this process: bcc's Tables get what they need

    def __init__(self, reply: dict[str, Any], fds: Sequence[int], output: str = "") -> None:
        from bcc import BPF
        self.Function = BPF.Function
        self.cached = reply.get("cached", False)
        self.pch = reply.get("pch", False)    # compiled with a precompiled header
        self.license = reply.get("license")
        self.output = output
        self.perf_buffers = {}
        names = reply["functions"]
        self.funcs = {n: BPF.Function(self, n, fd) for n, fd in zip(names, fds)}
        rest = iter(fds[len(names):])
        self.table_info: dict[str, TableInfo] = {}
        for t in reply["tables"]:
            fd = next(rest) if t["has_fd"] else -1
            self.table_info[t["name"]] = TableInfo(t["name"], t["index"], fd, t["type"], t["flags"],
                                                   t["max_entries"], t["key_desc"], t["leaf_desc"],
                                                   t["fields"])
        self.tables: dict[str, Any] = {}         # name → bcc's Table, made when first asked for

    def cleanup(self) -> None:
        """Close every program and map fd of this load (the kernel frees what nothing else holds)."""
        for t in self.tables.values():
            for key in list(getattr(t, "_open_key_fds", {})):
                try:
                    del t[key]
                except Exception:
                    pass
        self.tables.clear()
        for fn in self.funcs.values():
            if fn.fd is not None and fn.fd >= 0:
                os.close(fn.fd)
                fn.fd = -1
        for t in self.table_info.values():
            if t.fd >= 0:
                os.close(t.fd)
                t.fd = -1

    close = cleanup


def bcc_table(bpf: Any, info: Any) -> Any:
    """bcc's own Table class for a map, made without bcc's module (whose facts we were sent)."""
    from bcc import table as T
    classes = {T.BPF_MAP_TYPE_HASH: T.HashTable, T.BPF_MAP_TYPE_ARRAY: T.Array,
               T.BPF_MAP_TYPE_PROG_ARRAY: T.ProgArray,
               T.BPF_MAP_TYPE_PERF_EVENT_ARRAY: T.PerfEventArray,
               T.BPF_MAP_TYPE_PERCPU_HASH: T.PerCpuHash, T.BPF_MAP_TYPE_PERCPU_ARRAY: T.PerCpuArray,
               T.BPF_MAP_TYPE_LPM_TRIE: T.LpmTrie, T.BPF_MAP_TYPE_STACK_TRACE: T.StackTrace,
               T.BPF_MAP_TYPE_LRU_HASH: T.LruHash, T.BPF_MAP_TYPE_LRU_PERCPU_HASH: T.LruPerCpuHash,
               T.BPF_MAP_TYPE_CGROUP_ARRAY: T.CgroupArray, T.BPF_MAP_TYPE_DEVMAP: T.DevMap,
               T.BPF_MAP_TYPE_CPUMAP: T.CpuMap, T.BPF_MAP_TYPE_XSKMAP: T.XskMap,
               T.BPF_MAP_TYPE_ARRAY_OF_MAPS: T.MapInMapArray,
               T.BPF_MAP_TYPE_HASH_OF_MAPS: T.MapInMapHash, T.BPF_MAP_TYPE_RINGBUF: T.RingBuf}
    key, leaf = decode_table_type(info.key_desc), decode_table_type(info.leaf_desc)
    if info.type in (T.BPF_MAP_TYPE_QUEUE, T.BPF_MAP_TYPE_STACK):
        t = T.QueueStack(bpf, info.index, info.fd, leaf)
    elif info.type in classes:
        cls = classes[info.type]
        args = (bpf, info.index, info.fd, key, leaf)
        t = cls(*args, name=info.name.encode()) if cls in (T.PerfEventArray, T.RingBuf) else cls(*args)
    else:
        raise LabError(f"bcc has no table class for map {info.name!r} (type {info.type})")
    # what TableBase.__init__ would have asked bcc's module
    t.ttype, t.flags, t.max_entries = info.type, info.flags, int(info.max_entries)
    return t
