#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run-guest.sh - run one command inside a guest of the series' kernel,
# attached to a fresh virtgpu-hostd, and return the command's exit status.
# The guest is User-Mode Linux (--vmm uml, the default) or an x86_64 guest
# under QEMU (--vmm qemu); both see the host's root as their own (hostfs,
# virtio-9p), so CMD is any host program, with its shared libraries.
#
#   tests/system/run-guest.sh [--vmm uml|qemu] [options] -- CMD [ARGS...]
#   tests/system/run-guest.sh [--vmm uml|qemu] [options] --steps FILE --results DIR
#
# See usage() below or docs/guest.md for the options. Every step is bounded
# in time, and the daemon, the guest and the temporary directory are always
# cleaned up: on success, on failure, on timeout and on Ctrl-C.
#
# Exit status: CMD's exit status when the guest ran it and nothing else went
# wrong; 124 when the guest did not finish within --timeout (it is killed);
# 125 when the run could not be set up or the guest ended without reporting
# CMD's status (boot failure, panic, no render node); 1 when CMD succeeded
# but the kernel log showed a problem (KASAN, WARNING, lockdep, kmemleak, ...)
# or the daemon crashed, exited non-zero or printed a sanitizer report.

# cleanup and on_signal run from traps.
# shellcheck disable=SC2317
set -u
set -o pipefail

