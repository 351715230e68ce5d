/* SPDX-License-Identifier: MIT */
/*
 * rcache.c - the registration cache: page ranges registered once and
 * handed out again for any range they cover.
 *
 * Entries live in an interval tree, a treap ordered by (start, address)
 * whose nodes also keep the largest end in their subtree, so that "an
 * entry covering [a, b)" and "every entry overlapping [a, b)" are found
 * without visiting subtrees that end too early. Unused entries sit in an
 * LRU list, oldest first, and are destroyed oldest first while their bytes
 * are over the budget. A miss registers one range covering the request and
 * every entry of the same flags it overlaps, and is listed as pending while
 * the kernel pins it, so that a concurrent miss on the same pages waits for
 * it rather than pinning them a second time. Everything runs under
 * dev->lock.
 */
#include "vgpu_private.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

/* ---- interval tree ---- */

static uintptr_t sub_max(const struct vgpu_buffer *n)
{
	return n ? n->it_max : 0;
}

static void update(struct vgpu_buffer *n)
{
	uintptr_t m = n->end;

	if (sub_max(n->it_left) > m)
		m = sub_max(n->it_left);
	if (sub_max(n->it_right) > m)
		m = sub_max(n->it_right);
	n->it_max = m;
}

static bool before(const struct vgpu_buffer *a, const struct vgpu_buffer *b)
{
	return a->start < b->start || (a->start == b->start && (uintptr_t)a < (uintptr_t)b);
}

static struct vgpu_buffer *merge(struct vgpu_buffer *a, struct vgpu_buffer *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	if (a->it_prio > b->it_prio) {
		a->it_right = merge(a->it_right, b);
		update(a);
		return a;
	}
	b->it_left = merge(a, b->it_left);
	update(b);
	return b;
}

/* Split t into the nodes before n and the others. */
static void split(struct vgpu_buffer *t, const struct vgpu_buffer *n, struct vgpu_buffer **l,
		  struct vgpu_buffer **r)
{
	if (!t) {
		*l = *r = NULL;
	} else if (before(t, n)) {
		split(t->it_right, n, &t->it_right, r);
		update(t);
		*l = t;
	} else {
		split(t->it_left, n, l, &t->it_left);
		update(t);
		*r = t;
	}
}

static struct vgpu_buffer *tree_insert(struct vgpu_buffer *t, struct vgpu_buffer *n)
{
	struct vgpu_buffer *l, *r;

	n->it_left = n->it_right = NULL;
	update(n);
	split(t, n, &l, &r);
	return merge(merge(l, n), r);
}

static struct vgpu_buffer *tree_remove(struct vgpu_buffer *t, struct vgpu_buffer *n)
{
	if (!t)
		return NULL;
	if (t == n)
		return merge(t->it_left, t->it_right);
	if (before(n, t))
		t->it_left = tree_remove(t->it_left, n);
	else
		t->it_right = tree_remove(t->it_right, n);
	update(t);
	return t;
}

/* An entry with these flags covering [a, b), or NULL. */
static struct vgpu_buffer *find_cover(struct vgpu_buffer *t, uintptr_t a, uintptr_t b,
				      unsigned int flags)
{
	struct vgpu_buffer *hit;

	if (!t || t->it_max < b)
		return NULL;
	hit = find_cover(t->it_left, a, b, flags);
	if (hit)
		return hit;
	if (t->start > a)
		return NULL; /* every node to the right starts after a too */
	if (t->end >= b && t->cache_flags == flags)
		return t;
	return find_cover(t->it_right, a, b, flags);
}

/* Any entry overlapping [a, b), or NULL. */
static struct vgpu_buffer *find_overlap(struct vgpu_buffer *t, uintptr_t a, uintptr_t b)
{
	struct vgpu_buffer *hit;

	if (!t || t->it_max <= a)
		return NULL;
	hit = find_overlap(t->it_left, a, b);
	if (hit)
		return hit;
	if (t->start >= b)
		return NULL;
	if (t->end > a)
		return t;
	return find_overlap(t->it_right, a, b);
}

/* ---- LRU of unused entries ---- */

