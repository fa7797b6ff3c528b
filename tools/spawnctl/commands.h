/* spawnctl's subcommands, one struct spc_command each (see cli.h), and the
 * pieces two of them share.
 */
#ifndef SPAWNCTL_COMMANDS_H
#define SPAWNCTL_COMMANDS_H

#include "spawnd/v1/spawnd.pb-c.h"
#include "tools/spawnctl/cli.h"
#include "tools/spawnctl/client.h"

#define SPC_METHOD(name) "/spawnd.v1.ProcessService/" name

extern const struct spc_command spc_cmd_start;   /* start.c */
extern const struct spc_command spc_cmd_watch;   /* watch.c */
extern const struct spc_command spc_cmd_get;     /* process.c */
extern const struct spc_command spc_cmd_destroy; /* process.c */
extern const struct spc_command spc_cmd_ls;      /* list.c */
extern const struct spc_command spc_cmd_targets; /* list.c */
extern const struct spc_command spc_cmd_health;  /* health.c */
extern const struct spc_command spc_cmd_bench;   /* bench.c */

/* How spc_watch_follow shows a process it follows (human mode; with --json
 * every event is one JSON object on stdout). */
enum spc_follow_mode {
	/* `watch`: one line per event on stdout; with output, the chunks raw
	 * (stdout to stdout, stderr to stderr) and the lines on stderr. */
	SPC_FOLLOW_EVENTS,
	/* `start --watch`: the lines on stderr, the output chunks raw, then the
	 * result's raw bytes on stdout and the error on stderr. */
	SPC_FOLLOW_RESULT,
};

/* Watches process ID through C until its terminal event and the end of the
 * stream (or the --timeout deadline), showing it as MODE says; with
 * INCLUDE_OUTPUT its output too, and from AFTER_SEQUENCE on (0: from a
 * SNAPSHOT). Returns the exit status: SPC_EXIT_OK / _FAILED / _CANCELED after
 * the terminal event (or, resuming past the last event of an ended process,
 * as GetProcess says), SPC_EXIT_RPC when the RPC failed or ended without
 * one. */
int spc_watch_follow(const struct spc_ctx *ctx, spc_client *c, const char *id,
		     int include_output, uint64_t after_sequence,
		     enum spc_follow_mode mode);

/* Runs START (Run: one call that starts the process and streams its events
 * from PENDING) and follows it as spc_watch_follow does. Start errors are the
 * stream's status (SPC_EXIT_RPC, said on stderr). */
int spc_run_follow(const struct spc_ctx *ctx, spc_client *c,
		   Spawnd__V1__StartProcessRequest *start, int include_output,
		   enum spc_follow_mode mode);

/* The exit status that mirrors terminal state STATE, or -1 if STATE is not
 * terminal. */
int spc_watch_exit_status(Spawnd__V1__State state);

/* Prints P for the user: JSON (one line) with --json, else aligned fields.
 * Returns SPC_EXIT_OK or, when stdout fails, SPC_EXIT_RPC. */
int spc_print_message(const struct spc_ctx *ctx, const ProtobufCMessage *p);

#endif
