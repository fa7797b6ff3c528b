/* The protocol of service/wire/: the framing (wire.h), the front <-> launcher
 * bodies (messages.h) and the launcher <-> zygote ones (zygote_frames.h):
 * round trips of every frame, sticky errors, the memfd path for large bodies,
 * and clean failure (no leak: the asan build checks) on truncated, oversized
 * or garbage input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "service/wire/messages.h"
#include "service/wire/wire.h"
#include "service/wire/zygote_frames.h"

/* ---- spd_wbuf / spd_wreader ------------------------------------------------ */

static void wbuf_round_trip(void **state)
{
	spd_wbuf b = SPD_WBUF_INIT;
	spd_wreader r;
	const void *p;
	size_t n;
	char *s;

	(void)state;
	spd_wbuf_u32(&b, 0xdeadbeefu);
	spd_wbuf_i64(&b, -1234567890123LL);
	spd_wbuf_bytes(&b, "a\0b", 3);
	spd_wbuf_str(&b, "hello");
	spd_wbuf_str(&b, NULL);
	spd_wbuf_bytes(&b, NULL, 0);
	assert_int_equal(b.err, 0);

	spd_wreader_init(&r, b.data, b.len);
	assert_int_equal(spd_wreader_u32(&r), 0xdeadbeefu);
	assert_int_equal(spd_wreader_i64(&r), -1234567890123LL);
	p = spd_wreader_bytes(&r, &n);
	assert_int_equal(n, 3);
	assert_memory_equal(p, "a\0b", 3);
	s = spd_wreader_strdup(&r);
	assert_string_equal(s, "hello");
	free(s);
	s = spd_wreader_strdup(&r);
	assert_string_equal(s, ""); /* NULL went out as "" */
	free(s);
	p = spd_wreader_bytes(&r, &n);
	assert_non_null(p);
	assert_int_equal(n, 0);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.left, 0);

	/* Past the end now: sticky. */
	assert_int_equal(spd_wreader_u32(&r), 0);
	assert_int_equal(r.err, -EBADMSG);
	spd_wbuf_release(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

static void wbuf_grows(void **state)
{
	spd_wbuf b = SPD_WBUF_INIT;
	spd_wreader r;

	(void)state;
	for (uint32_t i = 0; i < 100000; i++)
		spd_wbuf_u32(&b, i);
	assert_int_equal(b.err, 0);
	assert_int_equal(b.len, 400000);
	spd_wreader_init(&r, b.data, b.len);
	for (uint32_t i = 0; i < 100000; i++)
		if (spd_wreader_u32(&r) != i)
			fail_msg("value %u", i);
	assert_int_equal(r.err, 0);
	spd_wbuf_release(&b);
}

static void reader_errors_are_sticky(void **state)
{
	static const uint8_t four[4] = {1, 0, 0, 0};
	spd_wreader r;
	const void *p;
	size_t n = 99;

	(void)state;
	/* An i64 out of 4 bytes fails; the 4 bytes are still there, but a u32 that
	 * would fit now reads 0: the error sticks. */
	spd_wreader_init(&r, four, sizeof four);
	assert_int_equal(spd_wreader_i64(&r), 0);
	assert_int_equal(r.err, -EBADMSG);
	assert_int_equal(spd_wreader_u32(&r), 0);
	assert_int_equal(r.err, -EBADMSG);
	p = spd_wreader_bytes(&r, &n);
	assert_non_null(p);
	assert_int_equal(n, 0);
	assert_null(spd_wreader_strdup(&r));

	/* A length prefix larger than what is left. */
	{
		spd_wbuf b = SPD_WBUF_INIT;
		spd_wbuf_bytes(&b, "abcdef", 6);
		spd_wreader_init(&r, b.data, b.len - 1);
		p = spd_wreader_bytes(&r, &n);
		assert_non_null(p);
		assert_int_equal(n, 0);
		assert_int_equal(r.err, -EBADMSG);
		spd_wreader_init(&r, b.data, b.len - 1);
		assert_null(spd_wreader_strdup(&r));
		spd_wbuf_release(&b);
	}
	/* A length prefix of 2^64-1 must not wrap any check. */
	{
		uint8_t huge[16];
		memset(huge, 0xff, sizeof huge);
		spd_wreader_init(&r, huge, sizeof huge);
		p = spd_wreader_bytes(&r, &n);
		assert_int_equal(n, 0);
		assert_int_equal(r.err, -EBADMSG);
	}
	/* No body at all. */
	spd_wreader_init(&r, NULL, 10);
	assert_int_equal(spd_wreader_u32(&r), 0);
	assert_int_equal(r.err, -EBADMSG);
}

/* ---- frames over a real socketpair -------------------------------------------- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own */
}

typedef struct pair {
	int a, b;
} pair;

static int pair_setup(void **state)
{
	pair *p = malloc(sizeof *p);
	int sv[2];

	assert_non_null(p);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	p->a = sv[0];
	p->b = sv[1];
	*state = p;
	return 0;
}

