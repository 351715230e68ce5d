/* SPDX-License-Identifier: MIT */
/*
 * engine_opencl.c - the OpenCL backend: every op as an OpenCL kernel on
 * the guest's pages, through the ICD loader (any platform: PoCL's CPU
 * device, or a GPU).
 *
 * Zero copy: for each op, every resource it names becomes a buffer
 * created with CL_MEM_USE_HOST_PTR over the resource's window (window.h),
 * so the kernel works on the guest's pages themselves. A resource without
 * a window is refused during validation (E_NOWINDOW), before any op runs.
 * After an op, the bytes it wrote are mapped (clEnqueueMapBuffer), which
 * is what makes a device's writes visible in host memory; when the
 * runtime answers with a pointer other than the window, it has copied,
 * and the bytes are counted in cl_copied_bytes (0 on a CPU device or any
 * device that shares host memory).
 *
 * The kernels are the device's own source below, built once at start.
 * Nothing the guest sends is ever compiled.
 *
 * Threads: the command queue and the kernels' arguments are shared state,
 * so one mutex serializes the ops of all submitting threads; each op is
 * itself data-parallel on the device.
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include <endian.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine_backend.h"
#include "stats.h"
#include "window.h"

static const char kernel_src[] =
"#pragma OPENCL FP_CONTRACT OFF\n"
"#ifdef HAVE_FP64\n"
"#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"
"#endif\n"
/* 16 bytes a work-item. */
"__kernel void k_copy(__global uchar *d, ulong doff, __global const uchar *s, ulong soff, ulong n)\n"
"{\n"
"  ulong i = get_global_id(0) * 16;\n"
"  if (i + 16 <= n) { vstore16(vload16(0, s + soff + i), 0, d + doff + i); return; }\n"
"  for (; i < n; i++) d[doff + i] = s[soff + i];\n"
"}\n"
"__kernel void k_fill(__global uchar *d, ulong doff, uint v, ulong n)\n"
"{\n"
"  ulong i = get_global_id(0) * 16;\n"
"  if (i + 16 <= n) { vstore16(as_uchar16((uint4)(v)), 0, d + doff + i); return; }\n"
"  for (; i < n; i++) d[doff + i] = (uchar)(v >> (8 * (i % 4)));\n"
"}\n"
"__kernel void k_saxpy(__global uchar *d, ulong doff, __global const uchar *s, ulong soff, float a, ulong n)\n"
"{\n"
"  ulong i = get_global_id(0) * 4;\n"
"  if (i >= n) return;\n"
"  float x = as_float(vload4(0, s + soff + i));\n"
"  float y = as_float(vload4(0, d + doff + i));\n"
"  float t = a * x;\n"
"  vstore4(as_uchar4(t + y), 0, d + doff + i);\n"
"}\n"
"#ifdef HAVE_FP64\n"
"__kernel void k_sum_serial(__global uchar *d, ulong doff, __global const uchar *s, ulong soff, ulong n)\n"
"{\n"
"  double acc = 0.0;\n"
"  for (ulong i = 0; i < n; i += 4) acc += (double)as_float(vload4(0, s + soff + i));\n"
"  vstore8(as_uchar8(acc), 0, d + doff);\n"
"}\n"
/* Stage 1: work-item g sums its own contiguous slice. */
"__kernel void k_reduce_part(__global double *part, __global const uchar *s, ulong soff, ulong n, ulong per)\n"
"{\n"
"  ulong g = get_global_id(0), b = g * per, e = b + per;\n"
"  double acc = 0.0;\n"
"  if (e > n) e = n;\n"
"  for (ulong i = b; i < e; i += 4) acc += (double)as_float(vload4(0, s + soff + i));\n"
"  part[g] = acc;\n"
"}\n"
"__kernel void k_reduce_final(__global uchar *d, ulong doff, __global const double *part, uint np)\n"
"{\n"
"  double acc = 0.0;\n"
"  for (uint i = 0; i < np; i++) acc += part[i];\n"
"  vstore8(as_uchar8(acc), 0, d + doff);\n"
"}\n"
"#endif\n"
"#define P1 0x9E3779B185EBCA87UL\n"
"#define P2 0xC2B2AE3D27D4EB4FUL\n"
"#define P3 0x165667B19E3779F9UL\n"
"#define P4 0x85EBCA77C2B2AE63UL\n"
"#define P5 0x27D4EB2F165667C5UL\n"
"ulong xr(ulong acc, ulong in) { acc += in * P2; acc = rotate(acc, 31UL); return acc * P1; }\n"
"ulong xm(ulong acc, ulong v) { acc ^= xr(0, v); return acc * P1 + P4; }\n"
"ulong ld64(__global const uchar *p) { return as_ulong(vload8(0, p)); }\n"
"ulong ld32(__global const uchar *p) { return (ulong)as_uint(vload4(0, p)); }\n"
/* XXH64 is sequential by definition: one work-item. */
"__kernel void k_xxh64(__global uchar *d, ulong doff, __global const uchar *s, ulong soff, ulong n, ulong seed)\n"
"{\n"
"  __global const uchar *p = s + soff, *end = p + n;\n"
"  ulong h;\n"
"  if (n >= 32) {\n"
"    ulong v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;\n"
"    __global const uchar *lim = end - 32;\n"
"    do { v1 = xr(v1, ld64(p)); v2 = xr(v2, ld64(p + 8)); v3 = xr(v3, ld64(p + 16));\n"
"         v4 = xr(v4, ld64(p + 24)); p += 32; } while (p <= lim);\n"
"    h = rotate(v1, 1UL) + rotate(v2, 7UL) + rotate(v3, 12UL) + rotate(v4, 18UL);\n"
"    h = xm(h, v1); h = xm(h, v2); h = xm(h, v3); h = xm(h, v4);\n"
"  } else {\n"
"    h = seed + P5;\n"
"  }\n"
"  h += n;\n"
"  while (end - p >= 8) { h ^= xr(0, ld64(p)); h = rotate(h, 27UL) * P1 + P4; p += 8; }\n"
"  if (end - p >= 4) { h ^= ld32(p) * P1; h = rotate(h, 23UL) * P2 + P3; p += 4; }\n"
"  while (p < end) { h ^= (ulong)(*p) * P5; h = rotate(h, 11UL) * P1; p++; }\n"
"  h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32;\n"
"  vstore8(as_uchar8(h), 0, d + doff);\n"
"}\n"
/* One work-item per element of C; each element summed in k order. */
"__kernel void k_sgemm(__global uchar *cb, ulong coff, __global const uchar *sb, ulong aoff, ulong boff,\n"
"                      uint M, uint N, uint K, uint lda, uint ldb, uint ldc)\n"
"{\n"
"  uint j = get_global_id(0), i = get_global_id(1);\n"
"  if (i >= M || j >= N) return;\n"
"  __global const float *A = (__global const float *)(sb + aoff) + (ulong)i * lda;\n"
"  __global const float *B = (__global const float *)(sb + boff) + j;\n"
"  float acc = 0.0f;\n"
"  for (uint k = 0; k < K; k++) acc = acc + A[k] * B[(ulong)k * ldb];\n"
"  ((__global float *)(cb + coff))[(ulong)i * ldc + j] = acc;\n"
"}\n";

