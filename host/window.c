/* SPDX-License-Identifier: MIT */
/* window.c - zero-copy windows over the front-end's memory file. */
#include "window.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "resource.h"
#include "stats.h"

static atomic_bool enabled;
static atomic_uint_fast64_t budget;        /* 0: not set yet */
static atomic_uint_fast64_t maps_in_use;
static atomic_uint_fast64_t span_in_use;    /* address space reserved */

/* Entries may alias: many resources over the same guest pages would
 * reserve address space without bound. All windows together stay within
 * 1 TiB (x86-64 user space is 128 TiB). */
#define WIN_SPAN_LIMIT (1ull << 40)

static uint64_t page_size(void)
{
	long pg = sysconf(_SC_PAGESIZE);

	return pg > 0 ? (uint64_t)pg : 4096u;
}

void win_set_enabled(bool on)
{
	atomic_store(&enabled, on);
}

bool win_enabled(void)
{
	return atomic_load(&enabled);
}

void win_set_budget(uint64_t maps)
{
	atomic_store(&budget, maps ? maps : 1);
}

uint64_t win_budget(void)
{
	uint64_t b = atomic_load(&budget);

	if (!b) {
		/* Half of the process's mappings: the rest stays for the
		 * regions, the heap, thread stacks and the OpenCL runtime. */
		unsigned long long max = 65530;
		FILE *f = fopen("/proc/sys/vm/max_map_count", "re");

		if (f) {
			if (fscanf(f, "%llu", &max) != 1 || max < 1024)
				max = 65530;
			fclose(f);
		}
		b = max / 2;
		atomic_store(&budget, b);
	}
	return b;
}

uint64_t win_maps_in_use(void)
{
	return atomic_load(&maps_in_use);
}

static bool take(atomic_uint_fast64_t *ctr, uint64_t limit, uint64_t n)
{
	uint_fast64_t cur = atomic_load(ctr);

	do {
		if (n > limit || cur > limit - n)
			return false;
	} while (!atomic_compare_exchange_weak(ctr, &cur, cur + n));
	return true;
}

static bool budget_take(uint64_t n, uint64_t span)
{
	if (!take(&maps_in_use, win_budget(), n))
		return false;
	if (!take(&span_in_use, WIN_SPAN_LIMIT, span)) {
		atomic_fetch_sub(&maps_in_use, n);
		return false;
	}
	return true;
}

static void budget_put(uint64_t n, uint64_t span)
{
	atomic_fetch_sub(&maps_in_use, n);
	atomic_fetch_sub(&span_in_use, span);
}

const char *win_reason_name(uint32_t r)
{
	static const char *const n[WIN_NREASONS] = {
		"ok", "budget", "unaligned", "nofile", "shrunk", "mapfail", "notram",
	};

	return r < WIN_NREASONS ? n[r] : "?";
}

static void win_unmap(struct res_window *w)
{
	void *dev = atomic_exchange(&w->dev, NULL);

	/* What a backend made over the pages goes first, while they are
	 * still mapped. */
	if (dev)
		w->dev_release(dev);
	if (!w->base)
		return;
	munmap(w->base, w->span);
	budget_put(w->nmaps, w->span);
	STAT_SUB(win_live, 1);
	STAT_SUB(win_maps, w->nmaps);
	STAT_SUB(win_bytes, w->size);
	w->base = NULL;
	w->span = 0;
	w->nmaps = 0;
}

/* A PROT_NONE range of span bytes to map runs over; MAP_FAILED on failure. */
static uint8_t *reserve(uint64_t span)
{
	return mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
}

static bool map_run(uint8_t *at, uint64_t len, int prot, int fd, uint64_t off)
{
	return mmap(at, len, prot, MAP_SHARED | MAP_FIXED, fd, (off_t)off) != MAP_FAILED;
}

