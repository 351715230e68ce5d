/* SPDX-License-Identifier: MIT */
/*
 * test_daemon.c - the virtgpu-hostd binary: options, the Unix socket, one
 * front-end after another with all state freed, signals and statistics.
 * argv[1]: path of the daemon.
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
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"

static const char *daemon_path;
static struct daemon_files df;

static pid_t spawn(char *const *args)
{
	return daemon_spawn(args, df.log);
}

static int wait_status(pid_t pid)
{
	return daemon_wait(pid, 5000);
}

static char *read_log(void)
{
	return daemon_log(df.log);
}

/* Run the daemon with args; returns its exit status; output in df.log. */
static int run(char *const *args)
{
	return wait_status(spawn(args));
}

static void test_help(void **state)
{
	char *a[] = { (char *)daemon_path, "--help", NULL };
	char *log;

	(void)state;
	assert_int_equal(run(a), 0);
	log = read_log();
	assert_non_null(strstr(log, "--socket"));
	assert_non_null(strstr(log, "--no-userptr"));
	assert_non_null(strstr(log, "VIRTIO_GPU_F_BLOB_RDONLY (bit 16)"));
	assert_non_null(strstr(log, "--access-platform"));
	assert_non_null(strstr(log, "--threads"));
	assert_non_null(strstr(log, "--verbose"));
	assert_non_null(strstr(log, "--help"));
	assert_non_null(strstr(log, "--backend"));
	assert_non_null(strstr(log, "--map-budget"));
	assert_non_null(strstr(log, "-T, --op-timeout MS"));
	assert_non_null(strstr(log, "(default 60000)"));
}

static void test_bad_options(void **state)
{
	char *a1[] = { (char *)daemon_path, "--bogus", NULL };
	char *a2[] = { (char *)daemon_path, "--socket", df.sock, "--threads", "0", NULL };
	char *a3[] = { (char *)daemon_path, "--socket", df.sock, "--threads", "2x", NULL };
	char *a4[] = { (char *)daemon_path, "--threads", "2", NULL };
	char *a5[] = { (char *)daemon_path, "--socket", df.sock, "extra", NULL };
	char *a6[] = { (char *)daemon_path, "--socket", df.sock, "--backend", "gpu", NULL };
	char *a7[] = { (char *)daemon_path, "--socket", df.sock, "--map-budget", "0", NULL };
	char *a8[] = { (char *)daemon_path, "--socket", df.sock, "--map-budget", "-5", NULL };
	char *a9[] = { (char *)daemon_path, "--socket", df.sock, "--map-budget", "10x", NULL };
	char *a10[] = { (char *)daemon_path, "--socket", df.sock, "--op-timeout", "-1", NULL };
	char *a11[] = { (char *)daemon_path, "--socket", df.sock, "-T", "5s", NULL };
	char *a12[] = { (char *)daemon_path, "--socket", df.sock, "-T", "86400001", NULL };

	(void)state;
	assert_int_equal(run(a6), 2);
	assert_non_null(strstr(read_log(), "--backend is cpu or opencl"));
	assert_int_equal(run(a7), 2);
	assert_non_null(strstr(read_log(), "--map-budget"));
	assert_int_equal(run(a8), 2);
	assert_int_equal(run(a9), 2);
	assert_int_equal(run(a10), 2);
	assert_non_null(strstr(read_log(), "--op-timeout needs milliseconds"));
	assert_int_equal(run(a11), 2);
	assert_non_null(strstr(read_log(), "--op-timeout needs milliseconds"));
	assert_int_equal(run(a12), 2);
	assert_int_equal(run(a1), 2);
	assert_int_equal(run(a2), 2);
	assert_non_null(strstr(read_log(), "--threads"));
	assert_int_equal(run(a3), 2);
	assert_int_equal(run(a4), 2);
	assert_non_null(strstr(read_log(), "--socket PATH is required"));
	assert_int_equal(run(a5), 2);
}

