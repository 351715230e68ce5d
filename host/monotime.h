/* SPDX-License-Identifier: MIT */
/*
 * monotime.h - the device's one clock for deadlines: CLOCK_MONOTONIC in ns,
 * and condition variables whose timed waits use that clock.
 *
 * A condition variable made with default attributes times out on the
 * realtime clock: given a monotonic deadline (seconds since boot) it sees
 * a date in 1970 and returns at once, so its waiter would spin for the
 * whole wait. Every condition variable that is waited on with a deadline
 * is made by mono_cond_init() and waited on by mono_cond_wait_until().
 */
#ifndef MONOTIME_H
#define MONOTIME_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

static inline int64_t mono_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* pthread_cond_init() whose timed waits count on CLOCK_MONOTONIC. */
static inline int mono_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	int r = pthread_condattr_init(&a);

	if (r)
		return r;
	r = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	if (!r)
		r = pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
	return r;
}

/* Wait on cv (made by mono_cond_init) until woken or mono_now_ns() reaches
 * deadline; as pthread_cond_timedwait(). */
static inline int mono_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *m, int64_t deadline)
{
	struct timespec ts;

	if (deadline < 0)
		deadline = 0;
	ts.tv_sec = deadline / 1000000000;
	ts.tv_nsec = deadline % 1000000000;
	return pthread_cond_timedwait(cv, m, &ts);
}

#endif
