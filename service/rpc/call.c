#include "service/rpc/call.h"

#include <grpc/slice_buffer.h>
#include <grpc/support/alloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "service/common/clock.h"
#include "service/rpc/call_stats.h"
#include "service/rpc/codec.h"

/* ---- unary ----------------------------------------------------------------- */

typedef struct unary_done {
	spd_tag tag;
	grpc_call *call;
	grpc_byte_buffer *reply;
	grpc_status_code status;
	int cancelled;
} unary_done;

static void unary_done_fn(spd_tag *tag, int ok)
{
	unary_done *u = (unary_done *)tag;

	(void)ok;
	if (u->reply != NULL)
		grpc_byte_buffer_destroy(u->reply);
	spd__call_stats_end(u->call, u->status);
	grpc_call_unref(u->call);
	free(u);
}

void spd_call_finish(grpc_call *call, grpc_status_code status, const char *details,
		     const ProtobufCMessage *reply)
{
	unary_done *u = calloc(1, sizeof *u);
	grpc_op ops[4];
	grpc_slice msg;
	size_t n = 0;

	if (u == NULL) {
		grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		spd__call_stats_end(call, GRPC_STATUS_RESOURCE_EXHAUSTED);
		grpc_call_unref(call);
		return;
	}
	u->tag.fn = unary_done_fn;
	u->call = call;
	u->status = status;
	memset(ops, 0, sizeof ops);
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (status == GRPC_STATUS_OK && reply != NULL) {
		u->reply = spd_codec_pack(reply);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = u->reply;
	} else if (status == GRPC_STATUS_OK) {
		grpc_slice empty = grpc_empty_slice();
		u->reply = grpc_raw_byte_buffer_create(&empty, 1);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = u->reply;
	}
	msg = grpc_slice_from_copied_string(details != NULL ? details : "");
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = status;
	ops[n++].data.send_status_from_server.status_details = details != NULL ? &msg : NULL;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n++].data.recv_close_on_server.cancelled = &u->cancelled;
	if (grpc_call_start_batch(call, ops, n, &u->tag, NULL) != GRPC_CALL_OK)
		unary_done_fn(&u->tag, 0);
	grpc_slice_unref(msg);
}

/* ---- server streaming --------------------------------------------------------- */

/* One queued message. BYTES is what it counts against the bounds; OUTPUT, the
 * output bytes a droppable message carries (0: a state message, never
 * dropped); INITIAL, a message of the subscription's first burst. */
typedef struct qmsg {
	struct qmsg *next;
	grpc_byte_buffer *bb;
	size_t bytes, output;
	bool initial;
} qmsg;

/* Bytes held by every stream's queue and in-flight message together. */
static atomic_size_t total_bytes;

struct spd_stream {
	pthread_mutex_t mu;
	atomic_int refs;
	grpc_call *call;
	spd_tag close_tag, send_tag;
	int cancelled;               /* RECV_CLOSE_ON_SERVER's out-parameter */
	qmsg *head, *tail;
	size_t queued_bytes;         /* of the queue, the in-flight message excluded */
	size_t output_bytes;         /* of the queue's droppable messages */
	size_t initial_bytes;        /* of the queue's first-burst messages */
	size_t in_flight_bytes;
	uint64_t dropped;            /* output bytes dropped so far (dropped_bytes) */
	int64_t progress_ns;         /* last send completed (or created), monotonic */
	grpc_byte_buffer *in_flight;
	bool md_sent, finishing, status_sent, dead;
	bool too_slow;               /* cut off: what is queued goes, then the status */
	grpc_status_code status;
	char *details;
	spd_stream_cancel_fn on_cancel;
	void *user;
	void (*user_free)(void *);
};

size_t spd_stream_total_bytes(void)
{
	return atomic_load(&total_bytes);
}

static size_t msg_bytes(grpc_byte_buffer *bb)
{
	return grpc_byte_buffer_length(bb) + SPD_STREAM_MSG_OVERHEAD;
}

