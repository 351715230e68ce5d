/* SPDX-License-Identifier: MIT */
/*
 * test_budget.c - bounded work, on the backend named by argv[1] (cpu or
 * opencl): with a short op budget a long SGEMM and a long COPY end with
 * E_TIMEOUT soon after their deadline, with the right op_index and
 * ops_done, the ops before them done and the ones after them not run; the
 * device's abort flag stops a running op soon after it is set; a new
 * memory table, a ring stopped (GET_VRING_BASE) and a disconnect do not
 * wait for a long op on a ring.
 *
 * The long ops are long without much memory: their resources are many
 * mem entries over the same few pages (entries may alias), so a 4 GiB
 * COPY or a 2048^3 SGEMM runs over a few MiB of a memfd.
 *
 * The bounds asserted are loose (the machine is shared, and sanitizers
 * slow the CPU loops down); the times measured are printed as TAP
 * comments.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine_backend.h"
#include "helpers.h"
#include "resource.h"
#include "stats.h"
#include "window.h"

#define PG 4096u
#define MS 1000000ull
/* How late an op may stop after its deadline or the abort flag, here. */
#define LATE_MS 1500u

static struct fe F;
static uint32_t backend;

/* ---- the engine alone, on a memory table of its own ---- */

#define GPA 0x10000000ull
#define RAM (4u << 20)
#define BIG_ENTRY (512u * 1024u)

/* The long streams: 4 GiB, the most an op may name, on the CPU; 2 GiB on
 * OpenCL, where a resource larger than CL_DEVICE_MAX_MEM_ALLOC_SIZE (2 GiB
 * on PoCL here) gets no buffer. */
static uint64_t big;

enum { R_SRC = 1, R_DST = 2, R_SMALL = 3, R_N = 4 };

static struct guest_mem gm;
static int ram_fd = -1;
static uint8_t *ram;
static struct gpu_resource res[R_N];

static const struct gpu_resource *lookup(void *opaque, uint32_t id)
{
	(void)opaque;
	return id && id < R_N ? &res[id] : NULL;
}

/* A resource of n entries of len bytes, all over the file range at off. */
static void make_res(uint32_t id, uint64_t off, uint32_t len, uint32_t n)
{
	struct gpu_mem_entry *e = calloc(n, sizeof(*e));

	assert_non_null(e);
	for (uint32_t i = 0; i < n; i++) {
		e[i].addr = GPA + off;
		e[i].len = len;
	}
	memset(&res[id], 0, sizeof(res[id]));
	res[id].id = id;
	res[id].size = (uint64_t)n * len;
	res[id].bk = res_backing_new(e, n, false);
	assert_non_null(res[id].bk);
	res_window_open(res[id].bk, &gm);
	if (backend == VGPU_BACKEND_OPENCL)
		assert_non_null(res_window_base(res[id].bk));
	free(e);
}

static uint64_t now_ns(void)
{
	return vop_now_ns();
}

/* Submit ops (engine_submit, on this thread); *ns: how long it took. */
static void submit(const struct vgpu_compute_op *ops, uint32_t n, struct engine_result *er,
		   uint64_t *ns)
{
	size_t len = sizeof(struct vgpu_compute_submit) + n * sizeof(*ops);
	uint8_t *buf = calloc(1, len);
	struct vgpu_compute_submit h = { VGPU_COMPUTE_MAGIC, n, 0, 0, 0 };
	uint64_t t0;

	assert_non_null(buf);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), ops, n * sizeof(*ops));
	t0 = now_ns();
	engine_submit(F.eng, &gm, buf, len, lookup, NULL, er);
	if (ns)
		*ns = now_ns() - t0;
	free(buf);
}

static struct vgpu_compute_op sgemm_op(uint32_t c_res, uint32_t ab_res, uint32_t m, uint32_t n,
				       uint32_t k)
{
	struct vgpu_compute_op o = mkop(VGPU_OP_SGEMM, c_res, 0, ab_res, 0,
					(uint64_t)m * k * 4, m | (uint64_t)n << 32);

	o.arg1 = k;
	return o;
}

static uint32_t small_word(uint64_t off)
{
	uint32_t v;

	assert_int_equal(res_read(res[R_SMALL].bk, &gm, off, &v, 4), 0);
	return v;
}

