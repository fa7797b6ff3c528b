/* The launcher (launcher/launcher.h) as the front sees it: a real launcher
 * forked with spd_launcher_fork(), driven over its socket with the wire
 * encoders, running //tests/helper:helper as exec targets and the builtin
 * `echo` as a function target.
 *
 * Every wait has a deadline: frames are awaited with poll(), process states by
 * polling /proc until a deadline. Nothing sleeps and hopes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "service/common/clock.h"
#include "service/common/log.h"
#include "service/config/config.h"
#include "service/launcher/launcher.h"
#include "service/wire/boot.h"
#include "service/wire/messages.h"
#include "service/wire/wire.h"

#define FRAME_DEADLINE_MS 15000
#define PROC_DEADLINE_MS 10000
#define MS 1000000LL

static spd_config *cfg;
static char helper[PATH_MAX];
/* Open without O_CLOEXEC in the test, hence in every launcher: no child may get it. */
static int leaky_fd = -1;

/* ---- configuration ------------------------------------------------------------ */

static const char yaml_fmt[] =
	"listen: [\"127.0.0.1:0\"]\n"
	"log: {format: text, level: error}\n"
	"defaults: {destroy_grace_period: 10s}\n"
	"targets:\n"
	"  helper: {exec: [\"%s\"], allow_args: true}\n"
	"  missing: {exec: [\"/nonexistent/spawnd-test/helper\"]}\n"
	"  echo: {function: builtin:echo}\n"
	"  bad: {function: builtin:nosuch}\n";

