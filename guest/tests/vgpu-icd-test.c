// SPDX-License-Identifier: MIT
/*
 * vgpu-icd-test - the guest's OpenCL ICD through the ICD loader, as an
 * application uses it: zero copy on the application's pages, sub-buffers,
 * program binaries, events (user events, callbacks, profiling), the error
 * codes the specification gives, and a kernel that runs past the device's
 * budget: its event reports an error, and a new context works. Run it in
 * the guest with OCL_ICD_VENDORS naming the ICD's directory and the daemon
 * with a short --op-timeout (tests/system/e2e-clprograms.sh). TAP output.
 */
#define CL_TARGET_OPENCL_VERSION 300
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tap.h"

#define N 4096

static const char *src =
	"__kernel void saxpy(__global float *y, __global const float *x, float a)\n"
	"{ size_t i = get_global_id(0); y[i] = a * x[i] + y[i]; }\n"
	"__kernel __attribute__((reqd_work_group_size(64, 1, 1)))\n"
	"void scale(__global double *y, double a, long add)\n"
	"{ size_t i = get_global_id(0); y[i] = y[i] * a + (double)add; }\n"
	"__kernel void sum(__global const uint *x, __global uint *out, __local uint *tmp)\n"
	"{ size_t l = get_local_id(0); tmp[l] = x[get_global_id(0)];\n"
	"  barrier(CLK_LOCAL_MEM_FENCE);\n"
	"  if (!l) { uint s = 0; for (size_t i = 0; i < get_local_size(0); i++) s += tmp[i];\n"
	"    out[get_group_id(0)] = s; } }\n"
	"__kernel void spin(__global volatile uint *p)\n"
	"{ while (p[0] != 12345u) p[1]++; }\n"
	"__kernel void fill(__global uint *p, uint v, uint iters)\n"
	"{ uint x = v; for (uint k = 0; k < iters; k++) x = x * 1664525u + 1013904223u;\n"
	"  p[get_global_id(0)] = v + (x == 7u && iters == 3u ? 1u : 0u); }\n";

static cl_platform_id plat;
static cl_device_id dev;

static bool setup(cl_context *ctx, cl_command_queue *q, cl_program *prog)
{
	cl_int err;

	*ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
	if (!*ctx)
		return false;
	*q = clCreateCommandQueue(*ctx, dev, CL_QUEUE_PROFILING_ENABLE, &err);
	if (!*q)
		return false;
	*prog = clCreateProgramWithSource(*ctx, 1, &src, NULL, &err);
	return *prog && clBuildProgram(*prog, 1, &dev, "", NULL, NULL) == CL_SUCCESS;
}

static bool run_saxpy(cl_context ctx, cl_command_queue q, cl_program prog, float *y, float *x)
{
	cl_int err;
	cl_kernel k = clCreateKernel(prog, "saxpy", &err);
	cl_mem by = clCreateBuffer(ctx, CL_MEM_USE_HOST_PTR, N * 4, y, &err);
	cl_mem bx = clCreateBuffer(ctx, CL_MEM_USE_HOST_PTR | CL_MEM_READ_ONLY, N * 4, x, &err);
	float a = 2.0f;
	size_t g = N;
	bool good = k && by && bx;

	good = good && !clSetKernelArg(k, 0, sizeof(by), &by) &&
	       !clSetKernelArg(k, 1, sizeof(bx), &bx) && !clSetKernelArg(k, 2, sizeof(a), &a) &&
	       !clEnqueueNDRangeKernel(q, k, 1, NULL, &g, NULL, 0, NULL, NULL) && !clFinish(q);
	clReleaseMemObject(by);
	clReleaseMemObject(bx);
	clReleaseKernel(k);
	return good;
}

static int callback_status = 1;
static void CL_CALLBACK on_complete(cl_event e, cl_int status, void *data)
{
	(void)e;
	(void)data;
	callback_status = status;
}

