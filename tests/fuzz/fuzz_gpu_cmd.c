/* SPDX-License-Identifier: MIT */
/*
 * fuzz_gpu_cmd.c - the control-queue command parser and executor.
 *
 * Input: a sequence of commands, each preceded by a little-endian u16
 * length. They run in order against one device (so a fuzzed CREATE_BLOB
 * can be followed by an ATTACH and a SUBMIT_3D) whose guest RAM is two
 * small regions: [0x10000, +64 KiB) and [0x30000, +16 KiB). The device
 * offers the guest's programs (capset version 3) in validate-only mode:
 * every version 3 op and its payload is decoded and checked as for real,
 * and no worker is started (an op that passes fails with E_LOST).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine.h"
#include "gpu_device.h"
#include "guest_mem.h"
#include "programs.h"
#include "vgpu_virtio_ext.h"

static uint8_t ram0[64 * 1024], ram1[16 * 1024];
static struct guest_mem gm;
static struct engine *eng;
static struct gpu_device *dev;
static struct programs *progs;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct gpu_limits lim = { 64, 16, 4096 };
	uint64_t features = ~0ull;
	uint8_t resp[GPU_RESP_MAX];

	if (!eng) {
		gm_init(&gm);
		gm_add_host_region(&gm, 0x10000, sizeof(ram0), 0x10000, ram0);
		gm_add_host_region(&gm, 0x30000, sizeof(ram1), 0x30000, ram1);
		struct programs_config pc = { .validate_only = true };

		eng = engine_new(2);
		progs = programs_new(&pc);
		engine_set_programs(eng, progs);
		dev = gpu_device_new(eng, &lim);
		gpu_device_set_programs(dev, progs);
	}
	/* First byte: without VIRTIO_GPU_F_BLOB_RDONLY when odd. */
	if (size && (data[0] & 1))
		features &= ~(1ull << VIRTIO_GPU_F_BLOB_RDONLY);
	if (size) {
		data++;
		size--;
	}
	while (size >= 2) {
		size_t len = (size_t)data[0] | (size_t)data[1] << 8;

		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		gpu_device_execute(dev, &gm, features, data, len, resp);
		data += len;
		size -= len;
	}
	gpu_device_reset(dev);
	return 0;
}
