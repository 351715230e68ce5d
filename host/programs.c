/* SPDX-License-Identifier: MIT */
/*
 * programs.c - the guest's own programs through a worker per context
 * (programs.h, docs/host.md "Guest kernels").
 *
 * Windows: a backing a DISPATCH binds is mapped into the context's worker
 * the first time (WP_MAP, after the supervisor was told the runs it may
 * map) and stays mapped until the backing's last reference goes. Then,
 * before the backing is freed and the guest may reuse its pages, the worker
 * unmaps it and the daemon checks that no mapping of those pages is left in
 * the worker (it is killed otherwise); a worker that is already lost is
 * reaped first, so that its address space is gone.
 */
#include "programs.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine_backend.h"
#include "monotime.h"
#include "stats.h"

#define PROBE_WAIT_NS (60ll * 1000000000)
#define UNMAP_BUDGET_NS (2ll * 1000000000)

struct programs {
	struct programs_config c;
	pthread_mutex_t lock;       /* below; the windows lists of every context */
	pthread_cond_t cv;
	pthread_t probe;
	bool probe_started, probe_done, available;
	struct wp_hello hello;
	uint8_t *info;
	uint32_t info_len;
	uint32_t next_win;          /* window ids, device-wide */
};

/* A backing mapped into a context's worker. */
struct pc_window {
	struct res_backing_user user;   /* first: the backing's gone() finds us */
	struct pc_window *next;
	struct prog_ctx *pc;
	struct res_backing *bk;         /* not referenced: gone() unlinks us */
	uint32_t id;
};

struct prog_ctx {
	struct programs *p;
	uint32_t ctx_id;
	unsigned refs;              /* under the device's serialization */
	pthread_mutex_t start_lock; /* starting the worker */
	struct worker *w;           /* NULL until the first op needs it */
	bool lost;
	struct pc_window *wins;     /* under p->lock */
};

/* ---- the device-wide part ---- */

static struct worker *start_worker(struct programs *p, const struct guest_mem *gm,
				   const char *name, char *err, size_t n)
{
	struct worker_config wc = {
		.path = p->c.worker_path, .uid = p->c.uid, .gid = p->c.gid,
		.data_limit = p->c.data_limit, .host_root = p->c.host_root, .name = name,
	};

	return worker_start(&wc, gm, err, n);
}

/* The probe: a worker that starts, confines itself, opens the device and
 * says what it is, and is gone again. It never sees anything of a guest. */
static void *probe_main(void *arg)
{
	struct programs *p = arg;
	struct guest_mem gm;
	char err[256] = "";
	struct worker *w;

	gm_init(&gm);
	w = start_worker(p, &gm, "probe", err, sizeof(err));
	pthread_mutex_lock(&p->lock);
	if (w) {
		const uint8_t *info;
		uint32_t len;

		p->hello = *worker_hello(w, &info, &len);
		p->info = malloc(len ? len : 1);
		if (p->info) {
			memcpy(p->info, info, len);
			p->info_len = len;
			p->available = true;
		}
	}
	p->probe_done = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->lock);
	if (w) {
		hlog("programs: guest kernels run in a worker per context (%s, %s)",
		     p->hello.platform, p->hello.device);
		worker_free(w);
	} else {
		hlog("programs: off: %s", err);
	}
	gm_clear(&gm);
	return NULL;
}

struct programs *programs_new(const struct programs_config *c)
{
	struct programs *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->c = *c;
	if (!p->c.op_budget_ns)
		p->c.op_budget_ns = PROGRAMS_DEFAULT_BUDGET_NS;
	pthread_mutex_init(&p->lock, NULL);
	mono_cond_init(&p->cv);
	if (c->validate_only) {
		p->hello.features = VGPU_FEATURE_PROGRAMS;
		p->hello.local_mem_size = 64 * 1024;
		p->available = true;
		p->probe_done = true;
		return p;
	}
	if (!c->worker_path) {
		p->probe_done = true;
		return p;
	}
	if (pthread_create(&p->probe, NULL, probe_main, p) == 0)
		p->probe_started = true;
	else
		p->probe_done = true;
	return p;
}

