/* The registry (registry/registry.h) with fake launcher ops: records, the start
 * callback, watchers, destroy, launcher loss, history eviction and shutdown;
 * and with a fake journal (registry/journal.h) that confirms when told. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "service/common/clock.h"
#include "service/common/log.h"
#include "service/config/config.h"
#include "service/registry/index.h"
#include "service/registry/journal.h"
#include "service/registry/registry.h"
#include "service/wire/messages.h"

/* ---- configs ---------------------------------------------------------------- */

static const char config_yaml[] =
	"listen: [\"127.0.0.1:0\"]\n"
	"history: {max_records: 100}\n"
	"defaults:\n"
	"  destroy_grace_period: 3s\n"
	"targets:\n"
	"  fn: {function: builtin:echo}\n"
	"  ex: {exec: [\"/bin/true\"]}\n"
	"  exa: {exec: [\"/bin/echo\"], allow_args: true, destroy_grace_period: 1s, timeout: 5s}\n"
	"  quick: {function: builtin:noop, destroy_grace_period: 0}\n";

/* History kept small, to see eviction. */
static const char small_history_yaml[] =
	"listen: [\"127.0.0.1:0\"]\n"
	"history: {max_records: 2}\n"
	"targets:\n"
	"  fn: {function: builtin:echo}\n";

/* Slots: two running in all, one for `one`; two may wait. */
static const char queue_yaml[] =
	"listen: [\"127.0.0.1:0\"]\n"
	"max_running: 2\n"
	"max_pending: 2\n"
	"targets:\n"
	"  a: {function: builtin:echo}\n"
	"  one: {function: builtin:noop, max_concurrent: 1}\n";

static spd_config *cfg, *small_cfg, *queue_cfg;

static spd_config *load(const char *yaml)
{
	char err[SPD_CONFIG_ERR_MAX] = "";
	spd_config *c = NULL;
	int rc = spd_config_load_string(yaml, strlen(yaml), "registry_test.yaml", NULL, &c, err);

	if (rc != 0)
		fail_msg("config: %s", err);
	return c;
}

static int group_setup(void **state)
{
	(void)state;
	spd_log_setup(SPD_LOG_ERROR, 0, "registry_test");
	cfg = load(config_yaml);
	small_cfg = load(small_history_yaml);
	queue_cfg = load(queue_yaml);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	spd_config_destroy(cfg);
	spd_config_destroy(small_cfg);
	spd_config_destroy(queue_cfg);
	return 0;
}

/* ---- the fake launcher: records what the registry sends ---------------------- */

#define MAX_SENT 128

typedef struct sent_start {
	uint64_t key;
	char id[SPD_ID_LEN + 1];
	char target[64];
	uint32_t argc;
	char arg0[64];
	uint32_t label_count;
	char label0[64];
	size_t input_len;
	int64_t grace_ms, timeout_ms;
	uint32_t target_id;
} sent_start;

typedef struct sent_destroy {
	uint64_t key;
	int64_t grace_ms;
} sent_destroy;

typedef struct fake {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t nstarts, ndestroys;
	sent_start starts[MAX_SENT];
	sent_destroy destroys[MAX_SENT];
	int start_rc;  /* what send_start returns */
	/* RELOAD frames: the names and ids of the targets each added. */
	size_t nreloads, nadded;
	char added[MAX_SENT][32];
	uint32_t added_ids[MAX_SENT];
	size_t nretired;
	uint32_t retired[MAX_SENT];
	size_t nstale;
	uint32_t stale[MAX_SENT];
} fake;

static int fake_send_start(void *ctx, uint64_t key, const spd_launch_req *req)
{
	fake *f = ctx;
	sent_start *s;

	pthread_mutex_lock(&f->mu);
	assert_true(f->nstarts < MAX_SENT);
	s = &f->starts[f->nstarts++];
	memset(s, 0, sizeof *s);
	s->key = key;
	snprintf(s->id, sizeof s->id, "%s", req->process_id);
	snprintf(s->target, sizeof s->target, "%s", req->target);
	s->argc = req->argc;
	if (req->argc > 0)
		snprintf(s->arg0, sizeof s->arg0, "%s", req->argv[0]);
	assert_null(req->argv[req->argc]);
	s->label_count = req->label_count;
	if (req->label_count > 0)
		snprintf(s->label0, sizeof s->label0, "%s=%s", req->labels[0], req->labels[1]);
	s->input_len = req->input_len;
	s->grace_ms = req->grace_ms;
	s->timeout_ms = req->timeout_ms;
	s->target_id = req->target_id;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	return f->start_rc;
}

