/* SPDX-License-Identifier: MIT */
/*
 * batch.c - building compute command streams and submitting them.
 *
 * What each op reads and writes comes from vgpu_op_ranges()
 * (vgpu_compute.h), the one description the device's validation uses too:
 * the library's checks, the copy path's copy-in and copy-back, and the
 * ordering of submits over shared memory all follow from it.
 */
#include "vgpu_private.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct vgpu_batch {
	struct vgpu_device *dev;
	unsigned int num_ops;
	unsigned int max_ops;
	int timeout_ms;                /* VGPU_TIMEOUT_INFINITE: none */
	struct vgpu_compute_op *ops;   /* host byte order until submit */
	struct vgpu_buffer **dst;      /* per op, referenced */
	struct vgpu_buffer **src;      /* per op, referenced */
	struct vgpu_op_extra *x;       /* per op: payload and bindings (version 3) */
	unsigned int nbinds;           /* bindings of all ops */
	size_t payload_bytes;          /* padded payloads of all ops */
	uint8_t *cmd;                  /* header + ops + payloads, little-endian */
	size_t cmd_cap;
	uint32_t *handles;             /* bo handles of a submit */
	struct vgpu_buffer **bufs;     /* distinct buffers of a submit */
	unsigned int bufs_cap;         /* of bufs (and handles, less one) */
};

VGPU_EXPORT int vgpu_batch_create(struct vgpu_device *dev, struct vgpu_batch **out)
{
	struct vgpu_batch *b;
	unsigned int n;
	int err;

	if (!out)
		return vgpu_fail(-EINVAL, "vgpu_batch_create: out is NULL");
	*out = NULL;
	if (!dev)
		return vgpu_fail(-EINVAL, "vgpu_batch_create: dev is NULL");
	err = vgpu_dev_check(dev, "vgpu_batch_create");
	if (err)
		return err;
	n = dev->info.caps.max_ops;
	b = calloc(1, sizeof(*b));
	if (!b)
		return vgpu_fail(-ENOMEM, "vgpu_batch_create: out of memory");
	b->dev = dev;
	b->max_ops = n;
	b->timeout_ms = VGPU_DEFAULT_TIMEOUT_MS;
	b->ops = calloc(n, sizeof(*b->ops));
	b->dst = calloc(n, sizeof(*b->dst));
	b->src = calloc(n, sizeof(*b->src));
	b->x = calloc(n, sizeof(*b->x));
	b->cmd_cap = sizeof(struct vgpu_compute_submit) + n * sizeof(struct vgpu_compute_op);
	b->cmd = calloc(1, b->cmd_cap);
	b->bufs_cap = 2 * n;
	b->handles = calloc(2 * (size_t)n + 1, sizeof(*b->handles));
	b->bufs = calloc(2 * (size_t)n, sizeof(*b->bufs));
	if (!b->ops || !b->dst || !b->src || !b->x || !b->cmd || !b->handles || !b->bufs) {
		vgpu_batch_destroy(b);
		return vgpu_fail(-ENOMEM, "vgpu_batch_create: out of memory");
	}
	*out = b;
	return 0;
}

static void free_extras(struct vgpu_batch *b)
{
	for (unsigned int i = 0; i < b->num_ops; i++) {
		free(b->x[i].payload);
		free(b->x[i].bind);
		memset(&b->x[i], 0, sizeof(b->x[i]));
	}
	b->nbinds = 0;
	b->payload_bytes = 0;
}

/* Drop the batch's references on the buffers of its ops. */
static void drop_ops(struct vgpu_batch *b)
{
	if (!b->num_ops || vgpu_dev_foreign(b->dev)) {
		free_extras(b);
		b->num_ops = 0;
		return;
	}
	pthread_mutex_lock(&b->dev->lock);
	for (unsigned int i = 0; i < b->num_ops; i++) {
		if (b->dst[i])
			vgpu_buffer_unref_locked(b->dst[i]);
		if (b->src[i])
			vgpu_buffer_unref_locked(b->src[i]);
		for (uint32_t k = 0; k < b->x[i].nbind; k++)
			if (b->x[i].bind[k].buf)
				vgpu_buffer_unref_locked(b->x[i].bind[k].buf);
	}
	pthread_mutex_unlock(&b->dev->lock);
	free_extras(b);
	b->num_ops = 0;
}

struct vgpu_device *vgpu_batch_device(const struct vgpu_batch *b)
{
	return b->dev;
}

VGPU_EXPORT void vgpu_batch_destroy(struct vgpu_batch *b)
{
	if (!b)
		return;
	if (b->ops)
		drop_ops(b);
	free(b->ops);
	free(b->dst);
	free(b->src);
	free(b->x);
	free(b->cmd);
	free(b->handles);
	free(b->bufs);
	free(b);
}

VGPU_EXPORT void vgpu_batch_reset(struct vgpu_batch *b)
{
	if (b)
		drop_ops(b);
}

VGPU_EXPORT unsigned int vgpu_batch_num_ops(const struct vgpu_batch *b)
{
	return b ? b->num_ops : 0;
}

