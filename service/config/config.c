#include "service/config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <yaml.h>

#include "service/common/address.h"
#include "service/common/signame.h"

/*
 * Bounds. The loader is fed untrusted text (and fuzzed), so everything it reads
 * or builds has a ceiling. Aliases are the subtle one: libyaml resolves `*x` to
 * a second reference to the anchored node, so a small file can describe a huge
 * (even cyclic) tree. Every node visit is charged against a budget, weighted by
 * the bytes it may copy, which bounds both time and memory.
 */
#define CONFIG_FILE_MAX		(1u << 20)	/* bytes of YAML */
#define CONFIG_BUDGET		(32u << 20)	/* node visits: 8 + scalar bytes each */
#define CONFIG_FLOW_MAX		32		/* nesting of [ ] and { } */
#define CONFIG_ANCHORS_MAX	256
#define CONFIG_FEED_CHUNK	64		/* bytes handed to libyaml at a time */
#define CONFIG_SCALAR_MAX	65536		/* bytes of one string */
#define CONFIG_TARGETS_MAX	4096
#define CONFIG_LISTEN_MAX	64
#define CONFIG_ARGV_MAX		1024		/* the request's own cap on args (SPEC §3) */
#define CONFIG_ENV_MAX		1024
#define CONFIG_NAME_MAX		256		/* target names (SPEC §3) */
#define CONFIG_SYMBOL_MAX	1024
#define CONFIG_KEY_MAX		256		/* dotted key path in a message */
#define CONFIG_SHOW_MAX		64		/* bytes of a bad value echoed in a message */
#define CONFIG_SIZE_MAX		(1ULL << 50)	/* 1 PiB: any memory_limit */
#define CONFIG_MSG_MAX		INT_MAX		/* what a gRPC/protobuf message can carry */
#define CONFIG_DURATION_MAX	(87600LL * 3600 * 1000)	/* ten years, in ms */

#define UNKNOWN_KEY 1	/* a key handler's "not mine" */

#define STR_(x) #x
#define STR(x) STR_(x)

/* ------------------------------------------------------------------------ */
/* Strings, string vectors, paths                                           */
/* ------------------------------------------------------------------------ */

/* snprintf() for messages, which are cut at their buffer's size on purpose. */
static void str_printf(char *dst, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void str_printf(char *dst, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, size, fmt, ap);
	va_end(ap);
}

