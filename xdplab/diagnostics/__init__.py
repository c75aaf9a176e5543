"""Turning clang's and the verifier's output into errors a newcomer can act on.

bcc prints clang's diagnostics and the verifier's log on the C-level stderr (fd 2) and raises a
bare Exception; `capture_stderr` collects that text, `compile_error` / `verifier_error` turn it
into a CompileError / VerifierError that points at the learner's line and says, in plain words,
why and what to do.

Line numbers. clang reports errors against the learner's text as written (/virtual/main.c, lines
exact). The verifier's line info (BTF: `; <source text> @ main.c:N`) and bcc's DEBUG_SOURCE listing
refer to bcc's *rewritten* main.c instead: bcc 0.26 prepends 10 lines, inserts a line before every
function definition (`__attribute__((section(...)))` or `__attribute__((always_inline))`) and a
blank line after the `{` of every non-static function, and rewrites map calls such as
`m.lookup(&k)` in place. `learner_line` undoes that, and checks the result against the source
text the log quotes.

The libbpf dialect (xdplab/program/objects.py) compiles the learner's own file with clang: its
name is the `main=` of compile_error / verifier_error, and every line number (clang's, the BTF
line info's) is the learner's as written. `dialect="libbpf"` also leaves out the explanations
that only hold for bcc (SEC(), bpf_printk, <bpf/...> headers, bcc's map macros and u32 names).
"""
from __future__ import annotations

import contextlib
import ctypes
import difflib
import os
import re
import sys
import tempfile
from typing import Any, Iterator

from xdplab.errors import CompileError, PrivilegeError, VerifierError

# Warnings that are errors in modern C compilers (GCC 14) and almost always bugs in a BPF program:
# a call to an undeclared function compiles to a call the verifier rejects with "last insn is not
# an exit or jmp"; `struct iphdr *ip = eth + 1` silently mixes header types; a constant division by
# zero is undefined, and clang drops the code around it (the verifier then finds no return value).
CFLAGS = ["-Werror=implicit-function-declaration", "-Werror=incompatible-pointer-types",
          "-Werror=int-conversion", "-Werror=implicit-int", "-Werror=return-type",
          "-Werror=division-by-zero"]
DEBUG_SOURCE = 0x8          # bcc.BPF(debug=...): print "instruction → source line" at compile time
PROLOGUE_LINES = 10         # lines bcc 0.26 puts in front of main.c
PRIVILEGE_HINT = ("run JupyterLab (or Python) as root: 'sudo make lab' / 'sudo make test'. Loading "
                  "XDP programs and creating maps needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON")


# -- capturing fd 2 --------------------------------------------------------------------------------
class Captured:
    """What was written to fd 2 inside `capture_stderr()`; `.text` is set when the block ends."""
    text = ""


@contextlib.contextmanager
def capture_stderr() -> Iterator[Captured]:
    """Redirect file descriptor 2 (where libbcc, clang and LLVM print) to a temporary file for the
    duration of the block, so the text can be parsed and does not spill into the notebook. Python's
    sys.stderr is flushed on both sides. fd 2 is per process: output of other threads during the
    block is captured too."""
    cap = Captured()
    with tempfile.TemporaryFile() as f:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            yield cap
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            f.seek(0)
            cap.text = f.read().decode("utf-8", "replace")


# -- where is that line? ---------------------------------------------------------------------------
_LITERALS = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)


def code_only(source: str) -> str:
    """`source` with comments, literals and preprocessor lines blanked; newlines kept."""
    code = _LITERALS.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), source)
    out, cont = [], False
    for line in code.split("\n"):
        directive = cont or line.lstrip().startswith("#")
        cont = directive and line.rstrip().endswith("\\")
        out.append(" " * len(line) if directive else line)
    return "\n".join(out)


def functions(source: str) -> list[tuple[str, int, int, int, bool]]:
    """Top-level function definitions: [(name, first_line, brace_line, last_line, is_static)]."""
    code = code_only(source)
    line_of = lambda pos: code.count("\n", 0, pos) + 1
    found, depth, start, current = [], 0, None, None
    for i, ch in enumerate(code):
        if depth:
            depth += (ch == "{") - (ch == "}")
            if depth == 0:
                if current:
                    name, first, brace, static = current
                    found.append((name, first, brace, line_of(i), static))
                current, start = None, None
        elif ch == "{":
            decl = code[start:i] if start is not None else ""
            plain = re.sub(r"__attribute__\s*\(\(.*?\)\)", " ", decl, flags=re.S)
            name = re.search(r"(\w+)\s*\(", plain)
            if name and decl.rstrip().endswith(")") and "=" not in decl.split("(")[0]:
                current = (name.group(1), line_of(start), line_of(i),
                           bool(re.search(r"\bstatic\b", decl)))
            depth = 1
        elif ch == ";":
            start = None
        elif start is None and not ch.isspace():
            start = i
    return found


def rewritten_lines(source: str) -> dict[int, int]:
    """{learner line: line in bcc's rewritten main.c} (the coordinates of BTF line info)."""
    fns = functions(source)
    n = source.count("\n") + 1
    return {ln: ln + PROLOGUE_LINES + sum(first <= ln for _, first, _, _, _ in fns)
            + sum(brace < ln for _, _, brace, _, static in fns if not static) for ln in range(1, n + 1)}


def _norm(text):
    return " ".join(text.split())


def learner_line(source: str, rewritten: int, text: str | None = None) -> int | None:
    """The learner's line for line `rewritten` of bcc's main.c, whose text (as quoted in the log)
    is `text`. The computed position is checked against the text; if bcc rewrote the line (map
    calls) or the layout is unexpected, the most similar nearby line wins."""
    fwd = rewritten_lines(source)
    inverse = {r: ln for ln, r in fwd.items()}
    below = [ln for ln, r in fwd.items() if r <= rewritten]
    guess = inverse.get(rewritten) or (max(below) if below else None)
    lines = source.splitlines()
    want = _norm(text or "")
    if not want or not lines:
        return guess
    if guess and guess <= len(lines) and _norm(lines[guess - 1]) == want:
        return guess
    exact = [ln for ln, s in enumerate(lines, 1) if _norm(s) == want]
    if exact:
        return min(exact, key=lambda ln: abs(ln - (guess or rewritten)))
    g = min(guess or len(lines), len(lines))

    def score(ln):          # bcc rewrites map calls: the start of the line survives, the rest is alike
        have = _norm(lines[ln - 1])
        prefix = len(os.path.commonprefix([have, want])) / len(want)
        return prefix + difflib.SequenceMatcher(None, have, want).ratio() - 0.1 * abs(ln - g)
    best = max(range(max(1, g - 3), min(len(lines), g + 3) + 1), key=score)
    return best if score(best) >= 0.3 else guess


def _function_span(source, function):
    for name, first, _, last, _ in functions(source):
        if name == function:
            return first, last
    return 1, source.count("\n") + 1


_LOOP = re.compile(r"\b(for|while|do)\b")


def _loop_line(source, function, near=None):
    """The loop header at or above line `near` in `function` (or its only loop)."""
    first, last = _function_span(source, function)
    code = code_only(source).split("\n")
    loops = [ln for ln in range(first, last + 1) if _LOOP.search(code[ln - 1])]
    if near:
        above = [ln for ln in loops if ln <= near]
        return above[-1] if above else near
    return loops[0] if loops else None


def _find(source, words, function=None):
    """First line (inside `function` if it has one there) that contains one of `words`."""
    first, last = _function_span(source, function) if function else (1, source.count("\n") + 1)
    code = code_only(source).split("\n")
    hits = [ln for ln, s in enumerate(code, 1) if any(re.search(rf"\b{re.escape(w)}\b", s) for w in words)]
    inside = [ln for ln in hits if first <= ln <= last]
    return (inside or hits or [None])[0]


# -- clang -------------------------------------------------------------------------------------------
_DIAG = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+): "
                   r"(?P<kind>fatal error|error|warning|note): (?P<msg>.*)$")
_BACKEND = [  # LLVM's BPF backend: these end the process (see compile_helper); lines are bcc's main.c
    re.compile(r"^error: (?:/virtual/main\.c:(?P<line>\d+):\d+: )?.*?in function (?P<fn>\w+)[^:]*: "
               r"(?P<msg>.*)$"),
    re.compile(r"^Error at line (?P<line>\d+): (?P<msg>.*?)(?: for DAG:.*)?$"),
    re.compile(r"^LLVM ERROR: (?P<msg>.*)$")]
_VLA = re.compile(r"^\s*(?!return\b|if\b|while\b|for\b|else\b)(?:\w+\s+)+\**\w+\s*\[\s*[A-Za-z_(]")
_MAP_FAIL = re.compile(r"could not open bpf map: (?P<map>\w+), error: (?P<why>.*)")
_WFLAG = re.compile(r"\s*\[-W[^\]]*\]$")       # clang's "[-Werror,-Wfoo]" suffix
MAIN = "/virtual/main.c"

HEADERS = {  # what to #include for names newcomers meet in XDP programs (the UAPI headers: the
    # kernel-internal <linux/ip.h> and friends work too, but make a compile about ten times slower)
    "ETH_P_": "uapi/linux/if_ether.h", "ethhdr": "uapi/linux/if_ether.h",
    "ETH_ALEN": "uapi/linux/if_ether.h", "iphdr": "uapi/linux/ip.h", "ipv6hdr": "uapi/linux/ipv6.h",
    "tcphdr": "uapi/linux/tcp.h", "udphdr": "uapi/linux/udp.h", "icmphdr": "uapi/linux/icmp.h",
    "icmp6hdr": "uapi/linux/icmpv6.h", "vlan_hdr": "linux/if_vlan.h", "IPPROTO_": "uapi/linux/in.h",
    "in6_addr": "uapi/linux/in6.h",
}


