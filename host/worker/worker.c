/* SPDX-License-Identifier: MIT */
/*
 * virtgpu-worker - the process that runs one context's programs.
 *
 * The daemon starts it (host/worker.c) as PID 1 of new mount, PID, network,
 * IPC and UTS namespaces, with the control socket at WP_FD_CTL and the
 * front-end's memory files at WP_FD_RAM and up. It confines itself first
 * (sandbox.c), hands the daemon its seccomp listener, opens the OpenCL
 * device and then serves the daemon's requests (worker_proto.h): windows
 * over guest RAM, program builds, kernels and dispatches.
 *
 * Requests of one ring run in order on that ring's thread and OpenCL
 * queue; rings run side by side. A kernel object is shared by the rings of
 * the context: setting its arguments and enqueueing it happen under its
 * lock, since OpenCL captures the arguments at enqueue.
 *
 *   virtgpu-worker --ram N [--uid U] [--gid G] [--data-limit BYTES]
 *                  [--scratch BYTES] [--nofile N] [--cpu-seconds S]
 *                  [--host-root]
 */
#define CL_TARGET_OPENCL_VERSION 300
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS /* clCreateCommandQueue: 1.2 devices too */
#include <CL/cl.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../worker_proto.h"
#include "sandbox.h"
#include "vgpu_compute.h"

#define MAX_RINGS 64u
#define MAX_IDS 4096u
#define ARG_INFO_OPTION "-cl-kernel-arg-info"

struct window {
	uint8_t *base;
	uint64_t size, span;
	bool readonly;
};

struct program {
	cl_program prog;
};

struct kernel {
	cl_kernel k;
	pthread_mutex_t lock;
	uint32_t num_args;
};

/* A request waiting for its ring's thread. */
struct job {
	struct job *next;
	struct wp_msg h;
	uint8_t *body;
};

struct ring {
	pthread_t thread;
	bool started;
	cl_command_queue q;
	struct job *head, *tail;
	pthread_cond_t cv;
};

static struct {
	cl_platform_id plat;
	cl_device_id dev;
	cl_context ctx;
	unsigned int nram;
	pthread_mutex_t lock;        /* the tables and the ring queues */
	pthread_mutex_t send_lock;   /* writes to the control socket */
	struct window *win[MAX_IDS]; /* by resource id (hashed: see win_slot) */
	uint32_t win_res[MAX_IDS];
	struct program *prog[MAX_IDS + 1];
	struct kernel *kern[MAX_IDS + 1];
	struct ring rings[MAX_RINGS];
} W = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.send_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* ---- the control socket ---- */

