#!/usr/bin/env bash
# Runs every test suite of the project and ends with one line
# "N passed, N failed" summing them all (tests/tap-summary.py).
# Works on a fresh Debian 12 machine: installs what it needs first.
#
# After the common builds the work runs in two lanes side by side, so that
# both cores stay busy: most of the guest suites use one CPU (UML guests are
# single-CPU) and spend much of their time waiting, while the kernel and
# QEMU builds use both. Lane A builds the x86_64 kernel, runs the static
# checks and the QEMU suites; lane B builds QEMU, the guest side, and runs
# the UML suites. The kernel tree is shared: what reads it takes a shared
# lock, kernel/check-series.sh (which checks out every patch) an exclusive
# one. Each suite's output is printed as one block when it ends.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
results=$top/build/test-results
rm -rf "$results"
mkdir -p "$results"
# The CI budget: the whole run on 2 cores from a fresh machine.
GOAL_MIN=50
RUN_T0=$SECONDS

TREE_LOCK=$top/build/.kernel-tree.lock
OUT_LOCK=$results/.out.lock
: >"$OUT_LOCK"

say() { printf '\n=== %s\n' "$*"; }

# Print a finished suite's or build's log as one block.
emit() { # title file
	{
		flock 9
		say "$1"
		cat "$2"
	} 9>>"$OUT_LOCK"
}

# A line when a step starts, so that a long build shows progress.
started() {
	{
		flock 9
		echo "--- $(date +%H:%M:%S) started $1"
	} 9>>"$OUT_LOCK"
}

# Every suite's and build step's wall time goes to NAME.time (seconds) and
# is printed in the summary, so that the CI budget stays visible.

# build NAME CMD...: a build step, timed (build-NAME.time); its status is
# returned, and it is not a suite.
build() {
	local name=$1 rc t0=$SECONDS
	shift
	started "build $name"
	"$@" >"$results/build-$name.out" 2>&1
	rc=$?
	echo $((SECONDS - t0)) >"$results/build-$name.time"
	emit "build $name: $* (exit $rc, $((SECONDS - t0)) s)" "$results/build-$name.out"
	return $rc
}

# suite NAME CMD...: runs CMD, keeps its output in NAME.log and its exit
# status in NAME.rc; a suite that cannot even start is a failure, not a skip.
suite() {
	local name=$1 t0=$SECONDS
	shift
	started "suite $name"
	"$@" >"$results/$name.log" 2>&1
	echo "$?" >"$results/$name.rc"
	echo $((SECONDS - t0)) >"$results/$name.time"
	emit "suite $name: $* ($((SECONDS - t0)) s)" "$results/$name.log"
}

# meson_suite NAME BUILDDIR [meson test args]: meson's own log is read for
# each test's TAP output.
meson_suite() {
	local name=$1 dir=$2 t0=$SECONDS
	shift 2
	started "suite $name"
	meson test -C "$dir" --print-errorlogs "$@" >"$results/$name.log" 2>&1
	echo "$?" >"$results/$name.rc"
	cp "$dir/meson-logs/testlog.json" "$results/$name.json" 2>/dev/null ||
		rm -f "$results/$name.json"
	echo $((SECONDS - t0)) >"$results/$name.time"
	emit "suite $name: meson test -C $dir $* ($((SECONDS - t0)) s)" "$results/$name.log"
}

# one NAME CMD...: a command that is one test (a compile test, say): its
# output becomes TAP comments and its exit status the result.
one() {
	local name=$1 t0=$SECONDS
	shift
	started "suite $name"
	{
		echo "1..1"
		if "$@" 2>&1 | sed 's/^/# /'; then
			echo "ok 1 - $name"
		else
			echo "not ok 1 - $name"
		fi
	} >"$results/$name.log"
	echo 0 >"$results/$name.rc"
	echo $((SECONDS - t0)) >"$results/$name.time"
	emit "suite $name: $* ($((SECONDS - t0)) s)" "$results/$name.log"
}

# A stage whose build fails records a failed suite and the run goes on, so
# that the summary still covers everything else.
fail_stage() {
	echo "$2" >"$results/$1.log"
	echo 1 >"$results/$1.rc"
	echo "FAILED: $2" >&2
}

