/* SPDX-License-Identifier: MIT */
/*
 * test_opencl.c - the OpenCL backend itself, through the device with real
 * rings. argv[1] is zero-copy (the device as it is: PoCL's CPU device
 * passes the zero-copy gate) or copying (the gate made to fail with
 * VIRTGPU_HOSTD_CL_GATE=fail, so that the copying path runs):
 *   - the gate's answer everywhere it is reported: the log at start, the
 *     statistics (cl_zero_copy, cl_copied_bytes), engine_zero_copy();
 *   - one buffer per window: many ops over one window make one, a window
 *     rebuilt on a new memory table gets a new one, a window closed
 *     releases its own, and every op's result is right on either path;
 *   - rings at the same time: a long op on one ring does not delay a
 *     short op on another;
 *   - the ring threads' queues and kernels go with the threads.
 */
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

#include "engine_backend.h"
#include "helpers.h"
#include "stats.h"
#include "window.h"

#define PG 4096u
static struct fe F;
static bool copying;
static char start_log[8192];

/* A guest blob (what a userptr range is on the wire) of n pages of
 * region 1 in reverse order with gaps: every page its own mapping in the
 * window. */
struct res {
	uint32_t id;
	uint32_t n;
	uint64_t gpa[16];
};

static void res_make(struct res *r, uint32_t id, uint32_t n)
{
	struct virtio_gpu_mem_entry e[16];

	assert_true(n <= 16);
	r->id = id;
	r->n = n;
	for (uint32_t i = 0; i < n; i++) {
		r->gpa[n - 1 - i] = fe_alloc(&F, 1, 2 * PG, 0);
		e[n - 1 - i] = (struct virtio_gpu_mem_entry){ r->gpa[n - 1 - i], PG, 0 };
	}
	assert_int_equal(cmd_blob(&F, 1, id, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST,
				  0, (uint64_t)n * PG, e, n),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, id), VIRTIO_GPU_RESP_OK_NODATA);
}

