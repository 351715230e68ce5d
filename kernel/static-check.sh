#!/bin/bash
# Static checks of drivers/gpu/drm/virtio as the drm maintainers run
# them, on the kernels already built (nothing else is built):
#   sparse  make C=2 W=1 drivers/gpu/drm/virtio/ in the UML build
#           (build/uml) and in the x86_64 guest build (build/x86): any
#           warning or error reported in the driver fails;
#   cocci   make coccicheck MODE=report on the driver, once: any report
#           fails, except those listed in kernel/cocci-known.txt (reports
#           on code the series does not touch, each with its reason).
#
# Usage: kernel/static-check.sh sparse|cocci
set -euo pipefail

# shellcheck source=kernel/lib.sh
. "$(dirname "$0")/lib.sh"

DRIVER=drivers/gpu/drm/virtio
KNOWN=$REPO_ROOT/kernel/cocci-known.txt

[[ $# -eq 1 ]] || die "usage: kernel/static-check.sh sparse|cocci"
[[ -d $TREE/.git ]] || die "no tree at $TREE; run kernel/setup-tree.sh"

# sparse_one ARCH OUT: C=2 checks every file of the driver, built or not.
sparse_one() {
	local arch=$1 out=$2 log=$2/sparse.log checked

	[[ -f $out/.config ]] || die "no $out/.config; build that kernel first"
	if ! kmake ARCH="$arch" O="$out" -j"$JOBS" C=2 W=1 \
		"$DRIVER/" >"$log" 2>&1; then
		cat "$log" >&2
		die "sparse run failed ($arch)"
	fi
	checked=$(grep -cE "^ +CHECK +.*$DRIVER/" "$log" || true)
	((checked > 0)) || die "sparse checked no file of $DRIVER ($arch)"
	if grep -E "$DRIVER/[^ :]+:[0-9]+:([0-9]+:)? (warning|error):" "$log" >&2; then
		die "sparse (C=2 W=1, $arch): reports in $DRIVER"
	fi
	note "sparse (C=2 W=1, $arch): $checked files of $DRIVER, no report"
}

cocci() {
	local log=$BUILD_DIR/coccicheck.log reports unknown

	mkdir -p "$BUILD_DIR"
	if ! kmake coccicheck MODE=report M="$DRIVER" J="$JOBS" \
		>"$log" 2>&1; then
		cat "$log" >&2
		die "coccicheck failed"
	fi
	grep -q "cocci-file" "$log" || die "coccicheck ran no semantic patch"
	reports=$(grep -E "^$DRIVER/[^ :]+:[0-9]+:" "$log" || true)
	unknown=$reports
	if [[ -n $reports && -f $KNOWN ]]; then
		# A known report is named by file and message, not line.
		unknown=$(sed -E 's/:[0-9]+:[0-9-]+: /: /; s/ on line [0-9]+$//' <<<"$reports" |
			grep -vxF -f <(grep -v '^#' "$KNOWN" | cut -d'|' -f1 |
				sed 's/ *$//') || true)
	fi
	if [[ -n $unknown ]]; then
		echo "$unknown" >&2
		die "coccicheck: reports in $DRIVER"
	fi
	note "coccicheck (MODE=report): no new report in $DRIVER" \
		"($(grep -c cocci-file "$log") semantic patches)"
}

case $1 in
sparse)
	command -v sparse >/dev/null || die "sparse is missing (scripts/install-deps.sh)"
	sparse_one um "$UML_OUT"
	sparse_one x86_64 "$X86_OUT"
	;;
cocci)
	command -v spatch >/dev/null || die "spatch is missing (scripts/install-deps.sh)"
	cocci
	;;
*) die "usage: kernel/static-check.sh sparse|cocci" ;;
esac