/* Unlinks and frees the queued message after PREV (NULL: the head), keeping
 * the counts. Called with s->mu held. */
static void unqueue(spd_stream *s, qmsg *prev, bool destroy)
{
	qmsg *m = prev != NULL ? prev->next : s->head;

	if (prev != NULL)
		prev->next = m->next;
	else
		s->head = m->next;
	if (s->tail == m)
		s->tail = prev;
	s->queued_bytes -= m->bytes;
	if (m->output != 0)
		s->output_bytes -= m->bytes;
	if (m->initial)
		s->initial_bytes -= m->bytes;
	if (destroy) {
		atomic_fetch_sub(&total_bytes, m->bytes);
		grpc_byte_buffer_destroy(m->bb);
	}
	free(m);
}

static void drop_queue(spd_stream *s)
{
	while (s->head != NULL)
		unqueue(s, NULL, true);
}

static void stream_free(spd_stream *s)
{
	drop_queue(s);
	if (s->user_free != NULL)
		s->user_free(s->user);
	grpc_call_unref(s->call);
	pthread_mutex_destroy(&s->mu);
	free(s->details);
	free(s);
}

void spd_stream_ref(spd_stream *s)
{
	atomic_fetch_add(&s->refs, 1);
}

void spd_stream_unref(spd_stream *s)
{
	if (atomic_fetch_sub(&s->refs, 1) == 1)
		stream_free(s);
}

/* Appends field 7 (ProcessEvent.dropped_bytes, varint) to BB. A later value of
 * a singular scalar field wins when the message is parsed, so the count is the
 * one at delivery: drops decided after the message was packed are told too. */
static void stamp_dropped(grpc_byte_buffer *bb, uint64_t dropped)
{
	uint8_t buf[11];
	size_t n = 0;
	grpc_slice sl;

	buf[n++] = 7u << 3;
	do {
		buf[n++] = (uint8_t)((dropped & 0x7f) | (dropped > 0x7f ? 0x80 : 0));
		dropped >>= 7;
	} while (dropped != 0);
	sl = grpc_slice_from_copied_buffer((const char *)buf, n);
	grpc_slice_buffer_add(&bb->data.raw.slice_buffer, sl);
}

/* Starts the next batch if none is in flight. Called with s->mu held. */
static void pump(spd_stream *s)
{
	grpc_op ops[3];
	grpc_slice msg;
	size_t n = 0;
	bool send_status;

	if (s->in_flight != NULL || s->status_sent || s->dead)
		return;
	send_status = s->head == NULL && s->finishing;
	if (s->head == NULL && !send_status)
		return;
	memset(ops, 0, sizeof ops);
	if (!s->md_sent) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		s->md_sent = true;
	}
	if (!send_status) {
		s->in_flight = s->head->bb;
		s->in_flight_bytes = s->head->bytes;
		unqueue(s, NULL, false);
		if (s->dropped != 0)
			stamp_dropped(s->in_flight, s->dropped);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = s->in_flight;
	} else {
		msg = grpc_slice_from_copied_string(s->details != NULL ? s->details : "");
		ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
		ops[n].data.send_status_from_server.status = s->status;
		ops[n++].data.send_status_from_server.status_details = &msg;
		s->status_sent = true;
	}
	spd_stream_ref(s);
	if (grpc_call_start_batch(s->call, ops, n, &s->send_tag, NULL) != GRPC_CALL_OK) {
		s->dead = true;
		if (s->in_flight != NULL) {
			grpc_byte_buffer_destroy(s->in_flight);
			s->in_flight = NULL;
			atomic_fetch_sub(&total_bytes, s->in_flight_bytes);
			s->in_flight_bytes = 0;
		}
		atomic_fetch_sub(&s->refs, 1); /* never the last: the caller holds one */
	}
	if (send_status)
		grpc_slice_unref(msg);
}

