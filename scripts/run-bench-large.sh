#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run-bench-large.sh - a model-file-sized buffer end to end: 4 GiB (or
# --size) of guest memory registered as one userptr blob.
#
#   scripts/run-bench-large.sh [--size MIB] [--runs N] [--no-docs]
#
# 1. In the x86_64 guest under QEMU (given the RAM for it), vgpu-thp's test
#    over a buffer in huge pages and one in 4 KiB pages populated in a
#    shuffled order (--scatter: one mem entry per page, 1M entries for
#    4 GiB): each is registered as a userptr blob, its mem entries equal
#    the physically contiguous runs that pagemap shows, and the device's
#    XXH64 over the whole blob equals the guest's.
# 2. vgpu-thp --bench: the cost of registering and releasing the two
#    buffers, interleaved, medians; in QEMU, and in UML where the host's
#    vm.max_map_count allows one mapping per scattered page.
#
# Writes docs/bench/large.csv, docs/bench/meta-large.txt and the table
# between the GENERATED LARGE markers of docs/benchmarks.md. Prints TAP.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE=4096
RUNS=5
DOCS=1
while [ $# -gt 0 ]; do
	case $1 in
	--size) SIZE=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--no-docs) DOCS=0; shift ;;
	-h | --help) sed -n '3,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run-bench-large.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
case $SIZE in '' | *[!0-9]*) echo "run-bench-large.sh: --size wants MiB" >&2; exit 2 ;; esac
BIN=$REPO/build/meson/guest/tests/vgpu-thp
OUT=$REPO/docs/bench
LOG=$REPO/build/bench-run/large.log
mkdir -p "$OUT" "$(dirname "$LOG")"
: >"$LOG"
[ -x "$BIN" ] || { echo "run-bench-large.sh: $BIN missing (build with -Dguest=true)" >&2; exit 2; }
# The test holds one buffer at a time, the benchmark both: guest RAM for
# that and 2 GiB more (the x86_64 guest kernel has KASAN, and a pinned
# 4 GiB of scattered pages has a 32 MiB sg table and 16 MiB of entries).
test_mem=$((SIZE + 2048))M
bench_mem=$((2 * SIZE + 2048))M

n=0 fails=0
tap() {
	n=$((n + 1))
	if [ "$1" = 1 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}

out=$REPO/build/bench-run/large-test.txt
"$REPO/tests/system/run-guest.sh" --vmm qemu --mem "$test_mem" --timeout 1800 --no-kmemleak \
	-- "$BIN" --size "$SIZE" --scatter >"$out" 2>>"$LOG"
rc=$?
cat "$out" >>"$LOG"
grep -E '^# (THP|4 KiB):' "$out"
bad=$(grep -c '^not ok' "$out")
tap "$([ "$rc" = 0 ] && [ "$bad" = 0 ] && grep -q '^1\.\.' "$out" && echo 1)" \
	"qemu: vgpu-thp --size $SIZE --scatter: registered, entries = pagemap runs, device XXH64 right ($bad failed)"

csv=$OUT/large.csv.new
echo "vmm,accel,pages,size_mib,huge_pct,min_entries,timed_runs,median_us,min_us,max_us,ms_per_gib" >"$csv"
# UML maps each physically contiguous run of a guest process's memory as a
# host mapping of its own: a scattered buffer needs one per page, more
# than vm.max_map_count allows by default (65530), and UML then kills the
# process. UML runs only where the host allows that many.
pages=$((SIZE * 256))
vmms=qemu
if [ "$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo 0)" -gt $((pages + 65536)) ]; then
	vmms="qemu uml"
else
	echo "# uml: not run: a scattered $SIZE MiB buffer needs $pages host mappings," \
		"vm.max_map_count is $(cat /proc/sys/vm/max_map_count 2>/dev/null)"
fi
for vmm in $vmms; do
	out=$REPO/build/bench-run/large-$vmm.txt
	"$REPO/tests/system/run-guest.sh" --vmm "$vmm" --mem "$bench_mem" --timeout 1800 --no-kmemleak \
		-- "$BIN" --bench --scatter --size "$SIZE" --runs "$RUNS" >"$out" 2>>"$LOG"
	rc=$?
	accel=-
	if [ "$vmm" = qemu ]; then
		accel=$(sed -n 's/^run-guest.sh: QEMU with \(.*\)$/\1/p' "$LOG" | tail -n 1)
	fi
	rows=$(grep -cE '^(thp|4k),' "$out")
	grep -E '^(thp|4k),' "$out" | sed "s/^/$vmm,$accel,/" >>"$csv"
	cat "$out" >>"$LOG"
	tap "$([ "$rc" = 0 ] && [ "$rows" = 2 ] && echo 1)" \
		"$vmm: vgpu-thp --bench --scatter, $SIZE MiB, $RUNS runs"
done
mv "$csv" "$OUT/large.csv"
{
	echo "machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "date: $(date -u +%Y-%m-%dT%H:%MZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)"
} >"$OUT/meta-large.txt"

if [ "$DOCS" = 1 ]; then
	python3 - "$OUT/large.csv" "$OUT/meta-large.txt" "$REPO/docs/benchmarks.md" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
meta = open(sys.argv[2]).read().strip().splitlines()
BEGIN = '<!-- BEGIN GENERATED LARGE by scripts/run-bench-large.sh: do not edit by hand -->'
END = '<!-- END GENERATED LARGE -->'
out = [BEGIN, '', '| VMM | accel | buffer | in huge pages | mem entries | register+release (median) | per GiB | scattered / THP |', '|---|---|---|---|---|---|---|---|']
for vmm in ('qemu', 'uml'):
    r = {x['pages']: x for x in rows if x['vmm'] == vmm}
    if 'thp' not in r:
        continue
    base = float(r['thp']['median_us'])
    for k, label in (('thp', 'MADV_HUGEPAGE'), ('4k', '4 KiB, scattered')):
        if k not in r:
            continue
        x = r[k]
        out.append('| %s | %s | %s MiB, %s | %s%% | %s | %.1f ms (%s runs, %.1f-%.1f) | %s ms | %.2fx |' % (
            vmm, x['accel'], x['size_mib'], label, x['huge_pct'], x['min_entries'],
            float(x['median_us']) / 1e3, x['timed_runs'], float(x['min_us']) / 1e3,
            float(x['max_us']) / 1e3, x['ms_per_gib'], float(x['median_us']) / base))
out += ['', 'Measured on: ' + '; '.join(meta) + '.', '', END]
md = open(sys.argv[3]).read()
if BEGIN in md and END in md:
    a, b = md.index(BEGIN), md.index(END) + len(END)
    md = md[:a] + '\n'.join(out) + md[b:]
else:
    md = md.rstrip('\n') + '\n\n## A model-file-sized buffer\n\n' + '\n'.join(out) + '\n'
open(sys.argv[3], 'w').write(md)
PY
	tap "$([ $? = 0 ] && echo 1)" "docs/benchmarks.md large-buffer table regenerated"
fi
echo "1..$n"
[ "$fails" = 0 ]
