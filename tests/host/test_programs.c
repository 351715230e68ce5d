/* SPDX-License-Identifier: MIT */
/*
 * test_programs.c - capset version 3 through the device: the guest's own
 * OpenCL C built, inspected and dispatched on its scatter-gather pages in
 * a worker per context; every validation failure with nothing written but
 * the status record; and what a hostile program does to its context only
 * (an endless loop, a wild pointer), never to another context or to the
 * device.
 *
 *   test_programs PATH-TO-virtgpu-worker
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"
#include "programs.h"
#include "stats.h"
#include "worker_proto.h"

#define BUDGET_MS 15000u
#define CL_BUILD_PROGRAM_FAILURE (-11)
#define CL_INVALID_KERNEL_NAME (-46)
#define CL_DEVICE_NAME 0x102B

static const char *worker_path;
static struct programs *P;
static struct fe F;

/* Resources of context 1: */
enum {
	R_IN = 1,     /* program input, 64 KiB */
	R_OUT = 2,    /* results, logs, infos: 64 KiB */
	R_ST = 3,     /* status records */
	R_X = 4,      /* 4 scattered pieces of 16 KiB: 16 Ki floats */
	R_Y = 5,      /* 16 KiB */
	R_ODD = 6,    /* in region 2 (file offset not page aligned): no window */
	R_NA = 7,     /* not attached */
	R_TMP = 8,    /* made and dropped by the window test */
	R_C2 = 9,     /* context 2's buffer */
	R_C2ST = 10,  /* context 2's status */
	R_C2IN = 11,  /* context 2's program input */
	R_C2OUT = 12, /* context 2's results */
	R_C2RO = 13,  /* context 2's read-only blob (made and dropped) */
};

static uint64_t gpa_in, gpa_out, gpa_st, gpa_x[4], gpa_y, gpa_c2, gpa_c2st, gpa_c2in, gpa_c2out;

#define XPIECE 16384u
#define XN (4 * XPIECE / 4)

/* ---- the command stream ---- */

struct stream {
	uint8_t b[96 * 1024];
	size_t len;
	uint32_t nops;
};

static void s_begin(struct stream *s)
{
	memset(s, 0, sizeof(*s));
	s->len = sizeof(struct vgpu_compute_submit);
}

static void s_op(struct stream *s, const struct vgpu_compute_op *op, const void *payload,
		 size_t plen)
{
	assert_true(s->len + sizeof(*op) + VGPU_COMPUTE_PAYLOAD_PAD(plen) <= sizeof(s->b));
	memcpy(s->b + s->len, op, sizeof(*op));
	s->len += sizeof(*op);
	if (plen)
		memcpy(s->b + s->len, payload, plen);
	s->len += VGPU_COMPUTE_PAYLOAD_PAD(plen);
	s->nops++;
}

/* Submit on context ctx with its status record at the start of st; the
 * result code (the status record's). */
static uint32_t s_submit_to(struct stream *s, uint32_t ctx, uint32_t st, uint64_t st_gpa,
			    struct vgpu_compute_status *out)
{
	struct vgpu_compute_submit h = { VGPU_COMPUTE_MAGIC, s->nops, st, 0, 0 };
	size_t len = sizeof(struct virtio_gpu_cmd_submit) + s->len;
	uint8_t *buf = calloc(1, len);
	struct virtio_gpu_cmd_submit *c = (void *)buf;
	struct virtio_gpu_ctrl_hdr resp;
	struct vgpu_compute_status status;

	memcpy(s->b, &h, sizeof(h));
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_SUBMIT_3D, ctx);
	c->size = (uint32_t)s->len;
	memcpy(buf + sizeof(*c), s->b, s->len);
	memset(fe_ptr(&F, st_gpa), 0xee, sizeof(status));
	assert_int_equal(fe_cmd(&F, 0, buf, len, &resp, sizeof(resp), 2), sizeof(resp));
	free(buf);
	memcpy(&status, fe_ptr(&F, st_gpa), sizeof(status));
	if (out)
		*out = status;
	if (status.result == VGPU_COMPUTE_OK)
		assert_int_equal(resp.type, VIRTIO_GPU_RESP_OK_NODATA);
	else
		assert_int_equal(resp.type, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	return status.result;
}

static uint32_t s_submit(struct stream *s, struct vgpu_compute_status *out)
{
	return s_submit_to(s, 1, R_ST, gpa_st, out);
}

static struct vgpu_compute_op v3op(uint32_t opc, uint64_t arg0)
{
	struct vgpu_compute_op o;

	memset(&o, 0, sizeof(o));
	o.opcode = opc;
	o.arg0 = arg0;
	return o;
}

/* PROGRAM_BUILD of program id from src (in res in at in_gpa), outcome in
 * out; returns the build status and fills *br. */
static uint32_t build_on(uint32_t ctx, uint32_t in, uint64_t in_gpa, uint32_t out,
			 uint64_t out_gpa, uint32_t st, uint64_t st_gpa, uint32_t id,
			 uint32_t kind, const void *data, size_t dlen, const char *opts,
			 struct vgpu_build_result *br, char *log, size_t logcap)
{
	struct vgpu_program_input pi = { kind, (uint32_t)strlen(opts), dlen };
	uint8_t *p = fe_ptr(&F, in_gpa);
	struct vgpu_compute_op op = v3op(VGPU_OP_PROGRAM_BUILD, id);
	struct stream s;
	uint32_t rc;

	memcpy(p, &pi, sizeof(pi));
	memcpy(p + sizeof(pi), opts, pi.options_len);
	memcpy(p + sizeof(pi) + pi.options_len, data, dlen);
	op.src_res = in;
	op.arg1 = sizeof(pi) + pi.options_len + dlen;
	op.dst_res = out;
	op.arg2 = 16384;
	memset(fe_ptr(&F, out_gpa), 0, 16384);
	s_begin(&s);
	s_op(&s, &op, NULL, 0);
	rc = s_submit_to(&s, ctx, st, st_gpa, NULL);
	if (rc)
		return rc;
	memcpy(br, fe_ptr(&F, out_gpa), sizeof(*br));
	if (log) {
		size_t n = br->log_written < logcap - 1 ? br->log_written : logcap - 1;

		memcpy(log, (uint8_t *)fe_ptr(&F, out_gpa) + sizeof(*br), n);
		log[n] = 0;
	}
	return 0;
}

static int32_t build(uint32_t id, const char *src, struct vgpu_build_result *br, char *log,
		     size_t logcap)
{
	struct vgpu_build_result tmp;
	uint32_t rc = build_on(1, R_IN, gpa_in, R_OUT, gpa_out, R_ST, gpa_st, id,
			       VGPU_PROGRAM_SOURCE, src, strlen(src), "", br ? br : &tmp, log,
			       logcap);

	assert_int_equal(rc, VGPU_COMPUTE_OK);
	return (br ? br : &tmp)->status;
}

/* KERNEL_CREATE; the info record (and its args) copied to info/args. */
static uint32_t kernel_on(uint32_t ctx, uint32_t out, uint64_t out_gpa, uint32_t st,
			  uint64_t st_gpa, uint32_t id, uint32_t prog, const char *name,
			  struct vgpu_kernel_info *info, struct vgpu_kernel_arg_info *args,
			  uint32_t maxargs)
{
	struct vgpu_compute_op op = v3op(VGPU_OP_KERNEL_CREATE, id);
	struct stream s;
	uint32_t rc;

	op.arg1 = prog;
	op.dst_res = out;
	op.arg2 = 16384;
	op.len = strlen(name) + 1;
	s_begin(&s);
	s_op(&s, &op, name, op.len);
	rc = s_submit_to(&s, ctx, st, st_gpa, NULL);
	if (rc)
		return rc;
	memcpy(info, fe_ptr(&F, out_gpa), sizeof(*info));
	if (args && info->num_args <= maxargs)
		memcpy(args, (uint8_t *)fe_ptr(&F, out_gpa) + sizeof(*info),
		       info->num_args * sizeof(*args));
	return 0;
}

