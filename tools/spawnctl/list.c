/* `spawnctl ls` (ListProcesses) and `spawnctl targets` (ListTargets). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tools/spawnctl/commands.h"
#include "tools/spawnctl/output.h"

static const char spc__ls_usage[] =
	"Usage: spawnctl [GLOBAL OPTIONS] ls [OPTIONS]\n"
	"\n"
	"Lists processes (one page): ID TARGET STATE PID CREATED.\n"
	"\n"
	"Options:\n"
	"  --target T          only processes of target T\n"
	"  --state S           only processes in state S (RUNNING, FAILED, ...;\n"
	"                      repeatable)\n"
	"  --label KEY=VALUE   only processes with this label (repeatable)\n"
	"  --page-size N       at most N processes\n"
	"  --page-token TOKEN  the page after a previous answer's next page token\n"
	"  -h, --help          show this help\n"
	"\n"
	"Exit status: 0 listed, 3 usage error, 4 RPC or transport error.\n";

static const char spc__targets_usage[] =
	"Usage: spawnctl [GLOBAL OPTIONS] targets\n"
	"\n"
	"Lists the registered targets:\n"
	"NAME KIND METHOD RUNNING PENDING HEALTH DESCRIPTION.\n"
	"\n"
	"Exit status: 0 listed, 3 usage error, 4 RPC or transport error.\n";

/* Calls METHOD with REQ; on success *RESP is the response (the caller frees
 * it), else the error was printed. Returns SPC_CLI_CONTINUE or the status. */
static int spc__list_call(const struct spc_ctx *ctx, const char *method,
			  const ProtobufCMessage *req,
			  const ProtobufCMessageDescriptor *desc,
			  ProtobufCMessage **resp)
{
	struct spc_status st = SPC_STATUS_INIT;
	spc_client *c = NULL;
	int status = SPC_CLI_CONTINUE;
	int err;

	*resp = NULL;
	err = spc_client_create(&ctx->conn, &c);
	if (err < 0) {
		status = spc_cli_local_error(ctx->conn.addr, err);
		goto out;
	}
	err = spc_client_unary(c, method, req, desc, spc_cli_unary_timeout(ctx),
			       resp, &st);
	if (err < 0)
		status = spc_cli_local_error(method, err);
	else if (st.code != GRPC_STATUS_OK)
		status = spc_cli_rpc_error(&st);
out:
	spc_status_release(&st);
	spc_client_destroy(c);
	return status;
}

/* "running" or "STATE_RUNNING" (any case) -> the State value. */
/* Calls METHOD and prints the response: as JSON with --json, else with PRINT.
 * Returns the exit status. */
static int spc__list_show(const struct spc_ctx *ctx, const char *method,
			  const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
			  int (*print)(const ProtobufCMessage *resp))
{
	ProtobufCMessage *resp = NULL;
	int status = spc__list_call(ctx, method, req, desc, &resp);

	if (status == SPC_CLI_CONTINUE)
		status = ctx->json ? spc_print_message(ctx, resp) : print(resp);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	return status;
}

static int spc__parse_state(const char *s, Spawnd__V1__State *out)
{
	char name[64];
	const ProtobufCEnumValue *v;
	size_t i, n = strlen(s);

	if (n == 0 || n + 7 > sizeof name)
		return -EINVAL;
	if (strncasecmp(s, "STATE_", 6) == 0)
		s += 6, n -= 6;
	memcpy(name, "STATE_", 6);
	for (i = 0; i <= n; i++)
		name[6 + i] = (char)toupper((unsigned char)s[i]);
	v = protobuf_c_enum_descriptor_get_value_by_name(&spawnd__v1__state__descriptor,
							 name);
	if (v == NULL || v->value == SPAWND__V1__STATE__STATE_UNSPECIFIED)
		return -EINVAL;
	*out = (Spawnd__V1__State)v->value;
	return 0;
}

