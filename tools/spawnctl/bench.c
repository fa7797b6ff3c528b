/* `spawnctl bench`: spawnd's performance against this machine's own floor,
 * measured in the same run (SPEC §9). Absolute times on a shared 2-vCPU
 * machine mean little; ratios to the floor measured a moment before do.
 *
 * Floors, measured in this process before any gRPC thread exists:
 *   fork      fork + child _exit + waitpid
 *   exec      fork + execve(/bin/true) + waitpid
 *   kill      fork a sleeping child, SIGKILL it, waitpid
 *   rpc       a unary gRPC round trip to the server (ListTargets), one client
 * Figures:
 *   start     StartProcess -> the terminal event of a Watch, per target, with
 *             N clients at once: p50, p99 and completed processes per second
 *   destroy   Destroy(wait) of a running `sleep` (honours SIGTERM) and of a
 *             `stubborn` with a zero grace period (SIGKILL at once)
 *   rss       the server's resident memory, with --server-pid
 *   store     with --store-addr (a second server, the same config plus a
 *             store): `noop` throughput with the store over without it,
 *             measured round by round, alternating servers, so that both
 *             see the same machine; the median of the rounds' ratios; and
 *             the StartProcess answer's p50 on both (it waits for the new
 *             record's commit, SPEC §12 "Store")
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/spawnctl/commands.h"

static const char spc__bench_usage[] =
	"Usage: spawnctl [GLOBAL OPTIONS] bench [OPTIONS] [TARGET...]\n"
	"\n"
	"Measures start->terminal latency (p50, p99) and throughput for each\n"
	"TARGET (default: noop noop_forkserver noop_prestart noop_spawn true, as in\n"
	"config/bench.yaml), destroy latency (targets sleep and stubborn), and the\n"
	"server's RSS, each as a ratio to this machine's floor measured in the same\n"
	"run. `make bench` starts a server with config/bench.yaml and runs this.\n"
	"\n"
	"Options:\n"
	"  --clients N      concurrent clients (default 4)\n"
	"  --count N        processes per target (default 400)\n"
	"  --server-pid P   read the server's RSS from /proc/P\n"
	"  --store-addr A   a second server, same targets, with a store: compare\n"
	"                   throughput with the store on (A) and off (--addr)\n"
	"  --store-name S   what to call A's store in the output (default \"store\")\n"
	"  -h, --help       show this help\n"
	"\n"
	"Exit status: 0 done, 3 usage error, 4 RPC or transport error.\n";

#define FLOOR_RUNS 200
#define DESTROY_RUNS 40

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The Q-th quantile (0..1) of N sorted samples. */
static int64_t quantile(const int64_t *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

/* ---- floors -------------------------------------------------------------------- */

enum floor_kind { FLOOR_FORK, FLOOR_EXEC, FLOOR_KILL };

/* One run of a floor operation; its duration in ns, or -1. Only _exit and
 * execve run in the children: this process is single-threaded here, but the
 * habit costs nothing. */
static int64_t floor_once(enum floor_kind kind)
{
	static char *const argv[] = {(char *)"/bin/true", NULL};
	static char *const envp[] = {NULL};
	int64_t t0 = now_ns();
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (kind == FLOOR_EXEC)
			execve(argv[0], argv, envp);
		if (kind == FLOOR_KILL)
			for (;;)
				pause();
		_exit(0);
	}
	if (kind == FLOOR_KILL) {
		t0 = now_ns(); /* kill -> seen dead, as for a destroy */
		kill(pid, SIGKILL);
	}
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return now_ns() - t0;
}

static int64_t floor_p50(enum floor_kind kind)
{
	int64_t v[FLOOR_RUNS];
	size_t n = 0;

	for (int i = 0; i < FLOOR_RUNS; i++) {
		int64_t d = floor_once(kind);
		if (d >= 0)
			v[n++] = d;
	}
	qsort(v, n, sizeof v[0], cmp_i64);
	return quantile(v, n, 0.5);
}

/* ---- one process, start to end --------------------------------------------------- */

typedef struct worker {
	const struct spc_ctx *ctx;
	const char *target;
	size_t count;          /* processes this worker runs */
	int64_t *lat;          /* count latencies, ns */
	int64_t *answer;       /* count StartProcess answer latencies, ns */
	size_t done;
	int failed;            /* an RPC failed or a process did not succeed */
	char error[256];
} worker;

