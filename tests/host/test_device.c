/* SPDX-License-Identifier: MIT */
/*
 * test_device.c - the device driven through vhost-user and real rings:
 * every command, every error code, multi-region memory, ring wrap-around,
 * fences, reconnect.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"
#include "stats.h"

static struct fe F;

static int setup(void **state)
{
	(void)state;
	fe_start(&F, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fe_stop(&F);
	return 0;
}

/* ---- vhost-user ---- */

static void test_vu_features(void **state)
{
	uint64_t f = fe_get_u64(&F, VU_GET_FEATURES);
	uint64_t pf = fe_get_u64(&F, VU_GET_PROTOCOL_FEATURES);

	(void)state;
	assert_true(f & (1ull << 32));                     /* VERSION_1 */
	assert_true(f & (1ull << VIRTIO_GPU_F_VIRGL));
	assert_true(f & (1ull << VIRTIO_GPU_F_RESOURCE_BLOB));
	assert_true(f & (1ull << VIRTIO_GPU_F_CONTEXT_INIT));
	assert_true(f & (1ull << VIRTIO_GPU_F_BLOB_RDONLY));
	assert_true(f & (1ull << VU_F_PROTOCOL_FEATURES));
	assert_true(pf & (1ull << VU_PROTOCOL_F_REPLY_ACK));
	assert_true(pf & (1ull << VU_PROTOCOL_F_BACKEND_REQ));
	assert_true(pf & (1ull << VU_PROTOCOL_F_CONFIG));
	assert_int_equal(fe_get_u64(&F, VU_GET_QUEUE_NUM), 2);
}

/*
 * As --no-userptr: a device that knows nothing of userptr. It does not
 * offer VIRTIO_GPU_F_BLOB_RDONLY, so the RDONLY flag is no flag of its
 * and is refused as an unknown one; a plain guest blob (what a read-write
 * userptr range is on the wire) is taken.
 */
