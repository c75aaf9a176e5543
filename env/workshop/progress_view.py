"""What the instructor view shows of one participant, from the files their own server hands out.

The instructor service (instructor.py) reads two files of each participant through the
participant's server (the Jupyter contents API) and gives their text to these functions; nothing
here does I/O, so tests/unit/test_unit_workshop_progress.py runs them without a hub or Docker.

- work/progress/progress.json: xdplab's lab progress (xdplab/labs/progress.py writes it; the
  workshop image points XDPLAB_PROGRESS there): {"labs": {lab: {"done", "attempts", "hint_step",
  "done_at"}}}. `attempts` counts every check, `hint_step` every failed one.
- work/progress/opened.json: the notebooks the participant opened (the workshop image's session
  recorder, image/xdplab_workshop_server.py): {"opened": {path: first time opened}}.

progress.json does not say which result the last check had, only the counts; the view works it
out from two reads in a row (`last_checks`): a check that added a failure failed, one that did not
passed. Before the service has seen a change it says what the counts prove, and no more
(`settled_result`).

Standard library only: the service runs in the hub's virtualenv, which has no xdplab.
"""
import html
import json
from dataclasses import dataclass, field

PASSED, FAILED, MIXED = "passed", "failed", "passed and failed"


def _count(value):
    """A count from the file (a whole number from 0 on, not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def parse_progress(text):
    """(labs, problems) from the text of progress.json. labs: {lab: {"done", "attempts",
    "hint_step", "done_at"}}, only from valid values (as xdplab keeps them); problems: what was
    not valid, in plain words. No text (None: no file yet) is no progress."""
    if text is None:
        return {}, []
    try:
        data = json.loads(text)
    except ValueError as e:
        return {}, [f"progress.json is not valid JSON ({e})"]
    if not isinstance(data, dict) or not isinstance(data.get("labs", {}), dict):
        return {}, ["progress.json is not an xdplab progress file"]
    labs, problems = {}, []
    for lab, entry in data.get("labs", {}).items():
        if not isinstance(entry, dict):
            problems.append(f"the entry of lab {lab!r} is not a table")
            continue
        attempts, hint = _count(entry.get("attempts", 0)), _count(entry.get("hint_step", 0))
        done = entry.get("done", False)
        for key, ok in (("attempts", attempts), ("hint_step", hint)):
            if ok is None:
                problems.append(f"{key} of lab {lab!r} is {entry[key]!r}, not a count")
        if not isinstance(done, bool):
            problems.append(f"done of lab {lab!r} is {done!r}, not true or false")
            done = False
        done_at = entry.get("done_at")
        labs[lab] = {"done": done, "attempts": attempts or 0, "hint_step": hint or 0,
                     "done_at": done_at if isinstance(done_at, str) else None}
    return labs, problems


def parse_opened(text):
    """{path: when first opened} from the text of opened.json (None: nothing opened yet)."""
    if text is None:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    opened = data.get("opened") if isinstance(data, dict) else None
    if not isinstance(opened, dict):
        return {}
    return {p: t for p, t in opened.items() if isinstance(p, str) and isinstance(t, str)}


def lessons_opened(opened, lessons):
    """The lessons (names like "01-hello-xdp", in course order) whose notebook was opened."""
    seen = {p.rsplit("/", 1)[-1].removesuffix(".ipynb") for p in opened
            if p.startswith("notebooks/")}
    return [name for name in lessons if name in seen]


def settled_result(entry):
    """What the counts alone prove about a lab's checks: every one passed (no failure), every
    one failed (never done), or None (both happened, in an order the file does not keep)."""
    if not entry["attempts"]:
        return None
    if entry["hint_step"] == 0:
        return PASSED
    if not entry["done"] and entry["hint_step"] == entry["attempts"]:
        return FAILED
    return None


@dataclass
class Check:
    """A lab's check (or checks) seen between two reads: `count` of them, `failed` of those."""
    lab: str
    count: int
    failed: int
    hint_step: int

    @property
    def result(self):
        if self.failed == 0:
            return PASSED
        return FAILED if self.failed == self.count else MIXED

    def text(self):
        more = f" ({self.count} checks: {self.count - self.failed} passed, {self.failed} failed, " \
               f"order not known)" if self.result == MIXED else \
               (f" ({self.count} checks)" if self.count > 1 else "")
        hint = f", hint {self.hint_step}" if self.hint_step else ""
        return f"{self.lab}: {self.result}{more}{hint}"


