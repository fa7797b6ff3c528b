/* See map.h. */
#include "service/launcher/map.h"

#include <errno.h>
#include <stdlib.h>

static size_t slot_of(const spd__map *m, uint64_t key)
{
	return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & (m->cap - 1);
}

static int grow(spd__map *m)
{
	size_t cap = m->cap ? 2 * m->cap : 64;
	uint64_t *keys = calloc(cap, sizeof *keys);
	void **vals = calloc(cap, sizeof *vals);
	spd__map old = *m;

	if (keys == NULL || vals == NULL) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	m->keys = keys;
	m->vals = vals;
	m->cap = cap;
	m->n = 0;
	for (size_t i = 0; i < old.cap; i++)
		if (old.vals[i] != NULL)
			spd__map_put(m, old.keys[i], old.vals[i]); /* cannot grow again */
	free(old.keys);
	free(old.vals);
	return 0;
}

int spd__map_put(spd__map *m, uint64_t key, void *val)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap && grow(m) < 0)
		return -ENOMEM;
	for (i = slot_of(m, key); m->vals[i] != NULL; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key) {
			m->vals[i] = val;
			return 0;
		}
	}
	m->keys[i] = key;
	m->vals[i] = val;
	m->n++;
	return 0;
}

void *spd__map_get(const spd__map *m, uint64_t key)
{
	if (m->cap == 0)
		return NULL;
	for (size_t i = slot_of(m, key); m->vals[i] != NULL; i = (i + 1) & (m->cap - 1))
		if (m->keys[i] == key)
			return m->vals[i];
	return NULL;
}

void spd__map_del(spd__map *m, uint64_t key)
{
	size_t i, j, mask = m->cap - 1;

	if (m->cap == 0)
		return;
	for (i = slot_of(m, key); m->vals[i] != NULL && m->keys[i] != key; i = (i + 1) & mask)
		;
	if (m->vals[i] == NULL)
		return;
	m->vals[i] = NULL;
	m->n--;
	/* Backward shift: move up every entry of the run after I that would not
	 * be found any more across the hole. */
	for (j = (i + 1) & mask; m->vals[j] != NULL; j = (j + 1) & mask) {
		size_t home = slot_of(m, m->keys[j]);
		/* Whether HOME lies cyclically in (I, J]: then it stays. */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		m->keys[i] = m->keys[j];
		m->vals[i] = m->vals[j];
		m->vals[j] = NULL;
		i = j;
	}
}

void spd__map_release(spd__map *m)
{
	free(m->keys);
	free(m->vals);
	*m = (spd__map)SPD__MAP_INIT;
}
