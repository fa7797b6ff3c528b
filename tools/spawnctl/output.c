#include "tools/spawnctl/output.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bytes shown by the human printer before it cuts a value. */
#define SPC_HUMAN_BYTES_MAX 512
/* Longest flattened key ("targets[12].limits.max_output_bytes" is 34). */
#define SPC_KEY_MAX 256

/* ---------------------------------------------------------------------------
 * Descriptors: field access
 * ------------------------------------------------------------------------- */

static const void *spc__member(const ProtobufCMessage *m, unsigned offset)
{
	return (const char *)m + offset;
}

static size_t spc__elem_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default: /* 32-bit integers and enums */
		return 4;
	}
}

/* Whether field FD of M is set: for proto3 (LABEL_NONE) fields, whether it
 * differs from its default, as the JSON mapping omits defaults. */
static int spc__present(const ProtobufCMessage *m,
			const ProtobufCFieldDescriptor *fd)
{
	const void *p = spc__member(m, fd->offset);

	if (fd->label == PROTOBUF_C_LABEL_REPEATED)
		return *(const size_t *)spc__member(m, fd->quantifier_offset) > 0;
	if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)spc__member(m, fd->quantifier_offset) ==
		       fd->id;
	if (fd->label == PROTOBUF_C_LABEL_OPTIONAL &&
	    fd->type != PROTOBUF_C_TYPE_STRING &&
	    fd->type != PROTOBUF_C_TYPE_MESSAGE)
		return *(const protobuf_c_boolean *)spc__member(
			m, fd->quantifier_offset);
	switch (fd->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;

		if (fd->label == PROTOBUF_C_LABEL_NONE)
			return s != NULL && s[0] != '\0';
		return s != NULL;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(ProtobufCMessage *const *)p != NULL;
	case PROTOBUF_C_TYPE_BYTES:
		return fd->label != PROTOBUF_C_LABEL_NONE ||
		       ((const ProtobufCBinaryData *)p)->len > 0;
	case PROTOBUF_C_TYPE_FLOAT:
		return fd->label != PROTOBUF_C_LABEL_NONE ||
		       *(const float *)p != 0.0f;
	case PROTOBUF_C_TYPE_DOUBLE:
		return fd->label != PROTOBUF_C_LABEL_NONE ||
		       *(const double *)p != 0.0;
	case PROTOBUF_C_TYPE_BOOL:
		return fd->label != PROTOBUF_C_LABEL_NONE ||
		       *(const protobuf_c_boolean *)p != 0;
	default:
		if (spc__elem_size(fd->type) == 8)
			return fd->label != PROTOBUF_C_LABEL_NONE ||
			       *(const uint64_t *)p != 0;
		return fd->label != PROTOBUF_C_LABEL_NONE ||
		       *(const uint32_t *)p != 0;
	}
}

/* A map<K, V> field is a repeated message "...Entry" with key = 1, value = 2
 * (protobuf-c keeps no map flag). */
static int spc__is_map(const ProtobufCFieldDescriptor *fd)
{
	const ProtobufCMessageDescriptor *d = fd->descriptor;
	size_t n;

	if (fd->label != PROTOBUF_C_LABEL_REPEATED ||
	    fd->type != PROTOBUF_C_TYPE_MESSAGE || d->n_fields != 2)
		return 0;
	n = strlen(d->short_name);
	return n > 5 && strcmp(d->short_name + n - 5, "Entry") == 0 &&
	       strcmp(d->fields[0].name, "key") == 0 && d->fields[0].id == 1 &&
	       strcmp(d->fields[1].name, "value") == 0 && d->fields[1].id == 2;
}

static int spc__is_timestamp(const ProtobufCMessageDescriptor *d)
{
	return d == &google__protobuf__timestamp__descriptor;
}

static int spc__is_duration(const ProtobufCMessageDescriptor *d)
{
	return d == &google__protobuf__duration__descriptor;
}

/* ---------------------------------------------------------------------------
 * Shared value formats
 * ------------------------------------------------------------------------- */

