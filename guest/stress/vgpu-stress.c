/* SPDX-License-Identifier: MIT */
/*
 * vgpu-stress - hostile userspace against the userptr driver, inside the
 * guest. Prints TAP.
 *
 *   vgpu-stress [--seed N] [--seconds S] [--threads N] [--only PART,...]
 *
 * PART: churn, inflight, semantics, fork, exit, memlock, close (default all).
 *
 * 1. churn: N threads create and destroy userptr blobs of random sizes and
 *    flags with raw ioctls (valid and invalid requests, shared and private
 *    fds) over one arena, while a vandal thread munmaps, remaps, mprotects
 *    and MADV_DONTNEEDs random ranges of that arena. Every request must get
 *    an errno it may get (0 or EFAULT for a valid request, EINVAL for an
 *    invalid one, EOPNOTSUPP for any userptr request without the feature),
 *    and every close must succeed.
 * 2. submits in flight while the registered memory is unmapped, replaced
 *    and protected: every device result stays right.
 * 3. the defined semantics of a pinned range after munmap, MADV_DONTNEED,
 *    mprotect, mremap, and after fork (the parent keeps the pinned pages;
 *    the child gets copies; the child may use the parent's handles through
 *    the inherited fd, and the device then works on the parent's pages).
 * 4. process exit (normal and SIGKILL) with live objects, an object created
 *    by a child on the parent's fd outliving the child, file close with
 *    objects attached to the context.
 * 5. RLIMIT_MEMLOCK at its edge without CAP_IPC_LOCK.
 * 6. afterwards: debugfs total_pinned_pages and objects back to their start
 *    values, VmPin back to its start value.
 *
 * Against a device without VIRTIO_GPU_F_BLOB_RDONLY (daemon --no-userptr)
 * everything runs as well; read-only requests must fail with EOPNOTSUPP
 * there (after the argument rules), and the parts use read-write buffers
 * where they would use read-only ones. Without userptr at all (the param 0:
 * DMA that would bounce) only the churn (every userptr request must fail
 * with EOPNOTSUPP or EINVAL), the file close and the final accounting run.
 */
#include <endian.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <xxhash.h>

#include "stress-common.h"
#include "tap.h"
#include "vgpu.h"

/* Result of a bounded wait, taken before the message that prints its values. */
static bool waited;

static struct vgpu_device *dev;
static struct vgpu_info info;
static bool userptr;
/* Read-only userptr blobs work too: the device promises not to write them
 * (VIRTIO_GPU_F_BLOB_RDONLY); without it they fail with EOPNOTSUPP. */
static bool rdonly;
/* VIRTGPU_BLOB_FLAG_USERPTR_RDONLY where it works, 0 elsewhere. */
static uint32_t ro_flag;
static size_t page;
static uint64_t seed = 1;
static double churn_seconds = 8;
static unsigned int nthreads = 4;
static const char *only; /* --only: comma-separated parts to run */
static long base_pages, base_objs; /* debugfs at the start */

static bool part(const char *name)
{
	size_t n = strlen(name);

	for (const char *s = only; s && *s;) {
		const char *e = strchr(s, ',');
		size_t len = e ? (size_t)(e - s) : strlen(s);

		if (len == n && strncmp(s, name, n) == 0)
			return true;
		s = e ? e + 1 : s + len;
	}
	return !only;
}

/*
 * Each part starts from a settled state: the releases of the previous part
 * (asynchronous, after the device's answer) are complete. Says how long
 * that took when it was not immediate.
 */
static void settle(const char *partname, long pages0, long objs0)
{
	long pages, objs;
	double t0 = now_s();
	bool ok = debugfs_wait(pages0, objs0, 20000, &pages, &objs);

	if (!ok || now_s() - t0 > 0.5)
		tap_diag("%s: releases of the previous part took %.2f s (%s: %ld pages, %ld objects)",
			 partname, now_s() - t0, ok ? "done" : "NOT DONE", pages, objs);
}

static void *map_rw(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED) {
		printf("Bail out! mmap %zu: %s\n", size, strerror(errno));
		exit(1);
	}
	return p;
}

static int open_node(void)
{
	int fd = open(info.path, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		printf("Bail out! open %s: %s\n", info.path, strerror(errno));
		exit(1);
	}
	return fd;
}

/* Does the kernel take a read-only userptr blob (the device's promise)? */
static bool probe_rdonly(void)
{
	long pin0 = vm_pin_kb(0);
	void *p = map_rw(page);
	uint32_t h = 0;
	int fd = open_node();
	int err = raw_userptr_create(fd, (uintptr_t)p, page,
				     VIRTGPU_BLOB_FLAG_USE_USERPTR | VIRTGPU_BLOB_FLAG_USERPTR_RDONLY,
				     VIRTGPU_BLOB_MEM_GUEST, &h, NULL);

	long pin;

	if (!err)
		raw_gem_close(fd, h);
	close(fd);
	/* Released once the device answered: gone before the counts start. */
	if (!err && !vm_pin_wait(pin0, 5000, &pin))
		tap_diag("the read-only probe's page is still pinned (VmPin %ld kB)", pin);
	munmap(p, page);
	return err == 0;
}

/* ======================================================================
 * 1. churn
 * ====================================================================== */

enum { ARENA_PAGES = 2048, MAX_LIVE = 32, MAX_REQ_PAGES = 64 };

static uint8_t *arena;
static atomic_int churn_stop;

struct churn {
	pthread_t t;
	unsigned int id;
	int fd;
	uint64_t rs;
	uint32_t live[MAX_LIVE];
	unsigned int nlive;
	/* outcomes */
	unsigned long valid, created, efault, invalid, invalid_ok, closed, bad_close;
	unsigned long bad;      /* a valid request with an errno it may not get */
	int bad_err;            /* the last such errno */
	unsigned long max_live;
};

