"""The kernel's XDP tracepoints without a kernel: tracefs' description of two events, recorded on
Linux 6.18 (tests/unit/recorded/xdp_exception.format, xdp_bulk_tx.format), parsed into the fields
the counting program reads; the keys that program counts under (struct event_key of
tracepoints.HEAD, written out here as bytes) named as counts() names them; and trace_pipe lines,
in the shape the recorded formats' "print fmt" gives them, parsed by events.parse_trace_line.
No tracefs, no bpf(2), no bcc: the expected values are read off the recorded files by hand."""
import ctypes
import re
import struct

import pytest

from xdplab.program import events, tracepoints as tp

COMMON = {"common_type", "common_flags", "common_preempt_count", "common_pid"}
# where struct net_device keeps ifindex and nd_net, and struct net ns.inum (made up: only whether
# they are known matters to the choice of probe)
OFFSETS = {"OFF_IFINDEX": 224, "OFF_ND_NET": 280, "OFF_NS_INUM": 144}


@pytest.fixture
def fields(recorded):
    """{event: its field names} as format_fields() reads the recorded format files."""
    return {e: tp.format_fields(recorded(f"{e}.format")) for e in ("xdp_exception", "xdp_bulk_tx")}


# -- format files -> fields -> the counting program -----------------------------------------------
def test_the_recorded_formats_give_each_event_s_fields(fields):
    assert fields["xdp_exception"] == COMMON | {"prog_id", "act", "ifindex"}
    assert fields["xdp_bulk_tx"] == COMMON | {"ifindex", "act", "drops", "sent", "err"}


def test_lines_that_declare_no_field_are_skipped_and_arrays_lose_their_size():
    text = ("name: made_up\nID: 1\nformat:\n"
            "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
            "\n"
            "\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;\n"
            "\tfield:__data_loc char[] name;\toffset:24;\tsize:4;\tsigned:0;\n"
            "\tfield:int cut short\n"                        # no ";": not a declaration
            "\tfield:;\toffset:28;\tsize:4;\tsigned:1;\n"    # a name missing: skipped, no IndexError
            "\tnot a field:int x;\n"
            'print fmt: "field:int y; %d", REC->comm\n')
    assert tp.format_fields(text) == {"common_type", "comm", "name"}
    assert tp.format_fields("") == set()


def test_the_raw_probe_is_chosen_only_for_the_fields_of_its_prototype(fields):
    bulk = fields["xdp_bulk_tx"]
    assert tp.raw_probe("bulk_tx", bulk, OFFSETS)
    assert not tp.raw_probe("bulk_tx", bulk, None), "no BTF offsets: by index alone"
    assert not tp.raw_probe("bulk_tx", bulk - {"err"}, OFFSETS), "an older event: other arguments"
    assert not tp.raw_probe("bulk_tx", bulk | {"queue"}, OFFSETS)
    assert not tp.raw_probe("bulk_tx", None, OFFSETS), "no such event"
    assert not tp.raw_probe("exception", fields["xdp_exception"], OFFSETS), "names its program"


def probe(code, head):
    """The body of the probe that starts with `head` in generated code `code`."""
    assert head in code, code
    return code.split(head, 1)[1].split("\n}\n", 1)[0]


def test_the_probes_read_the_recorded_fields_and_zero_for_a_missing_one(fields):
    code = tp.source(fields)
    exc = probe(code, "TRACEPOINT_PROBE(xdp, xdp_exception) {")
    assert ".prog_id = args->prog_id, .act = args->act, .ifindex = args->ifindex" in exc
    bulk = probe(code, "TRACEPOINT_PROBE(xdp, xdp_bulk_tx) {")
    assert "if ((int)args->drops <= 0)" in bulk and "xdp_events.increment(key, args->drops);" in bulk
    assert ".act = args->act, .ifindex = args->ifindex" in bulk and ".err = args->err" in bulk
    assert "F(" not in code
    assert re.findall(r"^(?:RAW_)?TRACEPOINT_PROBE\(.*\)", code, re.M) == [
        "TRACEPOINT_PROBE(xdp, xdp_exception)", "TRACEPOINT_PROBE(xdp, xdp_bulk_tx)"], "the events given"
    assert "RAW_TRACEPOINT_PROBE" not in code and "#define OFF_" not in code

    older = tp.source({"xdp_bulk_tx": fields["xdp_bulk_tx"] - {"err"}})
    assert ".err = 0," in probe(older, "TRACEPOINT_PROBE(xdp, xdp_bulk_tx) {")
    assert "args->err" not in older


