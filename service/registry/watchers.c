/* Watchers, the per-process event ring, replay and watch-all (SPEC §11).
 *
 * Every event a process takes (PENDING at creation, each later state, each
 * OUTPUT chunk) goes into its ring before it is delivered, so that a client
 * that reconnects with after_sequence gets exactly what it missed, or a
 * SNAPSHOT with gap=true when that was evicted. The ring is bounded per
 * process (events and output bytes) and, for ended processes, globally: past
 * RING_TOTAL_BYTES of retained output, the rings of the oldest ended processes
 * are cut down to their terminal event.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "service/registry/registry_impl.h"

#define RING_EVENTS 64u
#define RING_OUTPUT_BYTES (256u * 1024u)
#define RING_TOTAL_BYTES (32u * 1024u * 1024u)

/* Watch ids carry their process's key, so that unwatch finds them at once:
 * key << WATCH_SERIAL_BITS | serial; key 0 = a watch-all subscription. */
#define WATCH_SERIAL_BITS 24

/* ---- the ring ----------------------------------------------------------------- */

static ev_rec *ring_at(const entry *e, size_t i)
{
	return &e->ring[(e->ring_start + i) % e->ring_cap];
}

/* Notes that the event numbered SEQ is not retained (evicted or never kept). */
static void forget_event(entry *e, uint64_t seq, bool output)
{
	if (seq > e->evicted_max)
		e->evicted_max = seq;
	if (!output && seq > e->evicted_state_max)
		e->evicted_state_max = seq;
}

static void ring_drop_oldest(spd_registry *r, entry *e)
{
	ev_rec *old = ring_at(e, 0);

	forget_event(e, old->seq, old->output);
	e->ring_bytes -= old->len;
	r->ring_bytes -= old->len;
	free(old->data);
	old->data = NULL;
	e->ring_start = (e->ring_start + 1) % e->ring_cap;
	e->ring_len--;
}

/* Cuts the rings of the oldest ended processes to their terminal event until
 * the retained output fits RING_TOTAL_BYTES again. */
static void ring_trim_global(spd_registry *r)
{
	for (entry *e = r->oldest; e != NULL && r->ring_bytes > RING_TOTAL_BYTES; e = e->newer)
		if (spd_state_terminal(e->p.state))
			while (e->ring_len > 1)
				ring_drop_oldest(r, e);
}

/* Drops the oldest OUTPUT event, keeping the state events around it (they are
 * few and small, and a watcher without output must not see a gap for them). */
static void ring_drop_oldest_output(spd_registry *r, entry *e)
{
	size_t i = 0;

	while (i < e->ring_len && !ring_at(e, i)->output)
		i++;
	if (i == e->ring_len)
		return;
	if (i == 0) {
		ring_drop_oldest(r, e);
		return;
	}
	forget_event(e, ring_at(e, i)->seq, true);
	e->ring_bytes -= ring_at(e, i)->len;
	r->ring_bytes -= ring_at(e, i)->len;
	free(ring_at(e, i)->data);
	for (; i + 1 < e->ring_len; i++)
		*ring_at(e, i) = *ring_at(e, i + 1);
	e->ring_len--;
}

/* Appends REC (taking its data). Output beyond the byte budget goes first,
 * oldest first; beyond the event budget, the oldest event of any kind. On
 * allocation failure everything goes: a later resume then sees a gap, which
 * is the truth. */
static void ring_push(spd_registry *r, entry *e, ev_rec rec)
{
	while (e->ring_bytes > 0 && e->ring_bytes + rec.len > RING_OUTPUT_BYTES)
		ring_drop_oldest_output(r, e);
	if (e->ring_len == RING_EVENTS)
		ring_drop_oldest(r, e);
	if (e->ring_len == e->ring_cap) {
		size_t cap = e->ring_cap ? 2 * e->ring_cap : 4;
		ev_rec *n = calloc(cap, sizeof *n);
		if (n == NULL) {
			free(rec.data);
			while (e->ring_len > 0)
				ring_drop_oldest(r, e);
			forget_event(e, rec.seq, rec.output);
			return;
		}
		for (size_t i = 0; i < e->ring_len; i++)
			n[i] = *ring_at(e, i);
		free(e->ring);
		e->ring = n;
		e->ring_cap = cap;
		e->ring_start = 0;
	}
	*ring_at(e, e->ring_len) = rec;
	e->ring_len++;
	e->ring_bytes += rec.len;
	r->ring_bytes += rec.len;
	if (r->ring_bytes > RING_TOTAL_BYTES)
		ring_trim_global(r);
}

void spd__entry_release_watch(spd_registry *r, entry *e)
{
	while (e->watchers != NULL) {
		watcher *w = e->watchers;
		e->watchers = w->next;
		free(w);
	}
	while (e->ring_len > 0)
		ring_drop_oldest(r, e);
	free(e->ring);
	e->ring = NULL;
	e->ring_cap = 0;
	spd__live_release(e);
}

void spd__live_release(entry *e)
{
	spd_tail_release(&e->live[0]);
	spd_tail_release(&e->live[1]);
}

