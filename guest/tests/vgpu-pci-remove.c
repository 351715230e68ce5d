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
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xf86drm.h>
#include <drm/virtgpu_drm.h>

#include "guest-check.h"
#include "guest-ioctl.h"
#include "tap.h"

#define NPAGES 16
/* How long the function may take to go away or come back. */
#define WAIT_MS 10000

int main(int argc, char **argv)
{
	const char *node;
	char devpath[PATH_MAX], remove[PATH_MAX + 16];
	long page = sysconf(_SC_PAGESIZE), pin_kb, got_kb = -1;
	size_t size = NPAGES * (size_t)page;
	uint32_t h_rw = 0, h_ro = 0, handle = 0;
	void *rw, *ro, *buf;
	int fd, rc, rc2;

	if (parse_node_arg(argc, argv, "vgpu-pci-remove", &node))
		return 2;
	printf("1..7\n");
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
	rc = raw_userptr(fd, rw, size, 0, &h_rw);
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

	/* 5-7: found again by a rescan, the device takes a new blob. */
	rc = sysfs_write("/sys/bus/pci/rescan", "1");
	tap_ok(rc == 0 && wait_node(node, true, WAIT_MS), "a rescan finds the function again (%s)",
	       rc ? strerror(rc) : "ok");
	fd = open(node, O_RDWR | O_CLOEXEC);
	tap_ok(fd >= 0 && raw_has_userptr(fd), "%s offers userptr again", node);
	rc = fd >= 0 ? raw_userptr(fd, rw, size, 0, &handle) : EBADF;
	tap_ok(rc == 0 && vm_pin_kb(getpid()) == pin_kb + (long)(size / 1024),
	       "a new userptr blob pins its %zu kB (%s)", size / 1024, rc ? strerror(rc) : "ok");
	if (fd >= 0)
		close(fd);
	return tap_failed ? 1 : 0;
}
