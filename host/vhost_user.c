/* SPDX-License-Identifier: MIT */
/* vhost_user.c - vhost-user message handling of virtgpu-hostd. */
#include "vhost_user.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vhost_types.h>
#include <linux/virtio_config.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stats.h"
#include "vgpu_virtio_ext.h"

uint64_t vu_device_features(const struct vu_options *opt)
{
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) |
		     (1ull << VIRTIO_GPU_F_VIRGL) |
		     (1ull << VIRTIO_GPU_F_RESOURCE_BLOB) |
		     (1ull << VIRTIO_GPU_F_CONTEXT_INIT) |
		     (1ull << VU_F_PROTOCOL_FEATURES);

	if (opt->blob_rdonly)
		f |= 1ull << VIRTIO_GPU_F_BLOB_RDONLY;
	if (opt->access_platform)
		f |= 1ull << VIRTIO_F_ACCESS_PLATFORM;
	return f;
}

uint64_t vu_protocol_features(void)
{
	return (1ull << VU_PROTOCOL_F_REPLY_ACK) |
	       (1ull << VU_PROTOCOL_F_BACKEND_REQ) |
	       (1ull << VU_PROTOCOL_F_CONFIG) |
	       (1ull << VU_PROTOCOL_F_RESET_DEVICE) |
	       (1ull << VU_PROTOCOL_F_STATUS);
}

int vu_conn_init(struct vu_conn *c, int fd, const struct vu_options *opt,
		 struct gpu_device *gpu)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->backend_fd = -1;
	c->features_offered = vu_device_features(opt);
	c->num_scanouts = opt->num_scanouts <= VIRTIO_GPU_MAX_SCANOUTS ?
			  opt->num_scanouts : VIRTIO_GPU_MAX_SCANOUTS;
	return vdev_init(&c->dev, gpu);
}

void vu_conn_fini(struct vu_conn *c)
{
	vdev_destroy(&c->dev);
	if (c->backend_fd >= 0)
		close(c->backend_fd);
	c->backend_fd = -1;
}

/* ---- framing ---- */