static void lru_add(struct vgpu_rcache *c, struct vgpu_buffer *b)
{
	c->lru_bytes += b->end - b->start;
	b->lru_next = NULL;
	b->lru_prev = c->lru_tail;
	if (c->lru_tail)
		c->lru_tail->lru_next = b;
	else
		c->lru = b;
	c->lru_tail = b;
}

static void lru_del(struct vgpu_rcache *c, struct vgpu_buffer *b)
{
	c->lru_bytes -= b->end - b->start;
	if (b->lru_prev)
		b->lru_prev->lru_next = b->lru_next;
	else
		c->lru = b->lru_next;
	if (b->lru_next)
		b->lru_next->lru_prev = b->lru_prev;
	else
		c->lru_tail = b->lru_prev;
	b->lru_prev = b->lru_next = NULL;
}

/* Take an entry out of the tree (it is no longer handed out). */
static void forget(struct vgpu_rcache *c, struct vgpu_buffer *b)
{
	c->root = tree_remove(c->root, b);
	b->stale = true;
	c->bytes -= b->end - b->start;
	c->entries--;
}

/* Destroy unused entries, oldest first, while they are over the budget.
 * A submit still in flight keeps an evicted entry's pages until it retires
 * (the memory is still the caller's: its copy-back is wanted). */
static void evict(struct vgpu_rcache *c)
{
	while (c->lru && c->lru_bytes > c->budget) {
		struct vgpu_buffer *b = c->lru;

		lru_del(c, b);
		forget(c, b);
		c->evictions++;
		b->cached = false;
		vgpu_buffer_destroy_locked(b);
	}
}

/* ---- API ---- */

static int check_dev(struct vgpu_device *dev, const char *fn)
{
	if (!dev)
		return vgpu_fail(-EINVAL, "%s: dev is NULL", fn);
	return vgpu_dev_check(dev, fn);
}

VGPU_EXPORT int vgpu_cache_configure(struct vgpu_device *dev, const struct vgpu_cache_config *cfg)
{
	int err = check_dev(dev, "vgpu_cache_configure");

	if (err)
		return err;
	if (!cfg || cfg->struct_size < offsetof(struct vgpu_cache_config, max_bytes) +
	    sizeof(cfg->max_bytes))
		return vgpu_fail(-EINVAL, "vgpu_cache_configure: cfg NULL or struct_size too small");
	pthread_mutex_lock(&dev->lock);
	dev->cache.budget = cfg->max_bytes;
	evict(&dev->cache);
	pthread_mutex_unlock(&dev->lock);
	return 0;
}

VGPU_EXPORT int vgpu_cache_get_stats(struct vgpu_device *dev, struct vgpu_cache_stats *stats)
{
	struct vgpu_cache_stats s = { .struct_size = sizeof(s) };
	int err = check_dev(dev, "vgpu_cache_get_stats");
	size_t n;

	if (err)
		return err;
	if (!stats || stats->struct_size < offsetof(struct vgpu_cache_stats, bytes) +
	    sizeof(stats->bytes))
		return vgpu_fail(-EINVAL, "vgpu_cache_get_stats: stats NULL or struct_size too "
				 "small");
	pthread_mutex_lock(&dev->lock);
	s.hits = dev->cache.hits;
	s.misses = dev->cache.misses;
	s.evictions = dev->cache.evictions;
	s.invalidated = dev->cache.invalidated;
	s.entries = dev->cache.entries;
	s.bytes = dev->cache.bytes;
	pthread_mutex_unlock(&dev->lock);
	n = stats->struct_size < sizeof(s) ? stats->struct_size : sizeof(s);
	memcpy((char *)stats + sizeof(s.struct_size), (char *)&s + sizeof(s.struct_size),
	       n - sizeof(s.struct_size));
	return 0;
}

/* A pending registration with these flags covering [a, b), or NULL. */
static struct vgpu_rcache_pending *pending_cover(struct vgpu_rcache *c, uintptr_t a, uintptr_t b,
						  unsigned int flags)
{
	for (struct vgpu_rcache_pending *p = c->pending; p; p = p->next)
		if (p->flags == flags && p->start <= a && p->end >= b)
			return p;
	return NULL;
}

