/* Subscriptions to process events and their delivery (SPEC §11): a watcher is
 * one subscription (a Watch stream, a waiting StartProcess or Destroy), kept in
 * a singly linked list, a process's own or the watch-all list.
 *
 * This module owns the watchers and nothing else: it knows neither records
 * nor rings nor locks. The caller (registry.c) holds the registry lock around
 * every call, hands each event down once, and is never called back.
 *
 * A watcher ends exactly once, through spd__watcher_end(): its release
 * callback runs, then it is freed. Delivery ends the watchers that are done
 * (one-process watchers after the terminal event or when FN returns false,
 * watch-all ones when FN returns false, the start waiter after one note).
 */
#ifndef SPAWND_REGISTRY_WATCHERS_H
#define SPAWND_REGISTRY_WATCHERS_H

#include <stdbool.h>
#include <stdint.h>

#include "service/registry/registry.h"

typedef struct spd__watcher {
	struct spd__watcher *next;
	uint64_t id;
	spd_watch_fn fn;
	spd_output_fn out_fn;          /* NULL: no OUTPUT events */
	const spd_watch_codec *codec;  /* NULL: MSG is NULL */
	void (*release)(void *ctx);    /* NULL: none */
	void *ctx;
	bool once;                     /* the start waiter: one note, whatever FN returns */
	bool catchup;                  /* came while its record was held (journal.h): told
					* its snapshot or replay (after catchup_after) on
					* release, never the terminal STATE note */
	uint64_t catchup_after;
	bool catchup_from_start;       /* Run: after 0 replays from PENDING, no SNAPSHOT */
	char **selector;               /* watch-all: key, value, ..., NULL (NULL: not watch-all) */
	uint32_t selector_count;
} spd__watcher;

/* A watcher for WS's callbacks, not in any list yet. SELECTOR, for a watch-all
 * subscription, is WS's selector as a NULL-terminated copy: taken (freed with
 * the watcher, also when this fails). NULL on allocation failure. */
spd__watcher *spd__watcher_create(uint64_t id, const spd_watch_spec *ws, char **selector);

/* Ends W: runs its release callback, then frees it. W must be in no list. */
void spd__watcher_end(spd__watcher *w);

/* True if P's labels hold every key=value of SELECTOR (2 * N strings). */
bool spd__labels_match(const spd_process *p, const char *const *selector, uint32_t n);

/* Tells one watcher (not in a list) of an event, encoded for it alone: a
 * snapshot, a replayed state. Returns what FN returned. */
bool spd__watcher_tell(spd__watcher *w, const spd_process *p, spd_note note);

/* The same for a replayed OUTPUT event (no-op for a watcher without output). */
void spd__watcher_tell_output(spd__watcher *w, const spd_output_event *ev);

/* The state P just entered, to every watcher in *OWN (P's) and to those in
 * *ALL whose selector matches P: each codec encodes it once. Ends the
 * watchers that are done. */
void spd__watchers_notify(spd__watcher **own, spd__watcher **all, const spd_process *p);

/* An OUTPUT chunk of EV->p to the watchers of output in OWN and the matching
 * ones in ALL, encoded once per codec. */
void spd__watchers_output(spd__watcher *own, spd__watcher *all, const spd_output_event *ev);

/* Unlinks and ends the watcher ID of *LIST; false if it is not there. */
bool spd__watchers_remove(spd__watcher **list, uint64_t id);

/* Tells every watcher of *LIST an ABORT note (P: their process, NULL for
 * watch-all), then ends it; *LIST is empty afterwards. */
void spd__watchers_abort(spd__watcher **list, const spd_process *p);

/* Ends every watcher of *LIST without a note. */
void spd__watchers_end_all(spd__watcher **list);

#endif
