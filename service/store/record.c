/* A process record as one row of `processes` (schema.c), and back.
 *
 * One table of columns, in order, drives the upsert, its bindings and the
 * SELECT of a load, so that they cannot disagree. String vectors (args,
 * labels) are stored as their strings, each followed by a NUL: strings from
 * the network hold no NUL (SPEC §12 "Strings from the network").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/common/strv.h"
#include "service/store/store_impl.h"

enum col {
	C_ID, C_TARGET, C_CALLER, C_ARGS, C_LABELS, C_REQUEST_ID, C_FINGERPRINT,
	C_START_METHOD, C_STATE, C_DESTROYED, C_CANCELED, C_RAN, C_THREW,
	C_ERROR_KIND, C_ERROR_TYPE, C_ERROR_MESSAGE, C_ERROR_BACKTRACE, C_ERROR_EXIT_CODE,
	C_ERROR_SIGNAL, C_ERROR_CORE_DUMPED, C_ERROR_OOM_SUSPECTED,
	C_PID, C_EXIT_CODE, C_SIGNAL, C_RESULT,
	C_STDOUT_HEAD, C_STDOUT_TAIL, C_STDERR_HEAD, C_STDERR_TAIL,
	C_STDOUT_BYTES, C_STDERR_BYTES, C_OUTPUT_TRUNCATED,
	C_USER_CPU_US, C_SYSTEM_CPU_US, C_MAX_RSS_BYTES,
	C_CREATED_NS, C_STARTED_NS, C_ENDED_NS, C_SEQ, C_GRACE_MS, C_TIMEOUT_MS,
	C_COUNT
};

/* Names as in schema.c's CREATE TABLE, in enum col's order. */
static const char *const columns[C_COUNT] = {
	"id", "target", "caller", "args", "labels", "request_id", "fingerprint",
	"start_method", "state", "destroyed", "canceled", "ran", "threw",
	"error_kind", "error_type", "error_message", "error_backtrace", "error_exit_code",
	"error_signal", "error_core_dumped", "error_oom_suspected",
	"pid", "exit_code", "signal", "result",
	"stdout_head", "stdout_tail", "stderr_head", "stderr_tail",
	"stdout_bytes", "stderr_bytes", "output_truncated",
	"user_cpu_us", "system_cpu_us", "max_rss_bytes",
	"created_ns", "started_ns", "ended_ns", "seq", "grace_ms", "timeout_ms",
};

const char spd__store_select_sql[] =
	"SELECT id, target, caller, args, labels, request_id, fingerprint, "
	"start_method, state, destroyed, canceled, ran, threw, "
	"error_kind, error_type, error_message, error_backtrace, error_exit_code, "
	"error_signal, error_core_dumped, error_oom_suspected, "
	"pid, exit_code, signal, result, "
	"stdout_head, stdout_tail, stderr_head, stderr_tail, "
	"stdout_bytes, stderr_bytes, output_truncated, "
	"user_cpu_us, system_cpu_us, max_rss_bytes, "
	"created_ns, started_ns, ended_ns, seq, grace_ms, timeout_ms "
	"FROM processes ORDER BY rowid";

int spd__store_prepare(spd_store *s)
{
	char sql[4096];
	size_t o = 0;
	int rc;

	o += (size_t)snprintf(sql + o, sizeof sql - o, "INSERT INTO processes(");
	for (int i = 0; i < C_COUNT; i++)
		o += (size_t)snprintf(sql + o, sizeof sql - o, "%s%s", i ? "," : "", columns[i]);
	o += (size_t)snprintf(sql + o, sizeof sql - o, ") VALUES(");
	for (int i = 0; i < C_COUNT; i++)
		o += (size_t)snprintf(sql + o, sizeof sql - o, "%s?%d", i ? "," : "", i + 1);
	/* An upsert, not INSERT OR REPLACE: the row keeps its rowid, which is
	 * the records' creation order. */
	o += (size_t)snprintf(sql + o, sizeof sql - o, ") ON CONFLICT(id) DO UPDATE SET ");
	for (int i = 1; i < C_COUNT; i++)
		o += (size_t)snprintf(sql + o, sizeof sql - o, "%s%s=excluded.%s", i > 1 ? "," : "",
				      columns[i], columns[i]);
	if (o >= sizeof sql)
		return SQLITE_TOOBIG;
	rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->upsert, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(s->db, "DELETE FROM processes WHERE id = ?1", -1,
					SQLITE_PREPARE_PERSISTENT, &s->remove, NULL);
	return rc;
}

/* ---- binding ---------------------------------------------------------------- */

