/* SPDX-License-Identifier: MIT */
/*
 * guest-ioctl.h - raw userptr ioctls and sysfs writes shared by the guest
 * programs that remove the device under live blobs (vgpu-unplug-gup,
 * vgpu-pci-remove): they talk to the kernel directly, not through libvgpu,
 * whose state would not survive the removal. Header-only.
 */
#ifndef VGPU_GUEST_IOCTL_H
#define VGPU_GUEST_IOCTL_H

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xf86drm.h>
#include <drm/virtgpu_drm.h>

/*
 * A guest blob over [ptr, ptr + size) with the userptr flags @flags: its
 * GEM handle and (when @res is not NULL) its resource id; 0 or an errno.
 */
static inline int raw_userptr_res(int fd, void *ptr, size_t size, uint32_t flags,
				  uint32_t *handle, uint32_t *res)
{
	struct drm_virtgpu_resource_create_blob rc = {
		.blob_mem = VIRTGPU_BLOB_MEM_GUEST,
		.blob_flags = VIRTGPU_BLOB_FLAG_USE_USERPTR | flags,
		.size = size,
		.userptr = (uintptr_t)ptr,
	};

	if (drmIoctl(fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &rc))
		return errno;
	*handle = rc.bo_handle;
	if (res)
		*res = rc.res_handle;
	return 0;
}

static inline int raw_userptr(int fd, void *ptr, size_t size, uint32_t flags, uint32_t *handle)
{
	return raw_userptr_res(fd, ptr, size, flags, handle, NULL);
}

/* A context of the compute capset (@capset) for @fd; 0 or an errno. */
static inline int raw_context_init(int fd, uint32_t capset)
{
	struct drm_virtgpu_context_set_param p = {
		.param = VIRTGPU_CONTEXT_PARAM_CAPSET_ID,
		.value = capset,
	};
	struct drm_virtgpu_context_init ci = {
		.num_params = 1,
		.ctx_set_params = (uintptr_t)&p,
	};

	return drmIoctl(fd, DRM_IOCTL_VIRTGPU_CONTEXT_INIT, &ci) ? errno : 0;
}

/* Does the kernel take userptr blobs on @fd (VIRTGPU_PARAM_RESOURCE_USERPTR)? */
static inline bool raw_has_userptr(int fd)
{
	int value = 0;
	struct drm_virtgpu_getparam gp = {
		.param = VIRTGPU_PARAM_RESOURCE_USERPTR,
		.value = (uintptr_t)&value,
	};

	return drmIoctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, &gp) == 0 && value == 1;
}

/* Write @s to the sysfs file @path; 0 or an errno. */
static inline int sysfs_write(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return errno;
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		err = errno ? errno : EIO;
	close(fd);
	return err;
}

/*
 * The command line of these programs: nothing, or --node PATH (default
 * /dev/dri/renderD128). 0, or 2 after a usage message.
 */
static inline int parse_node_arg(int argc, char **argv, const char *prog, const char **node)
{
	*node = "/dev/dri/renderD128";
	if (argc == 3 && strcmp(argv[1], "--node") == 0) {
		*node = argv[2];
		return 0;
	}
	if (argc == 1)
		return 0;
	fprintf(stderr, "usage: %s [--node PATH]\n", prog);
	return 2;
}

/*
 * The sysfs device of render node @node (/sys/class/drm/NAME/device,
 * resolved) into @devpath, PATH_MAX bytes; false after a TAP bail-out.
 */
static inline bool node_device(const char *node, char *devpath)
{
	char link[PATH_MAX + 32], name[NAME_MAX + 1];

	snprintf(name, sizeof(name), "%s", node);
	snprintf(link, sizeof(link), "/sys/class/drm/%s/device", basename(name));
	if (!realpath(link, devpath)) {
		printf("Bail out! %s: %s\n", link, strerror(errno));
		return false;
	}
	return true;
}

static inline double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Wait up to @ms for @node to exist (@present) or to be gone. */
static inline bool wait_node(const char *node, bool present, int ms)
{
	double end = now_ms() + ms;

	do {
		if ((access(node, F_OK) == 0) == present)
			return true;
		usleep(20000);
	} while (now_ms() < end);
	return false;
}

#endif /* VGPU_GUEST_IOCTL_H */