/* Send a message (and one fd, or -1); the bodies are concatenated. */
static int send_msg(uint32_t type, uint64_t tag, uint32_t ring, int32_t status, int32_t cl_error,
		    const void *a, size_t alen, const void *b, size_t blen, int fd)
{
	struct wp_msg h = {
		.magic = WP_MAGIC, .type = type, .tag = tag, .len = (uint32_t)(alen + blen),
		.ring = ring, .status = status, .cl_error = cl_error,
	};
	int r;

	pthread_mutex_lock(&W.send_lock);
	if (fd >= 0) {
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { &h, sizeof(h) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

		memset(cbuf, 0, sizeof(cbuf));
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		r = sendmsg(WP_FD_CTL, &m, MSG_NOSIGNAL) == (ssize_t)sizeof(h) ? 0 : -1;
	} else {
		r = wp_send_all(WP_FD_CTL, &h, sizeof(h));
	}
	if (!r && alen)
		r = wp_send_all(WP_FD_CTL, a, alen);
	if (!r && blen)
		r = wp_send_all(WP_FD_CTL, b, blen);
	pthread_mutex_unlock(&W.send_lock);
	return r;
}

static void reply(const struct wp_msg *req, int32_t status, int32_t cl_error, const void *a,
		  size_t alen, const void *b, size_t blen)
{
	if (send_msg(req->type | WP_REPLY, req->tag, req->ring, status, cl_error, a, alen, b, blen,
		     -1))
		_exit(0); /* the daemon is gone */
}

/* ---- windows ---- */

static uint32_t win_slot(uint32_t res)
{
	uint32_t s = (res * 2654435761u) % MAX_IDS;

	for (uint32_t i = 0; i < MAX_IDS; i++, s = (s + 1) % MAX_IDS)
		if (W.win_res[s] == res || W.win_res[s] == 0)
			return s;
	return UINT32_MAX;
}

static struct window *win_find(uint32_t res)
{
	uint32_t s = win_slot(res);

	return s != UINT32_MAX && W.win_res[s] == res ? W.win[s] : NULL;
}

static int32_t do_map(const struct wp_msg *h, const uint8_t *body)
{
	struct wp_map m;
	const struct wp_run *runs;
	struct window *w;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), off = 0;
	uint32_t s;

	if (h->len < sizeof(m))
		return VGPU_COMPUTE_E_MALFORMED;
	memcpy(&m, body, sizeof(m));
	if (m.nruns == 0 || m.nruns > WP_MAX_RUNS ||
	    h->len != sizeof(m) + (uint64_t)m.nruns * sizeof(struct wp_run) || !m.size)
		return VGPU_COMPUTE_E_MALFORMED;
	runs = (const struct wp_run *)(const void *)(body + sizeof(m));
	pthread_mutex_lock(&W.lock);
	s = win_slot(m.res);
	if (m.res == 0 || s == UINT32_MAX || W.win_res[s] == m.res) {
		pthread_mutex_unlock(&W.lock);
		return VGPU_COMPUTE_E_OBJECT;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		pthread_mutex_unlock(&W.lock);
		return VGPU_COMPUTE_E_DEVICE;
	}
	w->size = m.size;
	w->readonly = m.readonly;
	w->span = (m.size + page - 1) / page * page + page; /* and a guard page */
	w->base = mmap(NULL, w->span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (w->base == MAP_FAILED) {
		free(w);
		pthread_mutex_unlock(&W.lock);
		return VGPU_COMPUTE_E_DEVICE;
	}
	for (uint32_t i = 0; i < m.nruns; i++) {
		uint64_t len = (runs[i].len + page - 1) / page * page;
		void *p;

		if (runs[i].region >= W.nram || off + len > w->span - page) {
			munmap(w->base, w->span);
			free(w);
			pthread_mutex_unlock(&W.lock);
			return VGPU_COMPUTE_E_MALFORMED;
		}
		/* Read-only windows from the read-only file: no mprotect()
		 * can make them writable. */
		p = mmap(w->base + off, len, PROT_READ | (m.readonly ? 0 : PROT_WRITE),
			 MAP_SHARED | MAP_FIXED,
			 (m.readonly ? WP_FD_RAM_RO : WP_FD_RAM) + (int)runs[i].region,
			 (off_t)runs[i].file_off);
		if (p == MAP_FAILED) {
			munmap(w->base, w->span);
			free(w);
			pthread_mutex_unlock(&W.lock);
			return VGPU_COMPUTE_E_NOWINDOW;
		}
		off += len;
	}
	W.win_res[s] = m.res;
	W.win[s] = w;
	pthread_mutex_unlock(&W.lock);
	return VGPU_COMPUTE_OK;
}

static int32_t do_unmap(const struct wp_msg *h, const uint8_t *body)
{
	struct wp_unmap u;
	struct window *w;
	uint32_t s;

	if (h->len != sizeof(u))
		return VGPU_COMPUTE_E_MALFORMED;
	memcpy(&u, body, sizeof(u));
	pthread_mutex_lock(&W.lock);
	s = win_slot(u.res);
	if (s == UINT32_MAX || W.win_res[s] != u.res) {
		pthread_mutex_unlock(&W.lock);
		return VGPU_COMPUTE_E_OBJECT;
	}
	w = W.win[s];
	/* Open addressing: a freed slot takes the last of its chain. */
	W.win_res[s] = 0;
	W.win[s] = NULL;
	for (uint32_t i = (s + 1) % MAX_IDS; W.win_res[i]; i = (i + 1) % MAX_IDS) {
		uint32_t r = W.win_res[i];
		struct window *x = W.win[i];

		W.win_res[i] = 0;
		W.win[i] = NULL;
		W.win_res[win_slot(r)] = r;
		W.win[win_slot(r)] = x;
	}
	pthread_mutex_unlock(&W.lock);
	munmap(w->base, w->span);
	free(w);
	return VGPU_COMPUTE_OK;
}

/* ---- programs and kernels ---- */

static void do_build(const struct wp_msg *h, const uint8_t *body)
{
	struct wp_build b;
	struct wp_build_reply r = { 0 };
	char *options = NULL, *log = NULL;
	cl_program prog = NULL;
	cl_int err = CL_SUCCESS;
	size_t log_size = 0, nk = 0;

	if (h->len < sizeof(b)) {
		reply(h, VGPU_COMPUTE_E_MALFORMED, 0, NULL, 0, NULL, 0);
		return;
	}
	memcpy(&b, body, sizeof(b));
	if (b.program == 0 || b.program > MAX_IDS || b.options_len >= 4096 || b.data_len == 0 ||
	    h->len != sizeof(b) + (uint64_t)b.options_len + b.data_len) {
		reply(h, VGPU_COMPUTE_E_MALFORMED, 0, NULL, 0, NULL, 0);
		return;
	}
	pthread_mutex_lock(&W.lock);
	if (W.prog[b.program]) {
		pthread_mutex_unlock(&W.lock);
		reply(h, VGPU_COMPUTE_E_OBJECT, 0, NULL, 0, NULL, 0);
		return;
	}
	pthread_mutex_unlock(&W.lock);
	/* The guest's options, and the kernels' argument info always: the
	 * guest needs each argument's address space to pass it. */
	options = calloc(1, b.options_len + sizeof(ARG_INFO_OPTION) + 1);
	if (!options) {
		reply(h, VGPU_COMPUTE_E_DEVICE, CL_OUT_OF_HOST_MEMORY, NULL, 0, NULL, 0);
		return;
	}
	memcpy(options, body + sizeof(b), b.options_len);
	if (b.kind == VGPU_PROGRAM_SOURCE)
		strcat(options, " " ARG_INFO_OPTION);
	{
		const uint8_t *data = body + sizeof(b) + b.options_len;
		size_t len = (size_t)b.data_len;

		switch (b.kind) {
		case VGPU_PROGRAM_SOURCE: {
			const char *src = (const char *)data;

			prog = clCreateProgramWithSource(W.ctx, 1, &src, &len, &err);
			break;
		}
		case VGPU_PROGRAM_BINARY: {
			cl_int bs = CL_SUCCESS;

			prog = clCreateProgramWithBinary(W.ctx, 1, &W.dev, &len, &data, &bs, &err);
			if (prog && bs != CL_SUCCESS)
				err = bs;
			break;
		}
		case VGPU_PROGRAM_IL:
			prog = clCreateProgramWithIL(W.ctx, data, len, &err);
			break;
		default:
			err = CL_INVALID_VALUE;
		}
	}
	if (prog && err == CL_SUCCESS)
		err = clBuildProgram(prog, 1, &W.dev, options, NULL, NULL);
	if (prog) {
		clGetProgramBuildInfo(prog, W.dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_size);
		if (log_size > (16u << 20))
			log_size = 16u << 20;
		log = log_size ? calloc(1, log_size) : NULL;
		if (log && clGetProgramBuildInfo(prog, W.dev, CL_PROGRAM_BUILD_LOG, log_size, log,
						 NULL) != CL_SUCCESS)
			log_size = 0;
		/* The log is text: no NUL at its end on the wire. */
		while (log && log_size && log[log_size - 1] == 0)
			log_size--;
	}
	r.status = err;
	if (err == CL_SUCCESS) {
		clGetProgramInfo(prog, CL_PROGRAM_NUM_KERNELS, sizeof(nk), &nk, NULL);
		clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof(size_t), &r.binary_size, NULL);
		r.num_kernels = (uint32_t)nk;
		pthread_mutex_lock(&W.lock);
		W.prog[b.program] = calloc(1, sizeof(struct program));
		if (W.prog[b.program]) {
			W.prog[b.program]->prog = prog;
			prog = NULL;
		}
		pthread_mutex_unlock(&W.lock);
	}
	r.log_size = log_size;
	if (prog)
		clReleaseProgram(prog);
	reply(h, VGPU_COMPUTE_OK, err, &r, sizeof(r), log, log_size);
	free(log);
	free(options);
}

