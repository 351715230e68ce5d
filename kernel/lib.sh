# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are used by the scripts that source this
# Common settings of the kernel scripts; sourced, not run.

# The Debian kernel source the series is based on. Moving the pin means
# rebasing the series: see docs/kernel.md.
KERNEL_PKG=linux-source-6.12
KERNEL_DEB_VERSION=6.12.117-1~deb12u1
KERNEL_TARBALL=/usr/src/linux-source-6.12.tar.xz

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=$REPO_ROOT/build
TREE=$BUILD_DIR/linux-source-6.12
PATCH_DIR=$REPO_ROOT/kernel/patches
UML_OUT=$BUILD_DIR/uml
X86_OUT=$BUILD_DIR/x86
UAPI_DIR=$BUILD_DIR/uapi
KSELFTEST_OUT=$BUILD_DIR/kselftest

# HEAD of $TREE when it last matched kernel/patches (written by
# setup-tree.sh and export-patches.sh): a tree still at that commit has no
# local work, whatever kernel/patches holds now.
SERIES_HEAD_FILE=$TREE/.git/virtgpu-series-head

# The cover letter of the series (as git format-patch --cover-letter
# makes it): kept by export-patches.sh, skipped where the series is
# applied, built or compared with the tree.
COVER_LETTER=0000-cover-letter.patch

# Prints the patch files of the series, in order, without the cover letter.
series_patches() {
	local p

	for p in "$PATCH_DIR"/*.patch; do
		[[ -e $p && ${p##*/} != "$COVER_LETTER" ]] && echo "$p"
	done
	return 0
}

# Tags inside $TREE: the pristine Debian tree, and the base of the series:
# the Debian tree with kernel/base-patches/*.patch applied, fixes that the
# test environment needs and that are not part of the series (UML on the
# hosts it runs on). The series touches none of their files, so it applies
# to the pristine tree as well.
DEBIAN_TAG=virtgpu-userptr-debian
BASE_TAG=virtgpu-userptr-base
BASE_PATCH_DIR=$REPO_ROOT/kernel/base-patches

# Identity for commits made by the scripts (base commit, git am), so they
# work on a machine without a configured git identity.
GIT_ID=(-c user.name="virtgpu-userptr developers"
	-c user.email="devel@virtgpu-userptr.invalid")

JOBS=${JOBS:-2}

# Kernel compilations go through ccache when it is installed. The cache lives
# outside the clone, beside QEMU's (VGPU_CACHE, default
# /var/cache/virtgpu-userptr), keyed by what each object is compiled from:
# the tree, the series and the configuration, nothing else. Paths below the
# clone are hashed relative to it, so that another clone of the same tree,
# series and config (CI's next run) compiles nothing again. Depend mode
# hashes the sources and the headers the compiler reported instead of
# running the preprocessor a second time, which keeps a cold build's
# overhead small. VGPU_NO_CCACHE=1 turns it off.
KCC=gcc
if [[ -z ${VGPU_NO_CCACHE:-} ]] && command -v ccache >/dev/null 2>&1; then
	CCACHE_DIR=${VGPU_CACHE:-/var/cache/virtgpu-userptr}/ccache
	if mkdir -p "$CCACHE_DIR" 2>/dev/null && [[ -w $CCACHE_DIR ]]; then
		export CCACHE_DIR CCACHE_BASEDIR=$REPO_ROOT CCACHE_NOHASHDIR=1 CCACHE_DEPEND=1
		export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
		KCC="ccache gcc"
	fi
fi

# kmake ARGS...: make in the kernel tree, compiling through $KCC.
kmake() {
	make -C "$TREE" CC="$KCC" "$@"
}

die() {
	echo "${0##*/}: error: $*" >&2
	exit 1
}

note() {
	echo "${0##*/}: $*" >&2
}

tgit() {
	git -C "$TREE" "${GIT_ID[@]}" "$@"
}

# Options for git format-patch, shared by export-patches.sh and the
# up-to-date check of setup-tree.sh so that both produce identical bytes.
FORMAT_PATCH_OPTS=(--no-signature --zero-commit --no-numbered --abbrev=12
	--subject-prefix=PATCH --no-cover-letter --no-thread --stat=72)

# check_config CONFIG FRAGMENT...: every option of the fragments is set in
# CONFIG exactly as requested.
check_config() {
	local config=$1 frag line name bad=0
	shift

	for frag in "$@"; do
		while IFS= read -r line; do
			case $line in
			CONFIG_*=*)
				name=${line%%=*}
				if ! grep -qxF "$line" "$config"; then
					echo "  wanted: $line, got: $(grep -E "^(# )?${name}[= ]" "$config" || echo unset)" >&2
					bad=1
				fi
				;;
			"# CONFIG_"*" is not set")
				name=${line#"# "}
				name=${name%% *}
				if grep -q "^$name=" "$config"; then
					echo "  wanted: $line, got: $(grep "^$name=" "$config")" >&2
					bad=1
				fi
				;;
			esac
		done <"$frag"
	done
	return "$bad"
}

# configure_kernel ARCH OUT FRAGMENT...: `make ARCH=ARCH tinyconfig` in OUT
# plus the fragments, in order; redone only when a fragment changed, and
# every option of the fragments is checked in the result.
configure_kernel() {
	local arch=$1 out=$2 stamp want
	shift 2
	stamp=$out/.virtgpu-config.sha256
	want=$(cat "$@" | sha256sum | cut -d' ' -f1)
	if [[ -f $out/.config && -f $stamp && $(cat "$stamp") == "$want" ]]; then
		return
	fi
	note "configuring $out"
	mkdir -p "$out"
	kmake -s ARCH="$arch" O="$out" tinyconfig
	# merge_config.sh writes .config in the current directory with -O.
	(cd "$TREE" && ARCH=$arch scripts/kconfig/merge_config.sh -m -O "$out" \
		"$out/.config" "$@" >/dev/null)
	kmake -s ARCH="$arch" O="$out" olddefconfig
	check_config "$out/.config" "$@" ||
		die "$out/.config lacks options of the fragments (see above)"
	echo "$want" >"$stamp"
}
