/* The launcher's state, shared by its files (launcher.c: the loop, children,
 * reaping; zygotes.c: forkserver zygotes). Internal: nothing outside
 * service/launcher includes this. Single-threaded. */
#ifndef SPAWND_LAUNCHER_LAUNCHER_IMPL_H
#define SPAWND_LAUNCHER_LAUNCHER_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "service/common/tail.h"
#include "service/config/config.h"
#include "service/launcher/cgroup.h"
#include "service/launcher/targets.h"
#include "service/wire/messages.h"
#include "service/wire/wire.h"

typedef struct child {
	struct child *next;
	uint64_t key;
	spd_start_req req;
	const spd_prepared_target *target;
	pid_t pid;               /* 0 when no child was forked (yet) */
	int pidfd;               /* pidfd of the leader (fork, spawn, exec), or -1 */
	int reaped;
	int cgroup;              /* its memory cgroup p-<key> exists (cgroup.h) */
	int zygote;              /* forkserver: index of its target's zygote; else -1 */
	bool awaiting_pid;       /* forkserver: SPAWN sent, STARTED not yet back */
	int64_t pending_grace;   /* destroy asked before the pid was known; -1 none */
	bool stop_fatal;         /* our stop signal would have killed it when sent */
	int fd_out, fd_err, fd_chan;  /* launcher-side read ends; -1 at EOF */
	spd_tail out, err;       /* the last max_output_bytes of each stream */
	uint8_t *head[2];        /* the first max_output_bytes / 2 of stdout, stderr */
	size_t head_len[2];
	uint8_t *chan;           /* partial channel records */
	size_t chan_len, chan_cap;
	uint8_t *result;
	size_t result_len, result_cap;
	int64_t kill_at;         /* CLOCK_MONOTONIC ns: SIGKILL the group then; 0 = none */
	int64_t timeout_at;      /* CLOCK_MONOTONIC ns: the timeout expires; 0 = none */
	spd_exit_report rep;     /* facts gathered so far */
} child;

/* One forkserver zygote per forkserver target (indexed like cfg->targets). */
typedef struct spd__zygote {
	pid_t pid;               /* 0 when down */
	int sock;                /* -1 when down */
	int64_t up_since;        /* CLOCK_MONOTONIC ns */
	int64_t restart_at;      /* CLOCK_MONOTONIC ns; 0 = no restart scheduled */
	int64_t backoff_ms;
	bool reported_down;      /* HEALTH said it is down: READY says it is back */
} spd__zygote;

typedef struct launcher {
	const spd_config *cfg;
	spd_prepared_target *targets;
	int sock;
	int sigfd;
	int devnull;
	child *children;
	pid_t *strays;           /* reparented processes SIGKILLed, not yet reaped */
	size_t nstrays, strays_cap;
	char *worker;            /* spawnd-worker, for spawn and forkserver */
	spd__zygote *zygotes;    /* cfg->target_count entries */
	spd_cgroups *cgroups;    /* what enforces memory_limit (cgroup.h) */
	/* Frames to the front wait here rather than block the loop: a launcher
	 * blocked on a full socket would stop reading the front, and the front may
	 * itself be blocked sending to it. Past SPD__OUTQ_HIGH bytes, children's
	 * pipes are not read, so children wait instead (pipes fill, writes block). */
	spd_wire_outq outq;
} launcher;

#define SPD__OUTQ_HIGH (8u * 1024u * 1024u)

/* --- launcher.c, for the other files --- */

void spd__close_fd(int *fd);  /* closes *FD if open and sets it to -1 */
/* Appends N bytes of P to a growable buffer. Returns 0 or -ENOMEM. */
int spd__append(uint8_t **buf, size_t *len, size_t *cap, const void *p, size_t n);

child *spd__child_by_key(launcher *l, uint64_t key);
void spd__send_started(launcher *l, child *c);
void spd__record_exit(child *c, int status, const struct rusage *ru);
void spd__set_launch_error(child *c, const char *stage, int err, const char *msg);
void spd__destroy_child(launcher *l, child *c, int64_t grace_ms);
/* SIGKILLs every direct child that is neither a live leader nor a zygote. */
void spd__kill_strays(launcher *l);
/* A pipe whose read end (ours) is non-blocking; both ends O_CLOEXEC. */
int spd__make_pipe(int fds[2]);
/* Whether TC's processes get a memory cgroup each (else RLIMIT_AS). */
bool spd__uses_cgroup(const launcher *l, const spd_target_config *tc);
/* Sends a frame to the front, or queues it (taking BODY's data) when the
 * socket is full or frames already wait; never blocks. BODY is left empty. */
void spd__send(launcher *l, uint32_t type, uint64_t key, spd_wbuf *body);
/* Tells the front that TARGET became usable (WHY NULL) or not. */
void spd__send_health(launcher *l, const char *target, const char *why);

/* --- child_io.c --- */

/* Reads what pipe *FD of C has (up to a budget): output is forwarded and kept,
 * channel records parsed. At EOF or error *FD is closed and set to -1. */
void spd__drain(launcher *l, child *c, int *fd);
/* Sends C's EXITED report: its facts, result and kept output. */
void spd__send_exited(launcher *l, child *c);

/* --- zygotes.c --- */

/* Starts the zygotes of targets with zygote_start: boot. */
void spd__zygotes_boot(launcher *l);
/* Hands C (a forkserver target's process) to its zygote, starting it if
 * needed. FDS: stdin, stdout, stderr, channel, and optionally the cgroup.procs
 * the child joins (child ends; the caller closes them). NFDS is 4 or 5.
 * Returns 0, or -errno with C marked launch-failed. */
int spd__zygote_spawn(launcher *l, child *c, const int *fds, size_t nfds);
/* Signals C's group through its zygote (which knows whether it is reaped). */
void spd__zygote_signal(launcher *l, child *c, int sig);
/* True if PID is a zygote; then it was reaped (status STATUS): its children
 * end LOST and a restart is scheduled. */
bool spd__zygote_reaped(launcher *l, pid_t pid, int status);
bool spd__zygote_is(const launcher *l, pid_t pid);
/* Frames from zygote I. */
void spd__zygote_readable(launcher *l, size_t i);
/* Restarts that are due; the earliest deadline (CLOCK_MONOTONIC ns, 0 none). */
void spd__zygotes_tick(launcher *l, int64_t now);
int64_t spd__zygotes_next_deadline(const launcher *l);

#endif
