#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run-bench.sh - the benchmark in one command: userptr blobs against copies
# into guest blobs, checksummed by the host device.
#
#   scripts/run-bench.sh [--quick] [options]
#
# One invocation runs the host-side companion (vgpu-bench-host: XXH64 over
# host memory, directly and through the device's engine), then boots the UML
# guest attached to a fresh daemon (tests/system/run-guest.sh) and runs
# vgpu-bench in it, merges both CSVs, draws the plot and regenerates the
# tables of docs/benchmarks.md (between its GENERATED markers; the analysis
# around them is kept). It prints TAP: one test per path that ran with every
# result checked against the guest's XXH64, one per userptr path for its mem
# entries against the pagemap minimum.
#
# It also runs the OpenCL comparison: vgpu-bench-cl on the host (the
# device's kernels on zero-copy windows against host memory, "% of
# host-native") and vgpu-bench's engine path in a guest whose daemon runs
# --backend opencl; their tables go between the GENERATED OPENCL markers.
#
# --quick (sizes up to 4 MiB, 3 runs) is the smoke test: it writes under
# build/bench-run/quick and leaves docs/ alone.
set -euo pipefail

SELF=${0##*/}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
	cat <<EOF
Usage: $SELF [OPTIONS]

Run the userptr benchmark (host companion + guest) and write the results.

Options:
  --quick            sizes 4K..4M, 3 runs after 1 warm-up; results in
                     build/bench-run/quick, docs/ untouched (smoke test)
  --build DIR        meson build configured with -Dguest=true (default build/meson)
  --kernel PATH      UML kernel (default build/bench-kernel/uml/linux when it
                     exists, else build/uml/linux, the debug kernel)
  --build-kernel     (re)build build/bench-kernel/uml/linux first: the series in
                     kernel/patches on the base tag of build/linux-source-6.12,
                     with kernel/config/uml.config and no debug options
  --out DIR          output directory (default docs/bench; --quick:
                     build/bench-run/quick)
  --mem SIZE         guest memory (default 1536M, --quick 512M)
  --max SIZE         largest size (default 256M, --quick 4M)
  --runs N           least timed runs per path and size (default 5, --quick 3)
  --budget MS        more runs (up to 25) while a path's timed runs at a size
                     add up to less (default 200, --quick 20)
  --warmup N         untimed runs first (default 1)
  --fresh-max SIZE   largest size for the copy-fresh paths (default: --max)
  --no-docs          do not rewrite docs/benchmarks.md
  --opencl-only      run only the OpenCL comparison (vgpu-bench-cl and the guest's
                     engine path on --backend opencl); the main tables, results.csv
                     and meta.txt stay as they are
  -h, --help         this help

Outputs: DIR/results.csv (all rows), DIR/meta.txt (machine and run),
DIR/opencl.csv, DIR/opencl-e2e.csv and DIR/meta-opencl.txt (the OpenCL comparison),
DIR/throughput.png, the generated section of docs/benchmarks.md, and
build/bench-run/run-{full,quick}.log (everything the programs printed). Needs gnuplot and python3.
Exit status: 0 when every TAP test passed, 1 otherwise, 2 on bad usage.
EOF
}

die_usage() {
	echo "$SELF: $*" >&2
	echo "Try '$SELF --help'." >&2
	exit 2
}

QUICK=0
BUILD=$REPO/build/meson
KERNEL=""
BUILD_KERNEL=0
OUT=""
MEM=""
MAX=""
RUNS=""
BUDGET=""
WARMUP=1
FRESH_MAX=""
DOCS=1
OPENCL_ONLY=0

need_arg() {
	[ "$2" -ge 2 ] || die_usage "option '$1' needs an argument"
}

while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1; shift ;;
	--build) need_arg "$1" $#; BUILD=$2; shift 2 ;;
	--kernel) need_arg "$1" $#; KERNEL=$2; shift 2 ;;
	--build-kernel) BUILD_KERNEL=1; shift ;;
	--out) need_arg "$1" $#; OUT=$2; shift 2 ;;
	--mem) need_arg "$1" $#; MEM=$2; shift 2 ;;
	--max) need_arg "$1" $#; MAX=$2; shift 2 ;;
	--runs) need_arg "$1" $#; RUNS=$2; shift 2 ;;
	--warmup) need_arg "$1" $#; WARMUP=$2; shift 2 ;;
	--budget) need_arg "$1" $#; BUDGET=$2; shift 2 ;;
	--fresh-max) need_arg "$1" $#; FRESH_MAX=$2; shift 2 ;;
	--no-docs) DOCS=0; shift ;;
	--opencl-only) OPENCL_ONLY=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) die_usage "unknown argument '$1'" ;;
	esac
