#include "service/launcher/messages.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "service/common/limits.h"
#include "service/common/strv.h"

/* Bounds on what a START may carry are common/limits.h's (the front validated
 * them already; the launcher checks again rather than trust a frame). */

int spd_start_req_encode(const spd_start_req *req, spd_wbuf *out)
{
	spd_wbuf_str(out, req->process_id);
	spd_wbuf_str(out, req->target);
	spd_wbuf_u32(out, req->argc);
	for (uint32_t i = 0; i < req->argc; i++)
		spd_wbuf_str(out, req->argv[i]);
	spd_wbuf_bytes(out, req->input, req->input_len);
	spd_wbuf_u32(out, req->label_count);
	for (uint32_t i = 0; i < 2 * req->label_count; i++)
		spd_wbuf_str(out, req->labels[i]);
	spd_wbuf_i64(out, req->grace_ms);
	spd_wbuf_i64(out, req->timeout_ms);
	return out->err;
}

/* Reads N strings into a new NULL-terminated array. */
static char **read_strv(spd_wreader *r, uint32_t n)
{
	char **v = calloc((size_t)n + 1, sizeof *v);

	if (v == NULL) {
		r->err = -ENOMEM;
		return NULL;
	}
	for (uint32_t i = 0; i < n && r->err == 0; i++)
		v[i] = spd_wreader_strdup(r);
	return v;
}

int spd_start_req_decode(spd_start_req *req, const void *body, size_t len)
{
	spd_wreader r;
	const void *p;
	size_t n;

	memset(req, 0, sizeof *req);
	spd_wreader_init(&r, body, len);
	req->process_id = spd_wreader_strdup(&r);
	req->target = spd_wreader_strdup(&r);
	req->argc = spd_wreader_u32(&r);
	if (req->argc > SPD_ARGS_MAX)
		r.err = -EBADMSG;
	if (r.err == 0)
		req->argv = read_strv(&r, req->argc);
	p = spd_wreader_bytes(&r, &n);
	if (r.err == 0 && (req->input = malloc(n ? n : 1)) != NULL) {
		memcpy(req->input, p, n);
		req->input_len = n;
	}
	req->label_count = spd_wreader_u32(&r);
	if (req->label_count > SPD_LABELS_MAX)
		r.err = -EBADMSG;
	if (r.err == 0)
		req->labels = read_strv(&r, 2 * req->label_count);
	req->grace_ms = spd_wreader_i64(&r);
	req->timeout_ms = spd_wreader_i64(&r);
	if (r.err == 0 && req->input == NULL)
		r.err = -ENOMEM;
	if (r.err != 0) {
		int err = r.err;
		spd_start_req_release(req);
		return err;
	}
	return 0;
}

void spd_start_req_release(spd_start_req *req)
{
	free(req->process_id);
	free(req->target);
	spd_strv_free(req->argv);
	free(req->input);
	spd_strv_free(req->labels);
	memset(req, 0, sizeof *req);
}

int spd_exit_report_encode(const spd_exit_report *r, spd_wbuf *out)
{
	spd_wbuf_u32(out, r->flags);
	spd_wbuf_u32(out, (uint32_t)r->pid);
	spd_wbuf_u32(out, (uint32_t)r->wait_status);
	spd_wbuf_i64(out, r->started_ns);
	spd_wbuf_i64(out, r->ended_ns);
	spd_wbuf_i64(out, r->utime_us);
	spd_wbuf_i64(out, r->stime_us);
	spd_wbuf_i64(out, r->maxrss_bytes);
	spd_wbuf_str(out, r->launch_stage);
	spd_wbuf_u32(out, (uint32_t)r->launch_errno);
	spd_wbuf_str(out, r->launch_message);
	spd_wbuf_str(out, r->raise_type);
	spd_wbuf_str(out, r->raise_message);
	spd_wbuf_str(out, r->raise_backtrace);
	spd_wbuf_bytes(out, r->result, r->result_len);
	spd_wbuf_bytes(out, r->stdout_tail, r->stdout_len);
	spd_wbuf_i64(out, r->stdout_total);
	spd_wbuf_bytes(out, r->stderr_tail, r->stderr_len);
	spd_wbuf_i64(out, r->stderr_total);
	spd_wbuf_bytes(out, r->stdout_head, r->stdout_head_len);
	spd_wbuf_bytes(out, r->stderr_head, r->stderr_head_len);
	return out->err;
}

static uint8_t *read_blob(spd_wreader *r, size_t *len)
{
	size_t n;
	const void *p = spd_wreader_bytes(r, &n);
	uint8_t *copy;

	*len = 0;
	if (r->err != 0 || n == 0)
		return NULL;
	copy = malloc(n);
	if (copy == NULL) {
		r->err = -ENOMEM;
		return NULL;
	}
	memcpy(copy, p, n);
	*len = n;
	return copy;
}

int spd_exit_report_decode(spd_exit_report *r, const void *body, size_t len)
{
	spd_wreader rd;

	memset(r, 0, sizeof *r);
	spd_wreader_init(&rd, body, len);
	r->flags = spd_wreader_u32(&rd);
	r->pid = (int32_t)spd_wreader_u32(&rd);
	r->wait_status = (int32_t)spd_wreader_u32(&rd);
	r->started_ns = spd_wreader_i64(&rd);
	r->ended_ns = spd_wreader_i64(&rd);
	r->utime_us = spd_wreader_i64(&rd);
	r->stime_us = spd_wreader_i64(&rd);
	r->maxrss_bytes = spd_wreader_i64(&rd);
	r->launch_stage = spd_wreader_strdup(&rd);
	r->launch_errno = (int32_t)spd_wreader_u32(&rd);
	r->launch_message = spd_wreader_strdup(&rd);
	r->raise_type = spd_wreader_strdup(&rd);
	r->raise_message = spd_wreader_strdup(&rd);
	r->raise_backtrace = spd_wreader_strdup(&rd);
	r->result = read_blob(&rd, &r->result_len);
	r->stdout_tail = read_blob(&rd, &r->stdout_len);
	r->stdout_total = spd_wreader_i64(&rd);
	r->stderr_tail = read_blob(&rd, &r->stderr_len);
	r->stderr_total = spd_wreader_i64(&rd);
	r->stdout_head = read_blob(&rd, &r->stdout_head_len);
	r->stderr_head = read_blob(&rd, &r->stderr_head_len);
	if (rd.err != 0) {
		int err = rd.err;
		spd_exit_report_release(r);
		return err;
	}
	return 0;
}

void spd_exit_report_release(spd_exit_report *r)
{
	free(r->launch_stage);
	free(r->launch_message);
	free(r->raise_type);
	free(r->raise_message);
	free(r->raise_backtrace);
	free(r->result);
	free(r->stdout_tail);
	free(r->stderr_tail);
	free(r->stdout_head);
	free(r->stderr_head);
	memset(r, 0, sizeof *r);
}
