/* SPDX-License-Identifier: MIT */
/*
 * resource.h - a resource is a scatter-gather list of guest pages.
 *
 * Only guest physical addresses are stored; they are translated through
 * guest_mem each time they are used, so a later SET_MEM_TABLE takes effect
 * and a stale address fails instead of touching the wrong memory. The data
 * is never copied: ops read and write guest memory in place.
 */
#ifndef HOSTD_RESOURCE_H
#define HOSTD_RESOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "gpu_cmd.h"
#include "guest_mem.h"

struct res_window;

struct res_entry {
	uint64_t gpa;
	uint64_t off;     /* offset of this entry inside the resource */
	uint32_t len;
};

struct gpu_resource {
	uint32_t id;
	uint32_t blob_mem;
	uint32_t blob_flags;
	uint64_t size;
	bool userptr;
	bool readonly;
	uint32_t nents;            /* 0: no backing */
	struct res_entry *ents;
	struct res_window *win;    /* zero-copy window (window.h); NULL: none */
};

/*
 * Check mem entries against guest memory: every entry non-empty, inside one
 * region, no wrap; the lengths add up to *total. Returns 0 or -1.
 */
int res_check_entries(const struct guest_mem *gm, const struct gpu_mem_entry *e,
		      uint32_t n, uint64_t *total);
/* Build the entry table (takes offsets from the lengths). NULL on ENOMEM. */
struct res_entry *res_build_entries(const struct gpu_mem_entry *e, uint32_t n);
/* All entries still translate (backing present). */
bool res_backed(const struct gpu_resource *r, const struct guest_mem *gm);
/*
 * Host address of byte off of the resource and the number of contiguous
 * bytes from there (*avail): to the end of the resource when it has a
 * window, else to the end of the entry. NULL if off >= size or the entry
 * does not translate.
 */
uint8_t *res_span(const struct gpu_resource *r, const struct guest_mem *gm,
		  uint64_t off, uint64_t *avail);
/* Copy between a small host buffer and the resource, across entries. */
int res_read(const struct gpu_resource *r, const struct guest_mem *gm,
	     uint64_t off, void *buf, uint64_t n);
int res_write(const struct gpu_resource *r, const struct guest_mem *gm,
	      uint64_t off, const void *buf, uint64_t n);

#endif
