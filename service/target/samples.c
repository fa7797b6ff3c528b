/* Sample targets (SPEC §4). They use only the public API of spawnd_target.h, as
 * any target author would. */
#include "service/target/samples.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Parses a non-negative decimal number; -1 when S is not one. */
static long long parse_count(const char *s)
{
	char *end;
	long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	return v;
}

/* Sleeps MS milliseconds, or forever when MS < 0. Restarts after signals that
 * were handled or ignored. */
static void sleep_ms(long long ms)
{
	struct timespec ts;

	if (ms < 0) {
		for (;;)
			pause();
	}
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* The optional [MS] argument of sleep, stubborn and tree: none means forever. */
static int ms_arg(spawnd_call *call, long long *ms)
{
	if (spawnd_argc(call) == 0) {
		*ms = -1;
		return 0;
	}
	*ms = parse_count(spawnd_argv(call)[0]);
	if (*ms < 0 || spawnd_argc(call) > 1)
		return spawnd_raise(call, "ValueError", "expected [MS], a number of milliseconds");
	return 0;
}

int spawnd_sample_echo(spawnd_call *call)
{
	const char *const *argv = spawnd_argv(call);
	size_t len;
	const void *input = spawnd_input(call, &len);
	int rc;

	if (len > 0)
		return spawnd_result_write(call, input, len) < 0;
	for (int i = 0; i < spawnd_argc(call); i++) {
		if (i > 0 && (rc = spawnd_result_write(call, " ", 1)) < 0)
			return 1;
		if ((rc = spawnd_result_write(call, argv[i], strlen(argv[i]))) < 0)
			return 1;
	}
	return 0;
}

int spawnd_sample_noop(spawnd_call *call)
{
	(void)call;
	return 0;
}

int spawnd_sample_sleep(spawnd_call *call)
{
	long long ms;

	if (ms_arg(call, &ms) != 0)
		return 1;
	sleep_ms(ms);
	return 0;
}

int spawnd_sample_stubborn(spawnd_call *call)
{
	long long ms;

	if (ms_arg(call, &ms) != 0)
		return 1;
	signal(SIGTERM, SIG_IGN);
	sleep_ms(ms);
	return 0;
}

int spawnd_sample_fail(spawnd_call *call)
{
	const char *const *argv = spawnd_argv(call);
	int argc = spawnd_argc(call);
	char msg[4096];
	size_t off = 0;

	if (argc < 1)
		return spawnd_raise(call, "ValueError", "usage: fail TYPE MSG...");
	msg[0] = '\0';
	for (int i = 1; i < argc && off < sizeof msg - 1; i++) {
		int n = snprintf(msg + off, sizeof msg - off, "%s%s", i > 1 ? " " : "", argv[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	return spawnd_raise(call, argv[0], "%s", msg);
}

int spawnd_sample_crash(spawnd_call *call)
{
	(void)call;
	fflush(NULL);
	raise(SIGSEGV);
	_exit(139); /* not reached: the child's SIGSEGV disposition is SIG_DFL */
}

int spawnd_sample_exit(spawnd_call *call)
{
	long long code = spawnd_argc(call) == 1 ? parse_count(spawnd_argv(call)[0]) : -1;

	if (code < 0 || code > 255)
		return spawnd_raise(call, "ValueError", "usage: exit CODE (0-255)");
	fflush(NULL);
	_exit((int)code);
}

int spawnd_sample_oom(spawnd_call *call)
{
	const size_t chunk = 1u << 20;
	char *p;

	if (spawnd_memory_limit(call) == 0)
		return spawnd_raise(call, "NoMemoryLimit",
				    "oom allocates until it fails; it needs a memory_limit");
	/* The memory is never freed: the process ends here either way. */
	for (;;) {
		p = malloc(chunk);
		if (p == NULL)
			return spawnd_oom(call);
		for (size_t i = 0; i < chunk; i += 4096)
			p[i] = 1;
	}
}

int spawnd_sample_tree(spawnd_call *call)
{
	long long ms;

	if (ms_arg(call, &ms) != 0)
		return 1;
	fflush(NULL);
	for (int i = 0; i < 2; i++) {
		pid_t child = fork();
		if (child < 0)
			return spawnd_raise(call, "OSError", "fork: %s", strerror(errno));
		if (child == 0) {
			pid_t grandchild = fork();
			if (grandchild == 0 && i == 1)
				setsid(); /* escapes the process group: the hard case */
			for (;;)
				pause();
		}
	}
	printf("tree: 2 children and 2 grandchildren started\n");
	fflush(stdout);
	sleep_ms(ms);
	return 0;
}

/* Writes N bytes of a repeating pattern to FD (1, 2) or to the result (fd < 0). */
static int spew_one(spawnd_call *call, int fd, long long n)
{
	static char buf[65536];
	int rc;

	memset(buf, 'x', sizeof buf);
	for (int i = 0; i < (int)sizeof buf; i += 64)
		buf[i] = '\n';
	while (n > 0) {
		size_t k = n < (long long)sizeof buf ? (size_t)n : sizeof buf;
		if (fd < 0) {
			if ((rc = spawnd_result_write(call, buf, k)) < 0)
				return rc;
		} else {
			ssize_t w = write(fd, buf, k);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			k = (size_t)w;
		}
		n -= (long long)k;
	}
	return 0;
}

int spawnd_sample_spew(spawnd_call *call)
{
	const char *const *argv = spawnd_argv(call);

	for (int i = 0; i < spawnd_argc(call); i++) {
		const char *eq = strchr(argv[i], '=');
		long long n = eq != NULL ? parse_count(eq + 1) : -1;
		size_t klen = eq != NULL ? (size_t)(eq - argv[i]) : 0;
		int fd, rc;

		if (n < 0)
			return spawnd_raise(call, "ValueError", "expected STREAM=BYTES, got '%s'", argv[i]);
		if (klen == 6 && strncmp(argv[i], "stdout", 6) == 0)
			fd = 1;
		else if (klen == 6 && strncmp(argv[i], "stderr", 6) == 0)
			fd = 2;
		else if (klen == 6 && strncmp(argv[i], "result", 6) == 0)
			fd = -1;
		else
			return spawnd_raise(call, "ValueError", "unknown stream in '%s'", argv[i]);
		rc = spew_one(call, fd, n);
		if (rc == -EFBIG)
			return 1;
		if (rc < 0)
			return spawnd_raise(call, "OSError", "%s: %s", argv[i], strerror(-rc));
	}
	return 0;
}

/* A test aid beyond the samples of SPEC §4 (not in the default config):
 * result = the bytes of /proc/self/environ, the environment block the kernel
 * keeps for the process (what a fork-method child inherits from the launcher's
 * startup, whatever its `environ` says), so that tests can see what leaks. */
int spawnd_sample_proc_environ(spawnd_call *call)
{
	char buf[4096];
	ssize_t n;
	int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return spawnd_raise(call, "OSError", "/proc/self/environ: %s", strerror(errno));
	while ((n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return spawnd_raise(call, "OSError", "/proc/self/environ: %s", strerror(errno));
		}
		if (spawnd_result_write(call, buf, (size_t)n) < 0)
			break;
	}
	close(fd);
	return 0;
}

/* A line "KEY VALUE\n" of the whoami report. */
static void report(spawnd_call *call, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void report(spawnd_call *call, const char *key, const char *fmt, ...)
{
	char line[8192];
	int n = snprintf(line, sizeof line, "%s ", key);
	va_list ap;

	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	spawnd_result_write(call, line, (size_t)n);
}

int spawnd_sample_whoami(spawnd_call *call)
{
	gid_t groups[256];
	char cwd[4096], list[4096];
	size_t off = 0;
	int ng = getgroups(256, groups);
	mode_t mask = umask(0);
	DIR *d;
	struct dirent *de;

	umask(mask);
	report(call, "uid", "%d", (int)getuid());
	report(call, "euid", "%d", (int)geteuid());
	report(call, "gid", "%d", (int)getgid());
	list[0] = '\0';
	for (int i = 0; i < ng && off < sizeof list - 16; i++)
		off += (size_t)snprintf(list + off, sizeof list - off, "%s%d", i ? "," : "", (int)groups[i]);
	report(call, "groups", "%s", list);
	report(call, "no_new_privs", "%d", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	report(call, "umask", "%03o", (unsigned)mask);
	report(call, "cwd", "%s", getcwd(cwd, sizeof cwd) != NULL ? cwd : "?");
	/* The descriptors open in this process (the listing's own excluded). */
	off = 0;
	list[0] = '\0';
	d = opendir("/proc/self/fd");
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
			continue;
		off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", off ? "," : "", de->d_name);
		if (off >= sizeof list - 16)
			break;
	}
	if (d != NULL)
		closedir(d);
	report(call, "fds", "%s", list);
	for (char **e = environ; *e != NULL; e++)
		report(call, "env", "%s", *e);
	return 0;
}
