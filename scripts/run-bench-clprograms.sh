#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run-bench-clpeak.sh - clpeak in the guest, through the guest's OpenCL ICD,
# against clpeak on the host on the same OpenCL device: interleaved rounds
# (native, UML guest, QEMU guest, then again), each test's median, the
# guest's as % of native (scripts/bench-clpeak-report.py). Both sides run
# PoCL under the same POCL_MEMORY_LIMIT (the daemon passes it on to its
# workers), so that clpeak picks the same sizes on both. Writes the raw
# outputs to docs/bench/clpeak/ and the table to docs/bench/clpeak.md.
#
#   scripts/run-bench-clpeak.sh [--rounds N] [--vmm uml|qemu|both] [--mem-limit GB]

set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

ROUNDS=3
VMMS="uml qemu"
LIMIT=1
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift 2 ;;
	--vmm) case $2 in both) VMMS="uml qemu" ;; uml|qemu) VMMS=$2 ;; *) echo "--vmm uml|qemu|both" >&2; exit 2 ;; esac; shift 2 ;;
	--mem-limit) LIMIT=$2; shift 2 ;;
	-h|--help) sed -n '3,13p' "$0"; exit 0 ;;
	*) echo "run-bench-clpeak: unknown argument $1" >&2; exit 2 ;;
	esac
done
case $ROUNDS in ''|*[!0-9]*|0) echo "--rounds wants a count" >&2; exit 2 ;; esac
case $LIMIT in ''|*[!0-9]*|0) echo "--mem-limit wants whole GB" >&2; exit 2 ;; esac

ICD=$top/build/meson/guest/icd
[ -f "$ICD/vgpu.icd" ] || { echo "run-bench-clpeak: build the guest side first (scripts/build-all.sh)" >&2; exit 2; }
OUT=$top/docs/bench/clpeak
rm -rf "$OUT"
mkdir -p "$OUT"
export POCL_MEMORY_LIMIT=$LIMIT

for r in $(seq 1 "$ROUNDS"); do
	echo "round $r: native"
	OCL_ICD_VENDORS=/etc/OpenCL/vendors clpeak >"$OUT/native-$r.txt" 2>&1
	for v in $VMMS; do
		echo "round $r: $v"
		tests/system/run-guest.sh --vmm "$v" --mem 2G --timeout 1800 \
			-- env OCL_ICD_VENDORS="$ICD" clpeak >"$OUT/$v-$r.raw" 2>&1 || {
			echo "run-bench-clpeak: clpeak in the $v guest failed (see $OUT/$v-$r.raw)" >&2
			exit 1
		}
		# clpeak's own lines only
		sed -n '/^Platform:/,/launch latency/p' "$OUT/$v-$r.raw" >"$OUT/$v-$r.txt"
		rm -f "$OUT/$v-$r.raw"
	done
done
{
	echo "Machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1), host kernel $(uname -r)."
	echo "Device: $(OCL_ICD_VENDORS=/etc/OpenCL/vendors clinfo -l 2>/dev/null | sed -n 's/.*Device #0: //p' | head -n 1), POCL_MEMORY_LIMIT=$LIMIT on both sides."
	echo
	scripts/bench-clpeak-report.py "$OUT"
} >"$top/docs/bench/clpeak.md"
cat "$top/docs/bench/clpeak.md"
