/* SPDX-License-Identifier: MIT */
/*
 * vgpu.h - libvgpu, the guest library of virtgpu-userptr.
 *
 * libvgpu opens a virtio-gpu render node, creates a context on the compute
 * capset (VGPU_COMPUTE_CAPSET_ID), turns ordinary process memory into GPU
 * buffers and runs compute ops (copy, fill, XXH64 checksum, saxpy, sum) on
 * the host device over those buffers.
 *
 * A buffer made from caller memory is a zero-copy userptr blob when the
 * kernel supports VIRTGPU_PARAM_RESOURCE_USERPTR (any blob-capable device;
 * a read-only buffer also needs a device that promises not to write it,
 * VIRTIO_GPU_F_BLOB_RDONLY): the host works on the caller's pages. Otherwise the library falls back to a mappable
 * guest blob of the same size and copies the caller's memory into it before
 * each submit and back out of it (read-write buffers only) after the submit
 * completes. The calls are the same on both paths;
 * vgpu_buffer_is_zero_copy() says which one a buffer took.
 *
 * Conventions: every function that can fail returns 0 (or a non-negative
 * value) on success and a negative errno on failure; vgpu_strerror() turns
 * such a value into a message and vgpu_error_detail() names the rule the
 * calling thread's last failed call broke.
 *
 * Threads: any thread may use any device, buffer and fence at any time.
 * A batch is externally synchronised: one thread at a time may add to,
 * submit, reset or destroy a given batch (as a Vulkan command buffer).
 *
 * fork(): the objects belong to the process that created them. In a child
 * every call on an inherited object fails with -ECHILD, and vgpu_close(),
 * vgpu_buffer_destroy() and vgpu_fence_destroy() there only free the
 * child's copy of the memory: they never touch the parent's GEM handles.
 *
 * Device loss: once the kernel reports the device gone (-ENODEV), every
 * later call on that device and its objects returns -ENODEV.
 *
 * ABI: the soname is libvgpu.so.VGPU_SOVERSION and every exported symbol
 * is versioned (VGPU_1 for 1.0, VGPU_1.1 for what 1.1 added; marked "1.1"
 * below). Every struct that crosses the ABI starts with struct_size, which
 * the caller sets to sizeof the struct it was compiled with (the inline
 * wrappers below do it); the library reads and fills only that much, and
 * takes every size down to the struct as 1.0 shipped it, so programs built
 * against an older, smaller struct keep working.
 *
 * Lifetime rules a runtime needs (docs/guest.md, "Lifetimes"):
 * - When vgpu_buffer_destroy() returns, neither the device nor the library
 *   touches the buffer's memory again: it first waits for the submits in
 *   flight that use the buffer (their copy-backs land before it returns).
 * - A batch holds a reference to every buffer it names until it is reset or
 *   destroyed; a destroyed buffer stays valid for the batch, but submitting
 *   a batch that names one fails with -EINVAL.
 * - Freeing or unmapping registered memory: the kernel pins the pages that
 *   were mapped at registration and the device keeps working on those pages
 *   until the buffer is destroyed; it never sees a later mapping at the same
 *   address. Destroy the buffer first (or, for cached registrations, call
 *   vgpu_invalidate() before munmap()/free()).
 *
 *   struct vgpu_device *dev;
 *   struct vgpu_buffer *src, *dst;
 *   struct vgpu_batch *b;
 *   int err = vgpu_open(NULL, 0, &dev);
 *   if (!err) err = vgpu_buffer_from_user(dev, data, size, VGPU_BUF_READ_ONLY, &src);
 *   if (!err) err = vgpu_buffer_from_user(dev, out, 4096, 0, &dst);
 *   if (!err) err = vgpu_batch_create(dev, &b);
 *   if (!err) err = vgpu_batch_checksum(b, dst, 0, src, 0, size, 0);
 *   if (!err) err = vgpu_batch_submit(b, NULL);   // out[0..7] = XXH64(data)
 *   if (err) fprintf(stderr, "vgpu: %s\n", vgpu_strerror(err));
 */
#ifndef VGPU_H
#define VGPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu_compute.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VGPU_VERSION_MAJOR 1
#define VGPU_VERSION_MINOR 2
#define VGPU_VERSION_PATCH 0
#define VGPU_SOVERSION 1
#define VGPU_MAKE_VERSION(major, minor, patch) \
	(((uint32_t)(major) << 16) | ((uint32_t)(minor) << 8) | (uint32_t)(patch))
#define VGPU_VERSION VGPU_MAKE_VERSION(VGPU_VERSION_MAJOR, VGPU_VERSION_MINOR, VGPU_VERSION_PATCH)

struct vgpu_device;
struct vgpu_buffer;
struct vgpu_batch;
struct vgpu_fence;

/* The version of the library actually loaded, as VGPU_MAKE_VERSION(). A
 * program built against VGPU_VERSION runs with any loaded version of the
 * same major and a minor at least as high. */
uint32_t vgpu_get_version(void);

/* ---- errors --------------------------------------------------------------- */

