/* SPDX-License-Identifier: MIT */
/*
 * vgpu-kernel-test - the guest's own OpenCL C kernels through libvgpu 1.2
 * (capset version 3), in the guest: built from source on the device, run
 * on memory this program allocated itself (malloc: zero copy where the
 * kernel pins it, and on the copy path), checked against the CPU. Then
 * what a hostile kernel costs: a kernel that never ends runs into the
 * device's time budget (-ETIME), its context is lost
 * (-ENOTRECOVERABLE), and another process's context, running at the same
 * time, is not. Prints TAP.
 *
 *   vgpu-kernel-test [--budget-ms MS]   (the daemon's --op-timeout)
 */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vgpu/vgpu.h>

#include "tap.h"

static const char SRC[] =
	"__kernel void axpb(__global float *y, __global const float *x, const float a,\n"
	"		   const float b)\n"
	"{\n"
	"	size_t i = get_global_id(0);\n"
	"	y[i] = a * x[i] + b + y[i];\n"
	"}\n"
	"__kernel void group_sum(__global const uint *x, __global uint *out, __local uint *tmp)\n"
	"{\n"
	"	size_t l = get_local_id(0), n = get_local_size(0);\n"
	"	tmp[l] = x[get_global_id(0)];\n"
	"	for (size_t s = n / 2; s > 0; s /= 2) {\n"
	"		barrier(CLK_LOCAL_MEM_FENCE);\n"
	"		if (l < s)\n"
	"			tmp[l] += tmp[l + s];\n"
	"	}\n"
	"	if (l == 0)\n"
	"		out[get_group_id(0)] = tmp[0];\n"
	"}\n"
	"__kernel void grid(__global uint *out, const uint w)\n"
	"{\n"
	"	size_t x = get_global_id(0), y = get_global_id(1);\n"
	"	out[y * w + x] = (uint)(x * 1000 + y);\n"
	"}\n";

static const char SPIN[] =
	"__kernel void spin(__global volatile int *p)\n"
	"{\n"
	"	while (p[0] == 0)\n"
	"		p[1]++;\n"
	"}\n";

static struct vgpu_device *dev;
static struct vgpu_info info;
static int budget_ms = 2000;

static struct vgpu_program *build(struct vgpu_device *d, const char *src, const char *opts)
{
	struct vgpu_build_log log = { .struct_size = sizeof(log) };
	struct vgpu_program *p = NULL;
	int err = vgpu_program_build(d, VGPU_PROGRAM_SOURCE, src, strlen(src), opts, &p, &log);

	if (err || !p)
		tap_diag("build: %s (%s), status %d, log: %s", vgpu_strerror(err),
			 vgpu_error_detail(), log.status, log.log ? log.log : "");
	free(log.log);
	return p;
}

static int run(struct vgpu_batch *b)
{
	int err = vgpu_batch_run(b, NULL);

	if (err)
		tap_diag("run: %s (%s)", vgpu_strerror(err), vgpu_error_detail());
	vgpu_batch_reset(b);
	return err;
}

static struct vgpu_kernel_arg bufarg(struct vgpu_buffer *b, uint64_t off, uint64_t size,
				     uint32_t access)
{
	return (struct vgpu_kernel_arg){ .kind = VGPU_DARG_BUFFER, .access = access, .buf = b,
					 .offset = off, .size = size };
}

static struct vgpu_kernel_arg valarg(const void *v, uint64_t size)
{
	return (struct vgpu_kernel_arg){ .kind = VGPU_DARG_VALUE, .value = v, .size = size };
}

