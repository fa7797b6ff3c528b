/* A byte sink that keeps the last CAP bytes written and counts the rest: the
 * stdout/stderr tails of a process. Not thread-safe; embedded by value. */
#ifndef SPAWND_COMMON_TAIL_H
#define SPAWND_COMMON_TAIL_H

#include <stddef.h>
#include <stdint.h>

typedef struct spd_tail {
	char *ring;       /* cap bytes, allocated on first write */
	size_t cap;
	size_t start;     /* index of the oldest kept byte */
	size_t len;       /* bytes kept */
	uint64_t total;   /* bytes ever written */
} spd_tail;

#define SPD_TAIL_INIT(capacity) {NULL, (capacity), 0, 0, 0}

/* Appends; drops the oldest bytes beyond cap. Returns 0 or -ENOMEM. */
int spd_tail_write(spd_tail *t, const void *data, size_t len);

/* Copies the last min(MAX, kept) bytes, oldest first, into OUT; returns the count. */
size_t spd_tail_copy(const spd_tail *t, void *out, size_t max);

/* Bytes written but no longer kept. */
uint64_t spd_tail_dropped(const spd_tail *t);

void spd_tail_release(spd_tail *t);

#endif
