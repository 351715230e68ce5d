#!/bin/bash
# Prepare build/linux-source-6.12: Debian's kernel source as a git tree
# with a pristine commit (tag virtgpu-userptr-debian), the environment's
# kernel/base-patches/*.patch above it (tag virtgpu-userptr-base, the base
# of the series), and kernel/patches/*.patch applied on top.
#
# Usage: kernel/setup-tree.sh [--force | --keep-local]
#
# Re-running is cheap: when the tree already carries exactly the series
# nothing is done. When the series changed, the tree is reset to the base
# commit and the series is applied again. A tree with uncommitted changes,
# or with commits made since it last matched kernel/patches that are not in
# kernel/patches, is left alone unless
# --force is given (then that work is discarded). With --keep-local (used
# by build.sh) such a tree is left as it is and the script succeeds, so
# that work in progress can be built before it is exported.
set -euo pipefail

# shellcheck source=kernel/lib.sh
. "$(dirname "$0")/lib.sh"

force=0
keep_local=0
for arg in "$@"; do
	case $arg in
	--force) force=1 ;;
	--keep-local) keep_local=1 ;;
	-h | --help)
		sed -n '2,16s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*) die "unknown argument: $arg" ;;
	esac
done

ensure_source() {
	local have=""

	have=$(dpkg-query -W -f='${Version}' "$KERNEL_PKG" 2>/dev/null || true)
	if [[ -f $KERNEL_TARBALL && $have == "$KERNEL_DEB_VERSION" ]]; then
		return
	fi
	note "installing $KERNEL_PKG=$KERNEL_DEB_VERSION (found: ${have:-none})"
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		sudo=(sudo)
	fi
	"${sudo[@]}" apt-get install -y --allow-downgrades \
		"$KERNEL_PKG=$KERNEL_DEB_VERSION"
	[[ -f $KERNEL_TARBALL ]] || die "$KERNEL_TARBALL missing after install"
}

create_tree() {
	local tmp="$BUILD_DIR/.linux-unpack.$$"

	note "unpacking $KERNEL_TARBALL"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	tar -C "$tmp" -xf "$KERNEL_TARBALL"
	[[ -d $tmp/linux-source-6.12 ]] || die "unexpected tarball layout"
	mv "$tmp/linux-source-6.12" "$TREE"
	rmdir "$tmp"

	note "creating the base commit"
	git -C "$TREE" init -q -b master
	# The tree's own .gitignore files apply; the tarball has no ignored
	# files, so -f adds exactly what was unpacked.
	git -C "$TREE" add -A -f
	GIT_AUTHOR_DATE="2000-01-01T00:00:00Z" \
		GIT_COMMITTER_DATE="2000-01-01T00:00:00Z" \
		tgit commit -q -m "Debian $KERNEL_PKG $KERNEL_DEB_VERSION" \
		-m "Pristine $KERNEL_TARBALL of Debian package $KERNEL_PKG version $KERNEL_DEB_VERSION."
	tgit tag -f "$DEBIAN_TAG" >/dev/null
	make_base
}

