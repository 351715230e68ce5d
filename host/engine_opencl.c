/* SPDX-License-Identifier: MIT */
/*
 * engine_opencl.c - the OpenCL backend: every op as OpenCL kernels on the
 * guest's pages, through the ICD loader (any platform: PoCL's CPU device,
 * or a GPU).
 *
 * Buffers: each zero-copy window (window.h) gets one buffer, created with
 * CL_MEM_USE_HOST_PTR over it by the first op that uses the window and
 * kept for the window's life; the window releases it when it is unmapped
 * (its backing's last reference, or a new memory table). A resource
 * without a window is refused during validation (E_NOWINDOW), before any
 * op runs.
 *
 * Zero copy is proven, not assumed: a gate at start (zero_copy_gate())
 * runs the device's own kernels on a memfd window of its own, mapped as
 * the real ones are, and looks at the file through a second, plain
 * mapping. On a device that passes, an op is its launches, each waited
 * for with clFinish, and nothing else: the gate showed that a kernel's
 * stores are in the memory file after clFinish, and that host stores made
 * after the buffer was created reach the kernels, neither needing a map.
 * A device that fails is treated as copying (the log says so at start,
 * engine_backend.zero_copy is false, cl_zero_copy reads "no"): each op
 * then writes what it reads into the buffer from the buffer's own host
 * pointer before its launches (clEnqueueWriteBuffer with host_ptr +
 * offset, which the specification gives for "the latest bits" of a
 * USE_HOST_PTR buffer) and maps what it wrote for reading after them
 * (after which host_ptr holds the latest bits), and the bytes it moved are
 * counted (cl_copied_bytes). Results are the same either way.
 *
 * Threads: each calling thread (the ring workers, the queue thread) has
 * its own command queue, kernel objects and scratch buffers (struct
 * cl_thread), made at its first op and freed when the thread exits or the
 * backend is destroyed, so ops from different rings run at the same time.
 * This relies on OpenCL's thread-safety rules (1.2, appendix A.2): every
 * API call is thread-safe except clSetKernelArg (and clSetKernelExecInfo)
 * on one kernel object from two threads at once, hence kernel objects per
 * thread; the context, the program and memory objects are shared, and
 * one buffer may be used by commands of several queues. What the
 * specification leaves to the application is mapped memory and a buffer
 * read or written from its own host pointer: no other command may use the
 * buffer meanwhile. The zero-copy path never maps; the copying path holds
 * each of the op's buffers' locks from its first copy to its last unmap,
 * so there ops that share a buffer run one after the other.
 *
 * Bounded work: the op's deadline and abort flag (engine_backend.h) are
 * checked before every launch, and no launch is long. Each op is cut into
 * launches (rows of C for SGEMM, slices of the range for COPY, FILL,
 * SAXPY, CHECKSUM and SUM_F32, groups of its fixed partial sums for
 * REDUCE_F32) sized so that one takes about CL_LAUNCH_NS on this device,
 * from how long the op's previous launch took (the first is small).
 * CHECKSUM and SUM_F32 carry their state between launches, so every
 * result is the same bits as in one launch.
 *
 * The kernels are the device's own source below, built once at start.
 * Nothing the guest sends is ever compiled.
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include <endian.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine_backend.h"
#include "stats.h"
#include "window.h"

static const char kernel_src[] =
"#pragma OPENCL FP_CONTRACT OFF\n"
"#ifdef HAVE_FP64\n"
"#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"
"#endif\n"
/* 16 bytes a work-item. */
"__kernel void k_copy(__global uchar *d, ulong doff, __global const uchar *s, ulong soff, ulong n)\n"
"{\n"
"  ulong i = get_global_id(0) * 16;\n"
"  if (i + 16 <= n) { vstore16(vload16(0, s + soff + i), 0, d + doff + i); return; }\n"
"  for (; i < n; i++) d[doff + i] = s[soff + i];\n"
"}\n"
"__kernel void k_fill(__global uchar *d, ulong doff, uint v, ulong n)\n"
"{\n"
"  ulong i = get_global_id(0) * 16;\n"
"  if (i + 16 <= n) { vstore16(as_uchar16((uint4)(v)), 0, d + doff + i); return; }\n"
"  for (; i < n; i++) d[doff + i] = (uchar)(v >> (8 * (i % 4)));\n"
"}\n"
"__kernel void k_saxpy(__global uchar *d, ulong doff, __global const uchar *s, ulong soff, float a, ulong n)\n"
"{\n"
"  ulong i = get_global_id(0) * 4;\n"
"  if (i >= n) return;\n"
"  float x = as_float(vload4(0, s + soff + i));\n"
"  float y = as_float(vload4(0, d + doff + i));\n"
"  float t = a * x;\n"
"  vstore4(as_uchar4(t + y), 0, d + doff + i);\n"
"}\n"
"#ifdef HAVE_FP64\n"
/* Serial, in index order, on one work-item; the running sum is carried
 * in st[0] from one launch to the next (flags: 1 first, 2 last). */
