/* SPDX-License-Identifier: MIT */
/*
 * vgpu-test - libvgpu against the real device, inside the guest. Prints TAP.
 *
 * Runs in any mode of the device and kernel: "userptr" (buffers from user
 * memory are zero-copy, read-only ones too), "plain" (a device that knows
 * nothing of userptr, the daemon run with --no-userptr: read-write buffers
 * are still zero-copy, as ordinary guest blobs, read-only ones are copied)
 * or "copy" (no userptr at all, e.g. DMA that would bounce: the library
 * takes the copy path). The test detects the mode and checks that every
 * buffer took the path the mode implies; VGPU_TEST_MODE=userptr|plain|copy
 * in the environment makes it also assert the mode itself. Every host result is compared with the value computed here.
 *
 *   vgpu-test [--max-size SIZE_MB]   (default 256)
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xf86drm.h>
#include <xxhash.h>
#include <drm/virtgpu_drm.h>

#include "guest-check.h"
#include "tap.h"
#include "vgpu.h"

#ifdef VIRTGPU_PARAM_RESOURCE_USERPTR
#define PARAM_RESOURCE_USERPTR VIRTGPU_PARAM_RESOURCE_USERPTR
#else
#define PARAM_RESOURCE_USERPTR 9 /* headers of an unpatched kernel */
#endif

static struct vgpu_device *dev;
static struct vgpu_info info;
static bool userptr_mode;
/* Read-only buffers are zero-copy too: the device promises not to write
 * them (VIRTIO_GPU_F_BLOB_RDONLY); without it they take the copy path. */
static bool ro_zero_copy;
static size_t page;
static uint64_t max_size = 256ull << 20;

/* ---- helpers ---- */

static void *map_anon(size_t size, int prot)
{
	void *p = mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED) {
		tap_diag("mmap %zu bytes: %s", size, strerror(errno));
		printf("Bail out! out of memory\n");
		exit(1);
	}
	return p;
}

/* A buffer over fresh anonymous memory. */
struct ubuf {
	uint8_t *p;
	size_t size;
	struct vgpu_buffer *b;
};

static int ubuf_new(struct ubuf *u, size_t size, unsigned int flags)
{
	int err;

	u->size = size;
	u->p = map_anon(size, PROT_READ | PROT_WRITE);
	err = vgpu_buffer_from_user(dev, u->p, size, flags, &u->b);
	if (err) {
		tap_diag("vgpu_buffer_from_user(%zu, 0x%x): %s", size, flags, vgpu_strerror(err));
		munmap(u->p, size);
		u->p = NULL;
		u->b = NULL;
	}
	return err;
}

static void ubuf_free(struct ubuf *u)
{
	vgpu_buffer_destroy(u->b);
	if (u->p)
		munmap(u->p, u->size);
	memset(u, 0, sizeof(*u));
}

/*
 * Pages are unpinned when the device has acknowledged the release of the
 * resource, a little after the GEM handle is closed: poll (bounded).
 */
static bool wait_pinned(long want_pages, long want_objects)
{
	long pages, objs;

	if (debugfs_wait(want_pages, want_objects, 2000, &pages, &objs))
		return true;
	tap_diag("debugfs still says %ld pages, %ld objects (want %ld, %ld)", pages, objs,
		 want_pages, want_objects);
	return false;
}

static bool wait_vm_pin(long want_kb)
{
	long kb;

	if (vm_pin_wait(want_kb, 2000, &kb))
		return true;
	tap_diag("VmPin is %ld kB, want %ld kB", kb, want_kb);
	return false;
}

static void test_vm_pin(void)
{
	struct ubuf u = { 0 };
	long before = vm_pin_kb(0), during;

	if (!tap_ok(before >= 0, "/proc/self/status has VmPin"))
		return;
	/* No userptr buffer of ours is alive: once the earlier ones are
	 * released (asynchronously, after the device's answer) it is 0. */
	tap_ok(wait_vm_pin(0), "VmPin drops to 0 kB when no buffer is alive");
	before = vm_pin_kb(0);
	if (ubuf_new(&u, 1 << 20, 0)) {
		tap_ok(0, "VmPin: 1 MiB buffer");
		return;
	}
	during = vm_pin_kb(0);
	tap_eq(during - before, userptr_mode ? 1024 : 0, "VmPin grows by %d kB with a 1 MiB buffer",
	       userptr_mode ? 1024 : 0);
	ubuf_free(&u);
	tap_ok(wait_vm_pin(before), "VmPin back to %ld kB after destroy", before);
}

static int run1(struct vgpu_batch *b, struct vgpu_submit_result *r)
{
	int err = vgpu_batch_submit(b, r);

	if (err && r)
		tap_diag("submit: %s (device result %u \"%s\", op %u, done %" PRIu64 ")",
			 vgpu_strerror(err), r->device_result, vgpu_result_str(r->device_result),
			 r->op_index, r->ops_done);
	return err;
}

/* ---- device and info ---- */

/* Does the kernel take a read-only page zero-copy? */
static bool probe_ro_zero_copy(void)
{
	uint8_t *p = map_anon(page, PROT_READ);
	struct vgpu_buffer *b = NULL;
	int err = p ? vgpu_buffer_from_user(dev, p, page, VGPU_BUF_READ_ONLY | VGPU_BUF_ZERO_COPY, &b)
		    : -ENOMEM;

	vgpu_buffer_destroy(b);
	if (p)
		munmap(p, page);
	tap_diag("a read-only buffer is %s", err == 0 ? "zero-copy" : "copied");
	return err == 0;
}

