/* SPDX-License-Identifier: MIT */
/*
 * vgpu-pci-remove - the GPU's PCI function goes away while userptr blobs
 * are alive, and their file is closed only afterwards. Prints TAP.
 *
 * A sysfs "remove" of the PCI function is what a hot unplug does: the
 * virtio device and its DMA state are freed at once, while the DRM device
 * and its objects live on until the last file is closed. The driver must
 * take the userptr DMA mappings down while the device is still there and
 * drop only the pins at close; a use of the freed device then is a KASAN
 * report, which fails the step under tests/system/run-guest.sh. A rescan
 * of the bus finds the function again, and it takes a new userptr blob.
 * The device was reset with the removal: a compute submit of the new
 * driver's first context naming a resource of the old one (attached to
 * the old driver's first context) is refused with E_RESOURCE, instead of
 * reaching pages the old driver gave back.
 *
 * Needs root (sysfs) and the device with userptr behind a PCI function:
 * it runs in the x86_64 guest under tests/system/run-guest.sh --vmm qemu
 * (tests/system/e2e.sh), with and without --access-platform.
 *
 *   vgpu-pci-remove [--node /dev/dri/renderD128]
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xf86drm.h>
#include <drm/virtgpu_drm.h>

#include "guest-check.h"
#include "guest-ioctl.h"
#include "tap.h"
#include "vgpu_compute.h"

#define NPAGES 16
/* How long the function may take to go away or come back. */
#define WAIT_MS 10000

/*
 * One compute submit on @fd's context: CHECKSUM of the first page of the
 * resource @src into a status page of its own (a userptr blob), whose
 * status record's result goes to @result; 0 or an errno.
 */
static int submit_checksum(int fd, uint32_t src, uint32_t *result)
{
	long page = sysconf(_SC_PAGESIZE);
	struct {
		struct vgpu_compute_submit s;
		struct vgpu_compute_op op;
	} cmd;
	struct drm_virtgpu_execbuffer eb = { 0 };
	struct vgpu_compute_status st;
	struct pollfd pfd;
	uint32_t handle, res;
	void *p;
	int rc;

	p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	memset(p, 0xff, (size_t)page);
	rc = raw_userptr_res(fd, p, (size_t)page, 0, &handle, &res);
	if (rc)
		goto out;
	memset(&cmd, 0, sizeof(cmd));
	cmd.s.magic = VGPU_COMPUTE_MAGIC;
	cmd.s.num_ops = 1;
	cmd.s.status_res = res;
	cmd.op.opcode = VGPU_OP_CHECKSUM;
	cmd.op.dst_res = res;
	cmd.op.dst_off = 64;
	cmd.op.src_res = src;
	cmd.op.len = (uint64_t)page;
	eb.flags = VIRTGPU_EXECBUF_FENCE_FD_OUT;
	eb.command = (uintptr_t)&cmd;
	eb.size = sizeof(cmd);
	eb.bo_handles = (uintptr_t)&handle;
	eb.num_bo_handles = 1;
	if (drmIoctl(fd, DRM_IOCTL_VIRTGPU_EXECBUFFER, &eb)) {
		rc = errno;
	} else {
		pfd.fd = eb.fence_fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, WAIT_MS) != 1)
			rc = ETIMEDOUT;
		close(eb.fence_fd);
		memcpy(&st, p, sizeof(st));
		*result = st.result;
	}
	drmCloseBufferHandle(fd, handle);
out:
	munmap(p, (size_t)page);
	return rc;
}

