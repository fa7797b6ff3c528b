/* grpc.health.v1.Health: Check (unary) and Watch (server streaming). See
 * health.h for the names and the end of a Watch.
 *
 * Locks, always in this order (registry.h "Locks" has the front's whole
 * order): the service's mu (its list of watches), the registry's (a
 * subscription's callback runs under it), a stream's. The registry callback
 * only pushes onto its own stream; it never takes mu.
 *
 * Lifetime of a Watch: the handler's stream reference passes to the service's
 * list; whoever unlinks the watch (cancellation, or spd_rpc_health_stop) first
 * removes its registry subscription, then drops that reference. The stream
 * frees the watch with its last reference.
 */
#include "service/rpc/health.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "service/rpc/call.h"
#include "service/rpc/codec.h"
#include "service/rpc/handlers.h"

#define SERVICE_NAME "spawnd.v1.ProcessService"
#define TARGET_PREFIX "spawnd.target."
#define STORE_NAME "spawnd.store"

typedef struct hwatch {
	struct hwatch *prev, *next;  /* in the service's list, under its mu */
	spd_rpc_health *svc;
	spd_stream *stream;
	uint64_t sub_id;             /* registry subscription; 0: none (unknown name) */
	spd_health last;             /* what the stream was told last (registry lock) */
	bool listed;
	bool cancelled;              /* the call died before it was listed */
} hwatch;

struct spd_rpc_health {
	pthread_mutex_t mu;
	spd_registry *reg;
	hwatch *watches;
	bool stopped;
};

/* Health name -> registry subject: *TARGET is NULL for the server, else the
 * target's name inside NAME. False for a name that is not ours. */
static bool subject_of(const char *name, const char **target)
{
	if (name[0] == '\0' || strcmp(name, SERVICE_NAME) == 0) {
		*target = NULL;
		return true;
	}
	if (strcmp(name, STORE_NAME) == 0) {
		*target = spd_registry_store_subject; /* unknown without a store */
		return true;
	}
	if (strncmp(name, TARGET_PREFIX, strlen(TARGET_PREFIX)) == 0 &&
	    name[strlen(TARGET_PREFIX)] != '\0') {
		*target = name + strlen(TARGET_PREFIX);
		return true;
	}
	return false;
}

static Grpc__Health__V1__HealthCheckResponse__ServingStatus wire_status(spd_health h)
{
	switch (h) {
	case SPD_HEALTH_SERVING:
		return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	case SPD_HEALTH_NOT_SERVING:
		return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	default:
		return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
	}
}

static grpc_byte_buffer *pack_status(Grpc__Health__V1__HealthCheckResponse__ServingStatus st)
{
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	resp.status = st;
	return spd_codec_pack(&resp.base);
}

/* ---- Check ------------------------------------------------------------------- */

void spd_rpc_health_check(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload)
{
	Grpc__Health__V1__HealthCheckRequest *req =
		(Grpc__Health__V1__HealthCheckRequest *)spd_rpc_request(
			call, payload, &grpc__health__v1__health_check_request__descriptor);
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	spd_health h = SPD_HEALTH_UNKNOWN;
	const char *target;
	char msg[160];

	if (req == NULL)
		return;
	if (subject_of(req->service, &target))
		h = spd_registry_health(env->registry, target);
	if (h == SPD_HEALTH_UNKNOWN) {
		snprintf(msg, sizeof msg, "service: unknown service '%.100s'", req->service);
		spd_call_finish(call, GRPC_STATUS_NOT_FOUND, msg, NULL);
	} else {
		resp.status = wire_status(h);
		spd_call_finish(call, GRPC_STATUS_OK, NULL, &resp.base);
	}
	protobuf_c_message_free_unpacked(&req->base, NULL);
}

/* ---- Watch ------------------------------------------------------------------- */

/* Registry lock held: queue the new status (the registry sends only changes). */
static void on_health(void *ctx, spd_health h)
{
	hwatch *w = ctx;

	w->last = h;
	spd_stream_push(w->stream, pack_status(wire_status(h)));
}

