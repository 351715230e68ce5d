/* SPDX-License-Identifier: MIT */
/*
 * test_window.c - zero-copy windows: a resource's entries mapped from the
 * front-end's memory file into one range, and everything that must follow
 * them (read-only protection, a new memory table, the mapping budget,
 * unaligned entries, a shrunk file) and, through the device, every command
 * that must unmap them.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <cmocka.h>

#include "helpers.h"
#include "resource.h"
#include "stats.h"
#include "window.h"

#define PG 4096u
#define FILE_SIZE (8u << 20)
#define GPA_A 0x100000ull     /* region A: 4 MiB at file offset 0 */
#define GPA_B 0x1000000ull    /* region B: 2 MiB at file offset 4 MiB */

struct env {
	int fd;
	uint8_t *file;        /* the test's own view of the file */
	struct guest_mem gm;
};

static void env_init(struct env *e, bool seal)
{
	struct gm_region_desc d[2] = {
		{ GPA_A, 4u << 20, GPA_A, 0 },
		{ GPA_B, 2u << 20, GPA_B, 4u << 20 },
	};
	int fds[2];

	e->fd = memfd_create("ram", MFD_CLOEXEC | (seal ? MFD_ALLOW_SEALING : 0));
	assert_true(e->fd >= 0);
	assert_int_equal(ftruncate(e->fd, FILE_SIZE), 0);
	if (seal)
		assert_int_equal(fcntl(e->fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	e->file = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, e->fd, 0);
	assert_true(e->file != MAP_FAILED);
	for (uint32_t i = 0; i < FILE_SIZE; i += 4)
		memcpy(e->file + i, &i, 4);
	gm_init(&e->gm);
	fds[0] = fds[1] = e->fd;
	assert_int_equal(gm_set_table(&e->gm, d, 2, fds), 0);
}

static void env_fini(struct env *e)
{
	gm_clear(&e->gm);
	munmap(e->file, FILE_SIZE);
	close(e->fd);
}

/* A resource's backing over entries (gpa, len). */
static void res_init(struct res_backing *r, const struct gpu_mem_entry *ents, uint32_t n,
		     bool readonly)
{
	memset(r, 0, sizeof(*r));
	r->refs = 1;
	r->readonly = readonly;
	r->ents = res_build_entries(ents, n);
	assert_non_null(r->ents);
	r->nents = n;
	for (uint32_t i = 0; i < n; i++)
		r->size += ents[i].len;
}

static void res_fini(struct res_backing *r)
{
	res_window_close(r);
	free(r->ents);
}

/* n pages of region A in reverse order, every other page: no two adjacent. */
static uint32_t scattered(struct gpu_mem_entry *e, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		e[i].addr = GPA_A + (uint64_t)(2 * (n - 1 - i) + 1) * PG;
		e[i].len = PG;
	}
	return n;
}

static void test_alias(void **state)
{
	struct gpu_mem_entry e[16];
	struct res_backing r;
	struct env env;
	uint64_t live0 = STAT_GET(win_live), avail;
	uint8_t *w;

	(void)state;
	env_init(&env, false);
	res_init(&r, e, scattered(e, 16), false);
	assert_int_equal(res_window_open(&r, &env.gm), WIN_OK);
	w = res_window_base(&r);
	assert_non_null(w);
	assert_int_equal(r.win->nmaps, 17);       /* 16 runs + the reservation */
	assert_int_equal(STAT_GET(win_live), live0 + 1);
	/* Byte for byte the guest's pages, in the resource's order. */
	for (uint32_t i = 0; i < 16; i++)
		assert_memory_equal(w + i * PG, env.file + (e[i].addr - GPA_A), PG);
	/* A store through the window is a store into guest RAM, and back. */
	w[5 * PG + 7] = 0xab;
	assert_int_equal(env.file[e[5].addr - GPA_A + 7], 0xab);
	env.file[e[9].addr - GPA_A + 100] = 0x5c;
	assert_int_equal(w[9 * PG + 100], 0x5c);
	/* res_span sees one contiguous span to the end of the resource. */
	assert_ptr_equal(res_span(&r, &env.gm, 3 * PG + 1, &avail), w + 3 * PG + 1);
	assert_int_equal(avail, r.size - 3 * PG - 1);
	res_fini(&r);
	assert_int_equal(STAT_GET(win_live), live0);
	env_fini(&env);
}

