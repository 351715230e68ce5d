/* SPDX-License-Identifier: MIT */
/*
 * fence.c - waiting for submits and retiring them: status records,
 * copy-backs, device loss, imported sync_files, waits on many fences.
 *
 * A submit's fence is a sync_file the kernel signals when the device has
 * answered it. The library retires a fence (reads its status record, copies
 * back what copy-path buffers got, releases its slot and buffers) the first
 * time one of its calls sees it signalled; that is why results of a
 * copy-path submit reach the caller's memory only through a libvgpu call.
 */
#include "vgpu_private.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sync_file.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define VGPU_WAIT_MANY_MAX 256u

int64_t vgpu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t vgpu_deadline_ms(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : vgpu_now_ns() + (int64_t)timeout_ms * 1000000;
}

/* A timeout in ns (relative, or absolute with VGPU_WAIT_ABSOLUTE) as a
 * deadline; -1: none. */
static int64_t deadline_ns(int64_t timeout_ns, unsigned int flags)
{
	int64_t now;

	if (timeout_ns < 0)
		return -1;
	if (flags & VGPU_WAIT_ABSOLUTE)
		return timeout_ns;
	now = vgpu_now_ns();
	return timeout_ns > INT64_MAX - now ? -1 : now + timeout_ns;
}

/* poll()'s timeout in ms for a deadline, rounded up so that a wait never
 * ends before its deadline. */
static int poll_ms(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - vgpu_now_ns();
	if (left <= 0)
		return 0;
	left = (left + 999999) / 1000000;
	return left > 1000000 ? 1000000 : (int)left;
}

/* Poll fds until one is readable or the deadline passes: the number ready,
 * 0 at the deadline, a negative errno on error. */
static int poll_until(struct pollfd *pfd, unsigned int n, int64_t deadline)
{
	for (;;) {
		int ms = poll_ms(deadline), r;

		r = poll(pfd, n, ms);
		if (r > 0) {
			for (unsigned int i = 0; i < n; i++)
				if (pfd[i].revents & POLLNVAL)
					return -EBADF;
			return r;
		}
		if (r == 0) {
			/* poll() may wake a little early: only the clock says
			 * the deadline has passed. */
			if (deadline >= 0 && vgpu_now_ns() < deadline)
				continue;
			return 0;
		}
		if (errno != EINTR)
			return -errno;
	}
}

/* The sync_file's fence status: 1 signalled, 0 not yet, < 0 its error. */
static int sync_file_status(int fd)
{
	struct sync_file_info info;

	memset(&info, 0, sizeof(info));
	if (ioctl(fd, SYNC_IOC_FILE_INFO, &info) < 0)
		return 1; /* not a sync_file after all: poll() said signalled */
	return info.status;
}

struct vgpu_compute_status *vgpu_slot_ptr(struct vgpu_device *dev, uint32_t slot)
{
	return (struct vgpu_compute_status *)dev->status_map + slot;
}

void vgpu_slot_free(struct vgpu_device *dev, uint32_t slot)
{
	dev->slot_map[slot / 64] &= ~(1ull << (slot % 64));
}

void vgpu_fence_unref_locked(struct vgpu_fence *f)
{
	if (--f->refs)
		return;
	if (f->fd >= 0)
		close(f->fd);
	free(f->ext);
	free(f->cb);
	free(f);
}

void vgpu_pending_add_locked(struct vgpu_fence *f)
{
	struct vgpu_device *dev = f->dev;

	f->refs++;
	f->prev = dev->pending_tail;
	f->next = NULL;
	if (dev->pending_tail)
		dev->pending_tail->next = f;
	else
		dev->pending = f;
	dev->pending_tail = f;
	if (f->ncb)
		dev->pending_copyback++;
}

static void pending_unlink(struct vgpu_device *dev, struct vgpu_fence *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else
		dev->pending = f->next;
	if (f->next)
		f->next->prev = f->prev;
	else
		dev->pending_tail = f->prev;
	f->prev = f->next = NULL;
	if (f->ncb)
		dev->pending_copyback--;
}

