/* SPDX-License-Identifier: MIT */
/*
 * test_rings.c - the device runs rings concurrently: submits fenced with
 * VIRTIO_GPU_FLAG_INFO_RING_IDX go to per-(context, ring) queues served by
 * worker threads; one ring keeps its order, a long op on one ring does not
 * hold up a short op on another ring or context, every other command waits
 * for the rings to drain. Through the vhost-user front-end and real rings.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "frontend.h"
#include "helpers.h"

static struct fe F;

#define BIG 1048576u
#define LONG_OPS 256u

enum { R_BIG = 1, R_SMALL = 2, R_STATUS = 3, R_BIG2 = 4, R_SMALL2 = 5 };

struct posted {
	uint16_t head;
	uint64_t resp;
};

static uint32_t cmd_flags(bool ring)
{
	return VIRTIO_GPU_FLAG_FENCE | (ring ? VIRTIO_GPU_FLAG_INFO_RING_IDX : 0);
}

/* Post (no kick) a fenced SUBMIT_3D of n ops with its status record at
 * status slot `slot`. */
static struct posted post_submit(uint32_t ctx, bool ring, uint8_t ring_idx, uint64_t fence,
				 const struct vgpu_compute_op *ops, uint32_t n, uint32_t slot)
{
	size_t len = sizeof(struct virtio_gpu_cmd_submit) + sizeof(struct vgpu_compute_submit) +
		     n * sizeof(*ops);
	uint8_t *buf = calloc(1, len);
	struct virtio_gpu_cmd_submit *c = (void *)buf;
	struct vgpu_compute_submit s = {
		VGPU_COMPUTE_MAGIC, n, ctx == 1 ? R_STATUS : 0, 0,
		(uint64_t)slot * sizeof(struct vgpu_compute_status) };
	struct posted p;

	assert_non_null(buf);
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_SUBMIT_3D, ctx);
	c->hdr.flags = cmd_flags(ring);
	c->hdr.fence_id = fence;
	c->hdr.ring_idx = ring_idx;
	c->size = (uint32_t)(sizeof(s) + n * sizeof(*ops));
	memcpy(buf + sizeof(*c), &s, sizeof(s));
	memcpy(buf + sizeof(*c) + sizeof(s), ops, n * sizeof(*ops));
	p.head = (uint16_t)(F.ring[0].next_desc % F.ring[0].num);
	p.resp = fe_post(&F, 0, buf, len, sizeof(struct virtio_gpu_ctrl_hdr), 2);
	free(buf);
	return p;
}

static struct posted post_long(uint32_t ctx, bool ring, uint8_t idx, uint64_t fence, uint32_t slot)
{
	static struct vgpu_compute_op ops[LONG_OPS];
	uint32_t big = ctx == 1 ? R_BIG : R_BIG2, small = ctx == 1 ? R_SMALL : R_SMALL2;

	for (unsigned i = 0; i < LONG_OPS; i++)
		ops[i] = mkop(VGPU_OP_CHECKSUM, small, 8, big, 0, BIG, i);
	return post_submit(ctx, ring, idx, fence, ops, LONG_OPS, slot);
}

static struct posted post_short(uint32_t ctx, bool ring, uint8_t idx, uint64_t fence,
				uint32_t slot, uint32_t value)
{
	struct vgpu_compute_op op = mkop(VGPU_OP_FILL, ctx == 1 ? R_SMALL : R_SMALL2,
					 16 + 4 * slot, 0, 0, 4, value);

	return post_submit(ctx, ring, idx, fence, &op, 1, slot);
}

static struct virtio_gpu_ctrl_hdr resp_of(const struct posted *p)
{
	struct virtio_gpu_ctrl_hdr h;

	memcpy(&h, fe_ptr(&F, p->resp), sizeof(h));
	return h;
}

/* The head of the k-th used element after base. */
static uint32_t used_id(uint16_t base, unsigned k)
{
	uint32_t id, len;

	fe_used_elem(&F, 0, (uint16_t)(base + k), &id, &len);
	return id;
}

/* Where head came in the used ring after base (0-based), or -1. */
static int used_pos(uint16_t base, uint16_t head)
{
	for (unsigned k = 0; k < 128; k++)
		if (used_id(base, k) == head)
			return (int)k;
	return -1;
}

static uint64_t small_gpa[2], status_gpa;

