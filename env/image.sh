#!/usr/bin/env bash
# Builds the xdplab Docker image (README, "Docker"):   make image   or   bash env/image.sh
#
#   IMAGE=xdplab              the tag to build
#   BASE=debian:12            the base image (FROM); any Debian 12 root filesystem will do
#   XDPLAB_CA_BUNDLE=ca.pem   a CA bundle (PEM) for a TLS-intercepting proxy; without it, pip's own
#                             `cert` setting on this machine (pip config get global.cert, PIP_CERT)
#   DOCKER=docker             the docker client
#   NETWORK=host              the build's network (docker build --network), when the default won't do
#
# The bundle reaches the build as a BuildKit secret: pip and apt inside the build verify against
# it, and it is in no layer of the image. Verification is never turned off.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
say() { printf '\033[1mxdplab:\033[0m %s\n' "$*"; }
die() { printf '\033[1;31mxdplab:\033[0m %s\n' "$*" >&2; exit 1; }
image=${IMAGE:-xdplab}
base=${BASE:-debian:12}
docker=${DOCKER:-docker}
command -v "$docker" >/dev/null || die "no '$docker' command: install Docker (Debian: apt-get install docker.io)"
"$docker" info >/dev/null 2>&1 || die "'$docker info' fails: is the Docker engine running (dockerd), and may you use it?"

ca=${XDPLAB_CA_BUNDLE:-${PIP_CERT:-}}
if [ -z "$ca" ]; then
  for py in python3 /usr/bin/python3; do
    ca=$("$py" -m pip config get global.cert 2>/dev/null || true)
    [ -n "$ca" ] && break
  done
fi
opts=()
[ -n "${NETWORK:-}" ] && opts+=(--network "$NETWORK")
secret=()
if [ -n "$ca" ]; then
  [ -r "$ca" ] && grep -q -- "-----BEGIN CERTIFICATE-----" "$ca" \
    || die "CA bundle '$ca' (XDPLAB_CA_BUNDLE, PIP_CERT or pip's cert setting) is not a readable PEM file"
  secret=(--secret "id=xdplab_ca,src=$ca")
  say "the build verifies TLS against $ca"
fi
say "building $image from $base"
DOCKER_BUILDKIT=1 "$docker" build --build-arg "BASE=$base" "${opts[@]}" "${secret[@]}" -t "$image" "$repo"
say "built $image ($("$docker" image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
