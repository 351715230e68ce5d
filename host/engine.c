/* SPDX-License-Identifier: MIT */
/* engine.c - compute stream validation (prepare) and execution (run). */
#include "engine.h"

#include <endian.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine_backend.h"
#include "programs.h"
#include "stats.h"
#include "window.h"

struct engine {
	struct engine_backend *be;
	atomic_uint_fast64_t op_budget_ns;    /* 0: none */
	struct programs *progs;   /* the guest's programs; NULL: none */
};

/* The abort flag of the device this thread runs submits for. */
static _Thread_local const bool *thread_abort;

struct engine *engine_new(unsigned nthreads)
{
	return engine_new_backend(nthreads, VGPU_BACKEND_CPU);
}

struct engine *engine_new_backend(unsigned nthreads, uint32_t backend)
{
	struct engine *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	if (backend == VGPU_BACKEND_OPENCL) {
#ifdef HOSTD_OPENCL
		e->be = engine_opencl_new();
		if (e->be)
			win_set_enabled(true);   /* the backend works only on windows */
#else
		hlog("built without OpenCL (meson -Dopencl=disabled)");
#endif
		if (!e->be)
			hlog("no usable OpenCL device: falling back to the CPU engine");
	}
	if (!e->be)
		e->be = engine_cpu_new(nthreads);
	if (!e->be) {
		free(e);
		return NULL;
	}
	atomic_init(&e->op_budget_ns, ENGINE_DEFAULT_OP_BUDGET_NS);
	return e;
}

void engine_set_op_budget(struct engine *e, uint64_t ns)
{
	atomic_store_explicit(&e->op_budget_ns, ns, memory_order_relaxed);
}

uint64_t engine_op_budget(const struct engine *e)
{
	return atomic_load_explicit(&e->op_budget_ns, memory_order_relaxed);
}

void engine_set_thread_abort(const bool *flag)
{
	thread_abort = flag;
}

bool engine_zero_copy(const struct engine *e)
{
	return e->be->zero_copy;
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	e->be->destroy(e->be);
	free(e);
}

struct engine_backend *engine_get_backend(struct engine *e)
{
	return e->be;
}

uint32_t engine_backend_id(const struct engine *e)
{
	return e->be->id;
}

const char *engine_backend_name(const struct engine *e)
{
	return e->be->name;
}

size_t engine_caps(const struct engine *e, uint32_t version, struct vgpu_compute_caps *caps)
{
	memset(caps, 0, sizeof(*caps));
	if (version < VGPU_COMPUTE_CAPSET_VERSION_MIN || version > VGPU_COMPUTE_CAPSET_VERSION)
		return 0;
	caps->version = htole32(version);
	caps->max_ops = htole32(VGPU_COMPUTE_MAX_OPS);
	caps->num_threads = htole32(e->be->num_threads);
	caps->max_op_bytes = htole64(ENGINE_MAX_OP_BYTES);
	if (version == 1) {
		caps->op_mask = htole32(VGPU_COMPUTE_OP_MASK_V1);
		return VGPU_COMPUTE_CAPS_V1_SIZE;
	}
	caps->op_mask = htole32(VGPU_COMPUTE_OP_MASK_V2);
	caps->backend = htole32(e->be->id);
	caps->max_gemm_dim = htole32(VGPU_COMPUTE_MAX_GEMM_DIM);
	if (version == 2)
		return VGPU_COMPUTE_CAPS_V2_SIZE;
	/* Version 3: the programs' ops and limits when the device runs them;
	 * otherwise features says none and the ops fail with E_NOPROGRAMS. */
	programs_caps(e->progs, caps);
	if (caps->features & VGPU_FEATURE_PROGRAMS)
		caps->op_mask = htole32(VGPU_COMPUTE_OP_MASK);
	caps->features = htole32(caps->features);
	caps->max_programs = htole32(caps->max_programs);
	caps->max_kernels = htole32(caps->max_kernels);
	caps->max_kernel_args = htole32(caps->max_kernel_args);
	caps->max_program_bytes = htole32(caps->max_program_bytes);
	caps->max_payload_bytes = htole32(caps->max_payload_bytes);
	caps->time_budget_ns = htole64(caps->time_budget_ns);
	return sizeof(*caps);
}

