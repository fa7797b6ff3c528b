/* The rpc stream queue (service/rpc/call.h) against a real gRPC client on
 * loopback: messages go out in order and the status after them; a client that
 * does not read costs the stream's byte bound and no more, and is cut off
 * (RESOURCE_EXHAUSTED) when a state message does not fit; OUTPUT offered past
 * its share is dropped and the count rides on the next message
 * (dropped_bytes); the cancel callback runs once, and a dead stream frees
 * what it held. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service/common/clock.h"
#include "service/rpc/call.h"

#define DEADLINE_NS (60LL * 1000000000LL)

static grpc_server *server;
static grpc_completion_queue *scq, *ccq;
static grpc_channel *channel;
static pthread_t cq_thread;

static void *cq_main(void *arg)
{
	(void)arg;
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(scq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			return NULL;
		if (ev.type == GRPC_OP_COMPLETE)
			((spd_tag *)ev.tag)->fn(ev.tag, ev.success);
	}
}

/* ---- the server side: one incoming call ------------------------------------------ */

typedef struct incoming {
	spd_tag tag;
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array md;
	atomic_bool done;
} incoming;

static void incoming_done(spd_tag *tag, int ok)
{
	assert_true(ok);
	atomic_store(&((incoming *)tag)->done, true);
}

static atomic_int cancels;

static void on_cancel(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&cancels, 1);
}

/* Waits until COND(ARG) holds (DEADLINE_NS bounds only a hung test). */
static void wait_for(bool (*cond)(void *), void *arg)
{
	int64_t deadline = spd_clock_mono_ns() + DEADLINE_NS;
	struct timespec nap = {0, 2 * 1000000};

	while (!cond(arg) && spd_clock_mono_ns() < deadline)
		nanosleep(&nap, NULL);
	assert_true(cond(arg));
}

static bool incoming_is_done(void *arg)
{
	return atomic_load(&((incoming *)arg)->done);
}

static bool cancels_is(void *arg)
{
	return atomic_load(&cancels) == *(int *)arg;
}

static bool total_is_zero(void *arg)
{
	(void)arg;
	return spd_stream_total_bytes() == 0;
}

/* ---- the client side ------------------------------------------------------------- */

typedef struct client {
	grpc_call *call;
	grpc_metadata_array initial, trailing;
	grpc_status_code status;
	grpc_slice details;
	bool first_read;
} client;

static gpr_timespec deadline(void)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(60, GPR_TIMESPAN));
}

static void pluck(void *tag)
{
	grpc_event ev = grpc_completion_queue_pluck(ccq, tag, deadline(), NULL);

	assert_int_equal(ev.type, GRPC_OP_COMPLETE);
	assert_true(ev.success);
}

/* Opens a call and returns the server's end, wrapped in a stream. */
static spd_stream *open_stream(client *c)
{
	incoming in = {.tag.fn = incoming_done};
	grpc_slice method = grpc_slice_from_static_string("/t.S/Stream");
	grpc_op ops[3];
	spd_stream *s;

	memset(c, 0, sizeof *c);
	grpc_call_details_init(&in.details);
	grpc_metadata_array_init(&in.md);
	assert_int_equal(grpc_server_request_call(server, &in.call, &in.details, &in.md, scq, scq,
						  &in.tag),
			 GRPC_CALL_OK);
	c->call = grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, ccq, method, NULL,
					   gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[2].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[2].data.recv_status_on_client.trailing_metadata = &c->trailing;
	ops[2].data.recv_status_on_client.status = &c->status;
	ops[2].data.recv_status_on_client.status_details = &c->details;
	assert_int_equal(grpc_call_start_batch(c->call, ops, 2, (void *)1, NULL), GRPC_CALL_OK);
	pluck((void *)1);
	assert_int_equal(grpc_call_start_batch(c->call, ops + 2, 1, (void *)9, NULL), GRPC_CALL_OK);
	wait_for(incoming_is_done, &in);
	grpc_call_details_destroy(&in.details);
	grpc_metadata_array_destroy(&in.md);
	atomic_store(&cancels, 0);
	s = spd_stream_create(in.call, on_cancel, NULL, NULL);
	assert_non_null(s);
	return s;
}

/* The next message, as a flat buffer (*LEN bytes, free()d by the caller), or
 * NULL at the end of the stream. */
