/* SPDX-License-Identifier: MIT */
/* vgpu_private.h - libvgpu internals shared by its source files. */
#ifndef VGPU_PRIVATE_H
#define VGPU_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu.h"
#include "vgpu_uapi.h"

#define VGPU_EXPORT __attribute__((visibility("default")))

struct vgpu_buffer {
	struct vgpu_device *dev;
	struct vgpu_buffer *prev, *next; /* dev->buffers */
	uint32_t handle;                 /* GEM handle */
	uint32_t res_id;
	size_t size;                     /* bytes the caller sees */
	size_t blob_size;                /* bytes of the blob (page multiple) */
	void *user;                      /* caller memory (from_user) or NULL */
	void *map;                       /* blob mapping (copy path, alloc) */
	bool zero_copy;                  /* device works on the caller's memory */
	bool userptr;                    /* a userptr blob (device enforces RO) */
	bool read_only;
	bool owned_memory;               /* vgpu_buffer_alloc() */
};

struct vgpu_device {
	int fd;
	unsigned int flags;
	bool userptr;                    /* kernel + device can do userptr */
	size_t page_size;
	struct vgpu_info info;
	struct vgpu_buffer *buffers;     /* live buffers, for vgpu_close() */
	/* status record: a small mappable guest blob */
	uint32_t status_handle;
	uint32_t status_res_id;
	void *status_map;
	size_t status_size;
};

/* drmIoctl() returning 0 or -errno. */
int vgpu_ioctl(int fd, unsigned long request, void *arg);

/* Create a blob; fills handle/res_id. */
int vgpu_create_blob(struct vgpu_device *dev, uint32_t blob_mem, uint32_t blob_flags,
		     uint64_t size, uint64_t userptr, uint32_t *handle, uint32_t *res_id);
/* Map a mappable blob (populated). */
int vgpu_map_blob(struct vgpu_device *dev, uint32_t handle, size_t size, void **map);
void vgpu_close_handle(struct vgpu_device *dev, uint32_t handle);

#endif /* VGPU_PRIVATE_H */