static char *str_dup(const char *s, size_t len)
{
	char *d = malloc(len + 1);

	if (d == NULL)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

static void strv_free(char **v)
{
	if (v == NULL)
		return;
	for (char **p = v; *p != NULL; p++)
		free(*p);
	free(v);
}

/*
 * Copies user text into a message buffer: at most `max` bytes of it, with every
 * byte outside printable ASCII (and quotes and backslashes) escaped, so that no
 * input can break the one-line message format. Appends "..." when cut.
 */
static void text_escape(char *dst, size_t size, const char *s, size_t len, size_t max)
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

/*
 * Joins `rel` (len bytes) to the absolute directory `dir` into a new absolute,
 * tidied path; an absolute `rel` ignores `dir`. Returns 0, -ENAMETOOLONG when
 * the result would not fit PATH_MAX, or -ENOMEM.
 */
static int path_join(const char *dir, const char *rel, size_t len, char **out)
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

/* `dir` made absolute against the current directory (NULL: the current one). */
static int path_absolute_dir(const char *dir, size_t len, char **out)
{
	char *cwd = NULL;
	int r;

	if (dir != NULL && len > 0 && dir[0] == '/')
		return path_join("/", dir, len, out);
	r = path_cwd(&cwd);
	if (r == 0)
		r = path_join(cwd, dir != NULL ? dir : "", dir != NULL ? len : 0, out);
	free(cwd);
	return r;
}

/* ------------------------------------------------------------------------ */
/* Numbers with units                                                       */
/* ------------------------------------------------------------------------ */

enum num_status {
	NUM_OK,
	NUM_BAD,		/* not a number, or an unknown unit */
	NUM_NEGATIVE,
	NUM_NO_UNIT,		/* a bare non-zero number where a unit is needed */
	NUM_TOO_LARGE,
};

struct unit {
	const char *name;
	uint64_t factor;
};

static const struct unit size_units[] = {
	{"B", 1}, {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30},
	{NULL, 0},
};

static const struct unit duration_units[] = {
	{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000},
	{NULL, 0},
};

/*
 * "DIGITS[UNIT]" -> DIGITS * factor(UNIT), at most `max`. units == NULL: a plain
 * integer. With units, a unit is required unless the number is 0.
 */
static enum num_status num_parse(const char *s, const struct unit *units, uint64_t max,
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

	if (s == NULL || out == NULL || num_parse(s, size_units, UINT64_MAX, &v) != NUM_OK)
		return -EINVAL;
	*out = v;
	return 0;
}

int spd_config_parse_duration_ms(const char *s, int64_t *out)
{
	uint64_t v;

	if (s == NULL || out == NULL || num_parse(s, duration_units, INT64_MAX, &v) != NUM_OK)
		return -EINVAL;
	*out = (int64_t)v;
	return 0;
}

/* v in the largest unit that divides it exactly: "4MiB", "90s". */
static void num_format(char *buf, size_t size, uint64_t v, const struct unit *units)
{
	const struct unit *best = NULL;

	for (const struct unit *u = units; u != NULL && u->name != NULL; u++)
		if (v % u->factor == 0)
			best = u;
	if (best == NULL)
		str_printf(buf, size, "%llu", (unsigned long long)v);
	else
		str_printf(buf, size, "%llu%s", (unsigned long long)(v / best->factor), best->name);
}

/* ------------------------------------------------------------------------ */
/* The loader: error messages and node access                               */
/* ------------------------------------------------------------------------ */

enum limit_index {
	LIMIT_START_METHOD,
	LIMIT_DESTROY_GRACE,
	LIMIT_STOP_SIGNAL,
	LIMIT_TIMEOUT,
	LIMIT_MAX_CONCURRENT,
	LIMIT_MAX_RESULT,
	LIMIT_MAX_OUTPUT,
	LIMIT_MEMORY,
	LIMIT_CPU_TIME,
	LIMIT_OPEN_FILES,
	LIMIT_ZYGOTE_START,
	LIMIT_ZYGOTE_WAIT,
	LIMIT_COUNT
};

/* What the loader remembers about one target beyond its spd_target_config. */
struct target_seen {
	yaml_node_t *limits_set[LIMIT_COUNT];	/* value node of each key given */
};

struct loader {
	char name[CONFIG_KEY_MAX];	/* the file name, escaped for messages */
	const char *dir;		/* absolute, for relative paths */
	char *err;
	yaml_document_t doc;
	size_t budget;
	spd_config *cfg;

	yaml_node_t *max_running;	/* its value node, when the file sets it */
	yaml_node_t *defaults_set[LIMIT_COUNT];
	struct target_seen *seen;	/* one per cfg->targets entry */
};

/* One key/value pair of a mapping, as handed to a key handler. */
struct pair {
	yaml_node_t *key, *value;
	const char *name;		/* the key's text, NUL-free */
	size_t len;
	const char *path;		/* dotted path of the key */
	const char *parent;		/* dotted path of the mapping */
};

static int loader_fail(struct loader *ld, const yaml_node_t *node, const char *path,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int loader_fail(struct loader *ld, const yaml_node_t *node, const char *path,
		       const char *fmt, ...)
{
	char msg[SPD_CONFIG_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	str_printf(ld->err, SPD_CONFIG_ERR_MAX, "%s:%zu:%zu: %s: %s", ld->name,
		   node->start_mark.line + 1, node->start_mark.column + 1,
		   path[0] != '\0' ? path : "top level", msg);
	return -EINVAL;
}

static int loader_errno(struct loader *ld, int r)
{
	char buf[128];

	str_printf(ld->err, SPD_CONFIG_ERR_MAX, "%s: %s", ld->name,
		   strerror_r(-r, buf, sizeof buf));
	return r;
}

/* Line and column (1-based) of byte `offset` of the text, for reader errors,
 * which libyaml reports as an offset only. Columns count UTF-8 characters. */
static void text_position(const char *text, size_t len, size_t offset, size_t *line,
			  size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < offset && i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '\n' || (c == '\r' && (i + 1 >= len || text[i + 1] != '\n'))) {
			(*line)++;
			*col = 1;
		} else if ((c & 0xc0) != 0x80 && c != '\r') {
			(*col)++;
		}
	}
}

/*
 * libyaml 0.2.5 has no limits of its own, and two of its costs grow
 * quadratically: the scanner walks its stack of possible simple keys, one per
 * open flow collection, for every token ("[[[[..." of 1 MiB takes minutes), and
 * the composer compares every new anchor with all earlier ones. Feeding it the
 * text in small chunks lets us look at its state between chunks and stop such an
 * input early: the scanner is never more than a chunk ahead of the check.
 * flow_level and aliases are fields of yaml_parser_t that yaml.h shows but does
 * not document; reading them is the price of not forking libyaml.
 */
struct feed {
	yaml_parser_t *parser;
	const char *text;
	size_t len, pos;
	const char *stop;	/* why feeding stopped, or NULL */
	yaml_mark_t mark;	/* where */
};

static int feed_read(void *data, unsigned char *buf, size_t size, size_t *got)
{
	struct feed *f = data;
	const yaml_parser_t *p = f->parser;
	size_t n = f->len - f->pos;

	if (p->flow_level > CONFIG_FLOW_MAX)
		f->stop = "[ ] and { } nested too deeply (max " STR(CONFIG_FLOW_MAX) ")";
	else if (p->aliases.top - p->aliases.start > CONFIG_ANCHORS_MAX)
		f->stop = "too many anchors (max " STR(CONFIG_ANCHORS_MAX) ")";
	if (f->stop != NULL) {
		f->mark = p->mark;
		return 0;
	}
	if (n > size)
		n = size;
	if (n > CONFIG_FEED_CHUNK)
		n = CONFIG_FEED_CHUNK;
	memcpy(buf, f->text + f->pos, n);
	f->pos += n;
	*got = n;
	return 1;
}

static int loader_yaml_error(struct loader *ld, const yaml_parser_t *parser,
			     const struct feed *feed)
{
	size_t line = parser->problem_mark.line + 1, col = parser->problem_mark.column + 1;
	const char *problem = parser->problem != NULL ? parser->problem : "unknown error";
	char context[160] = "";

	if (feed->stop != NULL) {
		line = feed->mark.line + 1;
		col = feed->mark.column + 1;
		problem = feed->stop;
	} else if (parser->error == YAML_MEMORY_ERROR) {
		return loader_errno(ld, -ENOMEM);
	} else if (parser->error == YAML_READER_ERROR) {
		text_position(feed->text, feed->len, parser->problem_offset, &line, &col);
	} else if (parser->context != NULL) {
		str_printf(context, sizeof context, " (%s at %zu:%zu)", parser->context,
			   parser->context_mark.line + 1, parser->context_mark.column + 1);
	}
	str_printf(ld->err, SPD_CONFIG_ERR_MAX, "%s:%zu:%zu: syntax error: %s%s", ld->name,
		   line, col, problem, context);
	return -EINVAL;
}

/* PARENT.NAME, with NAME escaped and cut; an empty NAME shows as "". */
static void path_child(char *dst, size_t size, const char *parent, const char *name,
		       size_t len)
{
	char esc[CONFIG_KEY_MAX / 2] = "\"\"";

	if (len > 0)
		text_escape(esc, sizeof esc, name, len, 100);
	str_printf(dst, size, "%s%s%s", parent, *parent ? "." : "", esc);
}

static void path_index(char *dst, size_t size, const char *parent, size_t i)
{
	str_printf(dst, size, "%s[%zu]", parent, i);
}

/* Node `index`, charged against the budget. `from` and `path` place the error. */
static int loader_node(struct loader *ld, int index, const yaml_node_t *from,
		       const char *path, yaml_node_t **out)
{
	yaml_node_t *node = yaml_document_get_node(&ld->doc, index);
	size_t cost;

	if (node == NULL)
		return loader_fail(ld, from, path, "broken YAML document");
	cost = 8 + (node->type == YAML_SCALAR_NODE ? node->data.scalar.length : 0);
	if (cost > ld->budget)
		return loader_fail(ld, node, path, "too large once aliases are expanded");
	ld->budget -= cost;
	*out = node;
	return 0;
}

static bool node_is_null(const yaml_node_t *node)
{
	const char *s;

	if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = (const char *)node->data.scalar.value;
	return strcmp(s, "") == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	       strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static const char *node_kind(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "a string";
	}
}

/* Fails unless node is of `type`; `what` names the expected thing. */
static int loader_expect(struct loader *ld, const yaml_node_t *node, const char *path,
			 yaml_node_type_t type, const char *what)
{
	if (node_is_null(node))
		return loader_fail(ld, node, path, "missing value");
	if (node->type != type)
		return loader_fail(ld, node, path, "expected %s, got %s", what, node_kind(node));
	return 0;
}

/* The text of a scalar node: not null, no NUL byte, bounded. */
static int loader_scalar(struct loader *ld, const yaml_node_t *node, const char *path,
			 const char *what, const char **s, size_t *len)
{
	int r = loader_expect(ld, node, path, YAML_SCALAR_NODE, what);

	if (r < 0)
		return r;
	*s = (const char *)node->data.scalar.value;
	*len = node->data.scalar.length;
	if (strlen(*s) != *len)
		return loader_fail(ld, node, path, "contains a NUL byte");
	if (*len > CONFIG_SCALAR_MAX)
		return loader_fail(ld, node, path, "too long (max %d bytes)", CONFIG_SCALAR_MAX);
	return 0;
}

/* A scalar copied into a new string; min_len 1 refuses "". */
static int loader_string(struct loader *ld, const yaml_node_t *node, const char *path,
			 size_t min_len, size_t max_len, char **out)
{
	const char *s;
	size_t len;
	int r = loader_scalar(ld, node, path, "a string", &s, &len);

	if (r < 0)
		return r;
	if (len < min_len)
		return loader_fail(ld, node, path, "must not be empty");
	if (len > max_len)
		return loader_fail(ld, node, path, "too long (max %zu bytes)", max_len);
	*out = str_dup(s, len);
	return *out == NULL ? loader_errno(ld, -ENOMEM) : 0;
}

/* A path, resolved against the config file's directory. */
static int loader_path(struct loader *ld, const yaml_node_t *node, const char *path,
		       char **out)
{
	const char *s;
	size_t len;
	int r = loader_scalar(ld, node, path, "a path", &s, &len);

	if (r < 0)
		return r;
	if (len == 0)
		return loader_fail(ld, node, path, "must not be empty");
	r = path_join(ld->dir, s, len, out);
	if (r == -ENAMETOOLONG)
		return loader_fail(ld, node, path, "path too long (max %d bytes)", PATH_MAX - 1);
	return r < 0 ? loader_errno(ld, r) : 0;
}

typedef int (*pair_fn)(struct loader *ld, const struct pair *p, void *arg);

struct keyref {
	const char *s;
	size_t len;
	size_t index;
};

static int keyref_cmp(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);

	if (c != 0)
		return c;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Marks in dup[] every pair whose key repeats an earlier one. Sorting keeps this
 * O(n log n): user mappings (targets, env) may be large and aliased.
 */
static int mapping_find_dups(struct loader *ld, const yaml_node_t *map, const char *path,
			     size_t n, bool *dup)
{
	struct keyref *refs = malloc(n * sizeof *refs);
	size_t m = 0;
	int r = 0;

	if (refs == NULL)
		return loader_errno(ld, -ENOMEM);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *key;

		r = loader_node(ld, map->data.mapping.pairs.start[i].key, map, path, &key);
		if (r < 0)
			goto out;
		if (key->type != YAML_SCALAR_NODE)
			continue;
		refs[m].s = (const char *)key->data.scalar.value;
		refs[m].len = key->data.scalar.length;
		refs[m].index = i;
		m++;
	}
	qsort(refs, m, sizeof *refs, keyref_cmp);
	for (size_t i = 1; i < m; i++)
		if (refs[i].len == refs[i - 1].len &&
		    memcmp(refs[i].s, refs[i - 1].s, refs[i].len) == 0)
			dup[refs[i].index] = true;
out:
	free(refs);
	return r;
}

