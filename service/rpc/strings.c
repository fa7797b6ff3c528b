#include "service/rpc/strings.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/common/utf8.h"

/* Requests nest a few levels (a map entry, a Duration); the schema bounds the
 * depth, this only guards a descriptor that would recurse. */
#define DEPTH_MAX 16
/* Repeated fields get an index in the path for the first fields of a message. */
#define INDEXED_FIELDS 64
#define PATH_MAX_LEN 128

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

/* protobuf-c has no flag for map entries: a map<K, V> is a repeated message
 * named <Field>Entry with fields key = 1 and value = 2, which is what protoc
 * generates for it. */
static bool is_map_entry(const ProtobufCMessageDescriptor *d)
{
	size_t n = strlen(d->name);
	const ProtobufCFieldDescriptor *k, *v;

	if (d->n_fields != 2 || n < 5 || strcmp(d->name + n - 5, "Entry") != 0)
		return false;
	k = protobuf_c_message_descriptor_get_field(d, 1);
	v = protobuf_c_message_descriptor_get_field(d, 2);
	return k != NULL && v != NULL && strcmp(k->name, "key") == 0 && strcmp(v->name, "value") == 0;
}

/* Reads a varint at *P (before END); false if it is cut or longer than 10 bytes. */
static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (unsigned shift = 0; shift < 70; shift += 7) {
		if (*p == end)
			return false;
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return true;
	}
	return false;
}

typedef struct checker {
	char *buf;
	size_t buflen;
	const char *bad; /* the first complaint, in buf */
} checker;

static void complain(checker *c, const char *path, const char *what)
{
	snprintf(c->buf, c->buflen, "%s: %s", path, what);
	c->bad = c->buf;
}

/* PART: NULL for a plain string field, "key" or "value" in a map entry. */
static void string_field(checker *c, const char *path, const char *part, const uint8_t *s,
			 size_t n)
{
	char what[64];
	const char *bad;

	if (memchr(s, '\0', n) != NULL)
		bad = "contains a NUL byte";
	else if (!spd_utf8_valid((const char *)s, n))
		bad = part != NULL ? "is not valid UTF-8" : "not valid UTF-8";
	else
		return;
	snprintf(what, sizeof what, "%s%s%s", part != NULL ? "a " : "", part != NULL ? part : "",
		 part != NULL ? " " : "");
	snprintf(what + strlen(what), sizeof what - strlen(what), "%s", bad);
	complain(c, path, what);
}

/* Walks the message encoded in [P, END) as descriptor D, named PATH ("" at the
 * top). Inside a map entry the complaint names the map field's path and says
 * whether a key or a value is wrong. */
static void walk(checker *c, const ProtobufCMessageDescriptor *d, const uint8_t *p,
		 const uint8_t *end, const char *path, int depth)
{
	size_t seen[INDEXED_FIELDS] = {0};
	bool entry = is_map_entry(d);

	if (depth > DEPTH_MAX) {
		complain(c, "request", "nested too deeply");
		return;
	}
	while (p < end && c->bad == NULL) {
		uint64_t tag, v;
		const ProtobufCFieldDescriptor *f;
		char sub[PATH_MAX_LEN];
		size_t idx = 0;

		/* Field number 0 is skipped as unknown, as protobuf-c does ("80 00"). */
		if (!varint(&p, end, &tag) || (tag >> 3) > UINT32_MAX)
			goto malformed;
		switch (tag & 7) {
		case WIRE_VARINT:
			if (!varint(&p, end, &v))
				goto malformed;
			continue;
		case WIRE_FIXED64:
		case WIRE_FIXED32:
			v = (tag & 7) == WIRE_FIXED64 ? 8 : 4;
			if ((uint64_t)(end - p) < v)
				goto malformed;
			p += v;
			continue;
		case WIRE_LEN:
			if (!varint(&p, end, &v) || (uint64_t)(end - p) < v)
				goto malformed;
			break;
		default: /* groups: protobuf-c refuses them too */
			goto malformed;
		}
		f = protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3));
		if (f != NULL && (size_t)(f - d->fields) < INDEXED_FIELDS)
			idx = seen[f - d->fields]++;
		if (f == NULL || (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)) {
			p += v; /* unknown, bytes, or a packed repeated scalar */
			continue;
		}
		if (entry) {
			/* Inside a map entry: the map field is the name. */
			snprintf(sub, sizeof sub, "%s", path);
		} else if (f->label == PROTOBUF_C_LABEL_REPEATED &&
			   (f->type == PROTOBUF_C_TYPE_STRING || !is_map_entry(f->descriptor))) {
			snprintf(sub, sizeof sub, "%s%s%s[%zu]", path, path[0] ? "." : "", f->name, idx);
		} else {
			snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", f->name);
		}
		if (f->type == PROTOBUF_C_TYPE_STRING)
			string_field(c, sub, entry ? (f->id == 1 ? "key" : "value") : NULL, p, v);
		else
			walk(c, f->descriptor, p, p + v, sub, depth + 1);
		p += v;
	}
	return;
