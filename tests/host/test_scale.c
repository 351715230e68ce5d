/* SPDX-License-Identifier: MIT */
/*
 * test_scale.c - the device at the scale of a model file: one guest blob
 * (a process's userptr range, as it is sent) of 1M mem entries, 4 KiB
 * each and none contiguous with the next, describing 4 GiB of guest
 * RAM. Ops reach the right guest pages at both ends and across entry
 * boundaries. Blobs of GPU_CMD_MAX_ENTRIES (4M) entries are taken, their
 * entries return to the device's limit at UNREF, and one entry more is
 * refused.
 *
 * Guest RAM is a 4 GiB anonymous MAP_NORESERVE mapping: only the pages
 * the test touches are ever allocated. The commands go straight to
 * gpu_device_execute(); the rings that carry them are tested elsewhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "engine.h"
#include "gpu_cmd.h"
#include "gpu_device.h"
#include "guest_mem.h"
#include "vgpu_compute.h"
#include "vgpu_virtio_ext.h"

#define PAGE 4096ull
#define NPAGES (1ull << 20)
#define RAM_GPA 0x100000000ull          /* guest RAM above 4 GiB */
#define RAM_SIZE (NPAGES * PAGE)        /* 4 GiB */
#define RES 7u
#define CTX 1u

static struct engine *eng;
static struct gpu_device *gpu;
static struct guest_mem gm;
static uint8_t *ram;
static uint8_t *status;                 /* a separate one-page resource */
static const uint64_t features = ~0ull;

/* Entry i of the resource is guest page (NPAGES - 1 - i): reversed, so no
 * entry continues the one before it and none can be merged. */
static uint64_t page_of(uint64_t i)
{
	return NPAGES - 1 - i;
}

/* Host address of byte `off` of the resource. */
static uint8_t *res_byte(uint64_t off)
{
	return ram + page_of(off / PAGE) * PAGE + off % PAGE;
}

static uint32_t exec(const void *buf, size_t len)
{
	uint8_t resp[GPU_RESP_MAX];
	struct virtio_gpu_ctrl_hdr h;
	size_t n = gpu_device_execute(gpu, &gm, features, buf, len, resp);

	assert_true(n >= sizeof(h));
	memcpy(&h, resp, sizeof(h));
	return h.type;
}

/* A guest blob of nr entries (the last one possibly repeated past the
 * 4 GiB: entries beyond NPAGES reuse page 0). */
static uint32_t create(uint32_t id, uint64_t nr)
{
	struct virtio_gpu_resource_create_blob *c;
	struct virtio_gpu_mem_entry *e;
	size_t len = sizeof(*c) + nr * sizeof(*e);
	uint8_t *buf = malloc(len);
	uint32_t type;

	assert_non_null(buf);
	c = (void *)buf;
	memset(c, 0, sizeof(*c));
	c->hdr.type = VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB;
	c->hdr.ctx_id = CTX;
	c->resource_id = id;
	c->blob_mem = VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST;
	c->blob_flags = 0;
	c->nr_entries = (uint32_t)nr;
	c->size = nr * PAGE;
	e = (void *)(buf + sizeof(*c));
	for (uint64_t i = 0; i < nr; i++) {
		e[i].addr = RAM_GPA + (i < NPAGES ? page_of(i) : 0) * PAGE;
		e[i].length = PAGE;
		e[i].padding = 0;
	}
	type = exec(buf, len);
	free(buf);
	return type;
}

static uint32_t ctx_res(uint32_t type, uint32_t res)
{
	struct virtio_gpu_ctx_resource c;

	memset(&c, 0, sizeof(c));
	c.hdr.type = type;
	c.hdr.ctx_id = CTX;
	c.resource_id = res;
	return exec(&c, sizeof(c));
}

static uint32_t unref(uint32_t res)
{
	struct virtio_gpu_resource_unref c;

	memset(&c, 0, sizeof(c));
	c.hdr.type = VIRTIO_GPU_CMD_RESOURCE_UNREF;
	c.resource_id = res;
	return exec(&c, sizeof(c));
}