static struct program *prog_get(uint32_t id)
{
	return id && id <= MAX_IDS ? W.prog[id] : NULL;
}

static void do_binary(const struct wp_msg *h, const uint8_t *body)
{
	struct wp_object o;
	struct program *p;
	size_t size = 0;
	unsigned char *bin = NULL;
	cl_int err;

	if (h->len != sizeof(o)) {
		reply(h, VGPU_COMPUTE_E_MALFORMED, 0, NULL, 0, NULL, 0);
		return;
	}
	memcpy(&o, body, sizeof(o));
	pthread_mutex_lock(&W.lock);
	p = prog_get(o.id);
	if (!p) {
		pthread_mutex_unlock(&W.lock);
		reply(h, VGPU_COMPUTE_E_OBJECT, 0, NULL, 0, NULL, 0);
		return;
	}
	clRetainProgram(p->prog);
	pthread_mutex_unlock(&W.lock);
	err = clGetProgramInfo(p->prog, CL_PROGRAM_BINARY_SIZES, sizeof(size), &size, NULL);
	if (err == CL_SUCCESS && size && size <= (64u << 20)) {
		bin = malloc(size);
		err = bin ? clGetProgramInfo(p->prog, CL_PROGRAM_BINARIES, sizeof(bin), &bin, NULL)
			  : CL_OUT_OF_HOST_MEMORY;
	}
	clReleaseProgram(p->prog);
	if (err != CL_SUCCESS || !bin)
		reply(h, VGPU_COMPUTE_E_DEVICE, err, NULL, 0, NULL, 0);
	else
		reply(h, VGPU_COMPUTE_OK, 0, bin, size, NULL, 0);
	free(bin);
}

static void do_release(const struct wp_msg *h, const uint8_t *body, bool kernel)
{
	struct wp_object o;

	if (h->len != sizeof(o)) {
		reply(h, VGPU_COMPUTE_E_MALFORMED, 0, NULL, 0, NULL, 0);
		return;
	}
	memcpy(&o, body, sizeof(o));
	pthread_mutex_lock(&W.lock);
	if (o.id == 0 || o.id > MAX_IDS || !(kernel ? (void *)W.kern[o.id] : (void *)W.prog[o.id])) {
		pthread_mutex_unlock(&W.lock);
		reply(h, VGPU_COMPUTE_E_OBJECT, 0, NULL, 0, NULL, 0);
		return;
	}
	if (kernel) {
		struct kernel *k = W.kern[o.id];

		W.kern[o.id] = NULL;
		pthread_mutex_unlock(&W.lock);
		/* A dispatch on another ring may hold it: wait for it. */
		pthread_mutex_lock(&k->lock);
		pthread_mutex_unlock(&k->lock);
		clReleaseKernel(k->k);
		pthread_mutex_destroy(&k->lock);
		free(k);
	} else {
		struct program *p = W.prog[o.id];

		W.prog[o.id] = NULL;
		pthread_mutex_unlock(&W.lock);
		clReleaseProgram(p->prog);
		free(p);
	}
	reply(h, VGPU_COMPUTE_OK, 0, NULL, 0, NULL, 0);
}

