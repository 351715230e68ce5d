/* SPDX-License-Identifier: MIT */
/* device.c - opening the render node, probing it, the compute context. */
#include "vgpu_private.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define VGPU_DRIVER_NAME "virtio_gpu"
#define VGPU_STATUS_BLOB_SIZE (VGPU_STATUS_SLOTS * sizeof(struct vgpu_compute_status))

/* ---- fork guard and device loss ---- */

static unsigned long fork_gen;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
	__atomic_add_fetch(&fork_gen, 1, __ATOMIC_RELAXED);
}

static void fork_register(void)
{
	(void)pthread_atfork(NULL, NULL, on_fork_child);
}

void vgpu_fork_guard_init(void)
{
	(void)pthread_once(&fork_once, fork_register);
}

unsigned long vgpu_fork_generation(void)
{
	return __atomic_load_n(&fork_gen, __ATOMIC_RELAXED);
}

bool vgpu_dev_foreign(const struct vgpu_device *dev)
{
	return dev->fork_gen != vgpu_fork_generation();
}

int vgpu_dev_check(const struct vgpu_device *dev, const char *fn)
{
	if (vgpu_dev_foreign(dev))
		return vgpu_fail(-ECHILD, "%s: the device was opened by the parent process; "
				 "after fork() open a new device in the child", fn);
	if (__atomic_load_n(&dev->lost, __ATOMIC_RELAXED))
		return vgpu_fail(-ENODEV, "%s: the device is gone (an earlier call got ENODEV "
				 "from the kernel); close it", fn);
	return 0;
}

int vgpu_dev_err(struct vgpu_device *dev, int err)
{
	if (err == -ENODEV)
		__atomic_store_n(&dev->lost, true, __ATOMIC_RELAXED);
	return err;
}

int vgpu_ioctl(int fd, unsigned long request, void *arg)
{
	errno = 0;
	if (drmIoctl(fd, request, arg) == 0)
		return 0;
	return errno ? -errno : -EIO;
}

static int getparam(int fd, uint64_t param, uint64_t *value)
{
	/* The kernel writes an int at the address in .value. */
	int v = 0;
	struct drm_virtgpu_getparam gp = {
		.param = param,
		.value = (uint64_t)(uintptr_t)&v,
	};
	int err = vgpu_ioctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, &gp);

	if (err)
		return err;
	*value = (uint64_t)(unsigned int)v;
	return 0;
}

/* 0 when fd is a virtio_gpu DRM node (name copied to driver), -ENODEV if
 * it is another driver or not DRM at all. */
static int check_driver(int fd, struct vgpu_info *info)
{
	drmVersionPtr ver = drmGetVersion(fd);
	int err = 0;

	if (!ver)
		return -ENODEV;
	if (!ver->name || strcmp(ver->name, VGPU_DRIVER_NAME) != 0) {
		err = -ENODEV;
	} else if (info) {
		snprintf(info->driver, sizeof(info->driver), "%s", ver->name);
		info->drv_major = ver->version_major;
		info->drv_minor = ver->version_minor;
		info->drv_patch = ver->version_patchlevel;
	}
	drmFreeVersion(ver);
	return err;
}

static int try_node(const char *path, int *fd_out)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (check_driver(fd, NULL) != 0) {
		close(fd);
		return -ENODEV;
	}
	*fd_out = fd;
	return 0;
}

/* Find the first virtio_gpu render node: libdrm's enumeration first, then
 * the render node names directly (libdrm skips devices on buses it does
 * not parse, such as UML's virtio platform device). */
static int find_node(char *path, size_t path_size, int *fd_out)
{
	drmDevicePtr devs[64];
	int n = drmGetDevices2(0, devs, 64);

	if (n > 0) {
		int found = -ENODEV;

		for (int i = 0; i < n && found; i++) {
			const char *node;

			if (!(devs[i]->available_nodes & (1 << DRM_NODE_RENDER)))
				continue;
			node = devs[i]->nodes[DRM_NODE_RENDER];
			if (try_node(node, fd_out) == 0) {
				snprintf(path, path_size, "%s", node);
				found = 0;
			}
		}
		drmFreeDevices(devs, n);
		if (!found)
			return 0;
	}
	for (int minor = 128; minor < 192; minor++) {
		char p[64];

		snprintf(p, sizeof(p), "/dev/dri/renderD%d", minor);
		if (try_node(p, fd_out) == 0) {
			snprintf(path, path_size, "%s", p);
			return 0;
		}
	}
	return -ENODEV;
}