SELF=${0##*/}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

usage() {
	cat <<EOF
Usage: $SELF [OPTIONS] -- CMD [ARGS...]
       $SELF [OPTIONS] --steps FILE --results DIR

Boot a guest kernel with the host's root as its root, attached over
vhost-user to a fresh host daemon, run CMD in the guest (as root, in the
caller's current directory), print its output and exit with its status.

With --steps, one boot runs several programs one after the other (one boot,
one daemon and one kmemleak scan for all of them). FILE holds one step a
line, "NAME COMMAND": NAME is letters, digits, '.', '_' and '-', COMMAND a
shell command line the guest's bash runs. Each step's output and status go
to DIR (on the host): NAME.out, NAME.rc ("STATUS MILLISECONDS"; missing
when the step never ran or did not finish), NAME.kernel (kernel reports
printed while the step ran; missing when there were none), and for the boot
as a whole boot.kernel (reports at boot, after the steps, kmemleak),
daemon.log and boot.txt ("exit N", "kernel 0|1", "daemon 0|1").

  --vmm uml    User-Mode Linux (build/uml/linux; the root over hostfs)
  --vmm qemu   QEMU with the x86_64 guest kernel (build/x86, 47-bit user space,
               transparent huge pages always on; the root over virtio-9p);
               QEMU (qemu/build.sh, cached) and the kernel
               (kernel/build-x86.sh) are built first when missing or stale.
               KVM when /dev/kvm is usable, else TCG

Options:
  --vmm uml|qemu        the VMM (default uml)
  --smp N               guest CPUs (qemu only; default 2)
  --accel auto|kvm|tcg  QEMU's accelerator (qemu only; default auto: KVM when
                        /dev/kvm is usable and QEMU has it, else TCG)
  --qemu PATH           QEMU binary (qemu only; default: qemu/build.sh's)
  --no-build            do not build QEMU or the x86_64 kernel (qemu only)
  --no-userptr          start the daemon with --no-userptr
  --access-platform     start the daemon with --access-platform and give QEMU's
                        device iommu_platform=on: the guest driver maps
                        through the DMA API (qemu only; no vIOMMU)
  --timeout SECS        bound on the guest run, boot to poweroff (default 300)
  --kernel PATH         kernel (default build/uml/linux, or
                        build/x86/arch/x86/boot/bzImage with --vmm qemu)
  --mem SIZE            guest memory, e.g. 512M (default 512M)
  --append ARGS         extra kernel command-line arguments
  --daemon-args ARGS    extra daemon arguments (split on white space)
  --env NAME=VALUE      set an environment variable for CMD (repeatable)
  --guest-tmpfs         mount a guest-only tmpfs (guest memory, no host I/O) and
                        give its path to CMD as VGPU_GUEST_TMP
  --no-wait-dri         do not wait for a DRM render node before CMD
  --no-daemon           do not start the daemon nor attach the GPU
  --socket PATH         attach the GPU to a daemon already listening on PATH
                        instead of starting one (it is neither checked nor
                        stopped: the caller owns it)
  --hook CMD            run 'bash -c CMD' on the host once the guest has
                        started, in the background (for fault injection); it
                        sees VGPU_RUN_DIR, VGPU_SOCK, VGPU_DAEMON_PID (empty
                        with --socket), VGPU_GUEST_PID (the 'timeout' in front
                        of the kernel or QEMU), VGPU_VMM and, with UML,
                        VGPU_UML_DIR (its pid file holds the
                        kernel's main pid, leader of the guest's processes:
                        kill -KILL -- -PID kills the guest); its output goes to the run directory's
                        hook.log, printed at the end; after the guest it
                        gets 30 s to finish, then it is stopped
  --allow-warnings      do not fail on kernel warnings/KASAN/kmemleak reports
  --no-kmemleak         skip the kmemleak scan after CMD
  --kmemleak-delay SECS wait before the kmemleak scan (default 6; kmemleak
                        reports only objects older than 5 s)
  --steps FILE          run the steps of FILE in one boot (see above)
  --results DIR         where --steps leaves its results (created; emptied first)
  --keep                keep the temporary directory (its path is printed)
  --verbose             show the kernel console and the daemon log in full
  -h, --help            this help

UML's '--mem' is its physical memory; QEMU's is a shared memfd, the guest RAM
that the daemon maps. Options that apply to one VMM only are refused with the
other. What the guest needs from the host root (bash, coreutils, the program and
its libraries) is read through hostfs or 9p, so the same command line works
under both.

Environment: VGPU_HOSTD overrides the daemon binary
(default build/meson/host/virtgpu-hostd); TMPDIR where the run directory is made.
CMD runs with VGPU_RUN_DIR set to the run directory (the guest sees the host's
files, so a guest program can leave a file there for a --hook).

Exit status: CMD's status; 124 guest timed out; 125 setup failure or the
guest ended without CMD's status; 1 CMD succeeded but the kernel log or the
daemon reported a problem (see the printed report). With --steps: 0 when
every step exited 0 and nothing was reported, 1 otherwise (124, 125 as above).
EOF
}

die_usage() {
	echo "$SELF: $*" >&2
	echo "Try '$SELF --help'." >&2
	exit 2
}

# ---- options ---------------------------------------------------------------
VMM=uml
SMP=""
ACCEL=""
QEMU=""
BUILD=1
NO_USERPTR=0
ACCESS_PLATFORM=0
TIMEOUT=300
KERNEL=""
MEM=512M
APPEND=""
DAEMON_ARGS=""
GUEST_TMPFS=0
WAIT_DRI=1
USE_DAEMON=1
ALLOW_WARNINGS=0
KMEMLEAK=1
KMEMLEAK_DELAY=6
KEEP=0
VERBOSE=0
ENVS=()
EXT_SOCK=""
HOOK=""
STEPS=""
RESULTS=""

need_arg() {
	[ "$2" -ge 2 ] || die_usage "option '$1' needs an argument"
}

while [ $# -gt 0 ]; do
	case $1 in
	--vmm) need_arg "$1" $#; VMM=$2; shift 2 ;;
	--vmm=*) VMM=${1#*=}; shift ;;
	--smp) need_arg "$1" $#; SMP=$2; shift 2 ;;
	--smp=*) SMP=${1#*=}; shift ;;
	--accel) need_arg "$1" $#; ACCEL=$2; shift 2 ;;
	--accel=*) ACCEL=${1#*=}; shift ;;
	--qemu) need_arg "$1" $#; QEMU=$2; shift 2 ;;
	--qemu=*) QEMU=${1#*=}; shift ;;
	--no-build) BUILD=0; shift ;;
	--no-userptr) NO_USERPTR=1; shift ;;
	--access-platform) ACCESS_PLATFORM=1; shift ;;
	--timeout) need_arg "$1" $#; TIMEOUT=$2; shift 2 ;;
	--timeout=*) TIMEOUT=${1#*=}; shift ;;
	--kernel) need_arg "$1" $#; KERNEL=$2; shift 2 ;;
	--kernel=*) KERNEL=${1#*=}; shift ;;
	--mem) need_arg "$1" $#; MEM=$2; shift 2 ;;
	--mem=*) MEM=${1#*=}; shift ;;
	--append) need_arg "$1" $#; APPEND="$APPEND $2"; shift 2 ;;
	--append=*) APPEND="$APPEND ${1#*=}"; shift ;;
	--daemon-args) need_arg "$1" $#; DAEMON_ARGS="$DAEMON_ARGS $2"; shift 2 ;;
	--daemon-args=*) DAEMON_ARGS="$DAEMON_ARGS ${1#*=}"; shift ;;
	--env) need_arg "$1" $#; ENVS+=("$2"); shift 2 ;;
	--env=*) ENVS+=("${1#*=}"); shift ;;
	--guest-tmpfs) GUEST_TMPFS=1; shift ;;
	--no-wait-dri) WAIT_DRI=0; shift ;;
	--no-daemon) USE_DAEMON=0; WAIT_DRI=0; shift ;;
	--socket) need_arg "$1" $#; EXT_SOCK=$2; shift 2 ;;
	--socket=*) EXT_SOCK=${1#*=}; shift ;;
	--hook) need_arg "$1" $#; HOOK=$2; shift 2 ;;
	--hook=*) HOOK=${1#*=}; shift ;;
	--allow-warnings) ALLOW_WARNINGS=1; shift ;;
	--no-kmemleak) KMEMLEAK=0; shift ;;
	--kmemleak-delay) need_arg "$1" $#; KMEMLEAK_DELAY=$2; shift 2 ;;
	--kmemleak-delay=*) KMEMLEAK_DELAY=${1#*=}; shift ;;
	--steps) need_arg "$1" $#; STEPS=$2; shift 2 ;;
	--steps=*) STEPS=${1#*=}; shift ;;
	--results) need_arg "$1" $#; RESULTS=$2; shift 2 ;;
	--results=*) RESULTS=${1#*=}; shift ;;
	--keep) KEEP=1; shift ;;
	--verbose|-v) VERBOSE=1; shift ;;
	-h|--help) usage; exit 0 ;;
	--) shift; break ;;
	-*) die_usage "unknown option '$1'" ;;
	*) break ;;
	esac