VGPU_EXPORT void vgpu_batch_set_timeout(struct vgpu_batch *b, int timeout_ms)
{
	if (!b)
		return;
	if (timeout_ms > 0 || timeout_ms == VGPU_TIMEOUT_INFINITE)
		b->timeout_ms = timeout_ms;
	else
		b->timeout_ms = VGPU_DEFAULT_TIMEOUT_MS;
}

/*
 * Add an op; with a payload (copied; plen bytes) and bindings (taken over,
 * nbind of them: the buffers a DISPATCH names in its payload) for the ops
 * of capset version 3.
 */
int vgpu_batch_add_op(struct vgpu_batch *b, const struct vgpu_compute_op *op,
		      struct vgpu_buffer *dst, struct vgpu_buffer *src, const void *payload,
		      uint32_t plen, struct vgpu_bind *bind, uint32_t nbind)
{
	struct vgpu_device *dev = b->dev;
	struct vgpu_op_extra *x = &b->x[b->num_ops];
	size_t total;

	if (b->num_ops >= b->max_ops) {
		free(bind);
		return vgpu_fail(-E2BIG, "batch full: the device takes at most %u ops a submit",
				 b->max_ops);
	}
	total = sizeof(struct vgpu_compute_submit) +
		(size_t)(b->num_ops + 1) * sizeof(struct vgpu_compute_op) + b->payload_bytes +
		(size_t)VGPU_COMPUTE_PAYLOAD_PAD(plen);
	if (b->payload_bytes + plen && total > VGPU_COMPUTE_MAX_SUBMIT_BYTES_V3) {
		free(bind);
		return vgpu_fail(-E2BIG, "batch full: ops and payloads over %u bytes a submit",
				 VGPU_COMPUTE_MAX_SUBMIT_BYTES_V3);
	}
	if (nbind && 2 * b->max_ops + b->nbinds + nbind > b->bufs_cap) {
		unsigned int cap = 2 * b->max_ops + b->nbinds + nbind;
		struct vgpu_buffer **nb = realloc(b->bufs, cap * sizeof(*nb));
		uint32_t *nh;

		if (nb)
			b->bufs = nb;
		nh = nb ? realloc(b->handles, ((size_t)cap + 1) * sizeof(*nh)) : NULL;
		if (!nh) {
			free(bind);
			return vgpu_fail(-ENOMEM, "batch: out of memory");
		}
		b->handles = nh;
		b->bufs_cap = cap;
	}
	if (plen) {
		x->payload = malloc(plen);
		if (!x->payload) {
			free(bind);
			return vgpu_fail(-ENOMEM, "batch: out of memory");
		}
		memcpy(x->payload, payload, plen);
		x->payload_len = plen;
	}
	x->bind = bind;
	x->nbind = nbind;
	b->nbinds += nbind;
	b->payload_bytes += (size_t)VGPU_COMPUTE_PAYLOAD_PAD(plen);
	pthread_mutex_lock(&dev->lock);
	if (dst)
		vgpu_buffer_ref_locked(dst);
	if (src)
		vgpu_buffer_ref_locked(src);
	for (uint32_t k = 0; k < nbind; k++)
		if (bind[k].buf)
			vgpu_buffer_ref_locked(bind[k].buf);
	pthread_mutex_unlock(&dev->lock);
	b->ops[b->num_ops] = *op;
	b->ops[b->num_ops].dst_res = dst ? dst->res_id : 0;
	b->ops[b->num_ops].src_res = src ? src->res_id : 0;
	b->dst[b->num_ops] = dst;
	b->src[b->num_ops] = src;
	b->num_ops++;
	return 0;
}

static int add_op(struct vgpu_batch *b, const struct vgpu_compute_op *op,
		  struct vgpu_buffer *dst, struct vgpu_buffer *src)
{
	return vgpu_batch_add_op(b, op, dst, src, NULL, 0, NULL, 0);
}

static bool in_range(const struct vgpu_buffer *buf, uint64_t off, uint64_t len)
{
	return off <= buf->size && len <= buf->size - off;
}

