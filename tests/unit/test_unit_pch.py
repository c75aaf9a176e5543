"""The compile helper's precompiled header (xdplab/program/compile_helper.py, Precompiled) is
used only for a source whose first code is `#include "parsing_helpers.h"` (bcc's headers alone
for one that includes nothing), only under its own key (cflags, tree, compiler...), and only
while every header it read is as it was and no header that would now be found first has
appeared; otherwise the compile is plain and a new PCH is built.
No bcc or clang here: the PCH is a stand-in file, the build is recorded, not run."""
import json
import os

import pytest

from xdplab.program import compile_helper as ch

SOURCE = ('/* a lesson program */\n// counts\n\n#include "parsing_helpers.h"\n'
          'int xdp_a(struct xdp_md *ctx) { return XDP_PASS; }\n')
CFLAGS = ["-I/x/bpf/include", "-Werror=return-type"]


@pytest.fixture
def pch(tmp_path, monkeypatch):
    monkeypatch.setenv("XDPLAB_CACHE", str(tmp_path / "cache"))
    p = ch.Precompiled(lib=None)
    p.clang = "/usr/bin/clang-14"
    monkeypatch.setattr(p, "static", lambda: ["this bcc, this LLVM, this clang"])
    built = []
    monkeypatch.setattr(p, "build", lambda key, d, cflags, header: built.append((key, list(cflags))))
    header = tmp_path / "include" / "parsing_helpers.h"
    header.parent.mkdir()
    header.write_text("#define ONE 1\n")
    d = p.usable_dir()
    key = p.key(CFLAGS, str(tmp_path))
    path = os.path.join(d, key + ".pch")
    with open(path, "wb") as f:
        f.write(b"a stand-in")
    meta = {"deps": [(str(header), ch.file_identity(str(header)))],
            "absent": [str(tmp_path / "cwd" / "parsing_helpers.h")], "pch": ch.file_identity(path)}
    with open(os.path.join(d, key + ".json"), "w") as f:
        json.dump(meta, f)
    return p, built, header, key, path, tmp_path


def test_a_fresh_pch_is_used(pch):
    p, built, _, key, path, tree = pch
    assert p.flags(SOURCE, CFLAGS, str(tree)) == (["-include-pch", path], key)
    assert built == []


@pytest.mark.parametrize("source", [
    '#define ONE 2\n#include "parsing_helpers.h"\nint x;\n',       # the learner's before it
    '#include <uapi/linux/if_ether.h>\n#include "parsing_helpers.h"\n',
    '#include "parsing_helpers.h" /* then */ int x;\n',
    '  #  include <uapi/linux/ip.h>\nint xdp_a(struct xdp_md *ctx) { return XDP_PASS; }\n',
])
def test_only_a_source_that_begins_with_the_header_or_includes_nothing(pch, source):
    p, built, _, _, _, tree = pch
    assert p.flags(source, CFLAGS, str(tree)) is None and built == []


def test_a_source_that_includes_nothing_gets_the_pch_of_bccs_headers_alone(pch):
    p, built, _, key, _, tree = pch
    source = "// tiny\nint xdp_a(struct xdp_md *ctx) { return XDP_PASS; }\n"
    assert p.flags(source, CFLAGS, str(tree)) is None         # none built yet
    assert p.flags(source, CFLAGS, str(tree)) is None         # asked again: its build starts
    assert built == [(p.key(CFLAGS, str(tree), None), CFLAGS)] and built[0][0] != key


def test_a_changed_header_is_never_used_and_starts_a_rebuild(pch):
    p, built, header, key, _, tree = pch
    header.write_text("#define ONE 2\n")                         # same size, other text
    assert p.flags(SOURCE, CFLAGS, str(tree)) is None and built == []   # asked once: no build yet
    assert p.flags(SOURCE, CFLAGS, str(tree)) is None
    assert built == [(key, CFLAGS)]


def test_a_header_that_would_be_found_first_now_stops_it(pch):
    p, built, _, key, _, tree = pch
    (tree / "cwd").mkdir()
    (tree / "cwd" / "parsing_helpers.h").write_text("#define ONE 3\n")
    assert p.flags(SOURCE, CFLAGS, str(tree)) is None and p.flags(SOURCE, CFLAGS, str(tree)) is None
    assert built == [(key, CFLAGS)]


def test_a_rebuilt_pch_file_not_matching_its_record_is_not_used(pch):
    p, _, _, _, path, tree = pch
    with open(path, "wb") as f:
        f.write(b"another stand-in, half written")
    assert p.flags(SOURCE, CFLAGS, str(tree)) is None


def test_other_cflags_or_tree_or_compiler_have_their_own_pch(pch, monkeypatch):
    p, built, _, key, _, tree = pch
    for _ in range(2):
        assert p.flags(SOURCE, CFLAGS + ["-DACTION=XDP_DROP"], str(tree)) is None
        assert p.flags(SOURCE, CFLAGS, str(tree / "include")) is None
    monkeypatch.setattr(p, "static", lambda: ["another libclang"])
    for _ in range(2):
        assert p.flags(SOURCE, CFLAGS, str(tree)) is None
    assert len({k for k, _ in built} | {key}) == 4


def test_cflags_used_once_build_nothing(pch):
    """A test's own -I directory, say: a PCH is built only for a key asked for again."""
    p, built, _, _, _, tree = pch
    assert p.flags(SOURCE, CFLAGS + ["-I/tmp/once"], str(tree)) is None and built == []


def test_only_the_most_recently_used_pchs_are_kept(tmp_path):
    for i in range(10):
        for ext in (".json", ".pch", ".h"):
            (tmp_path / f"k{i}{ext}").write_text("x")
        os.utime(tmp_path / f"k{i}.json", (1000 + i, 1000 + i))
    ch.prune(str(tmp_path), kept=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"k{i}{ext}" for i in range(2, 10) for ext in (".json", ".pch", ".h"))


def test_a_cache_directory_others_can_write_is_not_trusted(pch):
    p, _, _, _, path, tree = pch
    os.chmod(os.path.dirname(path), 0o777)
    assert p.flags(SOURCE, CFLAGS, str(tree)) is None


def test_without_clang_14_no_pch(pch):
    p, built, _, _, _, tree = pch
    p.clang = None
    assert p.flags(SOURCE, CFLAGS, str(tree)) is None and built == []


def test_header_paths_in_messages_as_a_plain_compile_names_them():
    tree = "/opt/headers/linux-6.1"
    said = (f"/virtual/main.c:46:9: warning: 'NSEC_PER_SEC' macro redefined\n"
            f"{tree}/include/vdso/time64.h:11:9: note: previous definition is here\n"
            f"In file included from {tree}/include/linux/types.h:5,\n"
            f"                 from {tree}/include/uapi/linux/ip.h:3:\n"
            f"/x/bpf/include/parsing_helpers.h:9:1: note: kept\n")
    assert ch._relative(said, tree) == (
        "/virtual/main.c:46:9: warning: 'NSEC_PER_SEC' macro redefined\n"
        "include/vdso/time64.h:11:9: note: previous definition is here\n"
        "In file included from include/linux/types.h:5,\n"
        "                 from include/uapi/linux/ip.h:3:\n"
        "/x/bpf/include/parsing_helpers.h:9:1: note: kept\n")