void programs_free(struct programs *p)
{
	if (!p)
		return;
	if (p->probe_started)
		pthread_join(p->probe, NULL);
	free(p->info);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

bool programs_available(struct programs *p)
{
	int64_t deadline = mono_now_ns() + PROBE_WAIT_NS;
	bool r;

	if (!p)
		return false;
	pthread_mutex_lock(&p->lock);
	while (!p->probe_done && mono_now_ns() < deadline)
		mono_cond_wait_until(&p->cv, &p->lock, deadline);
	r = p->available;
	pthread_mutex_unlock(&p->lock);
	return r;
}

void programs_caps(struct programs *p, struct vgpu_compute_caps *caps)
{
	caps->time_budget_ns = p ? p->c.op_budget_ns : 0;
	if (!programs_available(p))
		return;
	caps->features = VGPU_FEATURE_PROGRAMS |
			 (p->hello.features & (VGPU_FEATURE_IL | VGPU_FEATURE_FP64 |
					       VGPU_FEATURE_FP16));
	caps->max_programs = PROGRAMS_MAX_PROGRAMS;
	caps->max_kernels = PROGRAMS_MAX_KERNELS;
	caps->max_kernel_args = PROGRAMS_MAX_ARGS;
	caps->max_program_bytes = PROGRAMS_MAX_PROGRAM_BYTES;
	caps->max_payload_bytes = VGPU_COMPUTE_MAX_PAYLOAD;
}

const uint8_t *programs_device_info(struct programs *p, uint32_t *len)
{
	*len = 0;
	if (!programs_available(p))
		return NULL;
	*len = p->info_len;
	return p->info;
}

uint64_t programs_local_mem(struct programs *p)
{
	return programs_available(p) ? p->hello.local_mem_size : 0;
}

/* ---- a context's programs ---- */

struct prog_ctx *prog_ctx_new(struct programs *p, uint32_t ctx_id)
{
	struct prog_ctx *pc = calloc(1, sizeof(*pc));

	if (!pc)
		return NULL;
	pc->p = p;
	pc->ctx_id = ctx_id;
	pc->refs = 1;
	pthread_mutex_init(&pc->start_lock, NULL);
	return pc;
}

struct prog_ctx *prog_ctx_get(struct prog_ctx *pc)
{
	pc->refs++;
	return pc;
}

void prog_ctx_put(struct prog_ctx *pc)
{
	struct pc_window *x;

	if (!pc || --pc->refs)
		return;
	/* The worker goes with its address space; its windows' backings
	 * forget it. */
	if (pc->w) {
		worker_free(pc->w);
		STAT_SUB(workers, 1);
	}
	pthread_mutex_lock(&pc->p->lock);
	while ((x = pc->wins)) {
		pc->wins = x->next;
		res_backing_del_user(x->bk, &x->user);
		STAT_SUB(worker_windows, 1);
		free(x);
	}
	pthread_mutex_unlock(&pc->p->lock);
	pthread_mutex_destroy(&pc->start_lock);
	free(pc);
}

bool prog_ctx_lost(const struct prog_ctx *pc)
{
	return __atomic_load_n(&pc->lost, __ATOMIC_RELAXED) || (pc->w && worker_lost(pc->w));
}

static void lose(struct prog_ctx *pc, const char *why)
{
	if (!__atomic_exchange_n(&pc->lost, true, __ATOMIC_RELAXED)) {
		STAT_ADD(workers_lost, 1);
		hlog("programs: context %u lost: %s", pc->ctx_id, why);
	}
	if (pc->w)
		worker_kill(pc->w, why);
}

void prog_ctx_lose(struct prog_ctx *pc, const char *why)
{
	lose(pc, why);
}

void prog_ctx_stale(struct prog_ctx *pc, const char *why)
{
	/* A worker started from now on gets the new files. */
	pthread_mutex_lock(&pc->start_lock);
	if (pc->w)
		lose(pc, why);
	pthread_mutex_unlock(&pc->start_lock);
}

/* The worker, started on first use. */
static struct worker *worker_of(struct prog_ctx *pc, const struct guest_mem *gm)
{
	struct worker *w;

	pthread_mutex_lock(&pc->start_lock);
	if (!pc->w && !pc->lost) {
		char err[256] = "", name[32];

		snprintf(name, sizeof(name), "context %u", pc->ctx_id);
		pc->w = start_worker(pc->p, gm, name, err, sizeof(err));
		if (pc->w) {
			STAT_ADD(workers, 1);
			STAT_ADD(workers_started, 1);
		} else {
			lose(pc, err);
		}
	}
	w = pc->lost ? NULL : pc->w;
	pthread_mutex_unlock(&pc->start_lock);
	return w;
}

/* ---- windows in the worker ---- */

/* The runs of the front-end's files that hold b, merged where contiguous:
 * 0, or -1 when a piece is not page aligned or has no file. */
static int backing_runs(const struct res_backing *b, const struct guest_mem *gm,
			struct wp_run **out, uint32_t *nout)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	struct wp_run *runs = calloc(b->nents, sizeof(*runs));
	uint32_t n = 0;

	if (!runs)
		return -1;
	for (uint32_t i = 0; i < b->nents; i++) {
		const struct res_entry *e = &b->ents[i];
		uint64_t off;
		uint32_t region = UINT32_MAX;
		bool sealed;
		int fd;

		if (gm_file_range(gm, e->gpa, e->len, &fd, &off, &sealed))
			goto bad;
		for (uint32_t r = 0; r < gm->nregions; r++)
			if (gm->r[r].fd == fd && e->gpa >= gm->r[r].gpa &&
			    e->gpa - gm->r[r].gpa < gm->r[r].size)
				region = r;
		/* Every piece but the last a whole number of pages. */
		if (region == UINT32_MAX || off % page || (i + 1 < b->nents && e->len % page))
			goto bad;
		if (n && runs[n - 1].region == region && runs[n - 1].file_off + runs[n - 1].len == off &&
		    runs[n - 1].len % page == 0) {
			runs[n - 1].len += e->len;
			continue;
		}
		runs[n].region = region;
		runs[n].file_off = off;
		runs[n].len = e->len;
		n++;
	}
	*out = runs;
	*nout = n;
	return 0;
bad:
	free(runs);
	return -1;
}

