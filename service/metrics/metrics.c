/* spawnd's metric families: see metrics.h. */
#include "service/metrics/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "service/metrics/family.h"
#include "service/metrics/procstat.h"

/* Series bounds per family: generous for any real config (a reload may add
 * targets; their series stay), small enough that a bug feeding unbounded
 * values costs a few MiB at most. */
#define TARGET_SERIES 4096
#define ENDED_SERIES 16384
#define GRPC_SERIES 1024

enum {
	STARTED,
	ENDED,
	RUNNING,
	PENDING,
	START_LATENCY,
	DURATION,
	WATCHERS,
	ZYGOTE_RESTARTS,
	LAUNCHER_UP,
	STORE_COMMIT,
	STORE_ERRORS,
	GRPC_STARTED,
	GRPC_HANDLED,
	GRPC_HANDLING,
	PROC_RSS,
	PROC_FDS,
	PROC_CPU,
	PROC_START,
	LAUNCHER_RSS,
	LAUNCHER_FDS,
	LAUNCHER_CPU,
	FAMILY_COUNT
};

static const char *const L_TARGET[] = {"target"};
static const char *const L_ENDED[] = {"target", "state", "error_kind"};
static const char *const L_GRPC[] = {"grpc_type", "grpc_service", "grpc_method"};
static const char *const L_GRPC_CODE[] = {"grpc_type", "grpc_service", "grpc_method", "grpc_code"};

/* From a fork (~1 ms) to a long wait in the queue. */
static const double B_START[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
				 0.1,    0.25,  0.5,    1,     2.5,  5,     10,  30, 60};
/* From a noop to a long training run. */
static const double B_DURATION[] = {0.001, 0.01, 0.1, 0.5, 1,    5,    10,
				    30,    60,   300, 900, 3600, 14400, 86400};
