/* SPDX-License-Identifier: MIT */
/*
 * test_hostile.c - the device against a malicious front-end and guest.
 *
 * Every case sends one bad input and asserts the exact outcome: a
 * VIRTIO_GPU_RESP_ERR_* answer, a used element of length 0, a broken ring
 * that is no longer served, a NACK (REPLY_ACK 1) or a disconnect. After
 * each test the device is stopped and the test checks that every resource,
 * context, mapping and file descriptor is gone (under ASan, LeakSanitizer
 * checks the heap at exit; under valgrind, memcheck does). Each test prints
 * the number of bad inputs it sent as a TAP comment ("# cases: ...").
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gpu_cmd.h"
#include "helpers.h"
#include "stats.h"

static struct fe F;
static int fds_before;
static unsigned cases;

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;   /* the directory's own fd */
}

static void assert_all_freed(void)
{
	assert_int_equal(STAT_GET(resources), 0);
	assert_int_equal(STAT_GET(resource_bytes), 0);
	assert_int_equal(STAT_GET(contexts), 0);
	assert_int_equal(STAT_GET(mapped_bytes), 0);
	assert_int_equal(count_fds(), fds_before);
}

static int setup(void **state)
{
	(void)state;
	fds_before = count_fds();
	cases = 0;
	fe_start(&F, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fe_stop(&F);
	printf("# cases: %u\n", cases);
	assert_all_freed();
	return 0;
}

static bool device_exited(struct fe *f, int ms)
{
	for (int i = 0; i < ms / 5 + 1; i++) {
		if (__atomic_load_n(&f->exited, __ATOMIC_ACQUIRE))
			return true;
		usleep(5000);
	}
	return __atomic_load_n(&f->exited, __ATOMIC_ACQUIRE);
}

/* Send a control command; the response header type (0 if none came). */
static uint32_t send_cmd(struct fe *f, int q, const void *buf, size_t len, unsigned split)
{
	uint8_t resp[GPU_RESP_MAX];
	struct virtio_gpu_ctrl_hdr h;
	int r = fe_cmd(f, q, buf, len, resp, sizeof(resp), split);

	if (r < (int)sizeof(h))
		return 0;
	memcpy(&h, resp, sizeof(h));
	return h.type;
}

static uint32_t display_info(struct fe *f)
{
	struct virtio_gpu_ctrl_hdr h;

	hdr_init(&h, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
	return send_cmd(f, 0, &h, sizeof(h), 1);
}

/* Device still answers commands. */
static void assert_alive(struct fe *f)
{
	assert_false(__atomic_load_n(&f->exited, __ATOMIC_ACQUIRE));
	assert_int_equal(display_info(f), VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
}

/* ==== 1. every command cut at every length, and longer than needed ==== */

/* Base state for the command cases: context 1; resource 1 (4 KiB, R1)
 * attached to it; resource 2 (status, 4 KiB) attached too. */
static uint64_t res1_gpa, res2_gpa, spare_gpa;

static void base_state(void)
{
	assert_int_equal(cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	res1_gpa = simple_blob(&F, 1, 1, 0, 1, 4096);
	assert_true(res1_gpa != 0);
	res2_gpa = simple_blob(&F, 1, 2, 0, 1, 4096);
	assert_true(res2_gpa != 0);
	assert_int_equal(cmd_attach(&F, 1, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, 2), VIRTIO_GPU_RESP_OK_NODATA);
	spare_gpa = fe_alloc(&F, 2, 8192, 0);
}

static size_t b_display(uint8_t *b)
{
	hdr_init((void *)b, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
	return sizeof(struct virtio_gpu_ctrl_hdr);
}

static size_t b_capset_info(uint8_t *b)
{
	struct virtio_gpu_get_capset_info *c = (void *)b;

	memset(c, 0, sizeof(*c));
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_GET_CAPSET_INFO, 0);
	return sizeof(*c);
}

static size_t b_capset(uint8_t *b)
{
	struct virtio_gpu_get_capset *c = (void *)b;

	memset(c, 0, sizeof(*c));
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_GET_CAPSET, 0);
	c->capset_id = VGPU_COMPUTE_CAPSET_ID;
	c->capset_version = VGPU_COMPUTE_CAPSET_VERSION;
	return sizeof(*c);
}

static size_t b_ctx_create(uint8_t *b)
{
	struct virtio_gpu_ctx_create *c = (void *)b;

	memset(c, 0, sizeof(*c));
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_CTX_CREATE, 50);
	c->context_init = VGPU_COMPUTE_CAPSET_ID;
	c->nlen = 4;
	memcpy(c->debug_name, "evil", 4);
	return sizeof(*c);
}

static size_t b_ctx_destroy(uint8_t *b)
{
	hdr_init((void *)b, VIRTIO_GPU_CMD_CTX_DESTROY, 50);
	return sizeof(struct virtio_gpu_ctrl_hdr);
}

static size_t ctx_res(uint8_t *b, uint32_t type)
{
	struct virtio_gpu_ctx_resource *c = (void *)b;

	memset(c, 0, sizeof(*c));
	hdr_init(&c->hdr, type, 1);
	c->resource_id = 60;
	return sizeof(*c);
}

static size_t b_ctx_attach(uint8_t *b)
{
	return ctx_res(b, VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE);
}

static size_t b_ctx_detach(uint8_t *b)
{
	return ctx_res(b, VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE);
}

static size_t res_cmd(uint8_t *b, uint32_t type)
{
	struct virtio_gpu_resource_unref *c = (void *)b;

	memset(c, 0, sizeof(*c));
	hdr_init(&c->hdr, type, 0);
	c->resource_id = 60;
	return sizeof(*c);
}

static size_t b_unref(uint8_t *b)
{
	return res_cmd(b, VIRTIO_GPU_CMD_RESOURCE_UNREF);
}

static size_t b_detach_backing(uint8_t *b)
{
	return res_cmd(b, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING);
}

static size_t b_attach_backing(uint8_t *b)
{
	struct virtio_gpu_resource_attach_backing *c = (void *)b;
	struct virtio_gpu_mem_entry e = { spare_gpa, 8192, 0 };

	memset(c, 0, sizeof(*c));
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, 0);
	c->resource_id = 60;
	c->nr_entries = 1;
	memcpy(b + sizeof(*c), &e, sizeof(e));
	return sizeof(*c) + sizeof(e);
}

static size_t b_blob(uint8_t *b)
{
	struct virtio_gpu_resource_create_blob *c = (void *)b;
	struct virtio_gpu_mem_entry e[2] = {
		{ spare_gpa, 4096, 0 }, { spare_gpa + 4096, 4096, 0 },
	};

	memset(c, 0, sizeof(*c));
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, 1);
	c->resource_id = 60;
	c->blob_mem = VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST;
	c->blob_flags = 0;
	c->nr_entries = 2;
	c->size = 8192;
	memcpy(b + sizeof(*c), e, sizeof(e));
	return sizeof(*c) + sizeof(e);
}

static size_t b_submit(uint8_t *b)
{
	struct virtio_gpu_cmd_submit *c = (void *)b;
	struct vgpu_compute_submit s = { VGPU_COMPUTE_MAGIC, 1, 2, 0, 0 };
	struct vgpu_compute_op op = mkop(VGPU_OP_FILL, 1, 0, 0, 0, 4096, 0x5a5a5a5a);

	memset(c, 0, sizeof(*c));
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_SUBMIT_3D, 1);
	c->size = sizeof(s) + sizeof(op);
	memcpy(b + sizeof(*c), &s, sizeof(s));
	memcpy(b + sizeof(*c) + sizeof(s), &op, sizeof(op));
	return sizeof(*c) + sizeof(s) + sizeof(op);
}

static size_t cursor(uint8_t *b, uint32_t type)
{
	struct virtio_gpu_update_cursor *c = (void *)b;

	memset(c, 0, sizeof(*c));
	hdr_init(&c->hdr, type, 0);
	return sizeof(*c);
}

static size_t b_update_cursor(uint8_t *b)
{
	return cursor(b, VIRTIO_GPU_CMD_UPDATE_CURSOR);
}

static size_t b_move_cursor(uint8_t *b)
{
	return cursor(b, VIRTIO_GPU_CMD_MOVE_CURSOR);
}

static void blob60(void)
{
	struct virtio_gpu_mem_entry e = { spare_gpa, 8192, 0 };

	assert_int_equal(cmd_blob(&F, 0, 60, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 8192, &e, 1),
			 VIRTIO_GPU_RESP_OK_NODATA);
}

static void p_ctx50(void)
{
	assert_int_equal(cmd_ctx_create(&F, 50, 0), VIRTIO_GPU_RESP_OK_NODATA);
}

static void u_ctx50(void)
{
	assert_int_equal(cmd_ctx_destroy(&F, 50), VIRTIO_GPU_RESP_OK_NODATA);
}

static void p_attach(void)
{
	blob60();
}

static void p_detach(void)
{
	blob60();
	assert_int_equal(cmd_attach(&F, 1, 60), VIRTIO_GPU_RESP_OK_NODATA);
}

static void u_unref60(void)
{
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 60),
			 VIRTIO_GPU_RESP_OK_NODATA);
}

static void p_attach_backing(void)
{
	blob60();
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 60),
			 VIRTIO_GPU_RESP_OK_NODATA);
}

struct kase {
	const char *name;
	int q;
	size_t (*build)(uint8_t *b);
	void (*prep)(void);
	void (*undo)(void);
	uint32_t ok;
};

