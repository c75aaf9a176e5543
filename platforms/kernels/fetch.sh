#!/usr/bin/env bash
# Downloads Debian's own kernel packages and unpacks them into the project's cache, never into the
# host's /boot or /lib/modules, and without touching the host's apt sources or apt state: apt runs
# with a private configuration (sources, lists, cache, status) under $XDPLAB_CACHE/apt.
#
#   platforms/kernels/fetch.sh [5.10|6.1|6.12 ...]     (default: all three)
#
# For each series it prints one line "SERIES RELEASE DIR" where DIR holds boot/vmlinuz-RELEASE and
# lib/modules/RELEASE (depmod'ed). Also installs, when missing, what booting needs: qemu-system-x86,
# kmod (modprobe in the guest) and busybox-static (virtme's initramfs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${XDPLAB_CACHE:-$repo/.cache}
say() { printf '\033[1mxdplab kernels:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31mxdplab kernels:\033[0m %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (qemu packages, and the guests run as root): sudo make test-kernels"

# series -> Debian suite whose linux-image-amd64 is that series
suite_of() {
  case "$1" in
    5.10) echo bullseye ;;
    6.1)  echo bookworm ;;
    6.12) echo trixie ;;
    *) die "unknown kernel series '$1' (known: 5.10 6.1 6.12)" ;;
  esac
}

# --- host tools (Debian packages; the host's own apt, install only) ----------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in qemu-system-x86 kmod busybox-static; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
      || die "could not install ${missing[*]} (apt-get install failed)"
  fi
fi
command -v qemu-system-x86_64 >/dev/null || die "no qemu-system-x86_64 after installing qemu-system-x86"

# --- private apt ------------------------------------------------------------------------------
need_space() {   # need_space DIR MiB
  local avail
  avail=$(df -Pm "$1" | awk 'NR==2 {print $4}')
  [ "$avail" -ge "$2" ] || die "not enough disk space in $1: ${avail} MiB free, ${2} MiB needed"
}
apt_dir=$cache/apt
mkdir -p "$apt_dir"/{lists/partial,archives/partial,etc} "$cache/kernels"
# one fetch at a time on this cache (CI's two kernel lanes each ask for the kernels)
exec 9>"$apt_dir/.lock"
flock 9
need_space "$cache" 600
: > "$apt_dir/status"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || die "no $keyring: apt-get install debian-archive-keyring"
{
  for s in bullseye bookworm trixie; do
    echo "deb [signed-by=$keyring] http://deb.debian.org/debian $s main"
  done
} > "$apt_dir/etc/sources.list"
apt_opts=(
  -o "Dir::Etc::sourcelist=$apt_dir/etc/sources.list" -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::status=$apt_dir/status"
  -o "Dir::Cache=$apt_dir" -o "Dir::Cache::archives=$apt_dir/archives"
  -o "APT::Architecture=amd64" -o "APT::Architectures::=amd64"
  -o "Debug::NoLocking=false" -q
)
papt() { apt-get "${apt_opts[@]}" "$@"; }
pcache() { apt-cache "${apt_opts[@]}" "$@"; }

# lists older than a day are refreshed
stamp=$apt_dir/lists/.updated
if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440)" ]; then
  say "apt-get update (private lists in $apt_dir)"
  papt update >"$apt_dir/update.log" 2>&1 || die "apt-get update of deb.debian.org failed: see $apt_dir/update.log"
  touch "$stamp"
fi

# the versioned image package linux-image-amd64 depends on in SUITE
image_pkg() {
  local suite=$1 ver
  ver=$(pcache policy linux-image-amd64 2>/dev/null | awk -v s="$suite" '
        NF==2 && $2 ~ /^[0-9]+$/ { v=$1 } NF==3 && $1=="***" { v=$2 }
        $0 ~ " "s"/main " { print v; exit }')
  [ -n "$ver" ] || die "package linux-image-amd64 not found in Debian $suite (see $apt_dir/update.log)"
  pcache show "linux-image-amd64=$ver" 2>/dev/null | awk -F': ' '/^Depends:/ {print $2; exit}' \
    | tr ',' '\n' | sed -n 's/^ *\(linux-image-[0-9][^ ]*-amd64\).*/\1/p' | head -1
}

series=("$@")
[ ${#series[@]} -gt 0 ] || series=(5.10 6.1 6.12)
for s in "${series[@]}"; do
  suite=$(suite_of "$s")
  pkg=${XDPLAB_KERNEL_PKG_OVERRIDE:-}   # for tests of the error path: a package name to fetch
  [ -n "$pkg" ] || pkg=$(image_pkg "$suite")
  [ -n "$pkg" ] || die "could not find the kernel image package that linux-image-amd64 of Debian $suite depends on"
  release=${pkg#linux-image-}
  dest=$cache/kernels/$release
  if [ ! -e "$dest/.complete" ]; then
    [ -n "${XDPLAB_KERNEL_PKG_OVERRIDE:-}" ] || case "$release" in
      "$s".*|"$s"-*) ;; *) die "Debian $suite's kernel is $release, not series $s";; esac
    say "downloading $pkg (Debian $suite)"
    need_space "$cache" 600
    rm -rf "$dest" "$dest.tmp"; mkdir -p "$dest.tmp"
    ( cd "$apt_dir/archives" && papt download "$pkg" >"$apt_dir/download-$pkg.log" 2>&1 ) \
      || { rm -rf "$dest.tmp"; die "kernel package $pkg cannot be downloaded from Debian $suite: see $apt_dir/download-$pkg.log"; }
    deb=$(ls -t "$apt_dir/archives/${pkg}_"*.deb | head -1)
    say "unpacking $(basename "$deb") into $dest"
    dpkg-deb -x "$deb" "$dest.tmp" || { rm -rf "$dest.tmp"; die "dpkg-deb -x $deb failed (disk full?)"; }
    # usr-merged packages (trixie) ship usr/lib/modules; virtme looks for lib/modules next to boot/
    if [ ! -d "$dest.tmp/lib/modules" ] && [ -d "$dest.tmp/usr/lib/modules" ]; then
      ln -s usr/lib "$dest.tmp/lib"
    fi
    mods=$dest.tmp/lib/modules/$release
    [ -d "$mods" ] && [ -e "$dest.tmp/boot/vmlinuz-$release" ] || { rm -rf "$dest.tmp"; die "$deb has no boot/vmlinuz-$release or lib/modules/$release"; }
    # build/source point at /usr/src on the host; every guest uses xdplab's merged header tree instead
    rm -f "$mods/build" "$mods/source"
    depmod -b "$dest.tmp" "$release" || { rm -rf "$dest.tmp"; die "depmod failed for $release"; }
    rm -f "$deb"
    mv "$dest.tmp" "$dest"
    touch "$dest/.complete"
  fi
  echo "$s $release $dest"
done
