#include "service/launcher/child.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "service/launcher/cgroup.h"
#include "service/target/call.h"
#include "service/target/channel.h"
#include "service/wire/messages.h"
#include "service/wire/wire.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

const char *spd_child_stage_name(int stage)
{
	static const char *const names[] = {
		[SPD_STAGE_SETPGID] = "setpgid",   [SPD_STAGE_SETGROUPS] = "setgroups",
		[SPD_STAGE_SETGID] = "setgid",     [SPD_STAGE_SETUID] = "setuid",
		[SPD_STAGE_PDEATHSIG] = "pdeathsig", [SPD_STAGE_NO_NEW_PRIVS] = "no_new_privs",
		[SPD_STAGE_RLIMIT] = "setrlimit",  [SPD_STAGE_DUP] = "dup2",
		[SPD_STAGE_CHDIR] = "chdir",       [SPD_STAGE_CGROUP] = "cgroup",
		[SPD_STAGE_EXEC] = "exec",         [SPD_STAGE_REQUEST] = "request",
	};

	if (stage <= 0 || stage > SPD_STAGE_REQUEST)
		return "setup";
	return names[stage];
}

/* Only async-signal-safe calls from here to exec: the launcher is single-threaded,
 * but an exec child is the template that zygotes and spawn workers share, and
 * staying safe keeps that true. */
/* Where a failing child reports: the current numbers of the exec-error pipe
 * and of the channel (they move during setup). Per child process. */
static int report_errpipe = -1, report_chan = -1;

static _Noreturn void fail(const spd_child_spec *s, int stage, int err)
{
	(void)s;
	if (report_errpipe >= 0) {
		int rec[2] = {stage, err};
		(void)!write(report_errpipe, rec, sizeof rec);
	} else if (report_chan >= 0) {
		char buf[256];
		const char *name = spd_child_stage_name(stage);
		const char *msg = strerror(err);
		size_t a = strlen(name), b = strlen(msg);
		if (a + b + 2 > sizeof buf)
			b = sizeof buf - a - 2;
		memcpy(buf, name, a + 1);
		memcpy(buf + a + 1, msg, b);
		buf[a + 1 + b] = '\0';
		spd_channel_write(report_chan, SPD_CHAN_SETUP_FAILED, buf, a + b + 2);
	}
	_exit(127);
}

/* dup2 that also works when FROM == TO (then dup2 would keep O_CLOEXEC set). */
static int move_fd(int from, int to)
{
	if (from == to)
		return fcntl(to, F_SETFD, 0);
	return dup2(from, to) < 0 ? -1 : 0;
}

/* A limit only ever tightens: where the current hard limit is already lower
 * than asked (a container's ulimit, valgrind's reserved fds), it stays, since
 * raising it needs a privilege we should not use for this. */
static int set_limit(int resource, rlim_t soft, rlim_t hard)
{
	struct rlimit cur, rl = {soft, hard};

	if (getrlimit(resource, &cur) < 0)
		return -1;
	if (cur.rlim_max != RLIM_INFINITY) {
		if (rl.rlim_max > cur.rlim_max)
			rl.rlim_max = cur.rlim_max;
		if (rl.rlim_cur > rl.rlim_max)
			rl.rlim_cur = rl.rlim_max;
	}
	if (setrlimit(resource, &rl) == 0)
		return 0;
	/* Some environments refuse any change of a hard limit (valgrind does for
	 * RLIMIT_NOFILE); the soft limit alone can always be lowered. */
	if (errno != EPERM)
		return -1;
	rl.rlim_max = cur.rlim_max;
	return setrlimit(resource, &rl);
}

static int apply_limits(const spd_target_limits *l, bool memory_as, bool cpu)
{
	if (l->open_files_limit != 0 && set_limit(RLIMIT_NOFILE, (rlim_t)l->open_files_limit, (rlim_t)l->open_files_limit) < 0)
		return -1;
	/* Soft limit: SIGXCPU, which kills unless handled, and names the cause.
	 * One second later the hard limit's SIGKILL ends a child that ignores it. */
	if (cpu && l->cpu_time_limit_ms > 0) {
		rlim_t secs = (rlim_t)((l->cpu_time_limit_ms + 999) / 1000);
		if (set_limit(RLIMIT_CPU, secs, secs + 1) < 0)
			return -1;
	}
	if (memory_as && l->memory_limit != 0 &&
	    set_limit(RLIMIT_AS, (rlim_t)l->memory_limit, (rlim_t)l->memory_limit) < 0)
		return -1;
	return 0;
}

