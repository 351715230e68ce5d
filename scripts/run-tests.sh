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

# suite NAME CMD...: runs CMD, keeps its output in NAME.log and its exit
# status in NAME.rc; a suite that cannot even start is a failure, not a skip.
suite() {
	local name=$1
	shift
	say "suite $name: $*"
	"$@" 2>&1 | tee "$results/$name.log"
	echo "${PIPESTATUS[0]}" >"$results/$name.rc"
}

# meson_suite NAME BUILDDIR [meson test args]: meson's own log is read for
# each test's TAP output.
meson_suite() {
	local name=$1 dir=$2
	shift 2
	say "suite $name: meson test -C $dir $*"
	meson test -C "$dir" --print-errorlogs "$@" 2>&1 | tee "$results/$name.log"
	echo "${PIPESTATUS[0]}" >"$results/$name.rc"
	cp "$dir/meson-logs/testlog.json" "$results/$name.json" 2>/dev/null ||
		rm -f "$results/$name.json"
}

# A stage whose build fails records a failed suite and the run goes on, so
# that the summary still covers everything else.
fail_stage() {
	echo "$2" >"$results/$1.log"
	echo 1 >"$results/$1.rc"
	echo "FAILED: $2" >&2
}

say "dependencies"
scripts/install-deps.sh || fail_stage deps "package installation failed"

say "host build (plain and ASan/UBSan)"
if scripts/build-host.sh; then
	meson_suite host-unit build/meson --suite host
	meson_suite host-unit-asan build/meson-asan --suite host
	meson_suite host-fuzz build/fuzz --suite fuzz
else
	fail_stage host-build "host build failed"
fi

say "summary"
python3 tests/tap-summary.py "$results"
