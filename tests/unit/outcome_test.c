/* spd_outcome_classify (registry/outcome.h) against SPEC §2 "Errors" and "OOM is
 * never a guess that lies", and §11 (exit_code only on a normal exit, signal
 * only on death by signal, never 128+n).
 *
 * Two parts: named cases for each rule, then a sweep over every combination of
 * exit status x who sent a signal x destroy_requested x the launcher's other
 * flags, checked against the spec's rules written out in want() below. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "service/common/signame.h"
#include "service/registry/outcome.h"
#include "service/wire/messages.h"

#define CORE 0x80 /* the core-dump bit of a wait status */

static spd_exit_report report(int status, uint32_t flags)
{
	spd_exit_report r;

	memset(&r, 0, sizeof r);
	r.flags = flags;
	r.pid = (flags & SPD_EXIT_LAUNCH_FAILED) ? 0 : 4242;
	r.wait_status = status;
	r.launch_stage = (char *)"exec";
	r.launch_errno = ENOENT;
	r.launch_message = (char *)"No such file or directory";
	r.raise_type = (char *)"ValueError";
	r.raise_message = (char *)"bad value";
	return r;
}

static spd_outcome classify(int status, uint32_t flags, bool destroy)
{
	spd_exit_report r = report(status, flags);
	spd_outcome o;

	memset(&o, 0xA5, sizeof o); /* every field must be written */
	spd_outcome_classify(&r, destroy, &o);
	return o;
}

/* ---- one case per rule ---------------------------------------------------- */

static void exit_zero_succeeds(void **state)
{
	spd_outcome o = classify(W_EXITCODE(0, 0), 0, false);

	(void)state;
	assert_int_equal(o.state, SPD_STATE_SUCCEEDED);
	assert_int_equal(o.kind, SPD_ERR_NONE);
	assert_int_equal(o.exit_code, 0);
	assert_int_equal(o.signal, 0);
	assert_true(o.ran);
	assert_false(o.oom_suspected);
}

static void exit_three_is_exit_code(void **state)
{
	spd_outcome o = classify(W_EXITCODE(3, 0), 0, false);

	(void)state;
	assert_int_equal(o.state, SPD_STATE_FAILED);
	assert_int_equal(o.kind, SPD_ERR_EXIT_CODE);
	assert_int_equal(o.exit_code, 3);
	assert_int_equal(o.signal, 0);
	assert_false(o.oom_suspected);
	assert_true(o.ran);
}

static void exit_137_and_9_are_suspected(void **state)
{
	(void)state;
	for (int code = 9; code <= 137; code += 128) {
		spd_outcome o = classify(W_EXITCODE(code, 0), 0, false);
		assert_int_equal(o.state, SPD_STATE_FAILED);
		assert_int_equal(o.kind, SPD_ERR_EXIT_CODE);
		assert_int_equal(o.exit_code, code);
		assert_int_equal(o.signal, 0); /* an exit code, never turned into a signal */
		assert_true(o.oom_suspected);
	}
}

static void sigkill_not_sent_is_signaled_and_suspected(void **state)
{
	spd_outcome o = classify(W_EXITCODE(0, SIGKILL), 0, false);

	(void)state;
	assert_int_equal(o.state, SPD_STATE_FAILED);
	assert_int_equal(o.kind, SPD_ERR_SIGNALED);
	assert_int_equal(o.signal, SIGKILL);
	assert_int_equal(o.exit_code, 0); /* never 128+n */
	assert_string_equal(o.type, "SIGKILL");
	assert_true(o.oom_suspected);

	/* spawnd sent only the stop signal: the SIGKILL still came from elsewhere. */
	o = classify(W_EXITCODE(0, SIGKILL), SPD_EXIT_SENT_STOP, false);
	assert_int_equal(o.kind, SPD_ERR_SIGNALED);
	assert_true(o.oom_suspected);
}

static void sigkill_spawnd_sent_is_never_oom(void **state)
{
	(void)state;
	for (int destroy = 0; destroy <= 1; destroy++) {
		for (uint32_t extra = 0; extra <= SPD_EXIT_TIMED_OUT; extra += SPD_EXIT_TIMED_OUT) {
			uint32_t flags = SPD_EXIT_SENT_STOP | SPD_EXIT_SENT_KILL | extra;
			spd_outcome o = classify(W_EXITCODE(0, SIGKILL), flags, destroy);
			assert_false(o.oom_suspected);
			assert_int_not_equal(o.kind, SPD_ERR_OOM);
		}
	}
	/* Even with no destroy and no timeout on record (shutdown, a race). */
	spd_outcome o = classify(W_EXITCODE(0, SIGKILL), SPD_EXIT_SENT_KILL, false);
	assert_int_equal(o.kind, SPD_ERR_SIGNALED);
	assert_int_equal(o.signal, SIGKILL);
	assert_false(o.oom_suspected);
}

