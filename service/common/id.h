/* Process ids: UUIDv7 strings (time-ordered, 74 random bits), unique across
 * restarts. Thread-safe. */
#ifndef SPAWND_COMMON_ID_H
#define SPAWND_COMMON_ID_H

#define SPD_ID_LEN 36

/* Writes a new id and its NUL into OUT. */
void spd_id_new(char out[SPD_ID_LEN + 1]);

#endif
