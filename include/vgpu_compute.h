/* SPDX-License-Identifier: MIT */
/*
 * vgpu_compute.h - the compute capset of virtgpu-userptr.
 *
 * This is the one definition of what the guest and the host device agree
 * on beyond the virtio-gpu wire format itself: the capset the device
 * advertises, and the command stream carried by VIRTIO_GPU_CMD_SUBMIT_3D
 * in a context created on that capset. docs/compute-capset.md describes the
 * same rules in specification language.
 *
 * Everything is little-endian. Structures have explicit padding and fixed
 * sizes (checked below), so the layout is the same for every compiler.
 */
#ifndef VGPU_COMPUTE_H
#define VGPU_COMPUTE_H

#include <stdint.h>

/* Capset id for VIRTIO_GPU_CMD_GET_CAPSET_INFO / CTX_CREATE context_init. */
#define VGPU_COMPUTE_CAPSET_ID 16u
/*
 * Version 2 adds SGEMM, REDUCE_F32 and the backend field of the caps.
 * Version 3 adds the guest's own programs: OpenCL C built on the device,
 * kernels looked up in them and dispatched on the context's resources
 * (VGPU_OP_PROGRAM_BUILD and on), run in a sandboxed worker process per
 * context. A device answers GET_CAPSET for every version from 1 to the one
 * it reports in CAPSET_INFO, each with that version's layout and op set, so
 * a guest written for an older version keeps working unchanged.
 */
#define VGPU_COMPUTE_CAPSET_VERSION 3u
#define VGPU_COMPUTE_CAPSET_VERSION_MIN 1u

/* Context name the guest library passes in CTX_CREATE (debug only). */
#define VGPU_COMPUTE_CTX_NAME "vgpu-compute"

/* Limits the device enforces; the capset reports the values in force. */
#define VGPU_COMPUTE_MAX_OPS 256u        /* ops in one submit */
#define VGPU_COMPUTE_MAX_SUBMIT_BYTES \
	(sizeof(struct vgpu_compute_submit) + \
	 VGPU_COMPUTE_MAX_OPS * sizeof(struct vgpu_compute_op))

/* Payload of VIRTIO_GPU_RESP_OK_CAPSET for VGPU_COMPUTE_CAPSET_ID. */
struct vgpu_compute_caps {
	uint32_t version;       /* VGPU_COMPUTE_CAPSET_VERSION */
	uint32_t max_ops;       /* VGPU_COMPUTE_MAX_OPS */
	uint32_t op_mask;       /* bit n set: opcode n is supported */
	uint32_t num_threads;   /* worker threads of the engine */
	uint64_t max_op_bytes;  /* largest len one op may name */
	/* Version 2 and later: */
	uint32_t backend;       /* enum vgpu_compute_backend */
	uint32_t max_gemm_dim;  /* largest M, N or K of SGEMM */
	/* Version 3 and later: */
	uint32_t features;          /* VGPU_FEATURE_*: what the device offers now */
	uint32_t max_programs;      /* program ids are 1 .. max_programs, per context */
	uint32_t max_kernels;       /* kernel ids are 1 .. max_kernels, per context */
	uint32_t max_kernel_args;   /* arguments of one DISPATCH */
	uint32_t max_program_bytes; /* the input of one PROGRAM_BUILD */
	uint32_t max_payload_bytes; /* the inline payload of one op */
	uint64_t time_budget_ns;    /* an op that runs longer loses its context */
};

/* Size of the caps payload of version 1 (the fields up to max_op_bytes)
 * and of version 2 (up to max_gemm_dim). */
#define VGPU_COMPUTE_CAPS_V1_SIZE 24u
#define VGPU_COMPUTE_CAPS_V2_SIZE 32u

/* caps.features (version 3). */
#define VGPU_FEATURE_PROGRAMS (1u << 0) /* PROGRAM_*, KERNEL_*, DISPATCH, QUERY */
#define VGPU_FEATURE_IL       (1u << 1) /* PROGRAM_BUILD takes SPIR-V (VGPU_PROGRAM_IL) */
#define VGPU_FEATURE_FP64     (1u << 2) /* the device's kernels have double */
#define VGPU_FEATURE_FP16     (1u << 3) /* ... and half */

