#!/bin/bash
# SPDX-License-Identifier: MIT
#
# e2e.sh - end-to-end tests of the whole system. For each device mode
# ("userptr": the device offers VIRTIO_GPU_F_BLOB_RDONLY; "plain": one
# that knows nothing of userptr, --no-userptr, where read-write userptr
# blobs are ordinary guest blobs and read-only buffers are copied) one guest boot (UML, or the x86_64
# guest under QEMU with --vmm qemu) runs, one after the other, the
# kselftest, vgpu-info, vgpu-demo and the library tests (vgpu-test, and
# vgpu-runtime-test: what a compute runtime relies on); the
# x86_64 guest's userptr boot also runs what only it has: transparent huge
# pages (vgpu-thp), libvgpu under ThreadSanitizer (--tsan-build), a device
# reset from the guest, a removal while a pin waits (vgpu-unplug-gup) and
# a PCI remove under live userptr blobs (vgpu-pci-remove, also on the
# DMA-API path).
# With --vmm qemu two more boots run the kselftest on the driver's DMA-API
# path (--access-platform; the device has a scanout there, so the driver
# does KMS), and with every mapping bounced (swiotlb=force).
# Prints one TAP stream: each program's own results (renumbered, prefixed
# with the mode), one result per program (exit status, no kernel report
# while it ran) and one per boot (kmemleak, the kernel log outside the
# programs, the daemon).
#
#   tests/system/e2e.sh [--build DIR] [--quick] [--mem SIZE] [--mode userptr|plain|dma]...
#                       [--vmm uml|qemu] [--no-build] [--kernel PATH] [--tsan-build DIR]
#                       [--kselftest PATH]
#
# --build: the meson build directory with the guest tools (default
# build/meson, or $VGPU_BUILD). --quick: sizes up to 16 MiB only and a
# 16 MiB demo. --mode (repeatable) picks the boots: a device mode, or dma
# (the two DMA-API boots, --vmm qemu only); default: all of them. --no-build:
# run-guest.sh builds neither QEMU nor the x86_64 kernel. --kernel: the guest
# kernel (run-guest.sh's default otherwise). --tsan-build: a ThreadSanitizer build (build/meson-tsan) whose
# vgpu-async-test runs in the x86_64 guest (TSan needs its 47-bit address
# space). --kselftest: the kselftest binary (default build/kselftest/
# virtgpu_userptr). Exit status 0 when every test passed.

set -u

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

QUICK=0
MEM=1280M
MODES=""
VMM=uml
TSAN_BUILD=""
NO_BUILD=()
KSELFTEST=$REPO_ROOT/build/kselftest/virtgpu_userptr

while [ $# -gt 0 ]; do
	case $1 in
	--build) need_value "$1" "a directory" $#; BUILD=$2; shift 2 ;;
	--quick) QUICK=1; shift ;;
	--mem) need_value "$1" "a size" $#; MEM=$2; shift 2 ;;
	--mode) need_value "$1" "userptr, plain or dma" $#
		case $2 in userptr|plain|dma) MODES="$MODES $2" ;; *) echo "$PROG: bad --mode '$2'" >&2; exit 2 ;; esac
		shift 2 ;;
	--no-build) NO_BUILD=(--no-build); shift ;;
	--kernel) need_value "$1" "a path" $#; KARGS=(--kernel "$2"); shift 2 ;;
	--vmm) need_value "$1" "uml or qemu" $#
		case $2 in uml|qemu) VMM=$2 ;; *) echo "$PROG: bad --vmm '$2'" >&2; exit 2 ;; esac
		shift 2 ;;
	--tsan-build) need_value "$1" "a directory" $#; TSAN_BUILD=$2; shift 2 ;;
	--kselftest) need_value "$1" "a path" $#; KSELFTEST=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) bad_arg "$1" ;;
	esac
done
if [ -z "$MODES" ]; then
	MODES="userptr plain"
	[ "$VMM" = qemu ] && MODES="$MODES dma"
