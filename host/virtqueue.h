/* SPDX-License-Identifier: MIT */
/*
 * virtqueue.h - device side of a split virtqueue (VIRTIO_F_VERSION_1, no
 * indirect descriptors, no event index) living in guest memory.
 */
#ifndef HOSTD_VIRTQUEUE_H
#define HOSTD_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/virtio_ring.h>

#include "guest_mem.h"

#define VQ_MAX_SIZE 32768u
/* Largest command (device-readable part of one chain) the device gathers:
 * a header and GPU_CMD_MAX_ENTRIES mem entries (64 MiB) fit. */
#define VQ_MAX_OUT_BYTES (64u * 1024u * 1024u + 64u * 1024u)

struct vq {
	uint32_t num;           /* 0: not set */
	uint64_t desc_qva, avail_qva, used_qva;
	bool addr_set;
	struct vring_desc *desc;    /* host pointers, NULL until translated */
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail;
	uint16_t used_idx;
	int kick_fd, call_fd, err_fd;
	bool enabled;
	bool started;
	bool broken;            /* the driver broke the ring: stop serving it */
	uint32_t notify_skipped;    /* call fd not writable: interrupt dropped */
	uint32_t notify_errors;     /* call fd write failed */
};

struct vq_iov {
	uint8_t *p;
	uint32_t len;
};

/* One descriptor chain popped from the ring. */
struct vq_elem {
	uint16_t head;
	bool bad;               /* unreadable chain: complete it with len 0 */
	uint8_t *out;           /* gathered copy of the device-readable part */
	size_t out_len;
	struct vq_iov *in;      /* device-writable buffers, in order */
	unsigned in_n;
	size_t in_len;
};

void vq_init(struct vq *vq);
/* Close fds and forget everything. */
void vq_reset(struct vq *vq);
/* (Re)translate the ring addresses; -1 if they do not lie in guest RAM. */
int vq_translate(struct vq *vq, const struct guest_mem *gm);
bool vq_ready(const struct vq *vq);

/*
 * Pop the next available chain. 1: *e filled (free with vq_elem_free), 0:
 * ring empty, -1: ring broken by the driver (vq->broken set).
 */
int vq_pop(struct vq *vq, const struct guest_mem *gm, struct vq_elem *e);
void vq_elem_free(struct vq_elem *e);
/* Scatter a response into the writable buffers; returns bytes written. */
size_t vq_elem_write(struct vq_elem *e, const void *data, size_t len);
/* Put a chain in the used ring (visible to the driver at once). */
void vq_push(struct vq *vq, uint16_t head, uint32_t len);
/* Signal the call eventfd unless the driver asked for no interrupt. */
void vq_notify(struct vq *vq);

#endif
