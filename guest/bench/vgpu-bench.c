/* SPDX-License-Identifier: MIT */
/*
 * vgpu-bench - userptr blobs against copies into guest blobs, measured in
 * the guest. docs/benchmarks.md describes every path; scripts/run-bench.sh
 * boots the guest, runs this and the host-side vgpu-bench-host, and turns
 * the CSV into the tables and the plot.
 *
 * For each size (powers of 4 from --min to --max) and each path: --warmup
 * untimed runs, then --runs timed runs; the CSV row holds the median (and
 * min/max) of the whole run and the median of each phase. Every run that
 * checksums checks the device's XXH64 against the one computed here, and
 * every userptr registration checks the number of mem entries the device
 * received (debugfs virtio-gpu-userptr) against the number of physically
 * contiguous runs of the buffer (/proc/self/pagemap), i.e. the minimum.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <endian.h>
#include <xf86drm.h>
#include <drm/virtgpu_drm.h>
#include <xxhash.h>

#include <vgpu.h>

#include "bench_util.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define TMPFS_MAGIC_NUM 0x01021994
#define HOSTFS_MAGIC_NUM 0x00c0ffee

static const char *prog = "vgpu-bench";

enum path {
	P_REG_USERPTR,
	P_REG_BLOB_RAW,
	P_REG_BLOB,
	P_USERPTR,
	P_USERPTR_ONCE,
	P_ENGINE_USERPTR,
	P_SUBMIT_NOP,
	P_COPY_STEADY,
	P_COPY_FRESH,
	P_COPY_FRESH_PREFAULT,
	P_MODEL_USERPTR,
	P_MODEL_READ,
	P_MODEL_READ_STEADY,
	P_COUNT
};

static const char *const path_name[P_COUNT] = {
	[P_REG_USERPTR] = "reg-userptr",
	[P_REG_BLOB_RAW] = "reg-blob",
	[P_REG_BLOB] = "reg-blob-mapped",
	[P_USERPTR] = "userptr",
	[P_USERPTR_ONCE] = "userptr-once",
	[P_ENGINE_USERPTR] = "engine-userptr",
	[P_SUBMIT_NOP] = "submit-nop",
	[P_COPY_STEADY] = "copy-steady",
	[P_COPY_FRESH] = "copy-fresh",
	[P_COPY_FRESH_PREFAULT] = "copy-fresh-prefault",
	[P_MODEL_USERPTR] = "model-userptr",
	[P_MODEL_READ] = "model-read",
	[P_MODEL_READ_STEADY] = "model-read-steady",
};

/* Paths whose rows report mem entries. */
static bool path_is_userptr(enum path p)
{
	return p == P_REG_USERPTR || p == P_USERPTR || p == P_USERPTR_ONCE ||
	       p == P_ENGINE_USERPTR || p == P_MODEL_USERPTR;
}

/* Paths whose runs destroy objects, untimed-drained after each run. */
static bool path_releases(enum path p)
{
	return p == P_USERPTR || p == P_COPY_FRESH || p == P_COPY_FRESH_PREFAULT ||
	       p == P_MODEL_USERPTR || p == P_MODEL_READ;
}

static bool path_is_fresh_copy(enum path p)
{
	return p == P_COPY_FRESH || p == P_COPY_FRESH_PREFAULT;
}

struct ctx {
	struct vgpu_device *dev;
	int fd;                     /* the device's DRM fd (library-owned) */
	size_t page;
	uint64_t max, seed;
	unsigned warmup, runs;      /* warm-up rounds; least timed runs */
	unsigned max_runs;          /* most timed runs */
	double budget;              /* seconds of timed runs a path gets per size */
	unsigned max_ops;           /* ops one submit may carry (capset) */
	uint64_t fresh_max;         /* largest size for the copy-fresh paths */
	bool want[P_COUNT];

	struct vgpu_buffer *out;    /* 4 KiB guest blob the device writes results into */
	uint8_t *outp;
	uint8_t *src;               /* max bytes, populated, the data */
	struct vgpu_buffer *steady; /* max-size guest blob, mapped (copy-steady) */
	uint8_t *steadyp;
	uint64_t steady_touched;    /* bytes of it faulted in so far */

	char file_path[512];        /* the model file */
	int file_fd;
	const char *file_fs;

	char debugfs[512];          /* virtio-gpu-userptr, "" when absent */
	int pagemap_fd;

	FILE *csv;
	int rc;                     /* exit status: 1 on any failure */
};

