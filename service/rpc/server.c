#include "service/rpc/server.h"

#include <errno.h>
#include <fcntl.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "service/common/clock.h"
#include "service/common/fdlimit.h"
#include "service/common/log.h"
#include "service/rpc/call.h"
#include "service/rpc/call_stats.h"
#include "service/rpc/caller.h"
#include "service/rpc/grpc_log.h"
#include "service/rpc/handlers.h"
#include "service/rpc/health.h"
#include "service/rpc/listeners.h"
#include "service/rpc/metadata.h"
#include "service/rpc/reflection_index.h"

/* Requests kept posted per method, so that a burst is matched without waiting
 * for the CQ thread to re-arm. */
#define SLOTS_PER_METHOD 4

#define ARG_COUNT 4
#define HANDSHAKE_TIMEOUT_MS 10000
#define MAX_IDLE_MS (5 * 60 * 1000)
/* Descriptors kept back for probing and re-binding listeners. */
#define RESERVE_FDS 8
/* How often each listener is probed, and how long a probe may take. */
#define PROBE_INTERVAL_NS (5LL * 1000000000LL)
#define PROBE_TIMEOUT_MS 3000
/* How long a re-bind waits for gRPC to let go of the old listener. */
#define RELEASE_TIMEOUT_MS 2000

/* Unary and server-streaming methods get their request with the call
 * (READ_INITIAL_BYTE_BUFFER); bidi ones read their messages themselves
 * (PAYLOAD_NONE, gRPC notes §3: a mismatch fails the request). */
#define ONE_MESSAGE GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER
#define BIDI GRPC_SRM_PAYLOAD_NONE

/* OPEN: health and reflection, open to probes and tools without a token
 * unless auth.protect_health. */
#define OPEN true

/* KIND: go-grpc-prometheus's grpc_type label (call_stats.h). */
#define UNARY "unary"
#define SERVER_STREAM "server_stream"
#define BIDI_STREAM "bidi_stream"

static const struct {
	const char *path;
	spd_rpc_handler handler;
	grpc_server_register_method_payload_handling payload;
	bool open;
	const char *kind;
} methods[] = {
	{"/spawnd.v1.ProcessService/StartProcess", spd_rpc_start_process, ONE_MESSAGE, false, UNARY},
	{"/spawnd.v1.ProcessService/Destroy", spd_rpc_destroy, ONE_MESSAGE, false, UNARY},
	{"/spawnd.v1.ProcessService/Watch", spd_rpc_watch, ONE_MESSAGE, false, SERVER_STREAM},
	{"/spawnd.v1.ProcessService/GetProcess", spd_rpc_get_process, ONE_MESSAGE, false, UNARY},
	{"/spawnd.v1.ProcessService/ListProcesses", spd_rpc_list_processes, ONE_MESSAGE, false,
	 UNARY},
	{"/spawnd.v1.ProcessService/ListTargets", spd_rpc_list_targets, ONE_MESSAGE, false, UNARY},
	{"/spawnd.v1.ProcessService/Run", spd_rpc_run, ONE_MESSAGE, false, SERVER_STREAM},
	{"/grpc.health.v1.Health/Check", spd_rpc_health_check, ONE_MESSAGE, OPEN, UNARY},
	{"/grpc.health.v1.Health/Watch", spd_rpc_health_watch, ONE_MESSAGE, OPEN, SERVER_STREAM},
	{"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", spd_rpc_reflection_info, BIDI,
	 OPEN, BIDI_STREAM},
	{"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", spd_rpc_reflection_info,
	 BIDI, OPEN, BIDI_STREAM},
};

#define METHOD_COUNT (sizeof methods / sizeof methods[0])

/* One posted request for a registered method, or (method == -1) for any other.
 * Each slot is its own allocation, posted on one generation's server: it is
 * re-posted there after each call, and freed when that server refuses it
 * (shutting down). */