"__kernel void k_sum_serial(__global uchar *d, ulong doff, __global ulong *st, __global const uchar *s, ulong soff, ulong n, uint flags)\n"
"{\n"
"  double acc = (flags & 1) ? 0.0 : as_double(st[0]);\n"
"  for (ulong i = 0; i < n; i += 4) acc += (double)as_float(vload4(0, s + soff + i));\n"
"  st[0] = as_ulong(acc);\n"
"  if (flags & 2) vstore8(as_uchar8(acc), 0, d + doff);\n"
"}\n"
/* Stage 1: work-item g0 + g sums its own contiguous slice. */
"__kernel void k_reduce_part(__global double *part, __global const uchar *s, ulong soff, ulong n, ulong per, uint g0)\n"
"{\n"
"  ulong g = g0 + get_global_id(0), b = g * per, e = b + per;\n"
"  double acc = 0.0;\n"
"  if (e > n) e = n;\n"
"  for (ulong i = b; i < e; i += 4) acc += (double)as_float(vload4(0, s + soff + i));\n"
"  part[g] = acc;\n"
"}\n"
"__kernel void k_reduce_final(__global uchar *d, ulong doff, __global const double *part, uint np)\n"
"{\n"
"  double acc = 0.0;\n"
"  for (uint i = 0; i < np; i++) acc += part[i];\n"
"  vstore8(as_uchar8(acc), 0, d + doff);\n"
"}\n"
"#endif\n"
"#define P1 0x9E3779B185EBCA87UL\n"
"#define P2 0xC2B2AE3D27D4EB4FUL\n"
"#define P3 0x165667B19E3779F9UL\n"
"#define P4 0x85EBCA77C2B2AE63UL\n"
"#define P5 0x27D4EB2F165667C5UL\n"
"ulong xr(ulong acc, ulong in) { acc += in * P2; acc = rotate(acc, 31UL); return acc * P1; }\n"
"ulong xm(ulong acc, ulong v) { acc ^= xr(0, v); return acc * P1 + P4; }\n"
"ulong ld64(__global const uchar *p) { return as_ulong(vload8(0, p)); }\n"
"ulong ld32(__global const uchar *p) { return (ulong)as_uint(vload4(0, p)); }\n"
/* XXH64 is sequential by definition: one work-item. Its 32-byte stripes
 * (n a multiple of 32), the four lanes carried in st[0..3] from one
 * launch to the next... */
"__kernel void k_xxh64_stripes(__global ulong *st, __global const uchar *s, ulong soff, ulong n, ulong seed, uint first)\n"
"{\n"
"  __global const uchar *p = s + soff;\n"
"  ulong v1, v2, v3, v4;\n"
"  if (first) { v1 = seed + P1 + P2; v2 = seed + P2; v3 = seed; v4 = seed - P1; }\n"
"  else { v1 = st[0]; v2 = st[1]; v3 = st[2]; v4 = st[3]; }\n"
"  for (ulong i = 0; i < n; i += 32, p += 32) {\n"
"    v1 = xr(v1, ld64(p)); v2 = xr(v2, ld64(p + 8)); v3 = xr(v3, ld64(p + 16)); v4 = xr(v4, ld64(p + 24));\n"
"  }\n"
"  st[0] = v1; st[1] = v2; st[2] = v3; st[3] = v4;\n"
"}\n"
/* ...then the rest over the whole input of n bytes: the lanes merged
 * (n >= 32), the tail after the last stripe, the avalanche. */
"__kernel void k_xxh64_final(__global uchar *d, ulong doff, __global const ulong *st, __global const uchar *s, ulong soff, ulong n, ulong seed)\n"
"{\n"
"  __global const uchar *p = s + soff + n / 32 * 32, *end = s + soff + n;\n"
"  ulong h;\n"
"  if (n >= 32) {\n"
"    ulong v1 = st[0], v2 = st[1], v3 = st[2], v4 = st[3];\n"
"    h = rotate(v1, 1UL) + rotate(v2, 7UL) + rotate(v3, 12UL) + rotate(v4, 18UL);\n"
"    h = xm(h, v1); h = xm(h, v2); h = xm(h, v3); h = xm(h, v4);\n"
"  } else {\n"
"    h = seed + P5;\n"
"  }\n"
"  h += n;\n"
"  while (end - p >= 8) { h ^= xr(0, ld64(p)); h = rotate(h, 27UL) * P1 + P4; p += 8; }\n"
"  if (end - p >= 4) { h ^= ld32(p) * P1; h = rotate(h, 23UL) * P2 + P3; p += 4; }\n"
"  while (p < end) { h ^= (ulong)(*p) * P5; h = rotate(h, 11UL) * P1; p++; }\n"
"  h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32;\n"
"  vstore8(as_uchar8(h), 0, d + doff);\n"
"}\n"
/* One work-item per element of C in rows i0.. of this launch; each
 * element summed in k order. */
"__kernel void k_sgemm(__global uchar *cb, ulong coff, __global const uchar *sb, ulong aoff, ulong boff,\n"
"                      uint M, uint N, uint K, uint lda, uint ldb, uint ldc, uint i0)\n"
"{\n"
"  uint j = get_global_id(0), i = i0 + get_global_id(1);\n"
"  if (i >= M || j >= N) return;\n"
"  __global const float *A = (__global const float *)(sb + aoff) + (ulong)i * lda;\n"
"  __global const float *B = (__global const float *)(sb + boff) + j;\n"
"  float acc = 0.0f;\n"
"  for (uint k = 0; k < K; k++) acc = acc + A[k] * B[(ulong)k * ldb];\n"
"  ((__global float *)(cb + coff))[(ulong)i * ldc + j] = acc;\n"
"}\n";

enum { K_COPY, K_FILL, K_SAXPY, K_XSTRIPES, K_XFINAL, K_SGEMM, K_SUM, K_RPART, K_RFINAL, K_N };
static const char *const kernel_names[K_N] = {
	"k_copy", "k_fill", "k_saxpy", "k_xxh64_stripes", "k_xxh64_final", "k_sgemm",
	"k_sum_serial", "k_reduce_part", "k_reduce_final",
};

#define REDUCE_PARTS 256u

/* What one launch should take, and the size of an op's first launch
 * (before anything is known about the device's speed). */
#define CL_LAUNCH_NS (50ull * 1000000ull)
#define CL_FIRST_BYTES (4ull << 20)
#define CL_FIRST_MACS (1ull << 22)

/* launch() and the op loops: the op must stop (struct run.stop says why). */
#define CL_STOPPED 1

struct cl_backend;
struct cl_tls;

/* One calling thread's own objects for one backend. */
struct cl_thread {
	struct cl_backend *cb;
	struct cl_tls *tls;            /* the thread's list it is on */
	struct cl_thread *cb_next;     /* cb->threads */
	struct cl_thread *tls_next;    /* tls->head */
	cl_command_queue q;
	cl_kernel k[K_N];
	cl_mem part;                   /* REDUCE_PARTS doubles of scratch */
	cl_mem st;                     /* CHECKSUM's and SUM_F32's state between launches */
};

/* A thread's states, one per backend it ran ops for; its pthread key's
 * destructor frees them when the thread exits. */
struct cl_tls {
	struct cl_thread *head;
};