/*
 * Message for a value returned by a libvgpu call: "success" for 0 and
 * positive values, a libvgpu-specific text for the errnos the library gives a
 * specific meaning (documented at each call), strerror() otherwise. The
 * string is static; never NULL.
 */
const char *vgpu_strerror(int err);

/*
 * What the calling thread's last failed libvgpu call objected to, naming
 * the rule ("vgpu_batch_fill: len 6 is not a multiple of 4"); "" when the
 * thread has had no failure yet. The string belongs to the thread and stays
 * valid until its next libvgpu call.
 */
const char *vgpu_error_detail(void);

/* ---- device --------------------------------------------------------------- */

/* vgpu_open() flags */
#define VGPU_OPEN_NO_USERPTR (1u << 0) /* never use userptr blobs (copy path) */

/*
 * Open a virtio-gpu render node and create the compute context on it.
 * path: a DRM node such as "/dev/dri/renderD128", or NULL to take the
 * first render node whose driver is "virtio_gpu" (the environment variable
 * VGPU_DEVICE, when set, is used instead of the search).
 * Any capset version from 1 to VGPU_COMPUTE_CAPSET_VERSION is accepted:
 * vgpu_info.caps.version says which one the device has, and op_mask which
 * ops it runs (typed ops it lacks fail with -EOPNOTSUPP when added).
 * Errors: -EINVAL (bad flags or out NULL), -ENODEV (no virtio_gpu render
 * node, or path is not one), -EOPNOTSUPP (the device lacks blob resources,
 * context init or the compute capset), -EBUSY (a context already exists on
 * the fd, cannot happen for a fresh open), errors of open(2) and the ioctls.
 * Every failure sets vgpu_error_detail().
 */
int vgpu_open(const char *path, unsigned int flags, struct vgpu_device **out);

/* Same on a DRM fd the caller opened; the library dup()s it. The fd must
 * not have a context yet (no buffer created on it): -EBUSY otherwise. */
int vgpu_open_fd(int fd, unsigned int flags, struct vgpu_device **out);

/* Close the device. It first waits for every submit still in flight and
 * retires it; buffers still alive are destroyed with it; batches and fences
 * are not: destroy them first (they must not be used after this). NULL is
 * accepted. */
void vgpu_close(struct vgpu_device *dev);

/*
 * The compute capset's fields, in the library's own layout: the capset's
 * wire struct (vgpu_compute.h) grows with each capset version, this one
 * does not; fields of later capset versions are added at the end of
 * struct vgpu_info instead. Fields the device's capset version lacks are 0.
 */
struct vgpu_caps {
	uint32_t version;       /* capset version in use */
	uint32_t max_ops;       /* ops in one submit */
	uint32_t op_mask;       /* bit n set: opcode n is supported */
	uint32_t num_threads;   /* worker threads of the device's engine */
	uint64_t max_op_bytes;  /* largest len one op may name */
	uint32_t backend;       /* enum vgpu_compute_backend (version 2) */
	uint32_t max_gemm_dim;  /* largest M, N or K of SGEMM (version 2) */
};

struct vgpu_info {
	size_t struct_size;         /* sizeof(struct vgpu_info) of the caller */
	char path[64];              /* node opened */
	char driver[32];            /* DRM driver name ("virtio_gpu") */
	int drv_major, drv_minor, drv_patch;
	/* VIRTGPU_PARAM_* values; -1 when the kernel does not know the param */
	int64_t param_3d_features;
	int64_t param_capset_query_fix;
	int64_t param_resource_blob;
	int64_t param_host_visible;
	int64_t param_cross_device;
	int64_t param_context_init;
	int64_t param_supported_capset_ids;
	int64_t param_explicit_debug_name;
	int64_t param_resource_userptr;
	bool userptr;               /* buffers from user memory are zero-copy */
	bool userptr_disabled;      /* VGPU_OPEN_NO_USERPTR was given */
	struct vgpu_caps caps;      /* the compute capset's contents */
	uint32_t num_rings;         /* rings of the context (vgpu_submit_info.ring) */
	uint32_t max_in_flight;     /* submits that can be in flight at once */
	/* 1.2: capset version 3, the guest's own programs (0 when the device
	 * lacks them or answers an older version) */
	uint32_t features;          /* VGPU_FEATURE_* (vgpu_compute.h) */
	uint32_t max_programs;      /* programs alive at once in the context */
	uint32_t max_kernels;       /* kernels alive at once */
	uint32_t max_kernel_args;   /* arguments of one kernel */
	uint32_t max_program_bytes; /* source or binary of one build */
	uint32_t max_payload_bytes; /* inline bytes of one op (by-value arguments) */
	uint64_t time_budget_ns;    /* an op that runs longer costs the context */
};

/* Fill the first info->struct_size bytes of *info (struct_size must cover at
 * least the fields up to caps). Errors: -EINVAL. */
int vgpu_query_info(const struct vgpu_device *dev, struct vgpu_info *info);

