/* spawnctl's command-line plumbing: the global context, exit statuses, option
 * matching, value parsers (durations, labels, states), input files, and the
 * error reports every subcommand prints the same way.
 */
#ifndef SPAWNCTL_CLI_H
#define SPAWNCTL_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/duration.pb-c.h"
#include "tools/spawnctl/client.h"

/* Exit statuses (SPEC §6). 0-2 mirror a watched process; 3 and 4 are ours. */
enum {
	SPC_EXIT_OK = 0,       /* done; a watched process succeeded */
	SPC_EXIT_FAILED = 1,   /* a watched process failed; health not SERVING */
	SPC_EXIT_CANCELED = 2, /* a watched process was canceled */
	SPC_EXIT_USAGE = 3,    /* bad command line or unreadable --input */
	SPC_EXIT_RPC = 4,      /* RPC, transport or internal error */
};

/* Default deadline of a unary RPC when --timeout is not given. */
#define SPC_DEFAULT_TIMEOUT_NS (10 * 1000000000LL)

/* Largest --input spawnctl reads (the server's own cap is lower). */
#define SPC_INPUT_MAX ((size_t)64 << 20)

/* The global options, shared by every subcommand. */
struct spc_ctx {
	struct spc_conn conn; /* --addr ($SPAWND_ADDR, 127.0.0.1:50051), --tls, --cacert,
			       * --cert, --key, --token ($SPAWND_TOKEN) */
	int json;           /* --json */
	int64_t timeout_ns; /* --timeout: deadline of each RPC; 0 = none */
	int timeout_set;    /* --timeout given: it also bounds streams and waits */
};

/* A subcommand: RUN parses ARGV (ARGV[0] is the first word after the
 * subcommand's name) and returns the process exit status. */
struct spc_command {
	const char *name;
	const char *summary; /* one line for the global help */
	const char *usage;   /* the full text of `spawnctl NAME --help` */
	int (*run)(const struct spc_ctx *ctx, int argc, char **argv);
};

/* Deadline for a unary call: --timeout, or the default. */
int64_t spc_cli_unary_timeout(const struct spc_ctx *ctx);

/* Deadline for a stream or a call that waits on a process: --timeout if it
 * was given, else none. */
int64_t spc_cli_wait_timeout(const struct spc_ctx *ctx);

/* Prints "spawnctl: [CMD: ]MESSAGE" and a pointer to the help on stderr and
 * returns SPC_EXIT_USAGE. CMD may be NULL. */
int spc_cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prints CMD's usage text on stdout and returns SPC_EXIT_OK. */
int spc_cli_help(const struct spc_command *cmd);

/* Prints "spawnctl: CODE_NAME: details" on stderr; returns SPC_EXIT_RPC. */
int spc_cli_rpc_error(const struct spc_status *st);

/* Prints "spawnctl: WHAT: strerror(-ERR)" on stderr; returns SPC_EXIT_RPC. */
int spc_cli_local_error(const char *what, int err);

/* Whether ARG is an option word: starts with '-' and is not "-" alone. */
int spc_cli_is_option(const char *arg);

/* Matches an option that takes a value, "NAME VALUE" or "NAME=VALUE", at
 * ARGV[*I]. Returns 1 with *VAL set and *I on the last word consumed, 0 if
 * ARGV[*I] is not NAME, or -EINVAL (a usage error was printed for CMD) when
 * the value is missing. */
int spc_cli_opt_value(int argc, char **argv, int *i, const char *cmd,
		      const char *name, const char **val);

/* Options of a subcommand, for spc_cli_parse. */
enum spc_opt_kind {
	SPC_OPT_FLAG,  /* DEST is an int, set to 1 */
	SPC_OPT_VALUE, /* DEST is a const char *, set to the value (last wins) */
	SPC_OPT_LIST,  /* DEST is a struct spc_cli_list, the value appended */
};

struct spc_opt {
	const char *name; /* "--grace"; NULL ends a table */
	enum spc_opt_kind kind;
	void *dest;
};

/* Words of the command line (pointers into argv). */
struct spc_cli_list {
	char **v; /* malloc'd (spc_cli_list_release), NULL while empty */
	size_t n;
};

#define SPC_CLI_LIST_INIT { NULL, 0 }

/* Frees L's array (not the words). */
void spc_cli_list_release(struct spc_cli_list *l);

/* Returned by spc_cli_parse when the subcommand should go on. */
#define SPC_CLI_CONTINUE (-1)

/* Parses ARGV (ARGC words after CMD's name) against OPTS. Options are
 * recognised until "--" and, if POSITIONAL_ENDS_OPTIONS is set, until the
 * first positional (then one "--" right after that positional is dropped);
 * otherwise options and positionals may mix. "-h"/"--help" prints CMD's
 * usage. The positionals go to POS. Returns SPC_CLI_CONTINUE, or the exit
 * status to return: SPC_EXIT_OK after the help, SPC_EXIT_USAGE after a usage
 * error (printed), SPC_EXIT_RPC without memory. In every case the caller
 * releases POS and every SPC_OPT_LIST destination. */
int spc_cli_parse(const struct spc_command *cmd, const struct spc_opt *opts,
		  int argc, char **argv, int positional_ends_options,
		  struct spc_cli_list *pos);

/* Parses a duration: a decimal number with a unit (ns, us, ms, s, m, h),
 * possibly several ("1m30s"), or "0". Returns 0 with *NS set, or -EINVAL. */
int spc_cli_parse_duration(const char *s, int64_t *ns);

/* Like spc_cli_parse_duration for the value of OPTION; on failure prints a
 * usage error naming OPTION for CMD and returns -EINVAL. */
int spc_cli_duration_opt(const char *cmd, const char *option, const char *s,
			 int64_t *ns);

/* NS as a google.protobuf.Duration. */
void spc_cli_duration_to_proto(int64_t ns, Google__Protobuf__Duration *d);

/* Parses a non-negative decimal integer <= MAX. 0 or -EINVAL. */
int spc_cli_parse_uint(const char *s, uint64_t max, uint64_t *out);

/* Builds map entries of type ENTRY (a protobuf-c "...Entry" message with
 * string key and value) from N words "k=v". On success *OUT is an array of
 * N entries owned by the caller (spc_cli_labels_free). On a word without '='
 * or with an empty key, prints a usage error naming OPTION for CMD and
 * returns -EINVAL; else 0 or -ENOMEM. */
int spc_cli_labels(const char *cmd, const char *option, char *const *words,
		   size_t n, const ProtobufCMessageDescriptor *entry,
		   ProtobufCMessage ***out);

/* Frees N entries built by spc_cli_labels, and the array. */
void spc_cli_labels_free(ProtobufCMessage **entries, size_t n);

/* Reads all of PATH ("-": stdin), at most SPC_INPUT_MAX bytes. On success
 * *DATA (malloc'd, free()) and *LEN hold the bytes. Returns 0, -EFBIG, -ENOMEM
 * or the -errno of open/read. */
int spc_cli_read_input(const char *path, uint8_t **data, size_t *len);

#endif