done

if [ -n "$STEPS" ]; then
	[ $# -eq 0 ] || die_usage "--steps and a command exclude each other"
	[ -n "$RESULTS" ] || die_usage "--steps needs --results DIR"
	[ -r "$STEPS" ] || die_usage "steps file '$STEPS' is not readable"
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in
		''|'#'*) ;;
		*' '*) name=${line%% *}
			case $name in *[!A-Za-z0-9._-]*|.*|boot|daemon) die_usage "bad step name '$name' in $STEPS" ;; esac ;;
		*) die_usage "step line without a command in $STEPS: '$line'" ;;
		esac
	done <"$STEPS"
	grep -qvE '^(#|$)' "$STEPS" || die_usage "no step in $STEPS"
	[ -z "$(grep -vE '^(#|$)' "$STEPS" | cut -d' ' -f1 | sort | uniq -d)" ] ||
		die_usage "a step name appears twice in $STEPS"
else
	[ -z "$RESULTS" ] || die_usage "--results needs --steps"
	[ $# -ge 1 ] || die_usage "no command given (put it after --)"
fi
case $VMM in
uml)
	[ -z "$SMP" ] || die_usage "--smp applies to --vmm qemu only"
	[ -z "$QEMU" ] || die_usage "--qemu applies to --vmm qemu only"
	[ -z "$ACCEL" ] || die_usage "--accel applies to --vmm qemu only"
	[ -n "$KERNEL" ] || KERNEL=$REPO_ROOT/build/uml/linux ;;
qemu)
	[ -n "$SMP" ] || SMP=2
	case $SMP in ''|*[!0-9]*|0) die_usage "--smp wants a positive number, not '$SMP'" ;; esac
	[ -n "$ACCEL" ] || ACCEL=auto
	case $ACCEL in auto|kvm|tcg) ;; *) die_usage "--accel wants auto, kvm or tcg, not '$ACCEL'" ;; esac ;;
*) die_usage "--vmm wants uml or qemu, not '$VMM'" ;;
esac
case $TIMEOUT in ''|*[!0-9]*|0) die_usage "--timeout wants a positive number of seconds, not '$TIMEOUT'" ;; esac
case $KMEMLEAK_DELAY in ''|*[!0-9]*) die_usage "--kmemleak-delay wants a number of seconds, not '$KMEMLEAK_DELAY'" ;; esac
case $MEM in ''|*[!0-9KMGkmg]*|[!0-9]*) die_usage "--mem wants a size such as 512M, not '$MEM'" ;; esac
for e in "${ENVS[@]+"${ENVS[@]}"}"; do
	case $e in
	[A-Za-z_]*=*) name=${e%%=*}
		case $name in *[!A-Za-z0-9_]*) die_usage "bad --env '$e'" ;; esac ;;
	*) die_usage "--env wants NAME=VALUE, not '$e'" ;;
	esac
done

HOSTD=${VGPU_HOSTD:-$REPO_ROOT/build/meson/host/virtgpu-hostd}
if [ -n "$EXT_SOCK" ]; then
	[ "$USE_DAEMON" = 1 ] || die_usage "--socket and --no-daemon exclude each other"
	[ -S "$EXT_SOCK" ] || { echo "$SELF: '$EXT_SOCK' is not a socket" >&2; exit 125; }
	case $EXT_SOCK in *[[:space:]:]*) die_usage "--socket path must not contain white space or ':'" ;; esac
fi

