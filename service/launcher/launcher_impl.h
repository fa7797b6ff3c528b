/* The launcher's state, shared by its files. Internal: nothing outside
 * service/launcher includes this. Single-threaded.
 *
 * The files, top down; each calls only the ones below it (and the outbox):
 *   launcher.c   the loop: frames from the front, SIGCHLD (reaping, strays),
 *                zygotes' news; turns each into an event of the child table.
 *   lifecycle.c  the child table: what each event does in each state.
 *   launch.c     the steps that start a child (pipes, stdin, cgroup, fork or
 *                the zygote).
 *   child_io.c   a child's pipes: output, channel records, its report.
 *   prestart.c   pre-started children: each target's pool of idle ones, and
 *                handing a START to one of them (launch.c asks).
 *   zygotes.c    the forkserver zygote processes; knows no child struct.
 * The outbox (spd__send*, in launcher.c) is what every file may call: it only
 * queues a frame to the front, and never calls back. */
#ifndef SPAWND_LAUNCHER_LAUNCHER_IMPL_H
#define SPAWND_LAUNCHER_LAUNCHER_IMPL_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include "service/common/tail.h"
#include "service/config/config.h"
#include "service/launcher/cgroup.h"
#include "service/launcher/targets.h"
#include "service/wire/messages.h"
#include "service/wire/wire.h"

/* Where a child is in its life (lifecycle.c has the table). What reached the
 * process is a separate matter: rep.flags SENT_* say which signals arrived
 * while it was alive; the state says what the launcher has decided. A leader
 * that exited but is not reaped yet (a zombie) is not a state: the launcher
 * learns of an exit by reaping it in the same SIGCHLD pass, and a signal
 * action checks for a zombie (children.h) before it signals. */
typedef enum spd__child_state {
	SPD__CHILD_NEW,      /* START decoded; nothing forked */
	SPD__CHILD_SPAWNING, /* forkserver: SPAWN sent, its zygote has not said the pid */
	SPD__CHILD_RUNNING,  /* a leader with a pid, not reaped (an exec that failed too) */
	SPD__CHILD_STOPPING, /* destroyed: stop signal decided, SIGKILL at kill_at */
	SPD__CHILD_KILLED,   /* SIGKILL decided; waiting for the leader's exit */
	SPD__CHILD_DRAINING, /* leader reaped (or lost); pipes or strays remain */
	SPD__CHILD_DONE,     /* nothing left: reported and freed at the end of the pass */
	SPD__CHILD_STATE_COUNT
} spd__child_state;

typedef enum spd__child_event {
	SPD__CEV_START,       /* START decoded: launch it */
	SPD__CEV_STARTED,     /* its zygote said the pid (ev.pid > 0) or failed */
	SPD__CEV_DESTROY,     /* DESTROY frame (ev.grace_ms; <= 0: SIGKILL now) */
	SPD__CEV_TIMEOUT,     /* timeout_at passed */
	SPD__CEV_GRACE_OVER,  /* kill_at passed */
	SPD__CEV_EXITED,      /* its leader was reaped (by us, or its zygote says so) */
	SPD__CEV_ZYGOTE_LOST, /* its zygote died */
	SPD__CEV_PIPE_EOF,    /* one of its pipes closed */
	SPD__CEV_STRAYS_GONE, /* no reparented process is left unreaped */
	SPD__CEV_FRONT_GONE,  /* the front is gone: nothing may survive it */
	SPD__CEV_COUNT
} spd__child_event;

/* An event's facts. Zero (SPD__CHILD_EV_INIT) for the events without any. */
typedef struct spd__child_ev {
	int64_t grace_ms;          /* DESTROY */
	int32_t pid;               /* STARTED: the pid, or -errno */
	int status;                /* EXITED: wait status */
	const struct rusage *ru;   /* EXITED */
	bool from_zygote;          /* EXITED: reported by its zygote, which says */
	uint32_t sent;             /*   which of SPD_EXIT_SENT_* reached it alive */
	const char *why;           /* ZYGOTE_LOST */
} spd__child_ev;

