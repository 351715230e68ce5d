#!/bin/bash
# Write the commits of build/linux-source-6.12 above the base commit to
# kernel/patches/ as a numbered series, replacing the old patch files.
#
# Usage: kernel/export-patches.sh
#
# The output is stable: no commit ids, no tool version, fixed abbreviation
# and diffstat width, so re-exporting an unchanged series changes no byte.
set -euo pipefail

# shellcheck source=kernel/lib.sh
. "$(dirname "$0")/lib.sh"

[[ $# -eq 0 ]] || die "usage: kernel/export-patches.sh"
[[ -d $TREE/.git ]] || die "no tree at $TREE; run kernel/setup-tree.sh"
tgit rev-parse -q --verify "refs/tags/$BASE_TAG" >/dev/null ||
	die "$TREE has no $BASE_TAG tag"
if [[ -n $(tgit status --porcelain) ]]; then
	note "warning: $TREE has uncommitted changes; they are not exported"
fi

count=$(tgit rev-list --count "$BASE_TAG..HEAD")
((count > 0)) || die "no commits above $BASE_TAG"

tmp=$(mktemp -d "$REPO_ROOT/kernel/.patches.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tgit format-patch -q "${FORMAT_PATCH_OPTS[@]}" -o "$tmp" "$BASE_TAG..HEAD"

mkdir -p "$PATCH_DIR"
tgit rev-parse HEAD >"$SERIES_HEAD_FILE"
# The cover letter is written by hand and kept as it is.
if diff -r -q -x "$COVER_LETTER" "$tmp" "$PATCH_DIR" >/dev/null 2>&1; then
	note "kernel/patches already up to date ($count patches)"
	exit 0
fi
find "$PATCH_DIR" -maxdepth 1 -name '*.patch' ! -name "$COVER_LETTER" -delete
cp "$tmp"/*.patch "$PATCH_DIR"/
note "exported $count patches to kernel/patches:"
for f in "$PATCH_DIR"/*.patch; do
	echo "  ${f##*/}" >&2
done
