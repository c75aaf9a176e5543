"""libbpf programs in the lab (issue 15, item 1): C built by clang and loaded by libbpf, or an
object built elsewhere, attached to real lab interfaces, counting real packets, typed from BTF,
explained when clang or the verifier refuse it, and leaving no fd and no kernel object behind."""
import ipaddress
import os
import platform
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether

import xdplab
from xdplab import CompileError, LabError, SetupError, VerifierError
from xdplab.kernel.libbpf import libbpf
from xdplab.lab import reaper
from xdplab.program import objects

REPO = Path(__file__).resolve().parents[1]
COUNTER = REPO / "bpf" / "xdp_count.bpf.c"
HEAD = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
LICENSE = '\nchar LICENSE[] SEC("license") = "GPL";\n'


def open_fds():
    """This process's open fds, without the one listdir itself opened."""
    return len(os.listdir("/proc/self/fd"))


def prog_exists(prog_id):
    fd = libbpf().bpf_prog_get_fd_by_id(prog_id)
    if fd >= 0:
        os.close(fd)
        return True
    return False


def build_elsewhere(src, out):
    """clang as a learner runs it outside xdplab (the commands of the xdp-tutorial)."""
    arch = f"/usr/include/{platform.machine()}-linux-gnu"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", f"-I{arch}", "-c", str(src),
                    "-o", str(out)], check=True, capture_output=True)
    return out


def test_libbpf_counter_counts_every_ping_typed_from_btf(pair):
    prog = pair.load("xdp_count.bpf.c")
    assert prog.dialect == "libbpf" and prog.functions == ["xdp_count"] and not prog.cached
    counters, sources = prog.maps["counters"], prog.maps["sources"]
    # typed from the object's BTF exactly as bcc's description of the same C is
    assert counters.kind == "percpu_array" and counters.kinds == {
        "key": "action", "value": {"packets": "int", "bytes": "int"}}
    assert sources.kind == "hash" and sources.kinds == {"key": "ipv4", "value": "int"}
    assert not counters.notes and not sources.notes
    att = prog.attach(pair.server)
    assert att.mode == "native" and pair.server.iface().xdp() == ("native", att.prog_id)
    assert pair.client.ping(pair.server, count=5, interval=0.05).received == 5
    snap = counters.snapshot()
    # 5 echo requests, 98 bytes each on the wire (14 + 20 + 8 + 56): nothing else was sent
    assert snap["XDP_PASS"] == (5, 5 * 98), snap
    assert sum(v.packets for v in snap.values()) == 5
    assert counters["XDP_PASS"].packets == 5
    assert sum(p.packets for p in counters.snapshot(per_cpu=True)["XDP_PASS"]) == 5
    assert sources.snapshot() == {ipaddress.IPv4Address(pair.client.ip): 5}
    counters["XDP_PASS"] = {"packets": 0, "bytes": 0}     # writes go through the same types
    assert counters["XDP_PASS"] == (0, 0)
    prog.detach()
    assert pair.server.iface().xdp().mode is None


def test_generic_mode_and_the_guard_hold_for_libbpf_programs(pair):
    prog = pair.load(COUNTER)                        # a Path works too
    att = prog.attach(pair.server, mode="generic")
    assert pair.server.iface().xdp() == ("generic", att.prog_id)
    assert pair.client.ping(pair.server, count=3, interval=0.05).received == 3
    assert prog.maps["counters"]["XDP_PASS"].packets == 3
    with pytest.raises(LabError, match="not an interface of this lab"):
        prog.attach("lo")


def test_a_prebuilt_object_loads_the_same(pair, tmp_path):
    obj = build_elsewhere(COUNTER, tmp_path / "count.o")
    prog = pair.load(str(obj))
    assert prog.dialect == "object" and prog.functions == ["xdp_count"] and prog.source == ""
    prog.attach(pair.server)
    assert pair.client.ping(pair.server, count=4, interval=0.05).received == 4
    assert prog.maps["counters"].snapshot()["XDP_PASS"] == (4, 4 * 98)
    assert prog.maps["sources"].snapshot() == {ipaddress.IPv4Address(pair.client.ip): 4}


