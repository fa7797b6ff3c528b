/* The store's queue and its writer thread (store.h: group commit, failures,
 * retries). Locks: put/remove run under the registry's lock and take mu; the
 * writer takes mu only to take or give back work, and calls into the
 * registry (spd_registry_on_journaled, spd_registry_set_store_health) with
 * no lock of its own held. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service/common/clock.h"
#include "service/common/log.h"
#include "service/metrics/metrics.h"
#include "service/store/store_impl.h"

/* At most this many records per transaction: bounds one commit's time (and
 * the holds waiting on it) under a burst. */
#define BATCH_MAX 512u
/* How long a change nobody waits for (RUNNING, flags, an end when the journal
 * holds nothing) may stay queued for company. A new record and an end
 * (holds: their answers and events wait for them, journal.h) are written at
 * once, with everything queued before them; a process that ends before its
 * creation is taken is written once. */
#define COALESCE_NS (2 * 1000000LL)

const double spd_store_bucket_bounds[SPD_STORE_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
};

void spd__store_queue_init(spd_store *s)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&s->mu, NULL);
	/* Retry deadlines are CLOCK_MONOTONIC (gRPC notes §7). */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
}

static void item_free(spd__store_item *it)
{
	spd_process_release(&it->p);
	free(it->request_id);
	free(it);
}

void spd__store_queue_release(spd_store *s)
{
	while (s->head != NULL) {
		spd__store_item *it = s->head;
		s->head = it->next;
		item_free(it);
	}
	s->tail = NULL;
	memset(s->by_key, 0, sizeof s->by_key);
	s->queued = 0;
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mu);
}

/* ---- the queue (mu held) ------------------------------------------------------- */

static spd__store_item **slot_of(spd_store *s, uint64_t key)
{
	spd__store_item **pp = &s->by_key[key % QUEUE_BUCKETS];

	while (*pp != NULL && (*pp)->key != key)
		pp = &(*pp)->hnext;
	return pp;
}

/* The queued item of KEY, or a new one at the tail (NULL: out of memory). */
static spd__store_item *queued_item(spd_store *s, uint64_t key)
{
	spd__store_item **pp = slot_of(s, key), *it = *pp;

	if (it != NULL)
		return it;
	it = calloc(1, sizeof *it);
	if (it == NULL)
		return NULL;
	it->key = key;
	*pp = it;
	if (s->tail != NULL) {
		s->tail->next = it;
	} else {
		s->head = it;
		s->head_ns = spd_clock_mono_ns();
		pthread_cond_signal(&s->cond); /* it waits COALESCE_NS from now */
	}
	s->tail = it;
	s->queued++;
	return it;
}

static void item_clear(spd__store_item *it)
{
	spd_process_release(&it->p);
	memset(&it->p, 0, sizeof it->p);
	free(it->request_id);
	it->request_id = NULL;
	it->has_fingerprint = false;
}

static bool journal_put(void *ctx, const spd_journal_record *rec, bool hold)
{
	spd_store *s = ctx;
	spd__store_item *it;
	spd_process copy;
	char *rid = NULL;
	bool held = false;

	/* Copied before taking mu: the writer waits on nothing of this. */
	if (spd__store_copy(&copy, rec->p) < 0)
		goto oom;
	if (rec->request_id != NULL && (rid = strdup(rec->request_id)) == NULL) {
		spd_process_release(&copy);
		goto oom;
	}
	pthread_mutex_lock(&s->mu);
	it = queued_item(s, rec->p->key);
	if (it == NULL) {
		pthread_mutex_unlock(&s->mu);
		spd_process_release(&copy);
		free(rid);
		goto oom;
	}
	/* The newest version replaces a queued one: one row write per record
	 * and transaction, whatever happened in between. */
	item_clear(it);
	it->remove = false;
	it->p = copy;
	snprintf(it->id, sizeof it->id, "%s", rec->p->id);
	it->request_id = rid;
	if (rec->fingerprint != NULL) {
		memcpy(it->fingerprint, rec->fingerprint, sizeof it->fingerprint);
		it->has_fingerprint = true;
	}
	/* A failing store holds nothing (SPEC §12): the end goes out now. */
	if (hold && !s->failing && !s->stopped) {
		if (!it->hold)
			s->holds_queued++;
		it->hold = held = true;
		pthread_cond_signal(&s->cond); /* someone waits: write now */
	}
	pthread_mutex_unlock(&s->mu);
	return held;
oom:
	/* Not written, and nothing held: the record stays right in memory. */
	spd_log(SPD_LOG_WARN, "store: out of memory; a record change is not written",
		SPD_LOG_STR("process_id", rec->p->id), SPD_LOG_END);
	return false;
}

