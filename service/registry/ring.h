/* The per-process event ring (SPEC §11): the retained events of one process,
 * so that a watcher resuming with after_sequence gets exactly what it missed,
 * or learns (a gap) that some of it was evicted.
 *
 * A ring is a value embedded in its process's record and owned by it; it
 * knows nothing of the registry, its lock or its watchers. The caller
 * serializes every call (the registry's lock). TOTAL, passed to the calls
 * that add or drop output, is the caller's count of output bytes held by all
 * its rings; each call keeps it up to date.
 *
 * Bounds: RING_EVENTS events and SPD__RING_OUTPUT_BYTES of output per ring
 * (output goes first, oldest first; state events are few and small). The
 * bound across rings is the caller's: spd__ring_cut() drops all but the
 * newest event of a ring.
 */
#ifndef SPAWND_REGISTRY_RING_H
#define SPAWND_REGISTRY_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/registry/process.h"

/* Output bytes one ring holds at most. */
#define SPD__RING_OUTPUT_BYTES (256u * 1024u)

/* One retained event: enough to replay it as it was first sent. */
typedef struct spd__ring_event {
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
} spd__ring_event;

typedef struct spd__ring {
	spd__ring_event *ev;        /* oldest at ev[start] */
	size_t start, len, cap;
	size_t bytes;               /* output bytes held */
	uint64_t evicted_max;       /* highest sequence no longer retained, 0 none */
	uint64_t evicted_state_max; /* the same, among state events */
} spd__ring;

#define SPD__RING_INIT {0}

/* Retains the state P just entered (event P->seq). Never fails: on allocation
 * failure the ring forgets everything, so that a resume sees a gap (the
 * truth). */
void spd__ring_push_state(spd__ring *g, size_t *total, const spd_process *p);

/* Retains an OUTPUT chunk (copied), event SEQ. Fails as above. */
void spd__ring_push_output(spd__ring *g, size_t *total, uint64_t seq, int stream,
			   uint64_t offset, const void *chunk, size_t len);

/* Drops every event but the newest (an ended process's terminal one). */
void spd__ring_cut(spd__ring *g, size_t *total);

/* Frees everything the ring holds; it is empty (reusable) afterwards. */
void spd__ring_release(spd__ring *g, size_t *total);

/* Called by spd__ring_replay for each retained event: THEN is the record as
 * that event first showed it (state events), or NOW with THEN->seq set
 * (output events: EV's data). */
typedef void (*spd__ring_replay_fn)(void *ctx, const spd_process *then,
				    const spd__ring_event *ev);

/* Replays, oldest first, the events after AFTER of the process now recorded
 * as NOW; OUTPUT ones only WITH_OUTPUT. Returns false, replaying nothing, if
 * some that such a watcher would get were evicted. */
bool spd__ring_replay(const spd__ring *g, const spd_process *now, uint64_t after,
		      bool with_output, spd__ring_replay_fn fn, void *ctx);

#endif