def last_checks(before, after):
    """The checks made between two reads of progress.json (labs dicts from parse_progress), as
    Check items, one per lab that was checked. A lab whose counts went down was reset by the
    learner: that is no check."""
    out = []
    for lab, now in sorted(after.items()):
        was = before.get(lab, {"attempts": 0, "hint_step": 0})
        count = now["attempts"] - was["attempts"]
        failed = now["hint_step"] - was["hint_step"]
        if count <= 0 or failed < 0 or failed > count:
            continue
        out.append(Check(lab, count, failed, now["hint_step"]))
    return out


@dataclass
class Participant:
    """What the view knows of one participant; `observe()` takes each new read."""
    name: str
    server: str = "not started"            # "running", "starting", "stopping", "not started"
    labs: dict = field(default_factory=dict)
    opened: dict = field(default_factory=dict)
    last: list = field(default_factory=list)     # the Checks of the latest change seen
    last_seen_at: str = None                     # when that change was seen
    problems: list = field(default_factory=list)
    error: str = None                            # why the last read failed, if it did
    read_at: str = None                          # when the files were last read
    _read_once: bool = False

    def observe(self, progress_text, opened_text, when):
        """A successful read: the files' texts (None: no such file yet) at time `when`."""
        labs, self.problems = parse_progress(progress_text)
        if self._read_once:
            checks = last_checks(self.labs, labs)
            if checks:
                self.last, self.last_seen_at = checks, when
        self.labs, self.opened, self.error, self._read_once = labs, parse_opened(opened_text), None, True
        self.read_at = when

    def row(self, lessons, all_labs):
        """One row of the view as plain data (the JSON the page and the tests read)."""
        done = [lab for lab in all_labs if self.labs.get(lab, {}).get("done")]
        started = {lab: {**entry, "result": settled_result(entry)}
                   for lab, entry in self.labs.items() if entry["attempts"] and not entry["done"]}
        return {"name": self.name, "server": self.server,
                "lessons_opened": lessons_opened(self.opened, lessons),
                "labs_done": done, "labs_total": len(all_labs), "labs_started": started,
                "last_check": [{"lab": c.lab, "result": c.result, "count": c.count,
                                "failed": c.failed, "hint_step": c.hint_step, "text": c.text()}
                               for c in self.last],
                "last_check_seen_at": self.last_seen_at, "read_at": self.read_at,
                "problems": self.problems, "error": self.error}


def page(rows, refreshed_at, every=10):
    """The instructor's page: one table row per participant, reloading itself every `every` s."""
    e = html.escape

    def lessons(r):
        return ", ".join(n.split("-", 1)[0] for n in r["lessons_opened"]) or "—"

    def labs(r):
        done = ", ".join(e(n) for n in r["labs_done"])
        started = ", ".join(
            f"{e(n)} (hint {s['hint_step']})" for n, s in sorted(r["labs_started"].items()))
        parts = [f"{len(r['labs_done'])} of {r['labs_total']} done" + (f": {done}" if done else "")]
        if started:
            parts.append(f"started: {started}")
        return "<br>".join(parts)

    def last(r):
        if not r["last_check"]:
            return "—"
        return "<br>".join(e(c["text"]) for c in r["last_check"]) + \
            f"<br><small>seen {e(r['last_check_seen_at'] or '')}</small>"

    def state(r):
        note = f"<br><small>{e(r['error'])}</small>" if r["error"] else ""
        note += "".join(f"<br><small>{e(p)}</small>" for p in r["problems"])
        return e(r["server"]) + note

    body = "".join(
        f"<tr><td>{e(r['name'])}</td><td>{state(r)}</td><td>{lessons(r)}</td><td>{labs(r)}</td>"
        f"<td>{last(r)}</td></tr>" for r in rows)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>xdplab workshop</title>"
            f"<meta http-equiv='refresh' content='{int(every)}'>"
            "<style>body{font-family:sans-serif}td,th{padding:4px 10px;border-bottom:1px solid #ddd;"
            "vertical-align:top;text-align:left}</style></head><body>"
            f"<h1>xdplab workshop: {len(rows)} participants</h1>"
            f"<p>read {e(refreshed_at)} through each participant's server; this page reloads every "
            f"{int(every)} s (<a href='api/rows'>as JSON</a>)</p>"
            "<table><tr><th>participant</th><th>server</th><th>lessons opened</th><th>labs</th>"
            f"<th>last check</th></tr>{body}</table></body></html>")