static void res_io(struct res *r, uint64_t off, void *buf, uint64_t len, int write)
{
	uint8_t *b = buf;

	while (len) {
		uint64_t k = PG - off % PG;
		uint8_t *p = (uint8_t *)fe_ptr(&F, r->gpa[off / PG]) + off % PG;

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

static struct res X, Y, ST;

static struct vgpu_compute_status status(void)
{
	struct vgpu_compute_status s;

	res_io(&ST, 0, &s, sizeof(s), 0);
	return s;
}

/* fe_start with what the device logs meanwhile kept in start_log. */
static void start_logged(void)
{
	int saved = dup(2), fd = memfd_create("log", MFD_CLOEXEC);
	ssize_t n;

	assert_true(saved >= 0 && fd >= 0);
	fflush(stderr);
	assert_int_equal(dup2(fd, 2), 2);
	fe_start(&F, &(struct fe_opts){ .backend = VGPU_BACKEND_OPENCL, .threads = 2,
					.ctrl_num = 256 });
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	n = pread(fd, start_log, sizeof(start_log) - 1, 0);
	start_log[n > 0 ? n : 0] = '\0';
	close(fd);
	fputs(start_log, stderr);
}

static int setup(void **state)
{
	(void)state;
	start_logged();
	assert_int_equal(engine_backend_id(F.eng), VGPU_BACKEND_OPENCL);
	assert_int_equal(cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	res_make(&X, 1, 8);
	res_make(&Y, 2, 8);
	res_make(&ST, 3, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fe_stop(&F);
	return 0;
}

/* The statistics as SIGUSR1 prints them. */
static char *stats_text(void)
{
	static char text[8192];
	FILE *f = fmemopen(text, sizeof(text) - 1, "w");

	assert_non_null(f);
	stats_print(f);
	fclose(f);
	return text;
}

static void test_gate_reported(void **state)
{
	(void)state;
	assert_int_equal(engine_zero_copy(F.eng), !copying);
	assert_int_equal(STAT_GET(cl_zero_copy), copying ? HOSTD_CL_COPYING : HOSTD_CL_ZERO_COPY);
	if (copying) {
		assert_non_null(strstr(start_log, "OpenCL: zero-copy gate failed: made to fail"));
		assert_non_null(strstr(start_log, "treated as copying"));
		assert_non_null(strstr(stats_text(), "\n  cl_zero_copy     no\n"));
	} else {
		assert_non_null(strstr(start_log, "OpenCL: zero-copy gate passed"));
		assert_non_null(strstr(stats_text(), "\n  cl_zero_copy     yes\n"));
	}
}

/* FILL X, COPY X -> Y, CHECKSUM Y -> ST, SAXPY Y += 2 X, in one submit:
 * every result right; what the copying path moved counted exactly. */
static void ops_round(uint32_t round)
{
	struct vgpu_compute_op ops[4];
	uint8_t want[8 * PG], got[8 * PG];
	float x[64], y[64], a = 2.0f;
	uint32_t abits, v = 0x01020304u * (round + 1);
	uint64_t h, copied0 = STAT_GET(cl_copied_bytes);

	memcpy(&abits, &a, 4);
	ops[0] = mkop(VGPU_OP_FILL, 1, 4, 0, 0, 8 * PG - 4, v);
	ops[1] = mkop(VGPU_OP_COPY, 2, 0, 1, 4, 4 * PG, 0);
	ops[2] = mkop(VGPU_OP_CHECKSUM, 3, 64, 2, 0, 4 * PG, round);
	ops[3] = mkop(VGPU_OP_SAXPY, 2, 4 * PG, 1, 4, sizeof(x), abits);
	res_io(&Y, 4 * PG, y, sizeof(y), 0);
	assert_int_equal(cmd_submit(&F, 1, 3, 0, ops, 4), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(status().result, VGPU_COMPUTE_OK);
	for (unsigned i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)(v >> (8 * (i % 4)));
	res_io(&X, 4, got, 8 * PG - 4, 0);
	assert_memory_equal(got, want, 8 * PG - 4);
	res_io(&Y, 0, got, 4 * PG, 0);
	assert_memory_equal(got, want, 4 * PG);
	res_io(&ST, 64, &h, 8, 0);
	assert_int_equal(h, XXH64(want, 4 * PG, round));
	memcpy(x, want, sizeof(x));
	for (int i = 0; i < 64; i++) {
		volatile float t = a * x[i];    /* no contraction, as the device */
		float r = t + y[i], g;

		res_io(&Y, 4 * PG + 4 * i, &g, 4, 0);
		assert_memory_equal(&g, &r, 4);
	}
	/* In: the copy's source, the checksum's input, SAXPY's x and y;
	 * out: the fill, the copy, the checksum, SAXPY's y. */
	assert_int_equal(STAT_GET(cl_copied_bytes) - copied0,
			 copying ? (4 * PG + 4 * PG + 2 * sizeof(x)) +
				   (8 * PG - 4 + 4 * PG + 8 + sizeof(x)) : 0);
}

static void test_one_buffer_per_window(void **state)
{
	uint64_t made0 = STAT_GET(cl_buffers), live0 = STAT_GET(cl_buffers_live);

	(void)state;
	for (uint32_t r = 0; r < 20; r++)
		ops_round(r);
	/* X, Y and the status resource ST: one buffer each, for 80 ops. */
	assert_int_equal(STAT_GET(cl_buffers), made0 + 3);
	assert_int_equal(STAT_GET(cl_buffers_live), live0 + 3);
}

/* A new memory table rebuilds every window: the old buffers go with the
 * old mappings, and the next ops make new ones over the new mappings. */
static void test_new_table_new_buffer(void **state)
{
	uint64_t made0 = STAT_GET(cl_buffers), live0 = STAT_GET(cl_buffers_live);

	(void)state;
	fe_set_mem_table(&F);
	assert_int_equal(STAT_GET(cl_buffers_live), live0 - 3);
	ops_round(100);
	assert_int_equal(STAT_GET(cl_buffers), made0 + 3);
	assert_int_equal(STAT_GET(cl_buffers_live), live0);
	ops_round(101);
	assert_int_equal(STAT_GET(cl_buffers), made0 + 3);
}

/* A closed window (UNREF: its backing's last reference) releases its own
 * buffer and no other. */
static void test_closed_window_releases(void **state)
{
	struct res Z;
	struct vgpu_compute_op op;
	uint64_t live0;

	(void)state;
	res_make(&Z, 4, 2);
	op = mkop(VGPU_OP_FILL, 4, 0, 0, 0, 2 * PG, 0x77777777);
	assert_int_equal(cmd_submit(&F, 1, 3, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	live0 = STAT_GET(cl_buffers_live);
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 4), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(cl_buffers_live), live0 - 1);
	ops_round(200);     /* the others' buffers are still there */
	assert_int_equal(STAT_GET(cl_buffers_live), live0 - 1);
}

/* ---- rings at the same time ---- */

#define ALIAS (128u * 1024u)
enum { R_AB = 10, R_C = 11, R_S = 12, R_STAT = 13 };
static uint64_t s_gpa, stat_gpa;

static void alias_res(uint32_t id, uint64_t gpa, uint32_t n)
{
	struct virtio_gpu_mem_entry *e = calloc(n, sizeof(*e));

	assert_non_null(e);
	for (uint32_t i = 0; i < n; i++)
		e[i] = (struct virtio_gpu_mem_entry){ gpa, ALIAS, 0 };
	assert_int_equal(cmd_blob(&F, 1, id, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST,
				  0, (uint64_t)n * ALIAS, e, n),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, id), VIRTIO_GPU_RESP_OK_NODATA);
	free(e);
}

/* Post (no kick) a fenced submit on a ring with its status record in slot. */
static uint64_t post_ring(uint8_t ring, uint64_t fence, const struct vgpu_compute_op *ops,
			  uint32_t n, uint32_t slot, uint16_t *head)
{
	struct vgpu_compute_submit s = { VGPU_COMPUTE_MAGIC, n, R_STAT, 0,
					 slot * sizeof(struct vgpu_compute_status) };
	size_t len = sizeof(struct virtio_gpu_cmd_submit) + sizeof(s) + n * sizeof(*ops);
	uint8_t *buf = calloc(1, len);
	struct virtio_gpu_cmd_submit *c = (void *)buf;
	uint64_t resp;

	assert_non_null(buf);
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_SUBMIT_3D, 1);
	c->hdr.flags = VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX;
	c->hdr.fence_id = fence;
	c->hdr.ring_idx = ring;
	c->size = (uint32_t)(sizeof(s) + n * sizeof(*ops));
	memcpy(buf + sizeof(*c), &s, sizeof(s));
	memcpy(buf + sizeof(*c) + sizeof(s), ops, n * sizeof(*ops));
	*head = (uint16_t)(F.ring[0].next_desc % F.ring[0].num);
	resp = fe_post(&F, 0, buf, len, sizeof(struct virtio_gpu_ctrl_hdr), 2);
	free(buf);
	return resp;
}

static uint32_t resp_type(uint64_t resp)
{
	struct virtio_gpu_ctrl_hdr h;

	memcpy(&h, fe_ptr(&F, resp), sizeof(h));
	return h.type;
}

/*
 * Four SGEMMs of 512 x 256 x 2048 in one submit (each from a tenth of a
 * second to seconds on PoCL's CPU device, in many launches) on ring 0,
 * then short FILLs on rings 1 and 2: they are answered while the SGEMMs
 * still run (each waits for a launch or two of them on PoCL's threads). Before each thread had
 * its own queue, one mutex made them wait for the whole op.
 */
static void test_rings_concurrent(void **state)
{
	struct vgpu_compute_op lop = mkop(VGPU_OP_SGEMM, R_C, 0, R_AB, 0, 512ull * 2048 * 4,
					  512 | (uint64_t)256 << 32);
	struct vgpu_compute_op sop[2] = { mkop(VGPU_OP_FILL, R_S, 0, 0, 0, 64, 0x5157),
					  mkop(VGPU_OP_FILL, R_S, 64, 0, 0, 64, 0x5158) };
	uint64_t lresp, sresp[2], t0, t_short, t_long;
	uint16_t base, lhead, shead[2];
	struct vgpu_compute_status st[3];
	struct vgpu_compute_op lops[4];

	(void)state;
	lop.arg1 = 2048;                          /* K */
	for (unsigned k = 0; k < 4; k++)
		lops[k] = lop;
	alias_res(R_AB, fe_alloc(&F, 1, ALIAS, 0), 80);     /* A 4 MiB, B 2 MiB */
	alias_res(R_C, fe_alloc(&F, 1, ALIAS, 0), 8);       /* C 512 KiB */
	s_gpa = simple_blob(&F, 1, R_S, 0, 1, PG);
	stat_gpa = simple_blob(&F, 1, R_STAT, 0, 1, PG);
	assert_int_not_equal(s_gpa, 0);
	assert_int_not_equal(stat_gpa, 0);
	assert_int_equal(cmd_attach(&F, 1, R_S), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, R_STAT), VIRTIO_GPU_RESP_OK_NODATA);
	/*
	 * Rings 1 and 2 run a FILL first: their threads' queues and kernels
	 * are built then (a PoCL build takes as long as the SGEMM here), so
	 * that what is measured below is the wait behind ring 0 alone.
	 */
	base = F.ring[0].avail_idx;
	sresp[0] = post_ring(1, 498, &sop[0], 1, 1, &shead[0]);
	sresp[1] = post_ring(2, 499, &sop[1], 1, 2, &shead[1]);
	fe_kick(&F, 0);
	assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(base + 2), 60000), 0);
	assert_int_equal(resp_type(sresp[0]), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(resp_type(sresp[1]), VIRTIO_GPU_RESP_OK_NODATA);
	memset(fe_ptr(&F, s_gpa), 0, 128);
	memset(fe_ptr(&F, stat_gpa), 0xcc, PG);
	base = F.ring[0].avail_idx;
	lresp = post_ring(0, 500, lops, 4, 0, &lhead);
	t0 = vop_now_ns();
	fe_kick(&F, 0);
	usleep(100 * 1000);         /* the SGEMM runs */
	sresp[0] = post_ring(1, 501, &sop[0], 1, 1, &shead[0]);
	sresp[1] = post_ring(2, 502, &sop[1], 1, 2, &shead[1]);
	fe_kick(&F, 0);
	assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(base + 2), 60000), 0);
	t_short = vop_now_ns() - t0;
	/* Both short ones first, while the long one is still unanswered. */
	for (unsigned k = 0; k < 2; k++) {
		uint32_t id, len;

		fe_used_elem(&F, 0, (uint16_t)(base + k), &id, &len);
		assert_true(id == shead[0] || id == shead[1]);
	}
	assert_int_equal(resp_type(lresp), 0xeeeeeeeeu);
	assert_int_equal(resp_type(sresp[0]), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(resp_type(sresp[1]), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(*(uint32_t *)fe_ptr(&F, s_gpa), 0x5157);
	assert_int_equal(*(uint32_t *)fe_ptr(&F, s_gpa + 64), 0x5158);
	assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(base + 3), 120000), 0);
	t_long = vop_now_ns() - t0;
	printf("# short ops answered after %.0f ms, the long one after %.0f ms\n",
	       (double)t_short / 1e6, (double)t_long / 1e6);
	assert_true(t_short < t_long);
	assert_int_equal(resp_type(lresp), VIRTIO_GPU_RESP_OK_NODATA);
	memcpy(st, fe_ptr(&F, stat_gpa), sizeof(st));
	for (int i = 0; i < 3; i++)
		assert_int_equal(st[i].result, VGPU_COMPUTE_OK);
}

