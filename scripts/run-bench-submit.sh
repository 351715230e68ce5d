#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run-bench-submit.sh - submits per second and latency of small submits in
# the guest: the synchronous path of libvgpu 0.1 and of 1.0 against
# asynchronous submits with 1, 4 and 16 in flight, on one ring and on
# several (guest/tools/vgpu-submit-bench.c),
# side by side in one run. Prints TAP (the run, every configuration present,
# every figure positive) and the table.
#
#   scripts/run-bench-submit.sh [--quick] [--build DIR] [--kernel PATH] [--out FILE]
#
# Default: 3000 submits per configuration, median of 5 runs, table written to
# docs/bench/submit.txt. --quick (300 submits, 1 run) is the smoke test and
# writes nothing under docs/.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$REPO/build/meson
KERNEL=
OUT=$REPO/docs/bench/submit.txt
ARGS=(--submits 3000 --reps 5)
while [ $# -gt 0 ]; do
	case $1 in
	--quick) ARGS=(--submits 300 --reps 1); OUT=; shift ;;
	--build) BUILD=$2; shift 2 ;;
	--kernel) KERNEL=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h|--help) sed -n '3,/^$/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run-bench-submit.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
if [ -z "$KERNEL" ] && [ -x "$REPO/build/bench-kernel/uml/linux" ]; then
	KERNEL=$REPO/build/bench-kernel/uml/linux
fi
kargs=()
[ -n "$KERNEL" ] && kargs=(--kernel "$KERNEL")

log=$(mktemp "${TMPDIR:-/tmp}/vgpu-submit-bench.XXXXXXXX")
trap 'rm -f "$log"' EXIT
"$REPO/tests/system/run-guest.sh" "${kargs[@]}" --timeout 600 -- \
	"$BUILD/guest/vgpu-submit-bench" "${ARGS[@]}" >"$log" 2>&1
rc=$?

n=0
failed=0
ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
ok "$rc" "vgpu-submit-bench ran in the guest (exit $rc)"
rows=$(grep -c '^submit-bench ' "$log")
ok "$([ "$rows" = 8 ] && echo 0 || echo 1)" "8 configurations measured ($rows)"
bad=$(awk '/^submit-bench / && !($5 > 0 && $6 > 0 && $7 > 0 && $9 > 0)' "$log" | wc -l)
ok "$([ "$bad" = 0 ] && echo 0 || echo 1)" "every figure is positive"
{
	grep '^# submits=' "$log"
	echo "| path | in flight | rings | submits/s | latency median (us) | p99 (us) | in the call (us) | x sync-0.1 |"
	echo "|---|---|---|---|---|---|---|---|"
	awk '/^submit-bench / { printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n",
		$2, ($3 == "0" ? "1" : $3), ($4 == "0" ? "-" : $4), $5, $6, $7, $8, $9 }' "$log"
} >"$log.table"
sed 's/^/# /' "$log.table"
if [ "$rc" != 0 ]; then
	grep -v '^\[' "$log" | tail -n 30 | sed 's/^/# /'
fi
if [ -n "$OUT" ] && [ "$failed" = 0 ]; then
	cp "$log.table" "$OUT"
	echo "# written to $OUT"
fi
rm -f "$log.table"
echo "1..$n"
[ "$failed" = 0 ]