static void probe_params(struct vgpu_device *dev)
{
	struct {
		uint64_t param;
		int64_t *field;
	} params[] = {
		{ VIRTGPU_PARAM_3D_FEATURES, &dev->info.param_3d_features },
		{ VIRTGPU_PARAM_CAPSET_QUERY_FIX, &dev->info.param_capset_query_fix },
		{ VIRTGPU_PARAM_RESOURCE_BLOB, &dev->info.param_resource_blob },
		{ VIRTGPU_PARAM_HOST_VISIBLE, &dev->info.param_host_visible },
		{ VIRTGPU_PARAM_CROSS_DEVICE, &dev->info.param_cross_device },
		{ VIRTGPU_PARAM_CONTEXT_INIT, &dev->info.param_context_init },
		{ VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs, &dev->info.param_supported_capset_ids },
		{ VIRTGPU_PARAM_EXPLICIT_DEBUG_NAME, &dev->info.param_explicit_debug_name },
		{ VIRTGPU_PARAM_RESOURCE_USERPTR, &dev->info.param_resource_userptr },
	};

	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		uint64_t v;

		*params[i].field = getparam(dev->fd, params[i].param, &v) ? -1 : (int64_t)v;
	}
}

static int context_init(struct vgpu_device *dev)
{
	/* Rings: each is its own fence timeline in the kernel, and the device
	 * sees the ring of every fenced submit (VIRTIO_GPU_FLAG_INFO_RING_IDX). */
	struct drm_virtgpu_context_set_param p[3] = {
		{ .param = VIRTGPU_CONTEXT_PARAM_CAPSET_ID, .value = VGPU_COMPUTE_CAPSET_ID },
		{ .param = VIRTGPU_CONTEXT_PARAM_NUM_RINGS, .value = VGPU_NUM_RINGS },
		{ .param = VIRTGPU_CONTEXT_PARAM_DEBUG_NAME,
		  .value = (uint64_t)(uintptr_t)VGPU_COMPUTE_CTX_NAME },
	};
	struct drm_virtgpu_context_init ci = {
		.num_params = dev->info.param_explicit_debug_name > 0 ? 3 : 2,
		.ctx_set_params = (uint64_t)(uintptr_t)p,
	};
	int err = vgpu_ioctl(dev->fd, DRM_IOCTL_VIRTGPU_CONTEXT_INIT, &ci);

	if (!err)
		dev->info.num_rings = VGPU_NUM_RINGS;
	/* The kernel answers EEXIST when the fd already has a context. */
	return err == -EEXIST ? -EBUSY : err;
}

/*
 * The newest capset version both the library and the device know: the
 * kernel refuses (EINVAL) a version above the device's, so ask from the
 * library's newest down. Fields of versions the device lacks stay 0.
 */
