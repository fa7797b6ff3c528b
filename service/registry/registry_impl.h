/* The registry's state, shared by its files: registry.c (records, starts,
 * the launcher's events, shutdown), watchers.c (watchers, the per-process
 * event ring, replay, watch-all), listing.c (ListProcesses). Internal: only
 * service/registry includes it. Everything here is guarded by spd_registry.mu.
 */
#ifndef SPAWND_REGISTRY_REGISTRY_IMPL_H
#define SPAWND_REGISTRY_REGISTRY_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "service/common/tail.h"
#include "service/registry/registry.h"

#define BUCKETS 16384u

typedef struct watcher {
	struct watcher *next;
	uint64_t id;
	spd_watch_fn fn;
	spd_output_fn out_fn;  /* NULL: no OUTPUT events */
	void *ctx;
	bool once;             /* the start waiter: called once, whatever it returns */
	char **selector;       /* watch-all: key, value, ..., NULL (NULL: every process) */
	uint32_t selector_count;
} watcher;

/* One retained event of a process (the ring of SPEC §11): enough to replay it
 * as it was first sent. */
typedef struct ev_rec {
	uint64_t seq;
	bool output;           /* OUTPUT, else a state entered */
	/* state events: the record as it was then */
	spd_state state;
	bool destroyed, canceled;
	int32_t pid;
	int64_t started_ns;
	/* output events */
	int stream;
	uint64_t offset;
	uint8_t *data;
	size_t len;
} ev_rec;

typedef struct entry {
	spd_process p;
	struct entry *id_next, *key_next, *rid_next;  /* hash chains */
	struct entry *older, *newer;       /* creation order */
	watcher *watchers;
	size_t target_index;
	bool destroy_requested;            /* Destroy came while pending or running */
	int64_t kill_at_ns;                /* DESTROY sent: when its grace ends (monotonic) */
	bool sent;                         /* START sent: holds a running slot until terminal */
	bool queued;                       /* waiting in the FIFO for a slot */
	int64_t queued_ns;                 /* CLOCK_MONOTONIC: when it was queued */
	struct entry *queue_next;
	uint8_t *input;                    /* kept only while queued */
	size_t input_len;
	spd_watch_fn start_fn;             /* answers StartProcess when it leaves the queue */
	void *start_ctx;
	char *request_id;                  /* idempotency key, or NULL */
	uint64_t fingerprint;              /* of the request that created it */
	ev_rec *ring;                      /* retained events, oldest at ring_start */
	size_t ring_start, ring_len, ring_cap;
	size_t ring_bytes;                 /* output bytes held in the ring */
	uint64_t evicted_max;              /* highest sequence no longer retained, 0 none */
	uint64_t evicted_state_max;        /* the same, among state events */
	spd_tail live[2];                  /* stdout, stderr so far, while live (snapshots) */
} entry;

typedef struct target_state {
	uint32_t running, pending;
	uint32_t active;  /* START sent and not terminal: counts against max_concurrent */
	char *error;      /* from HELLO or a zygote going down; NULL = usable */
	int64_t zygote_down_ns;  /* CLOCK_MONOTONIC: its zygote went down then; 0 = up */
	char memory_limit_mechanism[16];  /* from HELLO; "" = none or unknown */
} target_state;

struct spd_registry {
	pthread_mutex_t mu;
	pthread_cond_t idle;         /* signalled when live drops */
	const spd_config *cfg;
	spd_registry_ops ops;
	entry *by_id[BUCKETS];
	entry *by_key[BUCKETS];
	entry *by_rid[BUCKETS];
	entry *oldest, *newest;
	size_t count, live;
	size_t active;               /* START sent and not terminal: against max_running */
	entry *queue_head, *queue_tail;  /* PENDING for a slot, FIFO */
	size_t queued;
	uint64_t next_key, next_watch_id;
	target_state *targets;
	bool shutting_down, launcher_lost;
	unsigned listeners_down;              /* health.c: listeners not accepting */
	watcher *global;             /* watch-all subscriptions */
	size_t ring_bytes;           /* output bytes held in every ring */
	int64_t retention_checked_ns;
	struct spd__health_sub *health_subs;  /* health.c */
	/* The timer thread: fails starts that waited zygote_wait for a zygote. */
	pthread_t timer;
	pthread_cond_t timer_cond;   /* the queue or a zygote changed; stopping */
	bool timer_started, timer_stop;
};

uint32_t spd__hash_str(const char *s);
entry *spd__find_id(spd_registry *r, const char *id);

/* --- watchers.c --- */

/* Records the state E just entered in its ring and tells its watchers and the
 * matching watch-all subscribers; drops watchers that are done. */
void spd__notify_state(spd_registry *r, entry *e);
/* Records an OUTPUT chunk (E's sequence already advanced) and delivers it. */
void spd__notify_output(spd_registry *r, entry *e, int stream, uint64_t offset,
			const void *chunk, size_t len);
/* Frees E's watchers and ring. */
void spd__entry_release_watch(spd_registry *r, entry *e);
/* Calls FN with a SNAPSHOT of E: a live process's snapshot carries the output
 * seen so far as its tails. */
void spd__snapshot(entry *e, spd_watch_fn fn, void *ctx, spd_note note);
/* Frees E's live output tails (when its final tails arrive, or with E). */
void spd__live_release(entry *e);
/* True if E's labels hold every key=value of SELECTOR (2 * n strings). */
bool spd__labels_match(const entry *e, char *const *selector, uint32_t n);
int spd__add_watcher(spd_registry *r, entry *e, spd_watch_fn fn, spd_output_fn out_fn,
		     void *ctx, uint64_t *id);

/* --- health.c --- */

/* Tells health subscribers whose status changed. Call after changing
 * shutting_down, launcher_lost or a target's error, with the lock held. */
void spd__health_changed(spd_registry *r);
/* Frees the remaining health subscriptions (spd_registry_destroy). */
void spd__health_release(spd_registry *r);

#endif
