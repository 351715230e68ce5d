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
 * library's own (a guest blob: the same on both device paths). The first
 * row, sync-0.1, is the synchronous path of libvgpu 0.1 (no ring, one
 * shared status record) in raw ioctls: the baseline every ratio refers to. Latency is
 * the time from the start of the submit call to the return of the wait
 * that saw its fence signalled. Output: a header line, then
 *   submit-bench MODE DEPTH RINGS SUBMITS_PER_S LAT_MEDIAN_US LAT_P99_US CALL_US RATIO
 * with CALL_US the median time inside the submit call itself and RATIO the
 * throughput over the sync-0.1 row's.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xf86drm.h>
#include <drm/virtgpu_drm.h>

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

/*
 * The synchronous path of libvgpu 0.1, as it was: one execbuffer without a
 * ring (the device runs it in order on its queue thread), its out-fence
 * polled and closed, one shared status record. Raw ioctls on the device's
 * fd, so that it runs beside the others in the same guest.
 */
static struct vgpu_buffer *legacy_status;

static int legacy_submit(struct vgpu_buffer *buf, unsigned int r)
{
	struct {
		struct vgpu_compute_submit h;
		struct vgpu_compute_op op;
	} cmd;
	uint32_t handles[2] = { vgpu_buffer_handle(legacy_status), vgpu_buffer_handle(buf) };
	struct drm_virtgpu_execbuffer eb;
	struct pollfd pfd;
	volatile struct vgpu_compute_status *st = vgpu_buffer_data(legacy_status);
	int rc;

	memset(&cmd, 0, sizeof(cmd));
	cmd.h.magic = htole32(VGPU_COMPUTE_MAGIC);
	cmd.h.num_ops = htole32(1);
	cmd.h.status_res = htole32(vgpu_buffer_res_id(legacy_status));
	cmd.op.opcode = htole32(VGPU_OP_FILL);
	cmd.op.dst_res = htole32(vgpu_buffer_res_id(buf));
	cmd.op.dst_off = htole64((uint64_t)r * bytes);
	cmd.op.len = htole64(bytes);
	cmd.op.arg0 = htole64(r);
	st->result = 0xffffffffu;
	memset(&eb, 0, sizeof(eb));
	eb.flags = VIRTGPU_EXECBUF_FENCE_FD_OUT;
	eb.size = sizeof(cmd);
	eb.command = (uintptr_t)&cmd;
	eb.bo_handles = (uintptr_t)handles;
	eb.num_bo_handles = 2;
	eb.fence_fd = -1;
	if (drmIoctl(vgpu_device_fd(dev), DRM_IOCTL_VIRTGPU_EXECBUFFER, &eb))
		return -errno;
	pfd.fd = eb.fence_fd;
	pfd.events = POLLIN;
	rc = poll(&pfd, 1, 60000);
	close(eb.fence_fd);
	if (rc != 1)
		return -ETIMEDOUT;
	return le32toh(st->result) == VGPU_COMPUTE_OK ? 0 : -EIO;
}

/* One run: depth 0 is the synchronous call, rings 0 with it the 0.1 path. */
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
		struct vgpu_batch *b = bs[i % (rings ? rings : 1)];

		if (depth == 0 && rings == 0) {
			start[i] = now_us();
			err = legacy_submit(buf, 0);
			lat[i] = now_us() - start[i];
			call[i] = lat[i];
			continue;
		}
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
		{ "sync-0.1", 0, 99 },
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
	if (!err)
		err = vgpu_buffer_alloc(dev, 4096, 0, &legacy_status);
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
		unsigned int rings = cfg[c].rings == 99 ? 0 : cfg[c].rings ? cfg[c].rings :
				     nrings_many;
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
		if (c == 0)
			sync_rate = rate[reps / 2];
		printf("submit-bench %s %u %u %.0f %.1f %.1f %.1f %.2f\n", cfg[c].mode,
		       cfg[c].depth, rings, rate[reps / 2], med[reps / 2], p99[reps / 2],
		       cm[reps / 2], rate[reps / 2] / sync_rate);
		fflush(stdout);
	}
	for (unsigned int r = 0; r < 16; r++)
		vgpu_batch_destroy(bs[r]);
	vgpu_buffer_destroy(buf);
	vgpu_buffer_destroy(legacy_status);
	vgpu_close(dev);
	return 0;
}
