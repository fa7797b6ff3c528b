/* A target as it travels to a process that does not share the launcher's
 * memory: a zygote (the memfd on its fd 4) or a spawn worker (its call spec,
 * the same target followed by a START body). The fields are what those run a
 * target with: the rest of its config stays zero. The launcher turns its
 * prepared targets into these and back (launcher/target_spec.h), resolving
 * the function on the receiving side.
 *
 * Contract as in messages.h: encode reads and takes nothing (pointers may be
 * borrowed); decode checks every bound and, on failure, leaves nothing to
 * release; on success T owns its strings (spd_wire_target_release). */
#ifndef SPAWND_WIRE_TARGET_H
#define SPAWND_WIRE_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "service/config/config.h"
#include "service/wire/messages.h"
#include "service/wire/wire.h"

/* At most this many environment entries. */
#define SPD_WIRE_TARGET_MAX_ENV 4096u

typedef struct spd_wire_target {
	/* name, kind, builtin, library, symbol, cwd (NULL travels as "" and
	 * comes back NULL), and limits. */
	spd_target_config cfg;
	char **envp;  /* NULL-terminated */
	bool set_uid, set_gid;
	uid_t uid;
	gid_t gid;
} spd_wire_target;

/* A target's limits, as the boot data and a target carry them: the encoder
 * appends them to OUT (check OUT's err); the decoder reads them from R (check
 * R's err). */
void spd_wire_limits_encode(const spd_target_limits *l, spd_wbuf *out);
void spd_wire_limits_decode(spd_wreader *r, spd_target_limits *l);

/* Appends T to OUT. Returns OUT's error state (0 or -ENOMEM). */
int spd_wire_target_encode(const spd_wire_target *t, spd_wbuf *out);
/* Decodes a target from R, advancing it (a target is a prefix of the bodies
 * that carry one). Returns 0, -EBADMSG or -ENOMEM. */
int spd_wire_target_decode(spd_wreader *r, spd_wire_target *t);
/* Decodes a whole body that holds one target and nothing after it. */
int spd_wire_target_decode_body(const void *data, size_t len, spd_wire_target *t);
void spd_wire_target_release(spd_wire_target *t);

/* A spawn worker's call spec: T, then REQ as a START body. */
int spd_wire_call_encode(const spd_wire_target *t, const spd_start_req *req, spd_wbuf *out);
/* Decodes a whole call spec into T and REQ (both owned on success). */
int spd_wire_call_decode(const void *data, size_t len, spd_wire_target *t, spd_start_req *req);

#endif