def test_test_run_verdicts_and_counts(lab):
    passing = lab.load("xdp_count.bpf.c")
    dropping = lab.load("xdp_count.bpf.c", cflags=["-DACTION=XDP_DROP"])
    udp = Ether() / IP(src="10.11.0.9", dst="10.11.0.2") / UDP(dport=53)
    r = passing.test_run(udp)
    assert r.verdict == "XDP_PASS" and r.diff == []
    assert dropping.test_run(udp, repeat=9).verdict == "XDP_DROP"
    assert dropping.maps["counters"]["XDP_DROP"].packets == 10     # once + 9 repeats
    assert dropping.maps["counters"]["XDP_PASS"].packets == 0
    assert passing.test_run(Ether() / ARP()).verdict == "XDP_PASS"
    assert passing.maps["sources"].snapshot() == {ipaddress.IPv4Address("10.11.0.9"): 1}


def test_dialect_is_detected_or_said():
    libbpf_text = HEAD + 'SEC("xdp") int f(struct xdp_md *c) { return XDP_PASS; }'
    assert objects.dialect_of(libbpf_text, None) == "libbpf"
    assert objects.dialect_of("int f(struct xdp_md *c) { return XDP_PASS; }", None) == "bcc"
    # SEC( in a comment, or no bpf_helpers.h: bcc's
    assert objects.dialect_of("// SEC(\"xdp\")\n#include <bpf/bpf_helpers.h>\nint f;", None) == "bcc"
    assert objects.dialect_of("x", "/a/prog.bpf.c") == "libbpf"
    assert objects.dialect_of("", "/a/prog.o") == "object"
    assert objects.dialect_of("int f;", None, "libbpf") == "libbpf"
    with pytest.raises(LabError, match="unknown dialect"):
        objects.dialect_of("int f;", None, "cilium")


def test_c_text_with_explicit_dialect(lab):
    text = ("#include <linux/bpf.h>\n#define SEC(name) __attribute__((section(name), used))\n"
            'SEC("xdp") int only_pass(struct xdp_md *ctx) { return XDP_PASS; }' + LICENSE)
    prog = lab.load(text, dialect="libbpf", name="mine")
    assert prog.functions == ["only_pass"] and prog.name == "mine"
    assert prog.test_run(Ether() / IP() / ICMP()).verdict == "XDP_PASS"


BAD_LINE = HEAD + textwrap.dedent("""\
    SEC("xdp")
    int broken(struct xdp_md *ctx)
    {
    \t__u32 n = ctx->rx_queue_index
    \treturn XDP_PASS;
    }
    """) + LICENSE


def test_compile_error_is_explained_at_the_learners_line(lab, tmp_path):
    with pytest.raises(CompileError) as e:
        lab.load(BAD_LINE)
    assert e.value.line == 6 and "';'" in e.value.message and e.value.hint
    assert "ctx->rx_queue_index" in BAD_LINE.splitlines()[e.value.line - 1]
    # the same from a file: the learner's own file is the one clang compiled
    src = tmp_path / "mine.bpf.c"
    src.write_text("\n\n" + BAD_LINE)
    with pytest.raises(CompileError) as e:
        lab.load(str(src))
    assert e.value.line == 8


def test_bcc_habits_in_libbpf_c_are_explained_the_libbpf_way(lab):
    text = HEAD + 'SEC("xdp") int f(struct xdp_md *ctx)\n{\n\tu32 n = 0;\n\treturn XDP_PASS;\n}' + LICENSE
    with pytest.raises(CompileError) as e:
        lab.load(text)
    assert e.value.line == 5 and "__u32" in e.value.hint and "bcc" in e.value.explanation