/*
 * Calls fn for each pair of the mapping `map`, in file order. Keys must be
 * unique strings (`dup_what` names a repeat: "duplicate key"); a handler that
 * returns UNKNOWN_KEY makes it an "unknown key" error at the key.
 */
static int loader_each_pair(struct loader *ld, const yaml_node_t *map, const char *path,
			    size_t max, const char *dup_what, pair_fn fn, void *arg)
{
	size_t n;
	bool *dup = NULL;
	int r = loader_expect(ld, map, path, YAML_MAPPING_NODE, "a mapping");

	if (r < 0)
		return r;
	n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
	if (n > max)
		return loader_fail(ld, map, path, "too many entries (max %zu)", max);
	if (n == 0)
		return 0;
	dup = calloc(n, sizeof *dup);
	if (dup == NULL)
		return loader_errno(ld, -ENOMEM);
	r = mapping_find_dups(ld, map, path, n, dup);
	for (size_t i = 0; r == 0 && i < n; i++) {
		char child[CONFIG_KEY_MAX];
		struct pair p = {.path = child, .parent = path};

		r = loader_node(ld, map->data.mapping.pairs.start[i].key, map, path, &p.key);
		if (r < 0)
			break;
		if (p.key->type != YAML_SCALAR_NODE) {
			r = loader_fail(ld, p.key, path, "keys must be strings, got %s",
					node_kind(p.key));
			break;
		}
		p.name = (const char *)p.key->data.scalar.value;
		p.len = p.key->data.scalar.length;
		path_child(child, sizeof child, path, p.name, p.len);
		if (strlen(p.name) != p.len) {
			r = loader_fail(ld, p.key, child, "key contains a NUL byte");
			break;
		}
		if (dup[i]) {
			r = loader_fail(ld, p.key, child, "%s", dup_what);
			break;
		}
		r = loader_node(ld, map->data.mapping.pairs.start[i].value, p.key, child,
				&p.value);
		if (r < 0)
			break;
		r = fn(ld, &p, arg);
		if (r == UNKNOWN_KEY)
			r = loader_fail(ld, p.key, child, "unknown key");
	}
	free(dup);
	return r;
}

typedef int (*item_fn)(struct loader *ld, yaml_node_t *item, const char *path, size_t i,
		       void *arg);

/* Calls fn for each item of the list `seq` (already checked to be a list). */
static int loader_each_item(struct loader *ld, const yaml_node_t *seq, const char *path,
			    item_fn fn, void *arg)
{
	size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	int r = 0;

	for (size_t i = 0; r == 0 && i < n; i++) {
		char child[CONFIG_KEY_MAX];
		yaml_node_t *item;

		path_index(child, sizeof child, path, i);
		r = loader_node(ld, seq->data.sequence.items.start[i], seq, child, &item);
		if (r == 0)
			r = fn(ld, item, child, i, arg);
	}
	return r;
}