/* The buffer of one window (res_window_set_dev). */
struct cl_win {
	uint64_t serial;               /* of the backend that made it */
	cl_mem m;
	pthread_mutex_t lock;          /* copying device: held by the op using m */
};

struct cl_backend {
	struct engine_backend b;
	uint64_t serial;               /* unique in the process: thread caches compare it */
	cl_platform_id plat;
	cl_device_id dev;
	cl_context ctx;
	cl_program prog;
	bool fp64;
	pthread_mutex_t win_lock;      /* serializes making windows' buffers */
	struct cl_thread *threads;     /* under threads_lock */
};

/* Every thread state of every backend is linked and unlinked under this
 * lock: a backend's destroy and a thread's exit may meet. */
static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t tls_key;
static bool tls_key_ok;
static atomic_uint_fast64_t serials;
static _Thread_local struct cl_tls tl_states;
/* The last state this thread used, valid while the backend with serial
 * tl_serial lives (its destroy frees it; a new backend never has that
 * serial). */
static _Thread_local struct cl_thread *tl_last;
static _Thread_local uint64_t tl_serial;

static void thread_free(struct cl_thread *t)
{
	for (unsigned i = 0; i < K_N; i++)
		if (t->k[i])
			clReleaseKernel(t->k[i]);
	if (t->part)
		clReleaseMemObject(t->part);
	if (t->st)
		clReleaseMemObject(t->st);
	if (t->q)
		clReleaseCommandQueue(t->q);
	free(t);
	STAT_SUB(cl_threads, 1);
}

static struct cl_thread *thread_new(struct cl_backend *cb, cl_int *err)
{
	struct cl_thread *t = calloc(1, sizeof(*t));

	*err = CL_OUT_OF_HOST_MEMORY;
	if (!t)
		return NULL;
	STAT_ADD(cl_threads, 1);
	t->cb = cb;
	t->q = clCreateCommandQueue(cb->ctx, cb->dev, 0, err);
	if (!t->q)
		goto fail;
	for (unsigned i = 0; i < K_N; i++) {
		if (!cb->fp64 && (i == K_SUM || i == K_RPART || i == K_RFINAL))
			continue;
		t->k[i] = clCreateKernel(cb->prog, kernel_names[i], err);
		if (!t->k[i])
			goto fail;
	}
	t->part = clCreateBuffer(cb->ctx, CL_MEM_READ_WRITE, REDUCE_PARTS * sizeof(cl_double),
				 NULL, err);
	if (!t->part)
		goto fail;
	t->st = clCreateBuffer(cb->ctx, CL_MEM_READ_WRITE, 8 * sizeof(cl_ulong), NULL, err);
	if (!t->st)
		goto fail;
	*err = CL_SUCCESS;
	return t;
fail:
	thread_free(t);
	return NULL;
}

/* Take t off its backend's list and off its thread's (threads_lock held). */
static void thread_unlink(struct cl_thread *t)
{
	struct cl_thread **pp;

	for (pp = &t->cb->threads; *pp != t; pp = &(*pp)->cb_next)
		;
	*pp = t->cb_next;
	for (pp = &t->tls->head; *pp != t; pp = &(*pp)->tls_next)
		;
	*pp = t->tls_next;
}

/* The thread exits: its states go with it. */
static void tls_destroy(void *arg)
{
	struct cl_tls *tls = arg;

	pthread_mutex_lock(&threads_lock);
	while (tls->head) {
		struct cl_thread *t = tls->head;

		thread_unlink(t);
		thread_free(t);
	}
	pthread_mutex_unlock(&threads_lock);
}

static void tls_key_make(void)
{
	tls_key_ok = pthread_key_create(&tls_key, tls_destroy) == 0;
}

/* The calling thread's state for cb, made at its first op. */
static struct cl_thread *thread_state(struct cl_backend *cb, cl_int *err)
{
	struct cl_thread *t;

	if (tl_last && tl_serial == cb->serial)
		return tl_last;
	pthread_once(&key_once, tls_key_make);
	*err = CL_OUT_OF_HOST_MEMORY;
	if (!tls_key_ok)
		return NULL;
	pthread_mutex_lock(&threads_lock);
	for (t = tl_states.head; t && t->cb != cb; t = t->tls_next)
		;
	/* Registered before it is linked: the key's destructor is what
	 * unlinks it when the thread exits. */
	if (!t && pthread_setspecific(tls_key, &tl_states) == 0) {
		t = thread_new(cb, err);
		if (t) {
			t->tls = &tl_states;
			t->tls_next = tl_states.head;
			tl_states.head = t;
			t->cb_next = cb->threads;
			cb->threads = t;
		}
	}
	pthread_mutex_unlock(&threads_lock);
	if (t) {
		tl_last = t;
		tl_serial = cb->serial;
	}
	return t;
}

static uint32_t cl_check(struct engine_backend *b, const struct guest_mem *gm,
			 const struct vop *op)
{
	struct cl_backend *cb = (struct cl_backend *)b;

	(void)gm;
	if ((op->opcode == VGPU_OP_SUM_F32 || op->opcode == VGPU_OP_REDUCE_F32) && !cb->fp64)
		return VGPU_COMPUTE_E_OPCODE;
	if ((op->dst && !res_window_base(op->dst)) || (op->src && !res_window_base(op->src))) {
		STAT_ADD(cl_nowindow, 1);
		return VGPU_COMPUTE_E_NOWINDOW;
	}
	return VGPU_COMPUTE_OK;
}

/* The window releases its buffer (window.h): no op uses it any more. */
static void win_buffer_release(void *obj)
{
	struct cl_win *w = obj;

	clReleaseMemObject(w->m);
	pthread_mutex_destroy(&w->lock);
	free(w);
	STAT_SUB(cl_buffers_live, 1);
}