/* The seed's bug (SPEC §2): 137 after its own SIGKILL read as OOM. A leader that
 * reports 137 (a shell whose child got spawnd's SIGKILL) is not suspected. */
static void exit_137_after_spawnd_kill_is_not_suspected(void **state)
{
	(void)state;
	for (int code = 9; code <= 137; code += 128) {
		spd_outcome o = classify(W_EXITCODE(code, 0), SPD_EXIT_SENT_KILL, false);
		assert_int_equal(o.kind, SPD_ERR_EXIT_CODE);
		assert_int_equal(o.exit_code, code);
		assert_false(o.oom_suspected);
	}
}

static void sigsegv_core(void **state)
{
	spd_outcome o = classify(W_EXITCODE(0, SIGSEGV) | CORE, 0, false);

	(void)state;
	assert_int_equal(o.kind, SPD_ERR_SIGNALED);
	assert_int_equal(o.signal, SIGSEGV);
	assert_string_equal(o.type, "SIGSEGV");
	assert_true(o.core_dumped);
	assert_false(o.oom_suspected);

	o = classify(W_EXITCODE(0, SIGSEGV), 0, false);
	assert_false(o.core_dumped);
}

static void destroy_requested_is_canceled(void **state)
{
	(void)state;
	spd_outcome o = classify(W_EXITCODE(0, SIGTERM), SPD_EXIT_SENT_STOP, true);
	assert_int_equal(o.state, SPD_STATE_CANCELED);
	assert_int_equal(o.kind, SPD_ERR_NONE);
	assert_true(o.ran);
	assert_int_equal(o.signal, SIGTERM);
	assert_false(o.oom_suspected);

	/* Whatever the child did once the signal reached it: even a clean exit
	 * (a graceful SIGTERM handler) or a raise. */
	o = classify(W_EXITCODE(0, 0), SPD_EXIT_SENT_STOP, true);
	assert_int_equal(o.state, SPD_STATE_CANCELED);
	o = classify(W_EXITCODE(1, 0), SPD_EXIT_RAISED | SPD_EXIT_SENT_KILL, true);
	assert_int_equal(o.state, SPD_STATE_CANCELED);
	assert_int_equal(o.kind, SPD_ERR_NONE);

	/* It had exited on its own before the destroy's signal: no signal was
	 * sent, and the record is what the child did (SPEC §12). */
	o = classify(W_EXITCODE(0, 0), 0, true);
	assert_int_equal(o.state, SPD_STATE_SUCCEEDED);
	assert_int_equal(o.kind, SPD_ERR_NONE);
	o = classify(W_EXITCODE(1, 0), SPD_EXIT_RAISED, true);
	assert_int_equal(o.state, SPD_STATE_FAILED);
	assert_int_equal(o.kind, SPD_ERR_RAISED);

	/* Destroyed while pending: it never ran. */
	o = classify(0, SPD_EXIT_LAUNCH_FAILED, true);
	assert_int_equal(o.state, SPD_STATE_CANCELED);
	assert_false(o.ran);
}

static void launch_failure(void **state)
{
	spd_exit_report r = report(0, SPD_EXIT_LAUNCH_FAILED);
	spd_outcome o;

	(void)state;
	spd_outcome_classify(&r, false, &o);
	assert_int_equal(o.state, SPD_STATE_FAILED);
	assert_int_equal(o.kind, SPD_ERR_LAUNCH);
	assert_false(o.ran);
	assert_int_equal(o.exit_code, 0);
	assert_int_equal(o.signal, 0);
	/* Typed by the errno name, the most useful thing to match on. */
	assert_non_null(o.type);
	assert_string_equal(o.type, "ENOENT");

	/* The exec child's _exit(127) must not leak out as an exit code. */
	r = report(W_EXITCODE(127, 0), SPD_EXIT_LAUNCH_FAILED);
	spd_outcome_classify(&r, false, &o);
	assert_int_equal(o.kind, SPD_ERR_LAUNCH);
	assert_int_equal(o.exit_code, 0);
}

