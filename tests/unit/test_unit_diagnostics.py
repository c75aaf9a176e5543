"""Error explanations from recorded clang and verifier output (tests/unit/recorded, real logs of
bcc 0.26 on Linux 6.18). Expected lines are worked out from the C files: bcc's main.c has 10
prologue lines, one more line before each function and one after the `{` of each non-static
function, so learner line N of a program whose only function starts at line 5 is main.c line
N + 12."""
import pytest

from xdplab import CompileError, PrivilegeError, VerifierError, diagnostics as d


def test_functions_and_the_lines_bcc_shifts(recorded):
    src = recorded("lookup_unchecked.c")
    assert d.functions(src) == [("pick", 3, 3, 5, True), ("xdp_prog", 7, 7, 12, False)]
    lines = d.rewritten_lines(src)
    assert lines[4] == 15          # 4 + 10 + pick's line (static: no blank line after its brace)
    assert lines[8] == 21 and lines[9] == 22 and lines[10] == 23      # + 2 functions + 1 blank
    assert d.rewritten_lines(recorded("packet_read_unchecked.c"))[9] == 21


def test_learner_line_undoes_bcc_even_where_bcc_rewrote_the_text(recorded):
    src = recorded("lookup_unchecked.c")
    assert d.learner_line(src, 23, "*v += 1;") == 10
    # bcc rewrote counters.lookup(&key) in place: the start of the line still finds it
    assert d.learner_line(src, 22, "u64 *v = bpf_map_lookup_elem((void *)bpf_pseudo_fd(1, -1), &key);") == 9
    # a position that does not fit the quoted text: the text wins
    assert d.learner_line(src, 30, "return x & 3;") == 4


def test_an_unchecked_packet_read(recorded):
    e = d.verifier_error(recorded("packet_read_unchecked.log"), recorded("packet_read_unchecked.c"), "xdp_prog")
    assert isinstance(e, VerifierError) and e.line == 9          # if (eth->h_proto == ...)
    assert "1 byte at offset 12" in e.explanation and "only 0 bytes" in e.explanation
    assert "data_end" in e.hint
    assert e.instruction == "1: (71) r2 = *(u8 *)(r1 +12)"
    assert "; if (eth->h_proto == htons(ETH_P_IP)) @ line 9" in e.details


def test_the_same_log_from_an_older_kernel_without_line_numbers(recorded):
    # before Linux 5.x's "@ file:line" the log quotes the source line alone
    log = "\n".join(ln.split(" @ main.c:")[0] for ln in recorded("packet_read_unchecked.log").splitlines())
    assert d.verifier_error(log, recorded("packet_read_unchecked.c"), "xdp_prog").line == 9


def test_a_lookup_never_checked_for_null(recorded):
    e = d.verifier_error(recorded("lookup_unchecked.log"), recorded("lookup_unchecked.c"), "xdp_prog")
    assert e.line == 10                                           # *v += 1;
    assert "map_value_or_null" in e.explanation and "if (!v)" in e.hint
    assert "; u64 *v = counters.lookup(&key); @ line 9" in e.details     # the learner's text, not bcc's
    assert "bpf_pseudo_fd" not in e.details


def test_no_log_and_eperm_is_a_privilege_error():
    e = d.verifier_error("bpf: Failed to load program: Operation not permitted\n", "int f() {}", "f")
    assert isinstance(e, PrivilegeError) and "sudo" in e.hint


def test_clang_errors_point_at_the_learners_line_and_column(recorded):
    e = d.compile_error(recorded("undeclared.log"), recorded("undeclared.c"))
    assert isinstance(e, CompileError) and (e.line, e.column) == (3, 12)
    assert e.message == "line 3: use of undeclared identifier 'cout'"
    assert "typo" in e.explanation
    typo = d.compile_error(recorded("typo.log"), recorded("typo.c"))
    assert typo.hint == "did you mean 'count'?"
    assert typo.details == "note: line 2: 'count' declared here"


def test_an_error_inside_a_header_points_at_the_include():
    text = ("In file included from /virtual/main.c:2:\n"
            "/usr/include/stdio.h:27:10: fatal error: 'bits/libc-header-start.h' file not found\n")
    assert d.compile_error(text, "#include <linux/bpf.h>\n#include <stdio.h>\nint x;\n").line == 2


@pytest.mark.parametrize("why, kind", [("Operation not permitted", PrivilegeError),
                                       ("Invalid argument", CompileError)])
def test_a_map_the_kernel_refused(why, kind):
    src = "// counts\nBPF_ARRAY(counters, u64, 0);\n"
    e = d.compile_error(f"could not open bpf map: counters, error: {why}\n", src)
    assert type(e) is kind
    if kind is CompileError:
        assert e.line == 2
