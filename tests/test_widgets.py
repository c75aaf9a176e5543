"""Live widgets: MapView, RatesChart and their refresh engine on real programs, real maps and real
packets. Every test ends with no refresher thread alive. No assertion depends on speed: waits
have generous timeouts and only guard against hanging."""
import re
import threading
from ipaddress import IPv4Address

import ipywidgets
import pytest
from IPython.core.formatters import DisplayFormatter
from scapy.all import IP, UDP

import xdplab
from xdplab import LabError, views, widgets

FRAME = 14 + 20 + 8 + 18                  # Ether + IPv4 + UDP + 18 bytes of payload
PKT = None

# Counts IPv4 frames only (the lab's IPv6 start-up chatter would make exact counts racy), per
# action (per-CPU) and per source address (one shared hash).
COUNT = r"""
#include "parsing_helpers.h"
struct datarec { u64 packets; u64 bytes; };
BPF_PERCPU_ARRAY(counters, struct datarec, XDP_ACTION_MAX);
BPF_HASH(src_count, u32, u64, 1024);            /* keyed by iph->saddr, as in the packet */
BPF_HASH(big, u32, u64, 65536);                 /* filled from user space */

int xdp_count_ipv4(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
    struct hdr_cursor nh = { .pos = data };
    struct ethhdr *eth;
    struct iphdr *iph;
    u32 action = XDP_PASS;
    u64 zero = 0, *n;

    if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP) || parse_iphdr(&nh, data_end, &iph) < 0)
        return XDP_PASS;
    struct datarec *rec = counters.lookup(&action);
    if (rec) {
        rec->packets++;
        rec->bytes += data_end - data;
    }
    u32 saddr = iph->saddr;
    n = src_count.lookup_or_try_init(&saddr, &zero);
    if (n)
        __sync_fetch_and_add(n, 1);
    return XDP_PASS;
}
"""


def threads():
    return [t.name for t in threading.enumerate() if t.name.startswith(widgets.THREAD_PREFIX)]


@pytest.fixture(autouse=True)
def no_refresher_left():
    yield
    left, names = widgets.active(), threads()
    widgets.stop_all()
    assert not left and not names, f"refreshers still running after the test: {left} {names}"


@pytest.fixture
def counted(pair):
    prog = pair.load(COUNT)
    prog.attach(pair.server)
    return pair, prog


def udp(lab):
    return IP(dst=lab.server.ip) / UDP(sport=4000, dport=9) / (b"x" * 18)


def row(view, key):
    return next(r for r in view.rows if r.key == key)


class Traffic:
    """Packets from client to server in a thread (the live-frame injector) until stopped."""

    def __init__(self, lab):
        self.lab, self.stop, self.error = lab, threading.Event(), None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        try:
            while not self.stop.is_set():
                self.lab.client.send(udp(self.lab), count=500_000)
        except Exception as e:                      # noqa: BLE001 — reported by the test
            self.error = e

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        assert self.error is None, self.error


def test_map_view_shows_real_counts_with_typed_keys(counted):
    lab, prog = counted
    view = prog.maps["counters"].widget(interval=0.2)
    assert isinstance(view, widgets.MapView) and view.refresher.running
    lab.client.send(udp(lab), count=7)
    assert view.refresher.wait(2)          # the second refresh started after the send ended
    assert [r.key for r in view.rows][0] == "XDP_PASS"       # sorted by packets, most first
    assert [r.key for r in view.rows][1:] == ["XDP_ABORTED", "XDP_DROP", "XDP_TX", "XDP_REDIRECT"]
    assert row(view, "XDP_PASS").value == (7, 7 * FRAME) and view.total == 5
    html = view.html
    assert '<td class="k">XDP_PASS</td>' in html and "<th class=\"n\">packets</th>" in html
    assert "packets/s" in html and "5 entries" in html and "var(--jp-" in html

    src = prog.maps["src_count"].widget(interval=0.2)
    assert src.rows[0].key == IPv4Address(lab.client.ip) and src.rows[0].value == 7
    assert f'<td class="k">{lab.client.ip}</td>' in src.html and '<td class="n">7</td>' in src.html
    src.close()
    view.close()