const char *spc_output_enum_name(const ProtobufCEnumDescriptor *d, int value)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
	char prefix[128];
	size_t n = 0;
	const char *s;

	if (v == NULL)
		return NULL;
	/* "StartMethod" -> "START_METHOD_" */
	for (s = d->short_name; *s != '\0' && n + 3 < sizeof prefix; s++) {
		if (isupper((unsigned char)*s) && s != d->short_name)
			prefix[n++] = '_';
		prefix[n++] = (char)toupper((unsigned char)*s);
	}
	prefix[n++] = '_';
	prefix[n] = '\0';
	if (strncmp(v->name, prefix, n) == 0 && v->name[n] != '\0')
		return v->name + n;
	return v->name;
}

const char *spc_output_enum_label(const ProtobufCEnumDescriptor *d, int value)
{
	const char *name = spc_output_enum_name(d, value);

	return name != NULL ? name : "?";
}

/* Digits of a fraction of a second: 0, 3, 6 or 9, as the JSON mapping does. */
static void spc__fraction(FILE *f, int32_t nanos)
{
	if (nanos == 0)
		return;
	if (nanos % 1000000 == 0)
		fprintf(f, ".%03" PRId32, nanos / 1000000);
	else if (nanos % 1000 == 0)
		fprintf(f, ".%06" PRId32, nanos / 1000);
	else
		fprintf(f, ".%09" PRId32, nanos);
}

void spc_output_timestamp(FILE *f, const Google__Protobuf__Timestamp *ts)
{
	time_t secs = (time_t)ts->seconds;
	struct tm tm;
	char buf[64];

	if (gmtime_r(&secs, &tm) == NULL ||
	    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		fprintf(f, "%" PRId64 "s", ts->seconds);
		return;
	}
	fputs(buf, f);
	if (ts->nanos > 0 && ts->nanos < 1000000000)
		spc__fraction(f, ts->nanos);
	fputc('Z', f);
}

void spc_output_duration(FILE *f, const Google__Protobuf__Duration *d)
{
	int64_t secs = d->seconds;
	int32_t nanos = d->nanos;

	if (secs < 0 || nanos < 0) {
		fputc('-', f);
		secs = secs < 0 ? -secs : secs;
		nanos = nanos < 0 ? -nanos : nanos;
	}
	fprintf(f, "%" PRId64, secs);
	if (nanos < 1000000000)
		spc__fraction(f, nanos);
	fputc('s', f);
}

void spc_output_quoted(FILE *f, const uint8_t *data, size_t len, size_t max)
{
	size_t n = (max != 0 && len > max) ? max : len;
	size_t i;

	fputc('"', f);
	for (i = 0; i < n; i++) {
		uint8_t c = data[i];

		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c < 0x20 || c >= 0x7f)
				fprintf(f, "\\x%02x", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
	if (n < len)
		fprintf(f, "... (%zu bytes)", len);
}

/* ---------------------------------------------------------------------------
 * JSON
 * ------------------------------------------------------------------------- */

static void spc__json_string(FILE *f, const char *s, size_t len)
{
	size_t i;

	fputc('"', f);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c < 0x20)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}

static void spc__base64(FILE *f, const uint8_t *p, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	fputc('"', f);
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		fputc(tab[v >> 18], f);
		fputc(tab[(v >> 12) & 63], f);
		fputc(tab[(v >> 6) & 63], f);
		fputc(tab[v & 63], f);
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		fputc(tab[v >> 18], f);
		fputc(tab[(v >> 12) & 63], f);
		fputs("==", f);
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		fputc(tab[v >> 18], f);
		fputc(tab[(v >> 12) & 63], f);
		fputc(tab[(v >> 6) & 63], f);
		fputc('=', f);
	}
	fputc('"', f);
}

/* snake_case -> lowerCamelCase, the JSON mapping's default json_name. */
static void spc__json_name(FILE *f, const char *name)
{
	int upper = 0;

	fputc('"', f);
	for (; *name != '\0'; name++) {
		if (*name == '_') {
			upper = 1;
			continue;
		}
		fputc(upper ? toupper((unsigned char)*name) : *name, f);
		upper = 0;
	}
	fputc('"', f);
}

static void spc__json_double(FILE *f, double v, int digits)
{
	if (isnan(v))
		fputs("\"NaN\"", f);
	else if (isinf(v))
		fputs(v > 0 ? "\"Infinity\"" : "\"-Infinity\"", f);
	else
		fprintf(f, "%.*g", digits, v);
}

static void spc__json_message(FILE *f, const ProtobufCMessage *m);

