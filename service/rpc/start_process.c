/* StartProcess: validate, hand to the registry, answer once the launcher started
 * the child (RUNNING) or the launch failed (FAILED/LAUNCH). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/rpc/call.h"
#include "service/rpc/codec.h"
#include "service/rpc/handlers.h"
#include "service/rpc/start_request.h"

static bool reply(void *ctx, const spd_watch_event *ev)
{
	grpc_call *call = ctx;
	Spawnd__V1__StartProcessResponse resp = SPAWND__V1__START_PROCESS_RESPONSE__INIT;
	spd_arena a = SPD_ARENA_INIT;

	resp.process = spd_codec_process(&a, ev->p, ev->terminal);
	if (resp.process == NULL)
		spd_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
	else
		spd_call_finish(call, GRPC_STATUS_OK, NULL, &resp.base);
	spd_arena_release(&a);
	return false;
}

void spd_rpc_start_process(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload)
{
	Spawnd__V1__StartProcessRequest *req = (Spawnd__V1__StartProcessRequest *)spd_rpc_request(
		call, payload, &spawnd__v1__start_process_request__descriptor);
	spd_rpc_start s;
	grpc_status_code st;
	char msg[512];
	int rc;

	if (req == NULL)
		return;
	st = spd_rpc_start_prepare(call, req, &s, msg, sizeof msg);
	if (st != GRPC_STATUS_OK) {
		spd_call_finish(call, st, msg, NULL);
		goto out;
	}
	rc = spd_registry_start(env->registry, &s.sp, reply, call);
	if (rc < 0) {
		st = spd_rpc_start_status(rc, req, msg, sizeof msg);
		spd_call_finish(call, st, msg, NULL);
	}
	spd_rpc_start_release(&s);
out:
	protobuf_c_message_free_unpacked(&req->base, NULL);
}