# knowledge the explanations draw on ---------------------------------------------------------------
FIELDS = {  # the fields newcomers read, per struct (kernel uapi names)
    "ethhdr": ["h_dest", "h_source", "h_proto"],
    "iphdr": ["ihl", "version", "tos", "tot_len", "id", "frag_off", "ttl", "protocol", "check",
              "saddr", "daddr"],
    "ipv6hdr": ["priority", "version", "flow_lbl", "payload_len", "nexthdr", "hop_limit", "saddr",
                "daddr"],
    "tcphdr": ["source", "dest", "seq", "ack_seq", "doff", "syn", "ack", "fin", "rst", "psh",
               "window", "check"],
    "udphdr": ["source", "dest", "len", "check"],
    "icmphdr": ["type", "code", "checksum", "un"],
    "icmp6hdr": ["icmp6_type", "icmp6_code", "icmp6_cksum"],
    "vlan_hdr": ["h_vlan_TCI", "h_vlan_encapsulated_proto"],
    "xdp_md": ["data", "data_end", "data_meta", "ingress_ifindex", "rx_queue_index",
               "egress_ifindex"],
}
ALIASES = {"src": "saddr", "dst": "daddr", "source": "saddr", "dest": "daddr", "proto": "protocol",
           "sport": "source", "dport": "dest", "src_port": "source", "dst_port": "dest",
           "end": "data_end", "len": "tot_len", "type": "h_proto", "next_header": "nexthdr",
           "ifindex": "ingress_ifindex", "queue": "rx_queue_index"}
MAP_MACROS = {  # bcc's map macros, as a learner writes them
    "BPF_HASH": "BPF_HASH(name, key_type, value_type, entries)",
    "BPF_ARRAY": "BPF_ARRAY(name, value_type, entries)",
    "BPF_PERCPU_ARRAY": "BPF_PERCPU_ARRAY(name, value_type, entries)",
    "BPF_PERCPU_HASH": "BPF_PERCPU_HASH(name, key_type, value_type, entries)",
    "BPF_HISTOGRAM": "BPF_HISTOGRAM(name, key_type, entries)",
    "BPF_LPM_TRIE": "BPF_LPM_TRIE(name, key_type, value_type, entries)",
    "BPF_PERF_OUTPUT": "BPF_PERF_OUTPUT(name)",
    "BPF_RINGBUF_OUTPUT": "BPF_RINGBUF_OUTPUT(name, pages)",
    "BPF_PROG_ARRAY": "BPF_PROG_ARRAY(name, entries)",
    "BPF_DEVMAP": "BPF_DEVMAP(name, entries)", "BPF_CPUMAP": "BPF_CPUMAP(name, entries)",
    "BPF_XSKMAP": "BPF_XSKMAP(name, entries)", "BPF_QUEUE": "BPF_QUEUE(name, value_type, entries)",
    "BPF_STACK": "BPF_STACK(name, value_type, entries)",
    "BPF_TABLE": 'BPF_TABLE("lru_hash", key_type, value_type, name, entries)',
}
BCC_MACROS = set(MAP_MACROS) | {  # bcc 0.26's other map macros (helpers.h)
    "BPF_ARRAY_OF_MAPS", "BPF_CGROUP_ARRAY", "BPF_CGROUP_STORAGE", "BPF_F_TABLE",
    "BPF_HASH_OF_MAPS", "BPF_INODE_STORAGE", "BPF_PERCPU_CGROUP_STORAGE", "BPF_PERF_ARRAY",
    "BPF_QUEUESTACK", "BPF_SK_STORAGE", "BPF_SOCKHASH", "BPF_SOCKMAP", "BPF_STACK_TRACE",
    "BPF_STACK_TRACE_BUILDID", "BPF_TABLE_PINNED", "BPF_TABLE_PUBLIC", "BPF_TABLE_SHARED",
    "BPF_TASK_STORAGE", "BPF_XDP_REDIRECT_MAP"}
MAP_METHODS = {  # bcc's map methods and what they take
    "lookup": "m.lookup(&key)",
    "lookup_or_try_init": "m.lookup_or_try_init(&key, &zero)",
    "update": "m.update(&key, &value)", "insert": "m.insert(&key, &value)",
    "delete": "m.delete(&key)", "increment": "m.increment(key) or m.increment(key, n) (the key itself)",
    "atomic_increment": "m.atomic_increment(key)",
    "perf_submit": "m.perf_submit(ctx, &event, sizeof(event))",
    "ringbuf_output": "m.ringbuf_output(&event, sizeof(event), 0)",
    "push": "m.push(&value, 0)", "pop": "m.pop(&value)", "peek": "m.peek(&value)",
    "redirect_map": "m.redirect_map(index, flags)", "call": "m.call(ctx, index)",
}
_METHOD_CALL = re.compile(r"\b(\w+)\s*\.\s*(" + "|".join(MAP_METHODS) + r")\s*\(")
LIBC = {  # C library functions a newcomer reaches for, and the BPF way
    "print": ("there is no printf in the kernel",
              "for debug output use bpf_trace_printk(\"x=%d\\n\", x) and read it with "
              "xdplab.TraceLog(lab=lab) (lesson 06) — or count in a map"),
    "alloc": ("there is no heap: a BPF program cannot allocate memory at run time",
              "use a fixed-size local variable (at most 512 bytes of stack in all), or a map value "
              "(BPF_PERCPU_ARRAY) as a scratch buffer"),
    "str": ("there are no string functions",
            "compare or measure strings byte by byte in a loop with a constant bound, e.g. "
            "for (int i = 0; i < 16; i++) { if (a[i] != b[i]) ...; if (!a[i]) break; }"),
    "mem": ("there is no memcpy/memset/memcmp function",
            "use __builtin_memcpy(dst, src, 16) / __builtin_memset(p, 0, 16) with a constant size "
            "(clang expands them inline), or a loop with a constant bound"),
    "other": ("there is no C library at all",
              "write the computation yourself, or use a BPF helper (bpf_...)"),
}


def _libc_kind(name):
    if re.match(r"v?s?n?f?printf$|puts$|putchar$|perror$", name):
        return "print"
    if name in ("malloc", "calloc", "realloc", "free", "alloca"):
        return "alloc"
    if name.startswith("str"):
        return "str"
    if name.startswith("mem") or name in ("bzero", "bcopy"):
        return "mem"
    return "other"


def _close(word, choices, cutoff=0.6):
    got = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    return got[0] if got else None


_FLOAT_LIBCALL = re.compile(r"__(?:add|sub|mul|div|neg|fix|fixuns|float|floatun|extend|trunc|"
                            r"cmp|eq|ne|lt|le|gt|ge|un|pow)\w*[sdtx]f\d?\w*$")
_INT128_LIBCALL = re.compile(r"__(?:mul|div|udiv|mod|umod|ashl|ashr|lshr)ti3$")


