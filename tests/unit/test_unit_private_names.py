"""No module of xdplab uses another module's private names (issue 12, item 4): `x._name` where
`_name` is defined in another file, and `from module import _name`, are offences. A reading of the
source with ast, no imports, no root.

Allowed: self/cls, names defined in the same file (a class's helpers used by its neighbours),
Python's and ctypes' own protocol names (_repr_html_, _fields_, a namedtuple's _fields and
_asdict), ctypes._SimpleCData (the base class of ctypes' fundamental types, which its docs name
and which has no public spelling), ipywidgets' `_view_count` trait, and bcc's private names
inside the one wrapper made for them (xdplab/kernel/libbpf.py: decode_table_type,
bcc_callback_types).
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "xdplab"
PROTOCOL = {"_fields", "_fields_", "_asdict", "_make", "_replace", "_type_", "_length_", "_pack_",
            "_anonymous_", "_view_count", "_exit",     # (os._exit is public)
            "_SimpleCData"}
BCC_WRAPPER = ("kernel/libbpf.py", {"_decode_table_type", "_RINGBUF_CB_TYPE", "_RAW_CB_TYPE",
                                    "_LOST_CB_TYPE"})


def _private(name):
    return name.startswith("_") and not name.startswith("__")


def defined_names(tree):
    """Every name a file defines: functions, classes, assignments, attributes set on anything."""
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            out.add(n.id)
        elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
            out.add(n.attr)
        elif isinstance(n, ast.alias) and n.asname:
            out.add(n.asname)
    return out


def offences(path, rel):
    tree = ast.parse(path.read_text(), filename=str(path))
    mine = defined_names(tree)
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and _private(n.attr):
            if isinstance(n.value, ast.Name) and n.value.id in ("self", "cls"):
                continue
            if n.attr in mine or n.attr in PROTOCOL or n.attr.startswith("_repr_"):
                continue
            if rel == BCC_WRAPPER[0] and n.attr in BCC_WRAPPER[1]:
                continue
            found.append(f"{rel}:{n.lineno}: {ast.unparse(n)}")
        elif isinstance(n, ast.ImportFrom) and n.module != "xdplab":      # `from xdplab import _moved`
            found += [f"{rel}:{n.lineno}: from {n.module} import {a.name}"
                      for a in n.names if _private(a.name)]
    return found


def test_no_module_uses_another_modules_private_names():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += offences(path, str(path.relative_to(PACKAGE)))
    assert found == []


def test_the_reader_finds_each_kind(tmp_path):
    f = tmp_path / "bad.py"
    f.write_text("from xdplab.program import testrun\n"
                 "from xdplab.diagnostics import _code_only\n"          # 2: a private import
                 "class A:\n"
                 "    def _mine(self):\n"
                 "        return self._other\n"                         # self: fine
                 "def g(x, prog):\n"
                 "    x._mine()\n"                                      # defined here: fine
                 "    testrun._translate(x)\n"                          # 8: another module's
                 "    return prog._fn(None), x._repr_html_(), x._fields\n")   # 9: _fn only
    assert offences(f, "bad.py") == ["bad.py:2: from xdplab.diagnostics import _code_only",
                                     "bad.py:8: testrun._translate", "bad.py:9: prog._fn"]
