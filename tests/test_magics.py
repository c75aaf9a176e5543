"""The %%xdp cell magic in a real IPython shell: compile and attach, replace on re-run, maps as
variables, several targets, and short errors."""
import pytest
from IPython.core.interactiveshell import InteractiveShell

import xdplab

COUNT = """BPF_ARRAY(counters, u64, 5);
int xdp_count(struct xdp_md *ctx) {
    u32 key = VERDICT;
    u64 *v = counters.lookup(&key);
    if (v)
        __sync_fetch_and_add(v, 1);
    return VERDICT;
}
"""


@pytest.fixture
def shell():
    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "xdplab")
    yield sh
    InteractiveShell.clear_instance()


def cell(shell, line, body):
    result = shell.run_cell(f"%%xdp {line}\n{body}")
    return result


def test_cell_compiles_attaches_and_its_maps_become_variables(shell, pair):
    shell.user_ns["lab"] = pair
    res = cell(shell, "server", COUNT.replace("VERDICT", "XDP_PASS"))
    assert res.success, res.error_in_exec
    prog = shell.user_ns["prog"]
    assert pair.server.iface().xdp() == ("native", res.result.prog_id)
    assert pair.client.ping(pair.server, count=3, interval=0.05).received == 3
    assert shell.user_ns["counters"].snapshot()["XDP_PASS"] == 3
    # running the cell again (edited) replaces the program on the interface, in the same mode
    res = cell(shell, "server", COUNT.replace("VERDICT", "XDP_DROP"))
    assert res.success
    assert pair.server.iface().xdp() == ("native", res.result.prog_id)
    assert prog.bpf is None and shell.user_ns["prog"] is not prog       # the old one is gone
    assert pair.client.ping(pair.server, count=2, interval=0.05, timeout=0.3).received == 0
    assert shell.user_ns["counters"].snapshot()["XDP_DROP"] == 2


def test_generic_mode_several_targets_and_names(shell):
    with xdplab.Lab() as lab:
        a, r, s = lab.host("a"), lab.host("router"), lab.host("server")
        lab.link(a, r)
        lab.link(r, s)
        shell.user_ns["lab"] = lab
        res = cell(shell, "router:eth0 router:eth1 --mode generic --name fwd --lab lab",
                   "int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }")
        assert res.success, res.error_in_exec
        assert [str(att.iface) for att in res.result] == ["router:eth0", "router:eth1"]
        assert r.iface("eth0").xdp().mode == r.iface("eth1").xdp().mode == "generic"
        assert isinstance(shell.user_ns["fwd"], xdplab.program.Program)
        assert a.ping(s, count=2, interval=0.05).received == 2


def test_errors_are_short_and_leave_the_old_program(shell, pair, capsys):
    shell.user_ns["lab"] = pair
    good = cell(shell, "server", "int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }")
    capsys.readouterr()
    bad = cell(shell, "server", "int xdp_pass(struct xdp_md *ctx) { return XDP_PASS }")
    shown = capsys.readouterr()
    assert isinstance(bad.error_in_exec, xdplab.CompileError) and bad.error_in_exec.line == 1
    assert bad.error_in_exec.cell_line == 2 and "cell line 2" in shown.out
    assert "Traceback" not in shown.out + shown.err
    assert pair.server.iface().xdp().prog_id == good.result.prog_id        # still attached
    wrong = cell(shell, "--mode fast server", "int x;")
    assert isinstance(wrong.error_in_exec, xdplab.LabError)
    nobody = cell(shell, "nobody", "int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }")
    assert isinstance(nobody.error_in_exec, xdplab.LabError)