# (pattern, explanation, hint) for clang's and LLVM's messages; {0} is the pattern's group. When the
# group names something with a known header, or clang suggests a name, that becomes the hint.
COMPILE_CASES = [
    (r"use of undeclared identifier '(\w+)'",
     "'{0}' is not declared anywhere clang can see: a typo, a variable declared in another block "
     "(or after this line), or a constant whose header is not included.",
     "check the spelling, or declare it before this line"),
    (r"expected ';'",
     "A statement or declaration is missing its ';'. clang notices at the point marked, which is "
     "the end of this statement — or the start of the next line.",
     "add ';' at the end of the statement"),
    (r"implicit declaration of function '(\w+)'",
     "'{0}' is called but never declared. A BPF program cannot call C library or kernel "
     "functions: only BPF helpers (bpf_...) and functions defined in the program.",
     "check the spelling; for debug output use bpf_trace_printk(\"x=%d\\n\", x)"),
    (r"incompatible (?:pointer types|integer to pointer|pointer to integer)",
     "A pointer of one type is used where another type is expected. In XDP this happens when "
     "stepping from one header to the next: 'eth + 1' is a 'struct ethhdr *', not a "
     "'struct iphdr *'.",
     "convert through void *: struct iphdr *ip = (void *)(eth + 1);"),
    (r"incomplete (?:definition of )?type '(?:struct )?(\w+)'",
     "'struct {0}' is only known by name here: its definition is in a header that is not included.",
     "#include the header that defines it, or check the struct's name"),
    (r"unknown type name '(\w+)'",
     "'{0}' is not a type clang knows: a typo or a missing #include. bcc programs have u8, u16, "
     "u32, u64 (and __u8 ... __u64, __be16, __be32).",
     "check the spelling or #include its header"),
    (r"no member named '(\w+)' in '(.+?)'",
     "{1} has no field called '{0}'.",
     "check the field name: struct ethhdr has h_dest, h_source, h_proto; struct iphdr has ihl, "
     "protocol, ttl, saddr, daddr; struct xdp_md has data, data_end, ingress_ifindex"),
    (r"'(.+?)' file not found",
     "There is no header <{0}> in the kernel header tree bcc compiles against.",
     "XDP programs usually need <uapi/linux/if_ether.h>, <uapi/linux/ip.h>, <uapi/linux/ipv6.h>, "
     "<uapi/linux/in.h>, <uapi/linux/tcp.h>, <uapi/linux/udp.h> (or \"parsing_helpers.h\")"),
    (r"non-void function does not return a value|control reaches end of non-void",
     "The function can end without returning a value; an XDP function must return an action on "
     "every path.", "end every path with a return, e.g. return XDP_PASS;"),
    (r"BPF stack limit",
     "BPF programs have only 512 bytes of stack, and the local variables of this function need "
     "more (a large array or struct).",
     "make large buffers smaller, or keep them in a BPF_PERCPU_ARRAY map and work on the map value"),
    (r"signed division",
     "BPF has no signed division or modulo, and both operands here are signed (int).",
     "make the operands unsigned: (u32)a / (u32)b, or declare them as u32/u64"),
    (r"dynamic stack allocation",
     "An array whose size is only known at run time (char buf[n]) cannot live on the BPF stack: "
     "stack sizes must be constants.", "give the array a constant size: char buf[64];"),
    (r"built-in function 'mem(?:cpy|set|move)'",
     "BPF has no memcpy/memset function: clang must expand the copy inline, which needs a size "
     "known at compile time.",
     "copy a constant size (__builtin_memcpy(dst, src, 16)), or byte by byte in a bounded loop"),
    (r"too (?:few|many) arguments to function call",
     "The call has the wrong number of arguments.",
     "compare with the function's declaration (clang's note shows it)"),
    (r"(?:division|remainder) by zero is undefined",
     "This divides by zero (a constant 0). In C that is undefined, and clang is free to drop the "
     "computation — and with it whatever follows, so the program would not even return.",
     "divide by a value that cannot be 0, or test the divisor first: if (d) x = n / d;"),
    (r"redefinition of", "The same name is defined twice.", "rename or remove one of them"),
    (r"expected (?:expression|'\)'|'\}'|'\]'|identifier)|extraneous",
     "clang could not parse this line: a bracket, parenthesis, operator or name is missing or "
     "extra — here or just before.", "check the brackets and punctuation"),
]
GENERIC_COMPILE = ("clang, the C compiler, could not compile this. The message is clang's own; the "
                   "caret marks where it noticed the problem, the mistake may be just before it.")


XDP_HELPERS = ["bpf_ktime_get_ns", "bpf_ktime_get_boot_ns", "bpf_ktime_get_coarse_ns",
               "bpf_get_prandom_u32", "bpf_get_smp_processor_id", "bpf_redirect", "bpf_redirect_map",
               "bpf_xdp_adjust_head", "bpf_xdp_adjust_tail", "bpf_xdp_adjust_meta", "bpf_fib_lookup",
               "bpf_trace_printk", "bpf_csum_diff", "bpf_map_lookup_elem", "bpf_map_update_elem",
               "bpf_map_delete_elem", "bpf_tail_call", "bpf_xdp_load_bytes", "bpf_xdp_store_bytes",
               "bpf_xdp_get_buff_len", "bpf_loop", "bpf_check_mtu", "bpf_ringbuf_output",
               "bpf_perf_event_output", "bpf_htons", "bpf_ntohs", "bpf_htonl", "bpf_ntohl"]
METHOD_ALIASES = {"find": "lookup", "get": "lookup", "read": "lookup", "put": "update", "set": "update",
                  "add": "increment", "inc": "increment", "remove": "delete", "erase": "delete",
                  "submit": "perf_submit", "output": "perf_submit", "emit": "perf_submit"}
LIBC_HEADERS = ("stdio.h", "stdlib.h", "string.h", "strings.h", "unistd.h", "math.h", "malloc.h",
                "time.h", "ctype.h", "assert.h", "arpa/inet.h", "netinet/in.h", "netinet/ip.h",
                "sys/socket.h", "net/ethernet.h")


LIBBPF_TYPES = {"u8": "__u8", "u16": "__u16", "u32": "__u32", "u64": "__u64", "s8": "__s8",
                "s16": "__s16", "s32": "__s32", "s64": "__s64"}


def _libbpf_compile(msg, text, source):
    """(explanation, hint) for what a libbpf program's C gets wrong the bcc way; else None."""
    if (m := re.search(r"(?:unknown type name|use of undeclared identifier) '(\w+)'", msg)) \
            and m.group(1) in LIBBPF_TYPES:
        name = m.group(1)
        return (f"'{name}' is bcc's (and the kernel's own) short name for a fixed-size integer; a "
                "libbpf program gets the UAPI names from <linux/types.h>: "
                f"{LIBBPF_TYPES[name]}, __be16, __be32 ...",
                f"write {LIBBPF_TYPES[name]} (and #include <linux/types.h>, which <linux/bpf.h> "
                "includes)")
    if mac := re.match(r"\s*(BPF_(?:HASH|ARRAY|PERCPU_\w+|PERF_OUTPUT|RINGBUF_OUTPUT|TABLE|"
                       r"DEVMAP|CPUMAP|XSKMAP|PROG_ARRAY|LPM_TRIE|QUEUE|STACK|HISTOGRAM)\w*)\s*\(", text):
        return (f"{mac.group(1)}(...) is bcc's macro; a libbpf program declares a map as a "
                "BTF-defined struct in the .maps section.",
                "struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, __u32); "
                "__type(value, __u64); __uint(max_entries, 1024); } my_map SEC(\".maps\");")
    if re.search(r"no member named '(lookup|update|increment|atomic_increment|delete|"
                 r"perf_submit|ringbuf_output|redirect_map)'", msg):
        return ("Maps have methods only in bcc (which rewrites them into helper calls); in a libbpf "
                "program a map is used through the BPF helpers, given the map's address.",
                "call the helper: bpf_map_lookup_elem(&my_map, &key), "
                "bpf_map_update_elem(&my_map, &key, &value, BPF_ANY)")
    return None


