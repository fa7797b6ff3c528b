/* ListProcesses: not delivered yet (issue 4). Answers UNIMPLEMENTED at once, after
 * checking the request decodes, so clients learn the truth rather than hang. */
#include "service/rpc/call.h"
#include "service/rpc/handlers.h"

void spd_rpc_list_processes(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload)
{
	ProtobufCMessage *req = spd_rpc_request(call, payload,
						&spawnd__v1__list_processes_request__descriptor);

	(void)env;
	if (req == NULL)
		return;
	spd_call_finish(call, GRPC_STATUS_UNIMPLEMENTED,
			"ListProcesses is not implemented yet; use GetProcess with an id", NULL);
	protobuf_c_message_free_unpacked(req, NULL);
}
