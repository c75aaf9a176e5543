"""Numbers, rates, addresses and HTML as the tables and charts write them, without a map or a lab:
xdplab.text (fmt_rate, fmt_per_second, fmt_value, axis_label, escape, check_interval), the runtime's
scrolling table (events.table_html), the live widgets' pure drawing (xdplab.ui.widgets: sparkline,
time_ticks, line_chart) and a MapView's columns on a stand-in map whose codecs are real, and the
matplotlib axes of xdplab.ui.charts. Expected texts are worked out by hand from the rules in the
docstrings (one decimal, k/M/G/T, thousands separators, a real minus sign)."""
import ctypes
import ipaddress
import re

import pytest

from xdplab import LabError, text
from xdplab.maps import make_codec
from xdplab.program import events
from xdplab.ui import charts, widgets

IPv4, IPv6 = ipaddress.IPv4Address, ipaddress.IPv6Address


# -- xdplab.text ---------------------------------------------------------------------------------
@pytest.mark.parametrize("rate, shown", [
    (None, "—"), (float("nan"), "—"), (0, "0"), (0.0, "0"), (0.004, "0.00"), (0.25, "0.25"),
    (0.994, "0.99"), (0.996, "1.0"), (3.5, "3.5"), (999.94, "999.9"), (999.96, "1.0 k"),
    (1234.5, "1.2 k"), (999_949, "999.9 k"), (999_951, "1.0 M"), (1_250_000, "1.2 M"),
    (2e9, "2.0 G"), (7.5e12, "7.5 T"), (3e15, "3000.0 T"), (2**64 - 1, "18446744.1 T"),
    (-0.5, "-0.50"), (-1234.5, "-1.2 k")])
def test_rates_for_people(rate, shown):
    assert text.fmt_rate(rate) == shown


def test_rates_with_their_unit():
    assert text.fmt_per_second(0) == "0/s"
    assert text.fmt_per_second(498.26) == "498.3/s"
    assert text.fmt_per_second(12_000, "packets") == "12.0 k packets/s"
    assert text.fmt_per_second(None, "packets") == "—", "unknown: no unit either"


def test_values_as_table_text():
    T = make_codec(Stats, "stats").tuple_type            # (Stats: the struct of the MapView below)
    f = text.fmt_value
    assert f(0) == "0" and f(0, counter=True) == "0"
    assert f(12345) == "12345" and f(12345, counter=True) == "12,345"
    assert f(2**64 - 1, counter=True) == "18,446,744,073,709,551,615"
    assert f(-7, counter=True) == "-7"
    assert f(498.2595629043027) == "498.3" and f(0.0) == "0"
    assert f(True) == "True" and f(False, counter=True) == "False", "a bool is not a count"
    assert f(None) == "None"
    assert f(IPv4("10.11.0.1")) == "10.11.0.1" and f(IPv4("0.0.0.0")) == "0.0.0.0"
    assert f(IPv6("2001:db8::1")) == "2001:db8::1" and f(IPv6("::")) == "::"
    assert f("02:58:4c:00:00:01") == "02:58:4c:00:00:01" and f("XDP_DROP") == "XDP_DROP"
    assert f(b"\x00\x35\xff") == "0035ff" and f(bytearray()) == ""
    assert f(T(1234, 5_000_000), counter=True) == "{packets: 1,234, bytes: 5,000,000}"
    assert f(T(1234, 5_000_000)) == "{packets: 1234, bytes: 5000000}"
    assert f((1000, IPv4("10.0.0.1"), 2.5), counter=True) == "[1,000, 10.0.0.1, 2.5]"
    assert f(()) == "[]"


@pytest.mark.parametrize("value, label", [
    (0, "0"), (0.25, "0.25"), (1, "1"), (625, "625"), (999, "999"), (1000, "1 k"), (1250, "1.25 k"),
    (2500, "2.5 k"), (12_345, "12.3 k"), (1e6, "1 M"), (1.25e6, "1.25 M"), (4e9, "4 G"),
    (2e12, "2 T"), (1e15, "1000 T"), (1.5e16, "15000 T"), (-500, "−500"), (-2500, "−2.5 k")])
