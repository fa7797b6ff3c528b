/* `spawnctl start TARGET [ARGS...]`: StartProcess, optionally followed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tools/spawnctl/commands.h"

static const char spc__start_usage[] =
	"Usage: spawnctl [GLOBAL OPTIONS] start [OPTIONS] TARGET [--] [ARGS...]\n"
	"\n"
	"Starts one run of TARGET with ARGS. Options come before TARGET; every\n"
	"word after TARGET (after an optional \"--\") is an argument of the target.\n"
	"Without --watch, prints the process as accepted (its id first).\n"
	"\n"
	"Options:\n"
	"  --input FILE          the target's input (stdin for exec targets);\n"
	"                        \"-\" reads spawnctl's stdin\n"
	"  --label KEY=VALUE     a label (repeatable)\n"
	"  --request-id ID       idempotency key: a retry of the same request with\n"
	"                        the same ID returns the original process and\n"
	"                        starts nothing (another request: ALREADY_EXISTS)\n"
	"  --timeout-process D   the process's timeout (capped by the target's)\n"
	"  --grace D             its destroy grace period (capped by the target's)\n"
	"  --watch               follow the process to its end: its output as it\n"
	"                        comes (its stdout to stdout, its stderr to\n"
	"                        stderr), state changes on stderr, then its result\n"
	"                        on stdout and its error on stderr (with --json:\n"
	"                        every event on stdout). One Run call: start and\n"
	"                        events from PENDING on the same stream\n"
	"  -h, --help            show this help\n"
	"\n"
	"Durations: 300ms, 2s, 1.5s, 1m30s, 1h (units ns us ms s m h).\n"
	"\n"
	"Exit status: 0 started (with --watch: succeeded), 1 failed, 2 canceled,\n"
	"3 usage error, 4 RPC or transport error.\n";

/* The request as the command line describes it; strings point into argv. */
struct spc__start_opts {
	const char *input_path;
	const char *request_id;
	const char *timeout;
	const char *grace;
	int watch;
	struct spc_cli_list labels;
	struct spc_cli_list pos; /* TARGET ARGS... */
};

static int spc__start_rpc(const struct spc_ctx *ctx, spc_client *c,
			  const Spawnd__V1__StartProcessRequest *req,
			  Spawnd__V1__StartProcessResponse **resp)
{
	struct spc_status st = SPC_STATUS_INIT;
	ProtobufCMessage *m = NULL;
	int status = SPC_CLI_CONTINUE;
	int err;

	*resp = NULL;
	err = spc_client_unary(c, SPC_METHOD("StartProcess"), &req->base,
			       &spawnd__v1__start_process_response__descriptor,
			       spc_cli_unary_timeout(ctx), &m, &st);
	if (err < 0)
		status = spc_cli_local_error("StartProcess", err);
	else if (st.code != GRPC_STATUS_OK)
		status = spc_cli_rpc_error(&st);
	else if (((Spawnd__V1__StartProcessResponse *)m)->process == NULL) {
		fputs("spawnctl: StartProcess: the response has no process\n", stderr);
		status = SPC_EXIT_RPC;
	}
	if (status == SPC_CLI_CONTINUE) {
		*resp = (Spawnd__V1__StartProcessResponse *)m;
		m = NULL;
	}
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
	spc_status_release(&st);
	return status;
}

static int spc__start_run(const struct spc_ctx *ctx, int argc, char **argv)
{
	struct spc__start_opts o = { .labels = SPC_CLI_LIST_INIT,
				     .pos = SPC_CLI_LIST_INIT };
	const struct spc_opt opts[] = {
		{ "--input", SPC_OPT_VALUE, &o.input_path },
		{ "--label", SPC_OPT_LIST, &o.labels },
		{ "--request-id", SPC_OPT_VALUE, &o.request_id },
		{ "--timeout-process", SPC_OPT_VALUE, &o.timeout },
		{ "--grace", SPC_OPT_VALUE, &o.grace },
		{ "--watch", SPC_OPT_FLAG, &o.watch },
		{ NULL, SPC_OPT_FLAG, NULL },
	};
	Spawnd__V1__StartProcessRequest req = SPAWND__V1__START_PROCESS_REQUEST__INIT;
	Spawnd__V1__StartProcessResponse *resp = NULL;
	Google__Protobuf__Duration timeout = GOOGLE__PROTOBUF__DURATION__INIT;
	Google__Protobuf__Duration grace = GOOGLE__PROTOBUF__DURATION__INIT;
	ProtobufCMessage **labels = NULL;
	uint8_t *input = NULL;
	size_t input_len = 0;
	spc_client *c = NULL;
	int64_t ns;
	int status;
	int err;

	status = spc_cli_parse(&spc_cmd_start, opts, argc, argv, 1, &o.pos);
	if (status != SPC_CLI_CONTINUE)
		goto out;
	status = SPC_EXIT_USAGE;
	if (o.pos.n == 0) {
		spc_cli_usage_error("start", "missing TARGET");
		goto out;
	}
	req.target = o.pos.v[0];
	req.n_args = o.pos.n - 1;
	req.args = o.pos.v + 1;
	if (o.request_id != NULL)
		req.request_id = (char *)o.request_id;
	if (o.timeout != NULL) {
		if (spc_cli_duration_opt("start", "--timeout-process", o.timeout, &ns) < 0)
			goto out;
		spc_cli_duration_to_proto(ns, &timeout);
		req.timeout = &timeout;
	}
	if (o.grace != NULL) {
		if (spc_cli_duration_opt("start", "--grace", o.grace, &ns) < 0)
			goto out;
		spc_cli_duration_to_proto(ns, &grace);
		req.destroy_grace_period = &grace;
	}
	err = spc_cli_labels("start", "--label", o.labels.v, o.labels.n,
			     &spawnd__v1__start_process_request__labels_entry__descriptor,
			     &labels);
	if (err == -ENOMEM) {
		status = spc_cli_local_error("start", err);
		goto out;
	}
	if (err < 0)
		goto out;
	req.n_labels = o.labels.n;
	req.labels = (Spawnd__V1__StartProcessRequest__LabelsEntry **)labels;
	if (o.input_path != NULL) {
		err = spc_cli_read_input(o.input_path, &input, &input_len);
		if (err < 0) {
			fprintf(stderr, "spawnctl: start: --input %s: %s\n",
				o.input_path, err == -EFBIG ? "larger than 64 MiB"
							    : strerror(-err));
			goto out;
		}
		req.input.data = input;
		req.input.len = input_len;
	}

	err = spc_client_create(&ctx->conn, &c);
	if (err < 0) {
		status = spc_cli_local_error(ctx->conn.addr, err);
		goto out;
	}
	if (o.watch) {
		/* One call: Run streams every event from PENDING, output
		 * included, so nothing written before a watch could begin is
		 * missed. */
		status = spc_run_follow(ctx, c, &req, 1, SPC_FOLLOW_RESULT);
		goto out;
	}
	status = spc__start_rpc(ctx, c, &req, &resp);
	if (status != SPC_CLI_CONTINUE)
		goto out;
	status = spc_print_message(ctx, ctx->json ? &resp->base : &resp->process->base);
out:
	if (resp != NULL)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	spc_client_destroy(c);
	free(input);
	spc_cli_labels_free(labels, o.labels.n);
	spc_cli_list_release(&o.labels);
	spc_cli_list_release(&o.pos);
	return status;
}

const struct spc_command spc_cmd_start = {
	.name = "start",
	.summary = "start a process (--watch: and follow it)",
	.usage = spc__start_usage,
	.run = spc__start_run,
};
