/* TLS and mTLS for the TCP listeners (SPEC §7; config `tls: {cert, key,
 * client_ca}`), with certificate rotation without a restart.
 *
 * The certificate, key and client CA are read from their files at start and
 * again on spd_tls_reload (SIGHUP). gRPC asks for the current certificates
 * through a config fetcher at each new handshake, so a reload applies to new
 * connections at once and open ones keep theirs. With client_ca, every client
 * must present a certificate signed by it (mTLS). A unix: listener is not
 * TLS: its file mode guards it.
 *
 * Thread-safety: every function may be called from any thread.
 */
#ifndef SPAWND_RPC_TLS_H
#define SPAWND_RPC_TLS_H

#include <grpc/grpc_security.h>
#include <stddef.h>

#include "service/config/config.h"

typedef struct spd_tls spd_tls;

/* Reads CFG's tls files. Returns 0 with *OUT NULL when CFG has no tls, 0 with
 * *OUT set, or -errno with ERR naming the key and the file ("tls.key
 * /etc/spawnd/tls.key: Permission denied"). */
int spd_tls_create(const spd_config *cfg, spd_tls **out, char *err, size_t errlen);

/* New server credentials on T (the caller releases them after adding the
 * port). Each handshake of a listener made with them uses T's current
 * certificates. NULL on allocation failure. */
grpc_server_credentials *spd_tls_server_credentials(spd_tls *t);

/* Reads the files again. On success new handshakes use them; on failure the
 * old ones stay and ERR says why. Returns 0 or -errno. */
int spd_tls_reload(spd_tls *t, char *err, size_t errlen);

/* Frees T. Call after every server that used its credentials is destroyed. */
void spd_tls_destroy(spd_tls *t);

#endif