UNCHECKED = HEAD + textwrap.dedent("""\
    #include <linux/if_ether.h>

    SEC("xdp")
    int unchecked(struct xdp_md *ctx)
    {
    \tvoid *data = (void *)(long)ctx->data;
    \tstruct ethhdr *eth = data;

    \tif (eth->h_proto == 0)
    \t\treturn XDP_DROP;
    \treturn XDP_PASS;
    }
    """) + LICENSE


def test_verifier_error_is_explained_at_the_learners_line(lab):
    with pytest.raises(VerifierError) as e:
        lab.load(UNCHECKED)
    err = e.value
    assert err.function == "unchecked" and err.line == 11, err.text()
    assert "eth->h_proto" in UNCHECKED.splitlines()[err.line - 1]
    assert "data_end" in (err.hint or "") + err.explanation
    assert "@ line 11" in (err.details or "")


def test_verifier_error_of_a_prebuilt_object_with_its_source_beside_it(lab, tmp_path):
    src = tmp_path / "unchecked.bpf.c"
    src.write_text(UNCHECKED)
    obj = build_elsewhere(src, tmp_path / "unchecked.bpf.o")
    with pytest.raises(VerifierError) as e:
        lab.load(str(obj))
    assert e.value.line == 11 and e.value.source == UNCHECKED


def test_an_object_without_an_xdp_program(lab):
    text = HEAD + 'SEC("tc") int classify(struct __sk_buff *skb) { return 0; }' + LICENSE
    with pytest.raises(LabError) as e:
        lab.load(text)
    assert "no XDP program" in e.value.message and "classify" in e.value.message
    assert 'SEC("xdp")' in e.value.hint
    text = HEAD + "int plain(struct xdp_md *ctx) { return XDP_PASS; }" + LICENSE
    with pytest.raises(LabError, match="no XDP program"):
        lab.load(text, dialect="libbpf")


def test_a_section_libbpf_does_not_know(lab):
    text = HEAD + 'SEC("xdpp") int typo(struct xdp_md *ctx) { return XDP_PASS; }' + LICENSE
    with pytest.raises(LabError) as e:
        lab.load(text)
    assert 'SEC("xdpp")' in e.value.message and 'SEC("xdp")' in e.value.hint


def test_a_file_that_is_no_bpf_object(lab, tmp_path):
    bad = tmp_path / "notes.o"
    bad.write_text("not an ELF file\n")
    with pytest.raises(LabError, match="not a BPF object file") as e:
        lab.load(str(bad))
    assert "clang -O2 -g -target bpf" in e.value.hint
    with pytest.raises(LabError, match="no BPF object file"):
        lab.load(str(tmp_path / "missing.o"))


def test_clang_missing_is_a_setup_error(lab, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SetupError) as e:
        lab.load("xdp_count.bpf.c")
    assert "clang is not installed" in e.value.message and "sudo make install" in e.value.hint


def test_a_map_btf_cannot_type_is_shown_raw_with_a_note(lab):
    text = HEAD + textwrap.dedent("""\
        struct {
        \t__uint(type, BPF_MAP_TYPE_HASH);
        \t__uint(key_size, 6);
        \t__uint(value_size, 8);
        \t__uint(max_entries, 16);
        } untyped SEC(".maps");

        SEC("xdp")
        int f(struct xdp_md *ctx)
        {
        \tunsigned char key[6] = {1, 2, 3, 4, 5, 6};
        \t__u64 one = 1;
        \tbpf_map_update_elem(&untyped, key, &one, BPF_ANY);
        \treturn XDP_PASS;
        }
        """) + LICENSE
    prog = lab.load(text)
    m = prog.maps["untyped"]
    assert m.notes and "raw bytes" in m.notes[0] and "key_size" in m.notes[0]
    assert m.kinds == {"key": "bytes", "value": "bytes"}
    prog.test_run(Ether() / IP() / UDP())
    assert m.snapshot() == {bytes([1, 2, 3, 4, 5, 6]): (1).to_bytes(8, sys.byteorder)}
    assert "note:" in repr(m)
    assert m.declare(key="mac").snapshot() == {"01:02:03:04:05:06": (1).to_bytes(8, sys.byteorder)}


