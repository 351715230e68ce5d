/* SPDX-License-Identifier: MIT */
/*
 * worker_proto.h - what the daemon and a context's worker process say to
 * each other (docs/host.md, "Guest kernels").
 *
 * The worker runs the guest's programs: hostile native code on a CPU
 * device. The daemon stays the only one that parses the guest's commands;
 * it sends the worker requests it has already validated, and treats every
 * byte the worker sends back as hostile too (sizes are checked against the
 * request before anything reaches guest memory).
 *
 * Transport: a SOCK_STREAM socketpair, the worker's end at WP_FD_CTL.
 * Every message is a struct wp_msg, then len bytes. The first message is
 * the worker's WP_LISTENER, which carries its seccomp listener fd
 * (SCM_RIGHTS); the second its WP_HELLO. Then the daemon sends requests,
 * each with a tag of its own; the worker answers each with a message of the
 * request's type | WP_REPLY and the same tag, in any order across rings,
 * in order within one ring.
 *
 * Guest RAM: the front-end's memory files are the worker's descriptors
 * WP_FD_RAM .. WP_FD_RAM + nregions - 1 (one per region of the memory
 * table, in table order), and read-only at WP_FD_RAM_RO and up; a
 * writable mapping is allowed only from the former, and only for a window
 * the daemon sent as writable. The worker maps a window with mmap() of those
 * descriptors, which its seccomp filter hands to the daemon to allow, only
 * inside the ranges the daemon sent in WP_MAP.
 */
#ifndef HOSTD_WORKER_PROTO_H
#define HOSTD_WORKER_PROTO_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define WP_MAGIC 0x57504756u      /* "VGPW" */
#define WP_FD_CTL 3               /* the socket to the daemon */
/* The first memory file: above the worker's RLIMIT_NOFILE (WP_NOFILE), so
 * that no file the worker or the linker it starts opens later can ever get
 * a number its seccomp filter keeps for guest RAM, and nothing can be
 * dup2()ed onto it. */
#define WP_FD_RAM 1000
#define WP_NOFILE 256u
#define WP_MAX_REGIONS 8u
/* The same memory files opened read-only, at WP_FD_RAM_RO + region: a
 * read-only window is mapped from these, so that mprotect() cannot make
 * it writable (a shared mapping of a file opened O_RDONLY never is). */
#define WP_FD_RAM_RO (WP_FD_RAM + (int)WP_MAX_REGIONS)
#define WP_MAX_MSG (80u << 20)    /* a program of up to 64 MiB and its options */
#define WP_MAX_RUNS (1u << 20)    /* runs of one window */

enum wp_type {
	WP_LISTENER = 1,   /* worker: its seccomp listener fd (SCM_RIGHTS) */
	WP_HELLO = 2,      /* worker: struct wp_hello, then the device info records */
	WP_MAP = 3,        /* struct wp_map, then nruns struct wp_run */
	WP_UNMAP = 4,      /* struct wp_unmap */
	WP_BUILD = 5,      /* struct wp_build, options, data; reply: struct wp_build_reply, log */
	WP_BINARY = 6,     /* struct wp_object; reply: the binary */
	WP_PROGRAM_RELEASE = 7, /* struct wp_object */
	WP_KERNEL = 8,     /* struct wp_kernel, name; reply: struct vgpu_kernel_info + arg infos */
	WP_KERNEL_RELEASE = 9,  /* struct wp_object */
	WP_DISPATCH = 10,  /* struct wp_dispatch, then struct vgpu_dispatch, its args, values */
	WP_TYPES,
	WP_REPLY = 0x100,
};

struct wp_msg {
	uint32_t magic;     /* WP_MAGIC */
	uint32_t type;      /* enum wp_type, | WP_REPLY in answers */
	uint64_t tag;       /* the request's, echoed */
	uint32_t len;       /* bytes that follow */
	uint32_t ring;      /* the ring the request came from (ordering) */
	int32_t status;     /* answers: 0 or a vgpu_compute_result; OpenCL error in cl_error */
	int32_t cl_error;   /* answers: the OpenCL error of the failing call, 0 if none */
};

/* WP_HELLO: what the worker's device is. */
struct wp_hello {
	uint32_t version;          /* WP_VERSION */
	uint32_t features;         /* VGPU_FEATURE_* the device has (IL, FP64, FP16) */
	uint64_t max_work_group_size;
	uint64_t local_mem_size;
	uint64_t max_alloc;
	uint64_t global_mem_size;
	uint32_t compute_units;
	uint32_t info_len;         /* bytes of vgpu_info_record list that follow */
	char platform[64];
	char device[64];
};
#define WP_VERSION 1u

/* WP_MAP: make resource `res` a window of `size` bytes: the runs in order,
 * each a range of memory file `region`. */
struct wp_map {
	uint32_t res;
	uint32_t nruns;
	uint64_t size;
	uint32_t readonly;
	uint32_t reserved;
};

struct wp_run {
	uint32_t region;           /* index into the memory table: fd WP_FD_RAM + region */
	uint32_t reserved;
	uint64_t file_off;         /* page aligned */
	uint64_t len;              /* page aligned except for the last run */
};

struct wp_unmap {
	uint32_t res;
	uint32_t reserved;
};

/* WP_BUILD: program `program` from kind (enum vgpu_program_kind), then
 * options_len bytes of options and data_len bytes of program. */
struct wp_build {
	uint32_t program;
	uint32_t kind;
	uint32_t options_len;
	uint32_t reserved;
	uint64_t data_len;
};

struct wp_build_reply {
	int32_t status;            /* 0, or the OpenCL error of the build */
	uint32_t num_kernels;
	uint64_t log_size;         /* the log follows, this long */
	uint64_t binary_size;
};

/* WP_BINARY, WP_PROGRAM_RELEASE, WP_KERNEL_RELEASE. */
struct wp_object {
	uint32_t id;
	uint32_t reserved;
};

/* WP_KERNEL: kernel `kernel` of program `program`, named by the
 * name_len bytes that follow (no NUL). */
struct wp_kernel {
	uint32_t kernel;
	uint32_t program;
	uint32_t name_len;
	uint32_t reserved;
};

/* WP_DISPATCH: kernel `kernel`; a struct vgpu_dispatch with its args and
 * value area follow (payload_len bytes, as the guest sent them and the
 * daemon validated them). */
struct wp_dispatch {
	uint32_t kernel;
	uint32_t payload_len;
};

/*
 * Both ends of the control socket (a SOCK_STREAM socketpair): a whole
 * buffer sent or received, EINTR retried; -1 on an error or the other end
 * gone (never SIGPIPE).
 */
static inline int wp_send_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t r = send(fd, b, n, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static inline int wp_recv_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n) {
		ssize_t r = recv(fd, b, n, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

#endif