struct vandal {
	pthread_t t;
	uint64_t rs;
	unsigned long remaps, remap_lost, protnone, protread, dontneed;
};

static void churn_close_one(struct churn *c, unsigned int i)
{
	if (raw_gem_close(c->fd, c->live[i]))
		c->bad_close++;
	else
		c->closed++;
	c->live[i] = c->live[--c->nlive];
}

/* One request, valid or deliberately invalid; counts the outcome. */
static void churn_request(struct churn *c)
{
	uint64_t npages = 1 + rnd_below(&c->rs, rnd_below(&c->rs, 8) ? 16 : MAX_REQ_PAGES);
	uint64_t first = rnd_below(&c->rs, ARENA_PAGES - npages + 1);
	uint64_t ptr = (uint64_t)(uintptr_t)(arena + first * page);
	uint64_t size = npages * page;
	uint32_t flags = VIRTGPU_BLOB_FLAG_USE_USERPTR;
	uint32_t mem = rnd_below(&c->rs, 4) ? VIRTGPU_BLOB_MEM_GUEST : VIRTGPU_BLOB_MEM_HOST3D_GUEST;
	uint32_t handle = 0;
	int want_invalid = 0, err;

	if (rnd_below(&c->rs, 3) == 0)
		flags |= VIRTGPU_BLOB_FLAG_USERPTR_RDONLY;
	if (rnd_below(&c->rs, 10) == 0) {
		want_invalid = 1;
		switch (rnd_below(&c->rs, 7)) {
		case 0: flags |= VIRTGPU_BLOB_FLAG_USE_MAPPABLE; break;
		case 1: flags |= VIRTGPU_BLOB_FLAG_USE_SHAREABLE; break;
		case 2: ptr += 1 + rnd_below(&c->rs, page - 1); break;
		case 3: size = 0; break;
		case 4: size -= 1 + rnd_below(&c->rs, page - 1); break;
		case 5: mem = VIRTGPU_BLOB_MEM_HOST3D; break;
		default: flags = VIRTGPU_BLOB_FLAG_USERPTR_RDONLY; want_invalid = 2; break;
		}
	} else if (rnd_below(&c->rs, 50) == 0) {
		/* beyond the user address space / wrapping */
		ptr = rnd_below(&c->rs, 2) ? UINT64_MAX - page + 1 : (1ull << 47) - page;
		want_invalid = 3;
	}

	err = raw_userptr_create(c->fd, ptr, size, flags, mem, &handle, NULL);
	if (!want_invalid) {
		c->valid++;
		bool refused_ro = (flags & VIRTGPU_BLOB_FLAG_USERPTR_RDONLY) && !rdonly;

		if (err == 0) {
			c->created++;
		} else if (userptr && !refused_ro ? err == -EFAULT : err == -EOPNOTSUPP) {
			c->efault++;
		} else {
			c->bad++;
			c->bad_err = err;
		}
	} else {
		int want;

		c->invalid++;
		if (want_invalid == 2)
			want = -EINVAL; /* RDONLY without USE_USERPTR: always EINVAL */
		else if (!userptr)
			want = -EOPNOTSUPP;
		else if (want_invalid == 3)
			want = -EFAULT;
		else
			want = -EINVAL;
		if (err == want) {
			c->invalid_ok++;
		} else {
			c->bad++;
			c->bad_err = err;
		}
	}
	if (err == 0) {
		if (c->nlive == MAX_LIVE)
			churn_close_one(c, (unsigned int)rnd_below(&c->rs, MAX_LIVE));
		c->live[c->nlive++] = handle;
		if (c->nlive > c->max_live)
			c->max_live = c->nlive;
	}
}

static void *churn_thread(void *arg)
{
	struct churn *c = arg;

	while (!atomic_load(&churn_stop)) {
		uint64_t r = rnd_below(&c->rs, 10);

		if (r < 7)
			churn_request(c);
		else if (r < 9 && c->nlive)
			churn_close_one(c, (unsigned int)rnd_below(&c->rs, c->nlive));
		else if (raw_gem_close(c->fd, 0x7fff0000u + (uint32_t)rnd_below(&c->rs, 1000)) !=
			 -EINVAL)
			c->bad_close++; /* closing a handle that does not exist */
	}
	while (c->nlive)
		churn_close_one(c, c->nlive - 1);
	return NULL;
}

static void *vandal_thread(void *arg)
{
	struct vandal *v = arg;

	while (!atomic_load(&churn_stop)) {
		uint64_t n = 1 + rnd_below(&v->rs, 32);
		uint64_t first = rnd_below(&v->rs, ARENA_PAGES - n + 1);
		uint8_t *p = arena + first * page;
		size_t len = n * page;

		switch (rnd_below(&v->rs, 4)) {
		case 0:
			/* A new mapping over the range: the pins keep the old pages. */
			munmap(p, len);
			usleep(50);
			if (mmap(p, len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_POPULATE, -1,
				 0) == MAP_FAILED)
				v->remap_lost++; /* something else took the hole: leave it */
			v->remaps++;
			break;
		case 1:
			mprotect(p, len, PROT_NONE);
			usleep(100);
			mprotect(p, len, PROT_READ | PROT_WRITE);
			v->protnone++;
			break;
		case 2:
			mprotect(p, len, PROT_READ);
			usleep(100);
			mprotect(p, len, PROT_READ | PROT_WRITE);
			v->protread++;
			break;
		default:
			madvise(p, len, MADV_DONTNEED);
			v->dontneed++;
			break;
		}
		usleep(200);
	}
	return NULL;
}

