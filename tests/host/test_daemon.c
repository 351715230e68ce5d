/* SPDX-License-Identifier: MIT */
/*
 * test_daemon.c - the virtgpu-hostd binary: options, the Unix socket, one
 * front-end after another with all state freed, signals and statistics.
 * argv[1]: path of the daemon.
 */
#include <errno.h>
#include <fcntl.h>
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"

static const char *daemon_path;
static char dir[64], sock_path[128], log_path[128];

/* Run the daemon with args; returns its exit status; output in log_path. */
static pid_t spawn(char *const *args)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(fd, 1);
		dup2(fd, 2);
		execv(daemon_path, args);
		_exit(127);
	}
	return pid;
}

static int wait_status(pid_t pid)
{
	int st;

	for (int i = 0; i < 500; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static char *read_log(void)
{
	static char buf[65536];
	FILE *f = fopen(log_path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

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
	assert_non_null(strstr(log, "--threads"));
	assert_non_null(strstr(log, "--verbose"));
	assert_non_null(strstr(log, "--help"));
}

static void test_bad_options(void **state)
{
	char *a1[] = { (char *)daemon_path, "--bogus", NULL };
	char *a2[] = { (char *)daemon_path, "--socket", sock_path, "--threads", "0", NULL };
	char *a3[] = { (char *)daemon_path, "--socket", sock_path, "--threads", "2x", NULL };
	char *a4[] = { (char *)daemon_path, "--threads", "2", NULL };
	char *a5[] = { (char *)daemon_path, "--socket", sock_path, "extra", NULL };

	(void)state;
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
	a = simple_blob(f, 1, 1, VIRTIO_GPU_BLOB_FLAG_USE_USERPTR, 2, 65536);
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
	char *a[] = { (char *)daemon_path, "--socket", sock_path, "--threads", "2", "--verbose", NULL };
	struct fe_opts o = { .socket_path = sock_path };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fe f;
	pid_t pid;
	int s;
	char *log;

	(void)state;
	/* A stale socket left by an earlier run is replaced. */
	strcpy(sa.sun_path, sock_path);
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
	fe_stop(&f);
	usleep(100000);
	kill(pid, SIGTERM);
	assert_int_equal(wait_status(pid), 0);
	log = read_log();
	assert_non_null(strstr(log, "front-end gone: 0 resources, 0 contexts, 0 bytes mapped"));
	assert_non_null(strstr(log, "connections      2"));
	assert_non_null(strstr(log, "commands"));
	/* The socket is removed at exit. */
	assert_int_equal(access(sock_path, F_OK), -1);
}

static void test_no_userptr(void **state)
{
	char *a[] = { (char *)daemon_path, "--socket", sock_path, "--no-userptr", NULL };
	struct fe_opts o = { .socket_path = sock_path };
	struct fe f;
	pid_t pid = spawn(a);

	(void)state;
	fe_start(&f, &o);
	assert_false(f.features & (1ull << VIRTIO_GPU_F_RESOURCE_USERPTR));
	assert_int_equal(simple_blob(&f, 0, 1, VIRTIO_GPU_BLOB_FLAG_USE_USERPTR, 1, 4096), 0);
	fe_stop(&f);
	kill(pid, SIGINT);
	assert_int_equal(wait_status(pid), 0);
}

static void test_not_a_socket(void **state)
{
	char *a[] = { (char *)daemon_path, "--socket", log_path, NULL };

	(void)state;
	/* Never unlinks a file that is not a socket. */
	assert_int_equal(run(a), 1);
	assert_int_equal(access(log_path, F_OK), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_serve),
		cmocka_unit_test(test_no_userptr),
		cmocka_unit_test(test_not_a_socket),
	};
	int rc;

	cmocka_set_message_output(CM_OUTPUT_TAP);
	if (argc < 2) {
		printf("1..0 # no daemon path given\n");
		return 1;
	}
	daemon_path = argv[1];
	strcpy(dir, "/tmp/hostd-test-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
	snprintf(log_path, sizeof(log_path), "%s/log", dir);
	rc = cmocka_run_group_tests_name("daemon", tests, NULL, NULL);
	unlink(sock_path);
	unlink(log_path);
	rmdir(dir);
	return rc;
}
