/* StartProcess: validate, hand to the registry, answer once the launcher started
 * the child (RUNNING) or the launch failed (FAILED/LAUNCH). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/rpc/call.h"
#include "service/rpc/caller.h"
#include "service/rpc/codec.h"
#include "service/common/traceparent.h"
#include "service/rpc/handlers.h"
#include "service/rpc/metadata.h"
#include "service/rpc/validate.h"

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
	const char **labels = NULL;
	spd_start_params sp;
	const char *bad;
	char buf[512], caller[300], trace[SPD_TRACEPARENT_MAX + 1];
	int rc;

	if (req == NULL)
		return;
	memset(&sp, 0, sizeof sp);
	bad = spd_validate_start_request(req, buf, sizeof buf, &sp.timeout_ms, &sp.grace_ms);
	if (bad != NULL) {
		spd_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, bad, NULL);
		goto out;
	}
	labels = calloc(2 * req->n_labels + 1, sizeof *labels);
	if (labels == NULL) {
		spd_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		goto out;
	}
	for (size_t i = 0; i < req->n_labels; i++) {
		labels[2 * i] = req->labels[i]->key;
		labels[2 * i + 1] = req->labels[i]->value != NULL ? req->labels[i]->value : "";
	}
	sp.target = req->target;
	sp.argv = (const char *const *)req->args;
	sp.argc = (uint32_t)req->n_args;
	sp.input = req->input.data;
	sp.input_len = req->input.len;
	sp.labels = labels;
	sp.label_count = (uint32_t)req->n_labels;
	sp.request_id = req->request_id;
	sp.caller = spd_rpc_caller_name(call, caller, sizeof caller);
	sp.traceparent = spd_rpc_traceparent(trace);
	if (!spd_rpc_caller_allows(req->target)) {
		snprintf(buf, sizeof buf, "target: token %s may not start '%.256s'",
			 spd_rpc_caller()->fingerprint, req->target);
		spd_call_finish(call, GRPC_STATUS_PERMISSION_DENIED, buf, NULL);
		goto out;
	}
	rc = spd_registry_start(env->registry, &sp, reply, call);
	if (rc == -ENOENT) {
		snprintf(buf, sizeof buf, "target: no target named '%.256s'", req->target);
		spd_call_finish(call, GRPC_STATUS_NOT_FOUND, buf, NULL);
	} else if (rc == -EINVAL) {
		snprintf(buf, sizeof buf, "args: target '%.256s' takes no arguments (allow_args is false)",
			 req->target);
		spd_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, buf, NULL);
	} else if (rc == -EEXIST) {
		snprintf(buf, sizeof buf, "request_id: '%.256s' was used for another request",
			 req->request_id);
		spd_call_finish(call, GRPC_STATUS_ALREADY_EXISTS, buf, NULL);
	} else if (rc == -EAGAIN) {
		spd_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
				"max_pending processes are already waiting for a slot", NULL);
	} else if (rc == -ESHUTDOWN) {
		spd_call_finish(call, GRPC_STATUS_UNAVAILABLE, "spawnd is shutting down", NULL);
	} else if (rc == -EBUSY) {
		spd_call_finish(call, GRPC_STATUS_UNAVAILABLE,
				"launcher not responding: too many frames wait for it; try again later",
				NULL);
	} else if (rc < 0) {
		spd_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
	}
out:
	free(labels);
	protobuf_c_message_free_unpacked(&req->base, NULL);
}
