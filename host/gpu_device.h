/* SPDX-License-Identifier: MIT */
/*
 * gpu_device.h - virtio-gpu device state (resources, contexts) and the
 * execution of decoded control commands.
 *
 * Device state belongs to one thread at a time: every function here but
 * gpu_job_run() is called by whoever serializes the device (in the daemon:
 * the queue thread, or a ring worker freeing a job, with the vdev lock
 * held). A ring submit is prepared in queue order (gpu_device_prepare:
 * decoded, validated, its resources resolved to referenced backings) and
 * run later by a ring worker (gpu_job_run), which touches nothing but the
 * job, its backings and guest memory.
 */
#ifndef HOSTD_GPU_DEVICE_H
#define HOSTD_GPU_DEVICE_H

#include <stdbool.h>
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

/*
 * Whether the command in buf must wait before it executes: an UNREF or
 * DETACH_BACKING that would drop a backing prepared jobs still use (the
 * guest may reuse the pages once it is answered). Nothing is changed; the
 * caller waits until a job is freed and asks again.
 */
bool gpu_device_must_wait(const struct gpu_device *d, const uint8_t *buf, size_t len);

/* A ring submit resolved in queue order, to be run later. */
struct gpu_job;

/*
 * Prepare the SUBMIT_3D in buf: decode it, resolve its context and
 * resources and validate it as a whole, as gpu_device_execute() would at
 * this point of the queue. A submit that fails (decoding, context,
 * validation) is prepared too: running it writes the failure (status
 * record, response). NULL when buf is not a SUBMIT_3D, or out of memory:
 * then execute it instead.
 */
struct gpu_job *gpu_device_prepare(struct gpu_device *d, const struct guest_mem *gm,
				   const uint8_t *buf, size_t len);
/*
 * Run a prepared job (any thread; gm unchanged since it was prepared) and
 * write its response (at most GPU_RESP_MAX bytes) to resp; returns its
 * size.
 */
size_t gpu_job_run(struct gpu_device *d, const struct guest_mem *gm, struct gpu_job *j,
		   uint8_t *resp);
/* Drop the job and its references (serialized with the device); NULL-safe. */
void gpu_job_free(struct gpu_job *j);

/* Cursor queue command: acknowledged, nothing else. */
size_t gpu_device_cursor(struct gpu_device *d, const uint8_t *buf, size_t len,
			 uint8_t *resp);

/*
 * The guest's programs (programs.h; borrowed): each context created from
 * now on gets its own worker, started by its first program op.
 */
void gpu_device_set_programs(struct gpu_device *d, struct programs *p);
/* A new memory table: every worker already started maps stale files and
 * is lost (its context's later program ops fail with E_LOST). */
void gpu_device_lose_programs(struct gpu_device *d, const char *why);

uint32_t gpu_device_resource_count(const struct gpu_device *d);
uint32_t gpu_device_context_count(const struct gpu_device *d);

#endif