static void timed_out(void **state)
{
	(void)state;
	spd_outcome o = classify(W_EXITCODE(0, SIGTERM), SPD_EXIT_TIMED_OUT | SPD_EXIT_SENT_STOP,
				 false);
	assert_int_equal(o.state, SPD_STATE_FAILED);
	assert_int_equal(o.kind, SPD_ERR_TIMEOUT);
	assert_int_equal(o.signal, SIGTERM);
	assert_true(o.ran);

	o = classify(W_EXITCODE(0, SIGKILL),
		     SPD_EXIT_TIMED_OUT | SPD_EXIT_SENT_STOP | SPD_EXIT_SENT_KILL, false);
	assert_int_equal(o.kind, SPD_ERR_TIMEOUT);
	assert_false(o.oom_suspected);

	/* It exited by itself with 137 just as the timeout hit. */
	o = classify(W_EXITCODE(137, 0), SPD_EXIT_TIMED_OUT, false);
	assert_int_equal(o.kind, SPD_ERR_TIMEOUT);
	assert_int_equal(o.exit_code, 137);
}

static void raised_oom_too_large(void **state)
{
	spd_exit_report r = report(W_EXITCODE(1, 0), SPD_EXIT_RAISED);
	spd_outcome o;

	(void)state;
	spd_outcome_classify(&r, false, &o);
	assert_int_equal(o.kind, SPD_ERR_RAISED);
	assert_ptr_equal(o.type, r.raise_type);
	assert_int_equal(o.exit_code, 1);

	o = classify(W_EXITCODE(1, 0), SPD_EXIT_OOM, false);
	assert_int_equal(o.kind, SPD_ERR_OOM);
	assert_false(o.oom_suspected); /* confirmed, not suspected */

	o = classify(W_EXITCODE(0, 0), SPD_EXIT_TOO_LARGE, false);
	assert_int_equal(o.state, SPD_STATE_FAILED);
	assert_int_equal(o.kind, SPD_ERR_RESULT_TOO_LARGE);

	/* SPEC §4: past max_result_bytes it ends RESULT_TOO_LARGE "whatever the
	 * function returns", a raise included. */
	o = classify(W_EXITCODE(1, 0), SPD_EXIT_TOO_LARGE | SPD_EXIT_RAISED, false);
	assert_int_equal(o.kind, SPD_ERR_RESULT_TOO_LARGE);

	/* A raise, then a crash: the raise is the error, the signal is still told. */
	o = classify(W_EXITCODE(0, SIGSEGV), SPD_EXIT_RAISED, false);
	assert_int_equal(o.kind, SPD_ERR_RAISED);
	assert_int_equal(o.signal, SIGSEGV);
}

static void setup_failed(void **state)
{
	spd_exit_report r = report(W_EXITCODE(127, 0), SPD_EXIT_SETUP_FAILED);
	spd_outcome o;

	(void)state;
	r.launch_stage = (char *)"setuid";
	r.launch_errno = EPERM;
	spd_outcome_classify(&r, false, &o);
	assert_int_equal(o.state, SPD_STATE_FAILED);
	assert_int_equal(o.kind, SPD_ERR_LAUNCH);
	assert_true(o.ran); /* it was forked (RUNNING) before its setup failed */
	assert_string_equal(o.type, "EPERM");

	/* No errno (a function child's setup record carries text only). */
	r.launch_errno = 0;
	spd_outcome_classify(&r, false, &o);
	assert_int_equal(o.kind, SPD_ERR_LAUNCH);
	assert_non_null(o.type);
	assert_string_equal(o.type, "LaunchError");
}

/* The process's own memory cgroup (SPEC §2): its oom_kill counter confirms an
 * OOM, and a zero counter clears the suspicion. */
static void cgroup_oom_confirms_a_sigkill(void **state)
{
	spd_outcome o = classify(W_EXITCODE(0, SIGKILL), SPD_EXIT_CGROUP | SPD_EXIT_OOM_KILLED, false);

	(void)state;
	assert_int_equal(o.state, SPD_STATE_FAILED);
	assert_int_equal(o.kind, SPD_ERR_OOM);
	assert_string_equal(o.type, "OutOfMemory");
	assert_int_equal(o.signal, SIGKILL); /* still told */
	assert_int_equal(o.exit_code, 0);
	assert_false(o.oom_suspected);       /* confirmed, not suspected */
	assert_true(o.ran);

	/* spawnd sent only the stop signal: the SIGKILL was the kernel's. */
	o = classify(W_EXITCODE(0, SIGKILL),
		     SPD_EXIT_SENT_STOP | SPD_EXIT_CGROUP | SPD_EXIT_OOM_KILLED, false);
	assert_int_equal(o.kind, SPD_ERR_OOM);
}

