/* SPDX-License-Identifier: MIT */
/* gpu_device.c - resources, contexts and command execution. */
#include "gpu_device.h"

#include <endian.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_cmd.h"
#include "idmap.h"
#include "programs.h"
#include "resource.h"
#include "stats.h"
#include "vgpu_virtio_ext.h"
#include "window.h"

struct gpu_context {
	uint32_t id;
	uint32_t capset;
	char name[65];
	struct idmap attached;  /* resource id -> resource */
	struct prog_ctx *pc;    /* its programs; NULL when the device runs none */
};

struct gpu_device {
	struct engine *eng;
	struct programs *progs; /* borrowed; NULL: no programs */
	struct gpu_limits lim;
	struct idmap resources; /* id -> struct gpu_resource */
	struct idmap contexts;  /* id -> struct gpu_context */
	uint64_t total_entries;
};

#define KNOWN_BLOB_FLAGS (VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE | \
			  VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE | \
			  VIRTIO_GPU_BLOB_FLAG_USE_CROSS_DEVICE | \
			  VIRTIO_GPU_BLOB_FLAG_RDONLY)

struct gpu_device *gpu_device_new(struct engine *eng, const struct gpu_limits *lim)
{
	struct gpu_device *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->eng = eng;
	if (lim) {
		d->lim = *lim;
	} else {
		d->lim.max_resources = GPU_DEFAULT_MAX_RESOURCES;
		d->lim.max_contexts = GPU_DEFAULT_MAX_CONTEXTS;
		d->lim.max_total_entries = GPU_DEFAULT_MAX_TOTAL_ENTRIES;
	}
	idmap_init(&d->resources);
	idmap_init(&d->contexts);
	return d;
}

/* The resource lets go of its pages; prepared jobs that still use them
 * keep them until they are freed. */
static void backing_drop(struct gpu_device *d, struct gpu_resource *r)
{
	if (!r->bk)
		return;
	d->total_entries -= r->bk->nents;
	res_backing_put(r->bk);
	r->bk = NULL;
}

static void resource_free(struct gpu_device *d, struct gpu_resource *r)
{
	backing_drop(d, r);
	STAT_SUB(resources, 1);
	STAT_SUB(resource_bytes, r->size);
	free(r);
}

static void context_free(struct gpu_context *c)
{
	/* Jobs still running its programs hold the worker until they go. */
	prog_ctx_put(c->pc);
	idmap_free(&c->attached);
	free(c);
	STAT_SUB(contexts, 1);
}

void gpu_device_reset(struct gpu_device *d)
{
	size_t pos = 0;
	void *v;

	while (idmap_next(&d->contexts, &pos, NULL, &v) >= 0)
		context_free(v);
	pos = 0;
	while (idmap_next(&d->resources, &pos, NULL, &v) >= 0)
		resource_free(d, v);
	idmap_free(&d->contexts);
	idmap_free(&d->resources);
	d->total_entries = 0;
}

void gpu_device_free(struct gpu_device *d)
{
	if (!d)
		return;
	gpu_device_reset(d);
	free(d);
}

void gpu_device_set_programs(struct gpu_device *d, struct programs *p)
{
	d->progs = p;
}

void gpu_device_lose_programs(struct gpu_device *d, const char *why)
{
	size_t pos = 0;
	void *v;

	while (idmap_next(&d->contexts, &pos, NULL, &v) >= 0) {
		struct gpu_context *c = v;

		if (c->pc)
			prog_ctx_stale(c->pc, why);
	}
}

uint32_t gpu_device_resource_count(const struct gpu_device *d)
{
	return (uint32_t)d->resources.count;
}

uint32_t gpu_device_context_count(const struct gpu_device *d)
{
	return (uint32_t)d->contexts.count;
}

/* ---- commands ---- */

struct exec {
	struct gpu_device *d;
	const struct guest_mem *gm;
	uint64_t features;
	const struct gpu_cmd *c;
	uint8_t *resp;
	size_t resp_len;
	const char *detail;     /* for --verbose */
};

