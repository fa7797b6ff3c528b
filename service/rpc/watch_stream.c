/* See watch_stream.h. Nothing here polls. */
#include "service/rpc/watch_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/metrics/metrics.h"
#include "service/rpc/codec.h"

static void watch_free(void *user)
{
	spd_rpc_watch_stream *w = user;

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
	spd_rpc_watch_stream *w = ctx;
	bool alive;

	if (ev->note == SPD_NOTE_ABORT) {
		/* spawnd stops and this process outlived it: no terminal event. */
		spd_stream_finish(w->stream, GRPC_STATUS_UNAVAILABLE, "spawnd is shutting down");
		return false;
	}
	if (w->all && !spd_rpc_held_allows(&w->caller, ev->p->target))
		return true;
	if (!w->all && spd_rpc_held_stale(&w->caller) &&
	    !spd_rpc_held_allows(&w->caller, ev->p->target)) {
		/* Its token was revoked, or lost this target, by a reload. */
		spd_stream_finish(w->stream, GRPC_STATUS_PERMISSION_DENIED,
				  "the caller's token may no longer use this process's target "
				  "(tokens file reloaded)");
		return false;
	}
	if (!w->all && w->id[0] == '\0')
		snprintf(w->id, sizeof w->id, "%s", ev->p->id);
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
	spd_rpc_watch_stream *w = ctx;

	if ((w->all || spd_rpc_held_stale(&w->caller)) &&
	    !spd_rpc_held_allows(&w->caller, ev->p->target))
		return; /* a single stream ends at its next state event (on_event) */
	if (ev->msg != NULL)
		spd_stream_offer(w->stream, grpc_byte_buffer_copy((grpc_byte_buffer *)ev->msg),
				 ev->len);
}

/* The subscription ended: its reference goes. */
static void on_release(void *ctx)
{
	spd_rpc_watch_stream *w = ctx;

	spd_stream_unref(w->stream);
}

static bool ignore(void *ctx, const spd_watch_event *ev)
{
	(void)ctx;
	(void)ev;
	return false;
}

/* The call is over (CQ thread, no lock held): end the subscription, if it
 * has not ended yet (its release then runs here). A Run stream the client
 * cancelled before the terminal event destroys its process if it asked to. */
static void on_cancel(void *ctx)
{
	spd_rpc_watch_stream *w = ctx;

	if (spd_registry_unwatch(w->registry, w->watch_id) && w->destroy_on_cancel &&
	    w->id[0] != '\0')
		spd_registry_destroy_process(w->registry, w->id, -1, false, ignore, NULL);
}

spd_rpc_watch_stream *spd_rpc_watch_stream_create(grpc_call *call, spd_registry *reg, bool all)
{
	spd_rpc_watch_stream *w = calloc(1, sizeof *w);

	if (w == NULL) {
		spd_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return NULL;
	}
	spd_metrics_watchers_add(1); /* watch_free takes it back */
	w->registry = reg;
	w->all = all;
	w->caller = spd_rpc_caller_hold();
	w->stream = spd_stream_create(call, on_cancel, w, watch_free);
	if (w->stream == NULL) {
		watch_free(w);
		return NULL;
	}
	return w;
}

spd_watch_spec spd_rpc_watch_stream_spec(spd_rpc_watch_stream *w, bool with_output)
{
	return (spd_watch_spec){
		.fn = on_event,
		.out_fn = with_output ? on_output : NULL,
		.codec = &codec,
		.release = on_release,
		.ctx = w,
	};
}

void spd_rpc_watch_stream_started(spd_rpc_watch_stream *w, int rc)
{
	if (w->watch_id != 0)
		return;
	if (rc == 0)
		spd_stream_finish(w->stream, GRPC_STATUS_OK, NULL);
	spd_stream_unref(w->stream);
}
