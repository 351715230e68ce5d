/* SPDX-License-Identifier: MIT */
/* gpu_cmd.c - virtio-gpu command decoding (sizes and counts checked). */
#include "gpu_cmd.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

#define FIELD(buf, type, member) ((buf) + offsetof(type, member))

static uint32_t decode_entries(const uint8_t *buf, size_t len, size_t off,
			       uint32_t n, struct gpu_cmd *c)
{
	size_t need;

	if (n == 0)
		return 0;
	if (n > GPU_CMD_MAX_ENTRIES)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	need = (size_t)n * sizeof(struct virtio_gpu_mem_entry);
	if (len < off || len - off < need)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	c->entries = calloc(n, sizeof(*c->entries));
	if (!c->entries)
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = buf + off + (size_t)i * sizeof(struct virtio_gpu_mem_entry);

		c->entries[i].addr = rd64(FIELD(e, struct virtio_gpu_mem_entry, addr));
		c->entries[i].len = rd32(FIELD(e, struct virtio_gpu_mem_entry, length));
	}
	c->nr_entries = n;
	return 0;
}

uint32_t gpu_cmd_decode(const uint8_t *buf, size_t len, struct gpu_cmd *c)
{
	const size_t H = sizeof(struct virtio_gpu_ctrl_hdr);
	size_t need;

	memset(c, 0, sizeof(*c));
	if (!buf || len < H)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	c->hdr.type = rd32(FIELD(buf, struct virtio_gpu_ctrl_hdr, type));
	c->hdr.flags = rd32(FIELD(buf, struct virtio_gpu_ctrl_hdr, flags));
	c->hdr.fence_id = rd64(FIELD(buf, struct virtio_gpu_ctrl_hdr, fence_id));
	c->hdr.ctx_id = rd32(FIELD(buf, struct virtio_gpu_ctrl_hdr, ctx_id));
	c->hdr.ring_idx = buf[offsetof(struct virtio_gpu_ctrl_hdr, ring_idx)];

	switch (c->hdr.type) {
	case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
	case VIRTIO_GPU_CMD_CTX_DESTROY:
		need = H;
		break;
	case VIRTIO_GPU_CMD_RESOURCE_UNREF:
		need = sizeof(struct virtio_gpu_resource_unref);
		break;
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
		need = sizeof(struct virtio_gpu_resource_detach_backing);
		break;
	case VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE:
	case VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE:
		need = sizeof(struct virtio_gpu_ctx_resource);
		break;
	case VIRTIO_GPU_CMD_GET_CAPSET_INFO:
		need = sizeof(struct virtio_gpu_get_capset_info);
		break;
	case VIRTIO_GPU_CMD_GET_CAPSET:
		need = sizeof(struct virtio_gpu_get_capset);
		break;
	case VIRTIO_GPU_CMD_CTX_CREATE:
		need = sizeof(struct virtio_gpu_ctx_create);
		break;
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB:
		need = sizeof(struct virtio_gpu_resource_create_blob);
		break;
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
		need = sizeof(struct virtio_gpu_resource_attach_backing);
		break;
	case VIRTIO_GPU_CMD_SUBMIT_3D:
		need = sizeof(struct virtio_gpu_cmd_submit);
		break;
	case VIRTIO_GPU_CMD_UPDATE_CURSOR:
	case VIRTIO_GPU_CMD_MOVE_CURSOR:
		need = sizeof(struct virtio_gpu_update_cursor);
		break;
	default:
		/* Known-but-unsupported and unknown types. */
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	}
	if (len < need)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;

	switch (c->hdr.type) {
	case VIRTIO_GPU_CMD_RESOURCE_UNREF:
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
	case VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE:
	case VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE:
		/* resource_id sits right after the header in all four. */
		c->u.res.resource_id = rd32(buf + H);
		break;
	case VIRTIO_GPU_CMD_GET_CAPSET_INFO:
		c->u.capset_info.index = rd32(FIELD(buf, struct virtio_gpu_get_capset_info, capset_index));
		break;
	case VIRTIO_GPU_CMD_GET_CAPSET:
		c->u.capset.id = rd32(FIELD(buf, struct virtio_gpu_get_capset, capset_id));
		c->u.capset.version = rd32(FIELD(buf, struct virtio_gpu_get_capset, capset_version));
		break;
	case VIRTIO_GPU_CMD_CTX_CREATE: {
		uint32_t nlen = rd32(FIELD(buf, struct virtio_gpu_ctx_create, nlen));

		c->u.ctx_create.nlen = nlen;
		c->u.ctx_create.context_init = rd32(FIELD(buf, struct virtio_gpu_ctx_create, context_init));
		if (nlen > 64)
			return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
		memcpy(c->u.ctx_create.name, FIELD(buf, struct virtio_gpu_ctx_create, debug_name), nlen);
		c->u.ctx_create.name[nlen] = '\0';
		break;
	}
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB:
		c->u.blob.resource_id = rd32(FIELD(buf, struct virtio_gpu_resource_create_blob, resource_id));
		c->u.blob.blob_mem = rd32(FIELD(buf, struct virtio_gpu_resource_create_blob, blob_mem));
		c->u.blob.blob_flags = rd32(FIELD(buf, struct virtio_gpu_resource_create_blob, blob_flags));
		c->u.blob.nr_entries = rd32(FIELD(buf, struct virtio_gpu_resource_create_blob, nr_entries));
		c->u.blob.blob_id = rd64(FIELD(buf, struct virtio_gpu_resource_create_blob, blob_id));
		c->u.blob.size = rd64(FIELD(buf, struct virtio_gpu_resource_create_blob, size));
		return decode_entries(buf, len, need, c->u.blob.nr_entries, c);
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING:
		c->u.attach.resource_id = rd32(FIELD(buf, struct virtio_gpu_resource_attach_backing, resource_id));
		c->u.attach.nr_entries = rd32(FIELD(buf, struct virtio_gpu_resource_attach_backing, nr_entries));
		if (c->u.attach.nr_entries == 0)
			return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
		return decode_entries(buf, len, need, c->u.attach.nr_entries, c);
	case VIRTIO_GPU_CMD_SUBMIT_3D: {
		uint32_t size = rd32(FIELD(buf, struct virtio_gpu_cmd_submit, size));

		if (len - need < size)
			return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
		c->u.submit.size = size;
		c->u.submit.data = buf + need;
		break;
	}
	default:
		break;
	}
	return 0;
}

