#!/usr/bin/env bash
# The main job: builds everything, boots the patched kernel as User-Mode
# Linux against the host device and runs the zero-copy demo in the guest.
# Extra arguments go to vgpu-demo (e.g. --size 256M).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

scripts/build-all.sh
echo
echo "=== booting the guest and running vgpu-demo $*"
exec tests/system/run-guest.sh --mem 1G -- build/meson/guest/vgpu-demo "$@"
