/* The YAML walk: libyaml's document API and everything that touches its nodes.
 * Feeding the parser in chunks, node access charged against the alias budget,
 * typed scalars, mappings with duplicate-key checks, lists, and the one-line
 * error messages with their FILE:LINE:COLUMN positions. */
#include "service/config/config_impl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int spd__cfg_fail(struct loader *ld, const yaml_node_t *node, const char *path,
		  const char *fmt, ...)
{
	char msg[SPD_CONFIG_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	spd__cfg_printf(ld->err, SPD_CONFIG_ERR_MAX, "%s:%zu:%zu: %s: %s", ld->name,
		   node->start_mark.line + 1, node->start_mark.column + 1,
		   path[0] != '\0' ? path : "top level", msg);
	return -EINVAL;
}

int spd__cfg_errno(struct loader *ld, int r)
{
	char buf[128];

	spd__cfg_printf(ld->err, SPD_CONFIG_ERR_MAX, "%s: %s", ld->name,
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
		return spd__cfg_errno(ld, -ENOMEM);
	} else if (parser->error == YAML_READER_ERROR) {
		text_position(feed->text, feed->len, parser->problem_offset, &line, &col);
	} else if (parser->context != NULL) {
		spd__cfg_printf(context, sizeof context, " (%s at %zu:%zu)", parser->context,
			   parser->context_mark.line + 1, parser->context_mark.column + 1);
	}
	spd__cfg_printf(ld->err, SPD_CONFIG_ERR_MAX, "%s:%zu:%zu: syntax error: %s%s", ld->name,
		   line, col, problem, context);
	return -EINVAL;
}

void spd__cfg_key_child(char *dst, size_t size, const char *parent, const char *name,
		       size_t len)
{
	char esc[CONFIG_KEY_MAX / 2] = "\"\"";

	if (len > 0)
		spd__cfg_escape(esc, sizeof esc, name, len, 100);
	spd__cfg_printf(dst, size, "%s%s%s", parent, *parent ? "." : "", esc);
}

static void path_index(char *dst, size_t size, const char *parent, size_t i)
{
	spd__cfg_printf(dst, size, "%s[%zu]", parent, i);
}

/* Node `index`, charged against the budget. `from` and `path` place the error. */
static int loader_node(struct loader *ld, int index, const yaml_node_t *from,
		       const char *path, yaml_node_t **out)
{
	yaml_node_t *node = yaml_document_get_node(&ld->doc, index);
	size_t cost;

	if (node == NULL)
		return spd__cfg_fail(ld, from, path, "broken YAML document");
	cost = 8 + (node->type == YAML_SCALAR_NODE ? node->data.scalar.length : 0);
	if (cost > ld->budget)
		return spd__cfg_fail(ld, node, path, "too large once aliases are expanded");
	ld->budget -= cost;
	*out = node;
	return 0;
}

bool spd__cfg_is_null(const yaml_node_t *node)
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

int spd__cfg_expect(struct loader *ld, const yaml_node_t *node, const char *path,
			 yaml_node_type_t type, const char *what)
{
	if (spd__cfg_is_null(node))
		return spd__cfg_fail(ld, node, path, "missing value");
	if (node->type != type)
		return spd__cfg_fail(ld, node, path, "expected %s, got %s", what, node_kind(node));
	return 0;
}

int spd__cfg_scalar(struct loader *ld, const yaml_node_t *node, const char *path,
			 const char *what, const char **s, size_t *len)
{
	int r = spd__cfg_expect(ld, node, path, YAML_SCALAR_NODE, what);

	if (r < 0)
		return r;
	*s = (const char *)node->data.scalar.value;
	*len = node->data.scalar.length;
	if (strlen(*s) != *len)
		return spd__cfg_fail(ld, node, path, "contains a NUL byte");
	if (*len > CONFIG_SCALAR_MAX)
		return spd__cfg_fail(ld, node, path, "too long (max %d bytes)", CONFIG_SCALAR_MAX);
	return 0;
}

int spd__cfg_string(struct loader *ld, const yaml_node_t *node, const char *path,
			 size_t min_len, size_t max_len, char **out)
{
	const char *s;
	size_t len;
	int r = spd__cfg_scalar(ld, node, path, "a string", &s, &len);

	if (r < 0)
		return r;
	if (len < min_len)
		return spd__cfg_fail(ld, node, path, "must not be empty");
	if (len > max_len)
		return spd__cfg_fail(ld, node, path, "too long (max %zu bytes)", max_len);
	*out = spd__cfg_strndup(s, len);
	return *out == NULL ? spd__cfg_errno(ld, -ENOMEM) : 0;
}

int spd__cfg_path(struct loader *ld, const yaml_node_t *node, const char *path,
		       char **out)
{
	const char *s;
	size_t len;
	int r = spd__cfg_scalar(ld, node, path, "a path", &s, &len);

	if (r < 0)
		return r;
	if (len == 0)
		return spd__cfg_fail(ld, node, path, "must not be empty");
	r = spd__cfg_path_join(ld->dir, s, len, out);
	if (r == -ENAMETOOLONG)
		return spd__cfg_fail(ld, node, path, "path too long (max %d bytes)", PATH_MAX - 1);
	return r < 0 ? spd__cfg_errno(ld, r) : 0;
}

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
		return spd__cfg_errno(ld, -ENOMEM);
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

int spd__cfg_mapping(struct loader *ld, const yaml_node_t *node, const char *path, size_t max,
		     const char *what, size_t *n)
{
	int r = spd__cfg_expect(ld, node, path, YAML_MAPPING_NODE, "a mapping");

	if (r < 0)
		return r;
	*n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
	if (*n > max)
		return spd__cfg_fail(ld, node, path, "too many %s (max %zu)", what, max);
	return 0;
}

int spd__cfg_each_pair(struct loader *ld, const yaml_node_t *map, const char *path,
			    size_t max, const char *dup_what, pair_fn fn, void *arg)
{
	size_t n;
	bool *dup = NULL;
	int r = spd__cfg_mapping(ld, map, path, max, "entries", &n);

	if (r < 0)
		return r;
	if (n == 0)
		return 0;
	dup = calloc(n, sizeof *dup);
	if (dup == NULL)
		return spd__cfg_errno(ld, -ENOMEM);
	r = mapping_find_dups(ld, map, path, n, dup);
	for (size_t i = 0; r == 0 && i < n; i++) {
		char child[CONFIG_KEY_MAX];
		struct pair p = {.path = child, .parent = path};

		r = loader_node(ld, map->data.mapping.pairs.start[i].key, map, path, &p.key);
		if (r < 0)
			break;
		if (p.key->type != YAML_SCALAR_NODE) {
			r = spd__cfg_fail(ld, p.key, path, "keys must be strings, got %s",
					node_kind(p.key));
			break;
		}
		p.name = (const char *)p.key->data.scalar.value;
		p.len = p.key->data.scalar.length;
		spd__cfg_key_child(child, sizeof child, path, p.name, p.len);
		if (strlen(p.name) != p.len) {
			r = spd__cfg_fail(ld, p.key, child, "key contains a NUL byte");
			break;
		}
		if (dup[i]) {
			r = spd__cfg_fail(ld, p.key, child, "%s", dup_what);
			break;
		}
		r = loader_node(ld, map->data.mapping.pairs.start[i].value, p.key, child,
				&p.value);
		if (r < 0)
			break;
		r = fn(ld, &p, arg);
		if (r == UNKNOWN_KEY)
			r = spd__cfg_fail(ld, p.key, child, "unknown key");
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
	int r = spd__cfg_expect(ld, node, path, YAML_SEQUENCE_NODE, "a list");

	if (r < 0)
		return r;
	*n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	if (*n < min_items)
		return spd__cfg_fail(ld, node, path, "must not be empty");
	if (*n > max_items)
		return spd__cfg_fail(ld, node, path, "too many items (max %zu)", max_items);
	return 0;
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
		r = spd__cfg_fail(ld, root, "", "only one YAML document is allowed");
	yaml_document_delete(&extra);
	return r;
}

int spd__cfg_open(struct loader *ld, const char *text, size_t len)
{
	struct feed feed = {.text = text, .len = len};
	yaml_parser_t parser;
	int r = 0;

	if (!yaml_parser_initialize(&parser))
		return spd__cfg_errno(ld, -ENOMEM);
	feed.parser = &parser;
	yaml_parser_set_input(&parser, feed_read, &feed);
	if (!yaml_parser_load(&parser, &ld->doc)) {
		r = loader_yaml_error(ld, &parser, &feed);
		goto out;
	}
	ld->doc_loaded = true;
	r = loader_single_document(ld, &parser, &feed);
out:
	yaml_parser_delete(&parser);
	return r;
}

void spd__cfg_close(struct loader *ld)
{
	if (ld->doc_loaded)
		yaml_document_delete(&ld->doc);
	ld->doc_loaded = false;
}

struct strv_list {
	char **v;
	strv_check_fn check;
};

static int strv_item(struct loader *ld, yaml_node_t *item, const char *path, size_t i,
		     void *arg)
{
	struct strv_list *l = arg;
	int r = spd__cfg_string(ld, item, path, 0, CONFIG_SCALAR_MAX, &l->v[i]);

	if (r == 0 && l->check != NULL)
		r = l->check(ld, item, path, i, l->v[i]);
	return r;
}

int spd__cfg_strv(struct loader *ld, const yaml_node_t *node, const char *path,
		  size_t min_items, size_t max_items, strv_check_fn check, char ***v,
		  size_t *count)
{
	struct strv_list l = {NULL, check};
	size_t n;
	int r = loader_list(ld, node, path, min_items, max_items, &n);

	if (r < 0)
		return r;
	l.v = calloc(n + 1, sizeof *l.v);
	if (l.v == NULL)
		return spd__cfg_errno(ld, -ENOMEM);
	*v = l.v;
	r = loader_each_item(ld, node, path, strv_item, &l);
	if (r == 0)
		*count = n;
	return r;
}
