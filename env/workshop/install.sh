#!/usr/bin/env bash
# Installs what the workshop hub runs (README, "Workshops"), each part only when it is missing or
# its pinned list changed, all under $XDPLAB_CACHE/workshop (default .cache/workshop), never
# into the learner's .venv:
#   venv/    JupyterHub, DockerSpawner, jupyterhub-idle-culler (requirements.txt, every version pinned)
#   proxy/   configurable-http-proxy from npm (package.json + package-lock.json, `npm ci`)
# Debian's python3-venv, nodejs and npm are installed with apt when missing. Behind a
# TLS-intercepting proxy, XDPLAB_CA_BUNDLE=/path/ca.pem goes to pip and to npm, as for `make lab`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${XDPLAB_CACHE:-$repo/.cache}/workshop
say() { printf '\033[1mxdplab workshop:\033[0m %s\n' "$*"; }
die() { printf '\033[1;31mxdplab workshop:\033[0m %s\n' "$*" >&2; exit 1; }
if [ -n "${XDPLAB_CA_BUNDLE:-}" ]; then
  [ -r "$XDPLAB_CA_BUNDLE" ] || die "XDPLAB_CA_BUNDLE=$XDPLAB_CA_BUNDLE is not a readable file"
  export PIP_CERT=$XDPLAB_CA_BUNDLE NODE_EXTRA_CA_CERTS=$XDPLAB_CA_BUNDLE
fi
apt_install() {
  [ "$(id -u)" = 0 ] || die "missing Debian packages ($*): run as root (sudo make workshop) or install them"
  say "installing $* (apt)"
  apt-get install -y -q --no-install-recommends "$@" >/dev/null || { apt-get update -q >/dev/null && \
    apt-get install -y -q --no-install-recommends "$@" >/dev/null; } || die "apt-get install $* failed"
}
stamp() { sha256sum "$@" | sha256sum | cut -c1-16; }
mkdir -p "$cache"

python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
want=$(stamp "$here/requirements.txt")
if [ "$(cat "$cache/venv/.xdplab-stamp" 2>/dev/null)" != "$want" ]; then
  say "installing JupyterHub, DockerSpawner and the idle culler into $cache/venv"
  rm -rf "$cache/venv"
  python3 -m venv "$cache/venv"
  "$cache/venv/bin/pip" install -q -r "$here/requirements.txt" || die "pip could not install $here/requirements.txt"
  echo "$want" > "$cache/venv/.xdplab-stamp"
fi

command -v node >/dev/null || apt_install nodejs
command -v npm >/dev/null || apt_install npm
want=$(stamp "$here/package.json" "$here/package-lock.json")
if [ "$(cat "$cache/proxy/.xdplab-stamp" 2>/dev/null)" != "$want" ]; then
  say "installing configurable-http-proxy into $cache/proxy (npm)"
  rm -rf "$cache/proxy" && mkdir -p "$cache/proxy"
  cp "$here/package.json" "$here/package-lock.json" "$cache/proxy/"
  (cd "$cache/proxy" && npm ci --no-audit --no-fund --omit=dev --loglevel=error >/dev/null) \
    || die "npm could not install configurable-http-proxy (see npm's message above)"
  echo "$want" > "$cache/proxy/.xdplab-stamp"
fi
"$cache/proxy/node_modules/.bin/configurable-http-proxy" --version >/dev/null \
  || die "configurable-http-proxy does not run with this node ($(node --version))"
