#include "service/common/fdlimit.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "service/common/log.h"

int spd_fd_limit_raise(const char *who)
{
	struct rlimit rl;
	rlim_t was;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur >= rl.rlim_max)
		return 0;
	was = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		int e = errno;
		spd_log(SPD_LOG_WARN, "cannot raise the open files limit", SPD_LOG_STR("who", who),
			SPD_LOG_INT("soft", (int64_t)was), SPD_LOG_INT("hard", (int64_t)rl.rlim_max),
			SPD_LOG_STR("error", strerror(e)), SPD_LOG_END);
		return -e;
	}
	return 0;
}
