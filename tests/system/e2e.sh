#!/bin/bash
# SPDX-License-Identifier: MIT
#
# e2e.sh - end-to-end tests of the whole system: for each device mode
# (userptr offered, and --no-userptr), boot the guest (UML, or the x86_64
# guest under QEMU with --vmm qemu) with run-guest.sh and run vgpu-info,
# vgpu-demo and the library tests (vgpu-test) in it; in the x86_64 guest
# also a device reset, a removal while a pin waits (vgpu-unplug-gup) and
# the DMA-API path with forced bounce buffers. Prints one TAP stream: the
# guest tests' own results (renumbered, prefixed with the mode) and one
# result per guest run (exit status, no kernel or daemon findings).
#
#   tests/system/e2e.sh [--build DIR] [--quick] [--mem SIZE] [--mode userptr|copy]
#                       [--vmm uml|qemu]
#
# --build: the meson build directory with the guest tools (default
# build/meson, or $VGPU_BUILD). --quick: sizes up to 16 MiB only and a
# 16 MiB demo. Exit status 0 when every test passed.

set -u

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

QUICK=0
MEM=1280M
MODES="userptr copy"
VMM=uml

while [ $# -gt 0 ]; do
	case $1 in
	--build) need_value "$1" "a directory" $#; BUILD=$2; shift 2 ;;
	--quick) QUICK=1; shift ;;
	--mem) need_value "$1" "a size" $#; MEM=$2; shift 2 ;;
	--mode) need_value "$1" "userptr or copy" $#
		case $2 in userptr|copy) MODES=$2 ;; *) echo "$PROG: bad --mode '$2'" >&2; exit 2 ;; esac
		shift 2 ;;
	--vmm) need_value "$1" "uml or qemu" $#
		case $2 in uml|qemu) VMM=$2 ;; *) echo "$PROG: bad --vmm '$2'" >&2; exit 2 ;; esac
		shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) bad_arg "$1" ;;
	esac
done
need_build guest/vgpu-info guest/vgpu-demo guest/tests/vgpu-test guest/tests/vgpu-unplug-gup
INFO=$BUILD/guest/vgpu-info
UNPLUG=$BUILD/guest/tests/vgpu-unplug-gup
KSELFTEST=$REPO_ROOT/build/kselftest/virtgpu_userptr
DEMO=$BUILD/guest/vgpu-demo
TEST=$BUILD/guest/tests/vgpu-test

if [ "$QUICK" = 1 ]; then
	DEMO_SIZE=16M
	MAX_MB=16
else
	DEMO_SIZE=64M
	MAX_MB=256
fi

make_log e2e

# Show a failed run's output as TAP comments.
show() {
	sed 's/^/# /' "$1"
}

# The runner itself: exit status passthrough, no findings on a plain run.
"$RUN" --vmm "$VMM" --no-daemon --no-kmemleak --timeout 60 -- sh -c 'exit 7' >"$LOG/r" 2>&1
rc=$?
ok "$([ "$rc" = 7 ] && echo 0 || echo 1)" "$VMM: run-guest.sh returns the guest command's exit status (7, got $rc)"
[ "$rc" = 7 ] || show "$LOG/r"

