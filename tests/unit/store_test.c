/* The store (store/store.h) under a real registry with a fake launcher: the
 * promise (a new record's answer and an end are delivered only once
 * committed), group commit, restart (records back, LOST, request_id retries,
 * gaps), retention, the bad days (a second holder, a newer schema, a corrupt
 * file, failing writes and their recovery) and --check-config's check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "service/common/clock.h"
#include "service/common/log.h"
#include "service/config/config.h"
#include "service/registry/journal.h"
#include "service/registry/registry.h"
#include "service/store/store.h"

/* Generous: an event comes "within seconds" (SPEC §11). */
#define DEADLINE_NS (10 * 1000000000LL)

static const char config_yaml[] =
	"listen: [\"127.0.0.1:0\"]\n"
	"history: {max_records: 100}\n"
	"targets:\n"
	"  fn: {function: builtin:echo}\n";

static const char small_yaml[] =
	"listen: [\"127.0.0.1:0\"]\n"
	"history: {max_records: 2}\n"
	"targets:\n"
	"  fn: {function: builtin:echo}\n";

static spd_config *cfg, *small_cfg;
static char dir[256];

static spd_config *load_cfg(const char *yaml)
{
	char err[SPD_CONFIG_ERR_MAX] = "";
	spd_config *c = NULL;

	if (spd_config_load_string(yaml, strlen(yaml), "store_test.yaml", NULL, &c, err) != 0)
		fail_msg("config: %s", err);
	return c;
}

static int group_setup(void **state)
{
	const char *tmp = getenv("TEST_TMPDIR");

	(void)state;
	spd_log_setup(SPD_LOG_ERROR, 0, "store_test");
	/* What spawnd does: a file size limit fails a write, not the process. */
	signal(SIGXFSZ, SIG_IGN);
	snprintf(dir, sizeof dir, "%s/store_test.XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	cfg = load_cfg(config_yaml);
	small_cfg = load_cfg(small_yaml);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	spd_config_destroy(cfg);
	spd_config_destroy(small_cfg);
	return 0;
}

/* A fresh store path per test. */
static void store_path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s.db", dir, name);
	unlink(out);
}

/* ---- a registry with a fake launcher, and its store ---------------------------- */

/* The id of the last process launched: the launch goes at once, whatever
 * the store does (its answer may wait for a commit). */
static char last_started[SPD_ID_LEN + 1];

static int fake_start(void *ctx, uint64_t key, const spd_launch_req *req)
{
	(void)ctx, (void)key;
	snprintf(last_started, sizeof last_started, "%s", req->process_id);
	return 0;
}

static int fake_destroy(void *ctx, uint64_t key, int64_t grace_ms)
{
	(void)ctx, (void)key, (void)grace_ms;
	return 0;
}

typedef struct fixture {
	spd_registry *r;
	spd_store *s;
	char path[300];
} fixture;

static int open_store(fixture *fx, int64_t retry_ms, char *err)
{
	spd_store_options o = SPD_STORE_OPTIONS_INIT;

	o.path = fx->path;
	o.retry_ms = retry_ms;
	return spd_store_open(&o, &fx->s, err);
}

static int restore_one(void *ctx, spd_process *p, const char *rid, const uint8_t *fp)
{
	return spd_registry_restore(ctx, p, rid, fp);
}

/* Registry + store on FX->path; the writer starts only if START. */
static void fx_open(fixture *fx, const spd_config *c, bool start)
{
	spd_registry_ops ops = {.send_start = fake_start, .send_destroy = fake_destroy};
	char err[SPD_STORE_ERR_MAX] = "";
	spd_journal_ops j;

	if (open_store(fx, 50, err) != 0)
		fail_msg("open: %s", err);
	fx->r = spd_registry_create(c, &ops);
	assert_non_null(fx->r);
	j = spd_store_journal(fx->s);
	spd_registry_set_journal(fx->r, &j);
	if (spd_store_load(fx->s, restore_one, fx->r, err) != 0)
		fail_msg("load: %s", err);
	if (start)
		assert_int_equal(spd_store_start(fx->s, fx->r), 0);
}

static void fx_close(fixture *fx);

