/* SPDX-License-Identifier: MIT */
/*
 * vgpu-pipeline - libvgpu used the way a compute runtime uses it: two
 * threads, two rings, a pipeline of submits chained by fences over memory
 * the program allocated itself (malloc, not page-aligned), verified.
 *
 *   producer thread, ring 0:  y[k] = a * x[k] + y[k]          (saxpy)
 *                             -> exports the fence as a sync_file
 *   consumer thread, ring 1:  waits for it on the device (in-fence), then
 *                             out[k] = sum(y[k]) and XXH64(y[k])
 *   main thread:              checks every chunk against the CPU
 *
 * Neither thread waits for the other's work on the CPU: the consumer's
 * submit carries the producer's fence. Prints one line per stage and
 * "pipeline: N chunks verified"; exit status 0 when everything matched.
 *
 *   vgpu-pipeline [--chunks N] [--chunk-kb KB]
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include <vgpu/vgpu.h>

static struct vgpu_device *dev;
static unsigned int chunks = 32;
static size_t chunk_bytes = 64 * 1024;

static float *x, *y;              /* chunks * chunk_bytes each, from malloc */
static uint8_t *out;              /* 16 bytes per chunk: sum (f64), XXH64 */
static struct vgpu_buffer *bx, *by, *bout;

/* The producer's fences, handed to the consumer in order. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int *fence_fds;
static unsigned int produced;
static int failures;

static void fail(const char *what, int err)
{
	fprintf(stderr, "vgpu-pipeline: %s: %s (%s)\n", what, vgpu_strerror(err),
		vgpu_error_detail());
	__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
}

static void *producer(void *arg)
{
	struct vgpu_batch *b = NULL;
	struct vgpu_fence **fs = calloc(chunks, sizeof(*fs));
	int err = vgpu_batch_create(dev, &b);

	(void)arg;
	if (err || !fs) {
		fail("producer: batch", err ? err : -ENOMEM);
		return NULL;
	}
	for (unsigned int k = 0; k < chunks; k++) {
		struct vgpu_submit_info si = { .struct_size = sizeof(si), .ring = 0 };
		uint64_t off = (uint64_t)k * chunk_bytes;
		int fd = -1;

		vgpu_batch_reset(b);
		err = vgpu_batch_saxpy(b, by, off, bx, off, chunk_bytes, 2.0f);
		if (!err)
			err = vgpu_batch_submit_async(b, &si, &fs[k]);
		if (!err) {
			fd = vgpu_fence_export(fs[k]);
			if (fd < 0)
				err = fd;
		}
		if (err)
			fail("producer: submit", err);
		pthread_mutex_lock(&mu);
		fence_fds[k] = fd;
		produced = k + 1;
		pthread_cond_signal(&cv);
		pthread_mutex_unlock(&mu);
	}
	for (unsigned int k = 0; k < chunks; k++) {
		if (fs[k] && (err = vgpu_fence_wait(fs[k], -1, NULL)))
			fail("producer: wait", err);
		vgpu_fence_destroy(fs[k]);
	}
	vgpu_batch_destroy(b);
	free(fs);
	return NULL;
}

static void *consumer(void *arg)
{
	struct vgpu_batch *b = NULL;
	struct vgpu_fence *last = NULL;
	int err = vgpu_batch_create(dev, &b);

	(void)arg;
	if (err) {
		fail("consumer: batch", err);
		return NULL;
	}
	for (unsigned int k = 0; k < chunks; k++) {
		struct vgpu_submit_info si = { .struct_size = sizeof(si), .ring = 1 };
		uint64_t off = (uint64_t)k * chunk_bytes;
		struct vgpu_fence *f = NULL;
		int fd;

		pthread_mutex_lock(&mu);
		while (produced <= k)
			pthread_cond_wait(&cv, &mu);
		fd = fence_fds[k];
		pthread_mutex_unlock(&mu);
		if (fd < 0)
			continue;
		si.flags = VGPU_SUBMIT_IN_FENCE_FD;
		si.in_fence_fd = fd;
		vgpu_batch_reset(b);
		err = vgpu_batch_sum_f32(b, bout, 16 * k, by, off, chunk_bytes);
		if (!err)
			err = vgpu_batch_checksum(b, bout, 16 * k + 8, by, off, chunk_bytes, k);
		if (!err)
			err = vgpu_batch_submit_async(b, &si, &f);
		close(fd);
		if (err) {
			fail("consumer: submit", err);
			continue;
		}
		/* Ring 1 runs in order: waiting for the last fence is enough,
		 * but every fence is dropped as soon as it is made. */
		vgpu_fence_destroy(last);
		last = f;
	}
	if (last && (err = vgpu_fence_wait(last, -1, NULL)))
		fail("consumer: wait", err);
	vgpu_fence_destroy(last);
	vgpu_batch_destroy(b);
	return NULL;
}