#define SPD__CHILD_EV_INIT {0, 0, 0, NULL, false, 0, NULL}

typedef struct spd__child {
	struct spd__child *next;
	spd__child_state state;
	uint64_t key;
	/* Its zygote's name for it (SPAWN, SIGNAL, EXITED) and its memory
	 * cgroup's (p-<cgroup_key>): its key, or for a child that was pre-started
	 * the key it was pre-started under (SPD__IDLE_KEY_BIT). */
	uint64_t zkey, cgroup_key;
	spd_start_req req;
	const spd_prepared_target *target;
	size_t slot;             /* its target's slot in spd__launcher.slots */
	pid_t pid;               /* 0 when no child was forked (yet) */
	int pidfd;               /* pidfd of the leader (fork, spawn, exec), or -1 */
	bool cgroup;             /* its memory cgroup p-<key> exists (cgroup.h) */
	int zygote;              /* forkserver: the slot of its target's zygote; else -1 */
	int64_t pending_grace;   /* SPAWNING: the shortest grace asked; -1 none */
	bool stop_fatal;         /* our stop signal would have killed it when sent */
	/* Reaped in the current SIGCHLD pass; its EXITED event waits for the
	 * pass's one stray scan (launcher.c reap()). */
	bool reaped_now;
	int reaped_status;
	struct rusage reaped_ru;
	int fd_out, fd_err, fd_chan;  /* launcher-side read ends; -1 at EOF */
	/* A pre-started child's call not yet all in its request pipe: the rest
	 * (req_out[req_off..req_len]) goes as the pipe drains (POLLOUT). */
	int fd_req;
	uint8_t *req_out;
	size_t req_len, req_off;
	spd_tail out, err;       /* the last max_output_bytes of each stream */
	uint8_t *head[2];        /* the first max_output_bytes / 2 of stdout, stderr */
	size_t head_len[2];
	uint8_t *chan;           /* partial channel records */
	size_t chan_len, chan_cap;
	uint8_t *result;
	size_t result_len, result_cap;
	int64_t kill_at;         /* STOPPING: CLOCK_MONOTONIC ns of the SIGKILL; else 0 */
	int64_t timeout_at;      /* CLOCK_MONOTONIC ns: the timeout expires; 0 = none */
	spd_exit_report rep;     /* facts gathered so far */
} spd__child;

/* One forkserver zygote per forkserver target (in its slot). */
typedef struct spd__zygote {
	pid_t pid;               /* 0 when down */
	int sock;                /* -1 when down */
	int64_t up_since;        /* CLOCK_MONOTONIC ns */
	int64_t restart_at;      /* CLOCK_MONOTONIC ns; 0 = no restart scheduled */
	int64_t backoff_ms;
	bool reported_down;      /* HEALTH said it is down: READY says it is back */
} spd__zygote;

/* One version of a target, as the front numbered it (wire/boot.h: ids): its
 * settings, what was prepared from them and, for forkserver, its zygote. A
 * reload adds slots (RELOAD) and the front frees them (RETIRE) once no process
 * of theirs is left; a slot stays where it is (children point into it) and
 * is freed at the end of the loop's pass, when no child refers to it. */
/* Keys of pre-started children (their memory cgroup's and their zygote's
 * name for them): bit 63 set, which a front key (a serial from 1) never has. */
#define SPD__IDLE_KEY_BIT (1ULL << 63)

/* A pre-started child (SPEC §12): not a process of the front's (no id, no
 * key of its own there), waiting in its slot's pool, blocked reading its
 * request pipe, until a START takes it (prestart.c). One that dies idle, or
 * that we kill, waits in spd__launcher.dying until it is reaped (by us, or
 * its zygote says so), so that its pid is never taken for a stray's and its
 * memory cgroup is removed once it is empty. */