typedef struct slot {
	spd_tag tag;
	struct gen *gen;
	int method;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
	grpc_call_details details;
} slot;

/* One grpc_server and its listeners. Normally there is one; when a listener
 * stops accepting, the monitor starts a new generation on the same addresses
 * and retires the old one, whose calls (long Watch streams) carry on until
 * they end: grpc_server_shutdown_and_notify closes listeners, not calls. */
typedef struct gen {
	struct gen *next;          /* spd_server.retired */
	struct spd_server *srv;
	grpc_server *server;
	void *handles[METHOD_COUNT];
	spd_tag shutdown_tag;
	bool shutdown_done;        /* spd_server.mu */
	bool retired;              /* spd_server.mu: no more re-posting */
	unsigned id;
} gen;

struct spd_server {
	const spd_config *cfg;
	grpc_completion_queue *cq;
	pthread_t cq_thread;
	pthread_t monitor;
	bool monitor_started;
	spd_rpc_env env;
	spd_reflection_index *reflection;
	spd_listener *listeners;   /* cfg->listen_count, ports as first bound */
	spd_tls *tls;              /* NULL: no tls in the config */
	spd_auth *auth;            /* mu; NULL: no auth in the config */
	atomic_bool protect_health;  /* auth.protect_health, as last (re)loaded */
	grpc_arg args[ARG_COUNT];
	grpc_channel_args ch;
	int reserve[RESERVE_FDS];  /* monitor thread only */

	pthread_mutex_t mu;
	pthread_cond_t cond;       /* gens shut down; accept failures; stopping */
	gen *current;
	gen *retired;
	unsigned next_gen;
	bool accept_failed;        /* gRPC logged an accept failure */
	bool stopping;
};

static void arm(slot *s);

static void free_slot(slot *s)
{
	grpc_metadata_array_destroy(&s->md);
	if (s->method < 0)
		grpc_call_details_destroy(&s->details);
	free(s);
}

/* The principal of the call in slot S (NULL: refused), with its tokens'
 * reference in *AUTH (NULL without auth: everything allowed). */
static const spd_principal *authenticate(slot *s, spd_auth **auth)
{
	spd_server *srv = s->gen->srv;
	const spd_principal *who = NULL;

	pthread_mutex_lock(&srv->mu);
	*auth = spd_auth_ref(srv->auth);
	pthread_mutex_unlock(&srv->mu);
	if (*auth == NULL)
		return NULL;
	for (size_t i = 0; i < s->md.count && who == NULL; i++) {
		const grpc_metadata *m = &s->md.metadata[i];
		if (grpc_slice_str_cmp(m->key, "authorization") == 0)
			who = spd_auth_check(*auth, (const char *)GRPC_SLICE_START_PTR(m->value),
					     GRPC_SLICE_LENGTH(m->value));
	}
	return who;
}

static void dispatch(slot *s)
{
	spd_server *srv = s->gen->srv;
	spd_auth *auth = NULL;
	const spd_principal *who;

	/* Counted from here, refusals included: every call ends through
	 * call.c or reflection.c, which count its status. */
	spd__call_stats_begin(s->call, methods[s->method].path, methods[s->method].kind);
	who = authenticate(s, &auth);
	if (auth != NULL && who == NULL &&
	    !(methods[s->method].open && !atomic_load(&srv->protect_health))) {
		/* Never the token itself: it may be a real one, mistyped. */
		spd_log(SPD_LOG_INFO, "call refused: missing or unknown bearer token",
			SPD_LOG_STR("method", methods[s->method].path), SPD_LOG_END);
		if (s->payload != NULL)
			grpc_byte_buffer_destroy(s->payload);
		spd_call_finish(s->call, GRPC_STATUS_UNAUTHENTICATED,
				"missing or unknown bearer token: send 'authorization: Bearer TOKEN'",
				NULL);
		spd_auth_unref(auth);
		return;
	}
	/* An open method called without a token sees everything it shows. */
	spd__rpc_caller_set(who != NULL ? auth : NULL, who);
	spd__rpc_metadata_set(&s->md);
	methods[s->method].handler(&srv->env, s->call, s->payload);
	spd__rpc_metadata_set(NULL);
	spd__rpc_caller_set(NULL, NULL);
	spd_auth_unref(auth);
}

