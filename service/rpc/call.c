#include "service/rpc/call.h"

#include <grpc/support/alloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "service/rpc/codec.h"

/* ---- unary ----------------------------------------------------------------- */

typedef struct unary_done {
	spd_tag tag;
	grpc_call *call;
	grpc_byte_buffer *reply;
	int cancelled;
} unary_done;

static void unary_done_fn(spd_tag *tag, int ok)
{
	unary_done *u = (unary_done *)tag;

	(void)ok;
	if (u->reply != NULL)
		grpc_byte_buffer_destroy(u->reply);
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
		grpc_call_unref(call);
		return;
	}
	u->tag.fn = unary_done_fn;
	u->call = call;
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

/* Messages queued per stream before the stream is ended as too slow. State
 * events are never dropped (SPEC §3), so a watcher that cannot keep up this
 * far is cut off with RESOURCE_EXHAUSTED rather than lose one. */
#define STREAM_QUEUE_MAX 4096u
/* Droppable (OUTPUT) messages may fill only part of the queue, and only this
 * many bytes of them may wait per stream. */
#define STREAM_DROPPABLE_MAX (STREAM_QUEUE_MAX / 2)
#define STREAM_DROPPABLE_BYTES (4u * 1024u * 1024u)

struct spd_stream {
	pthread_mutex_t mu;
	atomic_int refs;
	grpc_call *call;
	spd_tag close_tag, send_tag;
	int cancelled;               /* RECV_CLOSE_ON_SERVER's out-parameter */
	grpc_byte_buffer **queue;    /* ring of STREAM_QUEUE_MAX */
	size_t *sizes;               /* droppable bytes of each queued message (0: state) */
	size_t head, count;
	size_t droppable, droppable_bytes;
	grpc_byte_buffer *in_flight;
	bool md_sent, finishing, status_sent, dead;
	grpc_status_code status;
	char *details;
	spd_stream_cancel_fn on_cancel;
	void *user;
	void (*user_free)(void *);
};

static void stream_free(spd_stream *s)
{
	while (s->count > 0) {
		grpc_byte_buffer_destroy(s->queue[s->head]);
		s->head = (s->head + 1) % STREAM_QUEUE_MAX;
		s->count--;
	}
	if (s->user_free != NULL)
		s->user_free(s->user);
	grpc_call_unref(s->call);
	pthread_mutex_destroy(&s->mu);
	free(s->details);
	free(s->queue);
	free(s->sizes);
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

/* Starts the next batch if none is in flight. Called with s->mu held. */
static void pump(spd_stream *s)
{
	grpc_op ops[3];
	grpc_slice msg;
	size_t n = 0;
	bool send_status;

	if (s->in_flight != NULL || s->status_sent || s->dead)
		return;
	send_status = s->count == 0 && s->finishing;
	if (s->count == 0 && !send_status)
		return;
	memset(ops, 0, sizeof ops);
	if (!s->md_sent) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		s->md_sent = true;
	}
	if (!send_status) {
		s->in_flight = s->queue[s->head];
		if (s->sizes[s->head] != 0) {
			s->droppable--;
			s->droppable_bytes -= s->sizes[s->head];
		}
		s->head = (s->head + 1) % STREAM_QUEUE_MAX;
		s->count--;
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
	}
	if (!ok)
		s->dead = true;
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
	pthread_mutex_unlock(&s->mu);
	/* Always, even after a status we sent: a stream ended by an error of its
	 * own (queue full, out of memory) may still hold a subscription whose
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

	if (s != NULL) {
		s->queue = calloc(STREAM_QUEUE_MAX, sizeof *s->queue);
		s->sizes = calloc(STREAM_QUEUE_MAX, sizeof *s->sizes);
	}
	if (s == NULL || s->queue == NULL || s->sizes == NULL) {
		if (s != NULL) {
			free(s->queue);
			free(s->sizes);
		}
		free(s);
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
	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &s->cancelled;
	if (grpc_call_start_batch(call, &op, 1, &s->close_tag, NULL) != GRPC_CALL_OK) {
		s->dead = true;
		atomic_fetch_sub(&s->refs, 1);
	}
	return s;
}

bool spd_stream_push(spd_stream *s, grpc_byte_buffer *bb)
{
	bool ok;

	pthread_mutex_lock(&s->mu);
	ok = !s->dead && !s->finishing;
	if (ok && s->count == STREAM_QUEUE_MAX) {
		/* Too slow to keep every state event: end it honestly. */
		s->finishing = true;
		s->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
		s->details = strdup("watcher too slow: event queue full");
		ok = false;
	}
	if (ok) {
		size_t at = (s->head + s->count) % STREAM_QUEUE_MAX;
		s->queue[at] = bb;
		s->sizes[at] = 0;
		s->count++;
	} else {
		grpc_byte_buffer_destroy(bb);
	}
	pump(s);
	pthread_mutex_unlock(&s->mu);
	return ok;
}

int spd_stream_offer(spd_stream *s, grpc_byte_buffer *bb, size_t bytes)
{
	int rc;

	if (bytes == 0)
		bytes = 1;
	pthread_mutex_lock(&s->mu);
	if (s->dead || s->finishing) {
		rc = -1;
	} else if (s->count >= STREAM_QUEUE_MAX || s->droppable >= STREAM_DROPPABLE_MAX ||
		   s->droppable_bytes + bytes > STREAM_DROPPABLE_BYTES) {
		/* count: a queue full of state events has no slot left (writing one
		 * would overwrite the head and overrun the ring). */
		rc = 0;
	} else {
		size_t at = (s->head + s->count) % STREAM_QUEUE_MAX;
		s->queue[at] = bb;
		s->sizes[at] = bytes;
		s->count++;
		s->droppable++;
		s->droppable_bytes += bytes;
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