# Cross-lane order: done NAME STATUS marks a step finished; wait_for NAME
# waits for it and returns its status.
done_mark() { echo "$2" >"$results/.done-$1"; }
wait_for() {
	while [ ! -e "$results/.done-$1" ]; do sleep 2; done
	return "$(cat "$results/.done-$1")"
}
tree_shared() { flock -s "$TREE_LOCK" "$@"; }
tree_excl() { flock -x "$TREE_LOCK" "$@"; }

# ---- common builds ------------------------------------------------------------
say "dependencies"
build deps scripts/install-deps.sh || fail_stage deps "package installation failed"
mkdir -p "$top/build"
: >"$TREE_LOCK"

say "host build (plain, ASan/UBSan, fuzz)"
host_ok=0
if build host scripts/build-host.sh; then
	host_ok=1
else
	fail_stage host-build "host build failed"
fi

# ---- lane A: kernels, static checks, the x86_64 guest under QEMU -----------------
lane_a() {
	local kernel_ok=0 x86_ok=0

	if build kernel-uml tree_excl bash -c "kernel/setup-tree.sh && kernel/build.sh"; then
		kernel_ok=1
	else
		fail_stage kernel-build "kernel tree or build failed"
	fi
	done_mark kernel-uml $((!kernel_ok))

	# One x86_64 kernel: the QEMU guest's, which is also the compile test.
	if ((kernel_ok)) && build kernel-x86 tree_shared kernel/build-x86.sh --if-stale; then
		x86_ok=1
		one kernel-x86-compile tree_shared kernel/compile-x86.sh
		one kernel-sparse tree_shared kernel/static-check.sh sparse
		one kernel-coccicheck tree_shared kernel/static-check.sh cocci
	else
		fail_stage kernel-x86-build "x86_64 kernel build failed"
	fi
	done_mark kernel-x86 $((!x86_ok))
	# Lane A is done with the kernel tree.
	done_mark tree 0

	# The x86_64 guest under QEMU (TCG here, KVM where /dev/kvm works):
	# the device modes with userptr and without, in one boot each.
	if ((x86_ok)) && wait_for qemu && wait_for guest; then
		suite qemu-e2e tests/system/e2e.sh --vmm qemu --no-build --quick --build build/meson \
			--mode userptr --mode plain --tsan-build build/meson-tsan
		suite clprograms-qemu tests/system/e2e-clprograms.sh --vmm qemu --build build/meson \
			--routines "xaxpy xdot xnrm2 xgemv" --asan-build build/meson-guest-asan
	else
		fail_stage qemu-e2e "no QEMU suites: the x86_64 kernel, QEMU or the guest build failed"
	fi
}