static uint32_t kernel(uint32_t id, uint32_t prog, const char *name,
		       struct vgpu_kernel_info *info, struct vgpu_kernel_arg_info *args,
		       uint32_t maxargs)
{
	return kernel_on(1, R_OUT, gpa_out, R_ST, gpa_st, id, prog, name, info, args, maxargs);
}

/* A DISPATCH payload being put together. */
struct dpl {
	uint8_t b[8192];
	struct vgpu_dispatch d;
	struct vgpu_dispatch_arg a[64];
	uint8_t values[1024];
	uint32_t nvalues;
};

static void d_init(struct dpl *p, uint64_t gsize, uint64_t lsize)
{
	memset(p, 0, sizeof(*p));
	p->d.work_dim = 1;
	p->d.global_size[0] = gsize;
	p->d.local_size[0] = lsize;
}

static void d_buf(struct dpl *p, uint32_t res, uint64_t off, uint64_t size, uint32_t access)
{
	struct vgpu_dispatch_arg *a = &p->a[p->d.num_args++];

	a->kind = VGPU_DARG_BUFFER;
	a->access = access;
	a->res = res;
	a->offset = off;
	a->size = size;
}

static void d_val(struct dpl *p, const void *v, uint32_t size)
{
	struct vgpu_dispatch_arg *a = &p->a[p->d.num_args++];

	a->kind = VGPU_DARG_VALUE;
	a->offset = p->nvalues;
	a->size = size;
	memcpy(p->values + p->nvalues, v, size);
	p->nvalues += (size + 7) & ~7u;
}

static void d_local(struct dpl *p, uint64_t size)
{
	struct vgpu_dispatch_arg *a = &p->a[p->d.num_args++];

	a->kind = VGPU_DARG_LOCAL;
	a->size = size;
}

/* The payload bytes; its length. */
static size_t d_bytes(struct dpl *p)
{
	size_t n = 0;

	memcpy(p->b, &p->d, sizeof(p->d));
	n += sizeof(p->d);
	memcpy(p->b + n, p->a, p->d.num_args * sizeof(p->a[0]));
	n += p->d.num_args * sizeof(p->a[0]);
	memcpy(p->b + n, p->values, p->nvalues);
	return n + p->nvalues;
}

static uint32_t dispatch_on(uint32_t ctx, uint32_t st, uint64_t st_gpa, uint32_t kernel_id,
			    struct dpl *p, struct vgpu_compute_status *status)
{
	struct vgpu_compute_op op = v3op(VGPU_OP_DISPATCH, kernel_id);
	struct stream s;

	op.len = d_bytes(p);
	s_begin(&s);
	s_op(&s, &op, p->b, op.len);
	return s_submit_to(&s, ctx, st, st_gpa, status);
}

static uint32_t dispatch(uint32_t kernel_id, struct dpl *p)
{
	return dispatch_on(1, R_ST, gpa_st, kernel_id, p, NULL);
}

static float xget(uint32_t i)
{
	float v;

	memcpy(&v, (uint8_t *)fe_ptr(&F, gpa_x[i * 4 / XPIECE]) + (i * 4) % XPIECE, 4);
	return v;
}

static void xset(uint32_t i, float v)
{
	memcpy((uint8_t *)fe_ptr(&F, gpa_x[i * 4 / XPIECE]) + (i * 4) % XPIECE, &v, 4);
}

static const char SRC[] =
	"__kernel void scale(__global float *x, const float a, const uint n)\n"
	"{\n"
	"	size_t i = get_global_id(0);\n"
	"	if (i < n)\n"
	"		x[i] = x[i] * a + (float)i;\n"
	"}\n"
	"__kernel void sum_local(__global const float *x, __global float *out,\n"
	"			__local float *tmp)\n"
	"{\n"
	"	size_t l = get_local_id(0), g = get_group_id(0);\n"
	"	tmp[l] = x[get_global_id(0)];\n"
	"	barrier(CLK_LOCAL_MEM_FENCE);\n"
	"	if (l == 0) {\n"
	"		float s = 0;\n"
	"		for (size_t k = 0; k < get_local_size(0); k++)\n"
	"			s += tmp[k];\n"
	"		out[g] = s;\n"
	"	}\n"
	"}\n";

/* ---- fixture ---- */

