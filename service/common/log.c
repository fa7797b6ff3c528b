#include "service/common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = SPD_LOG_INFO;  /* a reload changes them while threads log */
static _Atomic int log_json = 1;
static const char *log_proc = "spawnd";

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void spd_log_setup(int level, int json, const char *proc)
{
	log_level = level;
	log_json = json;
	if (proc != NULL)
		log_proc = proc;
}

int spd_log_enabled(int level)
{
	return level <= log_level;
}

typedef struct {
	char buf[4096];
	size_t len;
} line;

static void put(line *l, const char *s, size_t n)
{
	if (n > sizeof l->buf - 2 - l->len)
		n = sizeof l->buf - 2 - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void putf(line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(line *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, sizeof l->buf - 2 - l->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len += (size_t)n < sizeof l->buf - 2 - l->len ? (size_t)n : sizeof l->buf - 2 - l->len;
}

/* A JSON string body: quotes, backslashes and control bytes escaped. */
static void put_json(line *l, const char *s)
{
	for (; s != NULL && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			put(l, e, 2);
		} else if (c < 0x20) {
			putf(l, "\\u%04x", c);
		} else {
			put(l, (const char *)&c, 1);
		}
	}
}

void spd_log(int level, const char *msg, ...)
{
	line l = {.len = 0};
	struct timespec ts;
	struct tm tm;
	char when[40];
	va_list ap;
	int type;

	if (!spd_log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_json) {
		putf(&l, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"proc\":\"%s\",\"msg\":\"",
		     when, ts.tv_nsec / 1000000, level_names[level], log_proc);
		put_json(&l, msg);
		put(&l, "\"", 1);
	} else {
		putf(&l, "%s.%03ldZ %-5s %s: %s", when, ts.tv_nsec / 1000000,
		     level_names[level], log_proc, msg);
	}
	va_start(ap, msg);
	while ((type = va_arg(ap, int)) != SPD_LOG_END) {
		const char *key = va_arg(ap, const char *);
		const char *str = type == 's' ? va_arg(ap, const char *) : NULL;
		if (type == 's' && str == NULL)
			continue; /* a string field without a value is left out */
		if (log_json) {
			putf(&l, ",\"%s\":", key);
			if (type == 's') {
				put(&l, "\"", 1);
				put_json(&l, str);
				put(&l, "\"", 1);
			} else {
				putf(&l, "%lld", (long long)va_arg(ap, int64_t));
			}
		} else if (type == 's') {
			putf(&l, " %s=%s", key, str);
		} else {
			putf(&l, " %s=%lld", key, (long long)va_arg(ap, int64_t));
		}
	}
	va_end(ap);
	if (log_json)
		put(&l, "}", 1);
	l.buf[l.len++] = '\n';
	(void)!write(STDERR_FILENO, l.buf, l.len);
}