def test_error_lines_are_the_cells_lines(shell, pair, capsys):
    # the cell's first line is "%%xdp ...": C line N is cell line N + 1, and the error says so
    shell.user_ns["lab"] = pair
    res = cell(shell, "server", "int xdp_pass(struct xdp_md *ctx) {\n"
                                "    int verdict = XDP_PASS\n"
                                "    return verdict;\n}\n")
    shown = capsys.readouterr().out
    err = res.error_in_exec
    assert isinstance(err, xdplab.CompileError) and (err.line, err.cell_line) == (2, 3)
    assert err.message.startswith("cell line 3: expected ';'"), err.message
    assert "   3 |     int verdict = XDP_PASS" in shown and "cell line 3" in shown
    assert not any(ln.startswith("   2 |") for ln in shown.splitlines())
    # a verifier error: the headline, the excerpt and the log's source lines all count cell lines
    res = cell(shell, "server", "BPF_HASH(seen, u32, u64);\n"
                                "int xdp_count(struct xdp_md *ctx) {\n"
                                "    u32 key = ctx->ingress_ifindex;\n"
                                "    u64 *n = seen.lookup(&key);\n"
                                "    *n += 1;\n"
                                "    return XDP_PASS;\n}\n")
    shown = capsys.readouterr().out
    err = res.error_in_exec
    assert isinstance(err, xdplab.VerifierError) and (err.line, err.cell_line) == (5, 6)
    assert "rejected xdp_count at cell line 6:" in err.message
    assert "   6 |     *n += 1;" in shown
    assert "@ cell line 6" in err.details and "@ line" not in err.details.replace("@ cell line", "")
    # the same source through lab.load (no cell) keeps the C's own numbers
    with pytest.raises(xdplab.VerifierError) as plain:
        pair.load("BPF_HASH(seen, u32, u64);\nint xdp_count(struct xdp_md *ctx) {\n"
                  "    u32 key = ctx->ingress_ifindex;\n    u64 *n = seen.lookup(&key);\n"
                  "    *n += 1;\n    return XDP_PASS;\n}\n")
    assert "at line 5:" in plain.value.message and "   5 |     *n += 1;" in plain.value.text()


LIBBPF_COUNT = """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 5);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

SEC("xdp")
int xdp_count(struct xdp_md *ctx) {
    __u32 key = VERDICT;
    __u64 *v = bpf_map_lookup_elem(&counters, &key);
    if (v)
        *v += 1;
    return VERDICT;
}

char LICENSE[] SEC("license") = "GPL";
"""


def test_a_libbpf_cell_is_built_with_clang_and_its_errors_count_cell_lines(shell, pair, capsys):
    """%%xdp --libbpf: libbpf C in a cell, attached, its BTF-defined map a variable; run again,
    it replaces the program; a clang error and a verifier error name the cell's lines."""
    shell.user_ns["lab"] = pair
    res = cell(shell, "server --libbpf", LIBBPF_COUNT.replace("VERDICT", "XDP_PASS"))
    assert res.success, res.error_in_exec
    prog = shell.user_ns["prog"]
    assert prog.dialect == "libbpf"
    assert pair.server.iface().xdp() == ("native", res.result.prog_id)
    assert pair.client.ping(pair.server, count=3, interval=0.05).received == 3
    assert shell.user_ns["counters"].snapshot()["XDP_PASS"] == 3
    res = cell(shell, "server --libbpf", LIBBPF_COUNT.replace("VERDICT", "XDP_DROP"))
    assert res.success, res.error_in_exec
    assert pair.server.iface().xdp() == ("native", res.result.prog_id) and prog.bpf is None
    assert pair.client.ping(pair.server, count=2, interval=0.05, timeout=0.3).received == 0
    assert shell.user_ns["counters"].snapshot()["XDP_DROP"] == 2
    capsys.readouterr()
    # clang's error: C line 14 is cell line 15
    broken = LIBBPF_COUNT.replace("VERDICT;\n    __u64", "VERDICT\n    __u64").replace(
        "VERDICT", "XDP_PASS")
    res = cell(shell, "server --libbpf", broken)
    err, shown = res.error_in_exec, capsys.readouterr().out
    assert isinstance(err, xdplab.CompileError) and (err.line, err.cell_line) == (13, 14), \
        (err.line, err.cell_line, err.message)
    assert "cell line 14" in err.message and "Traceback" not in shown
    # the verifier's: the lookup's result used without a NULL check, at C line 15 (cell line 16)
    unchecked = LIBBPF_COUNT.replace("    if (v)\n        *v += 1;", "    *v += 1;").replace(
        "VERDICT", "XDP_PASS")
    res = cell(shell, "server --libbpf", unchecked)
    err = res.error_in_exec
    assert isinstance(err, xdplab.VerifierError) and (err.line, err.cell_line) == (15, 16), \
        (err.line, err.cell_line, err.message)
    assert "cell line 16" in err.message
    assert pair.server.iface().xdp().prog_id == shell.user_ns["prog"].attachments[0].prog_id
    # the flag is what makes a cell libbpf C: bcc's BPF_ARRAY is then explained the libbpf way
    res = cell(shell, "server --libbpf --no-attach", COUNT.replace("VERDICT", "XDP_PASS"))
    err = res.error_in_exec
    assert isinstance(err, xdplab.CompileError) and err.cell_line == 2, err
    assert 'SEC(".maps")' in err.hint, err.hint
    assert cell(shell, "server --no-attach", COUNT.replace("VERDICT", "XDP_PASS")).success
