#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Regenerate one GENERATED section of docs/benchmarks.md from vgpu-thp
--bench rows (CSV: vmm,accel,pages,size_mib,huge_pct,min_entries,
timed_runs,median_us,min_us,max_us,ms_per_gib), for scripts/run-bench-thp.sh
with and without --large. The analysis around the markers is kept; a missing
section is appended under HEADING."""
import argparse
import csv

ap = argparse.ArgumentParser()
ap.add_argument('csv')
ap.add_argument('meta')
ap.add_argument('md')
ap.add_argument('--name', required=True, help='marker name, e.g. THP')
ap.add_argument('--script', required=True, help='the script named in the marker')
ap.add_argument('--heading', required=True)
ap.add_argument('--base', choices=('thp', '4k'), required=True,
                help='the row the ratio column compares with')
ap.add_argument('--label-thp', default='MADV_HUGEPAGE')
ap.add_argument('--label-4k', default='MADV_NOHUGEPAGE')
ap.add_argument('--entries-title', default='min. mem entries')
a = ap.parse_args()

rows = list(csv.DictReader(open(a.csv)))
meta = open(a.meta).read().strip().splitlines()
begin = '<!-- BEGIN GENERATED %s by %s: do not edit by hand -->' % (a.name, a.script)
end = '<!-- END GENERATED %s -->' % a.name
other = '4k' if a.base == 'thp' else 'thp'
ratio_title = '%s / %s' % (('4 KiB', 'this') if a.base == '4k' else ('this', 'THP'))
out = [begin, '',
       '| VMM | accel | buffer | in huge pages | %s | register+release (median) | per GiB | %s |'
       % (a.entries_title, ratio_title),
       '|---|---|---|---|---|---|---|---|']
for vmm in ('qemu', 'uml'):
    r = {x['pages']: x for x in rows if x['vmm'] == vmm}
    if a.base not in r:
        continue
    base = float(r[a.base]['median_us'])
    for k, label in (('thp', a.label_thp), ('4k', a.label_4k)):
        if k not in r:
            continue
        x = r[k]
        med = float(x['median_us'])
        ratio = base / med if a.base == '4k' else med / base
        out.append('| %s | %s | %s MiB, %s | %s%% | %s | %.1f ms (%s runs, %.1f-%.1f) | %s ms | %.2fx |' % (
            vmm, x['accel'], x['size_mib'], label, x['huge_pct'], x['min_entries'],
            med / 1e3, x['timed_runs'], float(x['min_us']) / 1e3,
            float(x['max_us']) / 1e3, x['ms_per_gib'], ratio))
out += ['', 'Measured on: ' + '; '.join(meta) + '.', '', end]
md = open(a.md).read()
if begin in md and end in md:
    i, j = md.index(begin), md.index(end) + len(end)
    md = md[:i] + '\n'.join(out) + md[j:]
else:
    md = md.rstrip('\n') + '\n\n## ' + a.heading + '\n\n' + '\n'.join(out) + '\n'
open(a.md, 'w').write(md)