static int setup(void **state)
{
	(void)state;
	fe_start(&F, &(struct fe_opts){ .threads = 2, .ctrl_num = 256 });
	assert_int_equal(cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_ctx_create(&F, 2, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_not_equal(simple_blob(&F, 1, R_BIG, 0, 2, BIG), 0);
	small_gpa[0] = simple_blob(&F, 1, R_SMALL, 0, 2, 4096);
	status_gpa = simple_blob(&F, 1, R_STATUS, 0, 2, 4096);
	assert_int_not_equal(simple_blob(&F, 2, R_BIG2, 0, 2, 512 * 1024), 0);
	small_gpa[1] = simple_blob(&F, 2, R_SMALL2, 0, 2, 4096);
	assert_int_not_equal(small_gpa[0], 0);
	assert_int_not_equal(small_gpa[1], 0);
	assert_int_not_equal(status_gpa, 0);
	for (uint32_t r = R_BIG; r <= R_STATUS; r++)
		assert_int_equal(cmd_attach(&F, 1, r), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 2, R_BIG2), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 2, R_SMALL2), VIRTIO_GPU_RESP_OK_NODATA);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fe_stop(&F);
	return 0;
}

static uint32_t status_result(uint32_t slot)
{
	struct vgpu_compute_status s;

	memcpy(&s, (uint8_t *)fe_ptr(&F, status_gpa) + slot * sizeof(s), sizeof(s));
	return s.result;
}

static uint32_t small_word(int ctx, uint32_t slot)
{
	uint32_t v;

	memcpy(&v, (uint8_t *)fe_ptr(&F, small_gpa[ctx - 1]) + 16 + 4 * slot, 4);
	return v;
}

/* Eight long submits on ring 0 of context 1, then a short one on another
 * ring (or context): the short one is answered first, while the last long
 * one has not been answered yet. On the same ring it comes last. */
#define NLONG 8

static void long_then_short(uint32_t ctx2, uint8_t ring2, bool want_short_first)
{
	uint16_t base = F.ring[0].avail_idx;
	struct posted l[NLONG], s;
	struct virtio_gpu_ctrl_hdr hl, hs;

	memset(fe_ptr(&F, status_gpa), 0xcc, 4096);
	for (unsigned i = 0; i < NLONG; i++)
		l[i] = post_long(1, true, 0, 101 + i, i);
	s = post_short(ctx2, true, ring2, 200, 9, 0x5157);
	fe_kick(&F, 0);
	assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(base + 1), 60000), 0);
	if (want_short_first) {
		assert_int_equal(used_id(base, 0), s.head);
		/* The long ones are still running: the last one's answer is
		 * not written. */
		hl = resp_of(&l[NLONG - 1]);
		assert_int_equal(hl.type, 0xeeeeeeeeu);
	} else {
		assert_int_equal(used_id(base, 0), l[0].head);
	}
	assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(base + NLONG + 1), 60000), 0);
	if (!want_short_first)
		assert_int_equal(used_id(base, NLONG), s.head);
	hs = resp_of(&s);
	assert_int_equal(hs.type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(hs.fence_id, 200);
	assert_true(hs.flags & VIRTIO_GPU_FLAG_INFO_RING_IDX);
	assert_int_equal(hs.ring_idx, ring2);
	assert_int_equal(small_word((int)ctx2, 9), 0x5157);
	for (unsigned i = 0; i < NLONG; i++) {
		/* Ring 0 answers in fence order, each with its ring. */
		hl = resp_of(&l[i]);
		assert_int_equal(hl.type, VIRTIO_GPU_RESP_OK_NODATA);
		assert_int_equal(hl.fence_id, 101 + i);
		assert_true(hl.flags & VIRTIO_GPU_FLAG_INFO_RING_IDX);
		assert_int_equal(hl.ring_idx, 0);
		assert_int_equal(status_result(i), VGPU_COMPUTE_OK);
		if (i)
			assert_true(used_pos(base, l[i].head) > used_pos(base, l[i - 1].head));
	}
}

static void test_other_ring_not_delayed(void **state)
{
	(void)state;
	long_then_short(1, 1, true);
}

static void test_other_context_not_delayed(void **state)
{
	(void)state;
	long_then_short(2, 0, true);
}

static void test_same_ring_keeps_order(void **state)
{
	(void)state;
	long_then_short(1, 0, false);
}

/* A submit without a ring, like every command but a release of pages in
 * use, does not wait for the rings: it runs on the queue thread while the
 * ring work runs, and is answered first. */
