/* gRPC core's own log lines, as spawnd's: one JSON (or text) record each, with
 * "source":"grpc" and gRPC's file and line, so that a log collector sees one
 * format. It also watches them for the one event gRPC reports no other way: a
 * listener that stopped accepting ("Failed accept4", gRPC core 1.51 gives up
 * on a listener after one accept error such as EMFILE).
 */
#ifndef SPAWND_RPC_GRPC_LOG_H
#define SPAWND_RPC_GRPC_LOG_H

/* Routes gRPC's logging through spd_log (call once, before grpc_init). From
 * then on ON_ACCEPT_FAILED(CTX) runs whenever gRPC logs an accept failure —
 * on a gRPC thread that may hold gRPC locks: it must only set a flag or
 * signal a condition variable. ON_ACCEPT_FAILED may be NULL. */
void spd_grpc_log_install(void (*on_accept_failed)(void *ctx), void *ctx);

/* Sets the hook of spd_grpc_log_install (NULL to clear). Any thread. */
void spd_grpc_log_on_accept_failed(void (*on_accept_failed)(void *ctx), void *ctx);

#endif
