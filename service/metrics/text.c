/* The text exposition format: see text.h. */
#include "service/metrics/text.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int grow(spd_mbuf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->err != 0)
		return -1;
	if (b->len + more + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more + 1) {
		if (cap > (size_t)-1 / 2) {
			b->err = -ENOMEM;
			return -1;
		}
		cap *= 2;
	}
	p = realloc(b->data, cap);
	if (p == NULL) {
		b->err = -ENOMEM;
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

void spd_mbuf_append(spd_mbuf *b, const char *s, size_t n)
{
	if (grow(b, n) < 0)
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void spd_mbuf_puts(spd_mbuf *b, const char *s)
{
	spd_mbuf_append(b, s, strlen(s));
}

void spd_mbuf_printf(spd_mbuf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = b->err ? b->err : -EINVAL;
		return;
	}
	if ((size_t)n < sizeof small) {
		spd_mbuf_append(b, small, (size_t)n);
		return;
	}
	if (grow(b, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void spd_mbuf_release(spd_mbuf *b)
{
	free(b->data);
	*b = (spd_mbuf)SPD_MBUF_INIT;
}

/* Appends S with '\' and newline escaped, and '"' too when QUOTE. */
static void escaped(spd_mbuf *b, const char *s, int quote)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *rep = NULL;
		if (*s == '\\')
			rep = "\\\\";
		else if (*s == '\n')
			rep = "\\n";
		else if (quote && *s == '"')
			rep = "\\\"";
		if (rep == NULL)
			continue;
		spd_mbuf_append(b, run, (size_t)(s - run));
		spd_mbuf_puts(b, rep);
		run = s + 1;
	}
	spd_mbuf_append(b, run, (size_t)(s - run));
}

void spd_mbuf_help_text(spd_mbuf *b, const char *s)
{
	escaped(b, s, 0);
}

void spd_mbuf_label_value(spd_mbuf *b, const char *s)
{
	escaped(b, s, 1);
}

void spd_mbuf_value(spd_mbuf *b, double v)
{
	char s[40];

	if (isnan(v)) {
		spd_mbuf_puts(b, "NaN");
		return;
	}
	if (isinf(v)) {
		spd_mbuf_puts(b, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == floor(v) && fabs(v) < 9007199254740992.0) {
		spd_mbuf_printf(b, "%.0f", v);
		return;
	}
	snprintf(s, sizeof s, "%.15g", v);
	if (strtod(s, NULL) != v)
		snprintf(s, sizeof s, "%.17g", v);
	spd_mbuf_puts(b, s);
}
