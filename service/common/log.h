/* Structured logging: one line per record on stderr, JSON (default; for log
 * collectors) or text. Fields are typed varargs, ended by SPD_LOG_END:
 *
 *   spd_log(SPD_LOG_INFO, "process started",
 *           SPD_LOG_STR("process_id", id), SPD_LOG_INT("pid", pid), SPD_LOG_END);
 *
 * Thread-safe: each record is formatted into a buffer and written with one
 * write(2). Async-signal-safe it is not: never call it in a forked child.
 */
#ifndef SPAWND_COMMON_LOG_H
#define SPAWND_COMMON_LOG_H

#include <stdint.h>

enum spd_log_level {
	SPD_LOG_ERROR = 0,
	SPD_LOG_WARN = 1,
	SPD_LOG_INFO = 2,
	SPD_LOG_DEBUG = 3,
};

/* A string field whose value is NULL is left out of the record. */
#define SPD_LOG_STR(key, value) 's', (const char *)(key), (const char *)(value)
#define SPD_LOG_INT(key, value) 'i', (const char *)(key), (int64_t)(value)
#define SPD_LOG_END 0

/* Sets the process-wide level and format (json != 0: JSON lines) and the "proc"
 * field every record carries ("front", "launcher"). Call before threads start. */
void spd_log_setup(int level, int json, const char *proc);

int spd_log_enabled(int level);

void spd_log(int level, const char *msg, ...);

#endif
