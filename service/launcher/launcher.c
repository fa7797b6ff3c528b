/* The launcher's loop: see launcher.h for the contract. */
#include "service/launcher/launcher.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "service/common/clock.h"
#include "service/common/log.h"
#include "service/common/tail.h"
#include "service/launcher/cgroup.h"
#include "service/launcher/child.h"
#include "service/launcher/launcher_impl.h"
#include "service/launcher/target_spec.h"
#include "service/launcher/targets.h"
#include "service/target/call.h"
#include "service/target/channel.h"
#include "service/wire/boot.h"
#include "service/wire/messages.h"
#include "service/wire/wire.h"

/* How long the launcher waits for its children to die when the front is gone. */
#define FINAL_REAP_SECONDS 10

/* ---- small helpers ----------------------------------------------------- */

void spd__close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

int spd__append(uint8_t **buf, size_t *len, size_t *cap, const void *p, size_t n)
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

child *spd__child_by_key(launcher *l, uint64_t key)
{
	for (child *c = l->children; c != NULL; c = c->next)
		if (c->key == key)
			return c;
	return NULL;
}

static child *find_pid(launcher *l, pid_t pid)
{
	for (child *c = l->children; c != NULL; c = c->next)
		if (c->pid == pid && !c->reaped)
			return c;
	return NULL;
}

void spd__set_launch_error(child *c, const char *stage, int err, const char *msg)
{
	free(c->rep.launch_stage);
	free(c->rep.launch_message);
	c->rep.launch_stage = strdup(stage);
	c->rep.launch_errno = err;
	c->rep.launch_message = strdup(msg != NULL ? msg : strerror(err));
}

/* ---- signals to a group -------------------------------------------------- */

/* Signals the child's whole group. Safe against pid reuse: the leader is our
 * child and is reaped only after its last group signal (see reap()), so while
 * it is unreaped no other process can be given its pid as a group id. */
/* pidfd_send_signal's flag for the target's process group (Linux 6.9). */
#ifndef PIDFD_SIGNAL_PROCESS_GROUP
#define PIDFD_SIGNAL_PROCESS_GROUP (1U << 2)
#endif

/* Signals the group led by C through its pidfd; -1 with errno when the kernel
 * cannot (no pidfd, or no PIDFD_SIGNAL_PROCESS_GROUP). */
static int pidfd_signal_group(const child *c, int sig)
{
	if (c->pidfd < 0) {
		errno = ENOSYS;
		return -1;
	}
	return (int)syscall(SYS_pidfd_send_signal, c->pidfd, sig, NULL, PIDFD_SIGNAL_PROCESS_GROUP);
}

/* Whether C's leader has exited (a zombie we have not reaped yet): then it
 * ended on its own, and a destroy's signal would only pretend to end it. */
static bool leader_exited(const child *c)
{
	siginfo_t si;

	memset(&si, 0, sizeof si);
	return waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	       si.si_pid == c->pid;
}

static void signal_group(launcher *l, child *c, int sig)
{
	if (c->pid <= 0 || c->reaped)
		return;
	/* An exited leader is reaped, and what is left of its group SIGKILLed,
	 * on the next SIGCHLD pass (reap()): no signal of ours is needed, and
	 * none is recorded, so that the record says it ended by itself (SPEC
	 * §12 "Destroy and canceled"). A zygote's child is its zygote's to wait
	 * for: the zygote makes the same check. */
	if (c->zygote < 0 && leader_exited(c))
		return;
	/* A pidfd names this very process, never a recycled pid. Without one (old
	 * kernel), kill(-pgid) is still safe: the leader is our unreaped child
	 * until after its last group signal (see reap()), so its pid, and with it
	 * the group id, cannot have been given to anyone else. */
	if (sig != SIGKILL && c->zygote < 0 && !(c->rep.flags & SPD_EXIT_SENT_STOP))
		c->stop_fatal = spd_signal_would_kill(c->pid, sig,
						      c->target->cfg->kind == SPD_TARGET_FUNCTION);
	if (c->zygote >= 0)
		spd__zygote_signal(l, c, sig);
	else if (getpgid(c->pid) != c->pid)
		/* Not yet its own group leader (between fork and its setpgid):
		 * a group signal would go to the launcher's group, or nowhere,
		 * and miss it. It has forked nothing yet: signal it alone. */
		kill(c->pid, sig);
	else if (pidfd_signal_group(c, sig) == 0)
		;
	else if (kill(-c->pid, sig) < 0 && errno == ESRCH)
		kill(c->pid, sig); /* it had not reached setpgid yet */
	if (sig == SIGKILL)
		c->rep.flags |= SPD_EXIT_SENT_KILL;
	else
		c->rep.flags |= SPD_EXIT_SENT_STOP;
}

