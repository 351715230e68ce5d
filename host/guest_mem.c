/* SPDX-License-Identifier: MIT */
/* guest_mem.c - mapping and checked translation of guest memory. */
#include "guest_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stats.h"

void gm_init(struct guest_mem *gm)
{
	memset(gm, 0, sizeof(*gm));
	gm->gen = 1;
	pthread_mutex_init(&gm->users_lock, NULL);
	gm->users.prev = gm->users.next = &gm->users;
}

static void region_unmap(struct gm_region *r)
{
	if (r->map_base) {
		munmap(r->map_base, r->map_len);
		STAT_SUB(mapped_bytes, r->map_len);
	}
	if (r->fd >= 0 && r->map_base) {
		close(r->fd);
		STAT_SUB(regions_sealed, r->sealed ? 1 : 0);
	}
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

static struct guest_mem *users_of(const struct guest_mem *gm)
{
	/* The user list is bookkeeping beside the table; every guest_mem is
	 * a modifiable object, so this cast is well defined. */
	return (struct guest_mem *)gm;
}

/* Tell every user the table changed; the caller holds users_lock. */
static void notify_users_locked(struct guest_mem *gm)
{
	for (struct gm_user *u = gm->users.next; u != &gm->users; u = u->next)
		u->table_changed(u, gm);
}

void gm_user_add(const struct guest_mem *cgm, struct gm_user *u)
{
	struct guest_mem *gm = users_of(cgm);

	pthread_mutex_lock(&gm->users_lock);
	u->next = &gm->users;
	u->prev = gm->users.prev;
	gm->users.prev->next = u;
	gm->users.prev = u;
	pthread_mutex_unlock(&gm->users_lock);
}

void gm_user_del(const struct guest_mem *cgm, struct gm_user *u)
{
	struct guest_mem *gm = users_of(cgm);

	pthread_mutex_lock(&gm->users_lock);
	if (u->next) {
		u->prev->next = u->next;
		u->next->prev = u->prev;
	}
	u->next = u->prev = NULL;
	pthread_mutex_unlock(&gm->users_lock);
}

static void regions_clear(struct guest_mem *gm)
{
	for (unsigned i = 0; i < gm->nregions; i++)
		region_unmap(&gm->r[i]);
	gm->nregions = 0;
}

void gm_clear(struct guest_mem *gm)
{
	pthread_mutex_lock(&gm->users_lock);
	regions_clear(gm);
	gm->gen++;
	notify_users_locked(gm);
	pthread_mutex_unlock(&gm->users_lock);
}

/* [a, a+alen) and [b, b+blen) intersect; both known not to wrap. */
static int ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int check_desc(const struct gm_region_desc *d)
{
	if (d->size == 0)
		return -1;
	if (d->gpa > UINT64_MAX - d->size || d->qva > UINT64_MAX - d->size ||
	    d->mmap_offset > UINT64_MAX - d->size)
		return -1;
	if (d->size > SIZE_MAX / 2)
		return -1;
	return 0;
}

int gm_set_table(struct guest_mem *gm, const struct gm_region_desc *d,
		 unsigned n, const int *fds)
{
	struct gm_region nr[GM_MAX_REGIONS];
	unsigned nn = 0;
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t page = pg > 0 ? (uint64_t)pg : 4096u;

	if (n > GM_MAX_REGIONS) {
		errno = E2BIG;
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		if (check_desc(&d[i]) || fds[i] < 0) {
			errno = EINVAL;
			return -1;
		}
		for (unsigned j = 0; j < i; j++) {
			if (ranges_overlap(d[i].gpa, d[i].size, d[j].gpa, d[j].size) ||
			    ranges_overlap(d[i].qva, d[i].size, d[j].qva, d[j].size)) {
				errno = EINVAL;
				return -1;
			}
		}
	}

	memset(nr, 0, sizeof(nr));
	for (unsigned i = 0; i < n; i++) {
		uint64_t aligned = d[i].mmap_offset & ~(page - 1);
		uint64_t delta = d[i].mmap_offset - aligned;
		struct stat st;
		void *p;

		/* Touching a mapping beyond the end of a file raises SIGBUS:
		 * refuse regions that the file does not cover. */
		if (fstat(fds[i], &st) < 0)
			goto fail;
		if (S_ISREG(st.st_mode) &&
		    (uint64_t)st.st_size < d[i].mmap_offset + d[i].size) {
			errno = EINVAL;
			goto fail;
		}
		if (aligned > (uint64_t)INT64_MAX) {
			errno = EINVAL;
			goto fail;
		}
		p = mmap(NULL, (size_t)(d[i].size + delta), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_NORESERVE, fds[i], (off_t)aligned);
		if (p == MAP_FAILED)
			goto fail;
		nr[i].gpa = d[i].gpa;
		nr[i].size = d[i].size;
		nr[i].qva = d[i].qva;
		nr[i].map_base = p;
		nr[i].map_len = (size_t)(d[i].size + delta);
		nr[i].host = (uint8_t *)p + delta;
		nr[i].file_off = d[i].mmap_offset;
		nn = i + 1;
		STAT_ADD(mapped_bytes, nr[i].map_len);
		/* Our own fd, for the zero-copy windows built later; the seals
		 * say whether the front-end can still shrink the file. */
		nr[i].fd = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
		if (nr[i].fd < 0)
			goto fail;
		{
			int seals = fcntl(fds[i], F_GET_SEALS);

			nr[i].sealed = seals >= 0 && (seals & F_SEAL_SHRINK);
			STAT_ADD(regions_sealed, nr[i].sealed ? 1 : 0);
		}
	}
	pthread_mutex_lock(&gm->users_lock);
	regions_clear(gm);
	memcpy(gm->r, nr, sizeof(nr));
	gm->nregions = n;
	gm->gen++;
	notify_users_locked(gm);
	pthread_mutex_unlock(&gm->users_lock);
	return 0;
fail:
	{
		int e = errno;

		/* Regions below nn are mapped and hold their fd copy (or -1). */
		for (unsigned i = 0; i < nn; i++)
			region_unmap(&nr[i]);
		errno = e;
	}
	return -1;
}

int gm_add_host_region(struct guest_mem *gm, uint64_t gpa, uint64_t size,
		       uint64_t qva, void *host)
{
	struct gm_region_desc d = { gpa, size, qva, 0 };

	if (gm->nregions >= GM_MAX_REGIONS || check_desc(&d) || !host)
		return -1;
	for (unsigned j = 0; j < gm->nregions; j++)
		if (ranges_overlap(gpa, size, gm->r[j].gpa, gm->r[j].size) ||
		    ranges_overlap(qva, size, gm->r[j].qva, gm->r[j].size))
			return -1;
	gm->r[gm->nregions].gpa = gpa;
	gm->r[gm->nregions].size = size;
	gm->r[gm->nregions].qva = qva;
	gm->r[gm->nregions].host = host;
	gm->r[gm->nregions].fd = -1;
	gm->nregions++;
	gm->gen++;
	return 0;
}

void *gm_translate(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		return NULL;
	for (unsigned i = 0; i < gm->nregions; i++) {
		const struct gm_region *r = &gm->r[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size &&
		    len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

void *gm_translate_qva(const struct guest_mem *gm, uint64_t qva, uint64_t len)
{
	if (len == 0)
		return NULL;
	for (unsigned i = 0; i < gm->nregions; i++) {
		const struct gm_region *r = &gm->r[i];

		if (qva >= r->qva && qva - r->qva < r->size &&
		    len <= r->size - (qva - r->qva))
			return r->host + (qva - r->qva);
	}
	return NULL;
}

uint64_t gm_mapped_bytes(const struct guest_mem *gm)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < gm->nregions; i++)
		t += gm->r[i].size;
	return t;
}

int gm_file_range(const struct guest_mem *gm, uint64_t gpa, uint64_t len,
		  int *fd, uint64_t *off, bool *sealed)
{
	if (len == 0)
		return -1;
	for (unsigned i = 0; i < gm->nregions; i++) {
		const struct gm_region *r = &gm->r[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size &&
		    len <= r->size - (gpa - r->gpa)) {
			if (r->fd < 0 || r->file_off > UINT64_MAX - r->size)
				return -1;
			*fd = r->fd;
			*off = r->file_off + (gpa - r->gpa);
			*sealed = r->sealed;
			return 0;
		}
	}
	return -1;
}