/* vgpu_query_info() with struct_size set from the caller's header. */
static inline int vgpu_get_info(const struct vgpu_device *dev, struct vgpu_info *info)
{
	if (info)
		info->struct_size = sizeof(*info);
	return vgpu_query_info(dev, info);
}

/* Raw VIRTGPU_PARAM_* query. Errors: -EINVAL, errors of the ioctl (the
 * kernel answers -EINVAL for params it does not know). */
int vgpu_get_param(const struct vgpu_device *dev, uint64_t param, uint64_t *value);

/* Whether buffers from user memory take the zero-copy path. */
bool vgpu_has_userptr(const struct vgpu_device *dev);

/* The DRM fd (owned by the library). */
int vgpu_device_fd(const struct vgpu_device *dev);

/* ---- buffers -------------------------------------------------------------- */

/* buffer flags */
#define VGPU_BUF_READ_ONLY (1u << 0) /* the device may only read the buffer */
#define VGPU_BUF_COPY      (1u << 1) /* take the copy path even with userptr */
#define VGPU_BUF_ZERO_COPY (1u << 2) /* fail with -EOPNOTSUPP rather than copy */
#define VGPU_BUF_FLAGS_ALL (VGPU_BUF_READ_ONLY | VGPU_BUF_COPY | VGPU_BUF_ZERO_COPY)

/*
 * Make the caller's memory [ptr, ptr + size) a GPU buffer. Any range is
 * accepted (size non-zero, no wrap-around: -EINVAL otherwise): the library
 * registers the pages that hold it, rounded outward to the page size, and
 * ops name offsets relative to ptr, as always; vgpu_buffer_offset() says
 * where ptr lies in its first page. The whole pages must stay mapped until
 * the buffer is destroyed. On the zero-copy path the kernel pins the pages.
 * Where it cannot, the library takes the copy path instead (unless
 * VGPU_BUF_ZERO_COPY), so the caller sees the same calls and results:
 *   -EOPNOTSUPP  the device or kernel has no userptr blobs, or the DMA API
 *                would bounce the pages                     -> copy path
 *   -E2BIG       the range is too fragmented in physical memory for one
 *                device request                             -> copy path
 *   -EFAULT      on a range that is mapped with the access asked for: a
 *                long-term pin the kernel refuses for that mapping (a
 *                writable MAP_SHARED mapping of an ordinary file)
 *                                                           -> copy path
 *   -EFAULT      on a range that is not mapped, or is read-only without
 *                VGPU_BUF_READ_ONLY: returned (a bad pointer stays a bad
 *                pointer; the copy path would fault on it in memcpy)
 *   -ENOMEM      over RLIMIT_MEMLOCK (or out of memory): returned; pass
 *                VGPU_BUF_COPY to register the range without pinning it
 * With VGPU_BUF_ZERO_COPY every one of these is returned. On the copy
 * path the memory is read before each submit that uses the buffer and,
 * unless VGPU_BUF_READ_ONLY, written after it; the range is checked against
 * the process's mappings at creation, so that it fails with the same -EFAULT.
 * Errors: -EINVAL (see above, unknown flags, VGPU_BUF_COPY together with
 * VGPU_BUF_ZERO_COPY), -EOPNOTSUPP (VGPU_BUF_ZERO_COPY without userptr
 * support), -ENOMEM, errors of the kernel.
 */
int vgpu_buffer_from_user(struct vgpu_device *dev, void *ptr, size_t size,
			  unsigned int flags, struct vgpu_buffer **out);

/*
 * A buffer the library allocates: a mappable guest blob of size bytes
 * (rounded up to the page size), mapped and populated in this process,
 * zero-filled. vgpu_buffer_data() returns the mapping. Only
 * VGPU_BUF_READ_ONLY is allowed in flags (checked by the library: the
 * device can write guest blobs).
 */
int vgpu_buffer_alloc(struct vgpu_device *dev, size_t size, unsigned int flags,
		      struct vgpu_buffer **out);

/* Destroy a buffer. First waits (up to the default timeout, 60 s) for every
 * submit in flight that uses it and retires it, copy-backs included; then
 * closes its GEM handle, and the kernel unpins the pages once the device
 * has released the resource. After it returns neither the device nor the
 * library touches the memory (a submit still not complete after the
 * timeout is abandoned: nothing is copied back into the buffer, and its
 * pages stay pinned until the device lets go). Batches hold their own
 * references: the buffer's handle lives on until they drop it (reset or
 * destroy), but a batch that names a destroyed buffer can no longer be
 * submitted (-EINVAL). NULL is accepted. */
void vgpu_buffer_destroy(struct vgpu_buffer *buf);

/* ptr's offset in the first page the buffer registered (0 for aligned
 * memory and for vgpu_buffer_alloc()). */
size_t vgpu_buffer_offset(const struct vgpu_buffer *buf);

/* true: the device works on the memory itself (userptr blob). */
bool vgpu_buffer_is_zero_copy(const struct vgpu_buffer *buf);
bool vgpu_buffer_is_read_only(const struct vgpu_buffer *buf);
size_t vgpu_buffer_size(const struct vgpu_buffer *buf);
/* The memory the caller sees: ptr for vgpu_buffer_from_user(), the mapping
 * for vgpu_buffer_alloc(). */