/* The buffer over r's window: made by the first op that uses it. */
static struct cl_win *win_buffer(struct cl_backend *cb, const struct res_backing *r,
				 cl_int *err)
{
	struct cl_win *w = res_window_dev(r);

	if (!w) {
		pthread_mutex_lock(&cb->win_lock);
		w = res_window_dev(r);
		if (!w && (w = calloc(1, sizeof(*w))) != NULL) {
			cl_mem_flags f = CL_MEM_USE_HOST_PTR |
					 (r->readonly ? CL_MEM_READ_ONLY : CL_MEM_READ_WRITE);

			w->serial = cb->serial;
			pthread_mutex_init(&w->lock, NULL);
			w->m = clCreateBuffer(cb->ctx, f, (size_t)r->size, res_window_base(r), err);
			if (w->m) {
				STAT_ADD(cl_buffers, 1);
				STAT_ADD(cl_buffers_live, 1);
			}
			if (!w->m || !res_window_set_dev(r, w, win_buffer_release)) {
				if (w->m)
					win_buffer_release(w);
				else
					free(w);
				w = NULL;
			}
		}
		pthread_mutex_unlock(&cb->win_lock);
		if (!w) {
			if (*err == CL_SUCCESS)
				*err = CL_OUT_OF_HOST_MEMORY;
			return NULL;
		}
	}
	if (w->serial != cb->serial) {
		/* Made by another backend of this process: one OpenCL backend
		 * at a time uses a window (the daemon has one). */
		*err = CL_INVALID_CONTEXT;
		return NULL;
	}
	return w;
}

/* One op on one thread. */
struct run {
	struct cl_thread *t;
	const struct vop *op;
	cl_mem d, s;
	uint32_t stop;        /* why it stopped early (E_TIMEOUT, E_DEVICE); 0: it did not */
};

#define SETARG(k, i, v) do {                                                    \
		if (err == CL_SUCCESS)                                          \
			err = clSetKernelArg((k), (i), sizeof(v), &(v));        \
	} while (0)

/* One launch, after the op's deadline and abort flag: enqueued and waited
 * for; *ns (if given): how long it took. An empty range launches nothing. */
static cl_int launch(struct run *r, cl_kernel k, cl_uint dims, const size_t *gws, uint64_t *ns)
{
	uint64_t t0;
	cl_int err;

	if (ns)
		*ns = 0;
	r->stop = vop_stop(r->op);
	if (r->stop)
		return CL_STOPPED;
	for (cl_uint i = 0; i < dims; i++)
		if (!gws[i])
			return CL_SUCCESS;
	t0 = vop_now_ns();
	err = clEnqueueNDRangeKernel(r->t->q, k, dims, NULL, gws, NULL, 0, NULL, NULL);
	if (err == CL_SUCCESS)
		err = clFinish(r->t->q);
	if (ns)
		*ns = vop_now_ns() - t0;
	return err;
}

/*
 * The size of the next launch, after one of `done` units took ns: what
 * would take CL_LAUNCH_NS at that speed, and at most 4 times as much:
 * speed is not linear in size (the first touch of a window's pages
 * faults them in, caches stop holding the data), so growth is gradual.
 * A multiple of gran, at least gran.
 */