void engine_set_programs(struct engine *e, struct programs *p)
{
	e->progs = p;
}

const char *engine_result_name(uint32_t r)
{
	static const char *const n[] = {
		"OK", "E_MALFORMED", "E_OPCODE", "E_RESOURCE", "E_RANGE",
		"E_READONLY", "E_ALIGN", "E_OVERLAP", "E_NOBACKING",
		"E_NOWINDOW", "E_DEVICE", "E_OBJECT", "E_ARGS", "E_WORKSIZE",
		"E_TIMEOUT", "E_LOST", "E_NOPROGRAMS",
	};

	return r < sizeof(n) / sizeof(n[0]) ? n[r] : "?";
}

static void decode_op(const uint8_t *p, struct vgpu_compute_op *op)
{
	memcpy(op, p, sizeof(*op));
	op->opcode = le32toh(op->opcode);
	op->flags = le32toh(op->flags);
	op->dst_res = le32toh(op->dst_res);
	op->src_res = le32toh(op->src_res);
	op->dst_off = le64toh(op->dst_off);
	op->src_off = le64toh(op->src_off);
	op->len = le64toh(op->len);
	op->arg0 = le64toh(op->arg0);
	op->arg1 = le64toh(op->arg1);
	op->reserved = le64toh(op->reserved);
}

static bool in_range(const struct res_backing *b, uint64_t off, uint64_t len)
{
	return off <= b->size && len <= b->size - off;
}

static bool overlap(uint64_t a, uint64_t b, uint64_t len)
{
	return len && a < b + len && b < a + len;
}

/* Check one resource use; *out: the resource's backing. */
static uint32_t check_res(const struct guest_mem *gm, engine_lookup_fn lookup,
			  void *opaque, uint32_t id, uint64_t off, uint64_t len,
			  bool write, struct res_backing **out)
{
	const struct gpu_resource *r = id ? lookup(opaque, id) : NULL;

	if (!r)
		return VGPU_COMPUTE_E_RESOURCE;
	if (!r->bk || !res_backed(r->bk, gm))
		return VGPU_COMPUTE_E_NOBACKING;
	if (write && r->bk->readonly)
		return VGPU_COMPUTE_E_READONLY;
	if (!in_range(r->bk, off, len))
		return VGPU_COMPUTE_E_RANGE;
	*out = r->bk;
	return VGPU_COMPUTE_OK;
}

