/* SPDX-License-Identifier: MIT */
/*
 * test_worker.c - the worker process that runs a context's programs, driven
 * directly through host/worker.c over a memory file standing in for guest
 * RAM: its windows, builds, kernels and dispatches, and what a hostile
 * kernel can and cannot do from inside it (raw system calls by inline
 * assembly), the deadline, and a worker killed under a dispatch.
 *
 *   test_worker PATH-TO-virtgpu-worker
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
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest_mem.h"
#include "vgpu_compute.h"
#include "worker.h"

#define MB (1u << 20)
#define RAM_SIZE (32u * MB)
#define WIN_OFF (4u * MB)      /* the one window: [4 MiB, +1 MiB) of the file */
#define WIN_SIZE MB
#define CANARY_OFF (16u * MB)  /* never allowed */
#define CANARY 0x6b6e6f5779726143ull

static const char *worker_path;
static int ram_fd;
static uint8_t *ram;           /* the test's own view of "guest RAM" */
static struct guest_mem gm;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct worker *start(void)
{
	struct worker_config c = {
		.path = worker_path, .uid = 65534, .gid = 65534, .name = "test",
		.scratch_bytes = 256u * MB,
	};
	char err[256] = "";
	struct worker *w = worker_start(&c, &gm, err, sizeof(err));

	if (!w)
		fail_msg("worker_start: %s", err);
	return w;
}

static int call(struct worker *w, uint32_t type, const void *a, size_t alen, const void *b,
		size_t blen, int timeout_ms, struct worker_reply *r)
{
	return worker_call(w, type, 0, a, alen, b, blen,
			   timeout_ms < 0 ? -1 : now_ns() + (int64_t)timeout_ms * 1000000, r);
}

static void map_window(struct worker *w, uint32_t res)
{
	struct { struct wp_map m; struct wp_run r; } msg = {
		{ .res = res, .nruns = 1, .size = WIN_SIZE },
		{ .region = 0, .file_off = WIN_OFF, .len = WIN_SIZE },
	};
	struct worker_reply r;

	assert_int_equal(worker_allow(w, res, &msg.r, 1, true), 0);
	assert_int_equal(call(w, WP_MAP, &msg, sizeof(msg), NULL, 0, 10000, &r), 0);
	assert_int_equal(r.status, VGPU_COMPUTE_OK);
	free(r.data);
}

/* Build program id from source; returns the build status. */
static int build(struct worker *w, uint32_t id, const char *src, const char *opts,
		 struct worker_reply *out)
{
	struct wp_build b = { .program = id, .kind = VGPU_PROGRAM_SOURCE,
			      .options_len = (uint32_t)strlen(opts), .data_len = strlen(src) };
	size_t n = sizeof(b) + strlen(opts) + strlen(src);
	uint8_t *msg = malloc(n);
	struct wp_build_reply br;
	struct worker_reply r;

	memcpy(msg, &b, sizeof(b));
	memcpy(msg + sizeof(b), opts, strlen(opts));
	memcpy(msg + sizeof(b) + strlen(opts), src, strlen(src));
	assert_int_equal(call(w, WP_BUILD, msg, n, NULL, 0, 60000, &r), 0);
	free(msg);
	assert_int_equal(r.status, VGPU_COMPUTE_OK);
	assert_true(r.len >= sizeof(br));
	memcpy(&br, r.data, sizeof(br));
	assert_int_equal(r.len, sizeof(br) + br.log_size);
	if (br.status && !out)
		print_message("# build log: %.*s\n", (int)br.log_size, (char *)r.data + sizeof(br));
	if (out)
		*out = r;
	else
		free(r.data);
	return br.status;
}