/* Any pending registration with these flags overlapping [a, b). */
static bool pending_overlap(struct vgpu_rcache *c, uintptr_t a, uintptr_t b, unsigned int flags)
{
	for (struct vgpu_rcache_pending *p = c->pending; p; p = p->next)
		if (p->flags == flags && p->start < b && a < p->end)
			return true;
	return false;
}

/* Every entry with these flags overlapping [a, b) into v (up to cap);
 * returns how many there are (more than cap: only cap were stored). */
static size_t collect(struct vgpu_buffer *t, uintptr_t a, uintptr_t b, unsigned int flags,
		      struct vgpu_buffer **v, size_t n, size_t cap)
{
	if (!t || t->it_max <= a)
		return n;
	n = collect(t->it_left, a, b, flags, v, n, cap);
	if (t->start >= b)
		return n;
	if (t->end > a && t->cache_flags == flags) {
		if (n < cap)
			v[n] = t;
		n++;
	}
	return collect(t->it_right, a, b, flags, v, n, cap);
}

#define COVER_MAX 64u

/*
 * Grow [*start, *end) over every entry with these flags it overlaps (and
 * what those overlap in turn): one registration then serves all of them
 * and the kernel pins each page once. Past COVER_MAX overlapping entries
 * the range stays as it is (a registration of its own, as before).
 */
static void cover_overlaps(struct vgpu_rcache *c, uintptr_t *start, uintptr_t *end,
			   unsigned int flags)
{
	struct vgpu_buffer *v[COVER_MAX];
	uintptr_t s = *start, e = *end;
	bool grew = true;

	while (grew) {
		size_t n = collect(c->root, s, e, flags, v, 0, COVER_MAX);

		if (n > COVER_MAX)
			return;
		grew = false;
		for (size_t i = 0; i < n; i++) {
			if (v[i]->start < s) {
				s = v[i]->start;
				grew = true;
			}
			if (v[i]->end > e) {
				e = v[i]->end;
				grew = true;
			}
		}
	}
	*start = s;
	*end = e;
}

/* Take the entries with these flags inside [start, end) out of the cache
 * (the covering entry replaces them): unused ones are destroyed now, used
 * ones when their last user puts them. */
static void retire_covered(struct vgpu_rcache *c, struct vgpu_buffer *cover, uintptr_t start,
			   uintptr_t end, unsigned int flags)
{
	struct vgpu_buffer *v[COVER_MAX];
	size_t n = collect(c->root, start, end, flags, v, 0, COVER_MAX);

	if (n > COVER_MAX)
		n = COVER_MAX;
	for (size_t i = 0; i < n; i++) {
		struct vgpu_buffer *b = v[i];

		if (b == cover || b->start < start || b->end > end)
			continue;
		forget(c, b);
		if (b->cache_users == 0) {
			lru_del(c, b);
			b->cached = false;
			vgpu_buffer_destroy_locked(b);
		}
	}
}

static void insert_entry(struct vgpu_rcache *c, struct vgpu_buffer *b, uintptr_t start,
			 uintptr_t end, unsigned int flags)
{
	b->cached = true;
	b->cache_flags = flags;
	b->cache_users = 1;
	b->start = start;
	b->end = end;
	c->seed = c->seed * 1103515245u + 12345u;
	b->it_prio = c->seed ^ (uint32_t)(start >> 12);
	c->root = tree_insert(c->root, b);
	c->bytes += end - start;
	c->entries++;
}

