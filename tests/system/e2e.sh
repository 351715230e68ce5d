#!/bin/bash
# SPDX-License-Identifier: MIT
#
# e2e.sh - end-to-end tests of the whole system: for each device mode
# (userptr offered, and --no-userptr), boot the UML guest with
# run-guest.sh and run vgpu-info, vgpu-demo and the library tests
# (vgpu-test) in it. Prints one TAP stream: the guest tests' own results
# (renumbered, prefixed with the mode) and one result per guest run (exit
# status, no kernel or daemon findings).
#
#   tests/system/e2e.sh [--build DIR] [--quick] [--mem SIZE] [--mode userptr|copy]
#
# --build: the meson build directory with the guest tools (default
# build/meson, or $VGPU_BUILD). --quick: sizes up to 16 MiB only and a
# 16 MiB demo. Exit status 0 when every test passed.

set -u

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
RUN=$SCRIPT_DIR/run-guest.sh

BUILD=${VGPU_BUILD:-$REPO_ROOT/build/meson}
QUICK=0
MEM=1280M
MODES="userptr copy"

usage() {
	sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
	case $1 in
	--build) [ $# -ge 2 ] || { echo "e2e.sh: --build needs a directory" >&2; exit 2; }
		BUILD=$2; shift 2 ;;
	--quick) QUICK=1; shift ;;
	--mem) [ $# -ge 2 ] || { echo "e2e.sh: --mem needs a size" >&2; exit 2; }
		MEM=$2; shift 2 ;;
	--mode) [ $# -ge 2 ] || { echo "e2e.sh: --mode needs userptr or copy" >&2; exit 2; }
		case $2 in userptr|copy) MODES=$2 ;; *) echo "e2e.sh: bad --mode '$2'" >&2; exit 2 ;; esac
		shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "e2e.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac

INFO=$BUILD/guest/vgpu-info
DEMO=$BUILD/guest/vgpu-demo
TEST=$BUILD/guest/tests/vgpu-test
for f in "$INFO" "$DEMO" "$TEST"; do
	if [ ! -x "$f" ]; then
		echo "e2e.sh: $f is missing: build with -Dguest=true first" >&2
		exit 2
	fi
done

if [ "$QUICK" = 1 ]; then
	DEMO_SIZE=16M
	MAX_MB=16
else
	DEMO_SIZE=64M
	MAX_MB=256
fi

n=0
failed=0
ok() { # cond-status name
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
	fi
}

LOG=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-e2e.XXXXXXXX") || exit 2
trap 'rm -rf -- "$LOG"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Show a failed run's output as TAP comments.
show() {
	sed 's/^/# /' "$1"
}

# The runner itself: exit status passthrough, no findings on a plain run.
"$RUN" --no-daemon --no-kmemleak --timeout 60 -- sh -c 'exit 7' >"$LOG/r" 2>&1
rc=$?
ok "$([ "$rc" = 7 ] && echo 0 || echo 1)" "run-guest.sh returns the guest command's exit status (7, got $rc)"
[ "$rc" = 7 ] || show "$LOG/r"

for mode in $MODES; do
	if [ "$mode" = userptr ]; then
		flags=()
		want_info="userptr: yes"
	else
		flags=(--no-userptr)
		want_info="userptr: no"
	fi

	# vgpu-info
	"$RUN" "${flags[@]}" --timeout 120 -- "$INFO" >"$LOG/info" 2>&1
	rc=$?
	ok "$rc" "$mode: vgpu-info in the guest (exit $rc)"
	grep -q "^$want_info" "$LOG/info"
	r=$?
	ok "$r" "$mode: vgpu-info says '$want_info'"
	if [ "$rc" != 0 ] || [ "$r" != 0 ]; then show "$LOG/info"; fi

	# vgpu-demo
	"$RUN" "${flags[@]}" --mem "$MEM" --timeout 300 -- "$DEMO" --size "$DEMO_SIZE" --repeat 2 >"$LOG/demo" 2>&1
	rc=$?
	ok "$rc" "$mode: vgpu-demo --size $DEMO_SIZE verified (exit $rc)"
	if [ "$rc" = 0 ]; then
		grep -E '^(size|path|userptr|fallback|copy|zero-copy|registered)' "$LOG/demo" | sed 's/^/# /'
		if [ "$mode" = userptr ]; then
			grep -q '^userptr ' "$LOG/demo"
		else
			grep -q '^fallback ' "$LOG/demo"
		fi
		ok $? "$mode: vgpu-demo took the $mode path"
	else
		show "$LOG/demo"
	fi

	# library tests: their TAP, renumbered
	"$RUN" "${flags[@]}" --mem "$MEM" --timeout 600 --env "VGPU_TEST_MODE=$mode" \
		-- "$TEST" --max-size "$MAX_MB" >"$LOG/test" 2>&1
	rc=$?
	tests=0
	while IFS= read -r line; do
		case $line in
		"ok "*|"not ok "*)
			tests=$((tests + 1))
			name=${line#*- }
			case $line in ok*) ok 0 "$mode: $name" ;; *) ok 1 "$mode: $name" ;; esac ;;
		"#"*) echo "$line" ;;
		"Bail out!"*) echo "# $line" ;;
		esac
	done < <(tr -d "\r" <"$LOG/test")
	plan=$(tr -d "\r" <"$LOG/test" | sed -n "s/^1\\.\\.\\([0-9]*\\)$/\\1/p" | tail -n 1)
	ok "$([ -n "$plan" ] && [ "$plan" = "$tests" ] && echo 0 || echo 1)" \
		"$mode: vgpu-test ran to its plan ($tests of ${plan:-?})"
	ok "$rc" "$mode: vgpu-test run clean: exit status, kernel log, daemon (exit $rc)"
	if [ "$rc" != 0 ]; then
		grep -v -E '^(ok |not ok |# |1\.\.)' "$LOG/test" | sed 's/^/# /' | head -n 200
	fi
done

echo "1..$n"
[ "$failed" = 0 ] || echo "# $failed of $n failed"
[ "$failed" = 0 ]
