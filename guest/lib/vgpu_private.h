/* SPDX-License-Identifier: MIT */
/* vgpu_private.h - libvgpu internals shared by its source files. */
#ifndef VGPU_PRIVATE_H
#define VGPU_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu/vgpu.h"
#include "vgpu_uapi.h"

#define VGPU_EXPORT __attribute__((visibility("default")))

/* Rings of the compute context (VIRTGPU_CONTEXT_PARAM_NUM_RINGS). */
#define VGPU_NUM_RINGS 16u
/* Status records: one blob of VGPU_STATUS_SLOTS records, one per submit in
 * flight. */
#define VGPU_STATUS_SLOTS 256u
/* Program and kernel ids the library hands out, at most (per context). */
#define VGPU_MAX_IDS 65536u

struct vgpu_buffer {
	struct vgpu_device *dev;
	struct vgpu_buffer *prev, *next; /* dev->buffers */
	unsigned int refs;               /* the caller's + one per fence and batch use
					  * (dev->lock) */
	bool destroyed;                  /* the caller let go */
	bool abandoned;                  /* destroyed with a submit still running: no
					  * copy-back into it any more */
	uint32_t handle;                 /* GEM handle */
	uint32_t res_id;
	size_t size;                     /* bytes the caller sees */
	size_t page_off;                 /* caller's ptr in the first page */
	size_t blob_size;                /* bytes of the blob (page multiple) */
	void *user;                      /* caller memory (from_user) or NULL */
	void *map;                       /* blob mapping (copy path, alloc) */
	bool zero_copy;                  /* device works on the caller's memory */
	bool userptr;                    /* a userptr blob (device enforces RO) */
	bool read_only;
	bool owned_memory;               /* vgpu_buffer_alloc() */
	/* registration cache (rcache.c), under dev->lock */
	bool cached;                     /* an entry of the cache */
	bool stale;                      /* invalidated while in use */
	unsigned int cache_flags;
	unsigned int cache_users;        /* vgpu_buffer_get() minus put */
	uintptr_t start, end;            /* the page range registered */
	struct vgpu_buffer *it_left, *it_right; /* interval tree (treap) */
	uintptr_t it_max;                /* largest end in the subtree */
	uint32_t it_prio;
	struct vgpu_buffer *lru_prev, *lru_next; /* unused entries, oldest first */
};

/* A registration being made by vgpu_buffer_get(): concurrent misses on a
 * range it covers wait for it instead of registering the range again. */
struct vgpu_rcache_pending {
	struct vgpu_rcache_pending *next;
	uintptr_t start, end;
	unsigned int flags;
};

struct vgpu_rcache {
	struct vgpu_buffer *root;        /* interval tree of the live entries */
	struct vgpu_buffer *lru, *lru_tail;
	uint64_t budget;                 /* bytes of unused entries kept */
	uint64_t bytes, entries;         /* live entries */
	uint64_t lru_bytes;              /* of them, unused (in the LRU list) */
	uint64_t hits, misses, evictions, invalidated;
	uint32_t seed;
	struct vgpu_rcache_pending *pending;
	pthread_cond_t pending_cv;       /* a pending registration finished */
};

/* The caller's memory a submit touches through one buffer, as addresses of
 * this process: every range it names, and the ranges it writes. */
struct vgpu_extent {
	struct vgpu_buffer *buf;         /* referenced until the fence retires */
	uintptr_t start, end;            /* end == start: none */
	uintptr_t wstart, wend;
	bool copy;                       /* the buffer is on the copy path */
};

/* A copy-path range to copy back when the fence retires. */
/* A buffer a DISPATCH names in its payload (argument k of the op's
 * struct vgpu_dispatch): buf NULL for arguments that are not buffers. */
struct vgpu_bind {
	struct vgpu_buffer *buf;         /* referenced by the batch */
	uint64_t off, len;
	uint32_t access;                 /* VGPU_OP_READ | VGPU_OP_WRITE */
};

/* What an op of capset version 3 carries besides its 64 bytes. */
struct vgpu_op_extra {
	uint8_t *payload;                /* little-endian but for the bindings' res and
					  * offset, filled in at submit */
	uint32_t payload_len;
	uint32_t nbind;
	struct vgpu_bind *bind;
};

struct vgpu_copyback {
	struct vgpu_buffer *buf;
	uint64_t off, len;
	uint32_t op;                     /* copied only when this op was executed */
};

struct vgpu_fence {
	struct vgpu_device *dev;
	struct vgpu_fence *prev, *next;  /* dev->pending while unretired */
	unsigned int refs;               /* the caller's + the pending list's */
	bool retired;
	bool user_gone;                  /* vgpu_fence_destroy() was called */
	bool imported;                   /* vgpu_fence_import(): a sync_file only */
	int fd;                          /* sync_file of the submit */
	uint32_t slot;                   /* status record index */
	uint32_t ring;
	uint32_t num_ops;
	int err;                         /* result once retired */
	struct vgpu_submit_result res;   /* once retired */
	unsigned int nextents;
	struct vgpu_extent *ext;
	unsigned int ncb;
	struct vgpu_copyback *cb;
};

