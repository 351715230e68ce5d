#!/usr/bin/env bash
# Builds everything: host daemon (plain, ASan/UBSan, fuzz), the patched
# Linux 6.12 tree and its UML test kernel, UAPI headers and kselftest, and
# the guest library, tools and tests against those headers.
# Cheap to re-run: every step is incremental.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

scripts/install-deps.sh
scripts/build-host.sh
kernel/setup-tree.sh
kernel/build.sh

# The guest side needs the patched kernel's exported headers.
meson configure build/meson -Dguest=true -Dkernel_headers="$top/build/uapi/include"
ninja -C build/meson
