#!/usr/bin/env bash
# Installs whatever the lab needs and is missing. Idempotent: quick when nothing is missing.
#   distro packages (apt) -> kernel header tree -> bpffs/tracefs -> .venv with pinned requirements
#
#   bash env/install.sh            what a learner needs (make lab, make doctor, the Docker image)
#   bash env/install.sh --tests    also what the test suite needs: pytest, Playwright, chromium
#
# Behind a TLS-intercepting proxy (corporate networks), name its CA bundle (PEM) once:
#   sudo XDPLAB_CA_BUNDLE=/path/to/ca.pem make lab
# pip and apt (for https sources) then verify against it. Without it, pip's own `cert` setting
# (pip config, PIP_CERT) applies as usual. Verification is never turned off.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
say() { printf '\033[1mxdplab:\033[0m %s\n' "$*"; }
die() { printf '\033[1;31mxdplab:\033[0m %s\n' "$*" >&2; exit 1; }

tests=0
for arg in "$@"; do
  case "$arg" in
    --tests) tests=1 ;;
    *) die "unknown option '$arg' (usage: env/install.sh [--tests])" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "installing needs root: run 'sudo make lab' or 'sudo make test'."

# --- 0. an extra CA bundle, when the network needs one --------------------------------
apt_ca=()
if [ -n "${XDPLAB_CA_BUNDLE:-}" ]; then
  [ -r "$XDPLAB_CA_BUNDLE" ] && [ -s "$XDPLAB_CA_BUNDLE" ] \
    || die "XDPLAB_CA_BUNDLE=$XDPLAB_CA_BUNDLE: no such file, or empty (name a PEM file of CA certificates)"
  grep -q -- "-----BEGIN CERTIFICATE-----" "$XDPLAB_CA_BUNDLE" \
    || die "XDPLAB_CA_BUNDLE=$XDPLAB_CA_BUNDLE holds no PEM certificate ('-----BEGIN CERTIFICATE-----')"
  export PIP_CERT="$XDPLAB_CA_BUNDLE"
  apt_ca=(-o "Acquire::https::CAInfo=$XDPLAB_CA_BUNDLE")
  say "verifying TLS against the CA bundle $XDPLAB_CA_BUNDLE (XDPLAB_CA_BUNDLE)"
fi

# --- 1. supported distro -------------------------------------------------------------
. /etc/os-release
case "${ID}:${VERSION_ID}" in
  debian:12|ubuntu:22.04|ubuntu:24.04) ;;
  *) die "unsupported distribution '${PRETTY_NAME:-$ID $VERSION_ID}'. xdplab installs on Debian 12 and Ubuntu 22.04/24.04; elsewhere use the Dockerfile (see README)." ;;
esac

# --- 2. distro packages ------------------------------------------------------------------
# clang, llvm and libbpf-dev: for libbpf programs (lab.load("x.bpf.c"), a .o), which clang builds
# itself; bcc brings its own LLVM, so lessons 00-10 do not need them
pkgs=(python3-bpfcc python3-venv iproute2 iputils-ping tcpdump bpftool ethtool tcpreplay libbpf1 make
      clang llvm libbpf-dev)
if [ "$ID" = ubuntu ]; then pkgs=("${pkgs[@]/bpftool/linux-tools-common}"); fi
# <linux/icmp.h> reaches glibc's <sys/socket.h>, which under -target bpf asks for the 32-bit stubs
# (gnu/stubs-32.h): libc6-dev-i386 has them (xdp-tutorial's setup installs it for the same reason)
if [ "$(dpkg --print-architecture)" = amd64 ]; then pkgs+=(libc6-dev-i386); fi
# chromium: for the browser test (tests/test_browser.py) only; Ubuntu has it only as a snap, so
# there that test is skipped.
if [ $tests = 1 ] && [ "$ID" = debian ]; then pkgs+=(chromium); fi
kver=$(uname -r)
need_headers=0
[ -e "/lib/modules/$kver/build/include" ] || need_headers=1

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
updated=0
apt_update() { [ $updated = 1 ] || { say "apt-get update"; apt-get "${apt_ca[@]}" update -q >/dev/null; updated=1; }; }
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
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_ca[@]}" install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# The clang of the LLVM that bcc links (clang-14 for Debian 12's bcc, libclang-cpp.so.14): the
# compile helper builds a precompiled header of bcc's headers and parsing_helpers.h with it, and a
# fresh compile then costs about a third of the CPU. Without it compiles are plain: not fatal.
llvm=$(ldd /usr/lib/*/libbcc.so.0 2>/dev/null | grep -o 'libclang-cpp\.so\.[0-9]*' | head -1 | sed 's/.*\.so\.//' || true)
if [ -n "$llvm" ] && ! installed "clang-$llvm"; then
  apt_update
  say "installing clang-$llvm (bcc's LLVM: precompiled headers make fresh compiles faster)"
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_ca[@]}" install -y -q --no-install-recommends "clang-$llvm" >/dev/null \
    || say "could not install clang-$llvm: compiles stay plain (slower, otherwise the same)"
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
# requirements.txt: what a learner needs; requirements-test.txt: what the tests add. Each set
# has its own stamp, so that `make lab` after `make test` (or the reverse) installs nothing.
pip_args=(-q --disable-pip-version-check)
sets=(requirements); [ $tests = 1 ] && sets+=(requirements-test)
for set in "${sets[@]}"; do
  stamp="$venv/.xdplab-$set"
  want=$(cat "$repo/env/$set.txt" "$repo/pyproject.toml" | sha256sum | cut -d' ' -f1)
  [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && continue
  say "installing the pinned Python packages of env/$set.txt into .venv"
  "$venv/bin/pip" install "${pip_args[@]}" -r "$repo/env/$set.txt" \
    || die "pip could not install env/$set.txt (above). Behind a TLS-intercepting proxy, name its CA bundle: XDPLAB_CA_BUNDLE=/path/ca.pem (see README)"
  if [ "$set" = requirements ]; then
    # xdplab itself, editable, built by the venv's setuptools with the pinned wheel (no download)
    "$venv/bin/pip" install "${pip_args[@]}" --no-deps --no-build-isolation -e "$repo" \
      || die "pip could not install xdplab itself into .venv (above)"
  fi
  echo "$want" > "$stamp"
done
# The venv's python as the notebooks' kernel "xdplab" (inside .venv, so JupyterLab offers it).
if ! grep -qs "\"$venv/bin/python\"" "$venv/share/jupyter/kernels/xdplab/kernel.json"; then
  say "registering the notebook kernel 'Python (xdplab)'"
  "$venv/bin/python" -m ipykernel install --sys-prefix --name xdplab --display-name "Python (xdplab)" >/dev/null
fi
# JupyterLab's defaults for the course: no "official Jupyter news?" toast over every lesson and no
# update checks (a lab machine asks no website anything). A learner's own settings still win.
mkdir -p "$venv/share/jupyter/lab/settings"
cmp -s "$repo/env/jupyterlab-overrides.json" "$venv/share/jupyter/lab/settings/overrides.json" \
  || cp "$repo/env/jupyterlab-overrides.json" "$venv/share/jupyter/lab/settings/overrides.json"
"$venv/bin/python" -c "import bcc" 2>/dev/null || die "bcc's Python bindings are not visible in .venv: is python3-bpfcc installed for /usr/bin/python3?"
say "environment ready"
