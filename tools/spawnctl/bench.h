/* `spawnctl bench`'s parts (bench.c drives them): the result table, the
 * measurements over gRPC, the server's processes as /proc shows them, and the
 * scale figures (how costs grow with live processes, watchers and records). */
#ifndef SPAWNCTL_BENCH_H
#define SPAWNCTL_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tools/spawnctl/commands.h"

/* ---- the table (bench.c) ---- */

/* One figure beside its floor: RATIO = VALUE / FLOOR. TARGET (0: none) is
 * the bound on the ratio: met when ratio <= target, or >= with GE. */
typedef struct bench_row {
	char name[96];
	double value;
	const char *unit;        /* "ms", "us", "/s", "KiB", "MiB", "" */
	double floor;
	char floor_name[64];
	double target;
	int ge;
} bench_row;

typedef struct bench_table {
	bench_row *rows;
	size_t n, cap;
} bench_table;

void bench_add(bench_table *t, const char *name, double value, const char *unit, double floor,
	       const char *floor_name, double target, int ge);

/* ---- measurements (bench.c) ---- */

int64_t bench_now_ns(void);
int bench_cmp_i64(const void *a, const void *b);
int64_t bench_quantile(const int64_t *v, size_t n, double q);

typedef enum bench_mode {
	BENCH_START_WATCH, /* StartProcess, then Watch to the terminal event */
	BENCH_RUN,         /* one Run stream */
} bench_mode;

typedef struct bench_figures {
	int64_t p50, p99;  /* ns */
	double rate;       /* completed processes per second */
	size_t n;
	int64_t child_cpu_us;  /* the processes' own CPU (their records' usage) */
	int64_t answer_p50;    /* Start+Watch: the StartProcess answer alone, ns */
} bench_figures;

/* COUNT processes of TARGET, CLIENTS at a time, start -> terminal event, each
 * must succeed. Returns SPC_EXIT_OK or SPC_EXIT_RPC (said on stderr). */
int bench_measure(const struct spc_ctx *ctx, const char *target, bench_mode mode, size_t clients,
		  size_t count, bench_figures *f);

/* StartProcess of TARGET (args ARGS) without waiting: *ID (malloc'd). */
int bench_start(spc_client *c, const char *target, const char *arg, char **id);
/* Destroy(ID, grace 0, WAIT). */
int bench_destroy_now(spc_client *c, const char *id, int wait);

/* ---- the server's processes (bench_proc.c) ---- */

/* CPU time (ns, from schedstat) of the front's threads, the launcher and
 * the zygotes. The children's own comes from their records (Process.usage:
 * their rusage, as the launcher or their zygote reaped them). */
typedef struct bench_cpu {
	int64_t front_ns, launcher_ns, zygote_ns;
	int ok;
} bench_cpu;

void bench_cpu_sample(pid_t front, bench_cpu *s);
/* The launcher's pid (front's child named spawnd-launcher), or 0. */
pid_t bench_launcher_pid(pid_t front);
/* VmRSS (KiB) of PID, -1 if unknown. */
long bench_rss_kib(pid_t pid);
/* Pss (KiB) of front + launcher + the launcher's children (zygotes, idle
 * pre-started children), from smaps_rollup. */
long bench_pss_kib(pid_t front, long *front_kib, long *launcher_kib, long *zygotes_kib);

/* ---- scale (bench_scale.c) ---- */

typedef struct bench_scale_opts {
	size_t live;            /* running processes (and watchers): 1,000 */
	size_t records[4];      /* ListProcesses levels, ascending; the first is the floor */
	size_t nrecords;
	size_t clients;
	pid_t server_pid;       /* 0: no RSS figures */
} bench_scale_opts;

/* The scale figures, on CTX's server (which must allow 2 x live running
 * processes and keep the largest level of records). */
int bench_scale(const struct spc_ctx *ctx, const bench_scale_opts *o, bench_table *t);

#endif