void spd__destroy_child(launcher *l, child *c, int64_t grace_ms)
{
	int64_t now = spd_clock_mono_ns();
	int64_t at;

	if (c->pid <= 0 && c->awaiting_pid) {
		/* Its zygote has not said its pid yet: destroy it once it does. */
		if (c->pending_grace < 0 || grace_ms < c->pending_grace)
			c->pending_grace = grace_ms < 0 ? 0 : grace_ms;
		return;
	}
	if (c->pid <= 0 || c->reaped)
		return;
	if (grace_ms <= 0) {
		signal_group(l, c, SIGKILL);
		c->kill_at = 0;
		return;
	}
	if (!(c->rep.flags & SPD_EXIT_SENT_STOP))
		signal_group(l, c, c->target->cfg->limits.stop_signal);
	at = now + grace_ms * 1000000;
	if (c->kill_at == 0 || at < c->kill_at)
		c->kill_at = at;
}

/* ---- strays -------------------------------------------------------------- */

static int is_stray_known(launcher *l, pid_t pid)
{
	for (size_t i = 0; i < l->nstrays; i++)
		if (l->strays[i] == pid)
			return 1;
	return 0;
}

static void forget_stray(launcher *l, pid_t pid)
{
	for (size_t i = 0; i < l->nstrays; i++) {
		if (l->strays[i] == pid) {
			l->strays[i] = l->strays[--l->nstrays];
			return;
		}
	}
}

/* Calls FN for each direct child of this process, from
 * /proc/self/task/TID/children (the launcher has one thread). */
static void for_each_child_pid(launcher *l, void (*fn)(launcher *, pid_t))
{
	char path[64], buf[4096];
	FILE *f;

	snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
	f = fopen(path, "re");
	if (f == NULL)
		return;
	while (fscanf(f, "%4095s", buf) == 1) {
		long pid = strtol(buf, NULL, 10);
		if (pid > 0)
			fn(l, (pid_t)pid);
	}
	fclose(f);
}

/* A direct child that is not a live leader was reparented to us: kill it. It is
 * our child and unreaped, so its pid cannot have been reused. */
static void kill_if_stray(launcher *l, pid_t pid)
{
	if (find_pid(l, pid) != NULL || is_stray_known(l, pid) || spd__zygote_is(l, pid))
		return;
	if (l->nstrays == l->strays_cap) {
		size_t cap = l->strays_cap ? 2 * l->strays_cap : 16;
		pid_t *s = realloc(l->strays, cap * sizeof *s);
		if (s == NULL)
			return; /* found again at the next scan */
		l->strays = s;
		l->strays_cap = cap;
	}
	kill(pid, SIGKILL);
	l->strays[l->nstrays++] = pid;
	spd_log(SPD_LOG_DEBUG, "killed a reparented process", SPD_LOG_INT("pid", pid), SPD_LOG_END);
}

/* ---- reaping ------------------------------------------------------------- */

void spd__record_exit(child *c, int status, const struct rusage *ru)
{
	c->reaped = 1;
	c->rep.flags = spd_sent_flags_after_exit(c->rep.flags, status, c->stop_fatal);
	c->rep.wait_status = status;
	c->rep.ended_ns = spd_clock_real_ns();
	c->rep.utime_us = (int64_t)ru->ru_utime.tv_sec * 1000000 + ru->ru_utime.tv_usec;
	c->rep.stime_us = (int64_t)ru->ru_stime.tv_sec * 1000000 + ru->ru_stime.tv_usec;
	c->rep.maxrss_bytes = (int64_t)ru->ru_maxrss * 1024;
	c->kill_at = 0;
	c->timeout_at = 0;
	spd__close_fd(&c->pidfd);
}

/* Reaps every exited child. A leader is first seen with WNOWAIT: while it is a
 * zombie its pid pins the group, so the group SIGKILL cannot hit a stranger. */
static void reap(launcher *l)
{
	int reaped_any = 0;

	for (;;) {
		siginfo_t si;
		struct rusage ru;
		int status;
		child *c;

		memset(&si, 0, sizeof si);
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
			break;
		c = find_pid(l, si.si_pid);
		if (c != NULL)
			kill(-c->pid, SIGKILL); /* what is left of its group */
		if (wait4(si.si_pid, &status, 0, &ru) < 0)
			break;
		reaped_any = 1;
		if (c != NULL) {
			/* A zygote's child comes to us only when its zygote died. */
			if (c->zygote >= 0)
				c->rep.flags |= SPD_EXIT_LOST;
			spd__record_exit(c, status, &ru);
		} else if (!spd__zygote_reaped(l, si.si_pid, status)) {
			forget_stray(l, si.si_pid);
		}
	}
	if (reaped_any)
		spd__kill_strays(l);
}

void spd__kill_strays(launcher *l)
{
	for_each_child_pid(l, kill_if_stray);
}

/* ---- frames to the front --------------------------------------------------- */

/* Whether TC's processes get a memory cgroup. Forkserver children are forked
 * by their zygote, which does not put them in one: RLIMIT_AS applies there. */
bool spd__uses_cgroup(const launcher *l, const spd_target_config *tc)
{
	return tc->limits.memory_limit != 0 &&
	       spd_cgroups_mechanism(l->cgroups) != SPD_MEMORY_RLIMIT_AS;
}

