/* SPDX-License-Identifier: MIT */
/* test_units.c - guest memory translation, command decoding, id map, pool. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "gpu_cmd.h"
#include "guest_mem.h"
#include "idmap.h"
#include "monotime.h"
#include "pool.h"
#include "resource.h"

static void test_translate(void **state)
{
	static uint8_t a[8192], b[4096];
	struct guest_mem gm;

	(void)state;
	gm_init(&gm);
	assert_int_equal(gm_add_host_region(&gm, 0x10000, sizeof(a), 0x900000, a), 0);
	assert_int_equal(gm_add_host_region(&gm, 0x10000 + sizeof(a), sizeof(b), 0x800000, b), 0);
	/* Overlapping regions are refused. */
	assert_int_equal(gm_add_host_region(&gm, 0x11000, 0x1000, 0x100000, b), -1);
	assert_int_equal(gm_add_host_region(&gm, 0x100, 0x1000, 0x900100, b), -1);
	assert_int_equal(gm_add_host_region(&gm, UINT64_MAX - 0xff, 0x1000, 0, b), -1);
	assert_ptr_equal(gm_translate(&gm, 0x10000, 1), a);
	assert_ptr_equal(gm_translate(&gm, 0x10000, sizeof(a)), a);
	assert_ptr_equal(gm_translate(&gm, 0x10000 + sizeof(a) - 1, 1), a + sizeof(a) - 1);
	assert_ptr_equal(gm_translate(&gm, 0x10000 + sizeof(a), 4096), b);
	/* Crossing from one region into the next, even when adjacent. */
	assert_null(gm_translate(&gm, 0x10000 + sizeof(a) - 1, 2));
	assert_null(gm_translate(&gm, 0x10000, sizeof(a) + 1));
	assert_null(gm_translate(&gm, 0xffff, 2));
	assert_null(gm_translate(&gm, 0x0, 1));
	assert_null(gm_translate(&gm, 0x10000, 0));
	assert_null(gm_translate(&gm, UINT64_MAX, 2));
	assert_null(gm_translate(&gm, 0x10001, UINT64_MAX));
	assert_null(gm_translate(&gm, 0x10000 + sizeof(a) + sizeof(b), 1));
	/* Front-end addresses are a separate space. */
	assert_ptr_equal(gm_translate_qva(&gm, 0x900010, 16), a + 16);
	assert_ptr_equal(gm_translate_qva(&gm, 0x800000, 4096), b);
	assert_null(gm_translate_qva(&gm, 0x10000, 1));
	assert_null(gm_translate_qva(&gm, 0x900000 + sizeof(a) - 8, 16));
	assert_int_equal(gm_mapped_bytes(&gm), sizeof(a) + sizeof(b));
	gm_clear(&gm);
	assert_null(gm_translate(&gm, 0x10000, 1));
}

static void test_set_table(void **state)
{
	struct guest_mem gm;
	struct gm_region_desc d[2] = {
		{ 0x0, 0x1000, 0x1000000, 0x800 },     /* unaligned mmap offset */
		{ 0x2000, 0x1000, 0x2000000, 0x1000 },
	};
	int fd = memfd_create("t", MFD_CLOEXEC), fds[2] = { fd, fd };
	uint8_t *p, *view;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 0x2000), 0);
	view = mmap(NULL, 0x2000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(view != MAP_FAILED);
	view[0x800] = 0x5a;
	view[0x1000] = 0xa5;
	gm_init(&gm);
	assert_int_equal(gm_set_table(&gm, d, 2, fds), 0);
	p = gm_translate(&gm, 0, 1);
	assert_non_null(p);
	assert_int_equal(*p, 0x5a);
	p = gm_translate(&gm, 0x2000, 1);
	assert_int_equal(*p, 0xa5);
	assert_null(gm_translate(&gm, 0x1000, 1));
	/* Beyond the end of the file: refused, the old table stays. */
	d[1].mmap_offset = 0x1800;
	assert_int_equal(gm_set_table(&gm, d, 2, fds), -1);
	assert_non_null(gm_translate(&gm, 0x2000, 1));
	/* Overlap in guest addresses: refused. */
	d[1].mmap_offset = 0x1000;
	d[1].gpa = 0x800;
	assert_int_equal(gm_set_table(&gm, d, 2, fds), -1);
	/* Wrapping. */
	d[1].gpa = UINT64_MAX - 0x800;
	assert_int_equal(gm_set_table(&gm, d, 2, fds), -1);
	gm_clear(&gm);
	munmap(view, 0x2000);
	close(fd);
}

