/* spawnd's processes as /proc shows them: CPU, RSS and PSS for the bench. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/spawnctl/bench.h"

#define MAX_KIDS 4096

/* utime, stime, cutime, cstime (clock ticks) and comm of PID; 0 or -1. */
static int read_stat(pid_t pid, long long t[4], char comm[32])
{
	char path[64], buf[1024], *rp;
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	if (rp == NULL)
		return -1;
	if (comm != NULL) {
		char *lp = strchr(buf, '(');
		size_t len = lp != NULL && rp > lp ? (size_t)(rp - lp - 1) : 0;
		if (len > 31)
			len = 31;
		memcpy(comm, lp != NULL ? lp + 1 : "", len);
		comm[len] = '\0';
	}
	/* After ")": state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime cutime cstime */
	if (sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld %lld %lld", &t[0],
		   &t[1], &t[2], &t[3]) != 4)
		return -1;
	return 0;
}

/* The direct children of PID (every thread's), up to MAX; their count. */
static size_t children_of(pid_t pid, pid_t *out, size_t max)
{
	char path[300];
	size_t n = 0;
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		FILE *f;
		int c;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%d/task/%s/children", (int)pid, de->d_name);
		f = fopen(path, "re");
		if (f == NULL)
			continue;
		while (n < max && fscanf(f, "%d", &c) == 1)
			out[n++] = c;
		fclose(f);
	}
	closedir(d);
	return n;
}

pid_t bench_launcher_pid(pid_t front)
{
	pid_t kids[64];
	size_t n = children_of(front, kids, 64);

	for (size_t i = 0; i < n; i++) {
		long long t[4];
		char comm[32];
		if (read_stat(kids[i], t, comm) == 0 && strcmp(comm, "spawnd-launcher") == 0)
			return kids[i];
	}
	return 0;
}

/* CPU time (ns) PID's threads have run, from their schedstat (the
 * clock ticks of /proc/PID/stat are too coarse for a few hundred processes). */
static int64_t run_ns(pid_t pid)
{
	char path[300];
	int64_t sum = 0;
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		long long ns;
		FILE *f;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", (int)pid, de->d_name);
		f = fopen(path, "re");
		if (f == NULL)
			continue;
		if (fscanf(f, "%lld", &ns) == 1)
			sum += ns;
		fclose(f);
	}
	closedir(d);
	return sum;
}

void bench_cpu_sample(pid_t front, bench_cpu *s)
{
	static pid_t kids[MAX_KIDS];
	pid_t l = bench_launcher_pid(front);
	size_t n;

	memset(s, 0, sizeof *s);
	if (l == 0 || (s->front_ns = run_ns(front)) < 0 || (s->launcher_ns = run_ns(l)) < 0)
		return;
	/* Zygotes (forkserver: they fork). The children themselves are counted
	 * from their records' usage. */
	n = children_of(l, kids, MAX_KIDS);
	for (size_t i = 0; i < n; i++) {
		long long t[4];
		char comm[32];
		if (read_stat(kids[i], t, comm) == 0 && strncmp(comm, "z:", 2) == 0) {
			int64_t z = run_ns(kids[i]);
			if (z > 0)
				s->zygote_ns += z;
		}
	}
	s->ok = 1;
}

static long status_or_rollup(pid_t pid, const char *file, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, key, klen) == 0 && sscanf(line + klen, " %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

long bench_rss_kib(pid_t pid)
{
	return status_or_rollup(pid, "status", "VmRSS:");
}

long bench_pss_kib(pid_t front, long *front_kib, long *launcher_kib, long *zygotes_kib)
{
	static pid_t kids[MAX_KIDS];
	pid_t l = bench_launcher_pid(front);
	long f = status_or_rollup(front, "smaps_rollup", "Pss:"), la = -1, z = 0;
	size_t n;

	if (l != 0)
		la = status_or_rollup(l, "smaps_rollup", "Pss:");
	n = l != 0 ? children_of(l, kids, MAX_KIDS) : 0;
	for (size_t i = 0; i < n; i++) {
		long k = status_or_rollup(kids[i], "smaps_rollup", "Pss:");
		if (k > 0)
			z += k;
	}
	*front_kib = f;
	*launcher_kib = la;
	*zygotes_kib = z;
	if (f < 0 || la < 0)
		return -1;
	return f + la + z;
}
