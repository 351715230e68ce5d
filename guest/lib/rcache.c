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
 * are over the budget. Everything runs under dev->lock.
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

/* Destroy unused entries, oldest first, while over the budget. */
static void evict(struct vgpu_rcache *c)
{
	while (c->lru && c->bytes > c->budget) {
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

VGPU_EXPORT int vgpu_buffer_get(struct vgpu_device *dev, void *ptr, size_t size,
				unsigned int flags, struct vgpu_buffer **out, uint64_t *offset)
{
	struct vgpu_rcache *c;
	struct vgpu_buffer *b;
	uintptr_t a = (uintptr_t)ptr, start, end;
	int err = check_dev(dev, "vgpu_buffer_get");

	if (err)
		return err;
	if (!out || !offset)
		return vgpu_fail(-EINVAL, "vgpu_buffer_get: out or offset is NULL");
	*out = NULL;
	if (!ptr || size == 0 || a + size < a || a + size + dev->page_size < a + size)
		return vgpu_fail(-EINVAL, "vgpu_buffer_get: ptr NULL, size 0, or the range wraps");
	start = a & ~(uintptr_t)(dev->page_size - 1);
	end = (a + size + dev->page_size - 1) & ~(uintptr_t)(dev->page_size - 1);
	c = &dev->cache;

	pthread_mutex_lock(&dev->lock);
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
	c->misses++;
	pthread_mutex_unlock(&dev->lock);

	err = vgpu_buffer_from_user(dev, (void *)start, end - start, flags, &b);
	if (err)
		return err;
	pthread_mutex_lock(&dev->lock);
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
			vgpu_buffer_destroy_locked(b);
		}
	}
	pthread_mutex_unlock(&dev->lock);
	return n;
}
