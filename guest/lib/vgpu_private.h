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

struct vgpu_buffer {
	struct vgpu_device *dev;
	struct vgpu_buffer *prev, *next; /* dev->buffers */
	unsigned int refs;               /* the caller's + one per fence (dev->lock) */
	bool destroyed;                  /* the caller let go */
	uint32_t handle;                 /* GEM handle */
	uint32_t res_id;
	size_t size;                     /* bytes the caller sees */
	size_t page_off;                 /* caller's ptr in the first page */
	size_t blob_size;                /* bytes of the blob (page multiple) */
	void *user;                      /* caller memory (from_user) or NULL */
	void *map;                       /* blob mapping (copy path, alloc) */
	unsigned int copy_users;         /* unretired fences using it (copy path) */
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

struct vgpu_rcache {
	struct vgpu_buffer *root;        /* interval tree of the live entries */
	struct vgpu_buffer *lru, *lru_tail;
	uint64_t budget;                 /* bytes of entries kept unused */
	uint64_t bytes, entries;         /* live entries */
	uint64_t hits, misses, evictions, invalidated;
	uint32_t seed;
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
	uint64_t slot_map[VGPU_STATUS_SLOTS / 64]; /* bit set: slot in use */
	struct vgpu_rcache cache;
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

/* Wait for and retire every unretired fence (vgpu_close()). */
void vgpu_retire_all(struct vgpu_device *dev);

#endif /* VGPU_PRIVATE_H */
