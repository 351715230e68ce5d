/* SPDX-License-Identifier: MIT */
/*
 * vgpu-async-test - libvgpu's asynchronous submission, rings, fences,
 * syncobjs, threads, the fork guard, registration of any range and error
 * reporting, against the real device inside the guest. Prints TAP.
 *
 * Runs in either device mode (userptr or copy path); every result the
 * device computes is compared with the value computed here.
 *
 *   vgpu-async-test [--threads N] [--iters N]
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xf86drm.h>
#include <xxhash.h>

#include <vgpu/vgpu.h>

#include "guest-check.h"
#include "tap.h"

static struct vgpu_device *dev;
static struct vgpu_info info;
static size_t page;
static bool zero_copy;
static unsigned int nthreads = 4, iters = 100;

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

static struct vgpu_buffer *user_buf(void *p, size_t size, unsigned int flags)
{
	struct vgpu_buffer *b = NULL;
	int err = vgpu_buffer_from_user(dev, p, size, flags, &b);

	if (err) {
		printf("Bail out! vgpu_buffer_from_user(%zu): %s (%s)\n", size,
		       vgpu_strerror(err), vgpu_error_detail());
		exit(1);
	}
	return b;
}

static struct vgpu_batch *new_batch(void)
{
	struct vgpu_batch *b = NULL;

	if (vgpu_batch_create(dev, &b)) {
		printf("Bail out! vgpu_batch_create\n");
		exit(1);
	}
	return b;
}

static bool all_u32(const void *p, size_t n, uint32_t v)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 4 <= n; i += 4) {
		uint32_t w;

		memcpy(&w, b + i, 4);
		if (le32toh(w) != v)
			return false;
	}
	return true;
}

/* ---- version, info, ABI structs ---- */

static void test_version(void)
{
	struct vgpu_info small;

	tap_eq(vgpu_get_version(), VGPU_VERSION, "vgpu_get_version() = VGPU_VERSION (%#x)",
	       VGPU_VERSION);
	tap_eq(VGPU_SOVERSION, 1, "soversion 1");
	tap_eq(info.struct_size, sizeof(info), "vgpu_get_info sets struct_size");
	tap_eq(info.num_rings, 16, "the context has 16 rings");
	tap_eq(info.max_in_flight, 256, "256 submits can be in flight");
	memset(&small, 0xee, sizeof(small));
	small.struct_size = 8;
	tap_eq(vgpu_query_info(dev, &small), -EINVAL, "struct_size too small = -EINVAL");
	tap_ok(strstr(vgpu_error_detail(), "struct_size") != NULL,
	       "and the detail names struct_size: \"%s\"", vgpu_error_detail());
	/* An older caller's smaller struct: only its part is written. */
	memset(&small, 0xee, sizeof(small));
	small.struct_size = offsetof(struct vgpu_info, num_rings);
	tap_eq(vgpu_query_info(dev, &small), 0, "a struct of the first 1.0 size is accepted");
	tap_ok(small.num_rings == 0xeeeeeeeeu && strcmp(small.driver, "virtio_gpu") == 0,
	       "only its struct_size bytes were written");
}

/* ---- asynchronous submission ---- */

