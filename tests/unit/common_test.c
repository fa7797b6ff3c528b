/* service/common: spd_tail, spd_utf8_sanitize, spd_signal_name/parse, spd_id_new. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/common/clock.h"
#include "service/common/id.h"
#include "service/common/signame.h"
#include "service/common/strv.h"
#include "service/common/traceparent.h"
#include "service/common/tail.h"
#include "service/common/utf8.h"

/* ---- spd_tail ---------------------------------------------------------------- */

static void tail_keeps_the_last_bytes(void **state)
{
	spd_tail t = SPD_TAIL_INIT(8);
	char out[16];

	(void)state;
	assert_int_equal(spd_tail_copy(&t, out, sizeof out), 0);
	assert_int_equal(spd_tail_dropped(&t), 0);

	assert_int_equal(spd_tail_write(&t, "abc", 3), 0);
	assert_int_equal(spd_tail_copy(&t, out, sizeof out), 3);
	assert_memory_equal(out, "abc", 3);
	assert_int_equal(spd_tail_dropped(&t), 0);

	/* Wraps around: 10 written, the last 8 kept, oldest first. */
	assert_int_equal(spd_tail_write(&t, "defghij", 7), 0);
	assert_int_equal(spd_tail_copy(&t, out, sizeof out), 8);
	assert_memory_equal(out, "cdefghij", 8);
	assert_int_equal(t.total, 10);
	assert_int_equal(spd_tail_dropped(&t), 2);

	/* Again, across the seam. */
	assert_int_equal(spd_tail_write(&t, "klmno", 5), 0);
	assert_int_equal(spd_tail_copy(&t, out, sizeof out), 8);
	assert_memory_equal(out, "hijklmno", 8);
	assert_int_equal(spd_tail_dropped(&t), 7);

	/* A smaller copy takes the newest bytes. */
	assert_int_equal(spd_tail_copy(&t, out, 3), 3);
	assert_memory_equal(out, "mno", 3);
	spd_tail_release(&t);
}

static void tail_write_larger_than_cap(void **state)
{
	spd_tail t = SPD_TAIL_INIT(4);
	char out[8];

	(void)state;
	assert_int_equal(spd_tail_write(&t, "xy", 2), 0);
	assert_int_equal(spd_tail_write(&t, "0123456789", 10), 0);
	assert_int_equal(spd_tail_copy(&t, out, sizeof out), 4);
	assert_memory_equal(out, "6789", 4);
	assert_int_equal(spd_tail_dropped(&t), 8);
	/* Exactly cap. */
	assert_int_equal(spd_tail_write(&t, "ABCD", 4), 0);
	assert_int_equal(spd_tail_copy(&t, out, sizeof out), 4);
	assert_memory_equal(out, "ABCD", 4);
	assert_int_equal(spd_tail_write(&t, "E", 1), 0);
	assert_int_equal(spd_tail_copy(&t, out, sizeof out), 4);
	assert_memory_equal(out, "BCDE", 4);
	assert_int_equal(spd_tail_dropped(&t), 13);
	spd_tail_release(&t);
}

static void tail_zero_cap_counts_only(void **state)
{
	spd_tail t = SPD_TAIL_INIT(0);
	char out[4];

	(void)state;
	assert_int_equal(spd_tail_write(&t, "abc", 3), 0);
	assert_int_equal(spd_tail_copy(&t, out, sizeof out), 0);
	assert_int_equal(t.total, 3);
	assert_int_equal(spd_tail_dropped(&t), 3);
	assert_int_equal(spd_tail_write(&t, NULL, 0), 0);
	spd_tail_release(&t);
}

