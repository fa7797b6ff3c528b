#include "service/wire/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static void put(spd_wbuf *b, const void *p, size_t n)
{
	if (b->err != 0)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *d;
		while (cap < b->len + n)
			cap *= 2;
		d = realloc(b->data, cap);
		if (d == NULL) {
			b->err = -ENOMEM;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

void spd_wbuf_u32(spd_wbuf *b, uint32_t v)
{
	put(b, &v, sizeof v);
}

void spd_wbuf_i64(spd_wbuf *b, int64_t v)
{
	put(b, &v, sizeof v);
}

void spd_wbuf_bytes(spd_wbuf *b, const void *p, size_t len)
{
	uint64_t n = len;

	put(b, &n, sizeof n);
	put(b, p, len);
}

void spd_wbuf_str(spd_wbuf *b, const char *s)
{
	spd_wbuf_bytes(b, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

void spd_wbuf_release(spd_wbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->err = 0;
}

void spd_wreader_init(spd_wreader *r, const void *body, size_t len)
{
	r->p = body;
	r->left = body != NULL ? len : 0;
	r->err = 0;
}

static int take(spd_wreader *r, void *out, size_t n)
{
	if (r->err != 0 || r->left < n) {
		r->err = -EBADMSG;
		memset(out, 0, n);
		return -1;
	}
	memcpy(out, r->p, n);
	r->p += n;
	r->left -= n;
	return 0;
}

uint32_t spd_wreader_u32(spd_wreader *r)
{
	uint32_t v;

	take(r, &v, sizeof v);
	return v;
}

int64_t spd_wreader_i64(spd_wreader *r)
{
	int64_t v;

	take(r, &v, sizeof v);
	return v;
}

const void *spd_wreader_bytes(spd_wreader *r, size_t *len)
{
	uint64_t n;
	const void *p;

	*len = 0;
	if (take(r, &n, sizeof n) < 0)
		return "";
	if (n > r->left) {
		r->err = -EBADMSG;
		return "";
	}
	p = r->p;
	r->p += n;
	r->left -= n;
	*len = (size_t)n;
	return p;
}

void spd_wbuf_strv(spd_wbuf *b, char *const *v, size_t n)
{
	spd_wbuf_u32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		spd_wbuf_str(b, v[i]);
}

char **spd_wreader_strv_n(spd_wreader *r, size_t n)
{
	char **v;

	if (r->err != 0)
		return NULL;
	v = calloc(n + 1, sizeof *v);
	if (v == NULL) {
		r->err = -ENOMEM;
		return NULL;
	}
	for (size_t i = 0; i < n && r->err == 0; i++)
		v[i] = spd_wreader_strdup(r);
	if (r->err != 0) {
		spd_strv_free(v);
		return NULL;
	}
	return v;
}

char **spd_wreader_strv(spd_wreader *r, uint32_t max, size_t *n)
{
	uint32_t count = spd_wreader_u32(r);
	char **v;

	*n = 0;
	/* Each entry takes at least its 4-byte length: a count the body cannot
	 * hold is refused before anything is allocated for it. */
	if (r->err == 0 && (count > max || count > r->left / 4))
		r->err = -EBADMSG;
	v = spd_wreader_strv_n(r, count);
	if (v != NULL)
		*n = count;
	return v;
}

int spd_wreader_end(spd_wreader *r)
{
	if (r->err == 0 && r->left != 0)
		r->err = -EBADMSG;
	return r->err;
}

char *spd_wreader_strdup(spd_wreader *r)
{
	size_t n;
	const char *p = spd_wreader_bytes(r, &n);

	char *s;

	if (r->err != 0)
		return NULL;
	s = strndup(p, n);
	if (s == NULL)
		r->err = -ENOMEM; /* a hole in a vector would end it early */
	return s;
}

static int send_all(int fd, const struct msghdr *msg, int flags)
{
	for (;;) {
		ssize_t n = sendmsg(fd, msg, MSG_NOSIGNAL | flags);
		if (n >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

int spd_memfd_from(const void *data, size_t len)
{
	int fd = memfd_create("spawnd", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	const uint8_t *p = data;
	size_t off = 0;

	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, p + off, len - off);
		if (n < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			close(fd);
			return -e;
		}
		off += (size_t)n;
	}
	/* Sealed, so the receiver may trust the size it reads. */
	fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static int send_frame(int fd, uint32_t type, uint64_t key, const spd_wbuf *body,
		      const int *fds, size_t nfds, int flags)
{
	spd_wire_hdr hdr = {.type = type, .flags = 0, .key = key};
	size_t blen = body != NULL ? body->len : 0;
	struct iovec iov[2];
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int) * (SPD_WIRE_MAX_FDS + 1))];
		struct cmsghdr align;
	} ctl;
	int all[SPD_WIRE_MAX_FDS + 1];
	size_t n = 0;
	int memfd = -1, rc;

	if (body != NULL && body->err != 0)
		return body->err;
	if (nfds > SPD_WIRE_MAX_FDS)
		return -EINVAL;
	iov[0].iov_base = &hdr;
	iov[0].iov_len = sizeof hdr;
	if (sizeof hdr + blen <= SPD_WIRE_MAX_DGRAM) {
		if (blen > 0) {
			iov[1].iov_base = body->data;
			iov[1].iov_len = blen;
			msg.msg_iovlen = 2;
		}
	} else {
		if (blen > SPD_WIRE_MAX_BODY)
			return -EMSGSIZE;
		memfd = spd_memfd_from(body->data, body->len);
		if (memfd < 0)
			return memfd;
		hdr.flags |= SPD_WIRE_F_MEMFD;
		all[n++] = memfd; /* always first */
	}
	for (size_t i = 0; i < nfds; i++)
		all[n++] = fds[i];
	if (n > 0) {
		struct cmsghdr *c;
		memset(&ctl, 0, sizeof ctl);
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), all, sizeof(int) * n);
	}
	rc = send_all(fd, &msg, flags);
	if (memfd >= 0)
		close(memfd);
	return rc;
}

int spd_wire_send_fds(int fd, uint32_t type, uint64_t key, const spd_wbuf *body,
		      const int *fds, size_t nfds)
{
	return send_frame(fd, type, key, body, fds, nfds, 0);
}

int spd_wire_send(int fd, uint32_t type, uint64_t key, const spd_wbuf *body)
{
	return send_frame(fd, type, key, body, NULL, 0, 0);
}

int spd_wire_send_nonblock(int fd, uint32_t type, uint64_t key, const spd_wbuf *body)
{
	int rc = send_frame(fd, type, key, body, NULL, 0, MSG_DONTWAIT);

	return rc == -EWOULDBLOCK ? -EAGAIN : rc;
}

int spd_memfd_read(int mfd, uint8_t **body, size_t *body_len)
{
	off_t size = lseek(mfd, 0, SEEK_END);
	uint8_t *buf;
	size_t off = 0;

	if (size < 0)
		return -errno;
	if ((uint64_t)size > SPD_WIRE_MAX_BODY)
		return -EBADMSG;
	buf = malloc(size > 0 ? (size_t)size : 1);
	if (buf == NULL)
		return -ENOMEM;
	while (off < (size_t)size) {
		ssize_t n = pread(mfd, buf + off, (size_t)size - off, (off_t)off);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			free(buf);
			return n < 0 ? -errno : -EBADMSG;
		}
		off += (size_t)n;
	}
	*body = buf;
	*body_len = off;
	return 0;
}