typedef struct spd__idle {
	struct spd__idle *next;
	uint64_t key;            /* SPD__IDLE_KEY_BIT | serial */
	int zygote;              /* forkserver: its zygote's slot; -1: forked by us */
	pid_t pid;               /* 0 until its zygote says it */
	int pidfd;               /* forked by us: its pidfd, or -1 */
	int fd_out, fd_err, fd_chan, fd_req;  /* our ends of its pipes */
	bool cgroup;             /* its memory cgroup p-<key> exists */
	bool killed;             /* we SIGKILLed it: its death is no failure */
} spd__idle;

typedef struct spd__slot {
	uint32_t id;
	spd_target_config cfg;   /* owned */
	spd_prepared_target t;   /* t.cfg == &cfg */
	spd__zygote z;
	bool retired;            /* RETIRE came: freed once no child uses it */
	bool stale;              /* STALE came: no longer current, no pool */
	spd__idle *idle;         /* its pool: pre-started children waiting */
	uint32_t nidle;          /* entries in idle (with a pid or not yet) */
	uint32_t reported_idle;  /* the count the front last heard (IDLE) */
	int64_t pool_retry_at;   /* CLOCK_MONOTONIC ns: no refill before */
	int64_t pool_backoff_ms; /* after a pre-started child died idle */
} spd__slot;

typedef struct spd__launcher {
	spd__slot **slots;       /* nslots entries; NULL where freed */
	size_t nslots;
	bool slots_ready;        /* boot's slots are in: a new thread is a library's */
	int sock;
	int sigfd;
	int devnull;
	spd__child *children;
	pid_t *strays;           /* reparented processes SIGKILLed, not yet reaped */
	size_t nstrays, strays_cap;
	uint32_t max_idle;       /* pre-started children, all slots (max_idle) */
	uint32_t nidle;          /* in every pool now */
	uint64_t idle_serial;    /* the last pre-started child's key, less the bit */
	spd__idle *dying;        /* killed or died idle, not reaped yet */
	int64_t idle_wanted_since;  /* CLOCK_MONOTONIC ns a refill has waited since; 0 */
	char *worker;            /* spawnd-worker, for spawn and forkserver */
	spd_cgroups *cgroups;    /* what enforces memory_limit (cgroup.h) */
	/* Frames to the front wait here rather than block the loop: a launcher
	 * blocked on a full socket would stop reading the front, and the front may
	 * itself be blocked sending to it. Past SPD__OUTQ_HIGH bytes, children's
	 * pipes are not read, so children wait instead (pipes fill, writes block). */
	spd_wire_outq outq;
} spd__launcher;

#define SPD__OUTQ_HIGH (8u * 1024u * 1024u)

/* A pipe whose read end is non-blocking; both ends O_CLOEXEC. */
static inline int spd__pipe(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	return 0;
}

