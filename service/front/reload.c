/* SIGHUP: see reload.h. */
#include "service/front/reload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/common/log.h"
#include "service/common/strv.h"

int spd_front_load_config(const char *path, spd_config **cfg, char err[SPD_CONFIG_ERR_MAX])
{
	int rc;

	if (path != NULL)
		rc = spd_config_load_file(path, cfg, err);
	else
		rc = spd_config_load_string(spd_config_default_yaml, strlen(spd_config_default_yaml),
					    "<default>", NULL, cfg, err);
	if (rc == 0 && (rc = spd_config_apply_env(*cfg, err)) < 0) {
		spd_config_destroy(*cfg);
		*cfg = NULL;
	}
	return rc;
}

static bool str_eq(const char *a, const char *b)
{
	return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/* Swaps *A and *B: NEXT gets the running value, and frees its own with itself. */
#define SWAP(a, b)                       \
	do {                             \
		__typeof__(a) tmp_ = (a); \
		(a) = (b);               \
		(b) = tmp_;              \
	} while (0)

static void refused(const char *key)
{
	spd_log(SPD_LOG_WARN, "SIGHUP: this setting needs a restart; keeping the running value",
		SPD_LOG_STR("key", key), SPD_LOG_END);
}

static bool listen_eq(const spd_config *a, const spd_config *b)
{
	if (a->listen_count != b->listen_count)
		return false;
	for (size_t i = 0; i < a->listen_count; i++)
		if (strcmp(a->listen[i], b->listen[i]) != 0)
			return false;
	return true;
}

int spd_front_keep_restart_settings(spd_config *next, const spd_config *running)
{
	/* RUNNING is only read: NEXT takes copies of its values. */
	int kept = 0;

	if (!listen_eq(next, running)) {
		char **v = spd_strv_dup((const char *const *)running->listen, running->listen_count);
		if (v != NULL) {
			spd_strv_free(next->listen);
			next->listen = v;
			next->listen_count = running->listen_count;
		}
		refused("listen");
		kept++;
	}
	if (!str_eq(next->store_path, running->store_path) ||
	    next->store_sync != running->store_sync) {
		char *path = running->store_path ? strdup(running->store_path) : NULL;
		SWAP(next->store_path, path);
		free(path);
		next->store_sync = running->store_sync;
		refused("store");
		kept++;
	}
	if (next->unix_socket_mode != running->unix_socket_mode) {
		next->unix_socket_mode = running->unix_socket_mode;
		refused("unix_socket_mode");
		kept++;
	}
	if (next->max_request_bytes != running->max_request_bytes) {
		next->max_request_bytes = running->max_request_bytes;
		refused("max_request_bytes");
		kept++;
	}
	if (!str_eq(next->metrics_listen, running->metrics_listen)) {
		char *m = running->metrics_listen ? strdup(running->metrics_listen) : NULL;
		SWAP(next->metrics_listen, m);
		free(m);
		refused("metrics.listen");
		kept++;
	}
	if (!str_eq(next->tls_cert, running->tls_cert) || !str_eq(next->tls_key, running->tls_key) ||
	    !str_eq(next->tls_client_ca, running->tls_client_ca)) {
		char *cert = running->tls_cert ? strdup(running->tls_cert) : NULL;
		char *key = running->tls_key ? strdup(running->tls_key) : NULL;
		char *ca = running->tls_client_ca ? strdup(running->tls_client_ca) : NULL;
		SWAP(next->tls_cert, cert);
		SWAP(next->tls_key, key);
		SWAP(next->tls_client_ca, ca);
		free(cert);
		free(key);
		free(ca);
		refused("tls");
		kept++;
	}
	return kept;
}

int spd_front_reload(const char *path, const spd_config *boot, spd_config **current,
		     spd_registry *reg, spd_server *server)
{
	char err[SPD_CONFIG_ERR_MAX], why[512];
	spd_reload_summary sum;
	spd_config *next = NULL;
	int rc, kept;

	rc = spd_front_load_config(path, &next, err);
	if (rc < 0) {
		spd_log(SPD_LOG_ERROR, "SIGHUP: the config does not load; nothing changed",
			SPD_LOG_STR("error", err), SPD_LOG_END);
		return rc;
	}
	kept = spd_front_keep_restart_settings(next, boot);
	rc = spd_registry_reload(reg, next, &sum);
	if (rc < 0) {
		spd_log(SPD_LOG_ERROR, "SIGHUP: cannot apply the config; nothing changed",
			SPD_LOG_STR("error", strerror(-rc)), SPD_LOG_END);
		spd_config_destroy(next);
		return rc;
	}
	spd_log_setup(next->log_level, next->log_format == SPD_LOG_FORMAT_JSON, NULL);
	if (spd_server_reload(server, next, why, sizeof why) < 0)
		spd_log(SPD_LOG_ERROR, "SIGHUP: cannot re-read the tokens or certificates; keeping "
				       "the old ones",
			SPD_LOG_STR("error", why), SPD_LOG_END);
	spd_log(SPD_LOG_INFO, "SIGHUP: config reloaded", SPD_LOG_STR("config", next->path),
		SPD_LOG_INT("added", sum.added), SPD_LOG_INT("changed", sum.changed),
		SPD_LOG_INT("removed", sum.removed), SPD_LOG_INT("unchanged", sum.unchanged),
		SPD_LOG_INT("needs_restart", kept), SPD_LOG_END);
	if (*current != boot)
		spd_config_destroy(*current);
	*current = next;
	return 0;
}
