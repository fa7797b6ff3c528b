/* The schema: which keys each mapping of the file may hold, as tables of
 * settings (top level, `defaults:` and each target's limits, history, store, log, tls,
 * auth, a target's own scalars); how a scalar is stored by its table entry; the
 * built-in defaults and how each target inherits them. */
#include "service/config/config_impl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/common/signame.h"

enum setting_type {
	SET_SIZE,		/* uint64_t, "512MiB" */
	SET_DURATION,		/* int64_t ms, "10s" */
	SET_U32,		/* uint32_t, plain integer */
	SET_U64,		/* uint64_t, plain integer */
	SET_BOOL,		/* bool, true | false */
	SET_SIGNAL,		/* int, spd_signal_parse() */
	SET_MODE,		/* unsigned, "0660" */
	SET_STRING,		/* char *, min = minimum length */
	SET_PATH,		/* char *, resolved against the config dir */
	SET_ENUM,		/* an enum (int-sized), one of the setting's `names` */
};

struct setting {
	const char *key;
	enum setting_type type;
	size_t offset, size;	/* of the field in the struct the table describes */
	uint64_t min, max;	/* numbers; strings: length */
	const struct name_value *names;	/* SET_ENUM */
};

/* SET_ENUM stores an int into the enum field. */
_Static_assert(sizeof(spd_start_method) == sizeof(int) &&
		       sizeof(spd_zygote_start) == sizeof(int) &&
		       sizeof(spd_log_format) == sizeof(int) &&
		       sizeof(spd_config_log_level) == sizeof(int) &&
		       sizeof(spd_store_sync) == sizeof(int),
	       "SET_ENUM fields are int-sized");

#define FIELD(type, member) offsetof(type, member), sizeof(((type *)0)->member)

static const struct name_value start_methods[] = {
	{"fork", SPD_START_FORK}, {"forkserver", SPD_START_FORKSERVER},
	{"spawn", SPD_START_SPAWN}, {NULL, 0},
};

static const struct name_value zygote_starts[] = {
	{"boot", SPD_ZYGOTE_BOOT}, {"first_use", SPD_ZYGOTE_FIRST_USE}, {NULL, 0},
};

static const struct name_value store_syncs[] = {
	{"normal", SPD_STORE_SYNC_NORMAL}, {"full", SPD_STORE_SYNC_FULL}, {NULL, 0},
};

static const struct name_value log_formats[] = {
	{"json", SPD_LOG_FORMAT_JSON}, {"text", SPD_LOG_FORMAT_TEXT}, {NULL, 0},
};

const struct name_value spd__cfg_log_levels[] = {
	{"error", SPD_CONFIG_LOG_ERROR}, {"warn", SPD_CONFIG_LOG_WARN},
	{"info", SPD_CONFIG_LOG_INFO}, {"debug", SPD_CONFIG_LOG_DEBUG}, {NULL, 0},
};

/* `defaults:` and each target's overrides; indexed by enum limit_index. */
static const struct setting limit_settings[LIMIT_COUNT] = {
	[LIMIT_START_METHOD] = {"start_method", SET_ENUM,
				FIELD(spd_target_limits, start_method), 0, 0, start_methods},
	[LIMIT_DESTROY_GRACE] = {"destroy_grace_period", SET_DURATION,
				 FIELD(spd_target_limits, destroy_grace_ms), 0, CONFIG_DURATION_MAX,
				 NULL},
	[LIMIT_STOP_SIGNAL] = {"stop_signal", SET_SIGNAL,
			       FIELD(spd_target_limits, stop_signal), 0, 0, NULL},
	[LIMIT_TIMEOUT] = {"timeout", SET_DURATION,
			   FIELD(spd_target_limits, timeout_ms), 0, CONFIG_DURATION_MAX, NULL},
	[LIMIT_MAX_CONCURRENT] = {"max_concurrent", SET_U32,
				  FIELD(spd_target_limits, max_concurrent), 0, 65536, NULL},
	[LIMIT_MAX_RESULT] = {"max_result_bytes", SET_SIZE,
			      FIELD(spd_target_limits, max_result_bytes), 0, CONFIG_MSG_MAX, NULL},
	[LIMIT_MAX_OUTPUT] = {"max_output_bytes", SET_SIZE,
			      FIELD(spd_target_limits, max_output_bytes), 0, CONFIG_MSG_MAX, NULL},
	[LIMIT_MEMORY] = {"memory_limit", SET_SIZE,
			  FIELD(spd_target_limits, memory_limit), 0, CONFIG_SIZE_MAX, NULL},
	[LIMIT_CPU_TIME] = {"cpu_time_limit", SET_DURATION,
			    FIELD(spd_target_limits, cpu_time_limit_ms), 0, CONFIG_DURATION_MAX,
			    NULL},
	[LIMIT_OPEN_FILES] = {"open_files_limit", SET_U64,
			      FIELD(spd_target_limits, open_files_limit), 0, 1 << 30, NULL},
	[LIMIT_ZYGOTE_START] = {"zygote_start", SET_ENUM,
				FIELD(spd_target_limits, zygote_start), 0, 0, zygote_starts},
	[LIMIT_ZYGOTE_WAIT] = {"zygote_wait", SET_DURATION,
			       FIELD(spd_target_limits, zygote_wait_ms), 0, CONFIG_DURATION_MAX,
			       NULL},
};

