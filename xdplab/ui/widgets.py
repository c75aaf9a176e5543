"""Live widgets: maps as tables and charts that refresh themselves while a notebook runs.

    m = prog.maps["counters"]
    m                                   # last line of a cell: a live table (JupyterLab)
    m.widget(top=10, interval=1)        # MapView: the same table, with options
    m.widget(chart=True, field="packets")   # RatesChart: packets/s per key, as a line chart
    RatesChart({"rx": lambda: ..., "tx": lambda: ...})   # any counters you can read

Every widget here refreshes through one engine, `Refresher`: a daemon thread calls a function
every `interval` seconds, never blocking the cells you run meanwhile. A refresher stops for good
when its widget is closed (widget.close()), when its lab closes, when the program behind it is
closed, and when Python exits; `widgets.active()` lists the ones running, `widgets.stop_all()`
stops them all. Errors of a refresh are shown in the widget's status line, not raised.

For other live widgets: subclass `LiveWidget` (title, Pause, interval, status line, an HTML body;
implement `_refresh()` and call `self._publish(html)`), or use `Refresher` with any ipywidget.
`CSS`, `fmt_rate`, `fmt_per_second`, `fmt_value`, `sparkline` and `line_chart` give the same look
(JupyterLab theme variables, so light and dark themes both read well; code and hex dumps in a
`<pre>` scroll sideways instead of wrapping inside a word). A widget whose refresher stopped
shows "—" for its rates, never the last one as if it were live.
"""
from __future__ import annotations

import atexit
import collections
import heapq
import itertools
import math
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Literal, Mapping, Sequence

import ipywidgets

from xdplab import text, views
from xdplab.errors import ClosedError, LabError, check_count, check_positive
from xdplab.text import CSS, fmt_per_second, fmt_rate, fmt_value        # noqa: F401 — xdplab.widgets' names

if TYPE_CHECKING:
    from xdplab.lab.topology import Lab
    from xdplab.maps import Map
    from xdplab.maps.codecs import Decoded

_e = text.escape
_axis = text.axis_label

THREAD_PREFIX = "xdplab-refresh"


# -- the refresh engine ----------------------------------------------------------------------------
class Stop(Exception):
    """Raise it from a refresh function to stop refreshing for good; its text becomes the status."""


_running = set()                 # refreshers whose thread is alive
_running_lock = threading.Lock()


def active() -> list[Refresher]:
    """The refreshers whose background thread is alive now."""
    with _running_lock:
        return list(_running)


def stop_all() -> None:
    """Stop every refresher of this process (and wait for its thread)."""
    for r in active():
        r.stop("stopped (stop_all)")


atexit.register(stop_all)


