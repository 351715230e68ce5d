/* SPDX-License-Identifier: MIT */
/*
 * programs.h - the guest's own programs (capset version 3): each context
 * that uses them gets a worker process (worker.h) that builds and runs
 * them; this file keeps the device-wide settings, a context's worker and
 * the windows it has mapped, and runs the version 3 ops through it.
 *
 * The daemon validates every op (engine.c) before it gets here; what the
 * worker answers is checked against the op before it reaches guest memory.
 */
#ifndef HOSTD_PROGRAMS_H
#define HOSTD_PROGRAMS_H

#include <stdbool.h>
#include <stdint.h>

#include "guest_mem.h"
#include "resource.h"
#include "vgpu_compute.h"
#include "worker.h"

struct vop;

/* Device-wide: how workers are started, and what the device offers. */
struct programs_config {
	const char *worker_path;    /* NULL: programs are off */
	uint64_t op_budget_ns;      /* time budget of one op (worker call) */
	uid_t uid;                  /* workers' uid and gid when the daemon is root */
	gid_t gid;
	uint64_t data_limit;        /* workers' RLIMIT_DATA */
	bool host_root;             /* tests only: workers keep the host's root */
	/* Fuzzing only: the device offers programs and validates every
	 * version 3 op, but starts no worker: each op that passes
	 * validation then fails with E_LOST (a QUERY answers no records). */
	bool validate_only;
};

#define PROGRAMS_MAX_PROGRAMS 1024u
#define PROGRAMS_MAX_KERNELS 4096u
#define PROGRAMS_MAX_ARGS 256u
#define PROGRAMS_MAX_PROGRAM_BYTES (16u << 20)
#define PROGRAMS_DEFAULT_BUDGET_NS (60ull * 1000000000)
/* What a build, a binary or a kernel's creation may take at least. */
#define PROGRAMS_BUILD_BUDGET_NS (60ull * 1000000000)

struct programs;
struct prog_ctx;

/*
 * Set up programs for the device. When the worker can run (a probe worker
 * starts, confines itself and finds an OpenCL device), the device offers
 * them; the probe's answers (device info, features) stand for every worker.
 * The probe runs on a thread of its own: programs_available() waits for it.
 * Never fails: without a usable worker the device offers no programs.
 */
struct programs *programs_new(const struct programs_config *c);
void programs_free(struct programs *p);
/* Whether the device runs programs (waits for the probe, bounded). */
bool programs_available(struct programs *p);
/* Fill caps' version 3 fields (features, limits, budget); host order. */
void programs_caps(struct programs *p, struct vgpu_compute_caps *caps);
/* The probe's device info records (VGPU_QUERY_DEVICE_INFO). */
const uint8_t *programs_device_info(struct programs *p, uint32_t *len);
/* The probe's local memory size (DISPATCH's local arguments). */
uint64_t programs_local_mem(struct programs *p);

/*
 * A context's programs: created with the context, the worker started at
 * its first version 3 op. Referenced (plain counters under the device's
 * serialization, like backings): by the context and by every prepared job
 * with a version 3 op.
 */
struct prog_ctx *prog_ctx_new(struct programs *p, uint32_t ctx_id);
struct prog_ctx *prog_ctx_get(struct prog_ctx *pc);
void prog_ctx_put(struct prog_ctx *pc);
/* The worker is gone (killed or died): every later op fails (E_LOST). */
bool prog_ctx_lost(const struct prog_ctx *pc);
/* Make the context lost now. */
void prog_ctx_lose(struct prog_ctx *pc, const char *why);
/* The guest's memory table changed: a worker already started has stale
 * files and is lost; one not started yet will get the new ones. */
void prog_ctx_stale(struct prog_ctx *pc, const char *why);

/*
 * Can this backing be mapped into a worker (page-aligned runs of the
 * front-end's files)? VGPU_COMPUTE_OK or E_NOWINDOW.
 */
uint32_t programs_check_backing(const struct res_backing *b, const struct guest_mem *gm);

/* Run one validated version 3 op (any thread): VGPU_COMPUTE_OK or a
 * result code. */
uint32_t prog_run(struct prog_ctx *pc, const struct guest_mem *gm, const struct vop *op);

#endif