/* What a callback saw: the last snapshot or state, copied. */
typedef struct seen {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int calls;
	bool terminal;
	spd_note note;
	spd_state state;
	spd_error_kind kind;
	bool ran;
	uint64_t seq;
	char id[SPD_ID_LEN + 1];
	char result[64];
	char message[128];
} seen;

static void seen_init(seen *w)
{
	memset(w, 0, sizeof *w);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
}

static bool record(void *ctx, const spd_watch_event *ev)
{
	seen *w = ctx;

	pthread_mutex_lock(&w->mu);
	w->calls++;
	w->note = ev->note;
	w->terminal = ev->terminal;
	if (ev->p != NULL) {
		w->state = ev->p->state;
		w->kind = ev->p->error.kind;
		w->ran = ev->p->ran;
		w->seq = ev->p->seq;
		snprintf(w->id, sizeof w->id, "%s", ev->p->id);
		snprintf(w->result, sizeof w->result, "%.*s", (int)ev->p->result_len,
			 ev->p->result != NULL ? (const char *)ev->p->result : "");
		snprintf(w->message, sizeof w->message, "%s",
			 ev->p->error.message != NULL ? ev->p->error.message : "");
	}
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return !ev->terminal;
}

static bool wait_terminal(seen *w)
{
	int64_t end = spd_clock_real_ns() + DEADLINE_NS;
	struct timespec ts = {.tv_sec = end / 1000000000, .tv_nsec = end % 1000000000};
	bool t;

	pthread_mutex_lock(&w->mu);
	while (!w->terminal)
		if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) != 0)
			break;
	t = w->terminal;
	pthread_mutex_unlock(&w->mu);
	return t;
}

static bool is_terminal(seen *w)
{
	bool t;

	pthread_mutex_lock(&w->mu);
	t = w->terminal;
	pthread_mutex_unlock(&w->mu);
	return t;
}

/* Start waiters: the registry calls them when a start leaves PENDING, maybe
 * after the test's frame is gone; freed after the registry. */
static seen *waiters[64];
static size_t nwaiters;

/* Starts `fn` with ARG as its one arg and label k=v, as caller token:ab;
 * writes its id into ID. Keys count from 1 in creation order. */
static void start(fixture *fx, const char *arg, const char *rid, char id[SPD_ID_LEN + 1])
{
	const char *argv[] = {arg};
	const char *labels[] = {"k", "v"};
	spd_start_params sp = {
		.target = "fn", .argv = argv, .argc = 1, .labels = labels, .label_count = 1,
		.timeout_ms = -1, .grace_ms = -1, .request_id = rid, .caller = "token:ab",
	};
	seen *w = calloc(1, sizeof *w);

	assert_non_null(w);
	assert_true(nwaiters < 64);
	seen_init(w);
	waiters[nwaiters++] = w;
	last_started[0] = '\0';
	assert_int_equal(spd_registry_start(fx->r, &sp, record, w), 0);
	assert_int_equal(strlen(last_started), SPD_ID_LEN); /* launched at once */
	snprintf(id, SPD_ID_LEN + 1, "%s", last_started);
}

static void fx_close(fixture *fx)
{
	spd_store_stop(fx->s);
	spd_registry_destroy(fx->r);
	spd_store_close(fx->s);
	fx->r = NULL;
	fx->s = NULL;
	while (nwaiters > 0)
		free(waiters[--nwaiters]);
}

/* Runs the record of KEY to a normal end with RESULT. */
static void run_to_end(fixture *fx, uint64_t key, const char *result)
{
	spd_exit_facts rep = {0};

	spd_registry_on_started(fx->r, key, 4242, spd_clock_real_ns());
	rep.pid = 4242;
	rep.wait_status = 0; /* exited 0 */
	rep.started_ns = spd_clock_real_ns();
	rep.ended_ns = spd_clock_real_ns();
	rep.result = (uint8_t *)strdup(result);
	rep.result_len = strlen(result);
	rep.stdout_total = 0;
	spd_registry_on_exited(fx->r, key, &rep);
	free(rep.result);
}

/* Subscribes W to ID (after_sequence AFTER). */
static uint64_t watch(fixture *fx, const char *id, uint64_t after, seen *w, int expect_rc)
{
	spd_watch_spec ws = {.id = id, .after_sequence = after, .fn = record, .ctx = w};
	uint64_t wid = 0;

	assert_int_equal(spd_registry_watch(fx->r, &ws, &wid), expect_rc);
	return wid;
}

