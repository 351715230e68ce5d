#!/bin/bash
# SPDX-License-Identifier: MIT
#
# e2e-clprograms.sh - unmodified OpenCL programs in the guest, through the
# guest's OpenCL ICD (guest/icd) on the device: clinfo, clpeak and CLBlast's
# tests (clblast-tests, checked against a reference BLAS), then the ICD's own
# test (vgpu-icd-test: the API's error codes, events, a kernel that runs
# past the device's budget and the context after it).
#
# The ICD is selected by OCL_ICD_VENDORS alone (it is never installed into
# /etc/OpenCL/vendors: the guest sees the host's root). A CLBlast test passes
# when it failed nothing and passed as many cases as the same binary on the
# host's own OpenCL device (run first, natively), so that a feature the ICD
# drops cannot turn into fewer tests. The daemon's statistics must show that
# the programs were built and dispatched on the device.
#
#   tests/system/e2e-clprograms.sh [--build DIR] [--vmm uml|qemu] [--mem SIZE]
#                                  [--clpeak | --no-clpeak] [--routines "xaxpy ..."]
#                                  [--long] [--summary FILE] [--asan-build DIR]
#
# --long runs every routine clblast-tests has (too long for the test
# command: scripts/run-clblast-long.sh); --summary writes each routine's
# counts, native and in the guest, as a markdown table. --asan-build: a
# build under AddressSanitizer and UndefinedBehaviorSanitizer
# (build/meson-guest-asan, made by scripts/run-tests.sh) whose ICD runs
# vgpu-icd-test, and CLBlast's xAXPY test when it is in the list, once
# more (x86_64 guest only: the sanitizers' shadow memory wants the 47-bit
# address space that UML's processes lack).

set -u

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VMM=uml
MEM=2G
CLPEAK=1
ROUTINES="xaxpy xdot xnrm2 xgemv xgemm"
TIMEOUT=1500
SUMMARY=
ASAN_BUILD=
while [ $# -gt 0 ]; do
	case $1 in
	--build) need_value "$1" "a directory" $#; BUILD=$2; shift 2 ;;
	--vmm) need_value "$1" "uml or qemu" $#; VMM=$2; shift 2 ;;
	--mem) need_value "$1" "a size" $#; MEM=$2; shift 2 ;;
	--clpeak) CLPEAK=1; shift ;;
	--no-clpeak) CLPEAK=0; shift ;;
	--routines) need_value "$1" "a list" $#; ROUTINES=$2; shift 2 ;;
	--long)
		ROUTINES=$(cd /usr/bin && ls clblast_test_* 2>/dev/null | sed 's/^clblast_test_//' | tr '\n' ' ')
		TIMEOUT=14400
		shift ;;
	--summary) need_value "$1" "a file" $#; SUMMARY=$2; shift 2 ;;
	--asan-build) need_value "$1" "a directory" $#; ASAN_BUILD=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) bad_arg "$1" ;;
	esac
done
need_build guest/icd/libvgpu-icd.so guest/tests/vgpu-icd-test
ICD_DIR=$BUILD/guest/icd
ICD_TEST=$BUILD/guest/tests/vgpu-icd-test

make_log "clprograms-$VMM"

# counts FILE: "passed failed skipped" summed over CLBlast's result lines.
counts() {
	sed 's/\x1b\[[0-9;]*m//g' "$1" | awk '
		/test\(s\) passed/ { p += $1 } /test\(s\) failed/ { f += $1 }
		/test\(s\) skipped/ { s += $1 } END { printf "%d %d %d\n", p, f, s }'
}
stat() { sed -n "s/^ *$2  *\([0-9][0-9]*\).*/\1/p" "$1" | tail -n 1; }

for t in clinfo clpeak; do
	command -v "$t" >/dev/null || { ok 1 "$t is installed (scripts/install-deps.sh)"; tap_end; exit; }
done

