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
"""
import contextlib
import ctypes
import difflib
import os
import re
import sys
import tempfile

from .errors import CompileError, PrivilegeError, VerifierError

# Warnings that are errors in modern C compilers (GCC 14) and almost always bugs in a BPF program:
# a call to an undeclared function compiles to a call the verifier rejects with "last insn is not
# an exit or jmp"; `struct iphdr *ip = eth + 1` silently mixes header types.
CFLAGS = ["-Werror=implicit-function-declaration", "-Werror=incompatible-pointer-types",
          "-Werror=int-conversion", "-Werror=implicit-int", "-Werror=return-type"]
DEBUG_SOURCE = 0x8          # bcc.BPF(debug=...): print "instruction → source line" at compile time
PROLOGUE_LINES = 10         # lines bcc 0.26 puts in front of main.c
PRIVILEGE_HINT = ("run JupyterLab (or Python) as root: 'sudo make lab' / 'sudo make test'. Loading "
                  "XDP programs and creating maps needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON")


# -- capturing fd 2 --------------------------------------------------------------------------------
class Captured:
    """What was written to fd 2 inside `capture_stderr()`; `.text` is set when the block ends."""
    text = ""


@contextlib.contextmanager
def capture_stderr():
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


def _code_only(source):
    """`source` with comments, literals and preprocessor lines blanked; newlines kept."""
    code = _LITERALS.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), source)
    out, cont = [], False
    for line in code.split("\n"):
        directive = cont or line.lstrip().startswith("#")
        cont = directive and line.rstrip().endswith("\\")
        out.append(" " * len(line) if directive else line)
    return "\n".join(out)


def functions(source):
    """Top-level function definitions: [(name, first_line, brace_line, last_line, is_static)]."""
    code = _code_only(source)
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


def rewritten_lines(source):
    """{learner line: line in bcc's rewritten main.c} (the coordinates of BTF line info)."""
    fns = functions(source)
    n = source.count("\n") + 1
    return {ln: ln + PROLOGUE_LINES + sum(first <= ln for _, first, _, _, _ in fns)
            + sum(brace < ln for _, _, brace, _, static in fns if not static) for ln in range(1, n + 1)}


def _norm(text):
    return " ".join(text.split())


def learner_line(source, rewritten, text=None):
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
    code = _code_only(source).split("\n")
    loops = [ln for ln in range(first, last + 1) if _LOOP.search(code[ln - 1])]
    if near:
        above = [ln for ln in loops if ln <= near]
        return above[-1] if above else near
    return loops[0] if loops else None


def _find(source, words, function=None):
    """First line (inside `function` if it has one there) that contains one of `words`."""
    first, last = _function_span(source, function) if function else (1, source.count("\n") + 1)
    code = _code_only(source).split("\n")
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

HEADERS = {  # what to #include for names newcomers meet in XDP programs
    "ETH_P_": "linux/if_ether.h", "ethhdr": "linux/if_ether.h", "ETH_ALEN": "linux/if_ether.h",
    "iphdr": "linux/ip.h", "ipv6hdr": "linux/ipv6.h", "tcphdr": "linux/tcp.h",
    "udphdr": "linux/udp.h", "icmphdr": "linux/icmp.h", "icmp6hdr": "linux/icmpv6.h",
    "vlan_hdr": "linux/if_vlan.h", "IPPROTO_": "linux/in.h", "in6_addr": "linux/in6.h",
}


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
     "XDP programs usually need <linux/if_ether.h>, <linux/ip.h>, <linux/ipv6.h>, <linux/in.h>, "
     "<linux/tcp.h>, <linux/udp.h>; bcc needs no <bpf/bpf_helpers.h>"),
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
    (r"redefinition of", "The same name is defined twice.", "rename or remove one of them"),
    (r"expected (?:expression|'\)'|'\}'|'\]'|identifier)|extraneous",
     "clang could not parse this line: a bracket, parenthesis, operator or name is missing or "
     "extra — here or just before.", "check the brackets and punctuation"),
]
GENERIC_COMPILE = ("clang, the C compiler, could not compile this. The message is clang's own; the "
                   "caret marks where it noticed the problem, the mistake may be just before it.")


def _explain_compile(msg, notes):
    """(explanation, hint) for clang's message `msg`, followed by clang's `notes`."""
    for pattern, explanation, hint in COMPILE_CASES:
        if m := re.search(pattern, msg):
            name = m.group(1) if m.groups() else None
            header = next((h for key, h in HEADERS.items() if name and
                           (name == key or (key.endswith("_") and name.startswith(key)))), None)
            alt = next((a.group(1) for n in notes if (a := re.search(r"did you mean '(\w+)'", n))), None)
            if header:
                hint = f"add '#include <{header}>' at the top"
            elif alt:
                hint = f"did you mean '{alt}'?"
            return explanation.format(*m.groups()), hint
    return GENERIC_COMPILE, None


