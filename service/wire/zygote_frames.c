#include "service/wire/zygote_frames.h"

#include "service/wire/messages.h"

int spd_zygote_signal_msg_encode(const spd_zygote_signal_msg *m, spd_wbuf *out)
{
	spd_wbuf_u32(out, (uint32_t)m->sig);
	return out->err;
}

int spd_zygote_signal_msg_decode(spd_zygote_signal_msg *m, const void *body, size_t len)
{
	spd_wreader r;

	spd_wreader_init(&r, body, len);
	m->sig = (int32_t)spd_wreader_u32(&r);
	return spd_wreader_end(&r);
}

int spd_zygote_started_msg_encode(const spd_zygote_started_msg *m, spd_wbuf *out)
{
	spd_wbuf_u32(out, (uint32_t)m->pid_or_err);
	return out->err;
}

int spd_zygote_started_msg_decode(spd_zygote_started_msg *m, const void *body, size_t len)
{
	spd_wreader r;

	spd_wreader_init(&r, body, len);
	m->pid_or_err = (int32_t)spd_wreader_u32(&r);
	return spd_wreader_end(&r);
}

int spd_zygote_exited_msg_encode(const spd_zygote_exited_msg *m, spd_wbuf *out)
{
	spd_wbuf_u32(out, (uint32_t)m->wait_status);
	spd_wbuf_i64(out, m->utime_us);
	spd_wbuf_i64(out, m->stime_us);
	spd_wbuf_i64(out, m->maxrss_bytes);
	spd_wbuf_u32(out, m->sent);
	return out->err;
}

int spd_zygote_exited_msg_decode(spd_zygote_exited_msg *m, const void *body, size_t len)
{
	spd_wreader r;

	spd_wreader_init(&r, body, len);
	m->wait_status = (int32_t)spd_wreader_u32(&r);
	m->utime_us = spd_wreader_i64(&r);
	m->stime_us = spd_wreader_i64(&r);
	m->maxrss_bytes = spd_wreader_i64(&r);
	m->sent = spd_wreader_u32(&r) & (SPD_EXIT_SENT_STOP | SPD_EXIT_SENT_KILL);
	return spd_wreader_end(&r);
}
