/* A multi-mode child for the launcher tests (libuv's spawn_helper, tini's staged
 * scripts): `helper MODE [ARG]`.
 *
 *   exit N             exits with status N
 *   signal SIG         kills itself with SIG ("KILL", "SIGUSR1" or "9")
 *   sleep SECONDS      sleeps, with SIGTERM at its default (dies of it)
 *   ignore-term SECONDS  ignores SIGTERM, then sleeps
 *   grandchild         forks a child that setsid()s and sleeps forever; the
 *                      parent then sleeps forever too
 *   write-stdout N     writes N bytes ('a' + i % 26) to stdout, then exits 0
 *   write-stderr N     the same on stderr
 *   cat                copies stdin to stdout until EOF
 *   fds                prints its open descriptors, ascending, space-separated
 *                      (not counting the one reading /proc/self/fd)
 *   pgid               prints "PID PGID SID"
 *
 * Every exit is _exit(): under ASan, a LeakSanitizer pass at exit would need
 * ptrace and could change the exit status the tests assert.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "service/common/signame.h"

static _Noreturn void usage(void)
{
	static const char msg[] = "usage: helper MODE [ARG]\n";

	(void)!write(2, msg, sizeof msg - 1);
	_exit(125);
}

static long number(const char *s)
{
	char *end;
	long n;

	if (s == NULL)
		usage();
	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || n < 0)
		usage();
	return n;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Sleeps SECONDS (< 0: forever) whatever signals it gets and survives. */
static _Noreturn void sleep_for(long seconds)
{
	struct timespec ts = {.tv_sec = seconds, .tv_nsec = 0};

	if (seconds < 0) {
		for (;;)
			pause();
	}
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	_exit(0);
}

static _Noreturn void write_n(int fd, long n)
{
	char buf[4096];

	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (char)('a' + i % 26);
	/* Chunks are multiples of 26 long except the last, so the pattern runs on. */
	while (n > 0) {
		size_t k = n < 4056 ? (size_t)n : 4056;
		if (write_all(fd, buf, k) < 0)
			_exit(1);
		n -= (long)k;
	}
	_exit(0);
}

static _Noreturn void cat(void)
{
	char buf[65536];

	for (;;) {
		ssize_t n = read(0, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			_exit(1);
		if (n == 0)
			_exit(0);
		if (write_all(1, buf, (size_t)n) < 0)
			_exit(1);
	}
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

static _Noreturn void fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int list[1024];
	size_t n = 0;
	char out[8192];
	size_t o = 0;

	if (d == NULL)
		_exit(1);
	while ((de = readdir(d)) != NULL && n < 1024) {
		if (de->d_name[0] == '.')
			continue;
		int fd = atoi(de->d_name);
		if (fd != dirfd(d))
			list[n++] = fd;
	}
	closedir(d);
	qsort(list, n, sizeof list[0], cmp_int);
	for (size_t i = 0; i < n && o < sizeof out - 16; i++)
		o += (size_t)snprintf(out + o, sizeof out - o, "%s%d", i ? " " : "", list[i]);
	out[o++] = '\n';
	_exit(write_all(1, out, o) < 0);
}

static _Noreturn void grandchild(void)
{
	pid_t pid = fork();

	if (pid < 0)
		_exit(1);
	if (pid == 0) {
		/* Its own session: out of reach of a signal to the leader's group. */
		setsid();
		sleep_for(-1);
	}
	sleep_for(-1);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	const char *arg = argc > 2 ? argv[2] : NULL;

	if (strcmp(mode, "exit") == 0)
		_exit((int)number(arg));
	if (strcmp(mode, "signal") == 0) {
		int sig = arg != NULL ? spd_signal_parse(arg) : -1;
		if (sig <= 0)
			usage();
		signal(sig, SIG_DFL);
		kill(getpid(), sig);
		_exit(124); /* a signal that does not kill */
	}
	if (strcmp(mode, "sleep") == 0)
		sleep_for(number(arg));
	if (strcmp(mode, "ignore-term") == 0) {
		signal(SIGTERM, SIG_IGN);
		sleep_for(number(arg));
	}
	if (strcmp(mode, "grandchild") == 0)
		grandchild();
	if (strcmp(mode, "write-stdout") == 0)
		write_n(1, number(arg));
	if (strcmp(mode, "write-stderr") == 0)
		write_n(2, number(arg));
	if (strcmp(mode, "cat") == 0)
		cat();
	if (strcmp(mode, "fds") == 0)
		fds();
	if (strcmp(mode, "pgid") == 0) {
		char out[64];
		int n = snprintf(out, sizeof out, "%d %d %d\n", (int)getpid(), (int)getpgid(0),
				 (int)getsid(0));
		_exit(write_all(1, out, (size_t)n) < 0);
	}
	usage();
}
