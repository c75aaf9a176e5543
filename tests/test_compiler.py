"""The compile helper: one clang run per new source in a process of its own, a cache for re-runs
that never serves another header tree or kernel, programs and maps owned by the notebook's
process, and a helper that dies with it."""
import ctypes
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from scapy.all import IP, UDP, Ether

import xdplab
from xdplab import compiler
from xdplab.errors import CompileError

COUNT = r"""
BPF_ARRAY(seen, u64, 1);
int xdp_seen(struct xdp_md *ctx) {
    u32 key = 0;
    u64 *v = seen.lookup(&key);
    if (v)
        *v += 1;
    return VERDICT;
}
"""
BIG_STACK = """
int xdp_prog(struct xdp_md *ctx) {
    char buf[600];
    buf[ctx->ingress_ifindex & 511] = 1;
    return buf[ctx->rx_queue_index & 511] ? XDP_DROP : XDP_PASS;
}
"""
_libbpf = ctypes.CDLL("libbpf.so.1", use_errno=True)


def _exists(get, obj_id, settle=5.0):
    """Whether the kernel still has the object; a freed one may take an RCU grace period to go,
    so an object is taken as gone only once the id stops resolving within `settle` seconds."""
    deadline = time.monotonic() + settle
    while True:
        fd = get(ctypes.c_uint32(obj_id))
        if fd < 0:
            return False
        os.close(fd)
        if time.monotonic() > deadline:
            return True
        time.sleep(0.02)


def map_exists(map_id):
    return _exists(_libbpf.bpf_map_get_fd_by_id, map_id)


def prog_exists(prog_id):
    return _exists(_libbpf.bpf_prog_get_fd_by_id, prog_id)


def prog_id(prog):
    info = (ctypes.c_uint32 * 64)()
    size = ctypes.c_uint32(ctypes.sizeof(info))
    assert _libbpf.bpf_obj_get_info_by_fd(prog.fd(), info, ctypes.byref(size)) == 0
    return info[1]                 # struct bpf_prog_info: type, id, ...


def verdict(prog):
    return prog.test_run(Ether() / IP() / UDP()).verdict


def test_rerun_is_cached_with_fresh_maps_and_its_own_program(lab):
    src = COUNT.replace("VERDICT", "XDP_DROP") + "// rerun test\n"
    first = lab.load(src)
    assert first.cached is False
    verdict(first)
    verdict(first)
    second = lab.load(src)                        # the cell run again: no clang this time
    assert second.cached is True
    assert second.maps["seen"].snapshot() == {0: 0}            # new maps, not the first's
    assert first.maps["seen"].snapshot() == {0: 2}
    assert second.maps["seen"].id != first.maps["seen"].id
    assert prog_id(second) != prog_id(first)
    assert verdict(second) == "XDP_DROP" and second.maps["seen"].snapshot() == {0: 1}
    ids = first.maps["seen"].id, prog_id(first)
    first.close()                                 # closing one leaves the other working
    assert not map_exists(ids[0]) and not prog_exists(ids[1])
    assert verdict(second) == "XDP_DROP" and second.maps["seen"].snapshot() == {0: 2}
    # bcc's Table API on the maps, as before
    second.bpf["seen"][0] = second.bpf["seen"].Leaf(7)
    assert second.maps["seen"].snapshot() == {0: 7}
    ids = second.maps["seen"].id, prog_id(second)
    second.close()
    assert not map_exists(ids[0]) and not prog_exists(ids[1])


def test_one_line_change_compiles_again(lab):
    a = lab.load(COUNT.replace("VERDICT", "XDP_PASS") + "// change test\n")
    b = lab.load(COUNT.replace("VERDICT", "XDP_DROP") + "// change test\n")
    assert (a.cached, b.cached) == (False, False)
    assert (verdict(a), verdict(b)) == ("XDP_PASS", "XDP_DROP")
    a.close()
    b.close()


