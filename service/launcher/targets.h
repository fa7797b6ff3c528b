/* Targets as the launcher runs them: everything that can be resolved once, at
 * launcher start, is (function pointers from builtins or dlopen()ed libraries,
 * the child environment, user and group ids), so that a start does no lookups.
 * Owned by the launcher; single-threaded. */
#ifndef SPAWND_LAUNCHER_TARGETS_H
#define SPAWND_LAUNCHER_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "service/config/config.h"
#include "service/target/spawnd_target.h"

typedef struct spd_prepared_target {
	const spd_target_config *cfg;
	spawnd_fn fn;        /* function targets: NULL when unusable */
	void *dl;            /* dlopen() handle, or NULL */
	char *error;         /* why the target is unusable ("dlopen: ..."), or NULL */
	char **envp;         /* env + inherit_env, NULL-terminated */
	bool set_uid, set_gid;
	uid_t uid;
	gid_t gid;
	/* With user: that user's supplementary groups (getgrouplist, as
	 * initgroups would set), resolved before any fork; else none. */
	gid_t *groups;
	int ngroups;
} spd_prepared_target;

/* Prepares TC (borrowed: it must outlive P) into P. A target that cannot be
 * prepared gets `error` set. Returns 0 or -ENOMEM (P then holds nothing). */
int spd_target_prepare(const spd_target_config *tc, spd_prepared_target *p);
/* Frees what P holds (dlclose()s its library) and zeroes it. */
void spd_target_release(spd_prepared_target *p);

/* Prepares every target of CFG into a new array of cfg->target_count entries. A
 * target that cannot be prepared is kept, with `error` set. Returns 0 or -ENOMEM. */
int spd_targets_prepare(const spd_config *cfg, spd_prepared_target **out);

/* The prepared target named NAME, or NULL. */
const spd_prepared_target *spd_targets_find(const spd_prepared_target *t, size_t n,
					    const char *name);

void spd_targets_release(spd_prepared_target *t, size_t n);

#endif