fi
case " $MODES " in
*" dma "*) [ "$VMM" = qemu ] || { echo "$PROG: --mode dma needs --vmm qemu" >&2; exit 2; } ;;
esac
[ "$VMM" = qemu ] || NO_BUILD=()
need_build guest/vgpu-info guest/vgpu-demo guest/tests/vgpu-test guest/tests/vgpu-unplug-gup \
	guest/tests/vgpu-pci-remove guest/tests/vgpu-thp guest/tests/vgpu-runtime-test guest/tests/vgpu-kernel-test
INFO=$BUILD/guest/vgpu-info
UNPLUG=$BUILD/guest/tests/vgpu-unplug-gup
PCI_REMOVE=$BUILD/guest/tests/vgpu-pci-remove
THP=$BUILD/guest/tests/vgpu-thp
DEMO=$BUILD/guest/vgpu-demo
TEST=$BUILD/guest/tests/vgpu-test
RUNTIME=$BUILD/guest/tests/vgpu-runtime-test
KERNELS=$BUILD/guest/tests/vgpu-kernel-test
# The device's time budget in these boots: short, so that the endless
# kernel of vgpu-kernel-test ends soon; long enough for every other op.
BUDGET_MS=3000
TSAN_ASYNC=""
if [ -n "$TSAN_BUILD" ]; then
	case $TSAN_BUILD in /*) ;; *) TSAN_BUILD=$PWD/$TSAN_BUILD ;; esac
	TSAN_ASYNC=$TSAN_BUILD/guest/tests/vgpu-async-test
fi
case $KSELFTEST in /*) ;; *) KSELFTEST=$PWD/$KSELFTEST ;; esac

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

# relay_step LABEL NAME PLAN-NAME: a step's TAP relayed, then its verdict.
relay_step() {
	local rc
	relay_tap "$1" "$(step_out "$2")" "$3"
	rc=$(step_rc "$2")
	ok "$rc" "$1: run clean: exit status, kernel log (exit $rc)"
	[ "$rc" = 0 ] || step_show "$2" 200
}

# A program every step list needs: fail, never skip, when it is missing.
# The runner itself (with the device modes): exit status passthrough, no
# findings on a plain run; and several steps in one boot, each with its own
# status and output and its own kernel reports.
if [ "$MODES" != " dma" ]; then
	"$RUN" "${KARGS[@]+"${KARGS[@]}"}" --vmm "$VMM" "${NO_BUILD[@]+"${NO_BUILD[@]}"}" --no-daemon --no-kmemleak --timeout 60 -- sh -c 'exit 7' >"$LOG/r" 2>&1
	rc=$?
	ok "$([ "$rc" = 7 ] && echo 0 || echo 1)" "$VMM: run-guest.sh returns the guest command's exit status (7, got $rc)"
	[ "$rc" = 7 ] || show "$LOG/r"
	steps_begin runner
	step one sh -c 'echo first; exit 0'
	step two sh -c 'echo second; exit 3'
	step three sh -c 'echo "WARNING: run-guest.sh self-test" >/dev/kmsg; echo third'
	step four sh -c 'echo fourth'
	steps_run --vmm "$VMM" "${NO_BUILD[@]+"${NO_BUILD[@]}"}" --no-daemon --no-kmemleak --timeout 60
	r2=$(step_rc two)
	ok "$([ "$BOOT_RC" = 1 ] && [ "$(step_rc one)" = 0 ] && [ "$r2" = 3 ] &&
		grep -qx second "$(step_out two)" && grep -qx fourth "$(step_out four)" &&
		echo 0 || echo 1)" \
		"$VMM: run-guest.sh --steps runs every step with its own status and output (boot $BOOT_RC, step two $r2)"
	ok "$([ "$(step_rc three)" = 1 ] && grep -q 'WARNING: run-guest.sh self-test' "$STEPS_DIR/three.kernel" &&
		! [ -e "$STEPS_DIR/two.kernel" ] && ! [ -e "$STEPS_DIR/four.kernel" ] && echo 0 || echo 1)" \
		"$VMM: run-guest.sh --steps puts a kernel report down to the step that caused it"
	[ "$BOOT_RC" = 1 ] || show_untapped "$STEPS_DIR.log" 40
fi

for mode in $MODES; do
	[ "$mode" = dma ] && continue
	# Read-write buffers are zero-copy in both modes; read-only ones only
	# with the device's promise not to write them.
	if [ "$mode" = userptr ]; then
		flags=()
		want_ro="read-only userptr: yes"
	else
		flags=(--no-userptr)
		want_ro="read-only userptr: no"
	fi
	x86=0
	[ "$VMM" = qemu ] && [ "$mode" = userptr ] && x86=1

	steps_begin "$mode"
	need_file "$VMM $mode: kselftest" "$KSELFTEST" && step kselftest "$KSELFTEST"
	# Huge pages first, while guest memory is least fragmented.
	[ "$x86" = 1 ] && step thp "$THP"
	step info "$INFO"
	step demo "$DEMO" --size "$DEMO_SIZE" --repeat 2
	step test env "VGPU_TEST_MODE=$mode" "$TEST" --max-size "$MAX_MB"
	step runtime "$RUNTIME"
	step kernels "$KERNELS" --budget-ms "$BUDGET_MS"
	if [ "$x86" = 1 ] && [ -n "$TSAN_ASYNC" ] &&
		need_file "$VMM $mode: ThreadSanitizer vgpu-async-test" "$TSAN_ASYNC"; then
		step async-tsan "$TSAN_ASYNC"
	fi
	if [ "$x86" = 1 ]; then
		# A device reset from the guest (the virtio-pci driver unbound
		# and bound again: QEMU stops the rings with GET_VRING_BASE,
		# sends RESET_DEVICE and starts them anew), after which the
		# device serves again.
		# shellcheck disable=SC2016 # expanded by the guest's sh
		step reset sh -c '
			set -e
			"$1" >/dev/null
			dev=$(basename "$(readlink -f /sys/class/drm/renderD128/device)")
			echo "$dev" >/sys/bus/pci/drivers/virtio-pci/unbind
			! [ -e /dev/dri/renderD128 ]
			echo "$dev" >/sys/bus/pci/drivers/virtio-pci/bind
			for _ in $(seq 50); do [ -e /dev/dri/renderD128 ] && break; sleep 0.1; done
			"$1" | grep "^userptr: yes"
			"$2" --size 4M --repeat 1' sh "$INFO" "$DEMO"
		# A pin that waits on a userfaultfd fault does not hold up the
		# removal of the device (needs CONFIG_USERFAULTFD); it binds the
		# device again at its end.
		step unplug "$UNPLUG"
		# The PCI function removed under live userptr blobs (a hot
		# unplug), their file closed after; a rescan brings it back.
		step pci-remove "$PCI_REMOVE"
	fi
	steps_run --vmm "$VMM" "${NO_BUILD[@]+"${NO_BUILD[@]}"}" "${flags[@]+"${flags[@]}"}" --mem "$MEM" \
		--daemon-args "--op-timeout $BUDGET_MS" --timeout 1800

	if [ -x "$KSELFTEST" ]; then
		relay_step "$VMM $mode kselftest" kselftest "the kselftest ran to its plan"
		# The guest's root (hostfs, 9p) tracks dirty pages: a writable
		# shared mapping of a file there is refused (EFAULT), not skipped.
		grep -q "writable_shared_file_mapping:.*tracks dirty pages: yes" "$(step_out kselftest)"
		ok $? "$VMM $mode kselftest: a writable shared file mapping was tried on a filesystem that tracks dirty pages"
	fi
	if [ "$x86" = 1 ]; then
		relay_step "$VMM $mode thp" thp "vgpu-thp ran to its plan"
	fi

	rc=$(step_rc info)
	ok "$rc" "$VMM $mode: vgpu-info in the guest (exit $rc)"
	grep -q "^userptr: yes" "$(step_out info)" && grep -q "^$want_ro" "$(step_out info)"
	r=$?
	ok "$r" "$VMM $mode: vgpu-info says 'userptr: yes' and '$want_ro'"
	if [ "$rc" != 0 ] || [ "$r" != 0 ]; then step_show info 60; fi

	rc=$(step_rc demo)
	ok "$rc" "$VMM $mode: vgpu-demo --size $DEMO_SIZE verified (exit $rc)"
	if [ "$rc" = 0 ]; then
		grep -E '^(size|path|userptr|fallback|copy|zero-copy|registered)' "$(step_out demo)" | sed 's/^/# /'
		# Its source is read-only: copied without the device's promise.
		if [ "$mode" = userptr ]; then
			grep -q '^userptr ' "$(step_out demo)"
		else
			grep -q '^fallback ' "$(step_out demo)"
		fi
		ok $? "$VMM $mode: vgpu-demo's read-only source took the $([ "$mode" = userptr ] &&
			echo zero-copy || echo copy) path"
	else
		step_show demo 100
	fi

	relay_step "$VMM $mode" test "vgpu-test ran to its plan"
	relay_step "$VMM $mode runtime" runtime "vgpu-runtime-test ran to its plan"
	relay_step "$VMM $mode kernels" kernels "vgpu-kernel-test ran to its plan"

	if [ "$x86" = 1 ] && [ -n "$TSAN_ASYNC" ]; then
		relay_step "$VMM $mode async-tsan" async-tsan "vgpu-async-test (ThreadSanitizer) ran to its plan"
		grep -q 'WARNING: ThreadSanitizer' "$(step_out async-tsan)"
		ok "$([ $? = 1 ] && echo 0 || echo 1)" "$VMM $mode async-tsan: no ThreadSanitizer report"
	fi
	if [ "$x86" = 1 ]; then
		rc=$(step_rc reset)
		ok "$rc" "qemu: the device works again after a reset from the guest (unbind, bind) (exit $rc)"
		[ "$rc" = 0 ] || step_show reset 60
		relay_step "qemu unplug" unplug "vgpu-unplug-gup ran to its plan"
		relay_step "qemu pci-remove" pci-remove "vgpu-pci-remove ran to its plan"
	fi
	boot_ok "$VMM $mode"
done

if [ "$VMM" = qemu ] && [[ " $MODES " == *" dma "* ]]; then
	# The kselftest with the driver on its DMA-API path: the device offers
	# VIRTIO_F_ACCESS_PLATFORM, dma-direct maps, nothing is bounced.
	steps_begin dma-api
	step kselftest "$KSELFTEST"
	# A hot unplug with the userptr pages DMA mapped: the mappings go
	# with the device, the pins at close.
	step pci-remove "$PCI_REMOVE"
	# The device has a scanout here (no display connected): the driver
	# does KMS, and the kselftest sees ADDFB2 refuse userptr objects.
	steps_run --vmm qemu "${NO_BUILD[@]+"${NO_BUILD[@]}"}" --access-platform \
		--daemon-args "--scanouts 1" --timeout 600
	relay_step "qemu dma-api kselftest" kselftest "the kselftest ran to its plan on the DMA-API path"
	grep -q "not_a_framebuffer:KMS: yes" "$(step_out kselftest)"
	ok $? "qemu dma-api kselftest: the framebuffer refusal was checked with KMS (a device with a scanout)"
	relay_step "qemu dma-api pci-remove" pci-remove "vgpu-pci-remove ran to its plan on the DMA-API path"
	boot_ok "qemu dma-api"

	# The DMA-API path with every mapping bounced (swiotlb=force, as in
	# SEV or TDX guests): the driver does not use the device's userptr
	# feature (the param reads 0, every userptr request fails with
	# EOPNOTSUPP: the kselftest's checks without the feature), and says so.
	steps_begin bounce
	step kselftest "$KSELFTEST"
	step probe sh -c 'dmesg | grep "resource_userptr not used: DMA would bounce"'
	step info "$INFO"
	steps_run --vmm qemu "${NO_BUILD[@]+"${NO_BUILD[@]}"}" --access-platform --append swiotlb=force --timeout 600
	relay_step "qemu bounce" kselftest "the kselftest ran to its plan with swiotlb=force"
	rc=$(step_rc probe)
	grep -q "^userptr: no" "$(step_out info)"
	r=$?
	ok "$([ "$rc" = 0 ] && [ "$r" = 0 ] && [ "$(step_rc info)" = 0 ] && echo 0 || echo 1)" \
		"qemu bounce: userptr not used with swiotlb=force: probe message, vgpu-info (probe $rc, info $r)"
	[ "$rc" = 0 ] && [ "$r" = 0 ] || { step_show probe 20; step_show info 20; }
	boot_ok "qemu bounce"
fi

tap_end
