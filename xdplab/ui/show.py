"""Showing a program's C source in a notebook: numbered lines, coloured like JupyterLab's editor.

    xdplab.show("xdp_count.c")                 # a file under bpf/, a path, or a Program
    xdplab.show("bpf/xdp_count.c", lines=(24, 38), mark=[31])

The numbers are the lines of the file, the ones compiler and verifier errors name. Colours come
from JupyterLab's editor theme (its --jp-mirror-editor-* CSS variables, with fallbacks elsewhere),
so the source reads the same as a code cell in light and dark themes. In a terminal the repr is
the plain numbered text.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from pygments import lex
from pygments.lexers import CLexer
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String

from xdplab.errors import LabError
from xdplab.text import escape
from xdplab.kernel.constants import XDP_ACTIONS
from xdplab.program.program import BPF_DIR, REPO

if TYPE_CHECKING:
    from xdplab.program.program import Program

# pygments token → (CSS class, JupyterLab variable, fallback colour); the first match wins
_STYLES = [
    (Comment.Preproc, "pp", "meta", "#a2f"),
    (Comment.PreprocFile, "pp", "meta", "#a2f"),
    (Comment, "c", "comment", "#408080"),
    (Keyword.Type, "t", "variable-3", "#085"),
    (Keyword, "k", "keyword", "#008000"),
    (Name.Function, "f", "def", "#00f"),
    (Name.Builtin, "b", "builtin", "#008000"),
    (Number, "n", "number", "#080"),
    (String, "s", "string", "#ba2121"),
    (Operator, "o", "operator", "#7800c2"),
    (Punctuation, "p", "punctuation", "#05a"),
]
# JupyterLab's outputs wrap a <pre> (pre-wrap, break-all, in rules more specific than a class of
# ours): the listing's own style attribute keeps each line on one line, scrolling sideways instead
NO_WRAP = "white-space:pre;word-break:normal;overflow-wrap:normal;overflow-x:auto"
_ACTION = ("a", "atom", "#88f")          # XDP_PASS, XDP_DROP, ...: the verdicts stand out
VERDICTS = set(XDP_ACTIONS)
TAB = 8                                  # the kernel's tab width, which bpf/ sources are written in

CSS = "".join(
    f".xdplab-src .{cls}{{color:var(--jp-mirror-editor-{var}-color,{fallback})}}"
    for _, cls, var, fallback in _STYLES + [(None, *_ACTION)]) + (
    ".xdplab-src{margin:4px 0}"
    ".xdplab-src .head{font-family:var(--jp-ui-font-family,sans-serif);font-size:90%;"
    "color:var(--jp-ui-font-color2,#616161);margin-bottom:2px}"
    "div.xdplab-src pre{margin:0;padding:6px 8px;overflow-x:auto;line-height:1.35;"
    "background:var(--jp-cell-editor-background,#f5f5f5);"
    "border:1px solid var(--jp-cell-editor-border-color,#e0e0e0);border-radius:2px;"
    "color:var(--jp-mirror-editor-variable-color,#212121);"
    "font-family:var(--jp-code-font-family,monospace);font-size:var(--jp-code-font-size,13px)}"
    ".xdplab-src .ln{display:inline-block;min-width:2.5em;padding-right:1em;text-align:right;"
    "user-select:none;color:var(--jp-ui-font-color3,#9e9e9e)}"
    # a translucent mark keeps the editor's token colours readable in light and dark themes
    ".xdplab-src .mark{display:inline-block;min-width:100%;background:rgba(255,152,0,.28)}"
    ".xdplab-src .c{font-style:italic}")


def _css_class(token):
    for ttype, cls, _, _ in _STYLES:
        if token in ttype:
            return cls
    return None


def resolve(source: str | Path | Program) -> tuple[str, str]:
    """(text, shown name) of a bpf/ file name, a path, "bpf/NAME", or a Program."""
    if hasattr(source, "source") and hasattr(source, "functions"):           # a Program
        return source.source, source.path or f"program {source.name}"
    if not isinstance(source, (str, Path)):
        raise LabError(f"cannot show a {type(source).__name__}",
                       "give the name of a file under bpf/ (\"xdp_count.c\"), a path, or a Program")
    candidates = [Path(source), BPF_DIR / source, REPO / source]
    for path in candidates:
        if path.is_file():
            try:
                shown = str(path.resolve().relative_to(REPO))
            except ValueError:
                shown = str(path)
            return path.read_text(), shown
    known = ", ".join(sorted(p.name for p in BPF_DIR.glob("*.c")))
    raise LabError(f"no C file {str(source)!r}",
                   f"give a file under {BPF_DIR} (one of: {known}) or a path to a .c file")


class Source:
    """C source to look at: `_repr_html_` for notebooks, repr for terminals. `.text` is the code,
    `.lines` the (first, last) line numbers shown."""

    def __init__(self, text: str, name: str, lines: tuple[int, int] | None = None,
                 mark: Iterable[int] = ()) -> None:
        self.text, self.name = text, name
        total = len(text.splitlines())
        first, last = lines if lines is not None else (1, total)
        if not (isinstance(first, int) and isinstance(last, int) and 1 <= first <= last <= total):
            raise LabError(f"lines={lines!r} is not a range of {name} (it has {total} lines)",
                           f"give (first, last) with 1 <= first <= last <= {total}")
        self.lines = (first, last)
        self.mark = set(mark)

    def _numbered(self):
        """[(line number, [(css class or None, text), ...])] of the lines shown."""
        rows, current = [], []
        text = "\n".join(line.expandtabs(TAB) for line in self.text.splitlines())
        for token, value in lex(text, CLexer(stripnl=False, ensurenl=True)):
            cls = _ACTION[0] if token in Name and value in VERDICTS else _css_class(token)
            parts = value.split("\n")
            for i, part in enumerate(parts):
                if i:
                    rows.append(current)
                    current = []
                if part:
                    current.append((cls, part))
        if current:
            rows.append(current)
        first, last = self.lines
        return [(n, rows[n - 1] if n - 1 < len(rows) else []) for n in range(first, last + 1)]

    def _repr_html_(self) -> str:
        e = escape
        width = len(str(self.lines[1]))
        body = []
        for n, parts in self._numbered():
            code = "".join(e(t) if c is None else f'<span class="{c}">{e(t)}</span>'
                           for c, t in parts)
            line = f'<span class="ln">{n:>{width}}</span>{code}'
            body.append(f'<span class="mark">{line}</span>' if n in self.mark else line)
        first, last = self.lines
        what = f"lines {first}–{last}" if (first, last) != (1, len(self.text.splitlines())) else \
            f"{last} lines"
        return (f'<div class="xdplab-src"><style>{CSS}</style>'
                f'<div class="head"><b>{e(self.name)}</b> · {what}</div>'
                f'<pre style="{NO_WRAP}">{chr(10).join(body)}</pre></div>')

    def __repr__(self) -> str:
        first, last = self.lines
        width = len(str(last))
        lines = self.text.splitlines()[first - 1:last]
        rows = [f"{'>' if n in self.mark else ' '}{n:>{width}}  {t.expandtabs(TAB)}"
                for n, t in zip(range(first, last + 1), lines)]
        return "\n".join([self.name] + rows)


def show(source: str | Path | Program, lines: tuple[int, int] | None = None,
         mark: Iterable[int] = ()) -> Source:
    """The C source of `source` — a file under bpf/ ("xdp_count.c" or "bpf/xdp_count.c"), a path,
    or a Program — with line numbers and colours. `lines=(first, last)` shows only those lines;
    `mark` highlights line numbers (say, the one an error names)."""
    text, name = resolve(source)
    return Source(text, name, lines, mark)
