/* A registry subscription feeding a server stream of ProcessEvents: what Watch
 * and Run share (watch.c, run.c). Each event is encoded once, by the registry
 * through this file's codec, for every stream of it (1,000 watchers of one
 * process: one encoding); each stream queues a copy (its slices are shared).
 *
 * Lifetime: the subscription holds the handler's stream reference; its
 * release callback (run exactly once, however it ends: terminal event, a push
 * refused, cancellation, shutdown's abort) drops it; the stream frees the
 * spd_rpc_watch_stream with its last reference. */
#ifndef SPAWND_RPC_WATCH_STREAM_H
#define SPAWND_RPC_WATCH_STREAM_H

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stdint.h>

#include "service/common/id.h"
#include "service/registry/registry.h"
#include "service/rpc/call.h"
#include "service/rpc/caller.h"

typedef struct spd_rpc_watch_stream {
	spd_stream *stream;
	spd_registry *registry;
	uint64_t watch_id;  /* set on the CQ thread before any cancel can run */
	bool all;           /* watch-all: never ends by itself */
	spd_rpc_held_caller caller; /* watch-all: sees only the targets its token may use */
	/* Run: destroy the process when the client cancels before its end.
	 * ID is set inside spd_registry_run, before any event (a Run whose new
	 * record is not committed yet has none, and may be cancelled then). */
	bool destroy_on_cancel;
	char id[SPD_ID_LEN + 1];
} spd_rpc_watch_stream;

/* A new one on CALL (ownership taken), with its stream; NULL when out of
 * memory (CALL is then ended). ALL: watch-all. */
spd_rpc_watch_stream *spd_rpc_watch_stream_create(grpc_call *call, spd_registry *reg, bool all);

/* The subscription's spec for W: its callbacks, the codec, and OUTPUT events
 * when WITH_OUTPUT; the caller sets what to watch. */
spd_watch_spec spd_rpc_watch_stream_spec(spd_rpc_watch_stream *w, bool with_output);

/* After spd_registry_watch or _run: without a subscription (*watch_id 0),
 * everything was delivered (RC 0: end the stream OK) or nothing will come;
 * the handler's reference goes. With one, the subscription owns it. */
void spd_rpc_watch_stream_started(spd_rpc_watch_stream *w, int rc);

#endif
