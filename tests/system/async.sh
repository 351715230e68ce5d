#!/bin/bash
# SPDX-License-Identifier: MIT
#
# async.sh - libvgpu's asynchronous submission, rings, fences, threads,
# fork guard and any-range registration inside the UML guest, in both device
# modes (userptr, and --no-userptr: the copy path), plus the runtime-shaped
# example. Prints one TAP stream: the guest program's results (renumbered,
# prefixed with the mode) and one result per guest run.
#
#   tests/system/async.sh [--build DIR] [--mode userptr|copy]

set -u

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODES="userptr copy"
while [ $# -gt 0 ]; do
	case $1 in
	--build) need_value "$1" "a directory" $#; BUILD=$2; shift 2 ;;
	--mode) need_value "$1" "userptr or copy" $#
		case $2 in userptr|copy) MODES=$2 ;; *) echo "$PROG: bad --mode '$2'" >&2; exit 2 ;; esac
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
	[ "$mode" = copy ] && flags=(--no-userptr)
	"$RUN" "${flags[@]}" --mem 768M --timeout 300 -- "$TEST" >"$LOG/test" 2>&1
	rc=$?
	relay_tap "$mode" "$LOG/test" "vgpu-async-test ran to its plan"
	ok "$rc" "$mode: vgpu-async-test run clean: exit status, kernel log, daemon (exit $rc)"
	if [ "$rc" != 0 ]; then
		show_untapped "$LOG/test" 100
	fi
	if [ -x "$EXAMPLE" ]; then
		"$RUN" "${flags[@]}" --mem 768M --timeout 300 -- "$EXAMPLE" >"$LOG/ex" 2>&1
		rc=$?
		ok "$rc" "$mode: vgpu-pipeline (two threads, two rings, fence-chained) verified (exit $rc)"
		sed 's/^/# /' "$LOG/ex" | tail -n 20
	fi
done

tap_end
