/* SPDX-License-Identifier: MIT */
/* batch.c - building, submitting and waiting for compute command streams. */
#include "vgpu_private.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VGPU_DEFAULT_TIMEOUT_MS 60000
#define VGPU_STATUS_PENDING 0xffffffffu

struct vgpu_batch {
	struct vgpu_device *dev;
	unsigned int num_ops;
	unsigned int max_ops;
	int timeout_ms;
	struct vgpu_compute_op *ops;   /* host byte order until submit */
	struct vgpu_buffer **dst;      /* per op */
	struct vgpu_buffer **src;      /* per op */
	uint8_t *cmd;                  /* header + ops, little-endian */
	uint32_t *handles;             /* bo handles of a submit */
	struct vgpu_buffer **bufs;     /* distinct buffers of a submit */
};

/* A copy-path range to copy back when the fence retires. */
struct copyback {
	struct vgpu_buffer *buf;
	uint64_t off, len;
	uint32_t op;
};

struct vgpu_fence {
	struct vgpu_device *dev;
	struct vgpu_fence *prev, *next; /* dev->pending while unretired */
	unsigned int refs;              /* the caller's + the pending list's */
	bool retired;
	bool user_gone;                 /* vgpu_fence_destroy() was called */
	int fd;                         /* sync_file of the submit */
	uint32_t slot;                  /* status record index */
	uint32_t ring;
	uint32_t num_ops;
	int err;                        /* result once retired */
	struct vgpu_submit_result res;  /* once retired */
	unsigned int nbufs;             /* buffers referenced until retired */
	struct vgpu_buffer **bufs;
	unsigned int ncb;
	struct copyback *cb;
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
		return -ENOMEM;
	b->dev = dev;
	b->max_ops = n;
	b->timeout_ms = VGPU_DEFAULT_TIMEOUT_MS;
	b->ops = calloc(n, sizeof(*b->ops));
	b->dst = calloc(n, sizeof(*b->dst));
	b->src = calloc(n, sizeof(*b->src));
	b->cmd = calloc(1, sizeof(struct vgpu_compute_submit) + n * sizeof(struct vgpu_compute_op));
	b->handles = calloc(2 * (size_t)n + 1, sizeof(*b->handles));
	b->bufs = calloc(2 * (size_t)n, sizeof(*b->bufs));
	if (!b->ops || !b->dst || !b->src || !b->cmd || !b->handles || !b->bufs) {
		vgpu_batch_destroy(b);
		return -ENOMEM;
	}
	*out = b;
	return 0;
}

VGPU_EXPORT void vgpu_batch_destroy(struct vgpu_batch *b)
{
	if (!b)
		return;
	free(b->ops);
	free(b->dst);
	free(b->src);
	free(b->cmd);
	free(b->handles);
	free(b->bufs);
	free(b);
}

VGPU_EXPORT void vgpu_batch_reset(struct vgpu_batch *b)
{
	if (b)
		b->num_ops = 0;
}

VGPU_EXPORT unsigned int vgpu_batch_num_ops(const struct vgpu_batch *b)
{
	return b ? b->num_ops : 0;
}

VGPU_EXPORT void vgpu_batch_set_timeout(struct vgpu_batch *b, int timeout_ms)
{
	if (b)
		b->timeout_ms = timeout_ms > 0 ? timeout_ms : VGPU_DEFAULT_TIMEOUT_MS;
}

/* Bytes an op reads from src / writes into dst. */
static uint64_t op_src_len(const struct vgpu_compute_op *op)
{
	switch (op->opcode) {
	case VGPU_OP_COPY:
	case VGPU_OP_CHECKSUM:
	case VGPU_OP_SAXPY:
	case VGPU_OP_SUM_F32:
		return op->len;
	default:
		return 0;
	}
}

static uint64_t op_dst_len(const struct vgpu_compute_op *op)
{
	switch (op->opcode) {
	case VGPU_OP_COPY:
	case VGPU_OP_FILL:
	case VGPU_OP_SAXPY:
		return op->len;
	case VGPU_OP_CHECKSUM:
	case VGPU_OP_SUM_F32:
		return 8;
	default:
		return 0;
	}
}

