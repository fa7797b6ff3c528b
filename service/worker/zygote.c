/* The forkserver zygote: a clean process that loaded only its target's
 * library, and forks that target's children on the launcher's request.
 *
 * It is single-threaded (forking without exec is safe), polls its socket to the
 * launcher (fd 3) and a signalfd for SIGCHLD, reaps its own children and
 * forwards {status, rusage}. Like the launcher, it sees a leader's exit with
 * WNOWAIT and SIGKILLs what is left of its group before reaping it, so a group
 * is never signalled after its id could be reused. It is not a subreaper:
 * orphans of its children go to the launcher, which kills them as strays.
 * When the launcher goes away (EOF, or PR_SET_PDEATHSIG) it kills every group
 * and exits; its children die with it through their own PR_SET_PDEATHSIG.
 */
#include "service/worker/zygote.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "service/common/children.h"
#include "service/launcher/child.h"
#include "service/target/call.h"
#include "service/target/channel.h"
#include "service/wire/messages.h"
#include "service/wire/wire.h"
#include "service/wire/zygote_frames.h"

#define SOCK 3

typedef struct zchild {
	uint64_t key;
	pid_t pid;
	uint32_t sent;   /* SPD_EXIT_SENT_STOP/KILL: a signal reached it alive */
	bool stop_fatal; /* the stop signal would have killed it when sent */
} zchild;

typedef struct zygote {
	const spd_target_spec *spec;
	int sigfd;
	/* Replies wait here when the socket is full: the zygote keeps reading
	 * SPAWN frames, so a launcher blocked sending one always gets through. */
	spd_wire_outq outq;
	zchild *kids;
	size_t nkids, cap;
} zygote;

