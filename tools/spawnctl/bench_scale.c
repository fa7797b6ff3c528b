/* How spawnd's costs grow with work (issue 11), on a server that allows
 * 2 x live running processes and keeps the largest level of records:
 *   start latency (Run noop, one client) with 0, live and 2 x live `sleep`s
 *   running; front+launcher RSS per live process; front RSS per Watch stream
 *   (live streams on one process) and how much of it comes back when they
 *   end; a filtered ListProcesses page (target sleep, state RUNNING: the few
 *   records created first) at each level of records, against the first
 *   level, and starts while such pages are asked for. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/spawnctl/bench.h"

#define LAT_RUNS 300
#define LIST_RUNS 40
#define RARE 20   /* the records a filtered page finds */

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Runs per latency figure: fewer for a toy run. */
static size_t lat_runs;

static int run_p50(const struct spc_ctx *ctx, double *p50)
{
	bench_figures f;
	int rc = bench_measure(ctx, "noop", BENCH_RUN, 1, lat_runs, &f);

	*p50 = (double)f.p50;
	return rc;
}

static long fl_rss(pid_t front)
{
	pid_t l = front > 0 ? bench_launcher_pid(front) : 0;
	long a = front > 0 ? bench_rss_kib(front) : -1, b = l > 0 ? bench_rss_kib(l) : -1;

	return a < 0 || b < 0 ? -1 : a + b;
}

/* Starts N `sleep`s (forever) into IDS[*NIDS...]. */
static int start_sleeps(spc_client *c, size_t n, char **ids, size_t *nids)
{
	for (size_t i = 0; i < n; i++) {
		if (bench_start(c, "sleep", NULL, &ids[*nids]) < 0)
			return SPC_EXIT_RPC;
		(*nids)++;
	}
	return SPC_EXIT_OK;
}

static void destroy_all(spc_client *c, char **ids, size_t *n)
{
	for (size_t i = 0; i < *n; i++) {
		bench_destroy_now(c, ids[i], 1);
		free(ids[i]);
	}
	*n = 0;
}

/* A filtered page: target sleep, state RUNNING, page size RARE. Its time in
 * ns (-1 on error); *GOT the records it held. */
static int64_t list_once(spc_client *c, size_t *got)
{
	Spawnd__V1__ListProcessesRequest req = SPAWND__V1__LIST_PROCESSES_REQUEST__INIT;
	Spawnd__V1__ListProcessesResponse *resp = NULL;
	Spawnd__V1__State states[1] = {SPAWND__V1__STATE__STATE_RUNNING};
	struct spc_status st = SPC_STATUS_INIT;
	int64_t t0 = bench_now_ns(), d = -1;

	req.target = (char *)"sleep";
	req.states = states;
	req.n_states = 1;
	req.page_size = RARE;
	if (spc_client_unary(c, SPC_METHOD("ListProcesses"), &req.base,
			     &spawnd__v1__list_processes_response__descriptor,
			     SPC_DEFAULT_TIMEOUT_NS, (ProtobufCMessage **)&resp, &st) == 0 &&
	    st.code == GRPC_STATUS_OK) {
		d = bench_now_ns() - t0;
		*got = resp->n_processes;
	}
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	spc_status_release(&st);
	return d;
}

static double list_p50(spc_client *c, size_t *got)
{
	int64_t v[LIST_RUNS];
	size_t n = 0;

	for (int i = 0; i < LIST_RUNS; i++) {
		int64_t d = list_once(c, got);
		if (d >= 0)
			v[n++] = d;
	}
	qsort(v, n, sizeof v[0], bench_cmp_i64);
	return (double)bench_quantile(v, n, 0.5);
}

typedef struct lister {
	const struct spc_ctx *ctx;
	volatile int stop;
	size_t pages;
} lister;

/* Asks for a filtered page every 2 ms until told to stop. */
static void *lister_main(void *arg)
{
	lister *ls = arg;
	spc_client *c = NULL;
	size_t got;

	if (spc_client_create(&ls->ctx->conn, &c) < 0)
		return NULL;
	while (!ls->stop) {
		if (list_once(c, &got) >= 0)
			ls->pages++;
		sleep_ms(2);
	}
	spc_client_destroy(c);
	return NULL;
}

static int watchers(const struct spc_ctx *ctx, spc_client *c, const bench_scale_opts *o,
		    bench_table *t)
{
	Spawnd__V1__WatchRequest wreq = SPAWND__V1__WATCH_REQUEST__INIT;
	spc_stream **ss = calloc(o->live, sizeof *ss);
	size_t open = 0;
	char *id = NULL;
	long r0, r1, r2;
	int status = SPC_EXIT_OK;

	(void)ctx;
	if (ss == NULL)
		return spc_cli_local_error("bench", -ENOMEM);
	if (bench_start(c, "sleep", NULL, &id) < 0) {
		free(ss);
		return SPC_EXIT_RPC;
	}
	sleep_ms(200);
	r0 = bench_rss_kib(o->server_pid);
	wreq.id = id;
	for (; open < o->live; open++) {
		ProtobufCMessage *m = NULL;
		if (spc_stream_open(c, SPC_METHOD("Watch"), &wreq.base, 600 * 1000000000LL,
				    &ss[open]) < 0 ||
		    spc_stream_next(ss[open], &spawnd__v1__process_event__descriptor, &m) != 1) {
			fprintf(stderr, "spawnctl: bench: Watch %zu failed\n", open);
			status = SPC_EXIT_RPC;
			if (ss[open] != NULL)
				spc_stream_finish(ss[open], NULL);
			break;
		}
		protobuf_c_message_free_unpacked(m, NULL);
	}
	r1 = bench_rss_kib(o->server_pid);
	for (size_t i = 0; i < open; i++)
		spc_stream_finish(ss[i], NULL);
	sleep_ms(1000);
	r2 = bench_rss_kib(o->server_pid);
	bench_destroy_now(c, id, 1);
	free(id);
	free(ss);
	if (status == SPC_EXIT_OK && r0 > 0 && r1 > 0 && r2 > 0) {
		char n[96];
		snprintf(n, sizeof n, "front RSS per watcher (%zu Watch streams)", o->live);
		bench_add(t, n, (double)(r1 - r0) / (double)o->live, "KiB", 16, "the 16 KiB target",
			  1.0, 0);
		bench_add(t, "  RSS returned when they end", r1 > r0 ? (double)(r1 - r2) / (double)(r1 - r0) : 1,
			  "", 1.0, "all of it", 0.9, 1);
	}
	return status;
}