static int group_setup(void **state)
{
	const char *srcdir = getenv("TEST_SRCDIR");
	char path[PATH_MAX], yaml[sizeof yaml_fmt + PATH_MAX], err[SPD_CONFIG_ERR_MAX] = "";
	int rc;

	(void)state;
	spd_log_setup(SPD_LOG_ERROR, 0, "launcher_test");
	leaky_fd = open("/dev/null", O_RDONLY);
	if (leaky_fd < 3) {
		print_error("cannot open /dev/null above stdio\n");
		return -1;
	}
	if (srcdir == NULL) {
		print_error("TEST_SRCDIR is not set: run under bazel test\n");
		return -1;
	}
	/* spd_launcher_fork execs spawnd-worker: not next to this test. */
	snprintf(path, sizeof path, "%s/spawnd/service/front/spawnd-worker", srcdir);
	if (realpath(path, helper) == NULL || access(helper, X_OK) != 0 ||
	    setenv("SPAWND_WORKER", helper, 1) < 0) {
		print_error("spawnd-worker not usable at %s\n", path);
		return -1;
	}
	snprintf(path, sizeof path, "%s/spawnd/tests/helper/helper", srcdir);
	if (realpath(path, helper) == NULL || access(helper, X_OK) != 0 ||
	    strpbrk(helper, "\"\\") != NULL) {
		print_error("helper not usable at %s\n", path);
		return -1;
	}
	snprintf(yaml, sizeof yaml, yaml_fmt, helper);
	rc = spd_config_load_string(yaml, strlen(yaml), "launcher_test.yaml", NULL, &cfg, err);
	if (rc != 0) {
		print_error("config: %s\n", err);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	spd_config_destroy(cfg);
	close(leaky_fd);
	return 0;
}

/* ---- one launcher per test --------------------------------------------------------- */

typedef struct lt {
	pid_t pid;           /* 0 once reaped */
	int fd;              /* -1 once closed */
	uint64_t next_key;
	spd_launcher_hello hello;
	/* OUTPUT frames seen for out_key: bytes per stream (1 stdout, 2 stderr). */
	uint64_t out_key;
	uint64_t out_bytes[3];
	/* IDLE frames seen: the last count for each of the first target ids. */
	uint32_t idle[64];
	bool idle_seen[64];
} lt;

static int64_t now_ns(void)
{
	return spd_clock_mono_ns();
}

static void nap_ms(int ms)
{
	struct timespec ts = {0, ms * 1000000L};

	nanosleep(&ts, NULL);
}

/* One frame within TIMEOUT_MS: 1, 0 on EOF, -ETIMEDOUT, or -errno. */
static void note_output(lt *l, uint64_t key, const uint8_t *body, size_t len);

static int recv_within(lt *l, int timeout_ms, spd_wire_hdr *hdr, uint8_t **body, size_t *len)
{
	int64_t deadline = now_ns() + timeout_ms * MS;

	*body = NULL;
	*len = 0;
	for (;;) {
		struct pollfd p = {.fd = l->fd, .events = POLLIN};
		int64_t left = (deadline - now_ns()) / MS;
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		n = spd_wire_recv(l->fd, hdr, body, len);
		/* Pools change as they like (prestart): counts are noted, not
		 * expected in order. */
		if (n == 1 && hdr->type == SPD_WIRE_IDLE) {
			spd_idle_msg m;
			assert_int_equal(spd_idle_msg_decode(&m, *body, *len), 0);
			assert_true(hdr->key < 64);
			l->idle[hdr->key] = m.count;
			l->idle_seen[hdr->key] = true;
			free(*body);
			*body = NULL;
			continue;
		}
		if (n == 1 && hdr->type == SPD_WIRE_OUTPUT) {
			note_output(l, hdr->key, *body, *len);
			free(*body);
			*body = NULL;
			continue;
		}
		return n;
	}
}

/* Output chunks are checked as they come (contiguous offsets per stream) and
 * counted, so that tests can wait for the frames they care about. */
static void note_output(lt *l, uint64_t key, const uint8_t *body, size_t len)
{
	spd_output_msg m;
	uint32_t stream;
	uint64_t offset;
	size_t n;

	assert_int_equal(spd_output_msg_decode(&m, body, len), 0);
	stream = m.stream;
	offset = m.offset;
	n = m.len;
	assert_true(stream == 1 || stream == 2);
	if (key != l->out_key) {
		l->out_key = key;
		memset(l->out_bytes, 0, sizeof l->out_bytes);
	}
	if ((uint64_t)offset != l->out_bytes[stream])
		fail_msg("OUTPUT of stream %u at offset %lld, want %llu", stream, (long long)offset,
			 (unsigned long long)l->out_bytes[stream]);
	assert_true(n > 0);
	l->out_bytes[stream] += n;
}

static const char *frame_name(uint32_t type)
{
	switch (type) {
	case SPD_WIRE_HELLO: return "HELLO";
	case SPD_WIRE_START: return "START";
	case SPD_WIRE_DESTROY: return "DESTROY";
	case SPD_WIRE_STARTED: return "STARTED";
	case SPD_WIRE_EXITED: return "EXITED";
	case SPD_WIRE_RELOADED: return "RELOADED";
	default: return "?";
	}
}

/* The next frame must be TYPE for KEY. Returns its body (caller frees). */
static uint8_t *expect_frame(lt *l, uint32_t type, uint64_t key, size_t *len)
{
	spd_wire_hdr hdr;
	uint8_t *body = NULL;
	int rc = recv_within(l, FRAME_DEADLINE_MS, &hdr, &body, len);

	if (rc != 1)
		fail_msg("waiting for %s of key %" PRIu64 ": %s", frame_name(type), key,
			 rc == 0 ? "EOF" : strerror(-rc));
	if (hdr.type != type || hdr.key != key) {
		free(body);
		fail_msg("got %s of key %" PRIu64 ", want %s of key %" PRIu64, frame_name(hdr.type),
			 hdr.key, frame_name(type), key);
	}
	return body;
}

static int launcher_setup(void **state)
{
	lt *l = calloc(1, sizeof *l);
	uint8_t *body;
	size_t len;

	assert_non_null(l);
	*state = l;
	assert_int_equal(spd_launcher_fork(cfg, &l->pid, &l->fd), 0);
	assert_true(l->pid > 0);
	/* HELLO comes first, before anything is asked. */
	body = expect_frame(l, SPD_WIRE_HELLO, 0, &len);
	assert_int_equal(spd_launcher_hello_decode(&l->hello, body, len), 0);
	free(body);
	return 0;
}

/* Waits for the launcher to exit, within a deadline; returns its status. */
static int wait_launcher(lt *l, int timeout_ms)
{
	int64_t deadline = now_ns() + timeout_ms * MS;
	int status = 0;

	for (;;) {
		pid_t r = waitpid(l->pid, &status, WNOHANG);
		if (r == l->pid) {
			l->pid = 0;
			return status;
		}
		if (r < 0 && errno != EINTR)
			fail_msg("waitpid: %s", strerror(errno));
		if (now_ns() > deadline) {
			kill(l->pid, SIGKILL);
			waitpid(l->pid, &status, 0);
			l->pid = 0;
			fail_msg("the launcher did not exit within %d ms of EOF", timeout_ms);
		}
		nap_ms(5);
	}
}

static int launcher_teardown(void **state)
{
	lt *l = *state;

	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	if (l->pid > 0) {
		int64_t deadline = now_ns() + PROC_DEADLINE_MS * MS;
		int status;
		while (waitpid(l->pid, &status, WNOHANG) == 0 && now_ns() < deadline)
			nap_ms(5);
		if (kill(l->pid, 0) == 0) {
			kill(l->pid, SIGKILL);
			waitpid(l->pid, &status, 0);
		}
	}
	spd_launcher_hello_release(&l->hello);
	free(l);
	return 0;
}

/* ---- talking to it -------------------------------------------------------------------- */

/* The id HELLO gave TARGET (0, unknown to the launcher, if none). */
static uint32_t target_id(const lt *l, const char *target)
{
	for (size_t i = 0; i < l->hello.count; i++)
		if (strcmp(l->hello.names[i], target) == 0)
			return l->hello.ids[i];
	return 0;
}

/* START of TARGET's version ID. */
static uint64_t start_req_v(lt *l, const char *target, uint32_t tid, const char *const *args,
			    uint32_t argc, const void *input, size_t input_len, int64_t timeout_ms)
{
	char *argv[8] = {NULL};
	char *labels[] = {NULL};
	char id[32];
	spd_start_req req;
	spd_wbuf b = SPD_WBUF_INIT;
	uint64_t key = ++l->next_key;

	assert_true(argc < 8);
	for (uint32_t i = 0; i < argc; i++)
		argv[i] = (char *)args[i];
	snprintf(id, sizeof id, "test-%" PRIu64, key);
	req = (spd_start_req){
		.process_id = id,
		.target = (char *)target,
		.target_id = tid,
		.argv = argv,
		.argc = argc,
		.input = (uint8_t *)input,
		.input_len = input_len,
		.labels = labels,
		.label_count = 0,
		.grace_ms = -1,
		.timeout_ms = timeout_ms,
	};
	assert_int_equal(spd_start_req_encode(&req, &b), 0);
	assert_int_equal(spd_wire_send(l->fd, SPD_WIRE_START, key, &b), 0);
	spd_wbuf_release(&b);
	return key;
}

/* START of TARGET's version in HELLO. */
static uint64_t start_req(lt *l, const char *target, const char *const *args, uint32_t argc,
			  const void *input, size_t input_len, int64_t timeout_ms)
{
	return start_req_v(l, target, target_id(l, target), args, argc, input, input_len,
			   timeout_ms);
}

/* Starts the helper in MODE with ARG (may be NULL). */
static uint64_t start_helper(lt *l, const char *mode, const char *arg)
{
	const char *args[] = {mode, arg};

	return start_req(l, "helper", args, arg != NULL ? 2 : 1, NULL, 0, 0);
}

static pid_t expect_started(lt *l, uint64_t key)
{
	size_t len;
	uint8_t *body = expect_frame(l, SPD_WIRE_STARTED, key, &len);
	spd_started_msg m;
	pid_t pid;

	assert_int_equal(spd_started_msg_decode(&m, body, len), 0);
	pid = m.pid;
	assert_true(m.started_ns > 0);
	free(body);
	assert_true(pid > 0);
	return pid;
}

static void expect_exited(lt *l, uint64_t key, spd_exit_report *rep)
{
	size_t len;
	uint8_t *body = expect_frame(l, SPD_WIRE_EXITED, key, &len);

	assert_int_equal(spd_exit_report_decode(rep, body, len), 0);
	free(body);
}

static void send_destroy(lt *l, uint64_t key, int64_t grace_ms)
{
	spd_destroy_msg m = {.grace_ms = grace_ms};
	spd_wbuf b = SPD_WBUF_INIT;

	assert_int_equal(spd_destroy_msg_encode(&m, &b), 0);
	assert_int_equal(spd_wire_send(l->fd, SPD_WIRE_DESTROY, key, &b), 0);
	spd_wbuf_release(&b);
}

/* Runs the helper to its end; returns the pid STARTED gave. */
static pid_t run_helper(lt *l, const char *mode, const char *arg, spd_exit_report *rep)
{
	uint64_t key = start_helper(l, mode, arg);
	pid_t pid = expect_started(l, key);

	expect_exited(l, key, rep);
	assert_int_equal(rep->pid, pid);
	return pid;
}

/* ---- /proc ------------------------------------------------------------------------------ */

typedef struct proc_stat {
	pid_t pid, ppid, pgid, sid;
	char state;
} proc_stat;

/* Reads /proc/PID/stat; false if the process is gone. */
static bool read_stat(pid_t pid, proc_stat *ps)
{
	char path[64], buf[1024];
	FILE *f;
	size_t n;
	char *p;
	int ppid, pgid, sid;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "PID (COMM) S PPID PGRP SESSION ...": COMM may hold anything, even ')'. */
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 1, " %c %d %d %d", &ps->state, &ppid, &pgid, &sid) != 4)
		return false;
	ps->pid = pid;
	ps->ppid = ppid;
	ps->pgid = pgid;
	ps->sid = sid;
	return true;
}

