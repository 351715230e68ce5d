/* SPDX-License-Identifier: MIT */
/*
 * gpu_device.h - virtio-gpu device state (resources, contexts) and the
 * execution of decoded control commands.
 */
#ifndef HOSTD_GPU_DEVICE_H
#define HOSTD_GPU_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "guest_mem.h"

/* Largest response the device writes (GET_DISPLAY_INFO). */
#define GPU_RESP_MAX 512u

struct gpu_limits {
	uint32_t max_resources;
	uint32_t max_contexts;
	uint64_t max_total_entries;     /* mem entries over all resources */
};

#define GPU_DEFAULT_MAX_RESOURCES 65536u
#define GPU_DEFAULT_MAX_CONTEXTS 1024u
#define GPU_DEFAULT_MAX_TOTAL_ENTRIES (8u * 1024u * 1024u)

struct gpu_device;

/* lim NULL: defaults. The engine is borrowed. */
struct gpu_device *gpu_device_new(struct engine *eng, const struct gpu_limits *lim);
void gpu_device_free(struct gpu_device *d);
/* Drop every resource and context (disconnect, RESET_OWNER). */
void gpu_device_reset(struct gpu_device *d);

/*
 * Execute one control queue command (buf/len: the device-readable part of
 * the chain) against guest memory gm, with the negotiated virtio features.
 * The response (at most GPU_RESP_MAX bytes) goes to resp; returns its size.
 */
size_t gpu_device_execute(struct gpu_device *d, const struct guest_mem *gm,
			  uint64_t features, const uint8_t *buf, size_t len,
			  uint8_t *resp);
/* Cursor queue command: acknowledged, nothing else. */
size_t gpu_device_cursor(struct gpu_device *d, const uint8_t *buf, size_t len,
			 uint8_t *resp);

uint32_t gpu_device_resource_count(const struct gpu_device *d);
uint32_t gpu_device_context_count(const struct gpu_device *d);

#endif
