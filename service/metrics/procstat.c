/* /proc readers: see procstat.h. proc(5) for the fields. */
#include "service/metrics/procstat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The whole of a small /proc file, NUL-terminated, or -errno. */
static int slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	while (got + 1 < len && (n = read(fd, buf + got, len - 1 - got)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			n = -errno;
			close(fd);
			return (int)n;
		}
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return 0;
}

/* btime of /proc/stat: when the system booted, in seconds since the epoch. */
static double boot_time(void)
{
	FILE *f = fopen("/proc/stat", "re");
	char *line = NULL;
	size_t cap = 0;
	double t = 0;

	if (f == NULL)
		return 0;
	/* Line by line: the "intr" line before it can be tens of KiB long. */
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, "btime ", 6) == 0) {
			t = strtod(line + 6, NULL);
			break;
		}
	}
	free(line);
	fclose(f);
	return t;
}

/* Entries of /proc/PID/fd; SELF: ours, of which the one reading is not counted. */
static double count_fds(const char *dir, bool self)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	double n = 0;
	struct dirent *e;
	DIR *d;

	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return self ? n - 1 : n;
}

int spd_procstat_read(pid_t pid, spd_procstat *out)
{
	char path[64], buf[1024];
	unsigned long long utime, stime, start;
	long long rss;
	const char *p;
	long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	int rc;

	memset(out, 0, sizeof *out);
	if (pid == 0)
		snprintf(path, sizeof path, "/proc/self/stat");
	else
		snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	rc = slurp(path, buf, sizeof buf);
	if (rc < 0)
		return rc;
	/* The command name may hold spaces and parentheses: fields start after
	 * the last ')'. Then state (3) ... utime (14), stime (15), starttime
	 * (22), rss (24, in pages). */
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 2,
				"%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d "
				"%*d %*d %*d %*d %llu %*u %lld",
				&utime, &stime, &start, &rss) != 4)
		return -EBADMSG;
	if (tick <= 0)
		tick = 100;
	out->cpu_seconds = (double)(utime + stime) / (double)tick;
	out->start_ticks = start;
	out->start_time_seconds = boot_time() + (double)start / (double)tick;
	out->resident_bytes = (double)rss * (double)page;
	if (pid == 0)
		snprintf(path, sizeof path, "/proc/self/fd");
	else
		snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	out->open_fds = count_fds(path, pid == 0);
	return 0;
}