static int spc__ls_print(const ProtobufCMessage *m)
{
	const Spawnd__V1__ListProcessesResponse *r = (const Spawnd__V1__ListProcessesResponse *)m;
	static const char *const header[] = { "ID", "TARGET", "STATE", "PID",
					      "CREATED" };
	spc_output_table *t = NULL;
	char *created = NULL;
	size_t i;
	int err;

	err = spc_output_table_create(5, header, &t);
	for (i = 0; err == 0 && i < r->n_processes; i++) {
		const Spawnd__V1__Process *p = r->processes[i];
		const char *cells[5];
		char pid[16] = "-";
		size_t len = 0;
		FILE *f;

		if (p->pid != 0)
			snprintf(pid, sizeof pid, "%" PRId32, p->pid);
		f = open_memstream(&created, &len);
		if (f == NULL) {
			err = -ENOMEM;
			break;
		}
		if (p->created_at != NULL)
			spc_output_timestamp(f, p->created_at);
		else
			fputc('-', f);
		if (fclose(f) != 0) {
			err = -ENOMEM;
			break;
		}
		cells[0] = p->id;
		cells[1] = p->target;
		cells[2] = spc_output_enum_label(&spawnd__v1__state__descriptor, p->state);
		cells[3] = pid;
		cells[4] = created;
		err = spc_output_table_add(t, cells);
		free(created);
		created = NULL;
	}
	if (err == 0)
		err = spc_output_table_print(t, stdout);
	if (err == 0 && r->next_page_token[0] != '\0')
		fprintf(stderr, "next page: spawnctl ls --page-token %s\n",
			r->next_page_token);
	free(created);
	spc_output_table_destroy(t);
	return err < 0 ? spc_cli_local_error("ls", err) : SPC_EXIT_OK;
}

static int spc__ls_run(const struct spc_ctx *ctx, int argc, char **argv)
{
	struct spc_cli_list pos = SPC_CLI_LIST_INIT;
	struct spc_cli_list states = SPC_CLI_LIST_INIT;
	struct spc_cli_list labels = SPC_CLI_LIST_INIT;
	const char *target = NULL, *page_size = NULL, *page_token = NULL;
	const struct spc_opt opts[] = {
		{ "--target", SPC_OPT_VALUE, &target },
		{ "--state", SPC_OPT_LIST, &states },
		{ "--label", SPC_OPT_LIST, &labels },
		{ "--page-size", SPC_OPT_VALUE, &page_size },
		{ "--page-token", SPC_OPT_VALUE, &page_token },
		{ NULL, SPC_OPT_FLAG, NULL },
	};
	Spawnd__V1__ListProcessesRequest req =
		SPAWND__V1__LIST_PROCESSES_REQUEST__INIT;
	Spawnd__V1__State *state_values = NULL;
	ProtobufCMessage **entries = NULL;
	uint64_t n;
	size_t i;
	int status;
	int err;

	status = spc_cli_parse(&spc_cmd_ls, opts, argc, argv, 0, &pos);
	if (status != SPC_CLI_CONTINUE)
		goto out;
	if (pos.n > 0) {
		status = spc_cli_usage_error("ls", "unexpected argument '%s'", pos.v[0]);
		goto out;
	}
	if (target != NULL)
		req.target = (char *)target;
	if (page_token != NULL)
		req.page_token = (char *)page_token;
	if (page_size != NULL) {
		if (spc_cli_parse_uint(page_size, INT32_MAX, &n) < 0) {
			status = spc_cli_usage_error("ls", "--page-size: bad number '%s'",
						     page_size);
			goto out;
		}
		req.page_size = (int32_t)n;
	}
	if (states.n > 0) {
		state_values = calloc(states.n, sizeof *state_values);
		if (state_values == NULL) {
			status = spc_cli_local_error("ls", -ENOMEM);
			goto out;
		}
	}
	for (i = 0; i < states.n; i++) {
		if (spc__parse_state(states.v[i], &state_values[i]) < 0) {
			status = spc_cli_usage_error(
				"ls", "--state: unknown state '%s' (PENDING, RUNNING, "
				"SUCCEEDED, FAILED, CANCELED)", states.v[i]);
			goto out;
		}
	}
	req.n_states = states.n;
	req.states = state_values;
	err = spc_cli_labels("ls", "--label", labels.v, labels.n,
			     &spawnd__v1__list_processes_request__label_selector_entry__descriptor,
			     &entries);
	if (err < 0) {
		status = err == -ENOMEM ? spc_cli_local_error("ls", err)
					: SPC_EXIT_USAGE;
		goto out;
	}
	req.n_label_selector = labels.n;
	req.label_selector =
		(Spawnd__V1__ListProcessesRequest__LabelSelectorEntry **)entries;
	status = spc__list_show(ctx, SPC_METHOD("ListProcesses"), &req.base,
				&spawnd__v1__list_processes_response__descriptor, spc__ls_print);
out:
	spc_cli_labels_free(entries, labels.n);
	free(state_values);
	spc_cli_list_release(&labels);
	spc_cli_list_release(&states);
	spc_cli_list_release(&pos);
	return status;
}