/* The strings of V (N of them), each with its NUL, in one malloc()ed buffer. */
static char *strv_pack(char *const *v, size_t n, size_t *len)
{
	size_t total = 0, o = 0;
	char *buf;

	for (size_t i = 0; i < n; i++)
		total += strlen(v[i]) + 1;
	buf = malloc(total ? total : 1);
	if (buf == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(v[i]) + 1;
		memcpy(buf + o, v[i], l);
		o += l;
	}
	*len = total;
	return buf;
}

static int bind_text(sqlite3_stmt *st, int col, const char *s)
{
	if (s == NULL)
		return sqlite3_bind_null(st, col + 1);
	return sqlite3_bind_text(st, col + 1, s, -1, SQLITE_STATIC);
}

static int bind_blob(sqlite3_stmt *st, int col, const void *data, size_t len)
{
	/* A zero-length blob, not NULL: "" and "none" read back alike anyway. */
	return sqlite3_bind_blob64(st, col + 1, data != NULL ? data : "", data != NULL ? len : 0,
				   SQLITE_STATIC);
}

static int bind_int(sqlite3_stmt *st, int col, int64_t v)
{
	return sqlite3_bind_int64(st, col + 1, v);
}

int spd__store_bind(sqlite3_stmt *st, const spd__store_item *item)
{
	const spd_process *p = &item->p;
	char *args = NULL, *labels = NULL;
	size_t args_len = 0, labels_len = 0;
	int rc = SQLITE_OK;

	args = strv_pack(p->argv, p->argc, &args_len);
	labels = strv_pack(p->labels, 2 * (size_t)p->label_count, &labels_len);
	if (args == NULL || labels == NULL) {
		rc = SQLITE_NOMEM;
		goto out;
	}
	/* Strings and blobs of ITEM are bound SQLITE_STATIC: ITEM outlives the
	 * step. The packed vectors are copied (freed below). */
	rc |= bind_text(st, C_ID, item->id);
	rc |= bind_text(st, C_TARGET, p->target);
	rc |= bind_text(st, C_CALLER, p->caller != NULL ? p->caller : "");
	rc |= sqlite3_bind_blob64(st, C_ARGS + 1, args, args_len, SQLITE_TRANSIENT);
	rc |= sqlite3_bind_blob64(st, C_LABELS + 1, labels, labels_len, SQLITE_TRANSIENT);
	rc |= bind_text(st, C_REQUEST_ID, item->request_id);
	if (item->has_fingerprint)
		rc |= bind_blob(st, C_FINGERPRINT, item->fingerprint, sizeof item->fingerprint);
	else
		rc |= sqlite3_bind_null(st, C_FINGERPRINT + 1);
	rc |= bind_int(st, C_START_METHOD, p->start_method);
	rc |= bind_int(st, C_STATE, p->state);
	rc |= bind_int(st, C_DESTROYED, p->destroyed);
	rc |= bind_int(st, C_CANCELED, p->canceled);
	rc |= bind_int(st, C_RAN, p->ran);
	rc |= bind_int(st, C_THREW, p->threw);
	rc |= bind_int(st, C_ERROR_KIND, p->error.kind);
	rc |= bind_text(st, C_ERROR_TYPE, p->error.type);
	rc |= bind_text(st, C_ERROR_MESSAGE, p->error.message);
	rc |= bind_text(st, C_ERROR_BACKTRACE, p->error.backtrace);
	rc |= bind_int(st, C_ERROR_EXIT_CODE, p->error.exit_code);
	rc |= bind_int(st, C_ERROR_SIGNAL, p->error.signal);
	rc |= bind_int(st, C_ERROR_CORE_DUMPED, p->error.core_dumped);
	rc |= bind_int(st, C_ERROR_OOM_SUSPECTED, p->error.oom_suspected);
	rc |= bind_int(st, C_PID, p->pid);
	rc |= bind_int(st, C_EXIT_CODE, p->exit_code);
	rc |= bind_int(st, C_SIGNAL, p->signal);
	rc |= bind_blob(st, C_RESULT, p->result, p->result_len);
	rc |= bind_blob(st, C_STDOUT_HEAD, p->stdout_head, p->stdout_head_len);
	rc |= bind_blob(st, C_STDOUT_TAIL, p->stdout_tail, p->stdout_len);
	rc |= bind_blob(st, C_STDERR_HEAD, p->stderr_head, p->stderr_head_len);
	rc |= bind_blob(st, C_STDERR_TAIL, p->stderr_tail, p->stderr_len);
	rc |= bind_int(st, C_STDOUT_BYTES, p->stdout_bytes);
	rc |= bind_int(st, C_STDERR_BYTES, p->stderr_bytes);
	rc |= bind_int(st, C_OUTPUT_TRUNCATED, p->output_truncated);
	rc |= bind_int(st, C_USER_CPU_US, p->utime_us);
	rc |= bind_int(st, C_SYSTEM_CPU_US, p->stime_us);
	rc |= bind_int(st, C_MAX_RSS_BYTES, p->maxrss_bytes);
	rc |= bind_int(st, C_CREATED_NS, p->created_ns);
	rc |= bind_int(st, C_STARTED_NS, p->started_ns);
	rc |= bind_int(st, C_ENDED_NS, p->ended_ns);
	rc |= bind_int(st, C_SEQ, (int64_t)p->seq);
	rc |= bind_int(st, C_GRACE_MS, p->grace_ms);
	rc |= bind_int(st, C_TIMEOUT_MS, p->timeout_ms);
	if (rc != SQLITE_OK)
		rc = SQLITE_ERROR;
out:
	free(args);
	free(labels);
	return rc;
}