static void test_vu_no_userptr(void **state)
{
	struct fe g;
	struct fe_opts o = { .no_userptr = true };
	struct virtio_gpu_mem_entry e;
	uint64_t res;

	(void)state;
	fe_start(&g, &o);
	assert_false(fe_get_u64(&g, VU_GET_FEATURES) & (1ull << VIRTIO_GPU_F_BLOB_RDONLY));
	assert_true(fe_get_u64(&g, VU_GET_FEATURES) & (1ull << VIRTIO_GPU_F_RESOURCE_BLOB));
	e.addr = fe_alloc(&g, 1, 4096, 0);
	e.length = 4096;
	e.padding = 0;
	res = STAT_GET(resources);
	assert_int_equal(cmd_blob(&g, 0, 1, VIRTIO_GPU_BLOB_MEM_GUEST,
				  VIRTIO_GPU_BLOB_FLAG_RDONLY, 4096, &e, 1),
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_blob(&g, 0, 1, VIRTIO_GPU_BLOB_MEM_GUEST, 0x0100, 4096, &e, 1),
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(STAT_GET(resources), res);
	assert_int_equal(cmd_blob(&g, 0, 1, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 4096, &e, 1),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(resources), res + 1);
	/* Acknowledging a feature that was not offered fails. */
	{
		uint64_t feat = g.features | (1ull << VIRTIO_GPU_F_BLOB_RDONLY);

		assert_int_equal(fe_ack(&g, VU_SET_FEATURES, &feat, 8, NULL, 0), 1);
	}
	fe_stop(&g);
}

/*
 * The RDONLY flag follows the negotiated features, not the offered ones:
 * a driver that did not acknowledge VIRTIO_GPU_F_BLOB_RDONLY gets it
 * refused as an unknown flag, one that did gets a read-only blob.
 */
static void test_rdonly_negotiated(void **state)
{
	const uint32_t G = VIRTIO_GPU_BLOB_MEM_GUEST, RO = VIRTIO_GPU_BLOB_FLAG_RDONLY;
	uint64_t feat = F.features & ~(1ull << VIRTIO_GPU_F_BLOB_RDONLY);
	struct virtio_gpu_mem_entry e = { fe_alloc(&F, 1, 4096, 0), 4096, 0 };
	uint64_t res = STAT_GET(resources);

	(void)state;
	assert_true(F.features & (1ull << VIRTIO_GPU_F_BLOB_RDONLY));
	assert_int_equal(fe_ack(&F, VU_SET_FEATURES, &feat, 8, NULL, 0), 0);
	assert_int_equal(cmd_blob(&F, 0, 1, G, RO, 4096, &e, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(STAT_GET(resources), res);
	/* Without the flag the same request is taken. */
	assert_int_equal(cmd_blob(&F, 0, 1, G, 0, 4096, &e, 1), VIRTIO_GPU_RESP_OK_NODATA);
	feat = F.features;
	assert_int_equal(fe_ack(&F, VU_SET_FEATURES, &feat, 8, NULL, 0), 0);
	assert_int_equal(cmd_blob(&F, 0, 2, G, RO, 4096, &e, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(resources), res + 2);
}

/*
 * The wire values collide with no other implementation: crosvm and libkrun
 * use feature bits 5 (RESOURCE_SYNC / FENCE_PASSING) and 6
 * (CREATE_GUEST_HANDLE) and blob flag 0x0008 (CREATE_GUEST_HANDLE). The
 * device offers neither bit, and a blob with 0x0008 is refused as any
 * unknown flag is. So is 0x0100, the userptr flag of the extension's
 * previous version: a read-write userptr range is a plain guest blob now.
 */
static void test_wire_values(void **state)
{
	const uint32_t G = VIRTIO_GPU_BLOB_MEM_GUEST;
	struct fe g;
	struct fe_opts o = { .no_userptr = true };
	struct virtio_gpu_mem_entry e;
	uint64_t res;

	(void)state;
	assert_int_equal(VIRTIO_GPU_F_BLOB_RDONLY, 16);
	assert_int_equal(VIRTIO_GPU_BLOB_FLAG_RDONLY, 0x0200);
	assert_false(fe_get_u64(&F, VU_GET_FEATURES) & ((1ull << 5) | (1ull << 6)));
	fe_start(&g, &o);
	assert_false(fe_get_u64(&g, VU_GET_FEATURES) & ((1ull << 5) | (1ull << 6)));
	fe_stop(&g);

	e.addr = fe_alloc(&F, 1, 4096, 0);
	e.length = 4096;
	e.padding = 0;
	res = STAT_GET(resources);
	assert_int_equal(cmd_blob(&F, 0, 1, G, 0x0008, 4096, &e, 1),
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_blob(&F, 0, 1, G, 0x0008 | 0x0010, 4096, &e, 1),
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_blob(&F, 0, 1, G, 0x0100, 4096, &e, 1),
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_blob(&F, 0, 1, G, 0x0100 | VIRTIO_GPU_BLOB_FLAG_RDONLY, 4096, &e, 1),
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_blob(&F, 0, 1, G, 0x0008 | VIRTIO_GPU_BLOB_FLAG_RDONLY, 4096, &e, 1),
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(STAT_GET(resources), res);
	/* The same request without the unknown bits is taken, plain and
	 * read-only. */
	assert_int_equal(cmd_blob(&F, 0, 1, G, 0, 4096, &e, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_blob(&F, 0, 2, G, VIRTIO_GPU_BLOB_FLAG_RDONLY, 4096, &e, 1),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(resources), res + 2);
}

/*
 * A device with scanouts (--scanouts): the config space says how many,
 * and GET_DISPLAY_INFO connects no display to any of them.
 */
static void test_vu_scanouts(void **state)
{
	struct fe g;
	struct fe_opts o = { .num_scanouts = 2 };
	struct virtio_gpu_ctrl_hdr h;
	struct virtio_gpu_resp_display_info di;
	uint8_t req[12 + 16], rep[12 + 256];
	uint32_t r, fl, sz, v;
	struct virtio_gpu_config cfg;

	(void)state;
	fe_start(&g, &o);
	memset(req, 0, sizeof(req));
	v = 0; memcpy(req, &v, 4);
	v = 16; memcpy(req + 4, &v, 4);
	assert_int_equal(fe_send(&g, VU_GET_CONFIG, VU_VERSION, req, 12 + 16, NULL, 0), 0);
	assert_int_equal(fe_recv(&g, &r, &fl, rep, sizeof(rep), &sz), 0);
	assert_int_equal(sz, 12 + 16);
	memcpy(&cfg, rep + 12, 16);
	assert_int_equal(le32toh(cfg.num_scanouts), 2);
	assert_int_equal(le32toh(cfg.num_capsets), 1);
	hdr_init(&h, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
	memset(&di, 0xff, sizeof(di));
	assert_int_equal(fe_cmd(&g, 0, &h, sizeof(h), &di, sizeof(di), 1), sizeof(di));
	assert_int_equal(di.hdr.type, VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
	for (int i = 0; i < VIRTIO_GPU_MAX_SCANOUTS; i++) {
		assert_int_equal(di.pmodes[i].enabled, 0);
		assert_int_equal(di.pmodes[i].r.width, 0);
		assert_int_equal(di.pmodes[i].r.height, 0);
	}
	fe_stop(&g);
}

static void test_vu_config(void **state)
{
	uint8_t req[12 + 16], rep[12 + 256];
	uint32_t r, fl, sz, v;
	struct virtio_gpu_config cfg;

	(void)state;
	memset(req, 0, sizeof(req));
	v = 0; memcpy(req, &v, 4);            /* offset */
	v = 16; memcpy(req + 4, &v, 4);       /* size */
	assert_int_equal(fe_send(&F, VU_GET_CONFIG, VU_VERSION, req, 12 + 16, NULL, 0), 0);
	assert_int_equal(fe_recv(&F, &r, &fl, rep, sizeof(rep), &sz), 0);
	assert_int_equal(r, VU_GET_CONFIG);
	assert_int_equal(sz, 12 + 16);
	memcpy(&cfg, rep + 12, 16);
	assert_int_equal(cfg.num_scanouts, 0);
	assert_int_equal(cfg.num_capsets, 1);
	assert_int_equal(cfg.events_read, 0);
	/* One field, as UML reads it. */
	v = 12; memcpy(req, &v, 4);
	v = 4; memcpy(req + 4, &v, 4);
	assert_int_equal(fe_send(&F, VU_GET_CONFIG, VU_VERSION, req, 12 + 4, NULL, 0), 0);
	assert_int_equal(fe_recv(&F, &r, &fl, rep, sizeof(rep), &sz), 0);
	assert_int_equal(sz, 16);
	memcpy(&v, rep + 12, 4);
	assert_int_equal(v, 1);
	/* Outside the config space: an empty answer. */
	v = 14; memcpy(req, &v, 4);
	v = 4; memcpy(req + 4, &v, 4);
	assert_int_equal(fe_send(&F, VU_GET_CONFIG, VU_VERSION, req, 12 + 4, NULL, 0), 0);
	assert_int_equal(fe_recv(&F, &r, &fl, rep, sizeof(rep), &sz), 0);
	assert_int_equal(sz, 0);
	/* events_clear is writable, num_capsets is not. */
	v = 4; memcpy(req, &v, 4);
	v = 4; memcpy(req + 4, &v, 4);
	v = 1; memcpy(req + 12, &v, 4);
	assert_int_equal(fe_ack(&F, VU_SET_CONFIG, req, 16, NULL, 0), 0);
	v = 12; memcpy(req, &v, 4);
	assert_int_equal(fe_ack(&F, VU_SET_CONFIG, req, 16, NULL, 0), 1);
}

static void test_vu_bad_messages(void **state)
{
	struct vhost_vring_state st;
	struct vhost_vring_addr a;
	uint8_t mt[8 + 32];
	uint64_t v;
	int fd = dup(0);

	(void)state;
	/* Unknown request with NEED_REPLY: a NACK. */
	assert_int_equal(fe_ack(&F, 37, NULL, 0, NULL, 0), 1);
	/* Ring index out of range, size not a power of two, too large. */
	st.index = 2; st.num = 16;
	assert_int_equal(fe_ack(&F, VU_SET_VRING_NUM, &st, sizeof(st), NULL, 0), 1);
	st.index = 0; st.num = 24;
	assert_int_equal(fe_ack(&F, VU_SET_VRING_ENABLE, &st, sizeof(st), NULL, 0), 1);
	assert_int_equal(fe_ack(&F, VU_SET_VRING_NUM, &st, sizeof(st), NULL, 0), 1);
	st.num = 65536;
	assert_int_equal(fe_ack(&F, VU_SET_VRING_NUM, &st, sizeof(st), NULL, 0), 1);
	/* Wrong payload size. */
	assert_int_equal(fe_ack(&F, VU_SET_VRING_NUM, &st, 4, NULL, 0), 1);
	/* Ring outside guest memory (the hole). */
	memset(&a, 0, sizeof(a));
	a.index = 1;
	a.desc_user_addr = FE_HOLE + FE_QVA_BIAS;
	a.avail_user_addr = FE_HOLE + FE_QVA_BIAS + 0x1000;
	a.used_user_addr = FE_HOLE + FE_QVA_BIAS + 0x2000;
	assert_int_equal(fe_ack(&F, VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0), 1);
	/* Mem table: region count and fd count disagree; zero size. */
	memset(mt, 0, sizeof(mt));
	mt[0] = 1;
	assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, sizeof(mt), NULL, 0), 1);
	v = 0x1000;
	memcpy(mt + 8, &v, 8);          /* gpa, size 0 */
	assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, sizeof(mt), &F.memfd, 1), 1);
	/* A region larger than the file behind it. */
	v = 0x10000000;
	memcpy(mt + 16, &v, 8);
	assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, sizeof(mt), &F.memfd, 1), 1);
	/* Kick with junk bits; fds on a message that takes none (closed). */
	v = 0x10000;
	assert_int_equal(fe_ack(&F, VU_SET_VRING_KICK, &v, 8, &fd, 1), 1);
	assert_int_equal(fe_ack(&F, VU_SET_OWNER, NULL, 0, &fd, 1), 1);
	v = 1ull << 40;
	assert_int_equal(fe_ack(&F, VU_SET_PROTOCOL_FEATURES, &v, 8, NULL, 0), 1);
	close(fd);
	/* The device still works after all that. */
	{
		struct virtio_gpu_ctrl_hdr h;

		hdr_init(&h, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
		assert_int_equal(fe_cmd(&F, 0, &h, sizeof(h), NULL, 0, 1), 0);
	}
	assert_true(STAT_GET(vu_errors) >= 12);
}

static void test_vu_oversized_disconnects(void **state)
{
	uint32_t h[3] = { VU_SET_FEATURES, VU_VERSION, 1u << 20 };
	int i;

	(void)state;
	assert_int_equal(write(F.sock, h, 12), 12);
	/* The device ends the connection (the daemon then closes it). */
	for (i = 0; i < 300 && !__atomic_load_n(&F.exited, __ATOMIC_ACQUIRE); i++)
		usleep(10000);
	assert_true(__atomic_load_n(&F.exited, __ATOMIC_ACQUIRE));
}

static void test_vu_mem_table_padded(void **state)
{
	/* UML sends room for two regions even when it uses one. */
	struct vu_mem_region r[2] = {
		{ FE_R0, 0x100000, FE_R0 + FE_QVA_BIAS, 0 },
		{ 0, 0, 0, 0 },
	};
	uint8_t mt[8 + sizeof(r)];
	struct virtio_gpu_ctrl_hdr h;

	(void)state;
	memset(mt, 0, sizeof(mt));
	mt[0] = 1;
	memcpy(mt + 8, r, sizeof(r));
	assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, sizeof(mt), &F.memfd, 1), 0);
	/* Rings are in R0: still served. R1 is gone: a request there is not. */
	F.reg[1].size = 0x100000;
	hdr_init(&h, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
	assert_int_equal(fe_cmd(&F, 0, &h, sizeof(h), &h, sizeof(h), 1), 0);
	assert_true(STAT_GET(bad_chains) >= 1);
	/* More regions than fds, and more than the payload holds. */
	mt[0] = 2;
	assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, sizeof(mt), &F.memfd, 1), 1);
	mt[0] = 3;
	assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, mt, sizeof(mt), &F.memfd, 1), 1);
}