struct vgpu_device {
	int fd;
	unsigned int flags;
	unsigned long fork_gen;          /* vgpu_fork_gen at open */
	bool lost;                       /* the kernel said -ENODEV: sticky */
	bool userptr;                    /* kernel + device can do userptr */
	size_t page_size;
	struct vgpu_info info;
	pthread_mutex_t lock;            /* everything below, buffer refs */
	pthread_cond_t retired_cv;       /* a fence retired */
	struct vgpu_buffer *buffers;     /* live buffers, for vgpu_close() */
	struct vgpu_fence *pending;      /* unretired fences, oldest first */
	struct vgpu_fence *pending_tail;
	unsigned int pending_copyback;   /* of them, with copy-backs due */
	uint64_t slot_map[VGPU_STATUS_SLOTS / 64]; /* bit set: slot in use */
	struct vgpu_rcache cache;
	/* program and kernel ids of the context (program.c): bit set, in use */
	uint64_t *prog_ids, *kernel_ids;
	/* status records: a small mappable guest blob */
	uint32_t status_handle;
	uint32_t status_res_id;
	void *status_map;
	size_t status_size;
};

/* Bumped in the child by fork(): objects of another generation belong to
 * the parent. */
unsigned long vgpu_fork_generation(void);
void vgpu_fork_guard_init(void);

/* 0, or -ECHILD after fork / -ENODEV after device loss (detail set). */
int vgpu_dev_check(const struct vgpu_device *dev, const char *fn);
bool vgpu_dev_foreign(const struct vgpu_device *dev);
/* Note an errno from the kernel: -ENODEV makes the device lost. */
int vgpu_dev_err(struct vgpu_device *dev, int err);

/* Thread-local detail for vgpu_error_detail(); returns err. */
__attribute__((format(printf, 2, 3)))
int vgpu_fail(int err, const char *fmt, ...);

/* drmIoctl() returning 0 or -errno. */
int vgpu_ioctl(int fd, unsigned long request, void *arg);

/* Create a blob; fills handle/res_id. */
int vgpu_create_blob(struct vgpu_device *dev, uint32_t blob_mem, uint32_t blob_flags,
		     uint64_t size, uint64_t userptr, uint32_t *handle, uint32_t *res_id);
/* Map a mappable blob (populated). */
int vgpu_map_blob(struct vgpu_device *dev, uint32_t handle, size_t size, void **map);
void vgpu_close_handle(struct vgpu_device *dev, uint32_t handle);

/* Buffer references (dev->lock held): the last put frees the buffer. */
void vgpu_buffer_ref_locked(struct vgpu_buffer *buf);
void vgpu_buffer_unref_locked(struct vgpu_buffer *buf);

/* Destroy with dev->lock held (the caller's reference). */
void vgpu_buffer_destroy_locked(struct vgpu_buffer *buf);

/* Copy [off, off + len) of a copy-path buffer between the caller's memory
 * and the blob (clamped to the buffer); nothing into an abandoned buffer. */
void vgpu_buffer_copy(struct vgpu_buffer *buf, uint64_t off, uint64_t len, bool to_blob);
/* On the copy path: the device works on a blob, not on the caller's memory. */
bool vgpu_buffer_on_copy_path(const struct vgpu_buffer *buf);
/* The caller's address of byte 0 of the buffer (what op offsets count from). */
uintptr_t vgpu_buffer_base(const struct vgpu_buffer *buf);

/* ---- fences (fence.c), dev->lock held unless said otherwise ---- */
#define VGPU_STATUS_PENDING 0xffffffffu
#define VGPU_DEFAULT_TIMEOUT_MS 60000

/* CLOCK_MONOTONIC now, in ns; a relative timeout in ms as a deadline (-1: none). */
int64_t vgpu_now_ns(void);
int64_t vgpu_deadline_ms(int timeout_ms);
struct vgpu_compute_status *vgpu_slot_ptr(struct vgpu_device *dev, uint32_t slot);
void vgpu_slot_free(struct vgpu_device *dev, uint32_t slot);
void vgpu_fence_unref_locked(struct vgpu_fence *f);
/* Put a fence on the pending list (it takes a reference). */
void vgpu_pending_add_locked(struct vgpu_fence *f);
/* Drop what an unsubmitted fence holds (buffers, slot). */
void vgpu_fence_release_locked(struct vgpu_fence *f);
/* Retire every pending fence already signalled (one poll() for all). */
void vgpu_reap_locked(struct vgpu_device *dev);
/* Wait (dropping the lock) until f signals or deadline_ns (-1: none), and
 * retire it. Returns 0, -ETIMEDOUT or a poll error. */
int vgpu_wait_retire_locked(struct vgpu_fence *f, int64_t deadline_ns);
/* Retire every pending fence that uses buf, waiting up to the default
 * timeout; past it the buffer is abandoned (no copy-back into it). */
void vgpu_quiesce_buffer_locked(struct vgpu_buffer *buf);

/* A result record saying the device never reported (struct_size honoured). */
/* batch.c for program.c: add an op with a payload (copied) and bindings
 * (taken over, freed on failure too). */
int vgpu_batch_add_op(struct vgpu_batch *b, const struct vgpu_compute_op *op,
		      struct vgpu_buffer *dst, struct vgpu_buffer *src, const void *payload,
		      uint32_t plen, struct vgpu_bind *bind, uint32_t nbind);
struct vgpu_device *vgpu_batch_device(const struct vgpu_batch *b);

void vgpu_result_not_executed(struct vgpu_submit_result *r, uint32_t num_ops, uint32_t ring);

/* Wait for and retire every unretired fence (vgpu_close()). */
void vgpu_retire_all(struct vgpu_device *dev);

#endif /* VGPU_PRIVATE_H */