static void test_churn(long pages0, long objs0, long pin0)
{
	struct churn *c = calloc(nthreads, sizeof(*c));
	struct vandal v = { .rs = rnd_seed(seed, 1000) };
	unsigned long valid = 0, created = 0, efault = 0, invalid = 0, invalid_ok = 0, closed = 0;
	unsigned long bad = 0, bad_close = 0, max_live = 0;
	int shared_fd, fds_opened = 0;
	long pages, objs, pin;
	double t0;

	if (!c) {
		printf("Bail out! calloc\n");
		exit(1);
	}
	arena = map_rw(ARENA_PAGES * page);
	shared_fd = open_node();
	atomic_store(&churn_stop, 0);
	for (unsigned int i = 0; i < nthreads; i++) {
		c[i].id = i;
		c[i].rs = rnd_seed(seed, i);
		/* threads 0 and 1 share one fd (one handle table); the others have their own */
		c[i].fd = i < 2 ? shared_fd : open_node();
		fds_opened += i >= 2;
	}
	t0 = now_s();
	for (unsigned int i = 0; i < nthreads; i++)
		pthread_create(&c[i].t, NULL, churn_thread, &c[i]);
	if (userptr)
		pthread_create(&v.t, NULL, vandal_thread, &v);
	while (now_s() - t0 < churn_seconds)
		usleep(100000);
	/* While the threads still hold objects: the accounting shows them. */
	debugfs_read(&pages, &objs);
	tap_diag("churn: at the end, debugfs %ld pages in %ld objects, VmPin %ld kB", pages, objs,
		 vm_pin_kb(0));
	atomic_store(&churn_stop, 1);
	for (unsigned int i = 0; i < nthreads; i++)
		pthread_join(c[i].t, NULL);
	if (userptr)
		pthread_join(v.t, NULL);
	for (unsigned int i = 0; i < nthreads; i++) {
		valid += c[i].valid;
		created += c[i].created;
		efault += c[i].efault;
		invalid += c[i].invalid;
		invalid_ok += c[i].invalid_ok;
		closed += c[i].closed;
		bad += c[i].bad;
		bad_close += c[i].bad_close;
		if (c[i].max_live > max_live)
			max_live = c[i].max_live;
		if (c[i].bad)
			tap_diag("churn thread %u: %lu unexpected results, last %d (%s)", i, c[i].bad,
				 c[i].bad_err, strerror(-c[i].bad_err));
		if (c[i].fd != shared_fd)
			close(c[i].fd);
	}
	close(shared_fd);
	tap_diag("churn: %u threads, %.1f s, seed %" PRIu64 ": %lu valid requests (%lu created, "
		 "%lu %s), %lu invalid, %lu closes, up to %lu live per thread",
		 nthreads, now_s() - t0, seed, valid, created, efault,
		 userptr ? "EFAULT" : "EOPNOTSUPP", invalid, closed, max_live);
	if (userptr)
		tap_diag("churn: vandal: %lu munmap+mmap (%lu holes taken by others), %lu PROT_NONE, "
			 "%lu PROT_READ, %lu MADV_DONTNEED", v.remaps, v.remap_lost, v.protnone,
			 v.protread, v.dontneed);
	tap_eq((long long)bad, 0, "churn: every request got an allowed errno (%lu requests)",
	       valid + invalid);
	tap_eq((long long)invalid_ok, (long long)invalid,
	       "churn: every invalid request refused with its errno (%lu)", invalid);
	tap_eq((long long)bad_close, 0, "churn: every close of a live handle succeeded, every "
	       "close of an unknown handle got EINVAL");
	if (userptr)
		tap_ok(created > 100 && efault > 0,
		       "churn: both outcomes happened under the vandal (%lu created, %lu EFAULT)",
		       created, efault);
	else
		tap_eq((long long)created, 0, "churn: no userptr object without the feature");
	waited = debugfs_wait(pages0, objs0, 10000, &pages, &objs);
	tap_ok(waited,
	       "churn: debugfs back to %ld pages / %ld objects (now %ld / %ld)", pages0, objs0,
	       pages, objs);
	waited = vm_pin_wait(pin0, 5000, &pin);
	tap_ok(waited, "churn: VmPin back to %ld kB (now %ld kB)", pin0, pin);
	munmap(arena, ARENA_PAGES * page);
	free(c);
}

/* ======================================================================
 * helpers for tests through libvgpu
 * ====================================================================== */

static struct vgpu_buffer *result_buf; /* a mappable blob: shared with fork children */

static int dev_fill(struct vgpu_device *d, struct vgpu_buffer *b, uint8_t v)
{
	struct vgpu_batch *bt = NULL;
	int err = vgpu_batch_create(d, &bt);

	if (!err)
		err = vgpu_batch_fill(bt, b, 0, vgpu_buffer_size(b), 0x01010101u * v);
	if (!err)
		err = vgpu_batch_submit(bt, NULL);
	vgpu_batch_destroy(bt);
	return err;
}

/* XXH64 (seed 0) of the buffer as the device reads it; 0 and *err on failure. */
static uint64_t dev_checksum(struct vgpu_device *d, struct vgpu_buffer *b, int *errp)
{
	struct vgpu_batch *bt = NULL;
	int err = vgpu_batch_create(d, &bt);
	uint8_t *res = vgpu_buffer_data(result_buf);

	memset(res, 0, 8);
	if (!err)
		err = vgpu_batch_checksum(bt, result_buf, 0, b, 0, vgpu_buffer_size(b), 0);
	if (!err)
		err = vgpu_batch_submit(bt, NULL);
	vgpu_batch_destroy(bt);
	if (errp)
		*errp = err;
	return err ? 0 : rd64(res);
}

static uint64_t xxh_of_byte(uint8_t v, size_t n)
{
	uint8_t *tmp = malloc(n);
	uint64_t h;

	if (!tmp)
		return 0;
	memset(tmp, v, n);
	h = XXH64(tmp, n, 0);
	free(tmp);
	return h;
}

