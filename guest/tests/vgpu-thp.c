// SPDX-License-Identifier: MIT
/*
 * vgpu-thp - userptr blobs over transparent huge pages (x86_64 guest).
 *
 *   vgpu-thp [--size MIB] [--scatter]      the test (TAP)
 *   vgpu-thp --bench [--size MIB] [--runs N] [--scatter]
 *                                          registration cost per GiB, THP
 *                                          against 4 KiB pages (CSV + table)
 *
 * The test maps a 2 MiB-aligned buffer with MADV_HUGEPAGE, populates it and
 * checks with /proc/self/pagemap and /proc/kpageflags that every 2 MiB of
 * it is one huge page. Registered as a userptr blob it must arrive at the
 * device as at most one mem entry per huge page: the driver's debugfs
 * count of entries for the resource equals the number of physically
 * contiguous runs that pagemap shows (the minimum), and is at most
 * size / 2 MiB. The device's XXH64 of the buffer proves that the entries
 * name the right pages. A MADV_NOHUGEPAGE buffer of the same size is the
 * control: 4 KiB pages, more entries.
 *
 * --scatter populates the 4 KiB buffer page by page in a shuffled order,
 * so that no two neighbouring pages are physically contiguous: one mem
 * entry per page, the worst case of a long-running guest (a 4 GiB buffer
 * is then 1M entries).
 *
 * Needs root (kpageflags, PFNs in pagemap), THP in the guest kernel, and
 * the device with userptr: it runs under tests/system/run-guest.sh --vmm qemu.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "vgpu.h"
#include "guest-check.h"
#include "tap.h"

#define HPAGE (2u << 20)
#define KPF_THP 22

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

struct layout {
	long pages;     /* 4 KiB pages */
	long thp_pages; /* of them, in a transparent huge page */
	long runs;      /* physically contiguous runs (minimum mem entries) */
};

static long page_size;
static bool scatter;

/* A 2 MiB-aligned anonymous buffer of size bytes, populated, with or
 * without huge pages. NULL on failure (errno set). With optional_thp, a
 * kernel without THP (MADV_HUGEPAGE: EINVAL, as UML) is no failure. */
static void *map_buffer(size_t size, bool huge, bool optional_thp)
{
	size_t len = size + HPAGE;
	uint8_t *raw, *p;
	int e;

	raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	p = (uint8_t *)(((uintptr_t)raw + HPAGE - 1) & ~(uintptr_t)(HPAGE - 1));
	if (p > raw)
		munmap(raw, (size_t)(p - raw));
	if (raw + len > p + size)
		munmap(p + size, (size_t)(raw + len - (p + size)));
	if (madvise(p, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) &&
	    !(optional_thp && errno == EINVAL))
		goto fail;
	if (!huge && scatter)
		populate_scattered(p, size, page_size);
	else if (madvise(p, size, MADV_POPULATE_WRITE))
		goto fail;
	return p;
fail:
	e = errno;
	munmap(p, size);
	errno = e;
	return NULL;
}

/* PFNs from pagemap, THP flags from kpageflags. -1 on failure. */
static int read_layout(const void *p, size_t size, struct layout *l)
{
	long n = (long)(size / (size_t)page_size);
	uint64_t *pm = calloc((size_t)n, sizeof(*pm));
	int pmfd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	int kfd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	uint64_t prev = 0;
	int ret = -1;

	memset(l, 0, sizeof(*l));
	if (!pm || pmfd < 0 || kfd < 0)
		goto out;
	if (pread(pmfd, pm, (size_t)n * sizeof(*pm),
		  (off_t)((uintptr_t)p / (uintptr_t)page_size * sizeof(*pm))) !=
	    (ssize_t)((size_t)n * sizeof(*pm)))
		goto out;
	for (long i = 0; i < n; i++) {
		uint64_t pfn = pm[i] & ((1ull << 55) - 1), flags = 0;

		if (!(pm[i] >> 63) || !pfn)
			goto out; /* not present, or PFNs hidden */
		if (pread(kfd, &flags, sizeof(flags), (off_t)(pfn * sizeof(flags))) !=
		    (ssize_t)sizeof(flags))
			goto out;
		l->pages++;
		if (flags & (1ull << KPF_THP))
			l->thp_pages++;
		if (i == 0 || pfn != prev + 1)
			l->runs++;
		prev = pfn;
	}
	ret = 0;
out:
	if (pmfd >= 0)
		close(pmfd);
	if (kfd >= 0)
		close(kfd);
	free(pm);
	return ret;
}

