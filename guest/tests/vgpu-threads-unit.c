/* SPDX-License-Identifier: MIT */
/*
 * vgpu-threads-unit - libvgpu's device-independent paths from many threads
 * at once, for ThreadSanitizer on the host (the guest's UML kernel cannot
 * run TSan binaries): argument checks, per-thread error details, failing
 * opens (the fork guard's one-time set-up races with itself), version and
 * messages. Prints TAP.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <vgpu/vgpu.h>

#include "tap.h"

enum { THREADS = 8, ITERS = 2000 };

struct worker {
	pthread_t th;
	unsigned int id;
	unsigned int wrong;
};

static void *run(void *arg)
{
	struct worker *w = arg;
	char path[64];

	snprintf(path, sizeof(path), "/nonexistent/vgpu-%u", w->id);
	for (unsigned int i = 0; i < ITERS; i++) {
		struct vgpu_device *dev = (struct vgpu_device *)1;
		struct vgpu_fence *f = NULL;
		struct vgpu_buffer *b = NULL;
		uint64_t off;

		switch ((i + w->id) % 4) {
		case 0:
			/* Each thread's detail is its own, whatever the others do. */
			w->wrong += vgpu_open(path, 0, &dev) != -ENOENT || dev != NULL;
			w->wrong += vgpu_open(NULL, 0x80, &dev) != -EINVAL;
			w->wrong += strstr(vgpu_error_detail(), "unknown flags 0x80") == NULL;
			break;
		case 1:
			w->wrong += vgpu_batch_fill(NULL, NULL, 0, 4, 0) != -EINVAL;
			w->wrong += strstr(vgpu_error_detail(), "vgpu_batch_fill") == NULL;
			break;
		case 2:
			w->wrong += vgpu_batch_submit_async(NULL, NULL, &f) != -EINVAL || f;
			w->wrong += strstr(vgpu_error_detail(), "submit_async: batch is NULL") == NULL;
			w->wrong += vgpu_buffer_get(NULL, &off, 8, 0, &b, &off) != -EINVAL;
			w->wrong += strstr(vgpu_error_detail(), "vgpu_buffer_get") == NULL;
			break;
		default:
			w->wrong += vgpu_get_version() != VGPU_VERSION;
			w->wrong += strcmp(vgpu_strerror(-ECHILD), strerror(ECHILD)) == 0;
			w->wrong += vgpu_fence_wait(NULL, 0, NULL) != -EINVAL;
			vgpu_fence_destroy(NULL);
			vgpu_buffer_put(NULL);
			break;
		}
	}
	return NULL;
}

int main(void)
{
	struct worker ws[THREADS];
	unsigned int wrong = 0;

	for (unsigned int t = 0; t < THREADS; t++) {
		ws[t].id = t;
		ws[t].wrong = 0;
		pthread_create(&ws[t].th, NULL, run, &ws[t]);
	}
	for (unsigned int t = 0; t < THREADS; t++) {
		pthread_join(ws[t].th, NULL);
		wrong += ws[t].wrong;
	}
	tap_eq(wrong, 0, "%d threads x %d device-less calls: every result and every thread's "
	       "own error detail right", THREADS, ITERS);
	return tap_done();
}