enum { K_COPY, K_FILL, K_SAXPY, K_XXH64, K_SGEMM, K_SUM, K_RPART, K_RFINAL, K_N };
static const char *const kernel_names[K_N] = {
	"k_copy", "k_fill", "k_saxpy", "k_xxh64", "k_sgemm",
	"k_sum_serial", "k_reduce_part", "k_reduce_final",
};

#define REDUCE_PARTS 256u

struct cl_backend {
	struct engine_backend b;
	pthread_mutex_t lock;
	cl_platform_id plat;
	cl_device_id dev;
	cl_context ctx;
	cl_command_queue q;
	cl_program prog;
	cl_kernel k[K_N];
	cl_mem part;           /* REDUCE_PARTS doubles of scratch */
	bool fp64;
};

static uint32_t cl_check(struct engine_backend *b, const struct guest_mem *gm,
			 const struct vop *op)
{
	struct cl_backend *cb = (struct cl_backend *)b;

	(void)gm;
	if ((op->opcode == VGPU_OP_SUM_F32 || op->opcode == VGPU_OP_REDUCE_F32) && !cb->fp64)
		return VGPU_COMPUTE_E_OPCODE;
	if ((op->dst && !res_window_base(op->dst)) || (op->src && !res_window_base(op->src))) {
		STAT_ADD(cl_nowindow, 1);
		return VGPU_COMPUTE_E_NOWINDOW;
	}
	return VGPU_COMPUTE_OK;
}

