/* service/rpc/strings.h: spd_strings_check on hand-encoded requests (the
 * encodings a protobuf library refuses to produce: invalid UTF-8, a NUL inside
 * a string, a map key twice), and spd_utf8_valid beneath it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "service/common/utf8.h"
#include "service/rpc/strings.h"
#include "spawnd/v1/spawnd.pb-c.h"

/* ---- a tiny protobuf encoder --------------------------------------------------- */

typedef struct enc {
	uint8_t b[8192];
	size_t n;
} enc;

static void put_varint(enc *e, uint64_t v)
{
	do {
		assert_true(e->n < sizeof e->b);
		e->b[e->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v != 0);
}

/* Field NUM, wire type 2, the N bytes at S. */
static void put_bytes(enc *e, unsigned num, const void *s, size_t n)
{
	put_varint(e, (uint64_t)num << 3 | 2);
	put_varint(e, n);
	assert_true(e->n + n <= sizeof e->b);
	memcpy(e->b + e->n, s, n);
	e->n += n;
}

static void put_str(enc *e, unsigned num, const char *s)
{
	put_bytes(e, num, s, strlen(s));
}

/* A map<string, string> entry of field NUM; K and V have KL and VL bytes. */
static void put_entry(enc *e, unsigned num, const char *k, size_t kl, const char *v, size_t vl)
{
	enc sub = {.n = 0};

	put_bytes(&sub, 1, k, kl);
	put_bytes(&sub, 2, v, vl);
	put_bytes(e, num, sub.b, sub.n);
}

/* Unpacks E as D and checks it; returns the complaint (in BUF) or NULL. The
 * bytes must unpack: that is the contract. */
static const char *check(const ProtobufCMessageDescriptor *d, const enc *e, char *buf, size_t len)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, e->n, e->b);
	const char *bad;

	assert_non_null(m);
	bad = spd_strings_check(d, m, e->b, e->n, buf, len);
	protobuf_c_message_free_unpacked(m, NULL);
	return bad;
}

static const ProtobufCMessageDescriptor *const START = &spawnd__v1__start_process_request__descriptor;
static const ProtobufCMessageDescriptor *const WATCH = &spawnd__v1__watch_request__descriptor;
static const ProtobufCMessageDescriptor *const LIST = &spawnd__v1__list_processes_request__descriptor;
static const ProtobufCMessageDescriptor *const HEALTH = &grpc__health__v1__health_check_request__descriptor;

/* ---- spd_utf8_valid ------------------------------------------------------------ */

static void utf8_valid_accepts_and_refuses(void **state)
{
	(void)state;
	assert_true(spd_utf8_valid("", 0));
	assert_true(spd_utf8_valid("plain", 5));
	assert_true(spd_utf8_valid("\xc3\xa9", 2));                 /* é */
	assert_true(spd_utf8_valid("\xe6\x97\xa5\xe6\x9c\xac", 6)); /* 日本 */
	assert_true(spd_utf8_valid("\xf0\x9f\x98\x80", 4));         /* U+1F600 */
	assert_true(spd_utf8_valid("\xf4\x8f\xbf\xbf", 4));         /* U+10FFFF */
	assert_true(spd_utf8_valid("a\0b", 3));                     /* NUL is UTF-8 */
	assert_false(spd_utf8_valid("\xff\xfe", 2));
	assert_false(spd_utf8_valid("\xc0\x80", 2));         /* overlong NUL */
	assert_false(spd_utf8_valid("\xe0\x80\xaf", 3));     /* overlong '/' */
	assert_false(spd_utf8_valid("\xed\xa0\x80", 3));     /* a surrogate */
	assert_false(spd_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
	assert_false(spd_utf8_valid("\xc3", 1));             /* cut */
	assert_false(spd_utf8_valid("ok\xe6\x97", 4));       /* cut at the end */
	assert_false(spd_utf8_valid("\x80", 1));             /* a lone continuation */
}

/* ---- every string field, named ------------------------------------------------- */

static void valid_requests_pass(void **state)
{
	char buf[256];
	enc e = {.n = 0};

	(void)state;
	put_str(&e, 1, "echo");
	put_str(&e, 2, "\xc3\xa9");
	put_str(&e, 2, "");
	put_bytes(&e, 3, "\xff\0\xfe", 3); /* input is bytes: anything goes */
	put_entry(&e, 4, "\xe6\x97\xa5", 3, "\xe6\x9c\xac", 3);
	put_entry(&e, 4, "k", 1, "", 0);
	put_str(&e, 5, "req-1");
	assert_null(check(START, &e, buf, sizeof buf));

	/* An empty message, and fields unpack skips (unknown numbers). */
	e.n = 0;
	assert_null(check(START, &e, buf, sizeof buf));
	put_bytes(&e, 99, "\xff\0", 2);
	assert_null(check(START, &e, buf, sizeof buf));
}

static void start_process_fields_are_named(void **state)
{
	static const struct {
		unsigned num;
		const char *s;
		size_t n;
		const char *want;
	} cases[] = {
		{1, "echo\0junk", 9, "target: contains a NUL byte"},
		{1, "\xff\xfe", 2, "target: not valid UTF-8"},
		{5, "job\0A", 5, "request_id: contains a NUL byte"},
		{5, "\xc0\x80", 2, "request_id: not valid UTF-8"},
	};
	char buf[256];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		enc e = {.n = 0};
		if (cases[i].num != 1)
			put_str(&e, 1, "echo");
		put_bytes(&e, cases[i].num, cases[i].s, cases[i].n);
		assert_string_equal(check(START, &e, buf, sizeof buf), cases[i].want);
	}
}

