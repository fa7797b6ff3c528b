/* The launcher's child lifecycle in one place (s6-supervise's
 * actions[state][event]; registry/process.c does the same for records):
 * what each event does to a child in each state. See launcher_impl.h for the
 * states and events, and for which file gives which event. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "service/common/children.h"
#include "service/common/clock.h"
#include "service/common/log.h"
#include "service/common/tail.h"
#include "service/launcher/cgroup.h"
#include "service/launcher/child.h"
#include "service/launcher/launcher_impl.h"
#include "service/wire/messages.h"

/* ---- the child list -------------------------------------------------------- */

spd__child *spd__child_create(spd__launcher *l, uint64_t key)
{
	spd__child *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	c->state = SPD__CHILD_NEW;
	c->key = key;
	c->zkey = key;
	c->cgroup_key = key;
	c->fd_req = -1;
	c->zygote = -1;
	c->pidfd = -1;
	c->pending_grace = -1;
	c->fd_out = c->fd_err = c->fd_chan = -1;
	c->next = l->children;
	l->children = c;
	return c;
}

static void spd__child_free(spd__child *c)
{
	spd__close_fd(&c->pidfd);
	spd__close_fd(&c->fd_out);
	spd__close_fd(&c->fd_err);
	spd__close_fd(&c->fd_chan);
	spd__close_fd(&c->fd_req);
	free(c->req_out);
	spd_tail_release(&c->out);
	spd_tail_release(&c->err);
	free(c->head[0]);
	free(c->head[1]);
	free(c->chan);
	free(c->result);
	c->rep.result = NULL;
	spd_exit_report_release(&c->rep);
	spd_start_req_release(&c->req);
	free(c);
}

spd__child *spd__child_by_key(spd__launcher *l, uint64_t key)
{
	for (spd__child *c = l->children; c != NULL; c = c->next)
		if (c->key == key)
			return c;
	return NULL;
}

spd__child *spd__child_by_zkey(spd__launcher *l, uint64_t zkey)
{
	for (spd__child *c = l->children; c != NULL; c = c->next)
		if (c->zkey == zkey)
			return c;
	return NULL;
}

void spd__child_running(spd__launcher *l, spd__child *c)
{
	c->state = SPD__CHILD_RUNNING;
	if (c->req.timeout_ms > 0)
		c->timeout_at = spd_clock_mono_ns() + c->req.timeout_ms * 1000000;
	spd__send_started(l, c);
}

/* A leader is unreaped in these states only. */
static bool leader_unreaped(const spd__child *c)
{
	return c->state == SPD__CHILD_RUNNING || c->state == SPD__CHILD_STOPPING ||
	       c->state == SPD__CHILD_KILLED;
}

spd__child *spd__child_by_pid(spd__launcher *l, pid_t pid)
{
	for (spd__child *c = l->children; c != NULL; c = c->next)
		if (c->pid == pid && leader_unreaped(c))
			return c;
	return NULL;
}

/* ---- signals to a group -------------------------------------------------- */

/* pidfd_send_signal's flag for the target's process group (Linux 6.9). */
#ifndef PIDFD_SIGNAL_PROCESS_GROUP
#define PIDFD_SIGNAL_PROCESS_GROUP (1U << 2)
#endif

/* Signals the group led by C through its pidfd; -1 with errno when the kernel
 * cannot (no pidfd, or no PIDFD_SIGNAL_PROCESS_GROUP). */
static int pidfd_signal_group(const spd__child *c, int sig)
{
	if (c->pidfd < 0) {
		errno = ENOSYS;
		return -1;
	}
	return (int)syscall(SYS_pidfd_send_signal, c->pidfd, sig, NULL, PIDFD_SIGNAL_PROCESS_GROUP);
}

/* Signals the child's whole group, and records in rep.flags that the signal
 * reached it. Safe against pid reuse: the leader is our child and is reaped
 * only after its last group signal (the reap kills its group first, while its
 * pid still pins the group id). */
