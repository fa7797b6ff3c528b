/* The registry: every process record of this spawnd, their watchers, and the
 * bridge between RPCs and the launcher. No gRPC, no I/O of its own: it talks to
 * the launcher through the ops it is given, and to RPCs through callbacks.
 *
 * Lifecycle of a record: created PENDING by spd_registry_start (sequence 1),
 * STARTED/EXITED frames from the launcher move it on (spd_registry_on_*), and it
 * stays, terminal, until history eviction (oldest terminal records beyond
 * history.max_records, never one with a watcher) or spd_registry_destroy().
 *
 * Inside (service/registry): registry.c owns the records, the start queue, the
 * launcher's events, subscriptions and shutdown, and calls down into one-way
 * modules that never call back: ring.h (each process's retained events),
 * watchers.h (subscriptions and delivery), process.h (the state table),
 * outcome.h (classifying an exit), fingerprint.h (idempotency). health.c and
 * listing.c are the registry's own health and ListProcesses, on its state
 * (registry_impl.h); journal.c holds what the store (journal.h) has not
 * committed yet and restores records after a restart.
 *
 * Names: spd_registry_create/spd_registry_destroy make and free the registry
 * (STYLE's heap lifecycle); the API's Destroy (SIGTERM, grace, SIGKILL) is
 * spd_registry_destroy_process.
 *
 * ---- Locks, and what runs under them -----------------------------------------
 *
 * The registry has one mutex; every spd_registry_* function takes it (none may
 * be called with it held). The front's locks, in the only order they nest
 * (take a later one while holding an earlier one, never the reverse):
 *
 *   1. rpc/health.c's service lock (its list of Health.Watch streams);
 *   2. the registry's mutex;
 *   3. a stream's lock (rpc/call.c, spd_stream_*), and, beside it, the link's
 *      queue lock (front/link.c send_mu, through spd_registry_ops);
 *   then only gRPC core's own locks (grpc_call_start_batch never runs a
 *   completion inline: completions come on the CQ thread).
 *   The metrics' family locks (service/metrics, metrics.h) are innermost of
 *   all: spd_metrics_* may be called holding any of the above, and take
 *   nothing else.
 *
 * Under the registry's mutex run:
 * - every spd_watch_fn, spd_output_fn, codec and release callback, and every
 *   spd_health_fn: they format and queue on their own stream (lock 3) and
 *   return; they must not block, nor call any spd_registry_* function;
 * - spd_registry_ops (send_start, send_destroy, congested): they queue a frame
 *   under the link's lock and return; the link's writer thread takes only that
 *   lock (never the registry's) while it flushes, and the link's reader thread
 *   calls the spd_registry_on_* functions holding no lock of its own;
 * - the registry's timer thread (zygote_wait expiry) holds it while it works.
 * Taken first, with no registry lock held: a stream's cancel callback
 * (spd_stream_cancel_fn, on the CQ thread, no stream lock held) calls
 * spd_registry_unwatch (lock 2); rpc/health.c takes lock 1 and then calls
 * spd_registry_health_(un)watch (lock 2).
 *
 * Encoding: a subscription's events are encoded once per event (its
 * spd_watch_codec), not once per watcher: 1,000 watchers of one process cost
 * one encoding of each event, under the lock, and 1,000 reference-counted
 * copies.
 */
#ifndef SPAWND_REGISTRY_REGISTRY_H
#define SPAWND_REGISTRY_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "service/common/exit_facts.h"
#include "service/config/config.h"
#include "service/registry/process.h"

typedef struct spd_registry spd_registry;

/* A process for the launcher to start (spd_registry_ops.send_start), in the
 * registry's words: the link turns it into a START frame. Borrowed for the
 * call. */
typedef struct spd_launch_req {
	char *process_id;
	char *target;
	uint32_t target_id;   /* the version of the target it runs with */
	char **argv;          /* argc entries + NULL */
	uint32_t argc;
	uint8_t *input;
	size_t input_len;
	char **labels;        /* key, value, ..., NULL: 2 * label_count entries */
	uint32_t label_count;
	int64_t grace_ms;     /* destroy grace for timeouts; the target's when < 0 */
	int64_t timeout_ms;   /* 0 = none */
	const char *traceparent;  /* W3C trace context for the child's TRACEPARENT; NULL: none */
} spd_launch_req;