void *vgpu_buffer_data(const struct vgpu_buffer *buf);
/* The virtio-gpu resource id and the GEM handle. */
uint32_t vgpu_buffer_res_id(const struct vgpu_buffer *buf);
uint32_t vgpu_buffer_handle(const struct vgpu_buffer *buf);

/* ---- registration cache ------------------------------------------------------ */

/*
 * Runtimes register the same user memory over and over (every kernel
 * launch names its arguments again). The cache keeps registrations alive
 * after use and hands them out again for any range they cover:
 *
 *   vgpu_buffer_get(dev, ptr, size, flags, &buf, &off);  // hit or register
 *   vgpu_batch_copy(b, buf, off, ...);                   // ops at buf + off
 *   vgpu_buffer_put(buf);                                // back to the cache
 *
 * Entries are page ranges in an interval tree, reference-counted; unused
 * ones are kept in LRU order while their bytes stay within a budget (0, the
 * default: none is kept, every put of the last user destroys the
 * registration); entries in use never count against it. A range is
 * registered once: concurrent misses on it wait for the one registration,
 * and a miss that overlaps entries with the same flags registers one range
 * covering all of them (the kernel charges every pin to the process), after
 * which the covered entries are no longer handed out.
 *
 * What the cache cannot see, and the caller must handle: a registration
 * pins the pages that were mapped when it was made, and the kernel has no
 * invalidation for userptr blobs. If the program frees, munmap()s,
 * MADV_DONTNEEDs or mremap()s registered memory and something else is
 * mapped there, every later hit still names the old pages: the device
 * reads and writes memory the program no longer sees, and the old pages
 * stay pinned until the entry goes. vgpu_invalidate() is the only remedy:
 * a runtime calls it for the range before it releases the memory (runtimes
 * that hook munmap and free, as UCX and the ROCm runtime do, call it from
 * there). On the copy path the entry copies from the caller's address at
 * submit time, so it follows the new mapping; only zero-copy entries go
 * stale.
 */
struct vgpu_cache_config {
	size_t struct_size;    /* sizeof(struct vgpu_cache_config) */
	uint64_t max_bytes;    /* registered bytes kept while unused; 0: none */
};

struct vgpu_cache_stats {
	size_t struct_size;    /* sizeof(struct vgpu_cache_stats) */
	uint64_t hits, misses, evictions, invalidated;
	uint64_t entries, bytes; /* live entries (used or not) and their pages */
};

/* Set the budget; evicts at once down to it. Errors: -EINVAL. */
int vgpu_cache_configure(struct vgpu_device *dev, const struct vgpu_cache_config *cfg);
int vgpu_cache_get_stats(struct vgpu_device *dev, struct vgpu_cache_stats *stats);

/*
 * A buffer covering [ptr, ptr + size) with exactly these flags: a cached
 * one when there is one (a hit), else a new registration of the pages that
 * hold the range. *offset is where ptr lies in it: name ptr + x in ops as
 * offset + x. Each get needs one vgpu_buffer_put() (vgpu_buffer_destroy()
 * on such a buffer does the same; a put more than the gets is ignored).
 * Errors: as vgpu_buffer_from_user().
 */
int vgpu_buffer_get(struct vgpu_device *dev, void *ptr, size_t size, unsigned int flags,
		    struct vgpu_buffer **out, uint64_t *offset);
void vgpu_buffer_put(struct vgpu_buffer *buf);

/*
 * Forget every cache entry that overlaps [addr, addr + len): unused ones
 * are destroyed now, used ones when their last user puts them (they are no
 * longer handed out). Call it before munmap() of registered memory.
 * Returns the number of entries invalidated, or -EINVAL/-ECHILD/-ENODEV.
 */
int vgpu_invalidate(struct vgpu_device *dev, void *addr, size_t len);

/* ---- compute batches ------------------------------------------------------ */

/* device_result when the device never reported on the submit: the submit
 * was refused before it reached the device, the transport failed, or the
 * wait timed out. Never equal to VGPU_COMPUTE_OK. */
#define VGPU_RESULT_NOT_EXECUTED 0xffffffffu

/* Result of one submit, as the device reported it. */
struct vgpu_submit_result {
	size_t struct_size;     /* sizeof(struct vgpu_submit_result) of the caller */
	uint32_t device_result; /* enum vgpu_compute_result, or VGPU_RESULT_NOT_EXECUTED */
	uint32_t op_index;      /* failing op; num_ops when none failed */
	uint64_t ops_done;      /* ops the device executed */
	uint32_t num_ops;       /* ops in the submit */
	uint32_t ring;          /* ring the submit ran on */
};

/* Create an empty batch. Errors: -EINVAL, -ENOMEM. */
int vgpu_batch_create(struct vgpu_device *dev, struct vgpu_batch **out);
void vgpu_batch_destroy(struct vgpu_batch *b);
/* Drop the ops (keeps the batch). */
void vgpu_batch_reset(struct vgpu_batch *b);
unsigned int vgpu_batch_num_ops(const struct vgpu_batch *b);