static void on_request(spd_tag *tag, int ok)
{
	slot *s = (slot *)tag;
	bool repost;

	if (!ok) {
		free_slot(s); /* its server is shutting down */
		return;
	}
	if (s->method >= 0) {
		dispatch(s);
	} else {
		char *m = grpc_slice_to_c_string(s->details.method);
		char msg[512];
		snprintf(msg, sizeof msg, "unknown method %.400s", m);
		spd_call_finish(s->call, GRPC_STATUS_UNIMPLEMENTED, msg, NULL);
		gpr_free(m);
		grpc_call_details_destroy(&s->details);
	}
	grpc_metadata_array_destroy(&s->md);
	pthread_mutex_lock(&s->gen->srv->mu);
	repost = !s->gen->retired;
	pthread_mutex_unlock(&s->gen->srv->mu);
	if (!repost) {
		if (s->method < 0)
			grpc_call_details_init(&s->details);
		grpc_metadata_array_init(&s->md);
		free_slot(s);
		return;
	}
	arm(s);
}

static void arm(slot *s)
{
	gen *g = s->gen;
	grpc_call_error e;

	s->call = NULL;
	s->payload = NULL;
	grpc_metadata_array_init(&s->md);
	if (s->method >= 0) {
		grpc_byte_buffer **payload =
			methods[s->method].payload == BIDI ? NULL : &s->payload;
		e = grpc_server_request_registered_call(g->server, g->handles[s->method], &s->call,
							&s->deadline, &s->md, payload, g->srv->cq,
							g->srv->cq, &s->tag);
	} else {
		grpc_call_details_init(&s->details);
		e = grpc_server_request_call(g->server, &s->call, &s->details, &s->md, g->srv->cq,
					     g->srv->cq, &s->tag);
	}
	if (e != GRPC_CALL_OK) {
		spd_log(SPD_LOG_ERROR, "cannot post a request", SPD_LOG_INT("error", e), SPD_LOG_END);
		free_slot(s);
	}
}

static void on_gen_shutdown(spd_tag *tag, int ok)
{
	gen *g = (gen *)((char *)tag - offsetof(gen, shutdown_tag));

	(void)ok;
	pthread_mutex_lock(&g->srv->mu);
	g->shutdown_done = true;
	pthread_cond_broadcast(&g->srv->cond);
	pthread_mutex_unlock(&g->srv->mu);
}

static void *cq_main(void *arg)
{
	spd_server *s = arg;

	for (;;) {
		grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			return NULL;
		if (ev.type == GRPC_OP_COMPLETE)
			((spd_tag *)ev.tag)->fn(ev.tag, ev.success);
	}
}

/* ---- generations ---------------------------------------------------------- */

/* Shuts G's server down and waits for it (G was never started, or its calls
 * are over), then frees G. gRPC asserts that a server with listeners was
 * shut down before it is destroyed. */
static void gen_free_now(spd_server *s, gen *g)
{
	grpc_server_shutdown_and_notify(g->server, s->cq, &g->shutdown_tag);
	grpc_server_cancel_all_calls(g->server);
	pthread_mutex_lock(&s->mu);
	while (!g->shutdown_done)
		pthread_cond_wait(&s->cond, &s->mu);
	pthread_mutex_unlock(&s->mu);
	grpc_server_destroy(g->server);
	free(g);
}

/* A new server on every listen address (REBIND: the ports bound first).
 * Returns it started with its requests posted, or NULL with ERR filled. The
 * CQ thread must be running (a failed bind is shut down through it). */
