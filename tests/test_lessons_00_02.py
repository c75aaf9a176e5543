"""What lessons 00-02 rely on beyond the runtime: xdplab.show (a bpf/ source with line numbers and
colours), xdplab.cpus.run_on_all_cpus (one program on every CPU at once), and the programs written
for the lessons (xdp_abort.c, lesson02_array.c, lesson02_sources.c), run in the kernel."""
import ipaddress
import os
import re
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

import xdplab
from xdplab.program import BPF_DIR
from xdplab.cpus import run_on_all_cpus
from xdplab.show import Source, show

BPF = Path(__file__).resolve().parent.parent / "bpf"


# -- xdplab.show --------------------------------------------------------------------------------
def test_show_numbers_every_line_of_the_file():
    text = (BPF / "xdp_count.c").read_text()
    shown = repr(show("xdp_count.c")).splitlines()
    assert shown[0] == "bpf/xdp_count.c"
    assert len(shown) - 1 == len(text.splitlines())
    for n, (line, original) in enumerate(zip(shown[1:], text.splitlines()), start=1):
        assert line[:3].strip() == str(n)
        assert line[5:] == original.expandtabs(8)


def test_show_html_escapes_the_code_and_marks_lines():
    html = show("bpf/xdp_count.c", mark=[45])._repr_html_()
    assert '<span class="o">&gt;</span>' in html and "ctx->data" not in html   # C's -> escaped
    assert html.count('class="ln"') == len((BPF / "xdp_count.c").read_text().splitlines())
    assert html.count('class="mark"') == 1
    assert '<span class="a">XDP_DROP</span>' in html                  # the verdicts stand out
    assert '<span class="k">return</span>' in html
    assert "--jp-mirror-editor-keyword-color" in html                   # JupyterLab's theme


def test_show_a_range_and_a_program(pair):
    part = show("xdp_drop.c", lines=(9, 12))
    assert [line.split()[0] for line in repr(part).splitlines()[1:]] == ["9", "10", "11", "12"]
    assert "lines 9–12" in part._repr_html_()
    prog = pair.load("int xdp_inline(struct xdp_md *ctx)\n{\n\treturn XDP_PASS;\n}\n")
    assert repr(show(prog)).splitlines()[1:] == [" 1  int xdp_inline(struct xdp_md *ctx)", " 2  {",
                                                 " 3          return XDP_PASS;", " 4  }"]
    assert repr(show(prog, mark=[3])).splitlines()[3].startswith(">3")


def test_show_says_what_to_give_instead():
    with pytest.raises(xdplab.LabError) as e:
        show("no_such_program.c")
    assert "xdp_pass.c" in e.value.hint                                 # it lists the files
    with pytest.raises(xdplab.LabError) as e:
        show("xdp_pass.c", lines=(5, 99))
    total = len((BPF_DIR / "xdp_pass.c").read_text().splitlines())
    assert f"it has {total} lines" in e.value.message
    with pytest.raises(xdplab.LabError):
        show(42)
    with pytest.raises(xdplab.LabError):
        Source("int x;\n", "x.c", lines=(0, 1))


# -- xdplab.cpus ----------------------------------------------------------------------------------
def test_run_on_all_cpus_counts_every_run_in_atomic_and_per_cpu_maps(pair):
    packet = Ether() / IP(dst="10.11.0.2") / UDP(dport=9) / Raw(b"x" * 18)
    cpus = sorted(os.sched_getaffinity(0))
    for name in ("lesson02_array.c", "xdp_count.c"):
        prog = pair.load(name)
        runs = run_on_all_cpus(prog, packet, repeat=20_000)
        assert runs.per_cpu == {cpu: 20_000 for cpu in cpus}
        assert set(runs.ns_per_run) == set(cpus)
        assert prog.maps["counters"].snapshot()["XDP_PASS"] == (runs.total, 60 * runs.total), name
    assert "runs at the same time" in repr(runs)


