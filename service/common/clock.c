#include "service/common/clock.h"

#include <time.h>

static int64_t now(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t spd_clock_mono_ns(void)
{
	return now(CLOCK_MONOTONIC);
}

int64_t spd_clock_real_ns(void)
{
	return now(CLOCK_REALTIME);
}