/* What runs the ops on the host (caps.backend). */
enum vgpu_compute_backend {
	VGPU_BACKEND_CPU = 0,     /* the device's own C loops on worker threads */
	VGPU_BACKEND_OPENCL = 1,  /* OpenCL kernels over the guest's pages */
};

/* Opcodes. */
enum vgpu_compute_opcode {
	VGPU_OP_NOP = 0,
	/* dst[dst_off, +len) = src[src_off, +len); the ranges may not overlap
	 * when src_res == dst_res. */
	VGPU_OP_COPY = 1,
	/* dst[dst_off, +len) = repeated little-endian u32 (uint32_t)arg0;
	 * len % 4 == 0. */
	VGPU_OP_FILL = 2,
	/* XXH64(src[src_off, +len), seed = arg0) written as a little-endian
	 * u64 at dst[dst_off, +8). */
	VGPU_OP_CHECKSUM = 3,
	/* y = a * x + y over f32: y at dst[dst_off, +len), x at
	 * src[src_off, +len), a = the f32 whose bits are (uint32_t)arg0;
	 * len % 4 == 0. */
	VGPU_OP_SAXPY = 4,
	/* sum of the f32 values of src[src_off, +len), accumulated in f64 in
	 * index order, written as a little-endian f64 at dst[dst_off, +8);
	 * len % 4 == 0. */
	VGPU_OP_SUM_F32 = 5,
	/* Version 2. C = A x B over row-major f32 matrices (no alpha/beta):
	 *   C (M x N, row stride ldc elements) at dst[dst_off, ...),
	 *   A (M x K, row stride lda) at src[src_off, ...),
	 *   B (K x N, row stride ldb) at src[b_off, ...) (A and B share src_res),
	 * with b_off = len, M = arg0 & 0xffffffff, N = arg0 >> 32,
	 * K = arg1 & 0xffffffff, lda = arg1 >> 32, ldb = arg2 & 0xffffffff,
	 * ldc = arg2 >> 32; a stride of 0 means packed (lda = K, ldb = ldc = N).
	 * Offsets % 4 == 0; 1 <= M, N, K <= max_gemm_dim; M * N * K <=
	 * VGPU_COMPUTE_MAX_GEMM_MACS; lda >= K, ldb >= N, ldc >= N; C may not
	 * overlap A or B. */
	VGPU_OP_SGEMM = 6,
	/* Version 2. Sum of the f32 values of src[src_off, +len), accumulated
	 * in f64 in an order the device chooses (in parallel), written as a
	 * little-endian f64 at dst[dst_off, +8); len % 4 == 0. See
	 * docs/compute-capset.md for the tolerance. */
	VGPU_OP_REDUCE_F32 = 7,
	/*
	 * Version 3: the guest's own programs (docs/compute-capset.md,
	 * section 5). These ops are followed in the stream by `len` bytes
	 * of payload, padded with zeros to a multiple of 8; `len` counts
	 * the payload, not the padding. Programs and kernels are objects of
	 * the context, named by ids the guest chooses.
	 */
	/* Build program arg0 from the input at src[src_off, +arg1): a
	 * struct vgpu_program_input, then its options, then its source or
	 * binary. The outcome (struct vgpu_build_result, then as much of
	 * the build log as fits) goes to dst[dst_off, +arg2). A failed
	 * build is not a failed op: the result record says so. */
	VGPU_OP_PROGRAM_BUILD = 8,
	/* dst[dst_off, +arg2) = struct vgpu_blob_header, then program arg0's
	 * binary (CL_PROGRAM_BINARIES) when it fits. */
	VGPU_OP_PROGRAM_BINARY = 9,
	/* Forget program arg0 (kernels made from it stay valid). */
	VGPU_OP_PROGRAM_RELEASE = 10,
	/* Kernel arg0 = the kernel of program arg1 named by the payload (a
	 * NUL-terminated name); dst[dst_off, +arg2) = struct
	 * vgpu_kernel_info and its struct vgpu_kernel_arg_info records. */
	VGPU_OP_KERNEL_CREATE = 11,
	VGPU_OP_KERNEL_RELEASE = 12,   /* forget kernel arg0 */
	/* Run kernel arg0 over an NDRange; the payload is a struct
	 * vgpu_dispatch, its struct vgpu_dispatch_arg records, then the
	 * bytes of its by-value arguments. */
	VGPU_OP_DISPATCH = 13,
	/* dst[dst_off, +arg2) = the answer to query arg0 (VGPU_QUERY_*). */
	VGPU_OP_QUERY = 14,
	VGPU_OP_COUNT
};