static int setup(void **state)
{
	struct gm_region_desc d = { GPA, RAM, GPA, 0 };

	(void)state;
	fe_start(&F, &(struct fe_opts){ .backend = backend, .threads = 2, .ctrl_num = 64 });
	assert_int_equal(engine_backend_id(F.eng), backend);
	ram_fd = memfd_create("ram", MFD_CLOEXEC);
	assert_true(ram_fd >= 0);
	assert_int_equal(ftruncate(ram_fd, RAM), 0);
	ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd, 0);
	assert_true(ram != MAP_FAILED);
	gm_init(&gm);
	assert_int_equal(gm_set_table(&gm, &d, 1, &ram_fd), 0);
	big = backend == VGPU_BACKEND_OPENCL ? 2ull << 30 : 4ull << 30;
	make_res(R_SRC, 0, BIG_ENTRY, (uint32_t)(big / BIG_ENTRY));
	make_res(R_DST, 1u << 20, BIG_ENTRY, (uint32_t)(big / BIG_ENTRY));
	make_res(R_SMALL, 3u << 20, 64 * 1024, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (uint32_t i = 1; i < R_N; i++)
		res_backing_put(res[i].bk);
	gm_clear(&gm);
	munmap(ram, RAM);
	close(ram_fd);
	fe_stop(&F);
	return 0;
}

/* [FILL, long op, FILL] under a budget of budget_ms: E_TIMEOUT at op 1. */
static void long_op_times_out(const struct vgpu_compute_op *lop, const char *what,
			      uint64_t budget_ms)
{
	struct vgpu_compute_op ops[3];
	struct engine_result er;
	uint64_t ns, t0 = STAT_GET(op_timeouts);

	memset(ram + (3u << 20), 0, 256);
	ops[0] = mkop(VGPU_OP_FILL, R_SMALL, 0, 0, 0, 64, 0x11111111);
	ops[1] = *lop;
	ops[2] = mkop(VGPU_OP_FILL, R_SMALL, 64, 0, 0, 64, 0x22222222);
	engine_set_op_budget(F.eng, budget_ms * MS);
	submit(ops, 3, &er, &ns);
	engine_set_op_budget(F.eng, ENGINE_DEFAULT_OP_BUDGET_NS);
	printf("# %s: E_TIMEOUT after %.1f ms with a budget of %llu ms\n", what,
	       (double)ns / 1e6, (unsigned long long)budget_ms);
	assert_int_equal(er.result, VGPU_COMPUTE_E_TIMEOUT);
	assert_int_equal(er.op_index, 1);
	assert_int_equal(er.ops_done, 1);
	assert_true(ns >= budget_ms * MS);
	assert_true(ns < (budget_ms + LATE_MS) * MS);
	assert_int_equal(small_word(0), 0x11111111);   /* op 0 ran */
	assert_int_equal(small_word(64), 0);           /* op 2 did not */
	assert_int_equal(STAT_GET(op_timeouts), t0 + 1);
	assert_string_equal(engine_result_name(er.result), "E_TIMEOUT");
}

static void test_sgemm_times_out(void **state)
{
	struct vgpu_compute_op op = sgemm_op(R_DST, R_SRC, 2048, 2048, 2048);

	(void)state;
	long_op_times_out(&op, "SGEMM 2048^3", 100);
}

static void test_copy_times_out(void **state)
{
	struct vgpu_compute_op op = mkop(VGPU_OP_COPY, R_DST, 0, R_SRC, 0, big, 0);

	(void)state;
	long_op_times_out(&op, "COPY (4 GiB on the CPU, 2 on OpenCL)", 100);
}

/* The other long ops stop at their deadline as well. */
static void test_others_time_out(void **state)
{
	struct vgpu_compute_op ops[] = {
		mkop(VGPU_OP_FILL, R_DST, 0, 0, 0, big, 7),
		mkop(VGPU_OP_SAXPY, R_DST, 0, R_SRC, 0, big, 0),
		mkop(VGPU_OP_CHECKSUM, R_SMALL, 128, R_SRC, 0, big, 0),
		mkop(VGPU_OP_SUM_F32, R_SMALL, 128, R_SRC, 0, big, 0),
		mkop(VGPU_OP_REDUCE_F32, R_SMALL, 128, R_SRC, 0, big, 0),
	};
	static const char *const names[] = { "FILL", "SAXPY", "CHECKSUM", "SUM_F32", "REDUCE_F32" };

	(void)state;
	for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		long_op_times_out(&ops[i], names[i], 50);
}

/* The same submit with no budget at all runs to the end (a shorter one:
 * the point is that 0 means none). */
