/* The fingerprint of a StartProcess request, for idempotency (SPEC §3: a retry
 * with the same request_id and the same request returns the original process;
 * another request with that request_id is ALREADY_EXISTS).
 *
 * It is the SHA-256 (libcrypto) of the request's canonical form, so that no
 * caller can make two different requests look the same (a 64-bit FNV, used
 * before, can be collided at will). The canonical form is stable across
 * releases and restarts, since stored records keep their fingerprint (the
 * store, SPEC §12): a domain tag, then every field in a fixed order, each
 * length-prefixed (8 bytes, big-endian) or a fixed-width big-endian integer:
 *
 *   "spawnd.v1.StartProcessRequest/1"
 *   target, caller, argc, each arg, input, label_count,
 *   each label sorted by key (key, value), timeout_ms, grace_ms
 *
 * Labels are a map on the wire (no order): sorted by key, they hash the same
 * whichever order a client sent them in.
 */
#ifndef SPAWND_REGISTRY_FINGERPRINT_H
#define SPAWND_REGISTRY_FINGERPRINT_H

#include <stdint.h>

#include "service/registry/registry.h"

#define SPD_FINGERPRINT_LEN 32

/* Writes the fingerprint of SP into OUT. Returns 0, or -ENOMEM (nothing
 * useful in OUT). Any thread. */
int spd_request_fingerprint(const spd_start_params *sp, uint8_t out[SPD_FINGERPRINT_LEN]);

#endif
