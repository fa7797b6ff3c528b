/* Starting a child, step by step (see launcher_impl.h): its pipes, its stdin,
 * its argv, then either its zygote (forkserver) or its memory cgroup, a fork
 * and the wait for exec. Each step names itself in LAUNCH errors ("pipe:
 * Too many open files", not a "fork" that never happened). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "service/common/clock.h"
#include "service/common/log.h"
#include "service/launcher/cgroup.h"
#include "service/launcher/child.h"
#include "service/launcher/launcher_impl.h"
#include "service/wire/messages.h"
#include "service/launcher/target_spec.h"
#include "service/wire/wire.h"

/* What a start holds. [0] ends are ours (they go to the child struct once it
 * runs); [1] ends and the other fds are the child's, closed once it has them. */
typedef struct launch {
	int out[2], err[2], chan[2], errpipe[2];
	int fd_in, fd_spec, fd_cgroup;
	char **argv;
	const char *stage;  /* the step being taken, for a LAUNCH error */
	const char *msg;    /* its message; NULL: strerror */
} launch;

#define LAUNCH_INIT {{-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}, -1, -1, -1, NULL, "pipe", NULL}

static bool is_spawn(const spd_target_config *tc)
{
	return tc->kind == SPD_TARGET_FUNCTION && tc->limits.start_method == SPD_START_SPAWN;
}

static bool is_forkserver(const spd_target_config *tc)
{
	return tc->kind == SPD_TARGET_FUNCTION && tc->limits.start_method == SPD_START_FORKSERVER;
}

/* stdout, stderr; the exec-error pipe of what execs; a function's channel. */
static int make_pipes(const spd_target_config *tc, launch *s)
{
	int rc;

	s->stage = "pipe";
	if ((rc = spd__pipe(s->out)) < 0 || (rc = spd__pipe(s->err)) < 0)
		return rc;
	if ((tc->kind == SPD_TARGET_EXEC || is_spawn(tc)) && pipe2(s->errpipe, O_CLOEXEC) < 0)
		return -errno;
	if (tc->kind == SPD_TARGET_FUNCTION)
		return spd__pipe(s->chan);
	return 0;
}

/* An exec child reads the request input from a memfd; a function gets /dev/null. */
static int make_stdin(spd__launcher *l, spd__child *c, launch *s)
{
	if (c->target->cfg->kind == SPD_TARGET_EXEC) {
		s->stage = "memfd";
		s->fd_in = spd_memfd_from(c->req.input, c->req.input_len);
		return s->fd_in < 0 ? s->fd_in : 0;
	}
	s->stage = "stdin";
	s->fd_in = fcntl(l->devnull, F_DUPFD_CLOEXEC, 0);
	return s->fd_in < 0 ? -errno : 0;
}

/* An exec target's argv: the configured one, then the request's. */
static int make_exec_argv(const spd__child *c, launch *s)
{
	const spd_target_config *tc = c->target->cfg;
	size_t n = 0;

	if (tc->kind != SPD_TARGET_EXEC)
		return 0;
	s->stage = "argv";
	s->argv = calloc(tc->exec_argc + c->req.argc + 1, sizeof *s->argv);
	if (s->argv == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < tc->exec_argc; i++)
		s->argv[n++] = tc->exec_argv[i];
	for (uint32_t i = 0; i < c->req.argc; i++)
		s->argv[n++] = c->req.argv[i];
	return 0;
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

/* A spawn target runs `spawnd-worker call` with its spec on fd 4. */
static int make_spawn_argv(spd__launcher *l, const spd__child *c, launch *s)
{
	if (!is_spawn(c->target->cfg))
		return 0;
	s->stage = "spawn";
	if (l->worker == NULL) {
		s->msg = "spawnd-worker not found (set SPAWND_WORKER)";
		return -ENOENT;
	}
	s->stage = "memfd";
	if ((s->fd_spec = spec_memfd(c->target, &c->req)) < 0)
		return s->fd_spec;
	s->stage = "argv";
	s->argv = calloc(3, sizeof *s->argv);
	if (s->argv == NULL)
		return -ENOMEM;
	s->argv[0] = l->worker;
	s->argv[1] = (char *)"call";
	return 0;
}

/* Its memory cgroup, when memory_limit is enforced by one: the child joins it
 * through s->fd_cgroup. C's cgroup is removed once C is reported, even if the
 * start fails after this. */
static int make_cgroup(spd__launcher *l, spd__child *c, launch *s)
{
	const spd_target_config *tc = c->target->cfg;
	int rc;

	if (!spd__uses_cgroup(l, tc))
		return 0;
	s->stage = "cgroup";
	rc = spd_cgroups_add(l->cgroups, c->key, tc->limits.memory_limit, &s->fd_cgroup);
	if (rc == 0)
		c->cgroup = true;
	return rc;
}

/* Our ends of the pipes go to C, which drains them from now on. */
static void give_pipes(spd__child *c, launch *s)
{
	c->fd_out = s->out[0];
	c->fd_err = s->err[0];
	c->fd_chan = s->chan[0];
	s->out[0] = s->err[0] = s->chan[0] = -1;
}

/* Forkserver: SPAWN to its zygote; RUNNING begins when it says the pid. */
static int hand_to_zygote(spd__launcher *l, spd__child *c, launch *s)
{
	size_t t = c->slot;
	int fds[5] = {s->fd_in, s->out[1], s->err[1], s->chan[1], -1};
	int rc = make_cgroup(l, c, s);

	if (rc < 0)
		return rc;
	fds[4] = s->fd_cgroup;
	s->stage = "zygote";
	c->rep.started_ns = spd_clock_real_ns();
	rc = spd__zygote_spawn(l, t, c->key, &c->req, fds, fds[4] >= 0 ? 5 : 4, &s->msg);
	if (rc < 0)
		return rc;
	c->zygote = (int)t;
	give_pipes(c, s);
	return 0;
}

static int fork_child(spd__child *c, launch *s)
{
	spd_child_spec spec = {
		.target = c->target,
		.req = &c->req,
		.exec_argv = s->argv,
		.fd_stdin = s->fd_in,
		.fd_stdout = s->out[1],
		.fd_stderr = s->err[1],
		.fd_chan = s->chan[1],
		.fd_spec = s->fd_spec,
		.fd_errpipe = s->errpipe[1],
		.join_cgroup = s->fd_cgroup >= 0,
		.fd_cgroup = s->fd_cgroup,
	};
	pid_t pid;

	s->stage = "fork";
	c->rep.started_ns = spd_clock_real_ns();
	pid = spd_child_fork(&spec);
	if (pid < 0)
		return pid;
	c->pid = pid;
	c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* O_CLOEXEC by definition */
	give_pipes(c, s);
	return 0;
}

/* What execs: blocks until exec or its failure, a few ms at most (git and
 * libuv do the same). A failure is C's LAUNCH error; its pid is reaped. */
static void wait_for_exec(spd__child *c, launch *s)
{
	int rec[2];
	ssize_t n;

	if (s->errpipe[0] < 0)
		return;
	spd__close_fd(&s->errpipe[1]);
	do
		n = read(s->errpipe[0], rec, sizeof rec);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof rec) {
		c->rep.flags |= SPD_EXIT_LAUNCH_FAILED;
		spd__set_launch_error(c, spd_child_stage_name(rec[0]), rec[1], NULL);
	}
}