malformed:
	if (c->bad == NULL)
		complain(c, "request", "malformed message");
}

int spd_strings_cut(const char *s, int max)
{
	int n = (int)strnlen(s, (size_t)max + 1);

	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A key sent twice in any map of M (at any depth). */
static void maps(checker *c, const ProtobufCMessage *m, const char *path, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (depth > DEPTH_MAX)
		return; /* walk() has complained */
	for (unsigned i = 0; i < d->n_fields && c->bad == NULL; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *at = (const char *)m + f->offset;
		char sub[PATH_MAX_LEN];

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		/* A oneof's members share storage: only the one set is a message. */
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
			continue;
		snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", f->name);
		if (f->label != PROTOBUF_C_LABEL_REPEATED) {
			const ProtobufCMessage *one = *(const ProtobufCMessage *const *)at;
			if (one != NULL)
				maps(c, one, sub, depth + 1);
			continue;
		}
		size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
		ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)at;
		const ProtobufCMessageDescriptor *ed = f->descriptor;
		const ProtobufCFieldDescriptor *kf;

		if (!is_map_entry(ed) || (kf = protobuf_c_message_descriptor_get_field(ed, 1))->type !=
						 PROTOBUF_C_TYPE_STRING) {
			/* Not a map (or one with non-string keys, which no request has). */
			for (size_t j = 0; j < n && c->bad == NULL; j++)
				maps(c, v[j], sub, depth + 1);
			continue;
		}
		if (n < 2)
			continue;
		/* Sorted, a key sent twice sits next to itself: O(n log n) for any n. */
		const char **keys = malloc(n * sizeof *keys);
		if (keys == NULL) {
			complain(c, sub, "out of memory");
			return;
		}
		for (size_t j = 0; j < n; j++) {
			const char *k = *(const char *const *)((const char *)v[j] + kf->offset);
			keys[j] = k != NULL ? k : "";
		}
		qsort(keys, n, sizeof *keys, cmp_str);
		for (size_t j = 1; j < n && c->bad == NULL; j++) {
			if (strcmp(keys[j - 1], keys[j]) == 0) {
				char what[96];
				snprintf(what, sizeof what, "key '%.*s' sent twice", spd_strings_cut(keys[j], 64),
					 keys[j]);
				complain(c, sub, what);
			}
		}
		free(keys);
	}
}

const char *spd_strings_check(const ProtobufCMessageDescriptor *d, const ProtobufCMessage *m,
			      const uint8_t *data, size_t len, char *buf, size_t buflen)
{
	checker c = {.buf = buf, .buflen = buflen, .bad = NULL};

	walk(&c, d, data, data + len, "", 0);
	if (c.bad == NULL && m != NULL)
		maps(&c, m, "", 0);
	return c.bad;
}
