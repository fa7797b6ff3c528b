/* The request metadata of the call a handler runs for (server.c sets it on
 * the CQ thread around each dispatch, as caller.h does the principal), for
 * handlers that read an entry: StartProcess's `traceparent`.
 */
#ifndef SPAWND_RPC_METADATA_H
#define SPAWND_RPC_METADATA_H

#include <grpc/grpc.h>
#include <stddef.h>

#include "service/common/traceparent.h"

/* MD (borrowed; NULL: none) is the metadata of the call dispatched on this
 * thread until the next call. */
void spd__rpc_metadata_set(const grpc_metadata_array *md);

/* The number of entries named KEY (lowercase, as gRPC keeps them) in the
 * current call's metadata; *VALUE and *LEN are the first one's bytes (not
 * NUL-terminated; valid while the handler runs), or NULL and 0. */
size_t spd_rpc_metadata_find(const char *key, const char **value, size_t *len);

/* The current call's W3C `traceparent` (SPEC §12) copied into BUF
 * (SPD_TRACEPARENT_MAX + 1 bytes), NUL-terminated: BUF, or NULL when the call
 * has none or an invalid one (common/traceparent.h), or two of them. An
 * invalid one is ignored, as W3C Trace Context says a receiver does (the
 * trace restarts there), rather than failing the call: tracing never makes
 * work fail. For StartProcess (and Run). */
const char *spd_rpc_traceparent(char *buf);

#endif