void vgpu_fence_release_locked(struct vgpu_fence *f)
{
	for (unsigned int i = 0; i < f->nextents; i++)
		vgpu_buffer_unref_locked(f->ext[i].buf);
	f->nextents = 0;
	if (!f->imported)
		vgpu_slot_free(f->dev, f->slot);
}

/*
 * Retire a fence whose submit completed: read its status record, copy back
 * what the executed ops wrote, release its slot and buffers. executed
 * false: the device never answered (close after a device that hangs):
 * nothing is copied back.
 */
static void retire_locked(struct vgpu_fence *f, bool executed)
{
	struct vgpu_device *dev = f->dev;
	struct vgpu_compute_status *st = vgpu_slot_ptr(dev, f->slot);
	uint32_t result;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	result = le32toh(__atomic_load_n(&st->result, __ATOMIC_RELAXED));
	memset(&f->res, 0, sizeof(f->res));
	f->res.struct_size = sizeof(f->res);
	f->res.num_ops = f->num_ops;
	f->res.ring = f->ring;
	f->res.device_result = VGPU_RESULT_NOT_EXECUTED;
	if (!executed) {
		f->err = vgpu_fail(-ETIMEDOUT, "the submit did not complete before vgpu_close()");
	} else if (result == VGPU_STATUS_PENDING) {
		/* Signalled without a status record: the fence's error says
		 * why (ENODEV: the device went away). */
		int s = sync_file_status(f->fd);

		f->err = vgpu_dev_err(dev, s < 0 ? s : -EIO);
	} else {
		f->res.device_result = result;
		f->res.op_index = le32toh(__atomic_load_n(&st->op_index, __ATOMIC_RELAXED));
		f->res.ops_done = le64toh(__atomic_load_n(&st->ops_done, __ATOMIC_RELAXED));
		f->err = vgpu_result_to_errno(result);
		for (unsigned int i = 0; i < f->ncb; i++)
			if (f->cb[i].op < f->res.ops_done)
				vgpu_buffer_copy(f->cb[i].buf, f->cb[i].off, f->cb[i].len, false);
	}
	vgpu_fence_release_locked(f);
	pending_unlink(dev, f);
	f->retired = true;
	pthread_cond_broadcast(&dev->retired_cv);
	vgpu_fence_unref_locked(f); /* the pending list's reference */
}

/* An imported fence completes with the sync_file's own status. */
static void retire_imported_locked(struct vgpu_fence *f)
{
	int s = sync_file_status(f->fd);

	memset(&f->res, 0, sizeof(f->res));
	f->res.struct_size = sizeof(f->res);
	f->res.device_result = s < 0 ? VGPU_RESULT_NOT_EXECUTED : VGPU_COMPUTE_OK;
	f->err = s < 0 ? s : 0;
	f->retired = true;
}

/*
 * The device writes a submit's status record after its last op and before
 * it answers: a record that is no longer PENDING means the work is done,
 * and the fence may retire without a system call (the kernel signals the
 * sync_file a little later, when the answer arrives).
 */
static bool status_written(struct vgpu_fence *f)
{
	struct vgpu_compute_status *st;

	if (f->imported)
		return false;
	st = vgpu_slot_ptr(f->dev, f->slot);
	return le32toh(__atomic_load_n(&st->result, __ATOMIC_ACQUIRE)) != VGPU_STATUS_PENDING;
}

static void retire_signalled_locked(struct vgpu_fence *f)
{
	if (f->retired)
		return;
	if (f->imported)
		retire_imported_locked(f);
	else
		retire_locked(f, true);
}

void vgpu_reap_locked(struct vgpu_device *dev)
{
	struct pollfd pfd[VGPU_STATUS_SLOTS];
	struct vgpu_fence *fs[VGPU_STATUS_SLOTS];
	unsigned int n = 0;

	for (struct vgpu_fence *f = dev->pending; f && n < VGPU_STATUS_SLOTS; f = f->next) {
		pfd[n].fd = f->fd;
		pfd[n].events = POLLIN;
		fs[n++] = f;
	}
	if (n == 0 || poll(pfd, n, 0) <= 0)
		return;
	for (unsigned int i = 0; i < n; i++)
		if (pfd[i].revents & POLLIN)
			retire_locked(fs[i], true);
}