static int spc__targets_print(const ProtobufCMessage *m)
{
	const Spawnd__V1__ListTargetsResponse *r = (const Spawnd__V1__ListTargetsResponse *)m;
	static const char *const header[] = { "NAME", "KIND", "METHOD", "RUNNING",
					      "PENDING", "IDLE", "HEALTH", "DESCRIPTION" };
	spc_output_table *t = NULL;
	size_t i;
	int err;

	err = spc_output_table_create(8, header, &t);
	for (i = 0; err == 0 && i < r->n_targets; i++) {
		const Spawnd__V1__Target *tg = r->targets[i];
		char running[16], pending[16], idle[32];
		const char *cells[8];

		snprintf(running, sizeof running, "%" PRIu32, tg->running);
		snprintf(pending, sizeof pending, "%" PRIu32, tg->pending);
		/* Pre-started children waiting, of how many it keeps; "-" for none. */
		if (tg->prestart > 0)
			snprintf(idle, sizeof idle, "%" PRIu32 "/%" PRIu32, tg->idle, tg->prestart);
		else
			snprintf(idle, sizeof idle, "-");
		cells[0] = tg->name;
		cells[1] = spc_output_enum_label(&spawnd__v1__target__kind__descriptor, tg->kind);
		cells[2] = spc_output_enum_label(&spawnd__v1__start_method__descriptor,
				     tg->start_method);
		cells[3] = running;
		cells[4] = pending;
		cells[5] = idle;
		cells[6] = spc_output_enum_label(&spawnd__v1__target__health__descriptor,
				     tg->health);
		cells[7] = tg->description;
		err = spc_output_table_add(t, cells);
	}
	if (err == 0)
		err = spc_output_table_print(t, stdout);
	spc_output_table_destroy(t);
	return err < 0 ? spc_cli_local_error("targets", err) : SPC_EXIT_OK;
}

static int spc__targets_run(const struct spc_ctx *ctx, int argc, char **argv)
{
	struct spc_cli_list pos = SPC_CLI_LIST_INIT;
	const struct spc_opt opts[] = { { NULL, SPC_OPT_FLAG, NULL } };
	Spawnd__V1__ListTargetsRequest req = SPAWND__V1__LIST_TARGETS_REQUEST__INIT;
	int status;

	status = spc_cli_parse(&spc_cmd_targets, opts, argc, argv, 0, &pos);
	if (status != SPC_CLI_CONTINUE)
		goto out;
	if (pos.n > 0) {
		status = spc_cli_usage_error("targets", "unexpected argument '%s'",
					     pos.v[0]);
		goto out;
	}
	status = spc__list_show(ctx, SPC_METHOD("ListTargets"), &req.base,
				&spawnd__v1__list_targets_response__descriptor, spc__targets_print);
out:
	spc_cli_list_release(&pos);
	return status;
}

const struct spc_command spc_cmd_ls = {
	.name = "ls",
	.summary = "list processes",
	.usage = spc__ls_usage,
	.run = spc__ls_run,
};

const struct spc_command spc_cmd_targets = {
	.name = "targets",
	.summary = "list the registered targets",
	.usage = spc__targets_usage,
	.run = spc__targets_run,
};
