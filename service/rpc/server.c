#include "service/rpc/server.h"

#include <errno.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "service/common/log.h"
#include "service/rpc/call.h"
#include "service/rpc/handlers.h"
#include "service/rpc/health.h"
#include "service/rpc/reflection_index.h"

/* Requests kept posted per method, so that a burst is matched without waiting
 * for the CQ thread to re-arm. */
#define SLOTS_PER_METHOD 4

/* Unary and server-streaming methods get their request with the call
 * (READ_INITIAL_BYTE_BUFFER); bidi ones read their messages themselves
 * (PAYLOAD_NONE, gRPC notes §3: a mismatch fails the request). */
#define ONE_MESSAGE GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER
#define BIDI GRPC_SRM_PAYLOAD_NONE

static const struct {
	const char *path;
	spd_rpc_handler handler;
	grpc_server_register_method_payload_handling payload;
} methods[] = {
	{"/spawnd.v1.ProcessService/StartProcess", spd_rpc_start_process, ONE_MESSAGE},
	{"/spawnd.v1.ProcessService/Destroy", spd_rpc_destroy, ONE_MESSAGE},
	{"/spawnd.v1.ProcessService/Watch", spd_rpc_watch, ONE_MESSAGE},
	{"/spawnd.v1.ProcessService/GetProcess", spd_rpc_get_process, ONE_MESSAGE},
	{"/spawnd.v1.ProcessService/ListProcesses", spd_rpc_list_processes, ONE_MESSAGE},
	{"/spawnd.v1.ProcessService/ListTargets", spd_rpc_list_targets, ONE_MESSAGE},
	{"/grpc.health.v1.Health/Check", spd_rpc_health_check, ONE_MESSAGE},
	{"/grpc.health.v1.Health/Watch", spd_rpc_health_watch, ONE_MESSAGE},
	{"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", spd_rpc_reflection_info, BIDI},
	{"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", spd_rpc_reflection_info,
	 BIDI},
};

#define METHOD_COUNT (sizeof methods / sizeof methods[0])

/* One posted request for a registered method, or (method == -1) for any other. */
typedef struct slot {
	spd_tag tag;
	struct spd_server *srv;
	int method;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
	grpc_call_details details;
} slot;

struct spd_server {
	grpc_server *server;
	grpc_completion_queue *cq;
	void *handles[METHOD_COUNT];
	pthread_t cq_thread;
	spd_rpc_env env;
	spd_tag shutdown_tag;
	spd_reflection_index *reflection;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int shutdown_done;
	slot *slots;
	size_t nslots;
};

static void arm(slot *s);

static void on_request(spd_tag *tag, int ok)
{
	slot *s = (slot *)tag;

	if (!ok)
		return; /* shutting down: the slot is freed with the server */
	if (s->method >= 0) {
		methods[s->method].handler(&s->srv->env, s->call, s->payload);
	} else {
		char *m = grpc_slice_to_c_string(s->details.method);
		char msg[512];
		snprintf(msg, sizeof msg, "unknown method %.400s", m);
		spd_call_finish(s->call, GRPC_STATUS_UNIMPLEMENTED, msg, NULL);
		gpr_free(m);
		grpc_call_details_destroy(&s->details);
	}
	grpc_metadata_array_destroy(&s->md);
	arm(s);
}

static void arm(slot *s)
{
	grpc_call_error e;

	s->call = NULL;
	s->payload = NULL;
	grpc_metadata_array_init(&s->md);
	if (s->method >= 0) {
		grpc_byte_buffer **payload =
			methods[s->method].payload == BIDI ? NULL : &s->payload;
		e = grpc_server_request_registered_call(s->srv->server, s->srv->handles[s->method],
							&s->call, &s->deadline, &s->md, payload,
							s->srv->cq, s->srv->cq, &s->tag);
	} else {
		grpc_call_details_init(&s->details);
		e = grpc_server_request_call(s->srv->server, &s->call, &s->details, &s->md,
					     s->srv->cq, s->srv->cq, &s->tag);
	}
	if (e != GRPC_CALL_OK)
		spd_log(SPD_LOG_ERROR, "cannot post a request", SPD_LOG_INT("error", e), SPD_LOG_END);
}