def test_no_fd_is_left_after_close():
    with xdplab.Lab() as lab:
        lab.load("xdp_count.bpf.c").close()      # warm: libraries, the helper, the header tree
        before = open_fds()
        prog = lab.load("xdp_count.bpf.c")
        assert open_fds() == before + 3              # one program, two maps: the dups we own
        prog.close()
        assert open_fds() == before
        with pytest.raises(xdplab.ClosedError):
            prog.maps["counters"].snapshot()
        left = lab.load("xdp_count.bpf.c")           # left open: the lab closes it
        assert open_fds() == before + 3
        for bad in (BAD_LINE, UNCHECKED):             # failed loads leak nothing either
            with pytest.raises(LabError):
                lab.load(bad)
        assert open_fds() == before + 3
    assert open_fds() <= before
    assert left.bpf is None


CHILD = textwrap.dedent("""
    import sys, time, xdplab
    lab = xdplab.Lab.pair()
    prog = lab.load("xdp_count.bpf.c")
    att = prog.attach(lab.server)
    print(lab.id, att.prog_id, prog.maps["counters"].id, flush=True)
    time.sleep(300)
""")


def test_a_killed_process_leaves_no_namespace_and_no_program():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    lab_id, prog_id, map_id = child.stdout.readline().split()
    assert prog_exists(int(prog_id))
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    state = reaper.STATE_DIR / f"{lab_id}.json"

    def left():
        ns = [n for n in os.listdir("/run/netns") if n.startswith(f"xl-{lab_id}-")]
        return ns + ([state.name] if state.exists() else []) + \
            ([f"prog {prog_id}"] if prog_exists(int(prog_id)) else [])
    deadline = time.time() + 15
    while time.time() < deadline and left():
        time.sleep(0.1)
    assert not left(), f"15 s after the owner was killed: {left()}"


def test_the_doctor_says_what_libbpf_programs_lack_as_a_warning(monkeypatch):
    from xdplab.machine import doctor
    run = doctor._Run()
    try:
        doctor._one(run, "privileges", doctor.check_privileges)
        assert doctor._one(run, "network namespaces", doctor.check_lab).status == "ok"
        ok = doctor._one(run, "libbpf programs", doctor.check_libbpf)
        assert ok.status == "ok" and "loaded by libbpf" in ok.summary, ok
        monkeypatch.setenv("PATH", "/nonexistent")
        monkeypatch.setattr(objects, "LIBBPF_HEADERS", Path("/nonexistent"))
        warn = doctor._one(run, "libbpf programs", doctor.check_libbpf)
    finally:
        run.close()
    assert warn.status == "warn" and "clang" in warn.summary and "libbpf-dev" in warn.summary
    assert "Lessons 00-10" in warn.summary and "sudo make install" in warn.fix
    assert "libbpf programs" in [name for name, _ in doctor.CHECKS]


def test_globals_are_typed_maps_and_other_programs_are_kept_but_not_attached(lab):
    text = HEAD + textwrap.dedent("""\
        __u64 hits = 0;
        __u32 last_len = 0;

        SEC("xdp")
        int count_hits(struct xdp_md *ctx)
        {
        \thits++;
        \tlast_len = ctx->data_end - ctx->data;
        \treturn XDP_PASS;
        }

        SEC("tc")
        int classify(struct __sk_buff *skb) { return 0; }
        """) + LICENSE
    prog = lab.load(text)
    assert prog.functions == ["count_hits"] and list(prog.bpf.others) == ["classify"]
    with pytest.raises(LabError, match="no XDP function 'classify'"):
        prog.test_run(Ether() / IP() / UDP(), fn="classify")
    bss = next(prog.maps[n] for n in prog.maps if n.endswith(".bss"))
    frame = Ether() / IP() / UDP() / (b"x" * 18)          # 14 + 20 + 8 + 18 = 60 bytes
    prog.test_run(frame)
    prog.test_run(frame)
    assert not bss.notes and bss.snapshot() == {0: (2, 60)}
    assert bss.snapshot()[0]._fields == ("hits", "last_len")