static void unlink_watch(spd_rpc_health *svc, hwatch *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		svc->watches = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->listed = false;
}

/* The client went away: free the watch now, not at shutdown. */
static void on_cancel(void *ctx)
{
	hwatch *w = ctx;
	spd_rpc_health *svc = w->svc;
	bool drop;

	pthread_mutex_lock(&svc->mu);
	w->cancelled = true;
	drop = w->listed;
	if (drop) {
		spd_registry_health_unwatch(svc->reg, w->sub_id);
		unlink_watch(svc, w);
	}
	pthread_mutex_unlock(&svc->mu);
	if (drop)
		spd_stream_unref(w->stream);
}

void spd_rpc_health_watch(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload)
{
	Grpc__Health__V1__HealthCheckRequest *req =
		(Grpc__Health__V1__HealthCheckRequest *)spd_rpc_request(
			call, payload, &grpc__health__v1__health_check_request__descriptor);
	spd_rpc_health *svc = env->health;
	const char *target = NULL;
	bool known;
	hwatch *w;
	int rc = 0;

	if (req == NULL)
		return;
	w = calloc(1, sizeof *w);
	if (w == NULL) {
		spd_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		goto out;
	}
	w->svc = svc;
	w->stream = spd_stream_create(call, on_cancel, w, free);
	if (w->stream == NULL) {
		free(w);
		goto out;
	}
	known = subject_of(req->service, &target);
	/* Under mu from the subscription to the listing: a concurrent stop or
	 * cancel sees the watch either not at all or complete. */
	pthread_mutex_lock(&svc->mu);
	if (svc->stopped || w->cancelled) {
		pthread_mutex_unlock(&svc->mu);
		spd_stream_finish(w->stream, GRPC_STATUS_UNAVAILABLE, "spawnd is shutting down");
		spd_stream_unref(w->stream);
		goto out;
	}
	if (known)
		rc = spd_registry_health_watch(svc->reg, target, on_health, w, &w->sub_id);
	if (!known || rc == -ENOENT) {
		/* Unknown names stay unknown: no subscription, the stream stays open. */
		w->last = SPD_HEALTH_UNKNOWN;
		spd_stream_push(w->stream, pack_status(wire_status(SPD_HEALTH_UNKNOWN)));
	} else if (rc < 0) {
		pthread_mutex_unlock(&svc->mu);
		spd_stream_finish(w->stream, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		spd_stream_unref(w->stream);
		goto out;
	}
	w->listed = true;
	w->next = svc->watches;
	if (svc->watches != NULL)
		svc->watches->prev = w;
	svc->watches = w;
	pthread_mutex_unlock(&svc->mu);
out:
	protobuf_c_message_free_unpacked(&req->base, NULL);
}

/* ---- lifecycle ----------------------------------------------------------------- */

spd_rpc_health *spd_rpc_health_create(spd_registry *reg)
{
	spd_rpc_health *h = calloc(1, sizeof *h);

	if (h == NULL)
		return NULL;
	pthread_mutex_init(&h->mu, NULL);
	h->reg = reg;
	return h;
}

void spd_rpc_health_stop(spd_rpc_health *h)
{
	pthread_mutex_lock(&h->mu);
	h->stopped = true;
	while (h->watches != NULL) {
		hwatch *w = h->watches;
		/* After unwatch no callback runs, and w->last is settled. */
		spd_registry_health_unwatch(h->reg, w->sub_id);
		unlink_watch(h, w);
		if (w->last == SPD_HEALTH_SERVING)
			spd_stream_push(w->stream, pack_status(wire_status(SPD_HEALTH_NOT_SERVING)));
		spd_stream_finish(w->stream, GRPC_STATUS_UNAVAILABLE, "spawnd is shutting down");
		spd_stream_unref(w->stream);
	}
	pthread_mutex_unlock(&h->mu);
}

void spd_rpc_health_destroy(spd_rpc_health *h)
{
	if (h == NULL)
		return;
	pthread_mutex_destroy(&h->mu);
	free(h);
}