def test_axis_labels_have_three_digits_at_most_and_a_real_minus(value, label):
    assert text.axis_label(value) == label


def test_escape_makes_any_value_safe_in_text_and_attributes():
    assert text.escape('<a href="x">Tom & Jerry\'s</a>') == \
        "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#x27;s&lt;/a&gt;"
    assert text.escape(IPv6("fe80::1")) == "fe80::1" and text.escape(0) == "0"
    assert text.escape(None) == "None"


def test_a_refresh_interval_is_a_number_of_seconds_above_zero():
    assert text.check_interval(0.5) == 0.5 and text.check_interval(2) == 2.0
    for wrong in (0, -1, -0.5, "0.5", None, True, float("nan")):
        with pytest.raises(LabError) as e:
            text.check_interval(wrong)
        assert f"not {wrong!r}" in e.value.message and "interval=0.5" in e.value.hint


# -- the runtime's scrolling table ---------------------------------------------------------------
def cells(html):
    return re.findall(r'<td class="k">([^<]*)</td>', html)


def test_a_table_writes_its_values_as_the_maps_do_and_escapes_them():
    html = events.table_html("perf buffer · 2 events", ["t (s)", "saddr", "<dport>"],
                             [[0.0123, IPv4("10.11.0.1"), 53],
                              [12.5, IPv6("2001:db8::2"), "<script>"]],
                             notes=["1 event & more lost"])
    assert html.startswith(text.CSS)
    assert "<th>t (s)</th><th>saddr</th><th>&lt;dport&gt;</th>" in html
    assert cells(html) == ["0.012300", "10.11.0.1", "53", "12.500000", "2001:db8::2", "&lt;script&gt;"]
    assert '<div class="cap">perf buffer · 2 events</div>' in html
    assert '<div class="warn">1 event &amp; more lost</div>' in html
    assert "<script>" not in html


def test_an_empty_table_says_so_across_every_column():
    html = events.table_html("nothing", ["a", "b", "c"], [])
    assert '<tr><td class="c" colspan="3">nothing yet</td></tr>' in html and 'class="warn"' not in html


# -- the live widgets' drawing -------------------------------------------------------------------
def test_a_sparkline_draws_the_recent_rates_newest_at_the_right():
    svg = widgets.sparkline([0, 10])
    # 84 × 18 px: x from 1 to 83, y from 17 (0) to 1 (the top value)
    assert 'points="1.0,17.0 83.0,1.0"' in svg
    assert "<title>10.0/s now, 10.0/s at most</title>" in svg
    late = widgets.sparkline([5, 10], slots=4)        # two values of four places: the right half
    assert 'points="55.7,9.0 83.0,1.0"' in late
    huge = widgets.sparkline([2_500_000, 1_250_000, None])
    assert "<title>1.2 M/s now, 2.5 M/s at most</title>" in huge


@pytest.mark.parametrize("values", [[], [7], [None, 7], [0, 0, 0], [0.0, None, 0]])
def test_no_sparkline_for_fewer_than_two_points_or_all_zero(values):
    assert widgets.sparkline(values) == ""


@pytest.mark.parametrize("window, ticks", [
    (0.5, [0, 0.1, 0.2, 0.3, 0.4, 0.5]), (7, [0, 2, 4, 6]), (30, [0, 5, 10, 15, 20, 25, 30]),
    (45, [0, 10, 20, 30, 40]), (600, [0, 120, 240, 360, 480, 600]),
    (100_000, [0, 20_000, 40_000, 60_000, 80_000, 100_000])])
def test_time_ticks_fall_on_round_steps(window, ticks):
    assert widgets.time_ticks(window) == ticks


def labels(svg):
    return re.findall(r'<text [^>]*>([^<]*)</text>', svg)