def test_live_widgets_and_rates_of_a_libbpf_map(pair):
    from xdplab import widgets
    prog = pair.load("xdp_count.bpf.c")
    prog.attach(pair.server)
    counters = prog.maps["counters"]
    assert counters.rates(interval=0.05)["XDP_PASS"] == (0.0, 0.0)
    view = counters.widget(interval=0.2)
    try:
        assert isinstance(view, widgets.MapView) and view.refresher.running
        frame = Ether() / IP(dst=pair.server.ip) / UDP(dport=9) / (b"x" * 18)    # 60 bytes
        pair.client.send(frame, count=7)
        assert view.refresher.wait(2)
        row = next(r for r in view.rows if r.key == "XDP_PASS")
        assert row.value == (7, 7 * 60) and view.total == 5
        assert '<td class="k">XDP_PASS</td>' in view.html and "packets/s" in view.html
        rates = counters.rates()
        assert rates["XDP_PASS"].packets > 0 and rates["XDP_DROP"].packets == 0
    finally:
        view.close()
    chart = prog.maps["sources"].widget(chart=True, interval=0.2)
    chart.close()


TYPES = textwrap.dedent("""\
    struct key {
    \t__u32 saddr;
    \t__u16 dport;
    \t__u8 proto;
    };

    struct value {
    \t__u64 packets;
    \tchar name[6];
    \tstruct in6_addr addr;
    \tunsigned int bits:3;
    \tunsigned int more:29;
    \t__s8 small;
    \tunion {
    \t\t__u32 word;
    \t\t__u8 bytes[4];
    \t};
    \tenum xdp_action verdict;
    \t__u16 counts[3];
    };
    """)


def test_btf_types_a_map_as_clang_lays_it_out_and_as_bcc_names_it(lab):
    """Structs with padding, an array, a nested struct in6_addr after a 6-byte field, bitfields,
    a signed byte, an anonymous union and an enum: the program writes a value, and the map reads
    every field of it back as clang laid it out; the kinds are those bcc gives the same C."""
    bcc = lab.load("#include <uapi/linux/in6.h>\n" + TYPES +
                   "BPF_HASH(m, struct key, struct value, 16);\n"
                   "int f(struct xdp_md *ctx) { return XDP_PASS; }\n")
    ours = lab.load(HEAD + "#include <linux/in6.h>\n" + TYPES + textwrap.dedent("""\
        struct {
        \t__uint(type, BPF_MAP_TYPE_HASH);
        \t__type(key, struct key);
        \t__type(value, struct value);
        \t__uint(max_entries, 16);
        } m SEC(".maps");

        SEC("xdp") int f(struct xdp_md *ctx)
        {
        \tstruct key k = {.saddr = 0x01000b0a, .dport = 0x3500, .proto = 17};
        \tstruct value v = {.packets = 7, .name = "eth0", .bits = 5, .more = 17, .small = -3,
        \t\t.word = 0x01020304, .verdict = XDP_TX, .counts = {1, 2, 3}};

        \tv.addr.in6_u.u6_addr8[0] = 0xfd;
        \tv.addr.in6_u.u6_addr8[15] = 2;
        \tbpf_map_update_elem(&m, &k, &v, BPF_ANY);
        \treturn XDP_PASS;
        }
        """) + LICENSE)
    m = ours.maps["m"]
    assert m.kinds == bcc.maps["m"].kinds and not m.notes
    assert m.kinds["value"]["verdict"] == "action" and m.kinds["value"]["addr"] == "ipv6"
    ours.test_run(Ether() / IP() / UDP())
    key = (ipaddress.IPv4Address("10.11.0.1"), 53, "UDP")
    got = m.snapshot()
    assert list(got) == [key]
    assert got[key]._asdict() == {
        "packets": 7, "name": "eth0", "addr": ipaddress.IPv6Address("fd00::2"), "bits": 5,
        "more": 17, "small": -3, "word": 0x01020304, "bytes": (4, 3, 2, 1) if sys.byteorder ==
        "little" else (1, 2, 3, 4), "verdict": "XDP_TX", "counts": (1, 2, 3)}
    m[key] = got[key]                                # written back through the same types
    assert m.snapshot() == got