#define VGPU_COMPUTE_OP_MASK_V1 ((1u << (VGPU_OP_SUM_F32 + 1)) - 1u)
#define VGPU_COMPUTE_OP_MASK_V2 ((1u << (VGPU_OP_REDUCE_F32 + 1)) - 1u)
#define VGPU_COMPUTE_OP_MASK ((1u << VGPU_OP_COUNT) - 1u)
/* The ops that carry a payload and run in the context's worker. */
#define VGPU_COMPUTE_OP_MASK_PROGRAMS (VGPU_COMPUTE_OP_MASK & ~VGPU_COMPUTE_OP_MASK_V2)
#define VGPU_COMPUTE_MAX_GEMM_DIM 8192u
/* Most multiply-adds one SGEMM may ask for (2^33: seconds on a CPU), so
 * that one op cannot hold the device for minutes. */
#define VGPU_COMPUTE_MAX_GEMM_MACS (1ull << 33)

/* One op: 64 bytes. Unused fields must be zero. */
struct vgpu_compute_op {
	uint32_t opcode;    /* enum vgpu_compute_opcode */
	uint32_t flags;     /* must be 0 */
	uint32_t dst_res;   /* resource id written by the op (0: none) */
	uint32_t src_res;   /* resource id read by the op (0: none) */
	uint64_t dst_off;
	uint64_t src_off;
	uint64_t len;       /* bytes */
	uint64_t arg0;
	uint64_t arg1;      /* must be 0 except for SGEMM and version 3 ops */
	union {
		uint64_t reserved;  /* must be 0 except for SGEMM and version 3 ops */
		uint64_t arg2;      /* SGEMM: ldb | ldc << 32; version 3: output room */
	};
};

#define VGPU_COMPUTE_MAGIC 0x43504756u /* "VGPC" */

/*
 * Submit header, followed by num_ops struct vgpu_compute_op. The whole
 * SUBMIT_3D payload must be exactly sizeof(header) + num_ops * 64 bytes,
 * plus the padded payloads of version 3 ops (each right after its op), and
 * at most VGPU_COMPUTE_MAX_SUBMIT_BYTES_V3 with them.
 *
 * If status_res is non-zero, the device writes a struct
 * vgpu_compute_status at status_res[status_off, +16) when the submit ends,
 * whether it succeeded or failed (status_res must be attached to the
 * context and writable). That is how a guest learns why a submit failed:
 * the SUBMIT_3D response carries only a VIRTIO_GPU_RESP_* code, which
 * drivers do not pass to userspace.
 */
struct vgpu_compute_submit {
	uint32_t magic;       /* VGPU_COMPUTE_MAGIC */
	uint32_t num_ops;     /* 1 .. VGPU_COMPUTE_MAX_OPS */
	uint32_t status_res;  /* 0: no status record */
	uint32_t reserved;    /* must be 0 */
	uint64_t status_off;  /* 8-byte aligned */
};

