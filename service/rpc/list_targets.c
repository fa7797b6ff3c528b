/* ListTargets: every configured target with its kind, start method, limits,
 * counts and health. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "service/common/signame.h"
#include "service/rpc/call.h"
#include "service/rpc/caller.h"
#include "service/rpc/codec.h"
#include "service/rpc/handlers.h"

/* Everything in the response is the arena's: the registry's strings are
 * borrowed only during its callback (a reload may free them after it). */
typedef struct listing {
	spd_arena arena;
	Spawnd__V1__Target **targets;
	size_t n, cap;
} listing;

/* Room for one more target in L (the registry lists as many as it has now). */
static bool grow(listing *l)
{
	Spawnd__V1__Target **v;
	size_t cap = l->cap ? 2 * l->cap : 16;

	if (l->n < l->cap)
		return true;
	v = spd_arena_alloc(&l->arena, cap * sizeof *v);
	if (v == NULL)
		return false;
	if (l->n > 0)
		memcpy(v, l->targets, l->n * sizeof *v);
	l->targets = v;
	l->cap = cap;
	return true;
}

static const char *function_name(spd_arena *a, const spd_target_config *t)
{
	char buf[1024];

	if (t->builtin != NULL)
		snprintf(buf, sizeof buf, "builtin:%s", t->builtin);
	else
		snprintf(buf, sizeof buf, "%s:%s", t->library, t->symbol);
	return spd_arena_strdup(a, buf);
}

static void add(void *ctx, const spd_target_config *t, uint32_t running, uint32_t pending,
		uint32_t idle, const char *error, const char *memory_limit_mechanism)
{
	listing *l = ctx;
	spd_arena *a = &l->arena;
	Spawnd__V1__Target *m = spd_arena_alloc(a, sizeof *m);
	Spawnd__V1__TargetLimits *lim = spd_arena_alloc(a, sizeof *lim);
	const char *sig = spd_signal_name(t->limits.stop_signal);

	if (m == NULL || lim == NULL || !spd_rpc_caller_allows(t->name) || !grow(l))
		return;
	spawnd__v1__target__init(m);
	spawnd__v1__target_limits__init(lim);
	m->name = spd_arena_strdup(a, t->name);
	m->kind = t->kind == SPD_TARGET_EXEC ? SPAWND__V1__TARGET__KIND__KIND_EXEC
					     : SPAWND__V1__TARGET__KIND__KIND_FUNCTION;
	m->start_method = (Spawnd__V1__StartMethod)t->limits.start_method;
	m->description = spd_arena_strdup(a, t->description != NULL ? t->description : "");
	m->running = running;
	m->pending = pending;
	m->idle = idle;
	m->prestart = t->prestart;
	m->health = error == NULL ? SPAWND__V1__TARGET__HEALTH__HEALTH_SERVING
				  : SPAWND__V1__TARGET__HEALTH__HEALTH_NOT_SERVING;
	m->allow_args = t->allow_args;
	if (t->kind == SPD_TARGET_EXEC) {
		m->exec = spd_arena_alloc(a, (t->exec_argc + 1) * sizeof *m->exec);
		for (size_t i = 0; m->exec != NULL && i < t->exec_argc; i++)
			m->exec[i] = spd_arena_strdup(a, t->exec_argv[i]);
		m->n_exec = m->exec != NULL ? t->exec_argc : 0;
		m->function = (char *)"";
	} else {
		m->function = (char *)function_name(a, t);
	}
	lim->timeout = spd_codec_duration_ms(a, t->limits.timeout_ms);
	lim->destroy_grace_period = spd_codec_duration_ms(a, t->limits.destroy_grace_ms);
	lim->stop_signal = (char *)(sig != NULL ? sig : "");
	lim->max_concurrent = t->limits.max_concurrent;
	lim->max_result_bytes = t->limits.max_result_bytes;
	lim->max_output_bytes = t->limits.max_output_bytes;
	lim->memory_limit = t->limits.memory_limit;
	/* The launcher's word (HELLO): what really applies to this target. */
	lim->memory_limit_mechanism = (char *)(t->limits.memory_limit != 0
						       ? spd_arena_strdup(a, memory_limit_mechanism)
						       : "");
	lim->cpu_time_limit = spd_codec_duration_ms(a, t->limits.cpu_time_limit_ms);
	lim->open_files_limit = t->limits.open_files_limit;
	m->limits = lim;
	l->targets[l->n++] = m;
}

void spd_rpc_list_targets(const spd_rpc_env *env, grpc_call *call, grpc_byte_buffer *payload)
{
	ProtobufCMessage *req = spd_rpc_request(call, payload,
						&spawnd__v1__list_targets_request__descriptor);
	Spawnd__V1__ListTargetsResponse resp = SPAWND__V1__LIST_TARGETS_RESPONSE__INIT;
	listing l = {.arena = SPD_ARENA_INIT};

	if (req == NULL)
		return;
	spd_registry_list_targets(env->registry, add, &l);
	if (l.arena.failed) {
		spd_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
	} else {
		resp.n_targets = l.n;
		resp.targets = l.targets;
		spd_call_finish(call, GRPC_STATUS_OK, NULL, &resp.base);
	}
	spd_arena_release(&l.arena);
	protobuf_c_message_free_unpacked(req, NULL);
}