/* What enforces TC's memory_limit: "" when it has none. */
static const char *memory_mechanism(const launcher *l, const spd_target_config *tc)
{
	if (tc->limits.memory_limit == 0)
		return "";
	if (!spd__uses_cgroup(l, tc))
		return spd_memory_mechanism_name(SPD_MEMORY_RLIMIT_AS);
	return spd_memory_mechanism_name(spd_cgroups_mechanism(l->cgroups));
}

static void send_hello(launcher *l)
{
	size_t n = l->cfg->target_count;
	const char **v = calloc(3 * n + 1, sizeof *v); /* names, errors, mechanisms */
	spd_wbuf b = SPD_WBUF_INIT;

	if (v == NULL) {
		b.err = -ENOMEM; /* spd__send() logs it */
	} else {
		/* The message borrows every string. */
		spd_launcher_hello h = {.count = n,
					.names = (char **)v,
					.errors = (char **)v + n,
					.memory_limit_mechanisms = (char **)v + 2 * n};
		for (size_t i = 0; i < n; i++) {
			v[i] = l->targets[i].cfg->name;
			v[n + i] = l->targets[i].error;
			v[2 * n + i] = memory_mechanism(l, l->targets[i].cfg);
		}
		spd_launcher_hello_encode(&h, &b);
		free(v);
	}
	spd__send(l, SPD_WIRE_HELLO, 0, &b);
}

void spd__send(launcher *l, uint32_t type, uint64_t key, spd_wbuf *body)
{
	int rc = spd_wire_outq_send(&l->outq, l->sock, type, key, body);

	if (rc < 0)
		spd_log(SPD_LOG_ERROR, "cannot send a frame to the front",
			SPD_LOG_STR("error", strerror(-rc)), SPD_LOG_INT("type", type), SPD_LOG_END);
}

void spd__send_health(launcher *l, const char *target, const char *why)
{
	spd_health_msg m = {.target = (char *)target, .why = (char *)why}; /* borrowed */
	spd_wbuf b = SPD_WBUF_INIT;

	spd_health_msg_encode(&m, &b);
	spd__send(l, SPD_WIRE_HEALTH, 0, &b);
}

void spd__send_started(launcher *l, child *c)
{
	spd_started_msg m = {.pid = c->pid, .started_ns = c->rep.started_ns};
	spd_wbuf b = SPD_WBUF_INIT;

	spd_started_msg_encode(&m, &b);
	spd__send(l, SPD_WIRE_STARTED, c->key, &b);
}

/* ---- starting a child ------------------------------------------------------ */

/* A pipe whose read end (ours) is non-blocking; both ends O_CLOEXEC. */
int spd__make_pipe(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	return 0;
}

/* The exec child's stdin: the request input in a memfd, read from the start. */
static int input_memfd(const spd_start_req *req)
{
	return spd_memfd_from(req->input, req->input_len);
}

/* The spawn worker's fd 4: the target spec and the request, in a sealed memfd. */
static int spec_memfd(const spd_prepared_target *t, const spd_start_req *req)
{
	spd_wbuf spec = SPD_WBUF_INIT;
	int fd = spd_call_spec_encode(t, req, &spec);

	if (fd == 0)
		fd = spd_memfd_from(spec.data, spec.len);
	spd_wbuf_release(&spec);
	return fd;
}

static char **build_exec_argv(const spd_target_config *tc, const spd_start_req *req)
{
	char **argv = calloc(tc->exec_argc + req->argc + 1, sizeof *argv);
	size_t n = 0;

	if (argv == NULL)
		return NULL;
	for (size_t i = 0; i < tc->exec_argc; i++)
		argv[n++] = tc->exec_argv[i];
	for (uint32_t i = 0; i < req->argc; i++)
		argv[n++] = req->argv[i];
	return argv;
}

/* Forks the child of C. On failure the child is marked launch-failed and
 * reported like any other (it has pid 0, or a pid that will be reaped). */
