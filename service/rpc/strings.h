/* The strings of a request, checked before any handler trusts them (SPEC §12
 * "Strings from the network"): every `string` field, at any depth, must be
 * valid UTF-8 with no NUL byte, and no map may carry a key twice.
 *
 * Why the wire bytes: protobuf-c unpacks a string into a NUL-terminated char *
 * and keeps no length, so "echo\0junk" unpacks as "echo" and a NUL is invisible
 * afterwards; only the encoded request still shows it. A map becomes a repeated
 * entry message, so a key sent twice survives the unpack as two entries.
 *
 * Kept apart from the handlers, with no gRPC call state, so that the requests
 * fuzzer (tests/fuzz/requests_fuzz.c) and tests/unit/strings_test.c run it on
 * any bytes. Pure; any thread. */
#ifndef SPAWND_RPC_STRINGS_H
#define SPAWND_RPC_STRINGS_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Checks the request M, which protobuf_c_message_unpack() made of the LEN bytes
 * at DATA (M may also be NULL, to check bytes alone: then no map is checked).
 *
 * Returns NULL when all is well. Else a message naming the field, written into
 * BUF (BUFLEN bytes; 256 hold any of them):
 *   "target: not valid UTF-8", "args[2]: contains a NUL byte",
 *   "labels: a key is not valid UTF-8", "label_selector: key 'k' sent twice",
 *   "outer.inner: ..." for a string inside a sub-message (none of today's).
 * Repeated fields are indexed by their order on the wire; map entries are named
 * by their map field (a key or a value). Bytes that are not a well-formed
 * message (which unpack would have refused) get "request: malformed message".
 * Fields the descriptor does not know are skipped: unpack keeps them apart and
 * no handler reads them. Allocates (map keys) only when M has a map. */
const char *spd_strings_check(const ProtobufCMessageDescriptor *d, const ProtobufCMessage *m,
			      const uint8_t *data, size_t len, char *buf, size_t buflen);

/* How many bytes of the UTF-8 string S to print so that at most MAX are and
 * no character is cut: for "%.*s" in a status message, which must stay UTF-8
 * too. Pure. */
int spd_strings_cut(const char *s, int max);

#endif