static void test_no_budget(void **state)
{
	struct vgpu_compute_op op = mkop(VGPU_OP_COPY, R_DST, 0, R_SRC, 0, 64ull << 20, 0);
	struct engine_result er;
	uint64_t ns;

	(void)state;
	engine_set_op_budget(F.eng, 0);
	assert_int_equal(engine_op_budget(F.eng), 0);
	submit(&op, 1, &er, &ns);
	engine_set_op_budget(F.eng, ENGINE_DEFAULT_OP_BUDGET_NS);
	assert_int_equal(er.result, VGPU_COMPUTE_OK);
	assert_int_equal(er.ops_done, 1);
}

/* The abort flag, as the device sets it: a running op stops soon after. */
struct aborter {
	const struct vgpu_compute_op *ops;
	uint32_t n;
	bool flag;
	struct engine_result er;
	uint64_t end_ns;
};

static void *abort_thread(void *arg)
{
	struct aborter *a = arg;

	engine_set_thread_abort(&a->flag);
	submit(a->ops, a->n, &a->er, NULL);
	a->end_ns = now_ns();
	engine_set_thread_abort(NULL);
	return NULL;
}

static void abort_running(const struct vgpu_compute_op *lop, const char *what)
{
	struct vgpu_compute_op ops[2] = { mkop(VGPU_OP_FILL, R_SMALL, 0, 0, 0, 64, 0x33333333),
					  *lop };
	struct aborter a = { .ops = ops, .n = 2 };
	uint64_t set_ns, a0 = STAT_GET(op_aborts);
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, abort_thread, &a), 0);
	usleep(300 * 1000);
	set_ns = now_ns();
	__atomic_store_n(&a.flag, true, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	printf("# %s: stopped %.1f ms after the abort flag\n", what,
	       (double)(a.end_ns - set_ns) / 1e6);
	assert_int_equal(a.er.result, VGPU_COMPUTE_E_DEVICE);
	assert_int_equal(a.er.op_index, 1);
	assert_int_equal(a.er.ops_done, 1);
	assert_true(a.end_ns - set_ns < LATE_MS * MS);
	assert_int_equal(small_word(0), 0x33333333);
	assert_int_equal(STAT_GET(op_aborts), a0 + 1);
}

static void test_abort_sgemm(void **state)
{
	struct vgpu_compute_op op = sgemm_op(R_DST, R_SRC, 2048, 2048, 2048);

	(void)state;
	abort_running(&op, "SGEMM 2048^3");
}

static void test_abort_copy(void **state)
{
	struct vgpu_compute_op op = mkop(VGPU_OP_COPY, R_DST, 0, R_SRC, 0, big, 0);

	(void)state;
	abort_running(&op, "COPY");
}

/* Set before the submit: no op runs. */
static void test_abort_before(void **state)
{
	struct vgpu_compute_op op = mkop(VGPU_OP_FILL, R_SMALL, 256, 0, 0, 64, 0x44444444);
	struct aborter a = { .ops = &op, .n = 1, .flag = true };
	pthread_t th;

	(void)state;
	memset(ram + (3u << 20) + 256, 0, 64);
	assert_int_equal(pthread_create(&th, NULL, abort_thread, &a), 0);
	pthread_join(th, NULL);
	assert_int_equal(a.er.result, VGPU_COMPUTE_E_DEVICE);
	assert_int_equal(a.er.op_index, 0);
	assert_int_equal(a.er.ops_done, 0);
	assert_int_equal(small_word(256), 0);
}

/* ---- through the device: a ring submit's status record, a disconnect ---- */

#define ALIAS (128u * 1024u)

enum { D_AB = 1, D_C = 2, D_ST = 3 };
static uint64_t st_gpa;

/* A resource of n entries of ALIAS bytes over the same pages of region 1. */
static void dev_res(uint32_t id, uint64_t gpa, uint32_t n)
{
	struct virtio_gpu_mem_entry *e = calloc(n, sizeof(*e));

	assert_non_null(e);
	for (uint32_t i = 0; i < n; i++) {
		e[i].addr = gpa;
		e[i].length = ALIAS;
	}
	assert_int_equal(cmd_blob(&F, 1, id, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST,
				  0, (uint64_t)n * ALIAS, e, n),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, id), VIRTIO_GPU_RESP_OK_NODATA);
	free(e);
}

static void dev_setup(void)
{
	struct virtio_gpu_mem_entry e;

	assert_int_equal(cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	dev_res(D_AB, fe_alloc(&F, 1, ALIAS, 0), 256);   /* A and B: 32 MiB */
	dev_res(D_C, fe_alloc(&F, 1, ALIAS, 0), 128);    /* C: 16 MiB */
	st_gpa = fe_alloc(&F, 1, PG, 0);
	e = (struct virtio_gpu_mem_entry){ st_gpa, PG, 0 };
	assert_int_equal(cmd_blob(&F, 1, D_ST, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST,
				  0, PG, &e, 1),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, D_ST), VIRTIO_GPU_RESP_OK_NODATA);
}