/* ---- tests --------------------------------------------------------------------- */

/* The promise: with the writer stopped nothing terminal is delivered; once it
 * runs, the end comes, committed (a second store sees it). */
static void test_end_waits_for_commit(void **state)
{
	fixture fx = {0};
	char id[SPD_ID_LEN + 1];
	seen w, g;

	(void)state;
	store_path(fx.path, sizeof fx.path, "promise");
	fx_open(&fx, cfg, false);
	start(&fx, "a", NULL, id);
	seen_init(&w);
	watch(&fx, id, 0, &w, 0);
	run_to_end(&fx, 1, "done");
	/* Ended in memory, not committed: no terminal event, GetProcess waits. */
	assert_false(is_terminal(&w));
	seen_init(&g);
	assert_int_equal(spd_registry_get_committed(fx.r, id, record, &g), 0);
	assert_int_equal(g.calls, 0);
	/* A Watch that comes now waits too, and then gets its SNAPSHOT. */
	seen late;
	seen_init(&late);
	assert_int_not_equal(watch(&fx, id, 0, &late, 0), 0);
	assert_int_equal(late.calls, 0);
	assert_int_equal(spd_store_start(fx.s, fx.r), 0);
	assert_true(wait_terminal(&w));
	assert_int_equal(w.state, SPD_STATE_SUCCEEDED);
	assert_true(wait_terminal(&g));
	assert_int_equal(g.note, SPD_NOTE_SNAPSHOT);
	assert_string_equal(g.result, "done");
	assert_true(wait_terminal(&late));
	assert_int_equal(late.note, SPD_NOTE_SNAPSHOT);
	{
		spd_store_stats st;
		spd_store_stats_get(fx.s, &st);
		/* Everything queued before the writer started: one transaction. */
		assert_int_equal(st.commits, 1);
		assert_int_equal(st.commit_count, 1);
		assert_int_equal(st.errors, 0);
	}
	fx_close(&fx);
}

/* The other half of the promise: a new process is launched at once, but its
 * StartProcess answer (and GetProcess) waits for its record's first commit;
 * after a restart that record is known (FAILED/LOST) and a retry with its
 * request_id starts nothing. */
static void test_start_answer_waits_for_commit(void **state)
{
	fixture fx = {0};
	char id[SPD_ID_LEN + 1];
	seen *answer, g, again;

	(void)state;
	store_path(fx.path, sizeof fx.path, "created");
	fx_open(&fx, cfg, false);
	start(&fx, "a", "rid-new", id); /* launched: start() checks it */
	answer = waiters[nwaiters - 1];
	spd_registry_on_started(fx.r, 1, 4343, spd_clock_real_ns());
	assert_int_equal(answer->calls, 0);
	seen_init(&g);
	assert_int_equal(spd_registry_get_committed(fx.r, id, record, &g), 0);
	assert_int_equal(g.calls, 0);
	assert_int_equal(spd_store_start(fx.s, fx.r), 0);
	{
		int64_t end = spd_clock_real_ns() + DEADLINE_NS;
		struct timespec ts = {.tv_sec = end / 1000000000, .tv_nsec = end % 1000000000};
		pthread_mutex_lock(&answer->mu);
		while (answer->calls == 0)
			if (pthread_cond_timedwait(&answer->cv, &answer->mu, &ts) != 0)
				break;
		pthread_mutex_unlock(&answer->mu);
	}
	assert_int_equal(answer->calls, 1);
	assert_int_equal(answer->state, SPD_STATE_RUNNING);
	assert_string_equal(answer->id, id);
	/* spawnd "dies" with it running: the restarted one knows it. */
	fx_close(&fx);
	fx_open(&fx, cfg, true);
	seen_init(&g);
	assert_int_equal(spd_registry_get(fx.r, id, record, &g), 0);
	assert_int_equal(g.state, SPD_STATE_FAILED);
	assert_int_equal(g.kind, SPD_ERR_LOST);
	assert_true(g.ran);
	{
		const char *argv[] = {"a"};
		const char *labels[] = {"k", "v"};
		spd_start_params sp = {
			.target = "fn", .argv = argv, .argc = 1, .labels = labels, .label_count = 1,
			.timeout_ms = -1, .grace_ms = -1, .request_id = "rid-new", .caller = "token:ab",
		};
		last_started[0] = '\0';
		seen_init(&again);
		assert_int_equal(spd_registry_start(fx.r, &sp, record, &again), 0);
		assert_string_equal(again.id, id);
		assert_string_equal(last_started, ""); /* nothing launched */
	}
	fx_close(&fx);
}

