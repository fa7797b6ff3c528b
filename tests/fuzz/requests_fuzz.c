/* Fuzzes the gRPC edge's request decoding (service/rpc): the protobuf-c unpack
 * of every request message spawnd serves, as spd_rpc_request() does it, its
 * string checks (rpc/strings.h, on the raw bytes too), then what the handlers
 * check before trusting a request: StartProcess's field validation
 * (rpc/validate.h) and Destroy's grace period. Every input is unpacked as each
 * message; what unpacks must pack and unpack again. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "service/common/utf8.h"
#include "service/rpc/codec.h"
#include "service/rpc/strings.h"
#include "service/rpc/validate.h"
#include "spawnd/v1/spawnd.pb-c.h"
#include "tests/fuzz/fuzz.h"

/* Above the 4 MiB max_request_bytes gRPC never hands a handler anything; past
 * 64 KiB an input only makes longer fields. */
#define INPUT_MAX (64u * 1024u)

static const ProtobufCMessageDescriptor *const requests[] = {
	&spawnd__v1__start_process_request__descriptor,
	&spawnd__v1__destroy_request__descriptor,
	&spawnd__v1__watch_request__descriptor,
	&spawnd__v1__get_process_request__descriptor,
	&spawnd__v1__list_processes_request__descriptor,
	&spawnd__v1__list_targets_request__descriptor,
	&grpc__health__v1__health_check_request__descriptor,
};

static void check_start(const Spawnd__V1__StartProcessRequest *req)
{
	char buf[512];
	int64_t timeout_ms = -2, grace_ms = -2;
	const char *bad;

	memset(buf, 'x', sizeof buf);
	bad = spd_validate_start_request(req, buf, sizeof buf, &timeout_ms, &grace_ms);
	if (bad != NULL) {
		FUZZ_CHECK(bad[0] != '\0' && strlen(bad) < sizeof buf);
		return;
	}
	/* What the registry will rely on. */
	FUZZ_CHECK(req->target != NULL && req->target[0] != '\0' && strlen(req->target) <= 256);
	FUZZ_CHECK(req->n_args <= 1024 && req->n_labels <= 64);
	for (size_t i = 0; i < req->n_labels; i++)
		FUZZ_CHECK(req->labels[i]->key != NULL && req->labels[i]->key[0] != '\0');
	FUZZ_CHECK(timeout_ms >= -1 && grace_ms >= -1);
	FUZZ_CHECK((timeout_ms == -1) == (req->timeout == NULL));
	FUZZ_CHECK((grace_ms == -1) == (req->destroy_grace_period == NULL));
}

static void check_destroy(const Spawnd__V1__DestroyRequest *req)
{
	int64_t ms = -2;

	if (req->grace_period != NULL && spd_codec_duration_to_ms(req->grace_period, &ms) == 0)
		FUZZ_CHECK(ms >= 0);
}

/* Whether M or a message inside it kept fields its descriptor does not know. */
static bool has_unknown_fields(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (m->n_unknown_fields > 0)
		return true;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *at = (const char *)m + f->offset;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		/* A oneof's members share storage: only the one set is a message. */
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)at;

			for (size_t j = 0; j < n; j++)
				if (has_unknown_fields(v[j]))
					return true;
		} else {
			const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)at;

			if (sub != NULL && has_unknown_fields(sub))
				return true;
		}
	}
	return false;
}

/* Every string of M, at any depth, is valid UTF-8 (what a client will be
 * given back must parse). */
static void strings_valid(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *at = (const char *)m + f->offset;
		size_t n = 1;

		if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)((const char *)m + f->quantifier_offset);
			at = *(const char *const *)at;
		}
		for (size_t j = 0; j < n; j++) {
			const void *v = *(const void *const *)(at + j * sizeof(void *));
			if (v == NULL)
				continue;
			if (f->type == PROTOBUF_C_TYPE_STRING)
				FUZZ_CHECK(spd_utf8_valid(v, strlen(v)));
			else
				strings_valid(v);
		}
	}
}

/* The string checks: never a crash on any bytes; on a message unpack took,
 * never "malformed" (they agree on the wire format), and what they accept has
 * only UTF-8 strings and, packed again, is accepted again. */
static void check_strings(const ProtobufCMessageDescriptor *d, const ProtobufCMessage *m,
			  const uint8_t *data, size_t size)
{
	char buf[256];
	const char *bad;

	memset(buf, 'x', sizeof buf);
	bad = spd_strings_check(d, NULL, data, size, buf, sizeof buf);
	FUZZ_CHECK(bad == NULL || (bad == buf && bad[0] != '\0' && strlen(bad) < sizeof buf));
	if (m == NULL)
		return;
	bad = spd_strings_check(d, m, data, size, buf, sizeof buf);
	if (bad != NULL) {
		FUZZ_CHECK(strcmp(bad, "request: malformed message") != 0);
		FUZZ_CHECK(spd_utf8_valid(bad, strlen(bad)));
		return;
	}
	strings_valid(m);
}

static void fuzz_one(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size, data), *again;
	uint8_t *packed;
	size_t n;

	check_strings(d, m, data, size);
	if (m == NULL)
		return;
	FUZZ_CHECK(m->descriptor == d && protobuf_c_message_check(m));
	if (d == &spawnd__v1__start_process_request__descriptor)
		check_start((const Spawnd__V1__StartProcessRequest *)m);
	else if (d == &spawnd__v1__destroy_request__descriptor)
		check_destroy((const Spawnd__V1__DestroyRequest *)m);

	n = protobuf_c_message_get_packed_size(m);
	packed = malloc(n ? n : 1);
	FUZZ_CHECK(packed != NULL);
	FUZZ_CHECK(protobuf_c_message_pack(m, packed) == n);
	again = protobuf_c_message_unpack(d, NULL, n, packed);
	/* protobuf-c 1.4.1 keeps unknown fields it would refuse to read back: a
	 * field number 0 in a two-byte tag ("80 00") unpacks, and packs as "00",
	 * which does not (in any nested message too). spawnd never packs a request it received, so only
	 * messages without unknown fields must survive the round trip. */
	FUZZ_CHECK(again != NULL || has_unknown_fields(m));
	if (again != NULL) {
		char buf[256];
		FUZZ_CHECK(protobuf_c_message_get_packed_size(again) == n);
		/* Accepted strings hold no NUL, so they pack as they came. */
		if (spd_strings_check(d, m, data, size, buf, sizeof buf) == NULL)
			FUZZ_CHECK(spd_strings_check(d, again, packed, n, buf, sizeof buf) == NULL);
		protobuf_c_message_free_unpacked(again, NULL);
	}
	free(packed);
	protobuf_c_message_free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > INPUT_MAX)
		return 0;
	for (size_t i = 0; i < sizeof requests / sizeof *requests; i++)
		fuzz_one(requests[i], data, size);
	return 0;
}
