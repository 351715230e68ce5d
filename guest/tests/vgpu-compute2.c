/* SPDX-License-Identifier: MIT */
/*
 * vgpu-compute2 - capset version 2 from inside the guest, on zero-copy
 * (userptr) buffers: SGEMM and REDUCE_F32 within their stated tolerances,
 * XXH64 and SAXPY bit-exact, and the round trip that proves the device
 * works on the process's own pages: what the program writes is what the
 * next op reads, and what an op writes is what the program reads, with no
 * copy in between. TAP on stdout.
 *
 *   vgpu-compute2 [--backend cpu|opencl]   (the backend the caps must report)
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xxhash.h>

#include <vgpu.h>

#include "tap.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Page-aligned, populated memory (UML's first-touch faults are slow). */
static void *pages(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, size, MADV_POPULATE_WRITE);
	return p;
}

static struct vgpu_buffer *wrap(struct vgpu_device *dev, void *p, size_t size)
{
	struct vgpu_buffer *b = NULL;
	int err = vgpu_buffer_from_user(dev, p, size, VGPU_BUF_ZERO_COPY, &b);

	if (err)
		tap_diag("vgpu_buffer_from_user(%zu): %s", size, vgpu_strerror(err));
	return b;
}

static int run1(struct vgpu_device *dev, uint32_t opcode, struct vgpu_buffer *dst,
		uint64_t doff, struct vgpu_buffer *src, uint64_t soff, uint64_t len,
		uint64_t arg0, uint64_t arg1)
{
	struct vgpu_submit_result r = { 0 };
	struct vgpu_batch *b;
	int err = vgpu_batch_create(dev, &b);

	if (err)
		return err;
	err = vgpu_batch_add_raw(b, opcode, 0, dst, doff, src, soff, len, arg0, arg1);
	if (!err)
		err = vgpu_batch_submit(b, &r);
	if (err)
		tap_diag("op %u: %s (device result %u)", opcode, vgpu_strerror(err), r.device_result);
	vgpu_batch_destroy(b);
	return err;
}

