/* Run (SPEC §12): StartProcess and a Watch of the process in one call. The
 * stream carries the process's events from the first after after_sequence
 * (PENDING = 1) to the terminal one, then OK; it never sends a leading
 * SNAPSHOT, except one with gap = true when events to replay were evicted.
 * Start errors are the stream's status, with no event. A retry with the same
 * request_id attaches to the process it started (and replays from
 * after_sequence). A client that cancels the stream leaves the process
 * running, unless destroy_on_cancel: then it is destroyed with its grace
 * period. The stream and its subscription: watch_stream.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "service/rpc/call.h"
#include "service/rpc/handlers.h"
#include "service/rpc/start_request.h"
#include "service/rpc/watch_stream.h"

void spd_rpc_run(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload)
{
	Spawnd__V1__RunRequest *req = (Spawnd__V1__RunRequest *)spd_rpc_request(
		call, payload, &spawnd__v1__run_request__descriptor);
	spd_rpc_watch_stream *w;
	spd_watch_spec ws;
	spd_rpc_start s;
	grpc_status_code st;
	char msg[512];
	int rc;

	if (req == NULL)
		return;
	if (req->start == NULL) {
		spd_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "start: required", NULL);
		goto out;
	}
	st = spd_rpc_start_prepare(call, req->start, &s, msg, sizeof msg);
	if (st != GRPC_STATUS_OK) {
		spd_call_finish(call, st, msg, NULL);
		goto out;
	}
	w = spd_rpc_watch_stream_create(call, env->registry, false);
	if (w == NULL) {
		spd_rpc_start_release(&s);
		goto out;
	}
	w->destroy_on_cancel = req->destroy_on_cancel;
	ws = spd_rpc_watch_stream_spec(w, req->include_output);
	ws.after_sequence = req->after_sequence;
	rc = spd_registry_run(env->registry, &s.sp, &ws, &w->watch_id, w->id);
	if (rc == -ERANGE) {
		if (req->start->request_id == NULL || req->start->request_id[0] == '\0')
			snprintf(msg, sizeof msg,
				 "after_sequence: %" PRIu64 " is past the last event of a new "
				 "process (1, PENDING); it is for a retry with a request_id",
				 req->after_sequence);
		else
			snprintf(msg, sizeof msg,
				 "after_sequence: %" PRIu64 " is past the last event of the process "
				 "of request_id '%.256s'",
				 req->after_sequence, req->start->request_id);
		spd_stream_finish(w->stream, GRPC_STATUS_INVALID_ARGUMENT, msg);
	} else if (rc < 0) {
		st = spd_rpc_start_status(rc, req->start, msg, sizeof msg);
		spd_stream_finish(w->stream, st, msg);
	}
	spd_rpc_watch_stream_started(w, rc);
	spd_rpc_start_release(&s);
out:
	protobuf_c_message_free_unpacked(&req->base, NULL);
}
