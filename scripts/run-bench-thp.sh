#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run-bench-thp.sh - what huge pages change for registration: the cost of
# registering and releasing a userptr blob, per GiB, over a buffer backed
# by 2 MiB transparent huge pages against the same buffer in 4 KiB pages,
# interleaved in one run (vgpu-thp --bench, medians), in the x86_64 guest
# under QEMU and, beside it, in UML (which has no THP: both of its rows are
# 4 KiB pages).
#
#   scripts/run-bench-thp.sh [--size MIB] [--runs N] [--no-docs]
#   scripts/run-bench-thp.sh --large [--size MIB] [--runs N] [--no-docs]
#
# Writes docs/bench/thp.csv and the table between the GENERATED THP markers
# of docs/benchmarks.md. Prints TAP: one test per VMM that ran and was
# parsed, one for the docs.
#
# --large: a model-file-sized buffer end to end (default 4 GiB), with the
# 4 KiB buffer populated in a shuffled order (vgpu-thp --scatter: one mem
# entry per page, 1M entries for 4 GiB) and guests given the RAM for it.
# First vgpu-thp's test in the x86_64 guest: each buffer registered as a
# userptr blob, its mem entries equal to pagemap's contiguous runs, the
# device's XXH64 over the whole blob equal to the guest's. Then the
# benchmark, in UML only where the host's vm.max_map_count allows one
# mapping per scattered page. Writes docs/bench/large.csv and the
# GENERATED LARGE table.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE=
RUNS=
DOCS=1
LARGE=0
while [ $# -gt 0 ]; do
	case $1 in
	--size) SIZE=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--large) LARGE=1; shift ;;
	--no-docs) DOCS=0; shift ;;
	-h | --help) sed -n '3,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run-bench-thp.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
if [ "$LARGE" = 1 ]; then
	name=large
	SIZE=${SIZE:-4096}
	RUNS=${RUNS:-5}
	# The test holds one buffer at a time, the benchmark both: guest RAM
	# for that and 2 GiB more (the x86_64 guest kernel has KASAN, and a
	# pinned 4 GiB of scattered pages has a 32 MiB sg table and 16 MiB of
	# entries).
	test_mem=$((SIZE + 2048))M
	mem=$((2 * SIZE + 2048))M
	extra=(--scatter)
	table=(--name LARGE --heading "A model-file-sized buffer" --base thp
		--label-4k "4 KiB, scattered" --entries-title "mem entries")
else
	name=thp
	SIZE=${SIZE:-256}
	RUNS=${RUNS:-11}
	mem=1536M
	extra=()
	table=(--name THP --heading "Huge pages: registration cost" --base 4k)
fi
case $SIZE in '' | *[!0-9]*) echo "run-bench-thp.sh: --size wants MiB" >&2; exit 2 ;; esac
BIN=$REPO/build/meson/guest/tests/vgpu-thp
OUT=$REPO/docs/bench
LOG=$REPO/build/bench-run/$name.log
mkdir -p "$OUT" "$(dirname "$LOG")"
: >"$LOG"
[ -x "$BIN" ] || { echo "run-bench-thp.sh: $BIN missing (build with -Dguest=true)" >&2; exit 2; }

n=0 fails=0
tap() {
	n=$((n + 1))
	if [ "$1" = 1 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}

vmms="qemu uml"
if [ "$LARGE" = 1 ]; then
	out=$REPO/build/bench-run/$name-test.txt
	"$REPO/tests/system/run-guest.sh" --vmm qemu --mem "$test_mem" --timeout 1800 --no-kmemleak \
		-- "$BIN" --size "$SIZE" --scatter >"$out" 2>>"$LOG"
	rc=$?
	cat "$out" >>"$LOG"
	grep -E '^# (THP|4 KiB):' "$out"
	bad=$(grep -c '^not ok' "$out")
	tap "$([ "$rc" = 0 ] && [ "$bad" = 0 ] && grep -q '^1\.\.' "$out" && echo 1)" \
		"qemu: vgpu-thp --size $SIZE --scatter: registered, entries = pagemap runs, device XXH64 right ($bad failed)"
	# UML maps each physically contiguous run of a guest process's memory
	# as a host mapping of its own: a scattered buffer needs one per page,
	# more than the default vm.max_map_count (65530), and UML then kills
	# the process.
	pages=$((SIZE * 256))
	if [ "$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo 0)" -le $((pages + 65536)) ]; then
		vmms=qemu
		echo "# uml: not run: a scattered $SIZE MiB buffer needs $pages host mappings," \
			"vm.max_map_count is $(cat /proc/sys/vm/max_map_count 2>/dev/null)"
	fi
fi

csv=$OUT/$name.csv.new
echo "vmm,accel,pages,size_mib,huge_pct,min_entries,timed_runs,median_us,min_us,max_us,ms_per_gib" >"$csv"
for vmm in $vmms; do
	out=$REPO/build/bench-run/$name-$vmm.txt
	"$REPO/tests/system/run-guest.sh" --vmm "$vmm" --mem "$mem" --timeout 1800 --no-kmemleak \
		-- "$BIN" --bench "${extra[@]}" --size "$SIZE" --runs "$RUNS" >"$out" 2>>"$LOG"
	rc=$?
	accel=-
	if [ "$vmm" = qemu ]; then
		accel=$(sed -n 's/^run-guest.sh: QEMU with \(.*\)$/\1/p' "$LOG" | tail -n 1)
	fi
	rows=$(grep -cE '^(thp|4k),' "$out")
	grep -E '^(thp|4k),' "$out" | sed "s/^/$vmm,$accel,/" >>"$csv"
	cat "$out" >>"$LOG"
	tap "$([ "$rc" = 0 ] && [ "$rows" = 2 ] && echo 1)" \
		"$vmm: vgpu-thp --bench${extra[*]:+ ${extra[*]}}, $SIZE MiB, $RUNS runs"
done
mv "$csv" "$OUT/$name.csv"
{
	echo "machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "date: $(date -u +%Y-%m-%dT%H:%MZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)"
} >"$OUT/meta-$name.txt"

if [ "$DOCS" = 1 ]; then
	python3 "$REPO/scripts/bench-thp-table.py" "$OUT/$name.csv" "$OUT/meta-$name.txt" \
		"$REPO/docs/benchmarks.md" --script scripts/run-bench-thp.sh "${table[@]}"
	tap "$([ $? = 0 ] && echo 1)" "docs/benchmarks.md $name table regenerated"
fi
echo "1..$n"
[ "$fails" = 0 ]
