/* The config loader's internals, shared by its files (not for other modules):
 *
 *   walk.c      the YAML walk: libyaml's document API, node access with the
 *               alias budget, typed scalars, mappings and lists, and every error
 *               message with its FILE:LINE:COLUMN position
 *   schema.c    the settings tables (top level, defaults/target limits, history,
 *               log, tls, auth), storing a scalar by its table entry, the
 *               built-in defaults and their inheritance by each target
 *   targets.c   one `targets:` entry: function, exec, env, inherit_env
 *   units.c     sizes, durations, modes, escaped text and path resolution:
 *               pure functions, no YAML
 *   validate.c  cross-field checks run once the values are parsed
 *   env.c       SPAWND_LISTEN and SPAWND_LOG_LEVEL (spd_config_apply_env)
 *   config.c    the public entry points: load a file or a string, free, find
 *
 * Only these files include <yaml.h>. Every spd__cfg_ function that takes a
 * `struct loader` returns 0 or a negative errno and, on failure, has written the
 * one-line message of config.h into ld->err.
 */
#ifndef SPAWND_CONFIG_CONFIG_IMPL_H
#define SPAWND_CONFIG_CONFIG_IMPL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#include "service/common/limits.h"
#include "service/config/config.h"

/*
 * Bounds. The loader is fed untrusted text (and fuzzed), so everything it reads
 * or builds has a ceiling. Aliases are the subtle one: libyaml resolves `*x` to
 * a second reference to the anchored node, so a small file can describe a huge
 * (even cyclic) tree. Every node visit is charged against a budget, weighted by
 * the bytes it may copy, which bounds both time and memory.
 */
#define CONFIG_FILE_MAX		(1u << 20)	/* bytes of YAML */
#define CONFIG_BUDGET		(32u << 20)	/* node visits: 8 + scalar bytes each */
#define CONFIG_FLOW_MAX		32		/* nesting of [ ] and { } */
#define CONFIG_ANCHORS_MAX	256
#define CONFIG_FEED_CHUNK	64		/* bytes handed to libyaml at a time */
#define CONFIG_SCALAR_MAX	65536		/* bytes of one string */
#define CONFIG_TARGETS_MAX	4096
#define CONFIG_LISTEN_MAX	64
#define CONFIG_ARGV_MAX		SPD_ARGS_MAX	/* the request's own cap on args */
#define CONFIG_ENV_MAX		1024
#define CONFIG_NAME_MAX		SPD_TARGET_NAME_MAX	/* target names */
#define CONFIG_SYMBOL_MAX	1024
#define CONFIG_KEY_MAX		256		/* dotted key path in a message */
#define CONFIG_SHOW_MAX		64		/* bytes of a bad value echoed in a message */
#define CONFIG_SHOW_SIZE	(CONFIG_SHOW_MAX * 4 + 8)	/* its buffer, escaped */
#define CONFIG_SIZE_MAX		(1ULL << 50)	/* 1 PiB: any memory_limit */
#define CONFIG_MSG_MAX		INT_MAX		/* what a gRPC/protobuf message can carry */
#define CONFIG_DURATION_MAX	(87600LL * 3600 * 1000)	/* ten years, in ms */
#define CONFIG_IDLE_MAX		4096		/* prestart, max_idle */

#define UNKNOWN_KEY 1	/* a key handler's "not mine" */

#define STR_(x) #x
#define STR(x) STR_(x)

/* ---- units.c: text, paths, numbers with units ---------------------------- */

