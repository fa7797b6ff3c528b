/* Units and paths: sizes, durations, file modes, escaped text and path
 * resolution. Pure functions of their arguments; no YAML here. */
#include "service/config/config_impl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Strings                                                                  */
/* ------------------------------------------------------------------------ */

void spd__cfg_printf(char *dst, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, size, fmt, ap);
	va_end(ap);
}

char *spd__cfg_strndup(const char *s, size_t len)
{
	char *d = malloc(len + 1);

	if (d == NULL)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

void spd__cfg_escape(char *dst, size_t size, const char *s, size_t len, size_t max)
{
	size_t o = 0;
	bool cut = len > max;

	if (cut)
		len = max;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		size_t need = c >= 0x20 && c < 0x7f ? (c == '"' || c == '\\' ? 2 : 1) : 4;

		if (o + need + 4 > size) {
			cut = true;
			break;
		}
		if (need == 1) {
			dst[o++] = (char)c;
		} else if (need == 2) {
			dst[o++] = '\\';
			dst[o++] = (char)c;
		} else {
			snprintf(dst + o, size - o, "\\x%02x", c);
			o += 4;
		}
	}
	if (cut && o + 4 <= size) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
}
/* ------------------------------------------------------------------------ */
/* Paths                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Appends the path components of `s` (len bytes) to buf (holding *n bytes),
 * dropping empty and "." components. ".." is kept: resolving it lexically would
 * be wrong when a component is a symlink.
 */
static void path_append(char *buf, size_t *n, const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t start, clen;

		while (i < len && s[i] == '/')
			i++;
		start = i;
		while (i < len && s[i] != '/')
			i++;
		clen = i - start;
		if (clen == 0 || (clen == 1 && s[start] == '.'))
			continue;
		buf[(*n)++] = '/';
		memcpy(buf + *n, s + start, clen);
		*n += clen;
	}
}

int spd__cfg_path_join(const char *dir, const char *rel, size_t len, char **out)
{
	size_t dlen = len > 0 && rel[0] == '/' ? 0 : strlen(dir);
	size_t n = 0;
	char *buf;

	if (dlen + len + 2 > PATH_MAX)
		return -ENAMETOOLONG;
	buf = malloc(dlen + len + 2);
	if (buf == NULL)
		return -ENOMEM;
	path_append(buf, &n, dir, dlen);
	path_append(buf, &n, rel, len);
	if (n == 0)
		buf[n++] = '/';
	buf[n] = '\0';
	*out = buf;
	return 0;
}

/* The current directory, malloc()ed. */
static int path_cwd(char **out)
{
	char *buf = malloc(PATH_MAX);

	if (buf == NULL)
		return -ENOMEM;
	if (getcwd(buf, PATH_MAX) == NULL) {
		int r = -errno;

		free(buf);
		return r;
	}
	*out = buf;
	return 0;
}

int spd__cfg_absolute_dir(const char *dir, size_t len, char **out)
{
	char *cwd = NULL;
	int r;

	if (dir != NULL && len > 0 && dir[0] == '/')
		return spd__cfg_path_join("/", dir, len, out);
	r = path_cwd(&cwd);
	if (r == 0)
		r = spd__cfg_path_join(cwd, dir != NULL ? dir : "", dir != NULL ? len : 0, out);
	free(cwd);
	return r;
}

/* ------------------------------------------------------------------------ */
/* Numbers with units                                                       */
/* ------------------------------------------------------------------------ */

const struct unit spd__cfg_size_units[] = {
	{"B", 1}, {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30},
	{NULL, 0},
};

const struct unit spd__cfg_duration_units[] = {
	{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000},
	{NULL, 0},
};

enum num_status spd__cfg_num_parse(const char *s, const struct unit *units, uint64_t max,
				   uint64_t *out)
{
	const char *p = s;
	uint64_t v = 0, factor = 1;
	bool negative = false, big = false;

	if (*p == '-') {
		negative = true;
		p++;
	}
	if (*p < '0' || *p > '9')
		return NUM_BAD;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			big = true;
		else
			v = v * 10 + d;
	}
	if (*p != '\0') {
		const struct unit *u = units;

		while (u != NULL && u->name != NULL && strcmp(p, u->name) != 0)
			u++;
		if (u == NULL || u->name == NULL)
			return NUM_BAD;
		factor = u->factor;
	}
	if (negative)
		return NUM_NEGATIVE;
	if (units != NULL && *p == '\0' && (v != 0 || big))
		return NUM_NO_UNIT;
	if (big || v > max / factor)
		return NUM_TOO_LARGE;
	*out = v * factor;
	return NUM_OK;
}

int spd_config_parse_size(const char *s, uint64_t *out)
{
	uint64_t v;

	if (s == NULL || out == NULL || spd__cfg_num_parse(s, spd__cfg_size_units, UINT64_MAX, &v) != NUM_OK)
		return -EINVAL;
	*out = v;
	return 0;
}

int spd_config_parse_duration_ms(const char *s, int64_t *out)
{
	uint64_t v;

	if (s == NULL || out == NULL || spd__cfg_num_parse(s, spd__cfg_duration_units, INT64_MAX, &v) != NUM_OK)
		return -EINVAL;
	*out = (int64_t)v;
	return 0;
}

void spd__cfg_num_format(char *buf, size_t size, uint64_t v, const struct unit *units)
{
	const struct unit *best = NULL;

	for (const struct unit *u = units; u != NULL && u->name != NULL; u++)
		if (v % u->factor == 0)
			best = u;
	if (best == NULL)
		spd__cfg_printf(buf, size, "%llu", (unsigned long long)v);
	else
		spd__cfg_printf(buf, size, "%llu%s", (unsigned long long)(v / best->factor), best->name);
}

bool spd__cfg_mode_parse(const char *s, size_t len, unsigned max, unsigned *out)
{
	unsigned v = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '7')
			return false;
		v = v * 8 + (unsigned)(s[i] - '0');
	}
	if (len < 1 || len > 4 || v > max)
		return false;
	*out = v;
	return true;
}