int spd_wire_recv_fds(int fd, spd_wire_hdr *hdr, uint8_t **body, size_t *body_len, int *fds,
		      size_t *nfds)
{
	uint8_t *buf = NULL;
	struct iovec iov[2];
	struct msghdr msg;
	union {
		char buf[CMSG_SPACE(sizeof(int) * (SPD_WIRE_MAX_FDS + 1))];
		struct cmsghdr align;
	} ctl;
	int got[SPD_WIRE_MAX_FDS + 1];
	size_t ngot = 0, first = 0;
	int memfd = -1, rc;
	ssize_t n;

	*body = NULL;
	*body_len = 0;
	if (nfds != NULL)
		*nfds = 0;
	buf = malloc(SPD_WIRE_MAX_DGRAM);
	if (buf == NULL)
		return -ENOMEM;
	for (;;) {
		memset(&msg, 0, sizeof msg);
		/* The header lands in *hdr, the body in buf: nothing to move. */
		iov[0].iov_base = hdr;
		iov[0].iov_len = sizeof *hdr;
		iov[1].iov_base = buf;
		iov[1].iov_len = SPD_WIRE_MAX_DGRAM - sizeof *hdr;
		msg.msg_iov = iov;
		msg.msg_iovlen = 2;
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof ctl.buf;
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
		if (n >= 0 || errno != EINTR)
			break;
	}
	if (n < 0) {
		rc = -errno;
		goto out;
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				int f;
				memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
				if (ngot < sizeof got / sizeof got[0])
					got[ngot++] = f;
				else
					close(f);
			}
		}
	}
	if (n == 0) {
		rc = 0;
		goto out;
	}
	if ((size_t)n < sizeof *hdr || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		rc = -EBADMSG;
		goto out;
	}
	if (hdr->flags & SPD_WIRE_F_MEMFD) {
		if (ngot == 0) {
			rc = -EBADMSG;
			goto out;
		}
		memfd = got[0];
		first = 1;
		rc = spd_memfd_read(memfd, body, body_len);
		if (rc < 0)
			goto out;
	} else {
		*body_len = (size_t)n - sizeof *hdr;
		if (*body_len > 0) {
			*body = buf;
			buf = NULL;
		}
	}
	if (fds != NULL && nfds != NULL) {
		/* got[] has room for a memfd too: without one, a sixth descriptor
		 * would not fit the caller's SPD_WIRE_MAX_FDS (closed below). */
		while (first < ngot && *nfds < SPD_WIRE_MAX_FDS)
			fds[(*nfds)++] = got[first++];
	}
	rc = 1;
