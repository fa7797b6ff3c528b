/* The registry's state, shared by the files that implement registry.h:
 * registry.c (records, starts, the launcher's events, subscriptions,
 * shutdown), health.c (health and its subscribers), listing.c
 * (ListProcesses). Internal: only service/registry includes it. Everything
 * here is guarded by spd_registry.mu. The lower modules (ring.h, watchers.h)
 * do not include it: they get what they work on as arguments.
 */
#ifndef SPAWND_REGISTRY_REGISTRY_IMPL_H
#define SPAWND_REGISTRY_REGISTRY_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "service/common/tail.h"
#include "service/registry/fingerprint.h"
#include "service/registry/index.h"
#include "service/registry/journal.h"
#include "service/registry/registry.h"
#include "service/registry/ring.h"
#include "service/registry/watchers.h"

#define BUCKETS 16384u

/* A target as the registry holds it: one version of its settings. A reload
 * that changes a target makes a new version (a new id, for the launcher),
 * and the old one lives on, no longer current, while processes of it are
 * live: they keep the settings they started with. Counted by those
 * processes; freed, and the launcher told (RETIRE), once it is neither
 * current nor held. */
typedef struct spd__target {
	struct spd__target *next;  /* in spd_registry.retired, when not current */
	uint32_t id;               /* this version's id (wire/boot.h) */
	spd_target_config cfg;     /* owned copy */
	bool current;              /* in spd_registry.targets: new starts use it */
	uint32_t refs;             /* live processes of this version */
	uint32_t running, pending;
	uint32_t active;  /* START sent and not terminal: counts against max_concurrent */
	char *error;      /* from HELLO/RELOADED or a zygote going down; NULL = usable */
	bool preparing;   /* a RELOAD added it and RELOADED has not said yet */
	int64_t zygote_down_ns;  /* CLOCK_MONOTONIC: its zygote went down then; 0 = up */
	uint32_t idle;    /* pre-started children waiting (the launcher's IDLE) */
	char memory_limit_mechanism[16];  /* from HELLO; "" = none or unknown */
} spd__target;

/* The global settings that a reload may change (the rest need a restart). */
typedef struct spd__limits {
	uint32_t max_running, max_pending;
	uint32_t history_max_records;
	int64_t history_retention_ms;
} spd__limits;

/* A process record and what the registry keeps with it. */
typedef struct spd__entry {
	spd_process p;
	struct spd__entry *id_next, *key_next, *rid_next;  /* hash chains */
	struct spd__entry *older, *newer;  /* creation order */
	spd__watcher *watchers;            /* its subscriptions (the start waiter first) */
	spd__target *target;               /* held while live; NULL once terminal */
	bool destroy_requested;            /* Destroy came while pending or running */
	int64_t kill_at_ns;                /* DESTROY sent: when its grace ends (monotonic) */
	bool sent;                         /* START sent: holds a running slot until terminal */
	bool queued;                       /* waiting in the FIFO for a slot */
	int64_t queued_ns;                 /* CLOCK_MONOTONIC: when it was queued */
	struct spd__entry *queue_next;
	uint8_t *input;                    /* kept only while queued */
	size_t input_len;
	spd_watch_fn start_fn;             /* answers StartProcess when it leaves the queue */
	void *start_ctx;
	char *request_id;                  /* idempotency key, or NULL */
	uint8_t fingerprint[SPD_FINGERPRINT_LEN];  /* of the request that created it */
	bool held;                         /* terminal, not yet committed (journal.c) */
	bool unconfirmed;                  /* new, no version committed yet (journal.c):
					    * shown to no one, its events only in its ring */
	spd__ring ring;                    /* its retained events (SPEC §11) */
	spd_tail live[2];                  /* stdout, stderr so far, while live (snapshots) */
} spd__entry;

/* The records of one target name, by state (listing.c). Kept while the
 * registry lives: names are bounded by the configs it ran. */
typedef struct spd__name_index {
	struct spd__name_index *next;
	char *name;
	spd__index by_state[SPD_STATE_COUNT];
} spd__name_index;

#define NAME_BUCKETS 256u