static void start_child(launcher *l, child *c)
{
	const spd_target_config *tc = c->target->cfg;
	int out[2] = {-1, -1}, err[2] = {-1, -1}, chan[2] = {-1, -1}, errpipe[2] = {-1, -1};
	int fd_in = -1, fd_spec = -1, rc;
	char **argv = NULL;
	spd_child_spec spec;
	pid_t pid;
	int fd_cgroup = -1;
	const char *stage = "pipe";

	bool spawn = tc->kind == SPD_TARGET_FUNCTION && tc->limits.start_method == SPD_START_SPAWN;
	bool execs = tc->kind == SPD_TARGET_EXEC || spawn;

	/* STAGE names the step that failed, for the LAUNCH error's message:
	 * "pipe: Too many open files", not a "fork" that never happened. */
	stage = "pipe";
	if ((rc = spd__make_pipe(out)) < 0 || (rc = spd__make_pipe(err)) < 0)
		goto fail;
	if (execs && pipe2(errpipe, O_CLOEXEC) < 0) {
		rc = -errno;
		goto fail;
	}
	if (tc->kind == SPD_TARGET_EXEC) {
		stage = "memfd";
		if ((fd_in = input_memfd(&c->req)) < 0) {
			rc = fd_in;
			goto fail;
		}
		stage = "argv";
		if ((argv = build_exec_argv(tc, &c->req)) == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
	} else {
		if ((rc = spd__make_pipe(chan)) < 0)
			goto fail;
		stage = "stdin";
		fd_in = fcntl(l->devnull, F_DUPFD_CLOEXEC, 0);
		if (fd_in < 0) {
			rc = -errno;
			goto fail;
		}
	}
	if (tc->kind == SPD_TARGET_FUNCTION && tc->limits.start_method == SPD_START_FORKSERVER) {
		int fds[5] = {fd_in, out[1], err[1], chan[1], -1};

		if (spd__uses_cgroup(l, tc)) {
			rc = spd_cgroups_add(l->cgroups, c->key, tc->limits.memory_limit, &fd_cgroup);
			if (rc < 0) {
				stage = "cgroup";
				goto fail;
			}
			c->cgroup = 1;
			fds[4] = fd_cgroup;
		}
		c->rep.started_ns = spd_clock_real_ns();
		rc = spd__zygote_spawn(l, c, fds, fds[4] >= 0 ? 5 : 4);
		spd__close_fd(&fd_cgroup);
		spd__close_fd(&fd_in);
		spd__close_fd(&out[1]);
		spd__close_fd(&err[1]);
		spd__close_fd(&chan[1]);
		if (rc < 0) {
			spd__close_fd(&out[0]);
			spd__close_fd(&err[0]);
			spd__close_fd(&chan[0]);
			return; /* marked launch-failed, reported as such */
		}
		/* RUNNING (and its timeout) begins when the zygote says the pid. */
		c->fd_out = out[0];
		c->fd_err = err[0];
		c->fd_chan = chan[0];
		return;
	}
	if (spawn) {
		stage = "spawn";
		if (l->worker == NULL) {
			rc = -ENOENT;
			goto fail;
		}
		stage = "memfd";
		if ((fd_spec = spec_memfd(c->target, &c->req)) < 0) {
			rc = fd_spec;
			goto fail;
		}
		stage = "argv";
		argv = calloc(3, sizeof *argv);
		if (argv == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
		argv[0] = l->worker;
		argv[1] = (char *)"call";
	}
	if (spd__uses_cgroup(l, tc)) {
		rc = spd_cgroups_add(l->cgroups, c->key, tc->limits.memory_limit, &fd_cgroup);
		if (rc < 0) {
			stage = "cgroup";
			goto fail;
		}
		c->cgroup = 1; /* removed once C is reported, even if the fork fails */
	}
	stage = "fork";
	spec = (spd_child_spec){
		.target = c->target,
		.req = &c->req,
		.exec_argv = argv,
		.fd_stdin = fd_in,
		.fd_stdout = out[1],
		.fd_stderr = err[1],
		.fd_chan = chan[1],
		.fd_spec = fd_spec,
		.fd_errpipe = errpipe[1],
		.join_cgroup = fd_cgroup >= 0,
		.fd_cgroup = fd_cgroup,
	};
	c->rep.started_ns = spd_clock_real_ns();
	pid = spd_child_fork(&spec);
	if (pid < 0) {
		rc = pid;
		goto fail;
	}
	c->pid = pid;
	c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* O_CLOEXEC by definition */
	c->fd_out = out[0];
	c->fd_err = err[0];
	c->fd_chan = chan[0];
	out[0] = err[0] = chan[0] = -1;
	spd__close_fd(&out[1]);
	spd__close_fd(&err[1]);
	spd__close_fd(&chan[1]);
	spd__close_fd(&fd_in);
	spd__close_fd(&fd_spec);
	spd__close_fd(&fd_cgroup);
	if (execs) {
		int rec[2];
		ssize_t n;
		spd__close_fd(&errpipe[1]);
		/* Blocks until exec or failure: a few ms at most (git, libuv do the same). */
		do
			n = read(errpipe[0], rec, sizeof rec);
		while (n < 0 && errno == EINTR);
		spd__close_fd(&errpipe[0]);
		if (n == (ssize_t)sizeof rec) {
			c->rep.flags |= SPD_EXIT_LAUNCH_FAILED;
			spd__set_launch_error(c, spd_child_stage_name(rec[0]), rec[1], NULL);
		}
	}
	free(argv);
	if (c->req.timeout_ms > 0 && !(c->rep.flags & SPD_EXIT_LAUNCH_FAILED))
		c->timeout_at = spd_clock_mono_ns() + c->req.timeout_ms * 1000000;
	if (!(c->rep.flags & SPD_EXIT_LAUNCH_FAILED)) {
		spd__send_started(l, c);
		spd_log(SPD_LOG_DEBUG, "child started", SPD_LOG_STR("process_id", c->req.process_id),
			SPD_LOG_STR("target", tc->name), SPD_LOG_INT("pid", pid), SPD_LOG_END);
	}
	return;
fail:
	c->rep.flags |= SPD_EXIT_LAUNCH_FAILED;
	spd__set_launch_error(c, stage, -rc, NULL);
	spd__close_fd(&out[0]);
	spd__close_fd(&out[1]);
	spd__close_fd(&err[0]);
	spd__close_fd(&err[1]);
	spd__close_fd(&chan[0]);
	spd__close_fd(&chan[1]);
	spd__close_fd(&errpipe[0]);
	spd__close_fd(&errpipe[1]);
	spd__close_fd(&fd_in);
	spd__close_fd(&fd_spec);
	spd__close_fd(&fd_cgroup);
	free(argv);
	if (rc == -ENOENT && spawn && l->worker == NULL)
		spd__set_launch_error(c, "spawn", ENOENT, "spawnd-worker not found (set SPAWND_WORKER)");
}

static void on_start(launcher *l, uint64_t key, const uint8_t *body, size_t len)
{
	child *c = calloc(1, sizeof *c);

	if (c == NULL)
		return; /* the front times out nothing: it will see LOST at worst */
	c->key = key;
	c->zygote = -1;
	c->pidfd = -1;
	c->pending_grace = -1;
	c->fd_out = c->fd_err = c->fd_chan = -1;
	c->next = l->children;
	l->children = c;
	if (spd_start_req_decode(&c->req, body, len) < 0) {
		c->rep.flags |= SPD_EXIT_LAUNCH_FAILED;
		spd__set_launch_error(c, "decode", EBADMSG, "malformed START frame");
		return;
	}
	c->target = spd_targets_find(l->targets, l->cfg->target_count, c->req.target);
	if (c->target == NULL) {
		c->rep.flags |= SPD_EXIT_LAUNCH_FAILED;
		spd__set_launch_error(c, "target", ENOENT, "unknown target");
		return;
	}
	if (c->target->error != NULL) {
		c->rep.flags |= SPD_EXIT_LAUNCH_FAILED;
		spd__set_launch_error(c, "target", ENOEXEC, c->target->error);
		return;
	}
	c->out = (spd_tail)SPD_TAIL_INIT(c->target->cfg->limits.max_output_bytes);
	c->err = (spd_tail)SPD_TAIL_INIT(c->target->cfg->limits.max_output_bytes);
	start_child(l, c);
}

static void on_destroy(launcher *l, uint64_t key, const uint8_t *body, size_t len)
{
	spd_destroy_msg m;
	child *c = spd__child_by_key(l, key);

	if (c == NULL || spd_destroy_msg_decode(&m, body, len) < 0)
		return; /* already reported: nothing to do */
	spd__destroy_child(l, c, m.grace_ms);
}

/* ---- the loop ------------------------------------------------------------- */

static int child_done(const launcher *l, const child *c)
{
	if (c->pid == 0)
		return !c->awaiting_pid;
	return c->reaped && c->fd_out < 0 && c->fd_err < 0 && c->fd_chan < 0 && l->nstrays == 0;
}

static void free_child(child *c)
{
	spd__close_fd(&c->pidfd);
	spd__close_fd(&c->fd_out);
	spd__close_fd(&c->fd_err);
	spd__close_fd(&c->fd_chan);
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

/* C's leader is reaped and no stray is left: nothing is in its memory cgroup
 * any more. Records what the cgroup saw (SPD_EXIT_CGROUP, and
 * SPD_EXIT_OOM_KILLED when the kernel OOM-killed something in it), then
 * removes it. */
static void finish_cgroup(launcher *l, child *c)
{
	bool oom = false;
	int rc;

	if (!c->cgroup)
		return;
	c->cgroup = 0;
	rc = spd_cgroups_remove(l->cgroups, c->key, &oom);
	if (c->rep.flags & SPD_EXIT_LAUNCH_FAILED)
		return;
	if (rc == 0)
		c->rep.flags |= SPD_EXIT_CGROUP | (oom ? SPD_EXIT_OOM_KILLED : 0u);
	else
		spd_log(SPD_LOG_WARN, "cannot read the memory cgroup's OOM counter",
			SPD_LOG_STR("process_id", c->req.process_id), SPD_LOG_STR("error", strerror(-rc)),
			SPD_LOG_END);
}

static void report_finished(launcher *l)
{
	child **pp = &l->children;

	while (*pp != NULL) {
		child *c = *pp;
		if (child_done(l, c)) {
			/* A launch that failed after fork (exec error) is reported once
			 * the child is reaped, with pid 0: it never ran. */
			if (c->rep.flags & SPD_EXIT_LAUNCH_FAILED)
				c->pid = 0;
			finish_cgroup(l, c);
			spd__send_exited(l, c);
			*pp = c->next;
			free_child(c);
		} else {
			pp = &c->next;
		}
	}
}

static void on_deadlines(launcher *l)
{
	int64_t now = spd_clock_mono_ns();

	for (child *c = l->children; c != NULL; c = c->next) {
		if (c->timeout_at != 0 && now >= c->timeout_at) {
			int64_t grace = c->req.grace_ms >= 0 ? c->req.grace_ms
							     : c->target->cfg->limits.destroy_grace_ms;
			c->timeout_at = 0;
			c->rep.flags |= SPD_EXIT_TIMED_OUT;
			spd__destroy_child(l, c, grace);
		}
		if (c->kill_at != 0 && now >= c->kill_at) {
			c->kill_at = 0;
			signal_group(l, c, SIGKILL);
		}
	}
}

static int poll_timeout_ms(const launcher *l)
{
	int64_t next = spd__zygotes_next_deadline(l), now = spd_clock_mono_ns();

	for (const child *c = l->children; c != NULL; c = c->next) {
		if (c->kill_at != 0 && (next == 0 || c->kill_at < next))
			next = c->kill_at;
		if (c->timeout_at != 0 && (next == 0 || c->timeout_at < next))
			next = c->timeout_at;
	}
	if (next == 0)
		return -1;
	if (next <= now)
		return 0;
	return (int)((next - now + 999999) / 1000000);
}

static void kill_all_children(launcher *l, pid_t pid)
{
	(void)l;
	kill(pid, SIGKILL);
}

/* The front is gone: nothing may survive it. */
static _Noreturn void die_with_front(launcher *l)
{
	for (child *c = l->children; c != NULL; c = c->next)
		signal_group(l, c, SIGKILL);
	/* A stuck reap must not keep the launcher alive forever. */
	signal(SIGALRM, SIG_DFL);
	{
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, SIGALRM);
		sigprocmask(SIG_UNBLOCK, &s, NULL);
	}
	alarm(FINAL_REAP_SECONDS);
	for (;;) {
		for_each_child_pid(l, kill_all_children);
		if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
			break;
	}
	spd_cgroups_destroy(l->cgroups);
	_exit(0);
}

static void on_signals(launcher *l)
{
	struct signalfd_siginfo si;

	for (;;) {
		ssize_t n = read(l->sigfd, &si, sizeof si);
		if (n != (ssize_t)sizeof si)
			break;
		if (si.ssi_signo == SIGHUP)
			die_with_front(l);
		/* SIGCHLD: reaped below. SIGINT/SIGTERM: the front decides. */
	}
	reap(l);
}

static void on_socket(launcher *l)
{
	spd_wire_hdr hdr;
	uint8_t *body = NULL;
	size_t len = 0;
	int rc = spd_wire_recv(l->sock, &hdr, &body, &len);

	if (rc <= 0) {
		if (rc == -EAGAIN || rc == -EINTR)
			return;
		die_with_front(l);
	}
	switch (hdr.type) {
	case SPD_WIRE_START:
		on_start(l, hdr.key, body, len);
		break;
	case SPD_WIRE_DESTROY:
		on_destroy(l, hdr.key, body, len);
		break;
	default:
		break;
	}
	free(body);
}

static _Noreturn void run(launcher *l)
{
	struct pollfd *pfd = NULL;
	child **owner = NULL;
	int **which = NULL;
	size_t cap = 0;

	for (;;) {
		size_t n = 2, need = 2 + l->cfg->target_count;
		for (child *c = l->children; c != NULL; c = c->next)
			need += 3;
		if (need > cap) {
			cap = need * 2;
			pfd = realloc(pfd, cap * sizeof *pfd);
			owner = realloc(owner, cap * sizeof *owner);
			which = realloc(which, cap * sizeof *which);
			if (pfd == NULL || owner == NULL || which == NULL)
				die_with_front(l);
		}
		bool read_children = l->outq.bytes < SPD__OUTQ_HIGH;

		pfd[0] = (struct pollfd){.fd = l->sigfd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = l->sock,
					 .events = (short)(POLLIN | (l->outq.head != NULL ? POLLOUT : 0))};
		/* Zygote sockets: owner NULL, which = &zygote.sock. */
		for (size_t i = 0; i < l->cfg->target_count; i++) {
			if (l->zygotes[i].sock < 0)
				continue;
			pfd[n] = (struct pollfd){.fd = l->zygotes[i].sock, .events = POLLIN};
			owner[n] = NULL;
			which[n] = &l->zygotes[i].sock;
			n++;
		}
		for (child *c = l->children; c != NULL && read_children; c = c->next) {
			int *fds[3] = {&c->fd_out, &c->fd_err, &c->fd_chan};
			for (int i = 0; i < 3; i++) {
				if (*fds[i] < 0)
					continue;
				pfd[n] = (struct pollfd){.fd = *fds[i], .events = POLLIN};
				owner[n] = c;
				which[n] = fds[i];
				n++;
			}
		}
		if (poll(pfd, n, poll_timeout_ms(l)) < 0 && errno != EINTR)
			die_with_front(l);
		on_deadlines(l);
		spd__zygotes_tick(l, spd_clock_mono_ns());
		for (size_t i = 2; i < n; i++) {
			if (pfd[i].revents == 0)
				continue;
			if (owner[i] == NULL)
				spd__zygote_readable(l, (size_t)((spd__zygote *)((char *)which[i] -
						     offsetof(spd__zygote, sock)) - l->zygotes));
			else
				spd__drain(l, owner[i], which[i]);
		}
		if (pfd[0].revents != 0)
			on_signals(l);
		if (pfd[1].revents & POLLOUT)
			spd_wire_outq_flush(&l->outq, l->sock);
		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))
			on_socket(l);
		report_finished(l);
		if (l->outq.head != NULL)
			spd_wire_outq_flush(&l->outq, l->sock);
	}
}