static const struct setting top_settings[] = {
	{"unix_socket_mode", SET_MODE, FIELD(spd_config, unix_socket_mode), 0, 0777, NULL},
	{"max_running", SET_U32, FIELD(spd_config, max_running), 1, 65536, NULL},
	{"max_pending", SET_U32, FIELD(spd_config, max_pending), 0, 1 << 20, NULL},
	{"max_idle", SET_U32, FIELD(spd_config, max_idle), 0, CONFIG_IDLE_MAX, NULL},
	{"max_request_bytes", SET_SIZE, FIELD(spd_config, max_request_bytes), 1, CONFIG_MSG_MAX,
	 NULL},
	{"shutdown_grace_period", SET_DURATION, FIELD(spd_config, shutdown_grace_ms), 0,
	 CONFIG_DURATION_MAX, NULL},
};

static const struct setting history_settings[] = {
	{"max_records", SET_U32, FIELD(spd_config, history_max_records), 0, 1 << 20, NULL},
	{"retention", SET_DURATION, FIELD(spd_config, history_retention_ms), 0,
	 CONFIG_DURATION_MAX, NULL},
};

/* store: {path: FILE, sync: normal | full} (SPEC §12 "Store"). */
static const struct setting store_settings[] = {
	{"path", SET_PATH, FIELD(spd_config, store_path), 0, 0, NULL},
	{"sync", SET_ENUM, FIELD(spd_config, store_sync), 0, 0, store_syncs},
};

static const struct setting log_settings[] = {
	{"format", SET_ENUM, FIELD(spd_config, log_format), 0, 0, log_formats},
	{"level", SET_ENUM, FIELD(spd_config, log_level), 0, 0, spd__cfg_log_levels},
};

static const struct setting tls_settings[] = {
	{"cert", SET_PATH, FIELD(spd_config, tls_cert), 0, 0, NULL},
	{"key", SET_PATH, FIELD(spd_config, tls_key), 0, 0, NULL},
	{"client_ca", SET_PATH, FIELD(spd_config, tls_client_ca), 0, 0, NULL},
};

static const struct setting auth_settings[] = {
	{"tokens_file", SET_PATH, FIELD(spd_config, auth_tokens_file), 0, 0, NULL},
	{"protect_health", SET_BOOL, FIELD(spd_config, auth_protect_health), 0, 0, NULL},
};

static const struct setting metrics_settings[] = {
	{"listen", SET_STRING, FIELD(spd_config, metrics_listen), 1, CONFIG_SCALAR_MAX, NULL},
};