static int fake_send_destroy(void *ctx, uint64_t key, int64_t grace_ms)
{
	fake *f = ctx;

	pthread_mutex_lock(&f->mu);
	assert_true(f->ndestroys < MAX_SENT);
	f->destroys[f->ndestroys].key = key;
	f->destroys[f->ndestroys].grace_ms = grace_ms;
	f->ndestroys++;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static int fake_send_reload(void *ctx, const spd_reload_req *req)
{
	fake *f = ctx;

	f->nreloads++;
	for (size_t i = 0; i < req->count; i++) {
		assert_true(f->nadded < MAX_SENT);
		snprintf(f->added[f->nadded], sizeof f->added[0], "%s", req->targets[i]->name);
		f->added_ids[f->nadded++] = req->ids[i];
	}
	return 0;
}

static int fake_send_stale(void *ctx, uint32_t id)
{
	fake *f = ctx;

	assert_true(f->nstale < MAX_SENT);
	f->stale[f->nstale++] = id;
	return 0;
}

static int fake_send_retire(void *ctx, uint32_t id)
{
	fake *f = ctx;

	assert_true(f->nretired < MAX_SENT);
	f->retired[f->nretired++] = id;
	return 0;
}

/* ---- recording callbacks ------------------------------------------------------ */

#define MAX_NOTES 16

/* What a callback saw: P is only valid during the call, so copy. */
typedef struct note_rec {
	spd_note note;
	bool terminal;
	spd_state state;
	uint64_t seq;
	bool destroyed, canceled, ran, threw;
	int32_t pid, exit_code, signal;
	spd_error_kind kind;
	bool oom_suspected;
	char type[64], message[128];
	char result[64];
	size_t result_len, stdout_len, stderr_len;
	char stdout_tail[64];
	bool output_truncated;
	char id[SPD_ID_LEN + 1];
} note_rec;

typedef struct recorder {
	size_t n;
	note_rec notes[MAX_NOTES];
	bool keep;  /* what the callback returns */
} recorder;

static bool record(void *ctx, const spd_watch_event *ev)
{
	recorder *rc = ctx;
	const spd_process *p = ev->p;
	spd_note note = ev->note;
	bool terminal = ev->terminal;
	note_rec *n;

	assert_true(rc->n < MAX_NOTES);
	n = &rc->notes[rc->n++];
	memset(n, 0, sizeof *n);
	n->note = note;
	n->terminal = terminal;
	n->state = p->state;
	n->seq = p->seq;
	n->destroyed = p->destroyed;
	n->canceled = p->canceled;
	n->ran = p->ran;
	n->threw = p->threw;
	n->pid = p->pid;
	n->exit_code = p->exit_code;
	n->signal = p->signal;
	n->kind = p->error.kind;
	n->oom_suspected = p->error.oom_suspected;
	snprintf(n->type, sizeof n->type, "%s", p->error.type ? p->error.type : "");
	snprintf(n->message, sizeof n->message, "%s", p->error.message ? p->error.message : "");
	n->result_len = p->result_len;
	if (p->result_len > 0 && p->result_len < sizeof n->result)
		memcpy(n->result, p->result, p->result_len);
	n->stdout_len = p->stdout_len;
	n->stderr_len = p->stderr_len;
	if (p->stdout_len > 0 && p->stdout_len < sizeof n->stdout_tail)
		memcpy(n->stdout_tail, p->stdout_tail, p->stdout_len);
	n->output_truncated = p->output_truncated;
	snprintf(n->id, sizeof n->id, "%s", p->id);
	return rc->keep;
}

/* spd_registry_watch of one process from its start, without output. */
static int watch_one(spd_registry *r, const char *id, void *ctx, uint64_t *wid)
{
	spd_watch_spec ws = {.id = id, .fn = record, .ctx = ctx};

	return spd_registry_watch(r, &ws, wid);
}

/* ---- fixture -------------------------------------------------------------------- */

typedef struct fixture {
	fake f;
	spd_registry *r;
} fixture;

static int fixture_setup_with(void **state, const spd_config *c)
{
	fixture *fx = calloc(1, sizeof *fx);
	spd_registry_ops ops = {fake_send_start, fake_send_destroy, NULL, fake_send_reload,
				fake_send_retire, fake_send_stale, NULL};

	assert_non_null(fx);
	pthread_mutex_init(&fx->f.mu, NULL);
	pthread_cond_init(&fx->f.cv, NULL);
	ops.ctx = &fx->f;
	fx->r = spd_registry_create(c, &ops);
	assert_non_null(fx->r);
	*state = fx;
	return 0;
}

static int setup(void **state)
{
	return fixture_setup_with(state, cfg);
}

static int setup_small(void **state)
{
	return fixture_setup_with(state, small_cfg);
}

static int setup_queue(void **state)
{
	return fixture_setup_with(state, queue_cfg);
}

static int teardown(void **state)
{
	fixture *fx = *state;

	spd_registry_destroy(fx->r);
	pthread_cond_destroy(&fx->f.cv);
	pthread_mutex_destroy(&fx->f.mu);
	free(fx);
	return 0;
}

/* ---- helpers ----------------------------------------------------------------------- */

static spd_start_params params(const char *target)
{
	spd_start_params sp;

	memset(&sp, 0, sizeof sp);
	sp.target = target;
	sp.timeout_ms = -1;
	sp.grace_ms = -1;
	return sp;
}

/* Starts TARGET with default params; returns what the fake saw. */
static const sent_start *start(fixture *fx, const char *target, recorder *rc)
{
	spd_start_params sp = params(target);
	size_t before = fx->f.nstarts;

	assert_int_equal(spd_registry_start(fx->r, &sp, record, rc), 0);
	assert_int_equal(fx->f.nstarts, before + 1);
	return &fx->f.starts[before];
}

static spd_exit_report make_report(int status, uint32_t flags)
{
	spd_exit_report rep;

	memset(&rep, 0, sizeof rep);
	rep.flags = flags;
	rep.pid = (flags & SPD_EXIT_LAUNCH_FAILED) ? 0 : 4242;
	rep.wait_status = status;
	rep.ended_ns = spd_clock_real_ns();
	return rep;
}

/* Feeds an EXITED report and releases what the registry did not take. */
static void exited(fixture *fx, uint64_t key, spd_exit_report *rep)
{
	spd_registry_on_exited(fx->r, key, rep);
	spd_exit_report_release(rep);
}

static void exit_status(fixture *fx, uint64_t key, int status, uint32_t flags)
{
	spd_exit_report rep = make_report(status, flags);

	exited(fx, key, &rep);
}

/* A SNAPSHOT of ID, or fails. */
static note_rec get(fixture *fx, const char *id)
{
	recorder rc = {0};

	assert_int_equal(spd_registry_get(fx->r, id, record, &rc), 0);
	assert_int_equal(rc.n, 1);
	assert_int_equal(rc.notes[0].note, SPD_NOTE_SNAPSHOT);
	return rc.notes[0];
}

static bool known(fixture *fx, const char *id)
{
	recorder rc = {0};

	return spd_registry_get(fx->r, id, record, &rc) == 0;
}

/* ---- start ---------------------------------------------------------------------- */

static void start_pending_running_succeeded(void **state)
{
	fixture *fx = *state;
	recorder rc = {.keep = true};  /* the start callback's return is ignored */
	const sent_start *s = start(fx, "fn", &rc);
	spd_exit_report rep;
	note_rec n;

	assert_int_equal(strlen(s->id), SPD_ID_LEN);
	assert_string_equal(s->target, "fn");
	assert_int_equal(rc.n, 0);
	n = get(fx, s->id);
	assert_int_equal(n.state, SPD_STATE_PENDING);
	assert_int_equal(n.seq, 1);
	assert_false(n.terminal);
	assert_int_equal(spd_registry_live_count(fx->r), 1);

	spd_registry_on_started(fx->r, s->key, 1234, spd_clock_real_ns());
	assert_int_equal(rc.n, 1);
	assert_int_equal(rc.notes[0].note, SPD_NOTE_STATE);
	assert_int_equal(rc.notes[0].state, SPD_STATE_RUNNING);
	assert_int_equal(rc.notes[0].seq, 2);
	assert_int_equal(rc.notes[0].pid, 1234);
	assert_false(rc.notes[0].terminal);
	assert_string_equal(rc.notes[0].id, s->id);

	rep = make_report(W_EXITCODE(0, 0), 0);
	rep.result = (uint8_t *)strdup("hello");
	rep.result_len = 5;
	rep.stdout_tail = (uint8_t *)strdup("out");
	rep.stdout_len = 3;
	rep.stdout_total = 3;
	spd_registry_on_exited(fx->r, s->key, &rep);
	/* Moved in, not copied. */
	assert_null(rep.result);
	assert_null(rep.stdout_tail);
	spd_exit_report_release(&rep);

	/* Called exactly once, although it asked to stay. */
	assert_int_equal(rc.n, 1);
	n = get(fx, s->id);
	assert_int_equal(n.state, SPD_STATE_SUCCEEDED);
	assert_int_equal(n.seq, 3);
	assert_true(n.terminal);
	assert_true(n.ran);
	assert_false(n.threw);
	assert_false(n.destroyed);
	assert_int_equal(n.kind, SPD_ERR_NONE);
	assert_int_equal(n.result_len, 5);
	assert_string_equal(n.result, "hello");
	assert_string_equal(n.stdout_tail, "out");
	assert_false(n.output_truncated);
	assert_int_equal(spd_registry_live_count(fx->r), 0);
}

static void start_callback_on_launch_failure(void **state)
{
	fixture *fx = *state;
	recorder rc = {0};
	const sent_start *s = start(fx, "ex", &rc);
	spd_exit_report rep = make_report(0, SPD_EXIT_LAUNCH_FAILED);

	rep.launch_stage = strdup("exec");
	rep.launch_errno = ENOENT;
	rep.launch_message = strdup("No such file or directory");
	exited(fx, s->key, &rep);
	assert_int_equal(rc.n, 1);
	assert_int_equal(rc.notes[0].state, SPD_STATE_FAILED);
	assert_true(rc.notes[0].terminal);
	assert_int_equal(rc.notes[0].seq, 2);
	assert_int_equal(rc.notes[0].kind, SPD_ERR_LAUNCH);
	assert_false(rc.notes[0].ran);
	assert_true(rc.notes[0].threw);
	assert_int_equal(rc.notes[0].pid, 0);
	assert_string_equal(rc.notes[0].type, "ENOENT");
	assert_non_null(strstr(rc.notes[0].message, "exec"));
	assert_non_null(strstr(rc.notes[0].message, "No such file"));
}

static void start_rejects(void **state)
{
	fixture *fx = *state;
	recorder rc = {0};
	const char *args[] = {"x"};
	spd_start_params sp = params("nosuch");

	assert_int_equal(spd_registry_start(fx->r, &sp, record, &rc), -ENOENT);
	sp = params("ex");
	sp.argv = args;
	sp.argc = 1;
	assert_int_equal(spd_registry_start(fx->r, &sp, record, &rc), -EINVAL);
	assert_int_equal(fx->f.nstarts, 0);
	assert_int_equal(spd_registry_live_count(fx->r), 0);

	/* allow_args: true takes them; so do function targets. */
	sp.target = "exa";
	assert_int_equal(spd_registry_start(fx->r, &sp, record, &rc), 0);
	sp.target = "fn";
	assert_int_equal(spd_registry_start(fx->r, &sp, record, &rc), 0);
	assert_int_equal(fx->f.nstarts, 2);
	assert_int_equal(fx->f.starts[0].argc, 1);
	assert_string_equal(fx->f.starts[0].arg0, "x");
	assert_int_equal(rc.n, 0);
}

static void start_passes_request(void **state)
{
	fixture *fx = *state;
	recorder rc = {0};
	const char *args[] = {"a1", "a2"};
	const char *labels[] = {"team", "ml", "run", "7"};
	spd_start_params sp = params("exa");
	const sent_start *s;

	sp.argv = args;
	sp.argc = 2;
	sp.labels = labels;
	sp.label_count = 2;
	sp.input = "0123456789";
	sp.input_len = 10;
	assert_int_equal(spd_registry_start(fx->r, &sp, record, &rc), 0);
	s = &fx->f.starts[0];
	assert_int_equal(s->argc, 2);
	assert_string_equal(s->arg0, "a1");
	assert_int_equal(s->label_count, 2);
	assert_string_equal(s->label0, "team=ml");
	assert_int_equal(s->input_len, 10);
	/* Defaults: the target's. */
	assert_int_equal(s->grace_ms, 1000);
	assert_int_equal(s->timeout_ms, 5000);
	assert_int_not_equal(s->key, 0);
}

static void overrides_clamped(void **state)
{
	fixture *fx = *state;
	recorder rc = {0};
	static const struct {
		const char *target;
		int64_t grace, timeout;      /* requested */
		int64_t want_grace, want_timeout;
	} cases[] = {
		{"exa", 500, 2000, 500, 2000},       /* under the target's: kept */
		{"exa", 60000, 60000, 1000, 5000},   /* over: the target's */
		{"exa", -1, -1, 1000, 5000},         /* absent: the target's */
		{"exa", -1, 0, 1000, 5000},          /* "none" cannot escape the target's cap */
		{"fn", 60000, 60000, 3000, 60000},   /* no target timeout: any fits */
		{"fn", 0, -1, 0, 0},                 /* grace 0: kill at once */
		/* A target grace of 0 means "kill at once", not "no limit": a request
		 * cannot lengthen it. */
		{"quick", 5000, -1, 0, 0},
		{"quick", -1, -1, 0, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		spd_start_params sp = params(cases[i].target);
		sp.grace_ms = cases[i].grace;
		sp.timeout_ms = cases[i].timeout;
		assert_int_equal(spd_registry_start(fx->r, &sp, record, &rc), 0);
		if (fx->f.starts[i].grace_ms != cases[i].want_grace ||
		    fx->f.starts[i].timeout_ms != cases[i].want_timeout)
			fail_msg("case %zu (%s grace %lld timeout %lld): got grace %lld timeout %lld, "
				 "want %lld %lld", i, cases[i].target, (long long)cases[i].grace,
				 (long long)cases[i].timeout, (long long)fx->f.starts[i].grace_ms,
				 (long long)fx->f.starts[i].timeout_ms,
				 (long long)cases[i].want_grace, (long long)cases[i].want_timeout);
	}
}

static void send_start_failure_is_lost(void **state)
{
	fixture *fx = *state;
	recorder rc = {0};
	const sent_start *s;
	note_rec n;

	fx->f.start_rc = -EPIPE;
	s = start(fx, "fn", &rc);
	assert_int_equal(rc.n, 1);
	assert_int_equal(rc.notes[0].state, SPD_STATE_FAILED);
	assert_int_equal(rc.notes[0].kind, SPD_ERR_LOST);
	assert_true(rc.notes[0].terminal);
	n = get(fx, s->id);
	assert_false(n.ran);
	assert_int_equal(spd_registry_live_count(fx->r), 0);
}

/* ---- watch ------------------------------------------------------------------------- */

static void watch_to_terminal(void **state)
{
	fixture *fx = *state;
	recorder start_rc = {0}, w = {.keep = true}, early = {.keep = true};
	const sent_start *s = start(fx, "fn", &start_rc);
	uint64_t wid = 0, early_id = 0;
	spd_exit_report rep;

	spd_registry_on_started(fx->r, s->key, 99, spd_clock_real_ns());
	assert_int_equal(watch_one(fx->r, s->id, &w, &wid), 0);
	assert_int_not_equal(wid, 0);
	assert_int_equal(w.n, 1);
	assert_int_equal(w.notes[0].note, SPD_NOTE_SNAPSHOT);
	assert_int_equal(w.notes[0].state, SPD_STATE_RUNNING);
	assert_int_equal(w.notes[0].seq, 2);
	assert_false(w.notes[0].terminal);

	assert_int_equal(watch_one(fx->r, s->id, &early, &early_id), 0);
	assert_int_not_equal(early_id, wid);
	assert_true(spd_registry_unwatch(fx->r, early_id));
	assert_false(spd_registry_unwatch(fx->r, early_id));

	rep = make_report(W_EXITCODE(3, 0), 0);
	rep.stderr_tail = (uint8_t *)strdup("Traceback: boom\n");
	rep.stderr_len = 16;
	rep.stderr_total = 1000; /* more than kept */
	exited(fx, s->key, &rep);

	assert_int_equal(w.n, 2);
	assert_int_equal(w.notes[1].note, SPD_NOTE_STATE);
	assert_true(w.notes[1].terminal);
	assert_int_equal(w.notes[1].state, SPD_STATE_FAILED);
	assert_int_equal(w.notes[1].seq, 3);
	assert_int_equal(w.notes[1].kind, SPD_ERR_EXIT_CODE);
	assert_int_equal(w.notes[1].exit_code, 3);
	assert_int_equal(w.notes[1].signal, 0);
	assert_true(w.notes[1].threw);
	assert_true(w.notes[1].ran);
	assert_int_equal(w.notes[1].stderr_len, 16);
	assert_true(w.notes[1].output_truncated);
	/* The unwatched one saw nothing more; the terminal event removed the other. */
	assert_int_equal(early.n, 1);
	assert_false(spd_registry_unwatch(fx->r, wid));
	assert_false(spd_registry_unwatch(fx->r, 0));
}

static void watcher_returning_false_is_removed(void **state)
{
	fixture *fx = *state;
	recorder start_rc = {0}, w = {.keep = false};
	const sent_start *s = start(fx, "fn", &start_rc);
	uint64_t wid = 0;

	assert_int_equal(watch_one(fx->r, s->id, &w, &wid), 0);
	spd_registry_on_started(fx->r, s->key, 99, spd_clock_real_ns());
	assert_int_equal(w.n, 2); /* SNAPSHOT, RUNNING, then it asked to go */
	exit_status(fx, s->key, W_EXITCODE(0, 0), 0);
	assert_int_equal(w.n, 2);
	assert_false(spd_registry_unwatch(fx->r, wid));
}

static void watch_finished_is_snapshot_only(void **state)
{
	fixture *fx = *state;
	recorder start_rc = {0}, w = {.keep = true};
	const sent_start *s = start(fx, "fn", &start_rc);
	uint64_t wid = 77;

	spd_registry_on_started(fx->r, s->key, 99, spd_clock_real_ns());
	exit_status(fx, s->key, W_EXITCODE(0, SIGSEGV), 0);
	assert_int_equal(watch_one(fx->r, s->id, &w, &wid), 0);
	assert_int_equal(wid, 0);
	assert_int_equal(w.n, 1);
	assert_int_equal(w.notes[0].note, SPD_NOTE_SNAPSHOT);
	assert_true(w.notes[0].terminal);
	assert_int_equal(w.notes[0].state, SPD_STATE_FAILED);
	assert_int_equal(w.notes[0].kind, SPD_ERR_SIGNALED);
	assert_int_equal(w.notes[0].signal, SIGSEGV);
	assert_string_equal(w.notes[0].type, "SIGSEGV");
	assert_int_equal(w.notes[0].seq, 3);
	/* A later stale report changes nothing and calls no one. */
	exit_status(fx, s->key, W_EXITCODE(0, 0), 0);
	spd_registry_on_started(fx->r, s->key, 5, 0);
	assert_int_equal(w.n, 1);
	assert_int_equal(get(fx, s->id).state, SPD_STATE_FAILED);
	assert_int_equal(get(fx, s->id).seq, 3);
}

/* A subscriber with a release callback and a codec: counts what the registry
 * does for it. */
typedef struct counted {
	recorder rc;
	int released;              /* release callback runs */
	int all_aborted;           /* ABORT notes of a watch-all */
	int msgs;                  /* callbacks that got a MSG */
	const void *last_msg;
	size_t outputs;
	const void *last_out_msg;
} counted;

static int encodes, output_encodes, frees;

static void *count_encode(const spd_watch_event *ev)
{
	int *m = malloc(sizeof *m);

	assert_non_null(m);
	*m = (int)ev->p->seq;
	encodes++;
	return m;
}

static void *count_encode_output(const spd_output_event *ev)
{
	int *m = malloc(sizeof *m);

	assert_non_null(m);
	*m = (int)ev->p->seq;
	output_encodes++;
	return m;
}

static void count_free(void *msg)
{
	frees++;
	free(msg);
}

static const spd_watch_codec count_codec = {count_encode, count_encode_output, count_free};

static bool counted_event(void *ctx, const spd_watch_event *ev)
{
	counted *c = ctx;

	assert_int_equal(c->released, 0); /* nothing after the release */
	if (ev->p == NULL) {
		assert_int_equal(ev->note, SPD_NOTE_ABORT); /* a watch-all's end */
		assert_null(ev->msg);
		c->all_aborted++;
		return false;
	}
	if (ev->msg != NULL) {
		assert_int_equal(*(const int *)ev->msg, (int)ev->p->seq);
		c->msgs++;
		c->last_msg = ev->msg;
	}
	return record(&c->rc, ev);
}

static void counted_output(void *ctx, const spd_output_event *ev)
{
	counted *c = ctx;

	assert_int_equal(c->released, 0);
	assert_non_null(ev->msg);
	assert_int_equal(*(const int *)ev->msg, (int)ev->p->seq);
	c->outputs++;
	c->last_out_msg = ev->msg;
}

static void counted_release(void *ctx)
{
	((counted *)ctx)->released++;
}

static int watch_counted(spd_registry *r, const char *id, counted *c, uint64_t *wid)
{
	spd_watch_spec ws = {
		.id = id,
		.fn = counted_event,
		.out_fn = counted_output,
		.codec = &count_codec,
		.release = counted_release,
		.ctx = c,
	};

	return spd_registry_watch(r, &ws, wid);
}

/* Every way a subscription ends runs its release callback exactly once: the
 * terminal event, FN returning false, unwatch, the shutdown's abort, and the
 * registry's end; a watch that subscribed nothing never does. */
static void release_runs_once(void **state)
{
	fixture *fx = *state;
	recorder start_rc = {0};
	const sent_start *s = start(fx, "fn", &start_rc);
	counted to_end = {.rc.keep = true}, refuses = {.rc.keep = false}, unwatched = {.rc.keep = true};
	counted aborted = {.rc.keep = true}, late = {.rc.keep = true};
	counted all_refuses = {.rc.keep = false}, all_left = {.rc.keep = true};
	uint64_t id_end, id_refuses, id_unwatched, id_aborted, id_late = 1, id_all, id_left;
	const sent_start *s2;

	spd_registry_on_started(fx->r, s->key, 99, spd_clock_real_ns());
	assert_int_equal(watch_counted(fx->r, s->id, &to_end, &id_end), 0);
	assert_int_equal(watch_counted(fx->r, s->id, &refuses, &id_refuses), 0);
	assert_int_equal(watch_counted(fx->r, s->id, &unwatched, &id_unwatched), 0);
	assert_int_equal(watch_counted(fx->r, NULL, &all_refuses, &id_all), 0);
	assert_int_equal(watch_counted(fx->r, NULL, &all_left, &id_left), 0);
	/* The first burst (a SNAPSHOT) does not end even one that says false. */
	assert_int_equal(refuses.released + all_refuses.released, 0);

	assert_true(spd_registry_unwatch(fx->r, id_unwatched));
	assert_int_equal(unwatched.released, 1);
	assert_false(spd_registry_unwatch(fx->r, id_unwatched));
	assert_int_equal(unwatched.released, 1);

	s2 = start(fx, "fn", &start_rc); /* PENDING: watch-all hears it */
	assert_int_equal(all_refuses.released, 1);
	assert_int_equal(all_left.released, 0);
	assert_false(spd_registry_unwatch(fx->r, id_all));

	spd_registry_on_output(fx->r, s->key, 1, 0, "hi", 2);
	assert_int_equal(refuses.released, 0); /* output's return is not asked */
	spd_registry_on_started(fx->r, s2->key, 100, spd_clock_real_ns());
	exit_status(fx, s->key, W_EXITCODE(0, 0), 0);
	assert_int_equal(to_end.released, 1);
	assert_int_equal(refuses.released, 1);
	assert_false(spd_registry_unwatch(fx->r, id_end));
	assert_false(spd_registry_unwatch(fx->r, id_refuses));

	/* Already terminal: delivered at once, nothing subscribed, no release. */
	assert_int_equal(watch_counted(fx->r, s->id, &late, &id_late), 0);
	assert_int_equal(id_late, 0);
	assert_int_equal(late.rc.n, 1);
	assert_int_equal(late.released, 0);

	assert_int_equal(watch_counted(fx->r, s2->id, &aborted, &id_aborted), 0);
	spd_registry_abort_watchers(fx->r);
	assert_int_equal(aborted.released, 1);
	assert_int_equal(aborted.rc.notes[aborted.rc.n - 1].note, SPD_NOTE_ABORT);
	assert_int_equal(all_left.released, 1);
	assert_int_equal(all_left.all_aborted, 1);
	assert_false(spd_registry_unwatch(fx->r, id_aborted));
	assert_false(spd_registry_unwatch(fx->r, id_left));
	assert_int_equal(to_end.released + refuses.released + unwatched.released + aborted.released +
				 all_refuses.released + all_left.released + late.released,
			 6);
}

/* A subscription left when the registry is freed is released then, once. */
static void release_at_registry_end(void **state)
{
	fixture *fx = *state;
	recorder start_rc = {0};
	const sent_start *s = start(fx, "fn", &start_rc);
	counted c = {.rc.keep = true};
	uint64_t wid;

	assert_int_equal(watch_counted(fx->r, s->id, &c, &wid), 0);
	spd_registry_destroy(fx->r);
	fx->r = NULL;
	assert_int_equal(c.released, 1);
}

/* Every watcher of an event gets the one encoding of it: three watchers of
 * one process and a watch-all cost one encode per state event and per output
 * chunk, all freed after delivery. */
static void events_encoded_once(void **state)
{
	fixture *fx = *state;
	recorder start_rc = {0};
	const sent_start *s = start(fx, "fn", &start_rc);
	counted w[4] = {{.rc.keep = true}, {.rc.keep = true}, {.rc.keep = true}, {.rc.keep = true}};
	uint64_t wid[4];

	encodes = output_encodes = frees = 0;
	for (int i = 0; i < 3; i++)
		assert_int_equal(watch_counted(fx->r, s->id, &w[i], &wid[i]), 0);
	assert_int_equal(watch_counted(fx->r, NULL, &w[3], &wid[3]), 0);
	/* The first bursts: one SNAPSHOT each, encoded for each. */
	assert_int_equal(encodes, 4);
	assert_int_equal(frees, 4);

	encodes = frees = 0;
	spd_registry_on_started(fx->r, s->key, 99, spd_clock_real_ns());
	assert_int_equal(encodes, 1);
	spd_registry_on_output(fx->r, s->key, 1, 0, "out", 3);
	spd_registry_on_output(fx->r, s->key, 2, 0, "err", 3);
	assert_int_equal(output_encodes, 2);
	exit_status(fx, s->key, W_EXITCODE(0, 0), 0);
	assert_int_equal(encodes, 2);
	assert_int_equal(frees, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(w[i].msgs, 3);  /* SNAPSHOT, RUNNING, SUCCEEDED */
		assert_int_equal(w[i].outputs, 2);
		if (i > 0) {
			assert_ptr_equal(w[i].last_msg, w[0].last_msg);
			assert_ptr_equal(w[i].last_out_msg, w[0].last_out_msg);
		}
	}
	assert_true(spd_registry_unwatch(fx->r, wid[3]));
}

/* ---- destroy ---------------------------------------------------------------------- */

static void destroy_running(void **state)
{
	fixture *fx = *state;
	recorder start_rc = {0}, d = {0}, w = {.keep = true};
	const sent_start *s = start(fx, "exa", &start_rc);
	uint64_t wid;
	note_rec n;

	spd_registry_on_started(fx->r, s->key, 99, spd_clock_real_ns());
	assert_int_equal(watch_one(fx->r, s->id, &w, &wid), 0);
	/* 60 s asked, the target allows 1 s. */
	assert_int_equal(spd_registry_destroy_process(fx->r, s->id, 60000, false, record, &d), 0);
	assert_int_equal(fx->f.ndestroys, 1);
	assert_int_equal(fx->f.destroys[0].key, s->key);
	assert_int_equal(fx->f.destroys[0].grace_ms, 1000);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.notes[0].note, SPD_NOTE_SNAPSHOT);
	assert_int_equal(d.notes[0].state, SPD_STATE_RUNNING);
	assert_true(d.notes[0].destroyed);
	assert_true(d.notes[0].canceled);
	assert_false(d.notes[0].terminal);
	/* No state entered: no event, no sequence number. */
	assert_int_equal(w.n, 1);
	assert_int_equal(get(fx, s->id).seq, 2);

	/* Repeats that would not end the grace sooner send nothing: a stalled
	 * launcher's channel cannot be filled by calling Destroy again. */
	for (int i = 0; i < 5; i++) {
		d.n = 0;
		assert_int_equal(spd_registry_destroy_process(fx->r, s->id, 1000, false, record, &d), 0);
		assert_int_equal(d.n, 1);
		assert_true(d.notes[0].destroyed);
	}
	assert_int_equal(fx->f.ndestroys, 1);

	/* A second destroy with a shorter grace is passed on. */
	assert_int_equal(spd_registry_destroy_process(fx->r, s->id, 10, false, record, &d), 0);
	assert_int_equal(fx->f.ndestroys, 2);
	assert_int_equal(fx->f.destroys[1].grace_ms, 10);
	/* And the same shorter one again is not. */
	assert_int_equal(spd_registry_destroy_process(fx->r, s->id, 10, false, record, &d), 0);
	assert_int_equal(fx->f.ndestroys, 2);

	exit_status(fx, s->key, W_EXITCODE(0, SIGTERM), SPD_EXIT_SENT_STOP);
	n = get(fx, s->id);
	assert_int_equal(n.state, SPD_STATE_CANCELED);
	assert_true(n.destroyed);
	assert_true(n.canceled);
	assert_true(n.ran);
	assert_false(n.threw);
	assert_int_equal(n.kind, SPD_ERR_NONE);
	assert_int_equal(n.signal, SIGTERM);
	assert_int_equal(w.n, 2);
	assert_int_equal(w.notes[1].state, SPD_STATE_CANCELED);
	assert_true(w.notes[1].terminal);
}

static bool fake_congested(void *ctx)
{
	(void)ctx;
	return true;
}

/* A launcher that takes no frames: new starts are refused (-EBUSY), and
 * nothing is recorded or sent for them. */
static void start_refused_while_congested(void **state)
{
	fixture *fx = *state;
	spd_registry_ops ops = {fake_send_start, fake_send_destroy, fake_congested,
				fake_send_reload, fake_send_retire, fake_send_stale, &fx->f};
	spd_registry *r = spd_registry_create(cfg, &ops);
	spd_start_params sp = {.target = "fn", .timeout_ms = -1, .grace_ms = -1};
	recorder rc = {0};

	assert_non_null(r);
	assert_int_equal(spd_registry_start(r, &sp, record, &rc), -EBUSY);
	assert_int_equal(rc.n, 0);
	assert_int_equal(fx->f.nstarts, 0);
	assert_int_equal(spd_registry_live_count(r), 0);
	spd_registry_destroy(r);
}

static void destroy_wait(void **state)
{
	fixture *fx = *state;
	recorder start_rc = {0}, d = {.keep = true};
	const sent_start *s = start(fx, "fn", &start_rc);

	spd_registry_on_started(fx->r, s->key, 99, spd_clock_real_ns());
	assert_int_equal(spd_registry_destroy_process(fx->r, s->id, -1, true, record, &d), 0);
	assert_int_equal(fx->f.destroys[0].grace_ms, 3000);
	assert_int_equal(d.n, 0);
	exit_status(fx, s->key, W_EXITCODE(0, SIGKILL), SPD_EXIT_SENT_STOP | SPD_EXIT_SENT_KILL);
	assert_int_equal(d.n, 1);
	assert_true(d.notes[0].terminal);
	assert_int_equal(d.notes[0].state, SPD_STATE_CANCELED);
	assert_false(d.notes[0].oom_suspected);

	/* On a terminal process, wait answers at once. */
	assert_int_equal(spd_registry_destroy_process(fx->r, s->id, -1, true, record, &d), 0);
	assert_int_equal(d.n, 2);
	assert_true(d.notes[1].terminal);
	assert_int_equal(fx->f.ndestroys, 1);
}

static void destroy_pending(void **state)
{
	fixture *fx = *state;
	recorder start_rc = {0}, d = {0};
	const sent_start *s = start(fx, "fn", &start_rc);
	note_rec n;

	assert_int_equal(spd_registry_destroy_process(fx->r, s->id, -1, false, record, &d), 0);
	assert_int_equal(fx->f.ndestroys, 1);
	assert_int_equal(d.notes[0].state, SPD_STATE_PENDING);
	assert_true(d.notes[0].destroyed);
	assert_true(d.notes[0].canceled);
	assert_int_equal(get(fx, s->id).seq, 1);
	assert_int_equal(start_rc.n, 0);

	/* The launcher never started it. */
	exit_status(fx, s->key, 0, SPD_EXIT_LAUNCH_FAILED);
	n = get(fx, s->id);
	assert_int_equal(n.state, SPD_STATE_CANCELED);
	assert_false(n.ran);
	assert_false(n.threw);
	assert_int_equal(n.pid, 0);
	assert_int_equal(n.seq, 2);
	assert_int_equal(start_rc.n, 1);
	assert_int_equal(start_rc.notes[0].state, SPD_STATE_CANCELED);
}

static void destroy_after_end(void **state)
{
	fixture *fx = *state;
	recorder start_rc = {0}, d = {0};
	const sent_start *s = start(fx, "fn", &start_rc);
	note_rec n;

	spd_registry_on_started(fx->r, s->key, 99, spd_clock_real_ns());
	exit_status(fx, s->key, W_EXITCODE(0, 0), 0);
	assert_int_equal(spd_registry_destroy_process(fx->r, s->id, -1, false, record, &d), 0);
	assert_int_equal(fx->f.ndestroys, 0);
	assert_int_equal(d.n, 1);
	assert_true(d.notes[0].terminal);
	n = get(fx, s->id);
	assert_int_equal(n.state, SPD_STATE_SUCCEEDED);
	assert_true(n.destroyed);
	assert_false(n.canceled);
	assert_int_equal(n.seq, 3);
}

static void unknown_ids(void **state)
{
	fixture *fx = *state;
	recorder rc = {0};
	uint64_t wid = 5;
	const char *id = "01890000-0000-7000-8000-000000000000";

	assert_int_equal(spd_registry_destroy_process(fx->r, id, -1, false, record, &rc), -ENOENT);
	assert_int_equal(spd_registry_destroy_process(fx->r, "", -1, true, record, &rc), -ENOENT);
	assert_int_equal(spd_registry_get(fx->r, id, record, &rc), -ENOENT);
	assert_int_equal(watch_one(fx->r, id, &rc, &wid), -ENOENT);
	assert_int_equal(wid, 0);
	assert_false(spd_registry_unwatch(fx->r, 12345));
	assert_int_equal(rc.n, 0);
	assert_int_equal(fx->f.ndestroys, 0);
	/* Reports for keys never given out are ignored. */
	exit_status(fx, 999, W_EXITCODE(0, 0), 0);
	spd_registry_on_started(fx->r, 998, 1, 0);
}

/* ---- launcher lost ------------------------------------------------------------------ */

static void launcher_lost(void **state)
{
	fixture *fx = *state;
	recorder rc_pending = {0}, rc_running = {0}, rc_done = {0}, w = {.keep = true};
	const sent_start *pending = start(fx, "fn", &rc_pending);
	const sent_start *running = start(fx, "fn", &rc_running);
	const sent_start *done = start(fx, "fn", &rc_done);
	spd_start_params sp = params("fn");
	uint64_t wid;
	note_rec n;

	spd_registry_on_started(fx->r, running->key, 10, spd_clock_real_ns());
	spd_registry_on_started(fx->r, done->key, 11, spd_clock_real_ns());
	exit_status(fx, done->key, W_EXITCODE(0, 0), 0);
	assert_int_equal(watch_one(fx->r, running->id, &w, &wid), 0);
	assert_int_equal(spd_registry_live_count(fx->r), 2);

	spd_registry_on_launcher_lost(fx->r);
	assert_int_equal(spd_registry_live_count(fx->r), 0);

	n = get(fx, pending->id);
	assert_int_equal(n.state, SPD_STATE_FAILED);
	assert_int_equal(n.kind, SPD_ERR_LOST);
	assert_false(n.ran);
	assert_true(n.threw);
	assert_int_equal(rc_pending.n, 1); /* the start callback fires */
	assert_int_equal(rc_pending.notes[0].kind, SPD_ERR_LOST);

	n = get(fx, running->id);
	assert_int_equal(n.state, SPD_STATE_FAILED);
	assert_int_equal(n.kind, SPD_ERR_LOST);
	assert_true(n.ran);
	assert_int_equal(w.n, 2);
	assert_true(w.notes[1].terminal);
	assert_int_equal(w.notes[1].kind, SPD_ERR_LOST);

	n = get(fx, done->id);
	assert_int_equal(n.state, SPD_STATE_SUCCEEDED);
	assert_int_equal(n.kind, SPD_ERR_NONE);

	assert_int_equal(spd_registry_start(fx->r, &sp, record, &rc_done), -ESHUTDOWN);
	assert_int_equal(fx->f.nstarts, 3);
}

/* ---- history ------------------------------------------------------------------------ */

static void history_eviction(void **state)
{
	fixture *fx = *state;  /* history.max_records: 2 */
	recorder rc[6];
	const sent_start *s[6];

	memset(rc, 0, sizeof rc);
	for (int i = 0; i < 6; i++)
		s[i] = start(fx, "fn", &rc[i]);
	/* s[0] (the oldest) stays live; the others end in order. */
	for (int i = 1; i < 6; i++) {
		spd_registry_on_started(fx->r, s[i]->key, 100 + i, spd_clock_real_ns());
		exit_status(fx, s[i]->key, W_EXITCODE(0, 0), 0);
	}
	assert_true(known(fx, s[0]->id));
	assert_false(known(fx, s[1]->id));
	assert_false(known(fx, s[2]->id));
	assert_false(known(fx, s[3]->id));
	assert_true(known(fx, s[4]->id));
	assert_true(known(fx, s[5]->id));
	assert_int_equal(spd_registry_live_count(fx->r), 1);

	/* Live records never count against the history nor get evicted. */
	exit_status(fx, s[0]->key, 0, SPD_EXIT_LAUNCH_FAILED);
	assert_false(known(fx, s[0]->id));
	assert_true(known(fx, s[4]->id));
	assert_true(known(fx, s[5]->id));
}


/* ---- listing: the indexes ---------------------------------------------------------- */

/* The ordered index under the listings: "first key after K" and the walk
 * from it, against a plain array, with keys inserted in any order. */
static void index_matches_sorted_keys(void **state)
{
	enum { N = 3000 };
	static bool in[N];
	spd__index x = SPD__INDEX_INIT;
	uint64_t rnd = 7;

	(void)state;
	memset(in, 0, sizeof in);
	for (int step = 0; step < 20000; step++) {
		uint64_t k;
		rnd ^= rnd << 13;
		rnd ^= rnd >> 7;
		rnd ^= rnd << 17;
		k = 1 + rnd % (N - 1);
		if (in[k] && (rnd >> 30) % 2 == 0) {
			spd__index_remove(&x, k);
			in[k] = false;
		} else if (!in[k]) {
			assert_int_equal(spd__index_insert(&x, k, &in[k]), 0);
			in[k] = true;
		}
		if (step % 1999 == 0) {
			for (uint64_t after = 0; after < N; after += 37) {
				spd__inode *n = spd__index_after(&x, after);
				for (uint64_t j = after + 1; j < N; j++) {
					if (!in[j])
						continue;
					assert_non_null(n);
					assert_int_equal(n->key, j);
					assert_ptr_equal(n->val, &in[j]);
					n = n->next[0];
				}
				assert_null(n);
			}
		}
	}
	spd__index_remove(&x, N + 5); /* absent: nothing */
	spd__index_release(&x);
	assert_null(spd__index_after(&x, 0));
}


typedef struct listed {
	size_t n;
	char ids[MAX_SENT][SPD_ID_LEN + 1];
	char targets[MAX_SENT][16];
	spd_state states[MAX_SENT];
} listed;

static bool list_rec(void *ctx, const spd_watch_event *ev)
{
	listed *l = ctx;

	assert_true(l->n < MAX_SENT);
	snprintf(l->ids[l->n], sizeof l->ids[0], "%s", ev->p->id);
	snprintf(l->targets[l->n], sizeof l->targets[0], "%s", ev->p->target);
	l->states[l->n] = ev->p->state;
	l->n++;
	return true;
}

/* Every page of Q, PAGE records at a time, into *OUT. */
static void list_pages(fixture *fx, spd_list_query q, size_t page, listed *out)
{
	uint64_t next = 0;

	memset(out, 0, sizeof *out);
	q.page_size = page;
	do {
		size_t before = out->n;
		q.after_key = next;
		spd_registry_list(fx->r, &q, list_rec, out, &next);
		assert_true(out->n - before <= page);
		if (next != 0)
			assert_int_equal(out->n - before, page);
	} while (next != 0);
}

/* A listing by target and states, page by page, is the unindexed answer:
 * every record in creation order, filtered. */
static void list_by_target_and_state_is_the_scan(void **state)
{
	fixture *fx = *state;
	static const char *const targets[] = {"fn", "quick", "ex"};
	static const spd_state none[1] = {0};
	static const spd_state running[] = {SPD_STATE_RUNNING};
	static const spd_state ended[] = {SPD_STATE_SUCCEEDED, SPD_STATE_FAILED};
	static const spd_state twice[] = {SPD_STATE_FAILED, SPD_STATE_FAILED, SPD_STATE_PENDING};
	static const spd_state canceled[] = {SPD_STATE_CANCELED, (spd_state)99};
	const struct {
		const spd_state *v;
		size_t n;
	} sets[] = {{none, 0}, {running, 1}, {ended, 2}, {twice, 3}, {canceled, 2}};
	const char *names[] = {NULL, "", "fn", "quick", "ex", "nope"};
	static listed all, got;
	spd_list_query q = {0};
	recorder rc[60]; /* max_running is 64: each gets a START */
	const sent_start *s[60];

	memset(rc, 0, sizeof rc);
	/* 60 processes of three targets, left in every state: PENDING, RUNNING,
	 * SUCCEEDED, FAILED, CANCELED; they end out of creation order. */
	for (int i = 0; i < 60; i++)
		s[i] = start(fx, targets[i % 3], &rc[i]);
	for (int i = 59; i >= 0; i--) {
		recorder d = {0};
		if (i % 5 == 0)
			continue; /* PENDING */
		spd_registry_on_started(fx->r, s[i]->key, 1000 + i, spd_clock_real_ns());
		if (i % 5 == 2)
			exit_status(fx, s[i]->key, W_EXITCODE(0, 0), 0);
		else if (i % 5 == 3)
			exit_status(fx, s[i]->key, W_EXITCODE(1, 0), 0);
		else if (i % 5 == 4) {
			assert_int_equal(spd_registry_destroy_process(fx->r, s[i]->id, 1000, false,
								      record, &d), 0);
			exit_status(fx, s[i]->key, W_EXITCODE(0, SIGTERM), SPD_EXIT_SENT_STOP);
		}
	}
	list_pages(fx, q, 1000, &all);
	assert_int_equal(all.n, 60);
	for (size_t t = 0; t < sizeof names / sizeof names[0]; t++) {
		for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) {
			static const size_t pages[] = {1, 7, 1000};
			for (size_t p = 0; p < 3; p++) {
				listed want = {0};
				q.target = names[t];
				q.states = sets[k].v;
				q.state_count = sets[k].n;
				for (size_t i = 0; i < all.n; i++) {
					bool ok = sets[k].n == 0;
					if (names[t] != NULL && names[t][0] != '\0' &&
					    strcmp(all.targets[i], names[t]) != 0)
						continue;
					for (size_t j = 0; j < sets[k].n; j++)
						ok = ok || all.states[i] == sets[k].v[j];
					if (!ok)
						continue;
					memcpy(want.ids[want.n++], all.ids[i], sizeof all.ids[0]);
				}
				list_pages(fx, q, pages[p], &got);
				assert_int_equal(got.n, want.n);
				for (size_t i = 0; i < want.n; i++)
					assert_string_equal(got.ids[i], want.ids[i]);
			}
		}
	}
}

