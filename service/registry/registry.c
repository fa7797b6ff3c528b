/* The registry: see registry.h for the contract. */
#include "service/registry/registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

#include "service/common/clock.h"
#include "service/common/log.h"
#include "service/common/strv.h"
#include "service/common/utf8.h"
#include "service/metrics/metrics.h"
#include "service/registry/fingerprint.h"
#include "service/registry/outcome.h"
#include "service/registry/registry_impl.h"
#include "service/registry/ring.h"
#include "service/registry/watchers.h"

/* Output retained by every ring together: past it, the rings of the oldest
 * ended processes are cut down to their terminal event. */
#define RING_TOTAL_BYTES (32u * 1024u * 1024u)

/* Watch ids carry their process's key, so that unwatch finds them at once:
 * key << WATCH_SERIAL_BITS | serial; key 0 = a watch-all subscription. */
#define WATCH_SERIAL_BITS 24

/* Cap on strings a child supplies, after UTF-8 repair. */
#define ERROR_TYPE_MAX 256u
#define ERROR_MESSAGE_MAX 8192u
#define ERROR_BACKTRACE_MAX 16384u
#define LAUNCH_MESSAGE_MAX 1024u

/* ---- tables ---------------------------------------------------------------- */

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % BUCKETS;
}

spd__entry *spd__find_id(spd_registry *r, const char *id)
{
	for (spd__entry *e = r->by_id[hash_str(id)]; e != NULL; e = e->id_next)
		if (strcmp(e->p.id, id) == 0)
			return e;
	return NULL;
}

spd__entry *spd__find_key(spd_registry *r, uint64_t key)
{
	for (spd__entry *e = r->by_key[key % BUCKETS]; e != NULL; e = e->key_next)
		if (e->p.key == key)
			return e;
	return NULL;
}

void spd__link_entry(spd_registry *r, spd__entry *e)
{
	uint32_t h = hash_str(e->p.id);

	e->id_next = r->by_id[h];
	r->by_id[h] = e;
	e->key_next = r->by_key[e->p.key % BUCKETS];
	r->by_key[e->p.key % BUCKETS] = e;
	if (e->request_id != NULL) {
		uint32_t rh = hash_str(e->request_id);
		e->rid_next = r->by_rid[rh];
		r->by_rid[rh] = e;
	}
	e->older = r->newest;
	if (r->newest != NULL)
		r->newest->newer = e;
	r->newest = e;
	if (r->oldest == NULL)
		r->oldest = e;
	r->count++;
	spd__index_add(r, e);
}

static void unlink_entry(spd_registry *r, spd__entry *e)
{
	spd__entry **pp;

	spd__index_del(r, e);
	for (pp = &r->by_id[hash_str(e->p.id)]; *pp != e; pp = &(*pp)->id_next)
		;
	*pp = e->id_next;
	for (pp = &r->by_key[e->p.key % BUCKETS]; *pp != e; pp = &(*pp)->key_next)
		;
	*pp = e->key_next;
	if (e->request_id != NULL) {
		for (pp = &r->by_rid[hash_str(e->request_id)]; *pp != e; pp = &(*pp)->rid_next)
			;
		*pp = e->rid_next;
	}
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		r->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		r->newest = e->older;
	r->count--;
}

static void live_release(spd__entry *e)
{
	spd_tail_release(&e->live[0]);
	spd_tail_release(&e->live[1]);
}

static void free_entry(spd_registry *r, spd__entry *e)
{
	spd__watchers_end_all(&e->watchers);
	spd__ring_release(&e->ring, &r->ring_bytes);
	live_release(e);
	spd_process_release(&e->p);
	free(e->input);
	free(e->request_id);
	free(e);
}

static bool evictable(const spd__entry *e)
{
	return spd_state_terminal(e->p.state) && e->watchers == NULL && !e->held &&
	       !e->unconfirmed;
}

/* An evicted record goes from the journal too (the store's size is bounded
 * by the history's). */
static void evict_entry(spd_registry *r, spd__entry *e)
{
	spd__journal_remove(r, e);
	unlink_entry(r, e);
	free_entry(r, e);
}

/* Drops the oldest terminal records beyond history.max_records, and (at most
 * once a second, lazily: on the next start or end) those that ended more than
 * history.retention ago. Records with a spd__watcher stay: it still reads them.
 * A record's request_id goes with it. */
static void evict(spd_registry *r)
{
	int64_t now = spd_clock_real_ns();
	int64_t retention_ns = r->lim.history_retention_ms * 1000000;
	spd__entry *e;
	uint64_t after = 0;

	/* Oldest terminal records first, from the state indexes: live records
	 * (a thousand sleeps, older than everything) are not walked past. */
	while (r->count - r->live > r->lim.history_max_records &&
	       (e = spd__oldest_terminal_after(r, after)) != NULL) {
		after = e->p.key;
		if (evictable(e))
			evict_entry(r, e);
	}
	if (retention_ns <= 0 || now - r->retention_checked_ns < 1000000000)
		return;
	r->retention_checked_ns = now;
	for (e = r->oldest; e != NULL;) {
		spd__entry *next = e->newer;
		if (evictable(e) && e->p.ended_ns != 0 && now - e->p.ended_ns > retention_ns)
			evict_entry(r, e);
		e = next;
	}
}

void spd__evict(spd_registry *r)
{
	evict(r);
}

/* ---- events: the ring, then the watchers ------------------------------------ */

static void *timer_main(void *arg);
static uint64_t new_watch_id(spd_registry *r, uint64_t key);

/* Cuts the rings of the oldest ended processes to their terminal event until
 * the retained output fits RING_TOTAL_BYTES again. Not those whose watchers
 * wait for a commit (journal.h): they are told from the ring then. */
static void trim_rings(spd_registry *r)
{
	for (spd__entry *e = r->oldest; e != NULL && r->ring_bytes > RING_TOTAL_BYTES; e = e->newer)
		if (spd_state_terminal(e->p.state) && !e->unconfirmed && !e->held)
			spd__ring_cut(&e->ring, &r->ring_bytes);
}

/* The state E just entered: into its ring and the journal, then to its
 * watchers and the matching watch-all subscribers (which drops those that are
 * done). A new record, until the journal has committed it, and a terminal
 * state the journal has not committed yet reach them when it has (journal.h):
 * the ring keeps what they missed. */
static void notify_state(spd_registry *r, spd__entry *e)
{
	bool hold = e->p.state == SPD_STATE_PENDING || spd_state_terminal(e->p.state);

	spd__ring_push_state(&e->ring, &r->ring_bytes, &e->p);
	if (r->ring_bytes > RING_TOTAL_BYTES)
		trim_rings(r);
	if (spd__journal_put(r, e, hold))
		return;
	spd__watchers_notify(&e->watchers, &r->global, &e->p);
}

