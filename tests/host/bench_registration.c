/* SPDX-License-Identifier: MIT */
/*
 * bench_registration.c - how long a registration takes while a ring is
 * busy. Through the in-process vhost-user front-end (frontend.h): a long
 * compute job (SGEMMs) runs on ring 1 of context 1, and the control queue
 * meanwhile creates a small guest blob, as a userptr range is sent
 * (RESOURCE_CREATE_BLOB), and releases it (RESOURCE_UNREF), each timed
 * from posting until its answer is in the used ring. The same pair is timed with the device idle.
 *
 *   bench_registration [--samples N] [--job-ms MS] [--threads N] [--label NAME]
 *
 * Prints the machine, then one Markdown table row per measurement:
 * median, minimum, quartiles and maximum in microseconds. Built with the
 * tests, not run by them.
 */
#include <getopt.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "frontend.h"
#include "helpers.h"

#define DIM 256u
#define MAT (DIM * DIM * 4u)

enum { R_STATUS = 1, R_SRC = 2, R_DST = 3, R_NEW = 100 };

static struct fe F;
static uint64_t small_gpa;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static uint16_t post_head(void)
{
	return (uint16_t)(F.ring[0].next_desc % F.ring[0].num);
}

/* Whether head is among the chains used since base. */
static bool used_since(uint16_t base, uint16_t head)
{
	uint16_t n = (uint16_t)(__atomic_load_n(&F.ring[0].used->idx, __ATOMIC_ACQUIRE) - base);

	for (uint16_t k = 0; k < n; k++) {
		uint32_t id, len;

		fe_used_elem(&F, 0, (uint16_t)(base + k), &id, &len);
		if (id == head)
			return true;
	}
	return false;
}

/* Sleep on the call eventfd until head is used. */
static void wait_head(uint16_t base, uint16_t head)
{
	for (int i = 0; i < 60000 && !used_since(base, head); i++) {
		struct pollfd p = { F.ring[0].call, POLLIN, 0 };
		uint64_t v;

		if (poll(&p, 1, 1) == 1 && read(F.ring[0].call, &v, 8) < 0)
			break;
	}
	if (!used_since(base, head)) {
		fprintf(stderr, "bench_registration: no answer\n");
		exit(1);
	}
}

/* Post one command; its head. */
static uint16_t post_cmd(const void *req, size_t len)
{
	uint16_t head = post_head();

	fe_post(&F, 0, req, len, sizeof(struct virtio_gpu_ctrl_hdr), 1);
	fe_kick(&F, 0);
	return head;
}

/* CREATE_BLOB of a 4 KiB guest blob (a userptr range on the wire), then
 * its UNREF: both latencies. */
static void register_once(double *create_us, double *unref_us)
{
	uint8_t buf[sizeof(struct virtio_gpu_resource_create_blob) +
		    sizeof(struct virtio_gpu_mem_entry)];
	struct virtio_gpu_resource_create_blob *c = (void *)buf;
	struct virtio_gpu_mem_entry e = { small_gpa, 4096, 0 };
	struct virtio_gpu_resource_unref u;
	uint16_t base = __atomic_load_n(&F.ring[0].used->idx, __ATOMIC_ACQUIRE), h;
	double t0, t1;

	memset(buf, 0, sizeof(buf));
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, 0);
	c->resource_id = R_NEW;
	c->blob_mem = VIRTIO_GPU_BLOB_MEM_GUEST;
	c->blob_flags = 0;
	c->nr_entries = 1;
	c->size = 4096;
	memcpy(buf + sizeof(*c), &e, sizeof(e));
	memset(&u, 0, sizeof(u));
	hdr_init(&u.hdr, VIRTIO_GPU_CMD_RESOURCE_UNREF, 0);
	u.resource_id = R_NEW;
	t0 = now_us();
	h = post_cmd(buf, sizeof(buf));
	wait_head(base, h);
	t1 = now_us();
	h = post_cmd(&u, sizeof(u));
	wait_head(base, h);
	*create_us = t1 - t0;
	*unref_us = now_us() - t1;
}