static void launch_release(launch *s)
{
	int *fds[] = {&s->out[0], &s->out[1], &s->err[0], &s->err[1], &s->chan[0], &s->chan[1],
		      &s->errpipe[0], &s->errpipe[1], &s->fd_in, &s->fd_spec, &s->fd_cgroup};

	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		spd__close_fd(fds[i]);
	free(s->argv);
}

spd__child_state spd__launch(spd__launcher *l, spd__child *c)
{
	const spd_target_config *tc = c->target->cfg;
	spd__child_state next = SPD__CHILD_DONE;
	launch s = LAUNCH_INIT;
	int rc;

	/* A pre-started child takes it if one waits (prestart.c): nothing is
	 * forked on this path. */
	if (tc->prestart > 0 && spd__idle_take(l, c)) {
		spd__child_running(l, c);
		spd_log(SPD_LOG_DEBUG, "child started", SPD_LOG_STR("process_id", c->req.process_id),
			SPD_LOG_STR("target", tc->name), SPD_LOG_INT("pid", c->pid),
			SPD_LOG_STR("prestarted", "true"), SPD_LOG_END);
		return SPD__CHILD_RUNNING;
	}
	if ((rc = make_pipes(tc, &s)) < 0 || (rc = make_stdin(l, c, &s)) < 0 ||
	    (rc = make_exec_argv(c, &s)) < 0)
		goto out;
	if (is_forkserver(tc)) {
		if ((rc = hand_to_zygote(l, c, &s)) == 0)
			next = SPD__CHILD_SPAWNING;
		goto out;
	}
	if ((rc = make_spawn_argv(l, c, &s)) < 0 || (rc = make_cgroup(l, c, &s)) < 0 ||
	    (rc = fork_child(c, &s)) < 0)
		goto out;
	/* The child has its ends: close ours of them before waiting for exec. */
	spd__close_fd(&s.out[1]);
	spd__close_fd(&s.err[1]);
	spd__close_fd(&s.chan[1]);
	spd__close_fd(&s.fd_in);
	spd__close_fd(&s.fd_spec);
	spd__close_fd(&s.fd_cgroup);
	wait_for_exec(c, &s);
	next = SPD__CHILD_RUNNING;
	if (!(c->rep.flags & SPD_EXIT_LAUNCH_FAILED)) {
		spd__child_running(l, c);
		spd_log(SPD_LOG_DEBUG, "child started", SPD_LOG_STR("process_id", c->req.process_id),
			SPD_LOG_STR("target", tc->name), SPD_LOG_INT("pid", c->pid), SPD_LOG_END);
	}
out:
	if (rc < 0) {
		c->rep.flags |= SPD_EXIT_LAUNCH_FAILED;
		spd__set_launch_error(c, s.stage, -rc, s.msg);
	}
	launch_release(&s);
	return next;
}