static bool meet(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

static const char *op_name(uint32_t opcode)
{
	static const char *const names[] = { "nop", "copy", "fill", "checksum", "saxpy",
					     "sum_f32", "sgemm", "reduce_f32" };

	return opcode < sizeof(names) / sizeof(names[0]) ? names[opcode] : "raw";
}

/* The checks of a typed op, from the ranges it touches. */
static int check_op(struct vgpu_batch *b, const struct vgpu_compute_op *op,
		    struct vgpu_buffer *dst, struct vgpu_buffer *src)
{
	struct vgpu_op_range r[VGPU_OP_MAX_RANGES];
	const char *n = op_name(op->opcode);
	const struct vgpu_caps *caps;
	int nr;

	if (!b || !dst)
		return vgpu_fail(-EINVAL, "vgpu_batch_%s: batch or dst is NULL", n);
	caps = &b->dev->info.caps;
	if (!(caps->op_mask >> op->opcode & 1))
		return vgpu_fail(-EOPNOTSUPP, "vgpu_batch_%s: the device (capset version %u) does "
				 "not run this op", n, caps->version);
	if (dst->dev != b->dev)
		return vgpu_fail(-EINVAL, "vgpu_batch_%s: dst belongs to another device", n);
	nr = vgpu_op_ranges(op, r);
	if (nr == -(int)VGPU_COMPUTE_E_RANGE)
		return vgpu_fail(-ERANGE, "vgpu_batch_%s: more than %llu multiply-adds", n,
				 (unsigned long long)VGPU_COMPUTE_MAX_GEMM_MACS);
	if (nr < 0)
		return vgpu_fail(-EINVAL, "vgpu_batch_%s: m, n and k must be 1 to %u and every "
				 "stride at least its row", n, VGPU_COMPUTE_MAX_GEMM_DIM);
	if (op->opcode == VGPU_OP_SGEMM && caps->max_gemm_dim &&
	    ((uint32_t)op->arg0 > caps->max_gemm_dim || (uint32_t)(op->arg0 >> 32) >
	     caps->max_gemm_dim || (uint32_t)op->arg1 > caps->max_gemm_dim))
		return vgpu_fail(-EINVAL, "vgpu_batch_%s: m, n or k above the device's "
				 "max_gemm_dim %u", n, caps->max_gemm_dim);
	if (op->opcode != VGPU_OP_SGEMM && op->len == 0)
		return vgpu_fail(-EINVAL, "vgpu_batch_%s: len is 0", n);
	for (int i = 0; i < nr; i++) {
		struct vgpu_buffer *buf = r[i].side == VGPU_OP_SRC ? src : dst;
		const char *side = r[i].side == VGPU_OP_SRC ? "src" : "dst";

		if (!buf)
			return vgpu_fail(-EINVAL, "vgpu_batch_%s: %s is NULL", n, side);
		if (buf->dev != b->dev)
			return vgpu_fail(-EINVAL, "vgpu_batch_%s: %s belongs to another device", n,
					 side);
		if (r[i].len > caps->max_op_bytes)
			return vgpu_fail(-ERANGE, "vgpu_batch_%s: %llu bytes of %s is over the "
					 "device's max_op_bytes %llu", n,
					 (unsigned long long)r[i].len, side,
					 (unsigned long long)caps->max_op_bytes);
		if (!in_range(buf, r[i].off, r[i].len))
			return vgpu_fail(-ERANGE, "vgpu_batch_%s: %s [%llu, +%llu) is outside the "
					 "buffer's %zu bytes", n, side,
					 (unsigned long long)r[i].off,
					 (unsigned long long)r[i].len, buf->size);
		if ((r[i].access & VGPU_OP_WRITE) && buf->read_only)
			return vgpu_fail(-EACCES, "vgpu_batch_%s: %s is a read-only buffer", n,
					 side);
	}
	if ((op->opcode == VGPU_OP_FILL || op->opcode == VGPU_OP_SAXPY ||
	     op->opcode == VGPU_OP_SUM_F32 || op->opcode == VGPU_OP_REDUCE_F32) && op->len % 4)
		return vgpu_fail(-EINVAL, "vgpu_batch_%s: len %llu is not a multiple of 4 "
				 "(the op works on 32-bit words)", n,
				 (unsigned long long)op->len);
	if (op->opcode == VGPU_OP_SGEMM &&
	    ((dst->page_off + op->dst_off) % 4 || (src->page_off + op->src_off) % 4 ||
	     (src->page_off + op->len) % 4))
		return vgpu_fail(-EINVAL, "vgpu_batch_sgemm: the matrices must start on 4-byte "
				 "boundaries");
	if (op->opcode == VGPU_OP_COPY && src == dst &&
	    meet(op->src_off, op->len, op->dst_off, op->len))
		return vgpu_fail(-EINVAL, "vgpu_batch_copy: source and destination ranges "
				 "overlap in one buffer");
	if (op->opcode == VGPU_OP_SAXPY && src == dst && op->src_off != op->dst_off &&
	    meet(op->src_off, op->len, op->dst_off, op->len))
		return vgpu_fail(-EINVAL, "vgpu_batch_saxpy: x and y overlap in one buffer "
				 "without being the same range");
	if (op->opcode == VGPU_OP_SGEMM && src == dst &&
	    (meet(r[2].off, r[2].len, r[0].off, r[0].len) ||
	     meet(r[2].off, r[2].len, r[1].off, r[1].len)))
		return vgpu_fail(-EINVAL, "vgpu_batch_sgemm: C overlaps A or B");
	if (b->num_ops >= b->max_ops)
		return vgpu_fail(-E2BIG, "vgpu_batch_%s: batch full (the device takes at most "
				 "%u ops a submit)", n, b->max_ops);
	return 0;
}

static int typed_op(struct vgpu_batch *b, const struct vgpu_compute_op *op,
		    struct vgpu_buffer *dst, struct vgpu_buffer *src)
{
	int err = check_op(b, op, dst, src);

	if (err)
		return err;
	return add_op(b, op, dst, src);
}

VGPU_EXPORT int vgpu_batch_copy(struct vgpu_batch *b, struct vgpu_buffer *dst, uint64_t dst_off,
				struct vgpu_buffer *src, uint64_t src_off, uint64_t len)
{
	struct vgpu_compute_op op = { .opcode = VGPU_OP_COPY, .dst_off = dst_off,
				      .src_off = src_off, .len = len };

	return typed_op(b, &op, dst, src);
}

VGPU_EXPORT int vgpu_batch_fill(struct vgpu_batch *b, struct vgpu_buffer *dst, uint64_t dst_off,
				uint64_t len, uint32_t value)
{
	struct vgpu_compute_op op = { .opcode = VGPU_OP_FILL, .dst_off = dst_off, .len = len,
				      .arg0 = value };

	return typed_op(b, &op, dst, NULL);
}

VGPU_EXPORT int vgpu_batch_checksum(struct vgpu_batch *b, struct vgpu_buffer *dst,
				    uint64_t dst_off, struct vgpu_buffer *src,
				    uint64_t src_off, uint64_t len, uint64_t seed)
{
	struct vgpu_compute_op op = { .opcode = VGPU_OP_CHECKSUM, .dst_off = dst_off,
				      .src_off = src_off, .len = len, .arg0 = seed };

	return typed_op(b, &op, dst, src);
}

VGPU_EXPORT int vgpu_batch_saxpy(struct vgpu_batch *b, struct vgpu_buffer *y, uint64_t y_off,
				 struct vgpu_buffer *x, uint64_t x_off, uint64_t len, float a)
{
	struct vgpu_compute_op op = { .opcode = VGPU_OP_SAXPY, .dst_off = y_off,
				      .src_off = x_off, .len = len };
	uint32_t bits;

	memcpy(&bits, &a, sizeof(bits));
	op.arg0 = bits;
	return typed_op(b, &op, y, x);
}

VGPU_EXPORT int vgpu_batch_sum_f32(struct vgpu_batch *b, struct vgpu_buffer *dst,
				   uint64_t dst_off, struct vgpu_buffer *src,
				   uint64_t src_off, uint64_t len)
{
	struct vgpu_compute_op op = { .opcode = VGPU_OP_SUM_F32, .dst_off = dst_off,
				      .src_off = src_off, .len = len };

	return typed_op(b, &op, dst, src);
}

VGPU_EXPORT int vgpu_batch_reduce_f32(struct vgpu_batch *b, struct vgpu_buffer *dst,
				      uint64_t dst_off, struct vgpu_buffer *src,
				      uint64_t src_off, uint64_t len)
{
	struct vgpu_compute_op op = { .opcode = VGPU_OP_REDUCE_F32, .dst_off = dst_off,
				      .src_off = src_off, .len = len };

	return typed_op(b, &op, dst, src);
}

VGPU_EXPORT int vgpu_batch_sgemm(struct vgpu_batch *b, struct vgpu_buffer *c, uint64_t c_off,
				 struct vgpu_buffer *ab, uint64_t a_off, uint64_t b_off,
				 uint32_t m, uint32_t n, uint32_t k, uint32_t lda, uint32_t ldb,
				 uint32_t ldc)
{
	struct vgpu_compute_op op = {
		.opcode = VGPU_OP_SGEMM,
		.dst_off = c_off,
		.src_off = a_off,
		.len = b_off,
		.arg0 = m | (uint64_t)n << 32,
		.arg1 = k | (uint64_t)lda << 32,
	};

	op.arg2 = ldb | (uint64_t)ldc << 32;
	return typed_op(b, &op, c, ab);
}

VGPU_EXPORT int vgpu_batch_nop(struct vgpu_batch *b)
{
	struct vgpu_compute_op op = { .opcode = VGPU_OP_NOP };

	if (!b)
		return vgpu_fail(-EINVAL, "vgpu_batch_nop: batch is NULL");
	return add_op(b, &op, NULL, NULL);
}

VGPU_EXPORT int vgpu_batch_add_raw(struct vgpu_batch *b, uint32_t opcode, uint32_t flags,
				   struct vgpu_buffer *dst, uint64_t dst_off,
				   struct vgpu_buffer *src, uint64_t src_off,
				   uint64_t len, uint64_t arg0, uint64_t arg1)
{
	struct vgpu_compute_op op = {
		.opcode = opcode,
		.flags = flags,
		.dst_off = dst_off,
		.src_off = src_off,
		.len = len,
		.arg0 = arg0,
		.arg1 = arg1,
	};

	if (!b || (dst && dst->dev != b->dev) || (src && src->dev != b->dev))
		return vgpu_fail(-EINVAL, "vgpu_batch_add_raw: batch NULL, or a buffer of "
				 "another device");
	return add_op(b, &op, dst, src);
}

/* ---- submit ---- */

/* The distinct buffers of the batch into b->bufs; returns their number. */
static unsigned int collect_buffers(struct vgpu_batch *b)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < b->num_ops; i++) {
		uint32_t nb = 2 + b->x[i].nbind;

		for (uint32_t k = 0; k < nb; k++) {
			struct vgpu_buffer *buf = k == 0 ? b->dst[i] : k == 1 ? b->src[i] :
						  b->x[i].bind[k - 2].buf;
			unsigned int j;

			if (!buf)
				continue;
			for (j = 0; j < n && b->bufs[j] != buf; j++)
				;
			if (j == n)
				b->bufs[n++] = buf;
		}
	}
	return n;
}

