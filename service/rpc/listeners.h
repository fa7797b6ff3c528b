/* The server's listening addresses: binding them in gRPC with clear errors,
 * and probing that each one still accepts connections.
 *
 * Binding (spd_listeners_bind): every cfg->listen address is parsed
 * (common/address.h), a unix socket's directory must exist, the socket gets
 * unix_socket_mode from the umask around the bind (never a chmod after it,
 * which would follow a symlink put there meanwhile). When gRPC refuses an
 * address, the error names it and says why, from a bind of our own.
 *
 * Probing (spd_listener_probe): gRPC core 1.51 stops accepting on a listener
 * for good after one failed accept4 (EMFILE), while the kernel keeps queueing
 * connections on it. A probe connects like a client, sends the HTTP/2
 * preface, and waits for the server to answer anything: only an accepting
 * listener does.
 */
#ifndef SPAWND_RPC_LISTENERS_H
#define SPAWND_RPC_LISTENERS_H

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stddef.h>

#include "service/common/address.h"
#include "service/config/config.h"
#include "service/rpc/tls.h"

typedef struct spd_listener {
	const char *listen;     /* cfg->listen[i], borrowed */
	bool tls;               /* a TCP listener of a config with tls */
	spd_address addr;       /* with the bound port (port 0 resolved) */
	char bound[300];        /* for the log: "127.0.0.1:40123", "unix:/run/x.sock" */
} spd_listener;

/* Adds every address of CFG to SERVER (not started yet), filling OUT
 * (cfg->listen_count entries); with REBIND, the addresses OUT already holds
 * from a first bind (same ports). Returns 0, or -errno with ERR naming the
 * address and the cause ("listen unix:/run/spawnd/s.sock: the socket's
 * directory /run/spawnd: No such file or directory ..."). On failure some
 * ports may have been added: the caller must shut SERVER down before
 * destroying it. TLS (NULL: none) secures the TCP addresses (tls.h). */
int spd_listeners_bind(grpc_server *server, const spd_config *cfg, spd_tls *tls,
		       spd_listener *out, bool rebind, char *err, size_t errlen);

/* 0 when L answers the HTTP/2 preface within TIMEOUT_MS (a TLS listener is
 * not probed: it would log a failed handshake each time; 0); -ETIMEDOUT when it
 * does not (or the connection is refused); another -errno when the probe
 * could not be made (-EMFILE: no descriptor for it). Blocks the caller. */
int spd_listener_probe(const spd_listener *l, int timeout_ms);

/* After the server that held L shut its listeners down: waits up to
 * TIMEOUT_MS until the address is free again (a unix path unlinked by gRPC,
 * a TCP port bindable), so that a new server can bind it and gRPC's late
 * unlink of the old socket cannot remove the new one. 0 or -ETIMEDOUT. */
int spd_listener_wait_released(const spd_listener *l, int timeout_ms);

#endif
