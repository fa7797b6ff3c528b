/* grpc.reflection.v1 and v1alpha ServerReflection/ServerReflectionInfo: a bidi
 * stream answering each request with one response, from the index of the
 * descriptor set compiled into spawnd (reflection_index.h). Both paths share
 * the v1 codec: the two protos are wire-identical (only package and options
 * differ), so a v1alpha client gets the same bytes it expects.
 *
 * Call state (gRPC notes §4c): a RECV_CLOSE_ON_SERVER batch watches for the
 * end, and RECV_MESSAGE and SEND_MESSAGE strictly alternate — the next receive
 * starts when the previous answer was sent — so at most one batch of each kind
 * is in flight and no lock is needed beyond the reference count (one per
 * outstanding batch). A receive with no message is the client's half-close:
 * the call ends with OK.
 */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/reflection/v1/reflection.pb-c.h"
#include "service/rpc/arena.h"
#include "service/rpc/call.h"
#include "service/rpc/call_stats.h"
#include "service/rpc/codec.h"
#include "service/rpc/handlers.h"
#include "service/rpc/reflection_index.h"

/* Extension numbers returned for one type, at most: far above what any real
 * message declares, and a bound on the reply. */
#define MAX_EXTENSION_NUMBERS 1024

typedef struct refl {
	spd_tag close_tag, recv_tag, send_tag;
	atomic_int refs;
	grpc_call *call;
	const spd_reflection_index *index;
	grpc_byte_buffer *recv_bb;  /* RECV_MESSAGE's out-parameter */
	grpc_byte_buffer *send_bb;  /* owned until its batch completes */
	int cancelled;              /* RECV_CLOSE_ON_SERVER's out-parameter */
	bool md_sent;
	bool closing;               /* the status went out: receive no more */
	grpc_status_code status;    /* the one sent, once closing */
} refl;

static void refl_unref(refl *c)
{
	if (atomic_fetch_sub(&c->refs, 1) == 1) {
		spd__call_stats_end(c->call, c->closing && !c->cancelled ? c->status
								  : GRPC_STATUS_CANCELLED);
		grpc_call_unref(c->call);
		free(c);
	}
}

/* ---- answers --------------------------------------------------------------------- */

typedef Grpc__Reflection__V1__ServerReflectionResponse response;

static void answer_error(spd_arena *a, response *r, grpc_status_code code, const char *fmt,
			 const char *what)
{
	Grpc__Reflection__V1__ErrorResponse *e = spd_arena_alloc(a, sizeof *e);
	char msg[384];

	if (e == NULL)
		return;
	grpc__reflection__v1__error_response__init(e);
	snprintf(msg, sizeof msg, fmt, what);
	e->error_code = (int32_t)code;
	e->error_message = spd_arena_strdup(a, msg);
	r->message_response_case =
		GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
	r->error_response = e;
}

/* FILE and its transitive imports, each as protoc wrote it. */
static void answer_files(spd_arena *a, const spd_reflection_index *x, response *r, size_t file)
{
	Grpc__Reflection__V1__FileDescriptorResponse *fr = spd_arena_alloc(a, sizeof *fr);
	size_t nfiles = spd_reflection_index_file_count(x);
	size_t *files = spd_arena_alloc(a, nfiles * sizeof *files);
	ProtobufCBinaryData *data = spd_arena_alloc(a, nfiles * sizeof *data);
	size_t n;

	if (fr == NULL || files == NULL || data == NULL)
		return;
	grpc__reflection__v1__file_descriptor_response__init(fr);
	n = spd_reflection_index_closure(x, file, files);
	for (size_t i = 0; i < n; i++)
		data[i].data = (uint8_t *)spd_reflection_index_file_bytes(x, files[i], &data[i].len);
	fr->n_file_descriptor_proto = n;
	fr->file_descriptor_proto = data;
	r->message_response_case =
		GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
	r->file_descriptor_response = fr;
}

