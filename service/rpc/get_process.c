/* GetProcess: the record with its result and output tails; an end only once
 * the store committed it (registry/journal.h). */
#include <errno.h>
#include <stdio.h>

#include "service/rpc/call.h"
#include "service/rpc/caller.h"
#include "service/rpc/codec.h"
#include "service/rpc/handlers.h"

static bool reply(void *ctx, const spd_watch_event *ev)
{
	spd_arena a = SPD_ARENA_INIT;
	Spawnd__V1__Process *m = spd_codec_process(&a, ev->p, true);

	if (m == NULL)
		spd_call_finish(ctx, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
	else
		spd_call_finish(ctx, GRPC_STATUS_OK, NULL, &m->base);
	spd_arena_release(&a);
	return false;
}

void spd_rpc_get_process(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload)
{
	Spawnd__V1__GetProcessRequest *req = (Spawnd__V1__GetProcessRequest *)spd_rpc_request(
		call, payload, &spawnd__v1__get_process_request__descriptor);
	char msg[128];
	int rc = 0;

	if (req == NULL)
		return;
	if (req->id == NULL || req->id[0] == '\0') {
		spd_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "id: required", NULL);
	} else if (spd_rpc_caller_may_touch(env->registry, req->id) == -EPERM) {
		spd_rpc_caller_deny(call, req->id);
	} else if ((rc = spd_registry_get_committed(env->registry, req->id, reply, call)) == -ENOENT) {
		snprintf(msg, sizeof msg, "id: no process '%.64s'", req->id);
		spd_call_finish(call, GRPC_STATUS_NOT_FOUND, msg, NULL);
	} else if (rc < 0) {
		spd_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
	}
	protobuf_c_message_free_unpacked(&req->base, NULL);
}
