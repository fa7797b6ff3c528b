/* The config loader's public entry points (config.h): load a file or a string,
 * free, find a target. The file split is described in config_impl.h. */
#include "service/config/config_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/common/strv.h"

/*
 * The loader proper. `name` names the text in messages; `dir` is absolute.
 * On failure nothing is left allocated and *out is NULL.
 */
static int config_load(const char *text, size_t len, const char *name, const char *dir,
		       spd_config **out, char *err)
{
	struct loader ld = {.dir = dir, .err = err, .budget = CONFIG_BUDGET};
	yaml_node_t *root;
	spd_config *cfg = NULL;
	int r;

	spd__cfg_escape(ld.name, sizeof ld.name, name, strlen(name), 200);
	cfg = calloc(1, sizeof *cfg);
	if (cfg == NULL || (cfg->path = strdup(name)) == NULL || (cfg->dir = strdup(dir)) == NULL) {
		r = spd__cfg_errno(&ld, -ENOMEM);
		goto out;
	}
	ld.cfg = cfg;
	spd__cfg_set_defaults(cfg);
	if (len > CONFIG_FILE_MAX) {
		spd__cfg_printf(err, SPD_CONFIG_ERR_MAX, "%s: too large (max %u bytes)", ld.name,
			 CONFIG_FILE_MAX);
		r = -EFBIG;
		goto out;
	}
	r = spd__cfg_open(&ld, text, len);
	if (r < 0)
		goto out;
	root = yaml_document_get_root_node(&ld.doc);
	if (root != NULL && !spd__cfg_is_null(root))
		r = spd__cfg_each_pair(&ld, root, "", SIZE_MAX, "duplicate key", spd__cfg_top_key,
				       NULL);
	if (r == 0)
		r = spd__cfg_finish(&ld);
	if (r == 0)
		r = spd__cfg_check_fd_limit(&ld);
out:
	free(ld.seen);
	spd__cfg_close(&ld);
	if (r < 0) {
		spd_config_destroy(cfg);
		cfg = NULL;
	}
	*out = cfg;
	return r;
}

/* ------------------------------------------------------------------------ */
/* Public entry points                                                      */
/* ------------------------------------------------------------------------ */

uint32_t spd_config_idle_max(const spd_config *cfg)
{
	uint64_t n = 0;

	for (size_t i = 0; i < cfg->target_count; i++)
		n += cfg->targets[i].prestart;
	return n < cfg->max_idle ? (uint32_t)n : cfg->max_idle;
}

uint64_t spd_config_launcher_fds(const spd_config *cfg)
{
	return SPD_LAUNCHER_FDS_BASE + (uint64_t)cfg->target_count +
	       (uint64_t)SPD_LAUNCHER_FDS_PER_PROCESS * cfg->max_running +
	       (uint64_t)SPD_LAUNCHER_FDS_PER_IDLE * spd_config_idle_max(cfg);
}

int spd_config_load_string(const char *text, size_t len, const char *name,
			   const char *base_dir, spd_config **out,
			   char err[SPD_CONFIG_ERR_MAX])
{
	char scratch[SPD_CONFIG_ERR_MAX], show[CONFIG_KEY_MAX];
	char *dir = NULL;
	int r;

	if (err == NULL)
		err = scratch;
	err[0] = '\0';
	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (name == NULL)
		name = "<string>";
	if (text == NULL && len > 0) {
		spd__cfg_escape(show, sizeof show, name, strlen(name), 200);
		spd__cfg_printf(err, SPD_CONFIG_ERR_MAX, "%s: no text", show);
		return -EINVAL;
	}
	r = spd__cfg_absolute_dir(base_dir, base_dir != NULL ? strlen(base_dir) : 0, &dir);
	if (r < 0) {
		char buf[128];

		spd__cfg_escape(show, sizeof show, name, strlen(name), 200);
		spd__cfg_printf(err, SPD_CONFIG_ERR_MAX, "%s: base directory: %s", show,
			 strerror_r(-r, buf, sizeof buf));
		return r;
	}
	r = config_load(text != NULL ? text : "", len, name, dir, out, err);
	free(dir);
	return r;
}

/* Reads at most CONFIG_FILE_MAX + 1 bytes of `path` (one more tells "too large"). */
static int file_read(const char *path, char **text, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = NULL, *grown;
	int fd = -1, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	buf = malloc(cap);
	if (buf == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t got;

		if (n == cap) {
			if (cap > CONFIG_FILE_MAX)
				break;
			cap *= 2;
			grown = realloc(buf, cap);
			if (grown == NULL) {
				r = -ENOMEM;
				goto out;
			}
			buf = grown;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	*text = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return r;
}

int spd_config_load_file(const char *path, spd_config **out, char err[SPD_CONFIG_ERR_MAX])
{
	char scratch[SPD_CONFIG_ERR_MAX], show[CONFIG_KEY_MAX], buf[128];
	const char *slash;
	char *text = NULL, *dir = NULL;
	size_t len = 0;
	int r;

	if (err == NULL)
		err = scratch;
	err[0] = '\0';
	if (out == NULL || path == NULL)
		return -EINVAL;
	*out = NULL;
	spd__cfg_escape(show, sizeof show, path, strlen(path), 200);
	r = file_read(path, &text, &len);
	if (r < 0) {
		spd__cfg_printf(err, SPD_CONFIG_ERR_MAX, "%s: cannot read: %s", show,
			 strerror_r(-r, buf, sizeof buf));
		goto out;
	}
	slash = strrchr(path, '/');
	if (slash == path)
		r = spd__cfg_absolute_dir("/", 1, &dir);
	else
		r = spd__cfg_absolute_dir(path, slash != NULL ? (size_t)(slash - path) : 0, &dir);
	if (r < 0) {
		spd__cfg_printf(err, SPD_CONFIG_ERR_MAX, "%s: directory: %s", show,
			 strerror_r(-r, buf, sizeof buf));
		goto out;
	}
	r = config_load(text, len, path, dir, out, err);
out:
	free(dir);
	free(text);
	return r;
}

void spd_config_destroy(spd_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->target_count; i++)
		spd_target_config_release(&cfg->targets[i]);
	free(cfg->targets);
	free(cfg->auth_tokens_file);
	free(cfg->metrics_listen);
	free(cfg->store_path);
	free(cfg->tls_client_ca);
	free(cfg->tls_key);
	free(cfg->tls_cert);
	spd_strv_free(cfg->listen);
	free(cfg->dir);
	free(cfg->path);
	free(cfg);
}

const spd_target_config *spd_config_find_target(const spd_config *cfg, const char *name)
{
	if (cfg == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < cfg->target_count; i++)
		if (strcmp(cfg->targets[i].name, name) == 0)
			return &cfg->targets[i];
	return NULL;
}
