/* A hash map from a 64-bit key (a child's key, a pid) to a pointer: the
 * launcher's O(1) lookups of its children by key and by pid, and of the
 * strays it killed. Open addressing, linear probing, deletion by backward
 * shift (no tombstones); grows at 1/2 load. Single-threaded. */
#ifndef SPAWND_LAUNCHER_MAP_H
#define SPAWND_LAUNCHER_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct spd__map {
	uint64_t *keys;
	void **vals;     /* NULL: an empty slot */
	size_t cap;      /* 0 or a power of two */
	size_t n;
} spd__map;

#define SPD__MAP_INIT {NULL, NULL, 0, 0}

/* Maps KEY to VAL (not NULL), replacing what it mapped to. 0 or -ENOMEM. */
int spd__map_put(spd__map *m, uint64_t key, void *val);
/* What KEY maps to, or NULL. */
void *spd__map_get(const spd__map *m, uint64_t key);
/* Forgets KEY (nothing if absent). */
void spd__map_del(spd__map *m, uint64_t key);
/* Frees the table (not the values). */
void spd__map_release(spd__map *m);

#endif
