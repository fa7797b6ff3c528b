#include "service/launcher/targets.h"

#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/target/builtins.h"

extern char **environ;

static char *dupf(const char *fmt, const char *a, const char *b)
{
	char buf[1024];

	snprintf(buf, sizeof buf, fmt, a, b);
	return strdup(buf);
}

/* env entries, then each inherited variable present in our environment now. */
static char **build_envp(const spd_target_config *tc)
{
	size_t n = 0;
	char **envp = calloc(tc->env_count + tc->inherit_env_count + 1, sizeof *envp);

	if (envp == NULL)
		return NULL;
	for (size_t i = 0; i < tc->env_count; i++)
		envp[n++] = tc->env[i];
	for (size_t i = 0; i < tc->inherit_env_count; i++) {
		const char *name = tc->inherit_env[i];
		size_t len = strlen(name);
		for (char **e = environ; e != NULL && *e != NULL; e++) {
			if (strncmp(*e, name, len) == 0 && (*e)[len] == '=') {
				envp[n++] = *e;
				break;
			}
		}
	}
	return envp;
}

static void resolve_ids(spd_prepared_target *p)
{
	const spd_target_config *tc = p->cfg;

	if (tc->user != NULL) {
		struct passwd *pw = getpwnam(tc->user);
		if (pw == NULL) {
			p->error = dupf("user %s: no such user%s", tc->user, "");
			return;
		}
		p->set_uid = p->set_gid = true;
		p->uid = pw->pw_uid;
		p->gid = pw->pw_gid;
		{
			int n = 64;
			char *name = strdup(tc->user);
			for (int tries = 0; name != NULL && tries < 4; tries++) {
				gid_t *g = realloc(p->groups, (size_t)n * sizeof *g);
				int want = n;
				if (g == NULL)
					break;
				p->groups = g;
				if (getgrouplist(name, pw->pw_gid, g, &want) >= 0) {
					p->ngroups = want;
					break;
				}
				n = want > n ? want : n * 2;
			}
			free(name);
		}
	}
	if (tc->group != NULL) {
		struct group *gr = getgrnam(tc->group);
		if (gr == NULL) {
			p->error = dupf("group %s: no such group%s", tc->group, "");
			return;
		}
		p->set_gid = true;
		p->gid = gr->gr_gid;
	}
}

static void resolve_fn(spd_prepared_target *p)
{
	const spd_target_config *tc = p->cfg;
	void *sym;

	if (tc->builtin != NULL) {
		p->fn = spd_builtin_find(tc->builtin);
		if (p->fn == NULL)
			p->error = dupf("builtin:%s: no such builtin%s", tc->builtin, "");
		return;
	}
	p->dl = dlopen(tc->library, RTLD_NOW | RTLD_LOCAL);
	if (p->dl == NULL) {
		p->error = dupf("dlopen: %s%s", dlerror(), "");
		return;
	}
	dlerror();
	sym = dlsym(p->dl, tc->symbol);
	if (sym == NULL) {
		p->error = dupf("dlsym %s: %s", tc->symbol, "symbol not found");
		return;
	}
	/* POSIX dlsym() returns data pointers; converting to a function pointer
	 * is what dlsym is for. */
	memcpy(&p->fn, &sym, sizeof p->fn);
}

int spd_target_prepare(const spd_target_config *tc, spd_prepared_target *p)
{
	memset(p, 0, sizeof *p);
	p->cfg = tc;
	p->envp = build_envp(p->cfg);
	if (p->envp == NULL)
		return -ENOMEM;
	resolve_ids(p);
	if (p->error == NULL && p->cfg->kind == SPD_TARGET_FUNCTION)
		resolve_fn(p);
	return 0;
}

void spd_target_release(spd_prepared_target *p)
{
	free(p->error);
	free(p->envp);
	free(p->groups);
	if (p->dl != NULL)
		dlclose(p->dl);
	memset(p, 0, sizeof *p);
}

int spd_targets_prepare(const spd_config *cfg, spd_prepared_target **out)
{
	spd_prepared_target *t = calloc(cfg->target_count ? cfg->target_count : 1, sizeof *t);

	if (t == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->target_count; i++) {
		if (spd_target_prepare(&cfg->targets[i], &t[i]) < 0) {
			spd_targets_release(t, i);
			return -ENOMEM;
		}
	}
	*out = t;
	return 0;
}

const spd_prepared_target *spd_targets_find(const spd_prepared_target *t, size_t n,
					    const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].cfg->name, name) == 0)
			return &t[i];
	return NULL;
}

void spd_targets_release(spd_prepared_target *t, size_t n)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		spd_target_release(&t[i]);
	free(t);
}
