/* SPDX-License-Identifier: MIT */
/* virtqueue.c - split ring processing with checked guest accesses. */
#include "virtqueue.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stats.h"

void vq_init(struct vq *vq)
{
	memset(vq, 0, sizeof(*vq));
	vq->kick_fd = vq->call_fd = vq->err_fd = -1;
}

void vq_reset(struct vq *vq)
{
	if (vq->kick_fd >= 0)
		close(vq->kick_fd);
	if (vq->call_fd >= 0)
		close(vq->call_fd);
	if (vq->err_fd >= 0)
		close(vq->err_fd);
	vq_init(vq);
}

int vq_translate(struct vq *vq, const struct guest_mem *gm)
{
	uint64_t n = vq->num;

	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	if (!vq->addr_set || n == 0)
		return -1;
	/* Alignment required by the split ring layout (and by the atomic
	 * accesses below). */
	if (vq->desc_qva % 16 || vq->avail_qva % 2 || vq->used_qva % 4)
		return -1;
	vq->desc = gm_translate_qva(gm, vq->desc_qva, 16 * n);
	vq->avail = gm_translate_qva(gm, vq->avail_qva, 6 + 2 * n);
	vq->used = gm_translate_qva(gm, vq->used_qva, 6 + 8 * n);
	if (!vq->desc || !vq->avail || !vq->used) {
		vq->desc = NULL;
		vq->avail = NULL;
		vq->used = NULL;
		return -1;
	}
	return 0;
}

bool vq_ready(const struct vq *vq)
{
	return vq->num && vq->desc && vq->started && vq->enabled && !vq->broken;
}

static uint16_t load_avail_idx(const struct vq *vq)
{
	/* Acquire: ring entries written before idx are visible after it. */
	return le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE));
}

void vq_elem_free(struct vq_elem *e)
{
	free(e->out);
	free(e->in);
	memset(e, 0, sizeof(*e));
}

static int broken(struct vq *vq, const char *why)
{
	if (!vq->broken)
		hlog("virtqueue broken by the driver: %s", why);
	vq->broken = true;
	return -1;
}

int vq_pop(struct vq *vq, const struct guest_mem *gm, struct vq_elem *e)
{
	uint16_t avail_idx, head, i;
	unsigned count = 0;
	bool seen_in = false;
	size_t out_cap = 0;
	unsigned in_cap = 0;

	memset(e, 0, sizeof(*e));
	if (!vq_ready(vq))
		return 0;
	avail_idx = load_avail_idx(vq);
	if (avail_idx == vq->last_avail)
		return 0;
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->num)
		return broken(vq, "avail index moved by more than the ring size");

	head = le16toh(__atomic_load_n(&vq->avail->ring[vq->last_avail % vq->num],
				       __ATOMIC_RELAXED));
	if (head >= vq->num)
		return broken(vq, "head index out of range");
	vq->last_avail++;
	e->head = head;

	i = head;
	for (;;) {
		struct vring_desc d;
		uint64_t addr;
		uint32_t len;
		uint16_t flags;
		void *p;

		/* A chain longer than the ring has a loop. */
		if (++count > vq->num) {
			vq_elem_free(e);
			return broken(vq, "descriptor chain loops");
		}
		memcpy(&d, &vq->desc[i], sizeof(d));
		addr = le64toh(d.addr);
		len = le32toh(d.len);
		flags = le16toh(d.flags);
		if (flags & VRING_DESC_F_INDIRECT) {
			/* Not offered: the driver may not use it. */
			e->bad = true;
		} else if (len) {
			p = gm_translate(gm, addr, len);
			if (!p) {
				e->bad = true;
			} else if (flags & VRING_DESC_F_WRITE) {
				seen_in = true;
				if (e->in_n == in_cap) {
					/* at most vq->num entries: bounded by count */
					unsigned nc = in_cap ? in_cap * 2 : 4;
					struct vq_iov *ni = realloc(e->in, nc * sizeof(*ni));

					if (!ni) {
						e->bad = true;
						goto next;
					}
					e->in = ni;
					in_cap = nc;
				}
				e->in[e->in_n].p = p;
				e->in[e->in_n].len = len;
				e->in_n++;
				e->in_len += len;
			} else if (seen_in) {
				/* Readable after writable: not a valid chain. */
				e->bad = true;
			} else if (!e->bad) {
				if (len > VQ_MAX_OUT_BYTES - e->out_len) {
					e->bad = true;
				} else {
					if (e->out_len + len > out_cap) {
						size_t nc = out_cap ? out_cap * 2 : 4096;
						uint8_t *nb;

						while (nc < e->out_len + len)
							nc *= 2;
						/* No more than the largest command. */
						if (nc > VQ_MAX_OUT_BYTES)
							nc = VQ_MAX_OUT_BYTES;
						nb = realloc(e->out, nc);
						if (!nb) {
							e->bad = true;
							goto next;
						}
						e->out = nb;
						out_cap = nc;
					}
					memcpy(e->out + e->out_len, p, len);
					e->out_len += len;
				}
			}
		}
next:
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		i = le16toh(d.next);
		if (i >= vq->num) {
			vq_elem_free(e);
			return broken(vq, "next index out of range");
		}
	}
	if (e->bad)
		STAT_ADD(bad_chains, 1);
	return 1;
}

size_t vq_elem_write(struct vq_elem *e, const void *data, size_t len)
{
	const uint8_t *s = data;
	size_t done = 0;

	for (unsigned k = 0; k < e->in_n && done < len; k++) {
		size_t n = e->in[k].len;

		if (n > len - done)
			n = len - done;
		memcpy(e->in[k].p, s + done, n);
		done += n;
	}
	return done;
}

void vq_push(struct vq *vq, uint16_t head, uint32_t len)
{
	struct vring_used_elem *u;

	if (!vq->used)
		return;
	u = &vq->used->ring[vq->used_idx % vq->num];
	__atomic_store_n(&u->id, htole32(head), __ATOMIC_RELAXED);
	__atomic_store_n(&u->len, htole32(len), __ATOMIC_RELAXED);
	vq->used_idx++;
	/* Release: the element (and the response data) before the index. */
	__atomic_store_n(&vq->used->idx, htole16(vq->used_idx), __ATOMIC_RELEASE);
}

void vq_notify(struct vq *vq)
{
	uint64_t one = 1;
	uint16_t flags;

	if (vq->call_fd < 0 || !vq->avail)
		return;
	/* Order the used index store before reading the driver's flags. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	flags = le16toh(__atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED));
	if (flags & VRING_AVAIL_F_NO_INTERRUPT)
		return;
	/* Never block on the front-end's fd (a pipe nobody reads, say):
	 * an 8-byte write does not block once poll reports it writable
	 * (eventfd, or a pipe with PIPE_BUF bytes free). */
	{
		struct pollfd p = { vq->call_fd, POLLOUT, 0 };

		if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)) {
			vq->notify_skipped++;
			return;
		}
	}
	if (write(vq->call_fd, &one, sizeof(one)) < 0 && errno != EAGAIN &&
	    vq->notify_errors++ == 0)
		hlog("call eventfd write: %s (logged once)", strerror(errno));
}
