/* The launcher's loop: see launcher.h for the contract, launcher_impl.h for
 * how its files divide the work. Every frame, signal and deadline becomes an
 * event of the child table (lifecycle.c). */
#include "service/launcher/launcher.h"

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
#include <sys/wait.h>
#include <unistd.h>

#include "service/common/children.h"
#include "service/common/clock.h"
#include "service/common/fdlimit.h"
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

/* ---- strays -------------------------------------------------------------- */

static bool is_stray_known(const spd__launcher *l, pid_t pid)
{
	for (size_t i = 0; i < l->nstrays; i++)
		if (l->strays[i] == pid)
			return true;
	return false;
}

static void forget_stray(spd__launcher *l, pid_t pid)
{
	for (size_t i = 0; i < l->nstrays; i++) {
		if (l->strays[i] == pid) {
			l->strays[i] = l->strays[--l->nstrays];
			return;
		}
	}
}

/* A direct child that is not a live leader was reparented to us: kill it. It is
 * our child and unreaped, so its pid cannot have been reused. */
static bool kill_if_stray(pid_t pid, void *ctx)
{
	spd__launcher *l = ctx;

	if (spd__child_by_pid(l, pid) != NULL || is_stray_known(l, pid) || spd__zygote_is(l, pid) ||
	    spd__idle_is(l, pid))
		return false;
	if (l->nstrays == l->strays_cap) {
		size_t cap = l->strays_cap ? 2 * l->strays_cap : 16;
		pid_t *s = realloc(l->strays, cap * sizeof *s);
		if (s == NULL)
			return false; /* found again at the next scan */
		l->strays = s;
		l->strays_cap = cap;
	}
	kill(pid, SIGKILL);
	l->strays[l->nstrays++] = pid;
	spd_log(SPD_LOG_DEBUG, "killed a reparented process", SPD_LOG_INT("pid", pid), SPD_LOG_END);
	return true;
}

/* SIGKILLs every direct child that is neither a live leader, a zygote nor a
 * pre-started child. */
static void kill_strays(spd__launcher *l)
{
	spd_children_each(kill_if_stray, l);
}

/* ---- reaping ------------------------------------------------------------- */

/* Pre-started children lead a group too (of themselves only: nothing of
 * their target ran). */
static bool is_leader(pid_t pid, void *ctx)
{
	return spd__child_by_pid(ctx, pid) != NULL || spd__idle_is(ctx, pid);
}

/* Gives the child table what a zygote said or did. */
static void on_zygote_news(spd__launcher *l, const spd__zygote_news *n)
{
	spd__child_ev e = SPD__CHILD_EV_INIT;
	spd__child *c;

	switch (n->what) {
	case SPD__ZNEWS_DOWN:
		e.why = n->why;
		for (c = l->children; c != NULL; c = c->next)
			if (c->zygote == (int)n->zygote)
				spd__child_on(l, c, SPD__CEV_ZYGOTE_LOST, &e);
		spd__idle_zygote_down(l, n->zygote);
		break;
	case SPD__ZNEWS_STARTED:
	case SPD__ZNEWS_EXITED:
		c = spd__child_by_zkey(l, n->key);
		if (c == NULL && (n->key & SPD__IDLE_KEY_BIT)) {
			/* A pre-started child not taken (yet): its pool's. */
			spd__idle_zygote_news(l, n->zygote, n->key, n->what == SPD__ZNEWS_STARTED,
					      n->pid);
			break;
		}
		if (c == NULL || c->zygote != (int)n->zygote)
			break;
		if (n->what == SPD__ZNEWS_STARTED) {
			e.pid = n->pid;
			spd__child_on(l, c, SPD__CEV_STARTED, &e);
			break;
		}
		/* Its leader's children were reparented to us: kill what escaped
		 * (C is not DONE while they are unreaped). */
		kill_strays(l);
		e.status = n->status;
		e.ru = &n->ru;
		e.from_zygote = true;
		e.sent = n->sent;
		spd__child_on(l, c, SPD__CEV_EXITED, &e);
		break;
	default:
		break;
	}
}

/* Reaps every exited child: leaders (their group SIGKILLed first, while the
 * zombie's pid still pins it: children.h), zygotes and strays. */
