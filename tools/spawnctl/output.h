/* spawnctl's output: any protobuf-c message as proto3-mapping JSON or as
 * aligned "key: value" lines, both driven by the message descriptors, and
 * small tables for listings.
 *
 * Every writer returns 0, -ENOMEM, or -EIO when the stream reports an error.
 * Nothing here keeps a reference to the messages it prints.
 */
#ifndef SPAWNCTL_OUTPUT_H
#define SPAWNCTL_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"

/* Writes MSG to F as one JSON object on one line, in the proto3 JSON mapping
 * style: lowerCamelCase names, fields at their default value omitted, enums by
 * name, 64-bit integers as strings, bytes in base64, maps as objects,
 * Timestamp as RFC 3339 UTC and Duration as "1.5s". */
int spc_output_json(FILE *f, const ProtobufCMessage *msg);

/* Writes MSG to F as "key: value" lines with the values aligned. Nested
 * messages are flattened ("error.type", "targets[0].name"), fields at their
 * default value are omitted, enums lose their type prefix (RUNNING), bytes
 * are shown quoted and cut after a few hundred bytes, repeated scalars are
 * joined by spaces and maps shown as k=v. */
int spc_output_fields(FILE *f, const ProtobufCMessage *msg);

/* The name of VALUE in D without its type prefix (STATE_RUNNING -> "RUNNING";
 * the prefix is the enum's short name in UPPER_SNAKE case), the full name if
 * it has no such prefix, or NULL for a value D does not know. The string is
 * static. */
const char *spc_output_enum_name(const ProtobufCEnumDescriptor *d, int value);

/* Like spc_output_enum_name, but "?" for an unknown value. */
const char *spc_output_enum_label(const ProtobufCEnumDescriptor *d, int value);

/* Writes TS as RFC 3339 UTC ("2024-05-01T12:00:00.250Z"). */
void spc_output_timestamp(FILE *f, const Google__Protobuf__Timestamp *ts);

/* Writes D as seconds with a fraction of 0, 3, 6 or 9 digits ("1.500s"). */
void spc_output_duration(FILE *f, const Google__Protobuf__Duration *d);

/* Writes the LEN bytes at DATA double-quoted with C escapes for anything that
 * is not printable ASCII; after MAX bytes (0: no limit) it stops and appends
 * "... (LEN bytes)". */
void spc_output_quoted(FILE *f, const uint8_t *data, size_t len, size_t max);

/* A table printed with aligned columns (two spaces apart, the last column not
 * padded). Cells are copied. */
typedef struct spc_output_table spc_output_table;

/* Creates a table of NCOLS columns whose header row is HEADER. On success
 * *OUT owns it (spc_output_table_destroy). Returns 0 or -ENOMEM. */
int spc_output_table_create(size_t ncols, const char *const *header,
			    spc_output_table **out);

/* Appends a row of NCOLS cells (a NULL cell prints as empty). 0 or -ENOMEM. */
int spc_output_table_add(spc_output_table *t, const char *const *cells);

/* Writes the header and the rows to F. 0 or -EIO. */
int spc_output_table_print(const spc_output_table *t, FILE *f);

/* Frees T and its cells. NULL is a no-op. */
void spc_output_table_destroy(spc_output_table *t);

#endif
