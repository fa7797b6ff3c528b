/* The bodies of the START and EXITED frames (see wire.h), shared by the launcher
 * and the front. Decoders allocate: release with the matching _release(). */
#ifndef SPAWND_LAUNCHER_MESSAGES_H
#define SPAWND_LAUNCHER_MESSAGES_H

#include <stddef.h>
#include <stdint.h>

#include "service/launcher/wire.h"

typedef struct spd_start_req {
	char *process_id;
	char *target;
	char **argv;          /* argc entries + NULL */
	uint32_t argc;
	uint8_t *input;
	size_t input_len;
	char **labels;        /* key, value, ..., NULL: 2 * label_count entries */
	uint32_t label_count;
	int64_t grace_ms;     /* destroy grace for timeouts; the target's when < 0 */
	int64_t timeout_ms;   /* 0 = none */
} spd_start_req;

int spd_start_req_encode(const spd_start_req *req, spd_wbuf *out);
int spd_start_req_decode(spd_start_req *req, const void *body, size_t len);
void spd_start_req_release(spd_start_req *req);

/* What the launcher knows about how a process ended: raw facts, no verdict. The
 * front classifies them (registry/outcome.h). */
enum spd_exit_flag {
	SPD_EXIT_LAUNCH_FAILED = 1u << 0, /* never ran: launch_* say why */
	SPD_EXIT_SENT_STOP = 1u << 1,     /* spawnd sent the stop signal to the group */
	SPD_EXIT_SENT_KILL = 1u << 2,     /* spawnd sent SIGKILL to the group */
	SPD_EXIT_TIMED_OUT = 1u << 3,     /* the timeout expired; spawnd destroyed it */
	SPD_EXIT_RAISED = 1u << 4,        /* raise_* are set */
	SPD_EXIT_OOM = 1u << 5,           /* the function reported spawnd_oom() */
	SPD_EXIT_TOO_LARGE = 1u << 6,     /* the result passed max_result_bytes */
	SPD_EXIT_SETUP_FAILED = 1u << 7,  /* the child could not be set up: launch_* */
	SPD_EXIT_LOST = 1u << 12,         /* its zygote died while it ran */
	/* The process ran in its own memory cgroup (cgroup.h), whose oom_kill
	 * counter was read after everything in it died: without OOM_KILLED, that
	 * is evidence that the kernel OOM-killed nothing in it. */
	SPD_EXIT_CGROUP = 1u << 8,
	SPD_EXIT_OOM_KILLED = 1u << 9,    /* the kernel OOM-killed something in that cgroup */
};

typedef struct spd_exit_report {
	uint32_t flags;
	int32_t pid;            /* 0 when it never ran */
	int32_t wait_status;    /* raw wait(2) status; valid when pid != 0 */
	int64_t started_ns, ended_ns;  /* CLOCK_REALTIME */
	int64_t utime_us, stime_us;
	int64_t maxrss_bytes;
	char *launch_stage;     /* "exec", "dlopen", "setrlimit", ... */
	int32_t launch_errno;
	char *launch_message;
	char *raise_type, *raise_message, *raise_backtrace;
	uint8_t *result;
	size_t result_len;
	uint8_t *stdout_tail, *stderr_tail;  /* all output when it fit, else the last part */
	size_t stdout_len, stderr_len;
	uint8_t *stdout_head, *stderr_head;  /* the first part, when it did not fit */
	size_t stdout_head_len, stderr_head_len;
	int64_t stdout_total, stderr_total;  /* bytes the child wrote in all */
} spd_exit_report;

int spd_exit_report_encode(const spd_exit_report *r, spd_wbuf *out);
int spd_exit_report_decode(spd_exit_report *r, const void *body, size_t len);
void spd_exit_report_release(spd_exit_report *r);

#endif
