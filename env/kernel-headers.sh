#!/usr/bin/env bash
# bcc compiles against a kernel header tree. VM kernels (this CI, cloud VMs, Docker Desktop, WSL2)
# ship no /lib/modules/$(uname -r)/build. XDP programs only use UAPI headers (struct xdp_md, the
# BPF helper ids, ethhdr/iphdr...), which are stable across kernel versions, so a tree merged from the
# distro's generic header packages works. We build it in a directory the project owns and name it with
# BCC_KERNEL_SOURCE; we never write into /lib/modules.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
kver=$(uname -r)
if [ -e "/lib/modules/$kver/build/include" ]; then exit 0; fi
dest_root="$repo/.venv/kernel-headers"
mkdir -p "$dest_root"
# Ubuntu: /usr/src/linux-headers-X.Y.Z-N-generic is already a whole tree (its arch part links into
# the common part): name it as it is.
ubuntu=$(ls -d /usr/src/linux-headers-*-generic 2>/dev/null | sort -V | tail -1 || true)
if [ -n "$ubuntu" ] && [ -d "$ubuntu/include" ]; then
  ver=${ubuntu#/usr/src/linux-headers-}
  [ -e "$dest_root/linux-headers-$ver/.complete" ] && exit 0
  rm -rf "$dest_root/linux-headers-$ver"; mkdir -p "$dest_root/linux-headers-$ver"
  cp -a "$ubuntu/." "$dest_root/linux-headers-$ver/"
  # its relative links point at ../linux-headers-X.Y.Z-N: give them that neighbour
  common=${ubuntu%-generic}
  [ -d "$common" ] && ln -sfn "$common" "$dest_root/$(basename "$common")"
  touch "$dest_root/linux-headers-$ver/.complete"
  echo "xdplab: using Ubuntu kernel header tree $ubuntu (for running kernel $kver)"
  exit 0
fi
# Debian: the common part (-common) and the arch part (-amd64, -arm64...) are two packages: merge.
arch=$(ls -d /usr/src/linux-headers-*-common 2>/dev/null | sort -V | tail -1 || true)
[ -n "$arch" ] || { echo "xdplab: no distro kernel headers under /usr/src: install linux-headers-$(dpkg --print-architecture)" >&2; exit 1; }
ver=${arch#/usr/src/linux-headers-}; ver=${ver%-common}
specific=$(ls -d /usr/src/linux-headers-"$ver"-* | grep -v -- -common$ | head -1)
dest="$dest_root/linux-headers-$ver"
[ -e "$dest/.complete" ] && exit 0
rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
cp -a "$arch/." "$dest.tmp/"            # the common part: include/, arch/*/include
cp -a "$specific/." "$dest.tmp/"        # the arch part on top: generated headers, .config
touch "$dest.tmp/.complete"
rm -rf "$dest"; mv "$dest.tmp" "$dest"
echo "xdplab: built kernel header tree $dest (for running kernel $kver)"
