"""The set-up every matplotlib figure of the lessons shares (perf's charts, qos.plot,
ModeCosts.plot, kvstore.plot), so that each reads the same way and none needs pyplot:

    fig, ax = charts.figure(width=6.4, height=3.0)      # a Chart: a Figure that shows itself
    charts.values(ax.xaxis)                  # ticks at round steps, labelled 0, 2.5 k, 5 k (xdplab.text)
    charts.log(ax.yaxis)                     # a log axis labelled 0.1, 1, 10, 100: plain numbers
    charts.legend(fig, ax.lines)             # below the axes, never over the data
    return charts.finish(fig)                # room for the labels past the bars, inside the axes

Figures use matplotlib's constrained layout: titles, labels and legends outside the axes get
room of their own instead of running past the figure's edge.
"""
from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any, Literal, Sequence, TypeVar

from matplotlib import ticker
from matplotlib.figure import Figure

from xdplab.text import axis_label

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axis import Axis
    from matplotlib.legend import Legend

STEPS = [1, 2, 2.5, 5, 10]         # the round steps of xdplab.widgets' charts, too
_F = TypeVar("_F", bound=Figure)


class Chart(Figure):
    """A matplotlib Figure that shows itself in a notebook (no pyplot state involved)."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=100)
        return buf.getvalue()


def figure(width: float = 6.4, height: float = 3.0, rows: int = 1, cols: int = 1,
           **subplots: Any) -> tuple[Chart, Any]:
    """A new Chart and its Axes (one, or an array of rows × cols like Figure.subplots: hence
    Any)."""
    fig = Chart(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(rows, cols, **subplots)


def _people(v, _pos=None):
    return axis_label(0 if abs(v) < 1e-9 else v)     # the live charts' labels: 0.25, 500, 2.5 k, 1.25 M


def values(axis: Axis, nbins: int = 6) -> None:
    """A linear value axis: ticks at 1, 2, 2.5, 5 × 10^n steps, labelled as the live charts are
    (no '1e6' offset, no '4.16667')."""
    axis.set_major_locator(ticker.MaxNLocator(nbins=nbins, steps=STEPS, min_n_ticks=3))
    axis.set_major_formatter(ticker.FuncFormatter(_people))


def _plain(v, _pos=None):
    text = f"{v:,.6g}"
    if "e" in text:             # .6g writes 1e+06 from a million on, 1e-05 below 0.0001
        text = f"{v:,.0f}" if abs(v) >= 1 else f"{v:.12f}".rstrip("0")
    return text.replace("-", "−")


def log(axis: Axis) -> None:
    """A log axis labelled with plain numbers (0.01, 0.1, 1, 10, 1,000 rather than 10^n): a tick
    at each power of ten, and at 2 and 5 times it when the data spans three of them or fewer.
    Call it once the data is plotted."""
    ax = axis.axes
    x = axis is ax.xaxis
    if axis.get_scale() != "log":
        (ax.set_xscale if x else ax.set_yscale)("log")
    lo, hi = sorted(ax.get_xlim() if x else ax.get_ylim())     # the data's, once plotted
    lo = max(lo, 1e-12)
    decades = math.log10(hi / lo) if hi > lo else 0
    subs = (1.0,) if decades > 3 else (1.0, 2.0, 5.0)
    axis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    axis.set_major_formatter(ticker.FuncFormatter(_plain))
    axis.set_minor_locator(ticker.LogLocator(base=10, subs=[s for s in range(2, 10)
                                                             if float(s) not in subs]))
    axis.set_minor_formatter(ticker.NullFormatter())


def legend(fig: Figure, artists: Sequence[Artist], labels: Sequence[str] | None = None,
           where: Literal["below", "above"] = "below", columns: int | None = None,
           fontsize: float = 8) -> Legend:
    """One legend for `artists` (lines, bars) outside the axes, below (or `where`="above") them,
    in `columns` columns (as many as fit: up to 3)."""
    labels = labels if labels is not None else [a.get_label() for a in artists]
    loc = {"below": "outside lower center", "above": "outside upper center"}[where]
    return fig.legend(artists, labels, loc=loc, ncols=columns or min(3, len(labels)),
                      fontsize=fontsize, frameon=False)


def _anchor(text):
    """The data point a text is drawn from (a bar label's bar end, ax.text's position)."""
    return text.xy if hasattr(text, "xy") else text.get_position()


def finish(fig: _F, rounds: int = 4, gap: float = 4) -> _F:
    """Make room inside each axes for the texts drawn in it from data points (bar labels,
    annotations): a linear axis is stretched until every one ends `gap` px inside. Returns `fig`."""
    for _ in range(rounds):
        fig.draw_without_rendering()            # runs the layout: the axes' sizes are final
        stretched = False
        for ax in fig.axes:
            box = ax.bbox
            for i, (axis, start, size, get, set_) in enumerate(
                    ((ax.xaxis, box.x0, box.width, ax.get_xlim, ax.set_xlim),
                     (ax.yaxis, box.y0, box.height, ax.get_ylim, ax.set_ylim))):
                if axis.get_scale() != "linear" or size <= 0:
                    continue
                need = 1.0
                for t in ax.texts:
                    if not t.get_visible() or not t.get_text():
                        continue
                    end = t.get_window_extent().extents[2 + i]
                    if end <= start + size - gap:
                        continue
                    anchor = ax.transData.transform(_anchor(t))[i] - start   # px into the axes
                    beyond = end - start - anchor       # the label's own length past its point
                    room = size - gap - beyond
                    if anchor > 0 and room > 0:
                        need = max(need, anchor / room)
                if need > 1.0 + 1e-6:
                    lo, hi = get()
                    set_(lo, lo + (hi - lo) * need * 1.02)
                    stretched = True
        if not stretched:
            break
    return fig