static void test_no_ring_does_not_wait(void **state)
{
	uint16_t base = F.ring[0].avail_idx;
	struct posted l[NLONG], s;

	(void)state;
	memset(fe_ptr(&F, status_gpa), 0xcc, 4096);
	for (unsigned i = 0; i < NLONG; i++)
		l[i] = post_long(1, true, 3, 201 + i, i);
	s = post_short(1, false, 0, 220, 9, 0x6);
	fe_kick(&F, 0);
	assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(base + 1), 20000), 0);
	assert_int_equal(used_id(base, 0), s.head);
	assert_int_equal(resp_of(&l[NLONG - 1]).type, 0xeeeeeeeeu);
	assert_int_equal(resp_of(&s).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_false(resp_of(&s).flags & VIRTIO_GPU_FLAG_INFO_RING_IDX);
	assert_int_equal(small_word(1, 9), 0x6);
	assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(base + NLONG + 1), 60000), 0);
	for (unsigned i = 0; i < NLONG; i++) {
		assert_int_equal(used_id(base, 1 + i), l[i].head);
		assert_int_equal(resp_of(&l[i]).type, VIRTIO_GPU_RESP_OK_NODATA);
		assert_int_equal(status_result(i), VGPU_COMPUTE_OK);
	}
}

/* A resource released right behind a ring submit that uses it: the
 * release waits, the submit finds its resource. */
static void test_unref_waits_for_ring(void **state)
{
	uint16_t base = F.ring[0].avail_idx;
	struct virtio_gpu_resource_unref u;
	struct posted l, d;
	uint64_t tmp;

	(void)state;
	tmp = simple_blob(&F, 1, 9, 0, 2, 4096);
	assert_int_not_equal(tmp, 0);
	assert_int_equal(cmd_attach(&F, 1, 9), VIRTIO_GPU_RESP_OK_NODATA);
	base = F.ring[0].avail_idx;
	{
		static struct vgpu_compute_op ops[LONG_OPS];

		for (unsigned i = 0; i < LONG_OPS; i++)
			ops[i] = mkop(VGPU_OP_CHECKSUM, 9, 8 * (i % 64), R_BIG, 0, BIG, i);
		l = post_submit(1, true, 5, 301, ops, LONG_OPS, 2);
	}
	memset(&u, 0, sizeof(u));
	hdr_init(&u.hdr, VIRTIO_GPU_CMD_RESOURCE_UNREF, 0);
	u.resource_id = 9;
	d.head = (uint16_t)(F.ring[0].next_desc % F.ring[0].num);
	d.resp = fe_post(&F, 0, &u, sizeof(u), sizeof(struct virtio_gpu_ctrl_hdr), 1);
	fe_kick(&F, 0);
	assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(base + 2), 20000), 0);
	assert_int_equal(used_id(base, 0), l.head);
	assert_int_equal(resp_of(&l).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(status_result(2), VGPU_COMPUTE_OK);
	assert_int_equal(resp_of(&d).type, VIRTIO_GPU_RESP_OK_NODATA);
}

/* Many short submits over four rings: each ring answers in fence order. */
static void test_many_rings_in_order(void **state)
{
	enum { N = 48 };
	uint16_t base = F.ring[0].avail_idx;
	struct posted p[N];
	uint64_t last_fence[4] = { 0 };

	(void)state;
	for (unsigned i = 0; i < N; i++)
		p[i] = post_short(1, true, (uint8_t)(i % 4), 1000 + i, 10 + i, 0x100 + i);
	fe_kick(&F, 0);
	assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(base + N), 20000), 0);
	for (unsigned k = 0; k < N; k++) {
		uint32_t id = used_id(base, k);
		unsigned i;

		for (i = 0; i < N && p[i].head != id; i++)
			;
		assert_true(i < N);
		assert_true(1000 + i > last_fence[i % 4]);
		last_fence[i % 4] = 1000 + i;
		assert_int_equal(resp_of(&p[i]).fence_id, 1000 + i);
		assert_int_equal(resp_of(&p[i]).ring_idx, i % 4);
	}
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(small_word(1, 10 + i), 0x100 + i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_other_ring_not_delayed),
		cmocka_unit_test(test_other_context_not_delayed),
		cmocka_unit_test(test_same_ring_keeps_order),
		cmocka_unit_test(test_no_ring_does_not_wait),
		cmocka_unit_test(test_unref_waits_for_ring),
		cmocka_unit_test(test_many_rings_in_order),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