static cl_mem wrap(struct cl_backend *cb, const struct res_backing *r, cl_int *err)
{
	cl_mem_flags f = CL_MEM_USE_HOST_PTR |
			 (r->readonly ? CL_MEM_READ_ONLY : CL_MEM_READ_WRITE);

	return clCreateBuffer(cb->ctx, f, (size_t)r->size, res_window_base(r), err);
}

/* Map what the op wrote: makes it visible in host memory, and tells
 * whether the runtime worked on the window itself. */
static cl_int sync_written(struct cl_backend *cb, cl_mem m, const struct res_backing *r,
			   uint64_t off, uint64_t len)
{
	cl_int err;
	void *p = clEnqueueMapBuffer(cb->q, m, CL_TRUE, CL_MAP_READ, (size_t)off, (size_t)len,
				     0, NULL, NULL, &err);

	if (!p)
		return err ? err : CL_INVALID_VALUE;
	if (p == res_window_base(r) + off)
		STAT_ADD(cl_zero_copy_maps, 1);
	else
		STAT_ADD(cl_copied_bytes, len);
	err = clEnqueueUnmapMemObject(cb->q, m, p, 0, NULL, NULL);
	if (err == CL_SUCCESS)
		err = clFinish(cb->q);
	return err;
}

#define SETARG(k, i, v) (err |= clSetKernelArg((k), (i), sizeof(v), &(v)))

static cl_int launch(struct cl_backend *cb, cl_kernel k, cl_uint dims, const size_t *gws)
{
	return clEnqueueNDRangeKernel(cb->q, k, dims, NULL, gws, NULL, 0, NULL, NULL);
}

/* Bytes of dst an op writes, from dst_off. */
static uint64_t written_len(const struct vop *op)
{
	switch (op->opcode) {
	case VGPU_OP_CHECKSUM:
	case VGPU_OP_SUM_F32:
	case VGPU_OP_REDUCE_F32:
		return 8;
	default:
		return op->len;   /* SGEMM: the span of C (set by validation) */
	}
}

