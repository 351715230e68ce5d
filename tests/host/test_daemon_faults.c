/* SPDX-License-Identifier: MIT */
/*
 * test_daemon_faults.c - the virtgpu-hostd binary when its front-end
 * misbehaves: hangs up with a long compute submit in flight, goes silent,
 * stalls in the middle of a message, or outlives a killed daemon.
 * argv[1]: path of the daemon. Built with ASan, the daemon's exit status
 * also carries LeakSanitizer's verdict (non-zero on a leak).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"

static const char *daemon_path;
static struct daemon_files df;

static pid_t spawn_daemon(void)
{
	/* No programs: these tests are about the daemon alone (its idle
	 * CPU time would count the probe worker's start). */
	char *a[] = { (char *)daemon_path, "--socket", df.sock, "--threads", "2", "--no-programs",
		      NULL };
	pid_t pid = daemon_spawn(a, df.log);

	/* Wait for the socket. */
	for (int i = 0; i < 500 && access(df.sock, F_OK); i++)
		usleep(10000);
	return pid;
}

static char *read_log(void)
{
	return daemon_log(df.log);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* utime + stime of a process, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	assert_non_null(p);
	/* After ") ": state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime */
	assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
				&ut, &st), 2);
	return (long)(ut + st);
}

static void display_ok(struct fe *f)
{
	struct virtio_gpu_ctrl_hdr h;
	uint8_t resp[512];

	hdr_init(&h, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
	assert_int_equal(fe_cmd(f, 0, &h, sizeof(h), resp, sizeof(resp), 1),
			 (int)sizeof(struct virtio_gpu_resp_display_info));
}

/* Hang up with two long submits queued: the daemon finishes the one in
 * progress, drops the other, frees everything, serves the next front-end,
 * and exits cleanly (LeakSanitizer clean under ASan). */
static void test_disconnect_in_flight(void **state)
{
	const uint32_t big = 0x100000;
	struct fe_opts o = { .socket_path = df.sock };
	struct vgpu_compute_op ops[VGPU_COMPUTE_MAX_OPS];
	uint8_t buf[sizeof(struct virtio_gpu_cmd_submit) + sizeof(struct vgpu_compute_submit) +
		    sizeof(ops)];
	struct virtio_gpu_cmd_submit *c = (void *)buf;
	struct vgpu_compute_submit s = { VGPU_COMPUTE_MAGIC, VGPU_COMPUTE_MAX_OPS, 0, 0, 0 };
	pid_t pid = spawn_daemon();
	uint64_t res2;
	struct fe f;
	double t0, t1;
	char *log;

	(void)state;
	fe_start(&f, &o);
	assert_int_equal(cmd_ctx_create(&f, 1, 0), VIRTIO_GPU_RESP_OK_NODATA);
	assert_true(simple_blob(&f, 1, 1, 0, 2, big) != 0);
	res2 = simple_blob(&f, 1, 2, 0, 2, 4096);
	assert_true(res2 != 0);
	assert_int_equal(cmd_attach(&f, 1, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&f, 1, 2), VIRTIO_GPU_RESP_OK_NODATA);
	for (unsigned i = 0; i < VGPU_COMPUTE_MAX_OPS; i++)
		ops[i] = i % 2 ? mkop(VGPU_OP_SAXPY, 1, 0, 1, 0, big, 0x3f800000)
			       : mkop(VGPU_OP_CHECKSUM, 2, 0, 1, 0, big, i);
	memset(buf, 0, sizeof(buf));
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_SUBMIT_3D, 1);
	c->size = sizeof(s) + sizeof(ops);
	memcpy(buf + sizeof(*c), &s, sizeof(s));
	memcpy(buf + sizeof(*c) + sizeof(s), ops, sizeof(ops));
	for (int i = 0; i < 4; i++)
		fe_post(&f, 0, buf, sizeof(buf), 24, 2);
	fe_kick(&f, 0);
	/* Hang up once the first op (a checksum into resource 2) is done. */
	for (int i = 0; i < 10000 && !*(volatile uint64_t *)fe_ptr(&f, res2); i++)
		usleep(1000);
	assert_true(*(volatile uint64_t *)fe_ptr(&f, res2) != 0);
	t0 = now();
	fe_stop(&f);
	for (int i = 0; i < 3000 && !strstr(read_log(), "front-end gone"); i++)
		usleep(10000);
	t1 = now();
	printf("# everything freed %.3f s after the hang-up\n", t1 - t0);
	assert_non_null(strstr(read_log(), "front-end gone"));
	/* The next front-end is served. */
	fe_start(&f, &o);
	display_ok(&f);
	fe_stop(&f);
	usleep(100000);
	kill(pid, SIGTERM);
	assert_int_equal(daemon_wait(pid, 20000), 0);
	log = read_log();
	assert_non_null(strstr(log, "front-end gone: 0 resources, 0 contexts, 0 bytes mapped"));
	assert_non_null(strstr(log, "resources        0"));
	assert_non_null(strstr(log, "contexts         0"));
	assert_non_null(strstr(log, "bytes_mapped     0"));
	/* Of the four submits queued, the one in progress when the
	 * front-end hung up ran to its end and no later one was started:
	 * at most two ran (if the first ended just before the hang-up). */
	{
		char *p = strstr(log, "op_saxpy");
		unsigned long n = 0;

		assert_non_null(p);
		assert_int_equal(sscanf(p, "op_saxpy %lu", &n), 1);
		printf("# SAXPY ops run: %lu of %u queued\n", n, 2 * VGPU_COMPUTE_MAX_OPS);
		assert_true(n >= 1 && n <= VGPU_COMPUTE_MAX_OPS);
	}
}