def test_run_on_all_cpus_explains_bad_arguments(pair):
    prog = pair.load("xdp_pass.c")
    with pytest.raises(xdplab.LabError) as e:
        run_on_all_cpus(prog, Ether() / IP(), cpus=[max(os.sched_getaffinity(0)) + 4096])
    assert "may use CPUs" in e.value.hint
    with pytest.raises(xdplab.LabError):
        run_on_all_cpus(prog, Ether() / IP(), repeat=0)
    with pytest.raises(xdplab.LabError):
        run_on_all_cpus(prog, b"\x00" * 4)                               # shorter than Ethernet


# -- the lessons' programs ------------------------------------------------------------------------
def test_xdp_abort_aborts(pair):
    assert pair.load("xdp_abort.c").test_run(Ether() / IP() / UDP()).verdict == "XDP_ABORTED"


def test_lesson02_array_counts_under_the_action_it_returns(pair):
    frame = Ether() / IP() / UDP() / Raw(b"x" * 100)
    prog = pair.load("lesson02_array.c", cflags=["-DACTION=XDP_DROP"])
    assert prog.test_run(frame).verdict == "XDP_DROP"
    counts = prog.maps["counters"].snapshot()
    assert counts["XDP_DROP"] == (1, len(frame))
    assert sum(rec.packets for rec in counts.values()) == 1


def test_lesson02_sources_counts_ipv4_sources_only(pair):
    prog = pair.load("lesson02_sources.c")
    frames = [Ether() / IP(src="10.11.0.1") / UDP()] * 2 + \
        [Ether() / IP(src="192.0.2.7") / UDP() / Raw(b"x" * 50)] + \
        [Ether() / ARP(), Ether() / IPv6() / UDP(), Ether(type=0x0800) / b"\x45"]   # not counted
    for frame in frames:
        assert prog.test_run(frame).verdict == "XDP_PASS"
    counted = prog.maps["by_source"].snapshot()
    assert counted == {ipaddress.ip_address("10.11.0.1"): (2, 2 * len(frames[0])),
                       ipaddress.ip_address("192.0.2.7"): (1, len(frames[2]))}


# -- lesson 02 under "Run All", and its proofs re-run after more traffic ----------------------------
LESSON02 = Path(__file__).resolve().parent.parent / "notebooks" / "02-maps.ipynb"

MORE_TRAFFIC = """
from xdplab.panels import TrafficPanel
panel = TrafficPanel(lab, program=sources)            # what a learner's panel sends: a → server
assert panel.source.value == "a" and panel.destination.value == "server"
panel.send()
more = b.stream(packet, seconds=1, rate=500)          # "start another stream to see it move"
c.send(packet, count=20)
more.wait()
now = {ip: rec.packets for ip, rec in by_source.snapshot().items()}
assert now != {ip: rec.packets for ip, rec in inside.items()}, "the extra traffic changed nothing"
"""


def test_lesson02_proofs_pass_again_after_a_panel_and_a_stream():
    """Lesson 02 run top to bottom (no cell closes its lab), then a TrafficPanel's send and another
    stream, then every cell of "Prove it" run again: each still passes, because each compares what
    was kept from its own traffic, not what the map holds now."""
    from notebook_session import NotebookSession, text

    with NotebookSession(LESSON02, timeout=120) as nb:
        proofs = nb.section("## Prove it", "## Try this")
        assert len(proofs) == 5 and all("assert" in nb.cells[i].source for i in proofs)
        shown = text(nb.cells[proofs[3]])
        assert re.search(r"b sent \d+\.\d( k)? packets/s while rates\(\) measured", shown), shown
        dump = "".join(text(c) for c in nb.cells if "bpftool\", \"map\", \"dump\"" in c.source
                       and "-j" not in c.source)
        assert len(dump.splitlines()) == 17 and "more lines: print(dump) shows all" in dump, dump
        nb.run(MORE_TRAFFIC)
        for i in proofs:
            nb.again(i)                             # passes again