/* Random write sizes against a plain "keep everything, look at the end" model. */
static void tail_matches_a_model(void **state)
{
	enum { CAP = 37, TOTAL = 20000 };
	char *all = malloc(TOTAL);
	char out[CAP + 8];
	spd_tail t = SPD_TAIL_INIT(CAP);
	size_t written = 0;

	(void)state;
	assert_non_null(all);
	srand(3);
	for (size_t i = 0; i < TOTAL; i++)
		all[i] = (char)rand();
	while (written < TOTAL) {
		size_t n = (size_t)rand() % 90;
		size_t keep, got;
		if (n > TOTAL - written)
			n = TOTAL - written;
		assert_int_equal(spd_tail_write(&t, all + written, n), 0);
		written += n;
		keep = written < CAP ? written : CAP;
		got = spd_tail_copy(&t, out, sizeof out);
		assert_int_equal(got, keep);
		assert_memory_equal(out, all + written - keep, keep);
		assert_int_equal(spd_tail_dropped(&t), written - keep);
		/* A partial copy is the newest part. */
		got = spd_tail_copy(&t, out, 5);
		assert_int_equal(got, keep < 5 ? keep : 5);
		assert_memory_equal(out, all + written - got, got);
	}
	spd_tail_release(&t);
	free(all);
}

/* ---- spd_utf8_sanitize ---------------------------------------------------------- */

/* An independent check (RFC 3629): well-formed, no overlongs, no surrogates. */
static bool valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		uint32_t cp;
		int n;
		if (p[0] < 0x80) {
			p++;
			continue;
		}
		if ((p[0] & 0xE0) == 0xC0)
			n = 2, cp = p[0] & 0x1F;
		else if ((p[0] & 0xF0) == 0xE0)
			n = 3, cp = p[0] & 0x0F;
		else if ((p[0] & 0xF8) == 0xF0)
			n = 4, cp = p[0] & 0x07;
		else
			return false;
		for (int i = 1; i < n; i++) {
			if ((p[i] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3F);
		}
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		p += n;
	}
	return true;
}

#define FFFD "\xEF\xBF\xBD"

static void expect_sanitized(const char *in, size_t len, size_t max, const char *want)
{
	char *got = spd_utf8_sanitize(in, len, max);

	assert_non_null(got);
	if (strcmp(got, want) != 0)
		fail_msg("sanitize(max %zu): got \"%s\", want \"%s\"", max, got, want);
	free(got);
}

static void utf8_valid_is_kept(void **state)
{
	static const char s[] = "ascii, caf\xc3\xa9, \xe2\x82\xac, \xf0\x9f\x98\x80";

	(void)state;
	expect_sanitized(s, strlen(s), 100, s);
	expect_sanitized("", 0, 10, "");
	expect_sanitized("abcdef", 3, 10, "abc");       /* only LEN bytes */
	expect_sanitized("ab\0cd", 5, 10, "ab");        /* a NUL ends the string */
}

static void utf8_invalid_is_replaced(void **state)
{
	(void)state;
	expect_sanitized("a\xff" "b", 3, 100, "a" FFFD "b");
	expect_sanitized("\x80", 1, 100, FFFD);                     /* lone continuation */
	expect_sanitized("\xc3" "x", 2, 100, FFFD "x");             /* cut sequence */
	expect_sanitized("\xc0\xaf", 2, 100, FFFD FFFD);            /* overlong '/' */
	expect_sanitized("\xe0\x80\xaf", 3, 100, FFFD FFFD FFFD);   /* overlong, 3 bytes */
	expect_sanitized("\xed\xa0\x80", 3, 100, FFFD FFFD FFFD);   /* a surrogate */
	expect_sanitized("\xf4\x90\x80\x80", 4, 100, FFFD FFFD FFFD FFFD); /* > U+10FFFF */
	/* A sequence cut by LEN, not by a NUL. */
	expect_sanitized("ok\xe2\x82\xac", 4, 100, "ok" FFFD FFFD);
}

static void utf8_cut_on_a_boundary(void **state)
{
	static const char euro3[] = "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac";

	(void)state;
	expect_sanitized("abcdef", 6, 4, "abcd");
	expect_sanitized(euro3, 9, 8, "\xe2\x82\xac\xe2\x82\xac");  /* not half a third */
	expect_sanitized(euro3, 9, 2, "");
	expect_sanitized("a\xc3\xa9", 3, 2, "a");
	expect_sanitized("a\xff", 2, 3, "a");   /* the replacement itself must fit */
	expect_sanitized("a\xff", 2, 4, "a" FFFD);
	expect_sanitized("abc", 3, 0, "");
}

