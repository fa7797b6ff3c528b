/* Creating one child process: the code between fork() and exec() or the call of
 * the target function. Used only by the launcher (single-threaded), which is why
 * a function child may run arbitrary code after fork.
 *
 * The child: its own process group (pgid = pid), every signal disposition reset
 * and the mask cleared, user/group dropped, then PR_SET_PDEATHSIG(SIGKILL)
 * (setuid clears it, so it comes after) and PR_SET_NO_NEW_PRIVS, limits, stdio
 * on the given pipes, every other descriptor closed (function children keep the
 * result/error channel as fd 3), the target's environment and cwd.
 */
#ifndef SPAWND_LAUNCHER_CHILD_H
#define SPAWND_LAUNCHER_CHILD_H

#include <stdbool.h>
#include <sys/types.h>

#include "service/launcher/targets.h"
#include "service/wire/messages.h"

/* Setup stages reported on failure, before the child runs anything. */
enum spd_child_stage {
	SPD_STAGE_SETPGID = 1,
	SPD_STAGE_SETGROUPS,
	SPD_STAGE_SETGID,
	SPD_STAGE_SETUID,
	SPD_STAGE_PDEATHSIG,
	SPD_STAGE_NO_NEW_PRIVS,
	SPD_STAGE_RLIMIT,
	SPD_STAGE_DUP,
	SPD_STAGE_CHDIR,
	SPD_STAGE_CGROUP,
	SPD_STAGE_EXEC,
	SPD_STAGE_REQUEST,  /* a pre-started child could not read its call */
};

/* "exec", "setuid", ... for a stage. */
const char *spd_child_stage_name(int stage);

typedef struct spd_child_spec {
	const spd_prepared_target *target;
	const spd_start_req *req;
	/* Exec targets: the full argv. Function targets started with `spawn`: the
	 * worker's argv (fd_chan becomes its fd 3 and fd_spec its fd 4). NULL: run
	 * target->fn in the forked child itself (`fork`, and zygote children). */
	char **exec_argv;
	int fd_stdin;       /* child-side ends, all O_CLOEXEC in the parent */
	int fd_stdout;
	int fd_stderr;
	int fd_chan;        /* function targets: the channel's write end; else -1 */
	int fd_spec;        /* spawn worker: a memfd with the call's spec; else -1 */
	int fd_errpipe;     /* exec: write end of the exec-error pipe; else -1 */
	/* join_cgroup: the child writes itself to fd_cgroup, the cgroup.procs of
	 * its memory cgroup (cgroup.h), right after setpgid and before anything of
	 * the target runs; the memory limit is then that cgroup's, not RLIMIT_AS.
	 * false (the zero value): no cgroup, memory_limit is set as RLIMIT_AS. */
	bool join_cgroup;
	int fd_cgroup;
	/* A forkserver zygote whose children each join a memory cgroup: the
	 * zygote itself gets no RLIMIT_AS (its children would inherit it). */
	bool no_memory_rlimit;
	/* A forkserver zygote: no RLIMIT_CPU for itself, which would count the
	 * CPU of every fork it serves and kill it mid-life; each child sets its
	 * own after fork (a fork starts with zero CPU time). */
	bool no_cpu_rlimit;
	/* A pre-started child (SPEC §12): REQ is NULL; the child does all of its
	 * setup, then blocks reading fd_request (the read end of its request
	 * pipe, its fd SPD_PRESTART_REQ_FD while it waits) for its one call in
	 * the framing of spd_prestart_call_encode(), and runs it. EOF before a
	 * call lets it go: it _exit(0)s. Function targets (exec_argv NULL) only. */
	bool prestart;
	int fd_request;
} spd_child_spec;

/* Where a waiting pre-started child reads its call. */
#define SPD_PRESTART_REQ_FD 4

/* Appends REQ to OUT as a pre-started child reads it: a u64 length (host
 * order) and a START body (messages.h), as spd_wbuf_bytes() writes them.
 * Returns OUT's error state. */
int spd_prestart_call_encode(const spd_start_req *req, spd_wbuf *out);

/* The descriptors a spawn worker finds its inputs on. */
#define SPD_WORKER_SPEC_FD 4

/* Forks the child. Returns its pid (also its pgid) or -errno. Must be called
 * from a single-threaded process (the launcher, a zygote). The child never
 * returns: an exec child that fails writes {int stage, int errno} on fd_errpipe
 * and _exit(127)s; a function child that fails setup writes a
 * SPD_CHAN_SETUP_FAILED record on its channel and _exit(127)s. */
pid_t spd_child_fork(const spd_child_spec *spec);

/* Whether SIG, sent to live process PID now, would end it: a signal that is
 * fatal by default and that PID neither ignores nor catches, nor blocks
 * unless BLOCKED_IS_FATAL (from /proc/PID/status). A process that then exits
 * normally was not ended by that signal: it had already been on its way out
 * (SPEC §12 "Destroy and canceled"). False when unknown.
 *
 * BLOCKED_IS_FATAL is for function children: between fork and the call they
 * run our setup with the launcher's signals blocked, and then reset every
 * disposition and unblock, so a pending default-fatal signal kills them
 * there. An exec'd program that blocks a signal may take it with sigwait or
 * signalfd and exit 0 by choice: there a blocked signal proves nothing.
 * Not for a forked child: it reads /proc. */
bool spd_signal_would_kill(pid_t pid, int sig, bool blocked_is_fatal);

/* Adjusts FLAGS (SPD_EXIT_SENT_STOP/KILL) after a leader's exit with wait
 * status STATUS: a normal exit means SIGKILL never reached it alive, nor a
 * stop signal that would have killed it (STOP_FATAL). Returns the flags. */
uint32_t spd_sent_flags_after_exit(uint32_t flags, int status, bool stop_fatal);

#endif