/* A target's own scalar keys (function, exec, env and inherit_env are not scalars). */
static const struct setting target_settings[] = {
	{"description", SET_STRING, FIELD(spd_target_config, description), 0, CONFIG_SCALAR_MAX,
	 NULL},
	{"allow_args", SET_BOOL, FIELD(spd_target_config, allow_args), 0, 0, NULL},
	{"cwd", SET_PATH, FIELD(spd_target_config, cwd), 0, 0, NULL},
	{"umask", SET_MODE, FIELD(spd_target_config, umask), 0, 0777, NULL},
	{"user", SET_STRING, FIELD(spd_target_config, user), 1, 256, NULL},
	{"group", SET_STRING, FIELD(spd_target_config, group), 1, 256, NULL},
	{"prestart", SET_U32, FIELD(spd_target_config, prestart), 0, CONFIG_IDLE_MAX, NULL},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct setting *setting_find(const struct setting *table, size_t n,
					  const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(table[i].key, key) == 0)
			return &table[i];
	return NULL;
}

static int name_value_parse(struct loader *ld, const yaml_node_t *node, const char *path,
			     const char *s, size_t len, const struct name_value *names,
			     int *out)
{
	char show[CONFIG_SHOW_SIZE], list[128] = "";
	size_t o = 0;

	for (const struct name_value *nv = names; nv->name != NULL; nv++) {
		if (strcmp(s, nv->name) == 0) {
			*out = nv->value;
			return 0;
		}
		o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", o ? ", " : "", nv->name);
	}
	spd__cfg_escape(show, sizeof show, s, len, CONFIG_SHOW_MAX);
	return spd__cfg_fail(ld, node, path, "\"%s\" is not one of: %s", show, list);
}

static int number_error(struct loader *ld, const yaml_node_t *node, const char *path,
			const char *s, size_t len, enum num_status st, const char *what,
			const char *units)
{
	char show[CONFIG_SHOW_SIZE];

	spd__cfg_escape(show, sizeof show, s, len, CONFIG_SHOW_MAX);
	switch (st) {
	case NUM_NEGATIVE:
		return spd__cfg_fail(ld, node, path, "\"%s\" is negative", show);
	case NUM_NO_UNIT:
		return spd__cfg_fail(ld, node, path, "\"%s\" needs a unit (%s)", show, units);
	case NUM_TOO_LARGE:
		return spd__cfg_fail(ld, node, path, "\"%s\" is too large", show);
	default:
		if (units == NULL)
			return spd__cfg_fail(ld, node, path, "\"%s\" is not %s", show, what);
		return spd__cfg_fail(ld, node, path, "\"%s\" is not %s (units: %s)", show, what,
				   units);
	}
}

/* A number with optional units, checked against the setting's range. */
static int setting_number(struct loader *ld, const struct setting *st, const yaml_node_t *node,
			  const char *path, const char *s, size_t len, uint64_t *out)
{
	const struct unit *units = NULL;
	const char *what = "an integer", *unit_names = NULL;
	char show[CONFIG_SHOW_SIZE], bound[48];
	enum num_status ns;
	uint64_t v = 0;

	if (st->type == SET_SIZE) {
		units = spd__cfg_size_units;
		what = "a size";
		unit_names = "B, KiB, MiB, GiB";
	} else if (st->type == SET_DURATION) {
		units = spd__cfg_duration_units;
		what = "a duration";
		unit_names = "ms, s, m, h";
	}
	ns = spd__cfg_num_parse(s, units, UINT64_MAX, &v);
	if (ns != NUM_OK)
		return number_error(ld, node, path, s, len, ns, what, unit_names);
	if (v >= st->min && v <= st->max) {
		*out = v;
		return 0;
	}
	spd__cfg_escape(show, sizeof show, s, len, CONFIG_SHOW_MAX);
	spd__cfg_num_format(bound, sizeof bound, v < st->min ? st->min : st->max, units);
	if (v < st->min)
		return spd__cfg_fail(ld, node, path, "\"%s\" is too small (min %s)", show, bound);
	return spd__cfg_fail(ld, node, path, "\"%s\" is too large (max %s)", show, bound);
}

/* A value that is not what its setting wants: "\"VALUE\" WHY". */
static int bad_value(struct loader *ld, const yaml_node_t *node, const char *path,
		     const char *s, size_t len, const char *why)
{
	char show[CONFIG_SHOW_SIZE];

	spd__cfg_escape(show, sizeof show, s, len, CONFIG_SHOW_MAX);
	return spd__cfg_fail(ld, node, path, "\"%s\" %s", show, why);
}

