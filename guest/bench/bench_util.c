/* SPDX-License-Identifier: MIT */
/* bench_util.c - clock, sizes, pattern, medians and CSV of the benchmark. */
#include "bench_util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t bench_parse_size(const char *s)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !isdigit((unsigned char)s[0]))
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return 0;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: return 0;
	}
	if (*end == 'i' || *end == 'B')
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end != '\0' || v > (UINT64_MAX >> shift))
		return 0;
	return (uint64_t)v << shift;
}

const char *bench_size_str(uint64_t size, char *buf, size_t len)
{
	if (size && size % (1ull << 30) == 0)
		snprintf(buf, len, "%" PRIu64 "G", size >> 30);
	else if (size && size % (1ull << 20) == 0)
		snprintf(buf, len, "%" PRIu64 "M", size >> 20);
	else if (size && size % (1ull << 10) == 0)
		snprintf(buf, len, "%" PRIu64 "K", size >> 10);
	else
		snprintf(buf, len, "%" PRIu64, size);
	return buf;
}

void bench_fill(void *p, uint64_t size, uint64_t seed)
{
	uint64_t *w = p, x = seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull;

	/* xorshift64*: cheap, and not compressible into a trivial checksum. */
	for (uint64_t i = 0; i < size / 8; i++) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		w[i] = x * 0x2545f4914f6cdd1dull;
	}
}

void bench_add(struct bench_samples *s, double total, const double phase[PH_COUNT])
{
	if (s->n >= BENCH_MAX_RUNS)
		return;
	s->total[s->n] = total;
	for (unsigned p = 0; p < PH_COUNT; p++)
		s->phase[p][s->n] = phase ? phase[p] : 0;
	s->n++;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, unsigned n)
{
	double tmp[BENCH_MAX_RUNS];

	if (n == 0)
		return 0;
	memcpy(tmp, v, n * sizeof(*v));
	qsort(tmp, n, sizeof(*tmp), cmp_double);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

void bench_summarize(const struct bench_samples *s, struct bench_row *row)
{
	row->runs = s->n;
	row->median = median(s->total, s->n);
	row->min = row->max = s->n ? s->total[0] : 0;
	for (unsigned i = 1; i < s->n; i++) {
		if (s->total[i] < row->min)
			row->min = s->total[i];
		if (s->total[i] > row->max)
			row->max = s->total[i];
	}
	for (unsigned p = 0; p < PH_COUNT; p++)
		row->phase[p] = median(s->phase[p], s->n);
}

void bench_csv_header(FILE *f)
{
	fputs("path,size,runs,median_us,min_us,max_us,gbps,setup_us,copy_us,submit_us,"
	      "release_us,entries,min_entries,entries_ok,verified\n", f);
}

static void csv_long(FILE *f, long v)
{
	if (v >= 0)
		fprintf(f, "%ld", v);
}

void bench_csv_row(FILE *f, const struct bench_row *r)
{
	double gbps = r->median > 0 ? (double)r->size / r->median / 1e9 : 0;

	fprintf(f, "%s,%" PRIu64 ",%u,%.1f,%.1f,%.1f,%.4f,%.1f,%.1f,%.1f,%.1f,",
		r->path, r->size, r->runs, r->median * 1e6, r->min * 1e6, r->max * 1e6,
		gbps, r->phase[PH_SETUP] * 1e6, r->phase[PH_COPY] * 1e6,
		r->phase[PH_SUBMIT] * 1e6, r->phase[PH_RELEASE] * 1e6);
	if (r->userptr) {
		csv_long(f, r->entries);
		fputc(',', f);
		csv_long(f, r->min_entries);
	} else {
		fputc(',', f);
	}
	fprintf(f, ",%s,%s\n", !r->userptr ? "" : r->entries_ok ? "yes" : "no",
		r->verified ? "yes" : "no");
	fflush(f);
}

void bench_print_row(FILE *f, const struct bench_row *r)
{
	char sz[32];
	double gbps = r->median > 0 ? (double)r->size / r->median / 1e9 : 0;

	fprintf(f, "%-20s %6s %11.1f us %9.3f GB/s", r->path,
		bench_size_str(r->size, sz, sizeof(sz)), r->median * 1e6, gbps);
	if (r->userptr)
		fprintf(f, "  entries %ld (min %ld)%s", r->entries, r->min_entries,
			r->entries_ok ? "" : " MISMATCH");
	fprintf(f, "%s\n", r->verified ? "" : "  NOT VERIFIED");
	fflush(f);
}

double bench_loadavg(void)
{
	FILE *f = fopen("/proc/loadavg", "re");
	double v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%lf", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}