/* ---- shutdown ------------------------------------------------------------------------ */

typedef struct exiter {
	fixture *fx;
	size_t want;      /* destroys to wait for */
	uint64_t keys[4];
	int ok;
} exiter;

/* The launcher's part: once every DESTROY has arrived, report the exits. */
static void *exiter_main(void *arg)
{
	exiter *e = arg;
	fake *f = &e->fx->f;
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10;
	pthread_mutex_lock(&f->mu);
	while (f->ndestroys < e->want)
		if (pthread_cond_timedwait(&f->cv, &f->mu, &dl) != 0)
			break;
	e->ok = f->ndestroys >= e->want;
	pthread_mutex_unlock(&f->mu);
	for (size_t i = 0; i < e->want; i++) {
		spd_exit_report rep = make_report(W_EXITCODE(0, SIGTERM), SPD_EXIT_SENT_STOP);
		spd_registry_on_exited(e->fx->r, e->keys[i], &rep);
		spd_exit_report_release(&rep);
	}
	return NULL;
}

static void shutdown_waits_for_exits(void **state)
{
	fixture *fx = *state;
	recorder rc[3];
	const sent_start *running, *pending, *done;
	spd_start_params sp = params("fn");
	exiter e;
	pthread_t t;
	size_t left;
	note_rec n;

	memset(rc, 0, sizeof rc);
	running = start(fx, "fn", &rc[0]);
	spd_registry_on_started(fx->r, running->key, 10, spd_clock_real_ns());
	sp.grace_ms = 200;
	assert_int_equal(spd_registry_start(fx->r, &sp, record, &rc[1]), 0);
	pending = &fx->f.starts[1];
	done = start(fx, "fn", &rc[2]);
	spd_registry_on_started(fx->r, done->key, 11, spd_clock_real_ns());
	exit_status(fx, done->key, W_EXITCODE(0, 0), 0);

	e = (exiter){.fx = fx, .want = 2, .keys = {running->key, pending->key}};
	assert_int_equal(pthread_create(&t, NULL, exiter_main, &e), 0);
	left = spd_registry_shutdown(fx->r, 1000, spd_clock_mono_ns() + 20LL * 1000000000);
	pthread_join(t, NULL);
	assert_true(e.ok);
	assert_int_equal(left, 0);

	/* Each destroyed with its grace capped by the shutdown's. */
	assert_int_equal(fx->f.ndestroys, 2);
	for (size_t i = 0; i < 2; i++) {
		if (fx->f.destroys[i].key == running->key)
			assert_int_equal(fx->f.destroys[i].grace_ms, 1000);
		else
			assert_int_equal(fx->f.destroys[i].grace_ms, 200);
	}
	n = get(fx, running->id);
	assert_int_equal(n.state, SPD_STATE_CANCELED);
	assert_true(n.destroyed);
	assert_true(n.canceled);
	n = get(fx, pending->id);
	assert_int_equal(n.state, SPD_STATE_CANCELED);
	n = get(fx, done->id);
	assert_false(n.destroyed); /* the ended one is left alone */

	sp.grace_ms = -1;
	assert_int_equal(spd_registry_start(fx->r, &sp, record, &rc[2]), -ESHUTDOWN);
}