def _special_compile(msg, text, source, later, line=None, dialect="bcc"):
    """(explanation, hint) for a clang message whose meaning depends on the learner's line `text`
    or on the diagnostics that follow it (`later`: [(kind, line, message)]); else None."""
    stripped = text.strip()
    if dialect == "libbpf":
        if found := _libbpf_compile(msg, text, source):
            return found
    if dialect == "bcc" and (mac := re.match(r"(BPF_[A-Z0-9_]+)\s*\(", stripped)):
        name = mac.group(1)
        if name not in BCC_MACROS:
            alt = _close(name, list(MAP_MACROS), 0.7)
            return (f"'{name}' is not one of bcc's map macros, so clang reads the line as plain C and "
                    "cannot parse it.",
                    f"did you mean {MAP_MACROS[alt]}?" if alt else
                    "declare maps with bcc's macros: " + "; ".join(list(MAP_MACROS.values())[:4]))
        if name in MAP_MACROS and re.search(r"expected|unexpected|too (?:many|few) arguments "
                                            r"provided|type specifier", msg):
            return (f"This {name}(...) has arguments the macro does not take: it is "
                    f"{MAP_MACROS[name]}.", f"write it as {MAP_MACROS[name]}")
    if "bpf_trace_printk" in text and re.search(r"initializer|string literal|incomplete type 'char", msg):
        return ("bcc's bpf_trace_printk needs its format as a string literal written in the call: bcc "
                "copies the literal onto the stack and passes its size, which it cannot do for a "
                "variable.", "write the format in the call: bpf_trace_printk(\"queue %d\\n\", "
                "ctx->rx_queue_index);")
    if re.search(r"too many args to ", msg):
        if "bpf_trace_printk" in text:
            return ("bpf_trace_printk takes a format and at most 3 values: a BPF helper call has at "
                    "most 5 arguments, and bcc adds the format's size.",
                    "print at most 3 values per call: split it into two bpf_trace_printk calls")
        return ("A call passes more than 5 arguments: BPF functions and helpers take at most 5, one "
                "per argument register (R1-R5).",
                "pass fewer arguments: group them in a struct and pass a pointer to it")
    if dialect == "bcc" and re.match(r"SEC\s*\(", stripped):
        return ("SEC(\"...\") is libbpf's macro that puts a function into an ELF section; bcc does not "
                "define it and does not need it: bcc finds XDP functions by their signature.",
                "remove the SEC(...) line: int xdp_prog(struct xdp_md *ctx) { ... } is all bcc needs")
    if re.search(r"does not return a value|control reaches end", msg) and any(
            re.search(r"extraneous closing brace|expected identifier or '\('", m) for _, _, m in later):
        return ("This '}' closes the function early: the braces do not pair up, so clang sees the "
                "function end here without a return, and the lines after it outside any function.",
                "remove the extra '}' (or add the '{' it was meant to close): each '{' needs exactly "
                "one '}'")
    last = max((i for i, t in enumerate(source.splitlines(), 1) if t.strip()), default=None)
    if re.search(r"expected '\}'", msg) and line is not None and line >= (last or 0):
        opened = next((ln for kind, ln, m2 in later if kind == "note" and "to match this '{'" in m2), None)
        where = f" (the '{{' on line {opened} is the outermost one still open)" if opened else ""
        return ("A '{' is never closed: clang reached the end of the program still inside a block"
                f"{where}.", "add the missing '}' where the block ends: each '{' needs exactly one '}'")
    if m := re.search(r"expected '\(' after '(if|while|for|switch)'", msg):
        return (f"In C the condition of '{m.group(1)}' must be in parentheses.",
                f"write {m.group(1)} (...): e.g. if (ctx->rx_queue_index == 0) return XDP_DROP;")
    if m := re.search(r"must use 'struct' tag to refer to type '(\w+)'", msg):
        return (f"'{m.group(1)}' is a struct, and in C (unlike C++) its name needs the word 'struct' "
                "in front.", f"write struct {m.group(1)} *... instead of {m.group(1)} *...")
    if re.search(r"non-void function '(\w+)' should return a value", msg):
        return ("'return;' without a value, in a function that returns int: an XDP function must "
                "return an action on every path.", "return an action: return XDP_PASS; (or XDP_DROP)")
    if m := re.search(r"implicitly declaring library function '(\w+)'", msg):
        what, fix = LIBC[_libc_kind(m.group(1))]
        return (f"'{m.group(1)}' is a C library function, and a BPF program runs in the kernel "
                f"without the C library: {what}.", fix)
    if m := re.search(r"implicit declaration of function '(\w+)'", msg):
        name = m.group(1)
        if name == "bpf_printk" and dialect == "bcc":
            return ("bpf_printk is libbpf's macro (from bpf/bpf_helpers.h); in bcc the same helper "
                    "is called bpf_trace_printk.",
                    "write bpf_trace_printk(\"queue %d\\n\", ctx->rx_queue_index); and read the "
                    "output with xdplab.TraceLog(lab=lab) (lesson 06)")
        if name.startswith("bpf_"):
            alt = _close(name, XDP_HELPERS, 0.6)
            return (f"There is no BPF helper called '{name}': it is called but never declared "
                    "anywhere (a typo, or a helper from another tool's documentation).",
                    (f"did you mean {alt}()? " if alt else "") + "the helpers are listed in "
                    "'man bpf-helpers'; XDP programs may use those allowed for XDP")
    if re.search(r"incompatible (?:integer to pointer|pointer to integer) conversion", msg):
        if call := _METHOD_CALL.search(text):
            mname, meth = call.groups()
            sig = MAP_METHODS[meth].replace("m.", mname + ".")
            if meth in ("increment", "atomic_increment") and "pointer to integer" in msg:
                return (f"{mname}.{meth}() takes the key itself, not its address (bcc copies the key "
                        "for you).", f"write {mname}.{meth}(key) — without the &")
            return (f"bcc's map methods take pointers to the key and the value: this call passes a "
                    f"plain value where {mname}.{meth}() wants its address.",
                    f"take the address with &: {sig}")
        if "integer to pointer" in msg and re.search(r"ctx\s*->\s*data", text):
            return ("ctx->data and ctx->data_end are 32-bit numbers in struct xdp_md, not pointers "
                    "(the kernel turns them into real pointers when it loads the program), so C "
                    "needs a cast to use them as pointers.",
                    "cast through long: void *data = (void *)(long)ctx->data; "
                    "void *data_end = (void *)(long)ctx->data_end;")
        if "pointer to integer" in msg and re.search(r"\breturning\b", msg):
            return ("This returns a pointer, but the function returns an int: an XDP function "
                    "returns an action (XDP_PASS, XDP_DROP, XDP_TX, XDP_REDIRECT, XDP_ABORTED).",
                    "return an action, e.g. return XDP_PASS; — to test a pointer, compare it: "
                    "if (p + 1 > data_end) return XDP_DROP;")
        return ("A number is used where a pointer is expected, or a pointer where a number is "
                "expected.", "take an address with &, read through a pointer with *; a packet "
                "pointer is (void *)(long)ctx->data")
    if m := re.search(r"too (?:few|many) arguments to function call, expected (?:at least )?(\d+), "
                      r"have (\d+)", msg):
        want, have = m.groups()
        if call := _METHOD_CALL.search(text):
            mname, meth = call.groups()
            sig = MAP_METHODS[meth].replace("m.", mname + ".")
            extra = " — the first is the program's ctx" if meth in ("perf_submit", "call") else ""
            return (f"{mname}.{meth}() takes {want} argument{'s' * (want != '1')}, this call passes "
                    f"{have}{extra}.", f"write {sig}")
        fn = next(iter(re.findall(r"\b(\w+)\s*\(", code_only(text))), None)
        fn = fn if fn not in ("if", "while", "for", "return", "switch") else None
        fn = fn or "The function"
        return (f"{fn} takes {want} argument{'s' * (want != '1')}, this call passes {have}.",
                f"pass exactly {want}: clang's note shows the declaration"
                + (f"; 'man bpf-helpers' describes {fn}" if fn.startswith("bpf_") else ""))
    if m := re.search(r"use of undeclared identifier '(\w+)'", msg):
        name = m.group(1)
        if call := re.search(rf"\b{name}\s*\.\s*(\w+)\s*\(", text):
            return (f"'{name}' is used as a map ({name}.{call.group(1)}(...)), but no map of that "
                    "name is declared before this line.",
                    f"declare it above the function, e.g. BPF_ARRAY({name}, u64, 4); or "
                    f"BPF_HASH({name}, u32, u64); — or check the spelling")
        if re.match(rf"\s*{name}\s+\**\w+", text) and any(
                kind == "error" and "expected ';' after expression" in m2 for kind, _, m2 in later):
            return _not_a_type(name)
    t = re.match(r"\s*(\w+)\s+\**\w+\s*[=;\[]", text)
    if t and "expected ';' after expression" in msg and any(
            f"undeclared identifier '{t.group(1)}'" in m2 for _, _, m2 in later):
        return _not_a_type(t.group(1))
    if m := re.search(r"unknown type name '(\w*128\w*)'", msg):
        return _not_a_type(m.group(1))
    m = re.search(r"no member named '(\w+)' in 'struct (\w+)_table_t'", msg)
    if m and m.group(1) in METHOD_KINDS:
        meth, mname = m.groups()
        decl = re.search(rf"\b(BPF_\w+)\s*\(\s*(?:\"(\w+)\"\s*,\s*[^,]+,\s*[^,]+,\s*)?{mname}\b",
                         source)
        needed = METHOD_KINDS[meth].split(",")[0].split(" or ")[0]
        kind = (decl.group(2) or decl.group(1)) if decl else "this kind of map"
        return (f"{mname}.{meth}() exists only for {METHOD_KINDS[meth]}; '{mname}' is declared with "
                f"{kind}, which has no such method.",
                f"declare a map of the kind the method needs ({needed}), "
                f"or use {mname}'s own methods: lookup, update, delete")
    if m := re.search(r"no member named '(\w+)' in 'struct (\w+)_table_t'", msg):
        meth, mname = m.groups()
        alt = METHOD_ALIASES.get(meth) or _close(meth, list(MAP_METHODS), 0.6)
        return (f"'{mname}' is a bcc map, and bcc maps have no method '{meth}'.",
                (f"did you mean {MAP_METHODS[alt].replace('m.', mname + '.')}? " if alt else "")
                + "bcc's map methods: " + ", ".join(list(MAP_METHODS)[:8]))
    if (m := re.search(r"no member named '(\w+)' in '(?:struct )?(\w+)'", msg)) and m.group(2) in FIELDS:
        field, struct = m.groups()
        fields = FIELDS[struct]
        alt = ALIASES.get(field) if ALIASES.get(field) in fields else _close(field, fields, 0.5)
        return (f"struct {struct} has no field called '{field}'.",
                (f"did you mean '{alt}'? " if alt else "") + f"struct {struct} has: {', '.join(fields)}")
    if (m := re.search(r"'(.+?)' file not found", msg)) and m.group(1) in LIBC_HEADERS:
        return (f"<{m.group(1)}> is a header of the C library (or of user-space networking), and a "
                "BPF program has no C library: it runs in the kernel, compiled against the kernel's "
                "headers.",
                "remove the #include; for packet headers use <uapi/linux/if_ether.h>, "
                "<uapi/linux/ip.h>, <uapi/linux/ipv6.h>, <uapi/linux/in.h>, <uapi/linux/tcp.h>, "
                "<uapi/linux/udp.h>; for printing, bpf_trace_printk")
    if dialect == "bcc" and (m := re.search(r"'(bpf/\w+\.h)' file not found", msg)):
        return (f"<{m.group(1)}> is libbpf's header, for programs built with clang and loaded by libbpf; "
                "bcc declares the helpers, the map macros and the section names itself.",
                "remove the #include: bcc needs no <bpf/bpf_helpers.h> (libbpf's bpf_printk is "
                "bpf_trace_printk in bcc, SEC(...) is not needed)")
    if m := re.search(r"built-in function '(\w+)' is not supported", msg):
        if _FLOAT_LIBCALL.match(m.group(1)):
            return ("BPF has no floating point: there are no float or double instructions, so clang "
                    f"would need a library function ({m.group(1)}) that a BPF program cannot call.",
                    "compute with integers: scale instead of using fractions (x * 5 / 10 rather than "
                    "x * 0.5), e.g. keep rates in packets per 1000 seconds")
        if _INT128_LIBCALL.match(m.group(1)):
            return ("BPF has no 128-bit arithmetic: clang would need a library function "
                    f"({m.group(1)}) that a BPF program cannot call.",
                    "work on two u64 halves, or keep a 128-bit value (an IPv6 address) as bytes")
    return None


