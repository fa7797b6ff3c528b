/* Forkserver zygotes, seen from the launcher (see launcher_impl.h).
 *
 * A forkserver target has one zygote: `spawnd-worker zygote`, started like a
 * child (own group, PR_SET_PDEATHSIG, the target's limits, user, cwd and
 * environment, which its children inherit) with a SOCK_SEQPACKET socket on its
 * fd 3 and the target spec on fd 4. It is started at boot or on first use
 * (zygote_start). A process is handed to it with SPAWN and the child ends of
 * its pipes; the launcher keeps the read ends, so output and results are
 * drained exactly as for fork. Signals go through the zygote, which alone
 * knows whether the child is reaped. When a zygote dies its children die too
 * (their parent-death signal) and end FAILED/LOST; it is restarted with an
 * exponential backoff, and the target reports NOT_SERVING until it is back.
 *
 * This file knows zygotes, not children: what a zygote says about a child
 * (STARTED, EXITED) or its death comes back to the loop as spd__zygote_news,
 * which the loop gives to the child table (lifecycle.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "service/common/clock.h"
#include "service/common/log.h"
#include "service/launcher/child.h"
#include "service/launcher/launcher_impl.h"
#include "service/launcher/target_spec.h"
#include "service/wire/wire.h"
#include "service/wire/zygote_frames.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
/* A zygote that stayed up this long restarts from the minimum backoff. */
#define STABLE_NS (10LL * 1000000000LL)

static bool is_forkserver(const spd_target_config *t)
{
	return t->kind == SPD_TARGET_FUNCTION && t->limits.start_method == SPD_START_FORKSERVER;
}

bool spd__zygote_is(const spd__launcher *l, pid_t pid)
{
	for (size_t i = 0; i < l->nslots; i++)
		if (l->slots[i] != NULL && l->slots[i]->z.pid == pid && pid > 0)
			return true;
	return false;
}

/* Starts zygote I. Returns 0 or -errno (logged). */
static int start(spd__launcher *l, size_t i)
{
	spd__zygote *z = &l->slots[i]->z;
	const spd_prepared_target *t = &l->slots[i]->t;
	int sv[2] = {-1, -1}, errpipe[2] = {-1, -1}, fd_in = -1, fd_log = -1, fd_spec = -1;
	char *argv[3] = {l->worker, (char *)"zygote", NULL};
	spd_wbuf spec = SPD_WBUF_INIT;
	spd_child_spec cs;
	pid_t pid = -1;
	int rc = 0, rec[2];
	ssize_t n;

	if (l->worker == NULL)
		return -ENOENT;
	spd_target_spec_encode(t, &spec);
	if (spec.err != 0) {
		rc = spec.err;
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(errpipe, O_CLOEXEC) < 0 ||
	    (fd_in = fcntl(l->devnull, F_DUPFD_CLOEXEC, 0)) < 0 ||
	    (fd_log = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0)) < 0) {
		rc = -errno;
		goto out;
	}
	if ((fd_spec = spd_memfd_from(spec.data, spec.len)) < 0) {
		rc = fd_spec;
		goto out;
	}
	cs = (spd_child_spec){
		.target = t,
		.req = NULL,
		.exec_argv = argv,
		.fd_stdin = fd_in,
		.fd_stdout = fd_log,
		.fd_stderr = fd_log,
		.fd_chan = sv[1],
		.fd_spec = fd_spec,
		.fd_errpipe = errpipe[1],
		.no_memory_rlimit = spd__uses_cgroup(l, t->cfg),
		.no_cpu_rlimit = true,
	};
	pid = spd_child_fork(&cs);
	if (pid < 0) {
		rc = pid;
		goto out;
	}
	close(errpipe[1]);
	errpipe[1] = -1;
	do
		n = read(errpipe[0], rec, sizeof rec);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof rec) {
		rc = -rec[1];
		waitpid(pid, NULL, 0);
		goto out;
	}
	z->pid = pid;
	z->sock = sv[0];
	sv[0] = -1;
	z->up_since = spd_clock_mono_ns();
	z->restart_at = 0;
	spd_log(SPD_LOG_INFO, "zygote started", SPD_LOG_STR("target", t->cfg->name),
		SPD_LOG_INT("pid", pid), SPD_LOG_END);
out:
	if (rc < 0)
		spd_log(SPD_LOG_ERROR, "cannot start zygote", SPD_LOG_STR("target", t->cfg->name),
			SPD_LOG_STR("error", strerror(-rc)), SPD_LOG_END);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (errpipe[0] >= 0)
		close(errpipe[0]);
	if (errpipe[1] >= 0)
		close(errpipe[1]);
	if (fd_in >= 0)
		close(fd_in);
	if (fd_log >= 0)
		close(fd_log);
	if (fd_spec >= 0)
		close(fd_spec);
	spd_wbuf_release(&spec);
	return rc;
}