/* What a reload adds, for the launcher to prepare (a RELOAD frame): the new
 * versions of targets with their ids, and CFG's log settings. Borrowed. */
typedef struct spd_reload_req {
	const spd_config *cfg;
	const spd_target_config *const *targets;
	const uint32_t *ids;
	size_t count;
} spd_reload_req;

/* How the registry reaches the launcher. Called with the registry lock held
 * (see "Locks" above): they must only send (or queue) a frame, never block.
 * Return 0 or -errno.
 * congested (may be NULL: never) says the launcher is not taking frames: new
 * starts are refused (-EBUSY) and queued ones wait.
 * send_reload (may be NULL: reload adds nothing the launcher hears of) and
 * send_retire: a reload's new target versions; a version that no process
 * holds any more and none will start (the launcher frees it). */
typedef struct spd_registry_ops {
	int (*send_start)(void *ctx, uint64_t key, const spd_launch_req *req);
	int (*send_destroy)(void *ctx, uint64_t key, int64_t grace_ms);
	bool (*congested)(void *ctx);
	int (*send_reload)(void *ctx, const spd_reload_req *req);
	int (*send_retire)(void *ctx, uint32_t target_id);
	/* May be NULL. A reload took version TARGET_ID out of the current set,
	 * or spawnd is shutting down: it keeps no pre-started children (its
	 * processes go on). */
	int (*send_stale)(void *ctx, uint32_t target_id);
	void *ctx;
} spd_registry_ops;

typedef enum spd_note {
	SPD_NOTE_SNAPSHOT = 1,      /* the record as it is now (not a stored event) */
	SPD_NOTE_STATE = 2,         /* the record entered a new state: event p->seq */
	SPD_NOTE_SNAPSHOT_GAP = 3,  /* a SNAPSHOT sent because events to replay were evicted */
	SPD_NOTE_REPLAY = 4,        /* a retained state event, replayed as it was first sent
				     * (from inside spd_registry_watch) */
	SPD_NOTE_ABORT = 5,         /* spawnd stops with the process still live: the
				     * subscription ends now (P is NULL for watch-all) */
} spd_note;

/* An event as a callback sees it. P is valid during the call only (NULL for
 * the ABORT of a watch-all); TERMINAL is true when P is in a terminal state.
 * MSG is the event as the subscription's codec encoded it (shared by every
 * subscription with that codec: copy, do not keep), NULL without a codec,
 * for ABORT, or when encoding failed (out of memory). */
typedef struct spd_watch_event {
	const spd_process *p;
	spd_note note;
	bool terminal;
	const void *msg;
} spd_watch_event;

/* A watcher. Returns true to stay subscribed, false to end the subscription
 * (it always ends after the terminal event of a one-process watch). */
typedef bool (*spd_watch_fn)(void *ctx, const spd_watch_event *ev);

/* Creates a registry for CFG (read here only: the registry copies what it
 * keeps). Its targets get ids 1, 2, ... in order, as the launcher's boot data
 * numbers them (wire/boot.h). */
spd_registry *spd_registry_create(const spd_config *cfg, const spd_registry_ops *ops);

/* What a reload did, by target name. */
typedef struct spd_reload_summary {
	size_t added, changed, removed, unchanged;
} spd_reload_summary;

/* SIGHUP (SPEC §5): makes CFG's targets the current ones (read here only),
 * and its max_running, max_pending and history settings the limits. A target
 * whose settings are equal (spd_target_config_equal) stays as it is; an added
 * or changed one gets a new version, sent to the launcher to prepare
 * (send_reload); a changed or removed one's old version lives on while its
 * running and pending processes do, with the settings they started with,
 * and is retired after them. New starts use the new set at once. Logs a line
 * per target added, changed or removed. Returns 0 or -ENOMEM (nothing
 * changed), -ESHUTDOWN once shutdown started or the launcher is gone. */
int spd_registry_reload(spd_registry *r, const spd_config *cfg, spd_reload_summary *out);

/* Frees every record. Subscriptions still registered end without a note (their
 * release callback runs); spd_registry_abort_watchers first ends them properly. */
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
	const char *request_id;      /* idempotency key; NULL or "" for none */
	const char *caller;          /* who asks ("token:ab12cd34", "x509:CN=..."); NULL: none */
	/* A valid W3C traceparent (common/traceparent.h) from the request, or
	 * NULL: kept on the record, logged with its lines, passed to the child.
	 * Not part of the request_id fingerprint: a retry may come in another
	 * span of the same trace. */
	const char *traceparent;
} spd_start_params;

