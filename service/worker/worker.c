/* spawnd-worker: the small program behind the `spawn` start method (one call
 * in a fresh exec: clean state) and the `forkserver` zygotes. It links no gRPC
 * (Bazel's visibility rules make sure of it).
 *
 *   spawnd-worker call      fd 3: the result/error channel; fd 4: a memfd with
 *                           the target spec and the START request. The
 *                           launcher already applied the process group, limits,
 *                           user, cwd, environment and stdio before exec.
 *   spawnd-worker launcher  the launcher itself (launcher/launcher.h), exec'd by
 *                           spawnd with an empty environment: fd 3 its socket
 *                           to the front, fd 4 a memfd with its boot data.
 *   spawnd-worker zygote    fd 3: a SOCK_SEQPACKET socket to the launcher; fd 4:
 *                           a memfd with the target spec. Loads the target once,
 *                           then forks its children on request (zygote.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "service/launcher/child.h"
#include "service/launcher/launcher.h"
#include "service/launcher/target_spec.h"
#include "service/target/call.h"
#include "service/target/channel.h"
#include "service/wire/messages.h"
#include "service/wire/wire.h"
#include "service/worker/zygote.h"

/* Reports a setup failure the way a forked function child does (LAUNCH). */
static _Noreturn void setup_failed(const char *stage, const char *msg)
{
	char buf[1024];
	size_t a = strlen(stage) + 1;
	int n = snprintf(buf, sizeof buf, "%s%c%s", stage, '\0', msg);

	if (n < 0 || (size_t)n >= sizeof buf)
		n = (int)sizeof buf - 1;
	(void)a;
	spd_channel_write(SPD_CHANNEL_FD, SPD_CHAN_SETUP_FAILED, buf, (size_t)n + 1);
	_exit(127);
}

static int run_call(void)
{
	spd_target_spec spec;
	spd_start_req req;
	size_t len = 0;
	uint8_t *body = NULL;
	int rc = spd_memfd_read(SPD_WORKER_SPEC_FD, &body, &len);

	close(SPD_WORKER_SPEC_FD);
	if (rc < 0)
		setup_failed("spec", "cannot read the call spec");
	if (spd_call_spec_decode(body, len, &spec, &req) < 0)
		setup_failed("spec", "malformed call spec");
	free(body);
	if (spec.prepared.error != NULL)
		setup_failed("target", spec.prepared.error);
	prctl(PR_SET_NAME, spec.cfg.name);
	spd_call_warm_up();
	{
		spd_call_args args = {
			.process_id = req.process_id,
			.argv = (const char *const *)req.argv,
			.argc = (int)req.argc,
			.input = req.input,
			.input_len = req.input_len,
			.labels = (const char *const *)req.labels,
			.max_result_bytes = spec.cfg.limits.max_result_bytes,
			.memory_limit = spec.cfg.limits.memory_limit,
			.channel_fd = SPD_CHANNEL_FD,
		};
		rc = spd_call_run(spec.prepared.fn, &args);
	}
	/* The process ends here: nothing to gain from freeing what the call may
	 * still reference. */
	_exit(rc);
}

static int run_zygote(void)
{
	spd_target_spec spec;
	size_t len = 0;
	uint8_t *body = NULL;
	int rc = spd_memfd_read(SPD_WORKER_SPEC_FD, &body, &len);

	close(SPD_WORKER_SPEC_FD);
	if (rc < 0)
		return 3;
	rc = spd_target_spec_decode_body(body, len, &spec);
	free(body);
	if (rc < 0)
		return 3;
	if (spec.prepared.error != NULL) {
		fprintf(stderr, "spawnd-worker zygote: %s: %s\n", spec.cfg.name, spec.prepared.error);
		spd_target_spec_release(&spec);
		return 4;
	}
	/* The launcher already dropped this zygote to the target's user and
	 * group before exec, and its children inherit them: doing it again in
	 * each child would fail (setgroups needs the privilege just dropped). */
	spec.prepared.set_uid = spec.prepared.set_gid = false;
	rc = spd_zygote_run(&spec);
	spd_target_spec_release(&spec);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "call") == 0)
		return run_call();
	if (argc == 2 && strcmp(argv[1], "zygote") == 0)
		return run_zygote();
	if (argc == 2 && strcmp(argv[1], "launcher") == 0)
		return spd_launcher_exec_main();
	fprintf(stderr, "usage: spawnd-worker call|zygote|launcher\n"
			"  (started by spawnd's launcher; not meant to be run by hand)\n");
	return 2;
}