/* Starts TARGET (with ARGS) and waits for its terminal event on a Watch.
 * Returns 0 with *ID (malloc'd) and *STATE set, or -1 with W->error set. */
static int run_one(spc_client *c, worker *w, const char *target, char **args, size_t nargs,
		   int wait_end, char **id, Spawnd__V1__State *state, int64_t *answered_ns)
{
	Spawnd__V1__StartProcessRequest req = SPAWND__V1__START_PROCESS_REQUEST__INIT;
	Spawnd__V1__StartProcessResponse *resp = NULL;
	Spawnd__V1__WatchRequest wreq = SPAWND__V1__WATCH_REQUEST__INIT;
	struct spc_status st = SPC_STATUS_INIT;
	spc_stream *s = NULL;
	ProtobufCMessage *m = NULL;
	int rc = -1;

	*id = NULL;
	req.target = (char *)target;
	req.args = args;
	req.n_args = nargs;
	if (spc_client_unary(c, SPC_METHOD("StartProcess"), &req.base,
			     &spawnd__v1__start_process_response__descriptor, SPC_DEFAULT_TIMEOUT_NS,
			     (ProtobufCMessage **)&resp, &st) < 0 || st.code != GRPC_STATUS_OK) {
		snprintf(w->error, sizeof w->error, "StartProcess %s: %s: %s", target,
			 spc_client_code_name(st.code), st.details ? st.details : "no call");
		goto out;
	}
	if (answered_ns != NULL)
		*answered_ns = now_ns();
	*id = strdup(resp->process->id);
	*state = resp->process->state;
	if (!wait_end || *id == NULL) {
		rc = *id != NULL ? 0 : -1;
		goto out;
	}
	wreq.id = *id;
	if (spc_stream_open(c, SPC_METHOD("Watch"), &wreq.base, 60 * 1000000000LL, &s) < 0)
		goto out;
	while (spc_stream_next(s, &spawnd__v1__process_event__descriptor, &m) == 1) {
		Spawnd__V1__ProcessEvent *ev = (Spawnd__V1__ProcessEvent *)m;
		if (ev->process != NULL)
			*state = ev->process->state;
		protobuf_c_message_free_unpacked(m, NULL);
		m = NULL;
	}
	spc_stream_finish(s, &st);
	if (st.code == GRPC_STATUS_OK)
		rc = 0;
	else
		snprintf(w->error, sizeof w->error, "Watch: %s", spc_client_code_name(st.code));
out:
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	spc_status_release(&st);
	return rc;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	spc_client *c = NULL;

	if (spc_client_create(&w->ctx->conn, &c) < 0) {
		w->failed = 1;
		snprintf(w->error, sizeof w->error, "cannot create a client");
		return NULL;
	}
	for (size_t i = 0; i < w->count && !w->failed; i++) {
		Spawnd__V1__State state = SPAWND__V1__STATE__STATE_UNSPECIFIED;
		char *id = NULL;
		int64_t t0 = now_ns(), answered = 0;
		if (run_one(c, w, w->target, NULL, 0, 1, &id, &state, &answered) < 0) {
			w->failed = 1;
		} else if (state != SPAWND__V1__STATE__STATE_SUCCEEDED) {
			w->failed = 1;
			snprintf(w->error, sizeof w->error, "%s %s ended in state %d", w->target,
				 id, (int)state);
		} else {
			w->answer[w->done] = answered - t0;
			w->lat[w->done++] = now_ns() - t0;
		}
		free(id);
	}
	spc_client_destroy(c);
	return NULL;
}

/* ---- figures --------------------------------------------------------------------- */

static void print_ratio_row(const char *what, int64_t p50, int64_t p99, double rate,
			    int64_t floor, const char *floor_name)
{
	printf("%-36s p50 %8.2f ms  p99 %8.2f ms  %8.1f/s   p50 = %6.1f x %s\n", what,
	       (double)p50 / 1e6, (double)p99 / 1e6, rate,
	       floor > 0 ? (double)p50 / (double)floor : 0.0, floor_name);
}

/* What one throughput run measured. */
typedef struct figures {
	int64_t p50, p99;
	int64_t answer_p50;  /* the StartProcess answer alone */
	double rate;   /* completed processes per second */
} figures;