/* Map w from the table gm; sets w->reason. */
static void win_map(struct res_window *w, const struct guest_mem *gm)
{
	uint64_t pg = page_size(), runs = 0, prev_end = 0, span, file_size = 0;
	int prev_fd = -1, sized_fd = -1;
	uint8_t *base;
	int prot = w->readonly ? PROT_READ : PROT_READ | PROT_WRITE;

	w->reason = WIN_OK;
	/* Pass 1: every entry inside one region with a file, page aligned
	 * (the last may end mid-page when its page is still in the region);
	 * count the runs contiguous in the file. */
	for (uint32_t i = 0; i < w->nents; i++) {
		const struct res_entry *e = &w->ents[i];
		uint64_t len = e->len, off;
		bool sealed;
		int fd;

		if (i + 1 == w->nents)
			len = (len + pg - 1) & ~(pg - 1);
		else if (len % pg)
			w->reason = WIN_UNALIGNED;
		if (w->reason)
			break;
		if (gm_file_range(gm, e->gpa, len, &fd, &off, &sealed)) {
			/* Not in guest RAM (any more), in a region without a
			 * file, or the last entry's page reaches past its
			 * region. */
			w->reason = !gm_translate(gm, e->gpa, e->len) ? WIN_NOTRAM
				    : gm_translate(gm, e->gpa, len) ? WIN_NOFILE : WIN_UNALIGNED;
			break;
		}
		if (off % pg) {
			w->reason = WIN_UNALIGNED;
			break;
		}
		if (!sealed) {
			/* The front-end may shrink an unsealed file: never map
			 * past its end as it is now (touching that would raise
			 * SIGBUS). One fstat per file. */
			if (fd != sized_fd) {
				struct stat st;

				if (fstat(fd, &st)) {
					w->reason = WIN_SHRUNK;
					break;
				}
				file_size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : UINT64_MAX;
				sized_fd = fd;
			}
			if (file_size < off + len) {
				w->reason = WIN_SHRUNK;
				break;
			}
		}
		if (fd != prev_fd || off != prev_end)
			runs++;
		prev_fd = fd;
		prev_end = off + len;
	}
	if (w->reason)
		goto out;
	span = ((w->size + pg - 1) & ~(pg - 1)) + pg;  /* a guard page after */
	if (!budget_take(runs + 1, span)) {
		w->reason = WIN_BUDGET;
		goto out;
	}
	base = reserve(span);
	if (base == MAP_FAILED) {
		budget_put(runs + 1, span);
		w->reason = WIN_MAPFAIL;
		goto out;
	}
	/* Pass 2: one MAP_FIXED mapping per run. */
	for (uint32_t i = 0; i < w->nents;) {
		const struct res_entry *e = &w->ents[i];
		uint64_t off, run_len = 0, at = e->off;
		bool sealed;
		int fd;
		uint32_t j = i;

		gm_file_range(gm, e->gpa, pg, &fd, &off, &sealed);
		for (; j < w->nents; j++) {
			uint64_t len = w->ents[j].len, o2;
			int fd2;

			if (j + 1 == w->nents)
				len = (len + pg - 1) & ~(pg - 1);
			if (gm_file_range(gm, w->ents[j].gpa, len, &fd2, &o2, &sealed) ||
			    fd2 != fd || o2 != off + run_len)
				break;
			run_len += len;
		}
		if (!map_run(base + at, run_len, prot, fd, off)) {
			munmap(base, span);
			budget_put(runs + 1, span);
			w->reason = WIN_MAPFAIL;
			goto out;
		}
		i = j;
	}
	w->base = base;
	w->span = span;
	w->nmaps = (uint32_t)(runs + 1);
	STAT_ADD(win_live, 1);
	STAT_ADD(win_maps, w->nmaps);
	STAT_ADD(win_bytes, w->size);
out:
	if (w->reason)
		STAT_ADD(win_fallback[w->reason], 1);
}

static void win_table_changed(struct gm_user *u, const struct guest_mem *gm)
{
	struct res_window *w = (struct res_window *)u;

	win_unmap(w);
	if (gm->nregions)
		win_map(w, gm);
}

uint32_t res_window_open(struct res_backing *b, const struct guest_mem *gm)
{
	struct res_window *w;

	res_window_close(b);
	if (!win_enabled())
		return WIN_OFF;
	w = calloc(1, sizeof(*w));
	if (!w) {
		STAT_ADD(win_fallback[WIN_MAPFAIL], 1);
		return WIN_MAPFAIL;
	}
	w->gm = gm;
	w->ents = b->ents;
	w->nents = b->nents;
	w->size = b->size;
	w->readonly = b->readonly;
	w->user.table_changed = win_table_changed;
	win_map(w, gm);
	gm_user_add(gm, &w->user);
	b->win = w;
	return w->reason;
}

void res_window_close(struct res_backing *b)
{
	struct res_window *w = b->win;

	if (!w)
		return;
	gm_user_del(w->gm, &w->user);
	win_unmap(w);
	free(w);
	b->win = NULL;
}

uint8_t *res_window_base(const struct res_backing *b)
{
	return b->win ? b->win->base : NULL;
}

void *res_window_dev(const struct res_backing *b)
{
	return b->win ? atomic_load_explicit(&b->win->dev, memory_order_acquire) : NULL;
}

bool res_window_set_dev(const struct res_backing *b, void *obj, void (*release)(void *obj))
{
	struct res_window *w = b->win;

	if (!w || !w->base || atomic_load(&w->dev))
		return false;
	w->dev_release = release;
	atomic_store_explicit(&w->dev, obj, memory_order_release);
	return true;
}

uint8_t *win_map_file(int fd, const struct win_run *runs, unsigned n, uint64_t *span)
{
	uint64_t pg = page_size(), size = 0, at = 0;
	uint8_t *base;

	for (unsigned i = 0; i < n; i++) {
		if (runs[i].off % pg || runs[i].len % pg || !runs[i].len)
			return NULL;
		size += runs[i].len;
	}
	*span = size + pg;
	base = reserve(*span);
	if (base == MAP_FAILED)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		if (!map_run(base + at, runs[i].len, PROT_READ | PROT_WRITE, fd, runs[i].off)) {
			munmap(base, *span);
			return NULL;
		}
		at += runs[i].len;
	}
	return base;
}

void win_unmap_file(uint8_t *base, uint64_t span)
{
	if (base)
		munmap(base, span);
}
