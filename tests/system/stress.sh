#!/bin/bash
# SPDX-License-Identifier: MIT
#
# stress.sh - hostile userspace and sustained load in the guest, in both
# device modes (userptr offered, and --no-userptr). Boots the UML guest with
# run-guest.sh for each program and prints one TAP stream: the programs'
# own results (renumbered, prefixed with the mode) and one result per guest
# run (exit status; no KASAN, lockdep, WARNING or kmemleak report in the
# guest kernel; the daemon alive, exiting 0, no sanitizer report).
#
#   tests/system/stress.sh [--build DIR] [--seconds S] [--load-seconds S]
#                          [--seed N] [--mode userptr|plain] [--kernel PATH]
#
# --build: the meson build with guest/stress (default build/meson, or
# $VGPU_BUILD). --seconds: the churn phase of vgpu-stress (default 8).
# --load-seconds: vgpu-load (default 20). --seed: random seed (default 1).
# Takes about 2 minutes with the defaults. Exit status 0 when all passed.

set -u

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SECONDS_CHURN=8
SECONDS_LOAD=20
SEED=1
MODES="userptr plain"

num() { # option value
	case $2 in ''|*[!0-9]*|0) echo "$PROG: $1 wants a positive number, not '$2'" >&2; exit 2 ;; esac
}

while [ $# -gt 0 ]; do
	case $1 in
	--build) need_value "$1" "a directory" $#; BUILD=$2; shift 2 ;;
	--seconds) need_value "$1" "a value" $#; num "$1" "$2"; SECONDS_CHURN=$2; shift 2 ;;
	--load-seconds) need_value "$1" "a value" $#; num "$1" "$2"; SECONDS_LOAD=$2; shift 2 ;;
	--seed) need_value "$1" "a value" $#
		case $2 in ''|*[!0-9]*) echo "$PROG: bad --seed '$2'" >&2; exit 2 ;; esac
		SEED=$2; shift 2 ;;
	--mode) need_value "$1" "userptr or plain" $#
		case $2 in userptr|plain) MODES=$2 ;; *) echo "$PROG: bad --mode '$2'" >&2; exit 2 ;; esac
		shift 2 ;;
	--kernel) need_value "$1" "a path" $#; KARGS=(--kernel "$2"); shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) bad_arg "$1" ;;
	esac
done
need_build guest/stress/vgpu-stress guest/stress/vgpu-load
STRESS=$BUILD/guest/stress/vgpu-stress
LOAD=$BUILD/guest/stress/vgpu-load

make_log stress

# Run one guest program; relay its TAP renumbered under a prefix.
guest_tap() { # prefix log-name timeout run-guest-args... -- cmd...
	local prefix=$1 name=$2 timeout=$3 rc t0
	shift 3
	t0=$(date +%s)
	"$RUN" "${KARGS[@]}" --timeout "$timeout" "$@" >"$LOG/$name" 2>&1
	rc=$?
	relay_tap "$prefix" "$LOG/$name" "ran to its plan"
	ok "$rc" "$prefix: guest run clean: exit status, kernel log (KASAN, lockdep, kmemleak), daemon (exit $rc, $(($(date +%s) - t0)) s)"
	if [ "$rc" != 0 ]; then
		grep -v -E '^(ok |not ok |# |1\.\.)' "$LOG/$name" | sed 's/^/#   /' | head -n 120
	fi
}

for mode in $MODES; do
	if [ "$mode" = userptr ]; then
		flags=()
		churn=$SECONDS_CHURN
	else
		flags=(--no-userptr)
		churn=$(((SECONDS_CHURN + 1) / 2))
	fi
	guest_tap "$mode: stress" "stress-$mode" 240 "${flags[@]}" --mem 768M -- \
		"$STRESS" --seed "$SEED" --seconds "$churn" --threads 4
	guest_tap "$mode: load" "load-$mode" $((SECONDS_LOAD + 120)) "${flags[@]}" --mem 768M -- \
		"$LOAD" --seed "$SEED" --seconds "$SECONDS_LOAD" --threads 4
done

tap_end
