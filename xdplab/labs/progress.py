"""The learner's progress through the labs: which are done, how many checks, which hint is next.

Stored as JSON in the learner's home, ~/.local/share/xdplab/progress.json ($XDG_DATA_HOME if
set); under sudo in SUDO_USER's home (and owned by that user), so `sudo make lab` keeps the
learner's progress where it belongs. $XDPLAB_PROGRESS names another file (the tests use it).

    Progress().record("03a-drop-by-port", passed=False)  # → the hint step to show (1, 2, ...)
    Progress().status()                                   # {lab: {"done", "attempts", "hint_step"}}
    xdplab progress                                       # the same on the command line
    progress_widget()                                     # and in a notebook
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import pwd
import tempfile
from pathlib import Path
from typing import Any, TypedDict

from xdplab.errors import is_count
from xdplab.labs.catalogue import RENAMED, all_labs, load_spec
from xdplab.text import escape


class Entry(TypedDict):
    """One lab's progress, as Progress.get() and status() give it."""
    done: bool
    attempts: int
    hint_step: int
    done_at: str | None       # when it was first passed (ISO 8601, to the second), or None


def _merge(old, new):
    """One entry from the progress of a lab under its old name and its new one."""
    out = {**old, **new}
    if "attempts" in old or "attempts" in new:
        out["attempts"] = int(old.get("attempts", 0)) + int(new.get("attempts", 0))
    if old.get("done") or new.get("done"):
        out["done"] = True
        dates = [e["done_at"] for e in (old, new) if e.get("done") and e.get("done_at")]
        if dates:
            out["done_at"] = min(dates)
    return out


def default_path() -> Path:
    """Where the progress file is: $XDPLAB_PROGRESS, else the learner's data home (SUDO_USER's
    under sudo), see the module doc."""
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


def _count(value):
    """A count from the file: a whole number from 0 on, else None (not valid)."""
    return value if is_count(value, least=0) else None