static void test_decode(void **state)
{
	uint8_t buf[sizeof(struct virtio_gpu_resource_create_blob) + 2 * 16];
	struct virtio_gpu_resource_create_blob *b = (void *)buf;
	struct virtio_gpu_mem_entry e[2] = { { 0x1000, 4096, 0 }, { 0x9000, 100, 0 } };
	struct gpu_cmd c;

	(void)state;
	memset(buf, 0, sizeof(buf));
	b->hdr.type = VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB;
	b->hdr.flags = VIRTIO_GPU_FLAG_FENCE;
	b->hdr.fence_id = 5;
	b->resource_id = 7;
	b->nr_entries = 2;
	b->size = 4196;
	memcpy(buf + sizeof(*b), e, sizeof(e));
	assert_int_equal(gpu_cmd_decode(buf, sizeof(buf), &c), 0);
	assert_int_equal(c.hdr.fence_id, 5);
	assert_int_equal(c.u.blob.resource_id, 7);
	assert_int_equal(c.nr_entries, 2);
	assert_int_equal(c.entries[1].addr, 0x9000);
	assert_int_equal(c.entries[1].len, 100);
	gpu_cmd_free(&c);
	assert_int_equal(gpu_cmd_decode(buf, sizeof(buf) - 1, &c), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	gpu_cmd_free(&c);
	b->nr_entries = GPU_CMD_MAX_ENTRIES + 1;
	assert_int_equal(gpu_cmd_decode(buf, sizeof(buf), &c), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	gpu_cmd_free(&c);
	assert_int_equal(gpu_cmd_decode(buf, 23, &c), VIRTIO_GPU_RESP_ERR_UNSPEC);
	b->hdr.type = VIRTIO_GPU_CMD_SET_SCANOUT;
	assert_int_equal(gpu_cmd_decode(buf, sizeof(buf), &c), VIRTIO_GPU_RESP_ERR_UNSPEC);
	assert_int_equal(c.hdr.type, VIRTIO_GPU_CMD_SET_SCANOUT);
	assert_string_equal(gpu_cmd_name(VIRTIO_GPU_CMD_SUBMIT_3D), "SUBMIT_3D");
}

static void test_res_span(void **state)
{
	static uint8_t mem[3 * 4096];
	struct guest_mem gm;
	struct gpu_mem_entry e[3] = { { 0x2000, 10 }, { 0x0, 4096 }, { 0x1000, 7 } };
	struct res_backing *r;
	uint64_t total, avail;
	uint8_t buf[20];

	(void)state;
	gm_init(&gm);
	assert_int_equal(gm_add_host_region(&gm, 0, sizeof(mem), 0, mem), 0);
	assert_int_equal(res_check_entries(&gm, e, 3, &total), 0);
	assert_int_equal(total, 4113);
	r = res_backing_new(e, 3, false);
	assert_non_null(r);
	assert_int_equal(r->size, total);
	assert_ptr_equal(res_span(r, &gm, 0, &avail), mem + 0x2000);
	assert_int_equal(avail, 10);
	assert_ptr_equal(res_span(r, &gm, 12, &avail), mem + 2);
	assert_int_equal(avail, 4094);
	assert_ptr_equal(res_span(r, &gm, 4106, &avail), mem + 0x1000);
	assert_int_equal(avail, 7);
	assert_null(res_span(r, &gm, 4113, &avail));
	for (int i = 0; i < 20; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(res_write(r, &gm, 4100, buf, 13), 0);
	assert_int_equal(mem[4094], 4);
	assert_int_equal(mem[4095], 5);
	assert_int_equal(mem[0x1000], 6);
	assert_int_equal(mem[0x1006], 12);
	assert_int_equal(res_write(r, &gm, 4100, buf, 14), -1);
	e[2].addr = 0x3000;
	assert_int_equal(res_check_entries(&gm, e, 3, &total), -1);
	res_backing_put(r);
}

static void test_idmap(void **state)
{
	struct idmap m;
	size_t pos = 0;
	unsigned n = 0;

	(void)state;
	idmap_init(&m);
	for (uintptr_t i = 1; i <= 1000; i++)
		assert_int_equal(idmap_put(&m, (uint32_t)(i * 2654435761u), (void *)i), 0);
	for (uintptr_t i = 1; i <= 1000; i += 2)
		assert_ptr_equal(idmap_del(&m, (uint32_t)(i * 2654435761u)), (void *)i);
	for (uintptr_t i = 1; i <= 1000; i++)
		assert_ptr_equal(idmap_get(&m, (uint32_t)(i * 2654435761u)), i % 2 ? NULL : (void *)i);
	while (idmap_next(&m, &pos, NULL, NULL) >= 0)
		n++;
	assert_int_equal(n, 500);
	assert_null(idmap_get(&m, 12345));
	idmap_free(&m);
}

static void add_one(void *arg, size_t i)
{
	unsigned *v = arg;

	__atomic_fetch_add(&v[i], 1, __ATOMIC_RELAXED);
}

static void test_pool(void **state)
{
	struct pool *p = pool_new(3);
	unsigned v[1000] = { 0 };

	(void)state;
	assert_int_equal(pool_threads(p), 3);
	for (int round = 0; round < 20; round++)
		pool_run(p, add_one, v, 1000);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(v[i], 20);
	pool_free(p);
}

/* A timed wait ends at its monotonic deadline, neither at once (a realtime
 * condition variable reads it as 1970) nor never. */
static void test_mono_wait(void **state)
{
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv;
	int64_t t0, deadline;
	int r;

	(void)state;
	assert_int_equal(mono_cond_init(&cv), 0);
	pthread_mutex_lock(&m);
	t0 = mono_now_ns();
	deadline = t0 + 50 * 1000000;
	do
		r = mono_cond_wait_until(&cv, &m, deadline);
	while (r == 0);
	assert_int_equal(r, ETIMEDOUT);
	assert_true(mono_now_ns() >= deadline);
	assert_true(mono_now_ns() - t0 < 10ll * 1000000000);
	/* A deadline already past returns at once. */
	assert_int_equal(mono_cond_wait_until(&cv, &m, t0), ETIMEDOUT);
	assert_int_equal(mono_cond_wait_until(&cv, &m, -1), ETIMEDOUT);
	pthread_mutex_unlock(&m);
	pthread_cond_destroy(&cv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_translate),
		cmocka_unit_test(test_mono_wait),
		cmocka_unit_test(test_set_table),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_res_span),
		cmocka_unit_test(test_idmap),
		cmocka_unit_test(test_pool),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("units", tests, NULL, NULL);
}
