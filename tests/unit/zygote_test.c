/* The forkserver zygote (`spawnd-worker zygote`, service/worker/zygote.c),
 * driven as the launcher drives it: its socket on fd 3, the target spec on
 * fd 4, SPAWN and SIGNAL frames in, READY, STARTED and EXITED frames out. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "service/common/clock.h"
#include "service/common/log.h"
#include "service/config/config.h"
#include "service/wire/messages.h"
#include "service/launcher/target_spec.h"
#include "service/launcher/targets.h"
#include "service/wire/wire.h"

#define FRAME_DEADLINE_MS 15000

static spd_config *cfg;
static spd_prepared_target *targets;
static char worker[PATH_MAX];

static const char yaml[] = "listen: [\"127.0.0.1:0\"]\n"
			   "log: {format: text, level: error}\n"
			   "targets:\n"
			   "  nap: {function: builtin:sleep, start_method: forkserver}\n"
			   "  quit: {function: builtin:exit, start_method: forkserver}\n";

static int group_setup(void **state)
{
	const char *srcdir = getenv("TEST_SRCDIR");
	char path[PATH_MAX], err[SPD_CONFIG_ERR_MAX] = "";

	(void)state;
	spd_log_setup(SPD_LOG_ERROR, 0, "zygote_test");
	if (srcdir == NULL) {
		print_error("TEST_SRCDIR is not set: run under bazel test\n");
		return -1;
	}
	snprintf(path, sizeof path, "%s/spawnd/service/front/spawnd-worker", srcdir);
	if (realpath(path, worker) == NULL || access(worker, X_OK) != 0) {
		print_error("spawnd-worker not usable at %s\n", path);
		return -1;
	}
	if (spd_config_load_string(yaml, strlen(yaml), "zygote_test.yaml", NULL, &cfg, err) != 0) {
		print_error("config: %s\n", err);
		return -1;
	}
	return spd_targets_prepare(cfg, &targets) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	if (cfg == NULL)
		return 0;
	spd_targets_release(targets, cfg->target_count);
	spd_config_destroy(cfg);
	return 0;
}

/* ---- one zygote per test ------------------------------------------------------ */

typedef struct zt {
	pid_t pid; /* 0 once reaped */
	int sock;  /* -1 once closed */
	int status;
} zt;