static void test_async_basic(void)
{
	const size_t size = 64 * page;
	uint8_t *p = map_anon(size);
	struct vgpu_buffer *buf = user_buf(p, size, 0);
	struct vgpu_batch *b = new_batch();
	struct vgpu_submit_result res = { .struct_size = sizeof(res) };
	struct vgpu_fence *f1 = NULL, *f2 = NULL;
	int err;

	memset(p, 0, size);
	vgpu_batch_fill(b, buf, 0, size / 2, 0x11111111u);
	err = vgpu_batch_submit_async(b, NULL, &f1);
	tap_eq(err, 0, "submit_async returns a fence");
	/* The batch is reusable at once. */
	vgpu_batch_reset(b);
	vgpu_batch_fill(b, buf, size / 2, size / 2, 0x22222222u);
	tap_eq(vgpu_batch_submit_async(b, NULL, &f2), 0, "the batch is reused at once");
	if (!zero_copy)
		/* Disjoint ranges of one buffer: the second submit does not
		 * wait for the first (order is kept by address range), and
		 * neither result is copied back before its fence retires. */
		tap_ok(all_bytes(p, size, 0),
		       "copy path: submits on disjoint ranges of one buffer do not wait for each "
		       "other, and no result is copied back before its fence retires");
	else
		tap_ok(1, "zero-copy: the device writes the memory itself");
	tap_eq(vgpu_fence_wait(f2, -1, &res), 0, "wait for the second");
	tap_ok(res.device_result == VGPU_COMPUTE_OK && res.ops_done == 1 && res.num_ops == 1,
	       "its result: OK, 1 op done");
	tap_eq(vgpu_fence_wait(f1, -1, NULL), 0, "wait for the first");
	tap_eq(vgpu_fence_wait(f1, 0, &res), 0, "a retired fence can be waited on again");
	tap_ok(all_u32(p, size / 2, 0x11111111u) && all_u32(p + size / 2, size / 2, 0x22222222u),
	       "both fills landed in the caller's memory");
	vgpu_fence_destroy(f1);
	vgpu_fence_destroy(f2);

	/* The buffer may go while its submit is in flight. */
	vgpu_batch_reset(b);
	vgpu_batch_fill(b, buf, 0, size, 0x33333333u);
	err = vgpu_batch_submit_async(b, NULL, &f1);
	vgpu_batch_destroy(b);
	vgpu_buffer_destroy(buf);
	tap_eq(err, 0, "submit, then destroy batch and buffer at once");
	tap_eq(vgpu_fence_wait(f1, -1, NULL), 0, "the fence still completes");
	tap_ok(all_u32(p, size, 0x33333333u), "and the result is in memory");
	vgpu_fence_destroy(f1);
	munmap(p, size);
}

/* Many submits in flight, each with its own status record: a bad one among
 * good ones reports its own error and no other. */
static void test_many_in_flight(void)
{
	enum { N = 300 };
	const size_t size = N * 64;
	uint8_t *p = map_anon(4 * page + size);
	struct vgpu_buffer *buf = user_buf(p, size, 0);
	struct vgpu_batch *b = new_batch();
	struct vgpu_fence *f[N];
	unsigned int ok = 0, bad_right = 0, submitted = 0, results_right = 0;

	for (unsigned int i = 0; i < N; i++) {
		vgpu_batch_reset(b);
		if (i % 50 == 7)
			vgpu_batch_add_raw(b, 99, 0, NULL, 0, NULL, 0, 0, 0, 0);
		else
			vgpu_batch_fill(b, buf, i * 64, 64, i);
		f[i] = NULL;
		if (vgpu_batch_submit_async(b, &(struct vgpu_submit_info){
				.struct_size = sizeof(struct vgpu_submit_info),
				.ring = i % info.num_rings }, &f[i]) == 0)
			submitted++;
	}
	tap_eq(submitted, N, "%d submits made without waiting (more than the %u slots)", N,
	       info.max_in_flight);
	for (unsigned int i = 0; i < N; i++) {
		struct vgpu_submit_result res = { .struct_size = sizeof(res) };
		int err = f[i] ? vgpu_fence_wait(f[i], -1, &res) : -1;

		if (i % 50 == 7) {
			bad_right += err == -EOPNOTSUPP && res.device_result == VGPU_COMPUTE_E_OPCODE;
		} else {
			ok += err == 0;
			results_right += all_u32(p + i * 64, 64, i) && res.ring == i % info.num_rings;
		}
		vgpu_fence_destroy(f[i]);
	}
	tap_eq(ok, N - 6, "every good submit succeeded");
	tap_eq(bad_right, 6, "every bad one reported its own E_OPCODE");
	tap_eq(results_right, N - 6, "every fill landed, each result names its ring");
	vgpu_batch_destroy(b);
	vgpu_buffer_destroy(buf);
	munmap(p, 4 * page + size);
}

/* A fence that is not done yet: wait times out, and a later wait still
 * gets the result. */