static void journal_remove(void *ctx, uint64_t key, const char *id)
{
	spd_store *s = ctx;
	spd__store_item *it;

	pthread_mutex_lock(&s->mu);
	it = queued_item(s, key);
	if (it != NULL) {
		item_clear(it);
		it->remove = true;
		snprintf(it->id, sizeof it->id, "%s", id);
	}
	pthread_mutex_unlock(&s->mu);
	if (it == NULL)
		spd_log(SPD_LOG_WARN, "store: out of memory; an evicted record stays in the store",
			SPD_LOG_STR("process_id", id), SPD_LOG_END);
}

spd_journal_ops spd_store_journal(spd_store *s)
{
	spd_journal_ops ops = {.put = journal_put, .remove = journal_remove, .ctx = s};

	return ops;
}

/* Takes up to BATCH_MAX items off the queue (oldest first). */
static spd__store_item *take_batch(spd_store *s)
{
	spd__store_item *batch = s->head, *last = NULL, *it = s->head;
	size_t n = 0;

	while (it != NULL && n < BATCH_MAX) {
		s->holds_queued -= it->hold;
		*slot_of(s, it->key) = it->hnext;
		it->hnext = NULL;
		last = it;
		it = it->next;
		n++;
	}
	if (last == NULL)
		return NULL;
	last->next = NULL;
	s->head = it;
	if (it == NULL)
		s->tail = NULL;
	s->head_ns = spd_clock_mono_ns();
	s->queued -= n;
	return batch;
}

/* A failed BATCH goes back to the front of the queue, in its order, except
 * items a newer version queued since supersedes. */
static void give_back(spd_store *s, spd__store_item *batch)
{
	spd__store_item *keep = NULL, *last = NULL;

	while (batch != NULL) {
		spd__store_item *it = batch;
		batch = it->next;
		it->next = NULL;
		if (*slot_of(s, it->key) != NULL) {
			item_free(it);
			continue;
		}
		*slot_of(s, it->key) = it;
		if (last != NULL)
			last->next = it;
		else
			keep = it;
		last = it;
		s->queued++;
	}
	if (keep == NULL)
		return;
	last->next = s->head;
	if (s->head == NULL)
		s->tail = last;
	s->head = keep;
}

/* The held items of LIST (their holds are cleared), appended to *DONE (*N of
 * *CAP): the version each committed (COMMITTED), else given up on. False when
 * out of memory. */
static bool collect_holds(spd__store_item *list, bool committed, spd_journal_done **done,
			  size_t *n, size_t *cap)
{
	for (spd__store_item *it = list; it != NULL; it = it->next) {
		if (!it->hold)
			continue;
		if (*n == *cap) {
			size_t c = *cap ? 2 * *cap : 64;
			spd_journal_done *d = realloc(*done, c * sizeof *d);
			if (d == NULL)
				return false;
			*done = d;
			*cap = c;
		}
		(*done)[*n].key = it->key;
		(*done)[*n].seq = committed && !it->remove ? it->p.seq : SPD_JOURNAL_GAVE_UP;
		(*n)++;
		it->hold = false;
	}
	return true;
}

/* ---- one transaction ------------------------------------------------------------- */