done

if [ "$QUICK" = 1 ]; then
	: "${OUT:=$REPO/build/bench-run/quick}" "${MEM:=512M}" "${MAX:=4M}" "${RUNS:=3}" "${BUDGET:=20}"
	DOCS=0
else
	: "${OUT:=$REPO/docs/bench}" "${MEM:=1536M}" "${MAX:=256M}" "${RUNS:=5}" "${BUDGET:=200}"
fi
case $RUNS in '' | *[!0-9]* | 0) die_usage "--runs wants a positive number, not '$RUNS'" ;; esac
case $WARMUP in '' | *[!0-9]*) die_usage "--warmup wants a number, not '$WARMUP'" ;; esac
case $BUDGET in '' | *[!0-9]*) die_usage "--budget wants milliseconds, not '$BUDGET'" ;; esac
for s in "$MAX" ${FRESH_MAX:+"$FRESH_MAX"}; do
	case $s in [0-9]*[KMG] | [0-9]*) ;; *) die_usage "bad size '$s'" ;; esac
done
abspath() {
	case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac
}
BUILD=$(abspath "$BUILD")
OUT=$(abspath "$OUT")
command -v python3 >/dev/null || { echo "$SELF: python3 is needed" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "$SELF: gnuplot is needed" >&2; exit 1; }

note() { echo "# $*" >&2; }

