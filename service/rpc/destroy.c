/* Destroy: SIGTERM the group, grace, SIGKILL (the launcher does it); answer at
 * once, or with `wait` once the process is terminal. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "service/rpc/call.h"
#include "service/rpc/caller.h"
#include "service/rpc/codec.h"
#include "service/rpc/handlers.h"

static bool reply(void *ctx, const spd_watch_event *ev)
{
	Spawnd__V1__DestroyResponse resp = SPAWND__V1__DESTROY_RESPONSE__INIT;
	spd_arena a = SPD_ARENA_INIT;

	if (ev->note == SPD_NOTE_STATE && !ev->terminal)
		return true; /* waiting for the end */
	resp.process = spd_codec_process(&a, ev->p, ev->terminal);
	if (resp.process == NULL)
		spd_call_finish(ctx, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
	else
		spd_call_finish(ctx, GRPC_STATUS_OK, NULL, &resp.base);
	spd_arena_release(&a);
	return false;
}

void spd_rpc_destroy(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload)
{
	Spawnd__V1__DestroyRequest *req = (Spawnd__V1__DestroyRequest *)spd_rpc_request(
		call, payload, &spawnd__v1__destroy_request__descriptor);
	int64_t grace_ms = -1;
	char msg[128];
	int rc;

	if (req == NULL)
		return;
	if (req->id == NULL || req->id[0] == '\0') {
		spd_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "id: required", NULL);
	} else if (req->grace_period != NULL &&
		   spd_codec_duration_to_ms(req->grace_period, &grace_ms) < 0) {
		spd_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
				"grace_period: negative or malformed duration", NULL);
	} else if (spd_rpc_caller_may_touch(env->registry, req->id) == -EPERM) {
		spd_rpc_caller_deny(call, req->id);
	} else {
		rc = spd_registry_destroy_process(env->registry, req->id, grace_ms, req->wait, reply, call);
		if (rc == -ENOENT) {
			snprintf(msg, sizeof msg, "id: no process '%.64s'", req->id);
			spd_call_finish(call, GRPC_STATUS_NOT_FOUND, msg, NULL);
		} else if (rc < 0) {
			spd_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		}
	}
	protobuf_c_message_free_unpacked(&req->base, NULL);
}