/* ======================================================================
 * 2. submits in flight while the memory changes under them
 * ====================================================================== */

struct inflight {
	uint8_t *mem;
	size_t size;
	atomic_int stop;
	unsigned long changes;
};

static void *inflight_vandal(void *arg)
{
	struct inflight *f = arg;
	uint64_t rs = rnd_seed(seed, 2000);
	size_t npages = f->size / page;

	while (!atomic_load(&f->stop)) {
		uint64_t n = 1 + rnd_below(&rs, 64);
		uint64_t first = rnd_below(&rs, npages - n + 1);
		uint8_t *p = f->mem + first * page;
		size_t len = n * page;

		switch (rnd_below(&rs, 3)) {
		case 0:
			munmap(p, len);
			mmap(p, len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			break;
		case 1:
			mprotect(p, len, PROT_NONE);
			usleep(200);
			mprotect(p, len, PROT_READ | PROT_WRITE);
			break;
		default:
			madvise(p, len, MADV_DONTNEED);
			break;
		}
		f->changes++;
		usleep(300);
	}
	return NULL;
}

static void test_inflight(void)
{
	struct inflight f = { .size = 4u << 20 };
	struct vgpu_buffer *b = NULL;
	pthread_t t;
	unsigned int rounds = 60, right = 0, errors = 0;
	int err;

	f.mem = map_rw(f.size);
	err = vgpu_buffer_from_user(dev, f.mem, f.size, 0, &b);
	if (!tap_eq(err, 0, "in flight: register 4 MiB"))
		return;
	atomic_store(&f.stop, 0);
	pthread_create(&t, NULL, inflight_vandal, &f);
	for (unsigned int i = 0; i < rounds; i++) {
		uint8_t v = (uint8_t)(0x40 + i);
		uint64_t sum;

		err = dev_fill(dev, b, v);
		sum = err ? 0 : dev_checksum(dev, b, &err);
		if (err)
			errors++;
		else if (sum == xxh_of_byte(v, f.size))
			right++;
	}
	atomic_store(&f.stop, 1);
	pthread_join(t, NULL);
	tap_diag("in flight: %u fill+checksum rounds over 4 MiB during %lu munmap/mprotect/"
		 "MADV_DONTNEED of the range", rounds, f.changes);
	tap_eq(errors, 0, "in flight: every submit succeeded while the range changed");
	tap_eq(right, rounds, "in flight: the device always read back what it wrote (the pinned "
	       "pages)");
	vgpu_buffer_destroy(b);
	munmap(f.mem, f.size);
}

/* ======================================================================
 * 3. semantics of a pinned range when the mapping changes
 * ====================================================================== */

static void test_semantics(void)
{
	const size_t n = 16 * page;
	struct vgpu_buffer *b = NULL;
	uint8_t *p, *q;
	long pages, objs, pages_before, objs_before;
	int err;

	/* munmap: the pin keeps the pages, the device keeps using them. */
	p = map_rw(n);
	memset(p, 0x11, n);
	debugfs_read(&pages_before, &objs_before);
	if (!tap_eq(vgpu_buffer_from_user(dev, p, n, 0, &b), 0, "munmap: register 16 pages"))
		return;
	tap_eq(munmap(p, n), 0, "munmap: the registered range can be unmapped");
	debugfs_read(&pages, &objs);
	tap_eq(pages - pages_before, 16, "munmap: the 16 pages stay pinned after munmap");
	tap_eq(dev_fill(dev, b, 0x22), 0, "munmap: the device still writes the resource");
	tap_ok(dev_checksum(dev, b, &err) == xxh_of_byte(0x22, n) && !err,
	       "munmap: the device reads back its own writes (the old pages)");
	q = mmap(p, n, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_POPULATE, -1, 0);
	if (q == p) {
		tap_ok(all_bytes(q, n, 0), "munmap: a new mapping at the address is fresh zeroed "
		       "memory, not the device's data");
		tap_eq(dev_fill(dev, b, 0x23), 0, "munmap: fill again");
		tap_ok(all_bytes(q, n, 0), "munmap: the device's writes never reach the new mapping");
		munmap(q, n);
	} else {
		tap_ok(0, "munmap: remap at %p (got %p)", (void *)p, (void *)q);
	}
	vgpu_buffer_destroy(b);
	waited = debugfs_wait(pages_before, objs_before, 5000, &pages, &objs);
	tap_ok(waited,
	       "munmap: destroy unpins the old pages (%ld pages)", pages);

	/* MADV_DONTNEED: the process gets new zero pages, the device keeps the old ones. */
	p = map_rw(n);
	memset(p, 0x33, n);
	tap_eq(vgpu_buffer_from_user(dev, p, n, 0, &b), 0, "dontneed: register");
	tap_eq(madvise(p, n, MADV_DONTNEED), 0, "dontneed: MADV_DONTNEED the registered range");
	tap_ok(all_bytes(p, n, 0), "dontneed: the process reads zero-filled new pages");
	memset(p, 0x44, n);
	tap_ok(dev_checksum(dev, b, &err) == xxh_of_byte(0x33, n) && !err,
	       "dontneed: the device still sees the old contents, not the process's new writes");
	tap_eq(dev_fill(dev, b, 0x55), 0, "dontneed: fill");
	tap_ok(all_bytes(p, n, 0x44), "dontneed: the device's writes do not reach the process");
	vgpu_buffer_destroy(b);
	munmap(p, n);

	/* mprotect: the pages stay the same; protection only concerns the CPU. */
	p = map_rw(n);
	memset(p, 0x66, n);
	tap_eq(vgpu_buffer_from_user(dev, p, n, 0, &b), 0, "mprotect: register");
	tap_eq(mprotect(p, n, PROT_NONE), 0, "mprotect: PROT_NONE on the registered range");
	tap_eq(dev_fill(dev, b, 0x77), 0, "mprotect: the device writes a PROT_NONE range");
	tap_eq(mprotect(p, n, PROT_READ), 0, "mprotect: PROT_READ");
	tap_ok(all_bytes(p, n, 0x77), "mprotect: the process sees the device's writes afterwards");
	vgpu_buffer_destroy(b);
	munmap(p, n);

	/* mremap: the page table entries move with the pages: still coherent. */
	p = map_rw(n);
	memset(p, 0x12, n);
	tap_eq(vgpu_buffer_from_user(dev, p, n, 0, &b), 0, "mremap: register");
	q = mremap(p, n, 2 * n, MREMAP_MAYMOVE);
	if (tap_ok(q != MAP_FAILED, "mremap: grow (may move) the registered range")) {
		tap_eq(dev_fill(dev, b, 0x34), 0, "mremap: fill");
		tap_ok(all_bytes(q, n, 0x34), "mremap: the moved mapping sees the device's writes "
		       "(same pages)");
		memset(q, 0x56, n);
		tap_ok(dev_checksum(dev, b, &err) == xxh_of_byte(0x56, n) && !err,
		       "mremap: the device sees the process's writes through the moved mapping");
		munmap(q, 2 * n);
	}
	vgpu_buffer_destroy(b);

	/* Read-only registration: CPU writes afterwards are seen by the device. */
	p = map_rw(n);
	memset(p, 0x21, n);
	tap_eq(vgpu_buffer_from_user(dev, p, n, VGPU_BUF_READ_ONLY, &b), 0, "rdonly: register");
	memset(p, 0x43, n);
	tap_ok(dev_checksum(dev, b, &err) == xxh_of_byte(0x43, n) && !err,
	       "rdonly: the device sees CPU writes made after registration");
	vgpu_buffer_destroy(b);
	munmap(p, n);
}

/* ======================================================================
 * 3b. fork
 * ====================================================================== */

static int wait_child(pid_t pid)
{
	int status = 0;

	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*
 * In a fork child the library refuses the parent's objects (-ECHILD): the
 * child reaches the parent's handles with raw ioctls on the inherited fd,
 * which is what these tests are about (the kernel's view of fork). One op,
 * no status record; the data tells the result.
 */
static int child_op(uint32_t opcode, struct vgpu_buffer *dst, struct vgpu_buffer *src,
		    uint64_t len, uint64_t arg0)
{
	struct {
		struct vgpu_compute_submit h;
		struct vgpu_compute_op op;
	} cmd;
	uint32_t handles[2] = { vgpu_buffer_handle(dst), src ? vgpu_buffer_handle(src) : 0 };
	struct drm_virtgpu_execbuffer eb;
	struct pollfd pfd;
	int r;

	memset(&cmd, 0, sizeof(cmd));
	cmd.h.magic = htole32(VGPU_COMPUTE_MAGIC);
	cmd.h.num_ops = htole32(1);
	cmd.op.opcode = htole32(opcode);
	cmd.op.dst_res = htole32(vgpu_buffer_res_id(dst));
	cmd.op.src_res = htole32(src ? vgpu_buffer_res_id(src) : 0);
	cmd.op.len = htole64(len);
	cmd.op.arg0 = htole64(arg0);
	memset(&eb, 0, sizeof(eb));
	eb.flags = VIRTGPU_EXECBUF_FENCE_FD_OUT;
	eb.size = sizeof(cmd);
	eb.command = (uintptr_t)&cmd;
	eb.bo_handles = (uintptr_t)handles;
	eb.num_bo_handles = src ? 2 : 1;
	eb.fence_fd = -1;
	if (drmIoctl(vgpu_device_fd(dev), DRM_IOCTL_VIRTGPU_EXECBUFFER, &eb))
		return -errno;
	pfd.fd = eb.fence_fd;
	pfd.events = POLLIN;
	r = poll(&pfd, 1, 10000);
	close(eb.fence_fd);
	return r == 1 ? 0 : -ETIMEDOUT;
}

static int child_fill(struct vgpu_buffer *b, uint8_t v)
{
	return child_op(VGPU_OP_FILL, b, NULL, vgpu_buffer_size(b), 0x01010101u * v);
}

static uint64_t child_checksum(struct vgpu_buffer *b, int *errp)
{
	uint8_t *res = vgpu_buffer_data(result_buf);

	memset(res, 0, 8);
	*errp = child_op(VGPU_OP_CHECKSUM, result_buf, b, vgpu_buffer_size(b), 0);
	return *errp ? 0 : rd64(res);
}

static void test_fork(void)
{
	const size_t n = 16 * page;
	struct vgpu_buffer *b = NULL;
	uint8_t *p, *shm;
	pid_t pid;
	long pin_parent, pages0, objs0, pages, objs;
	int err, memfd;

	/* Read-write pin, then fork. The child's copy is separate. The file
	 * holds the parent's userptr objects, so it belongs to the parent's
	 * mm: the child's submit through the inherited fd, naming the
	 * parent's object, is refused (EPERM) and the device never writes
	 * the parent's pinned pages for it. */
	p = map_rw(n);
	memset(p, 0x01, n);
	if (!tap_eq(vgpu_buffer_from_user(dev, p, n, 0, &b), 0, "fork: register RW"))
		return;
	pin_parent = vm_pin_kb(0);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		/* Checks in the child; exit codes tell which failed. The
		 * library refuses the parent's objects here, so the child
		 * submits with raw ioctls on the inherited fd. */
		if (vm_pin_kb(0) != 0)
			_exit(10); /* the child's mm starts with nothing pinned */
		if (vgpu_batch_create(dev, &(struct vgpu_batch *){ NULL }) != -ECHILD)
			_exit(15); /* the library refuses the parent's device */
		if (child_fill(b, 0x05) != -EPERM)
			_exit(11); /* the kernel refuses another mm on this file */
		child_checksum(b, &err);
		if (err != -EPERM)
			_exit(13);
		if (!all_bytes(p, n, 0x01))
			_exit(12); /* the child's copy changed */
		_exit(0);
	}
	tap_eq(wait_child(pid), 0, "fork: a submit from the child naming the parent's object "
	       "fails with EPERM (VmPin 0 in the child, its copy its own)");
	tap_ok(all_bytes(p, n, 0x01), "fork: the device never wrote the parent's pages for the child");
	tap_eq(vm_pin_kb(0), pin_parent, "fork: the parent's VmPin is unchanged");
	/* The parent writes after fork: no copy-on-write break of the pinned page. */
	memset(p, 0x06, n);
	tap_ok(dev_checksum(dev, b, &err) == xxh_of_byte(0x06, n) && !err,
	       "fork: the parent's writes after fork reach the device (pin not lost to COW)");
	vgpu_buffer_destroy(b);
	munmap(p, n);

	/* Read-only pin: the same holds; the parent's later writes stay visible. */
	p = map_rw(n);
	memset(p, 0x31, n);
	tap_eq(vgpu_buffer_from_user(dev, p, n, VGPU_BUF_READ_ONLY, &b), 0, "fork: register RO");
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		memset(p, 0x32, n);
		usleep(100000);
		_exit(all_bytes(p, n, 0x32) ? 0 : 1);
	}
	usleep(20000);
	memset(p, 0x33, n);
	tap_ok(dev_checksum(dev, b, &err) == xxh_of_byte(0x33, n) && !err,
	       "fork RO: the device sees the parent's writes made after fork, never the child's");
	tap_eq(wait_child(pid), 0, "fork RO: the child's copy keeps the child's writes");
	vgpu_buffer_destroy(b);
	munmap(p, n);

	/* MAP_SHARED memory (memfd): parent and child share the pages. */
	memfd = (int)syscall(SYS_memfd_create, "vgpu-stress", 0);
	if (memfd >= 0 && ftruncate(memfd, (off_t)n) == 0) {
		shm = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, memfd, 0);
		if (tap_ok(shm != MAP_FAILED, "fork shared: map a memfd")) {
			memset(shm, 0x71, n);
			tap_eq(vgpu_buffer_from_user(dev, shm, n, 0, &b), 0,
			       "fork shared: register MAP_SHARED memfd memory");
			fflush(stdout);
			pid = fork();
			if (pid == 0)
				_exit(child_fill(b, 0x72) == -EPERM && all_bytes(shm, n, 0x71) ? 0 : 1);
			tap_eq(wait_child(pid), 0, "fork shared: the child's submit on the shared pages "
			       "fails with EPERM too");
			tap_ok(all_bytes(shm, n, 0x71), "fork shared: the shared pages are unchanged");
			vgpu_buffer_destroy(b);
			munmap(shm, n);
		}
		close(memfd);
	} else {
		tap_ok(0, "fork shared: memfd_create: %s", strerror(errno));
	}

	/* An object a child creates on the parent's fd: charged to the child's
	 * mm, and it outlives the child; the parent closes it. Start when the
	 * releases above are done. */
	settle("fork child object", base_pages, base_objs);
	debugfs_read(&pages0, &objs0);
	{
		int fd = open_node();
		uint32_t *slot = vgpu_buffer_data(result_buf);
		long mine;

		slot[2] = 0;
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			uint8_t *c = map_rw(8 * page);
			uint32_t h = 0;

			if (raw_userptr_create(fd, (uintptr_t)c, 8 * page,
					       VIRTGPU_BLOB_FLAG_USE_USERPTR, VIRTGPU_BLOB_MEM_GUEST,
					       &h, NULL))
				_exit(1);
			if (vm_pin_kb(0) != (long)(8 * page / 1024))
				_exit(2);
			slot[2] = h;
			_exit(0);
		}
		tap_eq(wait_child(pid), 0, "fork: a child pins 8 pages on the parent's fd and exits "
		       "(its VmPin showed them)");
		mine = debugfs_objects_of(pid);
		tap_eq(mine, 1, "fork: the object outlives the child (debugfs lists its pid)");
		debugfs_read(&pages, &objs);
		tap_eq(pages - pages0, 8, "fork: its pages stay pinned after the child's exit");
		tap_eq(raw_gem_close(fd, slot[2]), 0, "fork: the parent closes the child's object");
		waited = debugfs_wait(pages0, objs0, 5000, &pages, &objs);
		tap_ok(waited,
		       "fork: its pages are unpinned (charge returned to the exited child's mm)");
		close(fd);
	}
}

