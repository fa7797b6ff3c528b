/* The front's end of the launcher channel: sends START/DESTROY frames for the
 * registry, and a reader thread that feeds STARTED/EXITED frames back into it.
 *
 * When the launcher dies (EOF or a broken frame while not closing), the reader
 * reaps it, SIGKILLs and reaps everything that was reparented to the front
 * (the front is a child subreaper), ends every live process LOST and calls
 * on_lost. This is the one place the front signals, and the only one that
 * reaps the launcher; main.c's reaper thread reaps (never signals) every
 * other child reparented to the front, at all times.
 */
#ifndef SPAWND_FRONT_LINK_H
#define SPAWND_FRONT_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "service/registry/registry.h"
#include "service/wire/messages.h"

typedef struct spd_link spd_link;

/* Takes ownership of FD (the socket) for the launcher PID. */
spd_link *spd_link_create(int fd, pid_t pid);

/* Waits up to TIMEOUT_MS for the launcher's HELLO. Returns 0 and fills HELLO
 * (release with spd_launcher_hello_release), or -ETIMEDOUT / -EPIPE / -EBADMSG. */
int spd_link_wait_hello(spd_link *l, int timeout_ms, spd_launcher_hello *hello);

/* Frames the launcher has not taken yet wait in the link's out-queue, flushed
 * by a writer thread: a stalled launcher (stopped, or stuck) never blocks a
 * sender, which holds the registry lock. Past this many queued bytes the link
 * reports itself congested (spd_registry_ops.congested): new StartProcess calls
 * are refused with UNAVAILABLE and queued processes wait, so the queue grows
 * past it by at most what is already being dispatched. DESTROY frames are
 * always queued: the registry sends at most one per process unless a Destroy
 * shortens the grace period. 64 MiB: many START frames at the largest inputs. */
#define SPD_LINK_QUEUE_MAX_BYTES (64u * 1024u * 1024u)

/* The ops the registry sends through (ctx = the link). They never block. */
spd_registry_ops spd_link_ops(spd_link *l);

/* Bytes of frames waiting for the launcher now. */
size_t spd_link_queued_bytes(spd_link *l);

/* Starts the reader thread. ON_LOST runs on it, once, if the launcher dies. */
int spd_link_start(spd_link *l, spd_registry *reg, void (*on_lost)(void *ctx), void *ctx);

/* Planned stop: closes the socket (the launcher kills what is left and exits),
 * joins the reader, reaps the launcher. Returns its wait status. Frees L. */
int spd_link_close(spd_link *l);

#endif