static void test_info(void)
{
	const char *want = getenv("VGPU_TEST_MODE");
	const char *mode;
	uint64_t v = 0;

	tap_eq(vgpu_get_info(dev, &info), 0, "vgpu_get_info");
	tap_ok(strcmp(info.driver, "virtio_gpu") == 0, "driver is virtio_gpu (%s, %s)",
	       info.driver, info.path);
	tap_ok(info.param_3d_features > 0, "3D_FEATURES");
	tap_ok(info.param_resource_blob > 0, "RESOURCE_BLOB");
	tap_ok(info.param_context_init > 0, "CONTEXT_INIT");
	tap_ok(info.param_supported_capset_ids > 0 &&
	       ((uint64_t)info.param_supported_capset_ids & (1ull << VGPU_COMPUTE_CAPSET_ID)),
	       "capset %u supported (mask 0x%" PRIx64 ")", VGPU_COMPUTE_CAPSET_ID,
	       (uint64_t)info.param_supported_capset_ids);
	tap_ok(info.param_resource_userptr >= 0, "the kernel knows VIRTGPU_PARAM_RESOURCE_USERPTR");
	tap_eq(info.caps.version, VGPU_COMPUTE_CAPSET_VERSION, "compute capset version");
	tap_eq(info.caps.max_ops, VGPU_COMPUTE_MAX_OPS, "compute capset max_ops");
	tap_eq(info.caps.op_mask & VGPU_COMPUTE_OP_MASK, VGPU_COMPUTE_OP_MASK,
	       "compute capset has every op");
	tap_ok(info.caps.max_op_bytes >= max_size, "max_op_bytes %" PRIu64 " covers the sizes tested",
	       (uint64_t)info.caps.max_op_bytes);
	userptr_mode = vgpu_has_userptr(dev);
	ro_zero_copy = userptr_mode && probe_ro_zero_copy();
	mode = !userptr_mode ? "copy" : ro_zero_copy ? "userptr" : "plain";
	tap_eq(userptr_mode, info.param_resource_userptr > 0,
	       "vgpu_has_userptr follows RESOURCE_USERPTR (%s mode)", mode);
	if (want)
		tap_ok(strcmp(want, mode) == 0, "mode is the one expected (VGPU_TEST_MODE=%s)", want);
	tap_eq(vgpu_get_param(dev, PARAM_RESOURCE_USERPTR, &v), 0,
	       "vgpu_get_param(RESOURCE_USERPTR)");
	tap_eq((long long)v, info.param_resource_userptr, "vgpu_get_param agrees with vgpu_get_info");
	tap_ok(vgpu_get_param(dev, 12345, &v) < 0, "vgpu_get_param(unknown) fails");
	tap_eq(vgpu_get_param(dev, 1, NULL), -EINVAL, "vgpu_get_param(value NULL) = -EINVAL");
	tap_eq(vgpu_get_info(dev, NULL), -EINVAL, "vgpu_get_info(NULL) = -EINVAL");
	tap_ok(vgpu_device_fd(dev) >= 0, "vgpu_device_fd");
}

static void test_open_variants(void)
{
	struct vgpu_device *d2 = NULL, *d3 = NULL;
	struct vgpu_buffer *b = NULL;
	uint8_t *p = map_anon(page, PROT_READ | PROT_WRITE);
	int fd;

	tap_eq(vgpu_open(NULL, 0, &d2), 0, "a second device on the same node");
	vgpu_close(d2);
	d2 = NULL;
	tap_eq(vgpu_open(info.path, VGPU_OPEN_NO_USERPTR, &d2), 0,
	       "vgpu_open(path, VGPU_OPEN_NO_USERPTR)");
	if (d2) {
		struct vgpu_info i2;

		tap_ok(!vgpu_has_userptr(d2), "VGPU_OPEN_NO_USERPTR disables userptr");
		vgpu_get_info(d2, &i2);
		tap_ok(i2.userptr_disabled && !i2.userptr, "info says userptr disabled");
		tap_eq(vgpu_buffer_from_user(d2, p, page, 0, &b), 0, "buffer on a NO_USERPTR device");
		tap_ok(b && !vgpu_buffer_is_zero_copy(b), "it took the copy path");
		tap_eq(vgpu_buffer_from_user(d2, p, page, VGPU_BUF_ZERO_COPY, &b), -EOPNOTSUPP,
		       "VGPU_BUF_ZERO_COPY on a NO_USERPTR device = -EOPNOTSUPP");
		vgpu_close(d2); /* destroys the live buffer */
		tap_ok(1, "vgpu_close with a live buffer");
	}
	fd = open(info.path, O_RDWR | O_CLOEXEC);
	tap_ok(fd >= 0, "open(%s)", info.path);
	tap_eq(vgpu_open_fd(fd, 0, &d2), 0, "vgpu_open_fd on a fresh fd");
	tap_eq(vgpu_open_fd(fd, 0, &d3), -EBUSY, "vgpu_open_fd on an fd with a context = -EBUSY");
	tap_ok(d3 == NULL, "no device on -EBUSY");
	vgpu_close(d2);
	close(fd);
	setenv("VGPU_DEVICE", "/dev/null", 1);
	tap_eq(vgpu_open(NULL, 0, &d2), -ENODEV, "VGPU_DEVICE=/dev/null: -ENODEV");
	setenv("VGPU_DEVICE", info.path, 1);
	tap_eq(vgpu_open(NULL, 0, &d2), 0, "VGPU_DEVICE=%s", info.path);
	vgpu_close(d2);
	unsetenv("VGPU_DEVICE");
	munmap(p, page);
}

/* ---- buffers ---- */

