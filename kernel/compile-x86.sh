#!/bin/bash
# Compile-test drivers/gpu/drm/virtio (with the series and its KUnit test)
# for x86_64 in build/x86: `make ARCH=x86_64 tinyconfig` plus
# kernel/config/x86.config, then `make drivers/gpu/drm/virtio/`.
# Warnings in the driver fail the test.
#
# Usage: kernel/compile-x86.sh
set -euo pipefail

# shellcheck source=kernel/lib.sh
. "$(dirname "$0")/lib.sh"

[[ $# -eq 0 ]] || die "usage: kernel/compile-x86.sh"
[[ -d $TREE/.git ]] || die "no tree at $TREE; run kernel/setup-tree.sh"

frag=$REPO_ROOT/kernel/config/x86.config
stamp=$X86_OUT/.virtgpu-config.sha256
want=$(sha256sum "$frag" | cut -d' ' -f1)
mkdir -p "$X86_OUT"
if [[ ! -f $X86_OUT/.config || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
	note "configuring $X86_OUT"
	make -C "$TREE" -s ARCH=x86_64 O="$X86_OUT" tinyconfig
	(cd "$TREE" && ARCH=x86_64 scripts/kconfig/merge_config.sh -m \
		-O "$X86_OUT" "$X86_OUT/.config" "$frag" >/dev/null)
	make -C "$TREE" -s ARCH=x86_64 O="$X86_OUT" olddefconfig
	bad=0
	while IFS= read -r line; do
		[[ $line == CONFIG_* ]] || continue
		if ! grep -qxF "$line" "$X86_OUT/.config"; then
			echo "  wanted: $line" >&2
			bad=1
		fi
	done <"$frag"
	((bad == 0)) || die "$X86_OUT/.config lacks options of $frag"
	echo "$want" >"$stamp"
fi

t0=$SECONDS
log=$X86_OUT/virtio-build.log
if ! make -C "$TREE" -s ARCH=x86_64 O="$X86_OUT" -j"$JOBS" W=1 \
	drivers/gpu/drm/virtio/ >"$log" 2>&1; then
	cat "$log" >&2
	die "x86_64 build of drivers/gpu/drm/virtio failed"
fi
if grep -E 'drivers/gpu/drm/virtio/.*: (warning|error):' "$log" >&2; then
	die "warnings in drivers/gpu/drm/virtio (x86_64, W=1)"
fi
objs=$(find "$X86_OUT/drivers/gpu/drm/virtio" -name '*.o' | wc -l)
note "x86_64: drivers/gpu/drm/virtio built ($objs objects, $((SECONDS - t0)) s)"
