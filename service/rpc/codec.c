#include "service/rpc/codec.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <string.h>

static Google__Protobuf__Timestamp *timestamp(spd_arena *a, int64_t ns)
{
	Google__Protobuf__Timestamp *t;

	if (ns == 0)
		return NULL;
	t = spd_arena_alloc(a, sizeof *t);
	if (t == NULL)
		return NULL;
	google__protobuf__timestamp__init(t);
	t->seconds = ns / 1000000000;
	t->nanos = (int32_t)(ns % 1000000000);
	return t;
}

Google__Protobuf__Duration *spd_codec_duration_ms(spd_arena *a, int64_t ms)
{
	Google__Protobuf__Duration *d = spd_arena_alloc(a, sizeof *d);

	if (d == NULL)
		return NULL;
	google__protobuf__duration__init(d);
	d->seconds = ms / 1000;
	d->nanos = (int32_t)(ms % 1000) * 1000000;
	return d;
}

static Google__Protobuf__Duration *duration_us(spd_arena *a, int64_t us)
{
	Google__Protobuf__Duration *d = spd_arena_alloc(a, sizeof *d);

	if (d == NULL)
		return NULL;
	google__protobuf__duration__init(d);
	d->seconds = us / 1000000;
	d->nanos = (int32_t)(us % 1000000) * 1000;
	return d;
}

int spd_codec_duration_to_ms(const Google__Protobuf__Duration *d, int64_t *ms)
{
	const int64_t max_seconds = 315576000000LL; /* the Duration range: 10,000 years */

	/* Longer is "never" in practice; the cap keeps the launcher's deadline
	 * arithmetic (now_ns + ms * 1000000) far from int64 overflow. */
	const int64_t cap_seconds = 100LL * 366 * 24 * 3600;

	if (d->seconds < 0 || d->nanos < 0 || d->nanos > 999999999 || d->seconds > max_seconds)
		return -EINVAL;
	if (d->seconds >= cap_seconds) {
		*ms = cap_seconds * 1000;
		return 0;
	}
	*ms = d->seconds * 1000 + (d->nanos + 999999) / 1000000;
	return 0;
}

static ProtobufCBinaryData bytes(const uint8_t *p, size_t n)
{
	ProtobufCBinaryData b = {.len = p != NULL ? n : 0, .data = (uint8_t *)p};

	return b;
}

/* The last few KiB of stderr, as the error's "traceback". */
#define ERROR_STDERR_TAIL 4096u

static Spawnd__V1__ProcessError *process_error(spd_arena *a, const spd_process *p)
{
	const spd_process_error *e = &p->error;
	Spawnd__V1__ProcessError *m = spd_arena_alloc(a, sizeof *m);
	size_t n = p->stderr_len < ERROR_STDERR_TAIL ? p->stderr_len : ERROR_STDERR_TAIL;

	if (m == NULL)
		return NULL;
	spawnd__v1__process_error__init(m);
	m->kind = (Spawnd__V1__ProcessError__Kind)e->kind;
	m->type = e->type != NULL ? e->type : (char *)"";
	m->message = e->message != NULL ? e->message : (char *)"";
	m->backtrace = e->backtrace != NULL ? e->backtrace : (char *)"";
	m->exit_code = e->exit_code;
	m->signal = e->signal;
	m->core_dumped = e->core_dumped;
	m->oom_suspected = e->oom_suspected;
	if (p->stderr_tail != NULL)
		m->stderr_tail = bytes(p->stderr_tail + p->stderr_len - n, n);
	return m;
}

Spawnd__V1__Process *spd_codec_process(spd_arena *a, const spd_process *p, bool with_payload)
{
	Spawnd__V1__Process *m = spd_arena_alloc(a, sizeof *m);

	if (m == NULL)
		return NULL;
	spawnd__v1__process__init(m);
	m->id = (char *)p->id;
	m->target = p->target;
	m->caller = p->caller != NULL ? p->caller : (char *)"";
	m->traceparent = p->traceparent != NULL ? p->traceparent : (char *)"";
	m->n_args = p->argc;
	m->args = p->argv;
	if (p->label_count > 0) {
		m->labels = spd_arena_alloc(a, p->label_count * sizeof *m->labels);
		for (uint32_t i = 0; m->labels != NULL && i < p->label_count; i++) {
			Spawnd__V1__Process__LabelsEntry *le = spd_arena_alloc(a, sizeof *le);
			if (le == NULL)
				break;
			spawnd__v1__process__labels_entry__init(le);
			le->key = p->labels[2 * i];
			le->value = p->labels[2 * i + 1];
			m->labels[m->n_labels++] = le;
		}
	}
	m->state = (Spawnd__V1__State)p->state;
	m->destroyed = p->destroyed;
	m->canceled = p->canceled;
	m->ran = p->ran;
	m->threw = p->threw;
	if (p->error.kind != SPD_ERR_NONE)
		m->error = process_error(a, p);
	m->pid = p->pid;
	m->exit_code = p->exit_code;
	m->signal = p->signal;
	m->start_method = (Spawnd__V1__StartMethod)p->start_method;
	m->created_at = timestamp(a, p->created_ns);
	m->started_at = timestamp(a, p->started_ns);
	m->ended_at = timestamp(a, p->ended_ns);
	if (p->ended_ns != 0) {
		m->usage = spd_arena_alloc(a, sizeof *m->usage);
		if (m->usage != NULL) {
			spawnd__v1__usage__init(m->usage);
			m->usage->user_cpu = duration_us(a, p->utime_us);
			m->usage->system_cpu = duration_us(a, p->stime_us);
			m->usage->max_rss_bytes = (uint64_t)p->maxrss_bytes;
		}
	}
	m->output_truncated = p->output_truncated;
	m->stdout_bytes = (uint64_t)p->stdout_bytes;
	m->stderr_bytes = (uint64_t)p->stderr_bytes;
	if (with_payload) {
		m->result = bytes(p->result, p->result_len);
		m->stdout_tail = bytes(p->stdout_tail, p->stdout_len);
		m->stderr_tail = bytes(p->stderr_tail, p->stderr_len);
		m->stdout_head = bytes(p->stdout_head, p->stdout_head_len);
		m->stderr_head = bytes(p->stderr_head, p->stderr_head_len);
	}
	return a->failed ? NULL : m;
}

grpc_byte_buffer *spd_codec_pack(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	grpc_slice s = grpc_slice_malloc(n);
	grpc_byte_buffer *bb;

	protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
	bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

ProtobufCMessage *spd_codec_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d)
{
	grpc_byte_buffer_reader r;
	grpc_slice s;
	ProtobufCMessage *m;

	if (bb == NULL)
		return protobuf_c_message_unpack(d, NULL, 0, (const uint8_t *)"");
	if (!grpc_byte_buffer_reader_init(&r, bb))
		return NULL;
	s = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
	grpc_slice_unref(s);
	return m;
}
