/* SPDX-License-Identifier: MIT */
/*
 * window.h - the zero-copy window of a resource's backing: its mem
 * entries mapped one after another, from the front-end's memory file, into
 * one range of the daemon's address space.
 *
 * The window is what an API that wants one pointer and one length (an
 * OpenCL buffer over host memory) works on. It is the guest's own pages:
 * every entry is a MAP_SHARED mapping of the same file range that backs
 * the guest physical address, so a store through the window is a store
 * into guest RAM and nothing is copied. Blobs created with
 * VIRTIO_GPU_BLOB_FLAG_RDONLY are mapped PROT_READ, so the host MMU
 * enforces read-only as well as the engine's validation.
 *
 * Each run of entries that is contiguous in the file is one mapping; the
 * reserved range around them is one more. All windows together stay
 * within a mapping budget (a share of vm.max_map_count), so that no guest
 * can make the daemon run out of mappings. A resource whose window is not
 * built (budget, alignment, no file) still works through the chunked
 * path (res_span); the reason is counted in the statistics.
 *
 * Windows follow the memory table: a new table remaps every window from
 * the new files, and gm_clear (reset, front-end gone) unmaps them.
 */
#ifndef HOSTD_WINDOW_H
#define HOSTD_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#include "guest_mem.h"

struct res_backing;
struct res_entry;

/* Why a resource has no window (index of hostd_stats.win_fallback). */
enum win_reason {
	WIN_OK = 0,
	WIN_BUDGET,      /* the mapping budget (or the 1 TiB of address space) is spent */
	WIN_UNALIGNED,   /* an entry's file offset or length is not page aligned */
	WIN_NOFILE,      /* guest memory without a file (or the entry left it) */
	WIN_SHRUNK,      /* the (unsealed) file is now shorter than the entry */
	WIN_MAPFAIL,     /* mmap failed (ENOMEM, ...) */
	WIN_NOTRAM,      /* an entry is no longer in guest RAM (a new memory table) */
	WIN_NREASONS,
	WIN_OFF = 100    /* windows are not in use (win_set_enabled) */
};

struct res_window {
	struct gm_user user;
	const struct guest_mem *gm;
	const struct res_entry *ents;   /* the backing's, borrowed */
	uint32_t nents;
	uint64_t size;
	bool readonly;
	uint8_t *base;      /* NULL: not mapped now (see reason) */
	uint64_t span;      /* bytes reserved, guard page included */
	uint32_t nmaps;     /* mappings counted against the budget */
	uint32_t reason;    /* enum win_reason */
	/* What a backend made over the mapped window (res_window_set_dev);
	 * NULL: nothing. */
	void *_Atomic dev;
	void (*dev_release)(void *dev);
};

/*
 * Whether resources get windows at all. Off by default: each mapping costs
 * the registration some microseconds, and the CPU backend works as well
 * entry by entry. The OpenCL backend turns them on when it starts.
 */
void win_set_enabled(bool on);
bool win_enabled(void);

/* The budget in mappings (default: half of vm.max_map_count). */
void win_set_budget(uint64_t maps);
uint64_t win_budget(void);
/* Mappings held by all windows now. */
uint64_t win_maps_in_use(void);

/*
 * Build b's window over its entries (a new backing: ATTACH_BACKING or a
 * blob with entries). Never fails the command: without a window
 * b->win->base is NULL and the reason is counted. Returns b->win->reason,
 * or WIN_OFF (and builds nothing) while windows are not enabled.
 */
uint32_t res_window_open(struct res_backing *b, const struct guest_mem *gm);
/* Unmap and free (the backing's last reference goes); NULL-safe. */
void res_window_close(struct res_backing *b);
/* Base of b's window, or NULL. */
uint8_t *res_window_base(const struct res_backing *b);

/*
 * An object a backend keeps per window, for the window's life: the OpenCL
 * backend's buffer over it, made by the first op that uses the window and
 * shared by every later one, on any thread. res_window_dev() returns it
 * (NULL: none yet, or no window). res_window_set_dev() installs one while
 * none is there (the caller serializes its installs) and returns false,
 * keeping nothing, when b has no mapped window. The window calls
 * release(obj) when it is unmapped: its backing's last reference goes,
 * or a new memory table rebuilds or drops it (then the next op makes a
 * new object over the new mapping), or gm_clear. Neither can happen while
 * an op runs on the window (resource.h), so release never races a use;
 * release runs before the pages are unmapped.
 */
void *res_window_dev(const struct res_backing *b);
bool res_window_set_dev(const struct res_backing *b, void *obj, void (*release)(void *obj));

/*
 * A window over a file of the caller's own, mapped exactly as a
 * resource's window is (one PROT_NONE reservation with a guard page, each
 * run MAP_SHARED | MAP_FIXED over it from fd, read-write): what the
 * OpenCL backend's start-up gate proves the device on. Not counted
 * against the budget. Runs are page aligned in the file and in length.
 * Returns the base, *span for win_unmap_file, or NULL.
 */
struct win_run {
	uint64_t off, len;
};
uint8_t *win_map_file(int fd, const struct win_run *runs, unsigned n, uint64_t *span);
void win_unmap_file(uint8_t *base, uint64_t span);

const char *win_reason_name(uint32_t reason);

#endif