static uint8_t *client_read(client *c, size_t *len)
{
	grpc_byte_buffer *bb = NULL;
	grpc_byte_buffer_reader r;
	grpc_op ops[2];
	uint8_t *out;
	grpc_slice sl;
	size_t n = 0;

	memset(ops, 0, sizeof ops);
	if (!c->first_read) {
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n++].data.recv_initial_metadata.recv_initial_metadata = &c->initial;
		c->first_read = true;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n++].data.recv_message.recv_message = &bb;
	assert_int_equal(grpc_call_start_batch(c->call, ops, n, (void *)2, NULL), GRPC_CALL_OK);
	pluck((void *)2);
	if (bb == NULL)
		return NULL;
	assert_true(grpc_byte_buffer_reader_init(&r, bb));
	sl = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	grpc_byte_buffer_destroy(bb);
	*len = GRPC_SLICE_LENGTH(sl);
	out = malloc(*len + 1);
	assert_non_null(out);
	memcpy(out, GRPC_SLICE_START_PTR(sl), *len);
	grpc_slice_unref(sl);
	return out;
}

/* Waits for the call's status. */
static grpc_status_code client_close(client *c)
{
	grpc_status_code st;

	pluck((void *)9);
	st = c->status;
	grpc_slice_unref(c->details);
	grpc_metadata_array_destroy(&c->initial);
	grpc_metadata_array_destroy(&c->trailing);
	grpc_call_unref(c->call);
	return st;
}

static grpc_byte_buffer *message(const void *data, size_t len)
{
	grpc_slice sl = grpc_slice_from_copied_buffer(data, len);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);

	grpc_slice_unref(sl);
	return bb;
}

static grpc_byte_buffer *filled(size_t len)
{
	uint8_t *buf = calloc(1, len);
	grpc_byte_buffer *bb;

	assert_non_null(buf);
	bb = message(buf, len);
	free(buf);
	return bb;
}

/* ---- tests ------------------------------------------------------------------------ */

static void in_order_then_status(void **state)
{
	client c;
	spd_stream *s = open_stream(&c);
	int one = 1;

	(void)state;
	for (int i = 0; i < 200; i++) {
		char m[8];
		snprintf(m, sizeof m, "m%03d", i);
		assert_true(spd_stream_push(s, message(m, strlen(m))));
	}
	spd_stream_finish(s, GRPC_STATUS_OK, NULL);
	assert_false(spd_stream_push(s, message("late", 4))); /* finished: refused */
	for (int i = 0; i < 200; i++) {
		char m[8];
		size_t len;
		uint8_t *got = client_read(&c, &len);
		snprintf(m, sizeof m, "m%03d", i);
		assert_non_null(got);
		assert_int_equal(len, strlen(m));
		assert_memory_equal(got, m, len);
		free(got);
	}
	assert_int_equal(client_close(&c), GRPC_STATUS_OK);
	wait_for(cancels_is, &one);
	spd_stream_unref(s);
	wait_for(total_is_zero, NULL);
}

/* A client that reads nothing: the stream holds at most its bound (plus the
 * message in flight), then is cut off; after the cancel it holds nothing. */
static void a_stalled_client_is_bounded_and_cut_off(void **state)
{
	const size_t chunk = 1024u * 1024u;
	client c;
	spd_stream *s = open_stream(&c);
	int one = 1, pushed = 0;

	(void)state;
	while (spd_stream_push(s, filled(chunk))) {
		pushed++;
		assert_true(spd_stream_total_bytes() <=
			    SPD_STREAM_QUEUE_BYTES + chunk + SPD_STREAM_MSG_OVERHEAD);
		assert_true(pushed < 1000);
	}
	assert_true(pushed >= (int)(SPD_STREAM_QUEUE_BYTES / chunk) - 1);
	/* Cut off: nothing more is taken, not even output. */
	assert_false(spd_stream_push(s, message("x", 1)));
	assert_int_equal(spd_stream_offer(s, message("o", 1), 1), -1);
	grpc_call_cancel(c.call, NULL);
	assert_int_not_equal(client_close(&c), GRPC_STATUS_OK);
	wait_for(cancels_is, &one);
	spd_stream_unref(s);
	wait_for(total_is_zero, NULL);
}

