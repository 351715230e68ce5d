/* SPDX-License-Identifier: MIT */
/* vdev.c - the queue thread: kick eventfds -> commands -> used ring. */
#include "vdev.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "stats.h"

static void *queue_thread(void *arg);

int vdev_init(struct vdev *d, struct gpu_device *gpu)
{
	sigset_t all, old;

	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	gm_init(&d->mem);
	for (unsigned i = 0; i < VDEV_NUM_QUEUES; i++)
		vq_init(&d->vq[i]);
	d->gpu = gpu;
	d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->wake_fd < 0)
		return -1;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&d->thread, NULL, queue_thread, d) == 0)
		d->thread_started = true;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!d->thread_started) {
		close(d->wake_fd);
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

void vdev_lock(struct vdev *d)
{
	pthread_mutex_lock(&d->lock);
}

void vdev_unlock(struct vdev *d)
{
	d->gen++;
	pthread_mutex_unlock(&d->lock);
	wake(d);
}

void vdev_reset_locked(struct vdev *d)
{
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
		d->stop = true;
		pthread_mutex_unlock(&d->lock);
		wake(d);
		pthread_join(d->thread, NULL);
		d->thread_started = false;
	}
	vdev_reset_locked(d);
	if (d->wake_fd >= 0)
		close(d->wake_fd);
	d->wake_fd = -1;
	pthread_mutex_destroy(&d->lock);
}

/* Serve up to one ring's worth of requests; true if more may be waiting. */
static bool process_queue(struct vdev *d, unsigned q)
{
	struct vq *vq = &d->vq[q];
	unsigned served = 0;

	while (served < vq->num && !__atomic_load_n(&d->abort, __ATOMIC_RELAXED)) {
		uint8_t resp[GPU_RESP_MAX];
		struct vq_elem e;
		size_t rl, written = 0;
		int r = vq_pop(vq, &d->mem, &e);

		if (r <= 0)
			return false;
		if (!e.bad) {
			if (q == VDEV_CONTROLQ)
				rl = gpu_device_execute(d->gpu, &d->mem, d->features,
							e.out, e.out_len, resp);
			else
				rl = gpu_device_cursor(d->gpu, e.out, e.out_len, resp);
			if (rl > e.in_len) {
				/* No room for the full answer: say so in the header. */
				struct virtio_gpu_ctrl_hdr h;

				memcpy(&h, resp, sizeof(h));
				h.type = htole32(VIRTIO_GPU_RESP_ERR_UNSPEC);
				memcpy(resp, &h, sizeof(h));
				rl = e.in_len >= sizeof(h) ? sizeof(h) : 0;
			}
			written = vq_elem_write(&e, resp, rl);
		}
		vq_push(vq, e.head, (uint32_t)written);
		vq_elem_free(&e);
		/* Each answer is visible at once: a fenced command is
		 * signalled as soon as its work is done. */
		vq_notify(vq);
		served++;
	}
	return true;
}

bool vdev_process_locked(struct vdev *d)
{
	bool more = false;

	for (unsigned q = 0; q < VDEV_NUM_QUEUES; q++)
		if (vq_ready(&d->vq[q]))
			more |= process_queue(d, q);
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
