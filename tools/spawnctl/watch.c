/* `spawnctl watch ID`, and the follower `start --watch` shares. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "tools/spawnctl/commands.h"
#include "tools/spawnctl/output.h"

static const char spc__watch_usage[] =
	"Usage: spawnctl [GLOBAL OPTIONS] watch [OPTIONS] ID\n"
	"       spawnctl [GLOBAL OPTIONS] watch --all [--label KEY=VALUE]... [--output]\n"
	"\n"
	"Follows process ID until it ends: one line per event,\n"
	"\"ID SEQUENCE TYPE STATE [details]\", on stdout (one JSON object per\n"
	"event with --json). With --output, the process's output is written as it\n"
	"arrives, raw: its stdout to stdout, its stderr to stderr (for a process\n"
	"that has ended, its kept tails); the event lines then go to stderr.\n"
	"\n"
	"With --all, follows every process whose labels match all the --label\n"
	"pairs (none: every process): first a SNAPSHOT line for each one alive,\n"
	"then one line per event of any of them, old or new (output chunks as\n"
	"quoted lines with --output), until interrupted (SIGINT, SIGTERM) or the\n"
	"--timeout deadline.\n"
	"\n"
	"The stream has no deadline unless --timeout is given.\n"
	"\n"
	"Options:\n"
	"  --output            include the output (include_output)\n"
	"  --after N           resume: only the events after sequence N (the\n"
	"                      last one seen); a SNAPSHOT marked \"gap\" first when\n"
	"                      some are no longer kept\n"
	"  --all               every matching process (no ID)\n"
	"  --label KEY=VALUE   with --all: only processes with this label\n"
	"                      (repeatable)\n"
	"  -h, --help          show this help\n"
	"\n"
	"Exit status: 0 the process succeeded, 1 it failed, 2 it was canceled,\n"
	"3 usage error, 4 RPC or transport error (or the stream ended early).\n"
	"With --all: 0 once interrupted or at the --timeout deadline, 4 if the\n"
	"stream broke.\n";

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

/* How the events of one watch are shown. */
struct spc__printer {
	const struct spc_ctx *ctx;
	FILE *lines;         /* where event lines go */
	int raw;             /* OUTPUT chunks as raw bytes to stdout / stderr */
	int err_mid_line;    /* raw stderr bytes left a line open */
	uint64_t dropped;    /* dropped_bytes last reported (raw mode) */
};

/* Writes LEN bytes at DATA to F, as they are. */
static int spc__write_raw(FILE *f, const uint8_t *data, size_t len)
{
	/* fwrite's buffer must not be NULL, even for 0 bytes (UBSan). */
	if (len > 0 && fwrite(data, 1, len, f) != len)
		return -EIO;
	return fflush(f) != 0 ? -EIO : 0;
}

/* A SNAPSHOT in raw mode. For an ended process its tails are the account of
 * its output, written raw like chunks (no chunk follows a terminal
 * SNAPSHOT). GAP: a resume found that events it needed are no longer kept. */
static int spc__show_snapshot(struct spc__printer *pr, const Spawnd__V1__Process *p, int gap)
{
	int ended = spc_watch_exit_status(p->state) >= 0;
	int tails = p->stdout_tail.len > 0 || p->stderr_tail.len > 0;

	if (gap && ended && tails)
		fprintf(stderr, "spawnctl: %s: earlier events are no longer kept; the output "
			"below is its kept tail%s\n", p->id,
			p->output_truncated ? " (truncated)" : "");
	else if (gap)
		fprintf(stderr, "spawnctl: %s: earlier events are no longer kept; output "
			"before this point is missing\n", p->id);
	else if (ended && p->output_truncated)
		fprintf(stderr, "spawnctl: %s: the output below is its kept tail "
			"(truncated)\n", p->id);
	if (!ended || !tails)
		return 0;
	(void)spc__write_raw(stderr, p->stderr_tail.data, p->stderr_tail.len);
	if (p->stderr_tail.len > 0)
		pr->err_mid_line = p->stderr_tail.data[p->stderr_tail.len - 1] != '\n';
	return spc__write_raw(stdout, p->stdout_tail.data, p->stdout_tail.len);
}