static void test_buffer_args(void)
{
	struct vgpu_buffer *b = NULL;
	uint8_t *p = map_anon(4 * page, PROT_READ | PROT_WRITE);
	uint8_t *ro, *none, *gone;
	int err;

	tap_eq(vgpu_buffer_from_user(dev, p, 0, 0, &b), -EINVAL, "size 0 = -EINVAL");
	tap_eq(vgpu_buffer_from_user(dev, NULL, page, 0, &b), -EINVAL, "NULL address = -EINVAL");
	tap_eq(vgpu_buffer_from_user(dev, p, page, 0x100, &b), -EINVAL, "unknown flag = -EINVAL");
	tap_eq(vgpu_buffer_from_user(dev, p, page, VGPU_BUF_COPY | VGPU_BUF_ZERO_COPY, &b), -EINVAL,
	       "COPY with ZERO_COPY = -EINVAL");
	tap_eq(vgpu_buffer_from_user(dev, (void *)(UINTPTR_MAX & ~(uintptr_t)(page - 1)), 2 * page,
				     0, &b), -EINVAL, "range wrapping around = -EINVAL");
	tap_ok(b == NULL, "no buffer after errors");

	err = vgpu_buffer_from_user(dev, p, page, VGPU_BUF_ZERO_COPY, &b);
	if (userptr_mode) {
		tap_eq(err, 0, "VGPU_BUF_ZERO_COPY with userptr");
		tap_ok(vgpu_buffer_is_zero_copy(b), "and it is zero-copy");
	} else {
		tap_eq(err, -EOPNOTSUPP, "VGPU_BUF_ZERO_COPY without userptr = -EOPNOTSUPP");
		tap_ok(b == NULL, "and no buffer");
	}
	vgpu_buffer_destroy(b);
	b = NULL;

	tap_eq(vgpu_buffer_from_user(dev, p, 4 * page, 0, &b), 0, "4-page RW buffer");
	tap_eq(vgpu_buffer_is_zero_copy(b), userptr_mode, "path matches the mode (%s)",
	       vgpu_buffer_is_zero_copy(b) ? "zero-copy" : "copy");
	tap_ok(vgpu_buffer_size(b) == 4 * page && vgpu_buffer_data(b) == p &&
	       !vgpu_buffer_is_read_only(b), "size, data, read-only getters");
	tap_ok(vgpu_buffer_res_id(b) != 0 && vgpu_buffer_handle(b) != 0, "res_id %u handle %u",
	       vgpu_buffer_res_id(b), vgpu_buffer_handle(b));
	{
		/* The kernel refuses to map or export a userptr object. */
		struct drm_virtgpu_map m = { .handle = vgpu_buffer_handle(b) };
		int r = drmIoctl(vgpu_device_fd(dev), DRM_IOCTL_VIRTGPU_MAP, &m);
		int map_err = r ? -errno : 0, fd = -1;
		int prime_err = drmPrimeHandleToFD(vgpu_device_fd(dev), vgpu_buffer_handle(b),
						   DRM_CLOEXEC, &fd);

		if (prime_err)
			prime_err = -errno;
		if (fd >= 0)
			close(fd);
		if (userptr_mode) {
			tap_eq(map_err, -EPERM, "DRM_IOCTL_VIRTGPU_MAP of a userptr object = -EPERM");
			tap_eq(prime_err, -EPERM, "PRIME export of a userptr object = -EPERM");
		} else {
			tap_eq(map_err, 0, "DRM_IOCTL_VIRTGPU_MAP of a copy-path blob works");
			tap_eq(prime_err, 0, "PRIME export of a copy-path blob works");
		}
	}
	vgpu_buffer_destroy(b);
	b = NULL;
	tap_eq(vgpu_buffer_from_user(dev, p, page, VGPU_BUF_COPY, &b), 0, "VGPU_BUF_COPY buffer");
	tap_ok(!vgpu_buffer_is_zero_copy(b), "VGPU_BUF_COPY takes the copy path");
	vgpu_buffer_destroy(b);
	b = NULL;

	/* Memory the kernel (or the copy path's check) must refuse. */
	gone = map_anon(2 * page, PROT_READ | PROT_WRITE);
	munmap(gone, 2 * page);
	tap_eq(vgpu_buffer_from_user(dev, gone, 2 * page, 0, &b), -EFAULT, "unmapped range = -EFAULT");
	tap_eq(vgpu_buffer_from_user(dev, gone, 2 * page, VGPU_BUF_READ_ONLY, &b), -EFAULT,
	       "unmapped range, read-only = -EFAULT");
	gone = map_anon(2 * page, PROT_READ | PROT_WRITE);
	munmap(gone + page, page);
	tap_eq(vgpu_buffer_from_user(dev, gone, 2 * page, 0, &b), -EFAULT,
	       "half-mapped range = -EFAULT");
	munmap(gone, page);
	none = map_anon(page, PROT_NONE);
	tap_eq(vgpu_buffer_from_user(dev, none, page, VGPU_BUF_READ_ONLY, &b), -EFAULT,
	       "PROT_NONE = -EFAULT");
	munmap(none, page);
	ro = map_anon(page, PROT_READ);
	tap_eq(vgpu_buffer_from_user(dev, ro, page, 0, &b), -EFAULT,
	       "read-only memory as a RW buffer = -EFAULT");
	tap_eq(vgpu_buffer_from_user(dev, ro, page, VGPU_BUF_READ_ONLY, &b), 0,
	       "read-only memory as a read-only buffer");
	tap_ok(vgpu_buffer_is_read_only(b), "vgpu_buffer_is_read_only");
	vgpu_buffer_destroy(b);
	b = NULL;
	munmap(ro, page);

	/* Library-allocated blobs. */
	tap_eq(vgpu_buffer_alloc(dev, 100, 0, &b), 0, "vgpu_buffer_alloc(100)");
	if (b) {
		tap_ok(vgpu_buffer_size(b) == 100 && vgpu_buffer_data(b) &&
		       all_bytes(vgpu_buffer_data(b), page, 0), "alloc'd blob: size 100, mapped, zeroed");
		vgpu_buffer_destroy(b);
		b = NULL;
	}
	tap_eq(vgpu_buffer_alloc(dev, 0, 0, &b), -EINVAL, "vgpu_buffer_alloc(0) = -EINVAL");
	tap_eq(vgpu_buffer_alloc(dev, page, VGPU_BUF_COPY, &b), -EINVAL,
	       "vgpu_buffer_alloc(VGPU_BUF_COPY) = -EINVAL");
	tap_eq(vgpu_buffer_alloc(dev, page, 0, NULL), -EINVAL, "vgpu_buffer_alloc(out NULL) = -EINVAL");
	munmap(p, 4 * page);
}

/* ---- ops: results equal to the guest's ---- */

