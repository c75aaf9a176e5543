"""xdplab/labs/ has no import cycle (issue 12): checks → progress → catalogue, checks → catalogue,
and nothing back — read from every import statement, in functions too."""
import ast
from pathlib import Path

LABS = Path(__file__).resolve().parents[2] / "xdplab" / "labs"


def imported(path):
    """The xdplab.labs modules `path` imports anywhere (import and from-import, in functions too)."""
    out = set()
    for n in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in n.names] if isinstance(n, ast.Import) else
                 [n.module or ""] + [f"{n.module}.{a.name}" for a in n.names]
                 if isinstance(n, ast.ImportFrom) else [])
        out |= {m.split(".")[2] for m in names if m.startswith("xdplab.labs.")}
    return out


def test_progress_and_the_catalogue_never_import_the_checks():
    graph = {p.stem: imported(p) - {p.stem} for p in LABS.glob("*.py")}
    assert "checks" not in graph["progress"] and "checks" not in graph["catalogue"]
    assert graph["catalogue"] == set()
    assert {"progress", "catalogue"} <= graph["checks"]

    def reach(m, seen=()):
        return set().union(*[{d} | reach(d, seen + (m,)) for d in graph.get(m, ()) if d not in seen])
    assert not [m for m in graph if m in reach(m)], graph