/*
 * Typed ops. The library checks each op before adding it: the device runs
 * it (-EOPNOTSUPP when its bit is clear in caps.op_mask), buffers of this
 * device (-EINVAL otherwise), offsets and lengths inside the buffers
 * (-ERANGE), alignment the op requires (-EINVAL), destination not read-only
 * (-EACCES), non-overlapping copy ranges (-EINVAL), len non-zero (-EINVAL),
 * room for the op (-E2BIG beyond the device's max_ops). A failed add leaves
 * the batch as it was. The batch takes a reference on each buffer it names.
 */
/* dst[dst_off, +len) = src[src_off, +len) */
int vgpu_batch_copy(struct vgpu_batch *b, struct vgpu_buffer *dst, uint64_t dst_off,
		    struct vgpu_buffer *src, uint64_t src_off, uint64_t len);
/* dst[dst_off, +len) = value repeated (little-endian u32); len % 4 == 0 */
int vgpu_batch_fill(struct vgpu_batch *b, struct vgpu_buffer *dst, uint64_t dst_off,
		    uint64_t len, uint32_t value);
/* dst[dst_off, +8) = XXH64(src[src_off, +len), seed), little-endian */
int vgpu_batch_checksum(struct vgpu_batch *b, struct vgpu_buffer *dst, uint64_t dst_off,
			struct vgpu_buffer *src, uint64_t src_off, uint64_t len,
			uint64_t seed);
/* y[i] = a * x[i] + y[i] over f32; len in bytes, % 4 == 0 */
int vgpu_batch_saxpy(struct vgpu_batch *b, struct vgpu_buffer *y, uint64_t y_off,
		     struct vgpu_buffer *x, uint64_t x_off, uint64_t len, float a);
/* dst[dst_off, +8) = sum of the f32 in src[src_off, +len) as f64 */
int vgpu_batch_sum_f32(struct vgpu_batch *b, struct vgpu_buffer *dst, uint64_t dst_off,
		       struct vgpu_buffer *src, uint64_t src_off, uint64_t len);
int vgpu_batch_nop(struct vgpu_batch *b);
/* 1.1. C = A x B over row-major f32 (capset version 2: VGPU_OP_SGEMM):
 * C (m x n, row stride ldc) at c[c_off, ...), A (m x k, row stride lda) at
 * ab[a_off, ...) and B (k x n, row stride ldb) at ab[b_off, ...); a stride of
 * 0 means packed. Offsets % 4 == 0; 1 <= m, n, k <= caps.max_gemm_dim;
 * C may not overlap A or B. */
int vgpu_batch_sgemm(struct vgpu_batch *b, struct vgpu_buffer *c, uint64_t c_off,
		     struct vgpu_buffer *ab, uint64_t a_off, uint64_t b_off,
		     uint32_t m, uint32_t n, uint32_t k, uint32_t lda, uint32_t ldb, uint32_t ldc);
/* 1.1. dst[dst_off, +8) = sum of the f32 in src[src_off, +len) as f64, in an
 * order the device chooses (VGPU_OP_REDUCE_F32, capset version 2). */
int vgpu_batch_reduce_f32(struct vgpu_batch *b, struct vgpu_buffer *dst, uint64_t dst_off,
			  struct vgpu_buffer *src, uint64_t src_off, uint64_t len);

/*
 * Add an op as given, with no checks beyond dst/src belonging to this
 * device (either may be NULL: resource id 0). For testing the device's own
 * validation. On the copy path a write into a read-only buffer is still
 * refused by the library at submit (-EACCES), as the device cannot know.
 */
int vgpu_batch_add_raw(struct vgpu_batch *b, uint32_t opcode, uint32_t flags,
		       struct vgpu_buffer *dst, uint64_t dst_off,
		       struct vgpu_buffer *src, uint64_t src_off,
		       uint64_t len, uint64_t arg0, uint64_t arg1);

/*
 * Submit the batch and wait for it (timeout_ms from vgpu_batch_set_timeout,
 * default 60000; -ETIMEDOUT after it): vgpu_batch_submit_async() on ring 0
 * and vgpu_fence_wait(). On the copy path, copies the memory in first and
 * the written ranges back after. The ops stay in the batch
 * (vgpu_batch_reset() to start over). result (optional; struct_size set)
 * receives the device's status record, device_result
 * VGPU_RESULT_NOT_EXECUTED when there is none. After -ETIMEDOUT the submit
 * is still in flight: the library retires it later (vgpu_close() waits).
 * Errors: -EINVAL (empty batch), -EACCES (copy path: write into a read-only
 * buffer), -ETIMEDOUT, -EIO (no status record came back), the kernel's
 * errors from the execbuffer ioctl, and the device's result mapped:
 *   VGPU_COMPUTE_E_MALFORMED -> -EPROTO     VGPU_COMPUTE_E_OPCODE  -> -EOPNOTSUPP
 *   VGPU_COMPUTE_E_RESOURCE  -> -ENOENT     VGPU_COMPUTE_E_RANGE   -> -ERANGE
 *   VGPU_COMPUTE_E_READONLY  -> -EACCES     VGPU_COMPUTE_E_ALIGN   -> -EINVAL
 *   VGPU_COMPUTE_E_OVERLAP   -> -EINVAL     VGPU_COMPUTE_E_NOBACKING -> -ENXIO
 *   VGPU_COMPUTE_E_NOWINDOW  -> -ENOSPC     VGPU_COMPUTE_E_DEVICE  -> -EREMOTEIO
 *   unknown result codes     -> -EIO
 * and -ENODEV when the device went away (the device is then lost: every
 * later call on it returns -ENODEV).
 */
