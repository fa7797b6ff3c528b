#include "service/rpc/grpc_log.h"

#include <grpc/support/log.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "service/common/log.h"

static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;
static void (*hook)(void *ctx);
static void *hook_ctx;

static void on_grpc_log(gpr_log_func_args *a)
{
	int level = a->severity == GPR_LOG_SEVERITY_ERROR  ? SPD_LOG_ERROR
		    : a->severity == GPR_LOG_SEVERITY_INFO ? SPD_LOG_INFO
							   : SPD_LOG_DEBUG;

	if (a->message != NULL && strstr(a->message, "Failed accept4") != NULL) {
		pthread_mutex_lock(&hook_mu);
		if (hook != NULL)
			hook(hook_ctx);
		pthread_mutex_unlock(&hook_mu);
	}
	if (!spd_log_enabled(level))
		return;
	spd_log(level, a->message != NULL ? a->message : "", SPD_LOG_STR("source", "grpc"),
		SPD_LOG_STR("file", a->file != NULL ? a->file : ""), SPD_LOG_INT("line", a->line),
		SPD_LOG_END);
}

void spd_grpc_log_on_accept_failed(void (*on_accept_failed)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&hook_mu);
	hook = on_accept_failed;
	hook_ctx = ctx;
	pthread_mutex_unlock(&hook_mu);
}

void spd_grpc_log_install(void (*on_accept_failed)(void *ctx), void *ctx)
{
	spd_grpc_log_on_accept_failed(on_accept_failed, ctx);
	gpr_set_log_function(on_grpc_log);
}
