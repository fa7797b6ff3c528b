/* Per-process memory cgroups: see cgroup.h for the contract. */
#include "service/launcher/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "service/common/cgroupdir.h"
#include "service/common/log.h"

/* /proc/self/mountinfo can be long on a busy host; what does not fit is not
 * looked at (the cgroup mounts come early in practice). */
#define MOUNTINFO_MAX (256u * 1024u)
#define SMALL_FILE_MAX 4096u
/* A cgroup whose last process was just reaped can refuse rmdir() for a moment
 * on some kernels: retry briefly rather than leak it. */
#define RMDIR_TRIES 20

struct spd_cgroups {
	spd_memory_mechanism mech;
	char parent[PATH_MAX];   /* "" under RLIMIT_AS */
	char reason[512];
};

const char *spd_memory_mechanism_name(spd_memory_mechanism m)
{
	switch (m) {
	case SPD_MEMORY_CGROUP_V1:
		return "cgroup_v1";
	case SPD_MEMORY_CGROUP_V2:
		return "cgroup_v2";
	default:
		return "rlimit_as";
	}
}

/* ---- files ----------------------------------------------------------------- */

/* Reads up to N - 1 bytes of PATH into BUF, NUL-terminated. Returns the length
 * or -errno. */
static ssize_t read_file(const char *path, char *buf, size_t n)
{
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (len + 1 < n) {
		ssize_t r = read(fd, buf + len, n - 1 - len);
		if (r < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			close(fd);
			return -e;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

/* Writes S to the existing file DIR/NAME (cgroup files are never created).
 * Returns 0 or -errno. */
static int write_at(const char *dir, const char *name, const char *s)
{
	char path[PATH_MAX];
	size_t len = strlen(s);
	ssize_t w;
	int fd, rc = 0;

	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	do
		w = write(fd, s, len);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		rc = -errno;
	else if ((size_t)w != len)
		rc = -EIO;
	close(fd);
	return rc;
}

/* Whether the space-separated list S holds the word W. */
static bool has_word(const char *s, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = s; (p = strstr(p, w)) != NULL; p += n) {
		bool start = p == s || p[-1] == ' ' || p[-1] == '\n' || p[-1] == ',';
		char end = p[n];
		if (start && (end == '\0' || end == ' ' || end == '\n' || end == ','))
			return true;
	}
	return false;
}

static int remove_dir(const char *path)
{
	for (int i = 0;; i++) {
		struct timespec ms = {0, 1000000};
		if (rmdir(path) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY || i + 1 >= RMDIR_TRIES)
			return -errno;
		nanosleep(&ms, NULL);
	}
}

/* ---- finding the hierarchies -------------------------------------------------- */

/* Copies the mountinfo field at *P (space-terminated, octal escapes such as
 * \040 decoded) into OUT (size N) and advances *P past it. */
static int next_field(const char **p, char *out, size_t n)
{
	const char *s = *p;
	size_t len = 0;

	while (*s == ' ')
		s++;
	if (*s == '\0' || *s == '\n')
		return -ENOENT;
	while (*s != '\0' && *s != ' ' && *s != '\n') {
		char c = *s++;
		if (c == '\\' && s[0] >= '0' && s[0] <= '7' && s[1] >= '0' && s[1] <= '7' &&
		    s[2] >= '0' && s[2] <= '7') {
			c = (char)((s[0] - '0') * 64 + (s[1] - '0') * 8 + (s[2] - '0'));
			s += 3;
		}
		if (len + 1 >= n)
			return -ENAMETOOLONG;
		out[len++] = c;
	}
	out[len] = '\0';
	*p = s;
	return 0;
}

/* Finds the mount of VERSION in MOUNTINFO: its root and mount point. */
static int find_mount(const char *mountinfo, int version, char *root, char *point, size_t n)
{
	for (const char *line = mountinfo; line != NULL && *line != '\0';) {
		const char *nl = strchr(line, '\n');
		const char *p = line;
		char field[PATH_MAX], fstype[64], opts[1024];
		bool ok = true;

		/* id parent major:minor root mountpoint options [optional...] - fstype source superoptions */
		for (int i = 0; i < 3 && ok; i++)
			ok = next_field(&p, field, sizeof field) == 0;
		ok = ok && next_field(&p, root, n) == 0 && next_field(&p, point, n) == 0;
		while (ok && (ok = next_field(&p, field, sizeof field) == 0) && strcmp(field, "-") != 0)
			;
		ok = ok && next_field(&p, fstype, sizeof fstype) == 0 &&
		     next_field(&p, field, sizeof field) == 0 && next_field(&p, opts, sizeof opts) == 0;
		if (ok && version == 2 && strcmp(fstype, "cgroup2") == 0)
			return 0;
		if (ok && version == 1 && strcmp(fstype, "cgroup") == 0 && has_word(opts, "memory"))
			return 0;
		line = nl != NULL ? nl + 1 : NULL;
	}
	return -ENOENT;
}

/* This process's path in the v2 hierarchy ("0::PATH"), or -ENOENT. */
static int own_v2_path(const char *proc_cgroup, char *out, size_t n)
{
	for (const char *line = proc_cgroup; line != NULL && *line != '\0';) {
		const char *nl = strchr(line, '\n');
		size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
		if (len >= 3 && strncmp(line, "0::", 3) == 0) {
			if (len - 3 + 1 > n)
				return -ENAMETOOLONG;
			memcpy(out, line + 3, len - 3);
			out[len - 3] = '\0';
			return 0;
		}
		line = nl != NULL ? nl + 1 : NULL;
	}
	return -ENOENT;
}

int spd__cgroup_find_dir(const char *mountinfo, const char *proc_cgroup, int version, char *out,
			 size_t n)
{
	char root[PATH_MAX], point[PATH_MAX], path[PATH_MAX];
	const char *rel;
	size_t rlen;
	int rc;

	if ((rc = find_mount(mountinfo, version, root, point, sizeof root)) < 0)
		return rc;
	if (version == 1) {
		if (snprintf(out, n, "%s", point) >= (int)n)
			return -ENAMETOOLONG;
		return 0;
	}
	if ((rc = own_v2_path(proc_cgroup, path, sizeof path)) < 0)
		return rc;
	/* PATH is relative to the cgroup namespace's root, ROOT to the mount's:
	 * both are "/" unless the mount shows a subtree. Outside the mount's
	 * subtree (a path starting "/..") there is no directory to use. */
	rlen = strcmp(root, "/") == 0 ? 0 : strlen(root);
	if (path[0] != '/' || strncmp(path, root, rlen) != 0 || (path[rlen] != '/' && path[rlen] != '\0') ||
	    strstr(path, "/..") != NULL)
		return -ENOENT;
	rel = path + rlen;
	if (strcmp(rel, "/") == 0)
		rel = "";
	if (snprintf(out, n, "%s%s", point, rel) >= (int)n)
		return -ENAMETOOLONG;
	return 0;
}

/* ---- detection --------------------------------------------------------------- */

static void because(spd_cgroups *cg, const char *what, const char *path, int err)
{
	snprintf(cg->reason, sizeof cg->reason, "%s%s%.300s%s%s", what, path ? " " : "", path ? path : "",
		 err ? ": " : "", err ? strerror(err) : "");
}

/* ---- the instance's parent cgroup ---------------------------------------------
 *
 * Named spawnd-NS-PID-START: the inode of our pid namespace, and the front's
 * (our parent's) pid and start time in clock ticks since boot. A pid alone is
 * not unique (in containers every launcher is pid 6, and a front's pid is
 * recycled); the triple names one spawnd for as long as the machine is up,
 * and proves whose a directory is: one whose pid namespace is ours and whose
 * pid no longer runs with that start time belongs to a spawnd that is gone. */

/* Field 22 of /proc/PID/stat; 0 when the process does not exist. */
static unsigned long long start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long t = 0;
	ssize_t n;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	n = read_file(path, buf, sizeof buf);
	if (n <= 0 || (p = strrchr(buf, ')')) == NULL)
		return 0;
	/* After "PID (COMM)": state is field 3, starttime field 22. */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
		   &t) != 1)
		return 0;
	return t;
}