static void send_done(spd_tag *tag, int ok)
{
	spd_stream *s = (spd_stream *)((char *)tag - offsetof(spd_stream, send_tag));

	pthread_mutex_lock(&s->mu);
	if (s->in_flight != NULL) {
		grpc_byte_buffer_destroy(s->in_flight);
		s->in_flight = NULL;
		atomic_fetch_sub(&total_bytes, s->in_flight_bytes);
		s->in_flight_bytes = 0;
	}
	if (ok)
		s->progress_ns = spd_clock_mono_ns();
	if (!ok) {
		s->dead = true;
		drop_queue(s);
	}
	pump(s);
	pthread_mutex_unlock(&s->mu);
	spd_stream_unref(s);
}

static void close_done(spd_tag *tag, int ok)
{
	spd_stream *s = (spd_stream *)((char *)tag - offsetof(spd_stream, close_tag));

	(void)ok;
	pthread_mutex_lock(&s->mu);
	s->dead = s->dead || s->cancelled;
	if (s->dead)
		drop_queue(s);
	/* The call is over: the status we sent, or the client's cancel. */
	spd__call_stats_end(s->call, s->status_sent && !s->cancelled ? s->status
				     : s->too_slow			 ? GRPC_STATUS_RESOURCE_EXHAUSTED
									 : GRPC_STATUS_CANCELLED);
	pthread_mutex_unlock(&s->mu);
	/* Always, even after a status we sent: a stream ended by an error of its
	 * own (too slow, out of memory) may still hold a subscription whose
	 * reference only on_cancel drops (a watch-all never ends otherwise). */
	if (s->on_cancel != NULL)
		s->on_cancel(s->user);
	spd_stream_unref(s);
}