/* Enqueue op's kernel(s) on buffers d and s. */
static cl_int launch_op(struct cl_backend *cb, const struct vop *op, cl_mem d, cl_mem s)
{
	cl_int err = CL_SUCCESS;
	cl_ulong doff = op->dst_off, soff = op->src_off, n = op->len;
	size_t gws[2];

	switch (op->opcode) {
	case VGPU_OP_COPY:
		SETARG(cb->k[K_COPY], 0, d); SETARG(cb->k[K_COPY], 1, doff);
		SETARG(cb->k[K_COPY], 2, s); SETARG(cb->k[K_COPY], 3, soff);
		SETARG(cb->k[K_COPY], 4, n);
		gws[0] = (size_t)((n + 15) / 16);
		if (!err && gws[0])      /* an empty range is no launch at all */
			err = launch(cb, cb->k[K_COPY], 1, gws);
		break;
	case VGPU_OP_FILL: {
		cl_uint v = (cl_uint)op->arg0;

		SETARG(cb->k[K_FILL], 0, d); SETARG(cb->k[K_FILL], 1, doff);
		SETARG(cb->k[K_FILL], 2, v); SETARG(cb->k[K_FILL], 3, n);
		gws[0] = (size_t)((n + 15) / 16);
		if (!err && gws[0])
			err = launch(cb, cb->k[K_FILL], 1, gws);
		break;
	}
	case VGPU_OP_SAXPY: {
		uint32_t u = (uint32_t)op->arg0;
		cl_float a;

		memcpy(&a, &u, 4);
		SETARG(cb->k[K_SAXPY], 0, d); SETARG(cb->k[K_SAXPY], 1, doff);
		SETARG(cb->k[K_SAXPY], 2, s); SETARG(cb->k[K_SAXPY], 3, soff);
		SETARG(cb->k[K_SAXPY], 4, a); SETARG(cb->k[K_SAXPY], 5, n);
		gws[0] = (size_t)(n / 4);
		if (!err && gws[0])
			err = launch(cb, cb->k[K_SAXPY], 1, gws);
		break;
	}
	case VGPU_OP_CHECKSUM: {
		cl_ulong seed = op->arg0;

		SETARG(cb->k[K_XXH64], 0, d); SETARG(cb->k[K_XXH64], 1, doff);
		SETARG(cb->k[K_XXH64], 2, s); SETARG(cb->k[K_XXH64], 3, soff);
		SETARG(cb->k[K_XXH64], 4, n); SETARG(cb->k[K_XXH64], 5, seed);
		gws[0] = 1;
		if (!err)
			err = launch(cb, cb->k[K_XXH64], 1, gws);
		break;
	}
	case VGPU_OP_SUM_F32:
		SETARG(cb->k[K_SUM], 0, d); SETARG(cb->k[K_SUM], 1, doff);
		SETARG(cb->k[K_SUM], 2, s); SETARG(cb->k[K_SUM], 3, soff);
		SETARG(cb->k[K_SUM], 4, n);
		gws[0] = 1;
		if (!err)
			err = launch(cb, cb->k[K_SUM], 1, gws);
		break;
	case VGPU_OP_REDUCE_F32: {
		/* Slices of whole f32 elements, one a work-item. */
		cl_ulong per = ((n / 4 + REDUCE_PARTS - 1) / REDUCE_PARTS) * 4;
		cl_uint np = REDUCE_PARTS;

		if (per == 0)
			per = 4;
		SETARG(cb->k[K_RPART], 0, cb->part); SETARG(cb->k[K_RPART], 1, s);
		SETARG(cb->k[K_RPART], 2, soff); SETARG(cb->k[K_RPART], 3, n);
		SETARG(cb->k[K_RPART], 4, per);
		SETARG(cb->k[K_RFINAL], 0, d); SETARG(cb->k[K_RFINAL], 1, doff);
		SETARG(cb->k[K_RFINAL], 2, cb->part); SETARG(cb->k[K_RFINAL], 3, np);
		gws[0] = REDUCE_PARTS;
		if (!err)
			err = launch(cb, cb->k[K_RPART], 1, gws);
		gws[0] = 1;
		if (!err)
			err = launch(cb, cb->k[K_RFINAL], 1, gws);
		break;
	}
	case VGPU_OP_SGEMM: {
		cl_ulong boff = op->b_off;
		cl_uint m = op->m, nn = op->n, k = op->k, lda = op->lda, ldb = op->ldb,
			ldc = op->ldc;
		cl_kernel kk = cb->k[K_SGEMM];

		SETARG(kk, 0, d); SETARG(kk, 1, doff); SETARG(kk, 2, s); SETARG(kk, 3, soff);
		SETARG(kk, 4, boff); SETARG(kk, 5, m); SETARG(kk, 6, nn); SETARG(kk, 7, k);
		SETARG(kk, 8, lda); SETARG(kk, 9, ldb); SETARG(kk, 10, ldc);
		gws[0] = nn;
		gws[1] = m;
		if (!err)
			err = launch(cb, kk, 2, gws);
		break;
	}
	default:
		err = CL_INVALID_OPERATION;
	}
	/* No wait here: the queue is in order, and the caller's blocking map
	 * or read of the result waits for the kernel. */
	return err;
}

/* The zero-copy path: buffers over the windows. */
static cl_int run_locked(struct cl_backend *cb, const struct vop *op)
{
	cl_int err = CL_SUCCESS;
	cl_mem d = NULL, s = NULL;
	uint64_t wlen = written_len(op);

	d = wrap(cb, op->dst, &err);
	if (!d)
		goto out;
	if (op->src) {
		s = op->src == op->dst ? (clRetainMemObject(d), d) : wrap(cb, op->src, &err);
		if (!s)
			goto out;
	}
	err = launch_op(cb, op, d, s);
	if (err == CL_SUCCESS)
		err = wlen ? sync_written(cb, d, op->dst, op->dst_off, wlen) : clFinish(cb->q);
out:
	if (s)
		clReleaseMemObject(s);
	if (d)
		clReleaseMemObject(d);
	return err;
}

