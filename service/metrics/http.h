/* The metrics listener (SPEC §12 "Metrics"): plain HTTP on its own address,
 * `GET /metrics` in the text format 0.0.4 (metrics.h renders it), 404 for any
 * other path, 405 for other methods. Served by Debian's libmicrohttpd on one
 * thread of its own, apart from gRPC's: a scrape never runs on a gRPC thread.
 *
 * Hostile clients are bounded so that they cannot hurt the gRPC service: at
 * most SPD_METRICS_HTTP_MAX_CONNECTIONS connections (SPD_METRICS_HTTP_PER_IP
 * per address), each closed after SPD_METRICS_HTTP_TIMEOUT_S idle seconds and
 * with SPD_METRICS_HTTP_MEMORY bytes of buffers; so at most that many
 * descriptors and that much memory, whatever they send or fail to read.
 *
 * Every descriptor is O_CLOEXEC: the listening socket is made here
 * (SOCK_CLOEXEC); libmicrohttpd makes its others close-on-exec on Linux
 * (accept4 with SOCK_CLOEXEC, epoll_create1 and its eventfd with CLOEXEC).
 */
#ifndef SPAWND_METRICS_HTTP_H
#define SPAWND_METRICS_HTTP_H

#include <stddef.h>

#define SPD_METRICS_HTTP_MAX_CONNECTIONS 16
#define SPD_METRICS_HTTP_PER_IP 8
#define SPD_METRICS_HTTP_TIMEOUT_S 10
#define SPD_METRICS_HTTP_MEMORY (64u * 1024u)

typedef struct spd_metrics_http spd_metrics_http;

/* Listens on ADDRESS ("HOST:PORT", "[IPV6]:PORT"; port 0: any free one) and
 * serves. On success *OUT owns the server and BOUND (LEN bytes) holds the
 * address as bound ("127.0.0.1:9464"). Returns 0 or -errno with a sentence in
 * ERR (ERRLEN bytes). Call from the main thread, with the signal mask every
 * thread should inherit already set. */
int spd_metrics_http_start(const char *address, spd_metrics_http **out, char *bound, size_t len,
			   char *err, size_t errlen);

/* Stops serving: closes the listener and every connection, joins the thread,
 * frees S. NULL is fine. */
void spd_metrics_http_stop(spd_metrics_http *s);

#endif