int main(int argc, char **argv)
{
	const char *node;
	char devpath[PATH_MAX], remove[PATH_MAX + 16];
	long page = sysconf(_SC_PAGESIZE), pin_kb, got_kb = -1;
	size_t size = NPAGES * (size_t)page;
	uint32_t h_rw = 0, h_ro = 0, handle = 0, res_rw = 0, result = ~0u;
	void *rw, *ro, *buf;
	int fd, rc, rc2;

	if (parse_node_arg(argc, argv, "vgpu-pci-remove", &node))
		return 2;
	printf("1..8\n");
	/* The render node's device: the PCI function of virtio-pci. */
	if (!node_device(node, devpath))
		return 1;
	snprintf(remove, sizeof(remove), "%s/remove", devpath);
	if (access(remove, W_OK)) {
		printf("Bail out! %s: %s (not a PCI function?)\n", remove, strerror(errno));
		return 1;
	}
	tap_diag("PCI function %s", devpath);

	fd = open(node, O_RDWR | O_CLOEXEC);
	if (fd < 0 || !raw_has_userptr(fd)) {
		printf("Bail out! %s: no device with userptr\n", node);
		return 1;
	}
	rc = raw_context_init(fd, VGPU_COMPUTE_CAPSET_ID);
	if (rc) {
		printf("Bail out! %s: no compute context: %s\n", node, strerror(rc));
		return 1;
	}
	rw = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		  -1, 0);
	ro = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (rw == MAP_FAILED || ro == MAP_FAILED) {
		printf("Bail out! mmap: %s\n", strerror(errno));
		return 1;
	}
	fill_pattern(rw, size, 11);
	pin_kb = vm_pin_kb(getpid());

	/* 1: two live userptr blobs, one read-write, one read-only. */
	rc = raw_userptr_res(fd, rw, size, 0, &h_rw, &res_rw);
	rc2 = raw_userptr(fd, ro, size, VIRTGPU_BLOB_FLAG_USERPTR_RDONLY, &h_ro);
	tap_ok(rc == 0 && rc2 == 0 && vm_pin_kb(getpid()) == pin_kb + 2 * (long)(size / 1024),
	       "two userptr blobs pin %zu kB (%s, %s)", 2 * size / 1024,
	       rc ? strerror(rc) : "ok", rc2 ? strerror(rc2) : "ok");

	/* 2: the PCI function goes away with them. */
	rc = sysfs_write(remove, "1");
	tap_ok(rc == 0 && wait_node(node, false, WAIT_MS), "the PCI function was removed (%s)",
	       rc ? strerror(rc) : "ok");

	/* 3: one handle closed after the removal, then the whole file. */
	rc = drmCloseBufferHandle(fd, h_rw);
	tap_diag("GEM_CLOSE after the removal: %s", rc ? strerror(errno) : "ok");
	close(fd);
	rc = vm_pin_wait(pin_kb, 5000, &got_kb);
	tap_ok(rc, "the close releases every pin: VmPin %ld kB, want %ld", got_kb, pin_kb);

	/* 4: the process's memory is its own and unchanged. */
	buf = malloc(size);
	if (buf)
		fill_pattern(buf, size, 11);
	tap_ok(buf && memcmp(buf, rw, size) == 0, "the read-write range still holds its data");
	free(buf);

	/* 5-8: found again by a rescan, the device takes a new blob, and
	 * it knows nothing of the old driver's. */
	rc = sysfs_write("/sys/bus/pci/rescan", "1");
	tap_ok(rc == 0 && wait_node(node, true, WAIT_MS), "a rescan finds the function again (%s)",
	       rc ? strerror(rc) : "ok");
	fd = open(node, O_RDWR | O_CLOEXEC);
	rc = fd >= 0 ? raw_context_init(fd, VGPU_COMPUTE_CAPSET_ID) : EBADF;
	tap_ok(fd >= 0 && raw_has_userptr(fd) && rc == 0,
	       "%s offers userptr again, and a compute context (%s)", node,
	       rc ? strerror(rc) : "ok");
	rc = fd >= 0 ? raw_userptr(fd, rw, size, 0, &handle) : EBADF;
	tap_ok(rc == 0 && vm_pin_kb(getpid()) == pin_kb + (long)(size / 1024),
	       "a new userptr blob pins its %zu kB (%s)", size / 1024, rc ? strerror(rc) : "ok");
	rc = fd >= 0 ? submit_checksum(fd, res_rw, &result) : EBADF;
	tap_ok(rc == 0 && result == VGPU_COMPUTE_E_RESOURCE,
	       "a submit naming resource %u of the removed function's driver is refused "
	       "(%s, result %u, want %u: E_RESOURCE)", res_rw, rc ? strerror(rc) : "ok",
	       result, (unsigned)VGPU_COMPUTE_E_RESOURCE);
	if (fd >= 0)
		close(fd);
	return tap_failed ? 1 : 0;
}