static void test_merge_runs(void **state)
{
	struct gpu_mem_entry e[8];
	struct res_backing r;
	struct env env;

	(void)state;
	env_init(&env, false);
	/* Eight adjacent pages: one run. The last entry may end mid-page. */
	for (uint32_t i = 0; i < 8; i++) {
		e[i].addr = GPA_A + 0x10000 + (uint64_t)i * PG;
		e[i].len = i == 7 ? 100 : PG;
	}
	res_init(&r, e, 8, false);
	assert_int_equal(res_window_open(&r, &env.gm), WIN_OK);
	assert_int_equal(r.win->nmaps, 2);
	assert_memory_equal(res_window_base(&r), env.file + 0x10000, r.size);
	res_fini(&r);
	env_fini(&env);
}

static void test_rdonly_is_prot_read(void **state)
{
	struct gpu_mem_entry e[4];
	struct res_backing r;
	struct env env;
	int status;
	pid_t pid;

	(void)state;
	env_init(&env, false);
	res_init(&r, e, scattered(e, 4), true);
	assert_int_equal(res_window_open(&r, &env.gm), WIN_OK);
	/* Readable... */
	assert_memory_equal(res_window_base(&r), env.file + (e[0].addr - GPA_A), PG);
	/* ...and a store faults: the MMU enforces read-only. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);    /* not the test framework's handler */
		res_window_base(&r)[10] = 1;
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);
	res_fini(&r);
	env_fini(&env);
}

static void test_new_table_and_clear(void **state)
{
	struct gm_region_desc d[1] = { { GPA_A, 4u << 20, GPA_A, 1u << 20 } };
	struct gpu_mem_entry e[4];
	struct res_backing r;
	struct env env;
	uint64_t maps0 = win_maps_in_use();
	int fds[1];

	(void)state;
	env_init(&env, false);
	res_init(&r, e, scattered(e, 4), false);
	assert_int_equal(res_window_open(&r, &env.gm), WIN_OK);
	assert_int_equal(win_maps_in_use(), maps0 + 5);
	/* The front-end moves region A 1 MiB further into its file: the
	 * window now shows the new file range. */
	fds[0] = env.fd;
	assert_int_equal(gm_set_table(&env.gm, d, 1, fds), 0);
	assert_non_null(res_window_base(&r));
	assert_memory_equal(res_window_base(&r), env.file + (1u << 20) + (e[0].addr - GPA_A), PG);
	assert_int_equal(win_maps_in_use(), maps0 + 5);
	/* A table without the resource's pages: the window goes, and says why. */
	{
		struct gm_region_desc d2[1] = { { GPA_B, 2u << 20, GPA_B, 4u << 20 } };
		uint64_t nr0 = STAT_GET(win_fallback[WIN_NOTRAM]), avail;

		assert_int_equal(gm_set_table(&env.gm, d2, 1, fds), 0);
		assert_null(res_window_base(&r));
		assert_int_equal(r.win->reason, WIN_NOTRAM);
		assert_int_equal(STAT_GET(win_fallback[WIN_NOTRAM]), nr0 + 1);
		assert_int_equal(win_maps_in_use(), maps0);
		assert_false(res_backed(&r, &env.gm));          /* ops: E_NOBACKING */
		assert_null(res_span(&r, &env.gm, 0, &avail));
		/* The pages come back: so does the window. */
		assert_int_equal(gm_set_table(&env.gm, d, 1, fds), 0);
		assert_non_null(res_window_base(&r));
	}
	/* Reset / front-end gone: unmapped, budget returned. */
	gm_clear(&env.gm);
	assert_null(res_window_base(&r));
	assert_int_equal(win_maps_in_use(), maps0);
	res_fini(&r);
	env_fini(&env);
}

