#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench-opencl-report.py - the OpenCL tables of docs/benchmarks.md.

Usage: bench-opencl-report.py OPENCL_CSV E2E_CSV RESULTS_CSV META MD OUT_REL

Reads vgpu-bench-cl's CSV (kernels on zero-copy windows against host
memory), the guest's engine-userptr rows on the OpenCL backend and the main
run's rows (the CPU engine end to end), and rewrites the part of MD between
the GENERATED OPENCL markers. Called by scripts/run-bench.sh.
"""
import csv
import sys

BEGIN = '<!-- BEGIN GENERATED OPENCL by scripts/run-bench.sh: do not edit by hand -->'
END = '<!-- END GENERATED OPENCL -->'
MEMORY_BOUND = ('copy', 'saxpy', 'reduce')
GOAL = 99.0


def rows(path):
    try:
        return list(csv.DictReader(open(path)))
    except FileNotFoundError:
        return []


def main():
    cl_csv, e2e_csv, res_csv, meta_path, md_path, out_rel = sys.argv[1:7]
    cl = rows(cl_csv)
    e2e = rows(e2e_csv)
    res = rows(res_csv)
    meta = {}
    for line in open(meta_path):
        if ': ' in line:
            k, v = line.rstrip('\n').split(': ', 1)
            meta.setdefault(k, v)
    out = []
    w = out.append
    w('Run of %s on %s (%s cores), OpenCL device: %s; vm.max_map_count %s, THP %s; '
      'load average %s at the start, %s at the end.' % (
          meta.get('date', '?'), meta.get('host_cpu', '?'), meta.get('host_cores', '?'),
          meta.get('opencl_device', '?'), meta.get('vm_max_map_count', '?'),
          meta.get('thp', '?'), meta.get('host_loadavg_start', '?'),
          meta.get('host_loadavg_end', '?')))
    w('')
    by = {}
    order = []
    for r in cl:
        key = (r['kernel'], r['size'])
        if key not in by:
            by[key] = {}
            order.append(key)
        by[key][r['path']] = r
    w('### Engine time: % of host-native')
    w('')
    w('Median over interleaved A/B pairs of t(baseline) / t(path); p10-p90 in brackets. '
      '100% = as fast as the baseline. Baselines: the same OpenCL kernel, through the same '
      'backend code, on populated anonymous host buffers with 4 KiB pages (window, copy path), '
      'with transparent huge pages (window vs huge); the CPU engine on those 4 KiB host buffers '
      '(CPU engine). Sizes are per buffer; SGEMM is N x N x N.')
    w('')
    w('| kernel | size | window (userptr) | window vs huge pages | copy path (no userptr) '
      '| CPU engine, window | host-native OpenCL | verified |')
    w('|---|---|---|---|---|---|---|---|')

    def cell(r):
        if not r:
            return '-'
        return '%.1f%% [%.0f-%.0f]' % (float(r['pct_median']), float(r['pct_p10']),
                                       float(r['pct_p90']))

    verdicts = []
    for key in order:
        p = by[key]
        win = p.get('window')
        base_t = float(win['t_base_median_s']) if win else 0
        unit = 'GFLOP/s' if key[0] == 'sgemm' else 'GB/s'
        rate = ''
        if win and base_t > 0:
            t = float(win['t_median_s'])
            rate = '%.3f ms, %.2f %s' % (base_t * 1e3, float(win['rate_median']) * t / base_t,
                                         unit)
        ver = all(r['verified'] == '1' for r in p.values())
        w('| %s | %s | %s | %s | %s | %s | %s | %s |' % (
            key[0], key[1], cell(win), cell(p.get('window-vs-huge')), cell(p.get('copy-path')),
            cell(p.get('cpu-window')), rate, 'yes' if ver else 'NO'))
        if key[0] in MEMORY_BOUND and win and int(win['size_bytes']) >= (1 << 20):
            verdicts.append((key, float(win['pct_median'])))
    w('')
    met = [k for k, v in verdicts if v >= GOAL]
    missed = [(k, v) for k, v in verdicts if v < GOAL]
    w('### Verdict: memory-bound kernels at 1 MiB and above, goal >= %.0f%% of host-native' % GOAL)
    w('')
    if not verdicts:
        w('No rows at 1 MiB or above in this run.')
    else:
        w('%d of %d kernel/size pairs meet the goal (median of the per-pair ratios).' % (
            len(met), len(verdicts)))
        if missed:
            w('Below it: %s.' % ', '.join('%s %s %.1f%%' % (k[0], k[1], v) for k, v in missed))
        worst = min(v for _, v in verdicts)
        best = max(v for _, v in verdicts)
        w('Range of the medians: %.1f%% to %.1f%%.' % (worst, best))
    w('')
    # End to end from the guest.
    w('### End to end from the guest: the engine path on each backend')
    w('')
    w('`engine-userptr` of vgpu-bench in the UML guest: CHECKSUM (XXH64) ops over a registered '
      'userptr buffer, time per op including its share of the submit round trip. Beside it the '
      'host-native figure of the same computation: the OpenCL xxh64 kernel on a host buffer '
      '(vgpu-bench-cl) for the OpenCL backend, XXH64 in C over a host buffer (vgpu-bench-host, '
      '`host-native`) for the CPU engine. The OpenCL columns come from this run; the CPU engine '
      'columns from the main run in `results.csv` (its machine and kernel are in `meta.txt`). '
      'This run\'s guest kernel: %s (%s).' % (meta.get('uml_kernel', '?'),
                                             meta.get('uml_kernel_flavour', '?')))
    w('')
    w('| size | OpenCL: guest per op | OpenCL: host-native | % | CPU engine: guest per op '
      '| CPU: host-native | % |')
    w('|---|---|---|---|---|---|---|')
    xx = {int(r['size_bytes']): float(r['t_base_median_s']) for r in cl
          if r['kernel'] == 'xxh64' and r['path'] == 'window'}
    cpu_e2e = {int(r['size']): float(r['submit_us']) for r in res if r['path'] == 'engine-userptr'}
    cpu_native = {int(r['size']): float(r['median_us']) for r in res if r['path'] == 'host-native'}
    for r in e2e:
        if r['path'] != 'engine-userptr':
            continue
        size = int(r['size'])
        t = float(r['submit_us'])
        h = xx.get(size)
        ce = cpu_e2e.get(size)
        cn = cpu_native.get(size)
        fmt = lambda us: '%.1f us' % us if us is not None else '-'
        w('| %s | %s | %s | %s | %s | %s | %s |' % (
            size_str(size), fmt(t), fmt(h * 1e6 if h else None),
            '%.1f%%' % (100 * h * 1e6 / t) if h and t > 0 else '-',
            fmt(ce), fmt(cn), '%.1f%%' % (100 * cn / ce) if ce and cn else '-'))
    w('')
    w('Raw data: `%s/opencl.csv`, `%s/opencl-e2e.csv`, `%s/meta-opencl.txt`.' % (
        out_rel, out_rel, out_rel))
    gen = '\n'.join(out) + '\n'
    md = open(md_path).read()
    if BEGIN not in md or END not in md:
        md = md.rstrip('\n') + '\n\n## OpenCL results (generated)\n\n%s\n%s\n' % (BEGIN, END)
    a = md.index(BEGIN) + len(BEGIN)
    b = md.index(END)
    md = md[:a] + '\n' + gen + md[b:]
    open(md_path, 'w').write(md)


def size_str(n):
    for unit, shift in (('G', 30), ('M', 20), ('K', 10)):
        if n >= (1 << shift) and n % (1 << shift) == 0:
            return '%d%s' % (n >> shift, unit)
    return str(n)


if __name__ == '__main__':
    main()
