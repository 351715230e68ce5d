/* SPDX-License-Identifier: MIT */
/*
 * vgpu-bench-cl - the device's kernels on the guest's pages against the
 * same kernels on host memory: "% of host-native", measured as the device
 * sees it (host side, no guest boot).
 *
 * Guest RAM is a memfd mapped as the device maps it (SET_MEM_TABLE), and
 * each resource is made of 4 KiB mem entries in reverse page order, so its
 * zero-copy window has one mapping per page: the most fragmented layout a
 * guest can send. For each kernel and size, interleaved A/B pairs (the
 * order alternating) run one op through the backend's own run function:
 *
 *   window          the op on the resources' windows (the userptr path),
 *                   against the same op on populated anonymous host buffers
 *                   with 4 KiB pages (MADV_NOHUGEPAGE): "host-native"
 *   window-vs-huge  the window against host buffers with transparent huge
 *                   pages (MADV_HUGEPAGE)
 *   copy-path       a VMM without userptr (runtime-owned buffers, inputs in
 *                   with clEnqueueWriteBuffer, outputs out with
 *                   clEnqueueReadBuffer) against host-native
 * Kernels: copy, saxpy, reduce (REDUCE_F32) and xxh64 (CHECKSUM, one
 * work-item: XXH64 is sequential) from 64 KiB to --max, SGEMM 128..512.
 *
 *   cpu-window      the CPU engine on the windows against the CPU engine on
 *                   the 4 KiB host buffers
 *
 * Each sample repeats the op until it has run for at least 10 ms. The
 * figure of a path is the median over the pairs of t(baseline) / t(path),
 * in percent (100 = as fast as the baseline), with the 10th and 90th
 * percentiles as spread. Every result is checked against a reference.
 * Output: CSV on --csv, a summary on stdout.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_util.h"
#include "engine.h"
#include "engine_backend.h"
#include "guest_mem.h"
#include "resource.h"
#include "window.h"

#define PG 4096u
#define GPA 0x100000000ull
#define MAX_PAIRS 64

static const char *prog = "vgpu-bench-cl";

enum mem_kind { M_WINDOW, M_HOST, M_HUGE, M_COUNT };

struct mem {
	struct res_backing r;    /* what the ops name */
	struct res_window w;     /* host memories: a window that is the buffer */
	struct res_entry ent;
	uint8_t *p;
	void *raw;               /* host memories: the mapping to unmap */
	size_t map_len;
};

static struct guest_mem gm;
static int ram_fd;
static uint8_t *ram;
static uint64_t ram_size, ram_next;

/* A resource of size bytes of guest RAM, 4 KiB entries in reverse order. */
static void guest_res(struct mem *m, uint64_t size)
{
	uint64_t n = size / PG;
	struct gpu_mem_entry *e = calloc(n, sizeof(*e));

	if (!e || ram_next + size > ram_size) {
		fprintf(stderr, "%s: out of guest RAM\n", prog);
		exit(1);
	}
	for (uint64_t i = 0; i < n; i++) {
		e[i].addr = GPA + ram_next + (n - 1 - i) * PG;
		e[i].len = PG;
	}
	ram_next += size;
	memset(&m->r, 0, sizeof(m->r));
	m->r.refs = 1;
	m->r.ents = res_build_entries(e, (uint32_t)n);
	m->r.nents = (uint32_t)n;
	m->r.size = size;
	free(e);
	if (res_window_open(&m->r, &gm) != WIN_OK) {
		fprintf(stderr, "%s: no window for %llu bytes: %s\n", prog,
			(unsigned long long)size, win_reason_name(m->r.win->reason));
		exit(1);
	}
	m->p = res_window_base(&m->r);
}