static void reap(spd__launcher *l)
{
	bool reaped_any = false;
	spd__zygote_news news;
	struct rusage ru;
	int status;
	pid_t pid;

	while (spd_children_reap_one(is_leader, l, &pid, &status, &ru) > 0) {
		spd__child *c = spd__child_by_pid(l, pid);

		reaped_any = true;
		if (c != NULL) {
			c->reaped_now = true;
			c->reaped_status = status;
			c->reaped_ru = ru;
		} else if (spd__zygote_reaped(l, pid, status, &news)) {
			on_zygote_news(l, &news);
		} else if (spd__idle_is(l, pid)) {
			spd__idle_reaped(l, pid, status);
		} else {
			forget_stray(l, pid);
		}
	}
	if (!reaped_any)
		return;
	/* One scan for the whole pass: what the reaped leaders left behind was
	 * reparented to us. Once it is known as strays, a leader's EXITED cannot
	 * make it DONE before they are reaped. */
	kill_strays(l);
	for (spd__child *c = l->children, *next; c != NULL; c = next) {
		next = c->next;
		if (c->reaped_now) {
			spd__child_ev e = SPD__CHILD_EV_INIT;
			c->reaped_now = false;
			e.status = c->reaped_status;
			e.ru = &c->reaped_ru;
			spd__child_on(l, c, SPD__CEV_EXITED, &e);
		}
	}
	if (l->nstrays == 0)
		for (spd__child *c = l->children; c != NULL; c = c->next)
			spd__child_on(l, c, SPD__CEV_STRAYS_GONE, NULL);
}

/* ---- frames to the front --------------------------------------------------- */

/* What enforces TC's memory_limit: "" when it has none. */
static const char *memory_mechanism(const spd__launcher *l, const spd_target_config *tc)
{
	if (tc->limits.memory_limit == 0)
		return "";
	if (!spd__uses_cgroup(l, tc))
		return spd_memory_mechanism_name(SPD_MEMORY_RLIMIT_AS);
	return spd_memory_mechanism_name(spd_cgroups_mechanism(l->cgroups));
}

/* HELLO (at boot) or RELOADED (after a RELOAD): the readiness of the N
 * slots at indexes IDX, just added. */