/*
 * For the benchmark only: the path a VMM without userptr takes. The
 * runtime allocates its own buffers; the inputs are written in from the
 * windows (clEnqueueWriteBuffer), the op runs, and what it wrote is read
 * back (clEnqueueReadBuffer). Not counted in cl_copied_bytes, which is
 * about the zero-copy path.
 */
uint32_t engine_opencl_run_copied(struct engine_backend *b, const struct vop *op)
{
	struct cl_backend *cb = (struct cl_backend *)b;
	cl_int err = CL_SUCCESS;
	cl_mem d = NULL, s = NULL;
	uint64_t wlen = written_len(op);
	uint8_t *dw = res_window_base(op->dst), *sw = op->src ? res_window_base(op->src) : NULL;

	if (!dw || (op->src && !sw))
		return VGPU_COMPUTE_E_NOWINDOW;
	pthread_mutex_lock(&cb->lock);
	d = clCreateBuffer(cb->ctx, CL_MEM_READ_WRITE, (size_t)op->dst->size, NULL, &err);
	if (d && op->src)
		s = op->src == op->dst ? (clRetainMemObject(d), d)
				       : clCreateBuffer(cb->ctx, CL_MEM_READ_WRITE,
							(size_t)op->src->size, NULL, &err);
	if (d && (!op->src || s)) {
		/* In: the source range, and the destination when the op reads it. */
		if (op->src && op->src != op->dst) {
			uint64_t off = op->opcode == VGPU_OP_SGEMM ? 0 : op->src_off;
			uint64_t len = op->opcode == VGPU_OP_SGEMM ? op->src->size : op->len;

			err = clEnqueueWriteBuffer(cb->q, s, CL_FALSE, (size_t)off, (size_t)len,
						   sw + off, 0, NULL, NULL);
		}
		if (err == CL_SUCCESS && (op->opcode == VGPU_OP_SAXPY || op->src == op->dst))
			err = clEnqueueWriteBuffer(cb->q, d, CL_FALSE, 0, (size_t)op->dst->size, dw,
						   0, NULL, NULL);
		if (err == CL_SUCCESS)
			err = launch_op(cb, op, d, s);
		if (err == CL_SUCCESS)
			err = wlen ? clEnqueueReadBuffer(cb->q, d, CL_TRUE, (size_t)op->dst_off,
							 (size_t)wlen, dw + op->dst_off, 0, NULL, NULL)
				   : clFinish(cb->q);
	}
	if (s)
		clReleaseMemObject(s);
	if (d)
		clReleaseMemObject(d);
	pthread_mutex_unlock(&cb->lock);
	return err == CL_SUCCESS ? VGPU_COMPUTE_OK : VGPU_COMPUTE_E_DEVICE;
}

static uint32_t cl_run(struct engine_backend *b, const struct guest_mem *gm, const struct vop *op)
{
	struct cl_backend *cb = (struct cl_backend *)b;
	cl_int err;

	(void)gm;
	/* Checked in validation; the windows cannot go away while the
	 * submit runs: the op holds its backings, and the memory table
	 * changes only while no submit is queued or running. */
	if (!res_window_base(op->dst) || (op->src && !res_window_base(op->src)))
		return VGPU_COMPUTE_E_NOWINDOW;
	pthread_mutex_lock(&cb->lock);
	err = run_locked(cb, op);
	pthread_mutex_unlock(&cb->lock);
	if (err != CL_SUCCESS) {
		STAT_ADD(cl_errors, 1);
		hlog("OpenCL: op %u failed: error %d", op->opcode, (int)err);
		return VGPU_COMPUTE_E_DEVICE;
	}
	return VGPU_COMPUTE_OK;
}

static void cl_destroy(struct engine_backend *b)
{
	struct cl_backend *cb = (struct cl_backend *)b;

	for (unsigned i = 0; i < K_N; i++)
		if (cb->k[i])
			clReleaseKernel(cb->k[i]);
	if (cb->part)
		clReleaseMemObject(cb->part);
	if (cb->prog)
		clReleaseProgram(cb->prog);
	if (cb->q)
		clReleaseCommandQueue(cb->q);
	if (cb->ctx)
		clReleaseContext(cb->ctx);
	pthread_mutex_destroy(&cb->lock);
	free(cb);
}