static void test_ops(unsigned int extra_flags, const char *tag)
{
	struct ubuf d = { 0 }, s = { 0 }, x = { 0 }, y = { 0 }, r = { 0 };
	struct vgpu_batch *b = NULL;
	struct vgpu_submit_result res;
	const size_t n = 64 * 1024, big = 1 << 20;
	bool ok;

	if (ubuf_new(&d, n, extra_flags) || ubuf_new(&s, big, VGPU_BUF_READ_ONLY | extra_flags) ||
	    ubuf_new(&r, page, extra_flags) || vgpu_batch_create(dev, &b)) {
		tap_ok(0, "%s: setting up buffers", tag);
		goto out;
	}
	tap_eq(vgpu_buffer_is_zero_copy(d.b), userptr_mode && !(extra_flags & VGPU_BUF_COPY),
	       "%s: path as expected", tag);

	/* FILL */
	memset(d.p, 0xaa, n);
	tap_eq(vgpu_batch_fill(b, d.b, 4096, 8192, 0xdeadbeefu), 0, "%s: add fill", tag);
	tap_eq(run1(b, &res), 0, "%s: fill submit", tag);
	ok = all_bytes(d.p, 4096, 0xaa) && all_bytes(d.p + 4096 + 8192, n - 4096 - 8192, 0xaa);
	for (size_t i = 4096; i < 4096 + 8192; i += 4) {
		uint32_t w;

		memcpy(&w, d.p + i, 4);
		ok = ok && le32toh(w) == 0xdeadbeefu;
	}
	tap_ok(ok, "%s: fill wrote the value in range and nothing else", tag);
	tap_ok(res.device_result == 0 && res.ops_done == 1 && res.op_index == 1 && res.num_ops == 1,
	       "%s: result record (ok, 1 op done)", tag);
	vgpu_batch_reset(b);
	tap_eq(vgpu_batch_num_ops(b), 0, "%s: vgpu_batch_reset", tag);

	/* COPY */
	fill_pattern(s.p, big, 7);
	memset(d.p, 0, n);
	tap_eq(vgpu_batch_copy(b, d.b, 4096, s.b, 8192, n - 8192), 0, "%s: add copy", tag);
	tap_eq(run1(b, &res), 0, "%s: copy submit", tag);
	tap_ok(all_bytes(d.p, 4096, 0) && memcmp(d.p + 4096, s.p + 8192, n - 8192) == 0 &&
	       all_bytes(d.p + 4096 + n - 8192, 4096, 0), "%s: copy result exact", tag);
	vgpu_batch_reset(b);

	/* CHECKSUM, two seeds, odd offset and length */
	tap_eq(vgpu_batch_checksum(b, r.b, 0, s.b, 12345, 100003, 0), 0, "%s: add checksum", tag);
	tap_eq(vgpu_batch_checksum(b, r.b, 8, s.b, 0, big, 0x1234567890abcdefull), 0,
	       "%s: add checksum (seed)", tag);
	tap_eq(run1(b, &res), 0, "%s: checksum submit", tag);
	tap_eq((long long)rd64(r.p), (long long)XXH64(s.p + 12345, 100003, 0),
	       "%s: XXH64 of an odd range equals the guest's", tag);
	tap_eq((long long)rd64(r.p + 8), (long long)XXH64(s.p, big, 0x1234567890abcdefull),
	       "%s: XXH64 with a seed equals the guest's", tag);
	/* The same batch again, after the data changed: seen by the device. */
	fill_pattern(s.p, big, 8);
	tap_eq(run1(b, &res), 0, "%s: resubmit after changing the data", tag);
	tap_eq((long long)rd64(r.p + 8), (long long)XXH64(s.p, big, 0x1234567890abcdefull),
	       "%s: the device saw the new data", tag);
	vgpu_batch_reset(b);

	/* SAXPY and SUM_F32 (values exact in f32, so the result is exact) */
	if (ubuf_new(&x, n, VGPU_BUF_READ_ONLY | extra_flags) || ubuf_new(&y, n, extra_flags)) {
		tap_ok(0, "%s: saxpy buffers", tag);
		goto out;
	}
	{
		float *xf = (float *)x.p, *yf = (float *)y.p, *want = malloc(n);
		double sum = 0;

		for (size_t i = 0; i < n / 4; i++) {
			xf[i] = (float)(i % 1000) * 0.5f - 100.0f;
			yf[i] = (float)(i % 77) * 0.25f;
			want[i] = 1.5f * xf[i] + yf[i];
		}
		tap_eq(vgpu_batch_saxpy(b, y.b, 0, x.b, 0, n, 1.5f), 0, "%s: add saxpy", tag);
		tap_eq(run1(b, &res), 0, "%s: saxpy submit", tag);
		tap_ok(memcmp(yf, want, n) == 0, "%s: saxpy result exact", tag);
		vgpu_batch_reset(b);
		for (size_t i = 0; i < n / 4; i++)
			sum += (double)yf[i];
		tap_eq(vgpu_batch_sum_f32(b, r.b, 16, y.b, 0, n), 0, "%s: add sum_f32", tag);
		tap_eq(run1(b, &res), 0, "%s: sum_f32 submit", tag);
		{
			uint64_t bits = rd64(r.p + 16);
			double got;

			memcpy(&got, &bits, 8);
			tap_ok(got == sum, "%s: sum_f32 = %.6f, guest %.6f", tag, got, sum);
		}
		free(want);
		vgpu_batch_reset(b);
	}

	/* NOP, and ordering within one submit: fill -> copy -> checksum */
	tap_eq(vgpu_batch_nop(b), 0, "%s: add nop", tag);
	tap_eq(run1(b, &res), 0, "%s: nop submit", tag);
	vgpu_batch_reset(b);
	memset(d.p, 0, n);
	memset(y.p, 0, n);
	tap_ok(vgpu_batch_fill(b, d.b, 0, n, 0x01020304u) == 0 &&
	       vgpu_batch_copy(b, y.b, 0, d.b, 0, n) == 0 &&
	       vgpu_batch_checksum(b, r.b, 24, y.b, 0, n, 99) == 0 && vgpu_batch_nop(b) == 0,
	       "%s: add fill, copy, checksum, nop", tag);
	tap_eq(run1(b, &res), 0, "%s: ordered submit", tag);
	{
		uint8_t *want = malloc(n);

		for (size_t i = 0; i < n; i += 4) {
			uint32_t v = htole32(0x01020304u);

			memcpy(want + i, &v, 4);
		}
		tap_ok(memcmp(d.p, want, n) == 0 && memcmp(y.p, want, n) == 0,
		       "%s: fill then copy, in order", tag);
		tap_eq((long long)rd64(r.p + 24), (long long)XXH64(want, n, 99),
		       "%s: checksum saw the copy's output", tag);
		free(want);
	}
	tap_ok(res.ops_done == 4 && res.num_ops == 4, "%s: 4 ops done", tag);
out:
	vgpu_batch_destroy(b);
	ubuf_free(&d);
	ubuf_free(&s);
	ubuf_free(&x);
	ubuf_free(&y);
	ubuf_free(&r);
}