/* Mem entries of one userptr registration against the minimum. */
struct ecount {
	long entries, min_entries;
	bool ok, seen;
};

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t le64_at(const volatile uint8_t *p)
{
	uint64_t v;

	memcpy(&v, (const void *)p, 8);
	return le64toh(v);
}

/* The entries count of live userptr resource res_id, or -1. */
static long debugfs_entries(const struct ctx *c, uint32_t res_id)
{
	char line[256];
	long found = -1;
	FILE *f;

	if (!c->debugfs[0])
		return -1;
	f = fopen(c->debugfs, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned id, entries;
		unsigned long pages;
		char access[4];
		int pid;

		if (sscanf(line, "%u %lu %u %3s %d", &id, &pages, &entries, access, &pid) == 5 &&
		    id == res_id) {
			found = entries;
			break;
		}
	}
	fclose(f);
	return found;
}

/* Number of physically contiguous runs of [p, p + size), or -1 when a page
 * is not present or pagemap hides PFNs. */
static long pagemap_runs(const struct ctx *c, const void *p, uint64_t size)
{
	uint64_t npages = size / c->page, first = (uintptr_t)p / c->page;
	uint64_t *e = malloc(npages * sizeof(*e));
	uint64_t prev = 0;
	long runs = 0;
	ssize_t want = (ssize_t)(npages * sizeof(*e)), got;

	if (!e || c->pagemap_fd < 0) {
		free(e);
		return -1;
	}
	got = pread(c->pagemap_fd, e, (size_t)want, (off_t)(first * sizeof(*e)));
	if (got != want) {
		free(e);
		return -1;
	}
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t pfn = e[i] & ((1ull << 55) - 1);

		if (!(e[i] >> 63) || pfn == 0) {
			runs = -1;
			break;
		}
		if (i == 0 || pfn != prev + 1)
			runs++;
		prev = pfn;
	}
	free(e);
	return runs;
}

static void check_entries(struct ctx *c, struct vgpu_buffer *b, const void *p, uint64_t size,
			  struct ecount *ec)
{
	long e = debugfs_entries(c, vgpu_buffer_res_id(b));
	long m = pagemap_runs(c, p, size);

	if (!ec->seen) {
		ec->seen = true;
		ec->ok = true;
		ec->entries = e;
		ec->min_entries = m;
	}
	/* Keep the first mismatch, so that the row shows it. */
	if (e < 0 || m < 0 || e != m) {
		if (ec->ok) {
			ec->entries = e;
			ec->min_entries = m;
		}
		ec->ok = false;
	}
}

/* One CHECKSUM of src[0, size) into the result blob; true when it matches. */
static int device_checksum(struct ctx *c, struct vgpu_buffer *src, uint64_t size,
			   uint64_t expect, bool *match)
{
	struct vgpu_batch *b = NULL;
	int err = vgpu_batch_create(c->dev, &b);

	if (!err)
		err = vgpu_batch_checksum(b, c->out, 0, src, 0, size, c->seed);
	if (!err) {
		memset(c->outp, 0, 8);
		err = vgpu_batch_submit(b, NULL);
	}
	vgpu_batch_destroy(b);
	if (!err) {
		uint64_t got = le64_at(c->outp);

		*match = got == expect;
		if (!*match)
			fprintf(stderr, "%s: checksum of %" PRIu64 " bytes: device %016" PRIx64
				", guest %016" PRIx64 "\n", prog, size, got, expect);
	}
	return err;
}

/*
 * engine-userptr: k CHECKSUM ops over the whole registered buffer in one
 * submit, result i at out[8 i], so that the submit's round trip is spread
 * over k ops and the time per op is the engine's over guest memory.
 */
static unsigned engine_ops(const struct ctx *c, uint64_t size)
{
	uint64_t k = (64ull << 20) / size;
	uint64_t cap = c->max_ops < c->page / 8 ? c->max_ops : c->page / 8;

	return k < 1 ? 1 : k > cap ? (unsigned)cap : (unsigned)k;
}