static int setup(void **state)
{
	struct programs_config pc = {
		.worker_path = worker_path, .uid = 65534, .gid = 65534,
		.op_budget_ns = (uint64_t)BUDGET_MS * 1000000,
	};
	struct fe_opts o = { 0 };
	struct virtio_gpu_mem_entry e[4];
	uint32_t vg = VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST;

	(void)state;
	P = programs_new(&pc);
	assert_non_null(P);
	if (!programs_available(P))
		fail_msg("the worker does not run here (see the log above)");
	o.progs = P;
	fe_start(&F, &o);
	assert_int_equal(cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_ctx_create(&F, 2, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	gpa_in = simple_blob(&F, 1, R_IN, 0, 1, 65536);
	gpa_out = simple_blob(&F, 1, R_OUT, 0, 1, 65536);
	gpa_st = simple_blob(&F, 1, R_ST, 0, 1, 4096);
	/* X: four pieces with holes between them, in reverse order in guest
	 * memory: the window puts them together. */
	for (int i = 3; i >= 0; i--) {
		gpa_x[i] = fe_alloc(&F, 1, XPIECE, 0);
		fe_alloc(&F, 1, 4096, 0);
	}
	for (int i = 0; i < 4; i++)
		e[i] = (struct virtio_gpu_mem_entry){ gpa_x[i], XPIECE, 0 };
	assert_int_equal(cmd_blob(&F, 1, R_X, vg, 0, 4 * XPIECE, e, 4),
			 VIRTIO_GPU_RESP_OK_NODATA);
	gpa_y = simple_blob(&F, 1, R_Y, 0, 1, 16384);
	assert_true(simple_blob(&F, 1, R_ODD, 0, 2, 16384) != 0);
	assert_true(simple_blob(&F, 1, R_NA, 0, 1, 4096) != 0);
	gpa_c2 = simple_blob(&F, 2, R_C2, 0, 1, 16384);
	gpa_c2st = simple_blob(&F, 2, R_C2ST, 0, 1, 4096);
	gpa_c2in = simple_blob(&F, 2, R_C2IN, 0, 1, 16384);
	gpa_c2out = simple_blob(&F, 2, R_C2OUT, 0, 1, 16384);
	for (uint32_t r = R_IN; r <= R_ODD; r++)
		assert_int_equal(cmd_attach(&F, 1, r), VIRTIO_GPU_RESP_OK_NODATA);
	for (uint32_t r = R_C2; r <= R_C2OUT; r++)
		assert_int_equal(cmd_attach(&F, 2, r), VIRTIO_GPU_RESP_OK_NODATA);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fe_stop(&F);
	assert_int_equal(STAT_GET(workers), 0);
	assert_int_equal(STAT_GET(worker_windows), 0);
	programs_free(P);
	return 0;
}

/* ---- tests ---- */

static void test_caps(void **state)
{
	struct virtio_gpu_get_capset gc;
	uint8_t resp[sizeof(struct virtio_gpu_ctrl_hdr) + sizeof(struct vgpu_compute_caps)];
	struct vgpu_compute_caps caps;

	(void)state;
	memset(&gc, 0, sizeof(gc));
	hdr_init(&gc.hdr, VIRTIO_GPU_CMD_GET_CAPSET, 0);
	gc.capset_id = VGPU_COMPUTE_CAPSET_ID;
	gc.capset_version = 3;
	assert_int_equal(fe_cmd(&F, 0, &gc, sizeof(gc), resp, sizeof(resp), 1), sizeof(resp));
	memcpy(&caps, resp + sizeof(struct virtio_gpu_ctrl_hdr), sizeof(caps));
	assert_int_equal(caps.version, 3);
	assert_int_equal(caps.op_mask, VGPU_COMPUTE_OP_MASK);
	assert_true(caps.features & VGPU_FEATURE_PROGRAMS);
	assert_int_equal(caps.max_programs, PROGRAMS_MAX_PROGRAMS);
	assert_int_equal(caps.max_kernels, PROGRAMS_MAX_KERNELS);
	assert_int_equal(caps.max_kernel_args, PROGRAMS_MAX_ARGS);
	assert_int_equal(caps.max_payload_bytes, VGPU_COMPUTE_MAX_PAYLOAD);
	assert_int_equal(caps.time_budget_ns, (uint64_t)BUDGET_MS * 1000000);
	/* A guest of version 2 sees none of it. */
	gc.capset_version = 2;
	assert_int_equal(fe_cmd(&F, 0, &gc, sizeof(gc), resp, sizeof(resp), 1),
			 sizeof(struct virtio_gpu_ctrl_hdr) + VGPU_COMPUTE_CAPS_V2_SIZE);
	memcpy(&caps, resp + sizeof(struct virtio_gpu_ctrl_hdr), VGPU_COMPUTE_CAPS_V2_SIZE);
	assert_int_equal(caps.op_mask, VGPU_COMPUTE_OP_MASK_V2);
}

/* The guest's kernel runs on the guest's scattered pages, in place. */
static void test_build_and_dispatch(void **state)
{
	struct vgpu_build_result br;
	struct vgpu_kernel_info info;
	struct vgpu_kernel_arg_info args[8];
	struct dpl p;
	float a = 2.0f;
	uint32_t n = XN - 5;
	char log[1024];
	uint64_t started = STAT_GET(workers_started);

	(void)state;
	assert_int_equal(build(1, SRC, &br, log, sizeof(log)), 0);
	assert_int_equal(br.num_kernels, 2);
	assert_true(br.binary_size > 0);
	/* The worker starts with the context's first program op. */
	assert_int_equal(STAT_GET(workers_started), started + 1);
	assert_int_equal(kernel(1, 1, "scale", &info, args, 8), 0);
	assert_int_equal(info.status, 0);
	assert_int_equal(info.num_args, 3);
	assert_true(info.work_group_size >= 1);
	assert_int_equal(args[0].space, VGPU_ARG_SPACE_GLOBAL);
	assert_string_equal(args[0].name, "x");
	assert_string_equal(args[0].type_name, "float*");
	assert_int_equal(args[1].space, VGPU_ARG_SPACE_PRIVATE);
	assert_string_equal(args[1].name, "a");
	assert_string_equal(args[2].type_name, "uint");

	for (uint32_t i = 0; i < XN; i++)
		xset(i, (float)(i % 97));
	d_init(&p, XN, 0);
	d_buf(&p, R_X, 0, 4 * XPIECE, VGPU_OP_READ | VGPU_OP_WRITE);
	d_val(&p, &a, 4);
	d_val(&p, &n, 4);
	assert_int_equal(dispatch(1, &p), VGPU_COMPUTE_OK);
	for (uint32_t i = 0; i < XN; i++) {
		float want = i < n ? (float)(i % 97) * 2.0f + (float)i : (float)(i % 97);

		if (xget(i) != want)
			fail_msg("x[%u] = %g, want %g", i, xget(i), want);
	}
	/* At an offset: the kernel's x[0] is the buffer's byte 4096 (in the
	 * first piece), and it ends in the third piece. */
	for (uint32_t i = 0; i < XN; i++)
		xset(i, 1.0f);
	n = 8192;
	d_init(&p, n, 64);
	d_buf(&p, R_X, 4096, 4 * 8192, VGPU_OP_READ | VGPU_OP_WRITE);
	d_val(&p, &a, 4);
	d_val(&p, &n, 4);
	assert_int_equal(dispatch(1, &p), VGPU_COMPUTE_OK);
	for (uint32_t i = 0; i < XN; i++) {
		float want = i >= 1024 && i < 1024 + 8192 ? 2.0f + (float)(i - 1024) : 1.0f;

		if (xget(i) != want)
			fail_msg("x[%u] = %g, want %g", i, xget(i), want);
	}
}

/* Local memory and a result in a second buffer. */
static void test_local_memory(void **state)
{
	struct vgpu_kernel_info info;
	struct dpl p;
	float out[64];

	(void)state;
	assert_int_equal(kernel(2, 1, "sum_local", &info, NULL, 0), 0);
	assert_int_equal(info.status, 0);
	assert_int_equal(info.num_args, 3);
	for (uint32_t i = 0; i < XN; i++)
		xset(i, (float)(i % 16));
	d_init(&p, 64 * 64, 64);
	d_buf(&p, R_X, 0, 4 * 64 * 64, VGPU_OP_READ);
	d_buf(&p, R_Y, 0, sizeof(out), VGPU_OP_WRITE);
	d_local(&p, 64 * 4);
	assert_int_equal(dispatch(2, &p), VGPU_COMPUTE_OK);
	memcpy(out, fe_ptr(&F, gpa_y), sizeof(out));
	for (int g = 0; g < 64; g++)
		assert_true(out[g] == 4.0f * 120.0f);
}

/* A build that fails is a result, with its log; a kernel that is not
 * there is a record saying so. */
static void test_build_errors(void **state)
{
	struct vgpu_build_result br;
	struct vgpu_kernel_info info;
	char log[4096];

	(void)state;
	assert_int_equal(build(3, "__kernel void broken(__global int *p) { p[0] = undeclared; }",
			       &br, log, sizeof(log)),
			 CL_BUILD_PROGRAM_FAILURE);
	assert_true(br.log_size > 0);
	assert_true(br.log_written > 0);
	assert_non_null(strstr(log, "undeclared"));
	/* No kernels from a failed build: an object error. */
	assert_int_equal(kernel(3, 3, "broken", &info, NULL, 0), VGPU_COMPUTE_E_OBJECT);
	memset(&info, 0x55, sizeof(info));
	assert_int_equal(kernel(3, 1, "no_such_kernel", &info, NULL, 0), VGPU_COMPUTE_OK);
	assert_int_equal(info.status, CL_INVALID_KERNEL_NAME);
	assert_int_equal(info.num_args, 0);
	/* Unknown program. */
	assert_int_equal(kernel(3, 77, "scale", &info, NULL, 0), VGPU_COMPUTE_E_OBJECT);
}

/* One bad field, one result code, and nothing written but the status. */
static void expect_invalid(struct stream *s, uint32_t want, uint32_t want_index)
{
	struct vgpu_compute_status st;
	uint8_t before[256];

	memcpy(before, fe_ptr(&F, gpa_out), sizeof(before));
	memset(fe_ptr(&F, gpa_out), 0x5a, sizeof(before));
	assert_int_equal(s_submit(s, &st), want);
	assert_int_equal(st.op_index, want_index);
	assert_int_equal(st.ops_done, 0);
	for (size_t i = 0; i < sizeof(before); i++)
		assert_int_equal(((uint8_t *)fe_ptr(&F, gpa_out))[i], 0x5a);
	memcpy(fe_ptr(&F, gpa_out), before, sizeof(before));
}

static void test_validation(void **state)
{
	struct vgpu_compute_op op, nop = v3op(VGPU_OP_NOP, 0);
	struct stream s;
	struct dpl p;
	float a = 1;
	size_t n;

	(void)state;
	/* Kernel id 0 and past max_kernels. */
	d_init(&p, 16, 0);
	d_buf(&p, R_X, 0, 64, VGPU_OP_READ | VGPU_OP_WRITE);
	d_val(&p, &a, 4);
	d_val(&p, &a, 4);
	op = v3op(VGPU_OP_DISPATCH, 0);
	op.len = d_bytes(&p);
	s_begin(&s);
	s_op(&s, &nop, NULL, 0);
	s_op(&s, &op, p.b, op.len);
	expect_invalid(&s, VGPU_COMPUTE_E_OBJECT, 1);
	op.arg0 = PROGRAMS_MAX_KERNELS + 1;
	s_begin(&s);
	s_op(&s, &op, p.b, op.len);
	expect_invalid(&s, VGPU_COMPUTE_E_OBJECT, 0);
	/* The payload runs past the stream. */
	op.arg0 = 1;
	s_begin(&s);
	s_op(&s, &op, p.b, op.len);
	s.len -= 8;
	expect_invalid(&s, VGPU_COMPUTE_E_MALFORMED, 0);
	/* Trailing bytes after the last op. */
	s_begin(&s);
	s_op(&s, &op, p.b, op.len);
	s.len += 8;
	expect_invalid(&s, VGPU_COMPUTE_E_MALFORMED, 0);
	/* A payload longer than the limit. */
	op.len = VGPU_COMPUTE_MAX_PAYLOAD + 8;
	s_begin(&s);
	s_op(&s, &op, p.b, 64);
	s.len += VGPU_COMPUTE_PAYLOAD_PAD(op.len) - 64;
	assert_true(s.len < sizeof(s.b));
	expect_invalid(&s, VGPU_COMPUTE_E_MALFORMED, 0);
	/* work_dim 0 and 4, a global size of 0, a local size larger than it,
	 * an NDRange past 2^48 work-items. */
	for (int k = 0; k < 5; k++) {
		static const uint32_t want[] = {
			VGPU_COMPUTE_E_MALFORMED, VGPU_COMPUTE_E_MALFORMED, VGPU_COMPUTE_E_WORKSIZE,
			VGPU_COMPUTE_E_WORKSIZE, VGPU_COMPUTE_E_WORKSIZE,
		};

		d_init(&p, 16, 0);
		if (k == 0)
			p.d.work_dim = 0;
		if (k == 1)
			p.d.work_dim = 4;
		if (k == 2)
			p.d.global_size[0] = 0;
		if (k == 3)
			p.d.local_size[0] = 32;
		if (k == 4) {
			p.d.work_dim = 3;
			p.d.global_size[0] = p.d.global_size[1] = p.d.global_size[2] = 1u << 20;
		}
		d_buf(&p, R_X, 0, 64, VGPU_OP_READ | VGPU_OP_WRITE);
		op = v3op(VGPU_OP_DISPATCH, 1);
		op.len = d_bytes(&p);
		s_begin(&s);
		s_op(&s, &op, p.b, op.len);
		expect_invalid(&s, want[k], 0);
	}
	/* Buffers: past the resource, not attached, not windowable, no
	 * access, an unknown kind, a value past the value area. */
	for (int k = 0; k < 7; k++) {
		static const uint32_t want[] = {
			VGPU_COMPUTE_E_RANGE, VGPU_COMPUTE_E_RESOURCE, VGPU_COMPUTE_E_NOWINDOW,
			VGPU_COMPUTE_E_MALFORMED, VGPU_COMPUTE_E_MALFORMED, VGPU_COMPUTE_E_MALFORMED,
			VGPU_COMPUTE_E_WORKSIZE,
		};

		d_init(&p, 16, 0);
		switch (k) {
		case 0:
			d_buf(&p, R_X, 4 * XPIECE - 60, 64, VGPU_OP_READ);
			break;
		case 1:
			d_buf(&p, R_NA, 0, 64, VGPU_OP_READ);
			break;
		case 2:
			d_buf(&p, R_ODD, 0, 64, VGPU_OP_READ);
			break;
		case 3:
			d_buf(&p, R_X, 0, 64, 0);
			break;
		case 4:
			d_buf(&p, R_X, 0, 64, VGPU_OP_READ);
			p.a[0].kind = 9;
			break;
		case 5:
			d_val(&p, &a, 4);
			p.a[0].offset = 8;
			break;
		case 6:
			d_local(&p, 1ull << 40);
			break;
		}
		op = v3op(VGPU_OP_DISPATCH, 1);
		op.len = d_bytes(&p);
		s_begin(&s);
		s_op(&s, &op, p.b, op.len);
		expect_invalid(&s, want[k], 0);
	}
	/* More arguments than a dispatch may have (the count alone). */
	d_init(&p, 16, 0);
	n = d_bytes(&p);
	((struct vgpu_dispatch *)(void *)p.b)->num_args = PROGRAMS_MAX_ARGS + 1;
	op = v3op(VGPU_OP_DISPATCH, 1);
	op.len = n;
	s_begin(&s);
	s_op(&s, &op, p.b, op.len);
	expect_invalid(&s, VGPU_COMPUTE_E_MALFORMED, 0);
	/* KERNEL_CREATE: a name without its NUL, an empty one, no room for
	 * the info record. */
	op = v3op(VGPU_OP_KERNEL_CREATE, 5);
	op.arg1 = 1;
	op.dst_res = R_OUT;
	op.arg2 = 4096;
	op.len = 5;
	s_begin(&s);
	s_op(&s, &op, "scale", 5);
	expect_invalid(&s, VGPU_COMPUTE_E_MALFORMED, 0);
	op.len = 1;
	s_begin(&s);
	s_op(&s, &op, "", 1);
	expect_invalid(&s, VGPU_COMPUTE_E_MALFORMED, 0);
	op.len = 6;
	op.arg2 = sizeof(struct vgpu_kernel_info) - 1;
	s_begin(&s);
	s_op(&s, &op, "scale", 6);
	expect_invalid(&s, VGPU_COMPUTE_E_RANGE, 0);
	/* PROGRAM_BUILD: an input shorter than its header; output in a
	 * read-only resource is caught as for every op (not tested here);
	 * a nonzero flags field is an unknown op. */
	op = v3op(VGPU_OP_PROGRAM_BUILD, 9);
	op.src_res = R_IN;
	op.arg1 = 8;
	op.dst_res = R_OUT;
	op.arg2 = 4096;
	s_begin(&s);
	s_op(&s, &op, NULL, 0);
	expect_invalid(&s, VGPU_COMPUTE_E_RANGE, 0);
	op.arg1 = 64;
	op.flags = 1;
	s_begin(&s);
	s_op(&s, &op, NULL, 0);
	expect_invalid(&s, VGPU_COMPUTE_E_OPCODE, 0);
	/* QUERY of an unknown id; releases with a payload. */
	op = v3op(VGPU_OP_QUERY, 99);
	op.dst_res = R_OUT;
	op.arg2 = 4096;
	s_begin(&s);
	s_op(&s, &op, NULL, 0);
	expect_invalid(&s, VGPU_COMPUTE_E_MALFORMED, 0);
	op = v3op(VGPU_OP_KERNEL_RELEASE, 1);
	op.len = 8;
	s_begin(&s);
	s_op(&s, &op, "12345678", 8);
	expect_invalid(&s, VGPU_COMPUTE_E_MALFORMED, 0);
}

/* What the worker checks: arguments that do not fit the kernel. */
static void test_argument_mismatch(void **state)
{
	struct dpl p;
	float a = 1;

	(void)state;
	/* scale takes three arguments. */
	d_init(&p, 16, 0);
	d_buf(&p, R_X, 0, 64, VGPU_OP_READ | VGPU_OP_WRITE);
	d_val(&p, &a, 4);
	assert_int_equal(dispatch(1, &p), VGPU_COMPUTE_E_ARGS);
	/* A buffer where a value goes. */
	d_init(&p, 16, 0);
	d_buf(&p, R_X, 0, 64, VGPU_OP_READ | VGPU_OP_WRITE);
	d_buf(&p, R_Y, 0, 64, VGPU_OP_READ);
	d_val(&p, &a, 4);
	assert_int_equal(dispatch(1, &p), VGPU_COMPUTE_E_ARGS);
	/* A kernel that was never made. */
	d_init(&p, 16, 0);
	assert_int_equal(dispatch(99, &p), VGPU_COMPUTE_E_OBJECT);
	/* The context goes on. */
	d_init(&p, 16, 0);
	d_buf(&p, R_X, 0, 64, VGPU_OP_READ | VGPU_OP_WRITE);
	d_val(&p, &a, 4);
	d_val(&p, &a, 4);
	assert_int_equal(dispatch(1, &p), VGPU_COMPUTE_OK);
}

/* The binary comes back and builds again; releases forget ids. */
static void test_binary_and_release(void **state)
{
	struct vgpu_compute_op op;
	struct vgpu_blob_header bh;
	struct vgpu_build_result br;
	struct vgpu_kernel_info info;
	struct stream s;
	uint8_t *bin;

	(void)state;
	op = v3op(VGPU_OP_PROGRAM_BINARY, 1);
	op.dst_res = R_OUT;
	op.arg2 = sizeof(bh);
	s_begin(&s);
	s_op(&s, &op, NULL, 0);
	assert_int_equal(s_submit(&s, NULL), VGPU_COMPUTE_OK);
	memcpy(&bh, fe_ptr(&F, gpa_out), sizeof(bh));
	assert_true(bh.size > 0);
	assert_int_equal(bh.written, 0);   /* no room: nothing of it */
	assert_true(bh.size + sizeof(bh) <= 65536);
	op.arg2 = 65536;
	s_begin(&s);
	s_op(&s, &op, NULL, 0);
	assert_int_equal(s_submit(&s, NULL), VGPU_COMPUTE_OK);
	memcpy(&bh, fe_ptr(&F, gpa_out), sizeof(bh));
	assert_int_equal(bh.written, bh.size);
	bin = malloc(bh.size);
	memcpy(bin, (uint8_t *)fe_ptr(&F, gpa_out) + sizeof(bh), bh.size);
	assert_int_equal(build_on(1, R_IN, gpa_in, R_OUT, gpa_out, R_ST, gpa_st, 4,
				  VGPU_PROGRAM_BINARY, bin, bh.size, "", &br, NULL, 0),
			 VGPU_COMPUTE_OK);
	assert_int_equal(br.status, 0);
	assert_int_equal(br.num_kernels, 2);
	/* Garbage as a binary: a failed build, not a failed device. */
	memset(bin, 0x42, bh.size);
	assert_int_equal(build_on(1, R_IN, gpa_in, R_OUT, gpa_out, R_ST, gpa_st, 5,
				  VGPU_PROGRAM_BINARY, bin, bh.size, "", &br, NULL, 0),
			 VGPU_COMPUTE_OK);
	assert_true(br.status != 0);
	free(bin);
	assert_int_equal(kernel(6, 4, "scale", &info, NULL, 0), 0);
	assert_int_equal(info.status, 0);
	/* Release the program: its kernel stays; new kernels from it fail. */
	op = v3op(VGPU_OP_PROGRAM_RELEASE, 4);
	s_begin(&s);
	s_op(&s, &op, NULL, 0);
	assert_int_equal(s_submit(&s, NULL), VGPU_COMPUTE_OK);
	assert_int_equal(kernel(7, 4, "scale", &info, NULL, 0), VGPU_COMPUTE_E_OBJECT);
	{
		struct dpl p;
		float a = 1;

		d_init(&p, 16, 0);
		d_buf(&p, R_X, 0, 64, VGPU_OP_READ | VGPU_OP_WRITE);
		d_val(&p, &a, 4);
		d_val(&p, &a, 4);
		assert_int_equal(dispatch(6, &p), VGPU_COMPUTE_OK);
		op = v3op(VGPU_OP_KERNEL_RELEASE, 6);
		s_begin(&s);
		s_op(&s, &op, NULL, 0);
		assert_int_equal(s_submit(&s, NULL), VGPU_COMPUTE_OK);
		assert_int_equal(dispatch(6, &p), VGPU_COMPUTE_E_OBJECT);
	}
	/* A release of what is not there. */
	op = v3op(VGPU_OP_PROGRAM_RELEASE, 4);
	s_begin(&s);
	s_op(&s, &op, NULL, 0);
	assert_int_equal(s_submit(&s, NULL), VGPU_COMPUTE_E_OBJECT);
}

/* The device as OpenCL describes it. */
static void test_query(void **state)
{
	struct vgpu_compute_op op = v3op(VGPU_OP_QUERY, VGPU_QUERY_DEVICE_INFO);
	struct vgpu_blob_header bh;
	struct stream s;
	const uint8_t *p;
	bool name = false;

	(void)state;
	op.dst_res = R_OUT;
	op.arg2 = 65536;
	s_begin(&s);
	s_op(&s, &op, NULL, 0);
	assert_int_equal(s_submit(&s, NULL), VGPU_COMPUTE_OK);
	memcpy(&bh, fe_ptr(&F, gpa_out), sizeof(bh));
	assert_true(bh.size > 64);
	assert_int_equal(bh.written, bh.size);
	p = (uint8_t *)fe_ptr(&F, gpa_out) + sizeof(bh);
	for (uint64_t pos = 0; pos < bh.size;) {
		struct vgpu_info_record r;

		assert_true(bh.size - pos >= sizeof(r));
		memcpy(&r, p + pos, sizeof(r));
		pos += sizeof(r);
		assert_true(r.size <= bh.size - pos);
		if (r.param == CL_DEVICE_NAME) {
			assert_true(r.size > 1);
			assert_int_equal(p[pos + r.size - 1], 0);
			name = true;
		}
		pos += (r.size + 7) & ~7u;
	}
	assert_true(name);
}

/* A window lasts as long as its backing, and goes with it. */
static void test_window_lifetime(void **state)
{
	uint64_t gpa = simple_blob(&F, 1, R_TMP, 0, 1, 8192);
	uint64_t windows = STAT_GET(worker_windows);
	struct dpl p;
	float a = 3, v;
	uint32_t n = 4;

	(void)state;
	assert_true(gpa != 0);
	assert_int_equal(cmd_attach(&F, 1, R_TMP), VIRTIO_GPU_RESP_OK_NODATA);
	memset(fe_ptr(&F, gpa), 0, 8192);
	d_init(&p, 4, 0);
	d_buf(&p, R_TMP, 0, 16, VGPU_OP_READ | VGPU_OP_WRITE);
	d_val(&p, &a, 4);
	d_val(&p, &n, 4);
	assert_int_equal(dispatch(1, &p), VGPU_COMPUTE_OK);
	memcpy(&v, (uint8_t *)fe_ptr(&F, gpa) + 12, 4);
	assert_true(v == 3.0f);
	assert_int_equal(STAT_GET(worker_windows), windows + 1);
	/* Again: the same window. */
	assert_int_equal(dispatch(1, &p), VGPU_COMPUTE_OK);
	assert_int_equal(STAT_GET(worker_windows), windows + 1);
	/* The resource goes: so does the window, before UNREF is answered,
	 * and the worker lives on. */
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, R_TMP), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(worker_windows), windows);
	assert_int_equal(dispatch(1, &p), VGPU_COMPUTE_E_RESOURCE);
	d_init(&p, 4, 0);
	d_buf(&p, R_Y, 0, 16, VGPU_OP_READ | VGPU_OP_WRITE);
	d_val(&p, &a, 4);
	d_val(&p, &n, 4);
	assert_int_equal(dispatch(1, &p), VGPU_COMPUTE_OK);
	assert_int_equal(STAT_GET(worker_refused_maps), 0);
}