static void cgroup_without_oom_clears_the_suspicion(void **state)
{
	spd_outcome o = classify(W_EXITCODE(0, SIGKILL), SPD_EXIT_CGROUP, false);

	(void)state;
	assert_int_equal(o.kind, SPD_ERR_SIGNALED);
	assert_string_equal(o.type, "SIGKILL");
	assert_int_equal(o.signal, SIGKILL);
	assert_false(o.oom_suspected);

	for (int code = 9; code <= 137; code += 128) {
		o = classify(W_EXITCODE(code, 0), SPD_EXIT_CGROUP, false);
		assert_int_equal(o.kind, SPD_ERR_EXIT_CODE);
		assert_int_equal(o.exit_code, code);
		assert_false(o.oom_suspected);
		/* The cgroup saw an OOM kill, but the leader exited by itself (a
		 * shell whose child was killed): still only suspected. */
		o = classify(W_EXITCODE(code, 0), SPD_EXIT_CGROUP | SPD_EXIT_OOM_KILLED, false);
		assert_int_equal(o.kind, SPD_ERR_EXIT_CODE);
		assert_true(o.oom_suspected);
	}
}

static void cgroup_oom_after_spawnd_kill_is_never_oom(void **state)
{
	uint32_t cg = SPD_EXIT_CGROUP | SPD_EXIT_OOM_KILLED;
	spd_outcome o;

	(void)state;
	/* Shutdown or a race: SIGKILL sent, the counter moved anyway. */
	o = classify(W_EXITCODE(0, SIGKILL), SPD_EXIT_SENT_KILL | cg, false);
	assert_int_equal(o.kind, SPD_ERR_SIGNALED);
	assert_false(o.oom_suspected);
	/* Destroy escalation. */
	o = classify(W_EXITCODE(0, SIGKILL), SPD_EXIT_SENT_STOP | SPD_EXIT_SENT_KILL | cg, true);
	assert_int_equal(o.state, SPD_STATE_CANCELED);
	assert_int_equal(o.kind, SPD_ERR_NONE);
	assert_false(o.oom_suspected);
	/* Timeout. */
	o = classify(W_EXITCODE(0, SIGKILL),
		     SPD_EXIT_TIMED_OUT | SPD_EXIT_SENT_STOP | SPD_EXIT_SENT_KILL | cg, false);
	assert_int_equal(o.kind, SPD_ERR_TIMEOUT);
	assert_false(o.oom_suspected);
}

/* ---- the sweep ------------------------------------------------------------- */

static const struct {
	const char *name;
	int status;
} statuses[] = {
	{"exit 0", W_EXITCODE(0, 0)},
	{"exit 3", W_EXITCODE(3, 0)},
	{"exit 137", W_EXITCODE(137, 0)},
	{"exit 9", W_EXITCODE(9, 0)},
	{"SIGKILL", W_EXITCODE(0, SIGKILL)},
	{"SIGSEGV", W_EXITCODE(0, SIGSEGV)},
	{"SIGSEGV+core", W_EXITCODE(0, SIGSEGV) | CORE},
	{"SIGTERM", W_EXITCODE(0, SIGTERM)},
};

static const struct {
	const char *name;
	uint32_t flags;
} senders[] = {
	{"nobody", 0},
	{"stop", SPD_EXIT_SENT_STOP},
	{"kill", SPD_EXIT_SENT_KILL},
	{"stop+kill", SPD_EXIT_SENT_STOP | SPD_EXIT_SENT_KILL},
};

static const struct {
	const char *name;
	uint32_t flags;
} extras[] = {
	{"-", 0},
	{"raised", SPD_EXIT_RAISED},
	{"oom", SPD_EXIT_OOM},
	{"too_large", SPD_EXIT_TOO_LARGE},
	{"timed_out", SPD_EXIT_TIMED_OUT},
	{"launch_failed", SPD_EXIT_LAUNCH_FAILED},
	{"setup_failed", SPD_EXIT_SETUP_FAILED},
};