/* A list of at least min_items and at most max_items: its length, or an error. */
static int loader_list(struct loader *ld, const yaml_node_t *node, const char *path,
		       size_t min_items, size_t max_items, size_t *n)
{
	int r = loader_expect(ld, node, path, YAML_SEQUENCE_NODE, "a list");

	if (r < 0)
		return r;
	*n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	if (*n < min_items)
		return loader_fail(ld, node, path, "must not be empty");
	if (*n > max_items)
		return loader_fail(ld, node, path, "too many items (max %zu)", max_items);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Settings: scalar keys described by tables                                */
/* ------------------------------------------------------------------------ */

enum setting_type {
	SET_SIZE,		/* uint64_t, "512MiB" */
	SET_DURATION,		/* int64_t ms, "10s" */
	SET_U32,		/* uint32_t, plain integer */
	SET_U64,		/* uint64_t, plain integer */
	SET_BOOL,		/* bool, true | false */
	SET_SIGNAL,		/* int, spd_signal_parse() */
	SET_MODE,		/* unsigned, "0660" */
	SET_STRING,		/* char *, min = minimum length */
	SET_PATH,		/* char *, resolved against the config dir */
	SET_START_METHOD,	/* spd_start_method */
	SET_ZYGOTE_START,	/* spd_zygote_start */
	SET_LOG_FORMAT,		/* spd_log_format */
	SET_LOG_LEVEL,		/* spd_config_log_level */
};

struct setting {
	const char *key;
	enum setting_type type;
	size_t offset, size;	/* of the field in the struct the table describes */
	uint64_t min, max;	/* numbers; strings: length */
};

#define FIELD(type, member) offsetof(type, member), sizeof(((type *)0)->member)

struct name_value {
	const char *name;
	int value;
};

static const struct name_value start_methods[] = {
	{"fork", SPD_START_FORK}, {"forkserver", SPD_START_FORKSERVER},
	{"spawn", SPD_START_SPAWN}, {NULL, 0},
};

static const struct name_value zygote_starts[] = {
	{"boot", SPD_ZYGOTE_BOOT}, {"first_use", SPD_ZYGOTE_FIRST_USE}, {NULL, 0},
};

static const struct name_value log_formats[] = {
	{"json", SPD_LOG_FORMAT_JSON}, {"text", SPD_LOG_FORMAT_TEXT}, {NULL, 0},
};

static const struct name_value log_levels[] = {
	{"error", SPD_CONFIG_LOG_ERROR}, {"warn", SPD_CONFIG_LOG_WARN},
	{"info", SPD_CONFIG_LOG_INFO}, {"debug", SPD_CONFIG_LOG_DEBUG}, {NULL, 0},
};

/* `defaults:` and each target's overrides; indexed by enum limit_index. */
static const struct setting limit_settings[LIMIT_COUNT] = {
	[LIMIT_START_METHOD] = {"start_method", SET_START_METHOD,
				FIELD(spd_target_limits, start_method), 0, 0},
	[LIMIT_DESTROY_GRACE] = {"destroy_grace_period", SET_DURATION,
				 FIELD(spd_target_limits, destroy_grace_ms), 0, CONFIG_DURATION_MAX},
	[LIMIT_STOP_SIGNAL] = {"stop_signal", SET_SIGNAL,
			       FIELD(spd_target_limits, stop_signal), 0, 0},
	[LIMIT_TIMEOUT] = {"timeout", SET_DURATION,
			   FIELD(spd_target_limits, timeout_ms), 0, CONFIG_DURATION_MAX},
	[LIMIT_MAX_CONCURRENT] = {"max_concurrent", SET_U32,
				  FIELD(spd_target_limits, max_concurrent), 0, 65536},
	[LIMIT_MAX_RESULT] = {"max_result_bytes", SET_SIZE,
			      FIELD(spd_target_limits, max_result_bytes), 0, CONFIG_MSG_MAX},
	[LIMIT_MAX_OUTPUT] = {"max_output_bytes", SET_SIZE,
			      FIELD(spd_target_limits, max_output_bytes), 0, CONFIG_MSG_MAX},
	[LIMIT_MEMORY] = {"memory_limit", SET_SIZE,
			  FIELD(spd_target_limits, memory_limit), 0, CONFIG_SIZE_MAX},
	[LIMIT_CPU_TIME] = {"cpu_time_limit", SET_DURATION,
			    FIELD(spd_target_limits, cpu_time_limit_ms), 0, CONFIG_DURATION_MAX},
	[LIMIT_OPEN_FILES] = {"open_files_limit", SET_U64,
			      FIELD(spd_target_limits, open_files_limit), 0, 1 << 30},
	[LIMIT_ZYGOTE_START] = {"zygote_start", SET_ZYGOTE_START,
				FIELD(spd_target_limits, zygote_start), 0, 0},
	[LIMIT_ZYGOTE_WAIT] = {"zygote_wait", SET_DURATION,
			       FIELD(spd_target_limits, zygote_wait_ms), 0, CONFIG_DURATION_MAX},
};

static const struct setting top_settings[] = {
	{"unix_socket_mode", SET_MODE, FIELD(spd_config, unix_socket_mode), 0, 0777},
	{"max_running", SET_U32, FIELD(spd_config, max_running), 1, 65536},
	{"max_pending", SET_U32, FIELD(spd_config, max_pending), 0, 1 << 20},
	{"max_request_bytes", SET_SIZE, FIELD(spd_config, max_request_bytes), 1, CONFIG_MSG_MAX},
	{"shutdown_grace_period", SET_DURATION, FIELD(spd_config, shutdown_grace_ms), 0,
	 CONFIG_DURATION_MAX},
};

static const struct setting history_settings[] = {
	{"max_records", SET_U32, FIELD(spd_config, history_max_records), 0, 1 << 20},
	{"retention", SET_DURATION, FIELD(spd_config, history_retention_ms), 0,
	 CONFIG_DURATION_MAX},
};

static const struct setting log_settings[] = {
	{"format", SET_LOG_FORMAT, FIELD(spd_config, log_format), 0, 0},
	{"level", SET_LOG_LEVEL, FIELD(spd_config, log_level), 0, 0},
};

static const struct setting tls_settings[] = {
	{"cert", SET_PATH, FIELD(spd_config, tls_cert), 0, 0},
	{"key", SET_PATH, FIELD(spd_config, tls_key), 0, 0},
	{"client_ca", SET_PATH, FIELD(spd_config, tls_client_ca), 0, 0},
};

static const struct setting auth_settings[] = {
	{"tokens_file", SET_PATH, FIELD(spd_config, auth_tokens_file), 0, 0},
	{"protect_health", SET_BOOL, FIELD(spd_config, auth_protect_health), 0, 0},
};

/* A target's own scalar keys (function, exec, env and inherit_env are not scalars). */
static const struct setting target_settings[] = {
	{"description", SET_STRING, FIELD(spd_target_config, description), 0, CONFIG_SCALAR_MAX},
	{"allow_args", SET_BOOL, FIELD(spd_target_config, allow_args), 0, 0},
	{"cwd", SET_PATH, FIELD(spd_target_config, cwd), 0, 0},
	{"user", SET_STRING, FIELD(spd_target_config, user), 1, 256},
	{"group", SET_STRING, FIELD(spd_target_config, group), 1, 256},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct setting *setting_find(const struct setting *table, size_t n,
					  const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(table[i].key, key) == 0)
			return &table[i];
	return NULL;
}

static int name_value_parse(struct loader *ld, const yaml_node_t *node, const char *path,
			     const char *s, size_t len, const struct name_value *names,
			     int *out)
{
	char show[CONFIG_SHOW_MAX * 4 + 8], list[128] = "";
	size_t o = 0;

	for (const struct name_value *nv = names; nv->name != NULL; nv++) {
		if (strcmp(s, nv->name) == 0) {
			*out = nv->value;
			return 0;
		}
		o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", o ? ", " : "", nv->name);
	}
	text_escape(show, sizeof show, s, len, CONFIG_SHOW_MAX);
	return loader_fail(ld, node, path, "\"%s\" is not one of: %s", show, list);
}

static int number_error(struct loader *ld, const yaml_node_t *node, const char *path,
			const char *s, size_t len, enum num_status st, const char *what,
			const char *units)
{
	char show[CONFIG_SHOW_MAX * 4 + 8];

	text_escape(show, sizeof show, s, len, CONFIG_SHOW_MAX);
	switch (st) {
	case NUM_NEGATIVE:
		return loader_fail(ld, node, path, "\"%s\" is negative", show);
	case NUM_NO_UNIT:
		return loader_fail(ld, node, path, "\"%s\" needs a unit (%s)", show, units);
	case NUM_TOO_LARGE:
		return loader_fail(ld, node, path, "\"%s\" is too large", show);
	default:
		if (units == NULL)
			return loader_fail(ld, node, path, "\"%s\" is not %s", show, what);
		return loader_fail(ld, node, path, "\"%s\" is not %s (units: %s)", show, what,
				   units);
	}
}

/* A number with optional units, checked against the setting's range. */
static int setting_number(struct loader *ld, const struct setting *st, const yaml_node_t *node,
			  const char *path, const char *s, size_t len, uint64_t *out)
{
	const struct unit *units = NULL;
	const char *what = "an integer", *unit_names = NULL;
	char show[CONFIG_SHOW_MAX * 4 + 8], bound[48];
	enum num_status ns;
	uint64_t v = 0;

	if (st->type == SET_SIZE) {
		units = size_units;
		what = "a size";
		unit_names = "B, KiB, MiB, GiB";
	} else if (st->type == SET_DURATION) {
		units = duration_units;
		what = "a duration";
		unit_names = "ms, s, m, h";
	}
	ns = num_parse(s, units, UINT64_MAX, &v);
	if (ns != NUM_OK)
		return number_error(ld, node, path, s, len, ns, what, unit_names);
	if (v >= st->min && v <= st->max) {
		*out = v;
		return 0;
	}
	text_escape(show, sizeof show, s, len, CONFIG_SHOW_MAX);
	num_format(bound, sizeof bound, v < st->min ? st->min : st->max, units);
	if (v < st->min)
		return loader_fail(ld, node, path, "\"%s\" is too small (min %s)", show, bound);
	return loader_fail(ld, node, path, "\"%s\" is too large (max %s)", show, bound);
}

/* "0660" -> 0660: one to four octal digits, at most `max`. */
static int setting_mode(struct loader *ld, const struct setting *st, const yaml_node_t *node,
			const char *path, const char *s, size_t len, unsigned *out)
{
	char show[CONFIG_SHOW_MAX * 4 + 8];
	unsigned v = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '7')
			goto bad;
		v = v * 8 + (unsigned)(s[i] - '0');
	}
	if (len >= 1 && len <= 4 && v <= st->max) {
		*out = v;
		return 0;
	}
bad:
	text_escape(show, sizeof show, s, len, CONFIG_SHOW_MAX);
	return loader_fail(ld, node, path, "\"%s\" is not a file mode from \"0000\" to \"0777\"",
			   show);
}

/* Parses `node` as setting `st` into the struct at `base`. */
static int setting_store(struct loader *ld, const struct setting *st, const yaml_node_t *node,
			 const char *path, void *base)
{
	char *field = (char *)base + st->offset;
	char show[CONFIG_SHOW_MAX * 4 + 8];
	const char *s;
	size_t len;
	uint64_t v;
	int r, e;

	if (st->type == SET_PATH) {
		char *p = NULL;

		r = loader_path(ld, node, path, &p);
		if (r == 0)
			*(char **)field = p;
		return r;
	}
	if (st->type == SET_STRING) {
		char *p = NULL;

		r = loader_string(ld, node, path, (size_t)st->min, (size_t)st->max, &p);
		if (r == 0)
			*(char **)field = p;
		return r;
	}
	r = loader_scalar(ld, node, path,
			  st->type == SET_SIZE ? "a size" : st->type == SET_DURATION ? "a duration"
			  : st->type == SET_U32 || st->type == SET_U64 ? "an integer"
			  : st->type == SET_BOOL ? "true or false" : "a string",
			  &s, &len);
	if (r < 0)
		return r;
	switch (st->type) {
	case SET_SIZE:
	case SET_U64:
		r = setting_number(ld, st, node, path, s, len, &v);
		if (r == 0)
			*(uint64_t *)field = v;
		return r;
	case SET_DURATION:
		r = setting_number(ld, st, node, path, s, len, &v);
		if (r == 0)
			*(int64_t *)field = (int64_t)v;
		return r;
	case SET_U32:
		r = setting_number(ld, st, node, path, s, len, &v);
		if (r == 0)
			*(uint32_t *)field = (uint32_t)v;
		return r;
	case SET_MODE:
		return setting_mode(ld, st, node, path, s, len, (unsigned *)field);
	case SET_BOOL:
		if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
			*(bool *)field = s[0] == 't';
			return 0;
		}
		text_escape(show, sizeof show, s, len, CONFIG_SHOW_MAX);
		return loader_fail(ld, node, path, "\"%s\" is not true or false", show);
	case SET_SIGNAL:
		r = spd_signal_parse(s);
		if (r > 0) {
			*(int *)field = r;
			return 0;
		}
		text_escape(show, sizeof show, s, len, CONFIG_SHOW_MAX);
		return loader_fail(ld, node, path, "\"%s\" is not a signal", show);
	case SET_START_METHOD:
		r = name_value_parse(ld, node, path, s, len, start_methods, &e);
		if (r == 0)
			*(spd_start_method *)field = (spd_start_method)e;
		return r;
	case SET_ZYGOTE_START:
		r = name_value_parse(ld, node, path, s, len, zygote_starts, &e);
		if (r == 0)
			*(spd_zygote_start *)field = (spd_zygote_start)e;
		return r;
	case SET_LOG_FORMAT:
		r = name_value_parse(ld, node, path, s, len, log_formats, &e);
		if (r == 0)
			*(spd_log_format *)field = (spd_log_format)e;
		return r;
	case SET_LOG_LEVEL:
		r = name_value_parse(ld, node, path, s, len, log_levels, &e);
		if (r == 0)
			*(spd_config_log_level *)field = (spd_config_log_level)e;
		return r;
	default:
		return loader_fail(ld, node, path, "internal error: bad setting type");
	}
}