static void test_timeout_and_rewait(void)
{
	const size_t size = 64ull << 20;
	struct vgpu_buffer *big = NULL, *out = NULL;
	struct vgpu_batch *b = new_batch();
	struct vgpu_submit_result res = { .struct_size = sizeof(res) };
	struct vgpu_fence *f = NULL;
	uint64_t want;
	int err, first, second;

	if (vgpu_buffer_alloc(dev, size, 0, &big) || vgpu_buffer_alloc(dev, 64, 0, &out)) {
		tap_ok(0, "timeout: allocate 64 MiB");
		goto done;
	}
	fill_pattern(vgpu_buffer_data(big), size, 7);
	want = XXH64(vgpu_buffer_data(big), size, 0);
	/* 32 passes over 64 MiB: long enough that a zero wait finds it busy. */
	for (unsigned int i = 0; i < 32; i++)
		vgpu_batch_checksum(b, out, 0, big, 0, size, 0);
	err = vgpu_batch_submit_async(b, NULL, &f);
	tap_eq(err, 0, "submit 32 checksums of 64 MiB");
	first = vgpu_fence_wait(f, 0, &res);
	tap_eq(first, -ETIMEDOUT, "wait(0) right after: -ETIMEDOUT");
	tap_eq(res.device_result, VGPU_RESULT_NOT_EXECUTED,
	       "result after a timeout: VGPU_RESULT_NOT_EXECUTED, not OK");
	second = vgpu_fence_wait(f, 1, NULL);
	tap_eq(second, -ETIMEDOUT, "wait(1 ms): -ETIMEDOUT again");
	tap_eq(vgpu_fence_wait(f, -1, &res), 0, "a later wait gets the result");
	tap_ok(res.device_result == VGPU_COMPUTE_OK && res.ops_done == 32, "32 ops done");
	tap_ok(rd64(vgpu_buffer_data(out)) == want, "checksum right");
	vgpu_fence_destroy(f);
done:
	vgpu_batch_destroy(b);
	vgpu_buffer_destroy(big);
	vgpu_buffer_destroy(out);
}

/* Fences across rings: sync_file in-fences and syncobjs. */
static void test_chains(void)
{
	const size_t size = 16 * page;
	uint8_t *x = map_anon(size), *y = map_anon(size), *z = map_anon(size);
	struct vgpu_buffer *bx = user_buf(x, size, 0), *by = user_buf(y, size, 0);
	struct vgpu_buffer *bz = user_buf(z, size, 0);
	struct vgpu_batch *b = new_batch();
	struct vgpu_fence *fa = NULL, *fb = NULL, *fc = NULL;
	uint32_t so = 0;
	int fd, err;

	memset(x, 0, size);
	memset(y, 0, size);
	memset(z, 0, size);
	/* A: fill x on ring 1. B: copy x -> y on ring 2 after A (sync_file). */
	vgpu_batch_fill(b, bx, 0, size, 0xabababab);
	tap_eq(vgpu_batch_submit_async(b, &(struct vgpu_submit_info){
			.struct_size = sizeof(struct vgpu_submit_info), .ring = 1 }, &fa), 0,
	       "A on ring 1");
	fd = fa ? vgpu_fence_export(fa) : -1;
	tap_ok(fd >= 0, "A exported as a sync_file (fd %d)", fd);
	vgpu_batch_reset(b);
	vgpu_batch_copy(b, by, 0, bx, 0, size);
	err = vgpu_batch_submit_async(b, &(struct vgpu_submit_info){
			.struct_size = sizeof(struct vgpu_submit_info), .ring = 2,
			.flags = VGPU_SUBMIT_IN_FENCE_FD, .in_fence_fd = fd }, &fb);
	tap_eq(err, 0, "B on ring 2 waits for A's sync_file");
	if (fd >= 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		tap_eq(poll(&pfd, 1, 10000), 1, "the exported sync_file signals");
		close(fd);
	}

	/* C: checksum y on ring 3 after B, through an out-syncobj of B... */
	err = drmSyncobjCreate(vgpu_device_fd(dev), 0, &so);
	tap_eq(err, 0, "drmSyncobjCreate");
	vgpu_batch_reset(b);
	vgpu_batch_fill(b, bz, 0, size, 0x01010101);
	tap_eq(vgpu_batch_submit_async(b, &(struct vgpu_submit_info){
			.struct_size = sizeof(struct vgpu_submit_info), .ring = 2,
			.num_out_syncobjs = 1, .out_syncobjs = &so }, &fc), 0,
	       "C on ring 2 signals a syncobj");
	vgpu_fence_destroy(fc);
	vgpu_batch_reset(b);
	vgpu_batch_checksum(b, bz, 0, by, 0, size, 0);
	fc = NULL;
	err = vgpu_batch_submit_async(b, &(struct vgpu_submit_info){
			.struct_size = sizeof(struct vgpu_submit_info), .ring = 3,
			.num_in_syncobjs = 1, .in_syncobjs = &so }, &fc);
	tap_eq(err, 0, "D on ring 3 waits for the syncobj");
	tap_eq(fc ? vgpu_fence_wait(fc, -1, NULL) : -1, 0, "D completes");
	tap_eq(drmSyncobjWait(vgpu_device_fd(dev), &so, 1, INT64_MAX, 0, NULL), 0,
	       "the syncobj is signalled");
	tap_eq(vgpu_fence_wait(fb, -1, NULL), 0, "B completes");
	tap_eq(vgpu_fence_wait(fa, -1, NULL), 0, "A completes");
	tap_ok(all_u32(y, size, 0xabababab), "B copied what A wrote");
	{
		uint8_t *ref = map_anon(size);

		memset(ref, 0xab, size);
		tap_ok(rd64(z) == XXH64(ref, size, 0), "D summed what B wrote, after C's fill");
		munmap(ref, size);
	}
	vgpu_fence_destroy(fa);
	vgpu_fence_destroy(fb);
	vgpu_fence_destroy(fc);
	drmSyncobjDestroy(vgpu_device_fd(dev), so);
	vgpu_batch_destroy(b);
	vgpu_buffer_destroy(bx);
	vgpu_buffer_destroy(by);
	vgpu_buffer_destroy(bz);
	munmap(x, size);
	munmap(y, size);
	munmap(z, size);
}

