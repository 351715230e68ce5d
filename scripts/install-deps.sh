#!/usr/bin/env bash
# Installs the Debian 12 packages the project builds and tests with.
# Cheap when everything is present: it only calls apt-get for what is missing.
# The kernel source (linux-source-6.12, pinned) is installed by
# kernel/setup-tree.sh, which owns the pin.
set -euo pipefail

packages=(
	build-essential pkg-config meson ninja-build git xz-utils
	# kernel compilations cached outside the clone (kernel/lib.sh)
	ccache
	python3 perl bc flex bison libelf-dev libssl-dev rsync cpio kmod
	clang libclang-rt-14-dev
	libdrm-dev libxxhash-dev libcmocka-dev
	valgrind gnuplot-nox procps python3-ply
	# the OpenCL backend: the ICD loader and PoCL's CPU device
	pocl-opencl-icd ocl-icd-opencl-dev opencl-c-headers clinfo
	# unmodified OpenCL programs run through the guest's ICD (guest/icd):
	# clpeak, CLBlast's tests (they pull in a reference BLAS), and its
	# header for the benchmark's driver of it (guest/tests/clblast-bench.c)
	clpeak clblast-tests libclblast-dev
	# the worker that runs the guest's own kernels: its seccomp filter
	libseccomp-dev
	# QEMU 10.0 from source (qemu/build.sh) and its firmware at run time
	libglib2.0-dev libpixman-1-dev libfdt-dev libattr1-dev python3-venv
	seabios qemu-system-data
	# the library's ABI check (abidiff) and its C++ compile test
	abigail-tools g++
	# the kernel driver's static checks (kernel/static-check.sh); spatch
	# compiles the OCaml scripts of some semantic patches
	# (api/check_bq27xxx_data.cocci, null/badzero.cocci) with ocamlopt
	sparse coccinelle ocaml-nox
	# spatch loads libpython3.X.so (the unversioned name, from the -dev
	# package) for the Python scripting of semantic patches
	libpython3-dev
)

# qemu/build.sh takes QEMU's source, and meson for its configure, from
# bookworm-backports (the same Debian registry). apt's pinning keeps
# backports' binary packages from replacing anything unless asked by name.
BACKPORTS=/etc/apt/sources.list.d/virtgpu-backports.sources
need_update=0
if [ ! -f "$BACKPORTS" ]; then
	[ "$(id -u)" -eq 0 ] || { echo "install-deps: need root to add $BACKPORTS" >&2; exit 1; }
	cat >"$BACKPORTS" <<'SRC'
Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	need_update=1
fi

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	if [ "$need_update" = 1 ]; then
		echo "install-deps: added $BACKPORTS; updating the package lists"
		DEBIAN_FRONTEND=noninteractive apt-get update -q
	fi
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
