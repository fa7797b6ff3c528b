/* The per-process event ring: see ring.h. */
#include "service/registry/ring.h"

#include <stdlib.h>
#include <string.h>

#define RING_EVENTS 64u

static spd__ring_event *ring_at(const spd__ring *g, size_t i)
{
	return &g->ev[(g->start + i) % g->cap];
}

/* Notes that the event numbered SEQ is not retained (evicted or never kept). */
static void forget_event(spd__ring *g, uint64_t seq, bool output)
{
	if (seq > g->evicted_max)
		g->evicted_max = seq;
	if (!output && seq > g->evicted_state_max)
		g->evicted_state_max = seq;
}

static void drop_oldest(spd__ring *g, size_t *total)
{
	spd__ring_event *old = ring_at(g, 0);

	forget_event(g, old->seq, old->output);
	g->bytes -= old->len;
	*total -= old->len;
	free(old->data);
	old->data = NULL;
	g->start = (g->start + 1) % g->cap;
	g->len--;
}

/* Drops the oldest OUTPUT event, keeping the state events around it (they are
 * few and small, and a watcher without output must not see a gap for them). */
static void drop_oldest_output(spd__ring *g, size_t *total)
{
	size_t i = 0;

	while (i < g->len && !ring_at(g, i)->output)
		i++;
	if (i == g->len)
		return;
	if (i == 0) {
		drop_oldest(g, total);
		return;
	}
	forget_event(g, ring_at(g, i)->seq, true);
	g->bytes -= ring_at(g, i)->len;
	*total -= ring_at(g, i)->len;
	free(ring_at(g, i)->data);
	for (; i + 1 < g->len; i++)
		*ring_at(g, i) = *ring_at(g, i + 1);
	g->len--;
}

/* Appends REC (taking its data). Output beyond the byte budget goes first,
 * oldest first; beyond the event budget, the oldest event of any kind. On
 * allocation failure everything goes: a later resume then sees a gap, which
 * is the truth. */
static void push(spd__ring *g, size_t *total, spd__ring_event rec)
{
	while (g->bytes > 0 && g->bytes + rec.len > SPD__RING_OUTPUT_BYTES)
		drop_oldest_output(g, total);
	if (g->len == RING_EVENTS)
		drop_oldest(g, total);
	if (g->len == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 4;
		spd__ring_event *n = calloc(cap, sizeof *n);
		if (n == NULL) {
			free(rec.data);
			while (g->len > 0)
				drop_oldest(g, total);
			forget_event(g, rec.seq, rec.output);
			return;
		}
		for (size_t i = 0; i < g->len; i++)
			n[i] = *ring_at(g, i);
		free(g->ev);
		g->ev = n;
		g->cap = cap;
		g->start = 0;
	}
	*ring_at(g, g->len) = rec;
	g->len++;
	g->bytes += rec.len;
	*total += rec.len;
}

void spd__ring_push_state(spd__ring *g, size_t *total, const spd_process *p)
{
	spd__ring_event rec = {
		.seq = p->seq,
		.state = p->state,
		.destroyed = p->destroyed,
		.canceled = p->canceled,
		.pid = p->pid,
		.started_ns = p->started_ns,
	};

	push(g, total, rec);
}

void spd__ring_push_output(spd__ring *g, size_t *total, uint64_t seq, int stream,
			   uint64_t offset, const void *chunk, size_t len)
{
	spd__ring_event rec = {.seq = seq, .output = true, .stream = stream, .offset = offset};

	rec.data = malloc(len ? len : 1);
	if (rec.data == NULL) {
		forget_event(g, seq, true); /* a resume will see a gap: the truth */
		return;
	}
	memcpy(rec.data, chunk, len);
	rec.len = len;
	push(g, total, rec);
}

void spd__ring_cut(spd__ring *g, size_t *total)
{
	while (g->len > 1)
		drop_oldest(g, total);
}

void spd__ring_release(spd__ring *g, size_t *total)
{
	while (g->len > 0)
		drop_oldest(g, total);
	free(g->ev);
	g->ev = NULL;
	g->cap = 0;
	g->start = 0;
}

/* The record as it was when REC's state was entered: what was first sent. */
static void replay_state(const spd_process *now, const spd__ring_event *rec,
			 spd__ring_replay_fn fn, void *ctx)
{
	spd_process then = *now;

	then.seq = rec->seq;
	if (!spd_state_terminal(rec->state)) {
		then.state = rec->state;
		then.destroyed = rec->destroyed;
		then.canceled = rec->canceled;
		then.pid = rec->pid;
		then.started_ns = rec->started_ns;
		then.ended_ns = 0;
		then.ran = then.threw = false;
		memset(&then.error, 0, sizeof then.error);
		then.exit_code = then.signal = 0;
		then.utime_us = then.stime_us = then.maxrss_bytes = 0;
		then.result = NULL;
		then.result_len = 0;
		then.stdout_tail = then.stderr_tail = NULL;
		then.stdout_len = then.stderr_len = 0;
		then.stdout_head = then.stderr_head = NULL;
		then.stdout_head_len = then.stderr_head_len = 0;
		then.stdout_bytes = then.stderr_bytes = 0;
		then.output_truncated = false;
	}
	fn(ctx, &then, rec);
}

bool spd__ring_replay(const spd__ring *g, const spd_process *now, uint64_t after,
		      bool with_output, spd__ring_replay_fn fn, void *ctx)
{
	if ((with_output ? g->evicted_max : g->evicted_state_max) > after)
		return false;
	for (size_t i = 0; i < g->len; i++) {
		const spd__ring_event *rec = ring_at(g, i);
		if (rec->seq <= after)
			continue;
		if (!rec->output) {
			replay_state(now, rec, fn, ctx);
		} else if (with_output) {
			spd_process then = *now;
			then.seq = rec->seq;
			fn(ctx, &then, rec);
		}
	}
	return true;
}