/* ---- errors the library finds ---- */

static void test_lib_errors(void)
{
	struct ubuf a = { 0 }, ro = { 0 };
	struct vgpu_device *d2 = NULL;
	struct vgpu_buffer *other = NULL;
	struct vgpu_batch *b = NULL;
	uint8_t *op = map_anon(page, PROT_READ | PROT_WRITE);
	int err = 0;

	if (ubuf_new(&a, 4 * page, 0) || ubuf_new(&ro, page, VGPU_BUF_READ_ONLY) ||
	    vgpu_batch_create(dev, &b) || vgpu_open(NULL, 0, &d2) ||
	    vgpu_buffer_from_user(d2, op, page, 0, &other)) {
		tap_ok(0, "lib errors: setup");
		goto out;
	}
	tap_eq(vgpu_batch_submit(b, NULL), -EINVAL, "submit of an empty batch = -EINVAL");
	tap_eq(vgpu_batch_checksum(b, a.b, 0, a.b, 0, 4 * page + 1, 0), -ERANGE,
	       "checksum past the end = -ERANGE");
	tap_eq(vgpu_batch_checksum(b, a.b, 4 * page - 4, a.b, 0, 16, 0), -ERANGE,
	       "checksum result past the end = -ERANGE");
	tap_eq(vgpu_batch_fill(b, a.b, UINT64_MAX - 2, 8, 0), -ERANGE, "offset overflow = -ERANGE");
	tap_eq(vgpu_batch_fill(b, a.b, 0, 0, 0), -EINVAL, "len 0 = -EINVAL");
	tap_eq(vgpu_batch_fill(b, a.b, 0, 6, 0), -EINVAL, "fill len %% 4 = -EINVAL");
	tap_eq(vgpu_batch_saxpy(b, a.b, 0, a.b, 4096, 6, 1.0f), -EINVAL, "saxpy len %% 4 = -EINVAL");
	tap_eq(vgpu_batch_sum_f32(b, a.b, 0, a.b, 8, 6), -EINVAL, "sum_f32 len %% 4 = -EINVAL");
	tap_eq(vgpu_batch_fill(b, ro.b, 0, 8, 0), -EACCES, "fill into a read-only buffer = -EACCES");
	tap_eq(vgpu_batch_copy(b, ro.b, 0, a.b, 0, 8), -EACCES, "copy into a read-only buffer = -EACCES");
	tap_eq(vgpu_batch_copy(b, a.b, 0, a.b, 100, 200), -EINVAL, "overlapping copy = -EINVAL");
	tap_eq(vgpu_batch_saxpy(b, a.b, 0, a.b, 4, 64, 2.0f), -EINVAL,
	       "partially overlapping saxpy = -EINVAL");
	tap_eq(vgpu_batch_saxpy(b, a.b, 0, a.b, 0, 64, 2.0f), 0, "saxpy in place is fine");
	vgpu_batch_reset(b);
	tap_eq(vgpu_batch_copy(b, a.b, 0, other, 0, 8), -EINVAL, "buffer of another device = -EINVAL");
	tap_eq(vgpu_batch_copy(b, NULL, 0, a.b, 0, 8), -EINVAL, "NULL destination = -EINVAL");
	tap_eq(vgpu_batch_copy(b, a.b, 0, NULL, 0, 8), -EINVAL, "NULL source = -EINVAL");
	tap_eq(vgpu_batch_add_raw(b, VGPU_OP_NOP, 0, other, 0, NULL, 0, 0, 0, 0), -EINVAL,
	       "raw op with another device's buffer = -EINVAL");
	tap_eq(vgpu_batch_num_ops(b), 0, "failed adds leave the batch empty");
	for (unsigned int i = 0; i < info.caps.max_ops && !err; i++)
		err = vgpu_batch_fill(b, a.b, (i % 4) * page, page, i);
	tap_eq(err, 0, "%u ops fit", info.caps.max_ops);
	tap_eq(vgpu_batch_nop(b), -E2BIG, "one more = -E2BIG");
	tap_eq(vgpu_batch_num_ops(b), info.caps.max_ops, "batch still has %u ops", info.caps.max_ops);
	tap_eq(run1(b, NULL), 0, "a full batch runs");
	{
		bool ok = true;

		for (unsigned int q = 0; q < 4; q++) {
			/* last op writing quarter q: the largest i with i % 4 == q */
			uint32_t want = info.caps.max_ops - 4 + q, w;

			memcpy(&w, a.p + q * page + 100, 4);
			ok = ok && le32toh(w) == want;
		}
		tap_ok(ok, "ops of a full batch ran in order");
	}
	vgpu_batch_set_timeout(b, 1);
	vgpu_batch_reset(b);
	tap_eq(vgpu_batch_nop(b), 0, "short timeout, nop");
	err = vgpu_batch_submit(b, NULL);
	tap_ok(err == 0 || err == -ETIMEDOUT, "submit with a 1 ms timeout: 0 or -ETIMEDOUT (%d)", err);
	vgpu_batch_set_timeout(b, 0);
out:
	vgpu_batch_destroy(b);
	vgpu_buffer_destroy(other);
	vgpu_close(d2);
	ubuf_free(&a);
	ubuf_free(&ro);
	munmap(op, page);
}

/* ---- errors the device finds (raw ops) ---- */

static void expect_device_error(struct vgpu_batch *b, int want_err, uint32_t want_result,
				uint32_t want_index, const char *what)
{
	struct vgpu_submit_result res;
	int err = vgpu_batch_submit(b, &res);

	tap_eq(err, want_err, "device: %s -> %s", what, vgpu_strerror(want_err));
	tap_ok(res.device_result == want_result && res.op_index == want_index && res.ops_done == 0,
	       "device: %s: result %u (%s) at op %u, nothing done", what, res.device_result,
	       vgpu_result_str(res.device_result), res.op_index);
	vgpu_batch_reset(b);
}