static void utf8_random_bytes(void **state)
{
	unsigned char in[64];

	(void)state;
	srand(4);
	for (int i = 0; i < 20000; i++) {
		size_t len = (size_t)rand() % sizeof in;
		size_t max = (size_t)rand() % 80;
		char *out;
		for (size_t j = 0; j < len; j++)
			in[j] = (unsigned char)(rand() | 1); /* no NUL */
		out = spd_utf8_sanitize((const char *)in, len, max);
		assert_non_null(out);
		assert_true(strlen(out) <= max);
		if (!valid_utf8(out))
			fail_msg("invalid output at iteration %d", i);
		free(out);
	}
}

/* ---- signal names --------------------------------------------------------------- */

static void signal_names(void **state)
{
	(void)state;
	assert_string_equal(spd_signal_name(SIGKILL), "SIGKILL");
	assert_string_equal(spd_signal_name(SIGSEGV), "SIGSEGV");
	assert_string_equal(spd_signal_name(SIGTERM), "SIGTERM");
	assert_string_equal(spd_signal_name(SIGHUP), "SIGHUP");
	assert_string_equal(spd_signal_name(SIGSYS), "SIGSYS");
	assert_null(spd_signal_name(0));
	assert_null(spd_signal_name(-9));
	assert_null(spd_signal_name(SIGRTMIN + 1));
	assert_null(spd_signal_name(1000));
}

static void signal_parse(void **state)
{
	(void)state;
	assert_int_equal(spd_signal_parse("SIGTERM"), SIGTERM);
	assert_int_equal(spd_signal_parse("TERM"), SIGTERM);
	assert_int_equal(spd_signal_parse("15"), SIGTERM);
	assert_int_equal(spd_signal_parse("SIGKILL"), SIGKILL);
	assert_int_equal(spd_signal_parse("KILL"), SIGKILL);
	assert_int_equal(spd_signal_parse("9"), SIGKILL);
	assert_int_equal(spd_signal_parse("USR1"), SIGUSR1);
	assert_int_equal(spd_signal_parse("64"), 64);
	assert_int_equal(spd_signal_parse(NULL), -EINVAL);
	assert_int_equal(spd_signal_parse(""), -EINVAL);
	assert_int_equal(spd_signal_parse("0"), -EINVAL);
	assert_int_equal(spd_signal_parse("-9"), -EINVAL);
	assert_int_equal(spd_signal_parse("65"), -EINVAL);
	assert_int_equal(spd_signal_parse("99999999999999999999"), -EINVAL);
	assert_int_equal(spd_signal_parse("15x"), -EINVAL);
	assert_int_equal(spd_signal_parse("SIG"), -EINVAL);
	assert_int_equal(spd_signal_parse("SIGFOO"), -EINVAL);
	assert_int_equal(spd_signal_parse("SIGTERMX"), -EINVAL);
}

static void signal_round_trip(void **state)
{
	int named = 0;

	(void)state;
	for (int sig = 1; sig < 32; sig++) {
		const char *name = spd_signal_name(sig);
		if (name == NULL)
			continue;
		named++;
		assert_int_equal(strncmp(name, "SIG", 3), 0);
		assert_int_equal(spd_signal_parse(name), sig);
		assert_int_equal(spd_signal_parse(name + 3), sig);
	}
	assert_int_equal(named, 31);
}

/* ---- ids -------------------------------------------------------------------------- */