/* Back-to-back submits over one buffer without waiting in between: the
 * second sees what the first wrote, on the copy path too. */
static void test_same_buffer_order(void)
{
	const size_t size = 4 * page;
	uint8_t *p = map_anon(size);
	struct vgpu_buffer *buf = user_buf(p, size, 0);
	struct vgpu_batch *b = new_batch();
	struct vgpu_fence *f1 = NULL, *f2 = NULL;
	uint8_t *ref = map_anon(size);

	memset(p, 0, size);
	vgpu_batch_fill(b, buf, 0, size / 2, 0x5a5a5a5a);
	vgpu_batch_submit_async(b, NULL, &f1);
	vgpu_batch_reset(b);
	vgpu_batch_copy(b, buf, size / 2, buf, 0, size / 2);
	vgpu_batch_submit_async(b, NULL, &f2);
	tap_ok(f1 && f2, "two submits over one buffer");
	tap_eq(f2 ? vgpu_fence_wait(f2, -1, NULL) : -1, 0, "wait for the second only");
	memset(ref, 0x5a, size);
	tap_ok(memcmp(p, ref, size) == 0, "the second copied what the first wrote");
	vgpu_fence_destroy(f1);
	vgpu_fence_destroy(f2);
	vgpu_batch_destroy(b);
	vgpu_buffer_destroy(buf);
	munmap(p, size);
	munmap(ref, size);
}

/* ---- errors ---- */

