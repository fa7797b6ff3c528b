/* Per-process memory cgroups (service/launcher/cgroup.h) on this machine's real
 * /sys/fs/cgroup: create, join, limit, OOM evidence, removal. Runs outside the
 * sandbox (tag no-sandbox: the sandbox mounts /sys/fs/cgroup read-only); where
 * no cgroup is writable the cgroup cases are skipped, saying why, and only the
 * parsing and RLIMIT_AS cases run. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "service/launcher/cgroup.h"

#define MIB (1024u * 1024u)

/* ---- parsing (no cgroup needed) --------------------------------------------- */

static const char mountinfo_hybrid[] =
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static void find_dir_v1_and_v2(void **state)
{
	char out[256];

	(void)state;
	assert_int_equal(spd__cgroup_find_dir(mountinfo_hybrid, "4:memory:/a\n0::/user.slice/x\n", 1,
					      out, sizeof out), 0);
	assert_string_equal(out, "/sys/fs/cgroup/memory");
	assert_int_equal(spd__cgroup_find_dir(mountinfo_hybrid, "4:memory:/a\n0::/user.slice/x\n", 2,
					      out, sizeof out), 0);
	assert_string_equal(out, "/sys/fs/cgroup/unified/user.slice/x");
	/* The root cgroup: the mount point itself, no trailing slash. */
	assert_int_equal(spd__cgroup_find_dir(mountinfo_hybrid, "0::/\n", 2, out, sizeof out), 0);
	assert_string_equal(out, "/sys/fs/cgroup/unified");
	/* A v2 path outside the mount's subtree (another cgroup namespace). */
	assert_int_equal(spd__cgroup_find_dir(mountinfo_hybrid, "0::/../sibling\n", 2, out, sizeof out),
			 -ENOENT);
	assert_int_equal(spd__cgroup_find_dir(mountinfo_hybrid, "4:memory:/a\n", 2, out, sizeof out),
			 -ENOENT);
	assert_int_equal(spd__cgroup_find_dir(mountinfo_hybrid, "0::/x\n", 2, out, 8), -ENAMETOOLONG);
}

static void find_dir_pure_v2_with_subtree_and_escapes(void **state)
{
	static const char mi[] =
		"25 1 0:22 /kubepods/pod1 /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
		"26 1 0:23 / /mnt/with\\040space rw - cgroup cgroup rw,cpu,memory\n";
	char out[256];

	(void)state;
	assert_int_equal(spd__cgroup_find_dir(mi, "0::/kubepods/pod1/c1\n", 2, out, sizeof out), 0);
	assert_string_equal(out, "/sys/fs/cgroup/c1");
	assert_int_equal(spd__cgroup_find_dir(mi, "0::/kubepods/pod2\n", 2, out, sizeof out), -ENOENT);
	assert_int_equal(spd__cgroup_find_dir(mi, "", 1, out, sizeof out), 0);
	assert_string_equal(out, "/mnt/with space");
	/* No memory hierarchy among the v1 mounts. */
	assert_int_equal(spd__cgroup_find_dir("32 31 0:29 / /c rw - cgroup cgroup rw,cpu\n", "", 1,
					      out, sizeof out),
			 -ENOENT);
}

static void names_and_forced_rlimit(void **state)
{
	spd_cgroups *cg = NULL;
	int fd = 7;
	bool oom = true;

	(void)state;
	assert_string_equal(spd_memory_mechanism_name(SPD_MEMORY_CGROUP_V2), "cgroup_v2");
	assert_string_equal(spd_memory_mechanism_name(SPD_MEMORY_CGROUP_V1), "cgroup_v1");
	assert_string_equal(spd_memory_mechanism_name(SPD_MEMORY_RLIMIT_AS), "rlimit_as");
	assert_int_equal(spd_cgroups_create("bogus", &cg), -EINVAL);
	assert_null(cg);

	assert_int_equal(spd_cgroups_create("rlimit_as", &cg), 0);
	assert_int_equal(spd_cgroups_mechanism(cg), SPD_MEMORY_RLIMIT_AS);
	assert_null(spd_cgroups_parent(cg));
	assert_non_null(strstr(spd_cgroups_reason(cg), "SPAWND_MEMORY_LIMIT_MECHANISM"));
	assert_int_equal(spd_cgroups_add(cg, 1, 32 * MIB, &fd), -ENOTSUP);
	assert_int_equal(fd, -1);
	assert_int_equal(spd_cgroups_remove(cg, 1, &oom), -ENOTSUP);
	assert_false(oom);
	spd_cgroups_destroy(cg);
	spd_cgroups_destroy(NULL);
}

/* ---- on the real hierarchy ----------------------------------------------------- */

static int setup_real(void **state)
{
	spd_cgroups *cg = NULL;

	if (spd_cgroups_create(NULL, &cg) < 0)
		return -1;
	*state = cg;
	return 0;
}

static int teardown_real(void **state)
{
	spd_cgroups *cg = *state;
	char parent[4096] = "";

	if (spd_cgroups_parent(cg) != NULL)
		snprintf(parent, sizeof parent, "%s", spd_cgroups_parent(cg));
	spd_cgroups_destroy(cg);
	/* Nothing is left behind, the parent included. */
	if (parent[0] != '\0' && access(parent, F_OK) == 0) {
		print_error("%s still exists after spd_cgroups_destroy\n", parent);
		return -1;
	}
	return 0;
}

