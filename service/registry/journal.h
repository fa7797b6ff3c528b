/* The registry's journal: where each record goes at every change, so that it
 * outlives this spawnd (the store, service/store, SPEC §12 "Store"). The
 * registry knows only these ops; the journal knows the registry only through
 * the spd_registry_on_journaled() call below.
 *
 * The promise (SPEC §12): a terminal event, a Destroy(wait) reply and a
 * GetProcess (spd_registry_get_committed) showing a terminal record are
 * delivered only after that record is committed. When the journal takes a
 * terminal record with HOLD and says it will confirm it (put returns true),
 * the registry holds everything that would show that record's end — its
 * terminal event to watchers, Destroy and retried StartProcess answers, new
 * Watch and GetProcess calls on it, the ListProcesses pages that hold it —
 * until spd_registry_on_journaled() names it with that version committed.
 * The record's counters and slots are freed at once: only what callers see
 * waits.
 *
 * The same for a new record (its PENDING, sequence 1, put with HOLD): nothing
 * shows the process to anyone — the StartProcess or Run answer, its events
 * to Run, Watch and watch-all, GetProcess, Destroy, ListProcesses — until
 * some version of it is committed, so that a client never holds an id (or a
 * request_id answered) that a spawnd restarted after a crash would not know.
 * The launch is not delayed: the child starts at once, and what it did
 * meanwhile is told (from the record's ring, gap-free) on confirmation.
 *
 * A journal that cannot write (disk full) returns false: nothing is held
 * (SPEC §12: events are delivered uncommitted rather than held back); one
 * that fails with holds pending gives them up (SPD_JOURNAL_GAVE_UP).
 *
 * Threads and locks: put and remove run with the registry lock held (they
 * copy and queue; they must not block or call into the registry).
 * spd_registry_on_journaled and spd_registry_set_store_health take it (call
 * them from the journal's own thread, holding none of its locks that put
 * takes).
 */
#ifndef SPAWND_REGISTRY_JOURNAL_H
#define SPAWND_REGISTRY_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/registry/fingerprint.h"
#include "service/registry/process.h"
#include "service/registry/registry.h"

/* A record as the journal sees it. Borrowed for the call: copy what is kept. */
typedef struct spd_journal_record {
	const spd_process *p;          /* p->key: the registry's key, until restart */
	const char *request_id;        /* NULL: none */
	const uint8_t *fingerprint;    /* SPD_FINGERPRINT_LEN bytes; NULL without request_id */
} spd_journal_record;

typedef struct spd_journal_ops {
	/* REC changed (created, a state entered, flags set). With HOLD (REC is
	 * new or terminal), returns true when spd_registry_on_journaled() will
	 * name REC's key once a version at least as new as REC is committed (or
	 * given up on), false when it will not (the journal is failing: deliver
	 * now). Without HOLD the return value is ignored. */
	bool (*put)(void *ctx, const spd_journal_record *rec, bool hold);
	/* The record left the history (eviction): forget it. */
	void (*remove)(void *ctx, uint64_t key, const char *id);
	void *ctx;
} spd_journal_ops;

/* What spd_registry_on_journaled() is told of one held record: the version
 * of sequence SEQ (spd_process.seq) of the record of KEY is committed, or
 * SEQ is SPD_JOURNAL_GAVE_UP: it will not be (the store fails, or stopped),
 * deliver everything. */
typedef struct spd_journal_done {
	uint64_t key;
	uint64_t seq;
} spd_journal_done;

#define SPD_JOURNAL_GAVE_UP UINT64_MAX

/* Attaches a journal (once, before serving; OPS is copied). From then on the
 * health name spawnd.store exists (SERVING until spd_registry_set_store_health
 * says otherwise). */
void spd_registry_set_journal(spd_registry *r, const spd_journal_ops *ops);

/* Adds a terminal record read back from the journal after a restart (before
 * serving, oldest first). Takes what P owns (P is zeroed on success; on
 * failure it is left to the caller). It gets a new key; its events were not
 * kept: a resume below its last sequence gets a gap (SPEC §12 "Resume
 * points"). REQUEST_ID and FINGERPRINT (may be NULL) are copied. Then the
 * history bounds apply (evicted records are removed from the journal).
 * -EINVAL not terminal, -EEXIST its id is known, -ENOMEM. */
int spd_registry_restore(spd_registry *r, spd_process *p, const char *request_id,
			 const uint8_t *fingerprint);

/* The journal is done with these held records (DONE[i]: committed up to a
 * version, or given up on): what was held for them is delivered now — a new
 * record's answers and events once any version of it is committed, an end
 * once the terminal version is. Unknown keys and records not held are
 * ignored. Any thread but one holding the registry lock. */
void spd_registry_on_journaled(spd_registry *r, const spd_journal_done *done, size_t n);

/* Whether the journal's writes work (health name spawnd.store). */
void spd_registry_set_store_health(spd_registry *r, bool serving);

#endif