static bool alive(pid_t pid)
{
	proc_stat ps;

	return read_stat(pid, &ps);
}

/* Every process visible in /proc, into OUT (at most MAX); returns the count. */
static size_t list_procs(proc_stat *out, size_t max)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL && n < max) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end != '\0' || pid <= 0)
			continue;
		if (read_stat((pid_t)pid, &out[n]))
			n++;
	}
	closedir(d);
	return n;
}

#define MAX_PROCS 4096

/* Processes descending from this test other than the launcher (their pids into
 * LEFT, at most 16). Walks parent links, so it holds with or without Bazel's PID
 * namespace. */
static size_t strays(const lt *l, pid_t *left)
{
	static proc_stat ps[MAX_PROCS];
	size_t n = list_procs(ps, MAX_PROCS), found = 0;
	pid_t self = getpid();

	for (size_t i = 0; i < n; i++) {
		pid_t p = ps[i].ppid;
		bool ours = false;
		if (ps[i].pid == self || ps[i].pid == l->pid)
			continue;
		for (int depth = 0; depth < 64 && p > 1 && !ours; depth++) {
			if (p == self) {
				ours = true;
				break;
			}
			size_t j;
			for (j = 0; j < n && ps[j].pid != p; j++)
				;
			p = j < n ? ps[j].ppid : 0;
		}
		if (ours && found < 16)
			left[found++] = ps[i].pid;
	}
	return found;
}

/* Waits, within the deadline, until nothing but the test and the launcher is left. */
static void expect_no_strays(const lt *l)
{
	int64_t deadline = now_ns() + PROC_DEADLINE_MS * MS;
	pid_t left[16];
	size_t n;

	while ((n = strays(l, left)) > 0 && now_ns() < deadline)
		nap_ms(10);
	if (n > 0) {
		proc_stat ps;
		read_stat(left[0], &ps);
		fail_msg("%zu processes left, e.g. pid %d (state %c, ppid %d)", n, (int)left[0],
			 ps.state, (int)ps.ppid);
	}
}

/* The child of PARENT that is its own session leader, within the deadline. */
static pid_t wait_setsid_child(pid_t parent)
{
	static proc_stat ps[MAX_PROCS];
	int64_t deadline = now_ns() + PROC_DEADLINE_MS * MS;

	while (now_ns() < deadline) {
		size_t n = list_procs(ps, MAX_PROCS);
		for (size_t i = 0; i < n; i++)
			if (ps[i].ppid == parent && ps[i].sid == ps[i].pid)
				return ps[i].pid;
		nap_ms(10);
	}
	fail_msg("no setsid() grandchild of %d appeared", (int)parent);
	return 0;
}