/* Threads of this process, from /proc/self/status; -1 if unknown. */
static int thread_count(void)
{
	char line[128];
	int n = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* Picks what enforces memory_limit (cgroup.h) and says so in the log. */
static void setup_cgroups(launcher *l, const char *force)
{
	int rc = spd_cgroups_create(force, &l->cgroups);

	if (rc == -EINVAL) {
		spd_log(SPD_LOG_WARN, "unknown SPAWND_MEMORY_LIMIT_MECHANISM; detecting",
			SPD_LOG_STR("value", force), SPD_LOG_END);
		rc = spd_cgroups_create(NULL, &l->cgroups);
	}
	if (rc < 0) {
		/* Out of memory at startup: NULL means RLIMIT_AS everywhere. */
		l->cgroups = NULL;
	}
	if (spd_cgroups_parent(l->cgroups) != NULL)
		spd_log(SPD_LOG_INFO, "memory limits",
			SPD_LOG_STR("memory_limit_mechanism",
				    spd_memory_mechanism_name(spd_cgroups_mechanism(l->cgroups))),
			SPD_LOG_STR("cgroup", spd_cgroups_parent(l->cgroups)), SPD_LOG_END);
	else
		spd_log(SPD_LOG_INFO, "memory limits",
			SPD_LOG_STR("memory_limit_mechanism",
				    spd_memory_mechanism_name(SPD_MEMORY_RLIMIT_AS)),
			SPD_LOG_STR("reason", spd_cgroups_reason(l->cgroups)), SPD_LOG_END);
}

/* Raises the soft RLIMIT_NOFILE to the hard one: the launcher holds
 * SPD_LAUNCHER_FDS_PER_PROCESS descriptors per running process, and the config
 * loader refused a max_running the hard limit cannot carry (config.h).
 * Children get their own open_files_limit (child.h). */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rlim_t was = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			spd_log(SPD_LOG_WARN, "cannot raise the launcher's open files limit",
				SPD_LOG_INT("soft", (int64_t)was), SPD_LOG_INT("hard", (int64_t)rl.rlim_max),
				SPD_LOG_STR("error", strerror(errno)), SPD_LOG_END);
	}
}

