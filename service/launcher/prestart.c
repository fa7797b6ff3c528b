/* Pre-started children (SPEC §12 "Pre-started children"), seen from the
 * launcher: each slot of a target with `prestart: N` keeps a pool of up to N
 * children that are set up as a fresh one would be (process group, memory
 * cgroup, signals reset, user and groups, parent-death signal,
 * no_new_privs, limits, cwd, umask, stdio on their pipes, environment) and
 * then wait, blocked in read() on a request pipe, for their one call. A START
 * for such a target takes one (spd__idle_take): its call goes down the pipe,
 * and from then on it is an ordinary child of the table (lifecycle.c), with
 * its pid, pipes and cgroup. A fork target's are forked here; a forkserver
 * target's by its zygote (PRESTART).
 *
 * Which requests need a fresh child: those asking for something a child has
 * to have before it starts. A request carries args, input, labels, its
 * process id and trace context, a timeout and a grace period: the first ones
 * reach the function with its call (TRACEPARENT is put in the environment
 * before the function runs, child.c), the last two stay in the launcher.
 * Nothing of a request is applied during setup, so no request needs a fresh
 * child today; a START forks fresh only when its pool is empty (a burst, a
 * refill not done yet, a refill backoff) or its version is stale. A future
 * request field that setup must apply (an rlimit, a cgroup, a user) has to
 * send its START past spd__idle_take.
 *
 * Pools are filled off the critical path: the loop asks for a refill only
 * when a pass found nothing to do (or a refill has waited SPD__REFILL_LAG),
 * after the pass's frames went out, one child at a time, so that a START
 * never waits behind a pool's forks. At most max_idle wait across slots;
 * the shortest pool is filled first. Idle children count toward no limit of
 * the front's: they have no id, and the front hears only their number
 * (IDLE). A pool is killed when its version stops being current or spawnd
 * shuts down (STALE), at RETIRE, when its zygote goes, and with everything
 * else when the front is gone. One that dies idle (its setup failed) stops its pool's refills for a
 * backoff; starts meanwhile fork fresh and report what fails. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "service/common/children.h"
#include "service/common/clock.h"
#include "service/common/log.h"
#include "service/launcher/cgroup.h"
#include "service/launcher/child.h"
#include "service/launcher/launcher_impl.h"
#include "service/wire/messages.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
/* Under a steady stream of frames the loop is never idle: a refill that has
 * waited this long goes ahead anyway. */
#define SPD__REFILL_LAG_NS (5LL * 1000000)

static bool prestarts(const spd__slot *s)
{
	return s != NULL && !s->retired && !s->stale && s->t.error == NULL && s->cfg.prestart > 0 &&
	       s->cfg.kind == SPD_TARGET_FUNCTION && s->cfg.limits.start_method != SPD_START_SPAWN;
}

static bool forkserver(const spd__slot *s)
{
	return s->cfg.limits.start_method == SPD_START_FORKSERVER;
}

static void idle_free(spd__idle *e)
{
	spd__close_fd(&e->pidfd);
	spd__close_fd(&e->fd_out);
	spd__close_fd(&e->fd_err);
	spd__close_fd(&e->fd_chan);
	spd__close_fd(&e->fd_req);
	free(e);
}

/* E is gone (reaped, or lost with its zygote): its cgroup goes too. One that
 * still holds a dying process stays until spd_cgroups_destroy(). */
static void idle_forget(spd__launcher *l, spd__idle *e)
{
	if (e->cgroup) {
		bool oom;
		spd_cgroups_remove(l->cgroups, e->key, &oom);
	}
	idle_free(e);
}

/* Takes E out of slot S's pool. */
static void unlink_pool(spd__launcher *l, spd__slot *s, spd__idle *e)
{
	spd__idle **pp;

	for (pp = &s->idle; *pp != NULL && *pp != e; pp = &(*pp)->next)
		;
	if (*pp == e) {
		*pp = e->next;
		s->nidle--;
		l->nidle--;
	}
	e->next = NULL;
}

