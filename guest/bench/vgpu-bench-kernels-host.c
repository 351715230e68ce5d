/* SPDX-License-Identifier: MIT */
/*
 * vgpu-bench-kernels-host - host-native figures for vgpu-bench-kernels:
 * the same OpenCL C (bench_kernels.h) on the same OpenCL device the
 * daemon's workers use, enqueued by this process on a malloc'd host buffer
 * (CL_MEM_USE_HOST_PTR), no device, no worker, no guest. Each timed run is
 * one enqueue and its clFinish, as a dispatch is in the worker.
 *
 * Prints rows in vgpu-bench-kernels' format:
 *   kernels <what> <MiB> <median_us> <runs>
 * with what: empty-dispatch (the enqueue of an empty kernel), stream,
 * compute.
 *
 *   vgpu-bench-kernels-host [--runs N] [--latency-runs N] [--max-mib N]
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_kernels.h"

static void check(cl_int e, const char *what)
{
	if (e != CL_SUCCESS) {
		fprintf(stderr, "vgpu-bench-kernels-host: %s: OpenCL error %d\n", what, (int)e);
		exit(1);
	}
}

static void row(const char *what, unsigned int mib, double *t, unsigned int n)
{
	printf("kernels %s %u %.1f %u\n", what, mib, bk_median(t, n), n);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	unsigned int runs = 7, lat_runs = 200, max_mib = 256;
	static double t[1000];
	cl_platform_id plat;
	cl_device_id cdev;
	cl_context ctx;
	cl_command_queue q;
	cl_program prog;
	cl_kernel k_empty, k_stream, k_compute;
	const char *src = BENCH_KERNELS_SRC;
	char name[256] = "";
	cl_int e;

	for (int i = 1; i + 1 < argc; i += 2) {
		unsigned int v = (unsigned int)strtoul(argv[i + 1], NULL, 0);

		if (!strcmp(argv[i], "--runs"))
			runs = v;
		else if (!strcmp(argv[i], "--latency-runs"))
			lat_runs = v;
		else if (!strcmp(argv[i], "--max-mib"))
			max_mib = v;
	}
	if (runs < 1 || runs > BENCH_KERNEL_MAX_RUNS || lat_runs < 1 || lat_runs > 1000) {
		fprintf(stderr, "vgpu-bench-kernels-host: --runs 1..%u, --latency-runs 1..1000\n",
			BENCH_KERNEL_MAX_RUNS);
		return 2;
	}
	check(clGetPlatformIDs(1, &plat, NULL), "clGetPlatformIDs");
	check(clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, 1, &cdev, NULL), "clGetDeviceIDs");
	clGetDeviceInfo(cdev, CL_DEVICE_NAME, sizeof(name) - 1, name, NULL);
	printf("# host-native on %s\n", name);
	ctx = clCreateContext(NULL, 1, &cdev, NULL, NULL, &e);
	check(e, "clCreateContext");
	q = clCreateCommandQueue(ctx, cdev, 0, &e);
	check(e, "clCreateCommandQueue");
	prog = clCreateProgramWithSource(ctx, 1, &src, NULL, &e);
	check(e, "clCreateProgramWithSource");
	check(clBuildProgram(prog, 1, &cdev, "", NULL, NULL), "clBuildProgram");
	k_empty = clCreateKernel(prog, "empty", &e);
	check(e, "empty");
	k_stream = clCreateKernel(prog, "stream", &e);
	check(e, "stream");
	k_compute = clCreateKernel(prog, "compute", &e);
	check(e, "compute");

	{
		void *mem = aligned_alloc(4096, 4096);
		cl_mem m = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR, 4096, mem, &e);
		size_t g = 1;

		check(e, "clCreateBuffer");
		check(clSetKernelArg(k_empty, 0, sizeof(m), &m), "clSetKernelArg");
		for (unsigned int i = 0; i < lat_runs + 5; i++) {
			double t0 = bk_now_us();

			check(clEnqueueNDRangeKernel(q, k_empty, 1, NULL, &g, NULL, 0, NULL, NULL),
			      "enqueue");
			check(clFinish(q), "clFinish");
			if (i >= 5)
				t[i - 5] = bk_now_us() - t0;
		}
		row("empty-dispatch", 0, t, lat_runs);
		clReleaseMemObject(m);
		free(mem);
	}
	for (unsigned int s = 0; s < BENCH_KERNEL_SIZES; s++) {
		unsigned int mib = bench_kernel_mib[s];
		size_t n = (size_t)mib << 20, g = n / 4;
		float *y, a = 0.999f, c = 0.001f;
		cl_mem m;

		if (mib > max_mib)
			break;
		y = aligned_alloc(4096, n);
		if (!y) {
			fprintf(stderr, "vgpu-bench-kernels-host: out of memory\n");
			return 1;
		}
		for (size_t i = 0; i < n / 4; i++)
			y[i] = (float)(i & 1023);
		m = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR, n, y, &e);
		check(e, "clCreateBuffer");
		for (unsigned int what = 0; what < 2; what++) {
			cl_kernel k = what ? k_compute : k_stream;

			check(clSetKernelArg(k, 0, sizeof(m), &m), "arg 0");
			check(clSetKernelArg(k, 1, 4, &a), "arg 1");
			check(clSetKernelArg(k, 2, 4, &c), "arg 2");
			for (unsigned int i = 0; i < runs + 1; i++) {
				double t0 = bk_now_us();

				check(clEnqueueNDRangeKernel(q, k, 1, NULL, &g, NULL, 0, NULL, NULL),
				      "enqueue");
				check(clFinish(q), "clFinish");
				if (i >= 1)
					t[i - 1] = bk_now_us() - t0;
			}
			row(what ? "compute" : "stream", mib, t, runs);
		}
		clReleaseMemObject(m);
		free(y);
	}
	clReleaseKernel(k_empty);
	clReleaseKernel(k_stream);
	clReleaseKernel(k_compute);
	clReleaseProgram(prog);
	clReleaseCommandQueue(q);
	clReleaseContext(ctx);
	return 0;
}