static uint64_t next_piece(uint64_t done, uint64_t ns, uint64_t gran)
{
	uint64_t next = done * 4;

	if (ns && done < UINT64_MAX / CL_LAUNCH_NS && done * CL_LAUNCH_NS / ns < next)
		next = done * CL_LAUNCH_NS / ns;
	next -= next % gran;
	return next < gran ? gran : next;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* COPY, FILL, SAXPY: slices of 16-byte multiples (FILL's pattern keeps its
 * phase), each its own launch. */
static cl_int run_stream(struct run *r)
{
	const struct vop *op = r->op;
	cl_kernel k = r->t->k[op->opcode == VGPU_OP_COPY ? K_COPY :
			      op->opcode == VGPU_OP_FILL ? K_FILL : K_SAXPY];
	uint64_t piece = CL_FIRST_BYTES, pos = 0;
	cl_int err = CL_SUCCESS;

	while (pos < op->len && err == CL_SUCCESS) {
		uint64_t len = min64(op->len - pos, piece), ns = 0;
		cl_ulong doff = op->dst_off + pos, soff = op->src_off + pos, n = len;
		size_t gws = (size_t)((len + 15) / 16);

		SETARG(k, 0, r->d);
		SETARG(k, 1, doff);
		if (op->opcode == VGPU_OP_FILL) {
			cl_uint v = (cl_uint)op->arg0;

			SETARG(k, 2, v);
			SETARG(k, 3, n);
		} else {
			SETARG(k, 2, r->s);
			SETARG(k, 3, soff);
			if (op->opcode == VGPU_OP_SAXPY) {
				uint32_t u = (uint32_t)op->arg0;
				cl_float a;

				memcpy(&a, &u, 4);
				SETARG(k, 4, a);
				SETARG(k, 5, n);
				gws = (size_t)(len / 4);
			} else {
				SETARG(k, 4, n);
			}
		}
		if (err == CL_SUCCESS)
			err = launch(r, k, 1, &gws, &ns);
		pos += len;
		piece = next_piece(len, ns, 16);
	}
	return err;
}

static cl_int run_checksum(struct run *r)
{
	const struct vop *op = r->op;
	cl_kernel ks = r->t->k[K_XSTRIPES], kf = r->t->k[K_XFINAL];
	uint64_t stripes = op->len / 32 * 32, pos = 0, piece = CL_FIRST_BYTES;
	cl_ulong seed = op->arg0, doff = op->dst_off, soff = op->src_off, n = op->len;
	cl_int err = CL_SUCCESS;
	size_t one = 1;

	while (pos < stripes && err == CL_SUCCESS) {
		uint64_t len = min64(stripes - pos, piece), ns = 0;
		cl_ulong off = op->src_off + pos, cn = len;
		cl_uint first = pos == 0;

		SETARG(ks, 0, r->t->st);
		SETARG(ks, 1, r->s);
		SETARG(ks, 2, off);
		SETARG(ks, 3, cn);
		SETARG(ks, 4, seed);
		SETARG(ks, 5, first);
		if (err == CL_SUCCESS)
			err = launch(r, ks, 1, &one, &ns);
		pos += len;
		piece = next_piece(len, ns, 32);
	}
	SETARG(kf, 0, r->d);
	SETARG(kf, 1, doff);
	SETARG(kf, 2, r->t->st);
	SETARG(kf, 3, r->s);
	SETARG(kf, 4, soff);
	SETARG(kf, 5, n);
	SETARG(kf, 6, seed);
	if (err == CL_SUCCESS)
		err = launch(r, kf, 1, &one, NULL);
	return err;
}

static cl_int run_sum(struct run *r)
{
	const struct vop *op = r->op;
	cl_kernel k = r->t->k[K_SUM];
	uint64_t pos = 0, piece = CL_FIRST_BYTES;
	cl_ulong doff = op->dst_off;
	cl_int err = CL_SUCCESS;
	size_t one = 1;

	do {
		uint64_t len = min64(op->len - pos, piece), ns = 0;
		cl_ulong off = op->src_off + pos, n = len;
		cl_uint flags = (pos == 0 ? 1u : 0u) | (pos + len == op->len ? 2u : 0u);

		SETARG(k, 0, r->d);
		SETARG(k, 1, doff);
		SETARG(k, 2, r->t->st);
		SETARG(k, 3, r->s);
		SETARG(k, 4, off);
		SETARG(k, 5, n);
		SETARG(k, 6, flags);
		if (err == CL_SUCCESS)
			err = launch(r, k, 1, &one, &ns);
		pos += len;
		piece = next_piece(len ? len : 16, ns, 16);
	} while (pos < op->len && err == CL_SUCCESS);
	return err;
}

/* REDUCE_F32: REDUCE_PARTS slices of whole f32 elements, fixed by len
 * alone (so the result is too), each summed by one work-item, launched
 * in groups; then one work-item adds the partial sums in order. */
static cl_int run_reduce(struct run *r)
{
	const struct vop *op = r->op;
	cl_kernel kp = r->t->k[K_RPART], kf = r->t->k[K_RFINAL];
	cl_ulong per = ((op->len / 4 + REDUCE_PARTS - 1) / REDUCE_PARTS) * 4;
	cl_ulong soff = op->src_off, doff = op->dst_off, n = op->len;
	cl_uint np = REDUCE_PARTS;
	uint64_t g = 0, piece;
	cl_int err = CL_SUCCESS;
	size_t one = 1;

	if (per == 0)
		per = 4;
	piece = CL_FIRST_BYTES / per ? CL_FIRST_BYTES / per : 1;
	while (g < REDUCE_PARTS && err == CL_SUCCESS) {
		uint64_t cnt = min64(REDUCE_PARTS - g, piece), ns = 0;
		cl_uint g0 = (cl_uint)g;
		size_t gws = (size_t)cnt;

		SETARG(kp, 0, r->t->part);
		SETARG(kp, 1, r->s);
		SETARG(kp, 2, soff);
		SETARG(kp, 3, n);
		SETARG(kp, 4, per);
		SETARG(kp, 5, g0);
		if (err == CL_SUCCESS)
			err = launch(r, kp, 1, &gws, &ns);
		g += cnt;
		piece = next_piece(cnt, ns, 1);
	}
	SETARG(kf, 0, r->d);
	SETARG(kf, 1, doff);
	SETARG(kf, 2, r->t->part);
	SETARG(kf, 3, np);
	if (err == CL_SUCCESS)
		err = launch(r, kf, 1, &one, NULL);
	return err;
}

/* SGEMM: blocks of rows of C, one launch each. */
static cl_int run_sgemm(struct run *r)
{
	const struct vop *op = r->op;
	cl_kernel k = r->t->k[K_SGEMM];
	cl_ulong doff = op->dst_off, soff = op->src_off, boff = op->b_off;
	cl_uint m = op->m, nn = op->n, kk = op->k, lda = op->lda, ldb = op->ldb, ldc = op->ldc;
	uint64_t row_macs = (uint64_t)op->n * op->k, rows = CL_FIRST_MACS / row_macs, i0 = 0;
	cl_int err = CL_SUCCESS;

	if (rows == 0)
		rows = 1;
	SETARG(k, 0, r->d);
	SETARG(k, 1, doff);
	SETARG(k, 2, r->s);
	SETARG(k, 3, soff);
	SETARG(k, 4, boff);
	SETARG(k, 5, m);
	SETARG(k, 6, nn);
	SETARG(k, 7, kk);
	SETARG(k, 8, lda);
	SETARG(k, 9, ldb);
	SETARG(k, 10, ldc);
	while (i0 < op->m && err == CL_SUCCESS) {
		uint64_t cnt = min64(op->m - i0, rows), ns = 0;
		cl_uint first_row = (cl_uint)i0;
		size_t gws[2] = { op->n, (size_t)cnt };

		SETARG(k, 11, first_row);
		if (err == CL_SUCCESS)
			err = launch(r, k, 2, gws, &ns);
		i0 += cnt;
		rows = next_piece(cnt, ns, 1);
	}
	return err;
}

/* The op's launches on r->d and r->s. */
static cl_int run_op(struct run *r)
{
	switch (r->op->opcode) {
	case VGPU_OP_COPY:
	case VGPU_OP_FILL:
	case VGPU_OP_SAXPY:
		return run_stream(r);
	case VGPU_OP_CHECKSUM:
		return run_checksum(r);
	case VGPU_OP_SUM_F32:
		return run_sum(r);
	case VGPU_OP_REDUCE_F32:
		return run_reduce(r);
	case VGPU_OP_SGEMM:
		return run_sgemm(r);
	default:
		return CL_INVALID_OPERATION;
	}
}

/* A range of one of the op's buffers: what it reads (in), what it writes
 * (out); a written range it does not overwrite whole (SGEMM's C between
 * its rows, SAXPY's y) is read too. */
struct range {
	bool dst, in, out;
	uint64_t off, len;
};

static unsigned op_ranges(const struct vop *op, struct range r[3])
{
	switch (op->opcode) {
	case VGPU_OP_COPY:
		r[0] = (struct range){ false, true, false, op->src_off, op->len };
		r[1] = (struct range){ true, false, true, op->dst_off, op->len };
		return 2;
	case VGPU_OP_FILL:
		r[0] = (struct range){ true, false, true, op->dst_off, op->len };
		return 1;
	case VGPU_OP_SAXPY:
		r[0] = (struct range){ false, true, false, op->src_off, op->len };
		r[1] = (struct range){ true, true, true, op->dst_off, op->len };
		return 2;
	case VGPU_OP_CHECKSUM:
	case VGPU_OP_SUM_F32:
	case VGPU_OP_REDUCE_F32:
		r[0] = (struct range){ false, true, false, op->src_off, op->len };
		r[1] = (struct range){ true, false, true, op->dst_off, 8 };
		return 2;
	case VGPU_OP_SGEMM:
		r[0] = (struct range){ false, true, false, op->src_off,
				       vgpu_mat_bytes(op->m, op->k, op->lda) };
		r[1] = (struct range){ false, true, false, op->b_off,
				       vgpu_mat_bytes(op->k, op->n, op->ldb) };
		r[2] = (struct range){ true, true, true, op->dst_off, op->len };
		return 3;
	default:
		return 0;
	}
}

/* Host to device: the buffer's region from its own host pointer. */
static cl_int copy_in(struct cl_thread *t, cl_mem m, const uint8_t *host, uint64_t off,
		      uint64_t len)
{
	cl_int err = clEnqueueWriteBuffer(t->q, m, CL_TRUE, (size_t)off, (size_t)len, host + off,
					  0, NULL, NULL);

	if (err == CL_SUCCESS)
		STAT_ADD(cl_copied_bytes, len);
	return err;
}

/* Device to host: a map for reading leaves the latest bits in host_ptr. */
static cl_int copy_out(struct cl_thread *t, cl_mem m, uint64_t off, uint64_t len)
{
	cl_int err;
	void *p = clEnqueueMapBuffer(t->q, m, CL_TRUE, CL_MAP_READ, (size_t)off, (size_t)len,
				     0, NULL, NULL, &err);

	if (!p)
		return err != CL_SUCCESS ? err : CL_INVALID_VALUE;
	err = clEnqueueUnmapMemObject(t->q, m, p, 0, NULL, NULL);
	if (err == CL_SUCCESS)
		err = clFinish(t->q);
	if (err == CL_SUCCESS)
		STAT_ADD(cl_copied_bytes, len);
	return err;
}

/* A device that failed the gate: copy in, launch, copy out, with the
 * buffers to itself (each lock taken in address order). */
static cl_int run_copying(struct run *r, struct cl_win *dw, struct cl_win *sw)
{
	const struct vop *op = r->op;
	struct cl_win *lo = dw, *hi = sw && sw != dw ? sw : NULL;
	struct range rg[3];
	unsigned n = op_ranges(op, rg);
	cl_int err = CL_SUCCESS;

	if (hi && (uintptr_t)hi < (uintptr_t)lo) {
		lo = hi;
		hi = dw;
	}
	pthread_mutex_lock(&lo->lock);
	if (hi)
		pthread_mutex_lock(&hi->lock);
	for (unsigned i = 0; i < n && err == CL_SUCCESS; i++)
		if (rg[i].in && rg[i].len)
			err = copy_in(r->t, rg[i].dst ? r->d : r->s,
				      res_window_base(rg[i].dst ? op->dst : op->src), rg[i].off,
				      rg[i].len);
	if (err == CL_SUCCESS)
		err = run_op(r);
	for (unsigned i = 0; i < n && err == CL_SUCCESS; i++)
		if (rg[i].out && rg[i].len)
			err = copy_out(r->t, r->d, rg[i].off, rg[i].len);
	if (hi)
		pthread_mutex_unlock(&hi->lock);
	pthread_mutex_unlock(&lo->lock);
	return err;
}

static uint32_t run_result(struct run *r, cl_int err)
{
	if (err == CL_STOPPED)
		return r->stop;
	if (err != CL_SUCCESS) {
		STAT_ADD(cl_errors, 1);
		hlog("OpenCL: op %u failed: error %d", r->op->opcode, (int)err);
		return VGPU_COMPUTE_E_DEVICE;
	}
	return VGPU_COMPUTE_OK;
}

static uint32_t cl_run(struct engine_backend *b, const struct guest_mem *gm, const struct vop *op)
{
	struct cl_backend *cb = (struct cl_backend *)b;
	struct run r = { .op = op };
	struct cl_win *dw = NULL, *sw = NULL;
	cl_int err = CL_SUCCESS;

	(void)gm;
	/* Checked in validation; the windows cannot go away while the
	 * submit runs: the op holds its backings, and the memory table
	 * changes only while no submit is queued or running. */
	if (!res_window_base(op->dst) || (op->src && !res_window_base(op->src)))
		return VGPU_COMPUTE_E_NOWINDOW;
	r.t = thread_state(cb, &err);
	if (r.t)
		dw = win_buffer(cb, op->dst, &err);
	if (dw && op->src)
		sw = op->src == op->dst ? dw : win_buffer(cb, op->src, &err);
	if (dw && (sw || !op->src)) {
		r.d = dw->m;
		r.s = sw ? sw->m : NULL;
		err = cb->b.zero_copy ? run_op(&r) : run_copying(&r, dw, sw);
	}
	return run_result(&r, err);
}

/*
 * For the benchmark only: the path a VMM without userptr takes. The
 * runtime allocates its own buffers; the inputs are written in from the
 * windows (clEnqueueWriteBuffer), the op runs, and what it wrote is read
 * back (clEnqueueReadBuffer). Not counted in cl_copied_bytes, which is
 * about the ops of the device.
 */
uint32_t engine_opencl_run_copied(struct engine_backend *b, const struct vop *op)
{
	struct cl_backend *cb = (struct cl_backend *)b;
	struct run r = { .op = op };
	cl_int err = CL_SUCCESS;
	cl_mem d = NULL, s = NULL;
	uint64_t wlen = op->opcode == VGPU_OP_CHECKSUM || op->opcode == VGPU_OP_SUM_F32 ||
			op->opcode == VGPU_OP_REDUCE_F32 ? 8 : op->len;
	uint8_t *dw = res_window_base(op->dst), *sw = op->src ? res_window_base(op->src) : NULL;

	if (!dw || (op->src && !sw))
		return VGPU_COMPUTE_E_NOWINDOW;
	r.t = thread_state(cb, &err);
	if (!r.t)
		return run_result(&r, err);
	d = clCreateBuffer(cb->ctx, CL_MEM_READ_WRITE, (size_t)op->dst->size, NULL, &err);
	if (d && op->src)
		s = op->src == op->dst ? (clRetainMemObject(d), d)
				       : clCreateBuffer(cb->ctx, CL_MEM_READ_WRITE,
							(size_t)op->src->size, NULL, &err);
	if (d && (!op->src || s)) {
		/* In: the source range, and the destination when the op reads it. */
		if (op->src && op->src != op->dst) {
			uint64_t off = op->opcode == VGPU_OP_SGEMM ? 0 : op->src_off;
			uint64_t len = op->opcode == VGPU_OP_SGEMM ? op->src->size : op->len;

			err = clEnqueueWriteBuffer(r.t->q, s, CL_FALSE, (size_t)off, (size_t)len,
						   sw + off, 0, NULL, NULL);
		}
		if (err == CL_SUCCESS && (op->opcode == VGPU_OP_SAXPY || op->src == op->dst))
			err = clEnqueueWriteBuffer(r.t->q, d, CL_FALSE, 0, (size_t)op->dst->size, dw,
						   0, NULL, NULL);
		r.d = d;
		r.s = s;
		if (err == CL_SUCCESS)
			err = run_op(&r);
		if (err == CL_SUCCESS && wlen)
			err = clEnqueueReadBuffer(r.t->q, d, CL_TRUE, (size_t)op->dst_off,
						  (size_t)wlen, dw + op->dst_off, 0, NULL, NULL);
	}
	if (s)
		clReleaseMemObject(s);
	if (d)
		clReleaseMemObject(d);
	return run_result(&r, err);
}

/*
 * The zero-copy gate, once at start: a memfd of three pages mapped as a
 * resource's window is (win_map_file: two runs in reverse file order, as
 * for a resource whose entries are not in file order), a buffer of a size
 * that ends mid-page over it as over a resource, and a second, plain
 * mapping of the file to look from the side. Checks, in order:
 *   1. CL_DEVICE_HOST_UNIFIED_MEMORY, where the device reports it;
 *   2. a FILL kernel's stores across both runs are in the file after
 *      clFinish, with no map of the buffer ever made;
 *   3. bytes stored through the side mapping after the buffer was made
 *      (and after a kernel used it) are what a COPY kernel reads.
 * NULL when all pass; else which failed. VIRTGPU_HOSTD_CL_GATE=fail in
 * the environment makes it fail, to test the copying path on a device
 * that does not copy.
 */
#define GATE_FILL 0x5a3c96e1u

static const char *zero_copy_gate(struct cl_backend *cb, struct cl_thread *t)
{
	const char *forced = getenv("VIRTGPU_HOSTD_CL_GATE");
	long pgl = sysconf(_SC_PAGESIZE);
	uint64_t pg = pgl > 0 ? (uint64_t)pgl : 4096u, span = 0;
	const struct win_run runs[2] = { { 2 * pg, pg }, { 0, 2 * pg } };
	const char *why = NULL;
	cl_ulong doff = pg - 64, fill_n = pg + 128, soff = 16, coff = 2 * pg + 128, copy_n = 256;
	cl_uint v = GATE_FILL;
	uint8_t *side = MAP_FAILED, *win = NULL;
	cl_bool unified = CL_TRUE;
	cl_mem m = NULL;
	cl_int err = CL_SUCCESS;
	size_t gws;
	int fd;

	if (forced && strcmp(forced, "fail") == 0)
		return "made to fail (VIRTGPU_HOSTD_CL_GATE=fail)";
	if (clGetDeviceInfo(cb->dev, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof(unified), &unified,
			    NULL) == CL_SUCCESS && !unified)
		return "the device does not share host memory (CL_DEVICE_HOST_UNIFIED_MEMORY)";
	fd = memfd_create("virtgpu-hostd-cl-gate", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)(3 * pg)))
		why = "could not make its memory file";
	if (!why)
		side = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (!why && side != MAP_FAILED)
		win = win_map_file(fd, runs, 2, &span);
	if (!why && !win)
		why = "could not map its window";
	if (!why) {
		memset(side, 0x11, 3 * pg);
		m = clCreateBuffer(cb->ctx, CL_MEM_USE_HOST_PTR | CL_MEM_READ_WRITE,
				   (size_t)(3 * pg - 52), win, &err);
		if (!m)
			why = "could not make a buffer over its window";
	}
	if (!why) {
		/* 2: window [pg - 64, 2 pg + 64) is file [3 pg - 64, 3 pg)
		 * and [0, pg + 64). */
		cl_kernel k = t->k[K_FILL];

		SETARG(k, 0, m);
		SETARG(k, 1, doff);
		SETARG(k, 2, v);
		SETARG(k, 3, fill_n);
		gws = (size_t)((fill_n + 15) / 16);
		if (err == CL_SUCCESS)
			err = clEnqueueNDRangeKernel(t->q, k, 1, NULL, &gws, NULL, 0, NULL, NULL);
		if (err == CL_SUCCESS)
			err = clFinish(t->q);
		for (uint64_t i = 0; err == CL_SUCCESS && !why && i < fill_n; i++) {
			uint64_t w = doff + i, f = w < pg ? 2 * pg + w : w - pg;

			if (side[f] != (uint8_t)(GATE_FILL >> (8 * (i % 4))))
				why = "a kernel's stores are not in the memory file without a map";
		}
		if (err == CL_SUCCESS && !why && (side[3 * pg - 65] != 0x11 || side[pg + 64] != 0x11))
			why = "a kernel stored outside its range";
	}
	if (!why && err == CL_SUCCESS) {
		/* 3: the side mapping stores at window [16, +256) (file
		 * 2 pg + 16), a kernel copies that to window 2 pg + 128
		 * (file pg + 128). */
		cl_kernel k = t->k[K_COPY];

		for (uint64_t i = 0; i < copy_n; i++)
			side[2 * pg + soff + i] = (uint8_t)(i * 37 + 5);
		SETARG(k, 0, m);
		SETARG(k, 1, coff);
		SETARG(k, 2, m);
		SETARG(k, 3, soff);
		SETARG(k, 4, copy_n);
		gws = (size_t)((copy_n + 15) / 16);
		if (err == CL_SUCCESS)
			err = clEnqueueNDRangeKernel(t->q, k, 1, NULL, &gws, NULL, 0, NULL, NULL);
		if (err == CL_SUCCESS)
			err = clFinish(t->q);
		if (err == CL_SUCCESS && memcmp(side + pg + 128, side + 2 * pg + soff, copy_n))
			why = "a host store made after the buffer was made does not reach a kernel";
	}
	if (!why && err != CL_SUCCESS)
		why = "its kernels failed";
	if (m)
		clReleaseMemObject(m);
	win_unmap_file(win, span);
	if (side != MAP_FAILED)
		munmap(side, 3 * pg);
	if (fd >= 0)
		close(fd);
	return why;
}