static uint32_t arg_space(cl_kernel_arg_address_qualifier q)
{
	switch (q) {
	case CL_KERNEL_ARG_ADDRESS_GLOBAL:
		return VGPU_ARG_SPACE_GLOBAL;
	case CL_KERNEL_ARG_ADDRESS_CONSTANT:
		return VGPU_ARG_SPACE_CONSTANT;
	case CL_KERNEL_ARG_ADDRESS_LOCAL:
		return VGPU_ARG_SPACE_LOCAL;
	default:
		return VGPU_ARG_SPACE_PRIVATE;
	}
}

static void do_kernel(const struct wp_msg *h, const uint8_t *body)
{
	struct wp_kernel wk;
	struct vgpu_kernel_info info = { 0 };
	struct vgpu_kernel_arg_info *args = NULL;
	char name[VGPU_KERNEL_NAME_MAX];
	struct program *p;
	struct kernel *k;
	cl_uint nargs = 0;
	cl_int err;

	if (h->len < sizeof(wk)) {
		reply(h, VGPU_COMPUTE_E_MALFORMED, 0, NULL, 0, NULL, 0);
		return;
	}
	memcpy(&wk, body, sizeof(wk));
	if (wk.kernel == 0 || wk.kernel > MAX_IDS || wk.name_len == 0 ||
	    wk.name_len >= VGPU_KERNEL_NAME_MAX || h->len != sizeof(wk) + wk.name_len) {
		reply(h, VGPU_COMPUTE_E_MALFORMED, 0, NULL, 0, NULL, 0);
		return;
	}
	memcpy(name, body + sizeof(wk), wk.name_len);
	name[wk.name_len] = 0;
	pthread_mutex_lock(&W.lock);
	p = prog_get(wk.program);
	if (!p || W.kern[wk.kernel]) {
		pthread_mutex_unlock(&W.lock);
		reply(h, VGPU_COMPUTE_E_OBJECT, 0, NULL, 0, NULL, 0);
		return;
	}
	clRetainProgram(p->prog);
	pthread_mutex_unlock(&W.lock);
	k = calloc(1, sizeof(*k));
	if (!k) {
		clReleaseProgram(p->prog);
		reply(h, VGPU_COMPUTE_E_DEVICE, CL_OUT_OF_HOST_MEMORY, NULL, 0, NULL, 0);
		return;
	}
	k->k = clCreateKernel(p->prog, name, &err);
	clReleaseProgram(p->prog);
	if (!k->k) {
		free(k);
		reply(h, VGPU_COMPUTE_OK, err, NULL, 0, NULL, 0);
		return;
	}
	clGetKernelInfo(k->k, CL_KERNEL_NUM_ARGS, sizeof(nargs), &nargs, NULL);
	info.num_args = nargs;
	clGetKernelWorkGroupInfo(k->k, W.dev, CL_KERNEL_WORK_GROUP_SIZE, sizeof(size_t),
				 &info.work_group_size, NULL);
	{
		size_t c3[3] = { 0, 0, 0 };

		clGetKernelWorkGroupInfo(k->k, W.dev, CL_KERNEL_COMPILE_WORK_GROUP_SIZE, sizeof(c3),
					 c3, NULL);
		for (int i = 0; i < 3; i++)
			info.compile_work_group_size[i] = c3[i];
	}
	clGetKernelWorkGroupInfo(k->k, W.dev, CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE,
				 sizeof(size_t), &info.preferred_multiple, NULL);
	clGetKernelWorkGroupInfo(k->k, W.dev, CL_KERNEL_LOCAL_MEM_SIZE, sizeof(cl_ulong),
				 &info.local_mem_size, NULL);
	clGetKernelWorkGroupInfo(k->k, W.dev, CL_KERNEL_PRIVATE_MEM_SIZE, sizeof(cl_ulong),
				 &info.private_mem_size, NULL);
	args = nargs ? calloc(nargs, sizeof(*args)) : NULL;
	if (nargs && !args) {
		clReleaseKernel(k->k);
		free(k);
		reply(h, VGPU_COMPUTE_E_DEVICE, CL_OUT_OF_HOST_MEMORY, NULL, 0, NULL, 0);
		return;
	}
	for (cl_uint i = 0; i < nargs; i++) {
		cl_kernel_arg_address_qualifier aq = CL_KERNEL_ARG_ADDRESS_PRIVATE;
		cl_kernel_arg_access_qualifier acc = CL_KERNEL_ARG_ACCESS_NONE;
		cl_kernel_arg_type_qualifier tq = 0;

		bool known = clGetKernelArgInfo(k->k, i, CL_KERNEL_ARG_ADDRESS_QUALIFIER, sizeof(aq),
						&aq, NULL) == CL_SUCCESS;

		clGetKernelArgInfo(k->k, i, CL_KERNEL_ARG_ACCESS_QUALIFIER, sizeof(acc), &acc, NULL);
		clGetKernelArgInfo(k->k, i, CL_KERNEL_ARG_TYPE_QUALIFIER, sizeof(tq), &tq, NULL);
		/* No argument info (CL_KERNEL_ARG_INFO_NOT_AVAILABLE: a program
		 * from a binary): the guest must know its kernel. */
		args[i].space = known ? arg_space(aq) : VGPU_ARG_SPACE_UNKNOWN;
		args[i].access = (uint32_t)acc;
		args[i].type_qualifier = (uint32_t)tq;
		if (clGetKernelArgInfo(k->k, i, CL_KERNEL_ARG_TYPE_NAME, sizeof(args[i].type_name) - 1,
				       args[i].type_name, NULL) != CL_SUCCESS)
			args[i].type_name[0] = 0;
		if (clGetKernelArgInfo(k->k, i, CL_KERNEL_ARG_NAME, sizeof(args[i].name) - 1,
				       args[i].name, NULL) != CL_SUCCESS)
			args[i].name[0] = 0;
	}
	k->num_args = nargs;
	pthread_mutex_init(&k->lock, NULL);
	pthread_mutex_lock(&W.lock);
	if (W.kern[wk.kernel]) {
		/* Created on another ring meanwhile. */
		pthread_mutex_unlock(&W.lock);
		clReleaseKernel(k->k);
		pthread_mutex_destroy(&k->lock);
		free(k);
		free(args);
		reply(h, VGPU_COMPUTE_E_OBJECT, 0, NULL, 0, NULL, 0);
		return;
	}
	W.kern[wk.kernel] = k;
	pthread_mutex_unlock(&W.lock);
	reply(h, VGPU_COMPUTE_OK, 0, &info, sizeof(info), args, (size_t)nargs * sizeof(*args));
	free(args);
}

