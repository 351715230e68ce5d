/* SPDX-License-Identifier: MIT */
/* batch.c - building, submitting and waiting for compute command streams. */
#include "vgpu_private.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
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
};

VGPU_EXPORT int vgpu_batch_create(struct vgpu_device *dev, struct vgpu_batch **out)
{
	struct vgpu_batch *b;
	unsigned int n;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!dev)
		return -EINVAL;
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
	if (!b->ops || !b->dst || !b->src || !b->cmd || !b->handles) {
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
		return -E2BIG;
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
static int check_op(struct vgpu_batch *b, const struct vgpu_compute_op *op,
		    struct vgpu_buffer *dst, struct vgpu_buffer *src)
{
	uint64_t dlen = op_dst_len(op), slen = op_src_len(op);

	if (!b || !dst || dst->dev != b->dev)
		return -EINVAL;
	if (slen && (!src || src->dev != b->dev))
		return -EINVAL;
	if (op->len == 0)
		return -EINVAL;
	if (op->len > b->dev->info.caps.max_op_bytes)
		return -ERANGE;
	if (!in_range(dst, op->dst_off, dlen) || (slen && !in_range(src, op->src_off, slen)))
		return -ERANGE;
	if (dst->read_only)
		return -EACCES;
	if ((op->opcode == VGPU_OP_FILL || op->opcode == VGPU_OP_SAXPY ||
	     op->opcode == VGPU_OP_SUM_F32) && op->len % 4)
		return -EINVAL;
	if (op->opcode == VGPU_OP_COPY && src == dst &&
	    overlap(op->src_off, op->dst_off, op->len))
		return -EINVAL;
	if (op->opcode == VGPU_OP_SAXPY && src == dst && op->src_off != op->dst_off &&
	    overlap(op->src_off, op->dst_off, op->len))
		return -EINVAL;
	if (b->num_ops >= b->max_ops)
		return -E2BIG;
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
		return -EINVAL;
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
		return -EINVAL;
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
	uint8_t *user = buf->user, *blob = buf->map;

	if (off >= buf->size || len == 0)
		return;
	if (len > buf->size - off)
		len = buf->size - off;
	if (to_blob)
		memcpy(blob + off, user + off, len);
	else
		memcpy(user + off, blob + off, len);
}

static unsigned int collect_handles(struct vgpu_batch *b)
{
	unsigned int n = 0;

	b->handles[n++] = b->dev->status_handle;
	for (unsigned int i = 0; i < b->num_ops; i++) {
		struct vgpu_buffer *bufs[2] = { b->dst[i], b->src[i] };

		for (int k = 0; k < 2; k++) {
			unsigned int j;

			if (!bufs[k])
				continue;
			for (j = 0; j < n && b->handles[j] != bufs[k]->handle; j++)
				;
			if (j == n)
				b->handles[n++] = bufs[k]->handle;
		}
	}
	return n;
}

static size_t encode(struct vgpu_batch *b)
{
	struct vgpu_compute_submit h = {
		.magic = htole32(VGPU_COMPUTE_MAGIC),
		.num_ops = htole32(b->num_ops),
		.status_res = htole32(b->dev->status_res_id),
		.reserved = 0,
		.status_off = htole64(0),
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
			.dst_off = htole64(o->dst_off),
			.src_off = htole64(o->src_off),
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

/* Wait for the fence fd (or, without one, for the status buffer). */
static int wait_done(struct vgpu_batch *b, int fence_fd)
{
	int64_t deadline = now_ms() + b->timeout_ms;

	if (fence_fd >= 0) {
		for (;;) {
			struct pollfd pfd = { .fd = fence_fd, .events = POLLIN };
			int64_t left = deadline - now_ms();
			int r;

			if (left < 0)
				left = 0;
			r = poll(&pfd, 1, (int)left);
			if (r > 0)
				return 0;
			if (r == 0)
				return -ETIMEDOUT;
			if (errno != EINTR)
				return -errno;
		}
	}
	for (;;) {
		struct drm_virtgpu_3d_wait w = { .handle = b->dev->status_handle };
		int err = vgpu_ioctl(b->dev->fd, DRM_IOCTL_VIRTGPU_WAIT, &w);

		if (err != -EBUSY)
			return err;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
	}
}

VGPU_EXPORT int vgpu_batch_submit(struct vgpu_batch *b, struct vgpu_submit_result *result)
{
	struct vgpu_compute_status *st;
	struct vgpu_compute_status s;
	struct drm_virtgpu_execbuffer eb;
	uint32_t res;
	size_t size;
	unsigned int nh;
	int err;

	if (result)
		memset(result, 0, sizeof(*result));
	if (!b || b->num_ops == 0)
		return -EINVAL;
	/* The device cannot refuse writes into blobs that are read-only only
	 * to the library: check here, before anything is copied. */
	for (unsigned int i = 0; i < b->num_ops; i++) {
		const struct vgpu_buffer *d = b->dst[i];

		if (d && d->read_only && !d->userptr && op_dst_len(&b->ops[i]))
			return -EACCES;
	}
	for (unsigned int i = 0; i < b->num_ops; i++) {
		const struct vgpu_compute_op *o = &b->ops[i];

		if (on_copy_path(b->src[i]))
			copy_range(b->src[i], o->src_off, op_src_len(o), true);
		if (on_copy_path(b->dst[i]))
			copy_range(b->dst[i], o->dst_off, op_dst_len(o), true);
	}

	st = b->dev->status_map;
	__atomic_store_n(&st->result, VGPU_STATUS_PENDING, __ATOMIC_RELAXED);
	__atomic_store_n(&st->op_index, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&st->ops_done, 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	size = encode(b);
	nh = collect_handles(b);
	memset(&eb, 0, sizeof(eb));
	eb.flags = VIRTGPU_EXECBUF_FENCE_FD_OUT;
	eb.size = (uint32_t)size;
	eb.command = (uint64_t)(uintptr_t)b->cmd;
	eb.bo_handles = (uint64_t)(uintptr_t)b->handles;
	eb.num_bo_handles = nh;
	eb.fence_fd = -1;
	err = vgpu_ioctl(b->dev->fd, DRM_IOCTL_VIRTGPU_EXECBUFFER, &eb);
	if (err)
		return err;
	err = wait_done(b, eb.fence_fd);
	if (eb.fence_fd >= 0)
		close(eb.fence_fd);
	if (err)
		return err;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	s.result = le32toh(__atomic_load_n(&st->result, __ATOMIC_RELAXED));
	s.op_index = le32toh(__atomic_load_n(&st->op_index, __ATOMIC_RELAXED));
	s.ops_done = le64toh(__atomic_load_n(&st->ops_done, __ATOMIC_RELAXED));
	if (s.result == VGPU_STATUS_PENDING)
		return -EIO;
	if (result) {
		result->device_result = s.result;
		result->op_index = s.op_index;
		result->ops_done = s.ops_done;
		result->num_ops = b->num_ops;
	}
	/* Copy back what the executed ops wrote. */
	for (uint64_t i = 0; i < s.ops_done && i < b->num_ops; i++) {
		struct vgpu_buffer *d = b->dst[i];

		if (on_copy_path(d) && !d->read_only)
			copy_range(d, b->ops[i].dst_off, op_dst_len(&b->ops[i]), false);
	}
	res = s.result;
	return vgpu_result_to_errno(res);
}
