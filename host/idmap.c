/* SPDX-License-Identifier: MIT */
/* idmap.c - open addressing with linear probing. */
#include "idmap.h"

#include <stdlib.h>
#include <string.h>

void idmap_init(struct idmap *m)
{
	memset(m, 0, sizeof(*m));
}

void idmap_free(struct idmap *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	idmap_init(m);
}

static size_t hash(uint32_t k)
{
	uint64_t h = (uint64_t)k * 0x9E3779B97F4A7C15ull;

	return (size_t)(h >> 32);
}

static long find(const struct idmap *m, uint32_t key)
{
	if (!m->cap)
		return -1;
	for (size_t i = hash(key) & (m->cap - 1), n = 0; n < m->cap;
	     i = (i + 1) & (m->cap - 1), n++) {
		if (m->used[i] == 0)
			return -1;
		if (m->used[i] == 1 && m->keys[i] == key)
			return (long)i;
	}
	return -1;
}

void *idmap_get(const struct idmap *m, uint32_t key)
{
	long i = find(m, key);

	return i < 0 ? NULL : m->vals[i];
}

static int grow(struct idmap *m, size_t ncap)
{
	struct idmap n;

	idmap_init(&n);
	n.cap = ncap;
	n.keys = calloc(ncap, sizeof(*n.keys));
	n.vals = calloc(ncap, sizeof(*n.vals));
	n.used = calloc(ncap, 1);
	if (!n.keys || !n.vals || !n.used) {
		idmap_free(&n);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (m->used[i] != 1)
			continue;
		size_t j = hash(m->keys[i]) & (ncap - 1);

		while (n.used[j])
			j = (j + 1) & (ncap - 1);
		n.used[j] = 1;
		n.keys[j] = m->keys[i];
		n.vals[j] = m->vals[i];
		n.count++;
	}
	idmap_free(m);
	*m = n;
	return 0;
}

int idmap_put(struct idmap *m, uint32_t key, void *val)
{
	size_t j;

	if ((m->count + m->dead + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap : 16;

		while ((m->count + 1) * 2 > ncap)
			ncap *= 2;
		if (ncap < m->cap)
			ncap = m->cap;
		if (grow(m, ncap))
			return -1;
	}
	j = hash(key) & (m->cap - 1);
	while (m->used[j] == 1)
		j = (j + 1) & (m->cap - 1);
	if (m->used[j] == 2)
		m->dead--;
	m->used[j] = 1;
	m->keys[j] = key;
	m->vals[j] = val;
	m->count++;
	return 0;
}

void *idmap_del(struct idmap *m, uint32_t key)
{
	long i = find(m, key);
	void *v;

	if (i < 0)
		return NULL;
	v = m->vals[i];
	m->used[i] = 2;
	m->vals[i] = NULL;
	m->count--;
	m->dead++;
	return v;
}

long idmap_next(const struct idmap *m, size_t *pos, uint32_t *key, void **val)
{
	for (size_t i = *pos; i < m->cap; i++) {
		if (m->used[i] == 1) {
			*pos = i + 1;
			if (key)
				*key = m->keys[i];
			if (val)
				*val = m->vals[i];
			return (long)i;
		}
	}
	*pos = m->cap;
	return -1;
}