for mode in $MODES; do
	if [ "$mode" = userptr ]; then
		flags=()
		want_info="userptr: yes"
	else
		flags=(--no-userptr)
		want_info="userptr: no"
	fi

	# vgpu-info
	"$RUN" --vmm "$VMM" "${flags[@]}" --timeout 120 -- "$INFO" >"$LOG/info" 2>&1
	rc=$?
	ok "$rc" "$VMM $mode: vgpu-info in the guest (exit $rc)"
	grep -q "^$want_info" "$LOG/info"
	r=$?
	ok "$r" "$VMM $mode: vgpu-info says '$want_info'"
	if [ "$rc" != 0 ] || [ "$r" != 0 ]; then show "$LOG/info"; fi

	# vgpu-demo
	"$RUN" --vmm "$VMM" "${flags[@]}" --mem "$MEM" --timeout 300 -- "$DEMO" --size "$DEMO_SIZE" --repeat 2 >"$LOG/demo" 2>&1
	rc=$?
	ok "$rc" "$VMM $mode: vgpu-demo --size $DEMO_SIZE verified (exit $rc)"
	if [ "$rc" = 0 ]; then
		grep -E '^(size|path|userptr|fallback|copy|zero-copy|registered)' "$LOG/demo" | sed 's/^/# /'
		if [ "$mode" = userptr ]; then
			grep -q '^userptr ' "$LOG/demo"
		else
			grep -q '^fallback ' "$LOG/demo"
		fi
		ok $? "$VMM $mode: vgpu-demo took the $mode path"
	else
		show "$LOG/demo"
	fi

	# library tests: their TAP, renumbered
	"$RUN" --vmm "$VMM" "${flags[@]}" --mem "$MEM" --timeout 600 --env "VGPU_TEST_MODE=$mode" \
		-- "$TEST" --max-size "$MAX_MB" >"$LOG/test" 2>&1
	rc=$?
	relay_tap "$VMM $mode" "$LOG/test" "vgpu-test ran to its plan"
	ok "$rc" "$VMM $mode: vgpu-test run clean: exit status, kernel log, daemon (exit $rc)"
	if [ "$rc" != 0 ]; then
		show_untapped "$LOG/test" 200
	fi
done

# QEMU: a device reset from the guest (the virtio-pci driver unbound and
# bound again: QEMU stops the rings with GET_VRING_BASE and starts them
# anew), after which the device serves the library's tests again.
if [ "$VMM" = qemu ]; then
	"$RUN" --vmm qemu --mem "$MEM" --timeout 300 -- sh -c '
		set -e
		"$1" >/dev/null
		dev=$(basename "$(readlink -f /sys/class/drm/renderD128/device)")
		echo "$dev" >/sys/bus/pci/drivers/virtio-pci/unbind
		! [ -e /dev/dri/renderD128 ]
		echo "$dev" >/sys/bus/pci/drivers/virtio-pci/bind
		for _ in $(seq 50); do [ -e /dev/dri/renderD128 ] && break; sleep 0.1; done
		"$1" | grep "^userptr: yes"
		"$2" --size 4M --repeat 1' sh "$INFO" "$DEMO" >"$LOG/reset" 2>&1
	rc=$?
	ok "$rc" "qemu: the device works again after a reset from the guest (unbind, bind) (exit $rc)"
	[ "$rc" = 0 ] || show "$LOG/reset"

	# A pin that waits on a userfaultfd fault does not hold up the
	# removal of the device (needs the x86_64 guest's CONFIG_USERFAULTFD).
	"$RUN" --vmm qemu --timeout 120 -- "$UNPLUG" >"$LOG/unplug" 2>&1
	rc=$?
	relay_tap "qemu unplug" "$LOG/unplug" "vgpu-unplug-gup ran to its plan"
	ok "$rc" "qemu: vgpu-unplug-gup run clean: exit status, kernel log, daemon (exit $rc)"
	[ "$rc" = 0 ] || show_untapped "$LOG/unplug" 100

	# The DMA-API path with every mapping bounced (swiotlb=force, as in
	# SEV or TDX guests): the driver does not use the device's userptr
	# feature (the param reads 0, every userptr request fails with
	# EOPNOTSUPP: the kselftest's checks without the feature), and says so.
	# shellcheck disable=SC2016 # expanded by the guest's sh
	"$RUN" --vmm qemu --access-platform --append swiotlb=force --timeout 300 -- sh -c '
		"$1"; rc=$?
		dmesg | grep -q "resource_userptr not used: DMA would bounce" || rc=99
		"$2" | grep "^userptr: no" || rc=98
		exit $rc' sh "$KSELFTEST" "$INFO" >"$LOG/bounce" 2>&1
	rc=$?
	relay_tap "qemu bounce" "$LOG/bounce" "the kselftest ran to its plan with swiotlb=force"
	ok "$rc" "qemu bounce: userptr not used with swiotlb=force: kselftest, probe message, vgpu-info (exit $rc)"
	[ "$rc" = 0 ] || show_untapped "$LOG/bounce" 100
fi

tap_end
