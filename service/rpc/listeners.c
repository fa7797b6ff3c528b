#include "service/rpc/listeners.h"

#include <errno.h>
#include <fcntl.h>
#include <grpc/grpc_security.h>
#include <netdb.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "service/common/clock.h"

/* The client connection preface (RFC 9113 §3.4) and an empty SETTINGS frame. */
static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
			      "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
#define PREFACE_LEN (sizeof preface - 1)

static int bind_one(grpc_server *server, const spd_config *cfg, spd_tls *tls, spd_listener *l,
		    bool rebind, char *err, size_t errlen)
{
	/* A re-bind takes the port the first bind got, even for "HOST:0". */
	const char *addr = rebind && l->addr.kind == SPD_ADDRESS_TCP ? l->bound : l->listen;
	grpc_server_credentials *creds;
	char why[400];
	mode_t old = 0;
	int port, rc;

	rc = spd_address_parse(addr, &l->addr, why, sizeof why);
	if (rc < 0) {
		snprintf(err, errlen, "listen %s", why); /* WHY names the address */
		return rc;
	}
	rc = spd_address_check_unix_dir(&l->addr, why, sizeof why);
	if (rc < 0) {
		snprintf(err, errlen, "listen %s: %s", addr, why);
		return rc;
	}
	/* A unix socket is created with 0777 & ~umask: the mode is right from
	 * the first instant, with no chmod that could follow a symlink. The
	 * umask is the process's; the other threads at this point (gRPC's own,
	 * the launcher link's reader) create no files, and a file created
	 * meanwhile could only get a stricter mode. */
	if (l->addr.kind == SPD_ADDRESS_UNIX)
		old = umask((mode_t)(~cfg->unix_socket_mode & 0777));
	/* A unix socket is guarded by its file mode, not TLS. */
	l->tls = tls != NULL && l->addr.kind == SPD_ADDRESS_TCP;
	creds = l->tls ? spd_tls_server_credentials(tls) : grpc_insecure_server_credentials_create();
	port = creds != NULL ? grpc_server_add_http2_port(server, addr, creds) : 0;
	if (creds != NULL)
		grpc_server_credentials_release(creds);
	if (l->addr.kind == SPD_ADDRESS_UNIX)
		umask(old);
	if (port == 0) {
		rc = spd_address_check_bindable(&l->addr, why, sizeof why);
		if (rc < 0)
			snprintf(err, errlen, "listen %s: %s", l->listen, why);
		else if (l->tls)
			snprintf(err, errlen,
				 "listen %s: TLS setup failed: do tls.cert and tls.key match, and "
				 "is tls.client_ca a CA certificate? (gRPC's log line above says more)",
				 l->listen);
		else
			snprintf(err, errlen, "listen %s: gRPC cannot bind it (see its log line above)",
				 l->listen);
		return rc < 0 ? rc : -EADDRNOTAVAIL;
	}
	if (l->addr.kind == SPD_ADDRESS_TCP) {
		l->addr.port = port;
		snprintf(l->bound, sizeof l->bound, "%s%s%s:%d", strchr(l->addr.host, ':') ? "[" : "",
			 l->addr.host, strchr(l->addr.host, ':') ? "]" : "", port);
	} else {
		snprintf(l->bound, sizeof l->bound, "%s", l->listen);
	}
	return 0;
}

int spd_listeners_bind(grpc_server *server, const spd_config *cfg, spd_tls *tls,
		       spd_listener *out, bool rebind, char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg->listen_count; i++) {
		int rc;
		if (!rebind) {
			memset(&out[i], 0, sizeof out[i]);
			out[i].listen = cfg->listen[i];
		}
		rc = bind_one(server, cfg, tls, &out[i], rebind, err, errlen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Where a probe of L connects: a wildcard host is reached on loopback. */
static int probe_target(const spd_listener *l, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	if (l->addr.kind == SPD_ADDRESS_UNIX || l->addr.kind == SPD_ADDRESS_UNIX_ABSTRACT) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;
		size_t n = strlen(l->addr.path);
		un->sun_family = AF_UNIX;
		if (l->addr.kind == SPD_ADDRESS_UNIX) {
			memcpy(un->sun_path, l->addr.path, n + 1);
			*len = (socklen_t)sizeof *un;
		} else {
			memcpy(un->sun_path + 1, l->addr.path, n);
			*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
		}
		return 0;
	} else {
		const char *host = l->addr.host;
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
		struct addrinfo *res = NULL;
		char port[8];
		if (strcmp(host, "0.0.0.0") == 0)
			host = "127.0.0.1";
		else if (strcmp(host, "::") == 0)
			host = "::1";
		snprintf(port, sizeof port, "%d", l->addr.port);
		if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL)
			return -EADDRNOTAVAIL;
		memcpy(ss, res->ai_addr, res->ai_addrlen);
		*len = res->ai_addrlen;
		freeaddrinfo(res);
		return 0;
	}
}

static int wait_fd(int fd, short events, int64_t deadline_ns)
{
	struct pollfd p = {.fd = fd, .events = events};
	int64_t left;
	int rc;

	do {
		left = (deadline_ns - spd_clock_mono_ns()) / 1000000;
		if (left <= 0)
			return -ETIMEDOUT;
		rc = poll(&p, 1, (int)left);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return -errno;
	return rc == 0 ? -ETIMEDOUT : 0;
}

int spd_listener_probe(const spd_listener *l, int timeout_ms)
{
	int64_t deadline = spd_clock_mono_ns() + (int64_t)timeout_ms * 1000000;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char buf[64];
	int fd, rc;

	if (l->tls)
		return 0;
	rc = probe_target(l, &ss, &sslen);
	if (rc < 0)
		return rc;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, sslen) < 0 && errno != EINPROGRESS) {
		rc = errno == ECONNREFUSED || errno == ENOENT ? -ETIMEDOUT : -errno;
		goto out;
	}
	rc = wait_fd(fd, POLLOUT, deadline);
	if (rc < 0)
		goto out;
	{
		int soerr = 0;
		socklen_t sl = sizeof soerr;
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr != 0) {
			rc = -ETIMEDOUT;
			goto out;
		}
	}
	if (send(fd, preface, PREFACE_LEN, MSG_NOSIGNAL) != (ssize_t)PREFACE_LEN) {
		rc = -ETIMEDOUT;
		goto out;
	}
	/* The server's SETTINGS, a TLS alert, even an orderly close: whatever
	 * comes back was sent by a server that accepted the connection. */
	rc = wait_fd(fd, POLLIN, deadline);
	if (rc == 0 && recv(fd, buf, sizeof buf, MSG_DONTWAIT) < 0 && errno != ECONNRESET)
		rc = -ETIMEDOUT;
out:
	close(fd);
	return rc;
}

int spd_listener_wait_released(const spd_listener *l, int timeout_ms)
{
	int64_t deadline = spd_clock_mono_ns() + (int64_t)timeout_ms * 1000000;
	struct timespec nap = {0, 5 * 1000000};
	char why[300];

	for (;;) {
		bool free_now;
		if (l->addr.kind == SPD_ADDRESS_UNIX) {
			struct stat st;
			free_now = lstat(l->addr.path, &st) < 0 && errno == ENOENT;
		} else {
			free_now = spd_address_check_bindable(&l->addr, why, sizeof why) == 0;
		}
		if (free_now)
			return 0;
		if (spd_clock_mono_ns() >= deadline)
			return -ETIMEDOUT;
		nanosleep(&nap, NULL);
	}
}
