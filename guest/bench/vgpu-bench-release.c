/* SPDX-License-Identifier: MIT */
/*
 * vgpu-bench-release - what the release of a large userptr blob of
 * scattered pages costs another process's fences.
 *
 * A child registers SIZE bytes of 4 KiB pages, faulted in an order that
 * keeps neighbours apart in physical memory (one mem entry a page, the
 * most the kernel has to unpin), then destroys the buffer and closes its
 * device. Meanwhile this process, on its own render node and context,
 * runs one NOP after another and waits for each. Printed per round: the
 * median NOP round trip before the release, and the longest one from the
 * child's close until the kernel's debugfs shows its pages unpinned.
 * The kernel unpins once the device answered RESOURCE_UNREF; where it
 * does so in the worker that also signals every fence, the longest round
 * trip grows with the size of the blob.
 *
 * Needs root (debugfs) and a device with userptr.
 *
 *   vgpu-bench-release [--size MIB] [--rounds N]
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vgpu.h"
#include "guest-check.h"

#define BASELINE_RUNS 200

static long page_size;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* total_pinned_pages of the virtio-gpu-userptr file in debugfs, or -1. */
static long pinned_pages(void)
{
	long pages = -1, objects;

	return debugfs_read(&pages, &objects) == 0 ? pages : -1;
}

/* The child: register, say so, wait for the word, release, exit. */
static int child_main(size_t size, int ready_fd, int go_fd)
{
	struct vgpu_device *dev = NULL;
	struct vgpu_buffer *buf = NULL;
	uint8_t *p;
	char c = 'r';
	int err;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || madvise(p, size, MADV_NOHUGEPAGE))
		return 10;
	populate_scattered(p, size, page_size);
	err = vgpu_open(NULL, 0, &dev);
	if (!err)
		err = vgpu_buffer_from_user(dev, p, size, VGPU_BUF_ZERO_COPY, &buf);
	if (err) {
		fprintf(stderr, "vgpu-bench-release: register %zu MiB: %s\n", size >> 20,
			vgpu_strerror(err));
		return 11;
	}
	if (write(ready_fd, &c, 1) != 1 || read(go_fd, &c, 1) != 1)
		return 12;
	vgpu_buffer_destroy(buf);
	vgpu_close(dev);
	return 0;
}

int main(int argc, char **argv)
{
	size_t size = 1024ull << 20;
	struct vgpu_device *dev = NULL;
	struct vgpu_batch *b = NULL;
	double base[BASELINE_RUNS];
	int rounds = 3, err;

	page_size = sysconf(_SC_PAGESIZE);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
			size = strtoull(argv[++i], NULL, 0) << 20;
		} else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
			rounds = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: vgpu-bench-release [--size MIB] [--rounds N]\n");
			return 2;
		}
	}
	if (size == 0 || rounds <= 0) {
		fprintf(stderr, "vgpu-bench-release: --size and --rounds must be positive\n");
		return 2;
	}
	err = vgpu_open(NULL, 0, &dev);
	if (!err)
		err = vgpu_batch_create(dev, &b);
	if (!err)
		err = vgpu_batch_nop(b);
	if (err || pinned_pages() < 0) {
		fprintf(stderr, "vgpu-bench-release: %s\n",
			err ? vgpu_strerror(err) : "no virtio-gpu-userptr in debugfs (root?)");
		return 1;
	}
	printf("size_mib rounds: %zu %d\n", size >> 20, rounds);
	printf("round base_median_us release_max_us release_nops release_ms\n");
	for (int r = 0; r < rounds; r++) {
		int ready[2], go[2], status;
		double t0, max_us = 0, median;
		long nops = 0;
		pid_t pid;
		char c;

		for (int i = 0; i < BASELINE_RUNS; i++) {
			double t = now_us();

			if (vgpu_batch_run(b, NULL))
				return 1;
			base[i] = now_us() - t;
		}
		qsort(base, BASELINE_RUNS, sizeof(base[0]), cmp_double);
		median = base[BASELINE_RUNS / 2];

		if (pipe(ready) || pipe(go))
			return 1;
		pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0)
			_exit(child_main(size, ready[1], go[0]));
		if (read(ready[0], &c, 1) != 1) {
			waitpid(pid, &status, 0);
			fprintf(stderr, "vgpu-bench-release: the child failed (exit %d)\n",
				WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			return 1;
		}
		/* Fences in flight from before the release on. */
		t0 = now_us();
		if (write(go[1], "g", 1) != 1)
			return 1;
		for (;;) {
			double t = now_us();

			if (vgpu_batch_run(b, NULL))
				return 1;
			t = now_us() - t;
			if (t > max_us)
				max_us = t;
			nops++;
			if (pinned_pages() == 0)
				break;
			if (now_us() - t0 > 120e6) {
				fprintf(stderr, "vgpu-bench-release: pages still pinned after 120 s\n");
				kill(pid, SIGKILL);
				break;
			}
		}
		printf("%d %.1f %.1f %ld %.1f\n", r, median, max_us, nops, (now_us() - t0) / 1e3);
		fflush(stdout);
		waitpid(pid, &status, 0);
		close(ready[0]);
		close(ready[1]);
		close(go[0]);
		close(go[1]);
	}
	vgpu_batch_destroy(b);
	vgpu_close(dev);
	return 0;
}
