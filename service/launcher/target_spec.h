/* A prepared target, serialized for a process that does not share the
 * launcher's memory: a spawn worker (one call) or a zygote (forkserver). The
 * receiver gets its own spd_target_config and spd_prepared_target, with the
 * function resolved there (builtin, or dlopen() of the library), so that the
 * child code (child.h) runs the same in the launcher, a zygote or a worker. */
#ifndef SPAWND_LAUNCHER_TARGET_SPEC_H
#define SPAWND_LAUNCHER_TARGET_SPEC_H

#include "service/launcher/targets.h"
#include "service/launcher/wire.h"

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

void spd_target_spec_release(spd_target_spec *spec);

#endif
