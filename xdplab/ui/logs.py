"""The live tables of event logs: EventLog, TraceLog and Capture (xdplab.program.events, .capture).

    log = prog.events("events")       # a runtime object: reads in its own thread, knows no widgets
    log                               # last line of a cell: views.mimebundle("log", log) → LogView
    log.widget()                      # views.view("log", log) → the same LogView

A LogView is a LiveWidget (title, Pause, refresh interval, status line) whose body is the log's own
`_repr_html_()`, refreshed every `log.interval` seconds. One view per log: asking again gives the
same one until it is closed. Closing the view closes the log; when the log stops (closed, its
program or lab closed), it calls `view.source_stopped()`, which shows the last table and stops the
refresher.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Collection

from xdplab.ui import widgets

if TYPE_CHECKING:
    from xdplab.program.events import EventLog, TraceLog


class LogView(widgets.LiveWidget):
    """The live table of an EventLog or TraceLog (log.widget()); closing it closes the log."""

    def __init__(self, source: EventLog | TraceLog) -> None:
        self.source = source
        super().__init__(source.title(), source.interval, lab=source.lab, name=source.view_name)
        self._begin()

    def _refresh(self):
        self._publish(self.source._repr_html_())
        if self.source.closed is not None:
            raise widgets.Stop(f"stopped: {self.source.closed}")

    def source_stopped(self) -> None:
        """The log stopped: show its last table and stop refreshing (its reason as the status)."""
        self._publish(self.source._repr_html_())
        self.refresher.stop(f"stopped: {self.source.closed}")

    def close(self) -> None:
        """Close the view and its log."""
        super().close()
        source = getattr(self, "source", None)
        if source is not None:
            source.close("widget closed")


def view(source: EventLog | TraceLog) -> LogView:
    """The live view of an event log (views kind "log"): its LogView, made once and kept on the
    log (`source.live_view`) until it is closed."""
    v = source.live_view
    if v is None or v.comm is None:
        v = source.live_view = LogView(source)
    return v


def bundle(source: EventLog | TraceLog, include: Collection[str] | None = None,
           exclude: Collection[str] | None = None) -> dict[str, Any] | None:
    """An event log ending a cell (inside a Jupyter kernel): the widget view of its LogView;
    IPython adds the log's _repr_html_ for front-ends without widgets."""
    if (include and widgets.WIDGET_MIME not in include) or (exclude and widgets.WIDGET_MIME in exclude):
        return None
    return {widgets.WIDGET_MIME: view(source)._repr_mimebundle_()[widgets.WIDGET_MIME]}