static void host_res(struct mem *m, uint64_t size, bool huge)
{
	size_t align = huge ? 2u << 20 : PG, len = size + align;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	m->raw = p;
	m->map_len = len;
	p = (uint8_t *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	madvise(p, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	memset(p, 0, size);      /* populated */
	memset(&m->r, 0, sizeof(m->r));
	memset(&m->w, 0, sizeof(m->w));
	m->w.base = p;
	m->w.size = size;
	m->ent.len = (uint32_t)(size > UINT32_MAX ? UINT32_MAX : size);
	m->r.ents = &m->ent;
	m->r.nents = 1;
	m->r.size = size;
	m->r.win = &m->w;
	m->p = p;
}

struct kernel {
	const char *name;
	uint32_t opcode;
	uint64_t size;        /* bytes per buffer (SGEMM: 0, from dim) */
	uint32_t dim;         /* SGEMM: M = N = K */
};

static struct vop make_op(const struct kernel *k, struct mem *dst, struct mem *src, uint64_t size)
{
	struct vop v;

	memset(&v, 0, sizeof(v));
	v.opcode = k->opcode;
	v.dst = &dst->r;
	v.src = &src->r;
	switch (k->opcode) {
	case VGPU_OP_COPY:
	case VGPU_OP_SAXPY:
		v.len = size;
		if (k->opcode == VGPU_OP_SAXPY)
			v.arg0 = 0x3fc00000;   /* 1.5f */
		break;
	case VGPU_OP_REDUCE_F32:
	case VGPU_OP_CHECKSUM:
		v.len = size;
		break;
	case VGPU_OP_SGEMM:
		v.m = v.n = v.k = v.lda = v.ldb = v.ldc = k->dim;
		v.b_off = (uint64_t)k->dim * k->dim * 4;
		v.len = v.b_off;
		break;
	}
	return v;
}

static void fill_inputs(struct mem *dst, uint64_t dsize, struct mem *src, uint64_t ssize)
{
	float *s = (float *)(void *)src->p, *d = (float *)(void *)dst->p;

	for (uint64_t i = 0; i < ssize / 4; i++)
		s[i] = (float)(i % 1000) * 0.001f;
	for (uint64_t i = 0; i < dsize / 4; i++)
		d[i] = (float)(i % 7);
}

/* Result of op on (dst, src) as one number (a checksum of what it wrote). */
static double digest(const struct kernel *k, struct mem *dst, uint64_t size)
{
	const float *d = (const float *)(const void *)dst->p;
	double acc = 0;

	if (k->opcode == VGPU_OP_REDUCE_F32 || k->opcode == VGPU_OP_CHECKSUM) {
		memcpy(&acc, dst->p, 8);
		return acc;
	}
	for (uint64_t i = 0; i < size / 4; i += 97)
		acc += d[i];
	return acc;
}

typedef uint32_t (*run_fn)(struct engine_backend *b, const struct vop *op);
static const struct guest_mem *run_gm;

static uint32_t run_direct(struct engine_backend *b, const struct vop *op)
{
	return b->run(b, run_gm, op);
}

/* Seconds per op: repeat until 2 ms have passed. */
static double time_op(struct engine_backend *b, run_fn fn, const struct vop *op)
{
	double t0 = bench_now(), t;
	unsigned reps = 0;

	do {
		if (fn(b, op) != VGPU_COMPUTE_OK) {
			fprintf(stderr, "%s: op %u failed\n", prog, op->opcode);
			exit(1);
		}
		reps++;
		t = bench_now() - t0;
	} while (t < 0.010);
	return t / reps;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, unsigned n, double q)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return v[(unsigned)floor(q * (n - 1) + 0.5)];
}

/* Path A (be, fn on mem) against baseline B (be, direct, on base). */
struct path {
	const char *name;
	struct engine_backend *be;
	run_fn fn;
	enum mem_kind mem, base;
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pairs", required_argument, NULL, 'p' },
		{ "max", required_argument, NULL, 'M' },
		{ "quick", no_argument, NULL, 'q' },
		{ "csv", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned pairs = 11;
	uint64_t max = 64u << 20;
	const char *csv_path = NULL;
	bool quick = false;
	FILE *csv = NULL;
	struct engine *cl_eng, *cpu_eng;
	struct engine_backend *cl, *cpu;
	int o, failed = 0;

	while ((o = getopt_long(argc, argv, "p:M:qc:h", longopts, NULL)) != -1) {
		switch (o) {
		case 'p':
			pairs = (unsigned)atoi(optarg);
			if (pairs < 1 || pairs > MAX_PAIRS) {
				fprintf(stderr, "%s: --pairs 1..%d\n", prog, MAX_PAIRS);
				return 2;
			}
			break;
		case 'M':
			max = bench_parse_size(optarg);
			if (max < (64u << 10)) {
				fprintf(stderr, "%s: bad --max '%s'\n", prog, optarg);
				return 2;
			}
			break;
		case 'q':
			quick = true;
			break;
		case 'c':
			csv_path = optarg;
			break;
		case 'h':
			printf("Usage: %s [--pairs N] [--max SIZE] [--quick] [--csv FILE]\n", prog);
			return 0;
		default:
			return 2;
		}
	}
	if (quick) {
		pairs = pairs > 3 ? 3 : pairs;
		max = max > (1u << 20) ? (1u << 20) : max;
	}
	win_set_budget(1u << 20);
	cl_eng = engine_new_backend(2, VGPU_BACKEND_OPENCL);
	cpu_eng = engine_new_backend(2, VGPU_BACKEND_CPU);
	if (!cl_eng || !cpu_eng || engine_backend_id(cl_eng) != VGPU_BACKEND_OPENCL) {
		fprintf(stderr, "%s: no OpenCL device\n", prog);
		return 1;
	}
	cl = engine_get_backend(cl_eng);
	cpu = engine_get_backend(cpu_eng);

	/* Guest RAM: room for two resources of the largest size. */
	ram_size = 2 * max + (8u << 20);
	ram_fd = memfd_create("guest-ram", MFD_CLOEXEC);
	if (ram_fd < 0 || ftruncate(ram_fd, (off_t)ram_size)) {
		perror("memfd");
		return 1;
	}
	gm_init(&gm);
	{
		struct gm_region_desc d = { GPA, ram_size, GPA, 0 };

		if (gm_set_table(&gm, &d, 1, &ram_fd)) {
			perror("gm_set_table");
			return 1;
		}
	}
	ram = gm_translate(&gm, GPA, ram_size);
	memset(ram, 0, ram_size);     /* populated, as a running guest's RAM is */
	run_gm = &gm;
	if (csv_path) {
		csv = fopen(csv_path, "w");
		if (!csv) {
			perror(csv_path);
			return 1;
		}
		fprintf(csv, "kernel,size,size_bytes,path,pairs,pct_median,pct_p10,pct_p90,"
			"t_median_s,t_base_median_s,rate_median,verified\n");
	}

	struct kernel ks[48];
	unsigned nk = 0;
	static const uint32_t dims[] = { 128, 256, 512 };

	for (uint64_t sz = 64u << 10; sz <= max; sz *= 4) {
		ks[nk++] = (struct kernel){ "copy", VGPU_OP_COPY, sz, 0 };
		ks[nk++] = (struct kernel){ "saxpy", VGPU_OP_SAXPY, sz, 0 };
		ks[nk++] = (struct kernel){ "reduce", VGPU_OP_REDUCE_F32, sz, 0 };
		ks[nk++] = (struct kernel){ "xxh64", VGPU_OP_CHECKSUM, sz, 0 };
	}
	for (unsigned i = 0; i < (quick ? 1u : 3u); i++)
		ks[nk++] = (struct kernel){ "sgemm", VGPU_OP_SGEMM, 0, dims[i] };

	printf("# %-6s %8s  %-14s %8s %8s %8s %11s %9s\n", "kernel", "size", "path", "median%",
	       "p10%", "p90%", "t_median", "GB/s|GF/s");
	for (unsigned ki = 0; ki < nk; ki++) {
		const struct kernel *k = &ks[ki];
		uint64_t size = k->opcode == VGPU_OP_SGEMM ? 2ull * k->dim * k->dim * 4 : k->size;
		uint64_t out_size = k->opcode == VGPU_OP_SGEMM ? (uint64_t)k->dim * k->dim * 4 : size;
		struct mem dst[M_COUNT], src[M_COUNT];
		const struct path paths[] = {
			{ "window", cl, run_direct, M_WINDOW, M_HOST },
			{ "window-vs-huge", cl, run_direct, M_WINDOW, M_HUGE },
			{ "copy-path", cl, engine_opencl_run_copied, M_WINDOW, M_HOST },
			{ "cpu-window", cpu, run_direct, M_WINDOW, M_HOST },
		};
		const unsigned np = sizeof(paths) / sizeof(paths[0]);
		double ratio[8][MAX_PAIRS], tp[8][MAX_PAIRS], th[8][MAX_PAIRS];
		double ref = 0;
		bool verified = true;
		char sb[32];

		ram_next = 0;
		guest_res(&dst[M_WINDOW], out_size);
		guest_res(&src[M_WINDOW], size);
		host_res(&dst[M_HOST], out_size, false);
		host_res(&src[M_HOST], size, false);
		host_res(&dst[M_HUGE], out_size, true);
		host_res(&src[M_HUGE], size, true);
		/* Verify: every memory gives the same result on OpenCL (and on
		 * the CPU within the op's contract), then warm up. */
		for (int m = 0; m < M_COUNT; m++) {
			struct vop v = make_op(k, &dst[m], &src[m], size);
			double r;

			fill_inputs(&dst[m], out_size, &src[m], size);
			if (cl->run(cl, &gm, &v) != VGPU_COMPUTE_OK)
				verified = false;
			r = digest(k, &dst[m], out_size);
			if (m == 0)
				ref = r;
			else if (fabs(r - ref) > 1e-6 * fabs(ref) + 1e-9)
				verified = false;
		}
		for (unsigned i = 0; i < pairs; i++) {
			for (unsigned pi = 0; pi < np; pi++) {
				const struct path *p = &paths[pi];
				struct engine_backend *hb = p->be;
				struct vop va = make_op(k, &dst[p->mem], &src[p->mem], size);
				struct vop vh = make_op(k, &dst[p->base], &src[p->base], size);
				double a, h;

				/* A/B, the order alternating pair by pair. */
				if (i % 2) {
					h = time_op(hb, run_direct, &vh);
					a = time_op(p->be, p->fn, &va);
				} else {
					a = time_op(p->be, p->fn, &va);
					h = time_op(hb, run_direct, &vh);
				}
				ratio[pi][i] = 100.0 * h / a;
				tp[pi][i] = a;
				th[pi][i] = h;
			}
		}
		if (k->opcode == VGPU_OP_SGEMM)
			snprintf(sb, sizeof(sb), "%u", k->dim);
		else
			bench_size_str(size, sb, sizeof(sb));
		failed += !verified;
		for (unsigned pi = 0; pi < np; pi++) {
			double med = pct(ratio[pi], pairs, 0.5), p10 = pct(ratio[pi], pairs, 0.1),
			       p90 = pct(ratio[pi], pairs, 0.9), t = pct(tp[pi], pairs, 0.5);
			double thm = pct(th[pi], pairs, 0.5);
			/* GB/s moved (copy, saxpy: read + write), GFLOP/s for SGEMM */
			double bytes = k->opcode == VGPU_OP_SGEMM ? 2.0 * k->dim * k->dim * k->dim
				       : k->opcode == VGPU_OP_COPY || k->opcode == VGPU_OP_SAXPY
				       ? 2.0 * (double)size : (double)size;

			printf("  %-6s %8s  %-14s %7.1f%% %7.1f%% %7.1f%% %9.3f ms %9.2f  (base %.3f ms)%s\n",
			       k->name, sb, paths[pi].name, med, p10, p90, t * 1e3, bytes / t / 1e9,
			       thm * 1e3, verified ? "" : "  NOT VERIFIED");
			if (csv)
				fprintf(csv, "%s,%s,%llu,%s,%u,%.2f,%.2f,%.2f,%.9f,%.9f,%.3f,%d\n", k->name, sb,
					(unsigned long long)(k->opcode == VGPU_OP_SGEMM ? k->dim : size),
					paths[pi].name, pairs, med, p10, p90, t, thm, bytes / t / 1e9,
					verified);
		}
		for (int m = 0; m < M_COUNT; m++) {
			if (m == M_WINDOW) {
				res_window_close(&dst[m].r);
				res_window_close(&src[m].r);
				free(dst[m].r.ents);
				free(src[m].r.ents);
			} else {
				munmap(dst[m].raw, dst[m].map_len);
				munmap(src[m].raw, src[m].map_len);
			}
		}
	}
	if (csv)
		fclose(csv);
	gm_clear(&gm);
	engine_free(cl_eng);
	engine_free(cpu_eng);
	return failed ? 1 : 0;
}