static int engine_checksums(struct ctx *c, struct vgpu_buffer *src, uint64_t size,
			    uint64_t expect, unsigned k, bool *match)
{
	struct vgpu_batch *b = NULL;
	int err = vgpu_batch_create(c->dev, &b);

	for (unsigned i = 0; i < k && !err; i++)
		err = vgpu_batch_checksum(b, c->out, 8ull * i, src, 0, size, c->seed);
	if (!err) {
		memset(c->outp, 0, 8ull * k);
		err = vgpu_batch_submit(b, NULL);
	}
	vgpu_batch_destroy(b);
	*match = true;
	for (unsigned i = 0; i < k && !err; i++) {
		uint64_t got = le64_at(c->outp + 8ull * i);

		if (got != expect) {
			fprintf(stderr, "%s: checksum %u of %u over %" PRIu64 " bytes: device %016"
				PRIx64 ", guest %016" PRIx64 "\n", prog, i, k, size, got, expect);
			*match = false;
			break;
		}
	}
	return err;
}

/* One submit of one NOP: the fixed cost of a round trip to the device. */
static int nop_submit(struct ctx *c)
{
	struct vgpu_batch *b = NULL;
	int err = vgpu_batch_create(c->dev, &b);

	if (!err)
		err = vgpu_batch_nop(b);
	if (!err)
		err = vgpu_batch_submit(b, NULL);
	vgpu_batch_destroy(b);
	return err;
}

/* Raw guest blob create + close, no library object, no mapping. */
static int raw_blob_create(struct ctx *c, uint64_t size, uint32_t *handle)
{
	struct drm_virtgpu_resource_create_blob cb;

	memset(&cb, 0, sizeof(cb));
	cb.blob_mem = VIRTGPU_BLOB_MEM_GUEST;
	cb.blob_flags = VIRTGPU_BLOB_FLAG_USE_MAPPABLE;
	cb.size = size;
	if (drmIoctl(c->fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &cb))
		return -errno;
	*handle = cb.bo_handle;
	return 0;
}

static void raw_blob_close(struct ctx *c, uint32_t handle)
{
	struct drm_gem_close gc = { .handle = handle };

	(void)drmIoctl(c->fd, DRM_IOCTL_GEM_CLOSE, &gc);
}