static void signal_group(spd__launcher *l, spd__child *c, int sig)
{
	if (c->pid <= 0)
		return;
	/* An exited leader is reaped, and what is left of its group SIGKILLed,
	 * on the next SIGCHLD pass: no signal of ours is needed, and none is
	 * recorded, so that the record says it ended by itself (SPEC §12
	 * "Destroy and canceled"). A zygote's child is its zygote's to wait
	 * for: the zygote makes the same check. */
	if (c->zygote < 0 && spd_child_exited(c->pid))
		return;
	/* Read before the signal is sent: whether it will kill it. */
	if (sig != SIGKILL && c->zygote < 0 && !(c->rep.flags & SPD_EXIT_SENT_STOP))
		c->stop_fatal = spd_signal_would_kill(c->pid, sig,
						      c->target->cfg->kind == SPD_TARGET_FUNCTION);
	/* A pidfd names this very process, never a recycled pid. Without one (old
	 * kernel), kill(-pgid) is still safe: the leader is our unreaped child
	 * until after its last group signal, so its pid, and with it the group
	 * id, cannot have been given to anyone else. */
	if (c->zygote >= 0)
		spd__zygote_signal(l, (size_t)c->zygote, c->zkey, sig);
	else if (pidfd_signal_group(c, sig) == 0)
		;
	else if (kill(-c->pid, sig) < 0 && errno == ESRCH)
		kill(c->pid, sig); /* it had not reached setpgid yet */
	if (sig == SIGKILL)
		c->rep.flags |= SPD_EXIT_SENT_KILL;
	else
		c->rep.flags |= SPD_EXIT_SENT_STOP;
}

/* ---- the actions ----------------------------------------------------------- */

typedef void action(spd__launcher *l, spd__child *c, const spd__child_ev *e);

/* The leader's exit: its facts go to the report. */
static void record_exit(spd__child *c, int status, const struct rusage *ru)
{
	c->rep.flags = spd_sent_flags_after_exit(c->rep.flags, status, c->stop_fatal);
	c->rep.wait_status = status;
	c->rep.ended_ns = spd_clock_real_ns();
	c->rep.utime_us = (int64_t)ru->ru_utime.tv_sec * 1000000 + ru->ru_utime.tv_usec;
	c->rep.stime_us = (int64_t)ru->ru_stime.tv_sec * 1000000 + ru->ru_stime.tv_usec;
	c->rep.maxrss_bytes = (int64_t)ru->ru_maxrss * 1024;
	c->kill_at = 0;
	c->timeout_at = 0;
	spd__close_fd(&c->pidfd);
	/* A pre-started child gone before it read all of its call. */
	spd__close_fd(&c->fd_req);
}

/* DRAINING until its pipes are at EOF and no stray is left unreaped: only
 * then is nothing of it left (nor in its memory cgroup). */
static void settle(spd__launcher *l, spd__child *c, const spd__child_ev *e)
{
	(void)e;
	if (c->fd_out < 0 && c->fd_err < 0 && c->fd_chan < 0 && l->nstrays == 0)
		c->state = SPD__CHILD_DONE;
}

static void launch(spd__launcher *l, spd__child *c, const spd__child_ev *e)
{
	(void)e;
	/* A START that failed to decode or names no usable target never ran. */
	c->state = c->rep.flags & SPD_EXIT_LAUNCH_FAILED ? SPD__CHILD_DONE : spd__launch(l, c);
}

/* DESTROY: SIGKILL at once, or the stop signal now and SIGKILL when the
 * (shortest asked) grace is over. */
static void destroy(spd__launcher *l, spd__child *c, const spd__child_ev *e)
{
	int64_t at;

	if (e->grace_ms <= 0) {
		signal_group(l, c, SIGKILL);
		c->kill_at = 0;
		c->state = SPD__CHILD_KILLED;
		return;
	}
	/* Once: a leader that had already exited got none, and may get it now. */
	if (!(c->rep.flags & SPD_EXIT_SENT_STOP))
		signal_group(l, c, c->target->cfg->limits.stop_signal);
	at = spd_clock_mono_ns() + e->grace_ms * 1000000;
	if (c->kill_at == 0 || at < c->kill_at)
		c->kill_at = at;
	c->state = SPD__CHILD_STOPPING;
}

/* SPAWNING: its pid is not known yet; destroyed once its zygote says it. */
static void destroy_later(spd__launcher *l, spd__child *c, const spd__child_ev *e)
{
	int64_t grace = e->grace_ms < 0 ? 0 : e->grace_ms;

	(void)l;
	if (c->pending_grace < 0 || grace < c->pending_grace)
		c->pending_grace = grace;
}

