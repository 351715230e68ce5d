#!/bin/sh
# run-long.sh [SECONDS] [TARGET...]
# Long libFuzzer runs of the host targets (default: gpu_cmd vhost_user vring,
# 600 s each), one after the other, each one in-process job on one core,
# starting from the committed corpus. New inputs go to
# build/fuzz-long/<target>/corpus (the committed corpus is left as it is);
# a crash, leak or timeout leaves its input in build/fuzz-long/<target>/ and
# makes the script fail. The targets' own log lines are dropped
# (-close_fd_mask=2); libFuzzer's and the sanitizers' reports are kept in
# build/fuzz-long/<target>/log. Prints, per target, the executions and the
# coverage libFuzzer reported. Needs build/fuzz (scripts/build-host.sh).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-600}
[ $# -gt 0 ] && shift
targets=${*:-gpu_cmd vhost_user vring}
status=0
for t in $targets; do
	exe=$top/build/fuzz/tests/fuzz/fuzz_$t
	seed=$top/tests/fuzz/corpus/$t
	out=$top/build/fuzz-long/$t
	if [ ! -x "$exe" ]; then
		echo "$exe missing: run scripts/build-host.sh" >&2
		exit 2
	fi
	mkdir -p "$out/corpus"
	echo "== fuzz_$t for ${secs}s on $(nproc) CPUs ($(uname -m)), started $(date -u +%FT%TZ)"
	if "$exe" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -close_fd_mask=2 \
		-print_final_stats=1 -artifact_prefix="$out/" \
		"$out/corpus" "$seed" >"$out/log" 2>&1; then
		result=ok
	else
		result=FAILED
		status=1
	fi
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/log" | grep -o '[0-9]*$' | tail -n 1)
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$out/log" | tail -n 1)
	rate=$(grep -o 'exec/s: [0-9]*' "$out/log" | tail -n 1)
	echo "fuzz_$t: $result, ${execs:-?} executions in ${secs}s, $cov, last $rate, corpus $(ls "$out/corpus" | wc -l) files"
	ls "$out" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | sed "s|^|  artifact: $out/|"
done
exit $status
