/* The gRPC server metrics of go-grpc-prometheus (grpc_server_started_total,
 * grpc_server_handled_total, grpc_server_handling_seconds; SPEC §12
 * "Metrics") for the calls of registered methods: begun when a call is
 * dispatched, ended when its status is known, wherever that is (call.c's
 * unary finish and stream close, reflection.c's close).
 *
 * Calls of unregistered methods are not counted: their names come from the
 * network, and would make the label set unbounded.
 *
 * Cost: with metrics off (no `metrics:` in the config) nothing is kept; with
 * them on, a call is one small allocation in a table under one lock.
 * Thread: any.
 */
#ifndef SPAWND_RPC_CALL_STATS_H
#define SPAWND_RPC_CALL_STATS_H

#include <grpc/grpc.h>

/* Method PATH of TYPE (as below) exists: its series start at 0. */
void spd__call_stats_declare(const char *path, const char *type);

/* CALL of method PATH ("/spawnd.v1.ProcessService/StartProcess"; borrowed,
 * it must outlive the call: a literal) and TYPE ("unary", "server_stream",
 * "bidi_stream") starts now. */
void spd__call_stats_begin(grpc_call *call, const char *path, const char *type);

/* CALL ended with CODE: counted once, however often this is called, and
 * nothing when it was not begun. Call before the call's last unref. */
void spd__call_stats_end(grpc_call *call, grpc_status_code code);

/* "OK", "NOT_FOUND", ...: the canonical names of the codes. */
const char *spd__status_code_name(grpc_status_code code);

#endif
