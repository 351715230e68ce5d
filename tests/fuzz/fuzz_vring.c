/* SPDX-License-Identifier: MIT */
/*
 * fuzz_vring.c - the split ring as the guest writes it, served by the
 * device: descriptors, avail ring, chains, gathering, the commands they
 * carry and the scattered responses.
 *
 * Guest RAM is two adjacent regions, [0x10000, +64 KiB) and
 * [0x20000, +16 KiB). The ring sits at the start of the first: descriptor
 * table at 0x10000, avail ring at 0x10400, used ring at 0x10600. Input:
 * byte 0 picks the ring size (1 << (byte % 7): 1..64), bytes 1-2 the
 * device's starting avail/used index (little endian); the rest is copied
 * over guest RAM from 0x10000 on. The device then serves the ring as the
 * queue thread would, a few rounds, and its state is reset.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine.h"
#include "gpu_device.h"
#include "guest_mem.h"
#include "vdev.h"

#define R0 0x10000u
#define R1 0x20000u

static uint8_t ram0[64 * 1024], ram1[16 * 1024];
static struct engine *eng;
static struct gpu_device *gpu;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct gpu_limits lim = { 64, 16, 4096 };
	struct vdev d;
	struct vq *vq;
	uint16_t start;

	if (size < 3)
		return 0;
	if (!eng) {
		eng = engine_new(2);
		gpu = gpu_device_new(eng, &lim);
	}
	memset(ram0, 0, sizeof(ram0));
	memset(ram1, 0, sizeof(ram1));
	memcpy(ram0, data + 3, size - 3 < sizeof(ram0) ? size - 3 : sizeof(ram0));

	/* A device as the socket thread leaves it after the handshake,
	 * without the queue thread or ring workers: the rings are served
	 * right here, fenced ring submits inline with the rest. */
	memset(&d, 0, sizeof(d));
	gm_init(&d.mem);
	gm_add_host_region(&d.mem, R0, sizeof(ram0), R0, ram0);
	gm_add_host_region(&d.mem, R1, sizeof(ram1), R1, ram1);
	for (unsigned i = 0; i < VDEV_NUM_QUEUES; i++)
		vq_init(&d.vq[i]);
	d.gpu = gpu;
	d.features = ~0ull;
	d.wake_fd = -1;
	vq = &d.vq[VDEV_CONTROLQ];
	vq->num = 1u << (data[0] % 7);
	vq->desc_qva = R0;
	vq->avail_qva = R0 + 0x400;
	vq->used_qva = R0 + 0x600;
	vq->addr_set = true;
	if (vq_translate(vq, &d.mem))
		return 0;
	start = (uint16_t)(data[1] | data[2] << 8);
	vq->last_avail = start;
	vq->used_idx = start;
	vq->started = vq->enabled = true;
	for (int round = 0; round < 4 && vdev_process_locked(&d); round++)
		;
	gpu_device_reset(gpu);
	return 0;
}