def compile_error(stderr_text, source):
    """A CompileError for clang's output `stderr_text` (bcc's fd 2 during compilation) about the
    learner's `source`: the first error, located at the learner's line with a caret, explained.
    A map that could not be created for lack of privilege gives a PrivilegeError instead."""
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
    line, col = _clang_location(m, lines, i, source)
    why, hint = _explain_compile(m.group("msg"), notes)
    details = []
    for j, d in followers[:3]:
        where = f"line {d.group('line')}: " if d.group("file") == MAIN else ""
        details.append(f"{d.group('kind')}: {where}{_WFLAG.sub('', d.group('msg'))}")
    return CompileError(f"line {line}: {message}" if line else message, line=line,
                        column=col, explanation=why, hint=hint, source=source, raw=text,
                        details="\n".join(details) or None)


def _backend_error(lines, source, text):
    """CompileError for an error of LLVM's BPF code generator (after clang accepted the C)."""
    m = next((m for ln in lines for pattern in _BACKEND if (m := pattern.match(ln))), None)
    if m is None:
        msg = next((ln.strip() for ln in lines if ln.strip()), "the compiler gave no reason")
        return CompileError(f"compilation failed: {msg}", explanation=GENERIC_COMPILE,
                            source=source, raw=text)
    found = m.groupdict()
    msg, fn = found["msg"].strip(), found.get("fn")
    if "signed division" in msg:                       # LLVM: "Unsupport signed division"
        msg = "signed division/modulo is not supported by BPF"
    line = learner_line(source, int(found["line"])) if found.get("line") not in (None, "0") else None
    if "stack limit" in msg:
        line = _biggest_array(source, fn)
    elif "dynamic stack allocation" in msg:
        line = next((ln for ln, s in enumerate(_code_only(source).split("\n"), 1) if _VLA.match(s)), None)
    elif line is None and fn:
        line = _function_span(source, fn)[0]
    why, hint = _explain_compile(msg, [])
    where = f"line {line}: " if line else (f"in {fn}: " if fn else "")
    return CompileError(where + msg, line=line, explanation=why, hint=hint, source=source, raw=text)


def _clang_location(m, lines, i, source):
    """(learner line, column) of clang's diagnostic `m` found at lines[i]."""
    if m.group("file") == MAIN:
        line, col = int(m.group("line")), int(m.group("col"))
        quoted = lines[i + 1] if i + 1 < len(lines) else ""
        src = source.splitlines()
        if line <= len(src) and _norm(src[line - 1]) != _norm(quoted) and quoted.strip():
            # reported against bcc's rewritten text (rare): map back through the quoted line
            mapped = learner_line(source, line, quoted)
            return mapped, None if mapped != line else col
        return line, col
    for back in range(i - 1, -1, -1):         # error inside a header: the learner's #include line
        inc = re.match(rf"In file included from {re.escape(MAIN)}:(\d+)", lines[back])
        if inc:
            return int(inc.group(1)), None
        if _DIAG.match(lines[back]):
            break
    return None, None


def _biggest_array(source, function):
    first, last = _function_span(source, function)
    code = _code_only(source).split("\n")
    sizes = [(int(m.group(1)), ln) for ln in range(first, last + 1)
             for m in re.finditer(r"\w\s*\[\s*(\d+)\s*\]", code[ln - 1])]
    return max(sizes)[1] if sizes else first


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
     "The program reads packet bytes it has not proven to exist{detail}. The verifier only allows "
     "access between ctx->data and ctx->data_end after a comparison with data_end shows that every "
     "byte read is inside the packet.",
     "before this line, check the end of what you read against data_end and leave if it is past "
     "it, e.g. if ((void *)(eth + 1) > data_end) return XDP_PASS; — on every path, through the same "
     "pointer you then read with"),
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
     "The program reads or writes outside a map value: the offset is not proven to be inside the "
     "value — usually an array index inside the value that was not checked{detail}.",
     "check the index before using it: if (i >= ARRAY_SIZE) return XDP_PASS;"),
    (r"unbounded min value|min value is negative|min value is outside|unbounded memory access", None,
     "An index, offset or size used to access memory could be negative or arbitrarily large as "
     "far as the verifier knows (it came from the packet, the context or arithmetic it cannot "
     "bound).",
     "bound it before use, with an unsigned type: if (i >= 8) return XDP_PASS; — and check a "
     "packet pointer computed from it against data_end"),
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


def parse_listing(listing, function):
    """{instruction index: line in bcc's main.c} from the DEBUG_SOURCE listing of `function`."""
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


def full_log(bpf, function, prog_type=6, size=1 << 21):
    """Verify `function` of a compiled bcc.BPF again with a log buffer of our own and return the
    log. bcc prints no log when the kernel answers E2BIG (the verifier gave up: "BPF program is
    too large"); the kernel keeps the end of a log that does not fit, which is the part we need."""
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


