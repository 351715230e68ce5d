/* SPDX-License-Identifier: MIT */
/* idmap.h - small hash map from non-zero uint32 ids to pointers. */
#ifndef HOSTD_IDMAP_H
#define HOSTD_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap {
	uint32_t *keys;     /* 0: empty, UINT32_MAX never used as tombstone: see .c */
	void **vals;
	uint8_t *used;      /* 0 empty, 1 live, 2 deleted */
	size_t cap;         /* power of two */
	size_t count;
	size_t dead;
};

void idmap_init(struct idmap *m);
void idmap_free(struct idmap *m);
void *idmap_get(const struct idmap *m, uint32_t key);
/* 0 on success, -1 on allocation failure. key must not be present. */
int idmap_put(struct idmap *m, uint32_t key, void *val);
void *idmap_del(struct idmap *m, uint32_t key);
/* Iterate: returns the next live slot index >= *pos, or -1 when done. */
long idmap_next(const struct idmap *m, size_t *pos, uint32_t *key, void **val);

#endif
