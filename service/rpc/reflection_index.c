/* The reflection index: see reflection_index.h.
 *
 * The set is unpacked twice over: once as the private RawFileSet (each file's
 * bytes, kept) and once per file as a FileDescriptorProto (walked for names,
 * then freed). Symbols follow protobuf's scoping: nested types, fields and
 * oneofs live in their message's scope, enum values beside their enum.
 */
#include "service/rpc/reflection_index.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "spawnd/internal/raw_file_set.pb-c.h"

typedef struct symbol {
	char *name;
	size_t file;
	bool is_message;
} symbol;

typedef struct extension {
	char *extendee;  /* without the leading dot */
	int32_t number;
	size_t file;
} extension;

typedef struct file {
	char *name;
	size_t *deps;
	size_t ndeps;
} file;

struct spd_reflection_index {
	Spawnd__Internal__RawFileSet *raw;  /* owns every file's bytes */
	file *files;
	size_t nfiles;
	symbol *symbols;
	size_t nsymbols, symbols_cap;
	char **services;
	size_t nservices, services_cap;
	extension *extensions;
	size_t nextensions, extensions_cap;
};

/* ---- building ---------------------------------------------------------------- */

static char *join(const char *scope, const char *name)
{
	size_t a = strlen(scope), b = strlen(name);
	char *s = malloc(a + b + 2);

	if (s == NULL)
		return NULL;
	if (a == 0) {
		memcpy(s, name, b + 1);
	} else {
		memcpy(s, scope, a);
		s[a] = '.';
		memcpy(s + a + 1, name, b + 1);
	}
	return s;
}

/* Grows *V (of *CAP elements of SIZE) to hold one more than N. */
static int reserve(void **v, size_t *cap, size_t n, size_t size)
{
	void *nv;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	nv = realloc(*v, ncap * size);
	if (nv == NULL)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

/* Takes NAME (freed on failure). */
static int add_symbol(spd_reflection_index *x, char *name, size_t f, bool is_message)
{
	if (name == NULL || reserve((void **)&x->symbols, &x->symbols_cap, x->nsymbols,
				    sizeof *x->symbols) < 0) {
		free(name);
		return -ENOMEM;
	}
	x->symbols[x->nsymbols++] = (symbol){name, f, is_message};
	return 0;
}

static int add_scoped(spd_reflection_index *x, const char *scope, const char *name, size_t f,
		      bool is_message)
{
	return add_symbol(x, join(scope, name), f, is_message);
}

static int add_extensions(spd_reflection_index *x, const char *scope,
			  Google__Protobuf__FieldDescriptorProto *const *ext, size_t n, size_t f)
{
	for (size_t i = 0; i < n; i++) {
		const char *extendee = ext[i]->extendee != NULL ? ext[i]->extendee : "";
		char *e;

		if (add_scoped(x, scope, ext[i]->name, f, false) < 0)
			return -ENOMEM;
		if (reserve((void **)&x->extensions, &x->extensions_cap, x->nextensions,
			    sizeof *x->extensions) < 0)
			return -ENOMEM;
		e = strdup(extendee[0] == '.' ? extendee + 1 : extendee);
		if (e == NULL)
			return -ENOMEM;
		x->extensions[x->nextensions++] = (extension){e, ext[i]->number, f};
	}
	return 0;
}

static int add_enum(spd_reflection_index *x, const char *scope,
		    const Google__Protobuf__EnumDescriptorProto *en, size_t f)
{
	if (add_scoped(x, scope, en->name, f, false) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < en->n_value; i++)
		if (add_scoped(x, scope, en->value[i]->name, f, false) < 0)
			return -ENOMEM;
	return 0;
}

static int add_message(spd_reflection_index *x, const char *scope,
		       const Google__Protobuf__DescriptorProto *m, size_t f)
{
	char *full = join(scope, m->name);
	int rc = -ENOMEM;

	if (full == NULL || add_symbol(x, strdup(full), f, true) < 0)
		goto out;
	for (size_t i = 0; i < m->n_field; i++)
		if (add_scoped(x, full, m->field[i]->name, f, false) < 0)
			goto out;
	for (size_t i = 0; i < m->n_oneof_decl; i++)
		if (add_scoped(x, full, m->oneof_decl[i]->name, f, false) < 0)
			goto out;
	for (size_t i = 0; i < m->n_enum_type; i++)
		if (add_enum(x, full, m->enum_type[i], f) < 0)
			goto out;
	for (size_t i = 0; i < m->n_nested_type; i++)
		if (add_message(x, full, m->nested_type[i], f) < 0)
			goto out;
	if (add_extensions(x, full, m->extension, m->n_extension, f) < 0)
		goto out;
	rc = 0;
out:
	free(full);
	return rc;
}

static int add_file(spd_reflection_index *x, const Google__Protobuf__FileDescriptorProto *fd,
		    size_t f)
{
	const char *pkg = fd->package != NULL ? fd->package : "";

	for (size_t i = 0; i < fd->n_message_type; i++)
		if (add_message(x, pkg, fd->message_type[i], f) < 0)
			return -ENOMEM;
	for (size_t i = 0; i < fd->n_enum_type; i++)
		if (add_enum(x, pkg, fd->enum_type[i], f) < 0)
			return -ENOMEM;
	for (size_t i = 0; i < fd->n_service; i++) {
		const Google__Protobuf__ServiceDescriptorProto *s = fd->service[i];
		char *full = join(pkg, s->name);

		if (full == NULL || reserve((void **)&x->services, &x->services_cap, x->nservices,
					    sizeof *x->services) < 0) {
			free(full);
			return -ENOMEM;
		}
		x->services[x->nservices++] = full;
		if (add_symbol(x, strdup(full), f, false) < 0)
			return -ENOMEM;
		for (size_t j = 0; j < s->n_method; j++)
			if (add_scoped(x, full, s->method[j]->name, f, false) < 0)
				return -ENOMEM;
	}
	return add_extensions(x, pkg, fd->extension, fd->n_extension, f);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const symbol *)a)->name, ((const symbol *)b)->name);
}

