/* SPDX-License-Identifier: MIT */
/*
 * icd.h - the OpenCL ICD on libvgpu: its objects and what its source files
 * share.
 *
 * One platform with one device: the compute device of the first virtio-gpu
 * render node that runs the guest's own programs (capset version 3). Every
 * cl_context opens the node again, so that it is a device context of its
 * own: its own sandboxed worker on the host, its own ids, and a context
 * lost to a bad program does not touch the next one.
 *
 * Memory objects are guest memory the ICD registers with the device (the
 * application's own pages for CL_MEM_USE_HOST_PTR): the device runs kernels
 * on them in place, and every host-side command (read, write, copy, fill,
 * map) is a memcpy in the guest, ordered after the device's work by the
 * queue. Where the device or kernel lacks userptr blobs, libvgpu's copy
 * path keeps the same calls correct.
 *
 * Locking: one lock (icd_lock) guards every reference count, event status
 * and queue list; one condition variable (icd_cond) is broadcast on every
 * change of them. The counts are small and changes rare next to a device
 * round trip, so one lock is simpler than many and costs nothing measurable.
 */
#ifndef VGPU_ICD_H
#define VGPU_ICD_H

#define CL_TARGET_OPENCL_VERSION 300
#define CL_USE_DEPRECATED_OPENCL_1_0_APIS
#define CL_USE_DEPRECATED_OPENCL_1_1_APIS
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#define CL_USE_DEPRECATED_OPENCL_2_0_APIS
#define CL_USE_DEPRECATED_OPENCL_2_2_APIS
#include <CL/cl.h>
#include <CL/cl_ext.h>
#include <CL/cl_icd.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu.h"
#include "vgpu_compute.h"

#define ICD_EXPORT __attribute__((visibility("default")))

/* What this ICD says of itself. */
#define ICD_PLATFORM_NAME "virtgpu-userptr"
#define ICD_PLATFORM_VENDOR "virtgpu-userptr"
#define ICD_SUFFIX "vgpu"
#define ICD_VERSION_TEXT "OpenCL 3.0 virtgpu-userptr"
#define ICD_DRIVER_VERSION "1.0"

extern cl_icd_dispatch icd_dispatch;
extern pthread_mutex_t icd_lock;
extern pthread_cond_t icd_cond;

/* Every object starts with the loader's dispatch pointer, then its magic, so
 * that a handle from another ICD or a freed one is refused. */
enum icd_magic {
	ICD_MAGIC_PLATFORM = 0x76504c54,
	ICD_MAGIC_DEVICE = 0x76444556,
	ICD_MAGIC_CONTEXT = 0x76435458,
	ICD_MAGIC_QUEUE = 0x76515545,
	ICD_MAGIC_MEM = 0x764d454d,
	ICD_MAGIC_PROGRAM = 0x76505247,
	ICD_MAGIC_KERNEL = 0x764b524e,
	ICD_MAGIC_EVENT = 0x76455654,
	ICD_MAGIC_DEAD = 0x64656164,
};

struct _cl_platform_id {
	cl_icd_dispatch *dispatch;
	uint32_t magic;
};

struct _cl_device_id {
	cl_icd_dispatch *dispatch;
	uint32_t magic;
	bool present;               /* a usable render node was found */
	char node[64];              /* its path */
	struct vgpu_info info;
	void *records;              /* the device's QUERY_DEVICE_INFO answer */
	size_t records_size;
	/* Filtered and derived values. */
	cl_ulong global_mem, max_alloc;
	size_t max_wg;
	cl_uint max_dims;
	size_t max_items[3];
	cl_ulong local_mem;
	bool fp64, fp16;
	char name[256];
	char version[128];
	char c_version[64];
	char extensions[2048];
};

extern struct _cl_platform_id icd_platform;
extern struct _cl_device_id icd_device;

struct _cl_context {
	cl_icd_dispatch *dispatch;
	uint32_t magic;
	unsigned int refs;
	struct vgpu_device *vdev;
	cl_context_properties props[8];
	size_t num_props;           /* entries of props, the 0 included; 0: none given */
	void(CL_CALLBACK *notify)(const char *, const void *, size_t, void *);
	void *notify_data;
	struct icd_dtor_cb *dtors;
	uint32_t next_ring;
	bool lost;                  /* the device context's worker is gone */
	/* Released buffers the ICD allocated, still registered, for the next
	 * buffer of the same size and access (icd_lock): programs such as
	 * CLBlast make temporary buffers on every call, and a registration
	 * pins and maps pages on both sides. */
	struct icd_pooled *pool;
	size_t pool_bytes;
	unsigned int pool_count;
};

