/* spawnctl: the command-line client of spawnd (SPEC §6).
 *
 *   spawnctl [--addr A] [--tls] [--cacert F] [--cert F --key F] [--token T]
 *            [--json] [--timeout D] SUBCOMMAND [options]
 *            POSITIONALS [--] [TARGET ARGS...]
 *
 * main() parses the global options and hands the rest to the subcommand.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "tools/spawnctl/cli.h"
#include "tools/spawnctl/commands.h"

#define SPC_DEFAULT_ADDR "127.0.0.1:50051"

static const struct spc_command *const spc__commands[] = {
	&spc_cmd_start, &spc_cmd_watch, &spc_cmd_destroy, &spc_cmd_get,
	&spc_cmd_ls,    &spc_cmd_targets, &spc_cmd_health, &spc_cmd_bench,
};

#define SPC_NCOMMANDS (sizeof spc__commands / sizeof spc__commands[0])

static int spc__main_help(void)
{
	size_t i;

	fputs("Usage: spawnctl [GLOBAL OPTIONS] SUBCOMMAND [OPTIONS] POSITIONALS\n"
	      "                [--] [TARGET ARGS...]\n"
	      "\n"
	      "The command-line client of spawnd. Options come before positionals;\n"
	      "\"--\" ends the options.\n"
	      "\n"
	      "Global options:\n"
	      "  --addr A      server address: HOST:PORT or unix:/PATH (default:\n"
	      "                $SPAWND_ADDR, else " SPC_DEFAULT_ADDR ")\n"
	      "  --tls         connect with TLS (implied by the three below)\n"
	      "  --cacert F    PEM file of the CA that signed spawnd's certificate\n"
	      "                (default: the system's roots)\n"
	      "  --cert F, --key F\n"
	      "                client certificate and key (mTLS)\n"
	      "  --token T     bearer token (default: $SPAWND_TOKEN); sent as\n"
	      "                \"authorization: Bearer T\"\n"
	      "  --json        print one JSON object per message (proto3 JSON\n"
	      "                mapping) instead of text\n"
	      "  --timeout D   deadline of each RPC (default 10s); also bounds\n"
	      "                watching and waiting, which otherwise have none\n"
	      "  -h, --help    show this help\n"
	      "\n"
	      "Subcommands:\n", stdout);
	for (i = 0; i < SPC_NCOMMANDS; i++)
		printf("  %-9s %s\n", spc__commands[i]->name,
		       spc__commands[i]->summary);
	fputs("\n"
	      "`spawnctl SUBCOMMAND --help` describes each one.\n"
	      "\n"
	      "Exit status:\n"
	      "  0  success (a watched process succeeded)\n"
	      "  1  a watched process failed (health: not SERVING)\n"
	      "  2  a watched process was canceled\n"
	      "  3  usage error (bad option, missing argument, bad duration,\n"
	      "     unreadable --input)\n"
	      "  4  RPC or transport error (printed as `spawnctl: CODE: details`)\n",
	      stdout);
	return SPC_EXIT_OK;
}

int main(int argc, char **argv)
{
	struct spc_ctx ctx = { 0 };
	const char *timeout = NULL;
	const char *env = getenv("SPAWND_ADDR");
	size_t k;
	int i;

	ctx.conn.addr = env != NULL && env[0] != '\0' ? env : SPC_DEFAULT_ADDR;
	env = getenv("SPAWND_TOKEN");
	ctx.conn.token = env != NULL && env[0] != '\0' ? env : NULL;
	for (i = 1; i < argc && spc_cli_is_option(argv[i]); i++) {
		static const struct {
			const char *name;
			size_t offset;
		} values[] = {
			{"--addr", offsetof(struct spc_conn, addr)},
			{"--cacert", offsetof(struct spc_conn, cacert)},
			{"--cert", offsetof(struct spc_conn, cert)},
			{"--key", offsetof(struct spc_conn, key)},
			{"--token", offsetof(struct spc_conn, token)},
		};
		const char *val = NULL;
		int r = 0;

		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return spc__main_help();
		if (strcmp(argv[i], "--json") == 0) {
			ctx.json = 1;
			continue;
		}
		if (strcmp(argv[i], "--tls") == 0) {
			ctx.conn.tls = 1;
			continue;
		}
		for (k = 0; r == 0 && k < sizeof values / sizeof values[0]; k++) {
			r = spc_cli_opt_value(argc, argv, &i, NULL, values[k].name, &val);
			if (r > 0)
				*(const char **)((char *)&ctx.conn + values[k].offset) = val;
		}
		if (r == 0)
			r = spc_cli_opt_value(argc, argv, &i, NULL, "--timeout",
					      &timeout);
		if (r < 0)
			return SPC_EXIT_USAGE;
		if (r == 0)
			return spc_cli_usage_error(NULL, "unknown option '%s'",
						   argv[i]);
	}
	if (timeout != NULL) {
		if (spc_cli_duration_opt(NULL, "--timeout", timeout,
					 &ctx.timeout_ns) < 0)
			return SPC_EXIT_USAGE;
		ctx.timeout_set = 1;
	}
	if ((ctx.conn.cert == NULL) != (ctx.conn.key == NULL))
		return spc_cli_usage_error(NULL, "--cert and --key go together");
	if (ctx.conn.addr[0] == '\0')
		return spc_cli_usage_error(NULL, "--addr: empty address");
	if (i == argc)
		return spc_cli_usage_error(NULL, "missing SUBCOMMAND");
	for (k = 0; k < SPC_NCOMMANDS; k++)
		if (strcmp(argv[i], spc__commands[k]->name) == 0)
			return spc__commands[k]->run(&ctx, argc - i - 1, argv + i + 1);
	return spc_cli_usage_error(NULL, "unknown subcommand '%s'", argv[i]);
}
