/* SPDX-License-Identifier: MIT */
/*
 * test_refs.c - control commands while the rings run. A ring submit is
 * resolved when the queue thread pops it and holds references on the
 * pages it uses; every other command runs at once, except a release of
 * pages a queued or running job still uses, which waits for that job.
 * Through the vhost-user front-end and real rings; the long jobs are
 * SGEMMs sized at start to run for a good part of a second on this build
 * (plain, ASan or ThreadSanitizer).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "frontend.h"
#include "helpers.h"
#include "stats.h"

static struct fe F;

#define DIM 256u                        /* SGEMM: 256 x 256 x 256 */
#define MAT (DIM * DIM * 4u)            /* bytes of one matrix */
#define LONG_MS 400.0                   /* what a long job should take */

enum {
	R_STATUS = 1,   /* 256 status slots, attached to every context */
	R_GSRC = 2,     /* A and B of the long SGEMMs, all 1.0f */
	R_GDST = 3,     /* C of the long SGEMMs */
	R_SMALL = 4,    /* 4 KiB: the short ops' target */
	R_SMALL2 = 5,   /* 4 KiB, in context 2 */
};

static uint64_t gpa_status, gpa_gsrc, gpa_gdst, gpa_small, gpa_small2, gpa_victim, gpa_churn;
static uint32_t long_ops;               /* SGEMMs in one long job */

struct posted {
	uint16_t head;
	uint64_t resp;
};

/* ---- posting without waiting ---- */

static struct posted post(const void *req, size_t len, unsigned split)
{
	struct posted p;

	p.head = (uint16_t)(F.ring[0].next_desc % F.ring[0].num);
	p.resp = fe_post(&F, 0, req, len, sizeof(struct virtio_gpu_ctrl_hdr), split);
	return p;
}

/* A fenced SUBMIT_3D of n ops, its status record at slot `slot` of
 * R_STATUS; on ring `ring` unless ring < 0. */
static struct posted post_submit(uint32_t ctx, int ring, uint64_t fence,
				 const struct vgpu_compute_op *ops, uint32_t n, uint32_t slot)
{
	size_t len = sizeof(struct virtio_gpu_cmd_submit) + sizeof(struct vgpu_compute_submit) +
		     n * sizeof(*ops);
	uint8_t *buf = calloc(1, len);
	struct virtio_gpu_cmd_submit *c = (void *)buf;
	struct vgpu_compute_submit s = {
		VGPU_COMPUTE_MAGIC, n, R_STATUS, 0,
		(uint64_t)slot * sizeof(struct vgpu_compute_status) };
	struct posted p;

	assert_non_null(buf);
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_SUBMIT_3D, ctx);
	c->hdr.flags = VIRTIO_GPU_FLAG_FENCE | (ring >= 0 ? VIRTIO_GPU_FLAG_INFO_RING_IDX : 0);
	c->hdr.fence_id = fence;
	c->hdr.ring_idx = ring >= 0 ? (uint8_t)ring : 0;
	c->size = (uint32_t)(sizeof(s) + n * sizeof(*ops));
	memcpy(buf + sizeof(*c), &s, sizeof(s));
	memcpy(buf + sizeof(*c) + sizeof(s), ops, n * sizeof(*ops));
	p = post(buf, len, 2);
	free(buf);
	return p;
}

static struct vgpu_compute_op sgemm_op(uint32_t dst)
{
	struct vgpu_compute_op o = mkop(VGPU_OP_SGEMM, dst, 0, R_GSRC, 0, MAT,
					DIM | (uint64_t)DIM << 32);

	o.arg1 = DIM;
	return o;
}

/* A long job: n SGEMMs into dst (C = 256.0f everywhere), then, when
 * fill_res is not 0, a FILL of its first 4 KiB with fill. */
static struct posted post_long(uint32_t ctx, int ring, uint64_t fence, uint32_t dst,
			       uint32_t n, uint32_t fill_res, uint32_t fill, uint32_t slot)
{
	struct vgpu_compute_op *ops = calloc(n + 1, sizeof(*ops));
	struct posted p;

	assert_non_null(ops);
	for (uint32_t i = 0; i < n; i++)
		ops[i] = sgemm_op(dst);
	if (fill_res)
		ops[n++] = mkop(VGPU_OP_FILL, fill_res, 0, 0, 0, 4096, fill);
	p = post_submit(ctx, ring, fence, ops, n, slot);
	free(ops);
	return p;
}

static struct posted post_fill(uint32_t ctx, int ring, uint64_t fence, uint32_t res,
			       uint64_t off, uint64_t len, uint32_t v, uint32_t slot)
{
	struct vgpu_compute_op op = mkop(VGPU_OP_FILL, res, off, 0, 0, len, v);

	return post_submit(ctx, ring, fence, &op, 1, slot);
}

static struct posted post_res_cmd(uint32_t type, uint32_t ctx, uint32_t res)
{
	struct virtio_gpu_ctx_resource c;   /* the unref/detach layout plus padding */

	memset(&c, 0, sizeof(c));
	hdr_init(&c.hdr, type, ctx);
	c.resource_id = res;
	return post(&c, sizeof(c), 1);
}

static struct posted post_blob(uint32_t ctx, uint32_t id, uint64_t gpa, uint32_t size)
{
	uint8_t buf[sizeof(struct virtio_gpu_resource_create_blob) +
		    sizeof(struct virtio_gpu_mem_entry)];
	struct virtio_gpu_resource_create_blob *c = (void *)buf;
	struct virtio_gpu_mem_entry e = { gpa, size, 0 };

