/* SPDX-License-Identifier: MIT */
/*
 * guest_mem.h - the front-end's memory regions, mapped once.
 *
 * Every access to guest memory goes through gm_translate() (guest physical
 * addresses, used by descriptors and mem entries) or gm_translate_qva()
 * (front-end virtual addresses, used by SET_VRING_ADDR). Both return NULL
 * for any range that is empty, wraps, or is not wholly inside one region.
 */
#ifndef HOSTD_GUEST_MEM_H
#define HOSTD_GUEST_MEM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GM_MAX_REGIONS 8u

/* As carried by VHOST_USER_SET_MEM_TABLE. */
struct gm_region_desc {
	uint64_t gpa;
	uint64_t size;
	uint64_t qva;
	uint64_t mmap_offset;
};

struct gm_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t qva;
	uint8_t *host;     /* host address of gpa */
	void *map_base;    /* NULL when not mapped by us */
	size_t map_len;
	int fd;            /* our own copy of the region's fd; -1: none */
	uint64_t file_off; /* file offset of gpa */
	bool sealed;       /* the file cannot shrink (F_SEAL_SHRINK) */
};

/*
 * Something built from the table that must follow it (the zero-copy
 * windows): table_changed runs after every new table and after gm_clear,
 * with the table as it now is, under the list's lock.
 */
struct guest_mem;

struct gm_user {
	struct gm_user *prev, *next;
	void (*table_changed)(struct gm_user *u, const struct guest_mem *gm);
};

struct guest_mem {
	unsigned nregions;
	struct gm_region r[GM_MAX_REGIONS];
	/* Bumped by every change of the table (gm_set_table, gm_clear,
	 * gm_add_host_region); never 0. What was checked against the table
	 * (a backing's "every entry translates") is valid for one value. */
	uint64_t gen;
	/* Bookkeeping beside the table, not part of it: users may link
	 * themselves in through a const table. */
	pthread_mutex_t users_lock;
	struct gm_user users;   /* list head */
};

void gm_init(struct guest_mem *gm);
/* Unmap everything. */
void gm_clear(struct guest_mem *gm);

/*
 * Replace the table: validate every region (non-empty, no wrap, no overlap,
 * file large enough), map each fd at its page-aligned mmap_offset. All or
 * nothing: on failure (-1, errno set) the old table is kept. The fds are
 * never closed here.
 */
int gm_set_table(struct guest_mem *gm, const struct gm_region_desc *d,
		 unsigned n, const int *fds);

/* Add a region the caller has mapped already (tests and fuzzing). */
int gm_add_host_region(struct guest_mem *gm, uint64_t gpa, uint64_t size,
		       uint64_t qva, void *host);

void *gm_translate(const struct guest_mem *gm, uint64_t gpa, uint64_t len);
void *gm_translate_qva(const struct guest_mem *gm, uint64_t qva, uint64_t len);

uint64_t gm_mapped_bytes(const struct guest_mem *gm);

/*
 * Where [gpa, +len) lies in the front-end's memory file: 0 with *fd, *off
 * (file offset) and *sealed set when the range is wholly inside one region
 * that has a file; -1 otherwise. The fd stays owned by the table.
 */
int gm_file_range(const struct guest_mem *gm, uint64_t gpa, uint64_t len,
		  int *fd, uint64_t *off, bool *sealed);

/* Link u in (its table_changed runs on every later change) / unlink it. */
void gm_user_add(const struct guest_mem *gm, struct gm_user *u);
void gm_user_del(const struct guest_mem *gm, struct gm_user *u);

#endif
