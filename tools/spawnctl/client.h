/* spawnctl's gRPC client: one channel to spawnd and one pluck completion queue,
 * driven by a single thread. Every call blocks until its batch completes; a
 * call's deadline (when it has one) bounds every wait, and without one gRPC
 * still fails fast on a refused connection (no wait_for_ready).
 *
 * Messages are protobuf-c messages; the client packs requests and unpacks
 * responses with the descriptors it is given.
 */
#ifndef SPAWNCTL_CLIENT_H
#define SPAWNCTL_CLIENT_H

#include <signal.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

typedef struct spc_client spc_client;
typedef struct spc_stream spc_stream;

/* The final status of an RPC, as the server (or gRPC on its behalf) sent it,
 * or as the client set it when a response could not be parsed. */
struct spc_status {
	grpc_status_code code;
	char *details; /* NUL-terminated, owned (free()); never NULL once set */
};

#define SPC_STATUS_INIT { GRPC_STATUS_OK, NULL }

/* Frees the details of ST (which stays usable as an empty status). */
void spc_status_release(struct spc_status *st);

/* The canonical name of CODE ("NOT_FOUND"), or "UNKNOWN_CODE" when out of range. */
const char *spc_client_code_name(grpc_status_code code);

/* How to reach spawnd: the global options --addr, --tls, --cacert, --cert,
 * --key and --token (or $SPAWND_TOKEN). Strings are borrowed. */
struct spc_conn {
	const char *addr;    /* host:port, dns:///host:port, unix:/path ... */
	int tls;             /* TLS (also implied by cacert, cert or key) */
	const char *cacert;  /* PEM file of the CA that signed the server; NULL: system roots */
	const char *cert;    /* PEM client certificate (mTLS), with KEY */
	const char *key;
	const char *token;   /* sent as "authorization: Bearer TOKEN"; NULL: none */
};

/* Initialises gRPC and creates a channel to CONN->addr. Nothing connects
 * until the first call. On success *OUT owns the client (spc_client_destroy).
 * Returns 0; -EINVAL for an address gRPC rejects outright, a certificate file
 * that cannot be read (said on stderr), or --cert without --key; -ENOMEM. */
int spc_client_create(const struct spc_conn *conn, spc_client **out);

/* Destroys the channel and the queue and shuts gRPC down (blocking, so that
 * nothing of gRPC outlives it). Every stream must have been finished. NULL is
 * a no-op. */
void spc_client_destroy(spc_client *c);

/* One unary call of METHOD ("/pkg.Service/Method") with REQ, bounded by
 * TIMEOUT_NS (0: no deadline). Returns 0 when the call ended with a status,
 * OK or not, in *ST (release it with spc_status_release); on OK *RESP is the
 * response, unpacked with RESP_DESC, owned by the caller
 * (protobuf_c_message_free_unpacked(*RESP, NULL)), else *RESP is NULL.
 * Returns -ENOMEM or -EIO (gRPC refused the batch) when no call happened. */
int spc_client_unary(spc_client *c, const char *method,
		     const ProtobufCMessage *req,
		     const ProtobufCMessageDescriptor *resp_desc,
		     int64_t timeout_ns, ProtobufCMessage **resp,
		     struct spc_status *st);

/* Starts a server-streaming call of METHOD with REQ, bounded by TIMEOUT_NS
 * (0: no deadline). On success *OUT owns the stream: read it with
 * spc_stream_next and end it with spc_stream_finish. Returns 0, -ENOMEM or
 * -EIO. */
int spc_stream_open(spc_client *c, const char *method,
		    const ProtobufCMessage *req, int64_t timeout_ns,
		    spc_stream **out);

/* Waits for the next message of S and unpacks it with DESC. Returns 1 with
 * *MSG owned by the caller (protobuf_c_message_free_unpacked(*MSG, NULL)), 0
 * at the end of the stream (the status is then spc_stream_finish's), or
 * -ENOMEM / -EIO. A message that does not parse cancels the call with
 * INTERNAL and reads as the end of the stream. */
int spc_stream_next(spc_stream *s, const ProtobufCMessageDescriptor *desc,
		    ProtobufCMessage **msg);

/* Like spc_stream_next, but returns -EINTR once *STOP (set by a signal
 * handler) is found set: it is checked every 100 ms while waiting, the call is
 * then cancelled and S is at its end (finish it for the status, CANCELLED). A
 * NULL STOP waits like spc_stream_next. */
int spc_stream_next_or_stop(spc_stream *s, const ProtobufCMessageDescriptor *desc,
			    ProtobufCMessage **msg, const volatile sig_atomic_t *stop);

/* Ends S: cancels the call unless it reached its end, waits for the final
 * status, stores it in *ST (if ST is not NULL; release it with
 * spc_status_release) and frees S. NULL is a no-op. */
void spc_stream_finish(spc_stream *s, struct spc_status *st);

#endif
