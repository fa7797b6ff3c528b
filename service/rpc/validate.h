/* Field validation of the requests the gRPC edge accepts (SPEC §3 caps). Kept
 * apart from the handlers, with no gRPC call state, so that the fuzzers
 * (tests/fuzz/) can run it on every unpacked request. */
#ifndef SPAWND_RPC_VALIDATE_H
#define SPAWND_RPC_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "spawnd/v1/spawnd.pb-c.h"

/* Checks REQ against the per-field caps. Returns NULL when it is acceptable,
 * with *timeout_ms and *grace_ms set (-1 when absent); else a message naming
 * the field, static or written into BUF (LEN bytes). Thread: any; no state. */
const char *spd_validate_start_request(const Spawnd__V1__StartProcessRequest *req, char *buf,
				       size_t len, int64_t *timeout_ms, int64_t *grace_ms);

#endif