struct icd_pooled {
	struct icd_pooled *next;
	void *alloc;
	size_t alloc_size;
	struct vgpu_buffer *vbuf;
	bool read_only;
};

struct icd_command;

struct _cl_command_queue {
	cl_icd_dispatch *dispatch;
	uint32_t magic;
	unsigned int refs;
	cl_context ctx;
	cl_command_queue_properties props;
	uint32_t ring;
	struct vgpu_batch *batch;   /* the worker's */
	/* commands not yet started, in enqueue order */
	struct icd_command *head, *tail;
	/* device commands submitted and not yet retired, oldest first */
	struct icd_command *inflight_head, *inflight_tail;
	unsigned int pending;       /* commands enqueued and not complete */
	bool stop;
	pthread_t worker;
	/* The worker's own wake-up (a command queued, the queue released):
	 * icd_cond is for events, so that neither wakes the other's waiters. */
	pthread_cond_t work_cv;
};

struct icd_dtor_cb {
	struct icd_dtor_cb *next;
	void(CL_CALLBACK *fn)();
	void *data;
};

struct _cl_mem {
	cl_icd_dispatch *dispatch;
	uint32_t magic;
	unsigned int refs;
	cl_context ctx;
	cl_mem_flags flags;
	size_t size;
	void *host_ptr;             /* CL_MEM_USE_HOST_PTR: the application's */
	cl_mem parent;              /* sub-buffers: the buffer they lie in */
	size_t offset;              /* in the parent (sub-buffers) */
	char *data;                 /* the bytes (parent's data + offset for subs) */
	struct vgpu_buffer *vbuf;   /* the registration (the parent's for subs) */
	void *alloc;                /* mmap'd by the ICD, or NULL */
	size_t alloc_size;
	unsigned int maps;          /* mappings not yet unmapped */
	struct icd_dtor_cb *dtors;
};

struct icd_kernel_desc {
	char *name;
	uint32_t num_args;
	struct vgpu_kernel_arg_info *args;
};

struct _cl_program {
	cl_icd_dispatch *dispatch;
	uint32_t magic;
	unsigned int refs;
	unsigned int kernels;       /* kernel objects alive */
	cl_context ctx;
	char *source;
	size_t source_len;
	void *il;
	size_t il_len;
	void *binary;               /* what CL_PROGRAM_BINARIES returns, once known */
	size_t binary_len;
	bool from_binary;
	bool compiled_only;         /* clCompileProgram: built at link */
	char *options;
	cl_build_status status;
	cl_program_binary_type bin_type;
	char *log;
	struct vgpu_program *vprog;
	/* The kernels the program holds, with what the device says of their
	 * arguments (from the source's build, or carried in our binary). */
	struct icd_kernel_desc *descs;
	uint32_t num_descs;
	bool descs_done;
	/* The device kernels made of it, one per name, shared by every
	 * cl_kernel of that name: programs such as CLBlast create a kernel
	 * object for each call, and a device kernel costs a round trip that
	 * waits behind the queue's work. Kept until the program is built
	 * again or freed (no cl_kernel is alive then). */
	pthread_mutex_t vk_lock;
	struct icd_vkernel *vkernels;
};

struct icd_vkernel {
	struct icd_vkernel *next;
	struct vgpu_kernel *vk;
};

struct icd_arg {
	bool set;
	uint32_t kind;              /* VGPU_DARG_* */
	cl_mem mem;                 /* buffers (retained) */
	size_t size;
	unsigned char value[64];    /* values up to 64 bytes here ... */
	unsigned char *big;         /* ... larger ones malloc'd */
};

struct _cl_kernel {
	cl_icd_dispatch *dispatch;
	uint32_t magic;
	unsigned int refs;
	cl_program prog;
	struct vgpu_kernel *vk;
	const struct vgpu_kernel_info *kinfo;
	uint32_t num_args;
	const struct vgpu_kernel_arg_info *ainfo; /* NULL: unknown */
	bool ainfo_known;
	struct icd_arg *args;
};

struct icd_callback {
	struct icd_callback *next;
	cl_int type;                /* CL_SUBMITTED, CL_RUNNING or CL_COMPLETE */
	void(CL_CALLBACK *fn)(cl_event, cl_int, void *);
	void *data;
};

struct _cl_event {
	cl_icd_dispatch *dispatch;
	uint32_t magic;
	unsigned int refs;
	cl_context ctx;
	cl_command_queue queue;     /* NULL for user events */
	cl_command_type type;
	cl_int status;              /* CL_QUEUED .. CL_COMPLETE, or an error (< 0) */
	bool submitted_to_ring;     /* a device command of queue->ring, in flight */
	cl_ulong t_queued, t_submit, t_start, t_end;
	struct icd_callback *callbacks;
};

