"""The unit tier (`make test-unit`): pure functions of xdplab, tested without root, bcc, a kernel
or a network namespace, in seconds.

tests/conftest.py's session fixture `nothing_left_behind` (autouse) needs root: it refuses to
start without it and lists the machine's namespaces and links. Tests here build nothing on the
machine, so under tests/unit that fixture is replaced by one that only proves the point: a unit
test that makes a lab (its state file under /run/xdplab) fails. Run with the rest (`sudo make test`),
the session's own check still runs for the other tests as before.
"""
import os
from pathlib import Path

import pytest

from xdplab.lab import reaper

RECORDED = Path(__file__).resolve().parent / "recorded"


def _ours():
    """State files of labs this process owns (a Lab writes one before it makes anything)."""
    if not reaper.STATE_DIR.is_dir():
        return set()
    return {p.name for p in reaper.STATE_DIR.glob("*.json")
            if (reaper.read_state(p) or {}).get("pid") == os.getpid()}


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind():
    """Replaces the root-only session check of tests/conftest.py for the unit tier."""
    before = _ours()
    yield
    made = _ours() - before
    assert not made, f"a unit test made lab resources (it belongs in the root tier): {sorted(made)}"


@pytest.fixture
def recorded():
    """recorded(name) → the text of tests/unit/recorded/<name>."""
    return lambda name: (RECORDED / name).read_text()