/* Waits until PID ignores SIGTERM (its SigIgn mask in /proc/PID/status). */
static void wait_ignoring_term(pid_t pid)
{
	int64_t deadline = now_ns() + PROC_DEADLINE_MS * MS;
	char path[64], line[256];

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	while (now_ns() < deadline) {
		FILE *f = fopen(path, "re");
		uint64_t mask = 0;
		assert_non_null(f);
		while (fgets(line, sizeof line, f) != NULL)
			if (sscanf(line, "SigIgn: %" SCNx64, &mask) == 1)
				break;
		fclose(f);
		if (mask & (1ull << (SIGTERM - 1)))
			return;
		nap_ms(5);
	}
	fail_msg("pid %d never ignored SIGTERM", (int)pid);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void hello_first(void **state)
{
	lt *l = *state;

	assert_int_equal(l->hello.count, 4);
	assert_string_equal(l->hello.names[0], "helper");
	assert_null(l->hello.errors[0]);
	assert_string_equal(l->hello.names[1], "missing");
	assert_null(l->hello.errors[1]); /* exec targets are checked at exec time */
	assert_string_equal(l->hello.names[2], "echo");
	assert_null(l->hello.errors[2]);
	assert_string_equal(l->hello.names[3], "bad");
	assert_non_null(l->hello.errors[3]);
	assert_non_null(strstr(l->hello.errors[3], "nosuch"));
}

static void exit_codes(void **state)
{
	lt *l = *state;
	spd_exit_report rep;

	run_helper(l, "exit", "0", &rep);
	assert_true(WIFEXITED(rep.wait_status));
	assert_int_equal(WEXITSTATUS(rep.wait_status), 0);
	assert_int_equal(rep.flags, 0);
	assert_true(rep.ended_ns >= rep.started_ns);
	assert_true(rep.started_ns > 0);
	assert_true(rep.maxrss_bytes > 0);
	spd_exit_report_release(&rep);

	run_helper(l, "exit", "3", &rep);
	assert_true(WIFEXITED(rep.wait_status));
	assert_int_equal(WEXITSTATUS(rep.wait_status), 3);
	assert_int_equal(rep.flags, 0);
	spd_exit_report_release(&rep);
}

/* A SIGKILL from elsewhere is reported without SENT_KILL: the front can then
 * flag it as a suspected OOM, truthfully. */
static void killed_by_a_signal_spawnd_did_not_send(void **state)
{
	lt *l = *state;
	spd_exit_report rep;

	run_helper(l, "signal", "KILL", &rep);
	assert_true(WIFSIGNALED(rep.wait_status));
	assert_int_equal(WTERMSIG(rep.wait_status), SIGKILL);
	assert_int_equal(rep.flags & (SPD_EXIT_SENT_KILL | SPD_EXIT_SENT_STOP), 0);
	spd_exit_report_release(&rep);

	run_helper(l, "signal", "USR1", &rep);
	assert_true(WIFSIGNALED(rep.wait_status));
	assert_int_equal(WTERMSIG(rep.wait_status), SIGUSR1);
	spd_exit_report_release(&rep);
}

static void exec_failure_is_exited_only(void **state)
{
	lt *l = *state;
	spd_exit_report rep;
	uint64_t key = start_req(l, "missing", NULL, 0, NULL, 0, 0);

	/* No STARTED: the very next frame is the EXITED. */
	expect_exited(l, key, &rep);
	assert_true(rep.flags & SPD_EXIT_LAUNCH_FAILED);
	assert_int_equal(rep.launch_errno, ENOENT);
	assert_non_null(rep.launch_stage);
	assert_string_equal(rep.launch_stage, "exec");
	assert_int_equal(rep.pid, 0);
	spd_exit_report_release(&rep);

	/* An unusable function target, likewise. */
	key = start_req(l, "bad", NULL, 0, NULL, 0, 0);
	expect_exited(l, key, &rep);
	assert_true(rep.flags & SPD_EXIT_LAUNCH_FAILED);
	assert_int_equal(rep.pid, 0);
	spd_exit_report_release(&rep);

	/* And one it does not know. */
	key = start_req(l, "nosuch", NULL, 0, NULL, 0, 0);
	expect_exited(l, key, &rep);
	assert_true(rep.flags & SPD_EXIT_LAUNCH_FAILED);
	spd_exit_report_release(&rep);
}

/* A start that fails for want of descriptors names the step that failed
 * ("pipe"), not a fork that never happened. The launcher's limit is set from
 * outside (prlimit) to what it has open now. */
static void launch_error_names_the_failed_step(void **state)
{
	lt *l = *state;
	spd_exit_report rep;
	struct rlimit saved, tight;
	char path[64];
	struct dirent *de;
	DIR *d;
	rlim_t open_now = 0;
	uint64_t key;

	snprintf(path, sizeof path, "/proc/%d/fd", (int)l->pid);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		open_now += de->d_name[0] != '.';
	closedir(d);
	assert_int_equal(prlimit(l->pid, RLIMIT_NOFILE, NULL, &saved), 0);
	/* Room for one descriptor: the first pipe (two) cannot be made. Only the
	 * soft limit: raising a hard one back needs CAP_SYS_RESOURCE. */
	tight.rlim_cur = open_now + 1;
	tight.rlim_max = saved.rlim_max;
	assert_int_equal(prlimit(l->pid, RLIMIT_NOFILE, &tight, NULL), 0);
	key = start_req(l, "helper", NULL, 0, NULL, 0, 0);
	expect_exited(l, key, &rep);
	assert_int_equal(prlimit(l->pid, RLIMIT_NOFILE, &saved, NULL), 0);
	assert_true(rep.flags & SPD_EXIT_LAUNCH_FAILED);
	assert_non_null(rep.launch_stage);
	assert_string_equal(rep.launch_stage, "pipe");
	assert_int_equal(rep.launch_errno, EMFILE);
	assert_int_equal(rep.pid, 0);
	spd_exit_report_release(&rep);
}

static void only_stdio_is_open(void **state)
{
	lt *l = *state;
	spd_exit_report rep;

	run_helper(l, "fds", NULL, &rep);
	assert_int_equal(WEXITSTATUS(rep.wait_status), 0);
	assert_int_equal(rep.stdout_len, 6);
	assert_memory_equal(rep.stdout_tail, "0 1 2\n", 6);
	spd_exit_report_release(&rep);
}

static void own_process_group(void **state)
{
	lt *l = *state;
	spd_exit_report rep;
	char out[64] = "";
	int pid = 0, pgid = -1, sid = -1;
	pid_t started = run_helper(l, "pgid", NULL, &rep);

	assert_true(rep.stdout_len > 0 && rep.stdout_len < sizeof out);
	memcpy(out, rep.stdout_tail, rep.stdout_len);
	assert_int_equal(sscanf(out, "%d %d %d", &pid, &pgid, &sid), 3);
	assert_int_equal(pid, started);
	assert_int_equal(pgid, pid);
	spd_exit_report_release(&rep);
}

static void stdin_is_the_input(void **state)
{
	lt *l = *state;
	size_t n = 100000; /* more than one datagram: the START goes as a memfd */
	uint8_t *input = malloc(n);
	const char *args[] = {"cat"};
	spd_exit_report rep;
	uint64_t key;

	assert_non_null(input);
	for (size_t i = 0; i < n; i++)
		input[i] = (uint8_t)(i * 7 + (i >> 9));
	key = start_req(l, "helper", args, 1, input, n, 0);
	expect_started(l, key);
	expect_exited(l, key, &rep);
	assert_int_equal(WEXITSTATUS(rep.wait_status), 0);
	assert_int_equal(rep.stdout_total, (int64_t)n);
	assert_int_equal(rep.stdout_len, n);
	assert_memory_equal(rep.stdout_tail, input, n);
	spd_exit_report_release(&rep);
	free(input);
}

static void large_output_is_drained(void **state)
{
	lt *l = *state;
	spd_exit_report rep;

	run_helper(l, "write-stdout", "200000", &rep);
	assert_true(WIFEXITED(rep.wait_status));
	assert_int_equal(WEXITSTATUS(rep.wait_status), 0);
	assert_int_equal(rep.stdout_total, 200000);
	assert_int_equal(rep.stdout_len, 200000);
	/* Every byte was also forwarded live, in order, before the EXITED. */
	assert_int_equal(l->out_bytes[1], 200000);
	assert_int_equal(l->out_bytes[2], 0);
	for (size_t i = 0; i < rep.stdout_len; i++)
		if (rep.stdout_tail[i] != 'a' + i % 26)
			fail_msg("stdout byte %zu is %d", i, rep.stdout_tail[i]);
	assert_int_equal(rep.stderr_total, 0);
	spd_exit_report_release(&rep);

	run_helper(l, "write-stderr", "3000", &rep);
	assert_int_equal(rep.stderr_total, 3000);
	assert_int_equal(rep.stderr_len, 3000);
	assert_int_equal(rep.stdout_total, 0);
	spd_exit_report_release(&rep);
}

static void destroy_honoured_sigterm(void **state)
{
	lt *l = *state;
	spd_exit_report rep;
	uint64_t key = start_helper(l, "sleep", "100");

	expect_started(l, key);
	send_destroy(l, key, 5000);
	expect_exited(l, key, &rep);
	assert_true(WIFSIGNALED(rep.wait_status));
	assert_int_equal(WTERMSIG(rep.wait_status), SIGTERM);
	assert_true(rep.flags & SPD_EXIT_SENT_STOP);
	assert_false(rep.flags & SPD_EXIT_SENT_KILL);
	spd_exit_report_release(&rep);
}

static void destroy_escalates_to_sigkill(void **state)
{
	lt *l = *state;
	spd_exit_report rep;
	uint64_t key = start_helper(l, "ignore-term", "100");
	pid_t pid = expect_started(l, key);
	int64_t t0, t1;

	wait_ignoring_term(pid);
	t0 = now_ns();
	send_destroy(l, key, 200);
	expect_exited(l, key, &rep);
	t1 = now_ns();
	assert_true(WIFSIGNALED(rep.wait_status));
	assert_int_equal(WTERMSIG(rep.wait_status), SIGKILL);
	assert_true(rep.flags & SPD_EXIT_SENT_STOP);
	assert_true(rep.flags & SPD_EXIT_SENT_KILL);
	if (t1 - t0 < 200 * MS)
		fail_msg("SIGKILL after %lld ms, before the 200 ms grace", (long long)((t1 - t0) / MS));
	spd_exit_report_release(&rep);
}

static void destroy_with_zero_grace_kills_at_once(void **state)
{
	lt *l = *state;
	uint64_t keys[3];
	bool exited[3] = {false, false, false};
	size_t left = 3;

	for (int i = 0; i < 3; i++) {
		keys[i] = start_helper(l, "ignore-term", "100");
		wait_ignoring_term(expect_started(l, keys[i]));
	}
	for (int i = 2; i >= 0; i--)
		send_destroy(l, keys[i], 0);
	/* Order between processes is not promised: collect. */
	while (left > 0) {
		spd_wire_hdr hdr;
		uint8_t *body;
		size_t len;
		spd_exit_report rep;
		int rc = recv_within(l, FRAME_DEADLINE_MS, &hdr, &body, &len);
		int i;

		assert_int_equal(rc, 1);
		assert_int_equal(hdr.type, SPD_WIRE_EXITED);
		for (i = 0; i < 3 && keys[i] != hdr.key; i++)
			;
		assert_true(i < 3);
		assert_false(exited[i]);
		exited[i] = true;
		left--;
		assert_int_equal(spd_exit_report_decode(&rep, body, len), 0);
		free(body);
		assert_int_equal(WTERMSIG(rep.wait_status), SIGKILL);
		assert_true(rep.flags & SPD_EXIT_SENT_KILL);
		spd_exit_report_release(&rep);
	}
}

static void destroy_of_unknown_key_is_ignored(void **state)
{
	lt *l = *state;
	spd_exit_report rep;

	send_destroy(l, 9999, 0);
	run_helper(l, "exit", "0", &rep);
	assert_int_equal(WEXITSTATUS(rep.wait_status), 0);
	spd_exit_report_release(&rep);
}

static void timeout_destroys(void **state)
{
	lt *l = *state;
	const char *args[] = {"sleep", "100"};
	spd_exit_report rep;
	int64_t t0 = now_ns();
	uint64_t key = start_req(l, "helper", args, 2, NULL, 0, 200);

	expect_started(l, key);
	expect_exited(l, key, &rep);
	assert_true(now_ns() - t0 >= 200 * MS);
	assert_true(rep.flags & SPD_EXIT_TIMED_OUT);
	assert_true(rep.flags & SPD_EXIT_SENT_STOP);
	assert_true(WIFSIGNALED(rep.wait_status));
	assert_int_equal(WTERMSIG(rep.wait_status), SIGTERM);
	spd_exit_report_release(&rep);
}

static void destroy_kills_a_setsid_grandchild(void **state)
{
	lt *l = *state;
	spd_exit_report rep;
	uint64_t key = start_helper(l, "grandchild", NULL);
	pid_t leader = expect_started(l, key);
	pid_t grandchild = wait_setsid_child(leader);

	send_destroy(l, key, 1000);
	expect_exited(l, key, &rep);
	assert_true(WIFSIGNALED(rep.wait_status));
	assert_int_equal(WTERMSIG(rep.wait_status), SIGTERM);
	spd_exit_report_release(&rep);
	/* EXITED comes only once no stray is left (launcher.h): gone already. */
	assert_false(alive(leader));
	if (alive(grandchild))
		fail_msg("grandchild %d outlived the EXITED frame", (int)grandchild);
	expect_no_strays(l);
}

static void function_target_result(void **state)
{
	lt *l = *state;
	const char *args[] = {"a", "b"};
	spd_exit_report rep;
	uint64_t key = start_req(l, "echo", NULL, 0, "ping", 4, 0);

	expect_started(l, key);
	expect_exited(l, key, &rep);
	assert_true(WIFEXITED(rep.wait_status));
	assert_int_equal(WEXITSTATUS(rep.wait_status), 0);
	assert_int_equal(rep.flags, 0);
	assert_int_equal(rep.result_len, 4);
	assert_memory_equal(rep.result, "ping", 4);
	spd_exit_report_release(&rep);

	key = start_req(l, "echo", args, 2, NULL, 0, 0);
	expect_started(l, key);
	expect_exited(l, key, &rep);
	assert_int_equal(rep.result_len, 3);
	assert_memory_equal(rep.result, "a b", 3);
	spd_exit_report_release(&rep);
}

/* EOF on the socket: the launcher kills every child (and what they forked),
 * reaps them and exits. */
static void closing_the_socket_kills_everything(void **state)
{
	lt *l = *state;
	uint64_t k1 = start_helper(l, "sleep", "100");
	pid_t sleeper = expect_started(l, k1);
	uint64_t k2 = start_helper(l, "grandchild", NULL);
	pid_t leader = expect_started(l, k2);
	pid_t grandchild = wait_setsid_child(leader);
	uint64_t k3 = start_helper(l, "ignore-term", "100");
	pid_t stubborn = expect_started(l, k3);
	int status;

	wait_ignoring_term(stubborn);
	close(l->fd);
	l->fd = -1;
	status = wait_launcher(l, PROC_DEADLINE_MS);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* It reaped them all before exiting. */
	assert_false(alive(sleeper));
	assert_false(alive(leader));
	assert_false(alive(stubborn));
	assert_false(alive(grandchild));
	expect_no_strays(l);
}

/* RELOAD (SIGHUP) adds target versions, and RELOADED says how each was
 * prepared; a START names its version, so the old one still runs what it
 * ran; RETIRE frees a version (a later START of it is an unknown target) and
 * kills its zygote. */
static const char reload_yaml[] =
	"listen: [\"127.0.0.1:0\"]\n"
	"log: {format: text, level: error}\n"
	"targets:\n"
	"  echo: {function: builtin:echo, max_output_bytes: 64KiB}\n"
	"  zecho: {function: builtin:echo, start_method: forkserver, zygote_start: boot}\n"
	"  bad: {function: builtin:nosuch}\n";

static void reload_adds_versions_and_retire_frees_them(void **state)
{
	lt *l = *state;
	char err[SPD_CONFIG_ERR_MAX] = "";
	spd_config *next = NULL;
	uint32_t ids[] = {40, 41, 42};
	spd_launcher_hello h;
	spd_exit_report rep;
	spd_wbuf b = SPD_WBUF_INIT;
	uint8_t *body;
	size_t len;
	uint64_t key;
	pid_t left[16];

	assert_int_equal(spd_config_load_string(reload_yaml, strlen(reload_yaml), "reload.yaml",
						NULL, &next, err), 0);
	assert_int_equal(spd_launcher_boot_encode(next, ids, getpid(), NULL, NULL, NULL, &b), 0);
	spd_config_destroy(next);
	assert_int_equal(spd_wire_send(l->fd, SPD_WIRE_RELOAD, 0, &b), 0);
	spd_wbuf_release(&b);
	body = expect_frame(l, SPD_WIRE_RELOADED, 0, &len);
	assert_int_equal(spd_launcher_hello_decode(&h, body, len), 0);
	free(body);
	assert_int_equal(h.count, 3);
	assert_int_equal(h.ids[0], 40);
	assert_null(h.errors[0]);
	assert_int_equal(h.ids[1], 41);
	assert_null(h.errors[1]);
	assert_int_equal(h.ids[2], 42);
	assert_non_null(h.errors[2]); /* builtin:nosuch */
	spd_launcher_hello_release(&h);

	/* The new version and the old one (HELLO's id) both run. */
	key = start_req_v(l, "echo", 40, NULL, 0, "new", 3, 0);
	expect_started(l, key);
	expect_exited(l, key, &rep);
	assert_int_equal(rep.result_len, 3);
	spd_exit_report_release(&rep);
	key = start_req(l, "echo", NULL, 0, "old", 3, 0);
	expect_started(l, key);
	expect_exited(l, key, &rep);
	assert_int_equal(rep.flags, 0);
	spd_exit_report_release(&rep);
	key = start_req_v(l, "zecho", 41, NULL, 0, "fork", 4, 0);
	expect_started(l, key);
	expect_exited(l, key, &rep);
	assert_int_equal(rep.result_len, 4);
	spd_exit_report_release(&rep);
	/* zecho's zygote is the one process left below the launcher. */
	assert_int_equal(strays(l, left), 1);

	/* Retired: the old echo is unknown now, and zecho's zygote goes. */
	b = (spd_wbuf)SPD_WBUF_INIT;
	assert_int_equal(spd_wire_send(l->fd, SPD_WIRE_RETIRE, target_id(l, "echo"), &b), 0);
	assert_int_equal(spd_wire_send(l->fd, SPD_WIRE_RETIRE, 41, &b), 0);
	key = start_req(l, "echo", NULL, 0, "old", 3, 0);
	expect_exited(l, key, &rep);
	assert_true(rep.flags & SPD_EXIT_LAUNCH_FAILED);
	assert_string_equal(rep.launch_message, "unknown target");
	spd_exit_report_release(&rep);
	expect_no_strays(l);
	/* A name given with another version's id is unknown too. */
	key = start_req_v(l, "zecho", 40, NULL, 0, NULL, 0, 0);
	expect_exited(l, key, &rep);
	assert_true(rep.flags & SPD_EXIT_LAUNCH_FAILED);
	spd_exit_report_release(&rep);
}

/* Pre-started children (SPEC §12): a prestart target's pool is forked ahead
 * (by the launcher for fork, by its zygote for forkserver), named i:TARGET,
 * each in its own group; a START runs in one of them (its pid was idle), a
 * large input gets through the request pipe, the pool is refilled and the
 * front hears the counts (IDLE); STALE kills a pool and makes no more. */
static const char prestart_yaml[] =
	"listen: [\"127.0.0.1:0\"]\n"
	"log: {format: text, level: error}\n"
	"max_idle: 5\n"
	"targets:\n"
	"  pecho: {function: builtin:echo, prestart: 2}\n"
	"  zpecho: {function: builtin:echo, start_method: forkserver, prestart: 3}\n";

/* Pids of live processes below the launcher whose comm is COMM. */
static size_t by_comm(const lt *l, const char *comm, pid_t *out, size_t max)
{
	pid_t left[MAX_PROCS];
	size_t n = strays(l, left), k = 0;

	for (size_t i = 0; i < n && k < max; i++) {
		char path[64], name[64] = "";
		FILE *f;
		proc_stat ps;
		snprintf(path, sizeof path, "/proc/%d/comm", (int)left[i]);
		f = fopen(path, "re");
		if (f == NULL)
			continue;
		if (fgets(name, sizeof name, f) != NULL)
			name[strcspn(name, "\n")] = '\0';
		fclose(f);
		if (strcmp(name, comm) == 0 && read_stat(left[i], &ps) && ps.state != 'Z') {
			assert_int_equal(ps.pgid, left[i]); /* its own group */
			out[k++] = left[i];
		}
	}
	return k;
}

/* Waits until the launcher said ID has COUNT idle and /proc agrees. */
static void wait_idle(lt *l, uint32_t id, const char *comm, uint32_t count)
{
	int64_t deadline = now_ns() + FRAME_DEADLINE_MS * MS;
	pid_t pids[16];

	for (;;) {
		spd_wire_hdr hdr;
		uint8_t *body = NULL;
		size_t len = 0;

		if (l->idle_seen[id] && l->idle[id] == count && by_comm(l, comm, pids, 16) == count)
			return;
		if (now_ns() > deadline)
			fail_msg("target %u: %u idle said, %zu in /proc, want %u", id, l->idle[id],
				 by_comm(l, comm, pids, 16), count);
		/* Nothing else is expected meanwhile. */
		if (recv_within(l, 50, &hdr, &body, &len) == 1)
			fail_msg("unexpected frame %u while waiting for IDLE", hdr.type);
	}
}

static bool has_pid(const pid_t *v, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == pid)
			return true;
	return false;
}