def test_a_line_chart_labels_its_axes_for_people():
    svg = widgets.line_chart({"XDP_DROP": [(70, 0.0), (100, 1234.0)]}, 30, 100)
    # y: 0 up to the round step above the largest value (2000), in four steps; x: seconds ago
    assert labels(svg) == ["0", "500", "1 k", "1.5 k", "2 k", "now",
                           "−5 s", "−10 s", "−15 s", "−20 s", "−25 s", "−30 s", "per second"]
    assert f"stroke:{widgets.ACTION_COLOURS['XDP_DROP']}" in svg, "an action keeps its colour"
    minutes = labels(widgets.line_chart({}, 600, 100, unit="", end_label="stopped"))
    assert minutes == ["0", "0.25", "0.5", "0.75", "1",
                       "stopped", "−2 min", "−4 min", "−6 min", "−8 min", "−10 min", ""]
    assert labels(widgets.line_chart({}, 300, 100))[5:11] == [
        "now", "−60 s", "−2 min", "−3 min", "−4 min", "−5 min"], "minutes from two on"


def test_a_line_chart_of_huge_and_negative_values():
    svg = widgets.line_chart({"a": [(90, 3e12), (100, -3.0)]}, 10, 100)
    assert labels(svg)[:5] == ["−5", "1.25 T", "2.5 T", "3.75 T", "5 T"]
    assert "e+" not in svg


def test_a_line_chart_draws_only_the_window_and_escapes_names():
    svg = widgets.line_chart({"<b>x</b>": [(50, 1.0), (80, 1.0), (100, 2.0)], "gone": [(10, 5.0)]},
                             20, 100, colours={"<b>x</b>": "red"})
    lines = re.findall(r'<polyline points="([^"]*)" style="fill:none;stroke:([^;]*);', svg)
    # 600 px wide, 58 left and 12 right of the plot: 530 px for 20 s; y from 196 (0) to 16 (2)
    assert lines == [("58.0,106.0 588.0,16.0", "red")], "the point at 50 is outside, 'gone' too"
    assert "<title>&lt;b&gt;x&lt;/b&gt;</title>" in svg and "<b>" not in svg
    chosen = widgets.line_chart({"XDP_DROP": [(95, 1.0), (100, 2.0)], "other": [(95, 1.0), (100, 1.0)]},
                                20, 100, colours={"XDP_DROP": "red"})
    assert re.findall(r"stroke:([^;]*);stroke-width:1.8", chosen) == ["red", widgets.PALETTE[1]], \
        "the colours given first, then the palette in turn"


# -- a MapView's columns ------------------------------------------------------------------------
class Flow(ctypes.Structure):
    _fields_ = [("saddr", ctypes.c_uint32), ("daddr", ctypes.c_uint8 * 16), ("mac", ctypes.c_uint8 * 6),
                ("dport", ctypes.c_uint16)]


class Stats(ctypes.Structure):
    _fields_ = [("packets", ctypes.c_uint64), ("bytes", ctypes.c_uint64)]


class StandIn:
    """What a MapView reads of a Map (name, kind, codecs, snapshot), for a hash of Flow → Stats
    whose codecs make_codec builds as a map's own are built. No program, no lab."""
    kind, percpu, ncpus = "hash", False, 1
    program = type("program", (), {"lab": None, "check_open": lambda self: None})()

    def __init__(self, name, snapshot):
        self.name, self._snapshot = name, snapshot
        self.key_codec = make_codec(Flow, name, top=True)
        self.value_codec = make_codec(Stats, None)

    def ensure_readable(self):
        pass

    def describe(self):
        return "hash, max_entries 1024"

    def snapshot(self, per_cpu=False):
        return dict(self._snapshot)


def flow(saddr, daddr, mac, dport):
    raw = (bytes(IPv4(saddr).packed) + IPv6(daddr).packed + bytes.fromhex(mac.replace(":", ""))
           + dport.to_bytes(2, "big"))
    return make_codec(Flow, "k", top=True).decode(raw + bytes(ctypes.sizeof(Flow) - len(raw)), 0)


@pytest.fixture
def view():
    T = make_codec(Stats, None).tuple_type
    snap = {flow("10.11.0.1", "2001:db8::2", "02:58:4c:00:00:01", 53): T(1_234_567, 0),
            flow("10.11.0.3", "::1", "02:00:00:00:00:ff", 8080): T(0, 0),
            flow("10.11.0.2", "fe80::1", "02:58:4c:00:00:02", 443): T(12, 2**40)}
    v = widgets.MapView(StandIn("flows <&>", snap), top=2, interval=60)
    yield v
    v.close()