static const struct {
	const char *name;
	uint32_t flags;
} cgroups[] = {
	{"no cgroup", 0},
	{"cgroup, no OOM", SPD_EXIT_CGROUP},
	{"cgroup OOM", SPD_EXIT_CGROUP | SPD_EXIT_OOM_KILLED},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The spec's answer. */
static spd_outcome want(int st, uint32_t flags, bool destroy)
{
	spd_outcome w;
	bool sent_kill = (flags & SPD_EXIT_SENT_KILL) != 0;
	bool oom_killed = (flags & SPD_EXIT_OOM_KILLED) != 0;
	bool no_oom = (flags & SPD_EXIT_CGROUP) && !oom_killed;

	memset(&w, 0, sizeof w);
	if (flags & SPD_EXIT_LAUNCH_FAILED) {
		/* It never ran: no exit code, no signal, whatever the status says. */
		w.state = destroy ? SPD_STATE_CANCELED : SPD_STATE_FAILED;
		w.kind = destroy ? SPD_ERR_NONE : SPD_ERR_LAUNCH;
		return w;
	}
	w.ran = true;
	if (WIFEXITED(st))
		w.exit_code = WEXITSTATUS(st);
	if (WIFSIGNALED(st)) {
		w.signal = WTERMSIG(st);
		w.core_dumped = (st & CORE) != 0;
	}
	if (destroy && (flags & (SPD_EXIT_SENT_STOP | SPD_EXIT_SENT_KILL))) {
		w.state = SPD_STATE_CANCELED;
		return w;
	}
	w.state = SPD_STATE_FAILED;
	if (flags & SPD_EXIT_TIMED_OUT) {
		w.kind = SPD_ERR_TIMEOUT;
	} else if (flags & SPD_EXIT_SETUP_FAILED) {
		w.kind = SPD_ERR_LAUNCH;
	} else if (flags & SPD_EXIT_TOO_LARGE) {
		w.kind = SPD_ERR_RESULT_TOO_LARGE;
	} else if (flags & SPD_EXIT_OOM) {
		w.kind = SPD_ERR_OOM;
	} else if (flags & SPD_EXIT_RAISED) {
		w.kind = SPD_ERR_RAISED;
	} else if (w.signal == SIGKILL && !sent_kill && oom_killed) {
		w.kind = SPD_ERR_OOM; /* confirmed by the cgroup */
	} else if (w.signal != 0) {
		w.kind = SPD_ERR_SIGNALED;
		w.oom_suspected = w.signal == SIGKILL && !sent_kill && !no_oom;
	} else if (w.exit_code != 0) {
		w.kind = SPD_ERR_EXIT_CODE;
		w.oom_suspected = (w.exit_code == 137 || w.exit_code == 9) && !sent_kill && !no_oom;
	} else {
		w.state = SPD_STATE_SUCCEEDED;
	}
	return w;
}

static void every_combination(void **state)
{
	int failures = 0, cases = 0;

	(void)state;
	for (size_t s = 0; s < COUNT(statuses); s++)
	for (size_t by = 0; by < COUNT(senders); by++)
	for (size_t x = 0; x < COUNT(extras); x++)
	for (size_t g = 0; g < COUNT(cgroups); g++)
	for (int destroy = 0; destroy <= 1; destroy++) {
		uint32_t flags = senders[by].flags | extras[x].flags | cgroups[g].flags;
		spd_exit_report r = report(statuses[s].status, flags);
		spd_outcome w = want(statuses[s].status, flags, destroy);
		spd_outcome o;
		char where[160];

		memset(&o, 0xA5, sizeof o);
		spd_outcome_classify(&r, destroy, &o);
		snprintf(where, sizeof where, "[%s, sent by %s, %s, %s, destroy=%d]", statuses[s].name,
			 senders[by].name, extras[x].name, cgroups[g].name, destroy);
		cases++;
#define CHECK(field, fmt) \
		if (o.field != w.field) { \
			print_error("%s " #field ": got " fmt ", want " fmt "\n", where, o.field, w.field); \
			failures++; \
		}
		CHECK(state, "%d")
		CHECK(kind, "%d")
		CHECK(exit_code, "%d")
		CHECK(signal, "%d")
		CHECK(core_dumped, "%d")
		CHECK(oom_suspected, "%d")
		CHECK(ran, "%d")
#undef CHECK
		/* The type names the error for every failure kind. */
		if (o.state == SPD_STATE_FAILED && o.type == NULL) {
			print_error("%s type: NULL\n", where);
			failures++;
		}
		if (o.state == SPD_STATE_FAILED && o.kind == SPD_ERR_SIGNALED &&
		    (o.type == NULL || strcmp(o.type, spd_signal_name(o.signal)) != 0)) {
			print_error("%s type: %s, want the signal's name\n", where, o.type);
			failures++;
		}
		if (o.kind == SPD_ERR_OOM && (o.type == NULL || strcmp(o.type, "OutOfMemory") != 0)) {
			print_error("%s type: %s, want OutOfMemory\n", where, o.type);
			failures++;
		}
		if (o.kind == SPD_ERR_RAISED && o.type != r.raise_type) {
			print_error("%s type: not the raised type\n", where);
			failures++;
		}
		if (o.kind == SPD_ERR_LAUNCH && (o.type == NULL || strcmp(o.type, "ENOENT") != 0)) {
			print_error("%s type: %s, want the errno name\n", where, o.type);
			failures++;
		}
	}
	assert_int_equal(cases, 8 * 4 * 7 * 3 * 2);
	if (failures != 0)
		fail_msg("%d mismatches", failures);
}

/* Invariants that hold whatever the inputs, over every flag subset too. */
static void invariants_over_all_flag_sets(void **state)
{
	(void)state;
	for (size_t s = 0; s < COUNT(statuses); s++)
	for (uint32_t flags = 0; flags < (1u << 10); flags++)
	for (int destroy = 0; destroy <= 1; destroy++) {
		int st = statuses[s].status;
		spd_exit_report r = report(st, flags);
		spd_outcome o;

		spd_outcome_classify(&r, destroy, &o);
		/* A SIGKILL spawnd sent is never OOM, nor suspected. */
		if ((flags & SPD_EXIT_SENT_KILL) && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
			assert_false(o.oom_suspected);
			/* (unless the function itself reported spawnd_oom() first) */
			if (!(flags & SPD_EXIT_OOM))
				assert_int_not_equal(o.kind, SPD_ERR_OOM);
		}
		/* A cgroup that counted no OOM kill leaves nothing to suspect. */
		if ((flags & SPD_EXIT_CGROUP) && !(flags & SPD_EXIT_OOM_KILLED))
			assert_false(o.oom_suspected);
		/* OOM is only ever confirmed: by the function or by the cgroup. */
		if (o.kind == SPD_ERR_OOM)
			assert_true(flags & (SPD_EXIT_OOM | SPD_EXIT_OOM_KILLED));
		/* Suspicion only on the seed's codes, and only for these kinds. */
		if (o.oom_suspected)
			assert_true(o.kind == SPD_ERR_SIGNALED || o.kind == SPD_ERR_EXIT_CODE);
		/* exit_code only on a normal exit, signal only on death by signal. */
		if (o.exit_code != 0)
			assert_true(WIFEXITED(st) && WEXITSTATUS(st) == o.exit_code);
		if (o.signal != 0)
			assert_true(WIFSIGNALED(st) && WTERMSIG(st) == o.signal);
		if (o.core_dumped)
			assert_int_not_equal(o.signal, 0);
		/* An error exactly when FAILED. */
		assert_int_equal(o.state == SPD_STATE_FAILED, o.kind != SPD_ERR_NONE);
		if (destroy && (flags & (SPD_EXIT_SENT_STOP | SPD_EXIT_SENT_KILL | SPD_EXIT_LAUNCH_FAILED)))
			assert_int_equal(o.state, SPD_STATE_CANCELED);
		if (o.state == SPD_STATE_CANCELED)
			assert_true(destroy);
		if (flags & SPD_EXIT_LAUNCH_FAILED)
			assert_false(o.ran);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(exit_zero_succeeds),
		cmocka_unit_test(exit_three_is_exit_code),
		cmocka_unit_test(exit_137_and_9_are_suspected),
		cmocka_unit_test(sigkill_not_sent_is_signaled_and_suspected),
		cmocka_unit_test(sigkill_spawnd_sent_is_never_oom),
		cmocka_unit_test(exit_137_after_spawnd_kill_is_not_suspected),
		cmocka_unit_test(sigsegv_core),
		cmocka_unit_test(destroy_requested_is_canceled),
		cmocka_unit_test(launch_failure),
		cmocka_unit_test(timed_out),
		cmocka_unit_test(raised_oom_too_large),
		cmocka_unit_test(setup_failed),
		cmocka_unit_test(cgroup_oom_confirms_a_sigkill),
		cmocka_unit_test(cgroup_without_oom_clears_the_suspicion),
		cmocka_unit_test(cgroup_oom_after_spawnd_kill_is_never_oom),
		cmocka_unit_test(every_combination),
		cmocka_unit_test(invariants_over_all_flag_sets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