static void prestart_pools(void **state)
{
	lt *l = *state;
	char err[SPD_CONFIG_ERR_MAX] = "";
	spd_config *next = NULL;
	uint32_t ids[] = {50, 51};
	spd_launcher_hello h;
	spd_exit_report rep;
	spd_wbuf b = SPD_WBUF_INIT;
	uint8_t *body, *big = malloc(200000);
	size_t len, n;
	pid_t before[16], after[16], pid;
	uint64_t key;

	assert_non_null(big);
	for (size_t i = 0; i < 200000; i++)
		big[i] = (uint8_t)(i * 7);
	assert_int_equal(spd_config_load_string(prestart_yaml, strlen(prestart_yaml), "p.yaml", NULL,
						&next, err), 0);
	assert_int_equal(spd_launcher_boot_encode(next, ids, getpid(), NULL, NULL, NULL, &b), 0);
	spd_config_destroy(next);
	assert_int_equal(spd_wire_send(l->fd, SPD_WIRE_RELOAD, 0, &b), 0);
	spd_wbuf_release(&b);
	body = expect_frame(l, SPD_WIRE_RELOADED, 0, &len);
	assert_int_equal(spd_launcher_hello_decode(&h, body, len), 0);
	free(body);
	assert_int_equal(h.count, 2);
	spd_launcher_hello_release(&h);
	/* max_idle 5 of 2 + 3 asked: both full. */
	wait_idle(l, 50, "i:pecho", 2);
	wait_idle(l, 51, "i:zpecho", 3);

	for (int round = 0; round < 2; round++) {
		const char *name = round == 0 ? "pecho" : "zpecho";
		const char *comm = round == 0 ? "i:pecho" : "i:zpecho";
		uint32_t id = ids[round], full = round == 0 ? 2 : 3;

		n = by_comm(l, comm, before, 16);
		assert_int_equal(n, full);
		key = start_req_v(l, name, id, NULL, 0, big, 200000, 0);
		pid = expect_started(l, key);
		assert_true(has_pid(before, n, pid));
		expect_exited(l, key, &rep);
		assert_int_equal(rep.flags, 0);
		assert_int_equal(rep.pid, pid);
		assert_int_equal(rep.result_len, 200000);
		assert_memory_equal(rep.result, big, 200000);
		spd_exit_report_release(&rep);
		wait_idle(l, id, comm, full);
		assert_int_equal(by_comm(l, comm, after, 16), full);
		assert_false(has_pid(after, full, pid));
	}

	/* STALE: the pool goes, and stays empty; the version still runs. */
	b = (spd_wbuf)SPD_WBUF_INIT;
	assert_int_equal(spd_wire_send(l->fd, SPD_WIRE_STALE, 50, &b), 0);
	wait_idle(l, 50, "i:pecho", 0);
	key = start_req_v(l, "pecho", 50, NULL, 0, "fresh", 5, 0);
	pid = expect_started(l, key);
	expect_exited(l, key, &rep);
	assert_int_equal(rep.result_len, 5);
	spd_exit_report_release(&rep);
	nap_ms(100);
	assert_int_equal(by_comm(l, "i:pecho", after, 16), 0);
	/* RETIRE of the forkserver version: its pool and zygote go. */
	assert_int_equal(spd_wire_send(l->fd, SPD_WIRE_RETIRE, 51, &b), 0);
	assert_int_equal(spd_wire_send(l->fd, SPD_WIRE_RETIRE, 50, &b), 0);
	expect_no_strays(l);
	free(big);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, launcher_setup, launcher_teardown)
	const struct CMUnitTest tests[] = {
		T(hello_first),
		T(prestart_pools),
		T(exit_codes),
		T(killed_by_a_signal_spawnd_did_not_send),
		T(exec_failure_is_exited_only),
		T(launch_error_names_the_failed_step),
		T(only_stdio_is_open),
		T(own_process_group),
		T(stdin_is_the_input),
		T(large_output_is_drained),
		T(destroy_honoured_sigterm),
		T(destroy_escalates_to_sigkill),
		T(destroy_with_zero_grace_kills_at_once),
		T(destroy_of_unknown_key_is_ignored),
		T(timeout_destroys),
		T(destroy_kills_a_setsid_grandchild),
		T(function_target_result),
		T(closing_the_socket_kills_everything),
		T(reload_adds_versions_and_retire_frees_them),
	};
#undef T

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