static _Noreturn void launcher_main(const spd_launcher_boot *boot, int sock)
{
	const spd_config *cfg = boot->cfg;
	launcher l = {.cfg = cfg, .sock = sock, .sigfd = -1, .devnull = -1};
	sigset_t mask;

	prctl(PR_SET_NAME, "spawnd-launcher");
	spd_log_setup(cfg->log_level, cfg->log_format == SPD_LOG_FORMAT_JSON, "launcher");
	/* SIGHUP is our parent-death signal; SIGINT/SIGTERM (a terminal's ^C reaches
	 * the whole foreground group) are left to the front, which destroys
	 * children and then closes the socket. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	l.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (l.sigfd < 0 || prctl(PR_SET_PDEATHSIG, SIGHUP) < 0 ||
	    prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		spd_log(SPD_LOG_ERROR, "launcher setup failed", SPD_LOG_STR("error", strerror(errno)),
			SPD_LOG_END);
		_exit(1);
	}
	/* The front died before PR_SET_PDEATHSIG: we were reparented. (Not a
	 * comparison with 1: the front may itself be PID 1, in a container.) */
	if (getppid() != boot->front)
		_exit(1);
	raise_fd_limit();
	spd_call_warm_up();
	l.worker = boot->worker != NULL && access(boot->worker, X_OK) == 0 ? strdup(boot->worker)
									      : NULL;
	l.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (l.devnull < 0 || spd_targets_prepare(cfg, &l.targets) < 0) {
		spd_log(SPD_LOG_ERROR, "launcher setup failed", SPD_LOG_STR("error", strerror(errno)),
			SPD_LOG_END);
		_exit(1);
	}
	/* The launcher forks without exec: that is safe only while it has one
	 * thread. A target library whose constructor started a thread breaks it. */
	if (thread_count() > 1) {
		spd_log(SPD_LOG_ERROR, "a target library started a thread in the launcher; "
				       "fork would be unsafe: use start_method spawn for it",
			SPD_LOG_INT("threads", thread_count()), SPD_LOG_END);
		_exit(1);
	}
	for (size_t i = 0; i < cfg->target_count; i++) {
		spd_prepared_target *t = &l.targets[i];
		if (t->error == NULL && l.worker == NULL && t->cfg->kind == SPD_TARGET_FUNCTION &&
		    t->cfg->limits.start_method == SPD_START_SPAWN)
			t->error = strdup("spawnd-worker not found next to spawnd (set SPAWND_WORKER)");
	}
	for (size_t i = 0; i < cfg->target_count; i++)
		if (l.targets[i].error != NULL)
			spd_log(SPD_LOG_WARN, "target unusable", SPD_LOG_STR("target", cfg->targets[i].name),
				SPD_LOG_STR("error", l.targets[i].error), SPD_LOG_END);
	l.zygotes = calloc(cfg->target_count ? cfg->target_count : 1, sizeof *l.zygotes);
	if (l.zygotes == NULL)
		_exit(1);
	for (size_t i = 0; i < cfg->target_count; i++)
		l.zygotes[i] = (spd__zygote){.pid = 0, .sock = -1, .backoff_ms = 0};
	setup_cgroups(&l, boot->memory_mechanism);
	send_hello(&l);
	spd__zygotes_boot(&l);
	run(&l);
}