/* Post (no kick) a fenced ring submit of [FILL of the status page at 64,
 * SGEMM 2048^3]; its status record at 0. */
static uint64_t post_long(uint8_t ring, uint64_t fence)
{
	struct vgpu_compute_op ops[2] = {
		mkop(VGPU_OP_FILL, D_ST, 64, 0, 0, 64, 0x55555555),
		sgemm_op(D_C, D_AB, 2048, 2048, 2048),
	};
	struct vgpu_compute_submit s = { VGPU_COMPUTE_MAGIC, 2, D_ST, 0, 0 };
	size_t len = sizeof(struct virtio_gpu_cmd_submit) + sizeof(s) + sizeof(ops);
	uint8_t buf[sizeof(struct virtio_gpu_cmd_submit) + sizeof(s) + sizeof(ops)];
	struct virtio_gpu_cmd_submit *c = (void *)buf;

	memset(buf, 0, sizeof(buf));
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_SUBMIT_3D, 1);
	c->hdr.flags = VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX;
	c->hdr.fence_id = fence;
	c->hdr.ring_idx = ring;
	c->size = (uint32_t)(sizeof(s) + sizeof(ops));
	memcpy(buf + sizeof(*c), &s, sizeof(s));
	memcpy(buf + sizeof(*c) + sizeof(s), ops, sizeof(ops));
	return fe_post(&F, 0, buf, len, sizeof(struct virtio_gpu_ctrl_hdr), 2);
}

/* A ring submit whose op times out: the status record says which, and
 * how many ran before it; the response is an error. */
static void test_ring_status(void **state)
{
	struct vgpu_compute_status st;
	struct virtio_gpu_ctrl_hdr h;
	uint64_t resp, t0;
	uint16_t base;

	(void)state;
	dev_setup();
	base = F.ring[0].avail_idx;
	memset(fe_ptr(&F, st_gpa), 0, PG);
	engine_set_op_budget(F.eng, 100 * MS);
	resp = post_long(3, 77);
	t0 = now_ns();
	fe_kick(&F, 0);
	assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(base + 1), 20000), 0);
	printf("# ring submit: answered %.1f ms after the kick, op budget 100 ms\n",
	       (double)(now_ns() - t0) / 1e6);
	engine_set_op_budget(F.eng, ENGINE_DEFAULT_OP_BUDGET_NS);
	memcpy(&st, fe_ptr(&F, st_gpa), sizeof(st));
	assert_int_equal(st.result, VGPU_COMPUTE_E_TIMEOUT);
	assert_int_equal(st.op_index, 1);
	assert_int_equal(st.ops_done, 1);
	assert_int_equal(*(uint32_t *)fe_ptr(&F, st_gpa + 64), 0x55555555);
	memcpy(&h, fe_ptr(&F, resp), sizeof(h));
	assert_int_equal(h.type, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(h.fence_id, 77);
}

/*
 * A device stop while a long op runs on a ring (default budget, a minute):
 * stop() is the vhost-user message. Its answer comes within the bound,
 * the long op's submit is answered first with E_DEVICE at that op (the
 * op before it done), and the device works again afterwards.
 */
