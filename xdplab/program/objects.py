"""Programs built by clang and loaded by libbpf: the libbpf dialect of `lab.load`.

    lab.load("xdp_count.bpf.c")             # libbpf-style C: SEC("xdp"), BTF-defined maps
    lab.load("prog.o")                      # an object built elsewhere (clang -O2 -g -target bpf)
    lab.load(text, dialect="libbpf")        # C text, said to be libbpf's

Which dialect a source is (`dialect_of`): an explicit dialect= wins; a .o is an object; a file
named *.bpf.c, or C text that includes <bpf/bpf_helpers.h> and uses SEC(, is libbpf's; anything
else is bcc's (xdplab/program/compiler.py).

`build()` runs clang in a subprocess (`-O2 -g -target bpf`, the installed UAPI headers,
bpf/include, libbpf-dev's <bpf/...> from /usr/include; for a source that includes "vmlinux.h",
CO-RE's header of every kernel type, made from the running kernel's BTF by bpftool:
`vmlinux_dir()`), with the learner's own file
as the main file, so that clang's positions and the BTF line info of the verifier's log are the
learner's lines as written (bcc's rewriting does not happen here).

`load()` opens the object with libbpf (libbpf1, through ctypes: xdplab.kernel.libbpf), loads
every program and map through the kernel, duplicates the fds of the XDP programs and of every map,
and closes the bpf_object: from then on the kernel objects live exactly as long as the returned
`ObjectLoaded`, which stands where compiler.Loaded stands for a bcc program (`prog.bpf`). The
maps' keys and values are typed from the object's BTF (xdplab.maps.btf.btf_desc: bcc's type
descriptions, so the same ctypes types and codecs); a side BTF cannot type is read as raw bytes
and the map says why (`Map.notes`).
"""
from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Sequence

from xdplab.errors import LabError, SetupError
from xdplab.kernel.constants import BPF_PROG_TYPE_XDP
from xdplab.program.compiler import Tables

REPO = Path(__file__).resolve().parents[2]
INCLUDE = REPO / "bpf" / "include"
LIBBPF_HEADERS = Path("/usr/include/bpf")
DIALECTS = ("bcc", "libbpf")
CFLAGS = ["-O2", "-g", "-target", "bpf"]
LOG_SIZE = 1 << 22               # per program: the verifier keeps the end of a longer log
CLANG_TIMEOUT = 120
INSTALL_HINT = "run 'sudo make install' (it installs clang, llvm and libbpf-dev with the rest)"
_ARCH = {"x86_64": "x86", "aarch64": "arm64", "riscv64": "riscv", "s390x": "s390",
         "ppc64le": "powerpc"}
_SEC = re.compile(r"\bSEC\s*\(")
_VMLINUX = re.compile(r"^[ \t]*#[ \t]*include[ \t]*[<\"]vmlinux\.h[>\"]", re.M)
VMLINUX_BTF = Path("/sys/kernel/btf/vmlinux")     # the running kernel's own BTF
BPFTOOL_TIMEOUT = 60
_HELPERS = re.compile(r"#\s*include\s*[<\"]bpf/bpf_helpers\.h[>\"]")
# BPF program types (enum bpf_prog_type), for messages about an object's other programs
PROG_TYPES = {0: "unspec", 1: "socket_filter", 2: "kprobe", 3: "tc (sched_cls)", 4: "sched_act",
              5: "tracepoint", 6: "xdp", 7: "perf_event", 8: "cgroup_skb", 26: "tracing",
              31: "struct_ops", 32: "ext", 33: "lsm", 34: "sk_lookup", 35: "syscall"}


def dialect_of(text: str | None, path: str | None, dialect: str | None = None) -> str:
    """"bcc", "libbpf" or "object" (a .o) for a source: see the module doc."""
    if dialect is not None:
        if dialect not in DIALECTS:
            raise LabError(f"unknown dialect {dialect!r}",
                           "use dialect='bcc' (bcc's C, the lessons') or dialect='libbpf' "
                           "(clang-built C with SEC(...) and <bpf/bpf_helpers.h>)")
        if path and path.endswith(".o"):
            return "object"
        return dialect
    if path and path.endswith(".o"):
        return "object"
    if path and path.endswith(".bpf.c"):
        return "libbpf"
    if text is not None:
        from xdplab.diagnostics import code_only
        code = code_only(text)
        if _SEC.search(code) and _HELPERS.search(text):
            return "libbpf"
    return "bcc"


