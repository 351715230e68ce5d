/* SPDX-License-Identifier: MIT */
/*
 * gpu_cmd.h - decoding of virtio-gpu control and cursor commands.
 *
 * Pure parsing: a command buffer (the gathered device-readable part of one
 * chain) becomes a struct gpu_cmd with host-order fields, or an error code.
 * No device state is consulted here.
 */
#ifndef HOSTD_GPU_CMD_H
#define HOSTD_GPU_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "vgpu_virtio_ext.h"

/* Bounds on guest-supplied counts. */
/* Mem entries in one command: 4M, a 16 GiB buffer of scattered 4 KiB
 * pages (a model file). The command is then 64 MiB (VQ_MAX_OUT_BYTES);
 * the device's copies of its entries take 160 MiB while it is decoded,
 * and what resources keep is bounded by gpu_limits.max_total_entries. */
#define GPU_CMD_MAX_ENTRIES (1u << 22)

struct gpu_mem_entry {
	uint64_t addr;
	uint32_t len;
};

struct gpu_cmd_hdr {
	uint32_t type;
	uint32_t flags;
	uint64_t fence_id;
	uint32_t ctx_id;
	uint8_t ring_idx;
};

struct gpu_cmd {
	struct gpu_cmd_hdr hdr;
	union {
		struct { uint32_t resource_id; } res;          /* UNREF, DETACH_BACKING, CTX_(DE)ATTACH */
		struct { uint32_t index; } capset_info;
		struct { uint32_t id, version; } capset;
		struct {
			uint32_t nlen, context_init;
			char name[65];
		} ctx_create;
		struct gpu_blob_args {
			uint32_t resource_id, blob_mem, blob_flags, nr_entries;
			uint64_t blob_id, size;
		} blob;
		struct { uint32_t resource_id, nr_entries; } attach;
		struct { uint32_t size; const uint8_t *data; } submit;
	} u;
	/* CREATE_BLOB and ATTACH_BACKING: decoded entries (owned). */
	struct gpu_mem_entry *entries;
	uint32_t nr_entries;
};

/*
 * Decode a control queue command. Returns 0, or a VIRTIO_GPU_RESP_ERR_*
 * code; the header is filled whenever at least a header was present (so
 * the response can echo it). submit.data points into buf.
 */
uint32_t gpu_cmd_decode(const uint8_t *buf, size_t len, struct gpu_cmd *c);
void gpu_cmd_free(struct gpu_cmd *c);
/* The type of the command in buf without decoding it (a large command
 * need not be copied to be told apart); 0 when shorter than a header. */
uint32_t gpu_cmd_type(const uint8_t *buf, size_t len);
const char *gpu_cmd_name(uint32_t type);
const char *gpu_resp_name(uint32_t type);

#endif
