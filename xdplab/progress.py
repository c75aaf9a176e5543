"""The learner's progress through the labs: which are done, how many checks, which hint is next.

Stored as JSON in the learner's home, ~/.local/share/xdplab/progress.json ($XDG_DATA_HOME if
set); under sudo in SUDO_USER's home (and owned by that user), so `sudo make lab` keeps the
learner's progress where it belongs. $XDPLAB_PROGRESS names another file (the tests use it).

    Progress().record("01-drop-by-port", passed=False)   # → the hint step to show (1, 2, ...)
    Progress().status()                                   # {lab: {"done", "attempts", "hint_step"}}
    xdplab progress                                       # the same on the command line
    progress_widget()                                     # and in a notebook
"""
import datetime
import html
import json
import os
import pwd
import tempfile
from pathlib import Path


def default_path():
    if os.environ.get("XDPLAB_PROGRESS"):
        return Path(os.environ["XDPLAB_PROGRESS"])
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user and os.geteuid() == 0:
        try:
            return Path(pwd.getpwnam(sudo_user).pw_dir, ".local/share/xdplab/progress.json")
        except KeyError:
            pass
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share"
    return Path(base, "xdplab/progress.json")


class Progress:
    """The progress file: read on every call, written atomically (a crash never leaves half)."""

    def __init__(self, path=None):
        self.path = Path(path) if path else default_path()

    def _read(self):
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}          # no file yet, or unreadable: start afresh rather than fail a check
        labs = data.get("labs") if isinstance(data, dict) else None
        return labs if isinstance(labs, dict) else {}

    def _write(self, labs):
        made = [p for p in reversed(self.path.parents) if not p.exists()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".progress-")
        with os.fdopen(fd, "w") as f:
            json.dump({"labs": labs}, f, indent=1, sort_keys=True)
        os.chmod(tmp, 0o644)
        owner = self._owner()
        if owner:
            for p in [*made, Path(tmp)]:
                os.chown(p, *owner)
        os.replace(tmp, self.path)

    def _owner(self):
        """(uid, gid) of SUDO_USER when root writes into that user's home."""
        user = os.environ.get("SUDO_USER")
        if os.geteuid() != 0 or not user or os.environ.get("XDPLAB_PROGRESS"):
            return None
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            return None
        return (pw.pw_uid, pw.pw_gid) if str(self.path).startswith(pw.pw_dir + "/") else None

    def get(self, lab):
        entry = self._read().get(lab, {})
        return {"done": bool(entry.get("done")), "attempts": int(entry.get("attempts", 0)),
                "hint_step": int(entry.get("hint_step", 0)), "done_at": entry.get("done_at")}

    def status(self):
        return {lab: self.get(lab) for lab in self._read()}

    def record(self, lab, passed):
        """Record one check of `lab`. Returns the hint step for a failure (1 for the first failed
        check, then 2, 3...; the caller shows at most its last hint), 0 for a pass."""
        labs = self._read()
        entry = labs.setdefault(lab, {})
        entry["attempts"] = int(entry.get("attempts", 0)) + 1
        if passed:
            entry["done"] = True
            entry.setdefault("done_at", datetime.datetime.now().isoformat(timespec="seconds"))
            step = 0
        else:
            step = entry["hint_step"] = int(entry.get("hint_step", 0)) + 1
        self._write(labs)
        return step

    def reset(self, lab=None):
        """Forget `lab` (or every lab): not done, hints from the first again."""
        labs = self._read()
        if lab is None:
            labs = {}
        else:
            labs.pop(lab, None)
        self._write(labs)


def rows(store=None, root=None):
    """(lab, title, state) for every lab, in curriculum order."""
    from .checks import all_labs, load_spec
    store = store or Progress()
    out = []
    for lab_dir in all_labs(root):
        entry = store.get(lab_dir.name)
        title = getattr(load_spec(lab_dir), "TITLE", "")
        if entry["done"]:
            state = "done"
        elif entry["attempts"]:
            state = f"started ({entry['attempts']} check{'s' if entry['attempts'] > 1 else ''})"
        else:
            state = "not started"
        out.append((lab_dir.name, title, state))
    return out


def text(store=None, root=None):
    table = rows(store, root)
    if not table:
        return "no labs found"
    done = sum(state == "done" for _, _, state in table)
    width = max(len(name) for name, _, _ in table)
    lines = [f"{done} of {len(table)} labs done  ({(store or Progress()).path})"]
    lines += [f"  {'✓' if state == 'done' else '·'} {name:<{width}}  {title}  — {state}"
              for name, title, state in table]
    return "\n".join(lines)


def html_table(store=None, root=None):
    e = html.escape
    table = rows(store, root)
    done = sum(state == "done" for _, _, state in table)
    cells = "".join(
        f'<tr><td style="padding:2px 8px;color:{"var(--jp-success-color1, #2e7d32)" if s == "done" else "var(--jp-ui-font-color2)"}">'
        f'{"✓" if s == "done" else "·"}</td><td style="padding:2px 8px">{e(n)}</td>'
        f'<td style="padding:2px 8px">{e(t)}</td><td style="padding:2px 8px">{e(s)}</td></tr>'
        for n, t, s in table)
    return (f'<div style="color:var(--jp-ui-font-color1)"><b>{done} of {len(table)} labs done</b>'
            f'<table style="border-collapse:collapse">{cells}</table></div>')


def progress_widget(store=None, root=None):
    """An ipywidgets view of the labs and their state, with a button that reloads it."""
    import ipywidgets as w
    view = w.HTML(html_table(store, root))
    button = w.Button(description="refresh", icon="refresh", layout=w.Layout(width="auto"))
    button.on_click(lambda _: setattr(view, "value", html_table(store, root)))
    return w.VBox([view, button])