/* A number of SIZE bytes (4: uint32_t, 8: uint64_t or int64_t) at FIELD. */
static void field_store_number(void *field, size_t size, uint64_t v)
{
	uint32_t v32 = (uint32_t)v;

	if (size == sizeof v32)
		memcpy(field, &v32, sizeof v32);
	else
		memcpy(field, &v, sizeof v);
}

/* Parses `node` as setting `st` into the struct at `base`. */
static int setting_store(struct loader *ld, const struct setting *st, const yaml_node_t *node,
			 const char *path, void *base)
{
	char *field = (char *)base + st->offset;
	const char *s;
	size_t len;
	uint64_t v;
	unsigned mode;
	int r, e = 0;

	if (st->type == SET_PATH || st->type == SET_STRING) {
		char *p = NULL;

		if (st->type == SET_PATH)
			r = spd__cfg_path(ld, node, path, &p);
		else
			r = spd__cfg_string(ld, node, path, (size_t)st->min, (size_t)st->max, &p);
		if (r == 0)
			*(char **)field = p;
		return r;
	}
	r = spd__cfg_scalar(ld, node, path,
			    st->type == SET_SIZE ? "a size"
			    : st->type == SET_DURATION ? "a duration"
			    : st->type == SET_U32 || st->type == SET_U64 ? "an integer"
			    : st->type == SET_BOOL ? "true or false" : "a string",
			    &s, &len);
	if (r < 0)
		return r;
	switch (st->type) {
	case SET_SIZE:
	case SET_U64:
	case SET_DURATION:
	case SET_U32:
		r = setting_number(ld, st, node, path, s, len, &v);
		if (r == 0)
			field_store_number(field, st->size, v);
		return r;
	case SET_MODE:
		if (!spd__cfg_mode_parse(s, len, (unsigned)st->max, &mode))
			return bad_value(ld, node, path, s, len,
					 "is not a file mode from \"0000\" to \"0777\"");
		*(unsigned *)field = mode;
		return 0;
	case SET_BOOL:
		if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0)
			return bad_value(ld, node, path, s, len, "is not true or false");
		*(bool *)field = s[0] == 't';
		return 0;
	case SET_SIGNAL:
		r = spd_signal_parse(s);
		if (r <= 0)
			return bad_value(ld, node, path, s, len, "is not a signal");
		*(int *)field = r;
		return 0;
	case SET_ENUM:
		r = name_value_parse(ld, node, path, s, len, st->names, &e);
		if (r == 0)
			memcpy(field, &e, sizeof e);
		return r;
	default:
		return spd__cfg_fail(ld, node, path, "internal error: bad setting type");
	}
}

/* A mapping whose keys all come from one table, stored into `base`. */
struct section {
	const struct setting *table;
	size_t count;
	void *base;
	yaml_node_t **set;	/* optional: the value node of each key given */
};

static int section_key(struct loader *ld, const struct pair *p, void *arg)
{
	struct section *sec = arg;
	const struct setting *st = setting_find(sec->table, sec->count, p->name);

	if (st == NULL)
		return UNKNOWN_KEY;
	if (sec->set != NULL)
		sec->set[st - sec->table] = p->value;
	return setting_store(ld, st, p->value, p->path, sec->base);
}

static int section_parse(struct loader *ld, const yaml_node_t *node, const char *path,
			 const struct setting *table, size_t count, void *base,
			 yaml_node_t **set)
{
	struct section sec = {table, count, base, set};

	return spd__cfg_each_pair(ld, node, path, SIZE_MAX, "duplicate key", section_key, &sec);
}

int spd__cfg_target_setting(struct loader *ld, const struct pair *p, spd_target_config *t,
			    struct target_seen *seen)
{
	const struct setting *st = setting_find(target_settings, COUNT(target_settings), p->name);

	if (strcmp(p->name, "prestart") == 0)
		seen->prestart = p->key;
	if (st != NULL)
		return setting_store(ld, st, p->value, p->path, t);
	st = setting_find(limit_settings, LIMIT_COUNT, p->name);
	if (st == NULL)
		return UNKNOWN_KEY;
	seen->limits_set[st - limit_settings] = p->value;
	return setting_store(ld, st, p->value, p->path, &t->limits);
}

