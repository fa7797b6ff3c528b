/* This process's own children: see children.h. */
#include "service/common/children.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

int spd_children_each(bool (*fn)(pid_t pid, void *ctx), void *ctx)
{
	char path[300], buf[32];
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		FILE *f;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/children", de->d_name);
		f = fopen(path, "re");
		if (f == NULL)
			continue;
		while (fscanf(f, "%31s", buf) == 1) {
			pid_t pid = (pid_t)strtol(buf, NULL, 10);
			if (pid > 0 && fn(pid, ctx))
				n++;
		}
		fclose(f);
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