static spd_cgroups *real_or_skip(void **state)
{
	spd_cgroups *cg = *state;

	if (spd_cgroups_mechanism(cg) == SPD_MEMORY_RLIMIT_AS) {
		print_message("[  SKIPPED ] no writable memory cgroup here (%s); run outside the "
			      "sandbox as root to test cgroups\n",
			      spd_cgroups_reason(cg));
		skip();
	}
	return cg;
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Forks a child that joins PROCS_FD, checks that /proc/self/cgroup names
 * p-KEY, then touches ALLOC_MIB MiB and exits 0. Returns its wait status. */
static int run_child(int procs_fd, uint64_t key, size_t alloc_mib)
{
	pid_t pid = fork();
	int status = 0;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		char want[64], buf[4096] = "";
		int fd;
		ssize_t n;

		if (spd_cgroups_join(procs_fd) < 0)
			_exit(10);
		fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
		n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
		if (n <= 0)
			_exit(11);
		buf[n] = '\0';
		snprintf(want, sizeof want, "/p-%llu\n", (unsigned long long)key);
		if (strstr(buf, want) == NULL)
			_exit(12);
		for (size_t i = 0; i < alloc_mib; i++) {
			char *p = malloc(MIB);
			if (p == NULL)
				_exit(13);
			for (size_t j = 0; j < MIB; j += 4096)
				p[j] = 1;
		}
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

static void child_dir(spd_cgroups *cg, uint64_t key, char *out, size_t n)
{
	snprintf(out, n, "%s/p-%llu", spd_cgroups_parent(cg), (unsigned long long)key);
}

static void over_the_limit_is_oom_killed(void **state)
{
	spd_cgroups *cg = real_or_skip(state);
	char dir[4096], path[4200], buf[64];
	int fd = -1, st, rfd;
	bool oom = false;
	ssize_t n;

	assert_int_equal(spd_cgroups_add(cg, 101, 32 * MIB, &fd), 0);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	child_dir(cg, 101, dir, sizeof dir);
	assert_true(exists(dir));
	/* The limit is set. */
	snprintf(path, sizeof path, "%s/%s", dir,
		 spd_cgroups_mechanism(cg) == SPD_MEMORY_CGROUP_V2 ? "memory.max"
								   : "memory.limit_in_bytes");
	rfd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(rfd >= 0);
	n = read(rfd, buf, sizeof buf - 1);
	close(rfd);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_int_equal(strtoull(buf, NULL, 10), 32 * MIB);

	st = run_child(fd, 101, 512);
	close(fd);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	assert_int_equal(spd_cgroups_remove(cg, 101, &oom), 0);
	assert_true(oom);
	assert_false(exists(dir));
}

static void under_the_limit_is_no_oom(void **state)
{
	spd_cgroups *cg = real_or_skip(state);
	char dir[4096];
	int fd = -1, st;
	bool oom = true;

	assert_int_equal(spd_cgroups_add(cg, 102, 32 * MIB, &fd), 0);
	child_dir(cg, 102, dir, sizeof dir);
	st = run_child(fd, 102, 4);
	close(fd);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0); /* it joined: its cgroup is p-102 */
	assert_int_equal(spd_cgroups_remove(cg, 102, &oom), 0);
	assert_false(oom);
	assert_false(exists(dir));
}

/* A SIGKILL from elsewhere is not an OOM kill: the counter stays 0. */
static void sigkill_is_not_oom(void **state)
{
	spd_cgroups *cg = real_or_skip(state);
	int fd = -1, st;
	bool oom = true;
	pid_t pid;

	assert_int_equal(spd_cgroups_add(cg, 103, 32 * MIB, &fd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (spd_cgroups_join(fd) < 0)
			_exit(10);
		raise(SIGKILL);
		_exit(11);
	}
	close(fd);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(spd_cgroups_remove(cg, 103, &oom), 0);
	assert_false(oom);
}

static void destroy_removes_leftovers(void **state)
{
	spd_cgroups *cg = real_or_skip(state);
	char dir[4096];
	int fd = -1;

	assert_int_equal(spd_cgroups_add(cg, 104, 64 * MIB, &fd), 0);
	close(fd);
	child_dir(cg, 104, dir, sizeof dir);
	assert_true(exists(dir));
	/* Same key again while it exists: refused, the first left intact. */
	assert_int_equal(spd_cgroups_add(cg, 104, 64 * MIB, &fd), -EEXIST);
	assert_int_equal(fd, -1);
	assert_true(exists(dir));
	/* teardown_real() destroys CG and checks that the parent is gone: it can
	 * only be if p-104 was removed first. */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(find_dir_v1_and_v2),
		cmocka_unit_test(find_dir_pure_v2_with_subtree_and_escapes),
		cmocka_unit_test(names_and_forced_rlimit),
		cmocka_unit_test_setup_teardown(over_the_limit_is_oom_killed, setup_real, teardown_real),
		cmocka_unit_test_setup_teardown(under_the_limit_is_no_oom, setup_real, teardown_real),
		cmocka_unit_test_setup_teardown(sigkill_is_not_oom, setup_real, teardown_real),
		cmocka_unit_test_setup_teardown(destroy_removes_leftovers, setup_real, teardown_real),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
