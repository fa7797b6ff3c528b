/* The open-files limit of this process. Both spawnd processes raise their
 * soft RLIMIT_NOFILE to the hard one at start: the front holds a descriptor per
 * connection, the launcher several per running process. */
#ifndef SPAWND_COMMON_FDLIMIT_H
#define SPAWND_COMMON_FDLIMIT_H

/* Raises the soft RLIMIT_NOFILE to the hard one; logs a failure as a warning
 * naming WHO ("front", "launcher"). Returns 0 or -errno. */
int spd_fd_limit_raise(const char *who);

#endif