static void test_budget(void **state)
{
	struct gpu_mem_entry e[16], f[2];
	struct res_backing r, s, t;
	struct env env;
	uint64_t old = win_budget(), fb0 = STAT_GET(win_fallback[WIN_BUDGET]), avail;

	(void)state;
	env_init(&env, false);
	win_set_budget(win_maps_in_use() + 5);
	/* 17 mappings do not fit in 5: no window, the entry-by-entry path. */
	res_init(&r, e, scattered(e, 16), false);
	assert_int_equal(res_window_open(&r, &env.gm), WIN_BUDGET);
	assert_null(res_window_base(&r));
	assert_int_equal(STAT_GET(win_fallback[WIN_BUDGET]), fb0 + 1);
	assert_non_null(res_span(&r, &env.gm, 0, &avail));
	assert_int_equal(avail, PG);
	/* 3 fit, then 3 more do not. */
	res_init(&s, f, scattered(f, 2), false);
	assert_int_equal(res_window_open(&s, &env.gm), WIN_OK);
	res_init(&t, f, scattered(f, 2), false);
	assert_int_equal(res_window_open(&t, &env.gm), WIN_BUDGET);
	/* Freed mappings can be used again. */
	res_fini(&s);
	assert_int_equal(res_window_open(&t, &env.gm), WIN_OK);
	res_fini(&t);
	res_fini(&r);
	win_set_budget(old);
	env_fini(&env);
}

static void test_unaligned_and_nofile(void **state)
{
	struct gpu_mem_entry e[3] = {
		{ GPA_A, PG }, { GPA_A + 2 * PG, 100 }, { GPA_A + 4 * PG, PG },
	};
	struct gpu_mem_entry g[1] = { { GPA_A + 0x800, PG } };
	static uint8_t host[4 * PG];
	struct gpu_mem_entry h[1] = { { 0x9000000, PG } };
	struct res_backing r;
	struct guest_mem gm;
	struct env env;

	(void)state;
	env_init(&env, false);
	res_init(&r, e, 3, false);       /* a short entry in the middle */
	assert_int_equal(res_window_open(&r, &env.gm), WIN_UNALIGNED);
	res_fini(&r);
	res_init(&r, g, 1, false);       /* not at a page of the file */
	assert_int_equal(res_window_open(&r, &env.gm), WIN_UNALIGNED);
	res_fini(&r);
	env_fini(&env);
	/* Memory without a file (mapped by the caller). */
	gm_init(&gm);
	assert_int_equal(gm_add_host_region(&gm, 0x9000000, sizeof(host), 0x9000000, host), 0);
	res_init(&r, h, 1, false);
	assert_int_equal(res_window_open(&r, &gm), WIN_NOFILE);
	res_fini(&r);
	gm_clear(&gm);
}

/*
 * UML's memory file cannot be sealed: the front-end could shrink it. The
 * guest cannot (it has no way to reach the file); the daemon never maps a
 * window past the file's end as it is when the window is built, so a
 * shrunk file gives a resource without a window, not a SIGBUS.
 */
static void test_unsealed_shrunk(void **state)
{
	struct gpu_mem_entry e[1] = { { GPA_B + (1u << 20), PG } };  /* file offset 5 MiB */
	struct res_backing r;
	struct env env;
	uint64_t sealed0 = STAT_GET(regions_sealed);

	(void)state;
	env_init(&env, false);
	assert_int_equal(STAT_GET(regions_sealed), sealed0);
	assert_int_equal(ftruncate(env.fd, 5u << 20), 0);   /* the front-end shrinks it */
	res_init(&r, e, 1, false);
	assert_int_equal(res_window_open(&r, &env.gm), WIN_SHRUNK);
	assert_null(res_window_base(&r));
	res_fini(&r);
	env_fini(&env);
}

/* QEMU seals its memfd: the daemon sees it, and shrinking is refused. */
static void test_sealed(void **state)
{
	struct gpu_mem_entry e[1] = { { GPA_B + (1u << 20), PG } };
	struct res_backing r;
	struct env env;
	uint64_t sealed0 = STAT_GET(regions_sealed);

	(void)state;
	env_init(&env, true);
	assert_int_equal(STAT_GET(regions_sealed), sealed0 + 2);
	assert_int_equal(ftruncate(env.fd, 5u << 20), -1);
	res_init(&r, e, 1, false);
	assert_int_equal(res_window_open(&r, &env.gm), WIN_OK);
	assert_memory_equal(res_window_base(&r), env.file + (5u << 20), PG);
	res_fini(&r);
	env_fini(&env);
	assert_int_equal(STAT_GET(regions_sealed), sealed0);
}

/* ---- through the device: every command that must unmap a window ---- */

static struct fe F;