METHOD_KINDS = {"perf_submit": "BPF_PERF_OUTPUT", "ringbuf_output": "BPF_RINGBUF_OUTPUT",
                "redirect_map": "BPF_DEVMAP, BPF_CPUMAP or BPF_XSKMAP", "call": "BPF_PROG_ARRAY",
                "push": "BPF_QUEUE or BPF_STACK", "pop": "BPF_QUEUE or BPF_STACK",
                "peek": "BPF_QUEUE or BPF_STACK"}


def _not_a_type(name):
    if "128" in name:
        return (f"'{name}' is not a type: BPF C has no 128-bit integer type (the kernel headers name "
                "none), so clang cannot read the declaration.",
                "keep a 128-bit value (an IPv6 address) as struct in6_addr or __u8 addr[16], or as "
                "two u64 halves")
    return (f"'{name}' is not a type clang knows, so it cannot read the declaration: a typo or a "
            "missing #include.", "check the type's name: bcc programs have u8 ... u64, __u8 ... __u64, "
            "__be16, __be32, and the structs of the headers they include")


def _explain_compile(msg, notes, text="", source="", later=(), line=None, dialect="bcc"):
    """(explanation, hint) for clang's message `msg` about the learner's line `text`, followed by
    clang's `notes` and `later` diagnostics ([(kind, line, message)])."""
    if dialect == "libbpf":          # the same words, with the header names a libbpf program uses
        why, hint = _explain_compile(msg, notes, text, source, later, line, "libbpf-raw")
        def plain(s):
            return s and s.replace("uapi/linux/", "linux/").replace("bcc compiles against",
                                                                     "xdplab compiles against")
        return plain(why), plain(hint)
    dialect = "libbpf" if dialect == "libbpf-raw" else dialect
    if found := _special_compile(msg, text, source, list(later), line, dialect):
        return found
    for pattern, explanation, hint in COMPILE_CASES:
        if m := re.search(pattern, msg):
            name = m.group(1) if m.groups() else None
            header = next((h for key, h in HEADERS.items() if name and
                           (name == key or (key.endswith("_") and name.startswith(key)))), None)
            alt = next((a.group(1) for n in [msg, *notes] if (a := re.search(r"did you mean '(\w+)'", n))),
                       None)
            if header:
                hint = f"add '#include <{header}>' at the top"
            elif alt and not alt.startswith("_"):
                hint = f"did you mean '{alt}'?"
            return explanation.format(*m.groups()), hint
    return GENERIC_COMPILE, None


def compile_error(stderr_text: str | None, source: str, main: str = MAIN,
                  dialect: str = "bcc") -> CompileError | PrivilegeError:
    """A CompileError for clang's output `stderr_text` (bcc's fd 2 during compilation) about the
    learner's `source`: the first error, located at the learner's line with a caret, explained.
    A map that could not be created for lack of privilege gives a PrivilegeError instead.
    `main`: the name clang gives the learner's file (bcc's /virtual/main.c, or the file clang
    compiled in the libbpf dialect, whose lines are exact)."""
    text = stderr_text or ""
    if m := _MAP_FAIL.search(text):
        if "not permitted" in m.group("why"):
            return PrivilegeError(f"not allowed to create BPF map '{m.group('map')}'", PRIVILEGE_HINT)
        line = _find(source, [m.group("map")])
        return CompileError(f"could not create map '{m.group('map')}': {m.group('why')}", line=line,
                            explanation="The kernel refused the map as declared (type, key or value "
                            "size, or number of entries).",
                            hint="check the map declaration's sizes and entry count", source=source,
                            raw=text)
    lines = text.splitlines()
    diags = [(i, _DIAG.match(ln)) for i, ln in enumerate(lines)]
    diags = [(i, m) for i, m in diags if m]
    first = next(((i, m) for i, m in diags if "error" in m.group("kind")), None)
    if first is None:
        return _backend_error(lines, source, text)
    i, m = first
    message = _WFLAG.sub("", m.group("msg"))
    followers = [(j, d) for j, d in diags if j > i]
    notes = [d.group("msg") for _, d in followers[:4] if d.group("kind") == "note"]
    line, col = _clang_location(m, lines, i, source, main, exact=dialect != "bcc")
    src_lines = source.splitlines()
    text = src_lines[line - 1] if line and line <= len(src_lines) else ""
    later = [(d.group("kind"), int(d.group("line")) if d.group("file") == main else None, d.group("msg"))
             for _, d in followers[:6]]
    why, hint = _explain_compile(m.group("msg"), notes, text, source, later, line, dialect)
    details = []
    for j, d in followers[:3]:
        where = f"line {d.group('line')}: " if d.group("file") == main else ""
        details.append(f"{d.group('kind')}: {where}{_WFLAG.sub('', d.group('msg'))}")
    return CompileError(f"line {line}: {message}" if line else message, line=line,
                        column=col, explanation=why, hint=hint, source=source, raw=text,
                        details="\n".join(details) or None)


def _backend_error(lines, source, text):
    """CompileError for an error of LLVM's BPF code generator (after clang accepted the C)."""
    m = next((m for ln in lines for pattern in _BACKEND if (m := pattern.match(ln))), None)
    if m is None and (asm := next((ln.strip() for ln in lines if "<inline asm>" in ln), None)):
        msg = re.sub(r"^error: <inline asm>:\d+:\d+: ", "", asm)
        return CompileError(f"inline assembly: {msg}", line=_find(source, ["asm", "__asm__", "__asm"]),
                            explanation="The program contains inline assembly (asm(...)). It is "
                            "assembled for BPF, whose instruction set has nothing in common with "
                            "x86's or ARM's, so CPU instructions do not exist there.",
                            hint="remove the asm(...) and write it in C; for a compiler barrier use "
                            "asm volatile(\"\" ::: \"memory\")", source=source, raw=text)
    unrolled = _unrolled_loop(source)
    if m is None:
        msg = next((ln.strip() for ln in lines if ln.strip()), "the compiler gave no reason")
        if unrolled and "crashed" in msg:
            line, bound = unrolled
            return CompileError(f"line {line}: the compiler crashed unrolling this loop", line=line,
                                explanation=_unroll_why(bound, "LLVM crash"),
                                hint=UNROLL_HINT, source=source, raw=text)
        return CompileError(f"compilation failed: {msg}", explanation=GENERIC_COMPILE,
                            source=source, raw=text)
    found = m.groupdict()
    msg, fn = found["msg"].strip(), found.get("fn")
    if "signed division" in msg:                       # LLVM: "Unsupport signed division"
        msg = "signed division/modulo is not supported by BPF"
    line = learner_line(source, int(found["line"])) if found.get("line") not in (None, "0") else None
    if "stack limit" in msg and unrolled and not _big_locals(source, fn):
        line, bound = unrolled
        return CompileError(f"line {line}: {msg}", line=line, source=source, raw=text,
                            explanation=_unroll_why(bound, "so much code that the values it keeps "
                                                    "spill over the 512 bytes of stack"),
                            hint=UNROLL_HINT)
    if "stack limit" in msg:
        line = _biggest_array(source, fn)
    elif "dynamic stack allocation" in msg:
        line = next((ln for ln, s in enumerate(code_only(source).split("\n"), 1) if _VLA.match(s)), None)
    elif line is None and fn:
        line = _function_span(source, fn)[0]
    src_lines = source.splitlines()
    why, hint = _explain_compile(msg, [], src_lines[line - 1] if line and line <= len(src_lines) else "",
                                 source)
    where = f"line {line}: " if line else (f"in {fn}: " if fn else "")
    return CompileError(where + msg, line=line, explanation=why, hint=hint, source=source, raw=text)


def _clang_location(m, lines, i, source, main=MAIN, exact=False):
    """(learner line, column) of clang's diagnostic `m` found at lines[i]; `exact`: `main` is the
    learner's own file, whose lines clang reports as they are."""
    if m.group("file") == main:
        line, col = int(m.group("line")), int(m.group("col"))
        if exact:
            return line, col
        quoted = lines[i + 1] if i + 1 < len(lines) else ""
        src = source.splitlines()
        if line > len(src):                       # only in bcc's rewritten text (a rewritten call)
            return learner_line(source, line, quoted), None
        if _norm(src[line - 1]) != _norm(quoted) and quoted.strip():
            # reported against bcc's rewritten text (rare): map back through the quoted line
            mapped = learner_line(source, line, quoted)
            return mapped, None if mapped != line else col
        return line, col
    for back in range(i - 1, -1, -1):         # error inside a header: the learner's #include line
        inc = re.match(rf"In file included from {re.escape(main)}:(\d+)", lines[back])
        if inc:
            return int(inc.group(1)), None
        if _DIAG.match(lines[back]):
            break
    return None, None


UNROLL_HINT = ("remove the #pragma unroll (or unroll only small loops, up to a few dozen iterations): "
               "the verifier accepts a loop with a bound it can prove as it is (Linux 5.3 and "
               "later), and bpf_loop() runs long loops")


def _unrolled_loop(source):
    """(line, bound) of the loop after a `#pragma unroll` in `source`, else None."""
    lines, code = source.splitlines(), code_only(source).split("\n")
    for i, text in enumerate(lines):
        if re.match(r"\s*#\s*pragma\s+(?:clang\s+loop\s+unroll|unroll)", text):
            for ln in range(i + 2, min(i + 4, len(lines)) + 1):
                if _LOOP.search(code[ln - 1]):
                    bound = re.search(r"<=?\s*(\d+)", code[ln - 1])
                    return ln, int(bound.group(1)) if bound else None
    return None


