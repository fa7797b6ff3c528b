/* Strings a child supplies are made valid UTF-8 before they reach a client
 * (SPEC §11). Pure, any thread. */
#ifndef SPAWND_COMMON_UTF8_H
#define SPAWND_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* A new NUL-terminated copy of the first LEN bytes of S with every invalid
 * sequence replaced by U+FFFD, cut on a character boundary so that it holds at
 * most MAX bytes. NULL only when out of memory. The caller frees it. */
char *spd_utf8_sanitize(const char *s, size_t len, size_t max);

/* Whether the LEN bytes at S are valid UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF). NUL is a valid character here: callers that
 * refuse it check for it themselves. */
bool spd_utf8_valid(const char *s, size_t len);

#endif
