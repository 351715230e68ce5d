/* SPDX-License-Identifier: MIT */
/*
 * test_backend.c - the numeric contract of every op, run on the backend
 * named by argv[1] (cpu or opencl), through the device with real rings;
 * for opencl also the zero-copy proofs: the device passed the start-up
 * gate, a kernel's write is what the guest reads, a guest write is what
 * the next kernel reads, and no op moved a byte. meson runs the opencl
 * suite a second time with VIRTGPU_HOSTD_CL_GATE=fail: every contract
 * then holds on the copying path too, which counts what it moves.
 *
 * With opencl the test fails (never skips) when no OpenCL device can be
 * used: the engine must then have fallen back to the CPU, and says so.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include <cmocka.h>

#ifdef HOSTD_OPENCL
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#endif

#include "helpers.h"
#include "resource.h"
#include "stats.h"
#include "window.h"

#define PG 4096u
static struct fe F;
static uint32_t backend;

/* A guest blob (what a userptr range is on the wire) of npages pages of
 * region 1 in reverse order with a gap between them: every page its own
 * mapping in the window. */
struct res {
	uint32_t id;
	uint32_t npages;
	struct virtio_gpu_mem_entry e[32];
};

static void res_make(struct res *r, uint32_t id, uint32_t npages, uint32_t flags)
{
	assert_true(npages <= 32);
	r->id = id;
	r->npages = npages;
	for (uint32_t i = 0; i < npages; i++) {
		r->e[npages - 1 - i].addr = fe_alloc(&F, 1, 2 * PG, 0);
		r->e[npages - 1 - i].length = PG;
		r->e[npages - 1 - i].padding = 0;
	}
	assert_int_equal(cmd_blob(&F, 1, id, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST,
				  flags,
				  (uint64_t)npages * PG, r->e, npages),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, id), VIRTIO_GPU_RESP_OK_NODATA);
}

/* The guest's side: read or write bytes of a resource. */
static void res_io(struct res *r, uint64_t off, void *buf, uint64_t len, int write)
{
	uint8_t *b = buf;

	while (len) {
		uint64_t k = PG - off % PG;
		uint8_t *p = (uint8_t *)fe_ptr(&F, r->e[off / PG].addr) + off % PG;

		if (k > len)
			k = len;
		if (write)
			memcpy(p, b, k);
		else
			memcpy(b, p, k);
		b += k;
		off += k;
		len -= k;
	}
}

static struct res A, B, C, RO, ST;

static struct vgpu_compute_status status(void)
{
	struct vgpu_compute_status s;

	res_io(&ST, 0, &s, sizeof(s), 0);
	return s;
}