def test_top_n_of_a_big_hash_with_the_total(counted):
    lab, prog = counted
    table = prog.bpf["big"]
    n = 65536
    values = [(k * 7919) % 100_003 for k in range(n)]       # a shuffle with distinct values
    table.items_update_batch((table.Key * n)(*range(n)), (table.Leaf * n)(*values))
    view = prog.maps["big"].widget(top=5, interval=5)
    expected = sorted(prog.maps["big"].snapshot().items(), key=lambda kv: -kv[1])[:5]
    assert [(r.key, r.value) for r in view.rows] == expected and view.total == n
    assert "top 5 of 65,536 entries" in view.html
    view.sort = "key"
    assert [r.key for r in view.rows] == [0, 1, 2, 3, 4]
    with pytest.raises(LabError, match="sort must be"):
        view.sort = "size"
    view.close()


def test_rates_appear_after_two_refreshes_while_traffic_flows(counted):
    lab, prog = counted
    view = prog.maps["counters"].widget(interval=0.2)
    assert all(r.rate is None for r in view.rows)           # one reading: no rate yet
    assert "—" in view.html
    with Traffic(lab):
        for _ in range(50):
            assert view.refresher.wait(1)
            r = row(view, "XDP_PASS")
            if r.rate is not None and r.rate.packets > 0 and len(r.history) >= 2:
                break
    assert r.rate.packets > 0
    assert r.rate.bytes == pytest.approx(r.rate.packets * FRAME)   # every frame the same size
    assert row(view, "XDP_DROP").rate == (0.0, 0.0)
    assert "<svg" in view.html and "<polyline" in view.html        # the sparkline of the row
    view.close()


def test_changed_cells_are_highlighted(counted):
    lab, prog = counted
    view = prog.maps["counters"].widget()
    view.pause()                                   # refreshes by hand only
    view.refresher.refresh()
    assert ' chg"' not in view.html
    lab.client.send(udp(lab), count=3)
    view.refresher.refresh()
    assert row(view, "XDP_PASS").changed == {"packets", "bytes"}
    assert row(view, "XDP_DROP").changed == set()
    assert view.html.count(' chg"') == 2 and "@keyframes xdplab-flash" in view.html
    view.refresher.refresh()                       # nothing new: the highlight is gone
    assert ' chg"' not in view.html
    view.close()


def test_an_unchanged_table_is_not_sent_again(counted):
    lab, prog = counted
    view = prog.maps["counters"].widget()
    view.pause()
    view.refresher.refresh()                       # rates appear: 0/s everywhere
    sent = view.sent
    view.refresher.refresh()                       # nothing moved: the same table
    assert view.sent == sent and view.refresher.count == 3 and "<svg" not in view.html
    lab.client.send(udp(lab), count=2)
    view.refresher.refresh()
    assert view.sent == sent + 1
    view.close()


def test_per_cpu_toggle_shows_one_column_per_cpu(counted):
    lab, prog = counted
    view = prog.maps["counters"].widget()
    assert all(r.per_cpu is None for r in view.rows) and "cpu 0" not in view.html
    view.pause()
    for cpu, n in ((0, 3), (1, 4)):               # a veth delivers on the sender's CPU
        out = lab.client.run(["taskset", "-c", str(cpu), "ping", "-4", "-n", "-c", str(n),
                              "-i", "0.05", "-W", "1", lab.server.ip])
        assert f"{n} received" in out.stdout
    view.per_cpu = True                            # the toggle re-reads at once
    assert view.per_cpu_button.value
    r = row(view, "XDP_PASS")
    assert [c.packets for c in r.per_cpu[:2]] == [3, 4] and r.value.packets == 7
    assert "cpu 0" in view.html and "cpu 1" in view.html
    view.per_cpu = False
    assert row(view, "XDP_PASS").per_cpu is None and "cpu 1" not in view.html
    src = prog.maps["src_count"].widget()
    assert src.per_cpu_button.disabled
    with pytest.raises(LabError, match="not a per-CPU map"):
        src.per_cpu = True
    with pytest.raises(LabError, match="one value per key"):
        prog.maps["src_count"].widget(per_cpu=True)
    src.close()
    view.close()


def test_pause_stops_updates_and_resume_restarts_them(counted):
    lab, prog = counted
    view = prog.maps["counters"].widget(interval=0.1)
    assert view.refresher.wait(1)
    view.pause_button.value = True                 # what the Pause button does
    assert view.paused and "paused" in view.refresher.status.value
    assert view.pause_button.description == "Resume"
    html, count = view.html, view.refresher.count
    lab.client.send(udp(lab), count=5)
    assert not view.refresher.wait(1, timeout=1.0)  # ten intervals: no refresh came
    assert view.html == html and view.refresher.count == count
    assert row(view, "XDP_PASS").value.packets == 0
    view.resume()
    assert view.refresher.wait(1) and row(view, "XDP_PASS").value.packets == 5
    assert view.refresher.status.value == ""
    view.interval = 0.3                            # settable live, the control follows
    assert view.interval_box.value == 0.3 and view.refresher.interval == 0.3
    with pytest.raises(LabError, match="interval"):
        view.interval = 0
    view.close()


