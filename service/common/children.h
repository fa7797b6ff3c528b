/* This process's own children, as a parent sees them: no gRPC, no threads of
 * its own; used by the front (link.c, main.c), the launcher and the zygote.
 *
 * Every pid handed out here is a direct child of the caller that is not yet
 * reaped, so it cannot have been reused: it may be signalled or waited for
 * without a race, until the caller reaps it. */
#ifndef SPAWND_COMMON_CHILDREN_H
#define SPAWND_COMMON_CHILDREN_H

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

/* Calls FN(PID, CTX) for each direct child of this process, as listed in
 * /proc/self/task/TID/children for every thread TID (an orphan reparented to a
 * subreaper is the child of whichever thread adopted it). A child forked or
 * reparented during the scan may be missed: callers scan again on SIGCHLD.
 * Returns how many times FN returned true. */
int spd_children_each(bool (*fn)(pid_t pid, void *ctx), void *ctx);

/* Whether PID, a child of ours, has exited and is not reaped yet (a zombie).
 * Then it ended on its own: a signal sent now would not end it (waitid with
 * WNOWAIT: it stays a zombie). */
bool spd_child_exited(pid_t pid);

/* Reaps one exited child, if any. It is first seen with WNOWAIT: while it is a
 * zombie its pid pins its process group's id, so when IS_LEADER(PID, CTX) says
 * it leads a group of ours (IS_LEADER may be NULL: none does), what is left of
 * that group is SIGKILLed before the leader is reaped, and the group signal
 * cannot reach a stranger. Fills *PID, *STATUS (wait status) and *RU.
 * Returns 1 when one was reaped, 0 when none has exited (or there are no
 * children), -errno on error. */
int spd_children_reap_one(bool (*is_leader)(pid_t pid, void *ctx), void *ctx, pid_t *pid,
			  int *status, struct rusage *ru);

#endif