static int setup(void **state)
{
	struct fe_opts o = { .backend = backend };
	uint8_t buf[8 * PG];

	(void)state;
	fe_start(&F, &o);
	assert_int_equal(engine_backend_id(F.eng), backend);
	assert_int_equal(cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	res_make(&A, 1, 16, 0);
	res_make(&B, 2, 16, 0);
	res_make(&C, 3, 8, 0);
	res_make(&RO, 4, 8, VIRTIO_GPU_BLOB_FLAG_RDONLY);
	res_make(&ST, 5, 1, 0);
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	res_io(&RO, 0, buf, sizeof(buf), 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fe_stop(&F);
	return 0;
}

static void test_caps(void **state)
{
	struct vgpu_compute_caps caps;

	(void)state;
	assert_int_equal(engine_caps(F.eng, 3, &caps), sizeof(caps));
	assert_int_equal(caps.backend, backend);
	/* No programs set: version 2's ops, no features. */
	assert_int_equal(caps.op_mask, VGPU_COMPUTE_OP_MASK_V2);
	assert_int_equal(caps.features, 0);
	assert_int_equal(engine_caps(F.eng, 2, &caps), VGPU_COMPUTE_CAPS_V2_SIZE);
	assert_int_equal(caps.backend, backend);
	assert_int_equal(caps.op_mask, VGPU_COMPUTE_OP_MASK_V2);
	assert_int_equal(engine_caps(F.eng, 1, &caps), VGPU_COMPUTE_CAPS_V1_SIZE);
	assert_int_equal(caps.backend, 0);
}

/* copy, fill, XXH64: bit-exact on every backend, at odd offsets. */
static void test_bit_exact(void **state)
{
	uint8_t src[8 * PG], got[8 * PG];
	const uint8_t pat[4] = { 0x78, 0x56, 0x34, 0x12 };
	struct vgpu_compute_op ops[3];
	uint64_t h;

	(void)state;
	for (unsigned i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 13 + 1);
	res_io(&A, 0, src, sizeof(src), 1);
	ops[0] = mkop(VGPU_OP_COPY, 2, 3, 1, 5, 20000, 0);
	ops[1] = mkop(VGPU_OP_FILL, 2, 30001, 0, 0, 4100, 0x12345678);
	ops[2] = mkop(VGPU_OP_CHECKSUM, 2, 40000, 1, 1, 30001, 99);
	assert_int_equal(cmd_submit(&F, 1, 5, 0, ops, 3), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(status().result, VGPU_COMPUTE_OK);
	res_io(&B, 3, got, 20000, 0);
	assert_memory_equal(got, src + 5, 20000);
	res_io(&B, 30001, got, 4100, 0);
	for (int i = 0; i < 4100; i++)
		assert_int_equal(got[i], pat[i % 4]);
	res_io(&B, 40000, &h, 8, 0);
	assert_int_equal(h, XXH64(src + 1, 30001, 99));
	/* Empty ranges: valid, and nothing changes. */
	res_io(&B, 0, got, 64, 0);
	ops[0] = mkop(VGPU_OP_COPY, 2, 0, 1, 0, 0, 0);
	ops[1] = mkop(VGPU_OP_FILL, 2, 0, 0, 0, 0, 0x12345678);
	ops[2] = mkop(VGPU_OP_SAXPY, 2, 0, 1, 0, 0, 0);
	assert_int_equal(cmd_submit(&F, 1, 5, 0, ops, 3), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(status().result, VGPU_COMPUTE_OK);
	res_io(&B, 0, src, 64, 0);
	assert_memory_equal(got, src, 64);
	res_io(&A, 0, src, sizeof(src), 0);
	/* Short inputs exercise XXH64's tail paths. */
	for (uint64_t n = 0; n < 40; n += 3) {
		ops[0] = mkop(VGPU_OP_CHECKSUM, 2, 8, 1, 7, n, n);
		assert_int_equal(cmd_submit(&F, 1, 0, 0, ops, 1), VIRTIO_GPU_RESP_OK_NODATA);
		res_io(&B, 8, &h, 8, 0);
		assert_int_equal(h, XXH64(src + 7, n, n));
	}
	/* From a read-only (PROT_READ) resource: no fault, same bytes. */
	ops[0] = mkop(VGPU_OP_COPY, 2, 0, 4, 1, 8 * PG - 1, 0);
	assert_int_equal(cmd_submit(&F, 1, 0, 0, ops, 1), VIRTIO_GPU_RESP_OK_NODATA);
	res_io(&B, 0, got, 8 * PG - 1, 0);
	res_io(&RO, 1, src, 8 * PG - 1, 0);
	assert_memory_equal(got, src, 8 * PG - 1);
}

/* SAXPY without contraction and the serial SUM_F32: bit-exact too. */
static void test_saxpy_sum(void **state)
{
	static float x[8192], y[8192], out[8192];
	float a = 1.7f;
	uint32_t abits;
	struct vgpu_compute_op ops[2];
	double sum = 0.0, got;

	(void)state;
	for (int i = 0; i < 8192; i++) {
		x[i] = sinf((float)i) * 1000.0f;
		y[i] = 1.0f / (float)(i + 3);
	}
	res_io(&A, 0, x, sizeof(x), 1);
	res_io(&B, 0, y, sizeof(y), 1);
	memcpy(&abits, &a, 4);
	ops[0] = mkop(VGPU_OP_SAXPY, 2, 0, 1, 0, sizeof(x), abits);
	ops[1] = mkop(VGPU_OP_SUM_F32, 5, 64, 1, 4, 4 * 8000, 0);
	assert_int_equal(cmd_submit(&F, 1, 5, 0, ops, 2), VIRTIO_GPU_RESP_OK_NODATA);
	res_io(&B, 0, out, sizeof(out), 0);
	for (int i = 0; i < 8192; i++) {
		volatile float t = a * x[i];
		float r = t + y[i];

		assert_memory_equal(&out[i], &r, 4);
	}
	for (int i = 1; i <= 8000; i++)
		sum += (double)x[i];
	res_io(&ST, 64, &got, 8, 0);
	assert_memory_equal(&got, &sum, 8);
}

/* REDUCE_F32: |got - exact| <= n * 2^-53 * sum |x| (docs/compute-capset.md). */
static void test_reduce(void **state)
{
	static float x[16384];
	long double exact = 0, mag = 0;
	struct vgpu_compute_op op;
	uint32_t ns[] = { 1, 7, 255, 4096, 16383 };
	double got;

	(void)state;
	for (int i = 0; i < 16384; i++)
		x[i] = cosf((float)i * 0.37f) * (float)(1 + i % 97);
	res_io(&A, 0, x, sizeof(x), 1);
	for (unsigned t = 0; t < sizeof(ns) / sizeof(ns[0]); t++) {
		uint32_t n = ns[t];

		exact = mag = 0;
		for (uint32_t i = 1; i <= n; i++) {
			exact += x[i];
			mag += fabsl((long double)x[i]);
		}
		op = mkop(VGPU_OP_REDUCE_F32, 5, 128, 1, 4, 4ull * n, 0);
		assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
		res_io(&ST, 128, &got, 8, 0);
		assert_true(fabsl((long double)got - exact) <= (long double)n * 0x1p-53L * mag);
	}
}

static struct vgpu_compute_op sgemm_op(uint32_t c_res, uint64_t c_off, uint32_t ab_res,
				       uint64_t a_off, uint64_t b_off, uint32_t m, uint32_t n,
				       uint32_t k, uint32_t lda, uint32_t ldb, uint32_t ldc)
{
	struct vgpu_compute_op o = mkop(VGPU_OP_SGEMM, c_res, c_off, ab_res, a_off, b_off,
					m | (uint64_t)n << 32);

	o.arg1 = k | (uint64_t)lda << 32;
	o.arg2 = ldb | (uint64_t)ldc << 32;
	return o;
}

/* SGEMM: |c - exact| <= K * 2^-23 * sum_k |a_ik b_kj| per element. */
static void check_sgemm(uint32_t m, uint32_t n, uint32_t k, uint32_t lda, uint32_t ldb,
			uint32_t ldc)
{
	static float a[16384], b[16384], c[8192];
	uint64_t b_off = 4ull * ((m - 1) * lda + k) + 64;
	struct vgpu_compute_op op = sgemm_op(3, 16, 1, 0, b_off, m, n, k, lda, ldb, ldc);

	for (uint32_t i = 0; i < 16384; i++) {
		a[i] = (float)((int)(i * 37 % 101) - 50) / 16.0f + 0.001f * (float)i;
		b[i] = (float)((int)(i * 53 % 89) - 44) / 8.0f;
	}
	res_io(&A, 0, a, 4ull * ((m - 1) * lda + k), 1);
	res_io(&A, b_off, b, 4ull * ((k - 1) * ldb + n), 1);
	/* Poison C, strides included: the gaps must stay as they were. */
	memset(c, 0x7f, sizeof(c));
	res_io(&C, 16, c, 4ull * ((m - 1) * ldc + n), 1);
	assert_int_equal(cmd_submit(&F, 1, 5, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(status().result, VGPU_COMPUTE_OK);
	res_io(&C, 16, c, 4ull * ((m - 1) * ldc + n), 0);
	for (uint32_t i = 0; i < m; i++) {
		for (uint32_t j = 0; j < n; j++) {
			double exact = 0, mag = 0;

			for (uint32_t q = 0; q < k; q++) {
				double p = (double)a[i * lda + q] * (double)b[q * ldb + j];

				exact += p;
				mag += fabs(p);
			}
			assert_true(fabs((double)c[i * ldc + j] - exact) <= k * 0x1p-23 * mag);
		}
		for (uint32_t j = n; j < ldc && i + 1 < m; j++) {
			uint32_t u;

			memcpy(&u, &c[i * ldc + j], 4);
			assert_int_equal(u, 0x7f7f7f7f);
		}
	}
}

static void test_sgemm(void **state)
{
	(void)state;
	check_sgemm(1, 1, 1, 1, 1, 1);
	check_sgemm(16, 16, 16, 16, 16, 16);
	check_sgemm(33, 47, 61, 64, 50, 51);   /* strides wider than the rows */
	check_sgemm(64, 96, 80, 80, 96, 96);
}

/* Strides of 0 mean packed rows. */
static void test_sgemm_packed(void **state)
{
	float a[6] = { 1, 2, 3, 4, 5, 6 }, b[6] = { 7, 8, 9, 10, 11, 12 }, c[4];
	const float want[4] = { 58, 64, 139, 154 };
	struct vgpu_compute_op op = sgemm_op(3, 0, 1, 0, 64, 2, 2, 3, 0, 0, 0);

	(void)state;
	res_io(&A, 0, a, sizeof(a), 1);
	res_io(&A, 64, b, sizeof(b), 1);
	assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	res_io(&C, 0, c, sizeof(c), 0);
	assert_memory_equal(c, want, sizeof(c));   /* small integers: exact */
}

static void test_sgemm_invalid(void **state)
{
	struct vgpu_compute_op op;
	uint8_t before[64], after[64];

	(void)state;
	res_io(&C, 0, before, sizeof(before), 0);
	/* M = 0, lda < K, too large, misaligned, outside, overlapping. */
	op = sgemm_op(3, 0, 1, 0, 4096, 0, 4, 4, 4, 4, 4);
	assert_int_not_equal(cmd_submit(&F, 1, 5, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(status().result, VGPU_COMPUTE_E_MALFORMED);
	op = sgemm_op(3, 0, 1, 0, 4096, 4, 4, 8, 7, 4, 4);
	assert_int_not_equal(cmd_submit(&F, 1, 5, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(status().result, VGPU_COMPUTE_E_MALFORMED);
	op = sgemm_op(3, 0, 1, 0, 4096, VGPU_COMPUTE_MAX_GEMM_DIM + 1, 1, 1, 1, 1, 1);
	assert_int_not_equal(cmd_submit(&F, 1, 5, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(status().result, VGPU_COMPUTE_E_MALFORMED);
	/* 4096^3 multiply-adds: more than one op may ask for. */
	op = sgemm_op(3, 0, 1, 0, 4096, 4096, 4096, 4096, 4096, 4096, 4096);
	assert_int_not_equal(cmd_submit(&F, 1, 5, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(status().result, VGPU_COMPUTE_E_RANGE);
	op = sgemm_op(3, 2, 1, 0, 4096, 4, 4, 4, 4, 4, 4);
	assert_int_not_equal(cmd_submit(&F, 1, 5, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(status().result, VGPU_COMPUTE_E_ALIGN);
	op = sgemm_op(3, 0, 1, 0, 16 * PG - 16, 4, 4, 4, 4, 4, 4);
	assert_int_not_equal(cmd_submit(&F, 1, 5, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(status().result, VGPU_COMPUTE_E_RANGE);
	op = sgemm_op(3, 0, 3, 32, 4096, 4, 4, 4, 4, 4, 4);
	assert_int_not_equal(cmd_submit(&F, 1, 5, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(status().result, VGPU_COMPUTE_E_OVERLAP);
	op = sgemm_op(4, 0, 1, 0, 4096, 4, 4, 4, 4, 4, 4);   /* C read-only */
	assert_int_not_equal(cmd_submit(&F, 1, 5, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(status().result, VGPU_COMPUTE_E_READONLY);
	res_io(&C, 0, after, sizeof(after), 0);
	assert_memory_equal(before, after, sizeof(before));
}

/* A resource without a window: the CPU engine computes entry by entry,
 * the OpenCL backend refuses the submit before anything runs. */
static void test_no_window(void **state)
{
	uint64_t nw0 = STAT_GET(cl_nowindow);
	struct vgpu_compute_op ops[2];
	uint8_t b0[256], b1[256];

	(void)state;
	/* Region 2 starts mid-page in the file: no window. */
	assert_true(simple_blob(&F, 1, 9, 0, 2, 2 * PG) != 0);
	assert_int_equal(cmd_attach(&F, 1, 9), VIRTIO_GPU_RESP_OK_NODATA);
	res_io(&B, 0, b0, sizeof(b0), 0);
	ops[0] = mkop(VGPU_OP_FILL, 2, 0, 0, 0, 256, 0x01020304);
	ops[1] = mkop(VGPU_OP_COPY, 9, 0, 1, 0, 256, 0);
	if (backend == VGPU_BACKEND_OPENCL) {
		assert_int_not_equal(cmd_submit(&F, 1, 5, 0, ops, 2), VIRTIO_GPU_RESP_OK_NODATA);
		assert_int_equal(status().result, VGPU_COMPUTE_E_NOWINDOW);
		assert_int_equal(status().op_index, 1);
		assert_int_equal(status().ops_done, 0);
		assert_int_equal(STAT_GET(cl_nowindow), nw0 + 1);
		res_io(&B, 0, b1, sizeof(b1), 0);
		assert_memory_equal(b0, b1, sizeof(b0));    /* op 0 did not run */
	} else {
		assert_int_equal(cmd_submit(&F, 1, 5, 0, ops, 2), VIRTIO_GPU_RESP_OK_NODATA);
		assert_int_equal(status().result, VGPU_COMPUTE_OK);
	}
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 9), VIRTIO_GPU_RESP_OK_NODATA);
}

/* The mapping budget spent: a new resource has no window; the OpenCL
 * backend refuses ops on it with E_NOWINDOW, the CPU computes. */
static void test_budget_spent(void **state)
{
	uint64_t old = win_budget(), fb0 = STAT_GET(win_fallback[WIN_BUDGET]);
	struct vgpu_compute_op op = mkop(VGPU_OP_FILL, 10, 0, 0, 0, PG, 0x55555555);
	struct res X;
	uint8_t b[PG];

	(void)state;
	win_set_budget(win_maps_in_use());
	res_make(&X, 10, 2, 0);
	win_set_budget(old);
	assert_int_equal(STAT_GET(win_fallback[WIN_BUDGET]), fb0 + 1);
	memset(b, 0, sizeof(b));
	res_io(&X, 0, b, sizeof(b), 1);
	if (backend == VGPU_BACKEND_OPENCL) {
		assert_int_not_equal(cmd_submit(&F, 1, 5, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
		assert_int_equal(status().result, VGPU_COMPUTE_E_NOWINDOW);
		res_io(&X, 0, b, sizeof(b), 0);
		assert_int_equal(b[0], 0);
	} else {
		assert_int_equal(cmd_submit(&F, 1, 5, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
		res_io(&X, 0, b, sizeof(b), 0);
		assert_int_equal(b[0], 0x55);
	}
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 10), VIRTIO_GPU_RESP_OK_NODATA);
}

/* The zero-copy proofs (OpenCL): the device passed the gate; a kernel's
 * write is what the guest reads; a guest write is what the next kernel
 * reads; no op moved a byte. On a device that failed the gate (made to
 * fail here) the same results, and exactly the bytes moved counted. */
static void test_zero_copy(void **state)
{
	uint64_t copied0 = STAT_GET(cl_copied_bytes);
	bool copying = getenv("VIRTGPU_HOSTD_CL_GATE") != NULL;
	struct vgpu_compute_op op;
	uint8_t buf[PG];
	uint64_t h;

	(void)state;
	if (backend != VGPU_BACKEND_OPENCL) {
		/* The CPU engine works on the guest's pages, always. */
		assert_true(engine_zero_copy(F.eng));
		assert_int_equal(STAT_GET(cl_zero_copy), HOSTD_CL_NONE);
		return;
	}
	assert_int_equal(engine_zero_copy(F.eng), !copying);
	assert_int_equal(STAT_GET(cl_zero_copy), copying ? HOSTD_CL_COPYING : HOSTD_CL_ZERO_COPY);
	for (int round = 0; round < 3; round++) {
		/* The guest writes... */
		for (unsigned i = 0; i < sizeof(buf); i++)
			buf[i] = (uint8_t)(i ^ (unsigned)round * 77);
		res_io(&A, 5 * PG, buf, sizeof(buf), 1);
		/* ...the next kernel reads exactly that... */
		op = mkop(VGPU_OP_CHECKSUM, 2, 8, 1, 5 * PG, PG, 1);
		assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
		/* ...and the guest reads the kernel's write. */
		res_io(&B, 8, &h, 8, 0);
		assert_int_equal(h, XXH64(buf, PG, 1));
		op = mkop(VGPU_OP_FILL, 2, PG, 0, 0, PG, 0xa5a5a5a5u + (uint32_t)round);
		assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
		res_io(&B, PG, buf, PG, 0);
		for (unsigned i = 0; i < PG; i += 4) {
			uint32_t v;

			memcpy(&v, buf + i, 4);
			assert_int_equal(v, 0xa5a5a5a5u + (uint32_t)round);
		}
	}
	/* Copying: per round the checksum's input and result, the fill's
	 * range. */
	assert_int_equal(STAT_GET(cl_copied_bytes), copied0 + (copying ? 3 * (2 * PG + 8) : 0));
	if (!copying)
		assert_int_equal(STAT_GET(cl_copied_bytes), 0);
}

/*
 * A device that knows nothing of userptr (--no-userptr: no
 * VIRTIO_GPU_F_BLOB_RDONLY) computes on a read-write userptr range in
 * place all the same: on the wire it is a plain guest blob. The op's
 * writes land in the guest's RAM itself, through the blob's zero-copy
 * window, and nothing is copied. Only the read-only flag is refused.
 */
static void test_plain_blob_no_feature(void **state)
{
	struct fe_opts o = { .backend = backend, .no_userptr = true };
	bool copying = getenv("VIRTGPU_HOSTD_CL_GATE") != NULL;
	uint64_t copied0 = STAT_GET(cl_copied_bytes), live0, res0;
	struct virtio_gpu_mem_entry d[4], s;
	struct vgpu_compute_op ops[2];
	uint8_t *src;
	struct fe g;

	(void)state;
	fe_start(&g, &o);
	assert_false(g.features & (1ull << VIRTIO_GPU_F_BLOB_RDONLY));
	assert_int_equal(engine_backend_id(g.eng), backend);
	assert_int_equal(cmd_ctx_create(&g, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	/* The destination: four pages in reverse order with gaps. */
	for (uint32_t i = 0; i < 4; i++) {
		d[3 - i].addr = fe_alloc(&g, 1, 2 * PG, 0);
		d[3 - i].length = PG;
		d[3 - i].padding = 0;
		memset(fe_ptr(&g, d[3 - i].addr), 0, PG);
	}
	s.addr = fe_alloc(&g, 1, 4 * PG, 0);
	s.length = 4 * PG;
	s.padding = 0;
	src = fe_ptr(&g, s.addr);
	for (uint32_t i = 0; i < 4 * PG; i++)
		src[i] = (uint8_t)(i * 11 + 5);
	live0 = STAT_GET(win_live);
	res0 = STAT_GET(resources);
	/* The read-only flag is not this device's: refused, nothing made. */
	assert_int_equal(cmd_blob(&g, 1, 1, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST,
				  VIRTIO_GPU_BLOB_FLAG_RDONLY, 4 * PG, d, 4),
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(STAT_GET(resources), res0);
	assert_int_equal(cmd_blob(&g, 1, 1, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST, 0, 4 * PG, d, 4),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_blob(&g, 1, 2, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST, 0, 4 * PG, &s, 1),
			 VIRTIO_GPU_RESP_OK_NODATA);
	/* Both got a window over the guest's pages. */
	assert_int_equal(STAT_GET(win_live), live0 + 2);
	assert_int_equal(cmd_attach(&g, 1, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&g, 1, 2), VIRTIO_GPU_RESP_OK_NODATA);
	ops[0] = mkop(VGPU_OP_COPY, 1, 0, 2, 0, 4 * PG, 0);
	ops[1] = mkop(VGPU_OP_FILL, 1, 2 * PG + 8, 0, 0, 16, 0x5a5a5a5au);
	assert_int_equal(cmd_submit(&g, 1, 0, 0, ops, 2), VIRTIO_GPU_RESP_OK_NODATA);
	/* What the op wrote is in the guest's RAM, page by page. */
	for (uint32_t i = 0; i < 4; i++) {
		const uint8_t *p = fe_ptr(&g, d[i].addr);

		for (uint32_t k = 0; k < PG; k++) {
			uint64_t off = (uint64_t)i * PG + k;
			uint8_t want = off >= 2 * PG + 8 && off < 2 * PG + 24 ? 0x5a : src[off];

			if (p[k] != want)
				fail_msg("byte %llu: %#x, not %#x", (unsigned long long)off, p[k], want);
		}
	}
	if (backend == VGPU_BACKEND_OPENCL && !copying)
		assert_int_equal(STAT_GET(cl_copied_bytes), copied0);
	else if (backend != VGPU_BACKEND_OPENCL)
		assert_true(engine_zero_copy(g.eng));
	fe_stop(&g);
	assert_int_equal(STAT_GET(win_live), live0);
}

/*
 * Several threads submitting at once to one OpenCL engine, as ring threads
 * do: each thread fills its own resource and checksums it, over and over;
 * every result must be its own. Each thread has its own command queue and
 * kernel objects, made at its first op and freed when it exits.
 */
#define CT_THREADS 4
#define CT_ROUNDS 40

struct ct {
	struct engine *eng;
	struct guest_mem *gm;
	struct gpu_resource *res;   /* [0]: this thread's buffer, [1]: its output */
	uint32_t seed;
	int bad;
};

static const struct gpu_resource *ct_lookup(void *opaque, uint32_t id)
{
	struct ct *c = opaque;

	return id == 1 ? &c->res[0] : id == 2 ? &c->res[1] : NULL;
}

static void *ct_thread(void *arg)
{
	struct ct *c = arg;

	for (uint32_t r = 0; r < CT_ROUNDS; r++) {
		uint8_t buf[sizeof(struct vgpu_compute_submit) + 2 * sizeof(struct vgpu_compute_op)];
		struct vgpu_compute_submit h = { VGPU_COMPUTE_MAGIC, 2, 0, 0, 0 };
		struct vgpu_compute_op ops[2];
		struct engine_result er;
		uint32_t v = c->seed * 1000 + r, pat[4 * PG / 4];
		uint64_t got;

		ops[0] = mkop(VGPU_OP_FILL, 1, 0, 0, 0, 4 * PG, v);
		ops[1] = mkop(VGPU_OP_CHECKSUM, 2, 0, 1, 0, 4 * PG, 0);
		memcpy(buf, &h, sizeof(h));
		memcpy(buf + sizeof(h), ops, sizeof(ops));
		if (engine_submit(c->eng, c->gm, buf, sizeof(buf), ct_lookup, c, &er)) {
			c->bad++;
			continue;
		}
		for (unsigned i = 0; i < sizeof(pat) / 4; i++)
			pat[i] = v;
		if (res_read(c->res[1].bk, c->gm, 0, &got, 8) || got != XXH64(pat, sizeof(pat), 0))
			c->bad++;
	}
	return NULL;
}

static void test_concurrent_submits(void **state)
{
	struct gm_region_desc d = { 0x100000, 1u << 20, 0x100000, 0 };
	struct gpu_resource res[CT_THREADS][2];
	struct ct c[CT_THREADS];
	pthread_t th[CT_THREADS];
	struct guest_mem gm;
	uint64_t threads0;
	int fd = memfd_create("ram", MFD_CLOEXEC);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1u << 20), 0);
	gm_init(&gm);
	assert_int_equal(gm_set_table(&gm, &d, 1, &fd), 0);
	for (int t = 0; t < CT_THREADS; t++) {
		for (int k = 0; k < 2; k++) {
			struct gpu_mem_entry e[4];
			struct gpu_resource *r = &res[t][k];

			for (int i = 0; i < 4; i++) {
				e[i].addr = 0x100000 + (uint64_t)((t * 2 + k) * 8 + 7 - 2 * i) * PG;
				e[i].len = PG;
			}
			memset(r, 0, sizeof(*r));
			r->bk = res_backing_new(e, 4, false);
			assert_non_null(r->bk);
			r->size = 4 * PG;
			res_window_open(r->bk, &gm);
			assert_non_null(res_window_base(r->bk));
		}
		c[t] = (struct ct){ F.eng, &gm, res[t], (uint32_t)t + 1, 0 };
	}
	threads0 = STAT_GET(cl_threads);
	for (int t = 0; t < CT_THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, ct_thread, &c[t]), 0);
	for (int t = 0; t < CT_THREADS; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(c[t].bad, 0);
	}
	/* Each thread's queue and kernels went with it. */
	assert_int_equal(STAT_GET(cl_threads), threads0);
	for (int t = 0; t < CT_THREADS; t++)
		for (int k = 0; k < 2; k++)
			res_backing_put(res[t][k].bk);
	gm_clear(&gm);
	close(fd);
}

#ifdef HOSTD_OPENCL
/* Directly against the runtime: a USE_HOST_PTR buffer over a window is
 * the window (CL_MEM_HOST_PTR and clEnqueueMapBuffer) on a CPU device. */
static void test_cl_map_is_window(void **state)
{
	struct gm_region_desc d = { 0x100000, 1u << 20, 0x100000, 0 };
	struct gpu_mem_entry e[4];
	struct res_backing *r;
	struct guest_mem gm;
	cl_platform_id plat;
	cl_device_id dev;
	cl_context ctx;
	cl_command_queue q;
	cl_mem m;
	cl_int err;
	cl_device_type type;
	void *hp = NULL, *p;
	int fd = memfd_create("ram", MFD_CLOEXEC);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1u << 20), 0);
	gm_init(&gm);
	assert_int_equal(gm_set_table(&gm, &d, 1, &fd), 0);
	for (int i = 0; i < 4; i++) {
		e[i].addr = 0x100000 + (uint64_t)(7 - 2 * i) * PG;
		e[i].len = PG;
	}
	r = res_backing_new(e, 4, false);
	assert_non_null(r);
	assert_int_equal(res_window_open(r, &gm), WIN_OK);
	assert_int_equal(clGetPlatformIDs(1, &plat, NULL), CL_SUCCESS);
	assert_int_equal(clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, 1, &dev, NULL), CL_SUCCESS);
	assert_int_equal(clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof(type), &type, NULL), CL_SUCCESS);
	ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
	assert_non_null(ctx);
	q = clCreateCommandQueue(ctx, dev, 0, &err);
	assert_non_null(q);
	m = clCreateBuffer(ctx, CL_MEM_USE_HOST_PTR | CL_MEM_READ_WRITE, r->size,
			   res_window_base(r), &err);
	assert_non_null(m);
	assert_int_equal(clGetMemObjectInfo(m, CL_MEM_HOST_PTR, sizeof(hp), &hp, NULL), CL_SUCCESS);
	assert_ptr_equal(hp, res_window_base(r));
	p = clEnqueueMapBuffer(q, m, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, PG, 2 * PG, 0, NULL,
			       NULL, &err);
	assert_non_null(p);
	if (type & CL_DEVICE_TYPE_CPU)   /* a discrete GPU may legitimately differ */
		assert_ptr_equal(p, res_window_base(r) + PG);
	assert_int_equal(clEnqueueUnmapMemObject(q, m, p, 0, NULL, NULL), CL_SUCCESS);
	assert_int_equal(clFinish(q), CL_SUCCESS);
	clReleaseMemObject(m);
	clReleaseCommandQueue(q);
	clReleaseContext(ctx);
	res_backing_put(r);
	gm_clear(&gm);
	close(fd);
}
#endif

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_bit_exact),
		cmocka_unit_test(test_saxpy_sum),
		cmocka_unit_test(test_reduce),
		cmocka_unit_test(test_sgemm),
		cmocka_unit_test(test_sgemm_packed),
		cmocka_unit_test(test_sgemm_invalid),
		cmocka_unit_test(test_no_window),
		cmocka_unit_test(test_budget_spent),
		cmocka_unit_test(test_zero_copy),
		cmocka_unit_test(test_plain_blob_no_feature),
#ifdef HOSTD_OPENCL
		/* OpenCL only (the last two): */
		cmocka_unit_test(test_concurrent_submits),
		cmocka_unit_test(test_cl_map_is_window),
#endif
	};

	size_t n = sizeof(tests) / sizeof(tests[0]);

	if (argc != 2 || (strcmp(argv[1], "cpu") && strcmp(argv[1], "opencl"))) {
		fprintf(stderr, "usage: %s cpu|opencl\n", argv[0]);
		return 2;
	}
	backend = strcmp(argv[1], "opencl") ? VGPU_BACKEND_CPU : VGPU_BACKEND_OPENCL;
	/* Both backends on windows (the OpenCL one turns them on itself);
	 * test_compute covers the CPU engine without them. */
	win_set_enabled(true);
	cmocka_set_message_output(CM_OUTPUT_TAP);
#ifdef HOSTD_OPENCL
	/* The last two are the OpenCL backend's: concurrent submits (the CPU
	 * engine's pool runs one op at a time), and the runtime itself. */
	if (backend != VGPU_BACKEND_OPENCL)
		n -= 2;
#endif
	return _cmocka_run_group_tests(argv[1], tests, n, setup, teardown);
}