def test_closing_the_widget_stops_its_thread(counted):
    lab, prog = counted
    view = prog.maps["counters"].widget(interval=0.1)
    assert view.refresher in widgets.active() and view.refresher.running
    assert f"{widgets.THREAD_PREFIX}-map-counters" in threads()
    view.close()
    assert not view.refresher.running and view.refresher not in widgets.active()
    assert view.refresher.stopped == "stopped: widget closed"
    view.refresher.start()                         # stopped for good
    assert not view.refresher.running

    # any ipywidget: its own close() (ipywidgets drops the comm) stops the refresher
    box = ipywidgets.HTML()
    r = widgets.Refresher(lambda: None, 0.1, widget=box, name="plain").start()
    assert r.wait(1)
    box.close()
    assert not r.running and r.stopped == "stopped: widget closed"


def test_closing_the_lab_stops_all_its_widgets():
    with xdplab.Lab.pair() as lab:
        prog = lab.load(COUNT)
        prog.attach(lab.server)
        views = [prog.maps["counters"].widget(interval=0.1), prog.maps["src_count"].widget(interval=0.1),
                 prog.maps["counters"].widget(chart=True, interval=0.1),
                 widgets.RatesChart({"one": lambda: 1}, rates=False, interval=0.1, lab=lab)]
        assert all(v.refresher.running for v in views) and len(widgets.active()) == 4
    assert widgets.active() == [] and threads() == []
    assert all(v.refresher.stopped == f"stopped: lab {lab.id} closed" for v in views)
    assert all(f"lab {lab.id} closed" in v.refresher.status.value for v in views)


def test_closing_the_program_stops_the_refresh(counted):
    lab, prog = counted
    view = prog.maps["counters"].widget(interval=0.1)
    prog.close()
    assert not view.refresher.wait(5)              # the next read finds the program closed
    view.refresher.stop()                          # waits for the thread; keeps the first reason
    assert "is closed" in view.refresher.stopped and "closed" in view.refresher.status.value
    assert not view.refresher.running


def test_errors_are_shown_not_raised():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("no such counter")
        if len(calls) == 3:
            raise LabError("the map is busy", "try again")

    r = widgets.Refresher(flaky, 0.05, name="flaky")
    assert r.refresh() and r.status.value == ""
    assert not r.refresh() and "ValueError: no such counter" in r.status.value
    assert not r.refresh() and "the map is busy → try again" in r.status.value and r.errors == 2
    assert r.refresh() and r.status.value == "" and r.last_error is None
    r.start()
    assert r.wait(2) and r.running                 # errors never ended the thread
    r.stop()
    assert not r.running

    def stops():
        raise widgets.Stop("the source is gone")
    s = widgets.Refresher(stops, 0.05, name="stops").start()
    assert not s.wait(1)
    s.stop()
    assert s.stopped == "the source is gone"


def test_rates_chart_of_a_map_and_of_callables(counted):
    lab, prog = counted
    m = prog.maps["counters"]
    chart = m.widget(chart=True, field="packets", interval=0.2)
    calls = widgets.RatesChart({"pass": lambda: m.snapshot()["XDP_PASS"].packets,
                                "drop": lambda: m.snapshot()["XDP_DROP"].packets},
                               interval=0.2, lab=lab)
    assert "rates start with the second reading" in chart.html
    with Traffic(lab):
        for _ in range(50):
            assert chart.refresher.wait(1) and calls.refresher.wait(1)
            if chart.last.get("XDP_PASS", 0) > 0 and calls.last.get("pass", 0) > 0:
                break
    assert chart.last["XDP_PASS"] > 0 and calls.last["pass"] > 0 and calls.last["drop"] == 0
    assert "XDP_DROP" not in chart.series          # keys that never counted draw no line
    html = chart.html
    assert html.count("<polyline") == 1 and "XDP_PASS" in html and "per second" in html
    assert widgets.ACTION_COLOURS["XDP_PASS"] in html and "now" in html
    assert calls.html.count("<polyline") == 2
    chosen = m.widget(chart=True, keys=["XDP_PASS", "XDP_DROP"], interval=0.2)
    assert chosen.refresher.wait(2) and set(chosen.series) == {"XDP_PASS", "XDP_DROP"}
    with pytest.raises(LabError, match="no field 'pkts'"):
        m.widget(chart=True, field="pkts")
    bad = widgets.RatesChart({"text": lambda: "many"}, rates=False)
    assert "not a number" in bad.refresher.status.value
    for w in (chart, calls, chosen, bad):
        w.close()


