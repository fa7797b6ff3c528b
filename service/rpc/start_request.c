/* See start_request.h. */
#include "service/rpc/start_request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/rpc/caller.h"
#include "service/rpc/metadata.h"
#include "service/rpc/validate.h"

grpc_status_code spd_rpc_start_prepare(grpc_call *call, const Spawnd__V1__StartProcessRequest *req,
				       spd_rpc_start *s, char *msg, size_t len)
{
	const char *bad;

	memset(s, 0, sizeof *s);
	bad = spd_validate_start_request(req, msg, len, &s->sp.timeout_ms, &s->sp.grace_ms);
	if (bad != NULL) {
		if (bad != msg)
			snprintf(msg, len, "%s", bad);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (!spd_rpc_caller_allows(req->target)) {
		snprintf(msg, len, "target: token %s may not start '%.256s'",
			 spd_rpc_caller()->fingerprint, req->target);
		return GRPC_STATUS_PERMISSION_DENIED;
	}
	s->labels = calloc(2 * req->n_labels + 1, sizeof *s->labels);
	if (s->labels == NULL) {
		snprintf(msg, len, "out of memory");
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	for (size_t i = 0; i < req->n_labels; i++) {
		s->labels[2 * i] = req->labels[i]->key;
		s->labels[2 * i + 1] = req->labels[i]->value != NULL ? req->labels[i]->value : "";
	}
	s->sp.target = req->target;
	s->sp.argv = (const char *const *)req->args;
	s->sp.argc = (uint32_t)req->n_args;
	s->sp.input = req->input.data;
	s->sp.input_len = req->input.len;
	s->sp.labels = s->labels;
	s->sp.label_count = (uint32_t)req->n_labels;
	s->sp.request_id = req->request_id;
	s->sp.caller = spd_rpc_caller_name(call, s->caller, sizeof s->caller);
	s->sp.traceparent = spd_rpc_traceparent(s->traceparent);
	return GRPC_STATUS_OK;
}

void spd_rpc_start_release(spd_rpc_start *s)
{
	free(s->labels);
	s->labels = NULL;
}

grpc_status_code spd_rpc_start_status(int rc, const Spawnd__V1__StartProcessRequest *req, char *msg,
				      size_t len)
{
	switch (rc) {
	case -ENOENT:
		snprintf(msg, len, "target: no target named '%.256s'", req->target);
		return GRPC_STATUS_NOT_FOUND;
	case -EINVAL:
		snprintf(msg, len, "args: target '%.256s' takes no arguments (allow_args is false)",
			 req->target);
		return GRPC_STATUS_INVALID_ARGUMENT;
	case -EEXIST:
		snprintf(msg, len, "request_id: '%.256s' was used for another request",
			 req->request_id);
		return GRPC_STATUS_ALREADY_EXISTS;
	case -EAGAIN:
		snprintf(msg, len, "max_pending processes are already waiting for a slot");
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	case -ESHUTDOWN:
		snprintf(msg, len, "spawnd is shutting down");
		return GRPC_STATUS_UNAVAILABLE;
	case -EBUSY:
		snprintf(msg, len,
			 "launcher not responding: too many frames wait for it; try again later");
		return GRPC_STATUS_UNAVAILABLE;
	default:
		snprintf(msg, len, "out of memory");
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
}
