"""The matplotlib figures the lessons draw (perf's charts, qos.plot, ModeCosts.plot, kvstore.plot),
drawn with representative data on the Agg canvas and checked from the figure itself: no text
outside the figure (nor a label inside the axes past its edges), no two texts on top of each
other, no legend over data, tick labels that are round numbers, and numbers in titles, labels
and legends written for people. No lab, no root: data like the lessons' own."""
import math
import random
import re

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from xdplab import kvstore, perf, qos  # noqa: E402
from xdplab.features import ModeCosts  # noqa: E402

SLACK = 0.5               # px: rounding of the renderer


# -- what a figure shows, in display space -------------------------------------------------------

def draw(fig):
    """Draw `fig` as its PNG is drawn (Agg, at the figure's dpi)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)                  # a Figure made without pyplot has no canvas yet
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def drawn_tick_labels(axis):
    """The tick labels `axis` draws (those of ticks inside its view; matplotlib keeps others)."""
    return [label for tick in axis._update_ticks() for label in (tick.label1, tick.label2)
            if label.get_visible() and label.get_text().strip()]


def all_tick_labels(axis):
    return {id(label) for tick in axis.get_major_ticks() + axis.get_minor_ticks()
            for label in (tick.label1, tick.label2)}


def texts(fig):
    """Every text the figure draws: titles, axis and tick labels, legend entries, bar labels."""
    hidden = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            hidden |= all_tick_labels(axis) - {id(t) for t in drawn_tick_labels(axis)}
    return [t for t in fig.findobj(Text)
            if id(t) not in hidden and t.get_visible() and t.get_text().strip()
            and (t.axes is None or t.get_clip_on() is False or t.get_clip_box() is None
                 or t.axes.bbox.overlaps(t.get_window_extent()))]


def legends(fig):
    return [lg for lg in [*fig.legends, *(ax.get_legend() for ax in fig.axes)] if lg is not None]


def shrunk(box, px=SLACK):
    return Bbox.from_extents(box.x0 + px, box.y0 + px, box.x1 - px, box.y1 - px)


def inside(box, outer):
    return (box.x0 >= outer.x0 - SLACK and box.y0 >= outer.y0 - SLACK
            and box.x1 <= outer.x1 + SLACK and box.y1 <= outer.y1 + SLACK)


def data_points(ax, per_segment=24):
    """Display points of every line (markers and the segments between them, sampled), of scatter
    dots, inside the axes (what is outside is clipped)."""
    import numpy as np
    found = []
    for line in ax.lines:
        xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
        xy = xy[np.isfinite(xy).all(axis=1)]
        found += list(map(tuple, xy))
        if line.get_linestyle() not in ("None", "", " ") and len(xy) > 1:
            for a, b in zip(xy, xy[1:]):
                found += [tuple(a + (b - a) * k / per_segment) for k in range(1, per_segment)]
    for coll in ax.collections:
        offsets = coll.get_offsets()
        if len(offsets):
            found += list(map(tuple, coll.get_offset_transform().transform(offsets)))
    box = ax.bbox
    return [(x, y) for x, y in found if box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1]


def data_boxes(ax):
    """Display boxes of the bars (and other patches) inside the axes."""
    out = []
    for patch in ax.patches:
        box = patch.get_window_extent()
        if box.width > 0 and box.height > 0 and box.overlaps(ax.bbox):
            out.append(Bbox.intersection(box, ax.bbox))
    return out


NUMBER = re.compile(r"^[−-]?\d[\d,]*(\.\d+)?")


def tick_value(text):
    """The number a tick label says ('−5 s' → -5, '2.5 k' → 2500, '$\\mathdefault{10^{2}}$' →
    100), or None for a name ('rung_pass', 'native mode')."""
    t = text.replace("$", "").replace("\\mathdefault", "").replace("{", "").replace("}", "")
    t = t.replace("−", "-").replace("\\times", "×").strip()
    m = re.fullmatch(r"(?:(\d+(?:\.\d+)?)×)?10\^(-?\d+)", t)
    if m:
        return float(m.group(1) or 1) * 10 ** int(m.group(2)), m.group(1) or "1"
    m = NUMBER.match(t)
    if not m:
        return None
    digits = m.group(0).replace(",", "")
    scale = {"k": 1e3, "M": 1e6, "G": 1e9}.get(t[m.end():].strip()[:1], 1)
    return float(digits) * scale, digits


def significant(digits):
    d = digits.lstrip("-").replace(".", "").lstrip("0")
    return len(d.rstrip("0")) if "." not in digits else len(d)


def round_step(step):
    """1, 2, 2.5, 5 or 3 (15 s, 30 s) times a power of ten."""
    if step <= 0:
        return False
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-12)
    return any(abs(mantissa - m) < 1e-6 for m in (1, 2, 2.5, 3, 5, 10))


# -- the checks -------------------------------------------------------------------------------

def problems(fig):
    """What a reader would trip on, in words; [] when the figure is fine."""
    draw(fig)
    found = []
    shown = texts(fig)
    box = fig.bbox
    for t in shown:
        ext = t.get_window_extent()
        if not inside(ext, box):
            found.append(f"text {t.get_text()!r} lies outside the figure: {ext.extents.round(1)} "
                         f"against {box.extents.round(1)}")
    for ax in fig.axes:
        for t in ax.texts:                      # bar labels, annotations: inside their axes
            if t.get_visible() and t.get_text().strip() and \
                    not inside(t.get_window_extent(), ax.bbox):
                found.append(f"label {t.get_text()!r} runs past the edge of its axes")
    for lg in legends(fig):
        ext = lg.get_window_extent()
        if not inside(ext, box):
            found.append(f"a legend lies outside the figure: {ext.extents.round(1)}")
        own = {id(t) for t in lg.findobj(Text)}
        for ax in fig.axes:
            over = [p for p in data_points(ax) if shrunk(ext).contains(*p)]
            if over:
                found.append(f"a legend covers {len(over)} data points of "
                             f"{ax.get_title() or 'an axes'!r}, e.g. {tuple(map(round, over[0]))}")
            if any(b.overlaps(shrunk(ext)) for b in data_boxes(ax)):
                found.append(f"a legend covers bars of {ax.get_title() or 'an axes'!r}")
        for t in shown:
            if id(t) not in own and shrunk(t.get_window_extent()).overlaps(shrunk(ext)):
                found.append(f"a legend covers the text {t.get_text()!r}")
    for i, a in enumerate(shown):                # no two texts on top of each other
        for b in shown[i + 1:]:
            if a.get_window_extent().width and shrunk(a.get_window_extent(), 1).overlaps(
                    shrunk(b.get_window_extent(), 1)):
                found.append(f"texts {a.get_text()!r} and {b.get_text()!r} overlap")
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if axis.get_offset_text().get_text().strip():
                found.append(f"the {name} axis has an offset/exponent text "
                             f"{axis.get_offset_text().get_text()!r}")
            labels = drawn_tick_labels(axis)
            parsed = [(t.get_text(), tick_value(t.get_text())) for t in labels]
            numbers = sorted({v for _, p in parsed if p for v in [p[0]]})
            steps = [b - a for a, b in zip(numbers, numbers[1:])]
            for text, p in parsed:
                if p is None:
                    continue
                value, digits = p
                step = min(steps) if steps and axis.get_scale() == "linear" else 0
                multiple = step and round_step(step) and abs(value / step - round(value / step)) < 1e-6
                if significant(digits) > 3 and not multiple:
                    found.append(f"{name} tick label {text!r} is not a round number")
    for t in shown:                  # 0.059 ms, 30.03 Mpps, 1,187 ns: yes; 498.2595629043027: no
        s = t.get_text()
        ragged = [n for n in re.findall(r"\d+\.\d{3,}", s) if significant(n) > 3]
        if ragged or re.search(r"\d[eE][+-]?\d", s):
            found.append(f"the text {s!r} has a number not written for people")
    return found


def check(fig):
    found = problems(fig)
    assert not found, "the figure has problems:\n  " + "\n  ".join(found)


# -- the checks catch what they are for ------------------------------------------------------------

def test_the_checks_see_a_clipped_label_a_legend_over_data_and_a_ragged_tick():
    from matplotlib.figure import Figure
    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    for k in range(6):
        ax.plot([0, 25], [k, k + 1], label=f"line {k}")
    ax.set_xticks([0, 25 / 6, 25 / 3], ["0", "4.16667 s", "8.33333 s"])
    ax.legend(loc="center")
    ax.set_title("a title that is far too long for a figure four inches wide, surely " * 2)
    ax.set_xlabel("498.2595629043027 packets")
    found = "\n".join(problems(fig))
    for words in ("lies outside the figure", "a legend covers", "'4.16667 s' is not a round",
                  "not written for people"):
        assert words in found, f"the checks missed {words!r}:\n{found}"


def test_round_tick_labels_pass():
    for text, ok in (("0", True), ("2.5 k", True), ("−5 s", True), ("0.125", True),
                     ("1250", True), ("-4.16667 s", False), ("498.26", False)):
        value, digits = tick_value(text)
        assert (significant(digits) <= 3) == ok, text


# -- representative data, as the lessons measure it ---------------------------------------------

LADDER = ["rung_pass", "rung_drop", "rung_parse", "rung_percpu", "rung_atomic", "rung_hash",
          "rung_update"]


def ladder(rng, slower=1):
    base = dict(zip(LADDER, (9, 9, 13, 16, 26, 41, 88)))
    rounds = {fn: [round(ns * slower * rng.uniform(1.0, 1.4)) for _ in range(5)]
              for fn, ns in base.items()}
    verdicts = {fn: "XDP_PASS" if fn == "rung_pass" else "XDP_DROP" for fn in LADDER}
    return perf.Ladder({fn: min(r) for fn, r in rounds.items()}, rounds, verdicts,
                       {fn: 1 + 5 * 500_001 for fn in LADDER}, 500_000)


def contention(rng, cpus=2):
    alone = {"rung_percpu": 16 * rng.uniform(1, 1.2), "rung_atomic": 26 * rng.uniform(1, 1.2)}
    together = {"rung_percpu": 17.5 * rng.uniform(1, 1.2),
                "rung_atomic": 26 * cpus * 1.4 * rng.uniform(1, 1.5)}
    return perf.Contention(alone, together if cpus > 1 else {},
                           {fn: 3_000_000 * (1 + cpus) for fn in alone}, list(range(cpus)))


def rates(rng, method="live_frames", slower=1):
    r = perf.Rates()
    r.method = method
    first = perf.NO_VETH if method == "live_frames" else perf.NO_VETH_TEST_RUN
    for path, ns in ((first, 38.4), ("veth, native XDP", 92.7), ("veth, generic XDP", 310.5)):
        ns *= slower * rng.uniform(0.8, 1.3)
        r.append(perf.Delivery(path, 1_000_000, 1_000_000, 0, ns * 1e-3, ns))
    return r


def sweep(rng, how="live frames"):
    modes = ("native", "generic") if how == "live frames" else ("test run",)
    ns, sent, counted, dropped = {}, {}, {}, {}
    for mode, (frame, batch) in zip(modes, ((71.3, 1187.6), (243.9, 1620.2))):
        ns[mode] = {b: [round((frame + batch / b) * rng.uniform(1, 1.25), 1) for _ in range(3)]
                    for b in perf.BATCH_SIZES}
        sent[mode] = {b: 300_000 for b in perf.BATCH_SIZES}
        counted[mode] = dict(sent[mode])
        dropped[mode] = {b: 0 for b in perf.BATCH_SIZES}
    return perf.Sweep(ns, sent, counted, dropped, how=how)


def mode_costs(rng):
    ns = {"native": [round(95.3 * rng.uniform(1, 1.3), 1) for _ in range(5)],
          "generic": [round(351.7 * rng.uniform(1, 1.3), 1) for _ in range(5)]}
    n = {m: 1_000_000 for m in ns}
    return ModeCosts(ns, n, dict(n), dict(n), {m: 0 for m in ns})


def measurement(rng, median_us, rate, window=16, n=2000):
    lat = [median_us * math.exp(rng.gauss(0, 0.25)) + rng.expovariate(1 / median_us) * 0.1
           for _ in range(n)]
    lat += [median_us * rng.uniform(5, 40) for _ in range(n // 200)]      # a few slow ones
    return kvstore.Measurement(lat, rate, window, requests=n, correct=n)


def load_test(rng, name, seconds, rtt, backlog, link_rate=1_250_000, interval=0.05):
    """A LoadTest as lesson 08 measures it (10 Mbit/s bottleneck): `rtt(t)` ms, `backlog(t)`
    bytes, with the noise of a real run."""
    test = object.__new__(qos.LoadTest)
    test.name, test.seconds, test.interval, test.link_rate = name, seconds, interval, link_rate
    times = [k * interval for k in range(int(seconds / interval))]
    test.rtts = [(t + rng.uniform(0, 0.01), max(0.02, rtt(t) * rng.uniform(0.8, 1.25)))
                 for t in times if rng.random() > 0.03]
    test.queue = [(t, max(0, int(backlog(t) * rng.uniform(0.9, 1.1)))) for t in times]
    return test


def lesson08_tests(rng):
    full = lambda t: min(1.0, t / 0.6)
    return [load_test(rng, "idle", 1.5, lambda t: 0.06, lambda t: 0),
            load_test(rng, "flood", 4, lambda t: 5 + 420 * full(t), lambda t: 525_000 * full(t)),
            load_test(rng, "flood, policed", 4, lambda t: 0.09, lambda t: 1500 * (t < 0.05)),
            load_test(rng, "two senders", 3, lambda t: 5 + 410 * full(t),
                      lambda t: 512_000 * full(t)),
            load_test(rng, "two senders, policed", 3, lambda t: 0.12, lambda t: 3000 * (t < 0.1)),
            load_test(rng, "fq_codel", 4, lambda t: 1.1 + 3 * (t < 0.3),
                      lambda t: 6_000 + 40_000 * (t < 0.3))]


def unanswered(rng):
    test = load_test(rng, "flood, every ping lost", 2, lambda t: 1.0, lambda t: 500_000)
    test.rtts = []
    return test


FIGURES = {
    "ladder": lambda rng: ladder(rng).chart(),
    "ladder, a slow virtual machine": lambda rng: ladder(rng, slower=40).chart(),
    "contention": lambda rng: contention(rng).chart(),
    "contention, 16 CPUs": lambda rng: contention(rng, cpus=16).chart(),
    "contention, one CPU": lambda rng: contention(rng, cpus=1).chart(),
    "rates": lambda rng: rates(rng).chart(),
    "rates, af_packet": lambda rng: rates(rng, "af_packet").chart(),
    "rates, a slow virtual machine": lambda rng: rates(rng, slower=30).chart(),
    "batch sweep": lambda rng: sweep(rng).chart(),
    "repeat sweep": lambda rng: sweep(rng, "test runs").chart(),
    "reference": lambda rng: perf.reference(rates(rng), ladder(rng)).chart(),
    "mode costs": lambda rng: mode_costs(rng).plot(),
    "kvstore": lambda rng: kvstore.plot({"server alone": measurement(rng, 48.0, 31_250.0),
                                         "with the XDP cache": measurement(rng, 21.0, 77_500.0)}),
    "kvstore, four results": lambda rng: kvstore.plot({
        "server alone": measurement(rng, 48.0, 31_250.0),
        "with the XDP cache": measurement(rng, 21.0, 77_500.0),
        "IPv6 cache": measurement(rng, 23.0, 70_100.0),
        "IPv6 cache, 4 in flight": measurement(rng, 22.0, 50_300.0, window=4)}),
    "qos, lesson 08": lambda rng: qos.plot(*lesson08_tests(rng)),
    "qos, three tests": lambda rng: qos.plot(*lesson08_tests(rng)[:3], title="idle, flood, policed"),
    "qos, one test": lambda rng: qos.plot(lesson08_tests(rng)[1]),
    "qos, no ping answered": lambda rng: qos.plot(lesson08_tests(rng)[1], unanswered(rng)),
    "kvstore, one result": lambda rng: kvstore.plot({"server alone": measurement(rng, 48, 31e3)}),
}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_is_readable(name, seed):
    import matplotlib.pyplot as plt
    fig = FIGURES[name](random.Random(seed))
    check(fig)
    assert fig._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n", "a Chart shows itself in a notebook"
    assert not plt.get_fignums(), "pyplot keeps a figure: a notebook would show it twice"