def _unroll_why(bound, what):
    copies = f"{bound:,} copies here" if bound else "once per iteration"
    return (f"#pragma unroll makes clang copy the loop's body once per iteration ({copies}), which "
            f"made {what}.")


def _big_locals(source, function):
    """Whether `function` declares a local array or struct (what usually fills the stack)."""
    first, last = _function_span(source, function)
    code = code_only(source).split("\n")
    return any(_ARRAY_DECL.match(code[ln - 1]) or _STRUCT_LOCAL.match(code[ln - 1])
               for ln in range(first + 1, last + 1))


_ARRAY_DECL = re.compile(r"^\s*(?:(?:static|volatile|const|unsigned|signed|struct|union)\s+)*\w+\s+"
                         r"\**\s*\w+\s*\[\s*(\d+)\s*\]")
_STRUCT_LOCAL = re.compile(r"^\s*(?:(?:volatile|const)\s+)*(?:struct|union)\s+\w+\s+\w+\s*(?:[;=]|$)")


def _biggest_array(source, function):
    """The line declaring the largest local array in `function` (else its first struct local)."""
    first, last = _function_span(source, function)
    code = code_only(source).split("\n")
    sizes = [(int(m.group(1)), -ln) for ln in range(first, last + 1)
             if (m := _ARRAY_DECL.match(code[ln - 1]))]
    if sizes:
        return -max(sizes)[1]
    structs = [ln for ln in range(first + 1, last + 1) if _STRUCT_LOCAL.match(code[ln - 1])]
    return structs[0] if structs else first


# -- the verifier --------------------------------------------------------------------------------------
_INSN = re.compile(r"^(\d+): \([0-9a-f]{2}\) ")
_SRC = re.compile(r"^; (.*?)(?: @ (\S+):(\d+))?$")
_NOISE = re.compile(r"^(processed \d+ insns|HINT: |bpf: Failed to load program|verification time|"
                    r"stack depth|\d+: R\d|from \d+ to \d+: |cur state:|old state:|\s*$)")
_LISTING_SRC = re.compile(r"^; (.*) // Line\s+(\d+)\s*$")
_LISTING_INSN = re.compile(r"^\s*(\d+):\t")
_TOO_LARGE_NO_LOG = re.compile(r"Argument list too long|too large \(\d+ insns\)")


HELPER_METHODS = {"bpf_perf_event_output": "perf_submit", "bpf_ringbuf_output": "ringbuf_output",
                  "bpf_get_stackid": "get_stackid", "bpf_map_lookup_elem": "lookup"}


def _helper_line(source, helper, function):
    """The line calling `helper` directly, or through bcc's map method for it (m.perf_submit)."""
    return _find(source, [helper], function) or (
        _find(source, [HELPER_METHODS[helper]], function) if helper in HELPER_METHODS else None)


def _helper(msg):
    m = re.search(r"(?:unknown func|cannot use helper) (\w+?)#(\d+)", msg)
    return m.group(1) if m else "this helper"


# (pattern, where the fix goes, explanation, hint); explanations may use {0}.. (the pattern's
# groups), {helper} and {detail}. where: "loop" → the loop header, "helper" → the call.
VERIFIER_CASES = [
    (r"invalid access to packet", None,
     "The program {reads} packet bytes it has not proven to exist{detail}. The verifier only allows "
     "access between ctx->data and ctx->data_end after a comparison with data_end shows that every "
     "byte it touches is inside the packet.",
     "before this line, check the end of what you access against data_end and leave if it is past "
     "it, e.g. if ((void *)(eth + 1) > data_end) return XDP_PASS; — on every path, through the same "
     "pointer you then use"),
    (r"invalid mem access '(\w*or_null\w*)'", None,
     "A map lookup returns NULL when the key is not in the map, and this line uses the returned "
     "pointer without checking it first ('{0}' means: a map value, or NULL).",
     "check the pointer before using it: long *v = counters.lookup(&key); if (!v) return XDP_PASS;"),
    (r"infinite loop detected", "loop",
     "The verifier found a loop that never ends as far as it can tell: it came back to the same "
     "instruction in exactly the same state, so the next iteration would change nothing. Usually "
     "the loop variable is not updated (a missing i++) or the exit condition cannot become true.",
     "make each iteration move towards the end and give the loop a constant bound, e.g. "
     "for (int i = 0; i < 64; i++) { ... }"),
    (r"back-edge from insn", "loop",
     "The program contains a loop, and on this kernel (or with these privileges) the verifier "
     "accepts no loops at all.",
     "unroll the loop with a small constant bound: #pragma unroll before for (int i = 0; i < 8; i++)"),
    (r"The sequence of \d+ jumps is too complex", "loop",
     "The verifier checks every path through the program; here a loop whose number of iterations "
     "it cannot bound (it depends on the packet length or another unknown value) made it track "
     "more branches than it allows.",
     "bound the loop by a small constant as well: for (i = 0; i < 64 && i < len; i++), or use "
     "bpf_loop()"),
    (r"BPF program is too large|too large \(\d+ insns\)|Argument list too long", "loop",
     "The verifier gave up: it walks every path through the program, each loop iteration "
     "separately, and stops after 1,000,000 instructions. Loops with many iterations, nested "
     "loops, and branches inside loops multiply quickly.",
     "make loops shorter (a small constant bound), move work out of the loop, or use bpf_loop() "
     "for long loops"),
    (r"invalid (?:indirect )?read from stack", None,
     "The program reads a local variable before anything was written to it — typically a map key or "
     "struct passed by pointer to a helper (a map lookup) with a field or padding bytes never set.",
     "initialise it where you declare it: u32 key = 0; or struct flow k = {}; "
     "(or __builtin_memset(&k, 0, sizeof(k)) before setting the fields)"),
    (r"R0 !read_ok", None,
     "The function can end without a return value: R0, the register that carries it, was never set "
     "on this path. Usually a variable is returned before it got a value.",
     "give every path a defined return value (return XDP_PASS;) and initialise variables where you "
     "declare them"),
    (r"R(\d+) !read_ok", None,
     "Register R{0} is read before anything was written to it. From C this means a local variable "
     "is used before it has a value, so clang left the register unset.",
     "initialise the variable where you declare it"),
    (r"unknown func|cannot use helper", "helper",
     "XDP programs may call only the BPF helpers allowed for XDP; {helper} belongs to another kind "
     "of program (tracing, or TC programs that work on an skb).",
     "use the XDP way: read packet bytes directly through ctx->data (checked against data_end), "
     "bpf_xdp_adjust_head/tail to change the size, bpf_redirect/bpf_redirect_map to send"),
    (r"invalid access to map value", None,
     "The program reads or writes outside a map value{detail}: the access is not proven to be "
     "inside the value — an index too large for the array in the value (or not checked), or an "
     "access past the end of the value's type.",
     "keep every access inside the value: check a variable index against the array's length "
     "first (if (i >= 8) return XDP_PASS; for u64 n[8]), and declare the value type as large as "
     "what you access"),
    (r"unbounded min value|min value is negative|min value is outside|unbounded memory access", None,
     "An index, offset or size used to access memory could be negative or arbitrarily large as "
     "far as the verifier knows (it came from the packet, the context or arithmetic it cannot "
     "bound).",
     "bound it before use, with an unsigned type: if (i >= 8) return XDP_PASS; — and check a "
     "packet pointer computed from it against data_end"),
    (r"pointer arithmetic on pkt_end prohibited", None,
     "The program computes with data_end (data_end - n, or data_end + n). The verifier allows data_end "
     "only in comparisons: it marks the end of the packet, and nothing may be derived from it.",
     "compute from the start and compare with data_end: if (data + sizeof(*eth) > data_end) "
     "return XDP_PASS;"),
    (r"invalid mem access 'pkt_end'", None,
     "The program reads through data_end. data_end points just past the last byte of the packet, "
     "so there is never anything to read there: it is only for comparisons.",
     "read through pointers that start at ctx->data, after checking them against data_end"),
    (r"invalid bpf_context access off=(\d+) size=(\d+)", None,
     "The program {ctx_access} struct xdp_md is six 32-bit fields, all read-only: data (offset "
     "0), data_end (4), data_meta (8), ingress_ifindex (12), rx_queue_index (16), egress_ifindex (20).",
     "read the fields by name, as 32-bit values (void *data = (void *)(long)ctx->data;), never "
     "write them: to move the start of the packet call bpf_xdp_adjust_head(ctx, delta)"),
    (r"variable-offset (?:read from|write to|access to) stack|invalid unbounded variable-offset|"
     r"variable stack access", None,
     "The program indexes a local (stack) array with an index the verifier cannot bound: it could "
     "reach outside the array, anywhere on the stack.",
     "check the index against the array's size first, with an unsigned type: if (i >= 8) return "
     "XDP_PASS; (or mask it: i & 7 for an 8-element array)"),
    (r"type=\w+ expected=map_ptr", None,
     "A helper that wants a map got something else. In bcc a map declared with BPF_ARRAY/BPF_HASH is "
     "used through its methods; '&name' is not the map the kernel knows.",
     "call the map's method instead of the helper: u64 *n = counters.lookup(&key); "
     "(counters.update(&key, &value), counters.delete(&key))"),
    (r"unknown opcode 8d", "indirect",
     "The program calls a function through a function pointer. BPF has no indirect calls: every "
     "call must name its target, so the kernel does not know this instruction (callx).",
     "call the functions directly: if (cond) return drop(); return pass(); — for a run-time choice "
     "among programs use a BPF_PROG_ARRAY and prog_array.call(ctx, index)"),
    (r"invalid mem access '(scalar|inv)'", None,
     "The program dereferences a plain number as if it were a pointer: the verifier does not know "
     "it as a pointer (it was computed from an integer, read from the packet or a map, or it is "
     "the NULL of a failed check).",
     "dereference only checked pointers: packet pointers after a data_end check, map values after "
     "a NULL check, and local variables"),
    (r"last insn is not an exit or jmp|unreachable insn|jump out of range", None,
     "The compiled code calls something that does not exist in a BPF program (a function that was "
     "never defined), so the instructions do not end properly.",
     "call only BPF helpers (bpf_...) and functions defined in the program (static inline)"),
    (r"combined stack size|invalid (?:write to )?stack off|stack depth \d+ exceeds", None,
     "BPF programs have only 512 bytes of stack, and the local variables need more.",
     "keep large buffers in a BPF_PERCPU_ARRAY map instead of on the stack"),
]
GENERIC_VERIFIER = ("The kernel's verifier proves a program safe before it may run: every memory "
                    "access in bounds, no NULL dereference, every loop ending. It could not prove "
                    "that here; its own message is above.",
                    "look at the line and at the details: the last instructions the verifier "
                    "checked, with what it knew about each register")