/* ---- dispatch ---- */

static void do_dispatch(const struct wp_msg *h, const uint8_t *body, cl_command_queue q)
{
	struct wp_dispatch wd;
	struct vgpu_dispatch d;
	const struct vgpu_dispatch_arg *args;
	const uint8_t *values;
	uint64_t values_len;
	cl_mem *mems = NULL;
	struct kernel *k;
	size_t goff[3], gsz[3], lsz[3];
	bool local = false;
	cl_int err = CL_SUCCESS;
	int32_t status = VGPU_COMPUTE_OK;

	if (h->len < sizeof(wd) + sizeof(d)) {
		reply(h, VGPU_COMPUTE_E_MALFORMED, 0, NULL, 0, NULL, 0);
		return;
	}
	memcpy(&wd, body, sizeof(wd));
	memcpy(&d, body + sizeof(wd), sizeof(d));
	if (wd.payload_len != h->len - sizeof(wd) || d.work_dim < 1 || d.work_dim > 3 ||
	    d.num_args > 4096 ||
	    sizeof(d) + (uint64_t)d.num_args * sizeof(*args) > wd.payload_len) {
		reply(h, VGPU_COMPUTE_E_MALFORMED, 0, NULL, 0, NULL, 0);
		return;
	}
	args = (const struct vgpu_dispatch_arg *)(const void *)(body + sizeof(wd) + sizeof(d));
	values = (const uint8_t *)(args + d.num_args);
	values_len = wd.payload_len - sizeof(d) - (uint64_t)d.num_args * sizeof(*args);
	pthread_mutex_lock(&W.lock);
	k = wd.kernel && wd.kernel <= MAX_IDS ? W.kern[wd.kernel] : NULL;
	if (!k || k->num_args != d.num_args) {
		pthread_mutex_unlock(&W.lock);
		reply(h, k ? VGPU_COMPUTE_E_ARGS : VGPU_COMPUTE_E_OBJECT, CL_INVALID_KERNEL_ARGS,
		      NULL, 0, NULL, 0);
		return;
	}
	/* Held until the enqueue: a release on another ring waits for it. */
	pthread_mutex_lock(&k->lock);
	mems = d.num_args ? calloc(d.num_args, sizeof(*mems)) : NULL;
	for (uint32_t i = 0; i < d.num_args && err == CL_SUCCESS && status == VGPU_COMPUTE_OK; i++) {
		const struct vgpu_dispatch_arg *a = &args[i];

		switch (a->kind) {
		case VGPU_DARG_BUFFER: {
			struct window *w = win_find(a->res);
			cl_mem_flags f = CL_MEM_USE_HOST_PTR;

			if (!w || a->offset > w->size || a->size > w->size - a->offset || !a->size) {
				status = VGPU_COMPUTE_E_RANGE;
				break;
			}
			if ((a->access & VGPU_OP_WRITE) && w->readonly) {
				status = VGPU_COMPUTE_E_READONLY;
				break;
			}
			f |= (a->access & VGPU_OP_WRITE) ? (a->access & VGPU_OP_READ ?
				CL_MEM_READ_WRITE : CL_MEM_WRITE_ONLY) : CL_MEM_READ_ONLY;
			mems[i] = clCreateBuffer(W.ctx, f, (size_t)a->size, w->base + a->offset, &err);
			if (mems[i])
				err = clSetKernelArg(k->k, i, sizeof(cl_mem), &mems[i]);
			break;
		}
		case VGPU_DARG_NULL:
			err = clSetKernelArg(k->k, i, sizeof(cl_mem), NULL);
			break;
		case VGPU_DARG_VALUE:
			if (a->offset > values_len || a->size > values_len - a->offset || !a->size) {
				status = VGPU_COMPUTE_E_MALFORMED;
				break;
			}
			err = clSetKernelArg(k->k, i, (size_t)a->size, values + a->offset);
			break;
		case VGPU_DARG_LOCAL:
			err = clSetKernelArg(k->k, i, (size_t)a->size, NULL);
			break;
		default:
			status = VGPU_COMPUTE_E_MALFORMED;
		}
	}
	for (unsigned int i = 0; i < 3; i++) {
		goff[i] = (size_t)d.global_offset[i];
		gsz[i] = (size_t)d.global_size[i];
		lsz[i] = (size_t)d.local_size[i];
		local |= i < d.work_dim && lsz[i];
	}
	if (status == VGPU_COMPUTE_OK && err == CL_SUCCESS)
		err = clEnqueueNDRangeKernel(q, k->k, d.work_dim, goff, gsz, local ? lsz : NULL, 0,
					     NULL, NULL);
	pthread_mutex_unlock(&k->lock);
	pthread_mutex_unlock(&W.lock);
	if (status == VGPU_COMPUTE_OK && err == CL_SUCCESS) {
		/* Written buffers back to host memory (a no-op where the device
		 * shares it), then done. */
		for (uint32_t i = 0; i < d.num_args && err == CL_SUCCESS; i++) {
			void *p;

			if (!mems[i] || !(args[i].access & VGPU_OP_WRITE))
				continue;
			p = clEnqueueMapBuffer(q, mems[i], CL_FALSE, CL_MAP_READ, 0,
					       (size_t)args[i].size, 0, NULL, NULL, &err);
			if (p)
				err = clEnqueueUnmapMemObject(q, mems[i], p, 0, NULL, NULL);
		}
		if (err == CL_SUCCESS)
			err = clFinish(q);
	}
	for (uint32_t i = 0; i < d.num_args; i++)
		if (mems && mems[i])
			clReleaseMemObject(mems[i]);
	free(mems);
	if (status == VGPU_COMPUTE_OK && err != CL_SUCCESS)
		status = err == CL_INVALID_WORK_GROUP_SIZE || err == CL_INVALID_WORK_ITEM_SIZE ||
			 err == CL_INVALID_GLOBAL_OFFSET || err == CL_INVALID_GLOBAL_WORK_SIZE ||
			 err == CL_OUT_OF_RESOURCES ? VGPU_COMPUTE_E_WORKSIZE :
			 err == CL_INVALID_ARG_SIZE || err == CL_INVALID_ARG_VALUE ||
			 err == CL_INVALID_MEM_OBJECT || err == CL_INVALID_KERNEL_ARGS ?
			 VGPU_COMPUTE_E_ARGS : VGPU_COMPUTE_E_DEVICE;
	reply(h, status, err, NULL, 0, NULL, 0);
}