/* An OUTPUT chunk, event E->p.seq: into its ring and live tail, then to the
 * watchers of output. */
static void notify_output(spd_registry *r, spd__entry *e, int stream, uint64_t offset,
			  const void *chunk, size_t len)
{
	spd_output_event ev = {
		.p = &e->p, .stream = stream, .offset = offset, .chunk = chunk, .len = len,
	};

	spd__ring_push_output(&e->ring, &r->ring_bytes, e->p.seq, stream, offset, chunk, len);
	if (r->ring_bytes > RING_TOTAL_BYTES)
		trim_rings(r);
	if (stream == 1 || stream == 2)
		spd_tail_write(&e->live[stream - 1], chunk, len);
	if (!e->unconfirmed) /* else told from the ring once it is committed */
		spd__watchers_output(e->watchers, r->global, &ev);
}

/* A SNAPSHOT of E: its record, and for a live process the output seen so far
 * as its tails (copied: released with view_release). */
typedef struct view {
	spd_process p;
	uint8_t *bufs[2];
} view;

static void view_init(view *v, const spd__entry *e)
{
	v->p = e->p;
	v->bufs[0] = v->bufs[1] = NULL;
	if (spd_state_terminal(e->p.state) || (e->live[0].len == 0 && e->live[1].len == 0))
		return;
	for (int i = 0; i < 2; i++) {
		v->bufs[i] = malloc(e->live[i].len ? e->live[i].len : 1);
		if (v->bufs[i] == NULL)
			continue;
		if (i == 0) {
			v->p.stdout_tail = v->bufs[i];
			v->p.stdout_len = spd_tail_copy(&e->live[i], v->bufs[i], e->live[i].len);
		} else {
			v->p.stderr_tail = v->bufs[i];
			v->p.stderr_len = spd_tail_copy(&e->live[i], v->bufs[i], e->live[i].len);
		}
	}
	v->p.stdout_bytes = (int64_t)e->live[0].total;
	v->p.stderr_bytes = (int64_t)e->live[1].total;
	v->p.output_truncated = spd_tail_dropped(&e->live[0]) || spd_tail_dropped(&e->live[1]);
}

static void view_release(view *v)
{
	free(v->bufs[0]);
	free(v->bufs[1]);
}

/* Answers a one-shot caller (StartProcess, GetProcess, Destroy, a listing):
 * FN's return value does not matter. */
static void answer(spd_watch_fn fn, void *ctx, const spd_process *p, spd_note note)
{
	spd_watch_event ev = {.p = p, .note = note, .terminal = spd_state_terminal(p->state)};

	fn(ctx, &ev);
}

/* E entered state TO: the metrics of SPEC §12 (latency request -> RUNNING,
 * duration RUNNING -> terminal). */
static void count_transition(const spd__entry *e, spd_state to)
{
	const spd_process *p = &e->p;

	if (to == SPD_STATE_RUNNING)
		spd_metrics_process_running(p->target, (double)(p->started_ns - p->created_ns) / 1e9);
	else if (spd_state_terminal(to))
		spd_metrics_process_ended(p->target, spd_state_name(to),
					  spd_error_kind_name(p->error.kind),
					  p->started_ns != 0 && p->ran
						  ? (double)(p->ended_ns - p->started_ns) / 1e9
						  : -1);
}

/* Answers FN with a SNAPSHOT of E, now, or when E is held (journal.h) once
 * its end is committed, or while it is new once it is. 0 or -ENOMEM. */
static int answer_committed(spd_registry *r, spd__entry *e, spd_watch_fn fn, void *ctx)
{
	spd_watch_spec ws = {.fn = fn, .ctx = ctx};
	spd__watcher *w;
	view v;

	if (!e->held && !e->unconfirmed) {
		view_init(&v, e);
		answer(fn, ctx, &v.p, SPD_NOTE_SNAPSHOT);
		view_release(&v);
		return 0;
	}
	w = spd__watcher_create(new_watch_id(r, e->p.key), &ws, NULL);
	if (w == NULL)
		return -ENOMEM;
	w->once = true;
	spd__journal_defer(e, w, 0);
	return 0;
}

/* The one place a state changes: the table decides, then counters, sequence
 * and watchers follow. Returns false when the event is not allowed. */
static bool apply(spd_registry *r, spd__entry *e, spd_event ev)
{
	spd_state from = e->p.state;
	spd_state to = spd_state_next(from, ev);
	spd__target *ts = e->target;

	if (to == 0) {
		spd_log(SPD_LOG_WARN, "event ignored in this state", SPD_LOG_STR("process_id", e->p.id),
			SPD_LOG_STR("state", spd_state_name(from)), SPD_LOG_INT("event", ev), SPD_LOG_END);
		return false;
	}
	if (to == from) {
		spd__journal_put(r, e, false); /* flags (Destroy) */
		return true;
	}
	if (from == SPD_STATE_PENDING)
		ts->pending--;
	else if (from == SPD_STATE_RUNNING)
		ts->running--;
	if (to == SPD_STATE_RUNNING)
		ts->running++;
	spd__index_del(r, e);
	e->p.state = to;
	spd__index_add(r, e);
	e->p.seq++;
	count_transition(e, to);
	if (spd_state_terminal(to)) {
		r->live--;
		if (e->sent) {
			r->active--;
			ts->active--;
		}
		/* Its settings are no longer needed: a retired version goes. */
		e->target = NULL;
		spd__target_put(r, ts);
		pthread_cond_broadcast(&r->idle);
	}
	notify_state(r, e);
	if (spd_state_terminal(to) && e->sent)
		spd__dispatch(r);
	return true;
}

/* ---- create / destroy --------------------------------------------------------- */

spd_registry *spd_registry_create(const spd_config *cfg, const spd_registry_ops *ops)
{
	spd_registry *r = calloc(1, sizeof *r);
	pthread_condattr_t ca;

	if (r == NULL)
		return NULL;
	r->ops = *ops;
	if (spd__targets_init(r, cfg) < 0) {
		free(r);
		return NULL;
	}
	r->next_key = 1;
	r->next_watch_id = 1;
	pthread_mutex_init(&r->mu, NULL);
	/* Deadlines are CLOCK_MONOTONIC (gRPC notes §7: a realtime condvar with
	 * monotonic deadlines spins). */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->idle, &ca);
	pthread_cond_init(&r->timer_cond, &ca);
	pthread_cond_init(&r->journaled, &ca);
	pthread_condattr_destroy(&ca);
	r->timer_started = pthread_create(&r->timer, NULL, timer_main, r) == 0;
	return r;
}

