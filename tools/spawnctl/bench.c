/* `spawnctl bench`: spawnd's performance against this machine's own floor,
 * measured in the same run (SPEC §9, issue 11). Absolute times on a shared
 * 2-vCPU machine mean little; ratios to a floor measured a moment before do.
 *
 * Floors:
 *   bench-floor (tools/bench/floor.c), a small program of its own, not a fork
 *   of this one (whose mappings make its forks slower): fork + 100 B through a
 *   pipe + waitpid (time and CPU), fork + execve(/bin/true) + waitpid, kill +
 *   waitpid, and R_fork, the fork+pipe rate of two forking processes at once;
 *   a unary gRPC round trip (ListTargets) with one client, and R_rpc, the
 *   unary rate with --clients clients;
 *   F = 1 / (1/R_rpc + 1/R_fork): the most processes per second a service
 *   could complete if each cost one round trip and one fork, sharing the
 *   machine.
 * Figures, each beside its floor as a ratio (and the target):
 *   start -> terminal event per target, with Start+Watch (two calls) and Run
 *   (one), one client; Run with --clients clients (throughput, p99/p50);
 *   server CPU per process (front, launcher, children: /proc/PID/stat of
 *   spawnd's processes, the children's from the launcher's cutime/cstime and
 *   the zygotes'); idle PSS; destroy latency; with --scale-addr, how costs
 *   grow (bench_scale.c); with --store-addr, the store's cost. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/spawnctl/bench.h"
#include "tools/spawnctl/commands.h"

extern char **environ;

static const char spc__bench_usage[] =
	"Usage: spawnctl [GLOBAL OPTIONS] bench [OPTIONS] [TARGET...]\n"
	"\n"
	"Measures spawnd against this machine's floor, in the same run, and prints\n"
	"one table: every figure beside its floor as a ratio, and the target the\n"
	"ratio should meet (issue 11). TARGETs (default: noop noop_forkserver\n"
	"noop_prestart (if configured) noop_spawn true, as in config/bench.yaml):\n"
	"start -> terminal latency with Start+Watch and with Run, throughput with N\n"
	"clients, server CPU per process; then destroy latency (sleep, stubborn),\n"
	"idle PSS, and with --scale-addr how costs grow with work. `make bench`\n"
	"starts the servers and runs this.\n"
	"\n"
	"Options:\n"
	"  --clients N       concurrent clients (default 8)\n"
	"  --count N         processes per target with N clients (default 2000);\n"
	"                    one client runs a quarter of it\n"
	"  --floor PATH      the bench-floor program ($SPAWND_BENCH_FLOOR;\n"
	"                    default: tools/bench/bench-floor beside bazel-bin's spawnctl)\n"
	"  --floor-runs N    runs of each floor loop (default 400)\n"
	"  --server-pid P    spawnd's pid: CPU, RSS and PSS from /proc/P\n"
	"  --scale-addr A    a server allowing 2 x --live running processes and\n"
	"                    keeping the largest --records level: scale figures\n"
	"  --scale-pid P     its pid (RSS figures)\n"
	"  --live N          running processes and watchers for the scale figures\n"
	"                    (default 1000)\n"
	"  --records L,...   ListProcesses levels (default 1000,10000,100000)\n"
	"  --store-addr A    a second server, same targets, with a store: compare\n"
	"                    throughput with the store on (A) and off (--addr)\n"
	"  --store-name S    what to call A's store in the output (default \"store\")\n"
	"  --json            the table as JSON (as the global --json)\n"
	"  -h, --help        show this help\n"
	"\n"
	"Exit status: 0 done, 3 usage error, 4 RPC or transport error.\n";

#define RPC_RUNS 400
#define DESTROY_RUNS 40

int64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int bench_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

int64_t bench_quantile(const int64_t *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

/* ---- the table ------------------------------------------------------------ */

void bench_add(bench_table *t, const char *name, double value, const char *unit, double floor,
	       const char *floor_name, double target, int ge)
{
	bench_row *r;

	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		bench_row *v = realloc(t->rows, cap * sizeof *v);
		if (v == NULL)
			return;
		t->rows = v;
		t->cap = cap;
	}
	r = &t->rows[t->n++];
	memset(r, 0, sizeof *r);
	snprintf(r->name, sizeof r->name, "%s", name);
	snprintf(r->floor_name, sizeof r->floor_name, "%s", floor_name);
	r->value = value;
	r->unit = unit;
	r->floor = floor;
	r->target = target;
	r->ge = ge;
}

static double row_ratio(const bench_row *r)
{
	return r->floor > 0 ? r->value / r->floor : 0;
}

static const char *row_verdict(const bench_row *r)
{
	if (r->target <= 0 || r->floor <= 0)
		return "";
	if (r->ge)
		return row_ratio(r) >= r->target ? "met" : "MISSED";
	return row_ratio(r) <= r->target ? "met" : "MISSED";
}