static void test_device_errors(void)
{
	struct ubuf a = { 0 }, ro = { 0 };
	struct vgpu_batch *b = NULL;
	struct vgpu_submit_result res;
	int err;

	if (ubuf_new(&a, 4 * page, 0) || ubuf_new(&ro, 2 * page, VGPU_BUF_READ_ONLY) ||
	    vgpu_batch_create(dev, &b)) {
		tap_ok(0, "device errors: setup");
		goto out;
	}
	memset(a.p, 0x5a, a.size);
	memset(ro.p, 0x33, ro.size);

	vgpu_batch_add_raw(b, 99, 0, NULL, 0, NULL, 0, 0, 0, 0);
	expect_device_error(b, -EOPNOTSUPP, VGPU_COMPUTE_E_OPCODE, 0, "unknown opcode");
	vgpu_batch_add_raw(b, VGPU_OP_NOP, 1, NULL, 0, NULL, 0, 0, 0, 0);
	expect_device_error(b, -EOPNOTSUPP, VGPU_COMPUTE_E_OPCODE, 0, "op flags");
	vgpu_batch_add_raw(b, VGPU_OP_NOP, 0, NULL, 0, NULL, 0, 0, 0, 1);
	expect_device_error(b, -EPROTO, VGPU_COMPUTE_E_MALFORMED, 0, "arg1 set");
	vgpu_batch_add_raw(b, VGPU_OP_NOP, 0, NULL, 0, NULL, 0, 8, 0, 0);
	expect_device_error(b, -EPROTO, VGPU_COMPUTE_E_MALFORMED, 0, "nop with a length");
	vgpu_batch_add_raw(b, VGPU_OP_FILL, 0, NULL, 0, NULL, 0, 8, 0, 0);
	expect_device_error(b, -ENOENT, VGPU_COMPUTE_E_RESOURCE, 0, "fill of resource 0");
	vgpu_batch_add_raw(b, VGPU_OP_FILL, 0, a.b, 4 * page - 4, NULL, 0, 8, 0, 0);
	expect_device_error(b, -ERANGE, VGPU_COMPUTE_E_RANGE, 0, "fill past the end");
	vgpu_batch_add_raw(b, VGPU_OP_CHECKSUM, 0, a.b, 0, a.b, 0, 1ull << 40, 0, 0);
	expect_device_error(b, -ERANGE, VGPU_COMPUTE_E_RANGE, 0, "len beyond max_op_bytes");
	vgpu_batch_add_raw(b, VGPU_OP_FILL, 0, a.b, 0, NULL, 0, 6, 0, 0);
	expect_device_error(b, -EINVAL, VGPU_COMPUTE_E_ALIGN, 0, "fill len %% 4");
	vgpu_batch_add_raw(b, VGPU_OP_COPY, 0, a.b, 0, a.b, 16, 64, 0, 0);
	expect_device_error(b, -EINVAL, VGPU_COMPUTE_E_OVERLAP, 0, "overlapping copy");
	/* The whole submit is checked first: a valid op before a bad one
	 * must not run. */
	vgpu_batch_add_raw(b, VGPU_OP_FILL, 0, a.b, 0, NULL, 0, page, 0x11111111u, 0);
	vgpu_batch_add_raw(b, VGPU_OP_NOP, 0, NULL, 0, NULL, 0, 0, 0, 0);
	vgpu_batch_add_raw(b, VGPU_OP_FILL, 0, a.b, 0, NULL, 0, 8 * page, 0, 0);
	expect_device_error(b, -ERANGE, VGPU_COMPUTE_E_RANGE, 2, "bad third op");
	tap_ok(all_bytes(a.p, a.size, 0x5a), "device: nothing written when validation fails");

	/* Writes into a read-only buffer: refused, nothing written. */
	vgpu_batch_add_raw(b, VGPU_OP_FILL, 0, ro.b, 0, NULL, 0, page, 0x22222222u, 0);
	err = vgpu_batch_submit(b, &res);
	tap_eq(err, -EACCES, "raw fill into a read-only buffer = -EACCES");
	if (vgpu_buffer_is_zero_copy(ro.b))
		tap_eq(res.device_result, VGPU_COMPUTE_E_READONLY,
		       "the device refused it (E_READONLY)");
	else
		tap_eq(res.device_result, VGPU_RESULT_NOT_EXECUTED,
		       "the library refused it before submitting (copy path): not executed");
	tap_ok(all_bytes(ro.p, ro.size, 0x33), "read-only buffer unchanged");
	vgpu_batch_reset(b);
	vgpu_batch_add_raw(b, VGPU_OP_COPY, 0, ro.b, 0, a.b, 0, page, 0, 0);
	err = vgpu_batch_submit(b, &res);
	tap_eq(err, -EACCES, "raw copy into a read-only buffer = -EACCES");
	tap_ok(all_bytes(ro.p, ro.size, 0x33), "read-only buffer unchanged");
	vgpu_batch_reset(b);
	/* Reading it is fine. */
	tap_eq(vgpu_batch_checksum(b, a.b, 0, ro.b, 0, ro.size, 5), 0, "checksum of a RO buffer");
	tap_eq(run1(b, &res), 0, "submit");
	tap_eq((long long)rd64(a.p), (long long)XXH64(ro.p, ro.size, 5), "RO buffer checksum exact");
	/* After errors the device still works. */
	vgpu_batch_reset(b);
	tap_eq(vgpu_batch_fill(b, a.b, 0, a.size, 7), 0, "fill after errors");
	tap_eq(run1(b, &res), 0, "device still works after errors");
out:
	vgpu_batch_destroy(b);
	ubuf_free(&a);
	ubuf_free(&ro);
}

/* ---- sizes ---- */