/* read() the first size bytes of the model file into dst. */
static int read_file(struct ctx *c, uint8_t *dst, uint64_t size)
{
	uint64_t done = 0;

	while (done < size) {
		ssize_t n = pread(c->file_fd, dst + done, size - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (uint64_t)n;
	}
	return 0;
}

/* Fault a fresh blob mapping in from the kernel side: read() of /dev/zero
 * (MAP_POPULATE and MADV_POPULATE_WRITE do not populate DRM mappings). */
static int prefault_devzero(uint8_t *p, uint64_t size)
{
	int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	uint64_t done = 0;
	int err = 0;

	if (fd < 0)
		return -errno;
	while (done < size) {
		ssize_t n = read(fd, p + done, size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			break;
		}
		done += (uint64_t)n;
	}
	close(fd);
	return err;
}

/* Registration paths repeat create + release this many times per run, so
 * that the release work the kernel finishes after the ioctl returns (unpin
 * after the device's answer) is paid inside the run. */
static unsigned reg_iters(uint64_t size)
{
	uint64_t k = (16ull << 20) / size;

	return k < 1 ? 1 : k > 64 ? 64 : (unsigned)k;
}

/* ---- one run of a path ---------------------------------------------------- */

struct path_state {
	struct vgpu_buffer *once;   /* userptr-once: the registration */
	bool bad;                   /* a result did not verify */
	struct ecount ec;
};

static int run_once(struct ctx *c, enum path p, uint64_t size, uint64_t expect,
		    struct path_state *ps, double ph[PH_COUNT])
{
	struct vgpu_buffer *b = NULL;
	bool match = true;
	double t0, t1, t2, t3, t4;
	int err = 0;

	memset(ph, 0, sizeof(double) * PH_COUNT);
	switch (p) {
	case P_REG_USERPTR:
	case P_REG_BLOB:
	case P_REG_BLOB_RAW: {
		unsigned k = reg_iters(size);
		double create = 0, release = 0;

		for (unsigned i = 0; i < k && !err; i++) {
			uint32_t h = 0;

			t0 = bench_now();
			if (p == P_REG_USERPTR)
				err = vgpu_buffer_from_user(c->dev, c->src, size, VGPU_BUF_ZERO_COPY, &b);
			else if (p == P_REG_BLOB)
				err = vgpu_buffer_alloc(c->dev, size, 0, &b);
			else
				err = raw_blob_create(c, size, &h);
			t1 = bench_now();
			if (err)
				break;
			if (p == P_REG_BLOB_RAW)
				raw_blob_close(c, h);
			else
				vgpu_buffer_destroy(b);
			t2 = bench_now();
			create += t1 - t0;
			release += t2 - t1;
		}
		/* Wait for the device to have answered every RESOURCE_UNREF (the
		 * control queue is in order): the release work belongs to this
		 * path, not to the one that runs next. */
		t0 = bench_now();
		if (!err)
			err = nop_submit(c);
		ph[PH_SUBMIT] = (bench_now() - t0) / k;
		ph[PH_SETUP] = create / k;
		ph[PH_RELEASE] = release / k;
		return err;
	}
	case P_USERPTR:
		t0 = bench_now();
		err = vgpu_buffer_from_user(c->dev, c->src, size,
					    VGPU_BUF_READ_ONLY | VGPU_BUF_ZERO_COPY, &b);
		t1 = bench_now();
		if (err)
			return err;
		check_entries(c, b, c->src, size, &ps->ec); /* untimed */
		t2 = bench_now();
		err = device_checksum(c, b, size, expect, &match);
		t3 = bench_now();
		vgpu_buffer_destroy(b);
		t4 = bench_now();
		ph[PH_SETUP] = t1 - t0;
		ph[PH_SUBMIT] = t3 - t2;
		ph[PH_RELEASE] = t4 - t3;
		break;
	case P_USERPTR_ONCE:
		t0 = bench_now();
		err = device_checksum(c, ps->once, size, expect, &match);
		ph[PH_SUBMIT] = bench_now() - t0;
		break;
	case P_ENGINE_USERPTR: {
		unsigned k = engine_ops(c, size);

		t0 = bench_now();
		err = engine_checksums(c, ps->once, size, expect, k, &match);
		ph[PH_SUBMIT] = (bench_now() - t0) / k;
		break;
	}
	case P_SUBMIT_NOP:
		t0 = bench_now();
		err = nop_submit(c);
		ph[PH_SUBMIT] = bench_now() - t0;
		break;
	case P_COPY_STEADY:
	case P_MODEL_READ_STEADY:
		t0 = bench_now();
		if (p == P_COPY_STEADY)
			memcpy(c->steadyp, c->src, size);
		else
			err = read_file(c, c->steadyp, size);
		t1 = bench_now();
		if (!err)
			err = device_checksum(c, c->steady, size, expect, &match);
		ph[PH_COPY] = t1 - t0;
		ph[PH_SUBMIT] = bench_now() - t1;
		break;
	case P_COPY_FRESH:
	case P_COPY_FRESH_PREFAULT:
	case P_MODEL_READ: {
		uint8_t *map;

		t0 = bench_now();
		err = vgpu_buffer_alloc(c->dev, size, 0, &b);
		if (err)
			return err;
		map = vgpu_buffer_data(b);
		if (p == P_COPY_FRESH_PREFAULT)
			err = prefault_devzero(map, size);
		t1 = bench_now();
		if (!err) {
			if (p == P_MODEL_READ)
				err = read_file(c, map, size);
			else
				memcpy(map, c->src, size);
		}
		t2 = bench_now();
		if (!err)
			err = device_checksum(c, b, size, expect, &match);
		t3 = bench_now();
		vgpu_buffer_destroy(b);
		t4 = bench_now();
		ph[PH_SETUP] = t1 - t0;
		ph[PH_COPY] = t2 - t1;
		ph[PH_SUBMIT] = t3 - t2;
		ph[PH_RELEASE] = t4 - t3;
		break;
	}
	case P_MODEL_USERPTR: {
		void *m;

		t0 = bench_now();
		m = mmap(NULL, size, PROT_READ, MAP_SHARED | MAP_POPULATE, c->file_fd, 0);
		if (m == MAP_FAILED)
			return -errno;
		err = vgpu_buffer_from_user(c->dev, m, size,
					    VGPU_BUF_READ_ONLY | VGPU_BUF_ZERO_COPY, &b);
		t1 = bench_now();
		if (err) {
			munmap(m, size);
			return err;
		}
		check_entries(c, b, m, size, &ps->ec); /* untimed */
		t2 = bench_now();
		err = device_checksum(c, b, size, expect, &match);
		t3 = bench_now();
		vgpu_buffer_destroy(b);
		munmap(m, size);
		t4 = bench_now();
		ph[PH_SETUP] = t1 - t0;
		ph[PH_SUBMIT] = t3 - t2;
		ph[PH_RELEASE] = t4 - t3;
		break;
	}
	case P_COUNT:
		break;
	}
	if (!match)
		ps->bad = true;
	return err;
}

/* ---- a path at one size ------------------------------------------------------ */

/* Untimed preparation of a path at one size. */
static int prepare_path(struct ctx *c, enum path p, uint64_t size, struct path_state *ps)
{
	int err = 0;

	if (p == P_USERPTR_ONCE || p == P_ENGINE_USERPTR) {
		err = vgpu_buffer_from_user(c->dev, c->src, size,
					    VGPU_BUF_READ_ONLY | VGPU_BUF_ZERO_COPY, &ps->once);
		if (!err)
			check_entries(c, ps->once, c->src, size, &ps->ec);
	} else if (p == P_REG_USERPTR) {
		struct vgpu_buffer *b;

		/* The timed registrations are not slowed by a debugfs read:
		 * check the entries of one registration here. */
		err = vgpu_buffer_from_user(c->dev, c->src, size, VGPU_BUF_ZERO_COPY, &b);
		if (!err) {
			check_entries(c, b, c->src, size, &ps->ec);
			vgpu_buffer_destroy(b);
		}
	} else if ((p == P_COPY_STEADY || p == P_MODEL_READ_STEADY) && size > c->steady_touched) {
		/* Steady state: the staging mapping has been faulted in before. */
		memcpy(c->steadyp, c->src, size);
		c->steady_touched = size;
	}
	return err;
}

static void report_path(struct ctx *c, enum path p, uint64_t size, struct path_state *ps,
			const struct bench_samples *s, int err)
{
	struct bench_row row = {
		.path = path_name[p], .size = size, .entries = -1, .min_entries = -1,
	};

	bench_summarize(s, &row);
	if (path_is_userptr(p)) {
		row.userptr = true;
		row.entries = ps->ec.entries;
		row.min_entries = ps->ec.min_entries;
		row.entries_ok = ps->ec.seen && ps->ec.ok;
	}
	/* Registration-only paths compute nothing: verified = ran cleanly. */
	row.verified = !err && !ps->bad && s->n >= c->runs;
	if (err) {
		char sz[32];

		fprintf(stderr, "%s: %s at %s: %s\n", prog, path_name[p],
			bench_size_str(size, sz, sizeof(sz)), vgpu_strerror(err));
	}
	if (!row.verified || (path_is_userptr(p) && !row.entries_ok))
		c->rc = 1;
	bench_print_row(stdout, &row);
	if (c->csv)
		bench_csv_row(c->csv, &row);
}

/*
 * All paths at one size, interleaved: each round runs every path once, so
 * that the load of a shared machine falls on all of them alike. After the
 * warm-up rounds a path needs --runs timed runs; while its timed runs add
 * up to less than the time budget it runs again (up to --max-runs), so that
 * cheap paths get more samples and steadier medians.
 */
static void run_size(struct ctx *c, uint64_t size, uint64_t min)
{
	static struct path_state ps[P_COUNT];
	static struct bench_samples s[P_COUNT];
	double spent[P_COUNT] = { 0 };
	bool active[P_COUNT], done[P_COUNT];
	int err[P_COUNT] = { 0 };
	uint64_t expect = XXH64(c->src, size, c->seed);
	bool more = true;

	for (int p = 0; p < P_COUNT; p++) {
		memset(&ps[p], 0, sizeof(ps[p]));
		memset(&s[p], 0, sizeof(s[p]));
		ps[p].ec.entries = ps[p].ec.min_entries = -1;
		active[p] = c->want[p] &&
			    !(path_is_fresh_copy((enum path)p) && size > c->fresh_max) &&
			    !(p == P_SUBMIT_NOP && size != min);
		done[p] = !active[p];
		if (active[p])
			err[p] = prepare_path(c, (enum path)p, size, &ps[p]);
		if (err[p])
			done[p] = true;
	}
	for (unsigned round = 0; more; round++) {
		more = false;
		for (int p = 0; p < P_COUNT; p++) {
			double ph[PH_COUNT], total = 0;

			if (done[p])
				continue;
			err[p] = run_once(c, (enum path)p, size, expect, &ps[p], ph);
			/* Untimed: let the device answer what this run released
			 * before the next path runs (the registration paths wait
			 * for it inside their timed runs). */
			if (!err[p] && path_releases((enum path)p))
				err[p] = nop_submit(c);
			for (unsigned k = 0; k < PH_COUNT; k++)
				total += ph[k];
			if (!err[p] && round >= c->warmup) {
				bench_add(&s[p], total, ph);
				spent[p] += total;
			}
			done[p] = err[p] || s[p].n >= c->max_runs ||
				  (s[p].n >= c->runs && spent[p] >= c->budget);
			more |= !done[p];
		}
	}
	for (int p = 0; p < P_COUNT; p++) {
		if (!active[p])
			continue;
		vgpu_buffer_destroy(ps[p].once);
		report_path(c, (enum path)p, size, &ps[p], &s[p], err[p]);
	}
}

/* ---- setup -------------------------------------------------------------------- */

static void *alloc_populated(uint64_t size)
{
	/* MAP_POPULATE: one bulk fault-in instead of one slow fault a page. */
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int make_model_file(struct ctx *c, const char *dir)
{
	struct statfs sf;
	uint64_t done = 0;

	snprintf(c->file_path, sizeof(c->file_path), "%s/vgpu-bench-model.%d", dir, (int)getpid());
	c->file_fd = open(c->file_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (c->file_fd < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, c->file_path, strerror(errno));
		return -1;
	}
	while (done < c->max) {
		ssize_t n = write(c->file_fd, c->src + done, c->max - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "%s: writing %s: %s\n", prog, c->file_path,
				n < 0 ? strerror(errno) : "short write");
			return -1;
		}
		done += (uint64_t)n;
	}
	c->file_fs = "other";
	if (fstatfs(c->file_fd, &sf) == 0) {
		if ((unsigned long)sf.f_type == TMPFS_MAGIC_NUM)
			c->file_fs = "tmpfs";
		else if ((unsigned long)sf.f_type == HOSTFS_MAGIC_NUM)
			c->file_fs = "hostfs";
	}
	return 0;
}

/* Whether MAP_POPULATE / MADV_POPULATE_WRITE populate a guest blob's DRM
 * mapping: reported in the header, for the analysis. */
static void probe_populate(struct ctx *c, FILE *meta)
{
	struct vgpu_buffer *b;
	uint64_t size = 64 * c->page;
	const char *res;
	char buf[64];
	int err = vgpu_buffer_alloc(c->dev, size, 0, &b);

	if (err)
		return;
	if (madvise(vgpu_buffer_data(b), size, MADV_POPULATE_WRITE) == 0)
		res = "ok";
	else {
		snprintf(buf, sizeof(buf), "fails (%s)", strerror(errno));
		res = buf;
	}
	printf("# madvise(MADV_POPULATE_WRITE) on a guest blob's DRM mapping: %s\n", res);
	if (meta)
		fprintf(meta, "madv_populate_write_drm: %s\n", res);
	vgpu_buffer_destroy(b);
}

static void write_meta(struct ctx *c, FILE *meta)
{
	struct utsname u;
	struct sysinfo si;
	struct vgpu_info info;
	char smax[32];

	uname(&u);
	sysinfo(&si);
	vgpu_get_info(c->dev, &info);
	printf("# %s: guest kernel %s, %ld CPU(s), %lu MiB RAM, load %.2f\n", prog, u.release,
	       sysconf(_SC_NPROCESSORS_ONLN), (unsigned long)(si.totalram * si.mem_unit >> 20),
	       bench_loadavg());
	printf("# sizes up to %s, %u..%u runs (budget %.0f ms) after %u warm-up; model file %s (%s);"
	       " engine threads %u\n", bench_size_str(c->max, smax, sizeof(smax)),
	       c->runs, c->max_runs, c->budget * 1e3, c->warmup, c->file_path,
	       c->file_fs ? c->file_fs : "-", info.caps.num_threads);
	if (!meta)
		return;
	fprintf(meta, "guest_kernel: %s %s\n", u.release, u.version);
	fprintf(meta, "guest_cpus: %ld\n", sysconf(_SC_NPROCESSORS_ONLN));
	fprintf(meta, "guest_mem_mib: %lu\n", (unsigned long)(si.totalram * si.mem_unit >> 20));
	fprintf(meta, "guest_loadavg_start: %.2f\n", bench_loadavg());
	fprintf(meta, "runs: %u\nmax_runs: %u\nbudget_ms: %.0f\nwarmup: %u\n", c->runs,
		c->max_runs, c->budget * 1e3, c->warmup);
	fprintf(meta, "model_file: %s\nmodel_file_fs: %s\n", c->file_path,
		c->file_fs ? c->file_fs : "-");
	fprintf(meta, "engine_threads: %u\n", info.caps.num_threads);
	fprintf(meta, "userptr: %s\n", info.userptr ? "yes" : "no");
	fprintf(meta, "debugfs: %s\n", c->debugfs[0] ? c->debugfs : "-");
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [--quick] [--min SIZE] [--max SIZE] [--runs N] [--max-runs N]\n"
		"          [--budget MS] [--warmup N] [--fresh-max SIZE] [--paths LIST]\n"
		"          [--file-dir DIR] [--csv FILE] [--meta FILE] [--seed N] [-d NODE]\n"
		"Userptr blobs against copies into guest blobs, checksummed by the host.\n"
		"Sizes: powers of 4 from --min (4K) to --max (256M). At each size the paths\n"
		"run interleaved, --warmup (1) untimed rounds, then at least --runs (5)\n"
		"timed runs each, more (up to --max-runs, 25) while a path's timed runs\n"
		"add up to less than --budget (200 ms); rows hold medians. --quick: up to\n"
		"4M, 3 runs, 20 ms budget. --fresh-max caps the copy-fresh paths (every\n"
		"page of a fresh DRM mapping faults). --file-dir holds the model file\n"
		"(default $VGPU_GUEST_TMP, else /tmp). Paths: ", prog);
	for (int p = 0; p < P_COUNT; p++)
		fprintf(f, "%s%s", path_name[p], p + 1 < P_COUNT ? "," : "\n");
	fprintf(f, "Exit 1 if a result is wrong, a path fails, or a userptr registration\n"
		"has more mem entries than the buffer's contiguous runs.\n");
}