uint32_t programs_check_backing(const struct res_backing *b, const struct guest_mem *gm)
{
	struct wp_run *runs;
	uint32_t n;

	if (backing_runs(b, gm, &runs, &n))
		return VGPU_COMPUTE_E_NOWINDOW;
	free(runs);
	return VGPU_COMPUTE_OK;
}

/* The backing's last reference went: the worker lets go of its pages
 * before the guest may reuse them. */
static void window_gone(struct res_backing_user *u, struct res_backing *b)
{
	struct pc_window *x = (struct pc_window *)u;
	struct prog_ctx *pc = x->pc;
	struct wp_unmap um = { .res = x->id };
	struct worker_reply r;

	(void)b;
	pthread_mutex_lock(&pc->p->lock);
	for (struct pc_window **pp = &pc->wins; *pp; pp = &(*pp)->next)
		if (*pp == x) {
			*pp = x->next;
			break;
		}
	pthread_mutex_unlock(&pc->p->lock);
	if (!worker_lost(pc->w) &&
	    worker_call(pc->w, WP_UNMAP, 0, &um, sizeof(um), NULL, 0, mono_now_ns() + UNMAP_BUDGET_NS,
			&r) == 0) {
		free(r.data);
		if (r.status != VGPU_COMPUTE_OK)
			lose(pc, "it did not unmap a window when asked");
	}
	/* Checks that nothing of the pages is left mapped (kills if so). */
	worker_forbid(pc->w, x->id);
	if (worker_lost(pc->w)) {
		lose(pc, "its window could not be unmapped");
		/* Dead before the pages go back to the guest. */
		worker_reap(pc->w);
	}
	STAT_SUB(worker_windows, 1);
	free(x);
}

/* The window id of b in the context's worker, mapping it there first. */
static uint32_t window_of(struct prog_ctx *pc, struct worker *w, const struct guest_mem *gm,
			  struct res_backing *b, uint32_t *id)
{
	struct pc_window *x;
	struct wp_run *runs = NULL;
	struct worker_reply r;
	uint32_t n = 0, rc;
	uint8_t *msg;
	size_t len;