/* Zygote I is gone: a restart is scheduled; NEWS (if any) says its children
 * are lost. */
static void down(spd__launcher *l, size_t i, const char *why, spd__zygote_news *news)
{
	spd__zygote *z = &l->slots[i]->z;
	int64_t now = spd_clock_mono_ns();

	if (z->sock >= 0)
		close(z->sock);
	z->sock = -1;
	z->pid = 0; /* reaped later as a stray, if not yet */
	if (z->backoff_ms == 0 || now - z->up_since >= STABLE_NS)
		z->backoff_ms = BACKOFF_MIN_MS;
	else if (z->backoff_ms < BACKOFF_MAX_MS)
		z->backoff_ms *= 2;
	z->restart_at = now + z->backoff_ms * 1000000;
	if (news != NULL) {
		news->what = SPD__ZNEWS_DOWN;
		news->zygote = i;
		snprintf(news->why, sizeof news->why, "%s", why);
	}
	spd_log(SPD_LOG_ERROR, "zygote down; restarting", SPD_LOG_STR("target", l->slots[i]->cfg.name),
		SPD_LOG_STR("why", why), SPD_LOG_INT("backoff_ms", z->backoff_ms), SPD_LOG_END);
	z->reported_down = true;
	spd__send_health(l, l->slots[i], why);
}

void spd__zygote_boot(spd__launcher *l, size_t i)
{
	const spd_target_config *t = &l->slots[i]->cfg;

	l->slots[i]->z = (spd__zygote){.pid = 0, .sock = -1, .backoff_ms = 0};
	if (!is_forkserver(t) || t->limits.zygote_start != SPD_ZYGOTE_BOOT ||
	    l->slots[i]->t.error != NULL)
		return;
	if (start(l, i) < 0)
		down(l, i, "cannot start the zygote", NULL);
}

void spd__zygote_retire(spd__launcher *l, size_t i)
{
	spd__zygote *z = &l->slots[i]->z;

	if (z->pid > 0) {
		/* It has no children left (the front retires a target only then):
		 * it goes like a stray, SIGKILLed and reaped by the next scan. */
		kill(z->pid, SIGKILL);
		spd_log(SPD_LOG_INFO, "zygote retired", SPD_LOG_STR("target", l->slots[i]->cfg.name),
			SPD_LOG_INT("pid", z->pid), SPD_LOG_END);
	}
	if (z->sock >= 0)
		close(z->sock);
	*z = (spd__zygote){.pid = 0, .sock = -1, .backoff_ms = 0};
}

/* Zygote I is up, or started here. Down since its last down() (which lost
 * its children), or never started: it has no children to lose here. */
static int ensure_up(spd__launcher *l, size_t i)
{
	spd__zygote *z = &l->slots[i]->z;
	int rc;

	if (z->sock >= 0)
		return 0;
	if (z->restart_at != 0)
		return -EAGAIN; /* down, restarting after its backoff */
	rc = start(l, i);
	if (rc < 0)
		down(l, i, "cannot start the zygote", NULL);
	return rc;
}

bool spd__zygote_usable(const spd__launcher *l, size_t i)
{
	const spd__zygote *z = &l->slots[i]->z;

	return z->sock >= 0 || (z->restart_at == 0 && l->worker != NULL);
}

int spd__zygote_prestart(spd__launcher *l, size_t i, uint64_t key, const int *fds, size_t nfds)
{
	spd_wbuf b = SPD_WBUF_INIT;
	int rc = ensure_up(l, i);

	if (rc < 0)
		return rc;
	return spd_wire_send_fds(l->slots[i]->z.sock, SPD_ZYGOTE_PRESTART, key, &b, fds, nfds);
}

int spd__zygote_spawn(spd__launcher *l, size_t i, uint64_t key, const spd_start_req *req,
		      const int *fds, size_t nfds, const char **why)
{
	spd__zygote *z = &l->slots[i]->z;
	spd_wbuf b = SPD_WBUF_INIT;
	int rc;

	*why = NULL;
	if ((rc = ensure_up(l, i)) < 0) {
		*why = "the target's zygote is down";
		return rc;
	}
	spd_start_req_encode(req, &b);
	rc = spd_wire_send_fds(z->sock, SPD_ZYGOTE_SPAWN, key, &b, fds, nfds);
	spd_wbuf_release(&b);
	return rc;
}