def test_a_map_view_has_a_column_per_field_and_a_rate_per_counter(view):
    html = view.html
    heads = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", html)
    assert heads == ["saddr", "daddr", "mac", "dport", "packets", "packets/s", "bytes", "bytes/s",
                     "packets/s, recent"]
    assert re.findall(r'<th title="([^"]*)">', html)[:4] == ["ipv4", "ipv6", "mac", "port"]
    rows = [re.findall(r'<td(?: class="[^"]*")?>([^<]*)</td>', r)
            for r in re.findall(r"<tr><td.*?</tr>", html)]
    # sorted by the first counter, the busiest first; no rate (and no sparkline) before a second
    # reading
    assert rows == [
        ["10.11.0.1", "2001:db8::2", "02:58:4c:00:00:01", "53", "1,234,567", "—", "0", "—", ""],
        ["10.11.0.2", "fe80::1", "02:58:4c:00:00:02", "443", "12", "—", "1,099,511,627,776", "—", ""]]
    assert "top 2 of 3 entries · sorted by packets ↓" in html
    assert "<b>flows &lt;&amp;&gt;</b>" in view.title.value


def test_a_map_view_sorted_by_key_and_a_small_map(view):
    view.top = 3
    view.sort = "key"
    keys = re.findall(r'<tr><td class="k">([^<]*)</td>', view.html)
    assert keys == ["10.11.0.1", "10.11.0.2", "10.11.0.3"]
    assert "3 entries · sorted by key" in view.html
    view.map._snapshot = dict(list(view.map._snapshot.items())[:1])
    view.refresher.refresh()
    assert "1 entry · sorted by key" in view.html
    view.map._snapshot = {}
    view.refresher.refresh()
    assert '<td class="c" colspan="9">empty</td>' in view.html and "0 entries" in view.html


def test_a_map_view_without_rates_has_no_rate_columns(view):
    plain = widgets.MapView(view.map, rates=False, interval=60)
    try:
        heads = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", plain.html)
        assert heads == ["saddr", "daddr", "mac", "dport", "packets", "bytes"]
        assert "1,234,567" in plain.html and "—" not in plain.html
    finally:
        plain.close()


# -- matplotlib axes ------------------------------------------------------------------------------
def test_a_value_axis_is_labelled_as_the_live_charts_are():
    fig, ax = charts.figure()
    charts.values(ax.yaxis)
    label = ax.yaxis.get_major_formatter()
    assert [label(v) for v in (0, 1e-12, -1e-12, 0.25, 2500, 1.25e6, -5000)] == \
        ["0", "0", "0", "0.25", "2.5 k", "1.25 M", "−5 k"], "rounding noise is 0, not −0"
    locator = ax.yaxis.get_major_locator()
    ticks = [t for t in locator.tick_values(0, 7300) if 0 <= t <= 7300]
    steps = {round(b - a, 6) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1 and steps.pop() in (1000, 2000, 2500), ticks


@pytest.mark.parametrize("top, subs", [(100, (2, 5)), (1e6, ())])
def test_a_log_axis_says_plain_numbers(top, subs):
    fig, ax = charts.figure()
    ax.plot([1, 2], [1, top])
    ax.set_ylim(1, top)
    charts.log(ax.yaxis)
    label = ax.yaxis.get_major_formatter()
    assert [label(v) for v in (0.01, 1, 10, 1000, 2e5)] == ["0.01", "1", "10", "1,000", "200,000"]
    # from a million on and below 0.0001, too: never 1e+06
    assert [label(v) for v in (1e6, 5e7, 1e-5, 2.5e-5)] == ["1,000,000", "50,000,000", "0.00001",
                                                         "0.000025"]
    ticks = {round(t, 6) for t in ax.yaxis.get_major_locator().tick_values(1, top) if 1 <= t <= top}
    assert {1, 10, 100} <= ticks
    assert ({2, 5, 20, 50} <= ticks) == bool(subs), ticks           # 2 and 5 only over few decades
    assert ax.yaxis.get_minor_formatter()(3) == ""