static int pair_teardown(void **state)
{
	pair *p = *state;

	if (p->a >= 0)
		close(p->a);
	if (p->b >= 0)
		close(p->b);
	free(p);
	return 0;
}

static void send_recv_small(void **state)
{
	pair *p = *state;
	spd_wbuf b = SPD_WBUF_INIT;
	spd_wire_hdr hdr;
	uint8_t *body = NULL;
	size_t len = 0;

	spd_wbuf_str(&b, "small body");
	assert_int_equal(spd_wire_send(p->a, SPD_WIRE_START, 42, &b), 0);
	assert_int_equal(spd_wire_recv(p->b, &hdr, &body, &len), 1);
	assert_int_equal(hdr.type, SPD_WIRE_START);
	assert_int_equal(hdr.key, 42);
	assert_int_equal(hdr.flags & SPD_WIRE_F_MEMFD, 0);
	assert_int_equal(len, b.len);
	assert_memory_equal(body, b.data, len);
	free(body);
	spd_wbuf_release(&b);

	/* No body: NULL, 0. */
	assert_int_equal(spd_wire_send(p->b, SPD_WIRE_HELLO, 0, NULL), 0);
	assert_int_equal(spd_wire_recv(p->a, &hdr, &body, &len), 1);
	assert_int_equal(hdr.type, SPD_WIRE_HELLO);
	assert_null(body);
	assert_int_equal(len, 0);
}

static void send_recv_large_via_memfd(void **state)
{
	pair *p = *state;
	size_t big = 1024 * 1024;
	uint8_t *data = malloc(big);
	spd_wbuf b = SPD_WBUF_INIT;
	spd_wire_hdr hdr;
	uint8_t *body = NULL;
	size_t len = 0;
	int fds_before = count_fds();

	assert_non_null(data);
	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i * 131 + (i >> 12));
	spd_wbuf_bytes(&b, data, big);
	assert_int_equal(spd_wire_send(p->a, SPD_WIRE_EXITED, 7, &b), 0);
	assert_int_equal(spd_wire_recv(p->b, &hdr, &body, &len), 1);
	assert_int_equal(hdr.type, SPD_WIRE_EXITED);
	assert_int_equal(hdr.key, 7);
	assert_true(hdr.flags & SPD_WIRE_F_MEMFD);
	assert_int_equal(len, b.len);
	assert_memory_equal(body, b.data, len);
	/* Neither end keeps the memfd. */
	assert_int_equal(count_fds(), fds_before);
	free(body);
	spd_wbuf_release(&b);
	free(data);
}

/* The datagram limit is exact: a frame of exactly 64 KiB goes inline, one byte
 * more through a memfd; both arrive whole. */
static void send_recv_at_the_limit(void **state)
{
	pair *p = *state;
	size_t inline_max = SPD_WIRE_MAX_DGRAM - sizeof(spd_wire_hdr);

	for (size_t n = inline_max; n <= inline_max + 1; n++) {
		uint8_t *data = calloc(1, n);
		spd_wbuf b = SPD_WBUF_INIT;
		spd_wire_hdr hdr;
		uint8_t *body = NULL;
		size_t len = 0;

		assert_non_null(data);
		data[n - 1] = 0x5a;
		/* A raw body of exactly n bytes: no length prefix. */
		b.data = data;
		b.len = b.cap = n;
		assert_int_equal(spd_wire_send(p->a, SPD_WIRE_START, n, &b), 0);
		assert_int_equal(spd_wire_recv(p->b, &hdr, &body, &len), 1);
		assert_int_equal(hdr.key, n);
		assert_int_equal(!!(hdr.flags & SPD_WIRE_F_MEMFD), n > inline_max);
		assert_int_equal(len, n);
		assert_memory_equal(body, data, n);
		free(body);
		free(data);
	}
}

static void send_refuses_a_failed_wbuf(void **state)
{
	pair *p = *state;
	spd_wbuf b = SPD_WBUF_INIT;

	b.err = -ENOMEM;
	assert_int_equal(spd_wire_send(p->a, SPD_WIRE_START, 1, &b), -ENOMEM);
}

static void recv_eof(void **state)
{
	pair *p = *state;
	spd_wire_hdr hdr;
	uint8_t *body = (uint8_t *)"not touched";
	size_t len = 99;

	close(p->a);
	p->a = -1;
	assert_int_equal(spd_wire_recv(p->b, &hdr, &body, &len), 0);
	assert_null(body);
	assert_int_equal(len, 0);
	/* And sending to a gone peer is an error, not a SIGPIPE. */
	assert_true(spd_wire_send(p->b, SPD_WIRE_HELLO, 0, NULL) < 0);
}

