/* SPDX-License-Identifier: MIT */
/*
 * vdev.h - the virtio device behind one vhost-user connection: guest
 * memory, the two virtqueues, the queue thread that serves them, and the
 * ring workers.
 *
 * Rings: a SUBMIT_3D fenced with VIRTIO_GPU_FLAG_INFO_RING_IDX is prepared
 * by the queue thread when it pops it (decoded, validated, its resources
 * resolved to backings it holds references on: gpu_device_prepare()), goes
 * to the queue of its (context, ring) and is run and answered by a ring
 * worker; one ring's submits run one after the other, in order, so its
 * fences and status records come in ring order, a submit that failed
 * validation included, while different rings and contexts run at the same
 * time. Every other command runs on the queue thread at once, while ring
 * work runs: device state (resources, contexts, id maps) changes under
 * queued and running submits, which use only what they resolved. The one
 * exception: an UNREF or DETACH_BACKING that drops a backing queued or
 * running jobs still use waits (on done_cv) until those jobs are freed,
 * since the guest may reuse the pages once it is answered.
 *
 * Locking: the socket thread changes memory and ring state only between
 * vdev_lock() and vdev_unlock(); vdev_lock() parks the queue thread and
 * waits until the ring work has drained, so memory and windows never
 * change under a queued or running job. The queue thread holds the lock
 * while it processes requests (it releases it only while it waits for
 * jobs); ring workers hold it only to take a job and to answer and free
 * it. Backing references (resource.h) change only with the lock held.
 */
#ifndef HOSTD_VDEV_H
#define HOSTD_VDEV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "gpu_device.h"
#include "guest_mem.h"
#include "virtqueue.h"

#define VDEV_NUM_QUEUES 2u
#define VDEV_CONTROLQ 0u
#define VDEV_CURSORQ 1u
#define VDEV_RING_WORKERS 4u    /* threads that run ring submits */

struct vdev_ring;

struct vdev {
	pthread_mutex_t lock;
	struct guest_mem mem;
	struct vq vq[VDEV_NUM_QUEUES];
	uint64_t features;          /* negotiated virtio features */
	uint32_t events_read;       /* virtio_gpu_config.events_read */
	struct gpu_device *gpu;     /* borrowed */
	int wake_fd;                /* eventfd: re-read the ring set */
	pthread_t thread;
	bool thread_started;
	bool stop;
	bool abort;                 /* set without the lock: leave the ring now,
	                             * stop the ops running (vdev_lock_stop) */
	bool drop;                  /* the front-end is gone: queued ring work is dropped */
	uint64_t gen;               /* bumped by every reconfiguration */
	/* rings */
	pthread_cond_t work_cv;     /* a ring job queued, or stop */
	pthread_cond_t idle_cv;     /* ring work finished / queue thread idle */
	pthread_cond_t hold_cv;     /* hold released */
	pthread_cond_t done_cv;     /* a ring job freed (its references dropped) */
	pthread_t workers[VDEV_RING_WORKERS];
	unsigned nworkers;
	struct vdev_ring *rings;    /* rings with queued or running work */
	unsigned inflight;          /* ring jobs queued or running */
	bool hold;                  /* the socket thread holds the device */
	bool qt_busy;               /* the queue thread is serving the rings */
	bool workers_stop;
};

int vdev_init(struct vdev *d, struct gpu_device *gpu);
/* Stop the queue thread, unmap memory, close fds, reset the gpu state. */
void vdev_destroy(struct vdev *d);
void vdev_lock(struct vdev *d);
/* vdev_lock() that aborts the work in flight instead of waiting for it:
 * for GET_VRING_BASE, a reset and a new memory table. */
void vdev_lock_stop(struct vdev *d);
void vdev_unlock(struct vdev *d);
/* With the lock held: back to the state of a fresh connection. */
void vdev_reset_locked(struct vdev *d);
/* With the lock held: serve what the rings hold (used by the thread). */
bool vdev_process_locked(struct vdev *d);

#endif