void spd_registry_destroy(spd_registry *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->timer_stop = true;
	pthread_cond_broadcast(&r->timer_cond);
	pthread_mutex_unlock(&r->mu);
	if (r->timer_started)
		pthread_join(r->timer, NULL);
	pthread_cond_destroy(&r->timer_cond);
	while (r->oldest != NULL) {
		spd__entry *e = r->oldest;
		unlink_entry(r, e);
		free_entry(r, e);
	}
	spd__watchers_end_all(&r->global);
	spd__indexes_release(r);
	spd__health_release(r);
	spd__targets_release(r);
	pthread_cond_destroy(&r->journaled);
	pthread_cond_destroy(&r->idle);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

/* ---- RPC side ---------------------------------------------------------------- */

/* A request's timeout, capped by the target's. 0 means none on both sides, so
 * a request for "none" (0) on a target with a timeout gets the target's. */
static int64_t clamp_timeout_ms(int64_t requested, int64_t target)
{
	if (requested < 0)
		return target;
	if (target > 0 && (requested == 0 || requested > target))
		return target;
	return requested;
}

/* For grace periods 0 is not "none" but "kill at once" (SPEC §2): a request
 * can shorten the target's grace, never lengthen it. */
static int64_t clamp_grace_ms(int64_t requested, int64_t target)
{
	if (requested < 0 || requested > target)
		return target;
	return requested;
}

/* The start waiter answers StartProcess at the first state change: RUNNING, or
 * FAILED when the launch failed. It is the first spd__watcher of a record. */
static void add_start_waiter(spd_registry *r, spd__entry *e)
{
	spd_watch_spec ws = {.fn = e->start_fn, .ctx = e->start_ctx};
	spd__watcher *w = spd__watcher_create(new_watch_id(r, e->p.key), &ws, NULL);

	if (w == NULL) {
		/* Answer now rather than never. */
		answer(e->start_fn, e->start_ctx, &e->p, SPD_NOTE_SNAPSHOT);
		return;
	}
	w->once = true;
	w->next = e->watchers;
	e->watchers = w;
}

/* Whether a process of target version T may start now (max_running, and
 * T's max_concurrent against every version of its name). */
static bool can_run(spd_registry *r, const spd__target *t)
{
	uint32_t per_target = t->cfg.limits.max_concurrent;
	spd__counts n;

	if (r->lim.max_running != 0 && r->active >= r->lim.max_running)
		return false;
	/* Its zygote is down or restarting: wait for it, PENDING (timer_main). */
	if (t->zygote_down_ns != 0)
		return false;
	if (per_target == 0)
		return true;
	spd__name_counts(r, t, &n);
	return n.active < per_target;
}

/* Ends E (PENDING, never started) with STATE_EV and no child. */
static void end_unstarted(spd_registry *r, spd__entry *e, spd_event ev, spd_error_kind kind,
			  const char *type, const char *message)
{
	if (kind != SPD_ERR_NONE) {
		e->p.threw = true;
		e->p.error.kind = kind;
		e->p.error.type = strdup(type);
		e->p.error.message = strdup(message);
	}
	e->p.ran = false;
	e->p.ended_ns = spd_clock_real_ns();
	apply(r, e, ev);
}

/* Sends START for E; its start waiter, if any, hears RUNNING or FAILED/LAUNCH. */
static void send_entry(spd_registry *r, spd__entry *e, const void *input, size_t input_len)
{
	spd_launch_req req = {
		.process_id = e->p.id,
		.target = e->p.target,
		.target_id = e->target->id,
		.argv = e->p.argv,
		.argc = e->p.argc,
		.input = (uint8_t *)input,
		.input_len = input_len,
		.labels = e->p.labels,
		.label_count = e->p.label_count,
		.grace_ms = e->p.grace_ms,
		.timeout_ms = e->p.timeout_ms,
		.traceparent = e->p.traceparent,
	};

	e->sent = true;
	r->active++;
	e->target->active++;
	if (r->ops.send_start(r->ops.ctx, e->p.key, &req) < 0)
		/* The launcher is unreachable: the reader thread will report it lost. */
		end_unstarted(r, e, SPD_EV_LOST, SPD_ERR_LOST, "LauncherLost",
			      "the launcher is unreachable");
}

static void dequeue(spd_registry *r, spd__entry *e)
{
	spd__entry **pp;

	for (pp = &r->queue_head; *pp != NULL && *pp != e; pp = &(*pp)->queue_next)
		;
	if (*pp == NULL)
		return;
	*pp = e->queue_next;
	if (r->queue_tail == e) {
		r->queue_tail = NULL;
		for (spd__entry *q = r->queue_head; q != NULL; q = q->queue_next)
			r->queue_tail = q;
	}
	e->queue_next = NULL;
	e->queued = false;
	r->queued--;
}

static bool congested(spd_registry *r)
{
	return r->ops.congested != NULL && r->ops.congested(r->ops.ctx);
}

/* Starts queued processes, oldest first, while slots are free. A process whose
 * target is at its max_concurrent waits without holding up other targets. */
void spd__dispatch(spd_registry *r)
{
	spd__entry *e = r->queue_head;

	while (e != NULL && e->queued && !r->shutting_down && !r->launcher_lost) {
		spd__entry *next = e->queue_next;
		if (r->lim.max_running != 0 && r->active >= r->lim.max_running)
			break;
		if (congested(r))
			break; /* they wait; the next slot that frees tries again */
		if (can_run(r, e->target)) {
			dequeue(r, e);
			if (e->start_fn != NULL)
				add_start_waiter(r, e);
			send_entry(r, e, e->input, e->input_len);
			free(e->input);
			e->input = NULL;
			e->input_len = 0;
		}
		e = next;
	}
}

/* Each caller has its own request_ids: another token's use of the same id
 * neither hands its process over (the fingerprint covers the caller too)
 * nor makes this caller's request ALREADY_EXISTS (an id squatted, or probed
 * for, by another tenant). */
static spd__entry *find_rid(spd_registry *r, const char *rid, const char *caller)
{
	for (spd__entry *e = r->by_rid[hash_str(rid)]; e != NULL; e = e->rid_next)
		if (strcmp(e->request_id, rid) == 0 &&
		    strcmp(e->p.caller != NULL ? e->p.caller : "", caller) == 0)
			return e;
	return NULL;
}

static int watch_entry(spd_registry *r, spd__entry *e, const spd_watch_spec *ws,
		       uint64_t *watch_id);

/* spd_registry_start, and for Run (RUN not NULL) the subscription RUN of the
 * process started or found, in the same step (spd_registry_run). */
static int start(spd_registry *r, const spd_start_params *sp, spd_watch_fn fn, void *ctx,
		 const spd_watch_spec *run, uint64_t *watch_id, char *run_id)
{
	spd__target *t;
	spd__entry *e;
	int rc = 0;

	e = calloc(1, sizeof *e);
	if (e == NULL)
		return -ENOMEM;
	spd_id_new(e->p.id);
	e->p.target = strdup(sp->target);
	e->p.caller = strdup(sp->caller != NULL ? sp->caller : "");
	if (sp->traceparent != NULL && sp->traceparent[0] != '\0')
		e->p.traceparent = strdup(sp->traceparent);
	e->p.argv = spd_strv_dup(sp->argv, sp->argc);
	e->p.argc = sp->argc;
	e->p.labels = spd_strv_dup(sp->labels, 2 * (size_t)sp->label_count);
	e->p.label_count = sp->label_count;
	e->p.state = SPD_STATE_PENDING;
	e->p.seq = 1;
	e->p.created_ns = spd_clock_real_ns();
	e->start_fn = fn;
	e->start_ctx = ctx;
	if (sp->request_id != NULL && sp->request_id[0] != '\0') {
		e->request_id = strdup(sp->request_id);
		if (e->request_id != NULL && spd_request_fingerprint(sp, e->fingerprint) < 0) {
			free(e->request_id);
			e->request_id = NULL;
		}
	}
	if (e->p.target == NULL || e->p.caller == NULL || e->p.argv == NULL || e->p.labels == NULL ||
	    (sp->traceparent != NULL && sp->traceparent[0] != '\0' && e->p.traceparent == NULL) ||
	    (sp->request_id != NULL && sp->request_id[0] != '\0' && e->request_id == NULL)) {
		free_entry(r, e);
		return -ENOMEM;
	}

	pthread_mutex_lock(&r->mu);
	if (e->request_id != NULL) {
		spd__entry *orig = find_rid(r, e->request_id, e->p.caller);
		if (orig != NULL) {
			/* A retry: the original, whatever became of it; nothing starts. */
			rc = memcmp(orig->fingerprint, e->fingerprint, sizeof e->fingerprint) == 0
				     ? 0 : -EEXIST;
			if (rc == 0 && run != NULL) {
				if (run_id != NULL)
					memcpy(run_id, orig->p.id, SPD_ID_LEN + 1);
				rc = watch_entry(r, orig, run, watch_id);
			}
			if (rc == 0)
				rc = answer_committed(r, orig, fn, ctx);
			pthread_mutex_unlock(&r->mu);
			free_entry(r, e); /* never linked: touches nothing shared */
			return rc;
		}
	}
	/* The current version of the target: a reload may change it at any
	 * time, but this process keeps the one it started with. */
	t = spd__find_target(r, sp->target);
	if (t == NULL) {
		rc = -ENOENT;
	} else if (run != NULL && run->after_sequence > 1) {
		/* A new process's last event is PENDING (1): a resume point past
		 * it is refused before anything starts (SPEC §12), rather than a
		 * process started for a stream that would never hear of it. */
		rc = -ERANGE;
	} else if (t->cfg.kind == SPD_TARGET_EXEC && !t->cfg.allow_args && sp->argc > 0) {
		rc = -EINVAL;
	} else if (r->shutting_down || r->launcher_lost) {
		rc = -ESHUTDOWN;
	} else if (congested(r)) {
		rc = -EBUSY;
	} else if (!can_run(r, t) && r->queued >= r->lim.max_pending) {
		rc = -EAGAIN;
	} else if (!can_run(r, t) || r->queue_head != NULL) {
		/* Queued (FIFO): kept with its input, answered PENDING now. */
		e->input = malloc(sp->input_len ? sp->input_len : 1);
		if (e->input == NULL) {
			rc = -ENOMEM;
		} else {
			/* An empty input may come as NULL: memcpy(x, NULL, 0) is UB. */
			if (sp->input_len > 0)
				memcpy(e->input, sp->input, sp->input_len);
			e->input_len = sp->input_len;
		}
	}
	if (rc < 0) {
		pthread_mutex_unlock(&r->mu);
		free_entry(r, e);
		return rc;
	}
	/* Ids are random (id.h); one that a retained record (restored from
	 * the store, maybe) already has is drawn again, never reused. */
	while (spd__find_id(r, e->p.id) != NULL)
		spd_id_new(e->p.id);
	e->target = t;
	t->refs++;
	e->p.start_method = t->cfg.limits.start_method;
	e->live[0] = (spd_tail)SPD_TAIL_INIT(t->cfg.limits.max_output_bytes);
	e->live[1] = (spd_tail)SPD_TAIL_INIT(t->cfg.limits.max_output_bytes);
	e->p.grace_ms = clamp_grace_ms(sp->grace_ms, t->cfg.limits.destroy_grace_ms);
	e->p.timeout_ms = clamp_timeout_ms(sp->timeout_ms, t->cfg.limits.timeout_ms);
	e->p.key = r->next_key++;
	spd__link_entry(r, e);
	r->live++;
	t->pending++;
	notify_state(r, e); /* PENDING, sequence 1: into the ring, to watch-all */
	spd_metrics_process_started(e->p.target);
	/* Run's subscription replays PENDING from the ring, then goes live. It
	 * cannot fail but for memory: the process then goes on unwatched. */
	if (run != NULL && run_id != NULL)
		memcpy(run_id, e->p.id, SPD_ID_LEN + 1);
	if (run != NULL && watch_entry(r, e, run, watch_id) < 0)
		*watch_id = 0;
	spd_log(SPD_LOG_INFO, "process accepted", SPD_LOG_STR("process_id", e->p.id),
		SPD_LOG_STR("target", e->p.target), SPD_LOG_STR("caller", e->p.caller),
		SPD_LOG_STR("traceparent", e->p.traceparent), SPD_LOG_END);
	if (e->input != NULL) {
		e->queued = true;
		e->queued_ns = spd_clock_mono_ns();
		pthread_cond_broadcast(&r->timer_cond);
		if (r->queue_tail != NULL)
			r->queue_tail->queue_next = e;
		else
			r->queue_head = e;
		r->queue_tail = e;
		r->queued++;
		/* Answered now, as PENDING (once committed: as it is then); the
		 * start waiter is not needed. */
		e->start_fn = NULL;
		if (!e->unconfirmed || answer_committed(r, e, fn, ctx) < 0)
			answer(fn, ctx, &e->p, SPD_NOTE_SNAPSHOT);
		spd__dispatch(r);
	} else {
		add_start_waiter(r, e);
		send_entry(r, e, sp->input, sp->input_len);
	}
	evict(r);
	pthread_mutex_unlock(&r->mu);
	return 0;
}

int spd_registry_get_committed(spd_registry *r, const char *id, spd_watch_fn fn, void *ctx)
{
	spd__entry *e;
	int rc = -ENOENT;

	pthread_mutex_lock(&r->mu);
	e = spd__find_id(r, id);
	if (e != NULL)
		rc = answer_committed(r, e, fn, ctx);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int spd_registry_start(spd_registry *r, const spd_start_params *sp, spd_watch_fn fn, void *ctx)
{
	return start(r, sp, fn, ctx, NULL, NULL, NULL);
}

static bool ignore_start(void *ctx, const spd_watch_event *ev)
{
	(void)ctx;
	(void)ev;
	return false;
}

int spd_registry_run(spd_registry *r, const spd_start_params *sp, const spd_watch_spec *ws,
		     uint64_t *watch_id, char *id)
{
	spd_watch_spec run = *ws;

	*watch_id = 0;
	run.id = NULL;
	run.from_start = true;
	return start(r, sp, ignore_start, NULL, &run, watch_id, id);
}

int spd_registry_get(spd_registry *r, const char *id, spd_watch_fn fn, void *ctx)
{
	spd__entry *e;
	view v;

	pthread_mutex_lock(&r->mu);
	e = spd__find_id(r, id);
	if (e != NULL) {
		view_init(&v, e);
		answer(fn, ctx, &v.p, SPD_NOTE_SNAPSHOT);
		view_release(&v);
	}
	pthread_mutex_unlock(&r->mu);
	return e != NULL ? 0 : -ENOENT;
}


/* ---- subscriptions (SPEC §11) ------------------------------------------------- */

static uint64_t new_watch_id(spd_registry *r, uint64_t key)
{
	const uint64_t mask = (1u << WATCH_SERIAL_BITS) - 1;
	uint64_t serial = r->next_watch_id++ & mask;

	/* 0 is "none": when the serial wraps to it, take the next one, masked
	 * too, or it would spill into the key bits. */
	if (serial == 0)
		serial = r->next_watch_id++ & mask;
	return key << WATCH_SERIAL_BITS | serial;
}

/* Destroy with wait: FN hears E's states until the terminal one. */
static int add_waiter(spd_registry *r, spd__entry *e, spd_watch_fn fn, void *ctx)
{
	spd_watch_spec ws = {.fn = fn, .ctx = ctx};
	spd__watcher *w = spd__watcher_create(new_watch_id(r, e->p.key), &ws, NULL);

	if (w == NULL)
		return -ENOMEM;
	w->next = e->watchers;
	e->watchers = w;
	return 0;
}

static void tell_snapshot(spd__watcher *w, const spd__entry *e, spd_note note)
{
	view v;

	view_init(&v, e);
	spd__watcher_tell(w, &v.p, note);
	view_release(&v);
}

static void replay_one(void *ctx, const spd_process *then, const spd__ring_event *rec)
{
	spd__watcher *w = ctx;
	spd_output_event ev = {
		.p = then,
		.stream = rec->stream,
		.offset = rec->offset,
		.chunk = rec->data,
		.len = rec->len,
	};

	if (rec->output)
		spd__watcher_tell_output(w, &ev);
	else
		spd__watcher_tell(w, then, SPD_NOTE_REPLAY);
}

void spd__catch_up(spd__watcher *w, const spd__entry *e)
{
	uint64_t after = w->catchup_after;

	if (after == 0 && !w->catchup_from_start)
		tell_snapshot(w, e, SPD_NOTE_SNAPSHOT);
	else if (after < e->p.seq &&
		 !spd__ring_replay(&e->ring, &e->p, after, w->out_fn != NULL, replay_one, w))
		tell_snapshot(w, e, SPD_NOTE_SNAPSHOT_GAP);
}

/* ---- a new record committed (journal.h) ----------------------------------------- */

/* Replays to one watcher the retained events of a record up to LIMIT; with
 * FIRST_STATE, only the first state event (the start waiter's answer). */
typedef struct upto {
	spd__watcher *w;
	uint64_t limit;
	bool first_state, told;
} upto;

static void replay_upto_one(void *ctx, const spd_process *then, const spd__ring_event *rec)
{
	upto *u = ctx;

	if (rec->seq > u->limit || (u->first_state && (u->told || rec->output)))
		return;
	u->told = true;
	replay_one(u->w, then, rec);
}

/* W is told E's events after AFTER up to LIMIT as they were first sent.
 * False, telling nothing, when some of them were evicted. */
static bool replay_upto(spd__watcher *w, const spd__entry *e, uint64_t after, uint64_t limit)
{
	upto u = {.w = w, .limit = limit};

	return after >= limit ||
	       spd__ring_replay(&e->ring, &e->p, after, w->out_fn != NULL, replay_upto_one, &u);
}

/* The start waiter: the first state E entered after PENDING, as it was then,
 * if that is at most LIMIT. True when it was told. */
static bool answer_start(spd__watcher *w, const spd__entry *e, uint64_t limit)
{
	upto u = {.w = w, .limit = limit, .first_state = true};

	if (!spd__ring_replay(&e->ring, &e->p, 1, false, replay_upto_one, &u)) {
		if (spd_state_terminal(e->p.state) && limit < e->p.seq)
			return false; /* its end: with the end's release */
		spd__watcher_tell(w, &e->p, SPD_NOTE_STATE); /* evicted: as it is now */
		return true;
	}
	return u.told;
}

/* Nothing was told of E while it was new (notify_state): the watch-all
 * subscribers get its events from the first (as they would have live), its
 * own watchers what they asked for — all of it but an end still held
 * (LIMIT), which comes with that end's release (journal.c). */
void spd__release_created(spd_registry *r, spd__entry *e)
{
	uint64_t limit = e->held ? e->p.seq - 1 : e->p.seq;
	bool ended = spd_state_terminal(e->p.state) && !e->held;

	e->unconfirmed = false;
	for (spd__watcher *w = r->global; w != NULL; w = w->next)
		if (spd__labels_match(&e->p, (const char *const *)w->selector, w->selector_count) &&
		    !replay_upto(w, e, 0, limit) && !e->held)
			tell_snapshot(w, e, SPD_NOTE_SNAPSHOT_GAP);
	for (spd__watcher **pp = &e->watchers; *pp != NULL;) {
		spd__watcher *w = *pp;
		bool done = false;
		if (w->catchup) {
			/* A Watch, Run or an answer (answer_committed). A
			 * SNAPSHOT, or a gap, would show a held end: then. */
			bool told = false;
			if (w->catchup_after == 0 && !w->catchup_from_start) {
				if (!e->held) {
					tell_snapshot(w, e, SPD_NOTE_SNAPSHOT);
					told = true;
				}
			} else if (replay_upto(w, e, w->catchup_after, limit)) {
				told = true;
			} else if (!e->held) {
				tell_snapshot(w, e, SPD_NOTE_SNAPSHOT_GAP);
				told = true;
			}
			if (told && e->held) {
				w->catchup_after = limit; /* the end's release replays the rest */
			} else if (told) {
				w->catchup = false;  /* live from now on */
				done = w->once || ended;
			}
		} else if (w->once) {
			done = answer_start(w, e, limit);
		} else if (ended) {
			/* Destroy(wait): its end. */
			spd__watcher_tell(w, &e->p, SPD_NOTE_STATE);
			done = true;
		}
		if (done) {
			*pp = w->next;
			spd__watcher_end(w);
		} else {
			pp = &w->next;
		}
	}
}

static int watch_entry(spd_registry *r, spd__entry *e, const spd_watch_spec *ws,
		       uint64_t *watch_id)
{
	spd__watcher *w;

	if (ws->after_sequence > e->p.seq)
		return -ERANGE; /* a resume point this process never sent (SPEC §12) */
	if (e->held && ws->after_sequence == e->p.seq)
		return 0; /* nothing to replay: it ends OK, as it would unheld */
	w = spd__watcher_create(new_watch_id(r, e->p.key), ws, NULL);
	if (w == NULL)
		return -ENOMEM;
	if (e->held || e->unconfirmed) {
		/* Its end, or the record itself, is not committed yet: what it
		 * asked for comes then (spd__release_created, journal.c). */
		spd__journal_defer(e, w, ws->after_sequence);
		w->catchup_from_start = ws->from_start;
		*watch_id = w->id;
		return 0;
	}
	/* What it missed first; FN's answers to those do not end it. */
	if (ws->after_sequence == 0 && !ws->from_start)
		tell_snapshot(w, e, SPD_NOTE_SNAPSHOT);
	else if (ws->after_sequence < e->p.seq &&
		 !spd__ring_replay(&e->ring, &e->p, ws->after_sequence, ws->out_fn != NULL,
				   replay_one, w))
		tell_snapshot(w, e, SPD_NOTE_SNAPSHOT_GAP);
	if (spd_state_terminal(e->p.state)) {
		/* Everything was delivered: nothing to subscribe, nothing to release. */
		w->release = NULL;
		spd__watcher_end(w);
		return 0;
	}
	w->next = e->watchers;
	e->watchers = w;
	*watch_id = w->id;
	return 0;
}

static int watch_one(spd_registry *r, const spd_watch_spec *ws, uint64_t *watch_id)
{
	spd__entry *e = spd__find_id(r, ws->id);

	return e != NULL ? watch_entry(r, e, ws, watch_id) : -ENOENT;
}

static int watch_all(spd_registry *r, const spd_watch_spec *ws, uint64_t *watch_id)
{
	char **selector = spd_strv_dup(ws->selector, 2 * (size_t)ws->selector_count);
	spd__watcher *w;

	if (selector == NULL)
		return -ENOMEM;
	w = spd__watcher_create(new_watch_id(r, 0), ws, selector);
	if (w == NULL)
		return -ENOMEM;
	/* A record not committed yet is told from its first event once it is
	 * (spd__release_created). */
	for (spd__entry *e = r->oldest; e != NULL; e = e->newer)
		if (!spd_state_terminal(e->p.state) && !e->unconfirmed &&
		    spd__labels_match(&e->p, ws->selector, ws->selector_count))
			tell_snapshot(w, e, SPD_NOTE_SNAPSHOT);
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

bool spd_registry_unwatch(spd_registry *r, uint64_t watch_id)
{
	uint64_t key = watch_id >> WATCH_SERIAL_BITS;
	spd__entry *e;
	bool removed = false;

	if (watch_id == 0)
		return false;
	pthread_mutex_lock(&r->mu);
	if (key == 0) {
		removed = spd__watchers_remove(&r->global, watch_id);
	} else {
		e = spd__find_key(r, key);
		if (e != NULL)
			removed = spd__watchers_remove(&e->watchers, watch_id);
	}
	pthread_mutex_unlock(&r->mu);
	return removed;
}

void spd_registry_abort_watchers(spd_registry *r)
{
	pthread_mutex_lock(&r->mu);
	for (spd__entry *e = r->oldest; e != NULL; e = e->newer)
		spd__watchers_abort(&e->watchers, &e->p);
	spd__watchers_abort(&r->global, NULL);
	pthread_mutex_unlock(&r->mu);
}

/* Destroys E (not terminal): a queued process ends CANCELED without ever
 * starting; a started one is handed to the launcher with GRACE_MS. A process
 * already being destroyed gets another DESTROY only if this one ends the grace
 * sooner (the launcher keeps the earlier SIGKILL time anyway): repeated
 * Destroy calls cost the launcher channel nothing. */
static void request_destroy(spd_registry *r, spd__entry *e, int64_t grace_ms)
{
	int64_t kill_at = spd_clock_mono_ns() + grace_ms * 1000000LL;
	bool again = e->destroy_requested;

	e->p.destroyed = true;
	e->p.canceled = true;
	e->destroy_requested = true;
	if (e->queued) {
		dequeue(r, e);
		end_unstarted(r, e, SPD_EV_CANCELED, SPD_ERR_NONE, NULL, NULL);
		return;
	}
	apply(r, e, SPD_EV_DESTROY);
	if (again && kill_at >= e->kill_at_ns)
		return;
	e->kill_at_ns = kill_at;
	if (r->ops.send_destroy(r->ops.ctx, e->p.key, grace_ms) < 0)
		spd_log(SPD_LOG_WARN, "cannot send destroy to the launcher",
			SPD_LOG_STR("process_id", e->p.id), SPD_LOG_END);
}

int spd_registry_destroy_process(spd_registry *r, const char *id, int64_t grace_ms, bool wait,
				 spd_watch_fn fn, void *ctx)
{
	spd__entry *e;
	int rc = 0;

	pthread_mutex_lock(&r->mu);
	e = spd__find_id(r, id);
	if (e == NULL) {
		rc = -ENOENT;
		goto out;
	}
	if (spd_state_terminal(e->p.state)) {
		e->p.destroyed = true;  /* canceled stays as it was */
		apply(r, e, SPD_EV_DESTROY);
	} else {
		request_destroy(r, e, clamp_grace_ms(grace_ms, e->p.grace_ms));
	}
	if (spd_state_terminal(e->p.state) || (!wait && e->unconfirmed))
		rc = answer_committed(r, e, fn, ctx);
	else if (!wait)
		answer(fn, ctx, &e->p, SPD_NOTE_SNAPSHOT);
	else
		rc = add_waiter(r, e, fn, ctx);
out:
	pthread_mutex_unlock(&r->mu);
	return rc;
}



/* ---- launcher side ------------------------------------------------------------ */

/* ---- the timer: starts that waited too long for their zygote --------------- */

/* Fails, FAILED/LAUNCH naming the zygote, every queued start whose target's
 * zygote is still down zygote_wait after it was queued. Returns the next
 * such deadline (CLOCK_MONOTONIC ns), 0 if none. Lock held. */
static int64_t expire_zygote_waits(spd_registry *r, int64_t now)
{
	int64_t next = 0;

	for (spd__entry *e = r->queue_head, *nx; e != NULL; e = nx) {
		const spd__target *t = e->target;
		/* From when it began to wait for the zygote, not for a slot. */
		int64_t since = e->queued_ns > t->zygote_down_ns ? e->queued_ns : t->zygote_down_ns;
		int64_t at = since + t->cfg.limits.zygote_wait_ms * 1000000;
		char msg[LAUNCH_MESSAGE_MAX];

		nx = e->queue_next;
		if (t->zygote_down_ns == 0)
			continue;
		if (now < at) {
			if (next == 0 || at < next)
				next = at;
			continue;
		}
		snprintf(msg, sizeof msg,
			 "zygote: the zygote of target %s is down (%s) and did not come back within "
			 "zygote_wait (%lld ms)",
			 e->p.target, t->error != NULL ? t->error : "restarting",
			 (long long)t->cfg.limits.zygote_wait_ms);
		dequeue(r, e);
		end_unstarted(r, e, SPD_EV_FAILED, SPD_ERR_LAUNCH, "ZygoteDown", msg);
	}
	return next;
}

static void *timer_main(void *arg)
{
	spd_registry *r = arg;

	pthread_mutex_lock(&r->mu);
	while (!r->timer_stop) {
		int64_t next = expire_zygote_waits(r, spd_clock_mono_ns());
		if (next == 0) {
			pthread_cond_wait(&r->timer_cond, &r->mu);
		} else {
			struct timespec ts = {.tv_sec = next / 1000000000, .tv_nsec = next % 1000000000};
			pthread_cond_timedwait(&r->timer_cond, &r->mu, &ts);
		}
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

void spd_registry_on_started(spd_registry *r, uint64_t key, int32_t pid, int64_t started_ns)
{
	spd__entry *e;

	pthread_mutex_lock(&r->mu);
	e = spd__find_key(r, key);
	if (e != NULL) {
		e->p.pid = pid;
		e->p.started_ns = started_ns;
		apply(r, e, SPD_EV_STARTED);
		spd_log(SPD_LOG_INFO, "process running", SPD_LOG_STR("process_id", e->p.id),
			SPD_LOG_STR("target", e->p.target), SPD_LOG_INT("pid", pid),
			SPD_LOG_STR("traceparent", e->p.traceparent), SPD_LOG_END);
	}
	pthread_mutex_unlock(&r->mu);
}

void spd_registry_on_output(spd_registry *r, uint64_t key, int stream, uint64_t offset,
			    const void *chunk, size_t len)
{
	spd__entry *e;

	pthread_mutex_lock(&r->mu);
	e = spd__find_key(r, key);
	if (e != NULL && !spd_state_terminal(e->p.state)) {
		e->p.seq++;
		notify_output(r, e, stream, offset, chunk, len);
	}
	pthread_mutex_unlock(&r->mu);
}

static char *sanitized(const char *s, size_t max)
{
	return spd_utf8_sanitize(s != NULL ? s : "", s != NULL ? strlen(s) : 0, max);
}

/* Fills the record's error from a classified outcome and the report. */
static void fill_error(spd__entry *e, const spd_outcome *o, const spd_exit_facts *rep,
		       const char *zygote_why)
{
	spd_process_error *err = &e->p.error;
	char msg[LAUNCH_MESSAGE_MAX];

	err->kind = o->kind;
	err->exit_code = o->exit_code;
	err->signal = o->signal;
	err->core_dumped = o->core_dumped;
	err->oom_suspected = o->oom_suspected;
	err->type = sanitized(o->type, ERROR_TYPE_MAX);
	switch (o->kind) {
	case SPD_ERR_RAISED:
		err->message = sanitized(rep->raise_message, ERROR_MESSAGE_MAX);
		err->backtrace = sanitized(rep->raise_backtrace, ERROR_BACKTRACE_MAX);
		return;
	case SPD_ERR_LAUNCH:
		snprintf(msg, sizeof msg, "%s: %s", rep->launch_stage ? rep->launch_stage : "launch",
			 rep->launch_message ? rep->launch_message : "failed");
		break;
	case SPD_ERR_EXIT_CODE:
		snprintf(msg, sizeof msg, "exited with code %d%s", o->exit_code,
			 o->oom_suspected ? " (an OOM exit code: maybe out of memory)" : "");
		break;
	case SPD_ERR_SIGNALED:
		snprintf(msg, sizeof msg, "killed by %s%s%s", o->type ? o->type : "a signal",
			 o->core_dumped ? " (core dumped)" : "",
			 o->oom_suspected ? " (not sent by spawnd: maybe out of memory)" : "");
		break;
	case SPD_ERR_TIMEOUT:
		snprintf(msg, sizeof msg, "timeout of %lld ms expired; destroyed",
			 (long long)e->p.timeout_ms);
		break;
	case SPD_ERR_OOM:
		snprintf(msg, sizeof msg, "%s",
			 o->signal != 0 ? "killed by the kernel's OOM killer under its memory limit "
					  "(confirmed by its memory cgroup)"
					: "out of memory under its memory limit");
		break;
	case SPD_ERR_RESULT_TOO_LARGE:
		snprintf(msg, sizeof msg, "result larger than max_result_bytes");
		break;
	case SPD_ERR_LOST:
		/* Its zygote died (the launcher's HEALTH frame came first and says
		 * why), taking its children with it. */
		snprintf(msg, sizeof msg, "the zygote of target %s died while it ran (%s)", e->p.target,
			 zygote_why != NULL ? zygote_why : "zygote lost");
		break;
	default:
		msg[0] = '\0';
		break;
	}
	err->message = sanitized(msg, ERROR_MESSAGE_MAX);
}

void spd_registry_on_exited(spd_registry *r, uint64_t key, spd_exit_facts *rep)
{
	spd_outcome o;
	spd__entry *e;
	spd_event ev;

	pthread_mutex_lock(&r->mu);
	e = spd__find_key(r, key);
	if (e == NULL || spd_state_terminal(e->p.state))
		goto out;
	spd_outcome_classify(rep, e->destroy_requested, &o);
	/* canceled was provisional: the destroy came too late to end it. */
	if (o.state != SPD_STATE_CANCELED)
		e->p.canceled = false;
	e->p.ran = o.ran;
	e->p.exit_code = o.exit_code;
	e->p.signal = o.signal;
	if (!o.ran)
		e->p.pid = 0;
	e->p.ended_ns = rep->ended_ns ? rep->ended_ns : spd_clock_real_ns();
	e->p.utime_us = rep->utime_us;
	e->p.stime_us = rep->stime_us;
	e->p.maxrss_bytes = rep->maxrss_bytes;
	e->p.result = rep->result;
	e->p.result_len = rep->result_len;
	e->p.stdout_tail = rep->stdout_tail;
	e->p.stdout_len = rep->stdout_len;
	e->p.stderr_tail = rep->stderr_tail;
	e->p.stderr_len = rep->stderr_len;
	e->p.stdout_head = rep->stdout_head;
	e->p.stdout_head_len = rep->stdout_head_len;
	e->p.stderr_head = rep->stderr_head;
	e->p.stderr_head_len = rep->stderr_head_len;
	e->p.stdout_bytes = rep->stdout_total;
	e->p.stderr_bytes = rep->stderr_total;
	e->p.output_truncated =
		(size_t)rep->stdout_total > rep->stdout_head_len + rep->stdout_len ||
		(size_t)rep->stderr_total > rep->stderr_head_len + rep->stderr_len;
	rep->result = rep->stdout_tail = rep->stderr_tail = NULL;
	rep->stdout_head = rep->stderr_head = NULL;
	live_release(e); /* the launcher's final tails replace them */
	if (o.state == SPD_STATE_FAILED) {
		e->p.threw = true;
		fill_error(e, &o, rep, e->target->error);
	}
	ev = o.state == SPD_STATE_SUCCEEDED ? SPD_EV_SUCCEEDED
	     : o.state == SPD_STATE_CANCELED ? SPD_EV_CANCELED : SPD_EV_FAILED;
	spd_log(SPD_LOG_INFO, "process ended", SPD_LOG_STR("process_id", e->p.id),
		SPD_LOG_STR("target", e->p.target), SPD_LOG_STR("state", spd_state_name(o.state)),
		SPD_LOG_INT("exit_code", o.exit_code), SPD_LOG_INT("signal", o.signal),
		SPD_LOG_STR("traceparent", e->p.traceparent), SPD_LOG_END);
	apply(r, e, ev);
	evict(r);
out:
	pthread_mutex_unlock(&r->mu);
}

/* Makes the output seen live E's final tails (when no report will come). */
static void keep_live_tails(spd__entry *e)
{
	uint8_t **tails[2] = {&e->p.stdout_tail, &e->p.stderr_tail};
	size_t *lens[2] = {&e->p.stdout_len, &e->p.stderr_len};

	for (int i = 0; i < 2; i++) {
		const spd_tail *t = &e->live[i];
		*tails[i] = t->len > 0 ? malloc(t->len) : NULL;
		*lens[i] = *tails[i] != NULL ? spd_tail_copy(t, *tails[i], t->len) : 0;
	}
	e->p.stdout_bytes = (int64_t)e->live[0].total;
	e->p.stderr_bytes = (int64_t)e->live[1].total;
	e->p.output_truncated = spd_tail_dropped(&e->live[0]) || spd_tail_dropped(&e->live[1]);
	live_release(e);
}

void spd_registry_on_launcher_lost(spd_registry *r)
{
	pthread_mutex_lock(&r->mu);
	r->launcher_lost = true;
	spd__health_changed(r);
	for (spd__entry *e = r->oldest; e != NULL; e = e->newer) {
		if (spd_state_terminal(e->p.state))
			continue;
		if (e->queued)
			dequeue(r, e);
		e->p.threw = true;
		e->p.ended_ns = spd_clock_real_ns();
		e->p.error.kind = SPD_ERR_LOST;
		e->p.error.type = strdup("LauncherLost");
		e->p.error.message = strdup("the launcher died while the process was live");
		e->p.ran = e->p.state == SPD_STATE_RUNNING;
		keep_live_tails(e); /* no report will come: what was seen is the record */
		apply(r, e, SPD_EV_LOST);
	}
	pthread_mutex_unlock(&r->mu);
}

/* ---- shutdown ---------------------------------------------------------------- */

size_t spd_registry_shutdown(spd_registry *r, int64_t grace_cap_ms, int64_t deadline_ns)
{
	struct timespec ts = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};
	size_t live;

	pthread_mutex_lock(&r->mu);
	r->shutting_down = true;
	/* NOT_SERVING before any process is destroyed (SPEC §6). */
	spd__health_changed(r);
	/* No start will take a pre-started child now: they go at once rather
	 * than with the launcher, after the grace period. */
	for (size_t i = 0; i < r->target_count && !r->launcher_lost; i++) {
		spd__target *t = r->targets[i];
		if (t->cfg.prestart > 0 && r->ops.send_stale != NULL)
			r->ops.send_stale(r->ops.ctx, t->id);
		t->idle = 0;
	}
	/* Processes already being destroyed too: their Destroy's grace may be
	 * longer than the cap (the launcher keeps the earlier SIGKILL time). */
	for (spd__entry *e = r->oldest; e != NULL; e = e->newer) {
		if (spd_state_terminal(e->p.state))
			continue;
		request_destroy(r, e, e->p.grace_ms < grace_cap_ms ? e->p.grace_ms : grace_cap_ms);
	}
	while (r->live > 0 && !r->launcher_lost) {
		if (pthread_cond_timedwait(&r->idle, &r->mu, &ts) == ETIMEDOUT)
			break;
	}
	live = r->live;
	pthread_mutex_unlock(&r->mu);
	return live;
}

size_t spd_registry_live_count(spd_registry *r)
{
	size_t n;

	pthread_mutex_lock(&r->mu);
	n = r->live;
	pthread_mutex_unlock(&r->mu);
	return n;
}