static void test_errors(void)
{
	uint8_t *p = map_anon(page);
	struct vgpu_buffer *buf = user_buf(p, page, 0);
	struct vgpu_batch *b = new_batch();
	struct vgpu_submit_result res = { .struct_size = sizeof(res) };
	struct vgpu_fence *f = NULL;
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	uint32_t bogus = 0x7777;

	tap_eq(vgpu_batch_submit(b, &res), -EINVAL, "empty batch = -EINVAL");
	tap_ok(res.device_result == VGPU_RESULT_NOT_EXECUTED &&
	       res.device_result != VGPU_COMPUTE_OK, "its result says not executed");
	tap_ok(strstr(vgpu_error_detail(), "no ops") != NULL, "detail: \"%s\"",
	       vgpu_error_detail());
	tap_eq(vgpu_batch_fill(b, buf, 0, 6, 0), -EINVAL, "fill len 6 = -EINVAL");
	tap_ok(strstr(vgpu_error_detail(), "multiple of 4") != NULL, "detail: \"%s\"",
	       vgpu_error_detail());
	tap_eq(vgpu_batch_fill(b, buf, page - 4, 8, 0), -ERANGE, "fill past the end = -ERANGE");
	tap_ok(strstr(vgpu_error_detail(), "outside") != NULL, "detail: \"%s\"",
	       vgpu_error_detail());
	vgpu_batch_fill(b, buf, 0, page, 1);
	tap_eq(vgpu_batch_submit_async(b, &(struct vgpu_submit_info){
			.struct_size = sizeof(struct vgpu_submit_info), .ring = 16 }, &f), -EINVAL,
	       "ring 16 = -EINVAL");
	tap_ok(strstr(vgpu_error_detail(), "ring 16") != NULL, "detail: \"%s\"",
	       vgpu_error_detail());
	tap_eq(vgpu_batch_submit_async(b, &(struct vgpu_submit_info){
			.struct_size = sizeof(struct vgpu_submit_info), .flags = 0x80 }, &f), -EINVAL,
	       "unknown submit flags = -EINVAL");
	tap_eq(vgpu_batch_submit_async(b, &(struct vgpu_submit_info){ .struct_size = 4 }, &f),
	       -EINVAL, "submit info struct_size too small = -EINVAL");
	tap_eq(vgpu_batch_submit_async(b, &(struct vgpu_submit_info){
			.struct_size = sizeof(struct vgpu_submit_info),
			.flags = VGPU_SUBMIT_IN_FENCE_FD, .in_fence_fd = nullfd }, &f), -EINVAL,
	       "an in-fence that is not a sync_file: the kernel says -EINVAL");
	tap_ok(strstr(vgpu_error_detail(), "execbuffer") != NULL, "detail: \"%s\"",
	       vgpu_error_detail());
	tap_eq(vgpu_batch_submit_async(b, &(struct vgpu_submit_info){
			.struct_size = sizeof(struct vgpu_submit_info),
			.num_in_syncobjs = 1, .in_syncobjs = &bogus }, &f), -ENOENT,
	       "an unknown syncobj: -ENOENT");
	tap_ok(f == NULL, "no fence after the errors");
	tap_eq(vgpu_batch_submit(b, NULL), 0, "the batch still works after refused submits");
	tap_ok(all_u32(p, page, 1), "and its fill landed");
	res.struct_size = 4;
	tap_eq(vgpu_batch_submit(b, &res), 0, "the inline wrapper sets struct_size itself");
	close(nullfd);
	vgpu_batch_destroy(b);
	vgpu_buffer_destroy(buf);
	munmap(p, page);
}

/* ---- any range ---- */

static void test_any_range(void)
{
	const size_t size = 4 * page;
	uint8_t *p = map_anon(size);
	struct vgpu_buffer *buf = NULL, *out = NULL;
	struct vgpu_batch *b = new_batch();
	uint64_t sum;
	int err;

	memset(p, 0xcc, size);
	err = vgpu_buffer_from_user(dev, p + 100, 1000, 0, &buf);
	tap_eq(err, 0, "register [p + 100, +1000): not page-aligned");
	if (err)
		goto done;
	tap_eq(vgpu_buffer_offset(buf), 100, "vgpu_buffer_offset = 100");
	tap_eq(vgpu_buffer_size(buf), 1000, "vgpu_buffer_size = 1000");
	tap_ok(vgpu_buffer_data(buf) == p + 100, "vgpu_buffer_data is the caller's pointer");
	tap_eq(vgpu_batch_fill(b, buf, 0, 1000, 0x01020304), 0, "fill the 1000 bytes");
	tap_eq(vgpu_batch_fill(b, buf, 0, 1004, 0), -ERANGE, "1004 bytes: -ERANGE");
	tap_eq(vgpu_batch_submit(b, NULL), 0, "submit");
	tap_ok(all_u32(p + 100, 1000, 0x01020304), "the range got the fill");
	tap_ok(all_bytes(p, 100, 0xcc) && all_bytes(p + 1100, size - 1100, 0xcc),
	       "the bytes around it did not change");
	err = vgpu_buffer_from_user(dev, p + page + 3, 2 * page, VGPU_BUF_READ_ONLY, &out);
	tap_eq(err, 0, "a read-only range crossing three pages");
	vgpu_batch_reset(b);
	fill_pattern(p + page + 3, 2 * page, 11);
	vgpu_batch_checksum(b, buf, 8, out, 0, 2 * page, 5);
	tap_eq(vgpu_batch_submit(b, NULL), 0, "checksum of it into the first range");
	memcpy(&sum, p + 108, 8);
	tap_ok(le64toh(sum) == XXH64(p + page + 3, 2 * page, 5), "checksum right");
done:
	vgpu_batch_destroy(b);
	vgpu_buffer_destroy(buf);
	vgpu_buffer_destroy(out);
	munmap(p, size);
}