static void started(spd__launcher *l, spd__child *c, const spd__child_ev *e)
{
	if (e->pid <= 0) {
		c->rep.flags |= SPD_EXIT_LAUNCH_FAILED;
		spd__set_launch_error(c, "fork", -e->pid, NULL);
		c->state = SPD__CHILD_DONE;
		return;
	}
	c->pid = e->pid;
	spd__child_running(l, c);
	if (c->pending_grace >= 0) {
		spd__child_ev d = SPD__CHILD_EV_INIT;
		d.grace_ms = c->pending_grace;
		spd__child_on(l, c, SPD__CEV_DESTROY, &d);
	}
}

/* TIMEOUT: destroyed with the request's grace, else the target's. */
static void timed_out(spd__launcher *l, spd__child *c, const spd__child_ev *e)
{
	spd__child_ev d = SPD__CHILD_EV_INIT;

	(void)e;
	c->timeout_at = 0;
	c->rep.flags |= SPD_EXIT_TIMED_OUT;
	d.grace_ms = c->req.grace_ms >= 0 ? c->req.grace_ms : c->target->cfg->limits.destroy_grace_ms;
	spd__child_on(l, c, SPD__CEV_DESTROY, &d);
}

/* KILLED: SIGKILL is on its way; the timeout only goes to the report. */
static void timed_out_killed(spd__launcher *l, spd__child *c, const spd__child_ev *e)
{
	(void)l;
	(void)e;
	c->timeout_at = 0;
	c->rep.flags |= SPD_EXIT_TIMED_OUT;
}

static void kill_now(spd__launcher *l, spd__child *c, const spd__child_ev *e)
{
	(void)e;
	c->kill_at = 0;
	signal_group(l, c, SIGKILL);
	c->state = SPD__CHILD_KILLED;
}

static void exited(spd__launcher *l, spd__child *c, const spd__child_ev *e)
{
	if (e->from_zygote)
		/* Only the zygote knows whether a signal reached its child alive. */
		c->rep.flags = (c->rep.flags & ~(uint32_t)(SPD_EXIT_SENT_STOP | SPD_EXIT_SENT_KILL)) |
			       e->sent;
	else if (c->zygote >= 0)
		/* A zygote's child comes to us only when its zygote died. */
		c->rep.flags |= SPD_EXIT_LOST;
	record_exit(c, e->status, e->ru);
	c->state = SPD__CHILD_DRAINING;
	settle(l, c, e);
}

/* SPAWNING: never started, a launch failure. */
static void lost_unstarted(spd__launcher *l, spd__child *c, const spd__child_ev *e)
{
	(void)l;
	c->rep.flags |= SPD_EXIT_LOST | SPD_EXIT_LAUNCH_FAILED;
	spd__set_launch_error(c, "zygote", EPIPE, e->why);
	c->state = SPD__CHILD_DONE;
}

/* It dies of its parent-death signal; if it comes to us it is reaped as a
 * stray. */
static void lost(spd__launcher *l, spd__child *c, const spd__child_ev *e)
{
	struct rusage ru;

	memset(&ru, 0, sizeof ru);
	c->rep.flags |= SPD_EXIT_LOST;
	record_exit(c, W_EXITCODE(0, SIGKILL), &ru);
	c->state = SPD__CHILD_DRAINING;
	settle(l, c, e);
}

/* Rows: state; columns: event. NULL: nothing to do (the event cannot change
 * that state: a destroy of what is already killed, a pipe's EOF while the
 * leader runs, ...). In short:
 *   NEW      -START->    SPAWNING (forkserver) | RUNNING | DONE (launch failed)
 *   SPAWNING -STARTED->  RUNNING (then a DESTROY asked meanwhile) | DONE
 *   RUNNING, STOPPING -DESTROY-> STOPPING (grace) | KILLED (none);
 *            -TIMEOUT->  TIMED_OUT, then DESTROY with the timeout's grace
 *   STOPPING -GRACE_OVER-> KILLED
 *   RUNNING, STOPPING, KILLED -EXITED, ZYGOTE_LOST-> DRAINING
 *   DRAINING -PIPE_EOF, STRAYS_GONE-> DONE once no pipe and no stray is left */
