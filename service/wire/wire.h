/* The framing of spawnd's internal protocol (SPEC §11): the front <-> launcher
 * channel and the launcher <-> zygote ones, each a SOCK_SEQPACKET socketpair
 * carrying one frame per datagram. A frame is a fixed header and a body of
 * fields packed with the spd_wbuf writer and read back with the spd_wreader
 * reader. Both ends are the same build, so fields are in host order and
 * unversioned. Only the codecs (messages.h, zygote_frames.h) pack and unpack
 * bodies; everyone else sends and receives them whole.
 *
 * Datagrams stay <= SPD_WIRE_MAX_DGRAM. A larger body travels in a sealed memfd
 * passed with SCM_RIGHTS; the datagram then carries only the header with
 * SPD_WIRE_F_MEMFD. Receiving is transparent: spd_wire_recv() returns the body
 * either way.
 *
 * No gRPC here: the launcher links this. Thread: a socket end may be sent on and
 * received on by one thread each at a time; the helpers keep no global state.
 */
#ifndef SPAWND_WIRE_WIRE_H
#define SPAWND_WIRE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "service/common/strv.h"

#define SPD_WIRE_MAX_DGRAM (64u * 1024u)
/* Largest body accepted from a memfd: inputs, results and tails all fit. */
#define SPD_WIRE_MAX_BODY (256u * 1024u * 1024u)

enum spd_wire_type {
	SPD_WIRE_HELLO = 1,   /* L->F: the launcher is up; per-target readiness */
	SPD_WIRE_START = 2,   /* F->L: start a process (spd_start_req) */
	SPD_WIRE_DESTROY = 3, /* F->L: destroy a process: i64 grace_ms */
	SPD_WIRE_STARTED = 4, /* L->F: the child runs: i32 pid, i64 started_ns */
	SPD_WIRE_EXITED = 5,  /* L->F: the process is over (spd_exit_report) */
	SPD_WIRE_OUTPUT = 6,  /* L->F: u32 stream (1 stdout, 2 stderr), i64 offset, bytes data */
	SPD_WIRE_HEALTH = 7,  /* L->F, key = target id: a zygote went down/up (spd_health_msg) */
	SPD_WIRE_RELOAD = 8,  /* F->L: targets to add (a boot body, wire/boot.h) */
	SPD_WIRE_RELOADED = 9, /* L->F: the added targets' readiness (a HELLO body) */
	SPD_WIRE_RETIRE = 10, /* F->L, key = target id, empty: no process of it is left
			       * and none will start: free it (and its zygote) */
	SPD_WIRE_STALE = 11,  /* F->L, key = target id, empty: a reload took the version
			       * out of the current set (changed or removed): its
			       * pre-started children are killed and not replaced */
	SPD_WIRE_IDLE = 12,   /* L->F, key = target id: u32 pre-started children waiting
			       * (spd_idle_msg), sent when the count changed */

	/* Launcher <-> zygote (forkserver), keyed by the process's key. */
	SPD_ZYGOTE_SPAWN = 101,   /* L->Z: spd_start_req; fds stdin, stdout, stderr, channel
				   * [, cgroup.procs of its memory cgroup] */
	SPD_ZYGOTE_SIGNAL = 102,  /* L->Z: u32 signal, for the child's group */
	SPD_ZYGOTE_STARTED = 103, /* Z->L: i32 pid, or -errno when fork failed */
	SPD_ZYGOTE_EXITED = 104,  /* Z->L: i32 wait status, i64 utime_us, stime_us, maxrss_bytes,
				   * u32 SPD_EXIT_SENT_* the zygote's signals that reached it alive */
	SPD_ZYGOTE_READY = 105,  /* Z->L: empty; its target is loaded and it takes SPAWNs */
	SPD_ZYGOTE_PRESTART = 106, /* L->Z, key = the idle child's (launcher_impl.h): empty;
				    * fds stdin, stdout, stderr, channel, request pipe
				    * [, cgroup.procs]: fork a pre-started child, answered
				    * with STARTED; SIGNAL and EXITED name it by that key */
};

/* Output is read in chunks that fit one datagram with their frame header. */
#define SPD_WIRE_OUTPUT_CHUNK (SPD_WIRE_MAX_DGRAM - 256u)

#define SPD_WIRE_F_MEMFD 1u

typedef struct spd_wire_hdr {
	uint32_t type;
	uint32_t flags;
	uint64_t key;  /* the front's serial number of the process; 0 for HELLO */
} spd_wire_hdr;

/* A growable body being written. Errors are sticky: check `err` once at the end. */
typedef struct spd_wbuf {
	uint8_t *data;
	size_t len, cap;
	int err;  /* 0 or -ENOMEM */
} spd_wbuf;

#define SPD_WBUF_INIT {NULL, 0, 0, 0}

void spd_wbuf_u32(spd_wbuf *b, uint32_t v);
void spd_wbuf_i64(spd_wbuf *b, int64_t v);
void spd_wbuf_bytes(spd_wbuf *b, const void *p, size_t len);
void spd_wbuf_str(spd_wbuf *b, const char *s);  /* NULL is written as "" */
/* A string vector: u32 N, then N strings. */
void spd_wbuf_strv(spd_wbuf *b, char *const *v, size_t n);
void spd_wbuf_release(spd_wbuf *b);

