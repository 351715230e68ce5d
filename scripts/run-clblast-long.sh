#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run-clblast-long.sh - the long mode of the OpenCL program tests: every
# routine of CLBlast's tests (clblast-tests, against a reference BLAS) in the
# guest through the guest's ICD, each against the same binary on the host's
# own OpenCL device (tests/system/e2e-clprograms.sh --long). A routine passes
# when it failed nothing and passed as many cases as natively. Too long for
# the test command (52 minutes in UML on 2 cores); writes the result to
# docs/clblast-long.md.
#
#   scripts/run-clblast-long.sh [--vmm uml|qemu]

set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

VMM=uml
while [ $# -gt 0 ]; do
	case $1 in
	--vmm) case $2 in uml|qemu) VMM=$2 ;; *) echo "--vmm uml|qemu" >&2; exit 2 ;; esac; shift 2 ;;
	-h|--help) sed -n '3,12p' "$0"; exit 0 ;;
	*) echo "run-clblast-long: unknown argument $1" >&2; exit 2 ;;
	esac
done

sum=$(mktemp)
tap=$(mktemp)
trap 'rm -f "$sum" "$tap"' EXIT
t0=$(date +%s)
rc=0
tests/system/e2e-clprograms.sh --vmm "$VMM" --long --no-clpeak --summary "$sum" | tee "$tap" || rc=$?
t1=$(date +%s)
pass=$(grep -c '^ok .*CLBlast .* passes as natively' "$tap" || true)
fail=$(grep -c '^not ok .*CLBlast' "$tap" || true)
{
	echo "# CLBlast's tests, every routine, in the guest through the ICD"
	echo
	echo "\`scripts/run-clblast-long.sh --vmm $VMM\` ($(date -u +%Y-%m-%d), HEAD $(git rev-parse --short HEAD)):"
	echo "every \`clblast_test_*\` of Debian's clblast-tests $(dpkg-query -W -f='${Version}' clblast-tests 2>/dev/null),"
	echo "natively on the host's OpenCL device first, then in the $VMM guest through \`guest/icd\` on the"
	echo "same device in the daemon's worker. A routine passes when it failed nothing and passed as many"
	echo "cases as natively (a feature the ICD drops must not turn into fewer tests). Skipped cases are"
	echo "the same on both sides: half precision (the device has no \`cl_khr_fp16\`) and cases the"
	echo "reference BLAS cannot check."
	echo
	echo "Machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1), host kernel $(uname -r);"
	echo "device: $(OCL_ICD_VENDORS=/etc/OpenCL/vendors clinfo -l 2>/dev/null | sed -n 's/.*Device #0: //p' | head -n 1)."
	echo "Result: **$pass of $((pass + fail)) routines as natively**, $(( (t1 - t0) / 60 )) min in all"
	echo "(the native baseline included); the run's TAP ended with exit $rc."
	echo
	cat "$sum"
} >docs/clblast-long.md
echo "run-clblast-long: docs/clblast-long.md ($pass passed, $fail failed)"
exit "$rc"