static void kernel(struct worker *w, uint32_t id, uint32_t prog, const char *name,
		   uint32_t want_args)
{
	struct wp_kernel k = { .kernel = id, .program = prog, .name_len = (uint32_t)strlen(name) };
	struct vgpu_kernel_info info;
	struct worker_reply r;

	assert_int_equal(call(w, WP_KERNEL, &k, sizeof(k), name, strlen(name), 10000, &r), 0);
	assert_int_equal(r.status, VGPU_COMPUTE_OK);
	assert_int_equal(r.cl_error, 0);
	assert_true(r.len >= sizeof(info));
	memcpy(&info, r.data, sizeof(info));
	assert_int_equal(info.num_args, want_args);
	assert_int_equal(r.len, sizeof(info) + want_args * sizeof(struct vgpu_kernel_arg_info));
	free(r.data);
}

/* Dispatch kernel id over n work-items with the window (res 1) as argument
 * 0 and up to two longs by value. Returns worker_call's result; *status the
 * worker's. */
static int dispatch(struct worker *w, uint32_t id, size_t n, int nvals, long v0, long v1,
		    int timeout_ms, int32_t *status)
{
	struct {
		struct wp_dispatch wd;
		struct vgpu_dispatch d;
		struct vgpu_dispatch_arg a[3];
		long vals[2];
	} msg;
	struct worker_reply r;
	int rc;

	memset(&msg, 0, sizeof(msg));
	msg.wd.kernel = id;
	msg.wd.payload_len = (uint32_t)(sizeof(msg) - sizeof(msg.wd));
	msg.d.work_dim = 1;
	msg.d.num_args = 1 + (uint32_t)nvals;
	msg.d.global_size[0] = n;
	msg.a[0] = (struct vgpu_dispatch_arg){ .kind = VGPU_DARG_BUFFER,
					       .access = VGPU_OP_READ | VGPU_OP_WRITE,
					       .res = 1, .size = WIN_SIZE };
	msg.a[1] = (struct vgpu_dispatch_arg){ .kind = VGPU_DARG_VALUE, .offset = 0, .size = 8 };
	msg.a[2] = (struct vgpu_dispatch_arg){ .kind = VGPU_DARG_VALUE, .offset = 8, .size = 8 };
	/* The value area follows the args actually used. */
	if (nvals < 2) {
		memmove(&msg.a[1 + nvals], msg.vals, 0);
	}
	{
		uint8_t buf[sizeof(msg)];
		size_t off = sizeof(msg.wd) + sizeof(msg.d) + (1 + (size_t)nvals) * sizeof(msg.a[0]);
		long vals[2] = { v0, v1 };

		memcpy(buf, &msg, off);
		memcpy(buf + off, vals, (size_t)nvals * 8);
		((struct wp_dispatch *)(void *)buf)->payload_len =
			(uint32_t)(off + (size_t)nvals * 8 - sizeof(msg.wd));
		rc = call(w, WP_DISPATCH, buf, off + (size_t)nvals * 8, NULL, 0, timeout_ms, &r);
	}
	if (rc == 0) {
		*status = r.status;
		free(r.data);
	}
	return rc;
}

static long win_long(size_t i)
{
	long v;

	memcpy(&v, ram + WIN_OFF + i * 8, 8);
	return v;
}

/* ---- the ordinary path ---- */

static const char *src_basic =
	"__kernel void k(__global uint *d, long a, long b) { d[get_global_id(0)] = "
	"(uint)get_global_id(0) * (uint)a + (uint)b; }\n";

static void test_basic(void **state)
{
	struct worker *w = start();
	const struct wp_hello *h = worker_hello(w, NULL, NULL);
	uint32_t v;
	int32_t st;

	(void)state;
	assert_true(h->device[0] != 0);
	print_message("# worker device: %s / %s\n", h->platform, h->device);
	map_window(w, 1);
	assert_int_equal(build(w, 1, src_basic, "", NULL), 0);
	kernel(w, 1, 1, "k", 3);
	assert_int_equal(dispatch(w, 1, 4096, 2, 3, 7, 30000, &st), 0);
	assert_int_equal(st, VGPU_COMPUTE_OK);
	memcpy(&v, ram + WIN_OFF + 4 * 1000, 4);
	assert_int_equal(v, 1000 * 3 + 7);
	assert_int_equal(worker_refused_maps(w), 0);
	worker_free(w);
}