def test_a_changed_header_is_never_served_from_the_cache(lab, tmp_path):
    header = tmp_path / "verdict.h"
    src = '#include "verdict.h"\n' + COUNT + "// header test\n"
    header.write_text("#define VERDICT XDP_DROP\n")
    first = lab.load(src, cflags=[f"-I{tmp_path}"])
    assert verdict(first) == "XDP_DROP"
    header.write_text("#define VERDICT XDP_PASS\n")           # same source, other header
    second = lab.load(src, cflags=[f"-I{tmp_path}"])
    assert second.cached is False and verdict(second) == "XDP_PASS"
    third = lab.load(src, cflags=[f"-I{tmp_path}"])
    assert third.cached is True and verdict(third) == "XDP_PASS"
    for p in (first, second, third):
        p.close()


def test_every_header_read_is_checked_not_only_the_include_dirs(lab, tmp_path):
    """A header reached by a path no -I names (here an absolute #include) is in what clang
    reported it read: changing it makes the next run compile afresh."""
    header = tmp_path / "deep" / "verdict.h"
    header.parent.mkdir()
    src = f'#include "{header}"\n' + COUNT + "// absolute include test\n"
    header.write_text("#define VERDICT XDP_DROP\n")
    first = lab.load(src)
    again = lab.load(src)
    assert (first.cached, again.cached) == (False, True)
    header.write_text("#define VERDICT XDP_TX\n")
    changed = lab.load(src)
    assert changed.cached is False and verdict(changed) == "XDP_TX"
    for p in (first, again, changed):
        p.close()


def test_cache_key_covers_header_tree_kernel_and_flags(tmp_path, monkeypatch):
    tree = tmp_path / "linux-headers-6.1.0"
    (tree / "include").mkdir(parents=True)
    key = compiler.cache_key("int x;", ["-DA"], ["f"], str(tree))
    assert key == compiler.cache_key("int x;", ["-DA"], ["f"], str(tree))
    assert key != compiler.cache_key("int x;", ["-DB"], ["f"], str(tree))
    assert key != compiler.cache_key("int y;", ["-DA"], ["f"], str(tree))
    other = tmp_path / "linux-headers-6.12.0"
    (other / "include").mkdir(parents=True)
    assert key != compiler.cache_key("int x;", ["-DA"], ["f"], str(other))     # another tree
    time.sleep(0.01)
    (tree / "include" / "version.h").write_text("#define LINUX_VERSION_CODE 1\n")
    assert key != compiler.cache_key("int x;", ["-DA"], ["f"], str(tree))      # tree changed
    key = compiler.cache_key("int x;", ["-DA"], ["f"], str(tree))
    monkeypatch.setattr(compiler, "kernel_identity", lambda: ("6.1.0-99-amd64", "#1 SMP", "x86_64"))
    assert key != compiler.cache_key("int x;", ["-DA"], ["f"], str(tree))      # another kernel


# -- the precompiled header (compile_helper.Precompiled) ------------------------------------------------
def prog_tags(prog):
    """{function: the kernel's tag of its instructions} (a hash with map fds left out)."""
    tags = {}
    for name, fn in prog.bpf.funcs.items():
        info = (ctypes.c_uint32 * 64)()
        size = ctypes.c_uint32(ctypes.sizeof(info))
        assert _libbpf.bpf_obj_get_info_by_fd(fn.fd, info, ctypes.byref(size)) == 0
        tags[name] = bytes(info)[8:16]          # struct bpf_prog_info: type, id, tag[8]
    return tags


@pytest.fixture
def pch_cache(tmp_path, monkeypatch):
    """A helper whose PCHs live in an empty XDPLAB_CACHE of this test's own."""
    monkeypatch.setenv("XDPLAB_CACHE", str(tmp_path / "cache"))
    compiler.restart()
    yield tmp_path / "cache" / "pch"
    monkeypatch.undo()
    compiler.restart()


