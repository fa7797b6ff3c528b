/* How a process ended, from the launcher's raw facts (SPEC §2 "Errors" and
 * "OOM is never a guess that lies"). Pure: table-tested in
 * tests/unit/outcome_test.c. */
#ifndef SPAWND_REGISTRY_OUTCOME_H
#define SPAWND_REGISTRY_OUTCOME_H

#include <stdbool.h>

#include "service/common/exit_facts.h"
#include "service/registry/process.h"

typedef struct spd_outcome {
	spd_state state;          /* SUCCEEDED, FAILED or CANCELED */
	spd_error_kind kind;      /* SPD_ERR_NONE unless FAILED */
	const char *type;         /* static or borrowed from the report */
	int32_t exit_code;        /* normal exit only */
	int32_t signal;           /* death by signal only */
	bool core_dumped;
	bool oom_suspected;
	bool ran;                 /* a child ran and ended */
} spd_outcome;

/* Classifies REPORT. DESTROY_REQUESTED: Destroy was called while the process was
 * pending or running. It then ends CANCELED, whatever the child did, when the
 * destroy ended it: it never launched, or the launcher's signal reached it
 * alive (SPD_EXIT_SENT_STOP/KILL). A child that had already exited when the
 * destroy came ends as it would have without one.
 * A SIGKILL spawnd did not send is OOM when the process's memory cgroup
 * counted a kernel OOM kill (SPD_EXIT_OOM_KILLED), plain SIGNALED when it
 * counted none (SPD_EXIT_CGROUP alone), and SIGNALED + oom_suspected without a
 * cgroup; exit(137)/exit(9) are EXIT_CODE + oom_suspected unless the cgroup
 * counted none. A SIGKILL spawnd sent is never OOM nor suspected. */
void spd_outcome_classify(const spd_exit_facts *report, bool destroy_requested,
			  spd_outcome *out);

#endif