/* ---- the rings ---- */

static void serve(struct job *j, cl_command_queue q)
{
	switch (j->h.type) {
	case WP_MAP:
		reply(&j->h, do_map(&j->h, j->body), 0, NULL, 0, NULL, 0);
		break;
	case WP_UNMAP:
		reply(&j->h, do_unmap(&j->h, j->body), 0, NULL, 0, NULL, 0);
		break;
	case WP_BUILD:
		do_build(&j->h, j->body);
		break;
	case WP_BINARY:
		do_binary(&j->h, j->body);
		break;
	case WP_PROGRAM_RELEASE:
		do_release(&j->h, j->body, false);
		break;
	case WP_KERNEL:
		do_kernel(&j->h, j->body);
		break;
	case WP_KERNEL_RELEASE:
		do_release(&j->h, j->body, true);
		break;
	case WP_DISPATCH:
		do_dispatch(&j->h, j->body, q);
		break;
	default:
		reply(&j->h, VGPU_COMPUTE_E_OPCODE, 0, NULL, 0, NULL, 0);
	}
}

static void *ring_main(void *arg)
{
	struct ring *r = arg;

	pthread_mutex_lock(&W.lock);
	for (;;) {
		struct job *j;

		while (!r->head)
			pthread_cond_wait(&r->cv, &W.lock);
		j = r->head;
		r->head = j->next;
		if (!r->head)
			r->tail = NULL;
		pthread_mutex_unlock(&W.lock);
		serve(j, r->q);
		free(j->body);
		free(j);
		pthread_mutex_lock(&W.lock);
	}
	return NULL;
}

static int queue_job(struct job *j)
{
	struct ring *r;
	cl_int err;

	if (j->h.ring >= MAX_RINGS)
		return -1;
	r = &W.rings[j->h.ring];
	pthread_mutex_lock(&W.lock);
	if (!r->started) {
		r->q = clCreateCommandQueue(W.ctx, W.dev, 0, &err);
		pthread_cond_init(&r->cv, NULL);
		if (!r->q || pthread_create(&r->thread, NULL, ring_main, r)) {
			pthread_mutex_unlock(&W.lock);
			return -1;
		}
		r->started = true;
	}
	j->next = NULL;
	if (r->tail)
		r->tail->next = j;
	else
		r->head = j;
	r->tail = j;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&W.lock);
	return 0;
}

/* ---- start-up ---- */