class Refresher:
    """Calls `fn()` every `interval` seconds in a daemon thread (named xdplab-refresh-<name>).

        r = Refresher(fn, 0.5, widget=w, lab=lab, name="traffic")
        r.start(); r.pause(); r.resume(); r.interval = 2; r.refresh(); r.stop()
        box = VBox([..., r.status])             # the status line: errors, pause, stop reason

    Stops for good (`r.stopped` tells why) when `widget` is closed, when `lab` closes, when
    `fn` raises Stop or a ClosedError (the program or lab behind it is closed), on
    stop() and at exit. While a widget tracks its views (JupyterLab does), the thread also ends
    when the last view of `widget` is removed (the cell's output cleared or re-run) and starts
    again when the widget is shown anew. Other errors are shown in `status` and the refresh goes
    on. A refresh that takes more than half the interval delays the next one (ticks are skipped,
    `skipped` counts them): the thread never holds more than about half of a core, so the cells
    you run stay responsive. `refresh()` runs `fn` once at once in the caller's thread."""

    def __init__(self, fn: Callable[[], object], interval: float = 0.5, *,
                 widget: ipywidgets.Widget | None = None, lab: Lab | None = None,
                 name: str = "widget") -> None:
        self.fn, self.name = fn, name
        self._interval = text.check_interval(interval)
        self.count = 0                       # refreshes that completed
        self.errors = 0
        self.skipped = 0                     # ticks skipped because a refresh took too long
        self.last_error = None
        self.last_duration = None            # seconds the last refresh took
        self.stopped = None                  # why it stopped for good (None: it did not)
        self.paused = False
        self.status = ipywidgets.HTML("", layout=ipywidgets.Layout(margin="0 0 0 4px"))
        self._thread = None
        self._wake = threading.Event()
        self._lock = threading.RLock()       # one refresh at a time (thread vs refresh())
        self._done = threading.Condition()
        self._state = threading.Lock()       # start() vs a thread deciding to end
        self._exiting = False
        self._hidden = False
        self._views = 0
        self.on_stop = []                    # callables run once, with the reason, when it stops
        if widget is not None:
            widget.observe(self._on_comm, names="comm")
            if "_view_count" in widget.trait_names():
                widget.observe(self._on_views, names="_view_count")
                if widget._view_count is None:
                    widget._view_count = 0          # ask the front-end to count its views
        if lab is not None:
            me, why = weakref.ref(self), f"stopped: lab {getattr(lab, 'id', '')} closed"

            def lab_closed():
                r = me()
                if r is not None:
                    r.stop(why)
            lab.on_close(lab_closed)

    # -- settings -----------------------------------------------------------------------------------

    @property
    def interval(self) -> float:
        """Seconds between two refreshes; setting it checks it and re-plans the next tick."""
        return self._interval

    @interval.setter
    def interval(self, value: float) -> None:
        self._interval = text.check_interval(value)
        self._wake.set()                     # the thread re-plans its next tick now

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # -- control ------------------------------------------------------------------------------------
    def start(self) -> Refresher:
        """Start the thread (no-op when it runs, or once the refresher was stopped for good)."""
        with self._state:
            old = self._thread
            if self.stopped is not None or (old is not None and old.is_alive() and not self._exiting):
                return self
        if old is not None and old is not threading.current_thread():
            old.join(timeout=10)                 # a thread that was ending: let it finish
        with self._state:
            if self.stopped is not None or self._thread is not old:
                return self
            self._exiting = False
            self._wake.clear()
            self._thread = threading.Thread(target=self._run, name=f"{THREAD_PREFIX}-{self.name}",
                                            daemon=True)
            with _running_lock:
                _running.add(self)
            self._thread.start()
        return self

    def stop(self, reason: str = "stopped") -> None:
        """Stop for good and wait for the thread to end. Safe to call twice, from any thread."""
        if self.stopped is None:
            self.stopped = reason
            self._show(f"■ {reason}", "var(--jp-ui-font-color2, #757575)")
            for fn in self.on_stop:
                try:
                    fn(reason)
                except Exception:            # noqa: BLE001 — a stopping widget must not raise
                    pass
        self._wake.set()
        with self._done:
            self._done.notify_all()
        t = self._thread
        if t is not None and t is not threading.current_thread() and t.is_alive():
            t.join(timeout=10)

    def pause(self) -> None:
        """No automatic refresh until resume() (refresh() still works)."""
        self.paused = True
        if self.stopped is None:
            self._show("⏸ paused", "var(--jp-ui-font-color2, #757575)")

    def resume(self) -> None:
        """Refresh automatically again (after pause())."""
        self.paused = False
        if self.stopped is None:
            self._show("")
        self._wake.set()

    def refresh(self) -> bool:
        """Run one refresh now, in this thread; returns False if it failed (see status)."""
        return self._tick()

    def wait(self, n: int = 1, timeout: float = 10.0) -> bool:
        """Block until `n` more refreshes have completed (True), or until `timeout` seconds
        passed or the refresher stopped (False). For tests and scripts."""
        deadline, target = time.monotonic() + timeout, self.count + n
        with self._done:
            while self.count < target:
                left = deadline - time.monotonic()
                if left <= 0 or self.stopped is not None:
                    return False
                self._done.wait(min(left, 0.5))
        return True

    # -- hooks --------------------------------------------------------------------------------------
    def _on_comm(self, change):
        if change["new"] is None:           # ipywidgets' Widget.close() drops the comm
            self.stop("stopped: widget closed")

    def _on_views(self, change):
        views = change["new"] or 0
        if views == 0 and self._views > 0:
            self._hidden = True             # nothing shows it: let the thread end
            self._wake.set()
        elif views > 0 and self._hidden:
            self._hidden = False
            self.start()
        self._views = views

    # -- the thread ---------------------------------------------------------------------------------
    def _show(self, text, colour=None):
        style = f' style="color:{colour}"' if colour else ""
        value = f'<small{style}>{_e(text)}</small>' if text else ""
        if self.status.value != value:
            self.status.value = value

    def _tick(self):
        end = None                               # why to stop for good, after the lock is released
        with self._lock:
            if self.stopped is not None:
                return False
            t0 = time.monotonic()
            try:
                self.fn()
            except Stop as e:
                end = str(e) or "stopped"
            except ClosedError as e:             # the program or lab behind it is gone
                end = f"stopped: {e.message}"
            except LabError as e:
                self._failed(e, e.message + (f" → {e.hint}" if e.hint else ""))
            except Exception as e:               # shown, not raised in a thread
                self._failed(e, f"{type(e).__name__}: {e}")
            else:
                if self.last_error is not None:
                    self.last_error = None
                    self._show("⏸ paused" if self.paused else "", "var(--jp-ui-font-color2, #757575)")
                with self._done:
                    self.count += 1
                    self._done.notify_all()
                return True
            finally:
                self.last_duration = time.monotonic() - t0
        if end is not None:
            self.stop(end)
        return False

    def _failed(self, exc, text):
        self.errors += 1
        self.last_error = exc
        self._show(f"⚠ refresh failed: {text}", "var(--jp-error-color1, #d32f2f)")

    def _run(self):
        try:
            beat = time.monotonic()                 # when the last tick was due
            if self.last_duration is None:          # not refreshed yet: the first tick at once
                beat -= self._interval
            extra = 0.0                             # delay after a slow refresh
            while True:
                with self._state:
                    if self.stopped is not None or self._hidden:
                        self._exiting = True
                        break
                wait = beat + self._interval + extra - time.monotonic()
                if wait > 0:                        # woken early (interval changed, stop...):
                    self._wake.wait(wait)           # plan again
                    self._wake.clear()
                    continue
                due, t0 = beat + self._interval + extra, time.monotonic()
                if not self.paused:
                    self._tick()
                took = time.monotonic() - t0
                beat = due if t0 - due < self._interval else t0     # a fixed beat, no bursts
                extra = max(0.0, 2 * took - self._interval)         # at most half the time busy
                if extra:
                    self.skipped += math.ceil(extra / self._interval)
        finally:
            with _running_lock:
                _running.discard(self)

    def __repr__(self) -> str:
        state = (self.stopped or ("paused" if self.paused else "running" if self.running
                                  else "not running"))
        return f"<Refresher {self.name} every {self._interval:g} s: {state}, {self.count} refreshes>"