enum icd_cmd_kind {
	ICD_CMD_DISPATCH,
	ICD_CMD_READ,      /* buffer -> host */
	ICD_CMD_WRITE,     /* host -> buffer */
	ICD_CMD_COPY,      /* buffer -> buffer */
	ICD_CMD_FILL,
	ICD_CMD_RECT,      /* read/write/copy rect: a list of row copies */
	ICD_CMD_MAP,
	ICD_CMD_UNMAP,
	ICD_CMD_MARKER,    /* markers, barriers, migrations: order only */
};

struct icd_command {
	struct icd_command *next;
	enum icd_cmd_kind kind;
	cl_event ev;
	cl_event *waits;
	cl_uint num_waits;
	/* buffers the command holds (retained): dispatch args, src and dst */
	cl_mem *mems;
	unsigned int num_mems;
	/* host commands */
	char *dst;
	const char *src;
	size_t len;
	void *pattern;
	size_t pattern_len;
	/* rect copies: rows x slices of len bytes */
	size_t rows, slices, dst_row, dst_slice, src_row, src_slice;
	/* dispatch */
	cl_kernel kernel;           /* retained */
	struct vgpu_ndrange range;
	struct vgpu_kernel_arg *vargs;
	uint32_t num_vargs;
	unsigned char *values;      /* the value bytes vargs point into */
	struct vgpu_fence *fence;
};

/* ---- shared helpers ------------------------------------------------------- */

cl_ulong icd_now_ns(void);
/* Answer a clGet*Info query with size bytes at value. */
cl_int icd_info(size_t want, void *out, size_t *out_size, const void *value, size_t size);
#define ICD_INFO_VAL(T, v)                                                            \
	do {                                                                          \
		T icd_v_ = (v);                                                       \
		return icd_info(param_value_size, param_value, param_value_size_ret, \
				&icd_v_, sizeof(icd_v_));                             \
	} while (0)
#define ICD_INFO_STR(s)                                                               \
	return icd_info(param_value_size, param_value, param_value_size_ret, (s),    \
			strlen(s) + 1)

static inline void icd_set_err(cl_int *errcode_ret, cl_int err)
{
	if (errcode_ret)
		*errcode_ret = err;
}

/* Handle checks: the magic of a live object of this ICD. */
bool icd_valid_context(cl_context c);
bool icd_valid_queue(cl_command_queue q);
bool icd_valid_mem(cl_mem m);
bool icd_valid_program(cl_program p);
bool icd_valid_kernel(cl_kernel k);
bool icd_valid_event(cl_event e);
bool icd_valid_device(cl_device_id d);

/* A negative errno of libvgpu as the OpenCL error a call returns. */
cl_int icd_errno_to_cl(int err);

/* Device setup (platform.c). */
void icd_device_init(void);
const void *icd_device_record(uint32_t param, uint32_t *size);

/* Objects' lifetimes; the caller holds icd_lock for *_locked. */
void icd_context_retain_locked(cl_context c);
void icd_context_release(cl_context c);
void icd_mem_retain_locked(cl_mem m);
void icd_mem_release(cl_mem m);
void icd_kernel_release(cl_kernel k);
void icd_event_release(cl_event e);
cl_event icd_event_new(cl_context ctx, cl_command_queue q, cl_command_type type);

/* Set an event's status (it only moves forward, or to an error) and run the
 * callbacks it reached; takes icd_lock itself. */
void icd_event_set_status(cl_event e, cl_int status);

/* Enqueue (queue.c). cmd is filled by the caller except for ev and waits:
 * checks the wait list, takes the event, and queues the command. */
cl_int icd_enqueue(cl_command_queue q, struct icd_command *cmd, cl_command_type type,
		   cl_uint num_waits, const cl_event *waits, cl_event *event_out,
		   bool blocking);
void icd_command_free(struct icd_command *cmd);
cl_int icd_check_wait_list(cl_context ctx, cl_uint n, const cl_event *list);

/* One more reference on an object's count (clRetain*). */
static inline void icd_ref_get(unsigned int *refs)
{
	pthread_mutex_lock(&icd_lock);
	(*refs)++;
	pthread_mutex_unlock(&icd_lock);
}

/* Add a destructor callback to the front of a list (run newest first). */
cl_int icd_dtor_add(struct icd_dtor_cb **list, void(CL_CALLBACK *fn)(), void *data);

/* Kernels of a program (program.c). */
cl_int icd_program_descs(cl_program p);

#endif /* VGPU_ICD_H */
