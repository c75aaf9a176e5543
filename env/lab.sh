#!/usr/bin/env bash
# Starts JupyterLab on this checkout, bound to HOST (default 127.0.0.1), with token authentication.
# It opens on the welcome lesson, which links every lesson and lab; the file browser shows what a
# learner works with (notebooks/, labs/, bpf/, xdplab/, README.md), not the project's own plumbing
# nor the labs' answers (solution.c, check.py, wrong/: hidden from the browser, still on disk).
#   XDPLAB_TOKEN=...   the access token (default: a fresh random one)
#   XDPLAB_ROOT=dir    serve another copy of the course (the browser test serves a scratch copy)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
host=${1:-127.0.0.1}; port=${2:-8888}
root=${XDPLAB_ROOT:-$repo}
token=${XDPLAB_TOKEN:-$("$repo/.venv/bin/python" -c 'import secrets; print(secrets.token_hex(16))')}
hide='["__pycache__", "*.pyc", "*.egg-info", "build", "env", "tests", "platforms", "benchmarks",
       "docs", "Dockerfile", "Makefile", "pyproject.toml",
       "solution.c", "check.py", "wrong"]'
echo "xdplab: open http://$host:$port/lab/tree/notebooks/00-welcome.ipynb?token=$token"
exec "$repo/.venv/bin/jupyter" lab --allow-root --no-browser --ip="$host" --port="$port" \
  --ServerApp.token="$token" --ServerApp.root_dir="$root" \
  --LabApp.default_url=/lab/tree/notebooks/00-welcome.ipynb \
  --ContentsManager.hide_globs="$hide" \
  --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate
