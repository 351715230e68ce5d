#!/usr/bin/env bash
# Runs every test suite of the project and ends with one line
# "N passed, N failed" summing them all (tests/tap-summary.py).
# Works on a fresh Debian 12 machine: installs what it needs first.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
results=$top/build/test-results
rm -rf "$results"
mkdir -p "$results"

say() { printf '\n=== %s\n' "$*"; }

# Every suite's and build step's wall time goes to NAME.time (seconds) and
# is printed in the summary, so that the CI budget stays visible.
t_start=0
t_begin() { t_start=$SECONDS; }
t_end() { echo $((SECONDS - t_start)) >"$results/$1.time"; }

# build NAME CMD...: a build step, timed (build-NAME.time); its status is
# returned, and it is not a suite.
build() {
	local name=$1 rc
	shift
	t_begin
	"$@"
	rc=$?
	t_end "build-$name"
	return $rc
}

# suite NAME CMD...: runs CMD, keeps its output in NAME.log and its exit
# status in NAME.rc; a suite that cannot even start is a failure, not a skip.
suite() {
	local name=$1
	shift
	say "suite $name: $*"
	t_begin
	"$@" 2>&1 | tee "$results/$name.log"
	echo "${PIPESTATUS[0]}" >"$results/$name.rc"
	t_end "$name"
}

# meson_suite NAME BUILDDIR [meson test args]: meson's own log is read for
# each test's TAP output.
meson_suite() {
	local name=$1 dir=$2
	shift 2
	say "suite $name: meson test -C $dir $*"
	t_begin
	meson test -C "$dir" --print-errorlogs "$@" 2>&1 | tee "$results/$name.log"
	echo "${PIPESTATUS[0]}" >"$results/$name.rc"
	cp "$dir/meson-logs/testlog.json" "$results/$name.json" 2>/dev/null ||
		rm -f "$results/$name.json"
	t_end "$name"
}

# one NAME CMD...: a command that is one test (a compile test, say): its
# output becomes TAP comments and its exit status the result.
one() {
	local name=$1
	shift
	say "suite $name: $*"
	t_begin
	{
		echo "1..1"
		if "$@" 2>&1 | sed 's/^/# /'; then
			echo "ok 1 - $name"
		else
			echo "not ok 1 - $name"
		fi
	} | tee "$results/$name.log"
	echo 0 >"$results/$name.rc"
	t_end "$name"
}

# A stage whose build fails records a failed suite and the run goes on, so
# that the summary still covers everything else.
fail_stage() {
	echo "$2" >"$results/$1.log"
	echo 1 >"$results/$1.rc"
	echo "FAILED: $2" >&2
}

say "dependencies"
build deps scripts/install-deps.sh || fail_stage deps "package installation failed"

say "host build (plain and ASan/UBSan)"
if build host scripts/build-host.sh; then
	meson_suite host-unit build/meson --suite host
	meson_suite host-unit-asan build/meson-asan --suite host
	meson_suite host-fuzz build/fuzz --suite fuzz
	meson_suite host-valgrind build/meson --suite valgrind
else
	fail_stage host-build "host build failed"
fi

say "kernel: tree, UML test kernel, headers, kselftest"
if build kernel-uml bash -c "kernel/setup-tree.sh && kernel/build.sh"; then
	kernel_ok=1
	suite kernel-series kernel/check-series.sh
	suite kunit kernel/run-kunit.sh
else
	kernel_ok=0
	fail_stage kernel-build "kernel tree or build failed"
fi

# One x86_64 kernel: the QEMU guest's, which is also the compile test.
say "kernel: x86_64 guest kernel; QEMU"
x86_ok=0
if ((kernel_ok)) && build kernel-x86 kernel/build-x86.sh --if-stale; then
	x86_ok=1
	one kernel-x86-compile kernel/compile-x86.sh
	one kernel-sparse kernel/static-check.sh sparse
	one kernel-coccicheck kernel/static-check.sh cocci
else
	fail_stage kernel-x86-build "x86_64 kernel build failed"
