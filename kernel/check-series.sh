#!/bin/bash
# Check every patch of kernel/patches on its own:
#  - scripts/checkpatch.pl --strict must report 0 errors, 0 warnings and
#    0 checks;
#  - the tree with patches 1..k applied must build (bisectability): an
#    incremental UML build of the kernel, in build/series (seeded from
#    build/uml, so that build/uml/linux is never replaced by a partial
#    series).
#
# Usage: kernel/check-series.sh [--no-build]
#
# Needs a tree that carries exactly kernel/patches (kernel/setup-tree.sh)
# and, for the build, a configured build/uml (kernel/build.sh). The tree is
# returned to the tip of the series at the end, whatever happens.
set -euo pipefail

# shellcheck source=kernel/lib.sh
. "$(dirname "$0")/lib.sh"

do_build=1
for arg in "$@"; do
	case $arg in
	--no-build) do_build=0 ;;
	-h | --help)
		sed -n '2,15s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*) die "unknown argument: $arg" ;;
	esac
done

SERIES_OUT=$BUILD_DIR/series

shopt -s nullglob
# checkpatch reads the cover letter too; the builds follow the commits.
patches=("$PATCH_DIR"/*.patch)
((${#patches[@]})) || die "no patches in kernel/patches"

"$REPO_ROOT/kernel/setup-tree.sh"
[[ -z $(tgit status --porcelain) ]] || die "$TREE has uncommitted changes"

failed=0
n=0

# tap OK|FAIL DESCRIPTION: one TAP result line (the output is TAP).
tap() {
	n=$((n + 1))
	if [[ $1 == OK ]]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=1
	fi
}

# checkpatch.pl runs spdxcheck.py (env python3), which needs ply; without
# it, it prints a traceback and carries on without the SPDX check. Prefer
# the system python when it has ply (Debian: python3-ply).
if ! python3 -c 'import ply' 2>/dev/null; then
	if /usr/bin/python3 -c 'import ply' 2>/dev/null; then
		PATH=/usr/bin:$PATH
	else
		note "python3-ply missing: checkpatch runs without its SPDX check"
	fi
fi

echo "== checkpatch --strict"
for p in "${patches[@]}"; do
	# checkpatch exits non-zero on any report; the totals decide.
	# The tree is made from Debian's tarball and has no upstream history,
	# so checkpatch cannot look up the commit ids of Fixes: tags
	# (UNKNOWN_COMMIT_ID); their form is still checked (GIT_COMMIT_ID),
	# and the ids are checked against public history by hand.
	out=$("$TREE/scripts/checkpatch.pl" --strict --root="$TREE" \
		--ignore UNKNOWN_COMMIT_ID --showfile "$p" 2>/dev/null) || true
	total=$(grep -E 'total: [0-9]+ errors, [0-9]+ warnings, [0-9]+ checks' <<<"$out" || true)
	if [[ $total =~ total:\ 0\ errors,\ 0\ warnings,\ 0\ checks ]]; then
		tap OK "checkpatch --strict ${p##*/}"
	else
		tap FAIL "checkpatch --strict ${p##*/}: ${total:-no result}"
		grep -E '^[^ ]+:[0-9]+: (ERROR|WARNING|CHECK):|^(ERROR|WARNING|CHECK):' \
			<<<"$out" | sed 's/^/#       /' || true
	fi
done

if ((do_build)); then
	[[ -f $UML_OUT/.config ]] || die "no $UML_OUT/.config; run kernel/build.sh first"
	tip=$(tgit rev-parse HEAD)
	branch=$(tgit symbolic-ref -q --short HEAD || true)
	restore() {
		tgit checkout -q "${branch:-$tip}"
	}
	trap restore EXIT

	# Seed build/series from build/uml once per configuration, so that
	# the first build is incremental too.
	if [[ ! -f $SERIES_OUT/.config ]] ||
		! cmp -s "$UML_OUT/.virtgpu-config.sha256" "$SERIES_OUT/.virtgpu-config.sha256"; then
		note "seeding $SERIES_OUT from $UML_OUT"
		rm -rf "$SERIES_OUT"
		cp -a "$UML_OUT" "$SERIES_OUT"
	fi
	cp "$UML_OUT/.config" "$SERIES_OUT/.config.full"

	echo "== build after each patch (ARCH=um, $SERIES_OUT)"
	mapfile -t commits < <(tgit rev-list --reverse "$BASE_TAG..HEAD")
	k=0
	for c in "${commits[@]}"; do
		k=$((k + 1))
		tgit checkout -q --detach "$c"
		# Options a patch doesn't know yet are dropped by Kconfig;
		# start from the full configuration every time.
		cp "$SERIES_OUT/.config.full" "$SERIES_OUT/.config"
		t0=$SECONDS
		if kmake -s ARCH=um O="$SERIES_OUT" olddefconfig >/dev/null &&
			kmake -s ARCH=um O="$SERIES_OUT" -j"$JOBS" \
				linux >"$SERIES_OUT/build-$k.log" 2>&1 &&
			! grep -E '(drivers/gpu/drm/virtio|include/uapi)/.*: (warning|error):' \
				"$SERIES_OUT/build-$k.log"; then
			tap OK "builds after patch $k/${#commits[@]}: $(tgit log -1 --format=%s "$c") ($((SECONDS - t0)) s)"
		else
			tap FAIL "builds after patch $k/${#commits[@]}: $(tgit log -1 --format=%s "$c"): see $SERIES_OUT/build-$k.log"
			tail -20 "$SERIES_OUT/build-$k.log" | sed 's/^/#       /'
		fi
	done
fi

echo "1..$n"
if ((failed)); then
	echo "check-series: FAILED"
	exit 1
fi
echo "check-series: all ${#patches[@]} patches pass"
