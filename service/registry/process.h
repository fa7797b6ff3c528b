/* A process record (SPEC §3 `Process`) and its state table (SPEC §2).
 *
 * Records are values owned by the registry and read under its lock. The only
 * place a state changes is spd_state_next(): one table, state x event.
 */
#ifndef SPAWND_REGISTRY_PROCESS_H
#define SPAWND_REGISTRY_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/common/id.h"
#include "service/config/config.h"

/* Values match spawnd.v1.State. */
typedef enum spd_state {
	SPD_STATE_PENDING = 1,
	SPD_STATE_RUNNING = 2,
	SPD_STATE_SUCCEEDED = 3,
	SPD_STATE_FAILED = 4,
	SPD_STATE_CANCELED = 5,
} spd_state;

#define SPD_STATE_COUNT 6

/* Values match spawnd.v1.ProcessError.Kind. */
typedef enum spd_error_kind {
	SPD_ERR_NONE = 0,
	SPD_ERR_RAISED = 1,
	SPD_ERR_EXIT_CODE = 2,
	SPD_ERR_SIGNALED = 3,
	SPD_ERR_OOM = 4,
	SPD_ERR_TIMEOUT = 5,
	SPD_ERR_LAUNCH = 6,
	SPD_ERR_RESULT_TOO_LARGE = 7,
	SPD_ERR_LOST = 8,
} spd_error_kind;

/* What happens to a record. */
typedef enum spd_event {
	SPD_EV_STARTED = 0,   /* the launcher forked it */
	SPD_EV_SUCCEEDED,     /* it ended, classified (outcome.h) */
	SPD_EV_FAILED,
	SPD_EV_CANCELED,
	SPD_EV_DESTROY,       /* Destroy was called */
	SPD_EV_LOST,          /* the launcher died */
	SPD_EV_COUNT
} spd_event;

/* The state after EVENT in STATE; equal to STATE when the event changes no state
 * (a Destroy of a running process: flags only), 0 when the event cannot happen
 * in that state (a bug elsewhere: logged and ignored). */
spd_state spd_state_next(spd_state state, spd_event event);

bool spd_state_terminal(spd_state state);

/* "PENDING", ... */
const char *spd_state_name(spd_state state);

/* "RAISED", "EXIT_CODE", ... as in spawnd.v1.ProcessError.Kind without its
 * prefix; "" for SPD_ERR_NONE (metrics label values). */
const char *spd_error_kind_name(spd_error_kind kind);

typedef struct spd_process_error {
	spd_error_kind kind;
	char *type;         /* valid UTF-8, never NULL once set */
	char *message;
	char *backtrace;
	int32_t exit_code;
	int32_t signal;
	bool core_dumped;
	bool oom_suspected;
} spd_process_error;

typedef struct spd_process {
	uint64_t key;                 /* serial number, also the launcher's key */
	char id[SPD_ID_LEN + 1];
	char *target;
	char *caller;                 /* who started it (registry.h spd_start_params); "" none */
	char *traceparent;            /* W3C trace context of its request; NULL: none */
	char **argv;                  /* argc + NULL */
	uint32_t argc;
	char **labels;                /* key, value, ..., NULL */
	uint32_t label_count;
	spd_start_method start_method;

	spd_state state;
	bool destroyed, canceled, ran, threw;
	spd_process_error error;      /* kind SPD_ERR_NONE: no error */
	uint8_t *result;
	size_t result_len;
	int32_t pid, exit_code, signal;
	int64_t created_ns, started_ns, ended_ns;  /* CLOCK_REALTIME; 0 = not yet */
	int64_t utime_us, stime_us, maxrss_bytes;
	uint8_t *stdout_tail, *stderr_tail;  /* all output that fit, or its last part */
	size_t stdout_len, stderr_len;
	uint8_t *stdout_head, *stderr_head;  /* its first part, when it did not fit */
	size_t stdout_head_len, stderr_head_len;
	int64_t stdout_bytes, stderr_bytes;  /* written in all */
	bool output_truncated;

	uint64_t seq;                 /* number of the last event (PENDING is 1) */
	int64_t grace_ms;             /* effective destroy grace for this process */
	int64_t timeout_ms;           /* effective timeout, 0 = none */
} spd_process;

/* Frees everything a record owns (not the record itself, which is embedded). */
void spd_process_release(spd_process *p);

#endif