/* ---- reading ------------------------------------------------------------------ */

static char *col_text(sqlite3_stmt *st, int col, bool *oom)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	char *s;

	if (t == NULL)
		return NULL;
	s = strdup((const char *)t);
	if (s == NULL)
		*oom = true;
	return s;
}

static uint8_t *col_blob(sqlite3_stmt *st, int col, size_t *len, bool *oom)
{
	const void *b = sqlite3_column_blob(st, col);
	int n = sqlite3_column_bytes(st, col);
	uint8_t *out;

	*len = 0;
	if (b == NULL || n <= 0)
		return NULL;
	out = malloc((size_t)n);
	if (out == NULL) {
		*oom = true;
		return NULL;
	}
	memcpy(out, b, (size_t)n);
	*len = (size_t)n;
	return out;
}

/* A packed string vector back: *N strings, or NULL (-EILSEQ: not packed, or
 * -ENOMEM: *oom). */
static char **col_strv(sqlite3_stmt *st, int col, size_t *n, bool *oom, bool *bad)
{
	const char *b = sqlite3_column_blob(st, col);
	int len = sqlite3_column_bytes(st, col);
	size_t count = 0;
	char **v;

	*n = 0;
	if (len > 0 && (b == NULL || b[len - 1] != '\0')) {
		*bad = true;
		return NULL;
	}
	for (int i = 0; i < len; i++)
		count += b[i] == '\0';
	v = calloc(count + 1, sizeof *v);
	if (v == NULL) {
		*oom = true;
		return NULL;
	}
	for (size_t i = 0, o = 0; i < count; i++) {
		v[i] = strdup(b + o);
		if (v[i] == NULL) {
			*oom = true;
			spd_strv_free(v);
			return NULL;
		}
		o += strlen(b + o) + 1;
	}
	*n = count;
	return v;
}

static int64_t col_int(sqlite3_stmt *st, int col)
{
	return sqlite3_column_int64(st, col);
}

