/* SPDX-License-Identifier: MIT */
/*
 * vgpu_compute.h - the compute capset of virtgpu-userptr.
 *
 * This is the one definition of what the guest and the host device agree
 * on beyond the virtio-gpu wire format itself: the capset the device
 * advertises, and the command stream carried by VIRTIO_GPU_CMD_SUBMIT_3D
 * in a context created on that capset. docs/protocol.md describes the
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
 * A device answers GET_CAPSET for every version from 1 to the one it
 * reports in CAPSET_INFO, each with that version's layout and op set, so
 * a guest written for version 1 keeps working unchanged.
 */
#define VGPU_COMPUTE_CAPSET_VERSION 2u
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
};

/* Size of the caps payload of version 1 (the fields up to max_op_bytes). */
#define VGPU_COMPUTE_CAPS_V1_SIZE 24u

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
	VGPU_OP_COUNT
};

#define VGPU_COMPUTE_OP_MASK_V1 ((1u << (VGPU_OP_SUM_F32 + 1)) - 1u)
#define VGPU_COMPUTE_OP_MASK ((1u << VGPU_OP_COUNT) - 1u)
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
	uint64_t arg1;      /* must be 0 except for SGEMM */
	union {
		uint64_t reserved;  /* must be 0 except for SGEMM */
		uint64_t arg2;      /* SGEMM: ldb | ldc << 32 */
	};
};

#define VGPU_COMPUTE_MAGIC 0x43504756u /* "VGPC" */

/*
 * Submit header, followed by num_ops struct vgpu_compute_op. The whole
 * SUBMIT_3D payload must be exactly sizeof(header) + num_ops * 64 bytes.
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
	VGPU_COMPUTE_E_TIMEOUT = 14,   /* the op ran past the context's time budget */
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
 * (0 for NOP), or the negative of a vgpu_compute_result when the fields
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
	default:
		return -(int)VGPU_COMPUTE_E_OPCODE;
	}
}

#ifdef __cplusplus
#define VGPU_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define VGPU_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif
VGPU_STATIC_ASSERT(sizeof(struct vgpu_compute_caps) == 32, "caps size");
VGPU_STATIC_ASSERT(sizeof(struct vgpu_compute_op) == 64, "op size");
VGPU_STATIC_ASSERT(sizeof(struct vgpu_compute_submit) == 24, "submit size");
VGPU_STATIC_ASSERT(sizeof(struct vgpu_compute_status) == 16, "status size");

#endif /* VGPU_COMPUTE_H */
