/* `spawnctl watch ID`, and the follower `start --watch` shares. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tools/spawnctl/commands.h"
#include "tools/spawnctl/output.h"

static const char spc__watch_usage[] =
	"Usage: spawnctl [GLOBAL OPTIONS] watch [--output] ID\n"
	"\n"
	"Follows process ID until it ends: one line per event,\n"
	"\"ID SEQUENCE TYPE STATE [details]\" (one JSON object per event with\n"
	"--json). The stream has no deadline unless --timeout is given.\n"
	"\n"
	"Options:\n"
	"  --output     include the process's output chunks (include_output)\n"
	"  -h, --help   show this help\n"
	"\n"
	"Exit status: 0 the process succeeded, 1 it failed, 2 it was canceled,\n"
	"3 usage error, 4 RPC or transport error (or the stream ended early).\n";

int spc_watch_exit_status(Spawnd__V1__State state)
{
	switch (state) {
	case SPAWND__V1__STATE__STATE_SUCCEEDED:
		return SPC_EXIT_OK;
	case SPAWND__V1__STATE__STATE_FAILED:
		return SPC_EXIT_FAILED;
	case SPAWND__V1__STATE__STATE_CANCELED:
		return SPC_EXIT_CANCELED;
	default:
		return -1;
	}
}

int spc_print_message(const struct spc_ctx *ctx, const ProtobufCMessage *p)
{
	int err = ctx->json ? spc_output_json(stdout, p)
			    : spc_output_fields(stdout, p);

	if (err < 0)
		return spc_cli_local_error("writing stdout", err);
	return SPC_EXIT_OK;
}

/* One event as one line: "ID SEQ TYPE STATE [details]". */
static void spc__event_line(FILE *f, const Spawnd__V1__ProcessEvent *ev)
{
	const Spawnd__V1__Process *p = ev->process;

	fprintf(f, "%s %" PRIu64 " %s", ev->process_id, ev->sequence,
		spc_output_enum_label(&spawnd__v1__process_event__type__descriptor, ev->type));
	if (ev->gap)
		fputs(" gap", f);
	if (p != NULL) {
		fprintf(f, " %s", spc_output_enum_label(&spawnd__v1__state__descriptor, p->state));
		if (p->pid != 0)
			fprintf(f, " pid=%" PRId32, p->pid);
		if (p->exit_code != 0)
			fprintf(f, " exit_code=%" PRId32, p->exit_code);
		if (p->signal != 0)
			fprintf(f, " signal=%" PRId32, p->signal);
		if (p->destroyed)
			fputs(" destroyed", f);
		if (p->error != NULL) {
			fprintf(f, " error=%s",
				spc_output_enum_label(&spawnd__v1__process_error__kind__descriptor,
					  p->error->kind));
			if (p->error->type[0] != '\0')
				fprintf(f, " %s:", p->error->type);
			if (p->error->message[0] != '\0')
				fprintf(f, " %s", p->error->message);
		}
		if (spc_watch_exit_status(p->state) >= 0 && p->result.len > 0) {
			fputs(" result=", f);
			spc_output_quoted(f, p->result.data, p->result.len, 512);
		}
	}
	if (ev->output != NULL) {
		fprintf(f, " %s +%" PRIu64 " ",
			spc_output_enum_label(&spawnd__v1__output_chunk__stream__descriptor,
				  ev->output->stream),
			ev->output->offset);
		spc_output_quoted(f, ev->output->data.data, ev->output->data.len, 512);
	}
	if (ev->dropped_bytes != 0)
		fprintf(f, " dropped_bytes=%" PRIu64, ev->dropped_bytes);
	fputc('\n', f);
}

/* The end of `start --watch` in human mode: the result on stdout, the error
 * (with its traceback) on stderr. */
static void spc__report_end(const Spawnd__V1__Process *p)
{
	const Spawnd__V1__ProcessError *e = p->error;

	/* fwrite's buffer must not be NULL, even for 0 bytes (UBSan). */
	if (p->result.len > 0)
		fwrite(p->result.data, 1, p->result.len, stdout);
	if (p->state == SPAWND__V1__STATE__STATE_CANCELED) {
		fprintf(stderr, "spawnctl: process %s canceled\n", p->id);
		return;
	}
	if (p->state != SPAWND__V1__STATE__STATE_FAILED)
		return;
	fprintf(stderr, "spawnctl: process %s failed", p->id);
	if (e == NULL) {
		fputc('\n', stderr);
		return;
	}
	fprintf(stderr, " (%s", spc_output_enum_label(&spawnd__v1__process_error__kind__descriptor,
					   e->kind));
	if (e->exit_code != 0)
		fprintf(stderr, ", exit code %" PRId32, e->exit_code);
	if (e->signal != 0)
		fprintf(stderr, ", signal %" PRId32 "%s", e->signal,
			e->core_dumped ? ", core dumped" : "");
	fputs(")", stderr);
	if (e->type[0] != '\0')
		fprintf(stderr, ": %s", e->type);
	if (e->message[0] != '\0')
		fprintf(stderr, ": %s", e->message);
	fputc('\n', stderr);
	if (e->backtrace[0] != '\0')
		fprintf(stderr, "%s%s", e->backtrace,
			e->backtrace[strlen(e->backtrace) - 1] == '\n' ? "" : "\n");
	if (e->stderr_tail.len > 0)
		fwrite(e->stderr_tail.data, 1, e->stderr_tail.len, stderr);
}

