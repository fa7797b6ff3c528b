/* Bearer tokens (SPEC §7; config `auth: {tokens_file, protect_health}`).
 *
 * The tokens file has one token a line: `TOKEN *` (every target) or `TOKEN
 * t1,t2` (those targets); `#` starts a comment; blank lines are ignored. A
 * file whose mode lets "others" read or write it is refused: mount a
 * Kubernetes Secret with defaultMode 0440 and fsGroup.
 *
 * Tokens are kept only as SHA-256 digests, and a presented token is compared
 * with every known one in constant time (the time does not depend on which,
 * if any, matched). A caller is named in logs and records by its token's
 * fingerprint: the first 8 hex digits of the token's SHA-256, never the token.
 *
 * An spd_auth is immutable once loaded and reference-counted, so that a
 * reload (SIGHUP) can swap in a new one while calls still hold principals of
 * the old. Thread-safety: any thread.
 */
#ifndef SPAWND_RPC_AUTH_H
#define SPAWND_RPC_AUTH_H

#include <stdbool.h>
#include <stddef.h>

typedef struct spd_auth spd_auth;

/* Who a token is, and what it may run. Owned by its spd_auth. */
typedef struct spd_principal {
	char fingerprint[9];        /* 8 hex digits of SHA-256(token), NUL */
	bool all_targets;           /* `*` */
	const char *const *targets; /* the listed targets, NULL-terminated */
} spd_principal;

/* Loads PATH. Returns 0 with *OUT (one reference), or -errno with ERR saying
 * what and where: "auth.tokens_file /etc/spawnd/tokens: readable by others
 * (mode 0644): make it 0440 or 0400", "...tokens:3: expected 'TOKEN *' or
 * 'TOKEN target,...'", "...:5: the token of line 2 again". */
int spd_auth_load(const char *path, spd_auth **out, char *err, size_t errlen);

/* The principal of an `authorization` header VALUE (LEN bytes, not
 * NUL-terminated): "Bearer TOKEN" with a known TOKEN. NULL for anything else
 * (missing scheme, unknown token). Constant time over the known tokens. */
const spd_principal *spd_auth_check(const spd_auth *a, const char *value, size_t len);

/* Whether P may use TARGET. */
bool spd_principal_allows(const spd_principal *p, const char *target);

/* OLD (NULL: no-op) was replaced by NEXT (NULL: auth turned off), by a
 * reload: what holds OLD (an open stream) follows it to the current file
 * with spd_auth_still_allows. Takes a reference on NEXT; once per OLD. */
void spd_auth_supersede(spd_auth *old, spd_auth *next);

/* Whether a reload has replaced A (spd_auth_supersede). */
bool spd_auth_replaced(const spd_auth *a);

/* Whether WHO (a principal of A) may use TARGET by the current tokens file:
 * A's, or the file that replaced it (spd_auth_supersede), where WHO's token
 * may have other targets or be gone (false). */
bool spd_auth_still_allows(const spd_auth *a, const spd_principal *who, const char *target);

/* How many tokens A knows. */
size_t spd_auth_count(const spd_auth *a);

spd_auth *spd_auth_ref(spd_auth *a);
/* Drops a reference; the last one frees A and its principals. NULL: no-op. */
void spd_auth_unref(spd_auth *a);

#endif
