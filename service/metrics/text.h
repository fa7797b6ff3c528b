/* The Prometheus text exposition format, version 0.0.4: a growable output
 * buffer and the few lexical rules of the format (escaping of HELP text and
 * label values, how a sample value is written). No metric knowledge here:
 * family.c writes families with it.
 *
 * Format reference: https://prometheus.io/docs/instrumenting/exposition_formats/
 *   # HELP NAME TEXT        TEXT escapes '\' and newline
 *   # TYPE NAME counter|gauge|histogram
 *   NAME{LABEL="VALUE",...} VALUE     VALUE escapes '\', '"' and newline
 * Sample values are Go floats: "+Inf", "-Inf", "NaN" or a decimal number.
 *
 * Thread: a buffer belongs to one thread at a time.
 */
#ifndef SPAWND_METRICS_TEXT_H
#define SPAWND_METRICS_TEXT_H

#include <stddef.h>

/* Content-Type of a /metrics answer in this format. */
#define SPD_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* An output buffer. ERR is set (-ENOMEM) once an append failed, and every later
 * append is then a no-op: check it once at the end. DATA is NUL-terminated
 * while ERR is 0; the caller owns it (free(), or spd_mbuf_release). */
typedef struct spd_mbuf {
	char *data;
	size_t len, cap;
	int err;
} spd_mbuf;

#define SPD_MBUF_INIT {NULL, 0, 0, 0}

void spd_mbuf_append(spd_mbuf *b, const char *s, size_t n);
void spd_mbuf_puts(spd_mbuf *b, const char *s);
void spd_mbuf_printf(spd_mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void spd_mbuf_release(spd_mbuf *b);

/* Appends S as the text of a HELP line ('\' -> "\\", newline -> "\n"). */
void spd_mbuf_help_text(spd_mbuf *b, const char *s);

/* Appends S as a label value, without the quotes ('\', '"', newline escaped). */
void spd_mbuf_label_value(spd_mbuf *b, const char *s);

/* Appends V as a sample value: integers (below 2^53) without a fraction or an
 * exponent, "+Inf", "-Inf", "NaN", else the shortest of %.15g / %.17g that
 * reads back as V. */
void spd_mbuf_value(spd_mbuf *b, double v);

#endif