/* go-grpc-prometheus's defaults (prometheus.DefBuckets). */
static const double B_GRPC[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
/* A grouped SQLite commit: a few ms, more under fsync. */
static const double B_STORE[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
				 0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define PLAIN(n, h, t) {n, h, t, NULL, 0, NULL, 0, 1}
#define LABELED(n, h, t, l, max) {n, h, t, l, N(l), NULL, 0, max}
#define HISTOGRAM(n, h, l, nl, b, max) {n, h, SPD_METRIC_HISTOGRAM, l, nl, b, N(b), max}

static const spd_metric_desc descs[FAMILY_COUNT] = {
	[STARTED] = LABELED("spawnd_processes_started_total",
			    "Processes accepted by StartProcess (PENDING), by target.",
			    SPD_METRIC_COUNTER, L_TARGET, TARGET_SERIES),
	[ENDED] = LABELED("spawnd_processes_ended_total",
			  "Processes that reached a terminal state, by target, state and error "
			  "kind (\"\" when none).",
			  SPD_METRIC_COUNTER, L_ENDED, ENDED_SERIES),
	[RUNNING] = LABELED("spawnd_processes_running", "Processes RUNNING now, by target.",
			    SPD_METRIC_GAUGE, L_TARGET, TARGET_SERIES),
	[PENDING] = LABELED("spawnd_processes_pending",
			    "Processes PENDING now (waiting for a slot), by target.",
			    SPD_METRIC_GAUGE, L_TARGET, TARGET_SERIES),
	[START_LATENCY] = HISTOGRAM("spawnd_process_start_latency_seconds",
				    "From StartProcess's request to RUNNING, by target.", L_TARGET,
				    1, B_START, TARGET_SERIES),
	[DURATION] = HISTOGRAM("spawnd_process_duration_seconds",
			       "From RUNNING to the terminal state, by target.", L_TARGET, 1,
			       B_DURATION, TARGET_SERIES),
	[WATCHERS] = PLAIN("spawnd_watchers", "Open Watch and Run streams.", SPD_METRIC_GAUGE),
	[ZYGOTE_RESTARTS] = LABELED("spawnd_zygote_restarts_total",
				    "Times a forkserver target's zygote went down and a restart "
				    "was scheduled, by target.",
				    SPD_METRIC_COUNTER, L_TARGET, TARGET_SERIES),
	[LAUNCHER_UP] = PLAIN("spawnd_launcher_up", "1 while the launcher runs, 0 once it is lost.",
			      SPD_METRIC_GAUGE),
	[STORE_COMMIT] = HISTOGRAM("spawnd_store_commit_seconds",
				   "Time of one commit (a group of records) to the store.", NULL, 0,
				   B_STORE, 1),
	[STORE_ERRORS] = PLAIN("spawnd_store_errors_total", "Writes to the store that failed.",
			       SPD_METRIC_COUNTER),
	[GRPC_STARTED] = LABELED("grpc_server_started_total",
				 "RPCs started on the server.", SPD_METRIC_COUNTER, L_GRPC,
				 GRPC_SERIES),
	[GRPC_HANDLED] = LABELED("grpc_server_handled_total",
				 "RPCs completed on the server, regardless of success or failure.",
				 SPD_METRIC_COUNTER, L_GRPC_CODE, GRPC_SERIES),
	[GRPC_HANDLING] = HISTOGRAM("grpc_server_handling_seconds",
				    "Response latency (seconds) of RPCs handled by the server.",
				    L_GRPC, N(L_GRPC), B_GRPC, GRPC_SERIES),
	[PROC_RSS] = PLAIN("process_resident_memory_bytes", "Resident memory size in bytes.",
			   SPD_METRIC_GAUGE),
	[PROC_FDS] = PLAIN("process_open_fds", "Number of open file descriptors.",
			   SPD_METRIC_GAUGE),
	[PROC_CPU] = PLAIN("process_cpu_seconds_total",
			   "Total user and system CPU time spent in seconds.", SPD_METRIC_COUNTER),
	[PROC_START] = PLAIN("process_start_time_seconds",
			     "Start time of the process since unix epoch in seconds.",
			     SPD_METRIC_GAUGE),
	[LAUNCHER_RSS] = PLAIN("spawnd_launcher_resident_memory_bytes",
			       "The launcher's resident memory size in bytes.", SPD_METRIC_GAUGE),
	[LAUNCHER_FDS] = PLAIN("spawnd_launcher_open_fds",
			       "The launcher's open file descriptors.", SPD_METRIC_GAUGE),
	[LAUNCHER_CPU] = PLAIN("spawnd_launcher_cpu_seconds_total",
			       "The launcher's user and system CPU time in seconds.",
			       SPD_METRIC_COUNTER),
};

typedef struct metrics {
	spd_metric_family *f[FAMILY_COUNT];
	/* The series of the families without labels. */
	spd_metric_series *one[FAMILY_COUNT];
	pthread_mutex_t render_mu;  /* renders, the collector, the launcher pid */
	spd_metrics_collect_fn collect;
	void *collect_ctx;
	pid_t launcher_pid;
	uint64_t launcher_ticks;    /* its start time: a reused pid is not it */
} metrics;

static _Atomic(metrics *) the;

static metrics *get(void)
{
	return atomic_load_explicit(&the, memory_order_acquire);
}

static void metrics_free(metrics *m)
{
	for (size_t i = 0; i < FAMILY_COUNT; i++)
		spd_metric_family_destroy(m->f[i]);
	pthread_mutex_destroy(&m->render_mu);
	free(m);
}

int spd_metrics_init(void)
{
	metrics *m;

	if (get() != NULL)
		return 0;
	m = calloc(1, sizeof *m);
	if (m == NULL)
		return -ENOMEM;
	pthread_mutex_init(&m->render_mu, NULL);
	for (size_t i = 0; i < FAMILY_COUNT; i++) {
		m->f[i] = spd_metric_family_create(&descs[i]);
		if (m->f[i] == NULL) {
			metrics_free(m);
			return -ENOMEM;
		}
		if (descs[i].label_count == 0)
			m->one[i] = spd_metric_series_get(m->f[i], NULL);
	}
	atomic_store_explicit(&the, m, memory_order_release);
	return 0;
}

void spd_metrics_shutdown(void)
{
	metrics *m = atomic_exchange(&the, NULL);

	if (m != NULL)
		metrics_free(m);
}

bool spd_metrics_active(void)
{
	return get() != NULL;
}

static spd_metric_series *series(metrics *m, int fam, const char *const *values)
{
	return spd_metric_series_get(m->f[fam], values);
}

void spd_metrics_add_target(const char *target)
{
	metrics *m = get();
	const char *ok[] = {target, "SUCCEEDED", ""}, *canceled[] = {target, "CANCELED", ""};

	if (m == NULL)
		return;
	series(m, STARTED, &target);
	series(m, RUNNING, &target);
	series(m, PENDING, &target);
	series(m, ZYGOTE_RESTARTS, &target);
	series(m, START_LATENCY, &target);
	series(m, DURATION, &target);
	series(m, ENDED, ok);
	series(m, ENDED, canceled);
}

void spd_metrics_process_started(const char *target)
{
	metrics *m = get();

	if (m != NULL)
		spd_metric_add(series(m, STARTED, &target), 1);
}

void spd_metrics_process_running(const char *target, double latency_s)
{
	metrics *m = get();

	if (m != NULL)
		spd_metric_observe(series(m, START_LATENCY, &target), latency_s < 0 ? 0 : latency_s);
}

void spd_metrics_process_ended(const char *target, const char *state, const char *error_kind,
			       double duration_s)
{
	metrics *m = get();
	const char *v[] = {target, state, error_kind != NULL ? error_kind : ""};

	if (m == NULL)
		return;
	spd_metric_add(series(m, ENDED, v), 1);
	if (duration_s >= 0)
		spd_metric_observe(series(m, DURATION, &target), duration_s);
}

void spd_metrics_zygote_restart(const char *target)
{
	metrics *m = get();

	if (m != NULL)
		spd_metric_add(series(m, ZYGOTE_RESTARTS, &target), 1);
}

void spd_metrics_set_launcher(pid_t pid)
{
	metrics *m = get();
	spd_procstat ps;

	if (m == NULL)
		return;
	pthread_mutex_lock(&m->render_mu);
	m->launcher_pid = pid;
	m->launcher_ticks = 0;
	if (pid > 0 && spd_procstat_read(pid, &ps) == 0)
		m->launcher_ticks = ps.start_ticks;
	pthread_mutex_unlock(&m->render_mu);
}

void spd_metrics_launcher_up(bool up)
{
	metrics *m = get();

	if (m != NULL)
		spd_metric_set(m->one[LAUNCHER_UP], up ? 1 : 0);
}

void spd_metrics_watchers_add(int delta)
{
	metrics *m = get();

	if (m != NULL)
		spd_metric_add(m->one[WATCHERS], delta);
}

void spd_metrics_grpc_declare(const char *type, const char *service, const char *method)
{
	metrics *m = get();
	const char *v[] = {type, service, method, "OK"};

	if (m == NULL)
		return;
	series(m, GRPC_STARTED, v);
	series(m, GRPC_HANDLED, v);
}

void spd_metrics_grpc_started(const char *type, const char *service, const char *method)
{
	metrics *m = get();
	const char *v[] = {type, service, method};

	if (m != NULL)
		spd_metric_add(series(m, GRPC_STARTED, v), 1);
}

void spd_metrics_grpc_handled(const char *type, const char *service, const char *method,
			      const char *code, double seconds)
{
	metrics *m = get();
	const char *v[] = {type, service, method, code};

	if (m == NULL)
		return;
	spd_metric_add(series(m, GRPC_HANDLED, v), 1);
	spd_metric_observe(series(m, GRPC_HANDLING, v), seconds < 0 ? 0 : seconds);
}

void spd_metrics_store_commit(double seconds)
{
	metrics *m = get();

	if (m != NULL)
		spd_metric_observe(m->one[STORE_COMMIT], seconds < 0 ? 0 : seconds);
}

void spd_metrics_store_error(void)
{
	metrics *m = get();

	if (m != NULL)
		spd_metric_add(m->one[STORE_ERRORS], 1);
}

void spd_metrics_set_collector(spd_metrics_collect_fn fn, void *ctx)
{
	metrics *m = get();

	if (m == NULL)
		return;
	pthread_mutex_lock(&m->render_mu);
	m->collect = fn;
	m->collect_ctx = ctx;
	pthread_mutex_unlock(&m->render_mu);
}

void spd_metrics_target_counts(const char *target, uint32_t running, uint32_t pending)
{
	metrics *m = get();

	if (m == NULL)
		return;
	spd_metric_set(series(m, RUNNING, &target), running);
	spd_metric_set(series(m, PENDING, &target), pending);
}

/* The front's and the launcher's process_* figures. render_mu held. */
static void read_procs(metrics *m)
{
	spd_procstat ps;

	if (spd_procstat_read(0, &ps) == 0) {
		spd_metric_set(m->one[PROC_RSS], ps.resident_bytes);
		spd_metric_set(m->one[PROC_FDS], ps.open_fds);
		spd_metric_set(m->one[PROC_CPU], ps.cpu_seconds);
		spd_metric_set(m->one[PROC_START], ps.start_time_seconds);
	}
	if (m->launcher_pid <= 0 || spd_procstat_read(m->launcher_pid, &ps) < 0)
		return;
	/* The launcher is our child until link.c reaps it, so its pid is its
	 * own; after that a new process could take it: its start time tells. */
	if (ps.start_ticks != m->launcher_ticks)
		return;
	spd_metric_set(m->one[LAUNCHER_RSS], ps.resident_bytes);
	spd_metric_set(m->one[LAUNCHER_FDS], ps.open_fds);
	spd_metric_set(m->one[LAUNCHER_CPU], ps.cpu_seconds);
}

int spd_metrics_render(spd_mbuf *out)
{
	metrics *m = get();

	if (m == NULL)
		return 0;
	pthread_mutex_lock(&m->render_mu);
	read_procs(m);
	if (m->collect != NULL) {
		spd_metric_family_zero(m->f[RUNNING]);
		spd_metric_family_zero(m->f[PENDING]);
		m->collect(m->collect_ctx);
	}
	for (size_t i = 0; i < FAMILY_COUNT; i++)
		spd_metric_family_render(m->f[i], out);
	pthread_mutex_unlock(&m->render_mu);
	return out->err;
}
