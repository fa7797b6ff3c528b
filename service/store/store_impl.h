/* The store's state, shared by its files: store.c (open, check, load, close),
 * lock.c (the holder lock), schema.c (versions and migrations), record.c
 * (a record <-> a row), writer.c (the queue and the writer thread).
 * Internal: only service/store includes it. */
#ifndef SPAWND_STORE_STORE_IMPL_H
#define SPAWND_STORE_STORE_IMPL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "service/registry/fingerprint.h"
#include "service/registry/process.h"
#include "service/store/store.h"

#define QUEUE_BUCKETS 4096u

/* One queued change: the newest version of a record, or its removal. */
typedef struct spd__store_item {
	struct spd__store_item *next;   /* FIFO, oldest first */
	struct spd__store_item *hnext;  /* queued items by key */
	uint64_t key;
	bool remove;
	bool hold;                      /* the registry holds its end until it is written */
	char id[SPD_ID_LEN + 1];
	/* A deep copy (remove: empty). */
	spd_process p;
	char *request_id;
	uint8_t fingerprint[SPD_FINGERPRINT_LEN];
	bool has_fingerprint;
} spd__store_item;

struct spd_store {
	char *path;
	sqlite3 *db;
	sqlite3_stmt *upsert, *remove, *begin, *commit, *rollback;
	int lock_fd;
	int64_t retry_ms;

	/* writer.c: guarded by mu; put/remove take it under the registry's lock,
	 * the writer never holds it while it calls into the registry. */
	pthread_mutex_t mu;
	pthread_cond_t cond;           /* queued, or stopping */
	spd__store_item *head, *tail;
	spd__store_item *by_key[QUEUE_BUCKETS];
	size_t queued;
	size_t holds_queued;           /* queued items with a hold */
	int64_t head_ns;               /* CLOCK_MONOTONIC: the oldest queued item came then */
	bool failing;                  /* the last transaction failed */
	bool stopping, started, stopped;
	pthread_t thread;
	spd_registry *reg;
	spd_store_stats stats;
};

/* --- schema.c --- */

/* Brings the open database to SPD_STORE_SCHEMA_VERSION (in one transaction),
 * or refuses: -EPROTO newer, -EILSEQ not ours. WRITE false: only reads the
 * version and checks it (for spd_store_check). */
int spd__store_schema(sqlite3 *db, const char *path, bool write, char err[SPD_STORE_ERR_MAX]);

/* --- record.c --- */

/* Prepares S's upsert statement (and remove). 0 or an SQLite error code. */
int spd__store_prepare(spd_store *s);
/* Binds ITEM (not a removal) to S->upsert. An SQLite code. */
int spd__store_bind(sqlite3_stmt *st, const spd__store_item *item);
/* The SELECT that spd__store_read_row understands, oldest first. */
extern const char spd__store_select_sql[];
/* Fills P (zeroed first) and the rest from the current row of ST. -ENOMEM
 * or -EILSEQ (a row this spawnd cannot read). REQUEST_ID and FINGERPRINT
 * point into ST's row (valid until the next step). */
int spd__store_read_row(sqlite3_stmt *st, spd_process *p, const char **request_id,
			const uint8_t **fingerprint);
/* A deep copy of SRC into DST (zeroed first). -ENOMEM. */
int spd__store_copy(spd_process *dst, const spd_process *src);

/* --- writer.c --- */

void spd__store_queue_init(spd_store *s);
/* Frees everything still queued (close). */
void spd__store_queue_release(spd_store *s);

#endif