	pthread_mutex_lock(&pc->p->lock);
	for (x = pc->wins; x && x->bk != b; x = x->next)
		;
	if (x) {
		*id = x->id;
		pthread_mutex_unlock(&pc->p->lock);
		return VGPU_COMPUTE_OK;
	}
	*id = ++pc->p->next_win;
	if (*id == 0)
		*id = ++pc->p->next_win;
	pthread_mutex_unlock(&pc->p->lock);
	if (backing_runs(b, gm, &runs, &n))
		return VGPU_COMPUTE_E_NOWINDOW;
	len = sizeof(struct wp_map) + (size_t)n * sizeof(*runs);
	msg = malloc(len);
	if (!msg || worker_allow(w, *id, runs, n, !b->readonly)) {
		free(msg);
		free(runs);
		return VGPU_COMPUTE_E_DEVICE;
	}
	*(struct wp_map *)(void *)msg = (struct wp_map){ .res = *id, .nruns = n, .size = b->size,
							 .readonly = b->readonly };
	memcpy(msg + sizeof(struct wp_map), runs, (size_t)n * sizeof(*runs));
	free(runs);
	rc = worker_call(w, WP_MAP, 0, msg, len, NULL, 0, mono_now_ns() + pc->p->c.op_budget_ns, &r)
		     ? VGPU_COMPUTE_E_LOST : (uint32_t)r.status;
	free(msg);
	if (rc == VGPU_COMPUTE_E_LOST) {
		worker_forbid(w, *id);
		return rc;
	}
	free(r.data);
	if (rc != VGPU_COMPUTE_OK) {
		worker_forbid(w, *id);
		return rc == VGPU_COMPUTE_E_NOWINDOW ? rc : VGPU_COMPUTE_E_DEVICE;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		/* Mapped but untracked would outlive the backing: lose it. */
		lose(pc, "out of memory");
		return VGPU_COMPUTE_E_LOST;
	}
	x->user.gone = window_gone;
	x->pc = pc;
	x->bk = b;
	x->id = *id;
	pthread_mutex_lock(&pc->p->lock);
	x->next = pc->wins;
	pc->wins = x;
	pthread_mutex_unlock(&pc->p->lock);
	res_backing_add_user(b, &x->user);
	STAT_ADD(worker_windows, 1);
	return VGPU_COMPUTE_OK;
}

/* ---- the ops ---- */

/* A worker's result code, as far as it is one the device may report. */
static uint32_t worker_status(int32_t s)
{
	switch (s) {
	case VGPU_COMPUTE_OK:
	case VGPU_COMPUTE_E_MALFORMED:
	case VGPU_COMPUTE_E_RANGE:
	case VGPU_COMPUTE_E_READONLY:
	case VGPU_COMPUTE_E_NOWINDOW:
	case VGPU_COMPUTE_E_DEVICE:
	case VGPU_COMPUTE_E_OBJECT:
	case VGPU_COMPUTE_E_ARGS:
	case VGPU_COMPUTE_E_WORKSIZE:
		return (uint32_t)s;
	default:
		return VGPU_COMPUTE_E_DEVICE;
	}
}

/*
 * The budget of a call: a dispatch or a release gets the op budget; a
 * build, a binary and a kernel's creation run the OpenCL compiler, which
 * the guest cannot make run its own code, so they get the op budget but at
 * least PROGRAMS_BUILD_BUDGET_NS (a short op budget, 2 s for tests, must
 * not fail an honest build on a loaded host; an endless build still ends).
 */
static uint64_t budget_of(const struct prog_ctx *pc, uint32_t type)
{
	uint64_t b = pc->p->c.op_budget_ns;

	if ((type == WP_BUILD || type == WP_BINARY || type == WP_KERNEL) &&
	    b < PROGRAMS_BUILD_BUDGET_NS)
		b = PROGRAMS_BUILD_BUDGET_NS;
	return b;
}

