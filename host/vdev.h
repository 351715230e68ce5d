/* SPDX-License-Identifier: MIT */
/*
 * vdev.h - the virtio device behind one vhost-user connection: guest
 * memory, the two virtqueues, and the queue thread that serves them.
 *
 * Locking: the socket thread changes memory and ring state only between
 * vdev_lock() and vdev_unlock(); the queue thread holds the lock while it
 * processes requests, so memory is never unmapped under a running command.
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
	bool abort;                 /* set without the lock: leave the ring now */
	uint64_t gen;               /* bumped by every reconfiguration */
};

int vdev_init(struct vdev *d, struct gpu_device *gpu);
/* Stop the queue thread, unmap memory, close fds, reset the gpu state. */
void vdev_destroy(struct vdev *d);
void vdev_lock(struct vdev *d);
void vdev_unlock(struct vdev *d);
/* With the lock held: back to the state of a fresh connection. */
void vdev_reset_locked(struct vdev *d);
/* With the lock held: serve what the rings hold (used by the thread). */
bool vdev_process_locked(struct vdev *d);

#endif