/* Shows EV as PR says. Returns 0 or -EIO (stdout failed). */
static int spc__show_event(struct spc__printer *pr, const Spawnd__V1__ProcessEvent *ev)
{
	int err = 0;

	if (pr->ctx->json) {
		err = spc_output_json(stdout, &ev->base);
		return fflush(stdout) != 0 ? -EIO : err;
	}
	if (pr->raw && ev->output != NULL) {
		const Spawnd__V1__OutputChunk *o = ev->output;

		if (ev->dropped_bytes > pr->dropped) {
			if (pr->err_mid_line)
				fputc('\n', stderr);
			pr->err_mid_line = 0;
			fprintf(stderr, "spawnctl: %s: %" PRIu64 " bytes of output dropped "
				"(the watch read too slowly)\n", ev->process_id,
				ev->dropped_bytes);
			pr->dropped = ev->dropped_bytes;
		}
		if (o->stream == SPAWND__V1__OUTPUT_CHUNK__STREAM__STREAM_STDERR) {
			/* A failing stderr is not worth failing for. */
			(void)spc__write_raw(stderr, o->data.data, o->data.len);
			if (o->data.len > 0)
				pr->err_mid_line = o->data.data[o->data.len - 1] != '\n';
			return 0;
		}
		return spc__write_raw(stdout, o->data.data, o->data.len);
	}
	if (pr->lines == stderr && pr->err_mid_line) {
		fputc('\n', stderr);
		pr->err_mid_line = 0;
	}
	if (ev->dropped_bytes > pr->dropped)
		pr->dropped = ev->dropped_bytes;
	spc__event_line(pr->lines, ev);
	if (fflush(pr->lines) != 0 && pr->lines == stdout)
		err = -EIO;
	if (err == 0 && pr->raw && ev->process != NULL &&
	    ev->type == SPAWND__V1__PROCESS_EVENT__TYPE__TYPE_SNAPSHOT)
		err = spc__show_snapshot(pr, ev->process, ev->gap);
	return err;
}

/* GetProcess ID: its state, for a resumed watch that had nothing to replay.
 * Returns the state, or -1 (the error was printed). */