/* snprintf() for messages, which are cut at their buffer's size on purpose. */
void spd__cfg_printf(char *dst, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The first LEN bytes of S as a new string, or NULL. */
char *spd__cfg_strndup(const char *s, size_t len);

/* Copies user text into a message buffer: at most `max` bytes of it, with every
 * byte outside printable ASCII (and quotes and backslashes) escaped, so that no
 * input can break the one-line message format. Appends "..." when cut. */
void spd__cfg_escape(char *dst, size_t size, const char *s, size_t len, size_t max);

/* Joins `rel` (len bytes) to the absolute directory `dir` into a new absolute,
 * tidied path; an absolute `rel` ignores `dir`. Returns 0, -ENAMETOOLONG when
 * the result would not fit PATH_MAX, or -ENOMEM. */
int spd__cfg_path_join(const char *dir, const char *rel, size_t len, char **out);

/* `dir` (len bytes) made absolute against the current directory (NULL: the
 * current one), into a new string. */
int spd__cfg_absolute_dir(const char *dir, size_t len, char **out);

enum num_status {
	NUM_OK,
	NUM_BAD,		/* not a number, or an unknown unit */
	NUM_NEGATIVE,
	NUM_NO_UNIT,		/* a bare non-zero number where a unit is needed */
	NUM_TOO_LARGE,
};

struct unit {
	const char *name;
	uint64_t factor;
};

/* {NULL, 0}-terminated: B KiB MiB GiB, and ms s m h. */
extern const struct unit spd__cfg_size_units[];
extern const struct unit spd__cfg_duration_units[];

/* "DIGITS[UNIT]" -> DIGITS * factor(UNIT), at most `max`. units == NULL: a plain
 * integer. With units, a unit is required unless the number is 0. */
enum num_status spd__cfg_num_parse(const char *s, const struct unit *units, uint64_t max,
				   uint64_t *out);

/* v in the largest unit that divides it exactly: "4MiB", "90s". */
void spd__cfg_num_format(char *buf, size_t size, uint64_t v, const struct unit *units);

/* "0660" -> 0660: one to four octal digits (LEN bytes of S), at most MAX. */
bool spd__cfg_mode_parse(const char *s, size_t len, unsigned max, unsigned *out);

/* ---- the loader's state ------------------------------------------------- */

enum limit_index {
	LIMIT_START_METHOD,
	LIMIT_DESTROY_GRACE,
	LIMIT_STOP_SIGNAL,
	LIMIT_TIMEOUT,
	LIMIT_MAX_CONCURRENT,
	LIMIT_MAX_RESULT,
	LIMIT_MAX_OUTPUT,
	LIMIT_MEMORY,
	LIMIT_CPU_TIME,
	LIMIT_OPEN_FILES,
	LIMIT_ZYGOTE_START,
	LIMIT_ZYGOTE_WAIT,
	LIMIT_COUNT
};

/* What the loader remembers about one target beyond its spd_target_config. */
struct target_seen {
	yaml_node_t *limits_set[LIMIT_COUNT];	/* value node of each key given */
	yaml_node_t *prestart;			/* the prestart key, when given */
};

struct loader {
	char name[CONFIG_KEY_MAX];	/* the file name, escaped for messages */
	const char *dir;		/* absolute, for relative paths */
	char *err;
	yaml_document_t doc;
	bool doc_loaded;		/* doc holds a document to delete */
	size_t budget;
	spd_config *cfg;

	yaml_node_t *max_running;	/* its value node, when the file sets it */
	yaml_node_t *defaults_set[LIMIT_COUNT];
	struct target_seen *seen;	/* one per cfg->targets entry */
};

/* One key/value pair of a mapping, as handed to a key handler. */
struct pair {
	yaml_node_t *key, *value;
	const char *name;		/* the key's text, NUL-free */
	size_t len;
	const char *path;		/* dotted path of the key */
	const char *parent;		/* dotted path of the mapping */
};

/* ---- walk.c: the YAML walk ----------------------------------------------- */

/* Fails with "FILE:LINE:COLUMN: PATH: message" placed at NODE: -EINVAL. */
int spd__cfg_fail(struct loader *ld, const yaml_node_t *node, const char *path,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Fails with "FILE: strerror(-r)": r. */
int spd__cfg_errno(struct loader *ld, int r);

/* Parses TEXT (LEN bytes, at most CONFIG_FILE_MAX) into ld->doc, refusing a
 * second document and the inputs libyaml would take too long on. On success
 * ld->doc_loaded is set and spd__cfg_close() deletes the document. */
int spd__cfg_open(struct loader *ld, const char *text, size_t len);
void spd__cfg_close(struct loader *ld);

/* PARENT.NAME, with NAME (LEN bytes) escaped and cut; an empty NAME shows as "". */
void spd__cfg_key_child(char *dst, size_t size, const char *parent, const char *name,
			size_t len);

/* True for YAML's plain null: "", "~", "null", "Null", "NULL". */
bool spd__cfg_is_null(const yaml_node_t *node);

/* Fails unless node is of `type`; `what` names the expected thing. */
int spd__cfg_expect(struct loader *ld, const yaml_node_t *node, const char *path,
		    yaml_node_type_t type, const char *what);

/* The text of a scalar node: not null, no NUL byte, at most CONFIG_SCALAR_MAX. */
int spd__cfg_scalar(struct loader *ld, const yaml_node_t *node, const char *path,
		    const char *what, const char **s, size_t *len);

/* A scalar copied into a new string of min_len..max_len bytes. */
int spd__cfg_string(struct loader *ld, const yaml_node_t *node, const char *path,
		    size_t min_len, size_t max_len, char **out);

/* A path, resolved against the config file's directory, into a new string. */
int spd__cfg_path(struct loader *ld, const yaml_node_t *node, const char *path, char **out);

/* A mapping of at most MAX pairs: its pair count in *n, or "too many WHAT". */
int spd__cfg_mapping(struct loader *ld, const yaml_node_t *node, const char *path, size_t max,
		     const char *what, size_t *n);

/* A key handler: 0, a negative errno, or UNKNOWN_KEY ("unknown key" at the key). */
typedef int (*pair_fn)(struct loader *ld, const struct pair *p, void *arg);

/* Calls fn for each pair of the mapping `map` (at most `max`), in file order.
 * Keys must be unique strings (`dup_what` names a repeat: "duplicate key"). */
int spd__cfg_each_pair(struct loader *ld, const yaml_node_t *map, const char *path,
		       size_t max, const char *dup_what, pair_fn fn, void *arg);

/* Checks item I (text S) of a string list: 0, or spd__cfg_fail() at ITEM. */
typedef int (*strv_check_fn)(struct loader *ld, const yaml_node_t *item, const char *path,
			     size_t i, const char *s);

/* A list of min_items..max_items strings into a new NULL-terminated vector *v
 * (set before the items are read, so that it is freed with the config if one
 * fails), each passed through CHECK; on success *count is its length. */
int spd__cfg_strv(struct loader *ld, const yaml_node_t *node, const char *path,
		  size_t min_items, size_t max_items, strv_check_fn check, char ***v,
		  size_t *count);

/* ---- schema.c: the settings tables ---------------------------------------- */

struct name_value {
	const char *name;
	int value;
};

/* SPAWND_LOG_LEVEL's and log.level's names, {NULL, 0}-terminated. */
extern const struct name_value spd__cfg_log_levels[];

/* The built-in values of everything the file may leave out (SPEC §5). */
void spd__cfg_set_defaults(spd_config *cfg);

/* A top-level key: the pair_fn for the document's root mapping. */
int spd__cfg_top_key(struct loader *ld, const struct pair *p, void *arg);

/* A target's scalar key (its own settings or a limit it overrides, remembered in
 * SEEN), or UNKNOWN_KEY. */
int spd__cfg_target_setting(struct loader *ld, const struct pair *p, spd_target_config *t,
			    struct target_seen *seen);

/* Fills what the file left out: listen, and each target's inherited limits. */
int spd__cfg_finish(struct loader *ld);

/* ---- targets.c ----------------------------------------------------------- */

/* `targets: {NAME: {...}, ...}` into cfg->targets and ld->seen. */
int spd__cfg_targets(struct loader *ld, const yaml_node_t *node, const char *path);

/* ---- validate.c: cross-field checks --------------------------------------- */

/* One target once its keys are read (P its pair in `targets:`): needs function
 * or exec; allow_args only for exec; exec targets always spawn. KIND_KEY and
 * ALLOW_ARGS_KEY are those keys' nodes, NULL when absent. */
int spd__cfg_check_target(struct loader *ld, const struct pair *p, const spd_target_config *t,
			  const struct target_seen *seen, const yaml_node_t *kind_key,
			  const yaml_node_t *allow_args_key);

/* A listen address's form (common/address.h): a strv_check_fn. Whether it can
 * be bound is for the server to say when it starts. */
int spd__cfg_check_listen(struct loader *ld, const yaml_node_t *item, const char *path,
			  size_t i, const char *s);
/* metrics.listen: an address (common/address.h) of kind TCP. */
int spd__cfg_check_metrics_listen(struct loader *ld, const yaml_node_t *node, const char *path,
				  const char *s);

/* Refuses a max_running whose launcher descriptors exceed the hard RLIMIT_NOFILE. */
int spd__cfg_check_fd_limit(struct loader *ld);

#endif