void spd__snapshot(entry *e, spd_watch_fn fn, void *ctx, spd_note note)
{
	spd_process view;
	uint8_t *bufs[2] = {NULL, NULL};

	if (spd_state_terminal(e->p.state) || (e->live[0].len == 0 && e->live[1].len == 0)) {
		fn(ctx, &e->p, note, spd_state_terminal(e->p.state));
		return;
	}
	view = e->p;
	for (int i = 0; i < 2; i++) {
		bufs[i] = malloc(e->live[i].len ? e->live[i].len : 1);
		if (bufs[i] == NULL)
			continue;
		if (i == 0) {
			view.stdout_tail = bufs[i];
			view.stdout_len = spd_tail_copy(&e->live[i], bufs[i], e->live[i].len);
		} else {
			view.stderr_tail = bufs[i];
			view.stderr_len = spd_tail_copy(&e->live[i], bufs[i], e->live[i].len);
		}
	}
	view.stdout_bytes = (int64_t)e->live[0].total;
	view.stderr_bytes = (int64_t)e->live[1].total;
	view.output_truncated = spd_tail_dropped(&e->live[0]) || spd_tail_dropped(&e->live[1]);
	fn(ctx, &view, note, false);
	free(bufs[0]);
	free(bufs[1]);
}

/* ---- delivery ----------------------------------------------------------------- */

bool spd__labels_match(const entry *e, char *const *selector, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const char *k = selector[2 * i], *v = selector[2 * i + 1];
		bool found = false;
		for (uint32_t j = 0; j < e->p.label_count && !found; j++)
			found = strcmp(e->p.labels[2 * j], k) == 0 &&
				strcmp(e->p.labels[2 * j + 1], v) == 0;
		if (!found)
			return false;
	}
	return true;
}

void spd__notify_state(spd_registry *r, entry *e)
{
	bool terminal = spd_state_terminal(e->p.state);
	watcher **pp = &e->watchers;
	ev_rec rec = {
		.seq = e->p.seq,
		.state = e->p.state,
		.destroyed = e->p.destroyed,
		.canceled = e->p.canceled,
		.pid = e->p.pid,
		.started_ns = e->p.started_ns,
	};

	ring_push(r, e, rec);
	while (*pp != NULL) {
		watcher *w = *pp;
		bool keep = w->fn(w->ctx, &e->p, SPD_NOTE_STATE, terminal);
		if (!keep || terminal || w->once) {
			*pp = w->next;
			free(w);
		} else {
			pp = &w->next;
		}
	}
	for (watcher *w = r->global; w != NULL; w = w->next)
		if (spd__labels_match(e, w->selector, w->selector_count))
			w->fn(w->ctx, &e->p, SPD_NOTE_STATE, terminal);
}

void spd__notify_output(spd_registry *r, entry *e, int stream, uint64_t offset,
			const void *chunk, size_t len)
{
	ev_rec rec = {.seq = e->p.seq, .output = true, .stream = stream, .offset = offset};

	rec.data = malloc(len ? len : 1);
	if (rec.data != NULL) {
		memcpy(rec.data, chunk, len);
		rec.len = len;
		ring_push(r, e, rec);
	} else {
		forget_event(e, e->p.seq, true); /* a resume will see a gap: the truth */
	}
	if (stream == 1 || stream == 2)
		spd_tail_write(&e->live[stream - 1], chunk, len);
	for (watcher *w = e->watchers; w != NULL; w = w->next)
		if (w->out_fn != NULL)
			w->out_fn(w->ctx, &e->p, stream, offset, chunk, len);
	for (watcher *w = r->global; w != NULL; w = w->next)
		if (w->out_fn != NULL && spd__labels_match(e, w->selector, w->selector_count))
			w->out_fn(w->ctx, &e->p, stream, offset, chunk, len);
}

/* ---- subscriptions ---------------------------------------------------------------- */

static uint64_t new_watch_id(spd_registry *r, uint64_t key)
{
	uint64_t serial = r->next_watch_id++ & ((1u << WATCH_SERIAL_BITS) - 1);

	return key << WATCH_SERIAL_BITS | (serial ? serial : r->next_watch_id++);
}

int spd__add_watcher(spd_registry *r, entry *e, spd_watch_fn fn, spd_output_fn out_fn,
		     void *ctx, uint64_t *id)
{
	watcher *w = calloc(1, sizeof *w);

	if (w == NULL)
		return -ENOMEM;
	w->id = new_watch_id(r, e->p.key);
	w->fn = fn;
	w->out_fn = out_fn;
	w->ctx = ctx;
	w->next = e->watchers;
	e->watchers = w;
	if (id != NULL)
		*id = w->id;
	return 0;
}

