/* SPDX-License-Identifier: MIT */
/*
 * vgpu-load - sustained create/submit/destroy from several guest threads,
 * every result verified. Prints TAP and the rates held.
 *
 *   vgpu-load [--seconds S] [--threads N] [--seed N] [--max-kib K]
 *             [--timeout-ms MS] [--checksums N] [--marker FILE] [--expect-fault]
 *
 * Each thread has its own device (context) and loops: fill a source range
 * with a fresh pattern, register source (read-only), destination and a
 * result page as buffers (userptr blobs, or the copy path without the
 * feature), submit one batch of fill + copy + checksum (--checksums N: the
 * checksum N times, for long submits), check the
 * destination and the checksum against values computed here, destroy the
 * three buffers. A result that differs, or any error, is counted: nothing
 * may be lost.
 *
 * Fault mode (for tests/system/faults.sh): --marker FILE is created after
 * one second of load (the host side waits for it, then kills the daemon);
 * --expect-fault then stops every thread at its first error and reports
 * what the guest saw (errno, after how long), instead of failing on it.
 * Each submit waits at most --timeout-ms (default 60000).
 */
#include <endian.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <xxhash.h>

#include "stress-common.h"
#include "tap.h"
#include "vgpu.h"

/* Result of a bounded wait, taken before the message that prints its values. */
static bool waited;

static double seconds = 20;
static unsigned int nthreads = 4;
static uint64_t seed = 1;
static size_t max_bytes = 256 << 10;
static int timeout_ms = 60000;
static unsigned int checksums = 1; /* checksum ops per submit (long submits) */
static const char *marker;
static bool expect_fault;
static size_t page;

static atomic_int stop;
static atomic_ulong total_iters;
static double t_start, t_marker;

struct worker {
	pthread_t t;
	unsigned int id;
	uint64_t rs;
	struct vgpu_device *dev;
	bool zero_copy;
	/* outcomes */
	unsigned long iters, verified, bad_results, errors, bytes;
	int first_err;
	const char *first_err_where;
	double first_err_at;
	double stuck_s; /* duration of the call that failed */
};

