/* spawnd configuration: YAML (SPEC §5) loaded with libyaml into a plain struct.
 *
 * Only this module includes <yaml.h>. The loaded struct is a value: every string
 * and array in it is owned by the spd_config and freed by spd_config_destroy().
 * After loading, every target carries its fully resolved settings (the `defaults:`
 * block applied, exec targets forced to spawn), so no other module needs to know
 * about inheritance.
 *
 * Errors: every loader returns 0 or a negative errno (-EINVAL for a bad file,
 * -ENOENT/-EACCES/... for I/O) and fills `err` with one line
 *   "FILE:LINE:COLUMN: KEY: what is wrong"
 * (LINE and COLUMN 1-based, pointing at the offending node; KEY is the dotted path,
 * e.g. "targets.echo.timeout"). Nothing is allocated on failure.
 *
 * Thread: none of these functions share state; a loaded config is read-only and
 * may be read from any thread.
 */
#ifndef SPAWND_CONFIG_CONFIG_H
#define SPAWND_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPD_CONFIG_ERR_MAX 512

typedef enum spd_start_method {
	SPD_START_FORK = 1,
	SPD_START_FORKSERVER = 2,
	SPD_START_SPAWN = 3,
} spd_start_method;

typedef enum spd_target_kind {
	SPD_TARGET_FUNCTION = 1,
	SPD_TARGET_EXEC = 2,
} spd_target_kind;

typedef enum spd_zygote_start {
	SPD_ZYGOTE_FIRST_USE = 1,
	SPD_ZYGOTE_BOOT = 2,
} spd_zygote_start;

typedef enum spd_log_format {
	SPD_LOG_FORMAT_JSON = 1,
	SPD_LOG_FORMAT_TEXT = 2,
} spd_log_format;

/* Log levels, in increasing verbosity (same values as common/log.h). */
typedef enum spd_config_log_level {
	SPD_CONFIG_LOG_ERROR = 0,
	SPD_CONFIG_LOG_WARN = 1,
	SPD_CONFIG_LOG_INFO = 2,
	SPD_CONFIG_LOG_DEBUG = 3,
} spd_config_log_level;

/* Settings every target inherits from `defaults:` and may override. Durations are
 * milliseconds, sizes bytes; 0 means "none" where SPEC §5 says so. */
typedef struct spd_target_limits {
	spd_start_method start_method;
	int64_t destroy_grace_ms;   /* default 10000 */
	int stop_signal;            /* default SIGTERM; parsed with spd_signal_parse() (common/signame.h) */
	int64_t timeout_ms;         /* 0 = none */
	uint32_t max_concurrent;    /* 0 = none beyond max_running */
	uint64_t max_result_bytes;  /* default 1 MiB */
	uint64_t max_output_bytes;  /* default 1 MiB, per stream kept */
	uint64_t memory_limit;      /* 0 = none */
	int64_t cpu_time_limit_ms;  /* 0 = none; applied as RLIMIT_CPU in whole seconds, rounded up */
	uint64_t open_files_limit;  /* default 1024 */
	spd_zygote_start zygote_start;
	/* forkserver: how long a start waits (PENDING) for its zygote while the
	 * zygote is down or restarting before it fails LAUNCH; default 10000 */
	int64_t zygote_wait_ms;
} spd_target_limits;

typedef struct spd_target_config {
	char *name;
	char *description;          /* "" when absent */
	spd_target_kind kind;

	/* kind == SPD_TARGET_FUNCTION: exactly one of builtin or library+symbol. */
	char *builtin;              /* "echo" for `function: builtin:echo`, else NULL */
	char *library;              /* absolute path (relative ones resolved against the config dir) */
	char *symbol;

	/* kind == SPD_TARGET_EXEC */
	char **exec_argv;           /* NULL-terminated; exec_argc >= 1; argv[0] is the path */
	size_t exec_argc;
	bool allow_args;            /* exec: request args appended after exec_argv; default false */
	unsigned umask;             /* the child's umask; default 022 */

	/* Child environment (SPEC §7): built from env + inherit_env only. */
	char **env;                 /* "KEY=VALUE", NULL-terminated */
	size_t env_count;
	char **inherit_env;         /* variable names, NULL-terminated */
	size_t inherit_env_count;
	char *cwd;                  /* NULL = inherit; relative resolved against the config dir */
	char *user;                 /* NULL = keep */
	char *group;                /* NULL = keep (or the user's primary group) */

	spd_target_limits limits;   /* resolved: defaults applied */

	/* Pre-started children kept waiting for a call (SPEC §12): function
	 * targets with start_method fork or forkserver only; 0 = none. A target
	 * key, not a limit: `defaults:` has no prestart. */
	uint32_t prestart;

	int line, column;           /* where the target is defined, for messages */
} spd_target_config;

/* store.sync (SPEC §12 "Store"): SQLite's synchronous = NORMAL (a commit
 * survives spawnd being killed; the last ones may be lost in a power cut) or
 * FULL (each commit reaches the disk before it counts). */
