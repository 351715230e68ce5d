/* SPDX-License-Identifier: MIT */
/*
 * bench_kernels.h - the OpenCL C that vgpu-bench-kernels runs in the guest
 * (through libvgpu, on the guest's own pages) and vgpu-bench-kernels-host
 * runs on the host (the same device, directly, on host memory): the same
 * source, so that the two figures differ only in the path. Medians of
 * timed runs, sizes and the row format are shared too.
 */
#ifndef VGPU_BENCH_KERNELS_H
#define VGPU_BENCH_KERNELS_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static const char BENCH_KERNELS_SRC[] =
	"__kernel void empty(__global int *p)\n"
	"{\n"
	"}\n"
	/* Memory-bound: one read and one write of each float. */
	"__kernel void stream(__global float *y, const float a, const float b)\n"
	"{\n"
	"	size_t i = get_global_id(0);\n"
	"	y[i] = a * y[i] + b;\n"
	"}\n"
	/* Compute-bound: 32 dependent multiply-adds per float. */
	"__kernel void compute(__global float *y, const float a, const float b)\n"
	"{\n"
	"	size_t i = get_global_id(0);\n"
	"	float v = y[i];\n"
	"	for (int k = 0; k < 32; k++)\n"
	"		v = v * a + b;\n"
	"	y[i] = v;\n"
	"}\n";

/* Sizes of the buffer, MiB. */
static const unsigned int bench_kernel_mib[] = { 1, 16, 64, 256 };
#define BENCH_KERNEL_SIZES (sizeof(bench_kernel_mib) / sizeof(bench_kernel_mib[0]))
#define BENCH_KERNEL_MAX_RUNS 101

static inline double bk_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int bk_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static inline double bk_median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), bk_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