/* Resolves FILE's imports to indices; -EINVAL if one is not in the set. */
static int resolve_deps(spd_reflection_index *x, file *fl,
			const Google__Protobuf__FileDescriptorProto *fd)
{
	fl->deps = calloc(fd->n_dependency ? fd->n_dependency : 1, sizeof *fl->deps);
	if (fl->deps == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < fd->n_dependency; i++) {
		if (spd_reflection_index_find_file(x, fd->dependency[i], &fl->deps[i]) < 0)
			return -EINVAL;
		fl->ndeps++;
	}
	return 0;
}

int spd_reflection_index_create(const uint8_t *fds, size_t len, spd_reflection_index **out)
{
	spd_reflection_index *x = calloc(1, sizeof *x);
	Google__Protobuf__FileDescriptorProto **fd = NULL;
	int rc = -ENOMEM;

	*out = NULL;
	if (x == NULL)
		return -ENOMEM;
	x->raw = spawnd__internal__raw_file_set__unpack(NULL, len, fds);
	if (x->raw == NULL) {
		rc = -EINVAL;
		goto out;
	}
	x->files = calloc(x->raw->n_file ? x->raw->n_file : 1, sizeof *x->files);
	fd = calloc(x->raw->n_file ? x->raw->n_file : 1, sizeof *fd);
	if (x->files == NULL || fd == NULL)
		goto out;
	for (size_t i = 0; i < x->raw->n_file; i++) {
		fd[i] = google__protobuf__file_descriptor_proto__unpack(NULL, x->raw->file[i].len,
									x->raw->file[i].data);
		if (fd[i] == NULL || fd[i]->name == NULL) {
			rc = -EINVAL;
			goto out;
		}
		x->files[i].name = strdup(fd[i]->name);
		if (x->files[i].name == NULL)
			goto out;
		x->nfiles++;
		if (add_file(x, fd[i], i) < 0)
			goto out;
	}
	for (size_t i = 0; i < x->nfiles; i++) {
		rc = resolve_deps(x, &x->files[i], fd[i]);
		if (rc < 0)
			goto out;
	}
	qsort(x->symbols, x->nsymbols, sizeof *x->symbols, by_name);
	*out = x;
	rc = 0;
out:
	for (size_t i = 0; fd != NULL && x->raw != NULL && i < x->raw->n_file; i++)
		if (fd[i] != NULL)
			google__protobuf__file_descriptor_proto__free_unpacked(fd[i], NULL);
	free(fd);
	if (rc < 0)
		spd_reflection_index_destroy(x);
	return rc;
}

