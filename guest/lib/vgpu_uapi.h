/* SPDX-License-Identifier: MIT */
/*
 * vgpu_uapi.h - the virtio-gpu DRM UAPI as libvgpu uses it.
 *
 * Everything comes from the kernel's exported <drm/virtgpu_drm.h> (the
 * build points at a headers_install tree with -Dkernel_headers). The
 * userptr extension is taken from those headers when they have it; with
 * headers of an unpatched kernel the library still builds, using the
 * fallback below, and learns at run time (VIRTGPU_PARAM_RESOURCE_USERPTR)
 * whether the running kernel has the extension. The fallback extends the
 * kernel's own struct by the one new field rather than re-typing it, and
 * the static assertions make any disagreement with patched headers a build
 * failure.
 */
#ifndef VGPU_UAPI_H
#define VGPU_UAPI_H

#include <stddef.h>
#include <stdint.h>

#include <linux/ioctl.h>
#include <xf86drm.h>
#include <drm/virtgpu_drm.h>

#ifndef VIRTGPU_PARAM_EXPLICIT_DEBUG_NAME
#error "the kernel headers are too old (need Linux 6.12 UAPI): set -Dkernel_headers"
#endif

#define VGPU_FALLBACK_PARAM_RESOURCE_USERPTR 9
#define VGPU_FALLBACK_BLOB_FLAG_USE_USERPTR 0x0008
#define VGPU_FALLBACK_BLOB_FLAG_USERPTR_RDONLY 0x0010

/*
 * The extension appends one __u64 (userptr) right after blob_id, so the
 * extended argument is this many bytes and the ioctl number follows from it.
 */
#define VGPU_CREATE_BLOB_USERPTR_SIZE \
	(offsetof(struct drm_virtgpu_resource_create_blob, blob_id) + 2 * sizeof(__u64))
#define VGPU_FALLBACK_IOCTL_RESOURCE_CREATE_BLOB_USERPTR \
	_IOC(_IOC_READ | _IOC_WRITE, DRM_IOCTL_BASE, \
	     DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_CREATE_BLOB, \
	     VGPU_CREATE_BLOB_USERPTR_SIZE)

#ifdef VIRTGPU_PARAM_RESOURCE_USERPTR
/* Patched headers: they must agree with the fallback. */
#if VIRTGPU_PARAM_RESOURCE_USERPTR != VGPU_FALLBACK_PARAM_RESOURCE_USERPTR
#error "VIRTGPU_PARAM_RESOURCE_USERPTR disagrees with the kernel headers"
#endif
#if VIRTGPU_BLOB_FLAG_USE_USERPTR != VGPU_FALLBACK_BLOB_FLAG_USE_USERPTR
#error "VIRTGPU_BLOB_FLAG_USE_USERPTR disagrees with the kernel headers"
#endif
#if VIRTGPU_BLOB_FLAG_USERPTR_RDONLY != VGPU_FALLBACK_BLOB_FLAG_USERPTR_RDONLY
#error "VIRTGPU_BLOB_FLAG_USERPTR_RDONLY disagrees with the kernel headers"
#endif
_Static_assert(offsetof(struct drm_virtgpu_resource_create_blob, userptr) ==
	       offsetof(struct drm_virtgpu_resource_create_blob, blob_id) + sizeof(__u64),
	       "userptr must follow blob_id");
_Static_assert(sizeof(struct drm_virtgpu_resource_create_blob) ==
	       VGPU_CREATE_BLOB_USERPTR_SIZE,
	       "struct drm_virtgpu_resource_create_blob size");
_Static_assert(DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB ==
	       VGPU_FALLBACK_IOCTL_RESOURCE_CREATE_BLOB_USERPTR,
	       "DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB number");
#define VGPU_HAVE_USERPTR_HEADERS 1

typedef struct drm_virtgpu_resource_create_blob vgpu_create_blob_t;

static inline struct drm_virtgpu_resource_create_blob *vgpu_blob_base(vgpu_create_blob_t *cb)
{
	return cb;
}

static inline void vgpu_blob_set_userptr(vgpu_create_blob_t *cb, __u64 userptr)
{
	cb->userptr = userptr;
}
#else
#define VIRTGPU_PARAM_RESOURCE_USERPTR VGPU_FALLBACK_PARAM_RESOURCE_USERPTR
#define VIRTGPU_BLOB_FLAG_USE_USERPTR VGPU_FALLBACK_BLOB_FLAG_USE_USERPTR
#define VIRTGPU_BLOB_FLAG_USERPTR_RDONLY VGPU_FALLBACK_BLOB_FLAG_USERPTR_RDONLY
#define VGPU_HAVE_USERPTR_HEADERS 0

/* The kernel's struct with the new field appended. */
typedef struct {
	struct drm_virtgpu_resource_create_blob base;
	__u64 userptr;
} vgpu_create_blob_t;

_Static_assert(sizeof(vgpu_create_blob_t) == VGPU_CREATE_BLOB_USERPTR_SIZE,
	       "fallback create-blob size");

static inline struct drm_virtgpu_resource_create_blob *vgpu_blob_base(vgpu_create_blob_t *cb)
{
	return &cb->base;
}

static inline void vgpu_blob_set_userptr(vgpu_create_blob_t *cb, __u64 userptr)
{
	cb->userptr = userptr;
}
#endif

/* The library always passes the extended argument for userptr blobs; its
 * ioctl number is the kernel's own when the headers have the extension
 * (asserted above). */
#define VGPU_IOCTL_CREATE_BLOB_USERPTR VGPU_FALLBACK_IOCTL_RESOURCE_CREATE_BLOB_USERPTR

#endif /* VGPU_UAPI_H */
