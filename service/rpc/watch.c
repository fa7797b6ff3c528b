/* Watch (SPEC §3, §11). One process: a SNAPSHOT (or, resuming with
 * after_sequence, the retained events after it, or a SNAPSHOT with gap=true),
 * then STATE_CHANGED events (and OUTPUT chunks with include_output), then OK
 * after the terminal event. Watch-all (empty id): a SNAPSHOT of each matching
 * live process, then every event of matching processes, until the client
 * cancels. Each event is encoded once, by the registry through this file's
 * codec, for every Watch stream of it (1,000 watchers of one process: one
 * encoding); each stream queues a copy (its slices are shared, not copied).
 * Nothing here polls.
 *
 * Lifetime: the watch's registry subscription holds the handler's stream
 * reference; the subscription's release callback (run exactly once, however
 * it ends: terminal event, a push refused, cancellation, shutdown's abort)
 * drops it; the stream frees the watch with its last reference. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/common/limits.h"
#include "service/metrics/metrics.h"
#include "service/rpc/call.h"
#include "service/rpc/caller.h"
#include "service/rpc/codec.h"
#include "service/rpc/handlers.h"
#include "service/rpc/strings.h"

typedef struct watch {
	spd_stream *stream;
	spd_registry *registry;
	uint64_t watch_id;  /* set on the CQ thread before any cancel can run */
	bool all;           /* watch-all: never ends by itself */
	spd_rpc_held_caller caller; /* watch-all: sees only the targets its token may use */
} watch;

static void watch_free(void *user)
{
	watch *w = user;

	spd_metrics_watchers_add(-1);
	spd_rpc_caller_release(&w->caller);
	free(w);
}

/* ---- the codec: a packed ProcessEvent, shared by every stream of it ---------- */

static void *encode_event(const spd_watch_event *ev)
{
	Spawnd__V1__ProcessEvent m = SPAWND__V1__PROCESS_EVENT__INIT;
	bool snapshot = ev->note == SPD_NOTE_SNAPSHOT || ev->note == SPD_NOTE_SNAPSHOT_GAP;
	spd_arena a = SPD_ARENA_INIT;
	grpc_byte_buffer *bb = NULL;

	m.sequence = ev->p->seq;
	m.type = snapshot ? SPAWND__V1__PROCESS_EVENT__TYPE__TYPE_SNAPSHOT
			  : SPAWND__V1__PROCESS_EVENT__TYPE__TYPE_STATE_CHANGED;
	m.gap = ev->note == SPD_NOTE_SNAPSHOT_GAP;
	m.process_id = (char *)ev->p->id;
	/* dropped_bytes: stamped by each stream, which decides what is dropped. */
	m.process = spd_codec_process(&a, ev->p, snapshot || ev->terminal);
	if (m.process != NULL)
		bb = spd_codec_pack(&m.base);
	spd_arena_release(&a);
	return bb;
}

static void *encode_output(const spd_output_event *ev)
{
	Spawnd__V1__ProcessEvent m = SPAWND__V1__PROCESS_EVENT__INIT;
	Spawnd__V1__OutputChunk out = SPAWND__V1__OUTPUT_CHUNK__INIT;

	m.sequence = ev->p->seq;
	m.type = SPAWND__V1__PROCESS_EVENT__TYPE__TYPE_OUTPUT;
	m.process_id = (char *)ev->p->id;
	out.stream = ev->stream == 1 ? SPAWND__V1__OUTPUT_CHUNK__STREAM__STREAM_STDOUT
				     : SPAWND__V1__OUTPUT_CHUNK__STREAM__STREAM_STDERR;
	out.offset = ev->offset;
	out.data.data = (uint8_t *)ev->chunk;
	out.data.len = ev->len;
	m.output = &out;
	return spd_codec_pack(&m.base);
}

static void free_msg(void *msg)
{
	grpc_byte_buffer_destroy(msg);
}

static const spd_watch_codec codec = {
	.encode = encode_event,
	.encode_output = encode_output,
	.free = free_msg,
};

/* ---- the subscription's callbacks (registry lock held) ------------------------- */

