/* Environment overrides (SPEC §5): SPAWND_LISTEN replaces `listen`,
 * SPAWND_LOG_LEVEL replaces `log.level`. */
#include "service/config/config_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "service/common/address.h"
#include "service/common/strv.h"

/* Splits SPAWND_LISTEN into a new NULL-terminated vector; items are trimmed. */
static int env_listen_parse(const char *s, char ***out, size_t *count,
			    char err[SPD_CONFIG_ERR_MAX])
{
	size_t n = 1, i = 0;
	char **v = NULL;
	int r = 0;

	for (const char *p = s; *p; p++)
		n += *p == ',';
	if (n > CONFIG_LISTEN_MAX) {
		spd__cfg_printf(err, SPD_CONFIG_ERR_MAX, "SPAWND_LISTEN: too many items (max %d)",
			 CONFIG_LISTEN_MAX);
		r = -EINVAL;
		goto out;
	}
	v = calloc(n + 1, sizeof *v);
	if (v == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (const char *p = s;; i++) {
		const char *end = strchr(p, ',');
		const char *next = end != NULL ? end + 1 : NULL;

		if (end == NULL)
			end = p + strlen(p);
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end == p || (size_t)(end - p) > CONFIG_SCALAR_MAX) {
			spd__cfg_printf(err, SPD_CONFIG_ERR_MAX, "SPAWND_LISTEN: item %zu is %s", i + 1,
				 end == p ? "empty" : "too long");
			r = -EINVAL;
			goto out;
		}
		v[i] = spd__cfg_strndup(p, (size_t)(end - p));
		if (v[i] == NULL) {
			r = -ENOMEM;
			goto out;
		}
		{
			char why[SPD_CONFIG_ERR_MAX - 64];
			spd_address a;
			if (spd_address_parse(v[i], &a, why, sizeof why) < 0) {
				spd__cfg_printf(err, SPD_CONFIG_ERR_MAX, "SPAWND_LISTEN: item %zu: %s", i + 1,
					   why);
				r = -EINVAL;
				goto out;
			}
		}
		if (next == NULL)
			break;
		p = next;
	}
	*out = v;
	*count = n;
	v = NULL;
out:
	if (r == -ENOMEM)
		spd__cfg_printf(err, SPD_CONFIG_ERR_MAX, "SPAWND_LISTEN: out of memory");
	spd_strv_free(v);
	return r;
}

int spd_config_apply_env(spd_config *cfg, char err[SPD_CONFIG_ERR_MAX])
{
	char scratch[SPD_CONFIG_ERR_MAX], show[CONFIG_SHOW_SIZE];
	const char *listen = getenv("SPAWND_LISTEN");
	const char *level = getenv("SPAWND_LOG_LEVEL");
	char **v = NULL;
	size_t n = 0;
	int lvl = -1, r = 0;

	if (err == NULL)
		err = scratch;
	err[0] = '\0';
	if (cfg == NULL)
		return -EINVAL;
	if (level != NULL) {
		for (const struct name_value *nv = spd__cfg_log_levels; nv->name != NULL; nv++)
			if (strcmp(level, nv->name) == 0)
				lvl = nv->value;
		if (lvl < 0) {
			spd__cfg_escape(show, sizeof show, level, strlen(level), CONFIG_SHOW_MAX);
			spd__cfg_printf(err, SPD_CONFIG_ERR_MAX,
				 "SPAWND_LOG_LEVEL: \"%s\" is not one of: error, warn, info, debug",
				 show);
			return -EINVAL;
		}
	}
	if (listen != NULL) {
		r = env_listen_parse(listen, &v, &n, err);
		if (r < 0)
			return r;
		spd_strv_free(cfg->listen);
		cfg->listen = v;
		cfg->listen_count = n;
	}
	if (lvl >= 0)
		cfg->log_level = (spd_config_log_level)lvl;
	return 0;
}