int main(void)
{
	cl_context ctx;
	cl_command_queue q;
	cl_program prog;
	cl_int err;
	char name[128] = "";
	float *x = aligned_alloc(4096, N * 4), *y = aligned_alloc(4096, N * 4);
	bool good;

	tap_ok(clGetPlatformIDs(1, &plat, NULL) == CL_SUCCESS, "a platform");
	clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof(name), name, NULL);
	tap_ok(!strcmp(name, "virtgpu-userptr"), "it is the guest's ICD (%s)", name);
	if (clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, 1, &dev, NULL) || !setup(&ctx, &q, &prog)) {
		tap_ok(false, "context, queue and program");
		printf("1..%u\n", tap_n);
		return 1;
	}
	tap_ok(true, "context, queue and program");

	/* zero copy: the kernel's result is in the application's memory */
	for (int i = 0; i < N; i++) {
		x[i] = (float)i;
		y[i] = 1.0f;
	}
	good = run_saxpy(ctx, q, prog, y, x);
	for (int i = 0; good && i < N; i++)
		good = y[i] == 2.0f * (float)i + 1.0f;
	tap_ok(good, "saxpy on CL_MEM_USE_HOST_PTR buffers: the result is in the caller's memory");
	{
		cl_mem b = clCreateBuffer(ctx, CL_MEM_USE_HOST_PTR, N * 4, y, &err);
		void *m = clEnqueueMapBuffer(q, b, CL_TRUE, CL_MAP_READ, 64, 256, 0, NULL, NULL, &err);

		tap_ok(m == (char *)y + 64, "mapping a USE_HOST_PTR buffer returns the caller's pointer");
		clEnqueueUnmapMemObject(q, b, m, 0, NULL, NULL);
		clFinish(q);
		clReleaseMemObject(b);
	}

	/* a read-only mapping of a file, registered read-only */
	{
		char path[] = "/tmp/vgpu-icd-test.XXXXXX";
		int fd = mkstemp(path);
		float *ro = MAP_FAILED;
		cl_mem b = NULL;

		if (fd >= 0 && !ftruncate(fd, N * 4)) {
			for (int i = 0; i < N; i++)
				x[i] = 3.0f;
			if (pwrite(fd, x, N * 4, 0) == N * 4)
				ro = mmap(NULL, N * 4, PROT_READ, MAP_SHARED, fd, 0);
		}
		if (ro != MAP_FAILED)
			b = clCreateBuffer(ctx, CL_MEM_USE_HOST_PTR | CL_MEM_READ_ONLY, N * 4, ro, &err);
		tap_ok(b != NULL, "a read-only mmap of a file is a CL_MEM_READ_ONLY buffer (err %d)",
		       b ? 0 : err);
		for (int i = 0; i < N; i++)
			y[i] = 0.0f;
		good = b && run_saxpy(ctx, q, prog, y, ro);
		for (int i = 0; good && i < N; i++)
			good = y[i] == 6.0f;
		tap_ok(good, "a kernel reads the file's pages");
		if (b)
			clReleaseMemObject(b);
		if (ro != MAP_FAILED)
			munmap(ro, N * 4);
		if (fd >= 0)
			close(fd);
		unlink(path);
	}

	/* sub-buffers, local memory, reads and writes */
	{
		cl_uint in[256], out[8] = { 0 };
		cl_mem bin, bout, sub;
		cl_buffer_region r = { 128 * 4, 128 * 4 };
		cl_kernel k = clCreateKernel(prog, "sum", &err);
		size_t g = 128, l = 32;

		for (int i = 0; i < 256; i++)
			in[i] = (cl_uint)i;
		bin = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof(in), in, &err);
		bout = clCreateBuffer(ctx, CL_MEM_READ_WRITE, sizeof(out), NULL, &err);
		sub = clCreateSubBuffer(bin, CL_MEM_READ_ONLY, CL_BUFFER_CREATE_TYPE_REGION, &r, &err);
		good = k && bin && bout && sub && !clSetKernelArg(k, 0, sizeof(sub), &sub) &&
		       !clSetKernelArg(k, 1, sizeof(bout), &bout) &&
		       !clSetKernelArg(k, 2, 32 * sizeof(cl_uint), NULL) &&
		       !clEnqueueNDRangeKernel(q, k, 1, NULL, &g, &l, 0, NULL, NULL) &&
		       !clEnqueueReadBuffer(q, bout, CL_TRUE, 0, 4 * 4, out, 0, NULL, NULL);
		/* group j sums 128 + 32j .. 128 + 32j + 31 */
		for (int j = 0; good && j < 4; j++)
			good = out[j] == (cl_uint)(32 * (128 + 32 * j) + 496);
		tap_ok(good, "a sub-buffer and __local memory: group sums %u %u %u %u", out[0], out[1],
		       out[2], out[3]);
		tap_ok(clSetKernelArg(k, 3, 4, &l) == CL_INVALID_ARG_INDEX, "argument index past the last: CL_INVALID_ARG_INDEX");
		tap_ok(clSetKernelArg(k, 0, 4, &sub) == CL_INVALID_ARG_SIZE, "a buffer argument of 4 bytes: CL_INVALID_ARG_SIZE");
		tap_ok(clSetKernelArg(k, 2, 16, &l) == CL_INVALID_ARG_VALUE, "a value for __local: CL_INVALID_ARG_VALUE");
		l = 48;
		tap_ok(clEnqueueNDRangeKernel(q, k, 1, NULL, &g, &l, 0, NULL, NULL) == CL_INVALID_WORK_GROUP_SIZE,
		       "a local size that does not divide the global: CL_INVALID_WORK_GROUP_SIZE");
		tap_ok(clEnqueueReadBuffer(q, bout, CL_TRUE, 16, 32, out, 0, NULL, NULL) == CL_INVALID_VALUE,
		       "a read past the buffer: CL_INVALID_VALUE");
		clReleaseMemObject(sub);
		clReleaseMemObject(bin);
		clReleaseMemObject(bout);
		clReleaseKernel(k);
	}
	tap_ok(clCreateBuffer(ctx, 0, 0, NULL, &err) == NULL && err == CL_INVALID_BUFFER_SIZE,
	       "a buffer of 0 bytes: CL_INVALID_BUFFER_SIZE");
	tap_ok(clCreateKernel(prog, "nosuch", &err) == NULL && err == CL_INVALID_KERNEL_NAME,
	       "an unknown kernel name: CL_INVALID_KERNEL_NAME");
	{
		const char *bad = "__kernel void f(__global int *p) { p[0] = undeclared; }";
		cl_program p = clCreateProgramWithSource(ctx, 1, &bad, NULL, &err);
		size_t loglen = 0;

		err = clBuildProgram(p, 1, &dev, NULL, NULL, NULL);
		clGetProgramBuildInfo(p, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &loglen);
		tap_ok(err == CL_BUILD_PROGRAM_FAILURE && loglen > 1,
		       "a program that does not compile: CL_BUILD_PROGRAM_FAILURE and a log (%zu bytes)", loglen);
		clReleaseProgram(p);
	}

	/* binaries: built again from CL_PROGRAM_BINARIES, arguments still known
	 * (a double and a long of 0 next to a buffer) */
	{
		size_t size = 0;
		unsigned char *bin;
		cl_program p2 = NULL;
		cl_kernel k;
		cl_int st;
		double d[64], a = 0.5;
		cl_long add = 0;
		size_t g = 64, l = 64;
		cl_mem b;

		clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof(size), &size, NULL);
		bin = malloc(size ? size : 1);
		if (size && !clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof(bin), &bin, NULL))
			p2 = clCreateProgramWithBinary(ctx, 1, &dev, &size, (const unsigned char **)&bin, &st, &err);
		tap_ok(p2 && !clBuildProgram(p2, 1, &dev, NULL, NULL, NULL),
		       "a program from its binary (%zu bytes) builds", size);
		for (int i = 0; i < 64; i++)
			d[i] = i;
		b = clCreateBuffer(ctx, CL_MEM_USE_HOST_PTR, sizeof(d), d, &err);
		k = p2 ? clCreateKernel(p2, "scale", &err) : NULL;
		good = k && !clSetKernelArg(k, 0, sizeof(b), &b) && !clSetKernelArg(k, 1, 8, &a) &&
		       !clSetKernelArg(k, 2, 8, &add) &&
		       !clEnqueueNDRangeKernel(q, k, 1, NULL, &g, &l, 0, NULL, NULL) && !clFinish(q);
		for (int i = 0; good && i < 64; i++)
			good = d[i] == i * 0.5;
		tap_ok(good, "its kernel runs with by-value arguments of 8 zero bytes");
		g = 32;
		l = 32;
		tap_ok(k && clEnqueueNDRangeKernel(q, k, 1, NULL, &g, &l, 0, NULL, NULL) == CL_INVALID_WORK_GROUP_SIZE,
		       "reqd_work_group_size is enforced: CL_INVALID_WORK_GROUP_SIZE");
		if (k)
			clReleaseKernel(k);
		clReleaseMemObject(b);
		if (p2)
			clReleaseProgram(p2);
		free(bin);
	}

	/* Kernel objects of one name share one device kernel, each with its
	 * own arguments; a buffer released while a kernel still writes it
	 * goes back to the ICD's pool only when that kernel has ended. */
	{
		cl_kernel k1 = clCreateKernel(prog, "fill", &err), k2 = clCreateKernel(prog, "fill", &err);
		cl_mem a = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 4096, NULL, &err);
		cl_mem b = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 4096, NULL, &err);
		cl_mem c = NULL, d = NULL;
		cl_uint v1 = 0x11111111u, v2 = 0x22222222u, v3 = 0x33333333u, slow = 400000, fast = 0;
		static cl_uint out_a[1024], out_b[1024], data[1024];
		size_t g = 1024;

		good = k1 && k2 && a && b && !clSetKernelArg(k1, 0, sizeof(a), &a) &&
		       !clSetKernelArg(k1, 1, 4, &v1) && !clSetKernelArg(k1, 2, 4, &fast) &&
		       !clSetKernelArg(k2, 0, sizeof(b), &b) && !clSetKernelArg(k2, 1, 4, &v2) &&
		       !clSetKernelArg(k2, 2, 4, &fast) &&
		       !clEnqueueNDRangeKernel(q, k1, 1, NULL, &g, NULL, 0, NULL, NULL) &&
		       !clEnqueueNDRangeKernel(q, k2, 1, NULL, &g, NULL, 0, NULL, NULL) &&
		       !clEnqueueReadBuffer(q, a, CL_TRUE, 0, 4096, out_a, 0, NULL, NULL) &&
		       !clEnqueueReadBuffer(q, b, CL_TRUE, 0, 4096, out_b, 0, NULL, NULL);
		for (int i = 0; good && i < 1024; i++)
			good = out_a[i] == v1 && out_b[i] == v2;
		tap_ok(good, "two kernel objects of one name, each with its own arguments");
		/* a slow write of v2 into a, then a and its kernels released */
		good = !clSetKernelArg(k1, 1, 4, &v2) && !clSetKernelArg(k1, 2, 4, &slow) &&
		       !clEnqueueNDRangeKernel(q, k1, 1, NULL, &g, NULL, 0, NULL, NULL) && !clFlush(q);
		clReleaseKernel(k1);
		clReleaseKernel(k2);
		clReleaseMemObject(a);
		for (int i = 0; i < 1024; i++)
			data[i] = v3;
		c = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, 4096, data, &err);
		good = good && c && !clFinish(q) &&
		       !clEnqueueReadBuffer(q, c, CL_TRUE, 0, 4096, out_a, 0, NULL, NULL);
		for (int i = 0; good && i < 1024; i++)
			good = out_a[i] == v3;
		tap_ok(good, "a buffer made while a released one is still written holds its own bytes");
		/* a is idle now: the next buffer of its size is a's pages again */
		d = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 4096, NULL, &err);
		good = d && !clEnqueueReadBuffer(q, d, CL_TRUE, 0, 4096, out_a, 0, NULL, NULL);
		for (int i = 0; good && i < 1024; i++)
			good = out_a[i] == v2;
		tap_ok(good, "an idle released buffer is used again (the kernel's bytes are in it)");
		if (d)
			clReleaseMemObject(d);
		if (c)
			clReleaseMemObject(c);
		clReleaseMemObject(b);
	}

	/* events: a write held back by a user event, a callback, profiling */
	{
		cl_event user = clCreateUserEvent(ctx, &err), w = NULL;
		cl_mem b = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 64, NULL, &err);
		char in[64], out[64];
		cl_int st = 0;
		cl_ulong t[4] = { 0 };

		memset(in, 0x5a, sizeof(in));
		clEnqueueWriteBuffer(q, b, CL_FALSE, 0, 64, in, 1, &user, &w);
		clSetEventCallback(w, CL_COMPLETE, on_complete, NULL);
		usleep(100000);
		clGetEventInfo(w, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof(st), &st, NULL);
		tap_ok(st == CL_QUEUED, "a command waiting for a user event stays queued (%d)", st);
		clSetUserEventStatus(user, CL_COMPLETE);
		clEnqueueReadBuffer(q, b, CL_TRUE, 0, 64, out, 0, NULL, NULL);
		tap_ok(!memcmp(in, out, 64) && callback_status == CL_COMPLETE,
		       "then it runs, in order, and its callback says CL_COMPLETE");
		clGetEventProfilingInfo(w, CL_PROFILING_COMMAND_QUEUED, 8, &t[0], NULL);
		clGetEventProfilingInfo(w, CL_PROFILING_COMMAND_SUBMIT, 8, &t[1], NULL);
		clGetEventProfilingInfo(w, CL_PROFILING_COMMAND_START, 8, &t[2], NULL);
		clGetEventProfilingInfo(w, CL_PROFILING_COMMAND_END, 8, &t[3], NULL);
		tap_ok(t[0] && t[0] <= t[1] && t[1] <= t[2] && t[2] <= t[3] && t[1] - t[0] >= 100000000ull,
		       "profiling: queued <= submit <= start <= end, one clock (waited %llu ms)",
		       (unsigned long long)((t[1] - t[0]) / 1000000));
		clReleaseEvent(w);
		clReleaseEvent(user);
		clReleaseMemObject(b);
	}

	/* a kernel that never ends: its event fails, the next context works */
	{
		cl_uint *flag = aligned_alloc(4096, 4096);
		cl_kernel k = clCreateKernel(prog, "spin", &err);
		cl_mem b = clCreateBuffer(ctx, CL_MEM_USE_HOST_PTR, 4096, flag, &err);
		cl_event e = NULL;
		size_t g = 1;
		cl_int st = 0;
		cl_context c2;
		cl_command_queue q2;
		cl_program p2;

		memset(flag, 0, 4096);
		clSetKernelArg(k, 0, sizeof(b), &b);
		clEnqueueNDRangeKernel(q, k, 1, NULL, &g, NULL, 0, NULL, &e);
		clFinish(q);
		clGetEventInfo(e, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof(st), &st, NULL);
		tap_ok(st == CL_OUT_OF_RESOURCES, "an endless kernel: its event ends in CL_OUT_OF_RESOURCES (%d)", st);
		tap_ok(clEnqueueNDRangeKernel(q, k, 1, NULL, &g, NULL, 0, NULL, NULL) == CL_OUT_OF_RESOURCES,
		       "the lost context refuses more kernels: CL_OUT_OF_RESOURCES");
		clReleaseEvent(e);
		clReleaseMemObject(b);
		clReleaseKernel(k);
		clReleaseProgram(prog);
		clReleaseCommandQueue(q);
		clReleaseContext(ctx);
		for (int i = 0; i < N; i++) {
			x[i] = 1.0f;
			y[i] = 1.0f;
		}
		good = setup(&c2, &q2, &p2) && run_saxpy(c2, q2, p2, y, x);
		for (int i = 0; good && i < N; i++)
			good = y[i] == 3.0f;
		tap_ok(good, "a new context works after it");
		clReleaseProgram(p2);
		clReleaseCommandQueue(q2);
		clReleaseContext(c2);
		free(flag);
	}
	free(x);
	free(y);
	printf("1..%u\n", tap_n);
	return tap_failed ? 1 : 0;
}
