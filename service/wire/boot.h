/* What the front hands the launcher it execs (`spawnd-worker launcher`): the
 * launcher shares none of the front's memory or environment (it is exec'd
 * with an empty one), so everything it needs travels in a sealed memfd.
 *
 * The config is the subset the launcher reads (log settings, the targets),
 * with each target's inherit_env already resolved in the front into env
 * entries: the decoded targets have an empty inherit_env.
 *
 * Each target carries an id: the front's name for that version of it (a
 * reload that changes a target gives the new version a new id, while
 * processes of the old one still run). START frames and HEALTH/RELOADED
 * name targets by id. The same body, with only the targets to add, is a
 * RELOAD frame (the launcher then reads only the log settings and the
 * targets). */
#ifndef SPAWND_WIRE_BOOT_H
#define SPAWND_WIRE_BOOT_H

#include <stddef.h>
#include <sys/types.h>

#include "service/config/config.h"
#include "service/wire/wire.h"

typedef struct spd_launcher_boot {
	pid_t front;                 /* the front's pid: the launcher's parent */
	char *worker;                /* spawnd-worker's path, for zygotes and spawn */
	char *memory_mechanism;      /* SPAWND_MEMORY_LIMIT_MECHANISM, or NULL */
	spd_config *cfg;             /* owned; free with spd_launcher_boot_release */
	uint32_t *ids;               /* cfg->target_count entries: each target's id */
} spd_launcher_boot;

/* Appends the boot data to OUT, resolving each target's inherit_env against
 * ENVP (the front's environment). IDS has cfg->target_count entries; NULL
 * numbers the targets 1, 2, ... in order (as the registry does at start).
 * Returns OUT's error state (0 or -ENOMEM). */
int spd_launcher_boot_encode(const spd_config *cfg, const uint32_t *ids, pid_t front,
			     const char *worker, const char *memory_mechanism, char *const *envp,
			     spd_wbuf *out);

/* Decodes LEN bytes of DATA into B. Returns 0, -EBADMSG or -ENOMEM (then B
 * holds nothing). */
int spd_launcher_boot_decode(const void *data, size_t len, spd_launcher_boot *b);

void spd_launcher_boot_release(spd_launcher_boot *b);

#endif