/* Starts a process, or queues it (FIFO) when max_running or the target's
 * max_concurrent is reached. With a request_id already used by a retained
 * record: the same request (same fingerprint, fingerprint.h: target, caller,
 * args, input, labels, timeout, grace) gets that process in FN at once (a SNAPSHOT, even when it has
 * ended) and nothing starts; another request gets -EEXIST.
 *
 * On success returns 0 and calls FN exactly once,
 * with the lock held, possibly before this returns: when a started process
 * leaves PENDING (RUNNING with a pid, or FAILED with LAUNCH), or at once with a
 * PENDING snapshot when it was queued. FN's return value is ignored. With a
 * journal (journal.h), not before the new record is committed: the process
 * is launched at once, and FN hears then what it would have heard (RUNNING
 * as it was; a queued one's snapshot as it is then). Errors:
 * -ENOENT unknown target, -EINVAL args given to an exec target without
 * allow_args, -EAGAIN the queue holds max_pending already, -EEXIST request_id
 * reused with another request, -ESHUTDOWN shutting down or launcher gone,
 * -EBUSY the launcher is not taking frames (ops.congested), -ENOMEM. */
int spd_registry_start(spd_registry *r, const spd_start_params *sp, spd_watch_fn fn, void *ctx);

/* Calls FN once with a SNAPSHOT of process ID, before this returns. -ENOENT if
 * unknown. */
int spd_registry_get(spd_registry *r, const char *id, spd_watch_fn fn, void *ctx);

/* GetProcess: the same, except that a record whose end its journal has not
 * committed yet (journal.h) is answered once it has: FN then runs later, on
 * the journal's thread, with the lock held. -ENOENT if unknown, -ENOMEM. */
int spd_registry_get_committed(spd_registry *r, const char *id, spd_watch_fn fn, void *ctx);

/* Destroys process ID (SPEC §2): GRACE_MS < 0 means the process's; larger values
 * are clamped to it. Without WAIT, FN gets one SNAPSHOT at once (flags set).
 * With WAIT, FN gets a SNAPSHOT at once if the process is already terminal,
 * else every STATE note until the terminal one (it should return true until
 * then). -ENOENT if unknown. A process already being destroyed gets another
 * DESTROY frame only when this one ends its grace period sooner. */
int spd_registry_destroy_process(spd_registry *r, const char *id, int64_t grace_ms, bool wait,
				 spd_watch_fn fn, void *ctx);

/* An OUTPUT event: CHUNK of stream STREAM (1 stdout, 2 stderr) at byte OFFSET;
 * its sequence number is P->seq. MSG as in spd_watch_event. */
typedef struct spd_output_event {
	const spd_process *p;
	int stream;
	uint64_t offset;
	const void *chunk;
	size_t len;
	const void *msg;
} spd_output_event;

/* Called with the lock held; must not block. */
typedef void (*spd_output_fn)(void *ctx, const spd_output_event *ev);

/* How a subscription's events are encoded for its stream, once per event for
 * every subscription with the same codec (1,000 watchers of one process: one
 * encoding per event). ENCODE and ENCODE_OUTPUT return the message the
 * callbacks get as MSG, or NULL (out of memory); FREE frees it after the last
 * callback. All run with the lock held. */
typedef struct spd_watch_codec {
	void *(*encode)(const spd_watch_event *ev);
	void *(*encode_output)(const spd_output_event *ev);
	void (*free)(void *msg);
} spd_watch_codec;

typedef struct spd_watch_spec {
	const char *id;                /* one process; NULL or "": watch-all */
	const char *const *selector;   /* watch-all: key, value, ... (2 * selector_count) */
	uint32_t selector_count;
	uint64_t after_sequence;       /* one process: resume after this event (0: none) */
	bool from_start;               /* one process: after_sequence 0 replays every
					* retained event (PENDING first), not a SNAPSHOT */
	spd_watch_fn fn;
	spd_output_fn out_fn;          /* NULL: no OUTPUT events */
	const spd_watch_codec *codec;  /* NULL: MSG is always NULL */
	/* Runs exactly once when a subscription ends, whichever way: after the
	 * terminal event, when FN returns false, in spd_registry_unwatch, or in
	 * spd_registry_abort_watchers (or spd_registry_destroy). With the lock
	 * held; no callback of the subscription runs after it. Never runs when
	 * spd_registry_watch subscribed nothing (*watch_id 0). May be NULL. */
	void (*release)(void *ctx);
	void *ctx;
} spd_watch_spec;