static void test_sizes(void)
{
	static const uint64_t sizes[] = {
		4096, 8192, 65536, 1 << 20, 3 << 20, 16 << 20, 64 << 20, 256ull << 20,
	};
	struct vgpu_batch *b = NULL;
	struct ubuf r = { 0 };

	long base_pages = -1, base_objs = -1;

	if (ubuf_new(&r, page, 0) || vgpu_batch_create(dev, &b)) {
		tap_ok(0, "sizes: setup");
		goto out;
	}
	if (debugfs_read(&base_pages, &base_objs) == 0) {
		/* Only r is ours now: one object of one page, or none. */
		tap_ok(wait_pinned(userptr_mode ? 1 : 0, userptr_mode ? 1 : 0),
		       "sizes: debugfs shows only the result buffer");
		base_pages = base_objs = userptr_mode ? 1 : 0;
	}
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t sz = sizes[i] < page ? page : sizes[i];
		struct ubuf s = { 0 };
		long pages0, pages1, objs;

		if (sz > max_size)
			continue;
		/* Start from the pages of r alone (earlier buffers may still be
		 * on their way out). */
		if (debugfs_read(&pages0, &objs) == 0 && wait_pinned(base_pages, base_objs))
			pages0 = base_pages;
		if (ubuf_new(&s, sz, VGPU_BUF_READ_ONLY)) {
			tap_ok(0, "size %" PRIu64 ": register", sz);
			continue;
		}
		tap_eq(vgpu_buffer_is_zero_copy(s.b), ro_zero_copy,
		       "size %" PRIu64 " KiB: read-only, %s path", sz >> 10,
		       ro_zero_copy ? "zero-copy" : "copy");
		fill_pattern(s.p, sz, sz);
		if (debugfs_read(&pages1, &objs) == 0)
			tap_eq(pages1 - pages0, ro_zero_copy ? (long)(sz / page) : 0,
			       "size %" PRIu64 " KiB: debugfs pinned pages", sz >> 10);
		vgpu_batch_reset(b);
		tap_eq(vgpu_batch_checksum(b, r.b, 0, s.b, 0, sz, i), 0, "size %" PRIu64 " KiB: add", sz >> 10);
		tap_eq(run1(b, NULL), 0, "size %" PRIu64 " KiB: submit", sz >> 10);
		tap_eq((long long)rd64(r.p), (long long)XXH64(s.p, sz, i),
		       "size %" PRIu64 " KiB: XXH64 exact", sz >> 10);
		vgpu_batch_reset(b);  /* the batch holds its buffers */
		ubuf_free(&s);
		/* RW: the device fills it, the guest sees every byte. */
		if (sz <= (64ull << 20) && ubuf_new(&s, sz, 0) == 0) {
			bool ok = true;

			vgpu_batch_reset(b);
			tap_ok(vgpu_batch_fill(b, s.b, 0, sz, 0xc0ffee00u + (uint32_t)i) == 0 &&
			       run1(b, NULL) == 0, "size %" PRIu64 " KiB: RW fill", sz >> 10);
			for (uint64_t off = 0; off < sz && ok; off += 4) {
				uint32_t w;

				memcpy(&w, s.p + off, 4);
				ok = le32toh(w) == 0xc0ffee00u + (uint32_t)i;
			}
			tap_ok(ok, "size %" PRIu64 " KiB: every word filled", sz >> 10);
			vgpu_batch_reset(b);
			ubuf_free(&s);
		}
	}
out:
	vgpu_batch_destroy(b);
	ubuf_free(&r);
}

/* ---- many objects ---- */

static void test_many(void)
{
	enum { N = 512 };
	struct vgpu_buffer **bufs = calloc(N, sizeof(*bufs));
	uint8_t *mem = map_anon((size_t)N * page, PROT_READ | PROT_WRITE);
	struct vgpu_batch *b = NULL;
	long p0, o0, p1, o1;
	int err = 0, made = 0;
	bool ok = true;

	if (debugfs_read(&p0, &o0) == 0) {
		tap_ok(wait_pinned(0, 0), "many: debugfs starts from 0 pages, 0 objects");
		p0 = o0 = 0;
	}
	for (int i = 0; i < N && !err; i++) {
		err = vgpu_buffer_from_user(dev, mem + (size_t)i * page, page, 0, &bufs[i]);
		made += !err;
	}
	tap_eq(made, N, "%d one-page buffers at once", N);
	if (debugfs_read(&p1, &o1) == 0) {
		tap_eq(p1 - p0, userptr_mode ? N : 0, "debugfs: %d more pinned pages", userptr_mode ? N : 0);
		tap_eq(o1 - o0, userptr_mode ? N : 0, "debugfs: %d more objects", userptr_mode ? N : 0);
	}
	err = vgpu_batch_create(dev, &b);
	for (int i = 0; i < made && !err; i++) {
		if (vgpu_batch_num_ops(b) == info.caps.max_ops) {
			err = run1(b, NULL);
			vgpu_batch_reset(b);
		}
		if (!err)
			err = vgpu_batch_fill(b, bufs[i], 0, page, 0x1000u + (uint32_t)i);
	}
	if (!err && vgpu_batch_num_ops(b))
		err = run1(b, NULL);
	tap_eq(err, 0, "fill each of them in %d-op batches", info.caps.max_ops);
	for (int i = 0; i < made && ok; i++) {
		uint32_t w;

		memcpy(&w, mem + (size_t)i * page + page - 4, 4);
		ok = le32toh(w) == 0x1000u + (uint32_t)i;
	}
	tap_ok(ok, "every buffer got its own value");
	vgpu_batch_destroy(b);
	for (int i = 0; i < N; i++)
		vgpu_buffer_destroy(bufs[i]);
	if (debugfs_read(&p1, &o1) == 0)
		tap_ok(wait_pinned(p0, o0), "debugfs back to %ld pages, %ld objects after destroy",
		       p0, o0);
	free(bufs);
	munmap(mem, (size_t)N * page);
}

/* ---- RLIMIT_MEMLOCK without CAP_IPC_LOCK ---- */