/* A ListProcesses page that shows an end comes only after its commit: the
 * listing, started before the writer, sees the end with a commit done. */
struct listing {
	fixture *fx;
	spd_state state;
	uint64_t commits_then;  /* the store's commits when the page showed it */
};

static bool list_one(void *ctx, const spd_watch_event *ev)
{
	struct listing *l = ctx;
	spd_store_stats st;

	spd_store_stats_get(l->fx->s, &st);
	l->state = ev->p->state;
	l->commits_then = st.commits;
	return true;
}

static void *list_main(void *arg)
{
	struct listing *l = arg;
	spd_list_query q = {.page_size = 10};
	uint64_t next = 0;

	spd_registry_list(l->fx->r, &q, list_one, l, &next);
	return NULL;
}

static void test_listing_waits_for_commit(void **state)
{
	fixture fx = {0};
	struct listing l = {.fx = &fx};
	char id[SPD_ID_LEN + 1];
	pthread_t th;

	(void)state;
	store_path(fx.path, sizeof fx.path, "listing");
	fx_open(&fx, cfg, false);
	start(&fx, "a", NULL, id);
	run_to_end(&fx, 1, "done");
	assert_int_equal(pthread_create(&th, NULL, list_main, &l), 0);
	assert_int_equal(spd_store_start(fx.s, fx.r), 0);
	pthread_join(th, NULL);
	assert_int_equal(l.state, SPD_STATE_SUCCEEDED);
	assert_true(l.commits_then >= 1);
	fx_close(&fx);
}

/* After a restart: the records, with what they had; LOST for those live;
 * the same request_id returns the stored process; Watch answers as SPEC §12. */
static void test_restart(void **state)
{
	fixture fx = {0};
	char done_id[SPD_ID_LEN + 1], run_id[SPD_ID_LEN + 1], pend_id[SPD_ID_LEN + 1];
	seen w;

	(void)state;
	store_path(fx.path, sizeof fx.path, "restart");
	fx_open(&fx, cfg, true);
	start(&fx, "a", "rid-1", done_id);
	run_to_end(&fx, 1, "first");
	start(&fx, "b", NULL, run_id);
	spd_registry_on_started(fx.r, 2, 777, spd_clock_real_ns());
	start(&fx, "c", NULL, pend_id);
	/* A Get that waits for the commit proves the first one's end is in. */
	seen_init(&w);
	assert_int_equal(spd_registry_get_committed(fx.r, done_id, record, &w), 0);
	assert_true(wait_terminal(&w));
	/* spawnd "dies" here: the store stops with b RUNNING and c PENDING. */
	fx_close(&fx);

	fx_open(&fx, cfg, true);
	seen_init(&w);
	assert_int_equal(spd_registry_get(fx.r, done_id, record, &w), 0);
	assert_int_equal(w.state, SPD_STATE_SUCCEEDED);
	assert_string_equal(w.result, "first");
	assert_int_equal(w.seq, 3);
	seen_init(&w);
	assert_int_equal(spd_registry_get(fx.r, run_id, record, &w), 0);
	assert_int_equal(w.state, SPD_STATE_FAILED);
	assert_int_equal(w.kind, SPD_ERR_LOST);
	assert_true(w.ran);
	/* PENDING 1, RUNNING 2, then outputs the store never saw: FAILED
	 * jumps past any number the dead spawnd could have sent. */
	assert_int_equal(w.seq, 2 + (UINT64_C(1) << 40));
	assert_string_equal(w.message, "spawnd restarted while this process was running");
	seen_init(&w);
	assert_int_equal(spd_registry_get(fx.r, pend_id, record, &w), 0);
	assert_int_equal(w.state, SPD_STATE_FAILED);
	assert_false(w.ran);
	assert_int_equal(w.seq, 1 + (UINT64_C(1) << 40));

	/* Watch: after_sequence 0 -> SNAPSHOT, == last -> nothing, below -> gap. */
	seen_init(&w);
	assert_int_equal(watch(&fx, done_id, 0, &w, 0), 0);
	assert_int_equal(w.note, SPD_NOTE_SNAPSHOT);
	assert_true(w.terminal);
	seen_init(&w);
	assert_int_equal(watch(&fx, done_id, 3, &w, 0), 0);
	assert_int_equal(w.calls, 0);
	seen_init(&w);
	assert_int_equal(watch(&fx, done_id, 1, &w, 0), 0);
	assert_int_equal(w.note, SPD_NOTE_SNAPSHOT_GAP);
	seen_init(&w);
	watch(&fx, done_id, 4, &w, -ERANGE);

	/* The same request again: the stored process, nothing new. */
	{
		const char *argv[] = {"a"};
		const char *labels[] = {"k", "v"};
		spd_start_params sp = {
			.target = "fn", .argv = argv, .argc = 1, .labels = labels, .label_count = 1,
			.timeout_ms = -1, .grace_ms = -1, .request_id = "rid-1", .caller = "token:ab",
		};
		seen_init(&w);
		assert_int_equal(spd_registry_start(fx.r, &sp, record, &w), 0);
		assert_string_equal(w.id, done_id);
		assert_int_equal(w.state, SPD_STATE_SUCCEEDED);
		argv[0] = "other";
		assert_int_equal(spd_registry_start(fx.r, &sp, record, &w), -EEXIST);
	}
	fx_close(&fx);
}

