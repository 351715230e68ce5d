#!/bin/bash
# SPDX-License-Identifier: MIT
#
# e2e-opencl.sh - the OpenCL backend end to end: the UML guest against a
# daemon started with --backend opencl. vgpu-info must report the backend,
# vgpu-compute2 (SGEMM, REDUCE_F32, SAXPY, XXH64 and the zero-copy round
# trip on userptr buffers) and the library tests (vgpu-test) must pass, and
# the daemon's statistics must show that the OpenCL runtime worked on the
# windows (zero-copy maps) without copying a byte and without a resource
# left outside a window. vgpu-compute2 also runs on the CPU backend, and a
# daemon without any OpenCL platform must fall back to the CPU and say so.
# vgpu-compute2 runs once more against the ASan/UBSan build of the daemon
# (build/meson-asan, or --asan-hostd PATH), OpenCL runtime included.
# Fails (never skips) when no OpenCL device can be used.
#
#   tests/system/e2e-opencl.sh [--build DIR] [--mem SIZE] [--asan-hostd PATH]

set -u

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MEM=768M
ASAN_HOSTD=$REPO_ROOT/build/meson-asan/host/virtgpu-hostd
while [ $# -gt 0 ]; do
	case $1 in
	--asan-hostd) need_value "$1" "a path" $#; ASAN_HOSTD=$2; shift 2 ;;
	--build) need_value "$1" "a directory" $#; BUILD=$2; shift 2 ;;
	--mem) need_value "$1" "a size" $#; MEM=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) bad_arg "$1" ;;
	esac
done
need_build guest/vgpu-info guest/tests/vgpu-compute2 guest/tests/vgpu-test
INFO=$BUILD/guest/vgpu-info
C2=$BUILD/guest/tests/vgpu-compute2
TEST=$BUILD/guest/tests/vgpu-test

make_log e2e-opencl

show() { sed 's/^/# /' "$1" | head -n 80; }

# stat FILE NAME: the value of a counter in the daemon's final statistics.
stat() { sed -n "s/^ *$2  *\([0-9][0-9]*\).*/\1/p" "$1" | tail -n 1; }

# One boot on the OpenCL backend: vgpu-info, vgpu-compute2 and the library
# tests; the daemon's log (its final statistics) covers all three.
steps_begin opencl
step info "$INFO"
step c2 "$C2" --backend opencl
step test env VGPU_TEST_MODE=userptr "$TEST" --max-size 16
steps_run --mem "$MEM" --timeout 900 --daemon-args "--backend opencl"
DLOG=$STEPS_DIR/daemon.log
rc=$(step_rc info)
ok "$rc" "opencl: vgpu-info in the guest (exit $rc)"
grep -q '^backend: opencl' "$(step_out info)"
ok $? "opencl: vgpu-info reports the opencl backend"
grep -q 'OpenCL: platform ".*", device ".*"' "$DLOG"
r=$?
ok "$r" "opencl: the daemon logs the OpenCL platform and device"
grep -o 'OpenCL: platform .*' "$DLOG" | head -n 1 | sed 's/^/# /'
[ "$rc" = 0 ] && [ "$r" = 0 ] || { step_show info 40; show "$DLOG"; }

relay_tap "opencl: vgpu-compute2" "$(step_out c2)" "ran to its plan"
rc=$(step_rc c2)
ok "$rc" "opencl: vgpu-compute2 run clean (exit $rc)"
[ "$rc" = 0 ] || step_show c2 80

relay_tap "opencl: vgpu-test" "$(step_out test)" "ran to its plan"
rc=$(step_rc test)
ok "$rc" "opencl: vgpu-test run clean (exit $rc)"
[ "$rc" = 0 ] || step_show test 100

# The start-up gate proved zero copy on this device, and the ops used one
# buffer per window (made, and all released by the end).
zc=$(sed -n 's/^ *cl_zero_copy  *\([a-z]*\).*/\1/p' "$DLOG" | tail -n 1)
ok "$([ "$zc" = yes ] && echo 0 || echo 1)" \
	"opencl: the zero-copy gate passed on the device (cl_zero_copy ${zc:-missing})"
bufs=$(stat "$DLOG" cl_buffers)
live=$(sed -n 's/^ *cl_buffers  *[0-9]* (\([0-9]*\) live).*/\1/p' "$DLOG" | tail -n 1)
ok "$([ "${bufs:-0}" -gt 0 ] && [ "$live" = 0 ] && echo 0 || echo 1)" \
	"opencl: buffers were made over the windows and none is left (${bufs:-missing} made, ${live:-?} live)"
for c in cl_copied_bytes cl_no_window cl_errors no_window_budget no_window_unaligned \
	no_window_nofile no_window_shrunk no_window_mapfail no_window_notram; do
	v=$(stat "$DLOG" "$c")
	ok "$([ "$v" = 0 ] && echo 0 || echo 1)" "opencl: daemon counter $c is 0 (${v:-missing})"
done
boot_ok "opencl"

# vgpu-compute2 on the CPU backend.
steps_begin cpu
step c2 "$C2" --backend cpu
steps_run --mem "$MEM" --timeout 300 --daemon-args "--backend cpu"
relay_tap "cpu: vgpu-compute2" "$(step_out c2)" "ran to its plan"
rc=$(step_rc c2)
ok "$rc" "cpu: vgpu-compute2 run clean (exit $rc)"
[ "$rc" = 0 ] || step_show c2 80
boot_ok "cpu"

# The same under the ASan/UBSan daemon: the OpenCL path, PoCL loaded.
if [ -x "$ASAN_HOSTD" ]; then
	steps_begin asan
	step c2 "$C2" --backend opencl
	VGPU_HOSTD=$ASAN_HOSTD steps_run --mem "$MEM" --timeout 300 --daemon-args "--backend opencl"
	relay_tap "opencl, ASan daemon: vgpu-compute2" "$(step_out c2)" "ran to its plan"
	rc=$(step_rc c2)
	! grep -q -E 'Sanitizer|runtime error:' "$STEPS_DIR/daemon.log" "$(step_out c2)"
	r=$?
	ok "$([ "$rc" = 0 ] && [ "$r" = 0 ] && echo 0 || echo 1)" \
		"opencl, ASan daemon: run clean, no sanitizer report (exit $rc)"
	[ "$rc" = 0 ] && [ "$r" = 0 ] || { step_show c2 80; show "$STEPS_DIR/daemon.log"; }
	boot_ok "opencl, ASan daemon"
else
	ok 1 "opencl, ASan daemon: $ASAN_HOSTD is missing (scripts/build-host.sh builds it)"
fi

# No OpenCL platform at all: the daemon falls back to the CPU, says so.
steps_begin fallback
step info "$INFO"
OCL_ICD_VENDORS=/nonexistent steps_run --mem 256M --timeout 120 --daemon-args "--backend opencl"
rc=$(step_rc info)
ok "$rc" "no OpenCL platform: vgpu-info runs (exit $rc)"
grep -q '^backend: cpu' "$(step_out info)" &&
	grep -q 'falling back to the CPU engine' "$STEPS_DIR/daemon.log"
r=$?
ok "$r" "no OpenCL platform: the daemon falls back to the CPU backend and says so"
[ "$rc" = 0 ] && [ "$r" = 0 ] || { step_show info 40; show "$STEPS_DIR/daemon.log"; }
boot_ok "no OpenCL platform"

tap_end