/* axpb on n floats of malloc'd memory, at an odd offset into a page. */
static void test_axpb(struct vgpu_kernel *k, unsigned int flags, const char *what)
{
	const size_t n = 300000;
	float *xm = malloc(n * 4 + 64), *ym = malloc(n * 4 + 64);
	float *x = xm + 3, *y = ym + 5, a = 1.5f, b = -2.0f;
	struct vgpu_buffer *bx = NULL, *by = NULL;
	struct vgpu_ndrange r = { .work_dim = 1, .global = { n } };
	struct vgpu_kernel_arg args[4];
	struct vgpu_batch *bt = NULL;
	size_t bad = 0;
	int err;

	for (size_t i = 0; i < n; i++) {
		x[i] = (float)(i % 1000) * 0.25f;
		y[i] = (float)(i % 7);
	}
	err = vgpu_buffer_from_user(dev, x, n * 4, VGPU_BUF_READ_ONLY | flags, &bx);
	if (!err)
		err = vgpu_buffer_from_user(dev, y, n * 4, flags, &by);
	if (!err)
		err = vgpu_batch_create(dev, &bt);
	if (!tap_ok(!err, "%s: buffers over malloc'd memory (%s)", what,
		    err ? vgpu_error_detail() : by && vgpu_buffer_is_zero_copy(by) ?
		    "zero copy" : "copy path"))
		goto out;
	args[0] = bufarg(by, 0, n * 4, VGPU_OP_READ | VGPU_OP_WRITE);
	args[1] = bufarg(bx, 0, n * 4, VGPU_OP_READ);
	args[2] = valarg(&a, 4);
	args[3] = valarg(&b, 4);
	err = vgpu_batch_dispatch(bt, k, &r, args, 4);
	/* Twice in one batch: ordered on the ring. */
	if (!err)
		err = vgpu_batch_dispatch(bt, k, &r, args, 4);
	if (err)
		tap_diag("%s: dispatch: %s", what, vgpu_error_detail());
	if (!err)
		err = run(bt);
	for (size_t i = 0; i < n; i++) {
		float y0 = (float)(i % 7), x0 = (float)(i % 1000) * 0.25f;
		float want = a * x0 + b + (a * x0 + b + y0);

		bad += fabsf(y[i] - want) > 1e-4f * fabsf(want) + 1e-5f;
	}
	tap_ok(!err && bad == 0, "%s: two dispatches of axpb over %zu floats: verified "
	       "(%zu wrong, %d)", what, n, bad, err);
	/* A read-only buffer cannot be bound for writing. */
	args[0] = bufarg(bx, 0, n * 4, VGPU_OP_READ | VGPU_OP_WRITE);
	err = vgpu_batch_dispatch(bt, k, &r, args, 4);
	tap_ok(err == -EACCES, "%s: a read-only buffer bound for writing: -EACCES (%d)", what,
	       err);
	args[0] = bufarg(by, 8, n * 4, VGPU_OP_READ | VGPU_OP_WRITE);
	err = vgpu_batch_dispatch(bt, k, &r, args, 4);
	tap_ok(err == -ERANGE, "%s: a binding past its buffer: -ERANGE (%d)", what, err);
out:
	vgpu_batch_destroy(bt);
	vgpu_buffer_destroy(bx);
	vgpu_buffer_destroy(by);
	free(xm);
	free(ym);
}