def verifier_error(log_text, source, function, listing=None, bpf=None, full=None):
    """A VerifierError for the verifier's log `log_text` (bcc's fd 2 during load_func, or the
    exception text when nothing was printed) rejecting `function` of the learner's `source`.
    `listing`: the fd-2 text of a compile with debug=DEBUG_SOURCE, used to find the line when the
    log has no line info (bcc drops BTF when the kernel answers EINVAL). `bpf`: the bcc.BPF object,
    used to fetch the log that bcc does not print when the verifier gave up (E2BIG); `full`: that
    log, fetched already (by the compile helper).
    No log and EPERM gives a PrivilegeError."""
    text = log_text or ""
    lines = text.splitlines()
    insns = [i for i, ln in enumerate(lines) if _INSN.match(ln)]
    if not insns and re.search(r"Operation not permitted|Need super-user", text):
        return PrivilegeError(f"not allowed to load the BPF program {function}", PRIVILEGE_HINT)
    if not insns and (bpf is not None or full) and _TOO_LARGE_NO_LOG.search(text):
        more = full if full else full_log(bpf, function)
        if more.strip():
            return verifier_error(more, source, function, listing=listing)
    last = insns[-1] if insns else -1
    tail = [ln for ln in lines[last + 1:] if not _NOISE.match(ln) and not _SRC.match(ln)]
    headline = (tail or [next((ln for ln in lines if ln.strip() and not _NOISE.match(ln)),
                              "rejected without a reason")])[0].strip()
    instruction = lines[last].split(" ; ")[0].strip() if insns else None
    case = next(((c, m) for c in VERIFIER_CASES if (m := re.search(c[0], "\n".join([headline, *tail])))),
                None)
    where, too_large = (case[0][1], "too large" in case[0][0]) if case else (None, False)
    if case:
        (_, _, explanation, hint), m = case
        why = explanation.format(*m.groups(), helper=_helper(headline), detail=_detail(headline))
    else:
        why, hint = GENERIC_VERIFIER
    line = _failing_line(lines, last, source, function, listing)
    if where == "loop":
        line = _loop_line(source, function, line) or line
    elif where == "helper":
        line = _helper_line(source, _helper(headline), function) or line
    if too_large and not insns:
        headline = "BPF program is too large (the verifier gave up after 1,000,000 instructions)"
    message = f"the verifier rejected {function}" + (f" at line {line}" if line else "") + f": {headline}"
    return VerifierError(message, line=line, explanation=why, hint=hint, source=source, raw=text,
                         instruction=instruction, function=function,
                         details=_trim(lines, last, source) if insns else None)


def _failing_line(lines, last, source, function, listing):
    """Learner line of the rejected instruction: from the log's BTF line info, else the listing."""
    for ln in reversed(lines[:last + 1] if last >= 0 else []):
        m = _SRC.match(ln)
        if not m or not m.group(1).strip():
            continue
        if m.group(2) is None:                                  # older kernels: "; text" only
            found = [i for i, s in enumerate(source.splitlines(), 1) if _norm(s) == _norm(m.group(1))]
            if found:
                return found[-1]
            continue
        if os.path.basename(m.group(2)) == "main.c" and int(m.group(3)) > 0:
            return learner_line(source, int(m.group(3)), m.group(1))
    mapping = parse_listing(listing, function)
    if mapping and last >= 0 and (idx := _INSN.match(lines[last])):
        before = [i for i in mapping if i <= int(idx.group(1))]
        if before:
            rewritten, text = mapping[max(before)]
            return learner_line(source, rewritten, text)
    return None


def _trim(lines, last, source, keep=8):
    """The end of the log: the last `keep` instructions with their source lines (renumbered to the
    learner's) and register state, then the verifier's message."""
    start, seen = last, 0
    while start > 0 and seen < keep:
        start -= 1
        seen += bool(_INSN.match(lines[start]))
    window = lines[start:]
    if not any(_SRC.match(ln) for ln in window):       # show which line the window belongs to
        window = [next((ln for ln in reversed(lines[:start]) if _SRC.match(ln) and
                        ln.split(" @ ")[-1].startswith("main.c:") and not ln.endswith(":0")), ""),
                  *window]
    out, src = [], source.splitlines()
    for ln in window:
        if re.match(r"^(processed \d+ insns|HINT: )", ln):
            break
        if not ln or ln.startswith("bpf: "):
            continue
        m = _SRC.match(ln)
        if m and m.group(2) and os.path.basename(m.group(2)) == "main.c":
            if int(m.group(3)) == 0:
                continue
            at = learner_line(source, int(m.group(3)), m.group(1))
            text = src[at - 1].strip() if at and at <= len(src) else m.group(1)
            ln = f"; {text} @ line {at}"
        out.append(ln)
    return "\n".join(out).strip() or None
