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

# The daemon: its log (--verbose prints it in full) names the device.
"$RUN" --verbose --mem 256M --timeout 120 --daemon-args "--backend opencl" -- "$INFO" >"$LOG/info" 2>&1
rc=$?
ok "$rc" "opencl: vgpu-info in the guest (exit $rc)"
grep -q '^backend: opencl' "$LOG/info"
ok $? "opencl: vgpu-info reports the opencl backend"
grep -q 'OpenCL: platform ".*", device ".*"' "$LOG/info"
r=$?
ok "$r" "opencl: the daemon logs the OpenCL platform and device"
grep -o 'OpenCL: platform .*' "$LOG/info" | head -n 1 | sed 's/^/# /'
[ "$rc" = 0 ] && [ "$r" = 0 ] || show "$LOG/info"

for backend in opencl cpu; do
	"$RUN" --verbose --mem "$MEM" --timeout 300 --daemon-args "--backend $backend" \
		-- "$C2" --backend "$backend" >"$LOG/c2-$backend" 2>&1
	rc=$?
	relay_tap "$backend: vgpu-compute2" "$LOG/c2-$backend" "ran to its plan"
	ok "$rc" "$backend: vgpu-compute2 run clean (exit $rc)"
	[ "$rc" = 0 ] || show "$LOG/c2-$backend"
done
f=$LOG/c2-opencl
maps=$(stat "$f" cl_zero_copy_maps)
ok "$([ "${maps:-0}" -gt 0 ] && echo 0 || echo 1)" \
	"opencl: the runtime's maps of what kernels wrote were the windows (${maps:-none})"
for c in cl_copied_bytes cl_no_window cl_errors no_window_budget no_window_unaligned \
	no_window_nofile no_window_shrunk no_window_mapfail no_window_notram; do
	v=$(stat "$f" "$c")
	ok "$([ "$v" = 0 ] && echo 0 || echo 1)" "opencl: daemon counter $c is 0 (${v:-missing})"
done

# The same under the ASan/UBSan daemon: the OpenCL path, PoCL loaded.
if [ -x "$ASAN_HOSTD" ]; then
	VGPU_HOSTD=$ASAN_HOSTD "$RUN" --verbose --mem "$MEM" --timeout 300 \
		--daemon-args "--backend opencl" -- "$C2" --backend opencl >"$LOG/c2-asan" 2>&1
	rc=$?
	relay_tap "opencl, ASan daemon: vgpu-compute2" "$LOG/c2-asan" "ran to its plan"
	! grep -q -E 'Sanitizer|runtime error:' "$LOG/c2-asan"
	r=$?
	ok "$([ "$rc" = 0 ] && [ "$r" = 0 ] && echo 0 || echo 1)" \
		"opencl, ASan daemon: run clean, no sanitizer report (exit $rc)"
	[ "$rc" = 0 ] && [ "$r" = 0 ] || show "$LOG/c2-asan"
else
	ok 1 "opencl, ASan daemon: $ASAN_HOSTD is missing (scripts/build-host.sh builds it)"
fi

# The library's own tests, all on the OpenCL backend.
"$RUN" --verbose --mem "$MEM" --timeout 600 --daemon-args "--backend opencl" \
	--env VGPU_TEST_MODE=userptr -- "$TEST" --max-size 16 >"$LOG/test" 2>&1
rc=$?
relay_tap "opencl: vgpu-test" "$LOG/test" "ran to its plan"
ok "$rc" "opencl: vgpu-test run clean (exit $rc)"
v=$(stat "$LOG/test" cl_copied_bytes)
ok "$([ "$v" = 0 ] && echo 0 || echo 1)" "opencl: vgpu-test: no byte copied by the device (${v:-missing})"
[ "$rc" = 0 ] || show_untapped "$LOG/test" 100

# No OpenCL platform at all: the daemon falls back to the CPU, says so.
OCL_ICD_VENDORS=/nonexistent "$RUN" --verbose --mem 256M --timeout 120 \
	--daemon-args "--backend opencl" -- "$INFO" >"$LOG/fallback" 2>&1
rc=$?
ok "$rc" "no OpenCL platform: vgpu-info runs (exit $rc)"
grep -q '^backend: cpu' "$LOG/fallback" && grep -q 'falling back to the CPU engine' "$LOG/fallback"
r=$?
ok "$r" "no OpenCL platform: the daemon falls back to the CPU backend and says so"
[ "$rc" = 0 ] && [ "$r" = 0 ] || show "$LOG/fallback"

tap_end