/* The first GPU of any platform, else the first device of any kind. */
static int pick_device(struct cl_backend *cb)
{
	cl_platform_id plats[16];
	cl_uint np = 0;

	if (clGetPlatformIDs(16, plats, &np) != CL_SUCCESS || np == 0)
		return -1;
	if (np > 16)
		np = 16;
	for (int pass = 0; pass < 2; pass++) {
		for (cl_uint i = 0; i < np; i++) {
			cl_device_id dev;
			cl_uint nd = 0;

			if (clGetDeviceIDs(plats[i], pass ? CL_DEVICE_TYPE_ALL : CL_DEVICE_TYPE_GPU,
					   1, &dev, &nd) == CL_SUCCESS && nd) {
				cb->plat = plats[i];
				cb->dev = dev;
				return 0;
			}
		}
	}
	return -1;
}

struct engine_backend *engine_opencl_new(void)
{
	struct cl_backend *cb = calloc(1, sizeof(*cb));
	char pname[256] = "", dname[256] = "", dver[256] = "", ext[8192] = "";
	cl_uint units = 1;
	cl_int err;
	const char *opts;

	if (!cb)
		return NULL;
	pthread_mutex_init(&cb->lock, NULL);
	if (pick_device(cb)) {
		hlog("OpenCL: no platform with a device");
		goto fail;
	}
	clGetPlatformInfo(cb->plat, CL_PLATFORM_NAME, sizeof(pname) - 1, pname, NULL);
	clGetDeviceInfo(cb->dev, CL_DEVICE_NAME, sizeof(dname) - 1, dname, NULL);
	clGetDeviceInfo(cb->dev, CL_DEVICE_VERSION, sizeof(dver) - 1, dver, NULL);
	clGetDeviceInfo(cb->dev, CL_DEVICE_EXTENSIONS, sizeof(ext) - 1, ext, NULL);
	clGetDeviceInfo(cb->dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof(units), &units, NULL);
	cb->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
	hlog("OpenCL: platform \"%s\", device \"%s\" (%s, %u compute units%s)", pname, dname,
	     dver, units, cb->fp64 ? ", fp64" : ", no fp64: SUM_F32 and REDUCE_F32 refused");
	cb->ctx = clCreateContext(NULL, 1, &cb->dev, NULL, NULL, &err);
	if (!cb->ctx)
		goto cl_fail;
	cb->q = clCreateCommandQueue(cb->ctx, cb->dev, 0, &err);
	if (!cb->q)
		goto cl_fail;
	{
		const char *srcs[1] = { kernel_src };

		cb->prog = clCreateProgramWithSource(cb->ctx, 1, srcs, NULL, &err);
	}
	if (!cb->prog)
		goto cl_fail;
	opts = cb->fp64 ? "-DHAVE_FP64 -cl-std=CL1.2" : "-cl-std=CL1.2";
	err = clBuildProgram(cb->prog, 1, &cb->dev, opts, NULL, NULL);
	if (err != CL_SUCCESS) {
		char log[2048] = "";

		clGetProgramBuildInfo(cb->prog, cb->dev, CL_PROGRAM_BUILD_LOG, sizeof(log) - 1,
				      log, NULL);
		hlog("OpenCL: building the kernels failed (%d): %s", (int)err, log);
		goto fail;
	}
	for (unsigned i = 0; i < K_N; i++) {
		if (!cb->fp64 && (i == K_SUM || i == K_RPART || i == K_RFINAL))
			continue;
		cb->k[i] = clCreateKernel(cb->prog, kernel_names[i], &err);
		if (!cb->k[i])
			goto cl_fail;
	}
	cb->part = clCreateBuffer(cb->ctx, CL_MEM_READ_WRITE, REDUCE_PARTS * sizeof(cl_double),
				  NULL, &err);
	if (!cb->part)
		goto cl_fail;
	cb->b.name = "opencl";
	cb->b.id = VGPU_BACKEND_OPENCL;
	cb->b.num_threads = units;
	cb->b.check = cl_check;
	cb->b.run = cl_run;
	cb->b.destroy = cl_destroy;
	return &cb->b;
cl_fail:
	hlog("OpenCL: setup failed: error %d", (int)err);
fail:
	cl_destroy(&cb->b);
	return NULL;
}