int spd_launcher_exec_main(void)
{
	static spd_launcher_boot boot; /* lives as long as the launcher */
	size_t len = 0;
	uint8_t *data = NULL;
	int rc = spd_memfd_read(SPD_LAUNCHER_BOOT_FD, &data, &len);

	close(SPD_LAUNCHER_BOOT_FD);
	if (rc < 0) {
		fprintf(stderr, "spawnd-worker launcher: cannot read the boot data on fd %d\n",
			SPD_LAUNCHER_BOOT_FD);
		return 3;
	}
	rc = spd_launcher_boot_decode(data, len, &boot);
	free(data);
	if (rc < 0) {
		fprintf(stderr, "spawnd-worker launcher: bad boot data: %s\n", strerror(-rc));
		return 3;
	}
	/* Our own children must not get the socket. */
	if (fcntl(SPD_LAUNCHER_SOCK_FD, F_SETFD, FD_CLOEXEC) < 0) {
		fprintf(stderr, "spawnd-worker launcher: no socket on fd %d\n", SPD_LAUNCHER_SOCK_FD);
		return 3;
	}
	launcher_main(&boot, SPD_LAUNCHER_SOCK_FD);
}

/* ---- the front's side ----------------------------------------------------- */

extern char **environ;

/* spawnd-worker: $SPAWND_WORKER, else next to our own executable. NULL when
 * there is none (spawn targets then fail to launch, saying so). */
