/* The child-side runtime behind spawnd_target.h: builds the spawnd_call a
 * function sees and runs it. Used in function children only (forked from the
 * launcher, later from zygotes and spawn workers): single-threaded, no gRPC.
 */
#ifndef SPAWND_TARGET_CALL_H
#define SPAWND_TARGET_CALL_H

#include <stddef.h>
#include <stdint.h>

#include "service/target/spawnd_target.h"

typedef struct spd_call_args {
	const char *process_id;
	const char *const *argv;    /* argc entries + NULL */
	int argc;
	const void *input;
	size_t input_len;
	const char *const *labels;  /* key, value, key, value, ..., NULL */
	uint64_t max_result_bytes;  /* 0 = none */
	uint64_t memory_limit;      /* 0 = none */
	int channel_fd;             /* the result/error channel */
} spd_call_args;

/* Runs FN with a call built from ARGS and returns the exit code the child should
 * _exit() with: 0 on success, 1 after a raise/oom/too-large, else the function's
 * non-zero return & 255 (1 if that is 0). Flushes stdio before returning.
 * While FN runs, a crash (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP,
 * SIGSYS) writes a native backtrace to stderr and then dies of that signal. */
int spd_call_run(spawnd_fn fn, const spd_call_args *args);

/* Makes the crash handler's backtrace() safe in a signal handler: call once in
 * the process that forks children (it may load libgcc_s). */
void spd_call_warm_up(void);

/* Writes one record on FD (blocking, retries EINTR). Returns 0 or -errno. */
int spd_channel_write(int fd, int type, const void *data, size_t len);

#endif
