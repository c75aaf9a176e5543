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