static void note_error(struct worker *w, int err, const char *where, double call_s)
{
	if (!w->errors) {
		w->first_err = err;
		w->first_err_where = where;
		w->first_err_at = now_s();
		w->stuck_s = call_s;
	}
	w->errors++;
	if (expect_fault)
		atomic_store(&stop, 1);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t *src, *dst, *res;
	size_t maxsz = max_bytes;

	src = mmap(NULL, 2 * maxsz + page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (src == MAP_FAILED) {
		note_error(w, -errno, "mmap", 0);
		return NULL;
	}
	dst = src + maxsz;
	res = dst + maxsz;

	while (!atomic_load(&stop)) {
		size_t size = page * (1 + rnd_below(&w->rs, maxsz / page));
		size_t half = size / 2;
		uint32_t v = (uint32_t)rnd_next(&w->rs);
		uint64_t pseed = rnd_next(&w->rs);
		struct vgpu_buffer *bs = NULL, *bd = NULL, *br = NULL;
		struct vgpu_batch *bt = NULL;
		int err;
		double t0;
		bool good = true;

		fill_pattern(src, size, pseed);
		memset(res, 0, 8);
		err = vgpu_buffer_from_user(w->dev, src, size, VGPU_BUF_READ_ONLY, &bs);
		if (!err)
			err = vgpu_buffer_from_user(w->dev, dst, size, 0, &bd);
		if (!err)
			err = vgpu_buffer_from_user(w->dev, res, page, 0, &br);
		if (err) {
			note_error(w, err, "create", 0);
			goto next;
		}
		if (w->iters == 0)
			w->zero_copy = vgpu_buffer_is_zero_copy(bs);
		err = vgpu_batch_create(w->dev, &bt);
		if (!err)
			err = vgpu_batch_fill(bt, bd, 0, half, v);
		if (!err)
			err = vgpu_batch_copy(bt, bd, half, bs, 0, size - half);
		for (unsigned int k = 0; k < checksums && !err; k++)
			err = vgpu_batch_checksum(bt, br, 0, bs, 0, size, pseed);
		if (err) {
			note_error(w, err, "batch", 0);
			goto next;
		}
		vgpu_batch_set_timeout(bt, timeout_ms);
		t0 = now_s();
		err = vgpu_batch_submit(bt, NULL);
		if (err) {
			note_error(w, err, "submit", now_s() - t0);
			goto next;
		}
		for (size_t i = 0; i < half && good; i += 4) {
			uint32_t got;

			memcpy(&got, dst + i, 4);
			good = le32toh(got) == v;
		}
		good = good && memcmp(dst + half, src, size - half) == 0;
		{
			uint64_t got;

			memcpy(&got, res, 8);
			good = good && le64toh(got) == XXH64(src, size, pseed);
		}
		if (good)
			w->verified++;
		else
			w->bad_results++;
		w->bytes += 2 * size;
		w->iters++;
		atomic_fetch_add(&total_iters, 1);
next:
		vgpu_batch_destroy(bt);
		/* After a fault the device may never answer again: the objects
		 * are left to process exit (see docs/reliability.md). */
		if (!(expect_fault && w->errors)) {
			vgpu_buffer_destroy(bs);
			vgpu_buffer_destroy(bd);
			vgpu_buffer_destroy(br);
		}
		if (err && !expect_fault)
			usleep(10000);
	}
	if (!(expect_fault && w->errors))
		munmap(src, 2 * maxsz + page);
	return NULL;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"Usage: %s [--seconds S] [--threads N] [--seed N] [--max-kib K] [--timeout-ms MS]\n"
		"          [--checksums N] [--marker FILE] [--expect-fault]\n", argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	struct worker *w;
	unsigned long iters = 0, verified = 0, bad = 0, errors = 0, bytes = 0;
	unsigned long prev = 0, min_rate = ~0ul, max_rate = 0, windows = 0;
	long pages0, objs0, pages, objs;
	bool have_debugfs;
	double elapsed;
	int err;

	page = (size_t)sysconf(_SC_PAGESIZE);
	for (int i = 1; i < argc; i++) {
		char *end = (char *)"";

		if (strcmp(argv[i], "--expect-fault") == 0) {
			expect_fault = true;
			continue;
		}
		if (i + 1 >= argc)
			usage(argv[0]);
		if (strcmp(argv[i], "--seconds") == 0) {
			seconds = strtod(argv[++i], &end);
			if (seconds <= 0 || seconds > 3600)
				usage(argv[0]);
		} else if (strcmp(argv[i], "--threads") == 0) {
			unsigned long t = strtoul(argv[++i], &end, 0);

			if (t < 1 || t > 64)
				usage(argv[0]);
			nthreads = (unsigned int)t;
		} else if (strcmp(argv[i], "--seed") == 0) {
			seed = strtoull(argv[++i], &end, 0);
		} else if (strcmp(argv[i], "--max-kib") == 0) {
			unsigned long k = strtoul(argv[++i], &end, 0);

			if (k < page / 1024 || k > (64ul << 10))
				usage(argv[0]);
			max_bytes = (k << 10) / page * page;
		} else if (strcmp(argv[i], "--timeout-ms") == 0) {
			long t = strtol(argv[++i], &end, 0);

			if (t < 1 || t > 600000)
				usage(argv[0]);
			timeout_ms = (int)t;
		} else if (strcmp(argv[i], "--checksums") == 0) {
			unsigned long k = strtoul(argv[++i], &end, 0);

			if (k < 1 || k > 250)
				usage(argv[0]);
			checksums = (unsigned int)k;
		} else if (strcmp(argv[i], "--marker") == 0) {
			marker = argv[++i];
		} else {
			usage(argv[0]);
		}
		if (*end)
			usage(argv[0]);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	w = calloc(nthreads, sizeof(*w));
	if (!w) {
		printf("Bail out! calloc\n");
		return 1;
	}
	have_debugfs = debugfs_read(&pages0, &objs0) == 0;
	for (unsigned int i = 0; i < nthreads; i++) {
		w[i].id = i;
		w[i].rs = rnd_seed(seed, i);
		err = vgpu_open(NULL, 0, &w[i].dev);
		if (!tap_eq(err, 0, "load: open device %u: %s", i, vgpu_strerror(err))) {
			printf("Bail out! no device\n");
			return tap_done();
		}
	}
	t_start = now_s();
	for (unsigned int i = 0; i < nthreads; i++)
		pthread_create(&w[i].t, NULL, worker_main, &w[i]);
	/* Sample the completed iterations once a second. */
	for (double next = t_start + 1; !atomic_load(&stop); next += 1) {
		unsigned long cur, rate;

		while (now_s() < next && !atomic_load(&stop))
			usleep(20000);
		if (atomic_load(&stop))
			break;
		cur = atomic_load(&total_iters);
		rate = cur - prev;
		prev = cur;
		windows++;
		if (rate < min_rate)
			min_rate = rate;
		if (rate > max_rate)
			max_rate = rate;
		if (marker && !t_marker) {
			int fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

			if (fd >= 0)
				close(fd);
			t_marker = now_s();
			tap_diag("marker %s written after %.1f s (%lu iterations)", marker,
				 t_marker - t_start, cur);
		}
		if (now_s() - t_start >= seconds)
			atomic_store(&stop, 1);
	}
	for (unsigned int i = 0; i < nthreads; i++)
		pthread_join(w[i].t, NULL);
	elapsed = now_s() - t_start;

	for (unsigned int i = 0; i < nthreads; i++) {
		iters += w[i].iters;
		verified += w[i].verified;
		bad += w[i].bad_results;
		errors += w[i].errors;
		bytes += w[i].bytes;
	}

	if (expect_fault) {
		double first = 0;
		int ferr = 0;
		const char *where = "";
		double stuck = 0;

		for (unsigned int i = 0; i < nthreads; i++) {
			if (w[i].errors)
				tap_diag("fault: thread %u: first error %d (%s) in %s, %.2f s after the "
					 "marker, the call took %.2f s; %lu iterations verified before",
					 i, w[i].first_err, vgpu_strerror(w[i].first_err),
					 w[i].first_err_where, w[i].first_err_at - t_marker, w[i].stuck_s,
					 w[i].verified);
			else
				tap_diag("fault: thread %u: no error (%lu iterations)", i, w[i].iters);
		}
		for (unsigned int i = 0; i < nthreads; i++)
			if (w[i].errors && (!first || w[i].first_err_at < first)) {
				first = w[i].first_err_at;
				ferr = w[i].first_err;
				where = w[i].first_err_where;
				stuck = w[i].stuck_s;
			}
		tap_ok(t_marker > 0, "fault: marker written while the load ran");
		tap_eq((long long)bad, 0, "fault: no wrong result before the fault (%lu verified)",
		       verified);
		if (tap_ok(errors > 0, "fault: the guest saw the fault as an error")) {
			tap_diag("fault: first error %d (%s) in %s, %.2f s after the marker; the "
				 "failing call took %.2f s", ferr, vgpu_strerror(ferr), where,
				 first - t_marker, stuck);
			printf("fault-errno %d %s\n", ferr, where);
		}
		{
			/* Once a call has seen ENODEV the library answers ENODEV
			 * itself, without asking the kernel (the detail says so). */
			unsigned int lost = 0, sticky = 0;

			for (unsigned int i = 0; i < nthreads; i++) {
				struct vgpu_buffer *b = NULL;
				int e = 0;

				for (int k = 0; k < 50 && e != -ENODEV; k++) {
					e = vgpu_buffer_alloc(w[i].dev, 4096, 0, &b);
					vgpu_buffer_destroy(b);
					b = NULL;
					if (e != -ENODEV)
						usleep(100000);
				}
				if (e != -ENODEV)
					continue;
				lost++;
				e = vgpu_buffer_alloc(w[i].dev, 4096, 0, &b);
				sticky += e == -ENODEV && strstr(vgpu_error_detail(), "is gone") != NULL;
			}
			tap_ok(lost == nthreads && sticky == lost, "fault: ENODEV sticks: on %u of %u "
			       "devices the kernel said ENODEV, and the next call got it from the "
			       "library (%u)", lost, nthreads, sticky);
		}
		fflush(stdout);
		/* Leave everything to process exit: that is part of what is tested. */
		return tap_done();
	}

	tap_diag("load: %u threads (%s), %.1f s, seed %" PRIu64 ", sizes up to %zu KiB",
		 nthreads, w[0].zero_copy ? "userptr" : "copy path", elapsed, seed, max_bytes >> 10);
	tap_diag("load: %lu iterations = %lu buffer creates + %lu submits (%lu ops) + %lu destroys; "
		 "%.0f iterations/s, %.0f ioctl-level ops/s, %.1f MB/s verified", iters, 3 * iters,
		 iters, 3 * iters, 3 * iters, iters / elapsed, 7 * iters / elapsed,
		 bytes / elapsed / 1e6);
	printf("load-figures mode=%s threads=%u seconds=%.1f iterations=%lu per_s=%.0f "
	       "min_1s=%lu max_1s=%lu verified=%lu\n", w[0].zero_copy ? "userptr" : "copy",
	       nthreads, elapsed, iters, iters / elapsed, min_rate == ~0ul ? 0 : min_rate,
	       max_rate, verified);
	for (unsigned int i = 0; i < nthreads; i++) {
		tap_ok(w[i].errors == 0 && w[i].bad_results == 0 && w[i].verified == w[i].iters &&
		       w[i].iters > 0,
		       "load: thread %u: %lu iterations, %lu verified, %lu wrong, %lu errors", i,
		       w[i].iters, w[i].verified, w[i].bad_results, w[i].errors);
		if (w[i].errors)
			tap_diag("thread %u: first error %d (%s) in %s", i, w[i].first_err,
				 vgpu_strerror(w[i].first_err), w[i].first_err_where);
	}
	tap_eq((long long)verified, (long long)iters, "load: every result verified, none lost");
	tap_ok(windows > 0 && min_rate > 0 && min_rate != ~0ul,
	       "load: held for the whole run: every 1 s window completed work (min %lu/s, max "
	       "%lu/s over %lu windows)", min_rate == ~0ul ? 0 : min_rate, max_rate, windows);
	for (unsigned int i = 0; i < nthreads; i++)
		vgpu_close(w[i].dev);
	if (have_debugfs) {
		waited = debugfs_wait(pages0, objs0, 10000, &pages, &objs);
		tap_ok(waited,
		       "load: debugfs back to %ld pages / %ld objects (now %ld / %ld)", pages0,
		       objs0, pages, objs);
	}
	free(w);
	return tap_done();
}