static void cl_destroy(struct engine_backend *b)
{
	struct cl_backend *cb = (struct cl_backend *)b;

	/* No op runs any more: every thread's state goes now; a thread that
	 * exits later finds none of this backend's on its list. Buffers still
	 * over windows keep the context alive until the windows release them. */
	pthread_mutex_lock(&threads_lock);
	while (cb->threads) {
		struct cl_thread *t = cb->threads;

		thread_unlink(t);
		thread_free(t);
	}
	pthread_mutex_unlock(&threads_lock);
	if (cb->prog)
		clReleaseProgram(cb->prog);
	if (cb->ctx)
		clReleaseContext(cb->ctx);
	pthread_mutex_destroy(&cb->win_lock);
	free(cb);
}

/* The first GPU of any platform, else the first device of any kind. */
static int pick_device(struct cl_backend *cb)
{
	cl_platform_id plats[16];
	cl_uint np = 0;

	if (clGetPlatformIDs(16, plats, &np) != CL_SUCCESS || np == 0)
		return -1;
	if (np > 16)
		np = 16;
	for (int pass = 0; pass < 2; pass++) {
		for (cl_uint i = 0; i < np; i++) {
			cl_device_id dev;
			cl_uint nd = 0;

			if (clGetDeviceIDs(plats[i], pass ? CL_DEVICE_TYPE_ALL : CL_DEVICE_TYPE_GPU,
					   1, &dev, &nd) == CL_SUCCESS && nd) {
				cb->plat = plats[i];
				cb->dev = dev;
				return 0;
			}
		}
	}
	return -1;
}

