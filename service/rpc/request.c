#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <stdio.h>

#include "service/rpc/call.h"
#include "service/rpc/codec.h"
#include "service/rpc/handlers.h"
#include "service/rpc/strings.h"

ProtobufCMessage *spd_rpc_unpack(const grpc_byte_buffer *payload,
				 const ProtobufCMessageDescriptor *d, char *msg, size_t len)
{
	grpc_slice s = grpc_empty_slice();
	grpc_byte_buffer_reader r;
	ProtobufCMessage *m = NULL;
	const char *bad;

	/* The bytes are kept past the unpack: only they show a NUL inside a
	 * string (strings.h). */
	if (payload == NULL || grpc_byte_buffer_reader_init(&r, (grpc_byte_buffer *)payload)) {
		if (payload != NULL) {
			s = grpc_byte_buffer_reader_readall(&r);
			grpc_byte_buffer_reader_destroy(&r);
		}
		m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
	}
	if (m == NULL) {
		snprintf(msg, len, "request: not a valid %s message", d->name);
	} else {
		bad = spd_strings_check(d, m, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), msg, len);
		if (bad != NULL) {
			protobuf_c_message_free_unpacked(m, NULL);
			m = NULL;
		}
	}
	grpc_slice_unref(s);
	return m;
}

ProtobufCMessage *spd_rpc_request(grpc_call *call, grpc_byte_buffer *payload,
				  const ProtobufCMessageDescriptor *d)
{
	char msg[256];
	ProtobufCMessage *m = spd_rpc_unpack(payload, d, msg, sizeof msg);

	if (payload != NULL)
		grpc_byte_buffer_destroy(payload);
	if (m == NULL)
		spd_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, msg, NULL);
	return m;
}
