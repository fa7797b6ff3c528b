/* The gRPC server: listening, the method table, the completion-queue thread.
 * Only this module and the handlers include gRPC headers. */
#ifndef SPAWND_RPC_SERVER_H
#define SPAWND_RPC_SERVER_H

#include <stdint.h>

#include "service/config/config.h"
#include "service/registry/registry.h"

typedef struct spd_server spd_server;

/* Binds every cfg->listen address, registers the methods, starts serving on
 * one CQ thread, and logs {"msg":"serving","address":...} per bound address.
 * grpc_init() must have been called. Returns 0 or -errno with ERR filled
 * ("listen 127.0.0.1:50051: cannot bind (address in use?)"). */
int spd_server_start(const spd_config *cfg, spd_registry *reg, spd_server **out, char *err,
		     size_t errlen);

/* Stops accepting calls, lets running calls finish for up to GRACE_MS, cancels
 * the rest, joins the CQ thread and frees the server. */
void spd_server_stop(spd_server *s, int64_t grace_ms);

/* SIGHUP's part for the server, with the reloaded config CFG (read here only):
 * reads its tokens file (auth.h; calls after this use the new tokens; none:
 * auth is off) and auth.protect_health, and re-reads the TLS certificate, key
 * and client CA (tls.h; new connections use them, open ones keep theirs). The
 * TLS paths and the listeners are those of the config the server started
 * with: the front refuses a reload that changes them (it needs a restart).
 * On failure what was loaded before stays and ERR says why. 0 or -errno. */
int spd_server_reload(spd_server *s, const spd_config *cfg, char *err, size_t errlen);

#endif