out:
	if (memfd >= 0)
		close(memfd);
	for (size_t i = first; i < ngot; i++)
		close(got[i]);
	if (rc != 1) {
		free(*body);
		*body = NULL;
		*body_len = 0;
		if (nfds != NULL)
			*nfds = 0;
	}
	free(buf);
	return rc;
}

int spd_wire_recv(int fd, spd_wire_hdr *hdr, uint8_t **body, size_t *body_len)
{
	return spd_wire_recv_fds(fd, hdr, body, body_len, NULL, NULL);
}

/* ---- out-queue ------------------------------------------------------------------ */

struct spd_wire_frame {
	spd_wire_frame *next;
	uint32_t type;
	uint64_t key;
	spd_wbuf body;
};

static void outq_pop(spd_wire_outq *q)
{
	spd_wire_frame *f = q->head;

	q->head = f->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->bytes -= f->body.len + sizeof *f;
	spd_wbuf_release(&f->body);
	free(f);
}

int spd_wire_outq_send(spd_wire_outq *q, int fd, uint32_t type, uint64_t key, spd_wbuf *body)
{
	spd_wire_frame *f;
	int rc = -EAGAIN;

	if (q->head == NULL)
		rc = spd_wire_send_nonblock(fd, type, key, body);
	if (rc != -EAGAIN) {
		spd_wbuf_release(body);
		return rc;
	}
	f = calloc(1, sizeof *f);
	if (f == NULL) {
		while (q->head != NULL) {
			spd_wire_send(fd, q->head->type, q->head->key, &q->head->body);
			outq_pop(q);
		}
		rc = spd_wire_send(fd, type, key, body);
		spd_wbuf_release(body);
		return rc;
	}
	f->type = type;
	f->key = key;
	f->body = *body;
	*body = (spd_wbuf)SPD_WBUF_INIT;
	if (q->tail != NULL)
		q->tail->next = f;
	else
		q->head = f;
	q->tail = f;
	q->bytes += f->body.len + sizeof *f;
	return 0;
}

int spd_wire_outq_flush(spd_wire_outq *q, int fd)
{
	while (q->head != NULL) {
		int rc = spd_wire_send_nonblock(fd, q->head->type, q->head->key, &q->head->body);
		if (rc == -EAGAIN)
			return 0;
		outq_pop(q);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void spd_wire_outq_release(spd_wire_outq *q)
{
	while (q->head != NULL)
		outq_pop(q);
}