static void print_table(const bench_table *t)
{
	printf("%-46s %12s  %-34s %8s  %s\n", "figure", "value", "floor", "ratio", "target");
	for (size_t i = 0; i < t->n; i++) {
		const bench_row *r = &t->rows[i];
		char v[48], f[112], tg[48] = "";
		snprintf(v, sizeof v, "%.*f %s", r->value < 10 ? 3 : 1, r->value, r->unit);
		snprintf(f, sizeof f, "%.*f %s", r->floor < 10 ? 3 : 1, r->floor, r->floor_name);
		if (r->target > 0)
			snprintf(tg, sizeof tg, "%s %.2g %s", r->ge ? ">=" : "<=", r->target,
				 row_verdict(r));
		printf("%-46s %12s  %-34s %7.2f x  %s\n", r->name, v, f, row_ratio(r), tg);
	}
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void json_num(double v)
{
	if (isfinite(v))
		printf("%.6g", v);
	else
		printf("null");
}

static void machine(char *buf, size_t len)
{
	char line[256], model[128] = "unknown cpu";
	struct utsname u;
	FILE *f = fopen("/proc/cpuinfo", "re");

	if (f != NULL) {
		while (fgets(line, sizeof line, f) != NULL) {
			char *c = strchr(line, ':');
			if (strncmp(line, "model name", 10) == 0 && c != NULL) {
				snprintf(model, sizeof model, "%s", c + 2);
				model[strcspn(model, "\n")] = '\0';
				break;
			}
		}
		fclose(f);
	}
	if (uname(&u) < 0)
		memset(&u, 0, sizeof u);
	snprintf(buf, len, "%ld vCPU %s, Linux %s", sysconf(_SC_NPROCESSORS_ONLN), model, u.release);
}

static void print_json(const bench_table *t)
{
	char m[256];

	machine(m, sizeof m);
	printf("{\"machine\":");
	json_str(m);
	printf(",\"rows\":[");
	for (size_t i = 0; i < t->n; i++) {
		const bench_row *r = &t->rows[i];
		printf("%s{\"figure\":", i ? "," : "");
		json_str(r->name);
		printf(",\"value\":");
		json_num(r->value);
		printf(",\"unit\":");
		json_str(r->unit);
		printf(",\"floor\":");
		json_num(r->floor);
		printf(",\"floor_name\":");
		json_str(r->floor_name);
		printf(",\"ratio\":");
		json_num(row_ratio(r));
		if (r->target > 0) {
			printf(",\"target\":\"%s %.3g\",\"met\":%s", r->ge ? ">=" : "<=", r->target,
			       strcmp(row_verdict(r), "met") == 0 ? "true" : "false");
		}
		printf("}");
	}
	printf("]}\n");
}

/* ---- floors ------------------------------------------------------------------ */

typedef struct floors {
	double fork_ns, fork_cpu_us, exec_ns, exec_cpu_us, kill_ns, fork_rate;
	double rpc_ns, rpc_rate;
} floors;

/* bench-floor: where the user said, else beside our own binary in bazel-bin. */
static char *floor_path(const char *opt)
{
	const char *env = getenv("SPAWND_BENCH_FLOOR");
	char exe[4096], *slash;
	ssize_t n;

	if (opt != NULL)
		return strdup(opt);
	if (env != NULL && *env != '\0')
		return strdup(env);
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	slash = strrchr(exe, '/'); /* .../tools/spawnctl/spawnctl */
	if (slash == NULL)
		return NULL;
	*slash = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL)
		return NULL;
	*slash = '\0';
	{
		size_t len = strlen(exe) + sizeof "/bench/bench-floor";
		char *p = malloc(len);
		if (p != NULL)
			snprintf(p, len, "%s/bench/bench-floor", exe);
		return p;
	}
}

/* Runs bench-floor (posix_spawn: a process of its own, not a fork of this
 * one) and reads its figures. */