/*
 * Retire every pending submit whose status record is written. Called once a
 * wait has retired one: a ring runs in order, so the submits before it on
 * its ring are done too, and their copy-backs must reach the caller's memory
 * now, not at some later libvgpu call (a runtime that waits for the last
 * submit of a ring reads what all of them wrote).
 */
static void retire_written_locked(struct vgpu_device *dev)
{
	struct vgpu_fence *f = dev->pending, *next;

	for (; f; f = next) {
		next = f->next;
		if (!f->retired && status_written(f))
			retire_locked(f, true);
	}
}

int vgpu_wait_retire_locked(struct vgpu_fence *f, int64_t deadline)
{
	struct vgpu_device *dev = f->dev;
	struct pollfd pfd = { .fd = f->fd, .events = POLLIN };
	int r;

	if (f->retired)
		return 0;
	if (status_written(f)) {
		retire_locked(f, true);
		retire_written_locked(dev);
		return 0;
	}
	f->refs++;
	pthread_mutex_unlock(&dev->lock);
	r = poll_until(&pfd, 1, deadline);
	pthread_mutex_lock(&dev->lock);
	if (r > 0) {
		retire_signalled_locked(f);
		retire_written_locked(dev);
	}
	vgpu_fence_unref_locked(f);
	return r > 0 ? 0 : r == 0 ? -ETIMEDOUT : r;
}

static bool fence_uses(const struct vgpu_fence *f, const struct vgpu_buffer *buf)
{
	for (unsigned int i = 0; i < f->nextents; i++)
		if (f->ext[i].buf == buf)
			return true;
	return false;
}

void vgpu_quiesce_buffer_locked(struct vgpu_buffer *buf)
{
	struct vgpu_device *dev = buf->dev;
	int64_t deadline = vgpu_deadline_ms(VGPU_DEFAULT_TIMEOUT_MS);

	for (;;) {
		struct vgpu_fence *f;

		for (f = dev->pending; f && !fence_uses(f, buf); f = f->next)
			;
		if (!f)
			return;
		if (vgpu_wait_retire_locked(f, deadline) && !f->retired) {
			/* The device holds on to it: never write into the
			 * caller's memory once the caller let go. */
			buf->abandoned = true;
			return;
		}
	}
}

void vgpu_retire_all(struct vgpu_device *dev)
{
	pthread_mutex_lock(&dev->lock);
	while (dev->pending) {
		struct vgpu_fence *f = dev->pending;

		if (vgpu_wait_retire_locked(f, vgpu_deadline_ms(VGPU_DEFAULT_TIMEOUT_MS)) &&
		    !f->retired)
			retire_locked(f, false);
	}
	pthread_mutex_unlock(&dev->lock);
}

/* ---- the public calls ---- */

static void result_out(struct vgpu_submit_result *dst, const struct vgpu_submit_result *src)
{
	size_t n;

	if (!dst || dst->struct_size < offsetof(struct vgpu_submit_result, num_ops))
		return;
	n = dst->struct_size < sizeof(*src) ? dst->struct_size : sizeof(*src);
	memcpy((char *)dst + sizeof(dst->struct_size), (const char *)src + sizeof(src->struct_size),
	       n - sizeof(dst->struct_size));
}

void vgpu_result_not_executed(struct vgpu_submit_result *r, uint32_t num_ops, uint32_t ring)
{
	struct vgpu_submit_result ne = {
		.struct_size = sizeof(ne),
		.device_result = VGPU_RESULT_NOT_EXECUTED,
		.num_ops = num_ops,
		.ring = ring,
	};

	result_out(r, &ne);
}

/* The error a retired fence completed with, and its detail. */
static int fence_error(const struct vgpu_fence *f, const char *fn)
{
	if (!f->err)
		return 0;
	if (f->imported)
		return vgpu_fail(f->err, "%s: the imported fence signalled an error: %s", fn,
				 strerror(-f->err));
	if (f->err == -ENODEV)
		return vgpu_fail(f->err, "%s: the device went away before the submit completed",
				 fn);
	if (f->err == -EIO)
		return vgpu_fail(f->err, "%s: the fence signalled but the device wrote no status "
				 "record (transport error)", fn);
	if (f->res.device_result == VGPU_RESULT_NOT_EXECUTED)
		return vgpu_fail(f->err, "%s: %s", fn, strerror(-f->err));
	return vgpu_fail(f->err, "device: %s (op %u)", vgpu_result_str(f->res.device_result),
			 f->res.op_index);
}