uint32_t gpu_cmd_type(const uint8_t *buf, size_t len)
{
	if (!buf || len < sizeof(struct virtio_gpu_ctrl_hdr))
		return 0;
	return rd32(FIELD(buf, struct virtio_gpu_ctrl_hdr, type));
}

void gpu_cmd_free(struct gpu_cmd *c)
{
	free(c->entries);
	c->entries = NULL;
	c->nr_entries = 0;
}

const char *gpu_cmd_name(uint32_t type)
{
	switch (type) {
	case VIRTIO_GPU_CMD_GET_DISPLAY_INFO: return "GET_DISPLAY_INFO";
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D: return "RESOURCE_CREATE_2D";
	case VIRTIO_GPU_CMD_RESOURCE_UNREF: return "RESOURCE_UNREF";
	case VIRTIO_GPU_CMD_SET_SCANOUT: return "SET_SCANOUT";
	case VIRTIO_GPU_CMD_RESOURCE_FLUSH: return "RESOURCE_FLUSH";
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D: return "TRANSFER_TO_HOST_2D";
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING: return "RESOURCE_ATTACH_BACKING";
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING: return "RESOURCE_DETACH_BACKING";
	case VIRTIO_GPU_CMD_GET_CAPSET_INFO: return "GET_CAPSET_INFO";
	case VIRTIO_GPU_CMD_GET_CAPSET: return "GET_CAPSET";
	case VIRTIO_GPU_CMD_GET_EDID: return "GET_EDID";
	case VIRTIO_GPU_CMD_RESOURCE_ASSIGN_UUID: return "RESOURCE_ASSIGN_UUID";
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB: return "RESOURCE_CREATE_BLOB";
	case VIRTIO_GPU_CMD_SET_SCANOUT_BLOB: return "SET_SCANOUT_BLOB";
	case VIRTIO_GPU_CMD_CTX_CREATE: return "CTX_CREATE";
	case VIRTIO_GPU_CMD_CTX_DESTROY: return "CTX_DESTROY";
	case VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE: return "CTX_ATTACH_RESOURCE";
	case VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE: return "CTX_DETACH_RESOURCE";
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_3D: return "RESOURCE_CREATE_3D";
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_3D: return "TRANSFER_TO_HOST_3D";
	case VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D: return "TRANSFER_FROM_HOST_3D";
	case VIRTIO_GPU_CMD_SUBMIT_3D: return "SUBMIT_3D";
	case VIRTIO_GPU_CMD_RESOURCE_MAP_BLOB: return "RESOURCE_MAP_BLOB";
	case VIRTIO_GPU_CMD_RESOURCE_UNMAP_BLOB: return "RESOURCE_UNMAP_BLOB";
	case VIRTIO_GPU_CMD_UPDATE_CURSOR: return "UPDATE_CURSOR";
	case VIRTIO_GPU_CMD_MOVE_CURSOR: return "MOVE_CURSOR";
	default: return "UNKNOWN";
	}
}

const char *gpu_resp_name(uint32_t type)
{
	switch (type) {
	case VIRTIO_GPU_RESP_OK_NODATA: return "OK_NODATA";
	case VIRTIO_GPU_RESP_OK_DISPLAY_INFO: return "OK_DISPLAY_INFO";
	case VIRTIO_GPU_RESP_OK_CAPSET_INFO: return "OK_CAPSET_INFO";
	case VIRTIO_GPU_RESP_OK_CAPSET: return "OK_CAPSET";
	case VIRTIO_GPU_RESP_ERR_UNSPEC: return "ERR_UNSPEC";
	case VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY: return "ERR_OUT_OF_MEMORY";
	case VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID: return "ERR_INVALID_SCANOUT_ID";
	case VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID: return "ERR_INVALID_RESOURCE_ID";
	case VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID: return "ERR_INVALID_CONTEXT_ID";
	case VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER: return "ERR_INVALID_PARAMETER";
	default: return "?";
	}
}