int spd__store_read_row(sqlite3_stmt *st, spd_process *p, const char **request_id,
			const uint8_t **fingerprint)
{
	const unsigned char *id = sqlite3_column_text(st, C_ID);
	bool oom = false, bad = false;
	size_t argc = 0, nlabels = 0;
	int64_t state = col_int(st, C_STATE);

	memset(p, 0, sizeof *p);
	if (id == NULL || strlen((const char *)id) != SPD_ID_LEN || state < SPD_STATE_PENDING ||
	    state > SPD_STATE_CANCELED)
		return -EILSEQ;
	memcpy(p->id, id, SPD_ID_LEN + 1);
	p->target = col_text(st, C_TARGET, &oom);
	p->caller = col_text(st, C_CALLER, &oom);
	p->argv = col_strv(st, C_ARGS, &argc, &oom, &bad);
	p->argc = (uint32_t)argc;
	p->labels = col_strv(st, C_LABELS, &nlabels, &oom, &bad);
	p->label_count = (uint32_t)(nlabels / 2);
	if (nlabels % 2 != 0 || p->target == NULL || p->caller == NULL)
		bad = true;
	*request_id = (const char *)sqlite3_column_text(st, C_REQUEST_ID);
	*fingerprint = sqlite3_column_bytes(st, C_FINGERPRINT) == SPD_FINGERPRINT_LEN
			       ? sqlite3_column_blob(st, C_FINGERPRINT) : NULL;
	p->start_method = (spd_start_method)col_int(st, C_START_METHOD);
	p->state = (spd_state)state;
	p->destroyed = col_int(st, C_DESTROYED) != 0;
	p->canceled = col_int(st, C_CANCELED) != 0;
	p->ran = col_int(st, C_RAN) != 0;
	p->threw = col_int(st, C_THREW) != 0;
	p->error.kind = (spd_error_kind)col_int(st, C_ERROR_KIND);
	p->error.type = col_text(st, C_ERROR_TYPE, &oom);
	p->error.message = col_text(st, C_ERROR_MESSAGE, &oom);
	p->error.backtrace = col_text(st, C_ERROR_BACKTRACE, &oom);
	p->error.exit_code = (int32_t)col_int(st, C_ERROR_EXIT_CODE);
	p->error.signal = (int32_t)col_int(st, C_ERROR_SIGNAL);
	p->error.core_dumped = col_int(st, C_ERROR_CORE_DUMPED) != 0;
	p->error.oom_suspected = col_int(st, C_ERROR_OOM_SUSPECTED) != 0;
	p->pid = (int32_t)col_int(st, C_PID);
	p->exit_code = (int32_t)col_int(st, C_EXIT_CODE);
	p->signal = (int32_t)col_int(st, C_SIGNAL);
	p->result = col_blob(st, C_RESULT, &p->result_len, &oom);
	p->stdout_head = col_blob(st, C_STDOUT_HEAD, &p->stdout_head_len, &oom);
	p->stdout_tail = col_blob(st, C_STDOUT_TAIL, &p->stdout_len, &oom);
	p->stderr_head = col_blob(st, C_STDERR_HEAD, &p->stderr_head_len, &oom);
	p->stderr_tail = col_blob(st, C_STDERR_TAIL, &p->stderr_len, &oom);
	p->stdout_bytes = col_int(st, C_STDOUT_BYTES);
	p->stderr_bytes = col_int(st, C_STDERR_BYTES);
	p->output_truncated = col_int(st, C_OUTPUT_TRUNCATED) != 0;
	p->utime_us = col_int(st, C_USER_CPU_US);
	p->stime_us = col_int(st, C_SYSTEM_CPU_US);
	p->maxrss_bytes = col_int(st, C_MAX_RSS_BYTES);
	p->created_ns = col_int(st, C_CREATED_NS);
	p->started_ns = col_int(st, C_STARTED_NS);
	p->ended_ns = col_int(st, C_ENDED_NS);
	p->seq = (uint64_t)col_int(st, C_SEQ);
	p->grace_ms = col_int(st, C_GRACE_MS);
	p->timeout_ms = col_int(st, C_TIMEOUT_MS);
	if (oom || bad) {
		spd_process_release(p);
		memset(p, 0, sizeof *p);
		return oom ? -ENOMEM : -EILSEQ;
	}
	return 0;
}

/* ---- copies ------------------------------------------------------------------- */

static char *dup_str(const char *s, bool *oom)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*oom = true;
	return d;
}

static uint8_t *dup_bytes(const uint8_t *b, size_t len, bool *oom)
{
	uint8_t *d;

	if (b == NULL || len == 0)
		return NULL;
	d = malloc(len);
	if (d == NULL) {
		*oom = true;
		return NULL;
	}
	memcpy(d, b, len);
	return d;
}

int spd__store_copy(spd_process *dst, const spd_process *src)
{
	bool oom = false;

	*dst = *src;
	dst->target = dup_str(src->target, &oom);
	dst->caller = dup_str(src->caller, &oom);
	dst->argv = spd_strv_dup((const char *const *)src->argv, src->argc);
	dst->labels = spd_strv_dup((const char *const *)src->labels, 2 * (size_t)src->label_count);
	oom |= dst->argv == NULL || dst->labels == NULL;
	dst->error.type = dup_str(src->error.type, &oom);
	dst->error.message = dup_str(src->error.message, &oom);
	dst->error.backtrace = dup_str(src->error.backtrace, &oom);
	dst->result = dup_bytes(src->result, src->result_len, &oom);
	dst->stdout_tail = dup_bytes(src->stdout_tail, src->stdout_len, &oom);
	dst->stderr_tail = dup_bytes(src->stderr_tail, src->stderr_len, &oom);
	dst->stdout_head = dup_bytes(src->stdout_head, src->stdout_head_len, &oom);
	dst->stderr_head = dup_bytes(src->stderr_head, src->stderr_head_len, &oom);
	if (dst->result == NULL)
		dst->result_len = 0;
	if (dst->stdout_tail == NULL)
		dst->stdout_len = 0;
	if (dst->stderr_tail == NULL)
		dst->stderr_len = 0;
	if (dst->stdout_head == NULL)
		dst->stdout_head_len = 0;
	if (dst->stderr_head == NULL)
		dst->stderr_head_len = 0;
	if (oom) {
		spd_process_release(dst);
		memset(dst, 0, sizeof *dst);
		return -ENOMEM;
	}
	return 0;
}