/* Starts the zygote of target NAME, as zygotes.c does (less the limits). */
static void zt_start(zt *z, const char *name)
{
	const spd_prepared_target *t = spd_targets_find(targets, cfg->target_count, name);
	spd_wbuf spec = SPD_WBUF_INIT;
	int sv[2], memfd;

	assert_non_null(t);
	assert_int_equal(spd_target_spec_encode(t, &spec), 0);
	memfd = spd_memfd_from(spec.data, spec.len);
	spd_wbuf_release(&spec);
	assert_true(memfd >= 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	z->pid = fork();
	assert_true(z->pid >= 0);
	if (z->pid == 0) {
		char *argv[] = {worker, (char *)"zygote", NULL};
		int s = fcntl(sv[1], F_DUPFD, 10), m = fcntl(memfd, F_DUPFD, 10);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (s < 0 || m < 0 || dup2(s, 3) < 0 || dup2(m, 4) < 0)
			_exit(127);
		execv(worker, argv);
		_exit(127);
	}
	close(sv[1]);
	close(memfd);
	z->sock = sv[0];
}

/* Receives one frame (failing the test past the deadline). */
static void zt_recv(zt *z, spd_wire_hdr *hdr, uint8_t **body, size_t *len)
{
	struct pollfd p = {.fd = z->sock, .events = POLLIN};

	assert_int_equal(poll(&p, 1, FRAME_DEADLINE_MS), 1);
	assert_int_equal(spd_wire_recv(z->sock, hdr, body, len), 1);
}

static void zt_expect_ready(zt *z)
{
	spd_wire_hdr hdr;
	uint8_t *body = NULL;
	size_t len = 0;

	zt_recv(z, &hdr, &body, &len);
	assert_int_equal(hdr.type, SPD_ZYGOTE_READY);
	free(body);
}

/* SPAWN of KEY with ARG (NULL: none) and NFDS descriptors (4 is right). */
static void zt_spawn(zt *z, uint64_t key, const char *target, const char *arg, size_t nfds)
{
	char *argv[2] = {(char *)arg, NULL};
	spd_start_req req = {
		.process_id = (char *)"p",
		.target = (char *)target,
		.argv = argv,
		.argc = arg != NULL ? 1 : 0,
		.grace_ms = -1,
	};
	spd_wbuf b = SPD_WBUF_INIT;
	int fds[4];

	for (size_t i = 0; i < 4; i++)
		fds[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
	assert_int_equal(spd_start_req_encode(&req, &b), 0);
	assert_int_equal(spd_wire_send_fds(z->sock, SPD_ZYGOTE_SPAWN, key, &b, fds, nfds), 0);
	spd_wbuf_release(&b);
	for (size_t i = 0; i < 4; i++)
		close(fds[i]);
}

/* STARTED of KEY: the pid, or -errno. */
static int32_t zt_expect_started(zt *z, uint64_t key)
{
	spd_wire_hdr hdr;
	uint8_t *body = NULL;
	size_t len = 0;
	spd_wreader r;
	int32_t pid;

	zt_recv(z, &hdr, &body, &len);
	assert_int_equal(hdr.type, SPD_ZYGOTE_STARTED);
	assert_int_equal(hdr.key, key);
	spd_wreader_init(&r, body, len);
	pid = (int32_t)spd_wreader_u32(&r);
	assert_int_equal(r.err, 0);
	free(body);
	return pid;
}

/* EXITED of KEY: its wait status and the signals that reached it alive. */
static void zt_expect_exited(zt *z, uint64_t key, int *status, uint32_t *sent)
{
	spd_wire_hdr hdr;
	uint8_t *body = NULL;
	size_t len = 0;
	spd_wreader r;

	zt_recv(z, &hdr, &body, &len);
	assert_int_equal(hdr.type, SPD_ZYGOTE_EXITED);
	assert_int_equal(hdr.key, key);
	spd_wreader_init(&r, body, len);
	*status = (int)spd_wreader_u32(&r);
	(void)spd_wreader_i64(&r); /* utime, stime, maxrss */
	(void)spd_wreader_i64(&r);
	(void)spd_wreader_i64(&r);
	*sent = spd_wreader_u32(&r);
	assert_int_equal(r.err, 0);
	free(body);
}

static void zt_signal(zt *z, uint64_t key, int sig)
{
	spd_wbuf b = SPD_WBUF_INIT;

	spd_wbuf_u32(&b, (uint32_t)sig);
	assert_int_equal(spd_wire_send(z->sock, SPD_ZYGOTE_SIGNAL, key, &b), 0);
	spd_wbuf_release(&b);
}

/* Closes the socket (the launcher is gone) and reaps the zygote. */
static void zt_stop(zt *z)
{
	if (z->sock >= 0)
		close(z->sock);
	z->sock = -1;
	if (z->pid > 0)
		assert_int_equal(waitpid(z->pid, &z->status, 0), z->pid);
	z->pid = 0;
}

/* A zygote of TARGET that said READY and started KEY (with ARG): its pid. */
static int32_t zt_start_one(zt *z, const char *target, uint64_t key, const char *arg)
{
	int32_t pid;

	zt_start(z, target);
	zt_expect_ready(z);
	zt_spawn(z, key, target, arg, 4);
	pid = zt_expect_started(z, key);
	assert_true(pid > 0);
	return pid;
}

/* ---- tests ---------------------------------------------------------------------- */

static void ready_then_a_normal_exit(void **state)
{
	zt z;
	int status;
	uint32_t sent;

	(void)state;
	zt_start_one(&z, "quit", 7, "3");
	zt_expect_exited(&z, 7, &status, &sent);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 3);
	assert_int_equal(sent, 0);
	zt_stop(&z);
	assert_true(WIFEXITED(z.status));
}

static void a_stop_signal_that_kills_is_reported_sent(void **state)
{
	zt z;
	int status;
	uint32_t sent;

	(void)state;
	zt_start_one(&z, "nap", 9, "600000");
	zt_signal(&z, 9, SIGTERM);
	zt_expect_exited(&z, 9, &status, &sent);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGTERM);
	assert_true(sent & SPD_EXIT_SENT_STOP);
	assert_false(sent & SPD_EXIT_SENT_KILL);
	zt_stop(&z);
}

static void a_signal_for_an_unknown_key_is_ignored(void **state)
{
	zt z;
	int status;
	uint32_t sent;

	(void)state;
	zt_start_one(&z, "nap", 43, "600000");
	zt_signal(&z, 42, SIGKILL); /* never spawned: nothing to signal */
	zt_signal(&z, 43, SIGKILL);
	zt_expect_exited(&z, 43, &status, &sent);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_int_equal(sent, SPD_EXIT_SENT_KILL);
	zt_stop(&z);
}

static void a_spawn_without_its_fds_is_refused(void **state)
{
	zt z;

	(void)state;
	zt_start(&z, "nap");
	zt_expect_ready(&z);
	zt_spawn(&z, 5, "nap", "1", 2);
	assert_int_equal(zt_expect_started(&z, 5), -EBADMSG);
	zt_stop(&z);
}

/* The launcher gone (EOF), the zygote kills every group and reaps it before it
 * exits: once the zygote is reaped, its child is gone. */
static void the_launcher_gone_takes_its_children(void **state)
{
	zt z;
	int32_t pid;

	(void)state;
	pid = zt_start_one(&z, "nap", 11, "600000");
	zt_stop(&z);
	assert_true(WIFEXITED(z.status));
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ready_then_a_normal_exit),
		cmocka_unit_test(a_stop_signal_that_kills_is_reported_sent),
		cmocka_unit_test(a_signal_for_an_unknown_key_is_ignored),
		cmocka_unit_test(a_spawn_without_its_fds_is_refused),
		cmocka_unit_test(the_launcher_gone_takes_its_children),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