VGPU_EXPORT int vgpu_buffer_get(struct vgpu_device *dev, void *ptr, size_t size,
				unsigned int flags, struct vgpu_buffer **out, uint64_t *offset)
{
	struct vgpu_rcache_pending pend;
	struct vgpu_rcache *c;
	struct vgpu_buffer *b;
	uintptr_t a = (uintptr_t)ptr, start, end, want_start, want_end;
	int err = check_dev(dev, "vgpu_buffer_get");

	if (err)
		return err;
	if (!out || !offset)
		return vgpu_fail(-EINVAL, "vgpu_buffer_get: out or offset is NULL");
	*out = NULL;
	if (!ptr || size == 0 || a + size < a || a + size + dev->page_size < a + size)
		return vgpu_fail(-EINVAL, "vgpu_buffer_get: ptr NULL, size 0, or the range wraps");
	if (flags & ~VGPU_BUF_FLAGS_ALL)
		return vgpu_fail(-EINVAL, "vgpu_buffer_get: unknown flags 0x%x",
				 flags & ~VGPU_BUF_FLAGS_ALL);
	want_start = a & ~(uintptr_t)(dev->page_size - 1);
	want_end = (a + size + dev->page_size - 1) & ~(uintptr_t)(dev->page_size - 1);
	c = &dev->cache;

	pthread_mutex_lock(&dev->lock);
	for (;;) {
		b = find_cover(c->root, a, a + size, flags);
		if (b) {
			if (b->cache_users++ == 0)
				lru_del(c, b);
			c->hits++;
			pthread_mutex_unlock(&dev->lock);
			*out = b;
			*offset = a - b->start;
			return 0;
		}
		/* Pages being registered by another thread: wait for them. */
		if (!pending_cover(c, a, a + size, flags) &&
		    !pending_overlap(c, want_start, want_end, flags))
			break;
		pthread_cond_wait(&c->pending_cv, &dev->lock);
	}
	c->misses++;
	start = want_start;
	end = want_end;
	cover_overlaps(c, &start, &end, flags);
	pend = (struct vgpu_rcache_pending){ .next = c->pending, .start = start, .end = end,
					     .flags = flags };
	c->pending = &pend;
	pthread_mutex_unlock(&dev->lock);

	err = vgpu_buffer_from_user(dev, (void *)start, end - start, flags, &b);
	if (err && (start != want_start || end != want_end)) {
		/* The covering range did not register (part of it is no
		 * longer mapped): the request alone, as before. */
		start = want_start;
		end = want_end;
		err = vgpu_buffer_from_user(dev, (void *)start, end - start, flags, &b);
	}
	pthread_mutex_lock(&dev->lock);
	for (struct vgpu_rcache_pending **pp = &c->pending; *pp; pp = &(*pp)->next)
		if (*pp == &pend) {
			*pp = pend.next;
			break;
		}
	pthread_cond_broadcast(&c->pending_cv);
	if (err) {
		pthread_mutex_unlock(&dev->lock);
		return err;
	}
	insert_entry(c, b, start, end, flags);
	retire_covered(c, b, start, end, flags);
	evict(c);
	pthread_mutex_unlock(&dev->lock);
	*out = b;
	*offset = a - start;
	return 0;
}

VGPU_EXPORT void vgpu_buffer_put(struct vgpu_buffer *b)
{
	struct vgpu_device *dev;

	if (!b)
		return;
	dev = b->dev;
	if (vgpu_dev_foreign(dev))
		return;
	pthread_mutex_lock(&dev->lock);
	if (!b->cached) {
		/* Not from vgpu_buffer_get(): an ordinary destroy. */
		vgpu_buffer_destroy_locked(b);
	} else if (b->cache_users == 0) {
		/* One put too many: the entry stays the cache's (destroying it
		 * here would leave it in the tree). */
	} else if (--b->cache_users == 0) {
		if (b->stale) {
			b->cached = false;
			vgpu_buffer_destroy_locked(b);
		} else {
			lru_add(&dev->cache, b);
			evict(&dev->cache);
		}
	}
	pthread_mutex_unlock(&dev->lock);
}

VGPU_EXPORT int vgpu_invalidate(struct vgpu_device *dev, void *addr, size_t len)
{
	struct vgpu_rcache *c;
	struct vgpu_buffer *b;
	uintptr_t a = (uintptr_t)addr;
	int n = 0, err = check_dev(dev, "vgpu_invalidate");

	if (err)
		return err;
	if (len == 0 || a + len < a)
		return vgpu_fail(-EINVAL, "vgpu_invalidate: len 0 or the range wraps");
	c = &dev->cache;
	pthread_mutex_lock(&dev->lock);
	while ((b = find_overlap(c->root, a, a + len))) {
		forget(c, b);
		c->invalidated++;
		n++;
		if (b->cache_users == 0) {
			lru_del(c, b);
			b->cached = false;
			/* The caller is about to release the memory: nothing
			 * may touch it once this returns. */
			vgpu_quiesce_buffer_locked(b);
			vgpu_buffer_destroy_locked(b);
		}
	}
	pthread_mutex_unlock(&dev->lock);
	return n;
}
