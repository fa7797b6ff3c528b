#include "service/registry/outcome.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "service/common/signame.h"

/* The errno name of a launch failure ("ENOENT"), the most useful type for it. */
static const char *launch_type(const spd_exit_facts *r)
{
	const char *name = r->launch_errno > 0 ? strerrorname_np(r->launch_errno) : NULL;

	return name != NULL ? name : "LaunchError";
}

/* The seed's OOM exit codes (caikit maps 137, 9 and -9 to OOM). spawnd only
 * flags them as suspected, and never when spawnd sent the SIGKILL itself. */
static bool oom_exit_code(int code)
{
	return code == 137 || code == 9;
}

void spd_outcome_classify(const spd_exit_facts *r, bool destroy_requested, spd_outcome *o)
{
	int st = r->wait_status;
	/* The process's memory cgroup counted a kernel OOM kill, or counted none:
	 * both are evidence. Without a cgroup there is none either way. */
	bool oom_killed = (r->flags & SPD_EXIT_OOM_KILLED) != 0;
	bool no_oom = (r->flags & SPD_EXIT_CGROUP) && !oom_killed;

	memset(o, 0, sizeof *o);
	if (r->flags & SPD_EXIT_LAUNCH_FAILED) {
		o->state = destroy_requested ? SPD_STATE_CANCELED : SPD_STATE_FAILED;
		o->kind = destroy_requested ? SPD_ERR_NONE : SPD_ERR_LAUNCH;
		o->type = launch_type(r);
		return;
	}
	o->ran = true;
	if (WIFEXITED(st)) {
		o->exit_code = WEXITSTATUS(st);
	} else if (WIFSIGNALED(st)) {
		o->signal = WTERMSIG(st);
		o->core_dumped = WCOREDUMP(st) != 0;
	}

	/* CANCELED means the destroy ended it (SPEC §12 "Destroy and canceled"):
	 * a signal of the destroy reached the child while it was alive. When it
	 * had already exited on its own, the launcher sent none, and the record
	 * says what the child did, with destroyed = true, canceled = false. */
	if (destroy_requested && (r->flags & (SPD_EXIT_SENT_STOP | SPD_EXIT_SENT_KILL))) {
		o->state = SPD_STATE_CANCELED;
		return;
	}
	o->state = SPD_STATE_FAILED;
	if (r->flags & SPD_EXIT_LOST) {
		o->kind = SPD_ERR_LOST;
		o->type = "ZygoteLost";
	} else if (r->flags & SPD_EXIT_TIMED_OUT) {
		o->kind = SPD_ERR_TIMEOUT;
		o->type = "Timeout";
	} else if (r->flags & SPD_EXIT_SETUP_FAILED) {
		o->kind = SPD_ERR_LAUNCH;
		o->type = launch_type(r);
	} else if (r->flags & SPD_EXIT_TOO_LARGE) {
		o->kind = SPD_ERR_RESULT_TOO_LARGE;
		o->type = "ResultTooLarge";
	} else if (r->flags & SPD_EXIT_OOM) {
		o->kind = SPD_ERR_OOM;
		o->type = "OutOfMemory";
	} else if (r->flags & SPD_EXIT_RAISED) {
		o->kind = SPD_ERR_RAISED;
		o->type = r->raise_type;
	} else if (o->signal != 0) {
		bool ours = (r->flags & SPD_EXIT_SENT_KILL) && o->signal == SIGKILL;
		if (o->signal == SIGKILL && !ours && oom_killed) {
			/* Confirmed by the cgroup; `signal` still says 9. */
			o->kind = SPD_ERR_OOM;
			o->type = "OutOfMemory";
		} else {
			o->kind = SPD_ERR_SIGNALED;
			o->type = spd_signal_name(o->signal);
			o->oom_suspected = o->signal == SIGKILL && !ours && !no_oom;
		}
	} else if (o->exit_code != 0) {
		o->kind = SPD_ERR_EXIT_CODE;
		o->type = "ExitCode";
		/* A leader reporting 137 after spawnd SIGKILLed its group (a shell
		 * whose child got our SIGKILL) is the seed's lie: not suspected. */
		o->oom_suspected = oom_exit_code(o->exit_code) && !(r->flags & SPD_EXIT_SENT_KILL) &&
				   !no_oom;
	} else {
		o->state = SPD_STATE_SUCCEEDED;
	}
}