/* E (out of its pool) is killed: SIGKILL now, or at once through its zygote;
 * it waits in l->dying until reaped. Its pipes close now: nothing of it is
 * read any more. */
static void kill_idle(spd__launcher *l, spd__idle *e)
{
	e->killed = true;
	if (e->zygote >= 0) {
		if (e->pid > 0)
			spd__zygote_signal(l, (size_t)e->zygote, e->key, SIGKILL);
	} else if (e->pidfd < 0 || syscall(SYS_pidfd_send_signal, e->pidfd, SIGKILL, NULL, 0) < 0) {
		/* Our unreaped child: its pid is still its own. */
		kill(e->pid, SIGKILL);
	}
	spd__close_fd(&e->fd_out);
	spd__close_fd(&e->fd_err);
	spd__close_fd(&e->fd_chan);
	spd__close_fd(&e->fd_req);
	/* A zygote's child whose pid is not known yet: the closed request pipe
	 * lets it go (EOF), and the STARTED still to come is answered with a
	 * SIGKILL anyway (spd__idle_zygote_news). */
	e->next = l->dying;
	l->dying = e;
}

/* A pool entry died idle (we did not kill it): its slot waits before the
 * next refill, so that a child whose setup fails is not forked in a loop. */
static void died_idle(spd__slot *s, int status)
{
	int64_t now = spd_clock_mono_ns();

	s->pool_backoff_ms = s->pool_backoff_ms == 0 ? BACKOFF_MIN_MS
			     : s->pool_backoff_ms < BACKOFF_MAX_MS ? 2 * s->pool_backoff_ms
								  : BACKOFF_MAX_MS;
	s->pool_retry_at = now + s->pool_backoff_ms * 1000000;
	spd_log(SPD_LOG_WARN, "a pre-started child died idle; refills wait",
		SPD_LOG_STR("target", s->cfg.name), SPD_LOG_INT("wait_status", status),
		SPD_LOG_INT("backoff_ms", s->pool_backoff_ms), SPD_LOG_END);
}

/* ---- taking one ------------------------------------------------------------- */

/* Whether E can take a call now: its pid is known and, when it is ours, it
 * has not exited (a zombie not reaped yet). A zygote's child that died
 * meanwhile is reported by its zygote, and the START's report says so. */
static bool ready(const spd__idle *e)
{
	return e->pid > 0 && (e->zygote >= 0 || !spd_child_exited(e->pid));
}

