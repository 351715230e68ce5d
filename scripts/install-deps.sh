#!/usr/bin/env bash
# Installs the Debian 12 packages the project builds and tests with.
# Cheap when everything is present: it only calls apt-get for what is missing.
# The kernel source (linux-source-6.12, pinned) is installed by
# kernel/setup-tree.sh, which owns the pin.
set -euo pipefail

packages=(
	build-essential pkg-config meson ninja-build git xz-utils
	python3 perl bc flex bison libelf-dev libssl-dev rsync cpio kmod
	clang libclang-rt-14-dev
	libdrm-dev libxxhash-dev libcmocka-dev
	valgrind gnuplot-nox procps python3-ply
	abigail-tools g++
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages present"
	exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
	sudo=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
