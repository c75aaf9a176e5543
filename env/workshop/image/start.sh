#!/usr/bin/env bash
# A participant's server in the workshop image (DockerSpawner runs it, adding the server's own
# arguments). As the xdplab image's start: install.sh (quick: it mounts bpffs and tracefs), the
# doctor's report for this kernel in the log; then the bridge that carries the server's calls to
# the hub's API (sockbridge.py: the hub listens on the host's 127.0.0.1 only) and the server
# itself, on the welcome lesson, with the file browser as `make lab` shows it.
set -euo pipefail
cd /opt/xdplab
bash env/install.sh
.venv/bin/python -m xdplab doctor --quiet || true
# a new volume: the course as the image has it (a volume in use is never overwritten)
[ -e work/notebooks ] || cp -a /opt/xdplab-workshop/work.dist/. work/
mkdir -p work/progress
# DockerSpawner mounts the hub's socket here; under Kubernetes the hub's API is a Service instead
if [ -d /run/xdplab-hub ]; then
  .venv/bin/python /opt/xdplab-workshop/sockbridge.py tcp:127.0.0.1:8081 unix:/run/xdplab-hub/hub.sock &
fi
hide='["__pycache__", "*.pyc", "*.egg-info", "build", "env", "tests", "platforms", "benchmarks",
       "docs", "Dockerfile", "Makefile", "pyproject.toml", "work",
       "solution.c", "check.py", "wrong"]'
export PYTHONPATH=/opt/xdplab-workshop${PYTHONPATH:+:$PYTHONPATH}
exec .venv/bin/jupyterhub-singleuser --allow-root --ServerApp.root_dir=/opt/xdplab \
  --ServerApp.session_manager_class=xdplab_workshop_server.RecordingSessionManager \
  --ContentsManager.hide_globs="$hide" \
  --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate "$@"