static void send_ready(spd__launcher *l, uint32_t type, const size_t *idx, size_t n)
{
	const char **v = calloc(3 * n + 1, sizeof *v); /* names, errors, mechanisms */
	uint32_t *ids = calloc(n + 1, sizeof *ids);
	spd_wbuf b = SPD_WBUF_INIT;

	if (v == NULL || ids == NULL) {
		b.err = -ENOMEM; /* spd__send() logs it */
	} else {
		/* The message borrows every string. */
		spd_launcher_hello h = {.count = n,
					.ids = ids,
					.names = (char **)v,
					.errors = (char **)v + n,
					.memory_limit_mechanisms = (char **)v + 2 * n,
					.cgroup = type == SPD_WIRE_HELLO
							  ? (char *)spd_cgroups_parent(l->cgroups)
							  : NULL};
		for (size_t i = 0; i < n; i++) {
			const spd__slot *s = l->slots[idx[i]];
			ids[i] = s->id;
			v[i] = s->cfg.name;
			v[n + i] = s->t.error;
			v[2 * n + i] = memory_mechanism(l, &s->cfg);
		}
		spd_launcher_hello_encode(&h, &b);
	}
	free(v);
	free(ids);
	spd__send(l, type, 0, &b);
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

#define THREAD_MESSAGE                                                                      \
	"a target library started a thread in the launcher; fork would be unsafe: use "   \
	"start_method spawn for it"

/* A new slot for target TC (its strings are moved into the slot: TC is left
 * zeroed), with id ID: prepared, its zygote set up. Returns its index, or -1
 * when out of memory (TC is then released). */
static ssize_t add_slot(spd__launcher *l, uint32_t id, spd_target_config *tc)
{
	spd__slot *s = calloc(1, sizeof *s);
	size_t i;

	for (i = 0; i < l->nslots && l->slots[i] != NULL; i++)
		;
	if (s != NULL && i == l->nslots) {
		spd__slot **v = realloc(l->slots, (l->nslots + 1) * sizeof *v);
		if (v == NULL) {
			free(s);
			s = NULL;
		} else {
			l->slots = v;
			l->slots[l->nslots++] = NULL;
		}
	}
	if (s == NULL) {
		spd_target_config_release(tc);
		memset(tc, 0, sizeof *tc);
		return -1;
	}
	s->id = id;
	s->z = (spd__zygote){.pid = 0, .sock = -1, .backoff_ms = 0};
	s->cfg = *tc;
	memset(tc, 0, sizeof *tc);
	if (spd_target_prepare(&s->cfg, &s->t) < 0) {
		spd_target_config_release(&s->cfg);
		free(s);
		return -1;
	}
	if (s->t.error == NULL && l->worker == NULL && s->cfg.kind == SPD_TARGET_FUNCTION &&
	    s->cfg.limits.start_method == SPD_START_SPAWN)
		s->t.error = strdup("spawnd-worker not found next to spawnd (set SPAWND_WORKER)");
	/* The launcher forks without exec: that is safe only while it has one
	 * thread. After boot (a reload), the thread is there already: the
	 * target is refused, and the log says why. */
	if (s->t.error == NULL && l->slots_ready && thread_count() > 1)
		s->t.error = strdup(THREAD_MESSAGE);
	if (s->t.error != NULL)
		spd_log(SPD_LOG_WARN, "target unusable", SPD_LOG_STR("target", s->cfg.name),
			SPD_LOG_STR("error", s->t.error), SPD_LOG_END);
	l->slots[i] = s;
	return (ssize_t)i;
}

/* Adds a slot for each target of B (taking them): at boot, or for a
 * RELOAD. *IDX gets their indexes (-1 when out of memory); *N their count. */
static int add_slots(spd__launcher *l, spd_launcher_boot *b, size_t **idx, size_t *n)
{
	spd_config *cfg = b->cfg;

	*n = 0;
	*idx = calloc(cfg->target_count + 1, sizeof **idx);
	if (*idx == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->target_count; i++) {
		ssize_t at = add_slot(l, b->ids[i], &cfg->targets[i]);
		if (at >= 0)
			(*idx)[(*n)++] = (size_t)at;
		else
			spd_log(SPD_LOG_ERROR, "out of memory preparing a target", SPD_LOG_END);
	}
	return 0;
}

/* The slot of target id ID, or -1. */
static ssize_t find_slot(const spd__launcher *l, uint32_t id)
{
	for (size_t i = 0; i < l->nslots; i++)
		if (l->slots[i] != NULL && l->slots[i]->id == id)
			return (ssize_t)i;
	return -1;
}

/* A lower max_idle (a reload) kills the surplus, from the longest pools. */
static void set_max_idle(spd__launcher *l, uint32_t max)
{
	l->max_idle = max;
	while (l->nidle > l->max_idle) {
		size_t longest = 0;
		for (size_t i = 0; i < l->nslots; i++)
			if (l->slots[i] != NULL &&
			    (l->slots[longest] == NULL || l->slots[i]->nidle > l->slots[longest]->nidle))
				longest = i;
		if (l->slots[longest] == NULL || l->slots[longest]->nidle == 0)
			break;
		spd__idle_trim(l, longest, l->slots[longest]->nidle - 1);
	}
}

/* RELOAD: the targets a reload added (and the log settings); answered with
 * RELOADED. Targets already here are untouched. */
static void on_reload(spd__launcher *l, const uint8_t *body, size_t len)
{
	spd_launcher_boot b;
	size_t *idx = NULL, n = 0;

	if (spd_launcher_boot_decode(body, len, &b) < 0) {
		spd_log(SPD_LOG_ERROR, "malformed RELOAD frame", SPD_LOG_END);
		send_ready(l, SPD_WIRE_RELOADED, NULL, 0);
		return;
	}
	spd_log_setup(b.cfg->log_level, b.cfg->log_format == SPD_LOG_FORMAT_JSON, "launcher");
	set_max_idle(l, b.cfg->max_idle);
	if (add_slots(l, &b, &idx, &n) < 0)
		spd_log(SPD_LOG_ERROR, "out of memory preparing a reload", SPD_LOG_END);
	for (size_t i = 0; i < n; i++)
		spd__zygote_boot(l, idx[i]);
	send_ready(l, SPD_WIRE_RELOADED, idx, n);
	free(idx);
	spd_launcher_boot_release(&b);
}

/* RETIRE: no process of target ID is left and none will start. */
static void on_retire(spd__launcher *l, uint64_t id)
{
	ssize_t i = id <= UINT32_MAX ? find_slot(l, (uint32_t)id) : -1;

	if (i >= 0) {
		l->slots[i]->retired = true; /* freed by sweep_slots() */
		spd__idle_trim(l, (size_t)i, 0);
	}
}

/* STALE: a reload made version ID not current, or spawnd shuts down; live
 * processes of it go on (and pending ones may still start, fresh), but it
 * keeps no pool. */
static void on_stale(spd__launcher *l, uint64_t id)
{
	ssize_t i = id <= UINT32_MAX ? find_slot(l, (uint32_t)id) : -1;

	if (i >= 0) {
		l->slots[i]->stale = true;
		spd__idle_trim(l, (size_t)i, 0);
	}
}

/* Frees the retired slots that no child refers to (at the end of a pass:
 * nothing of the pass points into them any more). */
static void sweep_slots(spd__launcher *l)
{
	for (size_t i = 0; i < l->nslots; i++) {
		spd__slot *s = l->slots[i];
		bool used = false;

		if (s == NULL || !s->retired)
			continue;
		for (spd__child *c = l->children; c != NULL && !used; c = c->next)
			used = c->target == &s->t || c->zygote == (int)i;
		if (used)
			continue;
		/* Its pool was killed at RETIRE; whatever of it its zygote still
		 * had dies with the zygote. */
		spd__idle_zygote_down(l, i);
		spd__zygote_retire(l, i);
		spd_log(SPD_LOG_DEBUG, "target version retired", SPD_LOG_STR("target", s->cfg.name),
			SPD_LOG_INT("target_id", s->id), SPD_LOG_END);
		spd_target_release(&s->t);
		spd_target_config_release(&s->cfg);
		free(s);
		l->slots[i] = NULL;
	}
}

void spd__send(spd__launcher *l, uint32_t type, uint64_t key, spd_wbuf *body)
{
	int rc = spd_wire_outq_send(&l->outq, l->sock, type, key, body);

	if (rc < 0)
		spd_log(SPD_LOG_ERROR, "cannot send a frame to the front",
			SPD_LOG_STR("error", strerror(-rc)), SPD_LOG_INT("type", type), SPD_LOG_END);
}

void spd__send_health(spd__launcher *l, const spd__slot *s, const char *why)
{
	spd_health_msg m = {.target = s->cfg.name, .why = (char *)why}; /* borrowed */
	spd_wbuf b = SPD_WBUF_INIT;

	spd_health_msg_encode(&m, &b);
	spd__send(l, SPD_WIRE_HEALTH, s->id, &b);
}

void spd__send_started(spd__launcher *l, spd__child *c)
{
	spd_started_msg m = {.pid = c->pid, .started_ns = c->rep.started_ns};
	spd_wbuf b = SPD_WBUF_INIT;

	spd_started_msg_encode(&m, &b);
	spd__send(l, SPD_WIRE_STARTED, c->key, &b);
}

/* A START the launcher refuses: reported at once, as never run. */
static void refuse(spd__child *c, const char *stage, int err, const char *msg)
{
	c->rep.flags |= SPD_EXIT_LAUNCH_FAILED;
	spd__set_launch_error(c, stage, err, msg);
}

static void on_start(spd__launcher *l, uint64_t key, const uint8_t *body, size_t len)
{
	spd__child *c = spd__child_create(l, key);
	ssize_t slot = -1;

	if (c == NULL)
		return; /* the front times out nothing: it will see LOST at worst */
	if (spd_start_req_decode(&c->req, body, len) < 0) {
		refuse(c, "decode", EBADMSG, "malformed START frame");
		goto out;
	}
	slot = find_slot(l, c->req.target_id);
	if (slot < 0 || l->slots[slot]->retired ||
	    strcmp(l->slots[slot]->cfg.name, c->req.target) != 0) {
		refuse(c, "target", ENOENT, "unknown target");
		goto out;
	}
	c->slot = (size_t)slot;
	c->target = &l->slots[slot]->t;
	if (c->target->error != NULL) {
		refuse(c, "target", ENOEXEC, c->target->error);
	} else {
		c->out = (spd_tail)SPD_TAIL_INIT(c->target->cfg->limits.max_output_bytes);
		c->err = (spd_tail)SPD_TAIL_INIT(c->target->cfg->limits.max_output_bytes);
	}
out:
	spd__child_on(l, c, SPD__CEV_START, NULL);
}

static void on_destroy(spd__launcher *l, uint64_t key, const uint8_t *body, size_t len)
{
	spd_destroy_msg m;
	spd__child *c = spd__child_by_key(l, key);

	if (c == NULL || spd_destroy_msg_decode(&m, body, len) < 0)
		return; /* already reported: nothing to do */
	{
		spd__child_ev e = SPD__CHILD_EV_INIT;
		e.grace_ms = m.grace_ms;
		spd__child_on(l, c, SPD__CEV_DESTROY, &e);
	}
}

/* ---- the loop ------------------------------------------------------------- */

static int poll_timeout_ms(const spd__launcher *l)
{
	int64_t next = spd__zygotes_next_deadline(l), now = spd_clock_mono_ns();
	int64_t child = spd__children_next_deadline(l), idle = spd__idle_next_deadline(l, now);

	if (child != 0 && (next == 0 || child < next))
		next = child;
	if (idle != 0 && (next == 0 || idle < next))
		next = idle;
	if (next == 0)
		return -1;
	if (next <= now)
		return 0;
	return (int)((next - now + 999999) / 1000000);
}

static bool kill_child(pid_t pid, void *ctx)
{
	(void)ctx;
	return kill(pid, SIGKILL) == 0;
}

/* The front is gone: nothing may survive it. */
static _Noreturn void die_with_front(spd__launcher *l)
{
	for (spd__child *c = l->children; c != NULL; c = c->next)
		spd__child_on(l, c, SPD__CEV_FRONT_GONE, NULL);
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
		spd_children_each(kill_child, NULL);
		if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
			break;
	}
	spd_cgroups_destroy(l->cgroups);
	_exit(0);
}