int vgpu_batch_run(struct vgpu_batch *b, struct vgpu_submit_result *result);

/* vgpu_batch_run() with result->struct_size set from the caller's header. */
static inline int vgpu_batch_submit(struct vgpu_batch *b, struct vgpu_submit_result *result)
{
	if (result)
		result->struct_size = sizeof(*result);
	return vgpu_batch_run(b, result);
}

/* The timeout of vgpu_batch_run() and of the waits vgpu_batch_submit_async()
 * may do. 0 (or any negative value but VGPU_TIMEOUT_INFINITE) restores the
 * default of 60000 ms; VGPU_TIMEOUT_INFINITE (1.1) waits for ever. */
void vgpu_batch_set_timeout(struct vgpu_batch *b, int timeout_ms);
#define VGPU_TIMEOUT_INFINITE (-1)

/* ---- asynchronous submission ------------------------------------------------ */

/* How to submit; every field but struct_size may be left 0 (ring 0, no
 * in-fences, no out-syncobjs). Syncobjs are DRM syncobj handles on the
 * device's fd (vgpu_device_fd(); drmSyncobjCreate() makes them). */
struct vgpu_submit_info {
	size_t struct_size;          /* sizeof(struct vgpu_submit_info) */
	uint32_t ring;               /* < vgpu_info.num_rings */
	uint32_t flags;              /* VGPU_SUBMIT_* */
	int in_fence_fd;             /* with VGPU_SUBMIT_IN_FENCE_FD: a sync_file to wait for */
	uint32_t num_in_syncobjs;
	const uint32_t *in_syncobjs;       /* handles the submit waits for */
	const uint64_t *in_syncobj_points; /* timeline points, or NULL (binary) */
	uint32_t num_out_syncobjs;
	const uint32_t *out_syncobjs;      /* handles signalled when it is done */
	const uint64_t *out_syncobj_points;
};

/* vgpu_submit_info.flags: in_fence_fd holds a sync_file (the library does
 * not close it). */
#define VGPU_SUBMIT_IN_FENCE_FD (1u << 0)
#define VGPU_SUBMIT_FLAGS_ALL VGPU_SUBMIT_IN_FENCE_FD

/*
 * Submit the batch and return at once with a fence for it in *out. Rings
 * run independently: submits on one ring run in submit order, submits on
 * different rings in any order unless fences chain them. Each submit gets
 * its own status record, released when its fence retires (the first
 * vgpu_fence_wait() that sees it signalled, or a later submit that needs
 * the slot). The batch can be changed or reused as soon as this returns.
 *
 * Zero-copy buffers are never copied. Copy-path buffers are copied in now
 * and their written ranges copied back when the fence retires; a submit
 * that uses a copy-path buffer which an earlier unretired submit uses
 * first waits for that submit to retire, so copies never reorder.
 *
 * The kernel itself waits, inside this call, for in-fences from another
 * ring or another device before it queues the submit; in-fences from the
 * same ring cost nothing.
 *
 * Copy-path buffers are copied in at submit, and copied back when the fence
 * retires; a wait that retires one fence retires every submit the device
 * has finished, so waiting for the last submit of a ring is enough. So that this never reorders memory, a submit first retires every
 * earlier submit still in flight that it would otherwise race with, by
 * address range (not by buffer object: two registrations may share
 * memory): one whose copy-back is due over memory this submit uses, and one
 * whose device writes cover memory this submit copies in.
 *
 * info may be NULL (ring 0, no fences). At most vgpu_info.max_in_flight
 * submits are in flight per device: past that the call first retires the
 * oldest (waiting for it, up to the batch's timeout: -ETIMEDOUT); -EAGAIN
 * when every slot is held by submits other threads are making right now.
 * Errors: as vgpu_batch_run() before the device runs anything, and -EINVAL
 * for a ring >= num_rings, unknown flags, a count without its array.
 */
int vgpu_batch_submit_async(struct vgpu_batch *b, const struct vgpu_submit_info *info,
			    struct vgpu_fence **out);