/* Result codes in struct vgpu_compute_status.result. */
enum vgpu_compute_result {
	VGPU_COMPUTE_OK = 0,
	VGPU_COMPUTE_E_MALFORMED = 1,  /* bad magic, size, count, nonzero reserved */
	VGPU_COMPUTE_E_OPCODE = 2,     /* unknown opcode or flags */
	VGPU_COMPUTE_E_RESOURCE = 3,   /* resource unknown or not attached to the context */
	VGPU_COMPUTE_E_RANGE = 4,      /* offset/len outside the resource, or overflow */
	VGPU_COMPUTE_E_READONLY = 5,   /* write into a read-only (RDONLY userptr) resource */
	VGPU_COMPUTE_E_ALIGN = 6,      /* len or offset not aligned as the op requires */
	VGPU_COMPUTE_E_OVERLAP = 7,    /* COPY with overlapping ranges in one resource */
	VGPU_COMPUTE_E_NOBACKING = 8,  /* resource has no backing pages */
	/* The OpenCL backend needs a zero-copy window for every resource an op
	 * names; this one has none (mapping budget spent, or its mem entries
	 * are not page aligned). Nothing has been written. */
	VGPU_COMPUTE_E_NOWINDOW = 9,
	VGPU_COMPUTE_E_DEVICE = 10,    /* the compute device failed while running */
	/* Version 3. */
	VGPU_COMPUTE_E_OBJECT = 11,    /* program or kernel id unknown (or in use, to create) */
	VGPU_COMPUTE_E_ARGS = 12,      /* DISPATCH arguments do not fit the kernel */
	VGPU_COMPUTE_E_WORKSIZE = 13,  /* work sizes, offsets or local memory out of bounds */
	VGPU_COMPUTE_E_TIMEOUT = 14,   /* the op ran past the context's time budget */
	VGPU_COMPUTE_E_LOST = 15,      /* the context's worker is gone: create a new context */
	VGPU_COMPUTE_E_NOPROGRAMS = 16,/* the device runs no programs now (no usable worker) */
};

struct vgpu_compute_status {
	uint32_t result;     /* enum vgpu_compute_result */
	uint32_t op_index;   /* index of the failing op (num_ops if none) */
	uint64_t ops_done;   /* ops executed; 0 when validation failed */
};

/*
 * Validation happens for the whole submit before any op runs: a submit
 * that fails writes nothing into any resource except its status record.
 */

/* ---- version 3: programs, kernels, dispatch -------------------------------- */

/* Largest inline payload of one op, and of a whole submit with payloads. */
#define VGPU_COMPUTE_MAX_PAYLOAD (64u * 1024u)
#define VGPU_COMPUTE_MAX_SUBMIT_BYTES_V3 (1024u * 1024u)

/* The 8-byte padded size of a payload. */
#define VGPU_COMPUTE_PAYLOAD_PAD(n) (((uint64_t)(n) + 7u) & ~(uint64_t)7u)

enum vgpu_program_kind {
	VGPU_PROGRAM_SOURCE = 0,  /* OpenCL C source text */
	VGPU_PROGRAM_BINARY = 1,  /* a binary PROGRAM_BINARY returned earlier */
	VGPU_PROGRAM_IL = 2,      /* SPIR-V (only with VGPU_FEATURE_IL) */
};

/* At the start of PROGRAM_BUILD's input; options_len bytes of build
 * options (no NUL needed) and data_len bytes of program follow. */
struct vgpu_program_input {
	uint32_t kind;          /* enum vgpu_program_kind */
	uint32_t options_len;   /* < 4096 */
	uint64_t data_len;      /* 1 .. caps.max_program_bytes */
};

/* The build outcome. */
struct vgpu_build_result {
	int32_t status;         /* 0: built; else the OpenCL error (CL_BUILD_PROGRAM_FAILURE,
				 * CL_INVALID_BINARY, CL_INVALID_BUILD_OPTIONS, ...) */
	uint32_t num_kernels;   /* kernels in the program once built */
	uint64_t log_size;      /* bytes of the whole build log */
	uint64_t binary_size;   /* bytes PROGRAM_BINARY will return */
	uint64_t log_written;   /* of the log, bytes after this record (what fits) */
};

/* At the start of PROGRAM_BINARY's and QUERY's output: how much there is,
 * and how much of it follows (size when it fits, else 0). */
struct vgpu_blob_header {
	uint64_t size;
	uint64_t written;
};

