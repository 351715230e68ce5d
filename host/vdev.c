/* SPDX-License-Identifier: MIT */
/* vdev.c - the queue thread: kick eventfds -> commands -> used ring. */
#include "vdev.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "stats.h"

/* One queued ring submit: the popped chain and the submit prepared from
 * it in queue order; a worker runs it and answers the chain. */
struct vdev_job {
	struct vdev_job *next;
	struct vq_elem e;
	struct gpu_job *job;
};

/* The queue of one (context, ring); listed while it has work. */
struct vdev_ring {
	struct vdev_ring *next;
	uint32_t ctx;
	uint8_t idx;
	bool busy;                  /* a worker runs its head */
	struct vdev_job *head, *tail;
};

static void *queue_thread(void *arg);
static void *ring_worker(void *arg);

int vdev_init(struct vdev *d, struct gpu_device *gpu)
{
	sigset_t all, old;

	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->work_cv, NULL);
	pthread_cond_init(&d->idle_cv, NULL);
	pthread_cond_init(&d->hold_cv, NULL);
	pthread_cond_init(&d->done_cv, NULL);
	gm_init(&d->mem);
	for (unsigned i = 0; i < VDEV_NUM_QUEUES; i++)
		vq_init(&d->vq[i]);
	d->gpu = gpu;
	d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->wake_fd < 0)
		return -1;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i < VDEV_RING_WORKERS; i++) {
		if (pthread_create(&d->workers[i], NULL, ring_worker, d))
			break;
		d->nworkers++;
	}
	if (d->nworkers && pthread_create(&d->thread, NULL, queue_thread, d) == 0)
		d->thread_started = true;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!d->thread_started) {
		close(d->wake_fd);
		d->wake_fd = -1;
		vdev_destroy(d);
		return -1;
	}
	return 0;
}