struct spd_registry {
	pthread_mutex_t mu;
	pthread_cond_t idle;         /* signalled when live drops */
	spd__limits lim;
	spd_registry_ops ops;
	spd__entry *by_id[BUCKETS];
	spd__entry *by_key[BUCKETS];
	spd__entry *by_rid[BUCKETS];
	spd__entry *oldest, *newest;
	/* listing.c: every record by state, and by target name and state, in
	 * key (= creation) order, for filtered pages and eviction. If an insert
	 * ever fails for memory, listing scans from then on (index_broken). */
	spd__index by_state[SPD_STATE_COUNT];
	spd__name_index *names[NAME_BUCKETS];
	bool index_broken;
	size_t count, live;
	size_t active;               /* START sent and not terminal: against max_running */
	spd__entry *queue_head, *queue_tail;  /* PENDING for a slot, FIFO */
	size_t queued;
	uint64_t next_key, next_watch_id;
	spd__target **targets;       /* the current ones, in the config's order */
	size_t target_count;
	spd__target *retired;        /* older versions still held by processes */
	uint32_t next_target_id;
	bool shutting_down, launcher_lost;
	unsigned listeners_down;              /* health.c: listeners not accepting */
	spd__watcher *global;        /* watch-all subscriptions */
	size_t ring_bytes;           /* output bytes held in every ring */
	int64_t retention_checked_ns;
	struct spd__health_sub *health_subs;  /* health.c */
	/* journal.c: the store, when there is one (journal.h). */
	spd_journal_ops journal;
	bool has_journal;
	bool store_failing;          /* health spawnd.store NOT_SERVING */
	pthread_cond_t journaled;    /* holds were released (listing.c waits) */
	/* The timer thread: fails starts that waited zygote_wait for a zygote. */
	pthread_t timer;
	pthread_cond_t timer_cond;   /* the queue or a zygote changed; stopping */
	bool timer_started, timer_stop;
};

spd__entry *spd__find_key(spd_registry *r, uint64_t key);
/* registry.c, for journal.c: the tables, eviction, and what a Watch that
 * subscribed while E was held gets once it is released. */
spd__entry *spd__find_id(spd_registry *r, const char *id);
void spd__link_entry(spd_registry *r, spd__entry *e);
void spd__evict(spd_registry *r);
void spd__catch_up(spd__watcher *w, const spd__entry *e);
/* A version of the new record E is committed (or the journal gave up on it):
 * everything that waited for it is told what it missed (journal.h). What
 * would show E's end waits further while E->held. */
void spd__release_created(spd_registry *r, spd__entry *e);

/* --- journal.c --- */

/* E changed: tells the journal. HOLD: E is new (PENDING) or just became
 * terminal, and what shows this version waits for its commit when the
 * journal takes the hold (E->unconfirmed, E->held set). Returns true while
 * E's events must not be delivered (E->unconfirmed or E->held); false
 * without a journal or when it is failing. */
bool spd__journal_put(spd_registry *r, spd__entry *e, bool hold);
/* E leaves the history: the journal forgets it. */
void spd__journal_remove(spd_registry *r, spd__entry *e);
/* A watcher for a held E: it is told what it asked for (W->catchup_after,
 * spd__catch_up) when E's hold is released. Links W into E's watchers. */
void spd__journal_defer(spd__entry *e, spd__watcher *w, uint64_t after);

/* Starts queued processes, oldest first, while slots are free (registry.c). */
void spd__dispatch(spd_registry *r);

/* --- targets.c: target versions --- */

/* Makes CFG's targets the current ones (ids 1..n). Returns 0 or -ENOMEM. */
int spd__targets_init(spd_registry *r, const spd_config *cfg);
/* Frees every version, current or not (spd_registry_destroy). */
void spd__targets_release(spd_registry *r);
/* The current target named NAME, or NULL. */
spd__target *spd__find_target(spd_registry *r, const char *name);
/* A live process of T ended: one hold less. A version no longer current
 * and no longer held is retired (the launcher told) and freed. */
void spd__target_put(spd_registry *r, spd__target *t);

/* Processes of every version of a target's name. */
typedef struct spd__counts {
	uint32_t running, pending, active;
} spd__counts;
void spd__name_counts(spd_registry *r, const spd__target *t, spd__counts *n);

/* --- listing.c: the indexes --- */

/* E (linked, in state E->p.state) goes into the indexes / out of them. */
void spd__index_add(spd_registry *r, spd__entry *e);
void spd__index_del(spd_registry *r, spd__entry *e);
/* Frees the indexes (spd_registry_destroy). */
void spd__indexes_release(spd_registry *r);
/* The oldest evictable-looking terminal record after key AFTER (0: from the
 * start), in key order: eviction's walk, which skips live records. */
spd__entry *spd__oldest_terminal_after(spd_registry *r, uint64_t after);

/* --- health.c --- */

/* Tells health subscribers whose status changed. Call after changing
 * shutting_down, launcher_lost or a target's error, with the lock held. */
void spd__health_changed(spd_registry *r);
/* Frees the remaining health subscriptions (spd_registry_destroy). */
void spd__health_release(spd_registry *r);

#endif
