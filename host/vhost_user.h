/* SPDX-License-Identifier: MIT */
/*
 * vhost_user.h - the back-end side of the vhost-user protocol: message
 * framing, file descriptors passed with SCM_RIGHTS, size checks and one
 * dispatch table. Device state lives in struct vdev (vdev.h).
 */
#ifndef HOSTD_VHOST_USER_H
#define HOSTD_VHOST_USER_H

#include <stdbool.h>
#include <stdint.h>

#include "vdev.h"

/* Message numbers (front-end to back-end). */
enum vu_request {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_SET_BACKEND_REQ_FD = 21,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
	VU_RESET_DEVICE = 34,
	VU_SET_STATUS = 39,
	VU_GET_STATUS = 40,
	VU_REQUEST_MAX = 41,
};

/* Header flags. */
#define VU_VERSION 0x1u
#define VU_VERSION_MASK 0x3u
#define VU_FLAG_REPLY (1u << 2)
#define VU_FLAG_NEED_REPLY (1u << 3)

/* Feature bit of the protocol-features handshake. */
#define VU_F_PROTOCOL_FEATURES 30

/* Protocol features. */
#define VU_PROTOCOL_F_MQ 0
#define VU_PROTOCOL_F_REPLY_ACK 3
#define VU_PROTOCOL_F_BACKEND_REQ 5
#define VU_PROTOCOL_F_CONFIG 9
#define VU_PROTOCOL_F_RESET_DEVICE 13
#define VU_PROTOCOL_F_STATUS 16

#define VU_HDR_SIZE 12u
#define VU_MAX_PAYLOAD 4096u
#define VU_MAX_FDS 8u
#define VU_VRING_IDX_MASK 0xffu
#define VU_VRING_NOFD_MASK (1u << 8)
#define VU_CONFIG_HDR_SIZE 12u
#define VU_MAX_CONFIG_SIZE 256u

/* Wire layout of one SET_MEM_TABLE region. */
struct vu_mem_region {
	uint64_t guest_addr;
	uint64_t size;
	uint64_t user_addr;
	uint64_t mmap_offset;
};

struct vu_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	uint8_t payload[VU_MAX_PAYLOAD];
	int fds[VU_MAX_FDS];
	unsigned nfds;
};

struct vu_options {
	bool blob_rdonly;   /* offer VIRTIO_GPU_F_BLOB_RDONLY (off: --no-userptr) */
	/* Offer VIRTIO_F_ACCESS_PLATFORM: the driver then maps through the
	 * DMA API. Addresses stay guest-physical (no vIOMMU, no IOTLB). */
	bool access_platform;
	/* virtio_gpu_config.num_scanouts (0..VIRTIO_GPU_MAX_SCANOUTS): the
	 * driver's KMS objects; no display is ever connected to them. */
	uint32_t num_scanouts;
};

struct vu_conn {
	int fd;
	int backend_fd;
	bool owner;
	uint64_t features_offered;
	uint64_t protocol_features;     /* acknowledged by the front-end */
	uint8_t status;                 /* virtio device status (SET_STATUS) */
	uint32_t num_scanouts;          /* vu_options.num_scanouts */
	struct vdev dev;
};

int vu_conn_init(struct vu_conn *c, int fd, const struct vu_options *opt,
		 struct gpu_device *gpu);
/* Free everything of the connection (not c->fd). */
void vu_conn_fini(struct vu_conn *c);

/* Read one message (header, fds, payload). 0, or -1: disconnect. */
int vu_read_msg(int fd, struct vu_msg *m);
/*
 * Handle a message; takes ownership of m->fds. Returns 0, or -1 when the
 * connection must be closed (protocol violation that cannot be answered).
 */
int vu_dispatch(struct vu_conn *c, struct vu_msg *m);
/* Read and handle one message: 0, or -1 on disconnect. */
int vu_handle_one(struct vu_conn *c);

uint64_t vu_device_features(const struct vu_options *opt);
uint64_t vu_protocol_features(void);
const char *vu_request_name(uint32_t req);

#endif