/* Address space of a kernel argument (CL_KERNEL_ARG_ADDRESS_QUALIFIER). */
enum vgpu_arg_space {
	VGPU_ARG_SPACE_PRIVATE = 0,   /* by value */
	VGPU_ARG_SPACE_GLOBAL = 1,
	VGPU_ARG_SPACE_CONSTANT = 2,
	VGPU_ARG_SPACE_LOCAL = 3,
	/* The device does not know (a program built from a binary: OpenCL
	 * keeps no argument info for those): any argument kind is sent, and
	 * the device refuses what does not fit the kernel (E_ARGS). */
	VGPU_ARG_SPACE_UNKNOWN = 4,
};

#define VGPU_KERNEL_NAME_MAX 256u
#define VGPU_ARG_NAME_MAX 64u

struct vgpu_kernel_info {
	uint32_t num_args;
	int32_t status;                  /* 0: the kernel was made; else the OpenCL error
					  * (CL_INVALID_KERNEL_NAME, ...) and nothing else is set */
	uint64_t work_group_size;        /* CL_KERNEL_WORK_GROUP_SIZE */
	uint64_t compile_work_group_size[3];
	uint64_t preferred_multiple;     /* CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE */
	uint64_t local_mem_size;         /* CL_KERNEL_LOCAL_MEM_SIZE */
	uint64_t private_mem_size;       /* CL_KERNEL_PRIVATE_MEM_SIZE */
	/* num_args struct vgpu_kernel_arg_info follow, as many as fit */
};

struct vgpu_kernel_arg_info {
	uint32_t space;                  /* enum vgpu_arg_space */
	uint32_t access;                 /* CL_KERNEL_ARG_ACCESS_QUALIFIER */
	uint32_t type_qualifier;         /* CL_KERNEL_ARG_TYPE_QUALIFIER bits */
	uint32_t reserved;
	char type_name[VGPU_ARG_NAME_MAX]; /* NUL-terminated; "" when the device does not say */
	char name[VGPU_ARG_NAME_MAX];
};

enum vgpu_dispatch_arg_kind {
	VGPU_DARG_BUFFER = 0,     /* res [offset, +size), access VGPU_OP_READ|VGPU_OP_WRITE */
	VGPU_DARG_NULL = 1,       /* a NULL buffer */
	VGPU_DARG_VALUE = 2,      /* size bytes at offset in the payload's value area */
	VGPU_DARG_LOCAL = 3,      /* size bytes of local memory */
};

struct vgpu_dispatch_arg {
	uint32_t kind;            /* enum vgpu_dispatch_arg_kind */
	uint32_t access;          /* buffers: VGPU_OP_READ | VGPU_OP_WRITE */
	uint32_t res;             /* buffers: a resource attached to the context */
	uint32_t reserved;
	uint64_t offset;
	uint64_t size;
};

/* DISPATCH's payload: this, num_args struct vgpu_dispatch_arg, then the
 * value area (the bytes of VGPU_DARG_VALUE arguments). */
struct vgpu_dispatch {
	uint32_t work_dim;        /* 1 .. 3 */
	uint32_t num_args;
	uint64_t global_offset[3];
	uint64_t global_size[3];  /* each >= 1 in the dims used */
	uint64_t local_size[3];   /* all 0: the device chooses */
};

/* QUERY ids. */
enum vgpu_query {
	/* The compute device as OpenCL describes it: a sequence of records
	 * (struct vgpu_info_record, then size bytes, padded to 8), one per
	 * CL_DEVICE_* parameter the device reports, in the device's own
	 * terms; the guest filters what it implements. */
	VGPU_QUERY_DEVICE_INFO = 1,
};

struct vgpu_info_record {
	uint32_t param;           /* a CL_DEVICE_* or CL_PLATFORM_* value */
	uint32_t size;            /* bytes of the value */
};

/*
 * The byte ranges an op reads and writes, derived from its fields alone.
 * This is the one description of what each opcode touches: the device's
 * validation checks every range against its resource, and a guest library
 * copies exactly these ranges in and out where it cannot share memory with
 * the device. A new opcode is added here first.
 */
