#include "service/wire/messages.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int spd_start_req_encode(const spd_start_req *req, spd_wbuf *out)
{
	spd_wbuf_str(out, req->process_id);
	spd_wbuf_str(out, req->target);
	spd_wbuf_u32(out, req->target_id);
	spd_wbuf_strv(out, req->argv, req->argc);
	spd_wbuf_bytes(out, req->input, req->input_len);
	spd_wbuf_u32(out, req->label_count);
	for (uint32_t i = 0; i < 2 * req->label_count; i++)
		spd_wbuf_str(out, req->labels[i]);
	spd_wbuf_i64(out, req->grace_ms);
	spd_wbuf_i64(out, req->timeout_ms);
	spd_wbuf_str(out, req->traceparent);
	return out->err;
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
	req->target_id = spd_wreader_u32(&r);
	req->argv = spd_wreader_strv(&r, SPD_START_MAX_ARGS, &n);
	req->argc = (uint32_t)n;
	p = spd_wreader_bytes(&r, &n);
	if (r.err == 0 && (req->input = malloc(n ? n : 1)) != NULL) {
		memcpy(req->input, p, n);
		req->input_len = n;
	}
	req->label_count = spd_wreader_u32(&r);
	if (req->label_count > SPD_START_MAX_LABELS)
		r.err = -EBADMSG;
	req->labels = spd_wreader_strv_n(&r, 2 * (size_t)req->label_count);
	req->grace_ms = spd_wreader_i64(&r);
	req->timeout_ms = spd_wreader_i64(&r);
	req->traceparent = spd_wreader_strdup(&r);
	spd_wreader_end(&r);
	if (r.err == 0 && req->input == NULL)
		r.err = -ENOMEM;
	if (r.err == 0 && req->traceparent != NULL &&
	    strlen(req->traceparent) > SPD_START_MAX_TRACEPARENT)
		r.err = -EBADMSG;
	if (r.err == 0 && req->traceparent != NULL && req->traceparent[0] == '\0') {
		free(req->traceparent);
		req->traceparent = NULL;
	}
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
	free(req->traceparent);
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
	if (spd_wreader_end(&rd) != 0) {
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

int spd_launcher_hello_encode(const spd_launcher_hello *h, spd_wbuf *out)
{
	spd_wbuf_u32(out, (uint32_t)h->count);
	for (size_t i = 0; i < h->count; i++) {
		spd_wbuf_u32(out, h->ids[i]);
		spd_wbuf_str(out, h->names[i]);
		spd_wbuf_u32(out, h->errors[i] == NULL);
		spd_wbuf_str(out, h->errors[i]);
	}
	/* Then what enforces each target's memory_limit. */
	for (size_t i = 0; i < h->count; i++)
		spd_wbuf_str(out, h->memory_limit_mechanisms[i]);
	spd_wbuf_str(out, h->cgroup != NULL ? h->cgroup : "");
	return out->err;
}

int spd_launcher_hello_decode(spd_launcher_hello *h, const void *body, size_t len)
{
	spd_wreader r;
	uint32_t count;

	memset(h, 0, sizeof *h);
	spd_wreader_init(&r, body, len);
	count = spd_wreader_u32(&r);
	/* *h stays empty on failure: a count kept here would make a release
	 * walk up to 2^32 entries of arrays that were never allocated. */
	if (r.err != 0 || count > SPD_HELLO_MAX_TARGETS)
		return -EBADMSG;
	h->count = count;
	h->ids = calloc(h->count + 1, sizeof *h->ids);
	h->names = calloc(h->count + 1, sizeof *h->names);
	h->errors = calloc(h->count + 1, sizeof *h->errors);
	h->memory_limit_mechanisms = calloc(h->count + 1, sizeof *h->memory_limit_mechanisms);
	if (h->ids == NULL || h->names == NULL || h->errors == NULL || h->memory_limit_mechanisms == NULL) {
		spd_launcher_hello_release(h);
		return -ENOMEM;
	}
	for (size_t i = 0; i < h->count && r.err == 0; i++) {
		uint32_t ok;
		h->ids[i] = spd_wreader_u32(&r);
		h->names[i] = spd_wreader_strdup(&r);
		ok = spd_wreader_u32(&r);
		h->errors[i] = spd_wreader_strdup(&r);
		if (ok) {
			free(h->errors[i]);
			h->errors[i] = NULL;
		}
	}
	for (size_t i = 0; i < h->count && r.err == 0; i++)
		h->memory_limit_mechanisms[i] = spd_wreader_strdup(&r);
	if (r.err == 0)
		h->cgroup = spd_wreader_strdup(&r);
	if (spd_wreader_end(&r) != 0) {
		spd_launcher_hello_release(h);
		return -EBADMSG;
	}
	return 0;
}

void spd_launcher_hello_release(spd_launcher_hello *h)
{
	for (size_t i = 0; i < h->count; i++) {
		if (h->names != NULL)
			free(h->names[i]);
		if (h->errors != NULL)
			free(h->errors[i]);
		if (h->memory_limit_mechanisms != NULL)
			free(h->memory_limit_mechanisms[i]);
	}
	free(h->ids);
	free(h->names);
	free(h->errors);
	free(h->memory_limit_mechanisms);
	free(h->cgroup);
	memset(h, 0, sizeof *h);
}

int spd_health_msg_encode(const spd_health_msg *m, spd_wbuf *out)
{
	spd_wbuf_str(out, m->target);
	spd_wbuf_u32(out, m->why == NULL);
	spd_wbuf_str(out, m->why);
	return out->err;
}

int spd_health_msg_decode(spd_health_msg *m, const void *body, size_t len)
{
	spd_wreader r;
	uint32_t ok;

	memset(m, 0, sizeof *m);
	spd_wreader_init(&r, body, len);
	m->target = spd_wreader_strdup(&r);
	ok = spd_wreader_u32(&r);
	m->why = spd_wreader_strdup(&r);
	if (spd_wreader_end(&r) != 0) {
		int err = r.err;
		spd_health_msg_release(m);
		return err;
	}
	if (ok) {
		free(m->why);
		m->why = NULL;
	}
	return 0;
}

void spd_health_msg_release(spd_health_msg *m)
{
	free(m->target);
	free(m->why);
	memset(m, 0, sizeof *m);
}

int spd_started_msg_encode(const spd_started_msg *m, spd_wbuf *out)
{
	spd_wbuf_u32(out, (uint32_t)m->pid);
	spd_wbuf_i64(out, m->started_ns);
	return out->err;
}

int spd_started_msg_decode(spd_started_msg *m, const void *body, size_t len)
{
	spd_wreader r;

	spd_wreader_init(&r, body, len);
	m->pid = (int32_t)spd_wreader_u32(&r);
	m->started_ns = spd_wreader_i64(&r);
	return spd_wreader_end(&r);
}

int spd_output_msg_encode(const spd_output_msg *m, spd_wbuf *out)
{
	spd_wbuf_u32(out, m->stream);
	spd_wbuf_i64(out, (int64_t)m->offset);
	spd_wbuf_bytes(out, m->data, m->len);
	return out->err;
}

int spd_output_msg_decode(spd_output_msg *m, const void *body, size_t len)
{
	spd_wreader r;

	spd_wreader_init(&r, body, len);
	m->stream = spd_wreader_u32(&r);
	m->offset = (uint64_t)spd_wreader_i64(&r);
	m->data = spd_wreader_bytes(&r, &m->len);
	if (r.err == 0 && m->stream != SPD_OUTPUT_STDOUT && m->stream != SPD_OUTPUT_STDERR)
		r.err = -EBADMSG;
	return spd_wreader_end(&r);
}

int spd_destroy_msg_encode(const spd_destroy_msg *m, spd_wbuf *out)
{
	spd_wbuf_i64(out, m->grace_ms);
	return out->err;
}

int spd_destroy_msg_decode(spd_destroy_msg *m, const void *body, size_t len)
{
	spd_wreader r;

	spd_wreader_init(&r, body, len);
	m->grace_ms = spd_wreader_i64(&r);
	return spd_wreader_end(&r);
}

int spd_idle_msg_encode(const spd_idle_msg *m, spd_wbuf *out)
{
	spd_wbuf_u32(out, m->count);
	return out->err;
}

int spd_idle_msg_decode(spd_idle_msg *m, const void *body, size_t len)
{
	spd_wreader r;

	spd_wreader_init(&r, body, len);
	m->count = spd_wreader_u32(&r);
	return spd_wreader_end(&r);
}
