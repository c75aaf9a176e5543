"""Removing what a lab owns, also after its process died.

Every Lab writes a state file /run/xdplab/<id>.json *before* it creates anything, listing its
namespaces and bpffs pins and the owning process (pid + start time, so a reused pid is not mistaken
for the owner). Two paths remove a dead lab's resources:
  * a watchdog process per lab (this file run as a script with --watch ID) blocks on a pipe from
    the owner; when the owner dies, even by SIGKILL, the pipe closes and the watchdog reaps the lab;
  * every new Lab() first reaps labs whose owner is dead (in case the watchdog was killed too).
Deleting a namespace destroys its veths and with them the XDP programs attached to them.

Only the standard library here: the watchdog starts as a plain script, without importing xdplab.
"""
from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

STATE_DIR = Path(os.environ.get("XDPLAB_STATE_DIR", "/run/xdplab"))
# xdplab.kernel.constants.PIN_ROOT, read by path: this file imports nothing of xdplab
PIN_ROOT = runpy.run_path(str(Path(__file__).resolve().parents[1] / "kernel" / "constants.py"))["PIN_ROOT"]
NS_PREFIX = "xl-"


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks, or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def alive(state: dict[str, Any]) -> bool:
    """Whether the owner of a lab's state (its "pid" and "start") is still running."""
    return state.get("pid") is not None and start_time(state["pid"]) == state.get("start")


def read_state(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The state file at `path`, or None when it cannot be read."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _libc():
    import ctypes
    return ctypes.CDLL(None, use_errno=True)


def pids_in(ns: str) -> list[int]:
    """Processes whose network namespace is `ns` (what `ip netns pids` prints)."""
    try:
        st = os.stat(f"/run/netns/{ns}")
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                other = os.stat(f"/proc/{entry}/ns/net")
            except OSError:
                continue
            if (other.st_ino, other.st_dev) == (st.st_ino, st.st_dev):
                found.append(int(entry))
    return found


def delete_namespace(ns: str) -> bool:
    """Kill what runs inside `ns`, then delete it (its veths and their XDP programs go with it):
    what `ip netns pids` + `kill` + `ip netns delete` do, without starting a process. True if it
    is gone."""
    for pid in pids_in(ns):
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    path = f"/run/netns/{ns}"
    _libc().umount2(path.encode(), 2)           # MNT_DETACH
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
    return not os.path.exists(path)


def remove_lab(lab_id: str, state: dict[str, Any] | None = None) -> list[str]:
    """Remove every namespace and pin of lab `lab_id`; returns the namespaces removed."""
    state = state or read_state(STATE_DIR / f"{lab_id}.json") or {}
    prefix = f"{NS_PREFIX}{lab_id}-"
    names = set(state.get("namespaces", []))
    if os.path.isdir("/run/netns"):
        names |= {n for n in os.listdir("/run/netns") if n.startswith(prefix)}
    removed = [ns for ns in sorted(names) if os.path.exists(f"/run/netns/{ns}") and delete_namespace(ns)]
    shutil.rmtree(PIN_ROOT / lab_id, ignore_errors=True)
    try:
        (STATE_DIR / f"{lab_id}.json").unlink()
    except FileNotFoundError:
        pass
    return removed


def reap(everything: bool = False) -> dict[str, list[str]]:
    """Remove labs whose owner is dead (all labs with everything=True). Returns {lab_id: [ns...]}."""
    done = {}
    known = set()
    if STATE_DIR.is_dir():
        for path in STATE_DIR.glob("*.json"):
            state = read_state(path)
            lab_id = path.stem
            known.add(lab_id)
            if everything or state is None or not alive(state):
                done[lab_id] = remove_lab(lab_id, state)
    # namespaces of ours that no state file claims: a crash between creating the state and the ns
    if os.path.isdir("/run/netns"):
        for ns in os.listdir("/run/netns"):
            if ns.startswith(NS_PREFIX):
                lab_id = ns[len(NS_PREFIX):].split("-", 1)[0]
                if lab_id not in known:
                    done.setdefault(lab_id, []).extend(remove_lab(lab_id))
    return done


def watch(lab_id: str) -> None:
    """Block until the owner closes our stdin (it exited or died), then reap if it did not close."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except OSError:
        pass
    if (STATE_DIR / f"{lab_id}.json").exists():
        remove_lab(lab_id)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--watch":
        watch(sys.argv[2])
    else:
        print(json.dumps(reap(everything="--all" in sys.argv)))
