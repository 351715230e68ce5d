#!/bin/bash
# SPDX-License-Identifier: MIT
#
# check-abi.sh - libvgpu's ABI against the dumps kept in guest/abi/. Prints TAP.
#
#   guest/abi/check-abi.sh LIBVGPU_SO [HEADERS_DIR...]
#
# libvgpu.so.N.abi is the ABI that soname N shipped with: the library built
# now must not break it (abidiff may report added functions, never a removed
# or changed one, which is how it reports a changed struct layout). Older dumps are earlier releases: an incompatible change against
# one is allowed only when the soname moved on. Every exported symbol must
# carry a version node of the linker script (guest/lib/libvgpu.map).
# The opaque types (vgpu_device, vgpu_buffer, vgpu_batch, vgpu_fence) are
# left out of the comparison (opaque.suppr): callers never see their layout;
# struct vgpu_info may grow at its end (appended.suppr: it carries struct_size).
# After adding API, refresh the current dump with --update.

set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
update=0
if [ "${1:-}" = --update ]; then
	update=1
	shift
fi
lib=${1:?usage: check-abi.sh [--update] LIBVGPU_SO [HEADERS_DIR...]}
shift
hdr_args=()
for d in "$@"; do hdr_args+=(--headers-dir "$d"); done

n=0
failed=0
ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-abi.XXXXXXXX") || exit 2
trap 'rm -rf -- "$tmp"' EXIT

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
ok "$([ -n "$soname" ] && echo 0 || echo 1)" "the library has a soname ($soname)"
cur=$tmp/current.abi
abidw "${hdr_args[@]}" --no-corpus-path "$lib" >"$cur" 2>"$tmp/abidw.err"
ok $? "abidw reads the library"
[ -s "$tmp/abidw.err" ] && sed 's/^/# /' "$tmp/abidw.err"

if [ "$update" = 1 ]; then
	cp "$cur" "$here/$soname.abi"
	echo "# wrote $here/$soname.abi"
fi

# Every exported function is versioned.
unversioned=$(objdump -T "$lib" | awk '$2 == "g" && $NF ~ /^vgpu_/ && $(NF-1) !~ /^VGPU_/' | wc -l)
exported=$(objdump -T "$lib" | awk '$NF ~ /^vgpu_/' | wc -l)
ok "$([ "$unversioned" = 0 ] && [ "$exported" -gt 0 ] && echo 0 || echo 1)" \
	"all $exported exported vgpu_ symbols carry a VGPU_ version node ($unversioned do not)"
others=$(objdump -T "$lib" | awk '$2 == "g" && $4 != "*UND*" && $4 != "*ABS*" && $NF !~ /^vgpu_/' | wc -l)
ok "$([ "$others" = 0 ] && echo 0 || echo 1)" "nothing but vgpu_ symbols is exported ($others others)"

found_current=0
for base in "$here"/*.abi; do
	name=$(basename "$base" .abi)
	abidiff --suppressions "$here/opaque.suppr" --suppressions "$here/appended.suppr" "$base" "$cur" >"$tmp/diff" 2>&1
	rc=$?
	sed 's/^/# /' "$tmp/diff" | head -n 60
	if [ $((rc & 3)) != 0 ]; then
		ok 1 "abidiff $name: abidiff failed (status $rc)"
	elif [ "$name" = "$soname" ]; then
		found_current=1
		# abidiff sets bit 8 only for removals it deems incompatible; a
		# changed struct layout is "harmful" (bit 4) and shows as changed
		# functions or types. Against this soname only additions pass.
		changed=$(grep -E '(Functions|Variables) changes summary' "$tmp/diff" |
			grep -Ec '[1-9][0-9]* (Removed|Changed)')
		ok "$([ $((rc & 8)) = 0 ] && [ "$changed" = 0 ] && echo 0 || echo 1)" \
			"nothing removed or changed against $name, the ABI this soname shipped (status $rc)"
	elif [ $((rc & 8)) != 0 ]; then
		ok 0 "incompatible with the earlier release $name, and the soname moved on to $soname"
	else
		ok 0 "compatible with the earlier release $name"
	fi
done
ok "$([ "$found_current" = 1 ] && echo 0 || echo 1)" "a dump for $soname is kept in guest/abi/"

echo "1..$n"
[ "$failed" = 0 ]