def _detail(headline):
    m = re.search(r"off=(-?\d+) size=(\d+)", headline)
    if not m:
        return ""
    r = re.search(r"\br=(\d+)", headline)
    vs = re.search(r"value_size=(\d+)", headline)
    plural = lambda n: f"{n} byte" + ("" if n == "1" else "s")
    out = f": {plural(m.group(2))} at offset {m.group(1)}"
    if r:
        out += f", while the checks before cover only {plural(r.group(1))} from that pointer"
    if vs:
        out += f" of a {vs.group(1)}-byte value"
    return out


def parse_listing(listing: str | None, function: str) -> dict[int, tuple[int, str]]:
    """{instruction index: (line in bcc's main.c, its text)} from the DEBUG_SOURCE listing of
    `function`."""
    mapping, inside, current = {}, False, None
    for ln in (listing or "").splitlines():
        if ln.startswith("Disassembly of function "):
            inside = ln.split()[-1] == function
            current = None
        elif inside and (m := _LISTING_SRC.match(ln)):
            current = (int(m.group(2)), m.group(1))
        elif inside and current and (m := _LISTING_INSN.match(ln)):
            mapping[int(m.group(1))] = current
    return mapping


def full_log(bpf: Any, function: str, prog_type: int = 6, size: int = 1 << 21) -> str:
    """Verify `function` of a compiled bcc.BPF again with a log buffer of our own and return the
    log. bcc prints no log when the kernel answers E2BIG (the verifier gave up: "BPF program is
    too large"); the kernel keeps the end of a log that does not fit, which is the part we need.
    (`bpf` is Any: bcc has no type hints.)"""
    from bcc import libbcc
    lib, mod, name = libbcc.lib, bpf.module, function.encode()
    buf = ctypes.create_string_buffer(size)
    with capture_stderr():
        fd = lib.bcc_func_load(mod, prog_type, name, lib.bpf_function_start(mod, name),
                               lib.bpf_function_size(mod, name), lib.bpf_module_license(mod),
                               lib.bpf_module_kern_version(mod), 1, buf, size, None, -1)
    if fd >= 0:
        os.close(fd)
    return buf.value.decode("utf-8", "replace")


def verifier_error(log_text: str | None, source: str, function: str, listing: str | None = None,
                   bpf: Any = None, full: str | None = None, dialect: str = "bcc",
                   main: str | None = None) -> VerifierError | PrivilegeError:
    """A VerifierError for the verifier's log `log_text` (bcc's fd 2 during load_func, or the
    exception text when nothing was printed) rejecting `function` of the learner's `source`.
    `listing`: the fd-2 text of a compile with debug=DEBUG_SOURCE, used to find the line when the
    log has no line info (bcc drops BTF when the kernel answers EINVAL). `bpf`: the bcc.BPF object,
    used to fetch the log that bcc does not print when the verifier gave up (E2BIG); `full`: that
    log, fetched already (by the compile helper). `dialect="libbpf"`: the log of a clang-built
    object whose BTF line info names the learner's file `main` (a base name) with its own lines.
    No log and EPERM gives a PrivilegeError."""
    text = log_text or ""
    lines = text.splitlines()
    insns = [i for i, ln in enumerate(lines) if _INSN.match(ln)]
    if not insns and re.search(r"Operation not permitted|Need super-user", text):
        return PrivilegeError(f"not allowed to load the BPF program {function}", PRIVILEGE_HINT)
    if not insns and (bpf is not None or full) and _TOO_LARGE_NO_LOG.search(text):
        more = full if full else full_log(bpf, function)
        if more.strip():
            return verifier_error(more, source, function, listing=listing, dialect=dialect, main=main)
    last = insns[-1] if insns else -1
    tail = [ln for ln in lines[last + 1:] if not _NOISE.match(ln) and not _SRC.match(ln)]
    headline = (tail or [next((ln for ln in lines if ln.strip() and not _NOISE.match(ln)),
                              "rejected without a reason")])[0].strip()
    instruction = lines[last].split(" ; ")[0].strip() if insns else None
    case = next(((c, m) for c in VERIFIER_CASES if (m := re.search(c[0], "\n".join([headline, *tail])))),
                None)
    where, too_large = (case[0][1], "too large" in case[0][0]) if case else (None, False)
    store = bool(instruction and re.search(r"\) \*\(", instruction))       # a write, not a read
    if case:
        (_, _, explanation, hint), m = case
        ctx_access = ""
        if "bpf_context" in m.re.pattern:
            ctx_access = (f"writes to struct xdp_md, the context (offset {m.group(1)}): an XDP program "
                          "may not change it." if store else
                          f"reads {m.group(2)} bytes at offset {m.group(1)} of struct xdp_md, the "
                          "context, where it has no field of that size.")
        why = explanation.format(*m.groups(), helper=_helper(headline), detail=_detail(headline),
                                 reads="writes" if store else "reads", ctx_access=ctx_access)
    else:
        why, hint = GENERIC_VERIFIER
    at = _LineInfo(source, main if dialect != "bcc" else "main.c", exact=dialect != "bcc")
    line = _failing_line(lines, last, source, function, listing, at)
    if where == "loop":
        line = _loop_line(source, function, line) or line
    elif where == "helper":
        line = _helper_line(source, _helper(headline), function) or line
    elif where == "indirect":
        line = _indirect_call_line(source, function) or line
    if found := _special_verifier(headline, source, function, line, lines):
        why, hint, line = found[0], found[1], found[2] if len(found) > 2 else line
    if too_large and not insns:
        headline = "BPF program is too large (the verifier gave up after 1,000,000 instructions)"
    message = f"the verifier rejected {function}" + (f" at line {line}" if line else "") + f": {headline}"
    return VerifierError(message, line=line, explanation=why, hint=hint, source=source, raw=text,
                         instruction=instruction, function=function,
                         details=_trim(lines, last, source, at=at) if insns else None)


_ADJUST = re.compile(r"\bbpf_xdp_adjust_(?:head|tail|meta)\s*\(")


def _globals(source):
    """Names of the file-scope variables of `source` (not maps, functions or types)."""
    code = code_only(source)
    depth, top = 0, []
    for ch in code:                         # keep only the text at brace depth 0
        depth += (ch == "{") - (ch == "}")
        top.append(ch if depth == 0 and ch not in "{}" else ("\n" if ch == "\n" else " "))
    names = []
    for stmt in "".join(top).split(";"):
        stmt = " ".join(stmt.split())
        if not stmt or "(" in stmt.split("=")[0] or re.match(r"(typedef|struct|union|enum)\b[^=]*$", stmt):
            continue
        if m := re.match(r"(?:(?:static|volatile|const|unsigned|signed|struct|union|enum)\s+)*\w+\s+"
                         r"\**\s*(\w+)\s*(?:\[[^\]]*\])?\s*(?:=.*)?$", stmt):
            names.append(m.group(1))
    return names


