/* SPDX-License-Identifier: MIT */
/*
 * fuzz_vhost_user.c - vhost-user framing and message handling.
 *
 * The input is the byte stream a front-end would send; it is written into
 * a socketpair and the device reads and handles messages from it until the
 * stream ends or the device drops the connection. No fds are passed.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"
#include "gpu_device.h"
#include "stats.h"
#include "vhost_user.h"

static struct engine *eng;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vu_options opt = { .blob_rdonly = true };
	struct gpu_device *gpu;
	struct vu_conn c;
	int sv[2];

	if (size > 65536)
		return 0;
	if (!eng)
		eng = engine_new(1);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return 0;
	{
		int sz = 1 << 20;

		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	if (size && write(sv[0], data, size) != (ssize_t)size)
		goto out;
	shutdown(sv[0], SHUT_WR);
	gpu = gpu_device_new(eng, NULL);
	if (gpu && vu_conn_init(&c, sv[1], &opt, gpu) == 0) {
		while (vu_handle_one(&c) == 0)
			;
		vu_conn_fini(&c);
	}
	gpu_device_free(gpu);
out:
	close(sv[0]);
	close(sv[1]);
	return 0;
}