enum vgpu_op_side {
	VGPU_OP_DST = 0,          /* the range lies in dst_res */
	VGPU_OP_SRC = 1,          /* the range lies in src_res */
};

#define VGPU_OP_READ  1u          /* the op reads the range */
#define VGPU_OP_WRITE 2u          /* the op writes the range */
#define VGPU_OP_MAX_RANGES 3u

struct vgpu_op_range {
	uint32_t side;            /* enum vgpu_op_side */
	uint32_t access;          /* VGPU_OP_READ | VGPU_OP_WRITE */
	uint64_t off;             /* byte offset in the resource */
	uint64_t len;             /* bytes, > 0 */
};

/* SGEMM's shape, decoded from arg0..arg2 (a stride of 0 means packed). */
struct vgpu_gemm_shape {
	uint32_t m, n, k, lda, ldb, ldc;
};

static inline void vgpu_gemm_shape(const struct vgpu_compute_op *op, struct vgpu_gemm_shape *g)
{
	g->m = (uint32_t)op->arg0;
	g->n = (uint32_t)(op->arg0 >> 32);
	g->k = (uint32_t)op->arg1;
	g->lda = (uint32_t)(op->arg1 >> 32);
	g->ldb = (uint32_t)op->arg2;
	g->ldc = (uint32_t)(op->arg2 >> 32);
	if (!g->lda)
		g->lda = g->k;
	if (!g->ldb)
		g->ldb = g->n;
	if (!g->ldc)
		g->ldc = g->n;
}

/* Bytes spanned by a rows x cols f32 matrix with a row stride of ld
 * elements (1 <= rows, cols <= 2^32, ld >= cols: no overflow in 64 bits). */
static inline uint64_t vgpu_mat_bytes(uint32_t rows, uint32_t cols, uint32_t ld)
{
	return ((uint64_t)(rows - 1) * ld + cols) * 4;
}

static inline void vgpu_op_range_set(struct vgpu_op_range *r, uint32_t side, uint32_t access,
				     uint64_t off, uint64_t len)
{
	r->side = side;
	r->access = access;
	r->off = off;
	r->len = len;
}

/*
 * Fill r[] with the ranges op (host byte order) touches; returns how many
 * (0 for NOP, the releases and DISPATCH), or the negative of a vgpu_compute_result when the fields
 * that size the ranges are themselves invalid: an unknown opcode
 * (-VGPU_COMPUTE_E_OPCODE), an SGEMM shape outside its limits
 * (-VGPU_COMPUTE_E_MALFORMED, or -VGPU_COMPUTE_E_RANGE past
 * VGPU_COMPUTE_MAX_GEMM_MACS). A range may be empty only when len is 0;
 * whether the other fields are right is left to validation.
 */
static inline int vgpu_op_ranges(const struct vgpu_compute_op *op,
				 struct vgpu_op_range r[VGPU_OP_MAX_RANGES])
{
	struct vgpu_gemm_shape g;