static void test_device_lifecycle(void **state)
{
	uint64_t live0, fb0;
	struct virtio_gpu_mem_entry e[4];
	uint32_t data[1024];

	(void)state;
	fe_start(&F, NULL);
	live0 = STAT_GET(win_live);
	fb0 = STAT_GET(win_fallback[WIN_UNALIGNED]);
	assert_int_equal(cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	/* Region 1 is page aligned in the file: a window. */
	for (int i = 0; i < 4; i++) {
		e[3 - i].addr = fe_alloc(&F, 1, 2 * PG, 0);
		e[3 - i].length = PG;
		e[3 - i].padding = 0;
	}
	/* A guest blob, to be detached and attached again below. */
	assert_int_equal(cmd_blob(&F, 1, 1, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST, 0, 4 * PG, e, 4),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(win_live), live0 + 1);
	/* Region 2 starts mid-page in the file: no window, counted. */
	assert_true(simple_blob(&F, 1, 2, 0, 2, PG) != 0);
	assert_int_equal(STAT_GET(win_live), live0 + 1);
	assert_int_equal(STAT_GET(win_fallback[WIN_UNALIGNED]), fb0 + 1);
	/* DETACH_BACKING unmaps; ATTACH_BACKING maps again. */
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 1),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(win_live), live0);
	{
		struct {
			struct virtio_gpu_resource_attach_backing a;
			struct virtio_gpu_mem_entry e[4];
		} ab;

		memset(&ab, 0, sizeof(ab));
		hdr_init(&ab.a.hdr, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, 0);
		ab.a.resource_id = 1;
		ab.a.nr_entries = 4;
		memcpy(ab.e, e, sizeof(e));
		assert_int_equal(fe_cmd_simple(&F, &ab, sizeof(ab)), VIRTIO_GPU_RESP_OK_NODATA);
	}
	assert_int_equal(STAT_GET(win_live), live0 + 1);
	/* A new memory table: remapped, and the CPU engine (working through
	 * the window) still sees the guest's bytes. */
	assert_int_equal(cmd_attach(&F, 1, 1), VIRTIO_GPU_RESP_OK_NODATA);
	for (int i = 0; i < 1024; i++)
		data[i] = (uint32_t)i * 2654435761u;
	for (int i = 0; i < 4; i++)
		memcpy(fe_ptr(&F, e[i].addr), (uint8_t *)data + i * 1024, 1024);
	fe_set_mem_table(&F);
	assert_int_equal(STAT_GET(win_live), live0 + 1);
	{
		struct vgpu_compute_op op = mkop(VGPU_OP_CHECKSUM, 1, 3 * PG + 8, 1, 0, 1024, 7);
		uint64_t h;

		assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
		memcpy(&h, (uint8_t *)fe_ptr(&F, e[3].addr) + 8, 8);
		assert_int_equal(h, XXH64(data, 1024, 7));
	}
	/* UNREF unmaps. */
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(win_live), live0);
	/* Front-end loss unmaps whatever is left. */
	assert_true(simple_blob(&F, 1, 3, 0, 1, 4 * PG) != 0);
	assert_int_equal(STAT_GET(win_live), live0 + 1);
	fe_stop(&F);
	assert_int_equal(STAT_GET(win_live), live0);
	assert_int_equal(STAT_GET(win_maps), 0);
}

