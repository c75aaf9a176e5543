"""The labs there are: their folders under labs/, in curriculum order, found by name (old names
too), and each one's check.py loaded as a module. checks.py and progress.py both read it; it reads
neither, so the two of them do not depend on each other both ways.

    all_labs()          # [Path('labs/02a-top-talkers'), Path('labs/03a-drop-by-port'), ...]
    find_lab("03a")     # also "drop-by-port", "03a-drop-by-port", a path, or an old name ("01")
    load_spec(lab_dir)  # its check.py: TITLE, CASES, HINTS, ...
    renamed("01")       # '03a-drop-by-port': the lab's name now, for a name from before
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

from xdplab.errors import LabError
from xdplab.program.program import REPO

LABS_DIR = REPO / "labs"

# Lab folders as they were named before the labs were numbered by lesson (lesson number and a
# letter: 03a is the first lab after lesson 03). Progress recorded under an old name counts for the
# new one, and `xdplab check 01` still finds the lab that was 01.
RENAMED = {
    "01-drop-by-port": "03a-drop-by-port",
    "02-top-talkers": "02a-top-talkers",
    "03-ipv6-vlan-echo": "03b-ipv6-vlan-echo",
    "04-port-rewrite": "04a-port-rewrite",
    "05-echo-responder": "04b-echo-responder",
    "06-router": "05a-router",
    "07-rate-limiter": "08a-rate-limiter",
    "08-verifier": "03c-verifier",
}


def renamed(name: str) -> str | None:
    """The current name of a lab given by its old number ("01", "1") or old folder name, else
    None."""
    if name.isdigit():
        name = next((old for old in RENAMED if int(old[:2]) == int(name)), name)
    return RENAMED.get(name)


def all_labs(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Directories of the labs under `root` (labs/), in curriculum order."""
    root = Path(root or LABS_DIR)
    return sorted(p for p in root.iterdir() if (p / "check.py").is_file()) if root.is_dir() else []


def find_lab(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """A lab's directory from its name: "03a", "03a-drop-by-port", "drop-by-port", a path, or
    the number or name it had before the labs were numbered by lesson ("01", "1",
    "01-drop-by-port")."""
    path = Path(name)
    if (path / "check.py").is_file():
        return path.resolve()
    labs = all_labs(root)
    for wanted in filter(None, (renamed(name), name)):
        for lab in labs:
            number, _, slug = lab.name.partition("-")
            if wanted in (lab.name, slug) or wanted.lstrip("0") == number.lstrip("0"):
                return lab
    raise LabError(f"there is no lab {name!r}",
                   "the labs are: " + (", ".join(p.name for p in labs) or "none"))


def load_spec(lab_dir: str | os.PathLike[str]) -> ModuleType:
    """The lab's check.py as a module."""
    lab_dir = Path(lab_dir)
    spec = importlib.util.spec_from_file_location(f"xdplab_lab_{lab_dir.name.replace('-', '_')}",
                                                  lab_dir / "check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
