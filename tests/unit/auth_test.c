/* Bearer tokens (service/rpc/auth.h): the tokens file's grammar and its
 * errors, the mode check, matching, fingerprints, target lists. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "service/rpc/auth.h"

static char dir[] = "/tmp/spawnd-auth-test-XXXXXX";

static const char *write_file(const char *name, const char *text, mode_t mode)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static const spd_principal *check(const spd_auth *a, const char *header)
{
	return spd_auth_check(a, header, strlen(header));
}

static void tokens_and_targets(void **state)
{
	char err[512] = "";
	spd_auth *a = NULL;
	const spd_principal *p, *q;
	const char *path = write_file("tokens",
				      "# operators\n"
				      "s3cr3t-admin *\n"
				      "\n"
				      "  app-token  echo,sleep   # the app\n",
				      0440);

	(void)state;
	assert_int_equal(spd_auth_load(path, &a, err, sizeof err), 0);
	assert_int_equal(spd_auth_count(a), 2);
	p = check(a, "Bearer s3cr3t-admin");
	assert_non_null(p);
	assert_true(p->all_targets);
	assert_true(spd_principal_allows(p, "anything"));
	assert_int_equal(strlen(p->fingerprint), 8);
	/* The fingerprint is SHA-256's first 8 hex digits, never the token. */
	assert_null(strstr(p->fingerprint, "s3cr"));
	q = check(a, "bearer app-token");
	assert_non_null(q);
	assert_false(q->all_targets);
	assert_true(spd_principal_allows(q, "echo"));
	assert_true(spd_principal_allows(q, "sleep"));
	assert_false(spd_principal_allows(q, "crash"));
	assert_string_not_equal(p->fingerprint, q->fingerprint);
	/* Unknown, truncated, longer, wrong scheme, empty. */
	assert_null(check(a, "Bearer s3cr3t-admi"));
	assert_null(check(a, "Bearer s3cr3t-admin2"));
	assert_null(check(a, "Basic s3cr3t-admin"));
	assert_null(check(a, "s3cr3t-admin"));
	assert_null(check(a, "Bearer "));
	assert_null(check(a, ""));
	assert_null(spd_auth_check(a, NULL, 0));
	assert_false(spd_principal_allows(NULL, "echo"));
	spd_auth_unref(spd_auth_ref(a));
	spd_auth_unref(a);
}

/* A reload replaces the file: a principal held from the old one (an open
 * stream) is judged by the new one: narrowed, removed, or auth turned off. */
static void superseded(void **state)
{
	char err[512] = "";
	spd_auth *a = NULL, *b = NULL, *c = NULL;
	const spd_principal *admin, *app;

	(void)state;
	assert_int_equal(spd_auth_load(write_file("t1", "adm *\napp echo,sleep\n", 0440), &a, err,
				       sizeof err), 0);
	admin = check(a, "Bearer adm");
	app = check(a, "Bearer app");
	assert_true(spd_auth_still_allows(a, app, "sleep"));
	assert_int_equal(spd_auth_load(write_file("t2", "adm *\napp echo\n", 0440), &b, err,
				       sizeof err), 0);
	spd_auth_supersede(a, b);
	assert_true(spd_auth_still_allows(a, app, "echo"));
	assert_false(spd_auth_still_allows(a, app, "sleep"));
	assert_true(spd_auth_still_allows(a, admin, "crash"));
	assert_int_equal(spd_auth_load(write_file("t3", "adm *\n", 0440), &c, err, sizeof err), 0);
	spd_auth_supersede(b, c);
	spd_auth_unref(b); /* A holds it */
	assert_false(spd_auth_still_allows(a, app, "echo"));
	assert_true(spd_auth_still_allows(a, admin, "echo"));
	spd_auth_supersede(c, NULL); /* auth turned off */
	spd_auth_unref(c);
	assert_true(spd_auth_still_allows(a, app, "anything"));
	spd_auth_unref(a);
}

static void refused_files(void **state)
{
	static const struct {
		const char *text;
		mode_t mode;
		const char *want;
	} cases[] = {
		{"t *\n", 0644, "readable or writable by others (mode 0644)"},
		{"t *\n", 0402, "(mode 0402)"},
		{"lonely\n", 0400, ":1: expected 'TOKEN *' or 'TOKEN target,...'"},
		{"# c\nt a,,b\n", 0400, ":2: an empty target name"},
		{"t a b\n", 0400, ":1: expected"},
		{"t *\nu echo\nt echo\n", 0400, ":3: the token of line 1 again"},
	};
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		spd_auth *a = (spd_auth *)1;
		const char *path = write_file("bad", cases[i].text, cases[i].mode);
		err[0] = '\0';
		assert_true(spd_auth_load(path, &a, err, sizeof err) < 0);
		assert_null(a);
		if (strstr(err, cases[i].want) == NULL || strstr(err, path) == NULL)
			fail_msg("case %zu: %s", i, err);
	}
	assert_int_equal(spd_auth_load("/nonexistent/spawnd/tokens", &(spd_auth *){NULL}, err,
				       sizeof err),
			 -ENOENT);
	assert_non_null(strstr(err, "auth.tokens_file /nonexistent/spawnd/tokens: No such file"));
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tokens_and_targets),
		cmocka_unit_test(refused_files),
		cmocka_unit_test(superseded),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
