/* Watch (SPEC §3, §11). One process: a SNAPSHOT (or, resuming with
 * after_sequence, the retained events after it, or a SNAPSHOT with gap=true),
 * then STATE_CHANGED events (and OUTPUT chunks with include_output), then OK
 * after the terminal event. Watch-all (empty id): a SNAPSHOT of each matching
 * live process, then every event of matching processes, until the client
 * cancels. Events are encoded in the registry callback, in order, and queued
 * on the stream; nothing here polls.
 *
 * Lifetime: the watch holds one stream reference for its registry subscription,
 * dropped when the subscription ends (terminal event) or is removed on
 * cancellation; the stream frees the watch with its last reference. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/common/limits.h"
#include "service/rpc/call.h"
#include "service/rpc/codec.h"
#include "service/rpc/handlers.h"
#include "service/rpc/strings.h"

typedef struct watch {
	spd_stream *stream;
	spd_registry *registry;
	uint64_t watch_id;  /* set on the CQ thread before any cancel can run */
	bool all;           /* watch-all: never ends by itself */
} watch;

static bool on_event(void *ctx, const spd_process *p, spd_note note, bool terminal)
{
	watch *w = ctx;
	Spawnd__V1__ProcessEvent ev = SPAWND__V1__PROCESS_EVENT__INIT;
	spd_arena a = SPD_ARENA_INIT;
	bool alive;

	bool snapshot = note == SPD_NOTE_SNAPSHOT || note == SPD_NOTE_SNAPSHOT_GAP;

	if (note == SPD_NOTE_ABORT) {
		/* spawnd stops and this process outlived it: no terminal event. */
		spd_stream_finish(w->stream, GRPC_STATUS_UNAVAILABLE, "spawnd is shutting down");
		spd_stream_unref(w->stream); /* the subscription ends here */
		return false;
	}
	ev.sequence = p->seq;
	ev.type = snapshot ? SPAWND__V1__PROCESS_EVENT__TYPE__TYPE_SNAPSHOT
			   : SPAWND__V1__PROCESS_EVENT__TYPE__TYPE_STATE_CHANGED;
	ev.gap = note == SPD_NOTE_SNAPSHOT_GAP;
	ev.process_id = (char *)p->id;
	/* dropped_bytes: stamped by the stream, which decides what is dropped. */
	ev.process = spd_codec_process(&a, p, snapshot || terminal);
	if (ev.process == NULL) {
		spd_stream_finish(w->stream, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		alive = false;
	} else {
		/* Snapshots and replays are the subscription's first burst. */
		grpc_byte_buffer *bb = spd_codec_pack(&ev.base);
		alive = note == SPD_NOTE_STATE ? spd_stream_push(w->stream, bb)
					       : spd_stream_push_initial(w->stream, bb);
	}
	spd_arena_release(&a);
	if (w->all)
		return true; /* only a cancel ends it */
	if (terminal)
		spd_stream_finish(w->stream, GRPC_STATUS_OK, NULL);
	/* Snapshots and replays come from inside spd_registry_watch, which
	 * subscribes afterwards (unless terminal) whatever we answer: the
	 * reference is still the handler's. */
	if (note != SPD_NOTE_STATE)
		return !terminal;
	if (terminal || !alive) {
		spd_stream_unref(w->stream); /* the subscription ends here */
		return false;
	}
	return true;
}

/* OUTPUT: offered to the stream, dropped and counted when the watcher is slow;
 * never allowed to hold up the launcher or other watchers. */
static void on_output(void *ctx, const spd_process *p, int stream, uint64_t offset,
		      const void *chunk, size_t len)
{
	watch *w = ctx;
	Spawnd__V1__ProcessEvent ev = SPAWND__V1__PROCESS_EVENT__INIT;
	Spawnd__V1__OutputChunk out = SPAWND__V1__OUTPUT_CHUNK__INIT;

	ev.sequence = p->seq;
	ev.type = SPAWND__V1__PROCESS_EVENT__TYPE__TYPE_OUTPUT;
	ev.process_id = (char *)p->id;
	out.stream = stream == 1 ? SPAWND__V1__OUTPUT_CHUNK__STREAM__STREAM_STDOUT
				 : SPAWND__V1__OUTPUT_CHUNK__STREAM__STREAM_STDERR;
	out.offset = offset;
	out.data.data = (uint8_t *)chunk;
	out.data.len = len;
	ev.output = &out;
	spd_stream_offer(w->stream, spd_codec_pack(&ev.base), len);
}

static void on_cancel(void *ctx)
{
	watch *w = ctx;

	if (spd_registry_unwatch(w->registry, w->watch_id))
		spd_stream_unref(w->stream);
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
	w->registry = env->registry;
	w->all = req->id == NULL || req->id[0] == '\0';
	w->stream = spd_stream_create(call, on_cancel, w, free);
	if (w->stream == NULL) {
		free(w);
		goto out;
	}
	ws = (spd_watch_spec){
		.id = req->id,
		.selector = selector,
		.selector_count = (uint32_t)req->n_label_selector,
		.after_sequence = req->after_sequence,
		.fn = on_event,
		.out_fn = req->include_output ? on_output : NULL,
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
	 * the subscription owns that reference now. */
	if (w->watch_id == 0) {
		if (rc == 0)
			spd_stream_finish(w->stream, GRPC_STATUS_OK, NULL);
		spd_stream_unref(w->stream);
	}
out:
	free(selector);
	protobuf_c_message_free_unpacked(&req->base, NULL);
}