static void test_local_and_2d(struct vgpu_program *p)
{
	const uint32_t n = 1 << 16, lsz = 64, w = 48, h = 20;
	uint32_t *x = malloc(n * 4), *sums = calloc(n / lsz, 4), *g = calloc(w * h, 4);
	struct vgpu_buffer *bx = NULL, *bs = NULL, *bg = NULL;
	struct vgpu_kernel *ks = NULL, *kg = NULL;
	struct vgpu_batch *bt = NULL;
	struct vgpu_kernel_arg args[3];
	struct vgpu_ndrange r = { .work_dim = 1, .global = { n }, .local = { lsz } };
	struct vgpu_ndrange r2 = { .work_dim = 2, .global = { w, h }, .local = { 16, 4 } };
	size_t bad = 0;
	int err;

	for (uint32_t i = 0; i < n; i++)
		x[i] = i * 2654435761u >> 7;
	err = vgpu_kernel_create(p, "group_sum", &ks);
	if (!err)
		err = vgpu_kernel_create(p, "grid", &kg);
	if (!err)
		err = vgpu_buffer_from_user(dev, x, n * 4, VGPU_BUF_READ_ONLY, &bx);
	if (!err)
		err = vgpu_buffer_from_user(dev, sums, n / lsz * 4, 0, &bs);
	if (!err)
		err = vgpu_buffer_from_user(dev, g, w * h * 4, 0, &bg);
	if (!err)
		err = vgpu_batch_create(dev, &bt);
	if (!tap_ok(!err, "group_sum and grid: kernels and buffers (%d)", err))
		goto out;
	args[0] = bufarg(bx, 0, n * 4, VGPU_OP_READ);
	args[1] = bufarg(bs, 0, n / lsz * 4, VGPU_OP_WRITE);
	args[2] = (struct vgpu_kernel_arg){ .kind = VGPU_DARG_LOCAL, .size = lsz * 4 };
	err = vgpu_batch_dispatch(bt, ks, &r, args, 3);
	args[0] = bufarg(bg, 0, w * h * 4, VGPU_OP_WRITE);
	args[1] = valarg(&w, 4);
	if (!err)
		err = vgpu_batch_dispatch(bt, kg, &r2, args, 2);
	if (!err)
		err = run(bt);
	for (uint32_t gi = 0; gi < n / lsz; gi++) {
		uint32_t s = 0;

		for (uint32_t i = 0; i < lsz; i++)
			s += x[gi * lsz + i];
		bad += sums[gi] != s;
	}
	tap_ok(!err && bad == 0, "group_sum: %u work-groups of %u with local memory: verified "
	       "(%zu wrong)", n / lsz, lsz, bad);
	bad = 0;
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t xx = 0; xx < w; xx++)
			bad += g[y * w + xx] != xx * 1000 + y;
	tap_ok(!err && bad == 0, "grid: a 2-D NDRange of %ux%u in groups of 16x4: verified "
	       "(%zu wrong)", w, h, bad);
	/* Work sizes the device refuses. */
	r.local[0] = 48; /* does not divide 65536 */
	args[0] = bufarg(bx, 0, n * 4, VGPU_OP_READ);
	args[1] = bufarg(bs, 0, n / lsz * 4, VGPU_OP_WRITE);
	args[2] = (struct vgpu_kernel_arg){ .kind = VGPU_DARG_LOCAL, .size = 1ull << 40 };
	err = vgpu_batch_dispatch(bt, ks, &r, args, 3);
	if (!err)
		err = run(bt);
	tap_ok(err == -EDOM || err == -EINVAL,
	       "a TiB of local memory and a local size that does not divide: refused (%d: %s)",
	       err, vgpu_error_detail());
out:
	vgpu_batch_destroy(bt);
	vgpu_kernel_destroy(ks);
	vgpu_kernel_destroy(kg);
	vgpu_buffer_destroy(bx);
	vgpu_buffer_destroy(bs);
	vgpu_buffer_destroy(bg);
	free(x);
	free(sums);
	free(g);
}

static void test_build_error_and_binary(struct vgpu_program *p)
{
	struct vgpu_build_log log = { .struct_size = sizeof(log) };
	struct vgpu_program *q = NULL, *bin = NULL;
	const char broken[] = "__kernel void f(__global int *p) { p[0] = undeclared_thing; }\n";
	struct vgpu_kernel *k = NULL;
	void *data = NULL;
	size_t size = 0;
	int err;

	err = vgpu_program_build(dev, VGPU_PROGRAM_SOURCE, broken, strlen(broken), NULL, &q, &log);
	tap_ok(err == 0 && !q && log.status == -11 && log.log &&
	       strstr(log.log, "undeclared_thing"),
	       "a build error: status %d, and the compiler's log names the mistake", log.status);
	free(log.log);
	log = (struct vgpu_build_log){ .struct_size = sizeof(log) };
	err = vgpu_program_build(dev, VGPU_PROGRAM_SOURCE, SRC, strlen(SRC), "-cl-no-such-opt",
				 &q, &log);
	tap_ok(err == 0 && !q && log.status != 0, "bad build options: refused (status %d)",
	       log.status);
	free(log.log);
	err = vgpu_program_build(dev, VGPU_PROGRAM_IL, "\x03\x02\x23\x07", 4, NULL, &q, NULL);
	tap_ok((info.features & VGPU_FEATURE_IL) || err == -EOPNOTSUPP,
	       "SPIR-V without an IL version on the device: -EOPNOTSUPP (%d)", err);
	err = vgpu_program_binary(p, &data, &size);
	tap_ok(!err && size > 0, "the program's binary: %zu bytes", size);
	log = (struct vgpu_build_log){ .struct_size = sizeof(log) };
	if (!err)
		err = vgpu_program_build(dev, VGPU_PROGRAM_BINARY, data, size, NULL, &bin, &log);
	tap_ok(!err && bin && vgpu_program_num_kernels(bin) == 3,
	       "built again from that binary: %u kernels", bin ? vgpu_program_num_kernels(bin) : 0);
	free(log.log);
	if (bin) {
		uint32_t na = 0;
		const struct vgpu_kernel_arg_info *ai;

		err = vgpu_kernel_create(bin, "axpb", &k);
		ai = k ? vgpu_kernel_get_args(k, &na) : NULL;
		tap_ok(!err && na == 4, "its axpb kernel, %u arguments", na);
		for (uint32_t i = 0; ai && i < na; i++)
			tap_diag("argument %u: space %u, type '%s', name '%s'", i, ai[i].space,
				 ai[i].type_name, ai[i].name);
		if (k)
			test_axpb(k, 0, "from the binary");
		vgpu_kernel_destroy(k);
	}
	vgpu_program_destroy(bin);
	free(data);
}

