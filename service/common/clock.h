/* Time in nanoseconds. Pure, any thread, async-signal-safe. */
#ifndef SPAWND_COMMON_CLOCK_H
#define SPAWND_COMMON_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC, for deadlines. */
int64_t spd_clock_mono_ns(void);

/* CLOCK_REALTIME, for timestamps reported to clients. */
int64_t spd_clock_real_ns(void);

#endif