# Tag the pristine tree with kernel/base-patches applied as the base.
make_base() {
	local base=()

	shopt -s nullglob
	base=("$BASE_PATCH_DIR"/*.patch)
	shopt -u nullglob
	tgit checkout -q --detach "$DEBIAN_TAG"
	if ((${#base[@]})); then
		note "applying ${#base[@]} base patches (kernel/base-patches)"
		tgit am -q --committer-date-is-author-date "${base[@]}" ||
			die "a base patch does not apply; the tree is left in $TREE"
	fi
	tgit tag -f "$BASE_TAG" >/dev/null
}

# range_matches RANGE DIR [DIFF-OPTION...]: the commits of RANGE, formatted
# as kernel/export-patches.sh formats them, are exactly the patches of DIR.
range_matches() {
	local range=$1 dir=$2 tmp
	shift 2

	tmp=$(mktemp -d)
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" RETURN
	tgit format-patch -q "${FORMAT_PATCH_OPTS[@]}" -o "$tmp" "$range" >/dev/null
	mkdir -p "$dir"
	diff -r -q "$@" "$tmp" "$dir" >/dev/null 2>&1
}

# Does the base carry exactly kernel/base-patches?
base_matches() {
	range_matches "$DEBIAN_TAG..$BASE_TAG" "$BASE_PATCH_DIR"
}

# Does the tree carry exactly kernel/patches (the cover letter aside)?
series_matches() {
	range_matches "$BASE_TAG..HEAD" "$PATCH_DIR" -x "$COVER_LETTER"
}

commits_in_series() {
	# Every commit above the base must have a patch-id found in the
	# series; otherwise resetting would lose committed work.
	local ids commit pid

	ids=$(series_patches | xargs -r cat | git patch-id --stable |
		cut -d' ' -f1)
	for commit in $(tgit rev-list "$BASE_TAG..HEAD"); do
		pid=$(tgit show "$commit" | git patch-id --stable | cut -d' ' -f1)
		[[ -z $pid ]] && continue
		grep -qx "$pid" <<<"$ids" || return 1
	done
	return 0
}

mkdir -p "$BUILD_DIR" "$PATCH_DIR"
ensure_source

if [[ ! -d $TREE/.git ]]; then
	[[ -e $TREE ]] && die "$TREE exists but is not a git tree; remove it"
	create_tree
fi

for tag in "$DEBIAN_TAG" "$BASE_TAG"; do
	tgit rev-parse -q --verify "refs/tags/$tag" >/dev/null ||
		die "$TREE has no $tag tag (made before kernel/base-patches);" \
			"remove the tree and re-run"
done
if ! tgit log -1 --format=%B "$DEBIAN_TAG" | grep -qF "$KERNEL_DEB_VERSION"; then
	die "$TREE is based on another Debian version than $KERNEL_DEB_VERSION;" \
		"remove it (see docs/kernel.md, rebasing) and re-run"
fi

base_ok=1
base_matches || base_ok=0
if ((base_ok)) && series_matches; then
	tgit rev-parse HEAD >"$SERIES_HEAD_FILE"
	note "tree up to date ($(tgit rev-list --count "$BASE_TAG..HEAD") patches)"
	exit 0
fi

# Debian's top-level .gitignore ignores everything, so new files of work
# in progress only show up as "others".
if [[ -n $(tgit status --porcelain) || -n $(tgit ls-files --others) ]]; then
	if ((keep_local)); then
		note "tree has uncommitted changes; left as it is"
		exit 0
	fi
	((force)) || die "$TREE has uncommitted changes; commit and run" \
		"kernel/export-patches.sh, or re-run with --force to discard them"
	note "--force: discarding uncommitted changes"
fi
head=$(tgit rev-parse HEAD)
if [[ $head != "$(cat "$SERIES_HEAD_FILE" 2>/dev/null)" ]] && ! commits_in_series; then
	if ((keep_local)); then
		note "tree has commits not in kernel/patches; left as it is"
		exit 0
	fi
	((force)) || die "$TREE has commits that are not in kernel/patches;" \
		"run kernel/export-patches.sh, or re-run with --force to drop them"
	note "--force: dropping commits that are not in kernel/patches"
fi

# An interrupted git am leaves state behind; clear it.
if [[ -d $TREE/.git/rebase-apply ]]; then
	tgit am --abort || rm -rf "$TREE/.git/rebase-apply"
fi
if ((!base_ok)); then
	note "kernel/base-patches changed: making the base again"
	make_base
fi
tgit checkout -q -B master "$BASE_TAG"
tgit reset -q --hard "$BASE_TAG"
tgit clean -q -fdx

shopt -s nullglob
mapfile -t patches < <(series_patches)
if ((${#patches[@]})); then
	note "applying ${#patches[@]} patches"
	tgit am -q --committer-date-is-author-date "${patches[@]}" ||
		die "git am failed; the tree is left mid-series in $TREE"
fi
series_matches || die "applied series does not round-trip; run kernel/export-patches.sh"
tgit rev-parse HEAD >"$SERIES_HEAD_FILE"
note "tree at $(tgit rev-parse --short HEAD) with ${#patches[@]} patches"