def test_a_map_pinned_by_name_lives_under_the_lab_and_goes_with_it(tmp_path):
    from xdplab.kernel.constants import PIN_ROOT
    text = HEAD + textwrap.dedent("""\
        struct {
        \t__uint(type, BPF_MAP_TYPE_ARRAY);
        \t__type(key, __u32);
        \t__type(value, __u64);
        \t__uint(max_entries, 1);
        \t__uint(pinning, LIBBPF_PIN_BY_NAME);
        } xdplab_test_pinned SEC(".maps");
        SEC("xdp") int f(struct xdp_md *ctx) { return XDP_PASS; }
        """) + LICENSE
    assert not Path("/sys/fs/bpf/xdplab_test_pinned").exists()
    with xdplab.Lab() as lab:
        prog = lab.load(text)
        pin = PIN_ROOT / lab.id / "xdplab_test_pinned"
        assert pin.exists() and not Path("/sys/fs/bpf/xdplab_test_pinned").exists()
        prog.maps["xdplab_test_pinned"][0] = 42
        again = lab.load(text)                       # libbpf reuses the pinned map
        assert again.maps["xdplab_test_pinned"][0] == 42
        obj = build_elsewhere(COUNTER, tmp_path / "c.o")
        with pytest.raises(LabError, match="cflags are for C"):
            lab.load(str(obj), cflags=["-DACTION=XDP_DROP"])
    assert not pin.exists() and not (PIN_ROOT / lab.id).exists()


