#include "service/rpc/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bounds on what a tokens file may hold. */
#define TOKENS_MAX 4096
#define TOKEN_LEN_MAX 4096
#define LINE_MAX_BYTES 65536
#define TARGETS_PER_TOKEN_MAX 1024

typedef struct entry {
	uint8_t digest[SHA256_DIGEST_LENGTH];
	spd_principal who;
	char **targets;         /* who.targets, owned */
	unsigned line;
} entry;

struct spd_auth {
	atomic_int refs;
	entry *entries;
	size_t count;
	/* Set once, by spd_auth_supersede: the file that replaced this one
	 * (a reference; NULL with REPLACED: auth was turned off). */
	_Atomic(spd_auth *) next;
	atomic_bool replaced;
};

static void entry_release(entry *e)
{
	for (size_t i = 0; e->targets != NULL && e->targets[i] != NULL; i++)
		free(e->targets[i]);
	free(e->targets);
}

static void auth_free(spd_auth *a)
{
	for (size_t i = 0; i < a->count; i++)
		entry_release(&a->entries[i]);
	free(a->entries);
	spd_auth_unref(atomic_load(&a->next));
	free(a);
}

static bool token_char(unsigned char c)
{
	return c > ' ' && c < 0x7f;
}

/* "t1,t2" into a NULL-terminated vector. -EINVAL on an empty name. */
static int parse_targets(char *spec, char ***out)
{
	size_t n = 1, i = 0;
	char **v;

	for (char *p = spec; *p; p++)
		n += *p == ',';
	if (n > TARGETS_PER_TOKEN_MAX)
		return -E2BIG;
	v = calloc(n + 1, sizeof *v);
	if (v == NULL)
		return -ENOMEM;
	for (char *tok = spec;; i++) {
		char *comma = strchr(tok, ',');
		if (comma != NULL)
			*comma = '\0';
		if (*tok == '\0' || (v[i] = strdup(tok)) == NULL) {
			int rc = *tok == '\0' ? -EINVAL : -ENOMEM;
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return rc;
		}
		if (comma == NULL)
			break;
		tok = comma + 1;
	}
	*out = v;
	return 0;
}

static void fingerprint(const uint8_t *digest, char out[9])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 4; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 15];
	}
	out[8] = '\0';
}

/* One line (NUL-terminated, no newline) into A. 1: an entry; 0: nothing on
 * it; -EINVAL (ERR filled) otherwise. */
static int parse_line(spd_auth *a, const char *path, unsigned lineno, char *line, char *err,
		      size_t errlen)
{
	char *hash = strchr(line, '#'), *tok, *spec, *end;
	entry *e;
	int rc;

	if (hash != NULL)
		*hash = '\0';
	tok = line;
	while (*tok == ' ' || *tok == '\t' || *tok == '\r')
		tok++;
	if (*tok == '\0')
		return 0;
	for (end = tok; token_char((unsigned char)*end); end++)
		;
	spec = end;
	while (*spec == ' ' || *spec == '\t')
		spec++;
	if (end == spec || *spec == '\0') {
		snprintf(err, errlen, "auth.tokens_file %s:%u: expected 'TOKEN *' or 'TOKEN target,...'",
			 path, lineno);
		return -EINVAL;
	}
	*end = '\0';
	{
		char *s = spec + strlen(spec);
		while (s > spec && (s[-1] == ' ' || s[-1] == '\t' || s[-1] == '\r'))
			*--s = '\0';
	}
	if (strlen(tok) > TOKEN_LEN_MAX || strchr(spec, ' ') != NULL || strchr(spec, '\t') != NULL) {
		snprintf(err, errlen, "auth.tokens_file %s:%u: expected 'TOKEN *' or 'TOKEN target,...'",
			 path, lineno);
		return -EINVAL;
	}
	if (a->count == TOKENS_MAX) {
		snprintf(err, errlen, "auth.tokens_file %s:%u: more than %d tokens", path, lineno,
			 TOKENS_MAX);
		return -EINVAL;
	}
	e = &a->entries[a->count];
	memset(e, 0, sizeof *e);
	SHA256((const unsigned char *)tok, strlen(tok), e->digest);
	OPENSSL_cleanse(tok, strlen(tok));
	for (size_t i = 0; i < a->count; i++) {
		if (CRYPTO_memcmp(a->entries[i].digest, e->digest, sizeof e->digest) == 0) {
			snprintf(err, errlen, "auth.tokens_file %s:%u: the token of line %u again", path,
				 lineno, a->entries[i].line);
			return -EINVAL;
		}
	}
	e->line = lineno;
	fingerprint(e->digest, e->who.fingerprint);
	if (strcmp(spec, "*") == 0) {
		e->who.all_targets = true;
		e->targets = calloc(1, sizeof *e->targets); /* an empty vector */
		rc = e->targets != NULL ? 0 : -ENOMEM;
	} else {
		rc = parse_targets(spec, &e->targets);
	}
	if (rc < 0) {
		snprintf(err, errlen, "auth.tokens_file %s:%u: %s", path, lineno,
			 rc == -ENOMEM ? "out of memory"
			 : rc == -E2BIG ? "too many targets"
					: "an empty target name (write 'TOKEN t1,t2' or 'TOKEN *')");
		return rc;
	}
	e->who.targets = (const char *const *)e->targets;
	a->count++;
	return 1;
}

