/* Signal numbers <-> names ("SIGSEGV"). Pure functions, any thread. */
#ifndef SPAWND_COMMON_SIGNAME_H
#define SPAWND_COMMON_SIGNAME_H

/* "SIGSEGV" for 11; NULL for a number with no standard name. Static storage. */
const char *spd_signal_name(int sig);

/* "SIGTERM", "TERM" or "15" -> 15; -EINVAL for anything else. */
int spd_signal_parse(const char *s);

#endif