# -- formatting shared by the widgets ---------------------------------------------------------------
# (CSS, fmt_rate, fmt_per_second, fmt_value and the axis labels are xdplab.text's, which the
# runtime's HTML tables use too; imported above under their names here)
# XDP actions keep their meaning in every chart; other lines take the palette in turn
ACTION_COLOURS = {"XDP_PASS": "var(--jp-success-color1,#388e3c)",
                  "XDP_DROP": "var(--jp-error-color1,#d32f2f)",
                  "XDP_TX": "var(--jp-brand-color1,#1976d2)",
                  "XDP_REDIRECT": "var(--jp-accent-color1,#7b1fa2)",
                  "XDP_ABORTED": "var(--jp-warn-color1,#f57c00)"}
PALETTE = ("var(--jp-brand-color1,#1976d2)", "var(--jp-warn-color1,#f57c00)",
           "var(--jp-success-color1,#388e3c)", "var(--jp-error-color1,#d32f2f)",
           "var(--jp-accent-color1,#7b1fa2)", "var(--jp-info-color1,#0097a7)",
           "var(--jp-brand-color3,#90caf9)", "var(--jp-warn-color2,#ffb74d)")


def sparkline(values: Iterable[float | None], slots: int | None = None, width: float = 84,
              height: float = 18, colour: str = PALETTE[0]) -> str:
    """Inline SVG of a small line (e.g. the recent rates of one row), the newest value at the
    right end of `slots` places; '' for fewer than 2 points or when all are zero (a flat line
    tells nothing, and an unchanged table is not sent again)."""
    values = [v for v in values if v is not None]
    if len(values) < 2 or not any(values):
        return ""
    slots = max(slots or 0, len(values))
    top, low = max(max(values), 0) or 1, min(min(values), 0)
    step, first = (width - 2) / (slots - 1), slots - len(values)
    pts = " ".join(f"{1 + (first + i) * step:.1f},{height - 1 - (v - low) / (top - low) * (height - 2):.1f}"
                   for i, v in enumerate(values))
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'style="vertical-align:middle"><title>{_e(fmt_rate(values[-1]))}/s now, '
            f'{_e(fmt_rate(max(values)))}/s at most</title><polyline points="{pts}" '
            f'style="fill:none;stroke:{colour};stroke-width:1.3"/></svg>')


def _nice(x):
    """The smallest 1, 2, 2.5, 5 × 10^n at or above x."""
    if x <= 0:
        return 1
    e = 10 ** math.floor(math.log10(x))
    return next(m * e for m in (1, 2, 2.5, 5, 10) if m * e >= x * (1 - 1e-9))


TIME_STEPS = (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)


def time_ticks(window: float, most: int = 7) -> list[float]:
    """Seconds ago at which a time axis of `window` seconds puts its labels: multiples of a
    round step (1, 2, 5, 10, 15, 30 s ...), at most `most` of them, 0 ("now") included."""
    step = next((t for t in TIME_STEPS if window / t <= most - 1), None)
    if step is None:
        step = _nice(window / (most - 1))
    n = int(math.floor(window / step + 1e-9))
    return [round(k * step, 6) for k in range(n + 1)]


def _ago(seconds):
    """A time-axis label: 'now', '−5 s', '−2.5 s', '−2 min'."""
    if seconds == 0:
        return "now"
    if seconds >= 120 and seconds % 60 == 0:
        return f"−{seconds / 60:g} min"
    return f"−{seconds:g} s"


def line_chart(series: Mapping[str, Iterable[tuple[float, float | None]]], window: float,
               now: float, colours: Mapping[str, str] | None = None, width: float = 600,
               height: float = 220, unit: str = "per second", end_label: str = "now") -> str:
    """Inline SVG of lines over the last `window` seconds: `series` is {name: [(time, y), ...]}
    (time.monotonic() times), `now` the right edge (labelled `end_label`). Axes, grid, labels at
    round steps (time_ticks); colours from `colours` ({name: css colour}), else
    ACTION_COLOURS/PALETTE."""
    left, right, top, bottom = 58, 12, 16, 24
    w, h = width - left - right, height - top - bottom
    ys = [y for pts in series.values() for t, y in pts if y is not None and t >= now - window]
    ymax, ymin = _nice(max(ys, default=0)), min(0.0, min(ys, default=0))
    if ymin < 0:
        ymin = -_nice(-ymin)
    ticks = 4
    out = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for i in range(ticks + 1):                       # horizontal grid and y labels
        yv = ymin + (ymax - ymin) * i / ticks
        y = top + h - h * i / ticks
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'style="stroke:var(--jp-border-color2,#e0e0e0);stroke-width:1"/>'
                   f'<text x="{left - 6}" y="{y + 3:.1f}" text-anchor="end">{_e(_axis(yv))}</text>')
    for ago in time_ticks(window):                    # x labels: seconds ago, round steps
        x = left + w * (window - ago) / window
        anchor = "end" if ago == 0 else "start" if x - left < 14 else "middle"
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + h}" y2="{top + h + 3}" '
                   f'style="stroke:var(--jp-border-color1,#bdbdbd)"/>'
                   f'<text x="{x:.1f}" y="{top + h + 15}" text-anchor="{anchor}">{_e(end_label if ago == 0 else _ago(ago))}</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + h}" '
               f'style="stroke:var(--jp-border-color1,#bdbdbd)"/><line x1="{left}" x2="{left + w}" '
               f'y1="{top + h}" y2="{top + h}" style="stroke:var(--jp-border-color1,#bdbdbd)"/>'
               f'<text x="{left}" y="{top - 5}" text-anchor="start">{_e(unit)}</text>')
    colours = colours or {}
    for i, (name, pts) in enumerate(series.items()):
        pts = [(t, y) for t, y in pts if y is not None and t >= now - window - 1e-9]
        if not pts:
            continue
        colour = colours.get(name) or ACTION_COLOURS.get(name) or PALETTE[i % len(PALETTE)]
        xy = " ".join(f"{left + w * (t - (now - window)) / window:.1f},"
                      f"{top + h - h * (y - ymin) / (ymax - ymin):.1f}" for t, y in pts)
        out.append(f'<polyline points="{xy}" style="fill:none;stroke:{colour};stroke-width:1.8;'
                   f'stroke-linejoin:round"><title>{_e(name)}</title></polyline>')
    out.append("</svg>")
    return "".join(out)