CORE = r"""#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

/* a "flavor" of struct xdp_md with a field no kernel has: libbpf matches it against the
 * running kernel's struct xdp_md (the name before ___ counts) when it loads the program */
struct xdp_md___future {
    __u32 no_such_field;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} facts SEC(".maps");

static __always_inline void set(__u32 key, __u64 value)
{
    __u64 *v = bpf_map_lookup_elem(&facts, &key);
    if (v)
        *v = value;
}

SEC("xdp")
int xdp_core(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;                 /* the kernel's own types, from vmlinux.h */
    struct xdp_md___future *future = (void *)ctx;

    set(0, bpf_core_field_exists(ctx->egress_ifindex));     /* since Linux 5.8: 1 */
    set(1, bpf_core_field_exists(future->no_such_field));   /* in no kernel: 0 */
    if ((void *)(eth + 1) > data_end)
        return XDP_PASS;
    if (eth->h_proto == bpf_htons(0x0800))
        set(2, bpf_core_type_size(struct iphdr));
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""


def test_core_with_vmlinux_h_made_from_the_kernels_btf(lab, tmp_path, monkeypatch):
    """A CO-RE program: the kernel's types from a vmlinux.h that bpftool makes from
    /sys/kernel/btf/vmlinux (once, then kept), and field-exists relocations that libbpf resolves
    against the running kernel when it loads: 1 for a field the kernel has, 0 for one it lacks."""
    monkeypatch.setenv("XDPLAB_CACHE", str(tmp_path / "cache"))
    prog = lab.load(CORE)
    header = next((tmp_path / "cache" / "vmlinux").glob("*/vmlinux.h"))
    assert "struct xdp_md {" in header.read_text()
    made = header.stat().st_mtime_ns
    r = prog.test_run(Ether() / IP() / UDP(), fn="xdp_core")
    assert r.verdict == "XDP_PASS"
    facts = prog.maps["facts"].snapshot()
    assert (facts[0], facts[1], facts[2]) == (1, 0, 20), facts
    prog.close()
    lab.load(CORE.replace("xdp_core", "xdp_core2")).close()
    assert header.stat().st_mtime_ns == made                       # made once, then kept
    assert len(list((tmp_path / "cache" / "vmlinux").glob("*/vmlinux.h"))) == 1


def test_core_without_kernel_btf_or_bpftool_says_what_to_do(lab, tmp_path, monkeypatch):
    monkeypatch.setenv("XDPLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(objects, "VMLINUX_BTF", tmp_path / "no-btf")
    with pytest.raises(LabError, match="no BTF of its own") as info:
        lab.load(CORE)
    assert "UAPI headers" in info.value.hint
    monkeypatch.undo()
    monkeypatch.setenv("XDPLAB_CACHE", str(tmp_path / "cache"))
    which, access = objects.shutil.which, os.access
    monkeypatch.setattr(objects.shutil, "which", lambda name, *a, **k:
                        None if name == "bpftool" else which(name, *a, **k))
    monkeypatch.setattr(os, "access", lambda path, mode, **k:
                        False if str(path).endswith("bpftool") else access(path, mode, **k))
    with pytest.raises(SetupError, match="bpftool is not installed"):
        lab.load(CORE)
    os.chmod(tmp_path / "cache", 0o777)                            # others could write vmlinux.h
    monkeypatch.undo()
    monkeypatch.setenv("XDPLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(LabError, match="others can write"):
        lab.load(CORE)


EVENTS = HEAD + r"""#include <linux/if_ether.h>
#include <linux/ip.h>

struct event {
    __u64 ts;
    __be32 saddr;
    __u16 len;
    __u8 verdict;
};

struct unused_by_the_program { __u32 x; };

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 16);
} rb SEC(".maps");

SEC("xdp")
int xdp_report(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = (void *)(eth + 1);
    struct event e = {};

    if ((void *)(ip + 1) > data_end)
        return XDP_PASS;
    e.ts = bpf_ktime_get_ns();
    e.saddr = ip->saddr;
    e.len = data_end - data;
    e.verdict = ip->protocol == 17 ? XDP_DROP : XDP_PASS;
    bpf_ringbuf_output(&rb, &e, sizeof(e), 0);
    return e.verdict;
}
""" + LICENSE


def test_events_of_a_libbpf_ring_buffer_are_typed_from_the_named_struct(lab):
    """libbpf gives a ring buffer no type: prog.events(map, struct=NAME) lays the events out from
    the program's BTF, typed like map fields (an address, a verdict); without struct= or with a
    struct the program does not have, the message names the program's structs."""
    # a struct used only inside the function is not in the program's BTF: the message says how
    hidden = lab.load(EVENTS)
    with pytest.raises(LabError, match="BTF has no struct 'event'") as info:
        hidden.events("rb", struct="event")
    assert "const struct event *unused_event __attribute__((unused));" in info.value.hint
    hidden.close()
    prog = lab.load(EVENTS.replace("struct unused_by_the_program { __u32 x; };",
                                   "const struct event *unused_event __attribute__((unused));"))
    with pytest.raises(LabError, match="do not say what they carry") as info:
        prog.events("rb")
    assert "struct='event'" in info.value.hint, info.value.hint
    with pytest.raises(LabError, match="no struct 'evnet'") as info:
        prog.events("rb", struct="evnet")
    assert "the program's structs: event" in info.value.hint, info.value.hint
    log = prog.events("rb", struct="event")
    try:
        assert log.columns == ["ts", "saddr", "len", "verdict"]
        prog.test_run(Ether() / IP(src="10.11.0.7", dst="10.11.0.2") / UDP(dport=9) / (b"x" * 10))
        prog.test_run(Ether() / IP(src="10.11.0.8", dst="10.11.0.2") / ICMP())
        deadline = time.monotonic() + 5
        while log.count < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        got = [(e["saddr"], e["len"], e["verdict"]) for e in log.events]
        assert got == [(ipaddress.IPv4Address("10.11.0.7"), 52, "XDP_DROP"),
                       (ipaddress.IPv4Address("10.11.0.8"), 42, "XDP_PASS")], got
    finally:
        log.close()
        prog.close()