static unsigned long long pid_ns(void)
{
	struct stat st;

	return stat("/proc/self/ns/pid", &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

/* Removes the parent cgroups of spawnd instances of our pid namespace whose
 * front is gone (a launcher that was SIGKILLed cannot clean up). Others'
 * (another namespace's, or a live one's) are never touched. */
static void sweep_stale(const char *base, unsigned long long ns)
{
	char path[PATH_MAX + 300];
	struct dirent *de;
	DIR *d = opendir(base);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		unsigned long long dns, dstart;
		int dpid, used = 0;
		if (sscanf(de->d_name, "spawnd-%llu-%d-%llu%n", &dns, &dpid, &dstart, &used) != 3 ||
		    de->d_name[used] != '\0' || dns != ns || dpid <= 0)
			continue;
		if (start_time((pid_t)dpid) == dstart)
			continue; /* that spawnd still runs */
		if (snprintf(path, sizeof path, "%s/%s", base, de->d_name) >= (int)sizeof path)
			continue;
		spd_cgroup_dir_remove(path);
		spd_log(SPD_LOG_INFO, "removed the cgroup of a spawnd that is gone",
			SPD_LOG_STR("cgroup", path), SPD_LOG_END);
	}
	closedir(d);
}

static int make_parent(spd_cgroups *cg, const char *base)
{
	unsigned long long ns = pid_ns(), start = start_time(getppid());

	sweep_stale(base, ns);
	if (snprintf(cg->parent, sizeof cg->parent, "%s/spawnd-%llu-%d-%llu", base, ns,
		     (int)getppid(), start) >= (int)sizeof cg->parent)
		return -ENAMETOOLONG;
	if (mkdir(cg->parent, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int setup_v2(spd_cgroups *cg, const char *mountinfo, const char *proc_cgroup)
{
	char own[PATH_MAX], path[PATH_MAX + 32], buf[SMALL_FILE_MAX];
	ssize_t n;
	int rc;

	if ((rc = spd__cgroup_find_dir(mountinfo, proc_cgroup, 2, own, sizeof own)) < 0) {
		because(cg, "cgroup v2: no cgroup2 mount holding this process", NULL, 0);
		return rc;
	}
	snprintf(path, sizeof path, "%s/cgroup.controllers", own);
	if ((n = read_file(path, buf, sizeof buf)) < 0 || !has_word(buf, "memory")) {
		because(cg, "cgroup v2: no memory controller in", path, n < 0 ? (int)-n : 0);
		return n < 0 ? (int)n : -ENOTSUP;
	}
	snprintf(path, sizeof path, "%s/cgroup.subtree_control", own);
	if ((n = read_file(path, buf, sizeof buf)) < 0) {
		because(cg, "cgroup v2: cannot read", path, (int)-n);
		return (int)n;
	}
	/* Delegation: the memory controller must be enabled for our cgroup's
	 * children before the parent below can pass it on. This fails (EBUSY)
	 * when our cgroup holds processes and is not a namespace root. */
	if (!has_word(buf, "memory") && (rc = write_at(own, "cgroup.subtree_control", "+memory")) < 0) {
		because(cg, "cgroup v2: cannot enable memory in", path, -rc);
		return rc;
	}
	if ((rc = make_parent(cg, own)) < 0) {
		because(cg, "cgroup v2: cannot create", cg->parent, -rc);
		return rc;
	}
	if ((rc = write_at(cg->parent, "cgroup.subtree_control", "+memory")) < 0) {
		because(cg, "cgroup v2: cannot enable memory in", cg->parent, -rc);
		rmdir(cg->parent);
		return rc;
	}
	cg->mech = SPD_MEMORY_CGROUP_V2;
	return 0;
}

static int setup_v1(spd_cgroups *cg, const char *mountinfo)
{
	char mnt[PATH_MAX], path[PATH_MAX + 32];
	int rc;

	if ((rc = spd__cgroup_find_dir(mountinfo, "", 1, mnt, sizeof mnt)) < 0) {
		because(cg, "cgroup v1: no memory hierarchy mounted", NULL, 0);
		return rc;
	}
	if ((rc = make_parent(cg, mnt)) < 0) {
		because(cg, "cgroup v1: cannot create", cg->parent, -rc);
		return rc;
	}
	snprintf(path, sizeof path, "%s/memory.limit_in_bytes", cg->parent);
	if (access(path, W_OK) < 0) {
		rc = -errno;
		because(cg, "cgroup v1: cannot write", path, -rc);
		rmdir(cg->parent);
		return rc;
	}
	cg->mech = SPD_MEMORY_CGROUP_V1;
	return 0;
}

int spd_cgroups_create(const char *force, spd_cgroups **out)
{
	bool try_v2 = true, try_v1 = true;
	char *mountinfo = NULL, proc_cgroup[SMALL_FILE_MAX];
	spd_cgroups *cg;
	ssize_t n;

	*out = NULL;
	if (force != NULL && *force != '\0' && strcmp(force, "auto") != 0) {
		if (strcmp(force, "rlimit_as") == 0)
			try_v2 = try_v1 = false;
		else if (strcmp(force, "cgroup_v2") == 0)
			try_v1 = false;
		else if (strcmp(force, "cgroup_v1") == 0)
			try_v2 = false;
		else
			return -EINVAL;
	}
	cg = calloc(1, sizeof *cg);
	if (cg == NULL)
		return -ENOMEM;
	if (!try_v2 && !try_v1) {
		because(cg, "forced by SPAWND_MEMORY_LIMIT_MECHANISM", NULL, 0);
		*out = cg;
		return 0;
	}
	mountinfo = malloc(MOUNTINFO_MAX);
	if (mountinfo == NULL) {
		free(cg);
		return -ENOMEM;
	}
	n = read_file("/proc/self/mountinfo", mountinfo, MOUNTINFO_MAX);
	if (n < 0) {
		because(cg, "cannot read", "/proc/self/mountinfo", (int)-n);
	} else {
		if (read_file("/proc/self/cgroup", proc_cgroup, sizeof proc_cgroup) < 0)
			proc_cgroup[0] = '\0';
		if (!(try_v2 && setup_v2(cg, mountinfo, proc_cgroup) == 0) && try_v1)
			setup_v1(cg, mountinfo);
	}
	free(mountinfo);
	if (cg->mech == SPD_MEMORY_RLIMIT_AS)
		cg->parent[0] = '\0';
	else
		cg->reason[0] = '\0';
	*out = cg;
	return 0;
}

spd_memory_mechanism spd_cgroups_mechanism(const spd_cgroups *cg)
{
	return cg != NULL ? cg->mech : SPD_MEMORY_RLIMIT_AS;
}

const char *spd_cgroups_parent(const spd_cgroups *cg)
{
	return cg != NULL && cg->parent[0] != '\0' ? cg->parent : NULL;
}

const char *spd_cgroups_reason(const spd_cgroups *cg)
{
	return cg != NULL ? cg->reason : "";
}

/* ---- one cgroup per process -------------------------------------------------- */

static int child_dir(const spd_cgroups *cg, uint64_t key, char *out, size_t n)
{
	if (cg == NULL || cg->mech == SPD_MEMORY_RLIMIT_AS)
		return -ENOTSUP;
	if (snprintf(out, n, "%s/p-%llu", cg->parent, (unsigned long long)key) >= (int)n)
		return -ENAMETOOLONG;
	return 0;
}

static int set_limit(const spd_cgroups *cg, const char *dir, uint64_t limit)
{
	char v[32];
	int rc;

	snprintf(v, sizeof v, "%llu", (unsigned long long)limit);
	if (cg->mech == SPD_MEMORY_CGROUP_V2) {
		if ((rc = write_at(dir, "memory.max", v)) < 0)
			return rc;
		/* Without swap the limit is the memory it may use: otherwise a process
		 * past it swaps instead of being OOM-killed. */
		if ((rc = write_at(dir, "memory.swap.max", "0")) < 0 && rc != -ENOENT)
			return rc;
		/* The whole process, not one victim, dies on OOM (as Kubernetes does);
		 * best-effort: older kernels lack it. */
		write_at(dir, "memory.oom.group", "1");
		return 0;
	}
	if ((rc = write_at(dir, "memory.limit_in_bytes", v)) < 0)
		return rc;
	/* memsw (memory + swap) must be >= the limit, so it comes second. Without
	 * swap accounting, no swapping for this cgroup is the next best thing. */
	rc = write_at(dir, "memory.memsw.limit_in_bytes", v);
	if (rc == -ENOENT) {
		write_at(dir, "memory.swappiness", "0");
		rc = 0;
	}
	return rc;
}

int spd_cgroups_add(spd_cgroups *cg, uint64_t key, uint64_t limit_bytes, int *procs_fd)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	int rc, fd;

	*procs_fd = -1;
	if ((rc = child_dir(cg, key, dir, sizeof dir)) < 0)
		return rc;
	if (mkdir(dir, 0755) < 0)
		return -errno;
	if ((rc = set_limit(cg, dir, limit_bytes)) < 0)
		goto fail;
	snprintf(path, sizeof path, "%s/cgroup.procs", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	*procs_fd = fd;
	return 0;
fail:
	rmdir(dir);
	return rc;
}

int spd_cgroups_join(int procs_fd)
{
	/* "0" is the writer itself, in v1 and v2 alike: no getpid() formatting. */
	ssize_t w;

	do
		w = write(procs_fd, "0", 1);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	return w == 1 ? 0 : -EIO;
}

/* The value of the line "oom_kill N" in TEXT, or -1. */
static long long oom_kill_count(const char *text)
{
	for (const char *line = text; line != NULL && *line != '\0';) {
		const char *nl = strchr(line, '\n');
		if (strncmp(line, "oom_kill ", 9) == 0)
			return strtoll(line + 9, NULL, 10);
		line = nl != NULL ? nl + 1 : NULL;
	}
	return -1;
}

int spd_cgroups_remove(spd_cgroups *cg, uint64_t key, bool *oom_killed)
{
	char dir[PATH_MAX], path[PATH_MAX + 32], buf[SMALL_FILE_MAX];
	long long count = -1;
	ssize_t n;
	int rc;

	*oom_killed = false;
	if ((rc = child_dir(cg, key, dir, sizeof dir)) < 0)
		return rc;
	snprintf(path, sizeof path, "%s/%s", dir,
		 cg->mech == SPD_MEMORY_CGROUP_V2 ? "memory.events" : "memory.oom_control");
	n = read_file(path, buf, sizeof buf);
	if (n >= 0)
		count = oom_kill_count(buf);
	/* Removal failing here (EBUSY: something still in it) is retried at the end
	 * by spd_cgroups_destroy(); the evidence is what matters to the caller. */
	remove_dir(dir);
	if (n < 0)
		return (int)n;
	if (count < 0)
		return -ENOTSUP; /* a kernel without the counter (v1 before 4.13) */
	*oom_killed = count > 0;
	return 0;
}

void spd_cgroups_destroy(spd_cgroups *cg)
{
	DIR *d;

	if (cg == NULL)
		return;
	if (cg->mech != SPD_MEMORY_RLIMIT_AS && (d = opendir(cg->parent)) != NULL) {
		struct dirent *e;
		char path[PATH_MAX + 300];
		while ((e = readdir(d)) != NULL) {
			if (strncmp(e->d_name, "p-", 2) != 0)
				continue;
			snprintf(path, sizeof path, "%s/%s", cg->parent, e->d_name);
			remove_dir(path);
		}
		closedir(d);
		remove_dir(cg->parent);
	}
	free(cg);
}
