/* Removing a cgroup directory of spawnd's: its per-process children (p-KEY),
 * then itself. Only empty cgroups can be removed (rmdir; a cgroup with
 * processes in it stays, EBUSY), so this never touches a live process. Used by
 * the launcher (stale instances) and the front (a killed launcher's). */
#ifndef SPAWND_COMMON_CGROUPDIR_H
#define SPAWND_COMMON_CGROUPDIR_H

/* Returns 0 when DIR is gone, else -errno of its rmdir. */
int spd_cgroup_dir_remove(const char *dir);

#endif
