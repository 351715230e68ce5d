#!/bin/bash
# SPDX-License-Identifier: MIT
#
# faults.sh - fault injection across the guest/host boundary. Prints TAP.
#
#   tests/system/faults.sh [--build DIR] [--hostd PATH] [--parts ABC] [--kernel PATH]
#
# A. The daemon is killed (SIGKILL) while 4 guest threads create, submit
#    and destroy userptr buffers of up to 64 MiB (creates and submits in
#    flight). What the guest sees is recorded and what is guaranteed is
#    checked: a submit in flight ends at once, well before its 3 s
#    timeout, with ENODEV (the driver signals the fences of the removed
#    device with ENODEV, and libvgpu reports the fence's error),
#    the guest notices the broken connection and unplugs the device (no
#    hang, no KASAN/BUG/lockdep report, only the known warnings), and it
#    powers off normally. The pinned memory of objects whose release the
#    device never answered is measured and reported (see
#    docs/reliability.md).
# B. A fresh daemon and a fresh guest work after that.
# C. The guest is killed (SIGKILL of the UML process) while long submits
#    run, against a daemon started here (the ASan build when it exists, or
#    --hostd / $VGPU_HOSTD): the daemon notices the disconnect, frees every
#    resource, context and mapping (its SIGUSR1 statistics read 0), serves
#    a second guest whose results are verified, and exits 0 on SIGTERM with
#    no sanitizer report (leaks included).
#
# --build: meson build with the guest programs (default build/meson or
# $VGPU_BUILD). Exit status 0 when every test passed.

set -u

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HOSTD_C=""
PARTS=ABC

while [ $# -gt 0 ]; do
	case $1 in
	--build) need_value "$1" "a directory" $#; BUILD=$2; shift 2 ;;
	--hostd) need_value "$1" "a path" $#; HOSTD_C=$2; shift 2 ;;
	--parts) need_value "$1" "letters (A, B, C)" $#; PARTS=$2; shift 2 ;;
	--kernel) need_value "$1" "a path" $#; KARGS=(--kernel "$2"); shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) bad_arg "$1" ;;
	esac
done
need_build guest/stress/vgpu-load
LOAD=$BUILD/guest/stress/vgpu-load
if [ -z "$HOSTD_C" ]; then
	if [ -n "${VGPU_HOSTD:-}" ]; then
		HOSTD_C=$VGPU_HOSTD
	elif [ -x "$REPO_ROOT/build/meson-asan/host/virtgpu-hostd" ]; then
		HOSTD_C=$REPO_ROOT/build/meson-asan/host/virtgpu-hostd
	else
		HOSTD_C=$REPO_ROOT/build/meson/host/virtgpu-hostd
	fi
fi
if [ ! -x "$HOSTD_C" ]; then
	echo "$PROG: daemon '$HOSTD_C' not found" >&2
	exit 2
fi

yes_no() { if "$@"; then echo 0; else echo 1; fi; }
show() { sed 's/^/#   /' "$1" | head -n "${2:-60}"; }

make_log faults
DPID=""
cleanup() {
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		kill -KILL "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
	fi
	rm -rf -- "$LOG"
}
trap cleanup EXIT

# The host side of a fault: wait (bounded) for the guest's marker file, then
# act. Runs under run-guest.sh --hook, which sets VGPU_RUN_DIR and the pids.
# shellcheck disable=SC2016 # expanded by the hook's shell
WAIT_MARKER='for _ in $(seq 300); do [ -e "$VGPU_RUN_DIR/marker" ] && break; sleep 0.1; done; [ -e "$VGPU_RUN_DIR/marker" ] || { echo "no marker"; exit 1; }'

# Lines of a kernel report that are not among the warnings a device
# disappearing under the driver is known to produce.
KBAD='BUG: |KASAN|UBSAN|possible recursive locking|possible circular locking|inconsistent lock state|Kernel panic|general protection|Oops|unreferenced object|suspected memory leak'