static int add_op(struct vgpu_batch *b, const struct vgpu_compute_op *op,
		  struct vgpu_buffer *dst, struct vgpu_buffer *src)
{
	if (b->num_ops >= b->max_ops)
		return vgpu_fail(-E2BIG, "batch full: the device takes at most %u ops a submit",
				 b->max_ops);
	b->ops[b->num_ops] = *op;
	b->ops[b->num_ops].dst_res = dst ? dst->res_id : 0;
	b->ops[b->num_ops].src_res = src ? src->res_id : 0;
	b->dst[b->num_ops] = dst;
	b->src[b->num_ops] = src;
	b->num_ops++;
	return 0;
}

static bool in_range(const struct vgpu_buffer *buf, uint64_t off, uint64_t len)
{
	return off <= buf->size && len <= buf->size - off;
}

static bool overlap(uint64_t a, uint64_t b, uint64_t len)
{
	return len && a < b + len && b < a + len;
}

/* The checks the typed ops share. */
static const char *op_name(uint32_t opcode)
{
	static const char *const names[] = { "nop", "copy", "fill", "checksum", "saxpy",
					     "sum_f32" };

	return opcode < sizeof(names) / sizeof(names[0]) ? names[opcode] : "raw";
}

static int check_op(struct vgpu_batch *b, const struct vgpu_compute_op *op,
		    struct vgpu_buffer *dst, struct vgpu_buffer *src)
{
	uint64_t dlen = op_dst_len(op), slen = op_src_len(op);
	const char *n = op_name(op->opcode);

	if (!b || !dst)
		return vgpu_fail(-EINVAL, "vgpu_batch_%s: batch or dst is NULL", n);
	if (dst->dev != b->dev)
		return vgpu_fail(-EINVAL, "vgpu_batch_%s: dst belongs to another device", n);
	if (slen && !src)
		return vgpu_fail(-EINVAL, "vgpu_batch_%s: src is NULL", n);
	if (slen && src->dev != b->dev)
		return vgpu_fail(-EINVAL, "vgpu_batch_%s: src belongs to another device", n);
	if (op->len == 0)
		return vgpu_fail(-EINVAL, "vgpu_batch_%s: len is 0", n);
	if (op->len > b->dev->info.caps.max_op_bytes)
		return vgpu_fail(-ERANGE, "vgpu_batch_%s: len %llu is over the device's "
				 "max_op_bytes %llu", n, (unsigned long long)op->len,
				 (unsigned long long)b->dev->info.caps.max_op_bytes);
	if (!in_range(dst, op->dst_off, dlen))
		return vgpu_fail(-ERANGE, "vgpu_batch_%s: dst [%llu, +%llu) is outside the "
				 "buffer's %zu bytes", n, (unsigned long long)op->dst_off,
				 (unsigned long long)dlen, dst->size);
	if (slen && !in_range(src, op->src_off, slen))
		return vgpu_fail(-ERANGE, "vgpu_batch_%s: src [%llu, +%llu) is outside the "
				 "buffer's %zu bytes", n, (unsigned long long)op->src_off,
				 (unsigned long long)slen, src->size);
	if (dst->read_only)
		return vgpu_fail(-EACCES, "vgpu_batch_%s: dst is a read-only buffer", n);
	if ((op->opcode == VGPU_OP_FILL || op->opcode == VGPU_OP_SAXPY ||
	     op->opcode == VGPU_OP_SUM_F32) && op->len % 4)
		return vgpu_fail(-EINVAL, "vgpu_batch_%s: len %llu is not a multiple of 4 "
				 "(the op works on 32-bit words)", n,
				 (unsigned long long)op->len);
	if (op->opcode == VGPU_OP_COPY && src == dst &&
	    overlap(op->src_off, op->dst_off, op->len))
		return vgpu_fail(-EINVAL, "vgpu_batch_copy: source and destination ranges "
				 "overlap in one buffer");
	if (op->opcode == VGPU_OP_SAXPY && src == dst && op->src_off != op->dst_off &&
	    overlap(op->src_off, op->dst_off, op->len))
		return vgpu_fail(-EINVAL, "vgpu_batch_saxpy: x and y overlap in one buffer "
				 "without being the same range");
	if (b->num_ops >= b->max_ops)
		return vgpu_fail(-E2BIG, "vgpu_batch_%s: batch full (the device takes at most "
				 "%u ops a submit)", n, b->max_ops);
	return 0;
}

