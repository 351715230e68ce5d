/* SPDX-License-Identifier: MIT */
/*
 * vgpu-unplug-gup - a userptr pin that waits on a userfaultfd fault does
 * not hold up the removal of the device. Prints TAP.
 *
 * A thread creates a userptr blob over memory registered with
 * userfaultfd and not populated, so that the kernel's pin waits for this
 * program to resolve the fault. While it waits, the render node's device
 * is unbound from its driver through sysfs. The removal must finish while
 * the pin still waits: the driver pins outside drm_dev_enter(), whose SRCU
 * every DRM device shares. Once the fault is resolved the request fails
 * with ENODEV and nothing stays pinned. The device is then bound again and
 * must take a new userptr blob.
 *
 * Needs root (sysfs, userfaultfd for kernel faults), a kernel with
 * CONFIG_USERFAULTFD and the device with userptr: it runs in the x86_64
 * guest under tests/system/run-guest.sh --vmm qemu (tests/system/e2e.sh).
 *
 *   vgpu-unplug-gup [--node /dev/dri/renderD128]
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xf86drm.h>
#include <drm/virtgpu_drm.h>

#include "guest-check.h"
#include "guest-ioctl.h"
#include "tap.h"

#define NPAGES 16
/* How long the removal may take while the pin waits. */
#define UNBIND_MS 10000

struct pin_req {
	int fd;
	void *ptr;
	size_t size;
	int err; /* 0 or the errno of the create */
	uint32_t handle;
};

static void *pin_thread(void *arg)
{
	struct pin_req *r = arg;

	r->err = raw_userptr(r->fd, r->ptr, r->size, 0, &r->handle);
	return NULL;
}

/* Wait up to @ms for @pid; its exit status, or -1 if it still runs. */
static int wait_child(pid_t pid, int ms)
{
	double end = now_ms() + ms;
	int status;

	do {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
		if (r < 0)
			return 255;
		usleep(10000);
	} while (now_ms() < end);
	return -1;
}