static int pick_device(void)
{
	cl_platform_id plats[16];
	cl_uint np = 0;

	if (clGetPlatformIDs(16, plats, &np) != CL_SUCCESS || np == 0)
		return -1;
	if (np > 16)
		np = 16;
	for (int pass = 0; pass < 2; pass++)
		for (cl_uint i = 0; i < np; i++) {
			cl_uint nd = 0;

			if (clGetDeviceIDs(plats[i], pass ? CL_DEVICE_TYPE_ALL : CL_DEVICE_TYPE_GPU, 1,
					   &W.dev, &nd) == CL_SUCCESS && nd) {
				W.plat = plats[i];
				return 0;
			}
		}
	return -1;
}

/* The device info records of VGPU_QUERY_DEVICE_INFO: these parameters, as
 * the device answers them. */
static const cl_uint info_params[] = {
	CL_DEVICE_TYPE, CL_DEVICE_VENDOR_ID, CL_DEVICE_MAX_COMPUTE_UNITS,
	CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS, CL_DEVICE_MAX_WORK_ITEM_SIZES,
	CL_DEVICE_MAX_WORK_GROUP_SIZE, CL_DEVICE_PREFERRED_VECTOR_WIDTH_CHAR,
	CL_DEVICE_PREFERRED_VECTOR_WIDTH_SHORT, CL_DEVICE_PREFERRED_VECTOR_WIDTH_INT,
	CL_DEVICE_PREFERRED_VECTOR_WIDTH_LONG, CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT,
	CL_DEVICE_PREFERRED_VECTOR_WIDTH_DOUBLE, CL_DEVICE_PREFERRED_VECTOR_WIDTH_HALF,
	CL_DEVICE_NATIVE_VECTOR_WIDTH_CHAR, CL_DEVICE_NATIVE_VECTOR_WIDTH_SHORT,
	CL_DEVICE_NATIVE_VECTOR_WIDTH_INT, CL_DEVICE_NATIVE_VECTOR_WIDTH_LONG,
	CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, CL_DEVICE_NATIVE_VECTOR_WIDTH_DOUBLE,
	CL_DEVICE_NATIVE_VECTOR_WIDTH_HALF, CL_DEVICE_MAX_CLOCK_FREQUENCY,
	CL_DEVICE_ADDRESS_BITS, CL_DEVICE_MAX_MEM_ALLOC_SIZE, CL_DEVICE_MAX_PARAMETER_SIZE,
	CL_DEVICE_MEM_BASE_ADDR_ALIGN, CL_DEVICE_SINGLE_FP_CONFIG, CL_DEVICE_DOUBLE_FP_CONFIG,
	CL_DEVICE_GLOBAL_MEM_CACHE_TYPE, CL_DEVICE_GLOBAL_MEM_CACHELINE_SIZE,
	CL_DEVICE_GLOBAL_MEM_CACHE_SIZE, CL_DEVICE_GLOBAL_MEM_SIZE,
	CL_DEVICE_MAX_CONSTANT_BUFFER_SIZE, CL_DEVICE_MAX_CONSTANT_ARGS,
	CL_DEVICE_LOCAL_MEM_TYPE, CL_DEVICE_LOCAL_MEM_SIZE, CL_DEVICE_ERROR_CORRECTION_SUPPORT,
	CL_DEVICE_PROFILING_TIMER_RESOLUTION, CL_DEVICE_ENDIAN_LITTLE,
	CL_DEVICE_NAME, CL_DEVICE_VENDOR, CL_DRIVER_VERSION, CL_DEVICE_PROFILE,
	CL_DEVICE_VERSION, CL_DEVICE_OPENCL_C_VERSION, CL_DEVICE_EXTENSIONS,
	CL_DEVICE_PRINTF_BUFFER_SIZE, CL_DEVICE_IL_VERSION,
};

static uint8_t *device_info(uint32_t *len)
{
	size_t cap = 65536, n = 0;
	uint8_t *buf = malloc(cap);

	for (size_t i = 0; buf && i < sizeof(info_params) / sizeof(info_params[0]); i++) {
		size_t sz = 0;
		struct vgpu_info_record r;

		if (clGetDeviceInfo(W.dev, info_params[i], 0, NULL, &sz) != CL_SUCCESS || !sz ||
		    sz > 8192 || n + sizeof(r) + ((sz + 7) & ~7u) > cap)
			continue;
		r.param = info_params[i];
		r.size = (uint32_t)sz;
		memcpy(buf + n, &r, sizeof(r));
		memset(buf + n + sizeof(r), 0, (sz + 7) & ~7u);
		if (clGetDeviceInfo(W.dev, info_params[i], sz, buf + n + sizeof(r), NULL) != CL_SUCCESS)
			continue;
		n += sizeof(r) + ((sz + 7) & ~7u);
	}
	*len = (uint32_t)n;
	return buf;
}