/* ------------------------------------------------------------------------ */
/* The top level                                                            */
/* ------------------------------------------------------------------------ */

/* `listen: ADDRESS` or `listen: [ADDRESS, ...]` */
static int config_listen(struct loader *ld, const yaml_node_t *node, const char *path)
{
	spd_config *cfg = ld->cfg;
	int r;

	if (node->type == YAML_SEQUENCE_NODE)
		return spd__cfg_strv(ld, node, path, 1, CONFIG_LISTEN_MAX, spd__cfg_check_listen,
				     &cfg->listen, &cfg->listen_count);
	r = spd__cfg_expect(ld, node, path, YAML_SCALAR_NODE, "a string or a list of strings");
	if (r < 0)
		return r;
	cfg->listen = calloc(2, sizeof *cfg->listen);
	if (cfg->listen == NULL)
		return spd__cfg_errno(ld, -ENOMEM);
	r = spd__cfg_string(ld, node, path, 0, CONFIG_SCALAR_MAX, &cfg->listen[0]);
	if (r == 0)
		r = spd__cfg_check_listen(ld, node, path, 0, cfg->listen[0]);
	if (r == 0)
		cfg->listen_count = 1;
	return r;
}

/* A top-level section of path settings (tls, auth) in which the keys NEED
 * (NULL-terminated) must be given. */
static int section_parse_needing(struct loader *ld, const struct pair *p,
				 const struct setting *table, size_t count,
				 const char *const *need)
{
	int r = section_parse(ld, p->value, p->path, table, count, ld->cfg, NULL);

	for (; r == 0 && *need != NULL; need++) {
		const struct setting *st = setting_find(table, count, *need);

		if (*(char **)((char *)ld->cfg + st->offset) == NULL)
			r = spd__cfg_fail(ld, p->value, p->path, "missing %s", *need);
	}
	return r;
}

/* `metrics: {listen: "HOST:PORT"}`: a TCP address only (plain HTTP). */
static int config_metrics(struct loader *ld, const struct pair *p)
{
	yaml_node_t *set[COUNT(metrics_settings)] = {NULL};
	int r = section_parse(ld, p->value, p->path, metrics_settings, COUNT(metrics_settings),
			      ld->cfg, set);

	if (r < 0)
		return r;
	if (set[0] == NULL)
		return spd__cfg_fail(ld, p->value, p->path, "missing listen");
	return spd__cfg_check_metrics_listen(ld, set[0], "metrics.listen", ld->cfg->metrics_listen);
}

int spd__cfg_top_key(struct loader *ld, const struct pair *p, void *arg)
{
	spd_config *cfg = ld->cfg;
	const struct setting *st;

	(void)arg;
	if (strcmp(p->name, "listen") == 0)
		return config_listen(ld, p->value, p->path);
	if (strcmp(p->name, "tls") == 0) {
		static const char *const need[] = {"cert", "key", NULL};

		return section_parse_needing(ld, p, tls_settings, COUNT(tls_settings), need);
	}
	if (strcmp(p->name, "auth") == 0) {
		static const char *const need[] = {"tokens_file", NULL};

		return section_parse_needing(ld, p, auth_settings, COUNT(auth_settings), need);
	}
	if (strcmp(p->name, "metrics") == 0)
		return config_metrics(ld, p);
	if (strcmp(p->name, "store") == 0) {
		static const char *const need[] = {"path", NULL};

		return section_parse_needing(ld, p, store_settings, COUNT(store_settings), need);
	}
	if (strcmp(p->name, "history") == 0)
		return section_parse(ld, p->value, p->path, history_settings,
				     COUNT(history_settings), cfg, NULL);
	if (strcmp(p->name, "log") == 0)
		return section_parse(ld, p->value, p->path, log_settings, COUNT(log_settings),
				     cfg, NULL);
	if (strcmp(p->name, "defaults") == 0)
		return section_parse(ld, p->value, p->path, limit_settings, LIMIT_COUNT,
				     &cfg->defaults, ld->defaults_set);
	if (strcmp(p->name, "targets") == 0)
		return spd__cfg_targets(ld, p->value, p->path);
	if (strcmp(p->name, "max_running") == 0)
		ld->max_running = p->value;
	st = setting_find(top_settings, COUNT(top_settings), p->name);
	if (st != NULL)
		return setting_store(ld, st, p->value, p->path, cfg);
	return UNKNOWN_KEY;
}

