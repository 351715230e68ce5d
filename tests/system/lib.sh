# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# lib.sh - shared by the system test scripts (e2e.sh, stress.sh, faults.sh),
# sourced after `set -u`: the paths, option checks, one TAP counter and the
# relay of a guest program's TAP.

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
PROG=${0##*/}
BUILD=${VGPU_BUILD:-$REPO_ROOT/build/meson}
# shellcheck disable=SC2034 # used by the scripts that source this file
RUN=$SCRIPT_DIR/run-guest.sh
# shellcheck disable=SC2034 # extra run-guest.sh arguments (--kernel PATH)
KARGS=()

# The script's leading comment block (from line 3 to the first blank line).
usage() {
	sed -n '3,/^$/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
}

# need_value OPTION WHAT ARGC: exit 2 unless OPTION is followed by a value.
need_value() {
	[ "$3" -ge 2 ] || { echo "$PROG: $1 needs $2" >&2; exit 2; }
}

# bad_arg ARG: an unknown argument ends the script with usage and status 2.
bad_arg() {
	echo "$PROG: unknown argument '$1'" >&2
	usage >&2
	exit 2
}

# BUILD as an absolute path; each FILE... under it must be an executable.
need_build() {
	local f
	case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
	for f in "$@"; do
		if [ ! -x "$BUILD/$f" ]; then
			echo "$PROG: $BUILD/$f is missing: build with -Dguest=true first" >&2
			exit 2
		fi
	done
}

# need_file LABEL PATH: true if PATH is there (executable); else a failed
# check that says so.
need_file() {
	[ -x "$2" ] && return 0
	ok 1 "$1: $2 is missing (build it first)"
	return 1
}

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

# The plan, a summary of failures, and the script's status (0: all passed).
tap_end() {
	echo "1..$n"
	[ "$failed" = 0 ] || echo "# $failed of $n failed"
	[ "$failed" = 0 ]
}

# make_log NAME: a fresh temp dir in LOG, removed at exit.
make_log() {
	LOG=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-$1.XXXXXXXX") || exit 2
	trap 'rm -rf -- "$LOG"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# show_untapped FILE LINES: what a guest run printed besides its TAP (the
# daemon's log, kernel findings, errors), as TAP comments, at most LINES.
show_untapped() {
	grep -v -E '^(ok |not ok |# |1\.\.)' "$1" | sed 's/^/# /' | head -n "$2"
}

# relay_tap PREFIX FILE PLAN-NAME: the TAP results in FILE renumbered into
# this stream under PREFIX, its comments passed on, then one result saying
# whether it ran to its plan. Sets `tests` (results seen) and `plan`.
relay_tap() {
	local prefix=$1 file=$2 line
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
	done < <(tr -d '\r' <"$file")
	plan=$(tr -d '\r' <"$file" | sed -n 's/^1\.\.\([0-9]*\)$/\1/p' | tail -n 1)
	ok "$([ -n "$plan" ] && [ "$plan" = "$tests" ] && echo 0 || echo 1)" \
		"$prefix: $3 ($tests of ${plan:-?})"
}

# ---- several programs in one guest boot (run-guest.sh --steps) -------------
# steps_begin NAME: a new, empty list of steps for the boot NAME (its files
# go to $LOG/NAME/ and $LOG/NAME.log).
steps_begin() {
	STEPS_FILE=$LOG/$1.steps
	STEPS_DIR=$LOG/$1
	: >"$STEPS_FILE"
	rm -rf -- "$STEPS_DIR"
}

# step NAME CMD [ARGS...]: add a step that runs CMD ARGS in the guest.
step() {
	local name=$1
	shift
	printf '%s %s\n' "$name" "$(printf '%q ' "$@")" >>"$STEPS_FILE"
}

# steps_run RUN-GUEST-ARGS...: boot once (with KARGS too) and run the steps;
# BOOT_RC is run-guest.sh's status.
steps_run() {
	"$RUN" "${KARGS[@]+"${KARGS[@]}"}" "$@" --steps "$STEPS_FILE" --results "$STEPS_DIR" \
		>"$STEPS_DIR.log" 2>&1
	BOOT_RC=$?
}

# step_out NAME: the file with what the step printed.
step_out() {
	echo "$STEPS_DIR/$1.out"
}

# step_rc NAME: the step's verdict as a status: its exit status, 125 when it
# never finished, 1 when it exited 0 but the kernel reported a problem while
# it ran.
step_rc() {
	local f=$STEPS_DIR/$1.rc rc
	[ -r "$f" ] || { echo 125; return; }
	read -r rc _ <"$f"
	[ "$rc" = 0 ] && [ -s "$STEPS_DIR/$1.kernel" ] && rc=1
	echo "$rc"
}

# step_show NAME LINES: a failed step's output and its kernel reports, as
# TAP comments.
step_show() {
	local f
	for f in "$STEPS_DIR/$1.out" "$STEPS_DIR/$1.kernel"; do
		[ -s "$f" ] && grep -v -E '^(ok |not ok |1\.\.)' "$f" | sed 's/^/# /' | head -n "$2"
	done
	return 0
}

# boot_ok LABEL: one TAP result for what belongs to the boot rather than to
# a step: it finished in time, kmemleak and the kernel log outside the steps
# are clean, the daemon stayed up and exited cleanly with no sanitizer report.
boot_ok() {
	local b=$STEPS_DIR/boot.txt exitc kern daem
	exitc=$(sed -n 's/^exit //p' "$b" 2>/dev/null)
	kern=$(sed -n 's/^kernel //p' "$b" 2>/dev/null)
	daem=$(sed -n 's/^daemon //p' "$b" 2>/dev/null)
	if [ -n "$exitc" ] && [ "$exitc" != 124 ] && [ "$exitc" != 125 ] &&
		[ "$kern" = 0 ] && [ "$daem" = 0 ]; then
		ok 0 "$1: the boot was clean: kmemleak, kernel log outside the steps, daemon"
		return 0
	fi
	ok 1 "$1: the boot was clean: kmemleak, kernel log outside the steps, daemon (exit ${exitc:-none}, kernel ${kern:-?}, daemon ${daem:-?})"
	[ -s "$STEPS_DIR/boot.kernel" ] && sed 's/^/# /' "$STEPS_DIR/boot.kernel" | head -n 80
	show_untapped "$STEPS_DIR.log" 120
	return 1
}
