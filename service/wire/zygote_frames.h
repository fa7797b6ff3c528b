/* The bodies of the launcher <-> zygote frames (wire.h, SPD_ZYGOTE_*): one
 * struct per frame, under the contract of messages.h (encode reads and takes
 * nothing; decode takes a whole body, checks every bound, and leaves nothing
 * to release on failure). Shared by the launcher (zygotes.c) and the zygote
 * (worker/zygote.c); nothing else packs these bodies.
 *
 *   SPAWN    L->Z  a START body (spd_start_req, messages.h), and the fds
 *                  stdin, stdout, stderr, channel[, cgroup.procs]
 *   SIGNAL   L->Z  spd_zygote_signal_msg
 *   STARTED  Z->L  spd_zygote_started_msg
 *   EXITED   Z->L  spd_zygote_exited_msg
 *   READY    Z->L  an empty body: its target is loaded and it takes SPAWNs
 *
 * None of these decoders allocates: there is no _release().
 */
#ifndef SPAWND_WIRE_ZYGOTE_FRAMES_H
#define SPAWND_WIRE_ZYGOTE_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#include "service/wire/wire.h"

/* SIGNAL: send SIG to the child's group. */
typedef struct spd_zygote_signal_msg {
	int32_t sig;
} spd_zygote_signal_msg;

int spd_zygote_signal_msg_encode(const spd_zygote_signal_msg *m, spd_wbuf *out);
int spd_zygote_signal_msg_decode(spd_zygote_signal_msg *m, const void *body, size_t len);

/* STARTED: the SPAWN's child was forked. */
typedef struct spd_zygote_started_msg {
	int32_t pid_or_err;  /* its pid (> 0), or -errno when it could not be forked */
} spd_zygote_started_msg;

int spd_zygote_started_msg_encode(const spd_zygote_started_msg *m, spd_wbuf *out);
int spd_zygote_started_msg_decode(spd_zygote_started_msg *m, const void *body, size_t len);

/* EXITED: the zygote reaped the child. */
typedef struct spd_zygote_exited_msg {
	int32_t wait_status;   /* raw wait(2) status */
	int64_t utime_us, stime_us;
	int64_t maxrss_bytes;
	/* SPD_EXIT_SENT_STOP / SPD_EXIT_SENT_KILL (messages.h): the zygote's
	 * signals that reached the child alive. Decode keeps only those bits. */
	uint32_t sent;
} spd_zygote_exited_msg;

int spd_zygote_exited_msg_encode(const spd_zygote_exited_msg *m, spd_wbuf *out);
int spd_zygote_exited_msg_decode(spd_zygote_exited_msg *m, const void *body, size_t len);

#endif
