#include "tools/spawnctl/client.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

/* Results and output tails can be large (targets may raise max_result_bytes);
 * gRPC's default 4 MiB receive cap would turn them into RESOURCE_EXHAUSTED. */
#define SPC_MAX_RECEIVE_BYTES (256 * 1024 * 1024)

struct spc_client {
	grpc_channel *channel;
	grpc_completion_queue *cq; /* pluck: every batch is waited for by tag */
	char *bearer;              /* "Bearer TOKEN", or NULL */
	grpc_metadata auth;        /* authorization: bearer (static slices) */
	size_t nauth;              /* 1 with a token, else 0 */
};

struct spc_stream {
	spc_client *client;
	grpc_call *call;
	grpc_metadata_array initial_md;
	grpc_metadata_array trailing_md;
	grpc_status_code code;
	grpc_slice details;
	grpc_byte_buffer *recv_bb;
	int got_initial_md;
	int ended;          /* RECV_MESSAGE returned no message */
	int status_pending; /* the RECV_STATUS_ON_CLIENT batch is outstanding */
	/* Distinct addresses, one per kind of batch: a tag is never shared by two
	 * batches in flight. */
	char tag_send, tag_recv, tag_status;
};

static const char *const spc__code_names[] = {
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
	"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
	"DATA_LOSS", "UNAUTHENTICATED",
};

const char *spc_client_code_name(grpc_status_code code)
{
	if ((int)code < 0 ||
	    (size_t)code >= sizeof spc__code_names / sizeof spc__code_names[0])
		return "UNKNOWN_CODE";
	return spc__code_names[code];
}

void spc_status_release(struct spc_status *st)
{
	free(st->details);
	st->details = NULL;
}

static int spc__status_set(struct spc_status *st, grpc_status_code code,
			   const char *details, size_t len)
{
	char *copy = malloc(len + 1);

	if (copy == NULL)
		return -ENOMEM;
	if (len > 0)
		memcpy(copy, details, len);
	copy[len] = '\0';
	free(st->details);
	st->code = code;
	st->details = copy;
	return 0;
}

static int spc__status_from_slice(struct spc_status *st, grpc_status_code code,
				  grpc_slice details)
{
	return spc__status_set(st, code,
			       (const char *)GRPC_SLICE_START_PTR(details),
			       GRPC_SLICE_LENGTH(details));
}

static int spc__status_str(struct spc_status *st, grpc_status_code code,
			   const char *details)
{
	return spc__status_set(st, code, details, strlen(details));
}

/* ---------------------------------------------------------------------------
 * Messages <-> byte buffers
 * ------------------------------------------------------------------------- */

static int spc__pack(const ProtobufCMessage *msg, grpc_byte_buffer **out)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	grpc_slice s = grpc_slice_malloc(n);

	protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
	*out = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return *out == NULL ? -ENOMEM : 0;
}

/* Returns 0 with *OUT set, or -EBADMSG when BB does not parse as DESC. */
static int spc__unpack(grpc_byte_buffer *bb,
		       const ProtobufCMessageDescriptor *desc,
		       ProtobufCMessage **out)
{
	grpc_byte_buffer_reader reader;
	grpc_slice s;

	*out = NULL;
	if (!grpc_byte_buffer_reader_init(&reader, bb))
		return -EBADMSG;
	s = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	*out = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(s),
					 GRPC_SLICE_START_PTR(s));
	grpc_slice_unref(s);
	return *out == NULL ? -EBADMSG : 0;
}

static gpr_timespec spc__deadline(int64_t timeout_ns)
{
	if (timeout_ns <= 0)
		return gpr_inf_future(GPR_CLOCK_MONOTONIC);
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
			    gpr_time_from_nanos(timeout_ns, GPR_TIMESPAN));
}

static grpc_call *spc__call_create(spc_client *c, const char *method,
				   int64_t timeout_ns)
{
	return grpc_channel_create_call(c->channel, NULL,
					GRPC_PROPAGATE_DEFAULTS, c->cq,
					grpc_slice_from_static_string(method),
					NULL, spc__deadline(timeout_ns), NULL);
}