static void close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t r = read(fd, p, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

int vu_read_msg(int fd, struct vu_msg *m)
{
	uint8_t hdr[VU_HDR_SIZE];
	union {
		char buf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { hdr, sizeof(hdr) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	struct cmsghdr *cm;
	ssize_t r;

	m->nfds = 0;
	for (unsigned i = 0; i < VU_MAX_FDS; i++)
		m->fds[i] = -1;
	do
		r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return -1;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (size_t i = 0; i < n; i++) {
				int f;

				memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				if (m->nfds < VU_MAX_FDS)
					m->fds[m->nfds++] = f;
				else
					close(f);
			}
		}
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		hlog("vhost-user: too many fds in one message");
		goto fail;
	}
	/* The rest of a header split by the stream. */
	if ((size_t)r < sizeof(hdr) && read_full(fd, hdr + r, sizeof(hdr) - (size_t)r))
		goto fail;
	memcpy(&m->request, hdr, 4);
	memcpy(&m->flags, hdr + 4, 4);
	memcpy(&m->size, hdr + 8, 4);
	m->request = le32toh(m->request);
	m->flags = le32toh(m->flags);
	m->size = le32toh(m->size);
	if (m->size > VU_MAX_PAYLOAD) {
		hlog("vhost-user: payload of %u bytes too large (request %u)",
		     m->size, m->request);
		goto fail;
	}
	if (m->size && read_full(fd, m->payload, m->size))
		goto fail;
	return 0;
fail:
	close_fds(m->fds, m->nfds);
	m->nfds = 0;
	return -1;
}

static int send_reply(struct vu_conn *c, const struct vu_msg *req,
		      const void *payload, uint32_t size)
{
	uint8_t buf[VU_HDR_SIZE + VU_MAX_PAYLOAD];
	uint32_t h[3] = {
		htole32(req->request),
		htole32(VU_VERSION | VU_FLAG_REPLY),
		htole32(size),
	};
	size_t len = VU_HDR_SIZE + size, done = 0;

	memcpy(buf, h, sizeof(h));
	if (size)
		memcpy(buf + VU_HDR_SIZE, payload, size);
	while (done < len) {
		ssize_t r = send(c->fd, buf + done, len - done, MSG_NOSIGNAL);

		if (r < 0 && errno == ENOTSOCK)
			r = write(c->fd, buf + done, len - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

static int reply_u64(struct vu_conn *c, const struct vu_msg *m, uint64_t v)
{
	v = htole64(v);
	return send_reply(c, m, &v, sizeof(v));
}

/* ---- handlers: 0 ok, >0 failed (answered with a NACK when asked), <0 fatal ---- */

static uint64_t get_u64(const struct vu_msg *m)
{
	uint64_t v;

	memcpy(&v, m->payload, 8);
	return le64toh(v);
}

static int take_fd(struct vu_msg *m, unsigned i)
{
	int fd = m->fds[i];

	m->fds[i] = -1;
	return fd;
}

static int h_get_features(struct vu_conn *c, struct vu_msg *m)
{
	return reply_u64(c, m, c->features_offered) ? -1 : 0;
}

static int h_set_features(struct vu_conn *c, struct vu_msg *m)
{
	uint64_t f = get_u64(m);

	if (f & ~c->features_offered) {
		hlog("SET_FEATURES: %#llx not offered", (unsigned long long)(f & ~c->features_offered));
		return 1;
	}
	vdev_lock(&c->dev);
	c->dev.features = f;
	vdev_unlock(&c->dev);
	return 0;
}

static int h_set_owner(struct vu_conn *c, struct vu_msg *m)
{
	(void)m;
	c->owner = true;
	return 0;
}

static int h_reset_owner(struct vu_conn *c, struct vu_msg *m)
{
	(void)m;
	vdev_lock_stop(&c->dev);
	vdev_reset_locked(&c->dev);
	vdev_unlock(&c->dev);
	c->owner = false;
	c->status = 0;
	return 0;
}

/* Stop a ring (lock held): not served, its kick fd closed. */
static void stop_ring_locked(struct vq *vq)
{
	vq->started = false;
	if (vq->kick_fd >= 0)
		close(vq->kick_fd);
	vq->kick_fd = -1;
}

/*
 * A virtio reset of the device, with the lock held: its state (resources,
 * contexts) goes, so that the driver probing again starts from an empty
 * device, as the virtio reset requires; with @rings also every ring stops.
 * The connection (memory table, call fds) stays: the front-end sets the
 * rings up again before it starts them.
 */
static void reset_device_locked(struct vu_conn *c, bool rings, const char *why)
{
	if (rings) {
		for (unsigned i = 0; i < VDEV_NUM_QUEUES; i++)
			stop_ring_locked(&c->dev.vq[i]);
	}
	c->dev.events_read = 0;
	if (c->dev.gpu) {
		uint32_t res = gpu_device_resource_count(c->dev.gpu);
		uint32_t ctx = gpu_device_context_count(c->dev.gpu);

		gpu_device_reset(c->dev.gpu);
		if (res || ctx)
			hlog("device reset (%s): %u resources, %u contexts dropped", why, res, ctx);
	}
}

/*
 * The virtio device status (protocol feature STATUS). A front-end that
 * sends it writes 0 when the guest resets the device, after stopping the
 * rings with GET_VRING_BASE.
 */
static int h_set_status(struct vu_conn *c, struct vu_msg *m)
{
	uint64_t s = get_u64(m);

	if (s > 0xff)
		return 1;
	if (s == 0 && c->status != 0) {
		vdev_lock_stop(&c->dev);
		reset_device_locked(c, false, "SET_STATUS 0");
		vdev_unlock(&c->dev);
	}
	c->status = (uint8_t)s;
	return 0;
}

/*
 * RESET_DEVICE (protocol feature RESET_DEVICE): QEMU sends it from its
 * virtio reset, when the guest resets the device (a PCI remove, a driver
 * unbind, a reboot), and not when it only stops the rings (a VM stop,
 * whose GET_VRING_BASE keeps every state). Its generic vhost-user-device
 * sends no SET_STATUS 0, so without this message the device would keep
 * the contexts and resources of a driver that is gone, and the next one
 * would find them (qemu/patches/0002).
 */
static int h_reset_device(struct vu_conn *c, struct vu_msg *m)
{
	(void)m;
	vdev_lock_stop(&c->dev);
	reset_device_locked(c, true, "RESET_DEVICE");
	vdev_unlock(&c->dev);
	c->status = 0;
	return 0;
}

static int h_get_status(struct vu_conn *c, struct vu_msg *m)
{
	return reply_u64(c, m, c->status) ? -1 : 0;
}

static int h_get_protocol_features(struct vu_conn *c, struct vu_msg *m)
{
	return reply_u64(c, m, vu_protocol_features()) ? -1 : 0;
}

static int h_set_protocol_features(struct vu_conn *c, struct vu_msg *m)
{
	uint64_t f = get_u64(m);

	if (f & ~vu_protocol_features())
		return 1;
	c->protocol_features = f;
	return 0;
}

static void retranslate_locked(struct vdev *d)
{
	for (unsigned q = 0; q < VDEV_NUM_QUEUES; q++)
		if (d->vq[q].addr_set && d->vq[q].num)
			vq_translate(&d->vq[q], &d->mem);
}

static int h_set_mem_table(struct vu_conn *c, struct vu_msg *m)
{
	struct gm_region_desc d[GM_MAX_REGIONS];
	uint32_t n;
	int rc;

	memcpy(&n, m->payload, 4);
	n = le32toh(n);
	/* The payload may be longer than n regions (UML always sends room
	 * for two); the extra bytes are ignored. */
	if (n == 0 || n > GM_MAX_REGIONS ||
	    m->size < 8 + n * sizeof(struct vu_mem_region) || m->nfds != n) {
		hlog("SET_MEM_TABLE: %u regions, %u bytes, %u fds: malformed",
		     n, m->size, m->nfds);
		return 1;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct vu_mem_region r;

		memcpy(&r, m->payload + 8 + i * sizeof(r), sizeof(r));
		d[i].gpa = le64toh(r.guest_addr);
		d[i].size = le64toh(r.size);
		d[i].qva = le64toh(r.user_addr);
		d[i].mmap_offset = le64toh(r.mmap_offset);
		hlog_v("  region %u: gpa %#llx size %#llx uaddr %#llx offset %#llx", i,
		       (unsigned long long)d[i].gpa, (unsigned long long)d[i].size,
		       (unsigned long long)d[i].qva, (unsigned long long)d[i].mmap_offset);
	}
	/* The windows are rebuilt over the new table: what runs on the old
	 * one is aborted rather than waited for. */
	vdev_lock_stop(&c->dev);
	rc = gm_set_table(&c->dev.mem, d, n, m->fds);
	if (rc == 0) {
		retranslate_locked(&c->dev);
		gpu_device_lose_programs(c->dev.gpu, "the guest's memory table changed");
	}
	vdev_unlock(&c->dev);
	if (rc) {
		hlog("SET_MEM_TABLE: cannot map: %s", strerror(errno));
		return 1;
	}
	/* The mappings stay; the fds are closed by the caller. */
	return 0;
}

static int vring_state(struct vu_msg *m, struct vhost_vring_state *s)
{
	memcpy(s, m->payload, sizeof(*s));
	s->index = le32toh(s->index);
	s->num = le32toh(s->num);
	return s->index < VDEV_NUM_QUEUES ? 0 : 1;
}

static int h_set_vring_num(struct vu_conn *c, struct vu_msg *m)
{
	struct vhost_vring_state s;
	struct vq *vq;

	if (vring_state(m, &s))
		return 1;
	if (s.num == 0 || s.num > VQ_MAX_SIZE || (s.num & (s.num - 1)))
		return 1;
	vdev_lock(&c->dev);
	vq = &c->dev.vq[s.index];
	vq->num = s.num;
	vq->broken = false;
	if (vq->addr_set)
		vq_translate(vq, &c->dev.mem);
	vdev_unlock(&c->dev);
	return 0;
}

static int h_set_vring_addr(struct vu_conn *c, struct vu_msg *m)
{
	struct vhost_vring_addr a;
	struct vq *vq;
	int rc = 0;

	memcpy(&a, m->payload, sizeof(a));
	a.index = le32toh(a.index);
	if (a.index >= VDEV_NUM_QUEUES)
		return 1;
	vdev_lock(&c->dev);
	vq = &c->dev.vq[a.index];
	vq->desc_qva = le64toh(a.desc_user_addr);
	vq->used_qva = le64toh(a.used_user_addr);
	vq->avail_qva = le64toh(a.avail_user_addr);
	vq->addr_set = true;
	vq->broken = false;
	if (vq->num) {
		if (vq_translate(vq, &c->dev.mem))
			rc = 1;
		else
			vq->used_idx = le16toh(__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE));
	}
	vdev_unlock(&c->dev);
	if (rc)
		hlog("SET_VRING_ADDR %u: rings not inside guest memory or misaligned", a.index);
	return rc;
}

static int h_set_vring_base(struct vu_conn *c, struct vu_msg *m)
{
	struct vhost_vring_state s;

	if (vring_state(m, &s) || s.num > 0xffff)
		return 1;
	vdev_lock(&c->dev);
	c->dev.vq[s.index].last_avail = (uint16_t)s.num;
	c->dev.vq[s.index].used_idx = (uint16_t)s.num;
	vdev_unlock(&c->dev);
	return 0;
}

static int h_get_vring_base(struct vu_conn *c, struct vu_msg *m)
{
	struct vhost_vring_state s;
	struct vq *vq;

	if (vring_state(m, &s)) {
		/* Still answer, or the front-end waits forever. */
		s.num = 0;
		s.index = htole32(s.index);
		return send_reply(c, m, &s, sizeof(s)) ? -1 : 1;
	}
	/* Stop the ring; the queue thread is not inside it once we hold the
	 * lock, and the ops in flight are aborted (their submits answered
	 * with E_DEVICE), so the answer does not wait for a long op. */
	vdev_lock_stop(&c->dev);
	vq = &c->dev.vq[s.index];
	stop_ring_locked(vq);
	s.num = vq->last_avail;
	vdev_unlock(&c->dev);
	s.index = htole32(s.index);
	s.num = htole32(s.num);
	return send_reply(c, m, &s, sizeof(s)) ? -1 : 0;
}

/* SET_VRING_KICK/CALL/ERR: index in bits 0-7, bit 8: no fd. */
static int vring_file(struct vu_msg *m, unsigned *index, int *fd)
{
	uint64_t v = get_u64(m);
	bool nofd = v & VU_VRING_NOFD_MASK;

	*index = (unsigned)(v & VU_VRING_IDX_MASK);
	*fd = -1;
	if (v & ~(uint64_t)(VU_VRING_IDX_MASK | VU_VRING_NOFD_MASK) ||
	    *index >= VDEV_NUM_QUEUES || m->nfds != (nofd ? 0u : 1u))
		return 1;
	if (!nofd) {
		struct stat st;

		*fd = take_fd(m, 0);
		/* An eventfd (or a pipe or socket, as some front-ends use for
		 * call): a file or device would read or write like an event
		 * source that never stops. */
		if (fstat(*fd, &st) < 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) ||
		    S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISLNK(st.st_mode)) {
			hlog("vring fd %d is not an eventfd, pipe or socket", *fd);
			close(*fd);
			*fd = -1;
			return 1;
		}
	}
	return 0;
}

static void replace_fd(int *slot, int fd)
{
	if (*slot >= 0)
		close(*slot);
	*slot = fd;
}

static int h_set_vring_kick(struct vu_conn *c, struct vu_msg *m)
{
	unsigned i;
	int fd;
	struct vq *vq;

	if (vring_file(m, &i, &fd))
		return 1;
	if (fd < 0) {
		hlog("SET_VRING_KICK %u without fd: polling mode is not supported", i);
		return 1;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		close(fd);
		return 1;
	}
	vdev_lock(&c->dev);
	vq = &c->dev.vq[i];
	replace_fd(&vq->kick_fd, fd);
	vq->started = true;
	/* Without the protocol-features handshake rings start enabled. */
	if (!(c->dev.features & (1ull << VU_F_PROTOCOL_FEATURES)))
		vq->enabled = true;
	if (vq->used)
		vq->used_idx = le16toh(__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE));
	vdev_unlock(&c->dev);
	return 0;
}

static int h_set_vring_call(struct vu_conn *c, struct vu_msg *m)
{
	unsigned i;
	int fd;

	if (vring_file(m, &i, &fd))
		return 1;
	vdev_lock(&c->dev);
	replace_fd(&c->dev.vq[i].call_fd, fd);
	vdev_unlock(&c->dev);
	return 0;
}

static int h_set_vring_err(struct vu_conn *c, struct vu_msg *m)
{
	unsigned i;
	int fd;

	if (vring_file(m, &i, &fd))
		return 1;
	vdev_lock(&c->dev);
	replace_fd(&c->dev.vq[i].err_fd, fd);
	vdev_unlock(&c->dev);
	return 0;
}

static int h_get_queue_num(struct vu_conn *c, struct vu_msg *m)
{
	return reply_u64(c, m, VDEV_NUM_QUEUES) ? -1 : 0;
}

static int h_set_vring_enable(struct vu_conn *c, struct vu_msg *m)
{
	struct vhost_vring_state s;

	if (vring_state(m, &s) || s.num > 1)
		return 1;
	vdev_lock(&c->dev);
	c->dev.vq[s.index].enabled = s.num;
	vdev_unlock(&c->dev);
	return 0;
}

static int h_set_backend_req_fd(struct vu_conn *c, struct vu_msg *m)
{
	if (m->nfds != 1)
		return 1;
	/* Kept for the life of the connection; the device sends nothing on it. */
	replace_fd(&c->backend_fd, take_fd(m, 0));
	return 0;
}

/* Parse a config access; 0 when it lies inside struct virtio_gpu_config. */
static int config_access(const struct vu_msg *m, uint32_t *off, uint32_t *size)
{
	memcpy(off, m->payload, 4);
	memcpy(size, m->payload + 4, 4);
	*off = le32toh(*off);
	*size = le32toh(*size);
	if (*size > VU_MAX_CONFIG_SIZE || m->size != VU_CONFIG_HDR_SIZE + *size)
		return -1;
	if (*off > sizeof(struct virtio_gpu_config) ||
	    *size > sizeof(struct virtio_gpu_config) - *off)
		return 1;
	return 0;
}

static void config_image(const struct vu_conn *c, struct virtio_gpu_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->events_read = htole32(c->dev.events_read);
	cfg->events_clear = 0;
	cfg->num_scanouts = htole32(c->num_scanouts);
	cfg->num_capsets = htole32(1);
}

static int h_get_config(struct vu_conn *c, struct vu_msg *m)
{
	struct virtio_gpu_config cfg;
	uint8_t out[VU_CONFIG_HDR_SIZE + VU_MAX_CONFIG_SIZE];
	uint32_t off, size;

	if (config_access(m, &off, &size)) {
		/* An answer without data tells the front-end it failed. */
		return send_reply(c, m, NULL, 0) ? -1 : 1;
	}
	config_image(c, &cfg);
	memcpy(out, m->payload, VU_CONFIG_HDR_SIZE);
	memcpy(out + VU_CONFIG_HDR_SIZE, (uint8_t *)&cfg + off, size);
	return send_reply(c, m, out, VU_CONFIG_HDR_SIZE + size) ? -1 : 0;
}

static int h_set_config(struct vu_conn *c, struct vu_msg *m)
{
	uint32_t off, size, clear;

	if (config_access(m, &off, &size))
		return 1;
	/* Only events_clear is writable, and only as a whole. */
	if (off != offsetof(struct virtio_gpu_config, events_clear) || size != 4)
		return 1;
	memcpy(&clear, m->payload + VU_CONFIG_HDR_SIZE, 4);
	vdev_lock(&c->dev);
	c->dev.events_read &= ~le32toh(clear);
	vdev_unlock(&c->dev);
	return 0;
}

/* ---- dispatch table ---- */

struct vu_handler {
	const char *name;
	int (*fn)(struct vu_conn *c, struct vu_msg *m);
	uint32_t min_size, max_size;
	bool replies;           /* has its own reply (no REPLY_ACK) */
};

#define U64 8u
#define STATE ((uint32_t)sizeof(struct vhost_vring_state))

static const struct vu_handler handlers[VU_REQUEST_MAX] = {
	[VU_GET_FEATURES] = { "GET_FEATURES", h_get_features, 0, U64, true },
	[VU_SET_FEATURES] = { "SET_FEATURES", h_set_features, U64, U64, false },
	[VU_SET_OWNER] = { "SET_OWNER", h_set_owner, 0, U64, false },
	[VU_RESET_OWNER] = { "RESET_OWNER", h_reset_owner, 0, U64, false },
	[VU_SET_MEM_TABLE] = { "SET_MEM_TABLE", h_set_mem_table, 8,
			       8 + GM_MAX_REGIONS * sizeof(struct vu_mem_region), false },
	[VU_SET_VRING_NUM] = { "SET_VRING_NUM", h_set_vring_num, STATE, STATE, false },
	[VU_SET_VRING_ADDR] = { "SET_VRING_ADDR", h_set_vring_addr,
				sizeof(struct vhost_vring_addr), sizeof(struct vhost_vring_addr), false },
	[VU_SET_VRING_BASE] = { "SET_VRING_BASE", h_set_vring_base, STATE, STATE, false },
	[VU_GET_VRING_BASE] = { "GET_VRING_BASE", h_get_vring_base, STATE, STATE, true },
	[VU_SET_VRING_KICK] = { "SET_VRING_KICK", h_set_vring_kick, U64, U64, false },
	[VU_SET_VRING_CALL] = { "SET_VRING_CALL", h_set_vring_call, U64, U64, false },
	[VU_SET_VRING_ERR] = { "SET_VRING_ERR", h_set_vring_err, U64, U64, false },
	[VU_GET_PROTOCOL_FEATURES] = { "GET_PROTOCOL_FEATURES", h_get_protocol_features, 0, U64, true },
	[VU_SET_PROTOCOL_FEATURES] = { "SET_PROTOCOL_FEATURES", h_set_protocol_features, U64, U64, false },
	[VU_GET_QUEUE_NUM] = { "GET_QUEUE_NUM", h_get_queue_num, 0, U64, true },
	[VU_SET_VRING_ENABLE] = { "SET_VRING_ENABLE", h_set_vring_enable, STATE, STATE, false },
	[VU_SET_BACKEND_REQ_FD] = { "SET_BACKEND_REQ_FD", h_set_backend_req_fd, 0, U64, false },
	[VU_GET_CONFIG] = { "GET_CONFIG", h_get_config, VU_CONFIG_HDR_SIZE,
			    VU_CONFIG_HDR_SIZE + VU_MAX_CONFIG_SIZE, true },
	[VU_SET_CONFIG] = { "SET_CONFIG", h_set_config, VU_CONFIG_HDR_SIZE,
			    VU_CONFIG_HDR_SIZE + VU_MAX_CONFIG_SIZE, false },
	[VU_RESET_DEVICE] = { "RESET_DEVICE", h_reset_device, 0, U64, false },
	[VU_SET_STATUS] = { "SET_STATUS", h_set_status, U64, U64, false },
	[VU_GET_STATUS] = { "GET_STATUS", h_get_status, 0, U64, true },
};

/* Messages that may carry fds. */
static bool takes_fds(uint32_t req)
{
	return req == VU_SET_MEM_TABLE || req == VU_SET_VRING_KICK ||
	       req == VU_SET_VRING_CALL || req == VU_SET_VRING_ERR ||
	       req == VU_SET_BACKEND_REQ_FD;
}

const char *vu_request_name(uint32_t req)
{
	return req < VU_REQUEST_MAX && handlers[req].name ? handlers[req].name : "UNKNOWN";
}

int vu_dispatch(struct vu_conn *c, struct vu_msg *m)
{
	const struct vu_handler *h = m->request < VU_REQUEST_MAX ? &handlers[m->request] : NULL;
	/* NEED_REPLY is honoured whenever set: REPLY_ACK is always offered,
	 * and a front-end sets it on SET_PROTOCOL_FEATURES itself, the very
	 * message that negotiates REPLY_ACK. */
	bool need_reply = m->flags & VU_FLAG_NEED_REPLY;
	int rc;

	STAT_ADD(vu_msgs, 1);
	if ((m->flags & VU_VERSION_MASK) != VU_VERSION) {
		hlog("vhost-user: bad version in flags %#x", m->flags);
		rc = -1;
	} else if (!h || !h->fn) {
		hlog("vhost-user: unsupported request %u", m->request);
		/* Unknown: we cannot know whether it expects an answer. */
		rc = need_reply ? 1 : -1;
	} else if (m->size < h->min_size || m->size > h->max_size) {
		hlog("vhost-user: %s with %u bytes of payload", h->name, m->size);
		rc = h->replies ? -1 : (need_reply ? 1 : -1);
	} else if (m->nfds && !takes_fds(m->request)) {
		hlog("vhost-user: %s carries %u unexpected fds", h->name, m->nfds);
		rc = h->replies ? -1 : 1;
	} else {
		rc = h->fn(c, m);
	}
	hlog_v("vhost-user %s (%u) size %u fds %u -> %s", vu_request_name(m->request),
	       m->request, m->size, m->nfds, rc == 0 ? "ok" : rc > 0 ? "failed" : "disconnect");
	if (rc)
		STAT_ADD(vu_errors, 1);
	if (rc >= 0 && need_reply && !(h && h->fn && h->replies)) {
		if (reply_u64(c, m, rc ? 1 : 0))
			rc = -1;
	}
	close_fds(m->fds, m->nfds);
	m->nfds = 0;
	return rc < 0 ? -1 : 0;
}

int vu_handle_one(struct vu_conn *c)
{
	struct vu_msg m;

	if (vu_read_msg(c->fd, &m))
		return -1;
	return vu_dispatch(c, &m);
}