static int spc__current_state(const struct spc_ctx *ctx, spc_client *c, const char *id)
{
	Spawnd__V1__GetProcessRequest req = SPAWND__V1__GET_PROCESS_REQUEST__INIT;
	struct spc_status st = SPC_STATUS_INIT;
	ProtobufCMessage *m = NULL;
	int state = -1;
	int err;

	req.id = (char *)id;
	err = spc_client_unary(c, SPC_METHOD("GetProcess"), &req.base,
			       &spawnd__v1__process__descriptor,
			       spc_cli_unary_timeout(ctx), &m, &st);
	if (err < 0)
		spc_cli_local_error("GetProcess", err);
	else if (st.code != GRPC_STATUS_OK)
		spc_cli_rpc_error(&st);
	else
		state = (int)((Spawnd__V1__Process *)m)->state;
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
	spc_status_release(&st);
	return state;
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

/* Follows one process's events on a stream of METHOD ("Watch" or "Run")
 * opened with REQ, to its terminal event and the end of the stream. ID (NULL
 * for Run: the events say it) is the process. */
static int follow(const struct spc_ctx *ctx, spc_client *c, const char *method,
		  const ProtobufCMessage *req, const char *id, int include_output,
		  uint64_t after_sequence, enum spc_follow_mode mode)
{
	Spawnd__V1__ProcessEvent *terminal = NULL;
	struct spc_status st = SPC_STATUS_INIT;
	struct spc__printer pr = { .ctx = ctx };
	spc_stream *s = NULL;
	char path[64];
	int status = SPC_EXIT_RPC;
	int err;

	/* Human mode: with the output raw on stdout/stderr (and always for
	 * `start --watch`, whose stdout is the result), lines go to stderr. */
	pr.raw = include_output;
	pr.lines = (mode == SPC_FOLLOW_RESULT || include_output) ? stderr : stdout;
	snprintf(path, sizeof path, "/spawnd.v1.ProcessService/%s", method);
	err = spc_stream_open(c, path, req, spc_cli_wait_timeout(ctx), &s);
	if (err < 0) {
		status = spc_cli_local_error(method, err);
		goto out;
	}
	for (;;) {
		ProtobufCMessage *m = NULL;
		Spawnd__V1__ProcessEvent *ev;

		err = spc_stream_next(s, &spawnd__v1__process_event__descriptor, &m);
		if (err < 0) {
			status = spc_cli_local_error(method, err);
			goto out;
		}
		if (err == 0)
			break;
		ev = (Spawnd__V1__ProcessEvent *)m;
		err = spc__show_event(&pr, ev);
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
	if (terminal == NULL && after_sequence > 0 && id != NULL) {
		/* Resumed at or past the last event of a process that has
		 * ended: nothing to replay, and the stream ended OK. */
		int state = spc__current_state(ctx, c, id);

		if (state < 0)
			goto out;
		status = spc_watch_exit_status((Spawnd__V1__State)state);
		if (status >= 0)
			goto out;
		status = SPC_EXIT_RPC;
	}
	if (terminal == NULL) {
		if (id != NULL)
			fprintf(stderr, "spawnctl: the watch of %s ended before the process did\n",
				id);
		else
			fprintf(stderr, "spawnctl: the Run stream ended before the process did\n");
		goto out;
	}
	if (mode == SPC_FOLLOW_RESULT && !ctx->json) {
		if (pr.err_mid_line)
			fputc('\n', stderr);
		spc__report_end(terminal->process);
	}
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

int spc_watch_follow(const struct spc_ctx *ctx, spc_client *c, const char *id,
		     int include_output, uint64_t after_sequence,
		     enum spc_follow_mode mode)
{
	Spawnd__V1__WatchRequest req = SPAWND__V1__WATCH_REQUEST__INIT;

	req.id = (char *)id;
	req.include_output = include_output;
	req.after_sequence = after_sequence;
	return follow(ctx, c, "Watch", &req.base, id, include_output, after_sequence, mode);
}

int spc_run_follow(const struct spc_ctx *ctx, spc_client *c,
		   Spawnd__V1__StartProcessRequest *start, int include_output,
		   enum spc_follow_mode mode)
{
	Spawnd__V1__RunRequest req = SPAWND__V1__RUN_REQUEST__INIT;

	req.start = start;
	req.include_output = include_output;
	return follow(ctx, c, "Run", &req.base, NULL, include_output, 0, mode);
}

/* Set by SIGINT / SIGTERM during `watch --all`. */
static volatile sig_atomic_t spc__stop;

static void spc__on_stop_signal(int sig)
{
	(void)sig;
	spc__stop = 1;
}

/* `watch --all`: every event of the processes matching LABELS (N words
 * "k=v"), until a signal, the --timeout deadline, or a broken stream. */
static int spc__watch_all(const struct spc_ctx *ctx, spc_client *c,
			  char *const *labels, size_t n, int include_output)
{
	Spawnd__V1__WatchRequest req = SPAWND__V1__WATCH_REQUEST__INIT;
	struct spc_status st = SPC_STATUS_INIT;
	struct spc__printer pr = { .ctx = ctx, .lines = stdout };
	ProtobufCMessage **entries = NULL;
	struct sigaction sa, old_int, old_term;
	spc_stream *s = NULL;
	int status = SPC_EXIT_RPC;
	int interrupted = 0;
	int err;

	err = spc_cli_labels("watch", "--label", labels, n,
			     &spawnd__v1__watch_request__label_selector_entry__descriptor,
			     &entries);
	if (err < 0)
		return err == -ENOMEM ? spc_cli_local_error("watch", err) : SPC_EXIT_USAGE;
	req.n_label_selector = n;
	req.label_selector = (Spawnd__V1__WatchRequest__LabelSelectorEntry **)entries;
	req.include_output = include_output;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = spc__on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);

	err = spc_stream_open(c, SPC_METHOD("Watch"), &req.base,
			      spc_cli_wait_timeout(ctx), &s);
	if (err < 0) {
		status = spc_cli_local_error("Watch", err);
		goto out;
	}
	for (;;) {
		ProtobufCMessage *m = NULL;

		err = spc_stream_next_or_stop(s, &spawnd__v1__process_event__descriptor,
					      &m, &spc__stop);
		if (err == -EINTR) {
			interrupted = 1;
			break;
		}
		if (err < 0) {
			status = spc_cli_local_error("Watch", err);
			goto out;
		}
		if (err == 0)
			break;
		err = spc__show_event(&pr, (Spawnd__V1__ProcessEvent *)m);
		protobuf_c_message_free_unpacked(m, NULL);
		if (err < 0) {
			status = spc_cli_local_error("writing stdout", err);
			goto out;
		}
	}
	spc_stream_finish(s, &st);
	s = NULL;
	if (interrupted ||
	    (st.code == GRPC_STATUS_DEADLINE_EXCEEDED && ctx->timeout_set))
		status = SPC_EXIT_OK;
	else if (st.code != GRPC_STATUS_OK)
		status = spc_cli_rpc_error(&st);
	else /* watch-all never ends by itself: the server went away */
		fputs("spawnctl: the server ended the watch\n", stderr);
out:
	spc_stream_finish(s, NULL);
	spc_status_release(&st);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	spc_cli_labels_free(entries, n);
	return status;
}

static int spc__watch_run(const struct spc_ctx *ctx, int argc, char **argv)
{
	struct spc_cli_list pos = SPC_CLI_LIST_INIT;
	struct spc_cli_list labels = SPC_CLI_LIST_INIT;
	const char *after = NULL;
	int include_output = 0, all = 0;
	const struct spc_opt opts[] = {
		{ "--output", SPC_OPT_FLAG, &include_output },
		{ "--after", SPC_OPT_VALUE, &after },
		{ "--all", SPC_OPT_FLAG, &all },
		{ "--label", SPC_OPT_LIST, &labels },
		{ NULL, SPC_OPT_FLAG, NULL },
	};
	uint64_t after_sequence = 0;
	spc_client *c = NULL;
	int status;
	int err;

	status = spc_cli_parse(&spc_cmd_watch, opts, argc, argv, 0, &pos);
	if (status != SPC_CLI_CONTINUE)
		goto out;
	if (after != NULL && spc_cli_parse_uint(after, UINT64_MAX, &after_sequence) < 0) {
		status = spc_cli_usage_error("watch", "--after: bad sequence number '%s'",
					     after);
		goto out;
	}
	if (all) {
		if (pos.n > 0)
			status = spc_cli_usage_error("watch", "--all takes no ID (got '%s')",
						     pos.v[0]);
		else if (after != NULL)
			status = spc_cli_usage_error("watch",
						     "--after resumes one process: not with --all");
		if (status != SPC_CLI_CONTINUE)
			goto out;
	} else if (labels.n > 0) {
		status = spc_cli_usage_error("watch", "--label selects processes for --all");
		goto out;
	} else if (pos.n != 1) {
		status = pos.n == 0 ? spc_cli_usage_error("watch", "missing ID (or --all)")
				    : spc_cli_usage_error("watch", "unexpected argument '%s'",
							  pos.v[1]);
		goto out;
	}
	err = spc_client_create(&ctx->conn, &c);
	if (err < 0) {
		status = spc_cli_local_error(ctx->conn.addr, err);
		goto out;
	}
	if (all)
		status = spc__watch_all(ctx, c, labels.v, labels.n, include_output);
	else
		status = spc_watch_follow(ctx, c, pos.v[0], include_output,
					  after_sequence, SPC_FOLLOW_EVENTS);
out:
	spc_client_destroy(c);
	spc_cli_list_release(&labels);
	spc_cli_list_release(&pos);
	return status;
}

const struct spc_command spc_cmd_watch = {
	.name = "watch",
	.summary = "follow a process until it ends, or every process (--all)",
	.usage = spc__watch_usage,
	.run = spc__watch_run,
};
