/* SPDX-License-Identifier: MIT */
/* resource.c - backings: their references, and scatter-gather access to their pages. */
#include "resource.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"
#include "window.h"

int res_check_entries(const struct guest_mem *gm, const struct gpu_mem_entry *e,
		      uint32_t n, uint64_t *total)
{
	uint64_t t = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (e[i].len == 0)
			return -1;
		if (!gm_translate(gm, e[i].addr, e[i].len))
			return -1;
		t += e[i].len;  /* n <= 2^20 entries of < 2^32: no overflow */
	}
	*total = t;
	return 0;
}

struct res_entry *res_build_entries(const struct gpu_mem_entry *e, uint32_t n)
{
	struct res_entry *r = calloc(n ? n : 1, sizeof(*r));
	uint64_t off = 0;

	if (!r)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		r[i].gpa = e[i].addr;
		r[i].len = e[i].len;
		r[i].off = off;
		off += e[i].len;
	}
	return r;
}

struct res_backing *res_backing_new(const struct gpu_mem_entry *e, uint32_t n, bool readonly)
{
	struct res_backing *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->ents = res_build_entries(e, n);
	if (!b->ents) {
		free(b);
		return NULL;
	}
	b->nents = n;
	b->size = n ? b->ents[n - 1].off + b->ents[n - 1].len : 0;
	b->readonly = readonly;
	b->refs = 1;
	STAT_ADD(backings, 1);
	return b;
}

struct res_backing *res_backing_get(struct res_backing *b)
{
	b->refs++;
	return b;
}

/* The users lists of all backings. */
static pthread_mutex_t users_lock = PTHREAD_MUTEX_INITIALIZER;

void res_backing_add_user(struct res_backing *b, struct res_backing_user *u)
{
	pthread_mutex_lock(&users_lock);
	u->next = b->users;
	b->users = u;
	pthread_mutex_unlock(&users_lock);
}

void res_backing_del_user(struct res_backing *b, struct res_backing_user *u)
{
	pthread_mutex_lock(&users_lock);
	for (struct res_backing_user **pp = &b->users; *pp; pp = &(*pp)->next)
		if (*pp == u) {
			*pp = u->next;
			break;
		}
	pthread_mutex_unlock(&users_lock);
}

void res_backing_put(struct res_backing *b)
{
	struct res_backing_user *u;

	if (!b || --b->refs)
		return;
	/* Whoever else maps the pages lets go of them first. */
	pthread_mutex_lock(&users_lock);
	u = b->users;
	b->users = NULL;
	pthread_mutex_unlock(&users_lock);
	while (u) {
		struct res_backing_user *next = u->next;

		u->gone(u, b);
		u = next;
	}
	res_window_close(b);
	free(b->ents);
	free(b);
	STAT_SUB(backings, 1);
}

bool res_backing_in_use(const struct res_backing *b)
{
	return b->refs > 1;
}

bool res_backed(struct res_backing *b, const struct guest_mem *gm)
{
	/* A resource may have millions of entries and a submit 256 ops
	 * naming it: translate them once per table, not once per use. */
	if (b->checked_gen != gm->gen) {
		b->all_translate = true;
		for (uint32_t i = 0; i < b->nents && b->all_translate; i++)
			b->all_translate = gm_translate(gm, b->ents[i].gpa, b->ents[i].len) != NULL;
		b->checked_gen = gm->gen;
		STAT_ADD(backing_walks, 1);
	}
	return b->all_translate;
}

uint8_t *res_span(const struct res_backing *r, const struct guest_mem *gm,
		  uint64_t off, uint64_t *avail)
{
	uint32_t lo = 0, hi = r->nents;
	const struct res_entry *e;
	uint8_t *p;

	if (!r->nents || off >= r->size)
		return NULL;
	if (r->win && r->win->base) {
		*avail = r->size - off;
		return r->win->base + off;
	}
	/* Last entry with e->off <= off. */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (r->ents[mid].off <= off)
			lo = mid;
		else
			hi = mid;
	}
	e = &r->ents[lo];
	if (off - e->off >= e->len)
		return NULL;
	p = gm_translate(gm, e->gpa, e->len);
	if (!p)
		return NULL;
	*avail = e->len - (off - e->off);
	return p + (off - e->off);
}

int res_read(const struct res_backing *r, const struct guest_mem *gm,
	     uint64_t off, void *buf, uint64_t n)
{
	uint8_t *d = buf;

	while (n) {
		uint64_t avail, k;
		uint8_t *p = res_span(r, gm, off, &avail);

		if (!p)
			return -1;
		k = avail < n ? avail : n;
		memcpy(d, p, k);
		d += k;
		off += k;
		n -= k;
	}
	return 0;
}

int res_write(const struct res_backing *r, const struct guest_mem *gm,
	      uint64_t off, const void *buf, uint64_t n)
{
	const uint8_t *s = buf;

	while (n) {
		uint64_t avail, k;
		uint8_t *p = res_span(r, gm, off, &avail);

		if (!p)
			return -1;
		k = avail < n ? avail : n;
		memcpy(p, s, k);
		s += k;
		off += k;
		n -= k;
	}
	return 0;
}