# -- what a map holds, as columns -------------------------------------------------------------------
def _columns(codec, label):
    """[(name, codec)] of a key or value: the fields of a struct, or one column."""
    if codec.fields is not None:
        return [(n, c) for n, c, _ in codec.fields]
    return [(label, codec)]


def _cells(codec, v):
    return list(v) if codec.fields is not None else [v]


def _primary(m, field):
    """Index of the counter that sorts rows and feeds rates history: None for a scalar value,
    the index of `field` (default: the first counter field) in a struct; -1 when there is none."""
    vc = m.value_codec
    if vc.fields is None:
        if field is not None:
            raise LabError(f"the values of map {m.name!r} are not a struct, so they have no field "
                           f"{field!r}", "leave field out")
        return None if vc.counter else -1
    names = [n for n, _, _ in vc.fields]
    if field is not None:
        if field not in names:
            raise LabError(f"the values of map {m.name!r} have no field {field!r}",
                           f"its fields: {', '.join(names)}")
        return names.index(field)
    return next((i for i, (_, c, _) in enumerate(vc.fields) if c.counter), -1)


def _pick(value, index):
    return value if index is None else value[index]


def _nonzero(v):
    return any(_nonzero(x) for x in v) if isinstance(v, tuple) else bool(v)


def _key_text(k):
    if isinstance(k, tuple):
        return " ".join(fmt_value(x) for x in k)
    return fmt_value(k)


def _select_keys(snap, keys):
    """Only the entries whose key is one of `keys` (typed keys, or their text: "10.0.0.1")."""
    if keys is None:
        return snap
    wanted = set(keys)
    texts = {str(k) for k in keys}
    return {k: v for k, v in snap.items() if k in wanted or _key_text(k) in texts or str(k) in texts}


Row = collections.namedtuple("Row", "key value rate changed per_cpu history")
Row.__doc__ = """One row of a MapView: the typed key and value, the per-second rate (same shape
as the value; None before the second refresh), the names of the value columns that changed since
the previous refresh, the per-CPU values (a tuple, when the per-CPU toggle is on) and the recent
rates of the sorting counter."""

INTERVALS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)


def _intervals(value):
    return [(f"every {v:g} s", v) for v in sorted(set(INTERVALS) | {value})]