/* A mapping whose keys all come from one table, stored into `base`. */
struct section {
	const struct setting *table;
	size_t count;
	void *base;
	yaml_node_t **set;	/* optional: the value node of each key given */
};

static int section_key(struct loader *ld, const struct pair *p, void *arg)
{
	struct section *sec = arg;
	const struct setting *st = setting_find(sec->table, sec->count, p->name);

	if (st == NULL)
		return UNKNOWN_KEY;
	if (sec->set != NULL)
		sec->set[st - sec->table] = p->value;
	return setting_store(ld, st, p->value, p->path, sec->base);
}

static int section_parse(struct loader *ld, const yaml_node_t *node, const char *path,
			 const struct setting *table, size_t count, void *base,
			 yaml_node_t **set)
{
	struct section sec = {table, count, base, set};

	return loader_each_pair(ld, node, path, SIZE_MAX, "duplicate key", section_key, &sec);
}

/* ------------------------------------------------------------------------ */
/* Targets                                                                  */
/* ------------------------------------------------------------------------ */

/* Target and builtin names: 1..256 bytes of [A-Za-z0-9._-] (health service names). */
static bool name_valid(const char *s, size_t len)
{
	if (len == 0 || len > CONFIG_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Environment variable names: non-empty, no '=' (and no NUL: checked before). */
static bool env_name_valid(const char *s, size_t len)
{
	return len > 0 && memchr(s, '=', len) == NULL;
}

struct function_arg {
	spd_target_config *t;
};

static int function_key(struct loader *ld, const struct pair *p, void *arg)
{
	spd_target_config *t = ((struct function_arg *)arg)->t;

	if (strcmp(p->name, "library") == 0)
		return loader_path(ld, p->value, p->path, &t->library);
	if (strcmp(p->name, "symbol") == 0)
		return loader_string(ld, p->value, p->path, 1, CONFIG_SYMBOL_MAX, &t->symbol);
	return UNKNOWN_KEY;
}

/* `function: builtin:NAME` or `function: {library: PATH, symbol: NAME}`. */
static int target_function(struct loader *ld, const yaml_node_t *node, const char *path,
			   spd_target_config *t)
{
	static const char prefix[] = "builtin:";
	struct function_arg fa = {t};
	char show[CONFIG_SHOW_MAX * 4 + 8];
	const char *s;
	size_t len;
	int r;

	if (node->type == YAML_MAPPING_NODE) {
		r = loader_each_pair(ld, node, path, SIZE_MAX, "duplicate key", function_key, &fa);
		if (r < 0)
			return r;
		if (t->library == NULL)
			return loader_fail(ld, node, path, "missing library");
		if (t->symbol == NULL)
			return loader_fail(ld, node, path, "missing symbol");
		t->kind = SPD_TARGET_FUNCTION;
		return 0;
	}
	r = loader_scalar(ld, node, path, "\"builtin:NAME\" or {library, symbol}", &s, &len);
	if (r < 0)
		return r;
	text_escape(show, sizeof show, s, len, CONFIG_SHOW_MAX);
	if (len < sizeof prefix - 1 || memcmp(s, prefix, sizeof prefix - 1) != 0)
		return loader_fail(ld, node, path,
				   "\"%s\" is neither \"builtin:NAME\" nor {library, symbol}", show);
	if (!name_valid(s + sizeof prefix - 1, len - (sizeof prefix - 1)))
		return loader_fail(ld, node, path, "\"%s\" has a bad builtin name", show);
	t->builtin = str_dup(s + sizeof prefix - 1, len - (sizeof prefix - 1));
	if (t->builtin == NULL)
		return loader_errno(ld, -ENOMEM);
	t->kind = SPD_TARGET_FUNCTION;
	return 0;
}

static int exec_item(struct loader *ld, yaml_node_t *item, const char *path, size_t i,
		     void *arg)
{
	spd_target_config *t = arg;
	int r = loader_string(ld, item, path, i == 0 ? 1 : 0, CONFIG_SCALAR_MAX,
			      &t->exec_argv[i]);

	if (r == 0 && i == 0 && t->exec_argv[0][0] != '/')
		return loader_fail(ld, item, path, "must be an absolute path");
	return r;
}

/* `exec: [ABSOLUTE_PATH, ARG...]` */
static int target_exec(struct loader *ld, const yaml_node_t *node, const char *path,
		       spd_target_config *t)
{
	size_t n;
	int r = loader_list(ld, node, path, 1, CONFIG_ARGV_MAX, &n);

	if (r < 0)
		return r;
	t->exec_argv = calloc(n + 1, sizeof *t->exec_argv);
	if (t->exec_argv == NULL)
		return loader_errno(ld, -ENOMEM);
	r = loader_each_item(ld, node, path, exec_item, t);
	if (r < 0)
		return r;
	t->exec_argc = n;
	t->kind = SPD_TARGET_EXEC;
	return 0;
}

static int env_key(struct loader *ld, const struct pair *p, void *arg)
{
	spd_target_config *t = arg;
	const char *v;
	size_t vlen;
	char *kv;
	int r;

	if (!env_name_valid(p->name, p->len))
		return loader_fail(ld, p->key, p->path, "bad variable name");
	r = loader_scalar(ld, p->value, p->path, "a string", &v, &vlen);
	if (r < 0)
		return r;
	kv = malloc(p->len + vlen + 2);
	if (kv == NULL)
		return loader_errno(ld, -ENOMEM);
	memcpy(kv, p->name, p->len);
	kv[p->len] = '=';
	memcpy(kv + p->len + 1, v, vlen);
	kv[p->len + 1 + vlen] = '\0';
	t->env[t->env_count++] = kv;
	return 0;
}

/* `env: {NAME: VALUE, ...}`, stored as "NAME=VALUE". */
static int target_env(struct loader *ld, const yaml_node_t *node, const char *path,
		      spd_target_config *t)
{
	size_t n;
	int r = loader_expect(ld, node, path, YAML_MAPPING_NODE, "a mapping");

	if (r < 0)
		return r;
	n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
	if (n > CONFIG_ENV_MAX)
		return loader_fail(ld, node, path, "too many entries (max %d)", CONFIG_ENV_MAX);
	t->env = calloc(n + 1, sizeof *t->env);
	if (t->env == NULL)
		return loader_errno(ld, -ENOMEM);
	return loader_each_pair(ld, node, path, CONFIG_ENV_MAX, "duplicate key", env_key, t);
}

static int inherit_env_item(struct loader *ld, yaml_node_t *item, const char *path,
			    size_t i, void *arg)
{
	spd_target_config *t = arg;
	int r = loader_string(ld, item, path, 1, CONFIG_SCALAR_MAX, &t->inherit_env[i]);

	if (r == 0 && !env_name_valid(t->inherit_env[i], strlen(t->inherit_env[i])))
		return loader_fail(ld, item, path, "bad variable name");
	t->inherit_env_count += r == 0;
	return r;
}

/* `inherit_env: [NAME, ...]` */
static int target_inherit_env(struct loader *ld, const yaml_node_t *node, const char *path,
			      spd_target_config *t)
{
	size_t n;
	int r = loader_list(ld, node, path, 0, CONFIG_ENV_MAX, &n);

	if (r < 0)
		return r;
	t->inherit_env = calloc(n + 1, sizeof *t->inherit_env);
	if (t->inherit_env == NULL)
		return loader_errno(ld, -ENOMEM);
	return loader_each_item(ld, node, path, inherit_env_item, t);
}

struct target_arg {
	spd_target_config *t;
	struct target_seen *seen;
	yaml_node_t *kind_key;		/* the function: or exec: key */
	yaml_node_t *allow_args_key;
};

static int target_key(struct loader *ld, const struct pair *p, void *arg)
{
	struct target_arg *ta = arg;
	spd_target_config *t = ta->t;
	const struct setting *st;

	if (strcmp(p->name, "function") == 0 || strcmp(p->name, "exec") == 0) {
		if (ta->kind_key != NULL)
			return loader_fail(ld, p->key, p->parent, "has both function and exec");
		ta->kind_key = p->key;
		if (p->name[0] == 'f')
			return target_function(ld, p->value, p->path, t);
		return target_exec(ld, p->value, p->path, t);
	}
	if (strcmp(p->name, "env") == 0)
		return target_env(ld, p->value, p->path, t);
	if (strcmp(p->name, "inherit_env") == 0)
		return target_inherit_env(ld, p->value, p->path, t);
	if (strcmp(p->name, "allow_args") == 0)
		ta->allow_args_key = p->key;
	st = setting_find(target_settings, COUNT(target_settings), p->name);
	if (st != NULL)
		return setting_store(ld, st, p->value, p->path, t);
	st = setting_find(limit_settings, LIMIT_COUNT, p->name);
	if (st != NULL) {
		ta->seen->limits_set[st - limit_settings] = p->value;
		return setting_store(ld, st, p->value, p->path, &t->limits);
	}
	return UNKNOWN_KEY;
}

/* One `NAME: {...}` of `targets:`. Its limits are merged with `defaults:` later. */
static int target_parse(struct loader *ld, const struct pair *p, spd_target_config *t,
			struct target_seen *seen)
{
	struct target_arg ta = {t, seen, NULL, NULL};
	yaml_node_t *method;
	int r;

	if (!name_valid(p->name, p->len))
		return loader_fail(ld, p->key, p->path,
				   "bad target name (1 to %d of A-Z a-z 0-9 . _ -)",
				   CONFIG_NAME_MAX);
	t->name = str_dup(p->name, p->len);
	if (t->name == NULL)
		return loader_errno(ld, -ENOMEM);
	t->line = (int)p->key->start_mark.line + 1;
	t->column = (int)p->key->start_mark.column + 1;
	r = loader_each_pair(ld, p->value, p->path, SIZE_MAX, "duplicate key", target_key, &ta);
	if (r < 0)
		return r;
	if (ta.kind_key == NULL)
		return loader_fail(ld, p->value, p->path, "needs function or exec");
	if (t->kind == SPD_TARGET_FUNCTION && ta.allow_args_key != NULL) {
		char child[CONFIG_KEY_MAX];

		path_child(child, sizeof child, p->path, "allow_args", strlen("allow_args"));
		return loader_fail(ld, ta.allow_args_key, child, "only for exec targets");
	}
	method = seen->limits_set[LIMIT_START_METHOD];
	if (t->kind == SPD_TARGET_EXEC && method != NULL &&
	    t->limits.start_method != SPD_START_SPAWN) {
		char child[CONFIG_KEY_MAX];

		path_child(child, sizeof child, p->path, "start_method", strlen("start_method"));
		return loader_fail(ld, method, child, "exec targets always use spawn");
	}
	return 0;
}

static int targets_key(struct loader *ld, const struct pair *p, void *arg)
{
	spd_config *cfg = ld->cfg;
	size_t i = cfg->target_count++;

	(void)arg;
	return target_parse(ld, p, &cfg->targets[i], &ld->seen[i]);
}

static int config_targets(struct loader *ld, const yaml_node_t *node, const char *path)
{
	spd_config *cfg = ld->cfg;
	size_t n;
	int r = loader_expect(ld, node, path, YAML_MAPPING_NODE, "a mapping");

	if (r < 0)
		return r;
	n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
	if (n > CONFIG_TARGETS_MAX)
		return loader_fail(ld, node, path, "too many targets (max %d)", CONFIG_TARGETS_MAX);
	cfg->targets = calloc(n ? n : 1, sizeof *cfg->targets);
	ld->seen = calloc(n ? n : 1, sizeof *ld->seen);
	if (cfg->targets == NULL || ld->seen == NULL)
		return loader_errno(ld, -ENOMEM);
	return loader_each_pair(ld, node, path, CONFIG_TARGETS_MAX, "duplicate target",
				targets_key, NULL);
}

/* ------------------------------------------------------------------------ */
/* The top level                                                            */
/* ------------------------------------------------------------------------ */

/* One listen address, checked for form here (file:line:column); whether it
 * can be bound is for the server to say when it starts. */
static int listen_address(struct loader *ld, yaml_node_t *node, const char *path, char **out)
{
	char why[SPD_CONFIG_ERR_MAX];
	spd_address a;
	int r = loader_string(ld, node, path, 1, CONFIG_SCALAR_MAX, out);

	if (r == 0 && spd_address_parse(*out, &a, why, sizeof why) < 0)
		return loader_fail(ld, node, path, "%s", why);
	return r;
}

static int listen_item(struct loader *ld, yaml_node_t *item, const char *path, size_t i,
		       void *arg)
{
	char **listen = arg;

	return listen_address(ld, item, path, &listen[i]);
}

/* `listen: ADDRESS` or `listen: [ADDRESS, ...]` */
static int config_listen(struct loader *ld, const yaml_node_t *node, const char *path)
{
	spd_config *cfg = ld->cfg;
	size_t n = 1;
	int r;

	if (node->type != YAML_SEQUENCE_NODE) {
		r = loader_expect(ld, node, path, YAML_SCALAR_NODE, "a string or a list of strings");
		if (r < 0)
			return r;
	} else {
		r = loader_list(ld, node, path, 1, CONFIG_LISTEN_MAX, &n);
		if (r < 0)
			return r;
	}
	cfg->listen = calloc(n + 1, sizeof *cfg->listen);
	if (cfg->listen == NULL)
		return loader_errno(ld, -ENOMEM);
	if (node->type == YAML_SEQUENCE_NODE)
		r = loader_each_item(ld, node, path, listen_item, cfg->listen);
	else
		r = listen_address(ld, (yaml_node_t *)node, path, &cfg->listen[0]);
	if (r == 0)
		cfg->listen_count = n;
	return r;
}

static int top_key(struct loader *ld, const struct pair *p, void *arg)
{
	spd_config *cfg = ld->cfg;
	const struct setting *st;
	int r;

	(void)arg;
	if (strcmp(p->name, "listen") == 0)
		return config_listen(ld, p->value, p->path);
	if (strcmp(p->name, "tls") == 0) {
		r = section_parse(ld, p->value, p->path, tls_settings, COUNT(tls_settings), cfg,
				  NULL);
		if (r == 0 && cfg->tls_cert == NULL)
			r = loader_fail(ld, p->value, p->path, "missing cert");
		if (r == 0 && cfg->tls_key == NULL)
			r = loader_fail(ld, p->value, p->path, "missing key");
		return r;
	}
	if (strcmp(p->name, "auth") == 0) {
		r = section_parse(ld, p->value, p->path, auth_settings, COUNT(auth_settings), cfg,
				  NULL);
		if (r == 0 && cfg->auth_tokens_file == NULL)
			r = loader_fail(ld, p->value, p->path, "missing tokens_file");
		return r;
	}
	if (strcmp(p->name, "history") == 0)
		return section_parse(ld, p->value, p->path, history_settings,
				     COUNT(history_settings), cfg, NULL);
	if (strcmp(p->name, "log") == 0)
		return section_parse(ld, p->value, p->path, log_settings, COUNT(log_settings),
				     cfg, NULL);
	if (strcmp(p->name, "defaults") == 0)
		return section_parse(ld, p->value, p->path, limit_settings, LIMIT_COUNT,
				     &cfg->defaults, ld->defaults_set);
	if (strcmp(p->name, "targets") == 0)
		return config_targets(ld, p->value, p->path);
	if (strcmp(p->name, "max_running") == 0)
		ld->max_running = p->value;
	st = setting_find(top_settings, COUNT(top_settings), p->name);
	if (st != NULL)
		return setting_store(ld, st, p->value, p->path, cfg);
	return UNKNOWN_KEY;
}

static void config_set_defaults(spd_config *cfg)
{
	cfg->unix_socket_mode = 0660;
	cfg->max_running = 64;
	cfg->max_pending = 1024;
	cfg->max_request_bytes = 4ULL << 20;
	cfg->history_max_records = 10000;
	cfg->history_retention_ms = 3600 * 1000;
	cfg->shutdown_grace_ms = 30 * 1000;
	cfg->log_format = SPD_LOG_FORMAT_JSON;
	cfg->log_level = SPD_CONFIG_LOG_INFO;
	cfg->defaults = (spd_target_limits){
		.start_method = SPD_START_FORK,
		.destroy_grace_ms = 10 * 1000,
		.stop_signal = SIGTERM,
		.timeout_ms = 0,
		.max_concurrent = 0,
		.max_result_bytes = 1ULL << 20,
		.max_output_bytes = 1ULL << 20,
		.memory_limit = 0,
		.cpu_time_limit_ms = 0,
		.open_files_limit = 1024,
		.zygote_start = SPD_ZYGOTE_FIRST_USE,
		.zygote_wait_ms = 10 * 1000,
	};
}

/* Empty env and inherit_env arrays for targets that had none. */
static int strv_empty(char ***v)
{
	if (*v == NULL)
		*v = calloc(1, sizeof **v);
	return *v == NULL ? -ENOMEM : 0;
}

/* Fills what the file left out: listen, and each target's inherited limits. */
static int config_finish(struct loader *ld)
{
	spd_config *cfg = ld->cfg;

	if (cfg->listen == NULL) {
		cfg->listen = calloc(2, sizeof *cfg->listen);
		if (cfg->listen == NULL || (cfg->listen[0] = strdup("127.0.0.1:50051")) == NULL)
			return loader_errno(ld, -ENOMEM);
		cfg->listen_count = 1;
	}
	for (size_t i = 0; i < cfg->target_count; i++) {
		spd_target_config *t = &cfg->targets[i];

		for (size_t k = 0; k < LIMIT_COUNT; k++) {
			const struct setting *st = &limit_settings[k];

			if (ld->seen[i].limits_set[k] == NULL)
				memcpy((char *)&t->limits + st->offset,
				       (const char *)&cfg->defaults + st->offset, st->size);
		}
		/* Exec targets ignore an inherited start method (an explicit one other
		 * than spawn was refused by target_parse). */
		if (t->kind == SPD_TARGET_EXEC)
			t->limits.start_method = SPD_START_SPAWN;
		if (t->description == NULL && (t->description = strdup("")) == NULL)
			return loader_errno(ld, -ENOMEM);
		if (strv_empty(&t->env) < 0 || strv_empty(&t->inherit_env) < 0)
			return loader_errno(ld, -ENOMEM);
	}
	return 0;
}

/* The launcher holds SPD_LAUNCHER_FDS_PER_PROCESS descriptors per running
 * process and raises its soft RLIMIT_NOFILE to the hard one (launcher.h): a
 * max_running that the hard limit cannot carry would fail starts with EMFILE. */
static int config_check_fd_limit(struct loader *ld)
{
	const spd_config *cfg = ld->cfg;
	uint64_t need = spd_config_launcher_fds(cfg);
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max == RLIM_INFINITY ||
	    need <= (uint64_t)rl.rlim_max)
		return 0;
	if (ld->max_running == NULL) {
		str_printf(ld->err, SPD_CONFIG_ERR_MAX,
			   "%s: max_running: the default %u needs %llu file descriptors in the "
			   "launcher, but the hard limit (RLIMIT_NOFILE) is %llu: set a lower "
			   "max_running or raise the hard limit",
			   ld->name, cfg->max_running, (unsigned long long)need,
			   (unsigned long long)rl.rlim_max);
		return -EINVAL;
	}
	return loader_fail(ld, ld->max_running, "max_running",
			   "%u needs %llu file descriptors in the launcher, but the hard limit "
			   "(RLIMIT_NOFILE) is %llu: set a lower max_running or raise the hard "
			   "limit",
			   cfg->max_running, (unsigned long long)need,
			   (unsigned long long)rl.rlim_max);
}

/* Fails if the stream holds a second document. */
static int loader_single_document(struct loader *ld, yaml_parser_t *parser,
				  const struct feed *feed)
{
	yaml_document_t extra;
	yaml_node_t *root;
	int r = 0;

	if (!yaml_parser_load(parser, &extra))
		return loader_yaml_error(ld, parser, feed);
	root = yaml_document_get_root_node(&extra);
	if (root != NULL)
		r = loader_fail(ld, root, "", "only one YAML document is allowed");
	yaml_document_delete(&extra);
	return r;
}

/*
 * The loader proper. `name` names the text in messages; `dir` is absolute.
 * On failure nothing is left allocated and *out is NULL.
 */
static int config_load(const char *text, size_t len, const char *name, const char *dir,
		       spd_config **out, char *err)
{
	struct loader ld = {.dir = dir, .err = err, .budget = CONFIG_BUDGET};
	struct feed feed = {.text = text, .len = len};
	yaml_parser_t parser;
	bool parser_ok = false, doc_ok = false;
	yaml_node_t *root;
	spd_config *cfg = NULL;
	int r;

	text_escape(ld.name, sizeof ld.name, name, strlen(name), 200);
	cfg = calloc(1, sizeof *cfg);
	if (cfg == NULL || (cfg->path = strdup(name)) == NULL || (cfg->dir = strdup(dir)) == NULL) {
		r = loader_errno(&ld, -ENOMEM);
		goto out;
	}
	ld.cfg = cfg;
	config_set_defaults(cfg);
	if (len > CONFIG_FILE_MAX) {
		str_printf(err, SPD_CONFIG_ERR_MAX, "%s: too large (max %u bytes)", ld.name,
			 CONFIG_FILE_MAX);
		r = -EFBIG;
		goto out;
	}
	if (!yaml_parser_initialize(&parser)) {
		r = loader_errno(&ld, -ENOMEM);
		goto out;
	}
	parser_ok = true;
	feed.parser = &parser;
	yaml_parser_set_input(&parser, feed_read, &feed);
	if (!yaml_parser_load(&parser, &ld.doc)) {
		r = loader_yaml_error(&ld, &parser, &feed);
		goto out;
	}
	doc_ok = true;
	r = loader_single_document(&ld, &parser, &feed);
	if (r < 0)
		goto out;
	root = yaml_document_get_root_node(&ld.doc);
	if (root != NULL && !node_is_null(root))
		r = loader_each_pair(&ld, root, "", SIZE_MAX, "duplicate key", top_key, NULL);
	if (r == 0)
		r = config_finish(&ld);
	if (r == 0)
		r = config_check_fd_limit(&ld);
out:
	free(ld.seen);
	if (doc_ok)
		yaml_document_delete(&ld.doc);
	if (parser_ok)
		yaml_parser_delete(&parser);
	if (r < 0) {
		spd_config_destroy(cfg);
		cfg = NULL;
	}
	*out = cfg;
	return r;
}

/* ------------------------------------------------------------------------ */
/* Public entry points                                                      */
/* ------------------------------------------------------------------------ */

uint64_t spd_config_launcher_fds(const spd_config *cfg)
{
	return SPD_LAUNCHER_FDS_BASE + (uint64_t)cfg->target_count +
	       (uint64_t)SPD_LAUNCHER_FDS_PER_PROCESS * cfg->max_running;
}

int spd_config_load_string(const char *text, size_t len, const char *name,
			   const char *base_dir, spd_config **out,
			   char err[SPD_CONFIG_ERR_MAX])
{
	char scratch[SPD_CONFIG_ERR_MAX], show[CONFIG_KEY_MAX];
	char *dir = NULL;
	int r;

	if (err == NULL)
		err = scratch;
	err[0] = '\0';
	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (name == NULL)
		name = "<string>";
	if (text == NULL && len > 0) {
		text_escape(show, sizeof show, name, strlen(name), 200);
		str_printf(err, SPD_CONFIG_ERR_MAX, "%s: no text", show);
		return -EINVAL;
	}
	r = path_absolute_dir(base_dir, base_dir != NULL ? strlen(base_dir) : 0, &dir);
	if (r < 0) {
		char buf[128];

		text_escape(show, sizeof show, name, strlen(name), 200);
		str_printf(err, SPD_CONFIG_ERR_MAX, "%s: base directory: %s", show,
			 strerror_r(-r, buf, sizeof buf));
		return r;
	}
	r = config_load(text != NULL ? text : "", len, name, dir, out, err);
	free(dir);
	return r;
}

/* Reads at most CONFIG_FILE_MAX + 1 bytes of `path` (one more tells "too large"). */
static int file_read(const char *path, char **text, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = NULL, *grown;
	int fd = -1, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	buf = malloc(cap);
	if (buf == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t got;

		if (n == cap) {
			if (cap > CONFIG_FILE_MAX)
				break;
			cap *= 2;
			grown = realloc(buf, cap);
			if (grown == NULL) {
				r = -ENOMEM;
				goto out;
			}
			buf = grown;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	*text = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return r;
}

int spd_config_load_file(const char *path, spd_config **out, char err[SPD_CONFIG_ERR_MAX])
{
	char scratch[SPD_CONFIG_ERR_MAX], show[CONFIG_KEY_MAX], buf[128];
	const char *slash;
	char *text = NULL, *dir = NULL;
	size_t len = 0;
	int r;

	if (err == NULL)
		err = scratch;
	err[0] = '\0';
	if (out == NULL || path == NULL)
		return -EINVAL;
	*out = NULL;
	text_escape(show, sizeof show, path, strlen(path), 200);
	r = file_read(path, &text, &len);
	if (r < 0) {
		str_printf(err, SPD_CONFIG_ERR_MAX, "%s: cannot read: %s", show,
			 strerror_r(-r, buf, sizeof buf));
		goto out;
	}
	slash = strrchr(path, '/');
	if (slash == path)
		r = path_absolute_dir("/", 1, &dir);
	else
		r = path_absolute_dir(path, slash != NULL ? (size_t)(slash - path) : 0, &dir);
	if (r < 0) {
		str_printf(err, SPD_CONFIG_ERR_MAX, "%s: directory: %s", show,
			 strerror_r(-r, buf, sizeof buf));
		goto out;
	}
	r = config_load(text, len, path, dir, out, err);
out:
	free(dir);
	free(text);
	return r;
}

/* Splits SPAWND_LISTEN into a new NULL-terminated vector; items are trimmed. */
static int env_listen_parse(const char *s, char ***out, size_t *count,
			    char err[SPD_CONFIG_ERR_MAX])
{
	size_t n = 1, i = 0;
	char **v = NULL;
	int r = 0;

	for (const char *p = s; *p; p++)
		n += *p == ',';
	if (n > CONFIG_LISTEN_MAX) {
		str_printf(err, SPD_CONFIG_ERR_MAX, "SPAWND_LISTEN: too many items (max %d)",
			 CONFIG_LISTEN_MAX);
		r = -EINVAL;
		goto out;
	}
	v = calloc(n + 1, sizeof *v);
	if (v == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (const char *p = s;; i++) {
		const char *end = strchr(p, ',');
		const char *next = end != NULL ? end + 1 : NULL;

		if (end == NULL)
			end = p + strlen(p);
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end == p || (size_t)(end - p) > CONFIG_SCALAR_MAX) {
			str_printf(err, SPD_CONFIG_ERR_MAX, "SPAWND_LISTEN: item %zu is %s", i + 1,
				 end == p ? "empty" : "too long");
			r = -EINVAL;
			goto out;
		}
		v[i] = str_dup(p, (size_t)(end - p));
		if (v[i] == NULL) {
			r = -ENOMEM;
			goto out;
		}
		{
			char why[SPD_CONFIG_ERR_MAX - 64];
			spd_address a;
			if (spd_address_parse(v[i], &a, why, sizeof why) < 0) {
				str_printf(err, SPD_CONFIG_ERR_MAX, "SPAWND_LISTEN: item %zu: %s", i + 1,
					   why);
				r = -EINVAL;
				goto out;
			}
		}
		if (next == NULL)
			break;
		p = next;
	}
	*out = v;
	*count = n;
	v = NULL;
out:
	if (r == -ENOMEM)
		str_printf(err, SPD_CONFIG_ERR_MAX, "SPAWND_LISTEN: out of memory");
	strv_free(v);
	return r;
}

int spd_config_apply_env(spd_config *cfg, char err[SPD_CONFIG_ERR_MAX])
{
	char scratch[SPD_CONFIG_ERR_MAX], show[CONFIG_SHOW_MAX * 4 + 8];
	const char *listen = getenv("SPAWND_LISTEN");
	const char *level = getenv("SPAWND_LOG_LEVEL");
	char **v = NULL;
	size_t n = 0;
	int lvl = -1, r = 0;

	if (err == NULL)
		err = scratch;
	err[0] = '\0';
	if (cfg == NULL)
		return -EINVAL;
	if (level != NULL) {
		for (const struct name_value *nv = log_levels; nv->name != NULL; nv++)
			if (strcmp(level, nv->name) == 0)
				lvl = nv->value;
		if (lvl < 0) {
			text_escape(show, sizeof show, level, strlen(level), CONFIG_SHOW_MAX);
			str_printf(err, SPD_CONFIG_ERR_MAX,
				 "SPAWND_LOG_LEVEL: \"%s\" is not one of: error, warn, info, debug",
				 show);
			return -EINVAL;
		}
	}
	if (listen != NULL) {
		r = env_listen_parse(listen, &v, &n, err);
		if (r < 0)
			return r;
		strv_free(cfg->listen);
		cfg->listen = v;
		cfg->listen_count = n;
	}
	if (lvl >= 0)
		cfg->log_level = (spd_config_log_level)lvl;
	return 0;
}

static void target_release(spd_target_config *t)
{
	free(t->name);
	free(t->description);
	free(t->builtin);
	free(t->library);
	free(t->symbol);
	strv_free(t->exec_argv);
	strv_free(t->env);
	strv_free(t->inherit_env);
	free(t->cwd);
	free(t->user);
	free(t->group);
}

void spd_config_destroy(spd_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->target_count; i++)
		target_release(&cfg->targets[i]);
	free(cfg->targets);
	free(cfg->auth_tokens_file);
	free(cfg->tls_client_ca);
	free(cfg->tls_key);
	free(cfg->tls_cert);
	strv_free(cfg->listen);
	free(cfg->dir);
	free(cfg->path);
	free(cfg);
}

const spd_target_config *spd_config_find_target(const spd_config *cfg, const char *name)
{
	if (cfg == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < cfg->target_count; i++)
		if (strcmp(cfg->targets[i].name, name) == 0)
			return &cfg->targets[i];
	return NULL;
}
