#!/bin/bash
# Build the UML test kernel (build/uml/linux), the patched UAPI headers
# (build/uapi/include) and the virtio-gpu kselftest (build/kselftest/).
#
# Usage: kernel/build.sh [--x86] [--no-kselftest]
#   --x86           also build the x86_64 guest kernel (kernel/build-x86.sh)
#   --no-kselftest  skip the kselftest
#
# The configuration is `make ARCH=um tinyconfig` plus kernel/config/
# uml.config and debug.config; it is regenerated only when a fragment
# changed. Every option of the fragments is checked in the result.
# Runs kernel/setup-tree.sh --keep-local first. JOBS (default 2) sets make -j.
set -euo pipefail

# shellcheck source=kernel/lib.sh
. "$(dirname "$0")/lib.sh"

x86=0
kselftest=1
for arg in "$@"; do
	case $arg in
	--x86) x86=1 ;;
	--no-kselftest) kselftest=0 ;;
	-h | --help)
		sed -n '2,13s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*) die "unknown argument: $arg" ;;
	esac
done

FRAGMENTS=("$REPO_ROOT/kernel/config/uml.config"
	"$REPO_ROOT/kernel/config/debug.config")

configure_uml() {
	configure_kernel um "$UML_OUT" "${FRAGMENTS[@]}"
}

build_uml() {
	local t0=$SECONDS

	kmake -s ARCH=um O="$UML_OUT" -j"$JOBS" linux
	note "UML kernel: $UML_OUT/linux ($((SECONDS - t0)) s)"
}

install_headers() {
	local out=$BUILD_DIR/uapi-obj

	mkdir -p "$out"
	kmake -s ARCH=x86 O="$out" headers_install \
		INSTALL_HDR_PATH="$UAPI_DIR"
	grep -q VIRTGPU_BLOB_FLAG_USE_USERPTR "$UAPI_DIR/include/drm/virtgpu_drm.h" ||
		die "installed headers lack the series' UAPI"
}

build_kselftest() {
	local src=$TREE/tools/testing/selftests/drivers/gpu/virtio_gpu

	if [[ ! -d $src ]]; then
		note "no kselftest in the tree yet; skipped"
		return
	fi
	mkdir -p "$KSELFTEST_OUT"
	make -C "$src" -s OUTPUT="$KSELFTEST_OUT" \
		KHDR_INCLUDES="-isystem $UAPI_DIR/include"
	note "kselftest: $KSELFTEST_OUT"
}

"$REPO_ROOT/kernel/setup-tree.sh" --keep-local
configure_uml
build_uml
install_headers
if ((kselftest)); then
	build_kselftest
fi
if ((x86)); then
	"$REPO_ROOT/kernel/build-x86.sh" --if-stale
fi