class LiveWidget(ipywidgets.VBox):
    """The frame of every live widget: a title, a row of controls (Pause, the refresh interval,
    `extra` controls, the refresher's status line) and a body (an ipywidgets.HTML). A subclass
    implements `_refresh()`, which reads and calls `self._publish(html)`, and calls `self._begin()`
    at the end of its __init__ (the first refresh at once, then the thread). When the refresher
    stops for good (lab or program closed, stop()), `_stopped_html(reason)` (if it returns text)
    replaces the body once, so that nothing stale reads as live (MapView and RatesChart show "—"
    for their rates then); a refresh finishing late cannot overwrite it.

        w.html  w.pause()  w.resume()  w.paused  w.interval = 2  w.refresher  w.close()
    """

    def __init__(self, title: str, interval: float = 0.5, *, lab: Lab | None = None,
                 name: str = "widget", extra: Sequence[ipywidgets.Widget] = ()) -> None:
        interval = text.check_interval(interval)
        self.sent = 0                              # bodies sent to the browser
        self.title = ipywidgets.HTML(title)
        self.body = ipywidgets.HTML("")
        self.pause_button = ipywidgets.ToggleButton(False, description="Pause", icon="pause",
                                                    tooltip="stop refreshing (what is shown stays)",
                                                    layout=ipywidgets.Layout(width="90px"))
        self.interval_box = ipywidgets.Dropdown(options=_intervals(interval), value=interval,
                                                tooltip="refresh interval",
                                                layout=ipywidgets.Layout(width="110px"))
        self._publish_lock = threading.Lock()
        self._final = False                        # the stopped body is shown
        self.refresher = Refresher(self._refresh, interval, widget=self, lab=lab, name=name)
        self.refresher.on_stop.append(self._on_stopped)
        controls = ipywidgets.HBox([self.pause_button, self.interval_box, *extra,
                                    self.refresher.status],
                                   layout=ipywidgets.Layout(align_items="center"))
        self._parts = [self.title, self.body, self.pause_button, self.interval_box, *extra,
                       self.refresher.status, controls]
        super().__init__([self.title, controls, self.body])
        self.pause_button.observe(self._on_pause, names="value")
        self.interval_box.observe(lambda c: setattr(self.refresher, "interval", c["new"]),
                                  names="value")

    def _begin(self):
        self.refresher.refresh()                   # the first picture at once, in this cell
        error = self.refresher.last_error
        if error is not None and not isinstance(error, LabError):
            self.close()
            raise error                            # a bug, not a state of the lab: say it now
        self.refresher.start()

    def _publish(self, text, final=False):
        with self._publish_lock:
            if self._final and not final:
                return                             # stopped: its last word stays
            self._final = self._final or final
            if text != self.body.value:            # only what changed goes to the browser
                self.body.value = text
                self.sent += 1

    def _stopped_html(self, reason):
        """The body to show once the refresher stopped for good (None: leave the last one)."""
        return None

    def _on_stopped(self, reason):
        text = self._stopped_html(reason)
        if text is not None:
            self._publish(text, final=True)

    @property
    def html(self) -> str:
        """The body's HTML as last sent."""
        return self.body.value

    @property
    def interval(self) -> float:
        """Seconds between two refreshes (the dropdown follows a value set from code)."""
        return self.refresher.interval

    @interval.setter
    def interval(self, value: float) -> None:
        self.refresher.interval = value            # checks it
        self.interval_box.options = _intervals(self.refresher.interval)
        self.interval_box.value = self.refresher.interval

    @property
    def paused(self) -> bool:
        return self.refresher.paused

    def pause(self) -> None:
        """Stop refreshing until resume(), as the Pause button does."""
        self.pause_button.value = True

    def resume(self) -> None:
        self.pause_button.value = False

    def _on_pause(self, change):
        if change["new"]:
            self.refresher.pause()
            self.pause_button.description, self.pause_button.icon = "Resume", "play"
        else:
            self.refresher.resume()
            self.pause_button.description, self.pause_button.icon = "Pause", "pause"

    def _refresh(self):
        raise NotImplementedError

    def close(self) -> None:
        """Stop refreshing and close the widget and its parts (their views disappear)."""
        if hasattr(self, "refresher"):
            self.refresher.stop("stopped: widget closed")
        for w in getattr(self, "_parts", ()):
            w.close()
        super().close()


