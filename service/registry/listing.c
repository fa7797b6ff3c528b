/* ListProcesses over the retained records (see registry.h), and the indexes
 * that make a filtered page cost what it shows, not what is retained: every
 * record is in the index of its state, and in that of its target name and
 * state, in key (= creation) order. A page with a target or states merges the
 * few indexes that can match (at most one per state); a page with neither
 * walks the creation list, where every record matches but for labels. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service/common/clock.h"
#include "service/common/log.h"

#include "service/registry/registry_impl.h"

/* ---- the indexes ---------------------------------------------------------------- */

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % NAME_BUCKETS;
}

static spd__name_index *find_name(spd_registry *r, const char *name)
{
	for (spd__name_index *n = r->names[name_hash(name)]; n != NULL; n = n->next)
		if (strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

static bool state_ok(spd_state s)
{
	return (int)s > 0 && (int)s < SPD_STATE_COUNT;
}

static void broken(spd_registry *r)
{
	if (!r->index_broken)
		spd_log(SPD_LOG_ERROR, "out of memory indexing records; listings scan from now on",
			SPD_LOG_END);
	r->index_broken = true;
}

void spd__index_add(spd_registry *r, spd__entry *e)
{
	spd__name_index *n;

	if (r->index_broken || !state_ok(e->p.state) || e->p.target == NULL)
		return;
	n = find_name(r, e->p.target);
	if (n == NULL) {
		n = calloc(1, sizeof *n);
		if (n == NULL || (n->name = strdup(e->p.target)) == NULL) {
			free(n);
			broken(r);
			return;
		}
		n->next = r->names[name_hash(n->name)];
		r->names[name_hash(n->name)] = n;
	}
	if (spd__index_insert(&r->by_state[e->p.state], e->p.key, e) < 0) {
		broken(r);
		return;
	}
	if (spd__index_insert(&n->by_state[e->p.state], e->p.key, e) < 0) {
		spd__index_remove(&r->by_state[e->p.state], e->p.key);
		broken(r);
	}
}

void spd__index_del(spd_registry *r, spd__entry *e)
{
	spd__name_index *n;

	if (r->index_broken || !state_ok(e->p.state) || e->p.target == NULL)
		return;
	spd__index_remove(&r->by_state[e->p.state], e->p.key);
	n = find_name(r, e->p.target);
	if (n != NULL)
		spd__index_remove(&n->by_state[e->p.state], e->p.key);
}

void spd__indexes_release(spd_registry *r)
{
	for (int s = 0; s < SPD_STATE_COUNT; s++)
		spd__index_release(&r->by_state[s]);
	for (size_t b = 0; b < NAME_BUCKETS; b++) {
		while (r->names[b] != NULL) {
			spd__name_index *n = r->names[b];
			r->names[b] = n->next;
			for (int s = 0; s < SPD_STATE_COUNT; s++)
				spd__index_release(&n->by_state[s]);
			free(n->name);
			free(n);
		}
	}
}

/* ---- cursors: records in key order from a few indexes, or all ------------------ */

typedef struct cursor {
	spd__inode *at[SPD_STATE_COUNT]; /* each source's next node */
	size_t n;
	bool scan;                       /* the creation list instead */
	spd__entry *next;                /* scan: the next record */
	bool empty;                      /* nothing can match */
} cursor;

/* The first record after AFTER_KEY in the creation list. */
static spd__entry *list_after(spd_registry *r, uint64_t after_key)
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

/* A cursor over what Q can match after AFTER_KEY, or over TERMINAL states
 * only (Q NULL). */
static void cursor_init(cursor *c, spd_registry *r, const spd_list_query *q, uint64_t after_key)
{
	bool want[SPD_STATE_COUNT] = {false};
	spd__name_index *name = NULL;
	bool any_state = true;

	memset(c, 0, sizeof *c);
	if (q == NULL) {
		for (int s = 1; s < SPD_STATE_COUNT; s++)
			want[s] = spd_state_terminal((spd_state)s);
		any_state = false;
	} else {
		/* Repeated states count once: each index is merged once. */
		for (size_t i = 0; i < q->state_count; i++) {
			any_state = false;
			if (state_ok(q->states[i]))
				want[q->states[i]] = true;
		}
	}
	if (r->index_broken || (q != NULL && any_state && (q->target == NULL || q->target[0] == '\0'))) {
		c->scan = true;
		c->next = list_after(r, after_key);
		return;
	}
	if (q != NULL && q->target != NULL && q->target[0] != '\0') {
		name = find_name(r, q->target);
		if (name == NULL) {
			c->empty = true;
			return;
		}
	}
	for (int s = 1; s < SPD_STATE_COUNT; s++) {
		spd__inode *at;
		if (!any_state && !want[s])
			continue;
		at = spd__index_after(name != NULL ? &name->by_state[s] : &r->by_state[s], after_key);
		if (at != NULL)
			c->at[c->n++] = at;
	}
}

/* The next record (the smallest key of the sources), or NULL. The cursor
 * keeps no pointer to the record it returns: the caller may remove it. */
static spd__entry *cursor_next(cursor *c)
{
	size_t min = 0;
	spd__entry *e;

	if (c->empty)
		return NULL;
	if (c->scan) {
		e = c->next;
		if (e != NULL)
			c->next = e->newer;
		return e;
	}
	if (c->n == 0)
		return NULL;
	for (size_t i = 1; i < c->n; i++)
		if (c->at[i]->key < c->at[min]->key)
			min = i;
	e = c->at[min]->val;
	c->at[min] = c->at[min]->next[0];
	if (c->at[min] == NULL)
		c->at[min] = c->at[--c->n];
	return e;
}

spd__entry *spd__oldest_terminal_after(spd_registry *r, uint64_t after)
{
	cursor c;
	spd__entry *e;

	cursor_init(&c, r, NULL, after);
	while ((e = cursor_next(&c)) != NULL)
		if (spd_state_terminal(e->p.state))
			return e; /* a scan (index broken) walks past live ones */
	return NULL;
}

/* ---- ListProcesses ---------------------------------------------------------------- */

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

/* Whether the page Q asks for shows an end, or a record, not committed yet. */
static bool page_held(spd_registry *r, const spd_list_query *q)
{
	size_t n = 0;
	cursor c;
	spd__entry *e;

	cursor_init(&c, r, q, q->after_key);
	while (n < q->page_size && (e = cursor_next(&c)) != NULL) {
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
	cursor c;

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
	cursor_init(&c, r, q, q->after_key);
	while ((e = cursor_next(&c)) != NULL) {
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