/* A kernel that never ends, in a process of its own: its context only. */
static int hostile_child(int wfd)
{
	struct vgpu_device *d = NULL;
	struct vgpu_program *p;
	struct vgpu_kernel *k = NULL;
	struct vgpu_buffer *b = NULL;
	struct vgpu_batch *bt = NULL;
	struct vgpu_ndrange r = { .work_dim = 1, .global = { 1 } };
	struct vgpu_kernel_arg a;
	int res[4] = { 1, 1, 1, 1 };
	int *mem;

	if (vgpu_open(NULL, 0, &d))
		return 1;
	p = build(d, SPIN, NULL);
	mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!p || mem == MAP_FAILED || vgpu_kernel_create(p, "spin", &k) ||
	    vgpu_buffer_from_user(d, mem, 4096, 0, &b) || vgpu_batch_create(d, &bt))
		return 1;
	memset(mem, 0, 4096);
	a = bufarg(b, 0, 64, VGPU_OP_READ | VGPU_OP_WRITE);
	vgpu_batch_set_timeout(bt, VGPU_TIMEOUT_INFINITE);
	vgpu_batch_dispatch(bt, k, &r, &a, 1);
	res[0] = vgpu_batch_run(bt, NULL);
	vgpu_batch_reset(bt);
	vgpu_batch_dispatch(bt, k, &r, &a, 1);
	res[1] = vgpu_batch_run(bt, NULL);
	vgpu_batch_reset(bt);
	/* The built-in ops still work in the lost context. */
	vgpu_batch_fill(bt, b, 0, 4096, 0x5au);
	res[2] = vgpu_batch_run(bt, NULL);
	res[3] = mem[1000] == 0x5a;
	if (write(wfd, res, sizeof(res)) != sizeof(res))
		return 1;
	vgpu_close(d);
	return 0;
}

/* A small axpb, checked: whether it ran right. */
static bool quiet_axpb(struct vgpu_kernel *k)
{
	const size_t n = 4096;
	float *x = calloc(n, 4), *y = calloc(n, 4), a = 1, b = 1;
	struct vgpu_buffer *bx = NULL, *by = NULL;
	struct vgpu_batch *bt = NULL;
	struct vgpu_ndrange r = { .work_dim = 1, .global = { n } };
	struct vgpu_kernel_arg args[4];
	bool good;
	int err = x && y ? vgpu_buffer_from_user(dev, x, n * 4, 0, &bx) : -ENOMEM;

	if (!err)
		err = vgpu_buffer_from_user(dev, y, n * 4, 0, &by);
	if (!err)
		err = vgpu_batch_create(dev, &bt);
	args[0] = bufarg(by, 0, n * 4, VGPU_OP_READ | VGPU_OP_WRITE);
	args[1] = bufarg(bx, 0, n * 4, VGPU_OP_READ);
	args[2] = valarg(&a, 4);
	args[3] = valarg(&b, 4);
	if (!err)
		err = vgpu_batch_dispatch(bt, k, &r, args, 4);
	if (!err)
		err = run(bt);
	good = !err && y[n - 1] == 1.0f;
	vgpu_batch_destroy(bt);
	vgpu_buffer_destroy(bx);
	vgpu_buffer_destroy(by);
	free(x);
	free(y);
	return good;
}

