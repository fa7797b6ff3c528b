/* An ordered index of records by key: a skip list, for ListProcesses' filters
 * and eviction (registry_impl.h keeps one per state, and one per state of
 * each target name). Insert, remove and "first key after K" are O(log n)
 * expected; the next key is O(1). Not thread-safe: the registry's lock
 * guards it. */
#ifndef SPAWND_REGISTRY_INDEX_H
#define SPAWND_REGISTRY_INDEX_H

#include <stddef.h>
#include <stdint.h>

#define SPD__INDEX_LEVELS 20

typedef struct spd__inode {
	uint64_t key;
	void *val;
	unsigned height;
	struct spd__inode *next[]; /* height entries */
} spd__inode;

typedef struct spd__index {
	spd__inode *head;   /* SPD__INDEX_LEVELS high, no key; NULL until first insert */
	unsigned level;     /* levels in use */
	size_t n;
	uint64_t rnd;       /* xorshift state for node heights */
} spd__index;

#define SPD__INDEX_INIT {NULL, 0, 0, 0}

/* Adds KEY -> VAL (KEY not in X). 0 or -ENOMEM (X unchanged). */
int spd__index_insert(spd__index *x, uint64_t key, void *val);
/* Removes KEY if present. */
void spd__index_remove(spd__index *x, uint64_t key);
/* The node with the smallest key > KEY (KEY 0: the first), or NULL. Valid
 * until that node is removed; its next[0] is the one after it. */
spd__inode *spd__index_after(const spd__index *x, uint64_t key);
/* Frees every node (not the values). */
void spd__index_release(spd__index *x);

#endif