static gen *gen_start(spd_server *s, bool rebind, char *err, size_t errlen)
{
	gen *g = calloc(1, sizeof *g);
	int rc;

	if (g == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	g->srv = s;
	g->shutdown_tag.fn = on_gen_shutdown;
	g->server = grpc_server_create(&s->ch, NULL);
	grpc_server_register_completion_queue(g->server, s->cq, NULL);
	for (size_t i = 0; i < METHOD_COUNT; i++)
		g->handles[i] = grpc_server_register_method(g->server, methods[i].path, NULL,
							    methods[i].payload, 0);
	rc = spd_listeners_bind(g->server, s->cfg, s->tls, s->listeners, rebind, err, errlen);
	if (rc < 0) {
		gen_free_now(s, g);
		return NULL;
	}
	grpc_server_start(g->server);
	pthread_mutex_lock(&s->mu);
	g->id = s->next_gen++;
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < METHOD_COUNT * SLOTS_PER_METHOD + 1; i++) {
		slot *sl = calloc(1, sizeof *sl);
		if (sl == NULL)
			break; /* fewer posted requests: slower bursts, still served */
		sl->tag.fn = on_request;
		sl->gen = g;
		sl->method = i < METHOD_COUNT * SLOTS_PER_METHOD ? (int)(i / SLOTS_PER_METHOD) : -1;
		arm(sl);
	}
	return g;
}

/* Stops G taking calls (its listeners close; its open calls go on) and moves
 * it to the retired list, where the monitor frees it once its calls are over.
 * Lock held. */
static void gen_retire_locked(spd_server *s, gen *g)
{
	g->retired = true;
	g->next = s->retired;
	s->retired = g;
	grpc_server_shutdown_and_notify(g->server, s->cq, &g->shutdown_tag);
}

/* Frees the retired generations whose calls are all over. Lock held; drops
 * it around grpc_server_destroy. */
static void gen_reap_retired_locked(spd_server *s)
{
	for (gen **pp = &s->retired; *pp != NULL;) {
		gen *g = *pp;
		if (!g->shutdown_done) {
			pp = &g->next;
			continue;
		}
		*pp = g->next;
		pthread_mutex_unlock(&s->mu);
		grpc_server_destroy(g->server);
		free(g);
		pthread_mutex_lock(&s->mu);
		pp = &s->retired;
	}
}

/* ---- descriptors in reserve ------------------------------------------------ */

/* A few descriptors held back, so that when the process runs out (connections
 * up to RLIMIT_NOFILE) the monitor can still probe and re-bind its listeners:
 * it lets them go just before, and takes them back after. */