static void recv_malformed(void **state)
{
	pair *p = *state;
	spd_wire_hdr hdr, fake = {.type = SPD_WIRE_EXITED, .flags = SPD_WIRE_F_MEMFD, .key = 3};
	uint8_t *body = NULL;
	size_t len = 0;
	uint8_t *big;

	/* Shorter than a header. */
	assert_int_equal(send(p->a, "abc", 3, 0), 3);
	assert_int_equal(spd_wire_recv(p->b, &hdr, &body, &len), -EBADMSG);
	assert_null(body);
	/* The memfd flag with no descriptor. */
	assert_int_equal(send(p->a, &fake, sizeof fake, 0), (ssize_t)sizeof fake);
	assert_int_equal(spd_wire_recv(p->b, &hdr, &body, &len), -EBADMSG);
	assert_null(body);
	/* A datagram over the limit is truncated, hence refused. */
	big = calloc(1, SPD_WIRE_MAX_DGRAM + 100);
	assert_non_null(big);
	assert_int_equal(send(p->a, big, SPD_WIRE_MAX_DGRAM + 100, 0), SPD_WIRE_MAX_DGRAM + 100);
	assert_int_equal(spd_wire_recv(p->b, &hdr, &body, &len), -EBADMSG);
	assert_null(body);
	free(big);
	/* Still usable after. */
	assert_int_equal(spd_wire_send(p->a, SPD_WIRE_DESTROY, 9, NULL), 0);
	assert_int_equal(spd_wire_recv(p->b, &hdr, &body, &len), 1);
	assert_int_equal(hdr.key, 9);
}

/* ---- START and EXITED bodies ---------------------------------------------------- */

