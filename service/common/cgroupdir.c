#include "service/common/cgroupdir.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int spd_cgroup_dir_remove(const char *dir)
{
	char path[PATH_MAX + 300];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strncmp(de->d_name, "p-", 2) != 0)
				continue;
			if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) < (int)sizeof path)
				rmdir(path);
		}
		closedir(d);
	}
	return rmdir(dir) == 0 || errno == ENOENT ? 0 : -errno;
}
