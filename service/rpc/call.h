/* Server-side call plumbing on the gRPC C core completion-queue API.
 *
 * Every outstanding batch carries its own spd_tag; the CQ thread calls
 * tag->fn(tag, ok). A unary call ends with spd_call_finish() (one batch, sent
 * from any thread). A server-streaming call is an spd_stream: a bounded FIFO
 * with at most one SEND_MESSAGE in flight (gRPC notes §4b, §7), ended with
 * spd_stream_finish().
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

/* Queues a message (ownership of BB taken). Returns false, dropping BB, when the
 * stream is finished or dead. Never blocks. Any thread. */
bool spd_stream_push(spd_stream *s, grpc_byte_buffer *bb);

/* Queues a message that may be dropped (ownership of BB taken): OUTPUT for a
 * slow watcher. It is queued only while this stream's queued droppable bytes
 * stay within its budget and state messages keep room; else it is destroyed.
 * Returns 1 queued, 0 dropped, -1 when the stream is finished or dead. */
int spd_stream_offer(spd_stream *s, grpc_byte_buffer *bb, size_t bytes);

/* Sends STATUS after every queued message. Further pushes are refused. */
void spd_stream_finish(spd_stream *s, grpc_status_code status, const char *details);

void spd_stream_ref(spd_stream *s);
void spd_stream_unref(spd_stream *s);

#endif
