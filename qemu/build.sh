#!/bin/bash
# SPDX-License-Identifier: MIT
#
# qemu/build.sh - build the QEMU that carries virtgpu-userptr to an x86_64
# guest: Debian's QEMU 10.0 source (bookworm-backports), x86_64-softmmu
# only, vhost-user and virtio-9p, with qemu/patches applied (the generic
# vhost-user-device-pci made user-creatable, as QEMU's
# docs/system/devices/vhost-user.rst describes).
#
#   qemu/build.sh            build when missing or stale, print the binary's path
#   qemu/build.sh --print    print the path the binary has (or would have)
#
# The result is cached outside the clone, in $VGPU_CACHE (default
# /var/cache/virtgpu-userptr), under a key made of the source version, the
# patches, the device list and the configure options: a second run, from any
# clone, reuses it. The project's own meson is left alone: QEMU's configure
# gets bookworm-backports' meson unpacked into the cache, not installed.
set -euo pipefail

SELF=qemu/build.sh
HERE=$(cd "$(dirname "$0")" && pwd)

# The QEMU the tests ran with. bookworm-backports keeps only its newest
# version: when this one is gone, the build takes the one there and says so.
QEMU_DEB_VERSION='1:10.0.2+ds-2+deb13u1~bpo12+1'
SUITE=bookworm-backports
JOBS=${JOBS:-2}
CACHE=${VGPU_CACHE:-/var/cache/virtgpu-userptr}

die() { echo "$SELF: error: $*" >&2; exit 1; }
note() { echo "$SELF: $*" >&2; }

PRINT=0
case ${1:-} in
--print) PRINT=1 ;;
'') ;;
-h|--help) sed -n '4,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
*) die "unknown argument '$1' (try --help)" ;;
esac

CONFIGURE_OPTS=(--target-list=x86_64-softmmu --without-default-features
	--without-default-devices --with-devices-x86_64=vgpu
	--enable-kvm --enable-vhost-user --enable-virtfs --enable-attr --enable-fdt=system
	--disable-docs --disable-install-blobs --disable-werror)

# Sources: the apt source of bookworm-backports (deb and deb-src) is added
# by scripts/install-deps.sh, which also installs the build dependencies.
SRC_LIST=/etc/apt/sources.list.d/virtgpu-backports.sources

key_of() { # version
	{
		echo "$1"
		cat "$HERE"/patches/*.patch "$HERE/vgpu.mak"
		echo "${CONFIGURE_OPTS[*]}"
	} | sha256sum | cut -c1-16
}

# Which version: the pin when the registry still has it, else the newest.
available=$(apt-cache showsrc "qemu/$SUITE" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n 1)
version=$QEMU_DEB_VERSION
if [ -n "$available" ] && [ "$available" != "$QEMU_DEB_VERSION" ]; then
	# Reuse a build of the pin when one is cached; else loudly take the new one.
	if [ ! -x "$CACHE/qemu-$(key_of "$QEMU_DEB_VERSION")/qemu-system-x86_64" ]; then
		cat >&2 <<EOF
$SELF: ********************************************************************
$SELF: WARNING: the pinned QEMU $QEMU_DEB_VERSION is no longer in $SUITE.
$SELF: WARNING: building $available instead: it is NOT the version the
$SELF: WARNING: tests were written against (update QEMU_DEB_VERSION in
$SELF: WARNING: qemu/build.sh and the README once it passes).
$SELF: ********************************************************************
EOF
		version=$available
	fi
fi
upstream=${version#*:}
upstream=${upstream%%-*}     # 10.0.2+ds
plain=${upstream%+ds}        # 10.0.2
key=$(key_of "$version")
out=$CACHE/qemu-$key
bin=$out/qemu-system-x86_64

if [ "$PRINT" = 1 ]; then
	echo "$bin"
	exit 0
fi
if [ -x "$bin" ] && [ -f "$out/stamp" ]; then
	echo "$bin"
	exit 0
fi

[ -f "$SRC_LIST" ] || die "$SRC_LIST is missing: run scripts/install-deps.sh first"
mkdir -p "$CACHE/src" "$CACHE/tools"
t0=$SECONDS

# Source: only the orig tarball is needed (and is what the registry has;
# the .dsc and .debian.tar.xz of the backport may be missing).
tarball=$CACHE/src/qemu_${upstream}.orig.tar.xz
if [ ! -s "$tarball" ]; then
	note "downloading the source of qemu $version"
	(cd "$CACHE/src" && timeout 600 apt-get source --download-only "qemu=$version" >apt-source.log 2>&1) || true
	[ -s "$tarball" ] || { cat "$CACHE/src/apt-source.log" >&2; die "no $tarball"; }
fi

# meson >= 1.5 and pycotap for QEMU's configure: unpacked, never installed.
tools=$CACHE/tools/root
if [ ! -f "$tools/.done" ]; then
	note "unpacking meson and pycotap from $SUITE for QEMU's configure"
	rm -rf "$tools" "$CACHE/tools/debs"
	mkdir -p "$CACHE/tools/debs" "$tools"
	(cd "$CACHE/tools/debs" && timeout 300 apt-get download "meson/$SUITE" "python3-pycotap/$SUITE" \
		>download.log 2>&1) || { cat "$CACHE/tools/debs/download.log" >&2; die "cannot download meson from $SUITE"; }
	for deb in "$CACHE"/tools/debs/*.deb; do dpkg-deb -x "$deb" "$tools"; done
	touch "$tools/.done"
fi
export PYTHONPATH=$tools/usr/lib/python3/dist-packages${PYTHONPATH:+:$PYTHONPATH}

work=$CACHE/build-$key
rm -rf "$work" "$out"
mkdir -p "$work"
note "unpacking and patching qemu $upstream"
tar -C "$work" -xf "$tarball"
srcdir=$work/qemu-$plain
[ -d "$srcdir" ] || die "unexpected layout of $tarball (no qemu-$plain/)"
for p in "$HERE"/patches/*.patch; do
	patch -d "$srcdir" -p1 --quiet --forward <"$p" || die "patch $(basename "$p") does not apply to qemu $upstream"
done
cp "$HERE/vgpu.mak" "$srcdir/configs/devices/x86_64-softmmu/vgpu.mak"

note "configuring (log: $work/configure.log)"
mkdir -p "$work/build"
(cd "$work/build" && "$srcdir/configure" --python=/usr/bin/python3 \
	"${CONFIGURE_OPTS[@]}") >"$work/configure.log" 2>&1 ||
	{ tail -n 40 "$work/configure.log" >&2; die "configure failed"; }
note "building with -j$JOBS (log: $work/build.log)"
ninja -C "$work/build" -j"$JOBS" qemu-system-x86_64 >"$work/build.log" 2>&1 ||
	{ tail -n 40 "$work/build.log" >&2; die "build failed"; }

mkdir -p "$out"
cp "$work/build/qemu-system-x86_64" "$bin"
echo "qemu $version, key $key, built in $((SECONDS - t0)) s" >"$out/stamp"
"$bin" -device help 2>/dev/null | grep -q '"vhost-user-device-pci"' ||
	die "the built QEMU lacks vhost-user-device-pci"
rm -rf "$work"
note "$(cat "$out/stamp")"
echo "$bin"