	memset(buf, 0, sizeof(buf));
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, ctx);
	c->resource_id = id;
	c->blob_mem = ctx ? VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST : VIRTIO_GPU_BLOB_MEM_GUEST;
	c->nr_entries = 1;
	c->size = size;
	memcpy(buf + sizeof(*c), &e, sizeof(e));
	return post(buf, sizeof(buf), 1);
}

/* ATTACH_BACKING of id over two halves of [gpa, +size), swapped. */
static struct posted post_attach_swapped(uint32_t id, uint64_t gpa, uint32_t size)
{
	uint8_t buf[sizeof(struct virtio_gpu_resource_attach_backing) +
		    2 * sizeof(struct virtio_gpu_mem_entry)];
	struct virtio_gpu_resource_attach_backing *a = (void *)buf;
	struct virtio_gpu_mem_entry e[2] = { { gpa + size / 2, size / 2, 0 }, { gpa, size / 2, 0 } };

	memset(buf, 0, sizeof(buf));
	hdr_init(&a->hdr, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, 0);
	a->resource_id = id;
	a->nr_entries = 2;
	memcpy(buf + sizeof(*a), e, sizeof(e));
	return post(buf, sizeof(buf), 1);
}

/* A guest blob over [gpa, +size), created and answered. */
static uint32_t blob_at(uint32_t ctx, uint32_t id, uint64_t gpa, uint32_t size)
{
	struct virtio_gpu_mem_entry e = { gpa, size, 0 };

	return cmd_blob(&F, ctx, id, ctx ? VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST
				       : VIRTIO_GPU_BLOB_MEM_GUEST, 0, size, &e, 1);
}

/* ---- what came back ---- */

static struct virtio_gpu_ctrl_hdr resp_of(const struct posted *p)
{
	struct virtio_gpu_ctrl_hdr h;

	memcpy(&h, fe_ptr(&F, p->resp), sizeof(h));
	return h;
}

static bool answered(const struct posted *p)
{
	return resp_of(p).type != 0xeeeeeeeeu;
}

/* Wait until at least k chains after base are used. */
static void wait_used(uint16_t base, unsigned k, int ms)
{
	for (int i = 0; i < ms; i++) {
		uint16_t u = __atomic_load_n(&F.ring[0].used->idx, __ATOMIC_ACQUIRE);

		if ((uint16_t)(u - base) >= k)
			return;
		usleep(1000);
	}
	fail_msg("%u answers after %d ms: fewer", k, ms);
}

static unsigned used_count(uint16_t base)
{
	return (uint16_t)(__atomic_load_n(&F.ring[0].used->idx, __ATOMIC_ACQUIRE) - base);
}

/* Where head came in the used ring after base (0-based), or -1. */
static int used_pos(uint16_t base, uint16_t head)
{
	unsigned n = used_count(base);

	for (unsigned k = 0; k < n; k++) {
		uint32_t id, len;

		fe_used_elem(&F, 0, (uint16_t)(base + k), &id, &len);
		if (id == head)
			return (int)k;
	}
	return -1;
}

static struct vgpu_compute_status status(uint32_t slot)
{
	struct vgpu_compute_status s;

	memcpy(&s, (uint8_t *)fe_ptr(&F, gpa_status) + slot * sizeof(s), sizeof(s));
	return s;
}

static void assert_status(uint32_t slot, uint32_t result, uint32_t op_index, uint64_t done)
{
	struct vgpu_compute_status s = status(slot);

	assert_int_equal(s.result, result);
	assert_int_equal(s.op_index, op_index);
	assert_int_equal(s.ops_done, done);
}

static void clear_status(void)
{
	memset(fe_ptr(&F, gpa_status), 0xcc, 4096);
}

static bool all_u32(uint64_t gpa, uint64_t len, uint32_t v)
{
	const uint8_t *p = fe_ptr(&F, gpa);

	for (uint64_t i = 0; i < len; i += 4) {
		uint32_t w;

		memcpy(&w, p + i, 4);
		if (w != v)
			return false;
	}
	return true;
}