/* ======================================================================
 * 4. exit and close with live objects
 * ====================================================================== */

/* A child that registers buffers, submits, and then exits or waits to be killed. */
static int exit_child(int kill_me)
{
	struct vgpu_device *d = NULL;
	struct vgpu_buffer *bs[8] = { 0 };
	uint8_t *m = map_rw(8 * 16 * page);

	if (vgpu_open(info.path, 0, &d))
		return 20;
	for (int i = 0; i < 8; i++)
		if (vgpu_buffer_from_user(d, m + (size_t)i * 16 * page, 16 * page,
					  (i & 1) && rdonly ? VGPU_BUF_READ_ONLY : 0, &bs[i]))
			return 21;
	if (dev_fill(d, bs[0], 0x99))
		return 22;
	if (kill_me) {
		printf("# exit: child %d waits for SIGKILL with 8 live buffers\n", (int)getpid());
		fflush(stdout);
		pause();
	}
	return 0; /* exit with every object alive, nothing closed */
}

static void test_exit(void)
{
	long pages0, objs0, pages, objs;
	pid_t pid;

	debugfs_read(&pages0, &objs0);
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(exit_child(0));
	tap_eq(wait_child(pid), 0, "exit: a child with 8 live userptr buffers exits");
	waited = debugfs_wait(pages0, objs0, 5000, &pages, &objs);
	tap_ok(waited,
	       "exit: all its pages released (%ld pages, %ld objects)", pages, objs);

	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(exit_child(1));
	/* Wait until its objects exist, then kill it. */
	for (int i = 0; i < 500 && debugfs_objects_of(pid) < 8; i++)
		usleep(10000);
	tap_eq(debugfs_objects_of(pid), 8, "exit: the child to be killed has 8 objects");
	kill(pid, SIGKILL);
	tap_eq(wait_child(pid), 128 + SIGKILL, "exit: child killed with SIGKILL");
	waited = debugfs_wait(pages0, objs0, 5000, &pages, &objs);
	tap_ok(waited,
	       "kill: all its pages released (%ld pages, %ld objects)", pages, objs);
}