static void test_build_error(void **state)
{
	struct worker *w = start();
	struct worker_reply r;
	struct wp_build_reply br;

	(void)state;
	assert_int_not_equal(build(w, 1, "__kernel void k(__global int *d) { d[0] = nope; }", "", &r),
			     0);
	memcpy(&br, r.data, sizeof(br));
	assert_true(br.log_size > 0);
	assert_non_null(memmem(r.data + sizeof(br), br.log_size, "nope", 4));
	free(r.data);
	worker_free(w);
}

/* ---- hostile kernels ---- */

#ifdef __x86_64__
/* syscall(nr, a, b, c, d, e, f) from inside a kernel; the result goes to
 * d[slot] (a long). */
#define SYSCALL6 \
	"long sys6(long n, long a, long b, long c, long d, long e, long f) {\n" \
	"  long r;\n" \
	"  __asm__ volatile(\"mov %5, %%r10\\n mov %6, %%r8\\n mov %7, %%r9\\n syscall\"\n" \
	"    : \"=a\"(r) : \"a\"(n), \"D\"(a), \"S\"(b), \"d\"(c), \"r\"(d), \"r\"(e), \"r\"(f)\n" \
	"    : \"rcx\", \"r11\", \"r10\", \"r8\", \"r9\", \"memory\");\n" \
	"  return r;\n" \
	"}\n"

static const char *src_hostile =
	SYSCALL6
	"__kernel void sys(__global long *d, long nr, long pid) {\n"
	"  __private char path[32] = \"/proc/self/fd/10\";\n"
	"  __private char sh[16] = \"/bin/sh\";\n"
	"  __private long argv[2] = { 0, 0 };\n"
	"  __private long iov[2] = { 0, 4096 };\n"
	"  long r = -1;\n"
	"  argv[0] = (long)sh; iov[0] = (long)(d + 1024);\n"
	"  switch (nr) {\n"
	"  case 0: r = sys6(9, 0, 4096, 1, 1, 1000, 16 << 20); break;   /* mmap RAM elsewhere */\n"
	"  case 1: r = sys6(25, (long)d, 1 << 20, 2 << 20, 1, 0, 0); break; /* mremap MAYMOVE */\n"
	"  case 2: r = sys6(101, 16, pid, 0, 0, 0, 0); break;         /* ptrace attach */\n"
	"  case 3: r = sys6(310, pid, (long)iov, 1, (long)iov, 1, 0); break; /* process_vm_readv */\n"
	"  case 4: r = sys6(41, 1, 1, 0, 0, 0, 0); break;             /* socket(AF_UNIX) */\n"
	"  case 5: r = sys6(59, (long)sh, (long)argv, 0, 0, 0, 0); break; /* execve /bin/sh */\n"
	"  case 6: r = sys6(257, -100, (long)path, 2, 0, 0, 0); break; /* open /proc/self/fd/10 */\n"
	"  case 7: r = sys6(32, 1000, 0, 0, 0, 0, 0); break;            /* dup(RAM) */\n"
	"  case 8: r = sys6(17, 1000, (long)(d + 1024), 4096, 16 << 20, 0, 0); break; /* pread RAM */\n"
	"  case 9: r = sys6(77, 1000, 0, 0, 0, 0, 0); break;            /* ftruncate RAM */\n"
	"  case 10: r = sys6(56, 17, 0, 0, 0, 0, 0); break;           /* clone: fork */\n"
	"  case 11: r = sys6(216, (long)d, 4096, 0, 4096, 0, 0); break; /* remap_file_pages */\n"
	"  case 12: r = sys6(72, 1000, 0, 0, 0, 0, 0); break;           /* fcntl(RAM, F_DUPFD) */\n"
	"  case 13: r = sys6(425, 8, (long)(d + 1024), 0, 0, 0, 0); break; /* io_uring_setup */\n"
	"  case 14: r = sys6(1, 1000, (long)d, 8, 0, 0, 0); break;      /* write RAM */\n"
	"  case 15: r = sys6(39, 0, 0, 0, 0, 0, 0); break;            /* getpid */\n"
	"  }\n"
	"  d[0] = r;\n"
	"}\n"
	"__kernel void spin(__global long *d, long n) { for (;;) d[1] += n; }\n"
	"__kernel void chatter(__global long *d, long n) {\n"
	"  for (long i = 0; i < n; i++) printf(\"kernel says %ld\\n\", i); d[0] = n; }\n";

