#!/bin/bash
# Build the x86_64 guest kernel of the QEMU system tests,
# build/x86/arch/x86/boot/bzImage, from the same tree and series as the UML
# test kernel: `make ARCH=x86_64 tinyconfig` plus kernel/config/x86.config
# and debug.config (KASAN, kmemleak, lockdep, DEBUG_VM, the KUnit tests).
# This one build also serves the x86_64 compile test (kernel/compile-x86.sh
# rebuilds the driver's objects in it with W=1); no other x86_64 kernel is
# built. (W=1 over the whole kernel would run kernel-doc on every file.)
#
# Usage: kernel/build-x86.sh [--if-stale]
#   --if-stale   do nothing when build/x86/.virtgpu-built matches the tree's
#                commit, its local changes and the fragments
# Runs kernel/setup-tree.sh --keep-local first. JOBS (default 2) sets make -j.
set -euo pipefail

# shellcheck source=kernel/lib.sh
. "$(dirname "$0")/lib.sh"

if_stale=0
for arg in "$@"; do
	case $arg in
	--if-stale) if_stale=1 ;;
	-h | --help)
		sed -n '2,12s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*) die "unknown argument: $arg" ;;
	esac
done

FRAGMENTS=("$REPO_ROOT/kernel/config/x86.config"
	"$REPO_ROOT/kernel/config/debug.config")
BZIMAGE=$X86_OUT/arch/x86/boot/bzImage
BUILT_STAMP=$X86_OUT/.virtgpu-built

# What the kernel was built from: the tree's commit, its uncommitted
# changes and the fragments.
source_id() {
	{
		tgit rev-parse HEAD
		tgit diff HEAD
		cat "${FRAGMENTS[@]}"
	} | sha256sum | cut -d' ' -f1
}

"$REPO_ROOT/kernel/setup-tree.sh" --keep-local >&2
if ((if_stale)) && [[ -f $BZIMAGE && -f $BUILT_STAMP ]] &&
	[[ $(cat "$BUILT_STAMP") == "$(source_id)" ]]; then
	exit 0
fi

configure_kernel x86_64 "$X86_OUT" "${FRAGMENTS[@]}"
t0=$SECONDS
log=$X86_OUT/build.log
if ! kmake -s ARCH=x86_64 O="$X86_OUT" -j"$JOBS" bzImage >"$log" 2>&1; then
	tail -n 60 "$log" >&2
	die "x86_64 kernel build failed (log: $log)"
fi
source_id >"$BUILT_STAMP"
note "x86_64 kernel: $BZIMAGE ($((SECONDS - t0)) s)"