void spd_reflection_index_destroy(spd_reflection_index *x)
{
	if (x == NULL)
		return;
	for (size_t i = 0; i < x->nfiles; i++) {
		free(x->files[i].name);
		free(x->files[i].deps);
	}
	free(x->files);
	for (size_t i = 0; i < x->nsymbols; i++)
		free(x->symbols[i].name);
	free(x->symbols);
	for (size_t i = 0; i < x->nservices; i++)
		free(x->services[i]);
	free(x->services);
	for (size_t i = 0; i < x->nextensions; i++)
		free(x->extensions[i].extendee);
	free(x->extensions);
	if (x->raw != NULL)
		spawnd__internal__raw_file_set__free_unpacked(x->raw, NULL);
	free(x);
}

/* ---- queries ------------------------------------------------------------------- */

size_t spd_reflection_index_file_count(const spd_reflection_index *x)
{
	return x->nfiles;
}

const char *spd_reflection_index_file_name(const spd_reflection_index *x, size_t i)
{
	return x->files[i].name;
}

const uint8_t *spd_reflection_index_file_bytes(const spd_reflection_index *x, size_t i,
					      size_t *len)
{
	*len = x->raw->file[i].len;
	return x->raw->file[i].data;
}

int spd_reflection_index_find_file(const spd_reflection_index *x, const char *name, size_t *f)
{
	for (size_t i = 0; i < x->nfiles; i++) {
		if (strcmp(x->files[i].name, name) == 0) {
			*f = i;
			return 0;
		}
	}
	return -ENOENT;
}

int spd_reflection_index_find_symbol(const spd_reflection_index *x, const char *name, size_t *f,
				     bool *is_message)
{
	symbol key = {.name = (char *)name};
	const symbol *s;

	if (x->nsymbols == 0)
		return -ENOENT;
	s = bsearch(&key, x->symbols, x->nsymbols, sizeof *x->symbols, by_name);
	if (s == NULL)
		return -ENOENT;
	*f = s->file;
	if (is_message != NULL)
		*is_message = s->is_message;
	return 0;
}

size_t spd_reflection_index_closure(const spd_reflection_index *x, size_t f, size_t *out)
{
	size_t n = 0;

	/* OUT doubles as the work list: each file is appended once, then its
	 * imports are appended when its turn comes. */
	out[n++] = f;
	for (size_t next = 0; next < n; next++) {
		const file *fl = &x->files[out[next]];
		for (size_t d = 0; d < fl->ndeps; d++) {
			bool seen = false;
			for (size_t k = 0; k < n && !seen; k++)
				seen = out[k] == fl->deps[d];
			if (!seen)
				out[n++] = fl->deps[d];
		}
	}
	return n;
}

size_t spd_reflection_index_service_count(const spd_reflection_index *x)
{
	return x->nservices;
}

const char *spd_reflection_index_service(const spd_reflection_index *x, size_t i)
{
	return x->services[i];
}

size_t spd_reflection_index_extension_numbers(const spd_reflection_index *x, const char *type,
					      int32_t *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < x->nextensions && n < max; i++)
		if (strcmp(x->extensions[i].extendee, type) == 0)
			out[n++] = x->extensions[i].number;
	return n;
}

int spd_reflection_index_find_extension(const spd_reflection_index *x, const char *type,
					int32_t number, size_t *f)
{
	for (size_t i = 0; i < x->nextensions; i++) {
		if (strcmp(x->extensions[i].extendee, type) == 0 && x->extensions[i].number == number) {
			*f = x->extensions[i].file;
			return 0;
		}
	}
	return -ENOENT;
}
