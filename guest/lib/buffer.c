/* SPDX-License-Identifier: MIT */
/* buffer.c - userptr blobs over caller memory, and the copy fallback. */
#include "vgpu_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void link_buffer(struct vgpu_device *dev, struct vgpu_buffer *buf)
{
	buf->dev = dev;
	buf->prev = NULL;
	buf->next = dev->buffers;
	if (dev->buffers)
		dev->buffers->prev = buf;
	dev->buffers = buf;
}

static void unlink_buffer(struct vgpu_buffer *buf)
{
	struct vgpu_device *dev = buf->dev;

	if (buf->prev)
		buf->prev->next = buf->next;
	else
		dev->buffers = buf->next;
	if (buf->next)
		buf->next->prev = buf->prev;
	buf->prev = buf->next = NULL;
}

/* A mappable guest blob of size bytes, mapped into buf->map. */
static int make_guest_blob(struct vgpu_device *dev, struct vgpu_buffer *buf, size_t size)
{
	int err;

	buf->blob_size = size;
	err = vgpu_create_blob(dev, VIRTGPU_BLOB_MEM_GUEST, VIRTGPU_BLOB_FLAG_USE_MAPPABLE,
			       size, 0, &buf->handle, &buf->res_id);
	if (err)
		return err;
	err = vgpu_map_blob(dev, buf->handle, size, &buf->map);
	if (err) {
		vgpu_close_handle(dev, buf->handle);
		buf->handle = 0;
	}
	return err;
}

/*
 * The copy path touches the caller's memory only at submit time; check now
 * that [start, start + size) is mapped readable (and writable unless
 * read-only), so that it fails here with -EFAULT as the zero-copy path
 * does when the kernel pins the pages. Without /proc nothing is checked.
 */
static int check_user_range(uintptr_t start, size_t size, bool need_write)
{
	uintptr_t cur = start, end = start + size;
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");
	bool line_start = true;
	int err = -EFAULT;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[5];
		bool at_start = line_start;

		/* Skip the rest of lines longer than the buffer. */
		line_start = strchr(line, '\n') != NULL;
		if (!at_start || sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3)
			continue;
		if (hi <= cur)
			continue;
		if (lo > cur)
			break; /* a hole */
		if (perms[0] != 'r' || (need_write && perms[1] != 'w'))
			break;
		cur = hi;
		if (cur >= end) {
			err = 0;
			break;
		}
	}
	fclose(f);
	return err;
}

VGPU_EXPORT int vgpu_buffer_from_user(struct vgpu_device *dev, void *ptr, size_t size,
				      unsigned int flags, struct vgpu_buffer **out)
{
	struct vgpu_buffer *buf;
	uintptr_t addr = (uintptr_t)ptr;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!dev || !ptr || (flags & ~VGPU_BUF_FLAGS_ALL) ||
	    ((flags & VGPU_BUF_COPY) && (flags & VGPU_BUF_ZERO_COPY)))
		return -EINVAL;
	/* Page-aligned address and size, no wrap-around. */
	if (size == 0 || addr % dev->page_size || size % dev->page_size ||
	    addr + size < addr)
		return -EINVAL;
	if ((flags & VGPU_BUF_ZERO_COPY) && !dev->userptr)
		return -EOPNOTSUPP;

	buf = calloc(1, sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	buf->size = size;
	buf->user = ptr;
	buf->read_only = (flags & VGPU_BUF_READ_ONLY) != 0;

	err = -EOPNOTSUPP;
	if (dev->userptr && !(flags & VGPU_BUF_COPY)) {
		uint32_t bf = VIRTGPU_BLOB_FLAG_USE_USERPTR;

		if (buf->read_only)
			bf |= VIRTGPU_BLOB_FLAG_USERPTR_RDONLY;
		buf->blob_size = size;
		err = vgpu_create_blob(dev, VIRTGPU_BLOB_MEM_GUEST, bf, size, addr,
				       &buf->handle, &buf->res_id);
		if (!err)
			buf->zero_copy = buf->userptr = true;
		/* Any error but "not supported" is the caller's to see. */
		if (err && (err != -EOPNOTSUPP || (flags & VGPU_BUF_ZERO_COPY))) {
			free(buf);
			return err;
		}
	}
	if (err) {
		err = check_user_range(addr, size, !buf->read_only);
		if (!err)
			err = make_guest_blob(dev, buf, size);
		if (err) {
			free(buf);
			return err;
		}
	}
	link_buffer(dev, buf);
	*out = buf;
	return 0;
}

VGPU_EXPORT int vgpu_buffer_alloc(struct vgpu_device *dev, size_t size, unsigned int flags,
				  struct vgpu_buffer **out)
{
	struct vgpu_buffer *buf;
	size_t rounded;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!dev || size == 0 || (flags & ~VGPU_BUF_READ_ONLY))
		return -EINVAL;
	rounded = (size + dev->page_size - 1) & ~(dev->page_size - 1);
	if (rounded < size)
		return -EINVAL;
	buf = calloc(1, sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	buf->size = size;
	buf->read_only = (flags & VGPU_BUF_READ_ONLY) != 0;
	buf->owned_memory = true;
	buf->zero_copy = true; /* the caller works in the blob itself */
	err = make_guest_blob(dev, buf, rounded);
	if (err) {
		free(buf);
		return err;
	}
	link_buffer(dev, buf);
	*out = buf;
	return 0;
}

VGPU_EXPORT void vgpu_buffer_destroy(struct vgpu_buffer *buf)
{
	if (!buf)
		return;
	if (buf->map)
		munmap(buf->map, buf->blob_size);
	vgpu_close_handle(buf->dev, buf->handle);
	unlink_buffer(buf);
	free(buf);
}

VGPU_EXPORT bool vgpu_buffer_is_zero_copy(const struct vgpu_buffer *buf)
{
	return buf && buf->zero_copy;
}

VGPU_EXPORT bool vgpu_buffer_is_read_only(const struct vgpu_buffer *buf)
{
	return buf && buf->read_only;
}

VGPU_EXPORT size_t vgpu_buffer_size(const struct vgpu_buffer *buf)
{
	return buf ? buf->size : 0;
}

VGPU_EXPORT void *vgpu_buffer_data(const struct vgpu_buffer *buf)
{
	if (!buf)
		return NULL;
	return buf->owned_memory ? buf->map : buf->user;
}

VGPU_EXPORT uint32_t vgpu_buffer_res_id(const struct vgpu_buffer *buf)
{
	return buf ? buf->res_id : 0;
}

VGPU_EXPORT uint32_t vgpu_buffer_handle(const struct vgpu_buffer *buf)
{
	return buf ? buf->handle : 0;
}