# ---- the benchmark kernel ------------------------------------------------------
# The UML kernel of the system tests (build/uml) carries KASAN, kmemleak,
# lockdep and DEBUG_VM, which slow exactly the paths measured here (pinning,
# page walks, allocation). The benchmark kernel is the same series and the
# same uml.config without kernel/config/debug.config.
KDIR=$REPO/build/bench-kernel
build_kernel() {
	local tree=$REPO/build/linux-source-6.12 base=virtgpu-userptr-base
	local stage=$KDIR/stage src=$KDIR/src obj=$KDIR/uml want stamp=$KDIR/uml/.bench-stamp

	git -C "$tree" rev-parse -q --verify "$base^{commit}" >/dev/null ||
		{ echo "$SELF: no tag $base in $tree (run kernel/setup-tree.sh)" >&2; exit 1; }
	want=$( (git -C "$tree" rev-parse "$base^{commit}"; cat "$REPO"/kernel/patches/*.patch \
		"$REPO/kernel/config/uml.config") | sha256sum | cut -d' ' -f1)
	if [ -x "$obj/linux" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
		note "benchmark kernel up to date: $obj/linux"
		return
	fi
	note "building the benchmark kernel in $KDIR (a few minutes)"
	rm -rf "$stage"
	mkdir -p "$stage" "$src" "$obj"
	git -C "$tree" archive "$base" | tar -x -C "$stage"
	for p in "$REPO"/kernel/patches/*.patch; do
		patch -d "$stage" -p1 -s --no-backup-if-mismatch <"$p" ||
			{ echo "$SELF: $p does not apply" >&2; exit 1; }
	done
	# Only files that changed get a new mtime: the build stays incremental.
	rsync -a --checksum --delete "$stage/" "$src/"
	rm -rf "$stage"
	make -C "$src" -s ARCH=um O="$obj" tinyconfig
	(cd "$src" && ARCH=um scripts/kconfig/merge_config.sh -m -O "$obj" "$obj/.config" \
		"$REPO/kernel/config/uml.config" >/dev/null)
	make -C "$src" -s ARCH=um O="$obj" olddefconfig
	if grep -q '^CONFIG_KASAN=y' "$obj/.config"; then
		echo "$SELF: the benchmark kernel config has KASAN" >&2
		exit 1
	fi
	make -C "$src" -s ARCH=um O="$obj" -j"${JOBS:-2}" linux
	echo "$want" >"$stamp"
}

[ "$BUILD_KERNEL" = 1 ] && build_kernel
if [ -z "$KERNEL" ]; then
	KERNEL=$REPO/build/uml/linux
	[ -x "$KDIR/uml/linux" ] && KERNEL=$KDIR/uml/linux
fi
KERNEL=$(abspath "$KERNEL")
[ -x "$KERNEL" ] || { echo "$SELF: no UML kernel at $KERNEL" >&2; exit 1; }
KCONFIG=$(dirname "$KERNEL")/.config
KFLAVOUR=unknown
if [ -f "$KCONFIG" ]; then
	KFLAVOUR=release
	grep -q '^CONFIG_KASAN=y' "$KCONFIG" && KFLAVOUR="debug (KASAN, kmemleak, lockdep)"
fi

# ---- the programs -----------------------------------------------------------------
[ -f "$BUILD/build.ninja" ] ||
	{ echo "$SELF: $BUILD is not a meson build (meson setup $BUILD -Dguest=true -Dkernel_headers=\$PWD/build/uapi/include)" >&2; exit 1; }
ninja -C "$BUILD" -j2 guest/bench/vgpu-bench guest/bench/vgpu-bench-host guest/bench/vgpu-bench-cl \
	host/virtgpu-hostd >/dev/null || { echo "$SELF: building the benchmark in $BUILD failed" >&2; exit 1; }
BENCH_CL=$BUILD/guest/bench/vgpu-bench-cl
BENCH=$BUILD/guest/bench/vgpu-bench
BENCH_HOST=$BUILD/guest/bench/vgpu-bench-host
HOSTD=$BUILD/host/virtgpu-hostd

mkdir -p "$OUT"
WORK=$(mktemp -d "$REPO/build/bench-run.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$REPO/build/bench-run"
LOG=$REPO/build/bench-run/run-$([ "$QUICK" = 1 ] && echo quick || echo full).log
: >"$LOG"

# ---- the machine ------------------------------------------------------------------
start=$(date +%s)
{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "host_cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
	echo "host_cores: $(nproc)"
	echo "host_mem_mib: $(free -m | awk '/^Mem:/ {print $2}')"
	echo "host_mem_available_mib: $(free -m | awk '/^Mem:/ {print $7}')"
	echo "host_kernel: $(uname -r)"
	echo "host_loadavg_start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "uml_kernel: ${KERNEL#"$REPO"/}"
	echo "uml_kernel_flavour: $KFLAVOUR"
	echo "guest_mem_arg: $MEM"
	echo "mode: $([ "$QUICK" = 1 ] && echo quick || echo full)"
} >"$WORK/meta-host.txt"
sed 's/^/# /' "$WORK/meta-host.txt" >&2

ARGS=(--max "$MAX" --runs "$RUNS" --budget "$BUDGET" --warmup "$WARMUP")
GARGS=("${ARGS[@]}")
[ -n "$FRESH_MAX" ] && GARGS+=(--fresh-max "$FRESH_MAX")

host_rc=0
guest_rc=0
if [ "$OPENCL_ONLY" = 0 ]; then
# ---- host side ------------------------------------------------------------------
note "host companion"
"$BENCH_HOST" "${ARGS[@]}" --csv "$WORK/host.csv" >>"$LOG" 2>&1 || host_rc=$?

# ---- guest side -----------------------------------------------------------------
# The model file goes to a guest-only tmpfs (--guest-tmpfs, VGPU_GUEST_TMP):
# its pages are guest page cache, warm by construction, with no host I/O
# under them.
note "guest ($KERNEL, mem=$MEM)"
VGPU_HOSTD=$HOSTD "$REPO/tests/system/run-guest.sh" --kernel "$KERNEL" --mem "$MEM" \
	--guest-tmpfs --no-kmemleak --timeout 900 -- \
	"$BENCH" "${GARGS[@]}" --csv "$WORK/guest.csv" \
	--meta "$WORK/meta-guest.txt" >>"$LOG" 2>&1 || guest_rc=$?
fi

# ---- OpenCL: the kernels on the guest's pages against host memory ------------------
# vgpu-bench-cl (host side) runs each kernel on the zero-copy windows and on
# host buffers, interleaved; then the guest measures the engine path end to
# end with the daemon on the OpenCL backend (vgpu-bench's engine-userptr).
note "OpenCL kernels: windows against host memory"
cl_rc=0
CLARGS=(--csv "$OUT/opencl.csv")
if [ "$QUICK" = 1 ]; then CLARGS+=(--quick); else CLARGS+=(--pairs 15 --max 64M); fi
"$BENCH_CL" "${CLARGS[@]}" >>"$LOG" 2>&1 || cl_rc=$?
note "guest, daemon --backend opencl (engine-userptr)"
cl_e2e_rc=0
VGPU_HOSTD=$HOSTD "$REPO/tests/system/run-guest.sh" --kernel "$KERNEL" --mem "$MEM" \
	--no-kmemleak --timeout 900 --daemon-args "--backend opencl" -- \
	"$BENCH" "${GARGS[@]}" --paths engine-userptr --csv "$OUT/opencl-e2e.csv" \
	>>"$LOG" 2>&1 || cl_e2e_rc=$?
end=$(date +%s)
{
	cat "$WORK/meta-host.txt"
	echo "host_loadavg_end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "opencl_device: $(clinfo -l 2>/dev/null | sed -n 's/^ *`-- Device #0: //p' | head -n1)"
	echo "opencl_bench_exit: $cl_rc"
	echo "opencl_e2e_exit: $cl_e2e_rc"
	echo "vm_max_map_count: $(cat /proc/sys/vm/max_map_count)"
	echo "thp: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
} >"$OUT/meta-opencl.txt"

plot_rc=0
report_rc=0
if [ "$OPENCL_ONLY" = 0 ]; then
# ---- merge ------------------------------------------------------------------------
{
	head -n1 "$WORK/host.csv" 2>/dev/null || head -n1 "$WORK/guest.csv"
	for f in "$WORK/host.csv" "$WORK/guest.csv"; do
		[ -f "$f" ] && tail -n +2 "$f"
	done
} >"$OUT/results.csv" || true
{
	cat "$WORK/meta-host.txt"
	[ -f "$WORK/meta-guest.txt" ] && cat "$WORK/meta-guest.txt"
	echo "host_loadavg_end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "duration_s: $((end - start))"
	echo "host_bench_exit: $host_rc"
	echo "guest_bench_exit: $guest_rc"
} >"$OUT/meta.txt"

# ---- plot -------------------------------------------------------------------------
plot() {
	local csv=$1 png=$2 term=pngcairo dat=$WORK/plot p
	local -a series=(
		"host-native|host-native: XXH64 over host memory (ceiling)|lw 2"
		"engine-userptr|engine over guest userptr memory (per op)|dt 3"
		"userptr-once|userptr, registered once|lw 2"
		"userptr|userptr: register + checksum + release|lw 2"
		"copy-steady|copy, steady state (memcpy into a mapped blob)|"
		"copy-fresh-prefault|copy, fresh blob, prefaulted by read()|"
		"copy-fresh|copy, fresh blob|"
		"model-userptr|model file: RDONLY userptr of its mmap|dt 2"
		"model-read|model file: read() into a fresh blob|dt 2"
		"model-read-steady|model file: read() into a mapped blob|dt 2"
	)
	local cmd="" sep="" name title style
	mkdir -p "$dat"
	for p in "${series[@]}"; do
		IFS='|' read -r name title style <<<"$p"
		awk -F, -v p="$name" '$1 == p { print $2, $7 }' "$csv" >"$dat/$name.dat"
		[ -s "$dat/$name.dat" ] || continue
		cmd+="$sep'$dat/$name.dat' using 1:2 with linespoints $style title '$title'"
		sep=", "
	done
	gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1 || term=png
	gnuplot <<EOF
set terminal $term size 1200,700 $([ "$term" = pngcairo ] && echo "font 'sans,10'")
set output '$png'
set title 'XXH64 by the host device over a guest buffer: throughput of the whole path (median of each size)'
set xlabel 'buffer size'
set ylabel 'GB/s (log scale)'
set logscale xy
set xtics ('4K' 4096, '16K' 16384, '64K' 65536, '256K' 262144, '1M' 1048576, '4M' 4194304, '16M' 16777216, '64M' 67108864, '256M' 268435456)
set ytics (0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30)
set grid
set key outside right top
plot $cmd
EOF
}
plot "$OUT/results.csv" "$OUT/throughput.png" >>"$LOG" 2>&1 || plot_rc=$?

# ---- tables -------------------------------------------------------------------------
# Generated from the CSV; the hand-written analysis around the markers stays.
report() {
	python3 - "$OUT/results.csv" "$OUT/meta.txt" "$REPO/docs/benchmarks.md" \
		"${OUT#"$REPO"/}" <<'PYEOF'
import csv, sys

csv_path, meta_path, md_path, out_rel = sys.argv[1:5]
rows = list(csv.DictReader(open(csv_path)))
meta = {}
for line in open(meta_path):
    if ': ' in line:
        k, v = line.rstrip('\n').split(': ', 1)
        meta.setdefault(k, v)

def sz(n):
    n = int(n)
    for u, s in ((1 << 30, 'G'), (1 << 20, 'M'), (1 << 10, 'K')):
        if n % u == 0:
            return '%d%s' % (n // u, s)
    return str(n)

R = {(r['path'], int(r['size'])): r for r in rows}
sizes = sorted({int(r['size']) for r in rows if not r['path'].startswith('submit')})

def t(p, s):
    r = R.get((p, s))
    return float(r['median_us']) if r else None

def ftime(us):
    if us is None:
        return '-'
    if us >= 1e6:
        return '%.2f s' % (us / 1e6)
    if us >= 1e3:
        return '%.2f ms' % (us / 1e3)
    return '%.0f us' % us

def cell(p, s):
    r = R.get((p, s))
    if not r:
        return '-'
    us = float(r['median_us'])
    g = float(r['gbps'])
    mark = '' if r['verified'] == 'yes' else ' (!)'
    return '%s (%.2f)%s' % (ftime(us), g, mark)

def ratio(a, b):
    return (a / b) if (a and b) else None

def fr(x, fmt='%.1fx'):
    return '-' if x is None else fmt % x

out = []
w = out.append
w('Run: %s, %s mode, took %s s. At each size the paths run interleaved (round robin); '
  'after %s warm-up round(s) each path gets at least %s timed runs, more (up to %s) '
  'while its timed runs add up to less than %s ms. Times are medians; GB/s = size / median.'
  % (meta.get('date', '?'), meta.get('mode', '?'), meta.get('duration_s', '?'),
     meta.get('warmup', '?'), meta.get('runs', '?'), meta.get('max_runs', '?'),
     meta.get('budget_ms', '?')))
w('')
w('| machine | |')
w('|---|---|')
w('| host CPU | %s, %s cores (`nproc`) |' % (meta.get('host_cpu', '?'), meta.get('host_cores', '?')))
w('| host memory | %s MiB (`free -m`), %s MiB available at start |' % (
    meta.get('host_mem_mib', '?'), meta.get('host_mem_available_mib', '?')))
w('| host kernel | %s (`uname -r`) |' % meta.get('host_kernel', '?'))
w('| load average | %s at start, %s at end (other builds and tests were running) |' % (
    meta.get('host_loadavg_start', '?'), meta.get('host_loadavg_end', '?')))
w('| guest kernel | User-Mode Linux %s, `%s`, %s build |' % (
    meta.get('guest_kernel', '?').split(' ')[0], meta.get('uml_kernel', '?'),
    meta.get('uml_kernel_flavour', '?')))
w('| guest | %s CPU, %s MiB RAM (`mem=%s`), model file on %s (`%s`) |' % (
    meta.get('guest_cpus', '?'), meta.get('guest_mem_mib', '?'), meta.get('guest_mem_arg', '?'),
    meta.get('model_file_fs', '?'), meta.get('model_file', '?')))
w('| device | virtgpu-hostd, %s engine threads (CHECKSUM runs on one) |' % meta.get('engine_threads', '?'))
w('| DRM mapping populate | `madvise(MADV_POPULATE_WRITE)` on a guest blob mapping: %s |' % meta.get('madv_populate_write_drm', '?'))
w('')
nop = R.get(('submit-nop', min(int(r['size']) for r in rows)))
if nop:
    w('Fixed cost of one submit round trip (a NOP, submit to fence): %s.' % ftime(float(nop['median_us'])))
    w('')

w('### Checksum of data already in memory: time per run (GB/s)')
w('')
cols = ['userptr', 'userptr-once', 'copy-steady', 'copy-fresh', 'copy-fresh-prefault']
w('| size | ' + ' | '.join(cols) + ' |')
w('|---' * (len(cols) + 1) + '|')
for s in sizes:
    w('| %s | ' % sz(s) + ' | '.join(cell(p, s) for p in cols) + ' |')
w('')
w('### Ratios (time of the first / time of the second; > 1: the second is faster)')
w('')
w('| size | copy-fresh / userptr | copy-fresh-prefault / userptr | copy-steady / userptr | copy-steady / userptr-once | model-read / model-userptr | model-read-steady / model-userptr |')
w('|---|---|---|---|---|---|---|')
for s in sizes:
    w('| %s | %s | %s | %s | %s | %s | %s |' % (
        sz(s), fr(ratio(t('copy-fresh', s), t('userptr', s))),
        fr(ratio(t('copy-fresh-prefault', s), t('userptr', s))),
        fr(ratio(t('copy-steady', s), t('userptr', s)), '%.2f'),
        fr(ratio(t('copy-steady', s), t('userptr-once', s)), '%.2f'),
        fr(ratio(t('model-read', s), t('model-userptr', s)), '%.2f'),
        fr(ratio(t('model-read-steady', s), t('model-userptr', s)), '%.2f')))
w('')
w('### Model file: time per run (GB/s)')
w('')
cols = ['model-userptr', 'model-read', 'model-read-steady']
w('| size | ' + ' | '.join(cols) + ' |')
w('|---' * (len(cols) + 1) + '|')
for s in sizes:
    w('| %s | ' % sz(s) + ' | '.join(cell(p, s) for p in cols) + ' |')
w('')
w('### The host engine: guest userptr memory against host memory (GB/s; median, best run in brackets)')
w('')
w('| size | host-native | host-engine | host-engine-4k | engine-userptr | engine-userptr / host-native | host-memcpy |')
w('|---|---|---|---|---|---|---|')
def g(p, s):
    r = R.get((p, s))
    return float(r['gbps']) if r else None
def gb(p, s):
    r = R.get((p, s))
    return s / float(r['min_us']) / 1e3 if r and float(r['min_us']) > 0 else None
def gg(p, s):
    return '-' if g(p, s) is None else '%.2f (%.2f)' % (g(p, s), gb(p, s))
for s in sizes:
    e, n = g('engine-userptr', s), g('host-native', s)
    w('| %s | %s | %s | %s | %s | %s (%s) | %s |' % (
        sz(s), gg('host-native', s), gg('host-engine', s), gg('host-engine-4k', s),
        gg('engine-userptr', s), fr(ratio(e, n), '%.2f'),
        fr(ratio(gb('engine-userptr', s), gb('host-native', s)), '%.2f'), fr(g('host-memcpy', s), '%.1f')))
w('')
w('### Registration only: create + release, per pair')
w('')
w('| size | reg-userptr | reg-blob | reg-blob-mapped | reg-userptr / reg-blob |')
w('|---|---|---|---|---|')
for s in sizes:
    w('| %s | %s | %s | %s | %s |' % (
        sz(s), ftime(t('reg-userptr', s)), ftime(t('reg-blob', s)), ftime(t('reg-blob-mapped', s)),
        fr(ratio(t('reg-userptr', s), t('reg-blob', s)), '%.2f')))
w('')
w('### Mem entries the device received against the minimum (contiguous runs from pagemap)')
w('')
up = ['reg-userptr', 'userptr', 'userptr-once', 'engine-userptr', 'model-userptr']
w('| size | pages | ' + ' | '.join(up) + ' |')
w('|---' * (len(up) + 2) + '|')
for s in sizes:
    cells = []
    for p in up:
        r = R.get((p, s))
        if not r:
            cells.append('-')
        else:
            cells.append('%s / %s%s' % (r['entries'] or '?', r['min_entries'] or '?',
                                        '' if r['entries_ok'] == 'yes' else ' (!)'))
    w('| %s | %d | ' % (sz(s), s // 4096) + ' | '.join(cells) + ' |')
w('')

# Targets
def all_sizes(pred, lo):
    res = []
    for s in sizes:
        if s < lo:
            continue
        v = pred(s)
        if v is None:
            continue
        res.append((s, v))
    return res

def verdict(items):
    if not items:
        return 'not measured'
    return 'met' if all(ok for _, (ok, _) in items) else 'MISSED'

def show(items):
    return ', '.join('%s: %s' % (sz(s), txt) for s, (ok, txt) in items)

targets = []
it = all_sizes(lambda s: None if not (t('copy-fresh', s) and t('userptr', s)) else
               (t('copy-fresh', s) / t('userptr', s) >= 10, '%.0fx' % (t('copy-fresh', s) / t('userptr', s))), 64 << 20)
targets.append(('userptr >= 10x faster than copy-fresh at >= 64 MiB', verdict(it), show(it)))
it = all_sizes(lambda s: None if not (t('copy-fresh-prefault', s) and t('userptr', s)) else
               (t('copy-fresh-prefault', s) / t('userptr', s) >= 10, '%.0fx' % (t('copy-fresh-prefault', s) / t('userptr', s))), 64 << 20)
targets.append(('(same, against the prefaulted fresh copy)', verdict(it), show(it)))
it = all_sizes(lambda s: None if not (t('copy-steady', s) and t('userptr', s)) else
               (t('userptr', s) < t('copy-steady', s), '%.2fx' % (t('copy-steady', s) / t('userptr', s))), 1 << 20)
targets.append(('userptr (per-submit registration) faster than copy-steady at >= 1 MiB', verdict(it), show(it)))
it = all_sizes(lambda s: None if not (t('copy-steady', s) and t('userptr-once', s)) else
               (t('userptr-once', s) < t('copy-steady', s), '%.2fx' % (t('copy-steady', s) / t('userptr-once', s))), 1 << 20)
targets.append(('(userptr registered once faster than copy-steady at >= 1 MiB)', verdict(it), show(it)))
it = all_sizes(lambda s: None if not (t('model-read', s) and t('model-userptr', s)) else
               (t('model-userptr', s) < t('model-read', s), '%.2fx' % (t('model-read', s) / t('model-userptr', s))), 1 << 20)
targets.append(('model file: RDONLY userptr faster than read() (into a new blob) at >= 1 MiB', verdict(it), show(it)))
it = all_sizes(lambda s: None if not (t('model-read-steady', s) and t('model-userptr', s)) else
               (t('model-userptr', s) < t('model-read-steady', s), '%.2fx' % (t('model-read-steady', s) / t('model-userptr', s))), 1 << 20)
targets.append(('(model file: RDONLY userptr faster than read() into an already mapped blob, model-read-steady)', verdict(it), show(it)))
it = all_sizes(lambda s: None if not (gb('engine-userptr', s) and gb('host-native', s)) else
               (gb('engine-userptr', s) >= 0.9 * gb('host-native', s), '%.0f%%' % (100 * gb('engine-userptr', s) / gb('host-native', s))), 1 << 20)
targets.append(('host engine over guest userptr memory >= 90% of host-native at >= 1 MiB (best runs: the two are measured minutes apart and memory-bandwidth bound, see the analysis)', verdict(it), show(it)))
it = all_sizes(lambda s: None if not (g('engine-userptr', s) and g('host-native', s)) else
               (g('engine-userptr', s) >= 0.9 * g('host-native', s), '%.0f%%' % (100 * g('engine-userptr', s) / g('host-native', s))), 1 << 20)
targets.append(('(the same, medians)', verdict(it), show(it)))
it = all_sizes(lambda s: None if s != 4096 or not (t('reg-userptr', s) and t('reg-blob', s)) else
               (t('reg-userptr', s) <= 2 * t('reg-blob', s), '%.2fx' % (t('reg-userptr', s) / t('reg-blob', s))), 4096)
targets.append(('registration + release of 4 KiB within 2x of a guest blob create + release', verdict(it), show(it)))
ent = []
for s in sizes:
    ok = True
    seen = False
    for p in up:
        r = R.get((p, s))
        if r:
            seen = True
            ok = ok and r['entries_ok'] == 'yes'
    if seen:
        ent.append((s, (ok, 'equal' if ok else 'more')))
targets.append(('mem entries equal to the pagemap minimum for every size', verdict(ent),
                'every userptr path at every size' if verdict(ent) == 'met' else show(ent)))
w('### Targets')
w('')
w('| target | verdict | measured |')
w('|---|---|---|')
for name, v, txt in targets:
    w('| %s | %s | %s |' % (name, v, txt))
w('')
w('Raw data: `%s/results.csv` (all rows, times in microseconds, every phase), '
  '`%s/meta.txt`; plot: `%s/throughput.png`.' % (out_rel, out_rel, out_rel))

gen = '\n'.join(out) + '\n'
BEGIN = '<!-- BEGIN GENERATED by scripts/run-bench.sh: do not edit by hand -->'
END = '<!-- END GENERATED -->'
try:
    md = open(md_path).read()
except FileNotFoundError:
    md = '# Benchmarks\n\n%s\n%s\n' % (BEGIN, END)
if BEGIN not in md or END not in md:
    md = md.rstrip('\n') + '\n\n## Results\n\n%s\n%s\n' % (BEGIN, END)
a = md.index(BEGIN) + len(BEGIN)
b = md.index(END)
md = md[:a] + '\n' + gen + md[b:]
open(md_path, 'w').write(md)
PYEOF
}
if [ "$DOCS" = 1 ]; then
	report >>"$LOG" 2>&1 || report_rc=$?
fi
fi
if [ "$DOCS" = 1 ]; then
	python3 "$REPO/scripts/bench-opencl-report.py" "$OUT/opencl.csv" "$OUT/opencl-e2e.csv" \
		"$OUT/results.csv" "$OUT/meta-opencl.txt" "$REPO/docs/benchmarks.md" "${OUT#"$REPO"/}" \
		>>"$LOG" 2>&1 || report_rc=$?
fi

# ---- TAP --------------------------------------------------------------------------
HOST_PATHS=(host-native host-engine host-engine-4k host-memcpy)
GUEST_PATHS=(reg-userptr reg-blob reg-blob-mapped userptr userptr-once engine-userptr
	submit-nop copy-steady copy-fresh copy-fresh-prefault model-userptr model-read
	model-read-steady)
UPTR_PATHS=(reg-userptr userptr userptr-once engine-userptr model-userptr)
n=0
fails=0
tap() { # tap OK NAME [DIAG]
	n=$((n + 1))
	if [ "$1" = 1 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		fails=$((fails + 1))
		[ -n "${3:-}" ] && echo "# $3"
	fi
	return 0
}
# path_ok PATH COLUMN: rows for PATH exist and COLUMN is "yes" in every one.
path_ok() {
	awk -F, -v p="$1" -v col="$2" '
		NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
		$1 == p { rows++; if ($c != "yes") bad++ }
		END { exit !(c && rows > 0 && bad == 0) }' "$OUT/results.csv"
}
rows_of() { awk -F, -v p="$1" '$1 == p { n++ } END { print n + 0 }' "$OUT/results.csv"; }

if [ "$OPENCL_ONLY" = 1 ]; then
	echo "1..$((2 + DOCS))"
else
	echo "1..$((5 + ${#HOST_PATHS[@]} + ${#GUEST_PATHS[@]} + ${#UPTR_PATHS[@]} + DOCS))"
fi
if [ "$OPENCL_ONLY" = 0 ]; then
tap "$([ "$host_rc" = 0 ] && echo 1)" "vgpu-bench-host exits 0" "exit status $host_rc; see $LOG"
tap "$([ "$guest_rc" = 0 ] && echo 1)" "vgpu-bench in the guest exits 0" "exit status $guest_rc; see $LOG"
for p in "${HOST_PATHS[@]}" "${GUEST_PATHS[@]}"; do
	ok=0
	path_ok "$p" verified && ok=1
	tap "$ok" "$p: $(rows_of "$p") size(s), every result checked" "missing or unverified rows in $OUT/results.csv"
done
for p in "${UPTR_PATHS[@]}"; do
	ok=0
	path_ok "$p" entries_ok && ok=1
	tap "$ok" "$p: mem entries equal the pagemap minimum at every size" "see the entries columns of $OUT/results.csv"
done
fi
tap "$([ "$cl_rc" = 0 ] && [ -s "$OUT/opencl.csv" ] && echo 1)" \
	"vgpu-bench-cl: every kernel on windows, host memory and the copy path, results checked" \
	"exit status $cl_rc; see $LOG"
ok=0
[ "$cl_e2e_rc" = 0 ] && awk -F, 'NR > 1 && $1 == "engine-userptr" { rows++; if ($15 != "yes") bad++ }
	END { exit !(rows > 0 && bad == 0) }' "$OUT/opencl-e2e.csv" 2>/dev/null && ok=1
tap "$ok" "engine-userptr in the guest on the OpenCL backend, every result checked" \
	"exit status $cl_e2e_rc; see $LOG"
[ "$OPENCL_ONLY" = 0 ] && tap "$([ "$plot_rc" = 0 ] && [ -s "$OUT/throughput.png" ] && echo 1)" "plot written ($OUT/throughput.png)" "gnuplot failed; see $LOG"
[ "$DOCS" = 1 ] && tap "$([ "$report_rc" = 0 ] && echo 1)" "docs/benchmarks.md tables regenerated" "see $LOG"
if [ "$fails" -gt 0 ]; then
	echo "# $fails failed; log: $LOG" >&2
	tail -n 40 "$LOG" | sed 's/^/# /' >&2
	exit 1
fi
exit 0