static void on_shutdown(spd_tag *tag, int ok)
{
	spd_server *s = (spd_server *)((char *)tag - offsetof(spd_server, shutdown_tag));

	(void)ok;
	pthread_mutex_lock(&s->mu);
	s->shutdown_done = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
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

/* "127.0.0.1:0" bound to port P -> "127.0.0.1:P". */
static void bound_address(const char *listen, int port, char *out, size_t len)
{
	const char *colon = strrchr(listen, ':');

	if (strncmp(listen, "unix:", 5) == 0 || strncmp(listen, "unix-abstract:", 14) == 0 ||
	    colon == NULL)
		snprintf(out, len, "%s", listen);
	else
		snprintf(out, len, "%.*s:%d", (int)(colon - listen), listen, port);
}

static int listen_all(spd_server *s, const spd_config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg->listen_count; i++) {
		const char *addr = cfg->listen[i];
		grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
		int port = grpc_server_add_http2_port(s->server, addr, creds);
		char bound[512];

		grpc_server_credentials_release(creds);
		if (port == 0) {
			snprintf(err, errlen, "listen %s: cannot bind (address in use, or not an address?)",
				 addr);
			return -EADDRINUSE;
		}
		if (strncmp(addr, "unix:", 5) == 0 &&
		    chmod(addr + 5, (mode_t)cfg->unix_socket_mode) < 0) {
			snprintf(err, errlen, "listen %s: chmod %o: %s", addr, cfg->unix_socket_mode,
				 strerror(errno));
			return -errno;
		}
		bound_address(addr, port, bound, sizeof bound);
		spd_log(SPD_LOG_INFO, "serving", SPD_LOG_STR("address", bound), SPD_LOG_END);
	}
	return 0;
}

int spd_server_start(const spd_config *cfg, spd_registry *reg, spd_server **out, char *err,
		     size_t errlen)
{
	spd_server *s = calloc(1, sizeof *s);
	grpc_arg args[2];
	grpc_channel_args ch;
	pthread_condattr_t ca;
	int rc;

	if (s == NULL)
		return -ENOMEM;
	s->env.registry = reg;
	s->env.cfg = cfg;
	s->env.health = spd_rpc_health_create(reg);
	if (s->env.health == NULL) {
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
	s->shutdown_tag.fn = on_shutdown;
	/* SO_REUSEPORT would let a second spawnd bind the same port silently
	 * (gRPC notes §12.2). */
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = (char *)GRPC_ARG_ALLOW_REUSEPORT;
	args[0].value.integer = 0;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[1].value.integer = cfg->max_request_bytes > (uint64_t)INT32_MAX ? INT32_MAX
									     : (int)cfg->max_request_bytes;
	ch.num_args = 2;
	ch.args = args;
	s->cq = grpc_completion_queue_create_for_next(NULL);
	s->server = grpc_server_create(&ch, NULL);
	grpc_server_register_completion_queue(s->server, s->cq, NULL);
	for (size_t i = 0; i < METHOD_COUNT; i++)
		s->handles[i] = grpc_server_register_method(s->server, methods[i].path, NULL,
							    methods[i].payload, 0);
	rc = listen_all(s, cfg, err, errlen);
	if (rc < 0) {
		grpc_server_destroy(s->server);
		grpc_completion_queue_shutdown(s->cq);
		while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
		       GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(s->cq);
		spd_rpc_health_destroy(s->env.health);
		spd_reflection_index_destroy(s->reflection);
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->mu);
		free(s);
		return rc;
	}
	grpc_server_start(s->server);
	s->nslots = METHOD_COUNT * SLOTS_PER_METHOD + 1;
	s->slots = calloc(s->nslots, sizeof *s->slots);
	for (size_t i = 0; s->slots != NULL && i < s->nslots; i++) {
		slot *sl = &s->slots[i];
		sl->tag.fn = on_request;
		sl->srv = s;
		sl->method = i < METHOD_COUNT * SLOTS_PER_METHOD ? (int)(i / SLOTS_PER_METHOD) : -1;
		arm(sl);
	}
	pthread_create(&s->cq_thread, NULL, cq_main, s);
	*out = s;
	return 0;
}

void spd_server_stop(spd_server *s, int64_t grace_ms)
{
	struct timespec ts;

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
	grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
	pthread_mutex_lock(&s->mu);
	while (!s->shutdown_done) {
		if (pthread_cond_timedwait(&s->cond, &s->mu, &ts) == ETIMEDOUT)
			break;
	}
	if (!s->shutdown_done) {
		pthread_mutex_unlock(&s->mu);
		grpc_server_cancel_all_calls(s->server);
		pthread_mutex_lock(&s->mu);
		while (!s->shutdown_done)
			pthread_cond_wait(&s->cond, &s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	grpc_server_destroy(s->server);
	grpc_completion_queue_shutdown(s->cq);
	pthread_join(s->cq_thread, NULL);
	grpc_completion_queue_destroy(s->cq);
	for (size_t i = 0; i < s->nslots; i++)
		grpc_metadata_array_destroy(&s->slots[i].md);
	for (size_t i = METHOD_COUNT * SLOTS_PER_METHOD; i < s->nslots; i++)
		grpc_call_details_destroy(&s->slots[i].details);
	free(s->slots);
	spd_rpc_health_destroy(s->env.health);
	spd_reflection_index_destroy(s->reflection);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