static int run_floor(const char *path, int runs, floors *fl)
{
	char runs_s[16], line[256];
	char *argv[] = {(char *)path, (char *)"--runs", runs_s, (char *)"--rate-ms",
			(char *)"1000", NULL};
	posix_spawn_file_actions_t fa;
	int p[2], status = 0, got = 0;
	pid_t pid;
	FILE *f;

	snprintf(runs_s, sizeof runs_s, "%d", runs);
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	if (posix_spawn(&pid, path, &fa, NULL, argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		close(p[0]);
		close(p[1]);
		return -ENOENT;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	f = fdopen(p[0], "r");
	if (f == NULL) {
		close(p[0]);
		return -ENOMEM;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		char k[64];
		double v;
		if (sscanf(line, "%63s %lf", k, &v) != 2)
			continue;
		got++;
		if (strcmp(k, "fork_pipe_ns") == 0)
			fl->fork_ns = v;
		else if (strcmp(k, "fork_pipe_cpu_us") == 0)
			fl->fork_cpu_us = v;
		else if (strcmp(k, "exec_ns") == 0)
			fl->exec_ns = v;
		else if (strcmp(k, "exec_cpu_us") == 0)
			fl->exec_cpu_us = v;
		else if (strcmp(k, "kill_ns") == 0)
			fl->kill_ns = v;
		else if (strcmp(k, "fork_rate_2") == 0)
			fl->fork_rate = v;
		else
			got--;
	}
	fclose(f);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return got == 6 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

typedef struct rpc_worker {
	const struct spc_ctx *ctx;
	size_t count;
	int64_t *lat;
	size_t done;
} rpc_worker;

static void *rpc_main(void *arg)
{
	rpc_worker *w = arg;
	spc_client *c = NULL;

	if (spc_client_create(&w->ctx->conn, &c) < 0)
		return NULL;
	for (size_t i = 0; i < w->count; i++) {
		Spawnd__V1__ListTargetsRequest req = SPAWND__V1__LIST_TARGETS_REQUEST__INIT;
		struct spc_status st = SPC_STATUS_INIT;
		ProtobufCMessage *resp = NULL;
		int64_t t0 = bench_now_ns();
		if (spc_client_unary(c, SPC_METHOD("ListTargets"), &req.base,
				     &spawnd__v1__list_targets_response__descriptor,
				     SPC_DEFAULT_TIMEOUT_NS, &resp, &st) == 0 && st.code == GRPC_STATUS_OK)
			w->lat[w->done++] = bench_now_ns() - t0;
		if (resp != NULL)
			protobuf_c_message_free_unpacked(resp, NULL);
		spc_status_release(&st);
	}
	spc_client_destroy(c);
	return NULL;
}

/* Unary round trips: CLIENTS at once, COUNT in all: p50 and the rate. */
static int rpc_floor(const struct spc_ctx *ctx, size_t clients, size_t count, double *p50,
		     double *rate)
{
	rpc_worker *ws = calloc(clients, sizeof *ws);
	pthread_t *th = calloc(clients, sizeof *th);
	int64_t *all = calloc(count, sizeof *all), t0, el;
	size_t n = 0;

	if (ws == NULL || th == NULL || all == NULL) {
		free(ws);
		free(th);
		free(all);
		return -ENOMEM;
	}
	t0 = bench_now_ns();
	for (size_t i = 0; i < clients; i++) {
		ws[i] = (rpc_worker){.ctx = ctx, .count = count / clients, .lat = all + n};
		n += ws[i].count;
		pthread_create(&th[i], NULL, rpc_main, &ws[i]);
	}
	for (size_t i = 0; i < clients; i++)
		pthread_join(th[i], NULL);
	el = bench_now_ns() - t0;
	n = 0;
	for (size_t i = 0; i < clients; i++) {
		memmove(all + n, ws[i].lat, ws[i].done * sizeof *all);
		n += ws[i].done;
	}
	qsort(all, n, sizeof *all, bench_cmp_i64);
	*p50 = (double)bench_quantile(all, n, 0.5);
	*rate = el > 0 ? (double)n * 1e9 / (double)el : 0;
	free(ws);
	free(th);
	free(all);
	return n > 0 ? 0 : -ECONNREFUSED;
}

/* ---- one process, start to end --------------------------------------------------- */

typedef struct worker {
	const struct spc_ctx *ctx;
	const char *target;
	bench_mode mode;
	size_t count;
	int64_t *lat;
	int64_t *answer;  /* Start+Watch: StartProcess answer latencies, ns */
	int64_t t0;       /* the current process's start */
	size_t done;
	int64_t child_cpu_us;
	int failed;
	char error[256];
} worker;

int bench_start(spc_client *c, const char *target, const char *arg, char **id)
{
	Spawnd__V1__StartProcessRequest req = SPAWND__V1__START_PROCESS_REQUEST__INIT;
	Spawnd__V1__StartProcessResponse *resp = NULL;
	struct spc_status st = SPC_STATUS_INIT;
	char *args[1] = {(char *)arg};
	int rc = -1;

	*id = NULL;
	req.target = (char *)target;
	req.args = arg != NULL ? args : NULL;
	req.n_args = arg != NULL;
	if (spc_client_unary(c, SPC_METHOD("StartProcess"), &req.base,
			     &spawnd__v1__start_process_response__descriptor, SPC_DEFAULT_TIMEOUT_NS,
			     (ProtobufCMessage **)&resp, &st) == 0 && st.code == GRPC_STATUS_OK &&
	    resp->process != NULL) {
		*id = strdup(resp->process->id);
		rc = *id != NULL ? 0 : -1;
	} else {
		fprintf(stderr, "spawnctl: bench: StartProcess %s: %s: %s\n", target,
			spc_client_code_name(st.code), st.details ? st.details : "no call");
	}
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	spc_status_release(&st);
	return rc;
}

int bench_destroy_now(spc_client *c, const char *id, int wait)
{
	Spawnd__V1__DestroyRequest req = SPAWND__V1__DESTROY_REQUEST__INIT;
	Google__Protobuf__Duration grace = GOOGLE__PROTOBUF__DURATION__INIT;
	struct spc_status st = SPC_STATUS_INIT;
	ProtobufCMessage *resp = NULL;
	int rc;

	req.id = (char *)id;
	req.wait = wait;
	req.grace_period = &grace;
	rc = spc_client_unary(c, SPC_METHOD("Destroy"), &req.base,
			      &spawnd__v1__destroy_response__descriptor, SPC_DEFAULT_TIMEOUT_NS, &resp,
			      &st) == 0 && st.code == GRPC_STATUS_OK ? 0 : -1;
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	spc_status_release(&st);
	return rc;
}

static int64_t duration_us(const Google__Protobuf__Duration *d)
{
	return d != NULL ? d->seconds * 1000000 + d->nanos / 1000 : 0;
}

/* Reads S to its end: *STATE the last state seen; the terminal record's
 * usage is added to W's. */
static int follow(spc_stream *s, worker *w, const char *what, Spawnd__V1__State *state)
{
	struct spc_status st = SPC_STATUS_INIT;
	ProtobufCMessage *m = NULL;
	int rc = -1;

	while (spc_stream_next(s, &spawnd__v1__process_event__descriptor, &m) == 1) {
		Spawnd__V1__ProcessEvent *ev = (Spawnd__V1__ProcessEvent *)m;
		if (ev->process != NULL) {
			*state = ev->process->state;
			if (ev->process->usage != NULL && *state >= SPAWND__V1__STATE__STATE_SUCCEEDED)
				w->child_cpu_us += duration_us(ev->process->usage->user_cpu) +
						   duration_us(ev->process->usage->system_cpu);
		}
		protobuf_c_message_free_unpacked(m, NULL);
		m = NULL;
	}
	spc_stream_finish(s, &st);
	if (st.code == GRPC_STATUS_OK)
		rc = 0;
	else
		snprintf(w->error, sizeof w->error, "%s: %s: %s", what, spc_client_code_name(st.code),
			 st.details ? st.details : "");
	spc_status_release(&st);
	return rc;
}

/* One process of W's target, start to its terminal event. */
static int run_one(spc_client *c, worker *w, Spawnd__V1__State *state)
{
	spc_stream *s = NULL;

	if (w->mode == BENCH_RUN) {
		Spawnd__V1__RunRequest req = SPAWND__V1__RUN_REQUEST__INIT;
		Spawnd__V1__StartProcessRequest start = SPAWND__V1__START_PROCESS_REQUEST__INIT;
		start.target = (char *)w->target;
		req.start = &start;
		if (spc_stream_open(c, SPC_METHOD("Run"), &req.base, 60 * 1000000000LL, &s) < 0) {
			snprintf(w->error, sizeof w->error, "Run %s: cannot open", w->target);
			return -1;
		}
		return follow(s, w, "Run", state);
	} else {
		Spawnd__V1__WatchRequest wreq = SPAWND__V1__WATCH_REQUEST__INIT;
		char *id = NULL;
		int rc;
		if (bench_start(c, w->target, NULL, &id) < 0) {
			snprintf(w->error, sizeof w->error, "StartProcess %s failed", w->target);
			return -1;
		}
		/* With a store, the answer waits for the record's commit. */
		w->answer[w->done] = bench_now_ns() - w->t0;
		wreq.id = id;
		if (spc_stream_open(c, SPC_METHOD("Watch"), &wreq.base, 60 * 1000000000LL, &s) < 0) {
			free(id);
			snprintf(w->error, sizeof w->error, "Watch: cannot open");
			return -1;
		}
		rc = follow(s, w, "Watch", state);
		free(id);
		return rc;
	}
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
		int64_t t0 = bench_now_ns();
		w->t0 = t0;
		if (run_one(c, w, &state) < 0) {
			w->failed = 1;
		} else if (state != SPAWND__V1__STATE__STATE_SUCCEEDED) {
			w->failed = 1;
			snprintf(w->error, sizeof w->error, "%s ended in state %d", w->target,
				 (int)state);
		} else {
			w->lat[w->done++] = bench_now_ns() - t0;
		}
	}
	spc_client_destroy(c);
	return NULL;
}

int bench_measure(const struct spc_ctx *ctx, const char *target, bench_mode mode, size_t clients,
		  size_t count, bench_figures *f)
{
	worker *ws = calloc(clients, sizeof *ws);
	pthread_t *th = calloc(clients, sizeof *th);
	int64_t *all = calloc(count, sizeof *all), *ans = calloc(count, sizeof *ans);
	size_t n = 0;
	int64_t t0, elapsed;
	int status = SPC_EXIT_OK;

	memset(f, 0, sizeof *f);
	if (ws == NULL || th == NULL || all == NULL) {
		status = spc_cli_local_error("bench", -ENOMEM);
		goto out;
	}
	t0 = bench_now_ns();
	for (size_t i = 0; i < clients; i++) {
		ws[i].ctx = ctx;
		ws[i].target = target;
		ws[i].mode = mode;
		ws[i].count = count / clients + (i < count % clients);
		ws[i].lat = all + n;
		ws[i].answer = ans + n;
		n += ws[i].count;
		pthread_create(&th[i], NULL, worker_main, &ws[i]);
	}
	for (size_t i = 0; i < clients; i++)
		pthread_join(th[i], NULL);
	elapsed = bench_now_ns() - t0;
	n = 0;
	for (size_t i = 0; i < clients; i++) {
		if (ws[i].failed) {
			fprintf(stderr, "spawnctl: bench: %s\n", ws[i].error);
			status = SPC_EXIT_RPC;
		}
		memmove(all + n, ws[i].lat, ws[i].done * sizeof *all);
		memmove(ans + n, ws[i].answer, ws[i].done * sizeof *ans);
		n += ws[i].done;
		f->child_cpu_us += ws[i].child_cpu_us;
	}
	qsort(all, n, sizeof *all, bench_cmp_i64);
	qsort(ans, n, sizeof *ans, bench_cmp_i64);
	f->answer_p50 = mode == BENCH_START_WATCH ? bench_quantile(ans, n, 0.5) : 0;
	f->p50 = bench_quantile(all, n, 0.5);
	f->p99 = bench_quantile(all, n, 0.99);
	f->rate = (double)n * 1e9 / (double)elapsed;
	f->n = n;
out:
	free(ws);
	free(th);
	free(all);
	free(ans);
	return status;
}

/* ---- per target ---------------------------------------------------------------- */

typedef struct target_kind {
	const char *floor_name; /* of the latency floor */
	double lat_floor_ns;
	double lat_target;
	const char *cpu_floor_name;
	double cpu_floor_us;
	double cpu_target;
} target_kind;

static void kind_of(const char *target, const floors *fl, target_kind *k)
{
	memset(k, 0, sizeof *k);
	k->floor_name = "fork+pipe+RTT";
	k->lat_floor_ns = fl->fork_ns + fl->rpc_ns;
	k->cpu_floor_name = "fork+pipe CPU";
	k->cpu_floor_us = fl->fork_cpu_us;
	if (strcmp(target, "noop") == 0) {
		k->lat_target = 2.0;
		k->cpu_target = 2.5;
	} else if (strcmp(target, "noop_forkserver") == 0) {
		k->lat_target = 1.5;
		k->cpu_target = 2.0;
	} else if (strstr(target, "prestart") != NULL) {
		k->floor_name = "RTT";
		k->lat_floor_ns = fl->rpc_ns;
		k->lat_target = 3.0;
	} else if (strcmp(target, "true") == 0 || strncmp(target, "exec", 4) == 0) {
		k->floor_name = "fork+exec+RTT";
		k->lat_floor_ns = fl->exec_ns + fl->rpc_ns;
		k->cpu_floor_name = "fork+exec CPU";
		k->cpu_floor_us = fl->exec_cpu_us;
		k->cpu_target = 2.0;
	} else if (strstr(target, "spawn") != NULL) {
		k->floor_name = "fork+exec+RTT";
		k->lat_floor_ns = fl->exec_ns + fl->rpc_ns;
		k->cpu_floor_name = "fork+exec CPU";
		k->cpu_floor_us = fl->exec_cpu_us;
	}
}

static int bench_target(const struct spc_ctx *ctx, const char *target, size_t clients,
			size_t count, const floors *fl, pid_t server, bench_table *t)
{
	bench_figures sw, run, many;
	bench_cpu c0, c1;
	target_kind k;
	double fr, la, ch, F;
	char name[96];
	size_t one = count / 4 ? count / 4 : 1;
	int status;

	kind_of(target, fl, &k);
	status = bench_measure(ctx, target, BENCH_START_WATCH, 1, one, &sw);
	if (status != SPC_EXIT_OK)
		return status;
	snprintf(name, sizeof name, "%s: Start+Watch c=1 p50", target);
	bench_add(t, name, (double)sw.p50 / 1e6, "ms", k.lat_floor_ns / 1e6, k.floor_name, 0, 0);
	if (server > 0)
		bench_cpu_sample(server, &c0);
	status = bench_measure(ctx, target, BENCH_RUN, 1, one, &run);
	if (server > 0)
		bench_cpu_sample(server, &c1);
	if (status != SPC_EXIT_OK)
		return status;
	snprintf(name, sizeof name, "%s: Run c=1 p50", target);
	bench_add(t, name, (double)run.p50 / 1e6, "ms", k.lat_floor_ns / 1e6, k.floor_name,
		  k.lat_target, 0);
	snprintf(name, sizeof name, "%s: Run c=1 p99", target);
	bench_add(t, name, (double)run.p99 / 1e6, "ms", k.lat_floor_ns / 1e6, k.floor_name, 0, 0);
	if (server > 0 && c0.ok && c1.ok && run.n > 0) {
		fr = (double)(c1.front_ns - c0.front_ns) / 1e3 / (double)run.n;
		la = (double)(c1.launcher_ns - c0.launcher_ns + c1.zygote_ns - c0.zygote_ns) / 1e3 /
		     (double)run.n;
		ch = (double)run.child_cpu_us / (double)run.n;
		snprintf(name, sizeof name, "%s: server CPU per process", target);
		bench_add(t, name, fr + la + ch, "us", k.cpu_floor_us, k.cpu_floor_name, k.cpu_target,
			  0);
		snprintf(name, sizeof name, "%s:   front", target);
		bench_add(t, name, fr, "us", k.cpu_floor_us, k.cpu_floor_name, 0, 0);
		snprintf(name, sizeof name, "%s:   launcher (and zygote)", target);
		bench_add(t, name, la, "us", k.cpu_floor_us, k.cpu_floor_name, 0, 0);
		snprintf(name, sizeof name, "%s:   the child (its rusage)", target);
		bench_add(t, name, ch, "us", k.cpu_floor_us, k.cpu_floor_name, 0, 0);
	}
	if (clients <= 1)
		return SPC_EXIT_OK;
	status = bench_measure(ctx, target, BENCH_RUN, clients, count, &many);
	if (status != SPC_EXIT_OK)
		return status;
	F = fl->rpc_rate > 0 && fl->fork_rate > 0 ? 1.0 / (1.0 / fl->rpc_rate + 1.0 / fl->fork_rate)
						  : 0;
	snprintf(name, sizeof name, "%s: Run c=%zu throughput", target, clients);
	bench_add(t, name, many.rate, "/s", F, "F", strcmp(target, "noop") == 0 ||
			 strcmp(target, "noop_forkserver") == 0 || strstr(target, "prestart") != NULL
		  ? 0.5 : 0, 1);
	snprintf(name, sizeof name, "%s: Run c=%zu p99", target, clients);
	bench_add(t, name, (double)many.p99 / 1e6, "ms", (double)many.p50 / 1e6, "its p50", 4.0, 0);
	return SPC_EXIT_OK;
}

/* Destroy(wait) of a running TARGET, GRACE_NS grace; DESTROY_RUNS times. */
static int bench_destroy(const struct spc_ctx *ctx, const char *target, int64_t grace_ns,
			 double kill_floor, bench_table *t)
{
	int64_t v[DESTROY_RUNS];
	size_t n = 0;
	spc_client *c = NULL;
	int status = SPC_EXIT_OK;
	char label[128];

	if (spc_client_create(&ctx->conn, &c) < 0)
		return spc_cli_local_error(ctx->conn.addr, -EIO);
	for (int i = 0; i < DESTROY_RUNS && status == SPC_EXIT_OK; i++) {
		Spawnd__V1__DestroyRequest req = SPAWND__V1__DESTROY_REQUEST__INIT;
		Google__Protobuf__Duration grace = GOOGLE__PROTOBUF__DURATION__INIT;
		struct spc_status st = SPC_STATUS_INIT;
		ProtobufCMessage *resp = NULL;
		char *id = NULL;
		int64_t t0;

		if (bench_start(c, target, NULL, &id) < 0) {
			status = SPC_EXIT_RPC;
			break;
		}
		spc_cli_duration_to_proto(grace_ns, &grace);
		req.id = id;
		req.wait = 1;
		req.grace_period = &grace;
		t0 = bench_now_ns();
		if (spc_client_unary(c, SPC_METHOD("Destroy"), &req.base,
				     &spawnd__v1__destroy_response__descriptor, SPC_DEFAULT_TIMEOUT_NS,
				     &resp, &st) < 0 || st.code != GRPC_STATUS_OK)
			status = spc_cli_rpc_error(&st);
		else
			v[n++] = bench_now_ns() - t0;
		if (resp != NULL)
			protobuf_c_message_free_unpacked(resp, NULL);
		spc_status_release(&st);
		free(id);
	}
	spc_client_destroy(c);
	qsort(v, n, sizeof v[0], bench_cmp_i64);
	snprintf(label, sizeof label, "destroy %s (grace %" PRId64 " s) p50", target,
		 grace_ns / 1000000000);
	bench_add(t, label, (double)bench_quantile(v, n, 0.5) / 1e6, "ms", kill_floor / 1e6,
		  "kill+wait", 0, 0);
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
		       size_t clients, size_t count, bench_table *t)
{
	struct spc_ctx on = *ctx;
	double ratios[STORE_ROUNDS], lat[STORE_ROUNDS], ans[STORE_ROUNDS];
	bench_figures off_f, on_f;
	double off_sum = 0, on_sum = 0;
	char label[128];
	int status = SPC_EXIT_OK;

	on.conn.addr = store_addr;
	for (int i = 0; i < STORE_ROUNDS && status == SPC_EXIT_OK; i++) {
		status = bench_measure(ctx, "noop", BENCH_START_WATCH, clients, count, &off_f);
		if (status == SPC_EXIT_OK)
			status = bench_measure(&on, "noop", BENCH_START_WATCH, clients, count, &on_f);
		if (status != SPC_EXIT_OK)
			break;
		ratios[i] = off_f.rate > 0 ? on_f.rate / off_f.rate : 0;
		lat[i] = off_f.p50 > 0 ? (double)on_f.p50 / (double)off_f.p50 : 0;
		ans[i] = off_f.answer_p50 > 0 ? (double)on_f.answer_p50 / (double)off_f.answer_p50 : 0;
		off_sum += off_f.rate;
		on_sum += on_f.rate;
	}
	if (status != SPC_EXIT_OK)
		return status;
	qsort(ratios, STORE_ROUNDS, sizeof ratios[0], cmp_double);
	qsort(lat, STORE_ROUNDS, sizeof lat[0], cmp_double);
	qsort(ans, STORE_ROUNDS, sizeof ans[0], cmp_double);
	snprintf(label, sizeof label, "%s: noop c=%zu throughput (median ratio)", name, clients);
	bench_add(t, label, ratios[STORE_ROUNDS / 2] * off_sum / STORE_ROUNDS, "/s",
		  off_sum / STORE_ROUNDS, "without the store", 0, 0);
	snprintf(label, sizeof label, "%s: noop c=%zu p50 (median ratio)", name, clients);
	bench_add(t, label, lat[STORE_ROUNDS / 2], "", 1.0, "without the store", 0, 0);
	/* The answer waits for the new record's commit (SPEC §12 "Store"). */
	snprintf(label, sizeof label, "%s: StartProcess answer p50 (median ratio)", name);
	bench_add(t, label, ans[STORE_ROUNDS / 2], "", 1.0, "without the store", 0, 0);
	return SPC_EXIT_OK;
}

/* Whether the server has a target named NAME. */
static int has_target(const struct spc_ctx *ctx, const char *name)
{
	Spawnd__V1__ListTargetsRequest req = SPAWND__V1__LIST_TARGETS_REQUEST__INIT;
	Spawnd__V1__ListTargetsResponse *resp = NULL;
	struct spc_status st = SPC_STATUS_INIT;
	spc_client *c = NULL;
	int found = 0;

	if (spc_client_create(&ctx->conn, &c) < 0)
		return 0;
	if (spc_client_unary(c, SPC_METHOD("ListTargets"), &req.base,
			     &spawnd__v1__list_targets_response__descriptor, SPC_DEFAULT_TIMEOUT_NS,
			     (ProtobufCMessage **)&resp, &st) == 0 && st.code == GRPC_STATUS_OK)
		for (size_t i = 0; i < resp->n_targets && !found; i++)
			found = strcmp(resp->targets[i]->name, name) == 0;
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	spc_status_release(&st);
	spc_client_destroy(c);
	return found;
}

static int parse_levels(const char *s, bench_scale_opts *o)
{
	char *copy = strdup(s), *save = NULL, *tok;
	int rc = 0;

	if (copy == NULL)
		return -1;
	o->nrecords = 0;
	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;
		if (o->nrecords == 4 || spc_cli_parse_uint(tok, 10000000, &v) < 0 || v == 0 ||
		    (o->nrecords > 0 && v <= o->records[o->nrecords - 1])) {
			rc = -1;
			break;
		}
		o->records[o->nrecords++] = (size_t)v;
	}
	free(copy);
	return rc == 0 && o->nrecords > 0 ? 0 : -1;
}

static int spc__bench_run(const struct spc_ctx *ctx, int argc, char **argv)
{
	static const char *const defaults[] = {"noop", "noop_forkserver", "noop_prestart",
					       "noop_spawn", "true"};
	struct spc_cli_list pos = SPC_CLI_LIST_INIT;
	const char *clients_s = NULL, *count_s = NULL, *server_pid_s = NULL, *store_addr = NULL;
	const char *store_name = NULL, *floor_s = NULL, *floor_runs_s = NULL, *scale_addr = NULL;
	const char *scale_pid_s = NULL, *live_s = NULL, *records_s = NULL;
	int json = 0;
	const struct spc_opt opts[] = {
		{"--clients", SPC_OPT_VALUE, &clients_s},
		{"--count", SPC_OPT_VALUE, &count_s},
		{"--floor", SPC_OPT_VALUE, &floor_s},
		{"--floor-runs", SPC_OPT_VALUE, &floor_runs_s},
		{"--server-pid", SPC_OPT_VALUE, &server_pid_s},
		{"--scale-addr", SPC_OPT_VALUE, &scale_addr},
		{"--scale-pid", SPC_OPT_VALUE, &scale_pid_s},
		{"--live", SPC_OPT_VALUE, &live_s},
		{"--records", SPC_OPT_VALUE, &records_s},
		{"--store-addr", SPC_OPT_VALUE, &store_addr},
		{"--store-name", SPC_OPT_VALUE, &store_name},
		{"--json", SPC_OPT_FLAG, &json},
		{NULL, SPC_OPT_FLAG, NULL},
	};
	uint64_t clients = 8, count = 2000, floor_runs = 400, server_pid = 0, scale_pid = 0;
	uint64_t live = 1000;
	bench_scale_opts so = {.records = {1000, 10000, 100000}, .nrecords = 3};
	bench_table t = {0};
	floors fl = {0};
	char *fpath = NULL;
	double rpc1_rate = 0;
	int status, rc;

	status = spc_cli_parse(&spc_cmd_bench, opts, argc, argv, 0, &pos);
	if (status != SPC_CLI_CONTINUE)
		goto out;
	if ((clients_s != NULL && (spc_cli_parse_uint(clients_s, 256, &clients) < 0 || clients == 0)) ||
	    (count_s != NULL && (spc_cli_parse_uint(count_s, 10000000, &count) < 0 || count == 0)) ||
	    (floor_runs_s != NULL &&
	     (spc_cli_parse_uint(floor_runs_s, 100000, &floor_runs) < 0 || floor_runs == 0)) ||
	    (server_pid_s != NULL && spc_cli_parse_uint(server_pid_s, 1 << 30, &server_pid) < 0) ||
	    (scale_pid_s != NULL && spc_cli_parse_uint(scale_pid_s, 1 << 30, &scale_pid) < 0) ||
	    (live_s != NULL && (spc_cli_parse_uint(live_s, 100000, &live) < 0 || live == 0)) ||
	    (records_s != NULL && parse_levels(records_s, &so) < 0)) {
		status = spc_cli_usage_error("bench", "--clients 1..256, --count and --live >= 1, "
					     "--records ascending levels (at most 4)");
		goto out;
	}
	json |= ctx->json;
	fpath = floor_path(floor_s);
	if (fpath == NULL || (rc = run_floor(fpath, (int)floor_runs, &fl)) < 0) {
		status = spc_cli_local_error(fpath != NULL ? fpath : "bench-floor", -ENOENT);
		goto out;
	}
	if (rpc_floor(ctx, 1, RPC_RUNS, &fl.rpc_ns, &rpc1_rate) < 0 ||
	    rpc_floor(ctx, (size_t)clients, RPC_RUNS * (size_t)clients, &(double){0},
		      &fl.rpc_rate) < 0) {
		status = spc_cli_local_error(ctx->conn.addr, -ECONNREFUSED);
		goto out;
	}
	bench_add(&t, "floor: fork+pipe+wait p50", fl.fork_ns / 1e6, "ms", fl.fork_ns / 1e6,
		  "fork+pipe+wait", 0, 0);
	bench_add(&t, "floor: fork+pipe+wait CPU", fl.fork_cpu_us, "us", fl.fork_cpu_us,
		  "fork+pipe CPU", 0, 0);
	bench_add(&t, "floor: fork+exec+wait p50", fl.exec_ns / 1e6, "ms", fl.exec_ns / 1e6,
		  "fork+exec+wait", 0, 0);
	bench_add(&t, "floor: fork+exec+wait CPU", fl.exec_cpu_us, "us", fl.exec_cpu_us,
		  "fork+exec CPU", 0, 0);
	bench_add(&t, "floor: gRPC unary round trip c=1 p50", fl.rpc_ns / 1e6, "ms", fl.rpc_ns / 1e6,
		  "RTT", 0, 0);
	bench_add(&t, "floor: R_fork (2 forking processes)", fl.fork_rate, "/s", fl.fork_rate,
		  "R_fork", 0, 0);
	{
		char n[96];
		snprintf(n, sizeof n, "floor: R_rpc (unary, c=%u)", (unsigned)clients);
		bench_add(&t, n, fl.rpc_rate, "/s", fl.rpc_rate, "R_rpc", 0, 0);
	}
	bench_add(&t, "floor: F = 1/(1/R_rpc + 1/R_fork)",
		  1.0 / (1.0 / fl.rpc_rate + 1.0 / fl.fork_rate), "/s",
		  1.0 / (1.0 / fl.rpc_rate + 1.0 / fl.fork_rate), "F", 0, 0);
	if (server_pid > 0) {
		long f, l, z, pss = bench_pss_kib((pid_t)server_pid, &f, &l, &z);
		if (pss > 0) {
			bench_add(&t, "idle PSS front+launcher+zygotes", (double)pss / 1024.0, "MiB",
				  16.0, "the 16 MiB target", 1.0, 0);
			bench_add(&t, "  front", (double)f / 1024.0, "MiB", 16.0, "the 16 MiB target",
				  0, 0);
			bench_add(&t, "  launcher", (double)l / 1024.0, "MiB", 16.0,
				  "the 16 MiB target", 0, 0);
			bench_add(&t, "  zygotes, idle children", (double)z / 1024.0, "MiB", 16.0,
				  "the 16 MiB target", 0, 0);
		}
	}
	status = SPC_EXIT_OK;
	for (size_t i = 0; i < (pos.n ? pos.n : sizeof defaults / sizeof defaults[0]); i++) {
		const char *name = pos.n ? pos.v[i] : defaults[i];
		if (pos.n == 0 && strcmp(name, "noop_prestart") == 0 && !has_target(ctx, name))
			continue; /* not configured (yet) */
		rc = bench_target(ctx, name, (size_t)clients, (size_t)count, &fl, (pid_t)server_pid,
				  &t);
		if (rc != SPC_EXIT_OK)
			status = rc;
	}
	if (pos.n == 0 && status == SPC_EXIT_OK) {
		rc = bench_destroy(ctx, "sleep", 10 * 1000000000LL, fl.kill_ns, &t);
		if (rc == SPC_EXIT_OK)
			rc = bench_destroy(ctx, "stubborn", 0, fl.kill_ns, &t);
		if (rc != SPC_EXIT_OK)
			status = rc;
	}
	if (scale_addr != NULL && status == SPC_EXIT_OK) {
		struct spc_ctx sc = *ctx;
		sc.conn.addr = scale_addr;
		so.live = (size_t)live;
		so.clients = (size_t)clients;
		so.server_pid = (pid_t)scale_pid;
		status = bench_scale(&sc, &so, &t);
	}
	if (store_addr != NULL && status == SPC_EXIT_OK)
		status = bench_store(ctx, store_addr, store_name != NULL ? store_name : "store",
				     (size_t)clients, (size_t)count / 4 ? (size_t)count / 4 : 1, &t);
	if (json) {
		print_json(&t);
	} else {
		char m[256];
		machine(m, sizeof m);
		printf("machine: %s\n", m);
		print_table(&t);
	}
out:
	free(t.rows);
	free(fpath);
	spc_cli_list_release(&pos);
	return status;
}

const struct spc_command spc_cmd_bench = {
	.name = "bench",
	.summary = "measure spawnd against this machine's floor",
	.usage = spc__bench_usage,
	.run = spc__bench_run,
};
