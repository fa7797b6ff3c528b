/* A bump allocator for building one reply message: protobuf-c messages point
 * into it and it is freed at once after packing. Not thread-safe. */
#ifndef SPAWND_RPC_ARENA_H
#define SPAWND_RPC_ARENA_H

#include <stddef.h>

typedef struct spd_arena_block spd_arena_block;

typedef struct spd_arena {
	spd_arena_block *blocks;
	int failed;  /* an allocation failed: the message must not be sent */
} spd_arena;

#define SPD_ARENA_INIT {NULL, 0}

/* Zeroed memory, or NULL (and failed set). */
void *spd_arena_alloc(spd_arena *a, size_t size);
/* A copy of S (NULL -> ""), or NULL. */
char *spd_arena_strdup(spd_arena *a, const char *s);
void spd_arena_release(spd_arena *a);

#endif