static void answer_services(spd_arena *a, const spd_reflection_index *x, response *r)
{
	Grpc__Reflection__V1__ListServiceResponse *l = spd_arena_alloc(a, sizeof *l);
	size_t n = spd_reflection_index_service_count(x);
	Grpc__Reflection__V1__ServiceResponse *s = spd_arena_alloc(a, (n + 1) * sizeof *s);
	Grpc__Reflection__V1__ServiceResponse **sp = spd_arena_alloc(a, (n + 1) * sizeof *sp);

	if (l == NULL || s == NULL || sp == NULL)
		return;
	grpc__reflection__v1__list_service_response__init(l);
	for (size_t i = 0; i < n; i++) {
		grpc__reflection__v1__service_response__init(&s[i]);
		s[i].name = (char *)spd_reflection_index_service(x, i);
		sp[i] = &s[i];
	}
	l->n_service = n;
	l->service = sp;
	r->message_response_case =
		GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
	r->list_services_response = l;
}

static void answer_extension_numbers(spd_arena *a, const spd_reflection_index *x, response *r,
				     const char *type)
{
	Grpc__Reflection__V1__ExtensionNumberResponse *e = spd_arena_alloc(a, sizeof *e);
	int32_t *numbers = spd_arena_alloc(a, MAX_EXTENSION_NUMBERS * sizeof *numbers);
	size_t file;
	bool is_message = false;

	if (e == NULL || numbers == NULL)
		return;
	if (spd_reflection_index_find_symbol(x, type, &file, &is_message) < 0 || !is_message) {
		answer_error(a, r, GRPC_STATUS_NOT_FOUND, "type not found: %.300s", type);
		return;
	}
	grpc__reflection__v1__extension_number_response__init(e);
	e->base_type_name = (char *)type;
	e->n_extension_number =
		spd_reflection_index_extension_numbers(x, type, numbers, MAX_EXTENSION_NUMBERS);
	e->extension_number = numbers;
	r->message_response_case =
		GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
	r->all_extension_numbers_response = e;
}

/* The response to REQ, packed; NULL if out of memory. */
static grpc_byte_buffer *answer(const spd_reflection_index *x,
				Grpc__Reflection__V1__ServerReflectionRequest *req)
{
	response r = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
	spd_arena a = SPD_ARENA_INIT;
	grpc_byte_buffer *bb = NULL;
	size_t file;

	r.valid_host = req->host;
	r.original_request = req;
	switch (req->message_request_case) {
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
		if (spd_reflection_index_find_file(x, req->file_by_filename, &file) == 0)
			answer_files(&a, x, &r, file);
		else
			answer_error(&a, &r, GRPC_STATUS_NOT_FOUND, "file not found: %.300s",
				     req->file_by_filename);
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
		if (spd_reflection_index_find_symbol(x, req->file_containing_symbol, &file, NULL) == 0)
			answer_files(&a, x, &r, file);
		else
			answer_error(&a, &r, GRPC_STATUS_NOT_FOUND, "symbol not found: %.300s",
				     req->file_containing_symbol);
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION: {
		const Grpc__Reflection__V1__ExtensionRequest *e = req->file_containing_extension;
		if (e != NULL && e->containing_type != NULL &&
		    spd_reflection_index_find_extension(x, e->containing_type, e->extension_number,
							&file) == 0)
			answer_files(&a, x, &r, file);
		else
			answer_error(&a, &r, GRPC_STATUS_NOT_FOUND, "extension not found on %.300s",
				     e != NULL && e->containing_type != NULL ? e->containing_type : "");
		break;
	}
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
		answer_extension_numbers(&a, x, &r, req->all_extension_numbers_of_type);
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
		answer_services(&a, x, &r);
		break;
	default:
		answer_error(&a, &r, GRPC_STATUS_INVALID_ARGUMENT, "%s",
			     "message_request: none of the known requests is set");
		break;
	}
	if (!a.failed)
		bb = spd_codec_pack(&r.base);
	spd_arena_release(&a);
	return bb;
}

/* ---- the call -------------------------------------------------------------------- */

static void start_recv(refl *c);