class Progress:
    """The progress file: read on every call, written atomically (a crash never leaves half).

    A file that is not what xdplab wrote (broken JSON, someone else's file, a value of the wrong
    type) never stops a check: whatever is valid in it is kept, the file as it was is kept beside
    it (progress.json.broken-YYYYmmdd-HHMMSS) before anything is written, and `notices` says so
    in plain words. A file that cannot be written (read-only, a directory in its place) leaves the
    check's result standing; `notices` says that the attempt was not saved."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self.notices: list[str] = []        # what went wrong with the file, in plain words, once each
        self._kept = None        # where the unreadable original was saved (moved aside)

    def _notice(self, text):
        if text not in self.notices:
            self.notices.append(text)

    def _load(self):
        """(labs, extra, problems): the valid lab entries, other top-level keys to keep, and
        what was not valid (empty when the file is fine or missing)."""
        try:
            text = self.path.read_text()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return {}, {}, []        # nothing to read (writing says what is in the way)
        except (OSError, UnicodeDecodeError) as e:
            return {}, {}, [f"{self.path} cannot be read ({getattr(e, 'strerror', None) or e})"]
        try:
            data = json.loads(text)
        except ValueError as e:
            return {}, {}, [f"{self.path} is not valid JSON ({e})"]
        if not isinstance(data, dict) or not isinstance(data.get("labs", {}), dict):
            return {}, {}, [f"{self.path} is not an xdplab progress file (it holds "
                            f"{type(data).__name__ if not isinstance(data, dict) else 'no labs table'})"]
        if data and "labs" not in data:      # an object xdplab did not write ({"theme": "dark"}):
            keys = ", ".join(sorted(map(repr, data))[:5])    # kept aside whole, never written into
            return {}, {}, [f"{self.path} is not an xdplab progress file (it holds no labs table, "
                            f"only {keys})"]
        extra = {k: v for k, v in data.items() if k != "labs"}
        labs, problems = {}, []
        for lab, entry in data.get("labs", {}).items():
            if not isinstance(entry, dict):
                problems.append(f"the entry of lab {lab!r} is not a table")
                continue
            clean = dict(entry)
            for key in ("attempts", "hint_step"):
                if key in entry and _count(entry[key]) is None:
                    problems.append(f"{key} of lab {lab!r} is {entry[key]!r}, not a count")
                    clean.pop(key)
            if "done" in entry and not isinstance(entry["done"], bool):
                problems.append(f"done of lab {lab!r} is {entry['done']!r}, not true or false")
                clean.pop("done")
            if "done_at" in entry and not isinstance(entry["done_at"], str):
                problems.append(f"done_at of lab {lab!r} is {entry['done_at']!r}, not a date")
                clean.pop("done_at")
            if lab in RENAMED:           # recorded before the labs were renumbered
                lab = RENAMED[lab]
                clean = _merge(clean, labs.get(lab, {}))
            elif lab in labs:            # the new name after an old one: merge into it
                clean = _merge(labs[lab], clean)
            labs[lab] = clean
        return labs, extra, problems

    def _read(self):
        labs, extra, problems = self._load()
        if problems and self._keep_original(problems):
            self._save(labs, extra)          # the valid entries, in a fresh file of our own
        return labs

    def _keep_original(self, problems):
        """Move the file that could not be read as it is out of the way (kept, never deleted),
        so that writing never overwrites it; say so once. True when it was moved."""
        if self._kept is None and self.path.is_file():
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            kept = self.path.with_name(f"{self.path.name}.broken-{stamp}")
            n = 1
            while kept.exists():
                n += 1
                kept = self.path.with_name(f"{self.path.name}.broken-{stamp}-{n}")
            try:
                self.path.rename(kept)
                self._kept = kept
            except OSError:
                self._kept = False
        where = (f"the file as it was is kept as {self._kept}" if self._kept else
                 "it is left as it is and nothing is written there")
        self._notice(f"your progress file had problems: {'; '.join(problems)}. Whatever was "
                     f"valid in it is kept; {where}.")
        return bool(self._kept) and not self.path.exists()

    def _write(self, labs, extra=None):
        _, found, problems = self._load()
        extra = found if extra is None else extra
        if problems and not self._keep_original(problems):
            raise OSError(f"{self.path} is not a progress file xdplab can replace safely")
        made = [p for p in reversed(self.path.parents) if not p.exists()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".progress-")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({**extra, "labs": labs}, f, indent=1, sort_keys=True)
            os.chmod(tmp, 0o644)
            owner = self._owner()
            if owner:
                for p in [*made, Path(tmp)]:
                    os.chown(p, *owner)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _save(self, labs, extra=None):
        """_write(), turning a file that cannot be written into a notice: True when saved."""
        try:
            self._write(labs, extra)
            return True
        except OSError as e:
            why = {errno.EISDIR: "there is a folder of that name",
                   errno.ENOTDIR: "a part of that path is a file, not a folder",
                   errno.EEXIST: "a part of that path is a file, not a folder",
                   errno.EACCES: "there is no permission to write there",
                   errno.EPERM: "there is no permission to write there",
                   errno.EROFS: "the file system is read-only",
                   errno.ENOSPC: "the disk is full"}.get(e.errno, e.strerror or str(e))
            self._notice(f"your progress could not be saved in {self.path}: "
                         f"{why}. This check still counts for now; set XDPLAB_PROGRESS=/a/writable/file.json to keep it "
                         "elsewhere")
            return False

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

    @staticmethod
    def _entry(entry: dict[str, Any]) -> Entry:
        return {"done": bool(entry.get("done")), "attempts": int(entry.get("attempts", 0)),
                "hint_step": int(entry.get("hint_step", 0)), "done_at": entry.get("done_at")}

    def get(self, lab: str) -> Entry:
        """The progress of `lab` (a lab folder's name); a lab never checked is not done, 0
        attempts."""
        return self._entry(self._read().get(lab, {}))

    def status(self) -> dict[str, Entry]:
        """{lab: its progress} of every lab the file knows."""
        return {lab: self._entry(entry) for lab, entry in self._read().items()}

    def record(self, lab: str, passed: bool) -> int:
        """Record one check of `lab`. Returns the hint step for a failure (1 for the first failed
        check, then 2, 3...; the caller shows at most its last hint), 0 for a pass. A file that
        cannot be written is a notice (self.notices), not an error: the check still counts."""
        labs = self._read()
        entry = labs.setdefault(lab, {})
        entry["attempts"] = int(entry.get("attempts", 0)) + 1
        if passed:
            entry["done"] = True
            entry.setdefault("done_at", datetime.datetime.now().isoformat(timespec="seconds"))
            step = 0
        else:
            step = entry["hint_step"] = int(entry.get("hint_step", 0)) + 1
        self._save(labs)
        return step

    def reset(self, lab: str | None = None) -> None:
        """Forget `lab` (or every lab): not done, hints from the first again. Raises LabError
        when the file cannot be written."""
        labs = self._read()
        if lab is None:
            labs = {}
        else:
            labs.pop(lab, None)
        if not self._save(labs):
            from xdplab.errors import LabError
            raise LabError(self.notices[-1])


def rows(store: Progress | None = None,
         root: str | os.PathLike[str] | None = None) -> list[tuple[str, str, str]]:
    """(lab, title, state) for every lab, in curriculum order."""
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


def text(store: Progress | None = None, root: str | os.PathLike[str] | None = None) -> str:
    """The progress through the labs as text (`xdplab progress`)."""
    store = store or Progress()
    table = rows(store, root)
    if not table:
        return "no labs found"
    done = sum(state == "done" for _, _, state in table)
    width = max(len(name) for name, _, _ in table)
    lines = [f"{done} of {len(table)} labs done  ({store.path})"]
    lines += [f"  {'✓' if state == 'done' else '·'} {name:<{width}}  {title}  — {state}"
              for name, title, state in table]
    lines += [f"note: {n}" for n in store.notices]
    return "\n".join(lines)


def html_table(store: Progress | None = None, root: str | os.PathLike[str] | None = None) -> str:
    """The progress through the labs as an HTML table."""
    e = escape
    store = store or Progress()
    table = rows(store, root)
    done = sum(state == "done" for _, _, state in table)
    cells = "".join(
        f'<tr><td style="padding:2px 8px;color:{"var(--jp-success-color1, #2e7d32)" if s == "done" else "var(--jp-ui-font-color2)"}">'
        f'{"✓" if s == "done" else "·"}</td><td style="padding:2px 8px">{e(n)}</td>'
        f'<td style="padding:2px 8px">{e(t)}</td><td style="padding:2px 8px">{e(s)}</td></tr>'
        for n, t, s in table)
    return (f'<div style="color:var(--jp-ui-font-color1)"><b>{done} of {len(table)} labs done</b>'
            f'<table style="border-collapse:collapse">{cells}</table>'
            + "".join(f"<div><small>note: {e(n)}</small></div>" for n in store.notices) + "</div>")


# Any: an ipywidgets VBox; no module outside xdplab/ui imports ipywidgets for a hint
def progress_widget(store: Progress | None = None,
                    root: str | os.PathLike[str] | None = None) -> Any:
    """An ipywidgets view of the labs and their state, with a button that reloads it."""
    import ipywidgets as w
    view = w.HTML(html_table(store, root))
    button = w.Button(description="refresh", icon="refresh", layout=w.Layout(width="auto"))
    button.on_click(lambda _: setattr(view, "value", html_table(store, root)))
    return w.VBox([view, button])