	switch (op->opcode) {
	case VGPU_OP_NOP:
		return 0;
	case VGPU_OP_COPY:
		vgpu_op_range_set(&r[0], VGPU_OP_SRC, VGPU_OP_READ, op->src_off, op->len);
		vgpu_op_range_set(&r[1], VGPU_OP_DST, VGPU_OP_WRITE, op->dst_off, op->len);
		return 2;
	case VGPU_OP_FILL:
		vgpu_op_range_set(&r[0], VGPU_OP_DST, VGPU_OP_WRITE, op->dst_off, op->len);
		return 1;
	case VGPU_OP_SAXPY:
		vgpu_op_range_set(&r[0], VGPU_OP_SRC, VGPU_OP_READ, op->src_off, op->len);
		vgpu_op_range_set(&r[1], VGPU_OP_DST, VGPU_OP_READ | VGPU_OP_WRITE,
				  op->dst_off, op->len);
		return 2;
	case VGPU_OP_CHECKSUM:
	case VGPU_OP_SUM_F32:
	case VGPU_OP_REDUCE_F32:
		vgpu_op_range_set(&r[0], VGPU_OP_SRC, VGPU_OP_READ, op->src_off, op->len);
		vgpu_op_range_set(&r[1], VGPU_OP_DST, VGPU_OP_WRITE, op->dst_off, 8);
		return 2;
	case VGPU_OP_SGEMM:
		vgpu_gemm_shape(op, &g);
		if (!g.m || !g.n || !g.k || g.m > VGPU_COMPUTE_MAX_GEMM_DIM ||
		    g.n > VGPU_COMPUTE_MAX_GEMM_DIM || g.k > VGPU_COMPUTE_MAX_GEMM_DIM ||
		    g.lda < g.k || g.ldb < g.n || g.ldc < g.n)
			return -(int)VGPU_COMPUTE_E_MALFORMED;
		if ((uint64_t)g.m * g.n * g.k > VGPU_COMPUTE_MAX_GEMM_MACS)
			return -(int)VGPU_COMPUTE_E_RANGE;
		/* A and B share src_res; B starts at len. */
		vgpu_op_range_set(&r[0], VGPU_OP_SRC, VGPU_OP_READ, op->src_off,
				  vgpu_mat_bytes(g.m, g.k, g.lda));
		vgpu_op_range_set(&r[1], VGPU_OP_SRC, VGPU_OP_READ, op->len,
				  vgpu_mat_bytes(g.k, g.n, g.ldb));
		vgpu_op_range_set(&r[2], VGPU_OP_DST, VGPU_OP_WRITE, op->dst_off,
				  vgpu_mat_bytes(g.m, g.n, g.ldc));
		return 3;
	/* Version 3: the input and the outcome; DISPATCH's buffers are in its
	 * payload (struct vgpu_dispatch_arg), not in the op. */
	case VGPU_OP_PROGRAM_BUILD:
		vgpu_op_range_set(&r[0], VGPU_OP_SRC, VGPU_OP_READ, op->src_off, op->arg1);
		vgpu_op_range_set(&r[1], VGPU_OP_DST, VGPU_OP_WRITE, op->dst_off, op->arg2);
		return 2;
	case VGPU_OP_PROGRAM_BINARY:
	case VGPU_OP_KERNEL_CREATE:
	case VGPU_OP_QUERY:
		vgpu_op_range_set(&r[0], VGPU_OP_DST, VGPU_OP_WRITE, op->dst_off, op->arg2);
		return 1;
	case VGPU_OP_PROGRAM_RELEASE:
	case VGPU_OP_KERNEL_RELEASE:
	case VGPU_OP_DISPATCH:
		return 0;
	default:
		return -(int)VGPU_COMPUTE_E_OPCODE;
	}
}

#ifdef __cplusplus
#define VGPU_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define VGPU_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif
VGPU_STATIC_ASSERT(sizeof(struct vgpu_compute_caps) == 64, "caps size");
VGPU_STATIC_ASSERT(sizeof(struct vgpu_program_input) == 16, "program input size");
VGPU_STATIC_ASSERT(sizeof(struct vgpu_build_result) == 32, "build result size");
VGPU_STATIC_ASSERT(sizeof(struct vgpu_kernel_info) == 64, "kernel info size");
VGPU_STATIC_ASSERT(sizeof(struct vgpu_kernel_arg_info) == 144, "kernel arg info size");
VGPU_STATIC_ASSERT(sizeof(struct vgpu_dispatch_arg) == 32, "dispatch arg size");
VGPU_STATIC_ASSERT(sizeof(struct vgpu_dispatch) == 80, "dispatch size");
VGPU_STATIC_ASSERT(sizeof(struct vgpu_compute_op) == 64, "op size");
VGPU_STATIC_ASSERT(sizeof(struct vgpu_compute_submit) == 24, "submit size");
VGPU_STATIC_ASSERT(sizeof(struct vgpu_compute_status) == 16, "status size");

#endif /* VGPU_COMPUTE_H */