int spc_watch_follow(const struct spc_ctx *ctx, spc_client *c, const char *id,
		     int include_output, enum spc_follow_mode mode)
{
	Spawnd__V1__WatchRequest req = SPAWND__V1__WATCH_REQUEST__INIT;
	Spawnd__V1__ProcessEvent *terminal = NULL;
	struct spc_status st = SPC_STATUS_INIT;
	spc_stream *s = NULL;
	int status = SPC_EXIT_RPC;
	int err;

	req.id = (char *)id;
	req.include_output = include_output;
	err = spc_stream_open(c, SPC_METHOD("Watch"), &req.base,
			      spc_cli_wait_timeout(ctx), &s);
	if (err < 0) {
		status = spc_cli_local_error("Watch", err);
		goto out;
	}
	for (;;) {
		ProtobufCMessage *m = NULL;
		Spawnd__V1__ProcessEvent *ev;

		err = spc_stream_next(s, &spawnd__v1__process_event__descriptor, &m);
		if (err < 0) {
			status = spc_cli_local_error("Watch", err);
			goto out;
		}
		if (err == 0)
			break;
		ev = (Spawnd__V1__ProcessEvent *)m;
		if (ctx->json)
			err = spc_output_json(stdout, m);
		else
			spc__event_line(mode == SPC_FOLLOW_EVENTS ? stdout : stderr, ev);
		fflush(stdout);
		if (err < 0) {
			protobuf_c_message_free_unpacked(m, NULL);
			status = spc_cli_local_error("writing stdout", err);
			goto out;
		}
		if (ev->process != NULL &&
		    spc_watch_exit_status(ev->process->state) >= 0) {
			if (terminal != NULL)
				protobuf_c_message_free_unpacked(&terminal->base, NULL);
			terminal = ev;
		} else {
			protobuf_c_message_free_unpacked(m, NULL);
		}
	}
	spc_stream_finish(s, &st);
	s = NULL;
	if (st.code != GRPC_STATUS_OK) {
		status = spc_cli_rpc_error(&st);
		/* The outcome is known even if the stream then broke. */
		if (terminal == NULL)
			goto out;
	}
	if (terminal == NULL) {
		fprintf(stderr, "spawnctl: the watch of %s ended before the process did\n",
			id);
		goto out;
	}
	if (mode == SPC_FOLLOW_RESULT && !ctx->json)
		spc__report_end(terminal->process);
	if (fflush(stdout) != 0) {
		status = spc_cli_local_error("writing stdout", -EIO);
		goto out;
	}
	status = spc_watch_exit_status(terminal->process->state);
out:
	spc_stream_finish(s, NULL);
	spc_status_release(&st);
	if (terminal != NULL)
		protobuf_c_message_free_unpacked(&terminal->base, NULL);
	return status;
}

static int spc__watch_run(const struct spc_ctx *ctx, int argc, char **argv)
{
	struct spc_cli_list pos = SPC_CLI_LIST_INIT;
	int include_output = 0;
	const struct spc_opt opts[] = {
		{ "--output", SPC_OPT_FLAG, &include_output },
		{ NULL, SPC_OPT_FLAG, NULL },
	};
	spc_client *c = NULL;
	int status;
	int err;

	status = spc_cli_parse(&spc_cmd_watch, opts, argc, argv, 0, &pos);
	if (status != SPC_CLI_CONTINUE)
		goto out;
	if (pos.n != 1) {
		status = pos.n == 0 ? spc_cli_usage_error("watch", "missing ID")
				    : spc_cli_usage_error("watch", "unexpected argument '%s'",
							  pos.v[1]);
		goto out;
	}
	err = spc_client_create(ctx->addr, &c);
	if (err < 0) {
		status = spc_cli_local_error(ctx->addr, err);
		goto out;
	}
	status = spc_watch_follow(ctx, c, pos.v[0], include_output, SPC_FOLLOW_EVENTS);
out:
	spc_client_destroy(c);
	spc_cli_list_release(&pos);
	return status;
}

const struct spc_command spc_cmd_watch = {
	.name = "watch",
	.summary = "follow a process until it ends",
	.usage = spc__watch_usage,
	.run = spc__watch_run,
};
