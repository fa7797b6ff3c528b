/* spawnd_target.h — the API a function target is written against (SPEC §4).
 *
 * A function target is
 *
 *     int my_target(spawnd_call *call);
 *
 * compiled into a shared library (registered as `function: {library: libx.so,
 * symbol: my_target}`) or into spawnd as a builtin. spawnd calls it in a fresh
 * child process, single-threaded, with stdin at /dev/null and stdout/stderr
 * captured. What the function does decides how the process ends:
 *
 *   return 0                      -> SUCCEEDED, result = what spawnd_result_write() wrote
 *   return spawnd_raise(...)      -> FAILED, error.kind RAISED with type and message
 *   return spawnd_oom(call)       -> FAILED, error.kind OOM (allocation failed under a limit)
 *   return N (N != 0, no raise)   -> FAILED, error.kind EXIT_CODE, exit_code N & 255 (or 1)
 *   crash                         -> FAILED, error.kind SIGNALED, with the stderr tail
 *
 * Everything here may only be called from the thread spawnd called the function
 * on, while it runs. Strings returned are valid until the function returns. This
 * header is stable: fields are reached only through these accessors.
 */
#ifndef SPAWND_TARGET_H
#define SPAWND_TARGET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spawnd_call spawnd_call;

/* The signature of every function target. */
typedef int (*spawnd_fn)(spawnd_call *call);

/* The request's args (not including any program name): argc entries, argv[argc] == NULL. */
int spawnd_argc(const spawnd_call *call);
const char *const *spawnd_argv(const spawnd_call *call);

/* The request's input bytes; *len receives the length (the pointer is never NULL). */
const void *spawnd_input(const spawnd_call *call, size_t *len);

/* The process id spawnd gave this run (a UUIDv7 string). */
const char *spawnd_process_id(const spawnd_call *call);

/* The value of label KEY, or NULL. */
const char *spawnd_label(const spawnd_call *call, const char *key);

/* The memory limit in bytes that applies to this process, 0 = none. */
uint64_t spawnd_memory_limit(const spawnd_call *call);

/* Appends LEN bytes to the result. May be called repeatedly. Returns 0, or
 * -EFBIG once the result would pass the target's max_result_bytes (nothing of
 * that call is kept, and the process will end FAILED/RESULT_TOO_LARGE whatever the
 * function returns), or another negative errno if spawnd is gone. Never blocks
 * for long: spawnd drains the result channel while the function runs. */
int spawnd_result_write(spawnd_call *call, const void *data, size_t len);

/* Reports an error of TYPE (e.g. "ValueError") with a printf-style message, and
 * returns a non-zero value meant to be returned: `return spawnd_raise(...)`.
 * The first raise wins. Type and message are made valid UTF-8 and may be cut. */
int spawnd_raise(spawnd_call *call, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like spawnd_raise, with a backtrace text the caller produced. */
int spawnd_raise_with_backtrace(spawnd_call *call, const char *type,
				const char *backtrace, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Reports a confirmed out-of-memory: an allocation failed under this process's
 * memory limit. Returns a non-zero value meant to be returned. */
int spawnd_oom(spawnd_call *call);

#ifdef __cplusplus
}
#endif

#endif