/* Call the worker with the op's budget; a failed call loses the context. */
static uint32_t call(struct prog_ctx *pc, struct worker *w, uint32_t type, uint32_t ring,
		     const void *a, size_t alen, const void *b, size_t blen, struct worker_reply *r)
{
	int rc = worker_call(w, type, ring, a, alen, b, blen,
			     mono_now_ns() + (int64_t)budget_of(pc, type), r);

	if (rc == -ETIMEDOUT) {
		lose(pc, "an op ran past the context's time budget");
		return VGPU_COMPUTE_E_TIMEOUT;
	}
	if (rc) {
		lose(pc, rc == -EPIPE ? "its worker died" : "its worker could not be called");
		return VGPU_COMPUTE_E_LOST;
	}
	return worker_status(r->status);
}

/* dst[off, +cap) = head (hlen bytes), then as much of data as fits. */
static uint32_t write_out(const struct vop *op, const struct guest_mem *gm, const void *head,
			  size_t hlen, const void *data, uint64_t dlen, uint64_t *written)
{
	uint64_t room = op->arg2 - hlen, n = dlen < room ? dlen : room;

	*written = n;
	if (res_write(op->dst, gm, op->dst_off, head, hlen) ||
	    (n && res_write(op->dst, gm, op->dst_off + hlen, data, n)))
		return VGPU_COMPUTE_E_NOBACKING;
	return VGPU_COMPUTE_OK;
}

static uint32_t op_build(struct prog_ctx *pc, struct worker *w, const struct guest_mem *gm,
			 const struct vop *op)
{
	struct vgpu_program_input in;
	struct wp_build wb = { 0 };
	struct vgpu_build_result br = { 0 };
	struct wp_build_reply rep;
	struct worker_reply r;
	uint8_t *data = NULL;
	uint64_t written = 0;
	uint32_t rc;

	/* The guest may change its input while this runs: one copy, then
	 * checks on the copy. */
	data = malloc(op->arg1);
	if (!data)
		return VGPU_COMPUTE_E_DEVICE;
	if (res_read(op->src, gm, op->src_off, data, op->arg1)) {
		free(data);
		return VGPU_COMPUTE_E_NOBACKING;
	}
	memcpy(&in, data, sizeof(in));
	in.kind = le32toh(in.kind);
	in.options_len = le32toh(in.options_len);
	in.data_len = le64toh(in.data_len);
	if (in.options_len >= 4096 || in.data_len == 0 ||
	    in.data_len > PROGRAMS_MAX_PROGRAM_BYTES ||
	    sizeof(in) + (uint64_t)in.options_len + in.data_len != op->arg1 ||
	    (in.kind != VGPU_PROGRAM_SOURCE && in.kind != VGPU_PROGRAM_BINARY &&
	     in.kind != VGPU_PROGRAM_IL)) {
		free(data);
		return VGPU_COMPUTE_E_MALFORMED;
	}
	if (in.kind == VGPU_PROGRAM_IL && !(pc->p->hello.features & VGPU_FEATURE_IL)) {
		/* No IL on this device: a failed build, said in the record. */
		static const char msg[] = "the device takes no intermediate language (SPIR-V)";

		free(data);
		br.status = htole32((uint32_t)-30); /* CL_INVALID_VALUE */
		br.log_size = htole64(sizeof(msg) - 1);
		rc = write_out(op, gm, &br, sizeof(br), msg, sizeof(msg) - 1, &written);
		if (rc == VGPU_COMPUTE_OK) {
			br.log_written = htole64(written);
			rc = res_write(op->dst, gm, op->dst_off, &br, sizeof(br)) ?
			     VGPU_COMPUTE_E_NOBACKING : VGPU_COMPUTE_OK;
		}
		return rc;
	}
	wb.program = (uint32_t)op->arg0;
	wb.kind = in.kind;
	wb.options_len = in.options_len;
	wb.data_len = in.data_len;
	rc = call(pc, w, WP_BUILD, op->ring, &wb, sizeof(wb), data + sizeof(in),
		  in.options_len + in.data_len, &r);
	free(data);
	if (rc != VGPU_COMPUTE_OK) {
		if (rc != VGPU_COMPUTE_E_TIMEOUT && rc != VGPU_COMPUTE_E_LOST)
			free(r.data);
		return rc;
	}
	if (r.len < sizeof(rep)) {
		free(r.data);
		lose(pc, "a malformed build answer");
		return VGPU_COMPUTE_E_LOST;
	}
	memcpy(&rep, r.data, sizeof(rep));
	if (rep.log_size != r.len - sizeof(rep)) {
		free(r.data);
		lose(pc, "a malformed build answer");
		return VGPU_COMPUTE_E_LOST;
	}
	br.status = (int32_t)htole32((uint32_t)rep.status);
	br.num_kernels = htole32(rep.num_kernels);
	br.log_size = htole64(rep.log_size);
	br.binary_size = htole64(rep.binary_size);
	rc = write_out(op, gm, &br, sizeof(br), r.data + sizeof(rep), rep.log_size, &written);
	if (rc == VGPU_COMPUTE_OK) {
		br.log_written = htole64(written);
		rc = res_write(op->dst, gm, op->dst_off, &br, sizeof(br)) ? VGPU_COMPUTE_E_NOBACKING
									   : VGPU_COMPUTE_OK;
	}
	free(r.data);
	return rc;
}

