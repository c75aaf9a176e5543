#!/bin/bash
# Runs inside a kernel-matrix guest (virtme-ng, as root, the host's root filesystem shared read-only,
# no network device). Everything it finds goes into OUT, a directory shared read-write with the host
# (--rwdir): the guest's console is not kept.
#
#   guest.sh REPO OUT [STEPS]      STEPS: comma-separated of doctor,probe,tests,lessons
#                                  (default: doctor,probe,tests)
#
# OUT/progress  one line per step started and finished (so the host can tell where a guest hung)
# OUT/doctor.json, doctor.err, doctor.rc    xdplab doctor --json
# OUT/probe.json, probe.err                 platforms/kernels/probe.py (the kernel-sensitive claims)
# OUT/junit.xml, pytest.log, pytest.rc      pytest -m kernel tests/
# OUT/timeout                               the guest's seconds (run.py): the lessons' budget
# OUT/lessons-only                          notebooks to run instead of all (XDPLAB_VM_LESSONS)
# OUT/lessons.json, lessons.err             platforms/kernels/lessons.py (the lessons that ask
#                                           xdplab.probe() and take another path than on the
#                                           host, OUT/host-adapts.json, run top to bottom)
# OUT/done                                  written last
set -u
repo=$1 out=$2 steps=${3:-doctor,probe,tests}
cd "$repo" || exit 1
py=$repo/.venv/bin/python
log() { echo "$(date +%s) $*" >> "$out/progress"; }
has() { case ",$steps," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

log "start $(uname -r)"
# The shared root is read-only. virtme gives the guest a tmpfs at /var/tmp: HOME and TMPDIR live
# there. /tmp gets a tmpfs of its own too, unless the checkout or OUT is below /tmp (a clean clone
# in /tmp, a pytest tmp_path): a tmpfs over /tmp would hide them.
case "$repo/:$out/" in
  /tmp/*|*:/tmp/*) ;;
  *) mount -t tmpfs -o mode=1777 tmpfs /tmp ;;
esac
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing
mkdir -p /var/tmp/home
export PYTHONUNBUFFERED=1 HOME=/var/tmp/home PYTHONDONTWRITEBYTECODE=1 TMPDIR=/var/tmp MPLCONFIGDIR=/var/tmp/home/mpl
# pyroute2's 2 s timeouts are too short for emulation speed (see guest-site/sitecustomize.py)
export PYTHONPATH=$repo/platforms/kernels/guest-site
{
  echo "kernel: $(uname -a)"
  echo "cpus: $(nproc)  memory: $(awk '/MemTotal/ {print $2, $3}' /proc/meminfo)"
  echo "links: $(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')"
  echo "mounts:"; grep -E ' (bpf|tracefs|tmpfs|9p|virtiofs) ' /proc/mounts
} > "$out/guest.txt" 2>&1
# the guest's kernel log as it is written (an OOM kill, a segfault), kept beside the results
dmesg -w > "$out/dmesg.log" 2>&1 &
dmesg_pid=$!

if has doctor; then
  log "doctor begin"
  timeout -k 10 900 "$py" -m xdplab doctor --json > "$out/doctor.json" 2> "$out/doctor.err"
  echo $? > "$out/doctor.rc"
  log "doctor end rc=$(cat "$out/doctor.rc")"
fi
if has probe; then
  log "probe begin"
  timeout -k 10 900 "$py" "$repo/platforms/kernels/probe.py" > "$out/probe.json" 2> "$out/probe.err"
  rc=$?
  log "probe end rc=$rc"
fi
if has tests; then
  log "tests begin"
  # --timeout 900: a test compiles up to two programs, minutes each under TCG. Only the modules
  # that have kernel-marked tests: collecting all of tests/ (matplotlib,
  # playwright...) takes minutes under TCG
  files=$(grep -l "pytest.mark.kernel" tests/test_*.py)
  timeout -k 10 2400 "$py" -m pytest -p no:cacheprovider -m kernel -v -rA --timeout 900 --junitxml="$out/junit.xml" \
      -o junit_family=xunit2 $files > "$out/pytest.log" 2>&1
  echo $? > "$out/pytest.rc"
  log "tests end rc=$(cat "$out/pytest.rc")"
fi
if has lessons; then
  log "lessons begin"
  host=(); [ -f "$out/host-adapts.json" ] && host=(--host "$out/host-adapts.json")
  # the lessons get what is left of the guest's time (OUT/timeout, written by run.py), less three
  # minutes to power off before the host gives up on the guest; lessons.py keeps its cells within
  # it and writes OUT/lessons.json after every lesson, the outer timeout is only a safety net
  budget=$(( $(cat "$out/timeout" 2>/dev/null || echo 3600) - SECONDS - 180 ))
  [ "$budget" -gt 60 ] || budget=60
  log "lessons budget ${budget} s"
  only=(); [ -f "$out/lessons-only" ] && mapfile -t only < "$out/lessons-only"
  timeout -k 10 $(( budget + 90 )) "$py" "$repo/platforms/kernels/lessons.py" "${host[@]}" \
      --budget "$budget" --out "$out/lessons.json" "${only[@]}" > /dev/null 2> "$out/lessons.err"
  log "lessons end rc=$?"
fi
log "done"
kill "$dmesg_pid" 2>/dev/null
echo ok > "$out/done"
sync