static int get_caps(struct vgpu_device *dev)
{
	struct vgpu_compute_caps caps;
	uint32_t ver;
	int err = -EINVAL;

	for (ver = VGPU_COMPUTE_CAPSET_VERSION; ver >= VGPU_COMPUTE_CAPSET_VERSION_MIN; ver--) {
		struct drm_virtgpu_get_caps gc = {
			.cap_set_id = VGPU_COMPUTE_CAPSET_ID,
			.cap_set_ver = ver,
			.addr = (uint64_t)(uintptr_t)&caps,
			.size = ver == 1 ? VGPU_COMPUTE_CAPS_V1_SIZE : sizeof(caps),
		};

		memset(&caps, 0, sizeof(caps));
		err = vgpu_ioctl(dev->fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &gc);
		if (err != -EINVAL)
			break;
	}
	if (err)
		return vgpu_fail(err, "vgpu_open: the compute capset (id %u) answers no version "
				 "from %u to %u: %s", VGPU_COMPUTE_CAPSET_ID,
				 VGPU_COMPUTE_CAPSET_VERSION_MIN, VGPU_COMPUTE_CAPSET_VERSION,
				 strerror(-err));
	dev->info.caps.version = le32toh(caps.version);
	dev->info.caps.max_ops = le32toh(caps.max_ops);
	dev->info.caps.op_mask = le32toh(caps.op_mask);
	dev->info.caps.num_threads = le32toh(caps.num_threads);
	dev->info.caps.max_op_bytes = le64toh(caps.max_op_bytes);
	if (ver >= 2) {
		dev->info.caps.backend = le32toh(caps.backend);
		dev->info.caps.max_gemm_dim = le32toh(caps.max_gemm_dim);
	}
	if (ver >= 3) {
		dev->info.features = le32toh(caps.features);
		dev->info.max_programs = le32toh(caps.max_programs);
		dev->info.max_kernels = le32toh(caps.max_kernels);
		dev->info.max_kernel_args = le32toh(caps.max_kernel_args);
		dev->info.max_program_bytes = le32toh(caps.max_program_bytes);
		dev->info.max_payload_bytes = le32toh(caps.max_payload_bytes);
		dev->info.time_budget_ns = le64toh(caps.time_budget_ns);
		/* Limits the library can hold to, whatever the device claims. */
		if (dev->info.max_programs > VGPU_MAX_IDS)
			dev->info.max_programs = VGPU_MAX_IDS;
		if (dev->info.max_kernels > VGPU_MAX_IDS)
			dev->info.max_kernels = VGPU_MAX_IDS;
		if (dev->info.max_payload_bytes > VGPU_COMPUTE_MAX_PAYLOAD)
			dev->info.max_payload_bytes = VGPU_COMPUTE_MAX_PAYLOAD;
		if (!(dev->info.features & VGPU_FEATURE_PROGRAMS) || !dev->info.max_programs ||
		    !dev->info.max_kernels || !dev->info.max_payload_bytes)
			dev->info.features = 0;
	}
	if (dev->info.caps.version != ver || dev->info.caps.max_ops == 0)
		return vgpu_fail(-EOPNOTSUPP, "vgpu_open: the device answered capset version %u "
				 "with version %u and %u ops a submit", ver,
				 dev->info.caps.version, dev->info.caps.max_ops);
	/* Only the ops of the version in use, whatever the device claims. */
	if (ver == 1)
		dev->info.caps.op_mask &= VGPU_COMPUTE_OP_MASK_V1;
	else if (ver == 2 || !dev->info.features)
		dev->info.caps.op_mask &= VGPU_COMPUTE_OP_MASK_V2;
	else
		dev->info.caps.op_mask &= VGPU_COMPUTE_OP_MASK;
	if (dev->info.caps.max_ops > VGPU_COMPUTE_MAX_OPS)
		dev->info.caps.max_ops = VGPU_COMPUTE_MAX_OPS;
	return 0;
}

int vgpu_create_blob(struct vgpu_device *dev, uint32_t blob_mem, uint32_t blob_flags,
		     uint64_t size, uint64_t userptr, uint32_t *handle, uint32_t *res_id)
{
	int err;

	if (userptr) {
		vgpu_create_blob_t cb;
		struct drm_virtgpu_resource_create_blob *base = vgpu_blob_base(&cb);

		memset(&cb, 0, sizeof(cb));
		base->blob_mem = blob_mem;
		base->blob_flags = blob_flags;
		base->size = size;
		vgpu_blob_set_userptr(&cb, userptr);
		err = vgpu_ioctl(dev->fd, VGPU_IOCTL_CREATE_BLOB_USERPTR, &cb);
		if (err)
			return err;
		*handle = base->bo_handle;
		*res_id = base->res_handle;
	} else {
		struct drm_virtgpu_resource_create_blob cb;

		memset(&cb, 0, sizeof(cb));
		cb.blob_mem = blob_mem;
		cb.blob_flags = blob_flags;
		cb.size = size;
		err = vgpu_ioctl(dev->fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &cb);
		if (err)
			return err;
		*handle = cb.bo_handle;
		*res_id = cb.res_handle;
	}
	return 0;
}

int vgpu_map_blob(struct vgpu_device *dev, uint32_t handle, size_t size, void **map)
{
	struct drm_virtgpu_map m = { .handle = handle };
	void *p;
	int err = vgpu_ioctl(dev->fd, DRM_IOCTL_VIRTGPU_MAP, &m);

	if (err)
		return err;
	/* Populate now: faulting page by page is slow in a UML guest. */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		 dev->fd, (off_t)m.offset);
	if (p == MAP_FAILED)
		return -errno;
	*map = p;
	return 0;
}

void vgpu_close_handle(struct vgpu_device *dev, uint32_t handle)
{
	struct drm_gem_close gc = { .handle = handle };

	if (handle)
		(void)vgpu_ioctl(dev->fd, DRM_IOCTL_GEM_CLOSE, &gc);
}