typedef enum spd_store_sync {
	SPD_STORE_SYNC_NORMAL = 0,
	SPD_STORE_SYNC_FULL = 1,
} spd_store_sync;

typedef struct spd_config {
	char *path;                 /* the file loaded, or "<default>" */
	char *dir;                  /* its directory, for relative paths */

	char **listen;              /* NULL-terminated, >= 1 entry */
	size_t listen_count;

	/* tls and auth are parsed and validated; see spd_config_load for what is
	 * rejected as "not supported yet". */
	char *tls_cert, *tls_key, *tls_client_ca;
	char *auth_tokens_file;
	bool auth_protect_health;

	unsigned unix_socket_mode;  /* default 0660 */
	uint32_t max_running;       /* default 64 */
	uint32_t max_pending;       /* default 1024 */
	uint32_t max_idle;          /* pre-started children, all targets; default 64 */
	uint64_t max_request_bytes; /* default 4 MiB */
	uint32_t history_max_records;    /* default 10000 */
	int64_t history_retention_ms;    /* default 1h */
	char *store_path;                /* store.path, resolved; NULL: no store (memory only) */
	spd_store_sync store_sync;       /* store.sync, default normal */
	int64_t shutdown_grace_ms;       /* default 30 s */
	spd_log_format log_format;       /* default json */
	spd_config_log_level log_level;  /* default info */

	/* metrics.listen: "HOST:PORT" of the Prometheus listener (plain HTTP,
	 * GET /metrics); NULL: no metrics listener (the default). */
	char *metrics_listen;

	spd_target_limits defaults;
	spd_target_config *targets; /* target_count entries, in file order */
	size_t target_count;
} spd_config;

/* File descriptors the launcher needs for CFG: SPD_LAUNCHER_FDS_PER_PROCESS per
 * running process (its stdout, stderr and result pipes and its pidfd),
 * SPD_LAUNCHER_FDS_PER_IDLE per pre-started child (the same and its request
 * pipe), one per target (a forkserver zygote's socket) and
 * SPD_LAUNCHER_FDS_BASE for its own
 * (stdio, sockets, the pipes of a start in progress). Loading refuses a
 * max_running whose count exceeds the hard RLIMIT_NOFILE, naming both numbers;
 * the launcher raises its soft limit to the hard one. */
#define SPD_LAUNCHER_FDS_PER_PROCESS 4u
#define SPD_LAUNCHER_FDS_PER_IDLE 5u
#define SPD_LAUNCHER_FDS_BASE 24u
uint64_t spd_config_launcher_fds(const spd_config *cfg);

/* The most pre-started children CFG can keep: the sum of its targets'
 * prestart, at most max_idle. */
uint32_t spd_config_idle_max(const spd_config *cfg);

/* The embedded default config (sample targets on 127.0.0.1:50051), NUL-terminated. */
extern const char spd_config_default_yaml[];

/* Loads and validates FILE. On success *out owns a new config. */
int spd_config_load_file(const char *path, spd_config **out, char err[SPD_CONFIG_ERR_MAX]);

/* Loads YAML text. `name` is used in messages in place of a file name and
 * `base_dir` resolves relative paths (may be NULL: the current directory). */
int spd_config_load_string(const char *text, size_t len, const char *name,
			   const char *base_dir, spd_config **out,
			   char err[SPD_CONFIG_ERR_MAX]);

/* Applies SPAWND_LISTEN (comma-separated list, replaces `listen`) and
 * SPAWND_LOG_LEVEL from the environment. Returns 0 or -EINVAL with err set
 * ("SPAWND_LISTEN: ..."). */
int spd_config_apply_env(spd_config *cfg, char err[SPD_CONFIG_ERR_MAX]);

/* Frees everything; NULL is fine. */
void spd_config_destroy(spd_config *cfg);

/* Frees what T owns (its strings and vectors), not T itself: for the
 * spd_target_config values of a config and of a decoded boot (wire/boot.h).
 * In the :types library, so that code without the loader can use it. */
void spd_target_config_release(spd_target_config *t);

/* A deep copy of SRC into DST (which owns it afterwards: release it with
 * spd_target_config_release). Returns 0 or -ENOMEM (DST then holds nothing). */
int spd_target_config_copy(spd_target_config *dst, const spd_target_config *src);

/* Whether A and B run processes alike: every setting but where they are
 * written (line, column). A reload keeps a target whose settings are equal. */
bool spd_target_config_equal(const spd_target_config *a, const spd_target_config *b);

/* The target named NAME, or NULL. */
const spd_target_config *spd_config_find_target(const spd_config *cfg, const char *name);

/* "512MiB" -> bytes; "0" -> 0. Units B KiB MiB GiB are required for non-zero
 * values. Returns 0 or -EINVAL (also on overflow). */
int spd_config_parse_size(const char *s, uint64_t *out);

/* "300ms", "10s", "2m", "1h" -> milliseconds; "0" -> 0. Returns 0 or -EINVAL
 * (negative, missing unit, overflow). */
int spd_config_parse_duration_ms(const char *s, int64_t *out);

#endif
