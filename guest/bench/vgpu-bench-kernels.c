/* SPDX-License-Identifier: MIT */
/*
 * vgpu-bench-kernels - the guest's own kernels, measured in the guest:
 *
 *   - a NOP submit and a dispatch of an empty kernel (latency, median):
 *     what a dispatch costs over the cheapest submit;
 *   - a memory-bound and a compute-bound kernel (bench_kernels.h) on a
 *     malloc'd buffer registered as a userptr (zero copy), and the fixed
 *     SAXPY op on the same buffer, at 1 to 256 MiB (median time).
 *
 * Prints one row per figure:
 *   kernels <what> <MiB> <median_us> <runs>
 * scripts/run-bench-kernels.sh puts them beside vgpu-bench-kernels-host's.
 *
 *   vgpu-bench-kernels [--runs N] [--latency-runs N] [--max-mib N]
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <vgpu/vgpu.h>

#include "bench_kernels.h"

static struct vgpu_device *dev;

static int die(const char *what, int err)
{
	fprintf(stderr, "vgpu-bench-kernels: %s: %s (%s)\n", what, vgpu_strerror(err),
		vgpu_error_detail());
	exit(1);
}

static void row(const char *what, unsigned int mib, double *t, unsigned int n)
{
	printf("kernels %s %u %.1f %u\n", what, mib, bk_median(t, n), n);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	unsigned int runs = 7, lat_runs = 200, max_mib = 256;
	struct vgpu_build_log log = { .struct_size = sizeof(log) };
	struct vgpu_kernel *k_empty = NULL, *k_stream = NULL, *k_compute = NULL;
	struct vgpu_program *prog = NULL;
	struct vgpu_buffer *small = NULL;
	struct vgpu_batch *b = NULL;
	struct vgpu_info info;
	static double t[BENCH_KERNEL_MAX_RUNS > 1000 ? BENCH_KERNEL_MAX_RUNS : 1000];
	void *small_mem;
	int err;

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
		fprintf(stderr, "vgpu-bench-kernels: --runs 1..%u, --latency-runs 1..1000\n",
			BENCH_KERNEL_MAX_RUNS);
		return 2;
	}
	err = vgpu_open(NULL, 0, &dev);
	if (err)
		die("vgpu_open", err);
	vgpu_get_info(dev, &info);
	if (!(info.features & VGPU_FEATURE_PROGRAMS)) {
		fprintf(stderr, "vgpu-bench-kernels: the device runs no programs\n");
		return 1;
	}
	printf("# userptr %d, backend %u, %u engine threads\n", info.userptr, info.caps.backend,
	       info.caps.num_threads);
	err = vgpu_program_build(dev, VGPU_PROGRAM_SOURCE, BENCH_KERNELS_SRC,
				 strlen(BENCH_KERNELS_SRC), NULL, &prog, &log);
	if (err || !prog) {
		fprintf(stderr, "vgpu-bench-kernels: build: %s\n", log.log ? log.log : "");
		return 1;
	}
	free(log.log);
	if ((err = vgpu_kernel_create(prog, "empty", &k_empty)) ||
	    (err = vgpu_kernel_create(prog, "stream", &k_stream)) ||
	    (err = vgpu_kernel_create(prog, "compute", &k_compute)) ||
	    (err = vgpu_batch_create(dev, &b)))
		die("kernels", err);
	small_mem = aligned_alloc(4096, 4096);
	err = vgpu_buffer_from_user(dev, small_mem, 4096, 0, &small);
	if (err)
		die("register", err);

	/* Latency: a NOP, then an empty kernel over one work-item. */
	for (unsigned int pass = 0; pass < 2; pass++) {
		struct vgpu_kernel_arg a = { .kind = VGPU_DARG_BUFFER, .access = VGPU_OP_READ,
					     .buf = small, .size = 4096 };
		struct vgpu_ndrange r = { .work_dim = 1, .global = { 1 } };

		for (unsigned int i = 0; i < lat_runs + 5; i++) {
			double t0;

			vgpu_batch_reset(b);
			err = pass ? vgpu_batch_dispatch(b, k_empty, &r, &a, 1) : vgpu_batch_nop(b);
			if (err)
				die("batch", err);
			t0 = bk_now_us();
			err = vgpu_batch_run(b, NULL);
			if (err)
				die("run", err);
			if (i >= 5) /* the first ones compile and warm up */
				t[i - 5] = bk_now_us() - t0;
		}
		row(pass ? "empty-dispatch" : "nop", 0, t, lat_runs);
	}

	for (unsigned int s = 0; s < BENCH_KERNEL_SIZES; s++) {
		unsigned int mib = bench_kernel_mib[s];
		size_t n = (size_t)mib << 20;
		float *y, a = 0.999f, c = 0.001f;
		struct vgpu_buffer *by = NULL;
		struct vgpu_kernel_arg args[3];
		struct vgpu_ndrange r = { .work_dim = 1, .global = { n / 4 } };

		if (mib > max_mib)
			break;
		y = malloc(n);
		if (!y)
			die("malloc", -ENOMEM);
		for (size_t i = 0; i < n / 4; i++)
			y[i] = (float)(i & 1023);
		err = vgpu_buffer_from_user(dev, y, n, 0, &by);
		if (err)
			die("register", err);
		if (!vgpu_buffer_is_zero_copy(by))
			printf("# %u MiB: copy path\n", mib);
		args[0] = (struct vgpu_kernel_arg){ .kind = VGPU_DARG_BUFFER,
						    .access = VGPU_OP_READ | VGPU_OP_WRITE,
						    .buf = by, .size = n };
		args[1] = (struct vgpu_kernel_arg){ .kind = VGPU_DARG_VALUE, .value = &a, .size = 4 };
		args[2] = (struct vgpu_kernel_arg){ .kind = VGPU_DARG_VALUE, .value = &c, .size = 4 };
		for (unsigned int what = 0; what < 3; what++) {
			static const char *const name[] = { "stream", "compute", "saxpy-op" };

			for (unsigned int i = 0; i < runs + 1; i++) {
				double t0;

				vgpu_batch_reset(b);
				if (what == 2)
					err = vgpu_batch_saxpy(b, by, 0, by, 0, n, a);
				else
					err = vgpu_batch_dispatch(b, what ? k_compute : k_stream, &r,
								  args, 3);
				if (err)
					die("batch", err);
				t0 = bk_now_us();
				err = vgpu_batch_run(b, NULL);
				if (err)
					die("run", err);
				if (i >= 1)
					t[i - 1] = bk_now_us() - t0;
			}
			row(name[what], mib, t, runs);
		}
		vgpu_buffer_destroy(by);
		free(y);
	}
	vgpu_batch_destroy(b);
	vgpu_buffer_destroy(small);
	free(small_mem);
	vgpu_kernel_destroy(k_empty);
	vgpu_kernel_destroy(k_stream);
	vgpu_kernel_destroy(k_compute);
	vgpu_program_destroy(prog);
	vgpu_close(dev);
	return 0;
}