static bool ranges_meet(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/*
 * Every range the op touches (vgpu_op_ranges(), the one description both
 * sides share) must lie inside its resource; a written one must be
 * writable. Resolves v->src and v->dst.
 */
static uint32_t check_ranges(const struct guest_mem *gm, engine_lookup_fn lookup, void *opaque,
			     const struct vgpu_compute_op *op, const struct vgpu_op_range *r,
			     int n, struct vop *v)
{
	for (int i = 0; i < n; i++)
		if (r[i].len > ENGINE_MAX_OP_BYTES)
			return VGPU_COMPUTE_E_RANGE;
	for (int i = 0; i < n; i++) {
		uint32_t id = r[i].side == VGPU_OP_SRC ? op->src_res : op->dst_res;
		struct res_backing **res = r[i].side == VGPU_OP_SRC ? &v->src : &v->dst;
		uint32_t rc;

		rc = check_res(gm, lookup, opaque, id, r[i].off, r[i].len,
			       r[i].access & VGPU_OP_WRITE, res);
		if (rc)
			return rc;
	}
	return VGPU_COMPUTE_OK;
}

/* SGEMM: what the shape does not already say (vgpu_op_ranges()). */
static uint32_t validate_sgemm(const struct vgpu_compute_op *op, const struct vgpu_op_range *r,
			       struct vop *v)
{
	struct vgpu_gemm_shape g;

	if (op->src_off % 4 || op->len % 4 || op->dst_off % 4)
		return VGPU_COMPUTE_E_ALIGN;
	/* C (r[2]) may not overlap A (r[0]) or B (r[1]). */
	if (op->src_res == op->dst_res &&
	    (ranges_meet(r[2].off, r[2].len, r[0].off, r[0].len) ||
	     ranges_meet(r[2].off, r[2].len, r[1].off, r[1].len)))
		return VGPU_COMPUTE_E_OVERLAP;
	vgpu_gemm_shape(op, &g);
	v->b_off = op->len;
	v->len = r[2].len;      /* bytes written (statistics) */
	v->m = g.m;
	v->n = g.n;
	v->k = g.k;
	v->lda = g.lda;
	v->ldb = g.ldb;
	v->ldc = g.ldc;
	return VGPU_COMPUTE_OK;
}

/* DISPATCH's payload: the shape, then every argument; buffers are
 * resolved (and must be windowable for the worker). */
static uint32_t validate_dispatch(const struct guest_mem *gm, engine_lookup_fn lookup,
				  void *opaque, const uint8_t *payload, uint32_t plen, struct programs *progs,
				  struct vop *v)
{
	struct vgpu_dispatch d;
	const uint8_t *ap;
	uint64_t values_len, items = 1;

	if (plen < sizeof(d))
		return VGPU_COMPUTE_E_MALFORMED;
	memcpy(&d, payload, sizeof(d));
	d.work_dim = le32toh(d.work_dim);
	d.num_args = le32toh(d.num_args);
	if (d.work_dim < 1 || d.work_dim > 3 || d.num_args > PROGRAMS_MAX_ARGS ||
	    sizeof(d) + (uint64_t)d.num_args * sizeof(struct vgpu_dispatch_arg) > plen)
		return VGPU_COMPUTE_E_MALFORMED;
	for (uint32_t i = 0; i < 3; i++) {
		uint64_t go = le64toh(d.global_offset[i]), gs = le64toh(d.global_size[i]);
		uint64_t ls = le64toh(d.local_size[i]);

		if (i >= d.work_dim) {
			if (go || gs || ls)
				return VGPU_COMPUTE_E_MALFORMED;
			continue;
		}
		/* Sizes OpenCL can take, and an NDRange whose work-item count
		 * (and ids) fit in 64 bits. */
		if (gs == 0 || go > UINT64_MAX - gs || gs > (1ull << 40) ||
		    (ls && (ls > gs || ls > (1u << 20))))
			return VGPU_COMPUTE_E_WORKSIZE;
		if (items > (1ull << 48) / gs)
			return VGPU_COMPUTE_E_WORKSIZE;
		items *= gs;
	}
	values_len = plen - sizeof(d) - (uint64_t)d.num_args * sizeof(struct vgpu_dispatch_arg);
	v->bind = calloc(d.num_args ? d.num_args : 1, sizeof(*v->bind));
	if (!v->bind)
		return VGPU_COMPUTE_E_DEVICE;
	v->nbind = d.num_args;
	ap = payload + sizeof(d);
	for (uint32_t i = 0; i < d.num_args; i++) {
		struct vgpu_dispatch_arg a;
		uint32_t rc;

		memcpy(&a, ap + (size_t)i * sizeof(a), sizeof(a));
		a.kind = le32toh(a.kind);
		a.access = le32toh(a.access);
		a.res = le32toh(a.res);
		a.offset = le64toh(a.offset);
		a.size = le64toh(a.size);
		if (a.reserved)
			return VGPU_COMPUTE_E_MALFORMED;
		switch (a.kind) {
		case VGPU_DARG_BUFFER:
			if (!a.size || !a.access || (a.access & ~(VGPU_OP_READ | VGPU_OP_WRITE)))
				return VGPU_COMPUTE_E_MALFORMED;
			if (a.size > ENGINE_MAX_OP_BYTES)
				return VGPU_COMPUTE_E_RANGE;
			rc = check_res(gm, lookup, opaque, a.res, a.offset, a.size,
				       a.access & VGPU_OP_WRITE, &v->bind[i]);
			if (rc == VGPU_COMPUTE_OK)
				rc = programs_check_backing(v->bind[i], gm);
			if (rc) {
				v->bind[i] = NULL;
				return rc;
			}
			break;
		case VGPU_DARG_NULL:
			if (a.access || a.res || a.offset || a.size)
				return VGPU_COMPUTE_E_MALFORMED;
			break;
		case VGPU_DARG_VALUE:
			if (a.access || a.res || !a.size || a.size > 4096 || a.offset > values_len ||
			    a.size > values_len - a.offset)
				return VGPU_COMPUTE_E_MALFORMED;
			break;
		case VGPU_DARG_LOCAL:
			if (a.access || a.res || a.offset)
				return VGPU_COMPUTE_E_MALFORMED;
			if (!a.size || a.size > programs_local_mem(progs))
				return VGPU_COMPUTE_E_WORKSIZE;
			break;
		default:
			return VGPU_COMPUTE_E_MALFORMED;
		}
	}
	return VGPU_COMPUTE_OK;
}

/* The version 3 ops: ids, ranges, the output's room, and the payload. */
static uint32_t validate_v3(const struct guest_mem *gm, engine_lookup_fn lookup, void *opaque,
			    const struct vgpu_compute_op *op, const uint8_t *payload,
			    struct prog_ctx *pc, struct programs *progs, struct vop *v)
{
	struct vgpu_op_range r[VGPU_OP_MAX_RANGES];
	bool use_src = false, use_dst = false, use_arg1 = false, use_payload = false;
	uint64_t min_out = 0, max_id = PROGRAMS_MAX_PROGRAMS;
	int n;
	uint32_t rc;

	if (!pc || !programs_available(progs))
		return VGPU_COMPUTE_E_NOPROGRAMS;
	switch (op->opcode) {
	case VGPU_OP_PROGRAM_BUILD:
		use_src = use_dst = use_arg1 = true;
		min_out = sizeof(struct vgpu_build_result);
		if (op->arg1 <= sizeof(struct vgpu_program_input) ||
		    op->arg1 > sizeof(struct vgpu_program_input) + 4095 + PROGRAMS_MAX_PROGRAM_BYTES)
			return VGPU_COMPUTE_E_RANGE;
		break;
	case VGPU_OP_PROGRAM_BINARY:
	case VGPU_OP_QUERY:
		use_dst = true;
		min_out = sizeof(struct vgpu_blob_header);
		break;
	case VGPU_OP_KERNEL_CREATE:
		use_dst = use_arg1 = use_payload = true;
		min_out = sizeof(struct vgpu_kernel_info);
		max_id = PROGRAMS_MAX_KERNELS;
		if (!op->arg1 || op->arg1 > PROGRAMS_MAX_PROGRAMS)
			return VGPU_COMPUTE_E_OBJECT;
		/* A name: 1 .. 255 characters and its NUL. */
		if (op->len < 2 || op->len > VGPU_KERNEL_NAME_MAX || payload[op->len - 1] ||
		    strlen((const char *)payload) != op->len - 1)
			return VGPU_COMPUTE_E_MALFORMED;
		break;
	case VGPU_OP_KERNEL_RELEASE:
		max_id = PROGRAMS_MAX_KERNELS;
		break;
	case VGPU_OP_PROGRAM_RELEASE:
		break;
	case VGPU_OP_DISPATCH:
		use_payload = true;
		max_id = PROGRAMS_MAX_KERNELS;
		break;
	}
	if ((!use_src && (op->src_res || op->src_off)) ||
	    (!use_dst && (op->dst_res || op->dst_off || op->arg2)) ||
	    (!use_arg1 && op->arg1) || (!use_payload && op->len))
		return VGPU_COMPUTE_E_MALFORMED;
	if (op->opcode == VGPU_OP_QUERY) {
		if (op->arg0 != VGPU_QUERY_DEVICE_INFO)
			return VGPU_COMPUTE_E_MALFORMED;
	} else if (!op->arg0 || op->arg0 > max_id) {
		return VGPU_COMPUTE_E_OBJECT;
	}
	if (use_dst && op->arg2 < min_out)
		return VGPU_COMPUTE_E_RANGE;
	n = vgpu_op_ranges(op, r);
	if (n < 0)
		return (uint32_t)-n;
	rc = check_ranges(gm, lookup, opaque, op, r, n, v);
	if (rc)
		return rc;
	if (op->opcode == VGPU_OP_DISPATCH) {
		rc = validate_dispatch(gm, lookup, opaque, payload, (uint32_t)op->len, progs, v);
		if (rc)
			return rc;
	}
	v->opcode = op->opcode;
	v->dst_off = op->dst_off;
	v->src_off = op->src_off;
	v->arg0 = op->arg0;
	v->arg1 = op->arg1;
	v->arg2 = op->arg2;
	v->len = op->len;
	if (op->len) {
		v->payload = malloc(op->len);
		if (!v->payload)
			return VGPU_COMPUTE_E_DEVICE;
		memcpy(v->payload, payload, op->len);
		v->payload_len = (uint32_t)op->len;
	}
	v->pc = pc;
	return VGPU_COMPUTE_OK;
}

static uint32_t validate_op(const struct guest_mem *gm, engine_lookup_fn lookup,
			    void *opaque, const struct vgpu_compute_op *op,
			    struct vop *v)
{
	struct vgpu_op_range r[VGPU_OP_MAX_RANGES];
	bool use_dst = false, use_src = false, use_arg0 = false;
	int n;
	uint32_t rc;

	memset(v, 0, sizeof(*v));
	if (op->opcode >= VGPU_OP_COUNT || op->flags)
		return VGPU_COMPUTE_E_OPCODE;
	n = vgpu_op_ranges(op, r);
	if (n < 0)
		return (uint32_t)-n;
	if (op->opcode == VGPU_OP_SGEMM) {
		rc = check_ranges(gm, lookup, opaque, op, r, n, v);
		if (rc == VGPU_COMPUTE_OK)
			rc = validate_sgemm(op, r, v);
		if (rc)
			return rc;
		v->opcode = op->opcode;
		v->dst_off = op->dst_off;
		v->src_off = op->src_off;
		return VGPU_COMPUTE_OK;
	}
	if (op->arg1 || op->reserved)
		return VGPU_COMPUTE_E_MALFORMED;
	/* Unused fields must be zero: a range names its side's resource. */
	for (int i = 0; i < n; i++) {
		use_dst |= r[i].side == VGPU_OP_DST;
		use_src |= r[i].side == VGPU_OP_SRC;
	}
	use_arg0 = op->opcode == VGPU_OP_FILL || op->opcode == VGPU_OP_SAXPY ||
		   op->opcode == VGPU_OP_CHECKSUM;
	if ((!use_dst && (op->dst_res || op->dst_off)) ||
	    (!use_src && (op->src_res || op->src_off)) ||
	    (!use_arg0 && op->arg0) ||
	    (op->opcode == VGPU_OP_NOP && op->len))
		return VGPU_COMPUTE_E_MALFORMED;
	if (op->opcode == VGPU_OP_NOP)
		return VGPU_COMPUTE_OK;
	if (op->len > ENGINE_MAX_OP_BYTES)
		return VGPU_COMPUTE_E_RANGE;
	rc = check_ranges(gm, lookup, opaque, op, r, n, v);
	if (rc)
		return rc;
	if ((op->opcode == VGPU_OP_FILL || op->opcode == VGPU_OP_SAXPY ||
	     op->opcode == VGPU_OP_SUM_F32 || op->opcode == VGPU_OP_REDUCE_F32) && op->len % 4)
		return VGPU_COMPUTE_E_ALIGN;
	if (op->opcode == VGPU_OP_COPY && op->src_res == op->dst_res &&
	    overlap(op->src_off, op->dst_off, op->len))
		return VGPU_COMPUTE_E_OVERLAP;
	/* SAXPY in place (x and y the same range) is fine; a partial
	 * overlap would make the result depend on the chunk order. */
	if (op->opcode == VGPU_OP_SAXPY && op->src_res == op->dst_res &&
	    op->src_off != op->dst_off && overlap(op->src_off, op->dst_off, op->len))
		return VGPU_COMPUTE_E_OVERLAP;
	v->opcode = op->opcode;
	v->dst_off = op->dst_off;
	v->src_off = op->src_off;
	v->len = op->len;
	v->arg0 = op->arg0;
	return VGPU_COMPUTE_OK;
}

static void write_status(const struct guest_mem *gm, const struct res_backing *sr,
			 uint64_t off, struct engine_result *res)
{
	struct vgpu_compute_status st;

	if (!sr)
		return;
	st.result = htole32(res->result);
	st.op_index = htole32(res->op_index);
	st.ops_done = htole64(res->ops_done);
	if (res_write(sr, gm, off, &st, sizeof(st)) == 0)
		res->status_written = true;
}

/* Drop what a vop holds besides its dst and src (version 3). */
static void vop_release(struct vop *v)
{
	for (uint32_t i = 0; i < v->nbind; i++)
		res_backing_put(v->bind[i]);
	free(v->bind);
	free(v->payload);
	v->bind = NULL;
	v->nbind = 0;
	v->payload = NULL;
}

void engine_prepare(struct engine *e, const struct guest_mem *gm, const uint8_t *data,
		    size_t size, engine_lookup_fn lookup, void *opaque, struct prog_ctx *pc,
		    uint32_t ring, struct engine_job *j)
{
	struct vgpu_compute_submit h;
	struct vop *ops = NULL;
	uint32_t num_ops;
	size_t pos;

	memset(j, 0, sizeof(*j));
	STAT_ADD(submits, 1);
	j->res.result = VGPU_COMPUTE_E_MALFORMED;
	if (size < sizeof(h))
		return;
	memcpy(&h, data, sizeof(h));
	num_ops = le32toh(h.num_ops);
	j->status_off = le64toh(h.status_off);
	j->res.op_index = num_ops;
	if (le32toh(h.magic) != VGPU_COMPUTE_MAGIC)
		return;
	/* The status record first: every later failure is reported there. */
	if (le32toh(h.status_res)) {
		struct res_backing *sr = NULL;
		uint32_t rc = check_res(gm, lookup, opaque, le32toh(h.status_res),
					j->status_off, sizeof(struct vgpu_compute_status),
					true, &sr);

		if (rc == VGPU_COMPUTE_OK && j->status_off % 8)
			rc = VGPU_COMPUTE_E_ALIGN;
		if (rc) {
			j->res.result = rc;
			return;
		}
		j->status = res_backing_get(sr);
	}
	/* Ops of version 3 carry a payload: the stream is as long as the
	 * ops and their padded payloads, and never longer than
	 * VGPU_COMPUTE_MAX_SUBMIT_BYTES_V3. */
	if (h.reserved || num_ops == 0 || num_ops > VGPU_COMPUTE_MAX_OPS ||
	    size > VGPU_COMPUTE_MAX_SUBMIT_BYTES_V3 ||
	    size < sizeof(h) + (size_t)num_ops * sizeof(struct vgpu_compute_op))
		return;
	ops = calloc(num_ops, sizeof(*ops));
	if (!ops)
		return;
	pos = sizeof(h);
	for (uint32_t i = 0; i < num_ops; i++) {
		struct vgpu_compute_op op;
		const uint8_t *payload = NULL;
		uint32_t rc;

		if (size - pos < sizeof(op)) {
			rc = VGPU_COMPUTE_E_MALFORMED;
		} else {
			decode_op(data + pos, &op);
			pos += sizeof(op);
			rc = VGPU_COMPUTE_OK;
			if (op.opcode >= VGPU_OP_PROGRAM_BUILD && op.opcode < VGPU_OP_COUNT) {
				/* The payload follows the op, padded to 8. */
				if (op.len > VGPU_COMPUTE_MAX_PAYLOAD ||
				    VGPU_COMPUTE_PAYLOAD_PAD(op.len) > size - pos) {
					rc = VGPU_COMPUTE_E_MALFORMED;
				} else {
					payload = data + pos;
					pos += VGPU_COMPUTE_PAYLOAD_PAD(op.len);
				}
			}
		}
		if (rc == VGPU_COMPUTE_OK && op.opcode >= VGPU_OP_PROGRAM_BUILD &&
		    op.opcode < VGPU_OP_COUNT && !op.flags) {
			rc = validate_v3(gm, lookup, opaque, &op, payload, pc, e->progs, &ops[i]);
			ops[i].ring = ring;
		} else if (rc == VGPU_COMPUTE_OK) {
			rc = validate_op(gm, lookup, opaque, &op, &ops[i]);
			if (rc == VGPU_COMPUTE_OK && ops[i].opcode != VGPU_OP_NOP && e->be->check)
				rc = e->be->check(e->be, gm, &ops[i]);
		}
		/* After the last op, nothing but the stream's end. */
		if (rc == VGPU_COMPUTE_OK && i + 1 == num_ops && pos != size)
			rc = VGPU_COMPUTE_E_MALFORMED;
		if (rc) {
			/* Nothing is referenced yet: only the copies go. */
			for (uint32_t k = 0; k <= i; k++) {
				free(ops[k].bind);
				free(ops[k].payload);
			}
			free(ops);
			j->res.result = rc;
			j->res.op_index = i;
			return;
		}
	}
	if (pc)
		j->pc = prog_ctx_get(pc);
	/* Valid as a whole: only now do the ops keep their backings. */
	for (uint32_t i = 0; i < num_ops; i++) {
		if (ops[i].dst)
			res_backing_get(ops[i].dst);
		if (ops[i].src)
			res_backing_get(ops[i].src);
		for (uint32_t k = 0; k < ops[i].nbind; k++)
			if (ops[i].bind[k])
				res_backing_get(ops[i].bind[k]);
	}
	j->ops = ops;
	j->num_ops = num_ops;
	j->valid = true;
}

int engine_run(struct engine *e, const struct guest_mem *gm, struct engine_job *j,
	       struct engine_result *res)
{
	*res = j->res;
	if (!j->valid) {
		res->ops_done = 0;
		write_status(gm, j->status, j->status_off, res);
		STAT_ADD(submit_errors, 1);
		return -1;
	}
	for (uint32_t i = 0; i < j->num_ops; i++) {
		struct vop *op = &j->ops[i];
		uint32_t rc = VGPU_COMPUTE_OK;

		STAT_ADD(op_count[op->opcode], 1);
		STAT_ADD(op_bytes[op->opcode], op->len);
		if (op->opcode >= VGPU_OP_PROGRAM_BUILD) {
			/* The worker's call has the budget as its deadline;
			 * past it the context is lost. */
			rc = prog_run(op->pc, gm, op);
			if (rc == VGPU_COMPUTE_E_TIMEOUT)
				STAT_ADD(op_timeouts, 1);
		} else if (op->opcode != VGPU_OP_NOP) {
			uint64_t budget = engine_op_budget(e);

			/* Each op its own budget, from when it starts; the
			 * backend checks it, and the abort flag, as it goes. */
			op->deadline = budget ? vop_now_ns() + budget : 0;
			op->abort = thread_abort;
			rc = vop_stop(op);
			if (rc == VGPU_COMPUTE_OK)
				rc = e->be->run(e->be, gm, op);
			if (rc == VGPU_COMPUTE_E_TIMEOUT)
				STAT_ADD(op_timeouts, 1);
			else if (rc && thread_abort && __atomic_load_n(thread_abort, __ATOMIC_RELAXED))
				STAT_ADD(op_aborts, 1);
		}
		if (rc) {
			/* The device failed or stopped mid-submit, or the op
			 * ran out of time: the ops before this one stay done,
			 * and the status record says so. */
			res->result = rc;
			res->op_index = i;
			write_status(gm, j->status, j->status_off, res);
			STAT_ADD(submit_errors, 1);
			return -1;
		}
		res->ops_done++;
	}
	res->result = VGPU_COMPUTE_OK;
	res->op_index = j->num_ops;
	write_status(gm, j->status, j->status_off, res);
	return 0;
}

void engine_job_release(struct engine_job *j)
{
	for (uint32_t i = 0; i < j->num_ops; i++) {
		res_backing_put(j->ops[i].dst);
		res_backing_put(j->ops[i].src);
		vop_release(&j->ops[i]);
	}
	free(j->ops);
	res_backing_put(j->status);
	prog_ctx_put(j->pc);
	memset(j, 0, sizeof(*j));
}

int engine_submit(struct engine *e, const struct guest_mem *gm,
		  const uint8_t *data, size_t size, engine_lookup_fn lookup,
		  void *opaque, struct engine_result *res)
{
	struct engine_job j;
	int rc;

	engine_prepare(e, gm, data, size, lookup, opaque, NULL, 0, &j);
	rc = engine_run(e, gm, &j, res);
	engine_job_release(&j);
	return rc;
}
