/* SPDX-License-Identifier: MIT */
/* buffer.c - userptr blobs over caller memory, and the copy fallback. */
#include "vgpu_private.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void link_buffer(struct vgpu_device *dev, struct vgpu_buffer *buf)
{
	pthread_mutex_lock(&dev->lock);
	buf->dev = dev;
	buf->refs = 1;
	buf->prev = NULL;
	buf->next = dev->buffers;
	if (dev->buffers)
		dev->buffers->prev = buf;
	dev->buffers = buf;
	pthread_mutex_unlock(&dev->lock);
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

/*
 * Errors of the userptr create after which the copy path still gives the
 * caller what it asked for (vgpu.h lists them): no userptr (or a DMA API
 * that would bounce), too many pieces for one device request, and a range
 * that is mapped as asked but cannot be pinned long-term. EFAULT alone
 * cannot tell the last from a bad pointer; the process's mappings can.
 */
static bool zero_copy_refusal(int err, uintptr_t base, size_t size, bool read_only)
{
	if (err == -EOPNOTSUPP || err == -E2BIG)
		return true;
	if (err == -EFAULT)
		return check_user_range(base, size, !read_only) == 0;
	return false;
}

VGPU_EXPORT int vgpu_buffer_from_user(struct vgpu_device *dev, void *ptr, size_t size,
				      unsigned int flags, struct vgpu_buffer **out)
{
	struct vgpu_buffer *buf;
	uintptr_t addr = (uintptr_t)ptr, base, end;
	size_t page_off, blob_size;
	int err;

	if (!out)
		return vgpu_fail(-EINVAL, "vgpu_buffer_from_user: out is NULL");
	*out = NULL;
	if (!dev || !ptr)
		return vgpu_fail(-EINVAL, "vgpu_buffer_from_user: dev or ptr is NULL");
	if (flags & ~VGPU_BUF_FLAGS_ALL)
		return vgpu_fail(-EINVAL, "vgpu_buffer_from_user: unknown flags 0x%x",
				 flags & ~VGPU_BUF_FLAGS_ALL);
	if ((flags & VGPU_BUF_COPY) && (flags & VGPU_BUF_ZERO_COPY))
		return vgpu_fail(-EINVAL, "vgpu_buffer_from_user: VGPU_BUF_COPY and "
				 "VGPU_BUF_ZERO_COPY exclude each other");
	err = vgpu_dev_check(dev, "vgpu_buffer_from_user");
	if (err)
		return err;
	/* Any range: register the whole pages that hold it. */
	page_off = addr % dev->page_size;
	base = addr - page_off;
	end = addr + size;
	if (size == 0)
		return vgpu_fail(-EINVAL, "vgpu_buffer_from_user: size is 0");
	if (end < addr || end + dev->page_size - 1 < end)
		return vgpu_fail(-EINVAL, "vgpu_buffer_from_user: [ptr, ptr + size) wraps around "
				 "the address space");
	blob_size = ((end + dev->page_size - 1) & ~(uintptr_t)(dev->page_size - 1)) - base;
	if ((flags & VGPU_BUF_ZERO_COPY) && !dev->userptr)
		return vgpu_fail(-EOPNOTSUPP, "vgpu_buffer_from_user: VGPU_BUF_ZERO_COPY but the "
				 "device or kernel has no userptr blobs%s",
				 dev->info.userptr_disabled ? " (VGPU_OPEN_NO_USERPTR)" : "");

	buf = calloc(1, sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	buf->size = size;
	buf->page_off = page_off;
	buf->user = ptr;
	buf->read_only = (flags & VGPU_BUF_READ_ONLY) != 0;

	err = -EOPNOTSUPP;
	if (dev->userptr && !(flags & VGPU_BUF_COPY)) {
		uint32_t bf = VIRTGPU_BLOB_FLAG_USE_USERPTR;

		if (buf->read_only)
			bf |= VIRTGPU_BLOB_FLAG_USERPTR_RDONLY;
		buf->blob_size = blob_size;
		err = vgpu_dev_err(dev, vgpu_create_blob(dev, VIRTGPU_BLOB_MEM_GUEST, bf,
							 blob_size, base, &buf->handle,
							 &buf->res_id));
		if (!err)
			buf->zero_copy = buf->userptr = true;
		if (err && (!zero_copy_refusal(err, base, blob_size, buf->read_only) ||
			    (flags & VGPU_BUF_ZERO_COPY))) {
			free(buf);
			return vgpu_fail(err, "vgpu_buffer_from_user: the kernel refused to pin "
					 "[%#lx, +%zu)%s", (unsigned long)base, blob_size,
					 err == -EFAULT ? ": not mapped, or read-only without "
					 "VGPU_BUF_READ_ONLY, or a mapping the kernel cannot pin "
					 "for long (a writable MAP_SHARED file mapping)" :
					 err == -ENOMEM ? ": over RLIMIT_MEMLOCK (VGPU_BUF_COPY "
					 "registers without pinning)" : err == -E2BIG ?
					 ": too fragmented for one device request" : "");
		}
	}
	if (err) {
		err = check_user_range(base, blob_size, !buf->read_only);
		if (err)
			vgpu_fail(err, "vgpu_buffer_from_user: [%#lx, +%zu) is not mapped%s",
				  (unsigned long)base, blob_size,
				  buf->read_only ? " readable" : " read-write");
		if (!err)
			err = vgpu_dev_err(dev, make_guest_blob(dev, buf, blob_size));
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
		return vgpu_fail(-EINVAL, "vgpu_buffer_alloc: out is NULL");
	*out = NULL;
	if (!dev || size == 0 || (flags & ~VGPU_BUF_READ_ONLY))
		return vgpu_fail(-EINVAL, "vgpu_buffer_alloc: dev NULL, size 0, or flags other "
				 "than VGPU_BUF_READ_ONLY");
	err = vgpu_dev_check(dev, "vgpu_buffer_alloc");
	if (err)
		return err;
	rounded = (size + dev->page_size - 1) & ~(dev->page_size - 1);
	if (rounded < size)
		return vgpu_fail(-EINVAL, "vgpu_buffer_alloc: size %zu overflows when rounded up "
				 "to the page size", size);
	buf = calloc(1, sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	buf->size = size;
	buf->read_only = (flags & VGPU_BUF_READ_ONLY) != 0;
	buf->owned_memory = true;
	buf->zero_copy = true; /* the caller works in the blob itself */
	err = vgpu_dev_err(dev, make_guest_blob(dev, buf, rounded));
	if (err) {
		free(buf);
		return err;
	}
	link_buffer(dev, buf);
	*out = buf;
	return 0;
}

static void buffer_free(struct vgpu_buffer *buf)
{
	if (buf->map)
		munmap(buf->map, buf->blob_size);
	vgpu_close_handle(buf->dev, buf->handle);
	free(buf);
}

void vgpu_buffer_ref_locked(struct vgpu_buffer *buf)
{
	buf->refs++;
}

void vgpu_buffer_unref_locked(struct vgpu_buffer *buf)
{
	if (--buf->refs == 0) {
		unlink_buffer(buf);
		buffer_free(buf);
	}
}

void vgpu_buffer_destroy_locked(struct vgpu_buffer *buf)
{
	if (!buf->destroyed) {
		buf->destroyed = true;
		vgpu_buffer_unref_locked(buf);
	}
}

/* After this returns nothing touches the memory: the submits in flight
 * that use it are retired first (vgpu.h). */
VGPU_EXPORT void vgpu_buffer_destroy(struct vgpu_buffer *buf)
{
	struct vgpu_device *dev;

	if (!buf)
		return;
	dev = buf->dev;
	/* A fork child's vgpu_close() frees its copy; the handle is the
	 * parent's. */
	if (vgpu_dev_foreign(dev))
		return;
	/* An entry of the registration cache goes back to the cache. */
	if (buf->cached) {
		vgpu_buffer_put(buf);
		return;
	}
	pthread_mutex_lock(&dev->lock);
	if (!buf->destroyed) {
		vgpu_quiesce_buffer_locked(buf);
		vgpu_buffer_destroy_locked(buf);
	}
	pthread_mutex_unlock(&dev->lock);
}

bool vgpu_buffer_on_copy_path(const struct vgpu_buffer *buf)
{
	return buf && buf->user && !buf->userptr;
}

uintptr_t vgpu_buffer_base(const struct vgpu_buffer *buf)
{
	return (uintptr_t)(buf->owned_memory ? (uint8_t *)buf->map : (uint8_t *)buf->user);
}

void vgpu_buffer_copy(struct vgpu_buffer *buf, uint64_t off, uint64_t len, bool to_blob)
{
	uint8_t *user = buf->user, *blob = (uint8_t *)buf->map + buf->page_off;

	if (buf->abandoned || off >= buf->size || len == 0)
		return;
	if (len > buf->size - off)
		len = buf->size - off;
	if (to_blob)
		memcpy(blob + off, user + off, len);
	else
		memcpy(user + off, blob + off, len);
}

VGPU_EXPORT size_t vgpu_buffer_offset(const struct vgpu_buffer *buf)
{
	return buf ? buf->page_off : 0;
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