static action *const actions[SPD__CHILD_STATE_COUNT][SPD__CEV_COUNT] = {
	[SPD__CHILD_NEW] = {
		[SPD__CEV_START] = launch,
	},
	[SPD__CHILD_SPAWNING] = {
		[SPD__CEV_STARTED] = started,
		[SPD__CEV_DESTROY] = destroy_later,
		[SPD__CEV_ZYGOTE_LOST] = lost_unstarted,
	},
	[SPD__CHILD_RUNNING] = {
		[SPD__CEV_DESTROY] = destroy,
		[SPD__CEV_TIMEOUT] = timed_out,
		[SPD__CEV_EXITED] = exited,
		[SPD__CEV_ZYGOTE_LOST] = lost,
		[SPD__CEV_FRONT_GONE] = kill_now,
	},
	[SPD__CHILD_STOPPING] = {
		[SPD__CEV_DESTROY] = destroy,
		[SPD__CEV_TIMEOUT] = timed_out,
		[SPD__CEV_GRACE_OVER] = kill_now,
		[SPD__CEV_EXITED] = exited,
		[SPD__CEV_ZYGOTE_LOST] = lost,
		[SPD__CEV_FRONT_GONE] = kill_now,
	},
	[SPD__CHILD_KILLED] = {
		[SPD__CEV_TIMEOUT] = timed_out_killed,
		[SPD__CEV_EXITED] = exited,
		[SPD__CEV_ZYGOTE_LOST] = lost,
		[SPD__CEV_FRONT_GONE] = kill_now,
	},
	[SPD__CHILD_DRAINING] = {
		[SPD__CEV_PIPE_EOF] = settle,
		[SPD__CEV_STRAYS_GONE] = settle,
	},
	[SPD__CHILD_DONE] = {0},
};

void spd__child_on(spd__launcher *l, spd__child *c, spd__child_event ev, const spd__child_ev *e)
{
	static const spd__child_ev none = SPD__CHILD_EV_INIT;
	action *a;

	if ((unsigned)c->state >= SPD__CHILD_STATE_COUNT || (unsigned)ev >= SPD__CEV_COUNT)
		return;
	a = actions[c->state][ev];
	if (a != NULL)
		a(l, c, e != NULL ? e : &none);
}

/* ---- DONE: reported and freed ------------------------------------------------ */

/* C's leader is reaped and no stray is left: nothing is in its memory cgroup
 * any more. Records what the cgroup saw (SPD_EXIT_CGROUP, and
 * SPD_EXIT_OOM_KILLED when the kernel OOM-killed something in it), then
 * removes it. */
static void finish_cgroup(spd__launcher *l, spd__child *c)
{
	bool oom = false;
	int rc;

	if (!c->cgroup)
		return;
	c->cgroup = false;
	rc = spd_cgroups_remove(l->cgroups, c->cgroup_key, &oom);
	if (c->rep.flags & SPD_EXIT_LAUNCH_FAILED)
		return;
	if (rc == 0)
		c->rep.flags |= SPD_EXIT_CGROUP | (oom ? SPD_EXIT_OOM_KILLED : 0u);
	else
		spd_log(SPD_LOG_WARN, "cannot read the memory cgroup's OOM counter",
			SPD_LOG_STR("process_id", c->req.process_id), SPD_LOG_STR("error", strerror(-rc)),
			SPD_LOG_END);
}

void spd__children_report(spd__launcher *l)
{
	spd__child **pp = &l->children;

	while (*pp != NULL) {
		spd__child *c = *pp;
		if (c->state == SPD__CHILD_DONE) {
			/* A launch that failed after fork (exec error) is reported once
			 * the child is reaped, with pid 0: it never ran. */
			if (c->rep.flags & SPD_EXIT_LAUNCH_FAILED)
				c->pid = 0;
			finish_cgroup(l, c);
			spd__send_exited(l, c);
			*pp = c->next;
			spd__child_free(c);
		} else {
			pp = &c->next;
		}
	}
}

/* ---- deadlines ------------------------------------------------------------- */

void spd__children_tick(spd__launcher *l, int64_t now)
{
	for (spd__child *c = l->children; c != NULL; c = c->next) {
		/* Each deadline fires once, whatever the state makes of it. */
		if (c->timeout_at != 0 && now >= c->timeout_at) {
			c->timeout_at = 0;
			spd__child_on(l, c, SPD__CEV_TIMEOUT, NULL);
		}
		if (c->kill_at != 0 && now >= c->kill_at) {
			c->kill_at = 0;
			spd__child_on(l, c, SPD__CEV_GRACE_OVER, NULL);
		}
	}
}

int64_t spd__children_next_deadline(const spd__launcher *l)
{
	int64_t next = 0;

	for (const spd__child *c = l->children; c != NULL; c = c->next) {
		if (c->kill_at != 0 && (next == 0 || c->kill_at < next))
			next = c->kill_at;
		if (c->timeout_at != 0 && (next == 0 || c->timeout_at < next))
			next = c->timeout_at;
	}
	return next;
}