def _special_verifier(headline, source, function, line, log_lines=()):
    """(explanation, hint) where the learner's code, or the verifier's log `log_lines` (what it
    knew about each register), says more than the verifier's message."""
    lines = source.splitlines()
    text = code_only(source).split("\n")[line - 1] if line and line <= len(lines) else ""
    first, _ = _function_span(source, function)
    if re.search(r"last insn is not an exit or jmp|unreachable insn|jump out of range|call stack|"
                 r"recursive call", headline) and (rec := _recursive_call(source)):
        name, at = rec
        return (f"{name}() calls itself. BPF programs cannot recurse: the verifier must know the whole "
                "call chain and its stack use before the program runs, and bcc cannot inline a "
                "function into itself.",
                "rewrite the recursion as a loop with a constant bound, e.g. "
                "for (int i = 0; i < 16 && n > 1; i++) { ... }", at)
    if re.search(r"invalid mem access '(scalar|inv)'", headline):
        before = code_only("\n".join(lines[first - 1:line - 1] if line else []))
        if line and _ADJUST.search(before):
            return ("This line uses a packet pointer computed before bpf_xdp_adjust_head (or _tail, "
                    "_meta) was called. Those helpers move the packet's start or end, so the verifier "
                    "forgets every packet pointer made before the call: they are plain numbers now.",
                    "after the call, load data and data_end from ctx again, recompute the header "
                    "pointers and check them against data_end once more")
        used = [g for g in _globals(source) if re.search(rf"\b{re.escape(g)}\b", text)]
        if used:
            return (f"'{used[0]}' is a global variable. bcc does not give a program global variables: "
                    "it leaves their address unset, so the verifier sees a plain number used as a "
                    "pointer. (State that lives between packets belongs in a map anyway.)",
                    f"keep it in a map: BPF_ARRAY({used[0]}_map, u64, 1); u32 zero = 0; "
                    f"u64 *v = {used[0]}_map.lookup(&zero); if (v) __sync_fetch_and_add(v, 1); — "
                    "or make a constant a #define")
    r = re.search(r"\br=(\d+)", headline)
    if "invalid access to packet" in headline and r and r.group(1) == "8":
        code = code_only(source)
        for name in re.findall(r"sizeof\s*\(\s*(\w+)\s*\)", code):
            if re.search(rf"\*\s*{re.escape(name)}\s*[=;,)]", code):
                return ("The bounds check covers only 8 bytes: sizeof(" + name + ") is the size of the "
                        "pointer (8 bytes), not of the header it points to, so the read after it is "
                        "not proven to be inside the packet.",
                        f"use the size of what it points to: sizeof(*{name}), or check "
                        f"(void *)({name} + 1) > data_end")
    if "invalid access to packet" in headline:
        return _variable_packet_offset(headline, log_lines)
    return None


# invalid access through a packet pointer: id=0 is data plus a constant; any other id is data plus
# an offset known only at run time (the verifier gives each such pointer an id of its own)
_PKT_ACCESS = re.compile(r"invalid access to packet, off=(-?\d+) size=(\d+), R\d+\(id=(\d+),off=-?\d+,r=(\d+)")
MAX_PACKET_OFF = 0xffff     # a data_end check gives no range to a packet pointer whose offset may pass it


def _variable_packet_offset(headline, log_lines):
    """(explanation, hint) for a read or write through the packet plus a variable offset, from
    what the log says the verifier knew of that offset (its largest value, umax); else None."""
    m = _PKT_ACCESS.search(headline)
    if not m or m.group(3) == "0":
        return None
    ident, umax, from_packet = m.group(3), None, False
    need, covered = int(m.group(1)) + int(m.group(2)), int(m.group(4))
    for i in range(len(log_lines) - 1, -1, -1):
        ln = log_lines[i]
        states = re.findall(rf"=pkt\((id={ident}(?:,[^)]*)?)", ln)
        if umax is None:
            for state in states:
                if u := re.search(r"\bumax(?:_value)?=(?:\w+=)*?(0x[0-9a-f]+|\d+)\b", state):
                    umax = int(u.group(1), 0)
                elif v := re.search(r"var_off=\((0x[0-9a-f]+); (0x[0-9a-f]+)", state):
                    umax = int(v.group(1), 16) + int(v.group(2), 16)
        # the addition that made the pointer (rX += rY), and where rY came from: a load from the packet
        add = re.search(r"\(0f\) r(\d+) \+= r(\d+)", ln)
        if add and states:
            y = add.group(2)
            for before in reversed(log_lines[:i]):
                if ld := re.search(rf"\) r{y} = \*\(u\d+ \*\)\(r(\d+) [+-]\d+\)", before):
                    from_packet = bool(re.search(rf"\bR{ld.group(1)}(?:_w)?=pkt\(", before))
                    break
                if re.search(rf"\) r{y} [-+*/|&^]?= ", before) or re.search(r"\bcall\b", before):
                    break
            break
    origin = ("it was read from the packet" if from_packet else
              "such an offset usually comes from the packet (a byte, a length or an index field)")
    fix_check = ("check the pointer you access against data_end: "
                 "if ((void *)(p + off + 1) > data_end) return XDP_PASS;")
    if umax is None or umax > MAX_PACKET_OFF:
        upto = f", so as far as the verifier knows it is anything up to {umax:,}" if umax is not None else ""
        return ("This line accesses the packet at an offset known only at run time, and the verifier "
                f"cannot bound that offset: {origin}{upto}. A packet pointer whose offset may be "
                f"larger than {MAX_PACKET_OFF:,} gets no range from a comparison with data_end: no "
                "check of the pointer after the addition can make this access safe.",
                "bound the offset before adding it: if (off > 64) return XDP_DROP; (or mask it: "
                f"off &= 63;); then add it and {fix_check}")
    if covered:
        return ("This line accesses the packet at an offset known only at run time, and the "
                f"comparison of that pointer with data_end covers {covered} byte"
                f"{'s' if covered != 1 else ''} from it, while the access needs {need}.",
                f"check as many bytes as you access: if ((void *)(p + off + {need}) > data_end) "
                "return XDP_PASS;")
    return ("This line accesses the packet at an offset known only at run time ("
            f"{origin}; as far as the verifier knows, from 0 to {umax:,}){_detail(headline)}. A "
            "data_end check made before the offset was added covers the bytes from the old pointer, "
            "not from the new one: the pointer with the offset needs a comparison of its own.",
            f"after adding the offset, {fix_check} (and bound the offset before adding it, "
            "if (off > 64) return XDP_DROP;, to keep it small)")


def _recursive_call(source):
    """(function, line) of the first function of `source` that calls itself, else None."""
    code = code_only(source).split("\n")
    for name, _, brace, last, _ in functions(source):
        for ln in range(brace, last + 1):
            body = code[ln - 1] if ln != brace else code[ln - 1].split("{", 1)[-1]
            if re.search(rf"(?<![\w.>]){re.escape(name)}\s*\(", body):
                return name, ln
    return None


def _indirect_call_line(source, function):
    """The line calling through a function pointer (declared as `(*name)(...)`) in `function`."""
    first, last = _function_span(source, function)
    code = code_only(source).split("\n")
    for ptr in re.findall(r"\(\s*\*\s*(\w+)\s*\)\s*\(", "\n".join(code[first - 1:last])):
        for ln in range(first, last + 1):
            if re.search(rf"(?<![*\w]){re.escape(ptr)}\s*\(", code[ln - 1]) and \
                    not re.search(rf"\(\s*\*\s*{re.escape(ptr)}", code[ln - 1]):
                return ln
    return None


class _LineInfo:
    """Which file of the BTF line info (`; text @ FILE:N`) is the learner's, and how its line
    numbers map to the learner's: through bcc's rewriting (learner_line), or exactly."""

    def __init__(self, source, main="main.c", exact=False):
        self.source, self.exact = source, exact
        self.main = os.path.basename(main) if main else None

    def ours(self, file):
        """Whether FILE of a line-info comment is the learner's file (any file when the name of
        the learner's is unknown: an object file built elsewhere)."""
        return self.main is None or os.path.basename(file) == self.main

    def line(self, n, text):
        """The learner's line for line `n` of the file, whose text the log quotes."""
        if self.exact:
            return n
        return learner_line(self.source, n, text)


def _failing_line(lines, last, source, function, listing, at=None):
    """Learner line of the rejected instruction: from the log's BTF line info, else the listing."""
    at = at or _LineInfo(source)
    for ln in reversed(lines[:last + 1] if last >= 0 else []):
        m = _SRC.match(ln)
        if not m or not m.group(1).strip():
            continue
        if m.group(2) is None:                                  # older kernels: "; text" only
            found = [i for i, s in enumerate(source.splitlines(), 1) if _norm(s) == _norm(m.group(1))]
            if found:
                return found[-1]
            continue
        if at.ours(m.group(2)) and int(m.group(3)) > 0:
            return at.line(int(m.group(3)), m.group(1))
    mapping = parse_listing(listing, function)
    if mapping and last >= 0 and (idx := _INSN.match(lines[last])):
        before = [i for i in mapping if i <= int(idx.group(1))]
        if before:
            rewritten, text = mapping[max(before)]
            return learner_line(source, rewritten, text)
    return None


def _trim(lines, last, source, keep=8, at=None):
    """The end of the log: the last `keep` instructions with their source lines (renumbered to the
    learner's) and register state, then the verifier's message."""
    at = at or _LineInfo(source)
    start, seen = last, 0
    while start > 0 and seen < keep:
        start -= 1
        seen += bool(_INSN.match(lines[start]))
    window = lines[start:]
    if not any(_SRC.match(ln) for ln in window):       # show which line the window belongs to
        window = [next((ln for ln in reversed(lines[:start]) if _SRC.match(ln) and
                        at.ours(ln.split(" @ ")[-1].rsplit(":", 1)[0]) and not ln.endswith(":0")), ""),
                  *window]
    out, src = [], source.splitlines()
    for ln in window:
        if re.match(r"^(processed \d+ insns|HINT: )", ln):
            break
        if not ln or ln.startswith("bpf: "):
            continue
        m = _SRC.match(ln)
        if m and m.group(2) and at.ours(m.group(2)):
            if int(m.group(3)) == 0:
                continue
            n = at.line(int(m.group(3)), m.group(1))
            text = src[n - 1].strip() if n and n <= len(src) else m.group(1)
            ln = f"; {text} @ line {n}"
        out.append(ln)
    return "\n".join(out).strip() or None
