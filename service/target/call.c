#include "service/target/call.h"

#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- crash handler -------------------------------------------------------- */

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};

/* Writes a native backtrace to stderr, then dies of the same signal, so that the
 * process's stderr_tail shows where it crashed and its status stays truthful.
 * Only async-signal-safe calls, given that backtrace() was warmed up (its first
 * call may load libgcc_s). */
static void on_crash(int sig)
{
	static const char head[] = "\n*** spawnd: fatal signal in target function; backtrace:\n";
	void *frames[64];
	int n;

	(void)!write(STDERR_FILENO, head, sizeof head - 1);
	n = backtrace(frames, 64);
	backtrace_symbols_fd(frames, n, STDERR_FILENO);
	signal(sig, SIG_DFL);
	raise(sig);
	_exit(128 + sig); /* not reached for a default-fatal signal */
}

void spd_call_warm_up(void)
{
	void *frame;

	backtrace(&frame, 1);
}

static void install_crash_handler(void)
{
	static char altstack[64 * 1024];
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
	struct sigaction sa;

	/* A stack overflow must still reach the handler. */
	sigaltstack(&ss, NULL);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_crash;
	sa.sa_flags = SA_ONSTACK | SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++)
		sigaction(crash_signals[i], &sa, NULL);
}

int spd_call_run(spawnd_fn fn, const spd_call_args *args)
{
	struct spawnd_call call = {.args = args};
	int rc;

	install_crash_handler();
	rc = fn(&call);
	fflush(NULL);
	if (call.raised || call.too_large)
		return 1;
	if (rc == 0)
		return 0;
	return (rc & 255) != 0 ? rc & 255 : 1;
}