def test_with_btf_offsets_bulk_tx_reads_the_device_itself(fields):
    code = tp.source(fields, OFFSETS)
    assert "#define OFF_IFINDEX 224\n#define OFF_ND_NET 280\n#define OFF_NS_INUM 144\n" in code
    raw = probe(code, "RAW_TRACEPOINT_PROBE(xdp_bulk_tx) {")
    assert ".ifindex = dev_ifindex(ctx->args[0])" in raw and ".netns = dev_netns(ctx->args[0])" in raw
    assert "TRACEPOINT_PROBE(xdp, xdp_bulk_tx)" not in code
    assert "TRACEPOINT_PROBE(xdp, xdp_exception) {" in code, "an event that names its program"


def test_every_probe_counts_under_its_own_kind_number():
    bodies = {k: body for k, (_, body) in tp.PROBES.items()}
    assert list(bodies) == list(tp.KINDS)
    for kind, body in list(bodies.items()) + [(k, r[2]) for k, r in tp.RAW.items()]:
        assert re.findall(r"\.kind = (\d+)", body) == [str(tp.KINDS.index(kind))], kind


def test_the_action_numbers_are_the_kernel_s(recorded):
    for name in ("xdp_exception.format", "xdp_bulk_tx.format"):
        fmt = recorded(name).split("print fmt:", 1)[1]
        symbols = {int(n): s for n, s in re.findall(r'\{ (\d+), "(\w+)" \}', fmt)}
        assert symbols == {0: "ABORTED", 1: "DROP", 2: "PASS", 3: "TX", 4: "REDIRECT"}
        assert {i: "XDP_" + s for i, s in symbols.items()} == dict(enumerate(tp.ACTIONS))


# -- the counted keys, named -----------------------------------------------------------------------
_CTYPE = {"u32": ctypes.c_uint32, "s32": ctypes.c_int32}


class EventKey(ctypes.Structure):
    """struct event_key of tracepoints.HEAD (checked below), as bcc hands the table's keys out."""
    _fields_ = [("prog_id", ctypes.c_uint32), ("act", ctypes.c_uint32), ("ifindex", ctypes.c_int32),
                ("err", ctypes.c_int32), ("kind", ctypes.c_uint32), ("from_ifindex", ctypes.c_int32),
                ("netns", ctypes.c_uint32), ("from_netns", ctypes.c_uint32)]


def record(prog_id=0, act=0, ifindex=0, err=0, kind=0, from_ifindex=0, netns=0, from_netns=0):
    """A key as the kernel stores it: 8 native 32-bit numbers, err and the ifindexes signed."""
    raw = struct.pack("=IIiiIiII", prog_id, act, ifindex, err, kind, from_ifindex, netns, from_netns)
    return EventKey.from_buffer_copy(raw)


def test_the_key_written_here_is_the_one_of_the_counting_program():
    struct_text = tp.HEAD.split("struct event_key {", 1)[1].split("};", 1)[0]
    declared = re.findall(r"^\s*(u32|s32) (\w+);", struct_text, re.M)
    assert [(n, _CTYPE[t]) for t, n in declared] == EventKey._fields_
    assert ctypes.sizeof(EventKey) == 32


NETNS_A, NETNS_B = 4026532001, 4026532002

