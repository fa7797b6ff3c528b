/* gRPC server metrics per call: see call_stats.h. */
#include "service/rpc/call_stats.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/common/clock.h"
#include "service/metrics/metrics.h"

#define BUCKETS 256u

typedef struct live_call {
	struct live_call *next;
	const grpc_call *call;
	const char *path;
	const char *type;
	int64_t start_ns;
} live_call;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static live_call *table[BUCKETS];

static uint32_t bucket(const grpc_call *call)
{
	uintptr_t p = (uintptr_t)call;

	return (uint32_t)((p >> 4) ^ (p >> 12)) % BUCKETS;
}

/* "/svc/method" into SERVICE and METHOD (truncated to their buffers). */
static void split(const char *path, char *service, size_t slen, char *method, size_t mlen)
{
	const char *s = path[0] == '/' ? path + 1 : path;
	const char *slash = strchr(s, '/');

	if (slash == NULL) {
		snprintf(service, slen, "%s", s);
		method[0] = '\0';
		return;
	}
	snprintf(service, slen, "%.*s", (int)(slash - s), s);
	snprintf(method, mlen, "%s", slash + 1);
}

void spd__call_stats_declare(const char *path, const char *type)
{
	char service[128], method[128];

	split(path, service, sizeof service, method, sizeof method);
	spd_metrics_grpc_declare(type, service, method);
}

void spd__call_stats_begin(grpc_call *call, const char *path, const char *type)
{
	char service[128], method[128];
	live_call *c;
	uint32_t b;

	if (!spd_metrics_active())
		return;
	split(path, service, sizeof service, method, sizeof method);
	spd_metrics_grpc_started(type, service, method);
	c = malloc(sizeof *c);
	if (c == NULL)
		return; /* started, never handled: a lost count, not a crash */
	*c = (live_call){.call = call, .path = path, .type = type, .start_ns = spd_clock_mono_ns()};
	b = bucket(call);
	pthread_mutex_lock(&mu);
	c->next = table[b];
	table[b] = c;
	pthread_mutex_unlock(&mu);
}

void spd__call_stats_end(grpc_call *call, grpc_status_code code)
{
	char service[128], method[128];
	live_call **pp, *c = NULL;
	uint32_t b = bucket(call);

	pthread_mutex_lock(&mu);
	for (pp = &table[b]; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->call == call) {
			c = *pp;
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&mu);
	if (c == NULL)
		return;
	split(c->path, service, sizeof service, method, sizeof method);
	spd_metrics_grpc_handled(c->type, service, method, spd__status_code_name(code),
				 (double)(spd_clock_mono_ns() - c->start_ns) / 1e9);
	free(c);
}

const char *spd__status_code_name(grpc_status_code code)
{
	static const char *const names[] = {
		"OK",          "CANCELLED",         "UNKNOWN",          "INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED", "NOT_FOUND",   "ALREADY_EXISTS",   "PERMISSION_DENIED",
		"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
		"UNIMPLEMENTED", "INTERNAL",        "UNAVAILABLE",      "DATA_LOSS",
		"UNAUTHENTICATED",
	};

	if ((int)code < 0 || (size_t)code >= sizeof names / sizeof names[0])
		return "UNKNOWN";
	return names[code];
}
