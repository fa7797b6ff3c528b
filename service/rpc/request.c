#include <grpc/byte_buffer.h>
#include <stdio.h>

#include "service/rpc/call.h"
#include "service/rpc/codec.h"
#include "service/rpc/handlers.h"

ProtobufCMessage *spd_rpc_request(grpc_call *call, grpc_byte_buffer *payload,
				  const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = spd_codec_unpack(payload, d);
	char msg[256];

	if (payload != NULL)
		grpc_byte_buffer_destroy(payload);
	if (m == NULL) {
		snprintf(msg, sizeof msg, "request: not a valid %s message", d->name);
		spd_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, msg, NULL);
	}
	return m;
}
