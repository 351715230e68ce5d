/* SPDX-License-Identifier: MIT */
/*
 * vgpu-bench-host - the host-native half of the benchmark: what the host
 * device's checksum costs over the host's own memory, with no guest.
 *
 * Rows (path names of the CSV):
 *   host-native      XXH64 of a populated host buffer, one thread, with
 *                    the streaming calls the engine makes: the ceiling of
 *                    the device's CHECKSUM op
 *   host-engine      the daemon's compute engine (engine_submit: whole-submit
 *                    validation, then the op) on a resource of one mem entry
 *                    over the same host buffer, mapped as guest memory
 *   host-engine-4k   the same with one 4 KiB mem entry per page (the most
 *                    fragmented backing a guest can send)
 *   host-memcpy      memcpy between two populated host buffers (the copy
 *                    rate the copy baselines run at, as a reference)
 *
 * Every engine result is checked against XXH64 computed directly.
 * scripts/run-bench.sh runs this before it boots the guest and merges the
 * rows with vgpu-bench's.
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH64_state_t on the stack */
#include <xxhash.h>

#include "bench_util.h"
#include "engine.h"
#include "guest_mem.h"
#include "resource.h"
#include "vgpu_compute.h"

#define DATA_GPA 0x100000000ull
#define OUT_GPA 0x10000ull
#define PAGE 4096u

enum { RES_ONE = 1, RES_PAGES = 2, RES_OUT = 3 };

static const char *prog = "vgpu-bench-host";

struct host_ctx {
	struct guest_mem gm;
	struct engine *engine;
	uint8_t *data, *copy, *out;
	uint64_t max;
	struct gpu_resource res[3];
	struct res_backing bk[3];   /* the resources' pages */
	struct res_entry one, *pages, outent;
};

static const struct gpu_resource *lookup(void *opaque, uint32_t id)
{
	struct host_ctx *c = opaque;

	return id >= 1 && id <= 3 ? &c->res[id - 1] : NULL;
}

