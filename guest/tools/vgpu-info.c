/* SPDX-License-Identifier: MIT */
/* vgpu-info - show what the virtio-gpu device and kernel offer libvgpu. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vgpu.h"

static void usage(FILE *f, const char *argv0)
{
	fprintf(f,
		"Usage: %s [-d DEVICE] [--no-userptr]\n"
		"Show the virtio-gpu render node's parameters, capsets, the compute\n"
		"capset and whether buffers from user memory are zero-copy (userptr).\n"
		"\n"
		"  -d, --device PATH  DRM node (default: first virtio_gpu render node,\n"
		"                     or $VGPU_DEVICE)\n"
		"  --no-userptr       open as libvgpu does with VGPU_OPEN_NO_USERPTR\n"
		"  -h, --help         this help\n"
		"\n"
		"Exit status: 0 on success, 1 when the device cannot be opened, 2 on\n"
		"bad usage.\n",
		argv0);
}

static void param_line(const char *name, int64_t v)
{
	if (v < 0)
		printf("  %-28s unknown to the kernel\n", name);
	else
		printf("  %-28s %" PRId64 "\n", name, v);
}

/*
 * Read-only buffers are zero-copy only where the device promises never to
 * write them (VIRTIO_GPU_F_BLOB_RDONLY); the kernel says so by taking or
 * refusing one: try a page.
 */
static bool rdonly_zero_copy(struct vgpu_device *dev)
{
	long page = sysconf(_SC_PAGESIZE);
	struct vgpu_buffer *buf = NULL;
	void *p;
	int err;

	p = mmap(NULL, (size_t)page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		return false;
	err = vgpu_buffer_from_user(dev, p, (size_t)page, VGPU_BUF_READ_ONLY | VGPU_BUF_ZERO_COPY,
				    &buf);
	if (!err)
		vgpu_buffer_destroy(buf);
	munmap(p, (size_t)page);
	return err == 0;
}

static const char *const op_names[VGPU_OP_COUNT] = {
	"nop", "copy", "fill", "checksum", "saxpy", "sum_f32", "sgemm", "reduce_f32",
};

static const char *backend_name(uint32_t b)
{
	switch (b) {
	case VGPU_BACKEND_CPU:
		return "cpu";
	case VGPU_BACKEND_OPENCL:
		return "opencl";
	default:
		return "unknown";
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "no-userptr", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	unsigned int flags = 0;
	struct vgpu_device *dev;
	struct vgpu_info info;
	int c, err;

	while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			path = optarg;
			break;
		case 'n':
			flags |= VGPU_OPEN_NO_USERPTR;
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			usage(stderr, argv[0]);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
		usage(stderr, argv[0]);
		return 2;
	}
	err = vgpu_open(path, flags, &dev);
	if (err) {
		fprintf(stderr, "%s: cannot open %s: %s\n", argv[0],
			path ? path : "a virtio-gpu render node", vgpu_strerror(err));
		return 1;
	}
	vgpu_get_info(dev, &info);
	printf("device: %s\n", info.path);
	printf("driver: %s %d.%d.%d\n", info.driver, info.drv_major, info.drv_minor,
	       info.drv_patch);
	printf("params:\n");
	param_line("3D_FEATURES", info.param_3d_features);
	param_line("CAPSET_QUERY_FIX", info.param_capset_query_fix);
	param_line("RESOURCE_BLOB", info.param_resource_blob);
	param_line("HOST_VISIBLE", info.param_host_visible);
	param_line("CROSS_DEVICE", info.param_cross_device);
	param_line("CONTEXT_INIT", info.param_context_init);
	param_line("EXPLICIT_DEBUG_NAME", info.param_explicit_debug_name);
	param_line("RESOURCE_USERPTR", info.param_resource_userptr);
	if (info.param_supported_capset_ids >= 0) {
		printf("  %-28s 0x%" PRIx64 " (ids:", "SUPPORTED_CAPSET_IDs",
		       (uint64_t)info.param_supported_capset_ids);
		for (int i = 0; i < 32; i++)
			if ((uint64_t)info.param_supported_capset_ids & (1ull << i))
				printf(" %d", i);
		printf(")\n");
	} else {
		param_line("SUPPORTED_CAPSET_IDs", -1);
	}
	printf("compute capset %u:\n", VGPU_COMPUTE_CAPSET_ID);
	printf("  version %u, max_ops %u, threads %u, max_op_bytes %" PRIu64 "\n",
	       info.caps.version, info.caps.max_ops, info.caps.num_threads,
	       (uint64_t)info.caps.max_op_bytes);
	if (info.caps.version >= 2)
		printf("  backend %s, max_gemm_dim %u\n", backend_name(info.caps.backend),
		       info.caps.max_gemm_dim);
	printf("  ops:");
	for (unsigned int i = 0; i < 32; i++) {
		if (!(info.caps.op_mask & (1u << i)))
			continue;
		if (i < VGPU_OP_COUNT)
			printf(" %s", op_names[i]);
		else
			printf(" op%u", i);
	}
	printf("\n");
	if (info.caps.version >= 2)
		printf("backend: %s\n", backend_name(info.caps.backend));
	printf("userptr: %s%s\n", info.userptr ? "yes (zero-copy buffers)" : "no (copy fallback)",
	       info.userptr_disabled ? " [disabled by --no-userptr]" : "");
	if (info.userptr)
		printf("read-only userptr: %s\n", rdonly_zero_copy(dev) ?
		       "yes (zero-copy)" :
		       "no (copied: the device does not promise to leave read-only memory alone)");
	vgpu_close(dev);
	return 0;
}