static struct worker *hostile;

static int hostile_setup(void **state)
{
	(void)state;
	hostile = start();
	map_window(hostile, 1);
	assert_int_equal(build(hostile, 1, src_hostile, "", NULL), 0);
	kernel(hostile, 1, 1, "sys", 3);
	return 0;
}

static int hostile_teardown(void **state)
{
	(void)state;
	worker_free(hostile);
	hostile = NULL;
	return 0;
}

static long raw(long nr)
{
	int32_t st = -1;

	memset(ram + WIN_OFF, 0, 16);
	assert_int_equal(dispatch(hostile, 1, 1, 2, nr, (long)getpid(), 30000, &st), 0);
	assert_int_equal(st, VGPU_COMPUTE_OK);
	return win_long(0);
}

static void test_raw_syscalls(void **state)
{
	static const struct { long nr; const char *what; long want; } cases[] = {
		{ 0, "mmap of guest RAM outside the windows", -EPERM },
		{ 1, "mremap of a window", -ENOMEM },
		{ 2, "ptrace of the daemon", -EPERM },
		{ 3, "process_vm_readv of the daemon", -EPERM },
		{ 4, "socket", -EPERM },
		{ 5, "execve /bin/sh", -EACCES },
		{ 6, "open /proc/self/fd/1000 (reopening guest RAM)", -ENOENT },
		{ 7, "dup of guest RAM", -EPERM },
		{ 8, "pread of guest RAM", -EPERM },
		{ 9, "ftruncate of guest RAM", -EPERM },
		{ 10, "fork", -EPERM },
		{ 11, "remap_file_pages", -EPERM },
		{ 12, "fcntl on guest RAM", -EPERM },
		{ 13, "io_uring_setup", -EPERM },
		{ 14, "write to guest RAM", -EPERM },
	};
	uint64_t refused0 = worker_refused_maps(hostile);
	uint64_t canary = CANARY;

	(void)state;
	memcpy(ram + CANARY_OFF, &canary, 8);
	/* The kernel runs natively: a raw getpid() works (PID 1 of its own
	 * namespace), so every refusal below is the sandbox's. */
	assert_int_equal(raw(15), 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long r = raw(cases[i].nr);

		print_message("# %s: %ld\n", cases[i].what, r);
		assert_int_equal(r, cases[i].want);
	}
	assert_int_equal(worker_refused_maps(hostile), refused0 + 1);
	/* Still alive and working. */
	assert_int_equal(raw(15), 1);
	assert_false(worker_lost(hostile));
}

