/* SPDX-License-Identifier: MIT */
/*
 * frontend.h - a vhost-user front-end for the device tests: guest RAM in a
 * memfd (three regions), split rings laid out in that RAM, vhost-user
 * messages over a socketpair to the device's connection handler, which
 * runs on its own thread exactly as in the daemon.
 */
#ifndef TEST_FRONTEND_H
#define TEST_FRONTEND_H

#include <linux/vhost_types.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine.h"
#include "gpu_device.h"
#include "vhost_user.h"

#define FE_NREG 3
/* Guest physical layout:
 *   R0 [0x100000, +1 MiB)   rings        file offset 0
 *   (hole: no RAM at [0x200000, 0x300000))
 *   R1 [0x300000, +1 MiB)   heap         file offset 1 MiB
 *   R2 [0x400000, +0x1ff000) heap        file offset 2 MiB + 0x800 (not page aligned)
 * R1 and R2 are adjacent in guest physical space but separate regions. */
#define FE_R0 0x100000ull
#define FE_R1 0x300000ull
#define FE_R2 0x400000ull
#define FE_HOLE 0x200000ull
#define FE_QVA_BIAS 0x7f0000000000ull

struct fe_ring {
	uint16_t num;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;
	uint16_t next_desc;
	int kick, call;
};

struct fe {
	int sock;
	pthread_t th;
	bool running;
	int exited;             /* the device's connection loop has ended */
	struct vu_conn conn;
	struct gpu_device *gpu;
	struct engine *eng;
	int memfd;
	uint8_t *ram;
	size_t ram_size;
	struct { uint64_t gpa, size, off; } reg[FE_NREG];
	struct fe_ring ring[2];
	uint64_t heap[2];       /* next free gpa in R1, R2 */
	int backend_peer;
	uint64_t features;
};

struct fe_opts {
	bool no_userptr;        /* as --no-userptr: VIRTIO_GPU_F_BLOB_RDONLY not offered */
	unsigned threads;
	const struct gpu_limits *limits;
	uint16_t ctrl_num;      /* default 16 */
	uint16_t base;          /* initial ring index (avail/used), default 0 */
	const char *socket_path;/* connect to a running daemon instead */
	uint32_t backend;       /* enum vgpu_compute_backend (in-process device) */
	bool seal;              /* guest RAM sealed against shrinking, as QEMU does */
	struct programs *progs; /* the guest's programs (in-process device) */
	uint32_t num_scanouts;  /* as --scanouts N (in-process device) */
};

/* Start the device thread and do the whole handshake; asserts on failure. */
void fe_start(struct fe *f, const struct fe_opts *o);
/* Send SET_MEM_TABLE (again): the same three regions. */
void fe_set_mem_table(struct fe *f);
/* Close the connection and wait for the device to free everything. */
void fe_stop(struct fe *f);

/* Host view of guest memory (the test's own mapping). */
void *fe_ptr(struct fe *f, uint64_t gpa);
/* Allocate from R1 (region 1) or R2 (region 2), page aligned unless align given. */
uint64_t fe_alloc(struct fe *f, int region, uint64_t size, uint64_t align);

/* vhost-user: send a message (with fds); read one reply. */
int fe_send(struct fe *f, uint32_t req, uint32_t flags, const void *p, uint32_t size,
	    const int *fds, unsigned nfds);
int fe_recv(struct fe *f, uint32_t *req, uint32_t *flags, void *p, uint32_t cap,
	    uint32_t *size);
/* Send with NEED_REPLY and return the REPLY_ACK value (or -1). */
int64_t fe_ack(struct fe *f, uint32_t req, const void *p, uint32_t size,
	       const int *fds, unsigned nfds);
/* Send and return the u64 reply of a GET_* message (or UINT64_MAX). */
uint64_t fe_get_u64(struct fe *f, uint32_t req);

/*
 * Post a request: the out part split into `split` descriptors (>= 1), a
 * writable response buffer of resp_cap bytes (none if 0). Returns the gpa
 * of the response buffer. Does not kick.
 */
uint64_t fe_post(struct fe *f, int q, const void *req, size_t len, size_t resp_cap,
		 unsigned split);
/* Post a chain made of raw descriptors (for malformed-chain tests). */
void fe_post_raw(struct fe *f, int q, const struct vring_desc *d, unsigned n);
void fe_kick(struct fe *f, int q);
/* Wait until the used index reaches `target`; 0 or -1 on timeout. */
int fe_wait_used(struct fe *f, int q, uint16_t target, int timeout_ms);
/* The used element at position idx. */
void fe_used_elem(struct fe *f, int q, uint16_t idx, uint32_t *id, uint32_t *len);

/* Post, kick, wait; copy the response; returns the used length or -1. */
int fe_cmd(struct fe *f, int q, const void *req, size_t len, void *resp,
	   size_t resp_cap, unsigned split);
/* Control command with a header-only answer: the response type. */
uint32_t fe_cmd_simple(struct fe *f, const void *req, size_t len);

/* ---- the daemon binary as a child process (the daemon tests) ---- */

/* A fresh directory /tmp/NAME-XXXXXX with the paths of a socket and a log. */
struct daemon_files {
	char dir[64], sock[128], log[128];
};

/* Make the directory; 0, or -1 when it cannot be made (or NAME is too long). */
int daemon_files_make(struct daemon_files *d, const char *name);
/* Remove the socket, the log and the directory. */
void daemon_files_remove(const struct daemon_files *d);

/* Start args[0] with args, stdout and stderr into log_path; its pid. */
pid_t daemon_spawn(char *const *args, const char *log_path);
/* Exit status (128 + signal when killed by one), or -1 if it did not exit
 * within ms (then it is killed). */
int daemon_wait(pid_t pid, int ms);
/* The first 64 KiB of the log, NUL-terminated, in a static buffer. */
char *daemon_log(const char *log_path);

#endif
