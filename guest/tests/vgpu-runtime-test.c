/* SPDX-License-Identifier: MIT */
/*
 * vgpu-runtime-test - what a compute runtime built on libvgpu relies on,
 * against the real device inside the guest. Prints TAP.
 *
 * - Every op gives the same results on every kind of buffer: the caller's
 *   memory registered directly (zero copy where the device has userptr),
 *   the same memory on the copy path (VGPU_BUF_COPY), and library-allocated
 *   blobs; at unaligned addresses too.
 * - Results of copy-path submits are in memory once the fence retires,
 *   whatever was waited on (a sync_file's poll(), then vgpu_fence_wait).
 * - Submits over shared memory keep their order by address range, whatever
 *   buffer objects name the memory.
 * - The copy path takes over where the kernel refuses to pin a mapped range
 *   (a writable MAP_SHARED file mapping); a bad pointer stays -EFAULT.
 * - Lifetimes: vgpu_buffer_destroy() waits for the submits using the buffer;
 *   batches hold their buffers; the registration cache registers a range
 *   once, covers overlaps with one registration, and keeps unused entries
 *   within its budget.
 * - Fences: waits on many (all, any), nanosecond and absolute deadlines,
 *   infinite timeouts, imported sync_files (sw_sync timelines).
 *
 *   vgpu-runtime-test
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include <vgpu/vgpu.h>

#include "guest-check.h"
#include "tap.h"

static struct vgpu_device *dev;
static struct vgpu_info info;
static size_t page;
static long pin_start;

static void *map_anon(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED) {
		printf("Bail out! mmap %zu bytes: %s\n", size, strerror(errno));
		exit(1);
	}
	return p;
}

static struct vgpu_batch *new_batch(void)
{
	struct vgpu_batch *b = NULL;

	if (vgpu_batch_create(dev, &b)) {
		printf("Bail out! vgpu_batch_create: %s\n", vgpu_error_detail());
		exit(1);
	}
	return b;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- every op on every kind of buffer ---- */

enum kind { K_DIRECT, K_COPY, K_ALLOC, K_N };
static const char *const kind_name[K_N] = { "direct", "copy path", "allocated" };

/* Memory of size bytes at an address that is `skew` bytes into a page, and
 * a buffer over it of the given kind. */
struct kbuf {
	struct vgpu_buffer *buf;
	uint8_t *mem;         /* what the caller reads and writes */
	void *map;
	size_t map_size;
};

static bool kbuf_make(struct kbuf *k, enum kind kind, size_t size, size_t skew, unsigned int flags)
{
	int err;

	memset(k, 0, sizeof(*k));
	if (kind == K_ALLOC) {
		err = vgpu_buffer_alloc(dev, size, flags & VGPU_BUF_READ_ONLY, &k->buf);
		k->mem = err ? NULL : vgpu_buffer_data(k->buf);
	} else {
		k->map_size = (size + skew + page - 1) / page * page;
		k->map = map_anon(k->map_size);
		k->mem = (uint8_t *)k->map + skew;
		err = vgpu_buffer_from_user(dev, k->mem, size,
					    flags | (kind == K_COPY ? VGPU_BUF_COPY : 0), &k->buf);
	}
	if (err)
		tap_diag("%s buffer of %zu bytes: %s (%s)", kind_name[kind], size,
			 vgpu_strerror(err), vgpu_error_detail());
	return err == 0;
}

static void kbuf_free(struct kbuf *k)
{
	vgpu_buffer_destroy(k->buf);
	if (k->map)
		munmap(k->map, k->map_size);
}

static int run(struct vgpu_batch *b)
{
	struct vgpu_submit_result r;
	int err = vgpu_batch_submit(b, &r);

	if (err)
		tap_diag("submit: %s (%s)", vgpu_strerror(err), vgpu_error_detail());
	vgpu_batch_reset(b);
	return err;
}

#define GM 24
#define GN 20
#define GK 28

static bool close_f(float got, double want, double mag, int k)
{
	return fabs((double)got - want) <= k * 0x1p-23 * mag + 1e-30;
}

/* Every op once, on buffers of one kind; the device's results compared
 * with the values computed here. */