/* One value of field FD stored at P (an element, for repeated fields). */
static void spc__json_value(FILE *f, const ProtobufCFieldDescriptor *fd,
			    const void *p)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(f, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		fprintf(f, "%" PRIu32, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(f, "\"%" PRId64 "\"", *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		fprintf(f, "\"%" PRIu64 "\"", *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		spc__json_double(f, *(const float *)p, 9);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		spc__json_double(f, *(const double *)p, 17);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		fputs(*(const protobuf_c_boolean *)p ? "true" : "false", f);
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev =
			protobuf_c_enum_descriptor_get_value(fd->descriptor, v);

		if (ev != NULL)
			spc__json_string(f, ev->name, strlen(ev->name));
		else
			fprintf(f, "%d", v);
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;

		spc__json_string(f, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;

		spc__base64(f, b->data, b->len);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;

		if (sub != NULL)
			spc__json_message(f, sub);
		else
			fputs("null", f);
		break;
	}
	}
}

/* Map keys are JSON strings whatever their proto type. */
static void spc__json_map(FILE *f, const ProtobufCFieldDescriptor *fd,
			  ProtobufCMessage *const *entries, size_t n)
{
	const ProtobufCMessageDescriptor *d = fd->descriptor;
	size_t i;

	fputc('{', f);
	for (i = 0; i < n; i++) {
		const ProtobufCMessage *e = entries[i];
		const void *key = spc__member(e, d->fields[0].offset);

		if (i > 0)
			fputc(',', f);
		if (d->fields[0].type == PROTOBUF_C_TYPE_STRING) {
			spc__json_value(f, &d->fields[0], key);
		} else {
			fputc('"', f);
			/* integers and bools: their JSON text is a valid key */
			if (spc__elem_size(d->fields[0].type) == 8 ||
			    d->fields[0].type == PROTOBUF_C_TYPE_BOOL) {
				spc__json_value(f, &d->fields[0], key);
			} else {
				fprintf(f, "%" PRId32, *(const int32_t *)key);
			}
			fputc('"', f);
		}
		fputc(':', f);
		spc__json_value(f, &d->fields[1],
				spc__member(e, d->fields[1].offset));
	}
	fputc('}', f);
}

static void spc__json_message(FILE *f, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	int first = 1;
	unsigned i;

	if (spc__is_timestamp(d)) {
		fputc('"', f);
		spc_output_timestamp(f, (const Google__Protobuf__Timestamp *)m);
		fputc('"', f);
		return;
	}
	if (spc__is_duration(d)) {
		fputc('"', f);
		spc_output_duration(f, (const Google__Protobuf__Duration *)m);
		fputc('"', f);
		return;
	}
	fputc('{', f);
	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		const void *p = spc__member(m, fd->offset);

		if (!spc__present(m, fd))
			continue;
		if (!first)
			fputc(',', f);
		first = 0;
		spc__json_name(f, fd->name);
		fputc(':', f);
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)spc__member(m, fd->quantifier_offset);
			const char *arr = *(const char *const *)p;
			size_t sz = spc__elem_size(fd->type);
			size_t j;

			if (spc__is_map(fd)) {
				spc__json_map(f, fd, (ProtobufCMessage *const *)arr, n);
				continue;
			}
			fputc('[', f);
			for (j = 0; j < n; j++) {
				if (j > 0)
					fputc(',', f);
				spc__json_value(f, fd, arr + j * sz);
			}
			fputc(']', f);
		} else {
			spc__json_value(f, fd, p);
		}
	}
	fputc('}', f);
}

int spc_output_json(FILE *f, const ProtobufCMessage *msg)
{
	spc__json_message(f, msg);
	fputc('\n', f);
	return ferror(f) ? -EIO : 0;
}

/* ---------------------------------------------------------------------------
 * Human "key: value" lines
 * ------------------------------------------------------------------------- */

struct spc__line {
	char *key;
	char *value;
};

struct spc__lines {
	struct spc__line *v;
	size_t n, cap;
};

/* Takes ownership of VALUE (freed on failure too). */
static int spc__lines_add(struct spc__lines *l, const char *key, char *value)
{
	char *k = NULL;
	int err = 0;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct spc__line *v = realloc(l->v, cap * sizeof *v);

		if (v == NULL) {
			err = -ENOMEM;
			goto out;
		}
		l->v = v;
		l->cap = cap;
	}
	k = strdup(key);
	if (k == NULL) {
		err = -ENOMEM;
		goto out;
	}
	l->v[l->n].key = k;
	l->v[l->n].value = value;
	l->n++;
	value = NULL;
