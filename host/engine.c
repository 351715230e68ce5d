/* SPDX-License-Identifier: MIT */
/* engine.c - compute stream validation and execution. */
#include "engine.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY   /* XXH64_state_t on the stack */
#include <xxhash.h>

#include "pool.h"
#include "stats.h"

struct engine {
	struct pool *pool;
};

struct engine *engine_new(unsigned nthreads)
{
	struct engine *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->pool = pool_new(nthreads);
	if (!e->pool) {
		free(e);
		return NULL;
	}
	return e;
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	pool_free(e->pool);
	free(e);
}

void engine_caps(const struct engine *e, struct vgpu_compute_caps *caps)
{
	memset(caps, 0, sizeof(*caps));
	caps->version = htole32(VGPU_COMPUTE_CAPSET_VERSION);
	caps->max_ops = htole32(VGPU_COMPUTE_MAX_OPS);
	caps->op_mask = htole32(VGPU_COMPUTE_OP_MASK);
	caps->num_threads = htole32(pool_threads(e->pool));
	caps->max_op_bytes = htole64(ENGINE_MAX_OP_BYTES);
}

const char *engine_result_name(uint32_t r)
{
	static const char *const n[] = {
		"OK", "E_MALFORMED", "E_OPCODE", "E_RESOURCE", "E_RANGE",
		"E_READONLY", "E_ALIGN", "E_OVERLAP", "E_NOBACKING",
	};

	return r < sizeof(n) / sizeof(n[0]) ? n[r] : "?";
}

/* An op after validation: resources resolved. */
struct vop {
	uint32_t opcode;
	const struct gpu_resource *dst, *src;
	uint64_t dst_off, src_off, len, arg0;
};

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

static bool in_range(const struct gpu_resource *r, uint64_t off, uint64_t len)
{
	return off <= r->size && len <= r->size - off;
}

static bool overlap(uint64_t a, uint64_t b, uint64_t len)
{
	return len && a < b + len && b < a + len;
}

/* Check one resource use. */
static uint32_t check_res(const struct guest_mem *gm, engine_lookup_fn lookup,
			  void *opaque, uint32_t id, uint64_t off, uint64_t len,
			  bool write, const struct gpu_resource **out)
{
	const struct gpu_resource *r = id ? lookup(opaque, id) : NULL;

	if (!r)
		return VGPU_COMPUTE_E_RESOURCE;
	if (!res_backed(r, gm))
		return VGPU_COMPUTE_E_NOBACKING;
	if (write && r->readonly)
		return VGPU_COMPUTE_E_READONLY;
	if (!in_range(r, off, len))
		return VGPU_COMPUTE_E_RANGE;
	*out = r;
	return VGPU_COMPUTE_OK;
}

static uint32_t validate_op(const struct guest_mem *gm, engine_lookup_fn lookup,
			    void *opaque, const struct vgpu_compute_op *op,
			    struct vop *v)
{
	bool use_dst = false, use_src = false, use_arg0 = false;
	uint64_t dst_len = 0;
	uint32_t rc;