KEYS = [
    # xdp_exception: a program returned XDP_ABORTED at ifindex 2
    (record(prog_id=12, act=0, ifindex=2, kind=0),
     ("exception", "XDP_ABORTED", ("prog id 12", "ifindex 2")), 0),
    # xdp_redirect_err: no interface 4242, -ENODEV
    (record(prog_id=12, act=4, ifindex=2, err=-19, kind=1),
     ("redirect_err", "XDP_REDIRECT", ("prog id 12", "ifindex 2")), -19),
    # xdp_devmap_xmit, by index: frames from ifindex 3 refused by ifindex 4, -EOPNOTSUPP
    (record(act=4, ifindex=4, err=-95, kind=2, from_ifindex=3),
     ("devmap_xmit", "XDP_REDIRECT", ("ifindex 3", "ifindex 4")), -95),
    # xdp_bulk_tx, by index: a veth peer without NAPI, -ENXIO
    (record(act=3, ifindex=2, err=-6, kind=3),
     ("bulk_tx", "XDP_TX", ("unknown", "ifindex 2")), -6),
    # the raw probes: the device's namespace too
    (record(act=3, ifindex=2, err=-6, kind=3, netns=NETNS_A),
     ("bulk_tx", "XDP_TX", (f"ifindex 2 of netns {NETNS_A}", "ifindex 2")), -6),
    (record(act=4, ifindex=4, kind=2, from_ifindex=3, netns=NETNS_B, from_netns=NETNS_A),
     ("devmap_xmit", "XDP_REDIRECT", (f"ifindex 3 of netns {NETNS_A}", "ifindex 4")), 0),
    # the cpumaps: map id 7, CPU 1
    (record(prog_id=7, act=4, ifindex=1, kind=4),
     ("cpumap_enqueue", "XDP_REDIRECT", ("cpumap id 7", "cpu 1")), 0),
    (record(prog_id=7, act=2, ifindex=3, kind=5),
     ("cpumap_kthread", "XDP_PASS", ("cpumap id 7", "cpu 3")), 0),
    # numbers no table knows (a newer kernel's action, a kind this code does not have) stay numbers
    (record(prog_id=5, act=7, ifindex=2, kind=9),
     ("9", "7", ("prog id 5", "ifindex 2")), 0),
]


@pytest.mark.parametrize("key, named, err", KEYS, ids=[f"{n[0]}, {n[2][0]}" for _, n, _ in KEYS])
def test_a_counted_key_is_named_as_counts_names_it(key, named, err):
    assert tp.describe(key) == named
    assert key.err == err                          # signed: -ENXIO is -6, not 4294967290


# -- trace_pipe lines --------------------------------------------------------------------------------
def printed(recorded, name, *values):
    """The message tracefs prints for event `name` (its recorded print fmt) with `values`."""
    fmt = re.search(r'print fmt: "([^"]*)"', recorded(f"{name}.format"))[1]
    return fmt % values


def test_a_tracepoint_line_is_parsed_into_its_parts(recorded):
    message = printed(recorded, "xdp_exception", 12, "ABORTED", 2)
    assert message == "prog_id=12 action=ABORTED ifindex=2"
    line = f"            ping-4242    [001] ..s1.  2806.400436: xdp_exception: {message}"
    assert events.parse_trace_line(line) == events.TraceLine(
        2806.400436, "ping", 4242, 1, "..s1.", "xdp_exception", message)

    message = printed(recorded, "xdp_bulk_tx", 2, "TX", 0, 20, -6)
    assert message == "ifindex=2 action=TX sent=0 drops=20 err=-6"
    line = f"  ksoftirqd/3-31  (     31) [003] ..s2. 99.5: xdp_bulk_tx: {message}  \n"
    parsed = events.parse_trace_line(line)
    assert (parsed.task, parsed.pid, parsed.cpu, parsed.event) == ("ksoftirqd/3", 31, 3, "xdp_bulk_tx")
    assert parsed.time == 99.5 and parsed.message == message, "trailing blanks are not the message's"


def test_a_bpf_trace_printk_line_keeps_its_message_whole():
    line = "          <idle>-0       [000] d.s3.   17.000001: bpf_trace_printk: drop: 10.0.0.1 -> 10.0.0.2"
    assert events.parse_trace_line(line) == events.TraceLine(
        17.000001, "<idle>", 0, 0, "d.s3.", "bpf_trace_printk", "drop: 10.0.0.1 -> 10.0.0.2")
    no_flags = events.parse_trace_line("python3-77 [002] 5.25: bpf_trace_printk: x")
    assert no_flags.flags == "" and no_flags.message == "x" and no_flags.task == "python3"


def test_lost_lines_are_counted_and_other_lines_are_none():
    assert events.parse_trace_line("CPU:1 [LOST 12 EVENTS]") == 12
    assert events.parse_trace_line("CPU:0 [LOST 1 EVENTS]\n") == 1
    for line in ("", "\n", "not a trace line", "# tracer: nop",
                 "ping-4242 [001] ..s1. xdp_exception: no time stamp",
                 "ping-4242 [x] ..s1. 1.0: xdp_exception: a CPU that is not a number",
                 "ping [001] ..s1. 1.0: xdp_exception: no pid"):
        assert events.parse_trace_line(line) is None, line