/* Past the budget the CPU engine still computes, entry by entry. */
static void test_device_budget_fallback(void **state)
{
	struct virtio_gpu_mem_entry e[8];
	uint64_t old = win_budget(), fb0;
	uint8_t src[8 * 512];

	(void)state;
	fe_start(&F, NULL);
	win_set_budget(win_maps_in_use() + 1);
	fb0 = STAT_GET(win_fallback[WIN_BUDGET]);
	assert_int_equal(cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	for (int i = 0; i < 8; i++) {
		e[7 - i].addr = fe_alloc(&F, 1, 2 * PG, 0);
		e[7 - i].length = 512;
		e[7 - i].padding = 0;
	}
	/* 512-byte entries: unaligned anyway; make them pages for the budget. */
	for (int i = 0; i < 8; i++)
		e[i].length = PG;
	assert_int_equal(cmd_blob(&F, 1, 1, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST, 0, 8 * PG, e, 8),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(win_fallback[WIN_BUDGET]), fb0 + 1);
	assert_int_equal(cmd_attach(&F, 1, 1), VIRTIO_GPU_RESP_OK_NODATA);
	for (unsigned i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 31 + 5);
	for (int i = 0; i < 8; i++)
		memcpy(fe_ptr(&F, e[i].addr), src + i * 512, 512);
	/* Copy 4 KiB from offset 0 to offset 4 KiB + 100: crosses entries. */
	{
		struct vgpu_compute_op op = mkop(VGPU_OP_COPY, 1, 5 * PG + 100, 1, 100, 2 * PG, 0);
		uint8_t got[2 * PG];

		assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
		for (uint32_t i = 0; i < 2 * PG; i++) {
			uint64_t s = 100 + i, d = 5 * PG + 100 + i;

			got[i] = ((uint8_t *)fe_ptr(&F, e[d / PG].addr))[d % PG];
			assert_int_equal(got[i], ((uint8_t *)fe_ptr(&F, e[s / PG].addr))[s % PG]);
		}
	}
	win_set_budget(old);
	fe_stop(&F);
}

/*
 * A guest that sends as many fragmented resources as it likes (aliasing
 * the same pages too) never takes the daemon past its mapping budget:
 * the resources beyond it work without a window, and freeing them gives
 * the mappings back.
 */
static void test_device_hostile_budget(void **state)
{
	struct virtio_gpu_mem_entry e[8];
	uint64_t old = win_budget(), base, fb0;
	uint32_t ok = 0;

	(void)state;
	fe_start(&F, NULL);
	base = win_maps_in_use();
	win_set_budget(base + 40);
	fb0 = STAT_GET(win_fallback[WIN_BUDGET]);
	assert_int_equal(cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	for (int i = 0; i < 8; i++) {
		e[7 - i].addr = fe_alloc(&F, 1, 2 * PG, 0);
		e[7 - i].length = PG;
		e[7 - i].padding = 0;
	}
	/* 64 resources over the same 8 scattered pages: 9 mappings each. */
	for (uint32_t id = 1; id <= 64; id++) {
		uint64_t live = STAT_GET(win_live);

		assert_int_equal(cmd_blob(&F, 1, id, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST, 0, 8 * PG,
					  e, 8), VIRTIO_GPU_RESP_OK_NODATA);
		ok += STAT_GET(win_live) > live;
		assert_true(win_maps_in_use() <= win_budget());
	}
	assert_int_equal(ok, 4);                 /* 4 * 9 <= 40 < 5 * 9 */
	assert_int_equal(STAT_GET(win_fallback[WIN_BUDGET]), fb0 + 60);
	/* A resource past the budget still computes (entry by entry). */
	assert_int_equal(cmd_attach(&F, 1, 64), VIRTIO_GPU_RESP_OK_NODATA);
	{
		struct vgpu_compute_op op = mkop(VGPU_OP_FILL, 64, 100, 0, 0, 2 * PG, 0x11223344);
		uint8_t *p = fe_ptr(&F, e[0].addr);

		assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
		assert_int_equal(p[100], 0x44);
		assert_int_equal(p[103], 0x11);
	}
	for (uint32_t id = 1; id <= 64; id++)
		assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, id),
				 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(win_maps_in_use(), base);
	win_set_budget(old);
	fe_stop(&F);
}

/* Windows are off until a backend that needs them turns them on. */
static void test_disabled(void **state)
{
	struct gpu_mem_entry e[2];
	struct res_backing r;
	struct env env;
	uint64_t live0 = STAT_GET(win_live);

	(void)state;
	env_init(&env, false);
	win_set_enabled(false);
	res_init(&r, e, scattered(e, 2), false);
	assert_int_equal(res_window_open(&r, &env.gm), WIN_OFF);
	assert_null(r.win);
	assert_int_equal(STAT_GET(win_live), live0);
	win_set_enabled(true);
	assert_int_equal(res_window_open(&r, &env.gm), WIN_OK);
	res_fini(&r);
	env_fini(&env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_alias),
		cmocka_unit_test(test_merge_runs),
		cmocka_unit_test(test_rdonly_is_prot_read),
		cmocka_unit_test(test_new_table_and_clear),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_unaligned_and_nofile),
		cmocka_unit_test(test_unsealed_shrunk),
		cmocka_unit_test(test_sealed),
		cmocka_unit_test(test_device_lifecycle),
		cmocka_unit_test(test_device_budget_fallback),
		cmocka_unit_test(test_device_hostile_budget),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	/* The CPU engine here: windows on, as the OpenCL backend turns them. */
	win_set_enabled(true);
	return cmocka_run_group_tests_name("window", tests, NULL, NULL);
}