void spd__cfg_set_defaults(spd_config *cfg)
{
	cfg->unix_socket_mode = 0660;
	cfg->max_running = 64;
	cfg->max_pending = 1024;
	cfg->max_idle = 64;
	cfg->max_request_bytes = 4ULL << 20;
	cfg->history_max_records = 10000;
	cfg->history_retention_ms = 3600 * 1000;
	cfg->shutdown_grace_ms = 30 * 1000;
	cfg->log_format = SPD_LOG_FORMAT_JSON;
	cfg->log_level = SPD_CONFIG_LOG_INFO;
	cfg->defaults = (spd_target_limits){
		.start_method = SPD_START_FORK,
		.destroy_grace_ms = 10 * 1000,
		.stop_signal = SIGTERM,
		.timeout_ms = 0,
		.max_concurrent = 0,
		.max_result_bytes = 1ULL << 20,
		.max_output_bytes = 1ULL << 20,
		.memory_limit = 0,
		.cpu_time_limit_ms = 0,
		.open_files_limit = 1024,
		.zygote_start = SPD_ZYGOTE_FIRST_USE,
		.zygote_wait_ms = 10 * 1000,
	};
}

/* Empty env and inherit_env arrays for targets that had none. */
static int strv_empty(char ***v)
{
	if (*v == NULL)
		*v = calloc(1, sizeof **v);
	return *v == NULL ? -ENOMEM : 0;
}

int spd__cfg_finish(struct loader *ld)
{
	spd_config *cfg = ld->cfg;

	if (cfg->listen == NULL) {
		cfg->listen = calloc(2, sizeof *cfg->listen);
		if (cfg->listen == NULL || (cfg->listen[0] = strdup("127.0.0.1:50051")) == NULL)
			return spd__cfg_errno(ld, -ENOMEM);
		cfg->listen_count = 1;
	}
	for (size_t i = 0; i < cfg->target_count; i++) {
		spd_target_config *t = &cfg->targets[i];

		for (size_t k = 0; k < LIMIT_COUNT; k++) {
			const struct setting *st = &limit_settings[k];

			if (ld->seen[i].limits_set[k] == NULL)
				memcpy((char *)&t->limits + st->offset,
				       (const char *)&cfg->defaults + st->offset, st->size);
		}
		/* Exec targets ignore an inherited start method (an explicit one other
		 * than spawn was refused by target_parse). */
		if (t->kind == SPD_TARGET_EXEC)
			t->limits.start_method = SPD_START_SPAWN;
		/* Only now are the start method and the limits known (they may be
		 * inherited). */
		if (ld->seen[i].prestart != NULL) {
			char tpath[CONFIG_KEY_MAX], child[CONFIG_KEY_MAX];
			uint64_t nofile = t->limits.open_files_limit;

			spd__cfg_key_child(tpath, sizeof tpath, "targets", t->name, strlen(t->name));
			spd__cfg_key_child(child, sizeof child, tpath, "prestart", strlen("prestart"));
			if (t->limits.start_method == SPD_START_SPAWN)
				return spd__cfg_fail(ld, ld->seen[i].prestart, child,
						     t->kind == SPD_TARGET_EXEC
							     ? "only for function targets (exec targets "
							       "always start fresh)"
							     : "only with start_method fork or forkserver (a "
							       "spawn target starts fresh)");
			/* A waiting child holds stdio, its channel and its request
			 * pipe (fd 4), under its own limits. */
			if (t->prestart > 0 && nofile != 0 && nofile < 5)
				return spd__cfg_fail(ld, ld->seen[i].prestart, child,
						     "a pre-started child needs open_files_limit 5 or "
						     "more (it is %llu)",
						     (unsigned long long)nofile);
		}
		if (t->description == NULL && (t->description = strdup("")) == NULL)
			return spd__cfg_errno(ld, -ENOMEM);
		if (strv_empty(&t->env) < 0 || strv_empty(&t->inherit_env) < 0)
			return spd__cfg_errno(ld, -ENOMEM);
	}
	return 0;
}
