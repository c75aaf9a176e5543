"""Newcomer-first errors: real bad C, compiled by bcc and rejected by clang, LLVM or this kernel's
verifier, must come back as short explained errors pointing at the learner's line.

Each program marks the line the error must point at with `// <-`. Everything goes through the
public path, `lab.load(source)`.
"""
import contextlib
import ctypes

import pytest

import xdplab
from xdplab import CompileError, LabError, PrivilegeError, VerifierError, diagnostics


def marked(source):
    """1-based line of the `// <-` marker."""
    lines = [i for i, s in enumerate(source.splitlines(), 1) if "// <-" in s]
    assert len(lines) == 1, "mark exactly one line"
    return lines[0]


def rejected(lab, source, cls):
    with pytest.raises(LabError) as info:
        lab.load(source)
    err = info.value
    assert type(err) is cls, f"{type(err).__name__}: {err}"
    return err


# -- capabilities of the calling thread (the bpf() checks use the thread's credentials) -------------
class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39
_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def without_caps(*caps):
    """Lower `caps` in this thread's effective set for the block; they stay permitted and are
    raised again afterwards."""
    hdr, data = _CapHeader(0x20080522, 0), (_CapData * 2)()       # _LINUX_CAPABILITY_VERSION_3
    assert _libc.capget(ctypes.byref(hdr), data) == 0
    saved = [d.effective for d in data]
    for cap in caps:
        data[cap // 32].effective &= ~(1 << (cap % 32))
    assert _libc.capset(ctypes.byref(hdr), data) == 0, ctypes.get_errno()
    try:
        yield
    finally:
        for d, eff in zip(data, saved):
            d.effective = eff
        assert _libc.capset(ctypes.byref(hdr), data) == 0


# -- clang and LLVM ---------------------------------------------------------------------------------
def test_missing_semicolon(lab):
    src = """
int xdp_prog(struct xdp_md *ctx) {
    int verdict = XDP_PASS  // <-
    return verdict;
}
"""
    err = rejected(lab, src, CompileError)
    assert err.line == marked(src) and err.column
    assert "';'" in err.explanation and "';'" in err.hint
    assert "int verdict = XDP_PASS" in err.text() and "^" in err.text()


def test_undeclared_constant_names_its_header(lab):
    src = """
#include <linux/if_ether.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end)
        return XDP_PASS;
    if (eth->h_proto == htons(ETH_P_IPV6))
        return XDP_PASS;
    return IPPROTO_UDP;  // <-
}
"""
    err = rejected(lab, src, CompileError)
    assert err.line == marked(src)
    assert "'IPPROTO_UDP' is not declared" in err.explanation
    assert "linux/in.h" in err.hint


def test_undeclared_function_is_a_compile_error(lab):
    # a plain warning in C99; it would compile to a call the verifier rejects as
    # "last insn is not an exit or jmp", so xdplab makes it an error at the line
    src = """
int xdp_prog(struct xdp_md *ctx) {
    bpf_trace_printf("packet\\n");  // <-
    return XDP_PASS;
}
"""
    err = rejected(lab, src, CompileError)
    assert err.line == marked(src)
    assert "never declared" in err.explanation and "bpf_trace_printk" in err.hint


def test_incompatible_pointer_types(lab):
    src = """
#include <linux/if_ether.h>
#include <linux/ip.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = eth + 1;  // <-
    if ((void *)(ip + 1) > data_end)
        return XDP_PASS;
    return ip->ttl == 1 ? XDP_DROP : XDP_PASS;
}
"""
    err = rejected(lab, src, CompileError)
    assert err.line == marked(src)
    assert "pointer of one type" in err.explanation and "(void *)" in err.hint


def test_other_clang_errors_get_the_generic_explanation(lab):
    src = """
#include <linux/if_ether.h>
int xdp_prog(struct xdp_md *ctx) {
    struct ethhdr eth = {};
    return eth * 2;  // <-
}
"""
    err = rejected(lab, src, CompileError)
    assert err.line == marked(src) and "invalid operands" in err.message
    assert "clang, the C compiler" in err.explanation


def test_stack_overflow_in_llvm_does_not_kill_the_process(lab):
    # LLVM's BPF backend calls exit(1) on this; the notebook kernel must survive it
    src = """
int xdp_prog(struct xdp_md *ctx) {
    volatile unsigned char seen[600];  // <-
    seen[ctx->rx_queue_index % 600] = 1;
    return seen[0] ? XDP_PASS : XDP_DROP;
}
"""
    err = rejected(lab, src, CompileError)
    assert err.line == marked(src)
    assert "512 bytes of stack" in err.explanation and "BPF_PERCPU_ARRAY" in err.hint


def test_signed_division_in_llvm(lab):
    src = """
int xdp_prog(struct xdp_md *ctx) {
    int len = ctx->data_end - ctx->data;
    int parts = ctx->rx_queue_index - 4;
    return len / parts > 100 ? XDP_DROP : XDP_PASS;  // <-
}
"""
    err = rejected(lab, src, CompileError)
    assert err.line == marked(src)
    assert "signed division" in err.explanation and "unsigned" in err.hint


# -- the verifier (more mistakes, each with its explanation and fix: tests/error_corpus/) ----------
def test_packet_read_without_data_end_check(lab):
    src = """
#include <linux/if_ether.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if (eth->h_proto == htons(ETH_P_ARP))  // <-
        return XDP_DROP;
    return XDP_PASS;
}
"""
    err = rejected(lab, src, VerifierError)
    assert err.line == marked(src) and err.function == "xdp_prog"
    assert "invalid access to packet" in err.message
    assert "1 byte at offset 12" in err.explanation and "cover only 0 bytes" in err.explanation
    assert "data_end" in err.hint
    assert "(71)" in err.instruction and "+12)" in err.instruction   # first byte of h_proto
    assert "@ line 7" in err.details and "invalid access to packet" in err.details
    assert "main.c" not in err.details                        # renumbered to the learner's lines


MAP_NULL = """
BPF_HASH(seen, u32, u64);

static __always_inline u32 bucket(u32 x)
{
    return x & 0xff;
}

int xdp_guarded(struct xdp_md *ctx)
{
    u32 key = bucket(ctx->rx_queue_index);
    u64 *n = seen.lookup(&key);
    if (n)
        *n += 1;
    return XDP_PASS;
}

int
xdp_prog(struct xdp_md *ctx) {
    u32 key = bucket(ctx->ingress_ifindex);
    u64 *n = seen.lookup(&key);
    *n += 1;  // <-
    return XDP_PASS;
}
"""


def test_map_value_used_without_null_check(lab):
    # two functions and a static helper before it: bcc shifts its line info by 15 here
    err = rejected(lab, MAP_NULL, VerifierError)
    assert err.function == "xdp_prog" and err.line == marked(MAP_NULL)
    assert "map_value_or_null" in err.message and "NULL" in err.explanation
    assert "if (!v)" in err.hint
    assert "u64 *n = seen.lookup(&key); @ line 21" in err.details   # bcc's rewrite undone


def test_stack_read_before_write(lab):
    # root may read uninitialised stack (CAP_PERFMON); with CAP_BPF + CAP_NET_ADMIN only it may not
    src = """
BPF_HASH(blocked, u32, u64);
int xdp_prog(struct xdp_md *ctx) {
    u32 addr;
    u64 *hit = blocked.lookup(&addr);  // <-
    return hit ? XDP_DROP : XDP_PASS;
}
"""
    with without_caps(CAP_PERFMON, CAP_SYS_ADMIN):
        err = rejected(lab, src, VerifierError)
    assert err.line == marked(src) and "invalid read from stack" in err.message
    assert "before anything was written" in err.explanation and "= 0" in err.hint


def test_return_value_never_set(lab):
    src = """
int xdp_prog(struct xdp_md *ctx) {
    int verdict;
    return verdict;  // <-
}
"""
    err = rejected(lab, src, VerifierError)
    assert err.line == marked(src) and "R0 !read_ok" in err.message
    assert "never set" in err.explanation and "XDP_PASS" in err.hint
    assert err.instruction.endswith("exit")


def test_helper_not_allowed_in_xdp(lab):
    src = """
int xdp_prog(struct xdp_md *ctx) {
    u16 proto = 0;
    bpf_skb_load_bytes(ctx, 12, &proto, sizeof(proto));  // <-
    return proto == htons(0x0806) ? XDP_DROP : XDP_PASS;
}
"""
    err = rejected(lab, src, VerifierError)
    assert err.line == marked(src) and "bpf_skb_load_bytes" in err.message
    assert "bpf_skb_load_bytes belongs to another kind of program" in err.explanation
    assert "ctx->data" in err.hint


@pytest.mark.parametrize("src, words", [
    ("""
int xdp_prog(struct xdp_md *ctx) {
    u64 addr = ctx->rx_queue_index;
    return *(u32 *)addr;  // <-
}
""", ("invalid mem access 'scalar'", "plain number as if it were a pointer", "checked pointers")),
], ids=["number-as-pointer"])
def test_more_verifier_messages(lab, src, words):
    err = rejected(lab, src, VerifierError)
    assert err.line == marked(src)
    assert words[0] in err.message and words[1] in err.explanation and words[2] in err.hint


# -- privileges ------------------------------------------------------------------------------------------
def test_no_privilege_to_create_a_map_or_load(lab, count_source):
    with without_caps(CAP_BPF, CAP_SYS_ADMIN, CAP_PERFMON):
        no_map = rejected(lab, "int xdp_prog(struct xdp_md *ctx) { return XDP_PASS; }",
                          PrivilegeError)
        with_map = rejected(lab, count_source.replace("VERDICT", "XDP_PASS"), PrivilegeError)
    assert "load" in no_map.message and "create BPF map 'counters'" in with_map.message
    for err in (no_map, with_map):
        assert "sudo make lab" in err.hint and "CAP_BPF" in err.hint
    lab.load("int xdp_ok(struct xdp_md *ctx) { return XDP_PASS; }")   # capabilities are back


# -- rendering -------------------------------------------------------------------------------------------
def test_short_forms(lab):
    err = rejected(lab, MAP_NULL, VerifierError)
    text = err.text()
    assert text.splitlines()[0].startswith("VerifierError: the verifier rejected xdp_prog at line 22")
    assert "  22 |     *n += 1;" in text and "Why: " in text and "Fix: " in text
    page = err._repr_html_()
    assert "*n += 1;" in page and "<details>" in page
    assert diagnostics.compile_error("/virtual/main.c:1:1: error: boom <&>\n", "x\n")._repr_html_() \
        .count("&lt;&amp;&gt;") == 1
    assert xdplab.errors.render_exception(err) == text
    assert xdplab.errors.render_exception(ValueError("x")) == "ValueError: x"


def test_ipython_shows_the_short_form_instead_of_a_traceback(lab, capsys):
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "xdplab")
        shell.user_ns["lab"] = lab
        shell.user_ns["src"] = MAP_NULL
        result = shell.run_cell("prog = lab.load(src)")
        out = capsys.readouterr()
    finally:
        InteractiveShell.clear_instance()
    assert isinstance(result.error_in_exec, VerifierError)
    shown = out.out + out.err
    assert "Traceback" not in shown and "site-packages" not in shown and "program.py" not in shown
    assert "VerifierError: the verifier rejected xdp_prog at line 22" in shown
    assert "Fix: check the pointer" in shown


# -- line mapping without the kernel ---------------------------------------------------------------
def test_rewritten_line_numbers_follow_bcc_layout():
    # the layout bcc 0.26 produced for this text (seen with debug=DEBUG_PREPROCESSOR)
    src = ("#include <uapi/linux/bpf.h>\nstatic int proto(int x);\n"
           "static __always_inline int a(int x) { return x; }\nstatic int b(int x)\n{ return x; }\n"
           "struct foo { int a; };\nstatic struct foo zero = { 0 };\n"
           "int xdp_one(struct xdp_md *ctx) { return a(1) + b(2) + zero.a; }\n"
           "int c(int x) {\n  return x;\n}\nint xdp_prog(struct xdp_md *ctx)\n{\n    return XDP_PASS;\n}\n")
    fwd = diagnostics.rewritten_lines(src)
    assert [fwd[n] for n in (1, 3, 4, 5, 8, 9, 10, 12, 13, 14)] == [11, 14, 16, 17, 21, 24, 26, 29, 30, 32]
    # code after a '{' on the same line moves to an inserted line; it still maps back
    assert diagnostics.learner_line(src, 22, "return a(1) + b(2) + zero.a; }") == 8
    assert diagnostics.learner_line(src, 32, "return XDP_PASS;") == 14
