/* SPDX-License-Identifier: MIT */
/*
 * engine.h - the compute engine: validates and runs a vgpu_compute.h
 * command stream on resources attached to the submitting context.
 */
#ifndef HOSTD_ENGINE_H
#define HOSTD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest_mem.h"
#include "resource.h"
#include "vgpu_compute.h"

struct vop;
struct prog_ctx;
struct programs;

/* Data-parallel ops are cut into chunks of this many bytes (a multiple of
 * 4), each chunk run by one worker thread. */
#define ENGINE_CHUNK_BYTES (256u * 1024u)
#define ENGINE_MAX_OP_BYTES (1ull << 32)

struct engine;

/* Resource id -> resource, or NULL if unknown or not attached to the
 * submitting context. The engine keeps only the resource's backing. */
typedef const struct gpu_resource *(*engine_lookup_fn)(void *opaque, uint32_t id);

struct engine_result {
	uint32_t result;        /* enum vgpu_compute_result */
	uint32_t op_index;
	uint64_t ops_done;
	bool status_written;
};

/* The CPU backend with nthreads workers. */
struct engine *engine_new(unsigned nthreads);
/*
 * backend: enum vgpu_compute_backend. VGPU_BACKEND_OPENCL falls back to
 * the CPU backend (and logs why) when no OpenCL device can be used.
 */
struct engine *engine_new_backend(unsigned nthreads, uint32_t backend);
void engine_free(struct engine *e);
/* The backend in use (enum vgpu_compute_backend) and its name. */
uint32_t engine_backend_id(const struct engine *e);
const char *engine_backend_name(const struct engine *e);
/* Whether the ops work on the guest's pages themselves (the CPU backend
 * always; OpenCL when its device passed the zero-copy gate at start). */
bool engine_zero_copy(const struct engine *e);

/*
 * Every op runs under a time budget: it gets the deadline now + ns when it
 * starts, and stops with VGPU_COMPUTE_E_TIMEOUT once it is passed; the
 * submit then ends there (op_index that op). 0: no budget. Default
 * ENGINE_DEFAULT_OP_BUDGET_NS. Any thread; ops that start later see it.
 */
#define ENGINE_DEFAULT_OP_BUDGET_NS (60ull * 1000000000ull)
void engine_set_op_budget(struct engine *e, uint64_t ns);
uint64_t engine_op_budget(const struct engine *e);
/*
 * The abort flag of the device the calling thread works for (NULL: none):
 * engine_run on this thread hands it to every op, which stops with
 * VGPU_COMPUTE_E_DEVICE soon after it is set (set without a lock, read
 * with __atomic_load_n). Each queue thread and ring worker sets its own.
 */
void engine_set_thread_abort(const bool *flag);

/* The caps of capset version `version` (little-endian, in *caps); returns
 * the size of that version's layout, or 0 for a version not served. */
size_t engine_caps(const struct engine *e, uint32_t version, struct vgpu_compute_caps *caps);

/*
 * A submit after validation, ready to run: every resource it names
 * resolved to its backing and referenced (the ops' and the status
 * record's), so that it can run later, on another thread, while the
 * resources and their id maps change. When validation failed it holds only
 * the failure and the status record, which running it then writes.
 */
struct engine_job {
	struct engine_result res;       /* the failure, when !valid */
	bool valid;                     /* the ops run */
	struct res_backing *status;     /* the status record's backing; NULL: none */
	uint64_t status_off;
	uint32_t num_ops;
	struct vop *ops;                /* validated; each references its backings */
	struct prog_ctx *pc;            /* referenced when an op runs a program */
};

/*
 * Decode and validate the whole submit into j (docs/compute-capset.md,
 * 3.2), resolving resource ids through lookup: done where device state is
 * owned. Nothing is written to guest memory here. pc is the submitting
 * context's programs (NULL: version 3 ops fail with E_NOPROGRAMS) and
 * ring the ring it came on (the worker keeps each ring's order).
 */
void engine_prepare(struct engine *e, const struct guest_mem *gm, const uint8_t *data,
		    size_t size, engine_lookup_fn lookup, void *opaque, struct prog_ctx *pc,
		    uint32_t ring, struct engine_job *j);
/*
 * Run a prepared submit: its ops when it is valid, then the status record.
 * Returns 0 when every op ran, -1 otherwise (then, after a failed
 * validation, nothing but the status record has been written). Any thread;
 * gm must be the table the job was prepared against, unchanged since.
 */
int engine_run(struct engine *e, const struct guest_mem *gm, struct engine_job *j,
	       struct engine_result *res);
/* Drop the job's references and its ops (where device state is owned). */
void engine_job_release(struct engine_job *j);

/* engine_prepare, engine_run and engine_job_release at once. */
int engine_submit(struct engine *e, const struct guest_mem *gm,
		  const uint8_t *data, size_t size, engine_lookup_fn lookup,
		  void *opaque, struct engine_result *res);

const char *engine_result_name(uint32_t result);

/* The device's programs (programs.h), used by version 3 ops and caps;
 * set once before the first submit. */
void engine_set_programs(struct engine *e, struct programs *p);

#endif
