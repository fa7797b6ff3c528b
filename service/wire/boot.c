#include "service/wire/boot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "service/common/strv.h"
#include "service/wire/target.h"

#define MAX_COUNT 1000000u

/* Optional strings carry a presence flag: NULL and "" stay apart. */
static void put_opt(spd_wbuf *b, const char *s)
{
	spd_wbuf_u32(b, s != NULL);
	spd_wbuf_str(b, s);
}

static char *get_opt(spd_wreader *r)
{
	uint32_t present = spd_wreader_u32(r);
	size_t n;
	const char *p = spd_wreader_bytes(r, &n);
	char *s;

	if (r->err != 0 || !present)
		return NULL;
	s = strndup(p, n);
	if (s == NULL)
		r->err = -ENOMEM;
	return s;
}

/* The value of NAME in ENVP ("NAME=value"), or NULL. */
static const char *env_find(char *const *envp, const char *name)
{
	size_t len = strlen(name);

	for (char *const *e = envp; e != NULL && *e != NULL; e++)
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
			return *e;
	return NULL;
}

/* env, then each inherit_env variable present in ENVP: what the launcher's
 * targets.c built from its own environment before it had none. */
static void put_env(spd_wbuf *b, const spd_target_config *t, char *const *envp)
{
	size_t n = t->env_count;

	for (size_t i = 0; i < t->inherit_env_count; i++)
		n += env_find(envp, t->inherit_env[i]) != NULL;
	spd_wbuf_u32(b, (uint32_t)n);
	for (size_t i = 0; i < t->env_count; i++)
		spd_wbuf_str(b, t->env[i]);
	for (size_t i = 0; i < t->inherit_env_count; i++) {
		const char *e = env_find(envp, t->inherit_env[i]);
		if (e != NULL)
			spd_wbuf_str(b, e);
	}
}

int spd_launcher_boot_encode(const spd_config *cfg, const uint32_t *ids, pid_t front,
			     const char *worker, const char *memory_mechanism, char *const *envp,
			     spd_wbuf *out)
{
	spd_wbuf_u32(out, (uint32_t)front);
	put_opt(out, worker);
	put_opt(out, memory_mechanism);
	put_opt(out, cfg->path);
	put_opt(out, cfg->dir);
	spd_wbuf_u32(out, cfg->max_running);
	spd_wbuf_u32(out, cfg->max_idle);
	spd_wbuf_u32(out, (uint32_t)cfg->log_format);
	spd_wbuf_u32(out, (uint32_t)cfg->log_level);
	spd_wire_limits_encode(&cfg->defaults, out);
	spd_wbuf_u32(out, (uint32_t)cfg->target_count);
	for (size_t i = 0; i < cfg->target_count; i++) {
		const spd_target_config *t = &cfg->targets[i];

		spd_wbuf_u32(out, ids != NULL ? ids[i] : (uint32_t)(i + 1));
		spd_wbuf_str(out, t->name);
		put_opt(out, t->description);
		spd_wbuf_u32(out, (uint32_t)t->kind);
		put_opt(out, t->builtin);
		put_opt(out, t->library);
		put_opt(out, t->symbol);
		spd_wbuf_strv(out, t->exec_argv, t->exec_argc);
		spd_wbuf_u32(out, t->allow_args);
		spd_wbuf_u32(out, t->umask);
		put_env(out, t, envp);
		put_opt(out, t->cwd);
		put_opt(out, t->user);
		put_opt(out, t->group);
		spd_wire_limits_encode(&t->limits, out);
		spd_wbuf_u32(out, t->prestart);
		spd_wbuf_u32(out, (uint32_t)t->line);
		spd_wbuf_u32(out, (uint32_t)t->column);
	}
	return out->err;
}

static void config_free(spd_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; cfg->targets != NULL && i < cfg->target_count; i++)
		spd_target_config_release(&cfg->targets[i]);
	free(cfg->targets);
	free(cfg->path);
	free(cfg->dir);
	free(cfg);
}

int spd_launcher_boot_decode(const void *data, size_t len, spd_launcher_boot *b)
{
	spd_wreader r;
	spd_config *cfg;
	uint32_t count;

	memset(b, 0, sizeof *b);
	cfg = calloc(1, sizeof *cfg);
	if (cfg == NULL)
		return -ENOMEM;
	b->cfg = cfg;
	spd_wreader_init(&r, data, len);
	b->front = (pid_t)spd_wreader_u32(&r);
	b->worker = get_opt(&r);
	b->memory_mechanism = get_opt(&r);
	cfg->path = get_opt(&r);
	cfg->dir = get_opt(&r);
	cfg->max_running = spd_wreader_u32(&r);
	cfg->max_idle = spd_wreader_u32(&r);
	cfg->log_format = (spd_log_format)spd_wreader_u32(&r);
	cfg->log_level = (spd_config_log_level)spd_wreader_u32(&r);
	spd_wire_limits_decode(&r, &cfg->defaults);
	count = spd_wreader_u32(&r);
	/* A target takes far more than 4 bytes: the body bounds the count. */
	if (r.err == 0 && (count > MAX_COUNT || count > r.left / 4))
		r.err = -EBADMSG;
	if (r.err == 0) {
		cfg->targets = calloc(count ? count : 1, sizeof *cfg->targets);
		b->ids = calloc(count ? count : 1, sizeof *b->ids);
		if (cfg->targets == NULL || b->ids == NULL)
			r.err = -ENOMEM;
		else
			cfg->target_count = count;
	}
	for (size_t i = 0; r.err == 0 && i < cfg->target_count; i++) {
		spd_target_config *t = &cfg->targets[i];

		b->ids[i] = spd_wreader_u32(&r);
		t->name = spd_wreader_strdup(&r);
		t->description = get_opt(&r);
		t->kind = (spd_target_kind)spd_wreader_u32(&r);
		t->builtin = get_opt(&r);
		t->library = get_opt(&r);
		t->symbol = get_opt(&r);
		t->exec_argv = spd_wreader_strv(&r, MAX_COUNT, &t->exec_argc);
		t->allow_args = spd_wreader_u32(&r) != 0;
		t->umask = spd_wreader_u32(&r) & 0777;
		t->env = spd_wreader_strv(&r, MAX_COUNT, &t->env_count);
		t->inherit_env = calloc(1, sizeof *t->inherit_env);
		if (t->inherit_env == NULL && r.err == 0)
			r.err = -ENOMEM;
		t->cwd = get_opt(&r);
		t->user = get_opt(&r);
		t->group = get_opt(&r);
		spd_wire_limits_decode(&r, &t->limits);
		t->prestart = spd_wreader_u32(&r);
		t->line = (int)spd_wreader_u32(&r);
		t->column = (int)spd_wreader_u32(&r);
		if (r.err == 0 && t->name == NULL)
			r.err = -ENOMEM;
	}
	if (spd_wreader_end(&r) != 0) {
		int err = r.err;
		spd_launcher_boot_release(b);
		return err;
	}
	return 0;
}

void spd_launcher_boot_release(spd_launcher_boot *b)
{
	free(b->worker);
	free(b->memory_mechanism);
	free(b->ids);
	config_free(b->cfg);
	memset(b, 0, sizeof *b);
}
