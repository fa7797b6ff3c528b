/* This process's own children: see children.h. */
#include "service/common/children.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Calls FN for each pid in the children file FD; adds to *N the trues. The
 * file is read in blocks and parsed by hand: with a thousand children,
 * fscanf's per-number cost was most of the launcher's reap pass. */
static void each_in(int fd, bool (*fn)(pid_t pid, void *ctx), void *ctx, int *n)
{
	/* One read for a few thousand children: each read restarts the kernel's
	 * walk of the children list at its position. */
	char buf[32768];
	pid_t pid = 0;
	bool in_number = false;
	ssize_t got;

	while ((got = read(fd, buf, sizeof buf)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (ssize_t i = 0; i < got; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				pid = pid * 10 + (buf[i] - '0');
				in_number = true;
			} else if (in_number) {
				if (pid > 0 && fn(pid, ctx))
					(*n)++;
				pid = 0;
				in_number = false;
			}
		}
	}
	if (in_number && pid > 0 && fn(pid, ctx))
		(*n)++;
}

int spd_children_each(bool (*fn)(pid_t pid, void *ctx), void *ctx)
{
	char path[300];
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		int fd;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/children", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		each_in(fd, fn, ctx, &n);
		close(fd);
	}
	closedir(d);
	return n;
}

bool spd_child_exited(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof si);
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

int spd_children_reap_one(bool (*is_leader)(pid_t pid, void *ctx), void *ctx, pid_t *pid,
			  int *status, struct rusage *ru)
{
	siginfo_t si;

	memset(&si, 0, sizeof si);
	if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return errno == ECHILD ? 0 : -errno;
	if (si.si_pid == 0)
		return 0;
	if (is_leader != NULL && is_leader(si.si_pid, ctx))
		kill(-si.si_pid, SIGKILL); /* what is left of its group */
	if (wait4(si.si_pid, status, 0, ru) < 0)
		return -errno;
	*pid = si.si_pid;
	return 1;
}
