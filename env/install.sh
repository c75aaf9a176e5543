#!/usr/bin/env bash
# Installs whatever the lab needs and is missing. Idempotent: quick when nothing is missing.
#   distro packages (apt) -> kernel header tree -> bpffs/tracefs -> .venv with pinned requirements
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
say() { printf '\033[1mxdplab:\033[0m %s\n' "$*"; }
die() { printf '\033[1;31mxdplab:\033[0m %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "installing needs root: run 'sudo make lab' or 'sudo make test'."

# --- 1. supported distro -------------------------------------------------------------
. /etc/os-release
case "${ID}:${VERSION_ID}" in
  debian:12|ubuntu:22.04|ubuntu:24.04) ;;
  *) die "unsupported distribution '${PRETTY_NAME:-$ID $VERSION_ID}'. xdplab installs on Debian 12 and Ubuntu 22.04/24.04; elsewhere use the Dockerfile (see README)." ;;
esac

# --- 2. distro packages ------------------------------------------------------------------
pkgs=(python3-bpfcc python3-venv iproute2 iputils-ping tcpdump bpftool ethtool tcpreplay libbpf1 make)
# chromium: for the browser test (tests/test_browser.py); Ubuntu has it only as a snap, so there
# that test is skipped.
if [ "$ID" = ubuntu ]; then pkgs=("${pkgs[@]/bpftool/linux-tools-common}"); else pkgs+=(chromium); fi
kver=$(uname -r)
need_headers=0
[ -e "/lib/modules/$kver/build/include" ] || need_headers=1

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
updated=0
apt_update() { [ $updated = 1 ] || { say "apt-get update"; apt-get update -q >/dev/null; updated=1; }; }
if [ $need_headers = 1 ]; then
  # The running kernel's own headers when the distro has them, else the distro's generic ones.
  if ls -d /usr/src/linux-headers-* >/dev/null 2>&1; then :
  else
    apt_update
    if apt-cache show "linux-headers-$kver" >/dev/null 2>&1; then missing+=("linux-headers-$kver")
    elif [ "$ID" = debian ]; then missing+=("linux-headers-$(dpkg --print-architecture)")
    else missing+=("linux-headers-generic"); fi
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  apt_update
  say "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 3. a kernel header tree bcc can use -------------------------------------------------
"$here/kernel-headers.sh"

# --- 4. bpffs and tracefs ---------------------------------------------------------------
# (they fail without privilege, e.g. during `docker build`: the container mounts them when it starts)
mount_fs() {
  mountpoint -q "$2" && return 0
  if mount -t "$1" "$1" "$2" 2>/dev/null; then say "mounted $1 on $2"
  else say "could not mount $1 on $2 (no privilege here?): 'xdplab doctor' will say what to do"; fi
}
mount_fs bpf /sys/fs/bpf
mount_fs tracefs /sys/kernel/tracing

# --- 5. the virtualenv --------------------------------------------------------------------
venv="$repo/.venv"
if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv from /usr/bin/python3 (--system-site-packages, for bcc's distro bindings)"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
stamp="$venv/.xdplab-requirements"
want=$(cat "$repo/env/requirements.txt" "$repo/pyproject.toml" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing pinned Python requirements into .venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$repo/env/requirements.txt"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$repo"
  echo "$want" > "$stamp"
fi
# The venv's python as the notebooks' kernel "xdplab" (inside .venv, so JupyterLab offers it).
if ! grep -qs "\"$venv/bin/python\"" "$venv/share/jupyter/kernels/xdplab/kernel.json"; then
  say "registering the notebook kernel 'Python (xdplab)'"
  "$venv/bin/python" -m ipykernel install --sys-prefix --name xdplab --display-name "Python (xdplab)" >/dev/null
fi
"$venv/bin/python" -c "import bcc" 2>/dev/null || die "bcc's Python bindings are not visible in .venv: is python3-bpfcc installed for /usr/bin/python3?"
say "environment ready"