static void test_vu_call_fds(void **state)
{
	struct virtio_gpu_ctrl_hdr h;
	struct pollfd p;
	uint64_t v = 0, cnt;
	int call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), err = eventfd(0, EFD_CLOEXEC);
	uint16_t u;

	(void)state;
	hdr_init(&h, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
	/* A new call fd replaces the old one (QEMU sends it again). */
	assert_int_equal(fe_ack(&F, VU_SET_VRING_CALL, &v, 8, &call, 1), 0);
	u = (uint16_t)(F.ring[0].avail_idx + 1);
	fe_post(&F, 0, &h, sizeof(h), 0, 1);
	fe_kick(&F, 0);
	p.fd = call;
	p.events = POLLIN;
	assert_int_equal(poll(&p, 1, 3000), 1);
	assert_int_equal(read(call, &cnt, 8), 8);
	assert_int_equal(F.ring[0].used->idx, u);
	/* The driver asks for no interrupts: the used ring moves, no signal. */
	F.ring[0].avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	fe_post(&F, 0, &h, sizeof(h), 0, 1);
	fe_kick(&F, 0);
	assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(u + 1), 3000), 0);
	assert_int_equal(poll(&p, 1, 200), 0);
	F.ring[0].avail->flags = 0;
	/* SET_VRING_ERR takes an fd; a kick without fd (polling) is refused. */
	assert_int_equal(fe_ack(&F, VU_SET_VRING_ERR, &v, 8, &err, 1), 0);
	v = VU_VRING_NOFD_MASK;
	assert_int_equal(fe_ack(&F, VU_SET_VRING_KICK, &v, 8, NULL, 0), 1);
	/* A call fd "none" is accepted: no more signals. */
	assert_int_equal(fe_ack(&F, VU_SET_VRING_CALL, &v, 8, NULL, 0), 0);
	close(call);
	close(err);
}

