/* The launcher: the single-threaded process that alone forks, execs, signals and
 * reaps target children (SPEC §1, §2, §11).
 *
 * spawnd forks it before grpc_init() and execs it as `spawnd-worker launcher`
 * with an empty environment: it carries none of the front's memory, threads or
 * environment, so neither do the children it forks (a fork-method target's
 * /proc/self/environ is empty). What it needs travels in a sealed memfd
 * (wire/boot.h). The front talks to it over a SOCK_SEQPACKET socketpair (wire/wire.h). Its loop polls one
 * signalfd (SIGCHLD, and SIGHUP as its parent-death signal), the socket, and
 * each child's stdout, stderr and result channel; deadlines (grace periods,
 * timeouts) are the poll timeout. Nothing on the path from a child's exit to
 * the EXITED frame waits on a timer.
 *
 * Frames it answers (wire/messages.h): START -> STARTED then EXITED (or only EXITED when
 * the launch failed); DESTROY -> the stop signal to the group, SIGKILL after the
 * grace period. It sends HELLO once, when its targets are prepared.
 *
 * It is a child subreaper. After a leader exits (seen with WNOWAIT, so its pid
 * still pins the group id), whatever is left in its group is SIGKILLed, then the
 * leader is reaped; any other process reparented to it is a stray and is
 * SIGKILLed and reaped. A process is reported over only once its leader is
 * reaped, its pipes reached EOF and no stray is left.
 *
 * When the front goes away (EOF on the socket, or SIGHUP from PR_SET_PDEATHSIG)
 * it SIGKILLs every group and stray, reaps them all and exits.
 */
#ifndef SPAWND_LAUNCHER_LAUNCHER_H
#define SPAWND_LAUNCHER_LAUNCHER_H

#include <sys/types.h>

#include "service/config/config.h"

/* Forks and execs the launcher for CFG: spawnd-worker (at $SPAWND_WORKER, else
 * next to this executable) with an empty environment, the socket on fd
 * SPD_LAUNCHER_SOCK_FD and the boot data (wire/boot.h: CFG with inherit_env
 * resolved from this environment, the worker's path, our pid,
 * $SPAWND_MEMORY_LIMIT_MECHANISM) in a sealed memfd on SPD_LAUNCHER_BOOT_FD;
 * every other descriptor is closed. Call it while the process has one thread.
 * On success returns 0 and sets *pid and *fd (the front's end of the socket,
 * O_CLOEXEC; the caller owns it and reaps *pid). Returns -ENOENT when there
 * is no spawnd-worker, else -errno. */
int spd_launcher_fork(const spd_config *cfg, pid_t *pid, int *fd);

#define SPD_LAUNCHER_SOCK_FD 3
#define SPD_LAUNCHER_BOOT_FD 4

/* The launcher itself: `spawnd-worker launcher`, started by spd_launcher_fork.
 * Returns only when its boot data is unusable (the exit status). */
int spd_launcher_exec_main(void);

#endif
