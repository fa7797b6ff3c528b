/* Who is calling: the principal of the bearer token of the call a handler is
 * dispatched for (auth.h), and the permission checks the handlers make.
 *
 * server.c checks the token before a handler runs (UNAUTHENTICATED when it
 * is missing or unknown) and sets the caller for the handler's synchronous
 * part, on the CQ thread. Without `auth` in the config there is no caller
 * and everything is allowed. A handler whose work outlives its dispatch
 * (a watch-all) keeps the caller with spd_rpc_caller_hold.
 */
#ifndef SPAWND_RPC_CALLER_H
#define SPAWND_RPC_CALLER_H

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stddef.h>

#include "service/registry/registry.h"
#include "service/rpc/auth.h"

/* The caller of the call being dispatched on this thread; NULL without auth. */
const spd_principal *spd_rpc_caller(void);

/* Whether the current caller may use TARGET (true without auth). */
bool spd_rpc_caller_allows(const char *target);

/* Whether the current caller may act on process ID: 0, -EPERM (it belongs to
 * a target the caller may not use), or -ENOENT. */
int spd_rpc_caller_may_touch(spd_registry *r, const char *id);

/* Who CALL is, for the record and the log: "token:" and the fingerprint of
 * its token; else, under mTLS, "x509:" and its certificate's subject; else
 * "". Written into BUF (LEN bytes, cut), which is returned. */
const char *spd_rpc_caller_name(grpc_call *call, char *buf, size_t len);

/* Ends CALL with PERMISSION_DENIED: the current caller may not use the
 * target of process ID (cut on a character boundary in the message). */
void spd_rpc_caller_deny(grpc_call *call, const char *id);

/* The caller, kept beyond the dispatch (it holds a reference on its tokens). */
typedef struct spd_rpc_held_caller {
	spd_auth *auth;
	const spd_principal *who;  /* NULL: no auth, everything allowed */
} spd_rpc_held_caller;

spd_rpc_held_caller spd_rpc_caller_hold(void);
/* By the tokens file now in force: a reload may have changed or removed the
 * held caller's token since it was held. */
bool spd_rpc_held_allows(const spd_rpc_held_caller *c, const char *target);
/* Whether the tokens file C was held under has been replaced since: until
 * then, what was allowed when it was held still is (a cheap test for each
 * event of a stream whose target was checked when it opened). */
bool spd_rpc_held_stale(const spd_rpc_held_caller *c);
void spd_rpc_caller_release(spd_rpc_held_caller *c);

/* For server.c: sets (WHO, AUTH borrowed) or clears (NULL, NULL) the caller
 * of this thread around a handler's dispatch. */
void spd__rpc_caller_set(spd_auth *auth, const spd_principal *who);

#endif