/*
 * The ranges of op i, each with its buffer: those vgpu_op_ranges() derives
 * from the op, then its bindings (a DISPATCH's buffers); the count (0 for
 * ops the device will refuse as malformed). r and buf have room for
 * VGPU_OP_MAX_RANGES + the op's bindings (op_max_ranges()).
 */
static int op_ranges(const struct vgpu_batch *b, unsigned int i, struct vgpu_op_range *r,
		     struct vgpu_buffer **buf)
{
	int n = vgpu_op_ranges(&b->ops[i], r);

	if (n < 0)
		return 0;
	for (int k = 0; k < n; k++)
		buf[k] = r[k].side == VGPU_OP_SRC ? b->src[i] : b->dst[i];
	for (uint32_t k = 0; k < b->x[i].nbind; k++) {
		const struct vgpu_bind *x = &b->x[i].bind[k];

		if (!x->buf)
			continue;
		vgpu_op_range_set(&r[n], VGPU_OP_DST, x->access, x->off, x->len);
		buf[n++] = x->buf;
	}
	return n;
}

/* Room op_ranges() needs for the ops of this batch. */
static unsigned int op_max_ranges(const struct vgpu_batch *b)
{
	unsigned int m = VGPU_OP_MAX_RANGES;

	for (unsigned int i = 0; i < b->num_ops; i++)
		if (VGPU_OP_MAX_RANGES + b->x[i].nbind > m)
			m = VGPU_OP_MAX_RANGES + b->x[i].nbind;
	return m;
}