static void on_signals(spd__launcher *l)
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

static void on_socket(spd__launcher *l)
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
	case SPD_WIRE_RELOAD:
		on_reload(l, body, len);
		break;
	case SPD_WIRE_RETIRE:
		on_retire(l, hdr.key);
		break;
	case SPD_WIRE_STALE:
		on_stale(l, hdr.key);
		break;
	default:
		break;
	}
	free(body);
}

static _Noreturn void run(spd__launcher *l)
{
	struct pollfd *pfd = NULL;
	spd__child **owner = NULL;
	int **which = NULL;
	size_t *zslot = NULL;
	size_t cap = 0;

	for (;;) {
		size_t n = 2, need = 2 + l->nslots;
		bool refill;
		int ready;
		for (spd__child *c = l->children; c != NULL; c = c->next)
			need += 4;
		if (need > cap) {
			cap = need * 2;
			pfd = realloc(pfd, cap * sizeof *pfd);
			owner = realloc(owner, cap * sizeof *owner);
			which = realloc(which, cap * sizeof *which);
			zslot = realloc(zslot, cap * sizeof *zslot);
			if (pfd == NULL || owner == NULL || which == NULL || zslot == NULL)
				die_with_front(l);
		}
		bool read_children = l->outq.bytes < SPD__OUTQ_HIGH;

		pfd[0] = (struct pollfd){.fd = l->sigfd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = l->sock,
					 .events = (short)(POLLIN | (l->outq.head != NULL ? POLLOUT : 0))};
		/* Zygote sockets: owner NULL, zslot = the zygote's slot. */
		for (size_t i = 0; i < l->nslots; i++) {
			if (l->slots[i] == NULL || l->slots[i]->z.sock < 0)
				continue;
			pfd[n] = (struct pollfd){.fd = l->slots[i]->z.sock, .events = POLLIN};
			owner[n] = NULL;
			which[n] = &l->slots[i]->z.sock;
			zslot[n] = i;
			n++;
		}
		for (spd__child *c = l->children; c != NULL; c = c->next) {
			int *fds[3] = {&c->fd_out, &c->fd_err, &c->fd_chan};
			/* A pre-started child's call, when its pipe did not take it
			 * whole: the child is reading it. */
			if (c->fd_req >= 0) {
				pfd[n] = (struct pollfd){.fd = c->fd_req, .events = POLLOUT};
				owner[n] = c;
				which[n] = &c->fd_req;
				n++;
			}
			for (int i = 0; i < 3 && read_children; i++) {
				if (*fds[i] < 0)
					continue;
				pfd[n] = (struct pollfd){.fd = *fds[i], .events = POLLIN};
				owner[n] = c;
				which[n] = fds[i];
				n++;
			}
		}
		/* Pools are refilled when a pass finds nothing to do: a poll that
		 * does not wait, then one fork if it came back empty. */
		refill = spd__idle_wanted(l, spd_clock_mono_ns());
		ready = poll(pfd, n, refill ? 0 : poll_timeout_ms(l));
		if (ready < 0 && errno != EINTR)
			die_with_front(l);
		spd__children_tick(l, spd_clock_mono_ns());
		spd__zygotes_tick(l, spd_clock_mono_ns());
		for (size_t i = 2; i < n; i++) {
			if (pfd[i].revents == 0)
				continue;
			if (owner[i] == NULL) {
				spd__zygote_news news;
				spd__zygote_readable(l, zslot[i], &news);
				on_zygote_news(l, &news);
			} else if (which[i] == &owner[i]->fd_req) {
				spd__idle_write_call(l, owner[i]);
			} else {
				spd__drain(l, owner[i], which[i]);
				if (*which[i] < 0)
					spd__child_on(l, owner[i], SPD__CEV_PIPE_EOF, NULL);
			}
		}
		if (pfd[0].revents != 0)
			on_signals(l);
		if (pfd[1].revents & POLLOUT)
			spd_wire_outq_flush(&l->outq, l->sock);
		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))
			on_socket(l);
		spd__children_report(l);
		sweep_slots(l);
		if (l->outq.head != NULL)
			spd_wire_outq_flush(&l->outq, l->sock);
		/* After the pass's frames went out: a START never waits for it. */
		if (refill && (ready == 0 || spd__idle_refill_due(l, spd_clock_mono_ns())))
			spd__idle_refill(l, spd_clock_mono_ns());
		if (ready == 0 || !refill)
			spd__idle_report(l);
	}
}


