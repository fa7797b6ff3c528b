/* The RPC handlers of spawnd.v1.ProcessService, one file each. A handler owns
 * CALL (it must end it, now or later, with spd_call_finish or a stream) and
 * PAYLOAD (the request bytes, NULL for an empty message). Handlers run on the
 * CQ thread and never block. */
#ifndef SPAWND_RPC_HANDLERS_H
#define SPAWND_RPC_HANDLERS_H

#include <grpc/grpc.h>

#include "service/config/config.h"
#include "service/registry/registry.h"
#include "spawnd/v1/spawnd.pb-c.h"

typedef struct spd_rpc_health spd_rpc_health;
typedef struct spd_reflection_index spd_reflection_index;

typedef struct spd_rpc_env {
	spd_registry *registry;
	spd_rpc_health *health;                  /* health.h: open health Watches */
	const spd_reflection_index *reflection;  /* reflection_index.h; NULL: none */
} spd_rpc_env;

typedef void (*spd_rpc_handler)(const spd_rpc_env *env, grpc_call *call,
				grpc_byte_buffer *payload);

void spd_rpc_start_process(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload);
void spd_rpc_destroy(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload);
void spd_rpc_watch(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload);
void spd_rpc_run(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload);
void spd_rpc_get_process(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload);
void spd_rpc_list_processes(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload);
void spd_rpc_list_targets(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload);

/* grpc.health.v1.Health (health.c): Check is unary, Watch server streaming. */
void spd_rpc_health_check(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload);
void spd_rpc_health_watch(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload);
/* ServerReflectionInfo, v1 and v1alpha (reflection.c): bidi, registered with
 * GRPC_SRM_PAYLOAD_NONE, so PAYLOAD is always NULL. */
void spd_rpc_reflection_info(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload);

/* Unpacks PAYLOAD (destroying it) as D, or ends CALL with INVALID_ARGUMENT
 * and returns NULL: naming the message when the bytes are not one, or the
 * field when a string is not UTF-8 or holds a NUL, or a map key comes twice
 * (strings.h, SPEC §12 "Strings from the network"). Every handler takes its
 * request from here. */
ProtobufCMessage *spd_rpc_request(grpc_call *call, grpc_byte_buffer *payload,
				  const ProtobufCMessageDescriptor *d);

/* What spd_rpc_request does without a call (for the reflection stream, which
 * gets one request per message): unpacks PAYLOAD (NULL: an empty message; kept)
 * as D and checks its strings. Returns the message (free it with
 * protobuf_c_message_free_unpacked), or NULL with the reason in MSG (LEN
 * bytes; 256 hold any). */
ProtobufCMessage *spd_rpc_unpack(const grpc_byte_buffer *payload,
				 const ProtobufCMessageDescriptor *d, char *msg, size_t len);

#endif
