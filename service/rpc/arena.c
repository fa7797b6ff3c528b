#include "service/rpc/arena.h"

#include <stdlib.h>
#include <string.h>

struct spd_arena_block {
	spd_arena_block *next;
	size_t used, cap;
	max_align_t data[];
};

#define BLOCK_SIZE 4096u

void *spd_arena_alloc(spd_arena *a, size_t size)
{
	spd_arena_block *b = a->blocks;
	size_t need = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
	void *p;

	if (b == NULL || b->cap - b->used < need) {
		size_t cap = need > BLOCK_SIZE ? need : BLOCK_SIZE;
		b = malloc(sizeof *b + cap);
		if (b == NULL) {
			a->failed = 1;
			return NULL;
		}
		b->used = 0;
		b->cap = cap;
		b->next = a->blocks;
		a->blocks = b;
	}
	p = (char *)b->data + b->used;
	b->used += need;
	memset(p, 0, size);
	return p;
}

char *spd_arena_strdup(spd_arena *a, const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	char *p = spd_arena_alloc(a, n + 1);

	if (p != NULL && n > 0)
		memcpy(p, s, n);
	return p;
}

void spd_arena_release(spd_arena *a)
{
	while (a->blocks != NULL) {
		spd_arena_block *b = a->blocks;
		a->blocks = b->next;
		free(b);
	}
	a->failed = 0;
}