static void test_vu_get_vring_base(void **state)
{
	struct vhost_vring_state st = { 0, 0 };
	struct virtio_gpu_ctrl_hdr h;
	uint32_t r, fl, sz;
	uint64_t v = 0;
	int kick;

	(void)state;
	hdr_init(&h, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(fe_cmd(&F, 0, &h, sizeof(h), NULL, 0, 1), 0);
	assert_int_equal(fe_send(&F, VU_GET_VRING_BASE, VU_VERSION, &st, sizeof(st), NULL, 0), 0);
	assert_int_equal(fe_recv(&F, &r, &fl, &st, sizeof(st), &sz), 0);
	assert_int_equal(sz, sizeof(st));
	assert_int_equal(st.index, 0);
	assert_int_equal(st.num, 3);
	/* Stopped: a request is not served... */
	fe_post(&F, 0, &h, sizeof(h), 0, 1);
	fe_kick(&F, 0);
	assert_int_equal(fe_wait_used(&F, 0, 4, 200), -1);
	/* ...until the ring is started again with a new kick fd. */
	kick = dup(F.ring[0].kick);
	assert_int_equal(fe_ack(&F, VU_SET_VRING_KICK, &v, 8, &kick, 1), 0);
	close(kick);
	fe_kick(&F, 0);
	assert_int_equal(fe_wait_used(&F, 0, 4, 3000), 0);
}

/* QEMU's stop of the device: both rings disabled, their bases read. */
static void stop_rings_as_qemu(void)
{
	struct vhost_vring_state st = { 0, 0 };
	uint32_t r, fl, sz;

	for (uint32_t q = 0; q < 2; q++) {
		st.index = q;
		st.num = 0;
		assert_int_equal(fe_ack(&F, VU_SET_VRING_ENABLE, &st, sizeof(st), NULL, 0), 0);
		assert_int_equal(fe_send(&F, VU_GET_VRING_BASE, VU_VERSION, &st, sizeof(st), NULL, 0), 0);
		assert_int_equal(fe_recv(&F, &r, &fl, &st, sizeof(st), &sz), 0);
		assert_int_equal(r, VU_GET_VRING_BASE);
	}
}

/*
 * The device status as QEMU drives it (protocol feature STATUS): status
 * bits added with GET_STATUS + SET_STATUS at start, 0 at a reset from the
 * guest after the rings were stopped. The reset empties the device
 * (resources, contexts), the connection stays, and the driver's next
 * probe can reuse the same ids.
 */
static void test_vu_status_reset(void **state)
{
	struct virtio_gpu_mem_entry e = { 0 };
	uint32_t G = VIRTIO_GPU_BLOB_MEM_GUEST;
	uint64_t v;

	(void)state;
	assert_true(fe_get_u64(&F, VU_GET_PROTOCOL_FEATURES) & (1ull << VU_PROTOCOL_F_STATUS));
	assert_int_equal(fe_get_u64(&F, VU_GET_STATUS), 0);
	v = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
	assert_int_equal(fe_ack(&F, VU_SET_STATUS, &v, 8, NULL, 0), 0);
	v |= VIRTIO_CONFIG_S_DRIVER_OK;
	assert_int_equal(fe_ack(&F, VU_SET_STATUS, &v, 8, NULL, 0), 0);
	assert_int_equal(fe_get_u64(&F, VU_GET_STATUS), v);
	/* Out of range: refused, the status kept. */
	v = 0x100;
	assert_int_equal(fe_ack(&F, VU_SET_STATUS, &v, 8, NULL, 0), 1);
	assert_int_equal(fe_get_u64(&F, VU_GET_STATUS), 0xf);

	e.addr = fe_alloc(&F, 1, 4096, 0);
	e.length = 4096;
	assert_int_equal(cmd_blob(&F, 0, 1, G, 0, 4096, &e, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(resources), 1);
	assert_int_equal(STAT_GET(contexts), 1);

	/* QEMU's stop: rings disabled, their bases read, then status 0. */
	stop_rings_as_qemu();
	v = 0;
	assert_int_equal(fe_ack(&F, VU_SET_STATUS, &v, 8, NULL, 0), 0);
	assert_int_equal(fe_get_u64(&F, VU_GET_STATUS), 0);
	assert_int_equal(STAT_GET(resources), 0);
	assert_int_equal(STAT_GET(contexts), 0);
}

/*
 * RESET_DEVICE, as QEMU sends it from a guest's reset of the device: the
 * rings stopped with GET_VRING_BASE first (which alone, as on a VM stop,
 * keeps every state), then the device's resources and contexts go.
 */
static void test_vu_reset_device(void **state)
{
	struct virtio_gpu_mem_entry e = { 0 };
	uint32_t G = VIRTIO_GPU_BLOB_MEM_GUEST;

	(void)state;
	assert_true(fe_get_u64(&F, VU_GET_PROTOCOL_FEATURES) & (1ull << VU_PROTOCOL_F_RESET_DEVICE));
	e.addr = fe_alloc(&F, 1, 4096, 0);
	e.length = 4096;
	assert_int_equal(cmd_blob(&F, 0, 1, G, 0, 4096, &e, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, 1), VIRTIO_GPU_RESP_OK_NODATA);
	stop_rings_as_qemu();
	/* The rings' stop alone keeps the state. */
	assert_int_equal(STAT_GET(resources), 1);
	assert_int_equal(STAT_GET(contexts), 1);
	assert_int_equal(fe_ack(&F, VU_RESET_DEVICE, NULL, 0, NULL, 0), 0);
	assert_int_equal(STAT_GET(resources), 0);
	assert_int_equal(STAT_GET(contexts), 0);
	assert_int_equal(fe_get_u64(&F, VU_GET_STATUS), 0);
	/* A second one, on the empty device, is no error either. */
	assert_int_equal(fe_ack(&F, VU_RESET_DEVICE, NULL, 0, NULL, 0), 0);
}

/* ---- commands ---- */

static void test_display_info(void **state)
{
	struct virtio_gpu_ctrl_hdr h;
	struct virtio_gpu_resp_display_info di;

	(void)state;
	hdr_init(&h, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
	assert_int_equal(fe_cmd(&F, 0, &h, sizeof(h), &di, sizeof(di), 1), sizeof(di));
	assert_int_equal(di.hdr.type, VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
	for (int i = 0; i < VIRTIO_GPU_MAX_SCANOUTS; i++) {
		assert_int_equal(di.pmodes[i].enabled, 0);
		assert_int_equal(di.pmodes[i].r.width, 0);
	}
}

static void test_capset(void **state)
{
	struct virtio_gpu_get_capset_info ci;
	struct virtio_gpu_resp_capset_info rci;
	struct virtio_gpu_get_capset gc;
	uint8_t resp[sizeof(struct virtio_gpu_ctrl_hdr) + sizeof(struct vgpu_compute_caps)];
	struct vgpu_compute_caps caps;

	(void)state;
	memset(&ci, 0, sizeof(ci));
	hdr_init(&ci.hdr, VIRTIO_GPU_CMD_GET_CAPSET_INFO, 0);
	assert_int_equal(fe_cmd(&F, 0, &ci, sizeof(ci), &rci, sizeof(rci), 1), sizeof(rci));
	assert_int_equal(rci.hdr.type, VIRTIO_GPU_RESP_OK_CAPSET_INFO);
	assert_int_equal(rci.capset_id, VGPU_COMPUTE_CAPSET_ID);
	assert_int_equal(rci.capset_max_version, VGPU_COMPUTE_CAPSET_VERSION);
	assert_int_equal(rci.capset_max_version, 3);
	assert_int_equal(rci.capset_max_size, sizeof(struct vgpu_compute_caps));
	ci.capset_index = 1;
	assert_int_equal(fe_cmd_simple(&F, &ci, sizeof(ci)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);

	memset(&gc, 0, sizeof(gc));
	hdr_init(&gc.hdr, VIRTIO_GPU_CMD_GET_CAPSET, 0);
	gc.capset_id = VGPU_COMPUTE_CAPSET_ID;
	/* A guest written for version 1 gets version 1's layout and ops. */
	gc.capset_version = 1;
	memset(resp, 0xaa, sizeof(resp));
	assert_int_equal(fe_cmd(&F, 0, &gc, sizeof(gc), resp, sizeof(resp), 1),
			 sizeof(struct virtio_gpu_ctrl_hdr) + VGPU_COMPUTE_CAPS_V1_SIZE);
	assert_int_equal(((struct virtio_gpu_ctrl_hdr *)resp)->type, VIRTIO_GPU_RESP_OK_CAPSET);
	memcpy(&caps, resp + sizeof(struct virtio_gpu_ctrl_hdr), sizeof(caps));
	assert_int_equal(caps.version, 1);
	assert_int_equal(caps.max_ops, VGPU_COMPUTE_MAX_OPS);
	assert_int_equal(caps.op_mask, 0x3f);
	assert_int_equal(caps.num_threads, 2);
	assert_true(caps.max_op_bytes >= (1ull << 30));
	/* Version 2: SGEMM, REDUCE_F32 and the backend. */
	gc.capset_version = 2;
	assert_int_equal(fe_cmd(&F, 0, &gc, sizeof(gc), resp, sizeof(resp), 1),
			 sizeof(struct virtio_gpu_ctrl_hdr) + VGPU_COMPUTE_CAPS_V2_SIZE);
	assert_int_equal(((struct virtio_gpu_ctrl_hdr *)resp)->type, VIRTIO_GPU_RESP_OK_CAPSET);
	memcpy(&caps, resp + sizeof(struct virtio_gpu_ctrl_hdr), sizeof(caps));
	assert_int_equal(caps.version, 2);
	assert_int_equal(caps.op_mask, 0xff);
	assert_int_equal(caps.backend, VGPU_BACKEND_CPU);
	assert_int_equal(caps.max_gemm_dim, VGPU_COMPUTE_MAX_GEMM_DIM);
	/* Version 3: the programs' fields; a device without programs says
	 * so (features 0) and keeps version 2's ops. */
	gc.capset_version = 3;
	assert_int_equal(fe_cmd(&F, 0, &gc, sizeof(gc), resp, sizeof(resp), 1), sizeof(resp));
	memcpy(&caps, resp + sizeof(struct virtio_gpu_ctrl_hdr), sizeof(caps));
	assert_int_equal(caps.version, 3);
	assert_int_equal(caps.op_mask, 0xff);
	assert_int_equal(caps.features, 0);
	assert_int_equal(caps.max_programs, 0);
	gc.capset_version = 4;
	assert_int_equal(fe_cmd_simple(&F, &gc, sizeof(gc)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	gc.capset_version = 0;
	assert_int_equal(fe_cmd_simple(&F, &gc, sizeof(gc)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	gc.capset_version = 1;
	gc.capset_id = 1;
	assert_int_equal(fe_cmd_simple(&F, &gc, sizeof(gc)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	/* A response buffer too small for the capset: ERR_UNSPEC in the header. */
	gc.capset_id = VGPU_COMPUTE_CAPSET_ID;
	assert_int_equal(fe_cmd_simple(&F, &gc, sizeof(gc)), VIRTIO_GPU_RESP_ERR_UNSPEC);
}

static void test_ctx(void **state)
{
	(void)state;
	assert_int_equal(cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
	assert_int_equal(cmd_ctx_create(&F, 0, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
	assert_int_equal(cmd_ctx_create(&F, 2, 0), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_ctx_create(&F, 3, VIRTIO_GPU_CAPSET_VIRGL), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_ctx_create(&F, 3, 0x100 | VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(STAT_GET(contexts), 2);
	assert_int_equal(cmd_ctx_destroy(&F, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_ctx_destroy(&F, 1), VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
	assert_int_equal(cmd_ctx_destroy(&F, 2), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(contexts), 0);
	/* nlen beyond debug_name */
	{
		struct virtio_gpu_ctx_create c;

		memset(&c, 0, sizeof(c));
		hdr_init(&c.hdr, VIRTIO_GPU_CMD_CTX_CREATE, 5);
		c.nlen = 65;
		assert_int_equal(fe_cmd_simple(&F, &c, sizeof(c)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	}
}

static void test_blob_create(void **state)
{
	struct virtio_gpu_mem_entry e[3];
	uint32_t G = VIRTIO_GPU_BLOB_MEM_GUEST;
	const uint32_t RO = VIRTIO_GPU_BLOB_FLAG_RDONLY;

	(void)state;
	/* Entries in two regions, the out buffer split over three descriptors. */
	e[0].addr = fe_alloc(&F, 1, 4096, 0); e[0].length = 4096; e[0].padding = 0;
	e[1].addr = fe_alloc(&F, 2, 8192, 0); e[1].length = 8192; e[1].padding = 0;
	assert_int_equal(cmd_blob_ex(&F, 0, 1, G, 0, 12288, e, 2, 2, 3), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(resources), 1);
	assert_int_equal(STAT_GET(resource_bytes), 12288);
	assert_int_equal(cmd_blob(&F, 0, 1, G, 0, 12288, e, 2), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(cmd_blob(&F, 0, 0, G, 0, 12288, e, 2), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	/* Size does not match the entries. */
	assert_int_equal(cmd_blob(&F, 0, 2, G, 0, 12289, e, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_blob(&F, 0, 2, G, 0, 0, e, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	/* More entries claimed than the buffer holds. */
	assert_int_equal(cmd_blob_ex(&F, 0, 2, G, 0, 12288, e, 2, 3, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_blob_ex(&F, 0, 2, G, 0, 12288, e, 2, 0xffffffffu, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_blob(&F, 0, 2, G, 0, 0, e, 0), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	/* blob_mem */
	assert_int_equal(cmd_blob(&F, 0, 2, VIRTIO_GPU_BLOB_MEM_HOST3D, 0, 12288, e, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_blob(&F, 0, 2, 0, 0, 12288, e, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	/* HOST3D_GUEST needs a context. */
	assert_int_equal(cmd_blob(&F, 7, 2, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST, 0, 12288, e, 2), VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
	assert_int_equal(cmd_ctx_create(&F, 7, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_blob(&F, 7, 2, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST, 0, 12288, e, 2), VIRTIO_GPU_RESP_OK_NODATA);
	/* Flags: RDONLY never with a mapping or an export, nor with host
	 * memory; unknown flags (0x0100 included) never. */
	assert_int_equal(cmd_blob(&F, 0, 3, G, RO | VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE, 12288, e, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_blob(&F, 0, 3, G, RO | VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE, 12288, e, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_blob(&F, 0, 3, G, RO | VIRTIO_GPU_BLOB_FLAG_USE_CROSS_DEVICE, 12288, e, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_blob(&F, 7, 3, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST, RO | VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE, 12288, e, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_blob(&F, 0, 3, VIRTIO_GPU_BLOB_MEM_HOST3D, RO, 12288, e, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_blob(&F, 7, 3, VIRTIO_GPU_BLOB_MEM_HOST3D, RO, 12288, e, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_blob(&F, 0, 3, G, 0x400, 12288, e, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_blob(&F, 0, 3, G, 0x100, 12288, e, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(STAT_GET(resources), 2);
	assert_int_equal(cmd_blob(&F, 0, 3, G, RO, 12288, e, 2), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_blob(&F, 0, 4, G, VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE, 12288, e, 2), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_blob(&F, 7, 6, VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST, RO, 12288, e, 2), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 6), VIRTIO_GPU_RESP_OK_NODATA);

	/* Entries outside RAM, wrapping, crossing a region boundary, empty. */
	e[2].padding = 0;
	e[2].addr = FE_HOLE; e[2].length = 4096;
	assert_int_equal(cmd_blob(&F, 0, 5, G, 0, 4096, &e[2], 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	e[2].addr = 0xfffffffffffff000ull; e[2].length = 0x2000;
	assert_int_equal(cmd_blob(&F, 0, 5, G, 0, 0x2000, &e[2], 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	e[2].addr = FE_R2 - 0x1000; e[2].length = 0x2000;   /* R1 end .. R2 start */
	assert_int_equal(cmd_blob(&F, 0, 5, G, 0, 0x2000, &e[2], 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	e[2].addr = FE_R2 + 0x1ff000 - 0x800; e[2].length = 0x1000;  /* past R2 end */
	assert_int_equal(cmd_blob(&F, 0, 5, G, 0, 0x1000, &e[2], 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	e[2].addr = FE_R1; e[2].length = 0;
	assert_int_equal(cmd_blob(&F, 0, 5, G, 0, 0, &e[2], 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	/* The last byte of a region is fine. */
	e[2].addr = FE_R2 + 0x1ff000 - 1; e[2].length = 1;
	assert_int_equal(cmd_blob(&F, 0, 5, G, 0, 1, &e[2], 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(resources), 5);

	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 1), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(STAT_GET(resources), 4);
}

static void test_backing(void **state)
{
	struct virtio_gpu_mem_entry e = { 0, 4096, 0 };
	uint8_t buf[sizeof(struct virtio_gpu_resource_attach_backing) + 2 * sizeof(e)];
	struct virtio_gpu_resource_attach_backing *ab = (void *)buf;
	uint64_t bk;

	(void)state;
	e.addr = simple_blob(&F, 0, 1, 0, 1, 4096);
	assert_true(e.addr);
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 9), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);

	memset(buf, 0, sizeof(buf));
	hdr_init(&ab->hdr, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, 0);
	ab->resource_id = 1;
	ab->nr_entries = 1;
	memcpy(buf + sizeof(*ab), &e, sizeof(e));
	assert_int_equal(fe_cmd_simple(&F, buf, sizeof(*ab) + sizeof(e)), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(fe_cmd_simple(&F, buf, sizeof(*ab) + sizeof(e)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	ab->resource_id = 9;
	assert_int_equal(fe_cmd_simple(&F, buf, sizeof(*ab) + sizeof(e)), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	ab->resource_id = 1;
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 1), VIRTIO_GPU_RESP_OK_NODATA);
	ab->nr_entries = 2;   /* only one entry follows */
	assert_int_equal(fe_cmd_simple(&F, buf, sizeof(*ab) + sizeof(e)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	ab->nr_entries = 0;
	assert_int_equal(fe_cmd_simple(&F, buf, sizeof(*ab)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	ab->nr_entries = 1;
	e.addr = FE_HOLE;
	memcpy(buf + sizeof(*ab), &e, sizeof(e));
	assert_int_equal(fe_cmd_simple(&F, buf, sizeof(*ab) + sizeof(e)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	e.addr = FE_R1; e.length = 8192;   /* total != size */
	memcpy(buf + sizeof(*ab), &e, sizeof(e));
	assert_int_equal(fe_cmd_simple(&F, buf, sizeof(*ab) + sizeof(e)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);

	/* Every blob follows the same rules, a read-only one (on the wire
	 * all that tells a userptr range from other guest memory) included:
	 * ATTACH only on one without backing, DETACH only on one with. */
	bk = STAT_GET(backings);
	e.addr = simple_blob(&F, 0, 2, VIRTIO_GPU_BLOB_FLAG_RDONLY, 1, 4096);
	assert_true(e.addr);
	assert_int_equal(STAT_GET(backings), bk + 1);
	e.length = 4096;
	ab->resource_id = 2;
	memcpy(buf + sizeof(*ab), &e, sizeof(e));
	assert_int_equal(fe_cmd_simple(&F, buf, sizeof(*ab) + sizeof(e)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(STAT_GET(backings), bk + 1);
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 2), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(backings), bk);
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(fe_cmd_simple(&F, buf, sizeof(*ab) + sizeof(e)), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(backings), bk + 1);
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 2), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(backings), bk);
}

static void test_ctx_attach(void **state)
{
	(void)state;
	assert_true(simple_blob(&F, 0, 1, 0, 1, 4096));
	assert_int_equal(cmd_ctx_create(&F, 1, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 2, 1), VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
	assert_int_equal(cmd_attach(&F, 1, 2), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(cmd_attach(&F, 1, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_ctx_res(&F, VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, 1, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_ctx_res(&F, VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, 1, 1), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(cmd_ctx_res(&F, VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, 3, 1), VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
	assert_int_equal(cmd_ctx_res(&F, VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, 1, 5), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	/* Unref while attached detaches it everywhere. */
	assert_int_equal(cmd_attach(&F, 1, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_res(&F, VIRTIO_GPU_CMD_RESOURCE_UNREF, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_ctx_res(&F, VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, 1, 1), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
}

static void test_unsupported_and_short(void **state)
{
	struct virtio_gpu_resource_create_2d c2;
	struct virtio_gpu_ctrl_hdr h;
	struct virtio_gpu_update_cursor cur;
	int before = (int)STAT_GET(cmd_errors);

	(void)state;
	memset(&c2, 0, sizeof(c2));
	hdr_init(&c2.hdr, VIRTIO_GPU_CMD_RESOURCE_CREATE_2D, 0);
	c2.resource_id = 1;
	assert_int_equal(fe_cmd_simple(&F, &c2, sizeof(c2)), VIRTIO_GPU_RESP_ERR_UNSPEC);
	hdr_init(&h, 0x9999, 0);
	assert_int_equal(fe_cmd_simple(&F, &h, sizeof(h)), VIRTIO_GPU_RESP_ERR_UNSPEC);
	/* Shorter than its structure. */
	hdr_init(&h, VIRTIO_GPU_CMD_RESOURCE_UNREF, 0);
	assert_int_equal(fe_cmd_simple(&F, &h, sizeof(h)), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	/* Shorter than a header. */
	assert_int_equal(fe_cmd_simple(&F, &h, 10), VIRTIO_GPU_RESP_ERR_UNSPEC);
	/* A cursor command on the control queue. */
	memset(&cur, 0, sizeof(cur));
	hdr_init(&cur.hdr, VIRTIO_GPU_CMD_MOVE_CURSOR, 0);
	assert_int_equal(fe_cmd_simple(&F, &cur, sizeof(cur)), VIRTIO_GPU_RESP_ERR_UNSPEC);
	assert_int_equal((int)STAT_GET(cmd_errors) - before, 5);
	/* On the cursor queue it is acknowledged. */
	assert_int_equal(fe_cmd(&F, 1, &cur, sizeof(cur), &h, sizeof(h), 1), sizeof(h));
	assert_int_equal(h.type, VIRTIO_GPU_RESP_OK_NODATA);
	/* Without a response buffer too (as Linux sends cursor updates). */
	assert_int_equal(fe_cmd(&F, 1, &cur, sizeof(cur), NULL, 0, 1), 0);
}

static void test_bad_chains(void **state)
{
	struct virtio_gpu_ctrl_hdr h;
	struct vring_desc d[3];
	uint32_t id, len;
	uint16_t u;

	(void)state;
	hdr_init(&h, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
	/* A buffer in the hole: completed with length 0, nothing written. */
	memset(d, 0, sizeof(d));
	d[0].addr = FE_HOLE; d[0].len = 24; d[0].flags = VRING_DESC_F_NEXT; d[0].next = 1;
	d[1].addr = FE_R1 + 0x1000; d[1].len = 408; d[1].flags = VRING_DESC_F_WRITE;
	memset(fe_ptr(&F, FE_R1 + 0x1000), 0xab, 408);
	u = (uint16_t)(F.ring[0].avail_idx + 1);
	fe_post_raw(&F, 0, d, 2);
	fe_kick(&F, 0);
	assert_int_equal(fe_wait_used(&F, 0, u, 3000), 0);
	fe_used_elem(&F, 0, (uint16_t)(u - 1), &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 0);
	assert_int_equal(((uint8_t *)fe_ptr(&F, FE_R1 + 0x1000))[0], 0xab);
	/* Readable after writable. */
	memcpy(fe_ptr(&F, FE_R1), &h, sizeof(h));
	d[0].addr = FE_R1 + 0x1000; d[0].len = 408; d[0].flags = VRING_DESC_F_WRITE | VRING_DESC_F_NEXT; d[0].next = 1;
	d[1].addr = FE_R1; d[1].len = 24; d[1].flags = 0;
	fe_post_raw(&F, 0, d, 2);
	fe_kick(&F, 0);
	assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(u + 1), 3000), 0);
	fe_used_elem(&F, 0, u, &id, &len);
	assert_int_equal(len, 0);
	/* Still serving. */
	assert_int_equal(fe_cmd(&F, 0, &h, sizeof(h), NULL, 0, 1), 0);
	/* A descriptor loop breaks the ring: no more answers, no crash. */
	d[0].addr = FE_R1; d[0].len = 24; d[0].flags = VRING_DESC_F_NEXT; d[0].next = 1;
	d[1].addr = FE_R1; d[1].len = 24; d[1].flags = VRING_DESC_F_NEXT; d[1].next = 0;
	u = F.ring[0].avail_idx;
	fe_post_raw(&F, 0, d, 2);
	fe_kick(&F, 0);
	assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(u + 1), 300), -1);
	assert_true(STAT_GET(bad_chains) >= 2);
}

static void test_ring_wrap(void **state)
{
	struct virtio_gpu_ctrl_hdr h;
	uint16_t start = F.ring[0].avail_idx;

	(void)state;
	hdr_init(&h, VIRTIO_GPU_CMD_GET_DISPLAY_INFO, 0);
	/* 100 requests one at a time on a 16-entry ring... */
	for (int i = 0; i < 100; i++)
		assert_int_equal(fe_cmd(&F, 0, &h, sizeof(h), NULL, 0, 1), 0);
	/* ...then full batches of 16, kicked once. */
	for (int b = 0; b < 4; b++) {
		for (int i = 0; i < 16; i++)
			fe_post(&F, 0, &h, sizeof(h), 0, 1);
		fe_kick(&F, 0);
		assert_int_equal(fe_wait_used(&F, 0, F.ring[0].avail_idx, 3000), 0);
	}
	assert_int_equal((uint16_t)(F.ring[0].avail_idx - start), 164);
}

static void test_ring_index_wrap(void **state)
{
	struct fe g;
	struct fe_opts o = { .ctrl_num = 4, .base = 65530 };
	struct virtio_gpu_ctrl_hdr h;
	uint32_t id, len;

	(void)state;
	fe_start(&g, &o);
	/* The 16-bit indices wrap past 65535. */
	for (int i = 0; i < 12; i++) {
		hdr_init(&h, VIRTIO_GPU_CMD_CTX_DESTROY, 9);
		assert_int_equal(fe_cmd(&g, 0, &h, sizeof(h), &h, sizeof(h), 1), sizeof(h));
		assert_int_equal(h.type, VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
	}
	assert_int_equal(g.ring[0].used->idx, (uint16_t)(65530 + 12));
	fe_used_elem(&g, 0, (uint16_t)(65530 + 11), &id, &len);
	assert_int_equal(len, sizeof(h));
	fe_stop(&g);
}

static void test_fence(void **state)
{
	uint64_t dst;
	struct vgpu_compute_op op;
	struct vgpu_compute_submit s = { VGPU_COMPUTE_MAGIC, 1, 0, 0, 0 };
	struct virtio_gpu_ctrl_hdr r;
	uint32_t *p;

	(void)state;
	assert_int_equal(cmd_ctx_create(&F, 3, VGPU_COMPUTE_CAPSET_ID), VIRTIO_GPU_RESP_OK_NODATA);
	dst = simple_blob(&F, 3, 1, 0, 2, 1 << 20);
	assert_true(dst);
	assert_int_equal(cmd_attach(&F, 3, 1), VIRTIO_GPU_RESP_OK_NODATA);
	op = mkop(VGPU_OP_FILL, 1, 0, 0, 0, 1 << 20, 0x01020304);
	assert_int_equal(cmd_submit_ex(&F, 3, VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX,
				       77, 5, &s, &op, 1, &r), VIRTIO_GPU_RESP_OK_NODATA);
	/* The fence is echoed, and the work is complete when it is signalled. */
	assert_int_equal(r.flags, VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX);
	assert_int_equal(r.fence_id, 77);
	assert_int_equal(r.ctx_id, 3);
	assert_int_equal(r.ring_idx, 5);
	p = fe_ptr(&F, dst);
	assert_int_equal(p[0], 0x01020304);
	assert_int_equal(p[(1 << 18) - 1], 0x01020304);
	/* Fence without ring index: ring_idx not echoed. */
	op.arg0 = 7;
	assert_int_equal(cmd_submit_ex(&F, 3, VIRTIO_GPU_FLAG_FENCE, 78, 5, &s, &op, 1, &r),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(r.flags, VIRTIO_GPU_FLAG_FENCE);
	assert_int_equal(r.fence_id, 78);
	assert_int_equal(r.ring_idx, 0);
	assert_int_equal(p[12345], 7);
	/* A ring index beyond the 64 rings a context may have. */
	assert_int_equal(cmd_submit_ex(&F, 3, VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX,
				       80, 64, &s, &op, 1, &r), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(r.fence_id, 80);
	/* No fence: nothing echoed. */
	assert_int_equal(cmd_submit_ex(&F, 3, 0, 79, 0, &s, &op, 1, &r), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(r.flags, 0);
	assert_int_equal(r.fence_id, 0);
	/* Fences on one ring complete in order: a batch of fenced submits. */
	{
		uint16_t base = F.ring[0].avail_idx;
		uint8_t buf[sizeof(struct virtio_gpu_cmd_submit) + sizeof(s) + sizeof(op)];
		struct virtio_gpu_cmd_submit *c = (void *)buf;
		uint64_t rg[5];

		for (int i = 0; i < 5; i++) {
			memset(buf, 0, sizeof(buf));
			hdr_init(&c->hdr, VIRTIO_GPU_CMD_SUBMIT_3D, 3);
			c->hdr.flags = VIRTIO_GPU_FLAG_FENCE;
			c->hdr.fence_id = 100 + (uint64_t)i;
			c->size = sizeof(s) + sizeof(op);
			op.arg0 = (uint64_t)i;
			memcpy(buf + sizeof(*c), &s, sizeof(s));
			memcpy(buf + sizeof(*c) + sizeof(s), &op, sizeof(op));
			rg[i] = fe_post(&F, 0, buf, sizeof(buf), sizeof(r), 1);
		}
		fe_kick(&F, 0);
		assert_int_equal(fe_wait_used(&F, 0, (uint16_t)(base + 5), 5000), 0);
		for (int i = 0; i < 5; i++) {
			uint32_t id, len;
			struct virtio_gpu_ctrl_hdr *rr = fe_ptr(&F, rg[i]);

			fe_used_elem(&F, 0, (uint16_t)(base + i), &id, &len);
			assert_int_equal(len, sizeof(r));
			assert_int_equal(rr->fence_id, 100 + (uint64_t)i);
		}
		assert_int_equal(p[999], 4);
	}
}

static void test_reconnect(void **state)
{
	(void)state;
	assert_int_equal(cmd_ctx_create(&F, 1, 0), VIRTIO_GPU_RESP_OK_NODATA);
	assert_true(simple_blob(&F, 1, 1, 0, 1, 8192));
	assert_true(simple_blob(&F, 0, 2, VIRTIO_GPU_BLOB_FLAG_RDONLY, 2, 4096));
	assert_int_equal(cmd_attach(&F, 1, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(STAT_GET(resources), 2);
	assert_int_equal(STAT_GET(contexts), 1);
	assert_true(STAT_GET(mapped_bytes) > 0);
	fe_stop(&F);
	/* Everything of the old front-end is gone. */
	assert_int_equal(STAT_GET(resources), 0);
	assert_int_equal(STAT_GET(resource_bytes), 0);
	assert_int_equal(STAT_GET(contexts), 0);
	assert_int_equal(STAT_GET(mapped_bytes), 0);
	/* A new one starts from scratch: the same ids are free again. */
	fe_start(&F, NULL);
	assert_int_equal(cmd_ctx_create(&F, 1, 0), VIRTIO_GPU_RESP_OK_NODATA);
	assert_true(simple_blob(&F, 1, 1, 0, 1, 8192));
	assert_int_equal(STAT_GET(resources), 1);
}

static void test_reset_owner(void **state)
{
	(void)state;
	assert_true(simple_blob(&F, 0, 1, 0, 1, 4096));
	assert_int_equal(fe_ack(&F, VU_RESET_OWNER, NULL, 0, NULL, 0), 0);
	assert_int_equal(STAT_GET(resources), 0);
	assert_int_equal(STAT_GET(mapped_bytes), 0);
}

static void test_limits(void **state)
{
	struct gpu_limits lim = { .max_resources = 2, .max_contexts = 1, .max_total_entries = 3 };
	struct fe_opts o = { .limits = &lim };
	struct virtio_gpu_mem_entry e[4];
	struct fe g;

	(void)state;
	fe_start(&g, &o);
	for (int i = 0; i < 4; i++) {
		e[i].addr = fe_alloc(&g, 1, 4096, 0);
		e[i].length = 4096;
		e[i].padding = 0;
	}
	assert_int_equal(cmd_blob(&g, 0, 1, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 16384, e, 4), VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
	assert_int_equal(cmd_blob(&g, 0, 1, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 4096, e, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_blob(&g, 0, 2, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 4096, e, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_blob(&g, 0, 3, VIRTIO_GPU_BLOB_MEM_GUEST, 0, 4096, e, 1), VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
	assert_int_equal(cmd_ctx_create(&g, 1, 0), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_ctx_create(&g, 2, 0), VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
	fe_stop(&g);
}

static void test_mem_table_remap(void **state)
{
	struct vu_mem_region r;
	uint8_t mt[8 + sizeof(r)];
	struct vgpu_compute_op op;
	uint64_t a;

	(void)state;
	assert_int_equal(cmd_ctx_create(&F, 1, 0), VIRTIO_GPU_RESP_OK_NODATA);
	assert_true(simple_blob(&F, 1, 1, 0, 1, 4096));
	a = simple_blob(&F, 1, 2, 0, 2, 4096);
	assert_true(a);
	assert_int_equal(cmd_attach(&F, 1, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(cmd_attach(&F, 1, 2), VIRTIO_GPU_RESP_OK_NODATA);
	/* New table: R0 and R1 only (moved to other qvas); R2 is gone. */
	memset(mt, 0, sizeof(mt));
	mt[0] = 2;
	{
		struct vu_mem_region rr[2] = {
			{ FE_R0, 0x100000, FE_R0 + FE_QVA_BIAS, 0 },
			{ FE_R1, 0x100000, FE_R1 + FE_QVA_BIAS, 0x100000 },
		};
		uint8_t m2[8 + sizeof(rr)];
		int fds[2] = { F.memfd, F.memfd };

		memset(m2, 0, 8);
		m2[0] = 2;
		memcpy(m2 + 8, rr, sizeof(rr));
		assert_int_equal(fe_ack(&F, VU_SET_MEM_TABLE, m2, sizeof(m2), fds, 2), 0);
	}
	F.reg[2].size = 0;
	op = mkop(VGPU_OP_FILL, 2, 0, 0, 0, 4096, 1);
	assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	op = mkop(VGPU_OP_FILL, 1, 0, 0, 0, 4096, 1);
	assert_int_equal(cmd_submit(&F, 1, 0, 0, &op, 1), VIRTIO_GPU_RESP_OK_NODATA);
	(void)r;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_vu_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vu_no_userptr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rdonly_negotiated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wire_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vu_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vu_scanouts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vu_bad_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vu_oversized_disconnects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vu_mem_table_padded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vu_call_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vu_get_vring_base, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vu_status_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vu_reset_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_display_info, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blob_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctx_attach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsupported_and_short, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_index_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mem_table_remap, setup, teardown),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("device", tests, NULL, NULL);
}
