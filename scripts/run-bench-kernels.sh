#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run-bench-kernels.sh - the guest's own kernels, side by side in one run:
# vgpu-bench-kernels-host on the host (the OpenCL C of
# guest/bench/bench_kernels.h enqueued directly on the OpenCL device the
# daemon's workers use, on host memory: "host-native"), then
# vgpu-bench-kernels in a UML guest (the same kernels through libvgpu, the
# device and a worker, on a malloc'd userptr buffer), then the table:
#
#   - dispatch overhead: a NOP submit, an empty kernel's dispatch, and the
#     empty kernel enqueued host-native; what a dispatch adds to a NOP, and
#     the worker boundary per dispatch (dispatch - NOP - host-native
#     enqueue: the daemon-to-worker round trip and its checks);
#   - a memory-bound and a compute-bound kernel, 1 to 256 MiB, as % of
#     host-native (100: as fast), next to the fixed SAXPY op on the same
#     buffer.
#
# Medians of timed runs; prints TAP (both ran, every row present, every
# figure positive) and the table.
#
#   scripts/run-bench-kernels.sh [--quick] [--build DIR] [--kernel PATH] [--out FILE]
#
# Default: 9 runs per size, 300 latency samples, sizes up to 256 MiB, table
# in docs/bench/kernels.txt. --quick (3 runs, 50 samples, up to 16 MiB) is
# the smoke test and writes nothing under docs/.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$REPO/build/meson
KERNEL=
OUT=$REPO/docs/bench/kernels.txt
ARGS=(--runs 9 --latency-runs 300 --max-mib 256)
MEM=768M
while [ $# -gt 0 ]; do
	case $1 in
	--quick) ARGS=(--runs 3 --latency-runs 50 --max-mib 16); OUT=; MEM=256M; shift ;;
	--build) BUILD=$2; shift 2 ;;
	--kernel) KERNEL=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h|--help) sed -n '3,/^$/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run-bench-kernels.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
if [ -z "$KERNEL" ] && [ -x "$REPO/build/bench-kernel/uml/linux" ]; then
	KERNEL=$REPO/build/bench-kernel/uml/linux
fi
kargs=()
[ -n "$KERNEL" ] && kargs=(--kernel "$KERNEL")

hlog=$(mktemp "${TMPDIR:-/tmp}/vgpu-bench-kernels-host.XXXXXXXX")
glog=$(mktemp "${TMPDIR:-/tmp}/vgpu-bench-kernels.XXXXXXXX")
trap 'rm -f "$hlog" "$glog" "$glog.table"' EXIT

n=0
failed=0
ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}

"$BUILD/guest/bench/vgpu-bench-kernels-host" "${ARGS[@]}" >"$hlog" 2>&1
rc=$?
ok "$rc" "vgpu-bench-kernels-host ran on the host (exit $rc)"
[ "$rc" = 0 ] || tail -n 20 "$hlog" | sed 's/^/# /'
"$REPO/tests/system/run-guest.sh" "${kargs[@]}" --mem "$MEM" --timeout 1200 -- \
	"$BUILD/guest/bench/vgpu-bench-kernels" "${ARGS[@]}" >"$glog" 2>&1
rc=$?
ok "$rc" "vgpu-bench-kernels ran in the guest (exit $rc)"
[ "$rc" = 0 ] || grep -v '^\[' "$glog" | tail -n 30 | sed 's/^/# /'

max=$(printf '%s\n' "${ARGS[@]}" | tail -n 1)
python3 - "$hlog" "$glog" "$max" >"$glog.table" <<'EOF'
import sys

def rows(path):
    r = {}
    for line in open(path, errors='replace'):
        f = line.split()
        if len(f) == 5 and f[0] == 'kernels':
            r[(f[1], int(f[2]))] = float(f[3])
    return r

host, guest, top = rows(sys.argv[1]), rows(sys.argv[2]), int(sys.argv[3])
sizes = [m for m in (1, 16, 64, 256) if m <= top]
want = [('nop', 0), ('empty-dispatch', 0)] + \
       [(k, m) for m in sizes for k in ('stream', 'compute', 'saxpy-op')]
missing = [w for w in want if w not in guest] + \
          [w for w in [('empty-dispatch', 0)] + [(k, m) for m in sizes for k in ('stream', 'compute')]
           if w not in host]
bad = [k for k, v in list(host.items()) + list(guest.items()) if not v > 0]
print('missing', len(missing), ' '.join('%s/%d' % w for w in missing))
print('bad', len(bad))
if missing:
    sys.exit(0)
nop, disp, native = guest[('nop', 0)], guest[('empty-dispatch', 0)], host[('empty-dispatch', 0)]
print('| dispatch | median (us) |')
print('|---|---|')
print('| NOP submit (guest, through the device) | %.1f |' % nop)
print('| empty kernel dispatch (guest, through the device and its worker) | %.1f |' % disp)
print('| empty kernel enqueued host-native (clEnqueueNDRangeKernel + clFinish) | %.1f |' % native)
print('| what a dispatch adds to a NOP | %.1f |' % (disp - nop))
print('| worker boundary per dispatch (dispatch - NOP - host-native enqueue) | %.1f |' % (disp - nop - native))
print()
print('| kernel | MiB | host-native (ms) | guest userptr (ms) | % of host-native | fixed SAXPY op (ms) |')
print('|---|---|---|---|---|---|')
for m in sizes:
    for k in ('stream', 'compute'):
        h, g = host[(k, m)], guest[(k, m)]
        print('| %s | %d | %.2f | %.2f | %.0f%% | %s |' % (
            k, m, h / 1e3, g / 1e3, 100 * h / g,
            '%.2f' % (guest[('saxpy-op', m)] / 1e3) if k == 'stream' else ''))
EOF
missing=$(sed -n 's/^missing \([0-9]*\).*/\1/p' "$glog.table")
bad=$(sed -n 's/^bad \([0-9]*\)/\1/p' "$glog.table")
ok "$([ "$missing" = 0 ] && echo 0 || echo 1)" "every row measured on both sides ($(sed -n 's/^missing //p' "$glog.table"))"
ok "$([ "$bad" = 0 ] && echo 0 || echo 1)" "every figure is positive ($bad not)"
sed -i '/^missing /d; /^bad /d' "$glog.table"
{
	grep '^#' "$hlog"
	grep '^# ' "$glog" | grep -v '^# *$' | head -n 3
	cat "$glog.table"
} | sed 's/^/# /'
if [ -n "$OUT" ] && [ "$failed" = 0 ]; then
	{
		echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%d MiB", $2 / 1024}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r); $(date -u +%Y-%m-%d)"
		grep '^#' "$hlog"
		cat "$glog.table"
	} >"$OUT"
	echo "# written to $OUT"
fi
echo "1..$n"
[ "$failed" = 0 ]