/* The ring threads' queues and kernels go when the threads do (the
 * front-end leaves), and the windows' buffers with the windows. */
static void test_states_go_with_threads(void **state)
{
	(void)state;
	assert_true(STAT_GET(cl_threads) > 0);
	assert_true(STAT_GET(cl_buffers_live) > 0);
	fe_stop(&F);
	assert_int_equal(STAT_GET(cl_threads), 0);
	assert_int_equal(STAT_GET(cl_buffers_live), 0);
	start_logged();     /* for teardown */
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gate_reported),
		cmocka_unit_test(test_one_buffer_per_window),
		cmocka_unit_test(test_new_table_new_buffer),
		cmocka_unit_test(test_closed_window_releases),
		cmocka_unit_test(test_rings_concurrent),
		cmocka_unit_test(test_states_go_with_threads),
	};

	if (argc != 2 || (strcmp(argv[1], "zero-copy") && strcmp(argv[1], "copying"))) {
		fprintf(stderr, "usage: %s zero-copy|copying\n", argv[0]);
		return 2;
	}
	copying = strcmp(argv[1], "copying") == 0;
	if (copying)
		setenv("VIRTGPU_HOSTD_CL_GATE", "fail", 1);
	else
		unsetenv("VIRTGPU_HOSTD_CL_GATE");
	setvbuf(stdout, NULL, _IONBF, 0);
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return _cmocka_run_group_tests(argv[1], tests, sizeof(tests) / sizeof(tests[0]), setup,
				       teardown);
}