static uint32_t op_blob(struct prog_ctx *pc, struct worker *w, const struct guest_mem *gm,
			const struct vop *op)
{
	struct wp_object o = { .id = (uint32_t)op->arg0 };
	struct vgpu_blob_header bh = { 0 };
	struct worker_reply r = { 0 };
	const uint8_t *data;
	uint32_t len, rc;
	uint64_t written = 0;

	if (op->opcode == VGPU_OP_QUERY) {
		data = programs_device_info(pc->p, &len);
	} else {
		rc = call(pc, w, WP_BINARY, op->ring, &o, sizeof(o), NULL, 0, &r);
		if (rc != VGPU_COMPUTE_OK) {
			if (rc != VGPU_COMPUTE_E_TIMEOUT && rc != VGPU_COMPUTE_E_LOST)
				free(r.data);
			return rc;
		}
		data = r.data;
		len = r.len;
	}
	bh.size = htole64(len);
	/* All of it or nothing, so that a binary is never cut short. */
	rc = VGPU_COMPUTE_OK;
	if (sizeof(bh) + (uint64_t)len <= op->arg2) {
		rc = write_out(op, gm, &bh, sizeof(bh), data, len, &written);
		bh.written = htole64(rc == VGPU_COMPUTE_OK ? written : 0);
	}
	if (res_write(op->dst, gm, op->dst_off, &bh, sizeof(bh)))
		rc = VGPU_COMPUTE_E_NOBACKING;
	free(r.data);
	return rc;
}

static uint32_t op_release(struct prog_ctx *pc, struct worker *w, const struct vop *op)
{
	struct wp_object o = { .id = (uint32_t)op->arg0 };
	struct worker_reply r;
	uint32_t rc = call(pc, w, op->opcode == VGPU_OP_PROGRAM_RELEASE ? WP_PROGRAM_RELEASE
									 : WP_KERNEL_RELEASE,
			   op->ring, &o, sizeof(o), NULL, 0, &r);

	if (rc != VGPU_COMPUTE_E_TIMEOUT && rc != VGPU_COMPUTE_E_LOST)
		free(r.data);
	return rc;
}