static int hello(void)
{
	struct wp_hello h = { .version = WP_VERSION };
	char ext[8192] = "", il[256] = "";
	cl_ulong u = 0;
	size_t wg = 0;
	cl_uint cu = 0;
	uint8_t *info;
	uint32_t ilen = 0;
	int r;

	clGetPlatformInfo(W.plat, CL_PLATFORM_NAME, sizeof(h.platform) - 1, h.platform, NULL);
	clGetDeviceInfo(W.dev, CL_DEVICE_NAME, sizeof(h.device) - 1, h.device, NULL);
	clGetDeviceInfo(W.dev, CL_DEVICE_EXTENSIONS, sizeof(ext) - 1, ext, NULL);
	clGetDeviceInfo(W.dev, CL_DEVICE_IL_VERSION, sizeof(il) - 1, il, NULL);
	if (strstr(ext, "cl_khr_fp64"))
		h.features |= VGPU_FEATURE_FP64;
	if (strstr(ext, "cl_khr_fp16"))
		h.features |= VGPU_FEATURE_FP16;
	if (strstr(il, "SPIR-V"))
		h.features |= VGPU_FEATURE_IL;
	clGetDeviceInfo(W.dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof(wg), &wg, NULL);
	h.max_work_group_size = wg;
	clGetDeviceInfo(W.dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof(u), &u, NULL);
	h.local_mem_size = u;
	clGetDeviceInfo(W.dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof(u), &u, NULL);
	h.max_alloc = u;
	clGetDeviceInfo(W.dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof(u), &u, NULL);
	h.global_mem_size = u;
	clGetDeviceInfo(W.dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof(cu), &cu, NULL);
	h.compute_units = cu;
	info = device_info(&ilen);
	h.info_len = ilen;
	r = send_msg(WP_HELLO, 0, 0, 0, 0, &h, sizeof(h), info, ilen, -1);
	free(info);
	return r;
}

static uint64_t num_arg(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (*s == 0 || *end) {
		fprintf(stderr, "virtgpu-worker: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct sandbox_config c = {
		.uid = 65534, .gid = 65534, .data_limit = 8ull << 30, .nofile = WP_NOFILE,
		.scratch_bytes = 512ull << 20,
	};
	char err[512];
	int listener;
	cl_int e;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--host-root")) {
			c.allow_root_fs = true;
			continue;
		}
		if (!v) {
			fprintf(stderr, "virtgpu-worker: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--ram"))
			c.nram = (unsigned int)num_arg(v);
		else if (!strcmp(a, "--uid"))
			c.uid = (uid_t)num_arg(v);
		else if (!strcmp(a, "--gid"))
			c.gid = (gid_t)num_arg(v);
		else if (!strcmp(a, "--data-limit"))
			c.data_limit = num_arg(v);
		else if (!strcmp(a, "--scratch"))
			c.scratch_bytes = num_arg(v);
		else if (!strcmp(a, "--nofile"))
			c.nofile = (unsigned int)num_arg(v);
		else if (!strcmp(a, "--cpu-seconds"))
			c.cpu_seconds = num_arg(v);
		else {
			fprintf(stderr, "virtgpu-worker: unknown option %s\n", a);
			return 2;
		}
	}
	if (c.nram > WP_MAX_REGIONS) {
		fprintf(stderr, "virtgpu-worker: --ram %u is over %u\n", c.nram, WP_MAX_REGIONS);
		return 2;
	}
	/* Nothing the linker is started with inherits the control socket or
	 * guest RAM. */
	fcntl(WP_FD_CTL, F_SETFD, FD_CLOEXEC);
	for (unsigned int i = 0; i < c.nram; i++)
		if (fcntl(WP_FD_RAM + (int)i, F_SETFD, FD_CLOEXEC) ||
		    fcntl(WP_FD_RAM_RO + (int)i, F_SETFD, FD_CLOEXEC)) {
			fprintf(stderr, "virtgpu-worker: no memory file at fd %u\n", WP_FD_RAM + i);
			return 2;
		}
	signal(SIGPIPE, SIG_IGN);
	listener = sandbox_enter(&c, err, sizeof(err));
	if (listener < 0) {
		fprintf(stderr, "virtgpu-worker: %s\n", err);
		return 3;
	}
	if (send_msg(WP_LISTENER, 0, 0, 0, 0, NULL, 0, NULL, 0, listener))
		return 4;
	close(listener);
	setenv("POCL_CACHE_DIR", "/cache", 1);
	setenv("HOME", "/tmp", 1);
	setenv("TMPDIR", "/tmp", 1);
	setenv("PATH", "/usr/bin", 1);
	if (pick_device()) {
		fprintf(stderr, "virtgpu-worker: no OpenCL device\n");
		return 5;
	}
	W.ctx = clCreateContext(NULL, 1, &W.dev, NULL, NULL, &e);
	if (!W.ctx) {
		fprintf(stderr, "virtgpu-worker: clCreateContext: %d\n", (int)e);
		return 5;
	}
	W.nram = c.nram;
	if (hello())
		return 4;
	for (;;) {
		struct job *j = calloc(1, sizeof(*j));

		if (!j || wp_recv_all(WP_FD_CTL, &j->h, sizeof(j->h)) || j->h.magic != WP_MAGIC ||
		    j->h.len > WP_MAX_MSG)
			_exit(0);
		j->body = malloc(j->h.len ? j->h.len : 1);
		if (!j->body || (j->h.len && wp_recv_all(WP_FD_CTL, j->body, j->h.len)))
			_exit(0);
		if (queue_job(j)) {
			reply(&j->h, VGPU_COMPUTE_E_DEVICE, 0, NULL, 0, NULL, 0);
			free(j->body);
			free(j);
		}
	}
}
