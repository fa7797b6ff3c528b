/* Per-process memory cgroups (SPEC §2 "OOM is never a guess that lies", §5
 * `memory_limit`). Used only by the launcher, which is single-threaded.
 *
 * At launcher start spd_cgroups_create() picks the mechanism that enforces a
 * target's memory_limit:
 *   - cgroup v2: a writable cgroup2 mount whose controllers offer `memory`.
 *     The parent is `<mount><own cgroup>/spawnd-<launcher pid>/` (under the
 *     launcher's own cgroup, as v2 delegation requires), with `+memory` written
 *     to the own cgroup's and the parent's cgroup.subtree_control. v2 forbids
 *     enabling a controller for the children of a non-root cgroup that holds
 *     processes, so this works where spawnd's cgroup already delegates memory
 *     (memory in its subtree_control), or is the root of its cgroup namespace.
 *   - else cgroup v1: the memory hierarchy's mount (usually
 *     /sys/fs/cgroup/memory) is writable: the parent is
 *     `<mount>/spawnd-<launcher pid>/`. In a container the mount's root is the
 *     container's own cgroup, so its limit still applies above ours.
 *   - else RLIMIT_AS, set by the child itself (child.c).
 * Every process with a memory limit then gets its own cgroup `p-<key>` below
 * the parent, joined by the child before it runs anything of the target. After
 * the process and everything in it is dead, its `oom_kill` counter (v2
 * memory.events, v1 memory.oom_control) tells whether the kernel OOM-killed
 * something in it: a confirmation, never a guess.
 */
#ifndef SPAWND_LAUNCHER_CGROUP_H
#define SPAWND_LAUNCHER_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum spd_memory_mechanism {
	SPD_MEMORY_RLIMIT_AS = 0,
	SPD_MEMORY_CGROUP_V1,
	SPD_MEMORY_CGROUP_V2,
} spd_memory_mechanism;

/* "rlimit_as", "cgroup_v1", "cgroup_v2" (the names ListTargets reports). */
const char *spd_memory_mechanism_name(spd_memory_mechanism m);

typedef struct spd_cgroups spd_cgroups;

/* Detects the mechanism and, for a cgroup one, creates the parent cgroup.
 * FORCE (for tests and debugging; the launcher passes the environment variable
 * SPAWND_MEMORY_LIMIT_MECHANISM): NULL, "" or "auto" detect v2, then v1, then
 * RLIMIT_AS; "rlimit_as" uses no cgroup; "cgroup_v2" / "cgroup_v1" try only
 * that version (RLIMIT_AS when it is not usable). Any other value is -EINVAL.
 * An unusable cgroup is not an error: the result is RLIMIT_AS, and
 * spd_cgroups_reason() says why. On success *OUT is a new object that the
 * caller owns and frees with spd_cgroups_destroy(). Returns 0, -EINVAL or
 * -ENOMEM. */
int spd_cgroups_create(const char *force, spd_cgroups **out);

spd_memory_mechanism spd_cgroups_mechanism(const spd_cgroups *cg);

/* The parent cgroup's directory, or NULL under RLIMIT_AS. Borrowed. */
const char *spd_cgroups_parent(const spd_cgroups *cg);

/* Why no cgroup is used (the last obstacle met while detecting), or "" when
 * one is. Borrowed. */
const char *spd_cgroups_reason(const spd_cgroups *cg);

/* Creates the cgroup `p-<KEY>` below the parent with a memory limit of
 * LIMIT_BYTES (v2: memory.max, and memory.swap.max = 0 and memory.oom.group = 1
 * where present; v1: memory.limit_in_bytes, and memory.memsw.limit_in_bytes
 * where present, else memory.swappiness = 0), then opens its cgroup.procs.
 * On success *PROCS_FD is an O_CLOEXEC write-only fd that the caller owns: a
 * process joins by writing "0" (itself) to it, which is async-signal-safe
 * (spd_cgroups_join). Returns 0, or -errno (-ENOTSUP under RLIMIT_AS) with
 * nothing left behind. */
int spd_cgroups_add(spd_cgroups *cg, uint64_t key, uint64_t limit_bytes, int *procs_fd);

/* Makes the calling process join the cgroup of PROCS_FD. Async-signal-safe:
 * meant for a child between fork() and exec(). Returns 0 or -errno. */
int spd_cgroups_join(int procs_fd);

/* Reads the OOM evidence of the cgroup `p-<KEY>` and removes it. Call it once
 * every process in it is dead and reaped. On return *OOM_KILLED is true when
 * the kernel OOM-killed a process in it. Returns 0 when the evidence was read,
 * -errno when it could not be (then *OOM_KILLED is false and means nothing).
 * The cgroup is removed either way; one that cannot be removed yet is removed
 * by spd_cgroups_destroy(). */
int spd_cgroups_remove(spd_cgroups *cg, uint64_t key, bool *oom_killed);

/* Removes every cgroup left below the parent, then the parent, and frees CG.
 * Call it after every child is dead. NULL is a no-op. */
void spd_cgroups_destroy(spd_cgroups *cg);

/* Internals, exposed for tests. Finds, from the text of /proc/self/mountinfo
 * and /proc/self/cgroup, the directory of this process's cgroup in the
 * hierarchy of VERSION (2: the cgroup2 mount; 1: the v1 mount carrying the
 * memory controller, whose mount point is returned: see above). Writes it to
 * OUT (size N). Returns 0, -ENOENT (no such mount or cgroup) or -ENAMETOOLONG. */
int spd__cgroup_find_dir(const char *mountinfo, const char *proc_cgroup, int version, char *out,
			 size_t n);

#endif