int main(int argc, char **argv)
{
	enum { M = 96, N = 80, K = 112 };
	const char *want = argc == 3 && strcmp(argv[1], "--backend") == 0 ? argv[2] : NULL;
	size_t in_size = 4u << 20, out_size = 1u << 20;
	struct vgpu_buffer *in, *out;
	struct vgpu_device *dev = NULL;
	struct vgpu_info info;
	float *fin, *fout;
	uint8_t *bin, *bout;
	int err;

	err = vgpu_open(NULL, 0, &dev);
	if (!tap_ok(err == 0, "open the device (%s)", err ? vgpu_strerror(err) : "ok"))
		goto end;
	vgpu_get_info(dev, &info);
	tap_ok(info.caps.version >= 2 && (info.caps.op_mask >> VGPU_OP_SGEMM & 1) &&
	       (info.caps.op_mask >> VGPU_OP_REDUCE_F32 & 1),
	       "capset version 2 or later with SGEMM and REDUCE_F32 (version %u, mask %#x)",
	       info.caps.version, info.caps.op_mask);
	if (want)
		tap_ok((strcmp(want, "opencl") == 0) == (info.caps.backend == VGPU_BACKEND_OPENCL),
		       "the device reports the %s backend (backend %u)", want, info.caps.backend);
	bin = pages(in_size);
	bout = pages(out_size);
	if (!tap_ok(bin && bout, "buffers"))
		goto end;
	fin = (float *)(void *)bin;
	fout = (float *)(void *)bout;
	in = wrap(dev, bin, in_size);
	out = wrap(dev, bout, out_size);
	if (!tap_ok(in && out && vgpu_buffer_is_zero_copy(in) && vgpu_buffer_is_zero_copy(out),
		    "zero-copy buffers of 4 MiB and 1 MiB"))
		goto end;

	/* SGEMM, packed: A at 0, B after it, C into out. */
	for (int i = 0; i < M * K; i++)
		fin[i] = (float)((i * 37) % 101 - 50) / 16.0f;
	for (int i = 0; i < K * N; i++)
		fin[M * K + i] = (float)((i * 53) % 89 - 44) / 8.0f;
	err = run1(dev, VGPU_OP_SGEMM, out, 0, in, 0, 4ull * M * K,
		   M | (uint64_t)N << 32, (uint64_t)K);
	{
		int bad = 0;

		for (int i = 0; i < M && !err; i++)
			for (int j = 0; j < N; j++) {
				double e = 0, mag = 0;

				for (int q = 0; q < K; q++) {
					double p = (double)fin[i * K + q] * fin[M * K + q * N + j];

					e += p;
					mag += fabs(p);
				}
				bad += fabs(fout[i * N + j] - e) > K * 0x1p-23 * mag;
			}
		tap_ok(!err && !bad, "SGEMM %dx%d by %dx%d within K * 2^-23 * sum|a b| (%d off)",
		       M, K, K, N, bad);
	}

	/* REDUCE_F32 over 1M floats. */
	{
		size_t n = in_size / 4;
		long double exact = 0, mag = 0;
		double got;

		for (size_t i = 0; i < n; i++) {
			fin[i] = sinf((float)i * 0.001f) * (float)(1 + i % 13);
			exact += fin[i];
			mag += fabsl((long double)fin[i]);
		}
		err = run1(dev, VGPU_OP_REDUCE_F32, out, 0, in, 0, in_size, 0, 0);
		memcpy(&got, bout, 8);
		tap_ok(!err && fabsl(got - exact) <= (long double)n * 0x1p-53L * mag,
		       "REDUCE_F32 of %zu floats within n * 2^-53 * sum|x| (%.17g vs %.17Lg)",
		       n, got, exact);
	}

	/* SAXPY bit-exact (no contraction). */
	{
		float a = 0.75f;
		uint32_t abits;
		int bad = 0;

		memcpy(&abits, &a, 4);
		for (int i = 0; i < 65536; i++) {
			fin[i] = (float)i * 0.125f - 3.0f;
			fout[i] = 1.0f / (float)(i + 1);
		}
		float *y0 = malloc(65536 * 4);

		if (y0)
			memcpy(y0, fout, 65536 * 4);
		err = run1(dev, VGPU_OP_SAXPY, out, 0, in, 0, 65536 * 4, abits, 0);
		for (int i = 0; i < 65536 && y0; i++) {
			volatile float t = a * fin[i];
			float r = t + y0[i];

			bad += memcmp(&r, &fout[i], 4) != 0;
		}
		free(y0);
		tap_ok(!err && y0 && !bad, "SAXPY of 64 Ki floats bit-exact (%d differ)", bad);
	}

	/* The round trip on the same pages, several times over. */
	for (int round = 0; round < 4; round++) {
		uint64_t h;

		for (size_t i = 0; i < 65536; i++)
			bin[i] = (uint8_t)(i * 31 + (size_t)round * 7);
		err = run1(dev, VGPU_OP_CHECKSUM, out, 64, in, 0, 65536, 5, 0);
		memcpy(&h, bout + 64, 8);
		tap_ok(!err && h == XXH64(bin, 65536, 5),
		       "round %d: the op reads what the program just wrote (XXH64)", round);
		err = run1(dev, VGPU_OP_FILL, out, 4096, NULL, 0, 8192, 0x01010101u * (uint32_t)(round + 1), 0);
		{
			int bad = 0;

			for (int i = 4096; i < 4096 + 8192; i++)
				bad += bout[i] != round + 1;
			tap_ok(!err && !bad, "round %d: the program reads what the op just wrote", round);
		}
	}
	vgpu_buffer_destroy(in);
	vgpu_buffer_destroy(out);
end:
	if (dev)
		vgpu_close(dev);
	printf("1..%u\n", tap_n);
	return tap_failed ? 1 : 0;
}
