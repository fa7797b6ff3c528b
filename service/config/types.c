/* What the config's types need without the loader (the :types library). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "service/common/strv.h"
#include "service/config/config.h"

void spd_target_config_release(spd_target_config *t)
{
	free(t->name);
	free(t->description);
	free(t->builtin);
	free(t->library);
	free(t->symbol);
	spd_strv_free(t->exec_argv);
	spd_strv_free(t->env);
	spd_strv_free(t->inherit_env);
	free(t->cwd);
	free(t->user);
	free(t->group);
}

static int dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (src == NULL)
		return 0;
	*dst = strdup(src);
	return *dst != NULL ? 0 : -ENOMEM;
}

static int dup_strv(char ***dst, char *const *src, size_t n)
{
	*dst = NULL;
	if (src == NULL)
		return 0;
	*dst = spd_strv_dup((const char *const *)src, n);
	return *dst != NULL ? 0 : -ENOMEM;
}

int spd_target_config_copy(spd_target_config *dst, const spd_target_config *src)
{
	int rc = 0;

	*dst = *src;
	rc |= dup_opt(&dst->name, src->name);
	rc |= dup_opt(&dst->description, src->description);
	rc |= dup_opt(&dst->builtin, src->builtin);
	rc |= dup_opt(&dst->library, src->library);
	rc |= dup_opt(&dst->symbol, src->symbol);
	rc |= dup_strv(&dst->exec_argv, src->exec_argv, src->exec_argc);
	rc |= dup_strv(&dst->env, src->env, src->env_count);
	rc |= dup_strv(&dst->inherit_env, src->inherit_env, src->inherit_env_count);
	rc |= dup_opt(&dst->cwd, src->cwd);
	rc |= dup_opt(&dst->user, src->user);
	rc |= dup_opt(&dst->group, src->group);
	if (rc != 0) {
		spd_target_config_release(dst);
		memset(dst, 0, sizeof *dst);
		return -ENOMEM;
	}
	return 0;
}

static bool str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool strv_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!str_eq(a[i], b[i]))
			return false;
	return true;
}

static bool limits_eq(const spd_target_limits *a, const spd_target_limits *b)
{
	return a->start_method == b->start_method && a->destroy_grace_ms == b->destroy_grace_ms &&
	       a->stop_signal == b->stop_signal && a->timeout_ms == b->timeout_ms &&
	       a->max_concurrent == b->max_concurrent && a->max_result_bytes == b->max_result_bytes &&
	       a->max_output_bytes == b->max_output_bytes && a->memory_limit == b->memory_limit &&
	       a->cpu_time_limit_ms == b->cpu_time_limit_ms &&
	       a->open_files_limit == b->open_files_limit && a->zygote_start == b->zygote_start &&
	       a->zygote_wait_ms == b->zygote_wait_ms;
}

bool spd_target_config_equal(const spd_target_config *a, const spd_target_config *b)
{
	return str_eq(a->name, b->name) && str_eq(a->description, b->description) &&
	       a->kind == b->kind && str_eq(a->builtin, b->builtin) &&
	       str_eq(a->library, b->library) && str_eq(a->symbol, b->symbol) &&
	       strv_eq(a->exec_argv, a->exec_argc, b->exec_argv, b->exec_argc) &&
	       a->allow_args == b->allow_args && a->umask == b->umask &&
	       strv_eq(a->env, a->env_count, b->env, b->env_count) &&
	       strv_eq(a->inherit_env, a->inherit_env_count, b->inherit_env,
		       b->inherit_env_count) &&
	       str_eq(a->cwd, b->cwd) && str_eq(a->user, b->user) && str_eq(a->group, b->group) &&
	       a->prestart == b->prestart && limits_eq(&a->limits, &b->limits);
}
