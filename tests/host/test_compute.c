/* SPDX-License-Identifier: MIT */
/*
 * test_compute.c - the compute capset end to end: every op with exact
 * expected values on scatter-gather resources whose entries have odd
 * lengths and lie in two regions, and every failure result with nothing
 * written but the status record.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include <cmocka.h>

#include "helpers.h"
#include "stats.h"

static struct fe F;

struct sg {
	struct virtio_gpu_mem_entry e[512];
	unsigned n;
	uint64_t size;
};

/* Entries alternate between R1 and R2, at odd addresses. */
static void sg_make(struct sg *s, const uint32_t *lens, unsigned n)
{
	s->n = n;
	s->size = 0;
	for (unsigned i = 0; i < n; i++) {
		s->e[i].addr = fe_alloc(&F, i % 2 ? 1 : 2, lens[i] + 1, 8) + (i % 2);
		s->e[i].length = lens[i];
		s->e[i].padding = 0;
		s->size += lens[i];
	}
}

static void sg_io(struct sg *s, uint64_t off, void *buf, uint64_t len, int write)
{
	uint8_t *b = buf;
	uint64_t pos = 0;

	for (unsigned i = 0; i < s->n && len; i++) {
		uint64_t el = s->e[i].length;

		if (off < pos + el) {
			uint64_t in = off - pos, k = el - in < len ? el - in : len;
			uint8_t *p = (uint8_t *)fe_ptr(&F, s->e[i].addr) + in;

			if (write)
				memcpy(p, b, k);
			else
				memcpy(b, p, k);
			b += k;
			off += k;
			len -= k;
		}
		pos += el;
	}
	assert_int_equal(len, 0);
}

static uint8_t *sg_snapshot(struct sg *s)
{
	uint8_t *b = malloc(s->size);

	sg_io(s, 0, b, s->size, 0);
	return b;
}

static void sg_assert_same(struct sg *s, const uint8_t *snap)
{
	uint8_t *b = sg_snapshot(s);

	assert_memory_equal(b, snap, s->size);
	free(b);
}

static uint32_t blob(uint32_t id, uint32_t flags, struct sg *s)
{
	return cmd_blob(&F, 1, id, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST, flags, s->size, s->e, s->n);
}

static struct sg A, B, RO, NA, ST;
static const uint32_t lens_a[] = { 4093, 3, 5000, 7, 2000, 5281 };
static const uint32_t lens_b[] = { 1, 8191, 4096, 4095, 1 };

/* ctx 1; res 1 = A, 2 = B, 3 = read-only (VIRTIO_GPU_BLOB_FLAG_RDONLY),
 * 4 = not attached, 5 = status page; A, B, RO filled with a byte
 * pattern. */