/* Reads a body. Pointers returned point into the body. Errors are sticky: after
 * any read past the end, `err` is -EBADMSG and every read returns 0/""/NULL. */
typedef struct spd_wreader {
	const uint8_t *p;
	size_t left;
	int err;
} spd_wreader;

void spd_wreader_init(spd_wreader *r, const void *body, size_t len);
uint32_t spd_wreader_u32(spd_wreader *r);
int64_t spd_wreader_i64(spd_wreader *r);
/* Returns a pointer to LEN bytes (not NUL-terminated), never NULL. */
const void *spd_wreader_bytes(spd_wreader *r, size_t *len);
/* Copies a string into a new NUL-terminated heap string (caller frees), or NULL
 * on error. Strings containing NUL are cut there. */
char *spd_wreader_strdup(spd_wreader *r);
/* Reads N strings into a new NULL-terminated array of N + 1 entries (free it
 * with spd_strv_free), or returns NULL with `err` set (-EBADMSG, -ENOMEM). */
char **spd_wreader_strv_n(spd_wreader *r, size_t n);
/* Reads a string vector (spd_wbuf_strv) of at most MAX entries, as
 * spd_wreader_strv_n, and sets *N to its length (0 on error). More than MAX
 * is -EBADMSG, before anything is allocated. */
char **spd_wreader_strv(spd_wreader *r, uint32_t max, size_t *n);
/* Ends a whole body: bytes left unread are an error (-EBADMSG) too. Returns
 * `err`. */
int spd_wreader_end(spd_wreader *r);

/* A new sealed, O_CLOEXEC memfd holding LEN bytes of DATA, positioned at 0.
 * Returns the fd or -errno. */
int spd_memfd_from(const void *data, size_t len);

/* Reads the whole of memfd FD (at most SPD_WIRE_MAX_BODY bytes, else -EBADMSG)
 * into a new heap buffer *DATA (the caller frees it; never NULL on success)
 * of *LEN bytes. FD stays open. Returns 0 or -errno. */
int spd_memfd_read(int fd, uint8_t **data, size_t *len);

/* Sends one frame. Blocks while the socket buffer is full. Returns 0 or -errno. */
int spd_wire_send(int fd, uint32_t type, uint64_t key, const spd_wbuf *body);

/* Descriptors one frame may carry (besides a body's memfd). */
#define SPD_WIRE_MAX_FDS 6

/* Like spd_wire_send, but never blocks: -EAGAIN when the socket buffer is full
 * (nothing was sent). */
int spd_wire_send_nonblock(int fd, uint32_t type, uint64_t key, const spd_wbuf *body);

/* An ordered queue of frames waiting for room on a socket, so that a sender
 * with its own loop never blocks on a peer that may be blocked on it. */
typedef struct spd_wire_frame spd_wire_frame;
typedef struct spd_wire_outq {
	spd_wire_frame *head, *tail;
	size_t bytes;  /* queued, headers included */
} spd_wire_outq;

#define SPD_WIRE_OUTQ_INIT {NULL, NULL, 0}

/* Sends a frame on FD at once if nothing waits and the socket takes it, else
 * queues it behind the others (taking BODY's data; BODY is left empty either
 * way). Never blocks, but when out of memory: it then sends everything
 * queued, and this frame, blocking, to keep order and lose nothing.
 * Returns 0 or the -errno of a failed send (the frame is dropped). */
int spd_wire_outq_send(spd_wire_outq *q, int fd, uint32_t type, uint64_t key, spd_wbuf *body);

/* Sends queued frames while FD takes them. Returns 0 or -errno (the failed
 * frame is dropped). */
int spd_wire_outq_flush(spd_wire_outq *q, int fd);

/* Frees every queued frame. */
void spd_wire_outq_release(spd_wire_outq *q);

/* Like spd_wire_send, also passing FDS (nfds <= SPD_WIRE_MAX_FDS; the caller
 * keeps its copies). */
int spd_wire_send_fds(int fd, uint32_t type, uint64_t key, const spd_wbuf *body,
		      const int *fds, size_t nfds);

/* Like spd_wire_recv, also returning the descriptors the frame carried (in
 * order, O_CLOEXEC, owned by the caller) in FDS (room for SPD_WIRE_MAX_FDS). */
int spd_wire_recv_fds(int fd, spd_wire_hdr *hdr, uint8_t **body, size_t *body_len, int *fds,
		      size_t *nfds);

/* Receives one frame: *body is a heap buffer the caller frees (NULL when empty).
 * Returns 1 on a frame, 0 on EOF (the peer is gone), -errno on error (-EBADMSG
 * for a malformed frame, which the caller should treat as fatal). Descriptors
 * received are O_CLOEXEC and closed here. */
int spd_wire_recv(int fd, spd_wire_hdr *hdr, uint8_t **body, size_t *body_len);

#endif