/* Sends BB (ownership taken), or the status CODE when BB is NULL. */
static void start_send(refl *c, grpc_byte_buffer *bb, grpc_status_code code, const char *details)
{
	grpc_op ops[2];
	grpc_slice msg = grpc_slice_from_copied_string(details != NULL ? details : "");
	size_t n = 0;

	memset(ops, 0, sizeof ops);
	if (!c->md_sent) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		c->md_sent = true;
	}
	if (bb != NULL) {
		c->send_bb = bb;
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = bb;
	} else {
		c->closing = true;
		c->status = code;
		ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
		ops[n].data.send_status_from_server.status = code;
		ops[n++].data.send_status_from_server.status_details = details != NULL ? &msg : NULL;
	}
	atomic_fetch_add(&c->refs, 1);
	if (grpc_call_start_batch(c->call, ops, n, &c->send_tag, NULL) != GRPC_CALL_OK) {
		if (c->send_bb != NULL) {
			grpc_byte_buffer_destroy(c->send_bb);
			c->send_bb = NULL;
		}
		refl_unref(c);
	}
	grpc_slice_unref(msg);
}

static void on_recv(spd_tag *tag, int ok)
{
	refl *c = (refl *)((char *)tag - offsetof(refl, recv_tag));
	grpc_byte_buffer *bb = c->recv_bb;

	c->recv_bb = NULL;
	if (!ok) {
		/* The call is dead (cancelled, or the server is going away). */
		if (bb != NULL)
			grpc_byte_buffer_destroy(bb);
	} else if (bb == NULL) {
		start_send(c, NULL, GRPC_STATUS_OK, NULL);  /* the client half-closed */
	} else {
		char msg[256];
		Grpc__Reflection__V1__ServerReflectionRequest *req =
			(Grpc__Reflection__V1__ServerReflectionRequest *)spd_rpc_unpack(
				bb, &grpc__reflection__v1__server_reflection_request__descriptor, msg,
				sizeof msg);
		grpc_byte_buffer_destroy(bb);
		if (req == NULL) {
			start_send(c, NULL, GRPC_STATUS_INVALID_ARGUMENT, msg);
		} else {
			grpc_byte_buffer *reply = answer(c->index, req);
			if (reply != NULL)
				start_send(c, reply, GRPC_STATUS_OK, NULL);
			else
				start_send(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			protobuf_c_message_free_unpacked(&req->base, NULL);
		}
	}
	refl_unref(c);
}

static void on_send(spd_tag *tag, int ok)
{
	refl *c = (refl *)((char *)tag - offsetof(refl, send_tag));

	if (c->send_bb != NULL) {
		grpc_byte_buffer_destroy(c->send_bb);
		c->send_bb = NULL;
	}
	if (ok && !c->closing)
		start_recv(c);
	refl_unref(c);
}

static void on_close(spd_tag *tag, int ok)
{
	(void)ok;
	refl_unref((refl *)((char *)tag - offsetof(refl, close_tag)));
}

static void start_recv(refl *c)
{
	grpc_op op;

	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &c->recv_bb;
	atomic_fetch_add(&c->refs, 1);
	if (grpc_call_start_batch(c->call, &op, 1, &c->recv_tag, NULL) != GRPC_CALL_OK)
		refl_unref(c);
}

void spd_rpc_reflection_info(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload)
{
	refl *c;
	grpc_op op;

	/* Registered with GRPC_SRM_PAYLOAD_NONE: messages come by RECV_MESSAGE. */
	if (payload != NULL)
		grpc_byte_buffer_destroy(payload);
	if (env->reflection == NULL) {
		spd_call_finish(call, GRPC_STATUS_UNAVAILABLE, "reflection: no descriptors", NULL);
		return;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		spd_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
		return;
	}
	atomic_init(&c->refs, 1);  /* this function's */
	c->call = call;
	c->index = env->reflection;
	c->close_tag.fn = on_close;
	c->recv_tag.fn = on_recv;
	c->send_tag.fn = on_send;
	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &c->cancelled;
	atomic_fetch_add(&c->refs, 1);
	if (grpc_call_start_batch(call, &op, 1, &c->close_tag, NULL) != GRPC_CALL_OK)
		atomic_fetch_sub(&c->refs, 1);
	start_recv(c);
	refl_unref(c);
}