def test_a_map_ending_a_cell_displays_as_its_live_view(counted, monkeypatch):
    lab, prog = counted
    m = prog.maps["counters"]
    data, _ = DisplayFormatter().format(m)        # a terminal, nbconvert: no widget
    assert widgets.WIDGET_MIME not in data and "<b>counters</b>" in data["text/html"]
    assert widgets.active() == []

    monkeypatch.setattr(views, "in_kernel", lambda: True)
    data, _ = DisplayFormatter().format(m)
    model = data[widgets.WIDGET_MIME]["model_id"]
    assert "text/html" in data and data["text/plain"].startswith("<Map counters")
    view = widgets._auto_views[m]
    assert view.model_id == model and view.refresher.running
    again, _ = DisplayFormatter().format(m)        # shown again / cell re-run: the same view
    assert again[widgets.WIDGET_MIME]["model_id"] == model and len(widgets.active()) == 1
    view.close()
    data, _ = DisplayFormatter().format(m)        # closed: a new one
    assert data[widgets.WIDGET_MIME]["model_id"] != model
    widgets._auto_views[m].close()


def test_thread_ends_while_no_view_shows_the_widget(counted):
    lab, prog = counted
    view = prog.maps["counters"].widget(interval=0.1)
    assert view._view_count == 0                   # asks JupyterLab to count its views
    view._view_count = 1                           # what the front-end reports
    view._view_count = 0                           # output cleared, cell re-run
    view.refresher._thread.join(5)
    assert not view.refresher.running and view.refresher.stopped is None
    view._view_count = 1                           # shown again
    assert view.refresher.running and view.refresher.wait(1)
    view.close()


def test_options_are_checked(counted):
    lab, prog = counted
    m = prog.maps["counters"]
    for bad, match in (({"top": 0}, "top must be"), ({"sort": "size"}, "sort must be"),
                       ({"interval": -1}, "interval must be"), ({"field": "pkts"}, "no field")):
        with pytest.raises(LabError, match=match):
            m.widget(**bad)
    with pytest.raises(LabError, match="not a struct"):
        prog.maps["src_count"].widget(field="packets")
    only = m.widget(keys=["XDP_PASS"])
    assert [r.key for r in only.rows] == ["XDP_PASS"] and "chosen keys" in only.html
    only.close()


# -- how the widgets look: numbers for people, round ticks, nothing stale, theme colours ----------
def test_rates_are_formatted_for_people():
    f = widgets.fmt_rate
    assert [f(x) for x in (None, 0, 0.25, 3.5, 498.2595629043027, 999.94)] == \
        ["—", "0", "0.25", "3.5", "498.3", "999.9"]
    assert [f(x) for x in (999.96, 1234.5, 12_345.6, 999_949, 1_250_000, 2e9, 3e15)] == \
        ["1.0 k", "1.2 k", "12.3 k", "999.9 k", "1.2 M", "2.0 G", "3000.0 T"]
    assert widgets.fmt_per_second(498.2595629043027) == "498.3/s"
    assert widgets.fmt_per_second(1234.5, "packets") == "1.2 k packets/s"
    assert widgets.fmt_per_second(None) == "—"
    assert widgets.fmt_value(498.2595629043027) == "498.3"           # floats in tables too
    # axis labels: at most 3 significant digits, no trailing zeros, a real minus sign
    assert [widgets._axis(v) for v in (0, 0.25, 625, 1250, 2500, 1e6, 1.25e6, -500)] == \
        ["0", "0.25", "625", "1.25 k", "2.5 k", "1 M", "1.25 M", "−500"]


@pytest.mark.parametrize("window", [0.5, 1, 4, 7, 10, 25, 30, 45, 60, 100, 600, 3600])
def test_chart_time_ticks_are_round(window):
    ticks = widgets.time_ticks(window)
    assert ticks[0] == 0 and 3 <= len(ticks) <= 7 and ticks[-1] <= window
    step = ticks[1]
    assert step in widgets.TIME_STEPS, f"window {window}: a step of {step} s is not round"
    assert all(abs(b - a - step) < 1e-6 for a, b in zip(ticks, ticks[1:]))
    svg = widgets.line_chart({"x": [(100 - window, 1.0), (100, 2.0)]}, window, 100)
    labels = re.findall(r'text-anchor="\w+">([^<]*)</text>', svg)
    seconds = [t for t in labels if t.endswith((" s", " min"))]
    assert "now" in labels and len(seconds) == len(ticks) - 1, labels
    for label in seconds:       # "−5 s", "−2.5 s", "−10 min": never "-4.16667 s"
        assert re.fullmatch(r"−\d+(\.\d{1,2})? (s|min)", label), label