/* Post the long job on ring 1 (not kicked); its head. */
static uint16_t post_job(uint32_t nops, uint64_t fence)
{
	size_t len = sizeof(struct virtio_gpu_cmd_submit) + sizeof(struct vgpu_compute_submit) +
		     nops * sizeof(struct vgpu_compute_op);
	uint8_t *buf = calloc(1, len);
	struct virtio_gpu_cmd_submit *c = (void *)buf;
	struct vgpu_compute_submit s = { VGPU_COMPUTE_MAGIC, nops, R_STATUS, 0, 0 };
	struct vgpu_compute_op *ops = (void *)(buf + sizeof(*c) + sizeof(s));
	uint16_t head = post_head();

	if (!buf)
		exit(1);
	hdr_init(&c->hdr, VIRTIO_GPU_CMD_SUBMIT_3D, 1);
	c->hdr.flags = VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX;
	c->hdr.fence_id = fence;
	c->hdr.ring_idx = 1;
	c->size = (uint32_t)(sizeof(s) + nops * sizeof(*ops));
	memcpy(buf + sizeof(*c), &s, sizeof(s));
	for (uint32_t i = 0; i < nops; i++) {
		ops[i] = mkop(VGPU_OP_SGEMM, R_DST, 0, R_SRC, 0, MAT, DIM | (uint64_t)DIM << 32);
		ops[i].arg1 = DIM;
	}
	fe_post(&F, 0, buf, len, sizeof(struct virtio_gpu_ctrl_hdr), 2);
	free(buf);
	return head;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Quantile q of sorted v[0..n) (linear between neighbours). */
static double quantile(const double *v, int n, double q)
{
	double pos = q * (n - 1);
	int i = (int)pos;

	return i + 1 < n ? v[i] + (pos - i) * (v[i + 1] - v[i]) : v[n - 1];
}

static void row(const char *label, const char *what, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	printf("| %s | %s | %d | %.0f | %.0f | %.0f | %.0f | %.0f |\n", label, what, n,
	       quantile(v, n, 0.5), v[0], quantile(v, n, 0.25), quantile(v, n, 0.75), v[n - 1]);
}

static void machine(void)
{
	char line[256], model[256] = "?";
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (f) {
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
				snprintf(model, sizeof(model), "%s", strchr(line, ':') + 2);
				model[strcspn(model, "\n")] = '\0';
				break;
			}
		fclose(f);
	}
	printf("# machine: %ld online CPUs (nproc), \"%s\"\n", sysconf(_SC_NPROCESSORS_ONLN),
	       model);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "samples", required_argument, NULL, 's' },
		{ "job-ms", required_argument, NULL, 'j' },
		{ "threads", required_argument, NULL, 't' },
		{ "label", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	int samples = 40, threads = 2, opt, overlapped = 0;
	double job_ms = 100, job_total = 0, *ic, *iu, *ip, *bc, *bu, *bp;
	const char *label = "this build";
	float one = 1.0f;
	uint32_t nops;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (opt == 's')
			samples = atoi(optarg);
		else if (opt == 'j')
			job_ms = atof(optarg);
		else if (opt == 't')
			threads = atoi(optarg);
		else if (opt == 'l')
			label = optarg;
		else
			return 2;
	}
	if (samples < 2 || samples > 10000 || job_ms <= 0 || threads < 1)
		return 2;
	ic = calloc((size_t)samples * 6, sizeof(double));
	if (!ic)
		return 1;
	iu = ic + samples;
	ip = iu + samples;
	bc = ip + samples;
	bu = bc + samples;
	bp = bu + samples;

	fe_start(&F, &(struct fe_opts){ .threads = (unsigned)threads, .ctrl_num = 64 });
	if (cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID) != VIRTIO_GPU_RESP_OK_NODATA ||
	    !simple_blob(&F, 1, R_STATUS, 0, 1, 4096) || !simple_blob(&F, 1, R_DST, 0, 2, MAT))
		return 1;
	{
		uint64_t src = simple_blob(&F, 1, R_SRC, 0, 2, 2 * MAT);

		if (!src)
			return 1;
		for (uint32_t i = 0; i < 2 * MAT; i += 4)
			memcpy((uint8_t *)fe_ptr(&F, src) + i, &one, 4);
	}
	for (uint32_t r = R_STATUS; r <= R_DST; r++)
		if (cmd_attach(&F, 1, r) != VIRTIO_GPU_RESP_OK_NODATA)
			return 1;
	small_gpa = fe_alloc(&F, 1, 4096, 0);

	/* How many SGEMMs make a job of job_ms. */
	{
		uint16_t base = __atomic_load_n(&F.ring[0].used->idx, __ATOMIC_ACQUIRE);
		uint16_t h = post_job(4, 1);
		double t = now_us();

		fe_kick(&F, 0);
		wait_head(base, h);
		t = (now_us() - t) / 4e3;
		nops = (uint32_t)(job_ms / t) + 1;
		if (nops > VGPU_COMPUTE_MAX_OPS)
			nops = VGPU_COMPUTE_MAX_OPS;
	}
	machine();
	printf("# %s: a long job is %u SGEMMs %ux%ux%u on ring 1 (aimed at %.0f ms), "
	       "%d engine threads, %d samples each\n", label, nops, DIM, DIM, DIM, job_ms,
	       threads, samples);

	for (int i = 0; i < samples; i++) {
		register_once(&ic[i], &iu[i]);
		ip[i] = ic[i] + iu[i];
	}
	for (int i = 0; i < samples; i++) {
		uint16_t base = __atomic_load_n(&F.ring[0].used->idx, __ATOMIC_ACQUIRE);
		uint16_t job = post_job(nops, 100 + (uint64_t)i);
		double t0 = now_us();

		fe_kick(&F, 0);
		/* Let the job start on its worker. */
		usleep(2000);
		register_once(&bc[i], &bu[i]);
		bp[i] = bc[i] + bu[i];
		overlapped += !used_since(base, job);
		wait_head(base, job);
		job_total += now_us() - t0;
	}
	printf("# %s: the job ran %.1f ms on average; %d of %d pairs were answered "
	       "before its fence\n", label, job_total / samples / 1e3, overlapped, samples);
	printf("| build | latency (us) | n | median | min | q1 | q3 | max |\n");
	printf("|---|---|---|---|---|---|---|---|\n");
	row(label, "CREATE_BLOB, idle", ic, samples);
	row(label, "UNREF, idle", iu, samples);
	row(label, "CREATE_BLOB + UNREF, idle", ip, samples);
	row(label, "CREATE_BLOB, ring 1 busy", bc, samples);
	row(label, "UNREF, ring 1 busy", bu, samples);
	row(label, "CREATE_BLOB + UNREF, ring 1 busy", bp, samples);
	fe_stop(&F);
	free(ic);
	return 0;
}