/* Waits for the batch of TAG; the call's deadline bounds it. */
static int spc__pluck(spc_client *c, void *tag, int *success)
{
	grpc_event ev = grpc_completion_queue_pluck(
		c->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

	if (ev.type != GRPC_OP_COMPLETE)
		return -EIO;
	if (success != NULL)
		*success = ev.success;
	return 0;
}

/* ---------------------------------------------------------------------------
 * Client
 * ------------------------------------------------------------------------- */

/* The whole of file PATH, NUL-terminated, for OPT's error message. NULL
 * (said on stderr) when it cannot be read. */
static char *spc__read_pem(const char *opt, const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (f == NULL) {
		fprintf(stderr, "spawnctl: %s %s: %s\n", opt, path, strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t n;
		if (len + 4097 > cap) {
			char *b = realloc(buf, cap = cap * 2 + 8192);
			if (b == NULL || cap > ((size_t)16 << 20)) {
				free(b != NULL ? b : buf);
				fclose(f);
				fprintf(stderr, "spawnctl: %s %s: too large\n", opt, path);
				return NULL;
			}
			buf = b;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* Channel credentials for CONN: insecure, or TLS with its files. */
static int spc__credentials(const struct spc_conn *conn, grpc_channel_credentials **out)
{
	char *ca = NULL, *cert = NULL, *key = NULL;
	grpc_ssl_pem_key_cert_pair pair;
	int err = 0;

	*out = NULL;
	if (!conn->tls && conn->cacert == NULL && conn->cert == NULL && conn->key == NULL) {
		*out = grpc_insecure_credentials_create();
		return *out != NULL ? 0 : -ENOMEM;
	}
	if ((conn->cert == NULL) != (conn->key == NULL)) {
		fprintf(stderr, "spawnctl: --cert and --key go together\n");
		return -EINVAL;
	}
	if ((conn->cacert != NULL && (ca = spc__read_pem("--cacert", conn->cacert)) == NULL) ||
	    (conn->cert != NULL && (cert = spc__read_pem("--cert", conn->cert)) == NULL) ||
	    (conn->key != NULL && (key = spc__read_pem("--key", conn->key)) == NULL)) {
		err = -EINVAL;
		goto out;
	}
	pair.private_key = key;
	pair.cert_chain = cert;
	*out = grpc_ssl_credentials_create(ca, cert != NULL ? &pair : NULL, NULL, NULL);
	if (*out == NULL)
		err = -ENOMEM;
out:
	free(ca);
	free(cert);
	if (key != NULL)
		memset(key, 0, strlen(key));
	free(key);
	return err;
}

int spc_client_create(const struct spc_conn *conn, spc_client **out)
{
	spc_client *c = NULL;
	grpc_channel_credentials *creds = NULL;
	grpc_arg arg;
	grpc_channel_args args;
	int err = 0;

	*out = NULL;
	grpc_init();
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		err = -ENOMEM;
		goto out;
	}
	arg.type = GRPC_ARG_INTEGER;
	arg.key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	arg.value.integer = SPC_MAX_RECEIVE_BYTES;
	args.num_args = 1;
	args.args = &arg;
	err = spc__credentials(conn, &creds);
	if (err < 0)
		goto out;
	if (conn->token != NULL && conn->token[0] != '\0') {
		size_t n = strlen(conn->token) + sizeof "Bearer ";
		c->bearer = malloc(n);
		if (c->bearer == NULL) {
			err = -ENOMEM;
			goto out;
		}
		snprintf(c->bearer, n, "Bearer %s", conn->token);
		c->auth.key = grpc_slice_from_static_string("authorization");
		c->auth.value = grpc_slice_from_static_string(c->bearer);
		c->nauth = 1;
	}
	/* A malformed target still yields a (lame) channel whose calls fail
	 * with UNAVAILABLE, so this does not check the address itself. */
	c->channel = grpc_channel_create(conn->addr, creds, &args);
	if (c->channel == NULL) {
		err = -EINVAL;
		goto out;
	}
	c->cq = grpc_completion_queue_create_for_pluck(NULL);
	if (c->cq == NULL) {
		err = -ENOMEM;
		goto out;
	}
	*out = c;
	c = NULL;
out:
	if (creds != NULL)
		grpc_channel_credentials_release(creds);
	if (c != NULL) {
		if (c->channel != NULL)
			grpc_channel_destroy(c->channel);
		free(c->bearer);
		free(c);
	}
	if (err != 0)
		grpc_shutdown_blocking();
	return err;
}

void spc_client_destroy(spc_client *c)
{
	if (c == NULL)
		return;
	grpc_channel_destroy(c->channel);
	/* Every tag has been plucked already, so the queue is empty. */
	grpc_completion_queue_shutdown(c->cq);
	grpc_completion_queue_destroy(c->cq);
	free(c->bearer);
	free(c);
	grpc_shutdown_blocking();
}

/* ---------------------------------------------------------------------------
 * Unary calls
 * ------------------------------------------------------------------------- */

int spc_client_unary(spc_client *c, const char *method,
		     const ProtobufCMessage *req,
		     const ProtobufCMessageDescriptor *resp_desc,
		     int64_t timeout_ns, ProtobufCMessage **resp,
		     struct spc_status *st)
{
	grpc_call *call = NULL;
	grpc_byte_buffer *send_bb = NULL, *recv_bb = NULL;
	grpc_metadata_array initial_md, trailing_md;
	grpc_status_code code = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	grpc_op ops[6];
	char tag;
	int err;

	*resp = NULL;
	grpc_metadata_array_init(&initial_md);
	grpc_metadata_array_init(&trailing_md);
	err = spc__pack(req, &send_bb);
	if (err < 0)
		goto out;
	call = spc__call_create(c, method, timeout_ns);
	if (call == NULL) {
		err = -ENOMEM;
		goto out;
	}
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = c->nauth;
	ops[0].data.send_initial_metadata.metadata = c->nauth ? &c->auth : NULL;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send_bb;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv_bb;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
	ops[5].data.recv_status_on_client.status = &code;
	ops[5].data.recv_status_on_client.status_details = &details;
	if (grpc_call_start_batch(call, ops, 6, &tag, NULL) != GRPC_CALL_OK) {
		err = -EIO;
		goto out;
	}
	/* A batch with RECV_STATUS_ON_CLIENT always completes with a status;
	 * `success` carries nothing more. */
	err = spc__pluck(c, &tag, NULL);
	if (err < 0)
		goto out;
	err = spc__status_from_slice(st, code, details);
	if (err < 0 || code != GRPC_STATUS_OK)
		goto out;
	if (recv_bb == NULL) {
		err = spc__status_str(st, GRPC_STATUS_INTERNAL,
				      "no response message");
		goto out;
	}
	if (spc__unpack(recv_bb, resp_desc, resp) < 0)
		err = spc__status_str(st, GRPC_STATUS_INTERNAL,
				      "the response message does not parse");
out:
	if (recv_bb != NULL)
		grpc_byte_buffer_destroy(recv_bb);
	if (send_bb != NULL)
		grpc_byte_buffer_destroy(send_bb);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&trailing_md);
	grpc_metadata_array_destroy(&initial_md);
	if (call != NULL)
		grpc_call_unref(call);
	return err;
}

/* ---------------------------------------------------------------------------
 * Server-streaming calls
 * ------------------------------------------------------------------------- */

int spc_stream_open(spc_client *c, const char *method,
		    const ProtobufCMessage *req, int64_t timeout_ns,
		    spc_stream **out)
{
	spc_stream *s = NULL;
	grpc_byte_buffer *send_bb = NULL;
	grpc_op ops[3];
	int err;

	*out = NULL;
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return -ENOMEM;
	s->client = c;
	s->code = GRPC_STATUS_UNKNOWN;
	s->details = grpc_empty_slice();
	grpc_metadata_array_init(&s->initial_md);
	grpc_metadata_array_init(&s->trailing_md);
	err = spc__pack(req, &send_bb);
	if (err < 0)
		goto out;
	s->call = spc__call_create(c, method, timeout_ns);
	if (s->call == NULL) {
		err = -ENOMEM;
		goto out;
	}
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &s->trailing_md;
	ops[0].data.recv_status_on_client.status = &s->code;
	ops[0].data.recv_status_on_client.status_details = &s->details;
	if (grpc_call_start_batch(s->call, ops, 1, &s->tag_status, NULL) !=
	    GRPC_CALL_OK) {
		err = -EIO;
		goto out;
	}
	s->status_pending = 1;
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = c->nauth;
	ops[0].data.send_initial_metadata.metadata = c->nauth ? &c->auth : NULL;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send_bb;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	if (grpc_call_start_batch(s->call, ops, 3, &s->tag_send, NULL) !=
	    GRPC_CALL_OK) {
		err = -EIO;
		goto out;
	}
	/* A failed send (success == 0) needs no handling here: the call is
	 * over and the next read reports the end, then the status. */
	err = spc__pluck(c, &s->tag_send, NULL);
	if (err < 0)
		goto out;
	*out = s;
	s = NULL;
out:
	if (send_bb != NULL)
		grpc_byte_buffer_destroy(send_bb);
	spc_stream_finish(s, NULL);
	return err;
}

/* Like spc__pluck, but every 100 ms checks *STOP: once it is set, cancels
 * CALL, still waits for the batch (a cancelled call completes it) and
 * returns -EINTR. */
static int spc__pluck_or_stop(spc_client *c, void *tag, grpc_call *call,
			      const volatile sig_atomic_t *stop)
{
	int canceled = 0;

	for (;;) {
		gpr_timespec dl = canceled ? gpr_inf_future(GPR_CLOCK_MONOTONIC)
			: gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				       gpr_time_from_millis(100, GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_pluck(c->cq, tag, dl, NULL);

		if (ev.type == GRPC_OP_COMPLETE)
			return canceled ? -EINTR : 0;
		if (ev.type != GRPC_QUEUE_TIMEOUT)
			return -EIO;
		if (*stop && !canceled) {
			grpc_call_cancel(call, NULL);
			canceled = 1;
		}
	}
}

int spc_stream_next(spc_stream *s, const ProtobufCMessageDescriptor *desc,
		    ProtobufCMessage **msg)
{
	return spc_stream_next_or_stop(s, desc, msg, NULL);
}

int spc_stream_next_or_stop(spc_stream *s, const ProtobufCMessageDescriptor *desc,
			    ProtobufCMessage **msg, const volatile sig_atomic_t *stop)
{
	grpc_op ops[2];
	size_t n = 0;
	int err;

	*msg = NULL;
	if (s->ended)
		return 0;
	memset(ops, 0, sizeof ops);
	if (!s->got_initial_md) {
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n].data.recv_initial_metadata.recv_initial_metadata =
			&s->initial_md;
		n++;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n].data.recv_message.recv_message = &s->recv_bb;
	n++;
	if (grpc_call_start_batch(s->call, ops, n, &s->tag_recv, NULL) !=
	    GRPC_CALL_OK)
		return -EIO;
	s->got_initial_md = 1;
	if (stop != NULL)
		err = spc__pluck_or_stop(s->client, &s->tag_recv, s->call, stop);
	else
		err = spc__pluck(s->client, &s->tag_recv, NULL);
	if (err == -EINTR) {
		if (s->recv_bb != NULL)
			grpc_byte_buffer_destroy(s->recv_bb);
		s->recv_bb = NULL;
		s->ended = 1; /* cancelled: the status follows */
	}
	if (err < 0)
		return err;
	if (s->recv_bb == NULL) {
		s->ended = 1;
		return 0;
	}
	err = spc__unpack(s->recv_bb, desc, msg);
	grpc_byte_buffer_destroy(s->recv_bb);
	s->recv_bb = NULL;
	if (err < 0) {
		grpc_call_cancel_with_status(
			s->call, GRPC_STATUS_INTERNAL,
			"a stream message does not parse", NULL);
		s->ended = 1;
		return 0;
	}
	return 1;
}

void spc_stream_finish(spc_stream *s, struct spc_status *st)
{
	if (s == NULL)
		return;
	if (st != NULL)
		st->code = GRPC_STATUS_UNKNOWN;
	if (s->call != NULL && !s->ended)
		grpc_call_cancel(s->call, NULL);
	/* The status batch completes once the call is over, which the cancel
	 * above guarantees. Without memory for the details, the code alone. */
	if (s->status_pending &&
	    spc__pluck(s->client, &s->tag_status, NULL) == 0 && st != NULL &&
	    spc__status_from_slice(st, s->code, s->details) < 0)
		st->code = s->code;
	grpc_slice_unref(s->details);
	grpc_metadata_array_destroy(&s->trailing_md);
	grpc_metadata_array_destroy(&s->initial_md);
	if (s->call != NULL)
		grpc_call_unref(s->call);
	free(s);
}
