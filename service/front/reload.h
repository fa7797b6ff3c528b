/* SIGHUP (SPEC §5): the front re-reads its config file and applies it without
 * dropping a process.
 *
 * What applies: the targets (added, changed and removed for new starts;
 * running and pending processes keep the settings they started with, see
 * spd_registry_reload), `defaults` (through the targets they resolve into),
 * max_running, max_pending, history, shutdown_grace_period, log (level and
 * format, in the front and the launcher), auth (the tokens file, re-read, and
 * protect_health), and the TLS files' contents (re-read). What needs a
 * restart, and is refused on reload with a log line naming the key while the
 * rest of the file applies: listen, unix_socket_mode, max_request_bytes and
 * the tls paths (they shape the listeners, bound once), and store (opened
 * and locked once). A file that does not
 * load (a syntax or validation error) changes nothing; the log gives the
 * error with file:line:column.
 */
#ifndef SPAWND_FRONT_RELOAD_H
#define SPAWND_FRONT_RELOAD_H

#include <stdbool.h>

#include "service/config/config.h"
#include "service/registry/registry.h"
#include "service/rpc/server.h"

/* Loads PATH (NULL: the embedded default config) and applies SPAWND_LISTEN
 * and SPAWND_LOG_LEVEL. 0 and *CFG, or -errno with ERR filled. */
int spd_front_load_config(const char *path, spd_config **cfg, char err[SPD_CONFIG_ERR_MAX]);

/* Copies into NEXT, from RUNNING (the config the front started with), every
 * setting that needs a restart and differs, logging each. Returns how many
 * were kept. */
int spd_front_keep_restart_settings(spd_config *next, const spd_config *running);

/* The whole reload: loads PATH, keeps what needs a restart as in BOOT, and
 * applies the rest to REG and SERVER. On success *CURRENT (the config in
 * force: BOOT or an earlier reload's, which this frees unless it is BOOT)
 * becomes the new one. Logs what happened; returns 0 or -errno. */
int spd_front_reload(const char *path, const spd_config *boot, spd_config **current,
		     spd_registry *reg, spd_server *server);

#endif