/* One SUBMIT_3D of nops ops with a status record in resource 8. */
static struct vgpu_compute_status submit(const struct vgpu_compute_op *ops, uint32_t nops)
{
	struct {
		struct virtio_gpu_cmd_submit c;
		struct vgpu_compute_submit s;
		struct vgpu_compute_op op[4];
	} b;
	struct vgpu_compute_status st;
	uint32_t type;

	assert_true(nops <= 4);
	memset(&b, 0, sizeof(b));
	b.c.hdr.type = VIRTIO_GPU_CMD_SUBMIT_3D;
	b.c.hdr.ctx_id = CTX;
	b.c.size = (uint32_t)(sizeof(b.s) + nops * sizeof(b.op[0]));
	b.s.magic = VGPU_COMPUTE_MAGIC;
	b.s.num_ops = nops;
	b.s.status_res = 8;
	memcpy(b.op, ops, nops * sizeof(ops[0]));
	memset(status, 0xcc, sizeof(st));
	type = exec(&b, sizeof(b.c) + b.c.size);
	memcpy(&st, status, sizeof(st));
	/* A failed submit is answered ERR_INVALID_PARAMETER, with details
	 * in the status record. */
	assert_int_equal(type, st.result == VGPU_COMPUTE_OK ? VIRTIO_GPU_RESP_OK_NODATA :
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	return st;
}

static struct vgpu_compute_op op(uint32_t opc, uint64_t doff, uint64_t soff, uint64_t len,
				 uint64_t arg0)
{
	struct vgpu_compute_op o;

	memset(&o, 0, sizeof(o));
	o.opcode = opc;
	o.dst_res = RES;
	o.src_res = opc == VGPU_OP_FILL ? 0 : RES;
	o.dst_off = doff;
	o.src_off = soff;
	o.len = len;
	o.arg0 = arg0;
	return o;
}

static int setup(void **state)
{
	static const struct gpu_limits lim = { 64, 16, 2u * GPU_CMD_MAX_ENTRIES };
	struct virtio_gpu_ctx_create cc;
	struct {
		struct virtio_gpu_resource_create_blob c;
		struct virtio_gpu_mem_entry e;
	} sb;

	(void)state;
	ram = mmap(NULL, RAM_SIZE + PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(ram != MAP_FAILED);
	status = ram + RAM_SIZE;
	gm_init(&gm);
	assert_int_equal(gm_add_host_region(&gm, RAM_GPA, RAM_SIZE + PAGE, RAM_GPA, ram), 0);
	eng = engine_new(2);
	assert_non_null(eng);
	gpu = gpu_device_new(eng, &lim);
	assert_non_null(gpu);

	memset(&cc, 0, sizeof(cc));
	cc.hdr.type = VIRTIO_GPU_CMD_CTX_CREATE;
	cc.hdr.ctx_id = CTX;
	cc.context_init = VGPU_COMPUTE_CAPSET_ID;
	cc.nlen = sizeof(VGPU_COMPUTE_CTX_NAME) - 1;
	memcpy(cc.debug_name, VGPU_COMPUTE_CTX_NAME, cc.nlen);
	assert_int_equal(exec(&cc, sizeof(cc)), VIRTIO_GPU_RESP_OK_NODATA);

	/* Resource 8: the status page, just above the 4 GiB. */
	memset(&sb, 0, sizeof(sb));
	sb.c.hdr.type = VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB;
	sb.c.hdr.ctx_id = CTX;
	sb.c.resource_id = 8;
	sb.c.blob_mem = VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST;
	sb.c.blob_flags = 0;
	sb.c.nr_entries = 1;
	sb.c.size = PAGE;
	sb.e.addr = RAM_GPA + RAM_SIZE;
	sb.e.length = PAGE;
	assert_int_equal(exec(&sb, sizeof(sb)), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(ctx_res(VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE, 8), VIRTIO_GPU_RESP_OK_NODATA);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	gpu_device_free(gpu);
	engine_free(eng);
	gm_clear(&gm);
	munmap(ram, RAM_SIZE + PAGE);
	return 0;
}

/* 1M entries in one command: accepted, and the ops land where the entries
 * say, at the first byte, across entry boundaries, and at the last byte. */
static void test_million_entries(void **state)
{
	const uint64_t size = NPAGES * PAGE;
	struct vgpu_compute_op o[3];
	struct vgpu_compute_status st;

	(void)state;
	assert_int_equal(create(RES, NPAGES), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(ctx_res(VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE, RES), VIRTIO_GPU_RESP_OK_NODATA);

	/* FILL the first 3 pages and the last 2 pages less 4 bytes, then
	 * COPY 8 KiB from the start into the middle, at an odd offset. */
	o[0] = op(VGPU_OP_FILL, 0, 0, 3 * PAGE, 0xa5a5a5a5u);
	o[1] = op(VGPU_OP_FILL, size - 2 * PAGE, 0, 2 * PAGE - 4, 0x01020304u);
	o[2] = op(VGPU_OP_COPY, size / 2 + 1, 100, 2 * PAGE, 0);
	st = submit(o, 3);
	assert_int_equal(st.result, VGPU_COMPUTE_OK);
	assert_int_equal(st.ops_done, 3);

	assert_int_equal(*res_byte(0), 0xa5);
	assert_int_equal(*res_byte(3 * PAGE - 1), 0xa5);
	assert_int_equal(*res_byte(3 * PAGE), 0);
	assert_int_equal(*res_byte(size - 2 * PAGE), 0x04);
	assert_int_equal(*res_byte(size - 5), 0x01);
	assert_int_equal(*res_byte(size - 4), 0);
	assert_int_equal(*res_byte(size / 2), 0);
	for (uint64_t k = 0; k < 2 * PAGE; k++)
		assert_int_equal(*res_byte(size / 2 + 1 + k), 0xa5);
	assert_int_equal(*res_byte(size / 2 + 1 + 2 * PAGE), 0);
	/* The guest pages themselves: entry 0 is the last page of RAM. */
	assert_int_equal(ram[RAM_SIZE - PAGE], 0xa5);
	assert_int_equal(ram[0], 0x04);

	/* One byte past the end is out of range. */
	o[0] = op(VGPU_OP_FILL, size - 4, 0, 8, 0);
	st = submit(o, 1);
	assert_int_equal(st.result, VGPU_COMPUTE_E_RANGE);

	assert_int_equal(ctx_res(VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, RES), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(unref(RES), VIRTIO_GPU_RESP_OK_NODATA);
}

/* The largest blob a command may carry, 4M entries (16 GiB; the entries
 * past the 4 GiB all name page 0): taken, and its entries given back at
 * UNREF. The limit is 8M entries: with the status page's, two do not fit
 * at once, and the second fits once the first is gone. */
static void test_entries_given_back(void **state)
{
	(void)state;
	for (int round = 0; round < 2; round++) {
		assert_int_equal(create(RES, GPU_CMD_MAX_ENTRIES), VIRTIO_GPU_RESP_OK_NODATA);
		assert_int_equal(unref(RES), VIRTIO_GPU_RESP_OK_NODATA);
	}
	assert_int_equal(create(10, GPU_CMD_MAX_ENTRIES), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(create(11, GPU_CMD_MAX_ENTRIES), VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
	assert_int_equal(create(11, NPAGES), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(unref(10), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(unref(11), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(create(12, GPU_CMD_MAX_ENTRIES), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(unref(12), VIRTIO_GPU_RESP_OK_NODATA);
}

/* One entry more than a command may carry: refused, nothing created. */
static void test_one_more_entry(void **state)
{
	(void)state;
	assert_int_equal(create(RES, GPU_CMD_MAX_ENTRIES + 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(unref(RES), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_million_entries),
		cmocka_unit_test(test_entries_given_back),
		cmocka_unit_test(test_one_more_entry),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