static void *alloc_populated(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int setup(struct host_ctx *c, uint64_t max, unsigned threads)
{
	uint64_t npages = max / PAGE;

	memset(c, 0, sizeof(*c));
	c->max = max;
	c->data = alloc_populated(max);
	c->copy = alloc_populated(max);
	c->out = alloc_populated(PAGE);
	c->pages = calloc(npages, sizeof(*c->pages));
	c->engine = engine_new(threads);
	if (!c->data || !c->copy || !c->out || !c->pages || !c->engine) {
		fprintf(stderr, "%s: out of memory for %" PRIu64 " bytes\n", prog, max);
		return -1;
	}
	gm_init(&c->gm);
	if (gm_add_host_region(&c->gm, DATA_GPA, max, DATA_GPA, c->data) ||
	    gm_add_host_region(&c->gm, OUT_GPA, PAGE, OUT_GPA, c->out)) {
		fprintf(stderr, "%s: cannot set up the memory table\n", prog);
		return -1;
	}
	c->outent = (struct res_entry){ .gpa = OUT_GPA, .off = 0, .len = PAGE };
	c->bk[RES_OUT - 1] = (struct res_backing){
		.refs = 1, .size = PAGE, .nents = 1, .ents = &c->outent,
	};
	c->res[RES_OUT - 1] = (struct gpu_resource){
		.id = RES_OUT, .blob_mem = 1, .size = PAGE, .bk = &c->bk[RES_OUT - 1],
	};
	for (uint64_t i = 0; i < npages; i++)
		c->pages[i] = (struct res_entry){
			.gpa = DATA_GPA + i * PAGE, .off = i * PAGE, .len = PAGE,
		};
	return 0;
}

static void teardown(struct host_ctx *c)
{
	engine_free(c->engine);
	gm_clear(&c->gm);
	free(c->pages);
	if (c->data)
		munmap(c->data, c->max);
	if (c->copy)
		munmap(c->copy, c->max);
	if (c->out)
		munmap(c->out, PAGE);
}

/* The resources over the first size bytes of the data buffer. */
static void set_size(struct host_ctx *c, uint64_t size)
{
	c->one = (struct res_entry){ .gpa = DATA_GPA, .off = 0, .len = (uint32_t)size };
	c->bk[RES_ONE - 1] = (struct res_backing){
		.refs = 1, .size = size, .readonly = true, .nents = 1, .ents = &c->one,
	};
	c->res[RES_ONE - 1] = (struct gpu_resource){
		.id = RES_ONE, .blob_mem = 1, .size = size, .readonly = true,
		.bk = &c->bk[RES_ONE - 1],
	};
	c->bk[RES_PAGES - 1] = (struct res_backing){
		.refs = 1, .size = size, .readonly = true, .nents = (uint32_t)(size / PAGE),
		.ents = c->pages,
	};
	c->res[RES_PAGES - 1] = (struct gpu_resource){
		.id = RES_PAGES, .blob_mem = 1, .size = size, .readonly = true,
		.bk = &c->bk[RES_PAGES - 1],
	};
}

/* One CHECKSUM submit through the engine; the result or -1. */
static int engine_checksum(struct host_ctx *c, uint32_t src, uint64_t size, uint64_t seed,
			   uint64_t *hash)
{
	struct {
		struct vgpu_compute_submit s;
		struct vgpu_compute_op op;
	} cmd;
	struct engine_result r;
	uint64_t h;

	memset(&cmd, 0, sizeof(cmd));
	cmd.s.magic = htole32(VGPU_COMPUTE_MAGIC);
	cmd.s.num_ops = htole32(1);
	cmd.s.status_res = htole32(RES_OUT);
	cmd.s.status_off = htole64(16);
	cmd.op.opcode = htole32(VGPU_OP_CHECKSUM);
	cmd.op.dst_res = htole32(RES_OUT);
	cmd.op.src_res = htole32(src);
	cmd.op.len = htole64(size);
	cmd.op.arg0 = htole64(seed);
	memset(c->out, 0, 64);
	if (engine_submit(c->engine, &c->gm, (const uint8_t *)&cmd, sizeof(cmd), lookup, c, &r) ||
	    r.result != VGPU_COMPUTE_OK) {
		fprintf(stderr, "%s: engine submit failed: %s\n", prog, engine_result_name(r.result));
		return -1;
	}
	memcpy(&h, c->out, 8);
	*hash = le64toh(h);
	return 0;
}

enum host_path { HP_NATIVE, HP_ENGINE, HP_ENGINE_4K, HP_MEMCPY, HP_COUNT };
static const char *const host_path_name[HP_COUNT] = {
	"host-native", "host-engine", "host-engine-4k", "host-memcpy",
};

/* One run of path p; the seconds it took, or < 0 when the engine failed.
 * *ok is false when the result is wrong. */
static double run_once(struct host_ctx *c, enum host_path p, uint64_t size, uint64_t seed,
		       uint64_t expect, bool *ok)
{
	double t0 = bench_now(), t;
	uint64_t h = expect;

	switch (p) {
	case HP_NATIVE: {
		/* The streaming calls the engine makes (with libxxhash 0.8.1
		 * they run faster than the one-shot XXH64()). */
		XXH64_state_t st;

		XXH64_reset(&st, seed);
		XXH64_update(&st, c->data, (size_t)size);
		h = XXH64_digest(&st);
		break;
	}
	case HP_ENGINE:
		if (engine_checksum(c, RES_ONE, size, seed, &h))
			return -1;
		break;
	case HP_ENGINE_4K:
		if (engine_checksum(c, RES_PAGES, size, seed, &h))
			return -1;
		break;
	case HP_MEMCPY:
		memcpy(c->copy, c->data, size);
		break;
	case HP_COUNT:
		break;
	}
	t = bench_now() - t0;
	if (p == HP_MEMCPY && memcmp(c->copy, c->data, size))
		h = ~expect;
	*ok = h == expect;
	if (!*ok)
		fprintf(stderr, "%s: %s at %" PRIu64 " bytes: got %016" PRIx64
			", expected %016" PRIx64 "\n", prog, host_path_name[p], size, h, expect);
	return t;
}

struct run_opts {
	unsigned warmup, runs, max_runs;
	double budget;
};

/* All paths at one size, interleaved round by round (see vgpu-bench). */
static int run_size(struct host_ctx *c, uint64_t size, uint64_t seed, uint64_t expect,
		    const struct run_opts *o, FILE *csv)
{
	struct bench_samples s[HP_COUNT];
	struct bench_row row[HP_COUNT];
	double spent[HP_COUNT] = { 0 };
	bool done[HP_COUNT] = { false }, more = true;
	int rc = 0;

	memset(s, 0, sizeof(s));
	for (int p = 0; p < HP_COUNT; p++)
		row[p] = (struct bench_row){
			.path = host_path_name[p], .size = size, .entries = -1,
			.min_entries = -1, .verified = true,
		};
	for (unsigned round = 0; more; round++) {
		more = false;
		for (int p = 0; p < HP_COUNT; p++) {
			double ph[PH_COUNT] = { 0 }, t;
			bool ok = true;

			if (done[p])
				continue;
			t = run_once(c, (enum host_path)p, size, seed, expect, &ok);
			if (t < 0 || !ok) {
				row[p].verified = false;
				done[p] = true;
				rc = 1;
				continue;
			}
			ph[p == HP_MEMCPY ? PH_COPY : PH_SUBMIT] = t;
			if (round >= o->warmup) {
				bench_add(&s[p], t, ph);
				spent[p] += t;
			}
			done[p] = s[p].n >= o->max_runs || (s[p].n >= o->runs && spent[p] >= o->budget);
			more |= !done[p];
		}
	}
	for (int p = 0; p < HP_COUNT; p++) {
		bench_summarize(&s[p], &row[p]);
		if (s[p].n < o->runs)
			row[p].verified = false;
		bench_print_row(stdout, &row[p]);
		if (csv)
			bench_csv_row(csv, &row[p]);
	}
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [--quick] [--min SIZE] [--max SIZE] [--runs N] [--max-runs N]\n"
		"          [--budget MS] [--warmup N] [--threads N] [--csv FILE] [--seed N]\n"
		"XXH64 over host memory: directly (host-native), through the device's\n"
		"compute engine with one mem entry (host-engine) and with 4 KiB entries\n"
		"(host-engine-4k); host memcpy (host-memcpy). Sizes are powers of 4 from\n"
		"--min (4K) to --max (256M); paths interleaved, --warmup (1) rounds, then\n"
		"at least --runs (5) timed runs, more (up to --max-runs, 25) within\n"
		"--budget (200 ms) per path and size; --quick: up to 4M, 3 runs, 20 ms.\n"
		"Rows hold medians. Exit 1 if a result is wrong.\n", prog);
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
		{ "threads", required_argument, NULL, 't' },
		{ "csv", required_argument, NULL, 'c' },
		{ "seed", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t min = 4096, max = 256ull << 20, seed = 1;
	long runs = 5, warmup = 1, threads = sysconf(_SC_NPROCESSORS_ONLN);
	long max_runs = 25, budget_ms = 200;
	bool quick = false, max_given = false, runs_given = false, budget_given = false;
	struct run_opts o;
	const char *csv_path = NULL;
	FILE *csv = NULL;
	struct host_ctx c;
	int opt, rc = 0;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		char *end;

		switch (opt) {
		case 'q': quick = true; break;
		case 'm': min = bench_parse_size(optarg); break;
		case 'M': max = bench_parse_size(optarg); max_given = true; break;
		case 'r':
			runs = strtol(optarg, &end, 10);
			if (*end || runs < 1 || runs > BENCH_MAX_RUNS)
				runs = -1;
			runs_given = true;
			break;
		case 'w':
			warmup = strtol(optarg, &end, 10);
			if (*end || warmup < 0 || warmup > 100)
				warmup = -1;
			break;
		case 'R':
			max_runs = strtol(optarg, &end, 10);
			if (*end || max_runs < 1 || max_runs > BENCH_MAX_RUNS)
				runs = -1;
			break;
		case 'B':
			budget_ms = strtol(optarg, &end, 10);
			if (*end || budget_ms < 0 || budget_ms > 600000)
				runs = -1;
			budget_given = true;
			break;
		case 't':
			threads = strtol(optarg, &end, 10);
			if (*end || threads < 1 || threads > 256)
				threads = -1;
			break;
		case 'c': csv_path = optarg; break;
		case 'S': seed = strtoull(optarg, NULL, 0); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (quick) {
		if (!max_given)
			max = 4ull << 20;
		if (!runs_given)
			runs = 3;
		if (!budget_given)
			budget_ms = 20;
	}
	if (max_runs < runs)
		max_runs = runs;
	if (optind != argc || runs < 1 || warmup < 0 || threads < 1 || !min || !max ||
	    min % PAGE || max % PAGE || min > max || max > (1ull << 31)) {
		fprintf(stderr, "%s: bad arguments (sizes: page multiples, min <= max <= 2G;"
			" runs 1..%d; threads 1..256)\n", prog, BENCH_MAX_RUNS);
		usage(stderr);
		return 2;
	}
	if (csv_path) {
		csv = fopen(csv_path, "we");
		if (!csv) {
			fprintf(stderr, "%s: %s: %s\n", prog, csv_path, strerror(errno));
			return 1;
		}
		bench_csv_header(csv);
	}
	if (setup(&c, max, (unsigned)threads)) {
		teardown(&c);
		if (csv)
			fclose(csv);
		return 1;
	}
	o = (struct run_opts){ (unsigned)warmup, (unsigned)runs, (unsigned)max_runs,
			       (double)budget_ms / 1e3 };
	printf("# %s: sizes %" PRIu64 "..%" PRIu64 ", %ld..%ld runs (budget %ld ms) after %ld"
	       " warm-up, engine threads %ld, load %.2f\n", prog, min, max, runs, max_runs,
	       budget_ms, warmup, threads, bench_loadavg());
	for (uint64_t size = min; size <= max; size *= 4) {
		uint64_t expect;

		bench_fill(c.data, size, seed + size);
		expect = XXH64(c.data, size, seed);
		set_size(&c, size);
		rc |= run_size(&c, size, seed, expect, &o, csv);
		if (size > UINT64_MAX / 4)
			break;
	}
	teardown(&c);
	if (csv && fclose(csv)) {
		fprintf(stderr, "%s: writing %s: %s\n", prog, csv_path, strerror(errno));
		rc = 1;
	}
	return rc ? 1 : 0;
}