void spd__zygote_signal(spd__launcher *l, size_t i, uint64_t key, int sig)
{
	spd__zygote *z = &l->slots[i]->z;
	spd_zygote_signal_msg m = {.sig = sig};
	spd_wbuf b = SPD_WBUF_INIT;

	if (z->sock < 0)
		return; /* gone: its children die of their parent-death signal */
	spd_zygote_signal_msg_encode(&m, &b);
	spd_wire_send(z->sock, SPD_ZYGOTE_SIGNAL, key, &b);
	spd_wbuf_release(&b);
}

bool spd__zygote_reaped(spd__launcher *l, pid_t pid, int status, spd__zygote_news *news)
{
	char why[128];

	for (size_t i = 0; i < l->nslots; i++) {
		if (l->slots[i] == NULL || l->slots[i]->z.pid != pid || pid <= 0)
			continue;
		if (WIFSIGNALED(status))
			snprintf(why, sizeof why, "the zygote was killed by signal %d", WTERMSIG(status));
		else
			snprintf(why, sizeof why, "the zygote exited with code %d", WEXITSTATUS(status));
		down(l, i, why, news);
		return true;
	}
	return false;
}

static void on_started(spd__zygote_news *news, const uint8_t *body, size_t len)
{
	spd_zygote_started_msg m;
	int rc = spd_zygote_started_msg_decode(&m, body, len);

	news->what = SPD__ZNEWS_STARTED;
	news->pid = rc < 0 ? -EBADMSG : m.pid_or_err;
}

static void on_exited(spd__zygote_news *news, const uint8_t *body, size_t len)
{
	spd_zygote_exited_msg m;
	struct rusage ru;

	if (spd_zygote_exited_msg_decode(&m, body, len) < 0)
		return;
	memset(&ru, 0, sizeof ru);
	ru.ru_utime.tv_sec = m.utime_us / 1000000;
	ru.ru_utime.tv_usec = m.utime_us % 1000000;
	ru.ru_stime.tv_sec = m.stime_us / 1000000;
	ru.ru_stime.tv_usec = m.stime_us % 1000000;
	ru.ru_maxrss = m.maxrss_bytes / 1024;
	news->what = SPD__ZNEWS_EXITED;
	news->status = m.wait_status;
	news->ru = ru;
	/* Only the zygote knows whether a signal reached its child alive. */
	news->sent = m.sent & (SPD_EXIT_SENT_STOP | SPD_EXIT_SENT_KILL);
}

void spd__zygote_readable(spd__launcher *l, size_t i, spd__zygote_news *news)
{
	spd__zygote *z = &l->slots[i]->z;
	spd_wire_hdr hdr;
	uint8_t *body = NULL;
	size_t len = 0;
	int rc = spd_wire_recv(z->sock, &hdr, &body, &len);

	memset(news, 0, sizeof *news);
	news->zygote = i;

	if (rc <= 0) {
		/* EOF or a broken frame: it is gone or useless. Take it down now,
		 * not at its SIGCHLD: a start in between would otherwise start a
		 * second zygote and lose track of this one's children. It is our
		 * unreaped child, so the pid is still its own. */
		if (z->pid > 0)
			kill(z->pid, SIGKILL);
		down(l, i, rc == 0 ? "the zygote closed its socket" : "the zygote sent a broken frame",
		     news);
		return;
	}
	if (hdr.type == SPD_ZYGOTE_READY) {
		if (z->reported_down) {
			z->reported_down = false;
			spd__send_health(l, l->slots[i], NULL);
		}
		free(body);
		return;
	}
	news->key = hdr.key;
	if (hdr.type == SPD_ZYGOTE_STARTED)
		on_started(news, body, len);
	else if (hdr.type == SPD_ZYGOTE_EXITED)
		on_exited(news, body, len);
	free(body);
}

void spd__zygotes_tick(spd__launcher *l, int64_t now)
{
	for (size_t i = 0; i < l->nslots; i++) {
		spd__zygote *z;
		if (l->slots[i] == NULL)
			continue;
		z = &l->slots[i]->z;
		if (z->restart_at == 0 || now < z->restart_at || z->pid != 0)
			continue;
		z->restart_at = 0;
		/* SERVING again only once it says READY: a zygote that cannot load
		 * its target exits, and starts wait for it meanwhile. */
		if (start(l, i) < 0)
			down(l, i, "cannot restart the zygote", NULL);
	}
}

int64_t spd__zygotes_next_deadline(const spd__launcher *l)
{
	int64_t next = 0;

	for (size_t i = 0; i < l->nslots; i++) {
		int64_t at = l->slots[i] != NULL ? l->slots[i]->z.restart_at : 0;
		if (at != 0 && (next == 0 || at < next))
			next = at;
	}
	return next;
}