static void stop_aborts_ring(void (*stop)(void), const char *what, uint8_t ring, uint64_t fence)
{
	struct vgpu_compute_status st;
	struct vgpu_compute_op op;
	uint64_t resp, t0, ns, a0 = STAT_GET(op_aborts);
	uint16_t base = F.ring[0].avail_idx;

	memset(fe_ptr(&F, st_gpa), 0, PG);
	resp = post_long(ring, fence);
	fe_kick(&F, 0);
	usleep(300 * 1000);
	/* Still running: unanswered. */
	assert_int_equal(F.ring[0].used->idx, base);
	t0 = now_ns();
	stop();
	ns = now_ns() - t0;
	printf("# %s with a long op running on a ring: answered in %.1f ms\n", what,
	       (double)ns / 1e6);
	assert_true(ns < LATE_MS * MS);
	/* Answered before the message was. */
	assert_int_equal(F.ring[0].used->idx, (uint16_t)(base + 1));
	memcpy(&st, fe_ptr(&F, st_gpa), sizeof(st));
	assert_int_equal(st.result, VGPU_COMPUTE_E_DEVICE);
	assert_int_equal(st.op_index, 1);
	assert_int_equal(st.ops_done, 1);
	assert_int_equal(*(uint32_t *)fe_ptr(&F, st_gpa + 64), 0x55555555);
	assert_int_equal(((struct virtio_gpu_ctrl_hdr *)fe_ptr(&F, resp))->fence_id, fence);
	assert_int_not_equal(((struct virtio_gpu_ctrl_hdr *)fe_ptr(&F, resp))->type,
			     VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(op_aborts), a0 + 1);
	/* The flag is down again: the next submit runs to the end. */
	op = mkop(VGPU_OP_FILL, D_ST, 128, 0, 0, 64, 0x66666666);
	assert_int_equal(cmd_submit(&F, 1, D_ST, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	memcpy(&st, fe_ptr(&F, st_gpa), sizeof(st));
	assert_int_equal(st.result, VGPU_COMPUTE_OK);
	assert_int_equal(*(uint32_t *)fe_ptr(&F, st_gpa + 128), 0x66666666);
}

static void new_mem_table(void)
{
	fe_set_mem_table(&F);
}

/* A new memory table (the windows are rebuilt over it). */
static void test_new_table_stops_ring(void **state)
{
	(void)state;
	stop_aborts_ring(new_mem_table, "SET_MEM_TABLE", 5, 79);
}

static void get_vring_base(void)
{
	struct vhost_vring_state vs = { 0, 0 };
	uint32_t r, fl, sz;
	uint64_t v = 0;
	int kick;

	assert_int_equal(fe_send(&F, VU_GET_VRING_BASE, VU_VERSION, &vs, sizeof(vs), NULL, 0), 0);
	assert_int_equal(fe_recv(&F, &r, &fl, &vs, sizeof(vs), &sz), 0);
	assert_int_equal(r, VU_GET_VRING_BASE);
	assert_int_equal(vs.num, F.ring[0].avail_idx);
	/* Started again, as a front-end does after a stop. */
	kick = dup(F.ring[0].kick);
	assert_int_equal(fe_ack(&F, VU_SET_VRING_KICK, &v, 8, &kick, 1), 0);
	close(kick);
}

/* The control ring stopped (GET_VRING_BASE: the device being stopped). */
static void test_vring_stop_stops_ring(void **state)
{
	(void)state;
	stop_aborts_ring(get_vring_base, "GET_VRING_BASE", 6, 80);
}

/* The front-end goes away while a long op runs on a ring (default budget,
 * a minute): the device's abort flag stops it, and the disconnect is done
 * within the bound instead of after the op. */
static void test_disconnect_stops_ring(void **state)
{
	uint64_t t0, ns;

	(void)state;
	post_long(4, 78);
	fe_kick(&F, 0);
	usleep(300 * 1000);
	assert_int_equal(F.ring[0].used->idx, (uint16_t)(F.ring[0].avail_idx - 1));
	t0 = now_ns();
	fe_stop(&F);
	ns = now_ns() - t0;
	printf("# disconnect with a long op running on a ring: %.1f ms\n", (double)ns / 1e6);
	assert_true(ns < LATE_MS * MS);
	/* A new front-end, for teardown. */
	fe_start(&F, &(struct fe_opts){ .backend = backend, .threads = 2 });
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sgemm_times_out),
		cmocka_unit_test(test_copy_times_out),
		cmocka_unit_test(test_others_time_out),
		cmocka_unit_test(test_no_budget),
		cmocka_unit_test(test_abort_sgemm),
		cmocka_unit_test(test_abort_copy),
		cmocka_unit_test(test_abort_before),
		cmocka_unit_test(test_ring_status),
		cmocka_unit_test(test_new_table_stops_ring),
		cmocka_unit_test(test_vring_stop_stops_ring),
		cmocka_unit_test(test_disconnect_stops_ring),
	};

	if (argc != 2 || (strcmp(argv[1], "cpu") && strcmp(argv[1], "opencl"))) {
		fprintf(stderr, "usage: %s cpu|opencl\n", argv[0]);
		return 2;
	}
	backend = strcmp(argv[1], "opencl") ? VGPU_BACKEND_CPU : VGPU_BACKEND_OPENCL;
	/* Both backends on windows (the OpenCL one turns them on itself). */
	win_set_enabled(true);
	setvbuf(stdout, NULL, _IONBF, 0);
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return _cmocka_run_group_tests(argv[1], tests, sizeof(tests) / sizeof(tests[0]), setup,
				       teardown);
}