static void args_are_indexed(void **state)
{
	char buf[256];
	enc e = {.n = 0};

	(void)state;
	put_str(&e, 2, "a");
	put_str(&e, 1, "echo"); /* another field between does not shift the index */
	put_str(&e, 2, "b");
	put_bytes(&e, 2, "c\0d", 3);
	assert_string_equal(check(START, &e, buf, sizeof buf), "args[2]: contains a NUL byte");

	e.n = 0;
	put_bytes(&e, 2, "\xed\xa0\x80", 3);
	assert_string_equal(check(START, &e, buf, sizeof buf), "args[0]: not valid UTF-8");
}

static void map_keys_and_values_are_named(void **state)
{
	char buf[256];
	enc e = {.n = 0};

	(void)state;
	put_entry(&e, 4, "k\0x", 3, "v", 1);
	assert_string_equal(check(START, &e, buf, sizeof buf), "labels: a key contains a NUL byte");
	e.n = 0;
	put_entry(&e, 4, "k", 1, "\xff", 1);
	assert_string_equal(check(START, &e, buf, sizeof buf), "labels: a value is not valid UTF-8");
	e.n = 0;
	put_entry(&e, 2, "\xfe", 1, "v", 1);
	assert_string_equal(check(WATCH, &e, buf, sizeof buf), "label_selector: a key is not valid UTF-8");
	e.n = 0;
	put_entry(&e, 3, "k", 1, "v\0", 2);
	assert_string_equal(check(LIST, &e, buf, sizeof buf), "label_selector: a value contains a NUL byte");
}

static void other_requests(void **state)
{
	char buf[256];
	enc e = {.n = 0};

	(void)state;
	put_str(&e, 1, "spawnd.target.echo");
	assert_null(check(HEALTH, &e, buf, sizeof buf));
	e.n = 0;
	put_bytes(&e, 1, "spawnd.target.echo\0junk", 23);
	assert_string_equal(check(HEALTH, &e, buf, sizeof buf), "service: contains a NUL byte");

	e.n = 0;
	put_bytes(&e, 1, "id\xff", 3);
	assert_string_equal(check(&spawnd__v1__get_process_request__descriptor, &e, buf, sizeof buf),
			    "id: not valid UTF-8");
	assert_string_equal(check(&spawnd__v1__destroy_request__descriptor, &e, buf, sizeof buf),
			    "id: not valid UTF-8");
	assert_string_equal(check(WATCH, &e, buf, sizeof buf), "id: not valid UTF-8");

	e.n = 0;
	put_str(&e, 1, "echo");
	put_bytes(&e, 5, "p1\0junk", 7);
	assert_string_equal(check(LIST, &e, buf, sizeof buf), "page_token: contains a NUL byte");
	e.n = 0;
	put_bytes(&e, 1, "\x80", 1);
	assert_string_equal(check(LIST, &e, buf, sizeof buf), "target: not valid UTF-8");
}

/* ---- map keys sent twice -------------------------------------------------------- */