/* ---- registration cache ---- */

static struct vgpu_cache_stats cache_stats(void)
{
	struct vgpu_cache_stats st = { .struct_size = sizeof(st) };

	vgpu_cache_get_stats(dev, &st);
	return st;
}

static void test_cache(void)
{
	const size_t size = 8 * page;
	uint8_t *p = map_anon(size);
	struct vgpu_buffer *b1 = NULL, *b2 = NULL, *b3 = NULL, *b4 = NULL;
	struct vgpu_batch *b = new_batch();
	struct vgpu_cache_stats st0 = cache_stats(), st;
	uint64_t o1 = 0, o2 = 0, o3 = 0;
	int n;

	tap_eq(vgpu_cache_configure(dev, &(struct vgpu_cache_config){
			.struct_size = sizeof(struct vgpu_cache_config), .max_bytes = 64 * 1024 }), 0,
	       "cache budget 64 KiB");
	memset(p, 0, size);
	tap_eq(vgpu_buffer_get(dev, p + 10, 100, 0, &b1, &o1), 0, "get [p + 10, +100)");
	tap_eq(o1, 10, "offset 10 in the entry");
	tap_eq(vgpu_buffer_get(dev, p + 200, 50, 0, &b2, &o2), 0, "get [p + 200, +50)");
	tap_ok(b2 == b1 && o2 == 200, "a hit: the same entry, offset 200");
	tap_eq(vgpu_buffer_get(dev, p + page - 8, 16, 0, &b3, &o3), 0, "get a range across a page");
	tap_ok(b3 != b1 && o3 == page - 8, "a miss: a new two-page entry covering the first");
	st = cache_stats();
	tap_ok(st.hits - st0.hits == 1 && st.misses - st0.misses == 2 && st.entries == 1 &&
	       st.bytes == 2 * page, "stats: 1 hit, 2 misses, 1 entry of 2 pages: the covered "
	       "one is no longer handed out (%" PRIu64 " entries, %" PRIu64 " bytes)",
	       st.entries, st.bytes);
	vgpu_batch_fill(b, b2, o2, 48, 0x0b0b0b0b);
	vgpu_batch_fill(b, b3, o3, 16, 0x0c0c0c0c);
	tap_eq(vgpu_batch_submit(b, NULL), 0, "ops through cached buffers at their offsets");
	tap_ok(all_u32(p + 200, 48, 0x0b0b0b0b) && all_u32(p + page - 8, 16, 0x0c0c0c0c) &&
	       all_bytes(p + 248, page - 8 - 248, 0), "they landed where the caller's pointers say");
	vgpu_buffer_put(b1);
	vgpu_buffer_put(b2);
	vgpu_buffer_put(b3);
	vgpu_buffer_put(b1); /* one too many: ignored */
	tap_eq(cache_stats().entries, 1, "the covered entry went with its last put; the cover "
	       "stays within the budget (an extra put changes nothing)");
	tap_eq(vgpu_buffer_get(dev, p + 20, 8, VGPU_BUF_READ_ONLY, &b4, &o1), 0,
	       "get with other flags");
	tap_ok(b4 != b1, "other flags: another entry");
	vgpu_buffer_put(b4);
	tap_eq(vgpu_buffer_get(dev, p + 300, 8, 0, &b1, &o1), 0, "get again after put");
	tap_eq(cache_stats().hits - st0.hits, 2, "a hit on the unused entry");
	vgpu_buffer_put(b1);
	/* Budget: one page kept; the oldest unused entries go first. */
	vgpu_cache_configure(dev, &(struct vgpu_cache_config){
			.struct_size = sizeof(struct vgpu_cache_config), .max_bytes = page });
	st = cache_stats();
	tap_ok(st.bytes <= page && st.evictions - st0.evictions >= 2,
	       "a 1-page budget evicts down to it (%" PRIu64 " bytes, %" PRIu64 " evictions)",
	       st.bytes, st.evictions - st0.evictions);
	/* Invalidation, of an unused and of a used entry. */
	vgpu_cache_configure(dev, &(struct vgpu_cache_config){
			.struct_size = sizeof(struct vgpu_cache_config), .max_bytes = 1 << 20 });
	vgpu_buffer_get(dev, p + 4 * page, 10, 0, &b1, &o1);
	vgpu_buffer_get(dev, p + 6 * page, 10, 0, &b2, &o2);
	vgpu_buffer_put(b2);
	n = vgpu_invalidate(dev, p + 4 * page, 4 * page);
	tap_eq(n, 2, "vgpu_invalidate of the upper half: 2 entries");
	tap_eq(vgpu_buffer_get(dev, p + 4 * page + 5, 4, 0, &b3, &o3), 0, "get in it again");
	tap_ok(b3 != b1 && o3 == 5, "a miss: the invalidated entry is not handed out");
	vgpu_batch_reset(b);
	vgpu_batch_fill(b, b1, o1, 8, 0x0d0d0d0d);
	tap_eq(vgpu_batch_submit(b, NULL), 0, "the invalidated entry still works for its user");
	vgpu_buffer_put(b1);
	vgpu_buffer_put(b3);
	n = vgpu_invalidate(dev, p, size);
	tap_ok(n >= 1 && cache_stats().entries == 0, "invalidate everything: %d entries, none left", n);
	tap_eq(vgpu_invalidate(dev, p, 0), -EINVAL, "vgpu_invalidate(len 0) = -EINVAL");
	vgpu_batch_destroy(b);
	munmap(p, size);
}