# ---- A. daemon killed with submits in flight ---------------------------------
part_a() {
echo "# A: SIGKILL of the daemon while 4 guest threads create, submit and destroy up to 64 MiB"
# shellcheck disable=SC2016 # expanded by the guest's shell
GUESTA='grep MemFree /proc/meminfo
sync; echo 3 >/proc/sys/vm/drop_caches
free0=$(sed -n "s/^MemFree: *\([0-9]*\) kB/\1/p" /proc/meminfo)
"$0" --seconds 60 --threads 4 --max-kib 65536 --checksums 4 --timeout-ms 3000 \
	--marker "$VGPU_RUN_DIR/marker" --expect-fault
rc=$?
echo "load-exit $rc"
for _ in $(seq 100); do [ -e /dev/dri ] || break; sleep 0.1; done
[ -e /dev/dri ] && echo "dri-present" || echo "dri-gone"
sync; echo 3 >/proc/sys/vm/drop_caches
free1=$(sed -n "s/^MemFree: *\([0-9]*\) kB/\1/p" /proc/meminfo)
echo "memfree-lost-kb $((free0 - free1))"'
start=$(date +%s)
"$RUN" "${KARGS[@]}" --allow-warnings --keep --mem 768M --timeout 120 \
	--hook "$WAIT_MARKER; sleep 0.3; kill -KILL \$VGPU_DAEMON_PID && echo \"daemon \$VGPU_DAEMON_PID killed\"" \
	-- bash -c "$GUESTA" "$LOAD" >"$LOG/a" 2>&1
rc=$?
secs=$(($(date +%s) - start))
tr -d '\r' <"$LOG/a" >"$LOG/a2"
# The whole kernel log of the run (the runner's report shows excerpts only).
kept=$(sed -n 's/^run-guest.sh: kept \(.*\)$/\1/p' "$LOG/a2" | tail -n 1)
if [ -n "$kept" ] && [ -d "$kept" ]; then
	cat "$kept/console.log" "$kept/dmesg.txt" 2>/dev/null | tr -d '\r' >"$LOG/akernel"
	rm -rf -- "$kept"
else
	cp "$LOG/a2" "$LOG/akernel"
fi
ok "$(yes_no grep -q 'daemon [0-9]* killed' "$LOG/a2")" "A: the daemon was killed while the load ran"
ok "$(yes_no [ "$rc" = 1 ])" "A: the guest finished by itself in ${secs} s (runner exit 1 = command done, daemon died; got $rc)"
ferr=$(sed -n 's/^fault-errno \(-[0-9]*\) \([a-z]*\)$/\1 \2/p' "$LOG/a2" | head -n 1)
grep -E '^# fault: ' "$LOG/a2"
# No thread may wait out its 3000 ms timeout once the device is gone (the
# fences of the removed device are signalled): no ETIMEDOUT, and every
# thread whose first error came from a submit got it in under 2.5 s.
slow=$(grep -E '^# fault: thread [0-9]+: first error ' "$LOG/a2" |
	awk '/first error -110 / { n++; next }
	     / in submit,/ { t = $0; sub(/.* the call took /, "", t); sub(/ s;.*/, "", t); if (t + 0 >= 2.5) n++ }
	     END { print n + 0 }')
# The driver signals the fences of the removed device with ENODEV, and
# libvgpu reports that error (not EIO): every first error is ENODEV.
case $ferr in
"-19 "*) r=$(yes_no [ "$slow" = 0 ]) ;;
*) r=1 ;;
esac
ok "$r" "A: submits in flight end at once with ENODEV (their fences signalled with it), a new call too (first: ${ferr:-none}; threads that waited out a timeout: $slow)"
ok "$(yes_no grep -q '^ok [0-9]* - fault: no wrong result before the fault' "$LOG/a2")" \
	"A: every result before the fault was right"
ok "$(yes_no grep -q '^ok [0-9]* - fault: ENODEV sticks' "$LOG/a2")" \
	"A: after the device is gone, ENODEV sticks to every device (libvgpu answers it itself)"
ok "$(yes_no grep -q '^dri-gone' "$LOG/a2")" "A: the guest unplugged the device (/dev/dri gone)"
ok "$(yes_no grep -q 'virtio_uml.c:[0-9]* vu_interrupt' "$LOG/akernel")" \
	"A: the guest kernel noticed the broken vhost-user connection (virtio_uml warning)"
if grep -qE "$KBAD" "$LOG/akernel" "$LOG/a2"; then r=1; else r=0; fi
ok "$r" "A: no KASAN, BUG, lockdep, Oops or kmemleak report in the guest"
[ "$r" = 0 ] || grep -E -A 20 "$KBAD" "$LOG/akernel" | head -n 60 | sed 's/^/#   /'
warns=$(grep -oE 'WARNING: CPU: [0-9]+ PID: [0-9]+ at [^ ]+' "$LOG/akernel" | sed 's/.* at //' | sort | uniq -c |
	awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}')
echo "# A: kernel warnings: ${warns:-none}"
lost=$(sed -n 's/^memfree-lost-kb \(-\{0,1\}[0-9]*\)$/\1/p' "$LOG/a2")
echo "# A: guest memory not returned after the process exited: ${lost:-?} kB" \
	"(pages pinned by objects whose RESOURCE_UNREF the dead device never answered)"
if [ "$rc" != 1 ]; then show "$LOG/a2" 80; fi

}

# ---- B. a new daemon and a new guest work --------------------------------------
part_b() {
"$RUN" "${KARGS[@]}" --timeout 120 -- "$LOAD" --seconds 3 --threads 2 >"$LOG/b" 2>&1
rc=$?
ok "$rc" "B: after the kill, a new daemon serves a new guest, every result verified (exit $rc)"
[ "$rc" = 0 ] || show "$LOG/b"

}