/* Closes *FD if open and sets it to -1. */
static inline void spd__close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Appends N bytes of P to a growable buffer. Returns 0 or -ENOMEM. */
static inline int spd__append(uint8_t **buf, size_t *len, size_t *cap, const void *p, size_t n)
{
	if (*len + n > *cap) {
		size_t c = *cap ? *cap : 4096;
		uint8_t *b;
		while (c < *len + n)
			c *= 2;
		b = realloc(*buf, c);
		if (b == NULL)
			return -ENOMEM;
		*buf = b;
		*cap = c;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	return 0;
}

/* Whether TC's processes get a memory cgroup each (else RLIMIT_AS). */
static inline bool spd__uses_cgroup(const spd__launcher *l, const spd_target_config *tc)
{
	return tc->limits.memory_limit != 0 &&
	       spd_cgroups_mechanism(l->cgroups) != SPD_MEMORY_RLIMIT_AS;
}

/* --- launcher.c: the outbox (the only upward calls: each queues a frame) --- */

/* Sends a frame to the front, or queues it (taking BODY's data) when the
 * socket is full or frames already wait; never blocks. BODY is left empty. */
void spd__send(spd__launcher *l, uint32_t type, uint64_t key, spd_wbuf *body);
/* Tells the front that the target of slot S became usable (WHY NULL) or not. */
void spd__send_health(spd__launcher *l, const spd__slot *s, const char *why);
/* Tells the front C runs (its pid and start time). */
void spd__send_started(spd__launcher *l, spd__child *c);

/* --- lifecycle.c: the child table --- */

/* A new child for the START frame of KEY, in state NEW, first in the list
 * (NULL when out of memory). Freed by the table once it is DONE and reported. */
spd__child *spd__child_create(spd__launcher *l, uint64_t key);
/* Feeds EV (facts in *E, NULL for none) to C: the one place that changes
 * C's state. C stays in the list; DONE children go in spd__children_report. */
void spd__child_on(spd__launcher *l, spd__child *c, spd__child_event ev, const spd__child_ev *e);
/* Sends the EXITED report of each DONE child and frees it. */
void spd__children_report(spd__launcher *l);
/* TIMEOUT and GRACE_OVER events for deadlines passed at NOW; the earliest
 * deadline still ahead (CLOCK_MONOTONIC ns, 0 none). */
void spd__children_tick(spd__launcher *l, int64_t now);
int64_t spd__children_next_deadline(const spd__launcher *l);
/* The child with pid PID whose leader is not reaped, or NULL. */
spd__child *spd__child_by_pid(spd__launcher *l, pid_t pid);
spd__child *spd__child_by_key(spd__launcher *l, uint64_t key);
/* The child its zygote calls ZKEY (spd__child.zkey), or NULL. */
spd__child *spd__child_by_zkey(spd__launcher *l, uint64_t zkey);
/* C's leader is running: its timeout starts now, and the front hears STARTED. */
void spd__child_running(spd__launcher *l, spd__child *c);

/* --- launch.c --- */

/* Starts C (state NEW, target found): pipes, stdin, its memory cgroup, then
 * its zygote or a fork. Returns the state it is in now: SPAWNING, RUNNING
 * (also when exec failed: rep says so, and the pid is reaped as usual), or
 * DONE (launch failed before any pid; rep says at which stage). */
spd__child_state spd__launch(spd__launcher *l, spd__child *c);

/* --- child_io.c: a child's pipes and report --- */

/* Reads what pipe *FD of C has (up to a budget): output is forwarded and kept,
 * channel records parsed. At EOF or error *FD is closed and set to -1. */
void spd__drain(spd__launcher *l, spd__child *c, int *fd);
/* Sends C's EXITED report: its facts, result and kept output. */
void spd__send_exited(spd__launcher *l, spd__child *c);
/* Sets the launch_* facts of C's report: STAGE, ERR and MSG (NULL: strerror).
 * The caller sets the flag (LAUNCH_FAILED or SETUP_FAILED). */
void spd__set_launch_error(spd__child *c, const char *stage, int err, const char *msg);

/* --- prestart.c: pre-started children --- */

/* Gives C (state NEW, target found, a prestart target) to a pre-started
 * child of its slot: the call goes down that child's request pipe, and C has
 * its pid, pipes and cgroup. Returns false when none is waiting (or the call
 * cannot be encoded): C is then launched fresh. */
bool spd__idle_take(spd__launcher *l, spd__child *c);
/* C's request pipe can take more: the rest of its call. */
void spd__idle_write_call(spd__launcher *l, spd__child *c);
/* Whether PID is a pre-started child we forked (idle or dying), unreaped. */
bool spd__idle_is(const spd__launcher *l, pid_t pid);
/* PID, one of ours (spd__idle_is), was reaped with STATUS. */
void spd__idle_reaped(spd__launcher *l, pid_t pid, int status);
/* What zygote Z said about pre-started child KEY: STARTED with PID (or
 * -errno), or EXITED (PID 0). */
void spd__idle_zygote_news(spd__launcher *l, size_t z, uint64_t key, bool started, int32_t pid);
/* Zygote Z is gone (or being retired): its pre-started children die with it;
 * they are forgotten (they come back to us as strays). */
void spd__idle_zygote_down(spd__launcher *l, size_t z);
/* Kills the pool of slot I (stale, retired, or max_idle lowered: at most
 * KEEP stay). */
void spd__idle_trim(spd__launcher *l, size_t i, uint32_t keep);
/* Whether a pool is short now (a refill would fork). */
bool spd__idle_wanted(spd__launcher *l, int64_t now);
/* Forks one pre-started child for the shortest pool. */
void spd__idle_refill(spd__launcher *l, int64_t now);
/* A refill has waited long enough for an idle pass: it goes ahead now. */
bool spd__idle_refill_due(const spd__launcher *l, int64_t now);
/* The end of the earliest refill backoff after NOW (CLOCK_MONOTONIC ns, 0
 * none). */
int64_t spd__idle_next_deadline(const spd__launcher *l, int64_t now);
/* Sends IDLE for each slot whose count changed since the front last heard. */
void spd__idle_report(spd__launcher *l);

/* --- zygotes.c --- */

/* What a zygote said or did, for the loop to give to the child table. */
typedef struct spd__zygote_news {
	enum { SPD__ZNEWS_NONE, SPD__ZNEWS_STARTED, SPD__ZNEWS_EXITED, SPD__ZNEWS_DOWN } what;
	size_t zygote;           /* its slot */
	uint64_t key;            /* STARTED, EXITED: the child's */
	int32_t pid;             /* STARTED: the pid, or -errno */
	int status;              /* EXITED: wait status, rusage, and which */
	struct rusage ru;        /*   SPD_EXIT_SENT_* reached it alive */
	uint32_t sent;
	char why[128];           /* DOWN: its children are lost */
} spd__zygote_news;

/* Sets up the zygote of new slot I (down, none yet), and starts it if its
 * target has zygote_start: boot. */
void spd__zygote_boot(spd__launcher *l, size_t i);
/* Slot I is retired: its zygote (which has no children left) is killed. */
void spd__zygote_retire(spd__launcher *l, size_t i);
/* Hands a process of forkserver target T (KEY, REQ) to its zygote, starting
 * it if needed. FDS: stdin, stdout, stderr, channel, and optionally the
 * cgroup.procs the child joins (child ends; the caller closes them). NFDS is
 * 4 or 5. Returns 0, or -errno with *WHY set to the LAUNCH error's message
 * (NULL: strerror). A zygote started or taken down here had no children. */
int spd__zygote_spawn(spd__launcher *l, size_t t, uint64_t key, const spd_start_req *req,
		      const int *fds, size_t nfds, const char **why);
/* Asks zygote Z to fork a pre-started child under KEY (PRESTART; the
 * answer is a STARTED news). FDS: stdin, stdout, stderr, channel, request
 * pipe and optionally cgroup.procs (NFDS 5 or 6). As spd__zygote_spawn. */
int spd__zygote_prestart(spd__launcher *l, size_t z, uint64_t key, const int *fds, size_t nfds);
/* Whether zygote Z is up, or could be started now (not in its backoff). */
bool spd__zygote_usable(const spd__launcher *l, size_t z);
/* Signals the group of KEY through zygote Z (which knows whether it is reaped). */
void spd__zygote_signal(spd__launcher *l, size_t z, uint64_t key, int sig);
/* True if PID is a zygote; then it was reaped (status STATUS): *NEWS says it
 * is DOWN (its children are lost) and a restart is scheduled. */
bool spd__zygote_reaped(spd__launcher *l, pid_t pid, int status, spd__zygote_news *news);
bool spd__zygote_is(const spd__launcher *l, pid_t pid);
/* Reads a frame from zygote I into *NEWS (NONE when it concerns no child). */
void spd__zygote_readable(spd__launcher *l, size_t i, spd__zygote_news *news);
/* Restarts that are due; the earliest deadline (CLOCK_MONOTONIC ns, 0 none). */
void spd__zygotes_tick(spd__launcher *l, int64_t now);
int64_t spd__zygotes_next_deadline(const spd__launcher *l);

#endif