/* Mem entries of resource res_id in the driver's debugfs file; -1 if absent. */
static long debugfs_entries(uint32_t res_id)
{
	char line[256], acc[8];
	unsigned int id, ents;
	unsigned long pages;
	long found = -1;
	int pid;
	FILE *f = debugfs_open();

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%u %lu %u %7s %d", &id, &pages, &ents, acc, &pid) == 5 &&
		    id == res_id)
			found = ents;
	fclose(f);
	return found;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* One buffer of the test: layout, registration, entries, device checksum. */
static void check_buffer(struct vgpu_device *dev, struct vgpu_buffer *out, size_t size, bool huge)
{
	const char *kind = huge ? "THP" : "4 KiB";
	size_t hpages = size / HPAGE;
	struct vgpu_submit_result res;
	struct vgpu_buffer *buf = NULL;
	struct vgpu_batch *b = NULL;
	struct layout l;
	uint8_t *p;
	long ents;
	int err;

	p = map_buffer(size, huge, false);
	if (!tap_ok(p != NULL, "%s: %zu MiB buffer mapped and populated", kind, size >> 20)) {
		tap_diag("mmap/madvise: %s", strerror(errno));
		return;
	}
	fill_pattern(p, size, huge ? 11 : 12);
	if (!tap_ok(read_layout(p, size, &l) == 0, "%s: pagemap and kpageflags read", kind))
		goto out;
	tap_diag("%s: %ld pages, %ld in huge pages, %ld physically contiguous runs", kind,
		 l.pages, l.thp_pages, l.runs);
	if (huge) {
		tap_eq(l.thp_pages, l.pages, "THP: every 4 KiB page is part of a huge page");
		tap_ok(l.runs <= (long)hpages, "THP: pagemap shows at most one run per 2 MiB (%ld <= %zu)",
		       l.runs, hpages);
	} else {
		tap_eq(l.thp_pages, 0, "4 KiB: no page is part of a huge page");
		if (scatter)
			tap_ok(l.runs * 10 >= l.pages * 9,
			       "4 KiB, scattered: at least 90%% of the pages start a run (%ld of %ld)",
			       l.runs, l.pages);
	}

	err = vgpu_buffer_from_user(dev, p, size, VGPU_BUF_ZERO_COPY, &buf);
	if (!tap_eq(err, 0, "%s: registered as a userptr blob", kind))
		goto out;
	ents = debugfs_entries(vgpu_buffer_res_id(buf));
	tap_eq(ents, l.runs, "%s: debugfs mem entries equal pagemap's contiguous runs", kind);
	if (huge)
		tap_ok(ents >= 1 && ents <= (long)hpages,
		       "THP: at most one mem entry per 2 MiB huge page (%ld for %zu)", ents, hpages);

	err = vgpu_batch_create(dev, &b);
	if (tap_eq(err, 0, "%s: batch created", kind)) {
		err = vgpu_batch_checksum(b, out, 0, buf, 0, size, 7);
		if (!err)
			err = vgpu_batch_submit(b, &res);
		tap_eq(err, 0, "%s: device XXH64 over the buffer submitted", kind);
		tap_ok(err == 0 && rd64(vgpu_buffer_data(out)) == XXH64(p, size, 7),
		       "%s: the device's XXH64 equals the guest's", kind);
		vgpu_batch_destroy(b);
	}
	vgpu_buffer_destroy(buf);
out:
	munmap(p, size);
}