# ---- C. guest killed mid-submit, daemon kept ------------------------------------
part_c() {
echo "# C: daemon $HOSTD_C"
SOCK=$LOG/gpu.sock
"$HOSTD_C" --socket "$SOCK" </dev/null >"$LOG/hostd.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
ok "$(yes_no [ -S "$SOCK" ])" "C: daemon started on its own socket"

# stats NAME: the value of a counter in the last statistics block printed
stats() {
	awk -v k="$1" '$1 == "virtgpu-hostd" && $2 == "stats:" { delete v } $1 == k { v[k] = $2 } END { print v[k] }' \
		"$LOG/hostd.log"
}
# Ask for statistics and wait until a new block is complete.
dump_stats() {
	local before
	before=$(grep -c 'op_sum_f32' "$LOG/hostd.log")
	kill -USR1 "$DPID"
	for _ in $(seq 50); do
		[ "$(grep -c 'op_sum_f32' "$LOG/hostd.log")" -gt "$before" ] && return 0
		sleep 0.1
	done
	return 1
}

# shellcheck disable=SC2016 # expanded in the guest
"$RUN" "${KARGS[@]}" --socket "$SOCK" --mem 768M --timeout 120 --no-kmemleak \
	--hook "$WAIT_MARKER; sleep 0.5; upid=\$(cat \"\$VGPU_UML_DIR/pid\") && kill -KILL -- -\$upid && echo \"guest \$upid killed at \$(date +%s.%N)\"" \
	-- sh -c 'exec "$0" --seconds 60 --threads 2 --max-kib 65536 --checksums 100 --marker "$VGPU_RUN_DIR/marker"' \
	"$LOAD" >"$LOG/c1" 2>&1
rc=$?
ok "$(yes_no grep -q 'guest [0-9]* killed' "$LOG/c1")" "C: the guest was killed during the load"
ok "$(yes_no [ "$rc" = 125 ])" "C: the runner reports a guest that ended without a status (exit $rc)"
# The daemon drops the connection's state once the submits it is running
# have finished (they are not cancelled): allow for that, bounded.
gone=0
t0=$(date +%s)
for _ in $(seq 1200); do
	grep -q 'front-end gone' "$LOG/hostd.log" && { gone=1; break; }
	sleep 0.1
done
ok "$([ "$gone" = 1 ] && echo 0 || echo 1)" \
	"C: the daemon noticed the disconnect and dropped the connection ($(($(date +%s) - t0)) s after the guest's end)"
grep 'front-end gone' "$LOG/hostd.log" | sed 's/^/# daemon: /'
kill_ts=$(sed -n 's/.*guest [0-9]* killed at \([0-9.]*\)$/\1/p' "$LOG/c1" | head -n 1)
gone_ts=$(sed -n 's/^virtgpu-hostd\[\([0-9.]*\)\]: front-end gone.*/\1/p' "$LOG/hostd.log" | head -n 1)
if [ -n "$kill_ts" ] && [ -n "$gone_ts" ]; then
	echo "# C: the daemon dropped the connection $(awk -v a="$kill_ts" -v b="$gone_ts" 'BEGIN { printf "%.2f", b - a }') s after the kill" \
		"(it lets the submit it is running finish first)"
fi
ok "$(yes_no kill -0 "$DPID")" "C: the daemon survived the guest's death"
dump_stats
for k in resources resource_bytes contexts bytes_mapped; do
	v=$(stats "$k")
	ok "$(yes_no [ "$v" = 0 ])" "C: after the killed guest, daemon $k = ${v:-?}"
done
echo "# C: submits served before the kill: $(stats submits), checksum ops: $(stats op_checksum | head -n 1)"

"$RUN" "${KARGS[@]}" --socket "$SOCK" --timeout 120 -- "$LOAD" --seconds 3 --threads 2 >"$LOG/c2" 2>&1
rc=$?
ok "$rc" "C: the same daemon serves a second guest, every result verified (exit $rc)"
[ "$rc" = 0 ] || show "$LOG/c2"
dump_stats
for k in resources contexts bytes_mapped; do
	v=$(stats "$k")
	ok "$(yes_no [ "$v" = 0 ])" "C: after the second guest, daemon $k = ${v:-?}"
done

kill -TERM "$DPID"
drc=""
for _ in $(seq 100); do
	kill -0 "$DPID" 2>/dev/null || { wait "$DPID"; drc=$?; break; }
	sleep 0.1
done
DPID_OLD=$DPID
[ -n "$drc" ] && DPID=""
ok "$(yes_no [ "$drc" = 0 ])" "C: the daemon exits 0 on SIGTERM (exit ${drc:-still running, pid $DPID_OLD})"
if grep -qE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: ' "$LOG/hostd.log"; then
	r=1
else
	r=0
fi
ok "$r" "C: no sanitizer report (ASan/LSan/UBSan) from the daemon"
[ "$r" = 0 ] || show "$LOG/hostd.log" 80
}

case $PARTS in *A*) part_a ;; esac
case $PARTS in *B*) part_b ;; esac
case $PARTS in *C*) part_c ;; esac

tap_end
