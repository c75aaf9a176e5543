"""The public API of xdplab carries type hints (issue 12), and every hint names something real.

Every module of xdplab/ is read: the top-level ones and every folder's (EXCEPTIONS names the
files left out, each with its reason). Public: module-level functions and public classes'
methods and properties whose names do not start with "_", plus __init__ and the mapping methods
(m[key], m[key] = v, del m[key], len, iter, in). Every parameter but self/cls has a hint, and so
does the return. Then each hint is resolved with typing.get_type_hints, the module's
`if TYPE_CHECKING:` imports included, so a misspelt or missing name fails here rather than in a
user's type checker. No root.
"""
import ast
import importlib
import typing
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "xdplab"
# path under xdplab/ → why its hints are not checked here. None now: the two scripts that run
# without xdplab (program/compile_helper.py, lab/reaper.py) are typed with the stdlib's typing.
EXCEPTIONS: dict[str, str] = {}
MAPPING = {"__init__", "__getitem__", "__setitem__", "__delitem__", "__iter__", "__len__",
           "__contains__"}


def _public(name):
    return not name.startswith("_") or name in MAPPING


def public_defs(tree):
    """[(class name or None, function node)] of the public API of a parsed module."""
    out = [(None, n) for n in tree.body
           if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.name.startswith("_")]
    for cls in tree.body:
        if isinstance(cls, ast.ClassDef) and not cls.name.startswith("_"):
            out += [(cls.name, n) for n in cls.body
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and _public(n.name)]
    return out


def missing_hints(fn, in_class):
    """Names of the parameters of `fn` without a hint, and "return" when it has none."""
    a = fn.args
    params = a.posonlyargs + a.args + a.kwonlyargs + [p for p in (a.vararg, a.kwarg) if p]
    if in_class and params and params[0].arg in ("self", "cls") and not _is_static(fn):
        params = params[1:]
    missing = [p.arg for p in params if p.annotation is None]
    return missing + (["return"] if fn.returns is None else [])


def _is_static(fn):
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in fn.decorator_list)


def _module_name(path):
    parts = ["xdplab", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    """(path, module name) of every module of xdplab/ but EXCEPTIONS."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" not in path.parts and str(path.relative_to(PACKAGE)) not in EXCEPTIONS:
            yield path, _module_name(path)


def _with_functions():
    """The modules that define public functions: the ones whose hints are resolved (importing
    xdplab/__main__.py would run the command, and it defines none)."""
    return [(path, name) for path, name in modules()
            if public_defs(ast.parse(path.read_text(), filename=str(path)))]


def test_every_folder_and_top_level_module_is_read():
    read = {path.relative_to(PACKAGE) for path, _ in modules()}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and any(p.glob("*.py"))}
    assert folders <= {rel.parts[0] for rel in read if len(rel.parts) > 1}
    assert {"__init__.py", "errors.py", "text.py", "views.py", "cli.py"} <= {str(r) for r in read}
    assert set(EXCEPTIONS) <= {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")}


def test_every_public_function_has_hints():
    found = []
    for path, _ in modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for cls, fn in public_defs(tree):
            missing = missing_hints(fn, cls is not None)
            if missing:
                where = f"{cls}.{fn.name}" if cls else fn.name
                found.append(f"{path.relative_to(PACKAGE)}:{fn.lineno}: {where}: {', '.join(missing)}")
    assert found == []


def _type_checking_names(module, tree):
    """The module's namespace with its `if TYPE_CHECKING:` imports run (hints name them)."""
    names = dict(vars(module))
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) \
                and node.test.id == "TYPE_CHECKING":
            exec(compile(ast.Module(body=node.body, type_ignores=[]), module.__file__, "exec"), names)
    return names


def _functions(obj):
    """The functions behind a class attribute: a property's getter and setter, or the function."""
    if isinstance(obj, property):
        return [f for f in (obj.fget, obj.fset) if f is not None]
    if isinstance(obj, (staticmethod, classmethod)):
        return [obj.__func__]
    return [obj] if callable(obj) else []


@pytest.mark.parametrize("path,name", _with_functions(), ids=lambda v: str(v).rsplit("/", 1)[-1])
def test_every_hint_resolves(path, name):
    module = importlib.import_module(name)
    tree = ast.parse(path.read_text(), filename=str(path))
    names = _type_checking_names(module, tree)
    checked = 0
    for cls, fn in public_defs(tree):
        owner = module if cls is None else getattr(module, cls)
        for f in _functions(vars(owner).get(fn.name) if cls else getattr(module, fn.name)):
            typing.get_type_hints(f, globalns=names)        # raises NameError for a wrong name
            checked += 1
    assert checked >= len(public_defs(tree))


def test_the_checker_sees_a_missing_hint():
    tree = ast.parse("def f(a: int, b, *args, c: str = '', **kw) -> None: ...\n"
                     "def g(x: int): ...\n"
                     "def _private(y): ...\n"
                     "class C:\n"
                     "    def m(self, z: int) -> int: ...\n"
                     "    def __init__(self, w): ...\n"
                     "    def _helper(self, v): ...\n"
                     "    @staticmethod\n"
                     "    def s(self) -> None: ...\n")
    got = {(c, fn.name): missing_hints(fn, c is not None) for c, fn in public_defs(tree)}
    assert got == {(None, "f"): ["b", "args", "kw"], (None, "g"): ["return"], ("C", "m"): [],
                   ("C", "__init__"): ["w", "return"], ("C", "s"): ["self"]}


def test_the_shapes_of_map_reads_and_writes():
    from xdplab.maps import codecs, counters, map as map_module
    names = _type_checking_names(map_module, ast.parse(Path(map_module.__file__).read_text()))
    hints = typing.get_type_hints(map_module.Map.snapshot, globalns=names)
    assert hints["return"] == dict[codecs.Decoded, codecs.Decoded]
    assert typing.get_type_hints(map_module.Map.__getitem__, globalns=names)["key"] is codecs.Encodable
    combine = typing.get_type_hints(counters.combine, globalns={**vars(counters), **vars(codecs)})
    assert combine["codec"] is codecs.Codec and combine["return"] is codecs.Decoded


def _hints(module, fn):
    names = _type_checking_names(module, ast.parse(Path(module.__file__).read_text()))
    return typing.get_type_hints(fn, globalns=names)


def test_the_shapes_of_targets_packets_and_results():
    from scapy.packet import Packet
    from xdplab.lab import topology, traffic
    from xdplab.labs import checks
    from xdplab.program import program, testrun
    Host, Interface = topology.Host, topology.Interface
    assert _hints(program, program.Program.attach)["target"] == Host | Interface | str
    assert _hints(testrun, testrun.run)["packet"] == Packet | bytes
    frames = Packet | bytes | list[Packet | bytes] | tuple[Packet | bytes, ...]
    assert _hints(topology, Host.send)["packets"] == frames
    assert _hints(traffic, traffic.Stream.__init__)["packets"] == frames
    assert _hints(topology, Host.send)["return"] is traffic.SendReport
    assert _hints(checks, checks.Trial.expect)["return"] is testrun.TestRunResult
