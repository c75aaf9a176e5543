"""A participant past the room's memory limit is told so, in plain words, in their next kernel.

Each participant's container has a memory limit (MEM_LIMIT, 2 GB by default) and no swap beyond it
(jupyterhub_config.py). A notebook that needs more is stopped by the kernel's OOM killer inside
that container only: the participant's server and everyone else's go on. JupyterLab then says
only that "the kernel appears to have died". This file, an IPython start-up file of the workshop
image, counts the container's OOM kills (its cgroup's memory events) when a kernel starts, and at
the first cell a participant runs in a kernel that started after a kill it prints what happened,
the limit, and what to do. The count seen is kept in /tmp of the container (it starts again from
zero with a new container, and so does the cgroup's count).
"""
import re
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
SEEN = Path("/tmp/xdplab-oom-kills-seen")


def oom_kills(root=CGROUP):
    """OOM kills in this container's memory cgroup so far (v2: memory.events, v1: the memory
    controller's memory.oom_control), or None where neither can be read."""
    for name in ("memory.events", "memory/memory.oom_control"):
        try:
            found = re.search(r"^oom_kill (\d+)$", (root / name).read_text(), re.M)
        except OSError:
            continue
        if found:
            return int(found.group(1))
    return None


def memory_limit(root=CGROUP):
    """The container's memory limit in bytes, or None when it has none (or it cannot be read)."""
    for name in ("memory.max", "memory/memory.limit_in_bytes"):
        try:
            text = (root / name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:       # v1 says "no limit" with a huge number
            return int(text)
        return None
    return None


def message(kills, limit):
    """What the participant reads: what stopped their last kernel, and what to do."""
    size = f"{limit / (1 << 30):.1f} GB" if limit else "its memory limit"
    times = "once" if kills == 1 else f"{kills} times"
    return (f"xdplab: your previous kernel was stopped ({times}) because this server used all its "
            f"memory: {size}, what the workshop gives each participant. Nothing else was lost; the "
            "other participants were not affected.\n"
            "  What to do: shut down the kernels of notebooks you are not using (Kernel → Shut Down "
            "All Kernels, or the Running tab), then run this notebook's cells from the top. A cell "
            "that builds something very large (a map of millions of entries, a capture kept in a "
            "list) is the usual cause; ask the instructor if it happens again.")


def news(root=CGROUP, seen_file=SEEN):
    """The message for kills since the last kernel that looked, or None; remembers the count."""
    kills = oom_kills(root)
    if kills is None:
        return None
    try:
        seen = int(seen_file.read_text())
    except (OSError, ValueError):
        seen = 0
    try:
        seen_file.write_text(str(kills))
    except OSError:
        pass
    if kills <= seen:
        return None
    return message(kills - seen, memory_limit(root))


def register(ip, root=CGROUP, seen_file=SEEN):
    """Look now (the kernel starts) and say it at the first cell that runs."""
    text = news(root, seen_file)
    if text is None:
        return

    def say(*args):
        print(text)
        ip.events.unregister("pre_run_cell", say)
    ip.events.register("pre_run_cell", say)


try:
    _ip = get_ipython()  # noqa: F821  (IPython runs its start-up files with it defined)
except NameError:
    _ip = None
if _ip is not None:
    register(_ip)
