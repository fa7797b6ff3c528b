/* Watch (SPEC §3, §11). One process: a SNAPSHOT (or, resuming with
 * after_sequence, the retained events after it, or a SNAPSHOT with gap=true),
 * then STATE_CHANGED events (and OUTPUT chunks with include_output), then OK
 * after the terminal event. Watch-all (empty id): a SNAPSHOT of each matching
 * live process, then every event of matching processes, until the client
 * cancels. The stream and its subscription: watch_stream.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/common/limits.h"
#include "service/rpc/call.h"
#include "service/rpc/caller.h"
#include "service/rpc/handlers.h"
#include "service/rpc/strings.h"
#include "service/rpc/watch_stream.h"

void spd_rpc_watch(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload)
{
	Spawnd__V1__WatchRequest *req = (Spawnd__V1__WatchRequest *)spd_rpc_request(
		call, payload, &spawnd__v1__watch_request__descriptor);
	const char **selector = NULL;
	spd_rpc_watch_stream *w;
	spd_watch_spec ws;
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
	w = spd_rpc_watch_stream_create(call, env->registry, req->id == NULL || req->id[0] == '\0');
	if (w == NULL)
		goto out;
	ws = spd_rpc_watch_stream_spec(w, req->include_output);
	ws.id = req->id;
	ws.selector = selector;
	ws.selector_count = (uint32_t)req->n_label_selector;
	ws.after_sequence = req->after_sequence;
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
	spd_rpc_watch_stream_started(w, rc);
out:
	free(selector);
	protobuf_c_message_free_unpacked(&req->base, NULL);
}
