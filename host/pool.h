/* SPDX-License-Identifier: MIT */
/* pool.h - fixed worker pool for data-parallel loops. */
#ifndef HOSTD_POOL_H
#define HOSTD_POOL_H

#include <stddef.h>

struct pool;

/* nthreads >= 1 threads in all, the caller of pool_run included. */
struct pool *pool_new(unsigned nthreads);
void pool_free(struct pool *p);
unsigned pool_threads(const struct pool *p);
/* Run fn(arg, i) for every i in [0, nchunks), spread over the threads;
 * returns when all calls have returned. Any number of threads may call it:
 * one at a time gets the workers, the others run their chunks themselves. */
void pool_run(struct pool *p, void (*fn)(void *arg, size_t i), void *arg,
	      size_t nchunks);

#endif