/*
 * Wait up to timeout_ms (< 0: for ever, 0: just poll) for the fence.
 * Returns 0 when the submit completed and the device reported success,
 * -ETIMEDOUT when it has not completed (wait again later: nothing is lost),
 * the device's result as an errno (see vgpu_batch_run()) otherwise. result
 * (optional, struct_size set) receives the status record once completed.
 * Any number of threads may wait on one fence.
 */
int vgpu_fence_wait(struct vgpu_fence *f, int timeout_ms, struct vgpu_submit_result *result);

/*
 * 1.1. vgpu_fence_wait() with the timeout in nanoseconds: relative, or with
 * VGPU_WAIT_ABSOLUTE a CLOCK_MONOTONIC time; a negative timeout_ns waits
 * for ever.
 */
#define VGPU_WAIT_ABSOLUTE (1u << 0) /* timeout_ns is a CLOCK_MONOTONIC time */
#define VGPU_WAIT_ANY      (1u << 1) /* vgpu_fence_wait_many: the first, not all */
int vgpu_fence_wait_ns(struct vgpu_fence *f, int64_t timeout_ns, unsigned int flags,
		       struct vgpu_submit_result *result);

/*
 * 1.1. Wait for count fences (of one device or imported): all of them, or
 * with VGPU_WAIT_ANY the first to complete (*first, when not NULL, is its
 * index). Timeout as vgpu_fence_wait_ns(). Returns 0 when the awaited
 * fences completed and succeeded, -ETIMEDOUT when they have not completed
 * (nothing is lost), or the error of a completed one (the first in the array
 * with an error; with VGPU_WAIT_ANY, that of *first). Errors: -EINVAL
 * (count 0 or over 256, a NULL fence, unknown flags).
 */
int vgpu_fence_wait_many(struct vgpu_fence *const *fences, unsigned int count,
			 unsigned int flags, int64_t timeout_ns, unsigned int *first);

/*
 * 1.1. A fence for an external sync_file (another device's, another
 * process's, a sw_sync timeline's): the library dup()s fd; the caller keeps
 * its own. It can be waited for like any fence (alone or in
 * vgpu_fence_wait_many()), exported, and passed on as an in-fence; it has
 * no status record: it completes with 0 when the sync_file signals, or
 * with the fence's error. Errors: -EINVAL (not a sync_file), -EMFILE.
 */
int vgpu_fence_import(struct vgpu_device *dev, int sync_file_fd, struct vgpu_fence **out);

/*
 * A new sync_file fd for the fence (the caller closes it), to pass to
 * another submit, another device or poll(). It signals when the device has
 * finished the submit. For a submit without copy-path buffers that is all:
 * the results are in memory. A submit with copy-path buffers has them in
 * the caller's memory only once the fence retires, which takes a libvgpu
 * call in this process: after a wait on the sync_file (or on an
 * out-syncobj), call vgpu_fence_wait(f, 0, ...), which then returns at
 * once. vgpu_fence_needs_retire() says whether a fence is such a one.
 * Errors: -EINVAL, -EMFILE.
 */
int vgpu_fence_export(struct vgpu_fence *f);

/* 1.1. Whether results of the fence's submit reach the caller's memory only
 * when the fence retires (it has copy-backs still due): see
 * vgpu_fence_export(). */
bool vgpu_fence_needs_retire(const struct vgpu_fence *f);

/* Drop the fence. A submit still in flight is not cancelled: the library
 * retires it later. NULL is accepted. */
void vgpu_fence_destroy(struct vgpu_fence *f);

/* ---- 1.2: the guest's own programs (capset version 3) ----------------------- */

/*
 * OpenCL C programs (or binaries the device returned, or SPIR-V where
 * info.features has VGPU_FEATURE_IL) built and run by the device on the
 * caller's buffers: with userptr, on the caller's own pages. The device
 * runs them in a sandboxed process of this context's own; a program that
 * runs past info.time_budget_ns, or crashes it, loses the context: every
 * later program call fails with -ENOTRECOVERABLE (close and reopen). The
 * built-in ops of the batch keep working.
 *
 * Errors of every call below, besides those named: -EINVAL (NULL or bad
 * arguments: vgpu_error_detail() says which), -ENOEXEC (the device runs no
 * programs: info.features lacks VGPU_FEATURE_PROGRAMS), -ENOMEM, -ENODEV,
 * -ETIMEDOUT, and the device's result mapped as for vgpu_batch_run():
 *   VGPU_COMPUTE_E_OBJECT  -> -EBADF      VGPU_COMPUTE_E_ARGS     -> -EINVAL
 *   VGPU_COMPUTE_E_WORKSIZE -> -EDOM      VGPU_COMPUTE_E_TIMEOUT  -> -ETIME
 *   VGPU_COMPUTE_E_LOST    -> -ENOTRECOVERABLE
 *   VGPU_COMPUTE_E_NOPROGRAMS -> -ENOEXEC
 */
struct vgpu_program;
struct vgpu_kernel;

/* What a build said. log is malloc'd and NUL-terminated (free() it), NULL
 * when the device had nothing to say. */
