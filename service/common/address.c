#include "service/common/address.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int parse_port(const char *s, int *port)
{
	long v = 0;

	if (*s == '\0')
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (*p - '0');
		if (v > 65535)
			return -ERANGE;
	}
	*port = (int)v;
	return 0;
}

/* S as it may appear in a one-line message: control bytes as '?', cut. */
static const char *shown(const char *s, char out[128])
{
	size_t i = 0;

	for (; s[i] != '\0' && i < 124; i++)
		out[i] = (unsigned char)s[i] < ' ' || s[i] == 0x7f ? '?' : s[i];
	if (s[i] != '\0')
		out[i++] = '.', out[i++] = '.', out[i++] = '.';
	out[i] = '\0';
	return out;
}

static int bad(char *err, size_t len, const char *fmt, const char *a, const char *b)
{
	char buf[128];

	snprintf(err, len, fmt, shown(a, buf), b);
	return -EINVAL;
}

static int parse_unix(const char *s, size_t skip, spd_address *a, char *err, size_t len)
{
	const char *path = s + skip;
	size_t n = strlen(path);

	if (n == 0)
		return bad(err, len, "%s: the socket path is empty%s", s, "");
	if (n >= sizeof a->path)
		return bad(err, len, "%s: the socket path is too long (at most 107 bytes)%s", s, "");
	memcpy(a->path, path, n + 1);
	return 0;
}

int spd_address_parse(const char *s, spd_address *a, char *err, size_t len)
{
	const char *colon, *hp;
	size_t hlen;
	int rc;

	memset(a, 0, sizeof *a);
	if (strncmp(s, "unix:", 5) == 0) {
		a->kind = SPD_ADDRESS_UNIX;
		return parse_unix(s, 5, a, err, len);
	}
	if (strncmp(s, "unix-abstract:", 14) == 0) {
		a->kind = SPD_ADDRESS_UNIX_ABSTRACT;
		return parse_unix(s, 14, a, err, len);
	}
	a->kind = SPD_ADDRESS_TCP;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL)
			return bad(err, len, "%s: missing ']' after the IPv6 address%s", s, "");
		if (close[1] != ':')
			return bad(err, len, "%s: expected ':PORT' after ']', as in [::1]:50051%s", s, "");
		hp = s + 1;
		hlen = (size_t)(close - hp);
		colon = close + 1;
		if (hlen == 0 || memchr(hp, ':', hlen) == NULL)
			return bad(err, len, "%s: brackets are for IPv6 addresses, as in [::1]:50051%s", s,
				   "");
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return bad(err, len, "%s: missing ':PORT' (e.g. 127.0.0.1:50051, or unix:PATH)%s",
				   s, "");
		hp = s;
		hlen = (size_t)(colon - s);
		if (memchr(hp, ':', hlen) != NULL) {
			/* fd00::2:50051 — cannot be split safely. */
			char buf[128];
			shown(s, buf);
			snprintf(err, len, "%s: an IPv6 address needs brackets: [%.*s]:%s", buf,
				 (int)(hlen < 100 ? hlen : 100), buf, buf + (hlen < 100 ? hlen + 1 : 100));
			return -EINVAL;
		}
		if (hlen == 0)
			return bad(err, len, "%s: missing host (0.0.0.0 or [::] for every address)%s", s,
				   "");
	}
	if (hlen >= sizeof a->host)
		return bad(err, len, "%s: the host is too long%s", s, "");
	for (size_t i = 0; i < hlen; i++)
		if ((unsigned char)hp[i] <= ' ' || hp[i] == '/' || hp[i] == '[' || hp[i] == ']')
			return bad(err, len, "%s: the host has a character that cannot be in one%s", s, "");
	memcpy(a->host, hp, hlen);
	a->host[hlen] = '\0';
	rc = parse_port(colon + 1, &a->port);
	if (rc < 0) {
		char buf[128], pbuf[128];
		snprintf(err, len, "%s: the port must be a number from 0 to 65535, not '%s'",
			 shown(s, buf), shown(colon + 1, pbuf));
		return -EINVAL;
	}
	return 0;
}

int spd_address_check_unix_dir(const spd_address *a, char *err, size_t len)
{
	char dir[sizeof a->path];
	char *slash;
	struct stat st;

	if (a->kind != SPD_ADDRESS_UNIX)
		return 0;
	memcpy(dir, a->path, sizeof dir);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (stat(dir, &st) < 0) {
		int e = errno;
		snprintf(err, len, "the socket's directory %s: %s%s", dir, strerror(e),
			 e == ENOENT ? " (spawnd creates no directories: create it, or mount a volume there)"
				     : "");
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, len, "the socket's directory %s is not a directory", dir);
		return -ENOTDIR;
	}
	return 0;
}

static int try_bind(int family, const struct sockaddr *sa, socklen_t salen)
{
	int one = 1, rc = 0;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (family != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, sa, salen) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static const char *why(int e)
{
	switch (e) {
	case EADDRINUSE:
		return "the address is in use (another spawnd or program listens there)";
	case EADDRNOTAVAIL:
		return "not an address of this machine";
	case EACCES:
		return "permission denied (ports below 1024 need privileges)";
	case EAFNOSUPPORT:
		return "this machine has no such address family (IPv6 disabled?)";
	default:
		return strerror(e);
	}
}

int spd_address_check_bindable(const spd_address *a, char *err, size_t len)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int rc;

	if (a->kind == SPD_ADDRESS_UNIX) {
		struct sockaddr_un un = {.sun_family = AF_UNIX};
		struct stat st;
		rc = spd_address_check_unix_dir(a, err, len);
		if (rc < 0)
			return rc;
		if (stat(a->path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
			snprintf(err, len, "%s exists and is not a socket", a->path);
			return -EEXIST;
		}
		/* Bind a sibling name, to learn whether the directory is writable. */
		if (snprintf(un.sun_path, sizeof un.sun_path, "%s.probe%d", a->path, (int)getpid()) >=
		    (int)sizeof un.sun_path)
			return 0;
		rc = try_bind(AF_UNIX, (struct sockaddr *)&un, sizeof un);
		unlink(un.sun_path);
		if (rc < 0) {
			snprintf(err, len, "%s", why(-rc));
			return rc;
		}
		return 0;
	}
	if (a->kind != SPD_ADDRESS_TCP)
		return 0;
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof port, "%d", a->port);
	rc = getaddrinfo(a->host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, len, "cannot resolve %s: %s", a->host, gai_strerror(rc));
		return -EADDRNOTAVAIL;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		rc = try_bind(ai->ai_family, ai->ai_addr, ai->ai_addrlen);
		if (rc < 0) {
			snprintf(err, len, "%s", why(-rc));
			break;
		}
	}
	freeaddrinfo(res);
	return rc;
}