int main(int argc, char **argv)
{
	const char *node;
	char link[PATH_MAX + 16], devpath[PATH_MAX], drvpath[PATH_MAX];
	char unbind[PATH_MAX + 16], bind[PATH_MAX + 16], name[NAME_MAX + 1];
	struct uffdio_register reg = { 0 };
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_copy copy = { 0 };
	struct uffd_msg msg;
	struct pin_req req = { 0 };
	struct pollfd pfd;
	pthread_t thread;
	long page = sysconf(_SC_PAGESIZE), pin_kb, got_kb = -1;
	size_t size = NPAGES * (size_t)page;
	void *src, *ptr, *buf;
	uint32_t handle;
	double t0, unbind_ms = -1;
	pid_t child;
	int uffd, fd, rc;

	if (parse_node_arg(argc, argv, "vgpu-unplug-gup", &node))
		return 2;
	printf("1..9\n");
	/* The render node's device and its driver, by their sysfs links. */
	if (!node_device(node, devpath))
		return 1;
	snprintf(link, sizeof(link), "%s/driver", devpath);
	if (!realpath(link, drvpath)) {
		printf("Bail out! %s: %s\n", link, strerror(errno));
		return 1;
	}
	snprintf(name, sizeof(name), "%s", basename(devpath));
	snprintf(unbind, sizeof(unbind), "%s/unbind", drvpath);
	snprintf(bind, sizeof(bind), "%s/bind", drvpath);
	tap_diag("device %s, driver %s", name, drvpath);

	fd = open(node, O_RDWR | O_CLOEXEC);
	if (fd < 0 || !raw_has_userptr(fd)) {
		printf("Bail out! %s: no device with userptr\n", node);
		return 1;
	}
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api)) {
		printf("Bail out! userfaultfd: %s (CONFIG_USERFAULTFD, root)\n", strerror(errno));
		return 1;
	}
	ptr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	src = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ptr == MAP_FAILED || src == MAP_FAILED) {
		printf("Bail out! mmap: %s\n", strerror(errno));
		return 1;
	}
	fill_pattern(src, size, 7);
	reg.range.start = (uintptr_t)ptr;
	reg.range.len = size;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		printf("Bail out! UFFDIO_REGISTER: %s\n", strerror(errno));
		return 1;
	}
	pin_kb = vm_pin_kb(getpid());

	/* 1: the pin reaches the unpopulated memory and waits there. */
	req.fd = fd;
	req.ptr = ptr;
	req.size = size;
	if (pthread_create(&thread, NULL, pin_thread, &req)) {
		printf("Bail out! pthread_create\n");
		return 1;
	}
	pfd.fd = uffd;
	pfd.events = POLLIN;
	rc = poll(&pfd, 1, 10000) == 1 && read(uffd, &msg, sizeof(msg)) == sizeof(msg) &&
	     msg.event == UFFD_EVENT_PAGEFAULT &&
	     msg.arg.pagefault.address >= (uintptr_t)ptr &&
	     msg.arg.pagefault.address < (uintptr_t)ptr + size;
	if (!tap_ok(rc, "the pin of a userptr blob waits on a userfaultfd fault")) {
		printf("Bail out! no fault from the pin\n");
		return 1;
	}

	/* 2, 3: the device goes away while the pin waits. */
	t0 = now_ms();
	child = fork();
	if (child == 0)
		_exit(sysfs_write(unbind, name));
	rc = wait_child(child, UNBIND_MS);
	if (rc >= 0)
		unbind_ms = now_ms() - t0;
	tap_ok(rc == 0, "the device was removed while the pin waited (%s, %.0f ms)",
	       rc < 0 ? "still removing" : rc == 0 ? "done" : strerror(rc), unbind_ms);
	tap_ok(rc == 0 && access(node, F_OK) != 0, "%s is gone", node);

	/* 4: resolving the fault ends the request: the device is gone. */
	copy.dst = (uintptr_t)ptr;
	copy.src = (uintptr_t)src;
	copy.len = size;
	if (ioctl(uffd, UFFDIO_COPY, &copy) && errno != EEXIST)
		tap_diag("UFFDIO_COPY: %s", strerror(errno));
	pthread_join(thread, NULL);
	tap_ok(req.err == ENODEV, "the create then fails with ENODEV (got %s)",
	       req.err ? strerror(req.err) : "success");
	if (rc < 0) {
		/* Removal waited for the pin: let it finish before binding. */
		rc = wait_child(child, UNBIND_MS);
		tap_diag("the removal finished %.0f ms after it began, once the pin was done",
			 now_ms() - t0);
	}

	/* 5, 6: nothing stays pinned or charged, the memory is the program's. */
	tap_ok(vm_pin_wait(pin_kb, 5000, &got_kb), "VmPin back to %ld kB", pin_kb);
	tap_ok(memcmp(ptr, src, size) == 0, "the memory holds what the fault handler put there");
	close(fd);
	close(uffd);

	/* 7-9: bound again, the device takes a new userptr blob. */
	rc = sysfs_write(bind, name);
	tap_ok(rc == 0 && wait_node(node, true, 10000), "the device is bound again (%s)",
	       rc ? strerror(rc) : "ok");
	fd = open(node, O_RDWR | O_CLOEXEC);
	tap_ok(fd >= 0 && raw_has_userptr(fd), "%s offers userptr again", node);
	buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		   -1, 0);
	rc = fd >= 0 && buf != MAP_FAILED ? raw_userptr(fd, buf, size, 0, &handle) : EBADF;
	tap_ok(rc == 0 && vm_pin_kb(getpid()) == pin_kb + (long)(size / 1024),
	       "a new userptr blob pins its %zu kB (%s)", size / 1024, rc ? strerror(rc) : "ok");
	if (fd >= 0)
		close(fd);
	return tap_failed ? 1 : 0;
}
