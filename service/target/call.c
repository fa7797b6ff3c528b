#include "service/target/call.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "service/target/channel.h"

struct spawnd_call {
	const spd_call_args *args;
	uint64_t result_bytes;
	int raised;        /* a RAISE or OOM record was written */
	int too_large;
};

int spd_channel_write(int fd, int type, const void *data, size_t len)
{
	unsigned char hdr[SPD_CHANNEL_HDR_LEN];
	uint32_t n = (uint32_t)len;
	const unsigned char *p;
	size_t left;

	if (len > SPD_CHANNEL_MAX_RECORD)
		return -EMSGSIZE;
	hdr[0] = (unsigned char)type;
	memcpy(hdr + 1, &n, sizeof n);
	/* Header and payload are written separately: the reader reassembles. */
	for (int part = 0; part < 2; part++) {
		p = part == 0 ? hdr : data;
		left = part == 0 ? sizeof hdr : len;
		while (left > 0) {
			ssize_t w = write(fd, p, left);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			p += w;
			left -= (size_t)w;
		}
	}
	return 0;
}

int spawnd_argc(const spawnd_call *call)
{
	return call->args->argc;
}

const char *const *spawnd_argv(const spawnd_call *call)
{
	return call->args->argv;
}

const void *spawnd_input(const spawnd_call *call, size_t *len)
{
	*len = call->args->input_len;
	return call->args->input != NULL ? call->args->input : "";
}

const char *spawnd_process_id(const spawnd_call *call)
{
	return call->args->process_id;
}

const char *spawnd_label(const spawnd_call *call, const char *key)
{
	const char *const *l = call->args->labels;

	for (; l != NULL && l[0] != NULL && l[1] != NULL; l += 2)
		if (strcmp(l[0], key) == 0)
			return l[1];
	return NULL;
}

uint64_t spawnd_memory_limit(const spawnd_call *call)
{
	return call->args->memory_limit;
}

int spawnd_result_write(spawnd_call *call, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t max = call->args->max_result_bytes;
	int rc;

	if (call->too_large)
		return -EFBIG;
	if (max != 0 && (len > max || call->result_bytes > max - len)) {
		call->too_large = 1;
		spd_channel_write(call->args->channel_fd, SPD_CHAN_TOO_LARGE, NULL, 0);
		return -EFBIG;
	}
	while (len > 0) {
		size_t n = len < SPD_CHANNEL_MAX_RECORD ? len : SPD_CHANNEL_MAX_RECORD;
		rc = spd_channel_write(call->args->channel_fd, SPD_CHAN_RESULT, p, n);
		if (rc < 0)
			return rc;
		call->result_bytes += n;
		p += n;
		len -= n;
	}
	return 0;
}

/* Appends S (at most MAX bytes, cut on a UTF-8 character boundary) and a NUL. */
static size_t put_field(char *buf, size_t off, const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(buf + off, s, n);
	buf[off + n] = '\0';
	return off + n + 1;
}

static int raise_v(spawnd_call *call, const char *type, const char *backtrace,
		   const char *fmt, va_list ap)
{
	static char msg[SPD_RAISE_MESSAGE_MAX + 1];
	static char rec[SPD_RAISE_TYPE_MAX + SPD_RAISE_MESSAGE_MAX +
			SPD_RAISE_BACKTRACE_MAX + 3];
	size_t off = 0;

	if (call->raised)
		return 1;
	call->raised = 1;
	vsnprintf(msg, sizeof msg, fmt, ap);
	off = put_field(rec, off, type != NULL && *type ? type : "Error", SPD_RAISE_TYPE_MAX);
	off = put_field(rec, off, msg, SPD_RAISE_MESSAGE_MAX);
	off = put_field(rec, off, backtrace != NULL ? backtrace : "", SPD_RAISE_BACKTRACE_MAX);
	spd_channel_write(call->args->channel_fd, SPD_CHAN_RAISE, rec, off);
	return 1;
}

int spawnd_raise(spawnd_call *call, const char *type, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = raise_v(call, type, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

int spawnd_raise_with_backtrace(spawnd_call *call, const char *type,
				const char *backtrace, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = raise_v(call, type, backtrace, fmt, ap);
	va_end(ap);
	return rc;
}

int spawnd_oom(spawnd_call *call)
{
	if (!call->raised) {
		call->raised = 1;
		spd_channel_write(call->args->channel_fd, SPD_CHAN_OOM, NULL, 0);
	}
	return 1;
}

int spd_call_run(spawnd_fn fn, const spd_call_args *args)
{
	struct spawnd_call call = {.args = args};
	int rc;

	rc = fn(&call);
	fflush(NULL);
	if (call.raised || call.too_large)
		return 1;
	if (rc == 0)
		return 0;
	return (rc & 255) != 0 ? rc & 255 : 1;
}
