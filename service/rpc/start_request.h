/* A StartProcessRequest made into the registry's spd_start_params: shared by
 * StartProcess and Run (start_process.c, run.c). */
#ifndef SPAWND_RPC_START_REQUEST_H
#define SPAWND_RPC_START_REQUEST_H

#include <grpc/grpc.h>
#include <stddef.h>

#include "service/common/traceparent.h"
#include "service/registry/registry.h"
#include "spawnd/v1/spawnd.pb-c.h"

typedef struct spd_rpc_start {
	spd_start_params sp;  /* borrows REQ's strings, and LABELS */
	const char **labels;
	char caller[300];
	char traceparent[SPD_TRACEPARENT_MAX + 1];  /* sp.traceparent's (metadata.h) */
} spd_rpc_start;

/* Fills S from REQ (the call's caller named as spd_rpc_caller_name does; its
 * W3C traceparent from the call's metadata, spd_rpc_traceparent):
 * the fields checked (validate.h), the caller's permission for the target.
 * Returns GRPC_STATUS_OK, or the status to end the call with and MSG (LEN
 * bytes) naming the field; S is then released. REQ must outlive S. */
grpc_status_code spd_rpc_start_prepare(grpc_call *call, const Spawnd__V1__StartProcessRequest *req,
				       spd_rpc_start *s, char *msg, size_t len);
void spd_rpc_start_release(spd_rpc_start *s);

/* The status (and MSG) for what spd_registry_start or spd_registry_run
 * returned (RC < 0) for REQ. */
grpc_status_code spd_rpc_start_status(int rc, const Spawnd__V1__StartProcessRequest *req, char *msg,
				      size_t len);

#endif