/* Moves *FD (if open) to a number >= 10, O_CLOEXEC; the original is left to
 * close at exec or at close_range. */
static int lift(int *fd)
{
	int n;

	if (*fd < 0 || *fd >= 10)
		return 0;
	n = fcntl(*fd, F_DUPFD_CLOEXEC, 10);
	if (n < 0)
		return -1;
	*fd = n;
	return 0;
}

int spd_prestart_call_encode(const spd_start_req *req, spd_wbuf *out)
{
	spd_wbuf body = SPD_WBUF_INIT;

	spd_start_req_encode(req, &body);
	if (body.err == 0 && body.len > SPD_WIRE_MAX_BODY)
		body.err = -EMSGSIZE;
	if (body.err != 0) {
		out->err = body.err;
	} else {
		spd_wbuf_bytes(out, body.data, body.len); /* a u64 length, the bytes */
	}
	spd_wbuf_release(&body);
	return out->err;
}

/* Reads exactly N bytes; the count read (short only at EOF or an error). */
static size_t read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/* A pre-started child, set up: waits for its one call (blocked in read(),
 * not spinning) and decodes it into *REQ. The launcher is single-threaded, so
 * this child may allocate. */
static void wait_for_call(const spd_child_spec *s, spd_start_req *req)
{
	uint64_t len = 0;
	uint8_t *body;
	int rc;

	if (read_full(SPD_PRESTART_REQ_FD, &len, sizeof len) != sizeof len)
		_exit(0); /* let go before any call: nothing ran */
	if (len > SPD_WIRE_MAX_BODY)
		fail(s, SPD_STAGE_REQUEST, EMSGSIZE);
	body = malloc(len ? len : 1);
	if (body == NULL)
		fail(s, SPD_STAGE_REQUEST, ENOMEM);
	if (read_full(SPD_PRESTART_REQ_FD, body, len) != len)
		fail(s, SPD_STAGE_REQUEST, EPIPE);
	close(SPD_PRESTART_REQ_FD);
	rc = spd_start_req_decode(req, body, len);
	free(body);
	if (rc < 0)
		fail(s, SPD_STAGE_REQUEST, -rc);
}

static int env_build(const spd_child_spec *spec, char ***envp, char **owned);