static int parse_paths(struct ctx *c, char *list)
{
	memset(c->want, 0, sizeof(c->want));
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		int p;

		for (p = 0; p < P_COUNT; p++)
			if (!strcmp(tok, path_name[p]))
				break;
		if (p == P_COUNT) {
			fprintf(stderr, "%s: unknown path '%s'\n", prog, tok);
			return -1;
		}
		c->want[p] = true;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "min", required_argument, NULL, 'm' },
		{ "max", required_argument, NULL, 'M' },
		{ "runs", required_argument, NULL, 'r' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "max-runs", required_argument, NULL, 'R' },
		{ "budget", required_argument, NULL, 'B' },
		{ "fresh-max", required_argument, NULL, 'F' },
		{ "paths", required_argument, NULL, 'p' },
		{ "file-dir", required_argument, NULL, 'f' },
		{ "csv", required_argument, NULL, 'c' },
		{ "meta", required_argument, NULL, 'x' },
		{ "seed", required_argument, NULL, 'S' },
		{ "device", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctx c = { .file_fd = -1, .pagemap_fd = -1, .seed = 1, .warmup = 1, .runs = 5 };
	uint64_t min = 4096;
	long runs = 5, warmup = 1, max_runs = 25, budget_ms = 200;
	bool quick = false, max_given = false, runs_given = false, budget_given = false;
	bool bad = false;
	const char *dir = getenv("VGPU_GUEST_TMP"), *csv_path = NULL, *meta_path = NULL;
	const char *node = NULL;
	FILE *meta = NULL;
	glob_t g;
	int opt, err;

	if (!dir || !*dir)
		dir = "/tmp";
	c.max = 256ull << 20;
	for (int p = 0; p < P_COUNT; p++)
		c.want[p] = true;
	while ((opt = getopt_long(argc, argv, "hd:", longopts, NULL)) != -1) {
		char *end;

		switch (opt) {
		case 'q': quick = true; break;
		case 'm': min = bench_parse_size(optarg); bad |= !min; break;
		case 'M': c.max = bench_parse_size(optarg); bad |= !c.max; max_given = true; break;
		case 'F': c.fresh_max = bench_parse_size(optarg); bad |= !c.fresh_max; break;
		case 'r':
			runs = strtol(optarg, &end, 10);
			bad |= *end || runs < 1 || runs > BENCH_MAX_RUNS;
			runs_given = true;
			break;
		case 'w':
			warmup = strtol(optarg, &end, 10);
			bad |= *end || warmup < 0 || warmup > 100;
			break;
		case 'R':
			max_runs = strtol(optarg, &end, 10);
			bad |= *end || max_runs < 1 || max_runs > BENCH_MAX_RUNS;
			break;
		case 'B':
			budget_ms = strtol(optarg, &end, 10);
			bad |= *end || budget_ms < 0 || budget_ms > 600000;
			budget_given = true;
			break;
		case 'p': bad |= parse_paths(&c, optarg) != 0; break;
		case 'f': dir = optarg; break;
		case 'c': csv_path = optarg; break;
		case 'x': meta_path = optarg; break;
		case 'S': c.seed = strtoull(optarg, NULL, 0); break;
		case 'd': node = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	c.page = (size_t)sysconf(_SC_PAGESIZE);
	if (quick) {
		if (!max_given)
			c.max = 4ull << 20;
		if (!runs_given)
			runs = 3;
		if (!budget_given)
			budget_ms = 20;
	}
	if (max_runs < runs)
		max_runs = runs;
	if (!c.fresh_max || c.fresh_max > c.max)
		c.fresh_max = c.max;
	if (bad || optind != argc || min % c.page || c.max % c.page || min > c.max ||
	    c.max > (1ull << 31)) {
		fprintf(stderr, "%s: bad arguments (sizes: page multiples, min <= max <= 2G; "
			"runs 1..%d; warm-up 0..100)\n", prog, BENCH_MAX_RUNS);
		usage(stderr);
		return 2;
	}
	c.runs = (unsigned)runs;
	c.max_runs = (unsigned)max_runs;
	c.budget = (double)budget_ms / 1e3;
	c.warmup = (unsigned)warmup;

	err = vgpu_open(node, 0, &c.dev);
	if (err) {
		fprintf(stderr, "%s: opening the device: %s\n", prog, vgpu_strerror(err));
		return 1;
	}
	if (!vgpu_has_userptr(c.dev)) {
		fprintf(stderr, "%s: the device or kernel has no userptr blobs\n", prog);
		vgpu_close(c.dev);
		return 1;
	}
	c.fd = vgpu_device_fd(c.dev);
	{
		struct vgpu_info info;

		c.max_ops = vgpu_get_info(c.dev, &info) == 0 && info.caps.max_ops ? info.caps.max_ops : 1;
	}
	if (glob("/sys/kernel/debug/dri/*/virtio-gpu-userptr", 0, NULL, &g) == 0) {
		snprintf(c.debugfs, sizeof(c.debugfs), "%s", g.gl_pathv[0]);
		globfree(&g);
	} else {
		fprintf(stderr, "%s: no virtio-gpu-userptr in debugfs: entries not checked\n", prog);
	}
	c.pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (c.pagemap_fd < 0)
		fprintf(stderr, "%s: /proc/self/pagemap: %s\n", prog, strerror(errno));

	c.src = alloc_populated(c.max);
	err = c.src ? vgpu_buffer_alloc(c.dev, c.page, 0, &c.out) : -ENOMEM;
	if (!err)
		err = vgpu_buffer_alloc(c.dev, c.max, 0, &c.steady);
	if (err) {
		fprintf(stderr, "%s: allocating %" PRIu64 " bytes: %s\n", prog, c.max,
			vgpu_strerror(err));
		vgpu_close(c.dev);
		return 1;
	}
	c.outp = vgpu_buffer_data(c.out);
	c.steadyp = vgpu_buffer_data(c.steady);
	bench_fill(c.src, c.max, c.seed);
	if (make_model_file(&c, dir)) {
		if (c.file_fd >= 0) {
			close(c.file_fd);
			unlink(c.file_path);
		}
		vgpu_close(c.dev);
		return 1;
	}
	if (meta_path) {
		meta = fopen(meta_path, "we");
		if (!meta)
			fprintf(stderr, "%s: %s: %s\n", prog, meta_path, strerror(errno));
	}
	write_meta(&c, meta);
	probe_populate(&c, meta);
	if (meta)
		fclose(meta);
	if (csv_path) {
		c.csv = fopen(csv_path, "we");
		if (!c.csv) {
			fprintf(stderr, "%s: %s: %s\n", prog, csv_path, strerror(errno));
			c.rc = 1;
		} else {
			bench_csv_header(c.csv);
		}
	}

	for (uint64_t size = min; size <= c.max; size *= 4) {
		run_size(&c, size, min);
		if (size > UINT64_MAX / 4)
			break;
	}

	if (c.csv && fclose(c.csv)) {
		fprintf(stderr, "%s: writing %s: %s\n", prog, csv_path, strerror(errno));
		c.rc = 1;
	}
	close(c.file_fd);
	unlink(c.file_path);
	if (c.pagemap_fd >= 0)
		close(c.pagemap_fd);
	vgpu_close(c.dev);
	munmap(c.src, c.max);
	return c.rc;
}