/* Picks what enforces memory_limit (cgroup.h) and says so in the log. */
static void setup_cgroups(spd__launcher *l, const char *force)
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

static _Noreturn void launcher_main(spd_launcher_boot *boot, int sock)
{
	const spd_config *cfg = boot->cfg;
	spd__launcher l = {.sock = sock, .sigfd = -1, .devnull = -1};
	size_t *idx = NULL, n = 0;
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
	/* SPD_LAUNCHER_FDS_PER_PROCESS descriptors per running process: the
	 * config loader refused a max_running the hard limit cannot carry. */
	spd_fd_limit_raise("launcher");
	spd_call_warm_up();
	l.worker = boot->worker != NULL && access(boot->worker, X_OK) == 0 ? strdup(boot->worker)
									      : NULL;
	l.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (l.devnull < 0 || add_slots(&l, boot, &idx, &n) < 0 || n != cfg->target_count) {
		spd_log(SPD_LOG_ERROR, "launcher setup failed", SPD_LOG_STR("error", strerror(errno)),
			SPD_LOG_END);
		_exit(1);
	}
	/* The launcher forks without exec: that is safe only while it has one
	 * thread. A target library whose constructor started a thread breaks it. */
	if (thread_count() > 1) {
		spd_log(SPD_LOG_ERROR, THREAD_MESSAGE, SPD_LOG_INT("threads", thread_count()),
			SPD_LOG_END);
		_exit(1);
	}
	l.slots_ready = true;
	l.max_idle = cfg->max_idle;
	setup_cgroups(&l, boot->memory_mechanism);
	send_ready(&l, SPD_WIRE_HELLO, idx, n);
	for (size_t i = 0; i < n; i++)
		spd__zygote_boot(&l, idx[i]);
	free(idx);
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
	rc = spd_launcher_boot_encode(cfg, NULL, getpid(), worker,
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