int bench_scale(const struct spc_ctx *ctx, const bench_scale_opts *o, bench_table *t)
{
	spc_client *c = NULL;
	char **ids = calloc(2 * o->live + RARE, sizeof *ids);
	size_t nids = 0, created = 0, got = 0;
	double lat0 = 0, lat1 = 0, lat2 = 0, list_floor = 0;
	long rss0, rss1;
	char name[96];
	int status;

	if (ids == NULL || spc_client_create(&ctx->conn, &c) < 0) {
		free(ids);
		return spc_cli_local_error(ctx->conn.addr, -EIO);
	}
	lat_runs = o->live < LAT_RUNS ? 2 * o->live : LAT_RUNS;
	if (lat_runs > LAT_RUNS)
		lat_runs = LAT_RUNS;
	/* Start latency and RSS with live processes. */
	status = run_p50(ctx, &lat0);
	created += lat_runs;
	rss0 = o->server_pid > 0 ? fl_rss(o->server_pid) : -1;
	if (status == SPC_EXIT_OK)
		status = start_sleeps(c, o->live, ids, &nids);
	sleep_ms(200);
	rss1 = o->server_pid > 0 ? fl_rss(o->server_pid) : -1;
	if (status == SPC_EXIT_OK)
		status = run_p50(ctx, &lat1);
	if (status == SPC_EXIT_OK)
		status = start_sleeps(c, o->live, ids, &nids);
	if (status == SPC_EXIT_OK)
		status = run_p50(ctx, &lat2);
	created += 2 * lat_runs + nids;
	destroy_all(c, ids, &nids);
	if (status != SPC_EXIT_OK)
		goto out;
	bench_add(t, "scale: start, Run noop c=1 p50, 0 running", lat0 / 1e6, "ms", lat0 / 1e6,
		  "itself", 0, 0);
	snprintf(name, sizeof name, "scale: the same, %zu running", o->live);
	bench_add(t, name, lat1 / 1e6, "ms", lat0 / 1e6, "with 0 running", 1.2, 0);
	snprintf(name, sizeof name, "scale: the same, %zu running", 2 * o->live);
	bench_add(t, name, lat2 / 1e6, "ms", lat0 / 1e6, "with 0 running", 1.2, 0);
	if (rss0 > 0 && rss1 > 0)
		bench_add(t, "scale: front+launcher RSS per live process",
			  (double)(rss1 - rss0) / (double)o->live, "KiB", 4, "the 4 KiB target", 1.0,
			  0);
	/* Watchers. */
	if (o->server_pid > 0) {
		status = watchers(ctx, c, o, t);
		if (status != SPC_EXIT_OK)
			goto out;
	}
	/* ListProcesses: RARE matching records first, then the noise. */
	status = start_sleeps(c, RARE, ids, &nids);
	created += RARE + 1;
	for (size_t i = 0; i < o->nrecords && status == SPC_EXIT_OK; i++) {
		bench_figures f;
		double p;
		if (created < o->records[i]) {
			status = bench_measure(ctx, "noop", BENCH_RUN, o->clients,
					       o->records[i] - created, &f);
			created = o->records[i];
		}
		if (status != SPC_EXIT_OK)
			break;
		p = list_p50(c, &got);
		if (got != RARE) {
			fprintf(stderr, "spawnctl: bench: the filtered page held %zu records, want %d\n",
				got, RARE);
			status = SPC_EXIT_RPC;
			break;
		}
		if (i == 0)
			list_floor = p;
		snprintf(name, sizeof name, "scale: filtered ListProcesses page, %zu records",
			 o->records[i]);
		bench_add(t, name, p / 1e6, "ms", list_floor / 1e6, i == 0 ? "itself" : "the first level",
			  i == o->nrecords - 1 && i > 0 ? 5.0 : 0, 0);
	}
	if (status == SPC_EXIT_OK) {
		lister ls = {.ctx = ctx};
		pthread_t th;
		double quiet, busy;
		status = run_p50(ctx, &quiet);
		if (status == SPC_EXIT_OK && pthread_create(&th, NULL, lister_main, &ls) == 0) {
			status = run_p50(ctx, &busy);
			ls.stop = 1;
			pthread_join(th, NULL);
			snprintf(name, sizeof name, "scale: start while pages are listed (%zu pages)",
				 ls.pages);
			bench_add(t, name, busy / 1e6, "ms", quiet / 1e6, "without", 1.2, 0);
		}
	}
	destroy_all(c, ids, &nids);
out:
	destroy_all(c, ids, &nids);
	free(ids);
	spc_client_destroy(c);
	return status;
}
