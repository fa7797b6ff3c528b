/* Registry values -> spawnd.v1 messages, and the small conversions every RPC
 * needs (Duration, Timestamp, byte buffers). Messages built here point into an
 * arena (or into the record, which must stay locked until packed). */
#ifndef SPAWND_RPC_CODEC_H
#define SPAWND_RPC_CODEC_H

#include <grpc/byte_buffer.h>
#include <stdbool.h>
#include <stdint.h>

#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "service/registry/process.h"
#include "service/rpc/arena.h"
#include "spawnd/v1/spawnd.pb-c.h"

/* The Process message for P. WITH_PAYLOAD adds result and output tails (SPEC
 * §11: SNAPSHOT, terminal events, GetProcess). Strings and bytes are borrowed
 * from P. NULL if the arena failed. */
Spawnd__V1__Process *spd_codec_process(spd_arena *a, const spd_process *p, bool with_payload);

Google__Protobuf__Duration *spd_codec_duration_ms(spd_arena *a, int64_t ms);

/* Duration -> milliseconds, rounding nanoseconds up; a hundred years or more
 * saturate at a hundred years. Returns 0, or -EINVAL for a negative or
 * malformed duration (nanos out of range, signs differ, out of Duration's range). */
int spd_codec_duration_to_ms(const Google__Protobuf__Duration *d, int64_t *ms);

/* Packs M into a new byte buffer (the caller owns it), or NULL. */
grpc_byte_buffer *spd_codec_pack(const ProtobufCMessage *m);

/* Unpacks BB (may be NULL: an empty message) as descriptor D; NULL if the bytes
 * are not a valid message. Free with protobuf_c_message_free_unpacked. */
ProtobufCMessage *spd_codec_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d);

#endif
