/* The store's holder lock: see lock.h. */
#include "service/store/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int spd__store_lock(const char *store_path, char *err, size_t errlen)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	char path[PATH_MAX], buf[32];
	int fd = -1, rc;
	ssize_t n;

	if (snprintf(path, sizeof path, "%s.lock", store_path) >= (int)sizeof path) {
		snprintf(err, errlen, "store %s: path too long", store_path);
		return -ENAMETOOLONG;
	}
	/* 0600, and made so if an older spawnd left it 0644: anyone who can
	 * open it can hold a read lock on it, and keep every spawnd from
	 * starting on the store. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0)
		(void)fchmod(fd, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "store %s: cannot open its lock file %s: %s", store_path, path,
			 strerror(-rc));
		return rc;
	}
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		rc = -errno;
		if (rc == -EAGAIN || rc == -EACCES) {
			n = pread(fd, buf, sizeof buf - 1, 0);
			buf[n > 0 ? n : 0] = '\0';
			buf[strcspn(buf, "\n")] = '\0';
			snprintf(err, errlen,
				 "store %s: held by another spawnd (pid %s, lock %s); one spawnd per store",
				 store_path, buf[0] != '\0' ? buf : "unknown", path);
			rc = -EBUSY;
		} else {
			snprintf(err, errlen, "store %s: cannot lock %s: %s", store_path, path,
				 strerror(-rc));
		}
		close(fd);
		return rc;
	}
	/* Ours now: say who holds it. */
	n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		rc = errno != 0 ? -errno : -EIO;
		snprintf(err, errlen, "store %s: cannot write its lock file %s: %s", store_path, path,
			 strerror(-rc));
		close(fd);
		return rc;
	}
	return fd;
}

void spd__store_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}