static void wake(struct vdev *d)
{
	uint64_t one = 1;

	if (write(d->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		hlog("wake eventfd: %s", strerror(errno));
}

/* Park the queue thread and let the ring work drain: afterwards nothing
 * but the caller touches memory, rings or device state. */
void vdev_lock(struct vdev *d)
{
	pthread_mutex_lock(&d->lock);
	d->hold = true;
	while (d->qt_busy || d->inflight)
		pthread_cond_wait(&d->idle_cv, &d->lock);
}

/*
 * vdev_lock() for a device stop (a ring stopped, a reset, a new memory
 * table): the work in flight is not waited for but aborted. Every op
 * running or about to run sees the abort flag at its next check and ends
 * with VGPU_COMPUTE_E_DEVICE, so its submit is answered (status record,
 * error response, fence) within that bound rather than after the op's
 * whole time budget; a submit still queued is answered the same way,
 * without running an op. The flag is down again before the caller gets
 * the device.
 */
void vdev_lock_stop(struct vdev *d)
{
	__atomic_store_n(&d->abort, true, __ATOMIC_RELAXED);
	vdev_lock(d);
	__atomic_store_n(&d->abort, false, __ATOMIC_RELAXED);
}

void vdev_unlock(struct vdev *d)
{
	d->gen++;
	d->hold = false;
	pthread_cond_broadcast(&d->hold_cv);
	pthread_mutex_unlock(&d->lock);
	wake(d);
}

static void free_rings_locked(struct vdev *d)
{
	while (d->rings) {
		struct vdev_ring *r = d->rings;

		d->rings = r->next;
		while (r->head) {
			struct vdev_job *j = r->head;

			r->head = j->next;
			vq_elem_free(&j->e);
			gpu_job_free(j->job);
			free(j);
			d->inflight--;
		}
		free(r);
	}
}

void vdev_reset_locked(struct vdev *d)
{
	free_rings_locked(d);
	for (unsigned i = 0; i < VDEV_NUM_QUEUES; i++)
		vq_reset(&d->vq[i]);
	gm_clear(&d->mem);
	d->features = 0;
	d->events_read = 0;
	if (d->gpu)
		gpu_device_reset(d->gpu);
}

void vdev_destroy(struct vdev *d)
{
	if (d->thread_started) {
		/* The front-end is gone: the queue thread stops after the
		 * command in progress instead of serving the rest of a ring
		 * nobody will read. */
		__atomic_store_n(&d->abort, true, __ATOMIC_RELAXED);
		pthread_mutex_lock(&d->lock);
		d->drop = true;
		d->stop = true;
		pthread_cond_broadcast(&d->hold_cv);
		pthread_mutex_unlock(&d->lock);
		wake(d);
		pthread_join(d->thread, NULL);
		d->thread_started = false;
	}
	/* Workers drop what is queued (nobody will read the answers) and
	 * stop; the op running stops at its next check (abort). */
	__atomic_store_n(&d->abort, true, __ATOMIC_RELAXED);
	pthread_mutex_lock(&d->lock);
	d->drop = true;
	d->workers_stop = true;
	pthread_cond_broadcast(&d->work_cv);
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = 0; i < d->nworkers; i++)
		pthread_join(d->workers[i], NULL);
	d->nworkers = 0;
	vdev_reset_locked(d);
	if (d->wake_fd >= 0)
		close(d->wake_fd);
	d->wake_fd = -1;
	pthread_cond_destroy(&d->work_cv);
	pthread_cond_destroy(&d->idle_cv);
	pthread_cond_destroy(&d->hold_cv);
	pthread_cond_destroy(&d->done_cv);
	pthread_mutex_destroy(&d->lock);
}

/* Answer a popped chain (lock held): the response, the used ring, the
 * interrupt. */
static void answer(struct vq *vq, struct vq_elem *e, uint8_t *resp, size_t rl)
{
	size_t written = 0;

	if (!e->bad) {
		if (rl > e->in_len) {
			/* No room for the full answer: say so in the header. */
			struct virtio_gpu_ctrl_hdr h;

			memcpy(&h, resp, sizeof(h));
			h.type = htole32(VIRTIO_GPU_RESP_ERR_UNSPEC);
			memcpy(resp, &h, sizeof(h));
			rl = e->in_len >= sizeof(h) ? sizeof(h) : 0;
		}
		written = vq_elem_write(e, resp, rl);
	}
	vq_push(vq, e->head, (uint32_t)written);
	vq_elem_free(e);
	/* Each answer is visible at once: a fenced command is signalled as
	 * soon as its work is done. */
	vq_notify(vq);
}

/* A SUBMIT_3D fenced on a ring: its context and ring. */
static bool ring_submit(const struct vq_elem *e, uint32_t *ctx, uint8_t *idx)
{
	struct virtio_gpu_ctrl_hdr h;
	uint32_t flags;

	if (e->bad || e->out_len < sizeof(h))
		return false;
	memcpy(&h, e->out, sizeof(h));
	flags = le32toh(h.flags);
	if (le32toh(h.type) != VIRTIO_GPU_CMD_SUBMIT_3D || !(flags & VIRTIO_GPU_FLAG_FENCE) ||
	    !(flags & VIRTIO_GPU_FLAG_INFO_RING_IDX) || h.ring_idx >= 64)
		return false;
	*ctx = le32toh(h.ctx_id);
	*idx = h.ring_idx;
	return true;
}

static void ring_unlist(struct vdev *d, struct vdev_ring *r)
{
	struct vdev_ring **pp = &d->rings;

	while (*pp != r)
		pp = &(*pp)->next;
	*pp = r->next;
	free(r);
}

/*
 * Queue a ring submit (lock held): prepared here, in queue order, so that
 * it sees the device as the commands before it left it and none after;
 * false when out of memory (then it runs inline).
 */
static bool ring_queue(struct vdev *d, struct vq_elem *e, uint32_t ctx, uint8_t idx)
{
	struct vdev_ring *r;
	struct vdev_job *j = calloc(1, sizeof(*j));

	if (!j)
		return false;
	for (r = d->rings; r && !(r->ctx == ctx && r->idx == idx); r = r->next)
		;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r) {
			free(j);
			return false;
		}
		r->ctx = ctx;
		r->idx = idx;
		r->next = d->rings;
		d->rings = r;
	}
	j->job = gpu_device_prepare(d->gpu, &d->mem, e->out, e->out_len);
	if (!j->job) {
		if (!r->head)
			ring_unlist(d, r);
		free(j);
		return false;
	}
	j->e = *e;
	if (r->tail)
		r->tail->next = j;
	else
		r->head = j;
	r->tail = j;
	d->inflight++;
	pthread_cond_signal(&d->work_cv);
	return true;
}