static void shutdown_deadline(void **state)
{
	fixture *fx = *state;
	recorder rc = {0};
	const sent_start *s = start(fx, "fn", &rc);
	int64_t t0, t1;
	size_t left;

	spd_registry_on_started(fx->r, s->key, 10, spd_clock_real_ns());
	t0 = spd_clock_mono_ns();
	left = spd_registry_shutdown(fx->r, 0, t0 + 150 * 1000000LL);
	t1 = spd_clock_mono_ns();
	assert_int_equal(left, 1);
	assert_true(t1 - t0 >= 150 * 1000000LL);
	assert_int_equal(fx->f.ndestroys, 1);
	assert_int_equal(fx->f.destroys[0].grace_ms, 0);
	/* It ends later all the same. */
	exit_status(fx, s->key, W_EXITCODE(0, SIGKILL), SPD_EXIT_SENT_KILL);
	assert_int_equal(get(fx, s->id).state, SPD_STATE_CANCELED);
	assert_int_equal(spd_registry_live_count(fx->r), 0);
}

/* Processes that outlive shutdown: every remaining subscription hears ABORT
 * once and is gone (no RPC waits forever); a terminal event later reaches no
 * one. */
static void abort_watchers_at_the_end(void **state)
{
	fixture *fx = *state;
	recorder starter = {0}, w = {0}, destroyer = {0};
	const sent_start *s = start(fx, "fn", &starter);
	uint64_t wid;

	spd_registry_on_started(fx->r, s->key, 10, spd_clock_real_ns());
	assert_int_equal(watch_one(fx->r, s->id, &w, &wid), 0);
	assert_int_equal(spd_registry_destroy_process(fx->r, s->id, 60000, true, record, &destroyer), 0);
	assert_int_equal(spd_registry_shutdown(fx->r, 60000, spd_clock_mono_ns()), 1);
	spd_registry_abort_watchers(fx->r);
	assert_int_equal(w.notes[w.n - 1].note, SPD_NOTE_ABORT);
	assert_int_equal(destroyer.n, 1);
	assert_int_equal(destroyer.notes[0].note, SPD_NOTE_ABORT);
	assert_int_equal(destroyer.notes[0].state, SPD_STATE_RUNNING);
	assert_false(spd_registry_unwatch(fx->r, wid));
	w.n = destroyer.n = 0;
	exit_status(fx, s->key, W_EXITCODE(0, SIGKILL), SPD_EXIT_SENT_KILL);
	assert_int_equal(w.n, 0);
	assert_int_equal(destroyer.n, 0);
}

