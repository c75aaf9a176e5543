"""The participant's Jupyter server in the workshop image remembers which notebooks were opened.

Opening a notebook in JupyterLab starts a session (a kernel for that notebook); RecordingSessionManager
writes the notebook's path and the first time it was opened into $XDPLAB_WORKSHOP_OPENED
(/opt/xdplab/work/progress/opened.json, on the participant's volume), beside xdplab's progress.json:

    {"opened": {"notebooks/01-hello-xdp.ipynb": "2026-12-02T17:20:03+00:00", ...}}

The instructor view reads it through this server (env/workshop/instructor.py). start.sh turns it
on: --ServerApp.session_manager_class=xdplab_workshop_server.RecordingSessionManager. A file that
cannot be written never stops the notebook from opening.
"""
import datetime
import json
import os
import tempfile
from pathlib import Path

from jupyter_server.services.sessions.sessionmanager import SessionManager

OPENED = Path(os.environ.get("XDPLAB_WORKSHOP_OPENED", "/opt/xdplab/work/progress/opened.json"))


def record(path, file=None, when=None):
    """Add `path` to the opened file (OPENED unless `file`), with the time it was first opened;
    True when written."""
    file = Path(file) if file else OPENED
    try:
        data = json.loads(file.read_text())
        opened = data["opened"] if isinstance(data, dict) and isinstance(data.get("opened"), dict) else {}
    except (OSError, ValueError):
        opened = {}
    if path in opened:
        return False
    when = when or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    opened[path] = when
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".opened-")
    with os.fdopen(fd, "w") as f:
        json.dump({"opened": opened}, f, indent=1, sort_keys=True)
    os.chmod(tmp, 0o644)
    os.replace(tmp, file)
    return True


class RecordingSessionManager(SessionManager):
    """JupyterLab 4 opens a notebook's session under a made-up path (notebooks/<uuid>) and then
    renames it to the notebook's own (PATCH, update_session): both ways are recorded, and only
    paths of notebooks (.ipynb)."""

    def _record(self, path):
        if path and str(path).endswith(".ipynb"):
            try:
                record(str(path))
            except OSError as e:
                self.log.warning("xdplab workshop: could not record %s as opened: %s", path, e)

    async def create_session(self, path=None, name=None, type=None, kernel_name=None, kernel_id=None):
        model = await super().create_session(path=path, name=name, type=type,
                                             kernel_name=kernel_name, kernel_id=kernel_id)
        self._record(path)
        return model

    async def update_session(self, session_id, **kwargs):
        await super().update_session(session_id, **kwargs)
        self._record(kwargs.get("path"))