def test_a_25_second_chart_says_minus_5_s_not_minus_4_16667():
    svg = widgets.line_chart({"x": [(80, 1.0), (100, 498.2595629043027)]}, 25, 100)
    assert "4.16667" not in svg and "−5 s" in svg and "−25 s" in svg
    assert "498.259" not in svg


def text_of(html):
    return re.sub(r"<[^>]+>", " ", html)


def rate_cells(view):
    """The texts of the table's rate columns (td class "n r")."""
    return re.findall(r'<td class="n r">([^<]*)</td>', view.html)


def test_a_stopped_table_shows_no_stale_rate():
    with xdplab.Lab.pair() as lab:
        prog = lab.load(COUNT)
        prog.attach(lab.server)
        view = prog.maps["counters"].widget(interval=0.2)
        chart = prog.maps["counters"].widget(chart=True, field="packets", interval=0.2)
        with Traffic(lab):
            for _ in range(50):
                assert view.refresher.wait(1) and chart.refresher.wait(1)
                r = row(view, "XDP_PASS")
                if r.rate is not None and r.rate.packets > 0 and chart.last.get("XDP_PASS", 0) > 0:
                    break
            view.pause()                             # what they show now stays while we look
            chart.pause()
        live = [c for c in rate_cells(view) if c not in ("0", "—")]
        assert live, rate_cells(view)                # a live table shows the rate it measured
        assert widgets.fmt_per_second(chart.last["XDP_PASS"]) in text_of(chart.html)
    # the lab closed: the refreshers stopped, and no rate reads as if it were live
    for w in (view, chart):
        assert w.refresher.stopped == f"stopped: lab {lab.id} closed" and not w.refresher.running
    cells = rate_cells(view)
    assert cells and set(cells) == {"—"}, cells
    assert f"lab {lab.id} closed: the last values read, no live rates" in view.html
    assert "<td class=\"n\">" in view.html                    # the counts stay shown
    legend = text_of(chart.html)
    assert "XDP_PASS" in legend and "/s" not in legend and "—" in legend, legend
    assert ">stopped</text>" in chart.html and ">now</text>" not in chart.html
    values = widgets.RatesChart({"depth": lambda: 12.5}, rates=False, interval=0.1)
    values.refresher.stop()                      # a chart of values keeps its last, said so
    assert "12.5 (last)" in text_of(values.html) and "stopped" in values.html
    # a refresh that finishes after the stop cannot bring a stale picture back
    stale = view.html
    view._publish("<b>late refresh</b>")
    assert view.html == stale


def colours_outside_theme_variables(css):
    """Hard-coded colours of `css` that are not the fallback of a --jp- variable (or the value of
    a custom property of our own, itself a fallback), nor translucent (which reads on both)."""
    found = []
    for decl in re.split(r"[;{}]", css):
        for colour in re.findall(r"#[0-9a-fA-F]{3,8}\b|rgba?\([^)]*\)", decl):
            if "var(--jp-" in decl or decl.strip().startswith("--") or colour.startswith("rgba"):
                continue
            found.append(decl.strip())
    return found


def test_widget_css_takes_its_colours_from_the_jupyterlab_theme():
    from xdplab.show import CSS as SHOW_CSS
    for name, css in (("widgets", widgets.CSS), ("show", SHOW_CSS)):
        assert "var(--jp-" in css, name
        assert colours_outside_theme_variables(css) == [], name
    assert "--jp-ui-font-color1" in widgets.CSS and "--jp-layout-color2" in widgets.CSS
    assert "--jp-mirror-editor-keyword-color" in SHOW_CSS
    assert colours_outside_theme_variables("".join(widgets.PALETTE) + "".join(
        widgets.ACTION_COLOURS.values())) == []
    # listings scroll sideways: JupyterLab's outputs wrap <pre> with break-all otherwise (in rules
    # more specific than a class: the browser test, tests/test_browser_look.py, checks the page)
    from xdplab.show import show
    assert '<pre style="white-space:pre;word-break:normal;' in show("xdp_count.c")._repr_html_()
    assert ".xdplab-w pre{white-space:pre!important;word-break:normal!important" in widgets.CSS