static int device_init(struct vgpu_device *dev, const char *path)
{
	int err;

	dev->page_size = (size_t)sysconf(_SC_PAGESIZE);
	snprintf(dev->info.path, sizeof(dev->info.path), "%s", path);
	err = check_driver(dev->fd, &dev->info);
	if (err)
		return vgpu_fail(err, "vgpu_open: %s is not a DRM node of driver " VGPU_DRIVER_NAME,
				 path);
	probe_params(dev);
	/* Execbuffer and context init need the 3D feature set, the compute
	 * context needs context init and its capset, buffers need blobs. */
	if (dev->info.param_3d_features <= 0)
		return vgpu_fail(-EOPNOTSUPP, "vgpu_open: %s: the device has no 3D feature set "
				 "(VIRTGPU_PARAM_3D_FEATURES)", path);
	if (dev->info.param_resource_blob <= 0)
		return vgpu_fail(-EOPNOTSUPP, "vgpu_open: %s: the device or kernel has no blob "
				 "resources (VIRTGPU_PARAM_RESOURCE_BLOB)", path);
	if (dev->info.param_context_init <= 0)
		return vgpu_fail(-EOPNOTSUPP, "vgpu_open: %s: the device or kernel has no context "
				 "init (VIRTGPU_PARAM_CONTEXT_INIT)", path);
	if (dev->info.param_supported_capset_ids < 0 ||
	    !((uint64_t)dev->info.param_supported_capset_ids & (1ull << VGPU_COMPUTE_CAPSET_ID)))
		return vgpu_fail(-EOPNOTSUPP, "vgpu_open: %s: the device has no compute capset "
				 "(id %u)", path, VGPU_COMPUTE_CAPSET_ID);
	dev->info.userptr_disabled = (dev->flags & VGPU_OPEN_NO_USERPTR) != 0;
	dev->userptr = dev->info.param_resource_userptr > 0 && !dev->info.userptr_disabled;
	dev->info.userptr = dev->userptr;
	err = context_init(dev);
	if (err)
		return vgpu_fail(err, "vgpu_open: %s: creating the compute context failed: %s%s",
				 path, strerror(-err), err == -EBUSY ?
				 " (the DRM file already has a context)" : "");
	err = get_caps(dev);
	if (err)
		return err;
	dev->info.max_in_flight = VGPU_STATUS_SLOTS;
	dev->status_size = VGPU_STATUS_BLOB_SIZE;
	err = vgpu_create_blob(dev, VIRTGPU_BLOB_MEM_GUEST, VIRTGPU_BLOB_FLAG_USE_MAPPABLE,
			       dev->status_size, 0, &dev->status_handle, &dev->status_res_id);
	if (!err)
		err = vgpu_map_blob(dev, dev->status_handle, dev->status_size, &dev->status_map);
	if (err)
		return vgpu_fail(err, "vgpu_open: %s: the status blob (%zu bytes): %s", path,
				 dev->status_size, strerror(-err));
	return 0;
}

static int device_new(int fd, const char *path, unsigned int flags, struct vgpu_device **out)
{
	struct vgpu_device *dev = calloc(1, sizeof(*dev));
	int err;

	if (!dev) {
		close(fd);
		return vgpu_fail(-ENOMEM, "vgpu_open: out of memory");
	}
	dev->fd = fd;
	dev->flags = flags;
	vgpu_fork_guard_init();
	dev->fork_gen = vgpu_fork_generation();
	pthread_mutex_init(&dev->lock, NULL);
	pthread_cond_init(&dev->retired_cv, NULL);
	pthread_cond_init(&dev->cache.pending_cv, NULL);
	err = device_init(dev, path);
	if (err) {
		vgpu_close(dev);
		return err;
	}
	*out = dev;
	return 0;
}

VGPU_EXPORT int vgpu_open(const char *path, unsigned int flags, struct vgpu_device **out)
{
	char found[64];
	int fd = -1;
	int err;

	if (!out)
		return vgpu_fail(-EINVAL, "vgpu_open: out is NULL");
	*out = NULL;
	if (flags & ~VGPU_OPEN_NO_USERPTR)
		return vgpu_fail(-EINVAL, "vgpu_open: unknown flags 0x%x", flags & ~VGPU_OPEN_NO_USERPTR);
	if (!path)
		path = getenv("VGPU_DEVICE");
	if (path && *path) {
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return vgpu_fail(-errno, "vgpu_open: open %s: %s", path, strerror(errno));
		snprintf(found, sizeof(found), "%s", path);
	} else {
		err = find_node(found, sizeof(found), &fd);
		if (err)
			return vgpu_fail(err, "vgpu_open: no render node of driver " VGPU_DRIVER_NAME
					 " (searched libdrm's devices and /dev/dri/renderD128..191)");
	}
	return device_new(fd, found, flags, out);
}

