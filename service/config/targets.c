/* One entry of `targets:`: its name, what it runs (function: or exec:), its
 * environment (env:, inherit_env:), and its scalar keys via the schema's tables.
 * Cross-field checks are validate.c's; inheritance of `defaults:` is schema.c's. */
#include "service/config/config_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Target and builtin names: 1..256 bytes of [A-Za-z0-9._-] (health service names). */
static bool name_valid(const char *s, size_t len)
{
	if (len == 0 || len > CONFIG_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Environment variable names: non-empty, no '=' (and no NUL: checked before). */
static bool env_name_valid(const char *s, size_t len)
{
	return len > 0 && memchr(s, '=', len) == NULL;
}

struct function_arg {
	spd_target_config *t;
};

static int function_key(struct loader *ld, const struct pair *p, void *arg)
{
	spd_target_config *t = ((struct function_arg *)arg)->t;

	if (strcmp(p->name, "library") == 0)
		return spd__cfg_path(ld, p->value, p->path, &t->library);
	if (strcmp(p->name, "symbol") == 0)
		return spd__cfg_string(ld, p->value, p->path, 1, CONFIG_SYMBOL_MAX, &t->symbol);
	return UNKNOWN_KEY;
}

/* `function: builtin:NAME` or `function: {library: PATH, symbol: NAME}`. */
static int target_function(struct loader *ld, const yaml_node_t *node, const char *path,
			   spd_target_config *t)
{
	static const char prefix[] = "builtin:";
	struct function_arg fa = {t};
	char show[CONFIG_SHOW_SIZE];
	const char *s;
	size_t len;
	int r;

	if (node->type == YAML_MAPPING_NODE) {
		r = spd__cfg_each_pair(ld, node, path, SIZE_MAX, "duplicate key", function_key,
				       &fa);
		if (r < 0)
			return r;
		if (t->library == NULL)
			return spd__cfg_fail(ld, node, path, "missing library");
		if (t->symbol == NULL)
			return spd__cfg_fail(ld, node, path, "missing symbol");
		t->kind = SPD_TARGET_FUNCTION;
		return 0;
	}
	r = spd__cfg_scalar(ld, node, path, "\"builtin:NAME\" or {library, symbol}", &s, &len);
	if (r < 0)
		return r;
	spd__cfg_escape(show, sizeof show, s, len, CONFIG_SHOW_MAX);
	if (len < sizeof prefix - 1 || memcmp(s, prefix, sizeof prefix - 1) != 0)
		return spd__cfg_fail(ld, node, path,
				     "\"%s\" is neither \"builtin:NAME\" nor {library, symbol}",
				     show);
	if (!name_valid(s + sizeof prefix - 1, len - (sizeof prefix - 1)))
		return spd__cfg_fail(ld, node, path, "\"%s\" has a bad builtin name", show);
	t->builtin = spd__cfg_strndup(s + sizeof prefix - 1, len - (sizeof prefix - 1));
	if (t->builtin == NULL)
		return spd__cfg_errno(ld, -ENOMEM);
	t->kind = SPD_TARGET_FUNCTION;
	return 0;
}

static int exec_check(struct loader *ld, const yaml_node_t *item, const char *path, size_t i,
		      const char *s)
{
	if (i == 0 && s[0] == '\0')
		return spd__cfg_fail(ld, item, path, "must not be empty");
	if (i == 0 && s[0] != '/')
		return spd__cfg_fail(ld, item, path, "must be an absolute path");
	return 0;
}

/* `exec: [ABSOLUTE_PATH, ARG...]` */
static int target_exec(struct loader *ld, const yaml_node_t *node, const char *path,
		       spd_target_config *t)
{
	int r = spd__cfg_strv(ld, node, path, 1, CONFIG_ARGV_MAX, exec_check, &t->exec_argv,
			      &t->exec_argc);

	if (r == 0)
		t->kind = SPD_TARGET_EXEC;
	return r;
}

static int env_key(struct loader *ld, const struct pair *p, void *arg)
{
	spd_target_config *t = arg;
	const char *v;
	size_t vlen;
	char *kv;
	int r;

	if (!env_name_valid(p->name, p->len))
		return spd__cfg_fail(ld, p->key, p->path, "bad variable name");
	r = spd__cfg_scalar(ld, p->value, p->path, "a string", &v, &vlen);
	if (r < 0)
		return r;
	kv = malloc(p->len + vlen + 2);
	if (kv == NULL)
		return spd__cfg_errno(ld, -ENOMEM);
	memcpy(kv, p->name, p->len);
	kv[p->len] = '=';
	memcpy(kv + p->len + 1, v, vlen);
	kv[p->len + 1 + vlen] = '\0';
	t->env[t->env_count++] = kv;
	return 0;
}

/* `env: {NAME: VALUE, ...}`, stored as "NAME=VALUE". */
static int target_env(struct loader *ld, const yaml_node_t *node, const char *path,
		      spd_target_config *t)
{
	size_t n;
	int r = spd__cfg_mapping(ld, node, path, CONFIG_ENV_MAX, "entries", &n);

	if (r < 0)
		return r;
	t->env = calloc(n + 1, sizeof *t->env);
	if (t->env == NULL)
		return spd__cfg_errno(ld, -ENOMEM);
	return spd__cfg_each_pair(ld, node, path, CONFIG_ENV_MAX, "duplicate key", env_key, t);
}

static int inherit_env_check(struct loader *ld, const yaml_node_t *item, const char *path,
			     size_t i, const char *s)
{
	(void)i;
	if (s[0] == '\0')
		return spd__cfg_fail(ld, item, path, "must not be empty");
	if (!env_name_valid(s, strlen(s)))
		return spd__cfg_fail(ld, item, path, "bad variable name");
	return 0;
}

/* `inherit_env: [NAME, ...]` */
static int target_inherit_env(struct loader *ld, const yaml_node_t *node, const char *path,
			      spd_target_config *t)
{
	return spd__cfg_strv(ld, node, path, 0, CONFIG_ENV_MAX, inherit_env_check,
			     &t->inherit_env, &t->inherit_env_count);
}

struct target_arg {
	spd_target_config *t;
	struct target_seen *seen;
	yaml_node_t *kind_key;		/* the function: or exec: key */
	yaml_node_t *allow_args_key;
};

static int target_key(struct loader *ld, const struct pair *p, void *arg)
{
	struct target_arg *ta = arg;
	spd_target_config *t = ta->t;

	if (strcmp(p->name, "function") == 0 || strcmp(p->name, "exec") == 0) {
		if (ta->kind_key != NULL)
			return spd__cfg_fail(ld, p->key, p->parent, "has both function and exec");
		ta->kind_key = p->key;
		if (p->name[0] == 'f')
			return target_function(ld, p->value, p->path, t);
		return target_exec(ld, p->value, p->path, t);
	}
	if (strcmp(p->name, "env") == 0)
		return target_env(ld, p->value, p->path, t);
	if (strcmp(p->name, "inherit_env") == 0)
		return target_inherit_env(ld, p->value, p->path, t);
	if (strcmp(p->name, "allow_args") == 0)
		ta->allow_args_key = p->key;
	return spd__cfg_target_setting(ld, p, t, ta->seen);
}

/* One `NAME: {...}` of `targets:`. Its limits are merged with `defaults:` later. */
static int target_parse(struct loader *ld, const struct pair *p, spd_target_config *t,
			struct target_seen *seen)
{
	struct target_arg ta = {t, seen, NULL, NULL};
	int r;

	if (!name_valid(p->name, p->len))
		return spd__cfg_fail(ld, p->key, p->path,
				   "bad target name (1 to %d of A-Z a-z 0-9 . _ -)",
				   CONFIG_NAME_MAX);
	t->umask = 022;
	t->name = spd__cfg_strndup(p->name, p->len);
	if (t->name == NULL)
		return spd__cfg_errno(ld, -ENOMEM);
	t->line = (int)p->key->start_mark.line + 1;
	t->column = (int)p->key->start_mark.column + 1;
	r = spd__cfg_each_pair(ld, p->value, p->path, SIZE_MAX, "duplicate key", target_key, &ta);
	if (r < 0)
		return r;
	return spd__cfg_check_target(ld, p, t, seen, ta.kind_key, ta.allow_args_key);
}

static int targets_key(struct loader *ld, const struct pair *p, void *arg)
{
	spd_config *cfg = ld->cfg;
	size_t i = cfg->target_count++;

	(void)arg;
	return target_parse(ld, p, &cfg->targets[i], &ld->seen[i]);
}

int spd__cfg_targets(struct loader *ld, const yaml_node_t *node, const char *path)
{
	spd_config *cfg = ld->cfg;
	size_t n;
	int r = spd__cfg_mapping(ld, node, path, CONFIG_TARGETS_MAX, "targets", &n);

	if (r < 0)
		return r;
	cfg->targets = calloc(n ? n : 1, sizeof *cfg->targets);
	ld->seen = calloc(n ? n : 1, sizeof *ld->seen);
	if (cfg->targets == NULL || ld->seen == NULL)
		return spd__cfg_errno(ld, -ENOMEM);
	return spd__cfg_each_pair(ld, node, path, CONFIG_TARGETS_MAX, "duplicate target",
				targets_key, NULL);
}