# Absolute paths: the guest sees the host's tree at the same paths.
abspath() {
	case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac
}
HOSTD=$(abspath "$HOSTD")
if [ -n "$STEPS" ]; then
	RESULTS=$(abspath "$RESULTS")
	mkdir -p "$RESULTS" || { echo "$SELF: cannot create $RESULTS" >&2; exit 125; }
	rm -f -- "$RESULTS"/*.out "$RESULTS"/*.rc "$RESULTS"/*.kernel "$RESULTS"/boot.txt \
		"$RESULTS"/daemon.log
fi

if [ "$VMM" = qemu ]; then
	# Build what is missing or stale first (both are no-ops when current).
	if [ "$BUILD" = 1 ] && [ -z "$QEMU" ]; then
		QEMU=$("$REPO_ROOT/qemu/build.sh") || { echo "$SELF: building QEMU failed" >&2; exit 125; }
	elif [ -z "$QEMU" ]; then
		QEMU=$("$REPO_ROOT/qemu/build.sh" --print)
	fi
	if [ -z "$KERNEL" ]; then
		KERNEL=$REPO_ROOT/build/x86/arch/x86/boot/bzImage
		if [ "$BUILD" = 1 ]; then
			"$REPO_ROOT/kernel/build-x86.sh" --if-stale >&2 ||
				{ echo "$SELF: building the x86_64 kernel failed" >&2; exit 125; }
		fi
	fi
	QEMU=$(abspath "$QEMU")
	if [ ! -x "$QEMU" ]; then
		echo "$SELF: QEMU '$QEMU' not found or not executable (run qemu/build.sh, or pass --qemu)" >&2
		exit 125
	fi
	if [ ! -r "$KERNEL" ]; then
		echo "$SELF: kernel '$KERNEL' not found (run kernel/build-x86.sh, or pass --kernel)" >&2
		exit 125
	fi
fi
if [ "$VMM" = uml ] && [ "$ACCESS_PLATFORM" = 1 ]; then
	echo "$SELF: --access-platform needs --vmm qemu" >&2
	exit 2
fi
KERNEL=$(abspath "$KERNEL")
if [ "$VMM" = uml ] && [ ! -x "$KERNEL" ]; then
	echo "$SELF: UML kernel '$KERNEL' not found or not executable (build it first, or pass --kernel)" >&2
	exit 125
fi
if [ "$USE_DAEMON" = 1 ] && [ -z "$EXT_SOCK" ] && [ ! -x "$HOSTD" ]; then
	echo "$SELF: daemon '$HOSTD' not found or not executable (build it first, or set VGPU_HOSTD)" >&2
	exit 125
fi
for tool in timeout setsid mktemp; do
	command -v "$tool" >/dev/null 2>&1 || { echo "$SELF: '$tool' is missing" >&2; exit 125; }
done

# ---- state and cleanup -----------------------------------------------------
RUN_DIR=""
UML_DIR=""
DAEMON_PID=""
GUEST_PID=""
TAIL_PID=""
HOOK_PID=""
CLEANED=0
STOP_RC=0

# Stop a process group (guest) or process (daemon) and wait for it, bounded.
stop_pid() { # pid signal-target(group|pid) grace-seconds
	local pid=$1 kind=$2 grace=$3 i
	STOP_RC=0
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; STOP_RC=$?; return 0; }
	if [ "$kind" = group ]; then kill -TERM -- "-$pid" 2>/dev/null; else kill -TERM "$pid" 2>/dev/null; fi
	for ((i = 0; i < grace * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		if [ "$kind" = group ]; then kill -KILL -- "-$pid" 2>/dev/null; else kill -KILL "$pid" 2>/dev/null; fi
	fi
	wait "$pid" 2>/dev/null
	STOP_RC=$?
}

# The UML kernel's main process starts a session of its own (its pid is in
# UML_DIR/pid): when the 'timeout' in front of it is killed without being
# able to pass the signal on, it would go on running. Kill its group.
kill_uml() {
	local pid
	[ -n "$UML_DIR" ] && [ -r "$UML_DIR/pid" ] || return 0
	pid=$(tr -dc '0-9' <"$UML_DIR/pid")
	[ -n "$pid" ] && [ "$pid" -gt 1 ] || return 0
	if kill -0 "$pid" 2>/dev/null && grep -qF "$RUN_DIR" "/proc/$pid/cmdline" 2>/dev/null; then
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
	fi
}

cleanup() {
	[ "$CLEANED" = 1 ] && return 0
	CLEANED=1
	stop_pid "$GUEST_PID" group 3
	GUEST_PID=""
	kill_uml
	stop_pid "$HOOK_PID" group 1
	HOOK_PID=""
	if [ -n "$TAIL_PID" ]; then
		kill "$TAIL_PID" 2>/dev/null
		wait "$TAIL_PID" 2>/dev/null
		TAIL_PID=""
	fi
	stop_pid "$DAEMON_PID" pid 5
	DAEMON_PID=""
	if [ -n "$RUN_DIR" ] && [ -d "$RUN_DIR" ]; then
		if [ "$KEEP" = 1 ]; then
			echo "$SELF: kept $RUN_DIR" >&2
		else
			rm -rf -- "$RUN_DIR"
		fi
	fi
}

on_signal() {
	trap - INT TERM
	echo "$SELF: interrupted, cleaning up" >&2
	cleanup
	exit "$1"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-run.XXXXXXXX") || { echo "$SELF: mktemp failed" >&2; exit 125; }
chmod 755 "$RUN_DIR"
SOCK=$RUN_DIR/gpu.sock
case $RUN_DIR in
*[[:space:]]*) echo "$SELF: '$RUN_DIR' has white space: the kernel command line cannot carry it (set TMPDIR)" >&2
	exit 125 ;;
esac
if [ ${#SOCK} -ge 100 ]; then
	echo "$SELF: socket path '$SOCK' too long for a unix socket (set TMPDIR shorter)" >&2
	exit 125
fi

# ---- daemon ----------------------------------------------------------------
print_daemon_log() {
	[ -s "$RUN_DIR/hostd.log" ] || return 0
	echo "----- daemon log ($HOSTD) -----" >&2
	cat "$RUN_DIR/hostd.log" >&2
	echo "----- end of daemon log -----" >&2
}

if [ -n "$EXT_SOCK" ]; then
	SOCK=$(abspath "$EXT_SOCK")
elif [ "$USE_DAEMON" = 1 ]; then
	daemon_cmd=("$HOSTD" --socket "$SOCK")
	[ "$NO_USERPTR" = 1 ] && daemon_cmd+=(--no-userptr)
	[ "$ACCESS_PLATFORM" = 1 ] && daemon_cmd+=(--access-platform)
	# shellcheck disable=SC2206 # --daemon-args is split on white space on purpose
	daemon_cmd+=($DAEMON_ARGS)
	setsid "${daemon_cmd[@]}" </dev/null >"$RUN_DIR/hostd.log" 2>&1 &
	DAEMON_PID=$!
	# Wait for its socket, bounded (10 s).
	for ((i = 0; i < 100; i++)); do
		[ -S "$SOCK" ] && break
		if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			wait "$DAEMON_PID"; rc=$?
			DAEMON_PID=""
			echo "$SELF: the daemon exited ($rc) before creating its socket" >&2
			print_daemon_log
			exit 125
		fi
		sleep 0.1
	done
	if [ ! -S "$SOCK" ]; then
		echo "$SELF: the daemon did not create $SOCK within 10 s" >&2
		print_daemon_log
		exit 125
	fi
fi

# ---- init script -----------------------------------------------------------
START_MARK="@@vgpu-run: start@@"
END_MARK="@@vgpu-run: end@@"
INIT=$RUN_DIR/init.sh
[ "$GUEST_TMPFS" = 1 ] && mkdir "$RUN_DIR/tmpfs"
{
	echo '#!/bin/bash'
	echo '# Generated by run-guest.sh: PID 1 of the guest.'
	echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
	echo 'export HOME=/root LANG=C.UTF-8 TERM=dumb'
	printf 'RUN_DIR=%q\n' "$RUN_DIR"
	printf 'export VGPU_RUN_DIR=%q\n' "$RUN_DIR"
	printf 'CWD=%q\n' "$PWD"
	printf 'WAIT_DRI=%d\nGUEST_TMPFS=%d\nKMEMLEAK=%d\nKMEMLEAK_DELAY=%d\n' \
		"$WAIT_DRI" "$GUEST_TMPFS" "$KMEMLEAK" "$KMEMLEAK_DELAY"
	printf 'START_MARK=%q\nEND_MARK=%q\nVMM=%q\n' "$START_MARK" "$END_MARK" "$VMM"
	for e in "${ENVS[@]+"${ENVS[@]}"}"; do
		printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"
	done
	cat <<'EOF'
# Open the result files before anything can hide the run directory.
exec 7>"$RUN_DIR/status" 8>"$RUN_DIR/dmesg.txt" 9>"$RUN_DIR/kmemleak.txt"
finish() {
	sync
	if [ "$VMM" = qemu ]; then
		# No ACPI: a reboot ends QEMU (-no-reboot), a power-off only halts.
		# Only ever through the guest's own procfs (its command line
		# names this script).
		grep -qF "init=$0" /proc/cmdline 2>/dev/null &&
			echo b >/proc/sysrq-trigger 2>/dev/null
		exit 1
	else
		poweroff -f >/dev/null 2>&1
		echo o >/proc/sysrq-trigger 2>/dev/null
	fi
	sleep 30
}
if [ "$VMM" = qemu ]; then
	# The root is the host's over 9p, without the host's /proc, /sys and
	# /dev (the runner exports a copy of the mount tree without them):
	# the kernel mounted devtmpfs, the rest is mounted here.
	mount -t proc proc /proc || exit 1
	mount -t sysfs sysfs /sys || exit 1
	mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev || exit 1
else
	mountpoint -q /proc || mount -t proc proc /proc
	mountpoint -q /sys || mount -t sysfs sysfs /sys
	mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
fi
if [ "$GUEST_TMPFS" = 1 ]; then
	# On a directory of the run's own, not over /tmp: the caller's
	# directory (and everything CMD writes back) may well be under /tmp.
	mount -t tmpfs -o mode=1777 tmpfs "$RUN_DIR/tmpfs" || finish
	export VGPU_GUEST_TMP=$RUN_DIR/tmpfs
fi
if [ "$WAIT_DRI" = 1 ]; then
	found=""
	for _ in $(seq 100); do
		for n in /dev/dri/renderD*; do
			[ -e "$n" ] && found=$n && break 2
		done
		sleep 0.1
	done
	if [ -z "$found" ]; then
		echo "run-guest: no DRM render node appeared in the guest within 10 s" >&2
		ls -l /dev/dri >&2 2>/dev/null
		dmesg >&8 2>/dev/null
		finish
	fi
fi
if [ "$KMEMLEAK" = 1 ] && [ -w /sys/kernel/debug/kmemleak ]; then
	echo clear >/sys/kernel/debug/kmemleak 2>/dev/null
fi
cd "$CWD" || { echo "run-guest: cannot cd to $CWD" >&2; finish; }
echo "$START_MARK"
EOF
	if [ -n "$STEPS" ]; then
		# Each step marks the kernel log where it begins, so that a
		# report can be put down to the step that caused it.
		cat <<'EOF'
mkdir -p "$RUN_DIR/steps"
while IFS= read -r line <&3; do
	case $line in ''|'#'*) continue ;; esac
	name=${line%% *}
	echo "@@vgpu-step: $name@@" >/dev/kmsg 2>/dev/null
	echo "run-guest: step $name"
	t0=$(date +%s%N)
	bash -c "${line#* }" </dev/null >"$RUN_DIR/steps/$name.out" 2>&1 3<&- 7>&- 8>&- 9>&-
	rc=$?
	echo "$rc $((($(date +%s%N) - t0) / 1000000))" >"$RUN_DIR/steps/$name.rc"
	echo "run-guest: step $name: exit $rc"
done 3<"$RUN_DIR/steps.list"
echo "@@vgpu-step: -end-@@" >/dev/kmsg 2>/dev/null
rc=0
EOF
	else
		printf '%q ' "$@"
		echo '</dev/null 7>&- 8>&- 9>&-'
		echo 'rc=$?'
	fi
	cat <<'EOF'
echo "$END_MARK $rc"
echo "$rc" >&7
if [ "$KMEMLEAK" = 1 ] && [ -w /sys/kernel/debug/kmemleak ]; then
	sleep "$KMEMLEAK_DELAY"
	echo scan >/sys/kernel/debug/kmemleak 2>/dev/null
	cat /sys/kernel/debug/kmemleak >&9 2>/dev/null
fi
dmesg >&8 2>/dev/null
finish
EOF
} >"$INIT"
chmod 755 "$INIT"
[ -n "$STEPS" ] && cp "$STEPS" "$RUN_DIR/steps.list"

# ---- guest -----------------------------------------------------------------
# Whether KVM boots this kernel: /dev/kvm can exist and still not run a guest
# (nested virtualisation with a partial CPU model). A probe boots the kernel
# with no root to its panic, bounded (15 s); the answer is kept for this host
# boot, this QEMU and this kernel.
kvm_works() {
	local cache key verdict=no
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
	"$QEMU" -accel help 2>/dev/null | grep -qx kvm || return 1
	cache=${VGPU_CACHE:-/var/cache/virtgpu-userptr}
	key=$( { cat /proc/sys/kernel/random/boot_id; echo "$QEMU"; stat -c %Y-%s "$QEMU" "$KERNEL"; } |
		sha256sum | cut -c1-16)
	if [ -r "$cache/kvm-probe-$key" ]; then
		[ "$(cat "$cache/kvm-probe-$key")" = yes ]
		return
	fi
	if timeout -k 2 15 "$QEMU" -machine pc -accel kvm -m 256M -nodefaults -display none \
		-no-reboot -monitor none -serial "file:$RUN_DIR/kvm-probe.log" \
		-L /usr/share/seabios -L /usr/share/qemu -kernel "$KERNEL" \
		-append "console=ttyS0 panic=-1 root=/dev/vgpu-none" >/dev/null 2>&1 &&
		grep -q 'Kernel panic' "$RUN_DIR/kvm-probe.log"; then
		verdict=yes
	fi
	mkdir -p "$cache" 2>/dev/null && echo "$verdict" >"$cache/kvm-probe-$key" 2>/dev/null
	[ "$verdict" = no ] && echo "$SELF: /dev/kvm does not boot this kernel here; using TCG" >&2
	[ "$verdict" = yes ]
}

CONSOLE=$RUN_DIR/console.log
: >"$CONSOLE"
if [ "$VMM" = uml ]; then
	kargs=("mem=$MEM" root=/dev/root rootfstype=hostfs rootflags=/ rw
		"init=$INIT" con=null "con0=fd:0,fd:1" "uml_dir=$RUN_DIR/uml" "umid=vgpu$$")
	[ "$USE_DAEMON" = 1 ] && kargs+=("virtio_uml.device=$SOCK:16")
else
	# The host's root over virtio-9p is the guest's root, as hostfs is UML's.
	kargs=(console=ttyS0 root=vgpuroot rootfstype=9p
		rootflags=trans=virtio,version=9p2000.L,msize=262144,cache=mmap rw
		"init=$INIT" panic=-1)
fi
[ "$VERBOSE" = 1 ] || kargs+=(quiet)
# shellcheck disable=SC2206 # --append is split on white space on purpose
kargs+=($APPEND)

start_s=$(date +%s)
if [ "$VMM" = uml ]; then
	mkdir -p "$RUN_DIR/uml"
	UML_DIR=$RUN_DIR/uml/vgpu$$
	# UML keeps guest RAM in an unlinked file under TMPDIR: tmpfs is fastest.
	UML_TMP=$RUN_DIR
	[ -d /dev/shm ] && [ -w /dev/shm ] && UML_TMP=/dev/shm
	TMPDIR=$UML_TMP setsid timeout -k 5 "$TIMEOUT" "$KERNEL" "${kargs[@]}" </dev/null >"$CONSOLE" 2>&1 &
else
	if [ "$ACCEL" = auto ]; then
		ACCEL=tcg
		kvm_works && ACCEL=kvm
	fi
	if [ "$ACCEL" = kvm ]; then
		accel=(-accel kvm)
	else
		accel=(-accel tcg,thread=multi -cpu Nehalem)
	fi
	echo "$SELF: QEMU with $ACCEL" >&2
	if [ "$ACCEL" = tcg ]; then
		# The guest has no ACPI PM timer or HPET, and under TCG its TSC
		# calibration against the PIT fails, leaving 4 ms jiffies as the
		# clock. TCG's TSC is the host's: give the guest its rate.
		khz=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
		[ -n "$khz" ] && [ "$khz" -gt 0 ] && kargs+=(tsc=reliable "tsc_early_khz=$khz")
	fi
	# Guest RAM is a shared memfd: the daemon maps it (vhost-user).
	qargs=(-machine pc,memory-backend=ram "${accel[@]}" -smp "$SMP" -m "$MEM"
		-object "memory-backend-memfd,id=ram,size=$MEM,share=on"
		-nodefaults -display none -no-reboot -monitor none
		-serial "file:$CONSOLE"
		-L /usr/share/seabios -L /usr/share/qemu
		-fsdev "local,id=root,path=$RUN_DIR/root,security_model=none,multidevs=remap"
		-device virtio-9p-pci,fsdev=root,mount_tag=vgpuroot
		-kernel "$KERNEL" -append "${kargs[*]}")
	iommu=
	[ "$ACCESS_PLATFORM" = 1 ] && iommu=,iommu_platform=on
	if [ "$USE_DAEMON" = 1 ]; then
		# The generic vhost-user device: virtio id 16 (GPU), two queues, and
		# the config space of struct virtio_gpu_config (16 bytes).
		qargs+=(-chardev "socket,id=vgpu,path=$SOCK"
			-device "vhost-user-device-pci,chardev=vgpu,virtio-id=16,num_vqs=2,vq_size=256,config_size=16$iommu")
	fi
	# The guest's root: the host's mount tree, copied in a mount namespace
	# of QEMU's own, less /proc, /sys and /dev. The guest must never reach
	# the host's pseudo-files (a write to /proc/sysrq-trigger over 9p would
	# be the host's).
	mkdir "$RUN_DIR/root"
	if [ "$VERBOSE" = 1 ]; then
		echo "$SELF: $QEMU ${qargs[*]}" >&2
	fi
	setsid timeout -k 5 "$TIMEOUT" unshare --mount --propagation private -- sh -c '
		root=$1; shift
		mount --rbind / "$root" || exit 125
		for d in proc sys dev; do
			umount -R -l "$root/$d" || exit 125
		done
		exec "$@"' sh "$RUN_DIR/root" "$QEMU" "${qargs[@]}" </dev/null >"$RUN_DIR/qemu.log" 2>&1 &
fi
GUEST_PID=$!

# Stream the console while the guest runs: everything with --verbose, else
# only what CMD printed (between the markers). The guest's tty ends lines
# with CR LF: drop the CR so that the output reads like a local program's.
tail -n +1 -s 0.2 -f --pid="$GUEST_PID" "$CONSOLE" | awk -v s="$START_MARK" -v e="$END_MARK" -v all="$VERBOSE" '
	{ sub(/\r$/, "") }
	all == 1 { print; fflush(); next }
	index($0, e) == 1 { on = 0; next }
	on { print; fflush() }
	index($0, s) == 1 { on = 1 }' &
TAIL_PID=$!

if [ -n "$HOOK" ]; then
	VGPU_RUN_DIR=$RUN_DIR VGPU_SOCK=$SOCK VGPU_DAEMON_PID=$DAEMON_PID VGPU_GUEST_PID=$GUEST_PID \
		VGPU_UML_DIR=$UML_DIR VGPU_VMM=$VMM \
		setsid bash -c "$HOOK" </dev/null >"$RUN_DIR/hook.log" 2>&1 &
	HOOK_PID=$!
fi

wait "$GUEST_PID" 2>/dev/null
guest_rc=$?
GUEST_PID=""
kill_uml
wait "$TAIL_PID" 2>/dev/null
TAIL_PID=""
elapsed=$(($(date +%s) - start_s))

# ---- verdict ---------------------------------------------------------------
final=0
problem=0
status=$(tr -d "[:space:]" 2>/dev/null <"$RUN_DIR/status")

if [ "$guest_rc" = 124 ] || { [ "$guest_rc" = 137 ] && [ "$elapsed" -ge "$TIMEOUT" ]; }; then
	echo "$SELF: TIMEOUT: the guest did not finish within ${TIMEOUT} s and was killed" >&2
	final=124
elif [ -z "$status" ]; then
	echo "$SELF: the guest ended (exit $guest_rc) without reporting CMD's exit status" >&2
	final=125
else
	case $status in
	*[!0-9]*) echo "$SELF: bad status '$status' from the guest" >&2; final=125 ;;
	*) final=$status ;;
	esac
fi

if [ "$VERBOSE" = 0 ] && ! grep -qF "$START_MARK" "$CONSOLE"; then
	echo "----- guest console -----" >&2
	cat "$CONSOLE" >&2
	echo "----- end of guest console -----" >&2
fi
if [ -s "$RUN_DIR/qemu.log" ] && { [ "$final" != 0 ] || [ "$VERBOSE" = 1 ]; }; then
	echo "----- QEMU ($QEMU) -----" >&2
	cat "$RUN_DIR/qemu.log" >&2
	echo "----- end of QEMU's output -----" >&2
fi

# Kernel problems: the guest's dmesg when it got that far, else its console.
KPAT='BUG: KASAN|BUG: |WARNING: |possible recursive locking|possible circular locking|inconsistent lock state|Kernel panic|general protection|Oops|UBSAN:|kmemleak: [0-9]+ new suspected|unreferenced object'
if [ -s "$RUN_DIR/dmesg.txt" ]; then
	klog=$RUN_DIR/dmesg.txt
else
	klog=$CONSOLE
fi
# arch/um's virt-pci warns once at boot when the kernel was configured
# without CONFIG_UML_PCI_OVER_VIRTIO_DEVICE_ID; that is about the kernel's
# configuration, not about the run, so that one line is not a finding.
grep -v 'WARNING: CPU: [0-9]* PID: [0-9]* at arch/um/drivers/virt-pci.c' "$klog" >"$RUN_DIR/klog.txt"
klog=$RUN_DIR/klog.txt
if grep -qE "$KPAT" "$klog" || grep -qE 'Kernel panic|BUG: |general protection' "$CONSOLE" \
	|| [ -s "$RUN_DIR/kmemleak.txt" ]; then
	echo "$SELF: the guest kernel reported a problem (lines around each report; --keep keeps the full log):" >&2
	echo "----- kernel log -----" >&2
	{
		grep -E -B 3 -A 25 "$KPAT" "$klog"
		# A panic or a hang keeps dmesg from being saved: the console
		# then has what there is.
		[ -s "$RUN_DIR/dmesg.txt" ] && grep -E -A 25 'Kernel panic|BUG: |general protection' "$CONSOLE"
	} | head -n 400 >&2
	if [ -s "$RUN_DIR/kmemleak.txt" ]; then
		echo "----- kmemleak -----" >&2
		cat "$RUN_DIR/kmemleak.txt" >&2
	fi
	echo "----- end of kernel report -----" >&2
	[ "$ALLOW_WARNINGS" = 1 ] || problem=1
fi

# --steps: the kernel log cut at the steps' markers; each step's reports
# go to its NAME.kernel, those of the boot, the end and kmemleak to
# boot.kernel.
boot_kernel=0
if [ -n "$STEPS" ]; then
	mkdir -p "$RUN_DIR/seg"
	awk -v dir="$RUN_DIR/seg" '
		BEGIN { seg = "boot" }
		{
			if ((i = index($0, "@@vgpu-step: ")) > 0) {
				seg = substr($0, i + 13)
				sub(/@@.*$/, "", seg)
				if (seg == "-end-")
					seg = "boot"
				next
			}
			print > (dir "/" seg ".log")
		}' "$klog"
	for f in "$RUN_DIR"/seg/*.log; do
		[ -e "$f" ] || continue
		name=${f##*/}
		name=${name%.log}
		grep -E -B 3 -A 25 "$KPAT" "$f" >"$RUN_DIR/seg/$name.rep"
		[ -s "$RUN_DIR/seg/$name.rep" ] && cp "$RUN_DIR/seg/$name.rep" "$RESULTS/$name.kernel"
	done
	if ! [ -s "$RUN_DIR/dmesg.txt" ] && grep -qE 'Kernel panic|BUG: |general protection' "$CONSOLE"; then
		grep -E -A 25 'Kernel panic|BUG: |general protection' "$CONSOLE" >>"$RESULTS/boot.kernel"
	fi
	if [ -s "$RUN_DIR/kmemleak.txt" ]; then
		{ echo "----- kmemleak -----"; cat "$RUN_DIR/kmemleak.txt"; } >>"$RESULTS/boot.kernel"
	fi
	[ -s "$RESULTS/boot.kernel" ] && boot_kernel=1
	for f in "$RUN_DIR"/steps/*; do
		[ -e "$f" ] && cp "$f" "$RESULTS/"
	done
fi

if [ -n "$HOOK" ]; then
	# Let the hook finish what it does after the guest (30 s at most).
	for ((i = 0; i < 300; i++)); do
		kill -0 "$HOOK_PID" 2>/dev/null || break
		sleep 0.1
	done
	stop_pid "$HOOK_PID" group 2
	HOOK_PID=""
	if [ -s "$RUN_DIR/hook.log" ]; then
		sed 's/^/hook: /' "$RUN_DIR/hook.log" >&2
	fi
fi

# Daemon: still alive, then stopped cleanly, and no sanitizer report.
daemon_problem=0
if [ "$USE_DAEMON" = 1 ] && [ -z "$EXT_SOCK" ]; then
	if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
		wait "$DAEMON_PID"; drc=$?
		echo "$SELF: the daemon died during the run (exit $drc)" >&2
		problem=1 daemon_problem=1
	else
		stop_pid "$DAEMON_PID" pid 5
		drc=$STOP_RC
		if [ "$drc" != 0 ]; then
			echo "$SELF: the daemon exited with status $drc" >&2
			problem=1 daemon_problem=1
		fi
	fi
	DAEMON_PID=""
	if grep -qE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$RUN_DIR/hostd.log" 2>/dev/null; then
		echo "$SELF: the daemon printed a sanitizer report" >&2
		problem=1 daemon_problem=1
	fi
fi

if [ "$final" = 0 ] && [ "$problem" = 1 ]; then
	final=1
fi
if [ -n "$STEPS" ]; then
	for f in "$RESULTS"/*.rc; do
		[ -e "$f" ] || continue
		read -r src _ <"$f"
		[ "$src" = 0 ] || { [ "$final" = 0 ] && final=1; }
	done
	[ -s "$RUN_DIR/hostd.log" ] && cp "$RUN_DIR/hostd.log" "$RESULTS/daemon.log"
	printf 'exit %s\nkernel %s\ndaemon %s\n' "$final" "$boot_kernel" "$daemon_problem" >"$RESULTS/boot.txt"
fi
if [ "$final" != 0 ] || [ "$VERBOSE" = 1 ]; then
	[ "$USE_DAEMON" = 1 ] && [ -z "$EXT_SOCK" ] && print_daemon_log
	[ "$final" != 0 ] && echo "$SELF: exit status $final (${elapsed} s)" >&2
fi
exit "$final"
