// SPDX-License-Identifier: MIT
/*
 * clblast-bench - CLBlast's xGEMM and xAXPY at given sizes on the first
 * OpenCL device, timed as CLBlast's own benchmark client times them (the
 * routine's wall time from the call to clFinish, after one untimed call
 * that builds its kernels), for scripts/run-bench-clprograms.sh. Debian
 * packages CLBlast's tests and tuners but not its benchmark clients, so
 * this is the same library call driven by a small program: the same
 * binary runs natively and in the guest through the guest's ICD
 * (OCL_ICD_VENDORS picks the side).
 *
 *   clblast-bench [--runs N] sgemm|dgemm|saxpy|daxpy SIZE...
 *
 * One line per size: "<routine> <size> <median ms> <GFLOPS> <GB/s>".
 * GEMM is square (m = n = k = SIZE), AXPY has SIZE elements; the byte
 * count is what the routine must read and write at least.
 */
#define CL_TARGET_OPENCL_VERSION 300
#include <CL/cl.h>
#include <clblast_c.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RUNS 1000

struct bench {
	cl_context ctx;
	cl_command_queue q;
	const char *routine;
	bool gemm, dbl;
	size_t elem;
};

static void die(const char *what, long code)
{
	fprintf(stderr, "clblast-bench: %s failed (%ld)\n", what, code);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static cl_mem buffer(struct bench *b, size_t count)
{
	size_t bytes = count * b->elem;
	cl_int err;
	cl_mem m = clCreateBuffer(b->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
	void *host;

	if (!m)
		die("clCreateBuffer", err);
	host = malloc(bytes);
	if (!host)
		die("malloc", ENOMEM);
	/* Small values: the sums stay finite at every size. */
	for (size_t i = 0; i < count; i++) {
		double v = (double)((i * 2654435761u) % 1000) / 1000.0 - 0.5;

		if (b->dbl)
			((double *)host)[i] = v;
		else
			((float *)host)[i] = (float)v;
	}
	err = clEnqueueWriteBuffer(b->q, m, CL_TRUE, 0, bytes, host, 0, NULL, NULL);
	free(host);
	if (err != CL_SUCCESS)
		die("clEnqueueWriteBuffer", err);
	return m;
}

static CLBlastStatusCode call(struct bench *b, size_t n, cl_mem x, cl_mem y, cl_mem z)
{
	if (b->gemm && b->dbl)
		return CLBlastDgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo,
				    n, n, n, 1.0, x, 0, n, y, 0, n, 0.5, z, 0, n, &b->q, NULL);
	if (b->gemm)
		return CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo,
				    n, n, n, 1.0f, x, 0, n, y, 0, n, 0.5f, z, 0, n, &b->q, NULL);
	if (b->dbl)
		return CLBlastDaxpy(n, 0.75, x, 0, 1, y, 0, 1, &b->q, NULL);
	return CLBlastSaxpy(n, 0.75f, x, 0, 1, y, 0, 1, &b->q, NULL);
}

/* One call of the routine, to its end. */
static void call_to_end(struct bench *b, size_t n, cl_mem x, cl_mem y, cl_mem z)
{
	CLBlastStatusCode s = call(b, n, x, y, z);
	cl_int err;

	if (s != CLBlastSuccess)
		die(b->routine, s);
	err = clFinish(b->q);
	if (err != CL_SUCCESS)
		die("clFinish", err);
}

static void run_size(struct bench *b, size_t n, unsigned int runs)
{
	size_t count = b->gemm ? n * n : n;
	double t[MAX_RUNS], med, flops, bytes;
	cl_mem x = buffer(b, count), y = buffer(b, count), z = NULL;

	if (b->gemm)
		z = buffer(b, count);
	/* The first call builds the routine's kernels (CLBlast caches them). */
	call_to_end(b, n, x, y, z);
	for (unsigned int r = 0; r < runs; r++) {
		double t0 = now_s();

		call_to_end(b, n, x, y, z);
		t[r] = now_s() - t0;
	}
	qsort(t, runs, sizeof(t[0]), cmp_double);
	med = runs % 2 ? t[runs / 2] : (t[runs / 2 - 1] + t[runs / 2]) / 2;
	if (b->gemm) {
		flops = 2.0 * n * n * n;
		bytes = 4.0 * n * n * b->elem;   /* A, B read; C read and written */
	} else {
		flops = 2.0 * n;
		bytes = 3.0 * n * b->elem;       /* x read; y read and written */
	}
	printf("%s %zu %.4f %.3f %.3f\n", b->routine, n, med * 1e3, flops / med / 1e9,
	       bytes / med / 1e9);
	fflush(stdout);
	clReleaseMemObject(x);
	clReleaseMemObject(y);
	if (z)
		clReleaseMemObject(z);
}

static bool parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > (1ull << 28))
		return false;
	*out = (size_t)v;
	return true;
}

int main(int argc, char **argv)
{
	struct bench b = { 0 };
	unsigned int runs = 5;
	cl_platform_id plat;
	cl_device_id dev;
	cl_ulong max_alloc;
	cl_int err;
	int i = 1;

	if (argc > 2 && !strcmp(argv[1], "--runs")) {
		unsigned long v = strtoul(argv[2], NULL, 10);

		if (v == 0 || v > MAX_RUNS) {
			fprintf(stderr, "clblast-bench: --runs wants 1 to %d\n", MAX_RUNS);
			return 2;
		}
		runs = (unsigned int)v;
		i = 3;
	}
	if (argc - i < 2) {
		fprintf(stderr, "usage: clblast-bench [--runs N] sgemm|dgemm|saxpy|daxpy SIZE...\n");
		return 2;
	}
	b.routine = argv[i++];
	if (!strcmp(b.routine, "sgemm") || !strcmp(b.routine, "dgemm"))
		b.gemm = true;
	else if (strcmp(b.routine, "saxpy") && strcmp(b.routine, "daxpy")) {
		fprintf(stderr, "clblast-bench: unknown routine '%s'\n", b.routine);
		return 2;
	}
	b.dbl = b.routine[0] == 'd';
	b.elem = b.dbl ? sizeof(double) : sizeof(float);
	err = clGetPlatformIDs(1, &plat, NULL);
	if (err != CL_SUCCESS)
		die("clGetPlatformIDs", err);
	err = clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, 1, &dev, NULL);
	if (err != CL_SUCCESS)
		die("clGetDeviceIDs", err);
	err = clGetDeviceInfo(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof(max_alloc), &max_alloc,
			      NULL);
	if (err != CL_SUCCESS)
		die("clGetDeviceInfo", err);
	b.ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
	if (!b.ctx)
		die("clCreateContext", err);
	b.q = clCreateCommandQueueWithProperties(b.ctx, dev, NULL, &err);
	if (!b.q)
		die("clCreateCommandQueueWithProperties", err);
	for (; i < argc; i++) {
		size_t n;

		if (!parse_size(argv[i], &n)) {
			fprintf(stderr, "clblast-bench: bad size '%s'\n", argv[i]);
			return 2;
		}
		if ((b.gemm ? (uint64_t)n * n : n) * b.elem > max_alloc) {
			fprintf(stderr, "clblast-bench: %s %zu is past the device's max allocation\n",
				b.routine, n);
			return 2;
		}
		run_size(&b, n, runs);
	}
	clReleaseCommandQueue(b.q);
	clReleaseContext(b.ctx);
	return 0;
}