static int setup(void **state)
{
	uint32_t one = 4096;

	(void)state;
	fe_start(&F, NULL);
	assert_int_equal(cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	sg_make(&A, lens_a, 6);
	sg_make(&B, lens_b, 5);
	sg_make(&RO, lens_b, 5);
	sg_make(&NA, &one, 1);
	sg_make(&ST, &one, 1);
	assert_int_equal(blob(1, 0, &A), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(blob(2, 0, &B), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(blob(3, VIRTIO_GPU_BLOB_FLAG_RDONLY, &RO), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(blob(4, 0, &NA), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(blob(5, 0, &ST), VIRTIO_GPU_RESP_OK_NODATA);
	for (uint32_t r = 1; r <= 5; r++)
		if (r != 4)
			assert_int_equal(cmd_attach(&F, 1, r), VIRTIO_GPU_RESP_OK_NODATA);
	for (uint64_t i = 0; i < A.size; i++) {
		uint8_t v = (uint8_t)(i * 7 + 3);

		sg_io(&A, i, &v, 1, 1);
	}
	for (uint64_t i = 0; i < B.size; i++) {
		uint8_t v = (uint8_t)(i * 13 + 1);

		sg_io(&B, i, &v, 1, 1);
		sg_io(&RO, i, &v, 1, 1);
	}
	{
		uint8_t z[4096];

		memset(z, 0xcc, sizeof(z));
		sg_io(&ST, 0, z, sizeof(z), 1);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fe_stop(&F);
	return 0;
}

static struct vgpu_compute_status status_at(uint64_t off)
{
	struct vgpu_compute_status s;

	sg_io(&ST, off, &s, sizeof(s), 0);
	return s;
}

static void test_copy(void **state)
{
	uint8_t *a = sg_snapshot(&A), *b0 = sg_snapshot(&B), *b1;
	struct vgpu_compute_op op = mkop(VGPU_OP_COPY, 2, 100, 1, 50, 10000, 0);
	struct vgpu_compute_status st;

	(void)state;
	assert_int_equal(cmd_submit(&F, 1, 5, 8, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	b1 = sg_snapshot(&B);
	assert_memory_equal(b1 + 100, a + 50, 10000);
	assert_memory_equal(b1, b0, 100);
	assert_memory_equal(b1 + 10100, b0 + 10100, B.size - 10100);
	st = status_at(8);
	assert_int_equal(st.result, VGPU_COMPUTE_OK);
	assert_int_equal(st.op_index, 1);
	assert_int_equal(st.ops_done, 1);
	/* Same resource, disjoint ranges. */
	op = mkop(VGPU_OP_COPY, 1, 8000, 1, 0, 8000, 0);
	assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	free(b1);
	b1 = sg_snapshot(&A);
	assert_memory_equal(b1 + 8000, a, 8000);
	/* From a read-only resource. */
	op = mkop(VGPU_OP_COPY, 2, 0, 3, 0, 16384, 0);
	assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	free(b1);
	b1 = sg_snapshot(&B);
	{
		uint8_t *ro = sg_snapshot(&RO);

		assert_memory_equal(b1, ro, 16384);
		free(ro);
	}
	free(a);
	free(b0);
	free(b1);
}

static void test_fill(void **state)
{
	uint8_t *b0 = sg_snapshot(&B), *b1;
	struct vgpu_compute_op op = mkop(VGPU_OP_FILL, 2, 1, 0, 0, 8000, 0xdeadbeef);
	const uint8_t pat[4] = { 0xef, 0xbe, 0xad, 0xde };

	(void)state;
	assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	b1 = sg_snapshot(&B);
	assert_int_equal(b1[0], b0[0]);
	for (int i = 0; i < 8000; i++)
		assert_int_equal(b1[1 + i], pat[i % 4]);
	assert_memory_equal(b1 + 8001, b0 + 8001, B.size - 8001);
	free(b0);
	free(b1);
}

static void test_checksum(void **state)
{
	uint8_t *a = sg_snapshot(&A);
	struct vgpu_compute_op op = mkop(VGPU_OP_CHECKSUM, 2, 3, 1, 10, 12345, 42);
	uint64_t h;

	(void)state;
	assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	sg_io(&B, 3, &h, 8, 0);
	assert_int_equal(h, XXH64(a + 10, 12345, 42));
	/* Empty range: the hash of nothing. */
	op = mkop(VGPU_OP_CHECKSUM, 2, 16376, 1, 16384, 0, 0);
	assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	sg_io(&B, 16376, &h, 8, 0);
	assert_int_equal(h, XXH64(NULL, 0, 0));
	free(a);
}

static float f32(uint32_t u)
{
	float f;

	memcpy(&f, &u, 4);
	return f;
}

static void test_saxpy_sum(void **state)
{
	float x[4096], y[4096], out[4096], a = 1.5f;
	uint32_t abits;
	struct vgpu_compute_op ops[2];
	double sum = 0.0, got;

	(void)state;
	for (int i = 0; i < 4096; i++) {
		x[i] = (float)i * 0.25f - 100.0f;
		y[i] = 1.0f / (float)(i + 1);
	}
	sg_io(&A, 0, x, sizeof(x), 1);
	sg_io(&B, 0, y, sizeof(y), 1);
	memcpy(&abits, &a, 4);
	ops[0] = mkop(VGPU_OP_SAXPY, 2, 0, 1, 0, 16384, abits);
	/* Sum of x[1 .. 4000], written into the status page. */
	ops[1] = mkop(VGPU_OP_SUM_F32, 5, 64, 1, 4, 16000, 0);
	assert_int_equal(cmd_submit(&F, 1, 5, 0, ops, 2), VIRTIO_GPU_RESP_OK_NODATA);
	sg_io(&B, 0, out, sizeof(out), 0);
	for (int i = 0; i < 4096; i++) {
		float t = a * x[i];

		t = t + y[i];
		assert_memory_equal(&out[i], &t, 4);
	}
	for (int i = 1; i <= 4000; i++)
		sum += (double)x[i];
	sg_io(&ST, 64, &got, 8, 0);
	assert_memory_equal(&got, &sum, 8);
	assert_int_equal(status_at(0).ops_done, 2);
	/* In place: y = a*y + y. */
	ops[0] = mkop(VGPU_OP_SAXPY, 2, 0, 2, 0, 16, abits);
	assert_int_equal(cmd_submit(&F, 1, 0, 0, ops, 1), VIRTIO_GPU_RESP_OK_NODATA);
	sg_io(&B, 0, y, 16, 0);
	for (int i = 0; i < 4; i++) {
		float t = a * out[i];

		t = t + out[i];
		assert_memory_equal(&y[i], &t, 4);
	}
	(void)f32;
}

static void test_large_parallel(void **state)
{
	/* 768 KiB resources: several chunks on two threads; L is made of
	 * 192 page entries in descending address order. */
	struct sg *L = calloc(1, sizeof(*L)), *M = calloc(1, sizeof(*M));
	uint64_t base = fe_alloc(&F, 2, 192 * 4096, 0), mb;
	struct vgpu_compute_op ops[3];
	uint8_t *l0, *m1;
	float a = -2.0f;
	uint32_t abits;

	(void)state;
	L->n = 192;
	L->size = 192 * 4096;
	for (unsigned i = 0; i < 192; i++) {
		L->e[i].addr = base + (191 - i) * 4096ull;
		L->e[i].length = 4096;
	}
	mb = fe_alloc(&F, 2, 192 * 4096, 0);
	M->n = 1;
	M->size = 192 * 4096;
	M->e[0].addr = mb;
	M->e[0].length = 192 * 4096;
	assert_int_equal(blob(10, 0, L), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(blob(11, 0, M), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, 10), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, 11), VIRTIO_GPU_RESP_OK_NODATA);
	for (uint64_t i = 0; i < L->size; i += 4) {
		float v = (float)(i / 4 % 1000);

		sg_io(L, i, &v, 4, 1);
	}
	l0 = sg_snapshot(L);
	memcpy(&abits, &a, 4);
	ops[0] = mkop(VGPU_OP_FILL, 11, 0, 0, 0, M->size, 0x3f800000);   /* 1.0f */
	ops[1] = mkop(VGPU_OP_SAXPY, 11, 0, 10, 0, M->size, abits);       /* m = -2 l + 1 */
	ops[2] = mkop(VGPU_OP_COPY, 10, 0, 11, 0, M->size - 4096, 0);      /* l = m, but the last page */
	assert_int_equal(cmd_submit(&F, 1, 0, 0, ops, 3), VIRTIO_GPU_RESP_OK_NODATA);
	m1 = sg_snapshot(M);
	for (uint64_t i = 0; i < M->size; i += 4) {
		float l, m, want;

		memcpy(&l, l0 + i, 4);
		memcpy(&m, m1 + i, 4);
		want = -2.0f * l;
		want = want + 1.0f;
		assert_memory_equal(&m, &want, 4);
	}
	{
		uint8_t *l1 = sg_snapshot(L);

		assert_memory_equal(l1, m1, M->size - 4096);
		assert_memory_equal(l1 + M->size - 4096, l0 + M->size - 4096, 4096);
		free(l1);
	}
	assert_true(STAT_GET(op_count[VGPU_OP_SAXPY]) >= 1);
	assert_true(STAT_GET(op_bytes[VGPU_OP_COPY]) >= M->size - 4096);
	free(l0);
	free(m1);
	free(L);
	free(M);
}

/* ---- failures: nothing written but the status record ---- */

static void expect_fail(const struct vgpu_compute_op *ops, uint32_t n, uint32_t result,
			uint32_t op_index)
{
	uint8_t *a = sg_snapshot(&A), *b = sg_snapshot(&B), *ro = sg_snapshot(&RO);
	struct vgpu_compute_status st;

	assert_int_equal(cmd_submit(&F, 1, 5, 16, ops, n), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	st = status_at(16);
	assert_int_equal(st.result, result);
	assert_int_equal(st.op_index, op_index);
	assert_int_equal(st.ops_done, 0);
	sg_assert_same(&A, a);
	sg_assert_same(&B, b);
	sg_assert_same(&RO, ro);
	free(a);
	free(b);
	free(ro);
}

static void test_fail_results(void **state)
{
	struct vgpu_compute_op ops[2];
	const uint32_t I = VGPU_COMPUTE_E_MALFORMED;

	(void)state;
	/* A valid first op that must not run when the second is bad. */
	ops[0] = mkop(VGPU_OP_FILL, 2, 0, 0, 0, 4096, 0x11111111);

	ops[1] = mkop(99, 1, 0, 0, 0, 4, 0);
	expect_fail(ops, 2, VGPU_COMPUTE_E_OPCODE, 1);
	ops[1] = mkop(VGPU_OP_COPY, 1, 0, 2, 0, 4, 0);
	ops[1].flags = 1;
	expect_fail(ops, 2, VGPU_COMPUTE_E_OPCODE, 1);
	ops[1] = mkop(VGPU_OP_COPY, 1, 0, 2, 0, 4, 0);
	ops[1].arg1 = 1;
	expect_fail(ops, 2, I, 1);
	ops[1] = mkop(VGPU_OP_NOP, 0, 0, 0, 0, 4, 0);
	expect_fail(ops, 2, I, 1);
	ops[1] = mkop(VGPU_OP_FILL, 1, 0, 2, 0, 4, 0);   /* src on FILL */
	expect_fail(ops, 2, I, 1);
	/* Resource not attached, unknown, zero. */
	ops[1] = mkop(VGPU_OP_COPY, 1, 0, 4, 0, 4, 0);
	expect_fail(ops, 2, VGPU_COMPUTE_E_RESOURCE, 1);
	ops[1] = mkop(VGPU_OP_COPY, 99, 0, 1, 0, 4, 0);
	expect_fail(ops, 2, VGPU_COMPUTE_E_RESOURCE, 1);
	ops[1] = mkop(VGPU_OP_FILL, 0, 0, 0, 0, 4, 0);
	expect_fail(ops, 2, VGPU_COMPUTE_E_RESOURCE, 1);
	/* Ranges. */
	ops[1] = mkop(VGPU_OP_FILL, 1, 16384 - 4, 0, 0, 8, 0);
	expect_fail(ops, 2, VGPU_COMPUTE_E_RANGE, 1);
	ops[1] = mkop(VGPU_OP_FILL, 1, UINT64_MAX - 3, 0, 0, 8, 0);
	expect_fail(ops, 2, VGPU_COMPUTE_E_RANGE, 1);
	ops[1] = mkop(VGPU_OP_COPY, 1, 0, 2, 16385, 0, 0);
	expect_fail(ops, 2, VGPU_COMPUTE_E_RANGE, 1);
	ops[1] = mkop(VGPU_OP_CHECKSUM, 1, 16380, 2, 0, 4, 0);   /* 8-byte result does not fit */
	expect_fail(ops, 2, VGPU_COMPUTE_E_RANGE, 1);
	ops[1] = mkop(VGPU_OP_COPY, 1, 0, 2, 0, (1ull << 32) + 4, 0);
	expect_fail(ops, 2, VGPU_COMPUTE_E_RANGE, 1);
	/* Writes into the read-only resource. */
	ops[1] = mkop(VGPU_OP_FILL, 3, 0, 0, 0, 4, 0);
	expect_fail(ops, 2, VGPU_COMPUTE_E_READONLY, 1);
	ops[1] = mkop(VGPU_OP_COPY, 3, 0, 1, 0, 4, 0);
	expect_fail(ops, 2, VGPU_COMPUTE_E_READONLY, 1);
	ops[1] = mkop(VGPU_OP_SUM_F32, 3, 0, 1, 0, 4, 0);
	expect_fail(ops, 2, VGPU_COMPUTE_E_READONLY, 1);
	/* Alignment. */
	ops[1] = mkop(VGPU_OP_FILL, 1, 0, 0, 0, 6, 0);
	expect_fail(ops, 2, VGPU_COMPUTE_E_ALIGN, 1);
	ops[1] = mkop(VGPU_OP_SAXPY, 1, 0, 2, 0, 5, 0);
	expect_fail(ops, 2, VGPU_COMPUTE_E_ALIGN, 1);
	ops[1] = mkop(VGPU_OP_SUM_F32, 1, 0, 2, 0, 2, 0);
	expect_fail(ops, 2, VGPU_COMPUTE_E_ALIGN, 1);
	/* Overlap. */
	ops[1] = mkop(VGPU_OP_COPY, 1, 50, 1, 0, 100, 0);
	expect_fail(ops, 2, VGPU_COMPUTE_E_OVERLAP, 1);
	ops[1] = mkop(VGPU_OP_SAXPY, 1, 4, 1, 0, 100, 0);
	expect_fail(ops, 2, VGPU_COMPUTE_E_OVERLAP, 1);
	/* The failing op first: op_index 0. */
	ops[0] = mkop(VGPU_OP_FILL, 3, 0, 0, 0, 4, 0);
	expect_fail(ops, 1, VGPU_COMPUTE_E_READONLY, 0);
}

static void test_fail_submit_header(void **state)
{
	struct vgpu_compute_op op = mkop(VGPU_OP_FILL, 2, 0, 0, 0, 4096, 0x22222222);
	struct vgpu_compute_submit s = { VGPU_COMPUTE_MAGIC, 2, 5, 0, 16 };
	struct virtio_gpu_ctrl_hdr r;
	uint8_t *b = sg_snapshot(&B), st0[4096];

	(void)state;
	/* num_ops says 2, one op follows. */
	assert_int_equal(cmd_submit_ex(&F, 1, 0, 0, 0, &s, &op, 1, &r), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(status_at(16).result, VGPU_COMPUTE_E_MALFORMED);
	s.num_ops = 0;
	assert_int_equal(cmd_submit_ex(&F, 1, 0, 0, 0, &s, &op, 0, &r), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(status_at(16).result, VGPU_COMPUTE_E_MALFORMED);
	s.num_ops = 1;
	s.reserved = 1;
	assert_int_equal(cmd_submit_ex(&F, 1, 0, 0, 0, &s, &op, 1, &r), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(status_at(16).result, VGPU_COMPUTE_E_MALFORMED);
	s.reserved = 0;
	s.num_ops = VGPU_COMPUTE_MAX_OPS + 1;
	assert_int_equal(cmd_submit_ex(&F, 1, 0, 0, 0, &s, &op, 1, &r), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(status_at(16).result, VGPU_COMPUTE_E_MALFORMED);
	s.num_ops = 1;
	sg_assert_same(&B, b);
	/* Without a valid header or status record, no status is written. */
	sg_io(&ST, 0, st0, sizeof(st0), 0);
	s.magic = 0x1234;
	assert_int_equal(cmd_submit_ex(&F, 1, 0, 0, 0, &s, &op, 1, &r), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	s.magic = VGPU_COMPUTE_MAGIC;
	s.status_off = 12;      /* not 8-byte aligned */
	assert_int_equal(cmd_submit_ex(&F, 1, 0, 0, 0, &s, &op, 1, &r), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	s.status_off = 4096 - 8;  /* record does not fit */
	assert_int_equal(cmd_submit_ex(&F, 1, 0, 0, 0, &s, &op, 1, &r), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	s.status_off = 0;
	s.status_res = 3;       /* read-only */
	assert_int_equal(cmd_submit_ex(&F, 1, 0, 0, 0, &s, &op, 1, &r), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	s.status_res = 4;       /* not attached */
	assert_int_equal(cmd_submit_ex(&F, 1, 0, 0, 0, &s, &op, 1, &r), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	sg_assert_same(&ST, st0);
	sg_assert_same(&B, b);
	/* Unknown context. */
	s.status_res = 5;
	assert_int_equal(cmd_submit_ex(&F, 9, 0, 0, 0, &s, &op, 1, &r), VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
	/* A SUBMIT_3D whose size runs past the buffer. */
	{
		struct virtio_gpu_cmd_submit c;

		memset(&c, 0, sizeof(c));
		hdr_init(&c.hdr, VIRTIO_GPU_CMD_SUBMIT_3D, 1);
		c.size = 1000;
		assert_int_equal(fe_cmd_simple(&F, &c, sizeof(c)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	}
	sg_assert_same(&B, b);
	assert_true(STAT_GET(submit_errors) >= 9);
	free(b);
}

static void test_fail_nobacking(void **state)
{
	struct vgpu_compute_op op = mkop(VGPU_OP_FILL, 1, 0, 0, 0, 4, 0);

	(void)state;
	/* A guest blob without backing. */
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 1), VIRTIO_GPU_RESP_OK_NODATA);
	expect_fail(&op, 1, VGPU_COMPUTE_E_NOBACKING, 0);
	/* Detached from the context: not usable either. */
	assert_int_equal(cmd_ctx_res(&F, VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, 1, 2), VIRTIO_GPU_RESP_OK_NODATA);
	op = mkop(VGPU_OP_FILL, 2, 0, 0, 0, 4, 0);
	expect_fail(&op, 1, VGPU_COMPUTE_E_RESOURCE, 0);
}

/*
 * Isolation: a context's command stream may name only the resources
 * attached to it (CTX_ATTACH_RESOURCE). A resource created and never
 * attached, one attached to another context only, and one detached again
 * (CTX_DETACH_RESOURCE) are refused as destination, as source and as the
 * status record, and nothing of theirs is read or written. (test_refs
 * shows that attachments are resolved in queue order.)
 */
static void expect_isolated(uint32_t ctx, const struct vgpu_compute_op *op, struct sg *victim)
{
	uint8_t *v = sg_snapshot(victim), *a = sg_snapshot(&A), *b = sg_snapshot(&B);
	struct vgpu_compute_status st;

	assert_int_equal(cmd_submit(&F, ctx, 5, 16, op, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	st = status_at(16);
	assert_int_equal(st.result, VGPU_COMPUTE_E_RESOURCE);
	assert_int_equal(st.ops_done, 0);
	sg_assert_same(victim, v);
	sg_assert_same(&A, a);
	sg_assert_same(&B, b);
	free(v);
	free(a);
	free(b);
}

static void test_isolation(void **state)
{
	static const uint32_t one = 4096;
	struct vgpu_compute_op op;
	struct sg G, O;
	uint8_t *na = sg_snapshot(&NA);

	(void)state;
	/* 6: a guest blob of no context, never attached; 7: attached to
	 * context 2 only. */
	sg_make(&G, &one, 1);
	sg_make(&O, &one, 1);
	memset(fe_ptr(&F, G.e[0].addr), 0x66, 4096);
	memset(fe_ptr(&F, O.e[0].addr), 0x77, 4096);
	assert_int_equal(cmd_blob(&F, 0, 6, VIRTIO_GPU_BLOB_MEM_GUEST, 0, G.size, G.e, G.n),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_ctx_create(&F, 2, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_blob(&F, 2, 7, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST, 0, O.size, O.e, O.n),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 2, 7), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 2, 5), VIRTIO_GPU_RESP_OK_NODATA);

	/* Created, not attached: 4 (of context 1) and 6. */
	op = mkop(VGPU_OP_FILL, 4, 0, 0, 0, 4096, 0x44444444);
	expect_isolated(1, &op, &NA);
	op = mkop(VGPU_OP_COPY, 2, 0, 4, 0, 4096, 0);
	expect_isolated(1, &op, &NA);
	op = mkop(VGPU_OP_FILL, 6, 0, 0, 0, 4096, 0x12121212);
	expect_isolated(1, &op, &G);
	op = mkop(VGPU_OP_COPY, 1, 0, 6, 0, 4096, 0);
	expect_isolated(1, &op, &G);
	/* Attached to context 2: refused to context 1, taken from 2. */
	op = mkop(VGPU_OP_FILL, 7, 0, 0, 0, 4096, 0x13131313);
	expect_isolated(1, &op, &O);
	op = mkop(VGPU_OP_COPY, 2, 0, 7, 0, 4096, 0);
	expect_isolated(1, &op, &O);
	op = mkop(VGPU_OP_FILL, 7, 0, 0, 0, 4096, 0x14141414);
	assert_int_equal(cmd_submit(&F, 2, 5, 16, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(status_at(16).result, VGPU_COMPUTE_OK);
	assert_int_equal(((uint8_t *)fe_ptr(&F, O.e[0].addr))[4095], 0x14);
	/* Context 2 does not see what only context 1 has. */
	op = mkop(VGPU_OP_FILL, 2, 0, 0, 0, 4096, 0x15151515);
	expect_isolated(2, &op, &B);
	/* Not attached, as status record: nothing written anywhere. */
	op = mkop(VGPU_OP_FILL, 2, 0, 0, 0, 4, 0x16161616);
	{
		uint8_t *b = sg_snapshot(&B);

		assert_int_equal(cmd_submit(&F, 1, 4, 0, &op, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		assert_int_equal(cmd_submit(&F, 1, 6, 0, &op, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		sg_assert_same(&B, b);
		free(b);
	}
	sg_assert_same(&NA, na);
	for (uint32_t i = 0; i < 4096; i++)
		assert_int_equal(((uint8_t *)fe_ptr(&F, G.e[0].addr))[i], 0x66);

	/* Detached from context 1: refused from then on, as either side;
	 * attached again: taken again. */
	assert_int_equal(cmd_ctx_res(&F, VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, 1, 2),
			 VIRTIO_GPU_RESP_OK_NODATA);
	op = mkop(VGPU_OP_FILL, 2, 0, 0, 0, 4096, 0x17171717);
	expect_isolated(1, &op, &B);
	op = mkop(VGPU_OP_COPY, 1, 0, 2, 0, 4096, 0);
	expect_isolated(1, &op, &B);
	assert_int_equal(cmd_attach(&F, 1, 2), VIRTIO_GPU_RESP_OK_NODATA);
	op = mkop(VGPU_OP_FILL, 2, 0, 0, 0, 4, 0x18181818);
	assert_int_equal(cmd_submit(&F, 1, 5, 16, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	{
		uint32_t w;

		sg_io(&B, 0, &w, 4, 0);
		assert_int_equal(w, 0x18181818);
	}
	free(na);
}

/*
 * A read-only blob stays read-only across DETACH_BACKING and
 * ATTACH_BACKING: the flag is the resource's, not its pages'. Its new
 * pages are read (a copy from it) and never written.
 */
static void test_rdonly_reattach(void **state)
{
	uint8_t buf[sizeof(struct virtio_gpu_resource_attach_backing) +
		    5 * sizeof(struct virtio_gpu_mem_entry)];
	struct virtio_gpu_resource_attach_backing *ab = (void *)buf;
	struct vgpu_compute_op op;
	struct sg R2;
	uint8_t *r2, *b;

	(void)state;
	sg_make(&R2, lens_b, 5);
	for (uint64_t i = 0; i < R2.size; i++) {
		uint8_t v = (uint8_t)(i * 5 + 9);

		sg_io(&R2, i, &v, 1, 1);
	}
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 3), VIRTIO_GPU_RESP_OK_NODATA);
	memset(buf, 0, sizeof(buf));
	hdr_init(&ab->hdr, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, 0);
	ab->resource_id = 3;
	ab->nr_entries = R2.n;
	memcpy(buf + sizeof(*ab), R2.e, R2.n * sizeof(R2.e[0]));
	assert_int_equal(fe_cmd_simple(&F, buf, sizeof(*ab) + R2.n * sizeof(R2.e[0])),
			 VIRTIO_GPU_RESP_OK_NODATA);
	r2 = sg_snapshot(&R2);
	b = sg_snapshot(&B);
	op = mkop(VGPU_OP_FILL, 3, 0, 0, 0, 4, 0);
	assert_int_equal(cmd_submit(&F, 1, 5, 16, &op, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(status_at(16).result, VGPU_COMPUTE_E_READONLY);
	op = mkop(VGPU_OP_COPY, 3, 0, 1, 0, 4096, 0);
	assert_int_equal(cmd_submit(&F, 1, 5, 16, &op, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(status_at(16).result, VGPU_COMPUTE_E_READONLY);
	sg_assert_same(&R2, r2);
	sg_assert_same(&B, b);
	/* Read: the copy gets the new pages' bytes. */
	op = mkop(VGPU_OP_COPY, 2, 0, 3, 0, R2.size, 0);
	assert_int_equal(cmd_submit(&F, 1, 5, 16, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	free(b);
	b = sg_snapshot(&B);
	assert_memory_equal(b, r2, R2.size);
	sg_assert_same(&R2, r2);
	free(b);
	free(r2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checksum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_saxpy_sum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_parallel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_results, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_submit_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_nobacking, setup, teardown),
		cmocka_unit_test_setup_teardown(test_isolation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rdonly_reattach, setup, teardown),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("compute", tests, NULL, NULL);
}