/* The record as it was when REC's state was entered: what was first sent. */
static void replay_state(const entry *e, const ev_rec *rec, const spd_watch_spec *ws)
{
	spd_process then = e->p;
	bool terminal = spd_state_terminal(rec->state);

	then.seq = rec->seq;
	if (!terminal) {
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
	ws->fn(ws->ctx, &then, SPD_NOTE_REPLAY, terminal);
}

/* Replays E's retained events after N; false if some that this watcher would
 * get were evicted (output ones count only for a watcher of output). */
static bool replay(const entry *e, uint64_t n, const spd_watch_spec *ws)
{
	if ((ws->out_fn != NULL ? e->evicted_max : e->evicted_state_max) > n)
		return false;
	for (size_t i = 0; i < e->ring_len; i++) {
		const ev_rec *rec = ring_at(e, i);
		if (rec->seq <= n)
			continue;
		if (!rec->output) {
			replay_state(e, rec, ws);
		} else if (ws->out_fn != NULL) {
			spd_process then = e->p;
			then.seq = rec->seq;
			ws->out_fn(ws->ctx, &then, rec->stream, rec->offset, rec->data, rec->len);
		}
	}
	return true;
}

static int watch_one(spd_registry *r, const spd_watch_spec *ws, uint64_t *watch_id)
{
	entry *e = spd__find_id(r, ws->id);
	bool terminal;

	if (e == NULL)
		return -ENOENT;
	if (ws->after_sequence > e->p.seq)
		return -ERANGE; /* a resume point this process never sent (SPEC §12) */
	terminal = spd_state_terminal(e->p.state);
	if (ws->after_sequence == 0)
		spd__snapshot(e, ws->fn, ws->ctx, SPD_NOTE_SNAPSHOT);
	else if (ws->after_sequence < e->p.seq && !replay(e, ws->after_sequence, ws))
		spd__snapshot(e, ws->fn, ws->ctx, SPD_NOTE_SNAPSHOT_GAP);
	if (terminal)
		return 0; /* everything was delivered */
	return spd__add_watcher(r, e, ws->fn, ws->out_fn, ws->ctx, watch_id);
}

static int watch_all(spd_registry *r, const spd_watch_spec *ws, uint64_t *watch_id)
{
	watcher *w = calloc(1, sizeof *w);

	if (w == NULL)
		return -ENOMEM;
	w->selector = calloc(2 * (size_t)ws->selector_count + 1, sizeof *w->selector);
	for (uint32_t i = 0; w->selector != NULL && i < 2 * ws->selector_count; i++) {
		w->selector[i] = strdup(ws->selector[i]);
		if (w->selector[i] == NULL) {
			for (uint32_t j = 0; j < i; j++)
				free(w->selector[j]);
			free(w->selector);
			w->selector = NULL;
		}
	}
	if (w->selector == NULL) {
		free(w);
		return -ENOMEM;
	}
	w->selector_count = ws->selector_count;
	w->id = new_watch_id(r, 0);
	w->fn = ws->fn;
	w->out_fn = ws->out_fn;
	w->ctx = ws->ctx;
	for (entry *e = r->oldest; e != NULL; e = e->newer)
		if (!spd_state_terminal(e->p.state) && spd__labels_match(e, w->selector, w->selector_count))
			spd__snapshot(e, ws->fn, ws->ctx, SPD_NOTE_SNAPSHOT);
	w->next = r->global;
	r->global = w;
	*watch_id = w->id;
	return 0;
}

int spd_registry_watch(spd_registry *r, const spd_watch_spec *ws, uint64_t *watch_id)
{
	int rc;

	*watch_id = 0;
	pthread_mutex_lock(&r->mu);
	if (ws->id != NULL && ws->id[0] != '\0')
		rc = watch_one(r, ws, watch_id);
	else
		rc = watch_all(r, ws, watch_id);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

static void free_watcher(watcher *w)
{
	for (size_t i = 0; w->selector != NULL && w->selector[i] != NULL; i++)
		free(w->selector[i]);
	free(w->selector);
	free(w);
}

static bool remove_from(watcher **list, uint64_t watch_id)
{
	for (watcher **pp = list; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->id == watch_id) {
			watcher *w = *pp;
			*pp = w->next;
			free_watcher(w);
			return true;
		}
	}
	return false;
}

bool spd_registry_unwatch(spd_registry *r, uint64_t watch_id)
{
	uint64_t key = watch_id >> WATCH_SERIAL_BITS;
	bool removed = false;

	if (watch_id == 0)
		return false;
	pthread_mutex_lock(&r->mu);
	if (key == 0) {
		removed = remove_from(&r->global, watch_id);
	} else {
		for (entry *e = r->by_key[key % BUCKETS]; e != NULL; e = e->key_next)
			if (e->p.key == key)
				removed = remove_from(&e->watchers, watch_id);
	}
	pthread_mutex_unlock(&r->mu);
	return removed;
}

void spd_registry_abort_watchers(spd_registry *r)
{
	pthread_mutex_lock(&r->mu);
	for (entry *e = r->oldest; e != NULL; e = e->newer) {
		while (e->watchers != NULL) {
			watcher *w = e->watchers;
			e->watchers = w->next;
			w->fn(w->ctx, &e->p, SPD_NOTE_ABORT, spd_state_terminal(e->p.state));
			free_watcher(w);
		}
	}
	while (r->global != NULL) {
		watcher *w = r->global;
		r->global = w->next;
		w->fn(w->ctx, NULL, SPD_NOTE_ABORT, false);
		free_watcher(w);
	}
	pthread_mutex_unlock(&r->mu);
}