	memset(v, 0, sizeof(*v));
	if (op->opcode >= VGPU_OP_COUNT || op->flags)
		return VGPU_COMPUTE_E_OPCODE;
	if (op->arg1 || op->reserved)
		return VGPU_COMPUTE_E_MALFORMED;
	switch (op->opcode) {
	case VGPU_OP_NOP:
		break;
	case VGPU_OP_COPY:
		use_dst = use_src = true;
		dst_len = op->len;
		break;
	case VGPU_OP_FILL:
		use_dst = use_arg0 = true;
		dst_len = op->len;
		break;
	case VGPU_OP_SAXPY:
		use_dst = use_src = use_arg0 = true;
		dst_len = op->len;
		break;
	case VGPU_OP_CHECKSUM:
	case VGPU_OP_SUM_F32:
		use_dst = use_src = true;
		use_arg0 = op->opcode == VGPU_OP_CHECKSUM;
		dst_len = 8;
		break;
	}
	/* Unused fields must be zero. */
	if ((!use_dst && (op->dst_res || op->dst_off)) ||
	    (!use_src && (op->src_res || op->src_off)) ||
	    (!use_arg0 && op->arg0) ||
	    (op->opcode == VGPU_OP_NOP && op->len))
		return VGPU_COMPUTE_E_MALFORMED;
	if (op->opcode == VGPU_OP_NOP)
		return VGPU_COMPUTE_OK;
	if (op->len > ENGINE_MAX_OP_BYTES)
		return VGPU_COMPUTE_E_RANGE;
	if (use_src) {
		rc = check_res(gm, lookup, opaque, op->src_res, op->src_off,
			       op->len, false, &v->src);
		if (rc)
			return rc;
	}
	rc = check_res(gm, lookup, opaque, op->dst_res, op->dst_off, dst_len,
		       true, &v->dst);
	if (rc)
		return rc;
	if ((op->opcode == VGPU_OP_FILL || op->opcode == VGPU_OP_SAXPY ||
	     op->opcode == VGPU_OP_SUM_F32) && op->len % 4)
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

/* ---- execution: every access through res_span (entry by entry) ---- */

struct job {
	const struct guest_mem *gm;
	const struct vop *op;
	uint8_t pat[4096 + 4];
};

static uint64_t chunk_range(const struct vop *op, size_t i, uint64_t *start)
{
	uint64_t s = (uint64_t)i * ENGINE_CHUNK_BYTES;
	uint64_t n = op->len - s;

	*start = s;
	return n < ENGINE_CHUNK_BYTES ? n : ENGINE_CHUNK_BYTES;
}

/*
 * The piece of op's src and dst at pos (relative to the offsets) that is
 * contiguous in both, at most n bytes: its length, with *s and *d set; 0
 * when either is not mapped there.
 */
static inline uint64_t span_pair(const struct job *j, uint64_t pos, uint64_t n, uint8_t **s,
				 uint8_t **d)
{
	const struct vop *op = j->op;
	uint64_t sa, da;

	*s = res_span(op->src, j->gm, op->src_off + pos, &sa);
	*d = res_span(op->dst, j->gm, op->dst_off + pos, &da);
	if (!*s || !*d)
		return 0;
	n = n < sa ? n : sa;
	return n < da ? n : da;
}

static void copy_chunk(void *arg, size_t i)
{
	struct job *j = arg;
	const struct vop *op = j->op;
	uint64_t pos, n = chunk_range(op, i, &pos);

	while (n) {
		uint8_t *s, *d;
		uint64_t k = span_pair(j, pos, n, &s, &d);

		if (!k)
			return;     /* cannot happen after validation */
		memmove(d, s, k);
		pos += k;
		n -= k;
	}
}

static void fill_chunk(void *arg, size_t i)
{
	struct job *j = arg;
	const struct vop *op = j->op;
	uint64_t pos, n = chunk_range(op, i, &pos);

	while (n) {
		uint64_t da, k;
		uint8_t *d = res_span(op->dst, j->gm, op->dst_off + pos, &da);

		if (!d)
			return;
		k = n < da ? n : da;
		for (uint64_t done = 0; done < k;) {
			uint64_t m = k - done;
			unsigned ph = (unsigned)((pos + done) % 4);

			if (m > 4096)
				m = 4096;
			memcpy(d + done, j->pat + ph, m);
			done += m;
		}
		pos += k;
		n -= k;
	}
}

static float ld_f32(const uint8_t *p)
{
	uint32_t u;
	float f;

	memcpy(&u, p, 4);
	u = le32toh(u);
	memcpy(&f, &u, 4);
	return f;
}

static void st_f32(uint8_t *p, float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	u = htole32(u);
	memcpy(p, &u, 4);
}

static float f32_of(uint64_t bits)
{
	uint32_t u = (uint32_t)bits;
	float f;

	memcpy(&f, &u, 4);
	return f;
}

static float saxpy1(float a, float x, float y)
{
	float t = a * x;   /* rounded to f32, then added: no fused multiply-add */

	return t + y;
}

static void saxpy_chunk(void *arg, size_t i)
{
	struct job *j = arg;
	const struct vop *op = j->op;
	float a = f32_of(op->arg0);
	uint64_t pos, n = chunk_range(op, i, &pos);

	while (n) {
		uint8_t *s, *d;
		uint64_t k = span_pair(j, pos, n, &s, &d);

		if (!k)
			return;
		k &= ~(uint64_t)3;
		if (k == 0) {
			/* An element straddles an entry boundary. */
			uint8_t xb[4], yb[4];

			if (res_read(op->src, j->gm, op->src_off + pos, xb, 4) ||
			    res_read(op->dst, j->gm, op->dst_off + pos, yb, 4))
				return;
			st_f32(yb, saxpy1(a, ld_f32(xb), ld_f32(yb)));
			if (res_write(op->dst, j->gm, op->dst_off + pos, yb, 4))
				return;
			k = 4;
		} else {
			for (uint64_t e = 0; e < k; e += 4)
				st_f32(d + e, saxpy1(a, ld_f32(s + e), ld_f32(d + e)));
		}
		pos += k;
		n -= k;
	}
}

static void run_sum(const struct guest_mem *gm, const struct vop *op)
{
	double acc = 0.0;
	uint64_t pos = 0, n = op->len, bits;

	/* One thread, index order: the result does not depend on --threads. */
	while (n) {
		uint64_t sa, k;
		uint8_t *s = res_span(op->src, gm, op->src_off + pos, &sa);

		if (!s)
			return;
		k = (n < sa ? n : sa) & ~(uint64_t)3;
		if (k == 0) {
			uint8_t xb[4];

			if (res_read(op->src, gm, op->src_off + pos, xb, 4))
				return;
			acc += (double)ld_f32(xb);
			k = 4;
		} else {
			for (uint64_t e = 0; e < k; e += 4)
				acc += (double)ld_f32(s + e);
		}
		pos += k;
		n -= k;
	}
	memcpy(&bits, &acc, 8);
	bits = htole64(bits);
	res_write(op->dst, gm, op->dst_off, &bits, 8);
}

static void run_checksum(const struct guest_mem *gm, const struct vop *op)
{
	XXH64_state_t state, *st = &state;
	uint64_t pos = 0, n = op->len, h;

	XXH64_reset(st, op->arg0);
	while (n) {
		uint64_t sa, k;
		uint8_t *s = res_span(op->src, gm, op->src_off + pos, &sa);

		if (!s)
			break;
		k = n < sa ? n : sa;
		XXH64_update(st, s, (size_t)k);
		pos += k;
		n -= k;
	}
	h = htole64(XXH64_digest(st));
	res_write(op->dst, gm, op->dst_off, &h, 8);
}

static void run_op(struct engine *e, const struct guest_mem *gm, const struct vop *op)
{
	struct job j = { .gm = gm, .op = op };
	size_t nchunks = (size_t)((op->len + ENGINE_CHUNK_BYTES - 1) / ENGINE_CHUNK_BYTES);

	STAT_ADD(op_count[op->opcode], 1);
	STAT_ADD(op_bytes[op->opcode], op->len);
	switch (op->opcode) {
	case VGPU_OP_NOP:
		break;
	case VGPU_OP_COPY:
		pool_run(e->pool, copy_chunk, &j, nchunks);
		break;
	case VGPU_OP_FILL: {
		uint32_t v = htole32((uint32_t)op->arg0);

		for (size_t k = 0; k < sizeof(j.pat); k += 4)
			memcpy(j.pat + k, &v, 4);
		pool_run(e->pool, fill_chunk, &j, nchunks);
		break;
	}
	case VGPU_OP_SAXPY:
		pool_run(e->pool, saxpy_chunk, &j, nchunks);
		break;
	case VGPU_OP_CHECKSUM:
		run_checksum(gm, op);
		break;
	case VGPU_OP_SUM_F32:
		run_sum(gm, op);
		break;
	}
}

static void write_status(const struct guest_mem *gm, const struct gpu_resource *sr,
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

int engine_submit(struct engine *e, const struct guest_mem *gm,
		  const uint8_t *data, size_t size, engine_lookup_fn lookup,
		  void *opaque, struct engine_result *res)
{
	struct vgpu_compute_submit h;
	const struct gpu_resource *sr = NULL;
	struct vop *ops = NULL;
	uint64_t status_off = 0;
	uint32_t num_ops;

	memset(res, 0, sizeof(*res));
	STAT_ADD(submits, 1);
	res->result = VGPU_COMPUTE_E_MALFORMED;
	if (size < sizeof(h))
		goto fail;
	memcpy(&h, data, sizeof(h));
	num_ops = le32toh(h.num_ops);
	status_off = le64toh(h.status_off);
	res->op_index = num_ops;
	if (le32toh(h.magic) != VGPU_COMPUTE_MAGIC)
		goto fail;
	/* The status record first: every later failure is reported there. */
	if (le32toh(h.status_res)) {
		uint32_t rc = check_res(gm, lookup, opaque, le32toh(h.status_res),
					status_off, sizeof(struct vgpu_compute_status),
					true, &sr);

		if (rc == VGPU_COMPUTE_OK && status_off % 8)
			rc = VGPU_COMPUTE_E_ALIGN;
		if (rc) {
			sr = NULL;
			res->result = rc;
			goto fail;
		}
	}
	if (h.reserved || num_ops == 0 || num_ops > VGPU_COMPUTE_MAX_OPS ||
	    size != sizeof(h) + (size_t)num_ops * sizeof(struct vgpu_compute_op)) {
		res->result = VGPU_COMPUTE_E_MALFORMED;
		goto fail;
	}
	ops = calloc(num_ops, sizeof(*ops));
	if (!ops) {
		res->result = VGPU_COMPUTE_E_MALFORMED;
		goto fail;
	}
	for (uint32_t i = 0; i < num_ops; i++) {
		struct vgpu_compute_op op;
		uint32_t rc;

		decode_op(data + sizeof(h) + (size_t)i * sizeof(op), &op);
		rc = validate_op(gm, lookup, opaque, &op, &ops[i]);
		if (rc) {
			res->result = rc;
			res->op_index = i;
			goto fail;
		}
	}
	for (uint32_t i = 0; i < num_ops; i++) {
		run_op(e, gm, &ops[i]);
		res->ops_done++;
	}
	res->result = VGPU_COMPUTE_OK;
	res->op_index = num_ops;
	write_status(gm, sr, status_off, res);
	free(ops);
	return 0;
fail:
	free(ops);
	res->ops_done = 0;
	write_status(gm, sr, status_off, res);
	STAT_ADD(submit_errors, 1);
	return -1;
}
