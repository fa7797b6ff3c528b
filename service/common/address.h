/* Listen addresses (SPEC §5 `listen`, SPAWND_LISTEN): what spawnd accepts and
 * why it refuses the rest, before gRPC sees them.
 *
 * Forms:
 *   HOST:PORT        HOST a name or an IPv4 address (127.0.0.1, 0.0.0.0, localhost)
 *   [IPV6]:PORT      brackets required (a pod's $(POD_IP) is written "[$(POD_IP)]:50051")
 *   unix:PATH        a filesystem socket; its directory must exist (spawnd creates none)
 *   unix-abstract:NAME
 * PORT is 0..65535 (0: any free port). Nothing here resolves or binds: see
 * spd_address_check_bindable for what only the running system can answer.
 */
#ifndef SPAWND_COMMON_ADDRESS_H
#define SPAWND_COMMON_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum spd_address_kind {
	SPD_ADDRESS_TCP = 1,
	SPD_ADDRESS_UNIX = 2,
	SPD_ADDRESS_UNIX_ABSTRACT = 3,
} spd_address_kind;

/* A parsed address: a value, no pointers. */
typedef struct spd_address {
	spd_address_kind kind;
	char host[256];    /* TCP: without brackets */
	int port;          /* TCP */
	char path[108];    /* UNIX: sun_path; UNIX_ABSTRACT: the name */
} spd_address;

/* Parses S into *A. Returns 0, or -EINVAL with a sentence in ERR (LEN bytes)
 * that says what is wrong and, where it can, what to write instead
 * ("an IPv6 address needs brackets: [fd00::2]:50051"). Thread: any. */
int spd_address_parse(const char *s, spd_address *a, char *err, size_t len);

/* What the system says about binding A, for an error message after gRPC
 * refused it: a missing or non-directory socket directory, an address in use,
 * an address that is not this machine's, a name that does not resolve, no
 * permission. Tries a bind of its own (SO_REUSEADDR, closed at once; a unix
 * path is not created). Returns 0 when it could bind (the cause is elsewhere),
 * else -errno with the reason in ERR (without the address: the caller names
 * it). Thread: any. */
int spd_address_check_bindable(const spd_address *a, char *err, size_t len);

/* Only the directory check of a unix address, done before binding: gRPC
 * unlinks and rebinds the path itself. Returns 0 (also for other kinds) or
 * -errno with the reason in ERR. */
int spd_address_check_unix_dir(const spd_address *a, char *err, size_t len);

#endif
