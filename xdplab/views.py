"""The one door from the runtime to the notebook UI.

The runtime (kernel/, maps/, program/, lab/, machine/, lessons/, labs/) never imports ipywidgets,
IPython's display or xdplab.ui. Where a runtime object has a live view — a map that ends a cell,
`m.widget()`, `prog.events(...)` — it asks this module for it by kind:

    views.view("map", m, chart=True, field="packets")     # a widget, built by xdplab.ui
    views.mimebundle("map", m, include, exclude)          # for _repr_mimebundle_: None outside
                                                          # a Jupyter kernel (IPython then shows
                                                          # _repr_html_ / repr)

xdplab.ui registers a factory per kind when it is imported (`register`); the first view asked for
imports it. So `import xdplab`, loading a program, the doctor and a lab check in a terminal never
load ipywidgets (tests/test_layers.py proves it), and the UI depends on the runtime, not the
other way round.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Collection, Optional

from xdplab.errors import LabError

# The widgets are ipywidgets objects, typed Any here: this module may not import the UI (not even
# for a hint; tests/test_layers.py).
Factory = Callable[..., Any]
Bundle = Callable[[Any, Optional[Collection[str]], Optional[Collection[str]]],
                  Optional[dict[str, Any]]]

_factories: dict[str, Factory] = {}    # kind -> factory(obj, **options) -> widget
_bundles: dict[str, Bundle] = {}       # kind -> bundle(obj, include, exclude) -> mime bundle or None


def register(kind: str, factory: Factory, bundle: Bundle | None = None) -> None:
    """Called by xdplab.ui: `factory(obj, **options)` makes the live view of `kind`; `bundle(obj,
    include, exclude)` (optional) its mime bundle when an object of that kind ends a cell."""
    _factories[kind] = factory
    if bundle is not None:
        _bundles[kind] = bundle


def _ui():
    importlib.import_module("xdplab.ui")      # registers every kind


def view(kind: str, obj: object, **options: Any) -> Any:
    """The live view of `obj` (an ipywidgets widget), made by the UI's factory for `kind`."""
    if kind not in _factories:
        _ui()
    try:
        factory = _factories[kind]
    except KeyError:
        raise LabError(f"xdplab has no live view of kind {kind!r}") from None
    return factory(obj, **options)


def in_kernel() -> bool:
    """True inside a Jupyter kernel, where a front-end can show widgets. Found out without
    importing anything: a kernel has imported IPython long before any cell runs."""
    ipython = sys.modules.get("IPython")
    ip = ipython.get_ipython() if ipython is not None else None
    return ip is not None and getattr(ip, "kernel", None) is not None


def mimebundle(kind: str, obj: object, include: Collection[str] | None = None,
               exclude: Collection[str] | None = None) -> dict[str, Any] | None:
    """What `obj._repr_mimebundle_` returns: the live view's bundle inside a Jupyter kernel, None
    elsewhere (a terminal, nbconvert without a kernel), so that IPython falls back to the plain
    representations without loading any UI."""
    if not in_kernel():
        return None
    if kind not in _bundles:
        _ui()
    bundle = _bundles.get(kind)
    return bundle(obj, include, exclude) if bundle is not None else None
