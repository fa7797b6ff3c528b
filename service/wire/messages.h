/* The bodies of the front <-> launcher frames (wire.h): one struct per frame,
 * with its encoder, its decoder and, where decoding allocates, its release.
 * Shared by the launcher and the front; nothing else packs these bodies.
 *
 * The contract, for every frame:
 *   - _encode(msg, out) appends MSG's fields to OUT and returns OUT's error
 *     state (0 or -ENOMEM). It reads MSG and takes none of it: pointers in it
 *     may be borrowed (NULL strings travel as ""; see each struct for the ones
 *     that mean something when NULL).
 *   - _decode(msg, body, len) fills MSG from a whole body. The body must hold
 *     exactly the frame's fields, each within bounds: anything short, long or
 *     past a cap is -EBADMSG (or -ENOMEM), and MSG then holds nothing that
 *     needs releasing. On success MSG owns its strings and buffers (release
 *     it with the matching _release(), which also resets it), except where a
 *     field says it points into BODY.
 *   - Frames whose decode allocates nothing have no _release(). */
#ifndef SPAWND_WIRE_MESSAGES_H
#define SPAWND_WIRE_MESSAGES_H

#include <stddef.h>
#include <stdint.h>

#include "service/common/exit_facts.h"
#include "service/common/limits.h"
#include "service/wire/wire.h"

/* START, F->L: start a process (also the body of the zygote's SPAWN, and of
 * a spawn worker's call spec). Decode caps argc at SPD_START_MAX_ARGS and
 * label_count at SPD_START_MAX_LABELS, the request caps of common/limits.h:
 * the front validated the request already; the launcher checks again rather
 * than trust a frame. */
#define SPD_START_MAX_ARGS ((uint32_t)SPD_ARGS_MAX)
#define SPD_START_MAX_LABELS ((uint32_t)SPD_LABELS_MAX)

typedef struct spd_start_req {
	char *process_id;
	char *target;
	uint32_t target_id;   /* the version of TARGET it runs with (boot.h: ids) */
	char **argv;          /* argc entries + NULL */
	uint32_t argc;
	uint8_t *input;
	size_t input_len;
	char **labels;        /* key, value, ..., NULL: 2 * label_count entries */
	uint32_t label_count;
	int64_t grace_ms;     /* destroy grace for timeouts; the target's when < 0 */
	int64_t timeout_ms;   /* 0 = none */
	/* W3C traceparent for the child's TRACEPARENT (SPEC §12); NULL or "":
	 * none. Decode gives NULL for none, and refuses one longer than
	 * SPD_START_MAX_TRACEPARENT. */
	char *traceparent;
} spd_start_req;

#define SPD_START_MAX_TRACEPARENT 256u

int spd_start_req_encode(const spd_start_req *req, spd_wbuf *out);
int spd_start_req_decode(spd_start_req *req, const void *body, size_t len);
void spd_start_req_release(spd_start_req *req);

/* EXITED, L->F: the process is over. Its body is the exit facts
 * (common/exit_facts.h: what the launcher observed, no verdict), which the
 * front's registry classifies. */
typedef spd_exit_facts spd_exit_report;

int spd_exit_report_encode(const spd_exit_report *r, spd_wbuf *out);
int spd_exit_report_decode(spd_exit_report *r, const void *body, size_t len);
void spd_exit_report_release(spd_exit_report *r);

/* HELLO, L->F, once (key 0): the launcher is up; each target's readiness.
 * Also the body of RELOADED (cgroup ""), for the targets a RELOAD added. */
typedef struct spd_launcher_hello {
	size_t count;     /* at most SPD_HELLO_MAX_TARGETS */
	uint32_t *ids;    /* count entries: each target's id (boot.h) */
	char **names;     /* count entries */
	char **errors;    /* count entries; NULL where the target is usable */
	/* count entries: what enforces the target's memory_limit, as ListTargets
	 * reports it: "cgroup_v2", "cgroup_v1", "rlimit_as", or "" (no limit). */
	char **memory_limit_mechanisms;
	/* The launcher's parent memory cgroup (its processes' cgroups are in
	 * it), or "" without one: the front removes it if the launcher cannot
	 * (killed). */
	char *cgroup;
} spd_launcher_hello;

#define SPD_HELLO_MAX_TARGETS 100000u

int spd_launcher_hello_encode(const spd_launcher_hello *h, spd_wbuf *out);
int spd_launcher_hello_decode(spd_launcher_hello *h, const void *body, size_t len);
void spd_launcher_hello_release(spd_launcher_hello *h);

/* HEALTH, L->F (key: the target's id): a target's zygote went down, or is
 * serving again. */
typedef struct spd_health_msg {
	char *target;
	char *why;        /* NULL: usable again; else why it is not */
} spd_health_msg;

int spd_health_msg_encode(const spd_health_msg *m, spd_wbuf *out);
int spd_health_msg_decode(spd_health_msg *m, const void *body, size_t len);
void spd_health_msg_release(spd_health_msg *m);

/* STARTED, L->F: the process's child runs. */
typedef struct spd_started_msg {
	int32_t pid;
	int64_t started_ns;  /* CLOCK_REALTIME */
} spd_started_msg;

int spd_started_msg_encode(const spd_started_msg *m, spd_wbuf *out);
int spd_started_msg_decode(spd_started_msg *m, const void *body, size_t len);

/* OUTPUT, L->F: a chunk of the child's stdout or stderr. */
enum spd_output_stream { SPD_OUTPUT_STDOUT = 1, SPD_OUTPUT_STDERR = 2 };

typedef struct spd_output_msg {
	uint32_t stream;     /* spd_output_stream; decode rejects anything else */
	uint64_t offset;     /* the stream's byte count before this chunk */
	const uint8_t *data; /* decoded: points into the body (valid while it is) */
	size_t len;
} spd_output_msg;

int spd_output_msg_encode(const spd_output_msg *m, spd_wbuf *out);
int spd_output_msg_decode(spd_output_msg *m, const void *body, size_t len);

/* DESTROY, F->L: end the process: the stop signal, SIGKILL after grace_ms. */
typedef struct spd_destroy_msg {
	int64_t grace_ms;
} spd_destroy_msg;

int spd_destroy_msg_encode(const spd_destroy_msg *m, spd_wbuf *out);
int spd_destroy_msg_decode(spd_destroy_msg *m, const void *body, size_t len);

/* IDLE, L->F (key: the target's id): how many pre-started children of that
 * version wait for a call now. */
typedef struct spd_idle_msg {
	uint32_t count;
} spd_idle_msg;

int spd_idle_msg_encode(const spd_idle_msg *m, spd_wbuf *out);
int spd_idle_msg_decode(spd_idle_msg *m, const void *body, size_t len);

#endif