/* Closing the file while buffers are attached to its context. */
static void test_close(long pages0, long objs0)
{
	struct vgpu_device *d = NULL;
	struct vgpu_buffer *bs[4] = { 0 };
	uint8_t *m = map_rw(4 * 16 * page);
	long pages, objs;
	int ok = 1;

	if (!tap_eq(vgpu_open(info.path, 0, &d), 0, "close: open a second device"))
		return;
	for (int i = 0; i < 4; i++)
		ok &= vgpu_buffer_from_user(d, m + (size_t)i * 16 * page, 16 * page, 0, &bs[i]) == 0;
	for (int i = 0; ok && i < 4; i++)
		ok &= dev_fill(d, bs[i], (uint8_t)(0xa0 + i)) == 0; /* attaches them */
	tap_ok(ok, "close: 4 buffers attached to the context by submits");
	for (int i = 0; ok && i < 4; i++)
		ok &= all_bytes(m + (size_t)i * 16 * page, 16 * page, (uint8_t)(0xa0 + i));
	tap_ok(ok, "close: their results are right");
	/* Close the fd under the library: no GEM_CLOSE, no detach; the file
	 * goes when the library unmaps its status blob. */
	close(vgpu_device_fd(d));
	vgpu_close(d); /* its ioctls now fail with EBADF; it only unmaps */
	waited = debugfs_wait(pages0, objs0, 5000, &pages, &objs);
	tap_ok(waited,
	       "close: the release of the file frees every object (%ld pages, %ld objects)",
	       pages, objs);
	munmap(m, 4 * 16 * page);
}