/* Grow [*s, *e) to cover [a, a + len), clamped to the buffer. */
static void extent_add(const struct vgpu_buffer *buf, uintptr_t *s, uintptr_t *e,
		       uint64_t off, uint64_t len)
{
	uintptr_t base = vgpu_buffer_base(buf), a, z;

	if (off >= buf->size || len == 0)
		return;
	if (len > buf->size - off)
		len = buf->size - off;
	a = base + (uintptr_t)off;
	z = a + (uintptr_t)len;
	if (*s == *e) {
		*s = a;
		*e = z;
		return;
	}
	if (a < *s)
		*s = a;
	if (z > *e)
		*e = z;
}

/*
 * The fence's extents (one per buffer: what the submit touches and what it
 * writes, in the caller's address space) and its copy-back list. No lock
 * needed: the buffers are referenced by the batch.
 */
static int fence_prepare(struct vgpu_batch *b, struct vgpu_fence *f, unsigned int nbufs,
			 struct vgpu_op_range *r, struct vgpu_buffer **buf)
{
	f->ext = calloc(nbufs ? nbufs : 1, sizeof(*f->ext));
	f->cb = calloc((size_t)b->num_ops * VGPU_OP_MAX_RANGES + b->nbinds, sizeof(*f->cb));
	if (!f->ext || !f->cb)
		return -ENOMEM;
	for (unsigned int j = 0; j < nbufs; j++) {
		f->ext[j].buf = b->bufs[j];
		f->ext[j].copy = vgpu_buffer_on_copy_path(b->bufs[j]);
	}
	for (unsigned int i = 0; i < b->num_ops; i++) {
		int n = op_ranges(b, i, r, buf);

		for (int k = 0; k < n; k++) {
			struct vgpu_extent *x = NULL;

			if (!buf[k])
				continue;
			for (unsigned int j = 0; j < nbufs; j++)
				if (f->ext[j].buf == buf[k])
					x = &f->ext[j];
			extent_add(buf[k], &x->start, &x->end, r[k].off, r[k].len);
			if (!(r[k].access & VGPU_OP_WRITE))
				continue;
			extent_add(buf[k], &x->wstart, &x->wend, r[k].off, r[k].len);
			if (x->copy && !buf[k]->read_only)
				f->cb[f->ncb++] = (struct vgpu_copyback){
					.buf = buf[k], .off = r[k].off, .len = r[k].len, .op = i };
		}
	}
	return 0;
}

static bool spans_meet(uintptr_t a, uintptr_t ae, uintptr_t b, uintptr_t be)
{
	return a < ae && b < be && a < be && b < ae;
}

/*
 * Must the earlier submit p retire before submit f is copied in? When p has
 * a copy-back due over memory f uses (f would see the old bytes, or p's
 * copy-back would land over f's results), when f copies in memory p's
 * device writes go to, and when both use the same copy-path blob (f's
 * copy-in would change what p reads).
 */
static bool must_follow(const struct vgpu_fence *p, const struct vgpu_fence *f)
{
	for (unsigned int i = 0; i < p->nextents; i++) {
		const struct vgpu_extent *pe = &p->ext[i];

		for (unsigned int j = 0; j < f->nextents; j++) {
			const struct vgpu_extent *fe = &f->ext[j];

			if ((pe->copy || fe->copy) &&
			    spans_meet(pe->wstart, pe->wend, fe->start, fe->end))
				return true;
			if (pe->buf == fe->buf && fe->copy &&
			    spans_meet(pe->start, pe->end, fe->start, fe->end))
				return true;
		}
	}
	return false;
}

