/* SPDX-License-Identifier: MIT */
/*
 * engine_cpu.c - the CPU backend: C loops on the engine's worker threads.
 * Every access goes through res_span: one contiguous span when the
 * backing has a zero-copy window, entry by entry when it has none.
 *
 * Bounded work: every op checks its deadline and the device's abort flag
 * (vop_stop()) between pieces of bounded size: a 256 KiB chunk (COPY,
 * FILL, SAXPY, REDUCE_F32), a row of C (SGEMM), CPU_SEQ_CHECK_BYTES of
 * input (CHECKSUM and SUM_F32, which are sequential). Once one piece sees
 * it must stop, the others skip what is left and the op returns the
 * reason; the result it would have written is not written.
 */
#include "engine_backend.h"

#include <endian.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY   /* XXH64_state_t on the stack */
#include <xxhash.h>

#include "engine.h"
#include "pool.h"
#include "stats.h"

struct cpu_backend {
	struct engine_backend b;
	struct pool *pool;
};

/* Sequential ops look at the clock after this many bytes. */
#define CPU_SEQ_CHECK_BYTES (4u << 20)

/*
 * Whether the op must stop: *stopped is the first reason any piece found
 * (0: none yet), shared by the pieces of one op on every thread.
 */
static bool must_stop(const struct vop *op, atomic_uint *stopped)
{
	unsigned why = atomic_load_explicit(stopped, memory_order_relaxed), none = 0;

	if (why)
		return true;
	why = vop_stop(op);
	if (!why)
		return false;
	atomic_compare_exchange_strong(stopped, &none, why);
	return true;
}

/* ---- execution: every access through res_span (entry by entry) ---- */

struct job {
	const struct guest_mem *gm;
	const struct vop *op;
	atomic_uint stopped;
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

	if (must_stop(op, &j->stopped))
		return;
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

	if (must_stop(op, &j->stopped))
		return;
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