static void reserve_take(spd_server *s)
{
	for (int i = 0; i < RESERVE_FDS; i++)
		if (s->reserve[i] < 0)
			s->reserve[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void reserve_release(spd_server *s)
{
	for (int i = 0; i < RESERVE_FDS; i++) {
		if (s->reserve[i] >= 0)
			close(s->reserve[i]);
		s->reserve[i] = -1;
	}
}

/* ---- the monitor: listeners that stopped accepting -------------------------- */

static void on_accept_failed(void *ctx)
{
	spd_server *s = ctx;

	/* A gRPC thread, with gRPC's locks held: only flag and wake. */
	pthread_mutex_lock(&s->mu);
	s->accept_failed = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

/* Waits until DEADLINE (CLOCK_MONOTONIC ns), an accept failure, a retired
 * generation finishing, or stop. Lock held. */
static void monitor_wait_locked(spd_server *s, int64_t deadline_ns)
{
	struct timespec ts = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};

	if (s->stopping || s->accept_failed)
		return;
	for (gen *g = s->retired; g != NULL; g = g->next)
		if (g->shutdown_done)
			return;
	pthread_cond_timedwait(&s->cond, &s->mu, &ts);
}

/* Number of listeners of the current generation that do not answer a probe;
 * a probe that cannot even be made (no descriptor) counts as down. */
static unsigned probe_all(spd_server *s)
{
	unsigned down = 0;

	for (size_t i = 0; i < s->cfg->listen_count; i++) {
		int rc = spd_listener_probe(&s->listeners[i], PROBE_TIMEOUT_MS);
		if (rc < 0) {
			down++;
			spd_log(SPD_LOG_WARN, "listener does not accept connections",
				SPD_LOG_STR("address", s->listeners[i].bound),
				SPD_LOG_STR("error", strerror(-rc)), SPD_LOG_END);
		}
	}
	return down;
}

/* Replaces the current generation: the old one's listeners are closed (its
 * calls go on), then the same addresses are bound again, retrying every
 * second until it works (the descriptors come back as idle connections time
 * out) or the server stops. Health says NOT_SERVING meanwhile. */
static void recover(spd_server *s, unsigned down)
{
	char err[512];
	gen *old, *g = NULL;
	unsigned tries = 0;

	spd_registry_set_listeners_down(s->env.registry, down ? down : 1);
	pthread_mutex_lock(&s->mu);
	old = s->current;
	s->current = NULL;
	if (old != NULL)
		gen_retire_locked(s, old);
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < s->cfg->listen_count; i++)
		if (spd_listener_wait_released(&s->listeners[i], RELEASE_TIMEOUT_MS) < 0)
			spd_log(SPD_LOG_WARN, "the old listener is still bound; binding anyway",
				SPD_LOG_STR("address", s->listeners[i].bound), SPD_LOG_END);
	for (;;) {
		reserve_release(s);
		g = gen_start(s, true, err, sizeof err);
		reserve_take(s);
		if (g != NULL)
			break;
		if (tries++ == 0)
			spd_log(SPD_LOG_ERROR, "cannot bind the listeners again; retrying every second",
				SPD_LOG_STR("error", err), SPD_LOG_END);
		pthread_mutex_lock(&s->mu);
		gen_reap_retired_locked(s);
		if (!s->stopping)
			monitor_wait_locked(s, spd_clock_mono_ns() + 1000000000LL);
		if (s->stopping) {
			pthread_mutex_unlock(&s->mu);
			return;
		}
		pthread_mutex_unlock(&s->mu);
	}
	pthread_mutex_lock(&s->mu);
	s->current = g;
	s->accept_failed = false;
	if (s->stopping) {
		/* spd_server_stop is waiting for the monitor: it shuts G down. */
		pthread_mutex_unlock(&s->mu);
		return;
	}
	pthread_mutex_unlock(&s->mu);
	spd_registry_set_listeners_down(s->env.registry, 0);
	for (size_t i = 0; i < s->cfg->listen_count; i++)
		spd_log(SPD_LOG_WARN, "listening again", SPD_LOG_STR("address", s->listeners[i].bound),
			SPD_LOG_INT("generation", g->id), SPD_LOG_END);
}

static void *monitor_main(void *arg)
{
	spd_server *s = arg;
	int64_t next_probe = spd_clock_mono_ns() + PROBE_INTERVAL_NS;
	unsigned failures = 0;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		bool failed;
		gen_reap_retired_locked(s);
		if (s->stopping)
			break;
		monitor_wait_locked(s, next_probe);
		if (s->stopping)
			break;
		failed = s->accept_failed;
		s->accept_failed = false;
		if (!failed && spd_clock_mono_ns() < next_probe)
			continue;
		pthread_mutex_unlock(&s->mu);
		if (failed) {
			/* gRPC said so: its listener will not accept again. */
			spd_log(SPD_LOG_ERROR,
				"a listener stopped accepting connections (out of descriptors?); "
				"binding it again",
				SPD_LOG_END);
			recover(s, 1);
			failures = 0;
		} else {
			unsigned down;
			reserve_release(s);
			down = probe_all(s);
			reserve_take(s);
			/* Twice in a row, so that one slow answer under load is not
			 * taken for a dead listener. */
			failures = down > 0 ? failures + 1 : 0;
			if (failures >= 2) {
				recover(s, down);
				failures = 0;
			}
		}
		next_probe = spd_clock_mono_ns() + PROBE_INTERVAL_NS;
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int spd_server_start(const spd_config *cfg, spd_registry *reg, spd_server **out, char *err,
		     size_t errlen)
{
	spd_server *s = calloc(1, sizeof *s);
	pthread_condattr_t ca;
	int rc;

	if (s == NULL)
		return -ENOMEM;
	s->cfg = cfg;
	for (int i = 0; i < RESERVE_FDS; i++)
		s->reserve[i] = -1;
	s->env.registry = reg;
	atomic_init(&s->protect_health, cfg->auth_protect_health);
	s->env.health = spd_rpc_health_create(reg);
	s->listeners = calloc(cfg->listen_count ? cfg->listen_count : 1, sizeof *s->listeners);
	if (s->env.health == NULL || s->listeners == NULL) {
		spd_rpc_health_destroy(s->env.health);
		free(s->listeners);
		free(s);
		return -ENOMEM;
	}
	/* The descriptors are compiled in: failing to index them is a build bug,
	 * but it costs reflection only, not the service. */
	rc = spd_reflection_index_create(spd_served_fds, spd_served_fds_len, &s->reflection);
	if (rc < 0)
		spd_log(SPD_LOG_ERROR, "reflection disabled: cannot index the descriptor set",
			SPD_LOG_STR("error", strerror(-rc)), SPD_LOG_END);
	s->env.reflection = s->reflection;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	/* SO_REUSEPORT would let a second spawnd bind the same port silently
	 * (gRPC notes §12.2). */
	s->args[0] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_ALLOW_REUSEPORT,
				.value.integer = 0};
	s->args[1] = (grpc_arg){.type = GRPC_ARG_INTEGER,
				.key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
				.value.integer = cfg->max_request_bytes > (uint64_t)INT32_MAX
							 ? INT32_MAX
							 : (int)cfg->max_request_bytes};
	/* A connection that has not sent its HTTP/2 preface and SETTINGS within
	 * this is closed: otherwise any client holds a descriptor for gRPC's
	 * default 120 s per connection it opens and never uses. */
	s->args[2] = (grpc_arg){.type = GRPC_ARG_INTEGER,
				.key = (char *)GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
				.value.integer = HANDSHAKE_TIMEOUT_MS};
	/* A connection with no call for this long gets a GOAWAY (clients
	 * reconnect on their next call). Not a max connection age: that would
	 * cut long Watch streams. */
	s->args[3] = (grpc_arg){.type = GRPC_ARG_INTEGER,
				.key = (char *)GRPC_ARG_MAX_CONNECTION_IDLE_MS,
				.value.integer = MAX_IDLE_MS};
	s->ch.num_args = ARG_COUNT;
	s->ch.args = s->args;
	/* Every connection is a descriptor: the soft limit (often 1024) would let
	 * a few hundred clients exhaust the front while the hard one allows more. */
	spd_fd_limit_raise("front");
	rc = spd_tls_create(cfg, &s->tls, err, errlen);
	if (rc == 0 && cfg->auth_tokens_file != NULL &&
	    (rc = spd_auth_load(cfg->auth_tokens_file, &s->auth, err, errlen)) < 0)
		spd_tls_destroy(s->tls);
	if (rc < 0) {
		spd_rpc_health_destroy(s->env.health);
		spd_reflection_index_destroy(s->reflection);
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->mu);
		free(s->listeners);
		free(s);
		return rc;
	}
	for (size_t i = 0; i < METHOD_COUNT; i++)
		spd__call_stats_declare(methods[i].path, methods[i].kind);
	spd_grpc_log_install(on_accept_failed, s);
	s->cq = grpc_completion_queue_create_for_next(NULL);
	pthread_create(&s->cq_thread, NULL, cq_main, s);
	s->current = gen_start(s, false, err, errlen);
	if (s->current == NULL) {
		s->stopping = true;
		spd_server_stop(s, 0);
		return -EADDRNOTAVAIL;
	}
	for (size_t i = 0; i < cfg->listen_count; i++)
		spd_log(SPD_LOG_INFO, "serving", SPD_LOG_STR("address", s->listeners[i].bound),
			SPD_LOG_END);
	reserve_take(s);
	s->monitor_started = pthread_create(&s->monitor, NULL, monitor_main, s) == 0;
	*out = s;
	return 0;
}