static void a_key_twice_is_refused(void **state)
{
	char buf[256];
	enc e = {.n = 0};

	(void)state;
	put_str(&e, 1, "echo");
	put_entry(&e, 4, "a", 1, "1", 1);
	put_entry(&e, 4, "b", 1, "2", 1);
	assert_null(check(START, &e, buf, sizeof buf));
	put_entry(&e, 4, "a", 1, "3", 1); /* same key, another value */
	assert_string_equal(check(START, &e, buf, sizeof buf), "labels: key 'a' sent twice");

	e.n = 0;
	put_entry(&e, 2, "k", 1, "v", 1);
	put_entry(&e, 2, "k", 1, "v", 1); /* even with the same value */
	assert_string_equal(check(WATCH, &e, buf, sizeof buf), "label_selector: key 'k' sent twice");

	e.n = 0;
	put_entry(&e, 3, "", 0, "x", 1);
	put_entry(&e, 3, "", 0, "y", 1);
	assert_string_equal(check(LIST, &e, buf, sizeof buf), "label_selector: key '' sent twice");
}

static void many_entries_one_twice(void **state)
{
	char buf[256], k[16];
	enc *e = calloc(1, sizeof *e);

	(void)state;
	assert_non_null(e);
	for (int i = 0; i < 300; i++) {
		int n = snprintf(k, sizeof k, "k%03d", i);
		put_entry(e, 4, k, (size_t)n, "v", 1);
	}
	assert_null(check(START, e, buf, sizeof buf));
	put_entry(e, 4, "k150", 4, "v", 1);
	assert_string_equal(check(START, e, buf, sizeof buf), "labels: key 'k150' sent twice");
	free(e);
}

static void a_long_key_is_cut_on_a_character(void **state)
{
	char buf[256], key[200], want[128];
	enc e = {.n = 0};
	size_t n = 0;

	(void)state;
	/* "é" is 2 bytes; 63 ASCII then é...: byte 64 is the middle of one. */
	memset(key, 'a', 63);
	n = 63;
	while (n + 2 <= 100) {
		memcpy(key + n, "\xc3\xa9", 2);
		n += 2;
	}
	put_entry(&e, 4, key, n, "v", 1);
	put_entry(&e, 4, key, n, "w", 1);
	snprintf(want, sizeof want, "labels: key '%.63s' sent twice", key);
	assert_string_equal(check(START, &e, buf, sizeof buf), want);
	assert_true(spd_utf8_valid(buf, strlen(buf)));
}

static void cut_keeps_characters_whole(void **state)
{
	(void)state;
	assert_int_equal(spd_strings_cut("", 4), 0);
	assert_int_equal(spd_strings_cut("abc", 4), 3);
	assert_int_equal(spd_strings_cut("abcd", 4), 4);
	assert_int_equal(spd_strings_cut("abcde", 4), 4);
	assert_int_equal(spd_strings_cut("abc\xc3\xa9", 4), 3);          /* é would be cut */
	assert_int_equal(spd_strings_cut("ab\xc3\xa9z", 4), 4);          /* é fits */
	assert_int_equal(spd_strings_cut("\xe6\x97\xa5\xe6\x9c\xac", 4), 3); /* 日 of 日本 */
	assert_int_equal(spd_strings_cut("\xf0\x9f\x98\x80", 2), 0);
}

/* ---- bytes alone ---------------------------------------------------------------- */

static void malformed_bytes_without_a_message(void **state)
{
	static const struct {
		const char *b;
		size_t n;
	} cases[] = {
		{"\x0a", 1},             /* a tag, no length */
		{"\x0a\x05" "ab", 4},     /* a length past the end */
		{"\x0b", 1},             /* a group */
		{"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12}, /* an 11-byte varint */
	};
	char buf[256];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		assert_string_equal(spd_strings_check(START, NULL, (const uint8_t *)cases[i].b,
						      cases[i].n, buf, sizeof buf),
				    "request: malformed message");
	/* The first complaint wins; a small buffer is only cut. */
	assert_non_null(spd_strings_check(START, NULL, (const uint8_t *)"\x0a\x01\xff", 3, buf, 8));
	assert_string_equal(buf, "target:");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(utf8_valid_accepts_and_refuses),
		cmocka_unit_test(valid_requests_pass),
		cmocka_unit_test(start_process_fields_are_named),
		cmocka_unit_test(args_are_indexed),
		cmocka_unit_test(map_keys_and_values_are_named),
		cmocka_unit_test(other_requests),
		cmocka_unit_test(a_key_twice_is_refused),
		cmocka_unit_test(many_entries_one_twice),
		cmocka_unit_test(a_long_key_is_cut_on_a_character),
		cmocka_unit_test(cut_keeps_characters_whole),
		cmocka_unit_test(malformed_bytes_without_a_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