/* Registration (create + destroy) cost per GiB, THP and 4 KiB interleaved. */
static int bench(struct vgpu_device *dev, size_t size, int runs)
{
	double *t[2];
	struct layout lay[2] = { { 0 }, { 0 } };
	uint8_t *p[2];
	int rc = 0;

	t[0] = calloc((size_t)runs, sizeof(double));
	t[1] = calloc((size_t)runs, sizeof(double));
	p[0] = map_buffer(size, true, true);
	p[1] = map_buffer(size, false, true);
	if (!t[0] || !t[1] || !p[0] || !p[1]) {
		fprintf(stderr, "vgpu-thp: cannot set up %zu MiB buffers: %s\n", size >> 20,
			strerror(errno));
		return 1;
	}
	for (int k = 0; k < 2; k++)
		read_layout(p[k], size, &lay[k]);
	for (int r = -1; r < runs && !rc; r++) {
		for (int k = 0; k < 2; k++) {
			struct vgpu_buffer *buf;
			double t0 = now_us();
			int err = vgpu_buffer_from_user(dev, p[k], size, VGPU_BUF_ZERO_COPY, &buf);

			if (err) {
				fprintf(stderr, "vgpu-thp: register: %s\n", vgpu_strerror(err));
				rc = 1;
				break;
			}
			vgpu_buffer_destroy(buf);
			if (r >= 0) /* run -1 warms up */
				t[k][r] = now_us() - t0;
		}
	}
	if (!rc) {
		double med[2], gib = (double)size / (double)(1u << 30);

		printf("pages,size_mib,huge_pct,min_entries,timed_runs,median_us,min_us,max_us,ms_per_gib\n");
		for (int k = 0; k < 2; k++) {
			qsort(t[k], (size_t)runs, sizeof(double), cmp_double);
			med[k] = t[k][runs / 2];
			printf("%s,%zu,%.0f,%ld,%d,%.0f,%.0f,%.0f,%.2f\n", k ? "4k" : "thp",
			       size >> 20,
			       lay[k].pages ? 100.0 * (double)lay[k].thp_pages / (double)lay[k].pages : 0.0,
			       lay[k].runs, runs, med[k], t[k][0], t[k][runs - 1], med[k] / 1e3 / gib);
		}
		printf("# register+release per GiB: MADV_HUGEPAGE %.2f ms, 4 KiB %.2f ms, ratio %.2fx\n",
		       med[0] / 1e3 / gib, med[1] / 1e3 / gib, med[1] / med[0]);
	}
	munmap(p[0], size);
	munmap(p[1], size);
	free(t[0]);
	free(t[1]);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vgpu-thp [--bench] [--size MIB] [--runs N] [--scatter]\n");
}

int main(int argc, char **argv)
{
	struct vgpu_buffer *out = NULL;
	struct vgpu_device *dev;
	size_t size = 64u << 20;
	bool do_bench = false;
	int runs = 11, err;

	page_size = sysconf(_SC_PAGESIZE);
	for (int i = 1; i < argc; i++) {
		char *end;

		if (!strcmp(argv[i], "--bench")) {
			do_bench = true;
		} else if (!strcmp(argv[i], "--scatter")) {
			scatter = true;
		} else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
			unsigned long mib = strtoul(argv[++i], &end, 10);

			if (*end || mib < 2 || mib % 2 || mib > 65536) {
				fprintf(stderr, "vgpu-thp: --size wants an even number of MiB, 2..65536\n");
				return 2;
			}
			size = (size_t)mib << 20;
		} else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
			long n = strtol(argv[++i], &end, 10);

			if (*end || n < 1 || n > 1000) {
				fprintf(stderr, "vgpu-thp: --runs wants 1..1000\n");
				return 2;
			}
			runs = (int)n;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (page_size != 4096) {
		fprintf(stderr, "vgpu-thp: written for 4 KiB base pages, this kernel has %ld\n",
			page_size);
		return 1;
	}

	err = vgpu_open(NULL, 0, &dev);
	if (err) {
		fprintf(stderr, "vgpu-thp: no device: %s\n", vgpu_strerror(err));
		return 1;
	}
	if (do_bench) {
		err = bench(dev, size, runs);
		vgpu_close(dev);
		return err;
	}

	tap_ok(vgpu_has_userptr(dev), "the device offers userptr blobs");
	tap_ok(debugfs_find(), "the driver's userptr debugfs file exists (%s)", debugfs_path);
	err = vgpu_buffer_alloc(dev, 4096, 0, &out);
	if (tap_eq(err, 0, "result blob allocated")) {
		check_buffer(dev, out, size, true);
		check_buffer(dev, out, size, false);
		vgpu_buffer_destroy(out);
	}
	vgpu_close(dev);
	return tap_done();
}