static void test_ops_on(enum kind kind)
{
	const size_t n = 64 * 1024, skew = kind == K_ALLOC ? 0 : 100;
	const char *kn = kind_name[kind];
	struct kbuf src, dst;
	struct vgpu_batch *b;
	float *x, *y, yref[256];
	double sum = 0, mag = 0;
	bool ok;

	if (!tap_ok(kbuf_make(&src, kind, n, skew, 0) && kbuf_make(&dst, kind, n, skew + 8, 0),
		    "%s: two buffers of %zu bytes, %zu bytes into a page", kn, n, skew))
		return;
	b = new_batch();
	tap_diag("%s: zero copy %d", kn, vgpu_buffer_is_zero_copy(src.buf));

	fill_pattern(src.mem, n, 7);
	memset(dst.mem, 0, n);
	ok = !vgpu_batch_copy(b, dst.buf, 16, src.buf, 32, 4096) && !run(b) &&
	     memcmp(dst.mem + 16, src.mem + 32, 4096) == 0;
	tap_ok(ok, "%s: COPY lands in the caller's memory", kn);

	ok = !vgpu_batch_fill(b, dst.buf, 4, 1024, 0xa5a55a5au) && !run(b) &&
	     rd64(dst.mem + 4) == 0xa5a55a5aa5a55a5aull && rd64(dst.mem + 1020) == 0xa5a55a5aa5a55a5aull;
	tap_ok(ok, "%s: FILL", kn);

	ok = !vgpu_batch_checksum(b, dst.buf, 8, src.buf, 3, 10000, 42) && !run(b) &&
	     rd64(dst.mem + 8) == XXH64(src.mem + 3, 10000, 42);
	tap_ok(ok, "%s: CHECKSUM", kn);

	x = (float *)(void *)src.mem;
	y = (float *)(void *)dst.mem;
	for (int i = 0; i < 256; i++) {
		x[i] = (float)(i % 17) * 0.25f - 2.0f;
		y[i] = (float)(i % 5) * 1.5f;
		yref[i] = 3.0f * x[i];
		yref[i] = yref[i] + y[i];
	}
	ok = !vgpu_batch_saxpy(b, dst.buf, 0, src.buf, 0, 1024, 3.0f) && !run(b) &&
	     memcmp(y, yref, sizeof(yref)) == 0;
	tap_ok(ok, "%s: SAXPY reads y from memory and writes it back", kn);

	for (int i = 0; i < 1024; i++) {
		x[i] = (float)((i * 29) % 97) / 7.0f - 5.0f;
		sum += x[i];
		mag += fabs(x[i]);
	}
	ok = !vgpu_batch_sum_f32(b, dst.buf, 512, src.buf, 0, 4096) && !run(b);
	{
		double got;

		memcpy(&got, dst.mem + 512, 8);
		tap_ok(ok && got == sum, "%s: SUM_F32 (%.17g, want %.17g)", kn, got, sum);
	}
	if (info.caps.op_mask >> VGPU_OP_REDUCE_F32 & 1) {
		double got;

		ok = !vgpu_batch_reduce_f32(b, dst.buf, 520, src.buf, 0, 4096) && !run(b);
		memcpy(&got, dst.mem + 520, 8);
		tap_ok(ok && fabs(got - sum) <= 1024 * 0x1p-53 * mag,
		       "%s: REDUCE_F32 reaches the caller's memory (%.17g, want %.17g)", kn, got,
		       sum);
	} else {
		tap_ok(vgpu_batch_reduce_f32(b, dst.buf, 520, src.buf, 0, 4096) == -EOPNOTSUPP,
		       "%s: REDUCE_F32 refused by a version-1 device", kn);
	}
	if (info.caps.op_mask >> VGPU_OP_SGEMM & 1) {
		/* A at 64, B right after it, C at 256: offsets of the caller's
		 * pointer, which is not page aligned. */
		float *a = (float *)(void *)(src.mem + 64), *bm = a + GM * GK;
		float *c = (float *)(void *)(dst.mem + 256);
		int bad = 0;

		for (int i = 0; i < GM * GK; i++)
			a[i] = (float)((i * 37) % 101 - 50) / 16.0f;
		for (int i = 0; i < GK * GN; i++)
			bm[i] = (float)((i * 53) % 89 - 44) / 8.0f;
		memset(c, 0, GM * GN * 4);
		ok = !vgpu_batch_sgemm(b, dst.buf, 256, src.buf, 64, 64 + 4 * GM * GK, GM, GN, GK,
				       0, 0, 0) && !run(b);
		for (int i = 0; i < GM && ok; i++)
			for (int j = 0; j < GN; j++) {
				double e = 0, m = 0;

				for (int q = 0; q < GK; q++) {
					double p = (double)a[i * GK + q] * bm[q * GN + j];

					e += p;
					m += fabs(p);
				}
				bad += !close_f(c[i * GN + j], e, m, GK);
			}
		tap_ok(ok && bad == 0, "%s: SGEMM %dx%d reads both matrices and its C reaches the "
		       "caller's memory (%d off)", kn, GM, GN, bad);
	}
	vgpu_batch_destroy(b);
	kbuf_free(&src);
	kbuf_free(&dst);
}