static uint32_t backing_from_entries(struct exec *x, struct gpu_resource *r,
				     uint64_t want_size)
{
	uint64_t total;

	if (x->d->total_entries + x->c->nr_entries > x->d->lim.max_total_entries) {
		x->detail = "entry limit";
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	}
	if (res_check_entries(x->gm, x->c->entries, x->c->nr_entries, &total)) {
		x->detail = "mem entry outside guest RAM, empty, or crossing a region";
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}
	if (total != want_size) {
		x->detail = "entry lengths do not add up to the size";
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}
	r->bk = res_backing_new(x->c->entries, x->c->nr_entries, r->readonly);
	if (!r->bk)
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	x->d->total_entries += r->bk->nents;
	res_window_open(r->bk, x->gm);
	return 0;
}

static uint32_t cmd_create_blob(struct exec *x)
{
	const struct gpu_blob_args *b = &x->c->u.blob;
	struct gpu_device *d = x->d;
	struct gpu_resource *r;
	bool rdonly = b->blob_flags & VIRTIO_GPU_BLOB_FLAG_RDONLY;
	uint32_t rc;

	if (b->resource_id == 0 || idmap_get(&d->resources, b->resource_id)) {
		x->detail = "resource id 0 or in use";
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	}
	if (b->blob_mem != VIRTIO_GPU_BLOB_MEM_GUEST &&
	    b->blob_mem != VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST) {
		x->detail = "blob_mem not GUEST or HOST3D_GUEST";
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}
	if (b->blob_flags & ~(uint32_t)KNOWN_BLOB_FLAGS) {
		x->detail = "unknown blob flags";
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}
	/* Without the feature RDONLY is no flag of this device: refused as
	 * any unknown flag. */
	if (rdonly && !(x->features & (1ull << VIRTIO_GPU_F_BLOB_RDONLY))) {
		x->detail = "RDONLY without VIRTIO_GPU_F_BLOB_RDONLY";
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}
	/* A mapping or an export would let others write the pages. */
	if (rdonly && (b->blob_flags & (VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE |
					VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE |
					VIRTIO_GPU_BLOB_FLAG_USE_CROSS_DEVICE))) {
		x->detail = "RDONLY with MAPPABLE/SHAREABLE/CROSS_DEVICE";
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}
	if (b->blob_mem == VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST &&
	    !idmap_get(&d->contexts, x->c->hdr.ctx_id)) {
		x->detail = "HOST3D_GUEST blob outside a context";
		return VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID;
	}
	if (b->size == 0 || b->nr_entries == 0) {
		x->detail = "size or nr_entries is 0";
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}
	if (d->resources.count >= d->lim.max_resources) {
		x->detail = "resource limit";
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	r->id = b->resource_id;
	r->blob_mem = b->blob_mem;
	r->blob_flags = b->blob_flags;
	r->size = b->size;
	r->readonly = rdonly;
	rc = backing_from_entries(x, r, b->size);
	if (rc == 0 && idmap_put(&d->resources, r->id, r))
		rc = VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	if (rc) {
		backing_drop(d, r);
		free(r);
		return rc;
	}
	STAT_ADD(resources, 1);
	STAT_ADD(resource_bytes, r->size);
	return 0;
}

static uint32_t cmd_unref(struct exec *x)
{
	struct gpu_device *d = x->d;
	struct gpu_resource *r = idmap_del(&d->resources, x->c->u.res.resource_id);
	size_t pos = 0;
	void *v;

	if (!r)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	while (idmap_next(&d->contexts, &pos, NULL, &v) >= 0)
		idmap_del(&((struct gpu_context *)v)->attached, r->id);
	resource_free(d, r);
	return 0;
}

/*
 * Every resource is a blob with guest pages (GUEST or HOST3D_GUEST), and
 * virtio lets such a blob lose and regain its entries (DETACH_BACKING,
 * ATTACH_BACKING). The device cannot tell whose pages they are (a
 * userptr range is an ordinary guest blob), so the rules are the same
 * for all: a backing is never changed in place, ATTACH_BACKING only
 * fills a resource that has none, and a DETACH_BACKING waits for the
 * jobs that use the pages it drops (gpu_device_must_wait) while those
 * jobs keep their own reference. No op sees its pages change under it.
 * A read-only blob stays read-only: the flag is the resource's.
 */
static uint32_t cmd_attach_backing(struct exec *x)
{
	struct gpu_resource *r = idmap_get(&x->d->resources, x->c->u.attach.resource_id);

	if (!r)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (r->bk) {
		x->detail = "resource already has backing";
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}
	return backing_from_entries(x, r, r->size);
}

static uint32_t cmd_detach_backing(struct exec *x)
{
	struct gpu_resource *r = idmap_get(&x->d->resources, x->c->u.res.resource_id);

	if (!r)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (!r->bk) {
		x->detail = "resource has no backing";
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}
	backing_drop(x->d, r);
	return 0;
}

static uint32_t cmd_ctx_create(struct exec *x)
{
	struct gpu_device *d = x->d;
	uint32_t id = x->c->hdr.ctx_id;
	uint32_t init = x->c->u.ctx_create.context_init;
	uint32_t capset = init & VIRTIO_GPU_CONTEXT_INIT_CAPSET_ID_MASK;
	struct gpu_context *c;

	if (id == 0 || idmap_get(&d->contexts, id))
		return VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID;
	/* 0 selects the default capset, the compute capset (the only one). */
	if (init & ~(uint32_t)VIRTIO_GPU_CONTEXT_INIT_CAPSET_ID_MASK ||
	    (capset != 0 && capset != VGPU_COMPUTE_CAPSET_ID)) {
		x->detail = "unsupported capset in context_init";
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}
	if (d->contexts.count >= d->lim.max_contexts) {
		x->detail = "context limit";
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	c->id = id;
	c->capset = VGPU_COMPUTE_CAPSET_ID;
	memcpy(c->name, x->c->u.ctx_create.name, sizeof(c->name));
	idmap_init(&c->attached);
	/* Its worker starts with its first program op, not here. */
	if (d->progs) {
		c->pc = prog_ctx_new(d->progs, id);
		if (!c->pc) {
			free(c);
			return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
		}
	}
	if (idmap_put(&d->contexts, id, c)) {
		prog_ctx_put(c->pc);
		free(c);
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	}
	STAT_ADD(contexts, 1);
	return 0;
}

static uint32_t cmd_ctx_destroy(struct exec *x)
{
	struct gpu_context *c = idmap_del(&x->d->contexts, x->c->hdr.ctx_id);

	if (!c)
		return VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID;
	context_free(c);
	return 0;
}

static uint32_t cmd_ctx_attach(struct exec *x, bool attach)
{
	struct gpu_context *c = idmap_get(&x->d->contexts, x->c->hdr.ctx_id);
	struct gpu_resource *r;
	uint32_t id = x->c->u.res.resource_id;

	if (!c)
		return VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID;
	r = idmap_get(&x->d->resources, id);
	if (!r)
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	if (attach) {
		if (idmap_get(&c->attached, id))
			return 0;
		return idmap_put(&c->attached, id, r) ? VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY : 0;
	}
	if (!idmap_del(&c->attached, id)) {
		x->detail = "resource not attached to the context";
		return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
	}
	return 0;
}

static const struct gpu_resource *lookup_attached(void *opaque, uint32_t id)
{
	struct gpu_context *c = opaque;

	return idmap_get(&c->attached, id);
}

/* The ring a submit came on; 0 for the control queue's own. */
static uint32_t submit_ring(const struct gpu_cmd_hdr *h)
{
	return (h->flags & VIRTIO_GPU_FLAG_INFO_RING_IDX) ? h->ring_idx : 0;
}

static uint32_t cmd_submit(struct exec *x)
{
	struct gpu_context *c = idmap_get(&x->d->contexts, x->c->hdr.ctx_id);
	struct engine_result er;
	struct engine_job j;
	int rc;

	if (!c)
		return VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID;
	engine_prepare(x->d->eng, x->gm, x->c->u.submit.data, x->c->u.submit.size,
		       lookup_attached, c, c->pc, submit_ring(&x->c->hdr), &j);
	rc = engine_run(x->d->eng, x->gm, &j, &er);
	engine_job_release(&j);
	if (rc) {
		x->detail = engine_result_name(er.result);
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}
	return 0;
}

static uint32_t cmd_capset_info(struct exec *x)
{
	struct virtio_gpu_resp_capset_info *ci = (void *)x->resp;

	if (x->c->u.capset_info.index != 0)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	ci->capset_id = htole32(VGPU_COMPUTE_CAPSET_ID);
	ci->capset_max_version = htole32(VGPU_COMPUTE_CAPSET_VERSION);
	/* The largest layout; older versions answer with their own, shorter one. */
	ci->capset_max_size = htole32(sizeof(struct vgpu_compute_caps));
	x->resp_len = sizeof(*ci);
	return VIRTIO_GPU_RESP_OK_CAPSET_INFO;
}

static uint32_t cmd_capset(struct exec *x)
{
	struct vgpu_compute_caps caps;
	size_t n;

	if (x->c->u.capset.id != VGPU_COMPUTE_CAPSET_ID)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	n = engine_caps(x->d->eng, x->c->u.capset.version, &caps);
	if (!n)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	memcpy(x->resp + sizeof(struct virtio_gpu_ctrl_hdr), &caps, n);
	x->resp_len = sizeof(struct virtio_gpu_ctrl_hdr) + n;
	return VIRTIO_GPU_RESP_OK_CAPSET;
}

static void fill_hdr(const struct gpu_cmd_hdr *h, uint32_t type, uint8_t *resp)
{
	struct virtio_gpu_ctrl_hdr r;

	memset(&r, 0, sizeof(r));
	r.type = htole32(type);
	if (h->flags & VIRTIO_GPU_FLAG_FENCE) {
		r.flags = htole32(h->flags & (VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX));
		r.fence_id = htole64(h->fence_id);
		r.ctx_id = htole32(h->ctx_id);
		if (h->flags & VIRTIO_GPU_FLAG_INFO_RING_IDX)
			r.ring_idx = h->ring_idx;
		STAT_ADD(fences, 1);
	}
	memcpy(resp, &r, sizeof(r));
}

static uint32_t dispatch(struct exec *x)
{
	switch (x->c->hdr.type) {
	case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
		/* No display on any scanout: every pmode disabled (all zero). */
		x->resp_len = sizeof(struct virtio_gpu_resp_display_info);
		return VIRTIO_GPU_RESP_OK_DISPLAY_INFO;
	case VIRTIO_GPU_CMD_GET_CAPSET_INFO:
		return cmd_capset_info(x);
	case VIRTIO_GPU_CMD_GET_CAPSET:
		return cmd_capset(x);
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB:
		return cmd_create_blob(x);
	case VIRTIO_GPU_CMD_RESOURCE_UNREF:
		return cmd_unref(x);
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
		return cmd_attach_backing(x);
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
		return cmd_detach_backing(x);
	case VIRTIO_GPU_CMD_CTX_CREATE:
		return cmd_ctx_create(x);
	case VIRTIO_GPU_CMD_CTX_DESTROY:
		return cmd_ctx_destroy(x);
	case VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE:
		return cmd_ctx_attach(x, true);
	case VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE:
		return cmd_ctx_attach(x, false);
	case VIRTIO_GPU_CMD_SUBMIT_3D:
		return cmd_submit(x);
	default:
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	}
}

/* Decode, and refuse what no command of this queue may be. */
static uint32_t decode_checked(const uint8_t *buf, size_t len, struct gpu_cmd *c,
			       const char **detail)
{
	uint32_t rc = gpu_cmd_decode(buf, len, c);

	if (rc == 0 && (c->hdr.type == VIRTIO_GPU_CMD_UPDATE_CURSOR ||
			c->hdr.type == VIRTIO_GPU_CMD_MOVE_CURSOR))
		rc = VIRTIO_GPU_RESP_ERR_UNSPEC;  /* wrong queue */
	if (rc == 0 && (c->hdr.flags & VIRTIO_GPU_FLAG_INFO_RING_IDX) && c->hdr.ring_idx >= 64) {
		*detail = "ring_idx >= 64";
		rc = VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	}
	return rc;
}

/* The response header for result rc; counts and logs the command. */
static size_t respond(struct exec *x, const struct gpu_cmd_hdr *h, uint32_t rc)
{
	if (rc >= VIRTIO_GPU_RESP_ERR_UNSPEC) {
		x->resp_len = sizeof(struct virtio_gpu_ctrl_hdr);
		STAT_ADD(cmd_errors, 1);
	}
	STAT_ADD(cmds, 1);
	fill_hdr(h, rc, x->resp);
	hlog_v("ctrl %s ctx=%u flags=%#x fence=%llu -> %s%s%s", gpu_cmd_name(h->type),
	       h->ctx_id, h->flags, (unsigned long long)h->fence_id,
	       gpu_resp_name(rc), x->detail ? ": " : "", x->detail ? x->detail : "");
	return x->resp_len;
}

size_t gpu_device_execute(struct gpu_device *d, const struct guest_mem *gm,
			  uint64_t features, const uint8_t *buf, size_t len,
			  uint8_t *resp)
{
	struct gpu_cmd c;
	struct exec x = { .d = d, .gm = gm, .features = features, .c = &c, .resp = resp };
	uint32_t rc;
	size_t rl;

	memset(resp, 0, GPU_RESP_MAX);
	x.resp_len = sizeof(struct virtio_gpu_ctrl_hdr);
	rc = decode_checked(buf, len, &c, &x.detail);
	if (rc == 0) {
		rc = dispatch(&x);
		if (rc == 0)
			rc = VIRTIO_GPU_RESP_OK_NODATA;
	}
	rl = respond(&x, &c.hdr, rc);
	gpu_cmd_free(&c);
	return rl;
}

bool gpu_device_must_wait(const struct gpu_device *d, const uint8_t *buf, size_t len)
{
	uint32_t type = gpu_cmd_type(buf, len);
	const struct gpu_resource *r;
	const char *detail = NULL;
	struct gpu_cmd c;
	bool wait = false;

	if (type != VIRTIO_GPU_CMD_RESOURCE_UNREF && type != VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING)
		return false;
	if (decode_checked(buf, len, &c, &detail) == 0) {
		r = idmap_get(&d->resources, c.u.res.resource_id);
		wait = r && r->bk && res_backing_in_use(r->bk);
	}
	gpu_cmd_free(&c);
	return wait;
}

struct gpu_job {
	struct gpu_cmd_hdr hdr;
	uint32_t rc;            /* VIRTIO_GPU_RESP_ERR_* found while preparing; 0: run */
	const char *detail;
	struct engine_job ej;
};

struct gpu_job *gpu_device_prepare(struct gpu_device *d, const struct guest_mem *gm,
				   const uint8_t *buf, size_t len)
{
	struct gpu_job *j;
	struct gpu_cmd c;

	if (gpu_cmd_type(buf, len) != VIRTIO_GPU_CMD_SUBMIT_3D)
		return NULL;
	j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->rc = decode_checked(buf, len, &c, &j->detail);
	j->hdr = c.hdr;
	if (j->rc == 0) {
		struct gpu_context *ctx = idmap_get(&d->contexts, c.hdr.ctx_id);

		/* What cmd_submit() would do here, up to running the ops. */
		if (!ctx)
			j->rc = VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID;
		else
			engine_prepare(d->eng, gm, c.u.submit.data, c.u.submit.size,
				       lookup_attached, ctx, ctx->pc, submit_ring(&c.hdr), &j->ej);
	}
	gpu_cmd_free(&c);
	return j;
}

size_t gpu_job_run(struct gpu_device *d, const struct guest_mem *gm, struct gpu_job *j,
		   uint8_t *resp)
{
	struct exec x = { .d = d, .gm = gm, .resp = resp, .detail = j->detail };
	uint32_t rc = j->rc;

	memset(resp, 0, GPU_RESP_MAX);
	x.resp_len = sizeof(struct virtio_gpu_ctrl_hdr);
	if (rc == 0) {
		struct engine_result er;

		rc = VIRTIO_GPU_RESP_OK_NODATA;
		if (engine_run(d->eng, gm, &j->ej, &er)) {
			x.detail = engine_result_name(er.result);
			rc = VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
		}
	}
	return respond(&x, &j->hdr, rc);
}

void gpu_job_free(struct gpu_job *j)
{
	if (!j)
		return;
	engine_job_release(&j->ej);
	free(j);
}

size_t gpu_device_cursor(struct gpu_device *d, const uint8_t *buf, size_t len,
			 uint8_t *resp)
{
	struct gpu_cmd c;
	uint32_t rc;

	(void)d;
	memset(resp, 0, sizeof(struct virtio_gpu_ctrl_hdr));
	rc = gpu_cmd_decode(buf, len, &c);
	if (rc == 0 && c.hdr.type != VIRTIO_GPU_CMD_UPDATE_CURSOR &&
	    c.hdr.type != VIRTIO_GPU_CMD_MOVE_CURSOR)
		rc = VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (rc == 0)
		rc = VIRTIO_GPU_RESP_OK_NODATA;
	STAT_ADD(cursor_cmds, 1);
	fill_hdr(&c.hdr, rc, resp);
	hlog_v("cursor %s -> %s", gpu_cmd_name(c.hdr.type), gpu_resp_name(rc));
	gpu_cmd_free(&c);
	return sizeof(struct virtio_gpu_ctrl_hdr);
}
