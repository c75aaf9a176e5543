#!/usr/bin/env bash
# `sudo make workshop PARTICIPANTS=N [PORT=...]` (README, "Workshops"): the input and the machine
# are checked first (names, ports, Docker, the image; nothing is installed when they are wrong),
# then install.sh, then workshop.py runs the hub in the foreground until Ctrl-C.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
python3 "$here/workshop.py" check
bash "$here/install.sh"
exec "${XDPLAB_CACHE:-$repo/.cache}/workshop/venv/bin/python" "$here/workshop.py" start