spd_stream *spd_stream_create(grpc_call *call, spd_stream_cancel_fn on_cancel, void *user,
			      void (*user_free)(void *user))
{
	spd_stream *s = calloc(1, sizeof *s);
	grpc_op op;

	if (s == NULL) {
		spd_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	atomic_init(&s->refs, 2); /* the caller's, and the close batch's */
	s->call = call;
	s->close_tag.fn = close_done;
	s->send_tag.fn = send_done;
	s->on_cancel = on_cancel;
	s->user = user;
	s->user_free = user_free;
	s->progress_ns = spd_clock_mono_ns();
	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &s->cancelled;
	if (grpc_call_start_batch(call, &op, 1, &s->close_tag, NULL) != GRPC_CALL_OK) {
		s->dead = true;
		atomic_fetch_sub(&s->refs, 1);
		spd__call_stats_end(call, GRPC_STATUS_CANCELLED); /* no close_done will */
	}
	return s;
}

#define TOO_SLOW "watcher too slow; resume with after_sequence"

/* A cut-off stream that has not taken a message for SPD_STREAM_STUCK_NS is
 * ended now: the status by cancelling, not behind the queue, which a client
 * that does not read would never let through; what it held is freed. Called
 * with s->mu held. Returns true if S is (now) dead. */
static bool end_if_stuck(spd_stream *s)
{
	if (!s->dead && s->too_slow && spd_clock_mono_ns() - s->progress_ns > SPD_STREAM_STUCK_NS) {
		drop_queue(s);
		s->status_sent = true;
		s->dead = true;
		grpc_call_cancel_with_status(s->call, GRPC_STATUS_RESOURCE_EXHAUSTED, TOO_SLOW, NULL);
	}
	return s->dead;
}

/* Ends S as too slow (SPEC §12 "Slow watchers"): nothing more is queued; what
 * is goes out, then RESOURCE_EXHAUSTED, so a client that still reads has less
 * to resume. Called with s->mu held. */
static void end_too_slow(spd_stream *s)
{
	s->too_slow = true;
	if (!s->finishing) {
		s->finishing = true;
		s->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
		free(s->details);
		s->details = strdup(TOO_SLOW);
	}
	end_if_stuck(s);
}

/* Whether N more bytes of state fit S and the global bound. A first-burst
 * message (INITIAL) is held to the global bound only, and the first burst
 * still queued does not count against the stream's own bound: a watch-all
 * starts with a SNAPSHOT of every live process, however many, and must not be
 * cut off for that. A stream with nothing queued (one message in flight at
 * most) is not behind: it always takes one more. */
static bool state_fits(const spd_stream *s, size_t n, bool initial)
{
	size_t mine = s->queued_bytes + s->in_flight_bytes - s->initial_bytes;

	if (s->head == NULL)
		return true;
	if (atomic_load(&total_bytes) + n > SPD_STREAM_TOTAL_BYTES)
		return false;
	return initial || mine + n <= SPD_STREAM_QUEUE_BYTES;
}

/* Appends M (its output and initial set) carrying BB, N bytes, and counts
 * it. Called with s->mu held. */
static void enqueue(spd_stream *s, qmsg *m, grpc_byte_buffer *bb, size_t n)
{
	m->bb = bb;
	m->bytes = n;
	if (s->tail != NULL)
		s->tail->next = m;
	else
		s->head = m;
	s->tail = m;
	s->queued_bytes += n;
	if (m->output != 0)
		s->output_bytes += n;
	if (m->initial)
		s->initial_bytes += n;
	atomic_fetch_add(&total_bytes, n);
}

static bool push(spd_stream *s, grpc_byte_buffer *bb, bool initial)
{
	size_t n = msg_bytes(bb);
	qmsg *m = NULL;
	bool ok;

	pthread_mutex_lock(&s->mu);
	ok = !end_if_stuck(s) && !s->finishing;
	/* Output goes first, oldest first, counted as dropped. */
	for (qmsg *prev = NULL, *q = s->head; ok && q != NULL && !state_fits(s, n, initial);) {
		qmsg *next = q->next;
		if (q->output != 0) {
			s->dropped += q->output;
			unqueue(s, prev, true);
		} else {
			prev = q;
		}
		q = next;
	}
	if (ok && !state_fits(s, n, initial)) {
		end_too_slow(s);
		ok = false;
	}
	if (ok) {
		m = calloc(1, sizeof *m);
		if (m == NULL) {
			end_too_slow(s); /* a state event cannot be lost quietly */
			ok = false;
		}
	}
	if (ok) {
		m->initial = initial;
		enqueue(s, m, bb, n);
	} else {
		grpc_byte_buffer_destroy(bb);
	}
	pump(s);
	pthread_mutex_unlock(&s->mu);
	return ok;
}

bool spd_stream_push(spd_stream *s, grpc_byte_buffer *bb)
{
	return push(s, bb, false);
}

bool spd_stream_push_initial(spd_stream *s, grpc_byte_buffer *bb)
{
	return push(s, bb, true);
}

int spd_stream_offer(spd_stream *s, grpc_byte_buffer *bb, size_t bytes)
{
	size_t n = msg_bytes(bb);
	qmsg *m = NULL;
	int rc;

	if (bytes == 0)
		bytes = 1;
	pthread_mutex_lock(&s->mu);
	if (end_if_stuck(s) || s->finishing) {
		rc = -1;
	} else if (s->output_bytes + n > SPD_STREAM_OUTPUT_BYTES ||
		   s->queued_bytes + s->in_flight_bytes + n > SPD_STREAM_QUEUE_BYTES ||
		   atomic_load(&total_bytes) + n > SPD_STREAM_TOTAL_BYTES / 2 ||
		   (m = calloc(1, sizeof *m)) == NULL) {
		/* Output may take only part of the stream's bound, and of the
		 * global one: state events keep the rest. */
		s->dropped += bytes;
		rc = 0;
	} else {
		m->output = bytes;
		enqueue(s, m, bb, n);
		bb = NULL;
		rc = 1;
		pump(s);
	}
	pthread_mutex_unlock(&s->mu);
	if (bb != NULL)
		grpc_byte_buffer_destroy(bb);
	return rc;
}

void spd_stream_finish(spd_stream *s, grpc_status_code status, const char *details)
{
	pthread_mutex_lock(&s->mu);
	if (!s->finishing) {
		s->finishing = true;
		s->status = status;
		s->details = details != NULL ? strdup(details) : NULL;
	}
	pump(s);
	pthread_mutex_unlock(&s->mu);
}
