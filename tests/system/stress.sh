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
#                          [--seed N] [--mode userptr|copy] [--kernel PATH]
#
# --build: the meson build with guest/stress (default build/meson, or
# $VGPU_BUILD). --seconds: the churn phase of vgpu-stress (default 8).
# --load-seconds: vgpu-load (default 20). --seed: random seed (default 1).
# Takes about 2 minutes with the defaults. Exit status 0 when all passed.

set -u

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
RUN=$SCRIPT_DIR/run-guest.sh
KARGS=()

BUILD=${VGPU_BUILD:-$REPO_ROOT/build/meson}
SECONDS_CHURN=8
SECONDS_LOAD=20
SEED=1
MODES="userptr copy"

usage() {
	sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//'
}

num() { # option value
	case $2 in ''|*[!0-9]*|0) echo "stress.sh: $1 wants a positive number, not '$2'" >&2; exit 2 ;; esac
}

while [ $# -gt 0 ]; do
	case $1 in
	--build) [ $# -ge 2 ] || { echo "stress.sh: --build needs a directory" >&2; exit 2; }
		BUILD=$2; shift 2 ;;
	--seconds) [ $# -ge 2 ] || { echo "stress.sh: --seconds needs a value" >&2; exit 2; }
		num "$1" "$2"; SECONDS_CHURN=$2; shift 2 ;;
	--load-seconds) [ $# -ge 2 ] || { echo "stress.sh: --load-seconds needs a value" >&2; exit 2; }
		num "$1" "$2"; SECONDS_LOAD=$2; shift 2 ;;
	--seed) [ $# -ge 2 ] || { echo "stress.sh: --seed needs a value" >&2; exit 2; }
		case $2 in ''|*[!0-9]*) echo "stress.sh: bad --seed '$2'" >&2; exit 2 ;; esac
		SEED=$2; shift 2 ;;
	--mode) [ $# -ge 2 ] || { echo "stress.sh: --mode needs userptr or copy" >&2; exit 2; }
		case $2 in userptr|copy) MODES=$2 ;; *) echo "stress.sh: bad --mode '$2'" >&2; exit 2 ;; esac
		shift 2 ;;
	--kernel) [ $# -ge 2 ] || { echo "${0##*/}: --kernel needs a path" >&2; exit 2; }
		KARGS=(--kernel "$2"); shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "stress.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac

STRESS=$BUILD/guest/stress/vgpu-stress
LOAD=$BUILD/guest/stress/vgpu-load
for f in "$STRESS" "$LOAD"; do
	if [ ! -x "$f" ]; then
		echo "stress.sh: $f is missing: build with -Dguest=true first" >&2
		exit 2
	fi
done

n=0
failed=0
ok() { # status(0 = pass) name
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
	fi
}

LOG=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-stress.XXXXXXXX") || exit 2
trap 'rm -rf -- "$LOG"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Run one guest program; relay its TAP renumbered under a prefix.
guest_tap() { # prefix log-name timeout run-guest-args... -- cmd...
	local prefix=$1 name=$2 timeout=$3 rc tests plan line t0
	shift 3
	t0=$(date +%s)
	"$RUN" "${KARGS[@]}" --timeout "$timeout" "$@" >"$LOG/$name" 2>&1
	rc=$?
	tests=0
	while IFS= read -r line; do
		case $line in
		"ok "*|"not ok "*)
			tests=$((tests + 1))
			case $line in ok*) ok 0 "$prefix: ${line#*- }" ;; *) ok 1 "$prefix: ${line#*- }" ;; esac ;;
		"#"*) echo "$line" ;;
		"load-figures "*) echo "# $prefix: $line" ;;
		"Bail out!"*) echo "# $line" ;;
		esac
	done < <(tr -d '\r' <"$LOG/$name")
	plan=$(tr -d '\r' <"$LOG/$name" | sed -n 's/^1\.\.\([0-9]*\)$/\1/p' | tail -n 1)
	ok "$([ -n "$plan" ] && [ "$plan" = "$tests" ] && echo 0 || echo 1)" \
		"$prefix: ran to its plan ($tests of ${plan:-?})"
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

echo "1..$n"
[ "$failed" = 0 ] || echo "# $failed of $n failed"
[ "$failed" = 0 ]