static _Noreturn void child_main(const spd_child_spec *s, pid_t launcher, char **envp)
{
	const spd_prepared_target *t = s->target;
	const spd_target_config *tc = t->cfg;
	struct {
		int in, out, err, chan, spec, errpipe, req;
	} fds = {s->fd_stdin, s->fd_stdout, s->fd_stderr, s->fd_chan, s->fd_spec, s->fd_errpipe,
		 s->prestart ? s->fd_request : -1};
	const spd_start_req *req = s->req;
	spd_start_req call;
	struct sigaction dfl;
	sigset_t none;
	int keep = SPD_CHANNEL_FD + 1;

	report_errpipe = s->fd_errpipe;
	report_chan = s->fd_chan;

	if (setpgid(0, 0) < 0)
		fail(s, SPD_STAGE_SETPGID, errno);
	/* Into the memory cgroup before anything else: all the target allocates,
	 * and everything it forks, is charged to it. */
	if (s->join_cgroup) {
		int rc = spd_cgroups_join(s->fd_cgroup);
		if (rc < 0)
			fail(s, SPD_STAGE_CGROUP, -rc);
		close(s->fd_cgroup);
	}
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);

	if (t->set_gid || t->set_uid) {
		if (setgroups((size_t)t->ngroups, t->ngroups > 0 ? t->groups : NULL) < 0)
			fail(s, SPD_STAGE_SETGROUPS, errno);
		if (t->set_gid && setgid(t->gid) < 0)
			fail(s, SPD_STAGE_SETGID, errno);
		if (t->set_uid && setuid(t->uid) < 0)
			fail(s, SPD_STAGE_SETUID, errno);
	}
	/* After the privilege drop: setuid() clears the parent-death signal. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		fail(s, SPD_STAGE_PDEATHSIG, errno);
	if (getppid() != launcher)
		_exit(127); /* the launcher died before the line above */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail(s, SPD_STAGE_NO_NEW_PRIVS, errno);
	if (apply_limits(&tc->limits, !s->join_cgroup && !s->no_memory_rlimit, !s->no_cpu_rlimit) < 0)
		fail(s, SPD_STAGE_RLIMIT, errno);
	if (tc->cwd != NULL && chdir(tc->cwd) < 0)
		fail(s, SPD_STAGE_CHDIR, errno);
	umask((mode_t)tc->umask);

	/* Lift every descriptor we were given above the numbers they move to, so
	 * that no move clobbers another (the parent's fds may be 3 or 4). */
	if (lift(&fds.in) < 0 || lift(&fds.out) < 0 || lift(&fds.err) < 0 ||
	    lift(&fds.chan) < 0 || lift(&fds.spec) < 0 || lift(&fds.errpipe) < 0 ||
	    lift(&fds.req) < 0)
		fail(s, SPD_STAGE_DUP, errno);
	report_errpipe = fds.errpipe;
	report_chan = fds.chan;
	if (move_fd(fds.in, 0) < 0 || move_fd(fds.out, 1) < 0 || move_fd(fds.err, 2) < 0)
		fail(s, SPD_STAGE_DUP, errno);

	if (s->exec_argv != NULL) {
		int keep = 3;
		if (fds.chan >= 0) {
			if (move_fd(fds.chan, SPD_CHANNEL_FD) < 0)
				fail(s, SPD_STAGE_DUP, errno);
			report_chan = SPD_CHANNEL_FD;
			keep = SPD_CHANNEL_FD + 1;
		}
		if (fds.spec >= 0) {
			if (move_fd(fds.spec, SPD_WORKER_SPEC_FD) < 0)
				fail(s, SPD_STAGE_DUP, errno);
			keep = SPD_WORKER_SPEC_FD + 1;
		}
		/* Everything else closes at exec, the error pipe included: its EOF
		 * tells the parent that exec happened. */
		if (close_range((unsigned)keep, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
			for (int fd = keep; fd < 1024; fd++)
				if (fd != report_errpipe)
					close(fd);
		}
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(s->exec_argv[0], s->exec_argv, envp);
		fail(s, SPD_STAGE_EXEC, errno);
	}

	if (move_fd(fds.chan, SPD_CHANNEL_FD) < 0)
		fail(s, SPD_STAGE_DUP, errno);
	report_chan = SPD_CHANNEL_FD;
	if (s->prestart) {
		char idle[16];

		if (move_fd(fds.req, SPD_PRESTART_REQ_FD) < 0)
			fail(s, SPD_STAGE_DUP, errno);
		keep = SPD_PRESTART_REQ_FD + 1;
		/* "i:TARGET" while it waits, like a zygote's "z:TARGET": ps tells
		 * idle children from running ones. */
		snprintf(idle, sizeof idle, "i:%s", tc->name);
		prctl(PR_SET_NAME, idle);
	} else {
		/* Named after its target (first 15 bytes) rather than
		 * "spawnd-launcher", so that ps and pgrep tell children from the
		 * launcher. */
		prctl(PR_SET_NAME, tc->name);
	}
	close_range((unsigned)keep, ~0U, 0);
	environ = envp;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (s->prestart) {
		spd_child_spec now = *s;
		char *owned;

		wait_for_call(s, &call);
		req = &call;
		/* Its environment as a fresh child's: TRACEPARENT, when the call
		 * carries one, is set before the function runs. */
		now.req = req;
		if (env_build(&now, &envp, &owned) < 0)
			fail(s, SPD_STAGE_REQUEST, ENOMEM);
		environ = envp;
		prctl(PR_SET_NAME, tc->name);
	}
	{
		spd_call_args args = {
			.process_id = req->process_id,
			.argv = (const char *const *)req->argv,
			.argc = (int)req->argc,
			.input = req->input,
			.input_len = req->input_len,
			.labels = (const char *const *)req->labels,
			.max_result_bytes = tc->limits.max_result_bytes,
			.memory_limit = tc->limits.memory_limit,
			.channel_fd = SPD_CHANNEL_FD,
		};
		_exit(spd_call_run(t->fn, &args));
	}
}