static _Noreturn void die(zygote *z)
{
	for (size_t i = 0; i < z->nkids; i++)
		kill(-z->kids[i].pid, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	_exit(0);
}

static zchild *find(zygote *z, uint64_t key)
{
	for (size_t i = 0; i < z->nkids; i++)
		if (z->kids[i].key == key)
			return &z->kids[i];
	return NULL;
}

static void send_started(zygote *z, uint64_t key, int32_t pid_or_err)
{
	spd_zygote_started_msg m = {.pid_or_err = pid_or_err};
	spd_wbuf b = SPD_WBUF_INIT;

	spd_zygote_started_msg_encode(&m, &b);
	spd_wire_outq_send(&z->outq, SOCK, SPD_ZYGOTE_STARTED, key, &b);
}

/* Forks CS's child for KEY, keeps it among the kids (to reap and signal by
 * key) and says STARTED with its pid or -errno. */
static void fork_kid(zygote *z, uint64_t key, const spd_child_spec *cs)
{
	pid_t pid;

	if (z->nkids == z->cap) {
		size_t cap = z->cap ? 2 * z->cap : 16;
		zchild *k = realloc(z->kids, cap * sizeof *k);
		if (k == NULL) {
			send_started(z, key, -ENOMEM);
			return;
		}
		z->kids = k;
		z->cap = cap;
	}
	pid = spd_child_fork(cs);
	if (pid > 0)
		z->kids[z->nkids++] = (zchild){.key = key, .pid = pid};
	send_started(z, key, pid);
}

/* The child spec both kinds of child share: stdio and the channel in FDS[0..3],
 * the memory cgroup's cgroup.procs in FDS[CGROUP] when there are more than
 * CGROUP descriptors. */
static spd_child_spec kid_spec(const zygote *z, const int *fds, size_t nfds, size_t cgroup)
{
	return (spd_child_spec){
		.target = &z->spec->prepared,
		.req = NULL,
		.exec_argv = NULL,
		.fd_stdin = fds[0],
		.fd_stdout = fds[1],
		.fd_stderr = fds[2],
		.fd_chan = fds[3],
		.fd_spec = -1,
		.fd_errpipe = -1,
		.join_cgroup = nfds > cgroup,
		.fd_cgroup = nfds > cgroup ? fds[cgroup] : -1,
	};
}

static void on_spawn(zygote *z, uint64_t key, const uint8_t *body, size_t len, int *fds,
		     size_t nfds)
{
	spd_start_req req;
	spd_child_spec cs;

	if ((nfds != 4 && nfds != 5) || spd_start_req_decode(&req, body, len) < 0) {
		send_started(z, key, -EBADMSG);
		return;
	}
	cs = kid_spec(z, fds, nfds, 4);
	cs.req = &req;
	fork_kid(z, key, &cs);
	spd_start_req_release(&req);
}

/* PRESTART: a pre-started child (launcher/prestart.c), which waits on its
 * request pipe (fds[4]) for a call the launcher writes there itself: the
 * zygote only forks it, reaps it and signals it, by KEY, like any other. */
static void on_prestart(zygote *z, uint64_t key, int *fds, size_t nfds)
{
	spd_child_spec cs;

	if (nfds != 5 && nfds != 6) {
		send_started(z, key, -EBADMSG);
		return;
	}
	cs = kid_spec(z, fds, nfds, 5);
	cs.prestart = true;
	cs.fd_request = fds[4];
	fork_kid(z, key, &cs);
}

static void on_signal(zygote *z, uint64_t key, const uint8_t *body, size_t len)
{
	spd_zygote_signal_msg m;
	zchild *k = find(z, key);
	int sig;

	if (k == NULL || spd_zygote_signal_msg_decode(&m, body, len) < 0)
		return; /* already reaped and reported */
	sig = m.sig;
	/* Exited on its own already (a zombie, reaped on the next SIGCHLD):
	 * the destroy did not end it, and the report must not say so. */
	if (spd_child_exited(k->pid))
		return;
	if (sig != SIGKILL && !(k->sent & SPD_EXIT_SENT_STOP))
		k->stop_fatal = spd_signal_would_kill(k->pid, sig, true); /* function children */
	/* Unreaped: its pid still pins the group id. */
	if (kill(-k->pid, sig) < 0 && errno == ESRCH)
		kill(k->pid, sig);
	k->sent |= sig == SIGKILL ? SPD_EXIT_SENT_KILL : SPD_EXIT_SENT_STOP;
}

static size_t kid_index(const zygote *z, pid_t pid)
{
	size_t i;

	for (i = 0; i < z->nkids && z->kids[i].pid != pid; i++)
		;
	return i;
}

static bool is_kid(pid_t pid, void *ctx)
{
	zygote *z = ctx;

	return kid_index(z, pid) < z->nkids;
}

static void reap(zygote *z)
{
	for (;;) {
		struct rusage ru;
		spd_zygote_exited_msg m;
		spd_wbuf b = SPD_WBUF_INIT;
		int status;
		pid_t pid;
		size_t i;

		/* Each leader's group is SIGKILLed while its pid still pins it. */
		if (spd_children_reap_one(is_kid, z, &pid, &status, &ru) <= 0)
			return;
		i = kid_index(z, pid);
		if (i == z->nkids)
			continue;
		m = (spd_zygote_exited_msg){
			.wait_status = status,
			.utime_us = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
			.stime_us = (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec,
			.maxrss_bytes = (int64_t)ru.ru_maxrss * 1024,
			.sent = spd_sent_flags_after_exit(z->kids[i].sent, status,
							  z->kids[i].stop_fatal),
		};
		spd_zygote_exited_msg_encode(&m, &b);
		spd_wire_outq_send(&z->outq, SOCK, SPD_ZYGOTE_EXITED, z->kids[i].key, &b);
		z->kids[i] = z->kids[--z->nkids];
	}
}

int spd_zygote_run(const spd_target_spec *spec)
{
	zygote z = {.spec = spec, .sigfd = -1};
	sigset_t mask;
	char name[16];

	snprintf(name, sizeof name, "z:%s", spec->cfg.name);
	prctl(PR_SET_NAME, name);
	/* The launcher set PR_SET_PDEATHSIG(SIGKILL) before exec; exec keeps it. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	z.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (z.sigfd < 0)
		return 1;
	spd_call_warm_up();
	spd_child_note_dispositions();
	/* Its target is loaded (worker.c): the launcher may say SERVING again. */
	{
		spd_wbuf b = SPD_WBUF_INIT;
		spd_wire_outq_send(&z.outq, SOCK, SPD_ZYGOTE_READY, 0, &b);
	}
	for (;;) {
		struct pollfd p[2] = {
			{.fd = SOCK, .events = (short)(POLLIN | (z.outq.head != NULL ? POLLOUT : 0))},
			{.fd = z.sigfd, .events = POLLIN},
		};

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			die(&z);
		if (p[1].revents) {
			struct signalfd_siginfo si;
			while (read(z.sigfd, &si, sizeof si) == (ssize_t)sizeof si)
				;
			reap(&z);
		}
		if (p[0].revents & POLLOUT)
			spd_wire_outq_flush(&z.outq, SOCK);
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			spd_wire_hdr hdr;
			uint8_t *body = NULL;
			size_t len = 0, nfds = 0;
			int fds[SPD_WIRE_MAX_FDS];
			int rc = spd_wire_recv_fds(SOCK, &hdr, &body, &len, fds, &nfds);

			if (rc <= 0)
				die(&z);
			if (hdr.type == SPD_ZYGOTE_SPAWN)
				on_spawn(&z, hdr.key, body, len, fds, nfds);
			else if (hdr.type == SPD_ZYGOTE_PRESTART)
				on_prestart(&z, hdr.key, fds, nfds);
			else if (hdr.type == SPD_ZYGOTE_SIGNAL)
				on_signal(&z, hdr.key, body, len);
			for (size_t i = 0; i < nfds; i++)
				close(fds[i]);
			free(body);
		}
	}
}
