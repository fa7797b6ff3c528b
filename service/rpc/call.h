/* Server-side call plumbing on the gRPC C core completion-queue API.
 *
 * Every outstanding batch carries its own spd_tag; the CQ thread calls
 * tag->fn(tag, ok). A unary call ends with spd_call_finish() (one batch, sent
 * from any thread). A server-streaming call is an spd_stream: a FIFO bounded in
 * bytes with at most one SEND_MESSAGE in flight (gRPC notes §4b, §7), ended
 * with spd_stream_finish().
 *
 * Slow readers (SPEC §12 "Slow watchers"): a SEND_MESSAGE completion is the only
 * flow-control signal, so what a client has not read waits here, bounded:
 * - each stream holds at most SPD_STREAM_QUEUE_BYTES (the message in flight
 *   included; a stream with nothing queued always takes one more message, so
 *   a message larger than the bound still goes to a client that reads);
 * - droppable (OUTPUT) messages may take only SPD_STREAM_OUTPUT_BYTES of it,
 *   and only while all streams hold less than half of SPD_STREAM_TOTAL_BYTES;
 *   beyond, they are dropped and counted, and the count goes out as
 *   ProcessEvent.dropped_bytes on every later message of the stream;
 * - a state message that does not fit first evicts the queued OUTPUT
 *   messages (counted as dropped); if it still does not fit, the stream is
 *   cut off: it takes nothing more, what it holds goes out, then
 *   RESOURCE_EXHAUSTED "watcher too slow; resume with after_sequence";
 * - a cut-off stream whose client has taken no message for
 *   SPD_STREAM_STUCK_NS is ended at its next message by cancelling (the
 *   status cannot queue behind messages nobody reads), and what it held is
 *   freed.
 *
 * Locks: a stream's lock is the innermost of the front's (registry.h
 * "Locks"): spd_stream_* may be called holding the registry's lock, and
 * nothing but gRPC core is called with a stream's lock held; the cancel
 * callback runs with none.
 */
#ifndef SPAWND_RPC_CALL_H
#define SPAWND_RPC_CALL_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

typedef struct spd_tag {
	void (*fn)(struct spd_tag *tag, int ok);
} spd_tag;

/* Ends CALL with STATUS (DETAILS may be NULL) and, when STATUS is OK, the packed
 * REPLY (may be NULL for an empty message). Takes ownership of CALL: it is
 * unreffed when the batch completes. Any thread. */
void spd_call_finish(grpc_call *call, grpc_status_code status, const char *details,
		     const ProtobufCMessage *reply);

/* 16 MiB per stream: five terminal events at the default limits (1 MiB result
 * and two 1 MiB output tails each) plus thousands of small state events, so a
 * client that lags behind a burst is not cut off, while one that never reads
 * costs this much and no more. */
#define SPD_STREAM_QUEUE_BYTES (16u * 1024u * 1024u)
/* Output keeps to a quarter of it; state events have the rest. */
#define SPD_STREAM_OUTPUT_BYTES (SPD_STREAM_QUEUE_BYTES / 4)
/* All streams together: 16 streams that never read, filled to their bound.
 * Past it a stream that is behind (has anything queued) is ended as too slow
 * at its next state event, so 1,000 stuck watchers cannot take 16 GiB. */
#define SPD_STREAM_TOTAL_BYTES (256u * 1024u * 1024u)
/* How long a cut-off stream may make no progress before it is cancelled and
 * its queue freed: long enough for a reader merely slowed down. */
#define SPD_STREAM_STUCK_NS (10LL * 1000000000LL)
/* Counted per message besides its bytes: the queue node, the byte buffer and
 * its slice. */
#define SPD_STREAM_MSG_OVERHEAD 128u

typedef struct spd_stream spd_stream;

/* Called once on the CQ thread when the call is over (RECV_CLOSE_ON_SERVER
 * completed): the client cancelled, the call died, or our status went out. It
 * must drop whatever subscription still holds a reference, and be harmless
 * when there is none. No stream lock is held. */
typedef void (*spd_stream_cancel_fn)(void *ctx);

/* Wraps CALL (ownership taken) and starts watching for cancellation. The
 * returned reference belongs to the caller; USER is released with USER_FREE
 * when the last reference goes. NULL on allocation failure (CALL is then
 * ended with RESOURCE_EXHAUSTED). */
spd_stream *spd_stream_create(grpc_call *call, spd_stream_cancel_fn on_cancel, void *user,
			      void (*user_free)(void *user));

/* Queues a state message (ownership of BB taken), never dropped: returns false,
 * dropping BB, when the stream is finished or dead, or when it did not fit and
 * the stream was ended as too slow (see above). Never blocks. Any thread. */
bool spd_stream_push(spd_stream *s, grpc_byte_buffer *bb);

/* Like spd_stream_push, for a message of the first burst of a subscription (a
 * watch-all's SNAPSHOT of every live process, a resume's replay): held to
 * SPD_STREAM_TOTAL_BYTES only, and not counted against the stream's own bound
 * while it waits. */
bool spd_stream_push_initial(spd_stream *s, grpc_byte_buffer *bb);

/* Queues a message that may be dropped (ownership of BB taken): OUTPUT carrying
 * BYTES bytes of output, for a watcher that may be slow. Queued only within
 * the output bounds above; else destroyed and BYTES counted as dropped.
 * Returns 1 queued, 0 dropped, -1 when the stream is finished or dead. */
int spd_stream_offer(spd_stream *s, grpc_byte_buffer *bb, size_t bytes);

/* Bytes queued or in flight in all streams now (tests, metrics). */
size_t spd_stream_total_bytes(void);

/* Sends STATUS after every queued message. Further pushes are refused. */
void spd_stream_finish(spd_stream *s, grpc_status_code status, const char *details);

void spd_stream_ref(spd_stream *s);
void spd_stream_unref(spd_stream *s);

#endif