/* Wait (lock held, released while waiting) until no ring work is left:
 * only for a ring submit that could not be queued (out of memory), which
 * then runs inline without overtaking its ring. */
static void ring_drain(struct vdev *d)
{
	while (d->inflight)
		pthread_cond_wait(&d->idle_cv, &d->lock);
}

static struct vdev_ring *runnable(struct vdev *d)
{
	for (struct vdev_ring *r = d->rings; r; r = r->next)
		if (!r->busy && r->head)
			return r;
	return NULL;
}

static void *ring_worker(void *arg)
{
	struct vdev *d = arg;

	/* The ops this thread runs stop soon after the device does. */
	engine_set_thread_abort(&d->abort);
	pthread_mutex_lock(&d->lock);
	for (;;) {
		struct vdev_ring *r = NULL;
		struct vdev_job *j;
		uint8_t resp[GPU_RESP_MAX];
		size_t rl = 0;
		bool run;

		while (!d->workers_stop && !(r = runnable(d)))
			pthread_cond_wait(&d->work_cv, &d->lock);
		if (d->workers_stop)
			break;
		j = r->head;
		r->busy = true;
		/* A stop (abort) still answers the job: its first op
		 * ends it with E_DEVICE; only a front-end gone drops it. */
		run = !d->drop;
		pthread_mutex_unlock(&d->lock);
		/* Unlocked: the job was resolved when it was queued and holds
		 * what it touches; the memory table does not change while
		 * ring work is queued (vdev_lock() waits for it). */
		if (run)
			rl = gpu_job_run(d->gpu, &d->mem, j->job, resp);
		pthread_mutex_lock(&d->lock);
		r->head = j->next;
		if (!r->head)
			r->tail = NULL;
		r->busy = false;
		if (run)
			answer(&d->vq[VDEV_CONTROLQ], &j->e, resp, rl);
		else
			vq_elem_free(&j->e);
		/* Its references go after its answer: a RESOURCE_UNREF
		 * waiting for them is answered after this job's fence. */
		gpu_job_free(j->job);
		free(j);
		pthread_cond_broadcast(&d->done_cv);
		if (!r->head)
			ring_unlist(d, r);
		else
			pthread_cond_signal(&d->work_cv);
		if (--d->inflight == 0)
			pthread_cond_broadcast(&d->idle_cv);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* Serve up to one ring's worth of requests; true if more may be waiting. */
static bool process_queue(struct vdev *d, unsigned q)
{
	struct vq *vq = &d->vq[q];
	unsigned served = 0;

	/* The socket thread waiting for the device (hold) goes first. */
	while (served < vq->num && !d->hold && !__atomic_load_n(&d->abort, __ATOMIC_RELAXED)) {
		uint8_t resp[GPU_RESP_MAX];
		struct vq_elem e;
		size_t rl = 0;
		uint32_t ctx;
		uint8_t idx;
		int r = vq_pop(vq, &d->mem, &e);

		if (r <= 0)
			return false;
		served++;
		/* Without ring workers (a device driven by hand, as the
		 * fuzz targets do) a ring submit runs inline like the rest. */
		if (q == VDEV_CONTROLQ && d->nworkers && ring_submit(&e, &ctx, &idx) &&
		    ring_queue(d, &e, ctx, idx))
			continue;
		if (!e.bad) {
			if (q == VDEV_CONTROLQ) {
				/* A ring submit that could not be queued keeps
				 * its ring's order the old way. */
				if (d->nworkers && ring_submit(&e, &ctx, &idx))
					ring_drain(d);
				/* No other command waits for the rings, but
				 * one that drops pages a queued or running
				 * job uses (UNREF, DETACH_BACKING) waits for
				 * those jobs: the guest may reuse the pages
				 * once it is answered. */
				while (d->nworkers && gpu_device_must_wait(d->gpu, e.out, e.out_len))
					pthread_cond_wait(&d->done_cv, &d->lock);
				rl = gpu_device_execute(d->gpu, &d->mem, d->features,
							e.out, e.out_len, resp);
			} else {
				rl = gpu_device_cursor(d->gpu, e.out, e.out_len, resp);
			}
		}
		answer(vq, &e, resp, rl);
	}
	return true;
}

bool vdev_process_locked(struct vdev *d)
{
	bool more = false;

	d->qt_busy = true;
	for (unsigned q = 0; q < VDEV_NUM_QUEUES; q++)
		if (vq_ready(&d->vq[q]))
			more |= process_queue(d, q);
	d->qt_busy = false;
	pthread_cond_broadcast(&d->idle_cv);
	return more;
}

/* Stop serving a ring whose kick fd cannot work as an eventfd. */
static void kick_dead(struct vq *vq, unsigned q, const char *why)
{
	hlog("queue %u: kick fd %s: ring stopped until a new SET_VRING_KICK", q, why);
	close(vq->kick_fd);
	vq->kick_fd = -1;
	vq->started = false;
}

/*
 * Read a kick. An eventfd read yields 8 bytes and a non-zero count; end of
 * file, a short read, a zero count (/dev/zero and the like) or an error
 * other than EAGAIN would make poll report the fd ready forever and the
 * queue thread spin, so such an fd is dropped.
 */
static void kick_consume(struct vq *vq, unsigned q)
{
	uint64_t v = 0;
	ssize_t r = read(vq->kick_fd, &v, sizeof(v));

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r < 0)
		kick_dead(vq, q, strerror(errno));
	else if (r != (ssize_t)sizeof(v) || v == 0)
		kick_dead(vq, q, "does not read like an eventfd");
}

static void *queue_thread(void *arg)
{
	struct vdev *d = arg;
	bool more = false;

	engine_set_thread_abort(&d->abort);
	pthread_mutex_lock(&d->lock);
	while (!d->stop) {
		struct pollfd p[1 + VDEV_NUM_QUEUES];
		int qidx[1 + VDEV_NUM_QUEUES];
		unsigned n = 0;
		uint64_t gen = d->gen, v;

		p[n].fd = d->wake_fd;
		p[n].events = POLLIN;
		qidx[n++] = -1;
		for (unsigned q = 0; q < VDEV_NUM_QUEUES; q++) {
			if (vq_ready(&d->vq[q]) && d->vq[q].kick_fd >= 0) {
				p[n].fd = d->vq[q].kick_fd;
				p[n].events = POLLIN;
				qidx[n++] = (int)q;
			}
		}
		pthread_mutex_unlock(&d->lock);
		if (poll(p, n, more ? 0 : -1) < 0 && errno != EINTR)
			hlog("queue thread poll: %s", strerror(errno));
		pthread_mutex_lock(&d->lock);
		while (d->hold && !d->stop)
			pthread_cond_wait(&d->hold_cv, &d->lock);
		if (d->stop)
			break;
		for (unsigned i = 0; i < n; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			if (qidx[i] < 0) {
				if (read(d->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					hlog("wake eventfd read: %s", strerror(errno));
			} else if (gen == d->gen && d->vq[qidx[i]].kick_fd == p[i].fd) {
				kick_consume(&d->vq[qidx[i]], (unsigned)qidx[i]);
			}
		}
		/* A kick fd that hung up or errs wakes poll at once forever:
		 * drop it (the ring stops until a new SET_VRING_KICK). */
		for (unsigned i = 1; i < n; i++) {
			struct vq *vq = &d->vq[qidx[i]];

			if (gen == d->gen && vq->kick_fd == p[i].fd &&
			    (p[i].revents & (POLLHUP | POLLERR | POLLNVAL)) &&
			    !(p[i].revents & POLLIN))
				kick_dead(vq, (unsigned)qidx[i], "hung up");
		}
		more = vdev_process_locked(d);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}