void spd__idle_write_call(spd__launcher *l, spd__child *c)
{
	(void)l;
	while (c->fd_req >= 0 && c->req_off < c->req_len) {
		ssize_t n = write(c->fd_req, c->req_out + c->req_off, c->req_len - c->req_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return; /* POLLOUT brings us back */
		if (n < 0)
			break; /* EPIPE: it died; its exit is reaped and reported */
		c->req_off += (size_t)n;
	}
	spd__close_fd(&c->fd_req);
	free(c->req_out);
	c->req_out = NULL;
	c->req_len = c->req_off = 0;
}

bool spd__idle_take(spd__launcher *l, spd__child *c)
{
	spd__slot *s = l->slots[c->slot];
	spd_wbuf b = SPD_WBUF_INIT;
	spd__idle *e = s->idle;

	while (e != NULL && !ready(e)) {
		spd__idle *next = e->next;
		if (e->pid > 0) {
			/* Exited idle: reaped on the next SIGCHLD pass. */
			unlink_pool(l, s, e);
			died_idle(s, 0);
			e->next = l->dying;
			l->dying = e;
		}
		e = next;
	}
	if (e == NULL)
		return false;
	if (spd_prestart_call_encode(&c->req, &b) < 0) {
		spd_wbuf_release(&b);
		return false;
	}
	unlink_pool(l, s, e);
	c->rep.started_ns = spd_clock_real_ns();
	c->pid = e->pid;
	c->pidfd = e->pidfd;
	c->fd_out = e->fd_out;
	c->fd_err = e->fd_err;
	c->fd_chan = e->fd_chan;
	c->fd_req = e->fd_req;
	c->cgroup = e->cgroup;
	c->cgroup_key = e->key;
	c->zkey = e->key;
	c->zygote = e->zygote;
	e->pidfd = e->fd_out = e->fd_err = e->fd_chan = e->fd_req = -1;
	free(e);
	/* Our end is non-blocking: what the pipe does not take now goes as it
	 * drains, from the loop. */
	c->req_out = b.data;
	c->req_len = b.len;
	c->req_off = 0;
	spd__idle_write_call(l, c);
	s->pool_backoff_ms = 0;
	return true;
}

/* ---- reaping and zygote news ---------------------------------------------- */

bool spd__idle_is(const spd__launcher *l, pid_t pid)
{
	if (pid <= 0)
		return false;
	for (const spd__idle *e = l->dying; e != NULL; e = e->next)
		if (e->pid == pid && e->zygote < 0)
			return true;
	for (size_t i = 0; i < l->nslots; i++)
		for (const spd__idle *e = l->slots[i] != NULL ? l->slots[i]->idle : NULL; e != NULL;
		     e = e->next)
			if (e->pid == pid && e->zygote < 0)
				return true;
	return false;
}

/* Finds the entry with KEY (or, KEY 0, our child PID): in l->dying (*SLOT
 * NULL) or in a pool (*SLOT its slot). */
static spd__idle *find(spd__launcher *l, uint64_t key, pid_t pid, spd__slot **slot)
{
	*slot = NULL;
	for (spd__idle *e = l->dying; e != NULL; e = e->next)
		if (key != 0 ? e->key == key : (e->pid == pid && e->zygote < 0))
			return e;
	for (size_t i = 0; i < l->nslots; i++) {
		if (l->slots[i] == NULL)
			continue;
		for (spd__idle *e = l->slots[i]->idle; e != NULL; e = e->next) {
			if (key != 0 ? e->key == key : (e->pid == pid && e->zygote < 0)) {
				*slot = l->slots[i];
				return e;
			}
		}
	}
	return NULL;
}

static void unlink_dying(spd__launcher *l, spd__idle *e)
{
	spd__idle **pp;

	for (pp = &l->dying; *pp != NULL && *pp != e; pp = &(*pp)->next)
		;
	if (*pp == e)
		*pp = e->next;
}

/* E (in S's pool, or in l->dying when S is NULL) is dead and reaped. */
static void gone(spd__launcher *l, spd__slot *s, spd__idle *e, int status)
{
	if (s != NULL) {
		unlink_pool(l, s, e);
		if (!e->killed)
			died_idle(s, status);
	} else {
		unlink_dying(l, e);
	}
	idle_forget(l, e);
}

void spd__idle_reaped(spd__launcher *l, pid_t pid, int status)
{
	spd__slot *s;
	spd__idle *e = find(l, 0, pid, &s);

	if (e != NULL)
		gone(l, s, e, status);
}

void spd__idle_zygote_news(spd__launcher *l, size_t z, uint64_t key, bool started, int32_t pid)
{
	spd__slot *s;
	spd__idle *e = find(l, key, 0, &s);

	if (e == NULL || e->zygote != (int)z)
		return;
	if (!started) {
		gone(l, s, e, 0);
	} else if (pid <= 0) {
		spd_log(SPD_LOG_WARN, "the zygote could not pre-start a child",
			SPD_LOG_STR("target", s != NULL ? s->cfg.name : ""),
			SPD_LOG_STR("error", strerror(-pid)), SPD_LOG_END);
		if (s != NULL) {
			unlink_pool(l, s, e);
			died_idle(s, 0);
		} else {
			unlink_dying(l, e);
		}
		idle_forget(l, e);
	} else if (s != NULL) {
		e->pid = pid;
	} else {
		/* Killed before its zygote said the pid: kill it now. */
		e->pid = pid;
		spd__zygote_signal(l, z, key, SIGKILL);
	}
}

void spd__idle_zygote_down(spd__launcher *l, size_t z)
{
	spd__slot *s = z < l->nslots ? l->slots[z] : NULL;

	/* Their parent-death signal kills them, and they are reparented to us:
	 * the stray scan kills and reaps them. */
	for (spd__idle **pp = &l->dying; *pp != NULL;) {
		spd__idle *e = *pp;
		if (e->zygote == (int)z) {
			*pp = e->next;
			idle_forget(l, e);
		} else {
			pp = &e->next;
		}
	}
	while (s != NULL && s->idle != NULL) {
		spd__idle *e = s->idle;
		unlink_pool(l, s, e);
		idle_forget(l, e);
	}
}

void spd__idle_trim(spd__launcher *l, size_t i, uint32_t keep)
{
	spd__slot *s = l->slots[i];

	while (s != NULL && s->nidle > keep) {
		spd__idle *e = s->idle;
		unlink_pool(l, s, e);
		kill_idle(l, e);
	}
}

/* ---- refilling -------------------------------------------------------------- */

/* Slot I may get one more pre-started child now. */
static bool short_now(const spd__launcher *l, size_t i, int64_t now)
{
	const spd__slot *s = l->slots[i];

	if (!prestarts(s) || s->nidle >= s->cfg.prestart || now < s->pool_retry_at)
		return false;
	return !forkserver(s) || spd__zygote_usable(l, i);
}

/* The shortest pool that may grow, or -1. */
static ssize_t pick(const spd__launcher *l, int64_t now)
{
	ssize_t best = -1;

	if (l->nidle >= l->max_idle)
		return -1;
	for (size_t i = 0; i < l->nslots; i++)
		if (short_now(l, i, now) && (best < 0 || l->slots[i]->nidle < l->slots[best]->nidle))
			best = (ssize_t)i;
	return best;
}

bool spd__idle_wanted(spd__launcher *l, int64_t now)
{
	bool want = pick(l, now) >= 0;

	if (!want)
		l->idle_wanted_since = 0;
	else if (l->idle_wanted_since == 0)
		l->idle_wanted_since = now;
	return want;
}

int64_t spd__idle_next_deadline(const spd__launcher *l, int64_t now)
{
	int64_t next = 0;

	/* Only backoffs still ahead: one that is over and still finds no room
	 * (max_idle, a zygote restarting) must not make the loop spin; the
	 * pass that makes room asks for a refill itself. */
	for (size_t i = 0; i < l->nslots; i++) {
		const spd__slot *s = l->slots[i];
		if (prestarts(s) && s->nidle < s->cfg.prestart && s->pool_retry_at > now &&
		    (next == 0 || s->pool_retry_at < next))
			next = s->pool_retry_at;
	}
	return next;
}

/* What a pre-started child is started with: [0] ends ours, [1] its own. */
typedef struct idle_start {
	int out[2], err[2], chan[2], req[2];
	int fd_in, fd_cgroup;
} idle_start;

#define IDLE_START_INIT {{-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}, -1, -1}

static void idle_start_release(idle_start *st)
{
	int *fds[] = {&st->out[0], &st->out[1], &st->err[0], &st->err[1], &st->chan[0],
		      &st->chan[1], &st->req[0], &st->req[1], &st->fd_in, &st->fd_cgroup};

	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		spd__close_fd(fds[i]);
}

/* Forks (or has its zygote fork) one pre-started child of slot I into E. */
static int start_one(spd__launcher *l, size_t i, spd__idle *e)
{
	spd__slot *s = l->slots[i];
	idle_start st = IDLE_START_INIT;
	int rc;

	if ((rc = spd__pipe(st.out)) < 0 || (rc = spd__pipe(st.err)) < 0 ||
	    (rc = spd__pipe(st.chan)) < 0)
		goto out;
	/* The request pipe: the child reads (blocking), we write (not). */
	if (pipe2(st.req, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out;
	}
	fcntl(st.req[1], F_SETFL, O_NONBLOCK);
	if ((st.fd_in = fcntl(l->devnull, F_DUPFD_CLOEXEC, 0)) < 0) {
		rc = -errno;
		goto out;
	}
	if (spd__uses_cgroup(l, &s->cfg)) {
		rc = spd_cgroups_add(l->cgroups, e->key, s->cfg.limits.memory_limit, &st.fd_cgroup);
		if (rc < 0)
			goto out;
		e->cgroup = true;
	}
	if (forkserver(s)) {
		int fds[6] = {st.fd_in, st.out[1], st.err[1], st.chan[1], st.req[0], st.fd_cgroup};
		rc = spd__zygote_prestart(l, i, e->key, fds, st.fd_cgroup >= 0 ? 6 : 5);
		if (rc < 0)
			goto out;
		e->zygote = (int)i;
	} else {
		spd_child_spec cs = {
			.target = &s->t,
			.req = NULL,
			.exec_argv = NULL,
			.fd_stdin = st.fd_in,
			.fd_stdout = st.out[1],
			.fd_stderr = st.err[1],
			.fd_chan = st.chan[1],
			.fd_spec = -1,
			.fd_errpipe = -1,
			.join_cgroup = st.fd_cgroup >= 0,
			.fd_cgroup = st.fd_cgroup,
			.prestart = true,
			.fd_request = st.req[0],
		};
		pid_t pid = spd_child_fork(&cs);
		if (pid < 0) {
			rc = pid;
			goto out;
		}
		e->pid = pid;
		e->pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* O_CLOEXEC by definition */
	}
	e->fd_out = st.out[0];
	e->fd_err = st.err[0];
	e->fd_chan = st.chan[0];
	e->fd_req = st.req[1];
	st.out[0] = st.err[0] = st.chan[0] = st.req[1] = -1;
out:
	idle_start_release(&st);
	return rc;
}

void spd__idle_refill(spd__launcher *l, int64_t now)
{
	ssize_t i = pick(l, now);
	spd__slot *s;
	spd__idle *e;
	int rc;

	l->idle_wanted_since = 0;
	if (i < 0)
		return;
	s = l->slots[i];
	e = calloc(1, sizeof *e);
	if (e == NULL)
		return;
	*e = (spd__idle){.key = SPD__IDLE_KEY_BIT | ++l->idle_serial, .zygote = -1, .pidfd = -1,
			 .fd_out = -1, .fd_err = -1, .fd_chan = -1, .fd_req = -1};
	rc = start_one(l, (size_t)i, e);
	if (rc < 0) {
		spd_log(SPD_LOG_WARN, "cannot pre-start a child; refills wait",
			SPD_LOG_STR("target", s->cfg.name), SPD_LOG_STR("error", strerror(-rc)),
			SPD_LOG_END);
		died_idle(s, 0);
		idle_forget(l, e);
		return;
	}
	e->next = s->idle;
	s->idle = e;
	s->nidle++;
	l->nidle++;
}

bool spd__idle_refill_due(const spd__launcher *l, int64_t now)
{
	return l->idle_wanted_since != 0 && now - l->idle_wanted_since >= SPD__REFILL_LAG_NS;
}

void spd__idle_report(spd__launcher *l)
{
	for (size_t i = 0; i < l->nslots; i++) {
		spd__slot *s = l->slots[i];
		uint32_t n = 0;

		if (s == NULL || (s->cfg.prestart == 0 && s->reported_idle == 0))
			continue;
		for (const spd__idle *e = s->idle; e != NULL; e = e->next)
			n += e->pid > 0;
		if (n != s->reported_idle) {
			spd_idle_msg m = {.count = n};
			spd_wbuf b = SPD_WBUF_INIT;

			s->reported_idle = n;
			spd_idle_msg_encode(&m, &b);
			spd__send(l, SPD_WIRE_IDLE, s->id, &b);
		}
	}
}