static int typed_op(struct vgpu_batch *b, uint32_t opcode, struct vgpu_buffer *dst,
		    uint64_t dst_off, struct vgpu_buffer *src, uint64_t src_off,
		    uint64_t len, uint64_t arg0)
{
	struct vgpu_compute_op op = {
		.opcode = opcode,
		.dst_off = dst_off,
		.src_off = src_off,
		.len = len,
		.arg0 = arg0,
	};
	int err = check_op(b, &op, dst, src);

	if (err)
		return err;
	return add_op(b, &op, dst, src);
}

VGPU_EXPORT int vgpu_batch_copy(struct vgpu_batch *b, struct vgpu_buffer *dst, uint64_t dst_off,
				struct vgpu_buffer *src, uint64_t src_off, uint64_t len)
{
	return typed_op(b, VGPU_OP_COPY, dst, dst_off, src, src_off, len, 0);
}

VGPU_EXPORT int vgpu_batch_fill(struct vgpu_batch *b, struct vgpu_buffer *dst, uint64_t dst_off,
				uint64_t len, uint32_t value)
{
	return typed_op(b, VGPU_OP_FILL, dst, dst_off, NULL, 0, len, value);
}

VGPU_EXPORT int vgpu_batch_checksum(struct vgpu_batch *b, struct vgpu_buffer *dst,
				    uint64_t dst_off, struct vgpu_buffer *src,
				    uint64_t src_off, uint64_t len, uint64_t seed)
{
	return typed_op(b, VGPU_OP_CHECKSUM, dst, dst_off, src, src_off, len, seed);
}

VGPU_EXPORT int vgpu_batch_saxpy(struct vgpu_batch *b, struct vgpu_buffer *y, uint64_t y_off,
				 struct vgpu_buffer *x, uint64_t x_off, uint64_t len, float a)
{
	uint32_t bits;

	memcpy(&bits, &a, sizeof(bits));
	return typed_op(b, VGPU_OP_SAXPY, y, y_off, x, x_off, len, bits);
}

VGPU_EXPORT int vgpu_batch_sum_f32(struct vgpu_batch *b, struct vgpu_buffer *dst,
				   uint64_t dst_off, struct vgpu_buffer *src,
				   uint64_t src_off, uint64_t len)
{
	return typed_op(b, VGPU_OP_SUM_F32, dst, dst_off, src, src_off, len, 0);
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

static bool on_copy_path(const struct vgpu_buffer *buf)
{
	return buf && buf->user && !buf->userptr;
}

/* Copy [off, off + len) between caller memory and the blob, clamped to the
 * buffer (raw ops may name anything; the device refuses what is out of
 * range, and then nothing of it is copied back). */
static void copy_range(struct vgpu_buffer *buf, uint64_t off, uint64_t len, bool to_blob)
{
	uint8_t *user = buf->user, *blob = (uint8_t *)buf->map + buf->page_off;

	if (off >= buf->size || len == 0)
		return;
	if (len > buf->size - off)
		len = buf->size - off;
	if (to_blob)
		memcpy(blob + off, user + off, len);
	else
		memcpy(user + off, blob + off, len);
}

/* The distinct buffers of the batch into b->bufs; returns their number. */
static unsigned int collect_buffers(struct vgpu_batch *b)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < b->num_ops; i++) {
		struct vgpu_buffer *bufs[2] = { b->dst[i], b->src[i] };

		for (int k = 0; k < 2; k++) {
			unsigned int j;

			if (!bufs[k])
				continue;
			for (j = 0; j < n && b->bufs[j] != bufs[k]; j++)
				;
			if (j == n)
				b->bufs[n++] = bufs[k];
		}
	}
	return n;
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
		struct vgpu_compute_op le = {
			.opcode = htole32(o->opcode),
			.flags = htole32(o->flags),
			.dst_res = htole32(o->dst_res),
			.src_res = htole32(o->src_res),
			.dst_off = htole64(dev_off(b->dst[i], o->dst_off)),
			.src_off = htole64(dev_off(b->src[i], o->src_off)),
			.len = htole64(o->len),
			.arg0 = htole64(o->arg0),
			.arg1 = htole64(o->arg1),
			.reserved = htole64(o->reserved),
		};

		memcpy(p, &le, sizeof(le));
		p += sizeof(le);
	}
	return (size_t)(p - b->cmd);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Poll a sync_file: 1 signalled, 0 not within timeout_ms (< 0: for ever),
 * negative errno on error. */