static int step_reset(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Writes BATCH in one transaction. SQLITE_OK, or the failure (rolled back). */
static int write_batch(spd_store *s, spd__store_item *batch, size_t *count)
{
	int rc = step_reset(s->begin);

	*count = 0;
	for (spd__store_item *it = batch; rc == SQLITE_OK && it != NULL; it = it->next) {
		if (it->remove) {
			rc = sqlite3_bind_text(s->remove, 1, it->id, -1, SQLITE_STATIC);
			if (rc == SQLITE_OK)
				rc = step_reset(s->remove);
		} else {
			rc = spd__store_bind(s->upsert, it);
			if (rc == SQLITE_OK)
				rc = step_reset(s->upsert);
			else
				sqlite3_clear_bindings(s->upsert);
		}
		(*count)++;
	}
	if (rc == SQLITE_OK)
		rc = step_reset(s->commit);
	if (rc != SQLITE_OK && !sqlite3_get_autocommit(s->db))
		step_reset(s->rollback);
	return rc;
}

static void observe_commit(spd_store *s, double seconds, size_t records)
{
	size_t b = 0;

	while (b < SPD_STORE_BUCKETS && seconds > spd_store_bucket_bounds[b])
		b++;
	s->stats.commit_buckets[b]++;
	s->stats.commit_count++;
	s->stats.commit_seconds_sum += seconds;
	s->stats.commits++;
	spd_metrics_store_commit(seconds); /* spawnd_store_commit_seconds */
	s->stats.records += records;
}

/* ---- the writer thread ---------------------------------------------------------- */

static void *writer_main(void *arg)
{
	spd_store *s = arg;
	int64_t retry_at = 0;
	/* Room for a whole batch from the start: a commit's holds are always
	 * reported (an answer waits on each), whatever memory is left later. */
	spd_journal_done *done = malloc(BATCH_MAX * sizeof *done);
	size_t cap = done != NULL ? BATCH_MAX : 0, given_up = 0;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		spd__store_item *batch;
		size_t n = 0, count = 0;
		bool was_failing = s->failing, ok;
		int64_t t0, now;
		int rc;

		if (s->head == NULL) {
			if (s->stopping)
				break;
			pthread_cond_wait(&s->cond, &s->mu);
			continue;
		}
		now = spd_clock_mono_ns();
		if (s->failing && !s->stopping && now < retry_at) {
			struct timespec ts = {.tv_sec = retry_at / 1000000000,
					      .tv_nsec = retry_at % 1000000000};
			pthread_cond_timedwait(&s->cond, &s->mu, &ts);
			continue;
		}
		if (!s->failing && !s->stopping && s->holds_queued == 0 &&
		    s->queued < BATCH_MAX && now < s->head_ns + COALESCE_NS) {
			int64_t at = s->head_ns + COALESCE_NS;
			struct timespec ts = {.tv_sec = at / 1000000000, .tv_nsec = at % 1000000000};
			pthread_cond_timedwait(&s->cond, &s->mu, &ts);
			continue;
		}
		batch = take_batch(s);
		pthread_mutex_unlock(&s->mu);

		t0 = spd_clock_mono_ns();
		rc = write_batch(s, batch, &count);
		now = spd_clock_mono_ns();
		ok = rc == SQLITE_OK;

		pthread_mutex_lock(&s->mu);
		if (ok) {
			observe_commit(s, (double)(now - t0) / 1e9, count);
			s->failing = false;
			collect_holds(batch, true, &done, &n, &cap);
			while (batch != NULL) {
				spd__store_item *it = batch;
				batch = it->next;
				item_free(it);
			}
		} else {
			s->stats.errors++;
			spd_metrics_store_error(); /* spawnd_store_errors_total */
			s->failing = true;
			retry_at = now + s->retry_ms * 1000000;
			/* Nothing waits on a failing store: every hold goes, the
			 * queued ones' too, and the records are tried again later. */
			collect_holds(batch, false, &done, &n, &cap);
			collect_holds(s->head, false, &done, &n, &cap);
			s->holds_queued = 0;
			give_back(s, batch);
		}
		s->stats.failing = s->failing;
		s->stats.queued = s->queued;
		/* A last try at stop that failed: nothing more will be tried.
		 * The holds it gave up on are reported below, with the rest. */
		if (!ok && s->stopping) {
			given_up = n;
			break;
		}
		pthread_mutex_unlock(&s->mu);

		if (!ok && !was_failing)
			spd_log(SPD_LOG_ERROR,
				"store: cannot write; serving from memory, events go out uncommitted "
				"until writes work again (retrying)",
				SPD_LOG_STR("store", s->path), SPD_LOG_STR("error", sqlite3_errstr(rc)),
				SPD_LOG_STR("detail", sqlite3_errmsg(s->db)),
				SPD_LOG_INT("retry_ms", s->retry_ms), SPD_LOG_END);
		else if (ok && was_failing)
			spd_log(SPD_LOG_INFO, "store: writes work again", SPD_LOG_STR("store", s->path),
				SPD_LOG_END);
		if (n > 0 && s->reg != NULL)
			spd_registry_on_journaled(s->reg, done, n);
		if (ok != !was_failing && s->reg != NULL)
			spd_registry_set_store_health(s->reg, ok);
		pthread_mutex_lock(&s->mu);
	}
	/* Stopped: release whatever is still held, write nothing more. */
	{
		size_t n = given_up;
		s->stopped = true;
		collect_holds(s->head, false, &done, &n, &cap);
		s->holds_queued = 0;
		if (s->queued > 0)
			spd_log(SPD_LOG_ERROR, "store: records not written at stop",
				SPD_LOG_STR("store", s->path), SPD_LOG_INT("count", s->queued),
				SPD_LOG_END);
		pthread_mutex_unlock(&s->mu);
		if (n > 0 && s->reg != NULL)
			spd_registry_on_journaled(s->reg, done, n);
	}
	free(done);
	return NULL;
}

int spd_store_start(spd_store *s, spd_registry *reg)
{
	int rc;

	s->reg = reg;
	rc = pthread_create(&s->thread, NULL, writer_main, s);
	if (rc != 0)
		return -rc;
	s->started = true;
	return 0;
}

void spd_store_stop(spd_store *s)
{
	if (s == NULL || !s->started)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	s->started = false;
	spd_log(SPD_LOG_INFO, "store: writer stopped", SPD_LOG_STR("store", s->path),
		SPD_LOG_INT("commits", s->stats.commits), SPD_LOG_INT("records", s->stats.records),
		SPD_LOG_INT("errors", s->stats.errors),
		SPD_LOG_INT("commit_us_mean",
			    s->stats.commit_count
				    ? (int64_t)(s->stats.commit_seconds_sum * 1e6 / s->stats.commit_count)
				    : 0),
		SPD_LOG_END);
}

void spd_store_stats_get(spd_store *s, spd_store_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->stats;
	out->queued = s->queued;
	out->failing = s->failing;
	pthread_mutex_unlock(&s->mu);
}