out:
	free(value);
	return err;
}

static void spc__lines_release(struct spc__lines *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].value);
	}
	free(l->v);
}

/* One value as text: the element of field FD stored at P. */
static void spc__human_value(FILE *f, const ProtobufCFieldDescriptor *fd,
			     const void *p, int in_list)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(f, "%" PRId64, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		fprintf(f, "%" PRIu64, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const char *name = spc_output_enum_name(fd->descriptor, v);

		if (name != NULL)
			fputs(name, f);
		else
			fprintf(f, "%d", v);
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;

		if (s == NULL)
			s = "";
		/* In a list, quote what would not read back as one word. */
		if (in_list && (s[0] == '\0' || strpbrk(s, " \t\n\"\\") != NULL))
			spc_output_quoted(f, (const uint8_t *)s, strlen(s), 0);
		else
			fputs(s, f);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;

		spc_output_quoted(f, b->data, b->len, SPC_HUMAN_BYTES_MAX);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;

		if (sub != NULL && spc__is_timestamp(sub->descriptor))
			spc_output_timestamp(f, (const Google__Protobuf__Timestamp *)sub);
		else if (sub != NULL && spc__is_duration(sub->descriptor))
			spc_output_duration(f, (const Google__Protobuf__Duration *)sub);
		else /* only map values get here; flattened elsewhere */
			spc__json_value(f, fd, p);
		break;
	}
	default: /* the JSON text of numbers and bools reads well */
		spc__json_value(f, fd, p);
	}
}

static int spc__is_wkt_value(const ProtobufCFieldDescriptor *fd)
{
	return fd->type == PROTOBUF_C_TYPE_MESSAGE &&
	       (spc__is_timestamp(fd->descriptor) || spc__is_duration(fd->descriptor));
}

static int spc__human_message(struct spc__lines *l, char *key, size_t keylen,
			      const ProtobufCMessage *m);

/* Flattens the sub-message SUB under KEY + NAME + SUFFIX + ".". */
static int spc__human_nested(struct spc__lines *l, char *key, size_t keylen,
			     const char *name, const char *suffix,
			     const ProtobufCMessage *sub)
{
	int n = snprintf(key + keylen, SPC_KEY_MAX - keylen, "%s%s.", name, suffix);

	if (n < 0 || (size_t)n >= SPC_KEY_MAX - keylen)
		return -ENAMETOOLONG;
	return spc__human_message(l, key, keylen + (size_t)n, sub);
}

static int spc__human_field(struct spc__lines *l, char *key, size_t keylen,
			    const ProtobufCMessage *m,
			    const ProtobufCFieldDescriptor *fd)
{
	const void *p = spc__member(m, fd->offset);
	char *text = NULL;
	size_t textlen = 0;
	FILE *f = NULL;
	int err = 0;

	if (fd->type == PROTOBUF_C_TYPE_MESSAGE && !spc__is_wkt_value(fd) &&
	    !spc__is_map(fd)) {
		if (fd->label != PROTOBUF_C_LABEL_REPEATED)
			return spc__human_nested(l, key, keylen, fd->name, "",
						 *(ProtobufCMessage *const *)p);
		size_t n = *(const size_t *)spc__member(m, fd->quantifier_offset);
		ProtobufCMessage *const *arr = *(ProtobufCMessage **const *)p;
		size_t i;

		for (i = 0; i < n && err == 0; i++) {
			char idx[32];

			snprintf(idx, sizeof idx, "[%zu]", i);
			err = spc__human_nested(l, key, keylen, fd->name, idx, arr[i]);
		}
		return err;
	}
	f = open_memstream(&text, &textlen);
	if (f == NULL) {
		err = -ENOMEM;
		goto out;
	}
	if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t n = *(const size_t *)spc__member(m, fd->quantifier_offset);
		const char *arr = *(const char *const *)p;
		size_t i;

		for (i = 0; i < n; i++) {
			if (i > 0)
				fputc(' ', f);
			if (spc__is_map(fd)) {
				const ProtobufCMessage *e =
					((ProtobufCMessage *const *)arr)[i];
				const ProtobufCMessageDescriptor *d = fd->descriptor;

				spc__human_value(f, &d->fields[0],
						 spc__member(e, d->fields[0].offset), 1);
				fputc('=', f);
				spc__human_value(f, &d->fields[1],
						 spc__member(e, d->fields[1].offset), 1);
			} else {
				spc__human_value(f, fd, arr + i * spc__elem_size(fd->type), 1);
			}
		}
	} else {
		spc__human_value(f, fd, p, 0);
	}
	if (fclose(f) != 0) {
		f = NULL;
		err = -ENOMEM;
		goto out;
	}
	f = NULL;
	if (snprintf(key + keylen, SPC_KEY_MAX - keylen, "%s", fd->name) >=
	    (int)(SPC_KEY_MAX - keylen)) {
		err = -ENAMETOOLONG;
		goto out;
	}
	err = spc__lines_add(l, key, text);
	text = NULL;