static uint32_t op_kernel(struct prog_ctx *pc, struct worker *w, const struct guest_mem *gm,
			  const struct vop *op)
{
	struct wp_kernel k = { .kernel = (uint32_t)op->arg0, .program = (uint32_t)op->arg1,
			       .name_len = (uint32_t)strlen((const char *)op->payload) };
	struct vgpu_kernel_info info;
	struct worker_reply r;
	uint64_t written;
	uint32_t rc = call(pc, w, WP_KERNEL, op->ring, &k, sizeof(k), op->payload, k.name_len, &r);

	if (rc != VGPU_COMPUTE_OK) {
		if (rc != VGPU_COMPUTE_E_TIMEOUT && rc != VGPU_COMPUTE_E_LOST)
			free(r.data);
		return rc;
	}
	memset(&info, 0, sizeof(info));
	if (r.cl_error) {
		/* No such kernel (CL_INVALID_KERNEL_NAME, ...): a record
		 * saying so, no kernel made. */
		info.status = (int32_t)htole32((uint32_t)r.cl_error);
		free(r.data);
		return write_out(op, gm, &info, sizeof(info), NULL, 0, &written);
	}
	if (r.len < sizeof(info)) {
		free(r.data);
		lose(pc, "a malformed kernel answer");
		return VGPU_COMPUTE_E_LOST;
	}
	memcpy(&info, r.data, sizeof(info));
	if (info.num_args > PROGRAMS_MAX_ARGS ||
	    r.len != sizeof(info) + (uint64_t)info.num_args * sizeof(struct vgpu_kernel_arg_info)) {
		free(r.data);
		lose(pc, "a malformed kernel answer");
		return VGPU_COMPUTE_E_LOST;
	}
	/* The strings are NUL-terminated whatever the worker sent. */
	for (uint32_t i = 0; i < info.num_args; i++) {
		struct vgpu_kernel_arg_info *a =
			(void *)(r.data + sizeof(info) + i * sizeof(struct vgpu_kernel_arg_info));

		a->type_name[VGPU_ARG_NAME_MAX - 1] = 0;
		a->name[VGPU_ARG_NAME_MAX - 1] = 0;
	}
	info.status = 0;
	rc = write_out(op, gm, &info, sizeof(info), r.data + sizeof(info), r.len - sizeof(info),
		       &written);
	free(r.data);
	return rc;
}

static uint32_t op_dispatch(struct prog_ctx *pc, struct worker *w, const struct guest_mem *gm,
			    const struct vop *op)
{
	struct wp_dispatch wd = { .kernel = (uint32_t)op->arg0, .payload_len = op->payload_len };
	uint8_t *payload = malloc(op->payload_len);
	struct vgpu_dispatch *d;
	struct vgpu_dispatch_arg *args;
	struct worker_reply r;
	uint32_t rc = VGPU_COMPUTE_OK;

	if (!payload)
		return VGPU_COMPUTE_E_DEVICE;
	/* The payload as validated, buffer arguments naming the worker's
	 * windows instead of resource ids. */
	memcpy(payload, op->payload, op->payload_len);
	d = (void *)payload;
	args = (void *)(payload + sizeof(*d));
	for (uint32_t i = 0; i < d->num_args && rc == VGPU_COMPUTE_OK; i++) {
		uint32_t id;

		if (args[i].kind != VGPU_DARG_BUFFER)
			continue;
		rc = window_of(pc, w, gm, op->bind[i], &id);
		args[i].res = id;
	}
	if (rc == VGPU_COMPUTE_OK) {
		rc = call(pc, w, WP_DISPATCH, op->ring, &wd, sizeof(wd), payload, op->payload_len,
			  &r);
		if (rc != VGPU_COMPUTE_E_TIMEOUT && rc != VGPU_COMPUTE_E_LOST)
			free(r.data);
	}
	free(payload);
	STAT_ADD(dispatches, 1);
	return rc;
}

uint32_t prog_run(struct prog_ctx *pc, const struct guest_mem *gm, const struct vop *op)
{
	struct worker *w;

	if (op->opcode == VGPU_OP_QUERY)
		return op_blob(pc, NULL, gm, op);
	if (pc->p->c.validate_only || prog_ctx_lost(pc))
		return VGPU_COMPUTE_E_LOST;
	w = worker_of(pc, gm);
	if (!w)
		return VGPU_COMPUTE_E_LOST;
	switch (op->opcode) {
	case VGPU_OP_PROGRAM_BUILD:
		return op_build(pc, w, gm, op);
	case VGPU_OP_PROGRAM_BINARY:
		return op_blob(pc, w, gm, op);
	case VGPU_OP_PROGRAM_RELEASE:
	case VGPU_OP_KERNEL_RELEASE:
		return op_release(pc, w, op);
	case VGPU_OP_KERNEL_CREATE:
		return op_kernel(pc, w, gm, op);
	case VGPU_OP_DISPATCH:
		return op_dispatch(pc, w, gm, op);
	default:
		return VGPU_COMPUTE_E_OPCODE;
	}
}