static void start_req_round_trip(void **state)
{
	char *argv[] = {(char *)"--flag", (char *)"", (char *)"x y", NULL};
	char *labels[] = {(char *)"team", (char *)"ml", (char *)"empty", (char *)"", NULL};
	uint8_t input[] = {0, 1, 2, 0, 255};
	spd_start_req in = {
		.process_id = (char *)"0190a3b4-0000-7000-8000-000000000001",
		.target = (char *)"echo",
		.target_id = 77,
		.argv = argv,
		.argc = 3,
		.input = input,
		.input_len = sizeof input,
		.labels = labels,
		.label_count = 2,
		.grace_ms = -1,
		.timeout_ms = 1500,
		.traceparent = (char *)"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	};
	spd_start_req out;
	spd_wbuf b = SPD_WBUF_INIT;

	(void)state;
	assert_int_equal(spd_start_req_encode(&in, &b), 0);
	assert_int_equal(spd_start_req_decode(&out, b.data, b.len), 0);
	assert_int_equal(out.target_id, 77);
	assert_string_equal(out.process_id, in.process_id);
	assert_string_equal(out.target, "echo");
	assert_int_equal(out.argc, 3);
	for (int i = 0; i < 3; i++)
		assert_string_equal(out.argv[i], argv[i]);
	assert_null(out.argv[3]);
	assert_int_equal(out.input_len, sizeof input);
	assert_memory_equal(out.input, input, sizeof input);
	assert_int_equal(out.label_count, 2);
	for (int i = 0; i < 4; i++)
		assert_string_equal(out.labels[i], labels[i]);
	assert_null(out.labels[4]);
	assert_int_equal(out.grace_ms, -1);
	assert_int_equal(out.timeout_ms, 1500);
	assert_string_equal(out.traceparent, in.traceparent);
	spd_start_req_release(&out);
	assert_null(out.argv);
	spd_wbuf_release(&b);
}

static void start_req_empty(void **state)
{
	spd_start_req in = {.process_id = (char *)"id", .target = (char *)"t"};
	spd_start_req out;
	spd_wbuf b = SPD_WBUF_INIT;

	(void)state;
	assert_int_equal(spd_start_req_encode(&in, &b), 0);
	assert_int_equal(spd_start_req_decode(&out, b.data, b.len), 0);
	assert_int_equal(out.argc, 0);
	assert_non_null(out.argv); /* argv[argc] == NULL holds */
	assert_null(out.argv[0]);
	assert_int_equal(out.input_len, 0);
	assert_int_equal(out.label_count, 0);
	assert_null(out.traceparent); /* none travels as "" and comes back as none */
	spd_start_req_release(&out);
	spd_wbuf_release(&b);
}

/* A traceparent longer than any the front accepts is a broken frame. */
static void start_req_traceparent_cap(void **state)
{
	char tp[SPD_START_MAX_TRACEPARENT + 2];
	spd_start_req in = {.process_id = (char *)"id", .target = (char *)"t", .traceparent = tp};
	spd_start_req out;
	spd_wbuf b = SPD_WBUF_INIT;

	(void)state;
	memset(tp, 'a', sizeof tp - 1);
	tp[sizeof tp - 1] = '\0';
	assert_int_equal(spd_start_req_encode(&in, &b), 0);
	assert_int_equal(spd_start_req_decode(&out, b.data, b.len), -EBADMSG);
	spd_wbuf_release(&b);
	tp[SPD_START_MAX_TRACEPARENT] = '\0';
	assert_int_equal(spd_start_req_encode(&in, &b), 0);
	assert_int_equal(spd_start_req_decode(&out, b.data, b.len), 0);
	assert_int_equal(strlen(out.traceparent), SPD_START_MAX_TRACEPARENT);
	spd_start_req_release(&out);
	spd_wbuf_release(&b);
}

static void start_req_truncated_or_garbage(void **state)
{
	char *argv[] = {(char *)"a", (char *)"bb", NULL};
	char *labels[] = {(char *)"k", (char *)"v", NULL};
	spd_start_req in = {
		.process_id = (char *)"id", .target = (char *)"t", .argv = argv, .argc = 2,
		.input = (uint8_t *)"in", .input_len = 2, .labels = labels, .label_count = 1,
	};
	spd_start_req out;
	spd_wbuf b = SPD_WBUF_INIT;
	uint8_t junk[512];

	(void)state;
	assert_int_equal(spd_start_req_encode(&in, &b), 0);
	/* Every proper prefix fails, and leaves nothing allocated. */
	for (size_t n = 0; n < b.len; n++) {
		memset(&out, 0x5a, sizeof out);
		if (spd_start_req_decode(&out, b.data, n) != -EBADMSG)
			fail_msg("prefix of %zu/%zu bytes accepted", n, b.len);
		assert_null(out.process_id);
		assert_null(out.argv);
		assert_null(out.input);
		assert_null(out.labels);
	}
	/* Counts beyond the caps are refused before anything is allocated for them. */
	{
		spd_wbuf g = SPD_WBUF_INIT;
		spd_wbuf_str(&g, "id");
		spd_wbuf_str(&g, "t");
		spd_wbuf_u32(&g, 0xffffffffu);
		assert_int_equal(spd_start_req_decode(&out, g.data, g.len), -EBADMSG);
		spd_wbuf_release(&g);
		spd_wbuf_str(&g, "id");
		spd_wbuf_str(&g, "t");
		spd_wbuf_u32(&g, 0);
		spd_wbuf_bytes(&g, NULL, 0);
		spd_wbuf_u32(&g, 0x80000000u); /* 2 * n would wrap */
		assert_int_equal(spd_start_req_decode(&out, g.data, g.len), -EBADMSG);
		spd_wbuf_release(&g);
	}
	/* Random bytes. */
	srand(1);
	for (int i = 0; i < 2000; i++) {
		size_t n = (size_t)rand() % sizeof junk;
		for (size_t j = 0; j < n; j++)
			junk[j] = (uint8_t)rand();
		if (spd_start_req_decode(&out, junk, n) == 0)
			spd_start_req_release(&out);
	}
	spd_wbuf_release(&b);
}

static void exit_report_round_trip(void **state)
{
	spd_exit_report in, out;
	spd_wbuf b = SPD_WBUF_INIT;

	(void)state;
	memset(&in, 0, sizeof in);
	in.flags = SPD_EXIT_RAISED | SPD_EXIT_SENT_STOP;
	in.pid = 31337;
	in.wait_status = 0x0100;
	in.started_ns = 1700000000000000000LL;
	in.ended_ns = 1700000000500000000LL;
	in.utime_us = 12;
	in.stime_us = 34;
	in.maxrss_bytes = 5 << 20;
	in.launch_stage = (char *)"exec";
	in.launch_errno = ENOENT;
	in.launch_message = (char *)"No such file or directory";
	in.raise_type = (char *)"ValueError";
	in.raise_message = (char *)"bad \xff value";
	in.raise_backtrace = (char *)"at f()\nat g()";
	in.result = (uint8_t *)"r\0s";
	in.result_len = 3;
	in.stdout_tail = (uint8_t *)"out";
	in.stdout_len = 3;
	in.stdout_total = 1 << 30;
	in.stderr_tail = (uint8_t *)"err!";
	in.stderr_len = 4;
	in.stderr_total = 4;
	assert_int_equal(spd_exit_report_encode(&in, &b), 0);
	assert_int_equal(spd_exit_report_decode(&out, b.data, b.len), 0);
	assert_int_equal(out.flags, in.flags);
	assert_int_equal(out.pid, 31337);
	assert_int_equal(out.wait_status, 0x0100);
	assert_int_equal(out.started_ns, in.started_ns);
	assert_int_equal(out.ended_ns, in.ended_ns);
	assert_int_equal(out.utime_us, 12);
	assert_int_equal(out.stime_us, 34);
	assert_int_equal(out.maxrss_bytes, 5 << 20);
	assert_string_equal(out.launch_stage, "exec");
	assert_int_equal(out.launch_errno, ENOENT);
	assert_string_equal(out.launch_message, in.launch_message);
	assert_string_equal(out.raise_type, "ValueError");
	assert_string_equal(out.raise_message, in.raise_message);
	assert_string_equal(out.raise_backtrace, in.raise_backtrace);
	assert_int_equal(out.result_len, 3);
	assert_memory_equal(out.result, "r\0s", 3);
	assert_int_equal(out.stdout_len, 3);
	assert_memory_equal(out.stdout_tail, "out", 3);
	assert_int_equal(out.stdout_total, 1 << 30);
	assert_int_equal(out.stderr_len, 4);
	assert_memory_equal(out.stderr_tail, "err!", 4);
	assert_int_equal(out.stderr_total, 4);
	spd_exit_report_release(&out);
	assert_null(out.result);
	spd_wbuf_release(&b);

	/* A negative wait status and pid survive the u32 on the wire. */
	memset(&in, 0, sizeof in);
	in.pid = -1;
	in.wait_status = -2;
	in.launch_errno = -3;
	assert_int_equal(spd_exit_report_encode(&in, &b), 0);
	assert_int_equal(spd_exit_report_decode(&out, b.data, b.len), 0);
	assert_int_equal(out.pid, -1);
	assert_int_equal(out.wait_status, -2);
	assert_int_equal(out.launch_errno, -3);
	assert_null(out.result);
	assert_int_equal(out.result_len, 0);
	assert_null(out.stdout_tail);
	spd_exit_report_release(&out);
	spd_wbuf_release(&b);
}

static void exit_report_truncated_or_garbage(void **state)
{
	spd_exit_report in, out;
	spd_wbuf b = SPD_WBUF_INIT;
	uint8_t junk[512];

	(void)state;
	memset(&in, 0, sizeof in);
	in.launch_stage = (char *)"exec";
	in.raise_type = (char *)"T";
	in.result = (uint8_t *)"res";
	in.result_len = 3;
	in.stdout_tail = (uint8_t *)"o";
	in.stdout_len = 1;
	in.stderr_tail = (uint8_t *)"e";
	in.stderr_len = 1;
	assert_int_equal(spd_exit_report_encode(&in, &b), 0);
	for (size_t n = 0; n < b.len; n++) {
		memset(&out, 0x5a, sizeof out);
		if (spd_exit_report_decode(&out, b.data, n) != -EBADMSG)
			fail_msg("prefix of %zu/%zu bytes accepted", n, b.len);
		assert_null(out.launch_stage);
		assert_null(out.result);
		assert_null(out.stdout_tail);
	}
	srand(2);
	for (int i = 0; i < 2000; i++) {
		size_t n = (size_t)rand() % sizeof junk;
		for (size_t j = 0; j < n; j++)
			junk[j] = (uint8_t)(rand() & 7); /* small lengths: decodes get far */
		if (spd_exit_report_decode(&out, junk, n) == 0)
			spd_exit_report_release(&out);
	}
	spd_wbuf_release(&b);
}

/* ---- the other frames ------------------------------------------------------ */

static void hello_round_trip(void **state)
{
	char *names[] = {(char *)"echo", (char *)"resize"};
	char *errors[] = {NULL, (char *)"dlopen: no such file"};
	char *mech[] = {(char *)"", (char *)"cgroup_v2"};
	uint32_t ids[] = {1, 9};
	spd_launcher_hello in = {.count = 2, .ids = ids, .names = names, .errors = errors,
				 .memory_limit_mechanisms = mech};
	spd_launcher_hello out;
	spd_wbuf b = SPD_WBUF_INIT;

	(void)state;
	assert_int_equal(spd_launcher_hello_encode(&in, &b), 0);
	assert_int_equal(spd_launcher_hello_decode(&out, b.data, b.len), 0);
	assert_int_equal(out.count, 2);
	assert_string_equal(out.names[0], "echo");
	assert_string_equal(out.names[1], "resize");
	assert_int_equal(out.ids[0], 1);
	assert_int_equal(out.ids[1], 9);
	assert_null(out.errors[0]);
	assert_string_equal(out.errors[1], "dlopen: no such file");
	assert_string_equal(out.memory_limit_mechanisms[0], "");
	assert_string_equal(out.memory_limit_mechanisms[1], "cgroup_v2");
	assert_null(out.names[2]);
	spd_launcher_hello_release(&out);
	assert_null(out.names);
	spd_wbuf_release(&b);

	/* A count past the cap is refused before anything is allocated. */
	spd_wbuf_u32(&b, SPD_HELLO_MAX_TARGETS + 1);
	memset(&out, 0x5a, sizeof out);
	assert_int_equal(spd_launcher_hello_decode(&out, b.data, b.len), -EBADMSG);
	assert_int_equal(out.count, 0);
	assert_null(out.names);
	spd_wbuf_release(&b);
}

static void health_round_trip(void **state)
{
	spd_health_msg down = {.target = (char *)"resize", .why = (char *)"zygote exited"};
	spd_health_msg up = {.target = (char *)"resize", .why = NULL};
	spd_health_msg out;
	spd_wbuf b = SPD_WBUF_INIT;

	(void)state;
	assert_int_equal(spd_health_msg_encode(&down, &b), 0);
	assert_int_equal(spd_health_msg_decode(&out, b.data, b.len), 0);
	assert_string_equal(out.target, "resize");
	assert_string_equal(out.why, "zygote exited");
	spd_health_msg_release(&out);
	assert_null(out.target);
	spd_wbuf_release(&b);
	/* Usable again: why comes back NULL, not "". */
	assert_int_equal(spd_health_msg_encode(&up, &b), 0);
	assert_int_equal(spd_health_msg_decode(&out, b.data, b.len), 0);
	assert_string_equal(out.target, "resize");
	assert_null(out.why);
	spd_health_msg_release(&out);
	spd_wbuf_release(&b);
}

static void started_output_destroy_round_trip(void **state)
{
	spd_started_msg st = {.pid = 4242, .started_ns = 1700000000123456789LL}, st2;
	spd_output_msg out = {.stream = SPD_OUTPUT_STDERR, .offset = 1ull << 40,
			      .data = (const uint8_t *)"a\0b", .len = 3}, out2;
	spd_destroy_msg d = {.grace_ms = -1}, d2;
	spd_wbuf b = SPD_WBUF_INIT;

	(void)state;
	assert_int_equal(spd_started_msg_encode(&st, &b), 0);
	assert_int_equal(spd_started_msg_decode(&st2, b.data, b.len), 0);
	assert_int_equal(st2.pid, 4242);
	assert_int_equal(st2.started_ns, st.started_ns);
	spd_wbuf_release(&b);

	assert_int_equal(spd_output_msg_encode(&out, &b), 0);
	assert_int_equal(spd_output_msg_decode(&out2, b.data, b.len), 0);
	assert_int_equal(out2.stream, SPD_OUTPUT_STDERR);
	assert_int_equal(out2.offset, 1ull << 40);
	assert_int_equal(out2.len, 3);
	assert_memory_equal(out2.data, "a\0b", 3);
	/* It points into the body: nothing to release. */
	assert_true(out2.data >= b.data && out2.data + 3 == b.data + b.len);
	spd_wbuf_release(&b);
	/* Streams other than stdout and stderr are refused. */
	for (uint32_t stream = 0; stream < 4; stream += 3) {
		out.stream = stream;
		assert_int_equal(spd_output_msg_encode(&out, &b), 0);
		assert_int_equal(spd_output_msg_decode(&out2, b.data, b.len), -EBADMSG);
		spd_wbuf_release(&b);
	}

	assert_int_equal(spd_destroy_msg_encode(&d, &b), 0);
	assert_int_equal(spd_destroy_msg_decode(&d2, b.data, b.len), 0);
	assert_int_equal(d2.grace_ms, -1);
	spd_wbuf_release(&b);

	{
		spd_idle_msg idle = {.count = 4096}, idle2;
		assert_int_equal(spd_idle_msg_encode(&idle, &b), 0);
		assert_int_equal(spd_idle_msg_decode(&idle2, b.data, b.len), 0);
		assert_int_equal(idle2.count, 4096);
		spd_wbuf_release(&b);
	}
}

static void zygote_frames_round_trip(void **state)
{
	spd_zygote_signal_msg sig = {.sig = 15}, sig2;
	spd_zygote_started_msg pid = {.pid_or_err = -EAGAIN}, pid2;
	spd_zygote_exited_msg ex = {.wait_status = 0x0900, .utime_us = 1500000, .stime_us = 7,
				    .maxrss_bytes = 8 << 20,
				    .sent = SPD_EXIT_SENT_STOP | SPD_EXIT_SENT_KILL}, ex2;
	spd_wbuf b = SPD_WBUF_INIT;

	(void)state;
	assert_int_equal(spd_zygote_signal_msg_encode(&sig, &b), 0);
	assert_int_equal(spd_zygote_signal_msg_decode(&sig2, b.data, b.len), 0);
	assert_int_equal(sig2.sig, 15);
	spd_wbuf_release(&b);

	assert_int_equal(spd_zygote_started_msg_encode(&pid, &b), 0);
	assert_int_equal(spd_zygote_started_msg_decode(&pid2, b.data, b.len), 0);
	assert_int_equal(pid2.pid_or_err, -EAGAIN);
	spd_wbuf_release(&b);

	assert_int_equal(spd_zygote_exited_msg_encode(&ex, &b), 0);
	assert_int_equal(spd_zygote_exited_msg_decode(&ex2, b.data, b.len), 0);
	assert_int_equal(ex2.wait_status, 0x0900);
	assert_int_equal(ex2.utime_us, 1500000);
	assert_int_equal(ex2.stime_us, 7);
	assert_int_equal(ex2.maxrss_bytes, 8 << 20);
	assert_int_equal(ex2.sent, SPD_EXIT_SENT_STOP | SPD_EXIT_SENT_KILL);
	spd_wbuf_release(&b);
	/* Only the SENT bits cross: a zygote cannot claim a timeout or an OOM. */
	ex.sent = 0xffffffffu;
	assert_int_equal(spd_zygote_exited_msg_encode(&ex, &b), 0);
	assert_int_equal(spd_zygote_exited_msg_decode(&ex2, b.data, b.len), 0);
	assert_int_equal(ex2.sent, SPD_EXIT_SENT_STOP | SPD_EXIT_SENT_KILL);
	spd_wbuf_release(&b);
}

/* Each frame's decoder, run on a body and cleaned up after: 0 or -errno. */
#define TRY_DECODE(T, release)                                                              \
	static int try_##T(const void *body, size_t len)                                   \
	{                                                                                  \
		T m;                                                                       \
		int rc;                                                                    \
		memset(&m, 0x5a, sizeof m);                                                \
		rc = T##_decode(&m, body, len);                                            \
		if (rc == 0)                                                               \
			release;                                                           \
		return rc;                                                                 \
	}
TRY_DECODE(spd_start_req, spd_start_req_release(&m))
TRY_DECODE(spd_exit_report, spd_exit_report_release(&m))
TRY_DECODE(spd_launcher_hello, spd_launcher_hello_release(&m))
TRY_DECODE(spd_health_msg, spd_health_msg_release(&m))
TRY_DECODE(spd_started_msg, (void)0)
TRY_DECODE(spd_output_msg, (void)0)
TRY_DECODE(spd_destroy_msg, (void)0)
TRY_DECODE(spd_idle_msg, (void)0)
TRY_DECODE(spd_zygote_signal_msg, (void)0)
TRY_DECODE(spd_zygote_started_msg, (void)0)
TRY_DECODE(spd_zygote_exited_msg, (void)0)

/* Every decoder takes exactly its frame's bytes: each proper prefix of a valid
 * body, and the body with a byte more, are -EBADMSG (and leak nothing). */
static void every_frame_rejects_truncated_and_oversized_bodies(void **state)
{
	char *argv[] = {(char *)"a", NULL}, *labels[] = {(char *)"k", (char *)"v", NULL};
	char *names[] = {(char *)"t"}, *errors[] = {(char *)"e"}, *mech[] = {(char *)"m"};
	uint32_t ids[] = {3};
	spd_start_req start = {.process_id = (char *)"p", .target = (char *)"t", .argv = argv,
			       .argc = 1, .input = (uint8_t *)"i", .input_len = 1,
			       .labels = labels, .label_count = 1};
	spd_exit_report exited = {.launch_stage = (char *)"exec", .result = (uint8_t *)"r",
				  .result_len = 1};
	spd_launcher_hello hello = {.count = 1, .ids = ids, .names = names, .errors = errors,
				    .memory_limit_mechanisms = mech};
	spd_health_msg health = {.target = (char *)"t", .why = (char *)"w"};
	spd_started_msg started = {.pid = 1};
	spd_output_msg output = {.stream = 1, .data = (const uint8_t *)"x", .len = 1};
	spd_destroy_msg destroy = {.grace_ms = 5};
	spd_zygote_signal_msg zsig = {.sig = 9};
	spd_zygote_started_msg zstarted = {.pid_or_err = 3};
	spd_zygote_exited_msg zexited = {.wait_status = 1};
	spd_idle_msg idle = {.count = 2};
	struct {
		const char *name;
		spd_wbuf body;
		int (*decode)(const void *body, size_t len);
	} f[] = {
		{"START", SPD_WBUF_INIT, try_spd_start_req},
		{"EXITED", SPD_WBUF_INIT, try_spd_exit_report},
		{"HELLO", SPD_WBUF_INIT, try_spd_launcher_hello},
		{"HEALTH", SPD_WBUF_INIT, try_spd_health_msg},
		{"STARTED", SPD_WBUF_INIT, try_spd_started_msg},
		{"OUTPUT", SPD_WBUF_INIT, try_spd_output_msg},
		{"DESTROY", SPD_WBUF_INIT, try_spd_destroy_msg},
		{"ZYGOTE_SIGNAL", SPD_WBUF_INIT, try_spd_zygote_signal_msg},
		{"ZYGOTE_STARTED", SPD_WBUF_INIT, try_spd_zygote_started_msg},
		{"ZYGOTE_EXITED", SPD_WBUF_INIT, try_spd_zygote_exited_msg},
		{"IDLE", SPD_WBUF_INIT, try_spd_idle_msg},
	};
	size_t nf = sizeof f / sizeof f[0];

	(void)state;
	assert_int_equal(spd_start_req_encode(&start, &f[0].body), 0);
	assert_int_equal(spd_exit_report_encode(&exited, &f[1].body), 0);
	assert_int_equal(spd_launcher_hello_encode(&hello, &f[2].body), 0);
	assert_int_equal(spd_health_msg_encode(&health, &f[3].body), 0);
	assert_int_equal(spd_started_msg_encode(&started, &f[4].body), 0);
	assert_int_equal(spd_output_msg_encode(&output, &f[5].body), 0);
	assert_int_equal(spd_destroy_msg_encode(&destroy, &f[6].body), 0);
	assert_int_equal(spd_zygote_signal_msg_encode(&zsig, &f[7].body), 0);
	assert_int_equal(spd_zygote_started_msg_encode(&zstarted, &f[8].body), 0);
	assert_int_equal(spd_zygote_exited_msg_encode(&zexited, &f[9].body), 0);
	assert_int_equal(spd_idle_msg_encode(&idle, &f[10].body), 0);
	for (size_t i = 0; i < nf; i++) {
		spd_wbuf *b = &f[i].body;
		if (f[i].decode(b->data, b->len) != 0)
			fail_msg("%s: its own encoding refused", f[i].name);
		for (size_t n = 0; n < b->len; n++)
			if (f[i].decode(b->data, n) != -EBADMSG)
				fail_msg("%s: a prefix of %zu/%zu bytes accepted", f[i].name, n, b->len);
		if (f[i].decode(NULL, 0) != -EBADMSG)
			fail_msg("%s: an empty body accepted", f[i].name);
		spd_wbuf_u32(b, 0);
		assert_int_equal(b->err, 0);
		if (f[i].decode(b->data, b->len - 3) != -EBADMSG)
			fail_msg("%s: a trailing byte accepted", f[i].name);
		spd_wbuf_release(b);
	}
}

/* A START too big for one datagram crosses as a memfd and decodes whole. */
static void large_start_over_the_wire(void **state)
{
	pair *p = *state;
	size_t n = 300000;
	uint8_t *input = malloc(n);
	spd_start_req in = {.process_id = (char *)"id", .target = (char *)"t"}, out;
	spd_wbuf b = SPD_WBUF_INIT;
	spd_wire_hdr hdr;
	uint8_t *body = NULL;
	size_t len = 0;

	assert_non_null(input);
	for (size_t i = 0; i < n; i++)
		input[i] = (uint8_t)(i % 251);
	in.input = input;
	in.input_len = n;
	assert_int_equal(spd_start_req_encode(&in, &b), 0);
	assert_int_equal(spd_wire_send(p->a, SPD_WIRE_START, 5, &b), 0);
	assert_int_equal(spd_wire_recv(p->b, &hdr, &body, &len), 1);
	assert_int_equal(spd_start_req_decode(&out, body, len), 0);
	assert_int_equal(out.input_len, n);
	assert_memory_equal(out.input, input, n);
	spd_start_req_release(&out);
	free(body);
	spd_wbuf_release(&b);
	free(input);
}

/* The out-queue never blocks: frames the socket cannot take wait, in order,
 * and go out as the reader makes room. */
static void outq_keeps_order_without_blocking(void **state)
{
	spd_wire_outq q = SPD_WIRE_OUTQ_INIT;
	int sv[2];
	const int n = 64; /* 64 x 60 KiB: far more than a socket buffer */
	int got = 0;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	for (int i = 0; i < n; i++) {
		spd_wbuf b = SPD_WBUF_INIT;
		uint8_t chunk[60 * 1024];
		memset(chunk, i, sizeof chunk);
		spd_wbuf_u32(&b, (uint32_t)i);
		spd_wbuf_bytes(&b, chunk, sizeof chunk);
		assert_int_equal(spd_wire_outq_send(&q, sv[0], SPD_WIRE_OUTPUT, (uint64_t)i, &b), 0);
		assert_null(b.data); /* taken or sent */
	}
	assert_non_null(q.head); /* the socket could not take them all */
	while (got < n) {
		spd_wire_hdr hdr;
		uint8_t *body = NULL;
		size_t len = 0;
		spd_wreader r;
		assert_int_equal(spd_wire_outq_flush(&q, sv[0]), 0);
		assert_int_equal(spd_wire_recv(sv[1], &hdr, &body, &len), 1);
		assert_int_equal(hdr.key, (uint64_t)got);
		spd_wreader_init(&r, body, len);
		assert_int_equal(spd_wreader_u32(&r), (uint32_t)got);
		free(body);
		got++;
	}
	assert_null(q.head);
	assert_int_equal(q.bytes, 0);
	spd_wire_outq_release(&q);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wbuf_round_trip),
		cmocka_unit_test(outq_keeps_order_without_blocking),
		cmocka_unit_test(wbuf_grows),
		cmocka_unit_test(reader_errors_are_sticky),
		cmocka_unit_test_setup_teardown(send_recv_small, pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(send_recv_large_via_memfd, pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(send_recv_at_the_limit, pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(send_refuses_a_failed_wbuf, pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(recv_eof, pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(recv_malformed, pair_setup, pair_teardown),
		cmocka_unit_test(start_req_round_trip),
		cmocka_unit_test(start_req_empty),
		cmocka_unit_test(start_req_traceparent_cap),
		cmocka_unit_test(start_req_truncated_or_garbage),
		cmocka_unit_test(exit_report_round_trip),
		cmocka_unit_test(exit_report_truncated_or_garbage),
		cmocka_unit_test(hello_round_trip),
		cmocka_unit_test(health_round_trip),
		cmocka_unit_test(started_output_destroy_round_trip),
		cmocka_unit_test(zygote_frames_round_trip),
		cmocka_unit_test(every_frame_rejects_truncated_and_oversized_bodies),
		cmocka_unit_test_setup_teardown(large_start_over_the_wire, pair_setup, pair_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
