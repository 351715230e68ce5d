/* SPDX-License-Identifier: MIT */
/*
 * vgpu-submit-bench - submits per second and latency of small submits: the
 * synchronous call (vgpu_batch_submit) against asynchronous submits with 1,
 * 4 and 16 in flight, on one ring and on several. Side by side in one run;
 * each figure is the median of --reps runs.
 *
 *   vgpu-submit-bench [--submits N] [--reps N] [--bytes N] [--rings N]
 *
 * One submit is one fill op of --bytes (default 64) into a buffer of the
 * library's own (a guest blob: the same on both device paths). Latency is
 * the time from the start of the submit call to the return of the wait
 * that saw its fence signalled. Output: a header line, then
 *   submit-bench MODE DEPTH RINGS SUBMITS_PER_S LAT_MEDIAN_US LAT_P99_US CALL_US RATIO
 * with CALL_US the median time inside the submit call itself and RATIO the
 * throughput over the synchronous path's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vgpu/vgpu.h>

static struct vgpu_device *dev;
static unsigned int nsub = 2000, reps = 3, nrings_many = 4;
static size_t bytes = 64;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct figures {
	double rate, lat_med, lat_p99, call_med;
};

/* One run: depth 0 is the synchronous call. */
static int run(struct vgpu_batch **bs, struct vgpu_buffer *buf, unsigned int depth,
	       unsigned int rings, struct figures *out)
{
	double *lat = calloc(nsub, sizeof(*lat)), *start = calloc(nsub, sizeof(*start));
	double *call = calloc(nsub, sizeof(*call));
	struct vgpu_fence **win = calloc(depth ? depth : 1, sizeof(*win));
	unsigned int *idx = calloc(depth ? depth : 1, sizeof(*idx));
	unsigned int head = 0, count = 0;
	double t0, t1;
	int err = 0;

	if (!lat || !start || !win || !idx || !call)
		return -ENOMEM;
	t0 = now_us();
	for (unsigned int i = 0; i < nsub && !err; i++) {
		struct vgpu_batch *b = bs[i % rings];

		if (depth == 0) {
			start[i] = now_us();
			err = vgpu_batch_submit(b, NULL);
			lat[i] = now_us() - start[i];
			call[i] = lat[i];
			continue;
		}
		if (count == depth) {
			/* The window is full: the oldest first. */
			err = vgpu_fence_wait(win[head], -1, NULL);
			lat[idx[head]] = now_us() - start[idx[head]];
			vgpu_fence_destroy(win[head]);
			head = (head + 1) % depth;
			count--;
			if (err)
				break;
		}
		{
			struct vgpu_submit_info si = { .struct_size = sizeof(si), .ring = i % rings };
			unsigned int slot = (head + count) % depth;

			start[i] = now_us();
			err = vgpu_batch_submit_async(b, &si, &win[slot]);
			call[i] = now_us() - start[i];
			idx[slot] = i;
			if (!err)
				count++;
		}
	}
	while (count) {
		int e = vgpu_fence_wait(win[head], -1, NULL);

		lat[idx[head]] = now_us() - start[idx[head]];
		vgpu_fence_destroy(win[head]);
		head = (head + 1) % depth;
		count--;
		if (e && !err)
			err = e;
	}
	t1 = now_us();
	(void)buf;
	if (!err) {
		qsort(lat, nsub, sizeof(*lat), cmp_d);
		out->rate = nsub / ((t1 - t0) / 1e6);
		out->lat_med = lat[nsub / 2];
		out->lat_p99 = lat[(size_t)(nsub * 0.99)];
		qsort(call, nsub, sizeof(*call), cmp_d);
		out->call_med = call[nsub / 2];
	}
	free(call);
	free(lat);
	free(start);
	free(win);
	free(idx);
	return err;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *mode;
		unsigned int depth, rings;
	} cfg[] = {
		{ "sync", 0, 1 },
		{ "async", 1, 1 }, { "async", 4, 1 }, { "async", 16, 1 },
		{ "async", 1, 0 }, { "async", 4, 0 }, { "async", 16, 0 },
	};
	struct vgpu_batch *bs[16] = { 0 };
	struct vgpu_buffer *buf = NULL;
	double sync_rate = 0;
	int err;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--submits"))
			nsub = (unsigned int)strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--reps"))
			reps = (unsigned int)strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--bytes"))
			bytes = strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--rings"))
			nrings_many = (unsigned int)strtoul(argv[i + 1], NULL, 0);
	}
	if (nsub < 100 || reps == 0 || reps > 15 || bytes == 0 || bytes % 4 ||
	    nrings_many < 2 || nrings_many > 16) {
		fprintf(stderr, "vgpu-submit-bench: --submits >= 100, --reps 1..15, --bytes a "
			"multiple of 4, --rings 2..16\n");
		return 2;
	}
	err = vgpu_open(NULL, 0, &dev);
	if (!err)
		err = vgpu_buffer_alloc(dev, 16 * bytes, 0, &buf);
	for (unsigned int r = 0; r < 16 && !err; r++) {
		err = vgpu_batch_create(dev, &bs[r]);
		if (!err)
			err = vgpu_batch_fill(bs[r], buf, r * bytes, bytes, r);
	}
	if (err) {
		fprintf(stderr, "vgpu-submit-bench: setup: %s (%s)\n", vgpu_strerror(err),
			vgpu_error_detail());
		return 1;
	}
	/* Warm-up. */
	{
		struct figures w;

		run(bs, buf, 4, 1, &w);
	}
	printf("# submits=%u reps=%u bytes=%zu; figures are medians of the reps\n", nsub, reps,
	       bytes);
	printf("# mode depth rings submits_per_s lat_median_us lat_p99_us call_median_us "
	       "ratio_to_sync\n");
	for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
		unsigned int rings = cfg[c].rings ? cfg[c].rings : nrings_many;
		double rate[15], med[15], p99[15], cm[15];
		struct figures f;

		for (unsigned int k = 0; k < reps; k++) {
			err = run(bs, buf, cfg[c].depth, rings, &f);
			if (err) {
				fprintf(stderr, "vgpu-submit-bench: %s depth %u: %s (%s)\n",
					cfg[c].mode, cfg[c].depth, vgpu_strerror(err),
					vgpu_error_detail());
				return 1;
			}
			rate[k] = f.rate;
			med[k] = f.lat_med;
			p99[k] = f.lat_p99;
			cm[k] = f.call_med;
		}
		qsort(cm, reps, sizeof(double), cmp_d);
		qsort(rate, reps, sizeof(double), cmp_d);
		qsort(med, reps, sizeof(double), cmp_d);
		qsort(p99, reps, sizeof(double), cmp_d);
		if (cfg[c].depth == 0)
			sync_rate = rate[reps / 2];
		printf("submit-bench %s %u %u %.0f %.1f %.1f %.1f %.2f\n", cfg[c].mode,
		       cfg[c].depth, rings, rate[reps / 2], med[reps / 2], p99[reps / 2],
		       cm[reps / 2], rate[reps / 2] / sync_rate);
		fflush(stdout);
	}
	for (unsigned int r = 0; r < 16; r++)
		vgpu_batch_destroy(bs[r]);
	vgpu_buffer_destroy(buf);
	vgpu_close(dev);
	return 0;
}