static int poll_fd(int fd, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? 0 : now_ms() + timeout_ms;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = timeout_ms < 0 ? -1 : deadline - now_ms();
		int r;

		if (timeout_ms >= 0 && left < 0)
			left = 0;
		r = poll(&pfd, 1, (int)left);
		if (r > 0)
			return (pfd.revents & POLLNVAL) ? -EBADF : 1;
		if (r == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

static struct vgpu_compute_status *slot_ptr(struct vgpu_device *dev, uint32_t slot)
{
	return (struct vgpu_compute_status *)dev->status_map + slot;
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
	return -EBUSY;
}

static void slot_free(struct vgpu_device *dev, uint32_t slot)
{
	dev->slot_map[slot / 64] &= ~(1ull << (slot % 64));
}

static void fence_unref_locked(struct vgpu_fence *f)
{
	if (--f->refs)
		return;
	if (f->fd >= 0)
		close(f->fd);
	free(f->bufs);
	free(f->cb);
	free(f);
}

static void pending_unlink(struct vgpu_device *dev, struct vgpu_fence *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else
		dev->pending = f->next;
	if (f->next)
		f->next->prev = f->prev;
	else
		dev->pending_tail = f->prev;
	f->prev = f->next = NULL;
}

/* Release what the submit held (dev->lock held). */
static void fence_release_locked(struct vgpu_fence *f)
{
	for (unsigned int i = 0; i < f->nbufs; i++) {
		if (on_copy_path(f->bufs[i]))
			f->bufs[i]->copy_users--;
		vgpu_buffer_unref_locked(f->bufs[i]);
	}
	f->nbufs = 0;
	slot_free(f->dev, f->slot);
}

/*
 * Retire a fence whose submit completed (dev->lock held): read its status
 * record, copy back what the executed ops wrote, release its slot and
 * buffers. executed false: the device never answered (close after a
 * device that hangs): nothing is copied back.
 */
static void retire_locked(struct vgpu_fence *f, bool executed)
{
	struct vgpu_device *dev = f->dev;
	struct vgpu_compute_status *st = slot_ptr(dev, f->slot);
	uint32_t result;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	result = le32toh(__atomic_load_n(&st->result, __ATOMIC_RELAXED));
	memset(&f->res, 0, sizeof(f->res));
	f->res.struct_size = sizeof(f->res);
	f->res.num_ops = f->num_ops;
	f->res.ring = f->ring;
	f->res.device_result = VGPU_RESULT_NOT_EXECUTED;
	if (!executed) {
		f->err = vgpu_fail(-ETIMEDOUT, "the submit did not complete before vgpu_close()");
	} else if (result == VGPU_STATUS_PENDING) {
		f->err = -EIO;
	} else {
		f->res.device_result = result;
		f->res.op_index = le32toh(__atomic_load_n(&st->op_index, __ATOMIC_RELAXED));
		f->res.ops_done = le64toh(__atomic_load_n(&st->ops_done, __ATOMIC_RELAXED));
		f->err = vgpu_result_to_errno(result);
		for (unsigned int i = 0; i < f->ncb; i++)
			if (f->cb[i].op < f->res.ops_done)
				copy_range(f->cb[i].buf, f->cb[i].off, f->cb[i].len, false);
	}
	fence_release_locked(f);
	pending_unlink(dev, f);
	f->retired = true;
	pthread_cond_broadcast(&dev->retired_cv);
	fence_unref_locked(f); /* the pending list's reference */
}

/*
 * The device writes a submit's status record after its last op and before
 * it answers: a record that is no longer PENDING means the work is done,
 * and the fence may retire without a system call (the kernel signals the
 * sync_file a little later, when the answer arrives).
 */
static bool status_written(struct vgpu_fence *f)
{
	struct vgpu_compute_status *st = slot_ptr(f->dev, f->slot);

	return le32toh(__atomic_load_n(&st->result, __ATOMIC_ACQUIRE)) != VGPU_STATUS_PENDING;
}

/* Retire every pending fence already signalled (dev->lock held); one
 * poll() for all of them. */
static void reap_locked(struct vgpu_device *dev)
{
	struct pollfd pfd[VGPU_STATUS_SLOTS];
	struct vgpu_fence *fs[VGPU_STATUS_SLOTS];
	unsigned int n = 0;

	for (struct vgpu_fence *f = dev->pending; f && n < VGPU_STATUS_SLOTS; f = f->next) {
		pfd[n].fd = f->fd;
		pfd[n].events = POLLIN;
		fs[n++] = f;
	}
	if (n == 0 || poll(pfd, n, 0) <= 0)
		return;
	for (unsigned int i = 0; i < n; i++)
		if (pfd[i].revents & POLLIN)
			retire_locked(fs[i], true);
}

/* Wait (dev->lock held, dropped while waiting) for f and retire it.
 * Returns 0, -ETIMEDOUT or a poll error. */
static int wait_retire_locked(struct vgpu_fence *f, int timeout_ms)
{
	struct vgpu_device *dev = f->dev;
	int r;

	if (f->retired)
		return 0;
	f->refs++;
	pthread_mutex_unlock(&dev->lock);
	r = poll_fd(f->fd, timeout_ms);
	pthread_mutex_lock(&dev->lock);
	if (r > 0 && !f->retired)
		retire_locked(f, true);
	fence_unref_locked(f);
	return r > 0 ? 0 : r == 0 ? -ETIMEDOUT : r;
}

/* The oldest unretired fence that uses buf, or NULL. */
static struct vgpu_fence *pending_user(struct vgpu_device *dev, const struct vgpu_buffer *buf)
{
	for (struct vgpu_fence *f = dev->pending; f; f = f->next)
		for (unsigned int i = 0; i < f->nbufs; i++)
			if (f->bufs[i] == buf)
				return f;
	return NULL;
}

void vgpu_retire_all(struct vgpu_device *dev)
{
	pthread_mutex_lock(&dev->lock);
	while (dev->pending) {
		struct vgpu_fence *f = dev->pending;

		if (wait_retire_locked(f, VGPU_DEFAULT_TIMEOUT_MS) && !f->retired)
			retire_locked(f, false);
	}
	pthread_mutex_unlock(&dev->lock);
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

/* Build the fence's buffer list and copy-back list (no lock needed: the
 * buffers are the caller's, alive while the batch names them). */
static int fence_prepare(struct vgpu_batch *b, struct vgpu_fence *f, unsigned int nbufs)
{
	f->bufs = calloc(nbufs ? nbufs : 1, sizeof(*f->bufs));
	f->cb = calloc(b->num_ops, sizeof(*f->cb));
	if (!f->bufs || !f->cb)
		return -ENOMEM;
	for (unsigned int i = 0; i < b->num_ops; i++) {
		struct vgpu_buffer *d = b->dst[i];

		if (on_copy_path(d) && !d->read_only && op_dst_len(&b->ops[i]))
			f->cb[f->ncb++] = (struct copyback){
				.buf = d, .off = b->ops[i].dst_off,
				.len = op_dst_len(&b->ops[i]), .op = i };
	}
	return 0;
}

VGPU_EXPORT int vgpu_batch_submit_async(struct vgpu_batch *b, const struct vgpu_submit_info *info,
					struct vgpu_fence **out)
{
	struct drm_virtgpu_execbuffer_syncobj ins[64], outs[64];
	struct drm_virtgpu_execbuffer eb;
	struct vgpu_device *dev;
	struct vgpu_fence *f;
	unsigned int nbufs;
	uint32_t slot;
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
	/* The device cannot refuse writes into blobs that are read-only only
	 * to the library: check here, before anything is copied. */
	for (unsigned int i = 0; i < b->num_ops; i++) {
		const struct vgpu_buffer *d = b->dst[i];

		if (d && d->read_only && !d->userptr && op_dst_len(&b->ops[i]))
			return vgpu_fail(-EACCES, "vgpu_batch_submit_async: op %u writes into "
					 "a read-only buffer", i);
	}

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->dev = dev;
	f->fd = -1;
	f->refs = 1;
	f->num_ops = b->num_ops;
	f->ring = info ? info->ring : 0;
	nbufs = collect_buffers(b);
	err = fence_prepare(b, f, nbufs);
	if (err) {
		fence_unref_locked(f);
		return err;
	}

	pthread_mutex_lock(&dev->lock);
	/* Copy-path buffers: an unretired submit using one must retire first,
	 * so that its copy-back and this copy-in keep their order. */
	for (unsigned int i = 0; i < nbufs && !err; i++) {
		struct vgpu_fence *busy;

		if (!on_copy_path(b->bufs[i]))
			continue;
		while (!err && b->bufs[i]->copy_users && (busy = pending_user(dev, b->bufs[i])))
			err = wait_retire_locked(busy, b->timeout_ms);
	}
	/* A status slot: retire what is done, then wait for the oldest. */
	while (!err && slot_alloc(dev, &slot)) {
		reap_locked(dev);
		if (slot_alloc(dev, &slot) == 0)
			break;
		if (!dev->pending) {
			err = -EBUSY; /* slots held by submits being made */
			break;
		}
		err = wait_retire_locked(dev->pending, b->timeout_ms);
	}
	if (err) {
		pthread_mutex_unlock(&dev->lock);
		fence_unref_locked(f);
		return vgpu_fail(err, "vgpu_batch_submit_async: waiting for an earlier submit: %s",
				 vgpu_strerror(err));
	}
	f->slot = slot;
	for (unsigned int i = 0; i < nbufs; i++) {
		vgpu_buffer_ref_locked(b->bufs[i]);
		if (on_copy_path(b->bufs[i]))
			b->bufs[i]->copy_users++;
		f->bufs[f->nbufs++] = b->bufs[i];
		b->handles[i + 1] = b->bufs[i]->handle;
	}
	for (unsigned int i = 0; i < b->num_ops; i++) {
		const struct vgpu_compute_op *o = &b->ops[i];

		if (on_copy_path(b->src[i]))
			copy_range(b->src[i], o->src_off, op_src_len(o), true);
		if (on_copy_path(b->dst[i]))
			copy_range(b->dst[i], o->dst_off, op_dst_len(o), true);
	}
	{
		struct vgpu_compute_status *st = slot_ptr(dev, slot);

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
		fence_release_locked(f);
		pthread_mutex_unlock(&dev->lock);
		fence_unref_locked(f);
		return vgpu_fail(err, "vgpu_batch_submit_async: the kernel refused the submit "
				 "(execbuffer: %s)%s", strerror(-err),
				 err == -ENOENT ? ": a syncobj handle is unknown" :
				 err == -EINVAL ? ": a bad in-fence or syncobj" : "");
	}
	f->fd = eb.fence_fd;
	f->refs++; /* the pending list's */
	f->prev = dev->pending_tail;
	if (dev->pending_tail)
		dev->pending_tail->next = f;
	else
		dev->pending = f;
	dev->pending_tail = f;
	pthread_mutex_unlock(&dev->lock);
	*out = f;
	return 0;
}

static void result_out(struct vgpu_submit_result *dst, const struct vgpu_submit_result *src)
{
	size_t n;

	if (!dst || dst->struct_size < offsetof(struct vgpu_submit_result, num_ops))
		return;
	n = dst->struct_size < sizeof(*src) ? dst->struct_size : sizeof(*src);
	memcpy((char *)dst + sizeof(dst->struct_size), (const char *)src + sizeof(src->struct_size),
	       n - sizeof(dst->struct_size));
}

static void result_not_executed(struct vgpu_submit_result *r, uint32_t num_ops, uint32_t ring)
{
	struct vgpu_submit_result ne = {
		.struct_size = sizeof(ne),
		.device_result = VGPU_RESULT_NOT_EXECUTED,
		.num_ops = num_ops,
		.ring = ring,
	};

	result_out(r, &ne);
}

VGPU_EXPORT int vgpu_fence_wait(struct vgpu_fence *f, int timeout_ms,
				struct vgpu_submit_result *result)
{
	struct vgpu_device *dev;
	int err, r;

	if (result && result->struct_size < offsetof(struct vgpu_submit_result, num_ops))
		return vgpu_fail(-EINVAL, "vgpu_fence_wait: result->struct_size %zu is smaller "
				 "than any struct vgpu_submit_result", result->struct_size);
	if (!f)
		return vgpu_fail(-EINVAL, "vgpu_fence_wait: fence is NULL");
	dev = f->dev;
	result_not_executed(result, f->num_ops, f->ring);
	err = vgpu_dev_check(dev, "vgpu_fence_wait");
	if (err)
		return err;
	pthread_mutex_lock(&dev->lock);
	if (!f->retired && status_written(f))
		retire_locked(f, true);
	if (!f->retired) {
		/* The caller holds a reference: f outlives the wait. */
		r = wait_retire_locked(f, timeout_ms);
		if (r && !f->retired) {
			pthread_mutex_unlock(&dev->lock);
			if (r == -ETIMEDOUT)
				return vgpu_fail(-ETIMEDOUT, "vgpu_fence_wait: not complete after "
						 "%d ms (still in flight: wait again)", timeout_ms);
			return vgpu_fail(r, "vgpu_fence_wait: poll on the fence: %s", strerror(-r));
		}
	}
	result_out(result, &f->res);
	err = f->err;
	pthread_mutex_unlock(&dev->lock);
	if (err == -EIO)
		return vgpu_fail(err, "vgpu_fence_wait: the fence signalled but the device "
				 "wrote no status record (transport error or device lost)");
	if (err)
		return vgpu_fail(err, "device: %s (op %u)", vgpu_result_str(f->res.device_result),
				 f->res.op_index);
	return 0;
}

VGPU_EXPORT int vgpu_fence_export(struct vgpu_fence *f)
{
	int fd, err;

	if (!f)
		return vgpu_fail(-EINVAL, "vgpu_fence_export: fence is NULL");
	err = vgpu_dev_check(f->dev, "vgpu_fence_export");
	if (err)
		return err;
	fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return vgpu_fail(-errno, "vgpu_fence_export: dup: %s", strerror(errno));
	return fd;
}

VGPU_EXPORT void vgpu_fence_destroy(struct vgpu_fence *f)
{
	struct vgpu_device *dev;

	if (!f)
		return;
	dev = f->dev;
	/* In a fork child the fence is the parent's: vgpu_close() there
	 * frees only what the child owns. */
	if (vgpu_dev_foreign(dev))
		return;
	pthread_mutex_lock(&dev->lock);
	if (!f->user_gone) {
		f->user_gone = true;
		fence_unref_locked(f);
	}
	pthread_mutex_unlock(&dev->lock);
}

VGPU_EXPORT int vgpu_batch_run(struct vgpu_batch *b, struct vgpu_submit_result *result)
{
	struct vgpu_fence *f;
	int err;

	if (result && result->struct_size < offsetof(struct vgpu_submit_result, num_ops))
		return vgpu_fail(-EINVAL, "vgpu_batch_run: result->struct_size %zu is smaller "
				 "than any struct vgpu_submit_result", result->struct_size);
	result_not_executed(result, b ? b->num_ops : 0, 0);
	err = vgpu_batch_submit_async(b, NULL, &f);
	if (err)
		return err;
	err = vgpu_fence_wait(f, b->timeout_ms, result);
	vgpu_fence_destroy(f);
	return err;
}
