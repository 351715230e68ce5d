#!/usr/bin/env bash
# Builds the host daemon, its tests and the fuzz targets:
#   build/meson       plain build
#   build/meson-asan  the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   build/fuzz        clang build with the libFuzzer targets
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

setup() {
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@"
	fi
	ninja -C "$dir"
}

setup build/meson
setup build/meson-asan -Db_sanitize=address,undefined -Db_lundef=false
CC=clang setup build/fuzz -Dfuzz=true
