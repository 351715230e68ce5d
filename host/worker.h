/* SPDX-License-Identifier: MIT */
/*
 * worker.h - the daemon's side of a context's worker process: starting it
 * in its namespaces, supervising every mapping of guest RAM it makes,
 * calling it with a deadline, and killing it (docs/host.md, "Guest
 * kernels").
 *
 * Everything the worker sends back is untrusted: replies are bounded by
 * WP_MAX_MSG and their sizes are for the caller to check against what it
 * asked for.
 */
#ifndef HOSTD_WORKER_H
#define HOSTD_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "guest_mem.h"
#include "worker_proto.h"

struct worker_config {
	const char *path;          /* the virtgpu-worker binary */
	uid_t uid;                 /* what it runs as when the daemon is root */
	gid_t gid;
	uint64_t data_limit;       /* its RLIMIT_DATA, bytes (0: the worker's default) */
	uint64_t scratch_bytes;    /* its /tmp and compiler cache, each */
	unsigned int nofile;       /* its RLIMIT_NOFILE (0: the worker's default) */
	bool host_root;            /* tests: keep the host's root (no new root) */
	const char *name;          /* for the log ("context 3") */
};

struct worker_reply {
	int32_t status;            /* 0 or a vgpu_compute_result */
	int32_t cl_error;          /* the OpenCL error the worker saw */
	uint8_t *data;             /* len bytes, malloc'd (the caller frees) */
	uint32_t len;
};

struct worker;

/*
 * Start a worker with the memory files of gm's regions. Waits (up to
 * 30 s) for its seccomp listener and its WP_HELLO. NULL with err set.
 */
struct worker *worker_start(const struct worker_config *c, const struct guest_mem *gm,
			    char *err, size_t errlen);

/* The worker's WP_HELLO, and the device info records after it. */
const struct wp_hello *worker_hello(const struct worker *w, const uint8_t **info,
				    uint32_t *info_len);

/* Allow the worker to map these runs (before WP_MAP), and forbid them
 * again (after WP_UNMAP's answer): every mapping of guest RAM the worker
 * still has must then lie in what is allowed, or it is killed. */
int worker_allow(struct worker *w, uint32_t res, const struct wp_run *runs, uint32_t n,
		 bool writable);
int worker_forbid(struct worker *w, uint32_t res);

/*
 * Send a request (a and b concatenated) and wait for its answer until
 * deadline (CLOCK_MONOTONIC ns; -1: no deadline). 0 with *r filled;
 * -ETIMEDOUT: the deadline passed and the worker was killed; -EPIPE: the
 * worker is gone (it died, or was killed before). After either the worker
 * is lost for good.
 */
int worker_call(struct worker *w, uint32_t type, uint32_t ring, const void *a, size_t alen,
		const void *b, size_t blen, int64_t deadline, struct worker_reply *r);

bool worker_lost(const struct worker *w);
pid_t worker_pid(const struct worker *w);
/* Kill it (SIGKILL) and wake every caller; it is lost from then on. */
void worker_kill(struct worker *w, const char *why);
/* Wait until the process is gone (after worker_kill, or when it died):
 * then nothing of guest RAM is mapped in it any more. */
void worker_reap(struct worker *w);
/* Kill, reap and free. NULL is accepted. */
void worker_free(struct worker *w);

/* Mapping requests the supervisor refused, over the worker's life. */
uint64_t worker_refused_maps(const struct worker *w);

#endif