int spd_auth_load(const char *path, spd_auth **out, char *err, size_t errlen)
{
	spd_auth *a = NULL;
	struct stat st;
	char *line = NULL;
	unsigned lineno = 0;
	int rc = 0, fd;
	FILE *f;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "auth.tokens_file %s: %s", path, strerror(-rc));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "auth.tokens_file %s: not a regular file", path);
		return -EINVAL;
	}
	if (st.st_mode & 0007) {
		close(fd);
		snprintf(err, errlen,
			 "auth.tokens_file %s: readable or writable by others (mode %04o): make it "
			 "0440 or 0400",
			 path, (unsigned)(st.st_mode & 07777));
		return -EACCES;
	}
	f = fdopen(fd, "r");
	a = calloc(1, sizeof *a);
	line = malloc(LINE_MAX_BYTES + 2);
	if (f == NULL || a == NULL || line == NULL ||
	    (a->entries = calloc(TOKENS_MAX, sizeof *a->entries)) == NULL) {
		rc = -ENOMEM;
		snprintf(err, errlen, "auth.tokens_file %s: out of memory", path);
		goto out;
	}
	atomic_init(&a->refs, 1);
	while (fgets(line, LINE_MAX_BYTES + 2, f) != NULL) {
		size_t n = strlen(line);
		lineno++;
		if (n > LINE_MAX_BYTES) {
			rc = -EINVAL;
			snprintf(err, errlen, "auth.tokens_file %s:%u: line too long", path, lineno);
			goto out;
		}
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (memchr(line, '\0', n) != NULL) {
			rc = -EINVAL;
			snprintf(err, errlen, "auth.tokens_file %s:%u: a NUL byte", path, lineno);
			goto out;
		}
		rc = parse_line(a, path, lineno, line, err, errlen);
		if (rc < 0)
			goto out;
		rc = 0;
	}
	if (ferror(f)) {
		rc = -EIO;
		snprintf(err, errlen, "auth.tokens_file %s: read error", path);
	}
out:
	if (line != NULL) {
		OPENSSL_cleanse(line, LINE_MAX_BYTES + 2);
		free(line);
	}
	if (f != NULL)
		fclose(f);
	else
		close(fd);
	if (rc < 0) {
		if (a != NULL)
			auth_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

const spd_principal *spd_auth_check(const spd_auth *a, const char *value, size_t len)
{
	static const char scheme[] = "Bearer ";
	uint8_t digest[SHA256_DIGEST_LENGTH];
	const spd_principal *who = NULL;

	if (a == NULL || value == NULL || len <= sizeof scheme - 1 || len > TOKEN_LEN_MAX + 64 ||
	    strncasecmp(value, scheme, sizeof scheme - 1) != 0)
		return NULL;
	value += sizeof scheme - 1;
	len -= sizeof scheme - 1;
	SHA256((const unsigned char *)value, len, digest);
	/* Every entry is compared, whatever matched: no early exit. */
	for (size_t i = 0; i < a->count; i++) {
		int differ = CRYPTO_memcmp(a->entries[i].digest, digest, sizeof digest);
		uintptr_t mask = (uintptr_t)0 - (uintptr_t)(differ == 0);
		who = (const spd_principal *)(((uintptr_t)&a->entries[i].who & mask) |
					      ((uintptr_t)who & ~mask));
	}
	return who;
}

bool spd_principal_allows(const spd_principal *p, const char *target)
{
	if (p == NULL)
		return false;
	if (p->all_targets)
		return true;
	for (size_t i = 0; p->targets[i] != NULL; i++)
		if (strcmp(p->targets[i], target) == 0)
			return true;
	return false;
}

void spd_auth_supersede(spd_auth *old, spd_auth *next)
{
	if (old == NULL || atomic_load(&old->replaced))
		return;
	atomic_store(&old->next, spd_auth_ref(next));
	atomic_store(&old->replaced, true); /* after NEXT: readers test this first */
}

/* The principal of WHO's token (WHO one of A's) in B, or NULL. Digests are
 * compared, not tokens: no secret to keep from timing here. */
static const spd_principal *same_token(const spd_principal *who, spd_auth *b)
{
	const entry *e = (const entry *)((const char *)who - offsetof(entry, who));

	for (size_t i = 0; i < b->count; i++)
		if (memcmp(b->entries[i].digest, e->digest, sizeof e->digest) == 0)
			return &b->entries[i].who;
	return NULL;
}

bool spd_auth_replaced(const spd_auth *a)
{
	return a != NULL && atomic_load(&a->replaced);
}

bool spd_auth_still_allows(const spd_auth *a, const spd_principal *who, const char *target)
{
	/* To the current file: a token gone from one stays gone, unless a
	 * later reload turns auth off (then every caller may do everything). */
	while (a != NULL && atomic_load(&a->replaced)) {
		spd_auth *next = atomic_load(&a->next);
		if (next == NULL)
			return true;
		if (who != NULL)
			who = same_token(who, next);
		a = next;
	}
	return spd_principal_allows(who, target);
}

size_t spd_auth_count(const spd_auth *a)
{
	return a != NULL ? a->count : 0;
}

spd_auth *spd_auth_ref(spd_auth *a)
{
	if (a != NULL)
		atomic_fetch_add(&a->refs, 1);
	return a;
}

void spd_auth_unref(spd_auth *a)
{
	if (a != NULL && atomic_fetch_sub(&a->refs, 1) == 1)
		auth_free(a);
}