/* COUNT processes of TARGET, CLIENTS at a time, start -> terminal event. */
static int measure(const struct spc_ctx *ctx, const char *target, size_t clients, size_t count,
		   figures *f)
{
	worker *ws = calloc(clients, sizeof *ws);
	pthread_t *th = calloc(clients, sizeof *th);
	int64_t *all = calloc(count, sizeof *all), *ans = calloc(count, sizeof *ans);
	size_t n = 0;
	int64_t t0, elapsed;
	int status = SPC_EXIT_OK;

	if (ws == NULL || th == NULL || all == NULL || ans == NULL) {
		status = spc_cli_local_error("bench", -ENOMEM);
		goto out;
	}
	t0 = now_ns();
	for (size_t i = 0; i < clients; i++) {
		ws[i].ctx = ctx;
		ws[i].target = target;
		ws[i].count = count / clients + (i < count % clients);
		ws[i].lat = all + n;
		ws[i].answer = ans + n;
		n += ws[i].count;
		pthread_create(&th[i], NULL, worker_main, &ws[i]);
	}
	for (size_t i = 0; i < clients; i++)
		pthread_join(th[i], NULL);
	elapsed = now_ns() - t0;
	n = 0;
	for (size_t i = 0; i < clients; i++) {
		if (ws[i].failed) {
			fprintf(stderr, "spawnctl: bench: %s\n", ws[i].error);
			status = SPC_EXIT_RPC;
		}
		memmove(all + n, ws[i].lat, ws[i].done * sizeof *all);
		memmove(ans + n, ws[i].answer, ws[i].done * sizeof *ans);
		n += ws[i].done;
	}
	qsort(all, n, sizeof *all, cmp_i64);
	qsort(ans, n, sizeof *ans, cmp_i64);
	f->answer_p50 = quantile(ans, n, 0.5);
	f->p50 = quantile(all, n, 0.5);
	f->p99 = quantile(all, n, 0.99);
	f->rate = (double)n * 1e9 / (double)elapsed;
out:
	free(ws);
	free(th);
	free(all);
	free(ans);
	return status;
}

static int bench_target(const struct spc_ctx *ctx, const char *target, size_t clients,
			size_t count, int64_t fork_floor, int64_t exec_floor)
{
	figures f = {0};
	char label[128];
	int status = measure(ctx, target, clients, count, &f);

	if (status != SPC_EXIT_OK)
		return status;
	snprintf(label, sizeof label, "start %s (%zu clients)", target, clients);
	if (strcmp(target, "true") == 0 || strncmp(target, "exec", 4) == 0)
		print_ratio_row(label, f.p50, f.p99, f.rate, exec_floor, "fork+exec+wait");
	else
		print_ratio_row(label, f.p50, f.p99, f.rate, fork_floor, "fork+wait");
	return status;
}

