#!/bin/bash
# SPDX-License-Identifier: MIT
#
# async.sh - libvgpu's asynchronous submission, rings, fences, threads,
# fork guard and any-range registration inside the UML guest, in both device
# modes (userptr, and --no-userptr: a device that knows nothing of userptr,
# where read-only buffers take the copy path), plus the runtime-shaped
# example, in one boot a mode. Prints one TAP stream: the guest program's
# results (renumbered, prefixed with the mode), one result per program and
# one per boot.
#
#   tests/system/async.sh [--build DIR] [--mode userptr|plain]

set -u

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODES="userptr plain"
while [ $# -gt 0 ]; do
	case $1 in
	--build) need_value "$1" "a directory" $#; BUILD=$2; shift 2 ;;
	--mode) need_value "$1" "userptr or plain" $#
		case $2 in userptr|plain) MODES=$2 ;; *) echo "$PROG: bad --mode '$2'" >&2; exit 2 ;; esac
		shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) bad_arg "$1" ;;
	esac
done
need_build guest/tests/vgpu-async-test
TEST=$BUILD/guest/tests/vgpu-async-test
EXAMPLE=$BUILD/guest/vgpu-pipeline

make_log async

for mode in $MODES; do
	flags=()
	[ "$mode" = plain ] && flags=(--no-userptr)
	# One boot a mode: the tests, then the example.
	steps_begin "$mode"
	step test "$TEST"
	[ -x "$EXAMPLE" ] && step example "$EXAMPLE"
	steps_run "${flags[@]+"${flags[@]}"}" --mem 768M --timeout 600
	relay_tap "$mode" "$(step_out test)" "vgpu-async-test ran to its plan"
	rc=$(step_rc test)
	ok "$rc" "$mode: vgpu-async-test run clean: exit status, kernel log (exit $rc)"
	[ "$rc" = 0 ] || step_show test 100
	if [ -x "$EXAMPLE" ]; then
		rc=$(step_rc example)
		ok "$rc" "$mode: vgpu-pipeline (two threads, two rings, fence-chained) verified (exit $rc)"
		sed 's/^/# /' "$(step_out example)" | tail -n 20
	fi
	boot_ok "$mode"
done

tap_end