#define TRACEPARENT_VAR "TRACEPARENT="

/* The child's environment: its target's, and TRACEPARENT when the request
 * carried one (SPEC §12), replacing the target's own if it set one. Built
 * before fork (STYLE: nothing allocates between fork and exec). *ENVP is the
 * target's own vector when there is nothing to add (*OWNED NULL), else a new
 * one (entries borrowed but the last) to free with env_release. */
static int env_build(const spd_child_spec *spec, char ***envp, char **owned)
{
	char **base = spec->target->envp;
	const char *tp = spec->req != NULL ? spec->req->traceparent : NULL;
	size_t n = 0, k = 0;
	char **v;

	*envp = base;
	*owned = NULL;
	if (tp == NULL || tp[0] == '\0')
		return 0;
	while (base != NULL && base[n] != NULL)
		n++;
	v = calloc(n + 2, sizeof *v);
	*owned = malloc(strlen(TRACEPARENT_VAR) + strlen(tp) + 1);
	if (v == NULL || *owned == NULL) {
		free(v);
		free(*owned);
		*owned = NULL;
		return -ENOMEM;
	}
	strcpy(*owned, TRACEPARENT_VAR);
	strcat(*owned, tp);
	for (size_t i = 0; i < n; i++)
		if (strncmp(base[i], TRACEPARENT_VAR, strlen(TRACEPARENT_VAR)) != 0)
			v[k++] = base[i];
	v[k] = *owned;
	*envp = v;
	return 0;
}

static void env_release(char **envp, char *owned, const spd_child_spec *spec)
{
	if (envp != spec->target->envp)
		free(envp);
	free(owned);
}

pid_t spd_child_fork(const spd_child_spec *spec)
{
	pid_t launcher = getpid();
	char **envp, *owned;
	pid_t pid;
	int rc = env_build(spec, &envp, &owned);

	if (rc < 0)
		return rc;
	fflush(NULL); /* nothing buffered may be written twice */
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		env_release(envp, owned, spec);
		return rc;
	}
	if (pid == 0)
		child_main(spec, launcher, envp);
	env_release(envp, owned, spec);
	/* Also here, so that the group exists before fork() returns to the caller,
	 * whichever of the two runs first; EACCES after the child exec'd is fine. */
	setpgid(pid, pid);
	return pid;
}

/* Signals whose default action is not to terminate the process. */
static bool fatal_by_default(int sig)
{
	switch (sig) {
	case SIGCHLD:
	case SIGCONT:
	case SIGURG:
	case SIGWINCH:
	case SIGSTOP:
	case SIGTSTP:
	case SIGTTIN:
	case SIGTTOU:
		return false;
	default:
		return sig > 0 && sig < 65;
	}
}

bool spd_signal_would_kill(pid_t pid, int sig, bool blocked_is_fatal)
{
	char path[64], line[256];
	unsigned long long blk = 0, ign = 0, cgt = 0, bit;
	int found = 0;
	FILE *f;

	if (sig == SIGKILL)
		return true;
	if (!fatal_by_default(sig))
		return false;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return false;
	while (fgets(line, sizeof line, f) != NULL) {
		found += sscanf(line, "SigBlk: %llx", &blk) == 1;
		found += sscanf(line, "SigIgn: %llx", &ign) == 1;
		found += sscanf(line, "SigCgt: %llx", &cgt) == 1;
	}
	fclose(f);
	bit = 1ULL << (sig - 1);
	if (blocked_is_fatal)
		blk = 0;
	return found == 3 && !((blk | ign | cgt) & bit);
}

uint32_t spd_sent_flags_after_exit(uint32_t flags, int status, bool stop_fatal)
{
	if (!WIFEXITED(status))
		return flags;
	flags &= ~(uint32_t)SPD_EXIT_SENT_KILL;
	if (stop_fatal)
		flags &= ~(uint32_t)SPD_EXIT_SENT_STOP;
	return flags;
}
