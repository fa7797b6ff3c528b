/* String vectors: NULL-terminated arrays of malloc()ed strings, the shape of argv
 * and envp. A vector owns its strings and spd_strv_free() frees both; a vector
 * built element by element (calloc(n + 1) and then each slot) may be freed while
 * only partly filled, since the first NULL slot ends it. */
#ifndef SPAWND_COMMON_STRV_H
#define SPAWND_COMMON_STRV_H

#include <stddef.h>

/* A new vector holding copies of the first N strings of V (V may be NULL when N
 * is 0). Returns NULL when out of memory, leaving nothing allocated. */
char **spd_strv_dup(const char *const *v, size_t n);

/* Frees every string of V up to its NULL and then V; NULL is fine. */
void spd_strv_free(char **v);

/* The number of strings before V's NULL; 0 for NULL. */
size_t spd_strv_count(const char *const *v);

#endif