static uint64_t dev_off(const struct vgpu_buffer *buf, uint64_t off)
{
	return buf ? off + buf->page_off : off;
}

static size_t encode(struct vgpu_batch *b, uint32_t slot)
{
	struct vgpu_compute_submit h = {
		.magic = htole32(VGPU_COMPUTE_MAGIC),
		.num_ops = htole32(b->num_ops),
		.status_res = htole32(b->dev->status_res_id),
		.reserved = 0,
		.status_off = htole64((uint64_t)slot * sizeof(struct vgpu_compute_status)),
	};
	uint8_t *p = b->cmd;

	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	for (unsigned int i = 0; i < b->num_ops; i++) {
		const struct vgpu_compute_op *o = &b->ops[i];
		/* SGEMM's B lies in src at len: an offset like src_off. */
		uint64_t len = o->opcode == VGPU_OP_SGEMM ? dev_off(b->src[i], o->len) : o->len;
		struct vgpu_compute_op le = {
			.opcode = htole32(o->opcode),
			.flags = htole32(o->flags),
			.dst_res = htole32(o->dst_res),
			.src_res = htole32(o->src_res),
			.dst_off = htole64(dev_off(b->dst[i], o->dst_off)),
			.src_off = htole64(dev_off(b->src[i], o->src_off)),
			.len = htole64(len),
			.arg0 = htole64(o->arg0),
			.arg1 = htole64(o->arg1),
			.reserved = htole64(o->reserved),
		};

		memcpy(p, &le, sizeof(le));
		p += sizeof(le);
		if (b->x[i].payload_len) {
			const struct vgpu_op_extra *x = &b->x[i];
			size_t pad = (size_t)VGPU_COMPUTE_PAYLOAD_PAD(x->payload_len);

			memcpy(p, x->payload, x->payload_len);
			memset(p + x->payload_len, 0, pad - x->payload_len);
			/* A DISPATCH's buffers: their resources and device
			 * offsets, known only now. */
			for (uint32_t k = 0; k < x->nbind; k++) {
				struct vgpu_dispatch_arg a;
				uint8_t *ap = p + sizeof(struct vgpu_dispatch) + k * sizeof(a);

				if (!x->bind[k].buf)
					continue;
				memcpy(&a, ap, sizeof(a));
				a.res = htole32(x->bind[k].buf->res_id);
				a.offset = htole64(dev_off(x->bind[k].buf, x->bind[k].off));
				memcpy(ap, &a, sizeof(a));
			}
			p += pad;
		}
	}
	return (size_t)(p - b->cmd);
}

static int slot_alloc(struct vgpu_device *dev, uint32_t *slot)
{
	for (unsigned int w = 0; w < VGPU_STATUS_SLOTS / 64; w++) {
		if (dev->slot_map[w] != ~0ull) {
			unsigned int bit = (unsigned int)__builtin_ctzll(~dev->slot_map[w]);

			dev->slot_map[w] |= 1ull << bit;
			*slot = w * 64 + bit;
			return 0;
		}
	}
	return -EAGAIN;
}

static int check_submit_info(const struct vgpu_batch *b, const struct vgpu_submit_info *in)
{
	if (!in)
		return 0;
	if (in->struct_size < offsetof(struct vgpu_submit_info, out_syncobj_points) +
	    sizeof(in->out_syncobj_points))
		return vgpu_fail(-EINVAL, "vgpu_batch_submit_async: info->struct_size %zu is "
				 "smaller than any struct vgpu_submit_info", in->struct_size);
	if (in->flags & ~VGPU_SUBMIT_FLAGS_ALL)
		return vgpu_fail(-EINVAL, "vgpu_batch_submit_async: unknown flags 0x%x",
				 in->flags & ~VGPU_SUBMIT_FLAGS_ALL);
	if (in->ring >= b->dev->info.num_rings)
		return vgpu_fail(-EINVAL, "vgpu_batch_submit_async: ring %u is not below the "
				 "context's %u rings", in->ring, b->dev->info.num_rings);
	if ((in->flags & VGPU_SUBMIT_IN_FENCE_FD) && in->in_fence_fd < 0)
		return vgpu_fail(-EINVAL, "vgpu_batch_submit_async: VGPU_SUBMIT_IN_FENCE_FD with "
				 "in_fence_fd %d", in->in_fence_fd);
	if ((in->num_in_syncobjs && !in->in_syncobjs) ||
	    (in->num_out_syncobjs && !in->out_syncobjs))
		return vgpu_fail(-EINVAL, "vgpu_batch_submit_async: a syncobj count without "
				 "its array");
	if (in->num_in_syncobjs > 64 || in->num_out_syncobjs > 64)
		return vgpu_fail(-EINVAL, "vgpu_batch_submit_async: more than 64 in- or "
				 "out-syncobjs");
	return 0;
}

static void fill_syncobjs(struct drm_virtgpu_execbuffer_syncobj *s, uint32_t n,
			  const uint32_t *handles, const uint64_t *points)
{
	for (uint32_t i = 0; i < n; i++) {
		s[i].handle = handles[i];
		s[i].flags = 0;
		s[i].point = points ? points[i] : 0;
	}
}

