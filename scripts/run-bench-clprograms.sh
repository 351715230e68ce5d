#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run-bench-clprograms.sh - unmodified OpenCL programs in the guest, through
# the guest's OpenCL ICD, against the same programs on the host on the same
# OpenCL device: clpeak, and CLBlast's SGEMM and SAXPY at a few sizes
# (guest/tests/clblast-bench.c). Interleaved rounds (native, UML guest,
# QEMU guest, then again; one guest boot per round runs both programs),
# each figure's median, the guest's as % of native
# (scripts/bench-clprograms-report.py). Both sides run PoCL under the same
# POCL_MEMORY_LIMIT and POCL_MAX_PTHREAD_COUNT (the daemon passes them on
# to its workers), so that the programs pick the same sizes on both.
# Writes the raw outputs to docs/bench/clprograms/ and the tables to
# docs/bench/clprograms.md.
#
#   scripts/run-bench-clprograms.sh [--rounds N] [--vmm uml|qemu|both]
#       [--mem-limit GB] [--threads N] [--out NAME]
#
# --threads caps PoCL's threads on both sides (default: PoCL's own choice,
# one per core); --out names the result (docs/bench/NAME.md, raw outputs in
# docs/bench/NAME/), so that a variant does not overwrite the main table.

set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

ROUNDS=3
VMMS="uml qemu"
LIMIT=1
THREADS=
NAME=clprograms
GEMM_SIZES="256 512 1024"
AXPY_SIZES="65536 1048576 16777216"
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift 2 ;;
	--vmm) case $2 in both) VMMS="uml qemu" ;; uml|qemu) VMMS=$2 ;; *) echo "--vmm uml|qemu|both" >&2; exit 2 ;; esac; shift 2 ;;
	--mem-limit) LIMIT=$2; shift 2 ;;
	--threads) THREADS=$2; shift 2 ;;
	--out) NAME=$2; shift 2 ;;
	-h|--help) sed -n '3,21p' "$0"; exit 0 ;;
	*) echo "run-bench-clprograms: unknown argument $1" >&2; exit 2 ;;
	esac
done
case $ROUNDS in ''|*[!0-9]*|0) echo "--rounds wants a count" >&2; exit 2 ;; esac
case $LIMIT in ''|*[!0-9]*|0) echo "--mem-limit wants whole GB" >&2; exit 2 ;; esac
case $THREADS in *[!0-9]*) echo "--threads wants a count" >&2; exit 2 ;; esac
case $NAME in ''|*[!A-Za-z0-9_-]*) echo "--out wants a plain name" >&2; exit 2 ;; esac

ICD=$top/build/meson/guest/icd
BENCH=$top/build/meson/guest/tests/clblast-bench
[ -f "$ICD/vgpu.icd" ] || { echo "run-bench-clprograms: build the guest side first (scripts/build-all.sh)" >&2; exit 2; }
[ -x "$BENCH" ] || { echo "run-bench-clprograms: no $BENCH (libclblast-dev: scripts/install-deps.sh, then rebuild)" >&2; exit 2; }
OUT=$top/docs/bench/$NAME
rm -rf "$OUT"
mkdir -p "$OUT"
export POCL_MEMORY_LIMIT=$LIMIT
[ -z "$THREADS" ] || export POCL_MAX_PTHREAD_COUNT=$THREADS

# Both programs, one after the other; the CLBlast part after a marker line.
# A script in the output folder: the guests see the host's root.
PROGS=$OUT/programs.sh
cat >"$PROGS" <<EOS
clpeak
echo "== clblast-bench"
"$BENCH" --runs 5 sgemm $GEMM_SIZES
"$BENCH" --runs 5 saxpy $AXPY_SIZES
EOS

split() { # raw side-round: clpeak's own lines and the CLBlast lines apart
	sed -n '/^Platform:/,/launch latency/p' "$1" >"$OUT/clpeak-$2.txt"
	sed -n '/^== clblast-bench/,$p' "$1" | grep -E '^[sd](gemm|axpy) ' >"$OUT/clblast-$2.txt" || true
	[ -s "$OUT/clblast-$2.txt" ] || { echo "run-bench-clprograms: no CLBlast figures in $1" >&2; exit 1; }
	rm -f "$1"
}

for r in $(seq 1 "$ROUNDS"); do
	echo "round $r: native"
	OCL_ICD_VENDORS=/etc/OpenCL/vendors bash "$PROGS" >"$OUT/native-$r.raw" 2>&1
	split "$OUT/native-$r.raw" "native-$r"
	for v in $VMMS; do
		echo "round $r: $v"
		tests/system/run-guest.sh --vmm "$v" --mem 2G --timeout 2400 \
			-- env OCL_ICD_VENDORS="$ICD" bash "$PROGS" >"$OUT/$v-$r.raw" 2>&1 || {
			echo "run-bench-clprograms: the programs in the $v guest failed (see $OUT/$v-$r.raw)" >&2
			exit 1
		}
		split "$OUT/$v-$r.raw" "$v-$r"
	done
done
rm -f "$PROGS"
{
	echo "Machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1), host kernel $(uname -r); HEAD $(git rev-parse --short HEAD)."
	echo "Device: $(OCL_ICD_VENDORS=/etc/OpenCL/vendors clinfo -l 2>/dev/null | sed -n 's/.*Device #0: //p' | head -n 1), POCL_MEMORY_LIMIT=$LIMIT, POCL_MAX_PTHREAD_COUNT=${THREADS:-unset} on both sides."
	echo
	scripts/bench-clprograms-report.py "$OUT"
} >"$top/docs/bench/$NAME.md"
echo "run-bench-clprograms: docs/bench/$NAME.md"