#define STORE_ROUNDS 5

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Store on (STORE_ADDR) vs off (CTX's server): noop, round by round. */
static int bench_store(const struct spc_ctx *ctx, const char *store_addr, const char *name,
		       size_t clients, size_t count)
{
	struct spc_ctx on = *ctx;
	double ratios[STORE_ROUNDS], lat[STORE_ROUNDS], ans[STORE_ROUNDS];
	figures off_f = {0}, on_f = {0};
	double off_sum = 0, on_sum = 0;
	int status = SPC_EXIT_OK;

	on.conn.addr = store_addr;
	for (int i = 0; i < STORE_ROUNDS && status == SPC_EXIT_OK; i++) {
		status = measure(ctx, "noop", clients, count, &off_f);
		if (status == SPC_EXIT_OK)
			status = measure(&on, "noop", clients, count, &on_f);
		if (status != SPC_EXIT_OK)
			break;
		ratios[i] = off_f.rate > 0 ? on_f.rate / off_f.rate : 0;
		lat[i] = off_f.p50 > 0 ? (double)on_f.p50 / (double)off_f.p50 : 0;
		ans[i] = off_f.answer_p50 > 0 ? (double)on_f.answer_p50 / (double)off_f.answer_p50 : 0;
		off_sum += off_f.rate;
		on_sum += on_f.rate;
		printf("%s round %d: noop (%zu clients) %8.1f/s without, %8.1f/s with: %.3f; "
		       "p50 %.2f ms vs %.2f ms; StartProcess p50 %.2f ms vs %.2f ms\n",
		       name, i + 1, clients, off_f.rate, on_f.rate, ratios[i], (double)off_f.p50 / 1e6,
		       (double)on_f.p50 / 1e6, (double)off_f.answer_p50 / 1e6,
		       (double)on_f.answer_p50 / 1e6);
	}
	if (status != SPC_EXIT_OK)
		return status;
	qsort(ratios, STORE_ROUNDS, sizeof ratios[0], cmp_double);
	qsort(lat, STORE_ROUNDS, sizeof lat[0], cmp_double);
	qsort(ans, STORE_ROUNDS, sizeof ans[0], cmp_double);
	printf("%s: throughput with/without = %.3f (median of %d rounds; mean %.1f/s vs %.1f/s), "
	       "p50 latency with/without = %.3f, StartProcess p50 with/without = %.3f\n",
	       name, ratios[STORE_ROUNDS / 2], STORE_ROUNDS, on_sum / STORE_ROUNDS,
	       off_sum / STORE_ROUNDS, lat[STORE_ROUNDS / 2], ans[STORE_ROUNDS / 2]);
	return SPC_EXIT_OK;
}

/* Destroy(wait) of a running TARGET, GRACE_NS grace; DESTROY_RUNS times. */
static int bench_destroy(const struct spc_ctx *ctx, const char *target, int64_t grace_ns,
			 int64_t kill_floor)
{
	int64_t v[DESTROY_RUNS];
	size_t n = 0;
	spc_client *c = NULL;
	worker w = {.ctx = ctx};
	int status = SPC_EXIT_OK;
	char label[128];

	if (spc_client_create(&ctx->conn, &c) < 0)
		return spc_cli_local_error(ctx->conn.addr, -EIO);
	for (int i = 0; i < DESTROY_RUNS && status == SPC_EXIT_OK; i++) {
		Spawnd__V1__DestroyRequest req = SPAWND__V1__DESTROY_REQUEST__INIT;
		Google__Protobuf__Duration grace = GOOGLE__PROTOBUF__DURATION__INIT;
		struct spc_status st = SPC_STATUS_INIT;
		ProtobufCMessage *resp = NULL;
		Spawnd__V1__State state;
		char *id = NULL;
		int64_t t0;

		if (run_one(c, &w, target, NULL, 0, 0, &id, &state, NULL) < 0) {
			fprintf(stderr, "spawnctl: bench: %s\n", w.error);
			status = SPC_EXIT_RPC;
			break;
		}
		spc_cli_duration_to_proto(grace_ns, &grace);
		req.id = id;
		req.wait = 1;
		req.grace_period = &grace;
		t0 = now_ns();
		if (spc_client_unary(c, SPC_METHOD("Destroy"), &req.base,
				     &spawnd__v1__destroy_response__descriptor, SPC_DEFAULT_TIMEOUT_NS,
				     &resp, &st) < 0 || st.code != GRPC_STATUS_OK)
			status = spc_cli_rpc_error(&st);
		else
			v[n++] = now_ns() - t0;
		if (resp != NULL)
			protobuf_c_message_free_unpacked(resp, NULL);
		spc_status_release(&st);
		free(id);
	}
	spc_client_destroy(c);
	qsort(v, n, sizeof v[0], cmp_i64);
	snprintf(label, sizeof label, "destroy %s (grace %" PRId64 " ms)", target, grace_ns / 1000000);
	print_ratio_row(label, quantile(v, n, 0.5), quantile(v, n, 0.99), 0.0, kill_floor,
			"kill+wait");
	return status;
}

static int64_t rpc_floor(const struct spc_ctx *ctx)
{
	spc_client *c = NULL;
	int64_t v[FLOOR_RUNS];
	size_t n = 0;

	if (spc_client_create(&ctx->conn, &c) < 0)
		return 0;
	for (int i = 0; i < FLOOR_RUNS; i++) {
		Spawnd__V1__ListTargetsRequest req = SPAWND__V1__LIST_TARGETS_REQUEST__INIT;
		struct spc_status st = SPC_STATUS_INIT;
		ProtobufCMessage *resp = NULL;
		int64_t t0 = now_ns();
		if (spc_client_unary(c, SPC_METHOD("ListTargets"), &req.base,
				     &spawnd__v1__list_targets_response__descriptor,
				     SPC_DEFAULT_TIMEOUT_NS, &resp, &st) == 0 && st.code == GRPC_STATUS_OK)
			v[n++] = now_ns() - t0;
		if (resp != NULL)
			protobuf_c_message_free_unpacked(resp, NULL);
		spc_status_release(&st);
	}
	spc_client_destroy(c);
	qsort(v, n, sizeof v[0], cmp_i64);
	return quantile(v, n, 0.5);
}

static long rss_kib(const char *pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%s/status", pid);
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static int spc__bench_run(const struct spc_ctx *ctx, int argc, char **argv)
{
	static const char *const defaults[] = {"noop", "noop_forkserver", "noop_prestart",
					       "noop_spawn", "true"};
	struct spc_cli_list pos = SPC_CLI_LIST_INIT;
	const char *clients_s = NULL, *count_s = NULL, *server_pid = NULL, *store_addr = NULL;
	const char *store_name = NULL;
	const struct spc_opt opts[] = {
		{"--clients", SPC_OPT_VALUE, &clients_s},
		{"--count", SPC_OPT_VALUE, &count_s},
		{"--server-pid", SPC_OPT_VALUE, &server_pid},
		{"--store-addr", SPC_OPT_VALUE, &store_addr},
		{"--store-name", SPC_OPT_VALUE, &store_name},
		{NULL, SPC_OPT_FLAG, NULL},
	};
	uint64_t clients = 4, count = 400;
	int64_t fork_floor, exec_floor, kill_floor, rpc;
	long rss_before = -1;
	int status;

	status = spc_cli_parse(&spc_cmd_bench, opts, argc, argv, 0, &pos);
	if (status != SPC_CLI_CONTINUE)
		goto out;
	if ((clients_s != NULL && (spc_cli_parse_uint(clients_s, 256, &clients) < 0 || clients == 0)) ||
	    (count_s != NULL && (spc_cli_parse_uint(count_s, 1000000, &count) < 0 || count == 0))) {
		status = spc_cli_usage_error("bench", "--clients 1..256 and --count 1..1000000");
		goto out;
	}
	/* Floors first, before this process has any gRPC thread. */
	fork_floor = floor_p50(FLOOR_FORK);
	exec_floor = floor_p50(FLOOR_EXEC);
	kill_floor = floor_p50(FLOOR_KILL);
	rpc = rpc_floor(ctx);
	if (rpc == 0) {
		status = spc_cli_local_error(ctx->conn.addr, -ECONNREFUSED);
		goto out;
	}
	printf("floor: fork+wait %.2f ms, fork+exec+wait %.2f ms, kill+wait %.2f ms, "
	       "gRPC round trip %.3f ms\n",
	       (double)fork_floor / 1e6, (double)exec_floor / 1e6, (double)kill_floor / 1e6,
	       (double)rpc / 1e6);
	if (server_pid != NULL)
		rss_before = rss_kib(server_pid);
	status = SPC_EXIT_OK;
	for (size_t i = 0; i < (pos.n ? pos.n : sizeof defaults / sizeof defaults[0]); i++) {
		const char *t = pos.n ? pos.v[i] : defaults[i];
		int rc = bench_target(ctx, t, 1, count / 4 ? count / 4 : 1, fork_floor, exec_floor);
		if (rc == SPC_EXIT_OK && clients > 1)
			rc = bench_target(ctx, t, (size_t)clients, (size_t)count, fork_floor, exec_floor);
		if (rc != SPC_EXIT_OK)
			status = rc;
	}
	if (pos.n == 0) {
		int rc = bench_destroy(ctx, "sleep", 10 * 1000000000LL, kill_floor);
		if (rc == SPC_EXIT_OK)
			rc = bench_destroy(ctx, "stubborn", 0, kill_floor);
		if (rc != SPC_EXIT_OK)
			status = rc;
	}
	if (store_addr != NULL && status == SPC_EXIT_OK)
		status = bench_store(ctx, store_addr, store_name != NULL ? store_name : "store",
				     (size_t)clients, (size_t)count);
	printf("gRPC round trip %.3f ms = 1.0 x rpc floor (every start costs at least two)\n",
	       (double)rpc / 1e6);
	if (server_pid != NULL) {
		long rss = rss_kib(server_pid);
		printf("server RSS %.1f MiB (%.1f MiB before the run)\n", (double)rss / 1024.0,
		       (double)rss_before / 1024.0);
	}
out:
	spc_cli_list_release(&pos);
	return status;
}

const struct spc_command spc_cmd_bench = {
	.name = "bench",
	.summary = "measure spawnd against this machine's floor",
	.usage = spc__bench_usage,
	.run = spc__bench_run,
};
