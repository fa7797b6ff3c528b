/* `spawnctl get ID` and `spawnctl destroy ID`: unary calls on one process. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "tools/spawnctl/commands.h"

static const char spc__get_usage[] =
	"Usage: spawnctl [GLOBAL OPTIONS] get ID\n"
	"\n"
	"Prints process ID (GetProcess), output tails included.\n"
	"\n"
	"Exit status: 0 printed, 3 usage error, 4 RPC or transport error\n"
	"(NOT_FOUND for an unknown id).\n";

static const char spc__destroy_usage[] =
	"Usage: spawnctl [GLOBAL OPTIONS] destroy [OPTIONS] ID\n"
	"\n"
	"Destroys process ID: its stop signal, a grace period, then SIGKILL.\n"
	"Prints the process: at once, or with --wait once it has ended.\n"
	"\n"
	"Options:\n"
	"  --grace D    grace period before SIGKILL (capped by the target's)\n"
	"  --wait       answer once the process is terminal (no deadline unless\n"
	"               --timeout is given)\n"
	"  -h, --help   show this help\n"
	"\n"
	"Exit status: 0 done, 3 usage error, 4 RPC or transport error.\n";

/* The one positional ID of CMD; prints the usage error otherwise. */
static int spc__one_id(const struct spc_command *cmd,
		       const struct spc_cli_list *pos)
{
	if (pos->n == 1)
		return SPC_CLI_CONTINUE;
	if (pos->n == 0)
		return spc_cli_usage_error(cmd->name, "missing ID");
	return spc_cli_usage_error(cmd->name, "unexpected argument '%s'", pos->v[1]);
}

/* Calls METHOD with REQ and prints the response: all of it with --json, the
 * Process found at PROCESS_OFFSET in it (or all of it, for -1) otherwise. */
static int spc__call_and_print(const struct spc_ctx *ctx, const char *method,
			       const ProtobufCMessage *req,
			       const ProtobufCMessageDescriptor *resp_desc,
			       int64_t timeout_ns, long process_offset)
{
	struct spc_status st = SPC_STATUS_INIT;
	ProtobufCMessage *resp = NULL;
	spc_client *c = NULL;
	int status;
	int err;

	err = spc_client_create(&ctx->conn, &c);
	if (err < 0) {
		status = spc_cli_local_error(ctx->conn.addr, err);
		goto out;
	}
	err = spc_client_unary(c, method, req, resp_desc, timeout_ns, &resp, &st);
	if (err < 0) {
		status = spc_cli_local_error(method, err);
		goto out;
	}
	if (st.code != GRPC_STATUS_OK) {
		status = spc_cli_rpc_error(&st);
		goto out;
	}
	if (!ctx->json && process_offset >= 0) {
		const ProtobufCMessage *p =
			*(ProtobufCMessage **)((char *)resp + process_offset);

		if (p == NULL) {
			fprintf(stderr, "spawnctl: %s: the response has no process\n",
				method);
			status = SPC_EXIT_RPC;
			goto out;
		}
		status = spc_print_message(ctx, p);
	} else {
		status = spc_print_message(ctx, resp);
	}
out:
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	spc_status_release(&st);
	spc_client_destroy(c);
	return status;
}

static int spc__get_run(const struct spc_ctx *ctx, int argc, char **argv)
{
	struct spc_cli_list pos = SPC_CLI_LIST_INIT;
	const struct spc_opt opts[] = { { NULL, SPC_OPT_FLAG, NULL } };
	Spawnd__V1__GetProcessRequest req = SPAWND__V1__GET_PROCESS_REQUEST__INIT;
	int status;

	status = spc_cli_parse(&spc_cmd_get, opts, argc, argv, 0, &pos);
	if (status == SPC_CLI_CONTINUE)
		status = spc__one_id(&spc_cmd_get, &pos);
	if (status != SPC_CLI_CONTINUE)
		goto out;
	req.id = pos.v[0];
	status = spc__call_and_print(ctx, SPC_METHOD("GetProcess"), &req.base,
				     &spawnd__v1__process__descriptor,
				     spc_cli_unary_timeout(ctx), -1);
out:
	spc_cli_list_release(&pos);
	return status;
}

static int spc__destroy_run(const struct spc_ctx *ctx, int argc, char **argv)
{
	struct spc_cli_list pos = SPC_CLI_LIST_INIT;
	const char *grace_text = NULL;
	int wait = 0;
	const struct spc_opt opts[] = {
		{ "--grace", SPC_OPT_VALUE, &grace_text },
		{ "--wait", SPC_OPT_FLAG, &wait },
		{ NULL, SPC_OPT_FLAG, NULL },
	};
	Spawnd__V1__DestroyRequest req = SPAWND__V1__DESTROY_REQUEST__INIT;
	Google__Protobuf__Duration grace = GOOGLE__PROTOBUF__DURATION__INIT;
	int64_t ns;
	int status;

	status = spc_cli_parse(&spc_cmd_destroy, opts, argc, argv, 0, &pos);
	if (status == SPC_CLI_CONTINUE)
		status = spc__one_id(&spc_cmd_destroy, &pos);
	if (status != SPC_CLI_CONTINUE)
		goto out;
	if (grace_text != NULL) {
		if (spc_cli_duration_opt("destroy", "--grace", grace_text, &ns) < 0) {
			status = SPC_EXIT_USAGE;
			goto out;
		}
		spc_cli_duration_to_proto(ns, &grace);
		req.grace_period = &grace;
	}
	req.id = pos.v[0];
	req.wait = wait;
	status = spc__call_and_print(
		ctx, SPC_METHOD("Destroy"), &req.base,
		&spawnd__v1__destroy_response__descriptor,
		wait ? spc_cli_wait_timeout(ctx) : spc_cli_unary_timeout(ctx),
		(long)offsetof(Spawnd__V1__DestroyResponse, process));
out:
	spc_cli_list_release(&pos);
	return status;
}

const struct spc_command spc_cmd_get = {
	.name = "get",
	.summary = "show a process",
	.usage = spc__get_usage,
	.run = spc__get_run,
};

const struct spc_command spc_cmd_destroy = {
	.name = "destroy",
	.summary = "destroy a process (--wait: until it has ended)",
	.usage = spc__destroy_usage,
	.run = spc__destroy_run,
};
