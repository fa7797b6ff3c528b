/* A process's standard metrics from /proc (the Prometheus client libraries'
 * process_* collector): resident memory, open descriptors, CPU time, start
 * time. For the front (/proc/self) and for the launcher, whose pid the front
 * knows.
 *
 * Thread: any; each call opens and closes what it reads (O_CLOEXEC).
 */
#ifndef SPAWND_METRICS_PROCSTAT_H
#define SPAWND_METRICS_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

typedef struct spd_procstat {
	double resident_bytes;
	double open_fds;
	double cpu_seconds;        /* user + system */
	double start_time_seconds; /* since the Unix epoch */
	uint64_t start_ticks;      /* since boot, in clock ticks: tells a reused pid apart */
} spd_procstat;

/* Reads PID's figures (0: this process). Returns 0, or -errno (-ENOENT: no
 * such process). open_fds is -1 when /proc/PID/fd cannot be read (another
 * user's process). */
int spd_procstat_read(pid_t pid, spd_procstat *out);

#endif
