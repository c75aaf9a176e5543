#!/usr/bin/env bash
# Starts JupyterLab on notebooks/, bound to HOST (default 127.0.0.1), with token authentication.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
host=${1:-127.0.0.1}; port=${2:-8888}
token=${XDPLAB_TOKEN:-$("$repo/.venv/bin/python" -c 'import secrets; print(secrets.token_hex(16))')}
echo "xdplab: open http://$host:$port/lab?token=$token"
exec "$repo/.venv/bin/jupyter" lab --allow-root --no-browser --ip="$host" --port="$port" \
  --ServerApp.token="$token" --ServerApp.root_dir="$repo/notebooks"
