/* The store's holder lock: one spawnd per store file. PATH.lock is locked
 * with an open-file-description lock (F_OFD_SETLK, released by the kernel
 * when its holder dies, even by SIGKILL) and holds the holder's pid, so that
 * a second spawnd can say who has it. */
#ifndef SPAWND_STORE_LOCK_H
#define SPAWND_STORE_LOCK_H

#include <stddef.h>

/* Locks STORE_PATH.lock. Returns the lock's fd (O_CLOEXEC), or -errno with
 * ERR (ERRLEN bytes) set: -EBUSY when another process holds it ("held by
 * another spawnd (pid N)"). */
int spd__store_lock(const char *store_path, char *err, size_t errlen);

/* Releases it (closes FD); -1 is fine. */
void spd__store_unlock(int fd);

#endif
