/* W3C Trace Context's `traceparent` (https://www.w3.org/TR/trace-context/):
 * what spawnd accepts from a StartProcess's metadata (SPEC §12 "Trace
 * context"), keeps on the record, logs and hands to the child as TRACEPARENT.
 *
 *   VERSION-TRACEID-PARENTID-FLAGS   e.g.
 *   00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
 *
 * Lowercase hex only; VERSION is not "ff"; TRACEID (32 digits) and PARENTID
 * (16) are not all zeros. Version 00 is exactly 55 characters; a later
 * version may go on after them, behind a '-' (W3C: parse what is known), up
 * to SPD_TRACEPARENT_MAX bytes and with only hex digits and '-' (it goes into
 * environments and logs as it came).
 */
#ifndef SPAWND_COMMON_TRACEPARENT_H
#define SPAWND_COMMON_TRACEPARENT_H

#include <stdbool.h>
#include <stddef.h>

#define SPD_TRACEPARENT_LEN 55   /* version 00 */
#define SPD_TRACEPARENT_MAX 256  /* any version, as spawnd keeps it */

/* Whether the LEN bytes at S are a valid traceparent. Thread: any. */
bool spd_traceparent_valid(const char *s, size_t len);

#endif
