#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# fresh-root-check.sh - prove that the README's two commands pass on a bare
# Debian 12 machine. Each command runs in a fresh clone of HEAD (what CI
# would see: commits only), inside its own freshly bootstrapped Debian 12 root
# (debootstrap --variant=minbase from the same Debian registry as this
# machine's apt sources): a chroot with /proc and /sys mounted and /dev
# bound recursively, so that /dev/shm, /dev/pts and /dev/kvm come along, and
# UML and QEMU run inside it. Nothing of this machine's installed packages,
# caches (/var/cache/virtgpu-userptr) or build directories is visible there.
#
#   scripts/fresh-root-check.sh [--only ci|demo] [--warm] [--dir DIR] [--keep]
#                               [--refresh-base] [--ci-env]
#
#   --only ci|demo   run only `.ci/run` or only `scripts/run-demo.sh`
#                    (default: .ci/run, then the demo, each in its own root)
#   --warm           after the cold .ci/run, run it once more in another
#                    fresh clone in the same root: packages installed and the
#                    caches outside the clone (QEMU, ccache) filled, as on a
#                    CI machine that ran the tests before
#   --dir DIR        where the roots are made (default /var/tmp/vgpu-fresh)
#   --keep           keep the roots (and their logs) afterwards
#   --refresh-base   bootstrap the pristine root anew instead of reusing the
#                    one kept in DIR/base.tar from an earlier run
#   --ci-env         set CI=true in the roots, as CI does
#
# Prints each command's wall time and result, and the tail of its log
# (DIR/ci.log, DIR/demo.log are kept). Needs root. The host is left as it
# was: debootstrap, when it is not installed, is unpacked into a temporary
# directory rather than installed; every mount is undone and every process
# started in a root is stopped before the root is removed.
#
# Not part of the test command (it would run CI twice). Run it once per
# issue and after every change to the package list or the install steps.
set -uo pipefail

SELF=${0##*/}
top=$(cd "$(dirname "$0")/.." && pwd)

ONLY=""
DIR=/var/tmp/vgpu-fresh
KEEP=0
WARM=0
REFRESH=0
CI_ENV=0
SUITE=bookworm

die() { echo "$SELF: error: $*" >&2; exit 1; }
note() { echo "$SELF: $*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	--only) [ $# -ge 2 ] || die "--only needs ci or demo"
		case $2 in ci|demo) ONLY=$2 ;; *) die "--only wants ci or demo, not '$2'" ;; esac
		shift 2 ;;
	--dir) [ $# -ge 2 ] || die "--dir needs a directory"; DIR=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--warm) WARM=1; shift ;;
	--refresh-base) REFRESH=1; shift ;;
	--ci-env) CI_ENV=1; shift ;;
	-h|--help) sed -n '3,/^$/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (try --help)" ;;
	esac
done
[ "$(id -u)" -eq 0 ] || die "needs root (chroot, mounts, debootstrap)"
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
git -C "$top" rev-parse -q --verify HEAD >/dev/null || die "$top is not a git checkout"

# The Debian mirror this machine's apt uses (deb.debian.org by default).
MIRROR=$(grep -rhsE '^(URIs:|deb) ' /etc/apt/sources.list /etc/apt/sources.list.d/ |
	grep -oE 'https?://[^ ]*/debian/?( |$)' | head -n 1 | tr -d ' ')