/* ---- targets, strings from children --------------------------------------------------- */

typedef struct target_seen {
	char name[16];
	uint32_t running, pending, idle;
	char error[64];
	char mechanism[16];
} target_seen;

typedef struct targets_rec {
	size_t n;
	target_seen t[8];
} targets_rec;

static void on_target(void *ctx, const spd_target_config *t, uint32_t running, uint32_t pending,
		      uint32_t idle, const char *error, const char *memory_limit_mechanism)
{
	targets_rec *tr = ctx;
	target_seen *s = &tr->t[tr->n++];

	snprintf(s->mechanism, sizeof s->mechanism, "%s", memory_limit_mechanism);
	snprintf(s->name, sizeof s->name, "%s", t->name);
	s->running = running;
	s->pending = pending;
	s->idle = idle;
	snprintf(s->error, sizeof s->error, "%s", error ? error : "");
}

static void list_targets_counts(void **state)
{
	fixture *fx = *state;
	recorder rc[2];
	const sent_start *a, *b;
	targets_rec tr = {0};
	uint32_t ids[] = {2, 1}; /* ex, fn: numbered in the config's order */
	char *errors[] = {(char *)"exec: not there", NULL};
	char *mechanisms[] = {(char *)"", (char *)"cgroup_v1"};

	memset(rc, 0, sizeof rc);
	a = start(fx, "fn", &rc[0]);
	b = start(fx, "fn", &rc[1]);
	spd_registry_on_started(fx->r, a->key, 10, spd_clock_real_ns());
	spd_registry_on_hello(fx->r, 2, ids, errors, mechanisms);
	spd_registry_list_targets(fx->r, on_target, &tr);
	assert_int_equal(tr.n, 4);
	assert_string_equal(tr.t[0].name, "fn");
	assert_int_equal(tr.t[0].running, 1);
	assert_int_equal(tr.t[0].pending, 1);
	assert_string_equal(tr.t[0].error, "");
	assert_string_equal(tr.t[1].name, "ex");
	assert_string_equal(tr.t[1].error, "exec: not there");
	/* What enforces memory_limit is the launcher's word, kept per target. */
	assert_string_equal(tr.t[0].mechanism, "cgroup_v1");
	assert_string_equal(tr.t[1].mechanism, "");

	exit_status(fx, a->key, W_EXITCODE(0, 0), 0);
	exit_status(fx, b->key, 0, SPD_EXIT_LAUNCH_FAILED);
	tr.n = 0;
	spd_registry_list_targets(fx->r, on_target, &tr);
	assert_int_equal(tr.t[0].running, 0);
	assert_int_equal(tr.t[0].pending, 0);
}

static bool valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
		if (n == 0)
			return false;
		for (int i = 1; i < n; i++)
			if ((p[i] & 0xC0) != 0x80)
				return false;
		p += n;
	}
	return true;
}

static void child_strings_are_utf8(void **state)
{
	fixture *fx = *state;
	recorder rc = {0};
	const sent_start *s = start(fx, "fn", &rc);
	spd_exit_report rep = make_report(W_EXITCODE(1, 0), SPD_EXIT_RAISED);
	note_rec n;

	spd_registry_on_started(fx->r, s->key, 10, spd_clock_real_ns());
	rep.raise_type = strdup("Bad\xff" "Error");
	rep.raise_message = strdup("caf\xc3\xa9 \xc3(");
	rep.raise_backtrace = strdup("");
	exited(fx, s->key, &rep);
	n = get(fx, s->id);
	assert_int_equal(n.kind, SPD_ERR_RAISED);
	assert_true(valid_utf8(n.type));
	assert_string_equal(n.type, "Bad\xef\xbf\xbd" "Error");
	assert_true(valid_utf8(n.message));
	assert_non_null(strstr(n.message, "caf\xc3\xa9 "));
}

/* ---- the queue (max_running, max_concurrent, max_pending) ------------------------------ */

/* Starts TARGET; returns the id through the callback's first note when queued,
 * else through the fake. */
static void start_any(fixture *fx, const char *target, recorder *rc, const char *input)
{
	spd_start_params sp = params(target);

	sp.input = input;
	sp.input_len = input != NULL ? strlen(input) : 0;
	assert_int_equal(spd_registry_start(fx->r, &sp, record, rc), 0);
}

static void finish(fixture *fx, uint64_t key)
{
	spd_registry_on_started(fx->r, key, 50, spd_clock_real_ns());
	exit_status(fx, key, W_EXITCODE(0, 0), 0);
}

static void queue_is_fifo_and_bounded(void **state)
{
	fixture *fx = *state;
	recorder rc[5];
	spd_start_params sp = params("a");
	uint64_t k1, k2;

	memset(rc, 0, sizeof rc);
	start_any(fx, "a", &rc[0], NULL);
	start_any(fx, "a", &rc[1], NULL);
	assert_int_equal(fx->f.nstarts, 2);
	assert_int_equal(rc[0].n, 0); /* answered when RUNNING */

	/* No slot: queued, answered at once with a PENDING snapshot. */
	start_any(fx, "a", &rc[2], "third");
	start_any(fx, "a", &rc[3], "fourth!");
	assert_int_equal(fx->f.nstarts, 2);
	for (int i = 2; i <= 3; i++) {
		assert_int_equal(rc[i].n, 1);
		assert_int_equal(rc[i].notes[0].note, SPD_NOTE_SNAPSHOT);
		assert_int_equal(rc[i].notes[0].state, SPD_STATE_PENDING);
		assert_false(rc[i].notes[0].terminal);
	}
	/* max_pending reached. */
	assert_int_equal(spd_registry_start(fx->r, &sp, record, &rc[4]), -EAGAIN);
	assert_int_equal(rc[4].n, 0);
	assert_int_equal(spd_registry_live_count(fx->r), 4);

	/* A slot frees: the oldest waiting one goes, with its input. */
	k1 = fx->f.starts[0].key;
	k2 = fx->f.starts[1].key;
	finish(fx, k1);
	assert_int_equal(fx->f.nstarts, 3);
	assert_string_equal(fx->f.starts[2].id, rc[2].notes[0].id);
	assert_int_equal(fx->f.starts[2].input_len, 5);
	finish(fx, k2);
	assert_int_equal(fx->f.nstarts, 4);
	assert_string_equal(fx->f.starts[3].id, rc[3].notes[0].id);
	assert_int_equal(fx->f.starts[3].input_len, 7);

	/* Called once only, however it goes on. */
	finish(fx, fx->f.starts[2].key);
	assert_int_equal(rc[2].n, 1);
	assert_int_equal(get(fx, rc[2].notes[0].id).state, SPD_STATE_SUCCEEDED);
}

static void max_concurrent_holds_up_only_its_target(void **state)
{
	fixture *fx = *state;
	recorder rc[3];

	memset(rc, 0, sizeof rc);
	start_any(fx, "one", &rc[0], NULL);
	start_any(fx, "one", &rc[1], NULL);   /* waits for `one`'s slot */
	start_any(fx, "a", &rc[2], NULL);     /* is not held up behind it */
	assert_int_equal(fx->f.nstarts, 2);
	assert_string_equal(fx->f.starts[0].target, "one");
	assert_string_equal(fx->f.starts[1].target, "a");
	assert_int_equal(rc[1].n, 1);
	assert_int_equal(rc[1].notes[0].state, SPD_STATE_PENDING);

	finish(fx, fx->f.starts[0].key);
	assert_int_equal(fx->f.nstarts, 3);
	assert_string_equal(fx->f.starts[2].target, "one");
	assert_string_equal(fx->f.starts[2].id, rc[1].notes[0].id);
}

static void destroy_queued_never_starts(void **state)
{
	fixture *fx = *state;
	recorder rc[3], d = {0};
	note_rec n;

	memset(rc, 0, sizeof rc);
	start_any(fx, "a", &rc[0], NULL);
	start_any(fx, "a", &rc[1], NULL);
	start_any(fx, "a", &rc[2], "x");
	assert_int_equal(spd_registry_destroy_process(fx->r, rc[2].notes[0].id, -1, false, record,
						      &d), 0);
	assert_int_equal(fx->f.ndestroys, 0); /* nothing to tell the launcher */
	assert_int_equal(d.n, 1);
	assert_true(d.notes[0].terminal);
	n = get(fx, rc[2].notes[0].id);
	assert_int_equal(n.state, SPD_STATE_CANCELED);
	assert_true(n.destroyed);
	assert_true(n.canceled);
	assert_false(n.ran);
	assert_int_equal(n.seq, 2);

	/* Its slot in the queue is gone: a freed slot starts nothing. */
	finish(fx, fx->f.starts[0].key);
	assert_int_equal(fx->f.nstarts, 2);
	assert_int_equal(spd_registry_live_count(fx->r), 1);
}

static void queued_at_shutdown_and_loss(void **state)
{
	fixture *fx = *state;
	recorder rc[4];
	note_rec n;
	size_t left;

	memset(rc, 0, sizeof rc);
	start_any(fx, "a", &rc[0], NULL);
	start_any(fx, "a", &rc[1], NULL);
	start_any(fx, "a", &rc[2], NULL);
	/* The launcher is gone: the waiting one ends LOST without ever running. */
	spd_registry_on_launcher_lost(fx->r);
	n = get(fx, rc[2].notes[0].id);
	assert_int_equal(n.state, SPD_STATE_FAILED);
	assert_int_equal(n.kind, SPD_ERR_LOST);
	assert_false(n.ran);
	assert_int_equal(fx->f.nstarts, 2);
	left = spd_registry_shutdown(fx->r, 0, spd_clock_mono_ns());
	assert_int_equal(left, 0);
}