/* ---- threads ---- */

struct worker {
	pthread_t th;
	unsigned int id;
	struct vgpu_buffer *shared_src; /* read by every thread */
	unsigned int good, bad;
	struct vgpu_buffer *cached[1];
	unsigned int ncached;
};

static uint8_t *cache_area;
static size_t cache_size;

static uint8_t *shared_mem;
static size_t shared_size;

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct vgpu_batch *b = NULL;
	const size_t size = 2 * page;

	if (vgpu_batch_create(dev, &b)) {
		w->bad++;
		return NULL;
	}
	for (unsigned int i = 0; i < iters; i++) {
		/* Each iteration makes and drops its own buffer, fills it on
		 * the thread's ring, checksums the shared one into it. */
		uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		struct vgpu_buffer *buf = NULL;
		struct vgpu_fence *f = NULL;
		uint32_t v = w->id << 16 | i;
		bool ok;

		if (p == MAP_FAILED || vgpu_buffer_from_user(dev, p, size, 0, &buf)) {
			w->bad++;
			continue;
		}
		vgpu_batch_reset(b);
		vgpu_batch_fill(b, buf, 0, size, v);
		vgpu_batch_checksum(b, buf, 0, w->shared_src, 0, shared_size, i);
		{
			/* The shared area again, through the cache: every thread
			 * gets, uses and puts overlapping entries, and now and
			 * then invalidates them all. */
			struct vgpu_buffer *cb = NULL;
			uint64_t off = 0;
			size_t at = (size_t)(w->id * 64 + i % 32) * 8;

			if (vgpu_buffer_get(dev, cache_area + at, 8, 0, &cb, &off) == 0) {
				vgpu_batch_fill(b, cb, off, 8, v);
				if (i % 16 == 5)
					vgpu_invalidate(dev, cache_area, cache_size);
			} else {
				w->bad++;
			}
			w->cached[w->ncached++] = cb;
		}
		if (i % 2) {
			ok = vgpu_batch_submit(b, NULL) == 0;
		} else {
			ok = vgpu_batch_submit_async(b, &(struct vgpu_submit_info){
					.struct_size = sizeof(struct vgpu_submit_info),
					.ring = w->id % info.num_rings }, &f) == 0 &&
			     vgpu_fence_wait(f, -1, NULL) == 0;
			vgpu_fence_destroy(f);
		}
		ok = ok && rd64(p) == XXH64(shared_mem, shared_size, i) &&
		     all_u32(p + 8, size - 8, v) &&
		     all_u32(cache_area + (size_t)(w->id * 64 + i % 32) * 8, 8, v);
		while (w->ncached)
			vgpu_buffer_put(w->cached[--w->ncached]);
		if (ok)
			w->good++;
		else
			w->bad++;
		vgpu_buffer_destroy(buf);
		munmap(p, size);
	}
	vgpu_batch_destroy(b);
	return NULL;
}