/* Checks of the whole batch before anything is copied or queued. */
static int check_batch(const struct vgpu_batch *b, struct vgpu_op_range *r,
		       struct vgpu_buffer **buf)
{
	for (unsigned int i = 0; i < b->num_ops; i++) {
		int n = op_ranges(b, i, r, buf);
		bool gone = (b->dst[i] && b->dst[i]->destroyed) ||
			    (b->src[i] && b->src[i]->destroyed);

		for (uint32_t k = 0; k < b->x[i].nbind; k++)
			gone |= b->x[i].bind[k].buf && b->x[i].bind[k].buf->destroyed;
		if (gone)
			return vgpu_fail(-EINVAL, "vgpu_batch_submit_async: op %u names a buffer "
					 "that was destroyed", i);
		/* The device cannot refuse writes into blobs that are
		 * read-only only to the library. */
		for (int k = 0; k < n; k++)
			if (buf[k] && (r[k].access & VGPU_OP_WRITE) && buf[k]->read_only &&
			    !buf[k]->userptr)
				return vgpu_fail(-EACCES, "vgpu_batch_submit_async: op %u writes "
						 "into a read-only buffer", i);
	}
	return 0;
}

/* The rest of vgpu_batch_submit_async(), with room for op_ranges(). */
static int submit_checked(struct vgpu_batch *b, const struct vgpu_submit_info *info,
			  struct vgpu_fence **out, struct vgpu_op_range *r,
			  struct vgpu_buffer **rbuf)
{
	struct drm_virtgpu_execbuffer_syncobj ins[64], outs[64];
	struct drm_virtgpu_execbuffer eb;
	struct vgpu_device *dev = b->dev;
	struct vgpu_fence *f;
	unsigned int nbufs;
	int64_t deadline;
	bool copies;
	uint32_t slot;
	int err;

	f = calloc(1, sizeof(*f));
	if (!f)
		return vgpu_fail(-ENOMEM, "vgpu_batch_submit_async: out of memory");
	f->dev = dev;
	f->fd = -1;
	f->refs = 1;
	f->num_ops = b->num_ops;
	f->ring = info ? info->ring : 0;
	nbufs = collect_buffers(b);
	f->nextents = nbufs;
	err = fence_prepare(b, f, nbufs, r, rbuf);
	if (err) {
		f->nextents = 0;
		vgpu_fence_unref_locked(f);
		return vgpu_fail(err, "vgpu_batch_submit_async: out of memory");
	}
	copies = false;
	for (unsigned int j = 0; j < nbufs; j++)
		copies |= f->ext[j].copy;