void spd_server_stop(spd_server *s, int64_t grace_ms)
{
	struct timespec ts;
	bool done;

	spd_grpc_log_on_accept_failed(NULL, NULL);
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	if (s->monitor_started)
		pthread_join(s->monitor, NULL);
	reserve_release(s);

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += grace_ms / 1000;
	ts.tv_nsec += (grace_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	/* Health Watches never end by themselves: end them first, or they would
	 * hold the shutdown for the whole grace period. */
	spd_rpc_health_stop(s->env.health);
	pthread_mutex_lock(&s->mu);
	if (s->current != NULL) {
		gen_retire_locked(s, s->current);
		s->current = NULL;
	}
	for (;;) {
		done = true;
		for (gen *g = s->retired; g != NULL; g = g->next)
			done = done && g->shutdown_done;
		if (done || pthread_cond_timedwait(&s->cond, &s->mu, &ts) == ETIMEDOUT)
			break;
	}
	for (gen *g = s->retired; g != NULL; g = g->next)
		if (!g->shutdown_done)
			grpc_server_cancel_all_calls(g->server);
	for (;;) {
		done = true;
		for (gen *g = s->retired; g != NULL; g = g->next)
			done = done && g->shutdown_done;
		if (done)
			break;
		pthread_cond_wait(&s->cond, &s->mu);
	}
	while (s->retired != NULL) {
		gen *g = s->retired;
		s->retired = g->next;
		grpc_server_destroy(g->server);
		free(g);
	}
	pthread_mutex_unlock(&s->mu);
	grpc_completion_queue_shutdown(s->cq);
	pthread_join(s->cq_thread, NULL);
	grpc_completion_queue_destroy(s->cq);
	spd_rpc_health_destroy(s->env.health);
	spd_reflection_index_destroy(s->reflection);
	spd_tls_destroy(s->tls);
	spd_auth_unref(s->auth);
	free(s->listeners);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int spd_server_reload(spd_server *s, const spd_config *cfg, char *err, size_t errlen)
{
	spd_auth *next = NULL, *old;
	int rc = 0;

	if (cfg->auth_tokens_file != NULL) {
		rc = spd_auth_load(cfg->auth_tokens_file, &next, err, errlen);
		if (rc < 0)
			return rc;
	}
	pthread_mutex_lock(&s->mu);
	old = s->auth;
	s->auth = next;
	pthread_mutex_unlock(&s->mu);
	/* Open streams hold OLD: they follow it to NEXT (a revoked token's
	 * watch-all sees nothing more, its Watch or Run ends). */
	spd_auth_supersede(old, next);
	spd_auth_unref(old); /* calls in flight keep their own reference */
	atomic_store(&s->protect_health, cfg->auth_protect_health);
	if (next != NULL)
		spd_log(SPD_LOG_INFO, "tokens re-read", SPD_LOG_STR("tokens_file", cfg->auth_tokens_file),
			SPD_LOG_INT("tokens", spd_auth_count(next)), SPD_LOG_END);
	else if (old != NULL)
		spd_log(SPD_LOG_WARN, "auth turned off by the reload: every caller may now do "
				      "everything",
			SPD_LOG_END);
	if (s->tls == NULL)
		return 0;
	rc = spd_tls_reload(s->tls, err, errlen);
	if (rc == 0)
		spd_log(SPD_LOG_INFO, "certificates re-read; new connections use them",
			SPD_LOG_STR("cert", s->cfg->tls_cert), SPD_LOG_END);
	return rc;
}