/* ---- copy-path results and the sync_file ---- */

static void test_sync_file(void)
{
	const size_t n = 1 << 20;
	uint8_t *p = map_anon(n);
	struct vgpu_buffer *buf = NULL;
	struct vgpu_batch *b = new_batch();
	struct vgpu_fence *f = NULL;
	struct pollfd pfd;
	int fd, err;

	memset(p, 0, n);
	err = vgpu_buffer_from_user(dev, p, n, VGPU_BUF_COPY, &buf);
	if (!tap_ok(!err, "copy-path buffer"))
		return;
	vgpu_batch_fill(b, buf, 0, n, 0x01020304u);
	err = vgpu_batch_submit_async(b, NULL, &f);
	fd = err ? -1 : vgpu_fence_export(f);
	tap_ok(fd >= 0, "copy path: submitted and exported");
	pfd.fd = fd;
	pfd.events = POLLIN;
	tap_ok(poll(&pfd, 1, 10000) == 1, "the sync_file signals");
	tap_ok(vgpu_fence_needs_retire(f), "vgpu_fence_needs_retire: the copy-back is still due");
	err = vgpu_fence_wait(f, 0, NULL);
	tap_ok(!err && rd64(p) == 0x0102030401020304ull && rd64(p + n - 8) == 0x0102030401020304ull,
	       "vgpu_fence_wait(0) after the poll: done at once, results in memory");
	tap_ok(!vgpu_fence_needs_retire(f), "and nothing is due any more");
	close(fd);
	vgpu_fence_destroy(f);

	if (info.userptr) {
		struct vgpu_buffer *zc = NULL;

		memset(p, 0, n);
		vgpu_batch_reset(b);
		err = vgpu_buffer_from_user(dev, p, n, 0, &zc);
		vgpu_batch_fill(b, zc, 0, n, 0x0a0b0c0du);
		if (!err)
			err = vgpu_batch_submit_async(b, NULL, &f);
		fd = err ? -1 : vgpu_fence_export(f);
		pfd.fd = fd;
		tap_ok(fd >= 0 && !vgpu_fence_needs_retire(f) && poll(&pfd, 1, 10000) == 1 &&
		       rd64(p + n - 8) == 0x0a0b0c0d0a0b0c0dull,
		       "zero copy: nothing due; once the sync_file signals the results are there");
		if (fd >= 0)
			close(fd);
		vgpu_fence_destroy(f);
		vgpu_batch_reset(b);
		vgpu_buffer_destroy(zc);
	}
	vgpu_batch_destroy(b);
	vgpu_buffer_destroy(buf);
	munmap(p, n);
}

/* ---- order by address range ---- */

/* A FILL through one buffer, then (without waiting) a CHECKSUM of the same
 * memory through another: the checksum must see the fill. */
static void order_case(unsigned int wflags, unsigned int rflags, const char *what)
{
	const size_t n = 4 << 20;
	uint8_t *p = map_anon(n), *out = map_anon(page), *ref = malloc(n);
	struct vgpu_buffer *w = NULL, *r = NULL, *o = NULL;
	struct vgpu_batch *b1 = new_batch(), *b2 = new_batch();
	struct vgpu_fence *f1 = NULL, *f2 = NULL;
	int err;

	memset(p, 0x11, n);
	for (size_t i = 0; i < n; i += 4)
		memcpy(ref + i, &(uint32_t){ htole32(0x5a5a0001u) }, 4);
	err = vgpu_buffer_from_user(dev, p, n, wflags, &w);
	if (!err)
		err = vgpu_buffer_from_user(dev, p + page, n - 2 * page, rflags, &r);
	if (!err)
		err = vgpu_buffer_from_user(dev, out, page, 0, &o);
	if (!tap_ok(!err, "%s: two registrations of one range", what)) {
		tap_diag("%s", vgpu_error_detail());
		return;
	}
	vgpu_batch_fill(b1, w, 0, n, 0x5a5a0001u);
	vgpu_batch_checksum(b2, o, 0, r, 0, n - 2 * page, 9);
	err = vgpu_batch_submit_async(b1, NULL, &f1);
	if (!err)
		err = vgpu_batch_submit_async(b2, NULL, &f2);
	if (!err)
		err = vgpu_fence_wait(f2, 30000, NULL);
	tap_ok(!err && rd64(out) == XXH64(ref + page, n - 2 * page, 9),
	       "%s: the second submit saw the first one's writes", what);
	vgpu_fence_wait(f1, 30000, NULL);
	vgpu_fence_destroy(f1);
	vgpu_fence_destroy(f2);
	vgpu_batch_destroy(b1);
	vgpu_batch_destroy(b2);
	vgpu_buffer_destroy(w);
	vgpu_buffer_destroy(r);
	vgpu_buffer_destroy(o);
	munmap(p, n);
	munmap(out, page);
	free(ref);
}