/* Retention applies to the store: evicted records leave it. */
static void test_retention(void **state)
{
	fixture fx = {0};
	char id[SPD_ID_LEN + 1], last[SPD_ID_LEN + 1];
	seen w;

	(void)state;
	store_path(fx.path, sizeof fx.path, "retention");
	fx_open(&fx, small_cfg, true);
	for (uint64_t k = 1; k <= 5; k++) {
		start(&fx, "x", NULL, id);
		run_to_end(&fx, k, "r");
	}
	snprintf(last, sizeof last, "%s", id);
	seen_init(&w);
	assert_int_equal(spd_registry_get_committed(fx.r, last, record, &w), 0);
	assert_true(wait_terminal(&w));
	fx_close(&fx);
	{
		sqlite3 *db;
		sqlite3_stmt *st;
		assert_int_equal(sqlite3_open(fx.path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM processes", -1, &st,
						    NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 2);
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
}

/* One spawnd per store: the second names the first. */
static void test_second_holder(void **state)
{
	fixture a = {0}, b = {0};
	char err[SPD_STORE_ERR_MAX] = "", pid[32];

	(void)state;
	store_path(a.path, sizeof a.path, "holder");
	snprintf(b.path, sizeof b.path, "%s", a.path);
	assert_int_equal(open_store(&a, 50, err), 0);
	assert_int_equal(open_store(&b, 50, err), -EBUSY);
	snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
	assert_non_null(strstr(err, pid));
	assert_non_null(strstr(err, a.path));
	spd_store_close(a.s);
	assert_int_equal(open_store(&b, 50, err), 0);
	spd_store_close(b.s);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* A newer schema, a corrupt file, not a store: refused, naming file and
 * reason; --check-config's check says the same. */
static void test_refusals(void **state)
{
	fixture fx = {0};
	char err[SPD_STORE_ERR_MAX] = "";
	sqlite3 *db;

	(void)state;
	store_path(fx.path, sizeof fx.path, "newer");
	assert_int_equal(sqlite3_open(fx.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE schema_version (version INTEGER);"
					  "INSERT INTO schema_version VALUES (99);",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(open_store(&fx, 50, err), -EPROTO);
	assert_non_null(strstr(err, fx.path));
	assert_non_null(strstr(err, "schema version 99 is newer"));
	assert_int_equal(spd_store_check(fx.path, err), -EPROTO);
	assert_non_null(strstr(err, "newer"));

	store_path(fx.path, sizeof fx.path, "garbage");
	{
		char junk[8192];
		memset(junk, 'x', sizeof junk);
		write_file(fx.path, junk, sizeof junk);
	}
	assert_int_equal(open_store(&fx, 50, err), -EILSEQ);
	assert_non_null(strstr(err, fx.path));
	assert_non_null(strstr(err, "not a database"));
	assert_int_equal(spd_store_check(fx.path, err), -EILSEQ);

	store_path(fx.path, sizeof fx.path, "foreign");
	assert_int_equal(sqlite3_open(fx.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x);", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(open_store(&fx, 50, err), -EILSEQ);
	assert_non_null(strstr(err, "not a spawnd store"));

	/* A missing file is fine where it can be created, not elsewhere. */
	store_path(fx.path, sizeof fx.path, "missing");
	assert_int_equal(spd_store_check(fx.path, err), 0);
	assert_int_equal(spd_store_check("/nonexistent-dir/x.db", err), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent-dir/x.db"));
}

/* A store written by the first schema version's migration is current; an
 * empty file is set up; reopening changes nothing. */
static void test_schema_version(void **state)
{
	fixture fx = {0};
	char err[SPD_STORE_ERR_MAX] = "";
	sqlite3 *db;
	sqlite3_stmt *st;

	(void)state;
	store_path(fx.path, sizeof fx.path, "schema");
	assert_int_equal(open_store(&fx, 50, err), 0);
	spd_store_close(fx.s);
	assert_int_equal(open_store(&fx, 50, err), 0);
	spd_store_close(fx.s);
	assert_int_equal(sqlite3_open(fx.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), SPD_STORE_SCHEMA_VERSION);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static spd_health health_now(fixture *fx)
{
	return spd_registry_health(fx->r, spd_registry_store_subject);
}

static bool wait_health(fixture *fx, spd_health want)
{
	int64_t end = spd_clock_mono_ns() + DEADLINE_NS;

	while (health_now(fx) != want) {
		if (spd_clock_mono_ns() > end)
			return false;
		usleep(2000); /* polls a condition with a deadline, never sleeps "enough" */
	}
	return true;
}

/* Writes fail (a file size limit, as a full disk): events go out uncommitted
 * and at once, health turns NOT_SERVING, errors are counted; when writes work
 * again everything queued is written and nothing committed was lost. */
static void test_failing_writes(void **state)
{
	fixture fx = {0};
	char a[SPD_ID_LEN + 1], b[SPD_ID_LEN + 1], c[SPD_ID_LEN + 1];
	struct rlimit old, lim;
	spd_store_stats st;
	seen w;

	(void)state;
	store_path(fx.path, sizeof fx.path, "failing");
	fx_open(&fx, cfg, true);
	assert_int_equal(health_now(&fx), SPD_HEALTH_SERVING);
	start(&fx, "a", NULL, a);
	run_to_end(&fx, 1, "committed before");
	seen_init(&w);
	assert_int_equal(spd_registry_get_committed(fx.r, a, record, &w), 0);
	assert_true(wait_terminal(&w));

	/* No file may grow now (SIGXFSZ is ignored: write() fails, EFBIG). */
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 1;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	start(&fx, "b", NULL, b);
	assert_true(wait_health(&fx, SPD_HEALTH_NOT_SERVING));
	seen_init(&w);
	watch(&fx, b, 0, &w, 0);
	run_to_end(&fx, 2, "uncommitted");
	/* Delivered at once, not held. */
	assert_true(is_terminal(&w));
	assert_string_equal(w.result, "uncommitted");
	start(&fx, "c", NULL, c);
	run_to_end(&fx, 3, "also");
	spd_store_stats_get(fx.s, &st);
	assert_true(st.failing);
	assert_true(st.errors >= 1);

	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_true(wait_health(&fx, SPD_HEALTH_SERVING));
	spd_store_stats_get(fx.s, &st);
	assert_false(st.failing);
	fx_close(&fx);

	/* Everything is there: before, during and after. */
	fx_open(&fx, cfg, true);
	seen_init(&w);
	assert_int_equal(spd_registry_get(fx.r, a, record, &w), 0);
	assert_string_equal(w.result, "committed before");
	seen_init(&w);
	assert_int_equal(spd_registry_get(fx.r, b, record, &w), 0);
	assert_string_equal(w.result, "uncommitted");
	assert_int_equal(w.state, SPD_STATE_SUCCEEDED);
	seen_init(&w);
	assert_int_equal(spd_registry_get(fx.r, c, record, &w), 0);
	assert_string_equal(w.result, "also");
	fx_close(&fx);
}

struct got {
	int n;
	spd_process p;
	char rid[32];
	bool fp;
};

static int take(void *ctx, spd_process *p, const char *rid, const uint8_t *fp);

/* Every field of a record comes back as it was. */
static void test_round_trip(void **state)
{
	fixture fx = {0};
	char id[SPD_ID_LEN + 1];
	spd_exit_facts rep = {0};
	seen w;

	(void)state;
	store_path(fx.path, sizeof fx.path, "roundtrip");
	fx_open(&fx, cfg, true);
	start(&fx, "arg one", "rid-x", id);
	spd_registry_on_started(fx.r, 1, 99, 1000);
	rep.pid = 99;
	rep.wait_status = 3 << 8; /* exit 3 */
	rep.started_ns = 1000;
	rep.ended_ns = 5000;
	rep.utime_us = 11;
	rep.stime_us = 22;
	rep.maxrss_bytes = 33;
	rep.stdout_tail = (uint8_t *)strdup("out-tail");
	rep.stdout_len = 8;
	rep.stdout_head = (uint8_t *)strdup("out-head");
	rep.stdout_head_len = 8;
	rep.stdout_total = 100;
	rep.stderr_tail = (uint8_t *)strdup("err");
	rep.stderr_len = 3;
	rep.stderr_total = 3;
	spd_registry_on_exited(fx.r, 1, &rep);
	free(rep.stdout_tail);
	free(rep.stdout_head);
	free(rep.stderr_tail);
	seen_init(&w);
	assert_int_equal(spd_registry_get_committed(fx.r, id, record, &w), 0);
	assert_true(wait_terminal(&w));
	fx_close(&fx);

	{
		spd_store_options o = SPD_STORE_OPTIONS_INIT;
		char err[SPD_STORE_ERR_MAX];
		spd_store *s;
		struct got g = {0};
		o.path = fx.path;
		assert_int_equal(spd_store_open(&o, &s, err), 0);
		assert_int_equal(spd_store_load(s, take, &g, err), 0);
		spd_store_close(s);
		assert_int_equal(g.n, 1);
		assert_string_equal(g.p.id, id);
		assert_string_equal(g.p.target, "fn");
		assert_string_equal(g.p.caller, "token:ab");
		assert_int_equal(g.p.argc, 1);
		assert_string_equal(g.p.argv[0], "arg one");
		assert_null(g.p.argv[1]);
		assert_int_equal(g.p.label_count, 1);
		assert_string_equal(g.p.labels[0], "k");
		assert_string_equal(g.p.labels[1], "v");
		assert_string_equal(g.rid, "rid-x");
		assert_true(g.fp);
		assert_int_equal(g.p.state, SPD_STATE_FAILED);
		assert_int_equal(g.p.error.kind, SPD_ERR_EXIT_CODE);
		assert_int_equal(g.p.exit_code, 3);
		assert_true(g.p.threw);
		assert_true(g.p.ran);
		assert_int_equal(g.p.pid, 99);
		assert_int_equal(g.p.started_ns, 1000);
		assert_int_equal(g.p.ended_ns, 5000);
		assert_int_equal(g.p.utime_us, 11);
		assert_int_equal(g.p.stime_us, 22);
		assert_int_equal(g.p.maxrss_bytes, 33);
		assert_memory_equal(g.p.stdout_tail, "out-tail", 8);
		assert_memory_equal(g.p.stdout_head, "out-head", 8);
		assert_memory_equal(g.p.stderr_tail, "err", 3);
		assert_int_equal(g.p.stdout_bytes, 100);
		assert_true(g.p.output_truncated);
		assert_int_equal(g.p.seq, 3);
		assert_non_null(g.p.error.message);
		spd_process_release(&g.p);
	}
}

static int take(void *ctx, spd_process *p, const char *rid, const uint8_t *fp)
{
	struct got *g = ctx;

	g->n++;
	g->p = *p;
	memset(p, 0, sizeof *p);
	snprintf(g->rid, sizeof g->rid, "%s", rid != NULL ? rid : "");
	g->fp = fp != NULL;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_end_waits_for_commit),
		cmocka_unit_test(test_start_answer_waits_for_commit),
		cmocka_unit_test(test_listing_waits_for_commit),
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_retention),
		cmocka_unit_test(test_second_holder),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_schema_version),
		cmocka_unit_test(test_failing_writes),
		cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
