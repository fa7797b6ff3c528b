/* The registry: every process record of this spawnd, their watchers, and the
 * bridge between RPCs and the launcher. No gRPC, no I/O of its own: it talks to
 * the launcher through the ops it is given, and to RPCs through callbacks.
 *
 * Thread-safety: every function takes the registry's one mutex. Callbacks
 * (spd_watch_fn) run with that mutex held, in event order, and must not block
 * or call back into the registry: they encode and enqueue.
 *
 * Lifecycle of a record: created PENDING by spd_registry_start (sequence 1),
 * STARTED/EXITED frames from the launcher move it on (spd_registry_on_*), and it
 * stays, terminal, until history eviction (oldest terminal records beyond
 * history.max_records, never one with a watcher) or spd_registry_destroy().
 */
#ifndef SPAWND_REGISTRY_REGISTRY_H
#define SPAWND_REGISTRY_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "service/config/config.h"
#include "service/launcher/messages.h"
#include "service/registry/process.h"

typedef struct spd_registry spd_registry;

/* How the registry reaches the launcher. Called with the registry lock held:
 * they must only send a frame. Return 0 or -errno. */
typedef struct spd_registry_ops {
	int (*send_start)(void *ctx, uint64_t key, const spd_start_req *req);
	int (*send_destroy)(void *ctx, uint64_t key, int64_t grace_ms);
	void *ctx;
} spd_registry_ops;

typedef enum spd_note {
	SPD_NOTE_SNAPSHOT = 1,  /* the record as it is now (not a stored event) */
	SPD_NOTE_STATE = 2,     /* the record entered a new state: event p->seq */
} spd_note;

/* A watcher. TERMINAL is true when P is in a terminal state. Returns true to
 * stay subscribed, false to be removed (it is always removed after the
 * terminal event). */
typedef bool (*spd_watch_fn)(void *ctx, const spd_process *p, spd_note note, bool terminal);

/* Creates a registry for CFG (borrowed: must outlive the registry). */
spd_registry *spd_registry_create(const spd_config *cfg, const spd_registry_ops *ops);

/* Frees every record. No watcher may remain registered. */
void spd_registry_destroy(spd_registry *r);

typedef struct spd_start_params {
	const char *target;
	const char *const *argv;
	uint32_t argc;
	const void *input;
	size_t input_len;
	const char *const *labels;   /* key, value, ... (2 * label_count) */
	uint32_t label_count;
	int64_t timeout_ms;          /* < 0: the target's; clamped to the target's */
	int64_t grace_ms;            /* < 0: the target's; clamped to the target's */
} spd_start_params;

/* Starts a process, or queues it (FIFO) when max_running or the target's
 * max_concurrent is reached. On success returns 0 and calls FN exactly once,
 * with the lock held, possibly before this returns: when a started process
 * leaves PENDING (RUNNING with a pid, or FAILED with LAUNCH), or at once with a
 * PENDING snapshot when it was queued. FN's return value is ignored. Errors:
 * -ENOENT unknown target, -EINVAL args given to an exec target without
 * allow_args, -EAGAIN the queue holds max_pending already, -ESHUTDOWN shutting
 * down or launcher gone, -ENOMEM. */
int spd_registry_start(spd_registry *r, const spd_start_params *sp, spd_watch_fn fn, void *ctx);

/* Calls FN once with a SNAPSHOT of process ID. -ENOENT if unknown. */
int spd_registry_get(spd_registry *r, const char *id, spd_watch_fn fn, void *ctx);

/* Destroys process ID (SPEC §2): GRACE_MS < 0 means the process's; larger values
 * are clamped to it. Without WAIT, FN gets one SNAPSHOT at once (flags set).
 * With WAIT, FN gets a SNAPSHOT at once if the process is already terminal,
 * else every STATE note until the terminal one (it should return true until
 * then). -ENOENT if unknown. */
int spd_registry_destroy_process(spd_registry *r, const char *id, int64_t grace_ms, bool wait,
				 spd_watch_fn fn, void *ctx);

/* An OUTPUT event: CHUNK of stream STREAM (1 stdout, 2 stderr) at byte OFFSET;
 * its sequence number is p->seq. Called with the lock held; must not block. */
typedef void (*spd_output_fn)(void *ctx, const spd_process *p, int stream, uint64_t offset,
			      const void *chunk, size_t len);

/* Subscribes FN to process ID: a SNAPSHOT first, then every STATE event up to the
 * terminal one, and when OUT_FN is not NULL every OUTPUT chunk in between (all
 * output precedes the terminal event). When the process is already terminal FN
 * only gets the SNAPSHOT and *watch_id is 0. Otherwise *watch_id identifies the
 * subscription for spd_registry_unwatch. -ENOENT if unknown. */
int spd_registry_watch(spd_registry *r, const char *id, spd_watch_fn fn, spd_output_fn out_fn,
		       void *ctx, uint64_t *watch_id);

/* Removes a subscription; no callback runs for it after this returns. Returns
 * true if it was removed here, false if it had already ended (its callback saw
 * the terminal event or returned false). */
bool spd_registry_unwatch(spd_registry *r, uint64_t watch_id);

/* Target listing: FN is called for each target with its running and pending
 * counts, whether the launcher could prepare it (error NULL), and what
 * enforces its memory_limit as the launcher said in HELLO ("cgroup_v2",
 * "cgroup_v1", "rlimit_as"; "" when it has none or HELLO did not say). */
typedef void (*spd_target_fn)(void *ctx, const spd_target_config *t, uint32_t running,
			      uint32_t pending, const char *error,
			      const char *memory_limit_mechanism);
void spd_registry_list_targets(spd_registry *r, spd_target_fn fn, void *ctx);

/* --- from the launcher (the front's reader thread) --- */

/* Per-target readiness from HELLO; NAMES/ERRORS/MECHANISMS are copied.
 * MECHANISMS (what enforces each target's memory_limit) may be NULL. */
void spd_registry_on_hello(spd_registry *r, size_t count, char *const *names,
			   char *const *errors, char *const *mechanisms);
void spd_registry_on_started(spd_registry *r, uint64_t key, int32_t pid, int64_t started_ns);
/* Target NAME became usable (WHY NULL) or not (its zygote is down: WHY says
 * why); ListTargets and health report it. */
void spd_registry_on_target_health(spd_registry *r, const char *name, const char *why);
/* A chunk of a live process's stdout (STREAM 1) or stderr (2) at OFFSET: takes
 * the next sequence number and goes to the watchers that asked for output. */
void spd_registry_on_output(spd_registry *r, uint64_t key, int stream, uint64_t offset,
			    const void *chunk, size_t len);
/* Takes ownership of the report's result and tails (nulls them in REP). */
void spd_registry_on_exited(spd_registry *r, uint64_t key, spd_exit_report *rep);
/* The launcher died: every live process ends FAILED/LOST; new starts fail. */
void spd_registry_on_launcher_lost(spd_registry *r);

/* --- shutdown --- */

/* New starts get -ESHUTDOWN; every live process is destroyed with its grace
 * period capped by GRACE_CAP_MS. Then waits until none is live or the
 * CLOCK_MONOTONIC time DEADLINE_NS passes. Returns the number still live. */
size_t spd_registry_shutdown(spd_registry *r, int64_t grace_cap_ms, int64_t deadline_ns);

/* Processes not yet terminal. */
size_t spd_registry_live_count(spd_registry *r);

#endif