static void test_order(void)
{
	order_case(VGPU_BUF_COPY, VGPU_BUF_COPY | VGPU_BUF_READ_ONLY,
		   "copy path, then copy path (other flags)");
	if (info.userptr) {
		order_case(0, VGPU_BUF_COPY, "zero copy, then copy path");
		order_case(VGPU_BUF_COPY, VGPU_BUF_READ_ONLY, "copy path, then zero copy");
	}
}

/* ---- refusals the copy path takes over ---- */

static void test_fallback(void)
{
	const char *dir = getenv("VGPU_RUN_DIR");
	char path[512];
	struct vgpu_buffer *buf = NULL;
	struct vgpu_batch *b;
	uint8_t *p;
	int fd, err;

	/* A bad pointer stays a bad pointer. */
	p = mmap(NULL, 4 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(p + page, page);
	err = vgpu_buffer_from_user(dev, p + page, page, 0, &buf);
	tap_ok(err == -EFAULT, "unmapped memory: -EFAULT, not the copy path (%d)", err);
	err = vgpu_buffer_from_user(dev, p + 2 * page, page, 0, &buf);
	tap_ok(err == -EFAULT, "PROT_NONE memory: -EFAULT (%d)", err);
	munmap(p, 4 * page);

	/* A writable shared mapping of an ordinary file: no long-term pin,
	 * the copy path instead; the results reach the file. */
	snprintf(path, sizeof(path), "%s/vgpu-runtime-file.XXXXXX", dir ? dir : ".");
	fd = mkstemp(path);
	if (!tap_ok(fd >= 0 && ftruncate(fd, 16 * page) == 0, "a %zu-byte file (%s)", 16 * page,
		    path))
		return;
	unlink(path);
	p = mmap(NULL, 16 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	tap_ok(p != MAP_FAILED, "mapped MAP_SHARED read-write");
	memset(p, 0, 16 * page);
	err = vgpu_buffer_from_user(dev, p, 16 * page, 0, &buf);
	tap_ok(!err, "registered (%s)", err ? vgpu_error_detail() : "ok");
	if (!err) {
		tap_diag("file mapping: zero copy %d", vgpu_buffer_is_zero_copy(buf));
		b = new_batch();
		vgpu_batch_fill(b, buf, 0, 16 * page, 0x66554433u);
		err = run(b);
		tap_ok(!err && rd64(p + 5 * page) == 0x6655443366554433ull,
		       "the fill reached the file's pages");
		vgpu_batch_destroy(b);
		vgpu_buffer_destroy(buf);
		err = vgpu_buffer_from_user(dev, p, 16 * page, VGPU_BUF_ZERO_COPY, &buf);
		tap_ok(err == 0 || err == -EFAULT || err == -EOPNOTSUPP,
		       "with VGPU_BUF_ZERO_COPY the kernel's answer is returned (%d)", err);
		if (!err)
			vgpu_buffer_destroy(buf);
	}
	munmap(p, 16 * page);
	close(fd);
}

/* ---- lifetimes ---- */

static void test_destroy_waits(void)
{
	const size_t n = 32 << 20;
	uint8_t *p = map_anon(n), *out = map_anon(page);
	struct vgpu_buffer *src = NULL, *dst = NULL;
	struct vgpu_batch *b = new_batch();
	struct vgpu_fence *f = NULL;
	struct vgpu_submit_result r = { .struct_size = sizeof(r) };
	int err;

	fill_pattern(p, n, 3);
	memset(out, 0, page);
	err = vgpu_buffer_from_user(dev, p, n, VGPU_BUF_READ_ONLY, &src);
	if (!err)
		err = vgpu_buffer_from_user(dev, out, page, VGPU_BUF_COPY, &dst);
	if (!tap_ok(!err, "a %zu MiB source and a copy-path result buffer", n >> 20))
		return;
	for (int i = 0; i < 8; i++)
		vgpu_batch_checksum(b, dst, 8 * i, src, 0, n, i);
	err = vgpu_batch_submit_async(b, NULL, &f);
	vgpu_batch_destroy(b);  /* the fence keeps what it needs */
	vgpu_buffer_destroy(dst);
	/* Had destroy returned with the submit in flight, its copy-back would
	 * write into this unmapped page later. */
	tap_ok(!err && rd64(out + 56) == XXH64(p, n, 7),
	       "vgpu_buffer_destroy returned after the submit's results were in memory");
	munmap(out, page);
	err = vgpu_fence_wait(f, 0, &r);
	tap_ok(!err && r.ops_done == 8, "the fence had retired with 8 ops done (%d)", err);
	vgpu_fence_destroy(f);
	vgpu_buffer_destroy(src);
	munmap(p, n);
}

static void test_batch_refs(void)
{
	uint8_t *p = map_anon(page);
	struct vgpu_buffer *buf = NULL;
	struct vgpu_batch *b = new_batch();
	struct vgpu_fence *f = NULL;
	int err;

	vgpu_buffer_from_user(dev, p, page, 0, &buf);
	vgpu_batch_fill(b, buf, 0, page, 7);
	vgpu_buffer_destroy(buf);
	err = vgpu_batch_submit_async(b, NULL, &f);
	tap_ok(err == -EINVAL && f == NULL && strstr(vgpu_error_detail(), "destroyed"),
	       "a batch naming a destroyed buffer is refused (%d: %s)", err, vgpu_error_detail());
	tap_eq(vgpu_batch_num_ops(b), 1, "and keeps its op until reset");
	vgpu_batch_reset(b);
	tap_eq(vgpu_batch_num_ops(b), 0, "reset drops it (and the last reference)");
	vgpu_batch_destroy(b);
	munmap(p, page);
}

static struct vgpu_cache_stats cstats(void)
{
	struct vgpu_cache_stats s = { .struct_size = sizeof(s) };

	vgpu_cache_get_stats(dev, &s);
	return s;
}

static void cache_budget(uint64_t bytes)
{
	struct vgpu_cache_config c = { .struct_size = sizeof(c), .max_bytes = bytes };

	vgpu_cache_configure(dev, &c);
}

#define RACE_THREADS 4
static pthread_barrier_t race_bar;
static uint8_t *race_mem;
static struct vgpu_buffer *race_got[RACE_THREADS];

static void *race_main(void *arg)
{
	unsigned int i = (unsigned int)(uintptr_t)arg;
	uint64_t off;

	pthread_barrier_wait(&race_bar);
	/* Different pointers and sizes, the same pages. */
	if (vgpu_buffer_get(dev, race_mem + 8 + 8 * i, 3 * page, 0, &race_got[i], &off))
		race_got[i] = NULL;
	return NULL;
}

static void test_cache(void)
{
	const size_t n = 64 * page;
	uint8_t *p = map_anon(n);
	struct vgpu_buffer *a = NULL, *b = NULL, *c = NULL, *big = NULL;
	uint64_t oa, ob, oc;
	long pin0, pin = 0;
	bool same = true;
	pthread_t t[RACE_THREADS];

	/* Every earlier buffer is gone: VmPin back where it started. */
	vm_pin_wait(pin_start, 5000, &pin0);
	cache_budget(n);
	/* Concurrent misses on one range: one registration. */
	for (int round = 0; round < 20 && same; round++) {
		race_mem = p + (size_t)(round % 8) * 8 * page;
		pthread_barrier_init(&race_bar, NULL, RACE_THREADS);
		for (uintptr_t i = 0; i < RACE_THREADS; i++)
			pthread_create(&t[i], NULL, race_main, (void *)i);
		for (int i = 0; i < RACE_THREADS; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&race_bar);
		for (int i = 0; i < RACE_THREADS; i++) {
			if (!race_got[i] || race_got[i] != race_got[0]) {
				tap_diag("round %d: thread %d got %p, thread 0 %p (%" PRIu64
					 " entries)", round, i, (void *)race_got[i],
					 (void *)race_got[0], cstats().entries);
				same = false;
			}
		}
		for (int i = 0; i < RACE_THREADS; i++)
			vgpu_buffer_put(race_got[i]);
		vgpu_invalidate(dev, p, n);
	}
	tap_ok(same, "%d threads missing the same range at once got one registration",
	       RACE_THREADS);
	if (info.userptr)
		vm_pin_wait(pin0, 5000, &pin); /* the invalidated entries' unpins */

	/* Overlapping misses: one covering registration. */
	vgpu_invalidate(dev, p, n);
	vgpu_buffer_get(dev, p, 2 * page, 0, &a, &oa);
	vgpu_buffer_get(dev, p + page, 2 * page, 0, &b, &ob);
	tap_ok(a && b && b != a && ob == page && cstats().entries == 1,
	       "an overlapping miss registers one range covering both (%" PRIu64 " entries)",
	       cstats().entries);
	if (info.userptr) {
		pin = vm_pin_kb(0) - pin0;
		tap_eq(pin, (long)(3 * page / 1024) + (long)(2 * page / 1024),
		       "VmPin: 3 pages for the cover plus the 2 of the first, still in use");
	}
	vgpu_buffer_get(dev, p + 2 * page, page, 0, &c, &oc);
	tap_ok(c == b && oc == 2 * page, "a later get inside the cover is a hit");
	vgpu_buffer_put(a);
	vgpu_buffer_put(b);
	vgpu_buffer_put(c);
	tap_eq((long long)cstats().entries, 1, "the covered entry went with its last put");
	if (info.userptr)
		tap_ok(vm_pin_wait(pin0 + (long)(3 * page / 1024), 5000, &pin),
		       "VmPin: the 3 pages of the cover alone (%ld kB more)", pin - pin0);

	/* The budget counts unused entries only. */
	vgpu_invalidate(dev, p, n);
	cache_budget(4 * page);
	vgpu_buffer_get(dev, p, 32 * page, 0, &big, &oa);  /* in use, bigger than the budget */
	vgpu_buffer_get(dev, p + 40 * page, 2 * page, 0, &a, &oa);
	vgpu_buffer_put(a);
	tap_eq((long long)cstats().entries, 2,
	       "an unused entry within the budget stays while a larger one is in use");
	vgpu_buffer_get(dev, p + 40 * page, page, 0, &b, &ob);
	tap_ok(b == a, "and is a hit later");
	vgpu_buffer_put(b);
	vgpu_buffer_put(big);
	tap_eq((long long)cstats().entries, 0,
	       "unused entries over the budget go, oldest first (the large one too)");
	vgpu_buffer_get(dev, p, page, 0, &a, &oa);
	vgpu_buffer_put(a);
	tap_eq((long long)cstats().entries, 1, "an unused entry within the budget is kept");
	cache_budget(0);
	tap_eq((long long)cstats().entries, 0, "budget 0: nothing kept");
	munmap(p, n);
}

/* ---- fences ---- */

struct sw_sync_create_fence_data {
	uint32_t value;
	char name[32];
	int32_t fence;
};
#define SW_SYNC_IOC_CREATE_FENCE _IOWR('W', 0, struct sw_sync_create_fence_data)
#define SW_SYNC_IOC_INC _IOW('W', 1, uint32_t)

static struct vgpu_fence *submit_fill(struct vgpu_buffer *buf, size_t n, uint32_t ring,
				      unsigned int repeat)
{
	struct vgpu_submit_info si = { .struct_size = sizeof(si), .ring = ring };
	struct vgpu_batch *b = new_batch();
	struct vgpu_fence *f = NULL;

	for (unsigned int i = 0; i < repeat; i++)
		vgpu_batch_fill(b, buf, 0, n, i);
	if (vgpu_batch_submit_async(b, &si, &f))
		tap_diag("submit: %s", vgpu_error_detail());
	vgpu_batch_destroy(b);
	return f;
}

static void test_fences(void)
{
	const size_t big = 16 << 20;
	uint8_t *p = map_anon(big), *q = map_anon(page), *s = map_anon(page);
	struct vgpu_buffer *bp = NULL, *bq = NULL, *bs = NULL;
	struct vgpu_fence *f[3], *g = NULL, *imp = NULL;
	struct vgpu_batch *b;
	unsigned int first = 99;
	int64_t t0;
	int err, tl, fd;

	vgpu_buffer_from_user(dev, p, big, 0, &bp);
	vgpu_buffer_from_user(dev, q, page, 0, &bq);
	vgpu_buffer_from_user(dev, s, page, 0, &bs);

	/* All of three, on three rings. */
	f[0] = submit_fill(bp, big, 1, 4);
	f[1] = submit_fill(bq, page, 2, 1);
	f[2] = submit_fill(bs, page, 3, 1);
	err = vgpu_fence_wait_many(f, 3, 0, -1, NULL);
	tap_ok(!err && rd64(p + big - 8) == 0x0000000300000003ull && rd64(q) == 0 && rd64(s) == 0,
	       "wait_many, all: every submit done (%d)", err);
	for (int i = 0; i < 3; i++)
		vgpu_fence_destroy(f[i]);

	/* Any: a long one and a short one. */
	f[0] = submit_fill(bp, big, 1, 16);
	f[1] = submit_fill(bq, page, 2, 1);
	err = vgpu_fence_wait_many(f, 2, VGPU_WAIT_ANY, -1, &first);
	tap_ok(!err && first < 2 && vgpu_fence_wait(f[first], 0, NULL) == 0,
	       "wait_many, any: returns with a fence that is done (index %u)", first);
	tap_ok(vgpu_fence_wait_ns(f[0], 0, 0, NULL) != -EINVAL,
	       "wait_ns with a zero timeout polls");
	/* An absolute deadline in the past is a poll too. */
	t0 = now_ns();
	err = vgpu_fence_wait_ns(f[0], t0 - 1000000, VGPU_WAIT_ABSOLUTE, NULL);
	tap_ok(err == 0 || (err == -ETIMEDOUT && now_ns() - t0 < 500000000),
	       "wait_ns with a past absolute deadline returns at once (%d)", err);
	err = vgpu_fence_wait_ns(f[0], -1, 0, NULL);
	tap_ok(!err, "wait_ns with no timeout waits for it");
	tap_ok(vgpu_fence_wait_ns(f[0], 0, 0x80, NULL) == -EINVAL, "unknown wait flags: -EINVAL");
	tap_ok(vgpu_fence_wait_many(f, 0, 0, 0, NULL) == -EINVAL &&
	       vgpu_fence_wait_many(f, 300, 0, 0, NULL) == -EINVAL,
	       "wait_many of 0 or 300 fences: -EINVAL");
	vgpu_fence_destroy(f[0]);
	vgpu_fence_destroy(f[1]);

	/* A timeout that runs out, then an infinite batch timeout. */
	g = submit_fill(bp, big, 1, 64);
	t0 = now_ns();
	err = vgpu_fence_wait_ns(g, 1000000, 0, NULL);
	tap_ok(err == -ETIMEDOUT || err == 0, "wait_ns(1 ms) on a long submit (%d, %.1f ms)", err,
	       (now_ns() - t0) / 1e6);
	vgpu_fence_wait(g, -1, NULL);
	vgpu_fence_destroy(g);
	b = new_batch();
	vgpu_batch_set_timeout(b, VGPU_TIMEOUT_INFINITE);
	vgpu_batch_fill(b, bq, 0, page, 0x77u);
	tap_ok(run(b) == 0 && rd64(q) == 0x0000007700000077ull, "a batch with no timeout runs");
	vgpu_batch_destroy(b);

	/* Imported sync_files: our own export, and a sw_sync timeline. */
	g = submit_fill(bq, page, 0, 1);
	fd = vgpu_fence_export(g);
	err = vgpu_fence_import(dev, fd, &imp);
	tap_ok(!err && imp, "an exported fence imported back (%d)", err);
	tap_ok(vgpu_fence_wait(imp, 10000, NULL) == 0, "the imported fence completes");
	close(fd);
	vgpu_fence_destroy(imp);
	vgpu_fence_destroy(g);
	{
		int pfd[2];

		err = pipe(pfd) ? -errno : vgpu_fence_import(dev, pfd[0], &imp);
		tap_ok(err == -EINVAL, "a pipe is no sync_file: -EINVAL (%d)", err);
		close(pfd[0]);
		close(pfd[1]);
	}
	tl = open("/sys/kernel/debug/sync/sw_sync", O_RDWR | O_CLOEXEC);
	if (tap_ok(tl >= 0, "a sw_sync timeline (%s)", tl < 0 ? strerror(errno) : "debugfs")) {
		struct sw_sync_create_fence_data d = { .value = 1 };
		uint32_t one = 1;

		strcpy(d.name, "vgpu-runtime-test");
		err = ioctl(tl, SW_SYNC_IOC_CREATE_FENCE, &d) ? -errno : 0;
		if (!err)
			err = vgpu_fence_import(dev, d.fence, &imp);
		tap_ok(!err, "its fence imported");
		f[0] = imp;
		f[1] = submit_fill(bq, page, 4, 1);
		err = vgpu_fence_wait_many(f, 2, VGPU_WAIT_ANY, 5000000000ll, &first);
		tap_ok(!err && first == 1, "wait_many, any: the device's fence before the unsignalled "
		       "timeline (%d, index %u)", err, first);
		tap_ok(vgpu_fence_wait(imp, 0, NULL) == -ETIMEDOUT,
		       "the imported fence is not signalled yet");
		tap_ok(ioctl(tl, SW_SYNC_IOC_INC, &one) == 0 && vgpu_fence_wait(imp, 5000, NULL) == 0,
		       "signalled on the timeline, it completes");
		tap_ok(vgpu_fence_wait_many(f, 2, 0, 5000000000ll, NULL) == 0, "wait_many, all: both");
		vgpu_fence_destroy(f[1]);
		vgpu_fence_destroy(imp);
		close(d.fence);
		close(tl);
	}
	vgpu_buffer_destroy(bp);
	vgpu_buffer_destroy(bq);
	vgpu_buffer_destroy(bs);
	munmap(p, big);
	munmap(q, page);
	munmap(s, page);
}

/*
 * Waiting for the last submit of a ring brings what the earlier ones wrote
 * into the caller's memory too, on the copy path: the ring ran them in
 * order, and a runtime that dropped their fences reads their results.
 * Once after the device is certainly done (the wait sees a written status
 * record and makes no system call), once while it still runs.
 */
static void ring_copyback_case(bool settle)
{
	const unsigned int n = 8;
	struct kbuf k;
	struct vgpu_fence *f = NULL;
	unsigned int good = 0;
	int err = -1;

	if (!kbuf_make(&k, K_COPY, n * page, 0, 0))
		return;
	memset(k.mem, 0, n * page);
	for (unsigned int i = 0; i < n; i++) {
		struct vgpu_submit_info si = { .struct_size = sizeof(si), .ring = 1 };
		struct vgpu_batch *b = new_batch();

		vgpu_fence_destroy(f);
		f = NULL;
		vgpu_batch_fill(b, k.buf, (uint64_t)i * page, page, 0x100u + i);
		if (vgpu_batch_submit_async(b, &si, &f))
			tap_diag("submit %u: %s", i, vgpu_error_detail());
		vgpu_batch_destroy(b);
	}
	if (settle)
		usleep(300 * 1000);
	if (f)
		err = vgpu_fence_wait(f, 10000, NULL);
	for (unsigned int i = 0; i < n; i++)
		good += rd64(k.mem + (size_t)i * page + page - 8) ==
			((uint64_t)(0x100u + i) << 32 | (0x100u + i));
	tap_ok(!err && good == n, "copy path, %u submits on one ring, fences dropped but the "
	       "last, waited for %s: all %u results in memory (%u, %d)", n,
	       settle ? "once done" : "at once", n, good, err);
	vgpu_fence_destroy(f);
	kbuf_free(&k);
}

static void test_ring_copyback(void)
{
	ring_copyback_case(true);
	ring_copyback_case(false);
}

/* ---- structs of an older, smaller size ---- */

static void test_struct_sizes(void)
{
	struct vgpu_cache_config cfg = { .struct_size = sizeof(cfg) - 1 };
	struct vgpu_cache_stats st;
	struct {
		struct vgpu_submit_result r;
		uint8_t canary[16];
	} small;
	uint8_t *p = map_anon(page);
	struct vgpu_buffer *buf = NULL;
	struct vgpu_batch *b = new_batch();
	const size_t old_result = offsetof(struct vgpu_submit_result, num_ops);
	int err;

	tap_ok(vgpu_cache_configure(dev, &cfg) == -EINVAL,
	       "a vgpu_cache_config smaller than 1.0's is refused");
	cfg.struct_size = sizeof(cfg);
	tap_ok(vgpu_cache_configure(dev, &cfg) == 0, "1.0's size is taken");
	memset(&st, 0xee, sizeof(st));
	st.struct_size = offsetof(struct vgpu_cache_stats, bytes);
	tap_ok(vgpu_cache_get_stats(dev, &st) == -EINVAL,
	       "a vgpu_cache_stats smaller than 1.0's is refused");
	/* A result record as the library's first release had it, without
	 * num_ops and ring: filled up to its size and not a byte more. */
	vgpu_buffer_from_user(dev, p, page, 0, &buf);
	vgpu_batch_fill(b, buf, 0, page, 1);
	memset(&small, 0xee, sizeof(small));
	small.r.struct_size = old_result;
	err = vgpu_batch_run(b, &small.r);
	tap_ok(!err && small.r.device_result == VGPU_COMPUTE_OK && small.r.ops_done == 1 &&
	       all_bytes((uint8_t *)&small.r + old_result, sizeof(small) - old_result, 0xee),
	       "a vgpu_submit_result of the oldest size is filled up to its size only");
	small.r.struct_size = old_result - 1;
	tap_ok(vgpu_batch_run(b, &small.r) == -EINVAL, "one byte smaller is refused");
	vgpu_batch_destroy(b);
	vgpu_buffer_destroy(buf);
	munmap(p, page);
}

int main(void)
{
	int err;

	page = (size_t)sysconf(_SC_PAGESIZE);
	err = vgpu_open(NULL, 0, &dev);
	if (err) {
		printf("Bail out! vgpu_open: %s (%s)\n", vgpu_strerror(err), vgpu_error_detail());
		return 1;
	}
	vgpu_get_info(dev, &info);
	pin_start = vm_pin_kb(0);
	tap_diag("userptr %d, capset version %u, op mask %#x", info.userptr, info.caps.version,
		 info.caps.op_mask);
	for (int k = 0; k < K_N; k++)
		test_ops_on((enum kind)k);
	test_sync_file();
	test_order();
	test_fallback();
	test_destroy_waits();
	test_batch_refs();
	test_cache();
	test_fences();
	test_ring_copyback();
	test_struct_sizes();
	vgpu_close(dev);
	return tap_done();
}