MIRROR=${MIRROR:-http://deb.debian.org/debian}
MIRROR=${MIRROR%/}
SECURITY=${MIRROR%/debian}/debian-security

mkdir -p "$DIR"
TMP=$(mktemp -d "$DIR/.tmp.XXXXXX") || die "mktemp failed"
ROOTS=()

# ---- teardown: processes, mounts, roots --------------------------------------
# Every process whose root directory lies in ROOT.
procs_in() { # root
	local p r
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) || continue
		case $r in "$1"|"$1"/*) echo "${p#/proc/}" ;; esac
	done
}

teardown_root() { # root
	local root=$1 pids i m
	[ -d "$root" ] || return 0
	for i in 1 2 3; do
		pids=$(procs_in "$root")
		[ -n "$pids" ] || break
		# shellcheck disable=SC2086 # one pid a word
		kill -TERM $pids 2>/dev/null
		sleep 2
		pids=$(procs_in "$root")
		# shellcheck disable=SC2086
		[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
		sleep 1
	done
	# Deepest mount points first.
	for m in $(awk -v r="$root" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	if awk -v r="$root" '$5 == r || index($5, r "/") == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
		note "WARNING: mounts left under $root; not removing it"
		return 1
	fi
	if [ "$KEEP" = 1 ]; then
		note "kept $root"
	else
		rm -rf --one-file-system -- "$root"
	fi
}

cleanup() {
	local r
	for r in "${ROOTS[@]+"${ROOTS[@]}"}"; do
		teardown_root "$r"
	done
	rm -rf -- "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the pristine base root ---------------------------------------------------
# Sets DS to the debootstrap to run.
find_debootstrap() {
	if command -v debootstrap >/dev/null 2>&1; then
		DS=debootstrap
		return
	fi
	# Unpacked, not installed: the host keeps its package set.
	(cd "$TMP" && apt-get download -q debootstrap >/dev/null 2>&1) ||
		die "cannot download debootstrap"
	dpkg-deb -x "$TMP"/debootstrap_*.deb "$TMP/ds" || die "cannot unpack debootstrap"
	export DEBOOTSTRAP_DIR=$TMP/ds/usr/share/debootstrap
	DS=$TMP/ds/usr/sbin/debootstrap
}

BASE=$DIR/base.tar
if [ "$REFRESH" = 1 ] || [ ! -s "$BASE" ]; then
	t0=$SECONDS
	find_debootstrap
	staging=$TMP/base
	note "bootstrapping Debian $SUITE (minbase) from $MIRROR"
	if ! "$DS" --variant=minbase "$SUITE" "$staging" "$MIRROR" >"$TMP/debootstrap.log" 2>&1; then
		tail -n 30 "$TMP/debootstrap.log" >&2
		die "debootstrap failed"
	fi
	# The same Debian suites as this machine (the image's own Debian
	# sources), nothing the project's scripts add themselves.
	rm -f "$staging/etc/apt/sources.list"
	cat >"$staging/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	# apt settings of this machine kind (a mirror snapshot's dates, say),
	# not its package choices.
	for f in /etc/apt/apt.conf.d/*; do
		grep -qE '^Acquire::(Check-Valid-Until|Check-Date|http::Proxy|https::Proxy)' "$f" 2>/dev/null &&
			cp "$f" "$staging/etc/apt/apt.conf.d/"
	done
	tar -C "$staging" -cf "$BASE.new" . || die "cannot archive the base root"
	mv "$BASE.new" "$BASE"
	rm -rf --one-file-system -- "$staging"
	note "base root ready in $((SECONDS - t0)) s ($(du -h "$BASE" | cut -f1))"
fi

# ---- one command in one fresh root ----------------------------------------------
# run_in_root NAME COMMAND [NAME2]: a fresh root from the base, a fresh clone
# of HEAD in /root/virtgpu-userptr, COMMAND run there; sets RC and SECS. With
# NAME2, COMMAND runs once more afterwards, in a second fresh clone in the
# same root (log NAME2.log); sets RC2 and SECS2.
run_in_root() {
	local name=$1 cmd=$2 name2=${3:-} root=$DIR/root-$1 log=$DIR/$1.log t0 envs
	[ -e "$root" ] && { teardown_root "$root" || die "cannot clear $root"; }
	ROOTS+=("$root")
	mkdir -p "$root"
	tar -C "$root" -xf "$BASE" || die "cannot unpack the base root"
	cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
	cp /etc/hosts "$root/etc/hosts" 2>/dev/null
	git clone -q --no-hardlinks "$top" "$root/root/virtgpu-userptr" || die "git clone failed"
	# The root is a mount point of its own, as on a machine (a private
	# one: nothing mounted in the root propagates to the host, and what
	# tests mount there, such as run-guest.sh's mount namespaces, can set
	# its propagation).
	mount --bind "$root" "$root" || die "bind $root"
	mount --make-private "$root"
	mount -t proc proc "$root/proc" || die "mount proc"
	mount -t sysfs sysfs "$root/sys" || die "mount sysfs"
	mount --rbind /dev "$root/dev" || die "bind /dev"
	mount --make-rslave "$root/dev"
	envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		HOME=/root TERM=dumb LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive)
	[ "$CI_ENV" = 1 ] && envs+=(CI=true)
	for v in http_proxy https_proxy no_proxy; do
		[ -n "${!v:-}" ] && envs+=("$v=${!v}")
	done
	note "$name: $cmd (log: $log)"
	t0=$SECONDS
	env -i "${envs[@]}" chroot "$root" /bin/bash -c \
		"cd /root/virtgpu-userptr && $cmd" </dev/null >"$log" 2>&1
	RC=$?
	SECS=$((SECONDS - t0))
	if [ -n "$name2" ]; then
		git clone -q --no-hardlinks "$top" "$root/root/virtgpu-userptr-2" ||
			die "git clone failed"
		note "$name2: $cmd in a second clone, same root (log: $DIR/$name2.log)"
		t0=$SECONDS
		env -i "${envs[@]}" chroot "$root" /bin/bash -c \
			"cd /root/virtgpu-userptr-2 && $cmd" </dev/null >"$DIR/$name2.log" 2>&1
		RC2=$?
		SECS2=$((SECONDS - t0))
	fi
	teardown_root "$root"
}

fmt() { printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }

summary=()
overall=0
if [ -z "$ONLY" ] || [ "$ONLY" = ci ]; then
	if [ "$WARM" = 1 ]; then
		run_in_root ci .ci/run ci-warm
	else
		run_in_root ci .ci/run
	fi
	last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$DIR/ci.log" | tail -n 1)
	echo "----- .ci/run: last lines -----"
	tail -n 60 "$DIR/ci.log"
	summary+=(".ci/run, cold: exit $RC in $(fmt "$SECS") (${last:-no summary line})")
	[ "$RC" = 0 ] || overall=1
	if [ "$WARM" = 1 ]; then
		last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$DIR/ci-warm.log" | tail -n 1)
		echo "----- .ci/run again, warm: last lines -----"
		tail -n 45 "$DIR/ci-warm.log"
		summary+=(".ci/run, warm (second clone, same root): exit $RC2 in $(fmt "$SECS2")" \
			"(${last:-no summary line})")
		[ "$RC2" = 0 ] || overall=1
	fi
fi
if [ -z "$ONLY" ] || [ "$ONLY" = demo ]; then
	run_in_root demo scripts/run-demo.sh
	echo "----- scripts/run-demo.sh: last lines -----"
	tail -n 15 "$DIR/demo.log"
	summary+=("scripts/run-demo.sh: exit $RC in $(fmt "$SECS")")
	[ "$RC" = 0 ] || overall=1
fi
echo "===== fresh Debian $SUITE root, $(nproc) cores, HEAD $(git -C "$top" rev-parse --short HEAD)"
for s in "${summary[@]}"; do echo "$s"; done
exit "$overall"