class MapView(LiveWidget):
    """A live table of a map: m.widget() or MapView(m, top=20, interval=0.5, ...).

    The top `top` entries sorted by value (the first counter, or `field`) or by key, with the
    total count; a rate column (per second, between two refreshes) next to each counter; cells
    that changed since the previous refresh flash; per CPU: one column per CPU (per-CPU maps);
    a sparkline of each row's recent rate. `keys` shows only those keys (typed, or as text such as
    "XDP_PASS" or "10.11.0.1"). Controls: pause, refresh interval, sort, per CPU (changing sort
    or per CPU reads the map at once, also while paused).

    Read it from code: `rows` (a list of Row), `total` (entries in the map), `html` (the table);
    `refresher` runs it (`refresher.wait()`, `refresher.count`). `close()` stops it."""

    def __init__(self, map: Map, top: int = 20, interval: float = 0.5,
                 sort: Literal["value", "key"] = "value", rates: bool = True,
                 per_cpu: bool = False, keys: Collection[Decoded] | None = None,
                 field: str | None = None, history: int = 30) -> None:
        m = map
        m.ensure_readable()
        check_count(top, "top", example=20)
        if sort not in ("value", "key"):
            raise LabError(f"sort must be 'value' or 'key', not {sort!r}")
        if per_cpu and not m.percpu:
            raise LabError(f"map {m.name!r} is a {m.kind} map: it has one value per key, not one "
                           "per CPU", "per_cpu=True is for BPF_PERCPU_ARRAY / BPF_PERCPU_HASH maps")
        self.map, self.chosen_keys, self.field = m, keys, field
        self._primary = _primary(m, field)
        self._top, self._rates, self._history = top, bool(rates), history
        self.rows, self.total = [], 0
        self._prev = self._prev_cpu = self._prev_t = None
        self._hist = {}
        self.sort_box = ipywidgets.Dropdown(options=[("by value ↓", "value"), ("by key", "key")],
                                            value=sort, layout=ipywidgets.Layout(width="110px"))
        self.per_cpu_button = ipywidgets.ToggleButton(
            bool(per_cpu), description="per CPU", disabled=not m.percpu,
            tooltip="one column per CPU" if m.percpu else "not a per-CPU map",
            layout=ipywidgets.Layout(width="90px"))
        super().__init__(f'<span class="xdplab-w"><b>{_e(m.name)}</b> '
                         f'<span class="cap">{_e(m.describe())}</span></span>', interval,
                         lab=m.program.lab, name=f"map-{m.name}",
                         extra=[self.sort_box, self.per_cpu_button])
        self.table = self.body
        self.sort_box.observe(self._redo, names="value")
        self.per_cpu_button.observe(self._redo, names="value")
        self._begin()

    # -- options, also settable from code -------------------------------------------------------------
    @property
    def sort(self) -> str:
        """How rows are sorted: "value" (the sorting counter, largest first) or "key"."""
        return self.sort_box.value

    @sort.setter
    def sort(self, value: Literal["value", "key"]) -> None:
        if value not in ("value", "key"):
            raise LabError(f"sort must be 'value' or 'key', not {value!r}")
        self.sort_box.value = value

    @property
    def per_cpu(self) -> bool:
        """Whether the table has a column per CPU (per-CPU maps only)."""
        return self.per_cpu_button.value

    @per_cpu.setter
    def per_cpu(self, value: bool) -> None:
        if value and not self.map.percpu:
            raise LabError(f"map {self.map.name!r} is not a per-CPU map")
        self.per_cpu_button.value = bool(value)

    @property
    def top(self) -> int:
        """How many entries the table shows; setting it reads the map at once."""
        return self._top

    @top.setter
    def top(self, value: int) -> None:
        self._top = check_count(value, "top", example=20)
        self.refresher.refresh()

    def _redo(self, change):
        self.refresher.refresh()                 # a new view of the data: read it now

    # -- one refresh ----------------------------------------------------------------------------------
    def _refresh(self):
        m, vc = self.map, self.map.value_codec
        per_cpu = self.per_cpu and m.percpu
        now = time.monotonic()
        cpu_snap = None
        m.program.check_open()          # a closed program stops the view (ClosedError)
        if per_cpu:
            cpu_snap = _select_keys(m.snapshot(per_cpu=True), self.chosen_keys)
            snap = {k: _combine(vc, v) for k, v in cpu_snap.items()}
        else:
            snap = _select_keys(m.snapshot(), self.chosen_keys)
        shown = self._order(snap)
        prev, prev_cpu = self._prev, self._prev_cpu
        dt = now - self._prev_t if self._prev_t is not None else 0
        counting = self._rates and self._primary != -1
        rows, hist = [], {}
        for k, v in shown:
            rate = None
            if counting and prev is not None and dt > 0:
                rate = _rates_of(vc, prev.get(k), v, dt)
            p = prev.get(k) if prev is not None else None
            changed = frozenset() if prev is None else _changed(vc, p, v)
            h = self._hist.get(k) or collections.deque(maxlen=self._history)
            if rate is not None:
                h.append(_pick(rate, self._primary))
            hist[k] = h
            cpus = cpu_snap[k] if cpu_snap is not None else None
            if cpus is not None and prev_cpu is not None and k in prev_cpu:
                changed |= {f"{n}@{c}" for c, (a, b) in enumerate(zip(prev_cpu[k], cpus))
                            for n in _changed(vc, a, b)}
            rows.append(Row(k, v, rate, changed, cpus, tuple(h)))
        self._hist = hist                        # history only for the rows shown
        self._prev, self._prev_cpu, self._prev_t = snap, cpu_snap, now
        self.rows, self.total = rows, len(snap)
        self._publish(self._render(rows, len(snap), per_cpu))

    def _stopped_html(self, reason):
        """The last rows read, with "—" for every rate: a stopped table measures nothing."""
        return self._render(self.rows, self.total, self.per_cpu and self.map.percpu, stopped=reason)

    def _order(self, snap):
        """The `top` entries to show, as [(key, value)]: heapq, never a full sort of a big map."""
        pi = self._primary
        if self.sort == "value" and pi != -1:
            if pi is None:
                return heapq.nlargest(self._top, snap.items(), key=lambda kv: kv[1])
            return heapq.nlargest(self._top, snap.items(), key=lambda kv: kv[1][pi])
        if self.map.kind in ("array", "percpu_array"):
            return list(itertools.islice(snap.items(), self._top))     # index order
        try:
            return heapq.nsmallest(self._top, snap.items(), key=lambda kv: kv[0])
        except TypeError:                          # keys of mixed types ("UDP" and 253)
            return heapq.nsmallest(self._top, snap.items(),
                                   key=lambda kv: (type(kv[0]).__name__, str(kv[0])))

    def _render(self, rows, total, per_cpu, stopped=None):
        m = self.map
        kcols, vcols = _columns(m.key_codec, "key"), _columns(m.value_codec, "value")
        counting = self._rates and self._primary != -1
        cpus = []
        if per_cpu:
            cpus = sorted({c for r in rows if r.per_cpu for c, v in enumerate(r.per_cpu)
                           if _nonzero(v)}) or [0]
        head = [f'<th title="{_e(c.kinds())}">{_e(n)}</th>' for n, c in kcols]
        for n, c in vcols:
            head.append(f'<th class="n">{_e(n)}</th>')
            if counting and c.counter:
                head.append(f'<th class="n" title="per second, between the last two refreshes">'
                            f'{_e(n)}/s</th>')
            head += [f'<th class="n" title="this CPU\'s own copy">{_e(n)}<br>'
                     f'<small>cpu {c_}</small></th>' for c_ in cpus]
        spark = counting and self._history > 1
        if spark:
            pname = vcols[self._primary][0] if self._primary is not None else "value"
            head.append(f'<th title="the last {self._history} rates">{_e(pname)}/s, recent</th>')
        body = []
        for r in rows:
            cells = [f'<td class="k">{_e(fmt_value(x))}</td>' for x in _cells(m.key_codec, r.key)]
            values = _cells(m.value_codec, r.value)
            rates = (_cells(m.value_codec, r.rate) if r.rate is not None and stopped is None
                     else [None] * len(values))
            percpu = ([_cells(m.value_codec, v) for v in r.per_cpu] if r.per_cpu is not None
                      else None)
            for i, ((n, c), v) in enumerate(zip(vcols, values)):
                chg = " chg" if n in r.changed else ""
                num = "n" if isinstance(v, (int, float)) and not isinstance(v, bool) else "k"
                cells.append(f'<td class="{num}{chg}">{_e(fmt_value(v, c.counter))}</td>')
                if counting and c.counter:
                    cells.append(f'<td class="n r">{_e(fmt_rate(rates[i]))}</td>')
                for cpu in cpus:
                    x = percpu[cpu][i] if percpu is not None else None
                    chg = " chg" if f"{n}@{cpu}" in r.changed else ""
                    cells.append(f'<td class="n c{chg}">{_e(fmt_value(x, c.counter))}</td>')
            if spark:
                cells.append(f"<td>{sparkline(r.history, self._history)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        shown = (f"top {len(rows):,} of {total:,} entries" if total > len(rows)
                 else f"{total:,} entr{'y' if total == 1 else 'ies'}")
        if self.chosen_keys is not None:
            shown += " (chosen keys)"
        if self.sort == "value" and self._primary != -1:
            notes = [shown, f"sorted by {vcols[self._primary or 0][0]} ↓"]
        else:
            notes = [shown, "sorted by key"]
        if per_cpu and m.ncpus > len(cpus):
            notes.append(f"CPUs whose copies are all zero hidden ({len(cpus)} of {m.ncpus} shown)")
        took = self.refresher.last_duration or 0
        if stopped is not None:
            notes.append(f"{stopped}: the last values read, no live rates")
        elif took > self.refresher.interval / 2:
            notes.append(f"a read takes about {took:.1f} s: refreshing less often")
        if not rows:
            body.append(f'<tr><td class="c" colspan="{len(head)}">empty</td></tr>')
        return (f'{CSS}<div class="xdplab-w"><table><thead><tr>{"".join(head)}</tr></thead>'
                f'<tbody>{"".join(body)}</tbody></table><div class="cap">{_e(" · ".join(notes))}'
                f'</div></div>')

    def __repr__(self) -> str:
        return f"<MapView {self.map.name}: {len(self.rows)} of {self.total} entries, {self.refresher!r}>"