static bool all_f32(uint64_t gpa, uint64_t len, float v)
{
	uint32_t u;

	memcpy(&u, &v, 4);
	return all_u32(gpa, len, u);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- set-up ---- */

static int setup(void **state)
{
	struct vgpu_compute_op ops[4];
	float one = 1.0f;
	double t;

	(void)state;
	fe_start(&F, &(struct fe_opts){ .threads = 2, .ctrl_num = 256 });
	assert_int_equal(cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_ctx_create(&F, 2, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	gpa_status = simple_blob(&F, 1, R_STATUS, 0, 1, 4096);
	gpa_gsrc = simple_blob(&F, 1, R_GSRC, 0, 2, 2 * MAT);
	gpa_gdst = simple_blob(&F, 1, R_GDST, 0, 2, MAT);
	gpa_small = simple_blob(&F, 1, R_SMALL, 0, 1, 4096);
	gpa_small2 = simple_blob(&F, 2, R_SMALL2, 0, 1, 4096);
	assert_true(gpa_status && gpa_gsrc && gpa_gdst && gpa_small && gpa_small2);
	/* Pages the tests make resources over, again and again. */
	gpa_victim = fe_alloc(&F, 2, MAT, 0);
	gpa_churn = fe_alloc(&F, 1, 65536, 0);
	for (uint32_t r = R_STATUS; r <= R_SMALL; r++)
		assert_int_equal(cmd_attach(&F, 1, r), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 2, R_STATUS), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 2, R_SMALL2), VIRTIO_GPU_RESP_OK_NODATA);
	for (uint32_t i = 0; i < 2 * MAT; i += 4)
		memcpy((uint8_t *)fe_ptr(&F, gpa_gsrc) + i, &one, 4);

	/* How many SGEMMs make a long job on this build. */
	for (int i = 0; i < 4; i++)
		ops[i] = sgemm_op(R_GDST);
	t = now_ms();
	assert_int_equal(cmd_submit(&F, 1, R_STATUS, 0, ops, 4), VIRTIO_GPU_RESP_OK_NODATA);
	t = (now_ms() - t) / 4;
	long_ops = (uint32_t)(LONG_MS / (t > 0.01 ? t : 0.01)) + 1;
	if (long_ops < 4)
		long_ops = 4;
	if (long_ops > VGPU_COMPUTE_MAX_OPS - 1)
		long_ops = VGPU_COMPUTE_MAX_OPS - 1;
	print_message("# one SGEMM: %.2f ms; a long job: %u of them\n", t, long_ops);
	assert_true(all_f32(gpa_gdst, MAT, (float)DIM));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fe_stop(&F);
	return 0;
}

/* ---- the tests ---- */

/* Registration while a ring is busy: CREATE_BLOB, CTX_ATTACH, UNREF of a
 * resource the job does not use, GET_CAPSET and a context's life are all
 * answered while the long job runs, before its fence. */
static void test_control_while_ring_busy(void **state)
{
	uint16_t base;
	struct posted l, c[7];
	uint8_t capset[sizeof(struct virtio_gpu_get_capset)];
	struct virtio_gpu_get_capset *gc = (void *)capset;
	struct virtio_gpu_ctx_create cc;
	struct virtio_gpu_ctx_destroy cd;
	struct vgpu_compute_op op;

	(void)state;
	clear_status();
	memset(fe_ptr(&F, gpa_gdst), 0, MAT);
	assert_int_equal(blob_at(0, 61, gpa_small, 4096), VIRTIO_GPU_RESP_OK_NODATA);
	base = F.ring[0].avail_idx;
	l = post_long(1, 1, 500, R_GDST, long_ops, 0, 0, 0);
	fe_kick(&F, 0);
	/* The job is queued (popped) before the commands below exist. */
	usleep(20000);
	c[0] = post_blob(1, 60, gpa_small, 4096);
	c[1] = post_res_cmd(VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE, 1, 60);
	c[2] = post_res_cmd(VIRTIO_GPU_CMD_RESOURCE_UNREF, 0, 61);
	memset(capset, 0, sizeof(capset));
	hdr_init(&gc->hdr, VIRTIO_GPU_CMD_GET_CAPSET, 0);
	gc->capset_id = VGPU_COMPUTE_CAPSET_ID;
	gc->capset_version = 1;
	c[3] = post(capset, sizeof(capset), 1);
	memset(&cc, 0, sizeof(cc));
	hdr_init(&cc.hdr, VIRTIO_GPU_CMD_CTX_CREATE, 7);
	c[4] = post(&cc, sizeof(cc), 1);
	hdr_init(&cd.hdr, VIRTIO_GPU_CMD_CTX_DESTROY, 7);
	c[5] = post(&cd, sizeof(cd), 1);
	/* And a submit on the new resource, without a ring. */
	op = mkop(VGPU_OP_FILL, 60, 0, 0, 0, 64, 0x6060);
	c[6] = post_submit(1, -1, 501, &op, 1, 1);
	fe_kick(&F, 0);
	wait_used(base, 7, 60000);
	/* Seven answers, and the long job's is not among them. */
	assert_false(answered(&l));
	for (int i = 0; i < 7; i++)
		assert_true(used_pos(base, c[i].head) >= 0);
	assert_int_equal(resp_of(&c[0]).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(resp_of(&c[1]).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(resp_of(&c[2]).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(resp_of(&c[4]).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(resp_of(&c[5]).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(resp_of(&c[6]).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_status(1, VGPU_COMPUTE_OK, 1, 1);
	assert_true(all_u32(gpa_small, 64, 0x6060));
	wait_used(base, 8, 60000);
	assert_int_equal(used_pos(base, l.head), 7);
	assert_int_equal(resp_of(&l).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(resp_of(&l).fence_id, 500);
	assert_status(0, VGPU_COMPUTE_OK, long_ops, long_ops);
	assert_true(all_f32(gpa_gdst, MAT, (float)DIM));
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 60), VIRTIO_GPU_RESP_OK_NODATA);
}

/* UNREF of a resource that a running job writes is answered after the
 * job's fence, with every write of the job in the pages; the same for a
 * job queued behind a long one on its ring. Commands behind the UNREF
 * keep the control queue's order. */
static void test_unref_waits_for_its_jobs(void **state)
{
	uint64_t bk0 = STAT_GET(backings);
	struct posted l, u, c, l2, s, u2;
	uint16_t base;

	(void)state;
	clear_status();
	memset(fe_ptr(&F, gpa_victim), 0, MAT);
	assert_int_equal(blob_at(1, 70, gpa_victim, MAT), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, 70), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(backings), bk0 + 1);
	base = F.ring[0].avail_idx;
	/* Running: C into 70, then its first page filled. */
	l = post_long(1, 1, 600, 70, long_ops, 70, 0x7070, 0);
	u = post_res_cmd(VIRTIO_GPU_CMD_RESOURCE_UNREF, 0, 70);
	c = post_blob(0, 71, gpa_small, 4096);
	fe_kick(&F, 0);
	wait_used(base, 3, 60000);
	assert_int_equal(used_pos(base, l.head), 0);
	assert_int_equal(used_pos(base, u.head), 1);
	assert_int_equal(used_pos(base, c.head), 2);
	assert_int_equal(resp_of(&l).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(resp_of(&u).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(resp_of(&c).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_status(0, VGPU_COMPUTE_OK, long_ops + 1, long_ops + 1);
	assert_true(all_u32(gpa_victim, 4096, 0x7070));
	assert_true(all_f32(gpa_victim + 4096, MAT - 4096, (float)DIM));
	/* 70's backing went with the UNREF; 71 has one. */
	assert_int_equal(STAT_GET(backings), bk0 + 1);

	/* Queued: behind a long job on ring 2, a FILL of 72; then UNREF 72. */
	assert_int_equal(blob_at(1, 72, gpa_victim, 65536), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, 72), VIRTIO_GPU_RESP_OK_NODATA);
	base = F.ring[0].avail_idx;
	l2 = post_long(1, 2, 610, R_GDST, long_ops, 0, 0, 1);
	s = post_fill(1, 2, 611, 72, 0, 65536, 0x7272, 2);
	u2 = post_res_cmd(VIRTIO_GPU_CMD_RESOURCE_UNREF, 0, 72);
	fe_kick(&F, 0);
	wait_used(base, 3, 60000);
	assert_int_equal(used_pos(base, l2.head), 0);
	assert_int_equal(used_pos(base, s.head), 1);
	assert_int_equal(used_pos(base, u2.head), 2);
	assert_int_equal(resp_of(&u2).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_status(1, VGPU_COMPUTE_OK, long_ops, long_ops);
	assert_status(2, VGPU_COMPUTE_OK, 1, 1);
	assert_true(all_u32(gpa_victim, 65536, 0x7272));
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 71), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(backings), bk0);
}

/*
 * A submit queued before a command that takes a resource from it runs on
 * the resource; one queued after fails, in its status record. Both wait
 * on ring 2 behind a long job, so neither has run when the command comes.
 * waits: the command must wait for the first submit (it drops pages).
 */
static void before_after(uint32_t type, uint32_t id, uint32_t after, bool waits)
{
	struct posted l, a, x, b;
	uint16_t base;
	uint64_t fence = 700 + 10 * (uint64_t)id;

	clear_status();
	memset(fe_ptr(&F, gpa_churn), 0, 4096);
	assert_int_equal(blob_at(1, id, gpa_churn, 65536), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, id), VIRTIO_GPU_RESP_OK_NODATA);
	base = F.ring[0].avail_idx;
	l = post_long(1, 2, fence, R_GDST, long_ops, 0, 0, 0);
	a = post_fill(1, 2, fence + 1, id, 0, 4096, 0xaaaa, 1);
	x = post_res_cmd(type, type == VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE ? 1 : 0, id);
	b = post_fill(1, 2, fence + 2, id, 0, 4096, 0xbbbb, 2);
	fe_kick(&F, 0);
	if (!waits) {
		/* Answered at once: first, while the long job runs. */
		wait_used(base, 1, 60000);
		assert_int_equal(used_pos(base, x.head), 0);
		assert_false(answered(&l));
	}
	wait_used(base, 4, 60000);
	assert_true(used_pos(base, l.head) < used_pos(base, a.head));
	assert_true(used_pos(base, a.head) < used_pos(base, b.head));
	if (waits)
		assert_true(used_pos(base, a.head) < used_pos(base, x.head));
	assert_int_equal(resp_of(&x).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(resp_of(&a).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(resp_of(&b).type, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(resp_of(&b).fence_id, fence + 2);
	assert_status(1, VGPU_COMPUTE_OK, 1, 1);
	assert_status(2, after, 0, 0);
	assert_true(all_u32(gpa_churn, 4096, 0xaaaa));
	if (type != VIRTIO_GPU_CMD_RESOURCE_UNREF)
		assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, id),
				 VIRTIO_GPU_RESP_OK_NODATA);
}

static void test_queued_before_and_after(void **state)
{
	uint16_t base;
	struct posted l, a, x, b;

	(void)state;
	before_after(VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, 80, VGPU_COMPUTE_E_RESOURCE, false);
	before_after(VIRTIO_GPU_CMD_RESOURCE_UNREF, 81, VGPU_COMPUTE_E_RESOURCE, true);
	before_after(VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 82, VGPU_COMPUTE_E_NOBACKING, true);

	/* CTX_DESTROY: the submits queued before it run; one after it finds
	 * no context (and so writes no status record). */
	clear_status();
	assert_int_equal(cmd_ctx_create(&F, 9, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(blob_at(9, 83, gpa_churn, 65536), VIRTIO_GPU_RESP_OK_NODATA);
	for (uint32_t r = R_STATUS; r <= R_GDST; r++)
		assert_int_equal(cmd_attach(&F, 9, r), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 9, 83), VIRTIO_GPU_RESP_OK_NODATA);
	base = F.ring[0].avail_idx;
	l = post_long(9, 0, 800, R_GDST, long_ops, 0, 0, 0);
	a = post_fill(9, 0, 801, 83, 0, 4096, 0x9999, 1);
	{
		struct virtio_gpu_ctx_destroy cd;

		hdr_init(&cd.hdr, VIRTIO_GPU_CMD_CTX_DESTROY, 9);
		x = post(&cd, sizeof(cd), 1);
	}
	b = post_fill(9, 0, 802, 83, 0, 4096, 0x8888, 2);
	fe_kick(&F, 0);
	wait_used(base, 1, 60000);
	assert_int_equal(used_pos(base, x.head), 0);
	assert_false(answered(&l));
	wait_used(base, 4, 60000);
	assert_true(used_pos(base, l.head) < used_pos(base, a.head));
	assert_true(used_pos(base, a.head) < used_pos(base, b.head));
	assert_int_equal(resp_of(&x).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(resp_of(&a).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(resp_of(&b).type, VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
	assert_status(0, VGPU_COMPUTE_OK, long_ops, long_ops);
	assert_status(1, VGPU_COMPUTE_OK, 1, 1);
	assert_int_equal(status(2).result, 0xccccccccu);
	assert_true(all_u32(gpa_churn, 4096, 0x9999));
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 83), VIRTIO_GPU_RESP_OK_NODATA);
}

/*
 * The same holds for every blob with guest pages, a read-only one (what a
 * read-only userptr range is on the wire) included: its DETACH_BACKING
 * waits for the job queued before it that reads the pages, that job reads
 * the old backing, and a submit queued after it finds none. ATTACH_BACKING
 * then gives the resource new entries (the halves swapped), still
 * read-only: a write into it is refused, a read gets the new order.
 */
static void test_detach_rdonly_waits(void **state)
{
	struct virtio_gpu_mem_entry e = { gpa_churn, 65536, 0 };
	struct vgpu_compute_op op;
	struct posted l, a, x, b, y, c, d;
	uint16_t base;
	uint8_t *p = fe_ptr(&F, gpa_churn);

	(void)state;
	clear_status();
	memset(fe_ptr(&F, gpa_small), 0, 4096);
	for (uint32_t i = 0; i < 32768; i += 4) {
		uint32_t lo = 0x5151, hi = 0x5252;

		memcpy(p + i, &lo, 4);
		memcpy(p + 32768 + i, &hi, 4);
	}
	assert_int_equal(cmd_blob(&F, 1, 85, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST,
				  VIRTIO_GPU_BLOB_FLAG_RDONLY, 65536, &e, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, 85), VIRTIO_GPU_RESP_OK_NODATA);
	base = F.ring[0].avail_idx;
	l = post_long(1, 2, 760, R_GDST, long_ops, 0, 0, 0);
	op = mkop(VGPU_OP_COPY, R_SMALL, 0, 85, 0, 2048, 0);
	a = post_submit(1, 2, 761, &op, 1, 1);
	x = post_res_cmd(VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 0, 85);
	b = post_submit(1, 2, 762, &op, 1, 2);
	y = post_attach_swapped(85, gpa_churn, 65536);
	c = post_fill(1, 2, 763, 85, 0, 4096, 0xdeadbeef, 3);
	op = mkop(VGPU_OP_COPY, R_SMALL, 2048, 85, 0, 2048, 0);
	d = post_submit(1, 2, 764, &op, 1, 4);
	fe_kick(&F, 0);
	wait_used(base, 7, 60000);
	assert_true(used_pos(base, l.head) < used_pos(base, a.head));
	assert_true(used_pos(base, a.head) < used_pos(base, x.head));
	assert_true(used_pos(base, x.head) < used_pos(base, y.head));
	assert_int_equal(resp_of(&a).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(resp_of(&x).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(resp_of(&b).type, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(resp_of(&y).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(resp_of(&c).type, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(resp_of(&d).type, VIRTIO_GPU_RESP_OK_NODATA);
	assert_status(1, VGPU_COMPUTE_OK, 1, 1);
	assert_status(2, VGPU_COMPUTE_E_NOBACKING, 0, 0);
	assert_status(3, VGPU_COMPUTE_E_READONLY, 0, 0);
	assert_status(4, VGPU_COMPUTE_OK, 1, 1);
	/* The old backing's first bytes, then the new one's. */
	assert_true(all_u32(gpa_small, 2048, 0x5151));
	assert_true(all_u32(gpa_small + 2048, 2048, 0x5252));
	/* Not one byte of the read-only pages changed. */
	assert_true(all_u32(gpa_churn, 32768, 0x5151));
	assert_true(all_u32(gpa_churn + 32768, 32768, 0x5252));
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 85), VIRTIO_GPU_RESP_OK_NODATA);
}

/*
 * Ring order with submits that fail validation: over four rings, a long
 * job first on ring 0, then submits that succeed or fail (unknown
 * resource, a range past the end at op 2, an unknown opcode). Each ring
 * answers in fence order; a failure is answered in its place, after what
 * its ring held before it, and writes exactly today's status record and
 * nothing else.
 */
static void test_ring_order_with_failures(void **state)
{
	enum { N = 40 };
	struct posted l, p[N];
	uint16_t base;
	int last[4] = { -1, -1, -1, -1 };

	(void)state;
	clear_status();
	memset(fe_ptr(&F, gpa_small), 0, 4096);
	base = F.ring[0].avail_idx;
	l = post_long(1, 0, 900, R_GDST, long_ops, 0, 0, 100);
	for (uint32_t i = 0; i < N; i++) {
		struct vgpu_compute_op ops[3];
		int ring = (int)(i % 4);
		uint64_t fence = 901 + i;

		switch ((i / 4) % 4) {
		case 0:
			p[i] = post_fill(1, ring, fence, R_SMALL, 16 * i, 4, 0x100 + i, i);
			break;
		case 1:
			p[i] = post_fill(1, ring, fence, 999, 0, 4, 1, i);
			break;
		case 2:
			ops[0] = mkop(VGPU_OP_FILL, R_SMALL, 16 * i, 0, 0, 4, 0x100 + i);
			ops[1] = mkop(VGPU_OP_FILL, R_SMALL, 16 * i + 4, 0, 0, 4, 0x100 + i);
			ops[2] = mkop(VGPU_OP_FILL, R_SMALL, 4096, 0, 0, 4, 0x100 + i);
			p[i] = post_submit(1, ring, fence, ops, 3, i);
			break;
		default:
			ops[0] = mkop(VGPU_OP_FILL, R_SMALL, 16 * i, 0, 0, 4, 0x100 + i);
			ops[1] = mkop(99, R_SMALL, 0, 0, 0, 4, 0);
			p[i] = post_submit(1, ring, fence, ops, 2, i);
			break;
		}
	}
	fe_kick(&F, 0);
	wait_used(base, N + 1, 60000);
	for (uint32_t i = 0; i < N; i++) {
		int ring = (int)(i % 4), pos = used_pos(base, p[i].head);
		struct virtio_gpu_ctrl_hdr h = resp_of(&p[i]);
		uint32_t w;

		assert_true(pos > last[ring]);
		last[ring] = pos;
		if (ring == 0)
			assert_true(pos > used_pos(base, l.head));
		assert_int_equal(h.fence_id, 901 + i);
		assert_int_equal(h.ring_idx, ring);
		memcpy(&w, (uint8_t *)fe_ptr(&F, gpa_small) + 16 * i, 4);
		switch ((i / 4) % 4) {
		case 0:
			assert_int_equal(h.type, VIRTIO_GPU_RESP_OK_NODATA);
			assert_status(i, VGPU_COMPUTE_OK, 1, 1);
			assert_int_equal(w, 0x100 + i);
			break;
		case 1:
			assert_int_equal(h.type, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
			assert_status(i, VGPU_COMPUTE_E_RESOURCE, 0, 0);
			break;
		case 2:
			assert_int_equal(h.type, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
			assert_status(i, VGPU_COMPUTE_E_RANGE, 2, 0);
			assert_int_equal(w, 0);
			break;
		default:
			assert_int_equal(h.type, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
			assert_status(i, VGPU_COMPUTE_E_OPCODE, 1, 0);
			assert_int_equal(w, 0);
			break;
		}
	}
	assert_status(100, VGPU_COMPUTE_OK, long_ops, long_ops);
}

/*
 * Churn, for ThreadSanitizer: four rings (three of context 1, one of
 * context 2) copy and fill their own pages while the control queue
 * creates, attaches, detaches, re-attaches and releases a resource that a
 * fifth ring writes between those steps; now and then the front-end sends
 * a new memory table while all that is in flight, which aborts the ring
 * work then running or queued (E_DEVICE; docs/host.md, "Bounded work").
 * Every result is checked (one aborted only in such a round, and answered
 * as aborted), and at the end no backing is left over.
 */
#define CHURN_ROUNDS 24

/* In a round with a new memory table in flight (may), whether the ring
 * submit p with its status in slot was aborted; it is then answered so. */
static bool was_aborted(bool may, const struct posted *p, uint32_t slot)
{
	struct vgpu_compute_status s = status(slot);

	if (!may || s.result != VGPU_COMPUTE_E_DEVICE)
		return false;
	assert_int_equal(resp_of(p).type, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	return true;
}

static void test_churn(void **state)
{
	uint64_t bk0 = STAT_GET(backings), res0 = STAT_GET(resources);
	const uint32_t id = 90;

	(void)state;
	for (uint32_t round = 0; round < CHURN_ROUNDS; round++) {
		struct posted w[4][3], c[6], k[4];
		uint32_t v = 0x10000 * (round + 1);
		uint16_t base = F.ring[0].avail_idx;
		bool mt = round % 6 == 5, ab[3], kab[4];
		unsigned n = 0;

		clear_status();
		memset(fe_ptr(&F, gpa_churn), 0, 65536);
		for (int r = 0; r < 4; r++) {
			uint32_t ctx = r < 3 ? 1 : 2, res = r < 3 ? R_SMALL : R_SMALL2;
			uint64_t off = r < 3 ? 1024 * (uint64_t)r : 0;
			struct vgpu_compute_op ops[2];

			/* Fill a quarter KiB, copy it to the next one. */
			ops[0] = mkop(VGPU_OP_FILL, res, off, 0, 0, 256, v + (uint32_t)r);
			ops[1] = mkop(VGPU_OP_COPY, res, off + 256, res, off, 256, 0);
			w[r][0] = post_submit(ctx, r < 3 ? r : 0, 1, ops, 2, 10 + 3 * r);
			if (r == 0)
				c[0] = post_blob(1, id, gpa_churn, 65536);
			w[r][1] = post_fill(ctx, r < 3 ? r : 0, 2, res, off + 512, 256,
					    v + 0x100 + (uint32_t)r, 11 + 3 * r);
			if (r == 1)
				c[1] = post_res_cmd(VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE, 1, id);
			ops[0] = mkop(VGPU_OP_COPY, res, off + 768, res, off + 512, 256, 0);
			w[r][2] = post_submit(ctx, r < 3 ? r : 0, 3, ops, 1, 12 + 3 * r);
		}
		/* Ring 5 of context 1 writes the churning resource. */
		k[0] = post_fill(1, 5, 10, id, 0, 32768, v + 1, 30);
		c[2] = post_res_cmd(VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 0, id);
		k[1] = post_fill(1, 5, 11, id, 0, 32768, v + 2, 31);
		c[3] = post_attach_swapped(id, gpa_churn, 65536);
		k[2] = post_fill(1, 5, 12, id, 0, 32768, v + 3, 32);
		c[4] = post_res_cmd(VIRTIO_GPU_CMD_RESOURCE_UNREF, 0, id);
		k[3] = post_fill(1, 5, 13, id, 0, 32768, v + 4, 33);
		c[5] = post_res_cmd(VIRTIO_GPU_CMD_RESOURCE_UNREF, 0, id);
		n = 12 + 6 + 4;
		fe_kick(&F, 0);
		if (mt)
			fe_set_mem_table(&F);   /* aborts the ring work, then remaps */
		wait_used(base, n, 60000);
		for (int r = 0; r < 4; r++) {
			uint64_t g = r < 3 ? gpa_small + 1024 * (uint64_t)r : gpa_small2;

			for (int i = 0; i < 3; i++) {
				ab[i] = was_aborted(mt, &w[r][i], 10 + 3 * (uint32_t)r + (uint32_t)i);
				if (!ab[i])
					assert_int_equal(resp_of(&w[r][i]).type,
							 VIRTIO_GPU_RESP_OK_NODATA);
			}
			assert_true(used_pos(base, w[r][0].head) < used_pos(base, w[r][1].head));
			assert_true(used_pos(base, w[r][1].head) < used_pos(base, w[r][2].head));
			if (!ab[0]) {
				assert_status(10 + 3 * r, VGPU_COMPUTE_OK, 2, 2);
				assert_true(all_u32(g, 512, v + (uint32_t)r));
			}
			if (!ab[1] && !ab[2])
				assert_true(all_u32(g + 512, 512, v + 0x100 + (uint32_t)r));
		}
		for (int i = 0; i < 5; i++)
			assert_int_equal(resp_of(&c[i]).type, VIRTIO_GPU_RESP_OK_NODATA);
		assert_int_equal(resp_of(&c[5]).type, VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
		/* Each release waited for the write queued before it. */
		assert_true(used_pos(base, k[0].head) < used_pos(base, c[2].head));
		assert_true(used_pos(base, k[2].head) < used_pos(base, c[4].head));
		for (int i = 0; i < 4; i++)
			kab[i] = was_aborted(mt, &k[i], 30 + (uint32_t)i);
		/* Those that failed validation are answered so, abort or not. */
		assert_false(kab[1] || kab[3]);
		if (!kab[0])
			assert_status(30, VGPU_COMPUTE_OK, 1, 1);
		assert_status(31, VGPU_COMPUTE_E_NOBACKING, 0, 0);
		if (!kab[2])
			assert_status(32, VGPU_COMPUTE_OK, 1, 1);
		assert_status(33, VGPU_COMPUTE_E_RESOURCE, 0, 0);
		/* The first backing's first half, then the second backing's
		 * first entry: the pages' second half. */
		if (!kab[0])
			assert_true(all_u32(gpa_churn, 32768, v + 1));
		if (!kab[2])
			assert_true(all_u32(gpa_churn + 32768, 32768, v + 3));
	}
	assert_int_equal(STAT_GET(resources), res0);
	assert_int_equal(STAT_GET(backings), bk0);
}

/*
 * The validation cache: a resource of 20000 mem entries named by 4 x 256
 * ops is walked once. ATTACH_BACKING makes a new backing, walked again on
 * its first use. A memory table without the resource's region: ops fail
 * with E_NOBACKING (one walk finds it), and the old table brings it back.
 */
#define MANY 20000u

static void cache_submits(uint32_t res, uint32_t times, uint32_t want, uint64_t want_walks)
{
	static struct vgpu_compute_op ops[VGPU_COMPUTE_MAX_OPS];
	uint64_t w0 = STAT_GET(backing_walks);

	for (uint32_t i = 0; i < VGPU_COMPUTE_MAX_OPS; i++)
		ops[i] = mkop(VGPU_OP_FILL, res, 4096ull * (i * 61 % MANY), 0, 0, 16, i);
	for (uint32_t t = 0; t < times; t++) {
		uint16_t base = F.ring[0].avail_idx;
		struct posted p = post_submit(1, t % 2 ? 1 : -1, 1000 + t, ops,
					      VGPU_COMPUTE_MAX_OPS, 50);

		fe_kick(&F, 0);
		wait_used(base, 1, 60000);
		assert_int_equal(resp_of(&p).type, want ? VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER
							: VIRTIO_GPU_RESP_OK_NODATA);
		assert_int_equal(status(50).result, want);
		assert_int_equal(status(50).ops_done, want ? 0 : VGPU_COMPUTE_MAX_OPS);
	}
	assert_int_equal(STAT_GET(backing_walks), w0 + want_walks);
}

/* SET_MEM_TABLE with regions 0 and 1 only (rings and the status page stay). */
static void mem_table_without_r2(void)
{
	struct vu_mem_region regs[2];
	uint8_t mt[8 + sizeof(regs)];
	int fds[2] = { F.memfd, F.memfd };

	memset(mt, 0, sizeof(mt));
	mt[0] = 2;
	for (int i = 0; i < 2; i++) {
		regs[i].guest_addr = F.reg[i].gpa;
		regs[i].size = F.reg[i].size;
		regs[i].user_addr = F.reg[i].gpa + FE_QVA_BIAS;
		regs[i].mmap_offset = F.reg[i].off;
	}
	memcpy(mt + 8, regs, sizeof(regs));
	assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, sizeof(mt), fds, 2), 0);
}

static void test_validation_cache(void **state)
{
	struct virtio_gpu_mem_entry *e = calloc(MANY, sizeof(*e));
	uint64_t page = gpa_victim;
	struct vgpu_compute_op nop = mkop(VGPU_OP_NOP, 0, 0, 0, 0, 0, 0);

	(void)state;
	assert_non_null(e);
	clear_status();
	/* Every entry the same page: 20000 entries, 80 MB of resource. */
	for (uint32_t i = 0; i < MANY; i++)
		e[i] = (struct virtio_gpu_mem_entry){ page, 4096, 0 };
	assert_int_equal(cmd_blob(&F, 1, 40, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST, 0,
				  (uint64_t)MANY * 4096, e, MANY), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, 40), VIRTIO_GPU_RESP_OK_NODATA);
	/* The status page checked first, so that the count below is 40's. */
	assert_int_equal(cmd_submit(&F, 1, R_STATUS, 50 * 16, &nop, 1), VIRTIO_GPU_RESP_OK_NODATA);
	cache_submits(40, 4, VGPU_COMPUTE_OK, 1);
	cache_submits(40, 2, VGPU_COMPUTE_OK, 0);

	/* A new backing (DETACH, then ATTACH over the same entries) starts
	 * unchecked. */
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 40),
			 VIRTIO_GPU_RESP_OK_NODATA);
	cache_submits(40, 1, VGPU_COMPUTE_E_NOBACKING, 0);
	{
		size_t len = sizeof(struct virtio_gpu_resource_attach_backing) + MANY * sizeof(*e);
		uint8_t *buf = calloc(1, len);
		struct virtio_gpu_resource_attach_backing *a = (void *)buf;

		assert_non_null(buf);
		hdr_init(&a->hdr, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, 0);
		a->resource_id = 40;
		a->nr_entries = MANY;
		memcpy(buf + sizeof(*a), e, MANY * sizeof(*e));
		assert_int_equal(fe_cmd_simple(&F, buf, len), VIRTIO_GPU_RESP_OK_NODATA);
		free(buf);
	}
	cache_submits(40, 3, VGPU_COMPUTE_OK, 1);

	/* The page leaves guest RAM: E_NOBACKING, found by one walk (and one
	 * of the status page, under the new table too). */
	mem_table_without_r2();
	cache_submits(40, 1, VGPU_COMPUTE_E_NOBACKING, 2);
	cache_submits(40, 3, VGPU_COMPUTE_E_NOBACKING, 0);
	fe_set_mem_table(&F);
	cache_submits(40, 2, VGPU_COMPUTE_OK, 2);
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 40), VIRTIO_GPU_RESP_OK_NODATA);
	free(e);
}

/*
 * The front-end goes away while jobs are queued behind a running one and
 * an UNREF waits for one of them: the running one finishes, the queued
 * ones are dropped with their references, the UNREF goes through
 * (LeakSanitizer and the backing count say nothing is left).
 */
static void test_disconnect_drops_jobs(void **state)
{
	uint64_t res0 = STAT_GET(resources);
	uint16_t base;

	(void)state;
	assert_int_equal(blob_at(1, 95, gpa_churn, 65536), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(blob_at(1, 96, gpa_victim, MAT), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, 95), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, 96), VIRTIO_GPU_RESP_OK_NODATA);
	base = F.ring[0].avail_idx;
	/* Rings 0 and 1, each into its own C. */
	for (uint32_t i = 0; i < 4; i++)
		post_long(1, (int)(i % 2), 1100 + i, i % 2 ? 96 : R_GDST, long_ops, 0, 0, i);
	post_fill(1, 0, 1200, 95, 0, 4096, 1, 8);
	/* The queue thread waits in this UNREF for the FILL when the
	 * front-end goes: dropping the FILL must let it go on. */
	post_res_cmd(VIRTIO_GPU_CMD_RESOURCE_UNREF, 0, 95);
	fe_kick(&F, 0);
	usleep(20000);
	assert_true(used_count(base) < 3);
	assert_int_equal(STAT_GET(resources), res0 + 2);
	fe_stop(&F);
	assert_int_equal(STAT_GET(resources), 0);
	assert_int_equal(STAT_GET(backings), 0);
	/* The group's teardown stops F again: start a fresh one. */
	fe_start(&F, &(struct fe_opts){ .threads = 2 });
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_while_ring_busy),
		cmocka_unit_test(test_unref_waits_for_its_jobs),
		cmocka_unit_test(test_queued_before_and_after),
		cmocka_unit_test(test_detach_rdonly_waits),
		cmocka_unit_test(test_ring_order_with_failures),
		cmocka_unit_test(test_churn),
		cmocka_unit_test(test_validation_cache),
		cmocka_unit_test(test_disconnect_drops_jobs),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