static char *find_worker(void)
{
	const char *env = getenv("SPAWND_WORKER");
	char exe[4096], path[4200];
	ssize_t n;
	char *slash;

	if (env != NULL && *env != '\0')
		return access(env, X_OK) == 0 ? strdup(env) : NULL;
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL)
		return NULL;
	*slash = '\0';
	snprintf(path, sizeof path, "%s/spawnd-worker", exe);
	return access(path, X_OK) == 0 ? strdup(path) : NULL;
}

int spd_launcher_fork(const spd_config *cfg, pid_t *pid, int *fd)
{
	static char *const empty_env[] = {NULL};
	char *argv[] = {(char *)"spawnd-launcher", (char *)"launcher", NULL};
	spd_wbuf b = SPD_WBUF_INIT;
	char *worker = find_worker();
	int sv[2] = {-1, -1}, memfd = -1, rc;
	pid_t p;

	if (worker == NULL)
		return -ENOENT;
	rc = spd_launcher_boot_encode(cfg, getpid(), worker,
				      getenv("SPAWND_MEMORY_LIMIT_MECHANISM"), environ, &b);
	if (rc == 0 && (memfd = spd_memfd_from(b.data, b.len)) < 0)
		rc = memfd;
	spd_wbuf_release(&b);
	if (rc == 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		rc = -errno;
	if (rc < 0)
		goto out;
	fflush(NULL);
	p = fork();
	if (p < 0) {
		rc = -errno;
		goto out;
	}
	if (p == 0) {
		/* Only async-signal-safe calls from here to exec. */
		sigset_t none;
		int s = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
		int m = fcntl(memfd, F_DUPFD_CLOEXEC, 10);

		if (s < 0 || m < 0 || dup2(s, SPD_LAUNCHER_SOCK_FD) < 0 ||
		    dup2(m, SPD_LAUNCHER_BOOT_FD) < 0)
			_exit(127);
		close_range(SPD_LAUNCHER_BOOT_FD + 1, ~0U, 0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(worker, argv, empty_env);
		_exit(127);
	}
	*pid = p;
	*fd = sv[0];
	sv[0] = -1;
out:
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (memfd >= 0)
		close(memfd);
	free(worker);
	return rc;
}
