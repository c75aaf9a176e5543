"""Numbers, rates and HTML as xdplab writes them: the formatting the runtime and the UI share.

    fmt_rate(1234.5)                     # '1.2 k'
    fmt_per_second(1234.5, "packets")    # '1.2 k packets/s'
    fmt_value(v, counter=True)           # a typed map value as table text: 12,345, {a: 1, b: 2}
    axis_label(2500)                     # '2.5 k': the labels of the live charts and matplotlib's
    escape(x)                            # str(x), HTML-escaped (quotes too)
    CSS                                  # the <style> of every xdplab table (JupyterLab's colours)
    check_interval(0.5)                  # a refresh interval in seconds, or a LabError

Runtime objects (an EventLog's `_repr_html_`, a map's) and the live widgets of xdplab.ui write
their tables with these, so both read the same; nothing here imports a UI library.
"""
from __future__ import annotations

import html
import math

from xdplab.errors import check_positive


def escape(x: object) -> str:
    """str(x) made safe inside HTML text and attribute values."""
    return html.escape(str(x), quote=True)


def check_interval(value: float) -> float:
    """A refresh interval as a float of seconds; a LabError unless it is a number above 0."""
    return check_positive(value, "the refresh interval", unit="seconds",
                          hint="e.g. interval=0.5 (twice a second) or interval=2")


def fmt_rate(r: float | None) -> str:
    """A per-second rate for people: 0, 0.25, 3.5, 498.3, 1.2 k, 12.3 k, 1.3 M, 2.0 G ('—' when
    unknown): one decimal (two below 1), and k/M/G/T from a thousand on."""
    if r is None or (isinstance(r, float) and math.isnan(r)):
        return "—"
    if r == 0:
        return "0"
    a = abs(r)
    if a < 0.995:
        return f"{r:.2f}"
    if a < 999.95:
        return f"{r:.1f}"
    for unit, scale in (("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12)):
        if a < scale * 999.95 or unit == "T":
            return f"{r / scale:.1f} {unit}"


def fmt_per_second(r: float | None, unit: str = "") -> str:
    """A rate with its unit: '498.3/s', '1.2 k/s', '12.0 k packets/s' ('—' when unknown)."""
    if r is None:
        return "—"
    return f"{fmt_rate(r)} {unit}/s" if unit else f"{fmt_rate(r)}/s"


def fmt_value(v: object, counter: bool = False) -> str:
    """A typed map value as table text: counters with thousands separators, addresses, names."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}" if counter else str(v)
    if isinstance(v, float):
        return fmt_rate(v)
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, tuple):
        if hasattr(v, "_fields"):
            return "{" + ", ".join(f"{n}: {fmt_value(x, counter)}" for n, x in zip(v._fields, v)) + "}"
        return "[" + ", ".join(fmt_value(x, counter) for x in v) + "]"
    return str(v)


def axis_label(v: float) -> str:
    """An axis label: at most 3 significant digits, no trailing zeros (0.25, 500, 2.5 k, 1.25 M)."""
    a = abs(v)
    unit, scale = "", 1
    for u, sc in (("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12)):
        if a >= sc * 0.9995:
            unit, scale = u, sc
    number = f"{v / scale:.3g}"
    if "e" in number:                                # 3 digits would need an exponent: say it all
        number = f"{v / scale:.0f}"
    number = number.replace("-", "−")
    return f"{number} {unit}".strip()


CSS = """<style>
.xdplab-w{font-family:var(--jp-ui-font-family,sans-serif);font-size:var(--jp-ui-font-size1,13px);
  color:var(--jp-ui-font-color1,#212121);line-height:1.35}
.xdplab-w table{border-collapse:collapse;margin:2px 0;color:inherit;font-size:inherit}
.xdplab-w th{background:var(--jp-layout-color2,#eeeeee);color:var(--jp-ui-font-color1,#212121);
  font-weight:600;padding:2px 8px;text-align:left;white-space:nowrap;
  border-bottom:1px solid var(--jp-border-color1,#bdbdbd)}
.xdplab-w td{padding:1px 8px;white-space:nowrap;border-bottom:1px solid var(--jp-border-color2,#e0e0e0)}
.xdplab-w .n{text-align:right;font-family:var(--jp-code-font-family,monospace);
  font-variant-numeric:tabular-nums}
.xdplab-w td.k{font-family:var(--jp-code-font-family,monospace)}
.xdplab-w td.r{color:var(--jp-ui-font-color2,#616161)}
.xdplab-w td.c{color:var(--jp-ui-font-color2,#616161);font-size:var(--jp-ui-font-size0,11px)}
.xdplab-w td.chg{animation:xdplab-flash 1.2s ease-out}
@keyframes xdplab-flash{from{background:rgba(255,152,0,.35)}to{background:transparent}}
.xdplab-w .cap{color:var(--jp-ui-font-color2,#616161);font-size:var(--jp-ui-font-size0,11px)}
.xdplab-w pre{white-space:pre!important;word-break:normal!important;overflow-wrap:normal!important;
  overflow-x:auto}
.xdplab-w svg text{font-family:var(--jp-ui-font-family,sans-serif);font-size:10px;
  fill:var(--jp-ui-font-color2,#616161)}
</style>"""