struct vgpu_build_log {
	size_t struct_size;     /* sizeof(struct vgpu_build_log) of the caller */
	int32_t status;         /* 0: built; else the OpenCL error
				 * (CL_BUILD_PROGRAM_FAILURE -11, CL_INVALID_BINARY -42,
				 * CL_INVALID_BUILD_OPTIONS -43, ...) */
	uint32_t num_kernels;
	uint64_t binary_size;
	char *log;
};

/*
 * Build a program: kind is VGPU_PROGRAM_SOURCE (data: OpenCL C, no NUL
 * needed), VGPU_PROGRAM_BINARY (data: what vgpu_program_binary() returned)
 * or VGPU_PROGRAM_IL (SPIR-V); options as for clBuildProgram (NULL: none).
 * Returns 0 when the device built it (*out set) and when the build failed
 * (*out NULL, log->status the OpenCL error, log->log the compiler's words);
 * log may be NULL. Errors: -ENOSPC (max_programs alive), -E2BIG (data over
 * max_program_bytes), -EOPNOTSUPP (IL without VGPU_FEATURE_IL).
 */
int vgpu_program_build(struct vgpu_device *dev, uint32_t kind, const void *data, size_t size,
		       const char *options, struct vgpu_program **out,
		       struct vgpu_build_log *log);
/* The program's binary for VGPU_PROGRAM_BINARY, malloc'd (free() it). */
int vgpu_program_binary(struct vgpu_program *p, void **data, size_t *size);
/* Kernels in the program. */
uint32_t vgpu_program_num_kernels(const struct vgpu_program *p);
/* Release the program (its kernels stay usable). NULL is accepted. */
void vgpu_program_destroy(struct vgpu_program *p);

/*
 * The kernel of p called name. Errors: -ENOENT (no kernel of that name),
 * -ENOSPC (max_kernels alive).
 */
int vgpu_kernel_create(struct vgpu_program *p, const char *name, struct vgpu_kernel **out);
/* What the device says of the kernel and of each of its arguments
 * (struct vgpu_kernel_info and vgpu_kernel_arg_info, vgpu_compute.h); the
 * pointers live as long as the kernel. */
const struct vgpu_kernel_info *vgpu_kernel_get_info(const struct vgpu_kernel *k);
const struct vgpu_kernel_arg_info *vgpu_kernel_get_args(const struct vgpu_kernel *k,
							uint32_t *num_args);
const char *vgpu_kernel_name(const struct vgpu_kernel *k);
void vgpu_kernel_destroy(struct vgpu_kernel *k);

/* One argument of a dispatch, by the kernel argument's address space:
 * global and constant pointers are buffers (or NULL), private ones values,
 * local ones a size of local memory. */
struct vgpu_kernel_arg {
	uint32_t kind;            /* VGPU_DARG_BUFFER, _NULL, _VALUE, _LOCAL */
	uint32_t access;          /* buffers: VGPU_OP_READ | VGPU_OP_WRITE, what the
				   * kernel may do (the copy path copies back the
				   * ranges it may write) */
	struct vgpu_buffer *buf;  /* buffers */
	uint64_t offset;          /* buffers: the kernel's pointer is buf + offset */
	uint64_t size;            /* buffers: bytes from offset; values: bytes of value
				   * (1 .. 4096); local: bytes */
	const void *value;        /* values */
};

/* The NDRange: work_dim 1 .. 3; in each dimension used a global size >= 1
 * and a local size (the work-group's), or local sizes all 0: the device
 * chooses. Dimensions past work_dim must be 0. */
struct vgpu_ndrange {
	uint32_t work_dim;
	uint64_t offset[3];
	uint64_t global[3];
	uint64_t local[3];
};

/*
 * Add a dispatch of kernel k to the batch: num_args arguments, exactly
 * the kernel's, each of the kind its address space takes (any kind where
 * the device reports VGPU_ARG_SPACE_UNKNOWN, as for a program built from a
 * binary: the device then refuses what does not fit, -EINVAL at the wait). The batch takes
 * a reference on every buffer. Ordering and the copy path treat each
 * buffer range as the op's own. Errors: -EINVAL, -ERANGE (a range outside
 * its buffer), -EACCES (write access to a read-only buffer), -E2BIG (the
 * batch is full, or the values are over max_payload_bytes).
 */
int vgpu_batch_dispatch(struct vgpu_batch *b, struct vgpu_kernel *k,
			const struct vgpu_ndrange *range, const struct vgpu_kernel_arg *args,
			uint32_t num_args);

/*
 * The device as OpenCL describes it (VGPU_QUERY_DEVICE_INFO): a sequence of
 * struct vgpu_info_record, each followed by its value padded to 8 bytes;
 * malloc'd (free() it).
 */
int vgpu_query_device_info(struct vgpu_device *dev, void **data, size_t *size);

/* Text for a device result code (enum vgpu_compute_result). */
const char *vgpu_result_str(uint32_t device_result);
/* Negative errno for a device result code (table above; 0 for OK). */
int vgpu_result_to_errno(uint32_t device_result);

#ifdef __cplusplus
}
#endif

#endif /* VGPU_H */
