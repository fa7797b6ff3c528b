/* The forkserver zygote's loop (spawnd-worker zygote). */
#ifndef SPAWND_WORKER_ZYGOTE_H
#define SPAWND_WORKER_ZYGOTE_H

#include "service/launcher/target_spec.h"

/* Serves SPD_ZYGOTE_* frames on fd 3 for SPEC's target until the launcher goes
 * away. Returns only on setup failure (an exit status). */
int spd_zygote_run(const spd_target_spec *spec);

#endif
