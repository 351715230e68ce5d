/* SPDX-License-Identifier: MIT */
/*
 * vgpu-demo - checksum an ordinary buffer on the host device with no copy.
 *
 * Allocates a buffer, fills it, registers it as a userptr blob, has the
 * device compute XXH64 over it into a second userptr blob, and checks the
 * result against XXH64 computed here. Then does the same the classic way
 * (guest blob, map, memcpy, checksum) on the same data and prints both
 * times side by side.
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "vgpu.h"

#define PROGRESS_MIN (128ull << 20)     /* show progress from this size on */
#define PROGRESS_STEP (64ull << 20)

static const char *prog = "vgpu-demo";

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [OPTIONS]\n"
		"Fill an ordinary buffer, let the virtio-gpu device checksum it (XXH64)\n"
		"through a zero-copy userptr blob, verify the result against XXH64\n"
		"computed in the guest, and compare with the copy path (guest blob,\n"
		"map, memcpy, checksum) on the same data.\n"
		"\n"
		"  -s, --size SIZE     buffer size, with optional K/M/G suffix, a\n"
		"                      multiple of the page size (default 64M)\n"
		"  -r, --repeat N      timed runs of each path (default 3; best is shown)\n"
		"  -S, --seed N        XXH64 seed and fill pattern seed (default 0)\n"
		"  -d, --device PATH   DRM node (default: first virtio_gpu render node)\n"
		"  -q, --quiet         print only the result lines\n"
		"  -h, --help          this help\n"
		"\n"
		"The copy path needs a second buffer of SIZE: give the guest enough\n"
		"memory (about 2*SIZE + 64M).\n"
		"Exit status: 0 verified, 1 verification or device failure, 2 bad usage.\n",
		prog);
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned int shift = 0;

	errno = 0;
	if (!*s || *s == '-')
		return -1;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	if (*end == 'i' && shift)
		end++;
	if ((*end == 'B' || *end == 'b') && shift)
		end++;
	if (*end)
		return -1;
	if (shift && v > (ULLONG_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool quiet;

static void progress(const char *what, uint64_t done, uint64_t total)
{
	if (quiet || total < PROGRESS_MIN)
		return;
	printf("  %s: %3u%% (%" PRIu64 " of %" PRIu64 " MiB)\n", what,
	       (unsigned int)(done * 100 / total), done >> 20, total >> 20);
	fflush(stdout);
}

/* Deterministic content: a xorshift64 stream from the seed. */
static void fill(uint8_t *p, uint64_t size, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 0x243f6a8885a308d3ull;

	for (uint64_t off = 0; off < size;) {
		uint64_t end = off + PROGRESS_STEP < size ? off + PROGRESS_STEP : size;

		for (; off + 8 <= end; off += 8) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(p + off, &x, 8);
		}
		for (; off < end; off++)
			p[off] = (uint8_t)off;
		progress("fill", off, size);
	}
}

static uint64_t guest_xxh64(const uint8_t *p, uint64_t size, uint64_t seed)
{
	XXH64_state_t *st = XXH64_createState();
	uint64_t h;

	if (!st) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(1);
	}
	XXH64_reset(st, seed);
	for (uint64_t off = 0; off < size;) {
		uint64_t n = size - off < PROGRESS_STEP ? size - off : PROGRESS_STEP;

		XXH64_update(st, p + off, n);
		off += n;
		progress("guest xxh64", off, size);
	}
	h = XXH64_digest(st);
	XXH64_freeState(st);
	return h;
}

