/* A prepared target, serialized for a process that does not share the
 * launcher's memory: a spawn worker (one call) or a zygote (forkserver). The
 * receiver gets its own spd_target_config and spd_prepared_target, with the
 * function resolved there (builtin, or dlopen() of the library), so that the
 * child code (child.h) runs the same in the launcher, a zygote or a worker.
 * The bytes are service/wire/target.h's; this adds the prepared target on
 * both sides (what to send of it, and the resolution on receipt). */
#ifndef SPAWND_LAUNCHER_TARGET_SPEC_H
#define SPAWND_LAUNCHER_TARGET_SPEC_H

#include "service/launcher/targets.h"
#include "service/wire/messages.h"
#include "service/wire/wire.h"

/* Appends T to OUT. Returns OUT's error state (0 or -ENOMEM). */
int spd_target_spec_encode(const spd_prepared_target *t, spd_wbuf *out);

/* A decoded target: owns everything it points to. */
typedef struct spd_target_spec {
	spd_target_config cfg;
	spd_prepared_target prepared;  /* .cfg points at .cfg above */
} spd_target_spec;

/* Decodes from R (advancing it) and resolves the function (function targets).
 * Returns 0; -EBADMSG for a malformed spec; a resolution failure is not an
 * error: prepared.error says why (as for the launcher's own targets). */
int spd_target_spec_decode(spd_wreader *r, spd_target_spec *spec);

/* Like spd_target_spec_decode, for a whole body of LEN bytes at DATA that
 * holds the spec alone (a zygote's fd 4): trailing bytes are -EBADMSG. */
int spd_target_spec_decode_body(const void *data, size_t len, spd_target_spec *spec);

void spd_target_spec_release(spd_target_spec *spec);

/* A spawn worker's call spec (its fd 4): T's spec, then REQ as a START body
 * (messages.h). Appends to OUT; returns OUT's error state (0 or -ENOMEM). */
int spd_call_spec_encode(const spd_prepared_target *t, const spd_start_req *req, spd_wbuf *out);

/* Decodes a whole call spec into SPEC (as spd_target_spec_decode) and REQ
 * (owned: spd_start_req_release). Returns 0, or -EBADMSG / -ENOMEM with
 * nothing left to release. */
int spd_call_spec_decode(const void *data, size_t len, spd_target_spec *spec,
			 spd_start_req *req);

#endif
