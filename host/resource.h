/* SPDX-License-Identifier: MIT */
/*
 * resource.h - a resource is a scatter-gather list of guest pages.
 *
 * Only guest physical addresses are stored; they are translated through
 * guest_mem each time they are used, so a later SET_MEM_TABLE takes effect
 * and a stale address fails instead of touching the wrong memory. The data
 * is never copied: ops read and write guest memory in place.
 *
 * The pages of a resource are its backing (struct res_backing): the mem
 * entries, the size, the read-only flag and the zero-copy window, fixed
 * when the backing is made (at creation or ATTACH_BACKING) and never
 * changed after. A validated op refers to backings, not to resources, so
 * a prepared submit keeps what it touches while the device's resources
 * and id maps change under it: it holds a reference on each backing it
 * uses, and the backing lives until its last reference goes.
 *
 * References are plain counters, not atomic: they change only where the
 * device is serialized. In the daemon that is the vdev lock (vdev.h): the
 * queue thread holds it whenever it executes commands or prepares a
 * submit, and a ring worker takes it to free the job it has answered; the
 * device without ring workers has one thread. The contents of a backing
 * are read without the lock: they were written before the first job that
 * uses them was queued, and the window changes only with the memory
 * table, which waits until no job is queued or running.
 */
#ifndef HOSTD_RESOURCE_H
#define HOSTD_RESOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "gpu_cmd.h"
#include "guest_mem.h"

struct res_window;
struct res_backing;

/*
 * Something outside the device that uses a backing's pages (a worker
 * process that mapped them: programs.c): told when the last reference
 * goes, before the backing is freed and the guest may reuse the pages.
 */
struct res_backing_user {
	struct res_backing_user *next;
	void (*gone)(struct res_backing_user *u, struct res_backing *b);
};

struct res_entry {
	uint64_t gpa;
	uint64_t off;     /* offset of this entry inside the resource */
	uint32_t len;
};

struct res_backing {
	unsigned refs;             /* the resource's, and one per use by a prepared op */
	uint64_t size;             /* the lengths added up: the resource's size */
	bool readonly;
	uint32_t nents;            /* >= 1 */
	struct res_entry *ents;
	struct res_window *win;    /* zero-copy window (window.h); NULL: none */
	/* Whether every entry translates, as found for table generation
	 * checked_gen (guest_mem.gen; 0: never checked). */
	uint64_t checked_gen;
	bool all_translate;
	struct res_backing_user *users;  /* res_backing_add_user(); under its own lock */
};

struct gpu_resource {
	uint32_t id;
	uint32_t blob_mem;
	uint32_t blob_flags;
	uint64_t size;
	bool readonly;             /* VIRTIO_GPU_BLOB_FLAG_RDONLY */
	struct res_backing *bk;    /* one reference; NULL: no backing */
};

/*
 * Check mem entries against guest memory: every entry non-empty, inside one
 * region, no wrap; the lengths add up to *total. Returns 0 or -1.
 */
int res_check_entries(const struct guest_mem *gm, const struct gpu_mem_entry *e,
		      uint32_t n, uint64_t *total);
/* Build the entry table (takes offsets from the lengths). NULL on ENOMEM. */
struct res_entry *res_build_entries(const struct gpu_mem_entry *e, uint32_t n);

/* A backing over n >= 1 entries (already checked), with one reference, the
 * caller's; no window yet (res_window_open). NULL on ENOMEM. */
struct res_backing *res_backing_new(const struct gpu_mem_entry *e, uint32_t n, bool readonly);
/* Take a reference; returns b. */
struct res_backing *res_backing_get(struct res_backing *b);
/* Drop a reference; the last one unmaps the window and frees. NULL-safe. */
void res_backing_put(struct res_backing *b);
/* References besides one owner's: prepared ops still use b. */
bool res_backing_in_use(const struct res_backing *b);
/* Register / unregister a user (any thread; the caller holds a reference
 * to b while it adds). The users' gone() run without the lock, in the
 * thread that drops the last reference. */
void res_backing_add_user(struct res_backing *b, struct res_backing_user *u);
void res_backing_del_user(struct res_backing *b, struct res_backing_user *u);

/*
 * All entries translate through the table as it is now. The answer is
 * kept for the table's generation: the entries are walked again only
 * after the table changed (counted in hostd_stats.backing_walks).
 */
bool res_backed(struct res_backing *b, const struct guest_mem *gm);
/*
 * Host address of byte off of the backing and the number of contiguous
 * bytes from there (*avail): to the end of the backing when it has a
 * window, else to the end of the entry. NULL if off >= size or the entry
 * does not translate.
 */
uint8_t *res_span(const struct res_backing *b, const struct guest_mem *gm,
		  uint64_t off, uint64_t *avail);
/* Copy between a small host buffer and the backing, across entries. */
int res_read(const struct res_backing *b, const struct guest_mem *gm,
	     uint64_t off, void *buf, uint64_t n);
int res_write(const struct res_backing *b, const struct guest_mem *gm,
	      uint64_t off, const void *buf, uint64_t n);

#endif
