/* SPDX-License-Identifier: MIT */
/* helpers.h - building virtio-gpu commands for the device tests. */
#ifndef TEST_HELPERS_H
#define TEST_HELPERS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "vgpu_compute.h"
#include "vgpu_virtio_ext.h"

static inline void hdr_init(struct virtio_gpu_ctrl_hdr *h, uint32_t type, uint32_t ctx)
{
	memset(h, 0, sizeof(*h));
	h->type = type;
	h->ctx_id = ctx;
}

static inline uint32_t cmd_ctx_create(struct fe *f, uint32_t ctx, uint32_t init)
{
	struct virtio_gpu_ctx_create c;

	memset(&c, 0, sizeof(c));
	hdr_init(&c.hdr, VIRTIO_GPU_CMD_CTX_CREATE, ctx);
	c.context_init = init;
	c.nlen = sizeof(VGPU_COMPUTE_CTX_NAME) - 1;
	memcpy(c.debug_name, VGPU_COMPUTE_CTX_NAME, c.nlen);
	return fe_cmd_simple(f, &c, sizeof(c));
}

static inline uint32_t cmd_ctx_destroy(struct fe *f, uint32_t ctx)
{
	struct virtio_gpu_ctx_destroy c;

	hdr_init(&c.hdr, VIRTIO_GPU_CMD_CTX_DESTROY, ctx);
	return fe_cmd_simple(f, &c, sizeof(c));
}

static inline uint32_t cmd_ctx_res(struct fe *f, uint32_t type, uint32_t ctx, uint32_t res)
{
	struct virtio_gpu_ctx_resource c;

	memset(&c, 0, sizeof(c));
	hdr_init(&c.hdr, type, ctx);
	c.resource_id = res;
	return fe_cmd_simple(f, &c, sizeof(c));
}

static inline uint32_t cmd_attach(struct fe *f, uint32_t ctx, uint32_t res)
{
	return cmd_ctx_res(f, VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE, ctx, res);
}

static inline uint32_t cmd_res(struct fe *f, uint32_t type, uint32_t res)
{
	struct virtio_gpu_resource_unref c;

	memset(&c, 0, sizeof(c));
	hdr_init(&c.hdr, type, 0);
	c.resource_id = res;
	return fe_cmd_simple(f, &c, sizeof(c));
}

/* CREATE_BLOB with entries following in the same buffer (split over
 * `split` descriptors). */
static inline uint32_t cmd_blob_ex(struct fe *f, uint32_t ctx, uint32_t id, uint32_t mem,
				   uint32_t flags, uint64_t size,
				   const struct virtio_gpu_mem_entry *e, uint32_t n,
				   uint32_t claimed_n, unsigned split)
{
	size_t len = sizeof(struct virtio_gpu_resource_create_blob) + n * sizeof(*e);
	uint8_t *buf = calloc(1, len);
	struct virtio_gpu_resource_create_blob *c = (void *)buf;
	struct virtio_gpu_ctrl_hdr h;
	int r;

	hdr_init(&c->hdr, VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, ctx);
	c->resource_id = id;
	c->blob_mem = mem;
	c->blob_flags = flags;
	c->nr_entries = claimed_n;
	c->size = size;
	if (n)
		memcpy(buf + sizeof(*c), e, n * sizeof(*e));
	r = fe_cmd(f, 0, buf, len, &h, sizeof(h), split);
	free(buf);
	return r == (int)sizeof(h) ? h.type : 0;
}

static inline uint32_t cmd_blob(struct fe *f, uint32_t ctx, uint32_t id, uint32_t mem,
				uint32_t flags, uint64_t size,
				const struct virtio_gpu_mem_entry *e, uint32_t n)
{
	return cmd_blob_ex(f, ctx, id, mem, flags, size, e, n, n, 1);
}

/* A guest blob backed by one entry of `size` bytes allocated in region reg. */
static inline uint64_t simple_blob(struct fe *f, uint32_t ctx, uint32_t id, uint32_t flags,
				   int reg, uint32_t size)
{
	struct virtio_gpu_mem_entry e = { fe_alloc(f, reg, size, 0), size, 0 };
	uint32_t mem = ctx ? VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST : VIRTIO_GPU_BLOB_MEM_GUEST;

	if (cmd_blob(f, ctx, id, mem, flags, size, &e, 1) != VIRTIO_GPU_RESP_OK_NODATA)
		return 0;
	return e.addr;
}

static inline uint32_t cmd_submit_ex(struct fe *f, uint32_t ctx, uint32_t flags,
				     uint64_t fence, uint8_t ring_idx,
				     const struct vgpu_compute_submit *s,
				     const struct vgpu_compute_op *ops, uint32_t nops,
				     struct virtio_gpu_ctrl_hdr *resp)
{
	uint8_t buf[sizeof(struct virtio_gpu_cmd_submit) + sizeof(*s) + 16 * sizeof(*ops)];
	struct virtio_gpu_cmd_submit *c = (void *)buf;
	size_t len = sizeof(*c) + sizeof(*s) + nops * sizeof(*ops);

	memset(buf, 0, sizeof(buf));
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_SUBMIT_3D, ctx);
	c->hdr.flags = flags;
	c->hdr.fence_id = fence;
	c->hdr.ring_idx = ring_idx;
	c->size = (uint32_t)(sizeof(*s) + nops * sizeof(*ops));
	memcpy(buf + sizeof(*c), s, sizeof(*s));
	memcpy(buf + sizeof(*c) + sizeof(*s), ops, nops * sizeof(*ops));
	/* The stream in a second descriptor, as the Linux driver sends it. */
	if (fe_cmd(f, 0, buf, len, resp, sizeof(*resp), 2) != (int)sizeof(*resp))
		return 0;
	return resp->type;
}

static inline uint32_t cmd_submit(struct fe *f, uint32_t ctx, uint32_t status_res,
				  uint64_t status_off, const struct vgpu_compute_op *ops,
				  uint32_t nops)
{
	struct vgpu_compute_submit s = { VGPU_COMPUTE_MAGIC, nops, status_res, 0, status_off };
	struct virtio_gpu_ctrl_hdr h;

	return cmd_submit_ex(f, ctx, 0, 0, 0, &s, ops, nops, &h);
}

static inline struct vgpu_compute_op mkop(uint32_t opc, uint32_t dst, uint64_t doff,
					  uint32_t src, uint64_t soff, uint64_t len,
					  uint64_t arg0)
{
	struct vgpu_compute_op o;

	memset(&o, 0, sizeof(o));
	o.opcode = opc;
	o.dst_res = dst;
	o.dst_off = doff;
	o.src_res = src;
	o.src_off = soff;
	o.len = len;
	o.arg0 = arg0;
	return o;
}

#endif