/* ======================================================================
 * 5. RLIMIT_MEMLOCK at its edge, without CAP_IPC_LOCK
 * ====================================================================== */

/* Child: returns the number of the first failed step, 0 when all passed. */
static int memlock_child(void)
{
	enum { LIMIT = 64 }; /* pages */
	struct rlimit rl = { LIMIT * page, LIMIT * page };
	uint8_t *m = map_rw(2 * (LIMIT + 1) * page);
	uint32_t h1 = 0, h2 = 0, h3 = 0;
	long pin;
	int fd = open_node(), err;

	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		return 1;
	/* With CAP_IPC_LOCK (root) the limit does not apply. */
	if (raw_userptr_create(fd, (uintptr_t)m, (LIMIT + 1) * page, VIRTGPU_BLOB_FLAG_USE_USERPTR,
			       VIRTGPU_BLOB_MEM_GUEST, &h1, NULL))
		return 2;
	raw_gem_close(fd, h1);
	if (!vm_pin_wait(0, 5000, &pin))
		return 3;
	if (drop_ipc_lock())
		return 4;
	/* Exactly at the limit: succeeds. */
	if (raw_userptr_create(fd, (uintptr_t)m, LIMIT * page, VIRTGPU_BLOB_FLAG_USE_USERPTR,
			       VIRTGPU_BLOB_MEM_GUEST, &h1, NULL))
		return 5;
	if (vm_pin_kb(0) != (long)(LIMIT * page / 1024))
		return 6;
	/* One page more: ENOMEM, RW or RO alike, and nothing charged. */
	err = raw_userptr_create(fd, (uintptr_t)(m + LIMIT * page), page,
				 VIRTGPU_BLOB_FLAG_USE_USERPTR, VIRTGPU_BLOB_MEM_GUEST, &h2, NULL);
	if (err != -ENOMEM)
		return 7;
	err = raw_userptr_create(fd, (uintptr_t)(m + LIMIT * page), page,
				 VIRTGPU_BLOB_FLAG_USE_USERPTR | ro_flag,
				 VIRTGPU_BLOB_MEM_GUEST, &h2, NULL);
	if (err != -ENOMEM)
		return 8;
	if (vm_pin_kb(0) != (long)(LIMIT * page / 1024))
		return 9;
	raw_gem_close(fd, h1);
	if (!vm_pin_wait(0, 5000, &pin))
		return 10;
	/* LIMIT + 1 in one request: ENOMEM. */
	if (raw_userptr_create(fd, (uintptr_t)m, (LIMIT + 1) * page, VIRTGPU_BLOB_FLAG_USE_USERPTR,
			       VIRTGPU_BLOB_MEM_GUEST, &h1, NULL) != -ENOMEM)
		return 11;
	/* Two halves reach the limit exactly; one page more fails. */
	if (raw_userptr_create(fd, (uintptr_t)m, LIMIT / 2 * page, VIRTGPU_BLOB_FLAG_USE_USERPTR,
			       VIRTGPU_BLOB_MEM_GUEST, &h1, NULL) ||
	    raw_userptr_create(fd, (uintptr_t)(m + LIMIT / 2 * page), LIMIT / 2 * page,
			       VIRTGPU_BLOB_FLAG_USE_USERPTR | ro_flag,
			       VIRTGPU_BLOB_MEM_GUEST, &h2, NULL))
		return 12;
	if (raw_userptr_create(fd, (uintptr_t)(m + LIMIT * page), page,
			       VIRTGPU_BLOB_FLAG_USE_USERPTR, VIRTGPU_BLOB_MEM_GUEST, &h3,
			       NULL) != -ENOMEM)
		return 13;
	/* The same pages registered twice count twice. */
	raw_gem_close(fd, h2);
	if (!vm_pin_wait((long)(LIMIT / 2 * page / 1024), 5000, &pin))
		return 14;
	if (raw_userptr_create(fd, (uintptr_t)m, LIMIT / 2 * page, VIRTGPU_BLOB_FLAG_USE_USERPTR,
			       VIRTGPU_BLOB_MEM_GUEST, &h2, NULL))
		return 15;
	if (raw_userptr_create(fd, (uintptr_t)m, page, VIRTGPU_BLOB_FLAG_USE_USERPTR,
			       VIRTGPU_BLOB_MEM_GUEST, &h3, NULL) != -ENOMEM)
		return 16;
	/* Exit with objects alive: their charge dies with the file. */
	return 0;
}

