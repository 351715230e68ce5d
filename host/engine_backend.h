/* SPDX-License-Identifier: MIT */
/*
 * engine_backend.h - the seam between the engine (decoding and validation
 * of a whole submit, engine.c) and what runs the validated ops: the CPU
 * backend (engine_cpu.c) or the OpenCL backend (engine_opencl.c).
 *
 * A backend sees only ops that passed validation: resources resolved to
 * their backings, every range inside its backing, alignment and overlap
 * rules checked. The op holds a reference on each backing it names, so
 * the pages it works on stay as they were validated while it runs, on
 * whichever thread, whatever the queue thread does to the resources.
 */
#ifndef HOSTD_ENGINE_BACKEND_H
#define HOSTD_ENGINE_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "guest_mem.h"
#include "monotime.h"
#include "resource.h"
#include "vgpu_compute.h"

/* An op after validation. */
struct vop {
	uint32_t opcode;
	struct res_backing *dst, *src;   /* referenced while the op is prepared */
	uint64_t dst_off, src_off, len, arg0;
	/* SGEMM */
	uint32_t m, n, k, lda, ldb, ldc;
	uint64_t b_off;
	/* Set by engine_run for each op, just before it runs. The backend
	 * checks both (vop_stop()) between pieces of the op, each bounded,
	 * and stops early: E_TIMEOUT past the deadline, E_DEVICE once the
	 * device stops. What the op wrote so far is then unspecified. */
	uint64_t deadline;        /* CLOCK_MONOTONIC ns; 0: none */
	const bool *abort;        /* set without a lock when the device stops; NULL: none */
	/* Version 3 (programs.c runs these) */
	uint32_t ring;                   /* the submit's ring (the worker keeps its order) */
	uint64_t arg1, arg2;             /* as the op gave them */
	uint8_t *payload;                /* a copy of the op's payload */
	uint32_t payload_len;
	struct res_backing **bind;       /* DISPATCH: per argument, a buffer's backing
					  * (referenced) or NULL */
	uint32_t nbind;
	struct prog_ctx *pc;             /* the context's programs (the job's reference) */
};

static inline uint64_t vop_now_ns(void)
{
	return (uint64_t)mono_now_ns();
}

/* VGPU_COMPUTE_OK while op may go on; else why it must stop now. */
static inline uint32_t vop_stop(const struct vop *op)
{
	if (op->abort && __atomic_load_n(op->abort, __ATOMIC_RELAXED))
		return VGPU_COMPUTE_E_DEVICE;
	if (op->deadline && vop_now_ns() >= op->deadline)
		return VGPU_COMPUTE_E_TIMEOUT;
	return VGPU_COMPUTE_OK;
}

struct engine_backend {
	const char *name;
	uint32_t id;              /* enum vgpu_compute_backend */
	uint32_t num_threads;     /* reported in the caps */
	/* The ops work on the guest's pages themselves: always on the CPU;
	 * on OpenCL when the device passed the start-up gate. */
	bool zero_copy;
	/* Can this validated op run here? VGPU_COMPUTE_OK or a result code.
	 * Called for every op before any op runs. NULL: always. */
	uint32_t (*check)(struct engine_backend *b, const struct guest_mem *gm,
			  const struct vop *op);
	/* Run one op; VGPU_COMPUTE_OK or a result code (E_DEVICE, E_TIMEOUT).
	 * May be called from several threads at once. */
	uint32_t (*run)(struct engine_backend *b, const struct guest_mem *gm,
			const struct vop *op);
	void (*destroy)(struct engine_backend *b);
};

struct engine;
/* The backend an engine runs (benchmarks call it directly). */
struct engine_backend *engine_get_backend(struct engine *e);

struct engine_backend *engine_cpu_new(unsigned nthreads);
/* NULL when no OpenCL device can be used (the reason is logged). Only
 * in builds with HOSTD_OPENCL. */
struct engine_backend *engine_opencl_new(void);
/* Benchmark only: op through runtime-owned buffers, written in from and
 * read back into the windows (the copy path of a VMM without userptr). */
uint32_t engine_opencl_run_copied(struct engine_backend *b, const struct vop *op);

#endif
