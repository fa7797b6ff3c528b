/* Watch (one process): a SNAPSHOT, then STATE_CHANGED events (and OUTPUT chunks
 * with include_output), then OK after the terminal event (SPEC §11). Events are encoded in the registry callback, in
 * order, and queued on the stream; nothing here polls.
 *
 * Lifetime: the watch holds one stream reference for its registry subscription,
 * dropped when the subscription ends (terminal event) or is removed on
 * cancellation; the stream frees the watch with its last reference. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/rpc/call.h"
#include "service/rpc/codec.h"
#include "service/rpc/handlers.h"

typedef struct watch {
	spd_stream *stream;
	spd_registry *registry;
	uint64_t watch_id;  /* set on the CQ thread before any cancel can run */
	uint64_t dropped;   /* output bytes dropped for this slow watcher (registry lock) */
} watch;

static bool on_event(void *ctx, const spd_process *p, spd_note note, bool terminal)
{
	watch *w = ctx;
	Spawnd__V1__ProcessEvent ev = SPAWND__V1__PROCESS_EVENT__INIT;
	spd_arena a = SPD_ARENA_INIT;
	bool alive;

	ev.sequence = p->seq;
	ev.type = note == SPD_NOTE_SNAPSHOT ? SPAWND__V1__PROCESS_EVENT__TYPE__TYPE_SNAPSHOT
					    : SPAWND__V1__PROCESS_EVENT__TYPE__TYPE_STATE_CHANGED;
	ev.process_id = (char *)p->id;
	ev.dropped_bytes = w->dropped;
	ev.process = spd_codec_process(&a, p, note == SPD_NOTE_SNAPSHOT || terminal);
	if (ev.process == NULL) {
		spd_stream_finish(w->stream, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		alive = false;
	} else {
		alive = spd_stream_push(w->stream, spd_codec_pack(&ev.base));
	}
	spd_arena_release(&a);
	if (terminal)
		spd_stream_finish(w->stream, GRPC_STATUS_OK, NULL);
	/* The snapshot comes from spd_registry_watch, which subscribes afterwards
	 * (unless terminal) whatever we answer: its reference is the handler's. */
	if (note == SPD_NOTE_SNAPSHOT)
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
	ev.dropped_bytes = w->dropped;
	out.stream = stream == 1 ? SPAWND__V1__OUTPUT_CHUNK__STREAM__STREAM_STDOUT
				 : SPAWND__V1__OUTPUT_CHUNK__STREAM__STREAM_STDERR;
	out.offset = offset;
	out.data.data = (uint8_t *)chunk;
	out.data.len = len;
	ev.output = &out;
	if (spd_stream_offer(w->stream, spd_codec_pack(&ev.base), len) == 0)
		w->dropped += len;
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
	watch *w;
	char msg[128];
	int rc;

	if (req == NULL)
		return;
	if (req->id == NULL || req->id[0] == '\0') {
		spd_call_finish(call, GRPC_STATUS_UNIMPLEMENTED,
				"id: watching every process (empty id) is not implemented yet", NULL);
		goto out;
	}
	if (req->after_sequence != 0) {
		spd_call_finish(call, GRPC_STATUS_UNIMPLEMENTED,
				"after_sequence: resuming a watch is not implemented yet", NULL);
		goto out;
	}
	w = calloc(1, sizeof *w);
	if (w == NULL) {
		spd_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		goto out;
	}
	w->registry = env->registry;
	w->stream = spd_stream_create(call, on_cancel, w, free);
	if (w->stream == NULL) {
		free(w);
		goto out;
	}
	rc = spd_registry_watch(env->registry, req->id, on_event,
				req->include_output ? on_output : NULL, w, &w->watch_id);
	if (rc == -ENOENT) {
		snprintf(msg, sizeof msg, "id: no process '%.64s'", req->id);
		spd_stream_finish(w->stream, GRPC_STATUS_NOT_FOUND, msg);
	} else if (rc < 0) {
		spd_stream_finish(w->stream, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
	/* Without a subscription the handler's reference is the last but the
	 * close batch's; with one, the subscription owns it now. */
	if (w->watch_id == 0)
		spd_stream_unref(w->stream);
out:
	protobuf_c_message_free_unpacked(&req->base, NULL);
}