static void test_memlock(long pages0, long objs0)
{
	long pages, objs;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(memlock_child());
	tap_eq(wait_child(pid), 0, "memlock: without CAP_IPC_LOCK, exactly RLIMIT_MEMLOCK (64 "
	       "pages) pins, one page more is ENOMEM (RW and RO, one or several objects, the "
	       "same pages twice); with it the limit does not apply");
	waited = debugfs_wait(pages0, objs0, 5000, &pages, &objs);
	tap_ok(waited,
	       "memlock: the child's objects released at exit (%ld pages)", pages);
}

/* ====================================================================== */

static void usage(const char *argv0)
{
	fprintf(stderr, "Usage: %s [--seed N] [--seconds S] [--threads N] [--only PART,...]\n", argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	long pages0, objs0, pin0, pages, objs, pin;
	int err;

	page = (size_t)sysconf(_SC_PAGESIZE);
	for (int i = 1; i < argc; i++) {
		char *end;

		if (i + 1 >= argc)
			usage(argv[0]);
		if (strcmp(argv[i], "--seed") == 0) {
			seed = strtoull(argv[++i], &end, 0);
		} else if (strcmp(argv[i], "--seconds") == 0) {
			churn_seconds = strtod(argv[++i], &end);
			if (churn_seconds <= 0 || churn_seconds > 3600)
				usage(argv[0]);
		} else if (strcmp(argv[i], "--only") == 0) {
			only = argv[++i];
			end = (char *)"";
		} else if (strcmp(argv[i], "--threads") == 0) {
			unsigned long t = strtoul(argv[++i], &end, 0);

			if (t < 1 || t > 64)
				usage(argv[0]);
			nthreads = (unsigned int)t;
		} else {
			usage(argv[0]);
		}
		if (*end)
			usage(argv[0]);
	}
	/* Output goes through a pipe: line-buffer it so that fork() does not
	 * duplicate pending lines. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	err = vgpu_open(NULL, 0, &dev);
	if (!tap_eq(err, 0, "open the device: %s", vgpu_strerror(err))) {
		printf("Bail out! no device\n");
		return tap_done();
	}
	vgpu_get_info(dev, &info);
	userptr = info.userptr;
	rdonly = userptr && probe_rdonly();
	ro_flag = rdonly ? VIRTGPU_BLOB_FLAG_USERPTR_RDONLY : 0;
	tap_ok(debugfs_read(&pages0, &objs0) == 0, "debugfs %s readable",
	       debugfs_path[0] ? debugfs_path : "virtio-gpu-userptr");
	base_pages = pages0;
	base_objs = objs0;
	pin0 = vm_pin_kb(0);
	tap_diag("mode %s, seed %" PRIu64 ", start: %ld pinned pages, %ld objects, VmPin %ld kB",
		 !userptr ? "no-userptr" : rdonly ? "userptr" : "plain (read-only refused)", seed,
		 pages0, objs0, pin0);
	err = vgpu_buffer_alloc(dev, page, 0, &result_buf);
	if (!tap_eq(err, 0, "result buffer")) {
		printf("Bail out! no result buffer\n");
		return tap_done();
	}

	if (part("churn"))
		test_churn(pages0, objs0, pin0);
	if (userptr) {
		if (part("inflight"))
			test_inflight();
		if (part("semantics")) {
			settle("semantics", pages0, objs0);
			test_semantics();
		}
		if (part("fork")) {
			settle("fork", pages0, objs0);
			test_fork();
		}
		if (part("exit")) {
			settle("exit", pages0, objs0);
			test_exit();
		}
		if (part("memlock")) {
			settle("memlock", pages0, objs0);
			test_memlock(pages0, objs0);
		}
	}
	if (part("close")) {
		settle("close", pages0, objs0);
		test_close(pages0, objs0);
	}

	vgpu_buffer_destroy(result_buf);
	vgpu_close(dev);
	waited = debugfs_wait(pages0, objs0, 10000, &pages, &objs);
	tap_ok(waited,
	       "end: debugfs total_pinned_pages %ld (start %ld), objects %ld (start %ld)", pages,
	       pages0, objs, objs0);
	waited = vm_pin_wait(pin0, 5000, &pin);
	tap_ok(waited, "end: VmPin %ld kB (start %ld kB)", pin, pin0);
	return tap_done();
}