# ---- lane B: host suites, QEMU, the guest side and the UML suites ---------------
lane_b() {
	local guest_ok=0 tsan_ok=0

	if ((host_ok)); then
		meson_suite host-unit build/meson --suite host
		meson_suite host-unit-asan build/meson-asan --suite host
		meson_suite host-fuzz build/fuzz --suite fuzz
		meson_suite host-valgrind build/meson --suite valgrind
	fi

	if build qemu qemu/build.sh; then
		done_mark qemu 0
	else
		done_mark qemu 1
		fail_stage qemu-build "QEMU build failed"
	fi

	# The guest side needs the patched kernel's exported headers.
	if ((host_ok)) && wait_for kernel-uml && build guest bash -c 'meson configure build/meson \
		-Dguest=true -Dkernel_headers="$1/build/uapi/include" && ninja -C build/meson' _ "$top"; then
		guest_ok=1
		# ThreadSanitizer (clang) on what runs on the host: the ring
		# workers, the engine pool, the device, and libvgpu's
		# device-independent paths (TSan binaries cannot run in the UML
		# guest: docs/guest.md, Tests); the guest library's own tests
		# under TSan run in the x86_64 guest (lane A).
		# What it builds: every test of the suite 'threads' (read from
		# meson, so that a new test cannot be left out; build.ninja first,
		# since meson configure alone leaves the introspection data of
		# the options before) and the
		# vgpu-async-test that qemu-e2e runs under TSan.
		if build tsan bash -c '{ [ -f build/meson-tsan/build.ninja ] ||
			CC=clang meson setup build/meson-tsan -Db_sanitize=thread -Db_lundef=false; } &&
			meson configure build/meson-tsan -Dguest=true -Dkernel_headers="$1/build/uapi/include" &&
			ninja -C build/meson-tsan build.ninja >/dev/null &&
			targets=$(meson introspect build/meson-tsan --tests | python3 -c "
import json, os, sys
for t in json.load(sys.stdin):
    if any(s.endswith(\":threads\") for s in t[\"suite\"]):
        print(os.path.relpath(t[\"cmd\"][0], \"build/meson-tsan\"))") &&
			[ -n "$targets" ] &&
			ninja -C build/meson-tsan $targets guest/tests/vgpu-async-test' _ "$top"; then
			tsan_ok=1
		else
			fail_stage threads-tsan-build "ThreadSanitizer build failed"
		fi
		# The guest's OpenCL ICD and its test under AddressSanitizer and
		# UndefinedBehaviorSanitizer, for clprograms-qemu (the x86_64
		# guest: UML's processes lack the address space for the shadow).
		if ! build guest-asan bash -c '{ [ -f build/meson-guest-asan/build.ninja ] ||
			meson setup build/meson-guest-asan -Db_sanitize=address,undefined -Db_lundef=false \
				-Dguest=true -Dkernel_headers="$1/build/uapi/include"; } &&
			ninja -C build/meson-guest-asan guest/icd/libvgpu-icd.so \
				guest/tests/vgpu-icd-test' _ "$top"; then
			fail_stage guest-asan-build "the guest's ASan/UBSan build failed"
		fi
	else
		fail_stage guest-build "guest build failed (or no kernel headers)"
	fi
	done_mark guest $((!guest_ok))

	if wait_for kernel-uml; then
		suite kunit kernel/run-kunit.sh
	fi
	if ((guest_ok)); then
		meson_suite guest-unit build/meson --suite guest
		((tsan_ok)) && meson_suite threads-tsan build/meson-tsan --no-rebuild --suite threads
		suite system-e2e tests/system/e2e.sh --build build/meson
		suite system-e2e-opencl tests/system/e2e-opencl.sh --build build/meson
		# Unmodified OpenCL programs through the guest's ICD: clinfo,
		# clpeak, CLBlast's tests (xGEMM here only: its cold compile is
		# the longest), vgpu-icd-test.
		suite clprograms-uml tests/system/e2e-clprograms.sh --build build/meson
		suite guest-async tests/system/async.sh --build build/meson
		suite bench-smoke scripts/run-bench.sh --quick
		suite bench-submit-smoke scripts/run-bench-submit.sh --quick
		suite bench-kernels-smoke scripts/run-bench-kernels.sh --quick
		suite guest-stress tests/system/stress.sh --build build/meson
		suite guest-faults tests/system/faults.sh --build build/meson
	fi
	# Checks out every patch of the series: the tree is this suite's alone
	# while it runs, so it starts once lane A no longer needs the tree (the
	# lock alone would let it cut in before the x86_64 build's readers).
	wait_for tree
	if wait_for kernel-uml; then
		suite kernel-series tree_excl kernel/check-series.sh
	fi
	# The x86_64 guest on the driver's DMA-API path, plain and bounced.
	if wait_for kernel-x86 && wait_for qemu && ((guest_ok)); then
		suite qemu-e2e-dma tests/system/e2e.sh --vmm qemu --no-build --build build/meson --mode dma
	else
		fail_stage qemu-e2e-dma "no DMA-API suite: the x86_64 kernel, QEMU or the guest build failed"
	fi
}

say "lanes A (kernels, QEMU guest) and B (host suites, QEMU, guest, UML) side by side"
lane_a &
pid_a=$!
lane_b &
pid_b=$!
wait "$pid_a" "$pid_b"

say "summary"
echo $((SECONDS - RUN_T0)) >"$results/run.wall"
echo $((GOAL_MIN * 60)) >"$results/run.goal"
python3 tests/tap-summary.py "$results"
