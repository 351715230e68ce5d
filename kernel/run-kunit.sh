#!/bin/bash
# Run the KUnit suites of the series on the UML test kernel built by
# kernel/build.sh (no second kernel build), with the kernel's own KUnit
# tool. Prints the raw KTAP on stdout; a summary goes to stderr.
#
# Usage: kernel/run-kunit.sh [GLOB]
#   GLOB  kunit.filter_glob (default: virtgpu_userptr*)
#
# Exit status: 0 when every test passed, 1 otherwise (including when no
# test ran or the kernel crashed).
set -euo pipefail

# shellcheck source=kernel/lib.sh
. "$(dirname "$0")/lib.sh"

glob=${1:-virtgpu_userptr*}
kunit=$TREE/tools/testing/kunit/kunit.py

[[ -x $UML_OUT/linux ]] || die "no $UML_OUT/linux; run kernel/build.sh first"
grep -qx CONFIG_DRM_VIRTIO_GPU_KUNIT_TEST=y "$UML_OUT/.config" ||
	die "$UML_OUT is not configured with CONFIG_DRM_VIRTIO_GPU_KUNIT_TEST=y"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# kunit.py exec boots $UML_OUT/linux with kunit.filter_glob and stops it
# with kunit_shutdown=halt. It prints a few status lines of its own before
# the KTAP, which starts at "KTAP version 1".
python3 "$kunit" exec --build_dir="$UML_OUT" --raw_output=kunit \
	--timeout=300 "$glob" >"$tmp/out" 2>&1 || true
sed -n '/^KTAP version 1$/,$p' "$tmp/out" | grep -v '^\[[0-9:]*\] ' >"$tmp/ktap" || true

if [[ ! -s $tmp/ktap ]]; then
	cat "$tmp/out" >&2
	die "no KTAP output from the kernel"
fi
cat "$tmp/ktap"

# Let the KUnit tool judge the result.
if ! python3 "$kunit" parse "$tmp/ktap" >"$tmp/parsed" 2>&1; then
	cat "$tmp/parsed" >&2
	note "KUnit: FAILED"
	exit 1
fi
totals=$(grep -E '^# Totals: ' "$tmp/ktap" | tail -1 || true)
if [[ -z $totals ]] || grep -q 'total:0$' <<<"$totals"; then
	die "no test ran (filter: $glob)"
fi
note "KUnit: ${totals#"# Totals: "}"