static void test_threads(void)
{
	struct worker *ws = calloc(nthreads, sizeof(*ws));
	struct vgpu_buffer *src;
	unsigned int good = 0, bad = 0;

	shared_size = 16 * page;
	shared_mem = map_anon(shared_size);
	fill_pattern(shared_mem, shared_size, 3);
	cache_size = 16 * page;
	cache_area = map_anon(cache_size);
	vgpu_cache_configure(dev, &(struct vgpu_cache_config){
			.struct_size = sizeof(struct vgpu_cache_config), .max_bytes = 8 * page });
	src = user_buf(shared_mem, shared_size, VGPU_BUF_READ_ONLY);
	for (unsigned int t = 0; t < nthreads; t++) {
		ws[t].id = t;
		ws[t].shared_src = src;
		pthread_create(&ws[t].th, NULL, worker_main, &ws[t]);
	}
	for (unsigned int t = 0; t < nthreads; t++) {
		pthread_join(ws[t].th, NULL);
		good += ws[t].good;
		bad += ws[t].bad;
	}
	tap_eq(good, nthreads * iters, "%u threads x %u iterations (own buffers, one shared "
	       "buffer, cached buffers, sync and async, one ring each): all right", nthreads, iters);
	tap_eq(bad, 0, "no failures");
	{
		struct vgpu_cache_stats st = cache_stats();

		tap_ok(st.hits > 0 && st.invalidated > 0, "the threads shared cache entries (%"
		       PRIu64 " hits, %" PRIu64 " misses, %" PRIu64 " invalidated)", st.hits,
		       st.misses, st.invalidated);
	}
	vgpu_invalidate(dev, cache_area, cache_size);
	tap_eq(cache_stats().entries, 0, "no entry left after the last invalidate");
	vgpu_buffer_destroy(src);
	munmap(shared_mem, shared_size);
	munmap(cache_area, cache_size);
	free(ws);
}

/* ---- fork ---- */

static void test_fork(void)
{
	const size_t size = 2 * page;
	uint8_t *p = map_anon(size);
	struct vgpu_buffer *buf = user_buf(p, size, 0);
	struct vgpu_batch *b = new_batch();
	int status = 0;
	pid_t pid;

	vgpu_batch_fill(b, buf, 0, size, 0x10101010);
	pid = fork();
	if (pid == 0) {
		/* Child: every call fails clearly; close frees only the
		 * child's memory. Exit status: bit per failed check. */
		struct vgpu_buffer *nb = NULL;
		struct vgpu_fence *f = NULL;
		int rc = 0;

		if (vgpu_batch_submit(b, NULL) != -ECHILD)
			rc |= 1;
		if (vgpu_batch_submit_async(b, NULL, &f) != -ECHILD)
			rc |= 2;
		if (vgpu_buffer_from_user(dev, p, size, 0, &nb) != -ECHILD)
			rc |= 4;
		if (!strstr(vgpu_error_detail(), "fork"))
			rc |= 8;
		vgpu_batch_destroy(b);
		vgpu_buffer_destroy(buf);
		vgpu_close(dev);
		_exit(rc);
	}
	tap_ok(pid > 0, "fork");
	if (pid > 0)
		waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status), "the child exited");
	tap_eq(WEXITSTATUS(status), 0, "in the child: submits and registration fail with -ECHILD "
	       "and the detail mentions fork (bits: 1 sync, 2 async, 4 register, 8 detail)");
	tap_eq(vgpu_batch_submit(b, NULL), 0, "the parent's objects still work after the "
	       "child closed the device");
	tap_ok(all_u32(p, size, 0x10101010), "and compute right");
	vgpu_batch_destroy(b);
	vgpu_buffer_destroy(buf);
	munmap(p, size);
}

int main(int argc, char **argv)
{
	int err;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--threads"))
			nthreads = (unsigned int)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--iters"))
			iters = (unsigned int)atoi(argv[i + 1]);
	}
	page = (size_t)sysconf(_SC_PAGESIZE);
	err = vgpu_open(NULL, 0, &dev);
	if (err) {
		printf("Bail out! vgpu_open: %s\n", vgpu_strerror(err));
		return 1;
	}
	vgpu_get_info(dev, &info);
	zero_copy = info.userptr;
	tap_diag("mode: %s", zero_copy ? "userptr (zero-copy)" : "copy path");
	test_version();
	test_async_basic();
	test_many_in_flight();
	test_timeout_and_rewait();
	test_chains();
	test_same_buffer_order();
	test_errors();
	test_any_range();
	test_cache();
	test_threads();
	test_fork();
	vgpu_close(dev);
	return tap_done();
}
