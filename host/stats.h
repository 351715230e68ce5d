/* SPDX-License-Identifier: MIT */
/* stats.h - process-wide counters and logging of virtgpu-hostd. */
#ifndef HOSTD_STATS_H
#define HOSTD_STATS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "vgpu_compute.h"

struct hostd_stats {
	atomic_uint_fast64_t connections;
	atomic_uint_fast64_t vu_msgs;
	atomic_uint_fast64_t vu_errors;
	atomic_uint_fast64_t cmds;          /* control queue commands served */
	atomic_uint_fast64_t cmd_errors;    /* answered with VIRTIO_GPU_RESP_ERR_* */
	atomic_uint_fast64_t bad_chains;    /* descriptor chains that could not be read */
	atomic_uint_fast64_t cursor_cmds;
	atomic_uint_fast64_t fences;
	atomic_uint_fast64_t resources;     /* live */
	atomic_uint_fast64_t resource_bytes;/* live, sum of sizes */
	atomic_uint_fast64_t backings;      /* live: resources' pages, and those only jobs still use */
	atomic_uint_fast64_t backing_walks; /* backings checked entry by entry (once per memory table) */
	atomic_uint_fast64_t contexts;      /* live */
	atomic_uint_fast64_t mapped_bytes;  /* guest RAM mapped now */
	atomic_uint_fast64_t submits;
	atomic_uint_fast64_t submit_errors;
	atomic_uint_fast64_t regions_sealed; /* memory regions whose file cannot shrink */
	atomic_uint_fast64_t win_live;      /* zero-copy windows mapped now */
	atomic_uint_fast64_t win_maps;      /* mappings they hold (budgeted) */
	atomic_uint_fast64_t win_bytes;
	atomic_uint_fast64_t win_fallback[7]; /* resources left without a window, by enum win_reason */
	atomic_uint_fast64_t op_timeouts;   /* ops stopped at their time budget (E_TIMEOUT) */
	atomic_uint_fast64_t op_aborts;     /* ops stopped because the device stopped */
	atomic_uint_fast64_t cl_zero_copy;  /* enum hostd_cl_zero_copy: the start-up gate's answer */
	atomic_uint_fast64_t cl_copied_bytes; /* bytes ops moved through a device that failed the gate */
	atomic_uint_fast64_t cl_buffers;    /* OpenCL buffers made over windows (one per window) */
	atomic_uint_fast64_t cl_buffers_live;
	atomic_uint_fast64_t cl_threads;    /* live per-thread OpenCL states (queue, kernels) */
	atomic_uint_fast64_t cl_nowindow;   /* submits refused: an op's resource had no window */
	atomic_uint_fast64_t cl_errors;     /* OpenCL calls that failed while running */
	atomic_uint_fast64_t workers;       /* worker processes alive */
	atomic_uint_fast64_t workers_started;
	atomic_uint_fast64_t workers_lost;  /* killed (deadline, misbehaviour) or died */
	atomic_uint_fast64_t worker_refused_maps; /* mmap()s of guest RAM refused */
	atomic_uint_fast64_t dispatches;    /* DISPATCH ops sent to workers */
	atomic_uint_fast64_t worker_windows; /* backings mapped into workers now */
	atomic_uint_fast64_t op_count[VGPU_OP_COUNT];
	atomic_uint_fast64_t op_bytes[VGPU_OP_COUNT];
};

enum hostd_cl_zero_copy {
	HOSTD_CL_NONE = 0,      /* no OpenCL backend started */
	HOSTD_CL_ZERO_COPY = 1, /* the device passed the zero-copy gate */
	HOSTD_CL_COPYING = 2,   /* it failed: it is treated as copying */
};

extern struct hostd_stats hostd_stats;
extern int hostd_verbose;

#define STAT_ADD(field, n) atomic_fetch_add_explicit(&hostd_stats.field, (n), memory_order_relaxed)
#define STAT_SUB(field, n) atomic_fetch_sub_explicit(&hostd_stats.field, (n), memory_order_relaxed)
#define STAT_GET(field) atomic_load_explicit(&hostd_stats.field, memory_order_relaxed)
#define STAT_SET(field, v) atomic_store_explicit(&hostd_stats.field, (v), memory_order_relaxed)

void stats_print(FILE *f);

/* Messages to stderr; hlog_v only with --verbose. */
void hlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define hlog_v(...) do { if (hostd_verbose) hlog(__VA_ARGS__); } while (0)

#endif