VGPU_EXPORT int vgpu_open_fd(int fd, unsigned int flags, struct vgpu_device **out)
{
	char name[64];
	int nfd;

	if (!out || fd < 0 || (flags & ~VGPU_OPEN_NO_USERPTR))
		return vgpu_fail(-EINVAL, "vgpu_open_fd: out NULL, fd negative or unknown flags");
	*out = NULL;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (nfd < 0)
		return vgpu_fail(-errno, "vgpu_open_fd: dup of fd %d: %s", fd, strerror(errno));
	snprintf(name, sizeof(name), "fd %d", fd);
	return device_new(nfd, name, flags, out);
}

/* In a fork child: free this process's copies only. The lock may have been
 * held by a parent thread at fork() time, and every handle belongs to the
 * parent's open file: no lock, no ioctl. */
static void close_foreign(struct vgpu_device *dev)
{
	while (dev->buffers) {
		struct vgpu_buffer *b = dev->buffers;

		dev->buffers = b->next;
		if (b->map)
			munmap(b->map, b->blob_size);
		free(b);
	}
	if (dev->status_map)
		munmap(dev->status_map, dev->status_size);
	if (dev->fd >= 0)
		close(dev->fd);
	free(dev);
}

VGPU_EXPORT void vgpu_close(struct vgpu_device *dev)
{
	if (!dev)
		return;
	if (vgpu_dev_foreign(dev)) {
		close_foreign(dev);
		return;
	}
	vgpu_retire_all(dev);
	while (dev->buffers) {
		struct vgpu_buffer *b = dev->buffers;

		/* Retired fences hold no buffer: only the caller's reference
		 * is left. */
		pthread_mutex_lock(&dev->lock);
		b->refs = 1;
		b->destroyed = false;
		b->cached = false;
		pthread_mutex_unlock(&dev->lock);
		vgpu_buffer_destroy(b);
	}
	if (dev->status_map)
		munmap(dev->status_map, dev->status_size);
	vgpu_close_handle(dev, dev->status_handle);
	if (dev->fd >= 0)
		close(dev->fd);
	pthread_mutex_destroy(&dev->lock);
	pthread_cond_destroy(&dev->retired_cv);
	pthread_cond_destroy(&dev->cache.pending_cv);
	free(dev->prog_ids);
	free(dev->kernel_ids);
	free(dev);
}

/* struct vgpu_info as version 1.0 of the library first shipped it. */
#define VGPU_INFO_MIN_SIZE offsetof(struct vgpu_info, num_rings)

VGPU_EXPORT int vgpu_query_info(const struct vgpu_device *dev, struct vgpu_info *info)
{
	struct vgpu_info tmp;
	size_t n;

	if (!dev || !info)
		return vgpu_fail(-EINVAL, "vgpu_query_info: dev or info is NULL");
	if (info->struct_size < VGPU_INFO_MIN_SIZE)
		return vgpu_fail(-EINVAL, "vgpu_query_info: info->struct_size %zu is smaller than "
				 "any struct vgpu_info (set it to sizeof(struct vgpu_info))",
				 info->struct_size);
	n = info->struct_size < sizeof(tmp) ? info->struct_size : sizeof(tmp);
	tmp = dev->info;
	tmp.struct_size = n;
	memcpy(info, &tmp, n);
	return 0;
}

VGPU_EXPORT int vgpu_get_param(const struct vgpu_device *dev, uint64_t param, uint64_t *value)
{
	int err;

	if (!dev || !value)
		return vgpu_fail(-EINVAL, "vgpu_get_param: dev or value is NULL");
	err = vgpu_dev_check(dev, "vgpu_get_param");
	if (err)
		return err;
	return vgpu_dev_err((struct vgpu_device *)dev, getparam(dev->fd, param, value));
}

VGPU_EXPORT bool vgpu_has_userptr(const struct vgpu_device *dev)
{
	return dev && dev->userptr;
}

VGPU_EXPORT int vgpu_device_fd(const struct vgpu_device *dev)
{
	return dev ? dev->fd : -EINVAL;
}
