/* SPDX-License-Identifier: MIT */
/*
 * sandbox.h - how a worker confines itself before it runs anything of the
 * guest's (docs/host.md, "Guest kernels").
 */
#ifndef WORKER_SANDBOX_H
#define WORKER_SANDBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct sandbox_config {
	uid_t uid;                 /* who to run as when started as root */
	gid_t gid;
	uint64_t data_limit;       /* RLIMIT_DATA, bytes */
	uint64_t cpu_seconds;      /* RLIMIT_CPU */
	unsigned int nofile;       /* RLIMIT_NOFILE */
	uint64_t scratch_bytes;    /* size of /tmp and of the compiler cache */
	unsigned int nram;         /* memory files at WP_FD_RAM .. + nram - 1 */
	bool allow_root_fs;        /* tests only: no new root (the host's is seen) */
};

/*
 * Confine the calling process, which must be single-threaded and PID 1 of
 * a PID namespace of its own (the daemon spawns it so): a new root of
 * read-only binds and private scratch space, no /proc of the kernel's, an
 * unprivileged uid without capabilities, no new privileges, resource
 * limits, Landlock, and the seccomp filter. Returns the filter's listener
 * fd (for the daemon), or -1 with err set.
 */
int sandbox_enter(const struct sandbox_config *c, char *err, size_t errlen);

/* Whether the kernel has Landlock (its ABI version, 0 without). */
int sandbox_landlock_abi(void);

#endif
