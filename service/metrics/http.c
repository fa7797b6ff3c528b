/* The metrics listener on libmicrohttpd: see http.h. */
#include "service/metrics/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "service/common/address.h"
#include "service/common/log.h"
#include "service/metrics/metrics.h"
#include "service/metrics/text.h"

#define BACKLOG 16

struct spd_metrics_http {
	struct MHD_Daemon *daemon;
};

static const char not_found[] = "not found: metrics are at /metrics\n";
static const char not_allowed[] = "method not allowed: GET /metrics\n";

/* libmicrohttpd's own messages, into our log. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	spd_log(SPD_LOG_WARN, "metrics listener", SPD_LOG_STR("error", msg), SPD_LOG_END);
}

static enum MHD_Result answer_static(struct MHD_Connection *conn, unsigned code,
				     const char *text, const char *allow)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
								 MHD_RESPMEM_PERSISTENT);
	enum MHD_Result rc;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (allow != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	rc = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result answer_metrics(struct MHD_Connection *conn)
{
	spd_mbuf b = SPD_MBUF_INIT;
	struct MHD_Response *r;
	enum MHD_Result rc;

	if (spd_metrics_render(&b) < 0 || b.data == NULL) {
		spd_mbuf_release(&b);
		return answer_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
	}
	/* MUST_FREE: the response owns the text from here. */
	r = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		spd_mbuf_release(&b);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, SPD_METRICS_CONTENT_TYPE);
	rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **state)
{
	bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
		   strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

	(void)cls;
	(void)version;
	(void)upload;
	(void)state;
	/* Answered at the first call, when the headers are in and before any
	 * body is read: libmicrohttpd then discards a body rather than hand it
	 * to us (a response cannot be queued while one is being uploaded), and
	 * closes the connection after the answer. No request is worth a body. */
	(void)upload_size;
	if (strcmp(url, "/metrics") != 0)
		return answer_static(conn, MHD_HTTP_NOT_FOUND, not_found, NULL);
	if (!get)
		return answer_static(conn, MHD_HTTP_METHOD_NOT_ALLOWED, not_allowed, "GET, HEAD");
	return answer_metrics(conn);
}

/* A listening TCP socket on A (SOCK_CLOEXEC, non-blocking), or -errno. */
static int listen_on(const spd_address *a, char *bound, size_t len, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char port[16], host[INET6_ADDRSTRLEN];
	int fd = -1, rc, saved = 0;
	const int one = 1;

	snprintf(port, sizeof port, "%d", a->port);
	rc = getaddrinfo(a->host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", a->host, gai_strerror(rc));
		return -EADDRNOTAVAIL;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, BACKLOG) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", a->host, a->port, strerror(saved));
		return -(saved ? saved : EADDRNOTAVAIL);
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
		snprintf(bound, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
		snprintf(bound, len, "%s:%u", host, ntohs(s4->sin_port));
	} else {
		snprintf(bound, len, "%s:%d", a->host, a->port);
	}
	return fd;
}

int spd_metrics_http_start(const char *address, spd_metrics_http **out, char *bound, size_t len,
			   char *err, size_t errlen)
{
	spd_metrics_http *s;
	spd_address a;
	int fd;

	*out = NULL;
	if (spd_address_parse(address, &a, err, errlen) < 0)
		return -EINVAL;
	if (a.kind != SPD_ADDRESS_TCP) {
		snprintf(err, errlen, "metrics.listen: must be HOST:PORT (plain HTTP over TCP)");
		return -EINVAL;
	}
	s = calloc(1, sizeof *s);
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	fd = listen_on(&a, bound, len, err, errlen);
	if (fd < 0) {
		free(s);
		return fd;
	}
	/* One internal thread polling with epoll; the limits of http.h. The
	 * daemon owns FD from here and closes it when stopped. */
	s->daemon = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)SPD_METRICS_HTTP_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		(unsigned)SPD_METRICS_HTTP_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)SPD_METRICS_HTTP_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)SPD_METRICS_HTTP_MEMORY, MHD_OPTION_END);
	if (s->daemon == NULL) {
		close(fd);
		free(s);
		snprintf(err, errlen, "libmicrohttpd could not start on %s", bound);
		return -EIO;
	}
	*out = s;
	return 0;
}

void spd_metrics_http_stop(spd_metrics_http *s)
{
	if (s == NULL)
		return;
	MHD_stop_daemon(s->daemon);
	free(s);
}