out:
	if (f != NULL)
		fclose(f);
	free(text);
	return err;
}

static int spc__human_message(struct spc__lines *l, char *key, size_t keylen,
			      const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	unsigned i;
	int err = 0;

	for (i = 0; i < d->n_fields && err == 0; i++) {
		if (spc__present(m, &d->fields[i]))
			err = spc__human_field(l, key, keylen, m, &d->fields[i]);
		key[keylen] = '\0';
	}
	return err;
}

int spc_output_fields(FILE *f, const ProtobufCMessage *msg)
{
	struct spc__lines l = { NULL, 0, 0 };
	char key[SPC_KEY_MAX] = "";
	size_t width = 0, i;
	int err;

	err = spc__human_message(&l, key, 0, msg);
	if (err < 0)
		goto out;
	for (i = 0; i < l.n; i++)
		if (strlen(l.v[i].key) > width)
			width = strlen(l.v[i].key);
	for (i = 0; i < l.n; i++) {
		const char *v;

		fprintf(f, "%s:%*s", l.v[i].key,
			(int)(width - strlen(l.v[i].key) + 1), "");
		/* Multi-line strings (backtraces) continue under the value. */
		for (v = l.v[i].value; *v != '\0'; v++) {
			fputc(*v, f);
			if (*v == '\n' && v[1] != '\0')
				fprintf(f, "%*s", (int)(width + 2), "");
		}
		fputc('\n', f);
	}
	err = ferror(f) ? -EIO : 0;
out:
	spc__lines_release(&l);
	return err;
}

/* ---------------------------------------------------------------------------
 * Tables
 * ------------------------------------------------------------------------- */

struct spc_output_table {
	size_t ncols;
	size_t nrows; /* the header included */
	size_t cap;
	char **cells; /* nrows * ncols */
};

int spc_output_table_create(size_t ncols, const char *const *header,
			    spc_output_table **out)
{
	spc_output_table *t = NULL;
	int err;

	*out = NULL;
	t = calloc(1, sizeof *t);
	if (t == NULL)
		return -ENOMEM;
	t->ncols = ncols;
	err = spc_output_table_add(t, header);
	if (err < 0)
		goto out;
	*out = t;
	t = NULL;
out:
	spc_output_table_destroy(t);
	return err;
}

int spc_output_table_add(spc_output_table *t, const char *const *cells)
{
	size_t i;

	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **c = realloc(t->cells, cap * t->ncols * sizeof *c);

		if (c == NULL)
			return -ENOMEM;
		t->cells = c;
		t->cap = cap;
	}
	for (i = 0; i < t->ncols; i++) {
		char *s = strdup(cells[i] != NULL ? cells[i] : "");

		if (s == NULL) {
			while (i-- > 0)
				free(t->cells[t->nrows * t->ncols + i]);
			return -ENOMEM;
		}
		t->cells[t->nrows * t->ncols + i] = s;
	}
	t->nrows++;
	return 0;
}

int spc_output_table_print(const spc_output_table *t, FILE *f)
{
	size_t r, c;

	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			size_t w = 0, k;

			if (c + 1 == t->ncols) {
				fputs(s, f);
				break;
			}
			for (k = 0; k < t->nrows; k++)
				if (strlen(t->cells[k * t->ncols + c]) > w)
					w = strlen(t->cells[k * t->ncols + c]);
			fprintf(f, "%-*s  ", (int)w, s);
		}
		fputc('\n', f);
	}
	return ferror(f) ? -EIO : 0;
}

void spc_output_table_destroy(spc_output_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}