/* Subscribes to one process (SPEC §11):
 * - after_sequence 0: a SNAPSHOT, then every event up to the terminal one;
 * - after_sequence N: the retained events after N are replayed (REPLAY notes
 *   and OUTPUT chunks), or, when some were evicted, one SNAPSHOT_GAP first;
 *   then live events.
 * Or to every process matching the selector (watch-all, empty selector: all):
 * a SNAPSHOT of each matching live process, then every event of matching
 * processes, new ones included; STATE notes keep coming after terminal ones
 * and the subscription never ends by itself.
 * *watch_id is 0 when nothing was subscribed: the process is terminal and all
 * was delivered (the caller ends its stream). -ENOENT unknown id, -ERANGE
 * after_sequence past the process's last sequence (nothing delivered), -ENOMEM. */
int spd_registry_watch(spd_registry *r, const spd_watch_spec *ws, uint64_t *watch_id);

/* Run (SPEC §12): spd_registry_start and a one-process subscription WS
 * (its id ignored) in one step, so that no event is missed: the events from
 * the first after WS->after_sequence (0: PENDING, sequence 1) are replayed
 * from the ring, with one SNAPSHOT_GAP first if some were evicted, then live
 * ones to the terminal event (with a journal, from the ring once the new
 * record is committed, journal.h). A retry with the request_id of a retained
 * record subscribes to that process and starts nothing. Returns as
 * spd_registry_start (no callback of WS runs on an error), or -ERANGE:
 * after_sequence past the retried process's last sequence, or past 1
 * (PENDING) for a new process (which is then not started). *WATCH_ID is 0
 * when nothing was subscribed: all was delivered (the process had ended).
 * ID (SPD_ID_LEN + 1 bytes, or NULL) gets the process's id, under the
 * registry's lock and before any callback of WS runs, whenever the call
 * gets as far as a process (new or retried): a subscription deferred until
 * the new record is committed (journal.h) has seen no event yet, and the
 * caller may need the id meanwhile (Run's destroy_on_cancel). */
int spd_registry_run(spd_registry *r, const spd_start_params *sp, const spd_watch_spec *ws,
		     uint64_t *watch_id, char *id);

/* Ends a subscription: its release callback runs (before this returns), and
 * no other callback runs for it after this returns. Returns true if it ended
 * here, false if it had already ended (its callback saw the terminal event or
 * returned false) or never was. */
bool spd_registry_unwatch(spd_registry *r, uint64_t watch_id);

typedef struct spd_list_query {
	const char *target;            /* NULL or "": any */
	const spd_state *states;       /* any of these; none: any state */
	size_t state_count;
	const char *const *selector;   /* key, value, ... (2 * selector_count): all must match */
	uint32_t selector_count;
	uint64_t after_key;            /* continue after this record (a page token); 0: first page */
	size_t page_size;              /* >= 1 */
} spd_list_query;

/* ListProcesses: calls FN (a SNAPSHOT) for up to page_size matching records, in
 * creation order, after after_key. *next_key is the key to continue after, or
 * 0 when no further record matches. Records created later come on later pages;
 * each record is visited at most once across pages. */
void spd_registry_list(spd_registry *r, const spd_list_query *q, spd_watch_fn fn, void *ctx,
		       uint64_t *next_key);

/* Target listing: FN is called for each current target with its running and
 * pending counts (of every version of it, older ones too), its pre-started
 * children waiting (IDLE: of the current version only), whether the
 * launcher could prepare it (error NULL), and what
 * enforces its memory_limit as the launcher said in HELLO ("cgroup_v2",
 * "cgroup_v1", "rlimit_as"; "" when it has none or HELLO did not say). */
typedef void (*spd_target_fn)(void *ctx, const spd_target_config *t, uint32_t running,
			      uint32_t pending, uint32_t idle, const char *error,
			      const char *memory_limit_mechanism);
void spd_registry_list_targets(spd_registry *r, spd_target_fn fn, void *ctx);

/* --- from the launcher (the front's reader thread) --- */