static const struct kase kases[] = {
	{ "GET_DISPLAY_INFO", 0, b_display, NULL, NULL, VIRTIO_GPU_RESP_OK_DISPLAY_INFO },
	{ "GET_CAPSET_INFO", 0, b_capset_info, NULL, NULL, VIRTIO_GPU_RESP_OK_CAPSET_INFO },
	{ "GET_CAPSET", 0, b_capset, NULL, NULL, VIRTIO_GPU_RESP_OK_CAPSET },
	{ "CTX_CREATE", 0, b_ctx_create, NULL, u_ctx50, VIRTIO_GPU_RESP_OK_NODATA },
	{ "CTX_DESTROY", 0, b_ctx_destroy, p_ctx50, NULL, VIRTIO_GPU_RESP_OK_NODATA },
	{ "CTX_ATTACH_RESOURCE", 0, b_ctx_attach, p_attach, u_unref60, VIRTIO_GPU_RESP_OK_NODATA },
	{ "CTX_DETACH_RESOURCE", 0, b_ctx_detach, p_detach, u_unref60, VIRTIO_GPU_RESP_OK_NODATA },
	{ "RESOURCE_UNREF", 0, b_unref, blob60, NULL, VIRTIO_GPU_RESP_OK_NODATA },
	{ "RESOURCE_DETACH_BACKING", 0, b_detach_backing, blob60, u_unref60, VIRTIO_GPU_RESP_OK_NODATA },
	{ "RESOURCE_ATTACH_BACKING", 0, b_attach_backing, p_attach_backing, u_unref60, VIRTIO_GPU_RESP_OK_NODATA },
	{ "RESOURCE_CREATE_BLOB", 0, b_blob, NULL, u_unref60, VIRTIO_GPU_RESP_OK_NODATA },
	{ "SUBMIT_3D", 0, b_submit, NULL, NULL, VIRTIO_GPU_RESP_OK_NODATA },
	{ "UPDATE_CURSOR", 1, b_update_cursor, NULL, NULL, VIRTIO_GPU_RESP_OK_NODATA },
	{ "MOVE_CURSOR", 1, b_move_cursor, NULL, NULL, VIRTIO_GPU_RESP_OK_NODATA },
};

static void run_full(const struct kase *k, const uint8_t *b, size_t len, size_t extra)
{
	uint8_t big[4096];

	assert_true(len + extra <= sizeof(big));
	memcpy(big, b, len);
	for (size_t i = 0; i < extra; i++)
		big[len + i] = (uint8_t)(0xa5 ^ i);
	assert_int_equal(send_cmd(&F, k->q, big, len + extra, 1), k->ok);
}

static void test_truncated_commands(void **state)
{
	unsigned per_type[sizeof(kases) / sizeof(kases[0])];

	(void)state;
	base_state();
	for (size_t t = 0; t < sizeof(kases) / sizeof(kases[0]); t++) {
		const struct kase *k = &kases[t];
		uint8_t b[512];
		size_t full = k->build(b);

		per_type[t] = 0;
		for (size_t len = 0; len < full; len++) {
			for (unsigned split = 1; split <= 2; split++) {
				uint32_t want = len < sizeof(struct virtio_gpu_ctrl_hdr) ?
					VIRTIO_GPU_RESP_ERR_UNSPEC : VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
				uint64_t res = STAT_GET(resources), ctx = STAT_GET(contexts);

				if (split == 2 && len < 2)
					continue;
				if (k->prep)
					k->prep();
				assert_int_equal(send_cmd(&F, k->q, b, len, split), want);
				/* Nothing changed: the whole command still works. */
				assert_int_equal(STAT_GET(resources) - res, k->prep == blob60 ||
						 k->prep == p_attach || k->prep == p_detach ||
						 k->prep == p_attach_backing ? 1u : 0u);
				run_full(k, b, full, 0);
				if (k->undo)
					k->undo();
				assert_int_equal(STAT_GET(resources), res);
				assert_int_equal(STAT_GET(contexts), ctx);
				per_type[t]++;
				cases++;
			}
		}
	}
	for (size_t t = 0; t < sizeof(kases) / sizeof(kases[0]); t++)
		printf("# truncated %s: %u\n", kases[t].name, per_type[t]);
	assert_alive(&F);
}

static void test_oversized_commands(void **state)
{
	static const size_t extra[] = { 1, 4, 8, 16, 63, 64, 1000, 3000 };

	(void)state;
	base_state();
	for (size_t t = 0; t < sizeof(kases) / sizeof(kases[0]); t++) {
		const struct kase *k = &kases[t];
		uint8_t b[512];
		size_t full = k->build(b);

		for (size_t x = 0; x < sizeof(extra) / sizeof(extra[0]); x++) {
			if (k->prep)
				k->prep();
			/* Bytes after the command are ignored. */
			run_full(k, b, full, extra[x]);
			if (k->undo)
				k->undo();
			cases++;
		}
	}
	assert_int_equal(STAT_GET(resources), 2);
	assert_alive(&F);
}

/* A command whose readable part gathers more than 64 MiB: 65 descriptors of
 * 1 MiB each (all the same region). Completed with length 0. */
static void test_gather_limit(void **state)
{
	struct fe g;
	struct fe_opts o = { .ctrl_num = 128 };
	struct vring_desc d[66];
	uint32_t id, len;
	uint64_t bad = STAT_GET(bad_chains);

	(void)state;
	fe_stop(&F);
	fe_start(&g, &o);
	memset(d, 0, sizeof(d));
	hdr_init(fe_ptr(&g, FE_R2), VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
	for (int i = 0; i < 65; i++) {
		d[i].addr = FE_R2;
		d[i].len = 1u << 20;
		d[i].flags = VRING_DESC_F_NEXT;
		d[i].next = (uint16_t)(i + 1);
	}
	d[65].addr = FE_R1 + 0x1000;
	d[65].len = 512;
	d[65].flags = VRING_DESC_F_WRITE;
	fe_post_raw(&g, 0, d, 66);
	fe_kick(&g, 0);
	assert_int_equal(fe_wait_used(&g, 0, 1, 10000), 0);
	fe_used_elem(&g, 0, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 0);
	assert_int_equal(STAT_GET(bad_chains), bad + 1);
	/* 64 descriptors (exactly 64 MiB) are accepted: trailing bytes ignored. */
	d[63].flags = VRING_DESC_F_NEXT;
	d[63].next = 65;
	g.ring[0].avail->ring[1] = 0;
	g.ring[0].avail_idx = 2;
	__atomic_store_n(&g.ring[0].avail->idx, 2, __ATOMIC_RELEASE);
	memcpy(&g.ring[0].desc[0], d, sizeof(d));
	fe_kick(&g, 0);
	assert_int_equal(fe_wait_used(&g, 0, 2, 10000), 0);
	fe_used_elem(&g, 0, 1, &id, &len);
	assert_int_equal(len, sizeof(struct virtio_gpu_resp_display_info));
	cases += 2;
	fe_stop(&g);
	fe_start(&F, NULL);
}

/* ==== 2. mem entries ==== */

static uint32_t blob_raw(uint32_t id, uint64_t size, const struct virtio_gpu_mem_entry *e,
			 uint32_t n, uint32_t claimed)
{
	return cmd_blob_ex(&F, 0, id, VIRTIO_GPU_BLOB_MEM_GUEST, 0, size, e, n, claimed, 1);
}

static uint32_t attach_raw(uint32_t id, const struct virtio_gpu_mem_entry *e, uint32_t n,
			   uint32_t claimed)
{
	uint8_t buf[32 + 8 * 16];
	struct virtio_gpu_resource_attach_backing *c = (void *)buf;

	memset(buf, 0, sizeof(buf));
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, 0);
	c->resource_id = id;
	c->nr_entries = claimed;
	memcpy(buf + sizeof(*c), e, n * sizeof(*e));
	return send_cmd(&F, 0, buf, sizeof(*c) + n * sizeof(*e), 1);
}