static void test_deadline(void **state)
{
	struct worker *w = start();
	int32_t st = -1;
	int64_t t0;

	(void)state;
	map_window(w, 1);
	assert_int_equal(build(w, 1, src_hostile, "", NULL), 0);
	kernel(w, 2, 1, "spin", 2);
	t0 = now_ns();
	assert_int_equal(dispatch(w, 2, 1, 1, 1, 0, 2000, &st), -ETIMEDOUT);
	assert_true(now_ns() - t0 < 4000000000ll);
	assert_true(worker_lost(w));
	/* Lost for good: no call goes through any more. */
	assert_int_equal(dispatch(w, 2, 1, 1, 1, 0, 2000, &st), -EPIPE);
	worker_free(w);
	/* A new worker works. */
	w = start();
	map_window(w, 1);
	assert_int_equal(build(w, 1, src_basic, "", NULL), 0);
	kernel(w, 1, 1, "k", 3);
	assert_int_equal(dispatch(w, 1, 16, 2, 1, 0, 30000, &st), 0);
	assert_int_equal(st, VGPU_COMPUTE_OK);
	worker_free(w);
}

static void test_printf_bounded(void **state)
{
	struct worker *w = start();
	int32_t st = -1;

	(void)state;
	map_window(w, 1);
	assert_int_equal(build(w, 1, src_hostile, "", NULL), 0);
	kernel(w, 3, 1, "chatter", 2);
	assert_int_equal(dispatch(w, 3, 1, 1, 200000, 0, 30000, &st), 0);
	assert_int_equal(st, VGPU_COMPUTE_OK);
	assert_int_equal(win_long(0), 200000);
	worker_free(w);
}

static void test_killed(void **state)
{
	struct worker *w = start();
	int32_t st = -1;
	pid_t pid;

	(void)state;
	map_window(w, 1);
	assert_int_equal(build(w, 1, src_hostile, "", NULL), 0);
	kernel(w, 2, 1, "spin", 2);
	pid = worker_pid(w);
	if (fork() == 0) {
		usleep(300000);
		kill(pid, SIGKILL);
		_exit(0);
	}
	assert_int_equal(dispatch(w, 2, 1, 1, 1, 0, 20000, &st), -EPIPE);
	assert_true(worker_lost(w));
	worker_free(w);
}
#endif

static void test_unmap(void **state)
{
	struct worker *w = start();
	struct wp_unmap u = { .res = 1 };
	struct worker_reply r;

	(void)state;
	map_window(w, 1);
	assert_int_equal(call(w, WP_UNMAP, &u, sizeof(u), NULL, 0, 10000, &r), 0);
	assert_int_equal(r.status, VGPU_COMPUTE_OK);
	free(r.data);
	/* Nothing of guest RAM left mapped: the check passes, the worker lives. */
	assert_int_equal(worker_forbid(w, 1), 0);
	assert_false(worker_lost(w));
	/* Mapping it again without the daemon's leave: refused. */
	{
		struct { struct wp_map m; struct wp_run r; } msg = {
			{ .res = 1, .nruns = 1, .size = WIN_SIZE },
			{ .region = 0, .file_off = WIN_OFF, .len = WIN_SIZE },
		};

		assert_int_equal(call(w, WP_MAP, &msg, sizeof(msg), NULL, 0, 10000, &r), 0);
		assert_int_equal(r.status, VGPU_COMPUTE_E_NOWINDOW);
		free(r.data);
	}
	worker_free(w);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_build_error),
		cmocka_unit_test(test_unmap),
#ifdef __x86_64__
		cmocka_unit_test_setup_teardown(test_raw_syscalls, hostile_setup, hostile_teardown),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_printf_bounded),
		cmocka_unit_test(test_killed),
#endif
	};
	struct gm_region_desc d = { 0, RAM_SIZE, 0, 0 };

	if (argc != 2) {
		fprintf(stderr, "usage: test_worker PATH-TO-virtgpu-worker\n");
		return 2;
	}
	worker_path = argv[1];
	ram_fd = memfd_create("guest-ram", MFD_CLOEXEC);
	if (ram_fd < 0 || ftruncate(ram_fd, RAM_SIZE))
		return 1;
	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd, 0);
	gm_init(&gm);
	if (ram == MAP_FAILED || gm_set_table(&gm, &d, 1, &ram_fd))
		return 1;
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