static void test_hostile(struct vgpu_kernel *k)
{
	int pfd[2], res[4] = { 0 }, st = 0, rounds = 0, good = 0;
	struct timespec t0, t1;
	pid_t pid;

	if (!tap_ok(pipe(pfd) == 0, "a pipe"))
		return;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		_exit(hostile_child(pfd[1]));
	}
	close(pfd[1]);
	/* Meanwhile this process's context keeps working. */
	for (;;) {
		struct timespec ts;

		good += quiet_axpb(k);
		rounds++;
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		ts = (struct timespec){ 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		if (rounds > 100000)
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (read(pfd[0], res, sizeof(res)) != sizeof(res))
		memset(res, 0, sizeof(res));
	close(pfd[0]);
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the hostile process ran (status %#x)", st);
	tap_ok(res[0] == -ETIME, "an endless kernel: -ETIME once the budget ran out (%d: %s)",
	       res[0], vgpu_strerror(res[0]));
	tap_ok(res[1] == -ENOTRECOVERABLE,
	       "the next dispatch of that context: -ENOTRECOVERABLE, the context is lost (%d)",
	       res[1]);
	tap_ok(res[2] == 0 && res[3] == 1, "the lost context's built-in ops still run (%d, %d)",
	       res[2], res[3]);
	tap_ok(good == rounds && rounds >= 2,
	       "this process's context ran its kernel %d times meanwhile, all right (%d)", rounds,
	       good);
	tap_diag("the hostile process took %.1f s (budget %d ms)",
		 (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, budget_ms);
}

int main(int argc, char **argv)
{
	struct vgpu_program *p;
	struct vgpu_kernel *k = NULL, *none = NULL;
	const struct vgpu_kernel_arg_info *ai;
	const struct vgpu_kernel_info *ki;
	uint32_t nargs = 0;
	void *di = NULL;
	size_t dsize = 0;
	int err;

	for (int i = 1; i + 1 < argc; i += 2)
		if (!strcmp(argv[i], "--budget-ms"))
			budget_ms = atoi(argv[i + 1]);
	err = vgpu_open(NULL, 0, &dev);
	if (err) {
		printf("Bail out! vgpu_open: %s (%s)\n", vgpu_strerror(err), vgpu_error_detail());
		return 1;
	}
	vgpu_get_info(dev, &info);
	tap_diag("capset version %u, features %#x, userptr %d, budget %" PRIu64 " ns",
		 info.caps.version, info.features, info.userptr, info.time_budget_ns);
	if (!tap_ok(info.caps.version >= 3 && (info.features & VGPU_FEATURE_PROGRAMS),
		    "the device runs the guest's programs (capset version %u)", info.caps.version)) {
		vgpu_close(dev);
		return tap_done();
	}
	err = vgpu_query_device_info(dev, &di, &dsize);
	tap_ok(!err && dsize > 0, "the device's OpenCL description: %zu bytes", dsize);
	free(di);
	p = build(dev, SRC, "-cl-fast-relaxed-math");
	if (!tap_ok(p && vgpu_program_num_kernels(p) == 3, "built from OpenCL C source: %u kernels",
		    p ? vgpu_program_num_kernels(p) : 0)) {
		vgpu_close(dev);
		return tap_done();
	}
	err = vgpu_kernel_create(p, "no_such_kernel", &none);
	tap_ok(err == -ENOENT && !none, "a kernel name the program lacks: -ENOENT (%d)", err);
	err = vgpu_kernel_create(p, "axpb", &k);
	ki = k ? vgpu_kernel_get_info(k) : NULL;
	ai = k ? vgpu_kernel_get_args(k, &nargs) : NULL;
	tap_ok(!err && ki && ki->work_group_size > 0, "kernel axpb: work-group size %" PRIu64,
	       ki ? ki->work_group_size : 0);
	tap_ok(ai && nargs == 4 && ai[0].space == VGPU_ARG_SPACE_GLOBAL &&
	       ai[2].space == VGPU_ARG_SPACE_PRIVATE && !strcmp(ai[0].type_name, "float*") &&
	       !strcmp(ai[1].name, "x"),
	       "its arguments: %u, (%s %s, %s %s, ...)", nargs, ai ? ai[0].type_name : "",
	       ai ? ai[0].name : "", ai ? ai[1].type_name : "", ai ? ai[1].name : "");
	if (k) {
		test_axpb(k, 0, "malloc");
		test_axpb(k, VGPU_BUF_COPY, "copy path");
	}
	test_local_and_2d(p);
	test_build_error_and_binary(p);
	if (k)
		test_hostile(k);
	vgpu_kernel_destroy(k);
	vgpu_program_destroy(p);
	vgpu_close(dev);
	return tap_done();
}
