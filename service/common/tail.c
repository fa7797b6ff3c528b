#include "service/common/tail.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int spd_tail_write(spd_tail *t, const void *data, size_t len)
{
	const char *p = data;

	t->total += len;
	if (t->cap == 0 || len == 0)
		return 0;
	if (t->ring == NULL && (t->ring = malloc(t->cap)) == NULL)
		return -ENOMEM;
	if (len >= t->cap) {
		memcpy(t->ring, p + len - t->cap, t->cap);
		t->start = 0;
		t->len = t->cap;
		return 0;
	}
	for (size_t i = 0; i < len;) {
		size_t end = (t->start + t->len) % t->cap;
		size_t room = t->cap - end;
		size_t n = len - i < room ? len - i : room;
		memcpy(t->ring + end, p + i, n);
		i += n;
		t->len += n;
		if (t->len > t->cap) {
			t->start = (t->start + t->len - t->cap) % t->cap;
			t->len = t->cap;
		}
	}
	return 0;
}

size_t spd_tail_copy(const spd_tail *t, void *out, size_t max)
{
	size_t n = t->len < max ? t->len : max;
	size_t from = (t->start + t->len - n) % (t->cap ? t->cap : 1);
	size_t first = t->cap - from < n ? t->cap - from : n;

	if (n == 0)
		return 0;
	memcpy(out, t->ring + from, first);
	memcpy((char *)out + first, t->ring, n - first);
	return n;
}

uint64_t spd_tail_dropped(const spd_tail *t)
{
	return t->total - t->len;
}

void spd_tail_release(spd_tail *t)
{
	free(t->ring);
	t->ring = NULL;
	t->start = t->len = 0;
}
