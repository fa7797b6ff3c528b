/* The front's end of the launcher channel (front/link.h): its send path never
 * blocks on a launcher that does not read (issue 7, defect 5). Frames wait in
 * the link's out-queue, in order, and reach the launcher once it reads again;
 * past SPD_LINK_QUEUE_MAX_BYTES the link says it is congested. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "service/common/clock.h"
#include "service/front/link.h"
#include "service/wire/messages.h"
#include "service/wire/wire.h"

#define BIG_INPUT (1024u * 1024u)
/* START frames with a 1 MiB input queued behind a full socket: past
 * SPD_LINK_QUEUE_MAX_BYTES. */
#define BIG_STARTS 80u

/* The stand-in launcher: reads nothing until GATE brings the number of frames
 * sent, then checks that every frame comes, in order (keys 1..n), and exits 0
 * at EOF. */
static void fake_launcher(int sock, int gate)
{
	uint64_t want = 1, n = 0;

	while (read(gate, &n, sizeof n) < 0 && errno == EINTR)
		;
	for (;;) {
		spd_wire_hdr hdr;
		uint8_t *body = NULL;
		size_t len = 0;
		int rc = spd_wire_recv(sock, &hdr, &body, &len);

		free(body);
		if (rc <= 0)
			break;
		if (hdr.key != want)
			_exit(2);
		if (hdr.type != SPD_WIRE_START && hdr.type != SPD_WIRE_DESTROY)
			_exit(3);
		if (hdr.type == SPD_WIRE_START && len < BIG_INPUT)
			_exit(4);
		want++;
	}
	_exit(n > 0 && want == n + 1 ? 0 : 5);
}

/* A START request for process "p" of target "t" with INPUT. */
static spd_launch_req start_req(uint8_t *input, size_t len)
{
	static char id[] = "p", target[] = "t";
	static char *argv[] = {NULL};
	static char *labels[] = {NULL};
	spd_launch_req req = {
		.process_id = id,
		.target = target,
		.argv = argv,
		.input = input,
		.input_len = len,
		.labels = labels,
		.grace_ms = 1000,
	};

	return req;
}

static void sends_do_not_block_on_a_stalled_launcher(void **state)
{
	int sv[2], gate[2], status;
	uint8_t *input = calloc(1, BIG_INPUT);
	spd_launch_req req = start_req(input, BIG_INPUT);
	spd_registry_ops ops;
	int64_t deadline;
	uint64_t key = 0;
	spd_link *l;
	pid_t pid;

	(void)state;
	assert_non_null(input);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pipe2(gate, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		close(gate[1]);
		fake_launcher(sv[1], gate[0]);
	}
	close(sv[1]);
	close(gate[0]);
	l = spd_link_create(sv[0], pid);
	assert_non_null(l);
	assert_int_equal(spd_link_start(l, NULL, NULL, NULL), 0);
	ops = spd_link_ops(l);
	assert_non_null(ops.congested);
	assert_false(ops.congested(ops.ctx));

	/* The launcher reads nothing: DESTROY frames until its socket is full
	 * and they queue (a blocking send would hang here), then large STARTs
	 * (memfd bodies) behind them, and DESTROYs again; each call returns at
	 * once. */
	while (spd_link_queued_bytes(l) == 0) {
		assert_true(key < 1000000);
		assert_int_equal(ops.send_destroy(ops.ctx, ++key, 1000), 0);
	}
	for (unsigned i = 0; i < BIG_STARTS; i++) {
		assert_int_equal(ops.send_start(ops.ctx, ++key, &req), 0);
		assert_int_equal(ops.send_destroy(ops.ctx, ++key, 1000), 0);
	}
	assert_true(spd_link_queued_bytes(l) > SPD_LINK_QUEUE_MAX_BYTES);
	assert_true(ops.congested(ops.ctx));

	/* It reads again: the writer thread delivers the queue, in order. */
	assert_int_equal(write(gate[1], &key, sizeof key), (ssize_t)sizeof key);
	deadline = spd_clock_mono_ns() + 60LL * 1000000000LL;
	while (spd_link_queued_bytes(l) > 0 && spd_clock_mono_ns() < deadline) {
		struct timespec nap = {0, 5 * 1000000};
		nanosleep(&nap, NULL);
	}
	assert_int_equal(spd_link_queued_bytes(l), 0);
	assert_false(ops.congested(ops.ctx));

	/* Closing: the launcher sees EOF after the last frame and checks them. */
	status = spd_link_close(l);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(gate[1]);
	free(input);
}

/* A launcher that is gone (its end of the socket closed): every send fails at
 * once, and keeps failing (the first error sticks), without blocking or
 * queueing: the registry then ends the start LOST instead of waiting. */
static void sends_fail_once_the_launcher_is_gone(void **state)
{
	spd_launch_req req = start_req(NULL, 0);
	spd_registry_ops ops;
	int sv[2], status;
	spd_link *l;
	pid_t pid;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[1]); /* before the fork: no process holds the launcher's end */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	l = spd_link_create(sv[0], pid);
	assert_non_null(l);
	ops = spd_link_ops(l);
	assert_true(ops.send_destroy(ops.ctx, 1, 1000) < 0);
	assert_true(ops.send_start(ops.ctx, 2, &req) < 0);
	assert_true(ops.send_destroy(ops.ctx, 3, 1000) < 0);
	assert_int_equal(spd_link_queued_bytes(l), 0);
	assert_false(ops.congested(ops.ctx));
	status = spd_link_close(l);
	assert_true(WIFEXITED(status));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sends_do_not_block_on_a_stalled_launcher),
		cmocka_unit_test(sends_fail_once_the_launcher_is_gone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
