/* The per-field caps of a StartProcess request (SPEC §3), in one place: the RPC
 * edge refuses a request over them with INVALID_ARGUMENT (rpc/validate.c), the
 * launcher's decoder refuses a frame over them, the config loader holds exec
 * targets and target names to the same caps, and WatchProcesses' label selector
 * is held to the label cap. Plain decimal numbers, so that SPD_LIMIT_STR() can
 * put them into messages. */
#ifndef SPAWND_COMMON_LIMITS_H
#define SPAWND_COMMON_LIMITS_H

#define SPD_TARGET_NAME_MAX 256   /* bytes of a target name */
#define SPD_ARGS_MAX 1024         /* args of one request */
#define SPD_ARG_BYTES_MAX 65536   /* bytes of one arg (64 KiB) */
#define SPD_LABELS_MAX 64         /* labels of one request (and of a selector) */
#define SPD_LABEL_BYTES_MAX 256   /* bytes of a label's key, and of its value */
#define SPD_REQUEST_ID_MAX 256    /* bytes of a request_id */

/* A cap as a string literal: "longer than " SPD_LIMIT_STR(SPD_TARGET_NAME_MAX). */
#define SPD_LIMIT_STR_(x) #x
#define SPD_LIMIT_STR(x) SPD_LIMIT_STR_(x)

#endif
