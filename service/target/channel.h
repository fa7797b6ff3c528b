/* The result/error channel between a function child and the launcher.
 *
 * A child writes records on one pipe (fd SPD_CHANNEL_FD in the child); the
 * launcher reads them continuously while the child runs, so a writer never waits
 * for long. A record is a 5-byte header {uint8 type, uint32 length (host order)}
 * followed by `length` bytes. The channel is private: both ends are built from
 * this tree, so no versioning is needed.
 */
#ifndef SPAWND_TARGET_CHANNEL_H
#define SPAWND_TARGET_CHANNEL_H

#include <stdint.h>

/* The descriptor number the channel has in a function child. */
#define SPD_CHANNEL_FD 3

/* Largest payload of one record; larger results are split over several. */
#define SPD_CHANNEL_MAX_RECORD (64u * 1024u)

/* Cap on the type, message and backtrace of a raise, in bytes each. */
#define SPD_RAISE_TYPE_MAX 256u
#define SPD_RAISE_MESSAGE_MAX 8192u
#define SPD_RAISE_BACKTRACE_MAX 16384u

enum spd_channel_type {
	SPD_CHAN_RESULT = 1,     /* payload: result bytes to append */
	SPD_CHAN_RAISE = 2,      /* payload: type NUL message NUL backtrace NUL */
	SPD_CHAN_OOM = 3,        /* payload: none */
	SPD_CHAN_TOO_LARGE = 4,  /* payload: none; the child passed max_result_bytes */
	SPD_CHAN_SETUP_FAILED = 5, /* payload: stage NUL strerror text NUL; before the call */
};

#define SPD_CHANNEL_HDR_LEN 5

#endif
