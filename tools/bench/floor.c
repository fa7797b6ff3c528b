/* bench-floor: this machine's floor for `spawnctl bench`, measured in a small
 * process of its own. spawnctl maps libgrpc and its threads' stacks: a fork of
 * it costs several times a fork of this program, so its own loops would make
 * every ratio look better than it is (issue 11).
 *
 * Usage: bench-floor [--runs N] [--rate-ms MS]
 * Prints one "name value" line per figure (times in ns, CPU in us, rates in /s):
 *   fork_pipe_ns     fork, the child writes 100 B into a pipe and _exits, the
 *                    parent reads to EOF and reaps: p50
 *   fork_pipe_cpu_us the same: CPU of parent and child per run (getrusage)
 *   exec_ns          fork + execve(/bin/true) + waitpid: p50
 *   exec_cpu_us      its CPU per run
 *   kill_ns          SIGKILL a sleeping child -> waitpid returns: p50
 *   fork_rate_2      fork+pipe runs per second of two forking processes at once
 *                    (they share the machine's cores, as a launcher and the
 *                    front do)
 * Only _exit, write and execve run in the children. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum kind { FORK_PIPE, EXEC, KILL };

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t cpu_us(void)
{
	struct rusage s, c;

	getrusage(RUSAGE_SELF, &s);
	getrusage(RUSAGE_CHILDREN, &c);
	return (int64_t)(s.ru_utime.tv_sec + s.ru_stime.tv_sec + c.ru_utime.tv_sec +
			 c.ru_stime.tv_sec) * 1000000 +
	       s.ru_utime.tv_usec + s.ru_stime.tv_usec + c.ru_utime.tv_usec + c.ru_stime.tv_usec;
}

/* One run; its duration in ns, or -1. */
static int64_t once(enum kind k)
{
	static char *const argv[] = {(char *)"/bin/true", NULL};
	static char *const envp[] = {NULL};
	static const char msg[100] = "result";
	char buf[256];
	int p[2] = {-1, -1};
	int64_t t0 = now_ns();
	pid_t pid;

	if (k == FORK_PIPE && pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (k == FORK_PIPE) {
			ssize_t w = write(p[1], msg, sizeof msg);
			_exit(w == (ssize_t)sizeof msg ? 0 : 1);
		}
		if (k == EXEC)
			execve(argv[0], argv, envp);
		if (k == KILL)
			for (;;)
				pause();
		_exit(127);
	}
	if (k == FORK_PIPE) {
		close(p[1]);
		while (read(p[0], buf, sizeof buf) > 0 || errno == EINTR)
			errno = 0;
		close(p[0]);
	}
	if (k == KILL) {
		t0 = now_ns();
		kill(pid, SIGKILL);
	}
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return now_ns() - t0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* p50 of RUNS runs of K; *CPU the CPU per run (us). */
static int64_t p50(enum kind k, int runs, double *cpu)
{
	int64_t *v = calloc((size_t)runs, sizeof *v), c0 = cpu_us(), r;
	int n = 0;

	if (v == NULL)
		exit(1);
	for (int i = 0; i < runs; i++)
		if ((v[n] = once(k)) >= 0)
			n++;
	if (cpu != NULL)
		*cpu = n ? (double)(cpu_us() - c0) / n : 0;
	qsort(v, (size_t)n, sizeof *v, cmp_i64);
	r = n ? v[n / 2] : 0;
	free(v);
	return r;
}

/* Fork+pipe runs per second of WORKERS processes looping for MS at once. */
static double rate(int workers, int ms)
{
	int p[2];
	double total = 0;
	int64_t t0 = now_ns(), end;

	if (pipe2(p, O_CLOEXEC) < 0)
		return 0;
	end = t0 + (int64_t)ms * 1000000;
	for (int i = 0; i < workers; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			/* Our own process: its loop forks from a process as small as this one. */
			uint64_t n = 0;
			close(p[0]);
			while (now_ns() < end)
				if (once(FORK_PIPE) >= 0)
					n++;
			if (write(p[1], &n, sizeof n) != (ssize_t)sizeof n)
				_exit(1);
			_exit(0);
		}
	}
	close(p[1]);
	for (int i = 0; i < workers; i++) {
		uint64_t n;
		if (read(p[0], &n, sizeof n) == (ssize_t)sizeof n)
			total += (double)n;
	}
	close(p[0]);
	while (wait(NULL) > 0 || errno == EINTR)
		;
	return total * 1e9 / (double)(now_ns() - t0);
}

int main(int argc, char **argv)
{
	int runs = 400, rate_ms = 1000;
	double fork_cpu = 0, exec_cpu = 0;
	int64_t fork_ns, exec_ns, kill_ns;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--rate-ms") == 0 && i + 1 < argc)
			rate_ms = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: bench-floor [--runs N] [--rate-ms MS]\n");
			return 3;
		}
	}
	if (runs < 1 || rate_ms < 1) {
		fprintf(stderr, "bench-floor: --runs and --rate-ms must be >= 1\n");
		return 3;
	}
	signal(SIGPIPE, SIG_IGN);
	fork_ns = p50(FORK_PIPE, runs, &fork_cpu);
	exec_ns = p50(EXEC, runs / 2 ? runs / 2 : 1, &exec_cpu);
	kill_ns = p50(KILL, runs / 4 ? runs / 4 : 1, NULL);
	printf("fork_pipe_ns %lld\nfork_pipe_cpu_us %.1f\nexec_ns %lld\nexec_cpu_us %.1f\n"
	       "kill_ns %lld\nfork_rate_2 %.1f\n",
	       (long long)fork_ns, fork_cpu, (long long)exec_ns, exec_cpu, (long long)kill_ns,
	       rate(2, rate_ms));
	return 0;
}