static void use_device(struct fe *f)
{
	struct vgpu_compute_op op;
	uint64_t a;
	uint32_t *p;

	assert_int_equal(cmd_ctx_create(f, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	a = simple_blob(f, 1, 1, 0, 2, 65536);
	assert_true(a);
	assert_int_equal(cmd_attach(f, 1, 1), VIRTIO_GPU_RESP_OK_NODATA);
	op = mkop(VGPU_OP_FILL, 1, 0, 0, 0, 65536, 0xabcd1234);
	assert_int_equal(cmd_submit(f, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	p = fe_ptr(f, a);
	assert_int_equal(p[0], 0xabcd1234);
	assert_int_equal(p[16383], 0xabcd1234);
}

static void test_serve(void **state)
{
	char *a[] = { (char *)daemon_path, "--socket", df.sock, "--threads", "2", "--verbose",
		      "-T", "2500", NULL };
	struct fe_opts o = { .socket_path = df.sock };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fe f;
	pid_t pid;
	int s;
	char *log;

	(void)state;
	/* A stale socket left by an earlier run is replaced. */
	strcpy(sa.sun_path, df.sock);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	pid = spawn(a);
	usleep(100000);

	fe_start(&f, &o);
	use_device(&f);
	fe_stop(&f);
	/* The next front-end finds none of the old state: same ids again. */
	fe_start(&f, &o);
	use_device(&f);
	kill(pid, SIGUSR1);
	usleep(200000);
	log = read_log();
	assert_non_null(strstr(log, "resources        1"));
	assert_non_null(strstr(log, "op_fill"));
	assert_non_null(strstr(log, "CTX_CREATE"));         /* --verbose */
	assert_non_null(strstr(log, "op budget 2500 ms"));  /* -T */
	fe_stop(&f);
	usleep(100000);
	kill(pid, SIGTERM);
	assert_int_equal(wait_status(pid), 0);
	log = read_log();
	assert_non_null(strstr(log, "front-end gone: 0 resources, 0 contexts, 0 bytes mapped"));
	assert_non_null(strstr(log, "connections      2"));
	assert_non_null(strstr(log, "commands"));
	/* The socket is removed at exit. */
	assert_int_equal(access(df.sock, F_OK), -1);
}

/* A device that knows nothing of userptr: no read-only blobs, while a
 * read-write userptr range, a plain guest blob, works as before. */
static void test_no_userptr(void **state)
{
	char *a[] = { (char *)daemon_path, "--socket", df.sock, "--no-userptr", NULL };
	struct fe_opts o = { .socket_path = df.sock };
	struct fe f;
	pid_t pid = spawn(a);

	(void)state;
	fe_start(&f, &o);
	assert_false(f.features & (1ull << VIRTIO_GPU_F_BLOB_RDONLY));
	assert_true(f.features & (1ull << VIRTIO_GPU_F_RESOURCE_BLOB));
	assert_false(f.features & (1ull << VIRTIO_F_ACCESS_PLATFORM));
	assert_int_equal(simple_blob(&f, 0, 1, VIRTIO_GPU_BLOB_FLAG_RDONLY, 1, 4096), 0);
	assert_int_equal(simple_blob(&f, 0, 1, 0x0100, 1, 4096), 0);
	use_device(&f);
	fe_stop(&f);
	kill(pid, SIGINT);
	assert_int_equal(wait_status(pid), 0);
	assert_non_null(strstr(read_log(), "read-only blobs not offered"));
}

/* Offered only when asked; addresses are guest-physical either way. */
static void test_access_platform(void **state)
{
	char *a[] = { (char *)daemon_path, "--socket", df.sock, "--access-platform", NULL };
	struct fe_opts o = { .socket_path = df.sock };
	struct fe f;
	pid_t pid = spawn(a);
	char *log;

	(void)state;
	fe_start(&f, &o);
	assert_true(f.features & (1ull << VIRTIO_F_ACCESS_PLATFORM));
	assert_true(f.features & (1ull << VIRTIO_GPU_F_BLOB_RDONLY));
	assert_int_not_equal(simple_blob(&f, 0, 1, VIRTIO_GPU_BLOB_FLAG_RDONLY, 1, 4096), 0);
	fe_stop(&f);
	kill(pid, SIGINT);
	assert_int_equal(wait_status(pid), 0);
	log = read_log();
	assert_non_null(strstr(log, "access platform"));
}

static void test_not_a_socket(void **state)
{
	char *a[] = { (char *)daemon_path, "--socket", df.log, NULL };

	(void)state;
	/* Never unlinks a file that is not a socket. */
	assert_int_equal(run(a), 1);
	assert_int_equal(access(df.log, F_OK), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_serve),
		cmocka_unit_test(test_no_userptr),
		cmocka_unit_test(test_access_platform),
		cmocka_unit_test(test_not_a_socket),
	};
	int rc;

	cmocka_set_message_output(CM_OUTPUT_TAP);
	if (argc < 2) {
		printf("1..0 # no daemon path given\n");
		return 1;
	}
	daemon_path = argv[1];
	if (daemon_files_make(&df, "hostd-test"))
		return 1;
	rc = cmocka_run_group_tests_name("daemon", tests, NULL, NULL);
	daemon_files_remove(&df);
	return rc;
}
