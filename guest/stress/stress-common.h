/* SPDX-License-Identifier: MIT */
/*
 * stress-common.h - helpers shared by the guest stress and load programs:
 * raw userptr ioctls, the driver's debugfs accounting, VmPin, random numbers
 * and test patterns. Header-only (static functions).
 */
#ifndef VGPU_STRESS_COMMON_H
#define VGPU_STRESS_COMMON_H

#include <errno.h>
#include <glob.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xf86drm.h>
#include <drm/virtgpu_drm.h>

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

/* Deterministic bytes from a seed. */
static inline void fill_pattern(void *p, size_t size, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	uint8_t *b = p;
	size_t off;

	for (off = 0; off + 8 <= size; off += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(b + off, &x, 8);
	}
	for (; off < size; off++)
		b[off] = (uint8_t)(x >> (off % 8));
}

static inline bool all_bytes(const void *p, size_t n, uint8_t v)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != v)
			return false;
	return true;
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

/* ---- the driver's accounting ---- */

static char stress_debugfs[256];

/* Locate /sys/kernel/debug/dri/N/virtio-gpu-userptr; false when absent. */
static inline bool debugfs_find(void)
{
	glob_t g;

	if (stress_debugfs[0])
		return true;
	if (glob("/sys/kernel/debug/dri/*/virtio-gpu-userptr", 0, NULL, &g) != 0)
		return false;
	snprintf(stress_debugfs, sizeof(stress_debugfs), "%s", g.gl_pathv[0]);
	globfree(&g);
	return true;
}

/* total_pinned_pages and objects; -1 each when unreadable. */
static inline int debugfs_read(long *pages, long *objects)
{
	char line[256];
	FILE *f;

	*pages = *objects = -1;
	if (!debugfs_find())
		return -1;
	f = fopen(stress_debugfs, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "total_pinned_pages %ld", pages) == 1)
			continue;
		sscanf(line, "objects %ld", objects);
	}
	fclose(f);
	return (*pages >= 0 && *objects >= 0) ? 0 : -1;
}

/* Print the debugfs file as TAP comments (for a failed check). */
static inline void debugfs_dump(void)
{
	char line[256];
	int n = 0;
	FILE *f;

	if (!debugfs_find() || !(f = fopen(stress_debugfs, "re")))
		return;
	while (fgets(line, sizeof(line), f) && n++ < 40)
		printf("#   | %s", line);
	fclose(f);
}

/* Count debugfs object lines of a pid (column 5). */
static inline long debugfs_objects_of(pid_t pid)
{
	char line[256];
	long n = 0;
	unsigned int id, ents;
	unsigned long pages;
	char acc[8];
	int p;
	FILE *f;

	if (!debugfs_find())
		return -1;
	f = fopen(stress_debugfs, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%u %lu %u %7s %d", &id, &pages, &ents, acc, &p) == 5 && p == pid)
			n++;
	fclose(f);
	return n;
}

/*
 * Releases complete when the device answers RESOURCE_UNREF, shortly after
 * the handle is gone: poll, bounded (timeout_ms).
 */
static inline bool debugfs_wait(long want_pages, long want_objects, int timeout_ms, long *pages,
				long *objects)
{
	for (int waited = 0;; waited += 10) {
		if (debugfs_read(pages, objects) == 0 && *pages == want_pages &&
		    *objects == want_objects)
			return true;
		if (waited >= timeout_ms) {
			debugfs_dump();
			return false;
		}
		usleep(10000);
	}
}

/* VmPin of a process in kB (0 = self), -1 when /proc does not say. */
static inline long vm_pin_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/status");
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static inline bool vm_pin_wait(long want_kb, int timeout_ms, long *got)
{
	for (int waited = 0;; waited += 10) {
		*got = vm_pin_kb(0);
		if (*got == want_kb)
			return true;
		if (waited >= timeout_ms)
			return false;
		usleep(10000);
	}
}

#endif
