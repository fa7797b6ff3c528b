/* spawnd's metrics (SPEC §12 "Metrics"): the families with their exact names
 * and labels, and the verbs the rest of the front calls where things happen.
 *
 * Process-wide: one set of families, made by spd_metrics_init() before any
 * thread that reports, freed by spd_metrics_shutdown() after the last one
 * stopped. Before init (unit tests, --check-config) and after shutdown every
 * verb is a no-op, so that callers never check.
 *
 * Cost: a verb is one hash lookup under its family's lock and lock-free
 * atomic updates (family.h): cheap next to the fork it reports. Label values
 * are target names from the config, states, error kinds, method names and
 * status codes: bounded sets. Process ids never become labels.
 *
 * Thread: every verb is thread-safe; init, shutdown and set_collector are
 * for the main thread, with no other thread reporting.
 *
 * Locks: a verb takes only its family's lock, and calls nothing while it
 * holds it, so verbs may be called holding any other lock (the registry's,
 * a stream's). A render takes its own lock, then the collector's (the
 * registry's), then family locks.
 */
#ifndef SPAWND_METRICS_METRICS_H
#define SPAWND_METRICS_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "service/metrics/text.h"

/* 0, or -ENOMEM. Calling it twice is a no-op. */
int spd_metrics_init(void);
void spd_metrics_shutdown(void);

/* Whether init ran (and shutdown not yet): callers with bookkeeping of their
 * own (rpc/call_stats.c) skip it when nothing would be exported. */
bool spd_metrics_active(void);

/* Creates TARGET's series at 0 (started, running, pending, zygote restarts,
 * both histograms, SUCCEEDED and CANCELED endings), so that rates and alerts
 * see a 0 rather than nothing before the first process: a counter that
 * appears at 3 has no increase for rate() to see. */
void spd_metrics_add_target(const char *target);

/* --- processes (the registry, at its state transitions) --- */

/* A process was accepted (PENDING): so started - ended = live. */
void spd_metrics_process_started(const char *target);
/* It became RUNNING, LATENCY_S after its request. */
void spd_metrics_process_running(const char *target, double latency_s);
/* It ended in STATE ("SUCCEEDED", "FAILED", "CANCELED") with ERROR_KIND ("" for
 * none, else "EXIT_CODE", "OOM", ...); DURATION_S since RUNNING, or < 0 when it
 * never ran (not observed). */
void spd_metrics_process_ended(const char *target, const char *state, const char *error_kind,
			       double duration_s);
/* The launcher reported TARGET's zygote down: a restart is scheduled. */
void spd_metrics_zygote_restart(const char *target);

/* --- the launcher (main.c) --- */

/* PID of the launcher whose own process metrics are exported (0: none). */
void spd_metrics_set_launcher(pid_t pid);
/* spawnd_launcher_up: 1 while the launcher runs, 0 once it is lost. */
void spd_metrics_launcher_up(bool up);

/* --- RPCs (service/rpc) --- */

/* Open Watch and Run streams: +1 when one opens, -1 when it ends. */
void spd_metrics_watchers_add(int delta);
/* go-grpc-prometheus's names: TYPE "unary", "server_stream", "bidi_stream";
 * SERVICE "spawnd.v1.ProcessService"; METHOD "StartProcess"; CODE "OK",
 * "NOT_FOUND", ... */
/* Creates the method's started and handled (OK) series at 0. */
void spd_metrics_grpc_declare(const char *type, const char *service, const char *method);
void spd_metrics_grpc_started(const char *type, const char *service, const char *method);
void spd_metrics_grpc_handled(const char *type, const char *service, const char *method,
			      const char *code, double seconds);

/* --- the store --- */

/* One commit (a transaction) took SECONDS. */
void spd_metrics_store_commit(double seconds);
/* A write to the store failed. */
void spd_metrics_store_error(void);

/* --- exposition --- */

/* Called at the start of every render, before the families are written, to
 * set what is read rather than counted (running and pending per target). It
 * runs on the HTTP thread; it may take the registry's lock. */
typedef void (*spd_metrics_collect_fn)(void *ctx);
void spd_metrics_set_collector(spd_metrics_collect_fn fn, void *ctx);
/* For the collector: TARGET's running and pending processes now. Series of
 * targets the collector does not set read 0. */
void spd_metrics_target_counts(const char *target, uint32_t running, uint32_t pending);

/* Appends every family, in the text format (text.h), after reading the
 * front's and the launcher's /proc figures and running the collector.
 * Renders are serialized. Returns OUT's error state (0 or -ENOMEM). */
int spd_metrics_render(spd_mbuf *out);

#endif
