/* The descriptors spawnd serves through server reflection, indexed: files by
 * name, symbols by fully-qualified name, the services, and extensions by the
 * type they extend. Built once from a serialized FileDescriptorSet (protoc
 * --include_imports) and read-only afterwards, so any thread may query it.
 *
 * Each file is kept as the bytes protoc wrote (notes/grpc-c-core.md §10), so
 * that replies carry the original encoding.
 */
#ifndef SPAWND_RPC_REFLECTION_INDEX_H
#define SPAWND_RPC_REFLECTION_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct spd_reflection_index spd_reflection_index;

/* The set compiled into spawnd (//proto:served_fds_c). */
extern const unsigned char spd_served_fds[];
extern const size_t spd_served_fds_len;

/* Indexes the FileDescriptorSet FDS (copied). Returns 0, -EINVAL when it is not
 * a valid set (or a file names an import that is not in it), or -ENOMEM. */
int spd_reflection_index_create(const uint8_t *fds, size_t len, spd_reflection_index **out);
void spd_reflection_index_destroy(spd_reflection_index *x);

size_t spd_reflection_index_file_count(const spd_reflection_index *x);
/* File I's name and original bytes (owned by X). */
const char *spd_reflection_index_file_name(const spd_reflection_index *x, size_t i);
const uint8_t *spd_reflection_index_file_bytes(const spd_reflection_index *x, size_t i,
					      size_t *len);

/* The file named NAME ("spawnd/v1/spawnd.proto"), or -ENOENT. */
int spd_reflection_index_find_file(const spd_reflection_index *x, const char *name, size_t *file);

/* The file declaring SYMBOL: a package-qualified message, field, oneof, enum,
 * enum value, service, method (Service.Method) or extension, without a
 * leading dot. -ENOENT if none. IS_MESSAGE (may be NULL) tells whether it
 * names a message type. */
int spd_reflection_index_find_symbol(const spd_reflection_index *x, const char *symbol,
				     size_t *file, bool *is_message);

/* FILE and every file it imports, directly or not, each once, FILE first.
 * OUT must hold spd_reflection_index_file_count() entries. Returns how many. */
size_t spd_reflection_index_closure(const spd_reflection_index *x, size_t file, size_t *out);

/* Fully-qualified service names, in the order of the set. */
size_t spd_reflection_index_service_count(const spd_reflection_index *x);
const char *spd_reflection_index_service(const spd_reflection_index *x, size_t i);

/* Field numbers of the extensions of message TYPE declared in the set, and the
 * file declaring the extension of TYPE numbered NUMBER. */
size_t spd_reflection_index_extension_numbers(const spd_reflection_index *x, const char *type,
					      int32_t *out, size_t max);
int spd_reflection_index_find_extension(const spd_reflection_index *x, const char *type,
					int32_t number, size_t *file);

#endif