/* The last varint field 7 (dropped_bytes) appended to MSG, or 0 if none. */
static uint64_t stamped_dropped(const uint8_t *msg, size_t len)
{
	for (size_t i = len; i-- > 0;) {
		uint64_t v = 0;
		size_t j;
		int shift = 0;
		if (msg[i] != (7u << 3))
			continue;
		for (j = i + 1; j < len; j++, shift += 7) {
			v |= (uint64_t)(msg[j] & 0x7f) << shift;
			if (!(msg[j] & 0x80))
				break;
		}
		if (j == len - 1)
			return v;
	}
	return 0;
}

/* OUTPUT past its share of the bound is dropped, counted, and the count goes
 * out on the next message; state messages still go. */
static void output_past_its_share_is_dropped_and_counted(void **state)
{
	const size_t chunk = 64u * 1024u;
	client c;
	spd_stream *s = open_stream(&c);
	uint64_t dropped = 0;
	int queued = 0, one = 1;
	uint8_t *got, *last = NULL;
	size_t len, last_len = 0;

	(void)state;
	/* Until SPD_STREAM_OUTPUT_BYTES is full, then 10 more, all dropped. */
	for (int misses = 0; misses < 10;) {
		int rc = spd_stream_offer(s, filled(chunk), chunk);
		assert_true(rc >= 0);
		if (rc == 1) {
			queued++; /* (some go out while the window lets them) */
		} else {
			dropped += chunk;
			misses++;
		}
		assert_true(queued < 1000);
	}
	assert_true(spd_stream_push(s, message("state", 5)));
	spd_stream_finish(s, GRPC_STATUS_OK, NULL);
	while ((got = client_read(&c, &len)) != NULL) {
		free(last);
		last = got;
		last_len = len;
	}
	assert_non_null(last);
	assert_true(last_len > 5);
	assert_memory_equal(last, "state", 5);
	assert_int_equal(stamped_dropped(last, last_len), dropped);
	free(last);
	assert_int_equal(client_close(&c), GRPC_STATUS_OK);
	wait_for(cancels_is, &one);
	spd_stream_unref(s);
	wait_for(total_is_zero, NULL);
}

static int group_setup(void **state)
{
	grpc_server_credentials *sc;
	grpc_channel_credentials *cc;
	char target[64];
	int port;

	(void)state;
	grpc_init();
	scq = grpc_completion_queue_create_for_next(NULL);
	ccq = grpc_completion_queue_create_for_pluck(NULL);
	server = grpc_server_create(NULL, NULL);
	grpc_server_register_completion_queue(server, scq, NULL);
	sc = grpc_insecure_server_credentials_create();
	port = grpc_server_add_http2_port(server, "127.0.0.1:0", sc);
	grpc_server_credentials_release(sc);
	if (port <= 0)
		return -1;
	grpc_server_start(server);
	if (pthread_create(&cq_thread, NULL, cq_main, NULL) != 0)
		return -1;
	snprintf(target, sizeof target, "127.0.0.1:%d", port);
	cc = grpc_insecure_credentials_create();
	channel = grpc_channel_create(target, cc, NULL);
	grpc_channel_credentials_release(cc);
	return 0;
}

typedef struct shutdown_tag {
	spd_tag tag;
	atomic_bool done;
} shutdown_tag;

static void shutdown_done(spd_tag *tag, int ok)
{
	(void)ok;
	atomic_store(&((shutdown_tag *)tag)->done, true);
}

static bool shutdown_is_done(void *arg)
{
	return atomic_load(&((shutdown_tag *)arg)->done);
}

static int group_teardown(void **state)
{
	shutdown_tag st = {.tag.fn = shutdown_done};

	(void)state;
	grpc_channel_destroy(channel);
	grpc_server_shutdown_and_notify(server, scq, &st.tag);
	grpc_server_cancel_all_calls(server);
	wait_for(shutdown_is_done, &st);
	grpc_server_destroy(server);
	grpc_completion_queue_shutdown(scq);
	pthread_join(cq_thread, NULL);
	grpc_completion_queue_destroy(scq);
	grpc_completion_queue_shutdown(ccq);
	while (grpc_completion_queue_pluck(ccq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(ccq);
	grpc_shutdown();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(in_order_then_status),
		cmocka_unit_test(a_stalled_client_is_bounded_and_cut_off),
		cmocka_unit_test(output_past_its_share_is_dropped_and_counted),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