static void id_format(void **state)
{
	char id[SPD_ID_LEN + 1];
	uint64_t now_ms = (uint64_t)(spd_clock_real_ns() / 1000000);
	uint64_t ms;

	(void)state;
	memset(id, 'Z', sizeof id);
	spd_id_new(id);
	assert_int_equal(strlen(id), SPD_ID_LEN);
	for (int i = 0; i < SPD_ID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(id[i], '-');
		else if (!isxdigit((unsigned char)id[i]) || isupper((unsigned char)id[i]))
			fail_msg("%s: not lowercase hex at %d", id, i);
	}
	assert_int_equal(id[14], '7');                    /* version 7 */
	assert_non_null(strchr("89ab", id[19]));          /* RFC 4122 variant */
	/* The first 48 bits are the Unix time in ms. */
	assert_int_equal(sscanf(id, "%8" SCNx64, &ms), 1);
	{
		unsigned lo;
		assert_int_equal(sscanf(id + 9, "%4x", &lo), 1);
		ms = (ms << 16) | lo;
	}
	assert_true(ms + 5000 >= now_ms && ms <= now_ms + 5000);
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void ids_unique_and_ordered(void **state)
{
	enum { N = 10000 };
	char (*ids)[SPD_ID_LEN + 1] = malloc(N * sizeof *ids);

	(void)state;
	assert_non_null(ids);
	for (int i = 0; i < N; i++) {
		spd_id_new(ids[i]);
		/* Time-ordered: the 48-bit ms prefix never goes back. */
		if (i > 0 && strncmp(ids[i - 1], ids[i], 13) > 0)
			fail_msg("%s after %s", ids[i], ids[i - 1]);
	}
	qsort(ids, N, sizeof *ids, cmp_id);
	for (int i = 1; i < N; i++)
		if (strcmp(ids[i - 1], ids[i]) == 0)
			fail_msg("duplicate id %s", ids[i]);
	free(ids);
}

/* spd_strv_dup copies the strings (not the pointers), NULL-terminates, and
 * count/free accept NULL. */
static void strv_dup_count_free(void **state)
{
	const char *src[] = {"a", "", "bc"};
	char buf[] = "xy";
	const char *mutable_src[] = {buf};
	char **v = spd_strv_dup(src, 3), **w = spd_strv_dup(mutable_src, 1), **e = spd_strv_dup(NULL, 0);

	(void)state;
	assert_non_null(v);
	assert_int_equal(spd_strv_count((const char *const *)v), 3);
	assert_string_equal(v[0], "a");
	assert_string_equal(v[1], "");
	assert_string_equal(v[2], "bc");
	assert_null(v[3]);
	assert_true(v[0] != src[0]);
	assert_non_null(w);
	buf[0] = 'z';
	assert_string_equal(w[0], "xy");
	assert_non_null(e);
	assert_null(e[0]);
	assert_int_equal(spd_strv_count((const char *const *)e), 0);
	assert_int_equal(spd_strv_count(NULL), 0);
	spd_strv_free(v);
	spd_strv_free(w);
	spd_strv_free(e);
	spd_strv_free(NULL);
}

/* W3C traceparent (SPEC §12 "Trace context"): the format, lowercase hex, no
 * all-zero ids, version ff refused, later versions parsed by their known part. */
static void traceparent_validation(void **state)
{
	static const char *const good[] = {
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-0123abcd-ef",
	};
	static const char *const bad[] = {
		"",
		"00",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-A=B",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-\n",
	};
	char huge[SPD_TRACEPARENT_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		if (!spd_traceparent_valid(good[i], strlen(good[i])))
			fail_msg("refused: %s", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (spd_traceparent_valid(bad[i], strlen(bad[i])))
			fail_msg("accepted: %s", bad[i]);
	/* An embedded NUL is not part of a valid value. */
	assert_false(spd_traceparent_valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\0",
					   55));
	assert_false(spd_traceparent_valid(NULL, 55));
	memset(huge, 'a', sizeof huge);
	memcpy(huge, good[3], strlen(good[3]));
	assert_true(spd_traceparent_valid(huge, SPD_TRACEPARENT_MAX));
	assert_false(spd_traceparent_valid(huge, SPD_TRACEPARENT_MAX + 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tail_keeps_the_last_bytes),
		cmocka_unit_test(tail_write_larger_than_cap),
		cmocka_unit_test(tail_zero_cap_counts_only),
		cmocka_unit_test(tail_matches_a_model),
		cmocka_unit_test(utf8_valid_is_kept),
		cmocka_unit_test(utf8_invalid_is_replaced),
		cmocka_unit_test(utf8_cut_on_a_boundary),
		cmocka_unit_test(utf8_random_bytes),
		cmocka_unit_test(signal_names),
		cmocka_unit_test(signal_parse),
		cmocka_unit_test(signal_round_trip),
		cmocka_unit_test(id_format),
		cmocka_unit_test(ids_unique_and_ordered),
		cmocka_unit_test(strv_dup_count_free),
		cmocka_unit_test(traceparent_validation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