def wait_for_pch(directory, count=1, timeout=120):
    deadline = time.monotonic() + timeout
    while len(list(directory.glob("*.json"))) < count:
        assert time.monotonic() < deadline, "no precompiled header was built"
        time.sleep(0.1)


def test_a_pch_compile_gives_the_same_program_and_messages_as_a_plain_one(lab, pch_cache):
    """A program that begins with parsing_helpers.h and draws a warning whose note names a
    kernel header: with the PCH (built in the background once its key is asked for a second
    time) the same instructions and the same warning text; an error in the learner's code, the
    same error."""
    source = ('#include "parsing_helpers.h"\n#define ETH_HLEN 15\n'
              + COUNT.replace("VERDICT", "XDP_PASS"))
    first = lab.load(source + "// pch 1\n")
    assert first.bpf.pch is False                 # none yet
    lab.load(source + "// pch 1b\n").close()     # asked for again: its build starts
    wait_for_pch(pch_cache)
    second = lab.load(source + "// pch 2\n")
    assert second.bpf.pch is True and second.cached is False
    plain = lab.load(source + "// pch 3\n", cflags=["-DXDPLAB_NOT_IN_THE_PCH"])   # another key
    assert plain.bpf.pch is False
    assert "'ETH_HLEN' macro redefined" in first.bpf.output
    assert "include/uapi/linux/if_ether.h:" in first.bpf.output          # the note, as clang names it
    assert second.bpf.output == first.bpf.output == plain.bpf.output
    assert prog_tags(second) == prog_tags(first) == prog_tags(plain)
    wrong = '#include "parsing_helpers.h"\nint xdp_w(struct xdp_md *ctx) {\n    return XDP_PAS;\n}\n'
    errors = []
    for i, cflags in enumerate(([], ["-DXDPLAB_NOT_IN_THE_PCH"])):
        with pytest.raises(CompileError) as info:
            lab.load(wrong + f"// wrong {i}\n", cflags=cflags)
        errors.append((str(info.value), info.value.line))
    assert errors[0] == errors[1] and errors[0][1] == 3
    for p in (first, second, plain):
        p.close()


def test_a_source_that_includes_nothing_uses_the_pch_of_bccs_headers(lab, pch_cache):
    src = COUNT.replace("VERDICT", "XDP_DROP")
    first = lab.load(src + "// base 1\n")
    assert first.bpf.pch is False
    lab.load(src + "// base 1b\n").close()
    wait_for_pch(pch_cache)
    second = lab.load(src + "// base 2\n")
    plain = lab.load(src + "// base 3\n", cflags=["-DXDPLAB_NOT_IN_THE_PCH"])
    assert (second.bpf.pch, plain.bpf.pch) == (True, False)
    assert prog_tags(second) == prog_tags(first) == prog_tags(plain)
    assert verdict(second) == "XDP_DROP" and second.maps["seen"].snapshot() == {0: 1}
    for p in (first, second, plain):
        p.close()


def test_a_header_that_would_now_be_found_first_is_not_hidden_by_the_pch(lab, pch_cache,
                                                                        monkeypatch):
    """bcc puts the working directory first on the include path: a parsing_helpers.h that
    appears there after the PCH was built is what a plain compile reads, so the PCH is not used."""
    from xdplab import program
    work = pch_cache.parent.parent / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    compiler.restart()                            # a helper working in `work`
    src = ('#include "parsing_helpers.h"\n#ifndef VERDICT\n#define VERDICT XDP_PASS\n#endif\n'
           + COUNT)
    first = lab.load(src + "// shadow 1\n")
    lab.load(src + "// shadow 1b\n").close()
    wait_for_pch(pch_cache)
    second = lab.load(src + "// shadow 2\n")
    assert second.bpf.pch is True and verdict(second) == "XDP_PASS"
    (work / "parsing_helpers.h").write_text(
        f'#define VERDICT XDP_DROP\n#include "{program.INCLUDE}/parsing_helpers.h"\n')
    third = lab.load(src + "// shadow 3\n")
    assert third.bpf.pch is False and verdict(third) == "XDP_DROP"
    for p in (first, second, third):
        p.close()