int main(int argc, char **argv)
{
	size_t n;
	pthread_t tp, tc;
	unsigned int good = 0;
	int err;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--chunks"))
			chunks = (unsigned int)strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--chunk-kb"))
			chunk_bytes = strtoul(argv[i + 1], NULL, 0) * 1024;
	}
	if (chunks == 0 || chunk_bytes == 0 || chunk_bytes % 4) {
		fprintf(stderr, "vgpu-pipeline: bad --chunks or --chunk-kb\n");
		return 2;
	}
	err = vgpu_open(NULL, 0, &dev);
	if (err) {
		fprintf(stderr, "vgpu-pipeline: vgpu_open: %s\n", vgpu_strerror(err));
		return 1;
	}
	n = chunks * chunk_bytes;
	/* Plain malloc: any alignment; the library registers whole pages. */
	x = malloc(n + 4);
	y = malloc(n + 4);
	out = malloc(16 * (size_t)chunks);
	fence_fds = calloc(chunks, sizeof(*fence_fds));
	if (!x || !y || !out || !fence_fds) {
		fprintf(stderr, "vgpu-pipeline: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < n / 4; i++) {
		x[i] = (float)(i % 1024) * 0.5f;
		y[i] = (float)(i % 7);
	}
	memset(out, 0, 16 * (size_t)chunks);
	err = vgpu_buffer_from_user(dev, x, n, VGPU_BUF_READ_ONLY, &bx);
	if (!err)
		err = vgpu_buffer_from_user(dev, y, n, 0, &by);
	if (!err)
		err = vgpu_buffer_from_user(dev, out, 16 * (size_t)chunks, 0, &bout);
	if (err) {
		fail("register", err);
		return 1;
	}
	printf("registered: x at page offset %zu, y at %zu, out at %zu (%s)\n",
	       vgpu_buffer_offset(bx), vgpu_buffer_offset(by), vgpu_buffer_offset(bout),
	       vgpu_buffer_is_zero_copy(by) ? "zero-copy" : "copy path");
	pthread_create(&tp, NULL, producer, NULL);
	pthread_create(&tc, NULL, consumer, NULL);
	pthread_join(tp, NULL);
	pthread_join(tc, NULL);

	/* Check on the CPU. */
	for (unsigned int k = 0; k < chunks; k++) {
		const float *yk = y + k * chunk_bytes / 4, *xk = x + k * chunk_bytes / 4;
		double sum = 0, got_sum;
		uint64_t got_hash;
		bool ok = true;

		for (size_t i = 0; i < chunk_bytes / 4; i++) {
			size_t gi = k * chunk_bytes / 4 + i;
			float want = 2.0f * xk[i];

			want = want + (float)(gi % 7);
			ok &= yk[i] == want;
			sum += (double)yk[i];
		}
		memcpy(&got_sum, out + 16 * k, 8);
		memcpy(&got_hash, out + 16 * k + 8, 8);
		ok &= got_sum == sum && le64toh(got_hash) == XXH64(yk, chunk_bytes, k);
		good += ok;
	}
	printf("stages: saxpy on ring 0 (producer thread), sum + checksum on ring 1 "
	       "(consumer thread, in-fence)\n");
	printf("pipeline: %u of %u chunks of %zu KiB verified\n", good, chunks, chunk_bytes / 1024);
	vgpu_buffer_destroy(bx);
	vgpu_buffer_destroy(by);
	vgpu_buffer_destroy(bout);
	vgpu_close(dev);
	free(x);
	free(y);
	free(out);
	free(fence_fds);
	return good == chunks && !failures ? 0 : 1;
}