static void *alloc_populated(uint64_t size)
{
	/* MAP_POPULATE: one bulk fault-in instead of one slow fault a page. */
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static uint64_t le64_at(const void *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

struct times {
	double setup;   /* register (pin) or allocate + map */
	double copy;    /* memcpy into the blob (copy path) */
	double submit;  /* submit + wait */
	double total;
};

static int fail(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, vgpu_strerror(err));
	return 1;
}

/* Zero-copy path: the data itself as a read-only userptr blob. */
static int run_userptr(struct vgpu_device *dev, void *data, uint64_t size, void *out,
		       size_t out_size, uint64_t seed, uint64_t *hash, struct times *t,
		       bool *zero_copy)
{
	struct vgpu_buffer *src = NULL, *dst = NULL;
	struct vgpu_batch *b = NULL;
	double t0, t1, t2;
	int err;

	memset(out, 0, out_size);
	t0 = now_s();
	err = vgpu_buffer_from_user(dev, data, size, VGPU_BUF_READ_ONLY, &src);
	if (err)
		return fail("registering the data buffer", err);
	err = vgpu_buffer_from_user(dev, out, out_size, 0, &dst);
	if (err) {
		vgpu_buffer_destroy(src);
		return fail("registering the result buffer", err);
	}
	*zero_copy = vgpu_buffer_is_zero_copy(src) && vgpu_buffer_is_zero_copy(dst);
	t1 = now_s();
	err = vgpu_batch_create(dev, &b);
	if (!err)
		err = vgpu_batch_checksum(b, dst, 0, src, 0, size, seed);
	if (!err)
		err = vgpu_batch_submit(b, NULL);
	t2 = now_s();
	vgpu_batch_destroy(b);
	vgpu_buffer_destroy(dst);
	vgpu_buffer_destroy(src);
	if (err)
		return fail("checksum on the device", err);
	*hash = le64_at(out);
	t->setup = t1 - t0;
	t->copy = 0;
	t->submit = t2 - t1;
	t->total = now_s() - t0;
	return 0;
}

/*
 * Copy path: a guest blob, mapped, the data copied in, checksummed. The
 * first run allocates the blob (and pays for the first touch of its
 * mapping: the DRM mapping of a guest blob is filled page by page on
 * fault, which MAP_POPULATE does not do for it); later runs reuse it, as a
 * program with a staging buffer would.
 */
struct staging {
	struct vgpu_buffer *blob, *res;
};

static int run_copy(struct vgpu_device *dev, struct staging *st, const void *data,
		    uint64_t size, uint64_t seed, uint64_t *hash, struct times *t)
{
	struct vgpu_batch *b = NULL;
	double t0, t1, t2, t3;
	int err;

	bool first = !st->blob;

	t0 = now_s();
	if (first) {
		err = vgpu_buffer_alloc(dev, size, 0, &st->blob);
		if (err)
			return fail("allocating the guest blob", err);
		err = vgpu_buffer_alloc(dev, 4096, 0, &st->res);
		if (err)
			return fail("allocating the result blob", err);
	}
	t1 = now_s();
	for (uint64_t off = 0; off < size;) {
		uint64_t n = size - off < PROGRESS_STEP ? size - off : PROGRESS_STEP;

		memcpy((uint8_t *)vgpu_buffer_data(st->blob) + off, (const uint8_t *)data + off, n);
		off += n;
		if (first)
			progress("copy into a new guest blob", off, size);
	}
	t2 = now_s();
	err = vgpu_batch_create(dev, &b);
	if (!err)
		err = vgpu_batch_checksum(b, st->res, 0, st->blob, 0, size, seed);
	if (!err)
		err = vgpu_batch_submit(b, NULL);
	t3 = now_s();
	vgpu_batch_destroy(b);
	if (err)
		return fail("checksum on the device (copy path)", err);
	*hash = le64_at(vgpu_buffer_data(st->res));
	t->setup = t1 - t0;
	t->copy = t2 - t1;
	t->submit = t3 - t2;
	t->total = t3 - t0;
	return 0;
}

/* Zero-copy, registered once: only the submit is timed (best of repeat). */
static int run_userptr_reuse(struct vgpu_device *dev, void *data, uint64_t size, void *out,
			     size_t out_size, uint64_t seed, long repeat, uint64_t *hash,
			     struct times *t)
{
	struct vgpu_buffer *src = NULL, *dst = NULL;
	struct vgpu_batch *b = NULL;
	int err;

	memset(t, 0, sizeof(*t));
	err = vgpu_buffer_from_user(dev, data, size, VGPU_BUF_READ_ONLY, &src);
	if (!err)
		err = vgpu_buffer_from_user(dev, out, out_size, 0, &dst);
	if (!err)
		err = vgpu_batch_create(dev, &b);
	if (!err)
		err = vgpu_batch_checksum(b, dst, 0, src, 0, size, seed);
	for (long run = 0; run < repeat && !err; run++) {
		double t0 = now_s(), d;

		memset(out, 0, 8);
		err = vgpu_batch_submit(b, NULL);
		d = now_s() - t0;
		if (run == 0 || d < t->submit)
			t->submit = t->total = d;
		if (!err && run == 0)
			*hash = le64_at(out);
		else if (!err && le64_at(out) != *hash)
			err = -EIO;
	}
	vgpu_batch_destroy(b);
	vgpu_buffer_destroy(dst);
	vgpu_buffer_destroy(src);
	return err ? fail("checksum on the device (registered once)", err) : 0;
}

static void keep_best(struct times *best, const struct times *t, int run)
{
	if (run == 0 || t->total < best->total)
		*best = *t;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, 'S' },
		{ "device", required_argument, NULL, 'd' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t size = 64ull << 20, seed = 0, expect, got;
	long repeat = 3;
	const char *path = NULL;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct vgpu_device *dev;
	struct times tz = { 0 }, tc_first = { 0 }, tc = { 0 }, t;
	struct times tzr = { 0 };
	struct staging st = { 0 };
	uint8_t *data, *out;
	bool zero_copy = false;
	int c, err, bad = 0;
	double t0;
	char *end;

	if (argv[0] && strrchr(argv[0], '/'))
		prog = strrchr(argv[0], '/') + 1;
	while ((c = getopt_long(argc, argv, "s:r:S:d:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_size(optarg, &size) || size == 0 || size % page ||
			    size > SIZE_MAX / 2) {
				fprintf(stderr, "%s: bad --size '%s': want a non-zero multiple of %zu bytes, e.g. 64M\n",
					prog, optarg, page);
				return 2;
			}
			break;
		case 'r':
			errno = 0;
			repeat = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || repeat < 1 || repeat > 1000) {
				fprintf(stderr, "%s: bad --repeat '%s': want 1..1000\n", prog, optarg);
				return 2;
			}
			break;
		case 'S':
			errno = 0;
			seed = strtoull(optarg, &end, 0);
			if (errno || *end || end == optarg || *optarg == '-') {
				fprintf(stderr, "%s: bad --seed '%s'\n", prog, optarg);
				return 2;
			}
			break;
		case 'd':
			path = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
		usage(stderr);
		return 2;
	}

	err = vgpu_open(path, 0, &dev);
	if (err) {
		fprintf(stderr, "%s: cannot open %s: %s\n", prog,
			path ? path : "a virtio-gpu render node", vgpu_strerror(err));
		return 1;
	}
	if (!quiet)
		printf("device: userptr %s\n", vgpu_has_userptr(dev) ? "yes" :
		       "no (the first path below is the library's copy fallback)");

	t0 = now_s();
	data = alloc_populated(size);
	out = alloc_populated(page);
	if (!data || !out) {
		fprintf(stderr, "%s: cannot allocate %" PRIu64 " bytes: %s\n", prog, size,
			strerror(errno));
		vgpu_close(dev);
		return 1;
	}
	if (!quiet)
		printf("allocated %" PRIu64 " MiB (populated) in %.3f s\n", size >> 20,
		       now_s() - t0);
	t0 = now_s();
	fill(data, size, seed);
	if (!quiet)
		printf("filled in %.3f s\n", now_s() - t0);
	t0 = now_s();
	expect = guest_xxh64(data, size, seed);
	if (!quiet)
		printf("guest XXH64 %016" PRIx64 " in %.3f s (%.0f MB/s)\n", expect,
		       now_s() - t0, (double)size / 1e6 / (now_s() - t0));

	for (long run = 0; run < repeat && !bad; run++) {
		if (run_userptr(dev, data, size, out, page, seed, &got, &t, &zero_copy)) {
			bad = 1;
			break;
		}
		if (got != expect) {
			fprintf(stderr, "%s: MISMATCH (%s path): device %016" PRIx64
				", guest %016" PRIx64 "\n", prog,
				zero_copy ? "userptr" : "fallback", got, expect);
			bad = 1;
		}
		keep_best(&tz, &t, (int)run);
		if (run_copy(dev, &st, data, size, seed, &got, &t)) {
			bad = 1;
			break;
		}
		if (got != expect) {
			fprintf(stderr, "%s: MISMATCH (copy path): device %016" PRIx64
				", guest %016" PRIx64 "\n", prog, got, expect);
			bad = 1;
		}
		if (run == 0)
			tc_first = t;
		else
			keep_best(&tc, &t, (int)run - 1);
	}
	if (!bad && zero_copy) {
		if (run_userptr_reuse(dev, data, size, out, page, seed, repeat, &got, &tzr))
			bad = 1;
		else if (got != expect) {
			fprintf(stderr, "%s: MISMATCH (userptr, registered once): device %016"
				PRIx64 ", guest %016" PRIx64 "\n", prog, got, expect);
			bad = 1;
		}
	}
	vgpu_buffer_destroy(st.blob);
	vgpu_buffer_destroy(st.res);
	vgpu_close(dev);
	munmap(data, size);
	munmap(out, page);
	if (bad) {
		printf("FAIL: verification failed\n");
		return 1;
	}
	printf("size %" PRIu64 " MiB, XXH64 %016" PRIx64 ": device result verified\n",
	       size >> 20, expect);
	printf("%-13s %10s %10s %10s %10s %10s\n", "path", "setup_ms", "memcpy_ms",
	       "submit_ms", "total_ms", "MB/s");
	printf("%-13s %10.2f %10.2f %10.2f %10.2f %10.0f\n",
	       zero_copy ? "userptr" : "fallback", tz.setup * 1e3, tz.copy * 1e3,
	       tz.submit * 1e3, tz.total * 1e3, (double)size / 1e6 / tz.total);
	if (zero_copy)
		printf("%-13s %10.2f %10.2f %10.2f %10.2f %10.0f\n", "userptr-reuse", 0.0, 0.0,
		       tzr.submit * 1e3, tzr.total * 1e3, (double)size / 1e6 / tzr.total);
	printf("%-13s %10.2f %10.2f %10.2f %10.2f %10.0f\n", "copy-new", tc_first.setup * 1e3,
	       tc_first.copy * 1e3, tc_first.submit * 1e3, tc_first.total * 1e3,
	       (double)size / 1e6 / tc_first.total);
	if (repeat > 1)
		printf("%-13s %10.2f %10.2f %10.2f %10.2f %10.0f\n", "copy-reuse", tc.setup * 1e3,
		       tc.copy * 1e3, tc.submit * 1e3, tc.total * 1e3,
		       (double)size / 1e6 / tc.total);
	if (!quiet) {
		if (zero_copy)
			printf("(userptr: pin + checksum of the caller's memory, best of %ld; "
			       "userptr-reuse: checksum of memory registered once; ", repeat);
		else
			printf("(fallback: the library's copy path for the caller's memory: "
			       "guest blob + copy in (first touch) + checksum, best of %ld; ",
			       repeat);
		printf("copy-new: allocate + map a guest blob, memcpy (first touch of the "
		       "mapping), checksum; copy-reuse: memcpy into the same blob + "
		       "checksum, best of %ld)\n", repeat > 1 ? repeat - 1 : 0);
	}
	if (tz.total > 0) {
		printf("%s path: %.2fx the speed of copy-new", zero_copy ? "zero-copy" : "fallback",
		       tc_first.total / tz.total);
		if (repeat > 1)
			printf(", %.2fx of copy-reuse", tc.total / tz.total);
		printf("\n");
	}
	if (zero_copy && tzr.total > 0 && repeat > 1)
		printf("registered once: %.2fx the speed of copy-reuse\n", tc.total / tzr.total);
	return 0;
}