# The native baseline: each routine's test on the host's own device.
declare -A NATIVE
for r in $ROUTINES; do
	bin=/usr/bin/clblast_test_$r
	if [ ! -x "$bin" ]; then
		ok 1 "native $r: $bin is installed (clblast-tests)"
		continue
	fi
	"$bin" >"$LOG/native-$r.out" 2>&1
	rc=$?
	read -r p f s < <(counts "$LOG/native-$r.out")
	NATIVE[$r]="$p $f $s"
	ok "$([ "$rc" = 0 ] && [ "$p" -gt 0 ] && [ "$f" = 0 ] && echo 0 || echo 1)" \
		"native $r: the host's own device passes ($p passed, $f failed, $s skipped, exit $rc)"
done

steps_begin programs
ICD_ENV=(env "OCL_ICD_VENDORS=$ICD_DIR")
step clinfo "${ICD_ENV[@]}" clinfo
((CLPEAK)) && step clpeak "${ICD_ENV[@]}" clpeak
for r in $ROUTINES; do
	[ -n "${NATIVE[$r]:-}" ] && step "$r" "${ICD_ENV[@]}" "/usr/bin/clblast_test_$r"
done
step icdtest "${ICD_ENV[@]}" "$ICD_TEST"
if [ -n "$ASAN_BUILD" ]; then
	case $ASAN_BUILD in /*) ;; *) ASAN_BUILD=$PWD/$ASAN_BUILD ;; esac
	# The ICD's own test links the sanitizers; CLBlast's test (not
	# built with them) gets their runtime preloaded for the ICD.
	ASAN_ENV=(env "OCL_ICD_VENDORS=$ASAN_BUILD/guest/icd"
		"ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99"
		"UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=98")
	ASAN_RT=$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)
	if need_file "$VMM: ASan ICD" "$ASAN_BUILD/guest/icd/libvgpu-icd.so" &&
		need_file "$VMM: ASan vgpu-icd-test" "$ASAN_BUILD/guest/tests/vgpu-icd-test"; then
		step icdtest-asan "${ASAN_ENV[@]}" "$ASAN_BUILD/guest/tests/vgpu-icd-test"
		[ -z "${NATIVE[xaxpy]:-}" ] ||
			step xaxpy-asan "${ASAN_ENV[@]}" "LD_PRELOAD=$ASAN_RT" /usr/bin/clblast_test_xaxpy
	else
		ASAN_BUILD=
	fi
fi
steps_run --vmm "$VMM" --mem "$MEM" --timeout "$TIMEOUT" --daemon-args "--op-timeout 10000"
DLOG=$STEPS_DIR/daemon.log

rc=$(step_rc clinfo)
grep -q 'Platform Name *virtgpu-userptr' "$(step_out clinfo)" &&
	grep -q 'Number of devices *1' "$(step_out clinfo)"
r=$?
ok "$([ "$rc" = 0 ] && [ "$r" = 0 ] && echo 0 || echo 1)" \
	"$VMM: clinfo lists the platform and its device (exit $rc)"
[ "$rc" = 0 ] && [ "$r" = 0 ] || step_show clinfo 60
grep -q -i 'platform.*pocl\|Portable Computing' "$(step_out clinfo)"
ok "$([ $? != 0 ] && echo 0 || echo 1)" \
	"$VMM: clinfo sees only the selected ICD (no PoCL platform in the guest)"

if ((CLPEAK)); then
	rc=$(step_rc clpeak)
	miss=
	for sec in "Global memory bandwidth" "Single-precision compute" "Double-precision compute" \
		"Integer compute" "Transfer bandwidth" "Kernel launch latency"; do
		grep -q "$sec" "$(step_out clpeak)" || miss="$miss '$sec'"
	done
	ok "$([ "$rc" = 0 ] && [ -z "$miss" ] && echo 0 || echo 1)" \
		"$VMM: clpeak runs all its tests to completion (exit $rc${miss:+, missing$miss})"
	grep -E 'float16|double16|int16|launch latency' "$(step_out clpeak)" | sed 's/^/# clpeak /'
	[ "$rc" = 0 ] && [ -z "$miss" ] || step_show clpeak 80
fi

if [ -n "$SUMMARY" ]; then
	{
		echo "| routine | native passed / failed / skipped | $VMM guest passed / failed / skipped | as natively |"
		echo "|---|---|---|---|"
	} >"$SUMMARY"
fi
for r in $ROUTINES; do
	[ -n "${NATIVE[$r]:-}" ] || continue
	rc=$(step_rc "$r")
	read -r p f s < <(counts "$(step_out "$r")")
	read -r np nf ns <<<"${NATIVE[$r]}"
	[ -z "$SUMMARY" ] ||
		echo "| $r | $np / $nf / $ns | $p / $f / $s | $([ "$rc" = 0 ] && [ "$f" = 0 ] && [ "$p" = "$np" ] && echo yes || echo "**no** (exit $rc)") |" >>"$SUMMARY"
	ok "$([ "$rc" = 0 ] && [ "$f" = 0 ] && [ "$p" = "$np" ] && echo 0 || echo 1)" \
		"$VMM: CLBlast $r passes as natively ($p passed of $np, $f failed, $s skipped, exit $rc)"
	[ "$rc" = 0 ] && [ "$f" = 0 ] && [ "$p" = "$np" ] ||
		sed 's/\x1b\[[0-9;]*m//g' "$(step_out "$r")" | grep -v '^ *[:.]*$' | sed 's/^/# /' | head -n 40
done

relay_tap "$VMM: vgpu-icd-test" "$(step_out icdtest)" "ran to its plan"
rc=$(step_rc icdtest)
ok "$rc" "$VMM: vgpu-icd-test run clean (exit $rc)"
[ "$rc" = 0 ] || step_show icdtest 60

if [ -n "$ASAN_BUILD" ]; then
	relay_tap "$VMM: vgpu-icd-test (ASan/UBSan)" "$(step_out icdtest-asan)" "ran to its plan"
	rc=$(step_rc icdtest-asan)
	grep -q 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$(step_out icdtest-asan)"
	r=$?
	ok "$([ "$rc" = 0 ] && [ "$r" = 1 ] && echo 0 || echo 1)" \
		"$VMM: vgpu-icd-test under ASan/UBSan: no report (exit $rc)"
	[ "$rc" = 0 ] && [ "$r" = 1 ] || step_show icdtest-asan 80
fi
if [ -n "$ASAN_BUILD" ] && [ -n "${NATIVE[xaxpy]:-}" ]; then
	rc=$(step_rc xaxpy-asan)
	read -r p f s < <(counts "$(step_out xaxpy-asan)")
	read -r np _ _ <<<"${NATIVE[xaxpy]}"
	grep -q 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$(step_out xaxpy-asan)"
	r=$?
	ok "$([ "$rc" = 0 ] && [ "$r" = 1 ] && [ "$f" = 0 ] && [ "$p" = "$np" ] && echo 0 || echo 1)" \
		"$VMM: CLBlast xaxpy through the ASan/UBSan ICD: as natively, no report ($p passed of $np, $f failed, exit $rc)"
	[ "$rc" = 0 ] && [ "$r" = 1 ] || step_show xaxpy-asan 80
fi

# They ran on the device: programs built and kernels dispatched there.
builds=$(stat "$DLOG" op_program_build)
disp=$(stat "$DLOG" op_dispatch)
ok "$([ "${builds:-0}" -gt 5 ] && [ "${disp:-0}" -gt 1000 ] && echo 0 || echo 1)" \
	"$VMM: the device built and dispatched them (${builds:-?} builds, ${disp:-?} dispatches)"
boot_ok "$VMM: OpenCL programs"

tap_end
