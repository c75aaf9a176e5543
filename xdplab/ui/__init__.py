"""The notebook front-end: the only code of xdplab that imports ipywidgets or IPython's display.

    widgets.py  live widgets: the refresh engine, map tables, rate charts
    logs.py     the live tables of event logs (EventLog, TraceLog, Capture)
    panels.py   small front-ends to send traffic and to try a program on one packet
    show.py     a program's C source, numbered and coloured
    magics.py   %%xdp, %load_ext xdplab and the short display of LabErrors
    charts.py   the set-up the lessons' matplotlib figures share

Importing xdplab.ui registers its live views with xdplab.views, the runtime's one door to the UI:

    kind "map"  Map.widget(chart=False, **options) → MapView(m, **options), or with chart=True
                RatesChart(m, **options); a map ending a cell → its MapView (display_bundle)
    kind "log"  EventLog / TraceLog / Capture .widget() and ending a cell → its LogView

The factories import ipywidgets when a view is first made, not here: `import xdplab.ui` (which
xdplab.show and the matplotlib charts need) loads no widget library.
"""
from xdplab import views


def _map_view(m, chart=False, **options):
    from xdplab.ui import widgets
    return widgets.RatesChart(m, **options) if chart else widgets.MapView(m, **options)


def _map_bundle(m, include=None, exclude=None):
    from xdplab.ui import widgets
    return widgets.display_bundle(m, include, exclude)


def _log_view(log):
    from xdplab.ui import logs
    return logs.view(log)


def _log_bundle(log, include=None, exclude=None):
    from xdplab.ui import logs
    return logs.bundle(log, include, exclude)


views.register("map", _map_view, _map_bundle)
views.register("log", _log_view, _log_bundle)
