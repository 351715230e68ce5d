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
#
# Writes docs/bench/thp.csv and the table between the GENERATED THP markers
# of docs/benchmarks.md. Prints TAP: one test per VMM that ran and was
# parsed, one for the docs.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE=256
RUNS=11
DOCS=1
while [ $# -gt 0 ]; do
	case $1 in
	--size) SIZE=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--no-docs) DOCS=0; shift ;;
	-h | --help) sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run-bench-thp.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
BIN=$REPO/build/meson/guest/tests/vgpu-thp
OUT=$REPO/docs/bench
LOG=$REPO/build/bench-run/thp.log
mkdir -p "$OUT" "$(dirname "$LOG")"
: >"$LOG"
[ -x "$BIN" ] || { echo "run-bench-thp.sh: $BIN missing (build with -Dguest=true)" >&2; exit 2; }

n=0 fails=0
tap() {
	n=$((n + 1))
	if [ "$1" = 1 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}

csv=$OUT/thp.csv.new
echo "vmm,accel,pages,size_mib,huge_pct,min_entries,timed_runs,median_us,min_us,max_us,ms_per_gib" >"$csv"
for vmm in qemu uml; do
	mem=1536M
	out=$REPO/build/bench-run/thp-$vmm.txt
	"$REPO/tests/system/run-guest.sh" --vmm "$vmm" --mem "$mem" --timeout 900 --no-kmemleak \
		-- "$BIN" --bench --size "$SIZE" --runs "$RUNS" >"$out" 2>>"$LOG"
	rc=$?
	accel=-
	if [ "$vmm" = qemu ]; then
		accel=$(sed -n 's/^run-guest.sh: QEMU with \(.*\)$/\1/p' "$LOG" | tail -n 1)
	fi
	rows=$(grep -cE '^(thp|4k),' "$out")
	grep -E '^(thp|4k),' "$out" | sed "s/^/$vmm,$accel,/" >>"$csv"
	cat "$out" >>"$LOG"
	tap "$([ "$rc" = 0 ] && [ "$rows" = 2 ] && echo 1)" "$vmm: vgpu-thp --bench, $SIZE MiB, $RUNS runs"
done
mv "$csv" "$OUT/thp.csv"
{
	echo "machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "date: $(date -u +%Y-%m-%dT%H:%MZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)"
} >"$OUT/meta-thp.txt"

if [ "$DOCS" = 1 ]; then
	python3 - "$OUT/thp.csv" "$OUT/meta-thp.txt" "$REPO/docs/benchmarks.md" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
meta = open(sys.argv[2]).read().strip().splitlines()
BEGIN = '<!-- BEGIN GENERATED THP by scripts/run-bench-thp.sh: do not edit by hand -->'
END = '<!-- END GENERATED THP -->'
out = [BEGIN, '', '| VMM | accel | buffer | in huge pages | min. mem entries | register+release (median) | per GiB | 4 KiB / this |', '|---|---|---|---|---|---|---|---|']
for vmm in ('qemu', 'uml'):
    r = {x['pages']: x for x in rows if x['vmm'] == vmm}
    if '4k' not in r:
        continue
    base = float(r['4k']['median_us'])
    for k, label in (('thp', 'MADV_HUGEPAGE'), ('4k', 'MADV_NOHUGEPAGE')):
        if k not in r:
            continue
        x = r[k]
        out.append('| %s | %s | %s MiB, %s | %s%% | %s | %.1f ms (%s runs, %.1f-%.1f) | %s ms | %.2fx |' % (
            vmm, x['accel'], x['size_mib'], label, x['huge_pct'], x['min_entries'],
            float(x['median_us']) / 1e3, x['timed_runs'], float(x['min_us']) / 1e3,
            float(x['max_us']) / 1e3, x['ms_per_gib'], base / float(x['median_us'])))
out += ['', 'Measured on: ' + '; '.join(meta) + '.', '', END]
md = open(sys.argv[3]).read()
if BEGIN in md and END in md:
    a, b = md.index(BEGIN), md.index(END) + len(END)
    md = md[:a] + '\n'.join(out) + md[b:]
else:
    md = md.rstrip('\n') + '\n\n## Huge pages: registration cost\n\n' + '\n'.join(out) + '\n'
open(sys.argv[3], 'w').write(md)
PY
	tap "$([ $? = 0 ] && echo 1)" "docs/benchmarks.md THP table regenerated"
fi
echo "1..$n"
[ "$fails" = 0 ]
