/* SPDX-License-Identifier: MIT */
/*
 * bench_util.h - what the guest benchmark (vgpu-bench) and its host-side
 * companion (vgpu-bench-host) share: the clock, sizes, the data pattern,
 * per-run samples and their medians, and the CSV row both write.
 */
#ifndef VGPU_BENCH_UTIL_H
#define VGPU_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Most timed runs per path and size. */
#define BENCH_MAX_RUNS 64

/* Timed phases of one run; a path uses the ones it has. */
enum bench_phase {
	PH_SETUP,   /* create (pin, or allocate + map [+ prefault]), mmap of a file */
	PH_COPY,    /* memcpy / read() into a guest blob */
	PH_SUBMIT,  /* submit + wait for the device (registration paths: the drain) */
	PH_RELEASE, /* destroy, munmap */
	PH_COUNT
};

struct bench_samples {
	unsigned n;
	double total[BENCH_MAX_RUNS];
	double phase[PH_COUNT][BENCH_MAX_RUNS];
};

/* One CSV row: a path at one size. */
struct bench_row {
	const char *path;
	uint64_t size;
	unsigned runs;
	double median, min, max;    /* seconds, whole run */
	double phase[PH_COUNT];     /* seconds, median of each phase */
	bool userptr;               /* a userptr path: the entries columns apply */
	long entries;               /* mem entries the device got; -1: unknown */
	long min_entries;           /* contiguous runs (pagemap); -1: unknown */
	bool entries_ok;            /* entries == min_entries in every run */
	bool verified;              /* every result equal to the expected XXH64 */
};

double bench_now(void);

/* Parse "4096", "4K", "64M", "1G" (binary units). 0 on error. */
uint64_t bench_parse_size(const char *s);
/* "4K", "256M", or bytes when not a whole unit; buf of 32 bytes. */
const char *bench_size_str(uint64_t size, char *buf, size_t len);

/* Fill p[0, size) with the benchmark's deterministic pattern (seeded).
 * size a multiple of 8. */
void bench_fill(void *p, uint64_t size, uint64_t seed);

/* Add one run; phases that a path does not have are 0. */
void bench_add(struct bench_samples *s, double total, const double phase[PH_COUNT]);
/* Medians (and min/max of the total) into row. */
void bench_summarize(const struct bench_samples *s, struct bench_row *row);

/* CSV: the header line, then one line per row. */
void bench_csv_header(FILE *f);
void bench_csv_row(FILE *f, const struct bench_row *row);
/* The same row for people, on one line. */
void bench_print_row(FILE *f, const struct bench_row *row);

/* Read /proc/loadavg's first field (-1 when unavailable). */
double bench_loadavg(void);

#endif