/* The CPU time the daemon uses in one second, in ticks; printed as "idle WHAT". */
static long idle_ticks(pid_t pid, const char *what)
{
	long t0 = cpu_ticks(pid), t;

	usleep(1000000);
	t = cpu_ticks(pid) - t0;
	printf("# idle %s: %ld ticks in 1 s\n", what, t);
	return t;
}

/* Silence costs nothing: no front-end, then a configured front-end that
 * sends nothing, for a second each. */
static void test_idle(void **state)
{
	struct fe_opts o = { .socket_path = df.sock };
	pid_t pid = spawn_daemon();
	struct fe f;

	(void)state;
	usleep(200000);
	assert_true(idle_ticks(pid, "without a front-end") <= 2);
	fe_start(&f, &o);
	display_ok(&f);
	usleep(100000);
	assert_true(idle_ticks(pid, "with a silent front-end") <= 2);
	display_ok(&f);
	fe_stop(&f);
	kill(pid, SIGTERM);
	assert_int_equal(daemon_wait(pid, 20000), 0);
}

/* A front-end that stops half-way through a message is dropped after the
 * I/O timeout (5 s); SIGTERM works meanwhile. */
static void test_stalled_message(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint32_t h[3] = { VU_SET_FEATURES, VU_VERSION, 8 };
	struct fe_opts o = { .socket_path = df.sock };
	pid_t pid = spawn_daemon();
	struct fe f;
	double t0;
	int s, st;
	char c;

	(void)state;
	strcpy(sa.sun_path, df.sock);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	/* The header and half the payload, then nothing. */
	assert_int_equal(write(s, h, 12), 12);
	assert_int_equal(write(s, h, 4), 4);
	t0 = now();
	assert_int_equal(read(s, &c, 1), 0);        /* the daemon hangs up */
	printf("# stalled front-end dropped after %.1f s\n", now() - t0);
	assert_true(now() - t0 >= 4.0 && now() - t0 < 15.0);
	close(s);
	/* The daemon serves the next one. */
	fe_start(&f, &o);
	display_ok(&f);
	fe_stop(&f);
	/* Stalled again, then SIGTERM: the daemon exits without waiting for
	 * the front-end (at most the I/O timeout). */
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(s, h, 6), 6);
	usleep(100000);
	t0 = now();
	kill(pid, SIGTERM);
	st = daemon_wait(pid, 15000);
	printf("# SIGTERM with a stalled front-end: exit %d after %.1f s\n", st, now() - t0);
	assert_int_equal(st, 0);
	close(s);
}

/* What a front-end sees when the daemon is killed: end of stream on the
 * vhost-user socket (replies fail), no more used-ring progress or call
 * signals. A new daemon on the same path serves a new front-end. */
static void test_daemon_killed(void **state)
{
	struct fe_opts o = { .socket_path = df.sock };
	pid_t pid = spawn_daemon();
	struct virtio_gpu_ctrl_hdr h;
	struct fe f;
	uint16_t u;

	(void)state;
	fe_start(&f, &o);
	display_ok(&f);
	kill(pid, SIGKILL);
	assert_int_equal(daemon_wait(pid, 5000), 128 + SIGKILL);
	/* The socket: a GET reply never comes (EOF). */
	assert_true(fe_get_u64(&f, VU_GET_FEATURES) == UINT64_MAX);
	errno = 0;
	assert_int_equal(fe_send(&f, VU_GET_FEATURES, VU_VERSION, NULL, 0, NULL, 0), -1);
	assert_int_equal(errno, EPIPE);
	/* The ring: a posted request is never completed. */
	hdr_init(&h, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
	u = f.ring[0].used->idx;
	fe_post(&f, 0, &h, sizeof(h), 512, 1);
	fe_kick(&f, 0);
	assert_int_equal(fe_wait_used(&f, 0, (uint16_t)(u + 1), 300), -1);
	fe_stop(&f);
	/* The stale socket file is replaced by the next daemon. */
	pid = spawn_daemon();
	fe_start(&f, &o);
	display_ok(&f);
	fe_stop(&f);
	kill(pid, SIGTERM);
	assert_int_equal(daemon_wait(pid, 20000), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disconnect_in_flight),
		cmocka_unit_test(test_idle),
		cmocka_unit_test(test_stalled_message),
		cmocka_unit_test(test_daemon_killed),
	};
	int rc;

	cmocka_set_message_output(CM_OUTPUT_TAP);
	if (argc < 2) {
		printf("1..0 # no daemon path given\n");
		return 1;
	}
	daemon_path = argv[1];
	signal(SIGPIPE, SIG_IGN);
	if (daemon_files_make(&df, "hostd-faults"))
		return 1;
	rc = cmocka_run_group_tests_name("daemon-faults", tests, NULL, NULL);
	daemon_files_remove(&df);
	return rc;
}