static void test_memlock(void)
{
	pid_t pid;
	int status = 0;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct rlimit rl = { 64 * 1024, 64 * 1024 };
		struct vgpu_device *d = NULL;
		struct vgpu_buffer *bb = NULL;
		size_t sz = 1 << 20;
		void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		int err;

		if (p == MAP_FAILED || drop_ipc_lock() || setrlimit(RLIMIT_MEMLOCK, &rl) ||
		    vgpu_open(info.path, 0, &d))
			_exit(100);
		err = vgpu_buffer_from_user(d, p, sz, 0, &bb);
		vgpu_buffer_destroy(bb);
		vgpu_close(d);
		_exit(err == 0 ? 0 : err == -ENOMEM ? 1 : 2);
	}
	waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) != 100, "memlock child set up");
	if (userptr_mode)
		tap_eq(WEXITSTATUS(status), 1,
		       "1 MiB over a 64 KiB RLIMIT_MEMLOCK without CAP_IPC_LOCK = -ENOMEM");
	else
		tap_eq(WEXITSTATUS(status), 0, "the copy path pins nothing: no RLIMIT_MEMLOCK limit");
}

/* ---- several processes, fork ---- */

/* A child's whole job on its own device: 0 when every result was right. */
static int child_work(unsigned int id)
{
	struct vgpu_device *d = NULL;
	struct vgpu_buffer *b = NULL, *r = NULL;
	struct vgpu_batch *bt = NULL;
	size_t sz = 1 << 20;
	uint8_t *p = mmap(NULL, sz + page, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	int bad = 0;

	if (p == MAP_FAILED || vgpu_open(info.path, 0, &d) ||
	    vgpu_buffer_from_user(d, p, sz, 0, &b) ||
	    vgpu_buffer_from_user(d, p + sz, page, 0, &r) || vgpu_batch_create(d, &bt))
		return 10;
	for (unsigned int round = 0; round < 20 && !bad; round++) {
		uint32_t v = id * 1000 + round;
		uint8_t *want = malloc(sz);

		for (size_t i = 0; i < sz; i += 4) {
			uint32_t le = htole32(v);

			memcpy(want + i, &le, 4);
		}
		vgpu_batch_reset(bt);
		if (vgpu_batch_fill(bt, b, 0, sz, v) || vgpu_batch_checksum(bt, r, 0, b, 0, sz, id) ||
		    vgpu_batch_submit(bt, NULL))
			bad = 11;
		else if (memcmp(p, want, sz) != 0)
			bad = 12;
		else if (rd64(p + sz) != XXH64(want, sz, id))
			bad = 13;
		free(want);
	}
	vgpu_batch_destroy(bt);
	vgpu_close(d);
	return bad;
}

static void test_processes(void)
{
	enum { NCHILD = 4 };
	pid_t pids[NCHILD];
	struct ubuf u = { 0 };
	struct vgpu_batch *b = NULL;
	int ok_children = 0, status;
	pid_t pid;

	fflush(stdout);
	for (unsigned int i = 0; i < NCHILD; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(child_work(i + 1));
	}
	/* The parent keeps working meanwhile. */
	tap_eq(child_work(0), 0, "parent's 20 rounds while %d other processes run theirs", NCHILD);
	for (unsigned int i = 0; i < NCHILD; i++) {
		if (pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i] && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0)
			ok_children++;
	}
	tap_eq(ok_children, NCHILD, "%d processes, each with its own context, all results right",
	       NCHILD);

	/* fork() after registering: the device must keep writing the
	 * parent's pages even when the child writes its copy of them. */
	if (ubuf_new(&u, 16 * page, 0) || vgpu_batch_create(dev, &b)) {
		tap_ok(0, "fork: setup");
		goto out;
	}
	memset(u.p, 1, u.size);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		memset(u.p, 2, u.size); /* the child's own copy */
		_exit(0);
	}
	waitpid(pid, &status, 0);
	tap_ok(all_bytes(u.p, u.size, 1), "fork: the child's writes stay in the child");
	tap_ok(vgpu_batch_fill(b, u.b, 0, u.size, 0x03030303u) == 0 && run1(b, NULL) == 0,
	       "fork: fill after the child is gone");
	tap_ok(all_bytes(u.p, u.size, 3), "fork: the parent sees the device's writes");
	/* And again with the child still alive while the device writes. */
	memset(u.p, 1, u.size);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		usleep(200000);
		_exit(all_bytes(u.p, u.size, 1) ? 0 : 1);
	}
	vgpu_batch_reset(b);
	tap_ok(vgpu_batch_fill(b, u.b, 0, u.size, 0x04040404u) == 0 && run1(b, NULL) == 0,
	       "fork: fill while a child shares the pages");
	tap_ok(all_bytes(u.p, u.size, 4), "fork: the parent sees the device's writes");
	waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "fork: the child's copy did not change");
out:
	vgpu_batch_destroy(b);
	ubuf_free(&u);
}

/* ---- everything released ---- */

static void test_released(void)
{
	long pages, objs;

	if (debugfs_read(&pages, &objs) == 0) {
		tap_ok(wait_pinned(0, 0), "debugfs total_pinned_pages and objects back to 0");
	} else {
		tap_diag("no %s debugfs file: pinned-page accounting not checked",
			 "virtio-gpu-userptr");
	}
}

int main(int argc, char **argv)
{
	int err;

	page = (size_t)sysconf(_SC_PAGESIZE);
	if (argc == 3 && strcmp(argv[1], "--max-size") == 0) {
		max_size = strtoull(argv[2], NULL, 0) << 20;
	} else if (argc != 1) {
		fprintf(stderr, "Usage: %s [--max-size MIB]\n", argv[0]);
		return 2;
	}
	err = vgpu_open(NULL, 0, &dev);
	if (!tap_eq(err, 0, "vgpu_open: %s", vgpu_strerror(err))) {
		printf("Bail out! no device\n");
		return tap_done();
	}
	debugfs_find();
	tap_diag("debugfs: %s", debugfs_path[0] ? debugfs_path : "(none)");
	test_info();
	test_open_variants();
	test_buffer_args();
	test_ops(0, userptr_mode ? "userptr" : "fallback");
	test_ops(VGPU_BUF_COPY, "copy-flag");
	test_lib_errors();
	test_device_errors();
	test_sizes();
	test_many();
	test_vm_pin();
	test_memlock();
	test_processes();
	vgpu_close(dev);
	test_released();
	return tap_done();
}