fi
qemu_ok=0
if build qemu qemu/build.sh; then
	qemu_ok=1
else
	fail_stage qemu-build "QEMU build failed"
fi

say "guest: library, tools and tests against the patched headers"
guest_ok=0
tsan_ok=0
if ((kernel_ok)) && build guest bash -c 'meson configure build/meson -Dguest=true \
	-Dkernel_headers="$1/build/uapi/include" && ninja -C build/meson' _ "$top"; then
	guest_ok=1
	meson_suite guest-unit build/meson --suite guest
	# ThreadSanitizer (clang) on what runs on the host: the ring workers,
	# the engine pool, the device, and libvgpu's device-independent paths
	# (TSan binaries cannot run in the UML guest: docs/guest.md, Tests);
	# the guest library's own tests under TSan run in the x86_64 guest below.
	tsan_targets=(guest/tests/vgpu-threads-unit tests/host/test_units tests/host/test_device
		tests/host/test_compute tests/host/test_window tests/host/test_rings
		guest/tests/vgpu-async-test)
	if { [ -f build/meson-tsan/build.ninja ] ||
		CC=clang meson setup build/meson-tsan -Db_sanitize=thread -Db_lundef=false; } &&
		meson configure build/meson-tsan -Dguest=true -Dkernel_headers="$top/build/uapi/include" &&
		ninja -C build/meson-tsan "${tsan_targets[@]}"; then
		tsan_ok=1
		meson_suite threads-tsan build/meson-tsan --no-rebuild --suite threads
	else
		fail_stage threads-tsan-build "ThreadSanitizer build failed"
	fi
	suite kselftest tests/system/run-guest.sh -- build/kselftest/virtgpu_userptr
	suite kselftest-no-userptr tests/system/run-guest.sh --no-userptr -- \
		build/kselftest/virtgpu_userptr
	suite system-e2e tests/system/e2e.sh --build build/meson
	suite system-e2e-opencl tests/system/e2e-opencl.sh --build build/meson
	suite guest-async tests/system/async.sh --build build/meson
	suite bench-smoke scripts/run-bench.sh --quick
	suite bench-submit-smoke scripts/run-bench-submit.sh --quick
	suite guest-stress tests/system/stress.sh --build build/meson
	suite guest-faults tests/system/faults.sh --build build/meson
else
	fail_stage guest-build "guest build failed (or no kernel headers)"
fi

# The same binaries in the x86_64 guest under QEMU (TCG here, KVM where
# /dev/kvm exists): --no-build, both were built above.
say "QEMU: the x86_64 guest"
if ((guest_ok && x86_ok && qemu_ok)); then
	QRUN=(tests/system/run-guest.sh --vmm qemu --no-build)
	suite qemu-kselftest "${QRUN[@]}" -- build/kselftest/virtgpu_userptr
	suite qemu-kselftest-no-userptr "${QRUN[@]}" --no-userptr -- \
		build/kselftest/virtgpu_userptr
	# The same tests with the driver on its DMA-API path (the device offers
	# VIRTIO_F_ACCESS_PLATFORM; dma-direct, nothing bounced).
	suite qemu-kselftest-dma-api "${QRUN[@]}" --access-platform -- \
		build/kselftest/virtgpu_userptr
	suite qemu-thp "${QRUN[@]}" --mem 1G -- build/meson/guest/tests/vgpu-thp
	suite qemu-e2e tests/system/e2e.sh --vmm qemu --quick --build build/meson
	# libvgpu's asynchronous submits, rings and threads under ThreadSanitizer,
	# against the device: TSan needs the 47-bit address space UML lacks.
	if ((tsan_ok)); then
		suite qemu-async-tsan "${QRUN[@]}" --mem 1G -- build/meson-tsan/guest/tests/vgpu-async-test
	else
		fail_stage qemu-async-tsan "no ThreadSanitizer build"
	fi
else
	fail_stage qemu-suites "no QEMU suites: the guest, x86_64 kernel or QEMU build failed"
fi

say "summary"
python3 tests/tap-summary.py "$results"