static const char HOSTILE[] =
	"__kernel void spin(__global volatile int *p)\n"
	"{\n"
	"	while (p[0] == 0)\n"
	"		p[1]++;\n"
	"}\n"
	"__kernel void wild(__global int *p, const ulong far)\n"
	"{\n"
	"	p[far] = 1;\n"
	"}\n"
	"__kernel void peek(__global const ulong *p, __global ulong *out, const ulong n)\n"
	"{\n"
	"	for (ulong i = 0; i < n; i++)\n"
	"		out[i & 1023] ^= p[i];\n"
	"}\n";

/* Context 2 runs hostile kernels: its own context is lost, context 1 and
 * the device go on, and nothing of context 1's pages reaches it. */
static void test_hostile_context(void **state)
{
	struct vgpu_build_result br;
	struct vgpu_kernel_info info;
	struct vgpu_compute_status st;
	struct dpl p;
	uint64_t lost = STAT_GET(workers_lost), far = 1ull << 38, n;
	const uint64_t canary = 0x79726143654b6f4eull;
	char log[2048];

	(void)state;
	/* Context 1's pages hold a canary. */
	for (uint32_t i = 0; i < XN; i += 2)
		memcpy((uint8_t *)fe_ptr(&F, gpa_x[i * 4 / XPIECE]) + (i * 4) % XPIECE, &canary, 8);
	assert_int_equal(build_on(2, R_C2IN, gpa_c2in, R_C2OUT, gpa_c2out, R_C2ST, gpa_c2st, 1,
				  VGPU_PROGRAM_SOURCE, HOSTILE, strlen(HOSTILE), "", &br, log,
				  sizeof(log)),
			 VGPU_COMPUTE_OK);
	if (br.status)
		fail_msg("build: %d: %s", br.status, log);
	assert_int_equal(kernel_on(2, R_C2OUT, gpa_c2out, R_C2ST, gpa_c2st, 1, 1, "peek", &info,
				   NULL, 0), 0);
	assert_int_equal(kernel_on(2, R_C2OUT, gpa_c2out, R_C2ST, gpa_c2st, 2, 1, "wild", &info,
				   NULL, 0), 0);
	assert_int_equal(kernel_on(2, R_C2OUT, gpa_c2out, R_C2ST, gpa_c2st, 3, 1, "spin", &info,
				   NULL, 0), 0);
	/* Reading past its 16 KiB buffer, as far as it can: the worker
	 * maps nothing of context 1, so it either faults or reads its own
	 * memory; either way no canary comes out. */
	memset(fe_ptr(&F, gpa_c2), 0, 16384);
	n = 1ull << 20;
	d_init(&p, 1, 0);
	d_buf(&p, R_C2, 0, 8192, VGPU_OP_READ);
	d_buf(&p, R_C2, 8192, 8192, VGPU_OP_WRITE);
	d_val(&p, &n, 8);
	(void)dispatch_on(2, R_C2ST, gpa_c2st, 1, &p, &st);
	for (uint32_t i = 0; i < 16384 / 8; i++) {
		uint64_t v;

		memcpy(&v, (uint8_t *)fe_ptr(&F, gpa_c2) + i * 8, 8);
		assert_true(v != canary);
	}
	/* A wild write: the worker faults, context 2 is lost. */
	if (st.result == VGPU_COMPUTE_OK) {
		d_init(&p, 1, 0);
		d_buf(&p, R_C2, 0, 64, VGPU_OP_WRITE);
		d_val(&p, &far, 8);
		assert_int_equal(dispatch_on(2, R_C2ST, gpa_c2st, 2, &p, &st), VGPU_COMPUTE_E_LOST);
	} else {
		assert_int_equal(st.result, VGPU_COMPUTE_E_LOST);
	}
	assert_int_equal(STAT_GET(workers_lost), lost + 1);
	/* Every later op of context 2 fails the same way, at once. */
	d_init(&p, 1, 0);
	d_buf(&p, R_C2, 0, 64, VGPU_OP_WRITE);
	assert_int_equal(dispatch_on(2, R_C2ST, gpa_c2st, 3, &p, &st), VGPU_COMPUTE_E_LOST);
	/* Context 1 goes on, its canary intact. */
	for (uint32_t i = 0; i < XN; i += 2) {
		uint64_t v;

		memcpy(&v, (uint8_t *)fe_ptr(&F, gpa_x[i * 4 / XPIECE]) + (i * 4) % XPIECE, 8);
		assert_true(v == canary);
	}
	{
		float a = 1;
		uint32_t cnt = 4;

		d_init(&p, 4, 0);
		d_buf(&p, R_Y, 0, 16, VGPU_OP_READ | VGPU_OP_WRITE);
		d_val(&p, &a, 4);
		d_val(&p, &cnt, 4);
		assert_int_equal(dispatch(1, &p), VGPU_COMPUTE_OK);
	}
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* A kernel that never ends costs its context, after the budget. */
static void test_endless_kernel(void **state)
{
	struct vgpu_build_result br;
	struct vgpu_kernel_info info;
	struct vgpu_compute_status st;
	struct timespec wall0, wall1, cpu0, cpu1;
	int64_t cpu_ns, wall_ns;
	struct dpl p;
	uint64_t lost;

	(void)state;
	/* A fresh context 2. */
	assert_int_equal(cmd_ctx_destroy(&F, 2), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_ctx_create(&F, 2, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	for (uint32_t r = R_C2; r <= R_C2OUT; r++)
		assert_int_equal(cmd_attach(&F, 2, r), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(build_on(2, R_C2IN, gpa_c2in, R_C2OUT, gpa_c2out, R_C2ST, gpa_c2st, 1,
				  VGPU_PROGRAM_SOURCE, HOSTILE, strlen(HOSTILE), "", &br, NULL, 0),
			 VGPU_COMPUTE_OK);
	assert_int_equal(br.status, 0);
	assert_int_equal(kernel_on(2, R_C2OUT, gpa_c2out, R_C2ST, gpa_c2st, 3, 1, "spin", &info,
				   NULL, 0), 0);
	lost = STAT_GET(workers_lost);
	memset(fe_ptr(&F, gpa_c2), 0, 64);
	d_init(&p, 1, 0);
	d_buf(&p, R_C2, 0, 64, VGPU_OP_READ | VGPU_OP_WRITE);
	clock_gettime(CLOCK_MONOTONIC, &wall0);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
	assert_int_equal(dispatch_on(2, R_C2ST, gpa_c2st, 3, &p, &st), VGPU_COMPUTE_E_TIMEOUT);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
	clock_gettime(CLOCK_MONOTONIC, &wall1);
	assert_int_equal(st.op_index, 0);
	/* The device sleeps while the worker runs: the cores are the
	 * kernel's (a deadline wait that spun took one of them). */
	cpu_ns = ts_ns(&cpu1) - ts_ns(&cpu0);
	wall_ns = ts_ns(&wall1) - ts_ns(&wall0);
	printf("# endless kernel: %.3f s waited, %.3f s of the device's CPU\n", wall_ns / 1e9,
	       cpu_ns / 1e9);
	assert_true(cpu_ns < wall_ns / 4);
	assert_int_equal(STAT_GET(workers_lost), lost + 1);
	assert_int_equal(dispatch_on(2, R_C2ST, gpa_c2st, 3, &p, &st), VGPU_COMPUTE_E_LOST);
	/* The guest's pages are its own again: the worker is gone. */
	{
		int32_t before, after;

		memcpy(&before, (uint8_t *)fe_ptr(&F, gpa_c2) + 4, 4);
		usleep(200000);
		memcpy(&after, (uint8_t *)fe_ptr(&F, gpa_c2) + 4, 4);
		assert_int_equal(before, after);
	}
}

/* A fresh context 2 with its resources, its worker not started yet. */
static void fresh_ctx2(void)
{
	assert_int_equal(cmd_ctx_destroy(&F, 2), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_ctx_create(&F, 2, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	for (uint32_t r = R_C2; r <= R_C2OUT; r++)
		assert_int_equal(cmd_attach(&F, 2, r), VIRTIO_GPU_RESP_OK_NODATA);
}

static void build_ctx2(const char *src, const char *const *names, uint32_t n)
{
	struct vgpu_build_result br;
	struct vgpu_kernel_info info;
	char log[4096];

	assert_int_equal(build_on(2, R_C2IN, gpa_c2in, R_C2OUT, gpa_c2out, R_C2ST, gpa_c2st, 1,
				  VGPU_PROGRAM_SOURCE, src, strlen(src), "", &br, log,
				  sizeof(log)),
			 VGPU_COMPUTE_OK);
	if (br.status)
		fail_msg("build: %d: %s", br.status, log);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(kernel_on(2, R_C2OUT, gpa_c2out, R_C2ST, gpa_c2st, i + 1, 1,
					   names[i], &info, NULL, 0), 0);
}

/* Context 1 still runs its kernel. */
static void ctx1_still_works(void)
{
	struct dpl p;
	float a = 1, v;
	uint32_t cnt = 4;

	memset(fe_ptr(&F, gpa_y), 0, 16);
	d_init(&p, 4, 0);
	d_buf(&p, R_Y, 0, 16, VGPU_OP_READ | VGPU_OP_WRITE);
	d_val(&p, &a, 4);
	d_val(&p, &cnt, 4);
	assert_int_equal(dispatch(1, &p), VGPU_COMPUTE_OK);
	memcpy(&v, (uint8_t *)fe_ptr(&F, gpa_y) + 12, 4);
	assert_true(v == 3.0f);
}

#if defined(__x86_64__)
/*
 * Raw system calls from a kernel (inline assembly, which PoCL compiles for
 * the host CPU): what each returned lands in out[]. getpid() working shows
 * that the calls really reach the kernel; everything else must fail.
 */
static const char SYSCALLS[] =
	"static long sc(long n, long a, long b, long c, long d, long e, long f)\n"
	"{\n"
	"	long r;\n"
	"	__asm__ volatile(\"mov %5, %%r10\\n\\tmov %6, %%r8\\n\\tmov %7, %%r9\\n\\tsyscall\"\n"
	"		: \"=a\"(r) : \"a\"(n), \"D\"(a), \"S\"(b), \"d\"(c), \"r\"(d), \"r\"(e), \"r\"(f)\n"
	"		: \"rcx\", \"r11\", \"r10\", \"r8\", \"r9\", \"memory\");\n"
	"	return r;\n"
	"}\n"
	"static int bad(long r) { return r < 0 && r > -4096; }\n"
	"__kernel void sys(__global long *out, __global char *win, const ulong ram_off,\n"
	"		  const ulong canary, const int daemon, const int ram_fd)\n"
	"{\n"
	"	long mapped = 0, hits = 0, r;\n"
	"	ulong iov[2] = { (ulong)iov, 8 };\n"
	"	char sh[8] = { '/', 'b', 'i', 'n', '/', 's', 'h', 0 };\n"
	"	ulong argv[2] = { (ulong)sh, 0 };\n"
	"	char path[108] = { 0 };\n"
	"	out[0] = sc(39, 0, 0, 0, 0, 0, 0);\n"                  /* getpid */
	"	for (int fd = 0; fd < 64 + 8; fd++) {\n"
	"		int f = fd < 64 ? fd : ram_fd + fd - 64;\n"
	"		r = sc(9, 0, 4096, 1, 1, f, (long)ram_off);\n"       /* mmap */
	"		if (!bad(r)) {\n"
	"			mapped++;\n"
	"			hits += *(__global volatile ulong *)r == canary;\n"
	"			sc(11, r, 4096, 0, 0, 0, 0);\n"
	"		}\n"
	"	}\n"
	"	out[1] = mapped;\n"
	"	out[2] = hits;\n"
	"	r = sc(9, 0, 4096, 1, 1, ram_fd, (long)ram_off);\n"
	"	out[3] = r;\n"
	"	out[4] = sc(25, (long)win & ~4095l, 4096, 1 << 20, 1, 0, 0);\n"  /* mremap */
	"	out[5] = sc(101, 16, daemon, 0, 0, 0, 0);\n"          /* ptrace ATTACH */
	"	out[6] = sc(310, daemon, (long)iov, 1, (long)iov, 1, 0);\n" /* process_vm_readv */
	"	out[7] = sc(41, 1, 1, 0, 0, 0, 0);\n"                 /* socket(AF_UNIX) */
	"	path[0] = 1;\n"
	"	out[8] = sc(42, 3, (long)path, sizeof(path), 0, 0, 0);\n" /* connect */
	"	out[9] = sc(59, (long)sh, (long)argv, 0, 0, 0, 0);\n" /* execve */
	"	out[10] = sc(32, ram_fd, 0, 0, 0, 0, 0);\n"           /* dup */
	"	out[11] = sc(72, ram_fd, 0, 0, 0, 0, 0);\n"           /* fcntl F_DUPFD */
	"	out[12] = sc(17, ram_fd, (long)path, 8, (long)ram_off, 0, 0);\n" /* pread64 */
	"	out[13] = sc(62, daemon, 9, 0, 0, 0, 0);\n"           /* kill */
	"	out[14] = sc(2, (long)\"/proc/self/mem\", 2, 0, 0, 0, 0);\n" /* open */
	"	out[15] = sc(9, 0, 4096, 1, 1, (1l << 32) | ram_fd, (long)ram_off);\n"
	"	out[16] = sc(32, (1l << 32) | ram_fd, 0, 0, 0, 0, 0);\n"
	"	out[17] = 1;\n"
	"}\n"
	/* A read-only binding made writable, then written. */
	"__kernel void sysro(__global long *out, __global const char *ro)\n"
	"{\n"
	"	out[0] = sc(10, (long)ro & ~4095l, 4096, 3, 0, 0, 0);\n" /* mprotect RW */
	"	out[1] = 1;\n"
	"}\n";

static void test_raw_syscalls(void **state)
{
	static const char *const names[] = { "sys", "sysro" };
	static const char *const what[] = {
		"getpid", "mmaps of any fd that succeeded", "canaries read", "mmap of guest RAM",
		"mremap growing a window", "ptrace", "process_vm_readv", "socket", "connect",
		"execve", "dup of guest RAM", "fcntl of guest RAM", "pread of guest RAM",
		"kill of the daemon", "open of /proc/self/mem",
		"mmap of guest RAM with high bits in the fd", "dup of guest RAM with high bits",
	};
	const uint64_t canary = 0x6c6c61637379536eull;
	uint64_t off = F.reg[1].off + (gpa_x[0] - F.reg[1].gpa);
	int32_t daemon = (int32_t)getpid(), ramfd = WP_FD_RAM;
	struct vgpu_compute_status st;
	int64_t out[18];
	struct dpl p;

	(void)state;
	memcpy(fe_ptr(&F, gpa_x[0]), &canary, 8);
	fresh_ctx2();
	build_ctx2(SYSCALLS, names, 2);
	memset(fe_ptr(&F, gpa_c2), 0, 16384);
	d_init(&p, 1, 1);
	d_buf(&p, R_C2, 0, 128, VGPU_OP_READ | VGPU_OP_WRITE);
	d_buf(&p, R_C2, 4096, 4096, VGPU_OP_READ | VGPU_OP_WRITE);
	d_val(&p, &off, 8);
	d_val(&p, &canary, 8);
	d_val(&p, &daemon, 4);
	d_val(&p, &ramfd, 4);
	assert_int_equal(dispatch_on(2, R_C2ST, gpa_c2st, 1, &p, &st), VGPU_COMPUTE_OK);
	memcpy(out, fe_ptr(&F, gpa_c2), sizeof(out));
	for (int i = 0; i < 17; i++)
		printf("# %s: %lld\n", what[i], (long long)out[i]);
	assert_int_equal(out[17], 1);
	assert_true(out[0] > 0);           /* the calls reach the kernel */
	assert_int_equal(out[2], 0);       /* no canary */
	for (int i = 3; i < 17; i++)
		if (!(out[i] < 0 && out[i] > -4096))
			fail_msg("%s from a kernel returned %lld", what[i], (long long)out[i]);
	/* Nothing of that killed the worker or the daemon. */
	assert_int_equal(dispatch_on(2, R_C2ST, gpa_c2st, 1, &p, &st), VGPU_COMPUTE_OK);
	/* A read-only blob's binding cannot be made writable: its window
	 * is a shared mapping of the memory file opened read-only. */
	{
		uint64_t ro_gpa = fe_alloc(&F, 1, 4096, 0);
		struct virtio_gpu_mem_entry e = { ro_gpa, 4096, 0 };

		assert_int_equal(cmd_blob(&F, 2, R_C2RO, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST,
					  VIRTIO_GPU_BLOB_FLAG_RDONLY, 4096, &e, 1),
				 VIRTIO_GPU_RESP_OK_NODATA);
		assert_int_equal(cmd_attach(&F, 2, R_C2RO), VIRTIO_GPU_RESP_OK_NODATA);
		memset(fe_ptr(&F, gpa_c2), 0, 64);
		d_init(&p, 1, 1);
		d_buf(&p, R_C2, 0, 64, VGPU_OP_READ | VGPU_OP_WRITE);
		d_buf(&p, R_C2RO, 0, 4096, VGPU_OP_READ);
		assert_int_equal(dispatch_on(2, R_C2ST, gpa_c2st, 2, &p, &st), VGPU_COMPUTE_OK);
		memcpy(out, fe_ptr(&F, gpa_c2), 16);
		printf("# mprotect of a read-only window to read-write: %lld\n", (long long)out[0]);
		assert_int_equal(out[1], 1);
		assert_true(out[0] < 0 && out[0] > -4096);
		assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, R_C2RO),
				 VIRTIO_GPU_RESP_OK_NODATA);
	}
	ctx1_still_works();
}
#endif

/* A kernel that prints in a loop: the output is bounded, the op ends. */
static void test_printf_loop(void **state)
{
	static const char SRC_PRINTF[] =
		"__kernel void chatty(__global int *p)\n"
		"{\n"
		"	for (int i = 0; i < 200000; i++)\n"
		"		printf(\"line %d of a kernel that does not stop talking\\n\", i);\n"
		"	p[0] = 7;\n"
		"}\n";
	static const char *const names[] = { "chatty" };
	struct vgpu_compute_status st;
	struct dpl p;
	uint32_t r;
	int32_t v;

	(void)state;
	fresh_ctx2();
	build_ctx2(SRC_PRINTF, names, 1);
	memset(fe_ptr(&F, gpa_c2), 0, 64);
	d_init(&p, 1, 1);
	d_buf(&p, R_C2, 0, 64, VGPU_OP_READ | VGPU_OP_WRITE);
	r = dispatch_on(2, R_C2ST, gpa_c2st, 1, &p, &st);
	memcpy(&v, fe_ptr(&F, gpa_c2), 4);
	printf("# printf loop: result %u, p[0] %d\n", r, v);
	assert_true((r == VGPU_COMPUTE_OK && v == 7) || r == VGPU_COMPUTE_E_TIMEOUT);
	ctx1_still_works();
}

/* The worker's pid: the live child of this process running
 * virtgpu-worker that is not in skip[] (0: none). */
static pid_t find_worker(const pid_t *skip, int nskip)
{
	char path[300], buf[512], comm[64];
	struct dirent *d;
	pid_t found = 0;
	DIR *dir = opendir("/proc");

	assert_non_null(dir);
	while (!found && (d = readdir(dir))) {
		pid_t pid = (pid_t)atoi(d->d_name);
		bool skipped = false;
		char state;
		int ppid;
		FILE *f;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f) &&
		    sscanf(buf, "%*d (%63[^)]) %c %d", comm, &state, &ppid) == 3 &&
		    ppid == getpid() && state != 'Z' && state != 'X' &&
		    !strncmp(comm, "virtgpu-worker", 14)) {
			for (int i = 0; i < nskip; i++)
				skipped |= skip[i] == pid;
			if (!skipped)
				found = pid;
		}
		fclose(f);
	}
	closedir(dir);
	return found;
}

struct killer {
	pid_t pid;
	int delay_ms;
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;

	usleep((useconds_t)k->delay_ms * 1000);
	kill(k->pid, SIGKILL);
	return NULL;
}

/* A worker killed in the middle of a dispatch: that context is lost with
 * E_LOST, at once, and nothing else is. */
static void test_worker_killed(void **state)
{
	static const char *const names[] = { "peek", "wild", "spin" };
	struct vgpu_compute_status st;
	struct killer k = { 0, 300 };
	uint64_t lost;
	pthread_t t;
	struct dpl p;
	pid_t ctx1;
	int64_t t0;

	(void)state;
	ctx1_still_works();
	ctx1 = find_worker(NULL, 0);
	assert_true(ctx1 > 0);
	fresh_ctx2();
	build_ctx2(HOSTILE, names, 3);
	k.pid = find_worker(&ctx1, 1);
	assert_true(k.pid > 0);
	lost = STAT_GET(workers_lost);
	memset(fe_ptr(&F, gpa_c2), 0, 64);
	d_init(&p, 1, 0);
	d_buf(&p, R_C2, 0, 64, VGPU_OP_READ | VGPU_OP_WRITE);
	assert_int_equal(pthread_create(&t, NULL, killer_main, &k), 0);
	t0 = (int64_t)time(NULL);
	assert_int_equal(dispatch_on(2, R_C2ST, gpa_c2st, 3, &p, &st), VGPU_COMPUTE_E_LOST);
	pthread_join(t, NULL);
	/* Well before the budget: the death ended the wait, not the watchdog. */
	assert_true((int64_t)time(NULL) - t0 < BUDGET_MS / 1000 / 2);
	assert_int_equal(STAT_GET(workers_lost), lost + 1);
	assert_int_equal(dispatch_on(2, R_C2ST, gpa_c2st, 3, &p, &st), VGPU_COMPUTE_E_LOST);
	/* The killed process is gone (its exit may still be under way when
	 * the daemon sees its socket close: bounded). */
	for (int i = 0; i < 1000 && find_worker(&ctx1, 1); i++)
		usleep(10000);
	assert_int_equal(find_worker(&ctx1, 1), 0);
	ctx1_still_works();
	assert_int_equal(find_worker(NULL, 0), ctx1);
}

/* A new memory table: workers started before it are lost. */
static void test_memory_table(void **state)
{
	struct dpl p;
	float a = 1;
	uint32_t n = 4;
	struct vgpu_compute_status st;

	(void)state;
	fe_set_mem_table(&F);
	d_init(&p, 4, 0);
	d_buf(&p, R_Y, 0, 16, VGPU_OP_READ | VGPU_OP_WRITE);
	d_val(&p, &a, 4);
	d_val(&p, &n, 4);
	assert_int_equal(dispatch_on(1, R_ST, gpa_st, 1, &p, &st), VGPU_COMPUTE_E_LOST);
	/* A new context starts a worker with the new table. */
	assert_int_equal(cmd_ctx_destroy(&F, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	for (uint32_t r = R_IN; r <= R_ODD; r++)
		assert_int_equal(cmd_attach(&F, 1, r), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(build(1, SRC, NULL, NULL, 0), 0);
	assert_int_equal(kernel(1, 1, "scale", &(struct vgpu_kernel_info){ 0 }, NULL, 0), 0);
	memset(fe_ptr(&F, gpa_y), 0, 16);
	assert_int_equal(dispatch(1, &p), VGPU_COMPUTE_OK);
	{
		float v;

		memcpy(&v, (uint8_t *)fe_ptr(&F, gpa_y) + 12, 4);
		assert_true(v == 3.0f);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_build_and_dispatch),
		cmocka_unit_test(test_local_memory),
		cmocka_unit_test(test_build_errors),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_argument_mismatch),
		cmocka_unit_test(test_binary_and_release),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_window_lifetime),
		cmocka_unit_test(test_hostile_context),
		cmocka_unit_test(test_endless_kernel),
#if defined(__x86_64__)
		cmocka_unit_test(test_raw_syscalls),
#endif
		cmocka_unit_test(test_printf_loop),
		cmocka_unit_test(test_worker_killed),
		cmocka_unit_test(test_memory_table),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: test_programs PATH-TO-virtgpu-worker\n");
		return 2;
	}
	worker_path = argv[1];
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("programs", tests, setup, teardown);
}
