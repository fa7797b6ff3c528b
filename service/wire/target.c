#include "service/wire/target.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void spd_wire_limits_encode(const spd_target_limits *l, spd_wbuf *b)
{
	spd_wbuf_u32(b, (uint32_t)l->start_method);
	spd_wbuf_i64(b, l->destroy_grace_ms);
	spd_wbuf_u32(b, (uint32_t)l->stop_signal);
	spd_wbuf_i64(b, l->timeout_ms);
	spd_wbuf_u32(b, l->max_concurrent);
	spd_wbuf_i64(b, (int64_t)l->max_result_bytes);
	spd_wbuf_i64(b, (int64_t)l->max_output_bytes);
	spd_wbuf_i64(b, (int64_t)l->memory_limit);
	spd_wbuf_i64(b, l->cpu_time_limit_ms);
	spd_wbuf_i64(b, (int64_t)l->open_files_limit);
	spd_wbuf_u32(b, (uint32_t)l->zygote_start);
}

void spd_wire_limits_decode(spd_wreader *r, spd_target_limits *l)
{
	l->start_method = (spd_start_method)spd_wreader_u32(r);
	l->destroy_grace_ms = spd_wreader_i64(r);
	l->stop_signal = (int)spd_wreader_u32(r);
	l->timeout_ms = spd_wreader_i64(r);
	l->max_concurrent = spd_wreader_u32(r);
	l->max_result_bytes = (uint64_t)spd_wreader_i64(r);
	l->max_output_bytes = (uint64_t)spd_wreader_i64(r);
	l->memory_limit = (uint64_t)spd_wreader_i64(r);
	l->cpu_time_limit_ms = spd_wreader_i64(r);
	l->open_files_limit = (uint64_t)spd_wreader_i64(r);
	l->zygote_start = (spd_zygote_start)spd_wreader_u32(r);
}

int spd_wire_target_encode(const spd_wire_target *t, spd_wbuf *out)
{
	const spd_target_config *c = &t->cfg;
	size_t nenv = 0;

	while (t->envp != NULL && t->envp[nenv] != NULL)
		nenv++;
	spd_wbuf_str(out, c->name);
	spd_wbuf_u32(out, (uint32_t)c->kind);
	spd_wbuf_str(out, c->builtin);
	spd_wbuf_str(out, c->library);
	spd_wbuf_str(out, c->symbol);
	spd_wbuf_str(out, c->cwd);
	spd_wbuf_u32(out, c->umask);
	spd_wbuf_u32(out, t->set_uid);
	spd_wbuf_u32(out, (uint32_t)t->uid);
	spd_wbuf_u32(out, t->set_gid);
	spd_wbuf_u32(out, (uint32_t)t->gid);
	spd_wbuf_strv(out, t->envp, nenv);
	spd_wire_limits_encode(&c->limits, out);
	return out->err;
}

/* "" -> NULL: optional strings travel as empty ones. */
static char *opt_str(spd_wreader *r)
{
	char *s = spd_wreader_strdup(r);

	if (s != NULL && s[0] == '\0') {
		free(s);
		return NULL;
	}
	return s;
}

int spd_wire_target_decode(spd_wreader *r, spd_wire_target *t)
{
	spd_target_config *c = &t->cfg;
	size_t nenv;

	memset(t, 0, sizeof *t);
	c->name = spd_wreader_strdup(r);
	c->kind = (spd_target_kind)spd_wreader_u32(r);
	c->builtin = opt_str(r);
	c->library = opt_str(r);
	c->symbol = opt_str(r);
	c->cwd = opt_str(r);
	c->umask = spd_wreader_u32(r) & 0777;
	t->set_uid = spd_wreader_u32(r) != 0;
	t->uid = (uid_t)spd_wreader_u32(r);
	t->set_gid = spd_wreader_u32(r) != 0;
	t->gid = (gid_t)spd_wreader_u32(r);
	t->envp = spd_wreader_strv(r, SPD_WIRE_TARGET_MAX_ENV, &nenv);
	spd_wire_limits_decode(r, &c->limits);
	if (r->err != 0 || c->name == NULL) {
		int err = r->err ? r->err : -EBADMSG;
		spd_wire_target_release(t);
		return err;
	}
	return 0;
}

int spd_wire_target_decode_body(const void *data, size_t len, spd_wire_target *t)
{
	spd_wreader r;
	int rc;

	spd_wreader_init(&r, data, len);
	rc = spd_wire_target_decode(&r, t);
	if (rc == 0 && spd_wreader_end(&r) != 0) {
		spd_wire_target_release(t);
		rc = -EBADMSG;
	}
	return rc;
}

void spd_wire_target_release(spd_wire_target *t)
{
	free(t->cfg.name);
	free(t->cfg.builtin);
	free(t->cfg.library);
	free(t->cfg.symbol);
	free(t->cfg.cwd);
	spd_strv_free(t->envp);
	memset(t, 0, sizeof *t);
}

int spd_wire_call_encode(const spd_wire_target *t, const spd_start_req *req, spd_wbuf *out)
{
	spd_wbuf body = SPD_WBUF_INIT;

	spd_wire_target_encode(t, out);
	spd_start_req_encode(req, &body);
	if (body.err != 0)
		out->err = body.err;
	spd_wbuf_bytes(out, body.data, body.len);
	spd_wbuf_release(&body);
	return out->err;
}

int spd_wire_call_decode(const void *data, size_t len, spd_wire_target *t, spd_start_req *req)
{
	spd_wreader r;
	const void *req_body;
	size_t req_len;
	int rc;

	memset(req, 0, sizeof *req);
	spd_wreader_init(&r, data, len);
	rc = spd_wire_target_decode(&r, t);
	if (rc < 0)
		return rc;
	req_body = spd_wreader_bytes(&r, &req_len);
	rc = spd_wreader_end(&r);
	if (rc == 0)
		rc = spd_start_req_decode(req, req_body, req_len);
	if (rc < 0)
		spd_wire_target_release(t);
	return rc;
}
