/* The store: process records that survive a restart (SPEC §12 "Store"), in
 * one SQLite file in WAL mode, written by one thread of its own.
 *
 * What it keeps: every record, at each change the registry tells it of
 * (created, each state entered, flags set), as one row: target, args, labels,
 * caller, request_id and its fingerprint, state, flags, error, exit code and
 * signal, result, output heads and tails, usage, times, the last event
 * sequence. Rows leave with their record (history.max_records,
 * history.retention), so the file is bounded by the history (README "Store").
 *
 * Its contract with the registry is the journal (registry/journal.h): put and
 * remove copy the record and queue it; the writer thread commits what is
 * queued in one transaction at a time (group commit: whatever came while the
 * last one ran, one row per record, the newest version of each), then tells
 * the registry which held records (new ones, ends) it may now show, and the
 * version committed of each. A hold is written at once; other changes wait a
 * little for company. A failing write (disk
 * full, I/O error) is logged once, counted, turns health spawnd.store
 * NOT_SERVING, releases every hold (events go out uncommitted rather than be
 * held back), keeps the unwritten records queued and tries again every
 * retry_ms; the first commit that works logs it and turns the health back.
 * What was committed before stays committed: each transaction is atomic.
 *
 * Lifecycle (front/main.c): spd_store_open (before the launcher is forked:
 * no thread yet), spd_store_load into the registry, spd_store_start, ...
 * serving ..., spd_store_stop (commits what is left), spd_store_close.
 *
 * Files: PATH, PATH-wal and PATH-shm (SQLite's), and PATH.lock, which a
 * running spawnd holds (an fcntl lock; it contains its pid) so that a second
 * spawnd on the same store refuses to start, naming the first.
 */
#ifndef SPAWND_STORE_STORE_H
#define SPAWND_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/config/config.h"
#include "service/registry/journal.h"
#include "service/registry/process.h"
#include "service/registry/registry.h"

typedef struct spd_store spd_store;

/* The version of the schema this spawnd writes. Older stores are migrated
 * on open (schema.c); a newer one is refused. */
#define SPD_STORE_SCHEMA_VERSION 1

/* Room for any error message of this module. */
#define SPD_STORE_ERR_MAX 1024

typedef struct spd_store_options {
	const char *path;           /* the SQLite file (created if missing) */
	spd_store_sync sync;        /* NORMAL or FULL (config.h) */
	int64_t retry_ms;           /* after a failed write, the next try */
	int64_t now_ns;             /* CLOCK_REALTIME for records found live (LOST); 0: now */
} spd_store_options;

#define SPD_STORE_OPTIONS_INIT {.sync = SPD_STORE_SYNC_NORMAL, .retry_ms = 1000}

/* Opens the store: takes PATH.lock, opens (or creates) PATH in WAL mode,
 * checks it (quick_check), migrates its schema, and records every process
 * it finds PENDING or RUNNING (spawnd died under it) as FAILED with kind
 * LOST, "spawnd restarted while this process was running", ran = whether it
 * had started, one more event in its sequence. Starts no thread.
 * Returns 0 and *OUT, or -errno with ERR naming the file and the reason:
 * -EBUSY another spawnd holds it ("held by pid N"), -EPROTO a newer schema,
 * -EILSEQ not a spawnd store or corrupt, others as the system said. */
int spd_store_open(const spd_store_options *o, spd_store **out, char err[SPD_STORE_ERR_MAX]);

/* For --check-config: whether PATH could be opened by spd_store_open (it
 * opens, is an SQLite file that passes quick_check, and its schema is not
 * newer), without taking the lock or migrating; it writes no record (SQLite
 * itself may fold the WAL a crash left into the file). Safe while a spawnd
 * runs on PATH. A missing file is fine when its directory is writable. 0, or
 * -errno with ERR as spd_store_open. */
int spd_store_check(const char *path, char err[SPD_STORE_ERR_MAX]);

/* Called by spd_store_load for each record, oldest first. P is the caller's
 * to take (spd_process_release it otherwise; zeroed means taken).
 * REQUEST_ID (NULL: none) and FINGERPRINT (NULL: none) are borrowed. A
 * negative return stops the load and is returned. */
typedef int (*spd_store_load_fn)(void *ctx, spd_process *p, const char *request_id,
				 const uint8_t *fingerprint);

/* Reads every record (main thread, before spd_store_start). 0 or the first
 * error (-errno, ERR set). */
int spd_store_load(spd_store *s, spd_store_load_fn fn, void *ctx, char err[SPD_STORE_ERR_MAX]);

/* The journal ops for the registry (registry/journal.h). Valid from open on:
 * what is queued before spd_store_start waits for the writer. */
spd_journal_ops spd_store_journal(spd_store *s);

/* Starts the writer thread, which reports commits and health to REG
 * (borrowed: it must outlive spd_store_stop). 0 or -errno. */
int spd_store_start(spd_store *s, spd_registry *reg);

/* Commits what is queued (one last try when failing), stops the writer and
 * releases every hold. Call when nothing will be put any more, before the
 * registry is destroyed. Idempotent. */
void spd_store_stop(spd_store *s);

/* Closes the file and releases the lock (after spd_store_stop). NULL is fine. */
void spd_store_close(spd_store *s);

/* ---- observations, for metrics (spawnd_store_errors_total,
 * spawnd_store_commit_seconds) ---------------------------------------------- */

/* Upper bounds (seconds) of the commit latency histogram's buckets; the last
 * bucket (index SPD_STORE_BUCKETS) is +Inf. */
#define SPD_STORE_BUCKETS 12
extern const double spd_store_bucket_bounds[SPD_STORE_BUCKETS];

typedef struct spd_store_stats {
	uint64_t errors;            /* transactions that failed (logged once per outage) */
	uint64_t commits;           /* transactions committed */
	uint64_t records;           /* row writes and deletes committed */
	uint64_t commit_count;      /* observations of commit latency (== commits) */
	double commit_seconds_sum;  /* their sum, seconds */
	uint64_t commit_buckets[SPD_STORE_BUCKETS + 1]; /* per bucket, not cumulative */
	uint64_t queued;            /* records waiting for the writer */
	bool failing;               /* writes fail now (spawnd.store NOT_SERVING) */
} spd_store_stats;

/* A consistent copy of the counters. Any thread. */
void spd_store_stats_get(spd_store *s, spd_store_stats *out);

#endif