static bool on_event(void *ctx, const spd_watch_event *ev)
{
	watch *w = ctx;
	bool alive;

	if (ev->note == SPD_NOTE_ABORT) {
		/* spawnd stops and this process outlived it: no terminal event. */
		spd_stream_finish(w->stream, GRPC_STATUS_UNAVAILABLE, "spawnd is shutting down");
		return false;
	}
	if (w->all && !spd_rpc_held_allows(&w->caller, ev->p->target))
		return true;
	if (ev->msg == NULL) {
		spd_stream_finish(w->stream, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		alive = false;
	} else {
		/* Snapshots and replays are the subscription's first burst. */
		grpc_byte_buffer *bb = grpc_byte_buffer_copy((grpc_byte_buffer *)ev->msg);
		alive = ev->note == SPD_NOTE_STATE ? spd_stream_push(w->stream, bb)
						   : spd_stream_push_initial(w->stream, bb);
	}
	/* Watch-all never ends by itself: only when its stream is over (the
	 * client cancelled, it was cut off as too slow, the call died) does the
	 * subscription go, so that no dead stream is fed or kept. */
	if (w->all)
		return alive;
	if (ev->terminal)
		spd_stream_finish(w->stream, GRPC_STATUS_OK, NULL);
	return alive && !ev->terminal;
}

/* OUTPUT: offered to the stream, dropped and counted when the watcher is slow;
 * never allowed to hold up the launcher or other watchers. */
static void on_output(void *ctx, const spd_output_event *ev)
{
	watch *w = ctx;

	if (w->all && !spd_rpc_held_allows(&w->caller, ev->p->target))
		return;
	if (ev->msg != NULL)
		spd_stream_offer(w->stream, grpc_byte_buffer_copy((grpc_byte_buffer *)ev->msg),
				 ev->len);
}

/* The subscription ended: its reference goes. */
static void on_release(void *ctx)
{
	watch *w = ctx;

	spd_stream_unref(w->stream);
}

/* The call is over (CQ thread, no lock held): end the subscription, if it
 * has not ended yet (its release then runs here). */
static void on_cancel(void *ctx)
{
	watch *w = ctx;

	spd_registry_unwatch(w->registry, w->watch_id);
}

void spd_rpc_watch(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload)
{
	Spawnd__V1__WatchRequest *req = (Spawnd__V1__WatchRequest *)spd_rpc_request(
		call, payload, &spawnd__v1__watch_request__descriptor);
	const char **selector = NULL;
	spd_watch_spec ws;
	watch *w;
	char msg[192];
	int rc;

	if (req == NULL)
		return;
	if ((req->id == NULL || req->id[0] == '\0') && req->after_sequence != 0) {
		spd_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
				"after_sequence: resumes one process; not with an empty id (watch-all)", NULL);
		goto out;
	}
	if (req->id != NULL && req->id[0] != '\0' &&
	    spd_rpc_caller_may_touch(env->registry, req->id) == -EPERM) {
		spd_rpc_caller_deny(call, req->id);
		goto out;
	}
	if (req->n_label_selector > SPD_LABELS_MAX) {
		spd_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
				"label_selector: more than " SPD_LIMIT_STR(SPD_LABELS_MAX) " labels", NULL);
		goto out;
	}
	selector = calloc(2 * req->n_label_selector + 1, sizeof *selector);
	if (selector == NULL) {
		spd_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		goto out;
	}
	for (size_t i = 0; i < req->n_label_selector; i++) {
		selector[2 * i] = req->label_selector[i]->key;
		selector[2 * i + 1] = req->label_selector[i]->value ? req->label_selector[i]->value : "";
	}
	w = calloc(1, sizeof *w);
	if (w == NULL) {
		spd_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		goto out;
	}
	spd_metrics_watchers_add(1); /* watch_free takes it back */
	w->registry = env->registry;
	w->all = req->id == NULL || req->id[0] == '\0';
	w->caller = spd_rpc_caller_hold();
	w->stream = spd_stream_create(call, on_cancel, w, watch_free);
	if (w->stream == NULL) {
		watch_free(w);
		goto out;
	}
	ws = (spd_watch_spec){
		.id = req->id,
		.selector = selector,
		.selector_count = (uint32_t)req->n_label_selector,
		.after_sequence = req->after_sequence,
		.fn = on_event,
		.out_fn = req->include_output ? on_output : NULL,
		.codec = &codec,
		.release = on_release,
		.ctx = w,
	};
	rc = spd_registry_watch(env->registry, &ws, &w->watch_id);
	if (rc == -ENOENT) {
		snprintf(msg, sizeof msg, "id: no process '%.*s'", spd_strings_cut(req->id, 64),
			 req->id);
		spd_stream_finish(w->stream, GRPC_STATUS_NOT_FOUND, msg);
	} else if (rc == -ERANGE) {
		snprintf(msg, sizeof msg,
			 "after_sequence: %" PRIu64 " is past the last event of process '%.*s'",
			 req->after_sequence, spd_strings_cut(req->id, 64), req->id);
		spd_stream_finish(w->stream, GRPC_STATUS_INVALID_ARGUMENT, msg);
	} else if (rc < 0) {
		spd_stream_finish(w->stream, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	/* Without a subscription everything was delivered (or the id is
	 * unknown): end the stream, and drop the handler's reference. With one,
	 * the subscription owns that reference now (on_release drops it). */
	if (w->watch_id == 0) {
		if (rc == 0)
			spd_stream_finish(w->stream, GRPC_STATUS_OK, NULL);
		spd_stream_unref(w->stream);
	}
out:
	free(selector);
	protobuf_c_message_free_unpacked(&req->base, NULL);
}
