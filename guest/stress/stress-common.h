/* SPDX-License-Identifier: MIT */
/*
 * stress-common.h - helpers shared by the guest stress and load programs:
 * raw userptr ioctls and random numbers, on top of guest-check.h (test
 * patterns, the driver's debugfs accounting, VmPin). Header-only (static
 * functions).
 */
#ifndef VGPU_STRESS_COMMON_H
#define VGPU_STRESS_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <xf86drm.h>
#include <drm/virtgpu_drm.h>

#include "guest-check.h"

#ifndef VIRTGPU_BLOB_FLAG_USE_USERPTR
#error "the stress tests need the kernel headers with the userptr UAPI (-Dkernel_headers=build/uapi/include)"
#endif

/* xorshift64*: seeded, reproducible, one state per thread. */
static inline uint64_t rnd_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static inline uint64_t rnd_seed(uint64_t seed, uint64_t stream)
{
	uint64_t s = (seed + 1) * 0x9e3779b97f4a7c15ull ^ (stream + 1) * 0xbf58476d1ce4e5b9ull;

	return s ? s : 1;
}

/* Uniform in [0, n), n > 0. */
static inline uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return rnd_next(s) % n;
}

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB with a userptr, as a hostile
 * program would issue it. Returns 0 or -errno.
 */
static inline int raw_userptr_create(int fd, uint64_t userptr, uint64_t size, uint32_t blob_flags,
				     uint32_t blob_mem, uint32_t *handle, uint32_t *res_id)
{
	struct drm_virtgpu_resource_create_blob rc;

	memset(&rc, 0, sizeof(rc));
	rc.blob_mem = blob_mem;
	rc.blob_flags = blob_flags;
	rc.size = size;
	rc.userptr = userptr;
	if (drmIoctl(fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &rc))
		return -errno;
	if (handle)
		*handle = rc.bo_handle;
	if (res_id)
		*res_id = rc.res_handle;
	return 0;
}

static inline int raw_gem_close(int fd, uint32_t handle)
{
	struct drm_gem_close c = { .handle = handle };

	return drmIoctl(fd, DRM_IOCTL_GEM_CLOSE, &c) ? -errno : 0;
}

#endif