def test_llvm_ending_the_helper_is_explained_and_a_new_helper_starts(lab):
    before = compiler.helper().pid
    with pytest.raises(CompileError) as info:
        lab.load(BIG_STACK)
    assert "512 bytes" in info.value.explanation and info.value.line == 3
    after = compiler.helper()
    assert after.pid != before and after.alive()
    with pytest.raises(ProcessLookupError):          # the old helper is gone, not a zombie of ours
        os.kill(before, 0)
    prog = lab.load(COUNT.replace("VERDICT", "XDP_PASS") + "// after the crash\n")
    assert verdict(prog) == "XDP_PASS"
    prog.close()


def test_a_helper_killed_between_cells_is_replaced(lab):
    h = compiler.helper()
    os.kill(h.pid, signal.SIGKILL)
    h.proc.wait(timeout=10)
    prog = lab.load(COUNT.replace("VERDICT", "XDP_PASS") + "// after a kill\n")
    assert verdict(prog) == "XDP_PASS" and compiler.helper().pid != h.pid
    prog.close()


CHILD = textwrap.dedent("""
    import sys, time, xdplab
    from xdplab import compiler
    lab = xdplab.Lab.pair()
    prog = lab.load("int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }")
    print(compiler.helper().pid, flush=True)
    time.sleep(300)
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_helper_dies_with_its_process(sig):
    """The helper of a notebook kernel that dies (even by SIGKILL) exits at once."""
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    pid = int(child.stdout.readline())
    assert os.getsid(pid) != os.getsid(child.pid)     # a notebook interrupt does not reach it
    child.send_signal(sig)
    child.wait(timeout=10)
    deadline = time.time() + 10
    while time.time() < deadline and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}"), "the compile helper outlived its process"


def test_interrupt_while_compiling_leaves_a_working_helper(lab):
    """A KeyboardInterrupt during a compile (the notebook's stop button) must not desynchronise
    the next request: the helper is replaced."""
    import threading
    h = compiler.helper()
    timer = threading.Timer(0.2, lambda: signal.pthread_kill(threading.main_thread().ident,
                                                             signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        lab.load(COUNT.replace("VERDICT", "XDP_PASS") + "// interrupted\n" + "\n" * 3
                 + '#include "parsing_helpers.h"\n')
    timer.join()
    assert compiler.helper().pid != h.pid
    prog = lab.load(COUNT.replace("VERDICT", "XDP_DROP") + "// after the interrupt\n")
    assert verdict(prog) == "XDP_DROP"
    prog.close()


def test_runtime_never_imports_ipywidgets():
    code = ("import sys, xdplab; from xdplab import compiler, compile_helper, maps; "
            "print('ipywidgets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_forked_child_gets_its_own_helper(lab):
    """A process forked after the helper started must not talk on its parent's socket."""
    from xdplab import diagnostics, headers, program
    parent = compiler.helper()
    headers.ensure()
    flags = [f"-I{program.INCLUDE}", *diagnostics.CFLAGS]
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            loaded = compiler.load("int xdp_f(struct xdp_md *ctx) { return XDP_DROP; }\n", flags,
                                   ["xdp_f"])
            code = 0 if compiler.helper().pid != parent.pid and loaded.funcs["xdp_f"].fd >= 0 else 2
            loaded.cleanup()
            compiler._stop()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert compiler.helper() is parent and parent.alive()
    prog = lab.load(COUNT.replace("VERDICT", "XDP_PASS") + "// after a fork\n")
    assert verdict(prog) == "XDP_PASS"
    prog.close()
