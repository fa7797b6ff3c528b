/* See index.h. */
#include "service/registry/index.h"

#include <errno.h>
#include <stdlib.h>

/* A height of 1 + k with probability 4^-k (a quarter of the nodes one level
 * up), from a xorshift64 stream seeded per index. */
static unsigned random_height(spd__index *x)
{
	unsigned h = 1;
	uint64_t r;

	if (x->rnd == 0)
		x->rnd = 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)x;
	x->rnd ^= x->rnd << 13;
	x->rnd ^= x->rnd >> 7;
	x->rnd ^= x->rnd << 17;
	r = x->rnd;
	while (h < SPD__INDEX_LEVELS && (r & 3) == 0) {
		h++;
		r >>= 2;
	}
	return h;
}

static spd__inode *node_new(unsigned height)
{
	spd__inode *n = calloc(1, sizeof *n + height * sizeof n->next[0]);

	if (n != NULL)
		n->height = height;
	return n;
}

/* Fills UPDATE[i] with the last node of level i whose key is < KEY. */
static void find(const spd__index *x, uint64_t key, spd__inode **update)
{
	spd__inode *at = x->head;

	for (int i = SPD__INDEX_LEVELS - 1; i >= 0; i--) {
		if ((unsigned)i >= x->level) {
			update[i] = x->head; /* no node that high */
			continue;
		}
		while (at->next[i] != NULL && at->next[i]->key < key)
			at = at->next[i];
		update[i] = at;
	}
}

int spd__index_insert(spd__index *x, uint64_t key, void *val)
{
	spd__inode *update[SPD__INDEX_LEVELS], *n;
	unsigned h;

	if (x->head == NULL && (x->head = node_new(SPD__INDEX_LEVELS)) == NULL)
		return -ENOMEM;
	h = random_height(x);
	n = node_new(h);
	if (n == NULL)
		return -ENOMEM;
	n->key = key;
	n->val = val;
	find(x, key, update);
	for (unsigned i = 0; i < h; i++) {
		n->next[i] = update[i]->next[i];
		update[i]->next[i] = n;
	}
	if (h > x->level)
		x->level = h;
	x->n++;
	return 0;
}

void spd__index_remove(spd__index *x, uint64_t key)
{
	spd__inode *update[SPD__INDEX_LEVELS], *n;

	if (x->head == NULL)
		return;
	find(x, key, update);
	n = update[0]->next[0];
	if (n == NULL || n->key != key)
		return;
	for (unsigned i = 0; i < n->height; i++)
		update[i]->next[i] = n->next[i];
	free(n);
	x->n--;
}

spd__inode *spd__index_after(const spd__index *x, uint64_t key)
{
	spd__inode *update[SPD__INDEX_LEVELS];

	if (x->head == NULL)
		return NULL;
	if (key == UINT64_MAX)
		return NULL;
	find(x, key + 1, update);
	return update[0]->next[0];
}

void spd__index_release(spd__index *x)
{
	spd__inode *n = x->head;

	while (n != NULL) {
		spd__inode *next = n->next[0];
		free(n);
		n = next;
	}
	*x = (spd__index)SPD__INDEX_INIT;
}