def _combine(codec, values):
    from xdplab.maps import combine
    return combine(codec, values)


def _rates_of(codec, prev, cur, dt):
    from xdplab.maps import rates
    return rates({0: prev} if prev is not None else {}, {0: cur}, dt, codec)[0]


def _changed(codec, prev, cur):
    """Names of the value columns that differ between two values of one key."""
    if prev is None:
        return frozenset(n for n, _ in _columns(codec, "value"))
    if codec.fields is None:
        return frozenset() if prev == cur else frozenset(["value"])
    return frozenset(n for (n, _, _), a, b in zip(codec.fields, prev, cur) if a != b)


# -- a live line chart ------------------------------------------------------------------------------
class RatesChart(LiveWidget):
    """A live line chart of counters: RatesChart(sources, window=30, interval=0.5).

    `sources` is a Map — one line per key (the `keys` you name, else the `max_lines` busiest),
    of the counter `field` of struct values (default: the first counter) — or a dict
    {name: callable returning a number}, or one callable. With rates=True (the default) each
    line is the per-second rate of its counter between two refreshes (a counter that goes down
    was reset); rates=False plots the numbers as they are. The last `window` seconds are shown.
    A chart of a Map stops when its lab closes; give `lab=` to tie a chart of callables to one.

    Read it from code: `series` ({name: [(time, y), ...]}), `last` ({name: latest y}), `html`.
    Controls: pause and refresh interval. `close()` stops it."""

    def __init__(self, sources: Map | Callable[[], float] | dict[str, Callable[[], float]],
                 window: float = 30, interval: float = 0.5,
                 keys: Collection[Decoded] | None = None, field: str | None = None,
                 rates: bool = True, max_lines: int = 8, title: str | None = None,
                 lab: Lab | None = None, width: float = 600, height: float = 220) -> None:
        from xdplab.maps import Map
        check_positive(window, "window", unit="seconds", example=30)
        self.map = sources if isinstance(sources, Map) else None
        if self.map is not None:
            self.map.ensure_readable()
            self._primary = _primary(self.map, field)
            if self._primary == -1:
                raise LabError(f"the values of map {self.map.name!r} hold no counter to chart",
                               "chart a map whose values are integers or structs of integers")
            lab, name = self.map.program.lab, self.map.name
        else:
            if keys is not None or field is not None:
                raise LabError("keys= and field= choose what to chart from a Map",
                               "with callables, name each line in the dict instead")
            if callable(sources):
                sources = {"value": sources}
            if not isinstance(sources, dict) or not sources or not all(map(callable, sources.values())):
                raise LabError("sources must be a Map, a callable, or a dict {name: callable}",
                               "e.g. RatesChart({'passed': lambda: m.snapshot()['XDP_PASS'].packets})")
            name = "chart"
        self.sources, self.chosen_keys, self.field, self.rates = sources, keys, field, bool(rates)
        self.window, self.max_lines, self.size = float(window), max_lines, (width, height)
        self.series, self.last = {}, {}
        self._prev = self._prev_t = None
        self._line_keys, self._colours = {}, {}
        label = title or (f"{self.map.name}" + (f" · {field}" if field else "") if self.map is not None
                          else ", ".join(map(str, sources)))
        super().__init__(f'<span class="xdplab-w"><b>{_e(label)}</b> <span class="cap">'
                         f'{"per second" if self.rates else "values"}, last {self.window:g} s'
                         '</span></span>', interval, lab=lab, name=f"chart-{name}")
        self.chart = self.body
        self._begin()

    def _read(self):
        """({line name: number} now, {line name: previous number})."""
        if self.map is None:
            out = {}
            for name, fn in self.sources.items():
                v = fn()
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise LabError(f"the source {name!r} returned {v!r}, not a number",
                                   "make each callable return one number, e.g. "
                                   "lambda: m.snapshot()['XDP_PASS'].packets")
                out[name] = v
            prev, self._prev = self._prev or {}, out
            return out, prev
        self.map.program.check_open()
        snap, pi = self.map.snapshot(), self._primary
        if self.chosen_keys is not None:
            chosen = _select_keys(snap, self.chosen_keys)
        else:           # the busiest keys, and those still drawn in the window
            busy = heapq.nlargest(self.max_lines, ((k, v) for k, v in snap.items()
                                                   if _nonzero(_pick(v, pi))),
                                  key=lambda kv: _pick(kv[1], pi))
            chosen = {k: snap[k] for k in self._line_keys.values() if k in snap}
            chosen.update(busy)
        prev, self._prev = self._prev or {}, snap
        self._line_keys = {_key_text(k): k for k in chosen}
        return ({n: _pick(chosen[k], pi) for n, k in self._line_keys.items()},
                {n: _pick(prev[k], pi) for n, k in self._line_keys.items() if k in prev})

    def _refresh(self):
        now = time.monotonic()
        first = self._prev_t is None
        values, prev = self._read()
        dt = now - self._prev_t if not first else 0
        for name, v in values.items():
            if self.rates:                       # a rate needs this line's previous reading
                if first or dt <= 0 or name not in prev:
                    continue
                y = (v - prev[name] if v >= prev[name] else v) / dt   # went down: reset
            else:
                y = v
            self.series.setdefault(name, []).append((now, y))
            self.last[name] = y
        for name in list(self.series):           # forget what left the window
            pts = [(t, y) for t, y in self.series[name] if t >= now - self.window]
            if pts:
                self.series[name] = pts
            else:
                del self.series[name]
                self.last.pop(name, None)
        self._line_keys = {n: k for n, k in self._line_keys.items() if n in self.series or n in values}
        self._prev_t = now
        self._publish(self._render(now, first))

    def _stopped_html(self, reason):
        """The lines drawn so far, ending where it stopped; no rate in the legend."""
        if self._prev_t is None:
            return None
        return self._render(self._prev_t, stopped=reason)

    def _render(self, now, first=False, stopped=None):
        for name in self.series:
            if name not in self._colours:
                self._colours[name] = ACTION_COLOURS.get(name) or PALETTE[len(self._colours) % len(PALETTE)]
        svg = line_chart(self.series, self.window, now, self._colours, *self.size,
                         unit="per second" if self.rates else "",
                         end_label="now" if stopped is None else "stopped")
        if stopped is None:
            value = (lambda n: fmt_per_second(self.last.get(n))) if self.rates else \
                (lambda n: fmt_rate(self.last.get(n)))
        elif self.rates:                         # a rate needs two readings: none now
            value = lambda n: "—"
        else:                                    # a value read: the last one, said to be the last
            value = lambda n: f"{fmt_rate(self.last.get(n))} (last)"
        legend = "".join(
            f'<span style="margin-right:14px;white-space:nowrap"><span style="display:inline-block;'
            f'width:12px;height:3px;vertical-align:middle;background:{self._colours[n]}"></span> '
            f'{_e(n)} <b>{_e(value(n))}</b></span>'
            for n in self.series)
        if stopped is not None:
            legend += f'<span class="cap">{_e(stopped)}: the lines end where it stopped</span>'
        elif not self.series:
            legend = ('<span class="cap">rates start with the second reading…</span>'
                      if first and self.rates else
                      f'<span class="cap">no counter moved in the last {self.window:g} s</span>')
        return f'{CSS}<div class="xdplab-w">{svg}<div>{legend}</div></div>'

    def __repr__(self) -> str:
        return f"<RatesChart {', '.join(self.series) or 'no lines yet'}: {self.refresher!r}>"


# -- a Map shown as the last expression of a cell ---------------------------------------------------
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_auto_views = weakref.WeakKeyDictionary()       # Map → the MapView its display hook shows


def display_bundle(m: Map, include: Collection[str] | None = None,
                   exclude: Collection[str] | None = None) -> dict[str, Any] | None:
    """Map._repr_mimebundle_: in a Jupyter kernel, the widget view of the map's live MapView
    (one per map: displaying it again or re-running the cell reuses it); IPython adds the map's
    text and HTML forms, which front-ends without widgets show. None elsewhere."""
    if (not views.in_kernel() or (include and WIDGET_MIME not in include)
            or (exclude and WIDGET_MIME in exclude)):
        return None
    view = _auto_views.get(m)
    if view is None or view.refresher.stopped is not None or view.comm is None:
        try:
            view = MapView(m)
        except LabError:
            return None                          # closed or unreadable: the HTML form says why
        _auto_views[m] = view
    bundle = view._repr_mimebundle_()
    return {WIDGET_MIME: bundle[WIDGET_MIME]}
