#!/bin/bash
# x86_64 compile test of drivers/gpu/drm/virtio (with the series and its
# KUnit test), in the x86_64 guest kernel's own build (build/x86, made by
# kernel/build-x86.sh, W=1): the driver's objects are rebuilt and any
# warning in the driver fails the test. No second x86_64 kernel is built.
#
# Usage: kernel/compile-x86.sh
set -euo pipefail

# shellcheck source=kernel/lib.sh
. "$(dirname "$0")/lib.sh"

[[ $# -eq 0 ]] || die "usage: kernel/compile-x86.sh"
[[ -d $TREE/.git ]] || die "no tree at $TREE; run kernel/setup-tree.sh"
"$REPO_ROOT/kernel/build-x86.sh" --if-stale

t0=$SECONDS
dir=$X86_OUT/drivers/gpu/drm/virtio
log=$X86_OUT/virtio-build.log
find "$dir" -name '*.o' -delete
if ! kmake -s ARCH=x86_64 O="$X86_OUT" -j"$JOBS" W=1 \
	drivers/gpu/drm/virtio/ >"$log" 2>&1; then
	cat "$log" >&2
	die "x86_64 build of drivers/gpu/drm/virtio failed"
fi
if grep -E 'drivers/gpu/drm/virtio/.*: (warning|error):' "$log" >&2; then
	die "warnings in drivers/gpu/drm/virtio (x86_64, W=1)"
fi
objs=$(find "$dir" -name '*.o' | wc -l)
((objs > 0)) || die "no object was built in $dir"
note "x86_64: drivers/gpu/drm/virtio built ($objs objects, $((SECONDS - t0)) s)"