static int wait_one(struct vgpu_fence *f, int64_t deadline, struct vgpu_submit_result *result,
		    const char *fn)
{
	struct vgpu_device *dev;
	int err, r;

	if (result && result->struct_size < offsetof(struct vgpu_submit_result, num_ops))
		return vgpu_fail(-EINVAL, "%s: result->struct_size %zu is smaller than any "
				 "struct vgpu_submit_result", fn, result->struct_size);
	if (!f)
		return vgpu_fail(-EINVAL, "%s: fence is NULL", fn);
	dev = f->dev;
	vgpu_result_not_executed(result, f->num_ops, f->ring);
	/* A fence that completed before the device was lost still reports
	 * its own result. */
	if (vgpu_dev_foreign(dev))
		return vgpu_dev_check(dev, fn);
	pthread_mutex_lock(&dev->lock);
	if (!f->retired) {
		err = vgpu_dev_check(dev, fn);
		if (err) {
			pthread_mutex_unlock(&dev->lock);
			return err;
		}
		r = vgpu_wait_retire_locked(f, deadline);
		if (r && !f->retired) {
			pthread_mutex_unlock(&dev->lock);
			if (r == -ETIMEDOUT)
				return vgpu_fail(-ETIMEDOUT, "%s: not complete before the deadline "
						 "(still in flight: wait again)", fn);
			return vgpu_fail(r, "%s: poll on the fence: %s", fn, strerror(-r));
		}
	}
	result_out(result, &f->res);
	err = fence_error(f, fn);
	pthread_mutex_unlock(&dev->lock);
	return err;
}

VGPU_EXPORT int vgpu_fence_wait(struct vgpu_fence *f, int timeout_ms,
				struct vgpu_submit_result *result)
{
	return wait_one(f, vgpu_deadline_ms(timeout_ms), result, "vgpu_fence_wait");
}

VGPU_EXPORT int vgpu_fence_wait_ns(struct vgpu_fence *f, int64_t timeout_ns, unsigned int flags,
				   struct vgpu_submit_result *result)
{
	if (flags & ~VGPU_WAIT_ABSOLUTE)
		return vgpu_fail(-EINVAL, "vgpu_fence_wait_ns: unknown flags 0x%x",
				 flags & ~VGPU_WAIT_ABSOLUTE);
	return wait_one(f, deadline_ns(timeout_ns, flags), result, "vgpu_fence_wait_ns");
}

/* Retire f if it has completed, without waiting; true when retired. */
static bool try_retire(struct vgpu_fence *f)
{
	struct vgpu_device *dev = f->dev;
	bool done;

	pthread_mutex_lock(&dev->lock);
	if (!f->retired) {
		struct pollfd pfd = { .fd = f->fd, .events = POLLIN };

		if (status_written(f) || (poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN))) {
			retire_signalled_locked(f);
			retire_written_locked(dev);
		}
	}
	done = f->retired;
	pthread_mutex_unlock(&dev->lock);
	return done;
}

