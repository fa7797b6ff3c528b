#include "service/registry/process.h"

#include <stdlib.h>

#include "service/common/strv.h"

/* The lifecycle in one place (s6-supervise style). Rows: state; columns: event.
 * A process can be destroyed in any state; only flags change then (the launcher
 * turns the destroy into a CANCELED exit later). 0 = cannot happen. */
static const spd_state transitions[SPD_STATE_COUNT][SPD_EV_COUNT] = {
	/*               STARTED             SUCCEEDED            FAILED            CANCELED            DESTROY             LOST */
	[SPD_STATE_PENDING] = {SPD_STATE_RUNNING, 0, SPD_STATE_FAILED, SPD_STATE_CANCELED, SPD_STATE_PENDING, SPD_STATE_FAILED},
	[SPD_STATE_RUNNING] = {0, SPD_STATE_SUCCEEDED, SPD_STATE_FAILED, SPD_STATE_CANCELED, SPD_STATE_RUNNING, SPD_STATE_FAILED},
	[SPD_STATE_SUCCEEDED] = {0, 0, 0, 0, SPD_STATE_SUCCEEDED, SPD_STATE_SUCCEEDED},
	[SPD_STATE_FAILED] = {0, 0, 0, 0, SPD_STATE_FAILED, SPD_STATE_FAILED},
	[SPD_STATE_CANCELED] = {0, 0, 0, 0, SPD_STATE_CANCELED, SPD_STATE_CANCELED},
};

spd_state spd_state_next(spd_state state, spd_event event)
{
	if ((int)state <= 0 || state >= SPD_STATE_COUNT || (int)event < 0 || event >= SPD_EV_COUNT)
		return 0;
	return transitions[state][event];
}

bool spd_state_terminal(spd_state state)
{
	return state == SPD_STATE_SUCCEEDED || state == SPD_STATE_FAILED ||
	       state == SPD_STATE_CANCELED;
}

const char *spd_state_name(spd_state state)
{
	static const char *const names[SPD_STATE_COUNT] = {
		"UNSPECIFIED", "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED",
	};

	if ((int)state < 0 || state >= SPD_STATE_COUNT)
		return "UNSPECIFIED";
	return names[state];
}

const char *spd_error_kind_name(spd_error_kind kind)
{
	static const char *const names[] = {
		[SPD_ERR_NONE] = "",
		[SPD_ERR_RAISED] = "RAISED",
		[SPD_ERR_EXIT_CODE] = "EXIT_CODE",
		[SPD_ERR_SIGNALED] = "SIGNALED",
		[SPD_ERR_OOM] = "OOM",
		[SPD_ERR_TIMEOUT] = "TIMEOUT",
		[SPD_ERR_LAUNCH] = "LAUNCH",
		[SPD_ERR_RESULT_TOO_LARGE] = "RESULT_TOO_LARGE",
		[SPD_ERR_LOST] = "LOST",
	};

	if ((int)kind < 0 || (size_t)kind >= sizeof names / sizeof names[0])
		return "UNKNOWN";
	return names[kind];
}

void spd_process_release(spd_process *p)
{
	free(p->target);
	free(p->caller);
	free(p->traceparent);
	spd_strv_free(p->argv);
	spd_strv_free(p->labels);
	free(p->error.type);
	free(p->error.message);
	free(p->error.backtrace);
	free(p->result);
	free(p->stdout_tail);
	free(p->stderr_tail);
	free(p->stdout_head);
	free(p->stderr_head);
}