static void queued_canceled_by_shutdown(void **state)
{
	fixture *fx = *state;
	recorder rc[3];
	note_rec n;

	memset(rc, 0, sizeof rc);
	start_any(fx, "a", &rc[0], NULL);
	start_any(fx, "a", &rc[1], NULL);
	start_any(fx, "a", &rc[2], NULL);
	assert_int_equal(spd_registry_shutdown(fx->r, 0, spd_clock_mono_ns() + 50 * 1000000LL), 2);
	n = get(fx, rc[2].notes[0].id);
	assert_int_equal(n.state, SPD_STATE_CANCELED);
	assert_true(n.destroyed);
	assert_false(n.ran);
	/* Only the two that had started were sent a DESTROY; nothing more starts. */
	assert_int_equal(fx->f.ndestroys, 2);
	finish(fx, fx->f.starts[0].key);
	assert_int_equal(fx->f.nstarts, 2);
	exit_status(fx, fx->f.starts[1].key, 0, SPD_EXIT_LAUNCH_FAILED);
	assert_int_equal(spd_registry_live_count(fx->r), 0);
}

/* A listener that cannot accept (rpc/server.c) makes the server NOT_SERVING
 * until it is bound again; targets follow the server; subscribers hear each
 * transition once. */
static void record_health(void *ctx, spd_health h)
{
	spd_health *seen = ctx;

	for (int i = 0; i < 8; i++) {
		if (seen[i] == SPD_HEALTH_UNKNOWN) {
			seen[i] = h;
			return;
		}
	}
}

/* Destroy racing a normal exit (SPEC §12): the launcher found the child
 * already exited and sent no signal, so the record is what the child did. */
static void destroy_after_own_exit_is_not_canceled(void **state)
{
	fixture *fx = *state;
	recorder start_rc = {0}, d = {0};
	const sent_start *s = start(fx, "fn", &start_rc);
	note_rec n;

	spd_registry_on_started(fx->r, s->key, 77, spd_clock_real_ns());
	assert_int_equal(spd_registry_destroy_process(fx->r, s->id, -1, false, record, &d), 0);
	assert_true(d.notes[0].canceled); /* provisional */
	exit_status(fx, s->key, W_EXITCODE(0, 0), 0);
	n = get(fx, s->id);
	assert_int_equal(n.state, SPD_STATE_SUCCEEDED);
	assert_true(n.destroyed);
	assert_false(n.canceled);
	assert_false(n.threw);
}

static void listeners_down_is_not_serving(void **state)
{
	fixture *fx = *state;
	spd_health seen[8] = {SPD_HEALTH_UNKNOWN};
	uint64_t wid;

	assert_int_equal(spd_registry_health_watch(fx->r, NULL, record_health, seen, &wid), 0);
	assert_int_equal(spd_registry_health(fx->r, NULL), SPD_HEALTH_SERVING);
	spd_registry_set_listeners_down(fx->r, 1);
	assert_int_equal(spd_registry_health(fx->r, NULL), SPD_HEALTH_NOT_SERVING);
	assert_int_equal(spd_registry_health(fx->r, "fn"), SPD_HEALTH_NOT_SERVING);
	spd_registry_set_listeners_down(fx->r, 2);
	spd_registry_set_listeners_down(fx->r, 0);
	assert_int_equal(spd_registry_health(fx->r, NULL), SPD_HEALTH_SERVING);
	assert_int_equal(seen[0], SPD_HEALTH_SERVING);
	assert_int_equal(seen[1], SPD_HEALTH_NOT_SERVING);
	assert_int_equal(seen[2], SPD_HEALTH_SERVING);
	assert_int_equal(seen[3], SPD_HEALTH_UNKNOWN);
	assert_true(spd_registry_health_unwatch(fx->r, wid));
}

/* ---- reload (SIGHUP, SPEC §5) ------------------------------------------------------ */

/* config_yaml with ex changed (timeout), exa unchanged, quick removed and
 * `added` new; fn's line moves (a comment above it), which is no change. */
static const char reloaded_yaml[] =
	"listen: [\"127.0.0.1:0\"]\n"
	"history: {max_records: 100}\n"
	"defaults:\n"
	"  destroy_grace_period: 3s\n"
	"targets:\n"
	"  # moved\n"
	"  fn: {function: builtin:echo}\n"
	"  ex: {exec: [\"/bin/true\"], timeout: 2s}\n"
	"  exa: {exec: [\"/bin/echo\"], allow_args: true, destroy_grace_period: 1s, timeout: 5s}\n"
	"  added: {function: builtin:noop}\n";

static uint32_t added_id(const fake *f, const char *name)
{
	for (size_t i = 0; i < f->nadded; i++)
		if (strcmp(f->added[i], name) == 0)
			return f->added_ids[i];
	fail_msg("no RELOAD added %s", name);
	return 0;
}

static void reload_adds_changes_removes(void **state)
{
	fixture *fx = *state;
	spd_config *next = load(reloaded_yaml);
	spd_reload_summary sum;
	recorder rc[2];
	targets_rec tr = {0};
	spd_start_params sp = params("quick");
	const sent_start *s;

	memset(rc, 0, sizeof rc);
	assert_int_equal(spd_registry_reload(fx->r, next, &sum), 0);
	spd_config_destroy(next); /* the registry copied what it keeps */
	assert_int_equal(sum.added, 1);
	assert_int_equal(sum.changed, 1);
	assert_int_equal(sum.removed, 1);
	assert_int_equal(sum.unchanged, 2);
	/* One RELOAD, with the new versions only; quick, held by nothing,
	 * is retired at once. */
	assert_int_equal(fx->f.nreloads, 1);
	assert_int_equal(fx->f.nadded, 2);
	assert_true(added_id(&fx->f, "ex") > 4);
	assert_true(added_id(&fx->f, "added") > 4);
	assert_int_equal(fx->f.nretired, 2); /* quick (4) and ex's old version (2) */
	spd_registry_list_targets(fx->r, on_target, &tr);
	assert_int_equal(tr.n, 4);
	assert_string_equal(tr.t[0].name, "fn");
	assert_string_equal(tr.t[3].name, "added");
	/* Not SERVING until the launcher says it prepared them. */
	assert_int_equal(spd_registry_health(fx->r, "added"), SPD_HEALTH_NOT_SERVING);
	assert_int_equal(spd_registry_health(fx->r, "fn"), SPD_HEALTH_SERVING);
	assert_int_equal(spd_registry_health(fx->r, "quick"), SPD_HEALTH_UNKNOWN);
	{
		uint32_t ids[] = {added_id(&fx->f, "ex"), added_id(&fx->f, "added")};
		char *errors[] = {NULL, NULL};
		spd_registry_on_hello(fx->r, 2, ids, errors, NULL);
	}
	assert_int_equal(spd_registry_health(fx->r, "added"), SPD_HEALTH_SERVING);
	assert_int_equal(spd_registry_start(fx->r, &sp, record, &rc[0]), -ENOENT);
	s = start(fx, "added", &rc[1]);
	assert_int_equal(s->target_id, added_id(&fx->f, "added"));
	s = start(fx, "ex", &rc[1]);
	assert_int_equal(s->target_id, added_id(&fx->f, "ex"));
	assert_int_equal(s->timeout_ms, 2000);
	s = start(fx, "fn", &rc[1]);
	assert_int_equal(s->target_id, 1); /* unchanged: the same version */
}

/* Pre-started children (SPEC §12): the launcher's IDLE count is listed for
 * the current version only; a reload that changes or removes a prestart
 * target tells the launcher at once (STALE), not when its last process ends,
 * and a target without prestart costs no frame. */
static void reload_stales_prestart_versions(void **state)
{
	static const char before[] =
		"targets:\n"
		"  pre: {function: builtin:echo, prestart: 2}\n"
		"  gone: {function: builtin:echo, prestart: 1}\n"
		"  plain: {function: builtin:echo}\n";
	static const char after[] =
		"targets:\n"
		"  pre: {function: builtin:echo, prestart: 3}\n"
		"  plain: {function: builtin:echo, timeout: 2s}\n";
	fake f;
	spd_config *c0 = load(before), *c1 = load(after);
	spd_registry_ops ops = {fake_send_start, fake_send_destroy, NULL, fake_send_reload,
				fake_send_retire, fake_send_stale, &f};
	spd_registry *r;
	targets_rec tr = {0};

	(void)state;
	memset(&f, 0, sizeof f);
	pthread_mutex_init(&f.mu, NULL);
	pthread_cond_init(&f.cv, NULL);
	r = spd_registry_create(c0, &ops);
	assert_non_null(r);
	spd_registry_on_idle(r, 1, 2);
	spd_registry_on_idle(r, 2, 1);
	spd_registry_list_targets(r, on_target, &tr);
	assert_int_equal(tr.n, 3);
	assert_int_equal(tr.t[0].idle, 2);
	assert_int_equal(tr.t[1].idle, 1);
	assert_int_equal(tr.t[2].idle, 0);

	assert_int_equal(spd_registry_reload(r, c1, NULL), 0);
	/* pre (1, changed) and gone (2, removed); plain had no pool. */
	assert_int_equal(f.nstale, 2);
	assert_true((f.stale[0] == 1 && f.stale[1] == 2) || (f.stale[0] == 2 && f.stale[1] == 1));
	/* A late IDLE of an old version changes nothing listed. */
	spd_registry_on_idle(r, 1, 2);
	tr.n = 0;
	spd_registry_list_targets(r, on_target, &tr);
	assert_int_equal(tr.n, 2);
	assert_int_equal(tr.t[0].idle, 0);
	spd_registry_on_idle(r, added_id(&f, "pre"), 3);
	tr.n = 0;
	spd_registry_list_targets(r, on_target, &tr);
	assert_int_equal(tr.t[0].idle, 3);
	/* Shutting down: no start will take them; they go at once. */
	assert_int_equal(spd_registry_shutdown(r, 0, spd_clock_mono_ns()), 0);
	assert_int_equal(f.nstale, 3);
	assert_int_equal(f.stale[2], added_id(&f, "pre"));
	tr.n = 0;
	spd_registry_list_targets(r, on_target, &tr);
	assert_int_equal(tr.t[0].idle, 0);
	/* No launcher, no idle children. */
	spd_registry_on_launcher_lost(r);
	tr.n = 0;
	spd_registry_list_targets(r, on_target, &tr);
	assert_int_equal(tr.t[0].idle, 0);
	spd_registry_destroy(r);
	spd_config_destroy(c0);
	spd_config_destroy(c1);
	pthread_cond_destroy(&f.cv);
	pthread_mutex_destroy(&f.mu);
}

/* A running process of a removed target, and a running one of a changed
 * target, finish normally with the settings they started with; their old
 * versions are retired after them. */
static void reload_keeps_live_processes(void **state)
{
	fixture *fx = *state;
	spd_config *next = load(reloaded_yaml);
	recorder rc[2];
	const sent_start *q, *e;
	targets_rec tr = {0};
	note_rec n;

	memset(rc, 0, sizeof rc);
	q = start(fx, "quick", &rc[0]);
	e = start(fx, "ex", &rc[1]);
	assert_int_equal(e->timeout_ms, 0);
	spd_registry_on_started(fx->r, q->key, 10, spd_clock_real_ns());
	spd_registry_on_started(fx->r, e->key, 11, spd_clock_real_ns());
	assert_int_equal(spd_registry_reload(fx->r, next, NULL), 0);
	spd_config_destroy(next);
	assert_int_equal(fx->f.nretired, 0);
	/* ListTargets counts ex's running process of the old version. */
	spd_registry_list_targets(fx->r, on_target, &tr);
	assert_string_equal(tr.t[1].name, "ex");
	assert_int_equal(tr.t[1].running, 1);
	exit_status(fx, q->key, W_EXITCODE(0, 0), 0);
	n = get(fx, q->id);
	assert_int_equal(n.state, SPD_STATE_SUCCEEDED);
	assert_int_equal(fx->f.nretired, 1);
	assert_int_equal(fx->f.retired[0], 4);
	exit_status(fx, e->key, W_EXITCODE(0, 0), 0);
	assert_int_equal(get(fx, e->id).state, SPD_STATE_SUCCEEDED);
	assert_int_equal(fx->f.nretired, 2);
	assert_int_equal(fx->f.retired[1], 2);
}

static const char queue_reloaded_yaml[] =
	"listen: [\"127.0.0.1:0\"]\n"
	"max_running: 3\n"
	"max_pending: 2\n"
	"targets:\n"
	"  a: {function: builtin:echo}\n"
	"  one: {function: builtin:noop, max_concurrent: 2, timeout: 7s}\n";