VGPU_EXPORT int vgpu_fence_wait_many(struct vgpu_fence *const *fences, unsigned int count,
				     unsigned int flags, int64_t timeout_ns, unsigned int *first)
{
	const unsigned int known = VGPU_WAIT_ABSOLUTE | VGPU_WAIT_ANY;
	struct pollfd pfd[VGPU_WAIT_MANY_MAX];
	int64_t deadline = deadline_ns(timeout_ns, flags);
	int err;

	if (!fences || count == 0 || count > VGPU_WAIT_MANY_MAX)
		return vgpu_fail(-EINVAL, "vgpu_fence_wait_many: %u fences (1 to %u)", count,
				 VGPU_WAIT_MANY_MAX);
	if (flags & ~known)
		return vgpu_fail(-EINVAL, "vgpu_fence_wait_many: unknown flags 0x%x", flags & ~known);
	for (unsigned int i = 0; i < count; i++) {
		if (!fences[i])
			return vgpu_fail(-EINVAL, "vgpu_fence_wait_many: fence %u is NULL", i);
		err = vgpu_dev_check(fences[i]->dev, "vgpu_fence_wait_many");
		if (err && !fences[i]->retired)
			return err;
	}
	if (!(flags & VGPU_WAIT_ANY)) {
		/* All: one after the other, against one deadline. */
		for (unsigned int i = 0; i < count; i++) {
			err = wait_one(fences[i], deadline, NULL, "vgpu_fence_wait_many");
			if (err == -ETIMEDOUT && !fences[i]->retired)
				return err;
		}
		for (unsigned int i = 0; i < count; i++) {
			err = fences[i]->err ? fence_error(fences[i], "vgpu_fence_wait_many") : 0;
			if (err)
				return err;
		}
		return 0;
	}
	for (;;) {
		int r;

		for (unsigned int i = 0; i < count; i++) {
			if (try_retire(fences[i])) {
				if (first)
					*first = i;
				return wait_one(fences[i], 0, NULL, "vgpu_fence_wait_many");
			}
			pfd[i].fd = fences[i]->fd;
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		r = poll_until(pfd, count, deadline);
		if (r == 0)
			return vgpu_fail(-ETIMEDOUT, "vgpu_fence_wait_many: none complete before the "
					 "deadline (still in flight: wait again)");
		if (r < 0)
			return vgpu_fail(r, "vgpu_fence_wait_many: poll: %s", strerror(-r));
	}
}

VGPU_EXPORT int vgpu_fence_import(struct vgpu_device *dev, int sync_file_fd,
				  struct vgpu_fence **out)
{
	struct sync_file_info info;
	struct vgpu_fence *f;
	int fd, err;

	if (!out)
		return vgpu_fail(-EINVAL, "vgpu_fence_import: out is NULL");
	*out = NULL;
	if (!dev)
		return vgpu_fail(-EINVAL, "vgpu_fence_import: dev is NULL");
	err = vgpu_dev_check(dev, "vgpu_fence_import");
	if (err)
		return err;
	memset(&info, 0, sizeof(info));
	if (sync_file_fd < 0 || ioctl(sync_file_fd, SYNC_IOC_FILE_INFO, &info) < 0)
		return vgpu_fail(-EINVAL, "vgpu_fence_import: fd %d is not a sync_file",
				 sync_file_fd);
	fd = fcntl(sync_file_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return vgpu_fail(-errno, "vgpu_fence_import: dup: %s", strerror(errno));
	f = calloc(1, sizeof(*f));
	if (!f) {
		close(fd);
		return vgpu_fail(-ENOMEM, "vgpu_fence_import: out of memory");
	}
	f->dev = dev;
	f->fd = fd;
	f->refs = 1;
	f->imported = true;
	*out = f;
	return 0;
}

VGPU_EXPORT int vgpu_fence_export(struct vgpu_fence *f)
{
	int fd, err;

	if (!f)
		return vgpu_fail(-EINVAL, "vgpu_fence_export: fence is NULL");
	err = vgpu_dev_check(f->dev, "vgpu_fence_export");
	if (err)
		return err;
	fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return vgpu_fail(-errno, "vgpu_fence_export: dup: %s", strerror(errno));
	return fd;
}

VGPU_EXPORT bool vgpu_fence_needs_retire(const struct vgpu_fence *f)
{
	bool r;

	if (!f || f->imported || vgpu_dev_foreign(f->dev))
		return false;
	pthread_mutex_lock(&f->dev->lock);
	r = !f->retired && f->ncb > 0;
	pthread_mutex_unlock(&f->dev->lock);
	return r;
}

VGPU_EXPORT void vgpu_fence_destroy(struct vgpu_fence *f)
{
	struct vgpu_device *dev;

	if (!f)
		return;
	dev = f->dev;
	/* In a fork child the fence is the parent's: vgpu_close() there
	 * frees only what the child owns. */
	if (vgpu_dev_foreign(dev))
		return;
	pthread_mutex_lock(&dev->lock);
	if (!f->user_gone) {
		f->user_gone = true;
		vgpu_fence_unref_locked(f);
	}
	pthread_mutex_unlock(&dev->lock);
}