	deadline = vgpu_deadline_ms(b->timeout_ms);
	pthread_mutex_lock(&dev->lock);
	/* Copies must not reorder memory: retire what this submit would race
	 * with (only ever needed when a copy path is involved). */
	if (copies || dev->pending_copyback) {
		struct vgpu_fence *p = dev->pending;

		while (!err && p) {
			if (!must_follow(p, f)) {
				p = p->next;
				continue;
			}
			err = vgpu_wait_retire_locked(p, deadline);
			p = dev->pending; /* the list changed while waiting */
		}
	}
	/* A status slot: retire what is done, then wait for the oldest. */
	while (!err && slot_alloc(dev, &slot)) {
		vgpu_reap_locked(dev);
		if (slot_alloc(dev, &slot) == 0)
			break;
		if (!dev->pending) {
			err = -EAGAIN; /* slots held by submits being made */
			break;
		}
		err = vgpu_wait_retire_locked(dev->pending, deadline);
	}
	if (err) {
		pthread_mutex_unlock(&dev->lock);
		f->nextents = 0;
		vgpu_fence_unref_locked(f);
		if (err == -EAGAIN)
			return vgpu_fail(err, "vgpu_batch_submit_async: all %u status slots are held "
					 "by submits other threads are making right now",
					 VGPU_STATUS_SLOTS);
		return vgpu_fail(err, "vgpu_batch_submit_async: waiting for an earlier submit: %s",
				 vgpu_strerror(err));
	}
	f->slot = slot;
	for (unsigned int i = 0; i < nbufs; i++) {
		vgpu_buffer_ref_locked(b->bufs[i]);
		b->handles[i + 1] = b->bufs[i]->handle;
	}
	for (unsigned int i = 0; i < b->num_ops; i++) {
		int n = op_ranges(b, i, r, rbuf);

		/* Every range, written ones too: what the device does not
		 * write must come back as it was. */
		for (int k = 0; k < n; k++)
			if (vgpu_buffer_on_copy_path(rbuf[k]))
				vgpu_buffer_copy(rbuf[k], r[k].off, r[k].len, true);
	}
	{
		struct vgpu_compute_status *st = vgpu_slot_ptr(dev, slot);

		__atomic_store_n(&st->result, VGPU_STATUS_PENDING, __ATOMIC_RELAXED);
		__atomic_store_n(&st->op_index, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&st->ops_done, 0, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	pthread_mutex_unlock(&dev->lock);

	/* The ioctl runs unlocked: the kernel may wait in it for in-fences. */
	b->handles[0] = dev->status_handle;
	memset(&eb, 0, sizeof(eb));
	eb.flags = VIRTGPU_EXECBUF_FENCE_FD_OUT | VIRTGPU_EXECBUF_RING_IDX;
	eb.ring_idx = f->ring;
	eb.size = (uint32_t)encode(b, slot);
	eb.command = (uint64_t)(uintptr_t)b->cmd;
	eb.bo_handles = (uint64_t)(uintptr_t)b->handles;
	eb.num_bo_handles = nbufs + 1;
	eb.fence_fd = -1;
	if (info && (info->flags & VGPU_SUBMIT_IN_FENCE_FD)) {
		eb.flags |= VIRTGPU_EXECBUF_FENCE_FD_IN;
		eb.fence_fd = info->in_fence_fd;
	}
	if (info && (info->num_in_syncobjs || info->num_out_syncobjs)) {
		fill_syncobjs(ins, info->num_in_syncobjs, info->in_syncobjs,
			      info->in_syncobj_points);
		fill_syncobjs(outs, info->num_out_syncobjs, info->out_syncobjs,
			      info->out_syncobj_points);
		eb.syncobj_stride = sizeof(ins[0]);
		eb.num_in_syncobjs = info->num_in_syncobjs;
		eb.num_out_syncobjs = info->num_out_syncobjs;
		eb.in_syncobjs = (uint64_t)(uintptr_t)ins;
		eb.out_syncobjs = (uint64_t)(uintptr_t)outs;
	}
	err = vgpu_dev_err(dev, vgpu_ioctl(dev->fd, DRM_IOCTL_VIRTGPU_EXECBUFFER, &eb));

	pthread_mutex_lock(&dev->lock);
	if (err) {
		vgpu_fence_release_locked(f);
		pthread_mutex_unlock(&dev->lock);
		vgpu_fence_unref_locked(f);
		return vgpu_fail(err, "vgpu_batch_submit_async: the kernel refused the submit "
				 "(execbuffer: %s)%s", strerror(-err),
				 err == -ENOENT ? ": a syncobj handle is unknown" :
				 err == -EINVAL ? ": a bad in-fence or syncobj" :
				 err == -ENODEV ? ": the device is gone" : "");
	}
	f->fd = eb.fence_fd;
	vgpu_pending_add_locked(f);
	pthread_mutex_unlock(&dev->lock);
	*out = f;
	return 0;
}

VGPU_EXPORT int vgpu_batch_submit_async(struct vgpu_batch *b, const struct vgpu_submit_info *info,
					struct vgpu_fence **out)
{
	struct vgpu_op_range *r;
	struct vgpu_buffer **rbuf;
	struct vgpu_device *dev;
	size_t cmd_len;
	int err;

	if (!out)
		return vgpu_fail(-EINVAL, "vgpu_batch_submit_async: out is NULL");
	*out = NULL;
	if (!b)
		return vgpu_fail(-EINVAL, "vgpu_batch_submit_async: batch is NULL");
	dev = b->dev;
	err = vgpu_dev_check(dev, "vgpu_batch_submit_async");
	if (err)
		return err;
	if (b->num_ops == 0)
		return vgpu_fail(-EINVAL, "vgpu_batch_submit_async: the batch has no ops");
	err = check_submit_info(b, info);
	if (err)
		return err;
	cmd_len = sizeof(struct vgpu_compute_submit) +
		  (size_t)b->num_ops * sizeof(struct vgpu_compute_op) + b->payload_bytes;
	if (cmd_len > b->cmd_cap) {
		uint8_t *c = realloc(b->cmd, cmd_len);

		if (!c)
			return vgpu_fail(-ENOMEM, "vgpu_batch_submit_async: out of memory");
		b->cmd = c;
		b->cmd_cap = cmd_len;
	}
	r = calloc(op_max_ranges(b), sizeof(*r));
	rbuf = calloc(op_max_ranges(b), sizeof(*rbuf));
	if (!r || !rbuf) {
		free(r);
		free(rbuf);
		return vgpu_fail(-ENOMEM, "vgpu_batch_submit_async: out of memory");
	}
	pthread_mutex_lock(&dev->lock);
	err = check_batch(b, r, rbuf);
	pthread_mutex_unlock(&dev->lock);
	if (err) {
		free(r);
		free(rbuf);
		return err;
	}
	err = submit_checked(b, info, out, r, rbuf);
	free(r);
	free(rbuf);
	return err;
}

VGPU_EXPORT int vgpu_batch_run(struct vgpu_batch *b, struct vgpu_submit_result *result)
{
	struct vgpu_fence *f;
	int err;

	if (result && result->struct_size < offsetof(struct vgpu_submit_result, num_ops))
		return vgpu_fail(-EINVAL, "vgpu_batch_run: result->struct_size %zu is smaller "
				 "than any struct vgpu_submit_result", result->struct_size);
	vgpu_result_not_executed(result, b ? b->num_ops : 0, 0);
	err = vgpu_batch_submit_async(b, NULL, &f);
	if (err)
		return err;
	err = vgpu_fence_wait(f, b->timeout_ms, result);
	vgpu_fence_destroy(f);
	return err;
}
