/* SPDX-License-Identifier: MIT */
/* pool.c - the engine's worker threads. */
#include "pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

struct pool {
	unsigned n;             /* threads in all */
	unsigned started;       /* workers created */
	pthread_t *th;
	pthread_mutex_t run_mu; /* held by the one pool_run() using the workers */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_cond_t done_cv;
	void (*fn)(void *, size_t);
	void *arg;
	size_t nchunks;
	atomic_size_t next;
	unsigned active;
	uint64_t gen;
	bool quit;
};

static void work(struct pool *p)
{
	size_t i;

	while ((i = atomic_fetch_add(&p->next, 1)) < p->nchunks)
		p->fn(p->arg, i);
}

static void *worker(void *arg)
{
	struct pool *p = arg;
	uint64_t seen = 0;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->quit && p->gen == seen)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->quit)
			break;
		seen = p->gen;
		pthread_mutex_unlock(&p->mu);
		work(p);
		pthread_mutex_lock(&p->mu);
		if (--p->active == 0)
			pthread_cond_signal(&p->done_cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct pool *pool_new(unsigned nthreads)
{
	struct pool *p = calloc(1, sizeof(*p));
	sigset_t all, old;

	if (!p)
		return NULL;
	p->n = nthreads ? nthreads : 1;
	pthread_mutex_init(&p->run_mu, NULL);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_cond_init(&p->done_cv, NULL);
	p->th = calloc(p->n, sizeof(*p->th));
	if (!p->th) {
		pool_free(p);
		return NULL;
	}
	/* Workers never take signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i + 1 < p->n; i++) {
		if (pthread_create(&p->th[i], NULL, worker, p))
			break;
		p->started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	p->n = p->started + 1;
	return p;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->quit = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->started; i++)
		pthread_join(p->th[i], NULL);
	free(p->th);
	pthread_mutex_destroy(&p->run_mu);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	pthread_cond_destroy(&p->done_cv);
	free(p);
}

unsigned pool_threads(const struct pool *p)
{
	return p->n;
}

void pool_run(struct pool *p, void (*fn)(void *arg, size_t i), void *arg,
	      size_t nchunks)
{
	/* Another caller (another ring's submit) has the workers: run on
	 * this thread alone rather than wait for it. */
	if (p->started == 0 || nchunks <= 1 || pthread_mutex_trylock(&p->run_mu) != 0) {
		for (size_t i = 0; i < nchunks; i++)
			fn(arg, i);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->arg = arg;
	p->nchunks = nchunks;
	atomic_store(&p->next, 0);
	p->active = p->started;
	p->gen++;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	work(p);
	pthread_mutex_lock(&p->mu);
	while (p->active)
		pthread_cond_wait(&p->done_cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	pthread_mutex_unlock(&p->run_mu);
}