/* New limits apply to new starts; a pending process keeps the settings it was
 * queued with; a higher max_running lets the queue move at once. */
static void reload_limits_for_new_starts(void **state)
{
	fixture *fx = *state;
	spd_config *next = load(queue_reloaded_yaml);
	recorder rc[4];

	memset(rc, 0, sizeof rc);
	start_any(fx, "one", &rc[0], NULL);
	start_any(fx, "one", &rc[1], NULL); /* queued: max_concurrent 1 */
	assert_int_equal(fx->f.nstarts, 1);
	assert_int_equal(spd_registry_reload(fx->r, next, NULL), 0);
	spd_config_destroy(next);
	/* The queued one still has its old version's max_concurrent (1). */
	assert_int_equal(fx->f.nstarts, 1);
	/* A new start uses the new version: max_concurrent 2, counted across
	 * versions (one running), so it goes at once, past the queued one. */
	start_any(fx, "one", &rc[2], NULL);
	assert_int_equal(fx->f.nstarts, 2);
	assert_int_equal(fx->f.starts[1].timeout_ms, 7000);
	assert_true(fx->f.starts[1].target_id > 2);
	/* The queued one keeps its own max_concurrent (1): it waits until no
	 * process of `one` runs, and starts with its old timeout (none). */
	finish(fx, fx->f.starts[0].key);
	assert_int_equal(fx->f.nstarts, 2);
	finish(fx, fx->f.starts[1].key);
	assert_int_equal(fx->f.nstarts, 3);
	assert_int_equal(fx->f.starts[2].timeout_ms, 0);
	assert_int_equal(fx->f.starts[2].target_id, 2);
	finish(fx, fx->f.starts[2].key);
	assert_int_equal(fx->f.nretired, 1); /* the old version, after its last process */
	assert_int_equal(fx->f.retired[0], 2);
}

/* Health subscribers of a target hear a reload remove it (UNKNOWN) and
 * another add one they waited for. */
typedef struct health_seen {
	size_t n;
	spd_health h[8];
} health_seen;

static void record_health_all(void *ctx, spd_health h)
{
	health_seen *s = ctx;

	if (s->n < 8)
		s->h[s->n++] = h;
}

static void reload_health_transitions(void **state)
{
	fixture *fx = *state;
	spd_config *next = load(reloaded_yaml);
	health_seen quick = {0}, added = {0};
	uint64_t w1, w2;

	assert_int_equal(spd_registry_health_watch(fx->r, "quick", record_health_all, &quick, &w1), 0);
	assert_int_equal(spd_registry_health_watch(fx->r, "added", record_health_all, &added, &w2), 0);
	assert_int_equal(quick.h[0], SPD_HEALTH_SERVING);
	assert_int_equal(added.h[0], SPD_HEALTH_UNKNOWN);
	assert_int_equal(spd_registry_reload(fx->r, next, NULL), 0);
	spd_config_destroy(next);
	assert_int_equal(quick.n, 2);
	assert_int_equal(quick.h[1], SPD_HEALTH_UNKNOWN);
	assert_int_equal(added.n, 2);
	assert_int_equal(added.h[1], SPD_HEALTH_NOT_SERVING); /* being prepared */
	{
		uint32_t ids[] = {added_id(&fx->f, "added")};
		char *errors[] = {NULL};
		spd_registry_on_hello(fx->r, 1, ids, errors, NULL);
	}
	assert_int_equal(added.n, 3);
	assert_int_equal(added.h[2], SPD_HEALTH_SERVING);
	assert_true(spd_registry_health_unwatch(fx->r, w1));
	assert_true(spd_registry_health_unwatch(fx->r, w2));
}

/* A zygote going down for an old version does not touch the new one. */
static void reload_health_by_version(void **state)
{
	fixture *fx = *state;
	spd_config *next = load(reloaded_yaml);
	recorder rc = {0};
	const sent_start *e = start(fx, "ex", &rc);

	spd_registry_on_started(fx->r, e->key, 11, spd_clock_real_ns());
	assert_int_equal(spd_registry_reload(fx->r, next, NULL), 0);
	spd_config_destroy(next);
	{
		uint32_t ids[] = {added_id(&fx->f, "ex")};
		char *errors[] = {NULL};
		spd_registry_on_hello(fx->r, 1, ids, errors, NULL);
	}
	spd_registry_on_target_health(fx->r, 2, "the zygote died");
	assert_int_equal(spd_registry_health(fx->r, "ex"), SPD_HEALTH_SERVING);
	spd_registry_on_target_health(fx->r, added_id(&fx->f, "ex"), "the zygote died");
	assert_int_equal(spd_registry_health(fx->r, "ex"), SPD_HEALTH_NOT_SERVING);
	exit_status(fx, e->key, W_EXITCODE(0, 0), 0);
}

/* ---- Run (spd_registry_run) ---------------------------------------------------------- */

/* A fresh Run hears PENDING replayed at once, then live states; no SNAPSHOT. A
 * retry with the request_id attaches (nothing starts) and resumes after its
 * after_sequence; past the last sequence is -ERANGE. */
static void run_streams_from_pending_and_retries_attach(void **state)
{
	fixture *fx = *state;
	spd_start_params sp = params("fn");
	recorder rc = {.keep = true}, again = {.keep = true}, late = {.keep = true};
	spd_watch_spec ws = {.fn = record, .ctx = &rc};
	uint64_t wid = 0;

	sp.request_id = "job";
	assert_int_equal(spd_registry_run(fx->r, &sp, &ws, &wid, NULL), 0);
	assert_true(wid != 0);
	assert_int_equal(rc.n, 1);
	assert_int_equal(rc.notes[0].note, SPD_NOTE_REPLAY);
	assert_int_equal(rc.notes[0].state, SPD_STATE_PENDING);
	assert_int_equal(rc.notes[0].seq, 1);
	assert_int_equal(fx->f.nstarts, 1);
	finish(fx, fx->f.starts[0].key);
	assert_int_equal(rc.n, 3);
	assert_int_equal(rc.notes[1].note, SPD_NOTE_STATE);
	assert_int_equal(rc.notes[2].state, SPD_STATE_SUCCEEDED);
	assert_true(rc.notes[2].terminal);

	ws = (spd_watch_spec){.fn = record, .ctx = &again, .after_sequence = 1};
	assert_int_equal(spd_registry_run(fx->r, &sp, &ws, &wid, NULL), 0);
	assert_int_equal(wid, 0); /* ended: all delivered */
	assert_int_equal(fx->f.nstarts, 1);
	assert_int_equal(again.n, 2);
	assert_int_equal(again.notes[0].seq, 2);
	assert_int_equal(again.notes[1].seq, 3);
	assert_string_equal(again.notes[1].id, rc.notes[0].id);

	ws = (spd_watch_spec){.fn = record, .ctx = &late, .after_sequence = 4};
	assert_int_equal(spd_registry_run(fx->r, &sp, &ws, &wid, NULL), -ERANGE);
	assert_int_equal(late.n, 0);
	sp.argc = 1;
	sp.argv = (const char *const[]){"other", NULL};
	ws.after_sequence = 0;
	assert_int_equal(spd_registry_run(fx->r, &sp, &ws, &wid, NULL), -EEXIST);
	sp = params("nosuch");
	assert_int_equal(spd_registry_run(fx->r, &sp, &ws, &wid, NULL), -ENOENT);
	assert_int_equal(late.n, 0);
	/* A new process (no retry): past PENDING (1) is refused, nothing starts. */
	sp = params("fn");
	ws.after_sequence = 2;
	assert_int_equal(spd_registry_run(fx->r, &sp, &ws, &wid, NULL), -ERANGE);
	assert_int_equal(wid, 0);
	assert_int_equal(late.n, 0);
	assert_int_equal(fx->f.nstarts, 1);
}

/* ---- the journal (journal.h): a fake that confirms when the test says ------------ */

#define MAX_PUTS 64

typedef struct fake_journal {
	bool failing;             /* put refuses every hold (a store that cannot write) */
	size_t nputs, nholds;
	struct {
		uint64_t key, seq;
		spd_state state;
		bool hold;
	} puts[MAX_PUTS];
} fake_journal;

static bool fj_put(void *ctx, const spd_journal_record *rec, bool hold)
{
	fake_journal *j = ctx;

	assert_true(j->nputs < MAX_PUTS);
	j->puts[j->nputs].key = rec->p->key;
	j->puts[j->nputs].seq = rec->p->seq;
	j->puts[j->nputs].state = rec->p->state;
	j->puts[j->nputs].hold = hold;
	j->nputs++;
	j->nholds += hold;
	return hold && !j->failing;
}

static void fj_remove(void *ctx, uint64_t key, const char *id)
{
	(void)ctx, (void)key, (void)id;
}

static void attach_journal(fixture *fx, fake_journal *j)
{
	spd_journal_ops ops = {.put = fj_put, .remove = fj_remove, .ctx = j};

	spd_registry_set_journal(fx->r, &ops);
}

/* The journal says: KEY is committed up to version SEQ. */
static void confirm(fixture *fx, uint64_t key, uint64_t seq)
{
	spd_journal_done d = {.key = key, .seq = seq};

	spd_registry_on_journaled(fx->r, &d, 1);
}

/* Every event of a stream, in order: (note, seq, state) or OUTPUT (note 0). */
typedef struct stream_log {
	size_t n;
	struct {
		spd_note note;  /* 0: OUTPUT */
		uint64_t seq;
		spd_state state;
		int32_t pid;
		bool terminal;
	} ev[MAX_NOTES];
} stream_log;

static bool log_event(void *ctx, const spd_watch_event *ev)
{
	stream_log *l = ctx;

	assert_true(l->n < MAX_NOTES);
	l->ev[l->n].note = ev->note;
	l->ev[l->n].seq = ev->p->seq;
	l->ev[l->n].state = ev->p->state;
	l->ev[l->n].pid = ev->p->pid;
	l->ev[l->n].terminal = ev->terminal;
	l->n++;
	return true;
}

static void log_output(void *ctx, const spd_output_event *ev)
{
	stream_log *l = ctx;

	assert_true(l->n < MAX_NOTES);
	memset(&l->ev[l->n], 0, sizeof l->ev[l->n]);
	l->ev[l->n].seq = ev->p->seq;
	l->n++;
}

/* Sequences 1..N, each once, in order: no gap, no repeat. */
static void assert_gap_free(const stream_log *l, uint64_t n)
{
	assert_int_equal(l->n, n);
	for (size_t i = 0; i < l->n; i++)
		assert_int_equal(l->ev[i].seq, i + 1);
}

/* StartProcess with a store: the launch frame goes at once, the answer only
 * once the new record is committed (then as RUNNING was, not as it is); a
 * Watch-all, GetProcess and a retry see nothing of it before either. The end
 * waits for its own commit: an older version committed is not enough. */
static void journal_start_answer_waits_for_commit(void **state)
{
	fixture *fx = *state;
	fake_journal j = {0};
	recorder rc = {.keep = true}, got = {0}, retry = {0};
	stream_log all = {0};
	spd_watch_spec wa = {.fn = log_event, .out_fn = log_output, .ctx = &all};
	spd_start_params sp = params("fn");
	uint64_t wid = 0, key;
	char id[SPD_ID_LEN + 1];

	attach_journal(fx, &j);
	assert_int_equal(spd_registry_watch(fx->r, &wa, &wid), 0);
	sp.request_id = "once";
	assert_int_equal(spd_registry_start(fx->r, &sp, record, &rc), 0);
	/* Launched at once, not after the commit. */
	assert_int_equal(fx->f.nstarts, 1);
	key = fx->f.starts[0].key;
	snprintf(id, sizeof id, "%s", fx->f.starts[0].id);
	assert_int_equal(j.nputs, 1);
	assert_true(j.puts[0].hold);
	assert_int_equal(j.puts[0].state, SPD_STATE_PENDING);

	spd_registry_on_started(fx->r, key, 1234, spd_clock_real_ns());
	spd_registry_on_output(fx->r, key, 1, 0, "hi", 2);
	/* Told to no one: the answer, watch-all, GetProcess, a retry. */
	assert_int_equal(rc.n, 0);
	assert_int_equal(all.n, 0);
	assert_int_equal(spd_registry_get_committed(fx->r, id, record, &got), 0);
	assert_int_equal(got.n, 0);
	assert_int_equal(spd_registry_start(fx->r, &sp, record, &retry), 0);
	assert_int_equal(fx->f.nstarts, 1); /* the retry started nothing */
	assert_int_equal(retry.n, 0);

	confirm(fx, key, 1); /* PENDING committed: the record exists after a crash */
	assert_int_equal(rc.n, 1);
	assert_int_equal(rc.notes[0].state, SPD_STATE_RUNNING);
	assert_int_equal(rc.notes[0].seq, 2);
	assert_int_equal(rc.notes[0].pid, 1234);
	assert_string_equal(rc.notes[0].id, id);
	assert_int_equal(got.n, 1);
	assert_int_equal(got.notes[0].note, SPD_NOTE_SNAPSHOT);
	assert_int_equal(retry.n, 1);
	assert_string_equal(retry.notes[0].id, id);
	/* Watch-all: every event from PENDING, none missed. */
	assert_gap_free(&all, 3);
	assert_int_equal(all.ev[0].state, SPD_STATE_PENDING);
	assert_int_equal(all.ev[1].state, SPD_STATE_RUNNING);
	assert_int_equal(all.ev[2].note, 0);

	/* Live from now on; the end waits for the terminal version. */
	spd_registry_on_output(fx->r, key, 1, 2, "!", 1);
	assert_int_equal(all.n, 4);
	exit_status(fx, key, W_EXITCODE(0, 0), 0);
	assert_int_equal(all.n, 4);
	confirm(fx, key, 4); /* an older version: not the end */
	assert_int_equal(all.n, 4);
	confirm(fx, key, 5);
	assert_gap_free(&all, 5);
	assert_true(all.ev[4].terminal);
	assert_int_equal(rc.n, 1);
	spd_registry_unwatch(fx->r, wid);
}