def clang() -> str:
    """The path of clang; SetupError when it is not installed."""
    found = shutil.which("clang")
    if not found:
        raise SetupError("clang is not installed: libbpf programs are compiled by clang itself "
                         "(bcc brings its own copy of LLVM, which is why the bcc lessons run "
                         "without it)", INSTALL_HINT)
    return found


def clang_version() -> str:
    """"clang 14.0.6" (the first line of clang --version, shortened), or "clang"."""
    try:
        out = subprocess.run([clang(), "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "clang"
    m = re.search(r"clang version (\S+)", out)
    return f"clang {m.group(1)}" if m else "clang"


def include_flags() -> list[str]:
    """-I flags: bpf/include, and the directory of the architecture's UAPI headers (<asm/...>)
    that clang does not search when it compiles for -target bpf. The UAPI headers themselves
    (<linux/bpf.h>, <linux/if_ether.h>...) and libbpf-dev's <bpf/...> are the installed ones in
    /usr/include (Debian's linux-libc-dev, which clang depends on through libc6-dev), as for any
    libbpf program built outside xdplab. (The uapi/ directories of bcc's kernel header tree,
    xdplab.kernel.headers, are the kernel's source form: their <linux/stddef.h> includes kernel-
    internal headers, which do not compile outside the kernel build.)"""
    arch = _ARCH.get(platform.machine(), "x86")
    multiarch = [Path(f"/usr/include/{platform.machine()}-linux-gnu"),
                 *sorted(Path("/usr/include").glob("*-linux-gnu*"))]
    asm = next((d for d in multiarch if (d / "asm" / "types.h").is_file()), None)
    return [f"-I{INCLUDE}", f"-D__TARGET_ARCH_{arch}", *([f"-I{asm}"] if asm else [])]


def cache_dir(what: str) -> Path:
    """$XDPLAB_CACHE/WHAT (default /var/cache/xdplab/WHAT), made if need be; LabError unless this
    user owns it and nobody else can write to it (what is compiled from there must be ours)."""
    root = Path(os.environ.get("XDPLAB_CACHE") or "/var/cache/xdplab")
    d = root / what
    try:
        d.mkdir(mode=0o755, parents=True, exist_ok=True)
        stats = [(p, p.stat()) for p in (root, d)]      # the cache and this part of it
    except OSError as e:
        raise LabError(f"cannot use the cache directory {d}: {e.strerror}",
                       "set XDPLAB_CACHE to a directory of yours") from None
    for p, st in stats:
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise LabError(f"the cache directory {p} belongs to someone else or others can write "
                           "to it", "set XDPLAB_CACHE to a directory only you can write to")
    return d


def vmlinux_dir() -> str:
    """The directory of a vmlinux.h made from the running kernel's BTF (every type of the kernel
    as C, what CO-RE programs include instead of the UAPI headers): `bpftool btf dump file
    /sys/kernel/btf/vmlinux format c`, made once per kernel BTF (keyed by its hash) and kept in
    cache_dir("vmlinux"). LabError when the kernel has no BTF, SetupError without bpftool."""
    import hashlib
    if not VMLINUX_BTF.is_file():
        raise LabError("this kernel has no BTF of its own (/sys/kernel/btf/vmlinux), which "
                       "vmlinux.h is made from",
                       "CO-RE needs a kernel built with CONFIG_DEBUG_INFO_BTF=y; without it, "
                       "include the UAPI headers instead (<linux/bpf.h>, <linux/if_ether.h>, "
                       "<linux/ip.h>...)")
    digest = hashlib.sha256(VMLINUX_BTF.read_bytes()).hexdigest()[:16]
    d = cache_dir("vmlinux") / f"{platform.release()}-{digest}"
    header = d / "vmlinux.h"
    if header.is_file():
        return str(d)
    bpftool = shutil.which("bpftool") or next(
        (p for p in ("/usr/sbin/bpftool", "/sbin/bpftool") if os.access(p, os.X_OK)), None)
    if bpftool is None:
        raise SetupError("bpftool is not installed: it makes vmlinux.h from the kernel's BTF",
                         "run 'sudo make install' (it installs bpftool with the rest)")
    d.mkdir(mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".vmlinux.h.")
    try:
        with os.fdopen(fd, "wb") as out:
            run = subprocess.run([bpftool, "btf", "dump", "file", str(VMLINUX_BTF), "format", "c"],
                                 stdout=out, stderr=subprocess.PIPE, timeout=BPFTOOL_TIMEOUT,
                                 stdin=subprocess.DEVNULL)
        if run.returncode != 0:
            raise LabError("bpftool could not make vmlinux.h from the kernel's BTF",
                           run.stderr.decode("utf-8", "replace").strip()[-500:] or
                           "try 'bpftool btf dump file /sys/kernel/btf/vmlinux format c' yourself")
        os.chmod(tmp, 0o644)
        os.replace(tmp, header)          # whole or not at all, also for a process beside this one
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return str(d)


@dataclasses.dataclass
class Built:
    """One clang run: the object file (in `workdir`, removed by cleanup()) and the main file's
    name as clang and the BTF line info give it."""
    obj: str
    main: str
    workdir: str

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def build(text: str, path: str | None, cflags: Sequence[str] = (), name: str = "program") -> Built:
    """Compile libbpf-style C with clang in a subprocess → Built. The learner's own file is the
    main file when there is one (its includes are found beside it), else the text is written to
    a scratch NAME.bpf.c. Raises CompileError (clang's diagnostics at the learner's line) or
    SetupError (clang or libbpf-dev missing)."""
    from xdplab import diagnostics
    cc = clang()
    workdir = tempfile.mkdtemp(prefix="xdplab-clang-")
    try:
        if path is None:
            safe = re.sub(r"[^\w.-]", "_", name) or "program"
            main = os.path.join(workdir, safe + ".bpf.c")
            Path(main).write_text(text)
        else:
            main = os.path.abspath(path)
        obj = os.path.join(workdir, "out.o")
        core = [f"-I{vmlinux_dir()}"] if _VMLINUX.search(text) else []
        argv = [cc, *CFLAGS, *include_flags(), *core, *diagnostics.CFLAGS, *cflags, "-c", main,
                "-o", obj]
        try:
            run = subprocess.run(argv, capture_output=True, timeout=CLANG_TIMEOUT,
                                 stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise SetupError(f"clang could not be started ({cc})", INSTALL_HINT) from None
        except subprocess.TimeoutExpired:
            raise LabError(f"clang did not finish compiling in {CLANG_TIMEOUT} s",
                           "a huge unrolled loop? make the program smaller") from None
        err = run.stderr.decode("utf-8", "replace")
        if run.returncode != 0 or not os.path.exists(obj):
            if re.search(r"'bpf/\w+\.h' file not found", err) and not LIBBPF_HEADERS.is_dir():
                raise SetupError("libbpf's headers (<bpf/bpf_helpers.h>) are not installed",
                                 INSTALL_HINT)
            if "'gnu/stubs-32.h' file not found" in err:
                raise SetupError("a UAPI header reached glibc's <sys/socket.h> (<linux/icmp.h> "
                                 "does, through <linux/if.h>), which for -target bpf wants glibc's "
                                 "32-bit stubs, and they are not installed",
                                 "run 'sudo make install' (it installs libc6-dev-i386, as "
                                 "xdp-tutorial's setup does)")
            raise diagnostics.compile_error(err, text, main=main, dialect="libbpf")
        return Built(obj, main, workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


# -- loading -----------------------------------------------------------------------------------------
@dataclasses.dataclass
class Function:
    """One loaded program of the object: its name (the C function's), ELF section, type, fd."""
    name: str
    section: str
    type: int
    fd: int


@dataclasses.dataclass
class TableInfo:
    """One map of the object, as compiler.TableInfo describes a bcc program's map; key_desc or
    leaf_desc None: BTF could not type that side (read as bytes), `notes` says why."""
    name: str
    index: int
    fd: int
    type: int
    flags: int
    max_entries: int
    key_desc: str | None
    leaf_desc: str | None
    fields: list[str]
    notes: list[str]


class ObjectLoaded(Tables):
    """The programs and maps of one libbpf object, owned here: the XDP programs in `funcs`, the
    object's other programs in `others` (their fds are kept too), every map in `table_info`.
    `cleanup()` closes every fd."""

    cached = False
    module = None

    def __init__(self, funcs: dict[str, Function], others: dict[str, Function],
                 tables: dict[str, TableInfo], log: str = "") -> None:
        self.funcs, self.others, self.table_info = funcs, others, tables
        self.output = log              # what libbpf printed (warnings) while loading
        self.tables: dict[str, Any] = {}

    def cleanup(self) -> None:
        """Close every program and map fd of this object (the kernel frees what nothing else
        holds)."""
        self.tables.clear()
        for f in [*self.funcs.values(), *self.others.values(), *self.table_info.values()]:
            if f.fd >= 0:
                os.close(f.fd)
                f.fd = -1

    close = cleanup


def _fail_after_open(message: str, hint: str, libbpf_text: str) -> LabError:
    err = LabError(message, hint)
    err.details = libbpf_text.strip() or None
    return err


def _libbpf_said(text: str) -> str:
    """libbpf's own lines, without its prefix and the verifier log it prints."""
    out, in_log = [], False
    for ln in text.splitlines():
        if "-- BEGIN PROG LOAD LOG --" in ln:
            in_log = True
        elif "-- END PROG LOAD LOG --" in ln:
            in_log = False
        elif not in_log and ln.strip():
            out.append(ln.removeprefix("libbpf: ").strip())
    return "\n".join(out)


def load(obj_path: str, source: str = "", main: str | None = None,
         pin_root: str | os.PathLike[str] | None = None) -> ObjectLoaded:
    """Open and load the object file `obj_path` with libbpf → ObjectLoaded. `source` is the C it
    was built from (for explained errors; "" when unknown), `main` that file's path as the BTF
    line info names it. `pin_root`: where maps declared with __uint(pinning, LIBBPF_PIN_BY_NAME)
    are pinned (the lab's directory under /sys/fs/bpf/xdplab, removed with the lab) instead of
    libbpf's /sys/fs/bpf, which would outlive the lab. Raises VerifierError, LabError (no XDP
    program, a section libbpf does not know, an object libbpf cannot open) or SetupError."""
    from xdplab.kernel.libbpf import BpfObjectOpenOpts, capture_print, errno_of, libbpf
    lib = libbpf()
    opts = BpfObjectOpenOpts(sz=ctypes.sizeof(BpfObjectOpenOpts))
    if pin_root is not None:
        try:
            os.makedirs(pin_root, exist_ok=True)
        except OSError:
            pass                      # no bpffs: a map to pin fails to load, and says so
        opts.pin_root_path = os.fsencode(pin_root)
    with capture_print() as cap:
        obj = lib.bpf_object__open_file(os.fsencode(obj_path), ctypes.byref(opts))
        if not obj:
            err = ctypes.get_errno()
            said = _libbpf_said(cap.text)
            raise _open_error(obj_path, err, said, cap.text)
        try:
            return _load_open(lib, obj, obj_path, source, main, cap, errno_of)
        finally:
            lib.bpf_object__close(obj)


def _open_error(obj_path, err, said, raw):
    name = os.path.basename(obj_path)
    if m := re.search(r"sec '([^']*)': failed to guess program type", said):
        return _fail_after_open(
            f"{name}: libbpf does not know the section SEC(\"{m.group(1)}\"), so it cannot tell "
            "what kind of program that function is",
            "an XDP program goes in SEC(\"xdp\") (or SEC(\"xdp.frags\") for multi-buffer frames); "
            "helper functions need no SEC(...): make them static __always_inline", raw)
    if re.search(r"not an ELF|elf: failed to open|elf_begin|Invalid ELF|failed to get EHDR|"
                 r"not a BPF ELF|not a valid eBPF|not a proper ELF", said, re.I) or err in (8, 95):   # ENOEXEC
        return _fail_after_open(f"{name} is not a BPF object file libbpf can read ({said or os.strerror(err)})",
                                "build it with clang -O2 -g -target bpf -c prog.bpf.c -o prog.o", raw)
    return _fail_after_open(f"libbpf could not open {name}: {said or os.strerror(err)}",
                            "build it with clang -O2 -g -target bpf -c prog.bpf.c -o prog.o", raw)


def _programs(lib, obj):
    progs, p = [], None
    while True:
        p = lib.bpf_object__next_program(obj, p)
        if not p:
            return progs
        progs.append(p)


def _maps(lib, obj):
    maps, m = [], None
    while True:
        m = lib.bpf_object__next_map(obj, m)
        if not m:
            return maps
        maps.append(m)


def _load_open(lib, obj, obj_path, source, main, cap, errno_of):
    from xdplab import diagnostics
    progs = _programs(lib, obj)
    name = os.path.basename(obj_path)
    kinds = {lib.bpf_program__name(p).decode(): (lib.bpf_program__section_name(p).decode(),
                                                   lib.bpf_program__type(p)) for p in progs}
    if not any(t == BPF_PROG_TYPE_XDP for _, t in kinds.values()):
        found = ", ".join(f"{n} in SEC(\"{s}\") ({PROG_TYPES.get(t, t)})" for n, (s, t) in kinds.items())
        raise _fail_after_open(
            f"{name} has no XDP program" + (f": it has {found}" if found else
                                            ": no function is in a SEC(...) section"),
            "put the XDP function in its section: SEC(\"xdp\") int my_prog(struct xdp_md *ctx) "
            "{ ... } (and include <bpf/bpf_helpers.h>, which defines SEC)", cap.text)
    logs = {}
    for p in progs:
        buf = ctypes.create_string_buffer(LOG_SIZE)
        logs[lib.bpf_program__name(p).decode()] = buf
        lib.bpf_program__set_log_buf(p, buf, LOG_SIZE)
    rc = lib.bpf_object__load(obj)
    if rc != 0:
        err = errno_of(rc)
        failed = next((n for n, b in logs.items() if b.value), None)
        if failed is None:
            m = re.search(r"prog '(\w+)': (?:BPF program load failed|failed to load)", cap.text)
            failed = m.group(1) if m else None
        said = _libbpf_said(cap.text)
        if failed and logs[failed].value:
            log = logs[failed].value.decode("utf-8", "replace")
            raise diagnostics.verifier_error(log, source, failed, dialect="libbpf",
                                             main=os.path.basename(main) if main else None)
        if err == 1:                       # EPERM without a log
            from xdplab.errors import PrivilegeError
            raise PrivilegeError(f"not allowed to load {name}", diagnostics.PRIVILEGE_HINT)
        m = re.search(r"map '(\w+)'[^\n]*?: (?:failed to create|failed)[^\n]*", said)
        if m:
            code = diagnostics.code_only(source).split("\n")
            line = next((i for i, t in enumerate(code, 1) if re.search(rf"\b{m.group(1)}\b", t)), None)
            raise _fail_after_open(f"the kernel refused map '{m.group(1)}' of {name}: "
                                   f"{os.strerror(err)}" + (f" (line {line})" if line else ""),
                                   "check the map's type, key and value sizes and max_entries",
                                   cap.text)
        raise _fail_after_open(f"libbpf could not load {name}: {said.splitlines()[-1] if said else os.strerror(err)}",
                               "the details show what libbpf said", cap.text)
    funcs, others = {}, {}
    try:
        for p in progs:
            pname = lib.bpf_program__name(p).decode()
            fd = lib.bpf_program__fd(p)
            if fd < 0:                     # not loaded (autoload off)
                continue
            section, ptype = kinds[pname]
            (funcs if ptype == BPF_PROG_TYPE_XDP else others)[pname] = \
                Function(pname, section, ptype, os.dup(fd))
        tables = {}
        for i, m in enumerate(_maps(lib, obj)):
            mname = lib.bpf_map__name(m).decode()
            fd = lib.bpf_map__fd(m)
            if fd < 0:
                continue
            tables[mname] = _table(lib, obj, m, mname, i, os.dup(fd))
    except BaseException:
        ObjectLoaded(funcs, others, locals().get("tables", {})).cleanup()
        raise
    return ObjectLoaded(funcs, others, tables, _libbpf_said(cap.text))


def _table(lib, obj, m, mname, index, fd):
    """TableInfo of map `m`, its key and value described from the object's BTF."""
    from xdplab.kernel.libbpf import map_info
    from xdplab.maps.btf import Untyped, btf_desc
    from xdplab.maps.kinds import ARRAYS, MAP_TYPES
    info = map_info(fd)
    kind = MAP_TYPES[info.type] if info.type < len(MAP_TYPES) else f"type {info.type}"
    btf = lib.bpf_object__btf(obj)
    descs, notes = [], []
    for side, tid, size in (("key", lib.bpf_map__btf_key_type_id(m), info.key_size),
                            ("value", lib.bpf_map__btf_value_type_id(m), info.value_size)):
        if not size:
            descs.append(None)
            continue
        try:
            if not btf:
                raise Untyped("the object has no BTF (built without -g?)")
            descs.append(json.dumps(btf_desc(btf, tid)))
        except Exception as e:         # Untyped, or a BTF xdplab misreads: bytes, never a crash
            e = e if isinstance(e, Untyped) else f"xdplab could not read its BTF ({e})"
            if side == "key" and kind in ARRAYS and size == 4:
                descs.append(json.dumps("unsigned int"))      # an array's index, whatever BTF says
                continue
            descs.append(None)
            notes.append(f"its {side} is shown as {size} raw bytes: {e}; declare(" + side +
                         "=...) says how to read it")
    return TableInfo(mname, index, fd, info.type, info.map_flags, info.max_entries, descs[0],
                     descs[1], [], notes)