/* Per-target readiness from HELLO or RELOADED, by target id; ERRORS and
 * MECHANISMS are copied. MECHANISMS (what enforces each target's
 * memory_limit) may be NULL. */
void spd_registry_on_hello(spd_registry *r, size_t count, const uint32_t *ids,
			   char *const *errors, char *const *mechanisms);
void spd_registry_on_started(spd_registry *r, uint64_t key, int32_t pid, int64_t started_ns);
/* Target version ID became usable (WHY NULL) or not (its zygote is down: WHY
 * says why); ListTargets and health report it. */
void spd_registry_on_target_health(spd_registry *r, uint32_t id, const char *why);
/* Target version ID has COUNT pre-started children waiting (IDLE). */
void spd_registry_on_idle(spd_registry *r, uint32_t id, uint32_t count);
/* A chunk of a live process's stdout (STREAM 1) or stderr (2) at OFFSET: takes
 * the next sequence number and goes to the watchers that asked for output. */
void spd_registry_on_output(spd_registry *r, uint64_t key, int stream, uint64_t offset,
			    const void *chunk, size_t len);
/* Takes ownership of the report's result and tails (nulls them in REP). */
void spd_registry_on_exited(spd_registry *r, uint64_t key, spd_exit_facts *rep);
/* The launcher died: every live process ends FAILED/LOST; new starts fail. */
void spd_registry_on_launcher_lost(spd_registry *r);

/* --- shutdown --- */

/* New starts get -ESHUTDOWN; every live process is destroyed with its grace
 * period capped by GRACE_CAP_MS. Then waits until none is live or the
 * CLOCK_MONOTONIC time DEADLINE_NS passes. Returns the number still live. */
size_t spd_registry_shutdown(spd_registry *r, int64_t grace_cap_ms, int64_t deadline_ns);

/* Ends every remaining subscription with an ABORT note (then its release), so
 * that no RPC waits for an event that will not come: for the end of shutdown,
 * when processes outlived its deadline. */
void spd_registry_abort_watchers(spd_registry *r);

/* Processes not yet terminal. */
size_t spd_registry_live_count(spd_registry *r);

/* --- health (health.c) --- */

/* The health of the server (TARGET NULL) or of one target. The server is
 * NOT_SERVING once shutdown started or the launcher is gone, and while a
 * listener is down (spd_registry_set_listeners_down); a target also
 * while the launcher reports it unusable (library or zygote down: HELLO,
 * spd_registry_on_target_health). UNKNOWN: no such target. */
typedef enum spd_health {
	SPD_HEALTH_UNKNOWN = 0,
	SPD_HEALTH_SERVING = 1,
	SPD_HEALTH_NOT_SERVING = 2,
} spd_health;

spd_health spd_registry_health(spd_registry *r, const char *target);

/* Passed as TARGET (the pointer itself, not its text) to spd_registry_health
 * and spd_registry_health_watch: the store's health (health name
 * spawnd.store): NOT_SERVING while its writes fail (journal.h); UNKNOWN
 * (-ENOENT) when there is no store. */
extern const char spd_registry_store_subject[];

/* DOWN listeners of the gRPC server cannot accept connections now (gRPC
 * core stopped accepting on them: rpc/server.c recovers them). The server
 * is NOT_SERVING while DOWN > 0: a probe on an open connection must not hear
 * SERVING while nothing can connect. Any thread. */
void spd_registry_set_listeners_down(spd_registry *r, unsigned down);

/* A health subscriber. Runs with the registry lock held (see "Locks" above):
 * it must not block or call back into the registry. */
typedef void (*spd_health_fn)(void *ctx, spd_health h);

/* Subscribes FN to TARGET's health (NULL: the server's): FN runs once with the
 * current status before this returns, then once per real transition (shutdown
 * starting, the launcher lost, the target's error set or cleared, a reload
 * adding or removing it), never twice with the same status. A target that is
 * not configured is UNKNOWN until a reload adds it. *WATCH_ID identifies the
 * subscription. -ENOENT for a name too long to be a target's (FN is not
 * called), -ENOMEM. */
int spd_registry_health_watch(spd_registry *r, const char *target, spd_health_fn fn, void *ctx,
			      uint64_t *watch_id);

/* Removes a health subscription: FN does not run for it after this returns.
 * False if WATCH_ID is not (or no longer) subscribed. */
bool spd_registry_health_unwatch(spd_registry *r, uint64_t watch_id);

#endif