/* Run with a store: the launch at once, the first events (PENDING, RUNNING,
 * OUTPUT) only once the record is committed, from the ring and in order;
 * then live. */
static void journal_run_events_wait_for_commit(void **state)
{
	fixture *fx = *state;
	fake_journal j = {0};
	stream_log l = {0};
	spd_watch_spec ws = {.fn = log_event, .out_fn = log_output, .ctx = &l};
	spd_start_params sp = params("fn");
	uint64_t wid = 0, key;

	attach_journal(fx, &j);
	assert_int_equal(spd_registry_run(fx->r, &sp, &ws, &wid, NULL), 0);
	assert_true(wid != 0);
	assert_int_equal(fx->f.nstarts, 1);
	key = fx->f.starts[0].key;
	assert_int_equal(l.n, 0);
	spd_registry_on_started(fx->r, key, 99, spd_clock_real_ns());
	spd_registry_on_output(fx->r, key, 1, 0, "abc", 3);
	assert_int_equal(l.n, 0);

	confirm(fx, key, 2);
	assert_gap_free(&l, 3);
	assert_int_equal(l.ev[0].note, SPD_NOTE_REPLAY);
	assert_int_equal(l.ev[0].state, SPD_STATE_PENDING);
	assert_int_equal(l.ev[1].state, SPD_STATE_RUNNING);
	assert_int_equal(l.ev[1].pid, 99);
	assert_int_equal(l.ev[2].note, 0);
	/* Confirmations of a record no longer held change nothing. */
	confirm(fx, key, 3);
	assert_int_equal(l.n, 3);

	spd_registry_on_output(fx->r, key, 1, 3, "d", 1);
	assert_gap_free(&l, 4);
	exit_status(fx, key, W_EXITCODE(0, 0), 0);
	assert_int_equal(l.n, 4);
	confirm(fx, key, 5);
	assert_gap_free(&l, 5);
	assert_true(l.ev[4].terminal);
}

/* Run's process id comes with the call, before any event: while the new
 * record is not committed no event tells it, and a Run cancelled then with
 * destroy_on_cancel must still find its process to destroy (a retry's id
 * too). */
static void journal_run_id_before_commit(void **state)
{
	fixture *fx = *state;
	fake_journal j = {0};
	stream_log l = {0};
	spd_watch_spec ws = {.fn = log_event, .ctx = &l};
	spd_start_params sp = params("fn");
	char id[SPD_ID_LEN + 1] = "", again[SPD_ID_LEN + 1] = "";
	recorder d = {.keep = true};
	uint64_t wid = 0, wid2 = 0, key;

	sp.request_id = "rid-1";
	attach_journal(fx, &j);
	assert_int_equal(spd_registry_run(fx->r, &sp, &ws, &wid, id), 0);
	assert_true(wid != 0);
	assert_int_equal(l.n, 0); /* not committed: nothing told */
	assert_int_equal(strlen(id), SPD_ID_LEN);
	key = fx->f.starts[0].key;
	spd_registry_on_started(fx->r, key, 99, spd_clock_real_ns());
	assert_int_equal(spd_registry_run(fx->r, &sp, &ws, &wid2, again), 0);
	assert_string_equal(again, id);
	assert_int_equal(fx->f.nstarts, 1);
	/* The cancel: the subscriptions go, the process is destroyed by id. */
	assert_true(spd_registry_unwatch(fx->r, wid));
	assert_true(spd_registry_unwatch(fx->r, wid2));
	assert_int_equal(spd_registry_destroy_process(fx->r, id, -1, false, record, &d), 0);
	assert_int_equal(fx->f.ndestroys, 1);
	assert_true(fx->f.destroys[0].key == key);
}

/* A process that ends before its record is committed: nothing until the
 * commit of its end; then the start waiter hears RUNNING as it was and Run
 * every event. A launch failure's answer is its end. A journal giving up
 * (SPD_JOURNAL_GAVE_UP) releases both holds. */
static void journal_end_before_first_commit(void **state)
{
	fixture *fx = *state;
	fake_journal j = {0};
	recorder rc = {.keep = true}, failed = {.keep = true};
	stream_log l = {0};
	spd_watch_spec ws = {.fn = log_event, .ctx = &l};
	spd_start_params sp = params("fn");
	uint64_t wid = 0, k1, k2, k3;

	attach_journal(fx, &j);
	start(fx, "fn", &rc);
	k1 = fx->f.starts[0].key;
	finish(fx, k1);
	assert_int_equal(rc.n, 0);
	confirm(fx, k1, 3);
	assert_int_equal(rc.n, 1);
	assert_int_equal(rc.notes[0].state, SPD_STATE_RUNNING);
	assert_false(rc.notes[0].terminal);

	start(fx, "fn", &failed);
	k2 = fx->f.starts[1].key;
	exit_status(fx, k2, 0, SPD_EXIT_LAUNCH_FAILED);
	confirm(fx, k2, 1); /* its creation, not its end */
	assert_int_equal(failed.n, 0);
	confirm(fx, k2, 2);
	assert_int_equal(failed.n, 1);
	assert_int_equal(failed.notes[0].state, SPD_STATE_FAILED);
	assert_int_equal(failed.notes[0].kind, SPD_ERR_LAUNCH);

	assert_int_equal(spd_registry_run(fx->r, &sp, &ws, &wid, NULL), 0);
	k3 = fx->f.starts[2].key;
	finish(fx, k3);
	assert_int_equal(l.n, 0);
	confirm(fx, k3, SPD_JOURNAL_GAVE_UP);
	assert_gap_free(&l, 3);
	assert_true(l.ev[2].terminal);
}

/* The other answers that show a new process wait for its commit too: a
 * queued start's PENDING answer, a Destroy's (the destroy itself goes to the
 * launcher at once). */
static void journal_queued_and_destroy_answers_wait(void **state)
{
	fixture *fx = *state;
	fake_journal j = {0};
	recorder rc[3], d = {0};
	uint64_t k1, k3;

	memset(rc, 0, sizeof rc);
	attach_journal(fx, &j);
	start_any(fx, "a", &rc[0], NULL);
	start_any(fx, "a", &rc[1], NULL);
	start_any(fx, "a", &rc[2], "queued"); /* no slot: queued */
	assert_int_equal(fx->f.nstarts, 2);
	k1 = fx->f.starts[0].key;
	k3 = fx->f.starts[1].key + 1;
	assert_int_equal(rc[2].n, 0);
	confirm(fx, k3, 1);
	assert_int_equal(rc[2].n, 1);
	assert_int_equal(rc[2].notes[0].note, SPD_NOTE_SNAPSHOT);
	assert_int_equal(rc[2].notes[0].state, SPD_STATE_PENDING);

	assert_int_equal(spd_registry_destroy_process(fx->r, fx->f.starts[0].id, 0, false, record, &d),
			 0);
	assert_int_equal(fx->f.ndestroys, 1);
	assert_int_equal(d.n, 0);
	confirm(fx, k1, 1);
	assert_int_equal(d.n, 1);
	assert_true(d.notes[0].destroyed);
	assert_int_equal(rc[0].n, 0); /* still PENDING: the start waiter waits on */
	spd_registry_on_started(fx->r, k1, 5, spd_clock_real_ns());
	assert_int_equal(rc[0].n, 1);
	assert_int_equal(rc[0].notes[0].state, SPD_STATE_RUNNING);
}

/* A journal that cannot write takes no hold: everything goes out at once,
 * as without a store. Without a journal nothing is ever held. */
static void journal_failing_delivers_at_once(void **state)
{
	fixture *fx = *state;
	fake_journal j = {.failing = true};
	recorder rc = {.keep = true};
	stream_log l = {0};
	spd_watch_spec ws = {.fn = log_event, .ctx = &l};
	spd_start_params sp = params("fn");
	uint64_t wid = 0, key;

	attach_journal(fx, &j);
	assert_int_equal(spd_registry_run(fx->r, &sp, &ws, &wid, NULL), 0);
	assert_int_equal(l.n, 1);
	key = fx->f.starts[0].key;
	finish(fx, key);
	assert_gap_free(&l, 3);
	assert_true(j.nholds >= 2); /* it was asked to hold, and refused */
	start(fx, "fn", &rc);
	spd_registry_on_started(fx->r, fx->f.starts[1].key, 7, spd_clock_real_ns());
	assert_int_equal(rc.n, 1);
	assert_int_equal(rc.notes[0].state, SPD_STATE_RUNNING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(start_pending_running_succeeded, setup, teardown),
		cmocka_unit_test_setup_teardown(start_callback_on_launch_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(start_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(start_passes_request, setup, teardown),
		cmocka_unit_test_setup_teardown(overrides_clamped, setup, teardown),
		cmocka_unit_test_setup_teardown(send_start_failure_is_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(watch_to_terminal, setup, teardown),
		cmocka_unit_test_setup_teardown(watcher_returning_false_is_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(watch_finished_is_snapshot_only, setup, teardown),
		cmocka_unit_test_setup_teardown(release_runs_once, setup, teardown),
		cmocka_unit_test_setup_teardown(release_at_registry_end, setup, teardown),
		cmocka_unit_test_setup_teardown(events_encoded_once, setup, teardown),
		cmocka_unit_test_setup_teardown(destroy_running, setup, teardown),
		cmocka_unit_test_setup_teardown(destroy_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(start_refused_while_congested, setup, teardown),
		cmocka_unit_test_setup_teardown(destroy_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(destroy_after_end, setup, teardown),
		cmocka_unit_test_setup_teardown(destroy_after_own_exit_is_not_canceled, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(launcher_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(listeners_down_is_not_serving, setup, teardown),
		cmocka_unit_test_setup_teardown(history_eviction, setup_small, teardown),
		cmocka_unit_test_setup_teardown(list_by_target_and_state_is_the_scan, setup, teardown),
		cmocka_unit_test(index_matches_sorted_keys),
		cmocka_unit_test_setup_teardown(shutdown_waits_for_exits, setup, teardown),
		cmocka_unit_test_setup_teardown(shutdown_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(abort_watchers_at_the_end, setup, teardown),
		cmocka_unit_test_setup_teardown(list_targets_counts, setup, teardown),
		cmocka_unit_test(reload_stales_prestart_versions),
		cmocka_unit_test_setup_teardown(child_strings_are_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(queue_is_fifo_and_bounded, setup_queue, teardown),
		cmocka_unit_test_setup_teardown(max_concurrent_holds_up_only_its_target, setup_queue,
						teardown),
		cmocka_unit_test_setup_teardown(destroy_queued_never_starts, setup_queue, teardown),
		cmocka_unit_test_setup_teardown(queued_at_shutdown_and_loss, setup_queue, teardown),
		cmocka_unit_test_setup_teardown(queued_canceled_by_shutdown, setup_queue, teardown),
		cmocka_unit_test_setup_teardown(reload_adds_changes_removes, setup, teardown),
		cmocka_unit_test_setup_teardown(reload_keeps_live_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(reload_limits_for_new_starts, setup_queue, teardown),
		cmocka_unit_test_setup_teardown(reload_health_transitions, setup, teardown),
		cmocka_unit_test_setup_teardown(reload_health_by_version, setup, teardown),
		cmocka_unit_test_setup_teardown(run_streams_from_pending_and_retries_attach, setup,
						teardown),
		cmocka_unit_test_setup_teardown(journal_start_answer_waits_for_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(journal_run_events_wait_for_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(journal_run_id_before_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(journal_end_before_first_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(journal_queued_and_destroy_answers_wait, setup_queue,
						teardown),
		cmocka_unit_test_setup_teardown(journal_failing_delivers_at_once, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