TOP_TALKERS = HEAD + r"""#include "parsing_helpers.h"

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, __be32);
    __type(value, __u64);
    __uint(max_entries, 1024);
} talkers SEC(".maps");

SEC("xdp")
int lab02_talkers(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
    struct hdr_cursor nh = { .pos = data };
    struct ethhdr *eth;
    struct iphdr *iph;
    __u64 one = 1, *packets;

    if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    if (parse_iphdr(&nh, data_end, &iph) < 0)
        return XDP_PASS;
    packets = bpf_map_lookup_elem(&talkers, &iph->saddr);
    if (packets)
        __sync_fetch_and_add(packets, 1);
    else
        bpf_map_update_elem(&talkers, &iph->saddr, &one, BPF_NOEXIST);
    return XDP_PASS;
}
""" + LICENSE


def test_a_lab_check_takes_a_libbpf_solution_and_rejects_a_wrong_one():
    """Lab checks judge what a program does, not its dialect: lab 02a's solution written for
    libbpf (parsing_helpers.h included the same way) passes every case; the same with a plain
    `+=` loses counts on two CPUs and fails that case, and only that one."""
    from xdplab.labs import checks
    lab_dir = REPO / "labs" / "02a-top-talkers"
    good = checks.run(lab_dir, TOP_TALKERS, seed=7)
    assert good.error is None and good.passed, good.summary()
    racy = checks.run(lab_dir, TOP_TALKERS.replace("__sync_fetch_and_add(packets, 1);",
                                                   "*packets += 1;"), seed=7)
    assert racy.error is None and not racy.passed
    assert [r.title for r in racy.failed] == [
        "packets from one source, counted on every CPU at the same time, are all counted"]


def test_glibcs_32_bit_stubs_missing_is_a_setup_error(lab, tmp_path, monkeypatch):
    """<linux/icmp.h> reaches glibc's <sys/socket.h>, which under -target bpf wants
    gnu/stubs-32.h (libc6-dev-i386): without it, the install step is named, not clang's error.
    clang here is a stand-in printing what the real one printed on this machine before
    libc6-dev-i386 was installed."""
    said = ("In file included from /tmp/x/x.bpf.c:3:\n"
            "In file included from /usr/include/linux/icmp.h:23:\n"
            "In file included from /usr/include/linux/if.h:28:\n"
            "In file included from /usr/include/x86_64-linux-gnu/sys/socket.h:22:\n"
            "In file included from /usr/include/features.h:510:\n"
            "/usr/include/x86_64-linux-gnu/gnu/stubs.h:7:11: fatal error: 'gnu/stubs-32.h' file "
            "not found\n# include <gnu/stubs-32.h>\n          ^~~~~~~~~~~~~~~~\n1 error generated.\n")
    (tmp_path / "said").write_text(said)
    wrapper = tmp_path / "clang"
    wrapper.write_text(f"#!/bin/sh\ncat {tmp_path / 'said'} >&2\nexit 1\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(objects, "clang", lambda: str(wrapper))
    with pytest.raises(SetupError, match="32-bit stubs") as e:
        lab.load(HEAD + "#include <linux/icmp.h>\n" + 'SEC("xdp") int x(struct xdp_md *c) '
                 "{ return XDP_PASS; }" + LICENSE)
    assert "libc6-dev-i386" in e.value.hint
