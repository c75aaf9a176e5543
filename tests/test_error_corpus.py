"""A corpus of newcomer mistakes (tests/error_corpus/*.c), each loaded through the public path
`lab.load(source)`: clang, LLVM's BPF backend or this kernel's verifier rejects it, and the error
must name the learner's line, explain that mistake (not a neighbouring one) and say how to fix it.

Each file starts with a header:

    // mistake: what the learner did, in a few words
    // expect: CompileError | VerifierError
    // explain: words the explanation must contain    (one line each, at least one)
    // fix: words the fix (hint) must contain         (one line each, at least one)
    // message: words the error's message must contain  (optional: clang's or the verifier's own)
    // details: words the full log must contain          (optional)

and marks the line the error must point at with `// <-`.
"""
from pathlib import Path

import pytest

from xdplab import CompileError, LabError, VerifierError, diagnostics

CORPUS = Path(__file__).resolve().parent / "error_corpus"
CLASSES = {"CompileError": CompileError, "VerifierError": VerifierError}
GENERIC = {diagnostics.GENERIC_COMPILE, *diagnostics.GENERIC_VERIFIER}


def header(path):
    """{'mistake': [...], 'expect': [...], 'explain': [...], 'fix': [...]} of a corpus file."""
    found = {"mistake": [], "expect": [], "explain": [], "fix": [], "message": [], "details": []}
    for line in path.read_text().splitlines():
        if not line.startswith("// "):
            break
        key, _, value = line[3:].partition(": ")
        assert key in found, f"{path.name}: unknown header line {line!r}"
        found[key].append(value.strip())
    return found


def marked(source):
    lines = [i for i, s in enumerate(source.splitlines(), 1) if "// <-" in s]
    assert len(lines) == 1, "mark exactly one line with // <-"
    return lines[0]


CASES = sorted(CORPUS.glob("*.c"))


def test_the_corpus_is_complete():
    assert len(CASES) >= 50, f"only {len(CASES)} mistakes in {CORPUS}"
    mistakes = []
    for path in CASES:
        h = header(path)
        assert len(h["mistake"]) == 1 and h["expect"] in (["CompileError"], ["VerifierError"]), path.name
        assert h["explain"] and h["fix"] and all(w for w in h["explain"] + h["fix"]), path.name
        marked(path.read_text())
        mistakes.append(h["mistake"][0])
    assert len(set(mistakes)) == len(mistakes), "two files describe the same mistake"
    kinds = [header(p)["expect"][0] for p in CASES]
    assert kinds.count("CompileError") >= 20 and kinds.count("VerifierError") >= 20


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_mistake_is_explained(lab, path):
    h = header(path)
    source = path.read_text()
    with pytest.raises(LabError) as info:
        lab.load(source)
    err = info.value
    shown = f"{h['mistake'][0]}:\n{err.text()}"
    assert type(err) is CLASSES[h["expect"][0]], shown
    assert err.line == marked(source), f"points at line {err.line}, not the marked one\n{shown}"
    assert err.explanation and err.explanation not in GENERIC, f"generic explanation\n{shown}"
    assert err.hint and err.hint not in GENERIC, f"no specific fix\n{shown}"
    for words in h["explain"]:
        assert words in err.explanation, f"the explanation lacks {words!r}\n{shown}"
    for words in h["fix"]:
        assert words in err.hint, f"the fix lacks {words!r}\n{shown}"
    for words in h["message"]:
        assert words in err.message, f"the message lacks {words!r}\n{shown}"
    for words in h["details"]:
        assert words in (err.details or ""), f"the log lacks {words!r}\n{shown}"
    # the short forms a notebook shows carry the learner's line, the explanation and the fix
    text = err.text()
    assert f"{err.line:4} | " in text and f"Why: {err.explanation}" in text and f"Fix: {err.hint}" in text