	if (must_stop(op, &j->stopped))
		return;
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

static uint32_t run_sum(const struct guest_mem *gm, const struct vop *op)
{
	double acc = 0.0;
	uint64_t pos = 0, n = op->len, bits;
	atomic_uint stopped = 0;

	/* One thread, index order: the result does not depend on --threads. */
	while (n) {
		uint64_t sa, k;
		uint8_t *s;

		if (must_stop(op, &stopped))
			return stopped;
		s = res_span(op->src, gm, op->src_off + pos, &sa);
		if (!s)
			return VGPU_COMPUTE_OK;
		if (sa > CPU_SEQ_CHECK_BYTES)
			sa = CPU_SEQ_CHECK_BYTES;
		k = (n < sa ? n : sa) & ~(uint64_t)3;
		if (k == 0) {
			uint8_t xb[4];

			if (res_read(op->src, gm, op->src_off + pos, xb, 4))
				return VGPU_COMPUTE_OK;
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
	return VGPU_COMPUTE_OK;
}

static uint32_t run_checksum(const struct guest_mem *gm, const struct vop *op)
{
	XXH64_state_t state, *st = &state;
	uint64_t pos = 0, n = op->len, h;
	atomic_uint stopped = 0;

	XXH64_reset(st, op->arg0);
	while (n) {
		uint64_t sa, k;
		uint8_t *s;

		if (must_stop(op, &stopped))
			return stopped;
		s = res_span(op->src, gm, op->src_off + pos, &sa);
		if (!s)
			break;
		if (sa > CPU_SEQ_CHECK_BYTES)
			sa = CPU_SEQ_CHECK_BYTES;
		k = n < sa ? n : sa;
		XXH64_update(st, s, (size_t)k);
		pos += k;
		n -= k;
	}
	h = htole64(XXH64_digest(st));
	res_write(op->dst, gm, op->dst_off, &h, 8);
	return VGPU_COMPUTE_OK;
}

/* ---- version 2 ops ---- */

/* f32 pointer to [off, +n) of r if contiguous and aligned there, else the
 * bytes copied into tmp. */
static const float *f32_view(const struct res_backing *r, const struct guest_mem *gm,
			     uint64_t off, uint64_t n, float *tmp)
{
	uint64_t avail;
	uint8_t *p = res_span(r, gm, off, &avail);

	if (p && avail >= n && (uintptr_t)p % _Alignof(float) == 0)
		return (const float *)(void *)p;
	if (res_read(r, gm, off, tmp, n))
		memset(tmp, 0, n);
	return tmp;
}

struct gemm_job {
	const struct guest_mem *gm;
	const struct vop *op;
	uint32_t rows_per;
	atomic_uint stopped;
};

/* C rows [i0, i1): acc[j] += A[i][k] * B[k][j] in k order for every j
 * (each element is accumulated in f32 in index order of k). */
static void gemm_chunk(void *arg, size_t c)
{
	struct gemm_job *j = arg;
	const struct vop *op = j->op;
	uint32_t i0 = (uint32_t)c * j->rows_per, i1 = i0 + j->rows_per;
	float *acc = malloc((size_t)op->n * 4), *ta = malloc((size_t)op->k * 4),
	      *tb = malloc((size_t)op->n * 4);

	if (i1 > op->m)
		i1 = op->m;
	if (!acc || !ta || !tb)
		goto out;  /* the row stays as it was: cannot happen in practice */
	for (uint32_t i = i0; i < i1 && !must_stop(op, &j->stopped); i++) {
		const float *a = f32_view(op->src, j->gm, op->src_off + (uint64_t)i * op->lda * 4,
					  (uint64_t)op->k * 4, ta);

		memset(acc, 0, (size_t)op->n * 4);
		for (uint32_t k = 0; k < op->k; k++) {
			const float *b = f32_view(op->src, j->gm,
						  op->b_off + (uint64_t)k * op->ldb * 4,
						  (uint64_t)op->n * 4, tb);
			float aik = a[k];

			for (uint32_t n = 0; n < op->n; n++) {
				float t = aik * b[n];

				acc[n] = acc[n] + t;
			}
		}
		res_write(op->dst, j->gm, op->dst_off + (uint64_t)i * op->ldc * 4, acc,
			  (uint64_t)op->n * 4);
	}
out:
	free(acc);
	free(ta);
	free(tb);
}

static uint32_t run_sgemm(struct cpu_backend *cb, const struct guest_mem *gm, const struct vop *op)
{
	struct gemm_job j = { .gm = gm, .op = op };
	unsigned nt = pool_threads(cb->pool);

	j.rows_per = (op->m + nt * 4 - 1) / (nt * 4);
	if (j.rows_per == 0)
		j.rows_per = 1;
	pool_run(cb->pool, gemm_chunk, &j, (op->m + j.rows_per - 1) / j.rows_per);
	return atomic_load(&j.stopped);
}

struct reduce_job {
	const struct guest_mem *gm;
	const struct vop *op;
	double *part;
	atomic_uint stopped;
};

static void reduce_chunk(void *arg, size_t i)
{
	struct reduce_job *j = arg;
	const struct vop *op = j->op;
	uint64_t s = (uint64_t)i * ENGINE_CHUNK_BYTES, n = op->len - s, pos;
	double acc = 0.0;

	if (n > ENGINE_CHUNK_BYTES)
		n = ENGINE_CHUNK_BYTES;
	if (must_stop(op, &j->stopped))
		return;
	for (pos = s; n;) {
		uint64_t sa, k;
		uint8_t *p = res_span(op->src, j->gm, op->src_off + pos, &sa);

		if (!p)
			break;
		k = (n < sa ? n : sa) & ~(uint64_t)3;
		if (k == 0) {
			uint8_t xb[4];

			if (res_read(op->src, j->gm, op->src_off + pos, xb, 4))
				break;
			acc += (double)ld_f32(xb);
			k = 4;
		} else {
			for (uint64_t e = 0; e < k; e += 4)
				acc += (double)ld_f32(p + e);
		}
		pos += k;
		n -= k;
	}
	j->part[i] = acc;
}

/* Partial sums of 256 KiB chunks on the workers, added in chunk order. */
static uint32_t run_reduce(struct cpu_backend *cb, const struct guest_mem *gm,
			   const struct vop *op)
{
	size_t nchunks = (size_t)((op->len + ENGINE_CHUNK_BYTES - 1) / ENGINE_CHUNK_BYTES);
	struct reduce_job j = { .gm = gm, .op = op };
	double acc = 0.0;
	uint64_t bits;

	j.part = calloc(nchunks ? nchunks : 1, sizeof(double));
	if (!j.part)
		return VGPU_COMPUTE_OK;
	pool_run(cb->pool, reduce_chunk, &j, nchunks);
	if (atomic_load(&j.stopped)) {
		free(j.part);
		return atomic_load(&j.stopped);
	}
	for (size_t i = 0; i < nchunks; i++)
		acc += j.part[i];
	free(j.part);
	memcpy(&bits, &acc, 8);
	bits = htole64(bits);
	res_write(op->dst, gm, op->dst_off, &bits, 8);
	return VGPU_COMPUTE_OK;
}

static uint32_t cpu_run(struct engine_backend *b, const struct guest_mem *gm,
		       const struct vop *op)
{
	struct cpu_backend *cb = (struct cpu_backend *)b;
	struct job j = { .gm = gm, .op = op };
	size_t nchunks = (size_t)((op->len + ENGINE_CHUNK_BYTES - 1) / ENGINE_CHUNK_BYTES);

	atomic_init(&j.stopped, 0);
	switch (op->opcode) {
	case VGPU_OP_NOP:
		break;
	case VGPU_OP_COPY:
		pool_run(cb->pool, copy_chunk, &j, nchunks);
		break;
	case VGPU_OP_FILL: {
		uint32_t v = htole32((uint32_t)op->arg0);

		for (size_t k = 0; k < sizeof(j.pat); k += 4)
			memcpy(j.pat + k, &v, 4);
		pool_run(cb->pool, fill_chunk, &j, nchunks);
		break;
	}
	case VGPU_OP_SAXPY:
		pool_run(cb->pool, saxpy_chunk, &j, nchunks);
		break;
	case VGPU_OP_CHECKSUM:
		return run_checksum(gm, op);
	case VGPU_OP_SUM_F32:
		return run_sum(gm, op);
	case VGPU_OP_SGEMM:
		return run_sgemm(cb, gm, op);
	case VGPU_OP_REDUCE_F32:
		return run_reduce(cb, gm, op);
	}
	return atomic_load(&j.stopped);
}


static void cpu_destroy(struct engine_backend *b)
{
	struct cpu_backend *cb = (struct cpu_backend *)b;

	pool_free(cb->pool);
	free(cb);
}

struct engine_backend *engine_cpu_new(unsigned nthreads)
{
	struct cpu_backend *cb = calloc(1, sizeof(*cb));

	if (!cb)
		return NULL;
	cb->pool = pool_new(nthreads);
	if (!cb->pool) {
		free(cb);
		return NULL;
	}
	cb->b.name = "cpu";
	cb->b.id = VGPU_BACKEND_CPU;
	cb->b.num_threads = pool_threads(cb->pool);
	cb->b.zero_copy = true;
	cb->b.run = cpu_run;
	cb->b.destroy = cpu_destroy;
	return &cb->b;
}