static void test_entry_counts(void **state)
{
	static const uint32_t claims[] = { 0, 3, 4, 100, (1u << 20), GPU_CMD_MAX_ENTRIES,
					   GPU_CMD_MAX_ENTRIES + 1,
					   0x7fffffff, 0x80000000u, 0xffffffffu };
	struct virtio_gpu_mem_entry e[2];
	uint64_t a = fe_alloc(&F, 1, 8192, 0);

	(void)state;
	e[0].addr = a; e[0].length = 4096; e[0].padding = 0;
	e[1].addr = a + 4096; e[1].length = 4096; e[1].padding = 0;
	/* nr_entries huge, 0, or more than the payload holds. */
	for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
		assert_int_equal(blob_raw(10, 8192, e, 2, claims[i]),
				 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		cases++;
	}
	/* Fewer claimed than sent: the size no longer matches. */
	assert_int_equal(blob_raw(10, 8192, e, 2, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	/* size not the sum of the lengths, either way; size 0; size huge. */
	assert_int_equal(blob_raw(10, 8191, e, 2, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(blob_raw(10, 8193, e, 2, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(blob_raw(10, 0, e, 2, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(blob_raw(10, UINT64_MAX, e, 2, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	cases += 5;
	assert_int_equal(STAT_GET(resources), 0);
	/* The same for ATTACH_BACKING. */
	assert_int_equal(blob_raw(10, 8192, e, 2, 2), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 10),
			 VIRTIO_GPU_RESP_OK_NODATA);
	for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
		assert_int_equal(attach_raw(10, e, 2, claims[i]),
				 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		cases++;
	}
	assert_int_equal(attach_raw(10, e, 2, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	cases++;
	assert_int_equal(attach_raw(10, e, 2, 2), VIRTIO_GPU_RESP_OK_NODATA);
	/* Backing on a resource that has it already. */
	assert_int_equal(attach_raw(10, e, 2, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	cases++;
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 10), VIRTIO_GPU_RESP_OK_NODATA);
}

static void test_entry_ranges(void **state)
{
	static const struct { uint64_t addr; uint32_t len; const char *what; } bad[] = {
		{ 0, 4096, "address 0" },
		{ 0x1000, 4096, "below RAM" },
		{ FE_R0 - 4096, 4096, "just below R0" },
		{ FE_R0 - 1, 2, "straddling the start of R0" },
		{ FE_HOLE, 4096, "in the hole" },
		{ FE_HOLE - 4096, 8192, "R0 into the hole" },
		{ FE_HOLE + 0xff000, 0x2000, "hole into R1" },
		{ 0x3ff000, 0x2000, "R1 into R2 (adjacent regions)" },
		{ 0x3fffff, 2, "one byte each side of R1/R2" },
		{ 0x5ff000, 4096, "just past R2" },
		{ 0x5fe000, 0x2000, "R2 past its end" },
		{ 0x60000000, 4096, "where UML's kernel image lives" },
		{ 1ull << 48, 4096, "far away" },
		{ UINT64_MAX - 0xfff, 0x1000, "last page of the address space" },
		{ UINT64_MAX - 0xfff, 0x2000, "wrapping past 2^64" },
		{ UINT64_MAX, 1, "address 2^64-1" },
		{ UINT64_MAX, 0xffffffffu, "wrapping, longest" },
		{ FE_R1, 0, "empty entry" },
		{ FE_R1, 0xffffffffu, "4 GiB from R1" },
		{ FE_R2, 0x200000, "larger than R2" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* Alone, and after a good entry. */
		struct virtio_gpu_mem_entry e[2] = {
			{ bad[i].addr, bad[i].len, 0 },
			{ 0, 0, 0 },
		};
		uint64_t sz = bad[i].len ? bad[i].len : 4096;

		assert_int_equal(blob_raw(11, sz, e, 1, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		e[1] = e[0];
		e[0].addr = FE_R1 + 0x90000;
		e[0].length = 4096;
		assert_int_equal(blob_raw(11, sz + 4096, e, 2, 2),
				 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		/* Read-only with the same entries. */
		assert_int_equal(cmd_blob_ex(&F, 0, 11, VIRTIO_GPU_BLOB_MEM_GUEST,
					     VIRTIO_GPU_BLOB_FLAG_RDONLY, sz + 4096, e, 2, 2, 2),
				 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		cases += 3;
	}
	assert_int_equal(STAT_GET(resources), 0);
	/* The edges themselves are fine: last byte of R1, first of R2. */
	{
		struct virtio_gpu_mem_entry e[2] = { { 0x3fffff, 1, 0 }, { FE_R2, 1, 0 } };

		assert_int_equal(blob_raw(11, 2, e, 2, 2), VIRTIO_GPU_RESP_OK_NODATA);
		assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 11),
				 VIRTIO_GPU_RESP_OK_NODATA);
	}
}

/* Overlapping entries are allowed: the same guest page may back two
 * offsets of one resource, or two resources (a guest may map a page
 * twice; every access stays inside guest RAM). COPY between aliases is a
 * memmove, so the result is defined and nothing outside the pages moves. */
static void test_overlapping_entries(void **state)
{
	uint64_t a = fe_alloc(&F, 2, 8192, 0);
	struct virtio_gpu_mem_entry e[3] = {
		{ a, 4096, 0 }, { a, 4096, 0 }, { a + 2048, 4096, 0 },
	};
	struct vgpu_compute_op op;
	uint8_t *p = fe_ptr(&F, a);

	(void)state;
	assert_int_equal(cmd_ctx_create(&F, 1, 0), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_blob(&F, 1, 20, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST, 0, 12288, e, 3),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_blob(&F, 1, 21, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST, 0, 4096, e, 1),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, 20), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, 21), VIRTIO_GPU_RESP_OK_NODATA);
	memset(p, 0, 8192);
	for (int i = 0; i < 4096; i++)
		p[i] = (uint8_t)i;
	/* Offsets 0 and 4096 of resource 20 are the same bytes. */
	op = mkop(VGPU_OP_COPY, 20, 4096, 20, 0, 4096, 0);
	assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	/* Partially aliased: offset 8192 of 20 is a+2048. */
	op = mkop(VGPU_OP_COPY, 20, 8192, 20, 0, 4096, 0);
	assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	/* Across resources on the same page. */
	op = mkop(VGPU_OP_COPY, 21, 0, 20, 4096, 4096, 0);
	assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	op = mkop(VGPU_OP_SAXPY, 21, 0, 20, 2048, 4096, 0x3f800000);
	assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	/* Nothing beyond the three pages' span was touched. */
	for (int i = 6144; i < 8192; i++)
		assert_int_equal(p[i], 0);
	cases += 6;
}

/* ==== 3. ids ==== */

static uint32_t submit_status(uint32_t ctx, const struct vgpu_compute_op *ops, uint32_t n,
			      struct vgpu_compute_status *st)
{
	uint32_t t = cmd_submit(&F, ctx, 2, 0, ops, n);

	memcpy(st, fe_ptr(&F, res2_gpa), sizeof(*st));
	return t;
}

static void test_unknown_ids(void **state)
{
	static const uint32_t ids[] = { 0, 3, 59, 1000, 65536, 0x7fffffff, 0xffffffffu };
	struct vgpu_compute_status st;
	struct vgpu_compute_op op;
	struct virtio_gpu_mem_entry e = { 0, 4096, 0 };

	(void)state;
	base_state();
	e.addr = spare_gpa;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		uint32_t id = ids[i];

		assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, id),
				 VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
		assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, id),
				 VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
		assert_int_equal(attach_raw(id, &e, 1, 1), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
		assert_int_equal(cmd_attach(&F, 1, id), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
		assert_int_equal(cmd_ctx_res(&F, VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, 1, id),
				 VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
		/* Unknown context (only 1 and 5 are ever created). */
		assert_int_equal(cmd_attach(&F, id, 1), VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
		assert_int_equal(cmd_ctx_res(&F, VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, id, 1),
				 VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
		assert_int_equal(cmd_ctx_destroy(&F, id), VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
		op = mkop(VGPU_OP_FILL, 1, 0, 0, 0, 64, 1);
		assert_int_equal(cmd_submit(&F, id, 0, 0, &op, 1),
				 VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
		assert_int_equal(cmd_blob(&F, id, 70, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST, 0, 4096,
					  &e, 1), VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
		/* Unknown resource inside a submit. */
		op = mkop(VGPU_OP_FILL, id, 0, 0, 0, 64, 1);
		assert_int_equal(submit_status(1, &op, 1, &st), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		assert_int_equal(st.result, VGPU_COMPUTE_E_RESOURCE);
		cases += 11;
	}
	/* Context id 0 cannot be created; a duplicate neither. */
	assert_int_equal(cmd_ctx_create(&F, 0, 0), VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
	assert_int_equal(cmd_ctx_create(&F, 1, 0), VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
	/* Resource id 0 and a duplicate. */
	assert_int_equal(cmd_blob(&F, 0, 0, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 4096, &e, 1),
			 VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(cmd_blob(&F, 0, 1, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 4096, &e, 1),
			 VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	/* A resource not attached to the submitting context. */
	assert_int_equal(cmd_ctx_create(&F, 5, 0), VIRTIO_GPU_RESP_OK_NODATA);
	op = mkop(VGPU_OP_FILL, 1, 0, 0, 0, 64, 1);
	assert_int_equal(cmd_submit(&F, 5, 0, 0, &op, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	cases += 5;
	/* Double unref, double destroy; a submit naming an unref'd resource. */
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 1),
			 VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(submit_status(1, &op, 1, &st), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(st.result, VGPU_COMPUTE_E_RESOURCE);
	assert_int_equal(cmd_ctx_res(&F, VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, 1, 1),
			 VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(cmd_ctx_destroy(&F, 5), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_ctx_destroy(&F, 5), VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
	/* Detach backing twice, then use it. */
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 2),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 2),
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	op = mkop(VGPU_OP_FILL, 2, 0, 0, 0, 64, 1);
	assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	/* Destroying a context with attachments, then unref'ing them. */
	assert_int_equal(cmd_ctx_destroy(&F, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 2), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 2),
			 VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	cases += 8;
	assert_int_equal(STAT_GET(resources), 0);
	assert_int_equal(STAT_GET(contexts), 0);
}

/* ==== 4. read-only blobs (VIRTIO_GPU_BLOB_FLAG_RDONLY) ==== */

static void test_rdonly(void **state)
{
	const uint32_t ro = VIRTIO_GPU_BLOB_FLAG_RDONLY;
	struct vgpu_compute_status st;
	struct vgpu_compute_op ops[2];
	uint64_t a;
	uint8_t *p;

	(void)state;
	base_state();
	a = simple_blob(&F, 1, 30, ro, 2, 8192);
	assert_true(a != 0);
	assert_int_equal(cmd_attach(&F, 1, 30), VIRTIO_GPU_RESP_OK_NODATA);
	p = fe_ptr(&F, a);
	memset(p, 0x11, 8192);
	{
		const struct vgpu_compute_op w[] = {
			mkop(VGPU_OP_FILL, 30, 0, 0, 0, 4096, 7),
			mkop(VGPU_OP_COPY, 30, 0, 1, 0, 4096, 0),
			mkop(VGPU_OP_SAXPY, 30, 0, 1, 0, 4096, 0x3f800000),
			mkop(VGPU_OP_CHECKSUM, 30, 0, 1, 0, 4096, 0),
			mkop(VGPU_OP_SUM_F32, 30, 8, 1, 0, 4096, 0),
		};

		for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
			/* Alone, and after a valid op (nothing of the first runs). */
			assert_int_equal(submit_status(1, &w[i], 1, &st),
					 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
			assert_int_equal(st.result, VGPU_COMPUTE_E_READONLY);
			assert_int_equal(st.op_index, 0);
			ops[0] = mkop(VGPU_OP_FILL, 1, 0, 0, 0, 4096, 0x99999999);
			ops[1] = w[i];
			assert_int_equal(submit_status(1, ops, 2, &st),
					 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
			assert_int_equal(st.result, VGPU_COMPUTE_E_READONLY);
			assert_int_equal(st.op_index, 1);
			assert_int_equal(st.ops_done, 0);
			cases += 2;
		}
	}
	/* The status record in a read-only resource. */
	ops[0] = mkop(VGPU_OP_NOP, 0, 0, 0, 0, 0, 0);
	{
		struct vgpu_compute_submit s = { VGPU_COMPUTE_MAGIC, 1, 30, 0, 0 };
		struct virtio_gpu_ctrl_hdr h;

		assert_int_equal(cmd_submit_ex(&F, 1, 0, 0, 0, &s, ops, 1, &h),
				 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		cases++;
	}
	for (int i = 0; i < 8192; i++)
		assert_int_equal(p[i], 0x11);
	assert_int_equal(((uint8_t *)fe_ptr(&F, res1_gpa))[0], 0);
	/* Reading it is fine. */
	ops[0] = mkop(VGPU_OP_COPY, 1, 0, 30, 0, 4096, 0);
	assert_int_equal(submit_status(1, ops, 1, &st), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(((uint8_t *)fe_ptr(&F, res1_gpa))[0], 0x11);
	/* RDONLY with a mapping is refused at creation: the device could
	 * not keep its promise for the mapped pages. */
	assert_int_equal(simple_blob(&F, 1, 31, ro | VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE, 2, 4096), 0);
	cases++;
}

/* ==== 5. the ring ==== */

/* Reconfigure ring 0 from scratch after it broke (as a front-end resetting
 * the device would): NUM, ADDR, BASE 0, a new kick. */
static void ring_reset(struct fe *f)
{
	struct fe_ring *r = &f->ring[0];
	struct vhost_vring_state st = { 0, r->num };
	struct vhost_vring_addr a;
	uint64_t v = 0;

	memset(r->desc, 0, 16u * r->num);
	memset(r->avail, 0, 0x1000);
	memset(r->used, 0, 0x1000);
	r->avail_idx = 0;
	r->next_desc = 0;
	/* The base first: the ring stays broken (not served) until NUM. */
	st.num = 0;
	assert_int_equal(fe_ack(f, VU_SET_VRING_BASE, &st, sizeof(st), NULL, 0), 0);
	st.num = r->num;
	assert_int_equal(fe_ack(f, VU_SET_VRING_NUM, &st, sizeof(st), NULL, 0), 0);
	memset(&a, 0, sizeof(a));
	a.desc_user_addr = r->desc_gpa + FE_QVA_BIAS;
	a.used_user_addr = r->used_gpa + FE_QVA_BIAS;
	a.avail_user_addr = r->avail_gpa + FE_QVA_BIAS;
	assert_int_equal(fe_ack(f, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 0);
	assert_int_equal(fe_ack(f, VU_SET_VRING_KICK, &v, 8, &r->kick, 1), 0);
}

/* Post a raw chain, kick, and expect the ring to break: nothing is
 * completed (the used index stays), then the ring works after a reset. */
static void expect_broken(const struct vring_desc *d, unsigned n, uint16_t head)
{
	struct fe_ring *r = &F.ring[0];
	uint16_t u = r->used->idx;

	for (unsigned i = 0; i < n; i++)
		r->desc[i] = d[i];
	r->avail->ring[r->avail_idx % r->num] = head;
	r->avail_idx++;
	__atomic_store_n(&r->avail->idx, r->avail_idx, __ATOMIC_RELEASE);
	fe_kick(&F, 0);
	assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(u + 1), 100), -1);
	assert_int_equal(r->used->idx, u);
	/* Kicking a broken ring does nothing either. */
	fe_kick(&F, 0);
	assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(u + 1), 30), -1);
	ring_reset(&F);
	assert_alive(&F);
	cases++;
}

/* Post a raw chain and expect it completed with length 0. */
static void expect_len0(const struct vring_desc *d, unsigned n)
{
	struct fe_ring *r = &F.ring[0];
	uint16_t u = (uint16_t)(r->avail_idx + 1);
	uint64_t bad = STAT_GET(bad_chains);
	uint32_t id, len;

	fe_post_raw(&F, 0, d, n);
	fe_kick(&F, 0);
	assert_int_equal(fe_wait_used(&F, 0, u, 3000), 0);
	fe_used_elem(&F, 0, (uint16_t)(u - 1), &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 0);
	assert_int_equal(STAT_GET(bad_chains), bad + 1);
	cases++;
}

static void set_desc(struct vring_desc *d, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

static void test_ring_breakers(void **state)
{
	struct fe_ring *r = &F.ring[0];
	struct vring_desc d[16];
	uint64_t cmd = fe_alloc(&F, 1, 4096, 0), rsp = fe_alloc(&F, 1, 4096, 0);

	(void)state;
	hdr_init(fe_ptr(&F, cmd), VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
	memset(d, 0, sizeof(d));
	/* Loops: to itself, between two, back to the head after 15. */
	set_desc(&d[0], cmd, 24, VRING_DESC_F_NEXT, 0);
	expect_broken(d, 1, 0);
	set_desc(&d[0], cmd, 24, VRING_DESC_F_NEXT, 1);
	set_desc(&d[1], cmd, 24, VRING_DESC_F_NEXT, 0);
	expect_broken(d, 2, 0);
	for (uint16_t i = 0; i < 16; i++)
		set_desc(&d[i], cmd, 1, VRING_DESC_F_NEXT, (uint16_t)((i + 1) % 16));
	expect_broken(d, 16, 0);
	/* Writable loop. */
	set_desc(&d[0], cmd, 24, VRING_DESC_F_NEXT, 1);
	set_desc(&d[1], rsp, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	expect_broken(d, 2, 0);
	/* next out of range. */
	static const uint16_t bad_next[] = { 16, 17, 255, 0x8000, 0xffff };
	for (size_t i = 0; i < sizeof(bad_next) / sizeof(bad_next[0]); i++) {
		set_desc(&d[0], cmd, 24, VRING_DESC_F_NEXT, bad_next[i]);
		expect_broken(d, 1, 0);
	}
	/* Head index out of range. */
	static const uint16_t bad_head[] = { 16, 100, 0x7fff, 0xffff };
	for (size_t i = 0; i < sizeof(bad_head) / sizeof(bad_head[0]); i++) {
		set_desc(&d[0], cmd, 24, 0, 0);
		expect_broken(d, 1, bad_head[i]);
	}
	/* avail idx more than the ring size ahead. */
	static const uint16_t ahead[] = { 17, 18, 100, 0x8000, 0xffff };
	for (size_t i = 0; i < sizeof(ahead) / sizeof(ahead[0]); i++) {
		uint16_t u = r->used->idx;

		__atomic_store_n(&r->avail->idx, (uint16_t)(r->avail_idx + ahead[i]),
				 __ATOMIC_RELEASE);
		fe_kick(&F, 0);
		assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(u + 1), 100), -1);
		ring_reset(&F);
		assert_alive(&F);
		cases++;
	}
	/* Exactly the ring size ahead is legal: 16 requests at once. */
	{
		struct virtio_gpu_ctrl_hdr h;

		hdr_init(&h, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
		for (int i = 0; i < 16; i++)
			fe_post(&F, 0, &h, sizeof(h), 0, 1);
		fe_kick(&F, 0);
		assert_int_equal(fe_wait_used(&F, 0, r->avail_idx, 3000), 0);
	}
	/* The longest legal chain: 16 descriptors. */
	{
		uint32_t id, len;
		uint16_t u = (uint16_t)(r->avail_idx + 1);

		for (uint16_t i = 0; i < 15; i++)
			set_desc(&d[i], cmd + (i ? 24 + i : 0), i ? 1 : 24, VRING_DESC_F_NEXT,
				 (uint16_t)(i + 1));
		set_desc(&d[15], rsp, 512, VRING_DESC_F_WRITE, 0);
		fe_post_raw(&F, 0, d, 16);
		fe_kick(&F, 0);
		assert_int_equal(fe_wait_used(&F, 0, u, 3000), 0);
		fe_used_elem(&F, 0, (uint16_t)(u - 1), &id, &len);
		assert_int_equal(len, sizeof(struct virtio_gpu_resp_display_info));
	}
}

static void test_bad_descriptors(void **state)
{
	static const struct { uint64_t addr; uint32_t len; } bad[] = {
		{ 0, 24 }, { FE_HOLE, 24 }, { FE_R0 - 8, 24 }, { 0x3ffff0, 32 },
		{ 0x5ffff0, 32 }, { 0x60000000, 24 }, { UINT64_MAX - 7, 24 },
		{ UINT64_MAX, 0xffffffffu }, { FE_R1, 0xffffffffu }, { FE_R2, 0x200000 },
	};
	uint64_t cmd = fe_alloc(&F, 1, 4096, 0), rsp = fe_alloc(&F, 1, 4096, 0);
	struct vring_desc d[3];

	(void)state;
	hdr_init(fe_ptr(&F, cmd), VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(d, 0, sizeof(d));
		/* A readable buffer outside RAM. */
		set_desc(&d[0], bad[i].addr, bad[i].len, VRING_DESC_F_NEXT, 1);
		set_desc(&d[1], rsp, 512, VRING_DESC_F_WRITE, 0);
		memset(fe_ptr(&F, rsp), 0xab, 512);
		expect_len0(d, 2);
		assert_int_equal(((uint8_t *)fe_ptr(&F, rsp))[0], 0xab);
		/* The second readable part outside RAM. */
		set_desc(&d[0], cmd, 8, VRING_DESC_F_NEXT, 1);
		set_desc(&d[1], bad[i].addr, bad[i].len, VRING_DESC_F_NEXT, 2);
		set_desc(&d[2], rsp, 512, VRING_DESC_F_WRITE, 0);
		expect_len0(d, 3);
		/* The response buffer outside RAM. */
		set_desc(&d[0], cmd, 24, VRING_DESC_F_NEXT, 1);
		set_desc(&d[1], bad[i].addr, bad[i].len, VRING_DESC_F_WRITE, 0);
		expect_len0(d, 2);
	}
	/* Indirect; readable after writable; indirect pointing anywhere. */
	set_desc(&d[0], cmd, 24, VRING_DESC_F_INDIRECT, 0);
	expect_len0(d, 1);
	set_desc(&d[0], UINT64_MAX, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	set_desc(&d[1], rsp, 512, VRING_DESC_F_WRITE, 0);
	expect_len0(d, 2);
	set_desc(&d[0], rsp, 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(&d[1], cmd, 24, 0, 0);
	expect_len0(d, 2);
	/* Legal but useless chains: answered, nothing bad. */
	{
		uint32_t id, len;
		uint16_t u;

		/* Only a writable buffer: no command at all -> ERR_UNSPEC. */
		set_desc(&d[0], rsp, 512, VRING_DESC_F_WRITE, 0);
		u = (uint16_t)(F.ring[0].avail_idx + 1);
		fe_post_raw(&F, 0, d, 1);
		fe_kick(&F, 0);
		assert_int_equal(fe_wait_used(&F, 0, u, 3000), 0);
		fe_used_elem(&F, 0, (uint16_t)(u - 1), &id, &len);
		assert_int_equal(len, 24);
		assert_int_equal(((struct virtio_gpu_ctrl_hdr *)fe_ptr(&F, rsp))->type,
				 VIRTIO_GPU_RESP_ERR_UNSPEC);
		/* A response buffer too small for DISPLAY_INFO: a bare
		 * ERR_UNSPEC header; too small for a header: nothing. */
		set_desc(&d[0], cmd, 24, VRING_DESC_F_NEXT, 1);
		set_desc(&d[1], rsp, 24, VRING_DESC_F_WRITE, 0);
		u++;
		fe_post_raw(&F, 0, d, 2);
		fe_kick(&F, 0);
		assert_int_equal(fe_wait_used(&F, 0, u, 3000), 0);
		fe_used_elem(&F, 0, (uint16_t)(u - 1), &id, &len);
		assert_int_equal(len, 24);
		assert_int_equal(((struct virtio_gpu_ctrl_hdr *)fe_ptr(&F, rsp))->type,
				 VIRTIO_GPU_RESP_ERR_UNSPEC);
		set_desc(&d[1], rsp, 23, VRING_DESC_F_WRITE, 0);
		memset(fe_ptr(&F, rsp), 0xcd, 64);
		u++;
		fe_post_raw(&F, 0, d, 2);
		fe_kick(&F, 0);
		assert_int_equal(fe_wait_used(&F, 0, u, 3000), 0);
		fe_used_elem(&F, 0, (uint16_t)(u - 1), &id, &len);
		assert_int_equal(len, 0);
		assert_int_equal(((uint8_t *)fe_ptr(&F, rsp))[0], 0xcd);
		cases += 3;
	}
	assert_alive(&F);
}

/* ==== 6. vhost-user messages ==== */

struct vu_size_case {
	uint32_t req;
	uint32_t min, max;
	bool replies;
};

static const struct vu_size_case vu_sizes[] = {
	{ VU_GET_FEATURES, 0, 8, true },
	{ VU_SET_FEATURES, 8, 8, false },
	{ VU_SET_OWNER, 0, 8, false },
	{ VU_RESET_OWNER, 0, 8, false },
	{ VU_SET_MEM_TABLE, 8, 8 + 8 * 32, false },
	{ VU_SET_VRING_NUM, 8, 8, false },
	{ VU_SET_VRING_ADDR, 40, 40, false },
	{ VU_SET_VRING_BASE, 8, 8, false },
	{ VU_GET_VRING_BASE, 8, 8, true },
	{ VU_SET_VRING_KICK, 8, 8, false },
	{ VU_SET_VRING_CALL, 8, 8, false },
	{ VU_SET_VRING_ERR, 8, 8, false },
	{ VU_GET_PROTOCOL_FEATURES, 0, 8, true },
	{ VU_SET_PROTOCOL_FEATURES, 8, 8, false },
	{ VU_GET_QUEUE_NUM, 0, 8, true },
	{ VU_SET_VRING_ENABLE, 8, 8, false },
	{ VU_SET_BACKEND_REQ_FD, 0, 8, false },
	{ VU_GET_CONFIG, 12, 12 + 256, true },
	{ VU_SET_CONFIG, 12, 12 + 256, false },
	{ VU_RESET_DEVICE, 0, 8, false },
	{ VU_SET_STATUS, 8, 8, false },
	{ VU_GET_STATUS, 0, 8, true },
};

/* Wrong payload sizes: a message without a reply of its own gets a NACK
 * (NEED_REPLY set) and the connection goes on; one with its own reply ends
 * the connection, since the front-end waits for an answer of a shape the
 * device cannot give. */
static void test_vu_wrong_sizes(void **state)
{
	uint8_t junk[4096];

	(void)state;
	memset(junk, 0, sizeof(junk));
	for (size_t i = 0; i < sizeof(vu_sizes) / sizeof(vu_sizes[0]); i++) {
		const struct vu_size_case *c = &vu_sizes[i];
		uint32_t sizes[4];
		unsigned ns = 0;

		if (c->min)
			sizes[ns++] = c->min - 1;
		if (c->min > 4)
			sizes[ns++] = 1;
		sizes[ns++] = c->max + 1;
		sizes[ns++] = 4096;
		for (unsigned s = 0; s < ns; s++) {
			if (c->replies) {
				struct fe g;

				assert_int_equal(fe_send(&F, c->req, VU_VERSION, junk, sizes[s],
							 NULL, 0), 0);
				assert_true(device_exited(&F, 3000));
				fe_stop(&F);
				fe_start(&F, NULL);
				(void)g;
			} else {
				assert_int_equal(fe_ack(&F, c->req, junk, sizes[s], NULL, 0), 1);
				/* Without NEED_REPLY the message cannot be refused: the
				 * connection ends. */
				assert_int_equal(fe_send(&F, c->req, VU_VERSION, junk, sizes[s],
							 NULL, 0), 0);
				assert_true(device_exited(&F, 3000));
				fe_stop(&F);
				fe_start(&F, NULL);
				cases++;
			}
			cases++;
		}
	}
	assert_alive(&F);
}

static void test_vu_fds(void **state)
{
	int efd = eventfd(0, EFD_CLOEXEC), many[16];
	uint8_t mt[8 + 32];
	struct vu_mem_region r = { FE_R1, 0x1000, FE_R1 + FE_QVA_BIAS, 0x100000 };
	uint64_t v;

	(void)state;
	assert_true(efd >= 0);
	for (int i = 0; i < 16; i++)
		many[i] = efd;
	memset(mt, 0, sizeof(mt));
	mt[0] = 1;
	memcpy(mt + 8, &r, sizeof(r));
	/* Missing fds. */
	assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, sizeof(mt), NULL, 0), 1);
	for (uint32_t req = VU_SET_VRING_KICK; req <= VU_SET_VRING_ERR; req++) {
		v = 0;
		assert_int_equal(fe_ack(&F, req, &v, 8, NULL, 0), 1);
		/* "No fd" bit with an fd anyway. */
		v = VU_VRING_NOFD_MASK;
		assert_int_equal(fe_ack(&F, req, &v, 8, &efd, 1), 1);
		/* Two fds. */
		v = 0;
		assert_int_equal(fe_ack(&F, req, &v, 8, many, 2), 1);
		cases += 3;
	}
	assert_int_equal(fe_ack(&F, VU_SET_BACKEND_REQ_FD, NULL, 0, NULL, 0), 1);
	assert_int_equal(fe_ack(&F, VU_SET_BACKEND_REQ_FD, NULL, 0, many, 2), 1);
	/* Extra fds. */
	assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, sizeof(mt), many, 2), 1);
	assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, sizeof(mt), many, 8), 1);
	v = 0;
	assert_int_equal(fe_ack(&F, VU_SET_FEATURES, &v, 8, &efd, 1), 1);
	assert_int_equal(fe_ack(&F, VU_SET_VRING_NUM, &v, 8, many, 3), 1);
	assert_int_equal(fe_ack(&F, VU_SET_OWNER, NULL, 0, many, 8), 1);
	cases += 7;
	/* Kick/call fds that are not event sources: a regular file, a
	 * directory, a character device. */
	{
		int bad[3];

		bad[0] = F.memfd;
		bad[1] = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		bad[2] = open("/dev/zero", O_RDONLY | O_CLOEXEC);
		assert_true(bad[1] >= 0 && bad[2] >= 0);
		for (int i = 0; i < 3; i++) {
			for (uint32_t req = VU_SET_VRING_KICK; req <= VU_SET_VRING_ERR; req++) {
				v = 0;
				assert_int_equal(fe_ack(&F, req, &v, 8, &bad[i], 1), 1);
				cases++;
			}
		}
		close(bad[1]);
		close(bad[2]);
	}
	assert_alive(&F);
	/* A message that replies, with an fd: the connection ends. */
	assert_int_equal(fe_send(&F, VU_GET_FEATURES, VU_VERSION, NULL, 0, &efd, 1), 0);
	assert_true(device_exited(&F, 3000));
	fe_stop(&F);
	fe_start(&F, NULL);
	/* More fds than a message may carry (8): the connection ends. */
	assert_int_equal(fe_send(&F, VU_SET_MEM_TABLE, VU_VERSION | VU_FLAG_NEED_REPLY, mt,
				 sizeof(mt), many, 16), 0);
	assert_true(device_exited(&F, 3000));
	fe_stop(&F);
	fe_start(&F, NULL);
	cases += 2;
	close(efd);
	assert_alive(&F);
}

static void test_vu_unknown_and_framing(void **state)
{
	static const uint32_t unknown[] = { 0, 6, 7, 19, 20, 22, 23, 26, 27, 32, 37, 38, 41,
					    100, 1000, 0x80000000u, 0xffffffffu };
	static const uint32_t bad_flags[] = { 0, 2, 3, VU_FLAG_REPLY, 0xfffffff0u };
	uint64_t v = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		/* With NEED_REPLY: a NACK; the connection goes on. */
		assert_int_equal(fe_ack(&F, unknown[i], &v, 8, NULL, 0), 1);
		cases++;
	}
	assert_alive(&F);
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		/* Without: the connection ends. */
		assert_int_equal(fe_send(&F, unknown[i], VU_VERSION, &v, 8, NULL, 0), 0);
		assert_true(device_exited(&F, 3000));
		fe_stop(&F);
		fe_start(&F, NULL);
		cases++;
	}
	for (size_t i = 0; i < sizeof(bad_flags) / sizeof(bad_flags[0]); i++) {
		assert_int_equal(fe_send(&F, VU_GET_FEATURES, bad_flags[i], NULL, 0, NULL, 0), 0);
		assert_true(device_exited(&F, 3000));
		fe_stop(&F);
		fe_start(&F, NULL);
		cases++;
	}
	/* A header cut short, a payload cut short, then end of stream. */
	{
		static const unsigned cut[] = { 1, 4, 11 };

		for (size_t i = 0; i < 3; i++) {
			uint32_t h[3] = { VU_SET_FEATURES, VU_VERSION, 8 };

			assert_int_equal(write(F.sock, h, cut[i]), (ssize_t)cut[i]);
			shutdown(F.sock, SHUT_WR);
			assert_true(device_exited(&F, 3000));
			fe_stop(&F);
			fe_start(&F, NULL);
			cases++;
		}
		{
			uint32_t h[5] = { VU_SET_FEATURES, VU_VERSION, 8, 0, 0 };

			assert_int_equal(write(F.sock, h, 16), 16);
			shutdown(F.sock, SHUT_WR);
			assert_true(device_exited(&F, 3000));
			fe_stop(&F);
			fe_start(&F, NULL);
			cases++;
		}
		/* Payload size over 4 KiB, up to 2^32-1. */
		static const uint32_t huge[] = { 4097, 65536, 0x7fffffff, 0xffffffffu };

		for (size_t i = 0; i < 4; i++) {
			uint32_t h[3] = { VU_SET_MEM_TABLE, VU_VERSION | VU_FLAG_NEED_REPLY, huge[i] };

			assert_int_equal(write(F.sock, h, 12), 12);
			assert_true(device_exited(&F, 3000));
			fe_stop(&F);
			fe_start(&F, NULL);
			cases++;
		}
	}
	assert_alive(&F);
}

static void test_vu_ring_indices(void **state)
{
	static const uint32_t idx[] = { 2, 3, 255, 256, 0x10000, 0x7fffffff, 0xffffffffu };
	int efd = eventfd(0, EFD_CLOEXEC);

	(void)state;
	for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
		struct vhost_vring_state st = { idx[i], 16 };
		struct vhost_vring_addr a;
		uint32_t r, fl, sz;
		struct vhost_vring_state got;
		uint64_t v;

		assert_int_equal(fe_ack(&F, VU_SET_VRING_NUM, &st, sizeof(st), NULL, 0), 1);
		st.num = 0;
		assert_int_equal(fe_ack(&F, VU_SET_VRING_BASE, &st, sizeof(st), NULL, 0), 1);
		st.num = 1;
		assert_int_equal(fe_ack(&F, VU_SET_VRING_ENABLE, &st, sizeof(st), NULL, 0), 1);
		memset(&a, 0, sizeof(a));
		a.index = idx[i];
		a.desc_user_addr = FE_R0 + FE_QVA_BIAS;
		a.avail_user_addr = FE_R0 + FE_QVA_BIAS + 0x1000;
		a.used_user_addr = FE_R0 + FE_QVA_BIAS + 0x2000;
		assert_int_equal(fe_ack(&F, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 1);
		/* KICK/CALL/ERR carry the index in bits 0-7; other bits are junk. */
		v = idx[i];
		for (uint32_t req = VU_SET_VRING_KICK; req <= VU_SET_VRING_ERR; req++)
			assert_int_equal(fe_ack(&F, req, &v, 8, &efd, 1), 1);
		/* GET_VRING_BASE is still answered (num 0), index echoed. */
		st.index = idx[i];
		assert_int_equal(fe_send(&F, VU_GET_VRING_BASE, VU_VERSION, &st, sizeof(st),
					 NULL, 0), 0);
		assert_int_equal(fe_recv(&F, &r, &fl, &got, sizeof(got), &sz), 0);
		assert_int_equal(r, VU_GET_VRING_BASE);
		assert_int_equal(sz, sizeof(got));
		assert_int_equal(got.index, idx[i]);
		assert_int_equal(got.num, 0);
		cases += 8;
	}
	/* Ring sizes and addresses. */
	{
		static const uint32_t nums[] = { 0, 3, 24, 32769, 65536, 0xffffffffu };
		struct vhost_vring_addr a;

		for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
			struct vhost_vring_state st = { 0, nums[i] };

			assert_int_equal(fe_ack(&F, VU_SET_VRING_NUM, &st, sizeof(st), NULL, 0), 1);
			cases++;
		}
		{
			struct vhost_vring_state st = { 0, 0x10000 };

			assert_int_equal(fe_ack(&F, VU_SET_VRING_BASE, &st, sizeof(st), NULL, 0), 1);
			st.num = 2;
			assert_int_equal(fe_ack(&F, VU_SET_VRING_ENABLE, &st, sizeof(st), NULL, 0), 1);
			cases += 2;
		}
		memset(&a, 0, sizeof(a));
		a.index = 1;
		/* Misaligned desc; rings crossing the end of R0; in the hole;
		 * wrapping. */
		const uint64_t q = FE_QVA_BIAS;
		const uint64_t bad[][3] = {
			{ FE_R0 + 0x10008 + q, FE_R0 + 0x11000 + q, FE_R0 + 0x12000 + q },
			{ FE_R0 + 0x10000 + q, FE_R0 + 0x11001 + q, FE_R0 + 0x12000 + q },
			{ FE_R0 + 0x10000 + q, FE_R0 + 0x11000 + q, FE_R0 + 0x12002 + q },
			{ FE_R0 + 0xfffc0 + q, FE_R0 + 0x11000 + q, FE_R0 + 0x12000 + q },
			{ FE_R0 + 0x10000 + q, FE_R0 + 0xffffe + q, FE_R0 + 0x12000 + q },
			{ FE_R0 + 0x10000 + q, FE_R0 + 0x11000 + q, FE_R0 + 0xffff8 + q },
			{ FE_HOLE + q, FE_R0 + 0x11000 + q, FE_R0 + 0x12000 + q },
			{ FE_R0 + 0x10000, FE_R0 + 0x11000, FE_R0 + 0x12000 }, /* gpa, not qva */
			{ UINT64_MAX - 15, FE_R0 + 0x11000 + q, FE_R0 + 0x12000 + q },
			{ 0, 0, 0 },
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			a.desc_user_addr = bad[i][0];
			a.avail_user_addr = bad[i][1];
			a.used_user_addr = bad[i][2];
			assert_int_equal(fe_ack(&F, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 1);
			cases++;
		}
	}
	close(efd);
	/* Ring 1 is now unusable (bad address); ring 0 still works. */
	assert_alive(&F);
}

static void mem_table(uint8_t *mt, uint32_t n, const struct vu_mem_region *r, unsigned nr)
{
	memset(mt, 0, 8 + 8 * 32);
	memcpy(mt, &n, 4);
	memcpy(mt + 8, r, nr * sizeof(*r));
}

static void test_vu_mem_table(void **state)
{
	uint8_t mt[8 + 9 * 32];
	struct vu_mem_region r[9];
	int fds[9];
	const uint64_t q = FE_QVA_BIAS;

	(void)state;
	for (int i = 0; i < 9; i++)
		fds[i] = F.memfd;
	/* The three good regions first. */
	for (int i = 0; i < 3; i++) {
		r[i].guest_addr = F.reg[i].gpa;
		r[i].size = F.reg[i].size;
		r[i].user_addr = F.reg[i].gpa + q;
		r[i].mmap_offset = F.reg[i].off;
	}
	/* 0 regions; more than 8 (in the count, and in the payload). */
	static const uint32_t counts[] = { 0, 9, 64, 0xffffffffu };
	for (size_t i = 0; i < 4; i++) {
		mem_table(mt, counts[i], r, 3);
		assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, 8 + 8 * 32, fds, 8), 1);
		cases++;
	}
	for (int i = 3; i < 9; i++) {
		r[i].guest_addr = 0x10000000ull + (uint64_t)i * 0x100000;
		r[i].size = 0x1000;
		r[i].user_addr = r[i].guest_addr + q;
		r[i].mmap_offset = 0;
	}
	memset(mt, 0, sizeof(mt));
	mt[0] = 9;
	memcpy(mt + 8, r, sizeof(r));
	assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, sizeof(mt), fds, 8), 1);
	cases++;
	/* Count and fds disagree; payload too short for the count. */
	mem_table(mt, 3, r, 3);
	assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, 8 + 3 * 32, fds, 2), 1);
	assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, 8 + 2 * 32, fds, 3), 1);
	cases += 2;
	/* Bad regions, each as the fourth of a table whose first three are good. */
	{
		const struct vu_mem_region bad[] = {
			{ 0x10000000, 0, 0x10000000 + q, 0 },                       /* empty */
			{ FE_R1 + 0x1000, 0x1000, 0x20000000 + q, 0 },              /* gpa overlap */
			{ FE_R0 - 0x1000, 0x2000, 0x20000000 + q, 0 },              /* gpa overlap at start */
			{ 0x10000000, 0x1000, FE_R2 + 0x1000 + q, 0 },              /* qva overlap */
			{ UINT64_MAX - 0xfff, 0x2000, 0x20000000 + q, 0 },          /* gpa wraps */
			{ 0x10000000, 0x2000, UINT64_MAX - 0xfff, 0 },              /* qva wraps */
			{ 0x10000000, 0x1000, 0x20000000 + q, UINT64_MAX - 0xfff }, /* offset wraps */
			{ 0x10000000, 0x1000, 0x20000000 + q, 4u << 20 },           /* beyond the file */
			{ 0x10000000, 5u << 20, 0x20000000 + q, 0 },                /* larger than the file */
			{ 0x10000000, 1ull << 62, 0x20000000 + q, 0 },              /* enormous */
			{ 0x10000000, 0x1000, 0x20000000 + q, 1ull << 63 },         /* offset > off_t */
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			r[3] = bad[i];
			mem_table(mt, 4, r, 4);
			assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, 8 + 4 * 32, fds, 4), 1);
			cases++;
		}
		/* Two identical regions. */
		r[3] = r[2];
		mem_table(mt, 4, r, 4);
		assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, 8 + 4 * 32, fds, 4), 1);
		cases++;
	}
	/* Fds that cannot be mapped: an eventfd, a pipe, a socket; an fd
	 * opened read-only. */
	{
		int p[2], s[2], ro;
		char path[64];

		assert_int_equal(pipe(p), 0);
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", F.memfd);
		ro = open(path, O_RDONLY | O_CLOEXEC);
		assert_true(ro >= 0);
		int bad[] = { F.ring[0].kick, p[0], s[0], ro };
		for (size_t i = 0; i < 4; i++) {
			int f4[4] = { F.memfd, F.memfd, F.memfd, bad[i] };

			r[3].guest_addr = 0x10000000;
			r[3].size = 0x1000;
			r[3].user_addr = 0x10000000 + q;
			r[3].mmap_offset = 0;
			mem_table(mt, 4, r, 4);
			assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, 8 + 4 * 32, f4, 4), 1);
			cases++;
		}
		close(p[0]); close(p[1]); close(s[0]); close(s[1]); close(ro);
	}
	/* After every refusal the old table is in place. */
	assert_alive(&F);
	/* Eight good regions are accepted, and the rings still work. */
	for (int i = 3; i < 8; i++) {
		r[i].guest_addr = 0x10000000ull + (uint64_t)i * 0x100000;
		r[i].size = 0x1000;
		r[i].user_addr = r[i].guest_addr + q;
		r[i].mmap_offset = 0x300000;
	}
	mem_table(mt, 8, r, 8);
	assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, 8 + 8 * 32, fds, 8), 0);
	assert_alive(&F);
	/* A table without the rings' memory: accepted, the rings stop. */
	mem_table(mt, 1, &r[2], 1);
	assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, 8 + 32, fds, 1), 0);
	{
		struct virtio_gpu_ctrl_hdr h;
		uint16_t u = F.ring[0].used->idx;

		hdr_init(&h, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
		fe_post(&F, 0, &h, sizeof(h), 0, 1);
		fe_kick(&F, 0);
		assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(u + 1), 100), -1);
	}
	cases++;
}

/* ==== 7. randomized mutations of valid command streams ==== */

static uint64_t rng_state;

static uint32_t rnd(void)
{
	/* xorshift64*: deterministic for a given seed. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

#define MUT_IDS 16
#define MUT_ROUNDS 3000

static bool valid_resp(uint32_t t)
{
	return (t >= VIRTIO_GPU_RESP_OK_NODATA && t <= VIRTIO_GPU_RESP_OK_CAPSET) ||
	       (t >= VIRTIO_GPU_RESP_ERR_UNSPEC && t <= VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
}

/* One valid command of a random kind, on ids 1..MUT_IDS. */
static size_t gen_cmd(uint8_t *b, uint64_t pool, bool *is_blob, bool *is_unref)
{
	uint32_t id = 1 + rnd() % MUT_IDS, ctx = 1 + rnd() % 4;
	size_t len;

	*is_blob = *is_unref = false;
	switch (rnd() % 10) {
	case 0: {
		struct virtio_gpu_ctx_create *c = (void *)b;

		memset(c, 0, sizeof(*c));
		hdr_init(&c->hdr, VIRTIO_GPU_CMD_CTX_CREATE, ctx);
		c->context_init = VGPU_COMPUTE_CAPSET_ID;
		return sizeof(*c);
	}
	case 1:
		hdr_init((void *)b, VIRTIO_GPU_CMD_CTX_DESTROY, ctx);
		return 24;
	case 2: case 3: {
		struct virtio_gpu_resource_create_blob *c = (void *)b;
		uint32_t n = 1 + rnd() % 4;
		bool maybe_ro = rnd() % 2;

		memset(c, 0, sizeof(*c));
		hdr_init(&c->hdr, VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, ctx);
		c->resource_id = id;
		c->blob_mem = rnd() % 2 ? VIRTIO_GPU_BLOB_MEM_GUEST : VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST;
		/* Plain guest blobs (what a read-write userptr range is),
		 * now and then a read-only one. */
		c->blob_flags = maybe_ro && rnd() % 4 == 0 ? VIRTIO_GPU_BLOB_FLAG_RDONLY : 0;
		c->nr_entries = n;
		c->size = n * 4096ull;
		for (uint32_t i = 0; i < n; i++) {
			struct virtio_gpu_mem_entry e = { pool + (rnd() % 32) * 4096ull, 4096, 0 };

			memcpy(b + sizeof(*c) + i * sizeof(e), &e, sizeof(e));
		}
		*is_blob = true;
		return sizeof(*c) + n * sizeof(struct virtio_gpu_mem_entry);
	}
	case 4:
		len = res_cmd(b, VIRTIO_GPU_CMD_RESOURCE_UNREF);
		((struct virtio_gpu_resource_unref *)b)->resource_id = id;
		*is_unref = true;
		return len;
	case 5:
		len = ctx_res(b, rnd() % 3 ? VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE :
			      VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE);
		((struct virtio_gpu_ctx_resource *)b)->hdr.ctx_id = ctx;
		((struct virtio_gpu_ctx_resource *)b)->resource_id = id;
		return len;
	case 6: {
		struct virtio_gpu_resource_attach_backing *c = (void *)b;
		struct virtio_gpu_mem_entry e = { pool + (rnd() % 32) * 4096ull, 4096, 0 };

		if (rnd() % 2) {
			len = res_cmd(b, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING);
			((struct virtio_gpu_resource_unref *)b)->resource_id = id;
			return len;
		}
		memset(c, 0, sizeof(*c));
		hdr_init(&c->hdr, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, 0);
		c->resource_id = id;
		c->nr_entries = 1;
		memcpy(b + sizeof(*c), &e, sizeof(e));
		return sizeof(*c) + sizeof(e);
	}
	default: {
		struct virtio_gpu_cmd_submit *c = (void *)b;
		uint32_t nops = 1 + rnd() % 4;
		struct vgpu_compute_submit s = { VGPU_COMPUTE_MAGIC, nops, rnd() % 2 ? id : 0, 0,
						 (rnd() % 16) * 8ull };

		memset(c, 0, sizeof(*c));
		hdr_init(&c->hdr, VIRTIO_GPU_CMD_SUBMIT_3D, ctx);
		c->size = (uint32_t)(sizeof(s) + nops * sizeof(struct vgpu_compute_op));
		memcpy(b + sizeof(*c), &s, sizeof(s));
		for (uint32_t i = 0; i < nops; i++) {
			uint32_t opc = 1 + rnd() % 5;
			uint32_t dst = 1 + rnd() % MUT_IDS, src = 1 + rnd() % MUT_IDS;
			uint64_t len4 = (1 + rnd() % 1024) * 4ull;
			struct vgpu_compute_op op = mkop(opc, dst, (rnd() % 64) * 4ull,
							 opc == VGPU_OP_FILL ? 0 : src,
							 opc == VGPU_OP_FILL ? 0 : (rnd() % 64) * 4ull,
							 len4, (opc == VGPU_OP_COPY ||
								opc == VGPU_OP_SUM_F32) ? 0 : rnd());

			if (opc == VGPU_OP_CHECKSUM || opc == VGPU_OP_SUM_F32)
				op.dst_off &= ~7ull;
			memcpy(b + sizeof(*c) + sizeof(s) + i * sizeof(op), &op, sizeof(op));
		}
		return sizeof(*c) + c->size;
	}
	}
}

static size_t mutate(uint8_t *b, size_t len, size_t cap)
{
	switch (rnd() % 8) {
	case 0:         /* flip bits */
		for (unsigned k = 1 + rnd() % 4; k; k--)
			b[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
		return len;
	case 1:         /* random bytes */
		for (unsigned k = 1 + rnd() % 8; k; k--)
			b[rnd() % len] = (uint8_t)rnd();
		return len;
	case 2:         /* truncate */
		return rnd() % len;
	case 3: {       /* extend with junk */
		size_t n = len + 1 + rnd() % 256;

		if (n > cap)
			n = cap;
		for (size_t i = len; i < n; i++)
			b[i] = (uint8_t)rnd();
		return n;
	}
	case 4: {       /* an interesting 32-bit value at an aligned offset */
		static const uint32_t v[] = { 0, 1, 0x7fffffff, 0x80000000u, 0xffffffffu,
					      0xfffff000u, 4096, 65536, GPU_CMD_MAX_ENTRIES + 1 };
		size_t off = (rnd() % (len / 4)) * 4;

		memcpy(b + off, &v[rnd() % 9], 4);
		return len;
	}
	case 5: {       /* an interesting 64-bit value */
		static const uint64_t v[] = { 0, UINT64_MAX, 1ull << 63, FE_HOLE, 0x3ff000,
					      UINT64_MAX - 0xfff, 0x5ff000 };
		size_t off = (rnd() % (len / 8)) * 8;

		memcpy(b + off, &v[rnd() % 7], 8);
		return len;
	}
	default:        /* unchanged: keep some state building up */
		return len;
	}
}

static void test_random_mutations(void **state)
{
	uint64_t pool = fe_alloc(&F, 2, 32 * 4096, 0);
	static uint8_t b[4096 + 512];
	unsigned nerr = 0, nok = 0;

	(void)state;
	rng_state = 0x9e3779b97f4a7c15ull;
	for (unsigned round = 0; round < MUT_ROUNDS; round++) {
		uint8_t resp[GPU_RESP_MAX];
		struct virtio_gpu_ctrl_hdr h;
		bool is_blob, is_unref;
		size_t len = gen_cmd(b, pool, &is_blob, &is_unref);
		unsigned split;
		int r;

		len = mutate(b, len, sizeof(b));
		split = len >= 3 ? 1 + rnd() % 3 : 1;
		r = fe_cmd(&F, 0, b, len, resp, sizeof(resp), split);
		/* Every command is answered with a header and a known code. */
		assert_true(r >= (int)sizeof(h));
		memcpy(&h, resp, sizeof(h));
		assert_true(valid_resp(h.type));
		if (h.type >= VIRTIO_GPU_RESP_ERR_UNSPEC) {
			assert_int_equal(r, (int)sizeof(h));
			nerr++;
		} else {
			nok++;
		}
		/* The counters agree with the device's own tables. */
		assert_int_equal(STAT_GET(resources), gpu_device_resource_count(F.gpu));
		assert_int_equal(STAT_GET(contexts), gpu_device_context_count(F.gpu));
		cases++;
	}
	printf("# mutations: %u commands, %u ok, %u errors\n", MUT_ROUNDS, nok, nerr);
	assert_true(nok > MUT_ROUNDS / 10);
	assert_true(nerr > MUT_ROUNDS / 10);
	/* Clean up through the protocol: every id goes away. */
	for (uint32_t id = 1; id <= MUT_IDS; id++)
		cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, id);
	for (uint32_t id = 1; id <= 4; id++)
		cmd_ctx_destroy(&F, id);
	/* Mutated ids may have created anything in the 32-bit space:
	 * what is left goes with the connection (checked in teardown). */
	assert_alive(&F);
}

/* ==== 8. faults: disconnect during work, silence ==== */

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_disconnect_during_submit(void **state)
{
	const uint32_t big = 0x100000;
	struct vgpu_compute_op ops[VGPU_COMPUTE_MAX_OPS];
	uint8_t buf[sizeof(struct virtio_gpu_cmd_submit) + sizeof(struct vgpu_compute_submit) +
		    sizeof(ops)];
	struct virtio_gpu_cmd_submit *c = (void *)buf;
	struct vgpu_compute_submit s = { VGPU_COMPUTE_MAGIC, VGPU_COMPUTE_MAX_OPS, 0, 0, 0 };
	uint64_t saxpy0;
	double t0;

	(void)state;
	assert_int_equal(cmd_ctx_create(&F, 1, 0), VIRTIO_GPU_RESP_OK_NODATA);
	assert_true(simple_blob(&F, 1, 1, 0, 2, big) != 0);
	assert_true(simple_blob(&F, 1, 2, 0, 2, big / 2) != 0);
	assert_int_equal(cmd_attach(&F, 1, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, 2), VIRTIO_GPU_RESP_OK_NODATA);
	/* 256 ops over 1 MiB each: long enough to be in flight. */
	for (unsigned i = 0; i < VGPU_COMPUTE_MAX_OPS; i++)
		ops[i] = i % 2 ? mkop(VGPU_OP_SAXPY, 1, 0, 1, 0, big, 0x3f800000)
			       : mkop(VGPU_OP_CHECKSUM, 2, 0, 1, 0, big, i);
	memset(buf, 0, sizeof(buf));
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_SUBMIT_3D, 1);
	c->hdr.flags = VIRTIO_GPU_FLAG_FENCE;
	c->hdr.fence_id = 77;
	c->size = sizeof(s) + sizeof(ops);
	memcpy(buf + sizeof(*c), &s, sizeof(s));
	memcpy(buf + sizeof(*c) + sizeof(s), ops, sizeof(ops));
	/* Three of them back to back; hang up as soon as the first started.
	 * The device finishes the submit in progress and starts no other
	 * (two at most, should the first end just before the hang-up). */
	saxpy0 = STAT_GET(op_count[VGPU_OP_SAXPY]);
	for (int i = 0; i < 3; i++)
		fe_post(&F, 0, buf, sizeof(buf), 24, 2);
	fe_kick(&F, 0);
	for (int i = 0; i < 1000 && STAT_GET(op_count[VGPU_OP_SAXPY]) == saxpy0; i++)
		usleep(1000);
	t0 = now();
	fe_stop(&F);
	printf("# disconnect with a submit in flight: everything freed %.3f s later\n",
	       now() - t0);
	printf("# SAXPY ops run: %llu of %u queued\n",
	       (unsigned long long)(STAT_GET(op_count[VGPU_OP_SAXPY]) - saxpy0),
	       3 * VGPU_COMPUTE_MAX_OPS / 2);
	assert_true(STAT_GET(op_count[VGPU_OP_SAXPY]) - saxpy0 <= VGPU_COMPUTE_MAX_OPS);
	assert_all_freed();
	cases++;
	fe_start(&F, NULL);
	assert_alive(&F);
}

static void test_idle_no_busy_loop(void **state)
{
	double c0, c1;

	(void)state;
	/* A connected, configured front-end that sends nothing for 1 s. */
	c0 = cpu_seconds();
	usleep(1000000);
	c1 = cpu_seconds();
	printf("# idle 1 s: %.4f s of CPU\n", c1 - c0);
	assert_true(c1 - c0 < 0.05);
	/* A broken ring that keeps being kicked costs no CPU either. */
	__atomic_store_n(&F.ring[0].avail->idx, (uint16_t)(F.ring[0].avail_idx + 100),
			 __ATOMIC_RELEASE);
	fe_kick(&F, 0);
	usleep(50000);
	c0 = cpu_seconds();
	for (int i = 0; i < 20; i++) {
		fe_kick(&F, 0);
		usleep(25000);
	}
	c1 = cpu_seconds();
	printf("# broken ring kicked 20 times in 0.5 s: %.4f s of CPU\n", c1 - c0);
	assert_true(c1 - c0 < 0.05);
	cases += 2;
}

/* Kick fds that would wake the queue thread forever: a pipe whose writer
 * has gone (POLLHUP), a socket whose peer has gone, a socket that delivers
 * zero counts. The device drops the kick, stops the ring, and idles. */
static void test_kick_fd_hangup(void **state)
{
	(void)state;
	for (int k = 0; k < 3; k++) {
		int p[2];
		uint64_t v = 0;
		double c0, c1;

		if (k == 0)
			assert_int_equal(pipe(p), 0);
		else
			assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
		assert_int_equal(fe_ack(&F, VU_SET_VRING_KICK, &v, 8, &p[0], 1), 0);
		if (k == 2) {
			uint8_t zero[64] = { 0 };

			assert_int_equal(write(p[1], zero, sizeof(zero)), (ssize_t)sizeof(zero));
		} else {
			close(p[1]);
			p[1] = -1;
		}
		usleep(100000);
		c0 = cpu_seconds();
		usleep(500000);
		c1 = cpu_seconds();
		printf("# kick fd case %d: %.4f s of CPU in 0.5 s\n", k, c1 - c0);
		assert_true(c1 - c0 < 0.05);
		close(p[0]);
		if (p[1] >= 0)
			close(p[1]);
		/* A proper kick brings the ring back. */
		assert_int_equal(fe_ack(&F, VU_SET_VRING_KICK, &v, 8, &F.ring[0].kick, 1), 0);
		assert_alive(&F);
		cases++;
	}
}

/* A call fd nobody reads (a full pipe) never blocks the device. */
static void test_call_fd_full(void **state)
{
	int p[2];
	uint64_t v = 0;
	char junk[4096];

	(void)state;
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	memset(junk, 1, sizeof(junk));
	while (write(p[1], junk, sizeof(junk)) > 0)
		;
	assert_int_equal(fcntl(p[1], F_SETFL, 0), 0);   /* blocking again */
	assert_int_equal(fe_ack(&F, VU_SET_VRING_CALL, &v, 8, &p[1], 1), 0);
	for (int i = 0; i < 50; i++) {
		struct virtio_gpu_ctrl_hdr h;
		uint16_t u = (uint16_t)(F.ring[0].avail_idx + 1);

		hdr_init(&h, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
		fe_post(&F, 0, &h, sizeof(h), 0, 1);
		fe_kick(&F, 0);
		for (int w = 0; w < 300 && F.ring[0].used->idx != u; w++)
			usleep(1000);
		assert_int_equal(F.ring[0].used->idx, u);
	}
	/* The socket thread is not stuck behind the queue thread. */
	assert_int_equal(fe_ack(&F, VU_SET_VRING_CALL, &v, 8, &F.ring[0].call, 1), 0);
	close(p[0]);
	close(p[1]);
	assert_alive(&F);
	cases++;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_truncated_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gather_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overlapping_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rdonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_breakers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_descriptors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vu_wrong_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vu_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vu_unknown_and_framing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vu_ring_indices, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vu_mem_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_mutations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disconnect_during_submit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_no_busy_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kick_fd_hangup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_fd_full, setup, teardown),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("hostile", tests, NULL, NULL);
}
