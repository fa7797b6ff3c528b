/* ListProcesses over the retained records (see registry.h). */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "service/common/clock.h"

#include "service/registry/registry_impl.h"

static bool matches(const spd__entry *e, const spd_list_query *q)
{
	bool state_ok = q->state_count == 0;

	if (q->target != NULL && q->target[0] != '\0' && strcmp(e->p.target, q->target) != 0)
		return false;
	for (size_t i = 0; i < q->state_count && !state_ok; i++)
		state_ok = e->p.state == q->states[i];
	return state_ok && spd__labels_match(&e->p, q->selector, q->selector_count);
}

/* How long a page waits for the commit of the ends it shows (journal.h):
 * a commit takes milliseconds, and a failing store holds nothing. */
#define HELD_WAIT_NS (2 * 1000000000LL)

/* The first record of the page after AFTER_KEY. */
static spd__entry *page_start(spd_registry *r, uint64_t after_key)
{
	spd__entry *e = r->oldest;

	if (after_key != 0) {
		spd__entry *at = spd__find_key(r, after_key);
		if (at != NULL)
			return at->newer;
		while (e != NULL && e->p.key <= after_key)
			e = e->newer;
	}
	return e;
}

/* Whether the page Q asks for shows an end, or a record, not committed yet. */
static bool page_held(spd_registry *r, const spd_list_query *q)
{
	size_t n = 0;

	for (spd__entry *e = page_start(r, q->after_key); e != NULL && n < q->page_size;
	     e = e->newer) {
		if (!matches(e, q))
			continue;
		if (e->held || e->unconfirmed)
			return true;
		n++;
	}
	return false;
}

void spd_registry_list(spd_registry *r, const spd_list_query *q, spd_watch_fn fn, void *ctx,
		       uint64_t *next_key)
{
	int64_t deadline = spd_clock_mono_ns() + HELD_WAIT_NS;
	uint64_t last = 0;
	size_t n = 0;
	spd__entry *e;

	*next_key = 0;
	pthread_mutex_lock(&r->mu);
	/* A page shows no end, and no record, before it is committed (SPEC §12
	 * "Store", journal.h); after HELD_WAIT_NS it shows them anyway rather
	 * than never answer. */
	while (r->has_journal && page_held(r, q)) {
		struct timespec ts = {.tv_sec = deadline / 1000000000,
				      .tv_nsec = deadline % 1000000000};
		if (pthread_cond_timedwait(&r->journaled, &r->mu, &ts) == ETIMEDOUT)
			break;
	}
	/* Keys grow with creation order, which is the list's order. */
	e = page_start(r, q->after_key);
	for (; e != NULL; e = e->newer) {
		if (!matches(e, q))
			continue;
		if (n == q->page_size) {
			*next_key = last; /* more match: continue after the last returned */
			break;
		}
		spd_watch_event ev = {
			.p = &e->p, .note = SPD_NOTE_SNAPSHOT, .terminal = spd_state_terminal(e->p.state),
		};
		fn(ctx, &ev);
		last = e->p.key;
		n++;
	}
	pthread_mutex_unlock(&r->mu);
}