struct engine_backend *engine_opencl_new(void)
{
	struct cl_backend *cb = calloc(1, sizeof(*cb));
	char pname[256] = "", dname[256] = "", dver[256] = "", ext[8192] = "";
	struct cl_thread *gate_thread;
	const char *why;
	cl_uint units = 1;
	cl_int err;
	const char *opts;

	if (!cb)
		return NULL;
	pthread_mutex_init(&cb->win_lock, NULL);
	cb->serial = atomic_fetch_add(&serials, 1) + 1;
	if (pick_device(cb)) {
		hlog("OpenCL: no platform with a device");
		goto fail;
	}
	clGetPlatformInfo(cb->plat, CL_PLATFORM_NAME, sizeof(pname) - 1, pname, NULL);
	clGetDeviceInfo(cb->dev, CL_DEVICE_NAME, sizeof(dname) - 1, dname, NULL);
	clGetDeviceInfo(cb->dev, CL_DEVICE_VERSION, sizeof(dver) - 1, dver, NULL);
	clGetDeviceInfo(cb->dev, CL_DEVICE_EXTENSIONS, sizeof(ext) - 1, ext, NULL);
	clGetDeviceInfo(cb->dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof(units), &units, NULL);
	cb->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
	hlog("OpenCL: platform \"%s\", device \"%s\" (%s, %u compute units%s)", pname, dname,
	     dver, units, cb->fp64 ? ", fp64" : ", no fp64: SUM_F32 and REDUCE_F32 refused");
	cb->ctx = clCreateContext(NULL, 1, &cb->dev, NULL, NULL, &err);
	if (!cb->ctx)
		goto cl_fail;
	{
		const char *srcs[1] = { kernel_src };

		cb->prog = clCreateProgramWithSource(cb->ctx, 1, srcs, NULL, &err);
	}
	if (!cb->prog)
		goto cl_fail;
	opts = cb->fp64 ? "-DHAVE_FP64 -cl-std=CL1.2" : "-cl-std=CL1.2";
	err = clBuildProgram(cb->prog, 1, &cb->dev, opts, NULL, NULL);
	if (err != CL_SUCCESS) {
		char log[2048] = "";

		clGetProgramBuildInfo(cb->prog, cb->dev, CL_PROGRAM_BUILD_LOG, sizeof(log) - 1,
				      log, NULL);
		hlog("OpenCL: building the kernels failed (%d): %s", (int)err, log);
		goto fail;
	}
	/* A thread's state of its own (kernels, queue) for the gate; that it
	 * can be made is what every ring thread's first op will need. */
	gate_thread = thread_new(cb, &err);
	if (!gate_thread)
		goto cl_fail;
	why = zero_copy_gate(cb, gate_thread);
	thread_free(gate_thread);
	cb->b.zero_copy = why == NULL;
	STAT_SET(cl_zero_copy, why ? HOSTD_CL_COPYING : HOSTD_CL_ZERO_COPY);
	if (why)
		hlog("OpenCL: zero-copy gate failed: %s; the device is treated as copying: each "
		     "op copies what it reads in and what it writes out (cl_copied_bytes)", why);
	else
		hlog("OpenCL: zero-copy gate passed: host-unified memory, a kernel's stores reach "
		     "the memory file and host stores reach a kernel, with no map");
	cb->b.name = "opencl";
	cb->b.id = VGPU_BACKEND_OPENCL;
	cb->b.num_threads = units;
	cb->b.check = cl_check;
	cb->b.run = cl_run;
	cb->b.destroy = cl_destroy;
	return &cb->b;
cl_fail:
	hlog("OpenCL: setup failed: error %d", (int)err);
fail:
	cl_destroy(&cb->b);
	return NULL;
}
